"""Throughput of text_embedding_mapper (all-MiniLM-L6-v2): docs/s on N CPU threads (or a GPU), median of a few runs.

Docs are `--words` words drawn, with a fixed seed, from the docstrings of the standard library, so every run
embeds the same text. The model loads once before timing.

Run: python bench/embedding_throughput.py [--threads 2] [--docs 96] [--words 200] [--batch-size 16] [--device cpu]
"""

from __future__ import annotations

import argparse
import pydoc
import random
import re
import statistics
import time

import polars as pl
import torch

from ops_library.mappers.text_embedding_mapper import TextEmbeddingMapper

_MODULES = ("collections", "json", "pathlib", "argparse", "subprocess", "threading", "logging", "email")


def make_docs(count: int, words: int, seed: int = 0) -> list[str]:
    vocabulary: list[str] = []
    for name in _MODULES:
        vocabulary += re.findall(r"[A-Za-z][a-z]+", pydoc.render_doc(name, renderer=pydoc.plaintext))
    rng = random.Random(seed)
    return [" ".join(rng.choices(vocabulary, k=words)) for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--docs", type=int, default=96)
    parser.add_argument("--words", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    df = pl.DataFrame({"text": make_docs(args.docs, args.words)})
    op = TextEmbeddingMapper()
    op.run(df.head(2), device=args.device)  # load the model outside the timing
    rates = []
    for repeat in range(args.repeats):
        started = time.perf_counter()
        op.run(df, device=args.device, batch_size=args.batch_size)
        seconds = time.perf_counter() - started
        rates.append(args.docs / seconds)
        print(f"run {repeat + 1}: {seconds:.2f} s, {rates[-1]:.1f} docs/s")
    info = op.last_run_info
    print(
        f"median {statistics.median(rates):.1f} docs/s: {args.docs} docs of {args.words} words, "
        f"device {info['device']}, {args.threads} threads, batch {info['batch_size']}, torch {torch.__version__}"
    )


if __name__ == "__main__":
    main()
