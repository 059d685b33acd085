"""The `sluice` command: run, validate, list ops, list partitions."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ops_library.registry import get_op, load_all
from pipeline_defs.explain import add_cli as add_explain_cli
from pipeline_defs.recipe import RecipeError, load_recipe
from pipeline_defs.shards import DatasetError
from pipeline_defs.stack import add_cli as add_stack_cli
from resources.analyzer import add_profile_cli
from resources.metrics_server import add_cli as add_metrics_cli
from resources.planner import PlanError


def _cmd_run(args: argparse.Namespace) -> int:
    from pipeline_defs import execute

    try:
        if args.command == "resume":
            report = execute.resume_job(args.job, executor=args.executor)
        else:
            report = execute.run_recipe(args.recipe, executor=args.executor)
    except execute.RunFailedError as exc:
        print(f"sluice {args.command}: {exc}", file=sys.stderr)
        return 1
    except execute.JobInterrupted as exc:
        print(f"sluice {args.command}: {exc}", file=sys.stderr)
        return 130
    print(report.render())
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from pipeline_defs.execute import instance_ready
    from pipeline_defs.progress import job_status

    recipe = load_recipe(args.recipe).project_name if args.recipe else None
    for line in job_status(instance_ready(), args.job, recipe):
        print(line)
    return 0


def _cmd_gc(args: argparse.Namespace) -> int:
    from pipeline_defs.retention import gc

    removed = gc(args.recipe)
    print(f"{len(removed)} paths removed")
    return 0


def _cmd_plan(args: argparse.Namespace) -> int:

    from pipeline_defs.execute import instance_ready, plan_with_history
    from pipeline_defs.planning import step_pools

    recipe = load_recipe(args.recipe)
    plan = plan_with_history(recipe, instance_ready())
    print(plan.render())
    print("\nDagster pool limits (set by `sluice run` before any step):")
    for pool, limit in step_pools(recipe, plan).items():
        print(f"  {pool:<56}{limit}")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    """Each recipe file (a directory: each YAML file in it); every one is checked, and the exit code is 2 if any
    failed."""
    from pathlib import Path

    paths = []
    for entry in map(Path, args.recipes):
        paths += sorted(p for p in entry.iterdir() if p.suffix in {".yaml", ".yml"}) if entry.is_dir() else [entry]
    failed = 0
    for path in paths:
        try:
            recipe = load_recipe(path)
        except RecipeError as exc:
            failed += 1
            print(f"sluice validate: {exc}", file=sys.stderr)
            continue
        ops = " -> ".join(op.name for op in recipe.process)
        print(f"{path}: ok ({recipe.job_name}: {ops})")
        for key, why in recipe.ignored_keys.items():
            print(f"  ignored {key}: {why}")
    return 2 if failed else 0


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
    from pipeline_defs.execute import instance_ready
    from pipeline_defs.graph import build_recipe_graph, sync_shards
    from pipeline_defs.shards import discover_shards

    recipe = load_recipe(args.recipe)
    graph = build_recipe_graph(recipe)
    sync_shards(instance_ready(), recipe, graph.partitions_def)
    for shard in discover_shards(recipe.dataset_path, recipe.partition):
        if shard.members:  # a pack of whole files
            print(f"{shard.key:<36}{len(shard.members)} files, {shard.file.path} ... {shard.members[-1].file.path}")
            print(f"{'':<36}rows 1-{shard.rows} in all")
        else:
            print(f"{shard.key:<36}{shard.file.path}  rows {shard.start + 1}-{shard.stop}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sluice", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="materialize a recipe's whole asset graph on the local Dagster instance")
    run.add_argument("recipe")
    run.add_argument(
        "--executor",
        choices=["in_process", "multiprocess", "celery"],
        default="in_process",
        help="Dagster executor of each run (in_process: ~60 ms per step; multiprocess: a process per step; celery: "
        "the workers of SLUICE_CELERY_BROKER, see `sluice up`); a recipe's engine.executor wins",
    )
    run.set_defaults(fn=_cmd_run)
    resume = sub.add_parser("resume", help="finish a job: re-run only failed or missing steps, reuse checkpoints")
    resume.add_argument("job", help="a job id (printed by sluice run) or the id of any Dagster run of the job")
    resume.add_argument("--executor", choices=["in_process", "multiprocess", "celery"], default="in_process")
    resume.set_defaults(fn=_cmd_run)
    status = sub.add_parser(
        "status", help="per-phase, per-shard progress of a running or finished job, from the Dagster instance"
    )
    status.add_argument("job", nargs="?", help="a job id, a backfill id or a run id (launched from the UI)")
    status.add_argument("--recipe", help="no job id: the latest runs over this recipe's assets (UI launches too)")
    status.set_defaults(fn=_cmd_status)
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
    add_stack_cli(sub)
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
    from pipeline_defs import console

    console.ready()
    console.finish(main())
