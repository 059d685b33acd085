"""clean_copyright_mapper: remove a copyright comment, or the comment lines a code file starts with."""

from __future__ import annotations

import polars as pl

from ops_library.base import Mapper, OpParams
from ops_library.registry import register

# Data-Juicer's C-comment pattern, verbatim: "/*", then anything up to the first "*/". Found anywhere in the text,
# not only at its start. No look-around: Rust finds the same first match.
COMMENT = r"/\*[^*]*\*+(?:[^/*][^*]*\*+)*/"
# Data-Juicer searches "copyright" with IGNORECASE in the `regex` module, where "i" also matches U+0130 (İ);
# Rust's simple case folding does not, so it is spelled out.
COPYRIGHT = "(?i)copyr[i\\x{130}]ght"
# Without a C comment, Data-Juicer splits on "\n" and drops the leading lines that are empty or start with "//",
# "#" or "--", then joins the rest: the same as deleting those lines (with their "\n") from the start, and a last
# line of that kind when nothing follows it.
_SKIPPED = r"(?://|#|--)[^\n]*"
LEADING_COMMENT_LINES = rf"\A(?:(?:{_SKIPPED})?\n)*(?:{_SKIPPED}\z)?"


@register("clean_copyright_mapper")
class CleanCopyrightMapper(Mapper):
    """If the text has a /* ... */ comment, deletes the first one when it contains "copyright" (any case) and
    changes nothing else; otherwise deletes the leading lines that are empty or start with "//", "#" or "--".
    Matches Data-Juicer's op of the same name."""

    class Params(OpParams):
        """No parameters, as in Data-Juicer."""

    def map_text(self, text: pl.Expr) -> pl.Expr:
        first_comment = text.str.extract(f"({COMMENT})", 1)
        return (
            pl.when(first_comment.is_null())
            .then(text.str.replace(LEADING_COMMENT_LINES, ""))
            .when(first_comment.str.contains(COPYRIGHT))
            .then(text.str.replace(COMMENT, ""))
            .otherwise(text)
        )
