"""average_line_length_filter: keep texts whose average line length lies in a range."""

from __future__ import annotations

import polars as pl
from pydantic import Field

from ops_library.base import INF, Filter, FilterParams
from ops_library.registry import register
from ops_library.stats import StatsKeys
from ops_library.text import count_lines


@register("average_line_length_filter")
class AverageLineLengthFilter(Filter):
    """Keeps rows whose average line length lies in [min_len, max_len]. Matches Data-Juicer's op of the same name
    (stat `avg_line_length`).

    As in Data-Juicer the average is the whole text's length in code points, line breaks included, over the
    number of lines of Python's `str.splitlines()` (which also breaks at \\r, \\v, \\f, \\x1c-\\x1e, U+0085,
    U+2028 and U+2029, "\\r\\n" being one break); 0.0 for an empty text.
    """

    class Params(FilterParams):
        min_len: int = Field(10, description="Smallest average line length kept, in code points.")
        max_len: int = Field(INF, description="Largest average line length kept, in code points.")

    stat = StatsKeys.avg_line_length
    bounds = ("min_len", "max_len")

    def stats(self, text: pl.Expr) -> dict[str, pl.Expr]:
        lines = count_lines(text)
        return {self.stat: pl.when(lines > 0).then(text.str.len_chars() / lines).otherwise(0.0).cast(pl.Float64)}
