"""The production shape with real servers (`sluice up`): PostgreSQL, Redis, two Celery worker processes,
dagster-webserver and dagster-daemon on 127.0.0.1, and the UI in headless Chromium.

One stack serves the module (starting it is the expensive part). The embedded default (SQLite, in-process) runs
the demo first; its export is the reference every other run must reproduce byte for byte. Each test skips with
the missing binary named when the machine lacks it (.ci/run installs them).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from pipeline_defs.stack import Stack, down, missing_binaries, up
from tests.conftest import ROOT

DEMO = ROOT / "recipes" / "demo.yaml"
CHROMIUM = "/usr/bin/chromium"
MISSING = missing_binaries()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(MISSING), reason=f"production stack binaries missing: {', '.join(MISSING)}"),
]


def sluice(args: list[str], env: dict[str, str], timeout: int = 900) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [sys.executable, "-m", "pipeline_defs.cli", *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert out.returncode == 0, f"sluice {' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory, demo_corpus) -> Path:
    """The demo on the embedded default (SQLite, in-process): the reference export and the corpus (the session's
    demo corpus; tests/test_e2e_demo.py has `sluice run` build its own)."""
    home = tmp_path_factory.mktemp("embedded")
    shutil.copytree(demo_corpus.out_dir, home / "corpus" / "demo")
    t0 = time.perf_counter()
    sluice(["run", str(DEMO)], {"SLUICE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home")})
    print(f"embedded demo: {time.perf_counter() - t0:.1f} s")
    return home


@pytest.fixture(scope="module")
def stack(embedded: Path, tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("stack_home")
    shutil.copytree(embedded / "corpus", home / "corpus")
    s = Stack(root=home / "stack", home=home / "dagster_home", workers=2, concurrency=2)
    t0 = time.perf_counter()
    up(s, echo=print)
    print(f"stack up: {time.perf_counter() - t0:.1f} s")
    try:
        yield s
    finally:
        print(f"stack down: {down(s, echo=print):.1f} s")


@pytest.fixture(scope="module")
def pg_run(stack: Stack) -> subprocess.CompletedProcess[str]:
    """The demo recipe, in-process, on the stack's PostgreSQL instance."""
    return sluice(["run", str(DEMO)], stack.env())


@contextmanager
def stack_instance(stack: Stack):
    """The stack's Dagster instance in this process (its variables set for the block only)."""
    import dagster as dg

    with pytest.MonkeyPatch.context() as mp:
        for k, v in stack.env().items():
            mp.setenv(k, v)
        with dg.DagsterInstance.get() as instance:
            yield instance


def _export(home: Path, name: str = "demo") -> bytes:
    return (home / "export" / f"{name}.jsonl").read_bytes()


@pytest.mark.postgres
def test_demo_on_postgres_exports_what_the_embedded_default_exports(
    embedded: Path, stack: Stack, pg_run: subprocess.CompletedProcess[str]
) -> None:
    import dagster as dg

    assert _export(stack.home.parent) == _export(embedded)
    with stack_instance(stack) as instance:
        assert type(instance.run_storage).__name__ == "CheckedPostgresRunStorage"
        runs = instance.get_runs(dg.RunsFilter(job_name="demo_job"))
        assert runs and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
        assert {r.tags.get("sluice/job_id") for r in runs} != {None}


@pytest.mark.postgres
def test_a_wrong_partition_key_and_the_bare_job_are_refused_before_a_run_on_postgres(
    stack: Stack, pg_run: subprocess.CompletedProcess[str]
) -> None:
    """deploy/dagster.yaml's storage refuses them as the embedded one does: one `Error:` line, no run stored."""
    with stack_instance(stack) as instance:
        before = len(instance.get_run_records())
    for tags in ({"dagster/partition": "nope.jsonl@00000"}, None):
        args = ["job", "execute", "-m", "pipeline_defs", "-j", "demo_job"]
        args += ["--tags", json.dumps(tags)] if tags else []
        out = subprocess.run(
            [sys.executable, "-m", "dagster", *args],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **stack.env()},
            capture_output=True,
            text=True,
            timeout=300,
        )
        errors = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error: ")]
        assert out.returncode != 0 and len(errors) == 1, out.stderr[-2000:]
        expected = "is not a shard of demo" if tags else "for every shard run: dagster job execute"
        assert expected in errors[0] and errors[0].endswith("No run was created.")
    with stack_instance(stack) as instance:
        assert len(instance.get_run_records()) == before


@pytest.mark.postgres
def test_code_location_load_set_pool_limits_for_recipes_never_run(stack: Stack) -> None:
    """The webserver and daemon load the code location: every recipe's step pools get their limits on the
    PostgreSQL instance, also for recipes no `sluice run` ever ran (readmes, embeddings)."""
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", port=stack.ports["postgres"], user="dagster", dbname="dagster")
    with conn, conn.cursor() as cur:
        cur.execute('SELECT concurrency_key, "limit" FROM concurrency_limits')
        limits = dict(cur.fetchall())
    conn.close()
    assert limits.get("sluice/readmes/op00_clean_links_mapper", 0) >= 1
    assert any(k.startswith("sluice/embeddings/") for k in limits)


@pytest.mark.celery
def test_demo_on_two_celery_workers_exports_what_in_process_exports(embedded: Path, stack: Stack) -> None:
    recipe = stack.root / "demo_celery.yaml"
    recipe.write_text(
        DEMO.read_text()
        .replace("project_name: demo", "project_name: demo_celery")
        .replace("export/demo.jsonl", "export/demo_celery.jsonl")
        + "\nengine:\n  executor: celery\n"
    )
    t0 = time.perf_counter()
    sluice(["run", str(recipe)], stack.env())
    print(f"demo on 2 celery workers: {time.perf_counter() - t0:.1f} s")
    assert _export(stack.home.parent, "demo_celery") == _export(embedded)
    # steps ran in the worker processes, and on both of them
    served = {
        i: (stack.logs / f"worker{i}.log").read_text().count("Task execute_plan") for i in range(1, stack.workers + 1)
    }
    assert all(n > 0 for n in served.values()), served


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def dismiss_newsletter(page) -> None:
    """The first visit to a new instance opens a newsletter dialog over the page: skip it when it is there."""
    skip = page.get_by_role("button", name="Skip")
    try:
        skip.wait_for(timeout=15_000)
    except Exception:  # playwright's TimeoutError: no dialog this time
        return
    skip.click()


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} missing (apt-get install chromium)")
def test_ui_shows_every_op_and_step_resource_metadata(
    stack: Stack, pg_run: subprocess.CompletedProcess[str], request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    from pipeline_defs.recipe import load_recipe

    base = stack.env()["SLUICE_WEBSERVER_URL"]
    artifacts = Path(os.environ.get("SLUICE_TEST_ARTIFACTS", tmp_path)) / request.node.name
    artifacts.mkdir(parents=True, exist_ok=True)
    ops = [spec.step_name for spec in load_recipe(DEMO).process]
    # a dedup op is three assets: per-shard hashes, the global index, the per-shard filter
    ops += [f"{name}{suffix}" for name in ops if "deduplicator" in name for suffix in ("__hashes", "__index")]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"{base}/locations/sluice/asset-groups/demo/lineage", wait_until="networkidle", timeout=120_000)
        dismiss_newsletter(page)
        page.get_by_text("source", exact=True).first.wait_for(timeout=60_000)
        page.screenshot(path=str(artifacts / "demo_asset_graph.png"), full_page=True)
        # the graph abbreviates long names; the list view of the group names every asset in full
        page.goto(f"{base}/locations/sluice/asset-groups/demo/list", wait_until="networkidle", timeout=120_000)
        for name in ["source", *ops, "export"]:  # full names sit in the row's title, the cell shows them cut
            page.get_by_text(f"demo / {name}", exact=True).first.wait_for(state="attached", timeout=60_000)
        page.goto(f"{base}/assets/demo/op02_text_length_filter", wait_until="networkidle", timeout=120_000)
        page.get_by_text("peak_rss_mb", exact=True).first.wait_for(timeout=60_000)
        page.screenshot(path=str(artifacts / "op_asset_metadata.png"), full_page=True)
        browser.close()
    assert (artifacts / "demo_asset_graph.png").stat().st_size > 10_000
    print(f"screenshots: {artifacts}")


@pytest.mark.celery
def test_celery_workers_write_under_the_home_of_the_run_not_their_own(
    embedded: Path, stack: Stack, tmp_path: Path
) -> None:
    """A `sluice run` with its own home (its own SQLite instance) on the stack's workers: the workers were
    started with the stack's home, yet the checkpoints and the export land in the run's home, where the run
    says they are, and nothing of the run is written under the stack's home."""
    client = tmp_path / "client_home"
    shutil.copytree(embedded / "corpus", client / "corpus")
    recipe = tmp_path / "demo_elsewhere.yaml"
    recipe.write_text(
        DEMO.read_text()
        .replace("project_name: demo", "project_name: demo_elsewhere")
        .replace("export/demo.jsonl", "export/demo_elsewhere.jsonl")
    )
    broker = stack.env()["SLUICE_CELERY_BROKER"]
    env = {
        "SLUICE_HOME": str(client),
        "DAGSTER_HOME": str(client / "dagster_home"),
        "SLUICE_CELERY_BROKER": broker,
        "SLUICE_CELERY_BACKEND": broker,
    }
    out = sluice(["run", str(recipe), "--executor", "celery"], env)
    assert f"output: {client / 'export' / 'demo_elsewhere.jsonl'}" in out.stdout
    assert _export(client, "demo_elsewhere") == _export(embedded)
    assert any((client / "checkpoints" / "demo_elsewhere").rglob("*.parquet"))
    stack_home = stack.home.parent
    assert not (stack_home / "checkpoints" / "demo_elsewhere").exists()
    assert not (stack_home / "export" / "demo_elsewhere.jsonl").exists()


@pytest.mark.celery
def test_pool_limit_holds_across_celery_workers(stack: Stack, tmp_path: Path) -> None:
    """Four one-shard runs of a step whose pool limit is 1, sent to two workers of two slots each: the Dagster
    pool (on the PostgreSQL instance) lets one step run at a time, whichever worker takes it."""
    import dagster as dg
    import yaml

    from tests.test_fault_tolerance import DRILL_OPS, _corpus, _ops

    counter = tmp_path / "counter"
    counter.mkdir()
    ops = _ops(counter, sleep_s=0.5)
    for op in ops:
        if "counting_mapper" in op:
            op["counting_mapper"]["num_proc"] = 1
    recipe = tmp_path / "pool1.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "project_name": "pool1",
                "dataset_path": str(_corpus(tmp_path / "data")),
                "export_path": str(tmp_path / "out" / "pool1.jsonl"),
                "custom_operator_paths": [str(DRILL_OPS)],
                "partition": {"size": 35},
                "process": ops,
                "engine": {"executor": "celery", "max_partitions_per_run": 1, "max_parallel_runs": 4},
            },
            sort_keys=False,
        )
    )
    sluice(["run", str(recipe)], stack.env())
    with stack_instance(stack) as instance:
        assert instance.event_log_storage.get_concurrency_info("sluice/pool1/op01_counting_mapper").slot_count == 1
        spans, workers = [], set()
        for run in instance.get_runs(dg.RunsFilter(job_name="pool1_job")):
            start = end = None
            for e in instance.all_logs(run.run_id):
                ev = e.dagster_event
                if ev is None or ev.step_key != "pool1__op01_counting_mapper":
                    continue
                if ev.event_type == dg.DagsterEventType.STEP_START:
                    start = e.timestamp
                elif ev.event_type == dg.DagsterEventType.STEP_SUCCESS:
                    end = e.timestamp
                elif ev.event_type == dg.DagsterEventType.ENGINE_EVENT and "Celery worker" in (
                    md := {k: getattr(v, "value", v) for k, v in (ev.event_specific_data.metadata or {}).items()}
                ):
                    workers.add(md["Celery worker"])
            if start is not None:
                spans.append((start, end))
    assert len(spans) == 4 and all(end is not None for _, end in spans)
    # the op's own work, as the op logged it: never two calls at once, whichever worker ran them
    calls = sorted(tuple(map(float, line.split()[2:4])) for line in (counter / "calls.log").read_text().splitlines())
    assert len(calls) == 4
    assert all(a_end <= b_start for (_, a_end), (b_start, _) in itertools.pairwise(calls)), calls
    assert len(workers) >= 1, workers
    print(f"pool 1: {len(spans)} steps, serial, on workers {sorted(workers)}")


@pytest.mark.postgres
def test_sigkill_then_resume_on_postgres(stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`sluice run` killed with SIGKILL mid-recipe on the PostgreSQL instance; `sluice resume` finishes the job
    and its export equals an uninterrupted run's (on the embedded default)."""
    import signal

    from tests.test_fault_tolerance import _calls, _corpus, _ops, _recipe, _reference_export

    data, counter = _corpus(tmp_path / "data"), tmp_path / "counter"
    counter.mkdir()
    ops = _ops(counter, sleep_s=0.4)
    path = _recipe(tmp_path, "pgkilled", data=data, ops=ops)
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline_defs.cli", "run", str(path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **stack.env()},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert proc.stdout is not None
    first = next(line for line in proc.stdout if line.startswith("job "))
    job_id = first.split()[1].rstrip(":")
    deadline = time.time() + 180
    while len(_calls(counter)) < 2 and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _calls(counter)
    assert 2 <= len(before) < 4, before  # killed mid-recipe
    out = sluice(["resume", job_id], stack.env())
    assert f"job {job_id}" in out.stdout
    after = _calls(counter)[len(before) :]
    assert len(set(before) | set(after)) == 4 and len(set(before) & set(after)) <= 1
    expected = _reference_export(tmp_path, monkeypatch, data, ops)
    assert (tmp_path / "out" / "pgkilled.jsonl").read_bytes() == expected


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} missing (apt-get install chromium)")
def test_backfill_launched_from_the_ui_completes(
    stack: Stack, pg_run: subprocess.CompletedProcess[str], embedded: Path
) -> None:
    """ "Materialize all…" on the demo group, every partition, "Launch backfill": the daemon queues and launches
    its runs on the PostgreSQL instance and the backfill completes; `sluice status` shows its runs."""
    import dagster as dg
    from playwright.sync_api import sync_playwright

    base = stack.env()["SLUICE_WEBSERVER_URL"]
    with stack_instance(stack) as instance:
        before = {b.backfill_id for b in instance.get_backfills()}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"{base}/locations/sluice/asset-groups/demo/lineage", wait_until="networkidle", timeout=120_000)
        dismiss_newsletter(page)
        page.get_by_role("button", name="Materialize all").first.click()
        dialog = page.locator("[role=dialog]").first
        dialog.get_by_text("All", exact=True).first.click()
        dialog.get_by_text("3 partitions").first.wait_for(timeout=30_000)
        dialog.get_by_role("button", name="Launch backfill").click()
        dialog.wait_for(state="hidden", timeout=60_000)
        browser.close()
    launched = time.monotonic()
    # the daemon is pipeline_defs/daemon.py (a backfill iteration every SLUICE_BACKFILL_INTERVAL_S), not Dagster's
    daemon_argv = Path(f"/proc/{stack.services['daemon']}/cmdline").read_bytes().split(b"\0")
    assert daemon_argv[1:4] == [b"-m", b"pipeline_defs.daemon", b"run"], daemon_argv
    deadline = time.monotonic() + 600
    with stack_instance(stack) as instance:
        while time.monotonic() < deadline:
            new = [b for b in instance.get_backfills() if b.backfill_id not in before]
            if new and new[0].status.value != "REQUESTED":
                break
            time.sleep(2)
        assert new, "no backfill was launched"
        backfill = new[0]
        assert backfill.status.value == "COMPLETED_SUCCESS", backfill.status
        runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill.backfill_id}))
        assert runs and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    # the daemon's backfill follows the assets' BackfillPolicy: as many runs as `sluice run` (one per phase)
    sluice_runs = int(re.search(r"(\d+) Dagster runs", pg_run.stdout).group(1))
    print(f"UI backfill: {len(runs)} runs in {time.monotonic() - launched:.1f} s; sluice run: {sluice_runs} runs")
    assert len(runs) == sluice_runs
    assert _export(stack.home.parent) == _export(embedded)
    out = sluice(["status", backfill.backfill_id], stack.env()).stdout
    assert out.splitlines()[0] == f"job {backfill.backfill_id}: {len(runs)} runs"
    assert re.search(r"^\s+export\s+1/1", out, re.M)
