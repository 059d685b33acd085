"""Data-Juicer's line / tab / space word structure (`split_on_newline_tab_whitespace` and its inverse
`merge_on_whitespace_tab_newline`), as polars list expressions, for the mappers that drop single words.

Data-Juicer splits on "\\n", each line on "\\t", each piece on " " (empty words dropped); after dropping words it
joins words with " ", pieces with "\\t" and lines with "\\n", leaving out pieces and lines that hold no word. So
even when no word is dropped, runs of spaces collapse, spaces next to tabs and line ends go, and blank lines go.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from ops_library.text import SPECIAL_CHARACTERS, char_class

_SPECIAL = char_class(SPECIAL_CHARACTERS)
_SPECIAL_AT_ENDS = f"^{_SPECIAL}+|{_SPECIAL}+$"


def strip_special(word: pl.Expr) -> pl.Expr:
    """Data-Juicer's `strip(word, SPECIAL_CHARACTERS)`: special characters removed from both ends."""
    return word.str.replace_all(_SPECIAL_AT_ENDS, "")


def _non_empty(joined: pl.Expr) -> pl.Expr:
    return joined.list.eval(pl.element().filter(pl.element() != ""))


def keep_words(text: pl.Expr, keep: Callable[[pl.Expr], pl.Expr]) -> pl.Expr:
    """The text rebuilt from the words for which `keep(word)` is true, as Data-Juicer's split / merge does."""
    word = pl.element()
    words = word.str.split(" ").list.eval(word.filter((word != "") & keep(word))).list.join(" ")
    pieces = _non_empty(word.str.split("\t").list.eval(words)).list.join("\t")
    return _non_empty(text.str.split("\n").list.eval(pieces)).list.join("\n")
