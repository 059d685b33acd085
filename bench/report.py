"""docs/benchmarks.md and its charts, generated from bench/results/*.json (written by run_all.py, execution.py).

Nothing here measures: it reads the JSON, draws PNGs with matplotlib (throughput bars, the scaling curve,
memory) and writes the Markdown. A smoke run's results (bench/results/quick) go to bench/results/quick/ and
never overwrite docs/.

    python bench/report.py [--results bench/results] [--out docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as h

# Measured before this harness existed (issue 13), 2 cores, a real corpus of this kind.
ANCHORS = {
    "dj_5op_docs_per_s": 1060,  # Data-Juicer, 5-op recipe, 28.8k docs, 27.2 s
    "sluice_5op_default_s_28k": 16.5,
    "sluice_5op_best_s_28k": 11.3,
    "plain_5op_docs_per_s": 11_400,  # plain polars script, 2.5 s
}
TOOL_COLORS = {"data-juicer": "#d62728", "sluice": "#1f77b4", "datasketch": "#7f7f7f", "rensa": "#2ca02c"}


def load(results: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted(results.glob("*.json")):
        try:
            out[path.stem] = json.loads(path.read_text())
        except ValueError:
            continue
    return out


def f(value: Any, spec: str = ",.0f", suffix: str = "") -> str:
    return "–" if value is None else f"{value:{spec}}{suffix}"


def table(head: list[str], rows: list[list[str]]) -> str:
    for row in rows:
        if len(row) != len(head):
            raise ValueError(f"a row of {len(row)} cells under {len(head)} columns ({', '.join(head)}): {row}")
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def config_rows(name: str, configs: dict[str, Any]) -> list[list[str]]:
    rows = []
    for tool, c in configs.items():
        rows.append(
            [
                name,
                tool,
                f(c.get("wall_s"), ".2f"),
                f(c.get("docs_per_s")),
                f(c.get("mb_per_s"), ".2f"),
                f(c.get("peak_rss_mb")),
                f(c.get("peak_pss_mb")),
                f(c.get("speedup_vs_dj"), ".2f", "×"),
                f(c.get("op_seconds"), ".2f"),
                f(c.get("dagster_runs"), "d"),
                f"{c.get('ok_runs', 0)}/{c.get('runs', 0)}",
            ]
        )
    return rows


CONFIG_HEAD = [
    "workload",
    "tool",
    "wall s",
    "docs/s",
    "MB/s",
    "peak RSS MB",
    "peak PSS MB",
    "× DJ",
    "op s",
    "runs",
    "ok",
]


def agreement_line(agree: dict[str, Any] | None) -> str:
    if not agree:
        return "agreement: not measured (a tool failed or was not run)"
    return (
        f"agreement: {agree['kept_both']:,} ids kept by both; kept only by Data-Juicer {agree['only_dj']}, "
        f"only by Sluice {agree['only_sluice']}, same id with other text {agree['text_differs']} "
        f"(Data-Juicer kept {agree['kept_dj']:,}, Sluice {agree['kept_sluice']:,})"
    )


# --- charts -------------------------------------------------------------------------------------------------


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def bar_chart(path: Path, title: str, groups: dict[str, dict[str, float]], ylabel: str, log: bool = False) -> bool:
    """Grouped bars: group (workload) -> tool -> value."""
    groups = {g: {t: v for t, v in tools.items() if v} for g, tools in groups.items()}
    groups = {g: tools for g, tools in groups.items() if tools}
    if not groups:
        return False
    plt = _plt()
    tools = list(dict.fromkeys(t for g in groups.values() for t in g))
    width = 0.8 / len(tools)
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(groups) + 2), 4))
    for i, tool in enumerate(tools):
        xs = [j + i * width for j, g in enumerate(groups) if tool in groups[g]]
        ys = [groups[g][tool] for g in groups if tool in groups[g]]
        ax.bar(xs, ys, width, label=tool, color=TOOL_COLORS.get(tool))
    ax.set_xticks([j + width * (len(tools) - 1) / 2 for j in range(len(groups))])
    ax.set_xticklabels(list(groups), rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if log:
        ax.set_yscale("log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def scaling_chart(path: Path, scaling: dict[str, Any]) -> bool:
    points = scaling.get("points") or {}
    series: dict[str, list[tuple[int, float]]] = {}
    for point in points.values():
        docs = point.get("input", {}).get("docs")
        for tool, c in (point.get("configs") or {}).items():
            if docs and c.get("wall_s"):
                series.setdefault(tool, []).append((docs, c["wall_s"]))
    if not series:
        return False
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for tool, xy in series.items():
        xy.sort()
        ax.plot([x for x, _ in xy], [y for _, y in xy], "o-", label=tool, color=TOOL_COLORS.get(tool))
    ax.set_xlabel("documents")
    ax.set_ylabel("wall seconds (whole process)")
    ax.set_title(f"Cost vs corpus size ({scaling.get('recipe')})")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


# --- sections -----------------------------------------------------------------------------------------------


def minhash_after_kernel_load(minhash: dict[str, Any], tool: str) -> float | None:
    """Docs/s of a Sluice MinHash run's signatures, index and apply, without loading its compiled kernels (numba's
    import and cache: once per process): the input's docs over the median of (total − kernel_load) over its runs."""
    docs = (minhash.get("input") or {}).get("docs")
    spans = [
        s["total"] - s["kernel_load"]
        for run in (minhash.get("runs") or {}).get(tool, [])
        if run.get("rc") == 0 and (s := (run.get("extra") or {}).get("seconds")) and "kernel_load" in s
    ]
    median = statistics.median(spans) if spans else None
    return round(docs / median) if docs and median else None


def section_targets(data: dict[str, Any]) -> list[str]:
    rows = []
    recipes = (data.get("recipe") or {}).get("recipes", {})
    r10 = recipes.get("recipe10", {})
    r5 = recipes.get("recipe5", {})
    speed10 = r10.get("configs", {}).get("sluice", {}).get("speedup_vs_dj")
    speed5 = r5.get("configs", {}).get("sluice", {}).get("speedup_vs_dj")
    rows.append(
        [
            "10-op recipe, full corpus: Sluice ≥ 10× Data-Juicer docs/s, same cores, whole process",
            f(speed10, ".2f", "×") if speed10 else r10.get("skipped", "not run"),
        ]
    )
    if speed5:
        rows.append(["(5-op recipe, same measure)", f(speed5, ".2f", "×")])
    for name, r in (("10-op", r10), ("5-op", r5)):
        agree = r.get("agreement")
        rows.append([f"{name} recipe: 0 disagreements", str(agree["disagreements"]) if agree else "not measured"])
        if r.get("agreement_dj_hash"):
            rows.append(
                [f"{name} recipe, MinHash hash_mode datajuicer: 0", str(r["agreement_dj_hash"]["disagreements"])]
            )
    ops = (data.get("ops") or {}).get("ops", {})
    per_op = [f"{name}: {o['agreement']['disagreements']}" for name, o in ops.items() if o.get("agreement")]
    rows.append(
        [
            "each op alone: 0 disagreements (mappers, filters, exact dedup; MinHash in DJ mode)",
            "; ".join(per_op) or "not measured",
        ]
    )
    minhash = data.get("minhash") or {}
    pairs = minhash.get("agreement") or {}
    for tool, label in (("sluice", ""), ("sluice-oph", " (hash_mode oph)")):
        mh = minhash.get("configs", {}).get(tool, {})
        if not mh and tool != "sluice":
            continue
        loaded = minhash_after_kernel_load(minhash, tool)
        rows.append(
            [
                f"MinHash dedup end to end ≥ 50k docs/s on 2 cores{label}",
                f"{f(mh.get('docs_per_s'))} docs/s whole process, {f(mh.get('compute_docs_per_s'))} in the op "
                f"(its kernels' load included), {f(loaded)} once they are loaded"
                if mh
                else "Sluice op not registered",
            ]
        )
    for tool in ("sluice-dj-hash", "sluice", "sluice-oph"):
        a = pairs.get(f"{tool} vs data-juicer")
        if a:
            rows.append(
                [
                    f"MinHash alone ({tool}): same rows as Data-Juicer",
                    f"{a['only_here']} kept only by Sluice, {a['only_reference']} only by Data-Juicer",
                ]
            )
    for name, r in (("10-op", r10), ("5-op", r5)):
        peak = r.get("configs", {}).get("sluice", {}).get("peak_rss_mb")
        if peak:
            rows.append([f"peak RSS ≤ 2 GB on the full corpus (Sluice, {name} recipe)", f(peak, ",.0f", " MB")])
    scaling = data.get("scaling") or {}
    points = scaling.get("points", {})
    lin = []
    for tool in ("sluice", "data-juicer"):
        w25 = (points.get("25%", {}).get("configs") or {}).get(tool, {}).get("wall_s")
        w100 = (points.get("100%", {}).get("configs") or {}).get(tool, {}).get("wall_s")
        if w25 and w100:
            lin.append(f"{tool}: wall(100 %) / wall(25 %) = {w100 / w25:.2f} (linear: 4)")
    rows.append([f"cost linear in corpus size ({scaling.get('recipe', '–')})", "; ".join(lin) or "not run"])
    return ["## Targets (issue 13)", "", table(["target", "measured"], rows), ""]


def section_anchors(data: dict[str, Any]) -> list[str]:
    r5 = ((data.get("recipe") or {}).get("recipes", {}) or {}).get("recipe5", {}).get("configs", {})
    ex = ((data.get("execution") or {}).get("cases") or {}).get("bench5", {})
    rows = []
    dj = r5.get("data-juicer", {}).get("docs_per_s")
    sl = r5.get("sluice", {}).get("docs_per_s")
    rows.append(
        [
            "Data-Juicer 5-op docs/s",
            f(ANCHORS["dj_5op_docs_per_s"]),
            f(dj),
            f(dj / ANCHORS["dj_5op_docs_per_s"], ".2f", "×") if dj else "–",
        ]
    )
    rows.append(
        [
            "Sluice 5-op default, docs/s",
            f(28_800 / ANCHORS["sluice_5op_default_s_28k"]),
            f(sl),
            f(sl / (28_800 / ANCHORS["sluice_5op_default_s_28k"]), ".2f", "×") if sl else "–",
        ]
    )
    plain = ex.get("baseline_docs_per_s")
    rows.append(
        [
            "plain polars script 5-op, docs/s",
            f(ANCHORS["plain_5op_docs_per_s"]),
            f(plain),
            f(plain / ANCHORS["plain_5op_docs_per_s"], ".2f", "×") if plain else "–",
        ]
    )
    return [
        "## Against the anchor figures",
        "",
        "Anchors: issue 13 (2 cores, 28.8k docs). Throughput is compared as docs/s because the corpora differ; "
        "absolute figures from different sessions on a shared machine compare only roughly.",
        "",
        table(["figure", "anchor", "measured", "measured / anchor"], rows),
        "",
    ]


def section_recipe(data: dict[str, Any], charts: dict[str, str]) -> list[str]:
    recipe = data.get("recipe")
    if not recipe:
        return []
    lines = ["## 1. The recipe, whole process", ""]
    src = recipe.get("input", {})
    lines.append(
        f"Input: {f(src.get('docs'))} docs, {f(src.get('text_bytes', 0) / 1e6, '.1f')} MB. One YAML file "
        "per recipe, run by `dj-process --config X --use_cache false` and by `sluice run X`."
    )
    lines.append("")
    rows = []
    notes = []
    for name, r in recipe.get("recipes", {}).items():
        if r.get("skipped"):
            notes.append(f"- **{name}** skipped: {r['skipped']}")
            continue
        rows += config_rows(name, r.get("configs", {}))
        notes.append(f"- **{name}** {agreement_line(r.get('agreement'))}")
        if r.get("agreement_dj_hash"):
            notes.append(f"- **{name}**, MinHash hash_mode datajuicer: {agreement_line(r['agreement_dj_hash'])}")
        if r.get("sluice_rejects"):
            notes.append(f"  - Sluice rejects this recipe: `{r['sluice_rejects']}`")
    if rows:
        lines += [table(CONFIG_HEAD, rows), ""]
    lines += [*notes, ""]
    keys = recipe.get("dj_keys") or {}
    if keys:
        accepted = [k for k, v in keys.items() if v == "ok"]
        lines.append(f"Data-Juicer top-level keys Sluice accepts: {', '.join(f'`{k}`' for k in accepted) or 'none'}.")
        lines += [f"- rejects `{k}`: {v}" for k, v in keys.items() if v != "ok"]
        lines.append("")
    for key in ("throughput", "memory"):
        if key in charts:
            lines += [f"![{key}]({charts[key]})", ""]
    return lines


def section_minhash(data: dict[str, Any], charts: dict[str, str]) -> list[str]:
    mh = data.get("minhash")
    if not mh:
        return []
    lines = ["## 2. MinHash signatures + LSH alone", ""]
    if mh.get("skipped"):
        lines += [f"_{mh['skipped']}_", ""]
    lines.append(
        "Same shingles (5 space-separated tokens, lower-cased), 256 permutations, 25 bands × 10 rows, "
        "first of each union-find group kept. datasketch (scheme legacy, seed 42, SHA-1) computes Data-Juicer's "
        "exact "
        "signatures; rensa uses its own hash family."
    )
    lines.append("")
    rows = []
    for tool, c in mh.get("configs", {}).items():
        stages = c.get("stage_seconds") or {}
        rows.append(
            [
                tool,
                f(c.get("wall_s"), ".2f"),
                f(c.get("docs_per_s")),
                f(c.get("compute_s"), ".2f"),
                f(c.get("compute_docs_per_s")),
                ", ".join(f"{k} {v:.2f}" for k, v in stages.items()),
                f(c.get("peak_rss_mb")),
                f(c.get("kept")),
            ]
        )
    head = ["tool", "process wall s", "docs/s (process)", "compute s", "docs/s (compute)", "stages s", "RSS MB", "kept"]
    lines += [table(head, rows), ""]
    for pair, a in (mh.get("agreement") or {}).items():
        tool, reference = pair.split(" vs ")
        lines.append(
            f"- {pair}: kept {a['kept']:,}; only by {tool} {a['only_here']}, only by {reference} {a['only_reference']}"
        )
    lines.append("")
    if "minhash" in charts:
        lines += [f"![minhash]({charts['minhash']})", ""]
    return lines


def section_ops(data: dict[str, Any], charts: dict[str, str]) -> list[str]:
    ops = data.get("ops")
    if not ops:
        return []
    lines = ["## 3. Each op alone", ""]
    rows, skipped = [], []
    for name, r in ops.get("ops", {}).items():
        if r.get("skipped"):
            skipped.append(f"- {name}: {r['skipped']}")
            continue
        c = r.get("configs", {})
        dj, sl = c.get("data-juicer", {}), c.get("sluice", {})
        a = r.get("agreement") or {}
        rows.append(
            [
                name,
                f(dj.get("wall_s"), ".2f"),
                f(sl.get("wall_s"), ".2f"),
                f(sl.get("speedup_vs_dj"), ".2f", "×"),
                f(dj.get("peak_rss_mb")),
                f(sl.get("peak_rss_mb")),
                f(a.get("kept_both")),
                f(a.get("disagreements")),
            ]
        )
        variant = c.get("sluice (hash_mode datajuicer)")
        if variant:
            b = r.get("agreement_dj_hash") or {}
            rows.append(
                [
                    f"{name} (hash_mode datajuicer)",
                    "",
                    f(variant.get("wall_s"), ".2f"),
                    f(variant.get("speedup_vs_dj"), ".2f", "×"),
                    "",
                    f(variant.get("peak_rss_mb")),
                    f(b.get("kept_both")),
                    f(b.get("disagreements")),
                ]
            )
    head = ["op", "DJ wall s", "Sluice wall s", "× DJ", "DJ RSS MB", "Sluice RSS MB", "kept both", "disagreements"]
    if rows:
        lines += [table(head, rows), ""]
    lines += [*skipped, ""]
    if "ops" in charts:
        lines += [f"![ops]({charts['ops']})", ""]
    return lines


def section_configs(data: dict[str, Any]) -> list[str]:
    cfg = data.get("sluice_configs")
    if not cfg or not cfg.get("configs"):
        return []
    lines = [
        "## 4. Sluice checkpoint strategies and executors",
        "",
        f"Recipe {cfg.get('recipe')}; executors measured: {', '.join(cfg.get('executors') or [])} (celery only "
        "when a broker is reachable: `sluice up`).",
        "",
    ]
    if "celery" in (cfg.get("executors") or []):
        lines += [
            "The celery rows' RSS is the submitting `sluice run` process tree only: the steps run in the Celery "
            "workers `sluice up` started, which are not its children. Every row of this run shared the machine with "
            "that stack's idle servers (PostgreSQL, Redis, the workers, dagster-webserver and dagster-daemon).",
            "",
        ]
    rows = []
    for label, c in cfg["configs"].items():
        rows.append(
            [
                label,
                f(c.get("wall_s"), ".2f"),
                f(c.get("docs_per_s")),
                f(c.get("peak_rss_mb")),
                f(c.get("op_seconds"), ".2f"),
                f(c.get("dagster_runs"), "d"),
                f(c.get("vs_every_op"), ".2f", "×"),
                f(c.get("speedup_vs_dj"), ".2f", "×"),
            ]
        )
    head = ["configuration", "wall s", "docs/s", "RSS MB", "op s", "Dagster runs", "× every_op", "× DJ"]
    lines += [table(head, rows), ""]
    for label, why in (cfg.get("sluice_rejects") or {}).items():
        if why:
            lines.append(f"- {label}: Sluice rejects it: `{why}`")
    return [*lines, ""]


def section_scaling(data: dict[str, Any], charts: dict[str, str]) -> list[str]:
    sc = data.get("scaling")
    if not sc or not sc.get("points"):
        return []
    lines = ["## 5. Scaling: 25 / 50 / 100 % of the corpus", ""]
    rows = []
    for point, p in sc["points"].items():
        if p.get("skipped"):
            rows.append([point, "–", p["skipped"], "", "", ""])
            continue
        for tool, c in (p.get("configs") or {}).items():
            rows.append(
                [
                    point,
                    f(p["input"]["docs"]),
                    tool,
                    f(c.get("wall_s"), ".2f"),
                    f(c.get("docs_per_s")),
                    f(c.get("peak_rss_mb")),
                ]
            )
    lines += [table(["share", "docs", "tool", "wall s", "docs/s", "RSS MB"], rows), ""]
    if "scaling" in charts:
        lines += [f"![scaling]({charts['scaling']})", ""]
    return lines


def section_execution(data: dict[str, Any]) -> list[str]:
    ex = data.get("execution")
    if not ex:
        return []
    t = ex.get("targets", {})
    lines = [
        "## Orchestration cost (issue 8, `bench/execution.py`)",
        "",
        "Sluice's whole-process wall, the ops' own seconds from the job summary (the source step's included; a source "
        "parse that ran ahead of its step, overlapping the job's start, is not), "
        "overhead = (wall − op s) / op s, the unchanged re-run, the run on an existing instance with checkpoints "
        "deleted (warm: new input, no instance to create), and a plain script running the same ops on one "
        "polars frame in one process (`bench/plain_baseline.py`). The floor: a process that only imports what "
        "the `sluice` command imports and opens a fresh Dagster instance (what every run pays on its main thread "
        "before its first step). A case named `…xN` ran on N copies of the corpus (`--copies N`: ids suffixed, "
        "so the copies are exact duplicates the dedups drop). The plain script leaves out the dropped rows Sluice "
        "writes beside its export; `plain + dropped` is the same script writing them too, in Sluice's form "
        "(`--with-dropped`), and `same files` says whether Sluice's export and dropped-rows file are byte for byte "
        "that script's two files.",
        "",
    ]
    cases = dict(ex.get("cases") or {})
    for key in sorted(k for k in data if k.startswith("execution_x")):  # `--copies N`: the same cases, N× the input
        cases.update((data[key] or {}).get("cases") or {})
    rows = []
    for name, c in cases.items():
        a = c.get("agreement_with_baseline")
        same = "–" if not a else ("yes" if a["disagreements"] == 0 else f"{a['disagreements']} differ")
        rows.append(
            [
                name,
                f(c.get("docs")),
                f(c.get("sluice_wall_s"), ".2f"),
                f(c.get("sluice_job_wall_s"), ".2f"),
                f(c.get("op_seconds"), ".2f"),
                f(c.get("overhead_job"), ".0%"),
                f(c.get("overhead_process"), ".0%"),
                f(c.get("rerun_wall_s"), ".2f"),
                f(c.get("warm_wall_s"), ".2f"),
                f(c.get("dagster_runs"), "d"),
                f(c.get("baseline_wall_s"), ".2f"),
                f(c.get("sluice_vs_baseline"), ".2f", "×"),
                f(c.get("warm_vs_baseline"), ".2f", "×"),
                f(c.get("floor_wall_s"), ".2f"),
                same,
                f(c.get("baseline_dropped_wall_s"), ".2f"),
                f(c.get("sluice_vs_baseline_dropped"), ".2f", "×"),
                {None: "–", True: "yes", False: "no"}[c.get("same_files_as_baseline_dropped")],
            ]
        )
    head = [
        "case",
        "docs",
        "wall s",
        "job s",
        "op s",
        "overhead (job)",
        "overhead (process)",
        "re-run s",
        "warm s",
        "runs",
        "plain s",
        "Sluice / plain",
        "warm / plain",
        "floor s",
        "same rows",
        "plain + dropped s",
        "Sluice / plain + dropped",
        "same files",
    ]
    lines += [table(head, rows), ""]
    lines.append(
        f"Targets: overhead ≤ {t.get('overhead', 0.15):.0%}; Sluice ≤ {t.get('vs_baseline', 1.3)}× the "
        f"plain script at ≥ 25k docs on 2 cores; demo ≤ {t.get('demo_wall_s', 8):.0f} s from a fresh home; "
        f"unchanged re-run ≤ {t.get('rerun_wall_s', 3):.0f} s."
    )
    return [*lines, ""]


def section_breakdown(data: dict[str, Any]) -> list[str]:
    bd = data.get("overhead_breakdown")
    cases = {n: c["median"] for n, c in ((bd or {}).get("cases") or {}).items() if c.get("median")}
    if not cases:
        return []
    labels = {
        "python start": "Python's own start (from the harness launching the process)",
        "imports": "imports of the `sluice` command (Dagster, polars, Sluice)",
        "instance": "opening the Dagster instance (created here: a fresh home)",
        "job": "the job outside its Dagster runs (plan, shards, job log, report)",
        "dagster": "Dagster inside its runs, outside Sluice's step functions",
        "ops": "the ops' own work (a deduplicator's hashes and index included)",
        "source parse": "parsing the input on the main thread (none where `sluice run` parsed it ahead, on a thread)",
        "export": "writing the export and its dropped and quarantined sidecars",
        "checkpoint": "checkpoints: writing, or waiting for the background writers",
        "monitor": "per-step resource monitors starting and stopping",
        "recording": "materialization metadata",
        "step rest": "the rest of Sluice's step functions",
        "unaccounted": "the rest (the interpreter's exit, its heap frozen first; timer gaps)",
    }
    head = ["piece of the main thread's wall", *(f"{n} s" for n in cases)]
    rows = [["**sluice run, whole process**", *(f(c["wall"], ".2f") for c in cases.values())]]
    rows += [[text, *(f(c[key], ".2f") for c in cases.values())] for key, text in labels.items()]
    rows.append(["**plain script, whole process**", *(f(c["plain"], ".2f") for c in cases.values())])
    for key, text in (("plain read", "its read"), ("plain ops", "its ops"), ("plain write", "its write")):
        rows.append([text, *(f(c.get(key), ".2f") for c in cases.values())])
    return [
        "### Where the wall goes (`bench/overhead_breakdown.py`)",
        "",
        "The cases above, run again from a fresh home with timers around the pieces of `sluice run` (the "
        "command in-process, `bench/_timed_run.py`), each round beside the plain script: seconds of the main "
        f"thread's wall, medians of {bd.get('repeats')} interleaved rounds. Time on other threads (the background "
        "checkpoint writers) is not a row: it overlaps the rows, on the same cores, and a row includes its "
        "thread's waits for the GIL, so it bounds from above what removing that piece would save.",
        "",
        table(head, rows),
        "",
        *_cpu_by_thread(bd, cases),
    ]


def _cpu_by_thread(bd: dict[str, Any], cases: dict[str, dict[str, Any]]) -> list[str]:
    """The breakdown's CPU seconds per whole process, Sluice's by thread (results from before it was measured
    have none)."""
    if not any(c.get("sluice cpu") for c in cases.values()):
        return []
    labels = {
        "cpu:main thread": "the main thread (imports, the instance, Dagster, Sluice's steps, the export)",
        "cpu:sluice-prefetch": "the prefetch thread (the source parse and the first phase's ops, ahead)",
        "cpu:sluice-checkpoint": "the checkpoint writers (Python side: selections, files)",
        "cpu:sluice-export-ahead": "the export-ahead thread",
        "cpu:sluice-monitors": "Sluice's monitors (resources, progress, log mirror)",
        "cpu:polars pool": "polars' compute pool (the ops' expressions, encodes and decodes)",
        "cpu:polars async executor": "polars' async executor (Parquet and JSON writers, zstd, the NDJSON reader)",
        "cpu:polars io": "polars' IO threads",
        "cpu:other": "other native threads (numba's workers, jemalloc's)",
        "cpu:unsampled": "threads that ended between two samples",
    }
    head = ["CPU seconds (user + system)", *(f"{n} s" for n in cases)]
    rows = [["**sluice run, whole process**", *(f(c.get("sluice cpu"), ".2f") for c in cases.values())]]
    rows += [[text, *(f(c.get(key), ".2f") for c in cases.values())] for key, text in labels.items()]
    rows.append(["**plain script, whole process**", *(f(c.get("plain cpu"), ".2f") for c in cases.values())])
    busy = [c["sluice cpu"] / c["wall"] if c.get("sluice cpu") and c.get("wall") else None for c in cases.values()]
    rows.append(["Sluice's CPU seconds / its wall (cores busy on average)", *(f(b, ".2f") for b in busy)])
    return [
        f"The same rounds' CPU time: each whole process's user + system seconds (medians of {bd.get('repeats')}), "
        "Sluice's split by thread from /proc every 50 ms (`bench/_timed_run.py`, `ThreadCpu`).",
        "",
        table(head, rows),
        "",
    ]


def section_disagreements(data: dict[str, Any]) -> list[str]:
    lines = ["## Disagreements, by op", ""]
    found = False
    sources = {f"op {k}": v for k, v in ((data.get("ops") or {}).get("ops") or {}).items()}
    sources |= {k: v for k, v in ((data.get("recipe") or {}).get("recipes") or {}).items()}
    for name, r in list(sources.items()):
        if r.get("agreement_dj_hash"):
            sources[f"{name} (hash_mode datajuicer)"] = {"agreement": r["agreement_dj_hash"]}
    for name, r in sources.items():
        a = r.get("agreement") or {}
        if not a.get("disagreements"):
            continue
        found = True
        lines.append(
            f"**{name}**: {a['disagreements']} (listed: first {len(a.get('listed', []))}; all ids are in "
            "the results JSON's run exports)"
        )
        for item in a.get("listed", [])[:30]:
            if item.get("text_differs"):
                lines.append(f"- `{item['id']}`: kept by both, text differs")
            else:
                why = f" (Sluice: {item['sluice']})" if item.get("sluice") else ""
                lines.append(f"- `{item['id']}`: kept only by {item['kept_by']}{why}")
        lines.append("")
    if not found:
        lines += ["None among the workloads that ran.", ""]
    return lines


def host(m: dict[str, Any]) -> str:
    """The machine a results file was measured on, as far as speed goes: its kernel build and vector instructions
    (`simd`, recorded since 2026-11-28)."""
    kernel = str(m.get("platform", "")).split("-x86_64")[0].removeprefix("Linux-")
    simd = m.get("simd")
    if simd is None:
        return f"{kernel}, SIMD not recorded"
    return f"{kernel}, SIMD {'/'.join(simd)}" if simd else f"{kernel}, no AVX2"


def machine_lines(data: dict[str, Any]) -> list[str]:
    any_result = next(iter(data.values()), {})
    m = any_result.get("machine", {})
    corpus = any_result.get("corpus") or {}
    quick = any(d.get("quick") for d in data.values())
    when = {name: (d.get("machine") or {}).get("when") for name, d in data.items()}
    # Where the results files were measured on different hosts (kernel build, vector instructions), each says its.
    hosts = {name: host(d.get("machine") or {}) for name, d in data.items()}
    differ = len(set(hosts.values())) > 1
    measured = "; ".join(
        f"{name} {w}" + (f" ({hosts[name]})" if differ else "")
        for name, w in sorted(when.items(), key=lambda kv: str(kv[1]))
        if w
    )
    lines = [
        f"- Machine: {m.get('cores')} usable cores ({m.get('cpu_model')}), {m.get('ram_gb')} GB RAM, "
        + ("" if differ else f"{m.get('platform')}, {host(m)}, ")
        + f"Python {m.get('python')}. "
        f"Measured (each results file has its own run): {measured}.",
        "- Load average before each run is recorded in the JSON (`load_before`): the machine is shared, so only "
        "ratios within one script run are meaningful.",
    ]
    if corpus:
        per = ", ".join(f"{k} {v['docs']:,}" for k, v in (corpus.get("per_source") or {}).items())
        lines.append(
            f"- Corpus (bench/corpus.py): {corpus.get('docs', 0):,} docs, "
            f"{corpus.get('text_bytes', 0) / 1e6:.1f} MB of text ({per})."
        )
    repeats = {d.get("repeats") for d in data.values() if d.get("repeats")}
    lines.append(
        f"- Figures are medians of {', '.join(map(str, sorted(repeats))) or '?'} interleaved run(s) per "
        "configuration; peak RSS is the summed RSS of the whole process tree, sampled every 50 ms (PSS: the same "
        "with pages shared between forked workers counted once, sampled every second); each run starts after "
        "`os.sync()`."
    )
    warm = [d["warm_up_s"] for d in data.values() if d.get("warm_up_s") is not None]
    if warm:
        lines.append(
            "- Before its first measured run each script makes one unmeasured `sluice run` of the 10-op recipe on "
            "2,000 docs, in both MinHash hash modes: numba compiles Sluice's kernels into their on-disk cache the "
            "first time each is used on a machine (a fresh clone), once. The warm-up took "
            + (f"{min(warm):.1f}" if f"{min(warm):.1f}" == f"{max(warm):.1f}" else f"{min(warm):.1f}–{max(warm):.1f}")
            + " s here: two small runs, plus that compilation where the cache was cold."
        )
    if quick:
        lines.append("- **Smoke run (`--quick`): a few thousand documents and one run each; not the benchmark.**")
    return lines


def render(results: Path, out_md: Path, chart_dir: Path) -> Path:
    data = load(results)
    chart_dir.mkdir(parents=True, exist_ok=True)
    charts: dict[str, str] = {}

    def link(name: str) -> str:
        return Path(os.path.relpath(chart_dir / name, out_md.parent)).as_posix()

    throughput, memory = {}, {}
    for name, r in ((data.get("recipe") or {}).get("recipes") or {}).items():
        for tool, c in (r.get("configs") or {}).items():
            throughput.setdefault(name, {})[tool] = c.get("docs_per_s")
            memory.setdefault(name, {})[tool] = c.get("peak_rss_mb")
    for name, r in ((data.get("ops") or {}).get("ops") or {}).items():
        for tool, c in (r.get("configs") or {}).items():
            memory.setdefault(name, {})[tool] = c.get("peak_rss_mb")
    if bar_chart(chart_dir / "throughput.png", "Whole-process throughput", throughput, "docs/s"):
        charts["throughput"] = link("throughput.png")
    if bar_chart(chart_dir / "memory.png", "Peak RSS of the process tree", memory, "MB"):
        charts["memory"] = link("memory.png")
    ops = {
        n: {t: c.get("docs_per_s") for t, c in (r.get("configs") or {}).items()}
        for n, r in ((data.get("ops") or {}).get("ops") or {}).items()
    }
    if bar_chart(chart_dir / "ops.png", "Each op alone, whole process", ops, "docs/s", log=True):
        charts["ops"] = link("ops.png")
    mh = (data.get("minhash") or {}).get("configs") or {}
    mh_groups = {
        "process": {t: c.get("docs_per_s") for t, c in mh.items()},
        "compute": {t: c.get("compute_docs_per_s") for t, c in mh.items()},
    }
    if bar_chart(chart_dir / "minhash.png", "MinHash dedup", mh_groups, "docs/s", log=True):
        charts["minhash"] = link("minhash.png")
    if scaling_chart(chart_dir / "scaling.png", data.get("scaling") or {}):
        charts["scaling"] = link("scaling.png")

    lines = [
        "# Benchmarks: Sluice beside Data-Juicer 1.6.1, datasketch and rensa",
        "",
        "_Generated by `bench/report.py` from `bench/results/*.json`; do not edit by hand. Reproduce with "
        "`python bench/run_all.py`, `python bench/execution.py` and `python bench/overhead_breakdown.py` (see "
        "bench/README.md)._",
        "",
        *machine_lines(data),
        "",
        *section_targets(data),
        *section_anchors(data),
        *section_execution(data),
        *section_breakdown(data),
        *section_recipe(data, charts),
        *section_minhash(data, charts),
        *section_ops(data, charts),
        *section_configs(data),
        *section_scaling(data, charts),
        *section_disagreements(data),
    ]
    errors = [f"- {name}: `{d['error'].strip().splitlines()[-1]}`" for name, d in data.items() if d.get("error")]
    if errors:
        lines += ["## Workloads that failed", "", *errors, ""]
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text("\n".join(lines).rstrip() + "\n")
    return out_md


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=None, help="default bench/results")
    parser.add_argument("--out", default=None, help="default docs/benchmarks.md (quick: <results>/benchmarks.md)")
    parser.add_argument("--quick", action="store_true", help="results of a smoke run: write beside them")
    args = parser.parse_args(argv)
    results = Path(args.results) if args.results else h.RESULTS / ("quick" if args.quick else "")
    if args.out:
        out = Path(args.out)
    elif args.quick or results.name == "quick":
        out = results / "benchmarks.md"
    else:
        out = h.ROOT / "docs" / "benchmarks.md"
    chart_dir = results if out.parent == results else out.parent / "benchmarks"
    print(f"-> {render(results.resolve(), out.resolve(), chart_dir.resolve())}")


if __name__ == "__main__":
    main()
