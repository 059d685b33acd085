import pytest

from ops_library.filters.average_line_length_filter import AverageLineLengthFilter
from tests.ops_library.filters._frames import frame, kept_texts, stats_of, with_stored_stats

# len(text) (breaks included) / len(text.splitlines()); splitlines also breaks at \r, \v, \f, \x1c-\x1e, U+0085,
# U+2028, U+2029, and "\r\n" is one break.
CASES = [
    ("", 0.0),
    ("   ", 3.0),
    ("ab\r\ncd", 3.0),
    ("ab\n", 3.0),  # a final break opens no line
    ("a\n\nb", 4 / 3),
    ("a\rb\x0bc\x0cd", 7 / 4),
    ("a\x1cb\x85c\u2028d\u2029e", 9 / 5),
    ("中文\n字", 2.0),
    ("😀😀\nשלום", 3.5),
    ("\n", 1.0),
    ("\r\n\r\n", 2.0),
]


@pytest.mark.parametrize(("text", "avg"), CASES)
def test_average(text: str, avg: float) -> None:
    assert stats_of(AverageLineLengthFilter(), text) == [avg]


def test_very_long_line() -> None:
    assert stats_of(AverageLineLengthFilter(), "x" * 1_000_000 + "\n" + "y") == [1_000_002 / 2]


def test_default_keeps_ten_and_more() -> None:
    assert kept_texts(AverageLineLengthFilter(), "0123456789", "012345678", "01234\n01234\n") == ["0123456789"]


def test_bounds_closedness_and_reversal() -> None:
    texts = ["ab\ncd", "abc\ndef", "abcd\nefgh"]  # 2.5, 3.5, 4.5
    assert kept_texts(AverageLineLengthFilter({"min_len": 3, "max_len": 4}), *texts) == texts[1:2]
    assert kept_texts(AverageLineLengthFilter({"min_len": 2, "max_len": 5}), *texts) == texts
    params = {"min_len": 3, "max_len": 4, "reversed_range": True}
    assert kept_texts(AverageLineLengthFilter(params), *texts) == [texts[0], texts[2]]
    exact = ["abcd", "abcde"]  # 4.0, 5.0
    params = {"min_len": 4, "max_len": 5, "min_closed_interval": False, "max_closed_interval": True}
    assert kept_texts(AverageLineLengthFilter(params), *exact) == ["abcde"]
    params = {"min_len": 4, "max_len": 5, "max_closed_interval": False}
    assert kept_texts(AverageLineLengthFilter(params), *exact) == ["abcd"]


def test_stored_stat_is_reused() -> None:
    df = with_stored_stats(frame("x", "a long enough line"), [{"avg_line_length": 50.0}, {"avg_line_length": 1.0}])
    assert AverageLineLengthFilter().run(df).kept["text"].to_list() == ["x"]
