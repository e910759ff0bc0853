/*
 * avx512_lut.c -- AVX-512 (F, BW, VL, VBMI) versions of the LUT-row kernels for 6- and 8-bit
 * indices: fused decode + dot (T = 1) and panel decoding. The "avx512" kernel set is the avx2 set
 * with these in place of its 6- and 8-bit LUT entries (dispatch.c); 4-bit rows keep the AVX2
 * PSHUFB kernels, which measured faster here than a VPERMW version.
 *
 * The win over AVX2 is the table lookup: a row group's fp16 table lives in zmm registers and
 * VPERMT2W looks up 32 entries per instruction (64 entries: one VPERMT2W; 256: four and a
 * two-level blend on index bits 6 and 7), where AVX2 needs one gather per 8 entries (about 2.5x
 * faster on Zen 4, bench_conv). Indices are widened to 16-bit words first: 8-bit by VPMOVZXBW,
 * 6-bit by a VPERMB byte gather (the two bytes holding each field) and per-word shifts.
 *
 * Arithmetic is the avx2 kernels' exactly: the 32 decoded fp16 values are widened in four
 * groups of 8 and accumulated with 256-bit FMAs in one 8-lane accumulator per row (element i in
 * lane i % 8), the last partial group zero-padded and empty groups skipped, then combined in the
 * reference order; so results equal the avx2 set's bit for bit (kernels.h).
 */
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512VL__) || \
    !defined(__AVX512VBMI__)
#  error "avx512_lut.c must be compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vbmi"
#endif

#include <string.h>

#include "kernels/kernels.h"
#include "kernels/x86/avx2_util.h"

/* One row group's table: fp16 entries in zmm registers (32 per register), and in fp32 for the
 * scalar prefix of unaligned rows. */
struct tab512 {
    __m512i t[8];
    _Alignas(64) float f[256];
    int64_t id;
};

static void tab_init(struct tab512 *t) {
    for (int i = 0; i < 8; i++) {
        t->t[i] = _mm512_setzero_si512();
    }
    t->id = -1;
}

static void tab_prepare(struct tab512 *t, const struct anml_wrows *w, int64_t id, int bits) {
    int n = 1 << bits;
    const uint16_t *src = w->lut + id * n;
    for (int v = 0; v * 32 < n; v++) {
        __mmask32 m = n - v * 32 >= 32 ? 0xffffffffu : (1u << (n - v * 32)) - 1u;
        t->t[v] = _mm512_maskz_loadu_epi16(m, src + v * 32);
    }
    for (int e = 0; e < n; e += 8) {
        _mm256_store_ps(t->f + e,
                        _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(src + e))));
    }
    t->id = id;
}

/* ---- 32 index fields -> 32 fp16 words ---- */

/* VPERMB controls and per-word shifts that widen packed fields to words: word j takes the
 * little-endian pair of bytes holding field j, shifted right by its bit offset. */
static const uint8_t k_ctrl6[64] = {
    0,  1,  0,  1,  1,  2,  2,  3,  3,  4,  3,  4,  4,  5,  5,  6,  6,  7,  6,  7,  7,  8,
    8,  9,  9,  10, 9,  10, 10, 11, 11, 12, 12, 13, 12, 13, 13, 14, 14, 15, 15, 16, 15, 16,
    16, 17, 17, 18, 18, 19, 18, 19, 19, 20, 20, 21, 21, 22, 21, 22, 22, 23, 23, 24,
};
static const uint16_t k_shift6[32] = { 0, 6, 4, 2, 0, 6, 4, 2, 0, 6, 4, 2, 0, 6, 4, 2,
                                       0, 6, 4, 2, 0, 6, 4, 2, 0, 6, 4, 2, 0, 6, 4, 2 };

/* The n (1..32) 6- or 8-bit fields at p (byte-aligned) as fp16 words; words n..31 are zero. Reads only the
 * bytes holding the n fields. */
ANML_AVX2_INLINE __m512i dec32(const uint8_t *p, int64_t n, int bits, const struct tab512 *t) {
    __mmask64 bytes = (__mmask64)-1 >> (64 - (n * bits + 7) / 8);
    __m512i h;
    if (bits == 8) {
        __m512i idx = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8((__mmask32)bytes, p));
        __m512i p0 = _mm512_permutex2var_epi16(t->t[0], idx, t->t[1]);
        __m512i p1 = _mm512_permutex2var_epi16(t->t[2], idx, t->t[3]);
        __m512i p2 = _mm512_permutex2var_epi16(t->t[4], idx, t->t[5]);
        __m512i p3 = _mm512_permutex2var_epi16(t->t[6], idx, t->t[7]);
        __mmask32 b6 = _mm512_test_epi16_mask(idx, _mm512_set1_epi16(0x40));
        __mmask32 b7 = _mm512_test_epi16_mask(idx, _mm512_set1_epi16(0x80));
        __m512i lo = _mm512_mask_mov_epi16(p0, b6, p1);
        __m512i hi = _mm512_mask_mov_epi16(p2, b6, p3);
        h = _mm512_mask_mov_epi16(lo, b7, hi);
    } else {
        __m512i src = _mm512_maskz_loadu_epi8(bytes, p);
        __m512i idx = _mm512_permutexvar_epi8(_mm512_loadu_si512(k_ctrl6), src);
        idx = _mm512_srlv_epi16(idx, _mm512_loadu_si512(k_shift6));
        idx = _mm512_and_si512(idx, _mm512_set1_epi16(63));
        h = _mm512_permutex2var_epi16(t->t[0], idx, t->t[1]);
    }
    return n >= 32 ? h : _mm512_maskz_mov_epi16((__mmask32)((1u << n) - 1u), h);
}

/* acc += the first n (1..32) decoded values . x[0..n), in groups of 8 (empty groups skipped, the
 * partial one zero-padded): the avx2 kernels' sequence of FMAs. */
ANML_AVX2_INLINE __m256 fma32(__m512i h, const float *x, int64_t n, __m256 acc) {
    __m256i lo = _mm512_castsi512_si256(h), hi = _mm512_extracti64x4_epi64(h, 1);
    __m128i q[4] = { _mm256_castsi256_si128(lo), _mm256_extracti128_si256(lo, 1),
                     _mm256_castsi256_si128(hi), _mm256_extracti128_si256(hi, 1) };
    for (int g = 0; g < 4 && 8 * g < n; g++) {
        int64_t m = n - 8 * g;
        __m256 xv = m >= 8 ? _mm256_loadu_ps(x + 8 * g)
                           : _mm256_maskz_loadu_ps((__mmask8)((1u << m) - 1u), x + 8 * g);
        acc = _mm256_fmadd_ps(_mm256_cvtph_ps(q[g]), xv, acc);
    }
    return acc;
}

/* The scalar prefix that makes field e0 + pre byte-aligned. */
static int64_t misaligned_prefix(int64_t e0, int bits) {
    int64_t n = 0;
    while ((((e0 + n) * bits) & 7) != 0) {
        n++;
    }
    return n;
}

/* ---- fused decode + dot ---- */

/* acc[q] += W_q . x over k elements for nr (1 or 4) rows starting byte-aligned at p[q]. */
ANML_AVX2_INLINE void lut_dot_body(const uint8_t *const *p, int nr, int bits, int64_t k,
                                   const float *x, const struct tab512 *t, __m256 *acc) {
    for (int64_t i = 0; i < k; i += 32) {
        int64_t n = k - i < 32 ? k - i : 32;
#pragma GCC unroll 4
        for (int q = 0; q < nr; q++) {
            acc[q] = fma32(dec32(p[q] + i / 8 * bits, n, bits, t), x + i, n, acc[q]);
        }
    }
}

ANML_AVX2_INLINE float lut_dot_row(const struct anml_wrows *w, int bits, int64_t r, const float *x,
                                   const struct tab512 *t) {
    int64_t e0 = r * w->k;
    int64_t pre = misaligned_prefix(e0, bits);
    pre = pre < w->k ? pre : w->k;
    __m256 acc = _mm256_setzero_ps();
    if (pre > 0) {
        _Alignas(32) float buf[8] = { 0 };
        for (int64_t j = 0; j < pre; j++) {
            buf[j] = t->f[anml__kern_field(w->idx, bits, e0 + j)];
        }
        __m256 xv = _mm256_maskz_loadu_ps((__mmask8)((1u << pre) - 1u), x);
        acc = _mm256_fmadd_ps(_mm256_load_ps(buf), xv, acc);
    }
    const uint8_t *p = w->idx + (((e0 + pre) * bits) >> 3);
    lut_dot_body(&p, 1, bits, w->k - pre, x + pre, t, &acc);
    return avx2_hsum(acc);
}

ANML_AVX2_INLINE void matvec_lut(const struct anml_wrows *w, int64_t r0, int64_t r1, const float *x,
                                 float *y, int bits) {
    struct tab512 t;
    tab_init(&t);
    bool aligned = ((w->k * bits) & 7) == 0;
    int64_t r = r0;
    while (r < r1) {
        int64_t id = r / w->rows_per_table;
        if (id != t.id) {
            tab_prepare(&t, w, id, bits);
        }
        int64_t end = (id + 1) * w->rows_per_table;
        end = end < r1 ? end : r1;
        if (aligned) {
            for (; r + 4 <= end; r += 4) {
                const uint8_t *p[4];
                __m256 acc[4];
                for (int q = 0; q < 4; q++) {
                    p[q] = w->idx + (((r + q) * w->k * bits) >> 3);
                    acc[q] = _mm256_setzero_ps();
                }
                lut_dot_body(p, 4, bits, w->k, x, &t, acc);
                for (int q = 0; q < 4; q++) {
                    y[r + q - r0] = avx2_hsum(acc[q]);
                }
            }
        }
        for (; r < end; r++) {
            y[r - r0] = lut_dot_row(w, bits, r, x, &t);
        }
    }
}

void anml__avx512_matvec_lut6(const struct anml_wrows *w, int64_t r0, int64_t r1, const float *x,
                              float *y) {
    matvec_lut(w, r0, r1, x, y, 6);
}

void anml__avx512_matvec_lut8(const struct anml_wrows *w, int64_t r0, int64_t r1, const float *x,
                              float *y) {
    matvec_lut(w, r0, r1, x, y, 8);
}

/* ---- decoding rows into an fp32 panel ---- */

ANML_AVX2_INLINE void decode_lut(const struct anml_wrows *w, int64_t r0, int64_t r1, float *dst,
                                 int bits) {
    struct tab512 t;
    tab_init(&t);
    int64_t k = w->k;
    for (int64_t r = r0; r < r1; r++) {
        int64_t id = r / w->rows_per_table;
        if (id != t.id) {
            tab_prepare(&t, w, id, bits);
        }
        float *o = dst + (r - r0) * k;
        int64_t e0 = r * k;
        int64_t pre = misaligned_prefix(e0, bits);
        pre = pre < k ? pre : k;
        for (int64_t j = 0; j < pre; j++) {
            o[j] = t.f[anml__kern_field(w->idx, bits, e0 + j)];
        }
        const uint8_t *p = w->idx + (((e0 + pre) * bits) >> 3);
        int64_t n = k - pre;
        o += pre;
        for (int64_t i = 0; i < n; i += 32) {
            int64_t m = n - i < 32 ? n - i : 32;
            __m512i h = dec32(p + i / 8 * bits, m, bits, &t);
            __m512 f0 = _mm512_cvtph_ps(_mm512_castsi512_si256(h));
            __m512 f1 = _mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1));
            if (m == 32) {
                _mm512_storeu_ps(o + i, f0);
                _mm512_storeu_ps(o + i + 16, f1);
            } else {
                __mmask32 mm = (__mmask32)((1u << m) - 1u);
                _mm512_mask_storeu_ps(o + i, (__mmask16)mm, f0);
                _mm512_mask_storeu_ps(o + i + 16, (__mmask16)(mm >> 16), f1);
            }
        }
    }
}

void anml__avx512_decode_lut6(const struct anml_wrows *w, int64_t r0, int64_t r1, float *dst) {
    decode_lut(w, r0, r1, dst, 6);
}

void anml__avx512_decode_lut8(const struct anml_wrows *w, int64_t r0, int64_t r1, float *dst) {
    decode_lut(w, r0, r1, dst, 8);
}
