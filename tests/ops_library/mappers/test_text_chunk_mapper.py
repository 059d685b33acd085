import polars as pl
import pytest
from polars.testing import assert_frame_equal
from pydantic import ValidationError

from ops_library.base import OpUnavailableError
from ops_library.columns import DROP_KIND, DROP_REASON, FILTERED, PARENT_ID, ROW_ID
from ops_library.mappers.text_chunk_mapper import TextChunkMapper
from tests.ops_library.mappers.helpers import frame

OP = "text_chunk_mapper"


def chunks(text: str, **params) -> list[str]:
    return TextChunkMapper(params).run(frame(text)).kept["text"].to_list()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),  # no non-blank piece: the row goes, as in Data-Juicer
        ("  \n\n\t", []),
        ("one", ["one"]),
        ("p1\n\np2\n\n\n\np3", ["p1", "p2", "p3"]),  # "\n\n\n\n" is two separators with "" between
        ("p1\n\n\np2", ["p1", "\np2"]),
        ("中文段落\n\n第二段", ["中文段落", "第二段"]),
        ("😀\n\n😀", ["😀", "😀"]),
        ("פסקה\n\nשנייה", ["פסקה", "שנייה"]),
        ("a\r\n\r\nb", ["a\r\n\r\nb"]),  # "\r\n\r\n" holds no "\n\n"
        ("x" * 100_000 + "\n\ny", ["x" * 100_000, "y"]),
    ],
)
def test_default_splits_on_blank_lines(text: str, expected: list[str]) -> None:
    assert chunks(text) == expected


def test_max_len_only_cuts_windows_with_overlap() -> None:
    assert chunks("abcdefghij", max_len=4, split_pattern=None) == ["abcd", "efgh", "ij"]
    assert chunks("abcdefghij", max_len=4, split_pattern=None, overlap_len=2) == [
        "abcd", "cdef", "efgh", "ghij", "ij"
    ]  # fmt: skip
    assert chunks("", max_len=4, split_pattern=None) == [""]  # short texts stay whole, even blank
    assert chunks("中文😀中文😀", max_len=3, split_pattern=None) == ["中文😀", "中文😀"]  # code points


def test_max_len_and_pattern_cut_at_the_last_match_that_fits() -> None:
    text = "aa\n\nbb\n\ncc\n\ndd"
    assert chunks(text, max_len=8) == ["aa\n\nbb", "cc\n\ndd"]
    # No "\n\n" within the first 5 characters: forced cuts, each window starting overlap_len before the last end.
    assert chunks("abcdefgh\n\nij", max_len=5, overlap_len=1) == ["abcde", "efgh\n", "\n\nij"]
    assert chunks("short\n\n", max_len=10) == ["short\n\n"]  # fits: left whole
    assert chunks("a. b. c. d.", max_len=5, split_pattern=r"\. ") == ["a", "b", "c. d."]
    assert chunks("abcdef", max_len=2, split_pattern="^") == ["ab", "cd", "ef"]  # Data-Juicer recurses forever


def test_capture_groups_in_the_pattern_become_chunks() -> None:
    assert chunks("a--b", split_pattern="(-)(-)") == ["a", "-", "-", "b"]  # Python's re.split


def test_ids_parents_and_accounting() -> None:
    df = frame("a\n\nb", "", "whole").with_columns(pl.Series("meta", [1, 2, 3]))
    out = TextChunkMapper().run(df)
    expected = pl.DataFrame(
        {
            "text": ["a", "b", "whole"],
            ROW_ID: ["f.jsonl:1#1", "f.jsonl:1#2", "f.jsonl:3"],
            "meta": [1, 1, 3],
            PARENT_ID: ["f.jsonl:1", "f.jsonl:1", None],
        },
        schema_overrides={PARENT_ID: pl.String},
    )
    assert_frame_equal(out.kept, expected)
    assert out.dropped is not None
    assert out.dropped[ROW_ID].to_list() == ["f.jsonl:2"]
    assert out.dropped[DROP_KIND].to_list() == [FILTERED]
    assert out.dropped[DROP_REASON].to_list() == ["no non-blank chunk"]
    assert (out.added, out.changed) == (1, 1)
    assert df.height + out.added == out.kept.height + out.dropped_count


def test_chunking_twice_points_at_the_direct_parent() -> None:
    once = TextChunkMapper({"max_len": 4, "split_pattern": None}).run(frame("abcdefgh")).kept
    twice = TextChunkMapper({"max_len": 2, "split_pattern": None}).run(once).kept
    assert twice[ROW_ID].to_list() == ["f.jsonl:1#1#1", "f.jsonl:1#1#2", "f.jsonl:1#2#1", "f.jsonl:1#2#2"]
    assert twice[PARENT_ID].to_list() == ["f.jsonl:1#1", "f.jsonl:1#1", "f.jsonl:1#2", "f.jsonl:1#2"]
    kept_whole = TextChunkMapper({"max_len": 10, "split_pattern": None}).run(once).kept
    assert kept_whole[PARENT_ID].to_list() == ["f.jsonl:1", "f.jsonl:1"]  # an existing parent stays


def test_null_text_and_empty_frame() -> None:
    out = TextChunkMapper().run(frame(None))
    assert out.kept["text"].to_list() == [None]
    empty = TextChunkMapper({"max_len": 3, "split_pattern": None}).run(frame())
    assert empty.kept.height == 0 and empty.added == 0


def test_params_are_checked_as_data_juicer_does() -> None:
    with pytest.raises(ValidationError, match="cannot be both None"):
        TextChunkMapper({"split_pattern": None})
    with pytest.raises(ValidationError, match="overlap_len must be less than max_len"):
        TextChunkMapper({"max_len": 3, "overlap_len": 3})
    with pytest.raises(ValidationError):
        TextChunkMapper({"max_len": 0})
    with pytest.raises(ValueError, match="not a valid regex"):
        TextChunkMapper({"split_pattern": "(unclosed"})


def test_a_tokenizer_is_refused_at_validation() -> None:
    message = TextChunkMapper.unavailable(TextChunkMapper.Params(max_len=10, tokenizer="gpt-4o"))
    assert message is not None and message.startswith("text_chunk_mapper: tokenizer='gpt-4o' needs a tokenizer")
    with pytest.raises(OpUnavailableError):
        TextChunkMapper({"max_len": 10, "tokenizer": "Qwen/Qwen2.5-0.5B"})
