"""Issue 11's reproducers, each a regression test: damaged exports, blocking reconciliation, exports inside the
input, concurrent first runs, SIGTERM, export errors that name their cause, a bad recipe beside good ones, the
recipe's engine settings reaching the compute pool, and the quarantine event."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from pipeline_defs.cli import main
from pipeline_defs.execute import RunFailedError, run_recipe
from pipeline_defs.graph import build_recipe_graph, compute_pool
from pipeline_defs.loader import definitions_for, loadable
from pipeline_defs.recipe import RecipeError, load_recipe
from resources.planner import OpPlan
from tests.conftest import ROOT
from tests.test_fault_tolerance import _calls, _corpus, _events, _ops, _recipe

pytestmark = pytest.mark.slow


def test_a_lost_dropped_part_is_noticed_and_recomputed(tmp_path: Path, sluice_home: Path) -> None:
    data, counter = _corpus(tmp_path / "data"), tmp_path / "counter"
    counter.mkdir()
    path = _recipe(tmp_path, "lost", data=data, ops=_ops(counter))
    first = run_recipe(path, echo=lambda _: None)
    good = Path(first.recipe.export_path).with_name("lost.dropped.jsonl").read_bytes()
    part = sorted((sluice_home / "checkpoints" / "lost" / "op02_text_length_filter").glob("*.dropped.parquet"))[0]
    part.unlink()
    messages: list[str] = []
    run_recipe(path, echo=messages.append)
    assert any("dropped rows" in m and "recomputing" in m for m in messages)
    assert Path(first.recipe.export_path).with_name("lost.dropped.jsonl").read_bytes() == good


def test_a_truncated_export_and_a_deleted_side_file_are_rewritten(tmp_path: Path, sluice_home: Path) -> None:
    data, counter = _corpus(tmp_path / "data"), tmp_path / "counter"
    counter.mkdir()
    path = _recipe(tmp_path, "dmg", data=data, ops=_ops(counter))
    first = run_recipe(path, echo=lambda _: None)
    export = Path(first.recipe.export_path)
    dropped = export.with_name("dmg.dropped.jsonl")
    good_export, good_dropped = export.read_bytes(), dropped.read_bytes()
    export.write_text("".join(good_export.decode().splitlines(keepends=True)[:10]))
    dropped.unlink()
    second = run_recipe(path, echo=lambda _: None)
    assert export.read_bytes() == good_export and dropped.read_bytes() == good_dropped
    assert second.export["kept"] == len(good_export.decode().splitlines())
    assert len(_calls(counter)) == first.partitions  # only the export was rewritten; no op ran again


def test_rows_that_do_not_reconcile_fail_the_job_with_the_counts(tmp_path: Path, sluice_home: Path) -> None:
    data, counter = _corpus(tmp_path / "data"), tmp_path / "counter"
    counter.mkdir()
    path = _recipe(tmp_path, "rec", data=data, ops=_ops(counter))
    first = run_recipe(path, echo=lambda _: None)
    # the source's record says one row more than the ops accounted for; then make the export recompute
    sidecar = sorted((sluice_home / "checkpoints" / "rec" / "source").glob("a.jsonl*.parquet.meta.json"))[0]
    meta = json.loads(sidecar.read_text())
    sidecar.write_text(json.dumps({**meta, "rows": meta["rows"] + 1}))
    Path(first.recipe.export_path).write_text("")
    with pytest.raises(RunFailedError, match=r"rows do not reconcile in 1 shards: .*: input \d+ != kept \d+"):
        run_recipe(path, echo=lambda _: None)
    assert main(["run", str(path)]) == 1
    # the newest job's summary (job ids sort by the second they started in, then by a random suffix)
    newest = max((sluice_home / "jobs").glob("*_rec_*/job_summary.json"), key=lambda p: p.stat().st_mtime_ns)
    summary = json.loads(newest.read_text())
    assert summary["status"] == "failed" and "reconcile" in summary["error"]


def test_an_export_inside_the_input_is_refused_at_validation(tmp_path: Path) -> None:
    data = _corpus(tmp_path / "data")
    path = _recipe(tmp_path, "inside", data=data, ops=[{"text_length_filter": None}])
    raw = yaml.safe_load(path.read_text())
    raw["export_path"] = str(data / "out" / "inside.jsonl")
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(RecipeError, match="is inside dataset_path"):
        load_recipe(path)
    raw["dataset_path"], raw["export_path"] = str(data / "*.jsonl"), str(data / "clean.jsonl")
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(RecipeError, match="would read the export back as input"):
        load_recipe(path)


def test_concurrent_first_runs_share_one_home_and_do_the_work_once(tmp_path: Path, sluice_home: Path) -> None:
    data, counter = _corpus(tmp_path / "data"), tmp_path / "counter"
    counter.mkdir()
    path = _recipe(tmp_path, "twice", data=data, ops=_ops(counter))
    env = {**os.environ, "SLUICE_HOME": str(sluice_home), "DAGSTER_HOME": str(sluice_home / "dagster_home")}
    cmd = [sys.executable, "-m", "pipeline_defs.cli", "run", str(path)]
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)]
    procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    assert len(_calls(counter)) == 4  # each shard through the op once, not twice
    assert sum("every step's checkpoint was valid" in o[0] for o in outs) == 1
    assert main(["plan", str(path)]) == 0  # the home still works


@pytest.mark.parametrize(
    ("executor", "signum"), [("in_process", signal.SIGTERM), ("multiprocess", signal.SIGINT)], ids=["in_process", "mp"]
)
def test_a_signal_stops_the_job_and_prints_the_resume_command(
    tmp_path: Path, sluice_home: Path, executor: str, signum: signal.Signals
) -> None:
    """SIGTERM or SIGINT (Ctrl-C) to `sluice run`: exit 130, "interrupted", the resume command. With
    `--executor multiprocess` the step runs in a process forked from the forkserver, which Dagster stops."""
    data, counter = _corpus(tmp_path / "data"), tmp_path / "counter"
    counter.mkdir()
    path = _recipe(tmp_path, "term", data=data, ops=_ops(counter, sleep_s=2.0))
    env = {**os.environ, "SLUICE_HOME": str(sluice_home), "DAGSTER_HOME": str(sluice_home / "dagster_home")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline_defs.cli", "run", str(path), "--executor", executor],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not _calls(counter) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _calls(counter), "the op never started"
    sent = time.monotonic()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - sent < 20
    assert proc.returncode == 130, err[-2000:]
    assert "interrupted; resume with: sluice resume" in err
    summary = json.loads(next((sluice_home / "jobs").glob("*_term_*/job_summary.json")).read_text())
    assert summary["status"] == "interrupted"


def test_a_run_interrupted_before_any_step_failed_reads_as_interrupted() -> None:
    """An interrupt that reaches a step process between its start and its step leaves no step failure: the run's
    own failure (DagsterExecutionInterruptedError) is the detail, so `sluice run` exits 130, not 1."""
    from dagster._core.errors import DagsterExecutionInterruptedError
    from dagster._core.events import DagsterEvent, DagsterEventType, JobFailureData
    from dagster._utils.error import serializable_error_info_from_exc_info

    from pipeline_defs.execute import failure_detail

    try:
        raise DagsterExecutionInterruptedError()
    except DagsterExecutionInterruptedError:
        error = serializable_error_info_from_exc_info(sys.exc_info())

    def run_failure(err: object) -> DagsterEvent:
        data = JobFailureData(error=err)  # type: ignore[arg-type]
        return DagsterEvent(event_type_value=DagsterEventType.RUN_FAILURE.value, job_name="j", event_specific_data=data)

    assert "Interrupt" in failure_detail([run_failure(error)])
    assert failure_detail([run_failure(None)]) == "see the run in the UI"


def test_an_export_failure_names_its_cause_and_path(tmp_path: Path, sluice_home: Path) -> None:
    data, counter = _corpus(tmp_path / "data"), tmp_path / "counter"
    counter.mkdir()
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the export directory should be")
    path = _recipe(tmp_path, "expfail", data=data, ops=_ops(counter), retry={"max_retries": 0})
    raw = yaml.safe_load(path.read_text())
    raw["export_path"] = str(blocker / "out.jsonl")
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(RunFailedError) as err:
        run_recipe(path, echo=lambda _: None)
    first_line = str(err.value).splitlines()[0]
    assert "NotADirectoryError" in first_line or "FileExistsError" in first_line
    assert str(blocker) in first_line
    assert "resume with: sluice resume" in str(err.value)


def test_a_bad_recipe_is_left_out_and_the_others_load(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("project_name: bad\ndataset_path: /x\nexport_path: /y.jsonl\nprocess:\n  - no_such_op_here:\n")
    with caplog.at_level(logging.ERROR, logger="sluice"):
        good = loadable([ROOT / "recipes" / "demo.yaml", bad])
    assert good == [ROOT / "recipes" / "demo.yaml"]
    assert any("bad.yaml left out" in r.getMessage() and "no_such_op_here" in r.getMessage() for r in caplog.records)
    assert definitions_for(good).resolve_job_def("demo_job") is not None
    assert main(["validate", str(tmp_path)]) == 2


def test_the_recipe_engine_section_reaches_the_compute_pool(tmp_path: Path, sluice_home: Path) -> None:
    data = _corpus(tmp_path / "data")
    path = _recipe(
        tmp_path,
        "eng",
        data=data,
        ops=[{"text_length_filter": None}],
        engine={"memory_safety_factor": 0.5, "max_batch_size": 7},
    )
    recipe = load_recipe(path)
    pool = compute_pool(recipe)
    assert pool.memory_safety_factor == 0.5 and pool.max_batch_size == 7
    request = OpPlan(
        op="x",
        accelerator="cpu",
        num_proc=1,
        num_cpus=1.0,
        num_gpus=0.0,
        memory_gb=None,
        pool="",
        source="explicit",
        batch_size=1000,
    )
    alloc = pool.allocate(request)
    assert alloc.batch_size == 7 and alloc.memory_safety_factor == 0.5
    graph = build_recipe_graph(recipe)
    assert graph.pool_key == "eng_compute_pool"


def test_quarantined_rows_emit_a_quarantine_event(tmp_path: Path, sluice_home: Path) -> None:
    data, counter = _corpus(tmp_path / "data", bad_lines=True), tmp_path / "counter"
    counter.mkdir()
    report = run_recipe(_recipe(tmp_path, "quar", data=data, ops=_ops(counter)), echo=lambda _: None)
    events = [e for e in _events(report.job_dir) if e["event_type"] == "quarantine"]
    assert sum(e["metadata"]["quarantined"] for e in events) == report.export["quarantined"] == 8
    assert {e["partition_id"] for e in events} <= {"a.jsonl@00000", "b.jsonl@00000"}
