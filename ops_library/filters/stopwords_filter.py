"""stopwords_filter: keep texts whose share of stopwords lies in a range."""

from __future__ import annotations

from pydantic import Field

from ops_library.registry import register
from ops_library.stats import StatsKeys
from ops_library.wordlists import STOPWORDS, WordListFilter, WordListParams


@register("stopwords_filter")
class StopwordsFilter(WordListFilter):
    """Keeps rows whose share of stopwords among their words lies in [min_ratio, max_ratio]. Matches
    Data-Juicer's op of the same name (stat `stopwords_ratio`) except for the word list.

    Words are split on space, newline and tab, lower-cased, stripped of special characters at both ends and
    dropped when empty (0.0 without words). Data-Juicer downloads BigScience's `stopwords.json`; Sluice uses
    the stopwords-iso lists of the `stopwordsiso` package (MIT licence) unless `stopwords_dir` names a
    directory of Data-Juicer-style `*stopwords*.json` files, which then give Data-Juicer's exact result.
    """

    class Params(WordListParams):
        min_ratio: float = Field(0.3, description="Smallest stopword ratio kept.")
        max_ratio: float = Field(1.0, description="Largest stopword ratio kept.")
        stopwords_dir: str | None = Field(
            None,
            description="Directory of *stopwords*.json files ({lang: [words]}, merged); without such files "
            "(or none given): the lists shipped in the stopwordsiso package.",
        )

    stat = StatsKeys.stopwords_ratio
    words_type = STOPWORDS
    dir_param = "stopwords_dir"
