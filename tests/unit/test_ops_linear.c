/* test_ops_linear.c -- conv, linear, matmul, einsum and scaled_dot_product_attention run as small
 * MIL programs through the component API, against hand-computed values (and, for the larger
 * broadcast/LUT cases, against plain reference loops written out in the test or the same op with
 * an equivalent dense weight). */
#include <math.h>
#include <stdarg.h>

#include "testutil.h"
// clang-format off
#include "ophelper.h"
// clang-format on

/* ---- building MIL text ---- */

static bool is_int_dtype(const char *dt) {
    return strncmp(dt, "int", 3) == 0 || strncmp(dt, "uint", 4) == 0;
}

static void lit_rec(char **p, char *end, const char *dt, int32_t rank, const int64_t *shape,
                    const float **v) {
    if (rank == 0) {
        int n = is_int_dtype(dt) ? snprintf(*p, (size_t)(end - *p), "%d", (int)**v)
                                 : snprintf(*p, (size_t)(end - *p), "%.9g", (double)**v);
        assert_true(n > 0 && n < end - *p);
        *p += n;
        (*v)++;
        return;
    }
    assert_true(end - *p > 2);
    *(*p)++ = '[';
    for (int64_t i = 0; i < shape[0]; i++) {
        if (i) {
            assert_true(end - *p > 2);
            *(*p)++ = ',';
            *(*p)++ = ' ';
        }
        lit_rec(p, end, dt, rank - 1, shape + 1, v);
    }
    assert_true(end - *p > 1);
    *(*p)++ = ']';
    **p = '\0';
}

/* "tensor<fp32, [2, 3]>([[1, 2, 3], [4, 5, 6]])" into buf (values given as floats). */
static const char *lit(char *buf, size_t cap, const char *dt, int32_t rank, const int64_t *shape,
                       const float *v) {
    char *p = buf, *end = buf + cap;
    int n = snprintf(p, cap, "tensor<%s, [", dt);
    p += n;
    for (int32_t i = 0; i < rank; i++) {
        p += snprintf(p, (size_t)(end - p), i ? ", %lld" : "%lld", (long long)shape[i]);
    }
    p += snprintf(p, (size_t)(end - p), "]>(");
    lit_rec(&p, end, dt, rank, shape, &v);
    assert_true(end - p > 2);
    *p++ = ')';
    *p = '\0';
    return buf;
}

/* A program with one function `main<opset>(inputs)` whose body and outputs are given. */
static char *prog(const char *opset, const char *inputs, const char *body, const char *outputs) {
    static char buf[1 << 17];
    int n = snprintf(buf, sizeof buf,
                     "program(1.3)\n{\n    func main<%s>(%s) {\n%s\n    } -> (%s);\n}\n", opset,
                     inputs, body, outputs);
    assert_true(n > 0 && (size_t)n < sizeof buf);
    return buf;
}

/* ---- conv ---- */

static const float k_x3x2[6] = { 1, 2, 3, 4, 5, 6 }; /* channels c0 = 1,2; c1 = 3,4; ... */
static const float k_w4x3[12] = { 1, 0, 0, 0, 1, -1, 0.5f, 0.5f, 0.5f, 1, 2, 3 };
static const float k_b4[4] = { 0, 1, -1, 0.25f };
/* out[o][t] = sum_c W[o][c] x[c][t] + b[o] */
static const float k_conv_want[8] = { 1, 2, -1, -1, 3.5f, 5, 22.25f, 28.25f };

static void test_conv_1x1_rank4(void **state) {
    (void)state;
    char wl[512], bl[256], body[2048];
    snprintf(body, sizeof body,
             "        tensor<fp32, [4, 3, 1, 1]> w = const()[name = string(\"w\"), val = %s];\n"
             "        tensor<fp32, [4]> b = const()[name = string(\"b\"), val = %s];\n"
             "        tensor<fp32, [1, 4, 1, 2]> y = conv(x = x, weight = w, bias = b, "
             "strides = tensor<int32, [2]>([1, 1]), pad_type = string(\"valid\"), dilations = "
             "tensor<int32, [2]>([1, 1]), groups = "
             "int32(1))[name = string(\"y\")];",
             lit(wl, sizeof wl, "fp32", 4, OPH_DIMS(4, 3, 1, 1), k_w4x3),
             lit(bl, sizeof bl, "fp32", 1, OPH_DIMS(4), k_b4));
    struct oph h;
    oph_open(&h, prog("ios18", "tensor<fp32, [1, 3, 1, 2]> x", body, "y"), NULL);
    float x[6];
    memcpy(x, k_x3x2, sizeof x);
    struct anml_named_tensor in[] = { oph_in("x", ANML_DTYPE_F32, 4, OPH_DIMS(1, 3, 1, 2), x) };
    oph_run(&h, in, 1);
    oph_check_f32(&h, "y", 4, OPH_DIMS(1, 4, 1, 2), k_conv_want, 1e-6f);
    oph_close(&h);
}

/* Rank-3 x [1, Cin, T] with weight [Cout, Cin, 1], as real ANEMLL files have; defaults for every
 * optional parameter. */
static void test_conv_1x1_rank3_defaults(void **state) {
    (void)state;
    char wl[512], bl[256], body[2048];
    snprintf(body, sizeof body,
             "        tensor<fp32, [4, 3, 1]> w = const()[name = string(\"w\"), val = %s];\n"
             "        tensor<fp32, [4]> b = const()[name = string(\"b\"), val = %s];\n"
             "        tensor<fp32, [1, 4, 2]> y = conv(x = x, weight = w, bias = b)"
             "[name = string(\"y\")];",
             lit(wl, sizeof wl, "fp32", 3, OPH_DIMS(4, 3, 1), k_w4x3),
             lit(bl, sizeof bl, "fp32", 1, OPH_DIMS(4), k_b4));
    struct oph h;
    oph_open(&h, prog("ios18", "tensor<fp32, [1, 3, 2]> x", body, "y"), NULL);
    float x[6];
    memcpy(x, k_x3x2, sizeof x);
    struct anml_named_tensor in[] = { oph_in("x", ANML_DTYPE_F32, 3, OPH_DIMS(1, 3, 2), x) };
    oph_run(&h, in, 1);
    oph_check_f32(&h, "y", 3, OPH_DIMS(1, 4, 2), k_conv_want, 1e-6f);
    oph_close(&h);
}

/* groups = 2: output channels 0-1 see input channels 0-1, channels 2-3 see 2-3. */
static void test_conv_groups(void **state) {
    (void)state;
    const char *body =
        "        tensor<fp32, [4, 2, 1, 1]> w = const()[name = string(\"w\"), val = "
        "tensor<fp32, [4, 2, 1, 1]>([[[[1]], [[10]]], [[[2]], [[0]]], [[[100]], [[1000]]], "
        "[[[0]], [[-1]]]])];\n"
        "        tensor<fp32, [1, 4, 1, 1]> y = conv(x = x, weight = w, groups = int32(2), "
        "pad_type = string(\"valid\"))[name = string(\"y\")];";
    struct oph h;
    oph_open(&h, prog("ios18", "tensor<fp32, [1, 4, 1, 1]> x", body, "y"), NULL);
    float x[4] = { 1, 2, 3, 4 };
    struct anml_named_tensor in[] = { oph_in("x", ANML_DTYPE_F32, 4, OPH_DIMS(1, 4, 1, 1), x) };
    oph_run(&h, in, 1);
    const float want[4] = { 1 * 1 + 10 * 2, 2 * 1, 100 * 3 + 1000 * 4, -4 };
    oph_check_f32(&h, "y", 4, OPH_DIMS(1, 4, 1, 1), want, 0.0f);
    oph_close(&h);
}

/* A 3x3 kernel on x = 1..16 ([1, 1, 4, 4]), bias 0.5, with each padding mode. Expected values
 * computed by hand from out[i][j] = 0.5 + sum_ab w[a][b] x_padded[i*s + a*d][j*s + b*d]. */
static void run_conv2d(const char *params, int64_t oh, int64_t ow, const float *want) {
    char body[2048], decl[64];
    snprintf(decl, sizeof decl, "tensor<fp32, [1, 1, %lld, %lld]>", (long long)oh, (long long)ow);
    snprintf(body, sizeof body,
             "        tensor<fp32, [1, 1, 3, 3]> w = const()[name = string(\"w\"), val = "
             "tensor<fp32, [1, 1, 3, 3]>([[[[1, 0, -1], [2, 1, 0], [0, 1, 3]]]])];\n"
             "        tensor<fp32, [1]> b = const()[name = string(\"b\"), val = "
             "tensor<fp32, [1]>([0.5])];\n"
             "        %s y = conv(x = x, weight = w, bias = b, %s)[name = string(\"y\")];",
             decl, params);
    struct oph h;
    oph_open(&h, prog("ios18", "tensor<fp32, [1, 1, 4, 4]> x", body, "y"), NULL);
    float x[16];
    for (int i = 0; i < 16; i++) {
        x[i] = (float)(i + 1);
    }
    struct anml_named_tensor in[] = { oph_in("x", ANML_DTYPE_F32, 4, OPH_DIMS(1, 1, 4, 4), x) };
    oph_run(&h, in, 1);
    oph_check_f32(&h, "y", 4, OPH_DIMS(1, 1, oh, ow), want, 1e-5f);
    oph_close(&h);
}

static void test_conv2d_padding_strides(void **state) {
    (void)state;
    const float valid[4] = { 57.5f, 64.5f, 85.5f, 92.5f };
    run_conv2d("pad_type = string(\"valid\")", 2, 2, valid);
    /* same, stride 2: total pad 1 per dim, extra on the after side */
    const float same_s2[4] = { 57.5f, 37.5f, 38.5f, 57.5f };
    run_conv2d("pad_type = string(\"same\"), strides = tensor<int32, [2]>([2, 2])", 2, 2, same_s2);
    /* same_lower, stride 2: the extra row/column goes before */
    const float same_lower_s2[4] = { 24.5f, 38.5f, 58.5f, 92.5f };
    run_conv2d("pad_type = string(\"same_lower\"), strides = tensor<int32, [2]>([2, 2])", 2, 2,
               same_lower_s2);
    const float same_s1[16] = { 24.5f, 31.5f, 38.5f, 18.5f, 42.5f, 57.5f, 64.5f, 37.5f,
                                58.5f, 85.5f, 92.5f, 57.5f, 3.5f,  38.5f, 41.5f, 57.5f };
    run_conv2d("pad_type = string(\"same\")", 4, 4, same_s1);
    /* custom pads (top 1, bottom 0, left 0, right 1) and dilation 2 along the width */
    const float custom[3] = { 12.5f, 29.5f, 49.5f };
    run_conv2d("pad_type = string(\"custom\"), pad = tensor<int32, [4]>([1, 0, 0, 1]), dilations = "
               "tensor<int32, [2]>([1, 2])",
               3, 1, custom);
}

/* fp16 activations with an fp32 weight (iOS17+): the sum is accumulated in fp32 and rounded
 * once, so 1 + 2^-11 + 2^-11 gives 1 + 2^-10 (sequential fp16 rounding would give 1). */
static void test_conv_fp16_single_rounding(void **state) {
    (void)state;
    const char *body =
        "        tensor<fp32, [2, 3, 1, 1]> w = const()[name = string(\"w\"), val = "
        "tensor<fp32, [2, 3, 1, 1]>([[[[1]], [[1]], [[1]]], [[[2]], [[-1]], [[0.5]]]])];\n"
        "        tensor<fp16, [1, 2, 1, 3]> y = conv(x = x, weight = w)[name = string(\"y\")];";
    struct oph h;
    oph_open(&h, prog("ios18", "tensor<fp16, [1, 3, 1, 3]> x", body, "y"), NULL);
    /* channel-major: c0 = (1, 2, 3), c1 = (2^-11, 1, 0), c2 = (2^-11, 0, 4) */
    float xf[9] = { 1, 2, 3, 0x1p-11f, 1, 0, 0x1p-11f, 0, 4 };
    uint16_t x[9];
    for (int i = 0; i < 9; i++) {
        x[i] = anml__fp32_to_fp16(xf[i]);
    }
    struct anml_named_tensor in[] = { oph_in("x", ANML_DTYPE_F16, 4, OPH_DIMS(1, 3, 1, 3), x) };
    oph_run(&h, in, 1);
    const float want[6] = { 1 + 0x1p-10f, 3, 7, 2 - 0x1p-11f + 0x1p-12f, 4 - 1, 6 + 2 };
    oph_check_f16(&h, "y", 4, OPH_DIMS(1, 2, 1, 3), want, 0.0f);
    oph_close(&h);
}

static void test_conv_errors(void **state) {
    (void)state;
    /* weight Cin does not match x */
    oph_expect_fail(prog("ios18", "tensor<fp32, [1, 3, 1, 2]> x",
                         "        tensor<fp32, [4, 2, 1, 1]> w = const()[name = string(\"w\"), "
                         "val = tensor<fp32, [4, 2, 1, 1]>(0)];\n"
                         "        tensor<fp32, [1, 4, 1, 2]> y = conv(x = x, weight = w)[name = "
                         "string(\"y\")];",
                         "y"),
                    "conv", "input channels");
    /* unknown pad_type */
    oph_expect_fail(prog("ios18", "tensor<fp32, [1, 3, 1, 2]> x",
                         "        tensor<fp32, [4, 3, 1, 1]> w = const()[name = string(\"w\"), "
                         "val = tensor<fp32, [4, 3, 1, 1]>(0)];\n"
                         "        tensor<fp32, [1, 4, 1, 2]> y = conv(x = x, weight = w, pad_type "
                         "= string(\"full\"))[name = string(\"y\")];",
                         "y"),
                    "conv", "pad_type");
    /* mixed dtypes before iOS17 */
    oph_expect_fail(prog("ios16", "tensor<fp16, [1, 3, 1, 2]> x",
                         "        tensor<fp32, [4, 3, 1, 1]> w = const()[name = string(\"w\"), "
                         "val = tensor<fp32, [4, 3, 1, 1]>(0)];\n"
                         "        tensor<fp16, [1, 4, 1, 2]> y = conv(x = x, weight = w)[name = "
                         "string(\"y\")];",
                         "y"),
                    "conv", "iOS17");
    /* same_lower arrived with iOS16 */
    oph_expect_fail(prog("ios15", "tensor<fp32, [1, 3, 1, 2]> x",
                         "        tensor<fp32, [4, 3, 1, 1]> w = const()[name = string(\"w\"), "
                         "val = tensor<fp32, [4, 3, 1, 1]>(0)];\n"
                         "        tensor<fp32, [1, 4, 1, 2]> y = conv(x = x, weight = w, pad_type "
                         "= string(\"same_lower\"))[name = string(\"y\")];",
                         "y"),
                    "conv", "same_lower");
    /* kernel larger than the input */
    oph_expect_fail(prog("ios18", "tensor<fp32, [1, 1, 2, 2]> x",
                         "        tensor<fp32, [1, 1, 3, 3]> w = const()[name = string(\"w\"), "
                         "val = tensor<fp32, [1, 1, 3, 3]>(0)];\n"
                         "        tensor<fp32, [1, 1, 1, 1]> y = conv(x = x, weight = w)[name = "
                         "string(\"y\")];",
                         "y"),
                    "conv", "larger than");
    /* bias of the wrong length */
    oph_expect_fail(prog("ios18", "tensor<fp32, [1, 3, 1, 2]> x",
                         "        tensor<fp32, [4, 3, 1, 1]> w = const()[name = string(\"w\"), "
                         "val = tensor<fp32, [4, 3, 1, 1]>(0)];\n"
                         "        tensor<fp32, [3]> b = const()[name = string(\"b\"), "
                         "val = tensor<fp32, [3]>(0)];\n"
                         "        tensor<fp32, [1, 4, 1, 2]> y = conv(x = x, weight = w, bias = "
                         "b)[name = string(\"y\")];",
                         "y"),
                    "conv", "bias");
}

/* ---- randomized conv against the definition ----
 * Deterministic pseudo-random configurations (1-3 spatial dims, groups, strides, dilations, all
 * padding modes, batch 1-2); the expected output comes from a direct loop over the definition in
 * coreml-format.md §9.7, with small integer values so that every sum is exact. */

static uint32_t rnd_state = 12345;
static int rnd(int lo, int hi) { /* inclusive */
    rnd_state = rnd_state * 1664525u + 1013904223u;
    return lo + (int)((rnd_state >> 8) % (uint32_t)(hi - lo + 1));
}

static void dims_str(char *buf, size_t cap, const char *dt, int rank, const int64_t *d) {
    int n = snprintf(buf, cap, "tensor<%s, [", dt);
    for (int i = 0; i < rank; i++) {
        n += snprintf(buf + n, cap - (size_t)n, i ? ", %lld" : "%lld", (long long)d[i]);
    }
    snprintf(buf + n, cap - (size_t)n, "]>");
}

static void test_conv_random_vs_definition(void **state) {
    (void)state;
    static char wl[1 << 14], bl[1024], body[1 << 15], xdecl[128], ydecl[128], wdecl[128];
    static float x[4096], w[4096], want[8192];
    for (int iter = 0; iter < 120; iter++) {
        int ns = rnd(1, 3), groups = rnd(1, 3), cin_g = rnd(1, 2), cout_g = rnd(1, 2);
        int64_t n = rnd(1, 2), cin = groups * cin_g, cout = groups * cout_g;
        int64_t in[3], k[3], st[3], dl[3], pb[3], pa[3], out[3];
        int mode = rnd(0, 3); /* valid, same, same_lower, custom */
        bool ok = true;
        for (int i = 0; i < ns; i++) {
            in[i] = rnd(1, ns == 3 ? 3 : 5);
            k[i] = rnd(1, 3);
            st[i] = rnd(1, 3);
            dl[i] = rnd(1, 2);
            int64_t keff = (k[i] - 1) * dl[i] + 1;
            pb[i] = pa[i] = 0;
            if (mode == 3) {
                pb[i] = rnd(0, 2);
                pa[i] = rnd(0, 2);
            } else if (mode != 0) {
                int64_t tot = st[i] * ((in[i] + st[i] - 1) / st[i]) - in[i] + keff - st[i];
                tot = tot < 0 ? 0 : tot;
                pb[i] = mode == 1 ? tot / 2 : tot - tot / 2;
                pa[i] = tot - pb[i];
            }
            int64_t padded = in[i] + pb[i] + pa[i];
            ok = ok && padded >= keff;
            out[i] = ok ? (padded - keff) / st[i] + 1 : 0;
        }
        int64_t xs[5] = { n, cin }, ws[5] = { cout, cin_g }, ys[5] = { n, cout };
        int64_t in_sp = 1, out_sp = 1, k_sp = 1;
        for (int i = 0; i < ns; i++) {
            xs[2 + i] = in[i];
            ws[2 + i] = k[i];
            ys[2 + i] = out[i];
            in_sp *= in[i];
            out_sp *= out[i];
            k_sp *= k[i];
        }
        int64_t xn = n * cin * in_sp, wn = cout * cin_g * k_sp, yn = n * cout * out_sp;
        assert_true(xn <= 4096 && wn <= 4096 && yn <= 8192);
        for (int64_t i = 0; i < xn; i++) {
            x[i] = (float)rnd(-3, 3);
        }
        for (int64_t i = 0; i < wn; i++) {
            w[i] = (float)rnd(-2, 2);
        }
        float bias[6];
        for (int64_t o = 0; o < cout; o++) {
            bias[o] = (float)rnd(-4, 4) * 0.5f;
        }
        const char *modes[4] = { "valid", "same", "same_lower", "custom" };
        char params[512];
        int pn = snprintf(params, sizeof params, "pad_type = string(\"%s\"), groups = int32(%d)",
                          modes[mode], groups);
        const char *names[2] = { "strides", "dilations" };
        const int64_t *vals[2] = { st, dl };
        for (int a = 0; a < 2; a++) {
            pn += snprintf(params + pn, sizeof params - (size_t)pn, ", %s = tensor<int32, [%d]>([",
                           names[a], ns);
            for (int i = 0; i < ns; i++) {
                pn += snprintf(params + pn, sizeof params - (size_t)pn, i ? ", %lld" : "%lld",
                               (long long)vals[a][i]);
            }
            pn += snprintf(params + pn, sizeof params - (size_t)pn, "])");
        }
        if (mode == 3) {
            pn += snprintf(params + pn, sizeof params - (size_t)pn, ", pad = tensor<int32, [%d]>([",
                           2 * ns);
            for (int i = 0; i < ns; i++) {
                pn +=
                    snprintf(params + pn, sizeof params - (size_t)pn,
                             i ? ", %lld, %lld" : "%lld, %lld", (long long)pb[i], (long long)pa[i]);
            }
            snprintf(params + pn, sizeof params - (size_t)pn, "])");
        }
        dims_str(xdecl, sizeof xdecl, "fp32", ns + 2, xs);
        dims_str(wdecl, sizeof wdecl, "fp32", ns + 2, ws);
        dims_str(ydecl, sizeof ydecl, "fp32", ns + 2, ys);
        char xin[160];
        snprintf(xin, sizeof xin, "%s x", xdecl);
        snprintf(body, sizeof body,
                 "        %s w = const()[name = string(\"w\"), val = %s];\n"
                 "        tensor<fp32, [%lld]> b = const()[name = string(\"b\"), val = %s];\n"
                 "        %s y = conv(x = x, weight = w, bias = b, %s)[name = string(\"y\")];",
                 wdecl, lit(wl, sizeof wl, "fp32", ns + 2, ws, w), (long long)cout,
                 lit(bl, sizeof bl, "fp32", 1, OPH_DIMS(cout), bias), ydecl, params);
        if (!ok) {
            oph_expect_fail(prog("ios18", xin, body, "y"), "conv", "larger than");
            continue;
        }
        /* the definition, spatial dims padded to three */
        int64_t I[3] = { 1, 1, 1 }, K[3] = { 1, 1, 1 }, O[3] = { 1, 1, 1 }, S[3] = { 1, 1, 1 },
                D[3] = { 1, 1, 1 }, P[3] = { 0, 0, 0 };
        for (int i = 0; i < ns; i++) {
            I[3 - ns + i] = in[i];
            K[3 - ns + i] = k[i];
            O[3 - ns + i] = out[i];
            S[3 - ns + i] = st[i];
            D[3 - ns + i] = dl[i];
            P[3 - ns + i] = pb[i];
        }
        for (int64_t b = 0; b < n; b++) {
            for (int64_t o = 0; o < cout; o++) {
                int64_t g = o / cout_g;
                for (int64_t j0 = 0; j0 < O[0]; j0++) {
                    for (int64_t j1 = 0; j1 < O[1]; j1++) {
                        for (int64_t j2 = 0; j2 < O[2]; j2++) {
                            float acc = bias[o];
                            for (int64_t c = 0; c < cin_g; c++) {
                                for (int64_t a0 = 0; a0 < K[0]; a0++) {
                                    for (int64_t a1 = 0; a1 < K[1]; a1++) {
                                        for (int64_t a2 = 0; a2 < K[2]; a2++) {
                                            int64_t p0 = j0 * S[0] + a0 * D[0] - P[0];
                                            int64_t p1 = j1 * S[1] + a1 * D[1] - P[1];
                                            int64_t p2 = j2 * S[2] + a2 * D[2] - P[2];
                                            if (p0 < 0 || p0 >= I[0] || p1 < 0 || p1 >= I[1] ||
                                                p2 < 0 || p2 >= I[2]) {
                                                continue;
                                            }
                                            float xv =
                                                x[(((b * cin + g * cin_g + c) * I[0] + p0) * I[1] +
                                                   p1) *
                                                      I[2] +
                                                  p2];
                                            float wv =
                                                w[(((o * cin_g + c) * K[0] + a0) * K[1] + a1) *
                                                      K[2] +
                                                  a2];
                                            acc += xv * wv;
                                        }
                                    }
                                }
                            }
                            want[(((b * cout + o) * O[0] + j0) * O[1] + j1) * O[2] + j2] = acc;
                        }
                    }
                }
            }
        }
        struct oph h;
        oph_open(&h, prog("ios18", xin, body, "y"), NULL);
        struct anml_named_tensor inp[] = { oph_in("x", ANML_DTYPE_F32, ns + 2, xs, x) };
        oph_run(&h, inp, 1);
        oph_check_f32(&h, "y", ns + 2, ys, want, 0.0f);
        oph_close(&h);
    }
}

/* ---- conv_transpose ---- */

/* out[i * s + k * d - pad_before] += x[i] w[k]; x = (1, 2, 3), w = (1, 10). */
static void run_convt1d(const char *params, int64_t out_len, const float *want) {
    char body[1024], decl[64];
    snprintf(decl, sizeof decl, "tensor<fp32, [1, 1, %lld]>", (long long)out_len);
    snprintf(body, sizeof body,
             "        tensor<fp32, [1, 1, 2]> w = const()[name = string(\"w\"), val = "
             "tensor<fp32, [1, 1, 2]>([[[1, 10]]])];\n"
             "        %s y = conv_transpose(x = x, weight = w%s)[name = string(\"y\")];",
             decl, params);
    struct oph h;
    oph_open(&h, prog("ios18", "tensor<fp32, [1, 1, 3]> x", body, "y"), NULL);
    float x[3] = { 1, 2, 3 };
    struct anml_named_tensor in[] = { oph_in("x", ANML_DTYPE_F32, 3, OPH_DIMS(1, 1, 3), x) };
    oph_run(&h, in, 1);
    oph_check_f32(&h, "y", 3, OPH_DIMS(1, 1, out_len), want, 0.0f);
    oph_close(&h);
}

static void test_conv_transpose(void **state) {
    (void)state;
    const float s2[6] = { 1, 10, 2, 20, 3, 30 };
    run_convt1d(", strides = tensor<int32, [1]>([2])", 6, s2);
    run_convt1d(", strides = tensor<int32, [1]>([2]), pad_type = string(\"same\")", 6, s2);
    const float s1[4] = { 1, 12, 23, 30 };
    run_convt1d("", 4, s1);
    const float cropped[3] = { 12, 23, 30 };
    run_convt1d(", pad_type = string(\"custom\"), pad = tensor<int32, [2]>([1, 0])", 3, cropped);
    run_convt1d(", strides = tensor<int32, [1]>([2]), output_shape = tensor<int32, [3]>([1, 1, 5])",
                5, s2);
    const float dil[5] = { 1, 2, 13, 20, 30 }; /* dilation 2: taps at i and i + 2 */
    run_convt1d(", dilations = tensor<int32, [1]>([2])", 5, dil);

    /* 2-D, weight [[1, 0], [0, 1]]: x plus x shifted by (1, 1) */
    struct oph h;
    oph_open(&h,
             prog("ios18", "tensor<fp32, [1, 1, 2, 2]> x",
                  "        tensor<fp32, [1, 1, 2, 2]> w = const()[name = string(\"w\"), val = "
                  "tensor<fp32, [1, 1, 2, 2]>([[[[1, 0], [0, 1]]]])];\n"
                  "        tensor<fp32, [1, 1, 3, 3]> y = conv_transpose(x = x, weight = w)[name = "
                  "string(\"y\")];",
                  "y"),
             NULL);
    float x[4] = { 1, 2, 3, 4 };
    struct anml_named_tensor in[] = { oph_in("x", ANML_DTYPE_F32, 4, OPH_DIMS(1, 1, 2, 2), x) };
    oph_run(&h, in, 1);
    const float want2d[9] = { 1, 2, 0, 3, 5, 2, 0, 3, 4 };
    oph_check_f32(&h, "y", 4, OPH_DIMS(1, 1, 3, 3), want2d, 0.0f);
    oph_close(&h);

    /* groups 2 with bias: channel c scales x[c] by w[c] */
    oph_open(&h,
             prog("ios18", "tensor<fp32, [1, 2, 1]> x",
                  "        tensor<fp32, [2, 1, 1]> w = const()[name = string(\"w\"), val = "
                  "tensor<fp32, [2, 1, 1]>([[[3]], [[4]]])];\n"
                  "        tensor<fp32, [2]> b = const()[name = string(\"b\"), val = "
                  "tensor<fp32, [2]>([0.5, -0.5])];\n"
                  "        tensor<fp32, [1, 2, 1]> y = conv_transpose(x = x, weight = w, bias = b, "
                  "groups = int32(2))[name = string(\"y\")];",
                  "y"),
             NULL);
    float xg[2] = { 1, 2 };
    struct anml_named_tensor ing[] = { oph_in("x", ANML_DTYPE_F32, 3, OPH_DIMS(1, 2, 1), xg) };
    oph_run(&h, ing, 1);
    const float wantg[2] = { 3.5f, 7.5f };
    oph_check_f32(&h, "y", 3, OPH_DIMS(1, 2, 1), wantg, 0.0f);
    oph_close(&h);

    oph_expect_fail(prog("ios18", "tensor<fp32, [1, 2, 3]> x",
                         "        tensor<fp32, [1, 1, 2]> w = const()[name = string(\"w\"), val = "
                         "tensor<fp32, [1, 1, 2]>(0)];\n"
                         "        tensor<fp32, [1, 1, 4]> y = conv_transpose(x = x, weight = w)"
                         "[name = string(\"y\")];",
                         "y"),
                    "conv_transpose", "input channels");
}

/* ---- linear ---- */

static void test_linear(void **state) {
    (void)state;
    const char *consts =
        "        tensor<fp32, [2, 3]> w = const()[name = string(\"w\"), val = tensor<fp32, [2, "
        "3]>([[1, 0, -1], [0.5, 0.5, 0.5]])];\n"
        "        tensor<fp32, [2]> b = const()[name = string(\"b\"), val = tensor<fp32, [2]>([1, "
        "-1])];\n";
    char body[2048];
    float x[6] = { 1, 2, 3, 4, 5, 6 };
    const float want[4] = { -1, 2, -1, 6.5f };
    struct oph h;

    snprintf(body, sizeof body,
             "%s        tensor<fp32, [1, 2, 2]> y = linear(x = x, weight = w, bias = b)[name = "
             "string(\"y\")];",
             consts);
    oph_open(&h, prog("ios18", "tensor<fp32, [1, 2, 3]> x", body, "y"), NULL);
    struct anml_named_tensor in3[] = { oph_in("x", ANML_DTYPE_F32, 3, OPH_DIMS(1, 2, 3), x) };
    oph_run(&h, in3, 1);
    oph_check_f32(&h, "y", 3, OPH_DIMS(1, 2, 2), want, 1e-6f);
    oph_close(&h);

    /* rank-1 x, no bias */
    snprintf(body, sizeof body,
             "%s        tensor<fp32, [2]> y = linear(x = x, weight = w)[name = string(\"y\")];",
             consts);
    oph_open(&h, prog("ios18", "tensor<fp32, [3]> x", body, "y"), NULL);
    struct anml_named_tensor in1[] = { oph_in("x", ANML_DTYPE_F32, 1, OPH_DIMS(3), x + 3) };
    oph_run(&h, in1, 1);
    const float want1[2] = { 4 - 6, 7.5f };
    oph_check_f32(&h, "y", 1, OPH_DIMS(2), want1, 1e-6f);
    oph_close(&h);
}

static void test_linear_int32(void **state) {
    (void)state;
    const char *body =
        "        tensor<int32, [2, 3]> w = const()[name = string(\"w\"), val = tensor<int32, [2, "
        "3]>([[1, 0, -1], [2, 1, 1]])];\n"
        "        tensor<int32, [2]> b = const()[name = string(\"b\"), val = tensor<int32, [2]>([1, "
        "-1])];\n"
        "        tensor<int32, [2, 2]> y = linear(x = x, weight = w, bias = b)[name = "
        "string(\"y\")];";
    struct oph h;
    oph_open(&h, prog("ios18", "tensor<int32, [2, 3]> x", body, "y"), NULL);
    int32_t x[6] = { 1, 2, 3, 4, 5, 6 };
    struct anml_named_tensor in[] = { oph_in("x", ANML_DTYPE_INT32, 2, OPH_DIMS(2, 3), x) };
    oph_run(&h, in, 1);
    const int64_t want[4] = { -1, 6, -1, 18 };
    oph_check_int(&h, "y", ANML_DTYPE_INT32, 2, OPH_DIMS(2, 2), want);
    oph_close(&h);
}

static void test_linear_errors(void **state) {
    (void)state;
    oph_expect_fail(prog("ios18", "tensor<fp32, [2, 3]> x",
                         "        tensor<fp32, [2, 4]> w = const()[name = string(\"w\"), val = "
                         "tensor<fp32, [2, 4]>(0)];\n"
                         "        tensor<fp32, [2, 2]> y = linear(x = x, weight = w)[name = "
                         "string(\"y\")];",
                         "y"),
                    "linear", "Din");
    oph_expect_fail(prog("ios18", "tensor<fp32, [2, 3]> x",
                         "        tensor<fp32, [3]> w = const()[name = string(\"w\"), val = "
                         "tensor<fp32, [3]>(0)];\n"
                         "        tensor<fp32, [2]> y = linear(x = x, weight = w)[name = "
                         "string(\"y\")];",
                         "y"),
                    "linear", "rank 2");
}

/* ---- matmul ---- */

/* x = [[1, 2, 3], [4, 5, 6]], y = [[1, 0], [0, 1], [1, -1]] -> [[4, -1], [10, -1]] */
static const float k_mx[6] = { 1, 2, 3, 4, 5, 6 };
static const float k_mxt[6] = { 1, 4, 2, 5, 3, 6 }; /* x transposed, [3, 2] */
static const float k_my[6] = { 1, 0, 0, 1, 1, -1 };
static const float k_myt[6] = { 1, 0, 1, 0, 1, -1 }; /* y transposed, [2, 3] */
static const float k_mwant[4] = { 4, -1, 10, -1 };

static void test_matmul_transposes(void **state) {
    (void)state;
    /* every combination of transposes, with both operands runtime, y constant, or x constant
     * (the three ways the operands are read) */
    for (int mode = 0; mode < 3; mode++) {
        for (int t = 0; t < 4; t++) {
            bool tx = t & 1, ty = t & 2;
            const float *xv = tx ? k_mxt : k_mx, *yv = ty ? k_myt : k_my;
            const int64_t *xs = tx ? OPH_DIMS(3, 2) : OPH_DIMS(2, 3);
            const int64_t *ys = ty ? OPH_DIMS(2, 3) : OPH_DIMS(3, 2);
            char xl[256], yl[256], xdecl[64], ydecl[64], body[2048], inputs[256];
            snprintf(xdecl, sizeof xdecl, "tensor<fp32, [%lld, %lld]>", (long long)xs[0],
                     (long long)xs[1]);
            snprintf(ydecl, sizeof ydecl, "tensor<fp32, [%lld, %lld]>", (long long)ys[0],
                     (long long)ys[1]);
            char cx[512] = "", cy[512] = "";
            if (mode == 2) {
                snprintf(cx, sizeof cx, "        %s x = const()[name = string(\"x\"), val = %s];\n",
                         xdecl, lit(xl, sizeof xl, "fp32", 2, xs, xv));
                snprintf(inputs, sizeof inputs, "%s y", ydecl);
            } else if (mode == 1) {
                snprintf(cy, sizeof cy, "        %s y = const()[name = string(\"y\"), val = %s];\n",
                         ydecl, lit(yl, sizeof yl, "fp32", 2, ys, yv));
                snprintf(inputs, sizeof inputs, "%s x", xdecl);
            } else {
                snprintf(inputs, sizeof inputs, "%s x, %s y", xdecl, ydecl);
            }
            snprintf(body, sizeof body,
                     "%s%s        tensor<fp32, [2, 2]> z = matmul(x = x, y = y, transpose_x = "
                     "bool(%s), transpose_y = bool(%s))[name = string(\"z\")];",
                     cx, cy, tx ? "true" : "false", ty ? "true" : "false");
            struct oph h;
            oph_open(&h, prog("ios18", inputs, body, "z"), NULL);
            float xb[6], yb[6];
            memcpy(xb, xv, sizeof xb);
            memcpy(yb, yv, sizeof yb);
            struct anml_named_tensor in[2];
            int32_t n = 0;
            if (mode != 2) {
                in[n++] = oph_in("x", ANML_DTYPE_F32, 2, xs, xb);
            }
            if (mode != 1) {
                in[n++] = oph_in("y", ANML_DTYPE_F32, 2, ys, yb);
            }
            oph_run(&h, in, n);
            oph_check_f32(&h, "z", 2, OPH_DIMS(2, 2), k_mwant, 0.0f);
            oph_close(&h);
        }
    }
}

static void test_matmul_rank1(void **state) {
    (void)state;
    float x[6], y[6], v[3] = { 1, 1, 1 };
    memcpy(x, k_mx, sizeof x);
    memcpy(y, k_my, sizeof y);
    struct oph h;
    /* [3] @ [3, 2] -> [2]: row 0 of the 2-D result */
    oph_open(&h,
             prog("ios18", "tensor<fp32, [3]> x, tensor<fp32, [3, 2]> y",
                  "        tensor<fp32, [2]> z = matmul(x = x, y = y)[name = string(\"z\")];", "z"),
             NULL);
    struct anml_named_tensor in1[] = { oph_in("x", ANML_DTYPE_F32, 1, OPH_DIMS(3), x),
                                       oph_in("y", ANML_DTYPE_F32, 2, OPH_DIMS(3, 2), y) };
    oph_run(&h, in1, 2);
    oph_check_f32(&h, "z", 1, OPH_DIMS(2), k_mwant, 0.0f);
    oph_close(&h);
    /* [2, 3] @ [3] -> [2] (row sums); transpose_y is ignored for a rank-1 y */
    oph_open(
        &h,
        prog("ios18", "tensor<fp32, [2, 3]> x, tensor<fp32, [3]> y",
             "        tensor<fp32, [2]> z = matmul(x = x, y = y, transpose_y = bool(true))[name = "
             "string(\"z\")];",
             "z"),
        NULL);
    struct anml_named_tensor in2[] = { oph_in("x", ANML_DTYPE_F32, 2, OPH_DIMS(2, 3), x),
                                       oph_in("y", ANML_DTYPE_F32, 1, OPH_DIMS(3), v) };
    oph_run(&h, in2, 2);
    const float want2[2] = { 6, 15 };
    oph_check_f32(&h, "z", 1, OPH_DIMS(2), want2, 0.0f);
    oph_close(&h);
    /* [3] @ [3] -> scalar */
    oph_open(&h,
             prog("ios18", "tensor<fp32, [3]> x, tensor<fp32, [3]> y",
                  "        fp32 z = matmul(x = x, y = y)[name = string(\"z\")];", "z"),
             NULL);
    struct anml_named_tensor in3[] = { oph_in("x", ANML_DTYPE_F32, 1, OPH_DIMS(3), x + 3),
                                       oph_in("y", ANML_DTYPE_F32, 1, OPH_DIMS(3), x) };
    oph_run(&h, in3, 2);
    const float want3[1] = { 4 * 1 + 5 * 2 + 6 * 3 };
    oph_check_f32(&h, "z", 0, NULL, want3, 0.0f);
    oph_close(&h);
}

/* [10, 4, 3] @ [5, 10, 3, 2] -> [5, 10, 4, 2], checked against a plain loop over the broadcast
 * definition; small integers keep every sum exact. Run with y as an input and as a constant. */
static void test_matmul_batch_broadcast(void **state) {
    (void)state;
    static float x[10 * 4 * 3], y[5 * 10 * 3 * 2], want[5 * 10 * 4 * 2];
    for (int i = 0; i < 120; i++) {
        x[i] = (float)(i % 7 - 3);
    }
    for (int i = 0; i < 300; i++) {
        y[i] = (float)(i % 5 - 2);
    }
    for (int a = 0; a < 5; a++) {
        for (int b = 0; b < 10; b++) {
            for (int m = 0; m < 4; m++) {
                for (int n = 0; n < 2; n++) {
                    float s = 0;
                    for (int k = 0; k < 3; k++) {
                        s += x[(b * 4 + m) * 3 + k] * y[((a * 10 + b) * 3 + k) * 2 + n];
                    }
                    want[((a * 10 + b) * 4 + m) * 2 + n] = s;
                }
            }
        }
    }
    struct oph h;
    oph_open(&h,
             prog("ios18", "tensor<fp32, [10, 4, 3]> x, tensor<fp32, [5, 10, 3, 2]> y",
                  "        tensor<fp32, [5, 10, 4, 2]> z = matmul(x = x, y = y)[name = "
                  "string(\"z\")];",
                  "z"),
             NULL);
    struct anml_named_tensor in[] = { oph_in("x", ANML_DTYPE_F32, 3, OPH_DIMS(10, 4, 3), x),
                                      oph_in("y", ANML_DTYPE_F32, 4, OPH_DIMS(5, 10, 3, 2), y) };
    oph_run(&h, in, 2);
    oph_check_f32(&h, "z", 4, OPH_DIMS(5, 10, 4, 2), want, 0.0f);
    oph_close(&h);

    static char yl[1 << 14], body[1 << 15];
    snprintf(body, sizeof body,
             "        tensor<fp32, [5, 10, 3, 2]> y = const()[name = string(\"y\"), val = %s];\n"
             "        tensor<fp32, [5, 10, 4, 2]> z = matmul(x = x, y = y)[name = "
             "string(\"z\")];",
             lit(yl, sizeof yl, "fp32", 4, OPH_DIMS(5, 10, 3, 2), y));
    oph_open(&h, prog("ios18", "tensor<fp32, [10, 4, 3]> x", body, "z"), NULL);
    oph_run(&h, in, 1);
    oph_check_f32(&h, "z", 4, OPH_DIMS(5, 10, 4, 2), want, 0.0f);
    oph_close(&h);
}

static void test_matmul_int32_and_mixed(void **state) {
    (void)state;
    struct oph h;
    oph_open(&h,
             prog("ios18", "tensor<int32, [2, 3]> x, tensor<int32, [3, 2]> y",
                  "        tensor<int32, [2, 2]> z = matmul(x = x, y = y)[name = string(\"z\")];",
                  "z"),
             NULL);
    int32_t xi[6] = { 1, 2, 3, 4, 5, 6 }, yi[6] = { 1, 0, 0, 1, 1, -1 };
    struct anml_named_tensor in[] = { oph_in("x", ANML_DTYPE_INT32, 2, OPH_DIMS(2, 3), xi),
                                      oph_in("y", ANML_DTYPE_INT32, 2, OPH_DIMS(3, 2), yi) };
    oph_run(&h, in, 2);
    const int64_t want[4] = { 4, -1, 10, -1 };
    oph_check_int(&h, "z", ANML_DTYPE_INT32, 2, OPH_DIMS(2, 2), want);
    oph_close(&h);

    /* iOS17+: fp16 runtime x with an fp32 constant y; the output takes x's dtype */
    oph_open(&h,
             prog("ios18", "tensor<fp16, [2, 3]> x",
                  "        tensor<fp32, [3, 2]> y = const()[name = string(\"y\"), val = "
                  "tensor<fp32, [3, 2]>([[1, 0], [0, 1], [1, -1]])];\n"
                  "        tensor<fp16, [2, 2]> z = matmul(x = x, y = y)[name = string(\"z\")];",
                  "z"),
             NULL);
    uint16_t xh[6];
    for (int i = 0; i < 6; i++) {
        xh[i] = anml__fp32_to_fp16(k_mx[i]);
    }
    struct anml_named_tensor inh[] = { oph_in("x", ANML_DTYPE_F16, 2, OPH_DIMS(2, 3), xh) };
    oph_run(&h, inh, 1);
    oph_check_f16(&h, "z", 2, OPH_DIMS(2, 2), k_mwant, 0.0f);
    oph_close(&h);

    /* two runtime operands of different dtypes are rejected */
    oph_expect_fail(prog("ios18", "tensor<fp16, [2, 3]> x, tensor<fp32, [3, 2]> y",
                         "        tensor<fp16, [2, 2]> z = matmul(x = x, y = y)[name = "
                         "string(\"z\")];",
                         "z"),
                    "matmul", "dtype");
    oph_expect_fail(prog("ios18", "tensor<fp32, [2, 3]> x, tensor<fp32, [2, 2]> y",
                         "        tensor<fp32, [2, 2]> z = matmul(x = x, y = y)[name = "
                         "string(\"z\")];",
                         "z"),
                    "matmul", "inner dimensions");
    oph_expect_fail(prog("ios18", "tensor<fp32, [3, 2, 3]> x, tensor<fp32, [2, 3, 2]> y",
                         "        tensor<fp32, [3, 2, 2]> z = matmul(x = x, y = y)[name = "
                         "string(\"z\")];",
                         "z"),
                    "matmul", "broadcast");
}

/* Randomized matmul: ranks 1-4 with broadcast batch dims, transposes, and each operand either an
 * input or a constant; expected values from the broadcast definition. */
static void test_matmul_random_vs_definition(void **state) {
    (void)state;
    static char xl[1 << 14], yl[1 << 14], body[1 << 15], inputs[512], xdecl[128], ydecl[128],
        zdecl[128], cx[1 << 14], cy[1 << 14];
    static float x[2048], y[2048], want[4096];
    for (int iter = 0; iter < 150; iter++) {
        int rx = rnd(1, 4), ry = rnd(1, 4), mode = rnd(0, 2);
        bool tx = rnd(0, 1), ty = rnd(0, 1);
        int64_t M = rnd(1, 3), K = rnd(1, 4), N = rnd(1, 3);
        M = rx == 1 ? 1 : M; /* a rank-1 operand is one row / one column */
        N = ry == 1 ? 1 : N;
        int bx = rx > 2 ? rx - 2 : 0, by = ry > 2 ? ry - 2 : 0, bo = bx > by ? bx : by;
        int64_t ob[2], xb[2], yb[2];
        for (int d = 0; d < bo; d++) {
            ob[d] = rnd(2, 3);
        }
        for (int d = 0; d < bx; d++) {
            xb[d] = rnd(0, 2) ? ob[bo - bx + d] : 1;
        }
        for (int d = 0; d < by; d++) {
            yb[d] = rnd(0, 2) ? ob[bo - by + d] : 1;
        }
        for (int d = 0; d < bo; d++) { /* the output dim is 1 when both operands have 1 */
            int dx = d - (bo - bx), dy = d - (bo - by);
            int64_t sx = dx >= 0 ? xb[dx] : 1, sy = dy >= 0 ? yb[dy] : 1;
            ob[d] = sx > sy ? sx : sy;
        }
        int64_t xs[4], ys[4], zs[4];
        int zr = 0;
        memcpy(xs, xb, sizeof(int64_t) * (size_t)bx);
        memcpy(ys, yb, sizeof(int64_t) * (size_t)by);
        memcpy(zs, ob, sizeof(int64_t) * (size_t)bo);
        zr = bo;
        if (rx == 1) {
            xs[0] = K;
        } else {
            xs[bx] = tx ? K : M;
            xs[bx + 1] = tx ? M : K;
            zs[zr++] = M;
        }
        if (ry == 1) {
            ys[0] = K;
        } else {
            ys[by] = ty ? N : K;
            ys[by + 1] = ty ? K : N;
            zs[zr++] = N;
        }
        int64_t xn = oph_numel(rx, xs), yn = oph_numel(ry, ys), zn = oph_numel(zr, zs);
        for (int64_t i = 0; i < xn; i++) {
            x[i] = (float)rnd(-3, 3);
        }
        for (int64_t i = 0; i < yn; i++) {
            y[i] = (float)rnd(-3, 3);
        }
        int64_t n_batch = oph_numel(bo, ob);
        for (int64_t b = 0; b < n_batch; b++) {
            int64_t coord[2] = { 0, 0 }, rest = b;
            for (int d = bo - 1; d >= 0; d--) {
                coord[d] = rest % ob[d];
                rest /= ob[d];
            }
            int64_t xo = 0, yo = 0;
            for (int d = 0; d < bx; d++) {
                xo = xo * xb[d] + (xb[d] == 1 ? 0 : coord[bo - bx + d]);
            }
            for (int d = 0; d < by; d++) {
                yo = yo * yb[d] + (yb[d] == 1 ? 0 : coord[bo - by + d]);
            }
            xo *= M * K;
            yo *= K * N;
            for (int64_t i = 0; i < M; i++) {
                for (int64_t j = 0; j < N; j++) {
                    float acc = 0;
                    for (int64_t kk = 0; kk < K; kk++) {
                        float xv = x[xo + (rx > 1 && tx ? kk * M + i : i * K + kk)];
                        float yv = y[yo + (ry > 1 && ty ? j * K + kk : kk * N + j)];
                        acc += xv * yv;
                    }
                    want[(b * M + i) * N + j] = acc;
                }
            }
        }
        dims_str(xdecl, sizeof xdecl, "fp32", rx, xs);
        dims_str(ydecl, sizeof ydecl, "fp32", ry, ys);
        dims_str(zdecl, sizeof zdecl, "fp32", zr, zs);
        cx[0] = cy[0] = '\0';
        if (mode == 1) {
            snprintf(cy, sizeof cy, "        %s y = const()[name = string(\"y\"), val = %s];\n",
                     ydecl, lit(yl, sizeof yl, "fp32", ry, ys, y));
            snprintf(inputs, sizeof inputs, "%s x", xdecl);
        } else if (mode == 2) {
            snprintf(cx, sizeof cx, "        %s x = const()[name = string(\"x\"), val = %s];\n",
                     xdecl, lit(xl, sizeof xl, "fp32", rx, xs, x));
            snprintf(inputs, sizeof inputs, "%s y", ydecl);
        } else {
            snprintf(inputs, sizeof inputs, "%s x, %s y", xdecl, ydecl);
        }
        snprintf(body, sizeof body,
                 "%s%s        %s z = matmul(x = x, y = y, transpose_x = bool(%s), transpose_y = "
                 "bool(%s))[name = string(\"z\")];",
                 cx, cy, zr ? zdecl : "fp32", tx ? "true" : "false", ty ? "true" : "false");
        struct oph h;
        oph_open(&h, prog("ios18", inputs, body, "z"), NULL);
        struct anml_named_tensor in[2];
        int32_t nin = 0;
        if (mode != 2) {
            in[nin++] = oph_in("x", ANML_DTYPE_F32, rx, xs, x);
        }
        if (mode != 1) {
            in[nin++] = oph_in("y", ANML_DTYPE_F32, ry, ys, y);
        }
        oph_run(&h, in, nin);
        assert_true(zn == n_batch * M * N);
        oph_check_f32(&h, "z", zr, zs, want, 0.0f);
        oph_close(&h);
    }
}

/* ---- einsum ---- */

static void test_einsum(void **state) {
    (void)state;
    /* out[n, c, h, u] = sum_w a[n, c, h, w] b[n, w, h, u]: a = [[1, 2], [3, 4]] over (h, w),
     * b over (w, h) = [[5, 6], [7, 8]] -> h = 0: 1*5 + 2*7 = 19, h = 1: 3*6 + 4*8 = 50 */
    float a[4] = { 1, 2, 3, 4 }, b[4] = { 5, 6, 7, 8 };
    const float want[2] = { 19, 50 };
    struct oph h;
    oph_open(&h,
             prog("ios18", "tensor<fp32, [1, 1, 2, 2]> a, tensor<fp32, [1, 2, 2, 1]> b",
                  "        tensor<fp32, [1, 1, 2, 1]> z = einsum(values = (a, b), equation = "
                  "string(\"nchw,nwhu->nchu\"))[name = string(\"z\")];",
                  "z"),
             NULL);
    struct anml_named_tensor in4[] = { oph_in("a", ANML_DTYPE_F32, 4, OPH_DIMS(1, 1, 2, 2), a),
                                       oph_in("b", ANML_DTYPE_F32, 4, OPH_DIMS(1, 2, 2, 1), b) };
    oph_run(&h, in4, 2);
    oph_check_f32(&h, "z", 4, OPH_DIMS(1, 1, 2, 1), want, 0.0f);
    oph_close(&h);

    /* the rank-3 form with other letters, and b broadcast along h */
    oph_open(&h,
             prog("ios18", "tensor<fp32, [1, 2, 2]> a, tensor<fp32, [2, 1, 2]> b",
                  "        tensor<fp32, [1, 2, 2]> z = einsum(values = (a, b), equation = "
                  "string(\"ijk,kjl->ijl\"))[name = string(\"z\")];",
                  "z"),
             NULL);
    struct anml_named_tensor in3[] = { oph_in("a", ANML_DTYPE_F32, 3, OPH_DIMS(1, 2, 2), a),
                                       oph_in("b", ANML_DTYPE_F32, 3, OPH_DIMS(2, 1, 2), b) };
    oph_run(&h, in3, 2);
    /* b[w, 0, u] = [[5, 6], [7, 8]]: row h of a times that matrix */
    const float want3[4] = { 1 * 5 + 2 * 7, 1 * 6 + 2 * 8, 3 * 5 + 4 * 7, 3 * 6 + 4 * 8 };
    oph_check_f32(&h, "z", 3, OPH_DIMS(1, 2, 2), want3, 0.0f);
    oph_close(&h);

    oph_expect_fail(prog("ios18", "tensor<fp32, [2, 2]> a, tensor<fp32, [2, 2]> b",
                         "        tensor<fp32, [2, 2]> z = einsum(values = (a, b), equation = "
                         "string(\"ij,jk->ik\"))[name = string(\"z\")];",
                         "z"),
                    "einsum", "not supported");
}

/* ---- scaled_dot_product_attention ---- */

static void test_sdpa(void **state) {
    (void)state;
    /* q = [[1, 0], [0, 1]], k = [[1, 0], [0, 1], [1, 1]], v = [1, 2, 3]; scores / sqrt(2) */
    float q[4] = { 1, 0, 0, 1 }, k[6] = { 1, 0, 0, 1, 1, 1 }, v[3] = { 1, 2, 3 };
    const char *inputs =
        "tensor<fp32, [1, 2, 2]> q, tensor<fp32, [1, 3, 2]> k, tensor<fp32, [1, 3, 1]> v";
    struct anml_named_tensor in[] = { oph_in("q", ANML_DTYPE_F32, 3, OPH_DIMS(1, 2, 2), q),
                                      oph_in("k", ANML_DTYPE_F32, 3, OPH_DIMS(1, 3, 2), k),
                                      oph_in("v", ANML_DTYPE_F32, 3, OPH_DIMS(1, 3, 1), v) };
    struct oph h;
    oph_open(&h,
             prog("ios18", inputs,
                  "        tensor<fp32, [1, 2, 1]> o = scaled_dot_product_attention(query = q, "
                  "key = k, value = v)[name = string(\"o\")];",
                  "o"),
             NULL);
    oph_run(&h, in, 3);
    /* row 0: p = (a, b, a) with 2a + b = 1, so the output is 4a + 2b = 2 exactly */
    const float want[2] = { 2.0f, 2.203336278f };
    oph_check_f32(&h, "o", 3, OPH_DIMS(1, 2, 1), want, 1e-6f);
    oph_close(&h);

    /* bool mask [2, 3] broadcast over the batch: false positions are dropped */
    oph_open(&h,
             prog("ios18", inputs,
                  "        tensor<bool, [2, 3]> m = const()[name = string(\"m\"), val = "
                  "tensor<bool, [2, 3]>([[true, true, false], [true, false, true]])];\n"
                  "        tensor<fp32, [1, 2, 1]> o = scaled_dot_product_attention(query = q, "
                  "key = k, value = v, attn_mask = m)[name = string(\"o\")];",
                  "o"),
             NULL);
    oph_run(&h, in, 3);
    const float want_b[2] = { 1.330238451f, 2.339523099f };
    oph_check_f32(&h, "o", 3, OPH_DIMS(1, 2, 1), want_b, 1e-6f);
    oph_close(&h);

    /* float mask added to the scores, with a -inf entry */
    oph_open(&h,
             prog("ios18", inputs,
                  "        tensor<fp32, [1, 2, 3]> m = const()[name = string(\"m\"), val = "
                  "tensor<fp32, [1, 2, 3]>([[[0, -inf, 0.5], [0, 0, -1]]])];\n"
                  "        tensor<fp32, [1, 2, 1]> o = scaled_dot_product_attention(query = q, "
                  "key = k, value = v, attn_mask = m)[name = string(\"o\")];",
                  "o"),
             NULL);
    oph_run(&h, in, 3);
    const float want_f[2] = { 2.244918662f, 1.932728243f };
    oph_check_f32(&h, "o", 3, OPH_DIMS(1, 2, 1), want_f, 1e-6f);
    oph_close(&h);

    oph_expect_fail(prog("ios18",
                         "tensor<fp32, [1, 2, 2]> q, tensor<fp32, [1, 3, 3]> k, "
                         "tensor<fp32, [1, 3, 1]> v",
                         "        tensor<fp32, [1, 2, 1]> o = scaled_dot_product_attention(query "
                         "= q, key = k, value = v)[name = string(\"o\")];",
                         "o"),
                    "scaled_dot_product_attention", "key");
    oph_expect_fail(prog("ios17", inputs,
                         "        tensor<fp32, [1, 2, 1]> o = scaled_dot_product_attention(query "
                         "= q, key = k, value = v)[name = string(\"o\")];",
                         "o"),
                    "scaled_dot_product_attention", "iOS18");
}

/* ---- compressed (LUT) weights ---- */

/* iOS18 constexpr_lut_to_dense, uint4 indices [4, 3, 1, 1], one 16-entry fp16 table per group of
 * two output channels: table 0 entry e = (e - 8) / 2, table 1 entry e = e / 4. Rows (indices)
 * [0, 8, 15], [1, 2, 3], [4, 0, 15], [8, 12, 1] decode to [-4, 0, 3.5], [-3.5, -3, -2.5],
 * [1, 0, 3.75], [2, 3, 0.25]. */
static const float k_lut_idx[12] = { 0, 8, 15, 1, 2, 3, 4, 0, 15, 8, 12, 1 };
static const float k_lut_dense[12] = { -4, 0, 3.5f, -3.5f, -3, -2.5f, 1, 0, 3.75f, 2, 3, 0.25f };
/* conv of x channels (1, 2), (3, 4), (5, 6) with the decoded weight */
static const float k_lut_conv_want[8] = { 13.5f, 13, -25, -34, 19.75f, 24.5f, 12.25f, 17.5f };

static void lut_table(float *lut) {
    for (int e = 0; e < 16; e++) {
        lut[e] = (float)(e - 8) * 0.5f;
        lut[16 + e] = (float)e * 0.25f;
    }
}

static void test_conv_lut_weight(void **state) {
    (void)state;
    float lut[32];
    lut_table(lut);
    char il[512], ll[1024], wl[512], body[4096];
    uint16_t x[6];
    for (int i = 0; i < 6; i++) {
        x[i] = anml__fp32_to_fp16(k_x3x2[i]);
    }
    struct anml_named_tensor in[] = { oph_in("x", ANML_DTYPE_F16, 4, OPH_DIMS(1, 3, 1, 2), x) };
    struct oph h;
    for (int dense = 0; dense < 2; dense++) {
        if (dense) {
            snprintf(body, sizeof body,
                     "        tensor<fp16, [4, 3, 1, 1]> w = const()[name = string(\"w\"), val = "
                     "%s];\n",
                     lit(wl, sizeof wl, "fp16", 4, OPH_DIMS(4, 3, 1, 1), k_lut_dense));
        } else {
            snprintf(body, sizeof body,
                     "        tensor<fp16, [4, 3, 1, 1]> w = constexpr_lut_to_dense(indices = "
                     "%s, lut = %s)[name = string(\"w\")];\n",
                     lit(il, sizeof il, "uint4", 4, OPH_DIMS(4, 3, 1, 1), k_lut_idx),
                     lit(ll, sizeof ll, "fp16", 6, OPH_DIMS(2, 1, 1, 1, 16, 1), lut));
        }
        strncat(body,
                "        tensor<fp16, [1, 4, 1, 2]> y = conv(x = x, weight = w, pad_type = "
                "string(\"valid\"))[name = string(\"y\")];",
                sizeof body - strlen(body) - 1);
        oph_open(&h, prog("ios18", "tensor<fp16, [1, 3, 1, 2]> x", body, "y"), NULL);
        oph_run(&h, in, 1);
        oph_check_f16(&h, "y", 4, OPH_DIMS(1, 4, 1, 2), k_lut_conv_want, 0.0f);
        oph_close(&h);
    }
}

/* The same table behind linear (weight [4, 3]) and matmul (y = that weight with transpose_y, and
 * a [3, 4] y whose tables split each row in two column groups). */
static void test_linear_matmul_lut_weight(void **state) {
    (void)state;
    float lut[32];
    lut_table(lut);
    char il[512], ll[1024], body[4096];
    float x[6];
    memcpy(x, k_mx, sizeof x); /* [[1, 2, 3], [4, 5, 6]] */
    struct anml_named_tensor in[] = { oph_in("x", ANML_DTYPE_F32, 2, OPH_DIMS(2, 3), x) };
    /* x @ W^T with W the decoded [4, 3] weight */
    float want[8];
    for (int m = 0; m < 2; m++) {
        for (int o = 0; o < 4; o++) {
            want[m * 4 + o] = 0;
            for (int i = 0; i < 3; i++) {
                want[m * 4 + o] += k_mx[m * 3 + i] * k_lut_dense[o * 3 + i];
            }
        }
    }
    const char *ops[2] = { "linear(x = x, weight = w)",
                           "matmul(x = x, y = w, transpose_y = bool(true))" };
    struct oph h;
    for (int i = 0; i < 2; i++) {
        snprintf(body, sizeof body,
                 "        tensor<fp16, [4, 3]> w = constexpr_lut_to_dense(indices = %s, lut = "
                 "%s)[name = string(\"w\")];\n"
                 "        tensor<fp32, [2, 4]> z = %s[name = string(\"z\")];",
                 lit(il, sizeof il, "uint4", 2, OPH_DIMS(4, 3), k_lut_idx),
                 lit(ll, sizeof ll, "fp16", 4, OPH_DIMS(2, 1, 16, 1), lut), ops[i]);
        oph_open(&h, prog("ios18", "tensor<fp32, [2, 3]> x", body, "z"), NULL);
        oph_run(&h, in, 1);
        oph_check_f32(&h, "z", 2, OPH_DIMS(2, 4), want, 0.0f);
        oph_close(&h);
    }
    /* y [3, 4] with lut [1, 2, 16, 1]: columns 0-1 use table 0, columns 2-3 table 1 */
    float yd[12];
    for (int r = 0; r < 3; r++) {
        for (int col = 0; col < 4; col++) {
            yd[r * 4 + col] = lut[(col / 2) * 16 + (int)k_lut_idx[r * 4 + col]];
        }
    }
    for (int m = 0; m < 2; m++) {
        for (int col = 0; col < 4; col++) {
            want[m * 4 + col] = 0;
            for (int k = 0; k < 3; k++) {
                want[m * 4 + col] += k_mx[m * 3 + k] * yd[k * 4 + col];
            }
        }
    }
    snprintf(body, sizeof body,
             "        tensor<fp16, [3, 4]> w = constexpr_lut_to_dense(indices = %s, lut = "
             "%s)[name = string(\"w\")];\n"
             "        tensor<fp32, [2, 4]> z = matmul(x = x, y = w)[name = string(\"z\")];",
             lit(il, sizeof il, "uint4", 2, OPH_DIMS(3, 4), k_lut_idx),
             lit(ll, sizeof ll, "fp16", 4, OPH_DIMS(1, 2, 16, 1), lut));
    oph_open(&h, prog("ios18", "tensor<fp32, [2, 3]> x", body, "z"), NULL);
    oph_run(&h, in, 1);
    oph_check_f32(&h, "z", 2, OPH_DIMS(2, 4), want, 0.0f);
    oph_close(&h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_1x1_rank4),
        cmocka_unit_test(test_conv_1x1_rank3_defaults),
        cmocka_unit_test(test_conv_groups),
        cmocka_unit_test(test_conv2d_padding_strides),
        cmocka_unit_test(test_conv_fp16_single_rounding),
        cmocka_unit_test(test_conv_errors),
        cmocka_unit_test(test_conv_transpose),
        cmocka_unit_test(test_conv_random_vs_definition),
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_linear_int32),
        cmocka_unit_test(test_linear_errors),
        cmocka_unit_test(test_matmul_transposes),
        cmocka_unit_test(test_matmul_rank1),
        cmocka_unit_test(test_matmul_batch_broadcast),
        cmocka_unit_test(test_matmul_int32_and_mixed),
        cmocka_unit_test(test_matmul_random_vs_definition),
        cmocka_unit_test(test_einsum),
        cmocka_unit_test(test_sdpa),
        cmocka_unit_test(test_conv_lut_weight),
        cmocka_unit_test(test_linear_matmul_lut_weight),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
