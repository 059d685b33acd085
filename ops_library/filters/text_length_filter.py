"""text_length_filter: keep texts whose length in code points lies in a range."""

from __future__ import annotations

import polars as pl
from pydantic import Field

from ops_library.base import INF, Filter, FilterParams
from ops_library.registry import register


@register("text_length_filter")
class TextLengthFilter(Filter):
    """Keeps rows whose text length in Unicode code points (Python's `len`, no normalization) lies in
    [min_len, max_len]. Matches Data-Juicer's op of the same name."""

    class Params(FilterParams):
        min_len: int = Field(10, description="Smallest text length kept, in code points.")
        max_len: int = Field(INF, description="Largest text length kept, in code points.")

    stat = "text_len"
    bounds = ("min_len", "max_len")

    def stats(self, text: pl.Expr) -> dict[str, pl.Expr]:
        return {self.stat: text.str.len_chars().cast(pl.Int64)}
