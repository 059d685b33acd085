"""The no-orchestration baseline of issue 8: a recipe's ops applied by a plain script, one frame, one process.

Reads the recipe's `dataset_path` (a file, directory or glob of JSONL / JSONL.gz / Parquet, files in sorted
order as Sluice reads them) with polars' native readers into ONE frame, applies each op of `process` with
`Op.run` (a Deduplicator's `run` does hash, index and apply on the frame), and writes the kept rows as JSONL.
No Dagster, no checkpoints, no partitions: what the ops cost when nothing else runs.

`--with-dropped` also writes every op's dropped rows, op by op, with the op, the kind and the reason first, to
`<OUT stem>.dropped.jsonl`, as Sluice's export writes its dropped-rows side file (which the baseline itself
leaves out): what the plain script costs for the same files, less the quarantine.

    python bench/plain_baseline.py RECIPE.yaml OUT.jsonl [--with-dropped]
"""

from __future__ import annotations

import glob
import os
import re
import sys
import time
from pathlib import Path

import polars as pl
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ops_library.columns import INTERNAL_PREFIX, PUBLIC_PROVENANCE, ROW_ID, STATS
from ops_library.registry import get_op

# Data-Juicer's per-op keys that are not op params (pipeline_defs.recipe.COMMON_OP_KEYS; not imported: the
# baseline must not pull in the engine).
COMMON_OP_KEYS = {
    "text_key",
    "num_proc",
    "batch_size",
    "num_cpus",
    "num_gpus",
    "memory",
    "accelerator",
    "auto_op_parallelism",
    "retry",
}
SUFFIXES = (".jsonl", ".json", ".jsonl.gz", ".json.gz", ".parquet")


def expand(value: str) -> str:
    def sub(m: re.Match[str]) -> str:
        default = m.group(2)
        return os.environ.get(m.group(1), default if default is not None else ".sluice")

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}", sub, value)


def input_files(dataset_path: str) -> list[tuple[Path, str]]:
    """(file, path relative to the dataset root) in Sluice's input order: sorted relative paths."""
    path = Path(dataset_path)
    if path.is_file():
        return [(path, path.name)]
    if path.is_dir():
        files = [p for p in path.rglob("*") if p.is_file()]
        root = path
    else:
        files = [Path(p) for p in glob.glob(dataset_path, recursive=True)]
        root = Path(os.path.commonpath([str(p.parent) for p in files])) if files else path.parent
    chosen = []
    for p in files:
        rel = p.relative_to(root).as_posix()
        if p.name.lower().endswith(SUFFIXES) and not any(part.startswith(("_", ".")) for part in Path(rel).parts):
            chosen.append((p, rel))
    return sorted(chosen, key=lambda fr: fr[1])


def read_input(dataset_path: str) -> pl.DataFrame:
    frames = []
    for path, rel in input_files(dataset_path):
        frame = pl.read_parquet(path) if path.name.endswith(".parquet") else pl.read_ndjson(path)
        row = pl.int_range(1, pl.len() + 1).cast(pl.String)
        frames.append(frame.with_columns(pl.concat_str(pl.lit(f"{rel}:"), row).alias(ROW_ID)))
    if not frames:
        sys.exit(f"plain_baseline: no JSONL or Parquet input under {dataset_path}")
    return pl.concat(frames, how="diagonal_relaxed")


def public_dropped(df: pl.DataFrame) -> pl.DataFrame:
    """A dropped row as Sluice's side file writes it: its provenance under plain names, then its own fields."""
    first = [pl.col(c).alias(name) for c, name in PUBLIC_PROVENANCE.items() if c in df.columns]
    return df.select(*first, *[c for c in df.columns if not c.startswith(INTERNAL_PREFIX)])


def main() -> None:
    args = [a for a in sys.argv[1:] if a != "--with-dropped"]
    with_dropped = len(args) < len(sys.argv) - 1
    recipe_path, out = Path(args[0]), Path(args[1])
    dropped: list[pl.DataFrame] = []
    recipe = yaml.safe_load(recipe_path.read_text())
    text_keys = recipe.get("text_keys", "text")
    default_key = text_keys if isinstance(text_keys, str) else text_keys[0]
    started = time.perf_counter()
    frame = read_input(expand(str(recipe["dataset_path"])))
    timings = {"read": time.perf_counter() - started}
    for entry in recipe["process"]:
        (name, params), *_ = (entry if isinstance(entry, dict) else {entry: {}}).items()
        params = dict(params or {})
        text_key = params.get("text_key", default_key)
        op = get_op(name)({k: v for k, v in params.items() if k not in COMMON_OP_KEYS}, text_key=text_key)
        t0 = time.perf_counter()
        result = op.run(frame)
        frame = result.kept
        if with_dropped and result.dropped is not None and result.dropped.height:
            dropped.append(result.dropped)
        timings[name] = time.perf_counter() - t0
    t0 = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.drop([c for c in frame.columns if c.startswith(INTERNAL_PREFIX) or c == STATS]).write_ndjson(out)
    timings["write"] = time.perf_counter() - t0
    if with_dropped:
        t0 = time.perf_counter()
        with open(out.with_name(out.name.split(".")[0] + ".dropped.jsonl"), "wb") as fh:
            for part in dropped:
                public_dropped(part).write_ndjson(fh)
        timings["write dropped"] = time.perf_counter() - t0
    print(" ".join(f"{k}={v:.3f}s" for k, v in timings.items()), f"kept={frame.height}", file=sys.stderr)


if __name__ == "__main__":
    main()
