import pytest
from pydantic import ValidationError

from ops_library.filters.character_repetition_filter import CharacterRepetitionFilter
from tests.ops_library.filters._frames import frame, kept_texts, stats_of, with_stored_stats

# Hand-counted with rep_len=2: k = min(floor(sqrt(#distinct)), #distinct - #singletons); top-k freqs / #n-grams.
CASES = [
    ("", 0.0),
    ("a", 0.0),  # shorter than n: no n-gram
    ("aaaa", 1.0),  # "aa" x3: k = min(1, 1)
    ("abab", 2 / 3),  # ab:2 ba:1 -> k = min(1, 1)
    ("abcd", 0.0),  # all singletons -> k = 0
    ("     ", 1.0),
    ("中文中文中", 0.5),  # 中文:2 文中:2 -> k = min(1, 2) -> 2/4
    ("😀😀😀", 1.0),
    ("a\r\na\r\n", 0.4),  # a\r:2 \r\n:2 \na:1 -> k = min(1, 2) -> 2/5
    ("aabbaabbaabb", 6 / 11),  # aa:3 ab:3 bb:3 ba:2 -> k = min(2, 4) -> 6/11
    ("שלוםשלום", 4 / 7),  # RTL; של:2 לו:2 ום:2 םש:1 -> k = min(2, 3) -> (2+2)/7
]


@pytest.mark.parametrize(("text", "ratio"), CASES)
def test_ratio_with_bigrams(text: str, ratio: float) -> None:
    assert stats_of(CharacterRepetitionFilter({"rep_len": 2}), text) == [ratio]


def test_default_ten_grams_on_a_very_long_line() -> None:
    # "ababababab" x996 and "bababababa" x995 -> 2 distinct, k = 1.
    assert stats_of(CharacterRepetitionFilter(), "ab" * 1000) == [996 / 1991]


def test_case_matters() -> None:
    assert stats_of(CharacterRepetitionFilter({"rep_len": 2}), "abAB") == [0.0]


def test_default_keeps_up_to_half() -> None:
    texts = ["The quick brown fox jumps over the lazy dog", "x" * 30, ""]
    assert kept_texts(CharacterRepetitionFilter(), *texts) == [texts[0], ""]


def test_bounds_closedness_and_reversal() -> None:
    texts = ["abcd", "abab", "aaaa"]  # 0, 2/3, 1 with rep_len=2
    params = {"rep_len": 2, "min_ratio": 0.5, "max_ratio": 1.0}
    assert kept_texts(CharacterRepetitionFilter(params), *texts) == texts[1:]
    assert kept_texts(CharacterRepetitionFilter({**params, "max_closed_interval": False}), *texts) == texts[1:2]
    assert kept_texts(CharacterRepetitionFilter({**params, "reversed_range": True}), *texts) == ["abcd", "aaaa"]
    params = {"rep_len": 2, "min_ratio": 0.0, "max_ratio": 1.0, "min_closed_interval": False}
    assert kept_texts(CharacterRepetitionFilter(params), *texts) == texts[1:]


def test_rep_len_must_be_positive() -> None:
    with pytest.raises(ValidationError):
        CharacterRepetitionFilter({"rep_len": 0})


def test_stored_stat_is_reused() -> None:
    df = with_stored_stats(frame("aaaaaaaaaaaaaaaa"), [{"char_rep_ratio": 0.1}])
    assert CharacterRepetitionFilter().run(df).kept.height == 1
