"""A row-by-row, pure-Python statement of five Data-Juicer 1.6.1 text ops, to check the polars ops against.

Slow on purpose and independent of polars: one Python call per row, standard `re` and `hashlib.md5`, as
Data-Juicer does. Only DJ's constant sets (special characters, whitespace kinds) come from `ops_library.text`.

Data-Juicer runs its regexes with the `regex` module, not `re`; the two differ on `\\s` (U+001C..U+001F are
whitespace only to `re`), on `\\w`/`\\b` (combining marks and circled letters are word characters only to
`regex`) and on `(?i)[a-z]` (`re` also matches U+0131), so the patterns below spell those classes out.
The default link pattern also has its nested `(x+)+` loops unrolled to `(x)+`: same matches, without the
exponential backtracking `re` falls into on a long run of punctuation after "http://" (`regex` does not).
"""

from __future__ import annotations

import hashlib
import re
import string
import sys
import unicodedata
from collections.abc import Callable
from typing import Any

from ops_library.text import SPECIAL_CHARACTERS, VARIOUS_WHITESPACES

STATS = "__dj__stats__"


def _class_body(keep: Callable[[str], bool]) -> str:
    """The inside of a `re` character class holding every character for which `keep` is true."""
    body, start, prev = [], None, None
    for cp in range(sys.maxunicode + 2):
        inside = cp <= sys.maxunicode and keep(chr(cp))
        if inside and start is None:
            start = cp
        if not inside and start is not None:
            body.append(re.escape(chr(start)) + ("" if prev == start else "-" + re.escape(chr(prev))))
            start = None
        prev = cp
    return "".join(body)


# `regex`'s \s: Unicode White_Space, i.e. Python's isspace() without the four information separators.
_WHITE_SPACE = _class_body(lambda c: c.isspace() and c not in "\x1c\x1d\x1e\x1f")
# `regex`'s \w (Unicode's definition): letters, marks, decimal digits, letter numbers, connector punctuation,
# ZWNJ/ZWJ, and the symbols that are Other_Alphabetic (circled and squared Latin letters).
_OTHER_ALPHABETIC_SYMBOLS = ((0x24B6, 0x24E9), (0x1F130, 0x1F149), (0x1F150, 0x1F169), (0x1F170, 0x1F189))
_WORD = _class_body(
    lambda c: (
        unicodedata.category(c)[0] in "LM"
        or unicodedata.category(c) in ("Nd", "Nl", "Pc")
        or c in "\u200c\u200d"
        or any(lo <= ord(c) <= hi for lo, hi in _OTHER_ALPHABETIC_SYMBOLS)
    )
)
# What `(?i)[a-z]` matches in the `regex` module: also U+0130 (İ), U+017F (ſ) and U+212A (Kelvin sign).
_LETTER = "a-zA-Z\u0130\u017f\u212a"


def _default_link_pattern() -> re.Pattern[str]:
    word_boundary = f"(?:(?<=[{_WORD}])(?![{_WORD}])|(?<![{_WORD}])(?=[{_WORD}]))"
    url_char = f"[^{_WHITE_SPACE}()<>]"
    parens = rf"\((?:{url_char}|\({url_char}+\))*\)"
    scheme = rf"[{_LETTER}][{_WORD}\-]+:(?:/{{1,3}}|[{_LETTER}0-9%])"
    start = rf"(?:{scheme}|[wW]{{3}}\d{{0,3}}[.]|[{_LETTER}0-9.\-]+[.][{_LETTER}]{{2,4}}/)"
    last = rf"(?:{parens}|[^{_WHITE_SPACE}`!()\[\]{{}};:'\".,<>?«»“”‘’])"
    return re.compile(f"{word_boundary}({start}(?:{url_char}|{parens})+{last})", re.DOTALL)


DEFAULT_LINK_PATTERN = _default_link_pattern()
_NON_CHARACTER = re.compile(f"[{_WHITE_SPACE}]+|\\d+|[{re.escape(string.punctuation)}]")


def whitespace_normalization(text: str) -> str:
    return "".join(" " if c in VARIOUS_WHITESPACES else c for c in text.strip())


def clean_links(text: str, pattern: str | None = None, repl: str = "") -> str:
    if pattern is None:
        return DEFAULT_LINK_PATTERN.sub(repl, text)
    if len(pattern) > 2 and pattern[:2] in ("r'", 'r"') and pattern[-1] == pattern[1]:
        pattern = pattern[2:-1]
    return re.sub(pattern, repl, text, flags=re.DOTALL)


def text_len(text: str) -> int:
    return len(text)


def _strip_special(word: str) -> str:
    begin, end = 0, len(word)
    while begin < end and word[begin] in SPECIAL_CHARACTERS:
        begin += 1
    while end > begin and word[end - 1] in SPECIAL_CHARACTERS:
        end -= 1
    return word[begin:end]


def num_words(text: str) -> int:
    words = [w for w in re.split(" |\n|\t", text) if w]
    return sum(1 for w in words if _strip_special(w))


def document_hash(text: str, lowercase: bool = False, ignore_non_character: bool = False) -> str:
    if lowercase:
        text = text.lower()
    if ignore_non_character:
        text = _NON_CHARACTER.sub("", text)
    return hashlib.md5(text.strip().encode("utf-8")).hexdigest()


def keep_in_range(value: float, lo: float, hi: float, options: dict[str, Any]) -> bool:
    """Data-Juicer's `Filter.get_keep_boolean`, with the closedness flags that its `__init__` flips when
    `reversed_range` is set."""
    reversed_range = options.get("reversed_range", False)
    min_closed = options.get("min_closed_interval", True) != reversed_range
    max_closed = options.get("max_closed_interval", True) != reversed_range
    keep = (value >= lo if min_closed else value > lo) and (value <= hi if max_closed else value < hi)
    return keep != reversed_range


_FILTERS: dict[str, tuple[str, Callable[[str], int], str, str, int]] = {
    "text_length_filter": ("text_len", text_len, "min_len", "max_len", 10),
    "words_num_filter": ("num_words", num_words, "min_num", "max_num", 10),
}


def _apply(op: str, params: dict[str, Any], rows: list[dict], text_key: str) -> list[dict]:
    if op == "whitespace_normalization_mapper":
        return [{**r, text_key: whitespace_normalization(r[text_key])} for r in rows]
    if op == "clean_links_mapper":
        pattern, repl = params.get("pattern"), params.get("repl", "")
        return [{**r, text_key: clean_links(r[text_key], pattern, repl)} for r in rows]
    if op in _FILTERS:
        if params.get("tokenization"):
            raise NotImplementedError(f"{op}: tokenization needs a sentencepiece model")
        stat, compute, lo_key, hi_key, lo_default = _FILTERS[op]
        lo, hi = params.get(lo_key, lo_default), params.get(hi_key, sys.maxsize)
        kept = []
        for row in rows:
            stats = dict(row.get(STATS) or {})
            if stat not in stats:  # computed once, as in Data-Juicer
                stats[stat] = compute(row[text_key])
            if keep_in_range(stats[stat], lo, hi, params):
                kept.append({**row, STATS: stats})
        return kept
    if op == "document_deduplicator":
        seen: set[str] = set()
        kept = []
        for row in rows:
            key = document_hash(
                row[text_key], params.get("lowercase", False), params.get("ignore_non_character", False)
            )
            if key not in seen:
                seen.add(key)
                kept.append(row)
        return kept
    raise ValueError(f"reference_dj has no op {op!r}")


def reference_pipeline(rows: list[dict], process: list[dict], text_key: str = "text") -> list[dict]:
    """Run a Data-Juicer `process:` list (`[{op_name: {params}}, ...]`) over rows; return the kept rows, in
    order.

    Mappers change `text_key`; filters add their stat to the row's `__dj__stats__` dict (an existing stat is
    not recomputed); the deduplicator keeps the first row of each md5 of the normalized text.
    """
    for step in process:
        ((op, params),) = step.items()
        rows = _apply(op, params or {}, rows, text_key)
    return rows
