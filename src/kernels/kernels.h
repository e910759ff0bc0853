/*
 * kernels.h -- the compute kernels under the op implementations (src/ops): dot products over fp32
 * rows, in scalar reference versions (src/kernels/ref/, always built; they define "correct").
 *
 * Layout conventions: all pointers are fp32 rows, row-major; `ld*` are row strides in elements.
 * Weights in fp16 or in compressed LUT form are decoded to fp32 rows by the caller (one row at a
 * time, into scratch) before reaching these kernels, so a weight never exists as a full fp32
 * copy. Every kernel accumulates in fp32.
 */
#ifndef ANML_KERNELS_H
#define ANML_KERNELS_H

#include <stdint.h>

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

#endif /* ANML_KERNELS_H */
