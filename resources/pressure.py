"""A pressure guard over a resource monitor: when machine CPU, memory or GPU memory stay above their thresholds
over a window of samples, new steps wait and batch sizes shrink, and each decision is reported as an event.

The window's mean is compared, so one spike neither blocks nor shrinks anything.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from pydantic import BaseModel, Field

from resources.monitor import Sample

EventCallback = Callable[[str, str], None]

CPU, MEMORY, GPU_MEMORY = "cpu_percent", "memory_percent", "gpu_memory_percent"


class PressureThresholds(BaseModel):
    cpu_percent: float = Field(90.0, ge=0, le=100, description="Machine CPU busy %, mean over the window.")
    memory_percent: float = Field(85.0, ge=0, le=100, description="Machine memory used %, mean over the window.")
    gpu_memory_percent: float = Field(
        90.0, ge=0, le=100, description="Memory used % of the fullest GPU, mean over the window."
    )
    window: int = Field(5, ge=1, description="How many of the latest samples are observed.")


class SampleSource(Protocol):
    def latest(self) -> Sample: ...


@dataclass(frozen=True)
class Pressure:
    exceeded: list[str] = field(default_factory=list)
    """Names of the figures above their thresholds: `cpu_percent`, `memory_percent`, `gpu_memory_percent`."""
    values: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.exceeded

    def describe(self, thresholds: PressureThresholds) -> str:
        return ", ".join(f"{name} {self.values[name]:.1f} > {getattr(thresholds, name):g}" for name in self.exceeded)


class ResourceManager:
    """Decides whether a new step may start now, and how big its batches should be.

    `source` is a `ResourceMonitor` (its `samples` give the window) or anything with `latest()` (the manager
    then keeps its own window of what `latest()` returned at each `pressure()` call). `clock` and `sleep` are
    injectable so tests need not wait.
    """

    def __init__(
        self,
        source: SampleSource,
        thresholds: PressureThresholds | None = None,
        *,
        on_event: EventCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.source = source
        self.thresholds = thresholds or PressureThresholds()
        self.on_event = on_event or (lambda kind, message: None)
        self.clock = clock
        self.sleep = sleep
        self._seen: deque[Sample] = deque(maxlen=self.thresholds.window)

    def _window(self) -> Sequence[Sample]:
        samples = getattr(self.source, "samples", None)
        if samples is not None:
            return list(samples)[-self.thresholds.window :]
        self._seen.append(self.source.latest())
        return self._seen

    def pressure(self) -> Pressure:
        window = self._window()
        if not window:
            return Pressure()
        values = {
            CPU: statistics.fmean(s.system_cpu_percent for s in window),
            MEMORY: statistics.fmean(s.system_mem_percent for s in window),
        }
        gpu_indexes = {g.index for s in window for g in s.gpus}
        if gpu_indexes:
            values[GPU_MEMORY] = max(
                statistics.fmean(g.memory_percent for s in window for g in s.gpus if g.index == index)
                for index in gpu_indexes
            )
        t = self.thresholds
        limits = {CPU: t.cpu_percent, MEMORY: t.memory_percent, GPU_MEMORY: t.gpu_memory_percent}
        return Pressure([name for name, value in values.items() if value > limits[name]], values)

    def wait_for_capacity(self, timeout: float = 300.0, poll: float = 1.0) -> float:
        """Block while any threshold is exceeded, at most `timeout` seconds; return the seconds waited. After the
        timeout the step goes ahead anyway (a `pressure_timeout` event says so): a guard must not deadlock a run."""
        started = self.clock()
        pressure = self.pressure()
        if pressure.ok:
            return 0.0
        self.on_event("pressure_wait", f"waiting for capacity: {pressure.describe(self.thresholds)}")
        while not pressure.ok:
            waited = self.clock() - started
            if waited >= timeout:
                self.on_event(
                    "pressure_timeout",
                    f"going ahead after {waited:.1f} s under pressure: {pressure.describe(self.thresholds)}",
                )
                return waited
            self.sleep(min(poll, timeout - waited))
            pressure = self.pressure()
        waited = self.clock() - started
        self.on_event("pressure_clear", f"capacity back after {waited:.1f} s")
        return waited

    def adjust_batch_size(self, batch_size: int, min_batch: int = 1) -> int:
        """Half of `batch_size` (not below `min_batch`) while memory or GPU memory pressure is exceeded, else
        `batch_size` unchanged. Called before each batch, it keeps halving for as long as the pressure lasts."""
        pressure = self.pressure()
        squeezed = [name for name in pressure.exceeded if name in (MEMORY, GPU_MEMORY)]
        if not squeezed or batch_size <= min_batch:
            return batch_size
        smaller = max(min_batch, batch_size // 2)
        self.on_event(
            "batch_shrink",
            f"batch size {batch_size} -> {smaller}: {Pressure(squeezed, pressure.values).describe(self.thresholds)}",
        )
        return smaller
