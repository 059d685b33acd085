"""End to end: the demo recipe, materialized for every partition into a temp home, gives the rows a row-by-row
reference of Data-Juicer's semantics gives on the same real corpus, and every input row is accounted for."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from pipeline_defs.recipe import load_recipe
from pipeline_defs.runner import RunReport, run_recipe
from pipeline_defs.shards import discover_shards, read_shard
from tests.conftest import ROOT
from tests.reference_dj import reference_pipeline

DEMO = ROOT / "recipes" / "demo.yaml"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, RunReport]:
    home = tmp_path_factory.mktemp("demo_home")
    mp = pytest.MonkeyPatch()
    mp.setenv("SLUICE_HOME", str(home))
    mp.setenv("DAGSTER_HOME", str(home / "dagster_home"))
    try:
        report = run_recipe(DEMO, echo=lambda _: None)
        yield home, report
    finally:
        mp.undo()


def _input_rows(home: Path) -> tuple[list[dict], list[str]]:
    """Every input row in input order, and its Sluice id (`<file>:<line>`), read without the pipeline's code."""
    corpus = home / "corpus" / "demo"
    rows: list[dict] = []
    ids: list[str] = []
    for path in sorted(p for p in corpus.iterdir() if not p.name.startswith("_")):
        if path.suffix == ".parquet":
            file_rows = pl.read_parquet(path).to_dicts()
        else:
            opener = gzip.open if path.name.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8") as fh:
                file_rows = [json.loads(line) for line in fh]
        rows += file_rows
        ids += [f"{path.name}:{i}" for i in range(1, len(file_rows) + 1)]
    return rows, ids


def test_export_equals_reference_on_the_real_corpus(demo_run: tuple[Path, RunReport]) -> None:
    home, _ = demo_run
    recipe = load_recipe(DEMO)
    rows, _ = _input_rows(home)
    assert len(rows) >= 10_000
    expected = reference_pipeline(rows, [op.as_dict() for op in recipe.process], text_key="text")
    exported = pl.read_ndjson(home / "export" / "demo.jsonl")
    assert exported.height == len(expected)
    assert exported["text"].to_list() == [r["text"] for r in expected]
    assert exported["id"].to_list() == [r["id"] for r in expected]
    assert "__sluice_id__" not in exported.columns and "__dj__stats__" not in exported.columns


def test_every_row_is_kept_filtered_deduplicated_or_quarantined(demo_run: tuple[Path, RunReport]) -> None:
    home, report = demo_run
    recipe = load_recipe(DEMO)
    shards = discover_shards(recipe.dataset_path, recipe.partition.size)
    assert report.partitions == len(shards) >= 4
    e = report.export
    assert e["input"] == sum(s.rows for s in shards)
    assert e["input"] == e["kept"] + e["filtered"] + e["duplicate"] + e["quarantined"]
    assert e["filtered"] > 0 and e["duplicate"] > 0
    per_partition = {r.data["partition"]: r.data for r in e["per_partition"].records}
    for shard in shards:
        c = per_partition[shard.key]
        assert c["input"] == shard.rows == c["kept"] + c["filtered"] + c["duplicate"] + c["quarantined"]

    dropped = pl.read_ndjson(home / "export" / "demo.dropped.jsonl", infer_schema_length=None)
    assert dropped.height == e["filtered"] + e["duplicate"]
    assert dropped["sluice_reason"].null_count() == 0
    dups = dropped.filter(pl.col("sluice_drop") == "duplicate")
    # provenance: every duplicate names the kept row it repeats, and that row comes earlier in input order
    rows, sluice_ids = _input_rows(home)
    position = {sid: i for i, sid in enumerate(sluice_ids)}
    exported_doc_ids = set(pl.read_ndjson(home / "export" / "demo.jsonl")["id"])
    kept_sluice_ids = {sid for sid, row in zip(sluice_ids, rows, strict=True) if row["id"] in exported_doc_ids}
    assert dups["sluice_duplicate_of"].null_count() == 0
    assert set(dups["sluice_duplicate_of"]) <= kept_sluice_ids
    assert all(position[of] < position[me] for me, of in dups.select("sluice_id", "sluice_duplicate_of").iter_rows())


def test_dedup_is_global_across_partitions(demo_run: tuple[Path, RunReport]) -> None:
    home, _ = demo_run
    dropped = pl.read_ndjson(home / "export" / "demo.dropped.jsonl", infer_schema_length=None).filter(
        pl.col("sluice_drop") == "duplicate"
    )
    files = dropped.select(
        pl.col("sluice_id").str.extract(r"^(.*):\d+$").alias("file"),
        pl.col("sluice_duplicate_of").str.extract(r"^(.*):\d+$").alias("of_file"),
    )
    assert files.filter(pl.col("file") != pl.col("of_file")).height > 0


def test_funnel_and_materializations_are_in_the_instance(demo_run: tuple[Path, RunReport]) -> None:
    home, report = demo_run
    assert list(report.funnel)[:2] == ["source", "op00_whitespace_normalization_mapper"]
    for name, stat in report.funnel.items():
        assert stat.steps == report.partitions, name
    os.environ["DAGSTER_HOME"] = str(home / "dagster_home")
    instance = dg.DagsterInstance.get()
    result = instance.fetch_materializations(dg.AssetKey(["demo", "op02_text_length_filter"]), limit=100)
    assert len(result.records) == report.partitions
    meta = result.records[0].asset_materialization.metadata
    assert {"rows_in", "rows_out", "dropped", "seconds", "dagster/row_count"} <= set(meta)
    # resource usage and placement of the step, and a histogram of the filter's stat, for the UI
    assert {"peak_rss_mb", "cpu_seconds", "cpu_percent_mean", "mb_per_s", "device", "batch_size", "retries"} <= set(
        meta
    )
    assert meta["peak_rss_mb"].value > 50 and meta["device"].value == "cpu"
    assert "| bin | rows |" in meta["histogram/text_len"].value
    check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey(["demo", "export"]), "rows_reconcile")]
    )
    evaluation = next(iter(check.values())).evaluation
    assert evaluation is not None and evaluation.passed


def test_dagster_cli_reexecutes_one_partition(demo_run: tuple[Path, RunReport]) -> None:
    """README: after `sluice run`, the plain Dagster CLI materializes one shard of the demo job."""
    home, _ = demo_run
    recipe = load_recipe(DEMO)
    key = discover_shards(recipe.dataset_path, recipe.partition.size)[1].key
    env = {**os.environ, "SLUICE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home")}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "job",
            "execute",
            "-m",
            "pipeline_defs",
            "-j",
            "demo_job",
            "--tags",
            json.dumps({"dagster/partition": key}),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "RUN_SUCCESS" in out.stdout + out.stderr
    exported = pl.read_ndjson(home / "export" / "demo.jsonl")
    shard = discover_shards(recipe.dataset_path, recipe.partition.size)[1]
    assert read_shard(shard, "text").kept.height > 0
    assert exported.height > 0


def test_dagster_asset_materialize_one_partition(demo_run: tuple[Path, RunReport]) -> None:
    """README: `dagster asset materialize --select '*' --partition KEY` with the code location on the demo recipe
    (with every recipe loaded, `group:demo` selects the same assets)."""
    home, _ = demo_run
    recipe = load_recipe(DEMO)
    key = discover_shards(recipe.dataset_path, recipe.partition.size)[0].key
    env = {**os.environ, "SLUICE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home")}
    for select, extra in (("*", {"SLUICE_RECIPES": str(DEMO)}), ("group:demo", {})):
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "dagster",
                "asset",
                "materialize",
                "-m",
                "pipeline_defs",
                "--select",
                select,
                "--partition",
                key,
            ],
            cwd=ROOT,
            env=env | extra,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        assert "RUN_SUCCESS" in out.stdout + out.stderr
    instance_env = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home / "dagster_home")
    try:
        records = dg.DagsterInstance.get().fetch_materializations(dg.AssetKey(["demo", "export"]), limit=10).records
    finally:
        if instance_env is not None:
            os.environ["DAGSTER_HOME"] = instance_env
    assert len(records) >= 3  # sluice run + the two CLI runs
