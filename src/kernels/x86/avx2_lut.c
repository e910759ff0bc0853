/*
 * avx2_lut.c -- AVX2 + FMA + F16C kernels for LUT-palettized weight rows (struct anml_wrows,
 * ANML_WFMT_LUT): fused decode + dot against one fp32 vector (T = 1) and decode into an fp32
 * panel (the T > 1 GEMM path), for 4-, 6- and 8-bit indices.
 *
 * A row group's fp16 table is prepared once per group: for 4 bits as two 16-byte planes (low and
 * high bytes of the 16 entries) that PSHUFB indexes 32 at a time, giving fp16 values that F16C
 * widens; for 6 and 8 bits as an fp32 table on the stack that VPGATHERDD reads. Indices are
 * streamed: 16 bytes per 32 elements (4 bits), 6 bytes per 8 (6 bits: two 24-bit groups of four
 * fields, split with PSHUFB and per-lane shifts), 8 bytes per 8 (8 bits).
 *
 * Each row keeps one 8-lane accumulator with element i in lane i % 8 and the reference's final
 * combination (kernels.h). Rows are interleaved four at a time so that the FMA chains overlap;
 * a row whose first index is not byte-aligned decodes its first few elements as scalars, then
 * continues aligned. A row's ops do not depend on its neighbours, so results are the same
 * whichever block or thread computes it.
 */
#ifndef __AVX2__
#  error "avx2_lut.c must be compiled with -mavx2 -mfma -mf16c"
#endif

#include <string.h>

#include "kernels/kernels.h"
#include "kernels/x86/avx2_util.h"

/* One row group's table in the forms the kernels read. */
struct lut_tab {
    __m256i lo, hi; /* 4 bits: the entries' low / high bytes, in both 128-bit lanes */
    _Alignas(32) float f[256];
    int64_t id; /* table number, -1 = none yet */
};

static void tab_init(struct lut_tab *t) {
    t->lo = t->hi = _mm256_setzero_si256();
    t->id = -1;
}

static void tab_prepare(struct lut_tab *t, const struct anml_wrows *w, int64_t id, int bits) {
    int n = 1 << bits;
    const uint16_t *src = w->lut + id * n;
    for (int e = 0; e < n; e += 8) {
        _mm256_store_ps(t->f + e,
                        _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(src + e))));
    }
    if (bits == 4) {
        uint8_t lo[16], hi[16];
        for (int e = 0; e < 16; e++) {
            lo[e] = (uint8_t)(src[e] & 0xffu);
            hi[e] = (uint8_t)(src[e] >> 8);
        }
        t->lo = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)lo));
        t->hi = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(const void *)hi));
    }
    t->id = id;
}

/* ---- decoding a step of elements (p is byte-aligned at the step's first element) ---- */

/* 32 four-bit fields (16 bytes) -> elements 0-7, 8-15, 16-23, 24-31. */
ANML_AVX2_INLINE void dec4_32(const uint8_t *p, const struct lut_tab *t, __m256 f[4]) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i m = _mm_set1_epi8(0x0f);
    __m128i lo = _mm_and_si128(v, m);                    /* even elements */
    __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), m); /* odd elements */
    __m256i idx = _mm256_set_m128i(_mm_unpackhi_epi8(lo, hi), _mm_unpacklo_epi8(lo, hi));
    __m256i bl = _mm256_shuffle_epi8(t->lo, idx);
    __m256i bh = _mm256_shuffle_epi8(t->hi, idx);
    __m256i h0 = _mm256_unpacklo_epi8(bl, bh); /* fp16 of elements 0-7 | 16-23 */
    __m256i h1 = _mm256_unpackhi_epi8(bl, bh); /* 8-15 | 24-31 */
    f[0] = _mm256_cvtph_ps(_mm256_castsi256_si128(h0));
    f[1] = _mm256_cvtph_ps(_mm256_castsi256_si128(h1));
    f[2] = _mm256_cvtph_ps(_mm256_extracti128_si256(h0, 1));
    f[3] = _mm256_cvtph_ps(_mm256_extracti128_si256(h1, 1));
}

/* 8 four-bit fields (4 bytes). */
ANML_AVX2_INLINE __m256 dec4_8(const uint8_t *p, const struct lut_tab *t) {
    uint32_t u;
    memcpy(&u, p, 4);
    __m128i v = _mm_cvtsi32_si128((int)u);
    __m128i m = _mm_set1_epi8(0x0f);
    __m128i idx = _mm_unpacklo_epi8(_mm_and_si128(v, m), _mm_and_si128(_mm_srli_epi16(v, 4), m));
    __m128i bl = _mm_shuffle_epi8(_mm256_castsi256_si128(t->lo), idx);
    __m128i bh = _mm_shuffle_epi8(_mm256_castsi256_si128(t->hi), idx);
    return _mm256_cvtph_ps(_mm_unpacklo_epi8(bl, bh));
}

/* 8 six-bit fields from the low 6 bytes of v. */
ANML_AVX2_INLINE __m256 dec6_8v(__m128i v, const struct lut_tab *t) {
    const __m256i ctrl = _mm256_setr_epi8(0, 1, 2, -1, 0, 1, 2, -1, 0, 1, 2, -1, 0, 1, 2, -1, 3, 4,
                                          5, -1, 3, 4, 5, -1, 3, 4, 5, -1, 3, 4, 5, -1);
    __m256i d = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(v), ctrl);
    d = _mm256_srlv_epi32(d, _mm256_setr_epi32(0, 6, 12, 18, 0, 6, 12, 18));
    d = _mm256_and_si256(d, _mm256_set1_epi32(63));
    return _mm256_i32gather_ps(t->f, d, 4);
}

/* 8 six-bit fields, reading 8 bytes (the caller checked that 8 are there). */
ANML_AVX2_INLINE __m256 dec6_8_wide(const uint8_t *p, const struct lut_tab *t) {
    return dec6_8v(_mm_loadl_epi64((const __m128i *)(const void *)p), t);
}

/* 8 six-bit fields, reading exactly 6 bytes. */
ANML_AVX2_INLINE __m256 dec6_8_exact(const uint8_t *p, const struct lut_tab *t) {
    uint64_t u = 0;
    memcpy(&u, p, 6);
    return dec6_8v(_mm_cvtsi64_si128((long long)u), t);
}

/* 8 eight-bit fields. */
ANML_AVX2_INLINE __m256 dec8_8(const uint8_t *p, const struct lut_tab *t) {
    __m256i idx = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)p));
    return _mm256_i32gather_ps(t->f, idx, 4);
}

/* The last n (< 8) elements from field e on, zero-padded, as scalars. */
ANML_AVX2_INLINE __m256 dec_tail(const uint8_t *p, int bits, int64_t e, int64_t n,
                                 const struct lut_tab *t) {
    _Alignas(32) float buf[8] = { 0 };
    for (int64_t j = 0; j < n; j++) {
        buf[j] = t->f[anml__kern_field(p, bits, e + j)];
    }
    return _mm256_load_ps(buf);
}

/* Fields to decode as scalars before field e0 of the stream is byte-aligned. */
static int64_t misaligned_prefix(int64_t e0, int bits) {
    int64_t n = 0;
    while ((((e0 + n) * bits) & 7) != 0) {
        n++;
    }
    return n;
}

/* ---- fused decode + dot ---- */

/* acc[q] += W_q[0..k) . x[0..k) for nr (1 or 4) rows whose fields start byte-aligned at p[q]. */
ANML_AVX2_INLINE void lut_dot_body(const uint8_t *const *p, int nr, int bits, int64_t k,
                                   const float *x, const struct lut_tab *t, __m256 *acc) {
    int64_t i = 0;
    if (bits == 4) {
        for (; i + 32 <= k; i += 32) {
            __m256 x0 = _mm256_loadu_ps(x + i), x1 = _mm256_loadu_ps(x + i + 8);
            __m256 x2 = _mm256_loadu_ps(x + i + 16), x3 = _mm256_loadu_ps(x + i + 24);
#pragma GCC unroll 4
            for (int q = 0; q < nr; q++) {
                __m256 f[4];
                dec4_32(p[q] + i / 2, t, f);
                acc[q] = _mm256_fmadd_ps(f[0], x0, acc[q]);
                acc[q] = _mm256_fmadd_ps(f[1], x1, acc[q]);
                acc[q] = _mm256_fmadd_ps(f[2], x2, acc[q]);
                acc[q] = _mm256_fmadd_ps(f[3], x3, acc[q]);
            }
        }
        for (; i + 8 <= k; i += 8) {
            __m256 xv = _mm256_loadu_ps(x + i);
#pragma GCC unroll 4
            for (int q = 0; q < nr; q++) {
                acc[q] = _mm256_fmadd_ps(dec4_8(p[q] + i / 2, t), xv, acc[q]);
            }
        }
    } else if (bits == 6) {
        /* wide loads while at least 8 bytes of the row remain (11 fields = 66 bits) */
        for (; i + 11 <= k; i += 8) {
            __m256 xv = _mm256_loadu_ps(x + i);
#pragma GCC unroll 4
            for (int q = 0; q < nr; q++) {
                acc[q] = _mm256_fmadd_ps(dec6_8_wide(p[q] + i / 8 * 6, t), xv, acc[q]);
            }
        }
        for (; i + 8 <= k; i += 8) {
            __m256 xv = _mm256_loadu_ps(x + i);
#pragma GCC unroll 4
            for (int q = 0; q < nr; q++) {
                acc[q] = _mm256_fmadd_ps(dec6_8_exact(p[q] + i / 8 * 6, t), xv, acc[q]);
            }
        }
    } else {
        for (; i + 8 <= k; i += 8) {
            __m256 xv = _mm256_loadu_ps(x + i);
#pragma GCC unroll 4
            for (int q = 0; q < nr; q++) {
                acc[q] = _mm256_fmadd_ps(dec8_8(p[q] + i, t), xv, acc[q]);
            }
        }
    }
    if (i < k) {
        __m256 xv = _mm256_maskload_ps(x + i, avx2_tail_mask(k - i));
        /* unrolled like the loops above, so that acc[] stays in registers */
#pragma GCC unroll 4
        for (int q = 0; q < nr; q++) {
            acc[q] = _mm256_fmadd_ps(dec_tail(p[q], bits, i, k - i, t), xv, acc[q]);
        }
    }
}

/* Row r alone (any alignment). */
ANML_AVX2_INLINE float lut_dot_row(const struct anml_wrows *w, int bits, int64_t r, const float *x,
                                   const struct lut_tab *t) {
    int64_t e0 = r * w->k;
    int64_t pre = misaligned_prefix(e0, bits);
    pre = pre < w->k ? pre : w->k;
    __m256 acc = _mm256_setzero_ps();
    if (pre > 0) {
        __m256 xv = _mm256_maskload_ps(x, avx2_tail_mask(pre));
        acc = _mm256_fmadd_ps(dec_tail(w->idx, bits, e0, pre, t), xv, acc);
    }
    const uint8_t *p = w->idx + (((e0 + pre) * bits) >> 3);
    lut_dot_body(&p, 1, bits, w->k - pre, x + pre, t, &acc);
    return avx2_hsum(acc);
}

ANML_AVX2_INLINE void matvec_lut(const struct anml_wrows *w, int64_t r0, int64_t r1, const float *x,
                                 float *y, int bits) {
    struct lut_tab t;
    tab_init(&t);
    /* all rows start byte-aligned when a row is a whole number of bytes */
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

void anml__avx2_matvec_lut4(const struct anml_wrows *w, int64_t r0, int64_t r1, const float *x,
                            float *y) {
    matvec_lut(w, r0, r1, x, y, 4);
}

void anml__avx2_matvec_lut6(const struct anml_wrows *w, int64_t r0, int64_t r1, const float *x,
                            float *y) {
    matvec_lut(w, r0, r1, x, y, 6);
}

void anml__avx2_matvec_lut8(const struct anml_wrows *w, int64_t r0, int64_t r1, const float *x,
                            float *y) {
    matvec_lut(w, r0, r1, x, y, 8);
}

/* ---- decoding rows into an fp32 panel ---- */

ANML_AVX2_INLINE void decode_lut(const struct anml_wrows *w, int64_t r0, int64_t r1, float *dst,
                                 int64_t ldd, int bits) {
    struct lut_tab t;
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
        int64_t n = k - pre, i = 0;
        o += pre;
        if (bits == 4) {
            for (; i + 32 <= n; i += 32) {
                __m256 f[4];
                dec4_32(p + i / 2, &t, f);
                for (int s = 0; s < 4; s++) {
                    _mm256_storeu_ps(o + i + 8 * s, f[s]);
                }
            }
            for (; i + 8 <= n; i += 8) {
                _mm256_storeu_ps(o + i, dec4_8(p + i / 2, &t));
            }
        } else if (bits == 6) {
            for (; i + 11 <= n; i += 8) {
                _mm256_storeu_ps(o + i, dec6_8_wide(p + i / 8 * 6, &t));
            }
            for (; i + 8 <= n; i += 8) {
                _mm256_storeu_ps(o + i, dec6_8_exact(p + i / 8 * 6, &t));
            }
        } else {
            for (; i + 8 <= n; i += 8) {
                _mm256_storeu_ps(o + i, dec8_8(p + i, &t));
            }
        }
        for (; i < n; i++) {
            o[i] = t.f[anml__kern_field(p, bits, i)];
        }
    }
}

void anml__avx2_decode_lut4(const struct anml_wrows *w, int64_t r0, int64_t r1, float *dst,
                            int64_t ldd) {
    decode_lut(w, r0, r1, dst, ldd, 4);
}

void anml__avx2_decode_lut6(const struct anml_wrows *w, int64_t r0, int64_t r1, float *dst,
                            int64_t ldd) {
    decode_lut(w, r0, r1, dst, ldd, 6);
}

void anml__avx2_decode_lut8(const struct anml_wrows *w, int64_t r0, int64_t r1, float *dst,
                            int64_t ldd) {
    decode_lut(w, r0, r1, dst, ldd, 8);
}
