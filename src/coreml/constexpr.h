/*
 * constexpr.h -- decoding of compressed constants: the `constexpr_*` ops of coreml-format.md §9.1
 * (constexpr_lut_to_dense iOS16 and iOS18 forms, constexpr_affine_dequantize,
 * constexpr_blockwise_shift_scale, constexpr_sparse_to_dense iOS16 and iOS18 forms,
 * constexpr_cast, constexpr_lut_to_sparse, constexpr_sparse_blockwise_shift_scale).
 *
 * Two ways to use a compressed constant:
 *  - anml__constexpr_materialize() writes the dense tensor (any constexpr op), in the op's output
 *    dtype, in the IR's unpacked layout (sub-byte types one byte each, int4 sign-extended).
 *  - A palettized weight (constexpr_lut_to_dense) can stay compressed: anml__constexpr_lut_from_op()
 *    builds a struct anml_lut_weight that points into the mapped weight file (no dense copy), and
 *    kernels decode the runs they need with anml__lut_decode_f32() / anml__lut_decode_raw().
 *
 * Parameters are found as op arguments (iOS18: literal values, blob values, or a name bound to a
 * `const` op or to another constexpr op, which is then materialized) or as attributes (iOS16).
 * Everything is validated (shapes, divisibility, index ranges, data sizes, the op's declared
 * result type) before any pointer into the data is kept.
 */
#ifndef ANML_COREML_CONSTEXPR_H
#define ANML_COREML_CONSTEXPR_H

#include "coreml/program.h"

#define ANML_LUT_MAX_RANK 8

/*
 * A palettized weight in its stored form.
 *
 * Indices have the logical shape idx_shape[0..rank) (row-major). Index element j is
 *   indices_packed:  the j-th index_bits-wide field of the LSB-first bit stream `indices`
 *                    (coreml-format.md §5.4; for index_bits == 8 simply byte j);
 *   !indices_packed: byte j of `indices` (one index per byte).
 * The lookup table `lut` is a row-major array of lut_dtype elements with shape
 *   [lut_shape[0], ..., lut_shape[rank-1], n_entries, vector_size]
 * i.e. n_tables = prod(lut_shape[0..rank)) tables of n_entries vectors of vector_size elements.
 * Index position p (in idx_shape) uses table q with q[k] = p[k] / group[k], where
 * group[k] = idx_shape[k] / lut_shape[k] is the number of indices per table along axis k.
 *
 * Output (shape[0..rank), dtype out_dtype == lut_dtype): when vector_size == 1, out[p] =
 * lut[q][indices[p]][0] and shape == idx_shape. When vector_size V > 1, shape[vector_axis] =
 * idx_shape[vector_axis] * V and output position p' takes lut[q][indices[p]][v] with p = p'
 * except p[vector_axis] = p'[vector_axis] / V and v = p'[vector_axis] % V.
 *
 * ANEMLL conv weight [Cout, Cin, 1, 1] with groups of G output channels: idx_shape = shape =
 * [Cout, Cin, 1, 1], lut_shape = [Cout/G, 1, 1, 1], n_entries = 2^bits, vector_size = 1,
 * group = [G, Cin, 1, 1]; output-channel row r (elements r*Cin .. r*Cin+Cin-1) uses table r/G.
 *
 * iOS16 form (flat packed uint8 indices, lut [P], uint32 shape) maps onto the same descriptor
 * with lut_shape = [1, ..., 1] (one table) and group = shape.
 *
 * The pointers refer to the mapped weight file or to prog->arena; the descriptor stays valid
 * as long as the program. It owns nothing and is copied by value.
 */
struct anml_lut_weight {
    enum anml_dtype out_dtype; /* == lut_dtype: int8, uint8, fp16 or fp32 */
    int32_t rank;              /* 1..ANML_LUT_MAX_RANK */
    int64_t shape[ANML_LUT_MAX_RANK];
    int64_t numel; /* product of shape */
    int64_t idx_shape[ANML_LUT_MAX_RANK];
    int index_bits; /* 1, 2, 3, 4, 6 or 8 */
    const uint8_t *indices;
    bool indices_packed;
    enum anml_dtype lut_dtype;
    const void *lut;
    int64_t lut_shape[ANML_LUT_MAX_RANK]; /* the table-grid part (first `rank` dims) */
    int64_t n_tables;
    int64_t n_entries; /* 2^index_bits */
    int64_t vector_size;
    int32_t vector_axis; /* 0..rank-1; -1 when vector_size == 1 */
    int64_t group[ANML_LUT_MAX_RANK];
};

/* True for op types "constexpr_*". */
bool anml__is_constexpr_op(const char *type);

/* Builds the compressed descriptor of a constexpr_lut_to_dense op (either form). Fails with a
 * clear error (naming the op and the parameter) on any inconsistency. */
enum anml_status anml__constexpr_lut_from_op(const struct mil_program *prog,
                                             const struct mil_op *op, struct anml_lut_weight *w,
                                             struct anml_error *err);

/* Decodes output elements [first_elem, first_elem + n) (row-major flat positions of w->shape)
 * into fp32. The range must lie inside the tensor (checked with ANML_ASSERT). */
void anml__lut_decode_f32(const struct anml_lut_weight *w, int64_t first_elem, int64_t n,
                          float *out);
/* Same, but copies the table elements bit-exactly in lut_dtype (anml__dtype_size bytes each). */
void anml__lut_decode_raw(const struct anml_lut_weight *w, int64_t first_elem, int64_t n,
                          void *out);

/* Writes the dense value of result `result` of any constexpr op into out, in the declared dtype
 * of that result and the IR's unpacked layout (anml__dtype_size bytes per element; sub-byte types
 * one byte each, int4 sign-extended, uint1 masks 0/1). out_bytes must equal numel * elem size.
 * Two-output ops (constexpr_lut_to_sparse, constexpr_sparse_blockwise_shift_scale) return the
 * mask as result 0 and the values as result 1. */
enum anml_status anml__constexpr_materialize_result(const struct mil_program *prog,
                                                    const struct mil_op *op, int32_t result,
                                                    void *out, size_t out_bytes,
                                                    struct anml_error *err);
/* Result 0. */
enum anml_status anml__constexpr_materialize(const struct mil_program *prog,
                                             const struct mil_op *op, void *out, size_t out_bytes,
                                             struct anml_error *err);

#endif /* ANML_COREML_CONSTEXPR_H */
