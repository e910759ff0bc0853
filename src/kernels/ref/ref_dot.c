/* ref_dot.c -- scalar reference dot-product kernels (kernels.h). Plain C: the eight-way partial
 * sums give the compiler independent chains to vectorize without reassociating (no fast-math). */
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
