"""remove_long_words_mapper: drop words shorter or longer than given lengths."""

from __future__ import annotations

import sys

import polars as pl
from pydantic import Field

from ops_library.base import Mapper, OpParams
from ops_library.registry import register
from ops_library.words import keep_words, strip_special


@register("remove_long_words_mapper")
class RemoveLongWordsMapper(Mapper):
    """Drops the words (split on newline, tab, space) whose length is outside [min_len, max_len]; a too-long word
    stays if it fits once special characters are stripped from its ends. The text is rebuilt Data-Juicer's way
    (single spaces, no blank lines). Matches Data-Juicer's op of the same name."""

    class Params(OpParams):
        min_len: int = Field(1, description="Words shorter than this (in code points) are removed.")
        max_len: int = Field(
            sys.maxsize, description="Words longer than this are removed, unless their stripped form fits."
        )

    def map_text(self, text: pl.Expr) -> pl.Expr:
        lo, hi = self.params.min_len, self.params.max_len

        def keep(word: pl.Expr) -> pl.Expr:
            length = word.str.len_chars()
            stripped = strip_special(word).str.len_chars()
            return length.is_between(lo, hi) | ((length > hi) & stripped.is_between(lo, hi))

        return keep_words(text, keep)
