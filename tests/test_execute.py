"""The execution model: range runs (one run per phase), per-shard reuse inside a step, engine settings that shape
runs, and the schedule and sensor that start them."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from pipeline_defs import prefetch
from pipeline_defs.execute import RunFailedError, instance_ready, run_recipe
from pipeline_defs.graph import build_recipe_graph
from pipeline_defs.loader import definitions_for
from pipeline_defs.recipe import load_recipe
from pipeline_defs.schedules import stale_request
from resources.storage import FRAMES
from tests.conftest import ROOT
from tests.test_fault_tolerance import _calls, _corpus, _events, _ops, _recipe

pytestmark = pytest.mark.slow


def _materializations(key: list[str]) -> list[dg.AssetMaterialization]:
    records = dg.DagsterInstance.get().fetch_materializations(dg.AssetKey(key), limit=1000).records
    return [r.asset_materialization for r in records if r.asset_materialization is not None]


def test_a_range_run_materializes_every_shard_once_in_one_run_per_phase(tmp_path: Path, sluice_home: Path) -> None:
    data, counter = _corpus(tmp_path / "data"), tmp_path / "counter"
    counter.mkdir()
    report = run_recipe(_recipe(tmp_path, "rng", data=data, ops=_ops(counter)), echo=lambda _: None)
    shards = report.partitions
    assert shards == 4
    # phases: source..hashes (partitioned), index, dedup filter..words_num (partitioned), export
    assert report.runs == 4
    assert sorted(_calls(counter)) == sorted({c for c in _calls(counter)}) and len(_calls(counter)) == shards
    mats = _materializations(["rng", "op01_counting_mapper"])
    assert sorted(m.partition for m in mats) == sorted(dg.DagsterInstance.get().get_dynamic_partitions("rng_shards"))
    run_ids = {
        r.run_id
        for r in dg.DagsterInstance.get()
        .fetch_materializations(dg.AssetKey(["rng", "op01_counting_mapper"]), limit=100)
        .records
    }
    assert len(run_ids) == 1  # one range run materialized every shard
    assert len(FRAMES) == 0  # the frames handed from step to step are let go when the job ends


def test_checkpoints_are_not_fsynced_but_the_export_and_job_files_are(
    tmp_path: Path, sluice_home: Path, fsync_calls: list[str]
) -> None:
    """A checkpoint is verified (size, hash) on every read, so one torn by a power loss is recomputed: no fsync.
    What the user takes away (the export and its side files) and the job's own records are fsynced."""
    synced = fsync_calls
    data, counter = _corpus(tmp_path / "data"), tmp_path / "counter"
    counter.mkdir()
    report = run_recipe(_recipe(tmp_path, "dur", data=data, ops=_ops(counter)), echo=lambda _: None)
    checkpoints = sluice_home / "checkpoints" / "dur"
    written = [p for p in checkpoints.rglob("*") if p.is_file()]
    assert len(written) > 4 * report.partitions  # every step wrote its shards' checkpoints and sidecars
    assert not [p for p in synced if p.startswith(str(checkpoints))]
    # atomic_write's temp file: ".<name>.<8 hex>.tmp" beside the file it becomes
    final = {str(Path(p).parent / Path(p).name[1:].rsplit(".", 2)[0]) for p in synced}
    out = tmp_path / "out"
    assert {str(out / f"dur{part}.jsonl") for part in ("", ".dropped", ".quarantine")} <= final
    assert str(sluice_home / "plans" / "dur.json") in final
    assert {"job.json", "job_summary.json"} <= {Path(p).name for p in final if "/jobs/" in p}


def test_an_unchanged_rerun_reports_the_same_job_without_opening_the_instance(
    tmp_path: Path, sluice_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline_defs.execute as execute

    data, counter = _corpus(tmp_path / "data"), tmp_path / "counter"
    counter.mkdir()
    path = _recipe(tmp_path, "same", data=data, ops=_ops(counter))
    first = run_recipe(path, echo=lambda _: None)

    def refuse() -> dg.DagsterInstance:
        raise AssertionError("the Dagster instance was opened")

    with monkeypatch.context() as patched:  # leaving it undoes this patch only (the home stays the test's)
        patched.setattr(execute, "instance_ready", refuse)
        again = run_recipe(path, echo=lambda _: None)
        assert (again.runs, again.steps, again.skipped) == (0, 0, first.steps)
        assert len(_calls(counter)) == first.partitions  # the counting op ran once per shard, in the first job
        before, after = (json.loads((r.job_dir / "job_summary.json").read_text()) for r in (first, again))
        for field in ("status", "counts", "per_partition", "per_op", "export_path"):
            assert after[field] == before[field], field
        before_start, after_start = (_events(r.job_dir)[0] for r in (first, again))
        assert after_start["metadata"]["pool_limits"] == before_start["metadata"]["pool_limits"]

        # a changed input needs the instance: one more line in one file
        with (data / "b.jsonl").open("a") as fh:
            fh.write(json.dumps({"text": "one more line of text for the changed input", "n": 99}) + "\n")
        with pytest.raises(AssertionError, match="instance was opened"):
            run_recipe(path, echo=lambda _: None)
    changed = run_recipe(path, echo=lambda _: None)
    assert str(changed.recipe.checkpoint_root).startswith(str(sluice_home))
    assert changed.runs > 0 and changed.export["input"] == first.export["input"] + 1


def test_a_retried_range_step_recomputes_only_the_shards_it_had_not_finished(tmp_path: Path, sluice_home: Path) -> None:
    data, counter = _corpus(tmp_path / "data"), tmp_path / "counter"
    counter.mkdir()
    # the flaky op fails on its 3rd call, i.e. on the 3rd shard of the range; the retry must not redo shards 1-2
    ops = _ops(counter, flaky={"fail_on_call": 3})
    report = run_recipe(
        _recipe(tmp_path, "retry", data=data, ops=ops, retry={"max_retries": 1, "delay": 0}), echo=lambda _: None
    )
    calls = int((counter / "flaky.count").read_text())
    assert calls == report.partitions + 1  # 4 shards, one of them twice
    assert [e["operation_name"] for e in _events(report.job_dir) if e["event_type"] == "op_retry"] == [
        "op01_flaky_mapper"
    ]
    reused = [m for m in _materializations(["retry", "op01_flaky_mapper"]) if m.metadata["reused_checkpoint"].value]
    assert len(reused) == 2  # the shards finished before the failure were reused inside the retried step


def test_max_partitions_per_run_splits_a_phase_into_runs(tmp_path: Path, sluice_home: Path) -> None:
    data, counter = _corpus(tmp_path / "data"), tmp_path / "counter"
    counter.mkdir()
    path = _recipe(
        tmp_path, "multi", data=data, ops=_ops(counter), engine={"max_partitions_per_run": 3, "max_parallel_runs": 1}
    )
    graph = build_recipe_graph(load_recipe(path))
    policy = graph.assets[0].backfill_policy
    assert policy is not None and policy.max_partitions_per_run == 3
    report = run_recipe(path, echo=lambda _: None)
    # 4 shards: ⌈4/3⌉ = 2 runs per partitioned phase, 1 per global stage
    assert report.runs == 2 + 1 + 2 + 1


def test_step_timeout_fails_the_step_naming_it(tmp_path: Path, sluice_home: Path) -> None:
    data, counter = _corpus(tmp_path / "data"), tmp_path / "counter"
    counter.mkdir()
    path = _recipe(
        tmp_path,
        "slow",
        data=data,
        ops=_ops(counter, sleep_s=0.4),
        engine={"step_timeout_s": 0.5},
        retry={"max_retries": 0},
    )
    with pytest.raises(RunFailedError) as err:
        run_recipe(path, echo=lambda _: None)
    assert "step op01_counting_mapper ran" in str(err.value) and "step_timeout_s=0.5" in str(err.value)


def test_schedule_tick_requests_only_missing_or_failed_shards(tmp_path: Path, sluice_home: Path) -> None:
    data, counter = _corpus(tmp_path / "data"), tmp_path / "counter"
    counter.mkdir()
    path = _recipe(tmp_path, "sched", data=data, ops=_ops(counter), schedule={"cron": "0 2 * * *"})
    defs = definitions_for([path])
    schedule = defs.resolve_schedule_def("sched_schedule")
    assert schedule.cron_schedule == "0 2 * * *"
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    instance = instance_ready()
    first = schedule.evaluate_tick(dg.build_schedule_context(instance=instance))
    ((req,),) = [first.run_requests]  # fresh: every shard is missing
    keys = instance.get_dynamic_partitions("sched_shards")
    assert (req.tags["dagster/asset_partition_range_start"], req.tags["dagster/asset_partition_range_end"]) == (
        keys[0],
        keys[-1],
    )
    run_recipe(path, echo=lambda _: None)
    assert schedule.evaluate_tick(dg.build_schedule_context(instance=instance)).skip_message
    # a shard whose checkpoint was lost (a failed or deleted step) is the only one requested
    ckpts = sluice_home / "checkpoints" / "sched" / "op02_text_length_filter"
    lost = sorted(p for p in ckpts.glob("*.parquet") if ".dropped." not in p.name)[2]
    lost.unlink()
    graph = build_recipe_graph(load_recipe(path))
    req = stale_request(instance, graph)
    assert isinstance(req, dg.RunRequest)
    shard = lost.name.removesuffix(".parquet").replace("%40", "@")
    assert req.tags["dagster/asset_partition_range_start"] == req.tags["dagster/asset_partition_range_end"] == shard
    assert req.tags["sluice/stale_shards"] == "1"


def test_sensor_registers_new_shards_and_requests_their_runs(tmp_path: Path, sluice_home: Path) -> None:
    data, counter = _corpus(tmp_path / "data"), tmp_path / "counter"
    counter.mkdir()
    path = _recipe(tmp_path, "sens", data=data, ops=_ops(counter), sensor={"request_runs": True})
    sensor = definitions_for([path]).resolve_sensor_def("sens_shards_sensor")
    instance = instance_ready()
    first = sensor(dg.build_sensor_context(instance=instance))
    assert len(first.run_requests) == 4
    instance.add_dynamic_partitions("sens_shards", [r.partition_key for r in first.run_requests])
    assert isinstance(sensor(dg.build_sensor_context(instance=instance)), dg.SkipReason)
    (data / "c.jsonl").write_text("\n".join(json.dumps({"text": f"new document number {i} here"}) for i in range(5)))
    second = sensor(dg.build_sensor_context(instance=instance))
    assert [r.partition_key for r in second.run_requests] == ["c.jsonl@00000"]
    (request,) = second.dynamic_partitions_requests
    assert list(request.partition_keys) == ["c.jsonl@00000"]


def test_sensor_unregisters_a_pack_renamed_when_a_file_joins_it(tmp_path: Path, sluice_home: Path) -> None:
    data, counter = _corpus(tmp_path / "data"), tmp_path / "counter"
    counter.mkdir()
    path = _recipe(tmp_path, "pk", data=data, ops=_ops(counter), sensor={"request_runs": True}, partition={})
    sensor = definitions_for([path]).resolve_sensor_def("pk_shards_sensor")
    instance = instance_ready()
    first = sensor(dg.build_sensor_context(instance=instance))
    assert [r.partition_key for r in first.run_requests] == ["a.jsonl@00000+1"]  # two small files, one shard
    instance.add_dynamic_partitions("pk_shards", ["a.jsonl@00000+1"])
    (data / "c.jsonl").write_text(json.dumps({"text": "a new document here"}) + "\n")
    second = sensor(dg.build_sensor_context(instance=instance))
    assert [r.partition_key for r in second.run_requests] == ["a.jsonl@00000+2"]
    add, delete = second.dynamic_partitions_requests
    assert list(add.partition_keys) == ["a.jsonl@00000+2"] and list(delete.partition_keys) == ["a.jsonl@00000+1"]


def test_packed_and_unpacked_shards_export_the_same_rows(tmp_path: Path, sluice_home: Path) -> None:
    data, counter = _corpus(tmp_path / "data", bad_lines=True), tmp_path / "counter"
    counter.mkdir()
    exports = _packed_and_single(tmp_path, data, counter)
    # the same three files, byte for byte (the dropped rows op by op, each op's in input order, whatever the shards)
    assert exports["packed"] == exports["single"]
    assert all(exports["packed"][:3]) and exports["packed"][3] == 128


def _packed_and_single(tmp_path: Path, data: Path, counter: Path) -> dict[str, list]:
    """The export, dropped and quarantine files' bytes and the input rows, packed and with a shard per file."""
    exports: dict[str, list] = {}
    for name, pack in (("packed", True), ("single", False)):
        path = _recipe(tmp_path, name, data=data, ops=_ops(counter), partition={"pack": pack})
        report = run_recipe(path, echo=lambda _: None)
        assert report.partitions == (1 if pack else 2)
        out = Path(report.recipe.export_path)
        exports[name] = [out.with_suffix(s).read_bytes() for s in (".jsonl", ".dropped.jsonl", ".quarantine.jsonl")]
        exports[name].append(report.export["input"])
    return exports


def test_packed_parquet_files_export_what_each_file_alone_exports(tmp_path: Path, sluice_home: Path) -> None:
    import polars as pl

    jsonl, data, counter = _corpus(tmp_path / "jsonl"), tmp_path / "data", tmp_path / "counter"
    data.mkdir()
    counter.mkdir()
    for f in sorted(jsonl.iterdir()):  # two Parquet files of one schema, one null text to quarantine
        rows = pl.read_ndjson(f)
        rows = rows.with_columns(text=pl.when(pl.col("n") == 3).then(None).otherwise("text")) if "a" in f.name else rows
        rows.write_parquet(data / f.name.replace(".jsonl", ".parquet"))
    exports = _packed_and_single(tmp_path, data, counter)
    assert exports["packed"] == exports["single"]  # the same three files, byte for byte
    kept, dropped, quarantined, rows = exports["packed"]
    assert kept and dropped and quarantined.count(b"\n") == 1 and b'"a.parquet:4"' in quarantined and rows == 120


def test_recipe_schedule_and_sensor_sections_are_validated(tmp_path: Path) -> None:
    from pipeline_defs.recipe import RecipeError, parse_recipe

    data = _corpus(tmp_path / "data")
    base = yaml.safe_load(_recipe(tmp_path, "v", data=data, ops=[{"text_length_filter": None}]).read_text())
    with pytest.raises(RecipeError, match="not a valid cron expression"):
        parse_recipe({**base, "schedule": {"cron": "every night"}})
    with pytest.raises(RecipeError, match="not a known time zone"):
        parse_recipe({**base, "schedule": {"cron": "0 2 * * *", "timezone": "Mars/Olympus"}})
    recipe = parse_recipe({**base, "schedule": {"cron": "0 2 * * *", "enabled": True, "timezone": "Europe/Paris"}})
    schedule = definitions_for_recipe(recipe)
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING and schedule.execution_timezone == "Europe/Paris"


def definitions_for_recipe(recipe) -> dg.ScheduleDefinition:
    from pipeline_defs.schedules import recipe_schedule

    schedule = recipe_schedule(build_recipe_graph(recipe))
    assert schedule is not None
    return schedule


def test_text_chunk_rows_reconcile_and_name_their_parent(tmp_path: Path, sluice_home: Path) -> None:
    """One row → many: the chunks carry their parent's id and the export reconciles input + created rows."""
    data = tmp_path / "data"
    data.mkdir()
    texts = ["first paragraph of one\n\nsecond paragraph of one", "a single paragraph", "x\n\ny\n\nz"]
    (data / "a.jsonl").write_text("".join(json.dumps({"text": t, "n": i}) + "\n" for i, t in enumerate(texts)))
    path = _recipe(
        tmp_path, "chunk", data=data, ops=[{"text_chunk_mapper": None}, {"text_length_filter": {"min_len": 2}}]
    )
    report = run_recipe(path, echo=lambda _: None)
    e = report.export
    # 3 rows → 2 + 1 + 3 chunks (3 created); "x", "y", "z" are too short
    assert (e["input"], e["kept"], e["filtered"]) == (3, 3, 3)
    assert e["per_partition"].records[0].data["created"] == 3
    rows = [json.loads(line) for line in Path(report.recipe.export_path).read_text().splitlines()]
    assert [r["text"] for r in rows] == ["first paragraph of one", "second paragraph of one", "a single paragraph"]
    assert [r.get("sluice_parent_id") for r in rows] == ["a.jsonl:1", "a.jsonl:1", None]
    assert [r["n"] for r in rows] == [0, 0, 1]


def test_shard_workers_spread_a_steps_shards_over_processes_with_the_same_output(
    tmp_path: Path, sluice_home: Path
) -> None:
    data = _corpus(tmp_path / "data")
    ops = [
        {"whitespace_normalization_mapper": None},
        {"text_length_filter": {"min_len": 12}},
        {"document_deduplicator": {"lowercase": True}},
    ]
    one = run_recipe(_recipe(tmp_path, "one", data=data, ops=ops), echo=lambda _: None)
    two = run_recipe(_recipe(tmp_path, "two", data=data, ops=ops, engine={"shard_workers": 2}), echo=lambda _: None)
    assert Path(two.recipe.export_path).read_bytes() == Path(one.recipe.export_path).read_bytes()
    pids = {m.metadata["worker_pid"].value for m in _materializations(["two", "op01_text_length_filter"])}
    assert len(pids) >= 1 and os.getpid() not in pids  # every shard ran in a worker process
    assert all("worker_pid" not in m.metadata for m in _materializations(["one", "op01_text_length_filter"]))
    # In this process, the source's shards were parsed while the job started (`prefetch`); with shard workers
    # the workers parse them. Either way the job lets go of what it prefetched when it ends.
    sources = _materializations(["one", "source"])
    assert len(sources) == one.partitions and all(m.metadata["prefetched"].value for m in sources)
    assert all(m.metadata["parse_seconds"].value > 0 for m in sources)
    assert all("prefetched" not in m.metadata for m in _materializations(["two", "source"]))
    # ... and so were the ops of the row steps before the first global stage (not those after it)
    ahead = _materializations(["one", "op01_text_length_filter"])
    assert len(ahead) == one.partitions and all(m.metadata["ran_ahead"].value for m in ahead)
    assert all(m.metadata["ahead_seconds"].value > 0 for m in ahead)
    assert all("ran_ahead" not in m.metadata for m in _materializations(["one", "op02_document_deduplicator"]))
    assert all("ran_ahead" not in m.metadata for m in _materializations(["two", "op01_text_length_filter"]))
    assert prefetch._current is None


def _stopped_forkserver() -> Any:
    """This process's forkserver, stopped and its preload list forgotten: a server an earlier test started (shard
    workers, the multiprocess executor) would otherwise answer for the next one."""
    import multiprocessing.forkserver

    from pipeline_defs import graph

    for pool in graph._POOLS.values():
        pool.shutdown()
    graph._POOLS.clear()
    server = multiprocessing.forkserver._forkserver
    server._stop()
    server._preload_modules = ["__main__"]
    return server


def test_sluice_run_starts_the_forkserver_as_it_plans_only_where_it_forks(
    tmp_path: Path, sluice_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The forkserver's imports run in a process of their own while `sluice run` opens the instance: started as
    soon as the job knows something must run, for the multiprocess executor or shard workers, never otherwise,
    and told which job's definitions to build for the step processes it forks."""
    import multiprocessing.forkserver

    from pipeline_defs import execute, graph

    data = _corpus(tmp_path / "data")
    ops = [{"whitespace_normalization_mapper": None}]
    plain_path = _recipe(tmp_path, "plain", data=data, ops=ops)
    workers_path = _recipe(tmp_path, "wk", data=data, ops=ops, engine={"shard_workers": 2})
    plain, workers = (build_recipe_graph(load_recipe(p)) for p in (plain_path, workers_path))
    server = _stopped_forkserver()
    started_with: list[str | None] = []  # the jobs the server was told to build, as its environment had them
    ensure_running = multiprocessing.forkserver.ensure_running

    def recording() -> None:
        started_with.append(os.environ.get(graph.FORKSERVER_JOBS))
        ensure_running()

    monkeypatch.setattr(multiprocessing.forkserver, "ensure_running", recording)
    assert execute._unchanged(plain, "in_process", plain_path) is None  # something must run
    prefetch.stop()
    assert server._forkserver_pid is None
    assert execute._unchanged(plain, "multiprocess", plain_path) is None
    assert server._forkserver_pid is not None and server._preload_modules == graph.FORKSERVER_PRELOAD
    assert [json.loads(s or "[]") for s in started_with] == [[[str(plain_path), "multiprocess", str(sluice_home)]]]
    assert graph.FORKSERVER_JOBS not in os.environ  # told the server only
    server = _stopped_forkserver()
    assert execute._unchanged(workers, "in_process", workers_path) is None
    assert server._forkserver_pid is not None


def test_the_multiprocess_executor_runs_each_step_in_a_process_forked_from_the_preloaded_server(
    tmp_path: Path, sluice_home: Path
) -> None:
    """`--executor multiprocess`: the same export as in-process, every step in a process of its own, forked from
    the server that imported `pipeline_defs.forkserver` (Dagster's default, `spawn`, started a fresh interpreter
    per step: 56.5 s against 22.9 s for the 10-op bench recipe, medians of 3)."""
    from pipeline_defs import graph

    server = _stopped_forkserver()
    data = _corpus(tmp_path / "data")
    ops = [{"whitespace_normalization_mapper": None}, {"document_deduplicator": {"lowercase": True}}]
    one = run_recipe(_recipe(tmp_path, "inproc", data=data, ops=ops), echo=lambda _: None)
    many = run_recipe(_recipe(tmp_path, "multi", data=data, ops=ops), executor="multiprocess", echo=lambda _: None)
    assert Path(many.recipe.export_path).read_bytes() == Path(one.recipe.export_path).read_bytes()
    instance = dg.DagsterInstance.get()
    runs = instance.get_runs(dg.RunsFilter(tags={"sluice/job_id": many.job_id}))
    assert len(runs) == many.runs
    pids = {
        step: e.dagster_event.event_specific_data.metadata["pid"].value
        for r in runs
        for e in instance.all_logs(r.run_id, of_type=dg.DagsterEventType.STEP_WORKER_STARTED)
        for step in [e.dagster_event.step_key]
    }
    steps = {
        s for r in runs for s in instance.get_execution_plan_snapshot(r.execution_plan_snapshot_id).step_keys_to_execute
    }
    assert set(pids) == steps
    assert str(os.getpid()) not in pids.values() and len(set(pids.values())) == len(pids)  # one process per step
    assert server._forkserver_pid is not None and server._preload_modules == graph.FORKSERVER_PRELOAD


def test_the_forkserver_preload_holds_what_a_step_process_needs() -> None:
    """The step process starts with the instance's storage (SQLAlchemy, alembic), every op registered, numba and
    Sluice's C library loaded: what a `spawn`ed step imported again."""
    import subprocess
    import sys

    probe = (
        "import sys, pipeline_defs.forkserver\n"
        "from ops_library import registry\n"
        "mods = ['sqlalchemy', 'alembic', 'resources.dagster_storage', 'numba', 'ops_library.native_kernels',"
        " 'pyarrow.compute', 'pipeline_defs.loader', 'pipeline_defs.graph']\n"
        "print([m for m in mods if m not in sys.modules], registry._loaded, len(registry.OPS))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, check=True)
    missing, loaded, ops = out.stdout.rsplit(" ", 2)
    assert (missing, loaded) == ("[]", "True")
    assert int(ops) >= 40


def test_the_forkserver_loads_the_c_library_and_the_class_tables_without_a_thread() -> None:
    """After the preload the C library is loaded and the class tables the code-point kernels read are computed
    (the text filters of a forked step find them), and loading them started no thread (a fork after that is safe)."""
    import subprocess
    import sys

    from ops_library import native_kernels

    if not native_kernels.available():
        pytest.skip("Sluice's C kernels are not built (no C compiler)")
    preload = (
        "import pipeline_defs.forkserver\n"
        "from ops_library import codepoints, native_kernels\n"
        "print(native_kernels.library.cache_info().currsize, codepoints.class_table.cache_info().currsize)"
    )
    out = subprocess.run([sys.executable, "-c", preload], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "1 2", out.stdout
    threads = (
        "import os\n"
        "from ops_library import codepoints\n"
        "before = len(os.listdir('/proc/self/task'))\n"
        "print(codepoints.warm_kernels(), len(os.listdir('/proc/self/task')) - before)"
    )
    out = subprocess.run([sys.executable, "-c", threads], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "True 0"


def test_the_forkserver_builds_the_jobs_it_was_told_of_for_the_steps_it_forks(
    tmp_path: Path, sluice_home: Path
) -> None:
    """A step process looks its job up in `loader`'s cache (the key: recipe content, executor, SLUICE_* environment)
    and finds the one the server built; the server's environment no longer names the jobs."""
    import subprocess
    import sys

    from pipeline_defs import graph

    path = _recipe(tmp_path, "fs", data=_corpus(tmp_path / "data"), ops=[{"whitespace_normalization_mapper": None}])
    probe = (
        "import os, sys\n"
        "import pipeline_defs.forkserver\n"
        "from pipeline_defs import loader\n"
        "built = loader._cached_definitions.cache_info().currsize\n"
        "job = loader.job_for_recipe(sys.argv[1], 'multiprocess', sys.argv[2])\n"
        "info = loader._cached_definitions.cache_info()\n"
        f"print(built, info.hits, info.currsize, {graph.FORKSERVER_JOBS!r} in os.environ, job.name)"
    )
    env = os.environ | {graph.FORKSERVER_JOBS: json.dumps([[str(path), "multiprocess", str(sluice_home)]])}
    out = subprocess.run(
        [sys.executable, "-c", probe, str(path), str(sluice_home)], env=env, capture_output=True, text=True, cwd=ROOT
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["1", "1", "1", "False", "fs_job"]


def test_a_step_cuts_each_shard_into_the_cpus_its_pool_grants_with_the_same_output(
    tmp_path: Path, sluice_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pipeline_defs.graph
    import resources.hardware

    monkeypatch.setattr(resources.hardware, "usable_cpus", lambda: 4)  # what the planner sees
    monkeypatch.setattr(pipeline_defs.graph, "usable_cpus", lambda: 4)  # what a step's allocation sees
    data = _corpus(tmp_path / "data")
    ops = [{"whitespace_normalization_mapper": None}, {"document_deduplicator": {"lowercase": True}}]
    runs = {
        name: run_recipe(
            _recipe(tmp_path, name, data=data, ops=ops, np=np, auto_op_parallelism=False, **extra), echo=lambda _: None
        )
        for name, np, extra in [("np1", 1, {}), ("np4", 4, {}), ("np4w2", 4, {"engine": {"shard_workers": 2}})]
    }
    exports = {Path(r.recipe.export_path).read_bytes() for r in runs.values()}
    assert len(exports) == 1  # the same rows whatever the cut
    chunks = {
        name: {
            m.metadata["allocation"].value["chunks"]
            for m in _materializations([name, "op00_whitespace_normalization_mapper"])
        }
        for name in runs
    }
    # np x num_cpus CPUs for the step (auto_op_parallelism off: np workers); two worker processes share them
    assert chunks == {"np1": {1}, "np4": {4}, "np4w2": {2}}


# MinHash kept on the CPU by its recipe entry, whatever the machine has
MINHASH_ON_CPU = {"document_minhash_deduplicator": {"window_size": 2, "accelerator": "cpu", "num_gpus": 0}}


def _hashes_metadata(project: str, step: str = "op00_document_minhash_deduplicator") -> list[dict]:
    """The metadata of each shard's materialization of `step`'s hashes asset."""
    key = [project, f"{step}__hashes"]
    return [{k: v.value for k, v in m.metadata.items()} for m in _materializations(key)]


def test_dedup_hashes_run_their_kernels_on_the_cpus_their_step_is_granted_with_the_same_output(
    tmp_path: Path, sluice_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dedup's hashes step runs its numba kernels on the CPUs its step is granted, not on the op's one-CPU
    default: SimHash's step holds no pool slot and gets the recipe's `np`; MinHash's holds a slot of its pool and
    gets its plan's workers x CPUs (np workers with auto_op_parallelism off). numba runs on at most its cores."""
    import numba

    import pipeline_defs.graph

    monkeypatch.setattr(pipeline_defs.graph, "usable_cpus", lambda: 4)
    data = _corpus(tmp_path / "data")
    ops = [{"document_simhash_deduplicator": {"window_size": 2}}, MINHASH_ON_CPU]
    runs = {
        name: run_recipe(
            _recipe(tmp_path, name, data=data, ops=ops, np=np, auto_op_parallelism=False), echo=lambda _: None
        )
        for name, np in [("np1", 1), ("np2", 2)]
    }
    assert len({Path(r.recipe.export_path).read_bytes() for r in runs.values()}) == 1
    simhash = {
        name: {m["threads"] for m in _hashes_metadata(name, "op00_document_simhash_deduplicator")} for name in runs
    }
    minhash = {
        name: {
            (m["threads"], m["kernel_threads"]) for m in _hashes_metadata(name, "op01_document_minhash_deduplicator")
        }
        for name in runs
    }
    assert simhash == {"np1": {1}, "np2": {2}}
    assert minhash == {"np1": {(1, 1)}, "np2": {(2, min(2, numba.config.NUMBA_NUM_THREADS))}}


def test_minhash_hashes_hold_the_gpu_share_their_plan_asks_for_and_fall_back_to_the_cpu_without_cuda(
    tmp_path: Path, sluice_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On a machine whose planner and pool see a GPU, the MinHash hashes step is granted cuda:0 by the pool; where
    torch has no CUDA (made so here) the step records why and runs on the CPU, with the export of a run that the
    recipe keeps on the CPU (`accelerator: cpu`, `num_gpus: 0`)."""
    import pipeline_defs.planning
    import resources.pools
    from resources.hardware import Hardware

    data = _corpus(tmp_path / "data")
    cpu_ops = [MINHASH_ON_CPU]
    cpu = run_recipe(_recipe(tmp_path, "cpu", data=data, ops=cpu_ops, np=2), echo=lambda _: None)
    ops = [{"document_minhash_deduplicator": {"window_size": 2}}]
    fake = Hardware.fake(cpus=2, memory_gb=8, gpus=1, gpu_memory_gb=16)
    monkeypatch.setattr(pipeline_defs.planning, "detect_hardware", lambda: fake)
    monkeypatch.setattr(resources.pools, "detect_hardware", lambda: fake)
    monkeypatch.setattr(resources.pools, "_torch_cuda_devices", lambda: (0, "torch has no usable CUDA"))
    gpu = run_recipe(_recipe(tmp_path, "gpu", data=data, ops=ops, np=2), echo=lambda _: None)
    assert Path(gpu.recipe.export_path).read_bytes() == Path(cpu.recipe.export_path).read_bytes()
    on_cpu, granted = _hashes_metadata("cpu"), _hashes_metadata("gpu")
    assert on_cpu and {m["allocation"].get("granted") for m in on_cpu} == {"cpu"}
    assert {m["device"] for m in on_cpu} == {"cpu"}
    assert granted and {m["allocation"]["granted"] for m in granted} == {"cuda:0"}
    assert all("torch has no usable CUDA" in m["allocation"]["fallback"] for m in granted)
    assert {(m["device"], m["device_requested"]) for m in granted} == {("cpu", "cpu")}


def test_minhash_hashes_run_on_the_granted_gpu_with_the_cpus_export(tmp_path: Path, sluice_home: Path) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    data = _corpus(tmp_path / "data")
    ops = [{"document_minhash_deduplicator": {"window_size": 2}}]
    gpu = run_recipe(_recipe(tmp_path, "gpu", data=data, ops=ops, np=2), echo=lambda _: None)
    cpu_ops = [MINHASH_ON_CPU]
    cpu = run_recipe(_recipe(tmp_path, "cpu", data=data, ops=cpu_ops, np=2), echo=lambda _: None)
    assert Path(gpu.recipe.export_path).read_bytes() == Path(cpu.recipe.export_path).read_bytes()
    assert {(m["device"], m["device_requested"]) for m in _hashes_metadata("gpu")} == {("cuda:0", "cuda:0")}
    assert {m["device"] for m in _hashes_metadata("cpu")} == {"cpu"}


def test_a_real_daemon_runs_the_schedule_and_writes_the_export(tmp_path: Path, sluice_home: Path) -> None:
    """`dagster-daemon run` with an enabled every-minute schedule: its first tick launches a run of the job over
    the missing shards, which completes the recipe (the global stages follow in the same run)."""
    import subprocess
    import sys
    import time

    data, counter = _corpus(tmp_path / "data"), tmp_path / "counter"
    counter.mkdir()
    path = _recipe(tmp_path, "tick", data=data, ops=_ops(counter), schedule={"cron": "* * * * *", "enabled": True})
    instance_ready()
    env = {
        **os.environ,
        "SLUICE_HOME": str(sluice_home),
        "DAGSTER_HOME": str(sluice_home / "dagster_home"),
        "SLUICE_RECIPES": str(path),
    }
    daemon = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-m", "pipeline_defs"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    export = Path(load_recipe(path).export_path)
    try:
        deadline = time.monotonic() + 240
        while not export.exists() and time.monotonic() < deadline and daemon.poll() is None:
            time.sleep(2)
    finally:
        daemon.terminate()
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
    assert export.exists(), (daemon.stderr.read() if daemon.stderr else "")[-3000:]
    runs = dg.DagsterInstance.get().get_runs(filters=dg.RunsFilter(tags={"sluice/trigger": "schedule"}))
    assert runs and runs[-1].tags["dagster/asset_partition_range_start"] == "a.jsonl@00000"
    assert len(_calls(counter)) == 4


def test_a_recipe_counts_words_with_the_kernel_and_keeps_the_same_rows_without_it(
    tmp_path: Path, sluice_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ops_library import codepoints

    if codepoints.kernels() is None:
        pytest.skip("Sluice's C kernels are not built (no C compiler)")
    data = _corpus(tmp_path / "data")
    calls: list[int] = []
    real = codepoints.refined_word_counts
    monkeypatch.setattr(codepoints, "refined_word_counts", lambda s: calls.append(len(s)) or real(s))
    words = [{"words_num_filter": {"min_num": 3}}]
    compiled = run_recipe(_recipe(tmp_path, "compiled", data=data, ops=words), echo=lambda _: None)
    seen, kept = compiled.funnel["op00_words_num_filter"].rows_in, compiled.funnel["op00_words_num_filter"].rows_out
    assert sum(calls) == seen > kept  # every row the op saw was counted by the kernel
    monkeypatch.setattr(codepoints, "kernels", lambda: None)  # as where the library is not built
    regex = run_recipe(_recipe(tmp_path, "regex", data=data, ops=words), echo=lambda _: None)
    assert sum(calls) == seen  # the regex counted them
    step = regex.funnel["op00_words_num_filter"]
    assert (seen, kept) == (step.rows_in, step.rows_out)
