"""special_characters_filter: keep texts whose share of special characters lies in a range."""

from __future__ import annotations

import polars as pl
from pydantic import Field

from ops_library.base import Filter, FilterParams
from ops_library.filters.alphanumeric_filter import char_ratio
from ops_library.registry import register
from ops_library.stats import StatsKeys
from ops_library.text import SPECIAL_CLASS


@register("special_characters_filter")
class SpecialCharactersFilter(Filter):
    """Keeps rows whose share of special characters among all code points lies in [min_ratio, max_ratio]; an empty
    text has ratio 0. Matches Data-Juicer's op of the same name (stat `special_char_ratio`).

    Special is Data-Juicer's `SPECIAL_CHARACTERS`: ASCII punctuation, digits and whitespace (so spaces, newlines
    and digits count), about 190 listed symbols, and every single-code-point emoji of emoji==2.2.0; an emoji
    made of several code points counts only through those of its code points that are special on their own.
    """

    class Params(FilterParams):
        min_ratio: float = Field(0.0, description="Smallest special-character ratio kept.")
        max_ratio: float = Field(0.25, description="Largest special-character ratio kept.")

    stat = StatsKeys.special_char_ratio
    bounds = ("min_ratio", "max_ratio")

    def stats(self, text: pl.Expr) -> dict[str, pl.Expr]:
        return {self.stat: char_ratio(text, "special", lambda: SPECIAL_CLASS)}
