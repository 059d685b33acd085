"""Docs/s of each text mapper on the demo corpus (one frame, in memory): median of a few runs after one warm-up
run (which loads packages and tables), polars on all the cores it sees.

Run: python bench/ops_throughput_mappers.py [--repeats 3] [--corpus DIR] [OP ...]
"""

from __future__ import annotations

import argparse
import gzip
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ops_library.columns import ROW_ID
from ops_library.registry import get_op
from pipeline_defs.corpus import COMMENTS_FILE, DOCSTRINGS_FILE, READMES_FILE, ensure_demo_corpus

# Each mapper with Data-Juicer's defaults (text_chunk_mapper: its default split on blank lines).
OPS: dict[str, dict[str, Any]] = {
    "clean_email_mapper": {},
    "clean_ip_mapper": {},
    "clean_html_mapper": {},
    "clean_copyright_mapper": {},
    "fix_unicode_mapper": {},
    "punctuation_normalization_mapper": {},
    "chinese_convert_mapper": {},
    "remove_bibliography_mapper": {},
    "remove_comments_mapper": {},
    "remove_header_mapper": {},
    "remove_long_words_mapper": {},
    "remove_non_chinese_character_mapper": {},
    "remove_specific_chars_mapper": {},
    "remove_repeat_sentences_mapper": {},
    "remove_table_text_mapper": {},
    "remove_words_with_incorrect_substrings_mapper": {},
    "expand_macro_mapper": {},
    "sentence_split_mapper": {},
    "text_chunk_mapper": {},
}


def load_corpus(directory: Path) -> pl.DataFrame:
    info = ensure_demo_corpus(directory)
    texts = pl.concat(
        [
            pl.read_ndjson(info.paths[DOCSTRINGS_FILE])["text"],
            pl.read_ndjson(gzip.decompress(info.paths[COMMENTS_FILE].read_bytes()))["text"],
            pl.read_parquet(info.paths[READMES_FILE])["text"],
        ]
    )
    return pl.DataFrame({"text": texts, ROW_ID: [f"demo:{i}" for i in range(1, texts.len() + 1)]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--corpus", type=Path, default=Path(tempfile.gettempdir()) / "sluice-bench-demo-corpus")
    parser.add_argument("ops", nargs="*", default=list(OPS))
    args = parser.parse_args()

    df = load_corpus(args.corpus)
    print(
        f"demo corpus: {df.height} docs, {df['text'].str.len_chars().sum() / 1e6:.1f}M characters; "
        f"{os.cpu_count()} CPUs, polars threads {pl.thread_pool_size()}"
    )
    print(f"{'op':48s} {'docs/s':>10s} {'median s':>9s} {'changed':>8s} {'rows out':>9s}")
    for name in args.ops:
        op = get_op(name)(OPS.get(name, {}))
        out = op.run(df)  # warm-up: imports, tables, regex compilation
        seconds = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            out = op.run(df)
            seconds.append(time.perf_counter() - started)
        median = statistics.median(seconds)
        print(f"{name:48s} {df.height / median:10,.0f} {median:9.3f} {out.changed or 0:8d} {out.kept.height:9d}")


if __name__ == "__main__":
    main()
