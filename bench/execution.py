"""Issue 8's targets: what orchestration costs Sluice beside the ops' own work, and beside a plain script.

Inputs: the demo (`recipes/demo.yaml` on its corpus), the bench corpus (>= 25k real-text docs, built by
bench/corpus.py) with the 5-op recipe (`bench5`), and, asked for, with issue 13's 10-op recipe (`bench10`, after
one unmeasured warm-up run that fills numba's kernel cache). For each, --repeats interleaved rounds of:

* `sluice run RECIPE` as a subprocess in a fresh SLUICE_HOME (the corpus already built: the demo corpus is copied
  in, the bench corpus is read where it lies): whole-process wall, and from the job's `job_summary.json` the ops'
  own seconds (`computed_this_run.*.seconds`: the source step's included, but not a source parse that ran ahead
  of its step on `sluice run`'s prefetch thread, which overlapped other work), the job's wall and its Dagster runs;
* the same command again in the same home (nothing changed: every checkpoint valid): the re-run wall;
* the same command once more after deleting the checkpoints, export and job logs but keeping the Dagster
  instance: the "warm" wall, what new input costs on an instance that already exists (the first run also pays
  for creating the instance's SQLite databases);
* bench/plain_baseline.py on the same recipe: one polars frame, `Op.run` per op, no Dagster; whole-process wall;
* the floor: a process that imports what the `sluice` command imports (tuned as the console script tunes it)
  and opens a fresh Dagster instance, then exits: what any `sluice run` pays on its main thread before its
  first step, whatever its input (the prefetch overlaps the first ops with it).

`--copies N` makes a bench case's input N copies of the corpus (ids suffixed `#c<k>`, so the copies are exact
duplicates that the dedups drop): a larger input than this machine's packages hold, for how the fixed costs
shrink against the work.

Printed: medians, overhead = (wall - op seconds) / op seconds (job wall and process wall), Sluice / baseline,
and whether both kept the same rows. Targets (issue 8): overhead <= 15 %, Sluice <= 1.3x the baseline at
>= 25k docs on 2 cores, demo <= 8 s from a fresh home, unchanged re-run <= 3 s.

    python bench/execution.py [--repeats 3] [--quick] [--cases demo,bench5,bench10] [--copies N]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus as corpus_mod
import harness as h
import run_all

TARGETS = {"overhead": 0.15, "vs_baseline": 1.3, "demo_wall_s": 8.0, "rerun_wall_s": 3.0}


def demo_case(work: Path) -> dict[str, Any]:
    """The demo recipe as shipped; its corpus built once here and copied into every fresh home."""
    sys.path.insert(0, str(h.ROOT))
    from pipeline_defs.corpus import ensure_demo_corpus

    built = ensure_demo_corpus(work / "demo_corpus")
    return {
        "recipe": h.ROOT / "recipes" / "demo.yaml",
        "seed_home": lambda home: shutil.copytree(built.out_dir, home / "corpus" / "demo"),
        "docs": built.total_docs,
    }


def bench5_case(work: Path, corpus_dir: Path, docs: int | None, np: int, copies: int = 1) -> dict[str, Any]:
    return corpus_case("bench5", run_all.RECIPE_5, work, corpus_dir, docs, np, copies)


def bench10_case(work: Path, corpus_dir: Path, docs: int | None, np: int, copies: int = 1) -> dict[str, Any]:
    """Issue 13's 10-op recipe (MinHash included) on the bench corpus."""
    return corpus_case("bench10", run_all.RECIPE_10, work, corpus_dir, docs, np, copies)


def corpus_copies(corpus_dir: Path, out: Path, copies: int) -> int:
    """`copies` copies of the corpus's JSONL shards, one file per shard and copy, ids suffixed `#c<k>` (so every
    copy after the first is an exact duplicate of a document of the first: a larger input whose dedups drop
    the copies). The real corpus is all the text this machine's packages hold (~134 MB); this is a larger one."""
    import polars as pl

    out.mkdir(parents=True, exist_ok=True)
    n = 0
    shards = sorted((corpus_dir / "jsonl").glob("*.jsonl"))
    for shard in shards:
        frame = pl.read_ndjson(shard)
        for k in range(copies):
            frame.with_columns(pl.col("id") + f"#c{k}").write_ndjson(out / f"c{k}-{shard.name}")
        n += frame.height * copies
    return n


def corpus_case(
    name: str,
    ops: list[tuple[str, dict[str, Any]]],
    work: Path,
    corpus_dir: Path,
    docs: int | None,
    np: int,
    copies: int = 1,
) -> dict[str, Any]:
    manifest = corpus_mod.ensure(corpus_dir)
    if copies > 1:
        dataset = work / "inputs" / f"copies_{copies}"
        n = corpus_copies(corpus_dir, dataset, copies)
    elif docs:
        source = h.corpus_input(corpus_dir, work / "inputs" / f"docs_{docs}.jsonl", docs)
        dataset, n = Path(source["path"]), source["docs"]
    else:
        dataset, n = corpus_dir / "jsonl", manifest["docs"]
    recipe = work / "recipes" / f"{name}.yaml"
    recipe.parent.mkdir(parents=True, exist_ok=True)
    recipe.write_text(run_all.recipe_yaml(name, dataset, ops, np))
    return {"recipe": recipe, "seed_home": lambda home: None, "docs": n}


# What every `sluice run` pays before its first step, whatever its input: the `sluice` command's imports (tuned as
# the console script tunes them) and a fresh Dagster instance opened; then the process exits.
FLOOR_SCRIPT = """
from pipeline_defs import console
console.start()
import pipeline_defs.cli
console.ready()
from pipeline_defs.execute import instance_ready
instance_ready()
console.finish(0)
"""


def measure_case(name: str, case: dict[str, Any], work: Path, repeats: int, timeout: float) -> dict[str, Any]:
    rows: dict[str, list[h.Measured]] = {
        "sluice": [],
        "rerun": [],
        "warm": [],
        "baseline": [],
        "baseline_dropped": [],
        "floor": [],
    }
    op_seconds, job_walls, dagster_runs, agree, same_files = [], [], [], None, None
    for r in range(repeats):
        run_dir = h.fresh_dir(work / "runs" / name / f"r{r}")
        home = run_dir / "home"
        home.mkdir()
        case["seed_home"](home)
        env = h.sluice_env(home)
        cmd = h.sluice_cmd(case["recipe"])
        first = h.measure("sluice", cmd, env, cwd=run_dir, timeout=timeout, log=run_dir / "sluice.log")
        summary = h.job_summary(home)
        seconds = h.op_seconds(summary)
        first.extra = {
            "op_seconds": round(sum(seconds.values()), 3),
            "per_step_seconds": seconds,
            "job_wall_s": h.summary_wall(summary),
            "dagster_runs": h.summary_runs(summary),
        }
        rows["sluice"].append(first)
        if first.ok and seconds:
            op_seconds.append(sum(seconds.values()))
            job_walls.append(h.summary_wall(summary))
            dagster_runs.append(h.summary_runs(summary))
        rerun = h.measure("rerun", cmd, env, cwd=run_dir, timeout=timeout, log=run_dir / "rerun.log")
        rows["rerun"].append(rerun)
        for kept in ("checkpoints", "export", "jobs"):
            shutil.rmtree(home / kept, ignore_errors=True)
        warm = h.measure("warm", cmd, env, cwd=run_dir, timeout=timeout, log=run_dir / "warm.log")
        rows["warm"].append(warm)
        export = Path(summary.get("export_path") or "")
        sluice_files = [export.read_bytes(), _dropped_file(export).read_bytes()] if first.ok and export.name else None
        out = run_dir / "baseline.jsonl"
        base_cmd = [sys.executable, str(h.BENCH / "plain_baseline.py"), str(case["recipe"]), str(out)]
        base = h.measure("baseline", base_cmd, env, cwd=run_dir, timeout=timeout, log=run_dir / "baseline.log")
        rows["baseline"].append(base)
        # the same ops writing the dropped rows too, as Sluice's export does (less the quarantine, which the plain
        # script's reader cannot make): are Sluice's two files byte for byte the plain script's?
        out_d = run_dir / "baseline_d.jsonl"
        base_d = h.measure(
            "plain+drop", [*base_cmd[:-1], str(out_d), "--with-dropped"], env, cwd=run_dir, timeout=timeout
        )
        rows["baseline_dropped"].append(base_d)
        if sluice_files is not None and base_d.ok and same_files is None:
            same_files = sluice_files == [out_d.read_bytes(), _dropped_file(out_d).read_bytes()]
        floor_home = h.fresh_dir(run_dir / "floor_home")
        floor_cmd = [sys.executable, "-c", FLOOR_SCRIPT]
        floor = h.measure("floor", floor_cmd, h.sluice_env(floor_home), cwd=run_dir, timeout=timeout)
        rows["floor"].append(floor)
        for m in (first, rerun, warm, base, base_d, floor):
            status = "ok" if m.ok else f"FAILED rc={m.rc}\n    " + m.tail.replace("\n", "\n    ")
            print(f"  [{name}] {m.label:<9} run {r + 1}: {m.wall_s:7.2f} s {m.peak_rss_mb:7.0f} MB  {status}")
        if first.ok and base.ok and agree is None:
            agree = h.agreement(h.read_rows(export), h.read_rows(out), limit=20) if export.name else None
        shutil.rmtree(run_dir, ignore_errors=True)  # checkpoints and exports of a full run: gigabytes per round

    docs = case["docs"]
    wall = h.median(m.wall_s for m in rows["sluice"] if m.ok)
    base_wall = h.median(m.wall_s for m in rows["baseline"] if m.ok)
    ops = h.median(op_seconds)
    job_wall = h.median(job_walls)
    warm_wall = h.median(m.wall_s for m in rows["warm"] if m.ok)
    floor_wall = h.median(m.wall_s for m in rows["floor"] if m.ok)
    base_d_wall = h.median(m.wall_s for m in rows["baseline_dropped"] if m.ok)
    return {
        "recipe": str(case["recipe"]),
        "docs": docs,
        "sluice_wall_s": wall,
        "sluice_job_wall_s": job_wall,
        "op_seconds": ops,
        "per_step_seconds": rows["sluice"][-1].extra.get("per_step_seconds"),
        "overhead_job": round((job_wall - ops) / ops, 3) if ops and job_wall else None,
        "overhead_process": round((wall - ops) / ops, 3) if ops and wall else None,
        "rerun_wall_s": h.median(m.wall_s for m in rows["rerun"] if m.ok),
        "warm_wall_s": h.median(m.wall_s for m in rows["warm"] if m.ok),
        "warm_vs_baseline": round(warm_wall / base_wall, 2) if warm_wall and base_wall else None,
        "dagster_runs": dagster_runs[-1] if dagster_runs else None,
        "baseline_wall_s": base_wall,
        "floor_wall_s": floor_wall,
        "floor_vs_baseline": round(floor_wall / base_wall, 2) if floor_wall and base_wall else None,
        "sluice_vs_baseline": round(wall / base_wall, 2) if wall and base_wall else None,
        "baseline_dropped_wall_s": base_d_wall,
        "sluice_vs_baseline_dropped": round(wall / base_d_wall, 2) if wall and base_d_wall else None,
        "same_files_as_baseline_dropped": same_files,
        "sluice_docs_per_s": round(docs / wall) if wall else None,
        "baseline_docs_per_s": round(docs / base_wall) if base_wall else None,
        "sluice_peak_rss_mb": h.median(m.peak_rss_mb for m in rows["sluice"] if m.ok),
        "baseline_peak_rss_mb": h.median(m.peak_rss_mb for m in rows["baseline"] if m.ok),
        "agreement_with_baseline": agree,
        "runs": {k: [m.as_dict() for m in v] for k, v in rows.items()},
    }


def _dropped_file(export: Path) -> Path:
    from pipeline_defs.export import sidecar  # the bench's own process: its imports are not measured

    return sidecar(export, "dropped")


def fmt(value: Any, spec: str = ".2f", suffix: str = "") -> str:
    return "-" if value is None else f"{value:{spec}}{suffix}"


def print_table(cases: dict[str, dict[str, Any]], machine: dict[str, Any]) -> None:
    print(f"\nmachine: {machine['cores']} cores ({machine['cpu_model']}), {machine['ram_gb']} GB RAM")
    head = (
        "case",
        "docs",
        "wall s",
        "job s",
        "op s",
        "ovh job",
        "ovh proc",
        "re-run s",
        "warm s",
        "runs",
        "plain s",
        "sluice/plain",
        "warm/plain",
        "floor s",
        "same rows",
        "plain+d s",
        "sl/plain+d",
        "same files",
    )
    print("".join(f"{c:>13}" for c in head))
    for name, c in cases.items():
        agree = c.get("agreement_with_baseline")
        same = "-" if not agree else ("yes" if agree["disagreements"] == 0 else f"{agree['disagreements']} differ")
        cells = (
            name,
            fmt(c["docs"], ","),
            fmt(c["sluice_wall_s"]),
            fmt(c["sluice_job_wall_s"]),
            fmt(c["op_seconds"]),
            fmt(c["overhead_job"], ".0%"),
            fmt(c["overhead_process"], ".0%"),
            fmt(c["rerun_wall_s"]),
            fmt(c.get("warm_wall_s")),
            fmt(c["dagster_runs"], "d"),
            fmt(c["baseline_wall_s"]),
            fmt(c["sluice_vs_baseline"], ".2f", "x"),
            fmt(c.get("warm_vs_baseline"), ".2f", "x"),
            fmt(c.get("floor_wall_s")),
            same,
            fmt(c.get("baseline_dropped_wall_s")),
            fmt(c.get("sluice_vs_baseline_dropped"), ".2f", "x"),
            {None: "-", True: "yes", False: "NO"}[c.get("same_files_as_baseline_dropped")],
        )
        print("".join(f"{x!s:>13}" for x in cells))
    print(
        f"targets: overhead <= {TARGETS['overhead']:.0%}, sluice/plain <= {TARGETS['vs_baseline']}x at >= 25k docs, "
        f"demo wall <= {TARGETS['demo_wall_s']:.0f} s, unchanged re-run <= {TARGETS['rerun_wall_s']:.0f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=None, help="interleaved rounds (default 3; quick 1)")
    parser.add_argument("--quick", action="store_true", help="smoke: bench corpus cut to 3,000 docs, 1 round")
    parser.add_argument("--cases", default="demo,bench5")
    parser.add_argument("--docs", type=int, default=None, help="bench case: first N corpus docs (one file)")
    parser.add_argument(
        "--copies", type=int, default=1, help="bench cases: N copies of the corpus (ids suffixed; exact duplicates)"
    )
    parser.add_argument("--np", type=int, default=None, help="np of the bench recipe (default: usable cores)")
    parser.add_argument("--corpus", default=None, help="bench corpus directory (default $SLUICE_HOME/corpus/bench)")
    parser.add_argument("--results", default=None, help="default bench/results[/quick]")
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    work = h.fresh_dir(h.BENCH / ".work" / time.strftime("execution_%Y%m%d_%H%M%S"))
    corpus_dir = Path(args.corpus).resolve() if args.corpus else corpus_mod.default_dir()
    docs = args.docs or (3000 if args.quick else None)
    machine = h.machine()
    if "bench10" in args.cases.split(","):
        run_all.warm_kernels(work, corpus_dir, args.np or h.cores())
    cases = {}
    for name in args.cases.split(","):
        if name == "demo":
            case = demo_case(work)
        elif name == "bench5":
            case = bench5_case(work, corpus_dir, docs, args.np or h.cores(), args.copies)
        elif name == "bench10":
            case = bench10_case(work, corpus_dir, docs, args.np or h.cores(), args.copies)
        else:
            sys.exit(f"execution: unknown case {name!r} (demo, bench5, bench10)")
        if args.copies > 1 and name != "demo":
            name = f"{name}x{args.copies}"
        print(f"== {name}: {case['recipe']} ({case['docs']:,} docs), {repeats} round(s)", flush=True)
        cases[name] = measure_case(name, case, work, repeats, args.timeout)
    print_table(cases, machine)
    results = Path(args.results) if args.results else h.RESULTS / ("quick" if args.quick else "")
    path = h.write_result(
        "execution" if args.copies == 1 else f"execution_x{args.copies}",  # a larger input: its own results file
        {
            "workload": "execution",
            "quick": args.quick,
            "repeats": repeats,
            "machine": machine,
            "targets": TARGETS,
            "cases": cases,
        },
        results,
    )
    print(f"-> {path}")


if __name__ == "__main__":
    main()
