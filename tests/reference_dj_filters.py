"""A row-by-row, pure-Python statement of Data-Juicer 1.6.1's text filters, to check Sluice's filters against.

Written from Data-Juicer's `compute_stats_*` / `process_*` code: one Python call per row, `re.split` on space,
newline and tab, `str.lower`, `str.splitlines`, `str.isalnum`, dicts of n-grams, the special-character set
tested one character at a time. Only what Data-Juicer itself downloads is replaced by what Sluice ships: the
word lists (read here through the packages' own APIs), fastText's model (the shipped lid.176.ftz, called
through fasttext's public `predict`) and the tokenizer (the shipped tokenizer.json, through transformers).
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable
from functools import cache
from pathlib import PurePosixPath
from typing import Any

from ops_library.text import SPECIAL_CHARACTERS
from tests.reference_dj import STATS, keep_in_range

INF = sys.maxsize
SUFFIX = "__dj__suffix__"


def _words(text: str) -> list[str]:
    return [w for w in re.split(" |\n|\t", text) if w]


def _strip(word: str) -> str:
    """Data-Juicer's `strip(document, strip_characters)`."""
    if not word:
        return word
    begin, end = 0, len(word)
    for i in range(len(word)):
        if word[i] in SPECIAL_CHARACTERS:
            begin += 1
        else:
            break
    for i in range(1, len(word) + 1):
        if word[-i] in SPECIAL_CHARACTERS:
            end -= 1
        else:
            break
    return word[begin:end]


def refined_words(text: str, lower_case: bool, aug_sizes: list[int] | None = None, join: str = "") -> list[str]:
    words = _words(text)
    if lower_case:
        words = [w.lower() for w in words]
    words = [w for w in (_strip(w) for w in words) if w]
    if aug_sizes:
        words = words + [join.join(words[i : i + g]) for g in aug_sizes for i in range(len(words) - g + 1)]
    return words


def alnum_ratio(text: str) -> float:
    return sum(1 for c in text if c.isalnum()) / len(text) if text else 0.0


def special_char_ratio(text: str) -> float:
    return len([c for c in text if c in SPECIAL_CHARACTERS]) / len(text) if text else 0.0


def avg_line_length(text: str) -> float:
    lines = text.splitlines()
    return len(text) / len(lines) if lines else 0.0


def max_line_length(text: str) -> int:
    lengths = [len(line) for line in text.splitlines()]
    return max(lengths) if lengths else 0


def char_rep_ratio(text: str, n: int = 10) -> float:
    freq: dict[str, int] = {}
    for i in range(len(text) - n + 1):
        freq[text[i : i + n]] = freq.get(text[i : i + n], 0) + 1
    if not freq:
        return 0.0
    values = sorted(freq.values(), reverse=True)
    k = min(int(math.sqrt(len(values))), len(values) - values.count(1))
    total = sum(values)
    return sum(values[:k]) / total if total else 0.0


def word_rep_ratio(text: str, n: int = 10) -> float:
    words = refined_words(text, lower_case=True)
    freq: dict[str, int] = {}
    for i in range(len(words) - n + 1):
        gram = " ".join(words[i : i + n])
        freq[gram] = freq.get(gram, 0) + 1
    if not freq:
        return 0.0
    total = sum(freq.values())
    return sum(f for f in freq.values() if f > 1) / total if total else 0.0


@cache
def word_list(kind: str, lang: str) -> frozenset[str]:
    if kind == "stopwords":
        import stopwordsiso

        langs = sorted(stopwordsiso.langs()) if lang == "all" else [lang]
        return frozenset().union(*(stopwordsiso.stopwords(code) for code in langs))
    from importlib.resources import files

    text = files("better_profanity").joinpath("profanity_wordlist.txt").read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip())


def listed_ratio(text: str, kind: str, params: dict[str, Any]) -> float:
    aug = params.get("words_aug_group_sizes", [2]) if params.get("use_words_aug") else None
    words = refined_words(text, True, aug, params.get("words_aug_join_char", ""))
    listed = word_list(kind, params.get("lang", "en"))
    ratio = len([w for w in words if w in listed]) / len(words) if words else 0.0
    return min(ratio, 1.0)


@cache
def _fasttext() -> Any:
    import fasttext

    from ops_library.filters.language_id_score_filter import model_path

    return fasttext.load_model(model_path())


def language_id(text: str) -> tuple[str, float]:
    labels, scores = _fasttext().predict(text.lower().replace("\n", " "))
    return labels[0].replace("__label__", ""), scores[0]


@cache
def _tokenizer() -> Any:
    from transformers import PreTrainedTokenizerFast

    from ops_library.filters.token_num_filter import SHIPPED_TOKENIZER, tokenizer_file

    return PreTrainedTokenizerFast(tokenizer_file=tokenizer_file(SHIPPED_TOKENIZER))


def num_token(text: str) -> int:
    return len(_tokenizer()(text, add_special_tokens=False)["input_ids"])


def file_suffix(row_id: str) -> str:
    """Data-Juicer's `find_files_with_suffix` key for the file in a Sluice row id."""
    path = PurePosixPath(row_id.rsplit(":", 1)[0])
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".gz", ".zst"):
        return "".join(suffixes[-2:])
    return path.suffix.lower()


# op -> (stat name, stat function(text, params), min key, max key, min default, max default)
_RANGE_FILTERS: dict[str, tuple[str, Callable[[str, dict], float], str, str, float, float]] = {
    "alphanumeric_filter": ("alnum_ratio", lambda t, p: alnum_ratio(t), "min_ratio", "max_ratio", 0.25, INF),
    "special_characters_filter": (
        "special_char_ratio",
        lambda t, p: special_char_ratio(t),
        "min_ratio",
        "max_ratio",
        0.0,
        0.25,
    ),
    "average_line_length_filter": ("avg_line_length", lambda t, p: avg_line_length(t), "min_len", "max_len", 10, INF),
    "maximum_line_length_filter": ("max_line_length", lambda t, p: max_line_length(t), "min_len", "max_len", 10, INF),
    "character_repetition_filter": (
        "char_rep_ratio",
        lambda t, p: char_rep_ratio(t, p.get("rep_len", 10)),
        "min_ratio",
        "max_ratio",
        0.0,
        0.5,
    ),
    "word_repetition_filter": (
        "word_rep_ratio",
        lambda t, p: word_rep_ratio(t, p.get("rep_len", 10)),
        "min_ratio",
        "max_ratio",
        0.0,
        0.5,
    ),
    "stopwords_filter": (
        "stopwords_ratio",
        lambda t, p: listed_ratio(t, "stopwords", p),
        "min_ratio",
        "max_ratio",
        0.3,
        1.0,
    ),
    "flagged_words_filter": (
        "flagged_words_ratio",
        lambda t, p: listed_ratio(t, "flagged_words", p),
        "min_ratio",
        "max_ratio",
        0.0,
        0.045,
    ),
    "token_num_filter": ("num_token", lambda t, p: num_token(t), "min_num", "max_num", 10, INF),
}


def _field(row: dict, key: str) -> Any:
    value: Any = row
    for part in key.split("."):
        assert part in value, f"'{part}' not in {value.keys()}"
        value = value[part]
    return value


def _is_number(s: Any) -> bool:
    if s:
        try:
            float(s)
            return True
        except ValueError:
            pass
    return False


def reference_filter(rows: list[dict], op: str, params: dict[str, Any], text_key: str = "text") -> list[dict]:
    """Apply one Data-Juicer filter to rows; return the kept rows, in order, with their stats.

    A stat already in a row's `__dj__stats__` is not recomputed, as in Data-Juicer.
    """
    kept = []
    for row in rows:
        stats = dict(row.get(STATS) or {})
        text = row.get(text_key)
        if op in _RANGE_FILTERS:
            stat, compute, lo_key, hi_key, lo, hi = _RANGE_FILTERS[op]
            if stat not in stats:
                stats[stat] = compute(text, params)
            keep = keep_in_range(stats[stat], params.get(lo_key, lo), params.get(hi_key, hi), params)
        elif op == "language_id_score_filter":
            if "lang" not in stats or "lang_score" not in stats:
                stats["lang"], stats["lang_score"] = language_id(text)
            langs = params.get("lang") or []
            langs = [langs] if isinstance(langs, str) else langs
            keep = _keep_min(stats["lang_score"], params.get("min_score", 0.8), params)
            keep = (stats["lang"] in langs and keep) if langs else keep
        elif op == "suffix_filter":
            suffixes = params.get("suffixes") or []
            suffixes = [suffixes] if isinstance(suffixes, str) else suffixes
            keep = True
            if suffixes:
                suffix = row[SUFFIX] if SUFFIX in row else file_suffix(row["__sluice_id__"])
                keep = (suffix in suffixes) != params.get("reversed_range", False)
        elif op == "specified_field_filter":
            key, targets = params.get("field_key", ""), params.get("target_value", [])
            keep = True
            if key:
                stats.setdefault(key, _field(row, key))
                if targets:
                    values = stats[key] if isinstance(stats[key], (list, tuple)) else [stats[key]]
                    keep = all(v in targets for v in values) != params.get("reversed_range", False)
        elif op == "specified_numeric_field_filter":
            key = params.get("field_key", "")
            keep = True
            if key:
                stats.setdefault(key, _field(row, key))
                value = stats[key]
                lo, hi = params.get("min_value", -INF), params.get("max_value", INF)
                keep = _is_number(value) and keep_in_range(float(value), lo, hi, params)
        else:
            raise ValueError(f"reference_dj_filters has no op {op!r}")
        if keep:
            kept.append({**row, STATS: stats})
    return kept


def _keep_min(value: float, lo: float, options: dict[str, Any]) -> bool:
    """`get_keep_boolean(value, lo)` with no upper bound."""
    reversed_range = options.get("reversed_range", False)
    min_closed = options.get("min_closed_interval", True) != reversed_range
    return (value >= lo if min_closed else value > lo) != reversed_range
