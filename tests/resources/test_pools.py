"""Compute pools: what a step gets (threads, device, memory, batch), the GPU grant and its CPU fallback, and
the Dagster pool limits they set."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import dagster as dg
import pytest
import torch

from ops_library.base import ResourceNeeds
from resources import pools
from resources.engine import EngineSettings
from resources.hardware import GpuInfo, Hardware
from resources.planner import OpDemand, plan_recipe
from resources.pools import Allocation, ComputePool, CpuPool, FakeGpuPool, GpuPool, apply_pool_limits, choose_gpu

EMBEDDING = ResourceNeeds(cpus=1, gpus=0.25, memory_gb=1.0, batch_size=32, accelerator="cuda")
POLARS_OP = ResourceNeeds(cpus=2, batch_size=1000)
no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback of a machine without CUDA")


@pytest.fixture(autouse=True)
def _restore_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    threads = torch.get_num_threads()
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES"):
        monkeypatch.delenv(var, raising=False)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch) -> Hardware:
    """Detection sees 4 CPUs, 16 GB and two 20 GB GPUs (the first busier); torch reaches both GPUs."""
    hw = Hardware(
        cpus=4,
        memory_gb=16.0,
        gpus=(GpuInfo(0, "Fake A", 20.0, 8.0, "GPU-a"), GpuInfo(1, "Fake B", 20.0, 19.0, "GPU-b")),
    )
    monkeypatch.setattr(pools, "detect_hardware", lambda: hw)
    monkeypatch.setattr(pools, "_torch_cuda_devices", lambda: (2, ""))
    return hw


def test_the_base_pool_is_abstract() -> None:
    with pytest.raises(TypeError, match="abstract"):
        ComputePool()  # type: ignore[abstract]


def test_a_cpu_op_gets_its_threads_batch_and_share_of_memory(machine: Hardware) -> None:
    plan = plan_recipe([OpDemand("op", needs=POLARS_OP)], machine).ops[0]  # 2 workers of 2 CPUs
    alloc = CpuPool().allocate(plan, key="shard@00001")
    assert (alloc.device, alloc.threads, alloc.gpu_index, alloc.batch_size) == ("cpu", 2, None, 1000)
    assert alloc.memory_budget_gb == 8.0  # 16 GB over the op's 2 workers
    assert os.environ["OMP_NUM_THREADS"] == "2"


def test_threads_stay_within_the_machine_and_at_least_one(machine: Hardware) -> None:
    assert CpuPool().allocate(ResourceNeeds(cpus=64), enforce=False).threads == 4
    assert CpuPool().allocate(ResourceNeeds(cpus=0.5), enforce=False).threads == 1


def test_torch_ops_get_torch_threads_set() -> None:
    alloc = CpuPool().allocate(ResourceNeeds(cpus=1, accelerator="cuda"))
    assert torch.get_num_threads() == alloc.threads == 1
    assert alloc.fallback == "no GPU in this pool: runs on the CPU"


def test_batch_size_is_bounded_by_the_engine_settings(machine: Hardware) -> None:
    pool = CpuPool.from_settings(EngineSettings(max_batch_size=16, min_batch_size=4, memory_safety_factor=0.5))
    assert pool.allocate(ResourceNeeds(batch_size=1000), enforce=False).batch_size == 16
    assert pool.allocate(ResourceNeeds(batch_size=2), enforce=False).batch_size == 4
    alloc = pool.allocate(ResourceNeeds(), enforce=False)
    assert alloc.run_kwargs()["memory_safety_factor"] == 0.5


def test_run_kwargs_leave_out_the_memory_budget_when_batches_do_not_adapt(machine: Hardware) -> None:
    adaptive = CpuPool().allocate(EMBEDDING, enforce=False).run_kwargs()
    fixed = CpuPool(adaptive_batch_size=False).allocate(EMBEDDING, enforce=False).run_kwargs()
    assert adaptive["memory_available_gb"] == 16.0
    assert fixed == {**adaptive, "memory_available_gb": None}


def test_the_gpu_pool_grants_the_freest_gpu_its_share(machine: Hardware) -> None:
    plan = plan_recipe([OpDemand("emb", needs=EMBEDDING)], machine).ops[0]
    alloc = GpuPool().allocate(plan, key="p0", enforce=False)
    assert (alloc.device, alloc.gpu_index, alloc.granted, alloc.fallback) == ("cuda:1", 1, "cuda:1", "")
    assert alloc.memory_fraction == 0.25
    assert alloc.memory_budget_gb == 5.0  # a quarter of 20 GB
    assert alloc.batch_size == 32
    assert alloc.on_gpu
    assert alloc.metadata()["device"] == "cuda:1"


def test_a_step_in_its_own_process_sees_only_its_gpu(machine: Hardware) -> None:
    alloc = GpuPool(pin_visible_devices=True).allocate(EMBEDDING, key="p0", enforce=False)
    assert (alloc.visible_devices, alloc.device, alloc.gpu_index) == ("GPU-b", "cuda:0", 1)
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "GPU-b"


def test_cpu_ops_in_the_gpu_pool_stay_on_the_cpu(machine: Hardware) -> None:
    alloc = GpuPool().allocate(POLARS_OP, enforce=False)
    assert (alloc.device, alloc.granted, alloc.fallback) == ("cpu", "cpu", "")


def test_the_gpu_pool_falls_back_when_torch_cannot_reach_the_gpu(
    machine: Hardware, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pools, "_torch_cuda_devices", lambda: (0, "torch 2.13.0+cpu has no usable CUDA"))
    alloc = GpuPool().allocate(EMBEDDING, key="p0", enforce=False)
    assert (alloc.device, alloc.gpu_index, alloc.granted) == ("cpu", None, "cuda:1")
    assert alloc.fallback == "granted cuda:1, but torch 2.13.0+cpu has no usable CUDA: runs on the CPU"


def test_the_gpu_pool_without_gpus_runs_everything_on_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pools, "detect_hardware", lambda: Hardware(cpus=2, memory_gb=8.0))
    alloc = GpuPool().allocate(EMBEDDING, enforce=False)
    assert (alloc.device, alloc.granted) == ("cpu", "cpu")
    assert "no GPU" in alloc.fallback


@no_cuda
def test_the_fake_gpu_pool_grants_a_gpu_and_the_step_falls_back_to_the_cpu() -> None:
    pool = FakeGpuPool(gpus=2)
    assert pool.hardware().gpu_count == 2
    alloc = pool.allocate(EMBEDDING, key="shard@00003")
    assert alloc.granted in ("cuda:0", "cuda:1")
    assert (alloc.device, alloc.gpu_index, alloc.memory_fraction) == ("cpu", None, None)
    assert alloc.fallback.startswith(f"granted {alloc.granted}, but torch")
    assert alloc.fallback.endswith("has no usable CUDA: runs on the CPU")
    assert torch.get_num_threads() == alloc.threads == 1


def test_the_fake_gpu_pool_spreads_partitions_over_its_gpus() -> None:
    pool = FakeGpuPool(gpus=2)
    granted = {pool.allocate(EMBEDDING, key=f"shard@{i:05d}", enforce=False).granted for i in range(16)}
    assert granted == {"cuda:0", "cuda:1"}


def test_choose_gpu_prefers_free_memory_and_spreads_ties() -> None:
    busy, free = GpuInfo(0, "a", 20.0, 4.0), GpuInfo(1, "b", 20.0, 18.0)
    assert choose_gpu([busy, free], "any") is free
    equal = [GpuInfo(i, "g", 20.0, 20.0) for i in range(4)]
    assert {choose_gpu(equal, f"k{i}").index for i in range(32)} == {0, 1, 2, 3}
    assert choose_gpu(equal, "k1") is choose_gpu(equal, "k1")  # stable across calls and processes
    assert choose_gpu([busy, GpuInfo(1, "b", 20.0, 3.0)], "k", need_gb=3.5) is busy  # only one fits


def test_allocation_metadata_leaves_out_empty_fields() -> None:
    meta = Allocation(device="cpu", threads=2, gpu_index=None, memory_budget_gb=None, batch_size=8).metadata()
    assert meta == {
        "device": "cpu",
        "threads": 2,
        "batch_size": 8,
        "memory_safety_factor": 0.8,
        "adaptive_batch_size": True,
        "granted": "cpu",
        "chunks": 1,
    }


# --- Dagster pool limits ----------------------------------------------------------------------------------------------


def test_apply_pool_limits_sets_each_ops_pool_to_its_workers(tmp_path: Path) -> None:
    (tmp_path / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    plan = plan_recipe(
        [OpDemand("op00_clean"), OpDemand("op01_emb", needs=EMBEDDING)], Hardware.fake(cpus=4), recipe="emb"
    )
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert apply_pool_limits(instance, plan) == {"sluice/emb/op00_clean": 4, "sluice/emb/op01_emb": 4}
        limits = {p.name: p.limit for p in instance.event_log_storage.get_pool_limits()}
        assert limits == {"sluice/emb/op00_clean": 4, "sluice/emb/op01_emb": 4}
        apply_pool_limits(instance, {"sluice/emb/op01_emb": 2})
        assert instance.event_log_storage.get_concurrency_info("sluice/emb/op01_emb").slot_count == 2
        with pytest.raises(ValueError, match="at least 1"):
            apply_pool_limits(instance, {"sluice/emb/op01_emb": 0})


def test_apply_pool_limits_needs_a_persistent_instance() -> None:
    with dg.DagsterInstance.ephemeral() as instance, pytest.raises(RuntimeError, match="concurrency"):
        apply_pool_limits(instance, {"x": 1})


# --- worker slots -------------------------------------------------------------------------------------------------


def test_hold_numbers_the_workers_and_never_exceeds_the_ops_limit(tmp_path: Path) -> None:
    plan = plan_recipe([OpDemand("emb", needs=EMBEDDING)], Hardware.fake(gpus=1), recipe="r")["emb"]
    assert plan.num_proc == 4
    pool = FakeGpuPool(gpus=1, slots_dir=str(tmp_path), slot_timeout_s=0.05)
    with ExitStack() as stack:
        held = [stack.enter_context(pool.hold(plan, key=f"p{i}", enforce=False)) for i in range(4)]
        assert [a.slot for a in held] == [0, 1, 2, 3]
        assert all(a.slot_wait_s is not None and a.slot_wait_s < 1 for a in held)
        with pytest.raises(TimeoutError, match="all 4 slots"), pool.hold(plan, key="p4", enforce=False):
            pass  # pragma: no cover - a fifth worker never gets in
    with pool.hold(plan, key="p5", enforce=False) as again:
        assert again.slot == 0  # freed when the block ended


def test_a_held_slot_picks_the_gpu_round_robin(tmp_path: Path) -> None:
    plan = plan_recipe([OpDemand("emb", needs=EMBEDDING)], Hardware.fake(gpus=2), recipe="r")["emb"]
    pool = FakeGpuPool(gpus=2, slots_dir=str(tmp_path))
    with ExitStack() as stack:
        granted = [stack.enter_context(pool.hold(plan, enforce=False)).granted for _ in range(plan.num_proc)]
    assert granted == ["cuda:0", "cuda:1"] * 4


def test_a_slot_is_freed_when_the_step_fails(tmp_path: Path) -> None:
    plan = plan_recipe([OpDemand("x", num_proc=1)], Hardware.fake(), recipe="r")["x"]
    pool = CpuPool(slots_dir=str(tmp_path), slot_timeout_s=0.05)
    with pytest.raises(RuntimeError, match="op failed"), pool.hold(plan, enforce=False):
        raise RuntimeError("op failed")
    with pool.hold(plan, enforce=False) as alloc:
        assert alloc.slot == 0
