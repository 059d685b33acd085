"""What every new text filter shares: an empty frame passes through with a typed stats column, and stats
computed once are read back, not recomputed, when the thresholds change."""

import polars as pl
import pytest

from ops_library.columns import ROW_ID, STATS
from ops_library.registry import get_op
from tests.ops_library.test_reference_agreement_filters import ADVERSARIAL, CASES

# One case per stat filter with bounds that split the adversarial texts.
RETHRESHOLD = {op: params for op, params in reversed(CASES) if params and op != "suffix_filter"}


@pytest.mark.parametrize(("op", "params"), CASES, ids=[f"{op}-{i}" for i, (op, _) in enumerate(CASES)])
def test_empty_frame(op: str, params: dict) -> None:
    df = pl.DataFrame(schema={"text": pl.String, ROW_ID: pl.String})
    out = get_op(op)(params).run(df)
    assert out.kept.height == 0 and out.dropped is not None and out.dropped.height == 0
    if op != "suffix_filter":  # the suffix filter stores no stat, as in Data-Juicer
        assert isinstance(out.kept.schema[STATS], pl.Struct)


@pytest.mark.parametrize("op", sorted(RETHRESHOLD))
def test_a_new_threshold_redecides_from_the_stored_stats(op: str) -> None:
    texts = ADVERSARIAL[:200]
    df = pl.DataFrame({"text": texts, ROW_ID: [f"f.jsonl:{i}" for i in range(len(texts))]})
    op_class, params = get_op(op), RETHRESHOLD[op]
    first = op_class(params).run(df)
    with_stats = pl.concat([first.kept, first.dropped.select(first.kept.columns)])
    # New bounds: from the stat's middle distinct value to its maximum, so the new decision splits the rows.
    values = with_stats[STATS].struct.field(op_class.stat).unique().sort()
    (lo, hi), defaults = op_class.bounds, op_class.Params()
    middle = values[len(values) // 2]
    new = {**params, hi: type(getattr(defaults, hi))(values.max()), lo: type(getattr(defaults, lo))(middle)}
    new |= {"reversed_range": False, "min_closed_interval": True, "max_closed_interval": True}
    expected = op_class(new).run(df).kept
    assert 0 < expected.height < len(texts)
    # Text replaced by garbage: only the stored stats can give the answer a fresh run gives.
    stored = with_stats.with_columns(pl.lit("zz").alias("text"))
    again = op_class(new).run(stored).kept
    assert sorted(again[ROW_ID].to_list()) == sorted(expected[ROW_ID].to_list())
