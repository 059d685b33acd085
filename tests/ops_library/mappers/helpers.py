"""Shared by the mapper tests: a frame of texts with row ids, and one op applied to texts."""

from __future__ import annotations

from typing import Any

import polars as pl

from ops_library.columns import ROW_ID
from ops_library.registry import get_op


def frame(*texts: str | None) -> pl.DataFrame:
    return pl.DataFrame(
        {"text": list(texts), ROW_ID: [f"f.jsonl:{i}" for i in range(1, len(texts) + 1)]},
        schema={"text": pl.String, ROW_ID: pl.String},
    )


def apply(op: str, *texts: str | None, **params: Any) -> list[str | None]:
    """The texts after `op` with `params`, in order."""
    return get_op(op)(params).run(frame(*texts)).kept["text"].to_list()
