"""Per-text code-point statistics computed in one compiled pass over the texts' UTF-8 bytes (numba).

Data-Juicer computes these with a Python loop over each text's characters. The regex forms polars offers are exact
but slow for the biggest character classes (Python's `str.isalnum` is ~130k code points), and the character
n-gram count of `character_repetition_filter` has no vectorized form at all. Here each text's bytes are decoded
to code points inside a numba kernel:

- `class_counts`: (code points, code points in a class) per text, the class a boolean table over U+0000..U+10FFFF;
- `strip_class`: each text without the code points of a class and stripped of those of another (the normalized
  text `document_deduplicator` hashes), as UTF-8 bytes and offsets;
- `char_rep_ratios`: Data-Juicer's character n-gram repetition ratio. The n-grams are bucketed by a 64-bit
  rolling hash, and every n-gram of a bucket is compared, code point by code point, with the bucket's first one, so
  the counts are exact: a text whose buckets ever hold two different n-grams (a hash collision) is flagged and
  recomputed by the Python definition.

The kernels release the GIL and are not parallel themselves: polars calls a `map_batches` function once per chunk
of a frame on its own threads, and the step cuts a shard into as many chunks as it was granted CPUs. Without numba
(`kernels()` is None) the callers keep their polars/Python forms.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import re
import sys
from collections.abc import Callable, Iterator
from types import ModuleType

import numpy as np
import polars as pl

from ops_library.shingles import utf8_buffer

# Odd 64-bit multiplier of the rolling n-gram hash (the golden ratio).
_ROLL = 0x9E3779B97F4A7C15


@functools.cache
def kernels() -> ModuleType | None:
    """`ops_library.codepoint_kernels` (compiled on first call), or None when numba is not installed."""
    try:
        from ops_library import codepoint_kernels as k  # imports numba
    except ImportError:
        return None
    return k


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
    kernels().class_counts(data, offsets, class_table(name), total, hits)  # type: ignore[union-attr]
    ratio = np.divide(hits, total, out=np.zeros(len(texts), dtype=np.float64), where=total > 0)
    return pl.Series(texts.name, ratio, dtype=pl.Float64).set(texts.is_null(), None)  # type: ignore[arg-type]


def char_rep_ratios(texts: pl.Series, n: int, exact: Callable[[str, int], float], *, roll: int = _ROLL) -> pl.Series:
    """Data-Juicer's character n-gram repetition ratio per text; `exact(text, n)` recomputes a text whose n-gram
    hashes collided. `roll` is the rolling hash's multiplier (tests force collisions with 0)."""
    data, offsets = utf8_buffer(texts.fill_null(""))
    out = np.zeros(len(texts), dtype=np.float64)
    collided = np.zeros(len(texts), dtype=np.bool_)
    kernels().rep_ratios(data, offsets, n, np.uint64(roll), out, collided)  # type: ignore[union-attr]
    for i in np.flatnonzero(collided):
        out[i] = exact(texts[int(i)], n)
    return pl.Series(texts.name, out, dtype=pl.Float64).set(texts.is_null(), None)  # type: ignore[arg-type]


def refined_word_counts(texts: pl.Series) -> pl.Series:
    """Data-Juicer's `len(words_refinement(split_on_whitespace(text), strip_chars=SPECIAL_CHARACTERS))` per text
    (null for null): `text.count_refined_words` in one pass over the code points."""
    data, offsets = utf8_buffer(texts.fill_null(""))
    out = np.zeros(len(texts), dtype=np.int64)
    kernels().refined_word_counts(data, offsets, class_table("special"), out)  # type: ignore[union-attr]
    return pl.Series(texts.name, out, dtype=pl.Int64).set(texts.is_null(), None)  # type: ignore[arg-type]


def warm_kernels() -> bool:
    """Load every kernel from numba's on-disk cache (numba's CPU target with the first, ~0.3 s) and the class
    tables they read, by calling each on one short text: what a process forked after this call no longer pays
    at its first op (`pipeline_defs.forkserver`). The arguments are numpy arrays of the types `utf8_buffer` gives
    (the bytes read-only), so the ops find the signatures loaded here; no polars, and no thread is started (the
    kernels are not `parallel`). False without numba."""
    k = kernels()
    if k is None:
        return False
    data = np.frombuffer("a ü\tb".encode(), dtype=np.uint8)
    offsets = np.array([0, len(data)], dtype=np.int64)
    one = np.zeros(1, dtype=np.int64)
    special = class_table("special")
    for table in (class_table("alnum"), special):
        k.class_counts(data, offsets, table, one.copy(), one.copy())
    k.rep_ratios(data, offsets, 2, np.uint64(_ROLL), np.zeros(1, dtype=np.float64), np.zeros(1, dtype=np.bool_))
    k.refined_word_counts(data, offsets, special, one.copy())
    k.drop_class(data, offsets, special, special, np.empty(len(data), dtype=np.uint8), np.empty(2, dtype=np.int64))
    return True


def loaded() -> bool:
    """Whether this process has imported the kernels already (numba's start, ~0.6 s, is then paid)."""
    return "ops_library.codepoint_kernels" in sys.modules


# True inside the steps of a recipe with an op that loads the kernels whatever happens (`Op.loads_kernels`): an op
# before it that could do without them (word counts, dedup normalization) may as well use them, since numba's
# start (~0.5 s) is paid by that job anyway. Per thread: `sluice run`'s prefetch works on a thread of its own.
_expected: contextvars.ContextVar[bool] = contextvars.ContextVar("sluice_kernels_expected", default=False)


@contextlib.contextmanager
def expecting(expected: bool) -> Iterator[None]:
    """Inside, `kernels_pay` counts the kernels as paid for when `expected` (the step's recipe loads them)."""
    token = _expected.set(expected)
    try:
        yield
    finally:
        _expected.reset(token)


def kernels_pay() -> bool:
    """Whether an op that can do without the kernels should use them: they are loaded, or this job loads them."""
    return (loaded() or _expected.get()) and kernels() is not None


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
    kernels().drop_class(data, offsets, remove, strip, out, out_offsets)  # type: ignore[union-attr]
    return out, out_offsets
