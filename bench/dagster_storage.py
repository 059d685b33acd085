"""What Dagster's SQLite storage costs a range run: the stock storage against Sluice's pooled one, with its
event batching (the default) and without (`DAGSTER_EVENT_BATCH_SIZE=0`).

One asset job of `--assets` chained partitioned assets, each a no-op step that records per-partition metadata
(as Sluice's steps do), run over a range of `--shards` dynamic partitions with the in-process executor. Each
storage gets a fresh instance in its own process, which runs the job twice and reports the second run (the
first also creates the instance's databases); `--runs` processes each, alternating; medians printed.

    python bench/dagster_storage.py [--assets 6] [--shards 8] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STOCK = "telemetry:\n  enabled: false\n"


def _job(assets: int):
    import dagster as dg

    parts = dg.DynamicPartitionsDefinition(name="shards")

    def make(i: int) -> dg.AssetsDefinition:
        @dg.asset(
            name=f"a{i}",
            partitions_def=parts,
            backfill_policy=dg.BackfillPolicy.single_run(),
            deps=[f"a{i - 1}"] if i else [],
        )
        def _asset(context):
            for k in context.partition_keys:
                context.add_asset_metadata({"rows": 1000, "seconds": 0.01}, partition_key=k)
            return dg.MaterializeResult(metadata={"shards": len(context.partition_keys)})

        return _asset

    defs = [make(i) for i in range(assets)]
    return dg.Definitions(
        assets=defs,
        jobs=[dg.define_asset_job("j", selection=[d.key for d in defs], executor_def=dg.in_process_executor)],
    ).resolve_job_def("j")


def child(storage: str, assets: int, shards: int, runs: int) -> None:
    import dagster as dg

    from resources.settings import SluiceHome

    home = Path(tempfile.mkdtemp(prefix=f"sluice-bench-{storage}-"))
    if storage == "stock":
        (home / "dagster_home").mkdir()
        (home / "dagster_home" / "dagster.yaml").write_text(STOCK)
        os.environ["DAGSTER_HOME"] = str(home / "dagster_home")
    else:  # the dagster.yaml `sluice run` writes on a fresh home
        if storage == "pooled_unbatched":
            os.environ["DAGSTER_EVENT_BATCH_SIZE"] = "0"  # what a user who turns batching off sets
        SluiceHome(home=home).ensure_dagster_home()
    instance = dg.DagsterInstance.get()
    keys = [f"k{i:03d}" for i in range(shards)]
    instance.add_dynamic_partitions("shards", keys)
    job = _job(assets)
    tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[-1]}
    walls = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = job.execute_in_process(instance=instance, tags=tags)
        walls.append(time.perf_counter() - t0)
        assert result.success
    print(json.dumps({"storage": storage, "walls": walls, "event_storage": type(instance.event_log_storage).__name__}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=6)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.assets, args.shards, args.runs)
        return
    walls: dict[str, list[float]] = {"stock": [], "pooled_unbatched": [], "pooled": []}
    for _ in range(args.runs):  # alternate them, one run per process start, so load hits all alike
        for storage in walls:
            cmd = [sys.executable, __file__, "--child", storage, "--assets", str(args.assets), "--shards"]
            out = subprocess.run(
                [*cmd, str(args.shards), "--runs", "2"], cwd=ROOT, capture_output=True, text=True, check=True
            )
            walls[storage].append(json.loads(out.stdout.strip().splitlines()[-1])["walls"][-1])
    stock, pooled = statistics.median(walls["stock"]), statistics.median(walls["pooled"])
    unbatched = statistics.median(walls["pooled_unbatched"])
    load = os.getloadavg()[0]
    print(f"range run of {args.assets} assets x {args.shards} shards, median of {args.runs} (load {load:.2f})")
    print(f"  Dagster's SQLite storage               : {stock:.3f} s")
    print(f"  PooledSqliteStorage, events one by one : {unbatched:.3f} s   ({stock / unbatched:.2f}x faster)")
    print(f"  PooledSqliteStorage, events batched    : {pooled:.3f} s   ({stock / pooled:.2f}x faster)")


if __name__ == "__main__":
    main()
