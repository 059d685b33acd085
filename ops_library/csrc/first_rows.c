/* LSH buckets: for each row and band, the first row with the same band key (`clusters.first_rows`). */
#include <stdlib.h>

#include "kernels.h"

#define MIX 0x9E3779B97F4A7C15ULL

/* Bands [band_lo, band_hi) of keys (n, bands), row-major, into out (n, bands): one pass over the rows per band
 * with an open-addressing table of the keys seen (at least twice as many slots as rows, so probes stay short).
 * Returns 0, or -1 when the table cannot be allocated. */
int64_t sluice_first_rows(const uint64_t *keys, int64_t n, int64_t bands, int64_t band_lo, int64_t band_hi,
                          int64_t *out) {
    int bits = 1;
    while ((1LL << bits) < 2 * n) bits++;
    int64_t size = 1LL << bits, mask = size - 1;
    uint64_t *seen_keys = malloc(size * sizeof(uint64_t));
    int64_t *seen_rows = malloc(size * sizeof(int64_t));
    if (!seen_keys || !seen_rows) {
        free(seen_keys);
        free(seen_rows);
        return -1;
    }
    for (int64_t j = band_lo; j < band_hi; j++) {
        for (int64_t s = 0; s < size; s++) seen_rows[s] = -1;
        for (int64_t i = 0; i < n; i++) {
            uint64_t k = keys[i * bands + j];
            int64_t slot = (int64_t)((k * MIX) >> (64 - bits));
            while (seen_rows[slot] != -1 && seen_keys[slot] != k) slot = (slot + 1) & mask;
            if (seen_rows[slot] == -1) {
                seen_keys[slot] = k;
                seen_rows[slot] = i;
            }
            out[i * bands + j] = seen_rows[slot];
        }
    }
    free(seen_keys);
    free(seen_rows);
    return 0;
}
