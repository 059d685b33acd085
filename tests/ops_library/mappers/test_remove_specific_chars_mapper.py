import pytest

from ops_library.mappers.remove_specific_chars_mapper import RemoveSpecificCharsMapper
from tests.ops_library.mappers.helpers import apply

OP = "remove_specific_chars_mapper"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("  ", "  "),
        ("◆ item ● two ■", " item  two "),
        ("►▼▲▴∆▻▷❖♡□", ""),
        ("中文◆中文", "中文中文"),
        ("😀♡😀", "😀😀"),
        ("שלום■", "שלום"),
        ("a◆\r\nb", "a\r\nb"),
        ("◆x" * 200_000, "x" * 200_000),
    ],
)
def test_default_chars(text: str, expected: str) -> None:
    assert apply(OP, text) == [expected]


def test_chars_as_string_or_list() -> None:
    assert apply(OP, "a-b]c\\d^e", chars_to_remove="-]\\^") == ["abcde"]  # regex metacharacters are literal
    assert apply(OP, "abcabc", chars_to_remove=["ab", "x"]) == ["cc"]  # every character of every string
    assert apply(OP, "◆keep◆", chars_to_remove="") == ["◆keep◆"]
    assert apply(OP, "◆keep◆", chars_to_remove=[]) == ["◆keep◆"]


def test_a_list_of_empty_strings_is_an_error() -> None:
    with pytest.raises(ValueError, match="holds no character"):
        RemoveSpecificCharsMapper({"chars_to_remove": [""]})
