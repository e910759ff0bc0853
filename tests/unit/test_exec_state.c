/*
 * test_exec_state.c -- states across calls, functions and programs, and the planner's state
 * aliasing: a read_state value that outlives a write must keep the old contents; the ANEMLL KV
 * pattern (read, slice_update, write, read, slice) must give the same numbers as plain copies.
 */
#include <string.h>

#include "testutil.h"

static const char *k_read_write =
    "program(1.3)\n{\n"
    "    func main<ios18>(tensor<fp32, [2]> x, state<tensor<fp16, [2]>> s) {\n"
    "            tensor<fp16, [2]> r0 = read_state(input = s)[name = string(\"r0\")];\n"
    "            tensor<fp16, [2]> xh = cast(dtype = string(\"fp16\"), x = x)[name = "
    "string(\"xh\")];\n"
    "            write_state(data = xh, input = s)[name = string(\"w\")];\n"
    "            tensor<fp16, [2]> r1 = read_state(input = s)[name = string(\"r1\")];\n"
    "            tensor<fp16, [2]> y = add(x = r0, y = r1)[name = string(\"y\")];\n"
    "        } -> (y);\n"
    "}\n";

static uint16_t h(float f) {
    /* exact for the small integers used here */
    union {
        float f;
        uint32_t u;
    } v = { f };
    if (f == 0.0f) {
        return 0;
    }
    uint32_t e = ((v.u >> 23) & 0xff) - 112;
    return (uint16_t)(((v.u >> 16) & 0x8000) | (e << 10) | ((v.u >> 13) & 0x3ff));
}

static struct anml_program *load(const char *mil) {
    struct anml_program *p = NULL;
    struct anml_error err = { 0 };
    if (anml_program_load_mil(mil, strlen(mil), NULL, &p, &err) != ANML_OK) {
        fail_msg("%s: %s", err.where, err.msg);
    }
    return p;
}

static void test_read_before_write_keeps_old_value(void **state) {
    (void)state;
    struct anml_program *p = load(k_read_write);
    struct anml_context *c;
    struct anml_state *s;
    struct anml_error err = { 0 };
    assert_int_equal(anml_context_create(p, NULL, &c, &err), ANML_OK);
    assert_int_equal(anml_state_create(&s, &err), ANML_OK);
    assert_int_equal(anml_state_add_program(s, p, NULL, &err), ANML_OK);
    struct anml_tensor view;
    assert_int_equal(anml_state_find(s, "s", &view), ANML_OK);
    uint16_t *sv = view.data;
    assert_int_equal(sv[0], 0); /* new states are zero-filled */
    sv[0] = h(1);
    sv[1] = h(2);
    float x[2] = { 10, 20 };
    struct anml_named_tensor in = { "x", { ANML_DTYPE_F32, 1, { 2 }, x } };
    assert_int_equal(anml_context_run(c, &in, 1, s), ANML_OK);
    struct anml_tensor y;
    assert_int_equal(anml_context_output(c, "y", &y), ANML_OK);
    assert_int_equal(((uint16_t *)y.data)[0], h(11));
    assert_int_equal(((uint16_t *)y.data)[1], h(22));
    assert_int_equal(sv[0], h(10));
    /* second call: the state persists */
    x[0] = 1;
    x[1] = 1;
    assert_int_equal(anml_context_run(c, &in, 1, s), ANML_OK);
    assert_int_equal(anml_context_output(c, "y", &y), ANML_OK);
    assert_int_equal(((uint16_t *)y.data)[0], h(11));
    assert_int_equal(((uint16_t *)y.data)[1], h(21));
    anml_context_free(c);
    anml_state_free(s);
    anml_program_free(p);
}

/* ANEMLL's KV write: read the cache, write row `pos` of a [2, 4, 3] cache, write it back, read it
 * again and return this layer's slice; a second function reads the cache too. */
static const char *k_kv =
    "program(1.3)\n{\n"
    "    func infer<ios18>(tensor<fp16, [1, 1, 3]> k, tensor<int32, [1]> pos, "
    "state<tensor<fp16, [2, 4, 3]>> kv) {\n"
    "            tensor<fp16, [2, 4, 3]> r = read_state(input = kv)[name = string(\"r\")];\n"
    "            tensor<int32, [1]> p1 = add(x = pos, y = int32(1))[name = string(\"p1\")];\n"
    "            tensor<int32, [3]> b = concat(axis = int32(0), interleave = bool(false), values "
    "= (tensor<int32, [1]>([1]), pos, tensor<int32, [1]>([0])))[name = string(\"b\")];\n"
    "            tensor<int32, [3]> e = concat(axis = int32(0), interleave = bool(false), values "
    "= (tensor<int32, [1]>([2]), p1, tensor<int32, [1]>([3])))[name = string(\"e\")];\n"
    "            tensor<fp16, [2, 4, 3]> u = slice_update(begin = b, end = e, update = k, x = "
    "r)[name = string(\"u\")];\n"
    "            write_state(data = u, input = kv)[name = string(\"w\")];\n"
    "            tensor<fp16, [2, 4, 3]> r2 = read_state(input = kv)[name = string(\"r2\")];\n"
    "            tensor<fp16, [1, 4, 3]> layer = slice_by_index(begin = tensor<int32, [3]>([1, 0, "
    "0]), end = tensor<int32, [3]>([2, 4, 3]), x = r2)[name = string(\"layer\")];\n"
    "        } -> (layer);\n"
    "    func peek<ios18>(tensor<fp16, [1]> dummy, state<tensor<fp16, [2, 4, 3]>> kv) {\n"
    "            tensor<fp16, [2, 4, 3]> all = read_state(input = kv)[name = string(\"all\")];\n"
    "        } -> (all);\n"
    "}\n";

static void test_kv_update_pattern(void **state) {
    (void)state;
    struct anml_program *p = load(k_kv);
    struct anml_context *c, *peek;
    struct anml_state *s;
    struct anml_error err = { 0 };
    assert_int_equal(anml_context_create(p, "infer", &c, &err), ANML_OK);
    assert_int_equal(anml_context_create(p, "peek", &peek, &err), ANML_OK);
    assert_int_equal(anml_state_create(&s, &err), ANML_OK);
    assert_int_equal(anml_state_add_program(s, p, "infer", &err), ANML_OK);
    assert_int_equal(anml_state_add_program(s, p, "peek", &err), ANML_OK);
    assert_int_equal(anml_state_count(s), 1);
    for (int t = 0; t < 4; t++) {
        uint16_t k[3] = { h((float)(t + 1)), h((float)(t + 2)), h((float)(t + 3)) };
        int32_t pos = t;
        struct anml_named_tensor in[2] = {
            { "k", { ANML_DTYPE_F16, 3, { 1, 1, 3 }, k } },
            { "pos", { ANML_DTYPE_INT32, 1, { 1 }, &pos } },
        };
        assert_int_equal(anml_context_run(c, in, 2, s), ANML_OK);
        struct anml_tensor layer;
        assert_int_equal(anml_context_output(c, "layer", &layer), ANML_OK);
        const uint16_t *l = layer.data;
        for (int r = 0; r < 4; r++) {
            for (int j = 0; j < 3; j++) {
                uint16_t want = r <= t ? h((float)(r + 1 + j)) : 0;
                assert_int_equal(l[r * 3 + j], want);
            }
        }
    }
    uint16_t d = 0;
    struct anml_named_tensor pin = { "dummy", { ANML_DTYPE_F16, 1, { 1 }, &d } };
    assert_int_equal(anml_context_run(peek, &pin, 1, s), ANML_OK);
    struct anml_tensor all;
    assert_int_equal(anml_context_output(peek, "all", &all), ANML_OK);
    const uint16_t *a = all.data;
    for (int i = 0; i < 12; i++) {
        assert_int_equal(a[i], 0); /* layer 0 rows were never written */
    }
    assert_int_equal(a[12 + 3 * 3 + 2], h(6));
    anml_context_free(c);
    anml_context_free(peek);
    anml_state_free(s);
    anml_program_free(p);
}

/* A reshape shares its input's memory (a planned view): the input's memory must stay reserved
 * for as long as the view is read, even after the input's own last use. */
static const char *k_view =
    "program(1.3)\n{\n"
    "    func main<ios18>(tensor<fp32, [2, 3]> x) {\n"
    "            tensor<fp32, [2, 3]> a = add(x = x, y = x)[name = string(\"a\")];\n"
    "            tensor<fp32, [3, 2]> r = reshape(shape = tensor<int32, [2]>([3, 2]), x = "
    "a)[name = string(\"r\")];\n"
    "            tensor<fp32, [3, 2]> xr = reshape(shape = tensor<int32, [2]>([3, 2]), x = "
    "x)[name = string(\"xr\")];\n"
    "            tensor<fp32, [3, 2]> b = mul(x = xr, y = xr)[name = string(\"b\")];\n"
    "            tensor<fp32, [3, 2]> c = mul(x = b, y = fp32(3))[name = string(\"c\")];\n"
    "            tensor<fp32, [3, 2]> z = add(x = r, y = c)[name = string(\"z\")];\n"
    "            tensor<fp32, [6]> flat = reshape(shape = tensor<int32, [1]>([6]), x = "
    "z)[name = string(\"flat\")];\n"
    "        } -> (flat, r);\n"
    "}\n";

static void test_views_keep_their_memory(void **state) {
    (void)state;
    struct anml_program *p = load(k_view);
    struct anml_context *c;
    struct anml_error err = { 0 };
    assert_int_equal(anml_context_create(p, NULL, &c, &err), ANML_OK);
    for (int round = 0; round < 2; round++) {
        float x[6] = { 1, 2, 3, 4, 5, (float)(6 + round) };
        struct anml_named_tensor in = { "x", { ANML_DTYPE_F32, 2, { 2, 3 }, x } };
        assert_int_equal(anml_context_run(c, &in, 1, NULL), ANML_OK);
        struct anml_tensor flat, r;
        assert_int_equal(anml_context_output(c, "flat", &flat), ANML_OK);
        assert_int_equal(anml_context_output(c, "r", &r), ANML_OK);
        assert_int_equal(flat.rank, 1);
        for (int i = 0; i < 6; i++) {
            assert_true(((float *)flat.data)[i] == 2 * x[i] + 3 * x[i] * x[i]);
            assert_true(((float *)r.data)[i] == 2 * x[i]);
        }
        assert_ptr_not_equal(r.data, x); /* never an alias of caller memory */
    }
    anml_context_free(c);
    anml_program_free(p);
}

static void test_state_errors(void **state) {
    (void)state;
    struct anml_program *p = load(k_read_write);
    struct anml_context *c;
    struct anml_state *s;
    struct anml_error err = { 0 };
    assert_int_equal(anml_context_create(p, NULL, &c, &err), ANML_OK);
    float x[2] = { 0, 0 };
    struct anml_named_tensor in = { "x", { ANML_DTYPE_F32, 1, { 2 }, x } };
    /* no state at all */
    assert_int_equal(anml_context_run(c, &in, 1, NULL), ANML_E_INVALID_ARG);
    assert_non_null(strstr(anml_context_errmsg(c), "'s'"));
    /* a state without the buffer */
    assert_int_equal(anml_state_create(&s, &err), ANML_OK);
    assert_int_equal(anml_context_run(c, &in, 1, s), ANML_E_NOT_FOUND);
    /* a buffer of another shape under the same name */
    struct anml_program *q = load("program(1.3)\n{\n    func main<ios18>(state<tensor<fp16, [3]>> "
                                  "s) {\n            tensor<fp16, [3]> r = read_state(input = "
                                  "s)[name = string(\"r\")];\n        } -> (r);\n}\n");
    assert_int_equal(anml_state_add_program(s, q, NULL, &err), ANML_OK);
    assert_int_equal(anml_state_add_program(s, p, NULL, &err), ANML_E_SHAPE);
    assert_int_equal(anml_context_run(c, &in, 1, s), ANML_E_SHAPE);
    /* missing and mistyped inputs */
    assert_int_equal(anml_context_run(c, NULL, 0, NULL), ANML_E_INVALID_ARG);
    struct anml_named_tensor bad = { "x", { ANML_DTYPE_INT32, 1, { 2 }, x } };
    assert_int_equal(anml_context_run(c, &bad, 1, NULL), ANML_E_SHAPE);
    anml_state_free(s);
    anml_context_free(c);
    anml_program_free(q);
    anml_program_free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_before_write_keeps_old_value),
        cmocka_unit_test(test_kv_update_pattern),
        cmocka_unit_test(test_views_keep_their_memory),
        cmocka_unit_test(test_state_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
