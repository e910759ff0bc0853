/*
 * avx512_lut.c -- AVX-512 (F, BW, VL, VBMI) versions of the LUT-row kernels for 6- and 8-bit
 * indices: fused decode + dot (T = 1) and panel decoding. The "avx512" kernel set is the avx2 set
 * with these in place of its 6- and 8-bit LUT entries (dispatch.c); 4-bit rows keep the AVX2
 * PSHUFB kernels, which measured faster on Zen 4 than this scheme with 4-bit fields.
 *
 * The table lookup is done on bytes, 64 elements at a time: a row group's fp16 table is kept as
 * two byte planes (the entries' low and high bytes) in zmm registers, VPERMB looks up 64 entries
 * of a 64-byte plane per instruction (6-bit tables), VPERMT2B 128 entries (8-bit: two per plane
 * and a blend on index bit 7), and VPUNPCK{L,H}BW zips the planes back into fp16 words. AVX2
 * needs one gather per 8 entries; this is about 3x faster on Zen 4 (bench_conv). Packed 6-bit
 * fields are widened to bytes by a VPERMB that puts each group of 8 fields (6 bytes) in its own
 * qword and a VPMULTISHIFTQB that extracts field j from bit offset 6j.
 *
 * Arithmetic is the avx2 kernels' exactly: the decoded fp16 values are widened in groups of 8 and
 * accumulated in element order with 256-bit FMAs in one 8-lane accumulator per row (element i in
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

/* One row group's table: byte planes (lo[0] / hi[0] for 64 entries; 8 bits: entries
 * 64 * i .. 64 * i + 63 in lo[i] / hi[i]), and fp32 entries for the scalar prefix of rows that
 * do not start on a byte boundary. */
struct tab512 {
    __m512i lo[4], hi[4];
    _Alignas(64) float f[256];
    int64_t id;
};

static void tab_init(struct tab512 *t) {
    for (int i = 0; i < 4; i++) {
        t->lo[i] = t->hi[i] = _mm512_setzero_si512();
    }
    t->id = -1;
}

static void tab_prepare(struct tab512 *t, const struct anml_wrows *w, int64_t id, int bits) {
    int n = 1 << bits;
    const uint16_t *src = w->lut + id * n;
    _Alignas(64) uint8_t lo[256] = { 0 }, hi[256] = { 0 };
    for (int e = 0; e < n; e += 16) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(src + e));
        _mm_store_si128((__m128i *)(void *)(lo + e), _mm256_cvtepi16_epi8(v));
        _mm_store_si128((__m128i *)(void *)(hi + e), _mm256_cvtepi16_epi8(_mm256_srli_epi16(v, 8)));
        _mm256_store_ps(t->f + e, _mm256_cvtph_ps(_mm256_castsi256_si128(v)));
        _mm256_store_ps(t->f + e + 8, _mm256_cvtph_ps(_mm256_extracti128_si256(v, 1)));
    }
    for (int i = 0; i < 4; i++) {
        t->lo[i] = _mm512_load_si512(lo + 64 * i);
        t->hi[i] = _mm512_load_si512(hi + 64 * i);
    }
    t->id = id;
}

/* ---- 64 index fields -> 64 fp16 values ---- */

/* The VPERMB control putting 6-bit fields 8q .. 8q + 7 (bytes 6q .. 6q + 5) into qword q (its
 * last two bytes repeat byte 6q + 5 and are never used), and the VPMULTISHIFTQB offsets of field
 * j within its qword. */
static const uint8_t k_qw6[64] = {
    0,  1,  2,  3,  4,  5,  5,  5,  6,  7,  8,  9,  10, 11, 11, 11, 12, 13, 14, 15, 16, 17,
    17, 17, 18, 19, 20, 21, 22, 23, 23, 23, 24, 25, 26, 27, 28, 29, 29, 29, 30, 31, 32, 33,
    34, 35, 35, 35, 36, 37, 38, 39, 40, 41, 41, 41, 42, 43, 44, 45, 46, 47, 47, 47,
};
static const uint8_t k_shift6[8] = { 0, 6, 12, 18, 24, 30, 36, 42 };

/* The n (1..64) 6- or 8-bit fields at p (byte-aligned) as fp16 values in 8 groups of 8: q[g] holds elements
 * 8g .. 8g + 7; values past n are zero. Reads only the bytes that hold the n fields. */
ANML_AVX2_INLINE void dec64(const uint8_t *p, int64_t n, int bits, const struct tab512 *t,
                            __m128i q[8]) {
    int64_t nbytes = (n * bits + 7) / 8;
    __m512i src = _mm512_maskz_loadu_epi8((__mmask64)-1 >> (64 - nbytes), p);
    __m512i idx;
    if (bits == 8) {
        idx = src;
    } else {
        uint64_t sh;
        memcpy(&sh, k_shift6, 8);
        idx = _mm512_permutexvar_epi8(_mm512_loadu_si512(k_qw6), src);
        idx = _mm512_multishift_epi64_epi8(_mm512_set1_epi64((long long)sh), idx);
    }
    __m512i lo, hi;
    if (bits == 8) {
        __mmask64 b7 = _mm512_movepi8_mask(idx);
        lo = _mm512_mask_blend_epi8(b7, _mm512_permutex2var_epi8(t->lo[0], idx, t->lo[1]),
                                    _mm512_permutex2var_epi8(t->lo[2], idx, t->lo[3]));
        hi = _mm512_mask_blend_epi8(b7, _mm512_permutex2var_epi8(t->hi[0], idx, t->hi[1]),
                                    _mm512_permutex2var_epi8(t->hi[2], idx, t->hi[3]));
    } else {
        /* VPERMB uses the low 6 bits of each index byte, exactly the field */
        lo = _mm512_permutexvar_epi8(idx, t->lo[0]);
        hi = _mm512_permutexvar_epi8(idx, t->hi[0]);
    }
    if (n < 64) {
        __mmask64 keep = (__mmask64)-1 >> (64 - n);
        lo = _mm512_maskz_mov_epi8(keep, lo);
        hi = _mm512_maskz_mov_epi8(keep, hi);
    }
    /* per 128-bit lane L: a holds elements 16L .. 16L + 7, b holds 16L + 8 .. 16L + 15 */
    __m512i a = _mm512_unpacklo_epi8(lo, hi), b = _mm512_unpackhi_epi8(lo, hi);
    q[0] = _mm512_castsi512_si128(a);
    q[1] = _mm512_castsi512_si128(b);
    q[2] = _mm512_extracti32x4_epi32(a, 1);
    q[3] = _mm512_extracti32x4_epi32(b, 1);
    q[4] = _mm512_extracti32x4_epi32(a, 2);
    q[5] = _mm512_extracti32x4_epi32(b, 2);
    q[6] = _mm512_extracti32x4_epi32(a, 3);
    q[7] = _mm512_extracti32x4_epi32(b, 3);
}

/* acc += the first n (1..64) decoded values . x[0..n), group by group in element order (empty
 * groups skipped, the partial one zero-padded): the avx2 kernels' sequence of FMAs. */
ANML_AVX2_INLINE __m256 fma64(const __m128i q[8], const float *x, int64_t n, __m256 acc) {
    for (int g = 0; g < 8 && 8 * g < n; g++) {
        int64_t m = n - 8 * g;
        __m256 xv = m >= 8 ? _mm256_loadu_ps(x + 8 * g)
                           : _mm256_maskz_loadu_ps((__mmask8)((1u << m) - 1u), x + 8 * g);
        acc = _mm256_fmadd_ps(_mm256_cvtph_ps(q[g]), xv, acc);
    }
    return acc;
}

/* The same for a whole block of 64, written out so that q stays in registers. */
ANML_AVX2_INLINE __m256 fma64_full(const __m128i q[8], const float *x, __m256 acc) {
    acc = _mm256_fmadd_ps(_mm256_cvtph_ps(q[0]), _mm256_loadu_ps(x), acc);
    acc = _mm256_fmadd_ps(_mm256_cvtph_ps(q[1]), _mm256_loadu_ps(x + 8), acc);
    acc = _mm256_fmadd_ps(_mm256_cvtph_ps(q[2]), _mm256_loadu_ps(x + 16), acc);
    acc = _mm256_fmadd_ps(_mm256_cvtph_ps(q[3]), _mm256_loadu_ps(x + 24), acc);
    acc = _mm256_fmadd_ps(_mm256_cvtph_ps(q[4]), _mm256_loadu_ps(x + 32), acc);
    acc = _mm256_fmadd_ps(_mm256_cvtph_ps(q[5]), _mm256_loadu_ps(x + 40), acc);
    acc = _mm256_fmadd_ps(_mm256_cvtph_ps(q[6]), _mm256_loadu_ps(x + 48), acc);
    return _mm256_fmadd_ps(_mm256_cvtph_ps(q[7]), _mm256_loadu_ps(x + 56), acc);
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
    int64_t i = 0;
    for (; i + 64 <= k; i += 64) {
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            __m128i q[8];
            dec64(p[r] + i / 8 * bits, 64, bits, t, q);
            acc[r] = fma64_full(q, x + i, acc[r]);
        }
    }
    if (i < k) {
        /* unrolled like the loop above, so that acc[] stays in registers */
#pragma GCC unroll 4
        for (int r = 0; r < nr; r++) {
            __m128i q[8];
            dec64(p[r] + i / 8 * bits, k - i, bits, t, q);
            acc[r] = fma64(q, x + i, k - i, acc[r]);
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
                                 int64_t ldd, int bits) {
    struct tab512 t;
    tab_init(&t);
    int64_t k = w->k;
    for (int64_t r = r0; r < r1; r++) {
        int64_t id = r / w->rows_per_table;
        if (id != t.id) {
            tab_prepare(&t, w, id, bits);
        }
        float *o = dst + (r - r0) * ldd;
        int64_t e0 = r * k;
        int64_t pre = misaligned_prefix(e0, bits);
        pre = pre < k ? pre : k;
        for (int64_t j = 0; j < pre; j++) {
            o[j] = t.f[anml__kern_field(w->idx, bits, e0 + j)];
        }
        const uint8_t *p = w->idx + (((e0 + pre) * bits) >> 3);
        int64_t n = k - pre;
        o += pre;
        for (int64_t i = 0; i < n; i += 64) {
            int64_t m = n - i < 64 ? n - i : 64;
            __m128i q[8];
            dec64(p + i / 8 * bits, m, bits, &t, q);
            for (int g = 0; g < 8 && 8 * g < m; g++) {
                __m256 f = _mm256_cvtph_ps(q[g]);
                if (m - 8 * g >= 8) {
                    _mm256_storeu_ps(o + i + 8 * g, f);
                } else {
                    _mm256_mask_storeu_ps(o + i + 8 * g, (__mmask8)((1u << (m - 8 * g)) - 1u), f);
                }
            }
        }
    }
}

void anml__avx512_decode_lut6(const struct anml_wrows *w, int64_t r0, int64_t r1, float *dst,
                              int64_t ldd) {
    decode_lut(w, r0, r1, dst, ldd, 6);
}

void anml__avx512_decode_lut8(const struct anml_wrows *w, int64_t r0, int64_t r1, float *dst,
                              int64_t ldd) {
    decode_lut(w, r0, r1, dst, ldd, 8);
}
