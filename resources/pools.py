"""Compute pools: the Dagster resources that hand a step its share of the machine and enforce it where the
runtime allows.

How many steps of an op run at once is decided by the op's Dagster pool (`pool=` on the asset, limit = the
op's `num_proc` from the plan, set by `apply_pool_limits`). A pool resource decides *what* one running step
gets: CPU threads, a GPU (or the CPU when none is granted or CUDA is missing), a memory budget and a batch
size, as an `Allocation`. `hold()` also takes one of the op's `num_proc` machine-local slots (a file lock)
for the step's duration: Dagster's slot claim on a SQLite instance is not atomic across processes (SQLite
ignores `SELECT ... FOR UPDATE`), so runs that start together can overshoot the pool limit by one or two; the
slot makes the limit exact on this machine, and numbers the workers so that equal GPUs get equal shares.

* `CpuPool`: everything on the CPU.
* `GpuPool`: a GPU for ops with `accelerator: cuda` when NVML shows one, chosen by free memory (ties broken by
  the worker slot, or a hash of the partition, so steps spread over equal GPUs), the CPU otherwise.
* `FakeGpuPool`: pretends `gpus` GPUs exist, so tests run the GPU-grant path on a CPU machine; the grant then
  falls back to the CPU (torch has no CUDA) and says so, exactly as a real pool does on a broken CUDA install.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import dagster as dg
from pydantic import Field

from ops_library.base import ResourceNeeds
from resources.hardware import GpuInfo, Hardware, detect_hardware
from resources.planner import OpPlan, Plan

if TYPE_CHECKING:
    from resources.engine import EngineSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Allocation:
    """What one step gets. `device` is where it runs ("cpu" or "cuda:<i>", as torch names it in this process);
    `gpu_index` the pool's GPU it runs on (None on the CPU); `granted` what the pool granted before a fallback,
    and `fallback` why the step runs on the CPU all the same."""

    device: str
    threads: int
    gpu_index: int | None
    memory_budget_gb: float | None
    batch_size: int
    memory_safety_factor: float = 0.8
    adaptive_batch_size: bool = True
    granted: str = "cpu"
    fallback: str = ""
    memory_fraction: float | None = None
    visible_devices: str | None = None
    slot: int | None = None
    slot_wait_s: float | None = None
    # Pieces each shard's frame is cut into, so polars' threads share one shard's work: the CPUs the step's
    # pool grants (`num_proc` x `num_cpus`) divided among the processes that run its shards.
    chunks: int = 1

    @property
    def on_gpu(self) -> bool:
        return self.device.startswith("cuda")

    def run_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of an op's `run` that takes a placement (see `TextEmbeddingMapper.run`)."""
        return {
            "device": self.device,
            "batch_size": self.batch_size,
            "memory_available_gb": self.memory_budget_gb if self.adaptive_batch_size else None,
            "memory_safety_factor": self.memory_safety_factor,
        }

    def metadata(self) -> dict[str, Any]:
        """Plain values for step metadata (`sluice/allocation`)."""
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}


def _request(request: OpPlan | ResourceNeeds) -> OpPlan:
    if isinstance(request, OpPlan):
        return request
    return OpPlan(
        op="",
        accelerator=request.accelerator,
        num_proc=1,
        num_cpus=request.cpus,
        num_gpus=request.gpus,
        memory_gb=request.memory_gb,
        pool="",
        source="explicit",
        batch_size=request.batch_size,
    )


def choose_gpu(gpus: Sequence[GpuInfo], key: str | int, need_gb: float | None = None) -> GpuInfo:
    """The GPU with the most free memory among those that fit `need_gb`; GPUs within 5% of the best count as
    equal, and `key` picks among them: a worker slot number round-robin, else a stable hash of a partition key,
    so equal GPUs share the steps."""
    fitting = [g for g in gpus if need_gb is None or g.free_gb >= need_gb] or list(gpus)
    best = max(g.free_gb for g in fitting)
    tied = [g for g in fitting if g.free_gb >= best * 0.95]
    index = key if isinstance(key, int) else zlib.crc32(key.encode())
    return tied[index % len(tied)]


@contextmanager
def local_slot(directory: Path, limit: int, timeout_s: float) -> Iterator[tuple[int, float]]:
    """Hold one of `limit` slots (exclusive `flock`s on `<directory>/<i>.lock`) until the block ends; yields
    (slot number, seconds waited). The OS drops the lock if the process dies, so no slot leaks."""
    import fcntl

    directory.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    delay = 0.01
    while True:
        for slot in range(limit):
            handle = open(directory / f"{slot}.lock", "a+")  # noqa: SIM115 - held until the block ends
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.close()
                continue
            try:
                yield slot, time.monotonic() - started
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
                handle.close()
            return
        if time.monotonic() - started > timeout_s:
            raise TimeoutError(f"all {limit} slots under {directory} stayed busy for {timeout_s:.0f} s")
        time.sleep(delay)
        delay = min(delay * 2, 0.25)


def _torch_cuda_devices() -> tuple[int, str]:
    """How many CUDA devices torch can use here, and why none when 0. Imports torch."""
    try:
        import torch
    except ImportError:
        return 0, "torch is not installed"
    try:
        if not torch.cuda.is_available():
            return 0, f"torch {torch.__version__} has no usable CUDA"
        return torch.cuda.device_count(), ""
    except Exception as exc:  # a broken driver install raises here
        return 0, f"CUDA failed to start: {exc}"


class ComputePool(dg.ConfigurableResource, ABC):
    """Hands each step an `Allocation` for its op's plan and enforces it. Subclasses say which GPUs exist."""

    memory_safety_factor: float = Field(0.8, gt=0, le=1, description="Share of a memory budget an op may fill.")
    adaptive_batch_size: bool = Field(True, description="Let ops shrink batches to fit their memory budget.")
    max_batch_size: int | None = Field(None, gt=0, description="Upper bound on any op's batch size.")
    min_batch_size: int = Field(1, gt=0, description="Lower bound on any op's batch size.")
    slots_dir: str | None = Field(None, description="Folder of the worker slot locks; default $SLUICE_HOME/slots.")
    slot_timeout_s: float = Field(3600.0, gt=0, description="Longest wait for a worker slot.")

    @classmethod
    def from_settings(cls, settings: EngineSettings, **config: Any) -> ComputePool:
        return cls(
            memory_safety_factor=settings.memory_safety_factor,
            adaptive_batch_size=settings.adaptive_batch_size,
            max_batch_size=settings.max_batch_size,
            min_batch_size=settings.min_batch_size,
            **config,
        )

    @abstractmethod
    def hardware(self) -> Hardware:
        """The machine as this pool sees it, now (free memory changes)."""

    def grants_gpus(self) -> bool:
        return True

    @contextmanager
    def hold(self, request: OpPlan, key: str = "", *, enforce: bool = True) -> Iterator[Allocation]:
        """Run one step of the op planned as `request` inside this block: one of the op's `num_proc` worker
        slots is held (waiting for a free one if need be) and the step gets its `Allocation`."""
        if not request.pool or sys.platform == "win32":
            yield self.allocate(request, key, enforce=enforce)
            return
        root = Path(self.slots_dir) if self.slots_dir else _default_slots_dir()
        with local_slot(root / quote(request.pool, safe=""), request.num_proc, self.slot_timeout_s) as (slot, waited):
            alloc = self.allocate(request, key, slot=slot, enforce=enforce)
            yield replace(alloc, slot=slot, slot_wait_s=round(waited, 3))

    def allocate(
        self, request: OpPlan | ResourceNeeds, key: str = "", *, slot: int | None = None, enforce: bool = True
    ) -> Allocation:
        """The share of one step (`key`: its partition or step key; `slot`: its worker number, when held) of
        the op planned as `request`."""
        plan = _request(request)
        hw = self.hardware()
        threads = max(1, min(hw.cpus, math.floor(plan.num_cpus + 1e-9)))
        batch = plan.batch_size
        if self.max_batch_size:
            batch = min(batch, self.max_batch_size)
        batch = max(batch, self.min_batch_size)
        cpu_budget = hw.memory_gb / max(1, plan.num_proc)
        alloc = Allocation(
            device="cpu",
            threads=threads,
            gpu_index=None,
            memory_budget_gb=round(cpu_budget, 3),
            batch_size=batch,
            memory_safety_factor=self.memory_safety_factor,
            adaptive_batch_size=self.adaptive_batch_size,
        )
        if plan.accelerator == "cuda" and self.grants_gpus() and hw.gpus:
            alloc = self._grant_gpu(alloc, plan, hw, key if slot is None else slot)
        elif plan.accelerator == "cuda":
            alloc = replace(alloc, fallback="no GPU in this pool: runs on the CPU")
        if enforce:
            self._enforce(alloc, uses_torch=plan.accelerator == "cuda")
        if alloc.fallback:
            log.info("%s %s: %s", plan.op, key, alloc.fallback)
        return alloc

    # --- GPU ---------------------------------------------------------------------------------------------------

    def _pin_visible_devices(self) -> bool:
        return False

    def _grant_gpu(self, alloc: Allocation, plan: OpPlan, hw: Hardware, key: str | int) -> Allocation:
        share = min(1.0, max(plan.num_gpus, 0.0))
        need = plan.memory_gb
        gpu = choose_gpu(hw.gpus, key, need)
        fraction = min(1.0, max(share, (need or 0.0) / gpu.total_gb if gpu.total_gb else 0.0)) or 1.0
        granted = f"cuda:{gpu.index}"
        visible = None
        device = granted
        if self._pin_visible_devices():
            visible, device = self._pin(gpu)
        count, why = _torch_cuda_devices()
        ordinal = 0 if visible is not None else gpu.index
        if count <= ordinal:
            reason = why or f"torch sees {count} CUDA device(s), not {device}"
            return replace(alloc, granted=granted, fallback=f"granted {granted}, but {reason}: runs on the CPU")
        return replace(
            alloc,
            device=device,
            gpu_index=gpu.index,
            memory_budget_gb=round(min(fraction * gpu.total_gb, gpu.free_gb), 3),
            granted=granted,
            memory_fraction=round(fraction, 4),
            visible_devices=visible,
        )

    def _pin(self, gpu: GpuInfo) -> tuple[str | None, str]:
        """In a process of its own, a step sees only its GPU: CUDA reads CUDA_VISIBLE_DEVICES once, when it
        starts, so this works only before torch has touched CUDA; afterwards the device index selects it."""
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_initialized():
            return None, f"cuda:{gpu.index}"
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu.visible_id
        return gpu.visible_id, "cuda:0"

    # --- enforcement -------------------------------------------------------------------------------------------

    def _enforce(self, alloc: Allocation, uses_torch: bool) -> None:
        """Thread counts for torch (polars fixes its pool when imported: set POLARS_MAX_THREADS per process) and
        the CUDA memory cap of this process."""
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(alloc.threads)
        torch = sys.modules.get("torch")
        if torch is None and uses_torch:
            import torch
        if torch is None:
            return
        torch.set_num_threads(alloc.threads)
        if alloc.on_gpu and alloc.memory_fraction is not None and torch.cuda.is_available():
            torch.cuda.set_per_process_memory_fraction(alloc.memory_fraction, torch.device(alloc.device))


def _default_slots_dir() -> Path:
    from resources.settings import sluice_home

    return sluice_home().root / "slots"


class CpuPool(ComputePool):
    """Runs every step on the CPU."""

    def hardware(self) -> Hardware:
        hw = detect_hardware()
        return Hardware(cpus=hw.cpus, memory_gb=hw.memory_gb)

    def grants_gpus(self) -> bool:
        return False


class GpuPool(ComputePool):
    """GPUs for CUDA ops when NVML sees any, the CPU otherwise. `pin_visible_devices`: each step runs in a
    process of its own (multiprocess executor), so it may set CUDA_VISIBLE_DEVICES to its one GPU."""

    gpu_indices: list[int] | None = Field(None, description="Only these GPUs (CUDA ordinals); default all.")
    pin_visible_devices: bool = Field(False, description="Set CUDA_VISIBLE_DEVICES per step process.")

    def hardware(self) -> Hardware:
        hw = detect_hardware()
        if self.gpu_indices is None:
            return hw
        return Hardware(hw.cpus, hw.memory_gb, tuple(g for g in hw.gpus if g.index in self.gpu_indices))

    def _pin_visible_devices(self) -> bool:
        return self.pin_visible_devices


class FakeGpuPool(ComputePool):
    """Pretends `gpus` GPUs of `gpu_memory_gb` exist (test double): the GPU-grant path runs on any machine,
    and the step falls back to the CPU when torch cannot reach that device."""

    gpus: int = Field(1, ge=0)
    gpu_memory_gb: float = Field(20.0, gt=0)

    def hardware(self) -> Hardware:
        hw = detect_hardware()
        return Hardware.fake(cpus=hw.cpus, memory_gb=hw.memory_gb, gpus=self.gpus, gpu_memory_gb=self.gpu_memory_gb)


def apply_pool_limits(instance: dg.DagsterInstance, plan: Plan | Mapping[str, int]) -> dict[str, int]:
    """Set each op's Dagster pool limit to its worker count (what `dagster instance concurrency set` does), so
    that across all runs on this instance at most that many steps of the op run at once. Returns the limits."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        raise RuntimeError(
            "this Dagster instance's storage has no concurrency tables; run `dagster instance migrate` "
            f"(DAGSTER_HOME={os.environ.get('DAGSTER_HOME', '?')})"
        )
    limits = plan.pool_limits() if isinstance(plan, Plan) else dict(plan)
    for pool, limit in limits.items():
        if limit < 1:
            raise ValueError(f"pool {pool}: limit must be at least 1, got {limit}")
        if storage.get_concurrency_info(pool).slot_count != limit:
            storage.set_concurrency_slots(pool, limit)
    return limits
