"""alphanumeric_filter: keep texts whose share of letters and digits lies in a range."""

from __future__ import annotations

import polars as pl
from pydantic import Field

from ops_library.base import INF, Filter, FilterParams, OpParams
from ops_library.registry import register
from ops_library.stats import StatsKeys
from ops_library.text import ALNUM_CLASS


def char_ratio(text: pl.Expr, char_class: str) -> pl.Expr:
    """Characters of `char_class` over all characters (code points); 0.0 for an empty text."""
    total = text.str.len_chars()
    return pl.when(total > 0).then(text.str.count_matches(char_class) / total).otherwise(0.0).cast(pl.Float64)


@register("alphanumeric_filter")
class AlphanumericFilter(Filter):
    """Keeps rows whose share of alphanumeric characters (Python's `str.isalnum`, so CJK and other scripts count)
    among all code points lies in [min_ratio, max_ratio]; an empty text has ratio 0. Matches Data-Juicer's
    op of the same name (stat `alnum_ratio`).

    `tokenization=True` (letters per token of the `EleutherAI/pythia-6.9b-deduped` tokenizer) is refused: no
    package ships that tokenizer and Sluice downloads nothing.
    """

    class Params(FilterParams):
        tokenization: bool = Field(
            False, description="Count letters per tokenizer token instead of per character (not supported)."
        )
        min_ratio: float = Field(0.25, description="Smallest alphanumeric ratio kept.")
        max_ratio: float = Field(INF, description="Largest alphanumeric ratio kept.")

    stat = StatsKeys.alnum_ratio
    bounds = ("min_ratio", "max_ratio")

    @classmethod
    def unavailable(cls, params: OpParams) -> str | None:
        if getattr(params, "tokenization", False):
            return (
                "alphanumeric_filter: tokenization=True needs the Hugging Face tokenizer "
                "'EleutherAI/pythia-6.9b-deduped', which no installed package ships and Sluice does not download; "
                "use tokenization=False (characters)"
            )
        return None

    def stats(self, text: pl.Expr) -> dict[str, pl.Expr]:
        return {self.stat: char_ratio(text, ALNUM_CLASS)}
