"""Live progress: `sluice status` per phase and shard from the instance (also for runs without a Sluice job id,
as the UI launches them), and the progress line `sluice run` prints."""

from __future__ import annotations

import re
from pathlib import Path

import dagster as dg
import pytest

from pipeline_defs.cli import main
from pipeline_defs.execute import instance_ready, run_recipe
from pipeline_defs.graph import build_recipe_graph
from pipeline_defs.progress import Progress, progress_for
from pipeline_defs.recipe import load_recipe
from tests.test_fault_tolerance import _corpus, _ops, _recipe

pytestmark = pytest.mark.slow


def _setup(tmp_path: Path, name: str, sleep_s: float = 0.0) -> Path:
    counter = tmp_path / "counter"
    counter.mkdir()
    return _recipe(tmp_path, name, data=_corpus(tmp_path / "data"), ops=_ops(counter, sleep_s=sleep_s))


def test_status_lists_every_phase_and_shard_of_a_finished_job(
    tmp_path: Path, sluice_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _setup(tmp_path, "stat")
    report = run_recipe(path, echo=lambda _: None)
    capsys.readouterr()
    assert main(["status", report.job_id]) == 0
    out = capsys.readouterr().out
    shards = instance_ready().get_dynamic_partitions("stat_shards")
    assert len(shards) == 4
    assert out.splitlines()[0] == f"job {report.job_id}: {report.runs} runs"
    assert [int(p) for p in re.findall(r"^phase (\d+)", out, re.M)] == list(range(1, report.runs + 1))
    counting = next(line for line in out.splitlines() if "op01_counting_mapper" in line)
    assert "4/4" in counting and all(f"{k}✓" in counting for k in shards)
    assert re.search(r"^\s+export\s+1/1", out, re.M)
    # the latest job is the default
    assert main(["status"]) == 0
    assert capsys.readouterr().out == out


def test_status_finds_a_run_launched_without_a_job_id(
    tmp_path: Path, sluice_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A UI launch of one shard: no `sluice/job_id` tag; found by run id and by the recipe's latest runs."""
    path = _setup(tmp_path, "uirun")
    run_recipe(path, echo=lambda _: None)  # registers the shards and writes every checkpoint
    instance = instance_ready()
    shard = instance.get_dynamic_partitions("uirun_shards")[1]
    recon = dg.build_reconstructable_job(
        "pipeline_defs.loader", "job_for_recipe", reconstructable_args=(str(path), "in_process")
    )
    graph = build_recipe_graph(load_recipe(path))
    key = next(k for k in graph.phases[0].keys if k.path[-1] == "op01_counting_mapper")
    result = dg.execute_job(recon, instance, tags={"dagster/partition": shard}, asset_selection=[key])
    assert result.success
    capsys.readouterr()
    assert main(["status", result.run_id]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"phase ui\s+run {result.run_id[:8]}\s+SUCCESS\s+1 shards", out)
    assert re.search(rf"op01_counting_mapper\s+1/1\s+{re.escape(shard)}✓", out)
    assert main(["status", "--recipe", str(path)]) == 0
    assert result.run_id[:8] in capsys.readouterr().out


def test_progress_line_counts_up_to_every_shard_step(tmp_path: Path, sluice_home: Path) -> None:
    path = _setup(tmp_path, "prog", sleep_s=0.2)
    recipe = load_recipe(path)
    graph = build_recipe_graph(recipe)
    instance = instance_ready()
    lines: list[str] = []
    # total as `sluice run` computes it: 4 shards through 6 partitioned steps, 2 global stages
    printer = progress_for(instance, "prog_job", graph.phases, 4, echo=lines.append)
    partitioned = sum(len(p.keys) for p in graph.phases if p.partitioned)
    assert printer.total == 4 * partitioned + sum(len(p.keys) for p in graph.phases if not p.partitioned)
    with Progress(instance, "prog_job", printer.total, echo=lines.append, every_s=0.05, tty=False) as live:
        run_recipe(path, echo=lambda _: None, job_id="prog_job")
        final = live.line()
    counts = [int(m.group(1)) for line in lines if (m := re.match(r"progress (\d+)/(\d+) ", line))]
    assert counts == sorted(counts)  # never goes back
    assert final.startswith(f"progress {printer.total}/{printer.total} shard-steps (100%)")
    rate = float(re.search(r"([\d,]+) rows/s", final).group(1).replace(",", ""))
    assert rate > 0
