"""Per-step overhead of Dagster's in-process vs multiprocess executor on the demo recipe.

Runs `sluice run` on a copy of recipes/demo.yaml (same ops, shards of --size rows) in a fresh temp home,
--repeat times per executor, and prints wall time, op work and overhead per step (median of the repeats).
The demo corpus is built once and shared by the runs.

    python bench/executor_overhead.py [--repeat 3] [--size 10000]
"""

from __future__ import annotations

import argparse
import os
import statistics

import yaml
from _demo import demo_workspace


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", type=int, default=10_000, help="rows per shard")
    parser.add_argument("--executors", default="in_process,multiprocess")
    args = parser.parse_args()

    from pipeline_defs.execute import run_recipe

    work, recipe = demo_workspace("sluice_bench_", args.size)
    print(f"{'executor':<14}{'runs':>6}{'steps':>7}{'wall s':>9}{'op work s':>11}{'overhead/step ms':>18}")
    for executor in args.executors.split(","):
        walls, work_s, per_step = [], [], []
        for i in range(args.repeat):
            home = work / f"{executor}_{i}"
            os.environ["SLUICE_HOME"] = str(home)
            recipe["export_path"] = str(home / "out.jsonl")
            path = work / f"demo_{executor}_{i}.yaml"
            path.write_text(yaml.safe_dump(recipe))
            report = run_recipe(path, executor=executor, echo=lambda _: None)  # type: ignore[arg-type]
            walls.append(report.wall_seconds)
            work_s.append(report.step_seconds)
            per_step.append(report.overhead_per_step * 1000)
        print(
            f"{executor:<14}{report.runs:>6}{report.steps:>7}{statistics.median(walls):>9.1f}"
            f"{statistics.median(work_s):>11.2f}{statistics.median(per_step):>18.0f}"
        )


if __name__ == "__main__":
    main()
