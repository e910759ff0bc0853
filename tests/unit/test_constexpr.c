/*
 * test_constexpr.c -- constexpr_* decoding on small hand-computed examples (coreml-format.md §9.1
 * and the worked examples of the coremltools op documentation): iOS16 and iOS18 LUT forms with
 * grouped tables, vector palettization, 1/2/3/4/6/8-bit indices from immediates and from packed
 * blobs; affine dequantization; block-wise shift/scale; sparse-to-dense in both forms; cast;
 * the two-output sparse ops chained by name; nested constexpr inputs; and the validation errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coreml/blob.h"
#include "coreml/constexpr.h"
#include "testutil.h"

/* ---- a tiny IR builder ---- */

static struct mil_program *g_prog;
static struct mil_function *g_fn;

static void *arena(size_t n) {
    void *p = anml__arena_alloc(g_prog->arena, n);
    assert_non_null(p);
    return p;
}

static struct mil_value *imm(enum anml_dtype dt, int32_t rank, const int64_t *dims,
                             const void *data) {
    struct mil_value *v = arena(sizeof *v);
    v->kind = MIL_VALUE_TENSOR;
    v->type = anml__mil_tensor_type(g_prog->arena, dt, rank, dims);
    int64_t n = 1;
    for (int32_t k = 0; k < rank; k++) {
        n *= dims[k];
    }
    v->n_elem = n;
    size_t bytes = (size_t)n * anml__dtype_size(dt);
    v->data = arena(bytes ? bytes : 1);
    memcpy(v->data, data, bytes);
    return v;
}

static struct mil_value *imm_i32(int32_t x) {
    return imm(ANML_DTYPE_INT32, 0, NULL, &x);
}

static struct mil_value *imm_str(const char *s) {
    struct mil_value *v = arena(sizeof *v);
    v->kind = MIL_VALUE_TENSOR;
    v->type = anml__mil_tensor_type(g_prog->arena, ANML_DTYPE_STRING, 0, NULL);
    v->n_elem = 1;
    char **d = arena(sizeof(char *));
    d[0] = anml__arena_strdup(g_prog->arena, s);
    v->data = d;
    return v;
}

/* An op appended to the test function; params as iOS18 arguments or iOS16 attributes. */
static struct mil_op *new_op(const char *type, const char *result, enum anml_dtype dt, int32_t rank,
                             const int64_t *dims) {
    int32_t n = g_fn->block.n_ops;
    assert_true(n < 16);
    struct mil_op *op = &g_fn->block.ops[n];
    g_fn->block.n_ops = n + 1;
    memset(op, 0, sizeof *op);
    op->type = anml__arena_strdup(g_prog->arena, type);
    op->args = arena(8 * sizeof(struct mil_arg));
    op->attrs = arena(8 * sizeof(struct mil_attr));
    op->results = arena(2 * sizeof(struct mil_named_type));
    op->n_results = 1;
    op->results[0].name = anml__arena_strdup(g_prog->arena, result);
    op->results[0].type = anml__mil_tensor_type(g_prog->arena, dt, rank, dims);
    op->attrs[0].name = anml__arena_strdup(g_prog->arena, "name");
    op->attrs[0].value = imm_str(result);
    op->n_attrs = 1;
    return op;
}

static void add_result(struct mil_op *op, const char *result, enum anml_dtype dt, int32_t rank,
                       const int64_t *dims) {
    op->results[op->n_results].name = anml__arena_strdup(g_prog->arena, result);
    op->results[op->n_results].type = anml__mil_tensor_type(g_prog->arena, dt, rank, dims);
    op->n_results++;
}

static void arg(struct mil_op *op, const char *name, struct mil_value *v) {
    struct mil_arg *a = &op->args[op->n_args++];
    a->name = anml__arena_strdup(g_prog->arena, name);
    a->n_bindings = 1;
    a->bindings = arena(sizeof(struct mil_binding));
    a->bindings[0].value = v;
}

static void arg_name(struct mil_op *op, const char *name, const char *ref) {
    struct mil_arg *a = &op->args[op->n_args++];
    a->name = anml__arena_strdup(g_prog->arena, name);
    a->n_bindings = 1;
    a->bindings = arena(sizeof(struct mil_binding));
    a->bindings[0].name = anml__arena_strdup(g_prog->arena, ref);
}

static void attr(struct mil_op *op, const char *name, struct mil_value *v) {
    struct mil_attr *a = &op->attrs[op->n_attrs++];
    a->name = anml__arena_strdup(g_prog->arena, name);
    a->value = v;
}

/* weight file for packed sub-byte data */
static uint8_t g_wbuf[8192];
static size_t g_wlen;
static char *g_dir;

static void put_le(uint8_t *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

/* Packs `vals` (one byte each) as dtype dt into a new blob and returns a blob value. */
static struct mil_value *blob(enum anml_dtype dt, int32_t rank, const int64_t *dims,
                              const uint8_t *vals) {
    int64_t n = 1;
    for (int32_t k = 0; k < rank; k++) {
        n *= dims[k];
    }
    size_t rec = (g_wlen + 63) & ~(size_t)63;
    int bits = anml_dtype_bits(dt);
    size_t size = anml__dtype_is_subbyte(dt) ? (size_t)(((uint64_t)n * (uint64_t)bits + 7) / 8)
                                             : (size_t)n * anml__dtype_size(dt);
    assert_true(rec + 64 + size < sizeof g_wbuf);
    if (anml__dtype_is_subbyte(dt)) {
        anml__subbyte_pack(dt, vals, n, g_wbuf + rec + 64);
    } else {
        memcpy(g_wbuf + rec + 64, vals, size);
    }
    put_le(g_wbuf + rec, 0xDEADBEEFu, 4);
    put_le(g_wbuf + rec + 4, anml__dtype_blob_code(dt), 4);
    put_le(g_wbuf + rec + 8, size, 8);
    put_le(g_wbuf + rec + 16, rec + 64, 8);
    put_le(g_wbuf + rec + 24, (8 - ((uint64_t)n * (uint64_t)bits) % 8) % 8, 8);
    g_wlen = rec + 64 + size;
    put_le(g_wbuf, g_wbuf[0] + 1u, 4);
    put_le(g_wbuf + 4, 2, 4);
    /* Rewrite the file; drop the store first so that no mapping of the old file survives. */
    anml__blob_store_free(g_prog->blobs);
    g_prog->blobs = anml__blob_store_new(g_dir);
    char path[4096];
    snprintf(path, sizeof path, "%s/weights/weight.bin", g_dir);
    assert_int_equal(anml__write_file(path, g_wbuf, g_wlen, NULL), ANML_OK);
    struct mil_value *v = arena(sizeof *v);
    v->kind = MIL_VALUE_BLOB;
    v->type = anml__mil_tensor_type(g_prog->arena, dt, rank, dims);
    v->blob_path = anml__arena_strdup(g_prog->arena, "@model_path/weights/weight.bin");
    v->blob_offset = rec;
    return v;
}

static int setup(void **state) {
    (void)state;
    g_prog = anml__mil_program_new();
    g_dir = anml_test_tmpdir("constexpr");
    char path[4096];
    snprintf(path, sizeof path, "%s/weights", g_dir);
    assert_int_equal(anml__mkdirs(path, NULL), ANML_OK);
    g_prog->model_dir = anml__arena_strdup(g_prog->arena, g_dir);
    g_prog->blobs = anml__blob_store_new(g_dir);
    g_prog->n_functions = 1;
    g_prog->functions = arena(sizeof(struct mil_function));
    g_fn = &g_prog->functions[0];
    g_fn->name = anml__arena_strdup(g_prog->arena, "main");
    g_fn->block.ops = arena(16 * sizeof(struct mil_op));
    memset(g_wbuf, 0, sizeof g_wbuf);
    g_wlen = 64;
    return 0;
}

static int teardown(void **state) {
    (void)state;
    anml__mil_program_free(g_prog);
    free(g_dir);
    return 0;
}

/* Materializes result r of op into a fresh buffer of `bytes`, failing on error. */
static void *mat(const struct mil_op *op, int32_t r, size_t bytes) {
    void *out = malloc(bytes ? bytes : 1);
    assert_non_null(out);
    struct anml_error err;
    memset(&err, 0, sizeof err);
    enum anml_status st = anml__constexpr_materialize_result(g_prog, op, r, out, bytes, &err);
    if (st != ANML_OK) {
        fail_msg("%s: %s: %s", op->type, err.where, err.msg);
    }
    return out;
}

static void expect_f16(const struct mil_op *op, const float *want, int64_t n) {
    uint16_t *got = mat(op, 0, (size_t)n * 2);
    for (int64_t i = 0; i < n; i++) {
        if (anml__fp16_to_fp32(got[i]) != want[i]) {
            fail_msg("%s element %lld: %g, expected %g", op->type, (long long)i,
                     (double)anml__fp16_to_fp32(got[i]), (double)want[i]);
        }
    }
    free(got);
}

static void expect_f32(const struct mil_op *op, int32_t r, const float *want, int64_t n) {
    float *got = mat(op, r, (size_t)n * 4);
    for (int64_t i = 0; i < n; i++) {
        if (got[i] != want[i]) {
            fail_msg("%s element %lld: %g, expected %g", op->type, (long long)i, (double)got[i],
                     (double)want[i]);
        }
    }
    free(got);
}

static void expect_bytes(const struct mil_op *op, int32_t r, const uint8_t *want, size_t n) {
    uint8_t *got = mat(op, r, n);
    assert_memory_equal(got, want, n);
    free(got);
}

static void expect_error(const struct mil_op *op, size_t bytes, enum anml_status code,
                         const char *needle) {
    void *out = malloc(bytes ? bytes : 1);
    struct anml_error err;
    memset(&err, 0, sizeof err);
    enum anml_status st = anml__constexpr_materialize(g_prog, op, out, bytes, &err);
    free(out);
    if (st != code || !strstr(err.msg, needle)) {
        fail_msg("status %d msg '%s' (wanted %d '%s')", (int)st, err.msg, (int)code, needle);
    }
}

static void fp16s(uint16_t *dst, const float *src, int n) {
    for (int i = 0; i < n; i++) {
        dst[i] = anml__fp32_to_fp16(src[i]);
    }
}

/* ---- constexpr_lut_to_dense ---- */

/* The op documentation's per-group example: indices uint2 [6, 2], lut fp16 [2, 1, 4, 1]: rows
 * 0-2 use palette 0 = {1, 5, 9, 13}, rows 3-5 palette 1 = {2, 10, 18, 26}. */
static const uint8_t k_doc_idx[12] = { 2, 3, 3, 0, 1, 0, 3, 0, 2, 1, 0, 3 };
static const float k_doc_lut[8] = { 1, 5, 9, 13, 2, 10, 18, 26 };
static const float k_doc_out[12] = { 9, 13, 13, 1, 5, 1, 26, 2, 18, 10, 2, 26 };

static void test_lut_ios18_doc_example(void **state) {
    (void)state;
    const int64_t di[2] = { 6, 2 }, dl[4] = { 2, 1, 4, 1 };
    uint16_t lut[8];
    fp16s(lut, k_doc_lut, 8);
    for (int packed = 0; packed < 2; packed++) {
        struct mil_op *op =
            new_op("constexpr_lut_to_dense", packed ? "w_packed" : "w_imm", ANML_DTYPE_F16, 2, di);
        arg(op, "indices",
            packed ? blob(ANML_DTYPE_UINT2, 2, di, k_doc_idx)
                   : imm(ANML_DTYPE_UINT2, 2, di, k_doc_idx));
        arg(op, "lut", imm(ANML_DTYPE_F16, 4, dl, lut));
        expect_f16(op, k_doc_out, 12);
        struct anml_lut_weight w;
        struct anml_error err;
        assert_int_equal(anml__constexpr_lut_from_op(g_prog, op, &w, &err), ANML_OK);
        assert_int_equal(w.indices_packed, packed);
        assert_int_equal(w.index_bits, 2);
        assert_int_equal(w.n_tables, 2);
        assert_int_equal(w.group[0], 3);
        assert_int_equal(w.group[1], 2);
        /* every sub-range decodes consistently */
        for (int64_t first = 0; first < 12; first++) {
            for (int64_t n = 0; first + n <= 12; n++) {
                float buf[12];
                anml__lut_decode_f32(&w, first, n, buf);
                for (int64_t i = 0; i < n; i++) {
                    assert_true(buf[i] == k_doc_out[first + i]);
                }
            }
        }
    }
}

/* Vector palettization (op documentation, case 2): indices uint1 [2, 2, 2] =
 * [[[0,0],[1,0]],[[1,1],[0,0]]], lut int8 [1,1,1,2,3] = {a = (1,2,3), b = (4,5,6)}. */
static void test_lut_vector(void **state) {
    (void)state;
    const uint8_t idx[8] = { 0, 0, 1, 0, 1, 1, 0, 0 };
    const int8_t lut[6] = { 1, 2, 3, 4, 5, 6 };
    const int64_t di[3] = { 2, 2, 2 }, dl[5] = { 1, 1, 1, 2, 3 };
    /* vector_axis = 1: output [2, 6, 2] */
    const int8_t want1[24] = { 1, 1, 2, 2, 3, 3, 4, 1, 5, 2, 6, 3,
                               4, 4, 5, 5, 6, 6, 1, 1, 2, 2, 3, 3 };
    const int64_t o1[3] = { 2, 6, 2 };
    struct mil_op *op = new_op("constexpr_lut_to_dense", "v1", ANML_DTYPE_INT8, 3, o1);
    arg(op, "indices", blob(ANML_DTYPE_UINT1, 3, di, idx));
    arg(op, "lut", imm(ANML_DTYPE_INT8, 5, dl, lut));
    arg(op, "vector_axis", imm_i32(1));
    expect_bytes(op, 0, (const uint8_t *)want1, 24);
    struct anml_lut_weight w;
    struct anml_error err;
    assert_int_equal(anml__constexpr_lut_from_op(g_prog, op, &w, &err), ANML_OK);
    assert_int_equal(w.vector_size, 3);
    assert_int_equal(w.vector_axis, 1);
    for (int64_t first = 0; first < 24; first++) {
        float buf[24];
        anml__lut_decode_f32(&w, first, 24 - first, buf);
        for (int64_t i = 0; i < 24 - first; i++) {
            assert_true(buf[i] == (float)want1[first + i]);
        }
    }
    /* vector_axis = -1 (the last axis): output [2, 2, 6] */
    const int8_t want2[24] = { 1, 2, 3, 1, 2, 3, 4, 5, 6, 1, 2, 3,
                               4, 5, 6, 4, 5, 6, 1, 2, 3, 1, 2, 3 };
    const int64_t o2[3] = { 2, 2, 6 };
    op = new_op("constexpr_lut_to_dense", "v2", ANML_DTYPE_INT8, 3, o2);
    arg(op, "indices", imm(ANML_DTYPE_UINT1, 3, di, idx));
    arg(op, "lut", imm(ANML_DTYPE_INT8, 5, dl, lut));
    arg(op, "vector_axis", imm_i32(-1));
    expect_bytes(op, 0, (const uint8_t *)want2, 24);
    /* vector_axis = 0: output [4, 2, 2]; out[2p + v][j][k] = lut[idx[p][j][k]][v] */
    const int64_t o0[3] = { 6, 2, 2 };
    op = new_op("constexpr_lut_to_dense", "v0", ANML_DTYPE_INT8, 3, o0);
    arg(op, "indices", imm(ANML_DTYPE_UINT1, 3, di, idx));
    arg(op, "lut", imm(ANML_DTYPE_INT8, 5, dl, lut));
    arg(op, "vector_axis", imm_i32(0));
    /* out[3p + v] plane = lut[idx[p]][v]: p = 0: idx [[0,0],[1,0]] -> v=0 plane 1,1,4,1 ... */
    const int8_t want0b[24] = { 1, 1, 4, 1, 2, 2, 5, 2, 3, 3, 6, 3,
                                4, 4, 1, 1, 5, 5, 2, 2, 6, 6, 3, 3 };
    expect_bytes(op, 0, (const uint8_t *)want0b, 24);
}

/* Straightforward reference for grouped scalar palettization (independent of the iterator). */
static float ref_lut(const uint8_t *idx, const float *lut, const int64_t *I, const int64_t *L,
                     int rank, int64_t p_flat, int64_t entries) {
    int64_t p[8], rem = p_flat, tab = 0;
    for (int k = rank - 1; k >= 0; k--) {
        p[k] = rem % I[k];
        rem /= I[k];
    }
    for (int k = 0; k < rank; k++) {
        tab = tab * L[k] + p[k] / (I[k] / L[k]);
    }
    return lut[tab * entries + idx[p_flat]];
}

/* 3-bit indices, tables grouped along two axes; 6-bit indices with one table per row. */
static void test_lut_grouped_3_and_6_bit(void **state) {
    (void)state;
    const int64_t I3[3] = { 4, 6, 1 }, L3[5] = { 2, 3, 1, 8, 1 };
    uint8_t idx3[24];
    float lut3[48];
    for (int i = 0; i < 24; i++) {
        idx3[i] = (uint8_t)((i * 5 + 3) % 8);
    }
    for (int i = 0; i < 48; i++) {
        lut3[i] = (float)(i * 10 + 1);
    }
    struct mil_op *op = new_op("constexpr_lut_to_dense", "g3", ANML_DTYPE_F32, 3, I3);
    arg(op, "indices", blob(ANML_DTYPE_UINT3, 3, I3, idx3));
    arg(op, "lut", blob(ANML_DTYPE_F32, 5, L3, (const uint8_t *)lut3));
    float want3[24];
    for (int i = 0; i < 24; i++) {
        want3[i] = ref_lut(idx3, lut3, I3, L3, 3, i, 8);
    }
    /* hand-checked corners: (0,0) uses table 0 entry 3; (3,5) uses table (1,2) = 5, entry
     * idx3[23] = (23*5+3)%8 = 6 -> lut[5*8+6] = 461 */
    assert_true(want3[0] == 31.0f);
    assert_true(want3[23] == 461.0f);
    expect_f32(op, 0, want3, 24);

    const int64_t I6[2] = { 3, 5 }, L6[4] = { 3, 1, 64, 1 };
    uint8_t idx6[15];
    float lut6f[192];
    uint16_t lut6[192];
    for (int i = 0; i < 15; i++) {
        idx6[i] = (uint8_t)((i * 17 + 60) % 64);
    }
    for (int i = 0; i < 192; i++) {
        lut6f[i] = (float)(i - 96) * 0.25f;
    }
    fp16s(lut6, lut6f, 192);
    op = new_op("constexpr_lut_to_dense", "g6", ANML_DTYPE_F16, 2, I6);
    arg(op, "indices", blob(ANML_DTYPE_UINT6, 2, I6, idx6));
    arg(op, "lut", blob(ANML_DTYPE_F16, 4, L6, (const uint8_t *)lut6));
    float want6[15];
    for (int i = 0; i < 15; i++) {
        want6[i] = ref_lut(idx6, lut6f, I6, L6, 2, i, 64);
    }
    assert_true(want6[0] == (float)(60 - 96) * 0.25f); /* row 0, entry 60 */
    expect_f16(op, want6, 15);
    struct anml_lut_weight w;
    struct anml_error err;
    assert_int_equal(anml__constexpr_lut_from_op(g_prog, op, &w, &err), ANML_OK);
    for (int r = 0; r < 3; r++) {
        float row[5];
        anml__lut_decode_f32(&w, r * 5, 5, row);
        for (int j = 0; j < 5; j++) {
            assert_true(row[j] == want6[r * 5 + j]);
        }
    }
    /* uint4 and uint8 indices, int8/uint8 luts */
    const int64_t I4[1] = { 5 }, L4[3] = { 1, 16, 1 }, L8[3] = { 1, 256, 1 };
    const uint8_t idx4[5] = { 15, 0, 7, 8, 1 };
    int8_t lut4[16];
    uint8_t lut8[256];
    for (int i = 0; i < 16; i++) {
        lut4[i] = (int8_t)(i - 8);
    }
    for (int i = 0; i < 256; i++) {
        lut8[i] = (uint8_t)(255 - i);
    }
    op = new_op("constexpr_lut_to_dense", "u4", ANML_DTYPE_INT8, 1, I4);
    arg(op, "indices", blob(ANML_DTYPE_UINT4, 1, I4, idx4));
    arg(op, "lut", imm(ANML_DTYPE_INT8, 3, L4, lut4));
    const int8_t want4[5] = { 7, -8, -1, 0, -7 };
    expect_bytes(op, 0, (const uint8_t *)want4, 5);
    op = new_op("constexpr_lut_to_dense", "u8", ANML_DTYPE_UINT8, 1, I4);
    arg(op, "indices", blob(ANML_DTYPE_UINT8, 1, I4, idx4));
    arg(op, "lut", blob(ANML_DTYPE_UINT8, 3, L8, lut8));
    const uint8_t want8[5] = { 240, 255, 248, 247, 254 };
    expect_bytes(op, 0, want8, 5);
}

static uint32_t g_rng = 12345;
static uint32_t rnd(uint32_t n) {
    g_rng = g_rng * 1103515245u + 12345u;
    return (g_rng >> 8) % n;
}

/* Random shapes, groupings, index widths and vector sizes: every window decoded by
 * anml__lut_decode_f32 / _raw must equal the definition of §9.1 evaluated directly. */
static void test_lut_random_windows(void **state) {
    (void)state;
    static const enum anml_dtype idt[6] = { ANML_DTYPE_UINT1, ANML_DTYPE_UINT2, ANML_DTYPE_UINT3,
                                            ANML_DTYPE_UINT4, ANML_DTYPE_UINT6, ANML_DTYPE_UINT8 };
    for (int iter = 0; iter < 200; iter++) {
        int rank = 1 + (int)rnd(4);
        int64_t I[4], L[6], O[4];
        int64_t ni = 1, nt = 1;
        for (int k = 0; k < rank; k++) {
            I[k] = 1 + rnd(5);
            L[k] = (I[k] % 2 == 0 && rnd(2)) ? I[k] / 2 : (rnd(2) ? I[k] : 1);
            ni *= I[k];
            nt *= L[k];
        }
        enum anml_dtype dt = idt[rnd(6)];
        int bits = anml_dtype_bits(dt);
        int64_t P = (int64_t)1 << bits, V = 1 + rnd(3);
        int axis = V > 1 ? (int)rnd((uint32_t)rank) : -1;
        L[rank] = P;
        L[rank + 1] = V;
        int64_t no = 1;
        for (int k = 0; k < rank; k++) {
            O[k] = k == axis ? I[k] * V : I[k];
            no *= O[k];
        }
        uint8_t *idx = malloc((size_t)ni);
        float *lutf = malloc((size_t)(nt * P * V) * sizeof(float));
        for (int64_t i = 0; i < ni; i++) {
            idx[i] = (uint8_t)rnd((uint32_t)P);
        }
        for (int64_t i = 0; i < nt * P * V; i++) {
            lutf[i] = (float)i;
        }
        struct mil_op *op = new_op("constexpr_lut_to_dense", "r", ANML_DTYPE_F32, rank, O);
        g_fn->block.n_ops = 0; /* reuse the slot */
        memset(g_wbuf, 0, sizeof g_wbuf);
        g_wlen = 64;
        arg(op, "indices", rnd(2) ? blob(dt, rank, I, idx) : imm(dt, rank, I, idx));
        arg(op, "lut", imm(ANML_DTYPE_F32, rank + 2, L, lutf));
        if (axis >= 0 || rnd(3) == 0) {
            arg(op, "vector_axis", imm_i32(axis >= 0 ? (rnd(2) ? axis : axis - rank) : 0));
        }
        struct anml_lut_weight w;
        struct anml_error err;
        if (anml__constexpr_lut_from_op(g_prog, op, &w, &err) != ANML_OK) {
            fail_msg("iteration %d: %s", iter, err.msg);
        }
        assert_int_equal(w.numel, no);
        float *ref = malloc((size_t)no * sizeof(float));
        for (int64_t f = 0; f < no; f++) {
            int64_t c[4], rem = f;
            for (int k = rank - 1; k >= 0; k--) {
                c[k] = rem % O[k];
                rem /= O[k];
            }
            int64_t v = 0, pflat = 0, tab = 0;
            for (int k = 0; k < rank; k++) {
                int64_t p = c[k];
                if (k == axis) {
                    p = c[k] / V;
                    v = c[k] % V;
                }
                pflat = pflat * I[k] + p;
                tab = tab * L[k] + p / (I[k] / L[k]);
            }
            ref[f] = lutf[(tab * P + idx[pflat]) * V + v];
        }
        float *got = malloc((size_t)no * sizeof(float));
        for (int t = 0; t < 8; t++) {
            int64_t first = rnd((uint32_t)no);
            int64_t n = rnd((uint32_t)(no - first + 1));
            anml__lut_decode_f32(&w, first, n, got);
            for (int64_t i = 0; i < n; i++) {
                if (got[i] != ref[first + i]) {
                    fail_msg("iteration %d (rank %d, bits %d, V %lld, axis %d): element %lld: %g "
                             "!= %g",
                             iter, rank, bits, (long long)V, axis, (long long)(first + i),
                             (double)got[i], (double)ref[first + i]);
                }
            }
            anml__lut_decode_raw(&w, first, n, got);
            assert_memory_equal(got, ref + first, (size_t)n * sizeof(float));
        }
        free(got);
        free(ref);
        free(idx);
        free(lutf);
    }
}

/* iOS16 form: attributes, packed uint8 indices (the uint2 example 0,3,2,1,3 -> 0x6C 0x03),
 * lut [4], shape uint32. */
static void test_lut_ios16(void **state) {
    (void)state;
    const uint8_t packed[2] = { 0x6c, 0x03 };
    const float lutf[4] = { -1.5f, 0.25f, 2.0f, 8.0f };
    uint16_t lut[4];
    fp16s(lut, lutf, 4);
    const uint32_t shape[2] = { 1, 5 };
    const int64_t d2[1] = { 2 }, d4[1] = { 4 }, ds[1] = { 2 }, o[2] = { 1, 5 };
    struct mil_op *op = new_op("constexpr_lut_to_dense", "w16", ANML_DTYPE_F16, 2, o);
    attr(op, "indices", imm(ANML_DTYPE_UINT8, 1, d2, packed));
    attr(op, "lut", imm(ANML_DTYPE_F16, 1, d4, lut));
    attr(op, "shape", imm(ANML_DTYPE_UINT32, 1, ds, shape));
    const float want[5] = { -1.5f, 8.0f, 2.0f, 0.25f, 8.0f };
    expect_f16(op, want, 5);
    struct anml_lut_weight w;
    struct anml_error err;
    assert_int_equal(anml__constexpr_lut_from_op(g_prog, op, &w, &err), ANML_OK);
    assert_int_equal(w.index_bits, 2);
    assert_int_equal(w.n_tables, 1);
    /* wrong byte count for 5 two-bit indices */
    const int64_t d3[1] = { 3 };
    const uint8_t three[3] = { 0x6c, 0x03, 0 };
    op = new_op("constexpr_lut_to_dense", "w16bad", ANML_DTYPE_F16, 2, o);
    attr(op, "indices", imm(ANML_DTYPE_UINT8, 1, d3, three));
    attr(op, "lut", imm(ANML_DTYPE_F16, 1, d4, lut));
    attr(op, "shape", imm(ANML_DTYPE_UINT32, 1, ds, shape));
    expect_error(op, 10, ANML_E_FORMAT, "5 2-bit indices need 2");
    /* a lut size that is not a power of two */
    const int64_t d5[1] = { 5 };
    uint16_t lut5[5] = { 0 };
    op = new_op("constexpr_lut_to_dense", "w16bad2", ANML_DTYPE_F16, 2, o);
    attr(op, "indices", imm(ANML_DTYPE_UINT8, 1, d2, packed));
    attr(op, "lut", imm(ANML_DTYPE_F16, 1, d5, lut5));
    attr(op, "shape", imm(ANML_DTYPE_UINT32, 1, ds, shape));
    expect_error(op, 10, ANML_E_FORMAT, "has 5 entries");
}

static void test_lut_errors(void **state) {
    (void)state;
    const int64_t di[2] = { 6, 2 };
    uint16_t lut[16] = { 0 };
    struct anml_lut_weight w;
    struct anml_error err;
    /* lut grid dimension that does not divide the indices dimension */
    const int64_t bad_div[4] = { 4, 1, 4, 1 };
    struct mil_op *op = new_op("constexpr_lut_to_dense", "e1", ANML_DTYPE_F16, 2, di);
    arg(op, "indices", imm(ANML_DTYPE_UINT2, 2, di, k_doc_idx));
    arg(op, "lut", imm(ANML_DTYPE_F16, 4, bad_div, lut));
    expect_error(op, 24, ANML_E_FORMAT,
                 "dimension 0 is 4, which does not divide indices "
                 "dimension 6");
    assert_int_equal(anml__constexpr_lut_from_op(g_prog, op, &w, &err), ANML_E_FORMAT);
    assert_non_null(strstr(err.msg, "constexpr_lut_to_dense 'e1'"));
    /* palette size must be 2^bits */
    const int64_t bad_p[4] = { 1, 1, 8, 1 };
    op = new_op("constexpr_lut_to_dense", "e2", ANML_DTYPE_F16, 2, di);
    arg(op, "indices", imm(ANML_DTYPE_UINT2, 2, di, k_doc_idx));
    arg(op, "lut", imm(ANML_DTYPE_F16, 4, bad_p, lut));
    expect_error(op, 24, ANML_E_FORMAT, "need exactly 4 entries");
    /* vector size > 1 without vector_axis; axis out of range */
    const int64_t vec[4] = { 1, 1, 4, 2 };
    op = new_op("constexpr_lut_to_dense", "e3", ANML_DTYPE_F16, 2, di);
    arg(op, "indices", imm(ANML_DTYPE_UINT2, 2, di, k_doc_idx));
    arg(op, "lut", imm(ANML_DTYPE_F16, 4, vec, lut));
    expect_error(op, 48, ANML_E_FORMAT, "requires 'vector_axis'");
    arg(op, "vector_axis", imm_i32(2));
    expect_error(op, 48, ANML_E_FORMAT, "vector_axis 2 out of range");
    /* wrong lut rank */
    const int64_t r3[3] = { 1, 4, 1 };
    op = new_op("constexpr_lut_to_dense", "e4", ANML_DTYPE_F16, 2, di);
    arg(op, "indices", imm(ANML_DTYPE_UINT2, 2, di, k_doc_idx));
    arg(op, "lut", imm(ANML_DTYPE_F16, 3, r3, lut));
    expect_error(op, 24, ANML_E_FORMAT, "rank(indices) + 2");
    /* index out of range in an unpacked immediate */
    const int64_t dl[4] = { 1, 1, 4, 1 };
    uint8_t idx_bad[12];
    memcpy(idx_bad, k_doc_idx, 12);
    idx_bad[7] = 4;
    op = new_op("constexpr_lut_to_dense", "e5", ANML_DTYPE_F16, 2, di);
    arg(op, "indices", imm(ANML_DTYPE_UINT2, 2, di, idx_bad));
    arg(op, "lut", imm(ANML_DTYPE_F16, 4, dl, lut));
    expect_error(op, 24, ANML_E_FORMAT, "element 7 is 4, outside 0..3");
    /* declared result dtype / shape mismatch; wrong buffer size */
    op = new_op("constexpr_lut_to_dense", "e6", ANML_DTYPE_F32, 2, di);
    arg(op, "indices", imm(ANML_DTYPE_UINT2, 2, di, k_doc_idx));
    arg(op, "lut", imm(ANML_DTYPE_F16, 4, dl, lut));
    expect_error(op, 48, ANML_E_FORMAT, "declared fp32, but the parameters give fp16");
    const int64_t wrong[2] = { 2, 6 };
    op = new_op("constexpr_lut_to_dense", "e7", ANML_DTYPE_F16, 2, wrong);
    arg(op, "indices", imm(ANML_DTYPE_UINT2, 2, di, k_doc_idx));
    arg(op, "lut", imm(ANML_DTYPE_F16, 4, dl, lut));
    expect_error(op, 24, ANML_E_FORMAT, "parameters give shape [6, 2]");
    op->results[0].type = anml__mil_tensor_type(g_prog->arena, ANML_DTYPE_F16, 2, di);
    expect_error(op, 23, ANML_E_INVALID_ARG, "needs 24");
    /* missing parameter; unsupported indices dtype */
    op = new_op("constexpr_lut_to_dense", "e8", ANML_DTYPE_F16, 2, di);
    arg(op, "indices", imm(ANML_DTYPE_UINT2, 2, di, k_doc_idx));
    expect_error(op, 24, ANML_E_FORMAT, "missing parameter 'lut'");
    op = new_op("constexpr_lut_to_dense", "e9", ANML_DTYPE_F16, 2, di);
    arg(op, "indices", imm(ANML_DTYPE_INT8, 2, di, k_doc_idx));
    arg(op, "lut", imm(ANML_DTYPE_F16, 4, dl, lut));
    expect_error(op, 24, ANML_E_FORMAT, "has dtype int8; expected uint1");
    /* a bad blob names the op, the parameter and the file position */
    struct mil_value *bv = blob(ANML_DTYPE_UINT2, 2, di, k_doc_idx);
    bv->blob_offset += 1;
    op = new_op("constexpr_lut_to_dense", "e10", ANML_DTYPE_F16, 2, di);
    arg(op, "indices", bv);
    arg(op, "lut", imm(ANML_DTYPE_F16, 4, dl, lut));
    expect_error(op, 24, ANML_E_FORMAT,
                 "constexpr_lut_to_dense 'e10': parameter 'indices': "
                 "sentinel");
    /* a name that is not a constant */
    op = new_op("constexpr_lut_to_dense", "e11", ANML_DTYPE_F16, 2, di);
    arg_name(op, "indices", "some_input");
    arg(op, "lut", imm(ANML_DTYPE_F16, 4, dl, lut));
    expect_error(op, 24, ANML_E_FORMAT, "bound to 'some_input', which is not a constant");
    /* not a lut op */
    op = new_op("constexpr_cast", "e12", ANML_DTYPE_F32, 2, di);
    assert_int_equal(anml__constexpr_lut_from_op(g_prog, op, &w, &err), ANML_E_INVALID_ARG);
    assert_non_null(strstr(err.msg, "not a constexpr_lut_to_dense op"));
    /* not a constexpr op at all */
    op = new_op("add", "e13", ANML_DTYPE_F32, 2, di);
    expect_error(op, 48, ANML_E_UNSUPPORTED, "unsupported constexpr op");
}

/* ---- other ops ---- */

static void test_affine_dequantize(void **state) {
    (void)state;
    const int8_t q[6] = { -1, 0, 1, 2, 3, 4 };
    const int8_t zp[3] = { 0, 1, 2 };
    const float sc[3] = { 1.0f, 0.5f, 2.0f };
    const int64_t dq[2] = { 2, 3 }, d3[1] = { 3 };
    struct mil_op *op = new_op("constexpr_affine_dequantize", "aq", ANML_DTYPE_F32, 2, dq);
    attr(op, "quantized_data", imm(ANML_DTYPE_INT8, 2, dq, q));
    attr(op, "zero_point", imm(ANML_DTYPE_INT8, 1, d3, zp));
    attr(op, "scale", imm(ANML_DTYPE_F32, 1, d3, sc));
    attr(op, "axis", imm_i32(1));
    const float want[6] = { -1.0f, -0.5f, -2.0f, 2.0f, 1.0f, 4.0f };
    expect_f32(op, 0, want, 6);
    /* scalar uint8 zero point, scalar fp16 scale 0.1 (rounded once: fp16(0.1f * (q - 3))) */
    const uint8_t qu[4] = { 0, 3, 200, 255 };
    const uint8_t zpu = 3;
    uint16_t s16 = anml__fp32_to_fp16(0.1f);
    const int64_t d4[1] = { 4 };
    op = new_op("constexpr_affine_dequantize", "aq16", ANML_DTYPE_F16, 1, d4);
    attr(op, "quantized_data", imm(ANML_DTYPE_UINT8, 1, d4, qu));
    attr(op, "zero_point", imm(ANML_DTYPE_UINT8, 0, NULL, &zpu));
    attr(op, "scale", imm(ANML_DTYPE_F16, 0, NULL, &s16));
    attr(op, "axis", imm_i32(0));
    float s = anml__fp16_to_fp32(s16);
    const float want16[4] = { anml__fp16_to_fp32(anml__fp32_to_fp16(s * -3.0f)), 0.0f,
                              anml__fp16_to_fp32(anml__fp32_to_fp16(s * 197.0f)),
                              anml__fp16_to_fp32(anml__fp32_to_fp16(s * 252.0f)) };
    expect_f16(op, want16, 4);
    /* per-axis vector of the wrong length */
    const int64_t d2[1] = { 2 };
    op = new_op("constexpr_affine_dequantize", "aqbad", ANML_DTYPE_F32, 2, dq);
    attr(op, "quantized_data", imm(ANML_DTYPE_INT8, 2, dq, q));
    attr(op, "zero_point", imm(ANML_DTYPE_INT8, 1, d2, zp));
    attr(op, "scale", imm(ANML_DTYPE_F32, 1, d3, sc));
    attr(op, "axis", imm_i32(-1));
    expect_error(op, 24, ANML_E_FORMAT, "'zero_point' must be a scalar or a vector of length 3");
}

static void test_blockwise_shift_scale(void **state) {
    (void)state;
    /* int4 data [2, 4] (packed blob), fp16 scale [1, 2], int4 offset [1, 2]: columns 0-1 use
     * (0.5, 1), columns 2-3 use (2, -1). */
    const uint8_t data[8] = { (uint8_t)-8, (uint8_t)-1, 0, 7, 1, 2, 3, 4 };
    const float scf[2] = { 0.5f, 2.0f };
    uint16_t sc[2];
    fp16s(sc, scf, 2);
    const uint8_t off[2] = { 1, (uint8_t)-1 };
    const int64_t dd[2] = { 2, 4 }, ds[2] = { 1, 2 };
    struct mil_op *op = new_op("constexpr_blockwise_shift_scale", "bs", ANML_DTYPE_F16, 2, dd);
    arg(op, "data", blob(ANML_DTYPE_INT4, 2, dd, data));
    arg(op, "scale", imm(ANML_DTYPE_F16, 2, ds, sc));
    arg(op, "offset", imm(ANML_DTYPE_INT4, 2, ds, off));
    const float want[8] = { -4.5f, -1.0f, 2.0f, 16.0f, 0.0f, 0.5f, 8.0f, 10.0f };
    expect_f16(op, want, 8);
    /* uint8 data, fp32 scale per row, no offset */
    const uint8_t du[6] = { 0, 1, 2, 10, 20, 30 };
    const float sr[2] = { 0.25f, -1.0f };
    const int64_t d23[2] = { 2, 3 }, d21[2] = { 2, 1 };
    op = new_op("constexpr_blockwise_shift_scale", "bs2", ANML_DTYPE_F32, 2, d23);
    arg(op, "data", imm(ANML_DTYPE_UINT8, 2, d23, du));
    arg(op, "scale", imm(ANML_DTYPE_F32, 2, d21, sr));
    const float want2[6] = { 0.0f, 0.25f, 0.5f, -10.0f, -20.0f, -30.0f };
    expect_f32(op, 0, want2, 6);
    /* scale rank and divisibility errors; offset dtype */
    const int64_t d3[1] = { 3 };
    op = new_op("constexpr_blockwise_shift_scale", "bs3", ANML_DTYPE_F32, 2, d23);
    arg(op, "data", imm(ANML_DTYPE_UINT8, 2, d23, du));
    const float sr3[3] = { 1.0f, 2.0f, 3.0f };
    arg(op, "scale", imm(ANML_DTYPE_F32, 1, d3, sr3));
    expect_error(op, 24, ANML_E_FORMAT, "'scale' has rank 1; data has rank 2");
    const int64_t d12[2] = { 1, 2 };
    op = new_op("constexpr_blockwise_shift_scale", "bs4", ANML_DTYPE_F32, 2, d23);
    arg(op, "data", imm(ANML_DTYPE_UINT8, 2, d23, du));
    arg(op, "scale", imm(ANML_DTYPE_F32, 2, d12, sr));
    expect_error(op, 24, ANML_E_FORMAT, "dimension 1 is 2, which does not divide data dimension 3");
    op = new_op("constexpr_blockwise_shift_scale", "bs5", ANML_DTYPE_F32, 2, d23);
    arg(op, "data", imm(ANML_DTYPE_UINT8, 2, d23, du));
    arg(op, "scale", imm(ANML_DTYPE_F32, 2, d21, sr));
    arg(op, "offset", imm(ANML_DTYPE_INT8, 2, d21, off));
    expect_error(op, 24, ANML_E_FORMAT, "'offset' has dtype int8; expected uint8");
}

static void test_sparse_to_dense(void **state) {
    (void)state;
    /* iOS16: mask 0b00100101 -> bits 0, 2, 5 of a [2, 3] output */
    const float nzf[3] = { 1.0f, 2.0f, 3.0f };
    uint16_t nz[3];
    fp16s(nz, nzf, 3);
    const uint8_t mask = 0x25;
    const uint32_t shape[2] = { 2, 3 };
    const int64_t d1[1] = { 1 }, d2[1] = { 2 }, d3[1] = { 3 }, o[2] = { 2, 3 };
    struct mil_op *op = new_op("constexpr_sparse_to_dense", "sp16", ANML_DTYPE_F16, 2, o);
    attr(op, "nonzero_data", imm(ANML_DTYPE_F16, 1, d3, nz));
    attr(op, "mask", imm(ANML_DTYPE_UINT8, 1, d1, &mask));
    attr(op, "shape", imm(ANML_DTYPE_UINT32, 1, d2, shape));
    const float want[6] = { 1.0f, 0.0f, 2.0f, 0.0f, 0.0f, 3.0f };
    expect_f16(op, want, 6);
    /* iOS18: uint1 mask [2, 3], int4 data (unpacked, sign-extended output bytes) */
    const uint8_t m18[6] = { 1, 0, 1, 0, 0, 1 };
    const uint8_t nz4[3] = { (uint8_t)-2, 5, (uint8_t)-8 };
    op = new_op("constexpr_sparse_to_dense", "sp18", ANML_DTYPE_INT4, 2, o);
    arg(op, "nonzero_data", blob(ANML_DTYPE_INT4, 1, d3, nz4));
    arg(op, "mask", blob(ANML_DTYPE_UINT1, 2, o, m18));
    const uint8_t want4[6] = { 0xfe, 0, 5, 0, 0, 0xf8 };
    expect_bytes(op, 0, want4, 6);
    /* count mismatch */
    op = new_op("constexpr_sparse_to_dense", "spbad", ANML_DTYPE_INT4, 2, o);
    arg(op, "nonzero_data", imm(ANML_DTYPE_INT4, 1, d2, nz4));
    arg(op, "mask", imm(ANML_DTYPE_UINT1, 2, o, m18));
    expect_error(op, 6, ANML_E_FORMAT, "mask has 3 set bits but 'nonzero_data' holds 2");
}

static void test_cast(void **state) {
    (void)state;
    const float f[3] = { 1.5f, -65504.0f, 0x1p-24f };
    uint16_t h[3];
    fp16s(h, f, 3);
    const int64_t d3[1] = { 3 };
    struct mil_op *op = new_op("constexpr_cast", "c", ANML_DTYPE_F32, 1, d3);
    attr(op, "source_val", imm(ANML_DTYPE_F16, 1, d3, h));
    attr(op, "output_dtype", imm_str("fp32"));
    expect_f32(op, 0, f, 3);
    op = new_op("constexpr_cast", "c2", ANML_DTYPE_F32, 1, d3);
    attr(op, "source_val", imm(ANML_DTYPE_F16, 1, d3, h));
    attr(op, "output_dtype", imm_str("int8"));
    expect_error(op, 12, ANML_E_UNSUPPORTED, "to 'int8'");
}

/* coremltools' constexpr_lut_to_sparse example, chained into constexpr_sparse_to_dense by name
 * (mask = result 0, values = result 1), scalar and vector (V = 2 along axis 0). */
static void test_lut_to_sparse_chain(void **state) {
    (void)state;
    const uint8_t mask[24] = { 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0, 1,
                               0, 1, 1, 0, 1, 0, 0, 0, 0, 1, 0, 0 };
    const uint8_t nzi[9] = { 0, 1, 1, 0, 1, 1, 0, 0, 1 };
    const float lutf[2] = { 2.0f, 3.0f };
    uint16_t lut[2];
    fp16s(lut, lutf, 2);
    const int64_t dm[2] = { 4, 6 }, d9[1] = { 9 }, dl[4] = { 1, 1, 2, 1 };
    struct mil_op *op = new_op("constexpr_lut_to_sparse", "ls", ANML_DTYPE_UINT1, 2, dm);
    add_result(op, "ls_vals", ANML_DTYPE_F16, 1, d9);
    arg(op, "indices_mask", blob(ANML_DTYPE_UINT1, 2, dm, mask));
    arg(op, "indices_nonzero_data", blob(ANML_DTYPE_UINT1, 1, d9, nzi));
    arg(op, "lut", imm(ANML_DTYPE_F16, 4, dl, lut));
    expect_bytes(op, 0, mask, 24);
    const float vals[9] = { 2, 3, 3, 2, 3, 3, 2, 2, 3 };
    uint16_t *got = mat(op, 1, 18);
    for (int i = 0; i < 9; i++) {
        assert_true(anml__fp16_to_fp32(got[i]) == vals[i]);
    }
    free(got);
    struct mil_op *dense = new_op("constexpr_sparse_to_dense", "ls_dense", ANML_DTYPE_F16, 2, dm);
    arg_name(dense, "nonzero_data", "ls_vals");
    arg_name(dense, "mask", "ls");
    const float wd[24] = { 2, 3, 0, 0, 0, 0, 3, 2, 0, 0, 0, 3, 0, 3, 2, 0, 2, 0, 0, 0, 0, 3, 0, 0 };
    expect_f16(dense, wd, 24);
    /* a name-bound input cannot stay compressed */
    struct mil_op *lut_nested = new_op("constexpr_lut_to_dense", "ln", ANML_DTYPE_F16, 2, dm);
    arg_name(lut_nested, "indices", "ls");
    arg(lut_nested, "lut", imm(ANML_DTYPE_F16, 4, dl, lut));
    struct anml_lut_weight w;
    struct anml_error err;
    assert_int_equal(anml__constexpr_lut_from_op(g_prog, lut_nested, &w, &err), ANML_E_UNSUPPORTED);
    assert_non_null(strstr(err.msg, "cannot stay compressed"));

    /* vector: lut [1, 1, 2, 2] = {(2, 2), (3, 3)}, vector_axis 0 -> mask [8, 6], 18 values */
    const float lutvf[4] = { 2, 2, 3, 3 };
    uint16_t lutv[4];
    fp16s(lutv, lutvf, 4);
    const int64_t dlv[4] = { 1, 1, 2, 2 }, dm8[2] = { 8, 6 }, d18[1] = { 18 };
    op = new_op("constexpr_lut_to_sparse", "lsv", ANML_DTYPE_UINT1, 2, dm8);
    add_result(op, "lsv_vals", ANML_DTYPE_F16, 1, d18);
    arg(op, "indices_mask", imm(ANML_DTYPE_UINT1, 2, dm, mask));
    arg(op, "indices_nonzero_data", imm(ANML_DTYPE_UINT1, 1, d9, nzi));
    arg(op, "lut", imm(ANML_DTYPE_F16, 4, dlv, lutv));
    arg(op, "vector_axis", imm_i32(0));
    uint8_t m8[48];
    for (int r = 0; r < 8; r++) {
        memcpy(m8 + r * 6, mask + (r / 2) * 6, 6);
    }
    expect_bytes(op, 0, m8, 48);
    const float vv[18] = { 2, 3, 2, 3, 3, 2, 3, 3, 2, 3, 3, 2, 2, 3, 2, 2, 3, 3 };
    got = mat(op, 1, 36);
    for (int i = 0; i < 18; i++) {
        assert_true(anml__fp16_to_fp32(got[i]) == vv[i]);
    }
    free(got);
}

/* coremltools' constexpr_sparse_blockwise_shift_scale example: per-column scale and offset. */
static void test_sparse_shift_scale(void **state) {
    (void)state;
    const uint8_t mask[16] = { 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 0, 0 };
    const int8_t nz[9] = { 10, 11, 3, 4, 5, 6, 7, 8, 9 };
    const float sc[4] = { 0.1f, 0.2f, 0.3f, 0.4f };
    const int8_t off[4] = { 1, 2, 3, 4 };
    const int64_t dm[2] = { 4, 4 }, d9[1] = { 9 }, ds[2] = { 1, 4 };
    struct mil_op *op =
        new_op("constexpr_sparse_blockwise_shift_scale", "ss", ANML_DTYPE_UINT1, 2, dm);
    add_result(op, "ss_vals", ANML_DTYPE_F32, 1, d9);
    arg(op, "data_mask", imm(ANML_DTYPE_UINT1, 2, dm, mask));
    arg(op, "nonzero_data", imm(ANML_DTYPE_INT8, 1, d9, nz));
    arg(op, "scale", imm(ANML_DTYPE_F32, 2, ds, sc));
    arg(op, "offset", imm(ANML_DTYPE_INT8, 2, ds, off));
    expect_bytes(op, 0, mask, 16);
    const float want[9] = { 0.1f * 9, 0.2f * 9, 0.1f * 2, 0.2f * 2, 0.3f * 2,
                            0.3f * 3, 0.4f * 3, 0.1f * 7, 0.2f * 7 };
    expect_f32(op, 1, want, 9);
}

/* Joint compression: an int8 LUT weight dequantized by a block-wise scale that refers to it by
 * name (the materializer decodes the inner op first). */
static void test_nested_lut_then_scale(void **state) {
    (void)state;
    const int64_t di[2] = { 2, 2 }, dl[4] = { 1, 1, 4, 1 }, ds[2] = { 2, 1 };
    const uint8_t idx[4] = { 0, 3, 2, 1 };
    const int8_t lut[4] = { -4, -1, 2, 8 };
    struct mil_op *inner = new_op("constexpr_lut_to_dense", "q_int8", ANML_DTYPE_INT8, 2, di);
    arg(inner, "indices", imm(ANML_DTYPE_UINT2, 2, di, idx));
    arg(inner, "lut", imm(ANML_DTYPE_INT8, 4, dl, lut));
    const float sc[2] = { 0.5f, 0.25f };
    struct mil_op *outer = new_op("constexpr_blockwise_shift_scale", "w", ANML_DTYPE_F32, 2, di);
    arg_name(outer, "data", "q_int8");
    arg(outer, "scale", imm(ANML_DTYPE_F32, 2, ds, sc));
    const float want[4] = { -2.0f, 4.0f, 0.5f, -0.25f };
    expect_f32(outer, 0, want, 4);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_lut_ios18_doc_example, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lut_vector, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lut_grouped_3_and_6_bit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lut_random_windows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lut_ios16, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lut_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_affine_dequantize, setup, teardown),
        cmocka_unit_test_setup_teardown(test_blockwise_shift_scale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sparse_to_dense, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cast, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lut_to_sparse_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sparse_shift_scale, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nested_lut_then_scale, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
