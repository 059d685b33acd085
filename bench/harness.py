"""What every benchmark script shares: whole-process measurement, the machine, Sluice and Data-Juicer commands,
job summaries read defensively, inputs cut from the bench corpus, and medians.

A measured run is a subprocess, started after the page cache's dirty pages are written out (`os.sync`: a run's
writeback does not land in the next one's wall); a sampler thread sums the resident memory of it and all its
descendants every 50 ms (the tree found again every 250 ms), so "peak RSS" is that of the whole process tree
(pages shared by forked workers count once per process: an upper bound); "peak PSS" is the same sum with shared
pages split between their processes, sampled every second (it is costly to read: `PSS_EVERY`).
Wall time is the subprocess's, start to exit, as a user would see it.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
SAMPLE_SECONDS = 0.05
# The sampler shares the measured tool's cores. PSS comes from the kernel walking every mapping of a process
# (/proc/PID/smaps_rollup: ~9 ms for a `sluice run`, under the lock its page faults take) and the process tree
# from a scan of /proc (~1.2 ms): both every 50 ms slowed a 6 s `sluice run` on 2 cores by 0.45 s. RSS (a
# counter, /proc/PID/statm) is read every SAMPLE_SECONDS; the tree every TREE_EVERY-th sample, PSS every
# PSS_EVERY-th.
TREE_EVERY = 5
PSS_EVERY = 20


# --- the machine --------------------------------------------------------------------------------------------


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# Vector instruction sets that change how fast compiled kernels (numba's, polars') run: the same VM has been placed
# on hosts with and without AVX-512 between sessions, so each results file records which it had.
SIMD_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512vl")


def machine() -> dict[str, Any]:
    cpu_model, flags = "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not cpu_model:
                cpu_model = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return {
        "cores": cores(),
        "logical_cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "simd": [f for f in SIMD_FLAGS if f in flags],
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "load_1m": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


# --- one measured process -----------------------------------------------------------------------------------


@dataclass
class Measured:
    """One whole-process run."""

    label: str
    cmd: list[str]
    rc: int
    wall_s: float
    peak_rss_mb: float
    load_before: float
    tail: str = ""  # last lines of stderr+stdout when the run failed
    peak_pss_mb: float = 0.0  # the same tree's peak proportional set size (shared pages split, not repeated)
    cpu_s: float | None = None  # user + system CPU seconds of the process and the descendants it waited for
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.rc == 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _tree(proc: psutil.Process) -> list[psutil.Process]:
    try:
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return []


def _tree_memory(procs: Sequence[psutil.Process], with_pss: bool = True) -> tuple[int, int]:
    """(summed RSS, summed PSS) of the processes (a process and its descendants, `_tree`); PSS splits shared
    pages between the processes sharing them, so forked workers are not counted twice (0 where the kernel gives
    no PSS, or when `with_pss` is False)."""
    rss = pss = 0
    for p in procs:
        with contextlib.suppress(psutil.Error, AttributeError):
            info = p.memory_full_info() if with_pss else p.memory_info()
            rss += info.rss
            pss += getattr(info, "pss", 0)
    return rss, pss


LAUNCHED_ENV = "SLUICE_BENCH_LAUNCHED"  # the epoch second `measure` started the process (bench/_timed_run.py reads it)


def measure(
    label: str,
    cmd: Sequence[str],
    env: dict[str, str] | None = None,
    cwd: str | Path | None = None,
    timeout: float = 3600,
    log: Path | None = None,
) -> Measured:
    """Run `cmd` to completion; wall time and the peak summed RSS of its process tree."""
    os.sync()  # the previous run's writeback is not this one's
    load = os.getloadavg()[0]
    out = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 (closed below)
    env = {**(os.environ if env is None else env), LAUNCHED_ENV: repr(time.time())}
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = psutil.Popen(list(cmd), env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    peak = peak_pss = 0
    done = threading.Event()

    def sample() -> None:
        nonlocal peak, peak_pss
        tick, procs = 0, [proc]
        while not done.is_set():
            if tick % TREE_EVERY == 0:
                procs = _tree(proc)
            rss, pss = _tree_memory(procs, with_pss=tick % PSS_EVERY == 0)
            peak, peak_pss = max(peak, rss), max(peak_pss, pss)
            tick += 1
            done.wait(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        rc = proc.wait(timeout=timeout)
    except psutil.TimeoutExpired:
        for child in proc.children(recursive=True):
            child.kill()
        proc.kill()
        rc = -9
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # this process runs one measured child at a time
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    done.set()
    sampler.join()
    if log:
        out.close()
    tail = ""
    if rc != 0 and log:
        tail = "\n".join(log.read_text(errors="replace").strip().splitlines()[-12:])
    return Measured(
        label,
        list(cmd),
        rc,
        round(wall, 3),
        round(peak / 2**20, 1),
        round(load, 2),
        tail,
        round(peak_pss / 2**20, 1),
        round(cpu, 3),
    )


def median(values: Iterable[float]) -> float | None:
    values = [v for v in values if v is not None]
    return round(statistics.median(values), 3) if values else None


def summarize(runs: Sequence[Measured], docs: int, text_bytes: int) -> dict[str, Any]:
    """Medians over the successful runs of one configuration, and throughput from the median wall."""
    ok = [r for r in runs if r.ok]
    wall = median(r.wall_s for r in ok)
    return {
        "runs": len(runs),
        "ok_runs": len(ok),
        "wall_s": wall,
        "walls": [r.wall_s for r in runs],
        "peak_rss_mb": median(r.peak_rss_mb for r in ok),
        "peak_pss_mb": median(r.peak_pss_mb for r in ok),
        "docs_per_s": round(docs / wall, 1) if wall else None,
        "mb_per_s": round(text_bytes / 1e6 / wall, 3) if wall else None,
        "load_before": [r.load_before for r in runs],
        "error": None if ok else (runs[-1].tail if runs else "not run"),
    }


# --- the tools ----------------------------------------------------------------------------------------------


def base_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("PYTHONHASHSEED", "0")
    return env


def sluice_cmd(recipe: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pipeline_defs", "run", str(recipe), *extra]


def sluice_env(home: Path) -> dict[str, str]:
    env = base_env()
    env["SLUICE_HOME"] = str(home)
    return env


def sluice_run_help() -> str:
    """`sluice run --help` as printed today (the engine is being rewritten: check an option before passing it)."""
    done = subprocess.run(
        [*sluice_cmd(Path("x"))[:-1], "--help"], env=base_env(), capture_output=True, text=True, check=False
    )
    return done.stdout


def registered_ops() -> set[str]:
    sys.path.insert(0, str(ROOT))
    from ops_library.registry import load_all

    return set(load_all())


def sluice_rejects(recipe: Path) -> str | None:
    """Sluice's own message when it refuses the recipe (`sluice validate`), else None."""
    done = subprocess.run(
        [sys.executable, "-m", "pipeline_defs", "validate", str(recipe)],
        env=base_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    return None if done.returncode == 0 else (done.stderr or done.stdout).strip()


def dj_cmd(venv: Path, recipe: Path, export_path: Path) -> list[str]:
    return [
        str(venv / "bin" / "dj-process"),
        "--config",
        str(recipe),
        "--use_cache",
        "false",
        "--export_path",
        str(export_path),
    ]


def job_summary(home: Path) -> dict[str, Any]:
    """The newest `job_summary.json` under a Sluice home ({} when none): fields are read with .get by callers."""
    jobs = sorted((home / "jobs").glob("*/job_summary.json"), key=lambda p: p.parent.name)
    if not jobs:  # the engine may keep job logs elsewhere under the home: newest anywhere
        jobs = sorted(home.rglob("job_summary.json"), key=lambda p: p.stat().st_mtime)
    if not jobs:
        return {}
    try:
        return json.loads(jobs[-1].read_text())
    except (OSError, ValueError):
        return {}


def op_seconds(summary: dict[str, Any]) -> dict[str, float]:
    """Step name -> seconds of work computed this run, from whatever shape `computed_this_run` has."""
    computed = summary.get("computed_this_run") or {}
    out: dict[str, float] = {}
    if isinstance(computed, dict):
        items = list(computed.items())
    else:  # a list of step records
        items = [(c.get("name", str(i)), c) for i, c in enumerate(computed) if isinstance(c, dict)]
    for name, row in items:
        seconds = row.get("seconds") if isinstance(row, dict) else None
        if isinstance(seconds, int | float):
            out[str(name)] = float(seconds)
    return out


def summary_wall(summary: dict[str, Any]) -> float | None:
    timings = summary.get("timings") or {}
    value = timings.get("wall_seconds") if isinstance(timings, dict) else None
    return float(value) if isinstance(value, int | float) else None


def summary_runs(summary: dict[str, Any]) -> int | None:
    runs = summary.get("dagster_runs")
    if isinstance(runs, list):
        return len(runs)
    return int(runs) if isinstance(runs, int | float) else None


# --- inputs and outputs -------------------------------------------------------------------------------------


def corpus_input(corpus_dir: Path, out: Path, docs: int | None = None, fraction: float = 1.0) -> dict[str, Any]:
    """One JSONL file of the first `docs` (or `fraction` of the) corpus documents, in corpus order."""
    import polars as pl

    frame = pl.read_ndjson(sorted((corpus_dir / "jsonl").glob("*.jsonl")))
    n = docs if docs is not None else round(frame.height * fraction)
    frame = frame.head(n)
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        frame.write_ndjson(out)
    return {"path": str(out), "docs": frame.height, "text_bytes": int(frame["text"].str.len_bytes().sum())}


def read_rows(path: Path) -> dict[str, str]:
    """id -> text of a JSONL export ({} when missing); several files when the path is a directory or glob."""
    import polars as pl

    files = sorted(path.glob("*.jsonl")) if path.is_dir() else ([path] if path.exists() else [])
    files = [f for f in files if not f.name.endswith((".dropped.jsonl", ".quarantine.jsonl", "_stats.jsonl"))]
    files = [f for f in files if f.stat().st_size > 0]
    if not files:
        return {}
    frame = pl.read_ndjson(files, infer_schema_length=None).select("id", "text")
    return dict(zip(frame["id"].to_list(), frame["text"].to_list(), strict=True))


def sluice_drop_reasons(export: Path) -> dict[str, str]:
    """id -> "<op>: <reason>" from Sluice's `<export>.dropped.jsonl` (best effort; {} when absent).

    The export names the drop columns `sluice_op` / `sluice_reason` (internal frames: `__sluice_op__`, ...).
    """
    import polars as pl

    dropped = export.with_name(export.name.removesuffix(".jsonl") + ".dropped.jsonl")
    if not dropped.exists() or dropped.stat().st_size == 0:
        return {}
    frame = pl.read_ndjson(dropped, infer_schema_length=None)

    def column(name: str) -> list[Any]:
        for candidate in (f"__sluice_{name}__", f"sluice_{name}"):
            if candidate in frame.columns:
                return frame[candidate].cast(pl.String).fill_null("").to_list()
        return [""] * frame.height

    if "id" not in frame.columns:
        return {}
    return {
        i: f"{o}: {w}" if o or w else ""
        for i, o, w in zip(frame["id"].to_list(), column("op"), column("reason"), strict=True)
    }


def agreement(
    ours: dict[str, str], theirs: dict[str, str], reasons: dict[str, str] | None = None, limit: int = 200
) -> dict[str, Any]:
    """Kept ids of both tools: counts, and each disagreement (id kept by one only, or kept with other text)."""
    reasons = reasons or {}
    both = ours.keys() & theirs.keys()
    only_dj = sorted(theirs.keys() - ours.keys())
    only_sluice = sorted(ours.keys() - theirs.keys())
    text_differs = sorted(i for i in both if ours[i] != theirs[i])
    listed = [{"id": i, "kept_by": "data-juicer", "sluice": reasons.get(i, "")} for i in only_dj]
    listed += [{"id": i, "kept_by": "sluice"} for i in only_sluice]
    listed += [{"id": i, "text_differs": True} for i in text_differs]
    return {
        "kept_sluice": len(ours),
        "kept_dj": len(theirs),
        "kept_both": len(both),
        "only_dj": len(only_dj),
        "only_sluice": len(only_sluice),
        "text_differs": len(text_differs),
        "disagreements": len(only_dj) + len(only_sluice) + len(text_differs),
        "listed": listed[:limit],
    }


def write_result(name: str, payload: dict[str, Any], results: Path = RESULTS) -> Path:
    results.mkdir(parents=True, exist_ok=True)
    path = results / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, default=str))
    return path


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path
