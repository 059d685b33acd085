import polars as pl
import pytest

from ops_library.columns import DROP_REASON, ROW_ID
from ops_library.filters.suffix_filter import SuffixFilter, suffix_of_row_id

IDS = [
    "docs/a.jsonl:1",
    "b.JSONL.GZ:2",  # lower-cased; compressed files keep two suffixes
    "c.tar.parquet:3",
    "data.v2.jsonl.zst:4",
    "noext:5",
    ".hidden:6",  # a leading dot starts no suffix, as in pathlib
    "dir.d/x.txt:7",
    "weird:name.json:8",  # only the last ":<row>" is the row
]


def frame(ids: list[str], **columns: list) -> pl.DataFrame:
    texts = ["", " ", "中文", "😀", "שלום", "a\r\nb", "x" * 100_000, "t"][: len(ids)]
    return pl.DataFrame({"text": texts, ROW_ID: ids, **columns})


def test_suffix_of_row_id() -> None:
    suffixes = pl.select(suffix_of_row_id(pl.Series(IDS))).to_series().to_list()
    assert suffixes == [".jsonl", ".jsonl.gz", ".parquet", ".jsonl.zst", "", "", ".txt", ".json"]


def test_keeps_listed_suffixes() -> None:
    out = SuffixFilter({"suffixes": [".jsonl", ".jsonl.gz"]}).run(frame(IDS))
    assert out.kept[ROW_ID].to_list() == IDS[:2]
    assert out.dropped[DROP_REASON][0] == "suffix .parquet not in ['.jsonl', '.jsonl.gz']"
    assert SuffixFilter({"suffixes": ".txt"}).run(frame(IDS)).kept[ROW_ID].to_list() == [IDS[6]]


def test_comparison_is_exact_as_in_data_juicer() -> None:
    assert SuffixFilter({"suffixes": ["jsonl"]}).run(frame(IDS)).kept.height == 0


@pytest.mark.parametrize("suffixes", [[], None])
def test_no_suffixes_keeps_everything(suffixes: object) -> None:
    out = SuffixFilter({"suffixes": suffixes}).run(frame(IDS))
    assert out.kept[ROW_ID].to_list() == IDS
    assert out.dropped.height == 0


def test_an_empty_string_is_one_suffix_as_in_data_juicer() -> None:
    # Data-Juicer turns a string into a one-item list: "" keeps the files without a suffix.
    assert SuffixFilter({"suffixes": ""}).run(frame(IDS)).kept[ROW_ID].to_list() == ["noext:5", ".hidden:6"]


def test_reversed_range_keeps_the_others() -> None:
    kept = SuffixFilter({"suffixes": [".jsonl", ".jsonl.gz"], "reversed_range": True}).run(frame(IDS)).kept
    assert kept[ROW_ID].to_list() == IDS[2:]


def test_a_data_juicer_suffix_column_wins() -> None:
    df = frame(IDS[:3], __dj__suffix__=[".txt", ".jsonl", None])
    assert SuffixFilter({"suffixes": [".txt"]}).run(df).kept[ROW_ID].to_list() == [IDS[0]]
