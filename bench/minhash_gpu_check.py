"""GPU check of MinHash signatures: CUDA (torch) vs CPU, identical values and docs/s, on ~20k real 1-2 KB docs.

The docs are chunks of the standard library's own .py files (whatever Python runs this), so the script needs no
data. It needs numpy and torch only: where polars is missing it loads `ops_library.shingles` and
`ops_library.minhash` without the package's `__init__` (which imports polars). Prints one JSON object.

    python bench/minhash_gpu_check.py [--docs 20000] [--device cuda]
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import sys
import time
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
try:
    import polars  # noqa: F401
except ImportError:  # the package __init__ needs polars; the two modules used here do not
    stub = types.ModuleType("ops_library")
    stub.__path__ = [str(ROOT / "ops_library")]
    sys.modules["ops_library"] = stub

from _docs import stdlib_docs  # noqa: E402

from ops_library.minhash import minhash_signatures, numba_available, signatures_of_bytes  # noqa: E402
from ops_library.shingles import ShingleHashes, byte_split, exact_shingles, fast_shingle_hashes, tokenize  # noqa: E402


def buffer(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    encoded = [t.lower().encode() for t in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    return np.frombuffer(b"".join(encoded), dtype=np.uint8), offsets


def sha1_hashes(tokens, window: int) -> ShingleHashes:
    hashes: list[int] = []
    offsets = [0]
    for shingles in exact_shingles(tokens, window, "space"):
        hashes.extend(int.from_bytes(hashlib.sha1(s).digest()[:4], "little") for s in set(shingles))
        offsets.append(len(hashes))
    return ShingleHashes(np.array(hashes, dtype=np.uint64), np.array(offsets, dtype=np.int64))


def timed(fn, repeat: int = 3):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return out, sorted(times)[len(times) // 2]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=20000)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--num-perm", type=int, default=256)
    args = ap.parse_args()
    import torch

    report: dict = {
        "torch": torch.__version__,
        "cuda": torch.cuda.is_available(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "numba": numba_available(),
    }
    t = time.perf_counter()
    texts = stdlib_docs(args.docs)
    data, offsets = buffer(texts)
    tokens = tokenize(data, offsets, "space")
    report |= {"docs": len(texts), "mean_doc_bytes": round(len(data) / len(texts)), "build_s": time.perf_counter() - t}
    cpu_backend = "numba" if report["numba"] else "numpy"
    for mode, make in (
        ("fast", lambda: fast_shingle_hashes(tokens, 5)),
        ("datajuicer", lambda: sha1_hashes(tokens, 5)),
    ):
        sh, shingle_s = timed(make, repeat=1)
        cpu, cpu_s = timed(
            lambda sh=sh, mode=mode: minhash_signatures(sh, mode, args.num_perm, backend=cpu_backend),
            repeat=3 if report["numba"] else 1,  # numpy takes ~15 s per run
        )
        entry = {"shingles": len(sh.hashes), "shingle_s": round(shingle_s, 3), "cpu_backend": cpu_backend}
        entry["cpu_signature_docs_per_s"] = round(len(texts) / cpu_s)
        if report["cuda"]:
            minhash_signatures(sh, mode, args.num_perm, device=args.device)  # warm-up (CUDA context, kernels)
            gpu, gpu_s = timed(lambda sh=sh, mode=mode: minhash_signatures(sh, mode, args.num_perm, device=args.device))
            entry["gpu_signature_docs_per_s"] = round(len(texts) / gpu_s)
            entry["identical"] = bool(np.array_equal(cpu, gpu))
            entry["differing_values"] = int((cpu != gpu).sum())
        if mode == "fast" and report["numba"]:
            # from the bytes: the op's one-pass CPU kernel against tokens, shingle hashes, then signatures
            split = byte_split("space")
            one_pass = np.empty((len(offsets) - 1, args.num_perm), dtype=np.uint32)
            _, one_s = timed(
                functools.partial(signatures_of_bytes, data, offsets, split, 5, args.num_perm, "fast", out=one_pass)
            )
            _, two_s = timed(
                lambda: minhash_signatures(
                    fast_shingle_hashes(tokenize(data, offsets, "space"), 5), "fast", args.num_perm, backend="numba"
                )
            )
            entry["cpu_one_pass_from_bytes_docs_per_s"] = round(len(texts) / one_s)
            entry["cpu_two_stage_from_bytes_docs_per_s"] = round(len(texts) / two_s)
            entry["one_pass_identical"] = bool(np.array_equal(one_pass, cpu))
        report[mode] = entry
        print(json.dumps({mode: entry}), flush=True)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
