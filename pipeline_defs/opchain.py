"""One shard through a chain of ops, with the row accounting each op must keep: what a step runs on its shards
(pipeline_defs/step.py), and what `sluice run`'s prefetch thread runs ahead of the steps before Dagster is
imported (pipeline_defs/prefetch.py). Nothing here imports Dagster."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import polars as pl

from ops_library.base import Op, OpOutput
from pipeline_defs.recipe import OpSpec


class AccountingError(RuntimeError):
    """A step lost or invented rows: rows in != kept + dropped."""


def run_ops(
    ops: Sequence[tuple[OpSpec, Op]],
    df: pl.DataFrame,
    shard: str,
    first: Callable[[Op, pl.DataFrame], OpOutput] | None = None,
    placement: dict[str, Any] | None = None,
) -> tuple[pl.DataFrame, list[pl.DataFrame], list[dict[str, Any]]]:
    """Run ops in order on one frame; returns (kept, dropped frames, per-op stats). Each op's rows must
    reconcile: rows in + rows it created = kept + dropped. Ops that take a placement get the step's device
    and batch size."""
    per_op: list[dict[str, Any]] = []
    dropped: list[pl.DataFrame] = []
    for i, (spec, op) in enumerate(ops):
        t0 = time.perf_counter()
        if i == 0 and first is not None:
            out = first(op, df)
        elif op.accepts_placement and placement:
            out = op.run(df, **placement)  # type: ignore[call-arg]
        else:
            out = op.run(df)
        seconds = time.perf_counter() - t0
        added = getattr(out, "added", 0)
        if df.height + added != out.kept.height + out.dropped_count:
            raise AccountingError(
                f"{spec.step_name} on {shard}: {df.height} rows in (+{added} created) but {out.kept.height} kept "
                f"+ {out.dropped_count} dropped"
            )
        per_op.append(
            {
                "op": spec.step_name,
                "rows_in": df.height,
                "rows_out": out.kept.height,
                "dropped": out.dropped_count,
                "changed": out.changed,
                "seconds": round(seconds, 4),
                **(getattr(op, "last_run_info", None) or {}),
            }
        )
        if out.dropped is not None and out.dropped.height:
            dropped.append(out.dropped)
        df = out.kept
    return df, dropped, per_op


def spread(df: pl.DataFrame, chunks: int) -> pl.DataFrame:
    """The same rows in `chunks` pieces: polars runs an expression over a frame's chunks on its threads at
    once, so a shard cut in two keeps two cores busy (the rows, their order and every value are unchanged)."""
    if chunks <= 1 or df.height < 2 * chunks:
        return df
    size = -(-df.height // chunks)
    return pl.concat([df.slice(i, size) for i in range(0, df.height, size)], rechunk=False)


def concat_dropped(frames: list[pl.DataFrame]) -> pl.DataFrame | None:
    return pl.concat(frames, how="diagonal_relaxed") if frames else None
