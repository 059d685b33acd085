"""Issue 11 item 6: the history of past runs may lower parallelism but never refuses a plan that fits."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest
import yaml

from pipeline_defs.cli import main
from pipeline_defs.execute import plan_with_history
from pipeline_defs.recipe import load_recipe
from resources.analyzer import ResourceUsageAnalyzer


def _five_row_recipe(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.jsonl").write_text("".join(json.dumps({"text": f"document number {i}"}) + "\n" for i in range(5)))
    path = tmp_path / "five.yaml"
    recipe = {
        "project_name": "five",
        "dataset_path": str(data),
        "export_path": str(tmp_path / "out" / "five.jsonl"),
        "process": [{"whitespace_normalization_mapper": {}}, {"text_length_filter": {"min_len": 5}}],
    }  # partition.size: the default 10,000
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_a_five_row_runs_history_does_not_refuse_the_next_run(
    tmp_path: Path, sluice_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The reproducer: after one run of a 5-row input, the same `sluice run` exited 2 ("does not fit … 49.85 GB")."""
    path = _five_row_recipe(tmp_path)
    assert main(["run", str(path)]) == 0
    capsys.readouterr()
    with dg.DagsterInstance.get() as instance:
        profiles = ResourceUsageAnalyzer(instance).profiles()
        assert profiles["text_length_filter"].samples == 1  # history exists: the run recorded its step
        assert profiles["text_length_filter"].memory_mb_per_1k_rows is None  # 5 rows cannot tell a per-row figure
        plan_with_history(load_recipe(path), instance)  # no PlanError
    assert main(["run", str(path)]) == 0, capsys.readouterr().err
    assert main(["plan", str(path)]) == 0
    assert "does not fit" not in capsys.readouterr().err
