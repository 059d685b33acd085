"""maximum_line_length_filter: keep texts whose longest line has a length in a range."""

from __future__ import annotations

import polars as pl
from pydantic import Field

from ops_library.base import INF, Filter, FilterParams
from ops_library.registry import register
from ops_library.stats import StatsKeys
from ops_library.text import max_line_length


@register("maximum_line_length_filter")
class MaximumLineLengthFilter(Filter):
    """Keeps rows whose longest line, in code points, lies in [min_len, max_len]. Matches Data-Juicer's op of the
    same name (stat `max_line_length`).

    Lines are those of Python's `str.splitlines()` (breaks at \\n, \\r, \\r\\n, \\v, \\f, \\x1c-\\x1e, U+0085,
    U+2028, U+2029), breaks excluded; an empty text has 0.
    """

    class Params(FilterParams):
        min_len: int = Field(10, description="Smallest maximum line length kept, in code points.")
        max_len: int = Field(INF, description="Largest maximum line length kept, in code points.")

    stat = StatsKeys.max_line_length
    bounds = ("min_len", "max_len")

    def stats(self, text: pl.Expr) -> dict[str, pl.Expr]:
        return {self.stat: max_line_length(text)}
