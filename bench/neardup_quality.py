"""Near-duplicate quality on a real set with natural near-duplicates: precision, recall and F1 against the pairs
whose exact Jaccard similarity (Data-Juicer's shingles: space tokens, 5-word windows, lower-cased) is >= 0.7.

The set: every `/usr/share/doc/*/copyright` file (many packages ship the same licence texts, with different
headers) and the standard-library .py files of every Python found (Debian's /usr/lib/python3.X and others,
e.g. pyenv's: different patch releases of the same modules), 1-100 KB each, in that order.

Scores, for each op configuration:
- removed rows: the rows a one-shot exact dedup removes (union-find over the true pairs, first row kept) vs the
  rows the op removes;
- pairs: the true pairs vs the pairs the op puts in one cluster.

    python bench/neardup_quality.py
"""

from __future__ import annotations

import glob
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
from scipy.sparse import csr_matrix

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ops_library.base import Deduplicator  # noqa: E402
from ops_library.clusters import union  # noqa: E402
from ops_library.columns import CLUSTER_ID, ROW_ID  # noqa: E402
from ops_library.dedup.document_minhash_deduplicator import DocumentMinhashDeduplicator  # noqa: E402
from ops_library.dedup.document_simhash_deduplicator import DocumentSimhashDeduplicator  # noqa: E402

THRESHOLD, WINDOW = 0.7, 5
STDLIB_ROOTS = sorted(
    {p for p in glob.glob("/usr/lib/python3.*") + glob.glob("/root/.pyenv/versions/*/lib/python3.*")}
    | {p for p in glob.glob("/usr/local/lib/python3.*") if Path(p, "os.py").exists()}
)


def corpus() -> tuple[list[str], list[str]]:
    paths = sorted(glob.glob("/usr/share/doc/*/copyright"))
    for root in STDLIB_ROOTS:
        for p in sorted(Path(root).rglob("*.py")):
            rel = p.relative_to(root).parts
            if any(part in ("site-packages", "dist-packages", "test", "tests", "idlelib") for part in rel):
                continue
            paths.append(str(p))
    names, texts = [], []
    for p in paths:
        try:
            raw = Path(p).read_bytes()
        except OSError:
            continue
        if 1000 <= len(raw) <= 100_000:
            try:
                texts.append(raw.decode("utf-8"))
                names.append(p)
            except UnicodeDecodeError:
                continue
    return names, texts


def shingle_sets(texts: list[str]) -> list[set[str]]:
    out = []
    for text in texts:
        tokens = [w for w in text.lower().split(" ") if w]
        out.append({" ".join(tokens[i : i + WINDOW]) for i in range(len(tokens) - WINDOW + 1)})
    return out


def true_pairs(sets: list[set[str]]) -> set[tuple[int, int]]:
    """Pairs (i < j) with exact Jaccard >= THRESHOLD: intersections from one sparse product."""
    vocab: dict[str, int] = {}
    rows, cols = [], []
    for i, s in enumerate(sets):
        for sh in s:
            rows.append(i)
            cols.append(vocab.setdefault(sh, len(vocab)))
    x = csr_matrix((np.ones(len(rows), dtype=np.int32), (rows, cols)), shape=(len(sets), len(vocab)))
    inter = (x @ x.T).tocoo()
    sizes = np.array([len(s) for s in sets])
    i, j, v = inter.row, inter.col, inter.data
    keep = i < j
    i, j, v = i[keep], j[keep], v[keep]
    jac = v / (sizes[i] + sizes[j] - v)
    hit = jac >= THRESHOLD
    return set(zip(i[hit].tolist(), j[hit].tolist(), strict=True))


def removed_by_pairs(n: int, pairs: set[tuple[int, int]]) -> set[int]:
    if not pairs:
        return set()
    arr = np.array(sorted(pairs), dtype=np.int64)
    roots = union(np.arange(n, dtype=np.int64), arr[:, 0], arr[:, 1])
    return set(np.flatnonzero(roots != np.arange(n)).tolist())


def prf(predicted: set, truth: set) -> tuple[float, float, float]:
    tp = len(predicted & truth)
    p = tp / len(predicted) if predicted else 1.0
    r = tp / len(truth) if truth else 1.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def predicted(op: Deduplicator, df: pl.DataFrame) -> tuple[set[int], set[tuple[int, int]], float]:
    t = time.perf_counter()
    index = op.index([op.hashes(df)])
    seconds = time.perf_counter() - t
    pos = {rid: k for k, rid in enumerate(df[ROW_ID].to_list())}
    removed = {pos[r] for r in index[ROW_ID].to_list()}
    pairs = set()
    for cluster, members in index.group_by(CLUSTER_ID).agg(pl.col(ROW_ID)).iter_rows():
        rows = sorted([cluster, *(pos[m] for m in members)])
        pairs |= {(a, b) for k, a in enumerate(rows) for b in rows[k + 1 :]}
    return removed, pairs, seconds


def main() -> None:
    names, texts = corpus()
    sets = shingle_sets(texts)
    keep = [k for k, s in enumerate(sets) if s]  # texts with no shingle have no Jaccard similarity
    names, texts, sets = [names[k] for k in keep], [texts[k] for k in keep], [sets[k] for k in keep]
    n = len(texts)
    truth = true_pairs(sets)
    truth_removed = removed_by_pairs(n, truth)
    copyright_docs = sum(p.startswith("/usr/share/doc/") for p in names)
    print(
        f"{n} docs ({copyright_docs} copyright files, {n - copyright_docs} stdlib modules from {STDLIB_ROOTS}); "
        f"{len(truth)} pairs with Jaccard >= {THRESHOLD}; exact dedup removes {len(truth_removed)} rows"
    )
    df = pl.DataFrame({"text": texts, ROW_ID: [str(k) for k in range(n)]})
    configs = [
        ("minhash fast (256 perm, 25x10)", DocumentMinhashDeduplicator()),
        ("minhash oph (256 bins, 25x10)", DocumentMinhashDeduplicator({"hash_mode": "oph"})),
        ("minhash datajuicer (256 perm, 25x10)", DocumentMinhashDeduplicator({"hash_mode": "datajuicer"})),
        ("simhash fast (6 blocks, distance 4)", DocumentSimhashDeduplicator()),
        ("simhash datajuicer (6 blocks, distance 4)", DocumentSimhashDeduplicator({"hash_mode": "datajuicer"})),
    ]
    print(f"{'op':42s} {'removed rows P / R / F1':>26s}   {'pairs P / R / F1':>22s}   removed  seconds")
    for name, op in configs:
        removed, pairs, seconds = predicted(op, df)
        rp, rr, rf = prf(removed, truth_removed)
        pp, pr, pf = prf(pairs, truth)
        scores = f"{rp:8.3f} {rr:7.3f} {rf:7.3f}   {pp:7.3f} {pr:7.3f} {pf:7.3f}"
        print(f"{name:42s} {scores}   {len(removed):7d}  {seconds:6.2f}")


if __name__ == "__main__":
    main()
