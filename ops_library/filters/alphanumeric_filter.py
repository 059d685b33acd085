"""alphanumeric_filter: keep texts whose share of letters and digits lies in a range."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl
from pydantic import Field

from ops_library import codepoints
from ops_library.base import INF, Filter, FilterParams, OpParams
from ops_library.registry import register
from ops_library.stats import StatsKeys
from ops_library.text import alnum_class


def char_ratio(text: pl.Expr, name: str, regex_class: Callable[[], str]) -> pl.Expr:
    """Characters of the class `name` (see `codepoints.class_table`) over all characters (code points); 0.0 for an
    empty text. Counted by the compiled code-point kernel, else by polars with the class as a regex."""
    if codepoints.kernels() is not None:
        return text.map_batches(lambda s: codepoints.class_ratio(s, name), return_dtype=pl.Float64, is_elementwise=True)
    total = text.str.len_chars()
    return pl.when(total > 0).then(text.str.count_matches(regex_class()) / total).otherwise(0.0).cast(pl.Float64)


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
        return {self.stat: char_ratio(text, "alnum", alnum_class)}
