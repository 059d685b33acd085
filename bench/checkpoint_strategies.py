"""Cost of the checkpoint strategies on the demo recipe: every_op vs every_n_ops vs every_partition vs disabled.

Each strategy runs the demo recipe (same ops, shards of --size rows) in a fresh home --repeat times with the
in-process executor; prints the median wall time, Dagster runs and steps, bytes of checkpoints left, and the
ratio to every_op measured in the same script.

    python bench/checkpoint_strategies.py [--repeat 3] [--size 5000]
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

import yaml
from _demo import demo_workspace

STRATEGIES = {
    "every_op": {"strategy": "every_op"},
    "every_n_ops(2)": {"strategy": "every_n_ops", "n_ops": 2},
    "every_partition": {"strategy": "every_partition"},
    "disabled": {"strategy": "disabled"},
}


def _bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--size", type=int, default=5_000, help="rows per shard")
    args = parser.parse_args()

    from pipeline_defs.execute import run_recipe

    work, base = demo_workspace("sluice_ckpt_bench_", args.size)
    results = {}
    for name, checkpoint in STRATEGIES.items():
        walls = []
        for i in range(args.repeat):
            home = work / f"{name}_{i}"
            os.environ["SLUICE_HOME"] = str(home)
            recipe = base | {"checkpoint": checkpoint, "export_path": str(home / "out.jsonl")}
            path = work / f"r_{i}.yaml"
            path.write_text(yaml.safe_dump(recipe))
            report = run_recipe(path, echo=lambda _: None)
            walls.append(report.wall_seconds)
        results[name] = (statistics.median(walls), report.runs, report.steps, _bytes(home / "checkpoints"))
    anchor = results["every_op"][0]
    print(f"{'strategy':<18}{'wall s':>8}{'vs every_op':>13}{'runs':>6}{'steps':>7}{'checkpoint MB':>15}")
    for name, (wall, runs, steps, size) in results.items():
        print(f"{name:<18}{wall:>8.1f}{wall / anchor:>12.2f}x{runs:>6}{steps:>7}{size / 2**20:>15.1f}")


if __name__ == "__main__":
    main()
