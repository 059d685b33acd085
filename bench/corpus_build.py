"""How long the demo corpus takes to build here: median of a few builds into a temporary directory.

Run: python bench/corpus_build.py [--repeats 3] [--max-docs 30000]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from pipeline_defs.corpus import CorpusInfo, build_demo_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--min-docs", type=int, default=12_000)
    parser.add_argument("--max-docs", type=int, default=30_000)
    args = parser.parse_args()

    seconds: list[float] = []
    info: CorpusInfo | None = None
    for repeat in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="sluice-corpus-") as tmp:
            started = time.perf_counter()
            info = build_demo_corpus(Path(tmp), min_docs=args.min_docs, max_docs=args.max_docs)
            seconds.append(time.perf_counter() - started)
            sizes = {name: path.stat().st_size for name, path in info.paths.items()}
        print(f"build {repeat + 1}: {seconds[-1]:.2f} s")
    if info is None:
        return

    median = statistics.median(seconds)
    print(f"median seconds  {median:.2f}")
    print(f"docs            {info.total_docs}")
    print(f"docs/s          {info.total_docs / median:,.0f}")
    for name, count in info.doc_counts.items():
        print(f"  {name:<20} {count:>7} docs {sizes[name]:>12,} bytes")
    print(f"  {'total':<20} {info.total_docs:>7} docs {sum(sizes.values()):>12,} bytes")


if __name__ == "__main__":
    main()
