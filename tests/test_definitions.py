"""The code location loads: the pytest twin of `dagster definitions validate -m pipeline_defs`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from ops_library.registry import get_op
from pipeline_defs.loader import definitions_for, recipe_paths
from tests.conftest import ROOT


def test_definitions_load_with_one_job_and_group_per_recipe(sluice_home: Path) -> None:
    defs = definitions_for(recipe_paths())
    job = defs.resolve_job_def("demo_job")
    keys = {k.to_user_string() for k in defs.resolve_all_asset_keys()}
    assert {
        "demo/source",
        "demo/op00_whitespace_normalization_mapper",
        "demo/op04_document_deduplicator__hashes",
        "demo/op04_document_deduplicator__index",
        "demo/op04_document_deduplicator",
        "demo/export",
    } <= keys
    assert job.partitions_def is not None and job.partitions_def.name == "demo_shards"
    assert "demo_shards_sensor" in {s.name for s in defs.sensors or []}


def test_assets_carry_pool_retry_tags_and_op_metadata(sluice_home: Path) -> None:
    defs = definitions_for([ROOT / "recipes" / "demo.yaml"])
    spec = next(s for s in defs.resolve_all_asset_specs() if s.key == dg.AssetKey(["demo", "op02_text_length_filter"]))
    assets_def = defs.resolve_assets_def(spec.key)
    assert spec.metadata["sluice/op"] == "text_length_filter"
    assert spec.metadata["params"].value["op02_text_length_filter"]["min_len"] == 30
    assert spec.tags["sluice/kind"] == "filter"
    assert spec.group_name == "demo"
    # the op's own summary, which names the Data-Juicer op it matches
    assert spec.description == f"text_length_filter: {get_op('text_length_filter').summary()}"
    assert "Data-Juicer" in spec.description
    op_def = assets_def.op
    assert op_def.pool == "sluice/demo/op02_text_length_filter"
    assert spec.metadata["sluice/plan"].value["num_proc"] >= 1
    assert op_def.retry_policy is not None and op_def.retry_policy.max_retries == 2


def test_dagster_cli_validates_the_code_location(sluice_home: Path) -> None:
    env = {**os.environ, "DAGSTER_HOME": str(sluice_home / "dagster_home")}
    (sluice_home / "dagster_home").mkdir(parents=True)
    out = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "pipeline_defs"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "All code locations passed validation" in out.stdout + out.stderr
