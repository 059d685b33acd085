"""Small frames and accessors shared by the filter tests."""

from __future__ import annotations

from typing import Any

import polars as pl

from ops_library.base import Op
from ops_library.columns import ROW_ID, STATS


def frame(*texts: str | None, **columns: list[Any]) -> pl.DataFrame:
    """Rows of `texts` with Sluice ids `f.jsonl:1..n`, plus any extra columns."""
    data = {"text": list(texts), ROW_ID: [f"f.jsonl:{i}" for i in range(1, len(texts) + 1)], **columns}
    return pl.DataFrame(data, schema_overrides={"text": pl.String, ROW_ID: pl.String})


def stats_of(op: Op, *texts: str, stat: str | None = None) -> list[Any]:
    """The op's stat for each text (every row kept: the stat is read from kept and dropped rows alike)."""
    out = op.run(frame(*texts))
    rows = pl.concat([out.kept, out.dropped.select(out.kept.columns)]) if out.dropped is not None else out.kept
    rows = rows.sort(pl.col(ROW_ID).str.extract(r":(\d+)$").cast(pl.Int64))
    return rows[STATS].struct.field(stat or op.stat).to_list()


def kept_texts(op: Op, *texts: str) -> list[str]:
    return op.run(frame(*texts)).kept["text"].to_list()


def with_stored_stats(df: pl.DataFrame, rows: list[dict[str, Any]]) -> pl.DataFrame:
    """The frame with `__dj__stats__` already holding these stats (one dict per row), as after an earlier run."""
    return df.with_columns(pl.Series(STATS, rows))
