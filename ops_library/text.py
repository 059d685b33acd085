"""Character sets and word splitting shared by the text ops, as Data-Juicer 1.6.1 defines them.

Data-Juicer (`ops/common/special_characters.py`, `ops/common/helper_func.py`) works with Python sets of
characters and per-word Python loops; here the same sets become regex character classes, so that the ops
can stay polars expressions.
"""

from __future__ import annotations

import functools
import string
import sys
from collections.abc import Iterable

import emoji
import polars as pl

from ops_library import codepoints

# Data-Juicer's OTHER_SPECIAL_CHARACTERS, in its order. Its source holds C1 control characters (likely
# mojibake of curly quotes, but part of the set all the same), spaces and format characters: escaped here.
OTHER_SPECIAL_CHARACTERS = (
    "\x92\u2009\x93\x97\u200a\x9d\x99\u202f\x96\u2005\x95\x91\x9c\u3000\u2002\x20\u2008\x98\x81"
    "\u2003\x82\ufffc\x83\x84’“”–ー一▬…✦�\xad£\u200b•€«»°·═×士＾˘⇓↓↑←→（）§″′´¿−±∈\ufeff¢ø‚„½¼¾¹²³―⁃，ˌ¸‹›ʺ"
    "ˈʻ¦‐⠀‰\x85\x85‑≤≥‖◆●■►▼▲▴∆▻¡★☆✱ːº。¯˜¥ɪ≈†上ン：∼⁄・♡✓⊕․．⋅÷１‟；،、¨\u093e\u09be\u0940\u094d\u0947◦"
    "˚゜ʼ≖ʼ¤ッツシ℃√！【】‿∞➤～πه۩☛₨➩☻๑٪♥ıॽ《‘©﴿٬？▷Г♫∟™ª₪®「—❖」﴾》"
)
MAIN_SPECIAL_CHARACTERS = string.punctuation + string.digits + string.whitespace
# Digits, punctuation, whitespace, ~190 symbols and every emoji of emoji==2.2.0 (multi-character emoji
# included, as in Data-Juicer, although only single characters can ever be stripped from a word).
SPECIAL_CHARACTERS: frozenset[str] = frozenset(MAIN_SPECIAL_CHARACTERS + OTHER_SPECIAL_CHARACTERS) | frozenset(
    emoji.EMOJI_DATA
)

# Data-Juicer's VARIOUS_WHITESPACES: 23 characters; "\n" is not one, U+200B..U+200D, U+2060 and U+FFFC are.
VARIOUS_WHITESPACES: frozenset[str] = frozenset(
    " \t\x84\xa0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u200b\u200c\u200d"
    "\u202f\u205f\u2060\u3000\ufffc"
)

# What Python's `str.strip()` removes: every c with c.isspace(). Rust's notion of whitespace (polars'
# `strip_chars()` with no argument, regex `\s`) lacks U+001C..U+001F, so the set is spelled out.
# Every such code point is at most U+3000 (a test scans all of Unicode): scanning 12k code points instead of 1.1M
# saves ~50 ms of every process's start.
PYTHON_WHITESPACE: str = "".join(c for c in map(chr, range(0x3001)) if c.isspace())

# `split_on_whitespace(doc, new_line=True, tab=True)` splits on exactly these three, nothing else.
WORD_SEPARATORS = " \n\t"


def char_class(chars: Iterable[str], *, negated: bool = False) -> str:
    """A regex character class (Rust syntax, for polars) matching exactly the given single characters.

    Multi-character strings in `chars` are ignored: Data-Juicer tests membership one character at a time.
    """
    code_points = sorted({ord(c) for c in chars if len(c) == 1})
    ranges: list[list[int]] = []
    for cp in code_points:
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1][1] = cp
        else:
            ranges.append([cp, cp])
    body = "".join(f"\\x{{{lo:X}}}" if lo == hi else f"\\x{{{lo:X}}}-\\x{{{hi:X}}}" for lo, hi in ranges)
    return f"[{'^' if negated else ''}{body}]"


_SPECIAL = char_class(SPECIAL_CHARACTERS)
_NOT_SPECIAL = char_class(SPECIAL_CHARACTERS, negated=True)
_WORD = f"[^{WORD_SEPARATORS}]+".replace("\n", "\\n").replace("\t", "\\t")
# A word survives `words_refinement` (special characters stripped from both ends, empty words dropped) exactly
# when it holds a non-special character, so the count is the number of such maximal runs of non-separators.
_REFINED_WORD = f"{_WORD[:-1]}*{_NOT_SPECIAL}{_WORD[:-1]}*"


def split_words(text: pl.Expr) -> pl.Expr:
    """Data-Juicer's `split_on_whitespace(text, new_line=True, tab=True)`: the list of non-empty pieces
    between spaces, newlines and tabs (other Unicode whitespace and punctuation do not split)."""
    return text.str.extract_all(_WORD)


def refine_words(words: pl.Expr) -> pl.Expr:
    """Data-Juicer's `words_refinement(words, strip_chars=SPECIAL_CHARACTERS)`: special characters stripped
    from the ends of each word, words left empty dropped. No lower-casing."""
    stripped = pl.element().str.replace_all(f"^{_SPECIAL}+|{_SPECIAL}+$", "")
    return words.list.eval(stripped.filter(stripped != ""))


def count_refined_words(text: pl.Expr) -> pl.Expr:
    """`len(refine_words(split_words(text)))`, in one pass of the compiled code-point kernel, or where it is not
    built one regex pass without building the word lists."""
    if codepoints.kernels() is not None:
        if isinstance(text, pl.Series):
            return codepoints.refined_word_counts(text)
        return text.map_batches(codepoints.refined_word_counts, return_dtype=pl.Int64, is_elementwise=True)
    return text.str.count_matches(_REFINED_WORD).cast(pl.Int64)


# A refined word, matched in place: from the first to the last non-special character of a whitespace word. A
# match cannot start on a leading special character, and greedily runs to the word's last non-special one.
_PLAIN = char_class(SPECIAL_CHARACTERS | set(WORD_SEPARATORS), negated=True)
_REFINED_CORE = f"{_PLAIN}(?:{_WORD[:-1]}*{_PLAIN})?"


def lower_refined_words(text: pl.Expr) -> pl.Expr:
    """Data-Juicer's `words_refinement(split_on_whitespace(text), lower_case=True, strip_chars=SPECIAL_CHARACTERS)`.

    Lower-casing comes first, as in Data-Juicer ('Г' is special, 'г' is not). Lower-casing the whole text equals
    lower-casing each word: the only contextual rule (final sigma) looks no further than a space, newline or tab.
    """
    return text.str.to_lowercase().str.extract_all(_REFINED_CORE)


@functools.cache
def alnum_class() -> str:
    """Python's `str.isalnum()` as a character class (letters of every script, decimal digits and other numerics),
    built on first use: it walks every code point."""
    return char_class(c for c in map(chr, range(sys.maxunicode + 1)) if c.isalnum())


SPECIAL_CLASS = _SPECIAL

# Where `str.splitlines()` breaks: "\r\n" counts as one break.
LINE_BREAK_CHARS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_BREAK = char_class(LINE_BREAK_CHARS)
_LINE_BREAK = f"\\r\\n|{_BREAK}"
_LINE_CONTENT = char_class(LINE_BREAK_CHARS, negated=True)


def count_lines(text: pl.Expr) -> pl.Expr:
    """`len(text.splitlines())`: one line per break, plus one when the text does not end in a break."""
    breaks = text.str.count_matches(_LINE_BREAK).cast(pl.Int64)
    unterminated = text.str.contains(f"{_LINE_CONTENT}$").cast(pl.Int64)
    return breaks + unterminated


def max_line_length(text: pl.Expr) -> pl.Expr:
    """`max(map(len, text.splitlines()))`, 0 for a text without lines."""
    lines = text.str.extract_all(f"{_LINE_CONTENT}+")
    return lines.list.eval(pl.element().str.len_chars()).list.max().fill_null(0).cast(pl.Int64)
