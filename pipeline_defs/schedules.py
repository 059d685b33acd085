"""Schedules: a recipe with a `schedule:` section gets a Dagster schedule (stopped unless `enabled: true`) whose
ticks backfill the shards that are missing or failed, then the global stages."""

from __future__ import annotations

import dagster as dg

from pipeline_defs.graph import RecipeGraph, sync_shards


def stale_request(context_instance: dg.DagsterInstance, graph: RecipeGraph) -> dg.RunRequest | dg.SkipReason:
    """A run of the recipe's job over the smallest range holding every shard whose checkpoints are missing or
    stale (failed shards have none), or of its global stages alone when only they are out of date."""
    from pipeline_defs.execute import RANGE_END, RANGE_START, _Planner, _ranges

    recipe = graph.recipe
    keys = sync_shards(context_instance, recipe, graph.partitions_def)
    assert graph.partitions_def.name is not None
    order = list(context_instance.get_dynamic_partitions(graph.partitions_def.name))
    planner = _Planner(graph, keys)
    stale: set[str] = set()
    for phase in graph.phases:
        if phase.partitioned:
            stale |= set(planner.stale_shards(phase.keys))
    tags = {"sluice/recipe": recipe.project_name, "sluice/trigger": "schedule"}
    if stale:
        (start, end), *_ = _ranges(sorted(stale, key=order.index), order, None)
        return dg.RunRequest(
            job_name=recipe.job_name,
            tags=tags | {RANGE_START: start, RANGE_END: end, "sluice/stale_shards": str(len(stale))},
        )
    globals_ = [k for p in graph.phases if not p.partitioned for k in p.keys]
    if all(planner.global_current(k) for k in globals_):
        return dg.SkipReason(f"all {len(keys)} shards and the export are current")
    return dg.RunRequest(job_name=recipe.job_name, asset_selection=globals_, tags=tags)


def recipe_schedule(graph: RecipeGraph) -> dg.ScheduleDefinition | None:
    spec = graph.recipe.schedule
    if spec is None:
        return None

    def evaluate(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        return stale_request(context.instance, graph)

    return dg.ScheduleDefinition(
        name=f"{graph.recipe.project_name}_schedule",
        cron_schedule=spec.cron,
        execution_timezone=spec.timezone,
        job_name=graph.recipe.job_name,
        execution_fn=evaluate,
        default_status=dg.DefaultScheduleStatus.RUNNING if spec.enabled else dg.DefaultScheduleStatus.STOPPED,
        description=f"Backfills the missing or failed shards of {graph.recipe.source}, then its global stages.",
    )
