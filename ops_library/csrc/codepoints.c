/* Per-text code-point statistics in one pass over the texts' UTF-8 bytes (ops_library/codepoints.py): texts
 * [first, last) of (data, offsets), as Arrow strings hold them (valid UTF-8). A class table is one byte per code
 * point, U+0000..U+10FFFF, nonzero for the class's members. */
#include <math.h>
#include <stdlib.h>

#include "kernels.h"

/* The code point of the UTF-8 sequence at data[*p]; moves *p past it. */
static inline int64_t decode(const uint8_t *data, int64_t *p) {
    int64_t b = data[*p];
    if (b < 0x80) {
        *p += 1;
        return b;
    }
    if (b < 0xE0) {
        int64_t cp = ((b & 0x1F) << 6) | (data[*p + 1] & 0x3F);
        *p += 2;
        return cp;
    }
    if (b < 0xF0) {
        int64_t cp = ((b & 0x0F) << 12) | ((data[*p + 1] & 0x3F) << 6) | (data[*p + 2] & 0x3F);
        *p += 3;
        return cp;
    }
    int64_t cp = ((b & 0x07) << 18) | ((data[*p + 1] & 0x3F) << 12) | ((data[*p + 2] & 0x3F) << 6) |
                 (data[*p + 3] & 0x3F);
    *p += 4;
    return cp;
}

/* total[d]: the text's code points; hits[d]: those in `table`. */
int64_t sluice_class_counts(const uint8_t *data, const int64_t *offsets, int64_t first, int64_t last,
                            const uint8_t *table, int64_t *total, int64_t *hits) {
    for (int64_t d = first; d < last; d++) {
        int64_t p = offsets[d], end = offsets[d + 1], n = 0, k = 0;
        while (p < end) {
            k += table[decode(data, &p)] != 0;
            n++;
        }
        total[d] = n;
        hits[d] = k;
    }
    return 0;
}

/* out[d]: the number of words between spaces, newlines and tabs that hold a code point outside `special` (the
 * words Data-Juicer's `words_refinement` keeps after stripping special characters from their ends). */
int64_t sluice_refined_word_counts(const uint8_t *data, const int64_t *offsets, int64_t first, int64_t last,
                                   const uint8_t *special, int64_t *out) {
    for (int64_t d = first; d < last; d++) {
        int64_t p = offsets[d], end = offsets[d + 1], n = 0;
        int plain = 0;
        while (p < end) {
            int64_t cp = decode(data, &p);
            if (cp == 32 || cp == 10 || cp == 9) {
                n += plain;
                plain = 0;
            } else if (!special[cp]) {
                plain = 1;
            }
        }
        out[d] = n + plain;
    }
    return 0;
}

static int descending(const void *x, const void *y) {
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return (a < b) - (a > b);
}

/* Data-Juicer's character n-gram repetition ratio: of the text's code-point n-grams, the occurrences of the k most
 * frequent among those seen more than once, k = isqrt(distinct n-grams), over all n-grams (0 for a text shorter
 * than n). The n-grams are bucketed by a rolling hash in `roll` in an open-addressing table, each compared code
 * point by code point with its bucket's first: a text whose bucket ever holds two different n-grams (a hash
 * collision) gets collided[d] = 1 and is left for the caller to recompute. Returns 0, or -1 when memory runs out. */
int64_t sluice_rep_ratios(const uint8_t *data, const int64_t *offsets, int64_t first, int64_t last, int64_t n,
                          uint64_t roll, double *out, uint8_t *collided) {
    if (n < 1) return -1;
    uint64_t top_weight = 1;
    for (int64_t i = 0; i < n - 1; i++) top_weight *= roll;
    int64_t capacity = 0, slots = 0;
    int64_t *cps = NULL, *slot_pos = NULL, *slot_count = NULL;
    uint64_t *slot_hash = NULL;
    int64_t code = 0;
    for (int64_t d = first; d < last && code == 0; d++) {
        int64_t start = offsets[d], end = offsets[d + 1];
        if (end - start > capacity) {
            capacity = end - start;
            free(cps);
            cps = malloc(capacity * sizeof(int64_t));
            if (!cps) {
                code = -1;
                break;
            }
        }
        int64_t m = 0, p = start;
        while (p < end) cps[m++] = decode(data, &p);
        int64_t grams = m - n + 1;
        out[d] = 0.0;
        if (grams <= 0) continue;
        int64_t size = 1;
        while (size < 2 * grams) size *= 2;
        if (size > slots) {
            slots = size;
            free(slot_hash);
            free(slot_pos);
            free(slot_count);
            slot_hash = malloc(slots * sizeof(uint64_t));
            slot_pos = malloc(slots * sizeof(int64_t));
            slot_count = malloc(slots * sizeof(int64_t));
            if (!slot_hash || !slot_pos || !slot_count) {
                code = -1;
                break;
            }
        }
        uint64_t mask = (uint64_t)size - 1, h = 0;
        for (int64_t s = 0; s < size; s++) slot_pos[s] = -1;
        for (int64_t i = 0; i < n; i++) h = h * roll + (uint64_t)cps[i];
        int64_t distinct = 0;
        for (int64_t i = 0; i < grams && !collided[d]; i++) {
            if (i) h = (h - (uint64_t)cps[i - 1] * top_weight) * roll + (uint64_t)cps[i + n - 1];
            uint64_t s = (h ^ (h >> 29)) & mask;
            for (;;) {
                int64_t pos = slot_pos[s];
                if (pos < 0) {
                    slot_hash[s] = h;
                    slot_pos[s] = i;
                    slot_count[s] = 1;
                    distinct++;
                    break;
                }
                if (slot_hash[s] == h) {
                    for (int64_t t = 0; t < n; t++) {
                        if (cps[pos + t] != cps[i + t]) {
                            collided[d] = 1;
                            break;
                        }
                    }
                    slot_count[s]++;
                    break;
                }
                s = (s + 1) & mask;
            }
        }
        if (collided[d]) continue;
        int64_t k = (int64_t)sqrt((double)distinct);
        while (k * k > distinct) k--;
        while ((k + 1) * (k + 1) <= distinct) k++;
        int64_t repeated = 0; /* the counts above 1, gathered at the front of slot_count */
        for (int64_t s = 0; s < size; s++) {
            if (slot_pos[s] >= 0 && slot_count[s] > 1) slot_count[repeated++] = slot_count[s];
        }
        if (k > repeated) k = repeated;
        if (k == 0) continue;
        qsort(slot_count, repeated, sizeof(int64_t), descending);
        int64_t sum = 0;
        for (int64_t i = 0; i < k; i++) sum += slot_count[i];
        out[d] = (double)sum / (double)grams;
    }
    free(cps);
    free(slot_hash);
    free(slot_pos);
    free(slot_count);
    return code;
}

/* Each text of [0, n_texts) without its code points in `remove`, then without leading and trailing ones in `strip`
 * (`str.strip` after the removal), written to `out` (UTF-8) from out_offsets[d]; one call for all texts, since
 * each text's place in `out` follows from the ones before it. */
int64_t sluice_drop_class(const uint8_t *data, const int64_t *offsets, int64_t n_texts, const uint8_t *remove,
                          const uint8_t *strip, uint8_t *out, int64_t *out_offsets) {
    int64_t q = 0;
    out_offsets[0] = 0;
    for (int64_t d = 0; d < n_texts; d++) {
        int64_t p = offsets[d], end = offsets[d + 1];
        int64_t last = q; /* the end of the last code point written that is not in `strip` */
        int leading = 1;
        while (p < end) {
            uint8_t b = data[p];
            if (b < 0x80) { /* ASCII, most of any text: no decoding, one byte to copy */
                p++;
                if (remove[b] || (leading && strip[b])) continue;
                leading = 0;
                out[q++] = b;
                if (!strip[b]) last = q;
                continue;
            }
            int64_t at = p, cp = decode(data, &p);
            if (!remove[cp] && !(leading && strip[cp])) {
                leading = 0;
                while (at < p) out[q++] = data[at++];
                if (!strip[cp]) last = q;
            }
        }
        q = last;
        out_offsets[d + 1] = q;
    }
    return 0;
}
