/*
 * test_ops_shape.c -- the shape-manipulation ops (src/ops/shape_ops.c) run as small MIL programs
 * through the public component API, against hand-computed expectations: reshape 0/-1 rules per
 * opset (also with a runtime shape), expand_dims, squeeze, transpose, concat (incl. interleave and
 * one-value tuples), split, tile, sliding_windows, slice_by_index (masks, strides, negative
 * strides, clamping, runtime bounds), slice_by_size, slice_update (the ANEMLL KV-cache write with
 * runtime begin, on a plain tensor and on a state), gather (opset rules for negative indices and
 * index dtypes, batch_dims, clamping, validate_indices, palettized x), gather_along_axis,
 * gather_nd, scatter/scatter_along_axis/scatter_nd, and programs that must be rejected at context
 * creation with a message naming the op.
 */
#include "ophelper.h"
#include "testutil.h"

#define HDR "program(1.3)\n[buildInfo = dict<string, string>({})]\n{\n"

static float g_iota[512];

static void fill_iota(void) {
    for (int i = 0; i < 512; i++) {
        g_iota[i] = (float)i;
    }
}

/* Runs a one-input fp32 program (input "x" of the given shape, values 0, 1, 2, ...). */
static void run_iota(struct oph *h, const char *mil, int32_t rank, const int64_t *shape) {
    fill_iota();
    oph_open(h, mil, NULL);
    struct anml_named_tensor in[] = { oph_in("x", ANML_DTYPE_F32, rank, shape, g_iota) };
    oph_run(h, in, 1);
}

/* ---- reshape ---- */

static void test_reshape_minus_one(void **state) {
    (void)state;
    struct oph h;
    run_iota(&h,
             HDR "  func main<ios18>(tensor<fp32, [2, 3]> x) {\n"
                 "    tensor<int32, [2]> s = const()[name = string(\"s\"), val = tensor<int32, "
                 "[2]>([3, -1])];\n"
                 "    tensor<fp32, [3, 2]> y = reshape(x = x, shape = s)[name = string(\"r\")];\n"
                 "  } -> (y);\n}\n",
             OPH_RANK(2, 3), OPH_DIMS(2, 3));
    const float want[] = { 0, 1, 2, 3, 4, 5 };
    oph_check_f32(&h, "y", OPH_RANK(3, 2), OPH_DIMS(3, 2), want, 0.0f);
    oph_close(&h);
}

static void test_reshape_zero_ios17(void **state) {
    (void)state;
    struct oph h;
    /* iOS17: zeros match x's dims from the right; an unmatched zero becomes 1 (§9.8 example) */
    run_iota(&h,
             HDR "  func main<ios17>(tensor<fp32, [2, 3]> x) {\n"
                 "    tensor<int32, [4]> s = const()[name = string(\"s\"), val = tensor<int32, "
                 "[4]>([1, 0, -1, 0])];\n"
                 "    tensor<fp32, [1, 1, 2, 3]> y = reshape(x = x, shape = s)[name = "
                 "string(\"r\")];\n"
                 "  } -> (y);\n}\n",
             OPH_RANK(2, 3), OPH_DIMS(2, 3));
    const float want[] = { 0, 1, 2, 3, 4, 5 };
    oph_check_f32(&h, "y", OPH_RANK(1, 1, 2, 3), OPH_DIMS(1, 1, 2, 3), want, 0.0f);
    oph_close(&h);
}

static void test_reshape_zero_ios16(void **state) {
    (void)state;
    struct oph h;
    /* iOS16: a zero copies the dim at the same position (only when K == rank) */
    run_iota(&h,
             HDR "  func main<ios16>(tensor<fp32, [2, 3, 2]> x) {\n"
                 "    tensor<int32, [3]> s = const()[name = string(\"s\"), val = tensor<int32, "
                 "[3]>([0, -1, 1])];\n"
                 "    tensor<fp32, [2, 6, 1]> y = reshape(x = x, shape = s)[name = "
                 "string(\"r\")];\n"
                 "  } -> (y);\n}\n",
             OPH_RANK(2, 3, 2), OPH_DIMS(2, 3, 2));
    const float want[] = { 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 };
    oph_check_f32(&h, "y", OPH_RANK(2, 6, 1), OPH_DIMS(2, 6, 1), want, 0.0f);
    oph_close(&h);
    /* the iOS17 example is an error before iOS17 */
    oph_expect_fail(HDR "  func main<ios16>(tensor<fp32, [2, 3]> x) {\n"
                        "    tensor<int32, [4]> s = const()[name = string(\"s\"), val = "
                        "tensor<int32, [4]>([1, 0, -1, 0])];\n"
                        "    tensor<fp32, [1, 1, 2, 3]> y = reshape(x = x, shape = s)[name = "
                        "string(\"r16\")];\n"
                        "  } -> (y);\n}\n",
                    "reshape", "before iOS17");
}

static void test_reshape_errors(void **state) {
    (void)state;
    oph_expect_fail(HDR "  func main<ios18>(tensor<fp32, [2, 3]> x) {\n"
                        "    tensor<int32, [2]> s = const()[name = string(\"s\"), val = "
                        "tensor<int32, [2]>([4, 2])];\n"
                        "    tensor<fp32, [4, 2]> y = reshape(x = x, shape = s)[name = "
                        "string(\"bad_count\")];\n"
                        "  } -> (y);\n}\n",
                    "reshape 'bad_count'", "elements");
    oph_expect_fail(HDR "  func main<ios18>(tensor<fp32, [2, 3]> x) {\n"
                        "    tensor<int32, [2]> s = const()[name = string(\"s\"), val = "
                        "tensor<int32, [2]>([-1, -1])];\n"
                        "    tensor<fp32, [2, 3]> y = reshape(x = x, shape = s)[name = "
                        "string(\"two_minus\")];\n"
                        "  } -> (y);\n}\n",
                    "reshape", "more than one -1");
    oph_expect_fail(HDR "  func main<ios18>(tensor<fp32, [2, 3]> x) {\n"
                        "    tensor<int32, [2]> s = const()[name = string(\"s\"), val = "
                        "tensor<int32, [2]>([-1, 4])];\n"
                        "    tensor<fp32, [2, 4]> y = reshape(x = x, shape = s)[name = "
                        "string(\"indivisible\")];\n"
                        "  } -> (y);\n}\n",
                    "reshape", "-1");
}

static void test_reshape_runtime_shape(void **state) {
    (void)state;
    struct oph h;
    fill_iota();
    oph_open(&h,
             HDR "  func main<ios18>(tensor<fp32, [2, 3]> x, tensor<int32, [3]> s) {\n"
                 "    tensor<fp32, [3, 1, 2]> y = reshape(x = x, shape = s)[name = "
                 "string(\"rt\")];\n"
                 "  } -> (y);\n}\n",
             NULL);
    int32_t s1[3] = { 3, 1, 2 };
    struct anml_named_tensor in[] = {
        oph_in("x", ANML_DTYPE_F32, OPH_RANK(2, 3), OPH_DIMS(2, 3), g_iota),
        oph_in("s", ANML_DTYPE_INT32, OPH_RANK(3), OPH_DIMS(3), s1),
    };
    oph_run(&h, in, 2);
    const float want[] = { 0, 1, 2, 3, 4, 5 };
    oph_check_f32(&h, "y", OPH_RANK(3, 1, 2), OPH_DIMS(3, 1, 2), want, 0.0f);
    /* iOS17+ rules: the 0 at i = 1 copies x.shape[rank - K + i = 0] = 2, and -1 cannot make
     * [-1, 2, 2] hold 6 elements */
    int32_t s2[3] = { -1, 0, 2 };
    in[1].tensor.data = s2;
    assert_int_equal(oph_run_status(&h, in, 2), ANML_E_SHAPE);
    int32_t s3[3] = { 2, 1, 3 }; /* valid count, but not the planned shape */
    in[1].tensor.data = s3;
    assert_int_equal(oph_run_status(&h, in, 2), ANML_E_SHAPE);
    assert_non_null(strstr(anml_context_errmsg(h.ctx), "reshape"));
    int32_t s4[3] = { -1, 1, 2 };
    in[1].tensor.data = s4;
    oph_run(&h, in, 2);
    oph_check_f32(&h, "y", OPH_RANK(3, 1, 2), OPH_DIMS(3, 1, 2), want, 0.0f);
    oph_close(&h);
}

/* ---- expand_dims, squeeze ---- */

static void test_expand_dims_squeeze(void **state) {
    (void)state;
    struct oph h;
    run_iota(&h,
             HDR "  func main<ios18>(tensor<fp32, [2, 3]> x) {\n"
                 "    tensor<int32, [2]> ax = const()[name = string(\"ax\"), val = tensor<int32, "
                 "[2]>([0, -1])];\n"
                 "    tensor<fp32, [1, 2, 3, 1]> e = expand_dims(x = x, axes = ax)[name = "
                 "string(\"e\")];\n"
                 "    tensor<int32, [1]> sq = const()[name = string(\"sq\"), val = tensor<int32, "
                 "[1]>([-1])];\n"
                 "    tensor<fp32, [1, 2, 3]> s1 = squeeze(x = e, axes = sq)[name = "
                 "string(\"s1\")];\n"
                 "    tensor<fp32, [2, 3]> s2 = squeeze(x = e)[name = string(\"s2\")];\n"
                 "    tensor<int32, [2]> keep = const()[name = string(\"keep\"), val = "
                 "tensor<int32, [2]>([1, 0])];\n"
                 "    tensor<fp32, [2, 3, 1]> s3 = squeeze(x = e, axes = keep)[name = "
                 "string(\"s3\")];\n"
                 "  } -> (e, s1, s2, s3);\n}\n",
             OPH_RANK(2, 3), OPH_DIMS(2, 3));
    const float want[] = { 0, 1, 2, 3, 4, 5 };
    oph_check_f32(&h, "e", OPH_RANK(1, 2, 3, 1), OPH_DIMS(1, 2, 3, 1), want, 0.0f);
    oph_check_f32(&h, "s1", OPH_RANK(1, 2, 3), OPH_DIMS(1, 2, 3), want, 0.0f);
    oph_check_f32(&h, "s2", OPH_RANK(2, 3), OPH_DIMS(2, 3), want, 0.0f);
    /* axis 1 (size 2) is silently kept */
    oph_check_f32(&h, "s3", OPH_RANK(2, 3, 1), OPH_DIMS(2, 3, 1), want, 0.0f);
    oph_close(&h);

    /* squeezing a [1] tensor gives a scalar */
    run_iota(&h,
             HDR "  func main<ios18>(tensor<fp32, [1]> x) {\n"
                 "    fp32 y = squeeze(x = x)[name = string(\"s\")];\n"
                 "  } -> (y);\n}\n",
             OPH_RANK(1), OPH_DIMS(1));
    struct anml_tensor t;
    assert_int_equal(anml_context_output(h.ctx, "y", &t), ANML_OK);
    assert_int_equal(t.rank, 0);
    assert_true(((const float *)t.data)[0] == 0.0f);
    oph_close(&h);

    oph_expect_fail(HDR "  func main<ios18>(tensor<fp32, [2, 3]> x) {\n"
                        "    tensor<int32, [1]> ax = const()[name = string(\"ax\"), val = "
                        "tensor<int32, [1]>([3])];\n"
                        "    tensor<fp32, [2, 3, 1]> e = expand_dims(x = x, axes = ax)[name = "
                        "string(\"bad_axis\")];\n"
                        "  } -> (e);\n}\n",
                    "expand_dims 'bad_axis'", "axis 3");
}

/* ---- transpose ---- */

static void test_transpose(void **state) {
    (void)state;
    struct oph h;
    run_iota(&h,
             HDR "  func main<ios18>(tensor<fp32, [2, 3, 4]> x) {\n"
                 "    tensor<int32, [3]> p = const()[name = string(\"p\"), val = tensor<int32, "
                 "[3]>([2, 0, -2])];\n"
                 "    tensor<fp32, [4, 2, 3]> y = transpose(x = x, perm = p)[name = "
                 "string(\"t\")];\n"
                 "  } -> (y);\n}\n",
             OPH_RANK(2, 3, 4), OPH_DIMS(2, 3, 4));
    /* y[i, j, k] = x[j, k, i] = 12 j + 4 k + i */
    float want[24];
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 2; j++) {
            for (int k = 0; k < 3; k++) {
                want[(i * 2 + j) * 3 + k] = (float)(12 * j + 4 * k + i);
            }
        }
    }
    oph_check_f32(&h, "y", OPH_RANK(4, 2, 3), OPH_DIMS(4, 2, 3), want, 0.0f);
    oph_close(&h);

    /* fp16 moves bit patterns untouched (NaN payloads, -0, subnormals) */
    oph_open(&h,
             HDR "  func main<ios18>(tensor<fp16, [2, 3]> x) {\n"
                 "    tensor<int32, [2]> p = const()[name = string(\"p\"), val = tensor<int32, "
                 "[2]>([1, 0])];\n"
                 "    tensor<fp16, [3, 2]> y = transpose(x = x, perm = p)[name = "
                 "string(\"t16\")];\n"
                 "  } -> (y);\n}\n",
             NULL);
    uint16_t xh[6] = { 0x7e01, 0x8000, 0x0001, 0x3c00, 0xfc00, 0x7bff };
    struct anml_named_tensor in[] = {
        oph_in("x", ANML_DTYPE_F16, OPH_RANK(2, 3), OPH_DIMS(2, 3), xh),
    };
    oph_run(&h, in, 1);
    const uint16_t wh[6] = { 0x7e01, 0x3c00, 0x8000, 0xfc00, 0x0001, 0x7bff };
    oph_check_bytes(&h, "y", ANML_DTYPE_F16, OPH_RANK(3, 2), OPH_DIMS(3, 2), wh, 2);
    oph_close(&h);

    oph_expect_fail(HDR "  func main<ios18>(tensor<fp32, [2, 3]> x) {\n"
                        "    tensor<int32, [2]> p = const()[name = string(\"p\"), val = "
                        "tensor<int32, [2]>([1, 1])];\n"
                        "    tensor<fp32, [3, 3]> y = transpose(x = x, perm = p)[name = "
                        "string(\"dup\")];\n"
                        "  } -> (y);\n}\n",
                    "transpose 'dup'", "permutation");
}

/* ---- concat, split ---- */

static void test_concat(void **state) {
    (void)state;
    struct oph h;
    oph_open(&h,
             HDR "  func main<ios18>(tensor<fp32, [2, 2]> a, tensor<fp32, [2, 1]> b, "
                 "tensor<fp32, [2, 2]> c) {\n"
                 "    int32 ax = const()[name = string(\"ax\"), val = int32(-1)];\n"
                 "    tensor<fp32, [2, 3]> y = concat(values = (a, b), axis = ax)[name = "
                 "string(\"cat\")];\n"
                 "    int32 ax0 = const()[name = string(\"ax0\"), val = int32(0)];\n"
                 "    bool il = const()[name = string(\"il\"), val = bool(true)];\n"
                 "    tensor<fp32, [4, 2]> z = concat(values = (a, c), axis = ax0, interleave = "
                 "il)[name = string(\"inter\")];\n"
                 "    int32 ax1 = const()[name = string(\"ax1\"), val = int32(1)];\n"
                 "    tensor<fp32, [2, 4]> w = concat(values = (a, c), axis = ax1, interleave = "
                 "il)[name = string(\"inter1\")];\n"
                 "    tensor<fp32, [2, 2]> one = concat(values = a, axis = ax0)[name = "
                 "string(\"one\")];\n"
                 "    tensor<fp32, [2, 2]> one2 = concat(values = (c), axis = ax1)[name = "
                 "string(\"one2\")];\n"
                 "  } -> (y, z, w, one, one2);\n}\n",
             NULL);
    float a[4] = { 1, 2, 3, 4 }, b[2] = { 5, 6 }, c[4] = { 7, 8, 9, 10 };
    struct anml_named_tensor in[] = {
        oph_in("a", ANML_DTYPE_F32, OPH_RANK(2, 2), OPH_DIMS(2, 2), a),
        oph_in("b", ANML_DTYPE_F32, OPH_RANK(2, 1), OPH_DIMS(2, 1), b),
        oph_in("c", ANML_DTYPE_F32, OPH_RANK(2, 2), OPH_DIMS(2, 2), c),
    };
    oph_run(&h, in, 3);
    const float wy[] = { 1, 2, 5, 3, 4, 6 };
    oph_check_f32(&h, "y", OPH_RANK(2, 3), OPH_DIMS(2, 3), wy, 0.0f);
    /* interleave along 0: a row 0, c row 0, a row 1, c row 1 */
    const float wz[] = { 1, 2, 7, 8, 3, 4, 9, 10 };
    oph_check_f32(&h, "z", OPH_RANK(4, 2), OPH_DIMS(4, 2), wz, 0.0f);
    /* interleave along 1: out[:, 2i + k] = values[k][:, i] */
    const float ww[] = { 1, 7, 2, 8, 3, 9, 4, 10 };
    oph_check_f32(&h, "w", OPH_RANK(2, 4), OPH_DIMS(2, 4), ww, 0.0f);
    oph_check_f32(&h, "one", OPH_RANK(2, 2), OPH_DIMS(2, 2), a, 0.0f);
    oph_check_f32(&h, "one2", OPH_RANK(2, 2), OPH_DIMS(2, 2), c, 0.0f);
    oph_close(&h);

    /* int32 concat of runtime scalars (how ANEMLL builds slice_update bounds) */
    oph_open(&h,
             HDR "  func main<ios18>(tensor<int32, [1]> l, tensor<int32, [1]> p) {\n"
                 "    tensor<int32, [1]> z = const()[name = string(\"z\"), val = tensor<int32, "
                 "[1]>([0])];\n"
                 "    int32 ax = const()[name = string(\"ax\"), val = int32(0)];\n"
                 "    tensor<int32, [4]> b = concat(values = (l, z, p, z), axis = ax)[name = "
                 "string(\"b\")];\n"
                 "  } -> (b);\n}\n",
             NULL);
    int32_t l = 3, p = 7;
    struct anml_named_tensor in2[] = {
        oph_in("l", ANML_DTYPE_INT32, OPH_RANK(1), OPH_DIMS(1), &l),
        oph_in("p", ANML_DTYPE_INT32, OPH_RANK(1), OPH_DIMS(1), &p),
    };
    oph_run(&h, in2, 2);
    const int64_t wb[] = { 3, 0, 7, 0 };
    oph_check_int(&h, "b", ANML_DTYPE_INT32, OPH_RANK(4), OPH_DIMS(4), wb);
    oph_close(&h);
}

static void test_concat_errors(void **state) {
    (void)state;
    oph_expect_fail(HDR "  func main<ios18>(tensor<fp32, [2, 2]> a, tensor<fp32, [3, 1]> b) {\n"
                        "    int32 ax = const()[name = string(\"ax\"), val = int32(1)];\n"
                        "    tensor<fp32, [2, 3]> y = concat(values = (a, b), axis = ax)[name = "
                        "string(\"mism\")];\n"
                        "  } -> (y);\n}\n",
                    "concat 'mism'", "values[1]");
    oph_expect_fail(HDR "  func main<ios18>(tensor<fp32, [2, 2]> a, tensor<fp32, [2, 2]> b) {\n"
                        "    int32 ax = const()[name = string(\"ax\"), val = int32(2)];\n"
                        "    tensor<fp32, [2, 4]> y = concat(values = (a, b), axis = ax)[name = "
                        "string(\"badaxis\")];\n"
                        "  } -> (y);\n}\n",
                    "concat 'badaxis'", "axis 2 out of range");
    oph_expect_fail(HDR "  func main<ios18>(tensor<fp32, [2, 2]> a, tensor<fp16, [2, 2]> b) {\n"
                        "    int32 ax = const()[name = string(\"ax\"), val = int32(0)];\n"
                        "    tensor<fp32, [4, 2]> y = concat(values = (a, b), axis = ax)[name = "
                        "string(\"dt\")];\n"
                        "  } -> (y);\n}\n",
                    "concat 'dt'", "dtype");
    oph_expect_fail(HDR "  func main<ios18>(tensor<fp32, [2, 2]> a, tensor<fp32, [2, 1]> b) {\n"
                        "    int32 ax = const()[name = string(\"ax\"), val = int32(1)];\n"
                        "    bool il = const()[name = string(\"il\"), val = bool(true)];\n"
                        "    tensor<fp32, [2, 3]> y = concat(values = (a, b), axis = ax, "
                        "interleave = il)[name = string(\"il\")];\n"
                        "  } -> (y);\n}\n",
                    "concat 'il'", "interleave");
}

static void test_split(void **state) {
    (void)state;
    struct oph h;
    run_iota(&h,
             HDR "  func main<ios18>(tensor<fp32, [2, 6]> x) {\n"
                 "    int32 ax = const()[name = string(\"ax\"), val = int32(-1)];\n"
                 "    int32 n = const()[name = string(\"n\"), val = int32(3)];\n"
                 "    tensor<fp32, [2, 2]> a, tensor<fp32, [2, 2]> b, tensor<fp32, [2, 2]> c = "
                 "split(x = x, axis = ax, num_splits = n)[name = string(\"sp\")];\n"
                 "    tensor<int32, [2]> ss = const()[name = string(\"ss\"), val = tensor<int32, "
                 "[2]>([1, 5])];\n"
                 "    tensor<fp32, [2, 1]> d, tensor<fp32, [2, 5]> e = split(x = x, axis = ax, "
                 "split_sizes = ss)[name = string(\"sp2\")];\n"
                 "  } -> (a, b, c, d, e);\n}\n",
             OPH_RANK(2, 6), OPH_DIMS(2, 6));
    const float wa[] = { 0, 1, 6, 7 }, wb[] = { 2, 3, 8, 9 }, wc[] = { 4, 5, 10, 11 };
    const float wd[] = { 0, 6 }, we[] = { 1, 2, 3, 4, 5, 7, 8, 9, 10, 11 };
    oph_check_f32(&h, "a", OPH_RANK(2, 2), OPH_DIMS(2, 2), wa, 0.0f);
    oph_check_f32(&h, "b", OPH_RANK(2, 2), OPH_DIMS(2, 2), wb, 0.0f);
    oph_check_f32(&h, "c", OPH_RANK(2, 2), OPH_DIMS(2, 2), wc, 0.0f);
    oph_check_f32(&h, "d", OPH_RANK(2, 1), OPH_DIMS(2, 1), wd, 0.0f);
    oph_check_f32(&h, "e", OPH_RANK(2, 5), OPH_DIMS(2, 5), we, 0.0f);
    oph_close(&h);

    oph_expect_fail(HDR "  func main<ios18>(tensor<fp32, [2, 6]> x) {\n"
                        "    int32 ax = const()[name = string(\"ax\"), val = int32(1)];\n"
                        "    tensor<int32, [2]> ss = const()[name = string(\"ss\"), val = "
                        "tensor<int32, [2]>([2, 5])];\n"
                        "    tensor<fp32, [2, 2]> d, tensor<fp32, [2, 5]> e = split(x = x, axis = "
                        "ax, split_sizes = ss)[name = string(\"badsum\")];\n"
                        "  } -> (d, e);\n}\n",
                    "split 'badsum'", "sum");
}

/* ---- tile, sliding_windows ---- */

static void test_tile(void **state) {
    (void)state;
    struct oph h;
    run_iota(&h,
             HDR "  func main<ios18>(tensor<fp32, [2, 3]> x) {\n"
                 "    tensor<int32, [2]> r1 = const()[name = string(\"r1\"), val = tensor<int32, "
                 "[2]>([2, 1])];\n"
                 "    tensor<fp32, [4, 3]> a = tile(x = x, reps = r1)[name = string(\"t1\")];\n"
                 "    tensor<int32, [2]> r2 = const()[name = string(\"r2\"), val = tensor<int32, "
                 "[2]>([1, 2])];\n"
                 "    tensor<fp32, [2, 6]> b = tile(x = x, reps = r2)[name = string(\"t2\")];\n"
                 "    tensor<int32, [2]> r3 = const()[name = string(\"r3\"), val = tensor<int32, "
                 "[2]>([2, 2])];\n"
                 "    tensor<fp32, [4, 6]> c = tile(x = x, reps = r3)[name = string(\"t3\")];\n"
                 "  } -> (a, b, c);\n}\n",
             OPH_RANK(2, 3), OPH_DIMS(2, 3));
    const float wa[] = { 0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5 };
    const float wb[] = { 0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5 };
    const float wc[] = { 0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5, 0, 1, 2, 0, 1, 2, 3, 4, 5, 3, 4, 5 };
    oph_check_f32(&h, "a", OPH_RANK(4, 3), OPH_DIMS(4, 3), wa, 0.0f);
    oph_check_f32(&h, "b", OPH_RANK(2, 6), OPH_DIMS(2, 6), wb, 0.0f);
    oph_check_f32(&h, "c", OPH_RANK(4, 6), OPH_DIMS(4, 6), wc, 0.0f);
    oph_close(&h);
}

static void test_sliding_windows(void **state) {
    (void)state;
    struct oph h;
    run_iota(&h,
             HDR "  func main<ios18>(tensor<fp32, [2, 5]> x) {\n"
                 "    int32 ax = const()[name = string(\"ax\"), val = int32(1)];\n"
                 "    int32 sz = const()[name = string(\"sz\"), val = int32(2)];\n"
                 "    int32 st = const()[name = string(\"st\"), val = int32(2)];\n"
                 "    tensor<fp32, [2, 2, 2]> y = sliding_windows(x = x, axis = ax, size = sz, "
                 "stride = st)[name = string(\"sw\")];\n"
                 "  } -> (y);\n}\n",
             OPH_RANK(2, 5), OPH_DIMS(2, 5));
    const float want[] = { 0, 1, 2, 3, 5, 6, 7, 8 };
    oph_check_f32(&h, "y", OPH_RANK(2, 2, 2), OPH_DIMS(2, 2, 2), want, 0.0f);
    oph_close(&h);
}

/* ---- slice_by_index ---- */

#define SBI_PROG(opts, oshape)                                                                \
  HDR "  func main<ios18>(tensor<fp32, [3, 4]> x) {\n" opts "    tensor<fp32, " oshape        \
      "> y = slice_by_index(x = x, begin = b, end = e" SBI_ARGS ")[name = string(\"sl\")];\n" \
      "  } -> (y);\n}\n"

static void sbi_case(const char *mil, int32_t rank, const int64_t *shape, const float *want) {
    struct oph h;
    run_iota(&h, mil, OPH_RANK(3, 4), OPH_DIMS(3, 4));
    oph_check_f32(&h, "y", rank, shape, want, 0.0f);
    oph_close(&h);
}

#define B_E(b0, b1, e0, e1)                                                                 \
  "    tensor<int32, [2]> b = const()[name = string(\"b\"), val = tensor<int32, [2]>([" #b0 \
  ", " #b1 "])];\n"                                                                         \
  "    tensor<int32, [2]> e = const()[name = string(\"e\"), val = tensor<int32, [2]>([" #e0 \
  ", " #e1 "])];\n"
#define STRIDE(s0, s1)                                                                      \
  "    tensor<int32, [2]> s = const()[name = string(\"s\"), val = tensor<int32, [2]>([" #s0 \
  ", " #s1 "])];\n"
#define MASK(n, m0, m1)                                        \
  "    tensor<bool, [2]> " #n " = const()[name = string(\"" #n \
  "\"), val = tensor<bool, [2]>([" #m0 ", " #m1 "])];\n"

static void test_slice_by_index(void **state) {
    (void)state;
    /* x[i, j] = 4 i + j */
#define SBI_ARGS ""
    {
        const float w[] = { 4, 5, 6, 7, 8, 9, 10, 11 };
        sbi_case(SBI_PROG(B_E(1, 0, 3, 4), "[2, 4]"), OPH_RANK(2, 4), OPH_DIMS(2, 4), w);
    }
    {
        /* negative begin/end count from the end: rows -2.., cols 1..-1 */
        const float w[] = { 5, 6, 9, 10 };
        sbi_case(SBI_PROG(B_E(-2, 1, 3, -1), "[2, 2]"), OPH_RANK(2, 2), OPH_DIMS(2, 2), w);
    }
#undef SBI_ARGS
#define SBI_ARGS ", stride = s"
    {
        /* negative strides: rows 2, 1; cols 3, 1 */
        const float w[] = { 11, 9, 7, 5 };
        sbi_case(SBI_PROG(B_E(2, 3, 0, 0) STRIDE(-1, -2), "[2, 2]"), OPH_RANK(2, 2), OPH_DIMS(2, 2),
                 w);
    }
    {
        /* Python clamping: begin -10 -> 0, end 100 -> D, stride 2 */
        const float w[] = { 1, 3, 9, 11 };
        sbi_case(SBI_PROG(B_E(-10, 1, 100, 100) STRIDE(2, 2), "[2, 2]"), OPH_RANK(2, 2),
                 OPH_DIMS(2, 2), w);
    }
    {
        /* backwards start beyond the end clamps to D-1; stop -100 clamps to "before 0" (-1) */
        const float w[] = { 11, 10, 9, 8 };
        sbi_case(SBI_PROG(B_E(2, 100, 3, -100) STRIDE(1, -1), "[1, 4]"), OPH_RANK(1, 4),
                 OPH_DIMS(1, 4), w);
    }
#undef SBI_ARGS
#define SBI_ARGS ", stride = s, begin_mask = bm, end_mask = em"
    {
        /* masks: all rows; cols from -1 backwards to the start (end_mask = "before 0") */
        const float w[] = { 3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8 };
        sbi_case(SBI_PROG(B_E(0, -1, 0, 0) STRIDE(1, -1) MASK(bm, true, false) MASK(em, true, true),
                          "[3, 4]"),
                 OPH_RANK(3, 4), OPH_DIMS(3, 4), w);
    }
    {
        /* begin_mask with a negative stride starts at D-1 */
        const float w[] = { 8, 10, 0, 2 };
        sbi_case(SBI_PROG(B_E(0, 0, -4, 3) STRIDE(-2, 2) MASK(bm, true, false)
                              MASK(em, false, false),
                          "[2, 2]"),
                 OPH_RANK(2, 2), OPH_DIMS(2, 2), w);
    }
#undef SBI_ARGS
#define SBI_ARGS ", squeeze_mask = sq"
    {
        /* squeeze_mask picks row 1 and drops the axis */
        const float w[] = { 4, 5, 6, 7 };
        sbi_case(SBI_PROG(B_E(1, 0, 2, 4) MASK(sq, true, false), "[4]"), OPH_RANK(4), OPH_DIMS(4),
                 w);
    }
    {
        /* everything squeezed: a scalar, negative begin counts from the end */
        const float w[] = { 10 };
        struct oph h;
        run_iota(&h,
                 HDR "  func main<ios18>(tensor<fp32, [3, 4]> x) {\n" B_E(-1, 2, 0, 0)
                     MASK(sq, true, true) "    fp32 y = slice_by_index(x = x, begin = b, end = "
                                          "e, squeeze_mask = sq)[name = string(\"sc\")];\n"
                                          "  } -> (y);\n}\n",
                 OPH_RANK(3, 4), OPH_DIMS(3, 4));
        struct anml_tensor t;
        assert_int_equal(anml_context_output(h.ctx, "y", &t), ANML_OK);
        assert_int_equal(t.rank, 0);
        assert_true(((const float *)t.data)[0] == w[0]);
        oph_close(&h);
    }
    oph_expect_fail(SBI_PROG(B_E(3, 0, 4, 4) MASK(sq, true, false), "[4]"), "slice_by_index 'sl'",
                    "squeeze_mask");
#undef SBI_ARGS
}

static void test_slice_by_index_runtime(void **state) {
    (void)state;
    struct oph h;
    fill_iota();
    oph_open(&h,
             HDR "  func main<ios18>(tensor<fp32, [3, 4]> x, tensor<int32, [2]> b, "
                 "tensor<int32, [2]> e) {\n"
                 "    tensor<fp32, [2, 2]> y = slice_by_index(x = x, begin = b, end = e)[name = "
                 "string(\"dyn\")];\n"
                 "  } -> (y);\n}\n",
             NULL);
    int32_t b[2] = { 1, 1 }, e[2] = { 3, 3 };
    struct anml_named_tensor in[] = {
        oph_in("x", ANML_DTYPE_F32, OPH_RANK(3, 4), OPH_DIMS(3, 4), g_iota),
        oph_in("b", ANML_DTYPE_INT32, OPH_RANK(2), OPH_DIMS(2), b),
        oph_in("e", ANML_DTYPE_INT32, OPH_RANK(2), OPH_DIMS(2), e),
    };
    oph_run(&h, in, 3);
    const float w1[] = { 5, 6, 9, 10 };
    oph_check_f32(&h, "y", OPH_RANK(2, 2), OPH_DIMS(2, 2), w1, 0.0f);
    /* clamped at the end but still 2x2: rows 1..2 (end 100 -> 3), cols -2.. */
    b[1] = -2;
    e[0] = 100;
    e[1] = 4;
    oph_run(&h, in, 3);
    const float w2[] = { 6, 7, 10, 11 };
    oph_check_f32(&h, "y", OPH_RANK(2, 2), OPH_DIMS(2, 2), w2, 0.0f);
    /* a runtime slice of another shape fails cleanly */
    b[0] = 0;
    b[1] = 0;
    e[0] = 3;
    e[1] = 3;
    assert_int_equal(oph_run_status(&h, in, 3), ANML_E_SHAPE);
    assert_non_null(strstr(anml_context_errmsg(h.ctx), "slice_by_index"));
    assert_non_null(strstr(anml_context_errmsg(h.ctx), "planned"));
    b[0] = 2; /* clamps to an empty slice */
    e[0] = 1;
    assert_int_equal(oph_run_status(&h, in, 3), ANML_E_SHAPE);
    oph_close(&h);
}

static void test_slice_by_size(void **state) {
    (void)state;
    struct oph h;
    run_iota(&h,
             HDR "  func main<ios18>(tensor<fp32, [3, 4]> x) {\n"
                 "    tensor<int32, [2]> b = const()[name = string(\"b\"), val = tensor<int32, "
                 "[2]>([1, -3])];\n"
                 "    tensor<int32, [2]> s = const()[name = string(\"s\"), val = tensor<int32, "
                 "[2]>([2, -1])];\n"
                 "    tensor<fp32, [2, 3]> y = slice_by_size(x = x, begin = b, size = s)[name = "
                 "string(\"sbs\")];\n"
                 "  } -> (y);\n}\n",
             OPH_RANK(3, 4), OPH_DIMS(3, 4));
    const float want[] = { 5, 6, 7, 9, 10, 11 };
    oph_check_f32(&h, "y", OPH_RANK(2, 3), OPH_DIMS(2, 3), want, 0.0f);
    oph_close(&h);
    oph_expect_fail(HDR "  func main<ios18>(tensor<fp32, [3, 4]> x) {\n"
                        "    tensor<int32, [2]> b = const()[name = string(\"b\"), val = "
                        "tensor<int32, [2]>([2, 0])];\n"
                        "    tensor<int32, [2]> s = const()[name = string(\"s\"), val = "
                        "tensor<int32, [2]>([2, 4])];\n"
                        "    tensor<fp32, [2, 4]> y = slice_by_size(x = x, begin = b, size = "
                        "s)[name = string(\"over\")];\n"
                        "  } -> (y);\n}\n",
                    "slice_by_size 'over'", "axis 0");
}

/* ---- slice_update: the ANEMLL KV-cache write ---- */

static uint16_t g_kv[4 * 2 * 8 * 4];
static uint16_t g_upd[2 * 4];

static void fill_kv(void) {
    for (int i = 0; i < 256; i++) {
        g_kv[i] = (uint16_t)(0x3c00 + i); /* distinct fp16 bit patterns */
    }
    for (int i = 0; i < 8; i++) {
        g_upd[i] = (uint16_t)(0xc000 + i);
    }
}

/* x with [layer, :, pos, :] replaced by the 8 update values (h-major, d-minor). */
static void kv_expect(uint16_t *want, int layer, int pos) {
    memcpy(want, g_kv, sizeof g_kv);
    for (int hh = 0; hh < 2; hh++) {
        for (int d = 0; d < 4; d++) {
            want[((layer * 2 + hh) * 8 + pos) * 4 + d] = g_upd[hh * 4 + d];
        }
    }
}

static void test_slice_update_kv(void **state) {
    (void)state;
    struct oph h;
    fill_kv();
    oph_open(&h,
             HDR "  func main<ios18>(tensor<fp16, [4, 2, 8, 4]> x, tensor<fp16, [1, 2, 1, 4]> u, "
                 "tensor<int32, [1]> layer, tensor<int32, [1]> layer1, tensor<int32, [1]> pos, "
                 "tensor<int32, [1]> pos1) {\n"
                 "    tensor<int32, [1]> z = const()[name = string(\"z\"), val = tensor<int32, "
                 "[1]>([0])];\n"
                 "    tensor<int32, [1]> hh = const()[name = string(\"hh\"), val = tensor<int32, "
                 "[1]>([2])];\n"
                 "    tensor<int32, [1]> dd = const()[name = string(\"dd\"), val = tensor<int32, "
                 "[1]>([4])];\n"
                 "    int32 ax = const()[name = string(\"ax\"), val = int32(0)];\n"
                 "    tensor<int32, [4]> b = concat(values = (layer, z, pos, z), axis = ax)[name "
                 "= string(\"b\")];\n"
                 "    tensor<int32, [4]> e = concat(values = (layer1, hh, pos1, dd), axis = "
                 "ax)[name = string(\"e\")];\n"
                 "    tensor<bool, [4]> m = const()[name = string(\"m\"), val = tensor<bool, "
                 "[4]>([false, false, false, false])];\n"
                 "    tensor<int32, [4]> s = const()[name = string(\"s\"), val = tensor<int32, "
                 "[4]>([1, 1, 1, 1])];\n"
                 "    tensor<fp16, [4, 2, 8, 4]> y = slice_update(begin = b, begin_mask = m, end = "
                 "e, end_mask = m, squeeze_mask = m, stride = s, update = u, x = x)[name = "
                 "string(\"kv_write\")];\n"
                 "  } -> (y);\n}\n",
             NULL);
    int32_t layer = 2, layer1 = 3, pos = 5, pos1 = 6;
    struct anml_named_tensor in[] = {
        oph_in("x", ANML_DTYPE_F16, OPH_RANK(4, 2, 8, 4), OPH_DIMS(4, 2, 8, 4), g_kv),
        oph_in("u", ANML_DTYPE_F16, OPH_RANK(1, 2, 1, 4), OPH_DIMS(1, 2, 1, 4), g_upd),
        oph_in("layer", ANML_DTYPE_INT32, OPH_RANK(1), OPH_DIMS(1), &layer),
        oph_in("layer1", ANML_DTYPE_INT32, OPH_RANK(1), OPH_DIMS(1), &layer1),
        oph_in("pos", ANML_DTYPE_INT32, OPH_RANK(1), OPH_DIMS(1), &pos),
        oph_in("pos1", ANML_DTYPE_INT32, OPH_RANK(1), OPH_DIMS(1), &pos1),
    };
    uint16_t want[256];
    oph_run(&h, in, 6);
    kv_expect(want, 2, 5);
    oph_check_bytes(&h, "y", ANML_DTYPE_F16, OPH_RANK(4, 2, 8, 4), OPH_DIMS(4, 2, 8, 4), want, 2);
    /* the input itself is untouched */
    assert_int_equal(g_kv[((2 * 2 + 0) * 8 + 5) * 4], 0x3c00 + ((2 * 2 + 0) * 8 + 5) * 4);
    /* last layer, last position */
    layer = 3;
    layer1 = 4;
    pos = 7;
    pos1 = 8;
    oph_run(&h, in, 6);
    kv_expect(want, 3, 7);
    oph_check_bytes(&h, "y", ANML_DTYPE_F16, OPH_RANK(4, 2, 8, 4), OPH_DIMS(4, 2, 8, 4), want, 2);
    /* out of range: begin clamps, the slice gets empty and no longer matches the update */
    pos = 8;
    pos1 = 9;
    assert_int_equal(oph_run_status(&h, in, 6), ANML_E_SHAPE);
    assert_non_null(strstr(anml_context_errmsg(h.ctx), "slice_update"));
    /* a negative position counts from the end (-1 -> 7) */
    pos = -1;
    pos1 = 8;
    oph_run(&h, in, 6);
    kv_expect(want, 3, 7);
    oph_check_bytes(&h, "y", ANML_DTYPE_F16, OPH_RANK(4, 2, 8, 4), OPH_DIMS(4, 2, 8, 4), want, 2);
    /* a two-row slice for a one-row update */
    pos = 2;
    pos1 = 4;
    assert_int_equal(oph_run_status(&h, in, 6), ANML_E_SHAPE);
    oph_close(&h);
}

static void test_slice_update_state_squeeze(void **state) {
    (void)state;
    struct oph h;
    fill_kv();
    /* on a state (read_state -> slice_update -> write_state), with int16 bounds and squeezed
     * layer/position axes: update [2, 4] */
    oph_open(&h,
             HDR "  func main<ios18>(tensor<fp16, [2, 4]> u, tensor<int16, [4]> b, "
                 "tensor<int16, [4]> e, state<tensor<fp16, [4, 2, 8, 4]>> cache) {\n"
                 "    tensor<fp16, [4, 2, 8, 4]> kv = read_state(input = cache)[name = "
                 "string(\"rd\")];\n"
                 "    tensor<bool, [4]> sq = const()[name = string(\"sq\"), val = tensor<bool, "
                 "[4]>([true, false, true, false])];\n"
                 "    tensor<fp16, [4, 2, 8, 4]> kv2 = slice_update(x = kv, update = u, begin = b, "
                 "end = e, squeeze_mask = sq)[name = string(\"upd\")];\n"
                 "    write_state(data = kv2, input = cache)[name = string(\"wr\")];\n"
                 "    tensor<fp16, [4, 2, 8, 4]> kv3 = read_state(input = cache)[name = "
                 "string(\"rd2\")];\n"
                 "  } -> (kv3);\n}\n",
             NULL);
    struct anml_state *st = oph_state(&h, NULL);
    struct anml_tensor view;
    assert_int_equal(anml_state_find(st, "cache", &view), ANML_OK);
    memcpy(view.data, g_kv, sizeof g_kv);
    int16_t b[4] = { 1, 0, 6, 0 }, e[4] = { 2, 2, 7, 4 };
    struct anml_named_tensor in[] = {
        oph_in("u", ANML_DTYPE_F16, OPH_RANK(2, 4), OPH_DIMS(2, 4), g_upd),
        oph_in("b", ANML_DTYPE_INT16, OPH_RANK(4), OPH_DIMS(4), b),
        oph_in("e", ANML_DTYPE_INT16, OPH_RANK(4), OPH_DIMS(4), e),
    };
    oph_run(&h, in, 3);
    uint16_t want[256];
    kv_expect(want, 1, 6);
    oph_check_bytes(&h, "kv3", ANML_DTYPE_F16, OPH_RANK(4, 2, 8, 4), OPH_DIMS(4, 2, 8, 4), want, 2);
    assert_int_equal(memcmp(view.data, want, sizeof want), 0);
    /* a squeezed index out of range is an error, the state stays as it was */
    b[0] = 4;
    assert_int_equal(oph_run_status(&h, in, 3), ANML_E_SHAPE);
    assert_int_equal(memcmp(view.data, want, sizeof want), 0);
    oph_close(&h);

    oph_expect_fail(HDR "  func main<ios18>(tensor<fp16, [4, 8]> x, tensor<fp16, [2, 8]> u) {\n"
                        "    tensor<int32, [2]> b = const()[name = string(\"b\"), val = "
                        "tensor<int32, [2]>([0, 0])];\n"
                        "    tensor<int32, [2]> e = const()[name = string(\"e\"), val = "
                        "tensor<int32, [2]>([3, 8])];\n"
                        "    tensor<fp16, [4, 8]> y = slice_update(x = x, update = u, begin = b, "
                        "end = e)[name = string(\"badupd\")];\n"
                        "  } -> (y);\n}\n",
                    "slice_update 'badupd'", "update");
}

/* ---- gather family ---- */

#define GATHER_PROG(opset)                                                         \
  HDR "  func main<" opset ">(tensor<fp32, [4, 3]> x, tensor<int32, [3]> i) {\n"   \
      "    int32 ax = const()[name = string(\"ax\"), val = int32(0)];\n"           \
      "    tensor<fp32, [3, 3]> y = gather(x = x, indices = i, axis = ax)[name = " \
      "string(\"g\")];\n"                                                          \
      "  } -> (y);\n}\n"

static void test_gather(void **state) {
    (void)state;
    struct oph h;
    /* iOS18: negative indices are out of range and clamp to 0; 7 clamps to 3 */
    fill_iota();
    int32_t idx[3] = { 3, -1, 7 };
    struct anml_named_tensor in[] = {
        oph_in("x", ANML_DTYPE_F32, OPH_RANK(4, 3), OPH_DIMS(4, 3), g_iota),
        oph_in("i", ANML_DTYPE_INT32, OPH_RANK(3), OPH_DIMS(3), idx),
    };
    oph_open(&h, GATHER_PROG("ios18"), NULL);
    oph_run(&h, in, 2);
    const float w18[] = { 9, 10, 11, 0, 1, 2, 9, 10, 11 };
    oph_check_f32(&h, "y", OPH_RANK(3, 3), OPH_DIMS(3, 3), w18, 0.0f);
    oph_close(&h);
    /* iOS16: -1 means the last row */
    oph_open(&h, GATHER_PROG("ios16"), NULL);
    oph_run(&h, in, 2);
    const float w16[] = { 9, 10, 11, 9, 10, 11, 9, 10, 11 };
    oph_check_f32(&h, "y", OPH_RANK(3, 3), OPH_DIMS(3, 3), w16, 0.0f);
    oph_close(&h);

    /* negative axis, scalar index */
    run_iota(&h,
             HDR "  func main<ios18>(tensor<fp32, [2, 3]> x) {\n"
                 "    tensor<int32, [2]> i = const()[name = string(\"i\"), val = tensor<int32, "
                 "[2]>([2, 0])];\n"
                 "    int32 ax = const()[name = string(\"ax\"), val = int32(-1)];\n"
                 "    tensor<fp32, [2, 2]> y = gather(x = x, indices = i, axis = ax)[name = "
                 "string(\"g1\")];\n"
                 "    int32 one = const()[name = string(\"one\"), val = int32(1)];\n"
                 "    int32 ax0 = const()[name = string(\"ax0\"), val = int32(0)];\n"
                 "    tensor<fp32, [3]> z = gather(x = x, indices = one, axis = ax0)[name = "
                 "string(\"g2\")];\n"
                 "  } -> (y, z);\n}\n",
             OPH_RANK(2, 3), OPH_DIMS(2, 3));
    const float wy[] = { 2, 0, 5, 3 }, wz[] = { 3, 4, 5 };
    oph_check_f32(&h, "y", OPH_RANK(2, 2), OPH_DIMS(2, 2), wy, 0.0f);
    oph_check_f32(&h, "z", OPH_RANK(3), OPH_DIMS(3), wz, 0.0f);
    oph_close(&h);
}

static void test_gather_batch_dims_and_dtypes(void **state) {
    (void)state;
    struct oph h;
    /* x[b, r, c] = 6 b + 2 r + c; out[b, i, :] = x[b, idx[b, i], :] */
    run_iota(&h,
             HDR "  func main<ios17>(tensor<fp32, [2, 3, 2]> x) {\n"
                 "    tensor<int8, [2, 2]> i = const()[name = string(\"i\"), val = tensor<int8, "
                 "[2, 2]>([[0, 2], [1, 1]])];\n"
                 "    int32 ax = const()[name = string(\"ax\"), val = int32(1)];\n"
                 "    int32 bd = const()[name = string(\"bd\"), val = int32(1)];\n"
                 "    tensor<fp32, [2, 2, 2]> y = gather(x = x, indices = i, axis = ax, batch_dims "
                 "= bd)[name = string(\"gb\")];\n"
                 "  } -> (y);\n}\n",
             OPH_RANK(2, 3, 2), OPH_DIMS(2, 3, 2));
    const float want[] = { 0, 1, 4, 5, 8, 9, 8, 9 };
    oph_check_f32(&h, "y", OPH_RANK(2, 2, 2), OPH_DIMS(2, 2, 2), want, 0.0f);
    oph_close(&h);

    /* index dtypes per opset: uint16 is iOS16+, int8 is iOS17+ */
    oph_expect_fail(HDR "  func main<ios15>(tensor<fp32, [4, 3]> x, tensor<uint16, [2]> i) {\n"
                        "    int32 ax = const()[name = string(\"ax\"), val = int32(0)];\n"
                        "    tensor<fp32, [2, 3]> y = gather(x = x, indices = i, axis = ax)[name = "
                        "string(\"u16\")];\n"
                        "  } -> (y);\n}\n",
                    "gather 'u16'", "uint16");
    oph_expect_fail(HDR "  func main<ios16>(tensor<fp32, [4, 3]> x, tensor<int8, [2]> i) {\n"
                        "    int32 ax = const()[name = string(\"ax\"), val = int32(0)];\n"
                        "    tensor<fp32, [2, 3]> y = gather(x = x, indices = i, axis = ax)[name = "
                        "string(\"i8\")];\n"
                        "  } -> (y);\n}\n",
                    "gather 'i8'", "int8");
    oph_expect_fail(HDR "  func main<ios18>(tensor<fp32, [2, 3]> x, tensor<int32, [3, 2]> i) {\n"
                        "    int32 ax = const()[name = string(\"ax\"), val = int32(1)];\n"
                        "    int32 bd = const()[name = string(\"bd\"), val = int32(1)];\n"
                        "    tensor<fp32, [2, 2]> y = gather(x = x, indices = i, axis = ax, "
                        "batch_dims = bd)[name = string(\"bdm\")];\n"
                        "  } -> (y);\n}\n",
                    "gather 'bdm'", "batch dim 0");
    oph_expect_fail(HDR "  func main<ios18>(tensor<fp32, [2, 3]> x, tensor<int32, [2]> i) {\n"
                        "    int32 ax = const()[name = string(\"ax\"), val = int32(2)];\n"
                        "    tensor<fp32, [2, 2]> y = gather(x = x, indices = i, axis = ax)[name = "
                        "string(\"gax\")];\n"
                        "  } -> (y);\n}\n",
                    "gather 'gax'", "axis 2");
}

static void test_gather_validate_and_fp16_embedding(void **state) {
    (void)state;
    struct oph h;
    /* an fp16 embedding table [V = 5, H = 2] and token ids [1, 3] (the ANEMLL embeddings op) */
    oph_open(&h,
             HDR "  func main<ios18>(tensor<int32, [1, 3]> ids) {\n"
                 "    tensor<fp16, [5, 2]> w = const()[name = string(\"w\"), val = tensor<fp16, "
                 "[5, 2]>([[0x0p+0, 0x1p+0], [0x1p+1, 0x1.8p+1], [0x1p+2, 0x1.4p+2], [0x1.8p+2, "
                 "0x1.cp+2], [0x1p+3, -0x1p-24]])];\n"
                 "    int32 ax = const()[name = string(\"ax\"), val = int32(0)];\n"
                 "    bool v = const()[name = string(\"v\"), val = bool(true)];\n"
                 "    tensor<fp16, [1, 3, 2]> y = gather(x = w, indices = ids, axis = ax, "
                 "validate_indices = v)[name = string(\"emb\")];\n"
                 "  } -> (y);\n}\n",
             NULL);
    int32_t ids[3] = { 4, 0, 2 };
    struct anml_named_tensor in[] = {
        oph_in("ids", ANML_DTYPE_INT32, OPH_RANK(1, 3), OPH_DIMS(1, 3), ids),
    };
    oph_run(&h, in, 1);
    const uint16_t want[] = { 0x4800, 0x8001, 0x0000, 0x3c00, 0x4400, 0x4500 };
    oph_check_bytes(&h, "y", ANML_DTYPE_F16, OPH_RANK(1, 3, 2), OPH_DIMS(1, 3, 2), want, 2);
    /* validate_indices = true: an out-of-range id is an error, not a clamp */
    ids[1] = 5;
    assert_int_equal(oph_run_status(&h, in, 1), ANML_E_SHAPE);
    assert_non_null(strstr(anml_context_errmsg(h.ctx), "gather 'emb'"));
    ids[1] = -1; /* iOS17+: negative is out of range too */
    assert_int_equal(oph_run_status(&h, in, 1), ANML_E_SHAPE);
    oph_close(&h);
}

static void test_gather_lut(void **state) {
    (void)state;
    struct oph h;
    /* A palettized [4, 2] table: rows 0-1 use table 0 {1, 2, 3, 4}, rows 2-3 table 1
     * {-1, -2, -3, -4} (lut shape [2, 1, 4, 1]: one table per group of two rows). */
    oph_open(&h,
             HDR "  func main<ios18>(tensor<int32, [3]> ids) {\n"
                 "    tensor<fp16, [4, 2]> w = constexpr_lut_to_dense(indices = tensor<uint2, [4, "
                 "2]>([[0, 1], [2, 3], [3, 2], [1, 0]]), lut = tensor<fp16, [2, 1, 4, "
                 "1]>([[[[0x1p+0], [0x1p+1], [0x1.8p+1], [0x1p+2]]], [[[-0x1p+0], [-0x1p+1], "
                 "[-0x1.8p+1], [-0x1p+2]]]]))[name = string(\"w\")];\n"
                 "    int32 ax = const()[name = string(\"ax\"), val = int32(0)];\n"
                 "    tensor<fp16, [3, 2]> y = gather(x = w, indices = ids, axis = ax)[name = "
                 "string(\"lutg\")];\n"
                 "    int32 ax1 = const()[name = string(\"ax1\"), val = int32(1)];\n"
                 "    tensor<fp16, [4, 3]> z = gather(x = w, indices = ids, axis = ax1)[name = "
                 "string(\"lutg1\")];\n"
                 "  } -> (y, z);\n}\n",
             NULL);
    int32_t ids[3] = { 2, 1, 3 };
    struct anml_named_tensor in[] = {
        oph_in("ids", ANML_DTYPE_INT32, OPH_RANK(3), OPH_DIMS(3), ids),
    };
    /* axis 1 with ids 2, 1, 3: 2 and 3 clamp to column 1 */
    oph_run(&h, in, 1);
    /* dense w = [[1, 2], [3, 4], [-4, -3], [-2, -1]] */
    const float wy[] = { -4, -3, 3, 4, -2, -1 };
    oph_check_f16(&h, "y", OPH_RANK(3, 2), OPH_DIMS(3, 2), wy, 0.0f);
    const float wz[] = { 2, 2, 2, 4, 4, 4, -3, -3, -3, -1, -1, -1 };
    oph_check_f16(&h, "z", OPH_RANK(4, 3), OPH_DIMS(4, 3), wz, 0.0f);
    oph_close(&h);
}

static void test_gather_along_axis_and_nd(void **state) {
    (void)state;
    struct oph h;
    run_iota(&h,
             HDR
             "  func main<ios18>(tensor<fp32, [2, 3]> x) {\n"
             "    tensor<int32, [2, 2]> i = const()[name = string(\"i\"), val = tensor<int32, "
             "[2, 2]>([[2, 0], [1, 1]])];\n"
             "    int32 ax = const()[name = string(\"ax\"), val = int32(1)];\n"
             "    tensor<fp32, [2, 2]> a = gather_along_axis(x = x, indices = i, axis = "
             "ax)[name = string(\"gaa\")];\n"
             "    tensor<int32, [1, 3]> i0 = const()[name = string(\"i0\"), val = "
             "tensor<int32, [1, 3]>([[1, 0, 1]])];\n"
             "    int32 ax0 = const()[name = string(\"ax0\"), val = int32(0)];\n"
             "    tensor<fp32, [1, 3]> a0 = gather_along_axis(x = x, indices = i0, axis = "
             "ax0)[name = string(\"gaa0\")];\n"
             "    tensor<int32, [2, 2]> n = const()[name = string(\"n\"), val = tensor<int32, "
             "[2, 2]>([[1, 2], [0, 0]])];\n"
             "    tensor<fp32, [2]> b = gather_nd(x = x, indices = n)[name = string(\"gnd\")];\n"
             "    tensor<int32, [2, 1]> n1 = const()[name = string(\"n1\"), val = "
             "tensor<int32, [2, 1]>([[1], [0]])];\n"
             "    tensor<fp32, [2, 3]> c = gather_nd(x = x, indices = n1)[name = "
             "string(\"gnd1\")];\n"
             "  } -> (a, a0, b, c);\n}\n",
             OPH_RANK(2, 3), OPH_DIMS(2, 3));
    const float wa[] = { 2, 0, 4, 4 }, wa0[] = { 3, 1, 5 }, wb[] = { 5, 0 };
    const float wc[] = { 3, 4, 5, 0, 1, 2 };
    oph_check_f32(&h, "a", OPH_RANK(2, 2), OPH_DIMS(2, 2), wa, 0.0f);
    oph_check_f32(&h, "a0", OPH_RANK(1, 3), OPH_DIMS(1, 3), wa0, 0.0f);
    oph_check_f32(&h, "b", OPH_RANK(2), OPH_DIMS(2), wb, 0.0f);
    oph_check_f32(&h, "c", OPH_RANK(2, 3), OPH_DIMS(2, 3), wc, 0.0f);
    oph_close(&h);

    /* gather_nd with batch_dims: out[b, q] = x[b, idx[b, q, 0]] */
    run_iota(&h,
             HDR "  func main<ios18>(tensor<fp32, [2, 3]> x) {\n"
                 "    tensor<int32, [2, 2, 1]> n = const()[name = string(\"n\"), val = "
                 "tensor<int32, [2, 2, 1]>([[[2], [0]], [[1], [1]]])];\n"
                 "    int32 bd = const()[name = string(\"bd\"), val = int32(1)];\n"
                 "    tensor<fp32, [2, 2]> y = gather_nd(x = x, indices = n, batch_dims = "
                 "bd)[name = string(\"gndb\")];\n"
                 "  } -> (y);\n}\n",
             OPH_RANK(2, 3), OPH_DIMS(2, 3));
    const float wy[] = { 2, 0, 4, 4 };
    oph_check_f32(&h, "y", OPH_RANK(2, 2), OPH_DIMS(2, 2), wy, 0.0f);
    oph_close(&h);

    oph_expect_fail(HDR "  func main<ios18>(tensor<fp32, [2, 3]> x) {\n"
                        "    tensor<int32, [3, 2]> i = const()[name = string(\"i\"), val = "
                        "tensor<int32, [3, 2]>([[0, 0], [0, 0], [0, 0]])];\n"
                        "    int32 ax = const()[name = string(\"ax\"), val = int32(1)];\n"
                        "    tensor<fp32, [3, 2]> a = gather_along_axis(x = x, indices = i, axis = "
                        "ax)[name = string(\"gaab\")];\n"
                        "  } -> (a);\n}\n",
                    "gather_along_axis 'gaab'", "indices shape");
}

/* ---- scatter family ---- */

static void test_scatter(void **state) {
    (void)state;
    struct oph h;
    run_iota(&h,
             HDR "  func main<ios18>(tensor<fp32, [3, 2]> x) {\n"
                 "    tensor<int32, [2]> i = const()[name = string(\"i\"), val = tensor<int32, "
                 "[2]>([2, 0])];\n"
                 "    tensor<fp32, [2, 2]> u = const()[name = string(\"u\"), val = tensor<fp32, "
                 "[2, 2]>([[10, 20], [30, 40]])];\n"
                 "    int32 ax = const()[name = string(\"ax\"), val = int32(0)];\n"
                 "    string add = const()[name = string(\"add\"), val = string(\"add\")];\n"
                 "    string upd = const()[name = string(\"upd\"), val = string(\"update\")];\n"
                 "    string mul = const()[name = string(\"mul\"), val = string(\"mul\")];\n"
                 "    tensor<fp32, [3, 2]> a = scatter(data = x, indices = i, updates = u, axis = "
                 "ax, mode = add)[name = string(\"sa\")];\n"
                 "    tensor<fp32, [3, 2]> b = scatter(data = x, indices = i, updates = u, axis = "
                 "ax, mode = upd)[name = string(\"su\")];\n"
                 "    tensor<fp32, [3, 2]> c = scatter(data = x, indices = i, updates = u, axis = "
                 "ax, mode = mul)[name = string(\"sm\")];\n"
                 "  } -> (a, b, c);\n}\n",
             OPH_RANK(3, 2), OPH_DIMS(3, 2));
    /* x = [[0, 1], [2, 3], [4, 5]]; row 2 gets u[0], row 0 gets u[1] */
    const float wa[] = { 30, 41, 2, 3, 14, 25 };
    const float wb[] = { 30, 40, 2, 3, 10, 20 };
    const float wc[] = { 0, 40, 2, 3, 40, 100 };
    oph_check_f32(&h, "a", OPH_RANK(3, 2), OPH_DIMS(3, 2), wa, 0.0f);
    oph_check_f32(&h, "b", OPH_RANK(3, 2), OPH_DIMS(3, 2), wb, 0.0f);
    oph_check_f32(&h, "c", OPH_RANK(3, 2), OPH_DIMS(3, 2), wc, 0.0f);
    oph_close(&h);
}

static void test_scatter_along_axis_and_nd(void **state) {
    (void)state;
    struct oph h;
    run_iota(&h,
             HDR
             "  func main<ios18>(tensor<fp32, [3, 2]> x) {\n"
             "    tensor<int32, [3, 2]> i = const()[name = string(\"i\"), val = tensor<int32, "
             "[3, 2]>([[1, 0], [1, 1], [0, 1]])];\n"
             "    tensor<fp32, [3, 2]> u = const()[name = string(\"u\"), val = tensor<fp32, "
             "[3, 2]>([[5, -1], [2, 9], [-7, 7]])];\n"
             "    int32 ax = const()[name = string(\"ax\"), val = int32(1)];\n"
             "    string mx = const()[name = string(\"mx\"), val = string(\"max\")];\n"
             "    string sub = const()[name = string(\"sub\"), val = string(\"sub\")];\n"
             "    tensor<fp32, [3, 2]> a = scatter_along_axis(data = x, indices = i, updates "
             "= u, axis = ax, mode = mx)[name = string(\"saa\")];\n"
             "    tensor<int32, [3, 2]> n = const()[name = string(\"n\"), val = tensor<int32, "
             "[3, 2]>([[0, 1], [2, 0], [0, 1]])];\n"
             "    tensor<fp32, [3]> v = const()[name = string(\"v\"), val = tensor<fp32, "
             "[3]>([10, 20, 30])];\n"
             "    tensor<fp32, [3, 2]> b = scatter_nd(data = x, indices = n, updates = v, mode "
             "= sub)[name = string(\"snd\")];\n"
             "    tensor<int32, [1, 1]> r = const()[name = string(\"r\"), val = tensor<int32, "
             "[1, 1]>([[1]])];\n"
             "    tensor<fp32, [1, 2]> rv = const()[name = string(\"rv\"), val = "
             "tensor<fp32, [1, 2]>([[8, 9]])];\n"
             "    string upd = const()[name = string(\"upd\"), val = string(\"update\")];\n"
             "    tensor<fp32, [3, 2]> c = scatter_nd(data = x, indices = r, updates = rv, mode "
             "= upd)[name = string(\"snd1\")];\n"
             "  } -> (a, b, c);\n}\n",
             OPH_RANK(3, 2), OPH_DIMS(3, 2));
    /* x = [[0, 1], [2, 3], [4, 5]]
     * along axis 1, max: row 0: x[0,1] = max(1, 5), x[0,0] = max(0, -1); row 1: both to col 1:
     * max(3, 2, 9) = 9; row 2: x[2,0] = max(4, -7), x[2,1] = max(5, 7) */
    const float wa[] = { 0, 5, 2, 9, 4, 7 };
    /* scatter_nd sub: [0,1] -= 10 and again -= 30 (duplicates accumulate), [2,0] -= 20 */
    const float wb[] = { 0, -39, 2, 3, -16, 5 };
    const float wc[] = { 0, 1, 8, 9, 4, 5 };
    oph_check_f32(&h, "a", OPH_RANK(3, 2), OPH_DIMS(3, 2), wa, 0.0f);
    oph_check_f32(&h, "b", OPH_RANK(3, 2), OPH_DIMS(3, 2), wb, 0.0f);
    oph_check_f32(&h, "c", OPH_RANK(3, 2), OPH_DIMS(3, 2), wc, 0.0f);
    oph_close(&h);

    /* int32 data: min / div, and an out-of-range index is skipped */
    oph_open(&h,
             HDR "  func main<ios18>(tensor<int32, [4]> x, tensor<int32, [3]> i) {\n"
                 "    tensor<int32, [3]> u = const()[name = string(\"u\"), val = tensor<int32, "
                 "[3]>([-3, 2, 5])];\n"
                 "    int32 ax = const()[name = string(\"ax\"), val = int32(0)];\n"
                 "    string mn = const()[name = string(\"mn\"), val = string(\"min\")];\n"
                 "    string dv = const()[name = string(\"dv\"), val = string(\"div\")];\n"
                 "    tensor<int32, [4]> a = scatter(data = x, indices = i, updates = u, axis = "
                 "ax, mode = mn)[name = string(\"smin\")];\n"
                 "    tensor<int32, [4]> b = scatter(data = x, indices = i, updates = u, axis = "
                 "ax, mode = dv)[name = string(\"sdiv\")];\n"
                 "  } -> (a, b);\n}\n",
             NULL);
    int32_t x[4] = { 10, 20, 30, 40 }, idx[3] = { 1, 3, 9 };
    struct anml_named_tensor in[] = {
        oph_in("x", ANML_DTYPE_INT32, OPH_RANK(4), OPH_DIMS(4), x),
        oph_in("i", ANML_DTYPE_INT32, OPH_RANK(3), OPH_DIMS(3), idx),
    };
    oph_run(&h, in, 2);
    const int64_t wmin[] = { 10, -3, 30, 2 }, wdiv[] = { 10, -6, 30, 20 };
    oph_check_int(&h, "a", ANML_DTYPE_INT32, OPH_RANK(4), OPH_DIMS(4), wmin);
    oph_check_int(&h, "b", ANML_DTYPE_INT32, OPH_RANK(4), OPH_DIMS(4), wdiv);
    oph_close(&h);

    oph_expect_fail(HDR "  func main<ios18>(tensor<fp32, [3, 2]> x) {\n"
                        "    tensor<int32, [2]> i = const()[name = string(\"i\"), val = "
                        "tensor<int32, [2]>([0, 1])];\n"
                        "    tensor<fp32, [3, 2]> u = const()[name = string(\"u\"), val = "
                        "tensor<fp32, [3, 2]>([[0, 0], [0, 0], [0, 0]])];\n"
                        "    int32 ax = const()[name = string(\"ax\"), val = int32(0)];\n"
                        "    tensor<fp32, [3, 2]> a = scatter(data = x, indices = i, updates = u, "
                        "axis = ax)[name = string(\"sbad\")];\n"
                        "  } -> (a);\n}\n",
                    "scatter 'sbad'", "updates");
}

/* ---- bit-exact moves of other dtypes ---- */

static void test_dtypes(void **state) {
    (void)state;
    struct oph h;
    oph_open(&h,
             HDR "  func main<ios18>(tensor<bool, [2, 3]> a, tensor<uint8, [2, 3]> b, "
                 "tensor<int16, [2, 3]> c) {\n"
                 "    tensor<int32, [2]> p = const()[name = string(\"p\"), val = tensor<int32, "
                 "[2]>([1, 0])];\n"
                 "    tensor<bool, [3, 2]> ta = transpose(x = a, perm = p)[name = "
                 "string(\"ta\")];\n"
                 "    tensor<int32, [2]> b0 = const()[name = string(\"b0\"), val = tensor<int32, "
                 "[2]>([0, 1])];\n"
                 "    tensor<int32, [2]> e0 = const()[name = string(\"e0\"), val = tensor<int32, "
                 "[2]>([2, 3])];\n"
                 "    tensor<uint8, [2, 2]> sb = slice_by_index(x = b, begin = b0, end = e0)[name "
                 "= string(\"sb\")];\n"
                 "    int32 ax = const()[name = string(\"ax\"), val = int32(0)];\n"
                 "    tensor<int16, [4, 3]> cc = concat(values = (c, c), axis = ax)[name = "
                 "string(\"cc\")];\n"
                 "  } -> (ta, sb, cc);\n}\n",
             NULL);
    uint8_t a[6] = { 1, 0, 0, 1, 1, 0 }, b[6] = { 0, 255, 7, 128, 9, 1 };
    int16_t c[6] = { -32768, 32767, -1, 0, 1, 2 };
    struct anml_named_tensor in[] = {
        oph_in("a", ANML_DTYPE_BOOL, OPH_RANK(2, 3), OPH_DIMS(2, 3), a),
        oph_in("b", ANML_DTYPE_UINT8, OPH_RANK(2, 3), OPH_DIMS(2, 3), b),
        oph_in("c", ANML_DTYPE_INT16, OPH_RANK(2, 3), OPH_DIMS(2, 3), c),
    };
    oph_run(&h, in, 3);
    const int64_t wa[] = { 1, 1, 0, 1, 0, 0 }, wb[] = { 255, 7, 9, 1 };
    const int64_t wc[] = { -32768, 32767, -1, 0, 1, 2, -32768, 32767, -1, 0, 1, 2 };
    oph_check_int(&h, "ta", ANML_DTYPE_BOOL, OPH_RANK(3, 2), OPH_DIMS(3, 2), wa);
    oph_check_int(&h, "sb", ANML_DTYPE_UINT8, OPH_RANK(2, 2), OPH_DIMS(2, 2), wb);
    oph_check_int(&h, "cc", ANML_DTYPE_INT16, OPH_RANK(4, 3), OPH_DIMS(4, 3), wc);
    oph_close(&h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reshape_minus_one),
        cmocka_unit_test(test_reshape_zero_ios17),
        cmocka_unit_test(test_reshape_zero_ios16),
        cmocka_unit_test(test_reshape_errors),
        cmocka_unit_test(test_reshape_runtime_shape),
        cmocka_unit_test(test_expand_dims_squeeze),
        cmocka_unit_test(test_transpose),
        cmocka_unit_test(test_concat),
        cmocka_unit_test(test_concat_errors),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_tile),
        cmocka_unit_test(test_sliding_windows),
        cmocka_unit_test(test_slice_by_index),
        cmocka_unit_test(test_slice_by_index_runtime),
        cmocka_unit_test(test_slice_by_size),
        cmocka_unit_test(test_slice_update_kv),
        cmocka_unit_test(test_slice_update_state_squeeze),
        cmocka_unit_test(test_gather),
        cmocka_unit_test(test_gather_batch_dims_and_dtypes),
        cmocka_unit_test(test_gather_validate_and_fp16_embedding),
        cmocka_unit_test(test_gather_lut),
        cmocka_unit_test(test_gather_along_axis_and_nd),
        cmocka_unit_test(test_scatter),
        cmocka_unit_test(test_scatter_along_axis_and_nd),
        cmocka_unit_test(test_dtypes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
