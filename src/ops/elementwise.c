/*
 * elementwise.c -- the elementwise op family of the MIL executor (coreml-format.md §9.2-§9.4,
 * §9.10 select): binary arithmetic and comparisons with NumPy broadcasting, logical ops, unary
 * math, activations (including the per-channel prelu / softplus_parametric), clip / threshold,
 * cast and select.
 *
 * Numerics follow the executor's rounding policy: float tensors are converted to fp32 a chunk of
 * a row at a time (in scratch memory), the op is computed in fp32 and the result is rounded once
 * to the output dtype (RNE). Integer tensors are computed in int64 and stored with two's
 * complement wrap-around. Broadcasting is handled by coalescing the output shape into "rows" in
 * which each input is either contiguous or a single repeated element, so the common ANEMLL cases
 * (same-shape fp16 add/mul, scalar operands, per-channel scales) run as a few long rows.
 */
#include <math.h>
#include <string.h>

#include "exec/exec.h"
#include "kernels/kernels.h"

/* Elements per fp32/int64 chunk; scratch holds three chunks (two operands and the result). */
#define EW_CHUNK 512

/* ---- broadcasting over rows ---- */

#define EW_MAX_IN 3

/* An output shape coalesced into rows: shape[rank - 1] is the row length; stride[k][d] is input
 * k's element stride along dim d (0 where it is broadcast). rank >= 1. */
struct ew_bcast {
    int32_t rank;
    int32_t n_in;
    int64_t shape[EX_MAX_DIMS];
    int64_t stride[EW_MAX_IN][EX_MAX_DIMS];
};

static void bc_init(struct ew_bcast *b, const struct ex_tensor *out,
                    const struct ex_tensor *const *ins, int32_t n_in) {
    int32_t r = out->rank;
    int64_t full[EW_MAX_IN][EX_MAX_DIMS];
    for (int32_t k = 0; k < n_in; k++) {
        const struct ex_tensor *t = ins[k];
        int64_t s = 1;
        for (int32_t d = r - 1; d >= 0; d--) {
            int32_t td = d - (r - t->rank);
            int64_t dim = td >= 0 ? t->shape[td] : 1;
            full[k][d] = dim == 1 ? 0 : s;
            s *= dim;
        }
    }
    /* Walk from the innermost dim outwards, skipping size-1 dims and merging a dim into the
     * current one when every input continues contiguously (or stays broadcast) across it. */
    int64_t shape[EX_MAX_DIMS];
    int64_t stride[EW_MAX_IN][EX_MAX_DIMS];
    int32_t n = 0;
    for (int32_t d = r - 1; d >= 0; d--) {
        if (out->shape[d] == 1) {
            continue;
        }
        bool merge = n > 0;
        for (int32_t k = 0; merge && k < n_in; k++) {
            if (full[k][d] != stride[k][n - 1] * shape[n - 1]) {
                merge = false;
            }
        }
        if (merge) {
            shape[n - 1] *= out->shape[d];
            continue;
        }
        shape[n] = out->shape[d];
        for (int32_t k = 0; k < n_in; k++) {
            stride[k][n] = full[k][d];
        }
        n++;
    }
    if (n == 0) {
        shape[0] = 1;
        for (int32_t k = 0; k < n_in; k++) {
            stride[k][0] = 0;
        }
        n = 1;
    }
    /* the walk produced innermost-first; store outermost-first */
    b->rank = n;
    b->n_in = n_in;
    for (int32_t i = 0; i < n; i++) {
        b->shape[i] = shape[n - 1 - i];
        for (int32_t k = 0; k < n_in; k++) {
            b->stride[k][i] = stride[k][n - 1 - i];
        }
    }
}

/* Advances the outer-dims counter idx and the per-input row offsets off to the next row. */
static void bc_next(const struct ew_bcast *b, int64_t *idx, int64_t *off) {
    for (int32_t d = b->rank - 2; d >= 0; d--) {
        idx[d]++;
        for (int32_t k = 0; k < b->n_in; k++) {
            off[k] += b->stride[k][d];
        }
        if (idx[d] < b->shape[d]) {
            return;
        }
        for (int32_t k = 0; k < b->n_in; k++) {
            off[k] -= b->stride[k][d] * b->shape[d];
        }
        idx[d] = 0;
    }
}

/* Runs BODY for i in [0, n): blocks of eight with a fixed inner trip count, which GCC and Clang
 * vectorize even at -O2 (their cheapest cost model refuses loops that need an epilogue), then a
 * scalar tail. */
#define EW_LOOP8(n, BODY)                         \
  do {                                            \
    int64_t blk_ = 0;                             \
    for (; blk_ + 8 <= (n); blk_ += 8) {          \
      for (int64_t i = blk_; i < blk_ + 8; i++) { \
        BODY;                                     \
      }                                           \
    }                                             \
    for (int64_t i = blk_; i < (n); i++) {        \
      BODY;                                       \
    }                                             \
  } while (0)

/* ---- fp16 <-> fp32 rows ---- */

static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* fp32 -> fp16, round to nearest even: bit-identical to anml__fp32_to_fp16 (checked over all
 * 2^32 inputs), but written with selects instead of branches so that row loops vectorize.
 * Normal results round the dropped 13 mantissa bits with a carry that may ripple into the
 * exponent; subnormal results let one fp32 addition of 0.5 (whose ulp is 2^-24, the fp16
 * subnormal step) do the rounding. */
static inline uint16_t f32_to_f16(float f) {
    uint32_t x = f32_bits(f), sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
    uint32_t normal = (ax - 0x38000000u + 0xfffu + ((ax >> 13) & 1u)) >> 13;
    uint32_t sub = f32_bits(bits_f32(ax) + 0.5f) - 0x3f000000u;
    uint32_t r = ax < 0x38800000u ? sub : normal;
    r = ax >= 0x477ff000u ? 0x7c00u : r;                          /* rounds to >= 65520: inf */
    r = ax > 0x7f800000u ? (0x7e00u | ((ax >> 13) & 0x3ffu)) : r; /* NaN stays quiet */
    return (uint16_t)(sign | r);
}

/* n elements of t from element off as fp32. */
static void row_to_f32(const struct ex_tensor *t, int64_t off, int64_t n, float *dst) {
    if (t->dtype == ANML_DTYPE_F16) {
        anml__ref_f16_to_f32((const uint16_t *)t->data + off, n, dst);
    } else {
        ex_to_f32(t, off, n, dst);
    }
}

/* Stores n fp32 values into t from element off, rounding once to t's dtype. */
static void row_from_f32(struct ex_tensor *t, int64_t off, int64_t n, const float *src) {
    if (t->dtype == ANML_DTYPE_F16) {
        uint16_t *d = (uint16_t *)t->data + off;
        EW_LOOP8(n, d[i] = f32_to_f16(src[i]));
    } else {
        ex_from_f32(t, off, n, src);
    }
}

/* ---- loading and storing chunks ---- */

/* n elements of t from element `off` with element stride 0 (one repeated value) or 1. */
static void load_f32(const struct ex_tensor *t, int64_t off, int64_t stride, int64_t n,
                     float *buf) {
    if (stride == 0) {
        float v = ex_get_f32(t, off);
        for (int64_t i = 0; i < n; i++) {
            buf[i] = v;
        }
    } else {
        row_to_f32(t, off, n, buf);
    }
}

static void load_i64(const struct ex_tensor *t, int64_t off, int64_t stride, int64_t n,
                     int64_t *buf) {
    if (stride == 0) {
        int64_t v = ex_get_i64(t, off);
        for (int64_t i = 0; i < n; i++) {
            buf[i] = v;
        }
    } else if (t->dtype == ANML_DTYPE_INT32) {
        const int32_t *p = (const int32_t *)t->data + off;
        for (int64_t i = 0; i < n; i++) {
            buf[i] = p[i];
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            buf[i] = ex_get_i64(t, off + i);
        }
    }
}

static void store_i64(struct ex_tensor *t, int64_t off, int64_t n, const int64_t *buf) {
    if (t->dtype == ANML_DTYPE_INT32) {
        int32_t *p = (int32_t *)t->data + off;
        for (int64_t i = 0; i < n; i++) {
            p[i] = (int32_t)(uint32_t)(uint64_t)buf[i];
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            ex_set_i64(t, off + i, buf[i]);
        }
    }
}

/* ---- dtype checks ---- */

static bool dt_in(enum anml_dtype dt, const enum anml_dtype *list) {
    for (; *list != ANML_DTYPE_INVALID; list++) {
        if (*list == dt) {
            return true;
        }
    }
    return false;
}

static const enum anml_dtype k_float[] = { ANML_DTYPE_F16, ANML_DTYPE_F32, ANML_DTYPE_INVALID };
static const enum anml_dtype k_num[] = { ANML_DTYPE_F16, ANML_DTYPE_F32, ANML_DTYPE_INT32,
                                         ANML_DTYPE_INVALID };
static const enum anml_dtype k_bool[] = { ANML_DTYPE_BOOL, ANML_DTYPE_INVALID };
static const enum anml_dtype k_any4[] = { ANML_DTYPE_F16, ANML_DTYPE_F32, ANML_DTYPE_INT32,
                                          ANML_DTYPE_BOOL, ANML_DTYPE_INVALID };
static const enum anml_dtype k_cast15[] = { ANML_DTYPE_F16, ANML_DTYPE_F32, ANML_DTYPE_INT32,
                                            ANML_DTYPE_BOOL, ANML_DTYPE_INVALID };
static const enum anml_dtype k_cast17[] = {
    ANML_DTYPE_F16,   ANML_DTYPE_F32,   ANML_DTYPE_INT32,  ANML_DTYPE_BOOL,   ANML_DTYPE_INT8,
    ANML_DTYPE_UINT8, ANML_DTYPE_INT16, ANML_DTYPE_UINT16, ANML_DTYPE_INVALID
};

static const char *dt_list_str(const enum anml_dtype *list) {
    if (list == k_float) {
        return "fp16 or fp32";
    }
    if (list == k_num) {
        return "fp16, fp32 or int32";
    }
    if (list == k_bool) {
        return "bool";
    }
    if (list == k_cast17) {
        return "fp16, fp32, int32, bool, int8, uint8, int16 or uint16";
    }
    return "fp16, fp32, int32 or bool";
}

/* The required input `name`, with a dtype from `list`; NULL with an error otherwise. */
static struct ex_tensor *req_typed(struct ex_call *c, const char *name,
                                   const enum anml_dtype *list) {
    struct ex_tensor *t = ex_req(c, name);
    if (!t) {
        return NULL;
    }
    if (!dt_in(t->dtype, list)) {
        ex_fail(c, ANML_E_SHAPE, "'%s' has dtype %s; expected %s", name, anml_dtype_name(t->dtype),
                dt_list_str(list));
        return NULL;
    }
    if (!t->data && !c->planning) {
        ex_fail(c, ANML_E_INTERNAL, "'%s' has no data", name);
        return NULL;
    }
    return t;
}

static enum anml_status need_outs(struct ex_call *c, int32_t n) {
    if (c->n_outs != n) {
        return ex_fail(c, ANML_E_FORMAT, "expected %d result(s), the op declares %d", (int)n,
                       (int)c->n_outs);
    }
    return ANML_OK;
}

/* ---- binary ops ---- */

enum ew_bin {
    B_ADD,
    B_SUB,
    B_MUL,
    B_DIV,
    B_FLOORDIV,
    B_MOD,
    B_POW,
    B_MAX,
    B_MIN,
    B_EQ,
    B_NE,
    B_GT,
    B_GE,
    B_LT,
    B_LE,
    B_AND,
    B_OR,
    B_XOR,
    B_COUNT
};

static bool bin_is_cmp(enum ew_bin op) {
    return op >= B_EQ && op <= B_LE;
}

static bool bin_is_logical(enum ew_bin op) {
    return op >= B_AND;
}

static enum anml_status infer_binary(struct ex_call *c, enum ew_bin op) {
    const enum anml_dtype *list = bin_is_logical(op) ? k_bool : k_num;
    struct ex_tensor *x = req_typed(c, "x", list);
    struct ex_tensor *y = x ? req_typed(c, "y", list) : NULL;
    if (!y) {
        return c->err ? c->err->code : ANML_E_SHAPE;
    }
    if (x->dtype != y->dtype) {
        return ex_fail(c, ANML_E_SHAPE, "'x' (%s) and 'y' (%s) must have the same dtype",
                       anml_dtype_name(x->dtype), anml_dtype_name(y->dtype));
    }
    enum anml_status st = need_outs(c, 1);
    if (st != ANML_OK) {
        return st;
    }
    int32_t rank;
    int64_t shape[EX_MAX_DIMS];
    if (!ex_broadcast(c, x, y, &rank, shape)) {
        return ANML_E_SHAPE;
    }
    enum anml_dtype odt = bin_is_cmp(op) || bin_is_logical(op) ? ANML_DTYPE_BOOL : x->dtype;
    ex_set_shape(c->outs[0], odt, rank, shape);
    ex_request_scratch(c, 3 * EW_CHUNK * sizeof(int64_t));
    return ANML_OK;
}

static float f_mod(float a, float b) {
    /* NumPy's float remainder: fmod, then move into the divisor's sign (Python semantics). */
    float r = fmodf(a, b);
    if (r != 0.0f && ((r < 0.0f) != (b < 0.0f))) {
        r += b;
    }
    return r;
}

static float f_max(float a, float b) {
    return (a != a || a > b) ? a : b; /* NaN propagates, as np.maximum */
}

static float f_min(float a, float b) {
    return (a != a || a < b) ? a : b;
}

static void bin_f32(enum ew_bin op, const float *a, const float *b, float *o, int64_t n) {
    switch (op) {
    case B_ADD: EW_LOOP8(n, o[i] = a[i] + b[i]); break;
    case B_SUB: EW_LOOP8(n, o[i] = a[i] - b[i]); break;
    case B_MUL: EW_LOOP8(n, o[i] = a[i] * b[i]); break;
    case B_DIV: EW_LOOP8(n, o[i] = a[i] / b[i]); break;
    case B_FLOORDIV:
        for (int64_t i = 0; i < n; i++) {
            o[i] = floorf(a[i] / b[i]);
        }
        break;
    case B_MOD:
        for (int64_t i = 0; i < n; i++) {
            o[i] = f_mod(a[i], b[i]);
        }
        break;
    case B_POW:
        for (int64_t i = 0; i < n; i++) {
            o[i] = powf(a[i], b[i]);
        }
        break;
    case B_MAX: EW_LOOP8(n, o[i] = f_max(a[i], b[i])); break;
    case B_MIN: EW_LOOP8(n, o[i] = f_min(a[i], b[i])); break;
    default: break;
    }
}

static int64_t i_floordiv(int64_t a, int64_t b) {
    if (b == 0) {
        return 0; /* undefined in MIL; keep it memory-safe and deterministic */
    }
    int64_t q = a / b;
    if (a % b != 0 && ((a < 0) != (b < 0))) {
        q--;
    }
    return q;
}

static int64_t i_mod(int64_t a, int64_t b) {
    if (b == 0) {
        return 0;
    }
    int64_t r = a % b;
    if (r != 0 && ((r < 0) != (b < 0))) {
        r += b;
    }
    return r;
}

static int64_t i_pow(int64_t a, int64_t e) {
    if (e < 0) {
        /* integer results of a^-n: only |a| == 1 gives a non-zero (truncated) value */
        if (a == 1) {
            return 1;
        }
        if (a == -1) {
            return (e & 1) ? -1 : 1;
        }
        return 0;
    }
    uint64_t r = 1, base = (uint64_t)a;
    while (e) {
        if (e & 1) {
            r *= base;
        }
        base *= base;
        e >>= 1;
    }
    return (int64_t)r;
}

static void bin_i64(enum ew_bin op, const int64_t *a, const int64_t *b, int64_t *o, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        int64_t x = a[i], y = b[i], r;
        switch (op) {
        case B_ADD: r = x + y; break;
        case B_SUB: r = x - y; break;
        case B_MUL: r = x * y; break;
        /* int32 real_div is unspecified [U]; the true quotient truncated toward zero is what a
         * float division followed by an int cast gives. */
        case B_DIV: r = y == 0 ? 0 : x / y; break;
        case B_FLOORDIV: r = i_floordiv(x, y); break;
        case B_MOD: r = i_mod(x, y); break;
        case B_POW: r = i_pow(x, y); break;
        case B_MAX: r = x > y ? x : y; break;
        case B_MIN: r = x < y ? x : y; break;
        default: r = 0; break;
        }
        o[i] = r;
    }
}

static void cmp_f32(enum ew_bin op, const float *a, const float *b, uint8_t *o, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        bool r;
        switch (op) {
        case B_EQ: r = a[i] == b[i]; break;
        case B_NE: r = a[i] != b[i]; break;
        case B_GT: r = a[i] > b[i]; break;
        case B_GE: r = a[i] >= b[i]; break;
        case B_LT: r = a[i] < b[i]; break;
        default: r = a[i] <= b[i]; break;
        }
        o[i] = r;
    }
}

static void cmp_i64(enum ew_bin op, const int64_t *a, const int64_t *b, uint8_t *o, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        bool r;
        switch (op) {
        case B_EQ: r = a[i] == b[i]; break;
        case B_NE: r = a[i] != b[i]; break;
        case B_GT: r = a[i] > b[i]; break;
        case B_GE: r = a[i] >= b[i]; break;
        case B_LT: r = a[i] < b[i]; break;
        default: r = a[i] <= b[i]; break;
        }
        o[i] = r;
    }
}

static void row_binary(enum ew_bin op, const struct ex_tensor *x, const struct ex_tensor *y,
                       struct ex_tensor *out, const int64_t *off, const int64_t *st, int64_t oo,
                       int64_t n, void *scratch) {
    if (bin_is_logical(op)) {
        const uint8_t *a = (const uint8_t *)x->data + off[0];
        const uint8_t *b = (const uint8_t *)y->data + off[1];
        uint8_t *o = (uint8_t *)out->data + oo;
        for (int64_t i = 0; i < n; i++) {
            bool p = a[i * st[0]] != 0, q = b[i * st[1]] != 0;
            o[i] = op == B_AND ? (p && q) : op == B_OR ? (p || q) : (p != q);
        }
        return;
    }
    bool is_float = ex_is_float(x->dtype);
    for (int64_t done = 0; done < n; done += EW_CHUNK) {
        int64_t m = n - done < EW_CHUNK ? n - done : EW_CHUNK;
        int64_t ao = off[0] + done * st[0], bo = off[1] + done * st[1];
        if (is_float) {
            float *a = scratch, *b = a + EW_CHUNK, *o = b + EW_CHUNK;
            load_f32(x, ao, st[0], m, a);
            load_f32(y, bo, st[1], m, b);
            if (bin_is_cmp(op)) {
                cmp_f32(op, a, b, (uint8_t *)out->data + oo + done, m);
            } else {
                bin_f32(op, a, b, o, m);
                row_from_f32(out, oo + done, m, o);
            }
        } else {
            int64_t *a = scratch, *b = a + EW_CHUNK, *o = b + EW_CHUNK;
            load_i64(x, ao, st[0], m, a);
            load_i64(y, bo, st[1], m, b);
            if (bin_is_cmp(op)) {
                cmp_i64(op, a, b, (uint8_t *)out->data + oo + done, m);
            } else {
                bin_i64(op, a, b, o, m);
                store_i64(out, oo + done, m, o);
            }
        }
    }
}

static enum anml_status run_binary(struct ex_call *c, enum ew_bin op) {
    const enum anml_dtype *list = bin_is_logical(op) ? k_bool : k_num;
    struct ex_tensor *x = req_typed(c, "x", list);
    struct ex_tensor *y = x ? req_typed(c, "y", list) : NULL;
    if (!y) {
        return c->err ? c->err->code : ANML_E_INTERNAL;
    }
    struct ex_tensor *out = c->outs[0];
    if (out->numel == 0) {
        return ANML_OK;
    }
    if (!c->scratch || c->scratch_size < 3 * EW_CHUNK * sizeof(int64_t)) {
        return ex_fail(c, ANML_E_INTERNAL, "scratch memory missing");
    }
    const struct ex_tensor *ins[2] = { x, y };
    struct ew_bcast b;
    bc_init(&b, out, ins, 2);
    int64_t n = b.shape[b.rank - 1];
    int64_t st[2] = { b.stride[0][b.rank - 1], b.stride[1][b.rank - 1] };
    int64_t idx[EX_MAX_DIMS] = { 0 };
    int64_t off[EW_MAX_IN] = { 0 };
    for (int64_t oo = 0; oo < out->numel; oo += n) {
        row_binary(op, x, y, out, off, st, oo, n, c->scratch);
        bc_next(&b, idx, off);
    }
    return ANML_OK;
}

/* ---- unary ops and activations ---- */

enum ew_un {
    U_ABS,
    U_SIGN,
    U_SQUARE,
    U_EXP,
    U_EXP2,
    U_SQRT,
    U_RSQRT,
    U_INVERSE,
    U_LOG,
    U_ERF,
    U_SIN,
    U_COS,
    U_TAN,
    U_TANH,
    U_SINH,
    U_COSH,
    U_ASIN,
    U_ACOS,
    U_ATAN,
    U_ATANH,
    U_CEIL,
    U_FLOOR,
    U_ROUND,
    U_CLIP,
    U_THRESHOLD,
    U_RELU,
    U_RELU6,
    U_SIGMOID,
    U_SILU,
    U_GELU,
    U_SOFTPLUS,
    U_SOFTSIGN,
    U_ELU,
    U_LEAKY_RELU,
    U_CLAMPED_RELU,
    U_LINEAR_ACT,
    U_SCALED_TANH,
    U_SIGMOID_HARD,
    U_THRESHOLDED_RELU,
    U_COUNT
};

enum ew_gelu { GELU_EXACT, GELU_TANH, GELU_SIGMOID };

struct ew_params {
    float alpha, beta, eps;
    int64_t ialpha; /* alpha of an integer threshold, exact */
    enum ew_gelu mode;
};

/* Which scalar parameters an op has. */
enum { P_NONE = 0, P_EPS = 1, P_ALPHA = 2, P_ALPHA_BETA = 3, P_MODE = 4 };

static int un_params(enum ew_un op) {
    switch (op) {
    case U_RSQRT:
    case U_INVERSE:
    case U_LOG: return P_EPS;
    case U_THRESHOLD:
    case U_ELU:
    case U_LEAKY_RELU:
    case U_THRESHOLDED_RELU: return P_ALPHA;
    case U_CLIP:
    case U_CLAMPED_RELU:
    case U_LINEAR_ACT:
    case U_SCALED_TANH:
    case U_SIGMOID_HARD: return P_ALPHA_BETA;
    case U_GELU: return P_MODE;
    default: return P_NONE;
    }
}

static bool un_allows_int(enum ew_un op) {
    return op == U_ABS || op == U_SIGN || op == U_SQUARE || op == U_EXP2 || op == U_THRESHOLD;
}

/* Ops whose iOS17 version lets constant parameters have a float dtype other than x's. */
static bool un_relaxed_params(enum ew_un op) {
    switch (op) {
    case U_RSQRT:
    case U_INVERSE:
    case U_LOG:
    case U_ELU:
    case U_LEAKY_RELU:
    case U_THRESHOLDED_RELU:
    case U_CLAMPED_RELU:
    case U_LINEAR_ACT:
    case U_SCALED_TANH:
    case U_SIGMOID_HARD: return true;
    default: return false;
    }
}

/* Reads the scalar parameter `name` (const, one element) into *out. Absent: leaves *out and
 * returns ANML_OK unless required. */
static enum anml_status scalar_param(struct ex_call *c, const struct ex_tensor *x, const char *name,
                                     bool required, bool relaxed, float *out) {
    const struct ex_tensor *p = ex_in(c, name);
    if (!p) {
        if (required) {
            return ex_fail(c, ANML_E_FORMAT, "missing required argument '%s'", name);
        }
        return ANML_OK;
    }
    if (relaxed && c->opset >= 7) {
        if (!ex_is_float(p->dtype) && p->dtype != x->dtype) {
            return ex_fail(c, ANML_E_SHAPE, "'%s' has dtype %s; expected fp16 or fp32", name,
                           anml_dtype_name(p->dtype));
        }
    } else if (p->dtype != x->dtype) {
        return ex_fail(c, ANML_E_SHAPE, "'%s' has dtype %s; expected %s (the dtype of 'x')", name,
                       anml_dtype_name(p->dtype), anml_dtype_name(x->dtype));
    }
    if (!ex_const_f32(c, name, out)) {
        return c->err ? c->err->code : ANML_E_SHAPE;
    }
    return ANML_OK;
}

/* A default constant "of type T": the value as x's dtype would store it. */
static float default_in_dtype(enum anml_dtype dt, float v) {
    return dt == ANML_DTYPE_F16 ? anml__fp16_to_fp32(anml__fp32_to_fp16(v)) : v;
}

static enum anml_status read_params(struct ex_call *c, enum ew_un op, const struct ex_tensor *x,
                                    struct ew_params *p) {
    memset(p, 0, sizeof *p);
    bool relaxed = un_relaxed_params(op);
    enum anml_status st = ANML_OK;
    switch (un_params(op)) {
    case P_EPS:
        p->eps = default_in_dtype(x->dtype, op == U_RSQRT     ? 1e-12f
                                            : op == U_INVERSE ? 1e-4f
                                                              : 1e-45f);
        st = scalar_param(c, x, "epsilon", false, relaxed, &p->eps);
        break;
    case P_ALPHA:
        st = scalar_param(c, x, "alpha", true, relaxed, &p->alpha);
        if (st == ANML_OK && !ex_is_float(x->dtype) && !ex_const_i64(c, "alpha", &p->ialpha)) {
            st = c->err ? c->err->code : ANML_E_SHAPE;
        }
        break;
    case P_ALPHA_BETA:
        st = scalar_param(c, x, "alpha", true, relaxed, &p->alpha);
        if (st == ANML_OK) {
            st = scalar_param(c, x, "beta", true, relaxed, &p->beta);
        }
        if (st == ANML_OK && op == U_CLIP && c->opset >= 7 && !(p->alpha < p->beta)) {
            st = ex_fail(c, ANML_E_SHAPE, "'alpha' (%g) must be smaller than 'beta' (%g)",
                         (double)p->alpha, (double)p->beta);
        }
        break;
    case P_MODE:
        p->mode = GELU_EXACT;
        if (ex_in(c, "mode")) {
            const char *m = ex_const_str(c, "mode");
            if (!m) {
                return c->err ? c->err->code : ANML_E_SHAPE;
            }
            if (strcmp(m, "EXACT") == 0) {
                p->mode = GELU_EXACT;
            } else if (strcmp(m, "TANH_APPROXIMATION") == 0) {
                p->mode = GELU_TANH;
            } else if (strcmp(m, "SIGMOID_APPROXIMATION") == 0) {
                p->mode = GELU_SIGMOID;
            } else {
                st = ex_fail(c, ANML_E_UNSUPPORTED,
                             "unknown mode \"%s\" (expected EXACT, TANH_APPROXIMATION or "
                             "SIGMOID_APPROXIMATION)",
                             m);
            }
        }
        break;
    default: break;
    }
    return st;
}

static float sigmoidf(float x) {
    return 1.0f / (1.0f + expf(-x));
}

static float softplusf(float x) {
    /* log(1 + e^x) without overflow for large x */
    return log1pf(expf(-fabsf(x))) + (x > 0.0f ? x : 0.0f);
}

static void un_f32(enum ew_un op, const struct ew_params *p, float *v, int64_t n) {
    float a = p->alpha, b = p->beta, e = p->eps;
    switch (op) {
    case U_ABS:
        for (int64_t i = 0; i < n; i++) {
            v[i] = fabsf(v[i]);
        }
        break;
    case U_SIGN:
        for (int64_t i = 0; i < n; i++) {
            v[i] = v[i] > 0.0f ? 1.0f : v[i] < 0.0f ? -1.0f : v[i]; /* keeps 0, -0, NaN */
        }
        break;
    case U_SQUARE:
        for (int64_t i = 0; i < n; i++) {
            v[i] = v[i] * v[i];
        }
        break;
    case U_EXP:
        for (int64_t i = 0; i < n; i++) {
            v[i] = expf(v[i]);
        }
        break;
    case U_EXP2:
        for (int64_t i = 0; i < n; i++) {
            v[i] = exp2f(v[i]);
        }
        break;
    case U_SQRT:
        for (int64_t i = 0; i < n; i++) {
            v[i] = sqrtf(v[i]);
        }
        break;
    case U_RSQRT:
        for (int64_t i = 0; i < n; i++) {
            v[i] = 1.0f / sqrtf(v[i] + e);
        }
        break;
    case U_INVERSE:
        for (int64_t i = 0; i < n; i++) {
            v[i] = 1.0f / (v[i] + e);
        }
        break;
    case U_LOG:
        for (int64_t i = 0; i < n; i++) {
            v[i] = logf(v[i] + e);
        }
        break;
    case U_ERF:
        for (int64_t i = 0; i < n; i++) {
            v[i] = erff(v[i]);
        }
        break;
    case U_SIN:
        for (int64_t i = 0; i < n; i++) {
            v[i] = sinf(v[i]);
        }
        break;
    case U_COS:
        for (int64_t i = 0; i < n; i++) {
            v[i] = cosf(v[i]);
        }
        break;
    case U_TAN:
        for (int64_t i = 0; i < n; i++) {
            v[i] = tanf(v[i]);
        }
        break;
    case U_TANH:
        for (int64_t i = 0; i < n; i++) {
            v[i] = tanhf(v[i]);
        }
        break;
    case U_SINH:
        for (int64_t i = 0; i < n; i++) {
            v[i] = sinhf(v[i]);
        }
        break;
    case U_COSH:
        for (int64_t i = 0; i < n; i++) {
            v[i] = coshf(v[i]);
        }
        break;
    case U_ASIN:
        for (int64_t i = 0; i < n; i++) {
            v[i] = asinf(v[i]);
        }
        break;
    case U_ACOS:
        for (int64_t i = 0; i < n; i++) {
            v[i] = acosf(v[i]);
        }
        break;
    case U_ATAN:
        for (int64_t i = 0; i < n; i++) {
            v[i] = atanf(v[i]);
        }
        break;
    case U_ATANH:
        for (int64_t i = 0; i < n; i++) {
            v[i] = atanhf(v[i]);
        }
        break;
    case U_CEIL:
        for (int64_t i = 0; i < n; i++) {
            v[i] = ceilf(v[i]);
        }
        break;
    case U_FLOOR:
        for (int64_t i = 0; i < n; i++) {
            v[i] = floorf(v[i]);
        }
        break;
    case U_ROUND:
        /* rintf in the default rounding mode: nearest, ties to even (0.5 -> 0, 2.5 -> 2) */
        for (int64_t i = 0; i < n; i++) {
            v[i] = rintf(v[i]);
        }
        break;
    case U_CLIP:
        /* min(max(x, alpha), beta) with NaN propagating, as np.minimum/np.maximum */
        for (int64_t i = 0; i < n; i++) {
            float x = v[i] < a ? a : v[i];
            v[i] = x > b ? b : x;
        }
        break;
    case U_THRESHOLD:
        for (int64_t i = 0; i < n; i++) {
            v[i] = v[i] < a ? a : v[i];
        }
        break;
    case U_RELU:
        for (int64_t i = 0; i < n; i++) {
            v[i] = v[i] < 0.0f ? 0.0f : v[i];
        }
        break;
    case U_RELU6:
        for (int64_t i = 0; i < n; i++) {
            float x = v[i] < 0.0f ? 0.0f : v[i];
            v[i] = x > 6.0f ? 6.0f : x;
        }
        break;
    case U_SIGMOID:
        for (int64_t i = 0; i < n; i++) {
            v[i] = sigmoidf(v[i]);
        }
        break;
    case U_SILU:
        for (int64_t i = 0; i < n; i++) {
            /* x * sigmoid(x); at -inf the product is -inf * 0, whose limit is 0 */
            float s = sigmoidf(v[i]);
            v[i] = s == 0.0f ? -0.0f : v[i] * s;
        }
        break;
    case U_GELU:
        for (int64_t i = 0; i < n; i++) {
            /* x * cdf(x); like silu, a cdf that underflows to 0 gives 0, not -inf * 0 */
            float x = v[i], t;
            if (p->mode == GELU_TANH) {
                t = 0.5f * (1.0f + tanhf(0.7978845608f * (x + 0.044715f * x * x * x)));
            } else if (p->mode == GELU_SIGMOID) {
                t = sigmoidf(1.702f * x);
            } else {
                t = 0.5f * (1.0f + erff(x * 0.70710678118f));
            }
            v[i] = t == 0.0f ? -0.0f : x * t;
        }
        break;
    case U_SOFTPLUS:
        for (int64_t i = 0; i < n; i++) {
            v[i] = softplusf(v[i]);
        }
        break;
    case U_SOFTSIGN:
        for (int64_t i = 0; i < n; i++) {
            /* the limit at +-inf is +-1 (inf / inf would give NaN) */
            v[i] = isinf(v[i]) ? copysignf(1.0f, v[i]) : v[i] / (1.0f + fabsf(v[i]));
        }
        break;
    case U_ELU:
        for (int64_t i = 0; i < n; i++) {
            v[i] = v[i] > 0.0f ? v[i] : a * expm1f(v[i]);
        }
        break;
    case U_LEAKY_RELU:
        for (int64_t i = 0; i < n; i++) {
            v[i] = v[i] < 0.0f ? a * v[i] : v[i];
        }
        break;
    case U_CLAMPED_RELU:
        for (int64_t i = 0; i < n; i++) {
            float x = v[i] >= 0.0f ? v[i] : a * v[i];
            v[i] = x > b ? b : x;
        }
        break;
    case U_LINEAR_ACT:
        for (int64_t i = 0; i < n; i++) {
            v[i] = a * v[i] + b;
        }
        break;
    case U_SCALED_TANH:
        for (int64_t i = 0; i < n; i++) {
            v[i] = a * tanhf(b * v[i]);
        }
        break;
    case U_SIGMOID_HARD:
        for (int64_t i = 0; i < n; i++) {
            float x = a * v[i] + b;
            x = x < 0.0f ? 0.0f : x;
            v[i] = x > 1.0f ? 1.0f : x;
        }
        break;
    case U_THRESHOLDED_RELU:
        for (int64_t i = 0; i < n; i++) {
            v[i] = v[i] < a ? 0.0f : v[i];
        }
        break;
    default: break;
    }
}

static void un_i64(enum ew_un op, const struct ew_params *p, int64_t *v, int64_t n) {
    int64_t a = p->ialpha;
    for (int64_t i = 0; i < n; i++) {
        int64_t x = v[i];
        switch (op) {
        case U_ABS: v[i] = x < 0 ? -x : x; break;
        case U_SIGN: v[i] = (x > 0) - (x < 0); break;
        case U_SQUARE: v[i] = x * x; break;
        /* 2^x truncated to an integer: 0 for x < 0; wraps like the stored dtype beyond */
        case U_EXP2: v[i] = x < 0 ? 0 : x < 63 ? (int64_t)((uint64_t)1 << x) : 0; break;
        case U_THRESHOLD: v[i] = x < a ? a : x; break;
        default: break;
        }
    }
}

static enum anml_status infer_unary(struct ex_call *c, enum ew_un op) {
    struct ex_tensor *x = req_typed(c, "x", un_allows_int(op) ? k_num : k_float);
    if (!x) {
        return c->err ? c->err->code : ANML_E_SHAPE;
    }
    enum anml_status st = need_outs(c, 1);
    if (st != ANML_OK) {
        return st;
    }
    struct ew_params p;
    st = read_params(c, op, x, &p);
    if (st != ANML_OK) {
        return st;
    }
    ex_set_shape(c->outs[0], x->dtype, x->rank, x->shape);
    ex_request_scratch(c, EW_CHUNK * sizeof(int64_t));
    return ANML_OK;
}

static enum anml_status run_unary(struct ex_call *c, enum ew_un op) {
    struct ex_tensor *x = req_typed(c, "x", un_allows_int(op) ? k_num : k_float);
    if (!x) {
        return c->err ? c->err->code : ANML_E_INTERNAL;
    }
    struct ew_params p;
    enum anml_status st = read_params(c, op, x, &p);
    if (st != ANML_OK) {
        return st;
    }
    if (!c->scratch || c->scratch_size < EW_CHUNK * sizeof(int64_t)) {
        return ex_fail(c, ANML_E_INTERNAL, "scratch memory missing");
    }
    struct ex_tensor *out = c->outs[0];
    for (int64_t done = 0; done < out->numel; done += EW_CHUNK) {
        int64_t m = out->numel - done < EW_CHUNK ? out->numel - done : EW_CHUNK;
        if (ex_is_float(x->dtype)) {
            float *v = c->scratch;
            row_to_f32(x, done, m, v);
            un_f32(op, &p, v, m);
            row_from_f32(out, done, m, v);
        } else {
            int64_t *v = c->scratch;
            load_i64(x, done, 1, m, v);
            un_i64(op, &p, v, m);
            store_i64(out, done, m, v);
        }
    }
    return ANML_OK;
}

/* ---- logical_not ---- */

static enum anml_status infer_logical_not(struct ex_call *c) {
    struct ex_tensor *x = req_typed(c, "x", k_bool);
    if (!x) {
        return c->err ? c->err->code : ANML_E_SHAPE;
    }
    enum anml_status st = need_outs(c, 1);
    if (st != ANML_OK) {
        return st;
    }
    ex_set_shape(c->outs[0], ANML_DTYPE_BOOL, x->rank, x->shape);
    return ANML_OK;
}

static enum anml_status run_logical_not(struct ex_call *c) {
    struct ex_tensor *x = req_typed(c, "x", k_bool);
    if (!x) {
        return c->err ? c->err->code : ANML_E_INTERNAL;
    }
    const uint8_t *a = x->data;
    uint8_t *o = c->outs[0]->data;
    for (int64_t i = 0; i < c->outs[0]->numel; i++) {
        o[i] = a[i] == 0;
    }
    return ANML_OK;
}

/* ---- per-channel activations: prelu, softplus_parametric ---- */

/* The per-channel parameter `name`: a const rank-1 float tensor of x.shape[1] entries. */
static enum anml_status channel_param(struct ex_call *c, const struct ex_tensor *x,
                                      const char *name, const struct ex_tensor **out) {
    const struct ex_tensor *p = ex_req(c, name);
    if (!p) {
        return c->err ? c->err->code : ANML_E_FORMAT;
    }
    if (p->kind != EX_VALUE_CONST || !p->data) {
        return ex_fail(c, ANML_E_UNSUPPORTED, "argument '%s' must be a constant", name);
    }
    if (c->opset >= 7 ? !ex_is_float(p->dtype) : p->dtype != x->dtype) {
        return ex_fail(c, ANML_E_SHAPE, "'%s' has dtype %s; expected %s", name,
                       anml_dtype_name(p->dtype),
                       c->opset >= 7 ? "fp16 or fp32" : anml_dtype_name(x->dtype));
    }
    if (p->rank != 1 || p->shape[0] != x->shape[1]) {
        return ex_fail(c, ANML_E_SHAPE,
                       "'%s' must have shape [%lld] (the channel dim of 'x'), it has rank %d and "
                       "%lld elements",
                       name, (long long)x->shape[1], (int)p->rank, (long long)p->numel);
    }
    *out = p;
    return ANML_OK;
}

static enum anml_status channel_args(struct ex_call *c, bool parametric, struct ex_tensor **x,
                                     const struct ex_tensor **alpha,
                                     const struct ex_tensor **beta) {
    *x = req_typed(c, "x", k_float);
    if (!*x) {
        return c->err ? c->err->code : ANML_E_SHAPE;
    }
    int32_t lo = 3, hi = parametric ? EX_MAX_DIMS : 5;
    if ((*x)->rank < lo || (*x)->rank > hi) {
        return ex_fail(c, ANML_E_SHAPE, "'x' must have rank %d to %d, it has rank %d", (int)lo,
                       (int)hi, (int)(*x)->rank);
    }
    enum anml_status st = channel_param(c, *x, "alpha", alpha);
    if (st == ANML_OK && parametric) {
        st = channel_param(c, *x, "beta", beta);
    }
    return st;
}

static enum anml_status infer_channel(struct ex_call *c, bool parametric) {
    struct ex_tensor *x;
    const struct ex_tensor *alpha, *beta;
    enum anml_status st = channel_args(c, parametric, &x, &alpha, &beta);
    if (st == ANML_OK) {
        st = need_outs(c, 1);
    }
    if (st != ANML_OK) {
        return st;
    }
    ex_set_shape(c->outs[0], x->dtype, x->rank, x->shape);
    ex_request_scratch(c, EW_CHUNK * sizeof(float));
    return ANML_OK;
}

static enum anml_status run_channel(struct ex_call *c, bool parametric) {
    struct ex_tensor *x;
    const struct ex_tensor *alpha, *beta = NULL;
    enum anml_status st = channel_args(c, parametric, &x, &alpha, &beta);
    if (st != ANML_OK) {
        return st;
    }
    if (!c->scratch || c->scratch_size < EW_CHUNK * sizeof(float)) {
        return ex_fail(c, ANML_E_INTERNAL, "scratch memory missing");
    }
    struct ex_tensor *out = c->outs[0];
    if (x->numel == 0) {
        return ANML_OK;
    }
    int64_t n_ch = x->shape[1];
    int64_t inner = n_ch > 0 ? x->numel / (x->shape[0] * n_ch) : 0;
    float *v = c->scratch;
    for (int64_t row = 0; inner > 0 && row * inner < x->numel; row++) {
        int64_t ch = row % n_ch;
        float a = ex_get_f32(alpha, ch);
        float b = beta ? ex_get_f32(beta, ch) : 0.0f;
        for (int64_t done = 0; done < inner; done += EW_CHUNK) {
            int64_t m = inner - done < EW_CHUNK ? inner - done : EW_CHUNK;
            int64_t off = row * inner + done;
            row_to_f32(x, off, m, v);
            for (int64_t i = 0; i < m; i++) {
                v[i] = parametric ? a * softplusf(b * v[i]) : (v[i] < 0.0f ? a * v[i] : v[i]);
            }
            row_from_f32(out, off, m, v);
        }
    }
    return ANML_OK;
}

static enum anml_status infer_prelu(struct ex_call *c) {
    return infer_channel(c, false);
}
static enum anml_status run_prelu(struct ex_call *c) {
    return run_channel(c, false);
}
static enum anml_status infer_softplus_parametric(struct ex_call *c) {
    return infer_channel(c, true);
}
static enum anml_status run_softplus_parametric(struct ex_call *c) {
    return run_channel(c, true);
}

/* ---- cast ---- */

static enum anml_status cast_args(struct ex_call *c, struct ex_tensor **x, enum anml_dtype *to) {
    const enum anml_dtype *list = c->opset >= 7 ? k_cast17 : k_cast15;
    *x = req_typed(c, "x", list);
    if (!*x) {
        return c->err ? c->err->code : ANML_E_SHAPE;
    }
    if (!ex_in(c, "dtype")) {
        return ex_fail(c, ANML_E_FORMAT, "missing required argument 'dtype'");
    }
    const char *name = ex_const_str(c, "dtype");
    if (!name) {
        return c->err ? c->err->code : ANML_E_SHAPE;
    }
    enum anml_dtype dt = anml__dtype_from_name(name, strlen(name));
    if (!dt_in(dt, list)) {
        return ex_fail(c, ANML_E_UNSUPPORTED, "cannot cast to \"%s\" (expected %s)", name,
                       dt_list_str(list));
    }
    *to = dt;
    return ANML_OK;
}

static enum anml_status infer_cast(struct ex_call *c) {
    struct ex_tensor *x;
    enum anml_dtype to;
    enum anml_status st = cast_args(c, &x, &to);
    if (st == ANML_OK) {
        st = need_outs(c, 1);
    }
    if (st != ANML_OK) {
        return st;
    }
    ex_set_shape(c->outs[0], to, x->rank, x->shape);
    return ANML_OK;
}

/* Float -> integer: truncate toward zero (NumPy astype, i.e. coremltools constant folding) and
 * saturate to the destination's range; NaN gives 0. Out-of-range behaviour is unspecified. */
static int64_t f_to_int(float f, enum anml_dtype to) {
    if (f != f) {
        return 0;
    }
    double lo, hi;
    switch (to) {
    case ANML_DTYPE_INT8: lo = -128.0, hi = 127.0; break;
    case ANML_DTYPE_UINT8: lo = 0.0, hi = 255.0; break;
    case ANML_DTYPE_INT16: lo = -32768.0, hi = 32767.0; break;
    case ANML_DTYPE_UINT16: lo = 0.0, hi = 65535.0; break;
    default: lo = -2147483648.0, hi = 2147483647.0; break;
    }
    double d = trunc((double)f);
    return d <= lo ? (int64_t)lo : d >= hi ? (int64_t)hi : (int64_t)d;
}

static enum anml_status run_cast(struct ex_call *c) {
    struct ex_tensor *x;
    enum anml_dtype to;
    enum anml_status st = cast_args(c, &x, &to);
    if (st != ANML_OK) {
        return st;
    }
    struct ex_tensor *out = c->outs[0];
    int64_t n = out->numel;
    if (n == 0) {
        return ANML_OK;
    }
    if (x->dtype == to) {
        memcpy(out->data, x->data, (size_t)n * anml__dtype_size(to));
        return ANML_OK;
    }
    bool from_float = ex_is_float(x->dtype);
    if (to == ANML_DTYPE_BOOL) {
        uint8_t *o = out->data;
        for (int64_t i = 0; i < n; i++) {
            o[i] = from_float ? ex_get_f32(x, i) != 0.0f : ex_get_i64(x, i) != 0;
        }
    } else if (ex_is_float(to)) {
        /* int32 -> fp32 rounds once; values that would round twice on the way to fp16 are
         * beyond 2^24 and overflow fp16 anyway */
        for (int64_t i = 0; i < n; i++) {
            ex_set_f32(out, i, ex_get_f32(x, i));
        }
    } else if (from_float) {
        for (int64_t i = 0; i < n; i++) {
            ex_set_i64(out, i, f_to_int(ex_get_f32(x, i), to));
        }
    } else {
        /* integer -> integer wraps (two's complement), as NumPy astype */
        for (int64_t i = 0; i < n; i++) {
            ex_set_i64(out, i, ex_get_i64(x, i));
        }
    }
    return ANML_OK;
}

/* ---- select ---- */

static enum anml_status select_args(struct ex_call *c, struct ex_tensor **cond,
                                    struct ex_tensor **a, struct ex_tensor **b) {
    *cond = req_typed(c, "cond", k_bool);
    *a = *cond ? req_typed(c, "a", k_any4) : NULL;
    *b = *a ? req_typed(c, "b", k_any4) : NULL;
    if (!*b) {
        return c->err ? c->err->code : ANML_E_SHAPE;
    }
    if ((*a)->dtype != (*b)->dtype) {
        return ex_fail(c, ANML_E_SHAPE, "'a' (%s) and 'b' (%s) must have the same dtype",
                       anml_dtype_name((*a)->dtype), anml_dtype_name((*b)->dtype));
    }
    return ANML_OK;
}

static enum anml_status infer_select(struct ex_call *c) {
    struct ex_tensor *cond, *a, *b;
    enum anml_status st = select_args(c, &cond, &a, &b);
    if (st == ANML_OK) {
        st = need_outs(c, 1);
    }
    if (st != ANML_OK) {
        return st;
    }
    struct ex_tensor ab = { .name = "broadcast(a, b)" };
    if (!ex_broadcast(c, a, b, &ab.rank, ab.shape)) {
        return ANML_E_SHAPE;
    }
    int32_t rank;
    int64_t shape[EX_MAX_DIMS];
    if (!ex_broadcast(c, cond, &ab, &rank, shape)) {
        return ANML_E_SHAPE;
    }
    ex_set_shape(c->outs[0], a->dtype, rank, shape);
    return ANML_OK;
}

static enum anml_status run_select(struct ex_call *c) {
    struct ex_tensor *cond, *a, *b;
    enum anml_status st = select_args(c, &cond, &a, &b);
    if (st != ANML_OK) {
        return st;
    }
    struct ex_tensor *out = c->outs[0];
    if (out->numel == 0) {
        return ANML_OK;
    }
    const struct ex_tensor *ins[3] = { cond, a, b };
    struct ew_bcast bc;
    bc_init(&bc, out, ins, 3);
    int64_t n = bc.shape[bc.rank - 1];
    int64_t sc = bc.stride[0][bc.rank - 1], sa = bc.stride[1][bc.rank - 1];
    int64_t sb = bc.stride[2][bc.rank - 1];
    size_t es = anml__dtype_size(out->dtype);
    int64_t idx[EX_MAX_DIMS] = { 0 };
    int64_t off[EW_MAX_IN] = { 0 };
    const uint8_t *cd = cond->data;
    for (int64_t oo = 0; oo < out->numel; oo += n) {
        const uint8_t *cr = cd + off[0];
        if (es == 2) {
            const uint16_t *pa = (const uint16_t *)a->data + off[1];
            const uint16_t *pb = (const uint16_t *)b->data + off[2];
            uint16_t *o = (uint16_t *)out->data + oo;
            for (int64_t i = 0; i < n; i++) {
                o[i] = cr[i * sc] ? pa[i * sa] : pb[i * sb];
            }
        } else if (es == 4) {
            const uint32_t *pa = (const uint32_t *)a->data + off[1];
            const uint32_t *pb = (const uint32_t *)b->data + off[2];
            uint32_t *o = (uint32_t *)out->data + oo;
            for (int64_t i = 0; i < n; i++) {
                o[i] = cr[i * sc] ? pa[i * sa] : pb[i * sb];
            }
        } else {
            const uint8_t *pa = (const uint8_t *)a->data + off[1];
            const uint8_t *pb = (const uint8_t *)b->data + off[2];
            uint8_t *o = (uint8_t *)out->data + oo;
            for (int64_t i = 0; i < n; i++) {
                o[i] = cr[i * sc] ? pa[i * sa] : pb[i * sb];
            }
        }
        bc_next(&bc, idx, off);
    }
    return ANML_OK;
}

/* ---- the table ---- */

#define EW_BINARY(name, OP)                                 \
  static enum anml_status infer_##name(struct ex_call *c) { \
    return infer_binary(c, OP);                             \
  }                                                         \
  static enum anml_status run_##name(struct ex_call *c) {   \
    return run_binary(c, OP);                               \
  }

#define EW_UNARY(name, OP)                                  \
  static enum anml_status infer_##name(struct ex_call *c) { \
    return infer_unary(c, OP);                              \
  }                                                         \
  static enum anml_status run_##name(struct ex_call *c) {   \
    return run_unary(c, OP);                                \
  }

EW_BINARY(add, B_ADD)
EW_BINARY(sub, B_SUB)
EW_BINARY(mul, B_MUL)
EW_BINARY(real_div, B_DIV)
EW_BINARY(floor_div, B_FLOORDIV)
EW_BINARY(mod, B_MOD)
EW_BINARY(pow, B_POW)
EW_BINARY(maximum, B_MAX)
EW_BINARY(minimum, B_MIN)
EW_BINARY(equal, B_EQ)
EW_BINARY(not_equal, B_NE)
EW_BINARY(greater, B_GT)
EW_BINARY(greater_equal, B_GE)
EW_BINARY(less, B_LT)
EW_BINARY(less_equal, B_LE)
EW_BINARY(logical_and, B_AND)
EW_BINARY(logical_or, B_OR)
EW_BINARY(logical_xor, B_XOR)

EW_UNARY(abs, U_ABS)
EW_UNARY(sign, U_SIGN)
EW_UNARY(square, U_SQUARE)
EW_UNARY(exp, U_EXP)
EW_UNARY(exp2, U_EXP2)
EW_UNARY(sqrt, U_SQRT)
EW_UNARY(rsqrt, U_RSQRT)
EW_UNARY(inverse, U_INVERSE)
EW_UNARY(log, U_LOG)
EW_UNARY(erf, U_ERF)
EW_UNARY(sin, U_SIN)
EW_UNARY(cos, U_COS)
EW_UNARY(tan, U_TAN)
EW_UNARY(tanh, U_TANH)
EW_UNARY(sinh, U_SINH)
EW_UNARY(cosh, U_COSH)
EW_UNARY(asin, U_ASIN)
EW_UNARY(acos, U_ACOS)
EW_UNARY(atan, U_ATAN)
EW_UNARY(atanh, U_ATANH)
EW_UNARY(ceil, U_CEIL)
EW_UNARY(floor, U_FLOOR)
EW_UNARY(round, U_ROUND)
EW_UNARY(clip, U_CLIP)
EW_UNARY(threshold, U_THRESHOLD)
EW_UNARY(relu, U_RELU)
EW_UNARY(relu6, U_RELU6)
EW_UNARY(sigmoid, U_SIGMOID)
EW_UNARY(silu, U_SILU)
EW_UNARY(gelu, U_GELU)
EW_UNARY(softplus, U_SOFTPLUS)
EW_UNARY(softsign, U_SOFTSIGN)
EW_UNARY(elu, U_ELU)
EW_UNARY(leaky_relu, U_LEAKY_RELU)
EW_UNARY(clamped_relu, U_CLAMPED_RELU)
EW_UNARY(linear_activation, U_LINEAR_ACT)
EW_UNARY(scaled_tanh, U_SCALED_TANH)
EW_UNARY(sigmoid_hard, U_SIGMOID_HARD)
EW_UNARY(thresholded_relu, U_THRESHOLDED_RELU)

#define EW_ENTRY(name) \
  { #name, infer_##name, run_##name, NULL }

const struct ex_opdef anml__ops_elementwise[] = {
    EW_ENTRY(add),
    EW_ENTRY(sub),
    EW_ENTRY(mul),
    EW_ENTRY(real_div),
    EW_ENTRY(floor_div),
    EW_ENTRY(mod),
    EW_ENTRY(pow),
    EW_ENTRY(maximum),
    EW_ENTRY(minimum),
    EW_ENTRY(equal),
    EW_ENTRY(not_equal),
    EW_ENTRY(greater),
    EW_ENTRY(greater_equal),
    EW_ENTRY(less),
    EW_ENTRY(less_equal),
    EW_ENTRY(logical_and),
    EW_ENTRY(logical_or),
    EW_ENTRY(logical_xor),
    EW_ENTRY(logical_not),
    EW_ENTRY(abs),
    EW_ENTRY(sign),
    EW_ENTRY(square),
    EW_ENTRY(exp),
    EW_ENTRY(exp2),
    EW_ENTRY(sqrt),
    EW_ENTRY(rsqrt),
    EW_ENTRY(inverse),
    EW_ENTRY(log),
    EW_ENTRY(erf),
    EW_ENTRY(sin),
    EW_ENTRY(cos),
    EW_ENTRY(tan),
    EW_ENTRY(tanh),
    EW_ENTRY(sinh),
    EW_ENTRY(cosh),
    EW_ENTRY(asin),
    EW_ENTRY(acos),
    EW_ENTRY(atan),
    EW_ENTRY(atanh),
    EW_ENTRY(ceil),
    EW_ENTRY(floor),
    EW_ENTRY(round),
    EW_ENTRY(clip),
    EW_ENTRY(threshold),
    EW_ENTRY(relu),
    EW_ENTRY(relu6),
    EW_ENTRY(sigmoid),
    EW_ENTRY(silu),
    EW_ENTRY(gelu),
    EW_ENTRY(softplus),
    EW_ENTRY(softsign),
    EW_ENTRY(elu),
    EW_ENTRY(leaky_relu),
    EW_ENTRY(clamped_relu),
    EW_ENTRY(linear_activation),
    EW_ENTRY(scaled_tanh),
    EW_ENTRY(sigmoid_hard),
    EW_ENTRY(thresholded_relu),
    EW_ENTRY(prelu),
    EW_ENTRY(softplus_parametric),
    EW_ENTRY(cast),
    EW_ENTRY(select),
    { NULL, NULL, NULL, NULL },
};
