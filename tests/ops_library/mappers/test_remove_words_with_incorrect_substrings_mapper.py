import pytest

from ops_library.base import OpUnavailableError
from ops_library.mappers.remove_words_with_incorrect_substrings_mapper import (
    RemoveWordsWithIncorrectSubstringsMapper as Op,
)
from tests.ops_library.mappers.helpers import apply

OP = "remove_words_with_incorrect_substrings_mapper"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        (" \n\t ", ""),
        ("see http://x.org and www.y.net or z.com", "see and or"),
        ("a // b", "a // b"),  # "//" alone strips to "": nothing left to contain "//"
        ("a x//y b", "a b"),
        ("(http)", ""),
        ("HTTP and Href", "HTTP and Href"),  # case-sensitive
        ("中文 链接http 文", "中文 文"),
        ("😀www😀 ok", "ok"),
        ("رابط href=x هنا", "رابط هنا"),
        ("a http\r\nb", "a\nb"),  # "http\r" contains "http"
        ("word " * 100_000 + "http", ("word " * 100_000).strip()),
    ],
)
def test_removes_words_like_data_juicer(text: str, expected: str) -> None:
    assert apply(OP, text) == [expected]


def test_substrings_param() -> None:
    assert apply(OP, "cat dog catalog http", substrings=["cat"]) == ["dog http"]
    assert apply(OP, "a  b http", substrings=[]) == ["a b http"]  # nothing removed, text still rebuilt
    assert apply(OP, "a b", substrings=[""]) == [""]  # "" is in every word


def test_tokenization_is_refused() -> None:
    message = Op.unavailable(Op.Params(tokenization=True, lang="zh"))
    assert message is not None
    assert message.startswith(f"{OP}: tokenization=true needs Data-Juicer's SentencePiece model 'zh.sp.model'")
    with pytest.raises(OpUnavailableError, match=r"sp\.model"):
        Op({"tokenization": True})
    assert Op.unavailable(Op.Params()) is None
