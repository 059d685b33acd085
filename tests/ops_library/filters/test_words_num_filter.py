import string

import emoji
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from pydantic import ValidationError

from ops_library.columns import DROP_OP, DROP_REASON, ROW_ID, STATS
from ops_library.filters.text_length_filter import TextLengthFilter
from ops_library.filters.words_num_filter import WordsNumFilter
from ops_library.text import (
    OTHER_SPECIAL_CHARACTERS,
    SPECIAL_CHARACTERS,
    count_refined_words,
    refine_words,
    split_words,
)


def frame(*texts: str) -> pl.DataFrame:
    return pl.DataFrame(
        {"text": list(texts), ROW_ID: [f"f.jsonl:{i}" for i in range(1, len(texts) + 1)]},
        schema={"text": pl.String, ROW_ID: pl.String},
    )


def num_words(*texts: str) -> list[int]:
    out = WordsNumFilter({"min_num": 0}).run(frame(*texts))
    return out.kept[STATS].struct.field("num_words").to_list()


# Hand-checked against Data-Juicer 1.6.1's split_on_whitespace + words_refinement(SPECIAL_CHARACTERS).
CASES = [
    ("", 0),
    ("Hello world, this is a test.", 6),
    ("123 456 -- !! #1", 0),  # digits and punctuation are special
    ("a\tb\nc  d", 4),
    ("hello\u3000world\u00a0again", 1),  # only space, newline and tab split
    ("中文 字", 2),
    ("一 上 ー", 0),  # these three CJK characters are in Data-Juicer's list
    ("😀 hi 😀", 1),
    ("hi😀there 😀😀", 1),
    ("❤️ 1️⃣", 2),  # the trailing U+FE0F / U+20E3 are not special, so something is left
    ("\u200b x\u200by", 1),
    ("'quoted' don't ¿Qué? …hi… -x- a.b.c", 6),
    ("½ ① e\u0301", 2),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_word_count(text: str, expected: int) -> None:
    assert num_words(text) == [expected]


def test_refined_word_list() -> None:
    words = pl.select(refine_words(split_words(pl.lit("¿Qué? 123 …hi… 😀x😀 don't\t--"))).alias("w"))
    assert words["w"].to_list() == [["Qué", "hi", "x", "don't"]]


def test_count_equals_list_length() -> None:
    texts = [text for text, _ in CASES]
    counted = pl.select(count_refined_words(pl.Series(texts)))
    listed = pl.select(refine_words(split_words(pl.Series(texts))).list.len().cast(pl.Int64))
    assert counted.to_series().to_list() == listed.to_series().to_list() == [n for _, n in CASES]


def test_special_characters_are_built_like_data_juicer() -> None:
    assert len(OTHER_SPECIAL_CHARACTERS) == 191  # with its duplicates, e.g. U+0085 twice
    assert set(string.punctuation + string.digits + string.whitespace) <= SPECIAL_CHARACTERS
    assert set(emoji.EMOJI_DATA) <= SPECIAL_CHARACTERS
    assert {"\x92", "\u3000", "\ufeff", "½", "一", "👍🏻"} <= SPECIAL_CHARACTERS
    assert "\ufe0f" not in SPECIAL_CHARACTERS
    assert len(SPECIAL_CHARACTERS) == 4965  # emoji==2.2.0


def test_keep_range_and_drops() -> None:
    ten = "one two three four five six seven eight nine ten"
    out = WordsNumFilter().run(frame(ten, "one two 3 4"))  # min_num=10
    assert out.kept["text"].to_list() == [ten]
    assert out.dropped is not None
    assert out.dropped[DROP_OP].to_list() == ["words_num_filter"]
    assert out.dropped[DROP_REASON].to_list() == ["num_words=2 outside [10, inf]"]
    out = WordsNumFilter({"min_num": 1, "max_num": 2, "reversed_range": True}).run(frame("a", "a b c", "1"))
    assert out.kept["text"].to_list() == ["a", "a b c", "1"]


def test_stats_sit_beside_other_stats_and_are_not_recomputed() -> None:
    df = TextLengthFilter({"min_len": 0}).run(frame("a b c", "d e")).kept
    out = WordsNumFilter({"min_num": 0}).run(df)
    assert out.kept[STATS].to_list() == [{"text_len": 5, "num_words": 3}, {"text_len": 3, "num_words": 2}]
    preset = frame("a b").with_columns(pl.Series(STATS, [{"num_words": 50}]))
    assert WordsNumFilter().run(preset).kept[STATS].to_list() == [{"num_words": 50}]


def test_tokenization_is_refused_clearly() -> None:
    with pytest.raises(ValidationError, match=r"sentencepiece model 'zh\.sp\.model'"):
        WordsNumFilter({"lang": "zh", "tokenization": True})


def test_empty_frame() -> None:
    out = WordsNumFilter().run(frame())
    assert out.kept.height == 0
    assert out.kept.schema[STATS] == pl.Struct({"num_words": pl.Int64})
    assert out.dropped is not None
    assert out.dropped.height == 0


def test_very_long_text() -> None:
    text = "word, 12 😀 " * 100_000  # 1.1M code points, 100k words
    out = WordsNumFilter({"max_num": 100_000}).run(frame(text))
    expected = frame(text).with_columns(pl.struct(num_words=pl.lit(100_000, pl.Int64)).alias(STATS))
    assert_frame_equal(out.kept, expected)
