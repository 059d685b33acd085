"""flagged_words_filter: keep texts whose share of flagged (obscene, offensive) words lies in a range."""

from __future__ import annotations

from pydantic import Field

from ops_library.registry import register
from ops_library.stats import StatsKeys
from ops_library.wordlists import FLAGGED_WORDS, WordListFilter, WordListParams


@register("flagged_words_filter")
class FlaggedWordsFilter(WordListFilter):
    """Keeps rows whose share of flagged words among their words lies in [min_ratio, max_ratio]. Matches
    Data-Juicer's op of the same name (stat `flagged_words_ratio`) except for the word list.

    Words are split on space, newline and tab, lower-cased, stripped of special characters at both ends and
    dropped when empty (0.0 without words). Data-Juicer downloads BigScience's `flagged_words.json` (LDNOOBW
    based); Sluice ships only an English list, `better_profanity`'s word list (MIT licence), unless
    `flagged_words_dir` names a directory of Data-Juicer-style `*flagged_words*.json` files, which then give
    Data-Juicer's exact result. Another `lang` without such a directory is refused at validation.
    """

    class Params(WordListParams):
        min_ratio: float = Field(0.0, description="Smallest flagged-word ratio kept.")
        max_ratio: float = Field(0.045, description="Largest flagged-word ratio kept.")
        flagged_words_dir: str | None = Field(
            None,
            description="Directory of *flagged_words*.json files ({lang: [words]}, merged); without such files "
            "(or none given): the English list shipped in the better_profanity package.",
        )

    stat = StatsKeys.flagged_words_ratio
    words_type = FLAGGED_WORDS
    dir_param = "flagged_words_dir"
