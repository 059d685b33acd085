"""stopwords_filter: keep texts whose share of stopwords lies in a range."""

from __future__ import annotations

import polars as pl
from pydantic import Field, PositiveInt

from ops_library.base import Filter, FilterParams, OpParams
from ops_library.filters.word_repetition_filter import sentencepiece_refusal
from ops_library.registry import register
from ops_library.stats import StatsKeys
from ops_library.text import lower_refined_words
from ops_library.wordlists import STOPWORDS, listed_ratio, load_words, missing_words


@register("stopwords_filter")
class StopwordsFilter(Filter):
    """Keeps rows whose share of stopwords among their words lies in [min_ratio, max_ratio]. Matches
    Data-Juicer's op of the same name (stat `stopwords_ratio`) except for the word list.

    Words are split on space, newline and tab, lower-cased, stripped of special characters at both ends and
    dropped when empty (0.0 without words). Data-Juicer downloads BigScience's `stopwords.json`; Sluice uses
    the stopwords-iso lists of the `stopwordsiso` package (MIT licence) unless `stopwords_dir` names a
    directory of Data-Juicer-style `*stopwords*.json` files, which then give Data-Juicer's exact result.
    """

    class Params(FilterParams):
        lang: str = Field("en", description='Language whose stopword list is used; "all" merges every language.')
        tokenization: bool = Field(
            False, description="Split words with a SentencePiece model instead of whitespace (not supported)."
        )
        min_ratio: float = Field(0.3, description="Smallest stopword ratio kept.")
        max_ratio: float = Field(1.0, description="Largest stopword ratio kept.")
        stopwords_dir: str | None = Field(
            None,
            description="Directory of *stopwords*.json files ({lang: [words]}, merged); without such files "
            "(or none given): the lists shipped in the stopwordsiso package.",
        )
        use_words_aug: bool = Field(
            False, description="Also count runs of consecutive words joined together (for Chinese, Vietnamese)."
        )
        words_aug_group_sizes: list[PositiveInt] = Field([2], description="Run lengths joined when use_words_aug.")
        words_aug_join_char: str = Field("", description="Text put between the words of a joined run.")

    stat = StatsKeys.stopwords_ratio
    bounds = ("min_ratio", "max_ratio")

    @classmethod
    def unavailable(cls, params: OpParams) -> str | None:
        p = params
        return sentencepiece_refusal("stopwords_filter", p) or missing_words(
            "stopwords_filter",
            STOPWORDS,
            p.lang,
            p.stopwords_dir,
            "stopwords_dir",  # type: ignore[attr-defined]
        )

    def stats(self, text: pl.Expr) -> dict[str, pl.Expr]:
        p = self.params
        listed = load_words(STOPWORDS, p.stopwords_dir)[p.lang]
        groups = p.words_aug_group_sizes if p.use_words_aug else None
        return {self.stat: listed_ratio(lower_refined_words(text), listed, groups, p.words_aug_join_char)}
