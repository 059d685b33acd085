"""The `sluice` command: run, validate, list ops, list partitions."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ops_library.registry import get_op, load_all
from pipeline_defs.explain import add_cli as add_explain_cli
from pipeline_defs.recipe import RecipeError, load_recipe
from pipeline_defs.shards import DatasetError
from resources.analyzer import add_profile_cli
from resources.metrics_server import add_cli as add_metrics_cli
from resources.planner import PlanError


def _cmd_run(args: argparse.Namespace) -> int:
    from pipeline_defs import runner

    try:
        if args.command == "resume":
            report = runner.resume_job(args.job, executor=args.executor)
        else:
            report = runner.run_recipe(args.recipe, executor=args.executor)
    except runner.RunFailedError as exc:
        print(f"sluice {args.command}: {exc}", file=sys.stderr)
        return 1
    print(report.render())
    return 0


def _cmd_gc(args: argparse.Namespace) -> int:
    from pipeline_defs.runner import gc

    removed = gc(args.recipe)
    print(f"{len(removed)} paths removed")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:
    import dagster as dg

    from pipeline_defs.planning import step_pools
    from pipeline_defs.runner import plan_with_history
    from resources.settings import sluice_home

    recipe = load_recipe(args.recipe)
    sluice_home().ensure_dagster_home()
    plan = plan_with_history(recipe, dg.DagsterInstance.get())
    print(plan.render())
    print("\nDagster pool limits (set by `sluice run` before any step):")
    for pool, limit in step_pools(recipe, plan).items():
        print(f"  {pool:<56}{limit}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    for path in args.recipes:
        recipe = load_recipe(path)
        ops = " -> ".join(op.name for op in recipe.process)
        print(f"{path}: ok ({recipe.job_name}: {ops})")
    return 0


def _cmd_ops(args: argparse.Namespace) -> int:
    if args.name:
        op = get_op(args.name)
        print(f"{op.name} ({op.kind})\n  {op.summary()}\n")
        for name, f in op.Params.model_fields.items():
            default = "required" if f.is_required() else repr(f.default)
            print(
                f"  {name}: {f.annotation.__name__ if hasattr(f.annotation, '__name__') else f.annotation}"
                f" = {default}  {f.description or ''}"
            )
        return 0
    for name, op in sorted(load_all().items()):
        print(f"{name:<36}{op.kind:<14}{op.summary()}")
    return 0


def _cmd_partitions(args: argparse.Namespace) -> int:
    import dagster as dg

    from pipeline_defs.assets import build_recipe_graph
    from pipeline_defs.runner import sync_partitions
    from resources.settings import sluice_home

    sluice_home().ensure_dagster_home()
    graph = build_recipe_graph(load_recipe(args.recipe))
    shards = sync_partitions(dg.DagsterInstance.get(), graph)
    for shard in shards:
        print(f"{shard.key:<36}{shard.file.path}  rows {shard.start + 1}-{shard.stop}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sluice", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="materialize a recipe's whole asset graph on the local Dagster instance")
    run.add_argument("recipe")
    run.add_argument(
        "--executor",
        choices=["in_process", "multiprocess"],
        default="in_process",
        help="Dagster executor of each run (in_process: ~60 ms per step; multiprocess: a process per step)",
    )
    run.set_defaults(fn=_cmd_run)
    resume = sub.add_parser("resume", help="finish a job: re-run only failed or missing steps, reuse checkpoints")
    resume.add_argument("job", help="a job id (printed by sluice run) or the id of any Dagster run of the job")
    resume.add_argument("--executor", choices=["in_process", "multiprocess"], default="in_process")
    resume.set_defaults(fn=_cmd_run)
    gcp = sub.add_parser("gc", help="apply a recipe's retention policy (storage.retention, max_retention_days)")
    gcp.add_argument("recipe")
    gcp.set_defaults(fn=_cmd_gc)
    plan = sub.add_parser("plan", help="print the resource plan (workers, CPUs, GPUs, memory) and pool limits")
    plan.add_argument("recipe")
    plan.set_defaults(fn=_cmd_plan)
    val = sub.add_parser("validate", help="check recipes without running them")
    val.add_argument("recipes", nargs="+")
    val.set_defaults(fn=_cmd_validate)
    ops = sub.add_parser("ops", help="list the registered ops, or show one op's params")
    ops.add_argument("name", nargs="?")
    ops.set_defaults(fn=_cmd_ops)
    parts = sub.add_parser("partitions", help="register a recipe's input shards as partitions and list them")
    parts.add_argument("recipe")
    parts.set_defaults(fn=_cmd_partitions)
    add_metrics_cli(sub)
    add_profile_cli(sub)
    add_explain_cli(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (RecipeError, DatasetError, PlanError, KeyError) as exc:
        print(f"sluice {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
