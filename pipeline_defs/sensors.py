"""Sensors: register new input shards of a recipe as partitions (building the demo corpus when the recipe asks
for it), so the UI and backfills see them, and unregister shards that are gone; with `sensor: {request_runs:
true}` also run each new shard (the global stages follow once every shard has reached them)."""

from __future__ import annotations

import dagster as dg

from pipeline_defs.corpus_source import ensure_dataset
from pipeline_defs.graph import RecipeGraph
from pipeline_defs.shards import discover_shards


def shard_sensor(graph: RecipeGraph) -> dg.SensorDefinition:
    recipe, partitions_def = graph.recipe, graph.partitions_def
    spec = recipe.sensor

    @dg.sensor(
        name=f"{recipe.project_name}_shards_sensor",
        minimum_interval_seconds=spec.minimum_interval_s,
        default_status=dg.DefaultSensorStatus.RUNNING if spec.enabled else dg.DefaultSensorStatus.STOPPED,
        job_name=recipe.job_name,
        description=f"Registers the shards of {recipe.dataset_path} as partitions of {partitions_def.name}"
        + (" and runs each new one." if spec.request_runs else "."),
    )
    def sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        ensure_dataset(recipe)
        keys = [s.key for s in discover_shards(recipe.dataset_path, recipe.partition)]
        assert partitions_def.name is not None
        known = set(context.instance.get_dynamic_partitions(partitions_def.name))
        new = [k for k in keys if k not in known]
        # A shard that is no more (its file removed, or a pack renamed when a file joined it) is unregistered,
        # so the global stages do not wait for it.
        gone = sorted(known - set(keys))
        if not new and not gone:
            return dg.SkipReason(f"{len(keys)} shards, none new")
        runs = (
            [dg.RunRequest(partition_key=k, run_key=k, tags={"sluice/trigger": "sensor"}) for k in new]
            if spec.request_runs
            else []
        )
        requests: list = [partitions_def.build_add_request(new)] if new else []
        requests += [partitions_def.build_delete_request(gone)] if gone else []
        return dg.SensorResult(dynamic_partitions_requests=requests, run_requests=runs)

    return sensor
