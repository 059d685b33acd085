"""Fault-tolerance drills. Each asserts that counts reconcile and that the output equals an uninterrupted run.

Drills run real Dagster runs on a persistent SQLite instance in a temp home, on a small corpus of real text
(the demo corpus builder's comments file is too big for quick drills, so the corpus is made from this
test suite's own docstring-like sentences with natural duplicates).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import pytest
import yaml

from pipeline_defs.execute import RunFailedError, run_recipe
from pipeline_defs.shards import discover_shards
from tests.conftest import ROOT

DRILL_OPS = ROOT / "tests" / "drills" / "drill_ops.py"
WORDS = (
    "Return the parsed value of the field; raise ValueError when the input is not a valid number. "
    "See https://docs.python.org/3/library/json.html for the format. The cache is cleared on exit."
).split(" ")
pytestmark = pytest.mark.slow


def _corpus(path: Path, bad_lines: bool = False) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for f, n in (("a.jsonl", 70), ("b.jsonl", 50)):
        lines = []
        for i in range(n):
            k = (i * 7 + len(f)) % 23
            text = " ".join(WORDS[k : k + 3 + i % 11]) if i % 9 else "  Short  "
            lines.append(json.dumps({"text": text, "n": i}))
        if bad_lines:
            lines[5:5] = ["{broken json", json.dumps({"text": None}), json.dumps({"body": "no text"}), ""]
        (path / f).write_text("\n".join(lines) + "\n")
    return path


def _recipe(tmp: Path, name: str, *, data: Path, ops: list[dict[str, Any]], **extra: Any) -> Path:
    recipe = {
        "project_name": name,
        "dataset_path": str(data),
        "export_path": str(tmp / "out" / f"{name}.jsonl"),
        "custom_operator_paths": [str(DRILL_OPS)],
        "partition": {"size": 35},
        "process": ops,
        **extra,
    }
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def _ops(counter: Path, *, min_len: int = 12, sleep_s: float = 0.0, flaky: dict | None = None) -> list[dict]:
    ops: list[dict] = [{"whitespace_normalization_mapper": None}]
    if flaky is not None:
        ops.append({"flaky_mapper": {"counter_dir": str(counter), **flaky}})
    ops += [
        {"counting_mapper": {"counter_dir": str(counter), "sleep_s": sleep_s}},
        {"text_length_filter": {"min_len": min_len}},
        {"document_deduplicator": {"lowercase": True}},
        {"words_num_filter": {"min_num": 2}},
    ]
    return ops


@pytest.fixture
def home(sluice_home: Path) -> Path:
    return sluice_home


def _reference_export(tmp: Path, monkeypatch: pytest.MonkeyPatch, data: Path, ops: list[dict], **extra: Any) -> bytes:
    """The same recipe run uninterrupted in a fresh home."""
    ref = tmp / "reference"
    monkeypatch.setenv("SLUICE_HOME", str(ref / "home"))
    monkeypatch.setenv("DAGSTER_HOME", str(ref / "home" / "dagster_home"))
    counter = ref / "counter"
    counter.mkdir(parents=True)
    ops = [
        {k: ({**v, "counter_dir": str(counter)} if v and "counter_dir" in v else v) for k, v in op.items()}
        for op in ops
        if "flaky_mapper" not in op
    ]
    report = run_recipe(_recipe(ref, "ref", data=data, ops=ops, **extra), echo=lambda _: None)
    return Path(report.recipe.export_path).read_bytes()


def _events(report_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (report_dir / "events.jsonl").read_text().splitlines()]


def _reconciles(export: dict[str, Any]) -> bool:
    return export["input"] == export["kept"] + export["filtered"] + export["duplicate"] + export["quarantined"]


def _calls(counter: Path) -> list[str]:
    path = counter / "calls.log"
    return [line.split()[1] for line in path.read_text().splitlines()] if path.exists() else []


def test_transient_failures_are_retried_with_backoff(tmp_path: Path, home: Path, monkeypatch) -> None:
    data, counter = _corpus(tmp_path / "data"), tmp_path / "counter"
    counter.mkdir()
    retry = {"max_retries": 3, "delay": 0.3, "backoff": "exponential"}
    ops = _ops(counter, flaky={"failures": 2})
    report = run_recipe(_recipe(tmp_path, "flaky", data=data, ops=ops, retry=retry), echo=lambda _: None)
    events = _events(report.job_dir)
    retries = [e for e in events if e["event_type"] == "op_retry"]
    assert [e["operation_name"] for e in retries] == ["op01_flaky_mapper"] * 2
    # Dagster's exponential backoff waits delay × (2^n − 1) before the n-th retry
    assert [round(e["metadata"]["seconds_to_wait"], 6) for e in retries] == [0.3, 0.9]
    # the retried attempt started no sooner than the backoff said
    starts = [e for e in events if e["event_type"] == "op_start" and e["operation_name"] == "op01_flaky_mapper"][:3]
    from datetime import datetime

    ts = [datetime.fromisoformat(e["timestamp"]).timestamp() for e in starts]
    assert ts[1] - ts[0] >= 0.3 and ts[2] - ts[1] >= 0.9
    assert _reconciles(report.export)
    expected = _reference_export(tmp_path, monkeypatch, data, ops)
    assert Path(report.recipe.export_path).read_bytes() == expected


def test_deterministic_errors_fail_fast_without_retry(tmp_path: Path, home: Path) -> None:
    data, counter = _corpus(tmp_path / "data"), tmp_path / "counter"
    counter.mkdir()
    ops = _ops(counter, flaky={"failures": 1, "error": "value"})
    path = _recipe(tmp_path, "det", data=data, ops=ops, retry={"max_retries": 3, "delay": 0.1})
    with pytest.raises(RunFailedError, match=r"deterministic drill failure.*not retried") as err:
        run_recipe(path, echo=lambda _: None)
    assert "sluice resume" in str(err.value)
    assert (counter / "flaky.count").read_text() == "1"  # one call, no retries
    job_dir = next((home / "jobs").iterdir())
    summary = json.loads((job_dir / "job_summary.json").read_text())
    assert summary["status"] == "failed"


def test_sigkill_mid_recipe_then_resume_reexecutes_only_unfinished_steps(
    tmp_path: Path, home: Path, monkeypatch
) -> None:
    data, counter = _corpus(tmp_path / "data"), tmp_path / "counter"
    counter.mkdir()
    ops = _ops(counter, sleep_s=0.4)
    path = _recipe(tmp_path, "killed", data=data, ops=ops)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline_defs.cli", "run", str(path)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    # the first line after the notice of the imported drill ops (custom_operator_paths) names the job
    first = next(line for line in proc.stdout if "custom_operator_paths: imported" not in line)
    job_id = first.split()[1].rstrip(":")
    deadline = time.time() + 120
    while len(_calls(counter)) < 2 and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _calls(counter)
    shards = len(discover_shards(str(data), 35))
    assert 2 <= len(before) < shards, before  # killed mid-recipe

    from pipeline_defs.execute import resume_job

    report = resume_job(job_id, echo=lambda _: None)
    after = _calls(counter)[len(before) :]
    assert report.job_id == job_id
    # every shard's counting step ran; the ones that had finished before the kill did not run again
    assert len(set(before) | set(after)) == shards
    assert len(set(before) & set(after)) <= 1  # at most the step in flight when killed
    assert len(after) <= shards - len(before) + 1
    assert _reconciles(report.export)
    assert (report.job_dir / "job_summary.json").exists()
    expected = _reference_export(tmp_path, monkeypatch, data, ops)
    assert Path(report.recipe.export_path).read_bytes() == expected


def _materializations(key: list[str]) -> int:
    instance = dg.DagsterInstance.get()
    return len(instance.fetch_materializations(dg.AssetKey(key), limit=1000).records)


def test_corrupted_checkpoint_is_detected_and_recomputed(tmp_path: Path, home: Path, monkeypatch) -> None:
    data, counter = _corpus(tmp_path / "data"), tmp_path / "counter"
    counter.mkdir()
    ops = _ops(counter)
    path = _recipe(tmp_path, "corrupt", data=data, ops=ops)
    first = run_recipe(path, echo=lambda _: None)
    ck = home / "checkpoints" / "corrupt" / "op01_counting_mapper"
    victim = sorted(ck.glob("*.parquet"))[2]
    victim.write_bytes(victim.read_bytes()[:-50])  # truncated
    before = {
        name: _materializations(["corrupt", name])
        for name in ("op00_whitespace_normalization_mapper", "op01_counting_mapper")
    }
    messages: list[str] = []
    second = run_recipe(path, echo=messages.append)
    assert any("corrupt" in m and "recomputing" in m for m in messages)
    assert (
        _materializations(["corrupt", "op00_whitespace_normalization_mapper"])
        == before["op00_whitespace_normalization_mapper"]
    )
    assert _materializations(["corrupt", "op01_counting_mapper"]) == before["op01_counting_mapper"] + 1
    invalid = [e for e in _events(second.job_dir) if e["event_type"] == "checkpoint_invalid"]
    assert len(invalid) == 1 and invalid[0]["message"].startswith("corrupt")
    assert second.export == first.export or _reconciles(second.export)
    expected = _reference_export(tmp_path, monkeypatch, data, ops)
    assert Path(second.recipe.export_path).read_bytes() == expected


def test_bad_input_is_quarantined_and_nothing_is_lost(tmp_path: Path, home: Path, monkeypatch) -> None:
    data, counter = _corpus(tmp_path / "data", bad_lines=True), tmp_path / "counter"
    counter.mkdir()
    report = run_recipe(_recipe(tmp_path, "bad", data=data, ops=_ops(counter)), echo=lambda _: None)
    e = report.export
    assert e["quarantined"] == 8 and _reconciles(e)
    quarantine = pl.read_ndjson(tmp_path / "out" / "bad.quarantine.jsonl", infer_schema_length=None)
    assert quarantine.height == 8
    assert set(quarantine["line"]) == {6, 7, 8, 9}
    assert set(quarantine["file"].map_elements(lambda f: Path(f).name, return_dtype=pl.String)) == {
        "a.jsonl",
        "b.jsonl",
    }
    assert quarantine["sluice_reason"].null_count() == 0
    summary = json.loads((report.job_dir / "job_summary.json").read_text())
    assert summary["counts"]["quarantined"] == 8
    for counts in summary["per_partition"].values():
        assert counts["input"] == counts["kept"] + counts["filtered"] + counts["duplicates"] + counts["quarantined"]
    # the kept texts equal those of the same recipe on the clean input
    clean = _reference_export(tmp_path, monkeypatch, _corpus(tmp_path / "clean"), _ops(counter))
    kept = pl.read_ndjson(report.recipe.export_path)["text"].to_list()
    assert kept == [json.loads(line)["text"] for line in clean.decode().splitlines()]


def test_changed_threshold_recomputes_only_that_op_and_downstream(tmp_path: Path, home: Path, monkeypatch) -> None:
    data, counter = _corpus(tmp_path / "data"), tmp_path / "counter"
    counter.mkdir()
    run_recipe(_recipe(tmp_path, "thr", data=data, ops=_ops(counter, min_len=12)), echo=lambda _: None)
    calls = len(_calls(counter))
    upstream = {n: _materializations(["thr", n]) for n in ("source", "op01_counting_mapper", "op02_text_length_filter")}
    report = run_recipe(_recipe(tmp_path, "thr", data=data, ops=_ops(counter, min_len=40)), echo=lambda _: None)
    assert len(_calls(counter)) == calls  # the op before the changed one did not run
    assert _materializations(["thr", "source"]) == upstream["source"]
    assert _materializations(["thr", "op01_counting_mapper"]) == upstream["op01_counting_mapper"]
    shards = len(discover_shards(str(data), 35))
    assert _materializations(["thr", "op02_text_length_filter"]) == upstream["op02_text_length_filter"] + shards
    assert set(report.funnel) == {"op02_text_length_filter", "op03_document_deduplicator", "op04_words_num_filter"}
    expected = _reference_export(tmp_path, monkeypatch, data, _ops(counter, min_len=40))
    assert Path(report.recipe.export_path).read_bytes() == expected


@pytest.mark.parametrize(
    "checkpoint",
    [
        {"strategy": "every_partition"},
        {"strategy": "every_n_ops", "n_ops": 2},
        {"strategy": "manual", "op_names": ["counting_mapper"]},
        {"strategy": "disabled"},
    ],
    ids=lambda c: c["strategy"],
)
def test_checkpoint_strategies_give_the_same_output(tmp_path: Path, home: Path, monkeypatch, checkpoint) -> None:
    data, counter = _corpus(tmp_path / "data"), tmp_path / "counter"
    counter.mkdir()
    report = run_recipe(
        _recipe(tmp_path, "strat", data=data, ops=_ops(counter), checkpoint=checkpoint), echo=lambda _: None
    )
    # fused steps still report every op
    assert list(report.funnel) == [
        "source",
        "op00_whitespace_normalization_mapper",
        "op01_counting_mapper",
        "op02_text_length_filter",
        "op03_document_deduplicator",
        "op04_words_num_filter",
    ]
    assert _reconciles(report.export)
    steps = (
        {p.name for p in (home / "checkpoints" / "strat").iterdir()} if checkpoint["strategy"] != "disabled" else set()
    )
    if checkpoint["strategy"] == "every_partition":
        assert "op00_to_op02" in steps and "op03_to_op04" in steps
    if checkpoint["strategy"] == "disabled":
        assert sorted(p.name for p in (home / "checkpoints" / "strat").iterdir()) == ["export"]
    expected = _reference_export(tmp_path, monkeypatch, data, _ops(counter))
    assert Path(report.recipe.export_path).read_bytes() == expected
    # the dropped rows too, byte for byte: op by op, each op's in input order, however the ops share steps
    dropped = Path(report.recipe.export_path).with_name("strat.dropped.jsonl").read_bytes()
    assert dropped == (tmp_path / "reference" / "out" / "ref.dropped.jsonl").read_bytes()


def _long_corpus(path: Path) -> Path:
    """Documents long enough that a filter's checkpoint is stored as a selection (the text is most bytes)."""
    path.mkdir(parents=True, exist_ok=True)
    for f, n, first in (("a.jsonl", 60, 0), ("b.jsonl", 40, 100)):
        lines = []
        for i in range(n):
            words = [WORDS[(i * 5 + j * 3 + len(f)) % len(WORDS)] for j in range(20 + i % 40)]
            text = (" " if i % 5 else "\u2009").join(words if i % 7 else words[:3])  # a fifth: thin spaces
            lines.append(json.dumps({"text": text, "n": first + i}))
        (path / f).write_text("\n".join(lines) + "\n")
    return path


def test_filter_checkpoints_are_selections_and_rebuild_the_same_export(tmp_path: Path, home: Path, monkeypatch) -> None:
    from resources import storage
    from resources.storage import FRAMES, CheckpointMeta, CheckpointStore

    data, counter = _long_corpus(tmp_path / "data"), tmp_path / "counter"
    counter.mkdir()
    ops = _ops(counter, min_len=60)
    ops[2] = {"text_length_filter": {"min_len": 60, "max_len": 250}}  # drops long documents too
    path = _recipe(tmp_path, "sel", data=data, ops=ops)
    first = run_recipe(path, echo=lambda _: None)
    root = home / "checkpoints"
    ck = root / "sel"
    shards = sorted(p.name for p in (ck / "op02_text_length_filter").glob("*.parquet") if ".dropped" not in p.name)
    assert len(shards) == len(discover_shards(str(data), 35)) == 4
    selections = 0
    for shard in shards:
        # the filter's kept and dropped rows are positions in the counting mapper's checkpoint (none: empty part)
        for part in (shard, shard.replace(".parquet", ".dropped.parquet")):
            meta = CheckpointMeta.load(ck / "op02_text_length_filter" / part)
            assert meta is not None and meta.base == (f"sel/op01_counting_mapper/{shard}" if meta.rows else None)
            selections += meta.base is not None
        # The mappers: whitespace normalization rewrote a fifth of the texts, stored alone (the rest are the
        # source's); the counting mapper upper-cased most texts' first letter: written whole.
        normalized = CheckpointMeta.load(ck / "op00_whitespace_normalization_mapper" / shard)
        assert normalized.base == f"sel/source/{shard}" and normalized.patched == ["text"]
        assert CheckpointMeta.load(ck / "op01_counting_mapper" / shard).base is None
    assert selections >= 6
    out = Path(first.recipe.export_path)
    files = {p.name: p.read_bytes() for p in out.parent.glob("sel.*")}
    # The same recipe with every checkpoint written whole, in a fresh home: the same three files.
    share = storage.SELECTION_MIN_SHARE
    monkeypatch.setattr(storage, "SELECTION_MIN_SHARE", 2.0)
    expected = _reference_export(tmp_path, monkeypatch, data, ops)
    assert not any(CheckpointMeta.load(p).base for p in (tmp_path / "reference").rglob("*.parquet"))
    monkeypatch.setattr(storage, "SELECTION_MIN_SHARE", share)
    monkeypatch.setenv("SLUICE_HOME", str(home))
    monkeypatch.setenv("DAGSTER_HOME", str(home / "dagster_home"))
    assert files["sel.jsonl"] == expected
    ref = {p.name.replace("ref.", "sel."): p.read_bytes() for p in (tmp_path / "reference" / "out").glob("ref.*")}
    assert files == ref

    # Export again from the checkpoints on disk alone: every selection rebuilt through its chain.
    FRAMES.clear()
    for p in out.parent.glob("sel.*"):
        p.unlink()
    again = run_recipe(path, echo=lambda _: None)
    assert {p.name: p.read_bytes() for p in out.parent.glob("sel.*")} == files
    assert set(again.funnel) <= {"export"}

    # A base written again with other bytes for the same rows (here: another compression), under a valid sidecar:
    # the selections of it are recomputed, never rebuilt from bytes they were not written from.
    victim = ck / "op01_counting_mapper" / shards[0]
    selection = ck / "op02_text_length_filter" / shards[0]
    rows = CheckpointStore(base_dir=str(root)).read(selection)
    old_hash = CheckpointMeta.load(victim).xxh3
    snappy = CheckpointStore(base_dir=str(root), compression="snappy")
    snappy.write(snappy.read(victim), victim, CheckpointMeta.load(victim).fingerprint)
    assert CheckpointMeta.load(victim).xxh3 != old_hash
    FRAMES.clear()
    before = _materializations(["sel", "op02_text_length_filter"])
    third = run_recipe(path, echo=lambda _: None)
    invalid = [e for e in _events(third.job_dir) if e["event_type"] == "checkpoint_invalid"]
    assert [(e["operation_name"], e["partition_id"]) for e in invalid] == [
        ("op02_text_length_filter", shards[0].removesuffix(".parquet"))
    ]
    assert "rewritten" in invalid[0]["message"]
    assert _materializations(["sel", "op02_text_length_filter"]) == before + 1
    assert CheckpointMeta.load(selection).base_xxh3 == CheckpointMeta.load(victim).xxh3
    FRAMES.clear()
    assert CheckpointStore(base_dir=str(root)).read(selection).equals(rows)
    assert {p.name: p.read_bytes() for p in out.parent.glob("sel.*")} == files
    assert _reconciles(third.export)


def test_the_source_checkpoint_refers_to_the_input_and_a_resume_reads_the_input_again(
    tmp_path: Path, home: Path
) -> None:
    import gzip

    from resources.storage import FRAMES, CheckpointMeta

    data, counter = _long_corpus(tmp_path / "data"), tmp_path / "counter"
    counter.mkdir()
    path = _recipe(tmp_path, "ref", data=data, ops=_ops(counter))
    first = run_recipe(path, echo=lambda _: None)
    out = Path(first.recipe.export_path)
    files = {p.name: p.read_bytes() for p in out.parent.glob("ref.*")}
    source = home / "checkpoints" / "ref" / "source"
    sidecars = sorted(source.glob("*.parquet.meta.json"))
    assert len(sidecars) == 4
    for sidecar in sidecars:  # each holds a reference to its shard's lines, not the documents
        meta = CheckpointMeta.load(sidecar.with_name(sidecar.name.removesuffix(".meta.json")))
        assert meta.input == "shard" and meta.rows >= 5 and meta.bytes < 2000
    # The first op's checkpoints lost: the source is reused, its rows read again from the input, the export the same.
    for p in (home / "checkpoints" / "ref" / "op00_whitespace_normalization_mapper").iterdir():
        p.unlink()
    FRAMES.clear()
    again = run_recipe(path, echo=lambda _: None)
    assert {p.name: p.read_bytes() for p in out.parent.glob("ref.*")} == files
    assert "source" not in again.funnel and "op00_whitespace_normalization_mapper" in again.funnel
    # A .jsonl.gz input is read whole for any of its shards: its source checkpoints hold the rows themselves.
    gz = tmp_path / "gz"
    gz.mkdir()
    for f in data.glob("*.jsonl"):
        (gz / f"{f.name}.gz").write_bytes(gzip.compress(f.read_bytes()))
    run_recipe(_recipe(tmp_path, "gz", data=gz, ops=_ops(counter)), echo=lambda _: None)
    for p in (home / "checkpoints" / "gz" / "source").glob("*.parquet"):
        meta = CheckpointMeta.load(p)
        assert meta.input is None and pl.read_parquet(p).height == meta.rows


def test_jsonl_checkpoints_give_the_same_output(tmp_path: Path, home: Path, monkeypatch) -> None:
    """`storage.format: jsonl` through a whole recipe (a dedup's binary hashes included), read back from disk."""
    from resources.storage import FRAMES

    data, counter = _corpus(tmp_path / "data"), tmp_path / "counter"
    counter.mkdir()
    path = _recipe(tmp_path, "js", data=data, ops=_ops(counter), storage={"format": "jsonl", "compression": "gzip"})
    report = run_recipe(path, echo=lambda _: None)
    hashes = home / "checkpoints" / "js" / "op03_document_deduplicator__hashes"
    assert sorted(p.name for p in hashes.glob("*.jsonl.gz"))
    FRAMES.clear()  # the export below reads every checkpoint from disk
    Path(report.recipe.export_path).unlink()
    (home / "checkpoints" / "js" / "export" / "__all__.jsonl.gz").unlink()
    again = run_recipe(path, echo=lambda _: None)
    assert _reconciles(again.export)
    expected = _reference_export(tmp_path, monkeypatch, data, _ops(counter))
    assert Path(again.recipe.export_path).read_bytes() == expected
