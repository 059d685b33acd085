"""expand_macro_mapper: expand argument-free LaTeX macros defined in the document itself."""

from __future__ import annotations

import polars as pl
import regex

from ops_library.base import Mapper, OpParams
from ops_library.registry import register
from ops_library.rowwise import map_rows

# Data-Juicer's patterns, verbatim: \newcommand{\name}{value} and \def\name{value}, value to the end of the line.
_NEWCOMMAND = regex.compile(r"\\\bnewcommand\b\*?\{(\\[a-zA-Z0-9]+?)\}\{(.*?)\}$", flags=regex.MULTILINE)
_DEF = regex.compile(r"\\def\s*(\\[a-zA-Z0-9]+?)\s*\{(.*?)\}$", flags=regex.MULTILINE)


def expand_macros(text: str) -> str:
    """Data-Juicer's `process_batched` body for one document, with its `regex` module calls."""
    macros = {}
    for pattern in (_NEWCOMMAND, _DEF):
        for match in pattern.finditer(text):
            name = match.group(1).encode("unicode-escape").decode("utf-8")
            macros[name] = match.group(2).encode("unicode-escape").decode("utf-8")
    for name, value in macros.items():
        text = regex.sub(pattern=r"(" + name + r")" + r"([^a-zA-Z0-9])", repl=value + r"\2", string=text)
    return text


@register("expand_macro_mapper")
class ExpandMacroMapper(Mapper):
    """Replaces each use of a macro defined without arguments in the text (`\\newcommand{\\x}{...}`,
    `\\def\\x{...}`) by its value, where not followed by a letter or digit (definitions included). Matches
    Data-Juicer's op of the same name.

    Row by row with the `regex` module, as Data-Juicer: the macros differ per document and become patterns and
    replacement templates, which no polars expression can build. Only rows holding "\\newcommand" or "\\def".
    """

    class Params(OpParams):
        """No parameters, as in Data-Juicer."""

    def map_text(self, text: pl.Expr) -> pl.Expr:
        return map_rows(text, expand_macros, text.str.contains_any(["\\newcommand", "\\def"]))
