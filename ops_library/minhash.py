"""MinHash signatures and LSH band keys, in three hash modes, on the CPU (numba, or numpy) or a CUDA device (torch).

- `datajuicer`: Data-Juicer 1.6.1's formula. Base hash = SHA-1's first 4 bytes read little-endian; permutation k
  maps it to `((a_k*h + b_k) mod 2**64) mod (2**61 - 1)) & (2**32 - 1)` (the product wraps at 64 bits in
  Data-Juicer's numpy code, so it does here), with `(a_k, b_k)` drawn by `numpy.random.RandomState(42)` as
  `randint(1, p)`, `randint(0, p)` per permutation.
- `fast`: rensa-core's R-MinHash permutation, `(a_k*h + b_k) mod 2**64 >> 32` with `(a_k | 1, b_k)` from
  Xoshiro256++ seeded by SplitMix64(42), over the shingle hashes of `shingles.fast_shingle_hashes`.
- `oph`: one permutation hashing with optimal densification (Shrivastava, ICML 2017) over the same shingle hashes:
  K = num_perm bins, and each shingle hash x goes to bin `((x >> 32) * K) >> 32` with value `x & (2**32 - 1)`;
  a bin keeps its smallest value. A bin no shingle reached copies the bin at the first filled position of its
  own probe sequence `((fmix64(j*C1 + t*C2) >> 32) * K) >> 32`, t = 1, 2, ... (C1, C2 fixed odd constants),
  which is the same for every text, so two texts agree on each bin with probability their Jaccard similarity,
  as with K permutations. One hash per shingle instead of K: the one-pass kernel took 0.31 s against `fast`'s
  0.86 s on the 110 MB bench corpus, two cores.

Every backend computes the same uint32 values bit for bit; an empty text's signature is all `2**32 - 1`, as in
Data-Juicer (so all texts too short for one shingle fall into one bucket, as there).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Literal

import numpy as np

from ops_library import lsh_params, native_kernels
from ops_library.shingles import (
    _FMIX_C1,
    _FMIX_C2,
    ShingleHashes,
)

HashMode = Literal["fast", "oph", "datajuicer"]

MERSENNE_PRIME = (1 << 61) - 1
MAX_HASH = (1 << 32) - 1
_MASK64 = (1 << 64) - 1
_U64_P = np.uint64(MERSENNE_PRIME)
_U32_MAX = np.uint32(MAX_HASH)
# Shingles per numpy block: (block x permutations) uint64 products stay near 32 MB.
_NUMPY_BLOCK_ELEMENTS = 1 << 22
_TORCH_BLOCK_ELEMENTS = 1 << 25
# The `oph` densification's probe sequence: fmix64(bin * _PROBE_BIN + attempt * _PROBE_ATTEMPT).
_PROBE_BIN = np.uint64(0x9E3779B97F4A7C15)
_PROBE_ATTEMPT = np.uint64(0xBF58476D1CE4E5B9)
_UNFILLED = 1 << 32  # an `oph` bin no shingle reached, in the int64 minima of the numpy and torch paths
# A band's key: its values folded as a polynomial in this multiplier, mod 2**64 (`band_keys`).
_BAND_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)


# --- permutations ----------------------------------------------------------------------------------------------


def datajuicer_permutations(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) as Data-Juicer draws them: `RandomState(42)`, a then b for each permutation."""
    gen = np.random.RandomState(seed=42)
    pairs = [
        (gen.randint(1, _U64_P, dtype=np.uint64), gen.randint(0, _U64_P, dtype=np.uint64)) for _ in range(num_perm)
    ]
    a, b = np.array(pairs, dtype=np.uint64).T
    return np.ascontiguousarray(a), np.ascontiguousarray(b)


def _rotl(x: int, k: int) -> int:
    return ((x << k) | (x >> (64 - k))) & _MASK64


def fast_permutations(num_perm: int, seed: int = 42) -> tuple[np.ndarray, np.ndarray]:
    """(a | 1, b) from Xoshiro256++ seeded by SplitMix64(seed), as rensa-core's `build_permutations`."""
    state, s = [], seed
    for _ in range(4):
        s = (s + 0x9E3779B97F4A7C15) & _MASK64
        z = s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        state.append(z ^ (z >> 31))
    out = []
    for _ in range(2 * num_perm):
        out.append((_rotl((state[0] + state[3]) & _MASK64, 23) + state[0]) & _MASK64)
        t = (state[1] << 17) & _MASK64
        state[2] ^= state[0]
        state[3] ^= state[1]
        state[1] ^= state[2]
        state[0] ^= state[3]
        state[2] ^= t
        state[3] = _rotl(state[3], 45)
    a = np.array(out[0::2], dtype=np.uint64) | np.uint64(1)
    return a, np.array(out[1::2], dtype=np.uint64)


@functools.lru_cache(maxsize=16)
def permutations(mode: HashMode, num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    return datajuicer_permutations(num_perm) if mode == "datajuicer" else fast_permutations(num_perm)


# --- LSH parameters --------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=64)
def optimal_param(
    threshold: float, num_perm: int, false_positive_weight: float = 0.5, false_negative_weight: float = 0.5
) -> tuple[int, int]:
    """(bands, rows per band) minimizing the weighted false-positive and false-negative areas, Data-Juicer's
    (and datasketch's) `optimal_param`, with the same scipy quadrature and the same first-minimum tie rule.
    Thresholds with two decimals at 64..512 permutations come from `lsh_params.OPTIMAL`, computed the same way."""
    if (false_positive_weight, false_negative_weight) == (0.5, 0.5):
        known = lsh_params.lookup(threshold, num_perm)
        if known is not None:
            return known
    return _integrate_param(threshold, num_perm, false_positive_weight, false_negative_weight)


def _integrate_param(
    threshold: float, num_perm: int, false_positive_weight: float, false_negative_weight: float
) -> tuple[int, int]:
    from scipy import integrate

    def false_positive(band: int, rows: int) -> float:
        return integrate.quad(lambda s: 1 - (1 - s ** float(rows)) ** float(band), 0.0, threshold)[0]

    def false_negative(band: int, rows: int) -> float:
        return integrate.quad(lambda s: 1 - (1 - (1 - s ** float(rows)) ** float(band)), threshold, 1.0)[0]

    min_error, best = float("inf"), (0, 0)
    for b in range(1, num_perm + 1):
        for r in range(1, num_perm // b + 1):
            error = false_positive(b, r) * false_positive_weight + false_negative(b, r) * false_negative_weight
            if error < min_error:
                min_error, best = error, (b, r)
    return best


# --- CPU kernels -----------------------------------------------------------------------------------------------


def _numpy_minhash(sh: ShingleHashes, a: np.ndarray, b: np.ndarray, mode: HashMode) -> np.ndarray:
    out = np.full((sh.num_docs, len(a)), _U32_MAX, dtype=np.uint32)
    counts = np.diff(sh.offsets)
    docs = np.flatnonzero(counts)
    if not len(docs):
        return out
    per_block = max(1, _NUMPY_BLOCK_ELEMENTS // len(a))
    # Blocks of whole texts, so that each text's minimum is one reduceat over its rows.
    cut = 0
    while cut < len(docs):
        start = sh.offsets[docs[cut]]
        last = int(np.searchsorted(sh.offsets[docs + 1], start + per_block, side="right"))
        last = max(last, cut + 1)
        block_docs = docs[cut:last]
        lo, hi = sh.offsets[block_docs[0]], sh.offsets[block_docs[-1] + 1]
        h = sh.hashes[lo:hi]
        with np.errstate(over="ignore"):
            v = h[:, None] * a + b
        if mode == "datajuicer":
            v = (v & _U64_P) + (v >> np.uint64(61))
            v = np.where(v >= _U64_P, v - _U64_P, v) & np.uint64(MAX_HASH)
        else:
            v = v >> np.uint64(32)
        out[block_docs] = np.minimum.reduceat(v, sh.offsets[block_docs] - lo, axis=0).astype(np.uint32)
        cut = last
    return out


@functools.cache
def _numba_kernels():  # -> tuple of two numba functions, or None when numba is not installed
    try:
        from ops_library.numba_loader import numba
    except ImportError:
        return None

    # Both take a text's shingle hashes four at a time: one pass over the permutations then folds in all four,
    # loading a, b and the running minima once per four (as the one-pass kernel below does). The fold is written
    # out in each kernel: a jitted helper they both call made numba miss its on-disk cache in every new process.
    @numba.njit(parallel=True, cache=True, nogil=True)
    def fast_kernel(hashes, offsets, a, b, out):  # pragma: no cover - compiled
        s32 = np.uint64(32)
        for d in numba.prange(len(offsets) - 1):
            row = out[d]
            i, end = offsets[d], offsets[d + 1]
            while i + 4 <= end:
                h0, h1, h2, h3 = hashes[i], hashes[i + 1], hashes[i + 2], hashes[i + 3]
                for k in range(len(a)):
                    ak, bk = a[k], b[k]
                    v = min(np.uint32((ak * h0 + bk) >> s32), np.uint32((ak * h1 + bk) >> s32))
                    v = min(v, np.uint32((ak * h2 + bk) >> s32))
                    v = min(v, np.uint32((ak * h3 + bk) >> s32))
                    row[k] = min(row[k], v)
                i += 4
            while i < end:
                x = hashes[i]
                for k in range(len(a)):
                    row[k] = min(row[k], np.uint32((a[k] * x + b[k]) >> s32))
                i += 1

    @numba.njit(parallel=True, cache=True, nogil=True)
    def dj_kernel(hashes, offsets, a, b, out):  # pragma: no cover - compiled
        p = np.uint64(MERSENNE_PRIME)
        s61 = np.uint64(61)
        mask = np.uint64(MAX_HASH)
        for d in numba.prange(len(offsets) - 1):
            row = out[d]
            i, end = offsets[d], offsets[d + 1]
            while i < end:
                take = min(4, end - i)  # the last fewer than four repeat their first: a minimum is unchanged
                h0 = hashes[i]
                h1 = hashes[i + 1] if take > 1 else h0
                h2 = hashes[i + 2] if take > 2 else h0
                h3 = hashes[i + 3] if take > 3 else h0
                for k in range(len(a)):
                    ak, bk = a[k], b[k]
                    v0, v1, v2, v3 = ak * h0 + bk, ak * h1 + bk, ak * h2 + bk, ak * h3 + bk
                    v0, v1 = (v0 & p) + (v0 >> s61), (v1 & p) + (v1 >> s61)
                    v2, v3 = (v2 & p) + (v2 >> s61), (v3 & p) + (v3 >> s61)
                    v0 = v0 - p if v0 >= p else v0
                    v1 = v1 - p if v1 >= p else v1
                    v2 = v2 - p if v2 >= p else v2
                    v3 = v3 - p if v3 >= p else v3
                    w = min(np.uint32(v0 & mask), np.uint32(v1 & mask))
                    w = min(w, np.uint32(v2 & mask))
                    w = min(w, np.uint32(v3 & mask))
                    row[k] = min(row[k], w)
                i += take

    return fast_kernel, dj_kernel


def signatures_of_bytes(
    data: np.ndarray,
    offsets: np.ndarray,
    split: tuple[int, bool] | None,
    window: int,
    num_perm: int,
    mode: HashMode,
    *,
    out: np.ndarray,
    band_rows: int = 0,
    threads: int = 1,
) -> int:
    """The `fast` or `oph` hash mode's uint32 (texts, num_perm) signatures straight from the texts' bytes, into
    `out`; returns the shingle count. `split` is `shingles.byte_split`'s rule. The values of
    `fast_shingle_hashes` followed by `minhash_signatures`, in one pass of the C kernel (`csrc/minhash_bytes.c`)
    that keeps no token or shingle arrays, over chunks of about equal bytes on `threads` threads; raises where
    that kernel cannot run (not built, another mode or split: `fused_kernel_available`).

    With `band_rows` > 0, `out` is uint64 (texts, bands) and receives `band_keys(signatures, bands, band_rows)`
    instead: the kernel folds each text's bands as it finishes the text and writes no signature."""
    lib = native_kernels.library()
    if lib is None or mode not in ("fast", "oph") or split is None:
        raise ValueError(
            f"no one-pass kernel for hash mode {mode!r} with split {split!r} (C kernels built: {lib is not None})"
        )
    n_docs = len(offsets) - 1
    if band_rows:
        bands = out.shape[1] if out.ndim == 2 else 0
        if bands * band_rows > num_perm:
            raise ValueError(f"{bands} bands x {band_rows} rows need {bands * band_rows} permutations, have {num_perm}")
        if out.shape != (n_docs, bands) or out.dtype != np.uint64:
            raise ValueError(f"out must be a uint64 array of shape ({n_docs}, bands) for band keys")
        signatures, keys = None, native_kernels.address(out)
    else:
        if out.shape != (n_docs, num_perm) or out.dtype != np.uint32:
            raise ValueError(f"out must be a uint32 array of shape ({n_docs}, {num_perm})")
        signatures, keys, bands = native_kernels.address(out), None, 0
    a, b = permutations("fast", num_perm)
    shingles = np.zeros(n_docs, dtype=np.int64)
    data = np.ascontiguousarray(data, dtype=np.uint8)
    starts = np.ascontiguousarray(offsets, dtype=np.int64)
    sep, keep_empty, oph = int(split[0]), int(split[1]), int(mode == "oph")
    p_data, p_starts, p_a, p_b, p_shingles = native_kernels.addresses(data, starts, a, b, shingles)

    def chunk(first: int, last: int) -> int:
        return lib.sluice_minhash_bytes(
            p_data, p_starts, first, last, sep, keep_empty, window, oph, p_a, p_b,
            num_perm, signatures, p_shingles, band_rows, bands, keys,
        )  # fmt: skip

    # a few chunks per thread: texts differ in length, and a thread that finishes early takes the next chunk
    native_kernels.run_chunks(chunk, native_kernels.byte_chunks(starts, 4 * threads if threads > 1 else 1), threads)
    return int(shingles.sum())


def fused_kernel_available() -> bool:
    return native_kernels.available()


# --- one permutation hashing (`oph`) ---------------------------------------------------------------------------


def oph_bins(hashes: np.ndarray, num_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """(bin, value) of each uint64 shingle hash: bin `((x >> 32) * K) >> 32`, value the low 32 bits."""
    bins = ((hashes >> np.uint64(32)) * np.uint64(num_bins)) >> np.uint64(32)
    return bins.astype(np.int64), (hashes & np.uint64(MAX_HASH)).astype(np.uint32)


def oph_probe(bins: np.ndarray, attempt: int, num_bins: int) -> np.ndarray:
    """The bin an empty bin looks at on its `attempt`-th probe (1, 2, ...), the same for every text."""
    with np.errstate(over="ignore"):
        c = bins.astype(np.uint64) * _PROBE_BIN + np.uint64(attempt) * _PROBE_ATTEMPT
        c ^= c >> np.uint64(33)
        c *= _FMIX_C1
        c ^= c >> np.uint64(33)
        c *= _FMIX_C2
        c ^= c >> np.uint64(33)
    return (((c >> np.uint64(32)) * np.uint64(num_bins)) >> np.uint64(32)).astype(np.int64)


def _densify_numpy(mins: np.ndarray, filled: np.ndarray) -> np.ndarray:
    """uint32 signatures from int64 bin minima: each empty bin of a text with any filled bin takes the value of
    the first filled bin of its probe sequence; a text with no shingle keeps all MAX_HASH."""
    out = np.where(filled, mins, MAX_HASH).astype(np.uint32)
    docs, bins = np.nonzero(~filled & filled.any(axis=1)[:, None])
    attempt = 1
    while len(docs):
        source = oph_probe(bins, attempt, mins.shape[1])
        hit = filled[docs, source]
        out[docs[hit], bins[hit]] = mins[docs[hit], source[hit]]
        docs, bins = docs[~hit], bins[~hit]
        attempt += 1
    return out


def _oph_minima_numpy(sh: ShingleHashes, num_bins: int) -> np.ndarray:
    """int64 (texts, num_bins): each bin's smallest value, _UNFILLED where no shingle reached it."""
    mins = np.full(sh.num_docs * num_bins, _UNFILLED, dtype=np.int64)
    if len(sh.hashes):
        bins, values = oph_bins(sh.hashes, num_bins)
        doc = np.repeat(np.arange(sh.num_docs, dtype=np.int64), np.diff(sh.offsets))
        np.minimum.at(mins, doc * num_bins + bins, values.astype(np.int64))
    return mins.reshape(sh.num_docs, num_bins)


@functools.cache
def _numba_oph():  # -> (minima, densify) numba functions, or None without numba
    try:
        from ops_library.numba_loader import numba
    except ImportError:
        return None

    @numba.njit(parallel=True, cache=True, nogil=True)
    def oph_minima(hashes, offsets, mins):  # pragma: no cover - compiled
        # `_oph_minima_numpy` per text: mins (texts, bins) int64, _UNFILLED where no shingle reached a bin
        s32 = np.uint64(32)
        n_bins = np.uint64(mins.shape[1])
        for d in numba.prange(len(offsets) - 1):
            row = mins[d]
            row[:] = _UNFILLED
            for i in range(offsets[d], offsets[d + 1]):
                x = hashes[i]
                j = ((x >> s32) * n_bins) >> s32
                row[j] = min(row[j], np.int64(x & np.uint64(MAX_HASH)))

    @numba.njit(parallel=True, cache=True, nogil=True)
    def oph_densify(mins, out):  # pragma: no cover - compiled
        # `_densify_numpy` per text, its probes (`oph_probe`) written out as in the one-pass kernel (a jitted
        # helper that two kernels call made numba miss its on-disk cache in every new process): a text with few
        # shingles needs ~bins/filled probes per empty bin, which numpy's rounds take seconds for.
        s32 = np.uint64(32)
        s33 = np.uint64(33)
        n_bins = np.uint64(mins.shape[1])
        for d in numba.prange(mins.shape[0]):
            row = mins[d]
            if row.min() == _UNFILLED:
                out[d, :] = np.uint32(MAX_HASH)
                continue
            for j in range(mins.shape[1]):
                attempt = np.uint64(1)
                source = np.uint64(j)
                while row[source] == _UNFILLED:
                    c = np.uint64(j) * _PROBE_BIN + attempt * _PROBE_ATTEMPT
                    c ^= c >> s33
                    c *= _FMIX_C1
                    c ^= c >> s33
                    c *= _FMIX_C2
                    c ^= c >> s33
                    source = ((c >> s32) * n_bins) >> s32
                    attempt += np.uint64(1)
                out[d, j] = np.uint32(row[source])

    return oph_minima, oph_densify


def numba_available() -> bool:
    return _numba_kernels() is not None


@contextlib.contextmanager
def numba_threads(threads: int | None) -> Iterator[int | None]:
    """Run the numba kernels inside on at most `threads` threads (None: numba's default, every core); yields
    the count they run on (None without numba). The hashes stage passes the CPUs its step was granted, so an
    op uses those, no more."""
    if not numba_available():
        yield None
        return
    from ops_library.numba_loader import numba

    if threads is None:
        yield numba.get_num_threads()
        return
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(threads), numba.config.NUMBA_NUM_THREADS)))
    try:
        yield numba.get_num_threads()
    finally:
        numba.set_num_threads(previous)


# --- GPU (torch) -----------------------------------------------------------------------------------------------


def _torch_minhash(sh: ShingleHashes, a: np.ndarray, b: np.ndarray, mode: HashMode, device: str) -> np.ndarray:
    """The same values with torch int64 tensors: the uint64 arithmetic wraps identically in two's complement;
    shifts are masked back to logical shifts."""
    import torch

    n_docs, k = sh.num_docs, len(a)
    out = torch.full((n_docs, k), MAX_HASH, dtype=torch.int64, device=device)
    if len(sh.hashes):
        ta = torch.from_numpy(a.view(np.int64)).to(device)
        tb = torch.from_numpy(b.view(np.int64)).to(device)
        hashes = torch.from_numpy(sh.hashes.view(np.int64)).to(device)
        doc = torch.from_numpy(np.repeat(np.arange(n_docs), np.diff(sh.offsets))).to(device)
        per_block = max(1, _TORCH_BLOCK_ELEMENTS // k)
        for lo in range(0, len(sh.hashes), per_block):
            x = hashes[lo : lo + per_block, None]
            v = x * ta + tb
            if mode == "datajuicer":
                v = (v & MERSENNE_PRIME) + ((v >> 61) & 7)
                v = torch.where(v >= MERSENNE_PRIME, v - MERSENNE_PRIME, v) & MAX_HASH
            else:
                v = (v >> 32) & MAX_HASH
            index = doc[lo : lo + per_block, None].expand(-1, k)
            out.scatter_reduce_(0, index, v, reduce="amin", include_self=True)
    return out.cpu().numpy().astype(np.uint32)


def _torch_oph_minima(sh: ShingleHashes, num_bins: int, device: str) -> np.ndarray:
    """`_oph_minima_numpy` with torch: one scatter of each shingle's value into its text's bin."""
    import torch

    mins = torch.full((sh.num_docs * num_bins,), _UNFILLED, dtype=torch.int64, device=device)
    if len(sh.hashes):
        bins, values = oph_bins(sh.hashes, num_bins)
        doc = np.repeat(np.arange(sh.num_docs, dtype=np.int64), np.diff(sh.offsets))
        index = torch.from_numpy(doc * num_bins + bins).to(device)
        mins.scatter_reduce_(0, index, torch.from_numpy(values.astype(np.int64)).to(device), reduce="amin")
    return mins.reshape(sh.num_docs, num_bins).cpu().numpy()


def _oph_signatures(sh: ShingleHashes, num_bins: int, device: str, backend: str | None) -> np.ndarray:
    """Bin minima on the device or backend asked for, densified by numba where it is installed (the numpy rounds
    take seconds where many texts have only a few shingles), else by numpy."""
    kernels = _numba_oph() if backend != "numpy" else None
    if backend == "numba" and kernels is None:
        raise RuntimeError("the numba backend was asked for, but numba is not installed")
    if backend == "torch" or device.startswith("cuda"):
        mins = _torch_oph_minima(sh, num_bins, device)
    elif kernels is None:
        mins = _oph_minima_numpy(sh, num_bins)
    else:
        mins = np.empty((sh.num_docs, num_bins), dtype=np.int64)
        kernels[0](sh.hashes, sh.offsets, mins)
    if kernels is None:
        return _densify_numpy(mins, mins != _UNFILLED)
    out = np.empty((sh.num_docs, num_bins), dtype=np.uint32)
    kernels[1](mins, out)
    return out


def minhash_signatures(
    sh: ShingleHashes, mode: HashMode, num_perm: int, *, device: str = "cpu", backend: str | None = None
) -> np.ndarray:
    """uint32 (texts, num_perm): the minimum of each permutation over each text's shingle hashes (with `oph`,
    of each bin, densified).

    `device` "cuda[:i]" runs on that GPU with torch; on the CPU the numba kernel runs (parallel over texts), else
    numpy. `backend` ("numba", "numpy", "torch") forces one, for tests and benchmarks.
    """
    if mode == "oph":
        return _oph_signatures(sh, num_perm, device, backend)
    a, b = permutations(mode, num_perm)
    if backend == "torch" or device.startswith("cuda"):
        return _torch_minhash(sh, a, b, mode, device)
    kernels = _numba_kernels() if backend in (None, "numba") else None
    if backend == "numba" and kernels is None:
        raise RuntimeError("the numba backend was asked for, but numba is not installed")
    if kernels is None:
        return _numpy_minhash(sh, a, b, mode)
    out = np.full((sh.num_docs, num_perm), _U32_MAX, dtype=np.uint32)
    if len(sh.hashes):
        kernel = kernels[1] if mode == "datajuicer" else kernels[0]
        kernel(sh.hashes, sh.offsets, a, b, out)
    return out


# --- LSH -------------------------------------------------------------------------------------------------------


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """uint64 (texts, bands): band j's `rows` values folded into one key, sum_t v_t * M**(rows-1-t) mod 2**64.

    Data-Juicer compares a band's 32·rows bits exactly; here two different bands share a key only on a 64-bit
    collision of this polynomial (about 2**-64 per pair of bands).
    """
    if bands * rows > signatures.shape[1]:
        raise ValueError(f"{bands} bands x {rows} rows need {bands * rows} permutations, have {signatures.shape[1]}")
    powers = [np.uint64(1)]
    with np.errstate(over="ignore"):
        for _ in range(rows - 1):
            powers.append(powers[-1] * _BAND_MULTIPLIER)
        weights = np.array(powers[::-1], dtype=np.uint64)
        values = signatures[:, : bands * rows].astype(np.uint64).reshape(-1, rows)
        return (values @ weights).reshape(len(signatures), bands)
