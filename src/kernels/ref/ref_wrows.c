/*
 * ref_wrows.c -- scalar reference versions of the weight-row kernels (kernels.h) and the "ref"
 * kernel table. Portable C, built everywhere. Every dot product here sums exactly as
 * anml__ref_dot_f32 does (eight partial sums, element i into sum i % 8), so the reference of a
 * fused kernel equals "decode the row to fp32, then anml__ref_dot_f32" bit for bit.
 */
#include <string.h>

#include "core/core.h"
#include "kernels/kernels.h"

/* Elements decoded per step into a stack buffer (a multiple of 8 keeps the lane order). */
#define REF_BLOCK 64

static float combine8(const float acc[8]) {
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

/* acc[j] += w[i] * x[i] for the block, element i into lane i % 8 (blocks start at multiples
 * of 8, so the lane is i % 8 of the row too). */
static void acc_block(float acc[8], const float *w, const float *x, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int j = 0; j < 8; j++) {
            acc[j] += w[i + j] * x[i + j];
        }
    }
    for (int j = 0; i < n; i++, j++) {
        acc[j] += w[i] * x[i];
    }
}

/* ---- fp16 rows ---- */

static void ref_matvec_f16(const struct anml_wrows *w, int64_t r0, int64_t r1, const float *x,
                           float *y) {
    float buf[REF_BLOCK];
    for (int64_t r = r0; r < r1; r++) {
        const uint16_t *row = w->f16 + r * w->ld;
        float acc[8] = { 0 };
        for (int64_t i = 0; i < w->k; i += REF_BLOCK) {
            int64_t n = w->k - i < REF_BLOCK ? w->k - i : REF_BLOCK;
            anml__ref_f16_to_f32(row + i, n, buf);
            acc_block(acc, buf, x + i, n);
        }
        y[r - r0] = combine8(acc);
    }
}

static void ref_decode_f16(const struct anml_wrows *w, int64_t r0, int64_t r1, float *dst,
                           int64_t ldd) {
    for (int64_t r = r0; r < r1; r++) {
        anml__ref_f16_to_f32(w->f16 + r * w->ld, w->k, dst + (r - r0) * ldd);
    }
}

/* ---- LUT rows ---- */

/* The fp32 table of row r's group. */
static void lut_table(const struct anml_wrows *w, int64_t r, float *tab) {
    int64_t n = (int64_t)1 << w->bits;
    anml__ref_f16_to_f32(w->lut + (r / w->rows_per_table) * n, n, tab);
}

/* Elements [i0, i0 + n) of row r, decoded through tab. */
static void lut_decode_run(const struct anml_wrows *w, int64_t r, int64_t i0, int64_t n,
                           const float *tab, float *out) {
    int64_t e0 = r * w->k + i0;
    for (int64_t i = 0; i < n; i++) {
        out[i] = tab[anml__kern_field(w->idx, w->bits, e0 + i)];
    }
}

static void ref_matvec_lut(const struct anml_wrows *w, int64_t r0, int64_t r1, const float *x,
                           float *y) {
    float tab[256], buf[REF_BLOCK];
    int64_t tab_of = -1;
    for (int64_t r = r0; r < r1; r++) {
        if (r / w->rows_per_table != tab_of) {
            tab_of = r / w->rows_per_table;
            lut_table(w, r, tab);
        }
        float acc[8] = { 0 };
        for (int64_t i = 0; i < w->k; i += REF_BLOCK) {
            int64_t n = w->k - i < REF_BLOCK ? w->k - i : REF_BLOCK;
            lut_decode_run(w, r, i, n, tab, buf);
            acc_block(acc, buf, x + i, n);
        }
        y[r - r0] = combine8(acc);
    }
}

static void ref_decode_lut(const struct anml_wrows *w, int64_t r0, int64_t r1, float *dst,
                           int64_t ldd) {
    float tab[256];
    int64_t tab_of = -1;
    for (int64_t r = r0; r < r1; r++) {
        if (r / w->rows_per_table != tab_of) {
            tab_of = r / w->rows_per_table;
            lut_table(w, r, tab);
        }
        lut_decode_run(w, r, 0, w->k, tab, dst + (r - r0) * ldd);
    }
}

/* ---- dense fp32 ---- */

static void ref_gemm_f32(const float *a, int64_t lda, int64_t m, const float *b, int64_t ldb,
                         int64_t n, int64_t k, float *c, int64_t rs_c, int64_t cs_c) {
    for (int64_t i = 0; i < m; i++) {
        anml__ref_dot_rows_f32(a + i * lda, b, k, ldb, n, c + i * rs_c, cs_c);
    }
}

static void ref_cvt_f32_f16(const float *src, int64_t n, uint16_t *dst) {
    for (int64_t i = 0; i < n; i++) {
        dst[i] = anml__fp32_to_fp16(src[i]);
    }
}

const struct anml_kernels anml__kernels_ref = {
    .name = "ref",
    .matvec_f16 = ref_matvec_f16,
    .matvec_lut4 = ref_matvec_lut,
    .matvec_lut6 = ref_matvec_lut,
    .matvec_lut8 = ref_matvec_lut,
    .decode_f16 = ref_decode_f16,
    .decode_lut4 = ref_decode_lut,
    .decode_lut6 = ref_decode_lut,
    .decode_lut8 = ref_decode_lut,
    .gemm_f32 = ref_gemm_f32,
    .axpy_f32 = anml__ref_axpy_f32,
    .cvt_f16 = anml__ref_f16_to_f32,
    .cvt_f32_f16 = ref_cvt_f32_f16,
};
