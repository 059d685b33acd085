"""The `Op.unavailable` hook: ops whose package, model or word list is absent say so before they run."""

import polars as pl
import pytest

from ops_library.base import Filter, FilterParams, OpParams, OpUnavailableError
from ops_library.registry import OPS, load_all

# Ops Sluice registers only to refuse them clearly (Data-Juicer downloads what they need).
REFUSED = {"perplexity_filter", "text_action_filter", "text_entity_dependency_filter"}


class NeedsAThing(Filter):
    """A filter that needs something absent, unless told otherwise (Data-Juicer has no such op)."""

    class Params(FilterParams):
        have_it: bool = False
        min_len: int = 0
        max_len: int = 10

    stat = "x"

    @classmethod
    def unavailable(cls, params: OpParams) -> str | None:
        return None if params.have_it else "needs_a_thing: the package 'thing' is not installed; pip install thing"  # type: ignore[attr-defined]

    def stats(self, text: pl.Expr) -> dict[str, pl.Expr]:
        return {"x": text.str.len_chars()}


def test_the_default_is_available() -> None:
    assert OpParams and Filter.unavailable(FilterParams()) is None


def test_an_unavailable_op_cannot_be_built_and_says_why() -> None:
    with pytest.raises(
        OpUnavailableError, match=r"^needs_a_thing: the package 'thing' is not installed; pip install thing$"
    ):
        NeedsAThing()
    assert NeedsAThing({"have_it": True}).run(pl.DataFrame({"text": ["ab"]})).kept.height == 1


@pytest.mark.parametrize("name", sorted(load_all()))
def test_every_op_with_default_params_is_available_or_refused_with_its_name(name: str) -> None:
    op = OPS[name]
    message = op.unavailable(op.Params())
    if name in REFUSED:
        assert message is not None and message.startswith(f"{name}: ")
        assert "\n" not in message
    else:
        assert message is None, message
