import polars as pl
import pytest
from polars.testing import assert_frame_equal
from pydantic import ValidationError

from ops_library.columns import DROP_KIND, DROP_OP, DROP_REASON, FILTERED, ROW_ID, STATS
from ops_library.filters.text_length_filter import TextLengthFilter


def frame(*texts: str) -> pl.DataFrame:
    return pl.DataFrame(
        {"text": list(texts), ROW_ID: [f"f.jsonl:{i}" for i in range(1, len(texts) + 1)]},
        schema={"text": pl.String, ROW_ID: pl.String},
    )


def kept_texts(texts: list[str], **params: object) -> list[str]:
    return TextLengthFilter(params).run(frame(*texts)).kept["text"].to_list()


def test_length_is_code_points() -> None:
    texts = ["", "abc", "中文字", "😀", "👍🏻", "e\u0301", "\u3000\u00a0"]
    out = TextLengthFilter({"min_len": 0}).run(frame(*texts))
    assert out.kept[STATS].struct.field("text_len").to_list() == [0, 3, 3, 1, 2, 2, 2]
    assert out.kept.schema[STATS] == pl.Struct({"text_len": pl.Int64})


def test_keeps_closed_range_and_records_drops() -> None:
    out = TextLengthFilter().run(frame("0123456789", "012345678", ""))  # min_len=10
    expected_kept = frame("0123456789").with_columns(pl.struct(text_len=pl.lit(10, pl.Int64)).alias(STATS))
    assert_frame_equal(out.kept, expected_kept)
    expected_dropped = (
        pl.DataFrame({"text": ["012345678", ""], ROW_ID: ["f.jsonl:2", "f.jsonl:3"]})
        .with_columns(pl.struct(text_len=pl.Series([9, 0], dtype=pl.Int64)).alias(STATS))
        .with_columns(
            pl.lit("text_length_filter").alias(DROP_OP),
            pl.lit(FILTERED).alias(DROP_KIND),
            pl.Series(DROP_REASON, ["text_len=9 outside [10, inf]", "text_len=0 outside [10, inf]"]),
        )
    )
    assert out.dropped is not None
    assert_frame_equal(out.dropped, expected_dropped)


def test_bounds_and_open_interval() -> None:
    texts = ["ab", "abc", "abcd", "abcde", "abcdef"]
    assert kept_texts(texts, min_len=3, max_len=5) == ["abc", "abcd", "abcde"]
    assert kept_texts(texts, min_len=3, max_len=5, min_closed_interval=False) == ["abcd", "abcde"]
    assert kept_texts(texts, min_len=3, max_len=5, max_closed_interval=False) == ["abc", "abcd"]


def test_reversed_range_keeps_the_bounds_like_data_juicer() -> None:
    # Data-Juicer flips both closedness flags when reversing: the bound values stay kept.
    texts = ["ab", "abc", "abcd", "abcde", "abcdef"]
    out = TextLengthFilter({"min_len": 3, "max_len": 5, "reversed_range": True}).run(frame(*texts))
    assert out.kept["text"].to_list() == ["ab", "abc", "abcde", "abcdef"]
    assert out.dropped is not None
    assert out.dropped[DROP_REASON].to_list() == ["text_len=4 inside (3, 5)"]
    opened = {"min_len": 3, "max_len": 5, "reversed_range": True, "min_closed_interval": False}
    assert kept_texts(texts, **opened) == ["ab", "abcde", "abcdef"]


def test_existing_stat_is_not_recomputed() -> None:
    df = frame("short", "also short").with_columns(
        pl.Series(STATS, [{"text_len": 100, "other": 1.5}, {"text_len": 3, "other": 2.5}])
    )
    out = TextLengthFilter().run(df)
    assert out.kept["text"].to_list() == ["short"]
    assert out.kept[STATS].to_list() == [{"text_len": 100, "other": 1.5}]


def test_adds_its_stat_next_to_others_even_in_null_stats_rows() -> None:
    df = frame("0123456789", "0123456789ab").with_columns(pl.Series(STATS, [{"num_words": 1}, None]))
    out = TextLengthFilter().run(df)
    assert out.kept[STATS].to_list() == [
        {"num_words": 1, "text_len": 10},
        {"num_words": None, "text_len": 12},
    ]


def test_empty_frame() -> None:
    out = TextLengthFilter().run(frame())
    assert out.kept.height == 0
    assert out.kept.schema[STATS] == pl.Struct({"text_len": pl.Int64})
    assert out.dropped is not None
    assert out.dropped.height == 0
    assert {DROP_OP, DROP_KIND, DROP_REASON} <= set(out.dropped.columns)


def test_very_long_text() -> None:
    text = "中" * 1_000_000
    assert kept_texts([text], max_len=1_000_000) == [text]
    assert kept_texts([text], max_len=999_999) == []


def test_params_are_validated() -> None:
    with pytest.raises(ValidationError):
        TextLengthFilter({"min_length": 3})
    with pytest.raises(ValidationError):
        TextLengthFilter({"min_len": "three"})
