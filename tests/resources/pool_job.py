"""A one-asset job for the pool enforcement test (tests/resources/test_pool_enforcement.py): each partition
is a step of an op at `num_gpus: 0.25` in its Dagster pool. It holds a worker slot of the fake one-GPU pool
and writes when it started and ended into `SLUICE_POOL_TEST_DIR`.

Timing decides nothing: inside its slot each of the first `LIMIT` steps waits at a barrier (files in
`SLUICE_POOL_TEST_DIR`) until all `LIMIT` are inside together and every other of the `SLUICE_POOL_TEST_RUNS`
steps is queued behind them (blocked by the Dagster pool, or waiting for a worker slot). So with a working limit
exactly `LIMIT` steps overlap, and steps demonstrably waited, on any machine load. Later steps do not wait.

A step blocked by the Dagster pool is any of its pending steps that holds no slot, not only the ones Dagster counts
as `pending_step_count` (those it has not assigned yet): its claim races on SQLite, so with steps arriving together
more than `LIMIT` can be assigned, and an assigned step that finds no free slot waits, still assigned, until one is
freed. Counting only the unassigned ones, the barrier never saw all the others queued and held the first `LIMIT`
steps for `BARRIER_TIMEOUT_S`, then the test failed.

    dagster asset materialize -f tests/resources/pool_job.py --select '*' --partition p3
"""

import json
import os
import time
from pathlib import Path

import dagster as dg
import torch  # noqa: F401 - imported with the code location, not while the step holds its slot

from resources.hardware import Hardware
from resources.planner import OpDemand, plan_recipe
from resources.pools import FakeGpuPool

PLAN = plan_recipe([OpDemand("gpu_step", accelerator="cuda", num_gpus=0.25)], Hardware.fake(gpus=1), recipe="pool_test")
POOL = PLAN["gpu_step"].pool
LIMIT = PLAN["gpu_step"].num_proc
PARTITIONS = dg.StaticPartitionsDefinition([f"p{i}" for i in range(16)])
BARRIER_TIMEOUT_S = 240.0


def _count(folder: Path) -> int:
    return len(os.listdir(folder))


def _queued_at_pool(context: dg.AssetExecutionContext, arrived: set[str]) -> int:
    """Steps blocked by the Dagster pool: its pending steps, assigned or not, whose run neither holds one of its
    slots nor is in `arrived` (run ids of the steps past the pool: when two claims wrote the same slot row, one of
    them holds no slot there yet runs)."""
    info = context.instance.event_log_storage.get_concurrency_info(POOL)
    through = arrived | {slot.run_id for slot in info.claimed_slots}
    return sum(step.run_id not in through for step in info.pending_steps)


def _arrived(out: Path) -> set[str]:
    """Run ids of the steps past the Dagster pool (files `arrived/<partition>.<run id>`)."""
    return {name.split(".", 1)[1] for name in os.listdir(out / "arrived")}


def _barrier(context: dg.AssetExecutionContext, out: Path) -> dict[str, object]:
    """For the first `LIMIT` steps: wait (inside the slot) until all of them are inside and every later step is
    queued; say what was seen when it let go."""
    runs = int(os.environ["SLUICE_POOL_TEST_RUNS"])
    (out / "entered" / context.partition_key).touch()
    order = _count(out / "entered")
    deadline = time.monotonic() + BARRIER_TIMEOUT_S
    while True:
        entered = _count(out / "entered")
        arrived = _arrived(out)
        slot_waiting = len(arrived) - entered
        dagster_pending = _queued_at_pool(context, arrived)
        if order > LIMIT or (entered >= LIMIT and dagster_pending + slot_waiting >= runs - LIMIT):
            return {
                "order": order,
                "dagster_pending": dagster_pending,
                "slot_waiting": slot_waiting,
                "timed_out": False,
            }
        if time.monotonic() > deadline:
            return {"order": order, "dagster_pending": dagster_pending, "slot_waiting": slot_waiting, "timed_out": True}
        time.sleep(0.05)


@dg.asset(partitions_def=PARTITIONS, pool=POOL)
def gpu_step(context: dg.AssetExecutionContext, gpu_pool: FakeGpuPool) -> dg.MaterializeResult:
    out = Path(os.environ["SLUICE_POOL_TEST_DIR"])
    for folder in ("arrived", "entered"):
        (out / folder).mkdir(exist_ok=True)
    (out / "arrived" / f"{context.partition_key}.{context.run_id}").touch()  # past the Dagster pool, before the slot
    with gpu_pool.hold(PLAN["gpu_step"], key=context.partition_key, enforce=False) as allocation:
        start = time.time()
        seen = _barrier(context, out)
        time.sleep(0.2)
        end = time.time()
    record = {"start": start, "end": end, **seen, **allocation.metadata()}
    (out / f"{context.partition_key}.json").write_text(json.dumps(record))
    return dg.MaterializeResult(metadata=record)


defs = dg.Definitions(
    assets=[gpu_step],
    resources={"gpu_pool": FakeGpuPool(gpus=1, slots_dir=dg.EnvVar("SLUICE_POOL_TEST_SLOTS"))},
    executor=dg.in_process_executor,
)
