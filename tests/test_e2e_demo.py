"""End to end: the demo recipe, materialized for every partition into a temp home, gives the rows a row-by-row
reference of Data-Juicer's semantics gives on the same real corpus, and every input row is accounted for."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from pipeline_defs.execute import RunReport, run_recipe
from pipeline_defs.recipe import load_recipe
from pipeline_defs.shards import discover_shards
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
    shards = discover_shards(recipe.dataset_path, recipe.partition)
    assert report.partitions == len(shards) >= 3
    rows, _ = _input_rows(home)
    e = report.export
    assert e["input"] == len(rows)
    assert e["input"] == e["kept"] + e["filtered"] + e["duplicate"] + e["quarantined"]
    assert e["filtered"] > 0 and e["duplicate"] > 0
    per_partition = {r.data["partition"]: r.data for r in e["per_partition"].records}
    assert set(per_partition) == {s.key for s in shards}
    for c in per_partition.values():
        assert c["input"] == c["kept"] + c["filtered"] + c["duplicate"] + c["quarantined"]
    assert sum(c["input"] for c in per_partition.values()) == len(rows)

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
    assert len(result.records) == report.partitions  # one range run, one materialization per shard
    assert {r.asset_materialization.partition for r in result.records} == set(
        instance.get_dynamic_partitions("demo_shards")
    )
    assert report.runs == 4  # one run per phase: shards, dedup index, dedup filter over shards, export
    meta = result.records[0].asset_materialization.metadata
    assert {"rows_in", "rows_out", "dropped", "seconds", "dagster/row_count"} <= set(meta)
    # resource usage and placement of the step, and a histogram of the filter's stat, for the UI
    # cpu_percent_mean is left out of steps too short to measure it (resources/monitor.py)
    assert {"peak_rss_mb", "rss_delta_mb", "cpu_seconds", "mb_per_s", "device", "batch_size", "retries"} <= set(meta)
    assert meta["peak_rss_mb"].value > 50 and meta["device"].value == "cpu"
    assert "| bin | rows |" in meta["histogram/text_len"].value
    check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey(["demo", "export"]), "rows_reconcile")]
    )
    evaluation = next(iter(check.values())).evaluation
    assert evaluation is not None and evaluation.passed


def _dagster(home: Path, *args: str, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "SLUICE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home")} | (extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "dagster", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def _fresh_home(tmp_path: Path, demo_home: Path) -> Path:
    """A fresh instance whose corpus is the demo run's (so exports compare byte for byte)."""
    home = tmp_path / "fresh"
    shutil.copytree(demo_home / "corpus", home / "corpus")
    (home / "dagster_home").mkdir(parents=True)
    return home


def test_dagster_cli_each_partition_in_order_gives_the_same_export(
    demo_run: tuple[Path, RunReport], tmp_path: Path
) -> None:
    """Fresh instance: `sluice partitions`, then `dagster job execute --tags dagster/partition=K` for each shard
    in order. Until the last shard the global stages wait (the runs succeed); the last run builds the index,
    brings every shard's dedup step up to date and writes the export `sluice run` wrote."""
    demo_home, _ = demo_run
    home = _fresh_home(tmp_path, demo_home)
    env = {**os.environ, "SLUICE_HOME": str(home), "DAGSTER_HOME": str(home / "dagster_home")}
    listed = subprocess.run(
        [sys.executable, "-m", "pipeline_defs.cli", "partitions", str(DEMO)], env=env, capture_output=True, text=True
    )
    assert listed.returncode == 0, listed.stderr
    keys = [line.split()[0] for line in listed.stdout.splitlines() if "@" in line]
    assert len(keys) >= 3
    for i, key in enumerate(keys):
        out = _dagster(
            home,
            "job",
            "execute",
            "-m",
            "pipeline_defs",
            "-j",
            "demo_job",
            "--tags",
            json.dumps({"dagster/partition": key}),
        )
        assert out.returncode == 0, out.stderr[-3000:]
        assert "RUN_SUCCESS" in out.stdout + out.stderr
        if i < len(keys) - 1:
            assert "waits for" in out.stdout + out.stderr
            assert not (home / "export" / "demo.jsonl").exists()
    assert (home / "export" / "demo.jsonl").read_bytes() == (demo_home / "export" / "demo.jsonl").read_bytes()
    assert (home / "export" / "demo.dropped.jsonl").read_bytes() == (
        demo_home / "export" / "demo.dropped.jsonl"
    ).read_bytes()


def test_all_job_runs_the_whole_recipe_and_the_bare_job_names_it(
    demo_run: tuple[Path, RunReport], tmp_path: Path
) -> None:
    """`dagster job execute -j demo_job` with no tags stops at once, naming demo_all_job; `-j demo_all_job` on a
    fresh instance registers every shard, runs the recipe and writes the same export."""
    demo_home, _ = demo_run
    home = _fresh_home(tmp_path, demo_home)
    bare = _dagster(home, "job", "execute", "-m", "pipeline_defs", "-j", "demo_job")
    assert bare.returncode != 0
    # (an empty DAGSTER_HOME: Dagster's stock storage, so the run's first step refuses it)
    assert "for every shard run: dagster job execute -m pipeline_defs -j demo_all_job" in bare.stdout + bare.stderr
    assert not (home / "export" / "demo.jsonl").exists()
    out = _dagster(home, "job", "execute", "-m", "pipeline_defs", "-j", "demo_all_job")
    assert out.returncode == 0, out.stderr[-3000:]
    assert (home / "export" / "demo.jsonl").read_bytes() == (demo_home / "export" / "demo.jsonl").read_bytes()


def _run_count(home: Path) -> int:
    with dg.DagsterInstance.from_config(str(home / "dagster_home")) as instance:
        return len(instance.get_run_records())


@pytest.mark.parametrize(
    "tags",
    [
        {"dagster/partition": "nope.jsonl@00000"},
        {"dagster/partition": "nope"},  # not of the `<file>@<index>` form at all
        {"dagster/asset_partition_range_start": "docstrings.jsonl@00000", "dagster/asset_partition_range_end": "nope"},
    ],
)
def test_a_wrong_partition_key_fails_before_a_run_is_created(
    demo_run: tuple[Path, RunReport], tags: dict[str, str]
) -> None:
    """The issue: a wrong key fails before a run is created, in one line listing the valid keys."""
    home, _ = demo_run
    runs = _run_count(home)
    out = _dagster(home, "job", "execute", "-m", "pipeline_defs", "-j", "demo_job", "--tags", json.dumps(tags))
    assert out.returncode != 0
    wrong = next(v for v in tags.values() if v.startswith("nope"))
    errors = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error: ")]
    assert errors == [errors[0]] and f"partition {wrong!r} is not a shard of demo" in errors[0], out.stderr[-2000:]
    assert "docstrings.jsonl@00000" in errors[0] and "No run was created" in errors[0]
    assert "Traceback" not in out.stderr
    assert _run_count(home) == runs


def test_the_bare_job_is_refused_before_a_run_is_created(demo_run: tuple[Path, RunReport]) -> None:
    """On Sluice's instance (its dagster.yaml), `dagster job execute -j demo_job` with no partition is refused by
    the run storage: one line naming demo_all_job and the first shard, no run."""
    home, _ = demo_run
    runs = _run_count(home)
    bare = _dagster(home, "job", "execute", "-m", "pipeline_defs", "-j", "demo_job")
    assert bare.returncode != 0
    errors = [line for line in (bare.stdout + bare.stderr).splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in bare.stderr, bare.stderr[-2000:]
    assert "for every shard run: dagster job execute -m pipeline_defs -j demo_all_job" in errors[0]
    assert '"dagster/partition": "comments.jsonl.gz@00000"' in errors[0]
    assert errors[0].endswith("No run was created.") and _run_count(home) == runs


def test_dagster_asset_materialize_one_partition(demo_run: tuple[Path, RunReport]) -> None:
    """README: `dagster asset materialize --select '*' --partition KEY` with the code location on the demo recipe
    (with every recipe loaded, `group:demo` selects the same assets)."""
    home, _ = demo_run
    recipe = load_recipe(DEMO)
    key = discover_shards(recipe.dataset_path, recipe.partition)[0].key
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
