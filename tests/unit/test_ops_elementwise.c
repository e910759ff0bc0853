/*
 * test_ops_elementwise.c -- the elementwise op family (src/ops/elementwise.c) run as small MIL
 * programs through the public component API: binary arithmetic with NumPy broadcasting (rank-0
 * literals, mismatched ranks, rank 8), fp16 rounding (ties to even, overflow), int32 semantics
 * (floor division / modulo of negatives), comparisons and logical ops producing bool, -inf and
 * NaN handling, unary math, activations, cast, select, and programs that must be rejected at
 * context creation with a message naming the op. Expected values are computed by hand (or from
 * the formula with an independent double-precision loop in the test); two genuine coremlc
 * outputs from ../shared (fp16 subnormal cast, mul by a -1 literal) are run bit-exactly.
 */
#include <math.h>

#include "ophelper.h"

#define HDR(opset, sig) "program(1.3)\n{\n    func main<" opset ">(" sig ") {\n"
#define END(outs)       "    } -> (" outs ");\n}\n"
#define NM(n)           "[name = string(\"" n "\")];\n"

static void to_f16(const float *src, uint16_t *dst, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        dst[i] = anml__fp32_to_fp16(src[i]);
    }
}

/* fp16 output within `ulps` units in the last place of the expected (double) values. */
static void check_f16_ulps(struct oph *h, const char *name, int32_t rank, const int64_t *shape,
                           const double *want, int ulps) {
    struct anml_tensor t = oph_out(h, name, ANML_DTYPE_F16, rank, shape);
    const uint16_t *got = t.data;
    for (int64_t i = 0; i < oph_numel(rank, shape); i++) {
        uint16_t w = anml__fp32_to_fp16((float)want[i]);
        /* map sign-magnitude bits to a monotonic integer line */
        int32_t gi = (got[i] & 0x8000) ? -(int32_t)(got[i] & 0x7fff) : (int32_t)got[i];
        int32_t wi = (w & 0x8000) ? -(int32_t)(w & 0x7fff) : (int32_t)w;
        if (abs(gi - wi) > ulps) {
            fail_msg("output '%s'[%lld] = %.9g (0x%04x), expected %.9g (0x%04x)", name,
                     (long long)i, (double)anml__fp16_to_fp32(got[i]), got[i], want[i], w);
        }
    }
}

/* The MIL programs below are laid out one op per line, which clang-format would reflow. */
// clang-format off

/* ---- binary arithmetic, fp32 ---- */

static void test_binary_f32_broadcast(void **state) {
    (void)state;
    const char *mil = HDR("ios18", "tensor<fp32, [2, 3]> x, tensor<fp32, [3]> y")
        "        tensor<fp32, [2, 3]> a = add(x = x, y = y)" NM("a")
        "        tensor<fp32, [2, 3]> s = sub(x = x, y = fp32(0.5))" NM("s")
        "        tensor<fp32, [2, 1]> k = const()[name = string(\"k\"), val = tensor<fp32, [2, 1]>([[2], [-1]])];\n"
        "        tensor<fp32, [2, 3]> m = mul(x = x, y = k)" NM("m")
        "        tensor<fp32, [2, 3]> d = real_div(x = y, y = x)" NM("d")
        "        tensor<fp32, [2, 3]> mx = maximum(x = x, y = fp32(3.5))" NM("mx")
        "        tensor<fp32, [2, 3]> mn = minimum(x = fp32(3.5), y = x)" NM("mn")
        "        tensor<fp32, [2, 3]> p = pow(x = x, y = fp32(2))" NM("p")
        "        tensor<fp32, []> r0 = add(x = fp32(1.5), y = fp32(2.25))" NM("r0")
        END("a, s, m, d, mx, mn, p, r0");
    struct oph h;
    oph_open(&h, mil, NULL);
    float x[6] = { 1, 2, 3, 4, 5, 6 }, y[3] = { 10, 20, 30 };
    struct anml_named_tensor in[] = {
        oph_in("x", ANML_DTYPE_F32, 2, OPH_DIMS(2, 3), x),
        oph_in("y", ANML_DTYPE_F32, 1, OPH_DIMS(3), y),
    };
    oph_run(&h, in, 2);
    const int64_t *s23 = OPH_DIMS(2, 3);
    oph_check_f32(&h, "a", 2, s23, (const float[]){ 11, 22, 33, 14, 25, 36 }, 0);
    oph_check_f32(&h, "s", 2, s23, (const float[]){ 0.5f, 1.5f, 2.5f, 3.5f, 4.5f, 5.5f }, 0);
    oph_check_f32(&h, "m", 2, s23, (const float[]){ 2, 4, 6, -4, -5, -6 }, 0);
    oph_check_f32(&h, "d", 2, s23, (const float[]){ 10, 10, 10, 2.5f, 4, 5 }, 0);
    oph_check_f32(&h, "mx", 2, s23, (const float[]){ 3.5f, 3.5f, 3.5f, 4, 5, 6 }, 0);
    oph_check_f32(&h, "mn", 2, s23, (const float[]){ 1, 2, 3, 3.5f, 3.5f, 3.5f }, 0);
    oph_check_f32(&h, "p", 2, s23, (const float[]){ 1, 4, 9, 16, 25, 36 }, 1e-5f);
    oph_check_f32(&h, "r0", 0, NULL, (const float[]){ 3.75f }, 0);
    oph_close(&h);
}

static void test_binary_f32_floor_mod(void **state) {
    (void)state;
    const char *mil = HDR("ios18", "tensor<fp32, [6]> x, tensor<fp32, [6]> y")
        "        tensor<fp32, [6]> f = floor_div(x = x, y = y)" NM("f")
        "        tensor<fp32, [6]> m = mod(x = x, y = y)" NM("m")
        END("f, m");
    struct oph h;
    oph_open(&h, mil, NULL);
    float x[6] = { 7, -7, 7, -7, 5.5f, -5.5f }, y[6] = { 2, 2, -2, -2, 2, 2 };
    struct anml_named_tensor in[] = {
        oph_in("x", ANML_DTYPE_F32, 1, OPH_DIMS(6), x),
        oph_in("y", ANML_DTYPE_F32, 1, OPH_DIMS(6), y),
    };
    oph_run(&h, in, 2);
    /* floor toward -inf; the remainder takes the divisor's sign (Python semantics) */
    oph_check_f32(&h, "f", 1, OPH_DIMS(6), (const float[]){ 3, -4, -4, 3, 2, -3 }, 0);
    oph_check_f32(&h, "m", 1, OPH_DIMS(6), (const float[]){ 1, 1, -1, -1, 1.5f, 0.5f }, 0);
    oph_close(&h);
}

/* Brute-force NumPy broadcasting reference for out = x + y (rank <= 8, right-aligned). */
static void ref_broadcast_add(const float *x, int32_t rx, const int64_t *sx, const float *y,
                              int32_t ry, const int64_t *sy, float *out, int32_t ro,
                              const int64_t *so) {
    int64_t n = oph_numel(ro, so);
    for (int64_t i = 0; i < n; i++) {
        int64_t rem = i, ix = 0, iy = 0, mx = 1, my = 1;
        for (int32_t d = ro - 1; d >= 0; d--) {
            int64_t c = rem % so[d];
            rem /= so[d];
            int32_t dx = d - (ro - rx), dy = d - (ro - ry);
            if (dx >= 0) {
                ix += (sx[dx] == 1 ? 0 : c) * mx;
                mx *= sx[dx];
            }
            if (dy >= 0) {
                iy += (sy[dy] == 1 ? 0 : c) * my;
                my *= sy[dy];
            }
        }
        out[i] = x[ix] + y[iy];
    }
}

static void check_broadcast_case(const char *mil, int32_t rx, const int64_t *sx, int32_t ry,
                                 const int64_t *sy, int32_t ro, const int64_t *so) {
    float x[256], y[256], want[256];
    int64_t nx = oph_numel(rx, sx), ny = oph_numel(ry, sy);
    for (int64_t i = 0; i < nx; i++) {
        x[i] = (float)(i + 1);
    }
    for (int64_t i = 0; i < ny; i++) {
        y[i] = (float)(1000 * (i + 1));
    }
    ref_broadcast_add(x, rx, sx, y, ry, sy, want, ro, so);
    struct oph h;
    oph_open(&h, mil, NULL);
    struct anml_named_tensor in[] = {
        oph_in("x", ANML_DTYPE_F32, rx, sx, x),
        oph_in("y", ANML_DTYPE_F32, ry, sy, y),
    };
    oph_run(&h, in, 2);
    oph_check_f32(&h, "z", ro, so, want, 0);
    oph_close(&h);
}

static void test_binary_broadcast_shapes(void **state) {
    (void)state;
    check_broadcast_case(
        HDR("ios18", "tensor<fp32, [2, 1, 3, 1]> x, tensor<fp32, [1, 2, 1, 2]> y")
        "        tensor<fp32, [2, 2, 3, 2]> z = add(x = x, y = y)" NM("z")
        END("z"),
        4, OPH_DIMS(2, 1, 3, 1), 4, OPH_DIMS(1, 2, 1, 2), 4, OPH_DIMS(2, 2, 3, 2));
    /* y has lower rank; dims merge partially ([2,3] contiguous in both, last broadcast in y) */
    check_broadcast_case(
        HDR("ios18", "tensor<fp32, [2, 3, 4]> x, tensor<fp32, [3, 1]> y")
        "        tensor<fp32, [2, 3, 4]> z = add(x = x, y = y)" NM("z")
        END("z"),
        3, OPH_DIMS(2, 3, 4), 2, OPH_DIMS(3, 1), 3, OPH_DIMS(2, 3, 4));
    /* x broadcast on the outer dim only (per-row bias) */
    check_broadcast_case(
        HDR("ios18", "tensor<fp32, [1, 5]> x, tensor<fp32, [4, 5]> y")
        "        tensor<fp32, [4, 5]> z = add(x = x, y = y)" NM("z")
        END("z"),
        2, OPH_DIMS(1, 5), 2, OPH_DIMS(4, 5), 2, OPH_DIMS(4, 5));
    /* rank 8 with alternating broadcast dims */
    check_broadcast_case(
        HDR("ios18", "tensor<fp32, [2, 1, 2, 1, 2, 1, 2, 1]> x, "
                     "tensor<fp32, [1, 2, 1, 2, 1, 2, 1, 2]> y")
        "        tensor<fp32, [2, 2, 2, 2, 2, 2, 2, 2]> z = add(x = x, y = y)" NM("z")
        END("z"),
        8, OPH_DIMS(2, 1, 2, 1, 2, 1, 2, 1), 8, OPH_DIMS(1, 2, 1, 2, 1, 2, 1, 2), 8,
        OPH_DIMS(2, 2, 2, 2, 2, 2, 2, 2));
    /* rank-0 input against a rank-3 one */
    check_broadcast_case(
        HDR("ios18", "tensor<fp32, []> x, tensor<fp32, [2, 1, 3]> y")
        "        tensor<fp32, [2, 1, 3]> z = add(x = x, y = y)" NM("z")
        END("z"),
        0, NULL, 3, OPH_DIMS(2, 1, 3), 3, OPH_DIMS(2, 1, 3));
}

/* ---- fp16 rounding ---- */

static void test_binary_f16_ties_to_even(void **state) {
    (void)state;
    const char *mil = HDR("ios18", "tensor<fp16, [4]> x, tensor<fp16, [4]> y")
        "        tensor<fp16, [4]> z = add(x = x, y = y)" NM("z")
        "        tensor<fp16, [4]> p = mul(x = x, y = fp16(0x1p-1))" NM("p")
        END("z, p");
    struct oph h;
    oph_open(&h, mil, NULL);
    /* 1 + 2^-11: halfway between 1 and 1 + 2^-10 -> even mantissa 1.0
     * (1 + 2^-10) + 2^-11: halfway between odd 0x3C01 and even 0x3C02 -> 0x3C02
     * 2048 + 1: fp16 spacing is 2 there, the tie goes to 2048
     * 65504 + 16 = 65520: halfway between the largest finite and 2^16 -> rounds to inf */
    uint16_t x[4] = { 0x3C00, 0x3C01, 0x6800, 0x7BFF }, y[4] = { 0x1000, 0x1000, 0x3C00, 0x4C00 };
    struct anml_named_tensor in[] = {
        oph_in("x", ANML_DTYPE_F16, 1, OPH_DIMS(4), x),
        oph_in("y", ANML_DTYPE_F16, 1, OPH_DIMS(4), y),
    };
    oph_run(&h, in, 2);
    oph_check_bytes(&h, "z", ANML_DTYPE_F16, 1, OPH_DIMS(4),
                    (const uint16_t[]){ 0x3C00, 0x3C02, 0x6800, 0x7C00 }, 2);
    /* halving is exact: 0.5, 0.5 + 2^-11, 1024, 32752 */
    oph_check_bytes(&h, "p", ANML_DTYPE_F16, 1, OPH_DIMS(4),
                    (const uint16_t[]){ 0x3800, 0x3801, 0x6400, 0x77FF }, 2);
    oph_close(&h);
}

/* ANEMLL's shapes: fp16 [1, C, 1, T] with C*T above the internal chunk size. */
static void test_f16_long_rows(void **state) {
    (void)state;
    const char *mil = HDR("ios18", "tensor<fp16, [1, 4, 1, 300]> x, tensor<fp16, []> s")
        "        tensor<fp16, [1, 4, 1, 300]> y = silu(x = x)" NM("y")
        "        tensor<fp16, [1, 4, 1, 300]> m = mul(x = x, y = s)" NM("m")
        "        tensor<fp16, [1, 4, 1, 300]> a = add(x = x, y = x)" NM("a")
        "        tensor<fp16, [1, 4, 1, 1]> c = const()[name = string(\"c\"), val = tensor<fp16, [1, 4, 1, 1]>([[[[1]], [[2]], [[3]], [[4]]]])];\n"
        "        tensor<fp16, [1, 4, 1, 300]> pc = mul(x = x, y = c)" NM("pc")
        END("y, m, a, pc");
    enum { N = 1200 };
    static float xf[N];
    static uint16_t x[N];
    static double want_silu[N], want_m[N], want_a[N], want_pc[N];
    for (int i = 0; i < N; i++) {
        xf[i] = (float)(i - 600) / 64.0f; /* exact in fp16 */
        double v = (double)xf[i];
        want_silu[i] = v / (1.0 + exp(-v));
        want_m[i] = v * 0.25;
        want_a[i] = 2.0 * v;
        want_pc[i] = v * (double)(i / 300 + 1);
    }
    to_f16(xf, x, N);
    uint16_t s = 0x3400; /* 0.25 */
    struct oph h;
    oph_open(&h, mil, NULL);
    struct anml_named_tensor in[] = {
        oph_in("x", ANML_DTYPE_F16, 4, OPH_DIMS(1, 4, 1, 300), x),
        oph_in("s", ANML_DTYPE_F16, 0, NULL, &s),
    };
    oph_run(&h, in, 2);
    const int64_t *shape = OPH_DIMS(1, 4, 1, 300);
    check_f16_ulps(&h, "y", 4, shape, want_silu, 1);
    check_f16_ulps(&h, "m", 4, shape, want_m, 0);
    check_f16_ulps(&h, "a", 4, shape, want_a, 0);
    check_f16_ulps(&h, "pc", 4, shape, want_pc, 0);
    oph_close(&h);
}

/* ---- int32 ---- */

static void test_binary_int32(void **state) {
    (void)state;
    const char *mil = HDR("ios18", "tensor<int32, [6]> x, tensor<int32, [6]> y")
        "        tensor<int32, [6]> a = add(x = x, y = y)" NM("a")
        "        tensor<int32, [6]> s = sub(x = x, y = y)" NM("s")
        "        tensor<int32, [6]> m = mul(x = x, y = y)" NM("m")
        "        tensor<int32, [6]> f = floor_div(x = x, y = y)" NM("f")
        "        tensor<int32, [6]> r = mod(x = x, y = y)" NM("r")
        "        tensor<int32, [6]> d = real_div(x = x, y = y)" NM("d")
        "        tensor<int32, [6]> mx = maximum(x = x, y = y)" NM("mx")
        "        tensor<int32, [6]> mn = minimum(x = x, y = y)" NM("mn")
        "        tensor<int32, [3]> b = const()[name = string(\"b\"), val = tensor<int32, [3]>([2, -3, 5])];\n"
        "        tensor<int32, [3]> e = const()[name = string(\"e\"), val = tensor<int32, [3]>([10, 3, 0])];\n"
        "        tensor<int32, [3]> p = pow(x = b, y = e)" NM("p")
        "        tensor<bool, [6]> gt = greater(x = x, y = y)" NM("gt")
        "        tensor<bool, [6]> eq = equal(x = x, y = int32(7))" NM("eq")
        END("a, s, m, f, r, d, mx, mn, p, gt, eq");
    struct oph h;
    oph_open(&h, mil, NULL);
    int32_t x[6] = { 7, -7, 7, -7, 6, 1 }, y[6] = { 2, 2, -2, -2, 3, 5 };
    struct anml_named_tensor in[] = {
        oph_in("x", ANML_DTYPE_INT32, 1, OPH_DIMS(6), x),
        oph_in("y", ANML_DTYPE_INT32, 1, OPH_DIMS(6), y),
    };
    oph_run(&h, in, 2);
    const int64_t *s6 = OPH_DIMS(6);
    oph_check_int(&h, "a", ANML_DTYPE_INT32, 1, s6, (const int64_t[]){ 9, -5, 5, -9, 9, 6 });
    oph_check_int(&h, "s", ANML_DTYPE_INT32, 1, s6, (const int64_t[]){ 5, -9, 9, -5, 3, -4 });
    oph_check_int(&h, "m", ANML_DTYPE_INT32, 1, s6, (const int64_t[]){ 14, -14, -14, 14, 18, 5 });
    /* floor division and modulo of negatives follow Python; real_div truncates toward zero */
    oph_check_int(&h, "f", ANML_DTYPE_INT32, 1, s6, (const int64_t[]){ 3, -4, -4, 3, 2, 0 });
    oph_check_int(&h, "r", ANML_DTYPE_INT32, 1, s6, (const int64_t[]){ 1, 1, -1, -1, 0, 1 });
    oph_check_int(&h, "d", ANML_DTYPE_INT32, 1, s6, (const int64_t[]){ 3, -3, -3, 3, 2, 0 });
    oph_check_int(&h, "mx", ANML_DTYPE_INT32, 1, s6, (const int64_t[]){ 7, 2, 7, -2, 6, 5 });
    oph_check_int(&h, "mn", ANML_DTYPE_INT32, 1, s6, (const int64_t[]){ 2, -7, -2, -7, 3, 1 });
    oph_check_int(&h, "p", ANML_DTYPE_INT32, 1, OPH_DIMS(3), (const int64_t[]){ 1024, -27, 1 });
    oph_check_int(&h, "gt", ANML_DTYPE_BOOL, 1, s6, (const int64_t[]){ 1, 0, 1, 0, 1, 0 });
    oph_check_int(&h, "eq", ANML_DTYPE_BOOL, 1, s6, (const int64_t[]){ 1, 0, 1, 0, 0, 0 });
    oph_close(&h);
}

/* ---- comparisons and logical ops ---- */

static void test_compare_inf_nan(void **state) {
    (void)state;
    const char *mil = HDR("ios18", "tensor<fp32, [4]> x, tensor<fp16, [2, 1]> h")
        "        tensor<bool, [4]> lt = less(x = x, y = fp32(1))" NM("lt")
        "        tensor<bool, [4]> le = less_equal(x = x, y = fp32(1))" NM("le")
        "        tensor<bool, [4]> gt = greater(x = x, y = fp32(1))" NM("gt")
        "        tensor<bool, [4]> ge = greater_equal(x = x, y = fp32(1))" NM("ge")
        "        tensor<bool, [4]> eq = equal(x = x, y = fp32(1))" NM("eq")
        "        tensor<bool, [4]> ne = not_equal(x = x, y = fp32(1))" NM("ne")
        "        tensor<fp16, [3]> k = const()[name = string(\"k\"), val = tensor<fp16, [3]>([-inf, 0, 2])];\n"
        "        tensor<bool, [2, 3]> hg = greater(x = h, y = k)" NM("hg")
        END("lt, le, gt, ge, eq, ne, hg");
    struct oph h;
    oph_open(&h, mil, NULL);
    float x[4] = { -INFINITY, 1, 2, NAN };
    uint16_t hv[2] = { 0xFC00 /* -inf */, 0x3C00 /* 1 */ };
    struct anml_named_tensor in[] = {
        oph_in("x", ANML_DTYPE_F32, 1, OPH_DIMS(4), x),
        oph_in("h", ANML_DTYPE_F16, 2, OPH_DIMS(2, 1), hv),
    };
    oph_run(&h, in, 2);
    const int64_t *s4 = OPH_DIMS(4);
    /* every ordered comparison with NaN is false; only not_equal is true */
    oph_check_int(&h, "lt", ANML_DTYPE_BOOL, 1, s4, (const int64_t[]){ 1, 0, 0, 0 });
    oph_check_int(&h, "le", ANML_DTYPE_BOOL, 1, s4, (const int64_t[]){ 1, 1, 0, 0 });
    oph_check_int(&h, "gt", ANML_DTYPE_BOOL, 1, s4, (const int64_t[]){ 0, 0, 1, 0 });
    oph_check_int(&h, "ge", ANML_DTYPE_BOOL, 1, s4, (const int64_t[]){ 0, 1, 1, 0 });
    oph_check_int(&h, "eq", ANML_DTYPE_BOOL, 1, s4, (const int64_t[]){ 0, 1, 0, 0 });
    oph_check_int(&h, "ne", ANML_DTYPE_BOOL, 1, s4, (const int64_t[]){ 1, 0, 1, 1 });
    oph_check_int(&h, "hg", ANML_DTYPE_BOOL, 2, OPH_DIMS(2, 3),
                  (const int64_t[]){ 0, 0, 0, 1, 1, 0 });
    oph_close(&h);
}

static void test_logical(void **state) {
    (void)state;
    const char *mil = HDR("ios18", "tensor<bool, [4]> p, tensor<bool, [4]> q")
        "        tensor<bool, [4]> a = logical_and(x = p, y = q)" NM("a")
        "        tensor<bool, [4]> o = logical_or(x = p, y = q)" NM("o")
        "        tensor<bool, [4]> x = logical_xor(x = p, y = q)" NM("x")
        "        tensor<bool, [4]> n = logical_not(x = p)" NM("n")
        "        tensor<bool, [4]> t = logical_and(x = q, y = bool(true))" NM("t")
        "        tensor<bool, [2, 1]> k = const()[name = string(\"k\"), val = tensor<bool, [2, 1]>([[true], [false]])];\n"
        "        tensor<bool, [2, 4]> b = logical_or(x = k, y = q)" NM("b")
        END("a, o, x, n, t, b");
    struct oph h;
    oph_open(&h, mil, NULL);
    uint8_t p[4] = { 1, 1, 0, 0 }, q[4] = { 1, 0, 1, 0 };
    struct anml_named_tensor in[] = {
        oph_in("p", ANML_DTYPE_BOOL, 1, OPH_DIMS(4), p),
        oph_in("q", ANML_DTYPE_BOOL, 1, OPH_DIMS(4), q),
    };
    oph_run(&h, in, 2);
    const int64_t *s4 = OPH_DIMS(4);
    oph_check_int(&h, "a", ANML_DTYPE_BOOL, 1, s4, (const int64_t[]){ 1, 0, 0, 0 });
    oph_check_int(&h, "o", ANML_DTYPE_BOOL, 1, s4, (const int64_t[]){ 1, 1, 1, 0 });
    oph_check_int(&h, "x", ANML_DTYPE_BOOL, 1, s4, (const int64_t[]){ 0, 1, 1, 0 });
    oph_check_int(&h, "n", ANML_DTYPE_BOOL, 1, s4, (const int64_t[]){ 0, 0, 1, 1 });
    oph_check_int(&h, "t", ANML_DTYPE_BOOL, 1, s4, (const int64_t[]){ 1, 0, 1, 0 });
    oph_check_int(&h, "b", ANML_DTYPE_BOOL, 2, OPH_DIMS(2, 4),
                  (const int64_t[]){ 1, 1, 1, 1, 1, 0, 1, 0 });
    oph_close(&h);
}

/* ---- unary math ---- */

static void test_unary_rounding_and_sign(void **state) {
    (void)state;
    const char *mil = HDR("ios18", "tensor<fp32, [6]> x")
        "        tensor<fp32, [6]> a = abs(x = x)" NM("a")
        "        tensor<fp32, [6]> s = sign(x = x)" NM("s")
        "        tensor<fp32, [6]> q = square(x = x)" NM("q")
        "        tensor<fp32, [6]> r = round(x = x)" NM("r")
        "        tensor<fp32, [6]> c = ceil(x = x)" NM("c")
        "        tensor<fp32, [6]> f = floor(x = x)" NM("f")
        END("a, s, q, r, c, f");
    struct oph h;
    oph_open(&h, mil, NULL);
    float x[6] = { -2.5f, -0.5f, 0.5f, 1.5f, 2.5f, -INFINITY };
    struct anml_named_tensor in[] = { oph_in("x", ANML_DTYPE_F32, 1, OPH_DIMS(6), x) };
    oph_run(&h, in, 1);
    const int64_t *s6 = OPH_DIMS(6);
    oph_check_f32(&h, "a", 1, s6, (const float[]){ 2.5f, 0.5f, 0.5f, 1.5f, 2.5f, INFINITY }, 0);
    oph_check_f32(&h, "s", 1, s6, (const float[]){ -1, -1, 1, 1, 1, -1 }, 0);
    oph_check_f32(&h, "q", 1, s6, (const float[]){ 6.25f, 0.25f, 0.25f, 2.25f, 6.25f, INFINITY },
                  0);
    /* ties to even: -2.5 -> -2, +-0.5 -> 0, 1.5 -> 2, 2.5 -> 2 */
    oph_check_f32(&h, "r", 1, s6, (const float[]){ -2, 0, 0, 2, 2, -INFINITY }, 0);
    oph_check_f32(&h, "c", 1, s6, (const float[]){ -2, 0, 1, 2, 3, -INFINITY }, 0);
    oph_check_f32(&h, "f", 1, s6, (const float[]){ -3, -1, 0, 1, 2, -INFINITY }, 0);
    oph_close(&h);
}

static void test_unary_transcendental(void **state) {
    (void)state;
    const char *mil = HDR("ios18", "tensor<fp32, [4]> x, tensor<fp32, [3]> y, tensor<fp16, [3]> yh")
        "        tensor<fp32, [4]> e = exp(x = x)" NM("e")
        "        tensor<fp32, [4]> e2 = exp2(x = x)" NM("e2")
        "        tensor<fp32, [4]> sq = sqrt(x = x)" NM("sq")
        "        tensor<fp32, [3]> rs = rsqrt(x = y, epsilon = fp32(1))" NM("rs")
        "        tensor<fp32, [3]> iv = inverse(x = y, epsilon = fp32(1))" NM("iv")
        "        tensor<fp32, [3]> lg = log(x = y)" NM("lg")
        "        tensor<fp16, [3]> lgh = log(x = yh)" NM("lgh")
        "        tensor<fp32, [3]> rs0 = rsqrt(x = y)" NM("rs0")
        "        tensor<fp32, [3]> iv0 = inverse(x = y)" NM("iv0")
        "        tensor<fp16, [3]> ivh = inverse(x = yh, epsilon = fp32(0.5))" NM("ivh")
        END("e, e2, sq, rs, iv, lg, lgh, rs0, iv0, ivh");
    struct oph h;
    oph_open(&h, mil, NULL);
    float x[4] = { 0, 1, -INFINITY, 2 }, y[3] = { 0, 3, 8 };
    uint16_t yh[3] = { 0x0000, 0x3C00 /* 1 */, 0x4000 /* 2 */ };
    struct anml_named_tensor in[] = {
        oph_in("x", ANML_DTYPE_F32, 1, OPH_DIMS(4), x),
        oph_in("y", ANML_DTYPE_F32, 1, OPH_DIMS(3), y),
        oph_in("yh", ANML_DTYPE_F16, 1, OPH_DIMS(3), yh),
    };
    oph_run(&h, in, 3);
    const int64_t *s3 = OPH_DIMS(3), *s4 = OPH_DIMS(4);
    oph_check_f32(&h, "e", 1, s4, (const float[]){ 1, 2.718281828f, 0, 7.389056099f }, 1e-6f);
    oph_check_f32(&h, "e2", 1, s4, (const float[]){ 1, 2, 0, 4 }, 1e-6f);
    oph_check_f32(&h, "sq", 1, s4, (const float[]){ 0, 1, NAN, 1.414213562f }, 1e-6f);
    oph_check_f32(&h, "rs", 1, s3, (const float[]){ 1, 0.5f, 1.0f / 3.0f }, 1e-6f);
    oph_check_f32(&h, "iv", 1, s3, (const float[]){ 1, 0.25f, 1.0f / 9.0f }, 1e-6f);
    /* fp32 default epsilon 1e-45 is the smallest subnormal: log(0 + eps) = -103.2789... */
    oph_check_f32(&h, "lg", 1, s3, (const float[]){ -103.27893f, 1.098612289f, 2.079441542f },
                  1e-4f);
    /* ...while in fp16 it rounds to 0, so log(0) = -inf */
    oph_check_f16(&h, "lgh", 1, s3, (const float[]){ -INFINITY, 0, 0.6931471806f }, 0);
    /* rsqrt default epsilon 1e-12, inverse default 1e-4 */
    oph_check_f32(&h, "rs0", 1, s3, (const float[]){ 1e6f, 0.5773502692f, 0.3535533906f }, 1.0f);
    oph_check_f32(&h, "iv0", 1, s3, (const float[]){ 1e4f, 0.3333222f, 0.12499844f }, 1e-2f);
    /* iOS17+: an fp32 epsilon on an fp16 tensor */
    oph_check_f16(&h, "ivh", 1, s3, (const float[]){ 2, 0.6666667f, 0.4f }, 0);
    oph_close(&h);
}

static void test_unary_trig(void **state) {
    (void)state;
    const char *mil = HDR("ios18", "tensor<fp32, [2]> x")
        "        tensor<fp32, [2]> a = erf(x = x)" NM("a")
        "        tensor<fp32, [2]> b = tanh(x = x)" NM("b")
        "        tensor<fp32, [2]> c = sin(x = x)" NM("c")
        "        tensor<fp32, [2]> d = cos(x = x)" NM("d")
        "        tensor<fp32, [2]> e = tan(x = x)" NM("e")
        "        tensor<fp32, [2]> f = sinh(x = x)" NM("f")
        "        tensor<fp32, [2]> g = cosh(x = x)" NM("g")
        "        tensor<fp32, [2]> h = asin(x = x)" NM("h")
        "        tensor<fp32, [2]> i = acos(x = x)" NM("i")
        "        tensor<fp32, [2]> j = atan(x = x)" NM("j")
        "        tensor<fp32, [2]> k = atanh(x = x)" NM("k")
        END("a, b, c, d, e, f, g, h, i, j, k");
    struct oph h;
    oph_open(&h, mil, NULL);
    float x[2] = { 0, 0.5f };
    struct anml_named_tensor in[] = { oph_in("x", ANML_DTYPE_F32, 1, OPH_DIMS(2), x) };
    oph_run(&h, in, 1);
    const int64_t *s = OPH_DIMS(2);
    float t = 1e-6f;
    oph_check_f32(&h, "a", 1, s, (const float[]){ 0, 0.5204998778f }, t);
    oph_check_f32(&h, "b", 1, s, (const float[]){ 0, 0.4621171573f }, t);
    oph_check_f32(&h, "c", 1, s, (const float[]){ 0, 0.4794255386f }, t);
    oph_check_f32(&h, "d", 1, s, (const float[]){ 1, 0.8775825619f }, t);
    oph_check_f32(&h, "e", 1, s, (const float[]){ 0, 0.5463024898f }, t);
    oph_check_f32(&h, "f", 1, s, (const float[]){ 0, 0.5210953055f }, t);
    oph_check_f32(&h, "g", 1, s, (const float[]){ 1, 1.1276259652f }, t);
    oph_check_f32(&h, "h", 1, s, (const float[]){ 0, 0.5235987756f }, t);
    oph_check_f32(&h, "i", 1, s, (const float[]){ 1.5707963268f, 1.0471975512f }, t);
    oph_check_f32(&h, "j", 1, s, (const float[]){ 0, 0.4636476090f }, t);
    oph_check_f32(&h, "k", 1, s, (const float[]){ 0, 0.5493061443f }, t);
    oph_close(&h);
}

static void test_unary_int32(void **state) {
    (void)state;
    const char *mil = HDR("ios18", "tensor<int32, [4]> x")
        "        tensor<int32, [4]> a = abs(x = x)" NM("a")
        "        tensor<int32, [4]> s = sign(x = x)" NM("s")
        "        tensor<int32, [4]> q = square(x = x)" NM("q")
        "        tensor<int32, [4]> t = threshold(x = x, alpha = int32(3))" NM("t")
        "        tensor<int32, [3]> e = const()[name = string(\"e\"), val = tensor<int32, [3]>([0, 3, -1])];\n"
        "        tensor<int32, [3]> e2 = exp2(x = e)" NM("e2")
        END("a, s, q, t, e2");
    struct oph h;
    oph_open(&h, mil, NULL);
    int32_t x[4] = { -3, 4, 0, 5 };
    struct anml_named_tensor in[] = { oph_in("x", ANML_DTYPE_INT32, 1, OPH_DIMS(4), x) };
    oph_run(&h, in, 1);
    const int64_t *s4 = OPH_DIMS(4);
    oph_check_int(&h, "a", ANML_DTYPE_INT32, 1, s4, (const int64_t[]){ 3, 4, 0, 5 });
    oph_check_int(&h, "s", ANML_DTYPE_INT32, 1, s4, (const int64_t[]){ -1, 1, 0, 1 });
    oph_check_int(&h, "q", ANML_DTYPE_INT32, 1, s4, (const int64_t[]){ 9, 16, 0, 25 });
    oph_check_int(&h, "t", ANML_DTYPE_INT32, 1, s4, (const int64_t[]){ 3, 4, 3, 5 });
    oph_check_int(&h, "e2", ANML_DTYPE_INT32, 1, OPH_DIMS(3), (const int64_t[]){ 1, 8, 0 });
    oph_close(&h);
}

/* ---- activations ---- */

static void test_activations_inf(void **state) {
    (void)state;
    const char *mil = HDR("ios18", "tensor<fp32, [8]> x")
        "        tensor<fp32, [8]> r = relu(x = x)" NM("r")
        "        tensor<fp32, [8]> r6 = relu6(x = x)" NM("r6")
        "        tensor<fp32, [8]> sg = sigmoid(x = x)" NM("sg")
        "        tensor<fp32, [8]> si = silu(x = x)" NM("si")
        "        tensor<fp32, [8]> sp = softplus(x = x)" NM("sp")
        "        tensor<fp32, [8]> ss = softsign(x = x)" NM("ss")
        "        tensor<fp32, [8]> ge = gelu(x = x)" NM("ge")
        END("r, r6, sg, si, sp, ss, ge");
    struct oph h;
    oph_open(&h, mil, NULL);
    float x[8] = { -INFINITY, -2, -0.5f, 0, 0.5f, 2, 7, INFINITY };
    struct anml_named_tensor in[] = { oph_in("x", ANML_DTYPE_F32, 1, OPH_DIMS(8), x) };
    oph_run(&h, in, 1);
    const int64_t *s = OPH_DIMS(8);
    float t = 2e-6f;
    oph_check_f32(&h, "r", 1, s, (const float[]){ 0, 0, 0, 0, 0.5f, 2, 7, INFINITY }, 0);
    oph_check_f32(&h, "r6", 1, s, (const float[]){ 0, 0, 0, 0, 0.5f, 2, 6, 6 }, 0);
    oph_check_f32(&h, "sg", 1, s, (const float[]){ 0, 0.119202922f, 0.3775406688f, 0.5f,
                                                   0.6224593312f, 0.880797078f, 0.9990889488f, 1 },
                  t);
    /* silu and gelu tend to 0 at -inf (no -inf * 0 = NaN); softsign tends to -1 */
    oph_check_f32(&h, "si", 1, s, (const float[]){ 0, -0.238405844f, -0.1887703344f, 0,
                                                   0.3112296656f, 1.761594156f, 6.993622642f,
                                                   INFINITY },
                  t);
    oph_check_f32(&h, "sp", 1, s, (const float[]){ 0, 0.126928011f, 0.4740769842f, 0.6931471806f,
                                                   0.9740769842f, 2.126928011f, 7.000911466f,
                                                   INFINITY },
                  t);
    oph_check_f32(&h, "ss", 1, s, (const float[]){ -1, -2.0f / 3, -1.0f / 3, 0, 1.0f / 3,
                                                   2.0f / 3, 0.875f, 1 },
                  t);
    oph_check_f32(&h, "ge", 1, s, (const float[]){ 0, -0.0455002639f, -0.1542687694f, 0,
                                                   0.3457312306f, 1.954499736f, 7, INFINITY },
                  t);
    oph_close(&h);
}

static void test_activations_params(void **state) {
    (void)state;
    const char *mil = HDR("ios18", "tensor<fp32, [5]> x")
        "        tensor<fp32, [5]> gt = gelu(x = x, mode = string(\"TANH_APPROXIMATION\"))" NM("gt")
        "        tensor<fp32, [5]> gs = gelu(x = x, mode = string(\"SIGMOID_APPROXIMATION\"))" NM("gs")
        "        tensor<fp32, [5]> ge = gelu(x = x, mode = string(\"EXACT\"))" NM("ge")
        "        tensor<fp32, [5]> el = elu(x = x, alpha = fp32(1.5))" NM("el")
        "        tensor<fp32, [5]> lr = leaky_relu(x = x, alpha = fp32(0.1))" NM("lr")
        "        tensor<fp32, [5]> cr = clamped_relu(x = x, alpha = fp32(0.1), beta = fp32(1))" NM("cr")
        "        tensor<fp32, [5]> la = linear_activation(x = x, alpha = fp32(2), beta = fp32(1))" NM("la")
        "        tensor<fp32, [5]> st = scaled_tanh(x = x, alpha = fp32(2), beta = fp32(0.5))" NM("st")
        "        tensor<fp32, [5]> sh = sigmoid_hard(x = x, alpha = fp32(0.2), beta = fp32(0.5))" NM("sh")
        "        tensor<fp32, [5]> tr = thresholded_relu(x = x, alpha = fp32(0.5))" NM("tr")
        "        tensor<fp32, [5]> cl = clip(x = x, alpha = fp32(-1), beta = fp32(1))" NM("cl")
        "        tensor<fp32, [5]> th = threshold(x = x, alpha = fp32(0))" NM("th")
        END("gt, gs, ge, el, lr, cr, la, st, sh, tr, cl, th");
    struct oph h;
    oph_open(&h, mil, NULL);
    float x[5] = { -2, -0.5f, 0, 0.5f, 2 };
    struct anml_named_tensor in[] = { oph_in("x", ANML_DTYPE_F32, 1, OPH_DIMS(5), x) };
    oph_run(&h, in, 1);
    const int64_t *s = OPH_DIMS(5);
    float t = 2e-6f;
    oph_check_f32(&h, "gt", 1, s, (const float[]){ -0.04540230591f, -0.1542859902f, 0,
                                                   0.3457140098f, 1.954597694f },
                  t);
    oph_check_f32(&h, "gs", 1, s, (const float[]){ -0.06434137686f, -0.1496115634f, 0,
                                                   0.3503884366f, 1.935658623f },
                  t);
    oph_check_f32(&h, "ge", 1, s, (const float[]){ -0.0455002639f, -0.1542687694f, 0,
                                                   0.3457312306f, 1.954499736f },
                  t);
    oph_check_f32(&h, "el", 1, s, (const float[]){ -1.2969970752f, -0.5902040105f, 0, 0.5f, 2 }, t);
    oph_check_f32(&h, "lr", 1, s, (const float[]){ -0.2f, -0.05f, 0, 0.5f, 2 }, t);
    oph_check_f32(&h, "cr", 1, s, (const float[]){ -0.2f, -0.05f, 0, 0.5f, 1 }, t);
    oph_check_f32(&h, "la", 1, s, (const float[]){ -3, 0, 1, 2, 5 }, t);
    oph_check_f32(&h, "st", 1, s, (const float[]){ -1.5231883119f, -0.4898373248f, 0,
                                                   0.4898373248f, 1.5231883119f },
                  t);
    oph_check_f32(&h, "sh", 1, s, (const float[]){ 0.1f, 0.4f, 0.5f, 0.6f, 0.9f }, t);
    oph_check_f32(&h, "tr", 1, s, (const float[]){ 0, 0, 0, 0.5f, 2 }, 0);
    oph_check_f32(&h, "cl", 1, s, (const float[]){ -1, -0.5f, 0, 0.5f, 1 }, 0);
    oph_check_f32(&h, "th", 1, s, (const float[]){ 0, 0, 0, 0.5f, 2 }, 0);
    oph_close(&h);
}

static void test_activations_per_channel(void **state) {
    (void)state;
    const char *mil = HDR("ios18", "tensor<fp16, [1, 2, 2]> x, tensor<fp32, [1, 2, 1, 2]> y")
        "        tensor<fp16, [2]> al = const()[name = string(\"al\"), val = tensor<fp16, [2]>([0.5, 0.25])];\n"
        "        tensor<fp16, [1, 2, 2]> p = prelu(x = x, alpha = al)" NM("p")
        "        tensor<fp32, [2]> a = const()[name = string(\"a\"), val = tensor<fp32, [2]>([2, 1])];\n"
        "        tensor<fp32, [2]> b = const()[name = string(\"b\"), val = tensor<fp32, [2]>([1, 2])];\n"
        "        tensor<fp32, [1, 2, 1, 2]> sp = softplus_parametric(x = y, alpha = a, beta = b)" NM("sp")
        END("p, sp");
    struct oph h;
    oph_open(&h, mil, NULL);
    float xf[4] = { -1, 2, -3, 4 };
    uint16_t x[4];
    to_f16(xf, x, 4);
    float y[4] = { 0, 1, 0, -1 };
    struct anml_named_tensor in[] = {
        oph_in("x", ANML_DTYPE_F16, 3, OPH_DIMS(1, 2, 2), x),
        oph_in("y", ANML_DTYPE_F32, 4, OPH_DIMS(1, 2, 1, 2), y),
    };
    oph_run(&h, in, 2);
    oph_check_f16(&h, "p", 3, OPH_DIMS(1, 2, 2), (const float[]){ -0.5f, 2, -0.75f, 4 }, 0);
    /* alpha_c * ln(1 + e^(beta_c * x)) */
    oph_check_f32(&h, "sp", 4, OPH_DIMS(1, 2, 1, 2),
                  (const float[]){ 1.3862943611f, 2.6265233751f, 0.6931471806f, 0.126928011f },
                  2e-6f);
    oph_close(&h);
}

static void test_activations_f16(void **state) {
    (void)state;
    /* fp16 tensors with fp16 parameters; results rounded once from fp32 */
    const char *mil = HDR("ios16", "tensor<fp16, [4]> x")
        "        tensor<fp16, [4]> lr = leaky_relu(x = x, alpha = fp16(0.1))" NM("lr")
        "        tensor<fp16, [4]> cl = clip(x = x, alpha = fp16(-1), beta = fp16(1))" NM("cl")
        "        tensor<fp16, [4]> sg = sigmoid(x = x)" NM("sg")
        END("lr, cl, sg");
    struct oph h;
    oph_open(&h, mil, NULL);
    float xf[4] = { -INFINITY, -3, 0.5f, 65504 };
    uint16_t x[4];
    to_f16(xf, x, 4);
    struct anml_named_tensor in[] = { oph_in("x", ANML_DTYPE_F16, 1, OPH_DIMS(4), x) };
    oph_run(&h, in, 1);
    /* fp16(0.1) = 0.0999755859375; times -3 = -0.2999267578125 is a tie in fp16 (1228.5 units
     * of 2^-12) and rounds to the even -0.2998046875 */
    oph_check_bytes(&h, "lr", ANML_DTYPE_F16, 1, OPH_DIMS(4),
                    (const uint16_t[]){ 0xFC00, 0xB4CC, 0x3800, 0x7BFF }, 2);
    oph_check_f16(&h, "cl", 1, OPH_DIMS(4), (const float[]){ -1, -1, 0.5f, 1 }, 0);
    oph_check_f16(&h, "sg", 1, OPH_DIMS(4), (const float[]){ 0, 0.0474258732f, 0.6224593312f, 1 },
                  0);
    oph_close(&h);
}

/* ---- cast ---- */

static void test_cast(void **state) {
    (void)state;
    const char *mil = HDR("ios18", "tensor<fp32, [5]> x, tensor<int32, [4]> i, tensor<bool, [2]> b, "
                                   "tensor<fp32, [4]> r, tensor<fp16, [2]> h")
        "        tensor<int32, [5]> xi = cast(x = x, dtype = string(\"int32\"))" NM("xi")
        "        tensor<bool, [5]> xb = cast(x = x, dtype = string(\"bool\"))" NM("xb")
        "        tensor<fp16, [4]> ih = cast(x = i, dtype = string(\"fp16\"))" NM("ih")
        "        tensor<uint8, [4]> iu = cast(x = i, dtype = string(\"uint8\"))" NM("iu")
        "        tensor<int16, [4]> is = cast(x = i, dtype = string(\"int16\"))" NM("is")
        "        tensor<fp32, [2]> bf = cast(x = b, dtype = string(\"fp32\"))" NM("bf")
        "        tensor<int32, [2]> bi = cast(x = b, dtype = string(\"int32\"))" NM("bi")
        "        tensor<fp16, [4]> rh = cast(x = r, dtype = string(\"fp16\"))" NM("rh")
        "        tensor<int32, [2]> hi = cast(x = h, dtype = string(\"int32\"))" NM("hi")
        "        tensor<int8, [2]> hi8 = cast(x = h, dtype = string(\"int8\"))" NM("hi8")
        "        tensor<int32, []> s = cast(x = fp32(-7.9), dtype = string(\"int32\"))" NM("s")
        END("xi, xb, ih, iu, is, bf, bi, rh, hi, hi8, s");
    struct oph h;
    oph_open(&h, mil, NULL);
    float x[5] = { 2.7f, -2.7f, 0.0f, 1e10f, -0.5f };
    int32_t iv[4] = { 2049, -3, 300, 40000 };
    uint8_t bv[2] = { 1, 0 };
    /* 1 + 2^-11 and 1 + 3 * 2^-11 (ties), 70000 (overflow), 2^-25 (tie between 0 and 2^-24) */
    float r[4] = { 1.00048828125f, 1.00146484375f, 70000.0f, 2.98023223876953125e-8f };
    uint16_t hv[2] = { 0x4100 /* 2.5 */, 0xBE00 /* -1.5 */ };
    struct anml_named_tensor in[] = {
        oph_in("x", ANML_DTYPE_F32, 1, OPH_DIMS(5), x),
        oph_in("i", ANML_DTYPE_INT32, 1, OPH_DIMS(4), iv),
        oph_in("b", ANML_DTYPE_BOOL, 1, OPH_DIMS(2), bv),
        oph_in("r", ANML_DTYPE_F32, 1, OPH_DIMS(4), r),
        oph_in("h", ANML_DTYPE_F16, 1, OPH_DIMS(2), hv),
    };
    oph_run(&h, in, 5);
    /* float -> int truncates toward zero; out of range saturates (documented choice) */
    oph_check_int(&h, "xi", ANML_DTYPE_INT32, 1, OPH_DIMS(5),
                  (const int64_t[]){ 2, -2, 0, 2147483647, 0 });
    oph_check_int(&h, "xb", ANML_DTYPE_BOOL, 1, OPH_DIMS(5), (const int64_t[]){ 1, 1, 0, 1, 1 });
    /* 2049 -> 2048 (tie to even); -3, 300 and 40000 are exact in fp16 */
    oph_check_bytes(&h, "ih", ANML_DTYPE_F16, 1, OPH_DIMS(4),
                    (const uint16_t[]){ 0x6800, 0xC200, 0x5CB0, 0x78E2 }, 2);
    /* int -> narrower int wraps (NumPy astype) */
    oph_check_int(&h, "iu", ANML_DTYPE_UINT8, 1, OPH_DIMS(4), (const int64_t[]){ 1, 253, 44, 64 });
    oph_check_int(&h, "is", ANML_DTYPE_INT16, 1, OPH_DIMS(4),
                  (const int64_t[]){ 2049, -3, 300, -25536 });
    oph_check_f32(&h, "bf", 1, OPH_DIMS(2), (const float[]){ 1, 0 }, 0);
    oph_check_int(&h, "bi", ANML_DTYPE_INT32, 1, OPH_DIMS(2), (const int64_t[]){ 1, 0 });
    oph_check_bytes(&h, "rh", ANML_DTYPE_F16, 1, OPH_DIMS(4),
                    (const uint16_t[]){ 0x3C00, 0x3C02, 0x7C00, 0x0000 }, 2);
    oph_check_int(&h, "hi", ANML_DTYPE_INT32, 1, OPH_DIMS(2), (const int64_t[]){ 2, -1 });
    oph_check_int(&h, "hi8", ANML_DTYPE_INT8, 1, OPH_DIMS(2), (const int64_t[]){ 2, -1 });
    oph_check_int(&h, "s", ANML_DTYPE_INT32, 0, NULL, (const int64_t[]){ -7 });
    oph_close(&h);
}

/* ---- select ---- */

static void test_select(void **state) {
    (void)state;
    const char *mil = HDR("ios18", "tensor<bool, [2, 1]> c, tensor<fp16, [1, 3]> a, tensor<int32, [3]> ia, "
                                   "tensor<bool, [1, 3]> m, tensor<fp32, [2, 3]> x")
        "        tensor<fp16, [2, 3]> s = select(cond = c, a = a, b = fp16(-inf))" NM("s")
        "        tensor<int32, [2, 3]> si = select(cond = c, a = int32(-1), b = ia)" NM("si")
        "        tensor<fp32, [2, 3]> sm = select(cond = m, a = x, b = fp32(-inf))" NM("sm")
        "        tensor<bool, [2, 3]> sb = select(cond = c, a = m, b = bool(true))" NM("sb")
        END("s, si, sm, sb");
    struct oph h;
    oph_open(&h, mil, NULL);
    uint8_t c[2] = { 1, 0 }, m[3] = { 1, 0, 1 };
    uint16_t a[3] = { 0x3C00, 0x4000, 0x4200 }; /* 1, 2, 3 */
    int32_t ia[3] = { 7, 8, 9 };
    float x[6] = { 1, 2, 3, 4, 5, 6 };
    struct anml_named_tensor in[] = {
        oph_in("c", ANML_DTYPE_BOOL, 2, OPH_DIMS(2, 1), c),
        oph_in("a", ANML_DTYPE_F16, 2, OPH_DIMS(1, 3), a),
        oph_in("ia", ANML_DTYPE_INT32, 1, OPH_DIMS(3), ia),
        oph_in("m", ANML_DTYPE_BOOL, 2, OPH_DIMS(1, 3), m),
        oph_in("x", ANML_DTYPE_F32, 2, OPH_DIMS(2, 3), x),
    };
    oph_run(&h, in, 5);
    const int64_t *s23 = OPH_DIMS(2, 3);
    oph_check_bytes(&h, "s", ANML_DTYPE_F16, 2, s23,
                    (const uint16_t[]){ 0x3C00, 0x4000, 0x4200, 0xFC00, 0xFC00, 0xFC00 }, 2);
    oph_check_int(&h, "si", ANML_DTYPE_INT32, 2, s23, (const int64_t[]){ -1, -1, -1, 7, 8, 9 });
    oph_check_f32(&h, "sm", 2, s23, (const float[]){ 1, -INFINITY, 3, 4, -INFINITY, 6 }, 0);
    oph_check_int(&h, "sb", ANML_DTYPE_BOOL, 2, s23, (const int64_t[]){ 1, 0, 1, 1, 1, 1 });
    oph_close(&h);
}

/* ---- programs that must be rejected at context creation ---- */

static void test_errors(void **state) {
    (void)state;
    oph_expect_fail(HDR("ios18", "tensor<fp16, [3]> x, tensor<fp32, [3]> y")
                    "        tensor<fp16, [3]> z = add(x = x, y = y)" NM("z_add")
                    END("z"),
                    "add 'z_add'", "same dtype");
    oph_expect_fail(HDR("ios18", "tensor<fp32, [2, 3]> x, tensor<fp32, [4]> y")
                    "        tensor<fp32, [2, 3]> z = mul(x = x, y = y)" NM("z")
                    END("z"),
                    "mul", "broadcast");
    oph_expect_fail(HDR("ios18", "tensor<fp32, [2, 3]> c, tensor<fp32, [2, 3]> a")
                    "        tensor<fp32, [2, 3]> z = select(cond = c, a = a, b = a)" NM("z")
                    END("z"),
                    "select", "cond");
    oph_expect_fail(HDR("ios18", "tensor<bool, [3]> c, tensor<fp32, [3]> a, tensor<fp16, [3]> b")
                    "        tensor<fp32, [3]> z = select(cond = c, a = a, b = b)" NM("z")
                    END("z"),
                    "select", "same dtype");
    oph_expect_fail(HDR("ios18", "tensor<bool, [2]> c, tensor<fp32, [3]> a")
                    "        tensor<fp32, [3]> z = select(cond = c, a = a, b = a)" NM("z")
                    END("z"),
                    "select", "broadcast");
    oph_expect_fail(HDR("ios18", "tensor<int32, [3]> x")
                    "        tensor<int32, [3]> z = relu(x = x)" NM("z")
                    END("z"),
                    "relu", "int32");
    oph_expect_fail(HDR("ios18", "tensor<fp32, [3]> x")
                    "        tensor<bool, [3]> z = logical_or(x = x, y = x)" NM("z")
                    END("z"),
                    "logical_or", "bool");
    oph_expect_fail(HDR("ios18", "tensor<bool, [3]> x")
                    "        tensor<bool, [3]> z = equal(x = x, y = x)" NM("z")
                    END("z"),
                    "equal", "dtype");
    oph_expect_fail(HDR("ios18", "tensor<fp32, [3]> x")
                    "        tensor<fp32, [3]> z = gelu(x = x, mode = string(\"FAST\"))" NM("z")
                    END("z"),
                    "gelu", "FAST");
    oph_expect_fail(HDR("ios18", "tensor<fp32, [3]> x")
                    "        tensor<fp32, [3]> z = leaky_relu(x = x)" NM("z")
                    END("z"),
                    "leaky_relu", "alpha");
    oph_expect_fail(HDR("ios18", "tensor<fp32, [1, 3, 2]> x")
                    "        tensor<fp32, [2]> a = const()[name = string(\"a\"), val = tensor<fp32, [2]>([1, 2])];\n"
                    "        tensor<fp32, [1, 3, 2]> z = prelu(x = x, alpha = a)" NM("z")
                    END("z"),
                    "prelu", "alpha");
    oph_expect_fail(HDR("ios18", "tensor<fp32, [3, 2]> x")
                    "        tensor<fp32, [2]> a = const()[name = string(\"a\"), val = tensor<fp32, [2]>([1, 2])];\n"
                    "        tensor<fp32, [3, 2]> z = prelu(x = x, alpha = a)" NM("z")
                    END("z"),
                    "prelu", "rank");
    /* iOS17 clip requires alpha < beta ... */
    oph_expect_fail(HDR("ios17", "tensor<fp32, [3]> x")
                    "        tensor<fp32, [3]> z = clip(x = x, alpha = fp32(1), beta = fp32(1))" NM("z")
                    END("z"),
                    "clip", "alpha");
    /* ... and before iOS17 parameters must have x's dtype */
    oph_expect_fail(HDR("ios15", "tensor<fp16, [3]> x")
                    "        tensor<fp16, [3]> z = clip(x = x, alpha = fp32(0), beta = fp32(1))" NM("z")
                    END("z"),
                    "clip", "alpha");
    oph_expect_fail(HDR("ios16", "tensor<fp16, [3]> x")
                    "        tensor<fp16, [3]> z = rsqrt(x = x, epsilon = fp32(1))" NM("z")
                    END("z"),
                    "rsqrt", "epsilon");
    /* cast: the iOS17 dtypes do not exist before iOS17, fp64 never */
    oph_expect_fail(HDR("ios16", "tensor<fp32, [3]> x")
                    "        tensor<int8, [3]> z = cast(x = x, dtype = string(\"int8\"))" NM("z")
                    END("z"),
                    "cast", "int8");
    oph_expect_fail(HDR("ios18", "tensor<fp32, [3]> x")
                    "        tensor<fp64, [3]> z = cast(x = x, dtype = string(\"fp64\"))" NM("z")
                    END("z"),
                    "cast", "fp64");
    oph_expect_fail(HDR("ios16", "tensor<int8, [3]> x")
                    "        tensor<fp32, [3]> z = cast(x = x, dtype = string(\"fp32\"))" NM("z")
                    END("z"),
                    "cast", "int8");
}

static void test_clip_ios16_equal_bounds(void **state) {
    (void)state;
    /* before iOS17 alpha == beta is accepted and clips everything to that value */
    const char *mil = HDR("ios16", "tensor<fp32, [3]> x")
        "        tensor<fp32, [3]> z = clip(x = x, alpha = fp32(1), beta = fp32(1))" NM("z")
        END("z");
    struct oph h;
    oph_open(&h, mil, NULL);
    float x[3] = { -5, 1, 5 };
    struct anml_named_tensor in[] = { oph_in("x", ANML_DTYPE_F32, 1, OPH_DIMS(3), x) };
    oph_run(&h, in, 1);
    oph_check_f32(&h, "z", 1, OPH_DIMS(3), (const float[]){ 1, 1, 1 }, 0);
    oph_close(&h);
}

// clang-format on

/* fp16 products of random bit patterns (normals, subnormals, inf, NaN): the fp32 product of two
 * fp16 values is exact, so the result must be the reference RNE conversion of it, bit for bit. */
static void test_f16_mul_random_vs_reference(void **state) {
    (void)state;
    enum { N = 1 << 16 };
    const char *mil = "program(1.3)\n{\n    func main<ios18>(tensor<fp16, [65536]> x, "
                      "tensor<fp16, [65536]> y) {\n"
                      "        tensor<fp16, [65536]> z = mul(x = x, y = y)[name = string(\"z\")];\n"
                      "    } -> (z);\n}\n";
    static uint16_t x[N], y[N], want[N];
    uint32_t seed = 12345;
    for (int i = 0; i < N; i++) {
        seed = seed * 1103515245u + 12345u;
        x[i] = (uint16_t)(seed >> 16);
        seed = seed * 1103515245u + 12345u;
        /* small exponents too, so that many products land in the subnormal range */
        y[i] = (uint16_t)((seed >> 16) & (i & 1 ? 0xffffu : 0x83ffu));
        float p = anml__fp16_to_fp32(x[i]) * anml__fp16_to_fp32(y[i]);
        want[i] = anml__fp32_to_fp16(p);
    }
    struct oph h;
    oph_open(&h, mil, NULL);
    struct anml_named_tensor in[] = {
        oph_in("x", ANML_DTYPE_F16, 1, OPH_DIMS(N), x),
        oph_in("y", ANML_DTYPE_F16, 1, OPH_DIMS(N), y),
    };
    oph_run(&h, in, 2);
    /* Bit-exact, except that a NaN may carry either operand's payload: which one IEEE leaves
     * open, and a vectorized loop may swap the operands of a commutative mul. */
    struct anml_tensor z = oph_out(&h, "z", ANML_DTYPE_F16, 1, OPH_DIMS(N));
    const uint16_t *got = z.data;
    for (int i = 0; i < N; i++) {
        bool want_nan = (want[i] & 0x7c00) == 0x7c00 && (want[i] & 0x3ff);
        bool got_nan = (got[i] & 0x7c00) == 0x7c00 && (got[i] & 0x3ff);
        if (want_nan ? !got_nan : got[i] != want[i]) {
            fail_msg("element %d: %04x * %04x = %04x, expected %04x", i, x[i], y[i], got[i],
                     want[i]);
        }
    }
    oph_close(&h);
}

/* ---- genuine coremlc output (../shared/fixtures/mil-samples) ---- */

static void run_fixture_mil(const char *rel, const char *in_name, float *x, int64_t n,
                            const char *out_name, const float *want) {
    struct anml_program *prog = NULL;
    struct anml_context *ctx = NULL;
    struct anml_error err;
    memset(&err, 0, sizeof err);
    if (anml_program_load(anml_test_shared_path(rel), &prog, &err) != ANML_OK ||
        anml_context_create(prog, NULL, &ctx, &err) != ANML_OK) {
        anml_program_free(prog);
        fail_msg("%s: %s: %s", rel, err.where, err.msg);
    }
    struct anml_named_tensor in = oph_in(in_name, ANML_DTYPE_F32, 1, OPH_DIMS(n), x);
    struct anml_tensor out;
    bool ok = anml_context_run(ctx, &in, 1, NULL) == ANML_OK &&
              anml_context_output(ctx, out_name, &out) == ANML_OK && out.dtype == ANML_DTYPE_F32 &&
              out.rank == 1 && out.shape[0] == n;
    /* bit-exact, so the sign of zero counts too */
    ok = ok && memcmp(out.data, want, (size_t)n * sizeof(float)) == 0;
    anml_context_free(ctx);
    anml_program_free(prog);
    assert_true(ok);
}

static void test_fixture_subnormal_cast_and_neg(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    /* cast of the fp16 subnormal literals 0x1p-24, 0x1.5p-17, 0x1.ff8p-15, 0x1p-14 and -0x1.5p-17
     * to fp32 is exact; adding them to zeros must reproduce them bit for bit */
    float zeros[5] = { 0, 0, 0, 0, 0 };
    const float want[5] = { 0x1p-24f, 0x1.5p-17f, 0x1.ff8p-15f, 0x1p-14f, -0x1.5p-17f };
    run_fixture_mil("fixtures/mil-samples/rebeckerspecialties_mlmodelc-export/fp16-subnormal-cast/"
                    "model.mil",
                    "input", zeros, 5, "output", want);
    /* mul by the literal tensor<fp32, [1]>([-0x1p+0]): 0 becomes -0 */
    float x[1] = { 0.0f };
    run_fixture_mil("fixtures/mil-samples/rebeckerspecialties_mlmodelc-export/neg-0d-scalar/"
                    "model.mil",
                    "negInput", x, 1, "negOutput", (const float[]){ -0.0f });
    x[0] = 2.5f;
    run_fixture_mil("fixtures/mil-samples/rebeckerspecialties_mlmodelc-export/neg-0d-scalar/"
                    "model.mil",
                    "negInput", x, 1, "negOutput", (const float[]){ -2.5f });
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_binary_f32_broadcast),
        cmocka_unit_test(test_binary_f32_floor_mod),
        cmocka_unit_test(test_binary_broadcast_shapes),
        cmocka_unit_test(test_binary_f16_ties_to_even),
        cmocka_unit_test(test_f16_long_rows),
        cmocka_unit_test(test_f16_mul_random_vs_reference),
        cmocka_unit_test(test_binary_int32),
        cmocka_unit_test(test_compare_inf_nan),
        cmocka_unit_test(test_logical),
        cmocka_unit_test(test_unary_rounding_and_sign),
        cmocka_unit_test(test_unary_transcendental),
        cmocka_unit_test(test_unary_trig),
        cmocka_unit_test(test_unary_int32),
        cmocka_unit_test(test_activations_inf),
        cmocka_unit_test(test_activations_params),
        cmocka_unit_test(test_activations_per_channel),
        cmocka_unit_test(test_activations_f16),
        cmocka_unit_test(test_cast),
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_clip_ios16_equal_bounds),
        cmocka_unit_test(test_fixture_subnormal_cast_and_neg),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
