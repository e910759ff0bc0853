/* ref_dot.c -- scalar reference dot-product kernels (kernels.h). Plain C: the eight-way partial
 * sums give the compiler independent chains to vectorize without reassociating (no fast-math). */
#include <string.h>

#include "kernels/kernels.h"

float anml__ref_dot_f32(const float *a, const float *b, int64_t n) {
    float acc[8] = { 0 };
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        for (int j = 0; j < 8; j++) {
            acc[j] += a[i + j] * b[i + j];
        }
    }
    for (int j = 0; i < n; i++, j++) {
        acc[j] += a[i] * b[i];
    }
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
}

void anml__ref_dot_rows_f32(const float *w, const float *x, int64_t k, int64_t ldx, int64_t n,
                            float *y, int64_t incy) {
    for (int64_t j = 0; j < n; j++) {
        y[j * incy] = anml__ref_dot_f32(w, x + j * ldx, k);
    }
}

void anml__ref_axpy_f32(int64_t n, float a, const float *x, float *y) {
    for (int64_t i = 0; i < n; i++) {
        y[i] += a * x[i];
    }
}

/* One fp16 bit pattern as fp32 bits, branch-free (masks instead of selects, so that the block
 * loop below vectorizes). */
static inline uint32_t f16_bits_to_f32_bits(uint32_t h) {
    uint32_t em = (h & 0x7fffu) << 13; /* exponent and mantissa in fp32 position */
    uint32_t exp = em & 0x0f800000u;
    uint32_t is_special = 0u - (uint32_t)(exp == 0x0f800000u); /* inf / NaN */
    uint32_t is_sub = 0u - (uint32_t)(exp == 0);               /* zero / subnormal */
    /* rebias 15 -> 127; inf/NaN (exponent 31) go to exponent 255 */
    uint32_t bits = em + (112u << 23) + (is_special & (112u << 23));
    /* subnormal: the value is man * 2^-24; 2^-14 * (1 + man/1024) - 2^-14 gives it exactly
     * without touching fp32 denormals. Computed for every element and selected with a mask, so
     * NaN payloads pass through untouched. */
    union {
        uint32_t u;
        float f;
    } sub = { .u = em + (113u << 23) };
    sub.f -= 0x1p-14f;
    return (sub.u & is_sub) | (bits & ~is_sub) | ((h & 0x8000u) << 16);
}

void anml__ref_f16_to_f32(const uint16_t *src, int64_t n, float *dst) {
    int64_t i = 0;
    /* blocks of eight with a fixed inner trip count: vectorized even at -O2 */
    for (; i + 8 <= n; i += 8) {
        union {
            uint32_t u[8];
            float f[8];
        } out;
        for (int j = 0; j < 8; j++) {
            out.u[j] = f16_bits_to_f32_bits(src[i + j]);
        }
        for (int j = 0; j < 8; j++) {
            dst[i + j] = out.f[j];
        }
    }
    for (; i < n; i++) {
        union {
            uint32_t u;
            float f;
        } out = { .u = f16_bits_to_f32_bits(src[i]) };
        dst[i] = out.f;
    }
}
