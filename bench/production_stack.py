"""Figures of the production shape on this machine: `sluice up` and `sluice down` times, and the demo recipe's
wall time in-process vs on Celery workers, both on the stack's PostgreSQL instance, fresh checkpoints each.

    python bench/production_stack.py [--workers 2] [--home /tmp/sluice-bench-prod]

Needs a built demo corpus at $SLUICE_HOME/corpus/demo (any `sluice run recipes/demo.yaml` builds it) or builds it
with the first run. Prints one line per figure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline_defs.stack import Stack, down, up  # noqa: E402


def run(recipe: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pipeline_defs", "run", str(recipe)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--home", default=tempfile.mkdtemp(prefix="sluice-bench-prod-"))
    parser.add_argument("--corpus", help="an existing demo corpus directory to copy (saves building it)")
    args = parser.parse_args()
    home = Path(args.home)
    if args.corpus:
        shutil.copytree(args.corpus, home / "corpus" / "demo", dirs_exist_ok=True)
    stack = Stack(root=home / "stack", home=home / "dagster_home", workers=args.workers, concurrency=args.concurrency)
    t0 = time.perf_counter()
    up(stack, echo=lambda m: None)
    print(f"sluice up ({args.workers} workers x {args.concurrency}): {time.perf_counter() - t0:.1f} s")
    try:
        env = stack.env()
        demo = ROOT / "recipes" / "demo.yaml"
        if not (home / "corpus" / "demo").exists():
            print(f"demo in-process on PostgreSQL (with corpus build): {run(demo, env):.1f} s")
            shutil.rmtree(home / "checkpoints")
        print(f"demo in-process on PostgreSQL: {run(demo, env):.1f} s")
        celery = home / "demo_celery.yaml"
        text = demo.read_text().replace("project_name: demo", "project_name: demo_celery")
        text = text.replace("export/demo.jsonl", "export/demo_celery.jsonl")
        celery.write_text(text + "\nengine:\n  executor: celery\n")
        print(f"demo on {args.workers} Celery workers: {run(celery, env):.1f} s")
    finally:
        print(f"sluice down: {down(stack, echo=lambda m: None):.1f} s")


if __name__ == "__main__":
    main()
