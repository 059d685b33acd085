"""fix_unicode_mapper: repair mojibake and other Unicode damage with ftfy."""

from __future__ import annotations

from typing import Literal

import polars as pl
from pydantic import Field, field_validator

from ops_library.base import Mapper, OpParams
from ops_library.optional import missing_package
from ops_library.registry import register
from ops_library.rowwise import map_rows

REQUIREMENT = "ftfy==6.3.1"
# ftfy changes pure-ASCII text only through HTML entities ("&"), "\r" line breaks, terminal escapes (ESC) and
# control characters; tab, newline and form feed survive. Rows of printable ASCII without "&" are left alone.
NEEDS_FTFY = r"[^\t\n\x0c\x20-\x25\x27-\x7e]"


@register("fix_unicode_mapper")
class FixUnicodeMapper(Mapper):
    """Repairs mojibake, HTML entities, curly quotes, ligatures, line breaks and control characters with
    `ftfy.fix_text`, then applies the Unicode `normalization` (default NFC). Matches Data-Juicer's op of the same
    name.

    Runs ftfy row by row (it is a Python library with no vectorized form), only on rows holding a character
    outside printable ASCII or an "&": ftfy leaves the others unchanged.
    """

    class Params(OpParams):
        normalization: Literal["NFC", "NFKC", "NFD", "NFKD"] | None = Field(
            None, description="Unicode normalization form, any case; None or '': NFC."
        )

        @field_validator("normalization", mode="before")
        @classmethod
        def _upper(cls, value: object) -> object:
            # Data-Juicer upper-cases the form and treats "" as unset.
            if isinstance(value, str):
                return value.upper() or None
            return value

    @classmethod
    def unavailable(cls, params: OpParams) -> str | None:
        return missing_package(cls.name, "ftfy", REQUIREMENT, "the Unicode fixer Data-Juicer uses")

    def map_text(self, text: pl.Expr) -> pl.Expr:
        import ftfy

        form = self.params.normalization or "NFC"
        return map_rows(text, lambda t: ftfy.fix_text(t, normalization=form), text.str.contains(NEEDS_FTFY))
