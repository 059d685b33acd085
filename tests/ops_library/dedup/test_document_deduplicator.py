import polars as pl
import pytest
from polars.testing import assert_frame_equal
from xxhash import xxh3_128_digest

from ops_library.columns import DROP_KIND, DROP_OP, DROP_REASON, DUPLICATE, DUPLICATE_OF, HASH, ROW_ID
from ops_library.dedup.document_deduplicator import DocumentDeduplicator


def frame(*texts: str, file: str = "f.jsonl") -> pl.DataFrame:
    return pl.DataFrame(
        {"text": list(texts), ROW_ID: [f"{file}:{i}" for i in range(1, len(texts) + 1)]},
        schema={"text": pl.String, ROW_ID: pl.String},
    )


def kept_ids(*texts: str, **params: bool) -> list[str]:
    return DocumentDeduplicator(params).run(frame(*texts)).kept[ROW_ID].to_list()


def test_keeps_first_occurrence_and_records_provenance() -> None:
    out = DocumentDeduplicator().run(frame("a", "b", "a", "c", "b", "a"))
    assert_frame_equal(
        out.kept,
        frame("a", "b", "c").with_columns(pl.Series(ROW_ID, ["f.jsonl:1", "f.jsonl:2", "f.jsonl:4"])),
    )
    assert out.dropped is not None
    expected = pl.DataFrame(
        {
            "text": ["a", "b", "a"],
            ROW_ID: ["f.jsonl:3", "f.jsonl:5", "f.jsonl:6"],
            DUPLICATE_OF: ["f.jsonl:1", "f.jsonl:2", "f.jsonl:1"],
            DROP_OP: ["document_deduplicator"] * 3,
            DROP_KIND: [DUPLICATE] * 3,
            DROP_REASON: ["duplicate of f.jsonl:1", "duplicate of f.jsonl:2", "duplicate of f.jsonl:1"],
        }
    )
    assert_frame_equal(out.dropped, expected)


@pytest.mark.parametrize(
    ("first", "second", "params", "duplicate"),
    [
        ("Hello", "hello", {}, False),
        ("Hello", "hello", {"lowercase": True}, True),
        ("ΟΔΟΣ", "οδος", {"lowercase": True}, True),  # final sigma, as Python's str.lower()
        (" hello\n", "hello", {}, True),  # Python's strip() always applies
        ("hello\x1c\u3000", "hello", {}, True),  # ... with its own whitespace set (U+001C is in it)
        ("\u200bhello", "hello", {}, False),  # U+200B is not whitespace to Python
        ("中文 😀", "中文 😀", {}, True),
        ("中文 😀", "中文😀", {}, False),
        ("Hello, World! 123", "helloworld", {"lowercase": True, "ignore_non_character": True}, True),
        ("Hello, World!", "helloworld", {"ignore_non_character": True}, False),
        ("hello\u3000\u00a0world\n", "helloworld", {"ignore_non_character": True}, True),  # \s is Unicode
        ("a\u0661b", "ab", {"ignore_non_character": True}, True),  # ARABIC-INDIC ONE is \d
        ("a¹b", "ab", {"ignore_non_character": True}, False),  # superscript one is not \d (not Nd)
        ("a！b", "ab", {"ignore_non_character": True}, False),  # only ASCII punctuation is removed
        ("a\x1cb", "ab", {"ignore_non_character": True}, False),  # U+001C is not `regex`'s \s ...
        ("\x1cab", "ab", {"ignore_non_character": True}, True),  # ... but strip() removes it at the ends
        ("e\u0301", "é", {}, False),  # no Unicode normalization
    ],
)
def test_normalization_like_data_juicer(first: str, second: str, params: dict[str, bool], duplicate: bool) -> None:
    assert kept_ids(first, second, **params) == (["f.jsonl:1"] if duplicate else ["f.jsonl:1", "f.jsonl:2"])


def test_hash_is_xxh3_128_of_the_normalized_text() -> None:
    op = DocumentDeduplicator({"lowercase": True, "ignore_non_character": True})
    hashes = op.hashes(frame(" A, b 1 ", ""))
    assert hashes.schema == pl.Schema({ROW_ID: pl.String, HASH: pl.Binary})
    assert hashes[HASH].to_list() == [xxh3_128_digest(b"ab"), xxh3_128_digest(b"")]


def test_index_across_frames_points_at_the_earlier_frame() -> None:
    op = DocumentDeduplicator()
    first, second = frame("x", "y", file="a.jsonl"), frame("y", "z", "x", "z", file="b.jsonl")
    index = op.index([op.hashes(first), op.hashes(second)])
    expected_index = pl.DataFrame(
        {
            ROW_ID: ["b.jsonl:1", "b.jsonl:3", "b.jsonl:4"],
            DUPLICATE_OF: ["a.jsonl:2", "a.jsonl:1", "b.jsonl:2"],
        }
    )
    assert_frame_equal(index, expected_index, check_row_order=False)
    assert op.apply(first, index).kept[ROW_ID].to_list() == ["a.jsonl:1", "a.jsonl:2"]
    out = op.apply(second, index)
    assert out.kept[ROW_ID].to_list() == ["b.jsonl:2"]
    assert out.dropped is not None
    assert out.dropped.select(ROW_ID, DUPLICATE_OF).rows() == [
        ("b.jsonl:1", "a.jsonl:2"),
        ("b.jsonl:3", "a.jsonl:1"),
        ("b.jsonl:4", "b.jsonl:2"),
    ]


def test_empty_frame() -> None:
    op = DocumentDeduplicator()
    assert op.hashes(frame()).schema[HASH] == pl.Binary
    out = op.run(frame())
    assert_frame_equal(out.kept, frame())
    assert out.dropped_count == 0
    assert op.index([]).height == 0


def test_very_long_texts() -> None:
    text = "长" * 1_000_000
    assert kept_ids(text, text + " ", text + "x") == ["f.jsonl:1", "f.jsonl:3"]


def test_params_are_validated() -> None:
    with pytest.raises(ValueError, match="extra"):
        DocumentDeduplicator({"lower_case": True})


def test_index_stats_group_by_the_kept_row() -> None:
    op = DocumentDeduplicator()
    index = op.index([op.hashes(frame("x", "y", "x", "x", "z", "y"))])
    stats = op.index_stats(index, total_rows=6, index_bytes=60)
    assert stats == {
        "removed_rows": 3,
        "clusters": 2,
        "largest_cluster": 3,
        "cluster_size_histogram": {"2": 1, "3-4": 1},
        "rows": 6,
        "index_bytes": 60,
        "index_bytes_per_row": 10.0,
    }
