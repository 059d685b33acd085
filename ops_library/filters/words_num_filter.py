"""words_num_filter: keep texts whose word count lies in a range."""

from __future__ import annotations

import polars as pl
from pydantic import Field, model_validator

from ops_library.base import INF, Filter, FilterParams
from ops_library.registry import register
from ops_library.text import count_refined_words


@register("words_num_filter")
class WordsNumFilter(Filter):
    """Keeps rows whose number of words (split on space, newline and tab; words made only of punctuation,
    digits or emoji not counted) lies in [min_num, max_num]. Matches Data-Juicer's op of the same name."""

    class Params(FilterParams):
        lang: str = Field("en", description="Language of the texts; only used to pick a tokenizer model.")
        tokenization: bool = Field(
            False, description="Split words with a SentencePiece model instead of whitespace (not supported)."
        )
        min_num: int = Field(10, description="Smallest word count kept.")
        max_num: int = Field(INF, description="Largest word count kept.")

        @model_validator(mode="after")
        def _no_sentencepiece(self) -> WordsNumFilter.Params:
            if self.tokenization:
                raise ValueError(
                    f"words_num_filter: tokenization=True needs Data-Juicer's sentencepiece model "
                    f"'{self.lang}.sp.model', which Sluice does not ship (it is a download); "
                    "use tokenization=False (whitespace words)"
                )
            return self

    stat = "num_words"
    bounds = ("min_num", "max_num")

    def stats(self, text: pl.Expr) -> dict[str, pl.Expr]:
        return {self.stat: count_refined_words(text)}
