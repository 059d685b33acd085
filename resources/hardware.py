"""What this machine offers to the pools: usable CPUs, available memory, and GPUs with their free memory.

`detect_hardware()` never raises: without NVML (no driver, no `nvidia-ml-py`, a container without devices) the
machine simply has no GPUs. `Hardware.fake(...)` describes an imaginary machine for planner and pool tests.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field

import psutil

log = logging.getLogger(__name__)
_GIB = 1024**3


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as this process sees it. `index` is the CUDA ordinal (`cuda:<index>`; NVML lists GPUs in PCI bus
    order, which is CUDA's order on machines of identical GPUs or with `CUDA_DEVICE_ORDER=PCI_BUS_ID`);
    `visible_id` (the GPU's UUID) is what to put in `CUDA_VISIBLE_DEVICES` to give a fresh process this GPU."""

    index: int
    name: str
    total_gb: float
    free_gb: float
    visible_id: str = ""

    def __post_init__(self) -> None:
        if not self.visible_id:
            object.__setattr__(self, "visible_id", str(self.index))


@dataclass(frozen=True)
class Hardware:
    """Usable CPUs (affinity-aware), available (not total) memory in GiB, and the visible GPUs."""

    cpus: int
    memory_gb: float
    gpus: tuple[GpuInfo, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "gpus", tuple(self.gpus))

    @property
    def gpu_count(self) -> int:
        return len(self.gpus)

    @property
    def gpu_free_gb(self) -> float:
        return sum(g.free_gb for g in self.gpus)

    @classmethod
    def fake(cls, cpus: int = 32, memory_gb: float = 128, gpus: int = 2, gpu_memory_gb: float = 20) -> Hardware:
        """An imaginary machine: `gpus` identical GPUs with `gpu_memory_gb` free each."""
        return cls(
            cpus=cpus,
            memory_gb=float(memory_gb),
            gpus=tuple(GpuInfo(i, "Fake GPU", float(gpu_memory_gb), float(gpu_memory_gb)) for i in range(gpus)),
        )

    def describe(self) -> str:
        gpus = ", ".join(f"cuda:{g.index} {g.name} {g.free_gb:.1f}/{g.total_gb:.1f} GB free" for g in self.gpus)
        return f"{self.cpus} CPUs, {self.memory_gb:.1f} GB memory available, " + (
            f"{self.gpu_count} GPUs ({gpus})" if self.gpus else "no GPU"
        )


def usable_cpus() -> int:
    """CPUs this process may run on: its affinity mask where the OS has one, else the logical CPU count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return psutil.cpu_count(logical=True) or os.cpu_count() or 1


def detect_hardware() -> Hardware:
    return Hardware(
        cpus=usable_cpus(),
        memory_gb=psutil.virtual_memory().available / _GIB,
        gpus=tuple(detect_gpus()),
    )


def _visible_filter(env: str | None) -> list[str] | None:
    """`CUDA_VISIBLE_DEVICES` as a list of ids (indices or UUID prefixes); None when unset (all visible)."""
    if env is None:
        return None
    return [part.strip() for part in env.split(",") if part.strip()]


def detect_gpus() -> list[GpuInfo]:
    """GPUs through NVML, in the order `CUDA_VISIBLE_DEVICES` gives them; [] on any failure."""
    try:
        import pynvml  # nvidia-ml-py; imported here so machines without it still load Sluice
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # no driver, no device nodes: a CPU machine
        log.debug("NVML unavailable: %s", exc)
        return []
    try:
        devices = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            name = pynvml.nvmlDeviceGetName(handle)
            uuid = pynvml.nvmlDeviceGetUUID(handle)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            devices.append(
                (
                    str(i),
                    name.decode() if isinstance(name, bytes) else str(name),
                    uuid.decode() if isinstance(uuid, bytes) else str(uuid),
                    mem.total / _GIB,
                    mem.free / _GIB,
                )
            )
    except Exception as exc:
        log.warning("NVML query failed, treating this machine as having no GPU: %s", exc)
        return []
    finally:
        with contextlib.suppress(Exception):
            pynvml.nvmlShutdown()
    wanted = _visible_filter(os.environ.get("CUDA_VISIBLE_DEVICES"))
    if wanted is None:
        chosen = devices
    else:
        chosen = []
        for token in wanted:
            match = [d for d in devices if token == d[0] or (token.startswith("GPU-") and d[2].startswith(token))]
            if not match:
                break  # CUDA stops at the first invalid id
            chosen.append(match[0])
    return [
        GpuInfo(index=i, name=name, total_gb=total, free_gb=free, visible_id=uuid)
        for i, (_nvml_index, name, uuid, total, free) in enumerate(chosen)
    ]
