"""Per-op resource profiles learnt from the Dagster instance's history, and predictions for the next run.

Every op step's materialization carries `rows_in`, `rows_out`, `seconds`, `peak_rss_mb`, `rss_delta_mb` and
`cpu_seconds` (the last three from `StepMonitor`). Normalised per 1,000 input rows over the recorded steps, they
predict what a step of N rows needs: figure per 1k rows × N/1000 × a safety margin (default 1.2).

Memory comes from `rss_delta_mb` (peak RSS during the step minus RSS at its start: what the step added), never
from the whole process's RSS, whose interpreter and library baseline (~250 MB) divided by the rows of a small
shard predicts tens of GB for a normal one. Steps of fewer than `MIN_PROFILE_ROWS` rows are left out of the
per-row figures (their fixed costs and allocator noise swamp the per-row part), the memory figure is the median
over steps (one step that loaded a model does not set it), capped at `MAX_MB_PER_1K_ROWS`, and a prediction is
at least `MEMORY_FLOOR_MB`. An op with no step of `MIN_PROFILE_ROWS` rows has no memory prediction.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import dagster as dg

REQUIRED_KEYS = ("rows_in", "rows_out", "seconds", "peak_rss_mb", "cpu_seconds")
OPTIONAL_KEYS = ("rss_delta_mb",)  # absent from steps recorded before it existed
MIN_PROFILE_ROWS = 1000
"""Steps with fewer input rows do not inform per-row figures."""
MAX_MB_PER_1K_ROWS = 1024.0
"""1 MB per row: more is a one-off (a model load, a first-call cache) measured on too few rows, not a rate."""
MEMORY_FLOOR_MB = 32.0
"""Least memory predicted for a step: the frame copies any op makes."""
_STEP_PREFIX = re.compile(r"^op\d+_")
HISTORY_CACHE = ".sluice_step_history.json"
"""In the instance's root directory: the step records already read, per asset, with the newest storage id read."""
_CACHE_VERSION = 1


def op_name_of(asset_key: dg.AssetKey) -> str:
    """`demo/op02_text_length_filter` → `text_length_filter`: the last path component without its position."""
    return _STEP_PREFIX.sub("", asset_key.path[-1])


def _number(value: Any) -> float | None:
    raw = getattr(value, "value", value)  # a MetadataValue, or a plain number
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return None
    return float(raw)


@dataclass(frozen=True)
class StepRecord:
    """One recorded step: a materialization of an op asset with all of `REQUIRED_KEYS`."""

    asset_key: dg.AssetKey
    partition: str | None
    run_id: str
    timestamp: float
    rows_in: float
    rows_out: float
    seconds: float
    peak_rss_mb: float
    cpu_seconds: float
    rss_delta_mb: float | None = None

    @classmethod
    def from_record(cls, record: dg.EventLogRecord) -> StepRecord | None:
        """None when the materialization lacks one of the figures (e.g. from before monitoring) or saw no rows."""
        materialization = record.asset_materialization
        if materialization is None:
            return None
        values = {key: _number(materialization.metadata.get(key)) for key in REQUIRED_KEYS}
        if any(v is None for v in values.values()) or not values["rows_in"]:
            return None
        optional = {key: _number(materialization.metadata.get(key)) for key in OPTIONAL_KEYS}
        return cls(
            asset_key=materialization.asset_key,
            partition=materialization.partition,
            run_id=record.run_id,
            timestamp=record.timestamp,
            **values,  # type: ignore[arg-type]
            **optional,  # type: ignore[arg-type]
        )


class _HistoryCache:
    """Per asset: the newest storage id read, and the step records read up to it (at most `history`).

    Only materializations after that id are read from the instance; when there are none, the one at that id must
    still be there, else (the asset wiped, the instance reset) the asset is read again from the start. The file
    is written atomically; two processes at once at worst both read what is new."""

    def __init__(self, instance: dg.DagsterInstance, history: int) -> None:
        self.instance, self.history = instance, history
        self.path = os.path.join(instance.root_directory, HISTORY_CACHE)
        self.entries: dict[str, dict[str, Any]] = {}
        self.changed = False
        try:
            with open(self.path) as fh:
                data = json.load(fh)
            if data.get("version") == _CACHE_VERSION and data.get("history") == history:
                self.entries = data["assets"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self.entries = {}

    def _fetch(self, key: dg.AssetKey, **where: Any) -> list[dg.EventLogRecord]:
        records_filter = dg.AssetRecordsFilter(asset_key=key, **where)
        return list(self.instance.fetch_materializations(records_filter, limit=self.history).records)

    def steps(self, key: dg.AssetKey) -> list[StepRecord]:
        name = key.to_user_string()
        entry = self.entries.get(name)
        cursor = entry["cursor"] if entry is not None else None
        new = self._fetch(key, after_storage_id=cursor)
        if entry is not None and not new and not self._fetch(key, storage_ids=[cursor]):
            entry, new = None, self._fetch(key)  # its materializations are gone: read again from the start
        if entry is None or new:
            rows = [[r.storage_id, *_row(step)] if (step := StepRecord.from_record(r)) else [r.storage_id] for r in new]
            old = entry["records"] if entry is not None else []
            top = max([entry["cursor"] if entry is not None else 0, *(r.storage_id for r in new)])
            entry = {"cursor": top, "records": (rows + old)[: self.history]}
            self.entries[name] = entry
            self.changed = True
        return [_step(key, row) for row in entry["records"] if len(row) > 1]

    def save(self) -> None:
        if not self.changed:
            return
        payload = {"version": _CACHE_VERSION, "history": self.history, "assets": self.entries}
        try:
            fd, tmp = tempfile.mkstemp(dir=os.path.dirname(self.path), prefix=HISTORY_CACHE, suffix=".tmp")
            with os.fdopen(fd, "w") as fh:
                json.dump(payload, fh, separators=(",", ":"))
            os.replace(tmp, self.path)
        except OSError:
            return  # a read-only instance directory: read from the instance next time


def _row(step: StepRecord) -> list[Any]:
    """StepRecord's fields after its asset key, in order (the key is the entry's)."""
    return [getattr(step, f.name) for f in fields(StepRecord)[1:]]


def _step(key: dg.AssetKey, row: list[Any]) -> StepRecord:
    # a row is [storage id, *_row(step)]; [storage id] alone: a materialization without the figures
    return StepRecord(key, *row[1:])


@dataclass(frozen=True)
class Prediction:
    memory_mb: float | None
    """None when no recorded step of the op was large enough to tell (see `MIN_PROFILE_ROWS`)."""
    cpu_seconds: float
    seconds: float


@dataclass(frozen=True)
class OpProfile:
    """Figures over the recorded steps of one op. CPU and wall seconds per 1k rows are means of each step's own
    ratio over the steps of at least `MIN_PROFILE_ROWS` rows (all steps when there are none); memory per 1k rows
    is the median of `rss_delta_mb` per 1k rows over such steps, capped (None without any)."""

    op: str
    samples: int
    rows: int
    memory_mb_per_1k_rows: float | None
    cpu_seconds_per_1k_rows: float
    seconds_per_1k_rows: float
    rows_per_s: float
    """Throughput over all recorded steps: their rows over their seconds."""
    peak_rss_mb_mean: float
    memory_samples: int = 0
    """Steps the memory figure comes from."""

    @classmethod
    def from_steps(cls, op: str, steps: Sequence[StepRecord]) -> OpProfile:
        sized = [s for s in steps if s.rows_in >= MIN_PROFILE_ROWS]

        def per_1k(attr: str) -> float:
            return statistics.fmean(getattr(s, attr) / s.rows_in * 1000 for s in sized or steps)

        deltas = [max(0.0, s.rss_delta_mb) / s.rows_in * 1000 for s in sized if s.rss_delta_mb is not None]
        seconds = sum(s.seconds for s in steps)
        rows = sum(s.rows_in for s in steps)
        return cls(
            op=op,
            samples=len(steps),
            rows=int(rows),
            memory_mb_per_1k_rows=min(statistics.median(deltas), MAX_MB_PER_1K_ROWS) if deltas else None,
            cpu_seconds_per_1k_rows=per_1k("cpu_seconds"),
            seconds_per_1k_rows=per_1k("seconds"),
            rows_per_s=rows / seconds if seconds > 0 else 0.0,
            peak_rss_mb_mean=statistics.fmean(s.peak_rss_mb for s in steps),
            memory_samples=len(deltas),
        )

    def predict(self, rows: int, margin: float) -> Prediction:
        scale = rows / 1000
        memory = self.memory_mb_per_1k_rows
        return Prediction(
            memory_mb=None if memory is None else max(MEMORY_FLOOR_MB, memory * scale * margin),
            cpu_seconds=self.cpu_seconds_per_1k_rows * scale * margin,
            seconds=self.seconds_per_1k_rows * scale * margin,
        )


def discover_op_assets(instance: dg.DagsterInstance) -> dict[str, list[dg.AssetKey]]:
    """Op name → asset keys, over every asset of the instance whose latest materialization has `rows_in`."""
    found: dict[str, list[dg.AssetKey]] = {}
    for key in instance.get_asset_keys():
        latest = instance.fetch_materializations(key, limit=1).records
        materialization = latest[0].asset_materialization if latest else None
        if materialization is not None and "rows_in" in materialization.metadata:
            found.setdefault(op_name_of(key), []).append(key)
    return found


class ResourceUsageAnalyzer:
    """Profiles of ops from the last `history` materializations of each of their assets.

    `ops` maps op name → asset keys (an op appears under several keys when several recipes, or one recipe
    twice, use it); without it, every asset of the instance with step metadata is found by `discover_op_assets`.
    Profiles are read once and cached; `refresh()` reads them again.
    """

    def __init__(
        self,
        instance: dg.DagsterInstance,
        margin: float = 1.2,
        *,
        ops: Mapping[str, Iterable[dg.AssetKey]] | None = None,
        history: int = 200,
    ) -> None:
        if margin <= 0:
            raise ValueError(f"margin must be positive, got {margin}")
        self.instance = instance
        self.margin = margin
        self.history = history
        self._ops = {name: list(keys) for name, keys in ops.items()} if ops is not None else None
        self._profiles: dict[str, OpProfile] | None = None

    def steps(self, asset_keys: Iterable[dg.AssetKey]) -> list[StepRecord]:
        """The step records of the last `history` materializations of each asset, newest first. Materializations
        read by an earlier call (in any process) come from `HISTORY_CACHE`; only newer ones are read from the
        instance, which deserializes every event it returns (~0.4 ms each: reading 2,000 took a second)."""
        cache = _HistoryCache(self.instance, self.history)
        steps = self._steps(cache, asset_keys)
        cache.save()
        return steps

    @staticmethod
    def _steps(cache: _HistoryCache, asset_keys: Iterable[dg.AssetKey]) -> list[StepRecord]:
        return [step for key in asset_keys for step in cache.steps(key)]

    def refresh(self) -> dict[str, OpProfile]:
        ops = self._ops if self._ops is not None else discover_op_assets(self.instance)
        profiles: dict[str, OpProfile] = {}
        cache = _HistoryCache(self.instance, self.history)  # one file read and written for all ops
        for name, keys in sorted(ops.items()):
            steps = self._steps(cache, keys)
            if steps:
                profiles[name] = OpProfile.from_steps(name, steps)
        cache.save()
        self._profiles = profiles
        return profiles

    def profiles(self) -> dict[str, OpProfile]:
        return self._profiles if self._profiles is not None else self.refresh()

    def profile(self, op_name: str) -> OpProfile | None:
        return self.profiles().get(op_name)

    def predict(self, op_name: str, rows: int) -> Prediction | None:
        """Memory, CPU seconds and wall seconds a step of `rows` input rows needs; None without history."""
        profile = self.profile(op_name)
        return profile.predict(rows, self.margin) if profile is not None else None

    def memory_gb_predictions(self, rows: int) -> dict[str, float]:
        """Predicted memory in GB (2**30 bytes) of a step of `rows` rows for every op whose history can tell: the
        shape the pools' planner takes as `predictions`."""
        found = {name: p.predict(rows, self.margin).memory_mb for name, p in self.profiles().items()}
        return {name: mb / 1024 for name, mb in found.items() if mb is not None}

    def render_profiles(self, op_name: str | None = None) -> str:
        profiles = self.profiles()
        if op_name is not None:
            profiles = {op_name: profiles[op_name]} if op_name in profiles else {}
        if not profiles:
            which = f"op {op_name!r}" if op_name else "any op"
            return f"no recorded steps with resource metadata for {which} (run a recipe first: `sluice run RECIPE`)"
        header = (
            f"{'op':<34}{'steps':>6}{'rows':>10}{'MB/1k rows':>12}{'CPU s/1k':>10}{'rows/s':>11}{'peak RSS MB':>13}"
        )
        lines = [header]
        for p in profiles.values():
            memory = "-" if p.memory_mb_per_1k_rows is None else f"{p.memory_mb_per_1k_rows:.2f}"
            lines.append(
                f"{p.op:<34}{p.samples:>6}{p.rows:>10}{memory:>12}"
                f"{p.cpu_seconds_per_1k_rows:>10.4f}{p.rows_per_s:>11,.0f}{p.peak_rss_mb_mean:>13.1f}"
            )
        lines.append(
            f"predictions: per-1k figures × rows/1000 × margin {self.margin}; MB/1k rows is the RSS a step added, "
            f"from steps of at least {MIN_PROFILE_ROWS} rows ('-': none yet)"
        )
        return "\n".join(lines)


# --- `sluice profile [OP]` ------------------------------------------------------------------------------------


def _cmd_profile(args: argparse.Namespace) -> int:
    from resources.settings import sluice_home

    sluice_home().ensure_dagster_home()
    with dg.DagsterInstance.get() as instance:
        analyzer = ResourceUsageAnalyzer(instance, margin=args.margin, history=args.history)
        print(analyzer.render_profiles(args.op))
        return 0 if args.op is None or analyzer.profile(args.op) is not None else 1


def add_profile_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Register `profile [OP]` on an argparse subparsers object (its handler is `args.fn(args)`)."""
    parser = subparsers.add_parser(
        "profile", help="per-op resource profiles learnt from past runs on the local Dagster instance"
    )
    parser.add_argument("op", nargs="?", help="one op's profile (default: every op with recorded steps)")
    parser.add_argument("--margin", type=float, default=1.2, help="safety margin of predictions (default 1.2)")
    parser.add_argument("--history", type=int, default=200, help="latest materializations read per asset (default 200)")
    parser.set_defaults(fn=_cmd_profile)
    return parser
