"""What runs inside a step: the ops on one shard (`opchain.run_ops`, with its row accounting), and the metadata a
step records.

A step of a partitioned asset materializes a list of shards (one, a range, or every registered shard); each
shard is computed here and checkpointed as soon as it is done, so a step killed halfway and retried recomputes
only the shards it had not finished. A shard whose checkpoint is intact and was computed from the current
upstream checkpoints is not recomputed (`is_current`). Nothing here knows which Dagster run or executor it is
in: `pipeline_defs/graph.py` wraps these functions into asset bodies.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import dagster as dg
import polars as pl

from ops_library.base import INF, Deduplicator, Filter, Op, OpOutput
from ops_library.columns import DROP_REASON, ROW_ID, STATS
from pipeline_defs import charts
from pipeline_defs.fingerprints import keyed, node_fingerprint
from pipeline_defs.opchain import AccountingError
from pipeline_defs.recipe import OpSpec, RetrySpec
from pipeline_defs.shards import DatasetError
from resources.storage import (
    CheckpointMeta,
    CheckpointStore,
    CorruptCheckpointError,
    MissingCheckpointError,
    StepOutput,
)

PARTITION_COL = "__sluice_partition__"


class StepTimeoutError(RuntimeError):
    """A step ran longer than `engine.step_timeout_s`."""


# Errors a retry cannot fix: bad data or config, broken accounting, a checkpoint that must be recomputed.
DETERMINISTIC_ERRORS: tuple[type[BaseException], ...] = (
    DatasetError,
    AccountingError,
    MissingCheckpointError,
    CorruptCheckpointError,
    RecursionError,
    ValueError,
    TypeError,
    LookupError,
    AttributeError,
    NotImplementedError,
    pl.exceptions.PolarsError,
)


def retry_policy(spec: RetrySpec) -> dg.RetryPolicy:
    backoff = {"exponential": dg.Backoff.EXPONENTIAL, "linear": dg.Backoff.LINEAR, "fixed": None}[spec.backoff]
    jitter = {"none": None, "full": dg.Jitter.FULL, "plus_minus": dg.Jitter.PLUS_MINUS}[spec.jitter]
    return dg.RetryPolicy(max_retries=spec.max_retries, delay=spec.delay, backoff=backoff, jitter=jitter)


def root_cause(exc: BaseException) -> str:
    """`<Type>: <message>` of the innermost cause, on one line, with the path when the OS named one."""
    while exc.__cause__ is not None and not isinstance(exc, dg.Failure):
        exc = exc.__cause__
    text = f"{type(exc).__name__}: {exc}".splitlines()[0]
    filename = getattr(exc, "filename", None)
    if filename and str(filename) not in text:
        text += f" ({filename})"
    return text


def classified(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Transient failures (I/O, memory, timeouts, anything unknown) propagate and are retried by the step's
    RetryPolicy; deterministic ones fail the step at once with a one-line message."""

    @functools.wraps(fn)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except dg.Failure:
            raise
        except BaseException as exc:
            # Dagster turns SIGINT/SIGTERM into an exception inside the step; a RetryPolicy would retry it.
            if isinstance(exc, KeyboardInterrupt) or type(exc).__name__ == "DagsterExecutionInterruptedError":
                raise dg.Failure(description="Interrupted by a signal (not retried)", allow_retries=False) from exc
            if not isinstance(exc, Exception):
                raise
            return _classify(exc)

    return wrapped


def _classify(exc: Exception) -> Any:
    """Re-raise `exc` as a deterministic failure, a retryable OSError naming its cause, or as it is."""
    try:
        raise exc
    except DETERMINISTIC_ERRORS as exc:
        raise dg.Failure(
            description=f"{root_cause(exc)} (not retried: rerunning cannot fix it)", allow_retries=False
        ) from exc
    except OSError as exc:  # disk full, permissions: retried, but the message names the cause and the path
        raise OSError(root_cause(exc)) from exc


def stat_histograms(ops: Sequence[tuple[OpSpec, Op]], kept: pl.DataFrame, dropped: pl.DataFrame | None):
    """A Markdown histogram per single-stat filter of the step, over every row it saw (kept and dropped)."""
    filters = [(spec, op) for spec, op in ops if isinstance(op, Filter) and op.stat]
    frames = [f for f in (kept, dropped) if f is not None and STATS in f.columns]
    if not filters or not frames:
        return {}
    wanted = {op.stat for _, op in filters}
    parts = []
    for f in frames:  # only the filters' own stats: the struct carries every earlier op's too
        fields = [name for name in f.schema[STATS].to_schema() if name in wanted]  # type: ignore[attr-defined]
        parts.append(f.select(pl.col(STATS).struct.field(*fields)) if fields else pl.DataFrame(height=f.height))
    stats = pl.concat(parts, how="diagonal_relaxed")
    out = {}
    for spec, op in filters:
        if op.stat in stats.columns:
            lo, hi = (getattr(op.params, b) for b in op.bounds)
            hi = None if hi is not None and hi >= INF else hi
            out[f"histogram/{op.stat}"] = dg.MetadataValue.md(
                f"**{spec.name}**: `{op.stat}`, keep range [{lo}, {hi if hi is not None else '∞'}]\n\n"
                + charts.histogram_markdown(stats[op.stat], lo, hi)
            )
    return out


def step_metadata(rows_in: int, out: StepOutput, seconds: float, per_op: list[dict[str, Any]]) -> dict[str, Any]:
    rows_out = out.kept.height
    n_dropped = 0 if out.dropped is None else out.dropped.height
    meta: dict[str, Any] = {
        "rows_in": rows_in,
        "rows_out": rows_out,
        "dropped": n_dropped,
        "drop_ratio": round(n_dropped / rows_in, 4) if rows_in else 0.0,
        "seconds": round(seconds, 4),
        "rows_per_s": round(rows_in / seconds, 1) if seconds > 0 else 0.0,
        "dagster/row_count": rows_out,
        "fingerprint": out.fingerprint,
        "per_op": dg.MetadataValue.json(per_op),
    }
    changed = [p["changed"] for p in per_op if p.get("changed") is not None]
    if changed:
        meta["changed_rows"] = sum(changed)
    if out.dropped is not None and out.dropped.height:
        sample = out.dropped.head(5).select(ROW_ID, DROP_REASON)
        meta["dropped_sample"] = dg.MetadataValue.md(
            "| row | reason |\n|---|---|\n" + "\n".join(f"| `{r}` | {why} |" for r, why in sample.iter_rows())
        )
    return meta


def step_summary(meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The per-op stats a step recorded (fused steps report each op)."""
    import json

    raw = meta.get("per_op")
    value = getattr(raw, "value", raw)
    if isinstance(value, str):
        value = json.loads(value)
    return list(value or [])


# --- which shards a step computes --------------------------------------------------------------------------


@dataclass
class ShardResult:
    """What one shard of a step produced: its metadata, or `reused` when its checkpoint was already current."""

    shard: str
    metadata: dict[str, Any] = field(default_factory=dict)
    reused: bool = False


def checkpoint_problem(store: CheckpointStore, asset_path: Sequence[str], shard: str | None, fingerprint: str):
    """Why a checkpoint cannot be reused (None when it can): it must record `fingerprint` and the file must have
    the recorded size. (Its content hash is checked when it is read.)"""
    path = store.path(asset_path, shard)
    meta = CheckpointMeta.load(path)
    if meta is None:
        return "no checkpoint"
    if meta.fingerprint != fingerprint:
        return "recipe or input changed since it was written"
    try:
        size = path.stat().st_size
    except OSError:
        return f"corrupt: {path.name} is missing beside its sidecar"
    if size != meta.bytes:
        return f"corrupt: {path.name} has {size} bytes, its sidecar says {meta.bytes}"
    problem = store.base_problem(meta)  # a selection: the checkpoint its rows come from must be as it was
    if problem is not None:
        return problem
    if meta.dropped is not None:  # the rows this step dropped are part of its checkpoint
        part = store.path(asset_path, shard, "dropped")
        part_meta = CheckpointMeta.load(part)
        if part_meta is None or not part.exists() or part.stat().st_size != part_meta.bytes:
            return f"corrupt: its dropped rows ({part.name}) are missing or damaged"
        problem = store.base_problem(part_meta)
        if problem is not None:
            return f"its dropped rows: {problem}"
    return None


def is_current(store: CheckpointStore, asset_path: Sequence[str], shard: str | None, fingerprint: str) -> bool:
    return checkpoint_problem(store, asset_path, shard, fingerprint) is None


def cached_first(todo: list[tuple[str, Any]], cached: Callable[[str], bool]) -> list[tuple[str, Any]]:
    """A row step's shards to compute ((key, ...) each), those whose upstream frame this process still holds
    first, each group in its own order. The cache (`FRAMES`) keeps the frames written last; when one step's
    frames outgrow it, reading in input order would miss on every shard, each miss's decode and the frame it
    writes pushing out the next frames to read. Cached first, each hit's frame leaves the cache as its output
    comes in, so every frame still held is read from memory."""
    return sorted(todo, key=lambda t: not cached(t[0]))  # stable: each group keeps its order


def upstream_fingerprints(
    store: CheckpointStore, upstream: Sequence[tuple[Sequence[str], bool]], shard: str
) -> list[str] | None:
    """Fingerprints of a shard's upstream checkpoints ((asset path, partitioned?) each); None if one is missing."""
    fps = []
    for path, partitioned in upstream:
        fp = store.fingerprint(path, shard if partitioned else None)
        if not fp:
            return None
        fps.append(fp)
    return fps


def global_fingerprint(
    code_node: Any,
    store: CheckpointStore,
    upstream_path: Sequence[str],
    shards: Sequence[str],
    global_upstream_fps: Sequence[str] = (),
):
    """The fingerprint a global stage over `shards` of `upstream_path` (and over the fingerprints of the global
    checkpoints before it, an index chained before it) gets, and the shards still missing."""
    parts, missing = [], []
    for k in shards:
        fp = store.fingerprint(upstream_path, k)
        if not fp:
            missing.append(k)
        parts.append(keyed(k, fp))
    parts.extend(global_upstream_fps)
    return node_fingerprint(code_node, parts), missing


def index_slice(store: CheckpointStore, index_path: Sequence[str], shard: str) -> pl.DataFrame:
    """The part of a dedup index a shard's apply step needs: its own rows (with DUPLICATE_OF and any cluster
    column), or the whole index when it is not keyed by row (line dedup's frequent lines)."""
    index = store.read(store.path(index_path, None))
    if PARTITION_COL not in index.columns:
        return index
    return index.filter(pl.col(PARTITION_COL) == shard).drop(PARTITION_COL)


def dedup_first(index: pl.DataFrame) -> Callable[[Op, pl.DataFrame], OpOutput]:
    def first(op: Op, df: pl.DataFrame) -> OpOutput:
        assert isinstance(op, Deduplicator)
        return op.apply(df, index)

    return first


class Deadline:
    """`engine.step_timeout_s`: checked between shards and between ops of a step (a Python op cannot be
    interrupted mid-call safely, so a shard that overruns fails as soon as it returns)."""

    def __init__(self, step: str, timeout_s: float | None):
        self.step = step
        self.timeout_s = timeout_s
        self.started = time.monotonic()

    def check(self, shard: str = "") -> None:
        if self.timeout_s is None:
            return
        elapsed = time.monotonic() - self.started
        if elapsed > self.timeout_s:
            where = f" (at shard {shard})" if shard else ""
            raise StepTimeoutError(
                f"step {self.step} ran {elapsed:.1f} s, over engine.step_timeout_s={self.timeout_s:g}{where}"
            )
