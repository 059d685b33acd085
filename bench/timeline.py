"""How many cores `sluice run` keeps busy, and which threads, over its wall (issue 8's diagnosis, not a target).

    python bench/timeline.py RECIPE [--bucket 0.5] [--home DIR]

Runs `sluice run RECIPE` from a fresh `$SLUICE_HOME` (a temporary one unless --home), reads every thread's CPU
seconds (user + system, /proc/<pid>/task) every 100 ms from outside the process, and prints, for each --bucket of
wall, the cores used by: the main thread (imports, the instance, Dagster, the step functions), polars' compute
pool (`polars-N`), polars' async executor (its NDJSON reader and Parquet/JSON writers), polars' IO threads and
the process's other threads (Python's: the prefetch, the checkpoint writers, the monitors; Python does not name
them for the OS), grouped as bench/_timed_run.py groups them (`_thread_groups.thread_group`), with
the moments `sluice run` printed its phase lines. On 2 cores a bucket well under 2.0 is time the run left a core
idle. A thread that ended between two samples loses its last 100 ms, so the figures are lower bounds.
"""

from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness as h
from _thread_groups import thread_group

GROUPS = ("main thread", "polars pool", "polars async executor", "polars io", "other")
WIDTH = max(len(g) for g in GROUPS)
SAMPLE_SECONDS = 0.1


def cpu_by_group(pid: int, tick: int) -> dict[str, float]:
    """CPU seconds so far of each group of the process's live threads."""
    out: dict[str, float] = collections.Counter()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            comm = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the thread ended meanwhile
        group = "main thread" if int(task.name) == pid else thread_group(comm)
        out[group] += (int(fields[11]) + int(fields[12])) / tick
    return out


def timeline(cmd: list[str], env: dict[str, str], bucket: float) -> tuple[float, list[tuple[float, str]], dict]:
    tick = os.sysconf("SC_CLK_TCK")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    buckets: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)

    def sample() -> None:
        last: dict[str, float] | None = None
        last_t = 0.0
        while proc.poll() is None:
            try:
                now, t = cpu_by_group(proc.pid, tick), time.perf_counter() - t0
            except OSError:
                break
            if last is not None:
                b = buckets[int(t / bucket)]
                for group in GROUPS:
                    b[group] += max(0.0, now.get(group, 0.0) - last.get(group, 0.0))  # an ended thread: not negative
                b["seconds"] += t - last_t
            last, last_t = now, t
            time.sleep(SAMPLE_SECONDS)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    lines = []
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append((time.perf_counter() - t0, line.rstrip()))
    rc = proc.wait()
    sampler.join()
    if rc:
        sys.exit(f"timeline: `{' '.join(cmd)}` exited {rc}:\n" + "\n".join(text for _, text in lines[-20:]))
    return time.perf_counter() - t0, lines, buckets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--bucket", type=float, default=0.5, help="seconds of wall per row (default 0.5)")
    parser.add_argument(
        "--home", type=Path, default=None, help="an empty directory for SLUICE_HOME, kept (default: a temporary one)"
    )
    args = parser.parse_args()
    if args.home is not None and args.home.exists() and any(args.home.iterdir()):
        sys.exit(f"timeline: --home {args.home} is not empty (the run starts from a fresh home)")
    with tempfile.TemporaryDirectory(prefix="sluice-timeline-") as tmp:
        home = args.home or Path(tmp) / "home"
        home.mkdir(parents=True, exist_ok=True)
        wall, lines, buckets = timeline(h.sluice_cmd(args.recipe.resolve()), h.sluice_env(home), args.bucket)
    print(f"machine: {h.cores()} cores; `sluice run {args.recipe}` from a fresh home: {wall:.2f} s")
    for t, text in lines:
        if text.startswith(("phase ", "job ")):
            print(f"  {t:6.2f} s  {text[:100]}")
    print(f"{'from s':>7} " + " ".join(f"{g:>{WIDTH}}" for g in GROUPS) + f" {'cores':>6}")
    total = collections.Counter()
    for b in sorted(buckets):
        total.update(buckets[b])
        print(cores_row(f"{b * args.bucket:7.1f}", buckets[b], buckets[b]["seconds"] or args.bucket))
    print(cores_row(f"{'mean':>7}", total, total["seconds"] or 1.0))


def cores_row(label: str, cpu: collections.Counter, seconds: float) -> str:
    """`label`, then the cores each group used over `seconds` of wall, then all of them."""
    busy = sum(cpu[g] for g in GROUPS)
    return f"{label} " + " ".join(f"{cpu[g] / seconds:{WIDTH}.2f}" for g in GROUPS) + f" {busy / seconds:6.2f}"


if __name__ == "__main__":
    main()
