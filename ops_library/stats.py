"""Names of the per-row stats that filters write into `__dj__stats__`: Data-Juicer 1.6.1's `StatsKeys`, in one place.

The names are Data-Juicer's own, so a stats column written by Sluice reads the same as one written by
Data-Juicer (and a recipe's analysis tooling finds the keys it expects).
"""

from __future__ import annotations


class StatsKeys:
    """Stat names of the text filters (`data_juicer.utils.constant.StatsKeysConstant`)."""

    alnum_ratio = "alnum_ratio"
    alpha_token_ratio = "alpha_token_ratio"
    avg_line_length = "avg_line_length"
    char_rep_ratio = "char_rep_ratio"
    flagged_words_ratio = "flagged_words_ratio"
    lang = "lang"
    lang_score = "lang_score"
    max_line_length = "max_line_length"
    num_action = "num_action"
    num_dependency_edges = "num_dependency_edges"
    num_token = "num_token"
    num_words = "num_words"
    perplexity = "perplexity"
    special_char_ratio = "special_char_ratio"
    stopwords_ratio = "stopwords_ratio"
    text_len = "text_len"
    word_rep_ratio = "word_rep_ratio"


# Data-Juicer's `Fields.suffix`: the column holding each row's input-file suffix (".jsonl", ".jsonl.gz", ...).
SUFFIX_FIELD = "__dj__suffix__"
