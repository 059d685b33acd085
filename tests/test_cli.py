"""The `sluice` command as a user types it (in-process through `main`, with a private home)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline_defs.cli import main
from tests.conftest import ROOT


def _recipe(tmp_path: Path, **extra: object) -> Path:
    data = tmp_path / "data"
    data.mkdir(parents=True)
    (data / "a.jsonl").write_text("".join(json.dumps({"text": f"doc number {i}"}) + "\n" for i in range(25)))
    path = tmp_path / "r.yaml"
    recipe = {
        "project_name": "cli",
        "dataset_path": str(data),
        "export_path": str(tmp_path / "out.jsonl"),
        "partition": {"size": 10},
        "process": [{"text_length_filter": {"min_len": 5}}],
        **extra,
    }
    path.write_text(yaml.safe_dump(recipe))
    return path


def test_validate_and_ops(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(ROOT / "recipes" / "demo.yaml")]) == 0
    assert "demo_job: whitespace_normalization_mapper -> clean_links_mapper" in capsys.readouterr().out
    assert main(["ops"]) == 0
    assert "document_deduplicator" in capsys.readouterr().out
    assert main(["ops", "text_length_filter"]) == 0
    assert "min_len" in capsys.readouterr().out


def test_bad_recipe_exits_2_with_the_reason(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _recipe(tmp_path, proces=[])
    assert main(["validate", str(path)]) == 2
    assert "unknown key 'proces'; did you mean 'process'?" in capsys.readouterr().err


def test_partitions_lists_shards_and_plan_prints_pools(
    tmp_path: Path, sluice_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _recipe(tmp_path)
    assert main(["partitions", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["a.jsonl@00000", "a.jsonl@00001", "a.jsonl@00002"]
    assert lines[2].endswith("rows 21-25")
    assert main(["plan", str(path)]) == 0
    out = capsys.readouterr().out
    assert "op00_text_length_filter" in out and "sluice/cli/op00_text_length_filter" in out


def test_run_then_rerun_skips_everything(tmp_path: Path, sluice_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _recipe(tmp_path)
    assert main(["run", str(path)]) == 0
    first = capsys.readouterr().out
    assert "input 25 = kept 25 + filtered 0 + duplicates 0 + quarantined 0" in first
    assert main(["run", str(path)]) == 0
    assert "0 Dagster runs" in capsys.readouterr().out


def test_gc_applies_the_retention_policy(tmp_path: Path, sluice_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _recipe(tmp_path, storage={"retention": "keep_failed_only"})
    assert main(["run", str(path)]) == 0
    checkpoints = sluice_home / "checkpoints" / "cli"
    assert checkpoints.exists()
    assert main(["gc", str(path)]) == 0  # the latest job completed: its checkpoints go
    assert not checkpoints.exists()
    assert (tmp_path / "out.jsonl").exists() and len(list((sluice_home / "jobs").iterdir())) == 1
    kept = _recipe(tmp_path / "second", storage={"retention": "keep_all"})
    assert main(["run", str(kept)]) == 0 and main(["gc", str(kept)]) == 0
    assert checkpoints.exists()


def test_console_script_tunes_only_its_own_collector(tmp_path: Path, sluice_home: Path) -> None:
    """`sluice` (pipeline_defs.console) freezes what its imports made and collects again afterwards; the run it
    makes writes the same export as `cli.main` in this process, which leaves this process's collector as it was."""
    before = (gc.get_threshold(), gc.get_freeze_count(), gc.isenabled())
    path = _recipe(tmp_path)
    assert main(["run", str(path)]) == 0
    assert (gc.get_threshold(), gc.get_freeze_count(), gc.isenabled()) == before
    in_process = (tmp_path / "out.jsonl").read_bytes()

    second = _recipe(tmp_path / "second")
    probe = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('GC', gc.get_freeze_count(), gc.isenabled()))\n"
        f"sys.argv = ['sluice', 'run', {str(second)!r}]\n"
        "from pipeline_defs.console import main\n"
        "main()\n"
    )
    env = {**os.environ, "SLUICE_HOME": str(tmp_path / "home2"), "DAGSTER_HOME": str(tmp_path / "home2" / "dh")}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    gc_line = [ln for ln in done.stdout.splitlines() if ln.startswith("GC ")][-1].split()
    assert int(gc_line[1]) > 100_000 and gc_line[2] == "True"
    assert "input 25 = kept 25" in done.stdout
    assert (tmp_path / "second" / "out.jsonl").read_bytes() == in_process


def test_the_console_script_freezes_what_opening_the_instance_imported(tmp_path: Path, sluice_home: Path) -> None:
    """The instance's storage modules are imported when a command first opens it, after the script froze its
    imports: `settle` freezes them too, in the script's process only (here, where `cli.main` is called from a
    test, opening an instance leaves the collector as it was)."""
    probe = (
        "import gc\n"
        "from pipeline_defs import console\n"
        "console.start()\n"
        "from pipeline_defs import execute\n"
        "console.ready()\n"
        "before = gc.get_freeze_count()\n"
        "execute.instance_ready()\n"
        "print('FROZEN', before, gc.get_freeze_count(), gc.isenabled())\n"
    )
    env = {**os.environ, "SLUICE_HOME": str(tmp_path / "home2"), "DAGSTER_HOME": str(tmp_path / "home2" / "dh")}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    _, before, after, enabled = [ln for ln in done.stdout.splitlines() if ln.startswith("FROZEN ")][-1].split()
    assert int(after) > int(before) + 20_000 and enabled == "True"

    from pipeline_defs import execute

    frozen = gc.get_freeze_count()
    monkey = execute._INSTANCE
    try:
        execute._INSTANCE = None  # opened afresh in this process
        execute.instance_ready()
    finally:
        execute._INSTANCE = monkey
    assert gc.get_freeze_count() == frozen


def test_python_m_pipeline_defs_is_the_sluice_command(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline_defs", "validate", str(tmp_path / "missing.yaml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and done.stderr.startswith("sluice validate:") and "missing.yaml" in done.stderr
