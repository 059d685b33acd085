"""A one-asset job for the pool enforcement test (tests/resources/test_pool_enforcement.py): each partition
is a step of an op at `num_gpus: 0.25` in its Dagster pool. It holds a worker slot of the fake one-GPU pool
for `SLUICE_POOL_TEST_HOLD_S` seconds and writes when it started and ended into `SLUICE_POOL_TEST_DIR`.

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
PARTITIONS = dg.StaticPartitionsDefinition([f"p{i}" for i in range(16)])


@dg.asset(partitions_def=PARTITIONS, pool=POOL)
def gpu_step(context: dg.AssetExecutionContext, gpu_pool: FakeGpuPool) -> dg.MaterializeResult:
    with gpu_pool.hold(PLAN["gpu_step"], key=context.partition_key, enforce=False) as allocation:
        start = time.time()
        time.sleep(float(os.environ.get("SLUICE_POOL_TEST_HOLD_S", "1.0")))
        end = time.time()
    record = {"start": start, "end": end, **allocation.metadata()}
    (Path(os.environ["SLUICE_POOL_TEST_DIR"]) / f"{context.partition_key}.json").write_text(json.dumps(record))
    return dg.MaterializeResult(metadata=record)


defs = dg.Definitions(
    assets=[gpu_step],
    resources={"gpu_pool": FakeGpuPool(gpus=1, slots_dir=dg.EnvVar("SLUICE_POOL_TEST_SLOTS"))},
    executor=dg.in_process_executor,
)
