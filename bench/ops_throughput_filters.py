"""Throughput of each text filter on the demo corpus, in documents per second (median of --repeat runs).

Each run hands the op a fresh frame of the whole corpus (text, id, kind; no stats yet), so stats are computed,
not read back. "docs/s" is wall clock; "docs/cpu-s" divides by the process's CPU time (all its threads), which
a busy shared machine disturbs less. One process: polars spreads expression work over the machine's cores
(POLARS_MAX_THREADS), a Python row loop uses one core (the engine's process pool runs shards side by side).
The corpus is built once into a temp dir (or read from --corpus).

    python bench/ops_throughput_filters.py [--repeat 3] [--ops alphanumeric_filter,...] [--corpus DIR] [--processes 2]

With --processes N the corpus is cut into N slices run by N worker processes (the engine's process pool
runs shards the same way); docs/cpu-s is then not measured (the work is in the workers).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gzip
import itertools
import json
import multiprocessing
import os
import statistics
import tempfile
import time
from pathlib import Path

import polars as pl
from _demo import ROOT  # noqa: F401  (puts the repository on sys.path)

# Params per op: Data-Juicer's defaults, plus what an op needs to do any work at all.
PARAMS: dict[str, dict] = {
    "alphanumeric_filter": {},
    "special_characters_filter": {},
    "average_line_length_filter": {},
    "maximum_line_length_filter": {},
    "character_repetition_filter": {},
    "word_repetition_filter": {},
    "stopwords_filter": {},
    "flagged_words_filter": {},
    "suffix_filter": {"suffixes": [".jsonl", ".parquet"]},
    "specified_field_filter": {"field_key": "kind", "target_value": ["docstring", "readme"]},
    "specified_numeric_field_filter": {"field_key": "meta.n", "min_value": 10, "max_value": 1000},
    "text_length_filter": {},
    "words_num_filter": {},
    "language_id_score_filter": {},
    "token_num_filter": {},
}
MODEL_OPS = {"language_id_score_filter", "token_num_filter"}


def load_corpus(corpus: Path) -> pl.DataFrame:
    frames = []
    for path in sorted(p for p in corpus.iterdir() if not p.name.startswith("_")):
        if path.suffix == ".parquet":
            rows = pl.read_parquet(path).to_dicts()
        else:
            opener = gzip.open if path.name.endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8") as fh:
                rows = [json.loads(line) for line in fh]
        frames.append(
            pl.DataFrame(
                {
                    "text": [r["text"] for r in rows],
                    "kind": [r["kind"] for r in rows],
                    "__sluice_id__": [f"{path.name}:{i}" for i in range(1, len(rows) + 1)],
                }
            )
        )
    df = pl.concat(frames)
    return df.with_columns(pl.struct(n=pl.col("text").str.len_chars().cast(pl.String)).alias("meta"))


_op = None


def _set_op(name: str, params: dict) -> None:
    global _op
    from ops_library.registry import get_op

    _op = get_op(name)(params)


def _kept(chunk: pl.DataFrame) -> int:
    return _op.run(chunk).kept.height  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ops", default=",".join(PARAMS))
    parser.add_argument("--corpus", type=Path, default=None, help="a built demo corpus (default: build one)")
    parser.add_argument(
        "--processes", type=int, default=1, help="split the corpus over this many worker processes (as shards are)"
    )
    args = parser.parse_args()

    from ops_library.registry import get_op
    from pipeline_defs.corpus import ensure_demo_corpus

    corpus = args.corpus or ensure_demo_corpus(Path(tempfile.mkdtemp(prefix="sluice_bench_filters_"))).out_dir
    df = load_corpus(corpus)
    mb = df["text"].str.len_bytes().sum() / 1e6
    threads = os.environ.get("POLARS_MAX_THREADS", str(pl.thread_pool_size()))
    print(f"demo corpus: {df.height} docs, {mb:.1f} MB of text; {os.cpu_count()} cores, polars threads {threads}")
    print(f"load average before: {os.getloadavg()[0]:.1f} (the machine is shared: compare with care)")
    print(f"{'op':<34}{'docs/s':>10}{'docs/cpu-s':>12}{'kept':>8}  note")
    for name in args.ops.split(","):
        op = get_op(name)(PARAMS[name])
        op.run(df.head(100))  # load models and word lists outside the timing
        seconds, cpu_seconds, kept = [], [], 0
        pool = None
        if args.processes > 1:
            pool = concurrent.futures.ProcessPoolExecutor(
                args.processes,
                mp_context=multiprocessing.get_context("spawn"),  # fork after polars started threads can hang
                initializer=_set_op,
                initargs=(name, PARAMS[name]),
            )
            list(pool.map(_kept, [df.head(100)] * args.processes))  # warm every worker
        cuts = [i * df.height // args.processes for i in range(args.processes + 1)]
        chunks = [df.slice(lo, hi - lo) for lo, hi in itertools.pairwise(cuts)]
        for _ in range(args.repeat):
            started, cpu_started = time.perf_counter(), time.process_time()
            kept = op.run(df).kept.height if pool is None else sum(pool.map(_kept, chunks))
            seconds.append(time.perf_counter() - started)
            cpu_seconds.append(time.process_time() - cpu_started)
        if pool is not None:
            pool.shutdown()
        rate = df.height / statistics.median(seconds)
        cpu_rate = df.height / max(statistics.median(cpu_seconds), 1e-9) if pool is None else float("nan")
        note = "model" if name in MODEL_OPS else ("" if rate >= 20_000 else "below 20k docs/s")
        print(f"{name:<34}{rate:>10,.0f}{cpu_rate:>12,.0f}{kept:>8}  {note}")


if __name__ == "__main__":
    main()
