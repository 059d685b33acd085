"""specified_numeric_field_filter: keep rows whose (nested) numeric field lies in a range."""

from __future__ import annotations

import sys

import polars as pl
from pydantic import Field

from ops_library.base import (
    Filter,
    FilterParams,
    OpOutput,
    effective_closedness,
    present_stats,
    range_keep,
    stat_field,
    with_stats,
)
from ops_library.columns import STATS
from ops_library.fields import nested_field
from ops_library.registry import register


def _python_number(value: str | None) -> float | None:
    """Data-Juicer's `is_number` + `float`: a non-empty string Python's float() accepts, else None."""
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        return None


def as_number(value: pl.Expr, dtype: pl.DataType, op: str) -> pl.Expr:
    """The value as Data-Juicer reads it (None where it is no number). Falsy values (0, 0.0, False, "") are no
    number to Data-Juicer (`if s:` comes first), and strings are parsed by Python's float() ("1e3", " 2 ",
    "1_000", "inf", Arabic-Indic digits), once per distinct string."""
    if dtype.is_numeric() or dtype == pl.Boolean:
        number = value.cast(pl.Float64)
        return pl.when(number != 0).then(number)
    if dtype == pl.String:

        def parse(strings: pl.Series) -> pl.Series:
            distinct = strings.unique().drop_nulls()
            parsed = pl.Series([_python_number(s) for s in distinct], dtype=pl.Float64)
            return strings.replace_strict(distinct, parsed, default=None, return_dtype=pl.Float64)

        return value.map_batches(parse, return_dtype=pl.Float64, is_elementwise=True)
    if dtype == pl.Null:
        return pl.lit(None, pl.Float64)
    raise TypeError(f"{op}: field of type {dtype} is not numeric (numbers, booleans or numeric strings)")


@register("specified_numeric_field_filter")
class SpecifiedNumericFieldFilter(Filter):
    """Keeps rows whose field `field_key` (nested fields separated by dots, e.g. "meta.score") is a number in
    [min_value, max_value]; all rows when `field_key` is empty. Matches Data-Juicer's op of the same name.

    As in Data-Juicer the field's value is copied into the stats under the key `field_key`; a value that is no
    number (null, a non-numeric string, and also 0, 0.0, False and "", which Data-Juicer's `is_number` rejects
    as falsy) drops the row whatever `reversed_range` says. NaN is outside every range. A field the data lacks
    is a one-line error naming it.
    """

    class Params(FilterParams):
        field_key: str = Field("", description="Field to test; nested fields separated by '.', e.g. 'meta.score'.")
        min_value: float = Field(-sys.maxsize, description="Smallest value kept.")
        max_value: float = Field(sys.maxsize, description="Largest value kept.")

    stat = "field_key"  # the stat is named after the field, as in Data-Juicer
    bounds = ("min_value", "max_value")

    def stats(self, text: pl.Expr) -> dict[str, pl.Expr]:
        raise NotImplementedError("specified_numeric_field_filter reads its field in run()")

    def keep(self) -> pl.Expr:
        raise NotImplementedError(f"{self.name} decides in run(): the field and its type depend on the frame")

    def run(self, df: pl.DataFrame) -> OpOutput:
        p = self.params
        if not p.field_key:
            return self.split(df, pl.lit(True), pl.lit(""))
        if p.field_key not in present_stats(df):
            value, _ = nested_field(df, p.field_key, self.name)
            df = with_stats(df, {p.field_key: value})
        stats_dtype = df.schema[STATS]
        dtype = {f.name: f.dtype for f in stats_dtype.fields}[p.field_key]  # type: ignore[union-attr]
        number = as_number(stat_field(p.field_key), dtype, self.name)
        in_range = (
            pl.when(number.is_nan()).then(p.reversed_range).otherwise(range_keep(number, p.min_value, p.max_value, p))
        )
        keep = number.is_not_null() & in_range
        lo, hi = effective_closedness(p)
        where = "inside" if p.reversed_range else "outside"
        interval = f"{'[' if lo else '('}{p.min_value!r}, {p.max_value!r}{']' if hi else ')'}"
        reason = pl.when(number.is_null()).then(
            pl.format(f"{p.field_key}={{}} is no number", stat_field(p.field_key).cast(pl.String).fill_null("None"))
        )
        reason = reason.otherwise(pl.format(f"{p.field_key}={{}} {where} {interval}", number))
        return self.split(df, keep, reason)
