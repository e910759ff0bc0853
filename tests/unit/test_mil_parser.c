/* test_mil_parser.c -- the model.mil text parser (mil_lexer.c, mil_parser.c) and the metadata.json
 * reader (metadata.c) on hand-written snippets: every literal style and statement form, exact
 * fp16 bits of hex floats, nested blocks, and a table of malformed inputs that must fail with a
 * positioned ANML_E_FORMAT (or ANML_E_UNSUPPORTED) error. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coreml/mil_text.h"
#include "coreml/program.h"
#include "testutil.h"

/* ---- helpers ---- */

static struct mil_program *parse_ok(const char *src) {
    struct mil_program *p = anml__mil_program_new();
    assert_non_null(p);
    struct anml_error err = { 0 };
    enum anml_status st = anml__mil_parse_text(p, src, strlen(src), "t.mil", &err);
    if (st != ANML_OK) {
        fail_msg("parse failed (%d) at %s: %s\n--- input ---\n%s", st, err.where, err.msg, src);
    }
    return p;
}

/* "t.mil:<digits>:<digits>" */
static bool has_line_col(const char *where) {
    const char *s = strstr(where, "t.mil:");
    if (!s) {
        return false;
    }
    s += 6;
    if (*s < '0' || *s > '9') {
        return false;
    }
    while (*s >= '0' && *s <= '9') {
        s++;
    }
    if (*s++ != ':' || *s < '0' || *s > '9') {
        return false;
    }
    while (*s >= '0' && *s <= '9') {
        s++;
    }
    return *s == '\0';
}

static void parse_fails(const char *src, size_t len, enum anml_status want, const char *msg_part,
                        const char *where_want) {
    struct mil_program *p = anml__mil_program_new();
    assert_non_null(p);
    struct anml_error err = { 0 };
    enum anml_status st = anml__mil_parse_text(p, src, len, "t.mil", &err);
    if (st != want) {
        fail_msg("expected status %d, got %d (%s: %s)\n--- input ---\n%.*s", want, st, err.where,
                 err.msg, (int)len, src);
    }
    if (!has_line_col(err.where)) {
        fail_msg("error position '%s' has no line:col (%s)", err.where, err.msg);
    }
    if (msg_part && !strstr(err.msg, msg_part)) {
        fail_msg("message '%s' does not contain '%s'", err.msg, msg_part);
    }
    if (where_want && strcmp(err.where, where_want) != 0) {
        fail_msg("position '%s', expected '%s' (%s)", err.where, where_want, err.msg);
    }
    anml__mil_program_free(p);
}

/* A one-function program around `body`, with an fp32 [1] parameter x, returning x. */
#define FN(body) \
  "program(1.3)\n{\n    func main<ios18>(tensor<fp32, [1]> x) {\n" body "\n    } -> (x);\n}\n"

static const struct mil_op *find_op(const struct mil_function *f, const char *result) {
    for (int32_t i = 0; i < f->block.n_ops; i++) {
        for (int32_t r = 0; r < f->block.ops[i].n_results; r++) {
            if (strcmp(f->block.ops[i].results[r].name, result) == 0) {
                return &f->block.ops[i];
            }
        }
    }
    fail_msg("no op defines '%s'", result);
    return NULL;
}

static const struct mil_value *const_val(const struct mil_program *p, const char *result) {
    const struct mil_attr *a = anml__mil_op_attr(find_op(&p->functions[0], result), "val");
    assert_non_null(a);
    return a->value;
}

static uint16_t u16_at(const struct mil_value *v, int64_t i) {
    uint16_t h;
    memcpy(&h, (const uint8_t *)v->data + i * 2, 2);
    return h;
}

static int32_t i32_at(const struct mil_value *v, int64_t i) {
    int32_t x;
    memcpy(&x, (const uint8_t *)v->data + i * 4, 4);
    return x;
}

static float f32_at(const struct mil_value *v, int64_t i) {
    float x;
    memcpy(&x, (const uint8_t *)v->data + i * 4, 4);
    return x;
}

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* ---- literals ---- */

static void test_scalar_literal_styles(void **state) {
    (void)state;
    struct mil_program *p = parse_ok(FN("        int32 a = const()[val = int32(2)];\n"
                                        "        tensor<int32, []> b = const()[val = tensor<int32, "
                                        "[]>(-7)];\n"
                                        "        string s = const()[val = string(\"fp16\")];\n"
                                        "        tensor<string, []> t = const()[val = "
                                        "tensor<string, []>(\"x\")];\n"
                                        "        bool c = const()[val = bool(true)];\n"
                                        "        tensor<bool, []> d = const()[val = tensor<bool, "
                                        "[]>(false)];\n"
                                        "        uint64 e = const()[val = uint64(64)];"));
    const struct mil_value *a = const_val(p, "a"), *b = const_val(p, "b");
    assert_int_equal(a->kind, MIL_VALUE_TENSOR);
    assert_int_equal(a->type->rank, 0);
    assert_int_equal(a->type->dtype, ANML_DTYPE_INT32);
    assert_int_equal(a->n_elem, 1);
    assert_int_equal(i32_at(a, 0), 2);
    assert_int_equal(b->type->rank, 0);
    assert_int_equal(i32_at(b, 0), -7);
    assert_true(anml__mil_type_equal(a->type, b->type));
    assert_string_equal(((char **)const_val(p, "s")->data)[0], "fp16");
    assert_string_equal(((char **)const_val(p, "t")->data)[0], "x");
    assert_int_equal(((uint8_t *)const_val(p, "c")->data)[0], 1);
    assert_int_equal(((uint8_t *)const_val(p, "d")->data)[0], 0);
    uint64_t e;
    memcpy(&e, const_val(p, "e")->data, 8);
    assert_int_equal(e, 64);
    /* the declared result types: `int32` is rank 0 like `tensor<int32, []>` */
    const struct mil_op *op = find_op(&p->functions[0], "b");
    assert_int_equal(op->results[0].type->rank, 0);
    assert_string_equal(op->type, "const");
    assert_int_equal(op->n_args, 0);
    anml__mil_program_free(p);
}

static void test_program_versions_and_build_info(void **state) {
    (void)state;
    static const char *const versions[] = { "1.0", "1.3", "1" };
    for (size_t i = 0; i < 3; i++) {
        char src[512];
        snprintf(src, sizeof src,
                 "program(%s)\n{\n    func main<ios18>(tensor<fp32, [1]> x) {\n    } -> (x);\n}\n",
                 versions[i]);
        struct mil_program *p = parse_ok(src);
        assert_int_equal(p->n_functions, 1);
        assert_int_equal(p->n_attrs, 0);
        anml__mil_program_free(p);
    }
    struct mil_program *p = parse_ok(
        "program(1.0)\n"
        "[buildInfo = dict<tensor<string, []>, tensor<string, []>>({{\"coremlc-version\", "
        "\"1.2\"}, {\"k2\", \"v2\"}})]\n"
        "{\n    func main<ios16>(tensor<fp16, [1, 10]> x, tensor<fp16, [1, 10]> y) {\n"
        "            tensor<fp16, [1, 10]> var_3 = mul(x = x, y = y)[name = tensor<string, "
        "[]>(\"op_3\")];\n"
        "        } -> (var_3);\n}\n");
    assert_int_equal(p->n_attrs, 1);
    assert_string_equal(p->attrs[0].name, "buildInfo");
    const struct mil_value *d = p->attrs[0].value;
    assert_int_equal(d->kind, MIL_VALUE_DICT);
    assert_int_equal(d->type->kind, MIL_TYPE_DICT);
    assert_int_equal(d->n_items, 4);
    assert_string_equal(((char **)d->items[0]->data)[0], "coremlc-version");
    assert_string_equal(((char **)d->items[3]->data)[0], "v2");
    const struct mil_function *f = &p->functions[0];
    assert_string_equal(f->name, "main");
    assert_int_equal(f->opset, 6);
    assert_int_equal(f->n_inputs, 2);
    assert_string_equal(f->inputs[1].name, "y");
    assert_int_equal(f->inputs[1].type->dtype, ANML_DTYPE_F16);
    assert_int_equal(f->inputs[1].type->rank, 2);
    assert_int_equal(f->inputs[1].type->dims[1], 10);
    assert_int_equal(f->block.n_outputs, 1);
    assert_string_equal(f->block.outputs[0], "var_3");
    const struct mil_op *op = &f->block.ops[0];
    assert_string_equal(op->type, "mul");
    assert_int_equal(op->line, 5);
    assert_int_equal(op->col, 13);
    assert_string_equal(anml__mil_op_arg(op, "y")->bindings[0].name, "y");
    assert_string_equal(((char **)anml__mil_op_attr(op, "name")->value->data)[0], "op_3");
    /* empty buildInfo dict, as hand-written files have it */
    anml__mil_program_free(p);
    p = parse_ok("program(1.3)\n[buildInfo = dict<string, string>({})]\n{\n}\n");
    assert_int_equal(p->attrs[0].value->n_items, 0);
    assert_int_equal(p->n_functions, 0);
    anml__mil_program_free(p);
}

static void test_opset_tags(void **state) {
    (void)state;
    static const struct {
        const char *tag;
        int opset;
    } tags[] = { { "ios15", 5 },   { "ios16", 6 },   { "ios17", 7 },   { "ios18", 8 },
                 { "ios26", 9 },   { "CoreML5", 5 }, { "CoreML6", 6 }, { "CoreML7", 7 },
                 { "CoreML8", 8 }, { "CoreML9", 9 } };
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
        char src[256];
        snprintf(src, sizeof src, "program(1)\n{\n  func f<%s>() {\n  } -> ();\n}\n", tags[i].tag);
        struct mil_program *p = parse_ok(src);
        assert_int_equal(p->functions[0].opset, tags[i].opset);
        assert_int_equal(p->functions[0].block.n_outputs, 0);
        anml__mil_program_free(p);
    }
    const char *bad = "program(1)\n{\n  func f<ios19>() {\n  } -> ();\n}\n";
    parse_fails(bad, strlen(bad), ANML_E_UNSUPPORTED, "ios19", "t.mil:3:10");
}

static void test_hex_floats_exact_fp16(void **state) {
    (void)state;
    struct mil_program *p = parse_ok(
        FN("        tensor<fp16, [5]> h = const()[val = tensor<fp16, [5]>([0x1p-24, 0x1.5p-17, "
           "0x1.ff8p-15, 0x1p-14, -0x1.5p-17])];\n"
           "        fp16 a = const()[val = fp16(0x1p-24)];\n"
           "        fp16 b = const()[val = fp16(-0x1.388p+13)];\n"
           "        fp16 c = const()[val = fp16(0x0p+0)];\n"
           "        fp16 d = const()[val = fp16(-0x0p+0)];\n"
           "        fp16 e = const()[val = fp16(0x1.ffcp+15)];\n"
           "        fp32 g = const()[val = fp32(0x1.91eb86p+1)];\n"
           "        fp32 k = const()[val = fp32(0.00001)];\n"
           "        fp16 m = const()[val = fp16(1e-6)];\n"
           "        bf16 n = const()[val = bf16(1.5)];\n"
           "        fp64 o = const()[val = fp64(0x1.921fb54442d18p+1)];\n"
           "        fp32 q = const()[val = fp32(3)];"));
    const struct mil_value *h = const_val(p, "h");
    assert_int_equal(h->n_elem, 5);
    /* 2^-24, 168*2^-24, 1023*2^-24, 2^-14, -168*2^-24 */
    assert_int_equal(u16_at(h, 0), 0x0001);
    assert_int_equal(u16_at(h, 1), 0x00a8);
    assert_int_equal(u16_at(h, 2), 0x03ff);
    assert_int_equal(u16_at(h, 3), 0x0400);
    assert_int_equal(u16_at(h, 4), 0x80a8);
    assert_int_equal(u16_at(const_val(p, "a"), 0), 0x0001);
    assert_int_equal(u16_at(const_val(p, "b"), 0), 0xf0e2); /* -10000 */
    assert_int_equal(u16_at(const_val(p, "c"), 0), 0x0000);
    assert_int_equal(u16_at(const_val(p, "d"), 0), 0x8000);
    assert_int_equal(u16_at(const_val(p, "e"), 0), 0x7bff); /* 65504 */
    assert_int_equal(f32_bits(f32_at(const_val(p, "g"), 0)), f32_bits(0x1.91eb86p+1f));
    assert_int_equal(f32_bits(f32_at(const_val(p, "k"), 0)), f32_bits(0.00001f));
    assert_int_equal(u16_at(const_val(p, "m"), 0), anml__fp32_to_fp16(1e-6f));
    assert_int_equal(u16_at(const_val(p, "n"), 0), 0x3fc0);
    double o;
    memcpy(&o, const_val(p, "o")->data, 8);
    assert_true(o == 0x1.921fb54442d18p+1);
    assert_true(f32_at(const_val(p, "q"), 0) == 3.0f);
    anml__mil_program_free(p);
}

static void test_inf_nan(void **state) {
    (void)state;
    struct mil_program *p =
        parse_ok(FN("        tensor<fp16, [3]> h = const()[val = tensor<fp16, [3]>([inf, -inf, "
                    "nan])];\n"
                    "        tensor<fp32, [3]> f = const()[val = tensor<fp32, [3]>([-inf, nan, "
                    "inf])];"));
    const struct mil_value *h = const_val(p, "h");
    assert_int_equal(u16_at(h, 0), 0x7c00);
    assert_int_equal(u16_at(h, 1), 0xfc00);
    assert_true((u16_at(h, 2) & 0x7c00) == 0x7c00 && (u16_at(h, 2) & 0x3ff) != 0);
    const struct mil_value *f = const_val(p, "f");
    assert_true(isinf(f32_at(f, 0)) && f32_at(f, 0) < 0);
    assert_true(isnan(f32_at(f, 1)));
    assert_true(isinf(f32_at(f, 2)) && f32_at(f, 2) > 0);
    anml__mil_program_free(p);
}

static void test_tensor_literals_and_fill(void **state) {
    (void)state;
    struct mil_program *p = parse_ok(
        FN("        tensor<int32, [2, 3]> a = const()[val = tensor<int32, [2, 3]>([[1, 2, 3], "
           "[4, 5, 6]])];\n"
           "        tensor<int32, [2, 3]> b = const()[val = tensor<int32, [2, 3]>(7)];\n"
           "        tensor<int32, [1]> c = const()[val = tensor<int32, [1]>(1)];\n"
           "        tensor<int32, [0]> d = const()[val = tensor<int32, [0]>([])];\n"
           "        tensor<int8, [2, 0]> e = const()[val = tensor<int8, [2, 0]>([[], []])];\n"
           "        tensor<string, [2]> s = const()[val = tensor<string, [2]>([\"a\", \"b\"])];\n"
           "        tensor<bool, [2]> t = const()[val = tensor<bool, [2]>([true, false])];\n"
           "        tensor<uint4, [3]> u = const()[val = tensor<uint4, [3]>([0, 15, 7])];\n"
           "        tensor<int4, [2]> v = const()[val = tensor<int4, [2]>([-8, 7])];\n"
           "        tensor<int32, [?, 2]> w = const()[val = tensor<int32, [?, 2]>([[1, 2], [3, "
           "4], [5, 6]])];"));
    const struct mil_value *a = const_val(p, "a");
    assert_int_equal(a->n_elem, 6);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(i32_at(a, i), i + 1);
    }
    const struct mil_value *b = const_val(p, "b");
    assert_int_equal(b->n_elem, 6);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(i32_at(b, i), 7);
    }
    assert_int_equal(const_val(p, "c")->n_elem, 1);
    assert_int_equal(i32_at(const_val(p, "c"), 0), 1);
    assert_int_equal(const_val(p, "d")->n_elem, 0);
    assert_int_equal(const_val(p, "e")->n_elem, 0);
    char **s = const_val(p, "s")->data;
    assert_string_equal(s[0], "a");
    assert_string_equal(s[1], "b");
    const uint8_t *t = const_val(p, "t")->data;
    assert_int_equal(t[0], 1);
    assert_int_equal(t[1], 0);
    const uint8_t *u = const_val(p, "u")->data;
    assert_int_equal(u[1], 15);
    const int8_t *v = const_val(p, "v")->data;
    assert_int_equal(v[0], -8);
    assert_int_equal(v[1], 7);
    /* a '?' dim takes its size from the literal */
    const struct mil_value *w = const_val(p, "w");
    assert_int_equal(w->n_elem, 6);
    assert_int_equal(w->type->dims[0], 3);
    assert_int_equal(w->type->dims[1], 2);
    anml__mil_program_free(p);
}

static void test_integer_ranges(void **state) {
    (void)state;
    struct mil_program *p =
        parse_ok(FN("        int8 a = const()[val = int8(-128)];\n"
                    "        int8 b = const()[val = int8(127)];\n"
                    "        uint64 c = const()[val = uint64(18446744073709551615)];\n"
                    "        int64 d = const()[val = int64(-9223372036854775808)];\n"
                    "        uint8 e = const()[val = uint8(255)];\n"
                    "        int16 f = const()[val = int16(-32768)];\n"
                    "        uint1 g = const()[val = uint1(1)];"));
    assert_int_equal(((int8_t *)const_val(p, "a")->data)[0], -128);
    assert_int_equal(((int8_t *)const_val(p, "b")->data)[0], 127);
    uint64_t c;
    memcpy(&c, const_val(p, "c")->data, 8);
    assert_true(c == UINT64_MAX);
    int64_t d;
    memcpy(&d, const_val(p, "d")->data, 8);
    assert_true(d == INT64_MIN);
    assert_int_equal(((uint8_t *)const_val(p, "e")->data)[0], 255);
    anml__mil_program_free(p);
}

static void test_string_escapes(void **state) {
    (void)state;
    struct mil_program *p =
        parse_ok(FN("        string s = const()[val = string(\"a\\\"b\\\\c\\nd\\te\")];\n"
                    "        string u = const()[val = string(\"\xc3\xa9t\xc3\xa9\")]; // é"));
    assert_string_equal(((char **)const_val(p, "s")->data)[0], "a\"b\\c\nd\te");
    assert_string_equal(((char **)const_val(p, "u")->data)[0], "\xc3\xa9t\xc3\xa9");
    anml__mil_program_free(p);
}

static void test_blobfile_values(void **state) {
    (void)state;
    struct mil_program *p = parse_ok(FN(
        "        tensor<fp32, [500]> c1 = const()[name = tensor<string, []>(\"c1\"), val = "
        "tensor<fp32, [500]>(BLOBFILE(path = tensor<string, "
        "[]>(\"@model_path/weights/weight.bin\"), "
        "offset = tensor<uint64, []>(64)))];\n"
        "        tensor<fp16, [8, 1, 5, 5]> c2 = const()[name = string(\"c2\"), val = tensor<fp16, "
        "[8, 1, 5, 5]>(BLOBFILE(path = string(\"@model_path/weights/weight.bin\"), offset = "
        "uint64(8589934656)))];\n"
        "        tensor<fp32, [4]> c3 = constexpr_affine_dequantize()[axis = int32(0), "
        "quantized_data = tensor<int8, [4]>(BLOBFILE(path = "
        "string(\"@model_path/weights/weights.bin\"), offset = uint64(64))), scale = "
        "fp32(0x1p-1), zero_point = int8(-1)];"));
    const struct mil_value *c1 = const_val(p, "c1");
    assert_int_equal(c1->kind, MIL_VALUE_BLOB);
    assert_string_equal(c1->blob_path, "@model_path/weights/weight.bin");
    assert_int_equal(c1->blob_offset, 64);
    assert_int_equal(c1->n_elem, 500);
    const struct mil_value *c2 = const_val(p, "c2");
    assert_true(c2->blob_offset == 8589934656ull);
    assert_int_equal(c2->n_elem, 200);
    assert_int_equal(c2->type->dtype, ANML_DTYPE_F16);
    const struct mil_op *op = find_op(&p->functions[0], "c3");
    assert_int_equal(op->n_args, 0);
    assert_int_equal(op->n_attrs, 4);
    const struct mil_value *q = anml__mil_op_attr(op, "quantized_data")->value;
    assert_int_equal(q->kind, MIL_VALUE_BLOB);
    assert_int_equal(q->type->dtype, ANML_DTYPE_INT8);
    assert_int_equal(((int8_t *)anml__mil_op_attr(op, "zero_point")->value->data)[0], -1);
    anml__mil_program_free(p);
}

/* ---- statements ---- */

static void test_multi_and_zero_result_statements(void **state) {
    (void)state;
    struct mil_program *p = parse_ok(
        "program(1.3)\n{\n"
        "  func infer<ios18>(tensor<fp16, [2, 4]> x, state<tensor<fp16, [2, 4]>> cache) {\n"
        "    int32 ax = const()[val = int32(0)];\n"
        "    tensor<fp16, [1, 4]> a, tensor<fp16, [1, 4]> b = split(axis = ax, num_splits = "
        "int32(2), x = x)[name = string(\"split_0\")];\n"
        "    (tensor<fp16, [1, 4]> c, tensor<fp16, [1, 4]> d) = split(axis = ax, num_splits = "
        "int32(2), x = x);\n"
        "    tensor<fp16, [2, 4]> e = concat(axis = ax, interleave = bool(false), values = (a, "
        "d));\n"
        "    write_state(data = e, input = cache)[name = string(\"cache_write_state\")];\n"
        "    tensor<fp16, [2, 4]> r = read_state(input = cache);\n"
        "    tensor<fp16, [2, 4]> y = relu(x = r);\n"
        "  } -> (y, c);\n}\n");
    const struct mil_function *f = &p->functions[0];
    assert_int_equal(f->opset, 8);
    assert_int_equal(f->inputs[1].type->kind, MIL_TYPE_STATE);
    assert_int_equal(f->inputs[1].type->elems[0]->dtype, ANML_DTYPE_F16);
    assert_int_equal(f->block.n_ops, 7);
    assert_int_equal(f->block.ops[1].n_results, 2);
    assert_string_equal(f->block.ops[1].results[1].name, "b");
    assert_int_equal(f->block.ops[2].n_results, 2);
    assert_string_equal(f->block.ops[2].results[0].name, "c");
    const struct mil_arg *vals = anml__mil_op_arg(&f->block.ops[3], "values");
    assert_int_equal(vals->n_bindings, 2);
    assert_string_equal(vals->bindings[0].name, "a");
    assert_string_equal(vals->bindings[1].name, "d");
    const struct mil_value *il =
        anml__mil_op_arg(&f->block.ops[3], "interleave")->bindings[0].value;
    assert_non_null(il);
    assert_int_equal(il->type->dtype, ANML_DTYPE_BOOL);
    const struct mil_op *ws = &f->block.ops[4];
    assert_string_equal(ws->type, "write_state");
    assert_int_equal(ws->n_results, 0);
    assert_int_equal(ws->n_args, 2);
    assert_int_equal(ws->line, 8);
    assert_int_equal(ws->col, 5);
    assert_int_equal(f->block.ops[6].n_attrs, 0);
    assert_int_equal(f->block.n_outputs, 2);
    assert_string_equal(f->block.outputs[1], "c");
    anml__mil_program_free(p);
}

static void test_compound_types_and_function_attrs(void **state) {
    (void)state;
    struct mil_program *p = parse_ok(
        "program(1.3)\n{\n"
        "    func main<ios17>(tensor<int32, [?, ?]> indices, list<tensor<fp32, [2]>, ?> l, "
        "tuple<int32, fp16> t, dict<string, int32> d) [FlexibleShapeInformation = "
        "tuple<tuple<string, dict<string, tensor<int32, [?]>>>, tuple<string, dict<string, "
        "list<tensor<int32, [2]>, ?>>>>(((\"DefaultShapes\", {{\"indices\", [2, 4]}}), "
        "(\"RangeDims\", {{\"indices\", [[0, 2], [0, 4]]}})))] {\n"
        "        tensor<int32, [?, ?]> o = identity(x = indices);\n"
        "        list<int32, 3> k = const()[val = list<int32, 3>([1, 2, 3])];\n"
        "    } -> (o);\n}\n");
    const struct mil_function *f = &p->functions[0];
    assert_int_equal(f->inputs[0].type->dims[0], MIL_DIM_UNKNOWN);
    assert_int_equal(f->inputs[1].type->kind, MIL_TYPE_LIST);
    assert_int_equal(f->inputs[1].type->list_length, MIL_DIM_UNKNOWN);
    assert_int_equal(f->inputs[2].type->kind, MIL_TYPE_TUPLE);
    assert_int_equal(f->inputs[2].type->n_elems, 2);
    assert_int_equal(f->inputs[3].type->kind, MIL_TYPE_DICT);
    assert_int_equal(f->n_attrs, 1);
    assert_string_equal(f->attrs[0].name, "FlexibleShapeInformation");
    const struct mil_value *fsi = f->attrs[0].value;
    assert_int_equal(fsi->kind, MIL_VALUE_TUPLE);
    assert_int_equal(fsi->n_items, 2);
    const struct mil_value *ranges = fsi->items[1]->items[1]; /* the RangeDims dict */
    assert_int_equal(ranges->kind, MIL_VALUE_DICT);
    assert_int_equal(ranges->n_items, 2);
    const struct mil_value *lst = ranges->items[1];
    assert_int_equal(lst->kind, MIL_VALUE_LIST);
    assert_int_equal(lst->n_items, 2);
    assert_int_equal(i32_at(lst->items[1], 1), 4);
    const struct mil_value *defaults = fsi->items[0]->items[1];
    assert_int_equal(defaults->items[1]->type->dims[0], 2); /* [?] inferred from [2, 4] */
    const struct mil_value *k = const_val(p, "k");
    assert_int_equal(k->kind, MIL_VALUE_LIST);
    assert_int_equal(k->n_items, 3);
    anml__mil_program_free(p);
}

static void test_nested_blocks(void **state) {
    (void)state;
    struct mil_program *p =
        parse_ok("program(1.3)\n{\n"
                 "  func main<ios18>(tensor<fp32, [1]> x, bool p) {\n"
                 "    tensor<fp32, [1]> r = cond(pred = p) {\n"
                 "      tensor<fp32, [1]> a = relu(x = x);\n"
                 "    } -> (a) {\n"
                 "      tensor<fp32, [1]> b = neg(x = x)[name = string(\"b\")];\n"
                 "    } -> (b);\n"
                 "    tensor<fp32, [1]> w = while_loop(loop_vars = (r)) (tensor<fp32, [1]> v) {\n"
                 "      bool c = less(x = v, y = fp32(10));\n"
                 "    } -> (c) (tensor<fp32, [1]> v2) {\n"
                 "      tensor<fp32, [1]> a = add(x = v2, y = x);\n"
                 "    } -> (a);\n"
                 "    tensor<fp32, [1]> b = relu(x = w);\n"
                 "  } -> (b);\n}\n");
    const struct mil_function *f = &p->functions[0];
    assert_int_equal(f->block.n_ops, 3);
    const struct mil_op *c = &f->block.ops[0];
    assert_string_equal(c->type, "cond");
    assert_int_equal(c->n_blocks, 2);
    assert_int_equal(c->blocks[0].n_ops, 1);
    assert_string_equal(c->blocks[0].outputs[0], "a");
    assert_string_equal(c->blocks[1].outputs[0], "b");
    assert_int_equal(c->blocks[1].ops[0].n_attrs, 1);
    const struct mil_op *w = &f->block.ops[1];
    assert_int_equal(w->n_blocks, 2);
    assert_int_equal(w->blocks[0].n_inputs, 1);
    assert_string_equal(w->blocks[0].inputs[0].name, "v");
    assert_string_equal(w->blocks[1].inputs[0].name, "v2");
    assert_string_equal(w->blocks[1].outputs[0], "a");
    assert_int_equal(w->blocks[1].ops[0].line, 12);
    anml__mil_program_free(p);
    /* a block's names are not visible after it */
    const char *leak = "program(1.3)\n{\n  func main<ios18>(bool p) {\n"
                       "    bool r = cond(pred = p) {\n      bool a = logical_not(x = p);\n"
                       "    } -> (a) {\n    } -> (p);\n"
                       "    bool z = logical_not(x = a);\n  } -> (z);\n}\n";
    parse_fails(leak, strlen(leak), ANML_E_FORMAT, "undefined name 'a'", "t.mil:8:30");
    /* a block output must be defined */
    const char *undef = "program(1.3)\n{\n  func main<ios18>(bool p) {\n"
                        "    bool r = cond(pred = p) {\n    } -> (q) {\n    } -> (p);\n"
                        "  } -> (r);\n}\n";
    parse_fails(undef, strlen(undef), ANML_E_FORMAT, "undefined name 'q'", "t.mil:5:11");
}

static void test_several_functions_and_comments(void **state) {
    (void)state;
    struct mil_program *p =
        parse_ok("// leading comment\nprogram(1.3)\n{\n"
                 "    func first<ios18>(tensor<fp32, [?]> input) {\n"
                 "        tensor<fp32, [?]> output = relu(x = input); // trailing comment\n"
                 "    } -> (output);\n"
                 "    func second<CoreML8>(tensor<fp32, [?]> input) {\n"
                 "        tensor<fp32, [?]> output = relu(x = input);\n"
                 "    } -> (output);\n"
                 "    func third<ios15>() {\n"
                 "        fp32 k = const()[val = fp32(1)];\n"
                 "    } -> (k);\n"
                 "}\n");
    assert_int_equal(p->n_functions, 3);
    assert_string_equal(p->functions[1].name, "second");
    assert_int_equal(p->functions[2].opset, 5);
    assert_non_null(anml__mil_find_function(p, "third"));
    /* names are per function: `output` and `input` are reused */
    assert_string_equal(p->functions[1].block.outputs[0], "output");
    anml__mil_program_free(p);
}

static void test_identifier_chars_and_whitespace(void **state) {
    (void)state;
    struct mil_program *p =
        parse_ok("program(1.3){func main<ios18>(tensor<fp32,[1]>x){tensor<fp32,[1]>a.b:0@c="
                 "relu(x=x);}->(a.b:0@c);}");
    assert_string_equal(p->functions[0].block.outputs[0], "a.b:0@c");
    anml__mil_program_free(p);
    p = parse_ok("program(1.3)\r\n{\r\n\tfunc main<ios18>(tensor<fp32, [1]> x)\r\n\t{\r\n\t} -> "
                 "(x);\r\n}\r\n");
    assert_int_equal(p->n_functions, 1);
    anml__mil_program_free(p);
}

static void test_lenient_statement_hook(void **state) {
    (void)state;
    struct mil_program *p = anml__mil_program_new();
    struct anml_error err = { 0 };
    const char *s = "tensor<fp16, [1, 10]> y = mul(x = undefined_a, y = undefined_b);";
    assert_int_equal(anml__mil_parse_statements_for_test(p, s, strlen(s), "t.mil", &err), ANML_OK);
    assert_int_equal(p->n_functions, 1);
    assert_int_equal(p->functions[0].block.n_ops, 1);
    /* a real parse still rejects the undefined names */
    const char *full = FN("        tensor<fp16, [1, 10]> y = mul(x = undefined_a, y = x);");
    parse_fails(full, strlen(full), ANML_E_FORMAT, "undefined name 'undefined_a'", "t.mil:4:43");
    anml__mil_program_free(p);
}

/* ---- malformed inputs ---- */

struct bad_case {
    const char *src;
    enum anml_status code;
    const char *msg_part;
};

static const struct bad_case k_bad[] = {
    { "", ANML_E_FORMAT, "expected 'program'" },
    { "program", ANML_E_FORMAT, "expected '('" },
    { "program(", ANML_E_FORMAT, "version number" },
    { "program(1.3", ANML_E_FORMAT, "expected ')'" },
    { "program(1.3)", ANML_E_FORMAT, "expected '{'" },
    { "program(1.3) {", ANML_E_FORMAT, "'func' or '}'" },
    { "program(2.0) {}", ANML_E_UNSUPPORTED, "program version" },
    { "program(1.3) {} x", ANML_E_FORMAT, "end of input" },
    { "program(1.3) [buildInfo = dict<string, string>({{\"a\", \"b\"}})", ANML_E_FORMAT,
      "found end of input" },
    { "program(1.3) [buildInfo] {}", ANML_E_FORMAT, "expected '='" },
    { "program(1.3) { func }", ANML_E_FORMAT, "function name" },
    { "program(1.3) { func main }", ANML_E_FORMAT, "expected '<'" },
    { "program(1.3) { func main<ios18> }", ANML_E_FORMAT, "expected '('" },
    { "program(1.3) { func main<ios18>() { } }", ANML_E_FORMAT, "'->'" },
    { "program(1.3) { func main<ios18>() { } -> () }", ANML_E_FORMAT, "expected ';'" },
    { "program(1.3) { func main<ios18>() { } -> (y); }", ANML_E_FORMAT, "undefined name 'y'" },
    { "program(1.3) { func main<nope>() { } -> (); }", ANML_E_UNSUPPORTED, "opset tag" },
    { "program(1.3) { func main<ios18>(fp32 x, fp32 x) { } -> (); }", ANML_E_FORMAT,
      "redefinition of 'x'" },
    { "program(1.3) { func f<ios18>() { } -> (); func f<ios18>() { } -> (); }", ANML_E_FORMAT,
      "duplicate function" },
    { "program(1.3) { func main<ios18>(fp128 x) { } -> (); }", ANML_E_FORMAT, "unknown type" },
    { "program(1.3) { func main<ios18>(tensor<fp17, [1]> x) { } -> (); }", ANML_E_FORMAT,
      "unknown dtype" },
    { "program(1.3) { func main<ios18>(tensor<fp32, [1, -2]> x) { } -> (); }", ANML_E_FORMAT,
      "dimension" },
    { "program(1.3) { func main<ios18>(tensor<fp32, [9223372036854775807, 2]> x) { } -> (); }",
      ANML_E_FORMAT, "more elements than int64" },
    { "program(1.3) { func main<ios18>(tensor<fp32, [9223372036854775808]> x) { } -> (); }",
      ANML_E_FORMAT, "does not fit int64" },
    { "program(1.3) { func main<ios18>(tensor<fp32, [1] x) { } -> (); }", ANML_E_FORMAT,
      "expected '>'" },
    { "program(1.3) { func main<ios18>(state<> x) { } -> (); }", ANML_E_FORMAT, "expected a type" },
    { "program(1.3) { func main<ios18>(state<list<fp32, 2>> x) { } -> (); }", ANML_E_FORMAT,
      "state must wrap a tensor" },
    { FN("        int8 a = const()[val = int8(300)];"), ANML_E_FORMAT, "out of range for int8" },
    { FN("        uint8 a = const()[val = uint8(-1)];"), ANML_E_FORMAT, "out of range for uint8" },
    { FN("        int4 a = const()[val = int4(8)];"), ANML_E_FORMAT, "out of range for int4" },
    { FN("        int64 a = const()[val = int64(9223372036854775808)];"), ANML_E_FORMAT,
      "out of range" },
    { FN("        uint64 a = const()[val = uint64(99999999999999999999)];"), ANML_E_FORMAT,
      "out of range" },
    { FN("        int32 a = const()[val = int32(1.5)];"), ANML_E_FORMAT,
      "expected an int32 value" },
    { FN("        fp16 a = const()[val = fp16(70000)];"), ANML_E_FORMAT, "out of range for fp16" },
    { FN("        fp32 a = const()[val = fp32(1e39)];"), ANML_E_FORMAT, "out of range for fp32" },
    { FN("        bool a = const()[val = bool(1)];"), ANML_E_FORMAT, "'true' or 'false'" },
    { FN("        string a = const()[val = string(abc)];"), ANML_E_FORMAT, "expected a string" },
    { FN("        string a = const()[val = string(\"abc)];"), ANML_E_FORMAT,
      "unterminated string" },
    { FN("        string a = const()[val = string(\"a\\qb\")];"), ANML_E_FORMAT, "invalid escape" },
    { FN("        fp32 a = const()[val = fp32(1e)];"), ANML_E_FORMAT, "malformed number" },
    { FN("        fp32 a = const()[val = fp32(0x1.8)];"), ANML_E_FORMAT, "malformed number" },
    { FN("        fp32 a = const()[val = fp32(12ab)];"), ANML_E_FORMAT, "malformed number" },
    { FN("        fp32 a = const()[val = fp32(-foo)];"), ANML_E_FORMAT, "malformed number" },
    { FN("        fp32 a = const()[val = fp32(1) $];"), ANML_E_FORMAT, "unexpected character" },
    { FN("        tensor<int32, [3]> a = const()[val = tensor<int32, [3]>([1, 2])];"),
      ANML_E_FORMAT, "expected 3 elements along axis 0" },
    { FN("        tensor<int32, [2]> a = const()[val = tensor<int32, [2]>([1, 2, 3])];"),
      ANML_E_FORMAT, "too many elements" },
    { FN("        tensor<int32, [2, 2]> a = const()[val = tensor<int32, [2, 2]>([[1, 2], [3]])];"),
      ANML_E_FORMAT, "expected 2 elements along axis 1" },
    { FN("        tensor<int32, [2, 2]> a = const()[val = tensor<int32, [2, 2]>([1, 2, 3, 4])];"),
      ANML_E_FORMAT, "expected '['" },
    { FN("        tensor<int32, [?, 2]> a = const()[val = tensor<int32, [?, 2]>(1)];"),
      ANML_E_FORMAT, "unknown dimensions" },
    { FN("        tensor<int32, [?]> a = const()[val = tensor<int32, [?, ?]>([[1], [1, 2]])];"),
      ANML_E_FORMAT, "first row" },
    { FN("        int32 a = const()[val = int32([1])];"), ANML_E_FORMAT,
      "expected an int32 value" },
    { FN("        tensor<fp32, [1000000000000000]> a = const()[val = tensor<fp32, "
         "[1000000000000000]>([1, 2])];"),
      ANML_E_FORMAT, "expected 1000000000000000 elements" },
    { FN("        tensor<fp32, [1000000000000000]> a = const()[val = tensor<fp32, "
         "[1000000000000000]>(1)];"),
      ANML_E_FORMAT, "cannot fill" },
    { FN("        list<int32, 2> a = const()[val = list<int32, 2>([1])];"), ANML_E_FORMAT,
      "expected 2 list items" },
    { FN("        tuple<int32, int32> a = const()[val = tuple<int32, int32>((1))];"), ANML_E_FORMAT,
      "expected 2 tuple items" },
    { FN("        tuple<int32> a = const()[val = tuple<int32>((1, 2))];"), ANML_E_FORMAT,
      "more than the 1 items" },
    { FN("        dict<string, int32> a = const()[val = dict<string, int32>({{\"a\" 1}})];"),
      ANML_E_FORMAT, "dict literal entry" },
    { FN("        state<tensor<fp16, [1]>> a = const()[val = state<tensor<fp16, [1]>>(1)];"),
      ANML_E_FORMAT, "state type has no literal" },
    { FN("        tensor<fp8e4m3fn, [1]> a = const()[val = tensor<fp8e4m3fn, [1]>([1])];"),
      ANML_E_UNSUPPORTED, "fp8e4m3fn" },
    { FN("        tensor<fp32, [4]> a = const()[val = tensor<fp32, [4]>(BLOBFILE(path = "
         "string(\"w.bin\")))];"),
      ANML_E_FORMAT, "expected ','" },
    { FN("        tensor<fp32, [4]> a = const()[val = tensor<fp32, [4]>(BLOBFILE(path = "
         "string(\"w.bin\"), offset = int32(-5)))];"),
      ANML_E_FORMAT, "negative" },
    { FN("        tensor<fp32, [4]> a = const()[val = tensor<fp32, [4]>(BLOBFILE(path = "
         "uint64(1), offset = uint64(64)))];"),
      ANML_E_FORMAT, "path must be a string" },
    { FN("        tensor<fp32, [?]> a = const()[val = tensor<fp32, [?]>(BLOBFILE(path = "
         "string(\"w.bin\"), offset = uint64(64)))];"),
      ANML_E_FORMAT, "fully known shape" },
    { FN("        tensor<bool, [4]> a = const()[val = tensor<bool, [4]>(BLOBFILE(path = "
         "string(\"w.bin\"), offset = uint64(64)))];"),
      ANML_E_FORMAT, "cannot be stored" },
    { FN("        tensor<fp32, [1]> y = add(x = x y = x);"), ANML_E_FORMAT,
      "expected ',' or ')' in argument list, found 'y'" },
    { FN("        tensor<fp32, [1]> y = add(x = x, x = x);"), ANML_E_FORMAT,
      "duplicate argument 'x'" },
    { FN("        tensor<fp32, [1]> y = add(x = x, y = foo);"), ANML_E_FORMAT,
      "undefined name 'foo'" },
    { FN("        tensor<fp32, [1]> x = relu(x = x);"), ANML_E_FORMAT, "redefinition of 'x'" },
    { FN("        tensor<fp32, [1]> a, tensor<fp32, [1]> a = split(x = x);"), ANML_E_FORMAT,
      "redefinition of 'a'" },
    { FN("        tensor<fp32, [1]> a = relu(x = a);"), ANML_E_FORMAT, "undefined name 'a'" },
    { FN("        tensor<fp32, [1]> a = relu(x = x)"), ANML_E_FORMAT, "expected ';'" },
    { FN("        tensor<fp32, [1]> a = relu(x = x)[name = string(\"a\"), name = "
         "string(\"b\")];"),
      ANML_E_FORMAT, "duplicate attribute" },
    { FN("        tensor<fp32, [1]> a = relu(x = x)[name];"), ANML_E_FORMAT, "expected '='" },
    { FN("        tensor<fp32, [1]> a = relu(x = x)[name = a];"), ANML_E_FORMAT, "" },
    { FN("        tensor<fp32, [1]> a relu(x = x);"), ANML_E_FORMAT, "expected ',' or '='" },
    { FN("        tensor<fp32, [1]> = relu(x = x);"), ANML_E_FORMAT, "expected a name" },
    { FN("        tensor<fp32, [1]> a = (x = x);"), ANML_E_FORMAT, "operation name" },
    { FN("        tensor<fp32, [1]> a = concat(values = (), axis = int32(0));"), ANML_E_FORMAT,
      "value name or a typed literal" },
    { FN("        tensor<fp32, [1]> a = concat(values = (x, x axis = int32(0));"), ANML_E_FORMAT,
      "tuple argument" },
    { FN("        = relu(x = x);"), ANML_E_FORMAT, "statement" },
    { FN("        tensor<fp32, [1]> a = cond(pred = x) { } -> (x) { };"), ANML_E_FORMAT, "'->'" },
    { FN("        tensor<fp32, [1]> a = cond(pred = x) { } -> (x) ;;"), ANML_E_FORMAT,
      "statement" },
    { "program(1.3) { func main<ios18>() { } -> (); } \x01", ANML_E_FORMAT,
      "unexpected character 0x01" },
};

static void test_malformed_table(void **state) {
    (void)state;
    size_t n = sizeof k_bad / sizeof k_bad[0];
    assert_true(n >= 40);
    for (size_t i = 0; i < n; i++) {
        parse_fails(k_bad[i].src, strlen(k_bad[i].src), k_bad[i].code,
                    k_bad[i].msg_part[0] ? k_bad[i].msg_part : NULL, NULL);
    }
    /* a NUL byte inside the text */
    static const char nul[] = "program(1.3) {\0}";
    parse_fails(nul, sizeof nul - 1, ANML_E_FORMAT, "NUL", "t.mil:1:15");
}

static void test_error_positions(void **state) {
    (void)state;
    const char *src = FN("        tensor<fp32, [1]> y = add(x = x foo);");
    parse_fails(src, strlen(src), ANML_E_FORMAT,
                "expected ',' or ')' in argument list, found 'foo'", "t.mil:4:41");
    const char *trunc = "program(1.3)\n{\n    func main<ios18>(";
    parse_fails(trunc, strlen(trunc), ANML_E_FORMAT, "end of input", "t.mil:3:22");
}

/* Builds a text nested `depth` times with open/close around a core. */
static char *nest(const char *head, const char *open, const char *core, const char *close,
                  const char *tail, int depth) {
    size_t n = strlen(head) + strlen(tail) + strlen(core) +
               (size_t)depth * (strlen(open) + strlen(close)) + 1;
    char *s = malloc(n);
    assert_non_null(s);
    size_t k = 0;
    k += (size_t)snprintf(s + k, n - k, "%s", head);
    for (int i = 0; i < depth; i++) {
        k += (size_t)snprintf(s + k, n - k, "%s", open);
    }
    k += (size_t)snprintf(s + k, n - k, "%s", core);
    for (int i = 0; i < depth; i++) {
        k += (size_t)snprintf(s + k, n - k, "%s", close);
    }
    snprintf(s + k, n - k, "%s", tail);
    return s;
}

#define FN_HEAD \
  "program(1.3)\n{\n    func main<ios18>(tensor<fp32, [1]> x) {\n        fp32 a = const()[val = "
#define FN_TAIL "\n    } -> (x);\n}\n"

static void test_deep_nesting_is_bounded(void **state) {
    (void)state;
    /* nested list types */
    char *s = nest("program(1.3) { func main<ios18>(", "list<", "fp32", ", 1>", " x) { } -> (); }",
                   100000);
    parse_fails(s, strlen(s), ANML_E_FORMAT, "nesting deeper", NULL);
    free(s);
    /* nested tuple literal */
    s = nest(FN_HEAD "tuple<fp32>(", "(", "1", ")", ")];" FN_TAIL, 5000);
    parse_fails(s, strlen(s), ANML_E_FORMAT, NULL, NULL);
    free(s);
    /* nested blocks */
    s = nest("program(1.3) { func main<ios18>(bool p) {", " bool r = cond(pred = p) {", "",
             " } -> (p);", " } -> (p); }", 10000);
    parse_fails(s, strlen(s), ANML_E_FORMAT, "nesting deeper", NULL);
    free(s);
    /* nested array brackets beyond the rank */
    s = nest(FN_HEAD "tensor<fp32, [1]>(", "[", "1", "]", ")];" FN_TAIL, 100000);
    parse_fails(s, strlen(s), ANML_E_FORMAT, NULL, NULL);
    free(s);
    /* 10 levels are fine */
    s = nest("program(1.3) { func main<ios18>(bool p) {", " bool r = cond(pred = p) {", "",
             " } -> (p);", " } -> (p); }", 10);
    struct mil_program *p = parse_ok(s);
    anml__mil_program_free(p);
    free(s);
}

/* A program shaped like real compiler output: every prefix must fail cleanly. */
static const char k_real_shaped[] =
    "program(1.3)\n"
    "[buildInfo = dict<string, string>({{\"coremlc-component-MIL\", \"3600.16.1\"}, "
    "{\"coremlc-version\", \"3600.25.1\"}})]\n"
    "{\n"
    "    func main<ios18>(tensor<fp16, [1, 1, 64]> hidden, tensor<int32, [1]> pos, "
    "state<tensor<fp16, [2, 1, 8, 16]>> kv) [FlexibleShapeInformation = tuple<tuple<string, "
    "dict<string, tensor<int32, [?]>>>>(((\"DefaultShapes\", {{\"hidden\", [1, 1, 64]}})))] {\n"
    "            tensor<int32, [1]> axes = const()[name = string(\"axes\"), val = tensor<int32, "
    "[1]>([-1])];\n"
    "            tensor<fp16, [64]> g = const()[name = string(\"g\"), val = tensor<fp16, "
    "[64]>(BLOBFILE(path = string(\"@model_path/weights/weight.bin\"), offset = uint64(64)))];\n"
    "            fp16 eps = const()[name = string(\"eps\"), val = fp16(0x1.0cp-20)];\n"
    "            tensor<fp16, [1, 1, 64]> n = layer_norm(axes = axes, epsilon = eps, gamma = g, x "
    "= "
    "hidden)[name = string(\"n\")];\n"
    "            tensor<fp16, [2, 1, 8, 16]> c = read_state(input = kv)[name = string(\"c\")];\n"
    "            write_state(data = c, input = kv)[name = string(\"w\")];\n"
    "            tensor<fp16, [1, 1, 32]> a, tensor<fp16, [1, 1, 32]> b = split(axis = int32(-1), "
    "num_splits = int32(2), x = n)[name = string(\"s\")];\n"
    "            tensor<fp16, [1, 1, 64]> y = concat(axis = int32(-1), interleave = bool(false), "
    "values = (b, a))[name = string(\"y\")];\n"
    "            tensor<fp16, [2]> h = const()[val = tensor<fp16, [2]>([-0x1.388p+13, inf])];\n"
    "        } -> (y);\n"
    "}\n";

static void test_truncation_at_every_offset(void **state) {
    (void)state;
    size_t len = sizeof k_real_shaped - 1;
    struct mil_program *p = parse_ok(k_real_shaped);
    assert_int_equal(p->functions[0].block.n_ops, 9);
    anml__mil_program_free(p);
    size_t last_brace = len;
    while (last_brace > 0 && k_real_shaped[last_brace - 1] != '}') {
        last_brace--;
    }
    for (size_t n = 0; n < len; n++) {
        /* exact-length copies so ASan catches any read past the end */
        char *buf = malloc(n ? n : 1);
        assert_non_null(buf);
        memcpy(buf, k_real_shaped, n);
        struct mil_program *q = anml__mil_program_new();
        struct anml_error err = { 0 };
        enum anml_status st = anml__mil_parse_text(q, buf, n, "t.mil", &err);
        if (n < last_brace) {
            if (st != ANML_E_FORMAT || !has_line_col(err.where)) {
                fail_msg("prefix of %zu bytes: status %d, where '%s' (%s)", n, st, err.where,
                         err.msg);
            }
        } else {
            assert_int_equal(st, ANML_OK);
        }
        anml__mil_program_free(q);
        free(buf);
    }
}

/* ---- metadata.json ---- */

static const char k_meta_mil[] =
    "program(1.3)\n{\n"
    "  func infer<ios18>(tensor<fp16, [1, ?]> x, state<tensor<fp16, [2, 4]>> cache) {\n"
    "    tensor<fp16, [1, ?]> y = relu(x = x);\n"
    "  } -> (y);\n"
    "  func prefill<ios18>(tensor<fp16, [1, 8]> x, state<tensor<fp16, [2, 4]>> cache) {\n"
    "    tensor<fp16, [1, 8]> y = relu(x = x);\n"
    "  } -> (y);\n"
    "}\n";

#define FEAT(name, type, dt, shape, extra)                                                      \
  "{\"name\": \"" name "\", \"type\": \"" type "\", \"isOptional\": \"0\", \"dataType\": \"" dt \
  "\", \"shape\": \"" shape "\", \"shortDescription\": \"\"" extra "}"

#define INFER_X \
  FEAT("x", "MultiArray", "Float16", "[1, 1]", ", \"shapeRange\": \"[[1, 1], [1, -1]]\"")
#define INFER_Y     FEAT("y", "MultiArray", "Float16", "[1, 1]", "")
#define INFER_CACHE FEAT("cache", "State", "Float16", "[2, 4]", "")
#define PREFILL_X \
  FEAT("x", "MultiArray", "Float16", "[1, 8]", ", \"enumeratedShapes\": \"[[1, 8], [1, 8]]\"")

static enum anml_status meta(const char *mil, const char *json, struct anml_error *err,
                             struct mil_program **out) {
    struct mil_program *p = anml__mil_program_new();
    assert_non_null(p);
    enum anml_status st = anml__mil_parse_text(p, mil, strlen(mil), "t.mil", err);
    assert_int_equal(st, ANML_OK);
    st = anml__mil_parse_metadata_json(p, json, strlen(json), "dir/metadata.json", err);
    if (out) {
        *out = p;
    } else {
        anml__mil_program_free(p);
    }
    return st;
}

static void test_metadata_multifunction(void **state) {
    (void)state;
    const char *json =
        "[{\"specificationVersion\": 9, \"defaultFunctionName\": \"infer\", "
        "\"userDefinedMetadata\": {\"z\": \"1\", \"a\": \"2\"}, \"author\": \"me\", "
        "\"inputSchema\": [" FEAT(
            "x", "MultiArray", "Float16", "[1, 1]",
            "") "], "
                "\"functions\": [{\"name\": \"infer\", \"inputSchema\": [" INFER_X "], "
                "\"outputSchema\": [" INFER_Y "], \"stateSchema\": [" INFER_CACHE "]}, "
                "{\"name\": \"prefill\", \"inputSchema\": [" PREFILL_X "]}]}]";
    struct anml_error err = { 0 };
    struct mil_program *p = NULL;
    enum anml_status st = meta(k_meta_mil, json, &err, &p);
    if (st != ANML_OK) {
        fail_msg("%s: %s", err.where, err.msg);
    }
    const struct mil_model_desc *d = &p->desc;
    assert_int_equal(p->spec_version, 9);
    assert_true(d->multifunction);
    assert_int_equal(d->n_functions, 2);
    assert_string_equal(d->default_function, "infer");
    assert_string_equal(d->author, "me");
    assert_null(d->license);
    assert_int_equal(d->n_user, 2);
    assert_string_equal(d->user_keys[0], "z");
    assert_string_equal(d->user_values[1], "2");
    const struct mil_function_desc *fd = &d->functions[0];
    assert_string_equal(fd->name, "infer");
    assert_int_equal(fd->n_states, 1);
    assert_int_equal(fd->states[0].kind, MIL_FEATURE_STATE);
    assert_int_equal(fd->inputs[0].dtype, ANML_DTYPE_F16);
    assert_true(fd->inputs[0].has_range);
    assert_int_equal(fd->inputs[0].range_hi[1], -1);
    assert_int_equal(d->functions[1].inputs[0].n_enum_shapes, 2);
    assert_int_equal(d->functions[1].inputs[0].enum_shapes[1][1], 8);
    assert_string_equal(anml__mil_default_function(p), "infer");
    anml__mil_program_free(p);
}

static const struct {
    const char *json;
    const char *msg_part;
} k_bad_meta[] = {
    { "", "invalid JSON" },
    { "[{\"a\": }]", "invalid JSON" },
    { "[{}] x", "trailing data" },
    { "{}", "array holding one object" },
    { "[{}, {}]", "array holding one object" },
    { "[1]", "[0]: expected an object" },
    { "[{\"specificationVersion\": \"9\"}]", "specificationVersion" },
    { "[{\"inputSchema\": {}}]", "inputSchema: expected an array" },
    { "[{\"inputSchema\": [" FEAT("x", "MultiArray", "Float16", "[1, 10]",
                                  "") ", " FEAT("x", "MultiArray", "Float16", "[1, 10]", "") "]}]",
      "duplicate feature" },
    { "[{\"inputSchema\": [{\"type\": \"MultiArray\"}]}]", "inputSchema[0].name: missing" },
    { "[{\"inputSchema\": [" FEAT("x", "Tensor", "Float16", "[1, 10]", "") "]}]",
      "inputSchema[0].type" },
    { "[{\"inputSchema\": [" FEAT("x", "MultiArray", "Float64", "[1, 10]", "") "]}]",
      "inputSchema[0].dataType" },
    { "[{\"inputSchema\": [" FEAT("x", "MultiArray", "Float16", "[1, x]", "") "]}]",
      "inputSchema[0].shape: expected \"[d, ...]\", found \"[1, x]\"" },
    { "[{\"inputSchema\": [" FEAT("x", "MultiArray", "Float16", "[1, 10", "") "]}]",
      "inputSchema[0].shape" },
    { "[{\"inputSchema\": [{\"name\": \"x\", \"type\": \"MultiArray\", \"isOptional\": 0}]}]",
      "inputSchema[0].isOptional: expected a string" },
    { "[{\"inputSchema\": [" FEAT("x", "MultiArray", "Float16", "[1, 10]",
                                  ", \"shapeRange\": \"[[1, 2]]\"") "]}]",
      "shapeRange" },
    { "[{\"inputSchema\": [" FEAT("x", "MultiArray", "Float16", "[1, 10]",
                                  ", \"shapeRange\": \"[[1, 2], [5, 4]]\"") "]}]",
      "shapeRange" },
    { "[{\"inputSchema\": [" FEAT("x", "MultiArray", "Float16", "[1, 10]",
                                  ", \"enumeratedShapes\": \"[[1, 10], [2]]\"") "]}]",
      "enumeratedShapes" },
    { "[{\"userDefinedMetadata\": {\"k\": 1}}]", "userDefinedMetadata.k" },
    /* contradictions with model.mil */
    { "[{\"inputSchema\": [" FEAT("nope", "MultiArray", "Float16", "[1, 10]", "") "]}]",
      "input 'nope' is not a parameter of function 'main'" },
    { "[{\"inputSchema\": [" FEAT("x", "MultiArray", "Float32", "[1, 10]", "") "]}]",
      "dataType Float32 of input 'x' contradicts model.mil type tensor<fp16, [1, 10]>" },
    { "[{\"inputSchema\": [" FEAT("x", "MultiArray", "Float16", "[10]", "") "]}]",
      "shape of rank 1" },
    { "[{\"inputSchema\": [" FEAT("x", "MultiArray", "Float16", "[1, 11]", "") "]}]",
      "dim 1 of input 'x' is 11" },
    { "[{\"outputSchema\": [" FEAT("x", "MultiArray", "Float16", "[1, 10]", "") "]}]",
      "output 'x' is not an output" },
    { "[{\"stateSchema\": [" FEAT("x", "State", "Float16", "[1, 10]", "") "]}]",
      "is a State feature" },
    { "[{\"defaultFunctionName\": \"other\"}]", "defaultFunctionName" },
    { "[{\"functions\": [{\"name\": \"other\"}]}]", "function 'other' is not in model.mil" },
    { "[{\"functions\": [{\"name\": \"main\"}, {\"name\": \"main\"}]}]", "duplicate function" },
    { "[{\"functions\": [{\"name\": \"main\"}], \"defaultFunctionName\": \"x\"}]",
      "not one of the listed functions" },
};

static void test_metadata_errors(void **state) {
    (void)state;
    const char *mil = "program(1.0)\n{\n  func main<ios16>(tensor<fp16, [1, 10]> x) {\n"
                      "    tensor<fp16, [1, 10]> y = relu(x = x);\n  } -> (y);\n}\n";
    for (size_t i = 0; i < sizeof k_bad_meta / sizeof k_bad_meta[0]; i++) {
        struct anml_error err = { 0 };
        enum anml_status st = meta(mil, k_bad_meta[i].json, &err, NULL);
        if (st != ANML_E_FORMAT) {
            fail_msg("case %zu (%s): status %d (%s)", i, k_bad_meta[i].json, st, err.msg);
        }
        if (!strstr(err.where, "metadata.json") || !strstr(err.msg, "metadata.json")) {
            fail_msg("case %zu: error does not name the file: %s / %s", i, err.where, err.msg);
        }
        if (!strstr(err.msg, k_bad_meta[i].msg_part)) {
            fail_msg("case %zu: message '%s' lacks '%s'", i, err.msg, k_bad_meta[i].msg_part);
        }
    }
    /* '?' dims accept any size; a plain single-function file names the MIL function */
    const char *ok = "[{\"inputSchema\": [" FEAT("x", "MultiArray", "Float16", "[1, 10]", "") "]}]";
    struct anml_error err = { 0 };
    struct mil_program *p = NULL;
    assert_int_equal(meta(mil, ok, &err, &p), ANML_OK);
    assert_false(p->desc.multifunction);
    assert_int_equal(p->desc.n_functions, 1);
    assert_string_equal(p->desc.functions[0].name, "main");
    assert_null(p->desc.default_function);
    anml__mil_program_free(p);
    const char *q = "[{\"inputSchema\": [" FEAT(
        "x", "MultiArray", "Float16", "[1, 123]",
        "") "], \"stateSchema\": [" FEAT("cache", "State", "Float16", "[2, 4]", "") "]}]";
    assert_int_equal(meta(k_meta_mil, q, &err, NULL), ANML_OK);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalar_literal_styles),
        cmocka_unit_test(test_program_versions_and_build_info),
        cmocka_unit_test(test_opset_tags),
        cmocka_unit_test(test_hex_floats_exact_fp16),
        cmocka_unit_test(test_inf_nan),
        cmocka_unit_test(test_tensor_literals_and_fill),
        cmocka_unit_test(test_integer_ranges),
        cmocka_unit_test(test_string_escapes),
        cmocka_unit_test(test_blobfile_values),
        cmocka_unit_test(test_multi_and_zero_result_statements),
        cmocka_unit_test(test_compound_types_and_function_attrs),
        cmocka_unit_test(test_nested_blocks),
        cmocka_unit_test(test_several_functions_and_comments),
        cmocka_unit_test(test_identifier_chars_and_whitespace),
        cmocka_unit_test(test_lenient_statement_hook),
        cmocka_unit_test(test_malformed_table),
        cmocka_unit_test(test_error_positions),
        cmocka_unit_test(test_deep_nesting_is_bounded),
        cmocka_unit_test(test_truncation_at_every_offset),
        cmocka_unit_test(test_metadata_multifunction),
        cmocka_unit_test(test_metadata_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
