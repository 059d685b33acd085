import pytest

from ops_library.base import OpUnavailableError
from ops_library.filters.alphanumeric_filter import AlphanumericFilter
from tests.ops_library.filters._frames import frame, kept_texts, stats_of, with_stored_stats

# Python's str.isalnum() over all code points: CJK, Hebrew and numerics like ½ count; marks, emoji, spaces not.
CASES = [
    ("", 0.0),
    ("   ", 0.0),
    ("abc123", 1.0),
    ("中文字", 1.0),
    ("a😀", 0.5),
    ("שלום!", 0.8),  # RTL
    ("ab\r\ncd", 4 / 6),
    ("½", 1.0),
    ("e\u0301", 0.5),  # the combining accent is no letter
]


@pytest.mark.parametrize(("text", "ratio"), CASES)
def test_ratio(text: str, ratio: float) -> None:
    assert stats_of(AlphanumericFilter({"min_ratio": 0}), text) == [ratio]


def test_very_long_line() -> None:
    text = "a" * 1_000_000 + " "
    assert stats_of(AlphanumericFilter(), text) == [1_000_000 / 1_000_001]


def test_default_keeps_a_quarter_and_more() -> None:
    assert kept_texts(AlphanumericFilter(), "a   ", "a    ", "", "中") == ["a   ", "中"]  # 0.25 kept, 0.2 not


def test_bounds_closedness_and_reversal() -> None:
    texts = ["a   ", "ab  ", "abc "]  # 0.25, 0.5, 0.75
    assert kept_texts(AlphanumericFilter({"min_ratio": 0.25, "max_ratio": 0.5}), *texts) == texts[:2]
    assert kept_texts(AlphanumericFilter({"min_ratio": 0.25, "min_closed_interval": False}), *texts) == texts[1:]
    params = {"min_ratio": 0.25, "max_ratio": 0.5, "max_closed_interval": False}
    assert kept_texts(AlphanumericFilter(params), *texts) == texts[:1]
    reversed_ = AlphanumericFilter({"min_ratio": 0.3, "max_ratio": 0.6, "reversed_range": True})
    assert kept_texts(reversed_, *texts) == ["a   ", "abc "]


def test_tokenization_is_refused() -> None:
    assert "pythia-6.9b-deduped" in AlphanumericFilter.unavailable(AlphanumericFilter.Params(tokenization=True))
    with pytest.raises(OpUnavailableError, match="alphanumeric_filter: tokenization=True"):
        AlphanumericFilter({"tokenization": True})


def test_stored_stat_is_reused() -> None:
    df = with_stored_stats(frame("abc", "   "), [{"alnum_ratio": 0.1}, {"alnum_ratio": 0.9}])
    assert AlphanumericFilter().run(df).kept["text"].to_list() == ["   "]  # the stored stats decide, not the texts
