"""character_repetition_filter: keep texts whose character n-gram repetition ratio lies in a range."""

from __future__ import annotations

import math

import polars as pl
from pydantic import Field, PositiveInt

from ops_library import codepoints
from ops_library.base import Filter, FilterParams
from ops_library.registry import register
from ops_library.stats import StatsKeys


def char_rep_ratio(text: str, n: int) -> float:
    """Data-Juicer's (BigScience ROOTS) ratio: the top-k most frequent character n-grams' share of all n-grams,
    k = min(floor(sqrt(#distinct n-grams)), #n-grams seen more than once)."""
    freq: dict[str, int] = {}
    for i in range(len(text) - n + 1):
        gram = text[i : i + n]
        freq[gram] = freq.get(gram, 0) + 1
    repeated = sorted((f for f in freq.values() if f > 1), reverse=True)
    k = min(math.isqrt(len(freq)), len(repeated))
    return sum(repeated[:k]) / (len(text) - n + 1) if k else 0.0


@register("character_repetition_filter")
class CharacterRepetitionFilter(Filter):
    """Keeps rows whose character n-gram repetition ratio lies in [min_ratio, max_ratio]. Matches Data-Juicer's
    op of the same name (stat `char_rep_ratio`).

    The ratio counts every overlapping n-gram of code points (n = rep_len, case-sensitive) and takes the summed
    frequency of the k most frequent over the total, k = min(floor(sqrt(#distinct)), #distinct - #singletons);
    0.0 when the text is shorter than n. The n-grams are counted by a compiled kernel (`codepoints.char_rep_ratios`:
    hashed, then checked code point by code point, so the counts are exact); without numba, by a Python loop per
    row (a dict of slices, as in Data-Juicer). Vectorized polars forms were slower than that loop: n shifted
    one-character columns grouped took 2.3 s on the 30k-document demo corpus, against 1.0 CPU-s for the loop.
    """

    class Params(FilterParams):
        rep_len: PositiveInt = Field(10, description="Length of the character n-grams, in code points.")
        min_ratio: float = Field(0.0, description="Smallest repetition ratio kept.")
        max_ratio: float = Field(0.5, description="Largest repetition ratio kept.")

    stat = StatsKeys.char_rep_ratio
    bounds = ("min_ratio", "max_ratio")

    def stats(self, text: pl.Expr) -> dict[str, pl.Expr]:
        n = self.params.rep_len

        def ratios(texts: pl.Series) -> pl.Series:
            if codepoints.kernels() is not None:
                return codepoints.char_rep_ratios(texts, n, char_rep_ratio)
            return pl.Series([None if t is None else char_rep_ratio(t, n) for t in texts.to_list()], dtype=pl.Float64)

        return {self.stat: text.map_batches(ratios, return_dtype=pl.Float64, is_elementwise=True)}
