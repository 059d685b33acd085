"""The parts of ops_library.base every op shares: the availability hook and the row accounting of OpOutput."""

import polars as pl
import pytest

from ops_library.base import Mapper, OpOutput, OpParams, OpUnavailableError
from ops_library.registry import load_all


class NeedsAModel(Mapper):
    class Params(OpParams):
        model: str = "none"

    @classmethod
    def unavailable(cls, params: OpParams) -> str | None:
        return None if params.model == "builtin" else f"needs_a_model: model {params.model!r} is not shipped"

    def map_text(self, text: pl.Expr) -> pl.Expr:
        return text


def test_unavailable_op_cannot_be_built() -> None:
    with pytest.raises(OpUnavailableError, match="needs_a_model: model 'none' is not shipped"):
        NeedsAModel()
    assert NeedsAModel({"model": "builtin"}).params.model == "builtin"


# Ops whose model cannot ship in a package: they refuse at validation, naming what is missing.
REFUSED = {"perplexity_filter", "text_action_filter", "text_entity_dependency_filter"}


@pytest.mark.parametrize("name", sorted(load_all()))
def test_every_op_with_default_params_is_available_here(name: str) -> None:
    op = load_all()[name]
    if name in REFUSED:
        assert (op.unavailable(op.Params()) or "").startswith(f"{name}: needs ")
    else:
        assert op.unavailable(op.Params()) is None


TEXT_MAPPERS = sorted(n for n, op in load_all().items() if issubclass(op, Mapper) and n != "text_embedding_mapper")


@pytest.mark.parametrize("name", TEXT_MAPPERS)
def test_a_null_text_stays_null(name: str) -> None:
    df = pl.DataFrame({"text": [None, "x"]}, schema={"text": pl.String})
    assert load_all()[name]().run(df).kept["text"][0] is None


def test_op_output_counts_added_rows() -> None:
    out = OpOutput(pl.DataFrame({"x": [1, 2, 3]}))
    assert (out.added, out.dropped_count) == (0, 0)
