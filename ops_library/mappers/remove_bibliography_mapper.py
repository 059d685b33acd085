"""remove_bibliography_mapper: cut a LaTeX document at its appendix or bibliography."""

from __future__ import annotations

import polars as pl

from ops_library.base import Mapper, OpParams
from ops_library.registry import register

# Data-Juicer's pattern, verbatim, with its DOTALL flag. `.*$` runs to the end of the text, so the text is cut at
# the first command found. Python's `$` would also match before a final newline, but the greedy `.*` has already
# eaten it, so Rust's end-of-text `$` gives the same match.
DJ_PATTERN = (
    r"(\\appendix|"
    r"\\begin\{references\}|"
    r"\\begin\{REFERENCES\}|"
    r"\\begin\{thebibliography\}|"
    r"\\bibliography\{.*\}"
    r").*$"
)


@register("remove_bibliography_mapper")
class RemoveBibliographyMapper(Mapper):
    """Deletes everything from the first `\\appendix`, `\\begin{references}`, `\\begin{REFERENCES}`,
    `\\begin{thebibliography}` or `\\bibliography{...}` (a later "}" needed) to the end of the text. Matches
    Data-Juicer's op of the same name."""

    class Params(OpParams):
        """No parameters, as in Data-Juicer."""

    def map_text(self, text: pl.Expr) -> pl.Expr:
        return text.str.replace_all(f"(?s){DJ_PATTERN}", "")
