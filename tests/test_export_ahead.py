"""The export's dropped rows rendered while the later phases run (`pipeline_defs/export_ahead.py`): the same
side files, byte for byte, as the export renders itself; never a rendering of a checkpoint that changed since,
or whose base did; within its budget; its spool gone with the job."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from unittest.mock import ANY

import dagster as dg
import polars as pl
import pytest
import yaml

from ops_library.columns import DROP_KIND, DROP_OP, DROP_REASON, FILTERED, PARENT_ID, ROW_ID
from pipeline_defs import export_ahead
from pipeline_defs.execute import RunFailedError, run_recipe
from pipeline_defs.export import public_dropped, write_jsonl
from pipeline_defs.export_ahead import SPOOL_PREFIX, ExportAhead
from resources.checkpoint_files import Base, CheckpointMeta, file_digest
from resources.storage import FRAMES, CheckpointStore


def _recipe(tmp_path: Path) -> Path:
    data = tmp_path / "in"
    data.mkdir()
    for f in range(3):
        lines = [json.dumps({"text": f"doc {f} {i} " + "word " * (i % 7), "n": i, "tag": [f, i]}) for i in range(60)]
        lines += [lines[3], "{broken json"]  # an exact duplicate and a quarantined line
        (data / f"p{f}.jsonl").write_text("\n".join(lines) + "\n")
    recipe = {
        "project_name": "ahead_export",
        "dataset_path": str(data),
        "export_path": str(tmp_path / "out" / "kept.jsonl"),
        "partition": {"pack": False},  # a shard per file: several shards from small files
        "process": [
            {"whitespace_normalization_mapper": None},
            {"words_num_filter": {"min_num": 4}},
            {"text_length_filter": {"min_len": 12}},
            {"document_deduplicator": None},
        ],
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def _export_metadata(project: str) -> dict:
    with dg.DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey([project, "export"]))
        assert event is not None and event.asset_materialization is not None
        return {k: v.value for k, v in event.asset_materialization.metadata.items()}


def _side_files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if not p.name.startswith(".")}


def test_side_files_rendered_ahead_are_the_bytes_the_export_renders(
    tmp_path: Path, sluice_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recipe = _recipe(tmp_path)
    report = run_recipe(recipe, echo=lambda _: None)
    assert report.status == "completed"
    ahead = _side_files(tmp_path / "out")
    store_root = Path(sluice_home) / "checkpoints"
    dropped = [p for p in store_root.rglob("*.dropped.parquet")]
    dedup = [p for p in dropped if p.parent.name == "op03_document_deduplicator"]
    assert len(dedup) == 3
    # every dropped checkpoint of the first phase (the source's quarantine included) was taken rendered; the
    # dedup's, written by the phase just before the export, the export rendered itself
    assert _export_metadata("ahead_export")["dropped_rendered_ahead"] == len(dropped) - len(dedup) > 3
    assert ahead["kept.quarantine.jsonl"].count(b"\n") == 3 and ahead["kept.dropped.jsonl"].count(b"\n") > 3
    assert not list(store_root.glob(f"{SPOOL_PREFIX}*"))  # the spool went with the job

    # the same job where nothing is rendered ahead: the export renders every shard itself, the same bytes
    monkeypatch.setattr(export_ahead, "start", lambda store: None)
    for p in (tmp_path / "out").iterdir():
        p.unlink()
    run_recipe(recipe, echo=lambda _: None)
    assert _export_metadata("ahead_export")["dropped_rendered_ahead"] == 0
    assert _side_files(tmp_path / "out") == ahead


def _dropped(n: int, start: int = 0) -> pl.DataFrame:
    return pl.DataFrame(
        {
            ROW_ID: [f"r{i}" for i in range(start, start + n)],
            "text": [f'text {i} \u00e9\n"q"' for i in range(start, start + n)],
            "tag": [[i, i + 1] for i in range(start, start + n)],
            DROP_OP: ["a_filter" if i % 3 else "b_filter" for i in range(start, start + n)],
            DROP_KIND: [FILTERED] * n,
            DROP_REASON: ["too short"] * n,
        }
    )


def _rendered(df: pl.DataFrame) -> bytes:
    buf = io.BytesIO()
    write_jsonl(public_dropped(df), buf)
    return buf.getvalue()


def test_a_rendering_is_taken_only_while_its_checkpoint_and_base_are_unchanged(tmp_path: Path) -> None:
    store = CheckpointStore(base_dir=str(tmp_path / "ck"))
    plain, selected, base_path = (store.path(["p", name], "s0", "dropped") for name in ("plain", "sel", "base"))
    store.write(_dropped(20), plain)
    base_frame = _dropped(40, start=100)
    base_meta = store.write(base_frame, base_path)
    # a selection of its base: its meaning changes when the base is rewritten, its own bytes do not
    store.write(base_frame.slice(5, 10), selected, base=Base(base_path, base_meta, base_frame))
    assert CheckpointMeta.load(selected).base is not None
    FRAMES.clear()

    ahead = ExportAhead(store)
    ahead.submit([plain, selected, store.path(["p", "missing"], "s0", "dropped")])
    assert ahead.wait(timeout=60)
    ahead.finish()
    taken = ahead.take(plain)
    assert taken is not None and taken.rows == 20
    assert taken.counts == (("b_filter", FILTERED, 7), ("a_filter", FILTERED, 13))  # in order of first row
    # a file per op, in the order the step's ops dropped rows: the export lays the side file out op by op
    frame = store.read(plain)
    assert [(op, file.read_bytes()) for op, file in taken.files] == [
        (op, _rendered(frame.filter(pl.col(DROP_OP) == op))) for op in ("b_filter", "a_filter")
    ]
    sel = ahead.take(selected)
    assert sel is not None and b"".join(f.read_bytes() for _, f in sel.files) == b"".join(
        _rendered(base_frame.slice(5, 10).filter(pl.col(DROP_OP) == op)) for op in ("b_filter", "a_filter")
    )
    assert ahead.take(store.path(["p", "missing"], "s0", "dropped")) is None

    store.write(_dropped(21), plain)  # rewritten since it was rendered
    assert ahead.take(plain) is None
    store.write(_dropped(40, start=500), base_path)  # the base of the selection rewritten
    assert ahead.take(selected) is None
    ahead.close()
    assert not ahead.spool.exists()


def test_rows_made_from_a_parent_row_and_rows_past_the_budget_are_left_to_the_export(tmp_path: Path) -> None:
    store = CheckpointStore(base_dir=str(tmp_path / "ck"))
    parent, first, second = (store.path(["p", n], "s0", "dropped") for n in ("chunks", "one", "two"))
    store.write(_dropped(4).with_columns(pl.lit("r0").alias(PARENT_ID)), parent)
    store.write(_dropped(30), first)
    store.write(_dropped(30, start=30), second)
    ahead = ExportAhead(store, budget_bytes=1)  # full after its first rendering
    ahead.submit([parent, first, second])
    assert ahead.wait(timeout=60)
    ahead.finish()
    assert ahead.take(parent) is None  # the export counts its created rows from the frame
    assert ahead.take(first) is not None
    assert ahead.take(second) is None
    ahead.close()


def test_a_spool_left_by_a_killed_job_is_removed_by_the_next(tmp_path: Path) -> None:
    store = CheckpointStore(base_dir=str(tmp_path / "ck"))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = Path(store.base_dir) / f"{SPOOL_PREFIX}{dead.stdout.strip()}-1"
    alive = Path(store.base_dir) / f"{SPOOL_PREFIX}{os.getppid()}-1"  # another live process's: kept
    for d in (left, alive):
        d.mkdir(parents=True)
        (d / "000000.jsonl").write_text("{}\n")
    ahead = ExportAhead(store)
    assert not left.exists() and alive.exists() and ahead.spool.exists()
    ahead.close()


def test_a_job_whose_export_fails_leaves_no_spool(tmp_path: Path, sluice_home: Path) -> None:
    recipe = _recipe(tmp_path)
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the export directory should be")
    raw = yaml.safe_load(recipe.read_text())
    raw["export_path"] = str(blocker / "kept.jsonl")
    recipe.write_text(yaml.safe_dump(raw))
    started: list[ExportAhead] = []
    start = export_ahead.start

    def recorded(store: CheckpointStore) -> ExportAhead:
        started.append(start(store))
        return started[-1]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(export_ahead, "start", recorded)
        with pytest.raises(RunFailedError):
            run_recipe(recipe, echo=lambda _: None)
    assert len(started) == 1
    assert not started[0].spool.exists() and export_ahead._CURRENT is None


def test_a_side_file_is_its_parts_in_order_rendered_on_threads_and_copied(tmp_path: Path, monkeypatch) -> None:
    """`write_side_file` renders frames on threads and copies spooled files with the kernel's `sendfile`: the
    file is every part's bytes in the given order, as writing them one by one gives, with or without sendfile."""
    from pipeline_defs import export

    frames = [
        pl.DataFrame({"id": [f"{i}-{j}" for j in range(n)], "text": [f"t{i} é\n{j}" * (j + 1) for j in range(n)]})
        for i, n in enumerate((3, 0, 500, 1, 40))
    ]
    spooled = []
    for i in range(3):
        spooled.append(tmp_path / f"spool{i}.jsonl")
        spooled[-1].write_bytes(b"".join(b'{"spooled":%d,"row":%d}\n' % (i, j) for j in range(100 * i)))
    parts = [frames[0], spooled[0], frames[1], frames[2], spooled[1], spooled[2], frames[3], frames[4]]
    expected = io.BytesIO()
    for part in parts:
        if isinstance(part, Path):
            expected.write(part.read_bytes())
        else:
            write_jsonl(part, expected)
    # the digest it returns, of the bytes as it wrote them, is the one `file_digest` reads back from the file
    assert export.write_side_file(parts, tmp_path / "side.jsonl") == file_digest(tmp_path / "side.jsonl")
    assert (tmp_path / "side.jsonl").read_bytes() == expected.getvalue()

    def refuse(*_args):
        raise OSError("no sendfile here")

    monkeypatch.setattr(export.os, "sendfile", refuse)
    assert export.write_side_file(parts, tmp_path / "side2.jsonl") == file_digest(tmp_path / "side2.jsonl")
    assert (tmp_path / "side2.jsonl").read_bytes() == expected.getvalue()
    assert export.write_side_file([], tmp_path / "empty.jsonl") == file_digest(tmp_path / "empty.jsonl") == (0, ANY)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no temp file left


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_the_export_checkpoint_records_the_digests_of_the_files_as_written_without_reading_them(
    tmp_path: Path, monkeypatch, suffix: str
) -> None:
    """`write_rows` and `write_side_file` return each file's (bytes, xxh3) as they write it; `record_export` stores
    those (it reads no file back) and `export_is_current`, which does read them, finds the export current."""
    from types import SimpleNamespace

    from pipeline_defs import export

    out = tmp_path / f"out{suffix}"
    frames = [pl.DataFrame({"id": [str(i)], "text": [f"row {i} é"]}) for i in range(3)]
    written = export.write_rows(frames, out)
    assert written.rows == 3 and written.digest == file_digest(out)
    recipe = SimpleNamespace(export_path=str(out))  # all `record_export` reads of a recipe
    files = {str(out): written.digest}
    for what in ("dropped", "quarantine"):
        side = export.sidecar(out, what)
        files[str(side)] = export.write_side_file(frames[:2], side)
    report = export.ExportReport(str(out), 3, {}, {}, files=files)
    store = CheckpointStore(base_dir=str(tmp_path / "ck"))

    def no_read(path: Path):
        raise AssertionError(f"record_export read {path} back")

    monkeypatch.setattr(export, "file_digest", no_read)
    export.record_export(store, ["export"], recipe, report, "fp")
    # unchanged files are known by their stat (device, inode, size, mtime, ctime): nothing is read back
    assert export.export_is_current(store, ["export"], "fp")
    monkeypatch.undo()
    with open(export.sidecar(out, "dropped"), "ab") as fh:
        fh.write(b"\n")
    assert not export.export_is_current(store, ["export"], "fp")


def test_an_export_file_changed_in_place_is_not_current_even_with_its_size_and_mtime_restored(tmp_path: Path) -> None:
    """The same bytes count, the old mtime put back (`os.utime`): the ctime still moved, so the file is hashed
    again and found changed. A file whose stat moved but whose bytes did not (`touch`) is still current."""
    from types import SimpleNamespace

    from pipeline_defs import export

    out = tmp_path / "out.jsonl"
    written = export.write_rows([pl.DataFrame({"id": ["1", "2"], "text": ["abc", "def"]})], out)
    files = {str(out): written.digest}
    for what in ("dropped", "quarantine"):
        files[str(export.sidecar(out, what))] = export.write_side_file([], export.sidecar(out, what))
    store = CheckpointStore(base_dir=str(tmp_path / "ck"))
    report = export.ExportReport(str(out), 2, {}, {}, files=files)
    export.record_export(store, ["export"], SimpleNamespace(export_path=str(out)), report, "fp")
    assert export.export_is_current(store, ["export"], "fp")

    before = out.stat()
    os.utime(out, ns=(before.st_atime_ns, before.st_mtime_ns + 1))  # touched: stat moved, bytes the same
    assert export.export_is_current(store, ["export"], "fp")
    data = out.read_bytes()
    with open(out, "r+b") as fh:
        fh.write(data.replace(b"abc", b"xyz"))
    os.utime(out, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (out.stat().st_size, out.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert not export.export_is_current(store, ["export"], "fp")
