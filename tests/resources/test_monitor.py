"""The resource monitor against a known load, the step wrapper's metadata, GPUs through (fake and real) NVML."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from resources.monitor import (
    MB,
    NVML,
    ResourceMonitor,
    StepMonitor,
    SystemSnapshot,
    read_gpus,
    snapshot,
)

ALLOC_MB = 200
SPIN_S = 1.5

# Prints its RSS before allocating, then allocates and touches ALLOC_MB, spins a core for SPIN_S, says so and
# stays alive (holding the memory) until its stdin closes.
CHILD = textwrap.dedent(
    f"""
    import sys, time
    import psutil
    print(psutil.Process().memory_info().rss, flush=True)
    buf = bytearray({ALLOC_MB} * 1024 * 1024)
    for i in range(0, len(buf), 4096):
        buf[i] = 1
    end = time.perf_counter() + {SPIN_S}
    n = 0
    while time.perf_counter() < end:
        n += 1
    print("done", flush=True)
    sys.stdin.read()
    """
)

STEP_KEYS = {
    "peak_rss_mb",
    "cpu_seconds",
    "cpu_percent_mean",
    "cpu_percent_peak",
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
            assert child.stdout.readline().strip() == "done"
        summary = monitor.summary()
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(timeout=10)

    expected_mb = ALLOC_MB + baseline_mb
    assert abs(summary.peak_rss_mb - expected_mb) <= 0.25 * expected_mb, (summary.peak_rss_mb, expected_mb)
    assert summary.cpu_percent_mean > 50
    assert summary.cpu_seconds > 0.5 * SPIN_S
    assert summary.samples >= 10
    assert summary.duration_s >= SPIN_S


def test_monitor_keeps_going_when_the_process_exits() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    with ResourceMonitor(interval=0.05, pid=child.pid) as monitor:
        child.wait(timeout=10)
        time.sleep(0.15)
    assert len(monitor.samples) >= 3
    assert monitor.latest().elapsed_s >= 0.15


def test_samples_are_ordered_and_cumulative() -> None:
    with ResourceMonitor(interval=0.05) as monitor:
        end = time.perf_counter() + 0.3
        while time.perf_counter() < end:
            pass
    samples = monitor.samples
    assert samples[0].elapsed_s == pytest.approx(0.0, abs=0.05)
    assert [s.elapsed_s for s in samples] == sorted(s.elapsed_s for s in samples)
    assert [s.cpu_seconds for s in samples] == sorted(s.cpu_seconds for s in samples)
    assert all(s.rss_mb > 0 and 0 < s.system_mem_percent < 100 for s in samples)
    assert monitor.latest() == samples[-1]
    summary = monitor.summary()
    assert summary.cpu_seconds > 0.1
    assert summary.cpu_percent_peak >= summary.cpu_percent_mean * 0.5
    assert summary.peak_rss_mb == max(s.rss_mb for s in samples)


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
    with StepMonitor(interval=0.5) as step:
        sum(range(200_000))
    meta = step.metadata()
    assert meta.keys() >= STEP_KEYS
    assert all(isinstance(v, int | float) and v >= 0 for v in meta.values())
    assert step.summary.samples == 2
    assert meta["peak_rss_mb"] > 10
    assert 0 < meta["cpu_seconds"] < 5
    assert 0 < meta["cpu_percent_mean"] <= meta["cpu_percent_peak"]
    assert 0 < meta["mem_percent_mean"] < 100
    if not read_gpus():
        assert "gpu_mem_peak_mb" not in meta and "gpu_util_mean" not in meta


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
