"""Live progress of a job, read from the Dagster instance (so it works for any process that wrote it: `sluice run`,
a Celery worker, a run launched from the UI).

* `job_status(instance, job_id)`: per run (a phase of `sluice run`, or a UI launch), per asset, which shards are
  materialized out of the shards the run targets. Runs of a `sluice run` job carry `sluice/job_id`; a run id (or
  nothing: the recipe's latest runs) finds runs launched from the UI, which do not.
* `Progress`: a thread that prints, while `sluice run` works, shards done/total, rows/s and an ETA: one line
  rewritten in place on a terminal, a plain line every `every_s` seconds (when it changed) otherwise.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dagster as dg

RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


@dataclass
class AssetProgress:
    done: set[str] = field(default_factory=set)
    rows: int = 0


@dataclass
class RunProgress:
    run_id: str
    job_name: str
    status: str
    phase: str
    shards: list[str]
    assets: dict[str, AssetProgress]
    start: float | None
    end: float | None

    def render(self) -> list[str]:
        phase = str(int(self.phase) + 1) if self.phase.isdigit() else self.phase  # as `sluice run` counts them
        head = f"phase {phase:<3} run {self.run_id[:8]}  {self.status:<9}"
        if self.shards:
            span = self.shards[0] if len(self.shards) == 1 else f"{self.shards[0]} … {self.shards[-1]}"
            head += f"  {len(self.shards)} shards ({span})"
        lines = [head]
        for name, a in self.assets.items():
            total = len(self.shards) or 1
            marks = " ".join(f"{k}{'✓' if k in a.done else '·'}" for k in self.shards) if self.shards else ""
            lines.append(f"    {name:<44}{len(a.done) if self.shards else 1}/{total}  {marks}".rstrip())
        return lines


def _shards(run: dg.DagsterRun, order: Sequence[str]) -> list[str]:
    tags = run.tags
    if "dagster/partition" in tags:
        return [tags["dagster/partition"]]
    if RANGE_START in tags and RANGE_END in tags and tags[RANGE_START] in order and tags[RANGE_END] in order:
        return list(order[order.index(tags[RANGE_START]) : order.index(tags[RANGE_END]) + 1])
    return []


def run_progress(instance: dg.DagsterInstance, run: dg.DagsterRun) -> RunProgress:
    assets: dict[str, AssetProgress] = {}
    for key in sorted(run.asset_selection or [], key=lambda k: (k.path[-1] != "source", k.path[-1])):
        assets[key.path[-1]] = AssetProgress()
    order: list[str] = []
    for entry in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        mat = entry.asset_materialization
        if mat is None:
            continue
        a = assets.setdefault(mat.asset_key.path[-1], AssetProgress())
        a.done.add(mat.partition or "")
        rows = mat.metadata.get("rows_in") or mat.metadata.get("rows_out")  # the source has only rows_out
        a.rows += int(rows.value) if rows is not None and isinstance(rows.value, int) else 0
    prefix = next(iter(run.asset_selection or []), None)
    if prefix is not None:
        name = f"{prefix.path[0]}_shards"
        order = list(instance.get_dynamic_partitions(name))
    stats = instance.get_run_stats(run.run_id)
    return RunProgress(
        run_id=run.run_id,
        job_name=run.job_name,
        status=run.status.value,
        phase=run.tags.get("sluice/phase", "ui"),
        shards=_shards(run, order),
        assets=assets,
        start=stats.start_time,
        end=stats.end_time,
    )


def find_runs(instance: dg.DagsterInstance, ref: str | None, recipe: str | None = None) -> list[dg.DagsterRun]:
    """The runs of a job id (tag `sluice/job_id`), of a backfill id (tag `dagster/backfill`: a backfill launched
    from the UI), else the run of that run id; no ref: the latest runs touching recipe `recipe`'s assets (runs
    launched from the UI carry no job id, and an asset backfill's runs not even the recipe's job name), or the
    latest job's runs."""
    if ref:
        for tag in ("sluice/job_id", "dagster/backfill"):
            runs = instance.get_runs(dg.RunsFilter(tags={tag: ref}))
            if runs:
                return sorted(runs, key=lambda r: (int(r.tags.get("sluice/phase", 0)), r.run_id))
        run = instance.get_run_by_id(ref)
        return [run] if run is not None else []
    if recipe:
        recent = instance.get_runs(limit=200)
        mine = [r for r in recent if any(k.path[0] == recipe for k in r.asset_selection or [])]
        return list(reversed(mine[:10]))
    latest = instance.get_runs(dg.RunsFilter(tags={"sluice/job_id": ""}), limit=1) or instance.get_runs(limit=1)
    if latest and latest[0].tags.get("sluice/job_id"):
        return find_runs(instance, latest[0].tags["sluice/job_id"])
    return latest


def job_status(instance: dg.DagsterInstance, ref: str | None, recipe: str | None = None) -> list[str]:
    """`sluice status`: a header, then per run its phase, state and shards, and per asset the shards done."""
    runs = find_runs(instance, ref, recipe)
    if not runs:
        return [f"no runs found for {ref or recipe or 'this instance'}"]
    head = runs[0].tags.get("sluice/job_id") or runs[0].tags.get("dagster/backfill") or runs[0].job_name
    lines = [f"job {head}: {len(runs)} runs"]
    for run in runs:
        lines += run_progress(instance, run).render()
    return lines


class Progress:
    """Prints a progress line of job `job_id` every `every_s` seconds while `sluice run` works: shard-steps done
    out of `total`, input rows per second of the steps done, and an ETA at that pace."""

    def __init__(
        self,
        instance: dg.DagsterInstance,
        job_id: str,
        total: int,
        echo: Callable[[str], None] | None = None,
        every_s: float | None = None,
        tty: bool | None = None,
    ) -> None:
        self.instance, self.job_id, self.total = instance, job_id, max(1, total)
        self.tty = sys.stdout.isatty() if tty is None else tty
        self.every_s = every_s or (1.0 if self.tty else 10.0)
        self.echo = echo or print
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sluice-progress", daemon=True)
        self._t0 = time.monotonic()
        self._last = ""

    def snapshot(self) -> tuple[int, int]:
        """(shard-steps materialized, input rows so far) of the job: the rows of the step that has seen the most,
        i.e. the input rows read, whichever phase the job is in."""
        done = 0
        rows: dict[str, int] = {}
        for run in self.instance.get_runs(dg.RunsFilter(tags={"sluice/job_id": self.job_id})):
            for name, a in run_progress(self.instance, run).assets.items():
                done += len(a.done)
                rows[name] = rows.get(name, 0) + a.rows
        return done, max(rows.values(), default=0)

    def line(self) -> str:
        done, rows = self.snapshot()
        secs = max(1e-6, time.monotonic() - self._t0)
        eta = (self.total - done) * secs / done if 0 < done < self.total else 0.0
        pct = 100 * min(done, self.total) / self.total
        done = min(done, self.total)
        return f"progress {done}/{self.total} shard-steps ({pct:.0f}%)  {rows / secs:,.0f} rows/s  ETA {eta:.0f} s"

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                text = self.line()
            except Exception:  # progress must never break the run
                continue
            if self.tty:
                sys.stdout.write("\r\033[K" + text)
                sys.stdout.flush()
            elif text != self._last:
                self.echo(text)
            self._last = text

    def __enter__(self) -> Progress:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        if self.tty and self._last:
            sys.stdout.write("\r\033[K")
            sys.stdout.flush()


def progress_for(
    instance: dg.DagsterInstance, job_id: str, phases: Sequence, shards: int, echo: Callable[[str], None]
) -> Progress:
    """The progress printer of a `sluice run` job: every partitioned step once per shard, every global stage once
    (phases whose checkpoints are all current are counted as to do: the ETA errs long on a resume)."""
    total = sum(len(p.keys) * (shards if p.partitioned else 1) for p in phases)
    return Progress(instance, job_id, total, echo=echo)
