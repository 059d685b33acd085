"""From a recipe to its resource plan (resources/planner.py) and to the Dagster pools of its steps.

Every partitioned step has a pool `sluice/<recipe>/<step>`; its limit is the step's worker count: the op's
`num_proc` from the plan (for a fused step, the smallest among its ops; for source and dedup hashes, the
recipe's `np`). `sluice run` writes the plan it used to `$SLUICE_HOME/plans/<recipe>.json` and sets the limits
on the instance before any step runs; steps read that plan back for their allocation, so the Dagster limit and
the step's local worker slot agree. Without a saved plan (a plain `dagster job execute`), steps plan from the
op hints and the detected hardware.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

from pipeline_defs.recipe import OpSpec, Recipe
from pipeline_defs.steps import GlobalStage, RowStep, plan_steps
from resources.checkpoint_files import atomic_write
from resources.engine import EngineSettings
from resources.hardware import GpuInfo, Hardware, detect_hardware
from resources.planner import OpDemand, OpPlan, Plan, plan_recipe, pool_name
from resources.settings import sluice_home


def engine_settings(recipe: Recipe) -> EngineSettings:
    return EngineSettings.from_recipe(recipe.engine)


def demands(recipe: Recipe) -> list[OpDemand]:
    return [
        OpDemand(
            spec.step_name, op=spec.name, needs=spec.op_class.needs, **spec.resources.model_dump(exclude_none=True)
        )
        for spec in recipe.process
    ]


def plan_for(recipe: Recipe, hardware: Hardware | None = None, predictions: dict[str, float] | None = None) -> Plan:
    """The recipe's plan on this machine (raises PlanError when an explicit demand cannot fit)."""
    usable = engine_settings(recipe).usable(hardware or detect_hardware())
    return plan_recipe(demands(recipe), usable, predictions, recipe=recipe.project_name, default_np=recipe.np)


def step_request(recipe: Recipe, plan: Plan, ops: tuple[OpSpec, ...], step: str) -> OpPlan:
    """The plan of one step: its most demanding op's share, at the fewest workers among its ops."""
    plans = [plan[op.step_name] for op in ops]
    lead = max(plans, key=lambda p: (p.num_gpus, p.memory_gb or 0.0, p.num_cpus))
    return replace(lead, pool=pool_name(recipe.project_name, step), num_proc=min(p.num_proc for p in plans))


def step_pools(recipe: Recipe, plan: Plan) -> dict[str, int]:
    """Dagster pool limit of every partitioned step of the recipe."""
    np = max(1, recipe.np)
    limits = {pool_name(recipe.project_name, "source"): np}
    for step in plan_steps(recipe):
        if isinstance(step, GlobalStage):
            limits[pool_name(recipe.project_name, f"{step.spec.step_name}__hashes")] = np
        else:
            assert isinstance(step, RowStep)
            limits[pool_name(recipe.project_name, step.name)] = step_request(recipe, plan, step.ops, step.name).num_proc
    return limits


def plan_path(recipe: Recipe) -> Path:
    return sluice_home().root / "plans" / f"{recipe.project_name}.json"


def save_plan(recipe: Recipe, plan: Plan) -> Path:
    path = plan_path(recipe)
    with atomic_write(path) as tmp:
        tmp.write_text(
            json.dumps(
                {
                    "fingerprint": recipe.fingerprint,
                    "hardware": asdict(plan.hardware),
                    "ops": [asdict(p) for p in plan.ops],
                }
            )
        )
    return path


def load_plan(recipe: Recipe) -> Plan:
    """The plan `sluice run` saved for this recipe, else a fresh one from hints and hardware."""
    try:
        saved = json.loads(plan_path(recipe).read_text())
        if saved["fingerprint"] == recipe.fingerprint:
            hw = saved["hardware"]
            hardware = Hardware(hw["cpus"], hw["memory_gb"], tuple(GpuInfo(**g) for g in hw["gpus"]))
            return Plan(recipe.project_name, hardware, tuple(OpPlan(**p) for p in saved["ops"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return plan_for(recipe)
