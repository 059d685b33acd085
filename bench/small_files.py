"""A corpus of many small JSONL (or Parquet) files, with packed shards (`partition.pack`, the default) and without.

The bench corpus's first --docs documents are cut into --files JSONL files (`--format parquet`: Parquet files
of one schema) of equal row counts (a layout many datasets ship in); issue 13's 10-op recipe runs on them as
`sluice run` in a fresh SLUICE_HOME, once with the default partition section (small files packed into shards of
up to 64MB) and once with `partition: {pack: false}` (a shard per file), in interleaved rounds. Printed: the
medians of the whole-process wall, the shards (Dagster partitions) each made, its ratio, and whether both wrote
byte-identical exports.

    python bench/small_files.py [--files 200] [--docs 10000] [--repeats 3] [--format jsonl|parquet]

Results: bench/results/small_files.json (JSONL), small_files_parquet.json (Parquet).
"""

from __future__ import annotations

import argparse
import io
import re
import sys
from pathlib import Path
from typing import Any

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus as corpus_mod
import harness as h
import run_all

VARIANTS = {"packed": {}, "one_per_file": {"partition": {"pack": False}}}


def split_corpus(corpus_dir: Path, work: Path, docs: int, files: int, fmt: str = "jsonl") -> int:
    """The corpus's first `docs` documents (`harness.corpus_input`) cut, in order, into `files` JSONL (or Parquet)
    files under `work/input`; the rows written."""
    source = h.corpus_input(corpus_dir, work / "first_docs.jsonl", docs)
    lines = Path(source["path"]).read_bytes().splitlines(keepends=True)
    out = h.fresh_dir(work / "input")
    per = -(-len(lines) // files)
    for i in range(files):
        part = b"".join(lines[i * per : (i + 1) * per])
        if fmt == "parquet":
            pl.read_ndjson(io.BytesIO(part)).write_parquet(out / f"part-{i:05d}.parquet")
        else:
            (out / f"part-{i:05d}.jsonl").write_bytes(part)
    return len(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--corpus", default=None, help="bench corpus directory (default $SLUICE_HOME/corpus/bench)")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--format", choices=("jsonl", "parquet"), default="jsonl")
    args = parser.parse_args()
    corpus_dir = Path(args.corpus) if args.corpus else corpus_mod.default_dir()
    corpus_mod.ensure(corpus_dir)
    work = h.fresh_dir(h.BENCH / ".work" / "small_files")
    docs = split_corpus(corpus_dir, work, args.docs, args.files, args.format)
    dataset = work / "input"
    recipes = {}
    for name, extra in VARIANTS.items():
        recipes[name] = work / f"{name}.yaml"
        recipes[name].write_text(run_all.recipe_yaml("small", dataset, run_all.RECIPE_10, h.cores(), **extra))
    walls: dict[str, list[float]] = {name: [] for name in VARIANTS}
    shards: dict[str, int | None] = dict.fromkeys(VARIANTS)
    exports: dict[str, bytes] = {}
    for r in range(args.repeats):
        for name, recipe in recipes.items():
            run_dir = h.fresh_dir(work / "runs" / f"{name}_r{r}")
            home = run_dir / "home"
            log = run_dir / "sluice.log"
            m = h.measure(name, h.sluice_cmd(recipe), h.sluice_env(home), cwd=run_dir, timeout=args.timeout, log=log)
            ok = "ok" if m.rc == 0 else f"FAILED rc={m.rc}\n{m.tail}"
            print(f"  {name:<13} run {r + 1}: {m.wall_s:7.2f} s  {ok}", flush=True)
            if m.rc != 0:
                continue
            walls[name].append(m.wall_s)
            found = re.search(r"(\d+) partitions", log.read_text(errors="replace"))
            shards[name] = int(found.group(1)) if found else None
            exports[name] = (home / "export" / "small.jsonl").read_bytes()
    medians = {name: h.median(values) for name, values in walls.items()}
    same = len(exports) == len(VARIANTS) and len(set(exports.values())) == 1
    print(
        f"\nmachine: {h.cores()} cores; {docs:,} docs in {args.files} {args.format} files; "
        f"medians of {args.repeats} round(s)"
    )
    for name in VARIANTS:
        print(f"  {name:<13} {medians[name] or float('nan'):7.2f} s  {shards[name]} shards")
    packed, single = medians["packed"], medians["one_per_file"]
    if packed and single:
        print(f"  one shard per file / packed: {single / packed:.2f}x; same export: {'yes' if same else 'NO'}")
    result: dict[str, Any] = {
        "machine": h.machine(),
        "docs": docs,
        "files": args.files,
        "format": args.format,
        "repeats": args.repeats,
        "walls": walls,
        "medians": medians,
        "shards": shards,
        "same_export": same,
    }
    name = "small_files" if args.format == "jsonl" else f"small_files_{args.format}"
    print("->", h.write_result(name, result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
