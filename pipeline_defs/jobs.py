"""One job per recipe: every asset of its group. Run it for one shard with the `dagster/partition` tag."""

from __future__ import annotations

import dagster as dg

from pipeline_defs.assets import RecipeGraph


def recipe_job(graph: RecipeGraph) -> dg.UnresolvedAssetJobDefinition:
    return dg.define_asset_job(
        name=graph.recipe.job_name,
        selection=dg.AssetSelection.groups(graph.group),
        description=f"All ops of {graph.recipe.source}, for one input shard (partition), then the global "
        "stages and the export over all shards.",
        tags={"sluice/recipe": graph.group},
    )
