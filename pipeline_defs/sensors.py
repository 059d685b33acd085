"""Sensors: register new input shards of a recipe as partitions (building the demo corpus when the recipe
asks for it), so the UI and backfills see them without a manual step."""

from __future__ import annotations

import dagster as dg

from pipeline_defs.assets import RecipeGraph
from pipeline_defs.corpus_source import ensure_dataset
from pipeline_defs.shards import discover_shards


def shard_sensor(graph: RecipeGraph) -> dg.SensorDefinition:
    recipe, partitions_def = graph.recipe, graph.partitions_def

    @dg.sensor(
        name=f"{recipe.project_name}_shards_sensor",
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=f"Registers the shards of {recipe.dataset_path} as partitions of {partitions_def.name}.",
    )
    def sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult | dg.SkipReason:
        ensure_dataset(recipe)
        keys = [s.key for s in discover_shards(recipe.dataset_path, recipe.partition.size)]
        known = set(context.instance.get_dynamic_partitions(partitions_def.name))
        new = [k for k in keys if k not in known]
        if not new:
            return dg.SkipReason(f"{len(keys)} shards, none new")
        return dg.SensorResult(dynamic_partitions_requests=[partitions_def.build_add_request(new)])

    return sensor
