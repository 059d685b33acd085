"""remove_header_mapper: delete what comes before the first LaTeX sectioning command."""

from __future__ import annotations

import polars as pl
from pydantic import Field

from ops_library.base import Mapper, OpParams
from ops_library.registry import register

_COMMANDS = ("chapter", "part", "section", "subsection", "subsubsection", "paragraph", "subparagraph")
# Data-Juicer's pattern, verbatim, with DOTALL: the shortest prefix, then the first sectioning command (with an
# optional "*", optional [short title] and a {title}). Only look-free constructs: Rust's leftmost-first matching
# (lazy quantifiers included) picks the same match as the `regex` module, and its `\b` is the same Unicode one.
DJ_PATTERN = r"^(.*?)(" + "|".join(rf"\\\b{c}\b\*?(?:\[(.*?)\])?\{{(.*?)\}}" for c in _COMMANDS) + ")"


@register("remove_header_mapper")
class RemoveHeaderMapper(Mapper):
    """Deletes everything before the first \\chapter, \\part, \\section, \\subsection, \\subsubsection,
    \\paragraph or \\subparagraph command (with its {title}); a text without one becomes "" when `drop_no_head`.
    Matches Data-Juicer's op of the same name."""

    class Params(OpParams):
        drop_no_head: bool = Field(True, description="Empty the text of rows that have no sectioning command.")

    def map_text(self, text: pl.Expr) -> pl.Expr:
        pattern = f"(?s){DJ_PATTERN}"
        without_head = pl.lit("", dtype=pl.String) if self.params.drop_no_head else text
        return (
            pl.when(text.str.contains(pattern) | text.is_null())
            .then(text.str.replace(pattern, "${2}"))
            .otherwise(without_head)
        )
