"""clean_links_mapper: remove (or replace) URLs and other links."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import polars as pl
from pydantic import Field

from ops_library.base import Mapper, OpParams
from ops_library.patterns import rust_replacement
from ops_library.patterns import same_in_rust as _same_in_rust
from ops_library.patterns import unwrap_raw_literal as _unwrap_raw_literal
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
