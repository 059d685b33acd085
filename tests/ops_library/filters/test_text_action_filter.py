import pytest

from ops_library.base import OpUnavailableError
from ops_library.filters.text_action_filter import TextActionFilter


def test_params_are_data_juicers() -> None:
    params = TextActionFilter.Params()
    assert params.lang == "en"
    assert {k: getattr(params, k) for k in (TextActionFilter.bounds[0], TextActionFilter.bounds[-1])} == {
        "min_action_num": 1
    }


def test_refused_at_validation_with_what_is_missing() -> None:
    message = TextActionFilter.unavailable(TextActionFilter.Params())
    assert message.startswith("text_action_filter: needs")
    assert "spaCy model 'en_core_web_md'" in message
    assert "remove it from the recipe" in message


def test_constructing_it_fails_with_the_same_message() -> None:
    with pytest.raises(OpUnavailableError, match=r"^text_action_filter: needs"):
        TextActionFilter({})
