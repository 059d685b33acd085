"""Throughput of the JSONL/Parquet source reader and of the two text-rewriting mappers that have vectorized fast
paths (whitespace_normalization_mapper, clean_links_mapper), in documents per second, beside polars' own
`read_ndjson` as the floor. Prints figures; asserts nothing.

    python bench/source_and_mappers.py [DATASET_PATH] [--repeat 3]

Without DATASET_PATH it reads the demo corpus (built on first use under a temp dir). Wall seconds, best of
--repeat; polars uses every core it is given (POLARS_MAX_THREADS=1 for one).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import polars as pl

from ops_library.registry import get_op
from pipeline_defs.recipe import PartitionSpec
from pipeline_defs.shards import _MEMO, discover_files, discover_shards, read_shard


def best_of(repeat: int, fn) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset_path", nargs="?")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    dataset = args.dataset_path
    if dataset is None:
        from pipeline_defs.corpus import ensure_demo_corpus

        dataset = str(Path(tempfile.gettempdir()) / "sluice-bench-demo-corpus")
        ensure_demo_corpus(dataset)
    spec = PartitionSpec()
    os.environ["SLUICE_HOME"] = tempfile.mkdtemp(prefix="sluice-bench-home-")  # a first scan, no manifest yet
    _MEMO.clear()
    t0 = time.perf_counter()
    shards = discover_shards(dataset, spec)
    first_scan = time.perf_counter() - t0
    frames: list[pl.DataFrame] = []

    def read() -> None:
        frames.clear()
        frames.extend(read_shard(s, "text").kept for s in shards)

    read_s = best_of(args.repeat, read)
    docs = sum(f.height for f in frames)
    text_mb = sum(f["text"].str.len_bytes().sum() for f in frames) / 1e6
    jsonl = [f.path for f in discover_files(dataset) if f.fmt == "jsonl"]
    floor_s = best_of(args.repeat, lambda: [pl.read_ndjson(p) for p in jsonl]) if jsonl else float("nan")
    floor_docs = sum(pl.scan_ndjson(p).select(pl.len()).collect().item() for p in jsonl) if jsonl else 0
    print(f"input: {dataset}: {len(shards)} shards, {docs:,} docs, {text_mb:,.1f} MB of text")
    print(f"{'step':<34}{'seconds':>9}{'docs/s':>12}")
    print(f"{'discover (first scan, manifest)':<34}{first_scan:>9.3f}")
    print(f"{'read_shard (all shards)':<34}{read_s:>9.3f}{docs / read_s:>12,.0f}")
    if jsonl:
        print(f"{'  floor: pl.read_ndjson (.jsonl)':<34}{floor_s:>9.3f}{floor_docs / floor_s:>12,.0f}")
    df = pl.concat([f.select("__sluice_id__", "text") for f in frames])
    for name in ("whitespace_normalization_mapper", "clean_links_mapper"):
        op = get_op(name)({})
        seconds = best_of(args.repeat, lambda op=op: op.run(df))
        print(f"{name:<34}{seconds:>9.3f}{df.height / seconds:>12,.0f}")


if __name__ == "__main__":
    main()
