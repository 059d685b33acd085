"""The resource monitor against a known load, the step wrapper's metadata, GPUs through (fake and real) NVML."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from resources.monitor import (
    MB,
    MIN_RATE_WINDOW_S,
    NVML,
    ResourceMonitor,
    StepMonitor,
    SystemSnapshot,
    read_gpus,
    snapshot,
)

ALLOC_MB = 200
SPIN_S = 1.5

# Prints its RSS before allocating and waits for a line on stdin (sent once the monitor runs, so that all it
# counts happens while monitored, however late a loaded machine lets the test start the monitor), then allocates
# and touches ALLOC_MB, spins a core for SPIN_S, prints the CPU seconds it used meanwhile by its own clock, and
# stays alive (holding the memory) until its stdin closes.
CHILD = textwrap.dedent(
    f"""
    import sys, time
    import psutil
    print(psutil.Process().memory_info().rss, flush=True)
    sys.stdin.readline()
    cpu0 = time.process_time()
    buf = bytearray({ALLOC_MB} * 1024 * 1024)
    for i in range(0, len(buf), 4096):
        buf[i] = 1
    end = time.perf_counter() + {SPIN_S}
    n = 0
    while time.perf_counter() < end:
        n += 1
    print(time.process_time() - cpu0, flush=True)
    sys.stdin.read()
    """
)
# /proc reports another process's CPU time in ticks of 10 ms.
TICK_S = 0.01
# Longest wait for something due within a second: only a hang takes this long, never a slow machine.
HANG_S = 120.0

STEP_KEYS = {
    "peak_rss_mb",
    "rss_delta_mb",
    "cpu_seconds",
    "mem_percent_mean",
    "disk_read_mb",
    "disk_write_mb",
    "net_mb",
}


def test_monitor_sees_a_child_allocating_and_spinning() -> None:
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdin is not None
        baseline_mb = int(child.stdout.readline()) / MB
        with ResourceMonitor(interval=0.1, pid=child.pid) as monitor:
            child.stdin.write("go\n")
            child.stdin.flush()
            child_cpu_s = float(child.stdout.readline())
        summary = monitor.summary()
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(timeout=60)

    expected_mb = ALLOC_MB + baseline_mb
    assert abs(summary.peak_rss_mb - expected_mb) <= 0.25 * expected_mb, (summary.peak_rss_mb, expected_mb)
    # The CPU time the child counted itself, however much of the wall time a loaded machine gave it.
    assert summary.cpu_seconds >= child_cpu_s - 3 * TICK_S, (summary.cpu_seconds, child_cpu_s)
    assert summary.cpu_percent_mean == pytest.approx(100 * summary.cpu_seconds / summary.duration_s)
    assert summary.samples >= 3
    assert summary.duration_s >= SPIN_S


def test_monitoring_this_process_counts_a_child_started_during_the_step() -> None:
    """This process's monitor skips the scan for descendants while it has no child (one `waitid`); a child
    started inside the step is found and its CPU time counted while it is still running."""
    with StepMonitor(interval=3600.0) as step:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        try:
            assert child.stdout is not None and child.stdin is not None
            child.stdout.readline()
            child.stdin.write("go\n")
            child.stdin.flush()
            child_cpu_s = float(child.stdout.readline())
        except BaseException:
            child.kill()
            raise
    try:
        assert step.summary.cpu_seconds >= child_cpu_s - 3 * TICK_S, (step.summary.cpu_seconds, child_cpu_s)
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=HANG_S)


def test_monitors_running_together_each_keep_their_interval_and_stop_cleanly() -> None:
    """One sampler thread serves every running monitor: each is sampled at its own interval, none after stop()."""
    fast, slow = ResourceMonitor(interval=0.05), ResourceMonitor(interval=3600.0)
    with slow:
        with fast:
            _wait_for_samples(fast, 4)
        stopped_with = len(fast.samples)
        time.sleep(0.2)
        assert len(fast.samples) == stopped_with  # nothing sampled it after stop()
    assert stopped_with >= 4
    assert len(slow.samples) == 2  # its start and stop only: never due


def _count_samples_in_child(queue: object) -> None:
    with StepMonitor(interval=0.05) as step:
        _wait_for_samples(step.monitor, 3)
    queue.put(step.summary.samples)  # type: ignore[attr-defined]


def test_a_forked_child_samples_with_its_own_thread() -> None:
    """A process forked while the parent's sampler thread runs has no such thread; its monitors start their own."""
    import multiprocessing

    with StepMonitor(interval=0.05):  # the parent's sampler thread is running when the child forks
        ctx = multiprocessing.get_context("fork")
        queue = ctx.Queue()
        child = ctx.Process(target=_count_samples_in_child, args=(queue,))
        child.start()
        samples = queue.get(timeout=HANG_S)
        child.join(timeout=HANG_S)
    assert child.exitcode == 0
    assert samples >= 4  # start, two of its thread's, stop


def _wait_for_samples(monitor: ResourceMonitor, count: int) -> None:
    """Wait until `monitor` holds `count` samples: its thread may fall behind on a loaded machine. The deadline
    only bounds a hang (the thread is due every interval)."""
    deadline = time.monotonic() + HANG_S
    while len(monitor.samples) < count and time.monotonic() < deadline:
        time.sleep(0.02)


def test_monitor_keeps_going_when_the_process_exits() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    with ResourceMonitor(interval=0.05, pid=child.pid) as monitor:
        child.wait(timeout=HANG_S)
        exited = len(monitor.samples)
        time.sleep(0.15)
        _wait_for_samples(monitor, exited + 1)  # the thread sampled the process after it was gone
    assert len(monitor.samples) >= 3
    assert monitor.latest().elapsed_s >= 0.15


def test_samples_are_ordered_and_cumulative() -> None:
    before = time.monotonic()
    with ResourceMonitor(interval=0.05) as monitor:
        start_call_s = time.monotonic() - before
        busy0 = time.thread_time()
        end = time.perf_counter() + 0.3
        while time.perf_counter() < end:
            pass
        busy_s = time.thread_time() - busy0
    samples = monitor.samples
    assert 0.0 <= samples[0].elapsed_s <= start_call_s  # start()'s own sample, taken on the spot
    assert [s.elapsed_s for s in samples] == sorted(s.elapsed_s for s in samples)
    assert [s.cpu_seconds for s in samples] == sorted(s.cpu_seconds for s in samples)
    assert all(s.rss_mb > 0 and 0 < s.system_mem_percent < 100 for s in samples)
    assert monitor.latest() == samples[-1]
    summary = monitor.summary()
    # the loop's own CPU time (this thread's clock) is in the process's, less nothing but the sampler's
    assert summary.cpu_seconds >= busy_s * 0.99
    assert summary.peak_rss_mb >= max(s.rss_mb for s in samples)


def test_monitor_without_start_or_twice() -> None:
    monitor = ResourceMonitor(interval=1.0)
    with pytest.raises(RuntimeError):
        monitor.latest()
    monitor.start()
    with pytest.raises(RuntimeError):
        monitor.start()
    first = monitor.stop()
    assert monitor.stop() == first
    with pytest.raises(ValueError):
        ResourceMonitor(interval=0)


def test_step_metadata_for_a_step_shorter_than_one_interval() -> None:
    with StepMonitor(interval=3600.0) as step:  # shorter than one interval however slow the machine
        sum(range(200_000))
    meta = step.metadata()
    assert meta.keys() >= STEP_KEYS
    assert all(isinstance(v, int | float) and v >= 0 for v in meta.values())
    assert step.summary.samples == 2
    assert meta["peak_rss_mb"] > 10
    assert 0 < meta["cpu_seconds"] < 5
    assert 0 < meta["mem_percent_mean"] < 100
    if not read_gpus():
        assert "gpu_mem_peak_mb" not in meta and "gpu_util_mean" not in meta


def test_cpu_percent_is_left_out_of_a_step_too_short_to_measure() -> None:
    """Issue 11 item 13: a 3 ms step showed cpu_percent_mean 96.5, most of it the sampler's own start and stop.

    An empty step's start and stop take a few ms, but a loaded machine can stretch one past `MIN_RATE_WINDOW_S`
    (seen: 52 ms beside 6 busy processes on 2 cores); such a step is long enough to measure, must say so, and
    the next empty step is tried."""
    for _ in range(100):
        with StepMonitor(interval=0.5) as step:
            pass
        meta = step.metadata()
        assert "cpu_seconds" in meta
        if step.summary.duration_s >= MIN_RATE_WINDOW_S:
            assert "cpu_percent_mean" in meta and "cpu_percent_peak" in meta, (step.summary, meta)
            assert step.summary.system_cpu_percent_mean is not None
            continue
        assert "cpu_percent_mean" not in meta and "cpu_percent_peak" not in meta
        assert step.summary.cpu_percent_mean is None and step.summary.system_cpu_percent_mean is None
        return
    pytest.fail(f"100 empty steps in a row each took at least MIN_RATE_WINDOW_S ({MIN_RATE_WINDOW_S} s)")


def test_a_sleeping_step_reports_the_cpu_it_used_not_the_samplers() -> None:
    """A step that sleeps uses no CPU; sampling every 50 ms costs ~5-15 ms of CPU (half a core in a first window
    with NVML's start), which was reported as the step's."""
    with StepMonitor(interval=0.05) as step:
        time.sleep(0.3)
        _wait_for_samples(step.monitor, 3)  # start()'s and two of the thread's (stop() takes the fourth)
    summary = step.summary
    assert summary.samples >= 4 and step.monitor.sampler_cpu_seconds > 0
    assert summary.cpu_seconds < 0.5 * step.monitor.sampler_cpu_seconds
    assert summary.cpu_percent_mean is not None and summary.cpu_percent_mean < 5.0
    assert summary.cpu_percent_peak is not None and summary.cpu_percent_peak < 10.0


def test_rss_delta_is_what_the_step_added() -> None:
    with StepMonitor(interval=0.5) as step:
        buf = bytearray(ALLOC_MB * MB)
        for i in range(0, len(buf), 4096):
            buf[i] = 1
    del buf
    meta = step.metadata()
    assert abs(meta["rss_delta_mb"] - ALLOC_MB) <= 0.25 * ALLOC_MB, meta
    assert meta["peak_rss_mb"] - meta["rss_delta_mb"] == pytest.approx(step.summary.start_rss_mb, abs=0.2)

    with StepMonitor(interval=0.5) as idle:
        pass
    assert idle.metadata()["rss_delta_mb"] < 5


@pytest.mark.parametrize("interval", [0.05, 0.1])
def test_step_monitor_samples_at_the_given_interval(interval: float) -> None:
    """Issue 11 item 12: the interval is a real setting. Bounds hold on a loaded machine: the sampler may fall
    behind (fewer samples), never ahead."""
    step_s = 0.6
    with StepMonitor(interval=interval) as step:
        time.sleep(step_s)
        _wait_for_samples(step.monitor, 1 + 2)  # start()'s and two of the thread's
    summary = step.summary
    thread_samples = summary.samples - 2  # start() and stop() sample whatever the interval
    assert 2 <= thread_samples <= summary.duration_s / interval + 1, (thread_samples, summary.duration_s)

    with StepMonitor(interval=10.0) as slow:
        time.sleep(step_s)
    assert slow.summary.samples == 2


def test_step_metadata_reports_gpus(fake_nvml: list[tuple[str, float, int, int]]) -> None:
    with StepMonitor(interval=0.5) as step:
        pass
    meta = step.metadata()
    assert meta["gpu_mem_peak_mb"] == 3000.0  # the fuller of the two
    assert meta["gpu_util_mean"] == 60.0
    gpus = step.summary.gpus
    assert [(g.index, g.name, g.memory_peak_mb, g.utilization_mean) for g in gpus] == [
        (0, "Fake GPU A", 1000.0, 40.0),
        (1, "Fake GPU B", 3000.0, 80.0),
    ]
    assert step.monitor.latest().gpus[1].memory_percent == pytest.approx(37.5)


def test_nvml_failure_means_no_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    import types

    broken = types.ModuleType("pynvml")

    def fail() -> None:
        raise OSError("NVML Shared Library Not Found")

    broken.nvmlInit = fail
    monkeypatch.setitem(sys.modules, "pynvml", broken)
    NVML.reset()
    try:
        assert read_gpus() == []
        assert snapshot().gpu.available is False
    finally:
        NVML.reset()


def test_snapshot_sections() -> None:
    snap = SystemSnapshot.model_validate(snapshot().model_dump(mode="json"))
    assert snap.cpu.logical_cores >= 1
    assert len(snap.cpu.per_cpu_percent) == snap.cpu.logical_cores
    assert 0 <= snap.cpu.percent <= 100
    assert 0 < snap.memory.used_bytes <= snap.memory.total_bytes
    assert snap.memory.process_rss_bytes > 0
    assert snap.network.bytes_recv >= 0 and snap.network.recv_bytes_per_s >= 0
    assert snap.gpu.available == bool(snap.gpu.devices)


def test_real_gpu_is_seen() -> None:
    gpus = read_gpus()
    if not gpus:
        pytest.skip("NVML reports no GPU")
    with StepMonitor(interval=0.5) as step:
        pass
    meta = step.metadata()
    assert 0 < meta["gpu_mem_peak_mb"] <= max(g.memory_total_bytes for g in gpus) / MB
    assert 0 <= meta["gpu_util_mean"] <= 100
    assert snapshot().gpu.devices[0].memory_total_bytes == gpus[0].memory_total_bytes
