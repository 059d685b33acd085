"""A pack's partition key (`<first file>@00000+<n>`, with a '+') in the Dagster UI: a real dagster-webserver on the
embedded SQLite instance, driven by headless Chromium (Debian's)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from pipeline_defs.execute import run_recipe
from pipeline_defs.stack import free_port, stop_process
from tests.conftest import ROOT
from tests.test_production_stack import CHROMIUM, CHROMIUM_ARGS, dismiss_newsletter

pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} missing (apt-get install chromium)")
def test_the_ui_shows_a_packed_shard_materialized_and_keeps_its_key_in_the_url(
    tmp_path: Path, sluice_home: Path
) -> None:
    from playwright.sync_api import sync_playwright

    data = tmp_path / "data"
    data.mkdir()
    for name, n in (("a", 40), ("b", 30), ("c", 20)):
        rows = [json.dumps({"text": f"document {name} number {i % 17} with several words in it"}) for i in range(n)]
        (data / f"{name}.jsonl").write_text("\n".join(rows) + "\n")
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    recipe = recipes / "pk.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "project_name": "pk",
                "dataset_path": str(data),
                "export_path": str(tmp_path / "out" / "pk.jsonl"),
                "process": [{"whitespace_normalization_mapper": None}, {"document_deduplicator": None}],
            },
            sort_keys=False,
        )
    )
    report = run_recipe(recipe, echo=lambda _: None)
    assert report.partitions == 1  # three small files, one pack
    key = "a.jsonl@00000+2"
    port = free_port()
    env = {**os.environ, "SLUICE_RECIPES": str(recipes), "DAGSTER_HOME": str(sluice_home / "dagster_home")}
    server = subprocess.Popen(
        [sys.executable, "-m", "dagster_webserver", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{base}/server_info", timeout=2):
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "dagster-webserver did not start"
                time.sleep(0.5)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            asset = f"{base}/assets/pk/op00_whitespace_normalization_mapper"
            page.goto(f"{asset}?view=partitions", wait_until="networkidle", timeout=120_000)
            dismiss_newsletter(page)
            page.get_by_text(key, exact=True).first.click()
            page.get_by_text("Materialized", exact=True).first.wait_for(timeout=60_000)
            assert "partition=a.jsonl%4000000%2B2" in page.url  # the '+' encoded, not read back as a space
            page.reload(wait_until="networkidle", timeout=120_000)
            page.get_by_text("Materialized", exact=True).first.wait_for(timeout=60_000)
            assert page.inner_text("body").count(key) >= 2  # in the partition list and as the selected one's title
            browser.close()
    finally:
        stop_process(server.pid, timeout=30)  # the web server and the code server it started
        server.wait(timeout=30)
