import pytest

from ops_library.filters.special_characters_filter import SpecialCharactersFilter
from tests.ops_library.filters._frames import frame, kept_texts, stats_of, with_stored_stats

# Data-Juicer's SPECIAL_CHARACTERS: punctuation, digits, whitespace, ~190 symbols, single-code-point emoji.
CASES = [
    ("", 0.0),
    ("   ", 1.0),  # spaces are special
    ("abc123", 0.5),  # so are digits
    ("中文", 0.0),
    ("一", 1.0),  # a CJK character on Data-Juicer's list
    ("a😀", 0.5),
    ("👍🏻", 1.0),  # the thumb and the skin-tone modifier are both emoji on their own
    ("❤️", 0.5),  # U+FE0F (variation selector) is not special
    ("שלום!", 0.2),  # RTL
    ("a\r\nb", 0.5),
    ("«Г»", 1.0),
]


@pytest.mark.parametrize(("text", "ratio"), CASES)
def test_ratio(text: str, ratio: float) -> None:
    assert stats_of(SpecialCharactersFilter(), text) == [ratio]


def test_very_long_line() -> None:
    assert stats_of(SpecialCharactersFilter(), "ab1" * 400_000) == [1 / 3]


def test_default_keeps_up_to_a_quarter() -> None:
    assert kept_texts(SpecialCharactersFilter(), "abc1", "ab12", "", "abcdefg ") == ["abc1", "", "abcdefg "]


def test_bounds_closedness_and_reversal() -> None:
    texts = ["abc1", "ab12", "a123"]  # 0.25, 0.5, 0.75
    assert kept_texts(SpecialCharactersFilter({"min_ratio": 0.25, "max_ratio": 0.5}), *texts) == texts[:2]
    assert kept_texts(SpecialCharactersFilter({"max_ratio": 0.5, "max_closed_interval": False}), *texts) == texts[:1]
    params = {"min_ratio": 0.25, "max_ratio": 1, "min_closed_interval": False}
    assert kept_texts(SpecialCharactersFilter(params), *texts) == texts[1:]
    reversed_ = SpecialCharactersFilter({"min_ratio": 0.3, "max_ratio": 0.6, "reversed_range": True})
    assert kept_texts(reversed_, *texts) == ["abc1", "a123"]


def test_stored_stat_is_reused() -> None:
    df = with_stored_stats(frame("!!!!", "abcd"), [{"special_char_ratio": 0.0}, {"special_char_ratio": 0.9}])
    assert SpecialCharactersFilter().run(df).kept["text"].to_list() == ["!!!!"]
