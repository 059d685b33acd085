"""Data-Juicer's user-given regexes (`pattern`/`repl` params) in polars, and where Rust would read one differently,
in Python row by row.

Data-Juicer substitutes with `regex.sub(pattern, repl, text, flags=DOTALL)` (the `regex` module). Polars runs
Rust's regex: for a pattern without the constructs listed below, it finds the same non-overlapping
leftmost-first matches, and Python's replacement template translates to Rust's (`rust_replacement`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import polars as pl
import regex

from ops_library.base import Mapper, OpParams
from ops_library.rowwise import map_rows

# Constructs that compile in both Python and Rust but mean different things: Python's `$` also matches
# before a final newline, `\b` is a backspace in a class, `\<`/`\>` are literals in Python and word boundaries
# in Rust; inline flags (case folding differs), nested classes and `&&`/`--`/`~~` set operations, `{,n}`.
# A user pattern holding any of them runs in Python, row by row.
_DIVERGENT_ESCAPES = frozenset("bBzZ<>")
_CLASS_SET_OPERATORS = ("&&", "--", "~~")
_INLINE_FLAGS = frozenset("aiLmsux-")


def unwrap_raw_literal(pattern: str) -> str:
    """Data-Juicer accepts a pattern written as a Python raw literal, `r'...'` or `r"..."`, and unwraps it."""
    if len(pattern) > 2 and pattern[:2] in ("r'", 'r"') and pattern[-1] == pattern[1]:
        return pattern[2:-1]
    return pattern


def same_in_rust(pattern: str) -> bool:
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


class Substitution:
    """`regex.sub(pattern, repl, text, flags=DOTALL)` as Data-Juicer's clean_*_mapper ops run it: a polars
    expression when Rust reads the pattern the same way, else the `regex` module row by row (a look-around, a `$`,
    inline flags: see `same_in_rust`), which has no polars form.

    `default` is Data-Juicer's pattern for `pattern=None`, `rust_default` its Rust spelling (checked by tests).
    """

    def __init__(self, op: str, pattern: str | None, repl: str, default: str, rust_default: str):
        python = default if pattern is None else unwrap_raw_literal(pattern)
        try:
            self.compiled: regex.Pattern[str] | None = regex.compile(python, regex.DOTALL)
            error: Exception | None = None
        except regex.error as err:
            self.compiled, error = None, err
        if pattern is None:
            self.rust: str | None = rust_default
        elif same_in_rust(python):
            self.rust = f"(?s){python}"
        elif error is not None:
            raise ValueError(f"{op}: pattern {python!r} is not a valid regex: {error}")
        else:
            self.rust = None
        groups, names = (
            (self.compiled.groups, frozenset(self.compiled.groupindex)) if self.compiled else (None, frozenset())
        )
        try:
            self.rust_repl = rust_replacement(repl, groups, names)
        except ValueError as err:
            raise ValueError(f"{op}: bad replacement {repl!r}: {err}") from err
        self.repl = repl

    def expr(self, text: pl.Expr) -> pl.Expr:
        if self.rust is not None:
            return text.str.replace_all(self.rust, self.rust_repl)
        compiled, repl = self.compiled, self.repl
        assert compiled is not None
        sub: Callable[[str], str] = lambda t: compiled.sub(repl, t)  # noqa: E731
        return map_rows(text, sub)


class SubstitutionMapper(Mapper):
    """A Data-Juicer mapper that is `Substitution` with its `pattern`/`repl` params (clean_email, clean_ip):
    subclasses give their Params and Data-Juicer's default pattern."""

    default_pattern: ClassVar[str] = ""

    def __init__(self, params: OpParams | Mapping[str, Any] | None = None, *, text_key: str = "text"):
        super().__init__(params, text_key=text_key)
        pattern, repl = self.params.pattern, self.params.repl  # type: ignore[attr-defined]
        default = self.default_pattern
        self._sub = Substitution(self.name, pattern, repl, default, f"(?s){default}")

    def map_text(self, text: pl.Expr) -> pl.Expr:
        return self._sub.expr(text)
