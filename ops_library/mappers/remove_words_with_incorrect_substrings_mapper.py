"""remove_words_with_incorrect_substrings_mapper: drop words that contain URL-like substrings."""

from __future__ import annotations

import polars as pl
from pydantic import Field

from ops_library.base import Mapper, OpParams
from ops_library.registry import register
from ops_library.words import keep_words, strip_special

DEFAULT_SUBSTRINGS = ("http", "www", ".com", "href", "//")


@register("remove_words_with_incorrect_substrings_mapper")
class RemoveWordsWithIncorrectSubstringsMapper(Mapper):
    """Drops the words (split on newline, tab, space) that, with special characters stripped from their ends,
    contain one of `substrings` (default http, www, .com, href, //); the text is rebuilt Data-Juicer's way
    (single spaces, no blank lines). Matches Data-Juicer's op of the same name.

    `tokenization: true` needs Data-Juicer's SentencePiece model `{lang}.sp.model`, which Sluice does not ship:
    such a recipe is refused at validation.
    """

    class Params(OpParams):
        lang: str = Field("en", description="Language of the text; only used with tokenization.")
        tokenization: bool = Field(False, description="Split words with a SentencePiece model (not available offline).")
        substrings: list[str] | None = Field(
            None, description=f"Substrings that condemn a word; None: {list(DEFAULT_SUBSTRINGS)}."
        )

    @classmethod
    def unavailable(cls, params: OpParams) -> str | None:
        if getattr(params, "tokenization", False):
            return (
                f"{cls.name}: tokenization=true needs Data-Juicer's SentencePiece model "
                f"'{getattr(params, 'lang', 'en')}.sp.model', which is downloaded at run time and not shipped with "
                "Sluice; use tokenization=false (words split on spaces, tabs and newlines)"
            )
        return None

    def map_text(self, text: pl.Expr) -> pl.Expr:
        subs = list(DEFAULT_SUBSTRINGS if self.params.substrings is None else self.params.substrings)
        if not subs:
            return keep_words(text, lambda word: pl.lit(True))
        return keep_words(text, lambda word: ~strip_special(word).str.contains_any(subs))
