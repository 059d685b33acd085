from pathlib import Path

import pytest

from ops_library.base import Deduplicator, Filter, Mapper, Op
from ops_library.registry import OPS, UnknownOpError, get_op, load_all, register

TESTS = Path(__file__).parent
FAMILIES = {Mapper: "mappers", Filter: "filters", Deduplicator: "dedup"}
OP_NAMES = sorted(load_all())


def family(op: type[Op]) -> str:
    return next(folder for base, folder in FAMILIES.items() if issubclass(op, base))


def test_the_five_text_ops_are_registered() -> None:
    expected = {
        "whitespace_normalization_mapper",
        "clean_links_mapper",
        "text_length_filter",
        "words_num_filter",
        "document_deduplicator",
    }
    assert expected <= set(OP_NAMES)


@pytest.mark.parametrize("name", OP_NAMES)
def test_every_op_has_a_test_file(name: str) -> None:
    op = OPS[name]
    assert (TESTS / family(op) / f"test_{name}.py").is_file()


@pytest.mark.parametrize("name", OP_NAMES)
def test_file_name_registry_key_and_class_name_match(name: str) -> None:
    op = OPS[name]
    assert op.name == name
    assert op.__module__ == f"ops_library.{family(op)}.{name}"
    assert op.__name__ == "".join(part.capitalize() for part in name.split("_"))


@pytest.mark.parametrize("name", OP_NAMES)
def test_op_documents_itself(name: str) -> None:
    op = OPS[name]
    assert "Data-Juicer" in op.summary()
    assert op.Params.__qualname__ == f"{op.__name__}.Params"
    for field, info in op.Params.model_fields.items():
        assert info.description, f"{name}.{field} has no description"
    if issubclass(op, Filter):
        assert op.stat
        assert set(op.bounds) <= set(op.Params.model_fields)


def test_unknown_op_suggests_close_names() -> None:
    with pytest.raises(UnknownOpError, match=r"unknown op 'text_lenght_filter'; did you mean 'text_length_filter'"):
        get_op("text_lenght_filter")
    with pytest.raises(KeyError, match="no_such_thing") as err:
        get_op("no_such_thing", where="recipe.yaml, process[3]: ")
    assert "did you mean" not in str(err.value)
    assert str(err.value).startswith("recipe.yaml, process[3]: unknown op")


def test_get_op_returns_the_class() -> None:
    assert get_op("words_num_filter") is OPS["words_num_filter"]


def test_registering_a_second_class_under_a_taken_name_fails() -> None:
    with pytest.raises(ValueError, match="registered twice"):

        @register("text_length_filter")
        class Impostor(Filter):  # pragma: no cover - never instantiated
            def stats(self, text):  # type: ignore[no-untyped-def]
                return {}
