"""suffix_filter: keep rows read from files with given suffixes."""

from __future__ import annotations

import polars as pl
from pydantic import Field

from ops_library.base import Filter, FilterParams, OpOutput
from ops_library.columns import ROW_ID
from ops_library.registry import register
from ops_library.stats import SUFFIX_FIELD

_COMPRESSED = r"((?:\.[^.]+)?\.(?:gz|zst))$"  # Data-Juicer keeps the last two suffixes of compressed files
_LAST = r"(\.[^.]+)$"


def suffix_of_row_id(row_id: pl.Expr) -> pl.Expr:
    """The input file's suffix as Data-Juicer's reader records it (lower-cased `Path.suffix`, or the last two
    suffixes of a .gz/.zst file: ".jsonl.gz"), from a Sluice row id "<path>:<row>"."""
    name = row_id.str.replace(r":[^:]*$", "").str.replace(r"^.*/", "").str.to_lowercase().str.strip_chars_start(".")
    compressed = name.str.extract(_COMPRESSED, 1)
    return pl.coalesce(compressed, name.str.extract(_LAST, 1), pl.lit(""))


@register("suffix_filter")
class SuffixFilter(Filter):
    """Keeps rows read from a file whose suffix is one of `suffixes` (all rows when empty). Matches Data-Juicer's
    op of the same name.

    The suffix is the row's `__dj__suffix__` field when the data carries one (Data-Juicer's `add_suffix`),
    else that of the input file in the row's Sluice id: ".jsonl", ".parquet", and for compressed files the
    last two suffixes, ".jsonl.gz". As in Data-Juicer's code the comparison is exact, so give the dot: ".txt"
    (a bare "txt" matches nothing). No stat is stored.
    """

    class Params(FilterParams):
        suffixes: str | list[str] | None = Field(
            [], description="Suffixes kept, with their dot, e.g. '.jsonl' or ['.jsonl', '.jsonl.gz']; empty keeps all."
        )

    stat = SUFFIX_FIELD
    bounds = ()

    @property
    def suffixes(self) -> list[str]:
        s = self.params.suffixes
        return [] if s is None else [s] if isinstance(s, str) else list(s)

    def stats(self, text: pl.Expr) -> dict[str, pl.Expr]:
        return {}

    def keep(self) -> pl.Expr:
        raise NotImplementedError(f"{self.name} decides in run(): the suffix column depends on the frame")

    def run(self, df: pl.DataFrame) -> OpOutput:
        suffix = pl.col(SUFFIX_FIELD) if SUFFIX_FIELD in df.columns else suffix_of_row_id(pl.col(ROW_ID))
        if not self.suffixes:
            return self.split(df, pl.lit(True), pl.lit(""))
        keep = suffix.is_in(self.suffixes).fill_null(False)
        where = "in" if self.params.reversed_range else "not in"
        reason = pl.format(f"suffix {{}} {where} {self.suffixes}", suffix)
        return self.split(df, ~keep if self.params.reversed_range else keep, reason)
