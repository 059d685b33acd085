import json
from pathlib import Path

import pytest

from ops_library.base import OpUnavailableError
from ops_library.filters.stopwords_filter import StopwordsFilter
from tests.ops_library.filters._frames import frame, kept_texts, stats_of, with_stored_stats

# stopwords-iso English: "the", "and", "is", "this" are stopwords; "cat", "dog", "weather" are not.
CASES = [
    ("", 0.0),
    ("  \t\n ", 0.0),
    ("The cat and the dog", 0.6),
    ("THE, cat; AND... dog!", 0.5),  # lower-cased and stripped: the, cat, and, dog
    ("the\r\ncat", 0.5),  # "\r" stripped from "the\r"
    ("cat dog 123 😀", 0.0),  # "123" and the emoji are stripped to nothing: 2 words
    ("中文 文字", 0.0),
    ("weather is\u3000this", 0.0),  # U+3000 does not split: "weather", "is\u3000this", neither a stopword
]


@pytest.mark.parametrize(("text", "ratio"), CASES)
def test_english_ratio(text: str, ratio: float) -> None:
    assert stats_of(StopwordsFilter({"min_ratio": 0}), text) == [ratio]


def test_other_language_and_all() -> None:
    assert stats_of(StopwordsFilter({"lang": "zh"}), "我 的 书") == [2 / 3]  # 我, 的 are Chinese stopwords
    assert stats_of(StopwordsFilter({"lang": "en"}), "我 的 书") == [0.0]
    assert stats_of(StopwordsFilter({"lang": "all"}), "我 the xylophonez") == [2 / 3]


def test_words_augmentation_joins_runs_of_words(tmp_path: Path) -> None:
    (tmp_path / "stopwords.json").write_text(json.dumps({"en": ["ab", "abc"]}))
    listed = {"stopwords_dir": str(tmp_path), "min_ratio": 0}
    assert stats_of(StopwordsFilter(listed), "a b") == [0.0]
    aug = {**listed, "use_words_aug": True}
    assert stats_of(StopwordsFilter(aug), "a b") == [1 / 3]  # a, b, ab
    assert stats_of(StopwordsFilter({**aug, "words_aug_join_char": "_"}), "a b") == [0.0]  # a, b, a_b
    assert stats_of(StopwordsFilter({**aug, "words_aug_group_sizes": [2, 3]}), "a b c") == [2 / 6]  # +ab bc abc
    assert stats_of(StopwordsFilter({"lang": "zh", "use_words_aug": True}), "我 的") == [2 / 3]  # 我的 not listed


def test_very_long_line() -> None:
    assert stats_of(StopwordsFilter(), "the cat " * 200_000) == [0.5]


def test_default_keeps_from_three_tenths() -> None:
    assert kept_texts(StopwordsFilter(), "The cat and the dog", "cat dog weather", "") == ["The cat and the dog"]


def test_bounds_closedness_and_reversal() -> None:
    texts = ["cat dog the", "cat the", "the and cat"]  # 1/3, 1/2, 2/3
    assert kept_texts(StopwordsFilter({"min_ratio": 0.4, "max_ratio": 0.7}), *texts) == texts[1:]
    params = {"min_ratio": 0.5, "max_ratio": 1.0, "min_closed_interval": False}
    assert kept_texts(StopwordsFilter(params), *texts) == texts[2:]
    params = {"min_ratio": 0.0, "max_ratio": 0.5, "max_closed_interval": False}
    assert kept_texts(StopwordsFilter(params), *texts) == texts[:1]
    params = {"min_ratio": 0.4, "max_ratio": 0.6, "reversed_range": True}
    assert kept_texts(StopwordsFilter(params), *texts) == [texts[0], texts[2]]


def test_stopwords_dir_reads_data_juicer_style_files(tmp_path: Path) -> None:
    (tmp_path / "stopwords.json").write_text(json.dumps({"en": ["cat"], "xx": ["foo"]}))
    (tmp_path / "more_stopwords_extra.json").write_text(json.dumps({"en": ["dog"]}))
    (tmp_path / "flagged_words.json").write_text(json.dumps({"en": ["the"]}))  # another list type: ignored
    directory = {"stopwords_dir": str(tmp_path), "min_ratio": 0}
    assert stats_of(StopwordsFilter(directory), "the cat and the dog") == [0.4]
    assert stats_of(StopwordsFilter({**directory, "lang": "all"}), "foo cat the") == [2 / 3]


def test_missing_list_is_refused_at_validation() -> None:
    with pytest.raises(OpUnavailableError, match="stopwords_filter: no stopwords list for lang 'tlh'"):
        StopwordsFilter({"lang": "tlh"})
    with pytest.raises(OpUnavailableError, match=r"sentencepiece model .en\.sp\.model."):
        StopwordsFilter({"tokenization": True})


def test_a_directory_without_lists_falls_back_to_the_shipped_ones(tmp_path: Path) -> None:
    # Data-Juicer recipes name `stopwords_dir: ./assets`; Data-Juicer downloads when it is empty or absent.
    shipped = stats_of(StopwordsFilter(), "The cat and the dog")
    assert shipped == [0.6]
    assert stats_of(StopwordsFilter({"stopwords_dir": str(tmp_path)}), "The cat and the dog") == shipped
    assert stats_of(StopwordsFilter({"stopwords_dir": str(tmp_path / "nope")}), "The cat and the dog") == shipped
    (tmp_path / "stopwords.json").write_text(json.dumps({"xx": ["cat"]}))
    with pytest.raises(
        OpUnavailableError, match=r"no stopwords list for lang 'en' in stopwords_dir .*\(it has all, xx\)"
    ):
        StopwordsFilter({"stopwords_dir": str(tmp_path)})


def test_stored_stat_is_reused() -> None:
    df = with_stored_stats(frame("cat dog"), [{"stopwords_ratio": 0.5}])
    assert StopwordsFilter().run(df).kept.height == 1
