"""What a job reports: the per-op funnel read back from Dagster's event log, the console summary of `sluice run`,
and `job_summary.json`."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dagster as dg

from pipeline_defs.joblog import JobLog, write_json
from pipeline_defs.recipe import Recipe
from pipeline_defs.step import step_summary


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
    skipped: int
    wall_seconds: float
    step_seconds: float
    status: str = "completed"
    funnel: dict[str, StepStat] = field(default_factory=dict)
    export: dict[str, Any] = field(default_factory=dict)
    job_dir: Path | None = None

    @property
    def overhead_seconds(self) -> float:
        return max(0.0, self.wall_seconds - self.step_seconds)

    def render(self) -> str:
        lines = [
            f"job {self.job_id}: {self.recipe.source}, {self.partitions} partitions, {self.runs} Dagster runs, "
            f"{self.steps} shard-steps computed, {self.skipped} reused (valid checkpoints) in "
            f"{self.wall_seconds:.1f} s (op work {self.step_seconds:.1f} s)",
            "",
            f"{'op':<42}{'rows in':>10}{'rows out':>10}{'dropped':>10}{'seconds':>9}",
        ]
        for name, s in self.funnel.items():
            lines.append(f"{name:<42}{s.rows_in:>10}{s.rows_out:>10}{s.rows_in - s.rows_out:>10}{s.seconds:>9.2f}")
        if not self.funnel:
            lines.append("(every step's checkpoint was valid: nothing recomputed)")
        e = self.export
        if e:
            lines += [
                "",
                f"input {e.get('input')} = kept {e.get('kept')} + filtered {e.get('filtered')} + duplicates "
                f"{e.get('duplicate')} + quarantined {e.get('quarantined')}",
                f"output: {self.recipe.export_path}",
            ]
        if self.job_dir:
            lines.append(f"job log: {self.job_dir}")
        return "\n".join(lines)


# Asset name suffixes of a global op's stages (graph.py: `<op step>__hashes`, `<op step>__index`).
GLOBAL_STAGES = ("hashes", "index")


def plain_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    return {k: getattr(v, "value", v) for k, v in metadata.items()}


def collect(logs: Sequence[dg.EventLogEntry], funnel: dict[str, StepStat]) -> tuple[int, int, float, dict]:
    """(shard-steps computed, reused, op seconds, export metadata) of one run, from its event log
    (`instance.all_logs(run_id)`)."""
    computed = reused = 0
    seconds, export = 0.0, {}
    for entry in logs:
        mat = entry.asset_materialization
        if mat is None:
            continue
        meta = plain_metadata(dict(mat.metadata))
        if mat.asset_key.path[-1] == "export":
            export = meta
        if meta.get("reused_checkpoint"):
            reused += 1
            continue
        computed += 1
        ops = step_summary(meta)
        seconds += float(meta.get("seconds") or 0.0) if not ops else sum(float(o["seconds"]) for o in ops)
        op_name, _, stage = mat.asset_key.path[-1].rpartition("__")
        if stage in GLOBAL_STAGES and op_name:  # a global op's hashing and index are that op's work too
            funnel[op_name].seconds += float(meta.get("seconds") or 0.0)
        for op in ops:
            s = funnel[op["op"]]
            s.steps += 1
            s.rows_in += int(op["rows_in"])
            s.rows_out += int(op["rows_out"])
            s.seconds += float(op["seconds"])
    return computed, reused, seconds, export


def latest_export(instance: dg.DagsterInstance, export_key: dg.AssetKey) -> dict[str, Any]:
    records = instance.fetch_materializations(export_key, limit=1).records
    if not records or records[0].asset_materialization is None:
        return {}
    return plain_metadata(dict(records[0].asset_materialization.metadata))


def _per_partition(export: dict[str, Any]) -> dict[str, dict[str, Any]]:
    table = export.get("per_partition")
    if isinstance(table, dict):
        return table
    records = getattr(table, "records", None) or []
    return {r.data["partition"]: r.data for r in records}


def write_summary(
    job: JobLog,
    recipe: Recipe,
    status: str,
    wall: float,
    export: dict[str, Any],
    funnel: dict[str, StepStat],
    runs: int,
    skipped: int,
    error: str | None = None,
) -> None:
    counts = {
        "input": export.get("input"),
        "kept": export.get("kept"),
        "filtered": export.get("filtered"),
        "duplicates": export.get("duplicate"),
        "quarantined": export.get("quarantined"),
    }
    write_json(
        job.summary_path,
        {
            "job_id": job.job_id,
            "status": status,
            "error": error,
            "recipe": recipe.source,
            "recipe_fingerprint": recipe.fingerprint,
            "export_path": recipe.export_path,
            "counts": counts,
            "per_partition": {
                k: {
                    "input": v["input"],
                    "kept": v["kept"],
                    "filtered": v["filtered"],
                    "duplicates": v["duplicate"],
                    "quarantined": v["quarantined"],
                }
                for k, v in _per_partition(export).items()
            },
            "per_op": export.get("dropped_per_op") or {},
            "computed_this_run": {k: vars(v) for k, v in funnel.items()},
            "timings": {"wall_seconds": round(wall, 3), "finished": datetime.now(timezone.utc).isoformat()},
            "dagster_runs": runs,
            "steps_skipped_valid_checkpoint": skipped,
            "resume_command": f"sluice resume {job.job_id}",
        },
    )


def new_funnel() -> dict[str, StepStat]:
    return defaultdict(StepStat)
