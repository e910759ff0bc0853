/* test_ops_reduce.c -- reductions, argmax/argmin, softmax and the normalization ops run as small
 * MIL programs through the component API, against hand-computed values. */
#include <math.h>

#include "testutil.h"
// clang-format off
#include "ophelper.h"
// clang-format on

/* A program with one function `main<opset>(inputs)` whose body and outputs are given. */
static char *prog(const char *opset, const char *inputs, const char *body, const char *outputs) {
    static char buf[1 << 15];
    int n = snprintf(buf, sizeof buf,
                     "program(1.3)\n{\n    func main<%s>(%s) {\n%s\n    } -> (%s);\n}\n", opset,
                     inputs, body, outputs);
    assert_true(n > 0 && (size_t)n < sizeof buf);
    return buf;
}

/* Runs `op_call` (text of the call, e.g. "reduce_sum(x = x)") with result type `decl` on a
 * [2, 3] fp32 input and checks the fp32 output. */
static void run_2x3(const float *x, const char *decl, const char *op_call, int32_t rank,
                    const int64_t *shape, const float *want, float tol) {
    char body[1024];
    snprintf(body, sizeof body, "        %s z = %s[name = string(\"z\")];", decl, op_call);
    struct oph h;
    oph_open(&h, prog("ios18", "tensor<fp32, [2, 3]> x", body, "z"), NULL);
    float xb[6];
    memcpy(xb, x, sizeof xb);
    struct anml_named_tensor in[] = { oph_in("x", ANML_DTYPE_F32, 2, OPH_DIMS(2, 3), xb) };
    oph_run(&h, in, 1);
    oph_check_f32(&h, "z", rank, shape, want, tol);
    oph_close(&h);
}

static void to_f16(const float *src, uint16_t *dst, int n) {
    for (int i = 0; i < n; i++) {
        dst[i] = anml__fp32_to_fp16(src[i]);
    }
}

/* ---- reduce_* ---- */

static const float k_x[6] = { 1, -2, 3, -4, 5, -6 };

static void test_reduce_kinds_last_axis(void **state) {
    (void)state;
    const char *axes = "axes = tensor<int32, [1]>([-1]), keep_dims = bool(false)";
    struct {
        const char *op;
        float want[2];
    } cases[] = {
        { "reduce_sum", { 2, -5 } },
        { "reduce_mean", { 2.0f / 3.0f, -5.0f / 3.0f } },
        { "reduce_max", { 3, 5 } },
        { "reduce_min", { -2, -6 } },
        { "reduce_prod", { -6, 120 } },
        { "reduce_sum_square", { 14, 77 } },
        { "reduce_l1_norm", { 6, 15 } },
        { "reduce_l2_norm", { 3.74165738677f, 8.77496438739f } },
        { "reduce_log_sum_exp", { 3.13284523373f, 5.00014010169f } },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char call[256];
        snprintf(call, sizeof call, "%s(x = x, %s)", cases[i].op, axes);
        run_2x3(k_x, "tensor<fp32, [2]>", call, 1, OPH_DIMS(2), cases[i].want, 1e-6f);
    }
    const float pos[6] = { 1, 2, 3, 4, 5, 6 };
    const float want_ls[2] = { 1.79175946923f, 2.70805020110f };
    run_2x3(pos, "tensor<fp32, [2]>", "reduce_log_sum(x = x, axes = tensor<int32, [1]>([1]))", 1,
            OPH_DIMS(2), want_ls, 1e-6f);
}

static void test_reduce_axes_keep_dims(void **state) {
    (void)state;
    /* axis 0 kept: column sums */
    const float want0[3] = { -3, 3, -3 };
    run_2x3(k_x, "tensor<fp32, [1, 3]>",
            "reduce_sum(x = x, axes = tensor<int32, [1]>([0]), keep_dims = bool(true))", 2,
            OPH_DIMS(1, 3), want0, 0.0f);
    /* no axes: everything, rank 0 */
    const float want_all[1] = { -3 };
    run_2x3(k_x, "fp32", "reduce_sum(x = x)", 0, NULL, want_all, 0.0f);
    const float want_max[1] = { 5 };
    run_2x3(k_x, "fp32", "reduce_max(x = x)", 0, NULL, want_max, 0.0f);
    /* both axes (one negative) kept */
    const float want_k[1] = { -3 };
    run_2x3(k_x, "tensor<fp32, [1, 1]>",
            "reduce_sum(x = x, axes = tensor<int32, [2]>([-1, 0]), keep_dims = bool(true))", 2,
            OPH_DIMS(1, 1), want_k, 0.0f);

    /* the middle axis of a rank-3 tensor, and two non-adjacent axes */
    float x[12];
    for (int i = 0; i < 12; i++) {
        x[i] = (float)i;
    }
    struct anml_named_tensor in[] = { oph_in("x", ANML_DTYPE_F32, 3, OPH_DIMS(2, 3, 2), x) };
    struct oph h;
    oph_open(&h,
             prog("ios18", "tensor<fp32, [2, 3, 2]> x",
                  "        tensor<fp32, [2, 2]> a = reduce_sum(x = x, axes = tensor<int32, "
                  "[1]>([1]))[name = string(\"a\")];\n"
                  "        tensor<fp32, [1, 3, 1]> b = reduce_sum(x = x, axes = tensor<int32, "
                  "[2]>([-1, 0]), keep_dims = bool(true))[name = string(\"b\")];\n"
                  "        tensor<fp32, [3]> c = reduce_mean(x = x, axes = tensor<int32, [2]>([0, "
                  "2]))[name = string(\"c\")];",
                  "a, b, c"),
             NULL);
    oph_run(&h, in, 1);
    const float want_a[4] = { 6, 9, 24, 27 };
    const float want_b[3] = { 14, 22, 30 };
    const float want_c[3] = { 3.5f, 5.5f, 7.5f };
    oph_check_f32(&h, "a", 2, OPH_DIMS(2, 2), want_a, 0.0f);
    oph_check_f32(&h, "b", 3, OPH_DIMS(1, 3, 1), want_b, 0.0f);
    oph_check_f32(&h, "c", 1, OPH_DIMS(3), want_c, 0.0f);
    oph_close(&h);
}

static void test_reduce_int32_and_fp16(void **state) {
    (void)state;
    struct oph h;
    oph_open(&h,
             prog("ios18", "tensor<int32, [2, 3]> x",
                  "        tensor<int32, [1]> ax = const()[name = string(\"ax\"), val = "
                  "tensor<int32, [1]>([1])];\n"
                  "        tensor<int32, [2]> s = reduce_sum(x = x, axes = ax)[name = "
                  "string(\"s\")];\n"
                  "        tensor<int32, [2]> m = reduce_mean(x = x, axes = ax)[name = "
                  "string(\"m\")];\n"
                  "        tensor<int32, [2]> p = reduce_prod(x = x, axes = ax)[name = "
                  "string(\"p\")];\n"
                  "        tensor<int32, [2]> mx = reduce_max(x = x, axes = ax)[name = "
                  "string(\"mx\")];\n"
                  "        tensor<int32, [2]> l2 = reduce_l2_norm(x = x, axes = ax)[name = "
                  "string(\"l2\")];",
                  "s, m, p, mx, l2"),
             NULL);
    int32_t x[6] = { 1, -2, 3, -4, 5, -6 };
    struct anml_named_tensor in[] = { oph_in("x", ANML_DTYPE_INT32, 2, OPH_DIMS(2, 3), x) };
    oph_run(&h, in, 1);
    oph_check_int(&h, "s", ANML_DTYPE_INT32, 1, OPH_DIMS(2), (const int64_t[]){ 2, -5 });
    /* integer mean truncates toward zero: 2/3 -> 0, -5/3 -> -1 */
    oph_check_int(&h, "m", ANML_DTYPE_INT32, 1, OPH_DIMS(2), (const int64_t[]){ 0, -1 });
    oph_check_int(&h, "p", ANML_DTYPE_INT32, 1, OPH_DIMS(2), (const int64_t[]){ -6, 120 });
    oph_check_int(&h, "mx", ANML_DTYPE_INT32, 1, OPH_DIMS(2), (const int64_t[]){ 3, 5 });
    oph_check_int(&h, "l2", ANML_DTYPE_INT32, 1, OPH_DIMS(2), (const int64_t[]){ 3, 8 });
    oph_close(&h);

    /* fp16: the sum is accumulated in fp32 and rounded once (1 + 2^-11 + 2^-11 = 1 + 2^-10;
     * rounding after every add would give 1) */
    oph_open(&h,
             prog("ios18", "tensor<fp16, [3]> x",
                  "        fp16 s = reduce_sum(x = x)[name = string(\"s\")];", "s"),
             NULL);
    uint16_t xh[3] = { anml__fp32_to_fp16(1.0f), anml__fp32_to_fp16(0x1p-11f),
                       anml__fp32_to_fp16(0x1p-11f) };
    struct anml_named_tensor inh[] = { oph_in("x", ANML_DTYPE_F16, 1, OPH_DIMS(3), xh) };
    oph_run(&h, inh, 1);
    const float want[1] = { 1 + 0x1p-10f };
    oph_check_f16(&h, "s", 0, NULL, want, 0.0f);
    oph_close(&h);
}

/* ---- argmax / argmin ---- */

static void test_argmax_ties(void **state) {
    (void)state;
    const char *body =
        "        tensor<int32, [2]> a = reduce_argmax(x = x, axis = int32(-1))[name = "
        "string(\"a\")];\n"
        "        tensor<int32, [2]> b = reduce_argmin(x = x)[name = string(\"b\")];\n"
        "        tensor<uint16, [1, 4]> c = reduce_argmax(x = x, axis = int32(0), keep_dims = "
        "bool(true), output_dtype = string(\"uint16\"))[name = string(\"c\")];\n"
        "        tensor<int32, [4]> d = reduce_argmin(x = x, axis = int32(0))[name = "
        "string(\"d\")];";
    const char *dts[2] = { "fp32", "int32" };
    for (int t = 0; t < 2; t++) {
        char inputs[64];
        snprintf(inputs, sizeof inputs, "tensor<%s, [2, 4]> x", dts[t]);
        struct oph h;
        oph_open(&h, prog("ios18", inputs, body, "a, b, c, d"), NULL);
        float xf[8] = { 1, 3, 3, 2, 5, 5, 5, 5 };
        int32_t xi[8] = { 1, 3, 3, 2, 5, 5, 5, 5 };
        struct anml_named_tensor in[] = {
            t == 0 ? oph_in("x", ANML_DTYPE_F32, 2, OPH_DIMS(2, 4), xf)
                   : oph_in("x", ANML_DTYPE_INT32, 2, OPH_DIMS(2, 4), xi)
        };
        oph_run(&h, in, 1);
        /* ties resolve to the first occurrence */
        oph_check_int(&h, "a", ANML_DTYPE_INT32, 1, OPH_DIMS(2), (const int64_t[]){ 1, 0 });
        oph_check_int(&h, "b", ANML_DTYPE_INT32, 1, OPH_DIMS(2), (const int64_t[]){ 0, 0 });
        oph_check_int(&h, "c", ANML_DTYPE_UINT16, 2, OPH_DIMS(1, 4),
                      (const int64_t[]){ 1, 1, 1, 1 });
        oph_check_int(&h, "d", ANML_DTYPE_INT32, 1, OPH_DIMS(4), (const int64_t[]){ 0, 0, 0, 0 });
        oph_close(&h);
    }
}

/* ---- softmax ---- */

static void test_softmax_masks(void **state) {
    (void)state;
    const float x[6] = { 0, -INFINITY, 0, 1, 2, 3 };
    const float want[6] = { 0.5f, 0, 0.5f, 0.0900305732f, 0.244728471f, 0.665240956f };
    run_2x3(x, "tensor<fp32, [2, 3]>", "softmax(x = x, axis = int32(-1))", 2, OPH_DIMS(2, 3), want,
            1e-7f);
    /* default axis is -1 */
    run_2x3(x, "tensor<fp32, [2, 3]>", "softmax(x = x)", 2, OPH_DIMS(2, 3), want, 1e-7f);
    /* along axis 0: columns (0, 1) -> (e^-1, 1)/(1 + e^-1), (-inf, 2) -> (0, 1), (0, 3) */
    const float want0[6] = { 0.268941421f, 0, 0.0474258732f, 0.731058579f, 1, 0.952574127f };
    run_2x3(x, "tensor<fp32, [2, 3]>", "softmax(x = x, axis = int32(0))", 2, OPH_DIMS(2, 3), want0,
            1e-7f);
    /* a row that is all -inf gives NaN (0/0; documented in reduce.c, as in PyTorch) */
    const float xi[6] = { -INFINITY, -INFINITY, -INFINITY, 0, 0, 0 };
    const float want_nan[6] = { NAN, NAN, NAN, 1.0f / 3, 1.0f / 3, 1.0f / 3 };
    run_2x3(xi, "tensor<fp32, [2, 3]>", "softmax(x = x)", 2, OPH_DIMS(2, 3), want_nan, 1e-7f);

    /* fp16 with an ANEMLL-style causal mask added first */
    struct oph h;
    oph_open(&h,
             prog("ios18", "tensor<fp16, [1, 2, 3]> x, tensor<fp16, [1, 2, 3]> m",
                  "        tensor<fp16, [1, 2, 3]> s = add(x = x, y = m)[name = string(\"s\")];\n"
                  "        tensor<fp16, [1, 2, 3]> p = softmax(x = s, axis = int32(-1))[name = "
                  "string(\"p\")];",
                  "p"),
             NULL);
    float xf[6] = { 1, 2, 3, 1, 2, 3 }, mf[6] = { 0, -INFINITY, -INFINITY, 0, 0, -INFINITY };
    uint16_t xh[6], mh[6];
    to_f16(xf, xh, 6);
    to_f16(mf, mh, 6);
    struct anml_named_tensor in[] = { oph_in("x", ANML_DTYPE_F16, 3, OPH_DIMS(1, 2, 3), xh),
                                      oph_in("m", ANML_DTYPE_F16, 3, OPH_DIMS(1, 2, 3), mh) };
    oph_run(&h, in, 2);
    const float wanth[6] = { 1, 0, 0, 0.268941421f, 0.731058579f, 0 };
    oph_check_f16(&h, "p", 3, OPH_DIMS(1, 2, 3), wanth, 0.0f);
    oph_close(&h);
}

/* ---- layer_norm ---- */

static void test_layer_norm(void **state) {
    (void)state;
    struct oph h;
    oph_open(&h,
             prog("ios18", "tensor<fp32, [2, 4]> x",
                  "        tensor<fp32, [4]> g = const()[name = string(\"g\"), val = "
                  "tensor<fp32, [4]>([1, 2, 0.5, -1])];\n"
                  "        tensor<fp32, [4]> b = const()[name = string(\"b\"), val = "
                  "tensor<fp32, [4]>([0, 1, 0, 0.5])];\n"
                  "        tensor<fp32, [2, 4]> y = layer_norm(x = x, axes = tensor<int32, "
                  "[1]>([-1]), gamma = g, beta = b, epsilon = fp32(0.00001))[name = "
                  "string(\"y\")];\n"
                  "        tensor<fp32, [2]> g0 = const()[name = string(\"g0\"), val = "
                  "tensor<fp32, [2]>([1, 3])];\n"
                  "        tensor<fp32, [2, 4]> z = layer_norm(x = x, axes = tensor<int32, "
                  "[1]>([0]), gamma = g0, epsilon = fp32(0.001))[name = string(\"z\")];",
                  "y, z"),
             NULL);
    float x[8] = { 1, 2, 3, 4, 2, 2, 2, 6 };
    struct anml_named_tensor in[] = { oph_in("x", ANML_DTYPE_F32, 2, OPH_DIMS(2, 4), x) };
    oph_run(&h, in, 1);
    /* row 0: mean 2.5, biased variance 1.25; row 1: mean 3, variance 3 */
    const float want_y[8] = { -1.34163542f,  0.105576387f,  0.223605903f,  -0.84163542f,
                              -0.577349307f, -0.154698614f, -0.288674653f, -1.23204792f };
    oph_check_f32(&h, "y", 2, OPH_DIMS(2, 4), want_y, 2e-6f);
    /* along axis 0, gamma indexed by the row: columns (1, 2), (2, 2), (3, 2), (4, 6) */
    float want_z[8];
    for (int j = 0; j < 4; j++) {
        float a = x[j], bb = x[4 + j], m = (a + bb) / 2, v = (a - m) * (a - m);
        want_z[j] = (a - m) / sqrtf(v + 0.001f);
        want_z[4 + j] = 3 * (bb - m) / sqrtf(v + 0.001f);
    }
    assert_true(fabsf(want_z[0] + 0.998005979f) < 1e-6f); /* (1 - 1.5) / sqrt(0.25 + 0.001) */
    oph_check_f32(&h, "z", 2, OPH_DIMS(2, 4), want_z, 2e-6f);
    oph_close(&h);
}

/* ANEMLL's RMSNorm idiom: layer_norm(concat([x, -x])) sliced back to x's half equals
 * x / sqrt(mean(x^2) + eps). */
static void test_rmsnorm_idiom(void **state) {
    (void)state;
    struct oph h;
    oph_open(&h,
             prog("ios18", "tensor<fp16, [1, 1, 4]> x, tensor<fp16, [1, 1, 4]> nx",
                  "        tensor<fp16, [1, 1, 8]> t = concat(values = (x, nx), axis = int32(-1), "
                  "interleave = bool(false))[name = string(\"t\")];\n"
                  "        tensor<fp16, [1, 1, 8]> n = layer_norm(x = t, axes = tensor<int32, "
                  "[1]>([-1]), epsilon = fp16(0x1p-20))[name = string(\"n\")];\n"
                  "        tensor<fp16, [1, 1, 4]> y = slice_by_index(x = n, begin = "
                  "tensor<int32, [3]>([0, 0, 0]), end = tensor<int32, [3]>([1, 1, 4]))[name = "
                  "string(\"y\")];",
                  "y"),
             NULL);
    float xf[4] = { 1, -2, 3, 0.5f }, nxf[4];
    for (int i = 0; i < 4; i++) {
        nxf[i] = -xf[i];
    }
    uint16_t xh[4], nxh[4];
    to_f16(xf, xh, 4);
    to_f16(nxf, nxh, 4);
    struct anml_named_tensor in[] = { oph_in("x", ANML_DTYPE_F16, 3, OPH_DIMS(1, 1, 4), xh),
                                      oph_in("nx", ANML_DTYPE_F16, 3, OPH_DIMS(1, 1, 4), nxh) };
    oph_run(&h, in, 2);
    /* mean(x^2) = (1 + 4 + 9 + 0.25) / 4 = 3.5625 */
    float want[4];
    for (int i = 0; i < 4; i++) {
        want[i] = xf[i] / sqrtf(3.5625f + 0x1p-20f);
    }
    oph_check_f16(&h, "y", 3, OPH_DIMS(1, 1, 4), want, 0.0f);
    oph_close(&h);
}

/* ---- batch_norm, instance_norm, l2_norm, local_response_norm ---- */

static void test_other_norms(void **state) {
    (void)state;
    struct oph h;
    oph_open(
        &h,
        prog("ios18", "tensor<fp32, [1, 2, 2]> x, tensor<fp32, [1, 3, 1, 1]> c",
             "        tensor<fp32, [2]> mu = const()[name = string(\"mu\"), val = tensor<fp32, "
             "[2]>([1, 2])];\n"
             "        tensor<fp32, [2]> var = const()[name = string(\"var\"), val = tensor<fp32, "
             "[2]>([4, 0.25])];\n"
             "        tensor<fp32, [2]> g = const()[name = string(\"g\"), val = tensor<fp32, "
             "[2]>([2, 1])];\n"
             "        tensor<fp32, [2]> b = const()[name = string(\"b\"), val = tensor<fp32, "
             "[2]>([0, 5])];\n"
             "        tensor<fp32, [1, 2, 2]> bn = batch_norm(x = x, mean = mu, variance = var, "
             "gamma = g, beta = b, epsilon = fp32(0))[name = string(\"bn\")];\n"
             "        tensor<fp32, [1, 2, 2]> in = instance_norm(x = x, gamma = g, beta = b)"
             "[name = string(\"in\")];\n"
             "        tensor<fp32, [1, 2, 2]> l2 = l2_norm(x = x)[name = string(\"l2\")];\n"
             "        tensor<fp32, [1, 3, 1, 1]> lrn = local_response_norm(x = c, size = "
             "int32(3), alpha = fp32(3), beta = fp32(1), k = fp32(1))[name = string(\"lrn\")];",
             "bn, in, l2, lrn"),
        NULL);
    float x[4] = { 1, 3, 2, 2 }, cv[3] = { 1, 2, 3 };
    struct anml_named_tensor in[] = { oph_in("x", ANML_DTYPE_F32, 3, OPH_DIMS(1, 2, 2), x),
                                      oph_in("c", ANML_DTYPE_F32, 4, OPH_DIMS(1, 3, 1, 1), cv) };
    oph_run(&h, in, 2);
    /* channel 0: 2 (x - 1) / 2, channel 1: (x - 2) / 0.5 + 5 */
    const float want_bn[4] = { 0, 2, 5, 5 };
    oph_check_f32(&h, "bn", 3, OPH_DIMS(1, 2, 2), want_bn, 1e-6f);
    /* channel 0 (1, 3): mean 2, variance 1; channel 1 (2, 2): variance 0 */
    const float s = 1.0f / sqrtf(1.0f + 1e-5f);
    const float want_in[4] = { -2 * s, 2 * s, 5, 5 };
    oph_check_f32(&h, "in", 3, OPH_DIMS(1, 2, 2), want_in, 1e-6f);
    /* sum of squares 1 + 9 + 4 + 4 = 18 */
    const float r = 1.0f / sqrtf(18.0f + 1e-6f);
    const float want_l2[4] = { r, 3 * r, 2 * r, 2 * r };
    oph_check_f32(&h, "l2", 3, OPH_DIMS(1, 2, 2), want_l2, 1e-6f);
    /* windows {0, 1}, {0, 1, 2}, {1, 2}: x / (1 + sum x^2) */
    const float want_lrn[3] = { 1.0f / 6, 2.0f / 15, 3.0f / 14 };
    oph_check_f32(&h, "lrn", 4, OPH_DIMS(1, 3, 1, 1), want_lrn, 1e-6f);
    oph_close(&h);
}

/* ---- load-time errors name the op ---- */

static void test_errors(void **state) {
    (void)state;
    oph_expect_fail(prog("ios18", "tensor<fp32, [2, 3]> x",
                         "        tensor<fp32, [2]> z = reduce_sum(x = x, axes = tensor<int32, "
                         "[2]>([0, -2]))[name = string(\"z\")];",
                         "z"),
                    "reduce_sum", "twice");
    oph_expect_fail(prog("ios18", "tensor<fp32, [2, 3]> x",
                         "        tensor<fp32, [2]> z = reduce_mean(x = x, axes = tensor<int32, "
                         "[1]>([2]))[name = string(\"z\")];",
                         "z"),
                    "reduce_mean", "out of range");
    oph_expect_fail(prog("ios18", "tensor<int32, [2, 3]> x",
                         "        tensor<int32, [2, 3]> z = softmax(x = x)[name = string(\"z\")];",
                         "z"),
                    "softmax", "fp16 or fp32");
    oph_expect_fail(prog("ios18", "tensor<fp32, [2, 3]> x",
                         "        tensor<fp32, [2]> g = const()[name = string(\"g\"), val = "
                         "tensor<fp32, [2]>([1, 1])];\n"
                         "        tensor<fp32, [2, 3]> z = layer_norm(x = x, axes = tensor<int32, "
                         "[1]>([-1]), gamma = g)[name = string(\"z\")];",
                         "z"),
                    "layer_norm", "gamma");
    oph_expect_fail(prog("ios18", "tensor<fp32, [2, 3]> x",
                         "        tensor<int32, [2]> z = reduce_argmax(x = x, output_dtype = "
                         "string(\"int8\"))[name = string(\"z\")];",
                         "z"),
                    "reduce_argmax", "output_dtype");
    oph_expect_fail(prog("ios18", "tensor<fp32, [2, 3]> x",
                         "        tensor<fp32, [2, 3]> z = batch_norm(x = x, mean = x, variance = "
                         "x)[name = string(\"z\")];",
                         "z"),
                    "batch_norm", "rank");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reduce_kinds_last_axis),
        cmocka_unit_test(test_reduce_axes_keep_dims),
        cmocka_unit_test(test_reduce_int32_and_fp16),
        cmocka_unit_test(test_argmax_ties),
        cmocka_unit_test(test_softmax_masks),
        cmocka_unit_test(test_layer_norm),
        cmocka_unit_test(test_rmsnorm_idiom),
        cmocka_unit_test(test_other_norms),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
