"""document_minhash_deduplicator: MinHash-LSH near-duplicate removal across all partitions."""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import polars as pl
from pydantic import Field, PositiveInt, model_validator

from ops_library.base import Deduplicator, OpOutput, OpParams, ResourceNeeds
from ops_library.clusters import BandIndex, first_rows
from ops_library.columns import CLUSTER_ID, DUPLICATE_OF, HASH, ROW_ID
from ops_library.minhash import (
    HashMode,
    band_keys,
    fused_kernel_available,
    minhash_signatures,
    numba_available,
    numba_threads,
    optimal_param,
    signatures_of_bytes,
)
from ops_library.registry import register
from ops_library.shingles import (
    ShingleHashes,
    ShingleText,
    Tokens,
    byte_split,
    exact_shingles,
    fast_shingle_hashes,
    sha1_shingle_hashes,
    shingle_text_parts,
    tokenize,
)


def sha1_hash32(data: bytes) -> int:
    """Data-Juicer's (and datasketch's) base hash: the first 4 bytes of SHA-1, little-endian."""
    return int.from_bytes(hashlib.sha1(data).digest()[:4], "little")


def datajuicer_shingle_hashes(tokens: Tokens, window: int, tokenization: str) -> ShingleHashes:
    """sha1_hash32 of each shingle of each text: numba's SHA-1 over the token spans (`sha1_shingle_hashes`), else
    a Python loop over each text's distinct shingles with hashlib."""
    compiled = sha1_shingle_hashes(tokens, window, tokenization)
    if compiled is not None:
        return compiled
    hashes: list[int] = []
    offsets = [0]
    for shingles in exact_shingles(tokens, window, tokenization):
        hashes.extend(sha1_hash32(s) for s in set(shingles))
        offsets.append(len(hashes))
    return ShingleHashes(np.array(hashes, dtype=np.uint64), np.array(offsets, dtype=np.int64))


def usable_device(device: str) -> tuple[str, str]:
    """(device, why not the one asked for): a CUDA device torch cannot reach becomes the CPU."""
    if not device.startswith("cuda"):
        return "cpu", ""
    try:
        import torch
    except ImportError:
        return "cpu", f"{device} asked for, but torch is not installed"
    if not torch.cuda.is_available():
        return "cpu", f"{device} asked for, but torch {torch.__version__} has no usable CUDA"
    return device, ""


@register("document_minhash_deduplicator")
class DocumentMinhashDeduplicator(Deduplicator):
    """Keeps the first row of every cluster of near-duplicates (MinHash-LSH over word shingles; rows that share
    a band bucket are linked, clusters are the linked components), across all partitions. Data-Juicer's op of
    the same name, with its params and defaults.

    `hash_mode: datajuicer` computes Data-Juicer's signatures bit for bit (SHA-1 base hashes, its permutations),
    so the kept set is Data-Juicer's; `fast` (default) hashes shingles in bulk (FNV-1a + fmix64, rensa-core's
    permutations) and differs only where the hashes do; `oph` puts the same shingle hashes into the bins of one
    permutation (densified: `minhash.py`), one hash per shingle instead of one per permutation, with the same
    expected agreement. Signatures run on a CUDA device when given one (torch), else on the CPU (numba, or
    numpy), with identical values. Removed rows carry the row they duplicate (the kept
    first row of their cluster) and the cluster id. `sentencepiece` tokenization needs a model file: refused.
    """

    class Params(OpParams):
        tokenization: Literal["space", "punctuation", "character", "sentencepiece"] = Field(
            "space", description="Tokens: split on spaces, on each punctuation character, or single characters."
        )
        window_size: PositiveInt = Field(5, description="Tokens per shingle.")
        lowercase: bool = Field(True, description="Lower-case the text before shingling.")
        ignore_pattern: str | None = Field(None, description="Regex whose matches are removed before shingling.")
        num_permutations: PositiveInt = Field(256, description="MinHash permutations (signature length).")
        jaccard_threshold: float = Field(
            0.7, ge=0, le=1, description="Jaccard similarity at which two texts count as duplicates (sets b, r)."
        )
        num_bands: PositiveInt | None = Field(
            None, description="LSH bands; with num_rows_per_band unset both come from Data-Juicer's optimal_param."
        )
        num_rows_per_band: PositiveInt | None = Field(None, description="Signature values per LSH band.")
        tokenizer_model: str | None = Field(None, description="sentencepiece model path (sentencepiece is refused).")
        hash_mode: Literal["fast", "oph", "datajuicer"] = Field(
            "fast",
            description="fast: bulk shingle hashing, one hash per shingle and permutation; oph: one permutation "
            "hashing (one hash per shingle, densified bins); datajuicer: Data-Juicer's exact SHA-1 signatures.",
        )

        @model_validator(mode="after")
        def _bands_fit(self) -> DocumentMinhashDeduplicator.Params:
            b, r = self.num_bands, self.num_rows_per_band
            if b is not None and r is not None and b * r > self.num_permutations:
                raise ValueError(
                    f"num_bands x num_rows_per_band = {b * r} exceeds num_permutations {self.num_permutations}"
                )
            return self

    needs = ResourceNeeds(cpus=1, gpus=0.25, memory_gb=1.0, batch_size=100_000, accelerator="cuda")
    accepts_placement = True
    row_wise_hashes = True  # its `hashes` (placed on a device) gives each row's band keys from its own text

    def __init__(self, params: OpParams | dict[str, Any] | None = None, *, text_key: str = "text"):
        super().__init__(params, text_key=text_key)
        p = self.params
        if p.num_bands is None or p.num_rows_per_band is None:
            self.bands, self.rows_per_band = optimal_param(p.jaccard_threshold, p.num_permutations)
        else:
            self.bands, self.rows_per_band = p.num_bands, p.num_rows_per_band
        self.last_run_info: dict[str, Any] = {}

    @classmethod
    def unavailable(cls, params: OpParams) -> str | None:
        if getattr(params, "tokenization", None) == "sentencepiece":
            return "tokenization 'sentencepiece' needs a sentencepiece model file, which Sluice does not load"
        return None

    @property
    def hash_mode(self) -> HashMode:
        return self.params.hash_mode

    # --- signatures ---------------------------------------------------------------------------------------------

    def _text(self, texts: pl.Series, parts: int = 1) -> list[ShingleText]:
        """The normalized texts as `parts` byte buffers of consecutive rows (`shingles.shingle_text_parts`)."""
        p = self.params
        why = self.unavailable(p)
        if why:
            raise ValueError(f"{self.name}: {why}")
        return shingle_text_parts(
            texts, tokenization=p.tokenization, lowercase=p.lowercase, ignore_pattern=p.ignore_pattern, parts=parts
        )

    def _one_pass(self, device: str, backend: str | None) -> bool:
        """Whether signatures take the one-pass C kernel: the `fast` and `oph` modes with `space` or `punctuation`
        tokens, on the CPU with the kernels built, no backend forced."""
        p = self.params
        byte_tokens = p.tokenization in ("space", "punctuation")
        cpu_default = device == "cpu" and backend is None
        return p.hash_mode != "datajuicer" and byte_tokens and cpu_default and fused_kernel_available()

    def _shingle_hashes_of(self, text: ShingleText) -> ShingleHashes:
        p = self.params
        tokens = tokenize(text.data, text.offsets, p.tokenization, text.marker)
        if p.hash_mode == "datajuicer":
            return datajuicer_shingle_hashes(tokens, p.window_size, p.tokenization)
        return fast_shingle_hashes(tokens, p.window_size)

    def shingle_hashes(self, texts: pl.Series) -> ShingleHashes:
        return self._shingle_hashes_of(self._text(texts)[0])

    def _one_pass_parts(self, parts: list[ShingleText], out: np.ndarray, band_rows: int = 0, threads: int = 1) -> int:
        """The one-pass kernel over each part into its rows of `out` on `threads` threads: signatures, or with
        `band_rows` the LSH band keys (`signatures_of_bytes`); returns the shingle count."""
        p = self.params
        split = byte_split(p.tokenization, parts[0].marker)  # every part has the same marker
        start, shingles = 0, 0
        for text in parts:
            rows = out[start : start + len(text.offsets) - 1]
            shingles += signatures_of_bytes(
                text.data,
                text.offsets,
                split,
                p.window_size,
                p.num_permutations,
                p.hash_mode,
                out=rows,
                band_rows=band_rows,
                threads=threads,
            )
            start += len(rows)
        return shingles

    def _signatures_of(self, parts: list[ShingleText], device: str, backend: str | None) -> tuple[np.ndarray, int, str]:
        """(signatures, shingle count, how they were computed). On the CPU, the `fast` and `oph` modes' space
        and punctuation splits take the one-pass C kernel (the same values, no token or shingle arrays), one call
        per part; `backend` ("numba", "numpy", "torch") forces the two-stage path on that backend, which takes
        one part."""
        p = self.params
        if self._one_pass(device, backend):
            out = np.empty((sum(len(t.offsets) - 1 for t in parts), p.num_permutations), dtype=np.uint32)
            return out, self._one_pass_parts(parts, out), "native"
        (text,) = parts
        hashes = self._shingle_hashes_of(text)
        sig = minhash_signatures(hashes, p.hash_mode, p.num_permutations, device=device, backend=backend)
        how = backend or ("torch" if device != "cpu" else ("numba" if numba_available() else "numpy"))
        return sig, len(hashes.hashes), how

    def signatures(self, texts: pl.Series, *, device: str = "cpu", backend: str | None = None) -> np.ndarray:
        """uint32 (rows, num_permutations) MinHash signatures of `texts`."""
        return self._signatures_of(self._text(texts), device, backend)[0]

    def hashes(
        self, df: pl.DataFrame, *, device: str = "cpu", threads: int | None = None, **_placement: Any
    ) -> pl.DataFrame:
        """ROW_ID and HASH = the LSH band keys, Array(UInt64, num_bands), per row. `threads`: CPU threads of the
        kernels (default: `needs.cpus`; the hashes stage passes its step's CPUs)."""
        t0 = time.perf_counter()
        run_on, why = usable_device(device)
        threads = threads or max(1, int(self.needs.cpus))
        one_pass = self._one_pass(run_on, None)
        # the C kernel runs on the threads asked for (at most the CPUs); the two-stage path on numba's
        kernels = contextlib.nullcontext(min(threads, os.cpu_count() or 1)) if one_pass else numba_threads(threads)
        with kernels as kernel_threads:
            t_text = time.perf_counter()
            # the C kernel takes the texts in parts, one per thread, normalized side by side (polars' lower-casing
            # runs on one core per call)
            texts = self._text(df[self.text_key], kernel_threads if one_pass else 1)
            t_sig = time.perf_counter()
            if one_pass:  # the kernel folds the bands itself: no signature array
                keys = np.empty((df.height, self.bands), dtype=np.uint64)
                shingles, how = self._one_pass_parts(texts, keys, self.rows_per_band, kernel_threads), "native"
            else:
                sig, shingles, how = self._signatures_of(texts, run_on, None)
                keys = band_keys(sig, self.bands, self.rows_per_band)
            t_end = time.perf_counter()
        self.last_run_info = {
            "device": run_on,
            "device_requested": device,
            **({"device_fallback": why} if why else {}),
            "hash_mode": self.hash_mode,
            "backend": how,
            "threads": threads,
            "kernel_threads": kernel_threads,
            "bands": self.bands,
            "rows_per_band": self.rows_per_band,
            "shingles": shingles,
            "normalize_seconds": round(t_sig - t_text, 4),
            "signature_seconds": round(t_end - t_sig, 4),
            "docs_per_s": round(df.height / (time.perf_counter() - t0), 1) if df.height else 0.0,
        }
        return pl.DataFrame({ROW_ID: df[ROW_ID], HASH: pl.Series(HASH, keys, dtype=pl.Array(pl.UInt64, self.bands))})

    def hash_column(self, df: pl.DataFrame, threads: int | None = None) -> pl.Series:
        return self.hashes(df, threads=threads)[HASH]

    # --- index --------------------------------------------------------------------------------------------------

    def index_state(self, hashes_in_order: Sequence[pl.DataFrame]) -> BandIndex:
        """The LSH index over the hash frames, in input order (keeps what `index_incremental` needs)."""
        return BandIndex(self.bands).add(hashes_in_order)

    def index_incremental(self, previous: BandIndex | None, new_hashes: Sequence[pl.DataFrame]) -> BandIndex:
        """`previous` with the rows of later partitions added; only the new rows are bucketed. The result's
        `index_frame()` equals `index()` over all frames at once; `changed_since(previous)` names the old rows
        whose fate changed (only when a new row links two earlier clusters)."""
        return (previous or BandIndex(self.bands)).add(new_hashes)

    def index(self, hashes_in_order: Sequence[pl.DataFrame]) -> pl.DataFrame:
        """ROW_ID, DUPLICATE_OF (the first row of its cluster), CLUSTER_ID for every removed row."""
        return self.index_state(hashes_in_order).index_frame()

    def index_stats(
        self, index: pl.DataFrame, total_rows: int | None = None, index_bytes: int | None = None
    ) -> dict[str, Any]:
        """The base stats plus the hash mode and LSH shape the index was built with."""
        lsh = {"hash_mode": self.hash_mode, "bands": self.bands, "rows_per_band": self.rows_per_band}
        return {**super().index_stats(index, total_rows, index_bytes), **lsh}

    def duplicate_reason(self, provenance: Sequence[str]) -> pl.Expr:
        if CLUSTER_ID not in provenance:
            return pl.format("near-duplicate of {}", pl.col(DUPLICATE_OF))
        return pl.format("near-duplicate of {} (minhash cluster {})", pl.col(DUPLICATE_OF), pl.col(CLUSTER_ID))

    def load_kernels(self) -> None:
        """Load the compiled kernels a run over many texts takes, once per process: the C kernels (a millisecond),
        or where they are not built numba's import and on-disk cache; the signatures' and the index's, which a
        run over few rows does without."""
        self.signatures(pl.Series(["a b c d e f g"]))
        first_rows(np.zeros((1, self.bands), dtype=np.uint64), kernel=True)

    def run(self, df: pl.DataFrame, *, device: str = "cpu", threads: int | None = None, **placement: Any) -> OpOutput:
        return self.apply(df, self.index([self.hashes(df, device=device, threads=threads, **placement)]))
