"""Input discovery and reading: stable shard keys, and bad input quarantined with file, line, field and reason."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import polars as pl
import pytest

from ops_library.columns import DROP_REASON, ROW_ID
from pipeline_defs.recipe import PartitionSpec
from pipeline_defs.shards import RAW_JSON, DatasetError, discover_shards, read_shard, shard_for_key, shard_order


@pytest.fixture(autouse=True)
def _home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Shard manifests are cached under the Sluice home: a private one per test, outside the input."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("SLUICE_HOME", str(home))
    return home


def _jsonl(path: Path, rows: list[object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _read_all(dataset: str, size: int = 1000) -> tuple[pl.DataFrame, pl.DataFrame]:
    kept, bad = [], []
    for shard in discover_shards(dataset, size):
        read = read_shard(shard, "text")
        kept.append(read.kept)
        bad.append(read.quarantined)
    return pl.concat(kept, how="diagonal_relaxed"), pl.concat(bad)


def test_keys_are_stable_ordered_and_cover_every_row(tmp_path: Path) -> None:
    _jsonl(tmp_path / "b.jsonl", [{"text": f"b{i}"} for i in range(7)])
    _jsonl(tmp_path / "sub" / "a.jsonl", [{"text": f"a{i}"} for i in range(3)])
    shards = discover_shards(str(tmp_path), 3)
    keys = [s.key for s in shards]
    assert keys == ["b.jsonl@00000", "b.jsonl@00001", "b.jsonl@00002", "sub/a.jsonl@00000"]
    assert [s.key for s in discover_shards(str(tmp_path), 3)] == keys
    assert sorted(keys, key=shard_order) == keys
    assert [s.rows for s in shards] == [3, 3, 1, 3]
    # appending a file adds keys and renames none
    _jsonl(tmp_path / "c.jsonl", [{"text": "c"}])
    assert set(keys) < {s.key for s in discover_shards(str(tmp_path), 3)}
    shard = shard_for_key(str(tmp_path), 3, "b.jsonl@00002")
    kept = read_shard(shard, "text").kept
    assert kept[ROW_ID].to_list() == ["b.jsonl:7"] and kept["text"].to_list() == ["b6"]


def test_glob_and_single_file_and_missing(tmp_path: Path) -> None:
    _jsonl(tmp_path / "x1.jsonl", [{"text": "1"}])
    _jsonl(tmp_path / "x2.jsonl", [{"text": "2"}])
    _jsonl(tmp_path / "y.jsonl", [{"text": "3"}])
    assert [s.key for s in discover_shards(str(tmp_path / "x*.jsonl"), 10)] == [
        "x1.jsonl@00000",
        "x2.jsonl@00000",
    ]
    assert [s.key for s in discover_shards(str(tmp_path / "y.jsonl"), 10)] == ["y.jsonl@00000"]
    with pytest.raises(DatasetError, match="does not exist"):
        discover_shards(str(tmp_path / "nope"), 10)
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(DatasetError, match="holds no input files"):
        discover_shards(str(tmp_path / "empty_dir"), 10)


def test_bad_jsonl_lines_are_quarantined_with_line_field_and_reason(tmp_path: Path) -> None:
    lines = [
        b'\xef\xbb\xbf{"text": "with bom"}',  # 1: BOM stripped, row kept
        b'{"text": "ok", "meta": {"a": [1, 2]}}',  # 2: nested object kept
        b"{not json",  # 3
        b'{"text": "caf\xe9"}',  # 4: latin-1 byte, invalid UTF-8
        b'{"other": "x"}',  # 5
        b'{"text": null}',  # 6
        b'{"text": 42}',  # 7
        b"[1, 2]",  # 8
        b"",  # 9 blank
        b'{"text": "last", "trunc',  # 10: truncated last line, no newline
    ]
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join(lines))
    kept, bad = _read_all(str(path))
    assert kept["text"].to_list() == ["with bom", "ok"]
    # line 1 has no "meta": the field is held as JSON text, to be written back only where it was
    assert kept["meta"].to_list() == [None, '{"a": [1, 2]}']
    assert kept[RAW_JSON].to_list() == [["meta"], ["meta"]]
    reasons = dict(zip(bad["line"].to_list(), bad[DROP_REASON].to_list(), strict=True))
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9, 10]
    assert reasons[3].startswith("malformed JSON")
    assert reasons[4] == "invalid UTF-8 at byte 13"
    assert reasons[5] == "missing field 'text'"
    assert reasons[6] == "field 'text' is null"
    assert reasons[7] == "field 'text' is a number, not a string"
    assert reasons[8] == "line is a JSON array, not an object"
    assert reasons[9] == "blank line"
    assert reasons[10].startswith("malformed JSON")
    assert set(bad["file"]) == {str(path)}
    assert bad.filter(pl.col("line") == 6)["field"].item() == "text"
    assert bad.filter(pl.col("line") == 4)["raw"].item() == '{"text": "caf\\xe9"}'
    assert kept.height + bad.height == len(lines)


def test_conflicting_field_types_are_kept_as_json_text(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "m.jsonl", [{"text": "a", "meta": 1}, {"text": "b", "meta": {"k": "v"}}])
    kept, bad = _read_all(str(path))
    assert bad.height == 0
    assert kept["meta"].to_list() == ["1", '{"k": "v"}']


def test_gzip_and_empty_files(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "z.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write('{"text": "zipped"}\n{"text": "two"}\n')
    (tmp_path / "empty.jsonl").write_text("")
    kept, bad = _read_all(str(tmp_path))
    assert kept["text"].to_list() == ["zipped", "two"] and bad.height == 0
    assert [s.key for s in discover_shards(str(tmp_path), 10)] == ["z.jsonl.gz@00000"]


def test_parquet_schema_problems_quarantine_rows(tmp_path: Path) -> None:
    pl.DataFrame({"text": ["a", None, "c"], "n": [1, 2, 3]}).write_parquet(tmp_path / "good.parquet")
    pl.DataFrame({"body": ["x", "y"]}).write_parquet(tmp_path / "no_text.parquet")
    pl.DataFrame({"text": [1, 2]}).write_parquet(tmp_path / "int_text.parquet")
    kept, bad = _read_all(str(tmp_path))
    assert kept["text"].to_list() == ["a", "c"]
    assert kept[ROW_ID].to_list() == ["good.parquet:1", "good.parquet:3"]
    by_id = dict(zip(bad[ROW_ID].to_list(), bad[DROP_REASON].to_list(), strict=True))
    assert by_id["good.parquet:2"] == "field 'text' is null"
    assert by_id["no_text.parquet:1"] == "missing field 'text' (columns: body)"
    assert by_id["int_text.parquet:2"] == "field 'text' is Int64, not a string"
    assert kept.height + bad.height == 7


def test_ten_megabyte_document_is_processed_not_quarantined(tmp_path: Path) -> None:
    big = "word " * 2_000_000
    path = _jsonl(tmp_path / "big.jsonl", [{"text": big}, {"text": "small"}])
    kept, bad = _read_all(str(path))
    assert bad.height == 0
    assert kept["text"].str.len_chars().to_list() == [len(big), 5]


# --- every field but the text comes out as it went in ------------------------------------------------------

MIXED_LINES = [
    '{"text": "a", "id": "doc-1", "score": 1.5, "tag": "NaN", "meta": {"k": [1, {"z": null}]}, "big": 123456789012345678901}',
    '{"id": 2, "text": "b", "score": 1.5, "tag": "NaN", "meta": {"k": []}, "big": 1}',
    '{"text": "c", "id": 3.0, "flag": true, "score": 2, "tag": "x", "meta": {"other": "v"}}',
    '{"text": "d", "id": null, "score": -0.0, "tag": "1e5", "meta": [1, "a"]}',
    '{"text": "12", "id": "4", "score": 1e-7, "tag": "true", "meta": {}}',
    '{"text": "dup", "id": "first", "id": "last", "meta": {"a": 1, "a": [2]}}',
    '{"text": "caf\\u00e9 \\ud83d\\ude00", "id": "\\u00fc", "esc": "tab\\tquote\\" slash\\\\"}',
    '{"text": "nan", "v": NaN, "inf": -Infinity}',
    '{"text": "[not a list]", "list": [1.5, 2.5], "n": -12}',
]


def _strict(value: object) -> str:
    """A JSON value as canonical text: equal only for the same value and type (1 != 1.0 != true)."""
    return json.dumps(value, sort_keys=True)


def _export(frames: list[pl.DataFrame], path: Path) -> list[str]:
    from pipeline_defs.export import write_rows

    write_rows(frames, path)
    return path.read_text(encoding="utf-8").splitlines()


@pytest.mark.parametrize(
    "spec", [PartitionSpec(size=1), PartitionSpec(size=4), PartitionSpec(), PartitionSpec(bytes=300)]
)
def test_every_field_round_trips_with_its_json_type_whatever_the_shard_size(
    tmp_path: Path, spec: PartitionSpec
) -> None:
    consistent = [
        json.dumps({"text": f"t{i}", "id": f"doc-{i}", "score": i + 0.5, "meta": {"a": i}}) for i in range(50)
    ]
    lines = [*consistent[:25], *MIXED_LINES, *consistent[25:]]
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "m.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    reads = [read_shard(s, "text") for s in discover_shards(str(tmp_path / "in"), spec)]
    assert sum(r.quarantined.height for r in reads) == 0
    assert sum(r.duplicate_key_rows for r in reads) == 1
    out = _export([r.kept.drop(ROW_ID) for r in reads], tmp_path / "out.jsonl")
    assert len(out) == len(lines)
    for got, want in zip(out, lines, strict=True):
        assert _strict(json.loads(got)) == _strict(json.loads(want))


def test_mixed_types_keep_their_values_in_one_shard(tmp_path: Path) -> None:
    """Issue 11 #1: `{"id":"doc-1"}` + `{"id":2}` in one shard exported `"\\"doc-1\\""` and `"2"`."""
    path = _jsonl(tmp_path / "in" / "m.jsonl", [{"text": "a", "id": "doc-1"}, {"text": "b", "id": 2}])
    read = read_shard(discover_shards(str(path), PartitionSpec())[0], "text")
    out = _export([read.kept.drop(ROW_ID)], tmp_path / "out.jsonl")
    assert out == ['{"text":"a","id":"doc-1"}', '{"text":"b","id":2}']
    from pipeline_defs.export import write_rows

    write_rows([read.kept.drop(ROW_ID)], tmp_path / "out.parquet")
    assert pl.read_parquet(tmp_path / "out.parquet")["id"].to_list() == ['"doc-1"', "2"]  # documented: JSON text


def test_consistent_fields_stay_typed_columns(tmp_path: Path) -> None:
    rows = [{"text": f"t{i}", "n": i, "x": i + 0.25, "ok": i % 2 == 0, "m": {"a": [i]}} for i in range(20)]
    path = _jsonl(tmp_path / "c.jsonl", rows)
    kept = read_shard(discover_shards(str(path), PartitionSpec())[0], "text").kept
    assert RAW_JSON not in kept.columns
    assert kept.schema["n"] == pl.Int64 and kept.schema["x"] == pl.Float64 and kept.schema["ok"] == pl.Boolean
    assert kept["m"].to_list()[3] == {"a": [3]}
