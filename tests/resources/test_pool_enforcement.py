"""Fractional GPU allocation across runs: an op at `num_gpus: 0.25` on one (fake) GPU gets a Dagster pool of
limit 4, and 8 partition runs launched at once never have more than 4 of its steps running together.

The Dagster pool schedules the steps (blocked ones wait and re-poll); the pool resource's worker slot makes the
limit exact where Dagster's claim races on SQLite (see resources/pools.py). The job's steps meet at a barrier
(tests/resources/pool_job.py), so how busy the machine is decides nothing: exactly 4 overlap, never more."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

from resources.hardware import Hardware
from resources.planner import OpDemand, plan_recipe
from resources.pools import apply_pool_limits
from tests.resources.pool_job import POOL

ROOT = Path(__file__).resolve().parents[2]
JOB = Path(__file__).with_name("pool_job.py")
RUNS = 8


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most [start, end) intervals that share an instant (an end before a start at the same time)."""
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    running = most = 0
    for _, step in events:
        running += step
        most = max(most, running)
    return most


def test_max_overlap_counts_half_open_intervals() -> None:
    assert max_overlap([(0, 1), (1, 2), (2, 3)]) == 1
    assert max_overlap([(0, 3), (1, 2), (1.5, 4), (3, 5)]) == 3
    assert max_overlap([]) == 0


def test_a_quarter_gpu_op_runs_at_most_four_steps_at_once_across_runs(tmp_path: Path) -> None:
    home, out = tmp_path / "dagster_home", tmp_path / "timings"
    home.mkdir()
    out.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    plan = plan_recipe(
        [OpDemand("gpu_step", accelerator="cuda", num_gpus=0.25)], Hardware.fake(gpus=1), recipe="pool_test"
    )
    assert plan["gpu_step"].pool == POOL
    assert plan["gpu_step"].num_proc == 4
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert apply_pool_limits(instance, plan) == {POOL: 4}
        assert instance.event_log_storage.get_concurrency_info(POOL).slot_count == 4

    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "SLUICE_POOL_TEST_DIR": str(out),
        "SLUICE_POOL_TEST_RUNS": str(RUNS),
        "SLUICE_POOL_TEST_SLOTS": str(tmp_path / "slots"),
    }
    cmd = [sys.executable, "-m", "dagster", "asset", "materialize", "-f", str(JOB), "--select", "*", "--partition"]
    t0 = time.monotonic()
    procs = [
        subprocess.Popen(
            [*cmd, f"p{i}"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for i in range(RUNS)
    ]
    logs = [p.communicate(timeout=420)[0] for p in procs]
    wall = time.monotonic() - t0

    failed = [(i, log[-2000:]) for i, (p, log) in enumerate(zip(procs, logs, strict=True)) if p.returncode != 0]
    assert not failed, failed
    records = [json.loads((out / f"p{i}.json").read_text()) for i in range(RUNS)]
    assert not [r for r in records if r["timed_out"]], records  # every step met its cohort
    overlap = max_overlap([(r["start"], r["end"]) for r in records])
    first = [r for r in records if r["order"] <= 4]
    blocked = max(r["dagster_pending"] for r in first)
    print(
        f"\n{RUNS} runs in {wall:.1f} s: max overlap {overlap} (limit 4); {blocked} steps queued at the Dagster "
        f"pool behind the first 4, {max(r['slot_waiting'] for r in first)} at a worker slot"
    )
    # The barrier holds the first 4 steps inside together until the other 4 are queued: 4 overlap whatever the
    # load, and a fifth inside at that time would show as an overlap of 5.
    assert overlap == 4
    assert blocked >= 1, "no step waited at the Dagster pool: its limit did not hold them back"
    assert {r["slot"] for r in records} <= {0, 1, 2, 3}
    assert {r["granted"] for r in records} == {"cuda:0"}
