"""Reading a (possibly nested) field of a row by Data-Juicer's dotted key, e.g. "meta.source.lang"."""

from __future__ import annotations

import polars as pl


def nested_field(df: pl.DataFrame, key: str, op: str) -> tuple[pl.Expr, pl.DataType]:
    """The expression reading `key` (struct fields separated by dots) and its dtype.

    Raises a one-line ValueError naming the op, the key and the fields there are, when the frame lacks it
    (Data-Juicer asserts the same per row).
    """
    parts = key.split(".")
    available = list(df.schema)
    if parts[0] not in df.schema:
        raise ValueError(f"{op}: field '{key}' not found: no column '{parts[0]}' (columns: {', '.join(available)})")
    expr, dtype = pl.col(parts[0]), df.schema[parts[0]]
    for depth, part in enumerate(parts[1:], 1):
        names = [f.name for f in dtype.fields] if isinstance(dtype, pl.Struct) else []
        if part not in names:
            where = ".".join(parts[:depth])
            has = f"it has {', '.join(names)}" if names else f"it is {dtype}, not a struct"
            raise ValueError(f"{op}: field '{key}' not found: '{where}' has no field '{part}' ({has})")
        expr, dtype = expr.struct.field(part), {f.name: f.dtype for f in dtype.fields}[part]
    return expr, dtype
