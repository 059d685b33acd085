import pytest

from tests.ops_library.mappers.helpers import apply

OP = "remove_non_chinese_character_mapper"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        (" \t\n", " "),  # the space is in the kept punctuation; tab and newline are not
        ("中文English123，。！", "中文English123，。！"),
        ("日本語のテキスト", "日本語"),  # kana go; U+65E5 etc. are in U+4E00..U+9FA5
        ("한국어 中文", " 中文"),
        ("😀中文😀", "中文"),
        ("שלום 你好", " 你好"),
        ("第一行\r\n第二行", "第一行第二行"),
        ("中文;:?~!(.)", "中文!(.)"),  # of ASCII marks only . , - % * / & ( ) + ! stay
        ("\u9fa5\u9fa6", "\u9fa5"),  # the range ends at U+9FA5
        ("é" * 100_000 + "中", "中"),
    ],
)
def test_defaults(text: str, expected: str) -> None:
    assert apply(OP, text) == [expected]


def test_keep_flags() -> None:
    text = "中文 Abc 123，。！"
    assert apply(OP, text, keep_alphabet=False) == ["中文  123，。！"]
    assert apply(OP, text, keep_number=False) == ["中文 Abc ，。！"]
    assert apply(OP, text, keep_punc=False) == ["中文Abc123"]
    assert apply(OP, text, keep_alphabet=False, keep_number=False, keep_punc=False) == ["中文"]
