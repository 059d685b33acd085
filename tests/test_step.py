"""The step runtime's helpers that do not need a Dagster run."""

from __future__ import annotations

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from ops_library.registry import get_op
from pipeline_defs.opchain import spread


@pytest.mark.parametrize("chunks", [1, 2, 3, 7])
def test_spread_cuts_a_frame_into_chunks_without_changing_a_row(chunks: int) -> None:
    df = pl.DataFrame({"id": [str(i) for i in range(100)], "text": [f"row  {i}\t x" for i in range(100)]})
    cut = spread(df, chunks)
    assert cut.n_chunks() == chunks
    assert_frame_equal(cut, df)
    # an op sees the same rows either way: its output is identical, chunk by chunk or whole
    op = get_op("whitespace_normalization_mapper")(get_op("whitespace_normalization_mapper").Params())
    assert_frame_equal(op.run(cut).kept, op.run(df).kept)


def test_spread_leaves_a_frame_too_small_to_share_whole() -> None:
    df = pl.DataFrame({"x": [1, 2, 3]})
    assert spread(df, 2).n_chunks() == 1
