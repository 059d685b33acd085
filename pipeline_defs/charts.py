"""Small pictures for the Dagster UI as Markdown (rendered in the asset's metadata panel): a funnel of rows per
op, and a histogram of a filter's stat with its keep range. Bars are Unicode blocks, so they render anywhere
Markdown does and stay readable in the raw event log."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
import polars as pl

_BLOCKS = " ▏▎▍▌▋▊▉█"


def bar(value: float, top: float, width: int = 30) -> str:
    if top <= 0:
        return ""
    eighths = round(value / top * width * 8)
    return "█" * (eighths // 8) + (_BLOCKS[eighths % 8] if eighths % 8 else "")


def _cell(text: str) -> str:
    return f"`{text}`" if text else ""


def funnel_markdown(rows: Sequence[tuple[str, int, int]]) -> str:
    """(step, rows in, rows out) per op, in recipe order."""
    if not rows:
        return "_no rows_"
    top = max(r[1] for r in rows) or 1
    lines = ["| op | rows in | rows out | kept |", "|---|---:|---:|---|"]
    lines += [f"| {name} | {rin} | {rout} | {_cell(bar(rout, top))} |" for name, rin, rout in rows]
    return "\n".join(lines)


def histogram_markdown(values: pl.Series, lo: float | None, hi: float | None, bins: int = 12) -> str:
    """A histogram of a stat (log-spaced bins when it spans decades), marking the bins inside [lo, hi]."""
    values = values.drop_nulls().cast(pl.Float64)
    if values.is_empty():
        return "_no values_"
    vmin, vmax = float(values.min()), float(values.max())  # type: ignore[arg-type]
    if vmax == vmin:
        edges = [vmin, vmin + 1]
    elif vmin >= 1 and vmax / vmin > 100:
        ratio = (vmax / vmin) ** (1 / bins)
        edges = [vmin * ratio**i for i in range(bins + 1)]
    else:
        step = (vmax - vmin) / bins
        edges = [vmin + step * i for i in range(bins + 1)]
    edges[-1] = vmax + 1e-9
    # each value in the bin [a, b) of its edges (the last edge is above the largest value): one pass
    counts = [int(n) for n in np.histogram(values.to_numpy(), bins=np.asarray(edges))[0]]
    top = max(counts) or 1
    lines = ["| bin | rows | | kept? |", "|---|---:|---|---|"]
    for (a, b), n in zip(itertools.pairwise(edges), counts, strict=True):
        inside = (lo is None or b > lo) and (hi is None or a <= hi)
        lines.append(f"| [{a:,.4g}, {b:,.4g}) | {n} | {_cell(bar(n, top, 24))} | {'✓' if inside else '✗'} |")
    return "\n".join(lines)
