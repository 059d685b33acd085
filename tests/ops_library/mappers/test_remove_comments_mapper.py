import pytest

from tests.ops_library.mappers.helpers import apply

OP = "remove_comments_mapper"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("  \n", "  \n"),
        ("x = 1 % note\ny", "x = 1\ny"),  # the character before "%" goes too
        ("50\\% off", "50\\% off"),  # escaped percent
        ("% full line\nkept", "kept"),
        ("a\n%c1\n%c2\nb", "a\nb"),  # inline runs first: "\n%c1" and "\n%c2" are inline comments
        ("ends with %", "ends with %"),  # "%" needs at least one character after it
        ("中文%注释\n下一行", "中\n下一行"),
        ("😀 % 😀", "😀"),
        ("שלום %הערה", "שלום"),
        ("a %c\r\nb", "a\nb"),  # "." eats the "\r"
        ("x" * 300_000 + " % c", "x" * 300_000),
    ],
)
def test_removes_tex_comments_like_data_juicer(text: str, expected: str) -> None:
    assert apply(OP, text) == [expected]


def test_inline_and_multiline_flags() -> None:
    text = "% head\nbody % tail\n"
    assert apply(OP, text, inline=False) == ["body % tail\n"]
    assert apply(OP, text, multiline=False) == ["% head\nbody\n"]
    assert apply(OP, text, inline=False, multiline=False) == [text]
    assert apply(OP, text, doc_type=["tex", "md"]) == ["body\n"]  # accepted and unused, as in Data-Juicer
