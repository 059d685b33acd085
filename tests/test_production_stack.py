"""The production shape with real servers (`sluice up`): PostgreSQL, Redis, two Celery worker processes,
dagster-webserver and dagster-daemon on 127.0.0.1, and the UI in headless Chromium.

One stack serves the module (starting it is the expensive part). The embedded default (SQLite, in-process) runs
the demo first; its export is the reference every other run must reproduce byte for byte. Each test skips with
the missing binary named when the machine lacks it (.ci/run installs them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
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
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo on the embedded default (SQLite, in-process): the reference export and the corpus."""
    home = tmp_path_factory.mktemp("embedded")
    t0 = time.perf_counter()
    sluice(["run", str(DEMO)], {"SLUICE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home")})
    print(f"embedded demo (with corpus build): {time.perf_counter() - t0:.1f} s")
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


def _export(home: Path, name: str = "demo") -> bytes:
    return (home / "export" / f"{name}.jsonl").read_bytes()


@pytest.mark.postgres
def test_demo_on_postgres_exports_what_the_embedded_default_exports(
    embedded: Path, stack: Stack, pg_run: subprocess.CompletedProcess[str]
) -> None:
    import dagster as dg

    assert _export(stack.home.parent) == _export(embedded)
    os.environ.update(stack.env())
    try:
        with dg.DagsterInstance.get() as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            runs = instance.get_runs(dg.RunsFilter(job_name="demo_job"))
            assert runs and all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
            assert {r.tags.get("sluice/job_id") for r in runs} != {None}
    finally:
        for k in stack.env():
            os.environ.pop(k, None)


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
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"{base}/locations/sluice/asset-groups/demo/lineage", wait_until="networkidle", timeout=120_000)
        skip = page.get_by_role("button", name="Skip")  # the first-visit newsletter dialog covers the page
        skip.wait_for(timeout=30_000)
        skip.click()
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
