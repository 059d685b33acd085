/* MinHash signatures (or their LSH band keys) straight from the texts' bytes, one pass per text: the `fast` and
 * `oph` hash modes of ops_library/minhash.py, the values of `shingles.fast_shingle_hashes` followed by
 * `minhash.minhash_signatures` (and `minhash.band_keys`), bit for bit, without token or shingle arrays. */
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

#define FNV_OFFSET 0xCBF29CE484222325ULL
#define FNV_PRIME 0x100000001B3ULL
#define FMIX_C1 0xFF51AFD7ED558CCDULL
#define FMIX_C2 0xC4CEB9FE1A85EC53ULL
#define WINDOW_MULTIPLIER 0x9E3779B97F4A7C15ULL /* shingles._WINDOW_MULTIPLIER */
#define PROBE_BIN 0x9E3779B97F4A7C15ULL         /* minhash._PROBE_BIN */
#define PROBE_ATTEMPT 0xBF58476D1CE4E5B9ULL     /* minhash._PROBE_ATTEMPT */
#define BAND_MULTIPLIER 0x9E3779B97F4A7C15ULL   /* minhash._BAND_MULTIPLIER */
#define WAIT 8                                  /* `fast`: shingle hashes folded into the minima together */

static inline uint64_t fmix64(uint64_t x) {
    x ^= x >> 33;
    x *= FMIX_C1;
    x ^= x >> 33;
    x *= FMIX_C2;
    x ^= x >> 33;
    return x;
}

/* `fast`: permutation k of shingle hash h is the high half of (a_k*h + b_k) mod 2**64. From 32-bit halves it is
 * hi(a_lo*h_lo + b_lo) + a_lo*h_hi + a_hi*h_lo + b_hi mod 2**32, which vectorizes over k in 32-bit lanes (a 64-bit
 * product has no AVX2 instruction). WAIT hashes per pass over the permutations: the minima and the halves of a and
 * b are loaded once per WAIT shingles. */
SLUICE_CLONES static void fold(const uint32_t *restrict a_lo, const uint32_t *restrict a_hi,
                               const uint32_t *restrict b_lo, const uint32_t *restrict b_hi, int64_t num_perm,
                               const uint64_t *restrict hashes, uint32_t *restrict mins) {
    uint32_t h_lo[WAIT], h_hi[WAIT];
    for (int i = 0; i < WAIT; i++) {
        h_lo[i] = (uint32_t)hashes[i];
        h_hi[i] = (uint32_t)(hashes[i] >> 32);
    }
    for (int64_t k = 0; k < num_perm; k++) {
        uint32_t v = 0xFFFFFFFFu;
        for (int i = 0; i < WAIT; i++) {
            uint32_t r = (uint32_t)(((uint64_t)a_lo[k] * h_lo[i] + b_lo[k]) >> 32) + a_lo[k] * h_hi[i] +
                         a_hi[k] * h_lo[i] + b_hi[k];
            v = r < v ? r : v;
        }
        mins[k] = v < mins[k] ? v : mins[k];
    }
}

/* Texts [first, last) of (data, offsets). Tokens are the bytes between `sep` bytes (`keep_empty`: also the empty
 * ones between two separators, else runs of separators are one); a token's hash is FNV-1a-64 then fmix64; a
 * shingle of `window` tokens hashes fmix64 of the window's polynomial in WINDOW_MULTIPLIER (kept rolling: the
 * oldest token's term is taken out, the same value mod 2**64 as the sum afresh). `oph`: shingle x goes to bin
 * ((x >> 32) * K) >> 32 with value x mod 2**32, and a bin no shingle reached copies the first filled bin of its
 * probe sequence; else each of the K = num_perm permutations keeps its minimum (`fold`). A text's K values go to
 * signatures[d] (rows == 0) or are folded, `rows` at a time, into keys[d] (`bands` of them); shingles[d] is the
 * text's shingle count. Writes only rows first..last-1 of the outputs, so threads may share them. Returns 0, or
 * -1 when num_perm or window is below 1 or memory runs out. */
int64_t sluice_minhash_bytes(const uint8_t *data, const int64_t *offsets, int64_t first, int64_t last, uint8_t sep,
                             int32_t keep_empty, int64_t window, int32_t oph, const uint64_t *a, const uint64_t *b,
                             int64_t num_perm, uint32_t *signatures, int64_t *shingles, int64_t rows, int64_t bands,
                             uint64_t *keys) {
    if (num_perm < 1 || window < 1) return -1;
    uint32_t *mins = malloc(num_perm * sizeof(uint32_t));
    uint8_t *filled = malloc(num_perm);
    uint64_t *ring = malloc(window * sizeof(uint64_t)); /* the window's token hashes; `slot` is the oldest */
    uint32_t *halves = malloc(4 * num_perm * sizeof(uint32_t));
    if (!mins || !filled || !ring || !halves) {
        free(mins);
        free(filled);
        free(ring);
        free(halves);
        return -1;
    }
    uint32_t *a_lo = halves, *a_hi = halves + num_perm, *b_lo = halves + 2 * num_perm, *b_hi = halves + 3 * num_perm;
    for (int64_t k = 0; k < num_perm; k++) {
        a_lo[k] = (uint32_t)a[k];
        a_hi[k] = (uint32_t)(a[k] >> 32);
        b_lo[k] = (uint32_t)b[k];
        b_hi[k] = (uint32_t)(b[k] >> 32);
    }
    uint64_t waiting[WAIT];
    uint64_t n_bins = (uint64_t)num_perm, top = 1; /* top: the oldest token's factor once the window moves on */
    for (int64_t i = 0; i < window; i++) top *= WINDOW_MULTIPLIER;
    for (int64_t d = first; d < last; d++) {
        memset(mins, 0xFF, num_perm * sizeof(uint32_t));
        if (oph) memset(filled, 0, num_perm);
        int64_t n_waiting = 0, count = 0, slot = 0;
        uint64_t acc = 0;
        int64_t p = offsets[d], stop = offsets[d + 1];
        for (;;) {
            if (!keep_empty) {
                while (p < stop && data[p] == sep) p++;
                if (p >= stop) break;
            }
            uint64_t h = FNV_OFFSET;
            while (p < stop && data[p] != sep) h = (h ^ data[p++]) * FNV_PRIME;
            h = fmix64(h);
            acc = acc * WINDOW_MULTIPLIER + h;
            if (count >= window) acc -= ring[slot] * top;
            ring[slot] = h;
            if (++slot == window) slot = 0;
            if (++count >= window) {
                uint64_t x = fmix64(acc);
                if (oph) {
                    uint64_t j = ((x >> 32) * n_bins) >> 32;
                    if ((uint32_t)x < mins[j]) mins[j] = (uint32_t)x;
                    filled[j] = 1;
                } else {
                    waiting[n_waiting++] = x;
                    if (n_waiting == WAIT) {
                        fold(a_lo, a_hi, b_lo, b_hi, num_perm, waiting, mins);
                        n_waiting = 0;
                    }
                }
            }
            if (p >= stop) break;
            p++; /* the separator; with `keep_empty`, one at the text's end leaves an empty last token */
        }
        if (n_waiting) { /* the last few, padded with the first of them: a minimum is unchanged */
            for (int64_t i = n_waiting; i < WAIT; i++) waiting[i] = waiting[0];
            fold(a_lo, a_hi, b_lo, b_hi, num_perm, waiting, mins);
        }
        if (oph && count >= window) { /* `minhash._densify_numpy`'s probes, one text at a time */
            for (int64_t j = 0; j < num_perm; j++) {
                uint64_t attempt = 1, source = (uint64_t)j;
                while (!filled[source]) {
                    uint64_t c = fmix64((uint64_t)j * PROBE_BIN + attempt * PROBE_ATTEMPT);
                    source = ((c >> 32) * n_bins) >> 32;
                    attempt++;
                }
                mins[j] = mins[source];
            }
        }
        if (rows == 0) {
            memcpy(signatures + d * num_perm, mins, num_perm * sizeof(uint32_t));
        } else {
            for (int64_t band = 0; band < bands; band++) {
                uint64_t key = 0;
                for (int64_t t = band * rows; t < (band + 1) * rows; t++) key = key * BAND_MULTIPLIER + mins[t];
                keys[d * bands + band] = key;
            }
        }
        shingles[d] = count >= window ? count - window + 1 : 0;
    }
    free(mins);
    free(filled);
    free(ring);
    free(halves);
    return 0;
}
