"""Builds Definitions from recipes: every recipe found becomes an asset group, a job, and a sensor that registers its
input shards as partitions.

Recipes come from `$SLUICE_RECIPES` (files or directories, separated by the OS path separator) or, by
default, the project's `recipes/` directory.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import dagster as dg

from pipeline_defs.assets import RecipeGraph, build_recipe_graph
from pipeline_defs.jobs import recipe_job
from pipeline_defs.recipe import Recipe, RecipeError, load_recipe
from pipeline_defs.sensors import shard_sensor
from resources.engine import EngineSettings
from resources.pools import GpuPool
from resources.storage import ParquetCheckpointIOManager

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RECIPES = PROJECT_ROOT / "recipes"


def recipe_paths() -> list[Path]:
    raw = os.environ.get("SLUICE_RECIPES")
    entries = [Path(p) for p in raw.split(os.pathsep) if p] if raw else [DEFAULT_RECIPES]
    paths: list[Path] = []
    for entry in entries:
        if entry.is_dir():
            paths += sorted(p for p in entry.iterdir() if p.suffix in {".yaml", ".yml"})
        else:
            paths.append(entry)
    return paths


def recipe_resources(graph: RecipeGraph) -> dict[str, object]:
    """Each recipe has its own checkpoint store (dir, format, compression from its `storage` section)."""
    store = graph.store()
    return {graph.store_key: store, graph.io_manager_key: ParquetCheckpointIOManager(store=store)}


# Each step of a run is cheap (a shard through one op), so a process per step (multiprocess, ~1.4-1.9 s) costs
# far more than the step; in-process runs steps in the run's process (~60-100 ms each). Runs of different shards
# still run in parallel (sluice run's max_parallel_runs, or the UI's queue), limited by the steps' pools.
EXECUTORS = {"in_process": dg.in_process_executor, "multiprocess": dg.multiprocess_executor}


def build_definitions(recipes: Iterable[Recipe], executor: str = "in_process") -> dg.Definitions:
    graphs: list[RecipeGraph] = []
    seen: dict[str, str] = {}
    for recipe in recipes:
        if recipe.project_name in seen:
            raise RecipeError(
                recipe.source,
                [f"project_name {recipe.project_name!r} is already used by {seen[recipe.project_name]}"],
            )
        seen[recipe.project_name] = recipe.source
        graphs.append(build_recipe_graph(recipe))
    return dg.Definitions(
        executor=EXECUTORS[executor],
        assets=[a for g in graphs for a in g.assets],
        jobs=[recipe_job(g) for g in graphs],
        sensors=[shard_sensor(g) for g in graphs],
        resources={
            "compute_pool": GpuPool.from_settings(EngineSettings()),
            **{k: v for g in graphs for k, v in recipe_resources(g).items()},
        },
    )


def definitions_for(paths: Iterable[str | os.PathLike[str]], executor: str = "in_process") -> dg.Definitions:
    return build_definitions((load_recipe(p) for p in paths), executor)


def job_for_recipe(path: str, executor: str = "in_process") -> dg.JobDefinition:
    """Reconstructs a recipe's job in any process (the entry point of `dg.build_reconstructable_job`)."""
    recipe = load_recipe(path)
    return definitions_for([path], executor).resolve_job_def(recipe.job_name)
