import pytest

from ops_library.base import OpUnavailableError
from ops_library.filters.text_entity_dependency_filter import TextEntityDependencyFilter


def test_params_are_data_juicers() -> None:
    params = TextEntityDependencyFilter.Params()
    assert params.lang == "en"
    assert {
        k: getattr(params, k) for k in (TextEntityDependencyFilter.bounds[0], TextEntityDependencyFilter.bounds[-1])
    } == {"min_dependency_num": 1}


def test_refused_at_validation_with_what_is_missing() -> None:
    message = TextEntityDependencyFilter.unavailable(TextEntityDependencyFilter.Params())
    assert message.startswith("text_entity_dependency_filter: needs")
    assert "spaCy model 'en_core_web_md'" in message
    assert "remove it from the recipe" in message


def test_constructing_it_fails_with_the_same_message() -> None:
    with pytest.raises(OpUnavailableError, match=r"^text_entity_dependency_filter: needs"):
        TextEntityDependencyFilter({})
