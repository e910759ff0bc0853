/* test_writer.c -- the .mlmodelc writer and anml__mil_program_equal on IR built by hand: literal
 * formatting (hex floats, strings), every statement form (multi-result, zero-result, tuple
 * argument, nested blocks, states, blobs with dedupe), parse-back equality, idempotence, and that
 * every kind of single difference makes two programs unequal. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coreml/blob.h"
#include "coreml/program.h"
#include "testutil.h"

/* ---- literal formatting ---- */

static void fmt(double v, char *buf, size_t cap) {
    int n = anml__mil_format_float(v, buf, cap);
    assert_true(n > 0 && (size_t)n < cap);
}

static void test_format_float_compiler_forms(void **state) {
    (void)state;
    /* the spellings coremlc prints (coreml-format.md §3.3) */
    static const struct {
        double v;
        const char *text;
    } cases[] = {
        { 0.0, "0x0p+0" },
        { -0.0, "-0x0p+0" },
        { 1.0, "0x1p+0" },
        { 0.5, "0x1p-1" },
        { -1.0, "-0x1p+0" },
        { (double)3.14f, "0x1.91eb86p+1" },
        { -10000.0, "-0x1.388p+13" },
        { 0x1p-24, "0x1p-24" },
        { 0x1.ff8p-15, "0x1.ff8p-15" },
        { 4.9406564584124654e-324, "0x1p-1074" }, /* a double subnormal, normalized */
    };
    char buf[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fmt(cases[i].v, buf, sizeof buf);
        assert_string_equal(buf, cases[i].text);
    }
    fmt((double)INFINITY, buf, sizeof buf);
    assert_string_equal(buf, "inf");
    fmt((double)-INFINITY, buf, sizeof buf);
    assert_string_equal(buf, "-inf");
    fmt((double)NAN, buf, sizeof buf);
    assert_string_equal(buf, "nan");
    fmt(-(double)NAN, buf, sizeof buf);
    assert_string_equal(buf, "nan");
    /* snprintf semantics: the needed length is returned when the buffer is short */
    assert_int_equal(anml__mil_format_float(0x1.91eb86p+1, buf, 4), 13);
    assert_int_equal(strlen(buf), 3);
}

static void test_format_float_fp16_all_patterns_roundtrip(void **state) {
    (void)state;
    char buf[64];
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = anml__fp16_to_fp32((uint16_t)h);
        fmt((double)f, buf, sizeof buf);
        char *end = NULL;
        double back = strtod(buf, &end);
        assert_true(end && *end == '\0');
        if (isnan(f)) {
            assert_string_equal(buf, "nan");
            assert_true(isnan(back));
            continue;
        }
        assert_int_equal(anml__fp32_to_fp16((float)back), h);
    }
    /* edge values named explicitly */
    fmt((double)anml__fp16_to_fp32(0x0001), buf, sizeof buf); /* smallest subnormal */
    assert_string_equal(buf, "0x1p-24");
    fmt((double)anml__fp16_to_fp32(0x03ff), buf, sizeof buf); /* largest subnormal */
    assert_string_equal(buf, "0x1.ff8p-15");
    fmt((double)anml__fp16_to_fp32(0x7bff), buf, sizeof buf); /* max */
    assert_string_equal(buf, "0x1.ffcp+15");
    fmt((double)anml__fp16_to_fp32(0x8000), buf, sizeof buf);
    assert_string_equal(buf, "-0x0p+0");
}

static void test_format_float_fp32_roundtrip(void **state) {
    (void)state;
    char buf[64];
    uint32_t x = 0x12345678u;
    const uint32_t fixed[] = { 0x00000001u, 0x007fffffu, 0x00800000u, 0x7f7fffffu, 0x80000000u,
                               0x80000001u, 0x3f800001u, 0x7f800000u, 0xff800000u };
    for (int i = 0; i < 200000 + (int)(sizeof fixed / sizeof fixed[0]); i++) {
        uint32_t bits;
        if (i < (int)(sizeof fixed / sizeof fixed[0])) {
            bits = fixed[i];
        } else {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            bits = x;
        }
        float f;
        memcpy(&f, &bits, 4);
        if (isnan(f)) {
            continue;
        }
        fmt((double)f, buf, sizeof buf);
        char *end = NULL;
        float back = (float)strtod(buf, &end);
        assert_true(*end == '\0');
        uint32_t bb;
        memcpy(&bb, &back, 4);
        assert_int_equal(bb, bits);
    }
    fmt((double)0x1p-149f, buf, sizeof buf);
    assert_string_equal(buf, "0x1p-149");
    fmt((double)0x1.fffffep+127f, buf, sizeof buf);
    assert_string_equal(buf, "0x1.fffffep+127");
}

/* The fp16 literals of a real coremlc file print back exactly as the compiler wrote them. */
static void test_format_float_matches_fixture(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    char *text = anml_test_read_file(
        anml_test_shared_path("fixtures/mil-samples/rebeckerspecialties_mlmodelc-export/"
                              "fp16-subnormal-cast/model.mil"),
        NULL);
    assert_non_null(text);
    const char *p = strstr(text, "tensor<fp16, [5]>([");
    assert_non_null(p);
    p += strlen("tensor<fp16, [5]>([");
    int n = 0;
    while (*p && *p != ']') {
        const char *end = p;
        while (*end != ',' && *end != ']') {
            end++;
        }
        char lit[64];
        snprintf(lit, sizeof lit, "%.*s", (int)(end - p), p);
        char *e = NULL;
        double v = strtod(lit, &e);
        assert_true(*e == '\0');
        uint16_t h = anml__fp32_to_fp16((float)v);
        char buf[64];
        fmt((double)anml__fp16_to_fp32(h), buf, sizeof buf);
        assert_string_equal(buf, lit);
        n++;
        p = *end == ',' ? end + 2 : end;
    }
    assert_int_equal(n, 5);
    free(text);
}

static void test_format_string_escapes(void **state) {
    (void)state;
    char buf[64];
    assert_int_equal(anml__mil_format_string("plain", buf, sizeof buf), 7);
    assert_string_equal(buf, "\"plain\"");
    anml__mil_format_string("a\"b\\c\nd\te", buf, sizeof buf);
    assert_string_equal(buf, "\"a\\\"b\\\\c\\nd\\te\"");
    anml__mil_format_string("", buf, sizeof buf);
    assert_string_equal(buf, "\"\"");
    anml__mil_format_string("caf\xc3\xa9", buf, sizeof buf); /* UTF-8 passes through */
    assert_string_equal(buf, "\"caf\xc3\xa9\"");
}

/* ---- building IR by hand ---- */

#define CAP 24

static void *xalloc(struct mil_program *p, size_t n) {
    void *r = anml__arena_alloc(p->arena, n);
    assert_non_null(r);
    return r;
}

static char *xstr(struct mil_program *p, const char *s) {
    char *r = anml__arena_strdup(p->arena, s);
    assert_non_null(r);
    return r;
}

static struct mil_type *tt(struct mil_program *p, enum anml_dtype dt, int32_t rank,
                           const int64_t *dims) {
    struct mil_type *t = anml__mil_tensor_type(p->arena, dt, rank, dims);
    assert_non_null(t);
    return t;
}

static struct mil_type *wrap(struct mil_program *p, enum mil_type_kind k, int32_t n,
                             struct mil_type **elems) {
    struct mil_type *t = xalloc(p, sizeof *t);
    t->kind = k;
    t->n_elems = n;
    t->elems = xalloc(p, (size_t)n * sizeof *t->elems);
    memcpy(t->elems, elems, (size_t)n * sizeof *elems);
    t->list_length = MIL_DIM_UNKNOWN;
    return t;
}

static struct mil_value *imm(struct mil_program *p, struct mil_type *t, const void *data,
                             int64_t n) {
    struct mil_value *v = xalloc(p, sizeof *v);
    v->kind = MIL_VALUE_TENSOR;
    v->type = t;
    v->n_elem = n;
    size_t es = t->dtype == ANML_DTYPE_STRING ? sizeof(char *) : anml__dtype_size(t->dtype);
    v->data = xalloc(p, (size_t)n * es + 1);
    memcpy(v->data, data, (size_t)n * es);
    return v;
}

static struct mil_value *sval(struct mil_program *p, const char *s) {
    char *c = xstr(p, s);
    return imm(p, tt(p, ANML_DTYPE_STRING, 0, NULL), &c, 1);
}

static struct mil_value *i32val(struct mil_program *p, int32_t x) {
    return imm(p, tt(p, ANML_DTYPE_INT32, 0, NULL), &x, 1);
}

static struct mil_value *blobval(struct mil_program *p, struct mil_type *t, uint64_t off) {
    struct mil_value *v = xalloc(p, sizeof *v);
    v->kind = MIL_VALUE_BLOB;
    v->type = t;
    v->blob_path = xstr(p, "@model_path/weights/weight.bin");
    v->blob_offset = off;
    return v;
}

static struct mil_value *items(struct mil_program *p, enum mil_value_kind k, struct mil_type *t,
                               int32_t n, struct mil_value **its) {
    struct mil_value *v = xalloc(p, sizeof *v);
    v->kind = k;
    v->type = t;
    v->n_items = n;
    v->items = xalloc(p, (size_t)n * sizeof *its);
    memcpy(v->items, its, (size_t)n * sizeof *its);
    return v;
}

static void block_init(struct mil_program *p, struct mil_block *b) {
    b->ops = xalloc(p, CAP * sizeof *b->ops);
    b->outputs = xalloc(p, CAP * sizeof *b->outputs);
}

static struct mil_op *add_op(struct mil_program *p, struct mil_block *b, const char *type) {
    assert_true(b->n_ops < CAP);
    struct mil_op *op = &b->ops[b->n_ops++];
    op->type = xstr(p, type);
    op->args = xalloc(p, CAP * sizeof *op->args);
    op->results = xalloc(p, CAP * sizeof *op->results);
    op->attrs = xalloc(p, CAP * sizeof *op->attrs);
    return op;
}

static void add_result(struct mil_program *p, struct mil_op *op, const char *name,
                       struct mil_type *t) {
    op->results[op->n_results].name = xstr(p, name);
    op->results[op->n_results++].type = t;
}

static void add_attr(struct mil_program *p, struct mil_op *op, const char *name,
                     struct mil_value *v) {
    op->attrs[op->n_attrs].name = xstr(p, name);
    op->attrs[op->n_attrs++].value = v;
}

/* names: NULL-terminated list of bound names (several = a tuple argument) */
static void arg_names(struct mil_program *p, struct mil_op *op, const char *name,
                      const char *const *names) {
    struct mil_arg *a = &op->args[op->n_args++];
    a->name = xstr(p, name);
    while (names[a->n_bindings]) {
        a->n_bindings++;
    }
    a->bindings = xalloc(p, (size_t)a->n_bindings * sizeof *a->bindings);
    for (int32_t i = 0; i < a->n_bindings; i++) {
        a->bindings[i].name = xstr(p, names[i]);
    }
}

static void arg_name(struct mil_program *p, struct mil_op *op, const char *name,
                     const char *bound) {
    const char *names[] = { bound, NULL };
    arg_names(p, op, name, names);
}

static void arg_value(struct mil_program *p, struct mil_op *op, const char *name,
                      struct mil_value *v) {
    struct mil_arg *a = &op->args[op->n_args++];
    a->name = xstr(p, name);
    a->n_bindings = 1;
    a->bindings = xalloc(p, sizeof *a->bindings);
    a->bindings[0].value = v;
}

static void set_outputs(struct mil_program *p, struct mil_block *b, const char *const *names) {
    for (b->n_outputs = 0; names[b->n_outputs]; b->n_outputs++) {
        b->outputs[b->n_outputs] = xstr(p, names[b->n_outputs]);
    }
}

static struct mil_feature feature(struct mil_program *p, const char *name, enum mil_feature_kind k,
                                  enum anml_dtype dt, int32_t rank, const int64_t *shape) {
    struct mil_feature f = { 0 };
    f.name = xstr(p, name);
    f.short_description = xstr(p, "");
    f.kind = k;
    f.dtype = dt;
    f.rank = rank;
    f.shape = xalloc(p, (size_t)rank * sizeof(int64_t) + 1);
    if (rank > 0) {
        memcpy(f.shape, shape, (size_t)rank * sizeof(int64_t));
    }
    return f;
}

/* A weight file per §5 written by the test itself: blob 0 at 64 (fp16 [4, 4], values i * 0.25),
 * blob 1 at 192 (uint4 [3] = 1, 2, 3 -> 0x21 0x03, padding 4). `salt` changes one byte of
 * blob 0. The same data is placed at different offsets when `shift` is set (an extra unused
 * blob first), to prove equality ignores offsets. */
static void write_weight_file(const char *dir, int salt, bool shift, uint64_t *off0,
                              uint64_t *off1) {
    uint8_t buf[1024] = { 0 };
    uint64_t pos = 64;
    uint32_t count = shift ? 3 : 2;
    buf[0] = (uint8_t)count;
    buf[4] = 2;
    if (shift) { /* an unreferenced fp32 [2] blob */
        const uint8_t rec[] = { 0xef, 0xbe, 0xad, 0xde, 2 };
        memcpy(buf + pos, rec, sizeof rec);
        buf[pos + 8] = 8;
        buf[pos + 16] = (uint8_t)(pos + 64);
        pos = 192;
    }
    *off0 = pos;
    const uint8_t rec0[] = { 0xef, 0xbe, 0xad, 0xde, 1 };
    memcpy(buf + pos, rec0, sizeof rec0);
    buf[pos + 8] = 32; /* 16 fp16 */
    uint64_t data0 = pos + 64;
    for (int i = 0; i < 8; i++) {
        buf[pos + 16 + i] = (uint8_t)(data0 >> (8 * i));
    }
    for (int i = 0; i < 16; i++) {
        uint16_t h = anml__fp32_to_fp16((float)i * 0.25f);
        buf[data0 + 2 * (size_t)i] = (uint8_t)h;
        buf[data0 + 2 * (size_t)i + 1] = (uint8_t)(h >> 8);
    }
    buf[data0 + 7] ^= (uint8_t)salt;
    pos = data0 + 64; /* 32 bytes of data, aligned up */
    *off1 = pos;
    const uint8_t rec1[] = { 0xef, 0xbe, 0xad, 0xde, 11 };
    memcpy(buf + pos, rec1, sizeof rec1);
    buf[pos + 8] = 2;
    buf[pos + 16] = (uint8_t)(pos + 64);
    buf[pos + 17] = (uint8_t)((pos + 64) >> 8);
    buf[pos + 24] = 4;
    buf[pos + 64] = 0x21;
    buf[pos + 65] = 0x03;
    size_t size = (size_t)pos + 66;
    char path[4096];
    snprintf(path, sizeof path, "%s/weights", dir);
    assert_int_equal(anml__mkdirs(path, NULL), ANML_OK);
    snprintf(path, sizeof path, "%s/weights/weight.bin", dir);
    assert_int_equal(anml__write_file(path, buf, size, NULL), ANML_OK);
}

/* The hand-built program. `dir` holds its weights (see write_weight_file). */
static struct mil_program *build(const char *dir, int salt, bool shift) {
    uint64_t off0, off1;
    write_weight_file(dir, salt, shift, &off0, &off1);
    struct mil_program *p = anml__mil_program_new();
    assert_non_null(p);
    p->format = MIL_FORMAT_MLMODELC;
    p->spec_version = 9;
    p->model_dir = xstr(p, dir);
    p->blobs = anml__blob_store_new(dir);
    assert_non_null(p->blobs);

    /* buildInfo = dict<string, string>({{"coremlc-version", "3600.25.1"}, {"x", "y"}}) */
    struct mil_type *str_t = tt(p, ANML_DTYPE_STRING, 0, NULL);
    struct mil_type *kv[] = { str_t, str_t };
    struct mil_value *bi[] = { sval(p, "coremlc-version"), sval(p, "3600.25.1"), sval(p, "x"),
                               sval(p, "y") };
    p->n_attrs = 1;
    p->attrs = xalloc(p, sizeof *p->attrs);
    p->attrs[0].name = xstr(p, "buildInfo");
    p->attrs[0].value = items(p, MIL_VALUE_DICT, wrap(p, MIL_TYPE_DICT, 2, kv), 4, bi);

    p->n_functions = 2;
    p->functions = xalloc(p, 2 * sizeof *p->functions);

    /* ---- func main<ios18>(tensor<fp16, [1, 4]> x, state<tensor<fp16, [2, 4]>> cache) ---- */
    struct mil_function *f = &p->functions[0];
    f->name = xstr(p, "main");
    f->opset = 8;
    f->n_inputs = 2;
    f->inputs = xalloc(p, 2 * sizeof *f->inputs);
    f->inputs[0].name = xstr(p, "x");
    f->inputs[0].type = tt(p, ANML_DTYPE_F16, 2, (const int64_t[]){ 1, 4 });
    struct mil_type *cache_t = tt(p, ANML_DTYPE_F16, 2, (const int64_t[]){ 2, 4 });
    f->inputs[1].name = xstr(p, "cache");
    f->inputs[1].type = wrap(p, MIL_TYPE_STATE, 1, &cache_t);
    struct mil_block *b = &f->block;
    block_init(p, b);

    struct mil_type *w_t = tt(p, ANML_DTYPE_F16, 2, (const int64_t[]){ 4, 4 });
    struct mil_op *op = add_op(p, b, "const");
    add_result(p, op, "w", w_t);
    add_attr(p, op, "val", blobval(p, w_t, off0));
    add_attr(p, op, "name", sval(p, "w"));

    op = add_op(p, b, "const"); /* the same blob again: written once */
    add_result(p, op, "w_again", w_t);
    add_attr(p, op, "name", sval(p, "w_again"));
    add_attr(p, op, "val", blobval(p, w_t, off0));

    struct mil_type *idx_t = tt(p, ANML_DTYPE_UINT4, 1, (const int64_t[]){ 3 });
    op = add_op(p, b, "const");
    add_result(p, op, "idx", idx_t);
    add_attr(p, op, "val", blobval(p, idx_t, off1));

    struct mil_type *y_t = tt(p, ANML_DTYPE_F16, 2, (const int64_t[]){ 1, 4 });
    op = add_op(p, b, "matmul"); /* arguments deliberately not in name order */
    add_result(p, op, "y", y_t);
    arg_name(p, op, "y", "w");
    arg_name(p, op, "x", "x");
    arg_value(p, op, "transpose_y", imm(p, tt(p, ANML_DTYPE_BOOL, 0, NULL), "\1", 1));
    add_attr(p, op, "name", sval(p, "matmul_0"));

    struct mil_type *half_t = tt(p, ANML_DTYPE_F16, 2, (const int64_t[]){ 1, 2 });
    op = add_op(p, b, "split"); /* two results */
    add_result(p, op, "a", half_t);
    add_result(p, op, "bb", half_t);
    arg_value(p, op, "axis", i32val(p, 1));
    arg_value(p, op, "num_splits", i32val(p, 2));
    arg_name(p, op, "x", "y");
    add_attr(p, op, "name", sval(p, "split_0"));

    op = add_op(p, b, "concat"); /* a tuple argument */
    add_result(p, op, "c", y_t);
    arg_value(p, op, "axis", i32val(p, 1));
    arg_value(p, op, "interleave", imm(p, tt(p, ANML_DTYPE_BOOL, 0, NULL), "\0", 1));
    arg_names(p, op, "values", (const char *const[]){ "a", "bb", "a", NULL });

    op = add_op(p, b, "read_state");
    add_result(p, op, "kv", cache_t);
    arg_name(p, op, "input", "cache");

    op = add_op(p, b, "write_state"); /* no result */
    arg_name(p, op, "input", "cache");
    arg_name(p, op, "data", "kv");
    add_attr(p, op, "name", sval(p, "kv_write_state"));

    /* immediate literals of several dtypes, incl. subnormal, -0, inf and a tricky string */
    const uint16_t h[6] = { 0x0001, 0x8000, 0x7bff, 0x7c00, 0xfc00, 0x3555 };
    op = add_op(p, b, "const");
    struct mil_type *h_t = tt(p, ANML_DTYPE_F16, 2, (const int64_t[]){ 2, 3 });
    add_result(p, op, "hvals", h_t);
    add_attr(p, op, "val", imm(p, h_t, h, 6));
    const float fv[3] = { 0x1p-149f, -0.0f, 3.14f };
    op = add_op(p, b, "const");
    struct mil_type *f_t = tt(p, ANML_DTYPE_F32, 1, (const int64_t[]){ 3 });
    add_result(p, op, "fvals", f_t);
    add_attr(p, op, "val", imm(p, f_t, fv, 3));
    const int64_t iv[2] = { INT64_MIN, INT64_MAX };
    op = add_op(p, b, "const");
    struct mil_type *i64_t = tt(p, ANML_DTYPE_INT64, 1, (const int64_t[]){ 2 });
    add_result(p, op, "ivals", i64_t);
    add_attr(p, op, "val", imm(p, i64_t, iv, 2));
    /* the other immediate dtypes the text form carries: bf16, int4 (sign-extended), uint32 */
    const uint16_t bf[2] = { 0x3f80, 0x8001 }; /* 1.0, the smallest negative subnormal */
    struct mil_type *bf_t = tt(p, ANML_DTYPE_BF16, 1, (const int64_t[]){ 2 });
    const int8_t i4[3] = { -8, 7, -1 };
    struct mil_type *i4_t = tt(p, ANML_DTYPE_INT4, 1, (const int64_t[]){ 3 });
    const uint32_t u32[1] = { UINT32_MAX };
    struct mil_type *u32_t = tt(p, ANML_DTYPE_UINT32, 1, (const int64_t[]){ 1 });
    op = add_op(p, b, "misc_literals"); /* an op with literal arguments only, no result */
    arg_value(p, op, "bf", imm(p, bf_t, bf, 2));
    arg_value(p, op, "i4", imm(p, i4_t, i4, 3));
    arg_value(p, op, "u32", imm(p, u32_t, u32, 1));
    op = add_op(p, b, "const");
    add_result(p, op, "s", str_t);
    add_attr(p, op, "val", sval(p, "a\"b\\c\nd\te"));

    /* nested blocks: cond with two branches, while_loop with a block input */
    struct mil_type *i32_t = tt(p, ANML_DTYPE_INT32, 0, NULL);
    op = add_op(p, b, "const");
    add_result(p, op, "pred", tt(p, ANML_DTYPE_BOOL, 0, NULL));
    add_attr(p, op, "val", imm(p, tt(p, ANML_DTYPE_BOOL, 0, NULL), "\1", 1));
    op = add_op(p, b, "cond");
    add_result(p, op, "r", i32_t);
    arg_name(p, op, "pred", "pred");
    add_attr(p, op, "name", sval(p, "cond_0"));
    op->n_blocks = 2;
    op->blocks = xalloc(p, 2 * sizeof *op->blocks);
    for (int k = 0; k < 2; k++) {
        struct mil_block *nb = &op->blocks[k];
        block_init(p, nb);
        struct mil_op *in = add_op(p, nb, "const");
        add_result(p, in, k ? "two" : "one", i32_t);
        add_attr(p, in, "val", i32val(p, k ? 2 : 1));
        set_outputs(p, nb, (const char *const[]){ k ? "two" : "one", NULL });
    }
    op = add_op(p, b, "while_loop");
    add_result(p, op, "loop_out", i32_t);
    arg_names(p, op, "loop_vars", (const char *const[]){ "r", NULL });
    op->n_blocks = 2;
    op->blocks = xalloc(p, 2 * sizeof *op->blocks);
    for (int k = 0; k < 2; k++) {
        struct mil_block *nb = &op->blocks[k];
        block_init(p, nb);
        nb->n_inputs = 1;
        nb->inputs = xalloc(p, sizeof *nb->inputs);
        nb->inputs[0].name = xstr(p, k ? "i_body" : "i_cond");
        nb->inputs[0].type = i32_t;
        struct mil_op *in = add_op(p, nb, k ? "add" : "less");
        add_result(p, in, k ? "i_next" : "go", k ? i32_t : tt(p, ANML_DTYPE_BOOL, 0, NULL));
        arg_name(p, in, "x", k ? "i_body" : "i_cond");
        arg_value(p, in, "y", i32val(p, k ? 1 : 10));
        set_outputs(p, nb, (const char *const[]){ k ? "i_next" : "go", NULL });
    }
    set_outputs(p, b, (const char *const[]){ "c", "loop_out", NULL });

    /* a function attribute with tuple / dict / list values (FlexibleShapeInformation shape) */
    f->n_attrs = 1;
    f->attrs = xalloc(p, sizeof *f->attrs);
    f->attrs[0].name = xstr(p, "FlexibleShapeInformation");
    struct mil_type *dims_t = tt(p, ANML_DTYPE_INT32, 1, (const int64_t[]){ MIL_DIM_UNKNOWN });
    struct mil_type *dkv[] = { str_t, dims_t };
    struct mil_type *dict_t = wrap(p, MIL_TYPE_DICT, 2, dkv);
    struct mil_type *pair_e[] = { str_t, dict_t };
    struct mil_type *pair_t = wrap(p, MIL_TYPE_TUPLE, 2, pair_e);
    struct mil_type *pair2_t_elem = tt(p, ANML_DTYPE_INT32, 1, (const int64_t[]){ 2 });
    struct mil_type *list_t = wrap(p, MIL_TYPE_LIST, 1, &pair2_t_elem);
    struct mil_type *dkv2[] = { str_t, list_t };
    struct mil_type *pairb_e[] = { str_t, wrap(p, MIL_TYPE_DICT, 2, dkv2) };
    struct mil_type *pairb_t = wrap(p, MIL_TYPE_TUPLE, 2, pairb_e);
    struct mil_type *outer_e[] = { pair_t, pairb_t };
    const int32_t four[2] = { 1, 4 };
    /* items of containers carry their concrete type: the text form writes them bare */
    struct mil_value *shape_v = imm(p, tt(p, ANML_DTYPE_INT32, 1, (const int64_t[]){ 2 }), four, 2);
    struct mil_value *d1_items[] = { sval(p, "x"), shape_v };
    struct mil_value *d1 = items(p, MIL_VALUE_DICT, dict_t, 2, d1_items);
    struct mil_value *p1_items[] = { sval(p, "DefaultShapes"), d1 };
    struct mil_value *p1 = items(p, MIL_VALUE_TUPLE, pair_t, 2, p1_items);
    const int32_t r0[2] = { 1, 1 }, r1[2] = { 4, 4 };
    struct mil_value *ranges[] = { imm(p, pair2_t_elem, r0, 2), imm(p, pair2_t_elem, r1, 2) };
    struct mil_value *l = items(p, MIL_VALUE_LIST, list_t, 2, ranges);
    struct mil_value *d2_items[] = { sval(p, "x"), l };
    struct mil_value *d2 = items(p, MIL_VALUE_DICT, pairb_e[1], 2, d2_items);
    struct mil_value *p2_items[] = { sval(p, "RangeDims"), d2 };
    struct mil_value *p2 = items(p, MIL_VALUE_TUPLE, pairb_t, 2, p2_items);
    struct mil_value *outer_items[] = { p1, p2 };
    f->attrs[0].value =
        items(p, MIL_VALUE_TUPLE, wrap(p, MIL_TYPE_TUPLE, 2, outer_e), 2, outer_items);

    /* ---- func second<ios17>(tensor<fp32, [?]> input) ---- */
    f = &p->functions[1];
    f->name = xstr(p, "second");
    f->opset = 7;
    f->n_inputs = 1;
    f->inputs = xalloc(p, sizeof *f->inputs);
    f->inputs[0].name = xstr(p, "input");
    f->inputs[0].type = tt(p, ANML_DTYPE_F32, 1, (const int64_t[]){ MIL_DIM_UNKNOWN });
    block_init(p, &f->block);
    op = add_op(p, &f->block, "relu"); /* no attribute block */
    add_result(p, op, "output", f->inputs[0].type);
    arg_name(p, op, "x", "input");
    set_outputs(p, &f->block, (const char *const[]){ "output", NULL });

    /* ---- description ---- */
    struct mil_model_desc *d = &p->desc;
    d->multifunction = true;
    d->default_function = xstr(p, "main");
    d->author = xstr(p, "anml tests");
    d->version = xstr(p, "1.2.3");
    d->short_description = xstr(p, "hand-built \"program\"");
    d->n_user = 2;
    d->user_keys = xalloc(p, 2 * sizeof(char *));
    d->user_values = xalloc(p, 2 * sizeof(char *));
    d->user_keys[0] = xstr(p, "zeta");
    d->user_values[0] = xstr(p, "last-but-first");
    d->user_keys[1] = xstr(p, "com.anemll.context_length");
    d->user_values[1] = xstr(p, "64");
    d->n_functions = 2;
    d->functions = xalloc(p, 2 * sizeof *d->functions);
    struct mil_function_desc *fd = &d->functions[0];
    fd->name = xstr(p, "main");
    fd->n_inputs = 1;
    fd->inputs = xalloc(p, sizeof *fd->inputs);
    fd->inputs[0] =
        feature(p, "x", MIL_FEATURE_MULTIARRAY, ANML_DTYPE_F16, 2, (const int64_t[]){ 1, 4 });
    fd->inputs[0].n_enum_shapes = 2;
    fd->inputs[0].enum_shapes = xalloc(p, 2 * sizeof(int64_t *));
    fd->inputs[0].enum_shapes[0] = xalloc(p, 2 * sizeof(int64_t));
    fd->inputs[0].enum_shapes[1] = xalloc(p, 2 * sizeof(int64_t));
    memcpy(fd->inputs[0].enum_shapes[0], (const int64_t[]){ 1, 4 }, 2 * sizeof(int64_t));
    memcpy(fd->inputs[0].enum_shapes[1], (const int64_t[]){ 2, 4 }, 2 * sizeof(int64_t));
    fd->n_outputs = 2;
    fd->outputs = xalloc(p, 2 * sizeof *fd->outputs);
    fd->outputs[0] =
        feature(p, "c", MIL_FEATURE_MULTIARRAY, ANML_DTYPE_F16, 2, (const int64_t[]){ 1, 4 });
    fd->outputs[0].short_description = xstr(p, "the \"result\"\nline two");
    fd->outputs[1] = feature(p, "loop_out", MIL_FEATURE_MULTIARRAY, ANML_DTYPE_INT32, 0, NULL);
    fd->outputs[1].optional = true;
    fd->n_states = 1;
    fd->states = xalloc(p, sizeof *fd->states);
    fd->states[0] =
        feature(p, "cache", MIL_FEATURE_STATE, ANML_DTYPE_F16, 2, (const int64_t[]){ 2, 4 });
    fd = &d->functions[1];
    fd->name = xstr(p, "second");
    fd->n_inputs = 1;
    fd->inputs = xalloc(p, sizeof *fd->inputs);
    fd->inputs[0] =
        feature(p, "input", MIL_FEATURE_MULTIARRAY, ANML_DTYPE_F32, 1, (const int64_t[]){ 2 });
    fd->inputs[0].has_range = true;
    fd->inputs[0].range_lo = xalloc(p, sizeof(int64_t));
    fd->inputs[0].range_hi = xalloc(p, sizeof(int64_t));
    fd->inputs[0].range_lo[0] = 1;
    fd->inputs[0].range_hi[0] = -1;
    fd->n_outputs = 1;
    fd->outputs = xalloc(p, sizeof *fd->outputs);
    fd->outputs[0] =
        feature(p, "output", MIL_FEATURE_MULTIARRAY, ANML_DTYPE_F32, 1, (const int64_t[]){ 2 });
    return p;
}

/* ---- writing ---- */

static char *path_in(const char *dir, const char *rel) {
    size_t n = strlen(dir) + strlen(rel) + 2;
    char *r = malloc(n);
    snprintf(r, n, "%s/%s", dir, rel);
    return r;
}

static char *slurp(const char *dir, const char *rel, size_t *size) {
    char *p = path_in(dir, rel);
    char *t = anml_test_read_file(p, size);
    free(p);
    return t;
}

static void test_write_statement_forms(void **state) {
    (void)state;
    char *src = anml_test_tmpdir("writer-src");
    char *out = anml_test_tmpdir("writer-out");
    struct mil_program *p = build(src, 0, false);
    struct anml_error err = { 0 };
    enum anml_status st = anml__mil_write_mlmodelc(p, out, &err);
    if (st != ANML_OK) {
        fail_msg("write failed: %s: %s", err.where, err.msg);
    }
    char *mil = slurp(out, "model.mil", NULL);
    assert_non_null(mil);
    /* header and the coremlc spellings of §3.1/§3.2 */
    assert_true(strncmp(mil,
                        "program(1.3)\n[buildInfo = dict<string, string>({{\"coremlc-version\", "
                        "\"3600.25.1\"}, {\"x\", \"y\"}})]\n{\n",
                        strlen("program(1.3)\n[buildInfo = dict<string, string>({{\"coremlc-"
                               "version\", \"3600.25.1\"}, {\"x\", \"y\"}})]\n{\n")) == 0);
    assert_non_null(strstr(mil, "    func main<ios18>(tensor<fp16, [1, 4]> x, "
                                "state<tensor<fp16, [2, 4]>> cache) [FlexibleShapeInformation = "));
    assert_non_null(strstr(mil, "\n    func second<ios17>(tensor<fp32, [?]> input) {\n"));
    assert_non_null(strstr(mil,
                           "            tensor<fp16, [4, 4]> w = const()[name = string(\"w\"), "
                           "val = tensor<fp16, [4, 4]>(BLOBFILE(path = string(\"@model_path/"
                           "weights/weight.bin\"), offset = uint64(64)))];\n"));
    /* the second reference to the same blob reuses its record */
    assert_non_null(strstr(mil,
                           "w_again = const()[name = string(\"w_again\"), val = tensor<fp16, "
                           "[4, 4]>(BLOBFILE(path = string(\"@model_path/weights/weight.bin\"), "
                           "offset = uint64(64)))];"));
    assert_non_null(strstr(mil, "offset = uint64(192)"));
    assert_non_null(strstr(mil, "y = matmul(transpose_y = bool(true), x = x, y = w)[name = "
                                "string(\"matmul_0\")];"));
    assert_non_null(strstr(mil, "            tensor<fp16, [1, 2]> a, tensor<fp16, [1, 2]> bb = "
                                "split(axis = int32(1), num_splits = int32(2), x = y)"));
    assert_non_null(strstr(mil, "values = (a, bb, a));\n"));
    assert_non_null(strstr(mil, "            write_state(data = kv, input = cache)[name = "
                                "string(\"kv_write_state\")];\n"));
    assert_non_null(strstr(mil, "tensor<fp16, [2, 3]>([[0x1p-24, -0x0p+0, 0x1.ffcp+15], [inf, "
                                "-inf, 0x1.554p-2]])"));
    assert_non_null(strstr(mil, "tensor<fp32, [3]>([0x1p-149, -0x0p+0, 0x1.91eb86p+1])"));
    assert_non_null(strstr(mil, "([-9223372036854775808, 9223372036854775807])"));
    assert_non_null(strstr(mil, "            misc_literals(bf = tensor<bf16, [2]>([0x1p+0, "
                                "-0x1p-133]), i4 = tensor<int4, [3]>([-8, 7, -1]), u32 = "
                                "tensor<uint32, [1]>([4294967295]));\n"));
    assert_non_null(strstr(mil, "string s = const()[val = string(\"a\\\"b\\\\c\\nd\\te\")];"));
    assert_non_null(strstr(mil, "int32 r = cond(pred = pred)[name = string(\"cond_0\")] {\n"));
    assert_non_null(strstr(mil, "                int32 one = const()[val = int32(1)];\n"
                                "            } -> (one) {\n"));
    assert_non_null(strstr(mil, "while_loop(loop_vars = r) (int32 i_cond) {\n"));
    assert_non_null(strstr(mil, "            } -> (go) (int32 i_body) {\n"));
    assert_non_null(strstr(mil, "            } -> (i_next);\n        } -> (c, loop_out);\n"));
    assert_non_null(strstr(mil, "((\"DefaultShapes\", {{\"x\", [1, 4]}}), (\"RangeDims\", "
                                "{{\"x\", [[1, 1], [4, 4]]}}))"));
    assert_non_null(strstr(mil, "output = relu(x = input);\n        } -> (output);\n}"));
    size_t n = strlen(mil);
    assert_true(n > 0 && mil[n - 1] == '}');
    free(mil);

    /* weight.bin: header, two distinct blobs at 64 and 192, data copied byte for byte */
    size_t wn = 0;
    uint8_t *w = (uint8_t *)slurp(out, "weights/weight.bin", &wn);
    uint8_t *s = (uint8_t *)slurp(src, "weights/weight.bin", NULL);
    assert_non_null(w);
    assert_int_equal(wn, 192 + 64 + 2);
    assert_int_equal(anml__le32(w), 2);
    assert_int_equal(anml__le32(w + 4), 2);
    assert_int_equal(anml__le32(w + 64), 0xDEADBEEFu);
    assert_int_equal(anml__le32(w + 68), 1);
    assert_int_equal(anml__le64(w + 72), 32);
    assert_int_equal(anml__le64(w + 80), 128);
    assert_int_equal(anml__le64(w + 88), 0);
    assert_memory_equal(w + 128, s + 128, 32);
    for (size_t i = 160; i < 192; i++) {
        assert_int_equal(w[i], 0);
    }
    assert_int_equal(anml__le32(w + 196), 11);
    assert_int_equal(anml__le64(w + 200), 2);
    assert_int_equal(anml__le64(w + 208), 256);
    assert_int_equal(anml__le64(w + 216), 4);
    assert_int_equal(w[256], 0x21);
    assert_int_equal(w[257], 0x03);
    free(w);
    free(s);

    /* metadata.json: the §2.3 keys */
    char *meta = slurp(out, "metadata.json", NULL);
    assert_non_null(meta);
    const char *keys[] = { "\"metadataOutputVersion\":\t\"3.0\"",
                           "\"specificationVersion\":\t9",
                           "\"MLModelType_mlProgram\"",
                           "\"defaultFunctionName\":\t\"main\"",
                           "\"enumeratedShapes\":\t\"[[1, 4], [2, 4]]\"",
                           "\"shapeFlexibility\":\t\"1 × 4 | 2 × 4\"",
                           "\"shapeRange\":\t\"[[1, -1]]\"",
                           "\"shapeFlexibility\":\t\"1...\"",
                           "\"formattedType\":\t\"MultiArray (Int32)?\"",
                           "\"Ios18.whileLoop\":\t1",
                           "\"type\":\t\"State\"",
                           "\"author\":\t\"anml tests\"" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (!strstr(meta, keys[i])) {
            fail_msg("metadata.json lacks %s:\n%s", keys[i], meta);
        }
    }
    /* user metadata keeps its order */
    assert_true(strstr(meta, "\"zeta\"") < strstr(meta, "\"com.anemll.context_length\""));
    free(meta);
    anml__mil_program_free(p);
    free(src);
    free(out);
}

static void test_write_errors(void **state) {
    (void)state;
    char *src = anml_test_tmpdir("writer-err");
    struct mil_program *p = build(src, 0, false);
    struct anml_error err = { 0 };
    /* out_dir below a regular file cannot be created */
    char *file = path_in(src, "weights/weight.bin");
    char *bad = path_in(file, "out.mlmodelc");
    assert_int_not_equal(anml__mil_write_mlmodelc(p, bad, &err), ANML_OK);
    assert_true(err.msg[0] != '\0');
    /* a blob whose record is not in the file: an error naming the op, no crash */
    p->functions[0].block.ops[2].attrs[0].value->blob_offset = 4096;
    char *out = anml_test_tmpdir("writer-err-out");
    memset(&err, 0, sizeof err);
    assert_int_not_equal(anml__mil_write_mlmodelc(p, out, &err), ANML_OK);
    assert_non_null(strstr(err.msg, "idx"));
    anml__mil_program_free(p);
    free(file);
    free(bad);
    free(out);
    free(src);
}

/* ---- parse back ---- */

static struct mil_program *load_or_fail(const char *path) {
    struct mil_program *p = NULL;
    struct anml_error err = { 0 };
    if (anml__mil_load(path, &p, &err) != ANML_OK) {
        fail_msg("loading %s failed: %s: %s", path, err.where, err.msg);
    }
    return p;
}

static void assert_same_file(const char *d1, const char *d2, const char *rel) {
    size_t n1 = 0, n2 = 0;
    char *a = slurp(d1, rel, &n1);
    char *b = slurp(d2, rel, &n2);
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(n1, n2);
    assert_memory_equal(a, b, n1);
    free(a);
    free(b);
}

static void test_write_parse_back_equal(void **state) {
    (void)state;
    char *src = anml_test_tmpdir("writer-rt-src");
    char *out1 = anml_test_tmpdir("writer-rt-1");
    char *out2 = anml_test_tmpdir("writer-rt-2");
    struct mil_program *p = build(src, 0, false);
    struct anml_error err = { 0 };
    assert_int_equal(anml__mil_write_mlmodelc(p, out1, &err), ANML_OK);
    struct mil_program *q = load_or_fail(out1);
    char why[1024];
    if (!anml__mil_program_equal(p, q, why, sizeof why)) {
        fail_msg("hand-built program differs after write + parse: %s", why);
    }
    assert_int_equal(anml__mil_write_mlmodelc(q, out2, &err), ANML_OK);
    assert_same_file(out1, out2, "model.mil");
    assert_same_file(out1, out2, "metadata.json");
    assert_same_file(out1, out2, "weights/weight.bin");
    anml__mil_program_free(p);
    anml__mil_program_free(q);
    free(src);
    free(out1);
    free(out2);
}

/* Converting a model into its own directory must not truncate the weight file it is reading. */
static void test_write_into_own_directory(void **state) {
    (void)state;
    char *src = anml_test_tmpdir("writer-self-src");
    char *dir = anml_test_tmpdir("writer-self");
    struct mil_program *p = build(src, 0, false);
    struct anml_error err = { 0 };
    assert_int_equal(anml__mil_write_mlmodelc(p, dir, &err), ANML_OK);
    struct mil_program *q = load_or_fail(dir);
    if (anml__mil_write_mlmodelc(q, dir, &err) != ANML_OK) {
        fail_msg("rewrite in place failed: %s: %s", err.where, err.msg);
    }
    struct mil_program *r = load_or_fail(dir);
    char why[1024];
    if (!anml__mil_program_equal(p, r, why, sizeof why)) {
        fail_msg("differs after rewriting in place: %s", why);
    }
    char *tmp = path_in(dir, "weights/weight.bin.tmp");
    FILE *f = fopen(tmp, "rb");
    assert_null(f); /* no temporary left behind */
    free(tmp);
    anml__mil_program_free(p);
    anml__mil_program_free(q);
    anml__mil_program_free(r);
    free(src);
    free(dir);
}

/* ---- equality: each single difference is found ---- */

static void expect_differ(struct mil_program *a, struct mil_program *b, const char *what,
                          const char *needle) {
    char why[1024];
    if (anml__mil_program_equal(a, b, why, sizeof why)) {
        fail_msg("mutation '%s' not detected", what);
    }
    if (!strstr(why, needle)) {
        fail_msg("mutation '%s': message \"%s\" lacks \"%s\"", what, why, needle);
    }
    /* symmetric */
    assert_false(anml__mil_program_equal(b, a, why, sizeof why));
}

static void expect_equal(struct mil_program *a, struct mil_program *b) {
    char why[1024];
    if (!anml__mil_program_equal(a, b, why, sizeof why)) {
        fail_msg("programs should be equal: %s", why);
    }
}

static void test_equal_detects_each_difference(void **state) {
    (void)state;
    char *da = anml_test_tmpdir("eq-a");
    char *db = anml_test_tmpdir("eq-b");
    char *dc = anml_test_tmpdir("eq-c");
    char *dd = anml_test_tmpdir("eq-d");
    struct mil_program *a = build(da, 0, false);
    struct mil_program *b = build(db, 0, false);
    expect_equal(a, b);
    expect_equal(a, a);

    /* identical blob bytes at other offsets in another file: still equal */
    struct mil_program *shifted = build(dc, 0, true);
    assert_int_not_equal(shifted->functions[0].block.ops[0].attrs[0].value->blob_offset,
                         a->functions[0].block.ops[0].attrs[0].value->blob_offset);
    expect_equal(a, shifted);
    /* one blob byte changed */
    struct mil_program *salted = build(dd, 0x40, false);
    expect_differ(a, salted, "blob byte",
                  "function 'main' op #0 (const 'w') attribute 'val': "
                  "blob bytes differ at byte 7");

    struct mil_function *f = &b->functions[0];
    struct mil_block *blk = &f->block;

    b->spec_version = 8;
    expect_differ(a, b, "spec version", "specificationVersion");
    b->spec_version = 9;

    char **bi1 = b->attrs[0].value->items[3]->data;
    char *old = bi1[0];
    bi1[0] = "z";
    expect_differ(a, b, "program attribute", "program attribute 'buildInfo' item #3");
    bi1[0] = old;

    f->opset = 7;
    expect_differ(a, b, "opset", "opset differs");
    f->opset = 8;

    f->inputs[0].type->dims[1] = 5;
    expect_differ(a, b, "input type", "function 'main' input 'x': type differs");
    f->inputs[0].type->dims[1] = 4;

    char *ot = blk->ops[3].type;
    blk->ops[3].type = "linear";
    expect_differ(a, b, "op type", "op #3 (matmul 'y'): op type differs");
    blk->ops[3].type = ot;

    char *rn = blk->ops[4].results[1].name;
    blk->ops[4].results[1].name = "b2";
    expect_differ(a, b, "result name", "result #1 name differs");
    blk->ops[4].results[1].name = rn;

    blk->ops[4].results[0].type = blk->ops[3].results[0].type;
    expect_differ(a, b, "result type", "result 'a': type differs");
    blk->ops[4].results[0].type = blk->ops[4].results[1].type;

    char *bn = blk->ops[5].args[2].bindings[1].name;
    blk->ops[5].args[2].bindings[1].name = "a";
    expect_differ(a, b, "tuple binding", "arg 'values' binding #1: bound name differs");
    blk->ops[5].args[2].bindings[1].name = bn;

    blk->ops[5].args[2].n_bindings = 2;
    expect_differ(a, b, "tuple length", "binding count differs");
    blk->ops[5].args[2].n_bindings = 3;

    int32_t *ax = blk->ops[4].args[0].bindings[0].value->data;
    *ax = 0;
    expect_differ(a, b, "literal argument", "arg 'axis': element 0 differs");
    *ax = 1;

    uint16_t *hv = blk->ops[8].attrs[0].value->data;
    hv[1] = 0x0000; /* -0 -> +0 is a difference */
    expect_differ(a, b, "immediate value", "attribute 'val': element 1 differs");
    hv[1] = 0x8000;

    char **sv = blk->ops[12].attrs[0].value->data;
    old = sv[0];
    sv[0] = "a\"b\\c\nd\tE";
    expect_differ(a, b, "string value", "string element 0 differs");
    sv[0] = old;

    blk->ops[3].n_attrs = 0;
    expect_differ(a, b, "missing attribute", "attribute 'name' missing");
    blk->ops[3].n_attrs = 1;

    blk->ops[3].args[0].name = "z";
    expect_differ(a, b, "argument name", "argument 'y' missing");
    blk->ops[3].args[0].name = "y";

    struct mil_block *nested = &blk->ops[14].blocks[1];
    int32_t *two = nested->ops[0].attrs[0].value->data;
    *two = 3;
    expect_differ(a, b, "nested block", "op #14 (cond 'r') block #1 op #0 (const 'two')");
    *two = 2;

    nested = &blk->ops[15].blocks[1];
    nested->inputs[0].name = "j";
    expect_differ(a, b, "block input", "block input #0 name differs");
    nested->inputs[0].name = "i_body";

    blk->outputs[1] = "r";
    expect_differ(a, b, "function output", "output #1 differs");
    blk->outputs[1] = "loop_out";

    blk->n_ops--;
    expect_differ(a, b, "op count", "op count differs");
    blk->n_ops++;

    /* functions matched by name, not position */
    struct mil_function tmp = b->functions[0];
    b->functions[0] = b->functions[1];
    b->functions[1] = tmp;
    expect_equal(a, b);
    b->functions[1].name = "third";
    expect_differ(a, b, "function name", "function 'main' missing");
    b->functions[1].name = "main";
    tmp = b->functions[0];
    b->functions[0] = b->functions[1];
    b->functions[1] = tmp;
    expect_equal(a, b);

    /* description */
    struct mil_model_desc *d = &b->desc;
    d->user_values[1] = "65";
    expect_differ(a, b, "user metadata", "user metadata #1 differs");
    d->user_values[1] = "64";
    d->default_function = "second";
    expect_differ(a, b, "default function", "default function differs");
    d->default_function = "main";
    d->multifunction = false;
    expect_differ(a, b, "multifunction", "multifunction flag differs");
    d->multifunction = true;
    d->functions[0].inputs[0].shape[0] = 2;
    expect_differ(a, b, "feature shape", "description of function 'main' input 'x': shape differs");
    d->functions[0].inputs[0].shape[0] = 1;
    d->functions[0].inputs[0].enum_shapes[1][0] = 3;
    expect_differ(a, b, "enumerated shape", "enumerated shape #1 differs");
    d->functions[0].inputs[0].enum_shapes[1][0] = 2;
    d->functions[1].inputs[0].range_hi[0] = 8;
    expect_differ(a, b, "shape range", "shape range differs");
    d->functions[1].inputs[0].range_hi[0] = -1;
    d->functions[0].outputs[1].optional = false;
    expect_differ(a, b, "optional", "isOptional differs");
    d->functions[0].outputs[1].optional = true;
    d->functions[0].states[0].dtype = ANML_DTYPE_F32;
    expect_differ(a, b, "state dtype", "state 'cache': dataType differs");
    d->functions[0].states[0].dtype = ANML_DTYPE_F16;
    d->author = "someone else";
    expect_differ(a, b, "author", "author differs");
    d->author = NULL;
    expect_differ(a, b, "author", "author differs");
    d->author = "anml tests";

    expect_equal(a, b);
    /* why may be NULL */
    b->spec_version = 1;
    assert_false(anml__mil_program_equal(a, b, NULL, 0));
    anml__mil_program_free(a);
    anml__mil_program_free(b);
    anml__mil_program_free(shifted);
    anml__mil_program_free(salted);
    free(da);
    free(db);
    free(dc);
    free(dd);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_float_compiler_forms),
        cmocka_unit_test(test_format_float_fp16_all_patterns_roundtrip),
        cmocka_unit_test(test_format_float_fp32_roundtrip),
        cmocka_unit_test(test_format_float_matches_fixture),
        cmocka_unit_test(test_format_string_escapes),
        cmocka_unit_test(test_write_statement_forms),
        cmocka_unit_test(test_write_errors),
        cmocka_unit_test(test_write_parse_back_equal),
        cmocka_unit_test(test_write_into_own_directory),
        cmocka_unit_test(test_equal_detects_each_difference),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
