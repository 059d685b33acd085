"""The compiled kernels of `ops_library.codepoints` (imported only where numba is installed). Module-level
functions, so that numba's on-disk cache serves them to every later process."""

from __future__ import annotations

import numpy as np

from ops_library.numba_loader import numba


@numba.njit(cache=True, nogil=True, inline="always")
def decode(data, p):  # pragma: no cover - compiled
    """(code point, next position) of the UTF-8 sequence at data[p] (valid UTF-8, as Arrow strings are)."""
    b = np.int64(data[p])
    if b < 0x80:
        return b, p + 1
    if b < 0xE0:
        return ((b & 0x1F) << 6) | (np.int64(data[p + 1]) & 0x3F), p + 2
    if b < 0xF0:
        return ((b & 0x0F) << 12) | ((np.int64(data[p + 1]) & 0x3F) << 6) | (np.int64(data[p + 2]) & 0x3F), p + 3
    return (
        ((b & 0x07) << 18)
        | ((np.int64(data[p + 1]) & 0x3F) << 12)
        | ((np.int64(data[p + 2]) & 0x3F) << 6)
        | (np.int64(data[p + 3]) & 0x3F)
    ), p + 4


@numba.njit(cache=True, nogil=True)
def class_counts(data, offsets, table, total, hits):  # pragma: no cover - compiled
    for d in range(len(offsets) - 1):
        p, end, n, k = offsets[d], offsets[d + 1], 0, 0
        while p < end:
            cp, p = decode(data, p)
            n += 1
            k += table[cp]
        total[d] = n
        hits[d] = k


@numba.njit(cache=True, nogil=True)
def rep_ratios(data, offsets, n, roll, out, collided):  # pragma: no cover - compiled
    top_weight = np.uint64(1)
    for _ in range(n - 1):
        top_weight *= roll
    for d in range(len(offsets) - 1):
        start, end = offsets[d], offsets[d + 1]
        cps = np.empty(end - start, dtype=np.int64)
        m, p = 0, start
        while p < end:
            cp, p = decode(data, p)
            cps[m] = cp
            m += 1
        grams = m - n + 1
        if grams <= 0:
            out[d] = 0.0
            continue
        # Open addressing: slot -> (hash, first position, count); a slot whose hash matches holds the same
        # n-gram only if its code points match too (else: a collision, recomputed by the caller).
        size = 1
        while size < 2 * grams:
            size *= 2
        mask = np.uint64(size - 1)
        slot_hash = np.empty(size, dtype=np.uint64)
        slot_pos = np.full(size, -1, dtype=np.int64)
        slot_count = np.zeros(size, dtype=np.int64)
        h = np.uint64(0)
        for i in range(n):
            h = h * roll + np.uint64(cps[i])
        distinct = 0
        for i in range(grams):
            if i:
                h = (h - np.uint64(cps[i - 1]) * top_weight) * roll + np.uint64(cps[i + n - 1])
            s = (h ^ (h >> np.uint64(29))) & mask
            while True:
                pos = slot_pos[s]
                if pos < 0:
                    slot_hash[s] = h
                    slot_pos[s] = i
                    slot_count[s] = 1
                    distinct += 1
                    break
                if slot_hash[s] == h:
                    for t in range(n):
                        if cps[pos + t] != cps[i + t]:
                            collided[d] = True
                            break
                    slot_count[s] += 1
                    break
                s = (s + np.uint64(1)) & mask
        if collided[d]:
            continue
        k = int(np.sqrt(distinct))
        while k * k > distinct:
            k -= 1
        while (k + 1) * (k + 1) <= distinct:
            k += 1
        repeated = slot_count[slot_count > 1]
        k = min(k, len(repeated))
        if k == 0:
            out[d] = 0.0
            continue
        repeated = np.sort(repeated)[::-1]
        out[d] = repeated[:k].sum() / grams


@numba.njit(cache=True, nogil=True)
def refined_word_counts(data, offsets, special, out):  # pragma: no cover - compiled
    """Words between spaces, newlines and tabs that hold a code point outside the `special` table: the words
    Data-Juicer's `words_refinement` keeps after stripping special characters from their ends."""
    for d in range(len(offsets) - 1):
        p, end, n, plain = offsets[d], offsets[d + 1], 0, False
        while p < end:
            cp, p = decode(data, p)
            if cp == 32 or cp == 10 or cp == 9:
                n += plain
                plain = False
            elif not special[cp]:
                plain = True
        out[d] = n + plain


@numba.njit(cache=True, nogil=True)
def drop_class(data, offsets, remove, strip, out, out_offsets):  # pragma: no cover - compiled
    """Each text without its code points in `remove`, and without the leading and trailing ones in `strip` (what
    is left of it: `str.strip` after the removal), written to `out` (UTF-8) from `out_offsets[d]`."""
    q = 0
    out_offsets[0] = 0
    for d in range(len(offsets) - 1):
        p, end = offsets[d], offsets[d + 1]
        last = q  # end of the last code point written that is not in `strip`
        leading = True
        while p < end:
            b = data[p]
            if b < 0x80:  # ASCII, most of any text: no decoding, one byte to copy
                p += 1
                if remove[b] or (leading and strip[b]):
                    continue
                leading = False
                out[q] = b
                q += 1
                if not strip[b]:
                    last = q
                continue
            cp, nxt = decode(data, p)
            if not remove[cp] and not (leading and strip[cp]):
                leading = False
                for i in range(p, nxt):
                    out[q] = data[i]
                    q += 1
                if not strip[cp]:
                    last = q
            p = nxt
        q = last
        out_offsets[d + 1] = q
