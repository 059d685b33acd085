"""Python functions applied row by row to a text column, for the ops whose work has no polars form (a parser,
a fixer, a per-document set): one place that skips nulls and rows a cheap vectorized check rules out."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl


def map_rows(text: pl.Expr, fn: Callable[[str], str], needs: pl.Expr | None = None) -> pl.Expr:
    """`fn(t)` for every non-null text `t` where `needs` is true (default: every row); other rows unchanged."""
    needs = pl.lit(True) if needs is None else needs

    def apply(batch: pl.Series) -> pl.Series:
        texts = batch.struct.field("t")
        todo = (batch.struct.field("n").fill_null(False) & texts.is_not_null()).arg_true()
        if todo.len() == 0:
            return texts
        done = pl.Series([fn(t) for t in texts.gather(todo).to_list()], dtype=pl.String)
        return texts.clone().scatter(todo, done)

    return pl.struct(text.alias("t"), needs.alias("n")).map_batches(apply, return_dtype=pl.String, is_elementwise=True)
