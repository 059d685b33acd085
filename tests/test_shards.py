"""Input discovery and reading: stable shard keys, and bad input quarantined with file, line, field and reason."""

from __future__ import annotations

import gzip
import json
import os
import random
import time
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

import pipeline_defs.shards as shards_mod
from ops_library.columns import DROP_REASON, ROW_ID
from ops_library.registry import get_op
from pipeline_defs.recipe import PartitionSpec
from pipeline_defs.shards import (
    RAW_JSON,
    DatasetError,
    _parse_line,
    discover_shards,
    read_shard,
    shard_content_hash,
    shard_for_key,
    shard_order,
)


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


def _read_all(dataset: str, spec: PartitionSpec | int = 1000) -> tuple[pl.DataFrame, pl.DataFrame]:
    kept, bad = [], []
    for shard in discover_shards(dataset, spec):
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
    assert kept["meta"][0] is None and json.loads(kept["meta"][1]) == {"a": [1, 2]}
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
    assert [json.loads(v) for v in kept["meta"]] == [1, {"k": "v"}]
    assert kept[RAW_JSON].to_list() == [["meta"], ["meta"]]


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
    '{"text": "a", "id": "doc-1", "score": 1.5, "tag": "NaN", "meta": {"k": [1, {"z": null}]},'
    ' "big": 123456789012345678901234567890}',
    '{"id": 2, "text": "b", "score": 1.5, "tag": "NaN", "meta": {"k": []}, "big": 1}',
    '{"text": "c", "id": 3.0, "flag": true, "score": 2, "tag": "x", "meta": {"other": "v"}}',
    '{"text": "d", "id": null, "score": -0.0, "tag": "1e5", "meta": [1, "a"]}',
    '{"text": "12", "id": "4", "score": 1e-7, "tag": "true", "meta": {}}',
    '{"text": "dup", "id": "first", "id": "last", "meta": {"a": 1, "a": [2]}}',
    '{"text": "caf\\u00e9 \\ud83d\\ude00", "id": "\\u00fc", "esc": "tab\\tquote\\" slash\\\\"}',
    '{"text": "nan", "v": NaN, "inf": -Infinity}',
    '{"text": "[not a list]", "list": [1.5, 2.5], "n": -12}',
    # one field, every JSON type: polars alone would read them all as strings ("false", "1.5", '{"a": 1}')
    '{"text": "k1", "k": "s"}',
    '{"text": "k2", "k": false}',
    '{"text": "k3", "k": 1.5}',
    '{"text": "k4", "k": {"a": 1}}',
    '{"text": "k5", "k": [1, "x"]}',
    '{"text": "k6", "k": "1.5"}',
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


# --- bad input is quarantined or refused in one line, never hangs ------------------------------------------


def test_deeply_nested_lines_are_quarantined_and_the_shard_goes_on(tmp_path: Path) -> None:
    """Issue 11 #7: 500 nested objects hung the reader (> 5 min, 1.8 GB); 10,000 `[` raised RecursionError."""
    deep_object = '{"text": "x", "meta": ' + '{"a": ' * 500 + "1" + "}" * 500 + "}"
    deep_array = '{"text": "y", "meta": ' + "[" * 10_000 + "]" * 10_000 + "}"
    unclosed = '{"text": "z", "meta": ' + "[" * 10_000
    ok_nested = '{"text": "w", "meta": ' + '{"a": ' * 50 + "1" + "}" * 50 + "}"
    brackets_in_text = json.dumps({"text": "[" * 5000 + "{" * 5000})
    lines = ['{"text": "before"}', deep_object, deep_array, unclosed, ok_nested, brackets_in_text, '{"text": "after"}']
    path = tmp_path / "deep.jsonl"
    path.write_text("\n".join(lines) + "\n")
    for spec in (PartitionSpec(), PartitionSpec(size=2)):
        kept, bad = _read_all(str(path), spec)
        assert kept["text"].to_list() == ["before", "w", "[" * 5000 + "{" * 5000, "after"]
        reasons = dict(zip(bad["line"].to_list(), bad[DROP_REASON].to_list(), strict=True))
        assert reasons == {
            2: "JSON nested deeper than 100 levels",
            3: "JSON nested deeper than 100 levels",
            4: "JSON nested deeper than 100 levels",
        }


def test_parquet_with_an_int_text_column_is_quarantined_not_a_schema_error(tmp_path: Path) -> None:
    pl.DataFrame({"text": ["a", "b"], "n": [1, 2]}).write_parquet(tmp_path / "a.parquet")
    pl.DataFrame({"text": [7, 8], "n": [3, 4]}).write_parquet(tmp_path / "b.parquet")
    reads = [read_shard(s, "text") for s in discover_shards(str(tmp_path), PartitionSpec())]
    assert reads[1].kept.height == 0 and reads[1].kept.schema["text"] == pl.String
    assert get_op("text_length_filter")({"min_len": 1}).run(reads[1].kept).kept.height == 0  # was a SchemaError
    # the frames of both files stack (downstream steps and the export concatenate them)
    assert pl.concat([r.kept for r in reads])["text"].to_list() == ["a", "b"]
    assert reads[1].quarantined[DROP_REASON].to_list() == ["field 'text' is Int64, not a string"] * 2


def test_truncated_gzip_is_a_one_line_error_naming_file_and_last_good_line(tmp_path: Path) -> None:
    body = "".join(json.dumps({"text": f"row {i} " + "x" * 200}) + "\n" for i in range(2000)).encode()
    whole = gzip.compress(body)
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DatasetError) as err:
        discover_shards(str(tmp_path), PartitionSpec())
    message = str(err.value)
    assert "\n" not in message and str(path) in message and "truncated or corrupt gzip stream" in message
    good = int(message.split("after line ")[1].split(" ")[0])
    assert 0 < good < 2000 and "(the last good line" in message


def test_symlink_loop_and_broken_link_are_named_as_such(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(DatasetError, match="is a symlink loop"):
        discover_shards(str(loop), PartitionSpec())
    broken = tmp_path / "broken"
    broken.symlink_to(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="is a broken symlink"):
        discover_shards(str(broken), PartitionSpec())


# --- shards by bytes, counted once ---------------------------------------------------------------------------


def test_byte_shards_hold_the_lines_starting_in_their_range(tmp_path: Path) -> None:
    lines = [json.dumps({"text": "x" * (i * 7 % 50)}) for i in range(40)]
    path = tmp_path / "b.jsonl"
    path.write_text("\n".join(lines))  # no final newline: the last line still counts
    data = path.read_bytes()
    starts = [0] + [i + 1 for i, c in enumerate(data) if c == ord("\n")]
    for size in (1, 37, 100, 1000, 10**6):
        shards = discover_shards(str(path), PartitionSpec(bytes=size))
        expected: dict[int, list[int]] = {}
        for line, start in enumerate(starts):
            expected.setdefault(start // size, []).append(line + 1)
        assert [s.index for s in shards] == sorted(expected)
        assert [s.key for s in shards] == [f"b.jsonl@{i:05d}" for i in sorted(expected)]
        for shard in shards:
            ids = read_shard(shard, "text").kept[ROW_ID].to_list()
            assert ids == [f"b.jsonl:{line}" for line in expected[shard.index]]
        assert shard_for_key(str(path), PartitionSpec(bytes=size), shards[-1].key) == shards[-1]


def test_partition_spec_defaults_to_64mb_and_parses_sizes() -> None:
    assert PartitionSpec().shard_bytes == 64 * 10**6
    assert PartitionSpec(bytes="64MB").shard_bytes == 64 * 10**6
    assert PartitionSpec(bytes="1.5 KiB").shard_bytes == 1536
    assert PartitionSpec(size=10).shard_bytes is None
    with pytest.raises(ValueError, match="not a byte size"):
        PartitionSpec(bytes="lots")
    with pytest.raises(ValueError, match="not both"):
        PartitionSpec(bytes=10, size=10)


def test_gzip_is_one_shard_by_bytes_and_split_by_rows(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "z.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"text": f"r{i}"}) + "\n" for i in range(10))
    assert [s.rows for s in discover_shards(str(tmp_path), PartitionSpec(bytes=10))] == [10]
    shards = discover_shards(str(tmp_path), PartitionSpec(size=4))
    assert [(s.start, s.stop) for s in shards] == [(0, 4), (4, 8), (8, 10)]
    assert read_shard(shards[2], "text").kept[ROW_ID].to_list() == ["z.jsonl.gz:9", "z.jsonl.gz:10"]


def test_parquet_shards_by_row_groups(tmp_path: Path) -> None:
    df = pl.DataFrame({"text": [f"doc {i} " + "y" * 100 for i in range(100)], "n": list(range(100))})
    df.write_parquet(tmp_path / "p.parquet", row_group_size=10, compression="uncompressed")
    one_group = pq.ParquetFile(tmp_path / "p.parquet").metadata.row_group(0).total_byte_size
    shards = discover_shards(str(tmp_path), PartitionSpec(bytes=one_group * 3))
    assert all(s.start % 10 == 0 for s in shards) and len(shards) < 10
    assert [s.rows for s in shards][:-1] == [30] * (len(shards) - 1)
    kept = pl.concat([read_shard(s, "text").kept for s in shards])
    assert kept["n"].to_list() == list(range(100))
    assert kept[ROW_ID].to_list() == [f"p.parquet:{i}" for i in range(1, 101)]


def test_each_file_is_counted_once_then_read_from_its_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _jsonl(tmp_path / "in" / "a.jsonl", [{"text": f"t{i}"} for i in range(100)])
    spec = PartitionSpec(bytes=200)
    shards = discover_shards(str(path.parent), spec)
    shards_mod._MEMO.clear()  # a new process: only the manifest on disk is left

    def no_scan(*args: object) -> None:
        raise AssertionError("the file was scanned again")

    monkeypatch.setattr(shards_mod, "_jsonl_by_bytes", no_scan)
    assert discover_shards(str(path.parent), spec) == shards
    assert shard_for_key(str(path.parent), spec, shards[3].key) == shards[3]
    # a changed file (size, mtime) is scanned again
    monkeypatch.undo()
    with path.open("a") as fh:
        fh.write(json.dumps({"text": "appended"}) + "\n")
    after = discover_shards(str(path.parent), spec)
    assert sum(s.rows for s in after) == 101


def test_content_hash_covers_only_the_shard(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "in" / "a.jsonl", [{"text": f"t{i}"} for i in range(100)])
    spec = PartitionSpec(bytes=300)
    before = {s.key: shard_content_hash(s) for s in discover_shards(str(path.parent), spec)}
    with path.open("a") as fh:
        fh.write(json.dumps({"text": "appended"}) + "\n")
    after = {s.key: shard_content_hash(s) for s in discover_shards(str(path.parent), spec)}
    changed = [k for k in after if before.get(k) != after[k]]
    assert changed == [max(after)]  # appending touches the last shard only
    text = path.read_text().replace('"t5"', '"T5"')
    path.write_text(text)
    edited = {s.key: shard_content_hash(s) for s in discover_shards(str(path.parent), spec)}
    assert [k for k in edited if edited[k] != after[k]] == [min(edited)]
    pl.DataFrame({"text": [f"p{i}" for i in range(40)]}).write_parquet(tmp_path / "p.parquet", row_group_size=10)
    pq_shards = discover_shards(str(tmp_path / "p.parquet"), PartitionSpec(size=10))
    assert len({shard_content_hash(s) for s in pq_shards}) == 4


def test_a_settled_shard_is_read_once_per_process_and_any_rewrite_is_seen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _jsonl(tmp_path / "in" / "a.jsonl", [{"text": f"t{i}"} for i in range(60)])
    spec = PartitionSpec(bytes=300)
    reads: list[str] = []
    real = shards_mod._content_hash
    monkeypatch.setattr(shards_mod, "_content_hash", lambda s: reads.append(s.key) or real(s))
    monkeypatch.setattr(shards_mod, "_HASHES", {})
    monkeypatch.setattr(shards_mod, "SETTLED_NS", 300_000_000)

    def hashes() -> dict[str, str]:
        return {s.key: shard_content_hash(s) for s in discover_shards(str(path.parent), spec)}

    # written moments ago: every call reads the bytes (a write in the same clock tick would keep size and mtime)
    fresh = hashes()
    assert hashes() == fresh and len(reads) == 2 * len(fresh)
    # settled (mtime older than SETTLED_NS): read once, then answered from the stat
    old = path.stat().st_mtime_ns - 2 * shards_mod.SETTLED_NS
    os.utime(path, ns=(old, old))
    time.sleep(shards_mod.SETTLED_NS / 1e9)  # the ctime that utime set settles too
    reads.clear()
    settled = hashes()
    assert settled == fresh and hashes() == settled and len(reads) == len(settled)
    # the same size rewritten, the old mtime put back: the ctime differs, so the bytes are read again
    path.write_text(path.read_text().replace('"t5"', '"T5"'))
    os.utime(path, ns=(old, old))
    reads.clear()
    edited = hashes()
    assert len(reads) == len(edited)
    assert [k for k in edited if edited[k] != settled[k]] == [min(edited)]


def test_optional_fields_are_read_natively_and_written_only_where_present(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [
        {
            "text": f"t{i}",
            **({"meta": {"n": i}} if i % 2 else {}),
            **({"note": None, "url": None} if i % 5 == 0 else {}),
        }
        for i in range(40)
    ]
    path = _jsonl(tmp_path / "in" / "o.jsonl", rows)
    per_line = []
    monkeypatch.setattr(shards_mod, "_parse_line", lambda *a: per_line.append(a) or _parse_line(*a))
    read = read_shard(discover_shards(str(path), PartitionSpec())[0], "text")
    # An absent key and a JSON null both read as null; the key count tells them apart, unless a row has both
    # (rows 0, 10, 20, 30: no "meta", "note": null): only those take the per-line path.
    assert [a[1] for a in per_line] == [json.dumps(rows[i]) for i in (0, 10, 20, 30)]
    assert set(read.kept[RAW_JSON][0]) == {"meta", "note", "url"}
    out = _export([read.kept.drop(ROW_ID)], tmp_path / "out.jsonl")
    assert [json.loads(line) for line in out] == rows


def test_unpaired_surrogate_escape_is_quarantined_and_a_pair_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"text": "a\\ud800b"}\n{"text": "ok \\ud83d\\ude00"}\n{"text": "x", "m": ["\\udfff"]}\n')
    kept, bad = _read_all(str(path), PartitionSpec())
    assert kept["text"].to_list() == ["ok 😀"]
    assert bad["line"].to_list() == [1, 3]
    assert set(bad[DROP_REASON]) == {"a string holds an unpaired UTF-16 surrogate (\\ud800-\\udfff)"}


def test_type_clashes_and_bad_lines_are_split_off_not_the_whole_shard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """polars rejects a whole shard for one bad line, or for a field that is an int here and a bool there:
    the shard is parsed again in halves, and only the line polars rejects alone takes the per-line path."""
    rows = [
        json.dumps({"text": f"t{i}", "m": True if i == 57 else i, "o": [] if i == 120 else {"a": i}})
        for i in range(200)
    ]
    rows[150] = '{"text": "broken", '
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(rows) + "\n")
    per_line = []
    monkeypatch.setattr(shards_mod, "_parse_line", lambda *a: per_line.append(a) or _parse_line(*a))
    read = read_shard(discover_shards(str(path), PartitionSpec())[0], "text")
    assert [a[1] for a in per_line] == [rows[150]]
    assert read.quarantined["line"].to_list() == [151]
    assert set(read.kept[RAW_JSON][0]) == {"m", "o"}
    out = _export([read.kept.drop(ROW_ID)], tmp_path / "out.jsonl")
    assert [_strict(json.loads(line)) for line in out] == [
        _strict(json.loads(r)) for i, r in enumerate(rows) if i != 150
    ]


@pytest.mark.parametrize("late_rows", [1, 150])
def test_fields_and_types_first_seen_late_in_a_shard_keep_their_values(tmp_path: Path, late_rows: int) -> None:
    """The native schema comes from the first rows; later fields, and later types of a field, still come out
    as they went in (few such rows: per line; many: a second parse with the schema from every row)."""
    rows = [{"text": f"t{i}", "n": i, "s": "x"} for i in range(300)]
    for i in range(300 - late_rows, 300):
        rows[i] |= {"late": {"k": i}, "n": i + 0.5, "s": i}
    path = _jsonl(tmp_path / "late.jsonl", rows)
    read = read_shard(discover_shards(str(path), PartitionSpec())[0], "text")
    out = _export([read.kept.drop(ROW_ID)], tmp_path / "out.jsonl")
    assert [_strict(json.loads(line)) for line in out] == [_strict(r) for r in rows]


def test_parquet_export_holds_a_field_typed_differently_per_shard_as_json_text(tmp_path: Path) -> None:
    from pipeline_defs.export import write_rows

    path = _jsonl(tmp_path / "in" / "p.jsonl", [{"text": "a", "n": 1}, {"text": "b", "n": 2.5}, {"text": "c", "n": 3}])
    frames = [read_shard(s, "text").kept.drop(ROW_ID) for s in discover_shards(str(path), PartitionSpec(size=1))]
    assert {f.schema["n"] for f in frames} == {pl.Int64, pl.Float64}
    write_rows(frames, tmp_path / "out.parquet")
    assert pl.read_parquet(tmp_path / "out.parquet")["n"].to_list() == ["1", "2.5", "3"]  # not 1.0, 2.5, 3.0


@pytest.mark.parametrize(("late_key", "reparsed"), [(True, True), (False, False)])
def test_a_shard_is_parsed_again_only_when_a_wider_schema_can_read_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, late_key: bool, reparsed: bool
) -> None:
    """Many rows whose key count the first schema misses: a field first seen late is worth a parse with the schema
    from every row; texts that open with ':' (reST such as ":mod:`json`", whose '":' counts as a key) are not."""
    import pipeline_defs.shards as shards_mod

    rows = [{"text": f"t{i}", "n": i} for i in range(300)]
    for i in range(120, 300):
        rows[i] = {"text": f"t{i}", "n": i, "late": i} if late_key else {"text": f":mod:`m{i}` -- x", "n": i}
    path = _jsonl(tmp_path / "late.jsonl", rows)
    inferred: list[int | None] = []
    native = shards_mod._native
    monkeypatch.setattr(shards_mod, "_native", lambda p, n, infer: inferred.append(infer) or native(p, n, infer))
    read = read_shard(discover_shards(str(path), PartitionSpec())[0], "text")
    assert (None in inferred) is reparsed
    out = _export([read.kept.drop(ROW_ID)], tmp_path / "out.jsonl")
    assert [_strict(json.loads(line)) for line in out] == [_strict(r) for r in rows]


@pytest.mark.parametrize("chunk", [3, 64, 1 << 22])
@pytest.mark.parametrize("final_newline", [True, False])
def test_byte_shards_count_the_lines_starting_in_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int, final_newline: bool
) -> None:
    """Shard i of a JSONL file holds the lines starting in bytes [i*B, (i+1)*B): rows and offsets as a plain
    split of the file gives them, whatever the read buffer's size (`_READ_CHUNK`) and the last line's end."""
    from pipeline_defs import shards

    monkeypatch.setattr(shards, "_READ_CHUNK", chunk)
    rng = random.Random(chunk)
    lines = [json.dumps({"text": "é" * rng.randint(0, 40)}).encode() for _ in range(300)]
    data = b"\n".join(lines) + (b"\n" if final_newline else b"")
    path = tmp_path / "f.jsonl"
    path.write_bytes(data)
    starts = [0]
    for line in lines[:-1]:
        starts.append(starts[-1] + len(line) + 1)
    for shard_bytes in (50, 997, len(data) + 1):
        expected, first = [], 0
        for index in range(-(-len(data) // shard_bytes)):
            mine = [s for s in starts if index * shard_bytes <= s < (index + 1) * shard_bytes]
            if mine:
                end = starts[starts.index(mine[-1]) + 1] if mine[-1] != starts[-1] else len(data)
                expected.append((index, first, first + len(mine), mine[0], end))
                first += len(mine)
        assert shards._jsonl_by_bytes(path, len(data), shard_bytes) == expected, shard_bytes


# --- packs: small JSONL files sharing a shard ------------------------------------------------------------------


def _sized(path: Path, rows: int, width: int = 90) -> Path:
    """`rows` JSONL lines of exactly `width` bytes each (newline included)."""
    lines = []
    for i in range(rows):
        line = json.dumps({"text": f"{path.stem} row {i} ", "n": i})
        lines.append(line[:-1] + f', "pad": "{"x" * (width - len(line) - 12)}"' + "}\n")
        assert len(lines[-1]) == width
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines))
    return path


def test_small_jsonl_files_are_packed_in_order_into_shards_of_at_most_the_shard_bytes(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        _sized(tmp_path / f"{name}.jsonl", 3)  # 270 B each
    # 12 rows, 1,080 B once decompressed: too large to pack, however small the .gz file is
    _sized(tmp_path / "big.jsonl", 12).rename(tmp_path / "c2.jsonl")
    with gzip.open(tmp_path / "c2.jsonl.gz", "wb") as fh:
        fh.write((tmp_path / "c2.jsonl").read_bytes())
    (tmp_path / "c2.jsonl").unlink()
    _sized(tmp_path / "d.jsonl", 12)  # 1,080 B: at least the shard size, split by bytes as before
    _sized(tmp_path / "e.jsonl", 2)
    with gzip.open(tmp_path / "f.jsonl.gz", "wt") as fh:  # a small .gz file packs like a plain one
        fh.write(json.dumps({"text": "gz", "n": 0, "pad": "p"}) + "\n")
    # a Parquet file between JSONL files joins no JSONL pack
    pl.read_ndjson(_sized(tmp_path / "tmp" / "x.jsonl", 2)).write_parquet(tmp_path / "f.parquet")
    (tmp_path / "tmp" / "x.jsonl").unlink()
    _sized(tmp_path / "g.jsonl", 2)
    _sized(tmp_path / "h.jsonl", 2)
    spec = PartitionSpec(bytes=600)
    shards = discover_shards(str(tmp_path), spec)
    keys = [s.key for s in shards]
    # a+b (540 B; c would make 810), c alone (c2 is not small), c2, d in two, e+f.gz, the Parquet file, g+h
    assert keys == [
        "a.jsonl@00000+1",
        "c.jsonl@00000",
        "c2.jsonl.gz@00000",
        "d.jsonl@00000",
        "d.jsonl@00001",
        "e.jsonl@00000+1",
        "f.parquet@00000",
        "g.jsonl@00000+1",
    ]
    assert sorted(keys, key=shard_order) == keys
    members = [[m.file.relpath for m in s.members] for s in shards]
    assert members == [["a.jsonl", "b.jsonl"], [], [], [], [], ["e.jsonl", "f.jsonl.gz"], [], ["g.jsonl", "h.jsonl"]]
    assert [s.rows for s in shards] == [6, 3, 12, 7, 5, 3, 2, 4]
    for key in keys:
        assert shard_for_key(str(tmp_path), spec, key) == shards[keys.index(key)]
    # a file's own key, while it is in a pack, is not a shard
    with pytest.raises(DatasetError, match="is not a shard"):
        shard_for_key(str(tmp_path), spec, "b.jsonl@00000")
    # a pack holding a .gz file is not kept as a reference to the input: reading it again is a decompression
    assert shards_mod.shard_reference(shards[5], "text", shard_content_hash(shards[5])) is None
    assert shards_mod.shard_reference(shards[0], "text", shard_content_hash(shards[0])) is not None
    # pack: false gives every file its own shards again
    assert [s.key for s in discover_shards(str(tmp_path), PartitionSpec(bytes=600, pack=False))] == [
        "a.jsonl@00000",
        "b.jsonl@00000",
        "c.jsonl@00000",
        "c2.jsonl.gz@00000",
        "d.jsonl@00000",
        "d.jsonl@00001",
        "e.jsonl@00000",
        "f.jsonl.gz@00000",
        "f.parquet@00000",
        "g.jsonl@00000",
        "h.jsonl@00000",
    ]
    # rows mode never packs
    assert len(discover_shards(str(tmp_path), PartitionSpec(size=100))) == 10
    # a file appended after the others joins the last pack: only that key changes
    _sized(tmp_path / "i.jsonl", 1)
    assert [s.key for s in discover_shards(str(tmp_path), spec)] == [*keys[:-1], "g.jsonl@00000+2"]
    every = pl.concat([read_shard(s, "text").kept for s in discover_shards(str(tmp_path), spec)], how="diagonal")
    alone = pl.concat(
        [read_shard(s, "text").kept for s in discover_shards(str(tmp_path), PartitionSpec(bytes=600, pack=False))],
        how="diagonal",
    )
    assert every.equals(alone.select(every.columns)) and every.height == 43


def test_a_pack_names_each_rows_own_file_and_line_and_quarantines_as_one_file_would(tmp_path: Path) -> None:
    # a: no final newline; b: a byte-order mark, a broken line, a row without text, a field typed otherwise
    (tmp_path / "a.jsonl").write_text(
        json.dumps({"text": "a one", "x": 1}) + "\n" + json.dumps({"text": "a two", "x": 2})
    )
    (tmp_path / "b.jsonl").write_bytes(
        b"\xef\xbb\xbf"
        + "\n".join(
            [
                json.dumps({"text": "b one", "x": "str"}),
                "{broken",
                json.dumps({"body": "no text"}),
                json.dumps({"text": "b four", "x": 4}),
            ]
        ).encode()
        + b"\n"
    )
    (pack,) = discover_shards(str(tmp_path), PartitionSpec())
    assert pack.key == "a.jsonl@00000+1" and pack.rows == 6
    read = read_shard(pack, "text")
    assert read.kept[ROW_ID].to_list() == ["a.jsonl:1", "a.jsonl:2", "b.jsonl:1", "b.jsonl:4"]
    assert read.kept["text"].to_list() == ["a one", "a two", "b one", "b four"]
    assert "x" in read.kept[RAW_JSON][0].to_list()  # int here, string there: JSON text, written back verbatim
    assert read.kept["x"].to_list() == ["1", "2", '"str"', "4"]
    bad = read.quarantined
    assert bad[ROW_ID].to_list() == ["b.jsonl:2", "b.jsonl:3"]
    assert bad["file"].to_list() == [str(tmp_path / "b.jsonl")] * 2 and bad["line"].to_list() == [2, 3]
    assert bad["field"].to_list() == [None, "text"]
    assert bad[DROP_REASON].str.starts_with("malformed JSON").to_list() == [True, False]
    # the same rows, ids and reasons as the files read one by one
    alone = [read_shard(s, "text") for s in discover_shards(str(tmp_path), PartitionSpec(pack=False))]
    assert pl.concat([r.quarantined for r in alone]).equals(bad)
    assert pl.concat([r.kept.select(ROW_ID, "text") for r in alone]).equals(read.kept.select(ROW_ID, "text"))


def test_a_packs_hash_and_input_reference_cover_each_of_its_files(tmp_path: Path) -> None:
    from resources.checkpoint_files import CorruptCheckpointError

    for name in ("a", "b", "c"):
        _sized(tmp_path / f"{name}.jsonl", 4)
    (pack,) = discover_shards(str(tmp_path), PartitionSpec())
    digest = shard_content_hash(pack)
    ref = shards_mod.shard_reference(pack, "text", digest)
    assert ref is not None
    assert shards_mod._read_reference(ref.args).equals(read_shard(pack, "text").kept)
    # a byte changed in the last file, at the same size: another hash, and the reference refuses to read
    path = tmp_path / "c.jsonl"
    data = path.read_bytes()
    path.write_bytes(data.replace(b"c row 3", b"c row 9"))
    (changed,) = discover_shards(str(tmp_path), PartitionSpec())
    assert changed.key == pack.key and shard_content_hash(changed) != digest
    with pytest.raises(CorruptCheckpointError, match="and the 2 files after it changed"):
        shards_mod._read_reference(ref.args)


def _parquet(path: Path, rows: int, **columns: list) -> Path:
    frame = pl.DataFrame({"text": [f"{path.stem} row {i}" for i in range(rows)], "n": list(range(rows))})
    frame.with_columns(**{k: pl.Series(v) for k, v in columns.items()}).write_parquet(path)
    return path


def test_small_parquet_files_of_one_schema_are_packed_and_read_as_each_file_alone(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        _parquet(tmp_path / f"{name}.parquet", 4)
    # another schema (an extra column) starts a pack of its own, and the same schema after it yet another
    _parquet(tmp_path / "d.parquet", 3, extra=[1.5, 2.5, 3.5])
    _parquet(tmp_path / "e.parquet", 3, extra=[4.5, None, 6.5])
    _parquet(tmp_path / "f.parquet", 2)
    _sized(tmp_path / "g.jsonl", 2)  # a JSONL file never joins a Parquet pack
    # a null text is quarantined, naming its own file and row
    pl.DataFrame({"text": ["h row 0", None, "h row 2"], "n": [0, 1, 2]}).write_parquet(tmp_path / "h.parquet")
    spec = PartitionSpec()
    shards = discover_shards(str(tmp_path), spec)
    keys = [s.key for s in shards]
    assert keys == ["a.parquet@00000+2", "d.parquet@00000+1", "f.parquet@00000", "g.jsonl@00000", "h.parquet@00000"]
    assert [[m.file.relpath for m in s.members] for s in shards][:2] == [
        ["a.parquet", "b.parquet", "c.parquet"],
        ["d.parquet", "e.parquet"],
    ]
    for key in keys:
        assert shard_for_key(str(tmp_path), spec, key) == shards[keys.index(key)]
    with pytest.raises(DatasetError, match="is not a shard"):
        shard_for_key(str(tmp_path), spec, "b.parquet@00000")
    read = read_shard(shards[0], "text")
    assert read.kept[ROW_ID].to_list() == [f"{f}.parquet:{i}" for f in "abc" for i in range(1, 5)]
    assert read.kept["text"].to_list() == [f"{f} row {i}" for f in "abc" for i in range(4)]
    assert read_shard(shards[1], "text").kept["extra"].to_list() == [1.5, 2.5, 3.5, 4.5, None, 6.5]
    # the same rows and quarantine records as the files read one by one
    alone = [read_shard(s, "text") for s in discover_shards(str(tmp_path), PartitionSpec(pack=False))]
    packed = [read_shard(s, "text") for s in shards]
    for part in ("kept", "quarantined"):
        assert pl.concat([getattr(r, part) for r in packed], how="diagonal").equals(
            pl.concat([getattr(r, part) for r in alone], how="diagonal")
        )
    (bad,) = pl.concat([r.quarantined for r in packed]).iter_rows(named=True)
    assert (bad[ROW_ID], bad["line"], bad["file"]) == ("h.parquet:2", 2, str(tmp_path / "h.parquet"))
    # the pack's source checkpoint is a reference to its files: it reads the rows again, and refuses a change
    digest = shard_content_hash(shards[0])
    ref = shards_mod.shard_reference(shards[0], "text", digest)
    assert ref is not None and shards_mod._read_reference(ref.args).equals(read.kept)
    _parquet(tmp_path / "c.parquet", 4, n=[0, 1, 2, 9])
    assert shard_content_hash(discover_shards(str(tmp_path), spec)[0]) != digest
    # a Parquet file at least the shard size (its row groups' bytes, as its footer gives them) keeps its own shards
    small = PartitionSpec(bytes=pq.ParquetFile(tmp_path / "a.parquet").metadata.row_group(0).total_byte_size)
    assert [s.key for s in discover_shards(str(tmp_path), small)][:3] == [
        "a.parquet@00000",
        "b.parquet@00000",
        "c.parquet@00000",
    ]
