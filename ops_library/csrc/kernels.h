/* Sluice's C kernels: plain C99 over caller-owned numpy buffers, loaded by ops_library/native_kernels.py through
 * ctypes (which releases the GIL for each call, so Python threads run the chunks of one job side by side). Every
 * kernel computes exactly what the numpy fallback it replaces computes, bit for bit (tests compare them). */
#ifndef SLUICE_KERNELS_H
#define SLUICE_KERNELS_H

#include <stdint.h>

/* Bumped whenever a kernel's arguments or results change: a library built from older sources is not loaded. */
#define SLUICE_KERNELS_ABI 1

/* A hot loop compiled for AVX2 beside the baseline, picked at load time (GCC function multiversioning). */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#define SLUICE_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define SLUICE_CLONES
#endif

int64_t sluice_kernels_abi(void);

int64_t sluice_minhash_bytes(const uint8_t *data, const int64_t *offsets, int64_t first, int64_t last, uint8_t sep,
                             int32_t keep_empty, int64_t window, int32_t oph, const uint64_t *a, const uint64_t *b,
                             int64_t num_perm, uint32_t *signatures, int64_t *shingles, int64_t rows, int64_t bands,
                             uint64_t *keys);

int64_t sluice_class_counts(const uint8_t *data, const int64_t *offsets, int64_t first, int64_t last,
                            const uint8_t *table, int64_t *total, int64_t *hits);

int64_t sluice_refined_word_counts(const uint8_t *data, const int64_t *offsets, int64_t first, int64_t last,
                                   const uint8_t *special, int64_t *out);

int64_t sluice_rep_ratios(const uint8_t *data, const int64_t *offsets, int64_t first, int64_t last, int64_t n,
                          uint64_t roll, double *out, uint8_t *collided);

int64_t sluice_drop_class(const uint8_t *data, const int64_t *offsets, int64_t n_texts, const uint8_t *remove,
                          const uint8_t *strip, uint8_t *out, int64_t *out_offsets);

int64_t sluice_first_rows(const uint64_t *keys, int64_t n, int64_t bands, int64_t band_lo, int64_t band_hi,
                          int64_t *out);

#endif
