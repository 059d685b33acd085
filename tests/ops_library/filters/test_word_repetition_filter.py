import pytest

from ops_library.base import OpUnavailableError
from ops_library.filters.word_repetition_filter import WordRepetitionFilter
from tests.ops_library.filters._frames import frame, kept_texts, stats_of, with_stored_stats

# Words: split on space/newline/tab, lower-cased, special characters stripped from the ends, empties dropped.
# Ratio: n-grams seen more than once, counted with their frequency, over all n-grams (no top-k rule).
BIGRAMS = [
    ("", 0.0),
    ("   ", 0.0),
    ("a b a b", 2 / 3),  # "a b":2 "b a":1
    ("a\r\nb a\r\nb", 2 / 3),  # \r is stripped from "a\r", not split on
    ("x y z", 0.0),
    ("中文 字 中文 字", 2 / 3),
    ("שלום עולם שלום עולם", 2 / 3),  # RTL
]
UNIGRAMS = [
    ("The the THE", 1.0),
    ("Hello, hello! HELLO...", 1.0),
    ("😀 😀 a", 0.0),  # the emoji words are stripped to nothing: one word left
    ("Г x Г x", 1.0),  # lower-cased before stripping: 'г' is not special, 'Г' is
    ("a\u3000a", 0.0),  # U+3000 does not split: one word
]


@pytest.mark.parametrize(("text", "ratio"), BIGRAMS)
def test_ratio_with_bigrams(text: str, ratio: float) -> None:
    assert stats_of(WordRepetitionFilter({"rep_len": 2}), text) == [ratio]


@pytest.mark.parametrize(("text", "ratio"), UNIGRAMS)
def test_ratio_with_unigrams(text: str, ratio: float) -> None:
    assert stats_of(WordRepetitionFilter({"rep_len": 1}), text) == [ratio]


def test_default_ten_grams_on_a_very_long_line() -> None:
    words = ["".join(chr(97 + i // 26**k % 26) for k in range(4)) for i in range(100_000)]  # all distinct
    assert stats_of(WordRepetitionFilter(), " ".join(words)) == [0.0]
    assert stats_of(WordRepetitionFilter(), " ".join(words[:20] * 5000)) == [1.0]  # every 10-gram recurs
    assert stats_of(WordRepetitionFilter(), " ".join(f"w{i}" for i in range(100_000))) == [1.0]  # digits stripped


def test_default_keeps_up_to_half() -> None:
    repeated = "one two three four five six seven eight nine ten " * 3
    texts = ["one two three four five six seven eight nine ten eleven", repeated, "short"]
    assert kept_texts(WordRepetitionFilter(), *texts) == [texts[0], "short"]


def test_bounds_closedness_and_reversal() -> None:
    texts = ["a b c", "a b a b", "a b a b a b"]  # 0, 2/3, 1 with rep_len=2
    params = {"rep_len": 2, "min_ratio": 0.5, "max_ratio": 1.0}
    assert kept_texts(WordRepetitionFilter(params), *texts) == texts[1:]
    assert kept_texts(WordRepetitionFilter({**params, "max_closed_interval": False}), *texts) == texts[1:2]
    assert kept_texts(WordRepetitionFilter({**params, "reversed_range": True}), *texts) == ["a b c", "a b a b a b"]
    params = {"rep_len": 2, "min_ratio": 0.0, "max_ratio": 1.0, "min_closed_interval": False}
    assert kept_texts(WordRepetitionFilter(params), *texts) == texts[1:]


def test_tokenization_is_refused() -> None:
    with pytest.raises(OpUnavailableError, match=r"word_repetition_filter: .*'zh\.sp\.model'"):
        WordRepetitionFilter({"tokenization": True, "lang": "zh"})


def test_stored_stat_is_reused() -> None:
    df = with_stored_stats(frame("a a a a a a a a a a a a a a"), [{"word_rep_ratio": 0.2}])
    assert WordRepetitionFilter().run(df).kept.height == 1
