"""MinHash signatures + LSH + "keep the first of each cluster", by one tool, on one JSONL file (one process).

Every tool gets Data-Juicer's settings: shingles of 5 space-separated tokens of the lower-cased text (Data-Juicer's
`split_on_whitespace`: split on " " only), 256 permutations, threshold 0.7 as 25 bands x 10 rows, and the same
rule: documents whose signatures share a band bucket are joined (union-find), the first of each group is kept.

* `sluice`: the registered `document_minhash_deduplicator` op (`Op.run` on one frame), default params, its
  compiled kernels on the process's usable cores (`threads`, as a recipe's hashes stage runs them with `np` = the
  cores); its stages: loading the compiled kernels (the C library, or in `datajuicer` mode numba's import and
  cache, once per process: a run over one row, then `load_kernels` for those it does without), signatures
  (normalize, shingle, hash, and fold into LSH band keys), and LSH index + apply, which sum to its total;
* `sluice-dj-hash`: the same op with `hash_mode: datajuicer` (its Data-Juicer-compatible signatures);
* `sluice-oph`: the same op with `hash_mode: oph` (one permutation hashing: one hash per shingle, densified);
* `datasketch`: `MinHash.bulk` (scheme "legacy", seed 42, SHA-1: Data-Juicer's permutations and hash) and
  `MinHashLSH(params=(25, 10))`, queried per document;
* `rensa`: `RMinHash.from_token_sets` (its own hash family, so groups may differ slightly) and
  `RMinHashLSH(0.7, 250, 25)` (rensa wants the permutations divisible by the bands; Data-Juicer's 25 x 10 bands
  use 250 of its 256 permutations too).

Writes `{"tool", "docs", "seconds": {...}, "kept_ids": [...]}` to OUT.

    python bench/minhash_tools.py TOOL INPUT.jsonl OUT.json
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

NUM_PERM = 256
BANDS, ROWS = 25, 10
WINDOW = 5
THRESHOLD = 0.7
SEED = 42
PARAMS = {
    "tokenization": "space",
    "window_size": WINDOW,
    "lowercase": True,
    "num_permutations": NUM_PERM,
    "jaccard_threshold": THRESHOLD,
}


def shingles(text: str) -> list[str]:
    tokens = [t for t in text.lower().split(" ") if t]
    return sorted({" ".join(tokens[i : i + WINDOW]) for i in range(len(tokens) - WINDOW + 1)})


def first_of_groups(n: int, candidates: list[list[int]]) -> list[int]:
    """Indices kept: the smallest of each connected group of candidate pairs (Data-Juicer's union-find rule)."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, cands in enumerate(candidates):
        for j in cands:
            a, b = find(i), find(int(j))
            if a != b:
                parent[max(a, b)] = min(a, b)
    return [i for i in range(n) if find(i) == i]


def run_sluice(ids: list[str], texts: list[str], **extra: Any) -> tuple[list[str], dict[str, float]]:
    import polars as pl

    from ops_library.columns import ROW_ID
    from ops_library.registry import get_op
    from resources.hardware import usable_cpus

    op = get_op("document_minhash_deduplicator")(PARAMS | extra)
    frame = pl.DataFrame({ROW_ID: ids, "id": ids, "text": texts})
    threads = usable_cpus()
    started = time.perf_counter()
    op.run(frame.head(1), threads=threads)  # the kernels' first call loads them: timed as its own stage
    op.load_kernels()  # and those a run over one row does without (the index's)
    loaded = time.perf_counter()
    out = op.run(frame, threads=threads)
    done = time.perf_counter()
    signatures = op.last_run_info["normalize_seconds"] + op.last_run_info["signature_seconds"]
    seconds = {
        "kernel_load": loaded - started,
        "signatures": signatures,
        "index_and_apply": done - loaded - signatures,
        "total": done - started,
    }
    return out.kept["id"].to_list(), seconds


def run_datasketch(ids: list[str], texts: list[str]) -> tuple[list[str], dict[str, float]]:
    from datasketch import MinHash, MinHashLSH

    t0 = time.perf_counter()
    sets = [[s.encode() for s in shingles(t)] for t in texts]
    t1 = time.perf_counter()
    hashes = MinHash.bulk(sets, num_perm=NUM_PERM, seed=SEED, scheme="legacy")
    t2 = time.perf_counter()
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM, params=(BANDS, ROWS))
    for i, m in enumerate(hashes):
        lsh.insert(i, m, check_duplication=False)
    candidates = [lsh.query(m) for m in hashes]
    keep = first_of_groups(len(ids), candidates)
    t3 = time.perf_counter()
    seconds = {"shingles": t1 - t0, "signatures": t2 - t1, "lsh_and_groups": t3 - t2, "total": t3 - t0}
    return [ids[i] for i in keep], seconds


def run_rensa(ids: list[str], texts: list[str]) -> tuple[list[str], dict[str, float]]:
    from rensa import RMinHash, RMinHashLSH

    t0 = time.perf_counter()
    sets = [shingles(t) for t in texts]
    t1 = time.perf_counter()
    # rensa needs num_perm divisible by the bands: 250 = 25 x 10, the permutations Data-Juicer's bands use.
    hashes = RMinHash.from_token_sets(sets, BANDS * ROWS, SEED)
    t2 = time.perf_counter()
    lsh = RMinHashLSH(THRESHOLD, BANDS * ROWS, BANDS)
    for i, m in enumerate(hashes):
        lsh.insert(i, m)
    candidates = lsh.query_all(hashes)
    keep = first_of_groups(len(ids), candidates)
    t3 = time.perf_counter()
    seconds = {"shingles": t1 - t0, "signatures": t2 - t1, "lsh_and_groups": t3 - t2, "total": t3 - t0}
    return [ids[i] for i in keep], seconds


def run_sluice_datajuicer(ids: list[str], texts: list[str]) -> tuple[list[str], dict[str, float]]:
    """Sluice's op in its Data-Juicer-compatible hash mode (SHA-1 signatures, bit for bit)."""
    return run_sluice(ids, texts, hash_mode="datajuicer")


def run_sluice_oph(ids: list[str], texts: list[str]) -> tuple[list[str], dict[str, float]]:
    """Sluice's op with one permutation hashing (one hash per shingle instead of one per permutation)."""
    return run_sluice(ids, texts, hash_mode="oph")


TOOLS = {
    "sluice": run_sluice,
    "sluice-dj-hash": run_sluice_datajuicer,
    "sluice-oph": run_sluice_oph,
    "datasketch": run_datasketch,
    "rensa": run_rensa,
}


def main() -> None:
    tool, source, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    import polars as pl

    from resources.hardware import usable_cpus

    frame = pl.read_ndjson(source).select("id", "text")
    kept, seconds = TOOLS[tool](frame["id"].to_list(), frame["text"].to_list())
    payload = {
        "tool": tool,
        "docs": frame.height,
        "seconds": {k: round(v, 4) for k, v in seconds.items()},
        "threads": usable_cpus() if tool.startswith("sluice") else None,
        "kept_ids": kept,
    }
    out.write_text(json.dumps(payload))


if __name__ == "__main__":
    main()
