import pytest

from ops_library.base import OpUnavailableError
from ops_library.filters.perplexity_filter import PerplexityFilter


def test_params_are_data_juicers() -> None:
    params = PerplexityFilter.Params()
    assert params.lang == "en"
    assert {k: getattr(params, k) for k in (PerplexityFilter.bounds[0], PerplexityFilter.bounds[-1])} == {
        "min_ppl": 0,
        "max_ppl": 1500,
    }


def test_refused_at_validation_with_what_is_missing() -> None:
    message = PerplexityFilter.unavailable(PerplexityFilter.Params())
    assert message.startswith("perplexity_filter: needs")
    assert "KenLM model 'en.arpa.bin'" in message
    assert "remove it from the recipe" in message


def test_constructing_it_fails_with_the_same_message() -> None:
    with pytest.raises(OpUnavailableError, match=r"^perplexity_filter: needs"):
        PerplexityFilter({})
