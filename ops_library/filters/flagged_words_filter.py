"""flagged_words_filter: keep texts whose share of flagged (obscene, offensive) words lies in a range."""

from __future__ import annotations

import polars as pl
from pydantic import Field, PositiveInt

from ops_library.base import Filter, FilterParams, OpParams
from ops_library.filters.word_repetition_filter import sentencepiece_refusal
from ops_library.registry import register
from ops_library.stats import StatsKeys
from ops_library.text import lower_refined_words
from ops_library.wordlists import FLAGGED_WORDS, listed_ratio, load_words, missing_words


@register("flagged_words_filter")
class FlaggedWordsFilter(Filter):
    """Keeps rows whose share of flagged words among their words lies in [min_ratio, max_ratio]. Matches
    Data-Juicer's op of the same name (stat `flagged_words_ratio`) except for the word list.

    Words are split on space, newline and tab, lower-cased, stripped of special characters at both ends and
    dropped when empty (0.0 without words). Data-Juicer downloads BigScience's `flagged_words.json` (LDNOOBW
    based); Sluice ships only an English list, `better_profanity`'s word list (MIT licence), unless
    `flagged_words_dir` names a directory of Data-Juicer-style `*flagged_words*.json` files, which then give
    Data-Juicer's exact result. Another `lang` without such a directory is refused at validation.
    """

    class Params(FilterParams):
        lang: str = Field("en", description='Language whose flagged-word list is used; "all" merges every language.')
        tokenization: bool = Field(
            False, description="Split words with a SentencePiece model instead of whitespace (not supported)."
        )
        min_ratio: float = Field(0.0, description="Smallest flagged-word ratio kept.")
        max_ratio: float = Field(0.045, description="Largest flagged-word ratio kept.")
        flagged_words_dir: str | None = Field(
            None,
            description="Directory of *flagged_words*.json files ({lang: [words]}, merged); without such files "
            "(or none given): the English list shipped in the better_profanity package.",
        )
        use_words_aug: bool = Field(
            False, description="Also count runs of consecutive words joined together (for Chinese, Vietnamese)."
        )
        words_aug_group_sizes: list[PositiveInt] = Field([2], description="Run lengths joined when use_words_aug.")
        words_aug_join_char: str = Field("", description="Text put between the words of a joined run.")

    stat = StatsKeys.flagged_words_ratio
    bounds = ("min_ratio", "max_ratio")

    @classmethod
    def unavailable(cls, params: OpParams) -> str | None:
        p = params
        return sentencepiece_refusal("flagged_words_filter", p) or missing_words(
            "flagged_words_filter",
            FLAGGED_WORDS,
            p.lang,
            p.flagged_words_dir,
            "flagged_words_dir",  # type: ignore[attr-defined]
        )

    def stats(self, text: pl.Expr) -> dict[str, pl.Expr]:
        p = self.params
        listed = load_words(FLAGGED_WORDS, p.flagged_words_dir)[p.lang]
        groups = p.words_aug_group_sizes if p.use_words_aug else None
        return {self.stat: listed_ratio(lower_refined_words(text), listed, groups, p.words_aug_join_char)}
