import sys

import pytest

from tests.ops_library.mappers.helpers import apply

OP = "remove_long_words_mapper"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        (" \t \n ", ""),  # nothing but separators: nothing left
        ("a  b\t\tc\n\n\nd ", "a b\tc\nd"),  # Data-Juicer's merge: runs collapse, blank lines go
        ("中文 😀 שלום", "中文 😀 שלום"),
        ("a\r\nb", "a\r\nb"),  # "\r" is part of the word "a\r"
        ("\u3000x\u3000", "\u3000x\u3000"),  # only space, tab and newline separate words
    ],
)
def test_default_keeps_every_word_but_rebuilds_the_text(text: str, expected: str) -> None:
    assert apply(OP, text) == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a bb ccc dddd", "bb ccc"),
        ("(ccc) ((((cc))))", "(ccc) ((((cc))))"),  # too long, but fits with special characters stripped
        ("(c) c", "(c)"),  # "c" is too short; "(c)" fits as it is
        ("中文字 中文字符串", "中文字"),
        ("😀😀😀 😀😀😀😀😀", "😀😀😀"),  # emoji are special characters: stripped to ""... which is too short
        ("abcdefghij\r\nab", "ab"),  # "abcdefghij\r" is too long even stripped: its line goes
        ("ok " + "x" * 100_000, "ok"),
    ],
)
def test_min_and_max_len(text: str, expected: str) -> None:
    assert apply(OP, text, min_len=2, max_len=3) == [expected]


def test_default_bounds_are_data_juicers() -> None:
    from ops_library.mappers.remove_long_words_mapper import RemoveLongWordsMapper

    assert RemoveLongWordsMapper.Params().min_len == 1
    assert RemoveLongWordsMapper.Params().max_len == sys.maxsize
