"""The Markdown charts of step metadata: the stat histogram a filter's materialization shows in the UI."""

from __future__ import annotations

import re

import polars as pl

from pipeline_defs.charts import histogram_markdown


def _rows(md: str) -> list[tuple[float, float, int, bool]]:
    """(low edge, high edge, rows, kept?) of each bin line."""
    out = []
    for line in md.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        lo, hi = (float(x.replace(",", "")) for x in re.findall(r"[-\d.,e+]+", cells[0])[:2])
        out.append((lo, hi, int(cells[1]), cells[3] == "✓"))
    return out


def test_each_value_is_counted_once_in_the_bin_that_holds_it() -> None:
    values = pl.Series([0.0, 0.1, 0.1, 0.5, 0.99, 1.0, 1.2, None, float("nan")])
    rows = _rows(histogram_markdown(values, 0.2, 1.0, bins=4))
    assert [n for *_, n, _ in rows] == [3, 1, 0, 3]  # [0, .3) [.3, .6) [.6, .9) [.9, 1.2]: nulls and NaN in none
    assert [kept for *_, kept in rows] == [True, True, True, True]
    rows = _rows(histogram_markdown(values, 0.7, 0.8, bins=4))
    assert [kept for *_, kept in rows] == [False, False, True, False]


def test_a_stat_spanning_decades_gets_log_spaced_bins() -> None:
    values = pl.Series([1, 10, 100, 1000, 10000] * 3)
    rows = _rows(histogram_markdown(values, 10, None, bins=4))
    assert sum(n for *_, n, _ in rows) == 15
    assert [n for *_, n, _ in rows] == [3, 3, 3, 6]  # edges 1, 10, 100, 1000, 10000(+): the last bin takes both
    assert not rows[0][3] and all(kept for *_, kept in rows[1:])
