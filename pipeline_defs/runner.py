"""`sluice run`: register the recipe's shards as partitions, then materialize its asset graph phase by phase on
the local Dagster instance (`$SLUICE_HOME/dagster_home`), the way an asset backfill would: partitioned phases
once per shard, global phases (dedup index, export) once. Every run is a normal Dagster run, visible in the UI.
"""

from __future__ import annotations

import secrets
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import dagster as dg

from pipeline_defs.assets import RecipeGraph, build_recipe_graph
from pipeline_defs.corpus_source import ensure_dataset
from pipeline_defs.recipe import Recipe, load_recipe
from pipeline_defs.shards import discover_shards
from resources.settings import sluice_home

Executor = Literal["in_process", "multiprocess"]


class RunFailedError(RuntimeError):
    pass


@dataclass
class StepStat:
    steps: int = 0
    rows_in: int = 0
    rows_out: int = 0
    seconds: float = 0.0


@dataclass
class RunReport:
    job_id: str
    recipe: Recipe
    partitions: int
    runs: int
    steps: int
    wall_seconds: float
    step_seconds: float
    funnel: dict[str, StepStat] = field(default_factory=dict)
    export: dict[str, Any] = field(default_factory=dict)

    @property
    def overhead_per_step(self) -> float:
        return (self.wall_seconds - self.step_seconds) / self.steps if self.steps else 0.0

    def render(self) -> str:
        lines = [
            f"job {self.job_id}: {self.recipe.source}, {self.partitions} partitions, {self.runs} Dagster runs, "
            f"{self.steps} steps in {self.wall_seconds:.1f} s "
            f"(op work {self.step_seconds:.1f} s, {self.overhead_per_step * 1000:.0f} ms overhead per step)",
            "",
            f"{'step':<42}{'rows in':>10}{'rows out':>10}{'dropped':>10}{'seconds':>9}",
        ]
        for name, s in self.funnel.items():
            lines.append(f"{name:<42}{s.rows_in:>10}{s.rows_out:>10}{s.rows_in - s.rows_out:>10}{s.seconds:>9.2f}")
        e = self.export
        if e:
            lines += [
                "",
                f"input {e.get('input')} = kept {e.get('kept')} + filtered {e.get('filtered')} + duplicates "
                f"{e.get('duplicate')} + quarantined {e.get('quarantined')}",
                f"output: {self.recipe.export_path}",
            ]
        return "\n".join(lines)


def new_job_id(recipe: Recipe) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d_%H%M%S")
    return f"{stamp}_{recipe.project_name}_{secrets.token_hex(3)}"


def sync_partitions(instance: dg.DagsterInstance, graph: RecipeGraph) -> list[str]:
    """Make the registered partitions equal the input's shards (new ones added, vanished ones removed)."""
    recipe = graph.recipe
    ensure_dataset(recipe)
    keys = [s.key for s in discover_shards(recipe.dataset_path, recipe.partition.size)]
    name = graph.partitions_def.name
    assert name is not None
    known = set(instance.get_dynamic_partitions(name))
    if new := [k for k in keys if k not in known]:
        instance.add_dynamic_partitions(name, new)
    for stale in known - set(keys):
        instance.delete_dynamic_partition(name, stale)
    return keys


def _value(meta: dict[str, Any], key: str) -> Any:
    v = meta.get(key)
    return getattr(v, "value", v)


def run_recipe(
    path: str | Path,
    executor: Executor = "in_process",
    echo: Callable[[str], None] = print,
) -> RunReport:
    t0 = time.perf_counter()
    home = sluice_home()
    home.ensure_dagster_home()
    recipe = load_recipe(path)
    graph = build_recipe_graph(recipe)
    job_id = new_job_id(recipe)
    instance = dg.DagsterInstance.get()
    keys = sync_partitions(instance, graph)
    echo(f"job {job_id}: {len(keys)} partitions of {recipe.dataset_path}, Dagster home {home.dagster_home}")

    recon = dg.build_reconstructable_job(
        "pipeline_defs.loader", "job_for_recipe", reconstructable_args=(str(Path(path).resolve()),)
    )
    run_config = {"execution": {"config": {executor: {}}}}
    funnel: dict[str, StepStat] = defaultdict(StepStat)
    export: dict[str, Any] = {}
    runs = steps = 0
    step_seconds = 0.0
    for phase in graph.phases:
        for key in keys if phase.partitioned else [None]:
            tags = {"sluice/job_id": job_id} | ({"dagster/partition": key} if key else {})
            result = dg.execute_job(recon, instance, run_config=run_config, tags=tags, asset_selection=phase.keys)
            runs += 1
            if not result.success:
                failure = next((e for e in result.all_events if e.is_step_failure), None)
                detail = failure.step_failure_data.error.message.strip() if failure else "see the run in the UI"
                raise RunFailedError(f"run {result.run_id} ({key or 'all partitions'}) failed: {detail}")
            for event in result.get_asset_materialization_events():
                mat = event.step_materialization_data.materialization
                meta = dict(mat.metadata)
                name = mat.asset_key.path[-1]
                steps += 1
                seconds = float(_value(meta, "seconds") or 0.0)
                step_seconds += seconds
                if name == "export":
                    export = {k: _value(meta, k) for k in meta}
                    continue
                if "rows_in" in meta:
                    s = funnel[name]
                    s.steps += 1
                    s.rows_in += int(_value(meta, "rows_in"))
                    s.rows_out += int(_value(meta, "rows_out"))
                    s.seconds += seconds
    return RunReport(
        job_id=job_id,
        recipe=recipe,
        partitions=len(keys),
        runs=runs,
        steps=steps,
        wall_seconds=time.perf_counter() - t0,
        step_seconds=step_seconds,
        funnel=dict(funnel),
        export=export,
    )
