"""A job's directory: `<event_log_dir>/<job_id>/` with `job.json` (what was run), `events.jsonl` (one event a
line, schema below), `job.log` (the same, for people) and `job_summary.json` (counts, status, timings, the
command to resume).

Events are derived from Dagster's own event log (`instance.all_logs(run_id)`) after each run, so they cannot
disagree with what Dagster recorded; Sluice adds only what happens outside a Dagster run (job start/end, a
step skipped because its checkpoint is valid, a checkpoint found corrupt).

Event fields: event_type, timestamp (ISO 8601, UTC), event_id, job_id, run_id, partition_id, operation_name,
operation_idx, status, duration (s), error_message, retry_count, checkpoint_path, input_rows, output_rows,
metadata, process_id. Event types: job_start, job_complete, job_failed, partition_start, partition_complete,
partition_failed, partition_resume, op_start, op_complete, op_failed, op_retry, checkpoint_save,
checkpoint_load, checkpoint_valid, checkpoint_invalid, quarantine.
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import dagster as dg

from resources.storage import atomic_write

_OP_INDEX = re.compile(r"op(\d+)")
_T = dg.DagsterEventType
# Dagster event type -> Sluice event type
_STEP_EVENTS = {
    _T.STEP_START: "op_start",
    _T.STEP_RESTARTED: "op_start",  # a retry within the same run
    _T.STEP_SUCCESS: "op_complete",
    _T.STEP_FAILURE: "op_failed",
    _T.STEP_UP_FOR_RETRY: "op_retry",
    _T.ASSET_MATERIALIZATION: "checkpoint_save",
    _T.LOADED_INPUT: "checkpoint_load",
}
_RUN_EVENTS = {
    _T.RUN_START: "partition_start",
    _T.RUN_SUCCESS: "partition_complete",
    _T.RUN_FAILURE: "partition_failed",
}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _meta_value(v: Any) -> Any:
    v = getattr(v, "value", v)
    if isinstance(v, int | float | str | bool) or v is None:
        return v
    if isinstance(v, list | dict):
        return v
    return str(v)


@dataclass
class JobLog:
    root: Path
    job_id: str

    @property
    def dir(self) -> Path:
        return self.root / self.job_id

    @property
    def events_path(self) -> Path:
        return self.dir / "events.jsonl"

    @property
    def summary_path(self) -> Path:
        return self.dir / "job_summary.json"

    def start(self, info: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / "job.json"
        if not path.exists():
            write_json(path, info)

    def info(self) -> dict[str, Any]:
        return json.loads((self.dir / "job.json").read_text())

    def emit(self, event_type: str, **fields: Any) -> None:
        event = {
            "event_type": event_type,
            "timestamp": fields.pop("timestamp", None) or _now(),
            "event_id": uuid.uuid4().hex[:12],
            "job_id": self.job_id,
            "process_id": os.getpid(),
            **{k: v for k, v in fields.items() if v is not None},
        }
        with open(self.events_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(event, default=str) + "\n")
        where = event.get("partition_id") or ""
        what = event.get("operation_name") or ""
        detail = event.get("error_message") or event.get("message") or ""
        with open(self.dir / "job.log", "a", encoding="utf-8") as fh:
            fh.write(f"{event['timestamp']} {event_type:<20} {where:<28} {what:<40} {detail}".rstrip() + "\n")

    def record_run(self, logs: Sequence[dg.EventLogEntry], run_id: str, partition: str | None, prefix: str) -> None:
        """Translate one Dagster run's event log (`instance.all_logs(run_id)`) into Sluice events."""
        for entry in logs:
            ev = entry.dagster_event
            if ev is None:
                continue
            ts = datetime.fromtimestamp(entry.timestamp, timezone.utc).isoformat()
            base = {"timestamp": ts, "run_id": run_id, "partition_id": partition}
            if ev.event_type in _RUN_EVENTS:
                self.emit(_RUN_EVENTS[ev.event_type], **base)
            elif ev.event_type in _STEP_EVENTS:
                if ev.event_type == _T.ASSET_MATERIALIZATION:  # a range run materializes many shards
                    base["partition_id"] = ev.partition or partition
                fields = self._step_fields(ev, prefix)
                self.emit(_STEP_EVENTS[ev.event_type], **base, **fields)
                quarantined = (fields.get("metadata") or {}).get("quarantined")
                if quarantined and fields.get("operation_name") == "source":
                    self.emit(
                        "quarantine",
                        **base,
                        operation_name="source",
                        message=f"{quarantined} rows quarantined",
                        metadata={"quarantined": quarantined},
                    )

    @staticmethod
    def _step_fields(ev: Any, prefix: str) -> dict[str, Any]:
        name = (ev.step_key or "").removeprefix(f"{prefix}__")
        m = _OP_INDEX.match(name)
        fields: dict[str, Any] = {"operation_name": name, "operation_idx": int(m[1]) if m else None}
        kind = ev.event_type
        if kind == _T.STEP_SUCCESS:
            fields |= {"status": "success", "duration": round(ev.event_specific_data.duration_ms / 1000, 4)}
        elif kind == _T.STEP_FAILURE:
            error = ev.step_failure_data.error
            fields |= {"status": "failed", "error_message": error.message.strip() if error else ev.message}
        elif kind == _T.STEP_UP_FOR_RETRY:
            data = ev.event_specific_data
            fields |= {
                "status": "retry",
                "error_message": data.error.message.strip() if data.error else None,
                "metadata": {"seconds_to_wait": data.seconds_to_wait},
            }
        elif kind == _T.ASSET_MATERIALIZATION:
            meta = {k: _meta_value(v) for k, v in ev.step_materialization_data.materialization.metadata.items()}
            fields |= {
                "input_rows": meta.get("rows_in"),
                "output_rows": meta.get("rows_out"),
                "checkpoint_path": meta.get("checkpoint_path"),
                "metadata": {
                    k: meta[k] for k in ("seconds", "rows_per_s", "dropped", "quarantined", "fingerprint") if k in meta
                },
            }
        return fields


def write_json(path: Path, payload: dict[str, Any]) -> None:
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=2, default=str))


def find_job(root: Path, job_or_run_id: str, instance: dg.DagsterInstance | None = None) -> JobLog:
    """A job by its id, or by the id of any Dagster run it launched."""
    if (root / job_or_run_id / "job.json").exists():
        return JobLog(root, job_or_run_id)
    if instance is not None:
        run = instance.get_run_by_id(job_or_run_id)
        if run is not None and "sluice/job_id" in run.tags:
            return JobLog(root, run.tags["sluice/job_id"])
    known = sorted(p.name for p in root.glob("*/job.json"))[-5:] if root.exists() else []
    raise KeyError(f"no job or run {job_or_run_id!r} under {root} (recent jobs: {', '.join(known) or 'none'})")
