import pytest

from ops_library.filters.maximum_line_length_filter import MaximumLineLengthFilter
from tests.ops_library.filters._frames import frame, kept_texts, stats_of, with_stored_stats

# max(len(line) for line in text.splitlines()), 0 without lines; breaks are not part of a line.
CASES = [
    ("", 0),
    ("   ", 3),
    ("\n\n", 0),
    ("ab\r\ncde", 3),
    ("a\x0bbb", 2),
    ("a\u2029bbb\x1ccc", 3),
    ("😀😀\nabc", 3),
    ("שלום עולם", 9),
    ("中文字\n中", 3),
    ("ab\r", 2),
]


@pytest.mark.parametrize(("text", "longest"), CASES)
def test_longest_line(text: str, longest: int) -> None:
    assert stats_of(MaximumLineLengthFilter(), text) == [longest]


def test_very_long_line() -> None:
    assert stats_of(MaximumLineLengthFilter(), "y\n" + "x" * 1_000_000 + "\r\nz") == [1_000_000]


def test_default_keeps_ten_and_more() -> None:
    texts = ["0123456789", "012345678\n012345678", "short\n" * 20 + "0123456789"]
    assert kept_texts(MaximumLineLengthFilter(), *texts) == [texts[0], texts[2]]


def test_bounds_closedness_and_reversal() -> None:
    texts = ["ab\nc", "abc\nd", "abcd\ne"]  # 2, 3, 4
    assert kept_texts(MaximumLineLengthFilter({"min_len": 2, "max_len": 3}), *texts) == texts[:2]
    assert kept_texts(MaximumLineLengthFilter({"min_len": 2, "min_closed_interval": False}), *texts) == texts[1:]
    params = {"min_len": 0, "max_len": 4, "max_closed_interval": False}
    assert kept_texts(MaximumLineLengthFilter(params), *texts) == texts[:2]
    params = {"min_len": 3, "max_len": 3, "reversed_range": True}
    assert kept_texts(MaximumLineLengthFilter(params), *texts) == texts  # bounds stay kept when reversed


def test_stored_stat_is_reused() -> None:
    df = with_stored_stats(frame("x"), [{"max_line_length": 12}])
    assert MaximumLineLengthFilter().run(df).kept["text"].to_list() == ["x"]
