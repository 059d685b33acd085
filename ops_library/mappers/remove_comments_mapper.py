"""remove_comments_mapper: delete LaTeX % comments."""

from __future__ import annotations

import polars as pl
from pydantic import Field

from ops_library.base import Mapper, OpParams
from ops_library.registry import register

# Data-Juicer's patterns, verbatim, both with MULTILINE. Without DOTALL, "." stops at "\n" in both engines, and
# (?m) "^"/"$" mean start/end of text or next to a "\n" in both.
# Inline: a character that is not a backslash, "%", and at least one more character to the end of the line. The
# first character is removed too, and it may be the "\n" before a line that starts with "%", joining two lines.
INLINE = r"(?m)[^\\]%.+$"
# Whole lines starting with "%", with their newline.
MULTILINE = r"(?m)^%.*\n?"


@register("remove_comments_mapper")
class RemoveCommentsMapper(Mapper):
    """Deletes TeX comments: `inline` ones ("%" not after a backslash, to the end of the line, with the character
    before it) and `multiline` ones (whole lines starting with "%"). Matches Data-Juicer's op of the same name."""

    class Params(OpParams):
        doc_type: str | list[str] = Field(
            "tex", description="Document type; accepted but unused, as in Data-Juicer (TeX rules always apply)."
        )
        inline: bool = Field(True, description="Remove comments that start inside a line.")
        multiline: bool = Field(True, description="Remove lines that start with '%'.")

    def map_text(self, text: pl.Expr) -> pl.Expr:
        if self.params.inline:
            text = text.str.replace_all(INLINE, "")
        if self.params.multiline:
            text = text.str.replace_all(MULTILINE, "")
        return text
