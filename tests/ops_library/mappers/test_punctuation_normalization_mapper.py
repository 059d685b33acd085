import pytest

from tests.ops_library.mappers.helpers import apply

OP = "punctuation_normalization_mapper"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("\u3000 \n", "\u3000 \n"),
        ("你好，世界。", "你好,世界."),
        ("“引号”「括号」《书名》", '"引号""括号""书名"'),
        ("a—b–c", "a - b-c"),
        ("等等…", "等等..."),
        ("１２３", '"２３'),  # only the fullwidth one is in Data-Juicer's table
        ("（注）：是？！；％", "(注):是?!;%"),
        ("〈a〉【b】～►━", "<a>[b]~--"),
        ("end．next", "end. next"),
        ("It’s ´quoted´", "It's 'quoted'"),
        ("«بالعربية»", '"بالعربية"'),
        ("😀，😀", "😀,😀"),
        ("a，\r\nb。\r\n", "a,\r\nb.\r\n"),
        ("，" * 200_000, "," * 200_000),
    ],
)
def test_normalizes_like_data_juicer(text: str, expected: str) -> None:
    assert apply(OP, text) == [expected]
