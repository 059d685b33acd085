import json
from pathlib import Path

import pytest

from ops_library.base import OpUnavailableError
from ops_library.filters.flagged_words_filter import FlaggedWordsFilter
from tests.ops_library.filters._frames import frame, kept_texts, stats_of, with_stored_stats

# better_profanity's English list: "fuck", "shit", "ass" are listed; "this", "cat" are not.
CASES = [
    ("", 0.0),
    (" \r\n\t", 0.0),
    ("fuck this shit", 2 / 3),
    ("FUCK!!! this... Shit?", 2 / 3),  # lower-cased, stripped
    ("this\r\ncat", 0.0),
    ("ass 😀 中文", 0.5),  # the emoji word is stripped to nothing: ass, 中文
    ("שלום ass", 0.5),  # RTL
]


@pytest.mark.parametrize(("text", "ratio"), CASES)
def test_english_ratio(text: str, ratio: float) -> None:
    assert stats_of(FlaggedWordsFilter(), text) == [ratio]


def test_very_long_line() -> None:
    assert stats_of(FlaggedWordsFilter(), "shit cat cat cat " * 100_000) == [0.25]


def test_default_keeps_up_to_four_and_a_half_percent() -> None:
    clean = " ".join(["word"] * 22)
    assert kept_texts(FlaggedWordsFilter(), clean + " shit", clean[:-5] + " shit", "") == [clean + " shit", ""]


def test_bounds_closedness_and_reversal() -> None:
    texts = ["ass cat dog", "ass cat", "ass shit cat"]  # 1/3, 1/2, 2/3
    assert kept_texts(FlaggedWordsFilter({"min_ratio": 0.4, "max_ratio": 0.7}), *texts) == texts[1:]
    params = {"min_ratio": 0.5, "max_ratio": 1.0, "min_closed_interval": False}
    assert kept_texts(FlaggedWordsFilter(params), *texts) == texts[2:]
    params = {"min_ratio": 0.0, "max_ratio": 0.5, "max_closed_interval": False}
    assert kept_texts(FlaggedWordsFilter(params), *texts) == texts[:1]
    params = {"min_ratio": 0.4, "max_ratio": 0.6, "reversed_range": True}
    assert kept_texts(FlaggedWordsFilter(params), *texts) == [texts[0], texts[2]]


def test_flagged_words_dir_and_augmentation(tmp_path: Path) -> None:
    (tmp_path / "flagged_words.json").write_text(json.dumps({"zh": ["坏词"], "en": ["darn"]}))
    directory = {"flagged_words_dir": str(tmp_path), "max_ratio": 1.0}
    assert stats_of(FlaggedWordsFilter({**directory, "lang": "zh"}), "坏 词") == [0.0]
    aug = {**directory, "lang": "zh", "use_words_aug": True}
    assert stats_of(FlaggedWordsFilter(aug), "坏 词") == [1 / 3]  # 坏, 词, 坏词
    assert stats_of(FlaggedWordsFilter({**directory, "lang": "all"}), "darn 坏词 shit") == [2 / 3]


def test_languages_without_a_shipped_list_are_refused() -> None:
    with pytest.raises(
        OpUnavailableError, match=r"flagged_words_filter: no flagged_words list for lang 'zh'.*\(it has all, en\)"
    ):
        FlaggedWordsFilter({"lang": "zh"})
    with pytest.raises(OpUnavailableError, match="sentencepiece"):
        FlaggedWordsFilter({"tokenization": True})


def test_stored_stat_is_reused() -> None:
    df = with_stored_stats(frame("shit"), [{"flagged_words_ratio": 0.0}])
    assert FlaggedWordsFilter().run(df).kept.height == 1
