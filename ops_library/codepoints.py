"""Per-text code-point statistics computed in one compiled pass over the texts' UTF-8 bytes (C: `csrc/codepoints.c`).

Data-Juicer computes these with a Python loop over each text's characters. The regex forms polars offers are exact
but slow for the biggest character classes (Python's `str.isalnum` is ~130k code points), and the character
n-gram count of `character_repetition_filter` has no vectorized form at all. Here each text's bytes are decoded
to code points inside a C kernel (`native_kernels`):

- `class_counts`: (code points, code points in a class) per text, the class a boolean table over U+0000..U+10FFFF;
- `strip_class`: each text without the code points of a class and stripped of those of another (the normalized
  text `document_deduplicator` hashes), as UTF-8 bytes and offsets;
- `char_rep_ratios`: Data-Juicer's character n-gram repetition ratio. The n-grams are bucketed by a 64-bit
  rolling hash, and every n-gram of a bucket is compared, code point by code point, with the bucket's first one, so
  the counts are exact: a text whose buckets ever hold two different n-grams (a hash collision) is flagged and
  recomputed by the Python definition.

The kernels release the GIL (ctypes does for each call) and are not parallel themselves: polars calls a
`map_batches` function once per chunk of a frame on its own threads, and the step cuts a shard into as many chunks
as it was granted CPUs. They load with the library in about a millisecond, so every op that can use them does.
Where the library is not built (`kernels()` is None) the callers keep their polars/Python forms.
"""

from __future__ import annotations

import ctypes
import functools
import re
import sys
from collections.abc import Callable

import numpy as np
import polars as pl

from ops_library import native_kernels
from ops_library.shingles import utf8_buffer

# Odd 64-bit multiplier of the rolling n-gram hash (the golden ratio).
_ROLL = 0x9E3779B97F4A7C15


def kernels() -> ctypes.CDLL | None:
    """Sluice's C library (`native_kernels.library`), or None where it is not built."""
    return native_kernels.library()


@functools.cache
def class_table(name: str) -> np.ndarray:
    """bool[0x110000]: whether each code point belongs to the named class (`alnum`: `str.isalnum`; `special`:
    Data-Juicer's SPECIAL_CHARACTERS, single code points only)."""
    if name == "alnum":
        return alnum_table()
    if name == "special":
        from ops_library.text import SPECIAL_CHARACTERS

        return chars_table("".join(c for c in SPECIAL_CHARACTERS if len(c) == 1))
    raise ValueError(f"unknown character class {name!r}")


def alnum_table() -> np.ndarray:
    """bool[0x110000]: `str.isalnum` of every code point, asked of Python's `re` in one pass: its Unicode `\\w` is
    exactly `isalnum()` or "_" (CPython's `SRE_UNI_IS_WORD`), ~5x faster than calling `isalnum` per character."""
    cps = np.arange(sys.maxunicode + 1, dtype=np.uint32)
    everything = cps.astype("<u4").tobytes().decode("utf-32-le", "surrogatepass")
    marked = re.sub(r"[^\W_]", "\x00", everything).encode("utf-32-le", "surrogatepass")
    table = np.frombuffer(marked, dtype="<u4") == 0
    table[0] = "\x00".isalnum()
    return table


def class_ratio(texts: pl.Series, name: str) -> pl.Series:
    """Code points of the class over all code points, per text (0.0 for an empty text, null for null)."""
    data, offsets = utf8_buffer(texts.fill_null(""))
    total = np.zeros(len(texts), dtype=np.int64)
    hits = np.zeros(len(texts), dtype=np.int64)
    d, o, t, n, k = native_kernels.addresses(data, offsets, class_table(name), total, hits)
    kernels().sluice_class_counts(d, o, 0, len(texts), t, n, k)  # type: ignore[union-attr]
    ratio = np.divide(hits, total, out=np.zeros(len(texts), dtype=np.float64), where=total > 0)
    return pl.Series(texts.name, ratio, dtype=pl.Float64).set(texts.is_null(), None)  # type: ignore[arg-type]


def char_rep_ratios(texts: pl.Series, n: int, exact: Callable[[str, int], float], *, roll: int = _ROLL) -> pl.Series:
    """Data-Juicer's character n-gram repetition ratio per text; `exact(text, n)` recomputes a text whose n-gram
    hashes collided. `roll` is the rolling hash's multiplier (tests force collisions with 0)."""
    data, offsets = utf8_buffer(texts.fill_null(""))
    out = np.zeros(len(texts), dtype=np.float64)
    collided = np.zeros(len(texts), dtype=np.bool_)
    d, o, r, c = native_kernels.addresses(data, offsets, out, collided)
    if kernels().sluice_rep_ratios(d, o, 0, len(texts), n, roll, r, c) != 0:  # type: ignore[union-attr]
        raise MemoryError(f"character n-gram table for n={n} could not be allocated")
    for i in np.flatnonzero(collided):
        out[i] = exact(texts[int(i)], n)
    return pl.Series(texts.name, out, dtype=pl.Float64).set(texts.is_null(), None)  # type: ignore[arg-type]


def refined_word_counts(texts: pl.Series) -> pl.Series:
    """Data-Juicer's `len(words_refinement(split_on_whitespace(text), strip_chars=SPECIAL_CHARACTERS))` per text
    (null for null): `text.count_refined_words` in one pass over the code points."""
    data, offsets = utf8_buffer(texts.fill_null(""))
    out = np.zeros(len(texts), dtype=np.int64)
    d, o, t, w = native_kernels.addresses(data, offsets, class_table("special"), out)
    kernels().sluice_refined_word_counts(d, o, 0, len(texts), t, w)  # type: ignore[union-attr]
    return pl.Series(texts.name, out, dtype=pl.Int64).set(texts.is_null(), None)  # type: ignore[arg-type]


def warm_kernels() -> bool:
    """Load the C library and compute the class tables the kernels read (`alnum`: ~0.1 s), so that a process
    forked after this call finds them (`pipeline_defs.forkserver`); starts no thread. False where the library
    is not built."""
    if kernels() is None:
        return False
    class_table("alnum")
    class_table("special")
    return True


@functools.cache
def regex_table(char_class: str) -> np.ndarray:
    """bool[0x110000]: the code points a one-character polars (Rust) regex class such as `[\\s\\d]` matches,
    found by asking the regex itself about every code point, so the table agrees with it, Unicode tables included."""
    cps = np.r_[0:0xD800, 0xE000 : sys.maxunicode + 1].astype(np.uint32)  # Arrow strings hold no surrogates
    encoded = cps.astype("<u4").tobytes().decode("utf-32-le").encode("utf-8")
    lengths = np.select([cps < 0x80, cps < 0x800, cps < 0x10000], [1, 2, 3], 4)
    offsets = np.zeros(len(cps) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    import pyarrow as pa

    chars = pl.from_arrow(pa.LargeStringArray.from_buffers(len(cps), pa.py_buffer(offsets), pa.py_buffer(encoded)))
    table = np.zeros(sys.maxunicode + 1, dtype=np.bool_)
    table[cps[chars.str.contains(f"^(?:{char_class})$").to_numpy()]] = True  # type: ignore[union-attr]
    return table


@functools.cache
def chars_table(chars: str) -> np.ndarray:
    """bool[0x110000]: the code points of `chars`."""
    table = np.zeros(sys.maxunicode + 1, dtype=np.bool_)
    table[[ord(c) for c in chars]] = True
    return table


def strip_class(texts: pl.Series, remove: np.ndarray, strip: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(UTF-8 bytes, int64 offsets, n + 1 entries): each text without its code points in the `remove` table, then
    without leading and trailing ones in the `strip` table. A null text comes out empty."""
    data, offsets = utf8_buffer(texts.fill_null(""))
    out = np.empty(len(data), dtype=np.uint8)
    out_offsets = np.empty(len(offsets), dtype=np.int64)
    d, o, r, s, b, q = native_kernels.addresses(data, offsets, remove, strip, out, out_offsets)
    kernels().sluice_drop_class(d, o, len(texts), r, s, b, q)  # type: ignore[union-attr]
    return out, out_offsets
