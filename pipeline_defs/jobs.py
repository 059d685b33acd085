"""Two jobs per recipe.

`<recipe>_job`, every asset of its group, for one shard or a range:
* `--tags '{"dagster/partition": "<shard>"}'`: that shard's steps, then the global stages once every shard has
  reached them (until then they wait and say for which shards).
* `--tags '{"dagster/asset_partition_range_start": A, "dagster/asset_partition_range_end": B}'`: a range, as a
  backfill runs it.
* a partition or range end that is not a registered shard: refused before the run is created, naming the
  registered ones.
* no tags: refused before the run is created, in one line naming `<recipe>_all_job` (Dagster cannot run chained
  partitioned assets without a partition).
Both refusals are the run storage's (`resources.run_checks.check_run`, reading the job's `sluice/shards`,
`sluice/source` and `sluice/all_job` tags: the embedded instance's and the production profile's PostgreSQL one,
`resources/postgres_storage.py`); on Dagster's stock storage the run is created and its first step fails with
the same line.

`<recipe>_all_job`: the whole recipe over every shard, exactly as `sluice run` does it (it is `sluice run`: one
op that registers the shards and launches one run of `<recipe>_job` per phase, each over a range of shards).
"""

from __future__ import annotations

import dagster as dg

from pipeline_defs.graph import RecipeGraph
from resources.run_checks import ALL_JOB_TAG, SHARDS_TAG, SOURCE_TAG


def recipe_job(
    graph: RecipeGraph, executor_def: dg.ExecutorDefinition | None = None
) -> dg.UnresolvedAssetJobDefinition:
    """`executor_def`: the recipe's own executor (`engine.executor`); None: the code location's default."""
    return dg.define_asset_job(
        executor_def=executor_def,
        name=graph.recipe.job_name,
        selection=dg.AssetSelection.groups(graph.group),
        description=f"All ops of {graph.recipe.source}: one shard, a range of shards, or (no partition tag) every "
        "registered shard, then the global stages (dedup index, export) over all shards.",
        tags={
            "sluice/recipe": graph.group,
            SHARDS_TAG: graph.partitions_def.name,
            SOURCE_TAG: graph.recipe.source,
            ALL_JOB_TAG: graph.recipe.all_job_name,
        },
    )


def recipe_all_job(graph: RecipeGraph) -> dg.JobDefinition:
    recipe = graph.recipe

    @dg.op(name=f"{recipe.project_name}__run_all", description=f"sluice run {recipe.source}")
    def run_all(context) -> dg.Output[None]:
        from pipeline_defs.execute import RunFailedError, run_recipe

        try:
            report = run_recipe(recipe.source, echo=context.log.info)
        except RunFailedError as exc:
            raise dg.Failure(description=str(exc).splitlines()[0], allow_retries=False) from exc
        context.log.info(report.render())
        return dg.Output(
            None,
            metadata={
                "job_id": report.job_id,
                "runs": report.runs,
                "kept": report.export.get("kept"),
                "wall_seconds": round(report.wall_seconds, 2),
            },
        )

    @dg.job(
        name=recipe.all_job_name,
        description=f"Every shard of {recipe.source}, then its global stages: what `sluice run` does, one run of "
        f"{recipe.job_name} per phase.",
        tags={"sluice/recipe": graph.group},
        executor_def=dg.in_process_executor,
    )
    def all_job() -> None:
        run_all()

    return all_job
