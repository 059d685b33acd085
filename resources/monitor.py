"""Resource monitoring: a background sampler of one process (CPU, RSS, disk) and the machine (CPU, memory,
network, GPUs via NVML), a step-sized wrapper whose summary becomes asset metadata, and a one-shot snapshot
for the HTTP endpoints.

CPU percentages are computed from CPU-time deltas, never from `psutil.cpu_percent`, whose module-global state
would make two samplers in one process (a monitor and the endpoints) reset each other. MB means 2**20 bytes.
GPU figures are device-wide (every process on the GPU), as NVML reports them.
"""

from __future__ import annotations

import contextlib
import os
import resource
import socket
import statistics
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from types import TracebackType
from typing import Any, Literal

import psutil
from pydantic import BaseModel, Field

MB = 1024 * 1024
# Shortest window a rate (CPU %) is computed over: CPU times of other processes tick at 10 ms.
MIN_RATE_WINDOW_S = 0.05
DiskSource = Literal["process", "system", "none"]


# --- GPUs through NVML ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GpuReading:
    index: int
    name: str
    utilization_percent: float
    memory_used_bytes: int
    memory_total_bytes: int


class _Nvml:
    """NVML, initialised on first use; any failure (no library, no driver, no GPU) means no GPUs, never an error."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tried = False
        self._nvml: Any = None
        self._handles: list[tuple[int, str, Any]] = []
        self.driver_version: str | None = None

    def _init(self) -> None:
        self._tried = True
        try:
            import pynvml

            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            handles = []
            for index in range(count):
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                name = pynvml.nvmlDeviceGetName(handle)
                handles.append((index, name.decode() if isinstance(name, bytes) else str(name), handle))
            version = pynvml.nvmlSystemGetDriverVersion()
            self.driver_version = version.decode() if isinstance(version, bytes) else str(version)
        except Exception:
            return
        self._nvml, self._handles = pynvml, handles

    def read(self) -> list[GpuReading]:
        with self._lock:
            if not self._tried:
                self._init()
        readings: list[GpuReading] = []
        for index, name, handle in self._handles:
            try:
                util = self._nvml.nvmlDeviceGetUtilizationRates(handle)
                mem = self._nvml.nvmlDeviceGetMemoryInfo(handle)
            except Exception:
                continue
            readings.append(GpuReading(index, name, float(util.gpu), int(mem.used), int(mem.total)))
        return readings

    def reset(self) -> None:
        """Forget the init attempt (tests swap in a fake `pynvml`)."""
        with self._lock:
            self._tried, self._nvml, self._handles, self.driver_version = False, None, [], None


NVML = _Nvml()


def read_gpus() -> list[GpuReading]:
    """Every GPU's utilisation and memory now; [] without NVML or GPUs."""
    return NVML.read()


# --- samples and summaries ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GpuSample:
    index: int
    name: str
    utilization_percent: float
    memory_used_mb: float
    memory_total_mb: float

    @property
    def memory_percent(self) -> float:
        return 100.0 * self.memory_used_mb / self.memory_total_mb if self.memory_total_mb else 0.0


@dataclass(frozen=True, slots=True)
class Sample:
    """One reading. CPU figures cover the monitored process and (by default) its descendants; RSS and disk IO
    are the process's own; network is machine-wide. Cumulative figures (`cpu_seconds`, `net_*_bytes`,
    `disk_*_bytes`) count from the monitor's start. When the monitored process is this one, CPU figures leave
    out the CPU time the sampling itself used (`ResourceMonitor.sampler_cpu_seconds`)."""

    elapsed_s: float = 0.0
    timestamp: float = 0.0
    cpu_percent: float = 0.0
    cpu_seconds: float = 0.0
    system_cpu_percent: float = 0.0
    rss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    system_mem_percent: float = 0.0
    net_sent_bytes_per_s: float = 0.0
    net_recv_bytes_per_s: float = 0.0
    net_sent_bytes: int = 0
    net_recv_bytes: int = 0
    disk_read_bytes: int = 0
    disk_write_bytes: int = 0
    gpus: tuple[GpuSample, ...] = ()


@dataclass(frozen=True, slots=True)
class GpuSummary:
    index: int
    name: str
    memory_peak_mb: float
    utilization_mean: float


@dataclass(frozen=True, slots=True)
class MonitorSummary:
    """What a monitor saw. A figure that could not be measured is None rather than a number that looks real:
    `cpu_percent_mean` for a run shorter than `MIN_RATE_WINDOW_S`, `cpu_percent_peak` and
    `system_cpu_percent_mean` when no sampled rate covered a full window.

    When the monitored process is this one, CPU figures exclude the CPU time the sampling itself used (it is
    most of an empty short step's CPU time, and half a core at a 50 ms interval)."""

    duration_s: float
    samples: int
    cpu_percent_mean: float | None
    cpu_percent_peak: float | None
    cpu_seconds: float
    peak_rss_mb: float
    start_rss_mb: float
    """RSS of the process itself when monitoring started; `peak_rss_mb - start_rss_mb` is what the run added."""
    system_cpu_percent_mean: float | None
    mem_percent_mean: float
    net_sent_bytes: int
    net_recv_bytes: int
    disk_read_bytes: int
    disk_write_bytes: int
    disk_source: DiskSource
    gpus: tuple[GpuSummary, ...] = ()


# --- probes ---------------------------------------------------------------------------------------------------


def _cpu_busy_total(times: Any) -> tuple[float, float]:
    """(busy, total) seconds of a `psutil.cpu_times()` reading, the way psutil counts them (guest time is already
    inside user time on Linux; idle and iowait are not busy)."""
    total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
    return total - times.idle - getattr(times, "iowait", 0.0), total


def _busy_percent(before: Any, after: Any) -> float:
    busy0, total0 = _cpu_busy_total(before)
    busy1, total1 = _cpu_busy_total(after)
    if total1 <= total0:
        return 0.0
    return round(min(100.0, max(0.0, 100.0 * (busy1 - busy0) / (total1 - total0))), 1)


def _proc_cpu(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system + getattr(times, "children_user", 0.0) + getattr(times, "children_system", 0.0)


def _own_cpu() -> float:
    # process_time() has ns resolution where /proc's CPU times tick at 10 ms, which matters for short steps.
    times = os.times()
    return time.process_time() + times.children_user + times.children_system


def _own_maxrss_mb() -> float:
    """This process's lifetime peak RSS (`ru_maxrss`: KB on Linux, bytes on macOS)."""
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss / MB if sys.platform == "darwin" else maxrss / 1024


def _proc_children_supported(pid: int) -> bool:
    return os.path.exists(f"/proc/{pid}/task/{pid}/children")


def _has_children() -> bool:
    """Whether this process has a child, live or not yet reaped: one `waitid` that reaps nothing (`WNOWAIT`) and
    waits for nothing (`WNOHANG`); only "no child at all" fails (ECHILD). Children of every thread count."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    except OSError:
        return True  # cannot tell: scan
    return True


_CAN_WAITID = hasattr(os, "waitid") and hasattr(os, "WNOWAIT")


def _linux_descendants(pid: int) -> list[int]:
    """Descendant pids from `/proc/<pid>/task/<tid>/children` (Linux 3.5+ with CONFIG_PROC_CHILDREN). psutil's
    `children()` scans every process on the machine (~1.2 ms here with 80 of them); this reads only the tree."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        try:
            tids = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{parent}/task/{tid}/children") as fh:
                    kids = [int(x) for x in fh.read().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


# This process's psutil handle, whether /proc lists its children, and whether it has IO counters, by pid (a
# forked child finds its own pid missing and makes its own).
_SELF_PROBE: dict[int, tuple[psutil.Process, bool, bool]] = {}


class _ProcessProbe:
    """CPU time, RSS and disk IO of one process and its live descendants.

    CPU time counts each process's own time plus its reaped children's (`children_user/system`), so a child's
    time stays counted when it exits and its parent waits for it.
    """

    def __init__(self, pid: int | None, include_children: bool) -> None:
        own = os.getpid()
        known = _SELF_PROBE.get(own) if pid in (None, own) else None
        if known is None:
            self.proc = psutil.Process(pid)
            self._proc_children = _proc_children_supported(self.proc.pid)
            try:
                self.proc.io_counters()
                self.has_io = True
            except (AttributeError, psutil.Error, OSError, NotImplementedError):
                self.has_io = False
            if self.proc.pid == own:  # what a step's probe finds out about this process, once per process
                _SELF_PROBE[own] = (self.proc, self._proc_children, self.has_io)
        else:
            self.proc, self._proc_children, self.has_io = known
        self.is_self = self.proc.pid == own
        self.include_children = include_children
        self.alive = True
        self._children: dict[int, psutil.Process] = {}
        self._last_cpu = 0.0
        self._last_rss = 0
        self._last_io: tuple[int, int] | None = None

    def _descendants(self) -> list[psutil.Process]:
        if not self.include_children:
            return []
        if self.is_self and _CAN_WAITID and not _has_children():
            return []  # the scan below reads a file per thread of this process (~0.6 ms with 20 threads)
        if self._proc_children:
            pids = _linux_descendants(self.proc.pid)
        else:
            try:
                pids = [p.pid for p in self.proc.children(recursive=True)]
            except psutil.Error:
                return []
        # Keep the same Process objects between samples: psutil checks pid reuse against their create time.
        known: dict[int, psutil.Process] = {}
        for pid in pids:
            if pid in self._children:
                known[pid] = self._children[pid]
                continue
            with contextlib.suppress(psutil.Error):
                known[pid] = psutil.Process(pid)
        self._children = known
        return list(known.values())

    def read(self) -> tuple[float, int, tuple[int, int] | None]:
        """(CPU seconds, RSS bytes, (read, write) bytes or None); the last values once the process is gone."""
        if not self.alive:
            return self._last_cpu, self._last_rss, self._last_io
        try:
            with self.proc.oneshot():
                cpu = _own_cpu() if self.is_self else _proc_cpu(self.proc)
                rss = self.proc.memory_info().rss
                io = None
                if self.has_io:
                    counters = self.proc.io_counters()
                    io = (counters.read_bytes, counters.write_bytes)
        except psutil.Error:
            self.alive = False
            return self._last_cpu, self._last_rss, self._last_io
        for child in self._descendants():
            with contextlib.suppress(psutil.Error):
                cpu += _proc_cpu(child)
        # A child that died unreaped takes its time with it; never let the cumulative figure go backwards.
        self._last_cpu = max(self._last_cpu, cpu)
        self._last_rss, self._last_io = rss, io
        return self._last_cpu, rss, io


def _system_disk() -> tuple[int, int] | None:
    try:
        counters = psutil.disk_io_counters()
    except (OSError, RuntimeError):
        return None
    return None if counters is None else (counters.read_bytes, counters.write_bytes)


def _net() -> tuple[int, int]:
    try:
        counters = psutil.net_io_counters()
    except (OSError, RuntimeError):
        return 0, 0
    return (counters.bytes_sent, counters.bytes_recv) if counters is not None else (0, 0)


# --- the sampler ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _RateBase:
    """The readings rates are measured from: the last sample whose rates were fresh."""

    at: float
    cpu_seconds: float
    sys_times: Any
    net: tuple[int, int]


@dataclass
class _GpuAccumulator:
    name: str
    memory_peak_mb: float = 0.0
    utilization_sum: float = 0.0
    count: int = 0


@dataclass
class _Accumulator:
    """Running aggregates, so a summary stays exact after the sample buffer drops its oldest samples."""

    count: int = 0
    rate_count: int = 0
    cpu_percent_peak: float = 0.0
    system_cpu_sum: float = 0.0
    mem_percent_sum: float = 0.0
    peak_rss_mb: float = 0.0
    gpus: dict[int, _GpuAccumulator] = field(default_factory=dict)


class ResourceMonitor:
    """Samples a process (default: this one, with its children) and the machine every `interval` seconds in a
    daemon thread. `start()` and `stop()` each take a sample on the spot, so even a run shorter than one interval
    has a start and an end reading.

        with ResourceMonitor(interval=1.0) as monitor:
            work()
        print(monitor.summary())
    """

    def __init__(
        self,
        interval: float = 1.0,
        *,
        pid: int | None = None,
        include_children: bool = True,
        gpus: bool = True,
        max_samples: int = 10_000,
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        self.interval = interval
        self.pid = pid if pid is not None else os.getpid()
        self.include_children = include_children
        self.read_gpus = gpus
        self._samples: deque[Sample] = deque(maxlen=max_samples)
        self._lock = threading.Lock()
        self._started = False
        self._probe: _ProcessProbe | None = None
        self._acc = _Accumulator()
        self._t0 = 0.0
        self._cpu0 = 0.0
        self._rate_base = _RateBase(0.0, 0.0, None, (0, 0))
        self._net0 = (0, 0)
        self._disk0: tuple[int, int] | None = None
        self.disk_source: DiskSource = "none"
        self._stopped = False
        self._start_rss_mb = 0.0
        self._start_maxrss_mb = 0.0
        self.sampler_cpu_seconds = 0.0
        """CPU time the monitoring itself has used (thread CPU time of `start()`, `stop()` and every `sample()`)."""

    # lifecycle

    def start(self) -> ResourceMonitor:
        if self._started:
            raise RuntimeError("monitor already started")
        self._started = True
        cpu_clock = time.thread_time()
        self._probe = _ProcessProbe(self.pid, self.include_children)
        if self._probe.is_self:
            self._start_maxrss_mb = _own_maxrss_mb()
        self._t0 = time.monotonic()
        first = self._probe.read()
        self._cpu0, _, io = first
        if io is not None:
            self._disk0, self.disk_source = io, "process"
        else:
            self._disk0 = _system_disk()
            self.disk_source = "system" if self._disk0 is not None else "none"
        self._net0 = _net()
        if self.read_gpus:
            NVML.read()  # initialise NVML before the first reading, so that its memory is not the step's
        self._rate_base = _RateBase(self._t0, 0.0, psutil.cpu_times(), self._net0)
        self.sampler_cpu_seconds += time.thread_time() - cpu_clock
        self._start_rss_mb = self.sample(first).rss_mb
        _SAMPLER.add(self, self._t0 + self.interval)
        return self

    def stop(self) -> MonitorSummary:
        """Stop sampling, take a last sample, and return the summary; stopping twice is harmless."""
        if not self._started:
            raise RuntimeError("monitor was never started")
        if not self._stopped:
            with self._lock:  # the sampler thread samples under this lock, so none of its samples comes later
                self._stopped = True
            _SAMPLER.remove(self)
            self.sample()
        return self.summary()

    def __enter__(self) -> ResourceMonitor:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _sample_if_running(self) -> None:
        """The sampler thread's sample: none once `stop()` has begun."""
        self._sample(None, unless_stopped=True)

    # sampling

    def sample(self, reading: tuple[float, int, tuple[int, int] | None] | None = None) -> Sample:
        """Take one sample now (from `reading`, the probe's, where just taken), record it and return it."""
        if self._probe is None:
            raise RuntimeError("monitor not started")
        sample = self._sample(reading)
        assert sample is not None
        return sample

    def _sample(
        self, reading: tuple[float, int, tuple[int, int] | None] | None, unless_stopped: bool = False
    ) -> Sample | None:
        cpu_clock = time.thread_time()
        with self._lock:
            if unless_stopped and self._stopped:
                return None
            sample, fresh = self._take(self._probe, reading)  # type: ignore[arg-type]
            self._record(sample, fresh)
            self.sampler_cpu_seconds += time.thread_time() - cpu_clock
        return sample

    def _take(
        self, probe: _ProcessProbe, reading: tuple[float, int, tuple[int, int] | None] | None = None
    ) -> tuple[Sample, bool]:
        """The sample, and whether its rates are fresh (measured over at least `MIN_RATE_WINDOW_S`) rather than
        carried over from the previous sample (the first sample, or `stop()` right after a thread sample)."""
        now = time.monotonic()
        cpu, rss, io = reading if reading is not None else probe.read()
        # Monitoring this process: its CPU time includes the sampling's own, which is not the work's.
        sampler = self.sampler_cpu_seconds if probe.is_self else 0.0
        last = self._samples[-1] if self._samples else None
        cpu_seconds = max(cpu - self._cpu0 - sampler, last.cpu_seconds if last else 0.0)
        sys_times, net = psutil.cpu_times(), _net()
        base = self._rate_base
        dt = now - base.at
        fresh = last is not None and dt >= MIN_RATE_WINDOW_S
        if fresh:
            cpu_percent = max(0.0, 100.0 * (cpu_seconds - base.cpu_seconds) / dt)
            system_cpu = _busy_percent(base.sys_times, sys_times)
            sent_rate = max(0.0, (net[0] - base.net[0]) / dt)
            recv_rate = max(0.0, (net[1] - base.net[1]) / dt)
            self._rate_base = _RateBase(now, cpu_seconds, sys_times, net)
        elif last is not None:
            cpu_percent, system_cpu = last.cpu_percent, last.system_cpu_percent
            sent_rate, recv_rate = last.net_sent_bytes_per_s, last.net_recv_bytes_per_s
        else:
            cpu_percent = system_cpu = sent_rate = recv_rate = 0.0

        disk = io if self.disk_source == "process" else _system_disk() if self.disk_source == "system" else None
        read_b, write_b = (disk[0] - self._disk0[0], disk[1] - self._disk0[1]) if disk and self._disk0 else (0, 0)
        gpus = tuple(
            GpuSample(g.index, g.name, g.utilization_percent, g.memory_used_bytes / MB, g.memory_total_bytes / MB)
            for g in (NVML.read() if self.read_gpus else ())
        )
        rss_mb = rss / MB
        sample = Sample(
            elapsed_s=now - self._t0,
            timestamp=time.time(),
            cpu_percent=cpu_percent,
            cpu_seconds=cpu_seconds,
            system_cpu_percent=system_cpu,
            rss_mb=rss_mb,
            peak_rss_mb=max(self._acc.peak_rss_mb, rss_mb),
            system_mem_percent=psutil.virtual_memory().percent,
            net_sent_bytes_per_s=sent_rate,
            net_recv_bytes_per_s=recv_rate,
            net_sent_bytes=max(0, net[0] - self._net0[0]),
            net_recv_bytes=max(0, net[1] - self._net0[1]),
            disk_read_bytes=max(0, read_b),
            disk_write_bytes=max(0, write_b),
            gpus=gpus,
        )
        return sample, fresh

    def _record(self, sample: Sample, fresh: bool) -> None:
        acc = self._acc
        if fresh:
            acc.rate_count += 1
            acc.cpu_percent_peak = max(acc.cpu_percent_peak, sample.cpu_percent)
            acc.system_cpu_sum += sample.system_cpu_percent
        acc.count += 1
        acc.mem_percent_sum += sample.system_mem_percent
        acc.peak_rss_mb = sample.peak_rss_mb
        for gpu in sample.gpus:
            g = acc.gpus.setdefault(gpu.index, _GpuAccumulator(gpu.name))
            g.memory_peak_mb = max(g.memory_peak_mb, gpu.memory_used_mb)
            g.utilization_sum += gpu.utilization_percent
            g.count += 1
        self._samples.append(sample)

    # reading

    @property
    def samples(self) -> list[Sample]:
        """The buffered samples, oldest first (at most `max_samples`)."""
        with self._lock:
            return list(self._samples)

    def latest(self) -> Sample:
        with self._lock:
            if not self._samples:
                raise RuntimeError("monitor not started")
            return self._samples[-1]

    def summary(self) -> MonitorSummary:
        with self._lock:
            if not self._samples:
                raise RuntimeError("monitor not started")
            acc, last = self._acc, self._samples[-1]
            duration = last.elapsed_s
            cpu_seconds = last.cpu_seconds
            peak_rss_mb = acc.peak_rss_mb
            if self._probe is not None and self._probe.is_self:
                # The kernel's high-water mark catches a peak between samples, when the run set a new one.
                maxrss = _own_maxrss_mb()
                if maxrss > self._start_maxrss_mb:
                    peak_rss_mb = max(peak_rss_mb, maxrss)
            return MonitorSummary(
                duration_s=duration,
                samples=acc.count,
                # time-weighted: exact for any run longer than the window CPU clocks can resolve
                cpu_percent_mean=100.0 * cpu_seconds / duration if duration >= MIN_RATE_WINDOW_S else None,
                cpu_percent_peak=acc.cpu_percent_peak if acc.rate_count else None,
                cpu_seconds=cpu_seconds,
                peak_rss_mb=peak_rss_mb,
                start_rss_mb=self._start_rss_mb,
                system_cpu_percent_mean=acc.system_cpu_sum / acc.rate_count if acc.rate_count else None,
                mem_percent_mean=acc.mem_percent_sum / acc.count,
                net_sent_bytes=last.net_sent_bytes,
                net_recv_bytes=last.net_recv_bytes,
                disk_read_bytes=last.disk_read_bytes,
                disk_write_bytes=last.disk_write_bytes,
                disk_source=self.disk_source,
                gpus=tuple(
                    GpuSummary(index, g.name, g.memory_peak_mb, g.utilization_sum / g.count)
                    for index, g in sorted(acc.gpus.items())
                ),
            )


class _Sampler:
    """One daemon thread per process that samples every running `ResourceMonitor` when it is due, every
    `interval` after its start; one that fell behind (a suspended machine, a long GIL hold) skips, never bursts.
    A thread of its own per monitor cost a thread start and a join per step, each waiting for the GIL."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: dict[ResourceMonitor, float] = {}
        self._thread: threading.Thread | None = None

    def add(self, monitor: ResourceMonitor, at: float) -> None:
        with self._cond:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sluice-resource-monitor", daemon=True)
                self._thread.start()
            self._due[monitor] = at
            self._cond.notify()

    def remove(self, monitor: ResourceMonitor) -> None:
        with self._cond:
            self._due.pop(monitor, None)

    def _run(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                ready = [m for m, at in self._due.items() if at <= now]
                if not ready:
                    self._cond.wait(min(self._due.values()) - now if self._due else None)
                    continue
                for m in ready:
                    after = self._due[m] + m.interval
                    self._due[m] = after if after >= now else now + m.interval
            for m in ready:
                try:
                    m._sample_if_running()
                except Exception:  # that monitor stops being sampled (as its own thread would have died), not all
                    self.remove(m)
                    threading.excepthook(threading.ExceptHookArgs((*sys.exc_info(), threading.current_thread())))


_SAMPLER = _Sampler()


def _new_sampler_after_fork() -> None:
    # A forked child has none of the parent's threads, and its copy of the condition may be held.
    global _SAMPLER
    _SAMPLER = _Sampler()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_sampler_after_fork)


class StepMonitor:
    """A `ResourceMonitor` around one op step, summarised as flat, numeric asset metadata.

    with StepMonitor(interval=0.5) as step:
        out = op.run(frame)
    metadata |= step.metadata()
    """

    def __init__(self, interval: float = 0.5, *, pid: int | None = None, include_children: bool = True) -> None:
        """`interval`: seconds between samples while the step runs (the recipe's `engine.monitor_interval_s`);
        the start and the end of the step are sampled whatever the interval."""
        self.monitor = ResourceMonitor(interval, pid=pid, include_children=include_children)
        self._summary: MonitorSummary | None = None

    def __enter__(self) -> StepMonitor:
        self.monitor.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._summary = self.monitor.stop()

    @property
    def summary(self) -> MonitorSummary:
        return self._summary if self._summary is not None else self.monitor.summary()

    def metadata(self) -> dict[str, float | int]:
        """`peak_rss_mb`, `rss_delta_mb` (peak RSS during the step minus RSS at its start: what the step itself
        needed, the figure the usage analyzer predicts memory from), `cpu_seconds`, `mem_percent_mean`,
        `disk_read_mb`, `disk_write_mb`, `net_mb`; `cpu_percent_mean` for steps of at least `MIN_RATE_WINDOW_S`;
        `cpu_percent_peak` when a sampled rate covered a full window; `gpu_mem_peak_mb` (highest GPU) and
        `gpu_util_mean` (mean over GPUs) when NVML saw a GPU. A figure that was not measured is left out."""
        s = self.summary
        meta: dict[str, float | int] = {
            "peak_rss_mb": round(s.peak_rss_mb, 1),
            "rss_delta_mb": round(max(0.0, s.peak_rss_mb - s.start_rss_mb), 1),
            "cpu_seconds": round(s.cpu_seconds, 3),
            "mem_percent_mean": round(s.mem_percent_mean, 1),
            "disk_read_mb": round(s.disk_read_bytes / MB, 3),
            "disk_write_mb": round(s.disk_write_bytes / MB, 3),
            "net_mb": round((s.net_sent_bytes + s.net_recv_bytes) / MB, 3),
        }
        if s.cpu_percent_mean is not None:
            meta["cpu_percent_mean"] = round(s.cpu_percent_mean, 1)
        if s.cpu_percent_peak is not None:
            meta["cpu_percent_peak"] = round(max(s.cpu_percent_peak, s.cpu_percent_mean or 0.0), 1)
        if s.gpus:
            meta["gpu_mem_peak_mb"] = round(max(g.memory_peak_mb for g in s.gpus), 1)
            meta["gpu_util_mean"] = round(statistics.fmean(g.utilization_mean for g in s.gpus), 1)
        return meta


# --- one-shot snapshot (the HTTP endpoints) -------------------------------------------------------------------


class CpuStats(BaseModel):
    percent: float = Field(description="Machine-wide busy share since the previous snapshot, 0-100.")
    per_cpu_percent: list[float] = Field(description="The same per logical CPU.")
    logical_cores: int
    physical_cores: int | None
    load_average: tuple[float, float, float] = Field(description="1, 5 and 15 minute load averages.")
    frequency_mhz: float | None = None


class MemoryStats(BaseModel):
    total_bytes: int
    available_bytes: int
    used_bytes: int
    percent: float
    swap_total_bytes: int
    swap_used_bytes: int
    swap_percent: float
    process_rss_bytes: int = Field(description="Resident memory of the serving process.")


class NetworkStats(BaseModel):
    bytes_sent: int = Field(description="Since boot, all interfaces.")
    bytes_recv: int
    packets_sent: int
    packets_recv: int
    sent_bytes_per_s: float = Field(description="Rate since the previous snapshot.")
    recv_bytes_per_s: float


class GpuDeviceStats(BaseModel):
    index: int
    name: str
    utilization_percent: float
    memory_used_bytes: int
    memory_total_bytes: int
    memory_percent: float


class GpuStats(BaseModel):
    available: bool = Field(description="NVML loaded and found at least one GPU.")
    driver_version: str | None = None
    devices: list[GpuDeviceStats] = Field(default_factory=list)


class SystemSnapshot(BaseModel):
    timestamp: datetime
    hostname: str
    cpu: CpuStats
    memory: MemoryStats
    network: NetworkStats
    gpu: GpuStats


class _RateState:
    """Previous readings for the rates of `snapshot()`: CPU % and network bytes/s since the last call."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.at: float | None = None
        self.cpu: Any = None
        self.per_cpu: Sequence[Any] = ()
        self.net: Any = None
        self.last: tuple[float, list[float], float, float] = (0.0, [], 0.0, 0.0)

    def rates(self, min_interval: float) -> tuple[float, list[float], float, float, Any]:
        """(CPU %, per-CPU %, sent B/s, recv B/s, current net counters). The first call waits `min_interval` for a
        baseline; a call within `MIN_RATE_WINDOW_S` of the previous one reuses its rates rather than divide by ~0."""
        with self.lock:
            if self.at is None:
                self.at, self.cpu, self.per_cpu = time.monotonic(), psutil.cpu_times(), psutil.cpu_times(percpu=True)
                self.net = psutil.net_io_counters()
                time.sleep(min_interval)
            now, net = time.monotonic(), psutil.net_io_counters()
            dt = now - self.at
            if dt < MIN_RATE_WINDOW_S:
                return (*self.last, net)
            cpu, per_cpu = psutil.cpu_times(), psutil.cpu_times(percpu=True)
            self.last = (
                _busy_percent(self.cpu, cpu),
                [_busy_percent(a, b) for a, b in zip(self.per_cpu, per_cpu, strict=False)],
                max(0.0, (net.bytes_sent - self.net.bytes_sent) / dt) if net and self.net else 0.0,
                max(0.0, (net.bytes_recv - self.net.bytes_recv) / dt) if net and self.net else 0.0,
            )
            self.at, self.cpu, self.per_cpu, self.net = now, cpu, per_cpu, net
            return (*self.last, net)


_RATES = _RateState()


def snapshot(min_interval: float = 0.1) -> SystemSnapshot:
    """The machine now: CPU, memory, network and GPUs. Rates are since the previous call in this process (the
    first call waits `min_interval` seconds to have one)."""
    cpu_percent, per_cpu, sent_rate, recv_rate, net = _RATES.rates(min_interval)
    try:
        freq = psutil.cpu_freq()
    except (OSError, RuntimeError, NotImplementedError):
        freq = None
    mem, swap = psutil.virtual_memory(), psutil.swap_memory()
    gpus = NVML.read()
    return SystemSnapshot(
        timestamp=datetime.now(timezone.utc),
        hostname=socket.gethostname(),
        cpu=CpuStats(
            percent=cpu_percent,
            per_cpu_percent=per_cpu,
            logical_cores=psutil.cpu_count(logical=True) or len(per_cpu),
            physical_cores=psutil.cpu_count(logical=False),
            load_average=tuple(round(x, 2) for x in psutil.getloadavg()),
            frequency_mhz=round(freq.current, 1) if freq else None,
        ),
        memory=MemoryStats(
            total_bytes=mem.total,
            available_bytes=mem.available,
            used_bytes=mem.total - mem.available,
            percent=mem.percent,
            swap_total_bytes=swap.total,
            swap_used_bytes=swap.used,
            swap_percent=swap.percent,
            process_rss_bytes=psutil.Process().memory_info().rss,
        ),
        network=NetworkStats(
            bytes_sent=net.bytes_sent if net else 0,
            bytes_recv=net.bytes_recv if net else 0,
            packets_sent=net.packets_sent if net else 0,
            packets_recv=net.packets_recv if net else 0,
            sent_bytes_per_s=round(sent_rate, 1),
            recv_bytes_per_s=round(recv_rate, 1),
        ),
        gpu=GpuStats(
            available=bool(gpus),
            driver_version=NVML.driver_version if gpus else None,
            devices=[
                GpuDeviceStats(
                    index=g.index,
                    name=g.name,
                    utilization_percent=g.utilization_percent,
                    memory_used_bytes=g.memory_used_bytes,
                    memory_total_bytes=g.memory_total_bytes,
                    memory_percent=round(100.0 * g.memory_used_bytes / g.memory_total_bytes, 1)
                    if g.memory_total_bytes
                    else 0.0,
                )
                for g in gpus
            ],
        ),
    )
