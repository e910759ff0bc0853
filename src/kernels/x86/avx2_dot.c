/*
 * avx2_dot.c -- AVX2 + FMA + F16C kernels for dense rows: fp16-row x fp32-vector products (T = 1),
 * fp16 panel decoding, the dot-form fp32 GEMM (T > 1, register-blocked 4 rows x 3 columns), axpy
 * and fp16 -> fp32 conversion; and the "avx2" kernel table (the LUT entries live in
 * avx2_lut.c).
 *
 * Every dot product keeps one 8-lane accumulator (element i in lane i % 8, a row's last k % 8
 * elements loaded with a lane mask) and ends with avx2_hsum, which combines the lanes in the
 * reference order; blocking over rows and columns only interleaves independent accumulators, so a
 * result does not depend on the block it was computed in. Tolerance against ref: kernels.h.
 */
#ifndef __AVX2__
#  error "avx2_dot.c must be compiled with -mavx2 -mfma -mf16c"
#endif

#include <string.h>

#include "core/core.h"
#include "kernels/kernels.h"
#include "kernels/x86/avx2_util.h"

/* ---- fp16 rows x vector ---- */

/* y[q] = W_q . x for the nr (1..8) rows p[q]. */
ANML_AVX2_INLINE void f16_rows(const uint16_t *const *p, int nr, int64_t k, const float *x,
                               float *y) {
    __m256 acc[8];
#pragma GCC unroll 8
    for (int q = 0; q < nr; q++) {
        acc[q] = _mm256_setzero_ps();
    }
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) {
        __m256 xv = _mm256_loadu_ps(x + i);
#pragma GCC unroll 8
        for (int q = 0; q < nr; q++) {
            __m256 wv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(p[q] + i)));
            acc[q] = _mm256_fmadd_ps(wv, xv, acc[q]);
        }
    }
    if (i < k) {
        __m256 xv = _mm256_maskload_ps(x + i, avx2_tail_mask(k - i));
        /* unrolled like the loop above, so that acc[] stays in registers */
#pragma GCC unroll 8
        for (int q = 0; q < nr; q++) {
            uint16_t t[8] = { 0 };
            memcpy(t, p[q] + i, (size_t)(k - i) * sizeof(uint16_t));
            __m256 wv = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)t));
            acc[q] = _mm256_fmadd_ps(wv, xv, acc[q]);
        }
    }
#pragma GCC unroll 8
    for (int q = 0; q < nr; q++) {
        y[q] = avx2_hsum(acc[q]);
    }
}

static void avx2_matvec_f16(const struct anml_wrows *w, int64_t r0, int64_t r1, const float *x,
                            float *y) {
    const uint16_t *p[8];
    int64_t r = r0;
    for (; r + 8 <= r1; r += 8) {
        for (int q = 0; q < 8; q++) {
            p[q] = w->f16 + (r + q) * w->ld;
        }
        f16_rows(p, 8, w->k, x, y + (r - r0));
    }
    for (; r < r1; r++) {
        p[0] = w->f16 + r * w->ld;
        f16_rows(p, 1, w->k, x, y + (r - r0));
    }
}

static void avx2_cvt_f16(const uint16_t *src, int64_t n, float *dst) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(
            dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(src + i))));
    }
    if (i < n) {
        anml__ref_f16_to_f32(src + i, n - i, dst + i);
    }
}

static void avx2_decode_f16(const struct anml_wrows *w, int64_t r0, int64_t r1, float *dst,
                            int64_t ldd) {
    for (int64_t r = r0; r < r1; r++) {
        avx2_cvt_f16(w->f16 + r * w->ld, w->k, dst + (r - r0) * ldd);
    }
}

/* ---- dot-form GEMM ---- */

/* The mr x nr (mr <= 4, nr <= 3) block of c at rows a[0..mr), columns b[0..nr). */
ANML_AVX2_INLINE void gemm_block(const float *a, int64_t lda, int mr, const float *b, int64_t ldb,
                                 int nr, int64_t k, float *c, int64_t rs_c, int64_t cs_c) {
    __m256 acc[4][3];
#pragma GCC unroll 4
    for (int r = 0; r < mr; r++) {
#pragma GCC unroll 3
        for (int j = 0; j < nr; j++) {
            acc[r][j] = _mm256_setzero_ps();
        }
    }
    int64_t i = 0;
    for (; i + 8 <= k; i += 8) {
        __m256 bv[3];
#pragma GCC unroll 3
        for (int j = 0; j < nr; j++) {
            bv[j] = _mm256_loadu_ps(b + j * ldb + i);
        }
#pragma GCC unroll 4
        for (int r = 0; r < mr; r++) {
            __m256 av = _mm256_loadu_ps(a + r * lda + i);
#pragma GCC unroll 3
            for (int j = 0; j < nr; j++) {
                acc[r][j] = _mm256_fmadd_ps(av, bv[j], acc[r][j]);
            }
        }
    }
    if (i < k) {
        __m256i m = avx2_tail_mask(k - i);
        __m256 bv[3];
#pragma GCC unroll 3
        for (int j = 0; j < nr; j++) {
            bv[j] = _mm256_maskload_ps(b + j * ldb + i, m);
        }
#pragma GCC unroll 4
        for (int r = 0; r < mr; r++) {
            __m256 av = _mm256_maskload_ps(a + r * lda + i, m);
#pragma GCC unroll 3
            for (int j = 0; j < nr; j++) {
                acc[r][j] = _mm256_fmadd_ps(av, bv[j], acc[r][j]);
            }
        }
    }
#pragma GCC unroll 4
    for (int r = 0; r < mr; r++) {
#pragma GCC unroll 3
        for (int j = 0; j < nr; j++) {
            c[r * rs_c + j * cs_c] = avx2_hsum(acc[r][j]);
        }
    }
}

/* Every row (blocks of 4, then single rows) against nr columns. */
ANML_AVX2_INLINE void gemm_cols(const float *a, int64_t lda, int64_t m, const float *b, int64_t ldb,
                                int nr, int64_t k, float *c, int64_t rs_c, int64_t cs_c) {
    int64_t i = 0;
    for (; i + 4 <= m; i += 4) {
        gemm_block(a + i * lda, lda, 4, b, ldb, nr, k, c + i * rs_c, rs_c, cs_c);
    }
    for (; i < m; i++) {
        gemm_block(a + i * lda, lda, 1, b, ldb, nr, k, c + i * rs_c, rs_c, cs_c);
    }
}

/* Columns outermost: the caller's a is a small decoded panel (a few rows, in L2) and b the
 * activations (T columns, larger); sweeping all rows for each 3-column block reads b once. */
static void avx2_gemm_f32(const float *a, int64_t lda, int64_t m, const float *b, int64_t ldb,
                          int64_t n, int64_t k, float *c, int64_t rs_c, int64_t cs_c) {
    int64_t j = 0;
    for (; j + 3 <= n; j += 3) {
        gemm_cols(a, lda, m, b + j * ldb, ldb, 3, k, c + j * cs_c, rs_c, cs_c);
    }
    for (; j < n; j++) {
        gemm_cols(a, lda, m, b + j * ldb, ldb, 1, k, c + j * cs_c, rs_c, cs_c);
    }
}

static void avx2_axpy_f32(int64_t n, float a, const float *x, float *y) {
    __m256 av = _mm256_set1_ps(a);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm256_storeu_ps(y + i,
                         _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    }
    for (; i < n; i++) {
        y[i] = __builtin_fmaf(a, x[i], y[i]);
    }
}

static void avx2_cvt_f32_f16(const float *src, int64_t n, uint16_t *dst) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        _mm_storeu_si128((__m128i *)(void *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    }
    for (; i < n; i++) {
        dst[i] = anml__fp32_to_fp16(src[i]);
    }
}

const struct anml_kernels anml__kernels_avx2 = {
    .name = "avx2",
    .matvec_f16 = avx2_matvec_f16,
    .matvec_lut4 = anml__avx2_matvec_lut4,
    .matvec_lut6 = anml__avx2_matvec_lut6,
    .matvec_lut8 = anml__avx2_matvec_lut8,
    .decode_f16 = avx2_decode_f16,
    .decode_lut4 = anml__avx2_decode_lut4,
    .decode_lut6 = anml__avx2_decode_lut6,
    .decode_lut8 = anml__avx2_decode_lut8,
    .gemm_f32 = avx2_gemm_f32,
    .axpy_f32 = avx2_axpy_f32,
    .cvt_f16 = avx2_cvt_f16,
    .cvt_f32_f16 = avx2_cvt_f32_f16,
};
