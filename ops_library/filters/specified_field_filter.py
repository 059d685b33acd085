"""specified_field_filter: keep rows whose (nested) field holds only listed values."""

from __future__ import annotations

from typing import Any

import polars as pl
from pydantic import Field

from ops_library.base import Filter, FilterParams, OpOutput, present_stats, stat_field, with_stats
from ops_library.fields import nested_field
from ops_library.registry import register

Scalar = str | int | float | bool | None


def member(value: pl.Expr, dtype: pl.DataType, targets: list[Any], op: str) -> pl.Expr:
    """`value in targets` with Python's equality (1 == 1.0 == True), for a scalar column of `dtype`."""
    none_listed = any(t is None for t in targets)
    if dtype == pl.Null:
        return pl.lit(none_listed)
    if dtype.is_numeric() or dtype == pl.Boolean:
        numbers = [float(t) for t in targets if isinstance(t, (int, float))]  # bool is an int, as in Python
        found = value.cast(pl.Float64).is_in(numbers) if numbers else pl.lit(False)
    elif dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
        strings = [t for t in targets if isinstance(t, str)]
        found = value.cast(pl.String).is_in(strings) if strings else pl.lit(False)
    else:
        raise TypeError(f"{op}: cannot compare values of type {dtype} with target_value (strings, numbers, booleans)")
    return pl.when(value.is_null()).then(none_listed).otherwise(found)


@register("specified_field_filter")
class SpecifiedFieldFilter(Filter):
    """Keeps rows whose field `field_key` (nested fields separated by dots, e.g. "meta.lang") holds a value in
    `target_value`; for a list field every element must be in it (an empty list passes). All rows are kept
    when `field_key` or `target_value` is empty. Matches Data-Juicer's op of the same name.

    As in Data-Juicer the field's value is copied into the stats under the key `field_key` and the decision is
    read from there; `reversed_range` keeps the other rows. Equality is Python's (1, 1.0 and True are equal);
    a missing value equals None. A field the data lacks is a one-line error naming it.
    """

    class Params(FilterParams):
        field_key: str = Field("", description="Field to test; nested fields separated by '.', e.g. 'meta.lang'.")
        target_value: list[Scalar] = Field([], description="Values kept (a list field must hold only these).")

    stat = "field_key"  # the stat is named after the field, as in Data-Juicer
    bounds = ()

    def stats(self, text: pl.Expr) -> dict[str, pl.Expr]:
        raise NotImplementedError("specified_field_filter reads its field in run()")

    def keep(self) -> pl.Expr:
        raise NotImplementedError(f"{self.name} decides in run(): the field and its type depend on the frame")

    def run(self, df: pl.DataFrame) -> OpOutput:
        key, targets = self.params.field_key, self.params.target_value
        if not key:
            return self.split(df, pl.lit(True), pl.lit(""))
        value, dtype = nested_field(df, key, self.name)
        df = self.with_field_stat(df, key, value)
        if not targets:
            return self.split(df, pl.lit(True), pl.lit(""))
        stored = stat_field(key)
        if isinstance(dtype, (pl.List, pl.Array)):
            inner = member(pl.element(), dtype.inner, targets, self.name)
            keep = pl.when(stored.is_null()).then(None in targets).otherwise(stored.list.eval(inner).list.all())
        else:
            keep = member(stored, dtype, targets, self.name)
        keep = keep.fill_null(False)
        where = "in" if self.params.reversed_range else "not in"
        shown = stored.cast(pl.String) if dtype.is_numeric() or dtype in (pl.String, pl.Boolean) else pl.lit("…")
        reason = pl.format(f"{key}={{}} {where} {targets}", shown.fill_null("None"))
        return self.split(df, ~keep if self.params.reversed_range else keep, reason)

    def with_field_stat(self, df: pl.DataFrame, key: str, value: pl.Expr) -> pl.DataFrame:
        return df if key in present_stats(df) else with_stats(df, {key: value})
