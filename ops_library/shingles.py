"""Word shingles of texts as Data-Juicer's MinHash and SimHash deduplicators build them, hashed in bulk.

Data-Juicer (`document_minhash_deduplicator.compute_hash`) lower-cases the text, removes `ignore_pattern`, splits
it into tokens and takes every run of `window_size` consecutive tokens, joined by a space, as one shingle:

- `space`: split on the space character only (`split_on_whitespace`: not on newlines or tabs), empty tokens
  dropped;
- `punctuation`: split on every `\\p{P}` character, empty tokens kept;
- `character`: every character is a token and shingles are joined without a separator.

A text with fewer tokens than the window has no shingle at all. Here the texts of a whole frame become one
UTF-8 byte buffer and the token boundaries, token hashes and shingle hashes are numpy arrays over all of them
(no Python loop per document), in two flavours:

- `fast_shingle_hashes`: FNV-1a-64 of each token's bytes, finalized with MurmurHash3's fmix64, and a
  position-weighted sum of the window's token hashes, finalized again. Two shingles get the same hash when
  their token sequences are equal, so it differs from hashing the joined bytes only when two different token
  sequences join to the same bytes (punctuation tokens that contain spaces) or on a 64-bit collision;
- `exact_shingles`: the shingles' exact bytes, for the Data-Juicer-compatible hash modes (SHA-1 or MD5 of each
  shingle), which need one hashlib call per shingle; `sha1_shingle_hashes` computes MinHash's SHA-1 base hash of
  the same bytes in one numba loop.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:
    import polars as pl

# polars and pyarrow are imported where texts become bytes: the byte-level functions (`tokenize`,
# `fast_shingle_hashes`, `exact_shingles`) need numpy only, so the GPU check script runs where only numpy and
# torch are installed.

Tokenization = Literal["space", "punctuation", "character", "sentencepiece"]

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)
_FMIX_C1 = np.uint64(0xFF51AFD7ED558CCD)
_FMIX_C2 = np.uint64(0xC4CEB9FE1A85EC53)
# Odd multiplier of the position-weighted window sum (the 64-bit golden ratio).
_WINDOW_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)
_SPACE = 0x20


def fmix64(x: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finalizer: every input bit reaches every output bit."""
    x = x ^ (x >> np.uint64(33))
    x = x * _FMIX_C1
    x = x ^ (x >> np.uint64(33))
    x = x * _FMIX_C2
    return x ^ (x >> np.uint64(33))


def normalized_texts(
    texts: pl.Series, *, lowercase: bool, ignore_pattern: str | None, punctuation_marker: str | None = None
) -> pl.Series:
    """The text Data-Juicer shingles: lower-cased (Python's `str.lower()`, final sigma included, as polars does
    it), `ignore_pattern` removed (Rust regex syntax, which agrees with the `regex` module on common patterns),
    and, for punctuation tokenization, every `\\p{P}` character replaced by `punctuation_marker`. Nulls become
    empty texts (no shingles)."""
    import polars as pl

    expr = pl.col("t").fill_null("")
    if lowercase:
        expr = expr.str.to_lowercase()
    if ignore_pattern:
        expr = expr.str.replace_all(ignore_pattern, "")
    if punctuation_marker is not None:
        expr = expr.str.replace_all(r"\p{P}", punctuation_marker, literal=False)
    return pl.DataFrame({"t": texts.cast(pl.String)}).select(expr).to_series()


def marker_absent_from(texts: pl.Series) -> str:
    """A control character that no text contains, to stand for the punctuation split points."""
    for code in (*range(1, 9), *range(14, 32)):
        marker = chr(code)
        if not texts.str.contains(marker, literal=True).any():
            return marker
    raise ValueError("every control character U+0001..U+001F occurs in the texts: cannot mark punctuation")


def utf8_buffer(texts: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(bytes, offsets): all texts as one uint8 array and the int64 start of each (n + 1 entries)."""
    import pyarrow as pa

    arr = texts.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if arr.type != pa.large_string():  # polars exports large strings already; a cast would import pyarrow.compute
        arr = arr.cast(pa.large_string())
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data = np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    return data, offsets - offsets[0] if len(offsets) else np.zeros(1, np.int64)


@dataclass(frozen=True)
class Tokens:
    """Token byte spans of all texts, in text order: `starts`/`ends` index `data`, `doc` is the text of each."""

    data: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    doc: np.ndarray
    num_docs: int

    def bounds(self) -> np.ndarray:
        """Text d's tokens are [bounds[d], bounds[d + 1])."""
        return np.searchsorted(self.doc, np.arange(self.num_docs + 1))


def _doc_of(offsets: np.ndarray, positions: np.ndarray) -> np.ndarray:
    return np.searchsorted(offsets, positions, side="right") - 1


@functools.cache
def _numba_split():  # -> the compiled splitter, or None without numba
    try:
        from ops_library.numba_loader import numba
    except ImportError:
        return None

    @numba.njit(cache=True, nogil=True, parallel=True)
    def split(data, offsets, sep, keep_empty):  # pragma: no cover - compiled
        n_docs = len(offsets) - 1
        counts = np.zeros(n_docs, dtype=np.int64)
        for d in numba.prange(n_docs):
            c = 0
            prev_sep = True
            for p in range(offsets[d], offsets[d + 1]):
                is_sep = data[p] == sep
                if keep_empty:
                    c += is_sep
                elif not is_sep and prev_sep:
                    c += 1
                prev_sep = is_sep
            counts[d] = c + 1 if keep_empty else c
        first = np.zeros(n_docs + 1, dtype=np.int64)
        first[1:] = np.cumsum(counts)
        total = first[n_docs]
        starts = np.empty(total, dtype=np.int64)
        ends = np.empty(total, dtype=np.int64)
        doc = np.empty(total, dtype=np.int64)
        for d in numba.prange(n_docs):
            k = first[d]
            start = offsets[d]
            in_token = False
            for p in range(offsets[d], offsets[d + 1]):
                is_sep = data[p] == sep
                if keep_empty:
                    if is_sep:
                        starts[k], ends[k], doc[k] = start, p, d
                        k += 1
                        start = p + 1
                elif is_sep:
                    if in_token:
                        starts[k], ends[k], doc[k] = start, p, d
                        k += 1
                        in_token = False
                elif not in_token:
                    start = p
                    in_token = True
            if keep_empty or in_token:
                starts[k], ends[k], doc[k] = start, offsets[d + 1], d
                k += 1
        return starts, ends, doc

    return split


def byte_split(tokenization: str, marker: str | None = None) -> tuple[int, bool] | None:
    """(separator byte, keep empty tokens) where tokens are the pieces between one separator byte: `space`
    (empty tokens dropped) and `punctuation` (cut at `marker`, which stands for every `\\p{P}`; empty tokens
    kept); None for other tokenizations."""
    if tokenization == "space":
        return _SPACE, False
    if tokenization == "punctuation":
        assert marker is not None and len(marker.encode()) == 1
        return ord(marker), True
    return None


def tokenize(
    data: np.ndarray, offsets: np.ndarray, tokenization: str, marker: str | None = None, *, backend: str | None = None
) -> Tokens:
    """Token spans of the buffer as Data-Juicer splits each text (see the module docstring): a numba loop over
    the bytes for space and punctuation splits, else (or with `backend="numpy"`) whole-buffer numpy masks."""
    n_docs = len(offsets) - 1
    n = len(data)
    rule = byte_split(tokenization, marker)
    split = _numba_split() if backend != "numpy" and rule is not None else None
    if split is not None and rule is not None:
        starts, ends, doc = split(data, offsets.astype(np.int64), np.uint8(rule[0]), rule[1])
        return Tokens(data, starts, ends, doc, n_docs)
    if tokenization == "space":
        sep = data == _SPACE
        boundary = np.zeros(n + 1, dtype=bool)  # a text starts (or the buffer ends) before this byte
        boundary[offsets] = True
        prev_sep = np.ones(n, dtype=bool)
        prev_sep[1:] = sep[:-1]
        next_sep = np.ones(n, dtype=bool)
        next_sep[:-1] = sep[1:]
        starts = np.flatnonzero(~sep & (prev_sep | boundary[:n]))
        ends = np.flatnonzero(~sep & (next_sep | boundary[1:])) + 1
        doc = _doc_of(offsets, starts)
    elif tokenization == "punctuation":
        assert marker is not None and len(marker.encode()) == 1
        cuts = np.flatnonzero(data == ord(marker))
        cut_doc = _doc_of(offsets, cuts)
        # Each text is cut at every marker: pieces start at the text start or after a cut, end at a cut or the
        # text end; (text, position) orders them (a cut at a text's last byte is followed by the next text).
        start_pos = np.concatenate([offsets[:-1], cuts + 1])
        start_doc = np.concatenate([np.arange(n_docs), cut_doc])
        end_pos = np.concatenate([offsets[1:], cuts])
        end_doc = np.concatenate([np.arange(n_docs), cut_doc])
        s_order = np.lexsort((start_pos, start_doc))
        e_order = np.lexsort((end_pos, end_doc))
        starts, doc, ends = start_pos[s_order], start_doc[s_order], end_pos[e_order]
    elif tokenization == "character":
        starts = np.flatnonzero((data & 0xC0) != 0x80)  # UTF-8 lead bytes: one per character
        ends = np.empty_like(starts)
        ends[:-1] = starts[1:]
        if len(starts):
            ends[-1] = n
        doc = _doc_of(offsets, starts)
        last_of_doc = np.r_[doc[1:] != doc[:-1], True] if len(doc) else np.zeros(0, bool)
        ends[last_of_doc] = offsets[doc[last_of_doc] + 1]
    else:
        raise ValueError(f"tokenization {tokenization!r} is not one of space, punctuation, character")
    return Tokens(data, starts.astype(np.int64), ends.astype(np.int64), doc.astype(np.int64), n_docs)


@functools.cache
def _numba_fnv():  # -> the compiled token hasher, or None without numba
    try:
        from ops_library.numba_loader import numba
    except ImportError:
        return None

    @numba.njit(cache=True, nogil=True, parallel=True)
    def fnv(data, starts, ends, out):  # pragma: no cover - compiled
        for i in numba.prange(len(starts)):
            h = _FNV_OFFSET
            for j in range(starts[i], ends[i]):
                h = (h ^ np.uint64(data[j])) * _FNV_PRIME
            h ^= h >> np.uint64(33)
            h *= _FMIX_C1
            h ^= h >> np.uint64(33)
            h *= _FMIX_C2
            h ^= h >> np.uint64(33)
            out[i] = h

    return fnv


def fnv1a_token_hashes(tokens: Tokens, *, backend: str | None = None) -> np.ndarray:
    """fmix64(FNV-1a-64 of each token's bytes): a numba loop over the bytes, or (without numba, or with
    `backend="numpy"`) one numpy pass per byte position over the tokens that have a byte there."""
    kernel = _numba_fnv() if backend != "numpy" else None
    if kernel is not None:
        out = np.empty(len(tokens.starts), dtype=np.uint64)
        kernel(tokens.data, tokens.starts, tokens.ends, out)
        return out
    lengths = tokens.ends - tokens.starts
    h = np.full(len(lengths), _FNV_OFFSET, dtype=np.uint64)
    active = np.flatnonzero(lengths > 0)
    pos = tokens.starts[active]
    j = 0
    with np.errstate(over="ignore"):
        while len(active):
            h[active] = (h[active] ^ tokens.data[pos + j].astype(np.uint64)) * _FNV_PRIME
            j += 1
            still = lengths[active] > j
            if not still.all():
                active, pos = active[still], pos[still]
        return fmix64(h)


@dataclass(frozen=True)
class ShingleHashes:
    """One uint64 hash per shingle, grouped by text: text i owns `hashes[offsets[i]:offsets[i + 1]]`."""

    hashes: np.ndarray
    offsets: np.ndarray

    @property
    def num_docs(self) -> int:
        return len(self.offsets) - 1


def _window_starts(doc: np.ndarray, window: int, n_docs: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the tokens that begin a full window inside their text, and the per-text offsets of them."""
    n = len(doc)
    if n < window:
        return np.zeros(0, np.int64), np.zeros(n_docs + 1, np.int64)
    first = np.arange(n - window + 1)
    valid = first[doc[first] == doc[first + window - 1]]
    counts = np.bincount(doc[valid], minlength=n_docs)
    offsets = np.zeros(n_docs + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    return valid, offsets


@functools.cache
def _numba_windows():  # -> the compiled window hasher, or None without numba
    try:
        from ops_library.numba_loader import numba
    except ImportError:
        return None

    @numba.njit(cache=True, nogil=True, parallel=True)
    def windows(token_hashes, doc, window, n_docs):  # pragma: no cover - compiled
        # tokens are grouped by text in order: text d owns tokens [token_first[d], token_first[d + 1])
        token_first = np.zeros(n_docs + 1, dtype=np.int64)
        for i in range(len(doc)):
            token_first[doc[i] + 1] += 1
        offsets = np.zeros(n_docs + 1, dtype=np.int64)
        for d in range(n_docs):
            n_windows = token_first[d + 1] - window + 1
            offsets[d + 1] = offsets[d] + (n_windows if n_windows > 0 else 0)
            token_first[d + 1] += token_first[d]
        out = np.empty(offsets[n_docs], dtype=np.uint64)
        for d in numba.prange(n_docs):
            k = offsets[d]
            for i in range(token_first[d], token_first[d + 1] - window + 1):
                acc = np.uint64(0)
                for t in range(window):
                    acc = acc * _WINDOW_MULTIPLIER + token_hashes[i + t]
                acc ^= acc >> np.uint64(33)
                acc *= _FMIX_C1
                acc ^= acc >> np.uint64(33)
                acc *= _FMIX_C2
                acc ^= acc >> np.uint64(33)
                out[k] = acc
                k += 1
        return out, offsets

    return windows


def fast_shingle_hashes(tokens: Tokens, window: int, *, backend: str | None = None) -> ShingleHashes:
    """fmix64(sum_t token_hash[i + t] * M**(window-1-t)) for every full window of tokens inside one text: a
    numba loop, else (or with `backend="numpy"`) one numpy pass per window position."""
    token_hashes = fnv1a_token_hashes(tokens, backend=backend)
    kernel = _numba_windows() if backend != "numpy" else None
    if kernel is not None:
        return ShingleHashes(*kernel(token_hashes, tokens.doc, window, tokens.num_docs))
    first, offsets = _window_starts(tokens.doc, window, tokens.num_docs)
    with np.errstate(over="ignore"):
        acc = np.zeros(len(first), dtype=np.uint64)
        for t in range(window):
            acc = acc * _WINDOW_MULTIPLIER + token_hashes[first + t]
        return ShingleHashes(fmix64(acc), offsets)


def exact_shingles(tokens: Tokens, window: int, tokenization: str) -> Iterator[list[bytes]]:
    """The exact shingle bytes of each text, in text order, as Data-Juicer builds them.

    A Python loop per text: the Data-Juicer-compatible modes hash each shingle with hashlib, which has no bulk
    form; the token boundaries still come from `tokenize`.
    """
    joiner = b"" if tokenization == "character" else b" "
    raw = tokens.data.tobytes()
    bounds = tokens.bounds()
    for d in range(tokens.num_docs):
        lo, hi = bounds[d], bounds[d + 1]
        toks = [raw[s:e] for s, e in zip(tokens.starts[lo:hi].tolist(), tokens.ends[lo:hi].tolist(), strict=True)]
        yield [joiner.join(toks[i : i + window]) for i in range(len(toks) - window + 1)]


def sha1_shingle_hashes(tokens: Tokens, window: int, tokenization: str) -> ShingleHashes | None:
    """Data-Juicer's base hash of every shingle of every text: the first 4 bytes of SHA-1 of the shingle's bytes
    (`exact_shingles`'), read little-endian, in a numba loop over the token spans (parallel over texts; each
    shingle's bytes are assembled in a buffer of its text and hashed there, no Python object per shingle). A
    text's repeated shingles are hashed each time where Data-Juicer hashes the set: the minimum per permutation
    is the same. None without numba (then `exact_shingles` and hashlib)."""
    kernel = _numba_sha1()
    if kernel is None:
        return None
    bounds = tokens.bounds()
    offsets = np.zeros(tokens.num_docs + 1, dtype=np.int64)
    np.cumsum(np.maximum(0, np.diff(bounds) - window + 1), out=offsets[1:])
    hashes = np.empty(offsets[-1], dtype=np.uint64)
    if len(hashes):
        # int64 as the kernel was compiled for; `tokenize` gives them so, and then no copy is made
        starts, ends = np.asarray(tokens.starts, np.int64), np.asarray(tokens.ends, np.int64)
        bounds = np.asarray(bounds, np.int64)
        kernel(tokens.data, starts, ends, bounds, window, tokenization != "character", offsets, hashes)
    return ShingleHashes(hashes, offsets)


@functools.cache
def _numba_sha1():  # -> the compiled kernel, or None without numba
    try:
        from ops_library.numba_loader import numba
    except ImportError:
        return None

    @numba.njit(parallel=True, cache=True, nogil=True)
    def sha1_kernel(data, starts, ends, bounds, window, joiner, out_offsets, out):  # pragma: no cover - compiled
        # Text d's tokens are [bounds[d], bounds[d+1]); shingle i of it is tokens i..i+window-1 joined by one space
        # (`joiner`) or by nothing, as `exact_shingles` joins them. SHA-1 (FIPS 180-4) in 64-bit integers masked
        # to 32 bits; the message padded in place after the shingle's bytes.
        M = np.uint64(0xFFFFFFFF)
        s1, s2, s5, s8, s24 = np.uint64(1), np.uint64(2), np.uint64(5), np.uint64(8), np.uint64(24)
        s27, s30, s31 = np.uint64(27), np.uint64(30), np.uint64(31)
        for d in numba.prange(len(bounds) - 1):
            t0, t1 = bounds[d], bounds[d + 1]
            n_sh = t1 - t0 - window + 1
            if n_sh <= 0:
                continue
            msg = np.zeros(ends[t1 - 1] - starts[t0] + window + 72, dtype=np.uint8)
            w = np.empty(80, dtype=np.uint64)
            for i in range(n_sh):
                n = 0
                for t in range(t0 + i, t0 + i + window):
                    if t > t0 + i and joiner:
                        msg[n] = 32
                        n += 1
                    for q in range(starts[t], ends[t]):
                        msg[n] = data[q]
                        n += 1
                total = ((n + 8) // 64 + 1) * 64
                msg[n] = 0x80
                for q in range(n + 1, total - 8):
                    msg[q] = 0
                bits = np.uint64(n) * np.uint64(8)
                for q in range(8):
                    msg[total - 1 - q] = np.uint8((bits >> np.uint64(8 * q)) & np.uint64(0xFF))
                h0 = np.uint64(0x67452301)
                h1 = np.uint64(0xEFCDAB89)
                h2 = np.uint64(0x98BADCFE)
                h3 = np.uint64(0x10325476)
                h4 = np.uint64(0xC3D2E1F0)
                for blk in range(0, total, 64):
                    for j in range(16):
                        p = blk + 4 * j
                        w[j] = (np.uint64(msg[p]) << s24) | (np.uint64(msg[p + 1]) << np.uint64(16))
                        w[j] |= (np.uint64(msg[p + 2]) << s8) | np.uint64(msg[p + 3])
                    for j in range(16, 80):
                        x = w[j - 3] ^ w[j - 8] ^ w[j - 14] ^ w[j - 16]
                        w[j] = ((x << s1) | (x >> s31)) & M
                    a, b, c, dd, e = h0, h1, h2, h3, h4  # SHA-1's a..e (`d` is the text)
                    for j in range(20):
                        f = (b & c) | ((~b) & dd)
                        tmp = ((((a << s5) | (a >> s27)) & M) + (f & M) + e + np.uint64(0x5A827999) + w[j]) & M
                        e = dd
                        dd = c
                        c = ((b << s30) | (b >> s2)) & M
                        b = a
                        a = tmp
                    for j in range(20, 40):
                        f = b ^ c ^ dd
                        tmp = ((((a << s5) | (a >> s27)) & M) + f + e + np.uint64(0x6ED9EBA1) + w[j]) & M
                        e = dd
                        dd = c
                        c = ((b << s30) | (b >> s2)) & M
                        b = a
                        a = tmp
                    for j in range(40, 60):
                        f = (b & c) | (b & dd) | (c & dd)
                        tmp = ((((a << s5) | (a >> s27)) & M) + f + e + np.uint64(0x8F1BBCDC) + w[j]) & M
                        e = dd
                        dd = c
                        c = ((b << s30) | (b >> s2)) & M
                        b = a
                        a = tmp
                    for j in range(60, 80):
                        f = b ^ c ^ dd
                        tmp = ((((a << s5) | (a >> s27)) & M) + f + e + np.uint64(0xCA62C1D6) + w[j]) & M
                        e = dd
                        dd = c
                        c = ((b << s30) | (b >> s2)) & M
                        b = a
                        a = tmp
                    h0 = (h0 + a) & M
                    h1 = (h1 + b) & M
                    h2 = (h2 + c) & M
                    h3 = (h3 + dd) & M
                    h4 = (h4 + e) & M
                # the digest's first 4 bytes (h0, big-endian) read little-endian
                low = ((h0 & np.uint64(0xFF)) << s24) | ((h0 & np.uint64(0xFF00)) << s8)
                out[out_offsets[d] + i] = low | ((h0 >> s8) & np.uint64(0xFF00)) | (h0 >> s24)

    return sha1_kernel


@dataclass(frozen=True)
class ShingleText:
    """The normalized texts (`norm`) as one UTF-8 buffer (`data`, `offsets`), and the byte that stands for every
    punctuation character when tokenization is `punctuation` (`marker`)."""

    norm: pl.Series
    data: np.ndarray
    offsets: np.ndarray
    marker: str | None


def shingle_text(texts: pl.Series, *, tokenization: str, lowercase: bool, ignore_pattern: str | None) -> ShingleText:
    """Normalize `texts` for shingling and lay them out as one byte buffer."""
    (text,) = shingle_text_parts(texts, tokenization=tokenization, lowercase=lowercase, ignore_pattern=ignore_pattern)
    return text


def shingle_text_parts(
    texts: pl.Series, *, tokenization: str, lowercase: bool, ignore_pattern: str | None, parts: int = 1
) -> list[ShingleText]:
    """`shingle_text` of `parts` slices of consecutive texts, normalized on as many threads (polars' string
    functions release the GIL and run one call on one core): 0.11 s against 0.21 s for the 110 MB bench corpus in
    two parts on two cores (medians of 10). Every part has the same `marker`."""
    marker = None
    if tokenization == "punctuation":
        marker = marker_absent_from(texts.fill_null(""))

    def one(part: pl.Series) -> ShingleText:
        norm = normalized_texts(part, lowercase=lowercase, ignore_pattern=ignore_pattern, punctuation_marker=marker)
        data, offsets = utf8_buffer(norm)
        return ShingleText(norm, data, offsets, marker)

    parts = max(1, min(parts, texts.len()))
    if parts == 1:
        return [one(texts)]
    bounds = [texts.len() * i // parts for i in range(parts + 1)]
    with ThreadPoolExecutor(parts, thread_name_prefix="shingle-text") as pool:
        return list(pool.map(one, [texts.slice(lo, hi - lo) for lo, hi in itertools.pairwise(bounds)]))


def shingle_tokens(
    texts: pl.Series, *, tokenization: str, lowercase: bool, ignore_pattern: str | None
) -> tuple[Tokens, pl.Series]:
    """Normalize and tokenize `texts`; also returns the normalized texts."""
    text = shingle_text(texts, tokenization=tokenization, lowercase=lowercase, ignore_pattern=ignore_pattern)
    return tokenize(text.data, text.offsets, tokenization, text.marker), text.norm
