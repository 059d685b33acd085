import pytest
from pydantic import ValidationError

from ops_library.mappers.remove_table_text_mapper import RemoveTableTextMapper
from tests.ops_library.mappers.helpers import apply

OP = "remove_table_text_mapper"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        (" \n \n", " \n \n"),
        ("Intro\na b c\nd e f\nOutro", "Intro\nOutro"),
        ("Intro\na|b\nc|d\n\n\nOutro", "Intro\nOutro"),  # blank lines after a row belong to it
        ("a b\nc d\ne f\n", "a b\n"),  # the first line never matches: no "\n" before it
        ("Intro\na b\nOutro", "Intro\na b\nOutro"),  # one row is not a table
        ("Intro\na b\nc d e\nOutro", "Intro\na b\nc d e\nOutro"),  # rows of different widths
        ("x\n中 文\n表 格\n", "x\n"),
        ("x\n😀 😀\n😀 😀\n", "x\n"),
        ("x\nא ב\nג ד\n", "x\n"),
        ("x\r\na b\r\nc d\r\n", "x\r\na b\r\nc d\r\n"),  # "\r" is whitespace, so the cells do not end the line
        ("x\n" + "a b\n" * 100_000, "x\n"),
    ],
)
def test_removes_tables_like_data_juicer(text: str, expected: str) -> None:
    assert apply(OP, text) == [expected]


def test_column_bounds() -> None:
    text = "t\na b\nc d\nt\na b c d\ne f g h\n"
    assert apply(OP, text, min_col=3) == ["t\na b\nc d\nt\n"]
    assert apply(OP, text, max_col=3) == ["t\nt\na b c d\ne f g h\n"]
    with pytest.raises(ValidationError):
        RemoveTableTextMapper({"min_col": 1})
    with pytest.raises(ValidationError):
        RemoveTableTextMapper({"max_col": 21})
