"""Dedup throughput, end to end (shingle -> signature -> LSH -> clusters -> apply), beside datasketch and rensa.

~20k real 1-2 KB docs (standard-library source chunks, `_docs.stdlib_docs`) in 4 partitions. Sluice's ops run
their three stages as the engine does (hashes per partition, one index over all, apply per partition), on one
thread (an op's `needs.cpus`), and MinHash also on two. The
reference libraries shingle like Data-Juicer (space tokens, 5-word windows, lower-cased), then build signatures
and cluster with union-find over their LSH's query results (datasketch `MinHashLSH`, rensa `RMinHashLSH`), or,
for "rensa batch", rensa's bulk digest and Sluice's index. Medians of --repeat runs, wall clock and process CPU
time (all threads: less sensitive to the share of a loaded machine the run got); also index bytes per doc.

    python bench/dedup_bench.py [--docs 20000] [--repeat 3] [--skip-slow]

datasketch and rensa are bench-only (`pip install datasketch rensa`); missing ones are skipped.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _docs import stdlib_docs  # noqa: E402

from ops_library.base import Deduplicator  # noqa: E402
from ops_library.clusters import BandIndex  # noqa: E402
from ops_library.columns import ROW_ID  # noqa: E402
from ops_library.dedup.document_deduplicator import DocumentDeduplicator  # noqa: E402
from ops_library.dedup.document_line_deduplicator import DocumentLineDeduplicator  # noqa: E402
from ops_library.dedup.document_minhash_deduplicator import DocumentMinhashDeduplicator  # noqa: E402
from ops_library.dedup.document_simhash_deduplicator import DocumentSimhashDeduplicator  # noqa: E402
from ops_library.minhash import band_keys  # noqa: E402

NUM_PERM, THRESHOLD, WINDOW = 256, 0.7, 5


def partitions(texts: list[str], parts: int = 4) -> list[pl.DataFrame]:
    size = -(-len(texts) // parts)
    return [
        pl.DataFrame(
            {"text": texts[k : k + size], ROW_ID: [f"p{k // size}:{i}" for i in range(len(texts[k : k + size]))]}
        )
        for k in range(0, len(texts), size)
    ]


def sluice_run(op: Deduplicator, frames: list[pl.DataFrame], threads: int | None = None) -> dict:
    """The engine's three stages; returns what was removed and what the index holds."""
    hashes = [op.hashes(f, threads=threads) if threads else op.hashes(f) for f in frames]
    if isinstance(op, DocumentMinhashDeduplicator):
        state = op.index_state(hashes)
        index = state.index_frame()
        index_bytes = state.nbytes
    else:
        index = op.index(hashes)
        index_bytes = int(index.estimated_size())
    outs = [op.apply(f, index) for f in frames]
    return {
        "removed": sum(o.dropped_count for o in outs),
        "changed": sum(o.changed or 0 for o in outs),
        "index_bytes": index_bytes,
        "hash_bytes": sum(int(h.estimated_size()) for h in hashes),
    }


def dj_shingles(text: str) -> list[str]:
    tokens = [w for w in text.lower().split(" ") if w]
    return list({" ".join(tokens[i : i + WINDOW]) for i in range(len(tokens) - WINDOW + 1)})


def union_find_kept(n: int, neighbours: Callable[[int], list[int]]) -> int:
    """Removed rows when each row is linked to the earlier rows `neighbours(i)` returns (first row kept)."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i in range(n):
        for j in neighbours(i):
            a, b = find(i), find(j)
            if a != b:
                parent[max(a, b)] = min(a, b)
    return sum(find(i) != i for i in range(n))


def datasketch_run(texts: list[str]) -> dict:
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    sigs = []
    for text in texts:
        m = MinHash(num_perm=NUM_PERM)
        m.update_batch([s.encode() for s in dj_shingles(text)])
        sigs.append(m)

    def neighbours(i: int) -> list[int]:
        found = lsh.query(sigs[i])
        lsh.insert(i, sigs[i])
        return found

    return {"removed": union_find_kept(len(texts), neighbours)}


def rensa_run(texts: list[str]) -> dict:
    from rensa import RMinHash, RMinHashLSH

    # rensa needs num_perm divisible by num_bands: 32 x 8 is the nearest to Data-Juicer's 25 x 10.
    lsh = RMinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM, num_bands=32)
    sigs = []
    for text in texts:
        m = RMinHash(num_perm=NUM_PERM, seed=42)
        m.update(dj_shingles(text))
        sigs.append(m)

    def neighbours(i: int) -> list[int]:
        found = lsh.query(sigs[i])
        lsh.insert(i, sigs[i])
        return found

    return {"removed": union_find_kept(len(texts), neighbours)}


def rensa_batch_run(texts: list[str], timings: dict) -> dict:
    from rensa import RMinHash

    op = DocumentMinhashDeduplicator()
    t = time.perf_counter()
    token_sets = [dj_shingles(text) for text in texts]
    t_sig = time.perf_counter()
    matrix = RMinHash.digest_matrix_from_token_sets(token_sets, NUM_PERM, 42)
    sig = np.array(matrix.to_rows(), dtype=np.uint32)
    t_index = time.perf_counter()
    keys = band_keys(sig, op.bands, op.rows_per_band)
    hashes = pl.DataFrame(
        {
            ROW_ID: [str(i) for i in range(len(texts))],
            "__sluice_hash__": pl.Series(keys, dtype=pl.Array(pl.UInt64, op.bands)),
        }
    )
    index = BandIndex(op.bands).add([hashes]).index_frame()
    timings.setdefault("shingle_s", []).append(t_sig - t)
    timings.setdefault("signature_s", []).append(t_index - t_sig)
    return {"removed": index.height}


def measure(name: str, fn: Callable[[], dict], n: int, repeat: int) -> dict:
    times, cpu_times, result = [], [], {}
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        result = fn()
        times.append(time.perf_counter() - t)
        cpu_times.append(time.process_time() - c)
    median, cpu = statistics.median(times), statistics.median(cpu_times)
    row = {"name": name, "docs_per_s": round(n / median), "median_s": round(median, 3), **result}
    print(
        f"{name:38s} {row['docs_per_s']:>9,} docs/s  {median:7.3f} s  ({n / cpu:>9,.0f} docs per CPU-second)  "
        f"removed={result.get('removed', '-')}"
        + (f"  index {result['index_bytes'] / n:,.0f} B/doc" if "index_bytes" in result else "")
        + (f"  hash frames {result['hash_bytes'] / n:,.0f} B/doc" if "hash_bytes" in result else ""),
        flush=True,
    )
    return row


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-slow", action="store_true", help="skip datasketch and the per-doc rensa path")
    args = ap.parse_args()
    texts = stdlib_docs(args.docs)
    frames = partitions(texts)
    n = len(texts)
    sizes = [len(t.encode()) for t in texts]
    print(
        f"{n} docs, {statistics.mean(sizes):.0f} B mean ({min(sizes)}..{max(sizes)}), {len(frames)} partitions; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    # warm-up: numba compiles (or loads its cache) once per process
    DocumentMinhashDeduplicator().run(frames[0].head(50))
    rows = [
        measure(
            "sluice exact (document_deduplicator)", lambda: sluice_run(DocumentDeduplicator(), frames), n, args.repeat
        ),
        measure("sluice minhash fast", lambda: sluice_run(DocumentMinhashDeduplicator(), frames), n, args.repeat),
        measure(
            "sluice minhash fast, 2 threads",
            lambda: sluice_run(DocumentMinhashDeduplicator(), frames, threads=2),
            n,
            args.repeat,
        ),
        measure(
            "sluice minhash datajuicer",
            lambda: sluice_run(DocumentMinhashDeduplicator({"hash_mode": "datajuicer"}), frames),
            n,
            args.repeat,
        ),
        measure("sluice simhash fast", lambda: sluice_run(DocumentSimhashDeduplicator(), frames), n, args.repeat),
        measure(
            "sluice simhash datajuicer",
            lambda: sluice_run(DocumentSimhashDeduplicator({"hash_mode": "datajuicer"}), frames),
            n,
            args.repeat,
        ),
        measure("sluice line dedup", lambda: sluice_run(DocumentLineDeduplicator(), frames), n, args.repeat),
    ]
    op = DocumentMinhashDeduplicator()
    op.hashes(frames[0])
    print(f"  minhash fast stage split (partition 0): {op.last_run_info}")
    try:
        import rensa  # noqa: F401

        timings: dict = {}
        rows.append(
            measure("rensa batch digest + sluice index", lambda: rensa_batch_run(texts, timings), n, args.repeat)
        )
        print(
            f"  of which Python shingling {statistics.median(timings['shingle_s']):.3f} s, rensa digest + to_rows "
            f"{statistics.median(timings['signature_s']):.3f} s"
        )
        if not args.skip_slow:
            rows.append(measure("rensa per-doc RMinHash + RMinHashLSH 32x8", lambda: rensa_run(texts), n, args.repeat))
    except ImportError:
        print("rensa not installed: skipped")
    if not args.skip_slow:
        try:
            import datasketch  # noqa: F401

            rows.append(measure("datasketch MinHash + MinHashLSH", lambda: datasketch_run(texts), n, args.repeat))
        except ImportError:
            print("datasketch not installed: skipped")


if __name__ == "__main__":
    main()
