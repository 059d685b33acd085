"""clean_links_mapper: remove (or replace) URLs and other links."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import polars as pl
from pydantic import Field

from ops_library.base import Mapper, OpParams
from ops_library.registry import register

# Data-Juicer's default pattern, verbatim (from kallewesterling/CleanText), run with the `regex` module.
DJ_DEFAULT_PATTERN = (
    r"(?i)\b("
    r"(?:[a-z][\w-]+:(?:\/{1,3}|"
    r"[a-z0-9%])|www\d{0,3}[.]|"
    r"[a-z0-9.\-]+[.][a-z]{2,4}\/)"
    r"(?:[^\s()<>]+|\(([^\s()<>]+|"
    r"(\([^\s()<>]+\)))*\))"
    r"+(?:\(([^\s()<>]+|(\([^\s()<>]+\)))*\)|"
    r"[^\s`!()\[\]{};:\'\".,<>?«»“”‘’])"
    r")"
)
# The pattern has no look-around, so Rust's regex (leftmost-first, like a backtracker) finds the same
# matches, and its Unicode `\b`, `\w`, `\s`, `\d` equal the `regex` module's (Python's `re` differs: combining
# marks are not `\w` there, U+001C..U+001F are `\s`). One gap: under (?i) the `regex` module also lets U+0130
# (İ) match `[a-z]`, as an "i", and Rust's simple case folding does not: it is added to each `[a-z...]` class.
RUST_DEFAULT_PATTERN = DJ_DEFAULT_PATTERN.replace("[a-z", r"[a-z\x{130}")

# Speed: Rust's fast engines (DFAs) cannot evaluate a Unicode `\b` on non-ASCII text and fall back to a slow
# one, about 15x slower here. An ASCII `\b` gives the same matches wherever a match could start, except:
# (a) right after a non-ASCII word character (Unicode: no boundary before a letter/digit, one before "." or
# "-"; ASCII: the opposite), and (b) at İ, K (Kelvin) or ſ, the non-ASCII letters `(?i)[a-z\x{130}]` matches.
# A match can only start where the pattern's first group matches, so a row without (a) or (b) in front of
# that group gets the same result from the ASCII pattern; the other rows (few) run the Unicode one.
_ASCII_BOUNDARY_PATTERN = RUST_DEFAULT_PATTERN.replace(r"\b", r"(?-u:\b)", 1)
_FIRST_GROUP = RUST_DEFAULT_PATTERN[RUST_DEFAULT_PATTERN.index("(?:") : RUST_DEFAULT_PATTERN.index(r"\/)") + 3]
_NEEDS_UNICODE_BOUNDARY = rf"[\w&&[^\x00-\x7F]](?i:{_FIRST_GROUP})|[\x{{130}}\x{{17F}}\x{{212A}}]"

# Constructs that compile in both Python and Rust but mean different things: Python's `$` also matches
# before a final newline, `\b` is a backspace in a class, `\<`/`\>` are literals in Python and word boundaries
# in Rust; inline flags (case folding differs), nested classes and `&&`/`--`/`~~` set operations, `{,n}`.
# A user pattern holding any of them runs with Python's `re`.
_DIVERGENT_ESCAPES = frozenset("bBzZ<>")
_CLASS_SET_OPERATORS = ("&&", "--", "~~")
_INLINE_FLAGS = frozenset("aiLmsux-")


def _unwrap_raw_literal(pattern: str) -> str:
    """Data-Juicer accepts a pattern written as a Python raw literal, `r'...'` or `r"..."`, and unwraps it."""
    if len(pattern) > 2 and pattern[:2] in ("r'", 'r"') and pattern[-1] == pattern[1]:
        return pattern[2:-1]
    return pattern


def _same_in_rust(pattern: str) -> bool:
    """True if polars (Rust regex) gives the same substitutions as Python for this user pattern."""
    in_class = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            if i + 1 < len(pattern) and pattern[i + 1] in _DIVERGENT_ESCAPES:
                return False
            i += 2
            continue
        if in_class:
            if c == "[" or pattern[i : i + 2] in _CLASS_SET_OPERATORS:
                return False
            if c == "]":
                in_class = False
        elif c == "[":
            in_class = True
            i += 1
            if pattern[i : i + 1] == "^":
                i += 1
            if pattern[i : i + 1] == "]":  # a leading "]" is a literal in both dialects
                i += 1
            continue
        elif (
            c == "$"
            or pattern[i : i + 2] == "{,"
            or (pattern[i : i + 2] == "(?" and pattern[i + 2 : i + 3] in _INLINE_FLAGS)
        ):
            return False
        i += 1
    try:
        # Python also replaces an empty match right after a match, Rust does not: no empty matches at all.
        matches_empty = pl.select(pl.lit("").str.contains(f"^(?:{pattern})")).item()
    except pl.exceptions.ComputeError:
        return False  # not Rust syntax
    return not matches_empty


_TEMPLATE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}
_DIGITS = frozenset("0123456789")
_OCTAL = frozenset("01234567")


def rust_replacement(repl: str, groups: int | None = None, names: frozenset[str] = frozenset()) -> str:
    """Python's `re.sub` replacement template as a polars (Rust) replacement string: Python's escapes, octal
    codes and group references (\\1, \\g<name>), and its errors. `groups`/`names`: the pattern's, if known."""

    def group(ref: str, at: int) -> str:
        if ref.isdecimal():
            if groups is not None and int(ref) > groups:
                raise ValueError(f"invalid group reference {ref} at position {at}")
            return f"${{{int(ref)}}}"
        if not ref.isidentifier() or (groups is not None and ref not in names):
            raise ValueError(f"unknown group name {ref!r} at position {at}")
        return f"${{{ref}}}"

    def literal(char: str) -> str:
        return "$$" if char == "$" else char

    out: list[str] = []
    i = 0
    while i < len(repl):
        start, c, nxt = i, repl[i], repl[i + 1 : i + 2]
        i += 2
        if c != "\\":
            out.append(literal(c))
            i -= 1
        elif not nxt:
            raise ValueError(f"bad escape (end of pattern) at position {start}")
        elif nxt == "g":
            close = repl.find(">", i)
            if repl[i : i + 1] != "<" or close < 0:
                raise ValueError(f"missing group name at position {start}")
            out.append(group(repl[i + 1 : close], start))
            i = close + 1
        elif nxt == "0":  # \0, \0o, \0oo: an octal code
            end = i
            while end < i + 2 and repl[end : end + 1] in _OCTAL:
                end += 1
            out.append(literal(chr(int(repl[start + 1 : end], 8))))
            i = end
        elif nxt in _DIGITS:  # \ooo (three octal digits) is a code; otherwise \N or \NN is a group
            if nxt in _OCTAL and repl[i : i + 1] in _OCTAL and repl[i + 1 : i + 2] in _OCTAL:
                code = int(repl[i - 1 : i + 2], 8)
                if code > 0o377:
                    raise ValueError(f"octal escape value {repl[start : i + 2]} outside of range 0-0o377")
                out.append(literal(chr(code)))
                i += 2
            else:
                end = i + 1 if repl[i : i + 1] in _DIGITS else i
                out.append(group(repl[start + 1 : end], start))
                i = end
        elif nxt in _TEMPLATE_ESCAPES:
            out.append(_TEMPLATE_ESCAPES[nxt])
        elif nxt.isascii() and nxt.isalpha():
            raise ValueError(f"bad escape \\{nxt} at position {start}")
        else:  # Python keeps any other escape as it is, backslash included
            out.append("\\" + literal(nxt))
    return "".join(out)


def _replace_default_links(texts: pl.Series, repl: str) -> pl.Series:
    """Data-Juicer's default link pattern replaced by `repl` (Rust syntax), with an ASCII `\\b` on the rows
    where it gives the same matches and the Unicode one on the others (see `_NEEDS_UNICODE_BOUNDARY`)."""
    out = texts.str.replace_all(_ASCII_BOUNDARY_PATTERN, repl)
    unicode_rows = texts.str.contains(_NEEDS_UNICODE_BOUNDARY).fill_null(False).arg_true()
    if unicode_rows.len():
        out = out.scatter(unicode_rows, texts.gather(unicode_rows).str.replace_all(RUST_DEFAULT_PATTERN, repl))
    return out


@register("clean_links_mapper")
class CleanLinksMapper(Mapper):
    """Replaces links (scheme://..., www..., domain.tld/...) with `repl`, by default removing them.
    Matches Data-Juicer's op of the same name."""

    class Params(OpParams):
        pattern: str | None = Field(
            None,
            description="Python regex to replace (Data-Juicer syntax); None: Data-Juicer's link regex.",
        )
        repl: str = Field("", description="Replacement, Python `re.sub` syntax (backslash escapes, \\1, \\g<name>).")

    def __init__(self, params: OpParams | Mapping[str, Any] | None = None, *, text_key: str = "text"):
        super().__init__(params, text_key=text_key)
        pattern = DJ_DEFAULT_PATTERN if self.params.pattern is None else _unwrap_raw_literal(self.params.pattern)
        try:
            self._python: re.Pattern[str] | None = re.compile(pattern, re.DOTALL)  # Data-Juicer passes DOTALL
        except re.error as err:
            self._python = None
            python_error: re.error | None = err
        else:
            python_error = None
        self._rust: tuple[str, str] | None = None
        if self.params.pattern is None:
            self._rust = (RUST_DEFAULT_PATTERN, "")
        elif _same_in_rust(pattern):
            self._rust = (f"(?s){pattern}", "")
        elif python_error is not None:
            raise ValueError(f"clean_links_mapper: pattern {pattern!r} is not a valid regex: {python_error}")
        if self._rust is None:
            assert self._python is not None
            try:
                self._python.sub(self.params.repl, "")  # checks the replacement now, not at the first match
            except (re.error, IndexError) as err:
                raise ValueError(f"clean_links_mapper: bad replacement {self.params.repl!r}: {err}") from err
        else:
            groups, names = (
                (self._python.groups, frozenset(self._python.groupindex)) if self._python else (None, frozenset())
            )
            self._rust = (self._rust[0], rust_replacement(self.params.repl, groups, names))

    def map_text(self, text: pl.Expr) -> pl.Expr:
        if self.params.pattern is None and self._rust is not None:
            repl = self._rust[1]
            return text.map_batches(
                lambda texts: _replace_default_links(texts, repl), return_dtype=pl.String, is_elementwise=True
            )
        if self._rust is not None:
            return text.str.replace_all(*self._rust)
        regex, repl = self._python, self.params.repl
        assert regex is not None
        # The pattern means something else in Rust's dialect (see `_same_in_rust`): Python's `re`, row by row.
        return text.map_batches(
            lambda texts: pl.Series([None if t is None else regex.sub(repl, t) for t in texts], dtype=pl.String),
            return_dtype=pl.String,
            is_elementwise=True,
        )
