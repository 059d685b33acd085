"""Sluice beside Data-Juicer 1.6.1, datasketch and rensa on the real-text bench corpus (issue 13).

Workloads (each writes `<results>/<name>.json`; `bench/report.py` turns them into charts and docs/benchmarks.md):

1. `recipe`: the 10-op recipe and the 5-op recipe, each ONE YAML file run whole-process by
   `dj-process --config X --use_cache false` and by `sluice run X` (np = cores in the file);
2. `minhash`: MinHash signatures + LSH alone: Sluice's op (hash modes fast, datajuicer and oph), datasketch, rensa
   (bench/minhash_tools.py);
3. `ops`: each op of the 10-op recipe alone, both tools;
4. `sluice_configs`: Sluice's checkpoint strategies and executors on the same recipe;
5. `scaling`: 25 / 50 / 100 % of the corpus, both tools.

Every configuration runs --repeats times, interleaved (run 1 of every configuration, then run 2, ...), and the
figures are medians; ratios are computed between configurations of the same script run only. A workload that
needs an op Sluice does not register is skipped with the reason; a recipe key Sluice rejects is recorded.

    python bench/run_all.py                 # full: the whole corpus, 3 repeats (tens of minutes on 2 cores)
    python bench/run_all.py --quick         # smoke: 3,000 docs, 1 repeat, results in bench/results/quick
    python bench/run_all.py --only recipe,minhash --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus as corpus_mod
import envs
import harness as h

MINHASH = {
    "tokenization": "space",
    "window_size": 5,
    "lowercase": True,
    "num_permutations": 256,
    "jaccard_threshold": 0.7,
}
RECIPE_10: list[tuple[str, dict[str, Any]]] = [
    ("whitespace_normalization_mapper", {}),
    ("clean_links_mapper", {}),
    ("clean_email_mapper", {}),
    ("text_length_filter", {"min_len": 10, "max_len": 10000}),
    ("words_num_filter", {"min_num": 10, "max_num": 10000}),
    ("alphanumeric_filter", {"min_ratio": 0.25}),
    ("special_characters_filter", {"max_ratio": 0.25}),
    ("character_repetition_filter", {"rep_len": 10, "max_ratio": 0.5}),
    ("document_deduplicator", {"lowercase": True, "ignore_non_character": True}),
    ("document_minhash_deduplicator", MINHASH),
]
RECIPE_5 = [
    step
    for step in RECIPE_10
    if step[0]
    in {
        "whitespace_normalization_mapper",
        "clean_links_mapper",
        "text_length_filter",
        "words_num_filter",
        "document_deduplicator",
    }
]
# Data-Juicer 1.6.1 top-level keys a user's recipe may carry (values are Data-Juicer's defaults): does Sluice
# accept each one? Recorded by the `recipe` workload.
DJ_TOP_LEVEL_KEYS: dict[str, Any] = {
    "executor_type": "default",
    "keep_stats_in_res_ds": False,
    "skip_op_error": False,
    "use_cache": False,
    "work_dir": "./outputs",
    "open_tracer": False,
    "op_fusion": False,
    "turbo": False,
    "suffixes": [],
    "export_shard_size": 0,
    "export_original_dataset": False,
    "use_checkpoint": False,
    "partition": {"size": 10000},
    "checkpoint": {"strategy": "every_op"},
}
SLUICE_DJ_HASH = "sluice (hash_mode datajuicer)"
WORKLOADS = ("recipe", "minhash", "ops", "sluice_configs", "scaling")


def recipe_yaml(project: str, dataset: Path, ops: list[tuple[str, dict[str, Any]]], np: int, **sluice: Any) -> str:
    """A recipe with Data-Juicer's keys only (plus `sluice` sections for Sluice-only variants).

    export_path is Sluice's (its fresh home per run); Data-Juicer's run overrides it with --export_path.
    """
    recipe: dict[str, Any] = {
        "project_name": project,
        "dataset_path": str(dataset),
        "export_path": "${SLUICE_HOME}/export/" + project + ".jsonl",
        "text_keys": "text",
        "np": np,
        **sluice,
        "process": [{name: dict(params) or None} for name, params in ops],
    }
    return yaml.safe_dump(recipe, sort_keys=False)


def warm_kernels(work: Path, corpus_dir: Path, np: int) -> float:
    """One unmeasured `sluice run` of the 10-op recipe, in both MinHash hash modes, on 2,000 corpus documents:
    numba compiles the kernels of the `datajuicer` hash mode into their on-disk cache the first time each is used
    (a fresh clone), and no measured run should pay that once-per-machine cost. Returns the seconds it took
    (printed, counted nowhere)."""
    source = h.corpus_input(corpus_dir, work / "warm" / "docs_2000.jsonl", 2000)
    started = time.perf_counter()
    for mode in ("fast", "datajuicer"):
        ops = [(op, p | {"hash_mode": mode} if op == "document_minhash_deduplicator" else p) for op, p in RECIPE_10]
        recipe = work / "warm" / f"warm_{mode}.yaml"
        recipe.write_text(recipe_yaml(f"warm_{mode}", Path(source["path"]), ops, np))
        home = h.fresh_dir(work / "warm" / f"home_{mode}")
        m = h.measure("warm-up", h.sluice_cmd(recipe), h.sluice_env(home), cwd=home, log=home / "log.txt")
        if not m.ok:
            print(f"  warm-up run failed (rc={m.rc}):\n    " + m.tail.replace("\n", "\n    "))
    seconds = time.perf_counter() - started
    shutil.rmtree(work / "warm", ignore_errors=True)
    print(f"warm-up (numba compiles the datajuicer mode's kernels on first use; not measured): {seconds:.1f} s")
    return seconds


def celery_broker_up() -> bool:
    """The Celery executor needs the broker `sluice up` starts (SLUICE_CELERY_BROKER); without one its runs can
    only fail, so the variant is left out, saying why."""
    from urllib.parse import urlparse

    from pipeline_defs.loader import DEFAULT_BROKER

    url = urlparse(os.environ.get("SLUICE_CELERY_BROKER", DEFAULT_BROKER))
    try:
        socket.create_connection((url.hostname or "127.0.0.1", url.port or 6379), timeout=1).close()
        return True
    except OSError:
        print(f"  celery executor left out: no broker at {url.geturl()} (start one with `sluice up`)")
        return False


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.repeats = args.repeats or (1 if args.quick else 3)
        self.np = args.np or h.cores()
        self.work = h.fresh_dir(Path(args.work_dir).resolve()) if args.work_dir else None
        self.work = self.work or h.fresh_dir(h.BENCH / ".work" / time.strftime("run_%Y%m%d_%H%M%S"))
        self.results = Path(args.results) if args.results else h.RESULTS / ("quick" if args.quick else "")
        self.ops = h.registered_ops()
        self.machine = h.machine()
        run_help = h.sluice_run_help()
        self.flags = {word.strip("[],") for word in run_help.split() if word.startswith("--")}
        found = re.search(r"--executor \{([^}]*)\}", run_help)
        self.executors = found.group(1).split(",") if found else []
        self.dj_venv = envs.dj_venv_path(args.dj_venv)
        self.corpus_dir = Path(args.corpus).resolve() if args.corpus else corpus_mod.default_dir()
        self.cache: dict[tuple[str, str], dict[str, Any]] = {}  # (recipe, input) -> compared runs, reused

    # --- setup ----------------------------------------------------------------------------------------------

    def prepare(self) -> None:
        print(f"machine: {self.machine['cores']} cores, {self.machine['ram_gb']} GB, load {self.machine['load_1m']}")
        envs.ensure_in_process()
        if not self.args.no_dj:
            envs.ensure_dj(self.dj_venv)
        manifest = corpus_mod.ensure(self.corpus_dir)
        self.corpus_manifest = {k: v for k, v in manifest.items() if k != "shards"}
        docs = self.args.docs or (3000 if self.args.quick else None)
        self.inputs = {}
        for fraction in (0.25, 0.5, 1.0):
            n = round((docs or manifest["docs"]) * fraction)
            self.inputs[fraction] = h.corpus_input(self.corpus_dir, self.work / "inputs" / f"docs_{n}.jsonl", n)
        full = self.inputs[1.0]
        self.warm_up_s = warm_kernels(self.work, self.corpus_dir, self.np)
        print(
            f"corpus: {self.corpus_dir} ({manifest['docs']:,} docs); input: {full['docs']:,} docs, "
            f"{full['text_bytes'] / 1e6:.1f} MB; {self.repeats} repeat(s); np={self.np}"
        )

    def missing(self, ops: list[tuple[str, dict[str, Any]]]) -> list[str]:
        return [name for name, _ in ops if name not in self.ops]

    def write_recipe(self, name: str, ops: list[tuple[str, dict[str, Any]]], source: dict, **sluice: Any) -> Path:
        path = self.work / "recipes" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(recipe_yaml(name, Path(source["path"]), ops, self.np, **sluice))
        return path

    # --- one configuration, run once ------------------------------------------------------------------------

    def run_dj(self, recipe: Path, run_dir: Path) -> tuple[h.Measured, Path]:
        h.fresh_dir(run_dir)
        export = run_dir / "out.jsonl"
        cmd = h.dj_cmd(self.dj_venv, recipe, export)
        env = envs.dj_env()
        m = h.measure("data-juicer", cmd, env, cwd=run_dir, timeout=self.args.timeout, log=run_dir / "log.txt")
        return m, export

    def run_sluice(self, recipe: Path, run_dir: Path, executor: str | None = None) -> tuple[h.Measured, Path]:
        home = h.fresh_dir(run_dir) / "home"
        extra = ["--executor", executor] if executor and "--executor" in self.flags else []
        cmd = h.sluice_cmd(recipe, *extra)
        m = h.measure(
            "sluice", cmd, h.sluice_env(home), cwd=run_dir, timeout=self.args.timeout, log=run_dir / "log.txt"
        )
        summary = h.job_summary(home)
        seconds = h.op_seconds(summary)
        # A full run leaves a checkpoint per op and shard: gigabytes over all runs. The export stays.
        shutil.rmtree(home / "checkpoints", ignore_errors=True)
        m.extra = {
            "op_seconds": round(sum(seconds.values()), 3),
            "per_step_seconds": seconds,
            "dagster_runs": h.summary_runs(summary),
            "summary_wall_s": h.summary_wall(summary),
        }
        export = Path(summary.get("export_path") or home / "export" / f"{recipe.stem}.jsonl")
        return m, export

    # --- interleaved comparison -----------------------------------------------------------------------------

    def compare(
        self, name: str, runners: dict[str, Callable[[Path], tuple[h.Measured, Path]]], source: dict[str, Any]
    ) -> dict[str, Any]:
        """Run every configuration `repeats` times, interleaved; medians, ratios to Data-Juicer, last exports."""
        runs: dict[str, list[h.Measured]] = {label: [] for label in runners}
        exports: dict[str, Path] = {}
        kept_dirs: dict[str, Path] = {}
        for r in range(self.repeats):
            for label, runner in runners.items():
                slug = re.sub(r"\W+", "_", label).strip("_")
                run_dir = self.work / "runs" / name / f"{slug}_r{r}"
                m, export = runner(run_dir)
                runs[label].append(m)
                if m.ok:  # keep only the newest good run's files (its export is compared); free the older one
                    if label in kept_dirs:
                        shutil.rmtree(kept_dirs[label], ignore_errors=True)
                    exports[label], kept_dirs[label] = export, run_dir
                status = "ok" if m.ok else f"FAILED rc={m.rc}"
                print(f"  [{name}] {label:<28} run {r + 1}: {m.wall_s:8.2f} s {m.peak_rss_mb:8.0f} MB  {status}")
                if not m.ok:
                    print("    " + m.tail.replace("\n", "\n    "))
        configs = {}
        for label, measured in runs.items():
            stats = h.summarize(measured, source["docs"], source["text_bytes"])
            extras = [m.extra for m in measured if m.ok and m.extra]
            if any("op_seconds" in e for e in extras):
                stats["op_seconds"] = h.median(e.get("op_seconds") for e in extras)
                stats["dagster_runs"] = extras[-1].get("dagster_runs")
                stats["per_step_seconds"] = extras[-1].get("per_step_seconds")
            configs[label] = stats
        dj_wall = configs.get("data-juicer", {}).get("wall_s")
        for stats in configs.values():
            stats["speedup_vs_dj"] = round(dj_wall / stats["wall_s"], 2) if dj_wall and stats["wall_s"] else None
        return {
            "configs": configs,
            "exports": {k: str(v) for k, v in exports.items()},
            "runs": {k: [m.as_dict() for m in v] for k, v in runs.items()},
        }

    def agree(self, compared: dict[str, Any], sluice_label: str = "sluice") -> dict[str, Any] | None:
        exports = compared["exports"]
        if "data-juicer" not in exports or sluice_label not in exports:
            return None
        ours = Path(exports[sluice_label])
        return h.agreement(h.read_rows(ours), h.read_rows(Path(exports["data-juicer"])), h.sluice_drop_reasons(ours))

    def tool_pair(self, recipe: Path) -> dict[str, Callable[[Path], tuple[h.Measured, Path]]]:
        runners: dict[str, Callable[[Path], tuple[h.Measured, Path]]] = {}
        if not self.args.no_dj:
            runners["data-juicer"] = lambda d: self.run_dj(recipe, d)
        runners["sluice"] = lambda d: self.run_sluice(recipe, d)
        return runners

    def recipe_pair(self, name: str, ops: list[tuple[str, dict[str, Any]]], source: dict) -> dict[str, Any]:
        """Both tools on one recipe file; cached per (recipe, input) so a later workload reuses the runs."""
        key = (name, source["path"])
        if key in self.cache:
            return self.cache[key]
        missing = self.missing(ops)
        if missing:
            result = {"skipped": f"Sluice does not register {', '.join(missing)} yet"}
            print(f"  [{name}] skipped: {result['skipped']}")
            self.cache[key] = result
            return result
        recipe = self.write_recipe(name, ops, source)
        rejected = h.sluice_rejects(recipe)
        if rejected:
            print(f"  [{name}] Sluice rejects the recipe: {rejected}")
        runners = self.tool_pair(recipe)
        if self.minhash_offers("datajuicer") and any(op == "document_minhash_deduplicator" for op, _ in ops):
            # Sluice-only variant: the MinHash op in its Data-Juicer-compatible hash mode (not a Data-Juicer key).
            dj_hash = [
                (op, p | {"hash_mode": "datajuicer"} if op == "document_minhash_deduplicator" else p) for op, p in ops
            ]
            variant = self.write_recipe(f"{name}_dj_hash", dj_hash, source)
            runners[SLUICE_DJ_HASH] = lambda d: self.run_sluice(variant, d)
        compared = self.compare(name, runners, source)
        result = {
            "recipe": recipe.read_text(),
            "sluice_rejects": rejected,
            **compared,
            "agreement": self.agree(compared),
        }
        if SLUICE_DJ_HASH in runners:
            result["agreement_dj_hash"] = self.agree(compared, SLUICE_DJ_HASH)
        self.cache[key] = result
        return result

    def minhash_offers(self, hash_mode: str) -> bool:
        """True when Sluice's MinHash op accepts `hash_mode: <hash_mode>`."""
        from ops_library.registry import OPS

        op = OPS.get("document_minhash_deduplicator")
        field = op.Params.model_fields.get("hash_mode") if op else None
        return field is not None and f"'{hash_mode}'" in str(field.annotation)

    # --- workloads ------------------------------------------------------------------------------------------

    def dj_keys_accepted(self, source: dict[str, Any]) -> dict[str, str]:
        """key -> "ok" or Sluice's one-line refusal, for each Data-Juicer top-level key added to the 5-op recipe."""
        verdicts = {}
        for key, value in DJ_TOP_LEVEL_KEYS.items():
            recipe = self.write_recipe(f"dj_key_{key}", RECIPE_5, source, **{key: value})
            refusal = h.sluice_rejects(recipe)
            verdicts[key] = "ok" if refusal is None else refusal.strip().splitlines()[-1].strip(" -")
        rejected = [k for k, v in verdicts.items() if v != "ok"]
        print(f"  [recipe] Data-Juicer keys Sluice rejects: {', '.join(rejected) or 'none'}")
        return verdicts

    def w_recipe(self) -> dict[str, Any]:
        source = self.inputs[1.0]
        return {
            "input": source,
            "dj_keys": self.dj_keys_accepted(source),
            "recipes": {
                "recipe10": self.recipe_pair("recipe10", RECIPE_10, source),
                "recipe5": self.recipe_pair("recipe5", RECIPE_5, source),
            },
        }

    def w_minhash(self) -> dict[str, Any]:
        """Sluice's op, datasketch and rensa in-process (minhash_tools.py), and Data-Juicer's op alone as the
        reference of which rows to keep (its whole process, so its wall includes start-up and export)."""
        source = self.inputs[1.0]
        tools = ["sluice", "datasketch", "rensa"]
        skipped = None
        if "document_minhash_deduplicator" not in self.ops:
            skipped = "Sluice does not register document_minhash_deduplicator yet: the reference tools only"
            print(f"  [minhash] {skipped}")
            tools.remove("sluice")
        else:
            if self.minhash_offers("oph"):
                tools.insert(1, "sluice-oph")
            if self.minhash_offers("datajuicer"):
                tools.insert(1, "sluice-dj-hash")

        def runner(tool: str) -> Callable[[Path], tuple[h.Measured, Path]]:
            def run(run_dir: Path) -> tuple[h.Measured, Path]:
                h.fresh_dir(run_dir)
                out = run_dir / "kept.json"
                cmd = [sys.executable, str(h.BENCH / "minhash_tools.py"), tool, source["path"], str(out)]
                m = h.measure(tool, cmd, h.base_env(), cwd=run_dir, timeout=self.args.timeout, log=run_dir / "log.txt")
                if m.ok:
                    m.extra = {"seconds": json.loads(out.read_text())["seconds"]}
                return m, out

            return run

        runners = {t: runner(t) for t in tools}
        if not self.args.no_dj:
            recipe = self.write_recipe("minhash_dj", [RECIPE_10[-1]], source)
            runners = {"data-juicer": lambda d: self.run_dj(recipe, d), **runners}
        compared = self.compare("minhash", runners, source)
        kept: dict[str, set[str]] = {}
        for tool, path in compared["exports"].items():
            if tool == "data-juicer":
                kept[tool] = set(h.read_rows(Path(path)))
            else:
                kept[tool] = set(json.loads(Path(path).read_text())["kept_ids"])
        for tool, stats in compared["configs"].items():
            seconds = [m["extra"]["seconds"] for m in compared["runs"][tool] if m["rc"] == 0 and m["extra"]]
            stats["compute_s"] = h.median(s["total"] for s in seconds)
            stats["compute_docs_per_s"] = round(source["docs"] / stats["compute_s"]) if stats["compute_s"] else None
            stats["stage_seconds"] = seconds[-1] if seconds else None
            stats["kept"] = len(kept.get(tool, ()))
        agreement: dict[str, dict[str, Any]] = {}
        for reference in ("data-juicer", "datasketch"):
            if reference not in kept:
                continue
            for tool, ids in kept.items():
                if tool != reference and (reference == "data-juicer" or tool != "data-juicer"):
                    agreement[f"{tool} vs {reference}"] = {
                        "kept": len(ids),
                        "only_here": len(ids - kept[reference]),
                        "only_reference": len(kept[reference] - ids),
                        "listed": sorted(ids ^ kept[reference])[:100],
                    }
        return {
            "input": source,
            "skipped": skipped,
            "configs": compared["configs"],
            "runs": compared["runs"],
            "agreement": agreement,
        }

    def w_ops(self) -> dict[str, Any]:
        source = self.inputs[1.0]
        per_op = {}
        chosen = set(self.args.ops.split(",")) if self.args.ops else None
        for name, params in RECIPE_10:
            if chosen is None or name in chosen:
                per_op[name] = self.recipe_pair(f"op_{name}", [(name, params)], source)
        return {"input": source, "ops": per_op}

    def w_sluice_configs(self) -> dict[str, Any]:
        source = self.inputs[1.0]
        name, ops = ("recipe10", RECIPE_10) if not self.missing(RECIPE_10) else ("recipe5", RECIPE_5)
        variants: dict[str, tuple[dict[str, Any], str | None]] = {
            "every_op": ({"checkpoint": {"strategy": "every_op"}}, None),
            "every_partition": ({"checkpoint": {"strategy": "every_partition"}}, None),
            "every_partition, 1 partition": (
                {"checkpoint": {"strategy": "every_partition"}, "partition": {"size": source["docs"] + 1}},
                None,
            ),
        }
        executors = [e for e in self.executors if e != "celery" or celery_broker_up()]
        for executor in executors:
            if executor != "in_process":
                variants[f"every_op, {executor}"] = ({"checkpoint": {"strategy": "every_op"}}, executor)
                variants[f"every_partition, {executor}"] = ({"checkpoint": {"strategy": "every_partition"}}, executor)
        runners = {}
        rejected = {}
        for label, (sections, executor) in variants.items():
            slug = re.sub(r"\W+", "_", label).strip("_")
            recipe = self.write_recipe(f"{name}_{slug}", ops, source, **sections)
            rejected[label] = h.sluice_rejects(recipe)
            if rejected[label]:
                print(f"  [sluice_configs] {label}: Sluice rejects it: {rejected[label]}")
                continue
            runners[label] = lambda d, recipe=recipe, executor=executor: self.run_sluice(recipe, d, executor)
        compared = self.compare("sluice_configs", runners, source)
        base = compared["configs"].get("every_op", {}).get("wall_s")
        for stats in compared["configs"].values():
            stats["vs_every_op"] = round(base / stats["wall_s"], 2) if base and stats["wall_s"] else None
        dj = self.cache.get((name, source["path"]), {}).get("configs", {}).get("data-juicer", {}).get("wall_s")
        for stats in compared["configs"].values():
            stats["speedup_vs_dj"] = round(dj / stats["wall_s"], 2) if dj and stats["wall_s"] else None
        return {
            "input": source,
            "recipe": name,
            "executors": executors,
            "sluice_rejects": rejected,
            "configs": compared["configs"],
            "runs": compared["runs"],
        }

    def w_scaling(self) -> dict[str, Any]:
        name, ops = ("recipe10", RECIPE_10) if not self.missing(RECIPE_10) else ("recipe5", RECIPE_5)
        points = {}
        for fraction, source in self.inputs.items():
            label = name if fraction == 1.0 else f"{name}_{round(fraction * 100)}pct"
            result = self.recipe_pair(label, ops, source)
            kept = {k: v for k, v in result.items() if k != "recipe"}
            points[f"{round(fraction * 100)}%"] = {"input": source, **kept}
        return {"recipe": name, "points": points}

    def run(self) -> None:
        self.prepare()
        chosen = self.args.only.split(",") if self.args.only else list(WORKLOADS)
        for workload in chosen:
            print(f"== {workload}", flush=True)
            started = time.perf_counter()
            try:
                payload = getattr(self, f"w_{workload}")()
            except Exception:  # one broken workload must not lose the others' figures
                payload = {"error": traceback.format_exc()}
                print(payload["error"])
            payload |= {
                "workload": workload,
                "quick": self.args.quick,
                "repeats": self.repeats,
                "np": self.np,
                "machine": self.machine,
                "warm_up_s": round(self.warm_up_s, 1),
                "load_after": h.machine()["load_1m"],
                "corpus": self.corpus_manifest,
                "registered_ops": sorted(self.ops),
                "seconds": round(time.perf_counter() - started, 1),
            }
            path = h.write_result(workload, payload, self.results)
            print(f"   -> {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 3,000 docs, 1 repeat")
    parser.add_argument("--only", default=None, help=f"comma-separated subset of {','.join(WORKLOADS)}")
    parser.add_argument("--ops", default=None, help="ops workload: only these ops (comma-separated)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per configuration (default 3; quick 1)")
    parser.add_argument("--docs", type=int, default=None, help="use the first N corpus documents")
    parser.add_argument("--np", type=int, default=None, help="np in the recipes (default: usable cores)")
    parser.add_argument("--corpus", default=None, help="corpus directory (default $SLUICE_HOME/corpus/bench)")
    parser.add_argument("--dj-venv", default=None, help="Data-Juicer venv (default $SLUICE_BENCH_DJ_VENV)")
    parser.add_argument("--no-dj", action="store_true", help="Sluice only (no Data-Juicer venv needed)")
    parser.add_argument("--results", default=None, help="results directory (default bench/results[/quick])")
    parser.add_argument(
        "--work-dir", default=None, help="scratch directory, kept (default: bench/.work/run_<time>, removed at the end)"
    )
    parser.add_argument("--timeout", type=float, default=3600, help="seconds before one run is killed")
    parser.add_argument("--report", action=argparse.BooleanOptionalAction, default=True, help="run report.py after")
    args = parser.parse_args()
    bench = Bench(args)
    bench.run()
    if args.report:
        import report

        report.main(["--results", str(bench.results)] + (["--quick"] if args.quick else []))
    if not args.work_dir:  # inputs, recipes and the last exports of every configuration: hundreds of MB per run
        shutil.rmtree(bench.work, ignore_errors=True)
        print(f"removed the scratch directory {bench.work} (pass --work-dir to keep one)")


if __name__ == "__main__":
    main()
