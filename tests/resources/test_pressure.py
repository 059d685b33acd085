"""The pressure guard with a fake monitor and a fake clock: nothing here really waits."""

from __future__ import annotations

import pytest

from resources.monitor import GpuSample, Sample
from resources.pressure import Pressure, PressureThresholds, ResourceManager


def sample(cpu: float = 10.0, mem: float = 20.0, gpu_used_mb: float | None = None) -> Sample:
    gpus = () if gpu_used_mb is None else (GpuSample(0, "Fake GPU", 50.0, gpu_used_mb, 1000.0),)
    return Sample(system_cpu_percent=cpu, system_mem_percent=mem, gpus=gpus)


class FakeMonitor:
    """A monitor-like source with a `samples` window the test controls."""

    def __init__(self, *samples: Sample) -> None:
        self.samples = list(samples)

    def latest(self) -> Sample:
        return self.samples[-1]


class LatestOnly:
    """A source with only `latest()`: the manager keeps its own window."""

    def __init__(self, *readings: Sample) -> None:
        self.readings = list(readings)

    def latest(self) -> Sample:
        return self.readings.pop(0) if len(self.readings) > 1 else self.readings[0]


class FakeTime:
    def __init__(self, on_sleep=None) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep:
            self.on_sleep(len(self.sleeps))


def manager(source, thresholds: PressureThresholds | None = None, fake_time: FakeTime | None = None):
    events: list[tuple[str, str]] = []
    fake_time = fake_time or FakeTime()
    guard = ResourceManager(
        source,
        thresholds,
        on_event=lambda kind, message: events.append((kind, message)),
        clock=fake_time.clock,
        sleep=fake_time.sleep,
    )
    return guard, events, fake_time


def test_window_mean_decides_not_one_spike() -> None:
    window = [sample(cpu=99.0)] + [sample(cpu=50.0)] * 4
    guard, _, _ = manager(FakeMonitor(*window))
    pressure = guard.pressure()
    assert pressure.ok
    assert pressure.values == {"cpu_percent": pytest.approx(59.8), "memory_percent": 20.0}


def test_only_the_latest_window_counts() -> None:
    old_pressure = [sample(mem=99.0)] * 10
    guard, _, _ = manager(FakeMonitor(*old_pressure, *[sample(mem=10.0)] * 3), PressureThresholds(window=3))
    assert guard.pressure().ok


def test_each_threshold_is_reported() -> None:
    guard, _, _ = manager(FakeMonitor(sample(cpu=95.0, mem=90.0, gpu_used_mb=950.0)))
    pressure = guard.pressure()
    assert pressure.exceeded == ["cpu_percent", "memory_percent", "gpu_memory_percent"]
    assert pressure.values["gpu_memory_percent"] == 95.0
    assert (
        pressure.describe(guard.thresholds)
        == "cpu_percent 95.0 > 90, memory_percent 90.0 > 85, gpu_memory_percent 95.0 > 90"
    )


def test_latest_only_source_builds_its_own_window() -> None:
    source = LatestOnly(sample(cpu=100.0), sample(cpu=100.0), sample(cpu=40.0))
    guard, _, _ = manager(source, PressureThresholds(window=2))
    assert guard.pressure().exceeded == ["cpu_percent"]  # [100]
    assert guard.pressure().exceeded == ["cpu_percent"]  # [100, 100]
    assert guard.pressure().ok  # [100, 40]: mean 70


def test_no_samples_no_pressure() -> None:
    guard, _, _ = manager(FakeMonitor())
    assert guard.pressure() == Pressure()
    assert guard.wait_for_capacity() == 0.0


def test_wait_returns_at_once_without_pressure() -> None:
    guard, events, fake_time = manager(FakeMonitor(sample()))
    assert guard.wait_for_capacity(timeout=10, poll=1) == 0.0
    assert events == [] and fake_time.sleeps == []


def test_wait_blocks_until_pressure_clears() -> None:
    monitor = FakeMonitor(sample(mem=95.0))

    def relieve(sleeps: int) -> None:
        if sleeps == 3:
            monitor.samples = [sample(mem=40.0)]

    guard, events, fake_time = manager(monitor, fake_time=FakeTime(relieve))
    assert guard.wait_for_capacity(timeout=60, poll=0.5) == pytest.approx(1.5)
    assert fake_time.sleeps == [0.5, 0.5, 0.5]
    assert [kind for kind, _ in events] == ["pressure_wait", "pressure_clear"]
    assert "memory_percent 95.0 > 85" in events[0][1]


def test_wait_gives_up_after_the_timeout() -> None:
    guard, events, fake_time = manager(FakeMonitor(sample(cpu=100.0)))
    assert guard.wait_for_capacity(timeout=2.5, poll=1.0) == pytest.approx(2.5)
    assert fake_time.sleeps == [1.0, 1.0, 0.5]
    assert [kind for kind, _ in events] == ["pressure_wait", "pressure_timeout"]


def test_batch_size_halves_under_memory_or_gpu_pressure_only() -> None:
    monitor = FakeMonitor(sample(cpu=100.0))
    guard, events, _ = manager(monitor)
    assert guard.adjust_batch_size(1000) == 1000  # CPU pressure alone does not shrink batches

    monitor.samples = [sample(mem=90.0)]
    assert guard.adjust_batch_size(1000) == 500
    assert guard.adjust_batch_size(500, min_batch=400) == 400
    assert guard.adjust_batch_size(400, min_batch=400) == 400
    assert guard.adjust_batch_size(1) == 1

    monitor.samples = [sample(gpu_used_mb=990.0)]
    assert guard.adjust_batch_size(64) == 32
    assert [kind for kind, _ in events] == ["batch_shrink"] * 3
    assert events[-1][1] == "batch size 64 -> 32: gpu_memory_percent 99.0 > 90"


def test_thresholds_are_validated() -> None:
    with pytest.raises(ValueError):
        PressureThresholds(memory_percent=120)
    with pytest.raises(ValueError):
        PressureThresholds(window=0)
