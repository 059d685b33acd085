"""Retention: `sluice gc` applies a recipe's `storage.retention` / `max_retention_days` to its checkpoints and job
directories; the `disabled` checkpoint strategy drops a job's intermediates when it ends."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeline_defs.recipe import load_recipe

if TYPE_CHECKING:
    from pipeline_defs.graph import RecipeGraph


def drop_intermediates(graph: RecipeGraph) -> None:
    """checkpoint strategy `disabled`: intermediates were scratch space for this job only."""
    store = graph.store()
    for key, node in graph.nodes.items():
        if node.kind != "export":
            shutil.rmtree(store.path(key.path, None).parent, ignore_errors=True)


def gc(recipe_path: str | Path, echo: Callable[[str], None] = print) -> list[Path]:
    """Apply the recipe's retention policy to its checkpoints and job directories."""
    recipe = load_recipe(recipe_path)
    policy = recipe.storage
    removed: list[Path] = []
    jobs = sorted(
        (p for p in recipe.jobs_root.glob(f"*_{recipe.project_name}_*") if (p / "job.json").exists()),
        key=lambda p: p.name,
    )
    summaries = {p: _read_summary(p) for p in jobs}
    if policy.max_retention_days is not None:
        cutoff = time.time() - policy.max_retention_days * 86400
        for p in jobs:
            if p.stat().st_mtime < cutoff:
                shutil.rmtree(p)
                removed.append(p)
    latest_status = summaries[jobs[-1]].get("status") if jobs else None
    ckpt = recipe.checkpoint_root / recipe.project_name
    drop_checkpoints = policy.retention == "cleanup_all" or (
        policy.retention == "keep_failed_only" and latest_status == "completed"
    )
    if drop_checkpoints and ckpt.exists():
        shutil.rmtree(ckpt)
        removed.append(ckpt)
    for p in removed:
        echo(f"removed {p}")
    return removed


def _read_summary(job_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((job_dir / "job_summary.json").read_text())
    except (OSError, ValueError):
        return {}
