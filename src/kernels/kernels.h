/*
 * kernels.h -- the compute kernels under the op implementations (src/ops): dot products, the
 * weight-row kernels of conv/linear (dense fp16 or LUT-palettized rows times fp32 activations),
 * and the table that dispatches them.
 *
 * Variants: src/kernels/ref/ (scalar C, always built, defines "correct"),
 * src/kernels/x86/avx2_*.c (AVX2 + FMA + F16C) and src/kernels/x86/avx512_*.c (the avx2 set with
 * AVX-512 F/BW/VL/VBMI table lookups for 6- and 8-bit LUT rows), built with per-file flags on x86-64 only.
 * dispatch.c fills one struct anml_kernels at first use from CPU detection;
 * ANML_KERNELS=ref|avx2|avx512 forces a variant. Nothing dispatches inside an inner loop.
 *
 * Layout conventions: activations are fp32 rows, row-major; `ld*` are row strides in elements.
 * Weights are only ever read a row (or a panel of rows) at a time, decoded into registers or a
 * small scratch panel, so a weight never exists as a full fp32 copy. Every kernel accumulates in
 * fp32.
 *
 * Summation order (the basis of every tolerance): a dot product of length k keeps eight partial
 * sums, element i going to sum i % 8 in increasing i, and combines them as
 * ((s0 + s4) + (s1 + s5)) + ((s2 + s6) + (s3 + s7)). The AVX2 kernels keep that order in the
 * eight lanes of one register and differ from the reference only in using fused multiply-adds
 * (one rounding instead of two per term), so each result is within (k/8 + 3) * 2^-24 *
 * sum_i |w_i x_i| of the reference. (Exception: a LUT row whose first index is not byte-aligned
 * -- odd k for 4-bit, k % 4 != 0 for 6-bit -- starts its lanes a few elements later; the same
 * bound holds.) A row's result never depends on which rows it was blocked with or which thread
 * computed it, so outputs are bit-identical for any thread count.
 */
#ifndef ANML_KERNELS_H
#define ANML_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

/* ---- scalar reference building blocks (ref_dot.c) ---- */

/* sum_{i<n} a[i] * b[i], accumulated in fp32 over eight interleaved partial sums (fixed order, so
 * results are deterministic; the error is at most that of a sequential fp32 sum). */
float anml__ref_dot_f32(const float *a, const float *b, int64_t n);

/* y[j * incy] = dot(w[0..k), x[j * ldx .. j * ldx + k)) for j in [0, n): one weight row against n
 * activation rows (the inner loop of a GEMM whose weight rows are decoded one at a time). */
void anml__ref_dot_rows_f32(const float *w, const float *x, int64_t k, int64_t ldx, int64_t n,
                            float *y, int64_t incy);

/* y[i] += a * x[i] for i in [0, n). */
void anml__ref_axpy_f32(int64_t n, float a, const float *x, float *y);

/* dst[i] = fp16 bit pattern src[i] as fp32, for i in [0, n): exact (subnormals, inf, NaN
 * payloads), bit-identical to anml__fp16_to_fp32, but branch-free so that it vectorizes. */
void anml__ref_f16_to_f32(const uint16_t *src, int64_t n, float *dst);

/* ---- weight rows ---- */

enum anml_wfmt {
    ANML_WFMT_F16 = 0, /* dense fp16 rows */
    ANML_WFMT_LUT,     /* palettized: packed indices into fp16 tables */
    ANML_WFMT_COUNT
};

/* A weight matrix seen as rows of k elements (conv [Cout, Cin, 1, 1] and linear [Dout, Din]).
 *   F16: row r is f16[r * ld .. r * ld + k).
 *   LUT: element i of row r has index field number r * k + i of the LSB-first bit stream `idx`
 *        (fields `bits` wide, bits 4, 6 or 8), and its value is lut[t * 2^bits + index] (fp16),
 *        t = r / rows_per_table. This is the ANEMLL layout (coreml-format.md §5.4: one table per
 *        group of output channels) in its stored, compressed form.
 * Pointers are borrowed (usually into the mapped weight file). */
struct anml_wrows {
    enum anml_wfmt fmt;
    int64_t k;
    const uint16_t *f16; /* F16 */
    int64_t ld;
    const uint8_t *idx; /* LUT */
    int32_t bits;
    const uint16_t *lut;
    int64_t rows_per_table;
};

/* y[r - r0] = sum_i W[r][i] * x[i] for r in [r0, r1): T = 1, a matrix-vector product. */
typedef void (*anml_matvec_fn)(const struct anml_wrows *w, int64_t r0, int64_t r1, const float *x,
                               float *y);
/* dst[(r - r0) * ldd + i] = W[r][i] as fp32 for r in [r0, r1), i < k (exact: fp16 -> fp32
 * widening); ldd >= k. (A row stride that is not a multiple of 4 KiB keeps the rows of a panel
 * out of each other's L1 sets.) */
typedef void (*anml_decode_fn)(const struct anml_wrows *w, int64_t r0, int64_t r1, float *dst,
                               int64_t ldd);
/* c[i * rs_c + j * cs_c] = sum_p a[i * lda + p] * b[j * ldb + p] for i < m, j < n: the dot form
 * of a GEMM (both operands k-contiguous). */
typedef void (*anml_gemm_f32_fn)(const float *a, int64_t lda, int64_t m, const float *b,
                                 int64_t ldb, int64_t n, int64_t k, float *c, int64_t rs_c,
                                 int64_t cs_c);
typedef void (*anml_axpy_f32_fn)(int64_t n, float a, const float *x, float *y);
/* fp16 -> fp32 of n elements. Exact for every input except that a signaling NaN may come out
 * quieted (F16C does that); use it for values that feed arithmetic, where that is invisible. */
typedef void (*anml_cvt_f16_fn)(const uint16_t *src, int64_t n, float *dst);
/* fp32 -> fp16 of n elements, round to nearest even: bit-identical to anml__fp32_to_fp16 (F16C
 * VCVTPS2PH rounds, overflows and keeps NaN payloads the same way). */
typedef void (*anml_cvt_f32_fn)(const float *src, int64_t n, uint16_t *dst);

struct anml_kernels {
    const char *name; /* "ref", "avx2", "avx512" */
    anml_matvec_fn matvec_f16, matvec_lut4, matvec_lut6, matvec_lut8;
    anml_decode_fn decode_f16, decode_lut4, decode_lut6, decode_lut8;
    anml_gemm_f32_fn gemm_f32;
    anml_axpy_f32_fn axpy_f32;
    anml_cvt_f16_fn cvt_f16;
    anml_cvt_f32_fn cvt_f32_f16;
};

/* The kernel set chosen for this process (dispatch.c): the best the CPU supports, or the one
 * ANML_KERNELS names. Chosen once (pthread_once) and logged at INFO. Thread-safety: safe. */
const struct anml_kernels *anml__kernels(void);

/* A named variant ("ref", "avx2", "avx512"), or NULL when it is not built for this architecture or the
 * CPU lacks its instructions. For tests and benchmarks. */
const struct anml_kernels *anml__kernels_variant(const char *name);

/* The matvec / decode kernel of a weight format (NULL for a LUT width without one). */
static inline anml_matvec_fn anml__kern_matvec(const struct anml_kernels *kt,
                                               const struct anml_wrows *w) {
    if (w->fmt == ANML_WFMT_F16) {
        return kt->matvec_f16;
    }
    return w->bits == 4   ? kt->matvec_lut4
           : w->bits == 6 ? kt->matvec_lut6
           : w->bits == 8 ? kt->matvec_lut8
                          : (anml_matvec_fn)0;
}
static inline anml_decode_fn anml__kern_decode(const struct anml_kernels *kt,
                                               const struct anml_wrows *w) {
    if (w->fmt == ANML_WFMT_F16) {
        return kt->decode_f16;
    }
    return w->bits == 4   ? kt->decode_lut4
           : w->bits == 6 ? kt->decode_lut6
           : w->bits == 8 ? kt->decode_lut8
                          : (anml_decode_fn)0;
}

/* ---- variants (each file defines its table) ---- */
extern const struct anml_kernels anml__kernels_ref; /* ref/ref_wrows.c */
#ifdef ANML_HAVE_AVX2_KERNELS
extern const struct anml_kernels anml__kernels_avx2; /* x86/avx2_dot.c */
/* x86/avx2_lut.c, for the avx2 table */
void anml__avx2_matvec_lut4(const struct anml_wrows *w, int64_t r0, int64_t r1, const float *x,
                            float *y);
void anml__avx2_matvec_lut6(const struct anml_wrows *w, int64_t r0, int64_t r1, const float *x,
                            float *y);
void anml__avx2_matvec_lut8(const struct anml_wrows *w, int64_t r0, int64_t r1, const float *x,
                            float *y);
void anml__avx2_decode_lut4(const struct anml_wrows *w, int64_t r0, int64_t r1, float *dst,
                            int64_t ldd);
void anml__avx2_decode_lut6(const struct anml_wrows *w, int64_t r0, int64_t r1, float *dst,
                            int64_t ldd);
void anml__avx2_decode_lut8(const struct anml_wrows *w, int64_t r0, int64_t r1, float *dst,
                            int64_t ldd);
/* x86/avx512_lut.c: the "avx512" set is the avx2 set with these LUT kernels (dispatch.c) */
void anml__avx512_matvec_lut6(const struct anml_wrows *w, int64_t r0, int64_t r1, const float *x,
                              float *y);
void anml__avx512_matvec_lut8(const struct anml_wrows *w, int64_t r0, int64_t r1, const float *x,
                              float *y);
void anml__avx512_decode_lut6(const struct anml_wrows *w, int64_t r0, int64_t r1, float *dst,
                              int64_t ldd);
void anml__avx512_decode_lut8(const struct anml_wrows *w, int64_t r0, int64_t r1, float *dst,
                              int64_t ldd);
#endif

/* ---- helpers shared by the variants (ref/ref_wrows.c) ---- */

/* Index field number `e` (bits wide, LSB-first) of the stream p; reads only the bytes holding
 * it. */
static inline uint32_t anml__kern_field(const uint8_t *p, int32_t bits, int64_t e) {
    uint64_t pos = (uint64_t)e * (uint64_t)bits;
    const uint8_t *b = p + (pos >> 3);
    uint32_t sh = (uint32_t)(pos & 7u);
    uint32_t v = (uint32_t)b[0] >> sh;
    if (sh + (uint32_t)bits > 8u) {
        v |= (uint32_t)b[1] << (8u - sh);
    }
    return v & ((1u << bits) - 1u);
}

#endif /* ANML_KERNELS_H */
