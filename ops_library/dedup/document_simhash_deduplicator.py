"""document_simhash_deduplicator: 64-bit SimHash near-duplicate removal across all partitions."""

from __future__ import annotations

import functools
import hashlib
import itertools
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field, PositiveInt, model_validator

from ops_library.base import Deduplicator, OpParams
from ops_library.clusters import index_frame, union
from ops_library.columns import CLUSTER_ID, DUPLICATE_OF, HASH, ROW_ID
from ops_library.minhash import numba_threads
from ops_library.registry import register
from ops_library.shingles import ShingleHashes, exact_shingles, fast_shingle_hashes, shingle_tokens

_BITS = 64
# Shingles per block of the bit count: (block x 64) int32 counts stay near 32 MB.
_BLOCK_SHINGLES = 1 << 17


def md5_hash64(data: bytes) -> int:
    """simhash-pybind's `unsigned_hash`: the first 8 bytes of MD5, big-endian."""
    return int.from_bytes(hashlib.md5(data).digest()[:8], "big")


@functools.cache
def _numba_simhash():  # -> the compiled kernel, or None without numba
    try:
        from ops_library.numba_loader import numba
    except ImportError:
        return None

    @numba.njit(parallel=True, cache=True, nogil=True)
    def kernel(hashes, offsets, out):  # pragma: no cover - compiled
        one = np.uint64(1)
        for d in numba.prange(len(offsets) - 1):
            counts = np.zeros(_BITS, dtype=np.int64)
            for i in range(offsets[d], offsets[d + 1]):
                x = hashes[i]
                for b in range(_BITS):
                    counts[b] += (x >> np.uint64(b)) & one
            n = offsets[d + 1] - offsets[d]
            result = np.uint64(0)
            for b in range(_BITS):
                if 2 * counts[b] > n:
                    result |= one << np.uint64(b)
            out[d] = result

    return kernel


def simhash64(sh: ShingleHashes, *, backend: str | None = None) -> np.ndarray:
    """seomoz simhash's `compute` per text: bit i is set when more than half of the shingle hashes have it
    (each hash counts once per occurrence); a text without shingles gets 0. A numba loop (parallel over texts),
    else (or with `backend="numpy"`) numpy bit counts in blocks of texts."""
    out = np.zeros(sh.num_docs, dtype=np.uint64)
    kernel = _numba_simhash() if backend != "numpy" else None
    if kernel is not None:
        kernel(sh.hashes, sh.offsets.astype(np.int64), out)
        return out
    counts = np.diff(sh.offsets)
    docs = np.flatnonzero(counts)
    weights = np.left_shift(np.uint64(1), np.arange(_BITS, dtype=np.uint64))
    cut = 0
    while cut < len(docs):
        start = sh.offsets[docs[cut]]
        last = max(int(np.searchsorted(sh.offsets[docs + 1], start + _BLOCK_SHINGLES, side="right")), cut + 1)
        block = docs[cut:last]
        lo, hi = sh.offsets[block[0]], sh.offsets[block[-1] + 1]
        bits = np.unpackbits(sh.hashes[lo:hi].view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")
        ones = np.add.reduceat(bits.astype(np.int32), sh.offsets[block] - lo, axis=0)
        majority = 2 * ones > counts[block][:, None]
        out[block] = (majority.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)
        cut = last
    return out


def block_masks(num_blocks: int) -> list[int]:
    """64 bits cut into `num_blocks` contiguous blocks of near-equal width."""
    edges = [round(i * _BITS / num_blocks) for i in range(num_blocks + 1)]
    return [((1 << (hi - lo)) - 1) << lo for lo, hi in itertools.pairwise(edges)]


def near_pairs(values: np.ndarray, num_blocks: int, max_distance: int) -> pl.DataFrame:
    """Every pair of distinct values (a < b) within `max_distance` differing bits, as simhash's `find_all` finds
    them: two such values agree on at least `num_blocks - max_distance` whole blocks, so joining on each choice
    of that many blocks finds every pair (and each candidate's distance is checked)."""
    uniq = pl.DataFrame({"h": np.unique(values)})
    masks = block_masks(num_blocks)
    found = []
    for chosen in itertools.combinations(masks, num_blocks - max_distance):
        mask = sum(chosen)
        keyed = uniq.with_columns((pl.col("h") & pl.lit(mask, dtype=pl.UInt64)).alias("k"))
        pairs = (
            keyed.join(keyed, on="k", suffix="_b")
            .filter(pl.col("h") < pl.col("h_b"))
            .filter((pl.col("h") ^ pl.col("h_b")).bitwise_count_ones() <= max_distance)
            .select(a="h", b="h_b")
        )
        found.append(pairs)
    return pl.concat(found).unique() if found else pl.DataFrame(schema={"a": pl.UInt64, "b": pl.UInt64})


@register("document_simhash_deduplicator")
class DocumentSimhashDeduplicator(Deduplicator):
    """Keeps the first row of every cluster of rows whose 64-bit SimHashes (over word shingles) differ in at
    most `hamming_distance` bits, clusters being the linked components, across all partitions. Data-Juicer's op
    of the same name, with its params and defaults.

    `hash_mode: datajuicer` hashes each shingle as simhash-pybind does (MD5's first 8 bytes), so the SimHashes
    and the kept set are Data-Juicer's; `fast` (default) hashes shingles in bulk (FNV-1a + fmix64). Pairs come
    from the block-permutation method (exact: every pair within the distance is found).
    """

    class Params(OpParams):
        tokenization: Literal["space", "punctuation", "character"] = Field(
            "space", description="Tokens: split on spaces, on each punctuation character, or single characters."
        )
        window_size: PositiveInt = Field(6, description="Tokens per shingle.")
        lowercase: bool = Field(True, description="Lower-case the text before shingling.")
        ignore_pattern: str | None = Field(None, description="Regex whose matches are removed before shingling.")
        num_blocks: PositiveInt = Field(6, le=_BITS, description="Blocks the 64 bits are cut into to find pairs.")
        hamming_distance: PositiveInt = Field(
            4, description="Most differing bits of two duplicates' SimHashes; must be below num_blocks."
        )
        hash_mode: Literal["fast", "datajuicer"] = Field(
            "fast", description="fast: bulk shingle hashing; datajuicer: simhash-pybind's MD5 shingle hashes."
        )

        @model_validator(mode="after")
        def _distance_below_blocks(self) -> DocumentSimhashDeduplicator.Params:
            if self.hamming_distance >= self.num_blocks:
                raise ValueError(
                    f"hamming_distance ({self.hamming_distance}) must be less than num_blocks ({self.num_blocks})"
                )
            return self

    def simhashes(self, texts: pl.Series) -> np.ndarray:
        """uint64 SimHash of each text."""
        p = self.params
        tokens, _ = shingle_tokens(
            texts, tokenization=p.tokenization, lowercase=p.lowercase, ignore_pattern=p.ignore_pattern
        )
        if p.hash_mode == "fast":
            return simhash64(fast_shingle_hashes(tokens, p.window_size))
        # One hashlib call per shingle: MD5 has no bulk form.
        hashes: list[int] = []
        offsets = [0]
        for shingles in exact_shingles(tokens, p.window_size, p.tokenization):
            hashes.extend(md5_hash64(s) for s in shingles)
            offsets.append(len(hashes))
        return simhash64(ShingleHashes(np.array(hashes, dtype=np.uint64), np.array(offsets, dtype=np.int64)))

    def hash_column(self, df: pl.DataFrame, threads: int | None = None) -> pl.Series:
        with numba_threads(threads or max(1, int(self.needs.cpus))):
            return pl.Series(HASH, self.simhashes(df[self.text_key]), dtype=pl.UInt64)

    def index(self, hashes_in_order: Sequence[pl.DataFrame]) -> pl.DataFrame:
        """ROW_ID, DUPLICATE_OF (the first row of its cluster), CLUSTER_ID for every removed row."""
        frames = [h.select(ROW_ID, HASH) for h in hashes_in_order if h.height]
        if not frames:
            return index_frame(pl.Series(ROW_ID, [], dtype=pl.String), np.zeros(0, np.int64))
        rows = pl.concat(frames, how="vertical").with_row_index("pos")
        # Rows with equal SimHashes link to the first of them; pairs of near values link their first rows.
        first = rows.group_by(HASH).agg(pl.col("pos").min().alias("rep"))
        with_rep = rows.join(first, on=HASH, how="left", maintain_order="left")
        roots = np.arange(rows.height, dtype=np.int64)
        roots = union(roots, with_rep["pos"].to_numpy().astype(np.int64), with_rep["rep"].to_numpy().astype(np.int64))
        pairs = near_pairs(rows[HASH].to_numpy(), self.params.num_blocks, self.params.hamming_distance)
        if pairs.height:
            linked = pairs.join(first, left_on="a", right_on=HASH).join(first, left_on="b", right_on=HASH)
            roots = union(
                roots, linked["rep"].to_numpy().astype(np.int64), linked["rep_right"].to_numpy().astype(np.int64)
            )
        return index_frame(rows[ROW_ID], roots)

    def index_stats(
        self, index: pl.DataFrame, total_rows: int | None = None, index_bytes: int | None = None
    ) -> dict[str, Any]:
        """The base stats plus the hash mode."""
        return {**super().index_stats(index, total_rows, index_bytes), "hash_mode": self.params.hash_mode}

    def duplicate_reason(self, provenance: Sequence[str]) -> pl.Expr:
        if CLUSTER_ID not in provenance:
            return pl.format("near-duplicate of {}", pl.col(DUPLICATE_OF))
        return pl.format("near-duplicate of {} (simhash cluster {})", pl.col(DUPLICATE_OF), pl.col(CLUSTER_ID))
