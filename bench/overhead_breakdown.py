"""Where `sluice run`'s wall goes, beside the plain script's (issue 8): a breakdown of bench/execution.py's figure.

For each case of bench/execution.py (the demo, and the 5-op recipe on the bench corpus), --repeats interleaved
rounds of: `sluice run` from a fresh home, as bench/_timed_run.py (the command in-process, with timers around its
pieces); then bench/plain_baseline.py on the same recipe. Medians of each piece, in seconds of the main thread's
wall (they add up to the process wall, less what the timers cannot see):

* python start: the interpreter before the script; imports: the `sluice` command's modules;
* instance: opening (on a fresh home: creating) the Dagster instance, its storage modules imported;
* job: `run_recipe` outside the Dagster runs: planning, listing shards, the job log, the report;
* dagster: inside the runs, outside the asset and check functions: creating runs, plans, events, the IO manager;
* inside the step functions: ops (the ops' own work, a deduplicator's hashes and index included), source parse,
  export (writing the kept, dropped and quarantined rows, and its record), checkpoint (writing, or waiting for
  the background writers to finish), monitor (per-step resource monitors starting and stopping), recording
  (materialization metadata), and the rest of the step functions.

And the CPU seconds (user + system) of each whole process, Sluice's split by thread (`_timed_run.ThreadCpu`: the
main thread, the prefetch, the checkpoint writers, the export-ahead thread, Sluice's monitors, polars' compute
pool, async executor and IO threads, other native threads such as numba's): on 2 cores, a wall near
CPU seconds / 2 means the run is bound by its CPU work, not by waiting.

    python bench/overhead_breakdown.py [--repeats 3] [--cases demo,bench5,bench10]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus as corpus_mod
import execution
import harness as h
import run_all

# Timers that must only run inside a step body (bench/_timed_run.py checks where each ran).
NESTED = (
    "ops",
    "source_parse",
    "export_write",
    "export_record",
    "checkpoint_write",
    "checkpoint_wait",
    "monitor",
    "recording",
)

PIECES = (
    "python start",
    "imports",
    "instance",
    "job",
    "dagster",
    "ops",
    "source parse",
    "export",
    "checkpoint",
    "monitor",
    "recording",
    "step rest",
    "unaccounted",
)


def pieces(probe: dict[str, Any], wall: float) -> dict[str, float]:
    """The probe's nested timers as disjoint pieces of the process wall."""
    m = probe["main"]
    get = m.get
    inside_steps = {
        "ops": get("ops", 0.0),
        "source parse": get("source_parse", 0.0),
        "export": get("export_write", 0.0) + get("export_record", 0.0),
        "checkpoint": get("checkpoint_write", 0.0) + get("checkpoint_wait", 0.0),
        "monitor": get("monitor", 0.0),
        "recording": get("recording", 0.0),
    }
    steps = get("step_bodies", 0.0)
    out = {
        "python start": probe["before_script_s"],
        "imports": probe["imports_s"],
        "instance": get("instance", 0.0),
        "job": get("run_recipe", 0.0) - get("instance", 0.0) - get("dagster_runs", 0.0),
        "dagster": get("dagster_runs", 0.0) - steps,
        **inside_steps,
        "step rest": steps - sum(inside_steps.values()),
    }
    out["unaccounted"] = wall - sum(out.values())
    return {k: round(v, 3) for k, v in out.items()}


PLAIN_PIECES = ("plain read", "plain ops", "plain write")

CPU_GROUPS = (
    "main thread",
    "sluice-prefetch",
    "sluice-checkpoint",
    "sluice-export-ahead",
    "sluice-monitors",
    "polars pool",
    "polars async executor",
    "polars io",
    "other",
    "unsampled",
)
CPU_KEYS = ("sluice cpu", *(f"cpu:{g}" for g in CPU_GROUPS), "plain cpu")


def plain_pieces(log: str) -> dict[str, float]:
    """The plain script's own timings (its last line: `read=0.19s <op>=0.18s ... write=0.27s kept=N`)."""
    line = [ln for ln in log.splitlines() if ln.startswith("read=")][-1]
    timings = {k: float(v.rstrip("s")) for k, v in (part.split("=") for part in line.split()) if k != "kept"}
    read, write = timings.pop("read"), timings.pop("write")
    return {"plain read": read, "plain ops": round(sum(timings.values()), 3), "plain write": write}


def measure_case(name: str, case: dict[str, Any], work: Path, repeats: int) -> dict[str, Any]:
    rounds: list[dict[str, Any]] = []
    for r in range(repeats):
        run_dir = h.fresh_dir(work / "runs" / name / f"r{r}")
        home = run_dir / "home"
        home.mkdir()
        case["seed_home"](home)
        probe_out = run_dir / "probe.json"
        cmd = [sys.executable, str(h.BENCH / "_timed_run.py"), str(probe_out), str(case["recipe"])]
        run = h.measure("sluice", cmd, h.sluice_env(home), cwd=run_dir, log=run_dir / "sluice.log")
        base_cmd = [sys.executable, str(h.BENCH / "plain_baseline.py"), str(case["recipe"]), str(run_dir / "b.jsonl")]
        base = h.measure("baseline", base_cmd, h.sluice_env(home), cwd=run_dir, log=run_dir / "baseline.log")
        if not (run.ok and base.ok and probe_out.exists()):
            print(f"  [{name}] run {r + 1} FAILED:\n    {run.tail or base.tail}")
            continue
        probe = json.loads(probe_out.read_text())
        stray = {k: v for k, v in probe["main"].items() if k.startswith("outside:") and k[8:] in NESTED}
        if stray:
            print(f"  [{name}] run {r + 1}: step pieces timed outside any step body (not nested as assumed): {stray}")
        row = {
            "wall": run.wall_s,
            "plain": base.wall_s,
            **plain_pieces((run_dir / "baseline.log").read_text()),
            **pieces(probe, run.wall_s),
            "sluice cpu": run.cpu_s,
            **{f"cpu:{g}": probe.get("cpu", {}).get(g, 0.0) for g in CPU_GROUPS},
            "plain cpu": base.cpu_s,
            "probe": probe,
        }
        rounds.append(row)
        print(f"  [{name}] run {r + 1}: sluice {run.wall_s:.2f} s, plain {base.wall_s:.2f} s")
    if not rounds:
        return {"docs": case["docs"], "rounds": []}
    med = {k: h.median(r[k] for r in rounds) for k in ("wall", "plain", *PIECES, *PLAIN_PIECES, *CPU_KEYS)}
    return {"recipe": str(case["recipe"]), "docs": case["docs"], "median": med, "rounds": rounds}


def print_table(cases: dict[str, dict[str, Any]], machine: dict[str, Any]) -> None:
    print(f"\nmachine: {machine['cores']} cores ({machine['cpu_model']}), {machine['ram_gb']} GB RAM")
    print("medians, seconds of the main thread's wall:")
    names = [n for n in cases if cases[n].get("median")]
    print(f"{'':>14}" + "".join(f"{n:>10}" for n in names))
    for key in ("wall", *PIECES, "plain", *PLAIN_PIECES):
        label = "sluice wall" if key == "wall" else ("plain script" if key == "plain" else key)
        print(f"{label:>14}" + "".join(f"{cases[n]['median'][key]:>10.2f}" for n in names))
    print("medians, CPU seconds (user + system) of the whole process; Sluice's by thread:")
    for key in CPU_KEYS:
        label = key.removeprefix("cpu:")
        print(f"{label:>22}" + "".join(f"{cases[n]['median'][key]:>10.2f}" for n in names))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cases", default="demo,bench5")
    ap.add_argument("--corpus", type=Path, default=h.ROOT / ".sluice" / "corpus" / "bench")
    ap.add_argument("--work", type=Path, default=h.BENCH / ".work" / "overhead_breakdown")
    args = ap.parse_args()
    work = h.fresh_dir(args.work)
    np = h.cores()
    builders = {
        "demo": lambda: execution.demo_case(work),
        "bench5": lambda: execution.bench5_case(work, args.corpus, None, np),
        "bench10": lambda: execution.bench10_case(work, args.corpus, None, np),
    }
    machine = h.machine()
    if "bench10" in args.cases.split(","):
        corpus_mod.ensure(args.corpus)  # the warm-up reads it; the corpus cases ensure it themselves
        run_all.warm_kernels(work, args.corpus, np)
    cases = {}
    for name in args.cases.split(","):
        cases[name] = measure_case(name, builders[name](), work, args.repeats)
    print_table(cases, machine)
    path = h.write_result("overhead_breakdown", {"machine": machine, "repeats": args.repeats, "cases": cases})
    print(f"\nwritten: {path}")


if __name__ == "__main__":
    main()
