import polars as pl
import pytest
from polars.testing import assert_frame_equal

from ops_library.columns import ROW_ID
from ops_library.mappers.whitespace_normalization_mapper import WhitespaceNormalizationMapper
from ops_library.text import VARIOUS_WHITESPACES
from tests.reference_dj import whitespace_normalization as reference_whitespace_normalization


def frame(*texts: str) -> pl.DataFrame:
    return pl.DataFrame(
        {"text": list(texts), ROW_ID: [f"f.jsonl:{i}" for i in range(1, len(texts) + 1)]},
        schema={"text": pl.String, ROW_ID: pl.String},
    )


def normalize(*texts: str) -> list[str]:
    return WhitespaceNormalizationMapper().run(frame(*texts)).kept["text"].to_list()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("plain text", "plain text"),
        ("  hello\u3000world\t!  ", "hello world !"),
        ("a\u00a0b\u2002c\u202fd\u205fe\u2060f\ufffcg\x84h", "a b c d e f g h"),
        # Runs are not collapsed; newlines and carriage returns are not in Data-Juicer's set.
        ("a\t\tb\n\nc\r\nd", "a  b\n\nc\r\nd"),
        # Python's strip() removes U+001C..U+001F and NBSP; Rust's notion of whitespace lacks the first four.
        ("\x1c\x1f\u00a0hi\u3000\n", "hi"),
        # Zero-width characters are not Python whitespace: strip keeps them, then they become spaces.
        ("\u200bhi\u200d", " hi "),
        ("中文 😀 e\u0301 Ω", "中文 😀 e\u0301 Ω"),
    ],
)
def test_normalizes_like_data_juicer(text: str, expected: str) -> None:
    assert normalize(text) == [expected]


def test_keeps_rows_and_counts_changes() -> None:
    df = frame(" a ", "b", "c\u3000d")
    out = WhitespaceNormalizationMapper().run(df)
    expected = frame("a", "b", "c d")
    assert_frame_equal(out.kept, expected)
    assert out.changed == 2
    assert out.dropped_count == 0


def test_empty_frame() -> None:
    out = WhitespaceNormalizationMapper().run(frame())
    assert_frame_equal(out.kept, frame())
    assert out.changed == 0


def test_very_long_text() -> None:
    text = "a\u3000" * 500_000  # 1M code points; the trailing U+3000 is stripped
    assert normalize(text) == [("a " * 500_000)[:-1]]


def test_takes_no_params() -> None:
    with pytest.raises(ValueError, match="extra"):
        WhitespaceNormalizationMapper({"collapse": True})


def test_every_data_juicer_whitespace_equals_the_reference() -> None:
    kinds = sorted(VARIOUS_WHITESPACES)
    texts = [
        "".join(kinds),
        "x" + "y".join(kinds) + "z",
        "a\u2028b\u2029c\x85d\x1ce",  # Python whitespace, not Data-Juicer's: stripped at the ends only
        "\u200b\u200c\u200d\u2060\ufffc",
        "plain",
    ]
    assert normalize(*texts) == [reference_whitespace_normalization(t) for t in texts]
