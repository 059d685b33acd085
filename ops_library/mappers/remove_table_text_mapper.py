"""remove_table_text_mapper: delete blocks of lines that look like table rows."""

from __future__ import annotations

import polars as pl
from pydantic import Field

from ops_library.base import Mapper, OpParams
from ops_library.registry import register

# Data-Juicer's pattern: r"(?<=\n)((\S+?)([ |\t](\S+?)){%d}\n+){2,}" for columns-1 = %d, i.e. two or more
# consecutive lines (after a "\n") of exactly that many cells, cells split by one space, "|" or tab.
# Rust has no look-behind, so the "\n" is matched and put back. That finds the same matches: a match that ended
# right before another could begin would have taken that row into its own `{2,}` loop.
ROWS = r"(\n)((\S+?)([ |\t](\S+?)){%d}\n+){2,}"


@register("remove_table_text_mapper")
class RemoveTableTextMapper(Mapper):
    """Deletes runs of 2+ lines (not the first line of the text) that each hold the same number of cells,
    between `min_col` and `max_col`, separated by single spaces, "|" or tabs; one pass per column count, fewest
    first. Matches Data-Juicer's op of the same name."""

    class Params(OpParams):
        min_col: int = Field(2, ge=2, le=20, description="The fewest columns of a table to remove.")
        max_col: int = Field(20, ge=2, le=20, description="The most columns of a table to remove.")

    def map_text(self, text: pl.Expr) -> pl.Expr:
        for gaps in range(self.params.min_col - 1, self.params.max_col):
            text = text.str.replace_all(ROWS % gaps, "${1}")
        return text
