/*
 * test_ops_misc.c -- the misc op family (src/ops/misc.c) run as small MIL programs through the
 * public component API: fill / fill_like / range_1d (constant and runtime sizes), band_part,
 * one_hot, cumsum (fp32 accumulation of fp16), shape, identity, non_zero, argsort and topk
 * (stable ties, NaN last, per-opset parameters), reverse, flatten2d, pad (constant / reflect /
 * replicate), stack, and programs that must be rejected at context creation with a message
 * naming the op. Expected values are computed by hand.
 */
#include <math.h>

#include "ophelper.h"

#define HDR(opset, sig) "program(1.3)\n{\n    func main<" opset ">(" sig ") {\n"
#define END(outs)       "    } -> (" outs ");\n}\n"
#define NM(n)           "[name = string(\"" n "\")];\n"

/* Runs and expects a failure whose message mentions `needle`. */
static void expect_run_fail(struct oph *h, const struct anml_named_tensor *in, int32_t n,
                            const char *needle) {
    enum anml_status st = oph_run_status(h, in, n);
    if (st == ANML_OK) {
        fail_msg("run succeeded; expected a failure mentioning '%s'", needle);
    }
    const char *msg = anml_context_errmsg(h->ctx);
    if (!strstr(msg, needle)) {
        fail_msg("run error \"%s\" does not mention '%s'", msg, needle);
    }
}

/* The MIL programs below are laid out one op per line, which clang-format would reflow. */
// clang-format off

/* ---- fill, fill_like, range_1d ---- */

static void test_fill(void **state) {
    (void)state;
    const char *mil = HDR("ios18", "tensor<int32, [2]> s, tensor<fp16, [2, 2]> r")
        "        tensor<int32, [2]> sh = const()[name = string(\"sh\"), val = tensor<int32, [2]>([2, 3])];\n"
        "        tensor<fp16, [2, 3]> f = fill(shape = sh, value = fp16(1.5))" NM("f")
        "        tensor<fp32, [2, 3]> f0 = fill(shape = sh)" NM("f0")
        "        tensor<int32, [3]> fi = fill(shape = tensor<int32, [1]>([3]), value = int32(-4))" NM("fi")
        "        tensor<bool, [2, 2]> fb = fill(shape = tensor<int32, [2]>([2, 2]), value = bool(true))" NM("fb")
        "        tensor<fp32, [2, 3]> fr = fill(shape = s, value = fp32(-inf))" NM("fr")
        "        tensor<int32, [2, 2]> fl = fill_like(ref_tensor = r, value = int32(9))" NM("fl")
        "        tensor<fp32, [2, 2]> fl0 = fill_like(ref_tensor = r)" NM("fl0")
        END("f, f0, fi, fb, fr, fl, fl0");
    struct oph h;
    oph_open(&h, mil, NULL);
    int32_t s[2] = { 2, 3 };
    uint16_t r[4] = { 0 };
    struct anml_named_tensor in[] = {
        oph_in("s", ANML_DTYPE_INT32, 1, OPH_DIMS(2), s),
        oph_in("r", ANML_DTYPE_F16, 2, OPH_DIMS(2, 2), r),
    };
    oph_run(&h, in, 2);
    const int64_t *s23 = OPH_DIMS(2, 3), *s22 = OPH_DIMS(2, 2);
    oph_check_f16(&h, "f", 2, s23, (const float[]){ 1.5f, 1.5f, 1.5f, 1.5f, 1.5f, 1.5f }, 0);
    oph_check_f32(&h, "f0", 2, s23, (const float[]){ 0, 0, 0, 0, 0, 0 }, 0);
    oph_check_int(&h, "fi", ANML_DTYPE_INT32, 1, OPH_DIMS(3), (const int64_t[]){ -4, -4, -4 });
    oph_check_int(&h, "fb", ANML_DTYPE_BOOL, 2, s22, (const int64_t[]){ 1, 1, 1, 1 });
    float ninf = -INFINITY;
    oph_check_f32(&h, "fr", 2, s23, (const float[]){ ninf, ninf, ninf, ninf, ninf, ninf }, 0);
    oph_check_int(&h, "fl", ANML_DTYPE_INT32, 2, s22, (const int64_t[]){ 9, 9, 9, 9 });
    oph_check_f32(&h, "fl0", 2, s22, (const float[]){ 0, 0, 0, 0 }, 0);
    /* a runtime shape that disagrees with the declared result is a run error, not an overflow */
    s[0] = 3;
    s[1] = 2;
    expect_run_fail(&h, in, 2, "shape");
    oph_close(&h);
}

static void test_range_1d(void **state) {
    (void)state;
    const char *mil = HDR("ios18", "tensor<int32, []> st")
        "        tensor<int32, [4]> a = range_1d(start = int32(0), end = int32(10), step = int32(3))" NM("a")
        "        tensor<fp32, [4]> b = range_1d(start = fp32(1), end = fp32(0), step = fp32(-0.25))" NM("b")
        "        tensor<fp16, [4]> c = range_1d(start = fp16(0), end = fp16(1), step = fp16(0.25))" NM("c")
        "        tensor<int32, [3]> d = range_1d(start = int32(-5), end = int32(-11), step = int32(-2))" NM("d")
        "        tensor<int32, [5]> r = range_1d(start = st, end = int32(5), step = int32(1))" NM("r")
        END("a, b, c, d, r");
    struct oph h;
    oph_open(&h, mil, NULL);
    int32_t st = 0;
    struct anml_named_tensor in[] = { oph_in("st", ANML_DTYPE_INT32, 0, NULL, &st) };
    oph_run(&h, in, 1);
    oph_check_int(&h, "a", ANML_DTYPE_INT32, 1, OPH_DIMS(4), (const int64_t[]){ 0, 3, 6, 9 });
    oph_check_f32(&h, "b", 1, OPH_DIMS(4), (const float[]){ 1, 0.75f, 0.5f, 0.25f }, 0);
    oph_check_f16(&h, "c", 1, OPH_DIMS(4), (const float[]){ 0, 0.25f, 0.5f, 0.75f }, 0);
    oph_check_int(&h, "d", ANML_DTYPE_INT32, 1, OPH_DIMS(3), (const int64_t[]){ -5, -7, -9 });
    oph_check_int(&h, "r", ANML_DTYPE_INT32, 1, OPH_DIMS(5), (const int64_t[]){ 0, 1, 2, 3, 4 });
    /* start 1 would give 4 elements, the declared result has 5 */
    st = 1;
    expect_run_fail(&h, in, 1, "range");
    oph_close(&h);
}

/* ---- band_part, one_hot, cumsum ---- */

static void test_band_part(void **state) {
    (void)state;
    const char *mil = HDR("ios18", "tensor<fp32, [2, 3, 3]> x, tensor<int32, [3, 2]> i")
        "        tensor<fp32, [2, 3, 3]> u = band_part(x = x, lower = int32(0), upper = int32(-1))" NM("u")
        "        tensor<fp32, [2, 3, 3]> l = band_part(x = x, lower = int32(1), upper = int32(0))" NM("l")
        "        tensor<fp32, [2, 3, 3]> a = band_part(x = x)" NM("a")
        "        tensor<int32, [3, 2]> d = band_part(x = i, lower = int32(0), upper = int32(0))" NM("d")
        END("u, l, a, d");
    struct oph h;
    oph_open(&h, mil, NULL);
    float x[18];
    for (int i = 0; i < 18; i++) {
        x[i] = (float)(i + 1);
    }
    int32_t iv[6] = { 1, 2, 3, 4, 5, 6 };
    struct anml_named_tensor in[] = {
        oph_in("x", ANML_DTYPE_F32, 3, OPH_DIMS(2, 3, 3), x),
        oph_in("i", ANML_DTYPE_INT32, 2, OPH_DIMS(3, 2), iv),
    };
    oph_run(&h, in, 2);
    const int64_t *s = OPH_DIMS(2, 3, 3);
    oph_check_f32(&h, "u", 3, s, (const float[]){ 1, 2, 3, 0, 5, 6, 0, 0, 9,
                                                  10, 11, 12, 0, 14, 15, 0, 0, 18 }, 0);
    oph_check_f32(&h, "l", 3, s, (const float[]){ 1, 0, 0, 4, 5, 0, 0, 8, 9,
                                                  10, 0, 0, 13, 14, 0, 0, 17, 18 }, 0);
    oph_check_f32(&h, "a", 3, s, x, 0);
    oph_check_int(&h, "d", ANML_DTYPE_INT32, 2, OPH_DIMS(3, 2),
                  (const int64_t[]){ 1, 0, 0, 4, 0, 0 });
    oph_close(&h);
}

static void test_one_hot(void **state) {
    (void)state;
    const char *mil = HDR("ios18", "tensor<int32, [2]> i, tensor<int32, [2, 2]> j, tensor<int32, []> n")
        "        tensor<int32, [2, 4]> a = one_hot(indices = i, one_hot_vector_size = int32(4))" NM("a")
        "        tensor<int32, [4, 2]> b = one_hot(indices = i, one_hot_vector_size = int32(4), axis = int32(0))" NM("b")
        "        tensor<int32, [2]> k = const()[name = string(\"k\"), val = tensor<int32, [2]>([1, 7])];\n"
        "        tensor<fp16, [2, 4]> c = one_hot(indices = k, one_hot_vector_size = int32(4), on_value = fp16(2.5), off_value = fp16(-1))" NM("c")
        "        tensor<bool, [2, 3, 2]> d = one_hot(indices = j, one_hot_vector_size = int32(3), axis = int32(-2), on_value = bool(true), off_value = bool(false))" NM("d")
        "        tensor<int32, [2, 3]> e = one_hot(indices = i, one_hot_vector_size = n)" NM("e")
        END("a, b, c, d, e");
    struct oph h;
    oph_open(&h, mil, NULL);
    int32_t i[2] = { 1, 3 }, j[4] = { 0, 2, 1, 1 }, n = 3;
    struct anml_named_tensor in[] = {
        oph_in("i", ANML_DTYPE_INT32, 1, OPH_DIMS(2), i),
        oph_in("j", ANML_DTYPE_INT32, 2, OPH_DIMS(2, 2), j),
        oph_in("n", ANML_DTYPE_INT32, 0, NULL, &n),
    };
    oph_run(&h, in, 3);
    oph_check_int(&h, "a", ANML_DTYPE_INT32, 2, OPH_DIMS(2, 4),
                  (const int64_t[]){ 0, 1, 0, 0, 0, 0, 0, 1 });
    oph_check_int(&h, "b", ANML_DTYPE_INT32, 2, OPH_DIMS(4, 2),
                  (const int64_t[]){ 0, 0, 1, 0, 0, 0, 0, 1 });
    /* an out-of-range index gives an all-off vector */
    oph_check_f16(&h, "c", 2, OPH_DIMS(2, 4), (const float[]){ -1, 2.5f, -1, -1, -1, -1, -1, -1 },
                  0);
    oph_check_int(&h, "d", ANML_DTYPE_BOOL, 3, OPH_DIMS(2, 3, 2),
                  (const int64_t[]){ 1, 0, 0, 0, 0, 1, 0, 0, 1, 1, 0, 0 });
    /* runtime size: indices 1 and 3 in 3 classes (3 is out of range) */
    oph_check_int(&h, "e", ANML_DTYPE_INT32, 2, OPH_DIMS(2, 3), (const int64_t[]){ 0, 1, 0, 0, 0, 0 });
    n = 4;
    expect_run_fail(&h, in, 3, "one_hot_vector_size");
    oph_close(&h);
}

static void test_cumsum(void **state) {
    (void)state;
    const char *mil = HDR("ios18", "tensor<fp32, [2, 3]> x, tensor<int32, [3]> i, tensor<fp16, [3]> h")
        "        tensor<fp32, [2, 3]> a = cumsum(x = x, axis = int32(1))" NM("a")
        "        tensor<fp32, [2, 3]> b = cumsum(x = x)" NM("b")
        "        tensor<fp32, [2, 3]> c = cumsum(x = x, axis = int32(-1), exclusive = bool(true))" NM("c")
        "        tensor<fp32, [2, 3]> d = cumsum(x = x, axis = int32(1), reverse = bool(true))" NM("d")
        "        tensor<fp32, [2, 3]> e = cumsum(x = x, axis = int32(1), exclusive = bool(true), reverse = bool(true))" NM("e")
        "        tensor<int32, [3]> f = cumsum(x = i, axis = int32(0))" NM("f")
        "        tensor<fp16, [3]> g = cumsum(x = h, axis = int32(0))" NM("g")
        END("a, b, c, d, e, f, g");
    struct oph h;
    oph_open(&h, mil, NULL);
    float x[6] = { 1, 2, 3, 4, 5, 6 };
    int32_t iv[3] = { 5, -2, 7 };
    uint16_t hv[3] = { 0x6800 /* 2048 */, 0x3C00 /* 1 */, 0x3C00 };
    struct anml_named_tensor in[] = {
        oph_in("x", ANML_DTYPE_F32, 2, OPH_DIMS(2, 3), x),
        oph_in("i", ANML_DTYPE_INT32, 1, OPH_DIMS(3), iv),
        oph_in("h", ANML_DTYPE_F16, 1, OPH_DIMS(3), hv),
    };
    oph_run(&h, in, 3);
    const int64_t *s = OPH_DIMS(2, 3);
    oph_check_f32(&h, "a", 2, s, (const float[]){ 1, 3, 6, 4, 9, 15 }, 0);
    oph_check_f32(&h, "b", 2, s, (const float[]){ 1, 2, 3, 5, 7, 9 }, 0);
    oph_check_f32(&h, "c", 2, s, (const float[]){ 0, 1, 3, 0, 4, 9 }, 0);
    oph_check_f32(&h, "d", 2, s, (const float[]){ 6, 5, 3, 15, 11, 6 }, 0);
    oph_check_f32(&h, "e", 2, s, (const float[]){ 5, 3, 0, 11, 6, 0 }, 0);
    oph_check_int(&h, "f", ANML_DTYPE_INT32, 1, OPH_DIMS(3), (const int64_t[]){ 5, 3, 10 });
    /* sums accumulate in fp32: 2048, 2049 (stored as 2048, tie to even), 2050 -- an fp16
     * accumulator would stay at 2048 */
    oph_check_bytes(&h, "g", ANML_DTYPE_F16, 1, OPH_DIMS(3),
                    (const uint16_t[]){ 0x6800, 0x6800, 0x6801 }, 2);
    oph_close(&h);
}

/* ---- shape, identity, flatten2d, non_zero ---- */

static void test_shape_identity_flatten(void **state) {
    (void)state;
    const char *mil = HDR("ios18", "tensor<fp16, [2, 3, 4]> x, tensor<bool, [3]> b")
        "        tensor<int32, [3]> s = shape(x = x)" NM("s")
        "        tensor<bool, [3]> i = identity(x = b)" NM("i")
        "        tensor<fp16, [2, 12]> f1 = flatten2d(x = x)" NM("f1")
        "        tensor<fp16, [6, 4]> fm = flatten2d(x = x, axis = int32(-1))" NM("fm")
        "        tensor<fp16, [1, 24]> f0 = flatten2d(x = x, axis = int32(0))" NM("f0")
        "        tensor<fp16, [24, 1]> f3 = flatten2d(x = x, axis = int32(3))" NM("f3")
        END("s, i, f1, fm, f0, f3");
    struct oph h;
    oph_open(&h, mil, NULL);
    uint16_t x[24];
    for (int k = 0; k < 24; k++) {
        x[k] = anml__fp32_to_fp16((float)k);
    }
    uint8_t b[3] = { 1, 0, 1 };
    struct anml_named_tensor in[] = {
        oph_in("x", ANML_DTYPE_F16, 3, OPH_DIMS(2, 3, 4), x),
        oph_in("b", ANML_DTYPE_BOOL, 1, OPH_DIMS(3), b),
    };
    oph_run(&h, in, 2);
    oph_check_int(&h, "s", ANML_DTYPE_INT32, 1, OPH_DIMS(3), (const int64_t[]){ 2, 3, 4 });
    oph_check_int(&h, "i", ANML_DTYPE_BOOL, 1, OPH_DIMS(3), (const int64_t[]){ 1, 0, 1 });
    oph_check_bytes(&h, "f1", ANML_DTYPE_F16, 2, OPH_DIMS(2, 12), x, 2);
    oph_check_bytes(&h, "fm", ANML_DTYPE_F16, 2, OPH_DIMS(6, 4), x, 2);
    oph_check_bytes(&h, "f0", ANML_DTYPE_F16, 2, OPH_DIMS(1, 24), x, 2);
    oph_check_bytes(&h, "f3", ANML_DTYPE_F16, 2, OPH_DIMS(24, 1), x, 2);
    oph_close(&h);
}

static void test_non_zero(void **state) {
    (void)state;
    const char *mil = HDR("ios18", "tensor<bool, [4]> b")
        "        tensor<int32, [2, 3]> c = const()[name = string(\"c\"), val = tensor<int32, [2, 3]>([[0, 5, 0], [7, 0, 1]])];\n"
        "        tensor<int32, [3, 2]> n = non_zero(x = c)" NM("n")
        "        tensor<int32, [2, 1]> r = non_zero(x = b)" NM("r")
        END("n, r");
    struct oph h;
    oph_open(&h, mil, NULL);
    uint8_t b[4] = { 0, 1, 0, 1 };
    struct anml_named_tensor in[] = { oph_in("b", ANML_DTYPE_BOOL, 1, OPH_DIMS(4), b) };
    oph_run(&h, in, 1);
    /* coordinates in row-major order, one row per non-zero element */
    oph_check_int(&h, "n", ANML_DTYPE_INT32, 2, OPH_DIMS(3, 2),
                  (const int64_t[]){ 0, 1, 1, 0, 1, 2 });
    oph_check_int(&h, "r", ANML_DTYPE_INT32, 2, OPH_DIMS(2, 1), (const int64_t[]){ 1, 3 });
    /* three non-zeros do not fit the declared [2, 1] */
    b[0] = 1;
    expect_run_fail(&h, in, 1, "non-zero");
    oph_close(&h);
}

/* ---- argsort, topk ---- */

static void test_argsort(void **state) {
    (void)state;
    const char *mil = HDR("ios18", "tensor<fp32, [2, 4]> x, tensor<int32, [3, 2]> i")
        "        tensor<int32, [2, 4]> d = argsort(x = x)" NM("d")
        "        tensor<int32, [2, 4]> a = argsort(x = x, axis = int32(-1), ascending = bool(true))" NM("a")
        "        tensor<int32, [3, 2]> c = argsort(x = i, axis = int32(0))" NM("c")
        END("d, a, c");
    struct oph h;
    oph_open(&h, mil, NULL);
    float x[8] = { 3, 1, 3, 2, -INFINITY, 5, NAN, 5 };
    int32_t iv[6] = { 3, 1, 1, 1, 2, 0 };
    struct anml_named_tensor in[] = {
        oph_in("x", ANML_DTYPE_F32, 2, OPH_DIMS(2, 4), x),
        oph_in("i", ANML_DTYPE_INT32, 2, OPH_DIMS(3, 2), iv),
    };
    oph_run(&h, in, 2);
    /* stable: equal keys keep index order; NaN sorts last in both directions */
    oph_check_int(&h, "d", ANML_DTYPE_INT32, 2, OPH_DIMS(2, 4),
                  (const int64_t[]){ 0, 2, 3, 1, 1, 3, 0, 2 });
    oph_check_int(&h, "a", ANML_DTYPE_INT32, 2, OPH_DIMS(2, 4),
                  (const int64_t[]){ 1, 3, 0, 2, 0, 1, 3, 2 });
    oph_check_int(&h, "c", ANML_DTYPE_INT32, 2, OPH_DIMS(3, 2),
                  (const int64_t[]){ 0, 0, 2, 1, 1, 2 });
    oph_close(&h);
}

static void test_topk(void **state) {
    (void)state;
    const char *mil = HDR("ios18", "tensor<fp16, [2, 4]> x, tensor<int32, [3, 2]> i")
        "        tensor<fp16, [2, 2]> v, tensor<int32, [2, 2]> ix = topk(x = x, k = int32(2))" NM("t1")
        "        tensor<fp16, [2, 2]> av, tensor<uint16, [2, 2]> ai = topk(x = x, k = int32(2), ascending = bool(true), output_indices_dtype = string(\"uint16\"))" NM("t2")
        "        tensor<fp16, [2, 2]> ov = topk(x = x, k = int32(2), return_indices = bool(false))" NM("t3")
        "        tensor<fp16, [2, 4]> all, tensor<int32, [2, 4]> alli = topk(x = x, k = int32(-1), sort = bool(true))" NM("t4")
        "        tensor<int32, [1, 2]> cv, tensor<int32, [1, 2]> ci = topk(x = i, k = int32(1), axis = int32(0))" NM("t5")
        END("v, ix, av, ai, ov, all, alli, cv, ci");
    struct oph h;
    oph_open(&h, mil, NULL);
    float xf[8] = { 3, 1, 3, 2, -1, 5, 0, 4 };
    uint16_t x[8];
    for (int k = 0; k < 8; k++) {
        x[k] = anml__fp32_to_fp16(xf[k]);
    }
    int32_t iv[6] = { 3, 1, 1, 1, 2, 0 };
    struct anml_named_tensor in[] = {
        oph_in("x", ANML_DTYPE_F16, 2, OPH_DIMS(2, 4), x),
        oph_in("i", ANML_DTYPE_INT32, 2, OPH_DIMS(3, 2), iv),
    };
    oph_run(&h, in, 2);
    const int64_t *s22 = OPH_DIMS(2, 2);
    oph_check_f16(&h, "v", 2, s22, (const float[]){ 3, 3, 5, 4 }, 0);
    oph_check_int(&h, "ix", ANML_DTYPE_INT32, 2, s22, (const int64_t[]){ 0, 2, 1, 3 });
    oph_check_f16(&h, "av", 2, s22, (const float[]){ 1, 2, -1, 0 }, 0);
    oph_check_int(&h, "ai", ANML_DTYPE_UINT16, 2, s22, (const int64_t[]){ 1, 3, 0, 2 });
    oph_check_f16(&h, "ov", 2, s22, (const float[]){ 3, 3, 5, 4 }, 0);
    oph_check_f16(&h, "all", 2, OPH_DIMS(2, 4), (const float[]){ 3, 3, 2, 1, 5, 4, 0, -1 }, 0);
    oph_check_int(&h, "alli", ANML_DTYPE_INT32, 2, OPH_DIMS(2, 4),
                  (const int64_t[]){ 0, 2, 3, 1, 1, 3, 2, 0 });
    oph_check_int(&h, "cv", ANML_DTYPE_INT32, 2, OPH_DIMS(1, 2), (const int64_t[]){ 3, 1 });
    oph_check_int(&h, "ci", ANML_DTYPE_INT32, 2, OPH_DIMS(1, 2), (const int64_t[]){ 0, 0 });
    oph_close(&h);
}

static void test_topk_ios15_and_int8(void **state) {
    (void)state;
    /* iOS15 topk: no sort / return_indices parameters, always two results */
    const char *mil15 = HDR("ios15", "tensor<fp32, [5]> x")
        "        tensor<fp32, [3]> v, tensor<int32, [3]> i = topk(x = x, k = int32(3), ascending = bool(true))" NM("t")
        END("v, i");
    struct oph h;
    oph_open(&h, mil15, NULL);
    float x[5] = { 0.5f, -2, 7, -2, 1 };
    struct anml_named_tensor in[] = { oph_in("x", ANML_DTYPE_F32, 1, OPH_DIMS(5), x) };
    oph_run(&h, in, 1);
    oph_check_f32(&h, "v", 1, OPH_DIMS(3), (const float[]){ -2, -2, 0.5f }, 0);
    oph_check_int(&h, "i", ANML_DTYPE_INT32, 1, OPH_DIMS(3), (const int64_t[]){ 1, 3, 0 });
    oph_close(&h);
    /* iOS17 added int8 and friends */
    const char *mil17 = HDR("ios17", "tensor<int8, [4]> x")
        "        tensor<int8, [2]> v, tensor<int32, [2]> i = topk(x = x, k = int32(2))" NM("t")
        END("v, i");
    oph_open(&h, mil17, NULL);
    int8_t x8[4] = { -100, 7, 100, -1 };
    struct anml_named_tensor in8[] = { oph_in("x", ANML_DTYPE_INT8, 1, OPH_DIMS(4), x8) };
    oph_run(&h, in8, 1);
    oph_check_int(&h, "v", ANML_DTYPE_INT8, 1, OPH_DIMS(2), (const int64_t[]){ 100, 7 });
    oph_check_int(&h, "i", ANML_DTYPE_INT32, 1, OPH_DIMS(2), (const int64_t[]){ 2, 1 });
    oph_close(&h);
}

/* ---- reverse, pad, stack ---- */

static void test_reverse(void **state) {
    (void)state;
    const char *mil = HDR("ios18", "tensor<int32, [2, 3]> x, tensor<fp16, [3]> h")
        "        tensor<int32, [2, 3]> a = reverse(x = x, axes = tensor<int32, [1]>([-1]))" NM("a")
        "        tensor<int32, [2, 3]> b = reverse(x = x)" NM("b")
        "        tensor<int32, [2, 3]> c = reverse(x = x, axes = tensor<int32, [1]>([0]))" NM("c")
        "        tensor<fp16, [3]> d = reverse(x = h)" NM("d")
        END("a, b, c, d");
    struct oph h;
    oph_open(&h, mil, NULL);
    int32_t x[6] = { 1, 2, 3, 4, 5, 6 };
    uint16_t hv[3] = { 0x3C00, 0xFC00, 0x7E00 };
    struct anml_named_tensor in[] = {
        oph_in("x", ANML_DTYPE_INT32, 2, OPH_DIMS(2, 3), x),
        oph_in("h", ANML_DTYPE_F16, 1, OPH_DIMS(3), hv),
    };
    oph_run(&h, in, 2);
    const int64_t *s = OPH_DIMS(2, 3);
    oph_check_int(&h, "a", ANML_DTYPE_INT32, 2, s, (const int64_t[]){ 3, 2, 1, 6, 5, 4 });
    oph_check_int(&h, "b", ANML_DTYPE_INT32, 2, s, (const int64_t[]){ 6, 5, 4, 3, 2, 1 });
    oph_check_int(&h, "c", ANML_DTYPE_INT32, 2, s, (const int64_t[]){ 4, 5, 6, 1, 2, 3 });
    oph_check_bytes(&h, "d", ANML_DTYPE_F16, 1, OPH_DIMS(3),
                    (const uint16_t[]){ 0x7E00, 0xFC00, 0x3C00 }, 2);
    oph_close(&h);
}

static void test_pad(void **state) {
    (void)state;
    const char *mil = HDR("ios18", "tensor<fp32, [2, 3]> x, tensor<fp16, [2]> h, tensor<int32, [4]> p")
        "        tensor<fp32, [4, 5]> c = pad(x = x, pad = tensor<int32, [4]>([1, 1, 2, 0]), mode = string(\"constant\"), constant_val = fp32(9))" NM("c")
        "        tensor<fp32, [2, 5]> l = pad(x = x, pad = tensor<int32, [2]>([0, 2]))" NM("l")
        "        tensor<fp32, [4, 7]> r = pad(x = x, pad = tensor<int32, [4]>([1, 1, 2, 2]), mode = string(\"reflect\"))" NM("r")
        "        tensor<fp32, [3, 7]> e = pad(x = x, pad = tensor<int32, [4]>([1, 0, 1, 3]), mode = string(\"replicate\"))" NM("e")
        "        tensor<fp16, [3]> m = pad(x = h, pad = tensor<int32, [2]>([1, 0]), constant_val = fp16(-inf))" NM("m")
        "        tensor<fp32, [3, 4]> d = pad(x = x, pad = p)" NM("d")
        END("c, l, r, e, m, d");
    struct oph h;
    oph_open(&h, mil, NULL);
    float x[6] = { 1, 2, 3, 4, 5, 6 };
    uint16_t hv[2] = { 0x3C00, 0x4000 };
    int32_t p[4] = { 0, 1, 1, 0 };
    struct anml_named_tensor in[] = {
        oph_in("x", ANML_DTYPE_F32, 2, OPH_DIMS(2, 3), x),
        oph_in("h", ANML_DTYPE_F16, 1, OPH_DIMS(2), hv),
        oph_in("p", ANML_DTYPE_INT32, 1, OPH_DIMS(4), p),
    };
    oph_run(&h, in, 3);
    oph_check_f32(&h, "c", 2, OPH_DIMS(4, 5), (const float[]){ 9, 9, 9, 9, 9,
                                                               9, 9, 1, 2, 3,
                                                               9, 9, 4, 5, 6,
                                                               9, 9, 9, 9, 9 }, 0);
    /* a pad vector shorter than 2 * rank pads the last dims */
    oph_check_f32(&h, "l", 2, OPH_DIMS(2, 5), (const float[]){ 1, 2, 3, 0, 0, 4, 5, 6, 0, 0 }, 0);
    /* reflect excludes the edge: rows map to 1 0 1 0, columns to 2 1 0 1 2 1 0 */
    oph_check_f32(&h, "r", 2, OPH_DIMS(4, 7), (const float[]){ 6, 5, 4, 5, 6, 5, 4,
                                                               3, 2, 1, 2, 3, 2, 1,
                                                               6, 5, 4, 5, 6, 5, 4,
                                                               3, 2, 1, 2, 3, 2, 1 }, 0);
    oph_check_f32(&h, "e", 2, OPH_DIMS(3, 7), (const float[]){ 1, 1, 2, 3, 3, 3, 3,
                                                               1, 1, 2, 3, 3, 3, 3,
                                                               4, 4, 5, 6, 6, 6, 6 }, 0);
    oph_check_bytes(&h, "m", ANML_DTYPE_F16, 1, OPH_DIMS(3),
                    (const uint16_t[]){ 0xFC00, 0x3C00, 0x4000 }, 2);
    /* runtime pads (checked against the declared [3, 4]) */
    oph_check_f32(&h, "d", 2, OPH_DIMS(3, 4), (const float[]){ 0, 1, 2, 3,
                                                               0, 4, 5, 6,
                                                               0, 0, 0, 0 }, 0);
    p[3] = 1;
    expect_run_fail(&h, in, 3, "pad");
    oph_close(&h);
}

static void test_stack(void **state) {
    (void)state;
    const char *mil = HDR("ios18", "tensor<fp32, [2]> a, tensor<fp32, [2]> b, tensor<int32, [1]> i")
        "        tensor<fp32, [2, 2]> s0 = stack(values = (a, b), axis = int32(0))" NM("s0")
        "        tensor<fp32, [2, 2]> s1 = stack(values = (a, b), axis = int32(-1))" NM("s1")
        "        tensor<int32, [3, 1]> s2 = stack(values = (i, i, i), axis = int32(0))" NM("s2")
        END("s0, s1, s2");
    struct oph h;
    oph_open(&h, mil, NULL);
    float a[2] = { 1, 2 }, b[2] = { 3, 4 };
    int32_t i = 7;
    struct anml_named_tensor in[] = {
        oph_in("a", ANML_DTYPE_F32, 1, OPH_DIMS(2), a),
        oph_in("b", ANML_DTYPE_F32, 1, OPH_DIMS(2), b),
        oph_in("i", ANML_DTYPE_INT32, 1, OPH_DIMS(1), &i),
    };
    oph_run(&h, in, 3);
    oph_check_f32(&h, "s0", 2, OPH_DIMS(2, 2), (const float[]){ 1, 2, 3, 4 }, 0);
    oph_check_f32(&h, "s1", 2, OPH_DIMS(2, 2), (const float[]){ 1, 3, 2, 4 }, 0);
    oph_check_int(&h, "s2", ANML_DTYPE_INT32, 2, OPH_DIMS(3, 1), (const int64_t[]){ 7, 7, 7 });
    oph_close(&h);
}

static void test_rank0_and_empty(void **state) {
    (void)state;
    const char *mil = HDR("ios18", "tensor<fp32, []> x")
        "        tensor<int32, [0]> s = shape(x = x)" NM("s")
        "        tensor<fp32, []> f = fill(shape = tensor<int32, [0]>([]), value = fp32(2))" NM("f")
        "        tensor<fp32, [1, 1]> g = flatten2d(x = x, axis = int32(0))" NM("g")
        "        tensor<fp32, [0, 3]> e = fill(shape = tensor<int32, [2]>([0, 3]), value = fp32(2))" NM("e")
        "        tensor<int32, [0, 3]> es = argsort(x = e)" NM("es")
        "        tensor<fp32, [0, 1]> ec = topk(x = e, k = int32(1), return_indices = bool(false))" NM("ec")
        "        tensor<fp32, [0, 4]> ep = pad(x = e, pad = tensor<int32, [2]>([1, 0]), mode = string(\"replicate\"))" NM("ep")
        "        tensor<fp32, [0, 3]> cs = cumsum(x = e, axis = int32(1))" NM("cs")
        END("s, f, g, e, es, ec, ep, cs");
    struct oph h;
    oph_open(&h, mil, NULL);
    float x = 3;
    struct anml_named_tensor in[] = { oph_in("x", ANML_DTYPE_F32, 0, NULL, &x) };
    oph_run(&h, in, 1);
    /* the shape of a scalar is an empty vector */
    oph_out(&h, "s", ANML_DTYPE_INT32, 1, OPH_DIMS(0));
    oph_check_f32(&h, "f", 0, NULL, (const float[]){ 2 }, 0);
    oph_check_f32(&h, "g", 2, OPH_DIMS(1, 1), (const float[]){ 3 }, 0);
    oph_out(&h, "es", ANML_DTYPE_INT32, 2, OPH_DIMS(0, 3));
    oph_out(&h, "ec", ANML_DTYPE_F32, 2, OPH_DIMS(0, 1));
    oph_out(&h, "ep", ANML_DTYPE_F32, 2, OPH_DIMS(0, 4));
    oph_out(&h, "cs", ANML_DTYPE_F32, 2, OPH_DIMS(0, 3));
    oph_close(&h);
}

/* ---- programs that must be rejected at context creation ---- */

static void test_errors(void **state) {
    (void)state;
    oph_expect_fail(HDR("ios18", "tensor<int32, [2]> i")
                    "        tensor<fp16, [2, 4]> z = one_hot(indices = i, one_hot_vector_size = int32(4), on_value = fp16(1), off_value = fp32(0))" NM("z_oh")
                    END("z"),
                    "one_hot 'z_oh'", "share");
    oph_expect_fail(HDR("ios18", "tensor<fp32, [3]> x")
                    "        tensor<fp32, [3]> z = band_part(x = x)" NM("z")
                    END("z"),
                    "band_part", "rank");
    oph_expect_fail(HDR("ios18", "tensor<fp32, [2, 3]> x")
                    "        tensor<fp32, [2, 3]> z = cumsum(x = x, axis = int32(2))" NM("z")
                    END("z"),
                    "cumsum", "axis");
    oph_expect_fail(HDR("ios18", "tensor<fp32, [2, 4]> x")
                    "        tensor<fp32, [2, 5]> v, tensor<int32, [2, 5]> i = topk(x = x, k = int32(5))" NM("z")
                    END("v"),
                    "topk", "k = 5");
    oph_expect_fail(HDR("ios18", "tensor<fp32, [4]> x")
                    "        tensor<fp32, [2]> v = topk(x = x, k = int32(2), return_indices = bool(false), output_indices_dtype = string(\"int32\"))" NM("z")
                    END("v"),
                    "topk", "return_indices");
    oph_expect_fail(HDR("ios18", "tensor<fp32, [4]> x")
                    "        tensor<fp32, [2]> v, tensor<int8, [2]> i = topk(x = x, k = int32(2), output_indices_dtype = string(\"int8\"))" NM("z")
                    END("v"),
                    "topk", "int8");
    oph_expect_fail(HDR("ios16", "tensor<int8, [4]> x")
                    "        tensor<int8, [2]> v, tensor<int32, [2]> i = topk(x = x, k = int32(2))" NM("z")
                    END("v"),
                    "topk", "int8");
    oph_expect_fail(HDR("ios18", "tensor<fp32, [4]> x")
                    "        tensor<fp32, [2]> v = topk(x = x, k = int32(2))" NM("z")
                    END("v"),
                    "topk", "result");
    oph_expect_fail(HDR("ios18", "tensor<fp32, [2, 3]> x")
                    "        tensor<fp32, [2, 9]> z = pad(x = x, pad = tensor<int32, [2]>([3, 3]), mode = string(\"reflect\"))" NM("z")
                    END("z"),
                    "pad", "reflect");
    oph_expect_fail(HDR("ios18", "tensor<fp32, [2, 3]> x")
                    "        tensor<fp32, [2, 5]> z = pad(x = x, pad = tensor<int32, [2]>([1, 1]), mode = string(\"wrap\"))" NM("z")
                    END("z"),
                    "pad", "wrap");
    oph_expect_fail(HDR("ios18", "tensor<fp32, [2, 3]> x")
                    "        tensor<fp32, [2, 3]> z = pad(x = x, pad = tensor<int32, [6]>([0, 0, 0, 0, 0, 0]))" NM("z")
                    END("z"),
                    "pad", "entries");
    oph_expect_fail(HDR("ios18", "tensor<fp32, [2]> a, tensor<fp32, [3]> b")
                    "        tensor<fp32, [2, 2]> z = stack(values = (a, b), axis = int32(0))" NM("z")
                    END("z"),
                    "stack", "values");
    oph_expect_fail(HDR("ios18", "tensor<fp32, [2, 3]> x")
                    "        tensor<int32, [2, 3]> z = argsort(x = x, axis = int32(-3))" NM("z")
                    END("z"),
                    "argsort", "axis");
    oph_expect_fail(HDR("ios18", "tensor<fp32, [2, 3]> x")
                    "        tensor<fp32, [2, 3]> z = reverse(x = x, axes = tensor<int32, [2]>([1, -1]))" NM("z")
                    END("z"),
                    "reverse", "twice");
    oph_expect_fail(HDR("ios18", "tensor<fp32, [2, 3, 4]> x")
                    "        tensor<fp32, [24, 1]> z = flatten2d(x = x, axis = int32(4))" NM("z")
                    END("z"),
                    "flatten2d", "axis");
    oph_expect_fail(HDR("ios18", "tensor<fp32, [2]> x")
                    "        tensor<fp32, [2, 3]> z = fill(shape = tensor<int32, [2]>([2, -3]))" NM("z")
                    END("z"),
                    "fill", "negative");
    oph_expect_fail(HDR("ios18", "tensor<int32, [2]> s")
                    "        tensor<fp32, [?, 3]> z = fill(shape = s)" NM("z")
                    END("z"),
                    "fill", "runtime");
    oph_expect_fail(HDR("ios18", "tensor<int32, [3]> x")
                    "        tensor<int32, [?, 1]> z = non_zero(x = x)" NM("z")
                    END("z"),
                    "non_zero", "runtime");
    oph_expect_fail(HDR("ios18", "tensor<fp32, [2]> x")
                    "        tensor<int32, [0]> z = range_1d(start = int32(0), end = int32(5), step = int32(0))" NM("z")
                    END("z"),
                    "range_1d", "step");
    oph_expect_fail(HDR("ios18", "tensor<fp32, [2]> x")
                    "        tensor<int32, [2]> z = range_1d(start = int32(0), end = fp32(5), step = int32(1))" NM("z")
                    END("z"),
                    "range_1d", "dtype");
}

// clang-format on

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fill),      cmocka_unit_test(test_range_1d),
        cmocka_unit_test(test_band_part), cmocka_unit_test(test_one_hot),
        cmocka_unit_test(test_cumsum),    cmocka_unit_test(test_shape_identity_flatten),
        cmocka_unit_test(test_non_zero),  cmocka_unit_test(test_argsort),
        cmocka_unit_test(test_topk),      cmocka_unit_test(test_topk_ios15_and_int8),
        cmocka_unit_test(test_reverse),   cmocka_unit_test(test_pad),
        cmocka_unit_test(test_stack),     cmocka_unit_test(test_rank0_and_empty),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
