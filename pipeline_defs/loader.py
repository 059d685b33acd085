"""Builds Definitions from recipes: every recipe found becomes an asset group, a job, a shard sensor and (when the
recipe has a `schedule:` section) a schedule.

Recipes come from `$SLUICE_RECIPES` (files or directories, separated by the OS path separator) or, by
default, the project's `recipes/` directory. A recipe that does not load is logged and left out; the others
still load (`sluice validate DIR` shows why it failed). Definitions are built once per process and recipe
content: steps of later runs in the same process reuse them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import dagster as dg

from pipeline_defs.graph import FORKSERVER_PRELOAD, RecipeGraph, build_recipe_graph, compute_pool
from pipeline_defs.jobs import recipe_all_job, recipe_job
from pipeline_defs.planning import engine_settings, load_plan, step_pools
from pipeline_defs.recipe import Recipe, RecipeError, load_recipe
from pipeline_defs.schedules import recipe_schedule
from pipeline_defs.sensors import shard_sensor
from resources.settings import adopt_home
from resources.storage import ParquetCheckpointIOManager

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_RECIPES = PROJECT_ROOT / "recipes"
log = logging.getLogger("sluice")


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
    """Each recipe has its own checkpoint store (dir, format, compression from its `storage` section) and its
    own compute pool (from its `engine` section)."""
    store = graph.store()
    return {
        graph.store_key: store,
        graph.io_manager_key: ParquetCheckpointIOManager(store=store),
        graph.pool_key: compute_pool(graph.recipe),
    }


# Each step is a range of shards through one op; in-process runs steps in the run's process (no process start per
# step). multiprocess starts a process per step: only worth it when steps are long. celery sends each step to the
# Celery workers of the broker `SLUICE_CELERY_BROKER` (`sluice up` starts a broker and workers): pools, retries
# and checkpoints work as in-process, as long as every worker reaches the checkpoint storage.
EXECUTORS = {
    "in_process": dg.in_process_executor,
    "multiprocess": dg.multiprocess_executor.configured(
        {"start_method": {"forkserver": {"preload_modules": FORKSERVER_PRELOAD}}}, name="multiprocess"
    ),
}
DEFAULT_BROKER = "redis://127.0.0.1:6379/0"
CELERY_POLL_SECONDS = 0.05
"""How often the run's process asks the result backend whether its steps are done. dagster-celery's loop sleeps
its `TICK_SECONDS` (1 s) between polls, so each step of a chain waited up to a second after it finished before
the next was sent: the 10-op bench recipe on 2 workers took 26.2 s, 10.1 s at 50 ms (docs/production.md)."""


def celery_executor() -> dg.ExecutorDefinition:
    """dagster-celery's executor on the broker (and result backend) of `SLUICE_CELERY_BROKER` /
    `SLUICE_CELERY_BACKEND`; imported only when a recipe or run asks for it."""
    from dagster_celery import celery_executor as executor
    from dagster_celery import core_execution_loop

    core_execution_loop.TICK_SECONDS = CELERY_POLL_SECONDS
    # dagster-celery 0.29.27 re-creates its `execute_plan` task per run; celery 5.7 warns each time (harmless)
    warnings.filterwarnings("ignore", message="Task name 'execute_plan' is already registered")

    broker = os.environ.get("SLUICE_CELERY_BROKER", DEFAULT_BROKER)
    backend = os.environ.get("SLUICE_CELERY_BACKEND", broker)
    return executor.configured({"broker": broker, "backend": backend}, name="celery")


def executor_def(name: str) -> dg.ExecutorDefinition:
    if name == "celery":
        return celery_executor()
    if name not in EXECUTORS:
        raise KeyError(f"unknown executor {name!r}: one of {', '.join([*EXECUTORS, 'celery'])}")
    return EXECUTORS[name]


def recipe_executor(recipe: Recipe) -> str | None:
    """The executor the recipe's `engine.executor` (or `SLUICE_EXECUTOR`) names; None: the caller's choice."""
    return engine_settings(recipe).executor


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
        executor=executor_def(executor),
        assets=[a for g in graphs for a in g.assets],
        asset_checks=[c for g in graphs for c in g.checks],
        jobs=[j for g in graphs for j in (recipe_job(g, _job_executor(g.recipe, executor)), recipe_all_job(g))],
        sensors=[shard_sensor(g) for g in graphs],
        schedules=[s for g in graphs if (s := recipe_schedule(g)) is not None],
        resources={k: v for g in graphs for k, v in recipe_resources(g).items()},
    )


def _job_executor(recipe: Recipe, default: str) -> dg.ExecutorDefinition | None:
    name = recipe_executor(recipe)
    return executor_def(name) if name and name != default else None


def _content_key(path: str | os.PathLike[str]) -> tuple[str, str]:
    p = Path(path)
    try:
        return str(p.resolve()), hashlib.sha256(p.read_bytes()).hexdigest()
    except OSError:
        return str(p), ""


@lru_cache(maxsize=64)
def _cached_definitions(keys: tuple[tuple[str, str], ...], executor: str, env: tuple[str, ...]) -> dg.Definitions:
    return build_definitions((load_recipe(p) for p, _ in keys), executor)


def _env_key() -> tuple[str, ...]:
    # Recipes expand ${VAR}s and engine settings read SLUICE_*: a change of either is a different definition.
    return tuple(sorted(f"{k}={v}" for k, v in os.environ.items() if k.startswith("SLUICE_")))


def definitions_for(paths: Iterable[str | os.PathLike[str]], executor: str = "in_process") -> dg.Definitions:
    """Definitions of these recipes, built once per process for the same recipe contents and environment."""
    return _cached_definitions(tuple(_content_key(p) for p in paths), executor, _env_key())


def loadable(paths: Iterable[Path]) -> list[Path]:
    """The recipes that load; each one that does not is logged with its error and left out."""
    good = []
    for path in paths:
        try:
            load_recipe(path)
        except RecipeError as exc:
            log.error("sluice: recipe %s left out of the code location: %s", path, str(exc).replace("\n", " "))
            continue
        good.append(path)
    return good


def job_for_recipe(path: str, executor: str = "in_process", home: str | None = None) -> dg.JobDefinition:
    """Reconstructs a recipe's job in any process (the entry point of `dg.build_reconstructable_job`). `home`:
    the Sluice home of the `sluice run` that launched the run; a process with another home (a Celery worker
    that `sluice up` started) adopts it, so checkpoints, the export, plans and slot locks are that run's."""
    if home is not None:
        adopt_home(home)
    recipe = load_recipe(path)
    return definitions_for([path], executor).resolve_job_def(recipe.job_name)


def apply_recipe_pool_limits(paths: Iterable[Path]) -> dict[str, int]:
    """Set every recipe's step pool limits on the instance of `$DAGSTER_HOME` when the code location loads, so a
    run launched from the UI is limited even for a recipe `sluice run` never ran. Only where an instance exists
    (DAGSTER_HOME set and present: never during a bare `dagster definitions validate`); any failure is logged,
    never raised: the location loads all the same."""
    home = os.environ.get("DAGSTER_HOME")
    if not home or not Path(home).is_dir() or os.environ.get("SLUICE_POOL_LIMITS_ON_LOAD", "1") == "0":
        return {}
    from resources.pools import apply_pool_limits

    limits: dict[str, int] = {}
    try:
        recipes = [load_recipe(p) for p in paths]
        with dg.DagsterInstance.get() as instance:
            for recipe in recipes:
                limits |= apply_pool_limits(instance, step_pools(recipe, load_plan(recipe)))
    except Exception as exc:  # the code location must load even when the instance is unreachable
        log.warning("sluice: pool limits not set on load (%s: %s)", type(exc).__name__, str(exc).splitlines()[0])
        return {}
    return limits
