/* avx2_util.h -- inline helpers shared by the AVX2 kernel files (only they include it). */
#ifndef ANML_KERNELS_X86_AVX2_UTIL_H
#define ANML_KERNELS_X86_AVX2_UTIL_H

#ifndef __AVX2__
#  error "avx2_util.h needs -mavx2 -mfma -mf16c"
#endif

#include <immintrin.h>
#include <stdint.h>

#define ANML_AVX2_INLINE static inline __attribute__((always_inline))

/* The eight lanes combined exactly as the reference combines its eight partial sums:
 * ((l0 + l4) + (l1 + l5)) + ((l2 + l6) + (l3 + l7)). */
ANML_AVX2_INLINE float avx2_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_hadd_ps(s, s); /* [s0 + s1, s2 + s3, ..] */
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* A lane mask with the first n (0..8) lanes set, for masked loads of a row's last elements. */
ANML_AVX2_INLINE __m256i avx2_tail_mask(int64_t n) {
    static const int32_t bits[16] = { -1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0 };
    return _mm256_loadu_si256((const __m256i *)(const void *)(bits + 8 - n));
}

#endif /* ANML_KERNELS_X86_AVX2_UTIL_H */
