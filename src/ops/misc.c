/*
 * misc.c -- the creation / selection / sorting op family of the MIL executor
 * (coreml-format.md §9.8, §9.10): fill, fill_like, range_1d, band_part, one_hot, cumsum, shape,
 * identity, non_zero, argsort, topk, reverse, flatten2d, pad and stack.
 *
 * Ops whose output shape depends on runtime data (fill / range_1d / one_hot / pad with runtime
 * size arguments, non_zero of a runtime tensor) take the shape the file declares for the result
 * and check at run time that the data agrees, failing with a message instead of writing past the
 * planned buffer. Sorting (argsort, topk) is stable: equal keys keep their index order, and NaN
 * sorts last in both directions, as NumPy's argsort of x (ascending) or -x (descending) does.
 */
#include <math.h>
#include <string.h>

#include "exec/exec.h"

/* ---- dtype lists and argument helpers ---- */

static const enum anml_dtype k_num[] = { ANML_DTYPE_F16, ANML_DTYPE_F32, ANML_DTYPE_INT32,
                                         ANML_DTYPE_INVALID };
static const enum anml_dtype k_float[] = { ANML_DTYPE_F16, ANML_DTYPE_F32, ANML_DTYPE_INVALID };
static const enum anml_dtype k_any4[] = { ANML_DTYPE_F16, ANML_DTYPE_F32, ANML_DTYPE_INT32,
                                          ANML_DTYPE_BOOL, ANML_DTYPE_INVALID };
static const enum anml_dtype k_any8[] = { ANML_DTYPE_F16,   ANML_DTYPE_F32,    ANML_DTYPE_INT32,
                                          ANML_DTYPE_BOOL,  ANML_DTYPE_INT8,   ANML_DTYPE_UINT8,
                                          ANML_DTYPE_INT16, ANML_DTYPE_UINT16, ANML_DTYPE_INVALID };
static const enum anml_dtype k_topk17[] = { ANML_DTYPE_F16,    ANML_DTYPE_F32,    ANML_DTYPE_INT32,
                                            ANML_DTYPE_INT8,   ANML_DTYPE_UINT8,  ANML_DTYPE_INT16,
                                            ANML_DTYPE_UINT16, ANML_DTYPE_INVALID };
static const enum anml_dtype k_int32[] = { ANML_DTYPE_INT32, ANML_DTYPE_INVALID };

static bool dt_in(enum anml_dtype dt, const enum anml_dtype *list) {
    for (; *list != ANML_DTYPE_INVALID; list++) {
        if (*list == dt) {
            return true;
        }
    }
    return false;
}

static const char *dt_list_str(const enum anml_dtype *list) {
    if (list == k_num) {
        return "fp16, fp32 or int32";
    }
    if (list == k_float) {
        return "fp16 or fp32";
    }
    if (list == k_any4) {
        return "fp16, fp32, int32 or bool";
    }
    if (list == k_any8) {
        return "fp16, fp32, int32, bool, int8, uint8, int16 or uint16";
    }
    if (list == k_topk17) {
        return "fp16, fp32, int32, int8, uint8, int16 or uint16";
    }
    return "int32";
}

static enum anml_status fail_code(struct ex_call *c, enum anml_status fallback) {
    return c->err && c->err->code != ANML_OK ? c->err->code : fallback;
}

/* The required input `name` with a dtype from `list` (and data, at run time). */
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
    if (!c->planning && !t->data && t->numel > 0) {
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

static bool is_const(const struct ex_tensor *t) {
    return t->kind == EX_VALUE_CONST && (t->data || t->numel == 0);
}

/* Optional const int parameter with a default. */
static enum anml_status opt_i64(struct ex_call *c, const char *name, int64_t def, int64_t *out) {
    *out = def;
    if (ex_in(c, name) && !ex_const_i64(c, name, out)) {
        return fail_code(c, ANML_E_SHAPE);
    }
    return ANML_OK;
}

static enum anml_status opt_bool(struct ex_call *c, const char *name, bool def, bool *out) {
    *out = def;
    if (ex_in(c, name) && !ex_const_bool(c, name, out)) {
        return fail_code(c, ANML_E_SHAPE);
    }
    return ANML_OK;
}

/* Element count of a shape computed from data, small enough that its byte size cannot overflow. */
static bool shape_numel_ok(const int64_t *dims, int32_t rank) {
    int64_t numel;
    return anml__shape_numel(dims, rank, &numel) && numel <= INT64_MAX / 16;
}

/* Product of dims [from, to) of t. */
static int64_t dims_prod(const int64_t *shape, int32_t from, int32_t to) {
    int64_t p = 1;
    for (int32_t i = from; i < to; i++) {
        p *= shape[i];
    }
    return p;
}

static size_t esize(const struct ex_tensor *t) {
    return anml__dtype_size(t->dtype);
}

static void copy_bytes(void *dst, const void *src, size_t n) {
    if (n > 0 && dst != src) { /* a planned view shares its input's memory */
        memmove(dst, src, n);
    }
}

/* Fills n elements of size es at dst with the pattern at elem. */
static void fill_pattern(uint8_t *dst, int64_t n, const uint8_t *elem, size_t es) {
    if (n <= 0) {
        return;
    }
    memcpy(dst, elem, es);
    int64_t have = 1;
    while (have < n) {
        int64_t k = have < n - have ? have : n - have;
        memcpy(dst + (size_t)have * es, dst, (size_t)k * es);
        have += k;
    }
}

/* One element of dtype dt holding v (converted as ex_set_* would), in buf (>= 8 bytes). */
static void make_elem(enum anml_dtype dt, const struct ex_tensor *v, uint8_t *buf) {
    struct ex_tensor t = { .dtype = dt, .data = buf };
    memset(buf, 0, 8);
    if (!v) {
        return; /* zero of any dtype is all-zero bits */
    }
    if (v->dtype == dt) {
        memcpy(buf, v->data, anml__dtype_size(dt));
    } else if (ex_is_float(v->dtype)) {
        ex_set_f32(&t, 0, ex_get_f32(v, 0));
    } else {
        ex_set_i64(&t, 0, ex_get_i64(v, 0));
    }
}

/* Checks that runtime integer data (a shape-like vector) matches the planned values. */
static enum anml_status check_runtime_ints(struct ex_call *c, const struct ex_tensor *t,
                                           const int64_t *want, int32_t n_want, const char *what) {
    int64_t got[EX_MAX_DIMS * 2];
    int32_t n;
    if (!ex_read_i64s(c, t, got, EX_MAX_DIMS * 2, &n)) {
        return fail_code(c, ANML_E_SHAPE);
    }
    if (n != n_want) {
        return ex_fail(c, ANML_E_SHAPE, "runtime '%s' has %d entries, the plan expects %d", what,
                       (int)n, (int)n_want);
    }
    for (int32_t i = 0; i < n; i++) {
        if (got[i] != want[i]) {
            return ex_fail(c, ANML_E_SHAPE,
                           "runtime '%s'[%d] = %lld differs from the declared result shape "
                           "(expects %lld)",
                           what, (int)i, (long long)got[i], (long long)want[i]);
        }
    }
    return ANML_OK;
}

/* ---- fill, fill_like ---- */

static enum anml_status fill_value(struct ex_call *c, const struct ex_tensor **v,
                                   enum anml_dtype *dt) {
    *v = ex_in(c, "value");
    *dt = ANML_DTYPE_F32; /* the default value is the fp32 0.0 */
    if (!*v) {
        return ANML_OK;
    }
    if (!is_const(*v) || (*v)->numel != 1) {
        return ex_fail(c, ANML_E_SHAPE, "'value' must be a constant scalar");
    }
    if (!dt_in((*v)->dtype, k_any4)) {
        return ex_fail(c, ANML_E_SHAPE, "'value' has dtype %s; expected %s",
                       anml_dtype_name((*v)->dtype), dt_list_str(k_any4));
    }
    *dt = (*v)->dtype;
    return ANML_OK;
}

static enum anml_status infer_fill(struct ex_call *c) {
    const struct ex_tensor *v;
    enum anml_dtype dt;
    struct ex_tensor *shape = req_typed(c, "shape", k_int32);
    if (!shape) {
        return fail_code(c, ANML_E_SHAPE);
    }
    enum anml_status st = fill_value(c, &v, &dt);
    if (st == ANML_OK) {
        st = need_outs(c, 1);
    }
    if (st != ANML_OK) {
        return st;
    }
    if (shape->rank != 1 || shape->numel > EX_MAX_DIMS) {
        return ex_fail(c, ANML_E_SHAPE, "'shape' must be a vector of at most %d entries",
                       EX_MAX_DIMS);
    }
    if (!is_const(shape)) {
        st = ex_declared(c, 0);
        if (st == ANML_OK && c->outs[0]->rank != shape->numel) {
            return ex_fail(c, ANML_E_SHAPE,
                           "declared rank %d differs from the %lld 'shape' entries",
                           (int)c->outs[0]->rank, (long long)shape->numel);
        }
        if (st == ANML_OK) {
            c->outs[0]->dtype = dt;
        }
        return st;
    }
    int64_t dims[EX_MAX_DIMS];
    int32_t n;
    if (!ex_read_i64s(c, shape, dims, EX_MAX_DIMS, &n)) {
        return fail_code(c, ANML_E_SHAPE);
    }
    if (!shape_numel_ok(dims, n)) {
        return ex_fail(c, ANML_E_SHAPE, "'shape' has a negative or overflowing entry");
    }
    ex_set_shape(c->outs[0], dt, n, dims);
    return ANML_OK;
}

static enum anml_status run_fill_common(struct ex_call *c, const struct ex_tensor *v) {
    struct ex_tensor *out = c->outs[0];
    uint8_t elem[8];
    make_elem(out->dtype, v, elem);
    fill_pattern(out->data, out->numel, elem, esize(out));
    return ANML_OK;
}

static enum anml_status run_fill(struct ex_call *c) {
    const struct ex_tensor *v;
    enum anml_dtype dt;
    struct ex_tensor *shape = req_typed(c, "shape", k_int32);
    if (!shape) {
        return fail_code(c, ANML_E_INTERNAL);
    }
    enum anml_status st = fill_value(c, &v, &dt);
    if (st == ANML_OK && !is_const(shape)) {
        st = check_runtime_ints(c, shape, c->outs[0]->shape, c->outs[0]->rank, "shape");
    }
    return st == ANML_OK ? run_fill_common(c, v) : st;
}

static enum anml_status infer_fill_like(struct ex_call *c) {
    const struct ex_tensor *v;
    enum anml_dtype dt;
    struct ex_tensor *ref = req_typed(c, "ref_tensor", k_any4);
    if (!ref) {
        return fail_code(c, ANML_E_SHAPE);
    }
    enum anml_status st = fill_value(c, &v, &dt);
    if (st == ANML_OK) {
        st = need_outs(c, 1);
    }
    if (st == ANML_OK) {
        ex_set_shape(c->outs[0], dt, ref->rank, ref->shape);
    }
    return st;
}

static enum anml_status run_fill_like(struct ex_call *c) {
    const struct ex_tensor *v;
    enum anml_dtype dt;
    enum anml_status st = fill_value(c, &v, &dt);
    return st == ANML_OK ? run_fill_common(c, v) : st;
}

/* ---- range_1d ---- */

static enum anml_status range_args(struct ex_call *c, struct ex_tensor **s, struct ex_tensor **e,
                                   struct ex_tensor **d) {
    *s = req_typed(c, "start", k_num);
    *e = *s ? req_typed(c, "end", k_num) : NULL;
    *d = *e ? req_typed(c, "step", k_num) : NULL;
    if (!*d) {
        return fail_code(c, ANML_E_SHAPE);
    }
    if ((*s)->dtype != (*e)->dtype || (*s)->dtype != (*d)->dtype) {
        return ex_fail(c, ANML_E_SHAPE, "'start', 'end' and 'step' must share one dtype");
    }
    if ((*s)->numel != 1 || (*e)->numel != 1 || (*d)->numel != 1) {
        return ex_fail(c, ANML_E_SHAPE, "'start', 'end' and 'step' must be scalars");
    }
    return ANML_OK;
}

/* ceil((end - start) / step), clamped at 0, as np.arange's length. */
static enum anml_status range_len(struct ex_call *c, const struct ex_tensor *s,
                                  const struct ex_tensor *e, const struct ex_tensor *d,
                                  int64_t *len) {
    double len_d;
    if (ex_is_float(s->dtype)) {
        double a = (double)ex_get_f32(s, 0), b = (double)ex_get_f32(e, 0);
        double st = (double)ex_get_f32(d, 0);
        if (st == 0.0) {
            return ex_fail(c, ANML_E_SHAPE, "'step' is zero");
        }
        len_d = ceil((b - a) / st);
    } else {
        int64_t a = ex_get_i64(s, 0), b = ex_get_i64(e, 0), st = ex_get_i64(d, 0);
        if (st == 0) {
            return ex_fail(c, ANML_E_SHAPE, "'step' is zero");
        }
        len_d = ceil((double)(b - a) / (double)st);
    }
    if (!(len_d == len_d) || len_d > 1e15) {
        return ex_fail(c, ANML_E_SHAPE, "range length is not finite or too large");
    }
    *len = len_d < 0.0 ? 0 : (int64_t)len_d;
    return ANML_OK;
}

static enum anml_status infer_range_1d(struct ex_call *c) {
    struct ex_tensor *s, *e, *d;
    enum anml_status st = range_args(c, &s, &e, &d);
    if (st == ANML_OK) {
        st = need_outs(c, 1);
    }
    if (st != ANML_OK) {
        return st;
    }
    if (is_const(s) && is_const(e) && is_const(d)) {
        int64_t len;
        st = range_len(c, s, e, d, &len);
        if (st == ANML_OK) {
            ex_set_shape(c->outs[0], s->dtype, 1, &len);
        }
        return st;
    }
    st = ex_declared(c, 0);
    if (st == ANML_OK && c->outs[0]->rank != 1) {
        return ex_fail(c, ANML_E_SHAPE, "declared result must have rank 1");
    }
    return st;
}

static enum anml_status run_range_1d(struct ex_call *c) {
    struct ex_tensor *s, *e, *d;
    enum anml_status st = range_args(c, &s, &e, &d);
    int64_t len = 0;
    if (st == ANML_OK) {
        st = range_len(c, s, e, d, &len);
    }
    if (st != ANML_OK) {
        return st;
    }
    struct ex_tensor *out = c->outs[0];
    if (len != out->shape[0]) {
        return ex_fail(c, ANML_E_SHAPE, "runtime range has %lld elements, the plan expects %lld",
                       (long long)len, (long long)out->shape[0]);
    }
    if (ex_is_float(s->dtype)) {
        float a = ex_get_f32(s, 0), step = ex_get_f32(d, 0);
        for (int64_t i = 0; i < len; i++) {
            ex_set_f32(out, i, a + (float)i * step);
        }
    } else {
        int64_t a = ex_get_i64(s, 0), step = ex_get_i64(d, 0);
        for (int64_t i = 0; i < len; i++) {
            ex_set_i64(out, i, a + i * step);
        }
    }
    return ANML_OK;
}

/* ---- band_part ---- */

static enum anml_status band_args(struct ex_call *c, struct ex_tensor **x, int64_t *lower,
                                  int64_t *upper) {
    *x = req_typed(c, "x", k_any4);
    if (!*x) {
        return fail_code(c, ANML_E_SHAPE);
    }
    if ((*x)->rank < 2) {
        return ex_fail(c, ANML_E_SHAPE, "'x' must have rank >= 2, it has rank %d", (int)(*x)->rank);
    }
    enum anml_status st = opt_i64(c, "lower", -1, lower);
    if (st == ANML_OK) {
        st = opt_i64(c, "upper", -1, upper);
    }
    return st;
}

static enum anml_status infer_band_part(struct ex_call *c) {
    struct ex_tensor *x;
    int64_t lo, up;
    enum anml_status st = band_args(c, &x, &lo, &up);
    if (st == ANML_OK) {
        st = need_outs(c, 1);
    }
    if (st == ANML_OK) {
        ex_set_shape(c->outs[0], x->dtype, x->rank, x->shape);
    }
    return st;
}

static enum anml_status run_band_part(struct ex_call *c) {
    struct ex_tensor *x;
    int64_t lo, up;
    enum anml_status st = band_args(c, &x, &lo, &up);
    if (st != ANML_OK) {
        return st;
    }
    struct ex_tensor *out = c->outs[0];
    int64_t rows = x->shape[x->rank - 2], cols = x->shape[x->rank - 1];
    size_t es = esize(x);
    const uint8_t *src = x->data;
    uint8_t *dst = out->data;
    for (int64_t base = 0; rows * cols > 0 && base < x->numel; base += rows * cols) {
        for (int64_t m = 0; m < rows; m++) {
            for (int64_t n = 0; n < cols; n++) {
                size_t at = (size_t)(base + m * cols + n) * es;
                bool keep = (lo < 0 || m - n <= lo) && (up < 0 || n - m <= up);
                if (keep) {
                    memcpy(dst + at, src + at, es);
                } else {
                    memset(dst + at, 0, es); /* zero of every dtype is all-zero bits */
                }
            }
        }
    }
    return ANML_OK;
}

/* ---- one_hot ---- */

struct one_hot_args {
    struct ex_tensor *indices, *size;
    const struct ex_tensor *on, *off;
    enum anml_dtype dt;
    int32_t axis; /* in the output */
};

static enum anml_status one_hot_scalar(struct ex_call *c, const char *name,
                                       const struct ex_tensor **out) {
    *out = ex_in(c, name);
    if (!*out) {
        return ANML_OK;
    }
    if (!is_const(*out) || (*out)->numel != 1) {
        return ex_fail(c, ANML_E_SHAPE, "'%s' must be a constant scalar", name);
    }
    if (!dt_in((*out)->dtype, k_any4)) {
        return ex_fail(c, ANML_E_SHAPE, "'%s' has dtype %s; expected %s", name,
                       anml_dtype_name((*out)->dtype), dt_list_str(k_any4));
    }
    return ANML_OK;
}

static enum anml_status one_hot_args(struct ex_call *c, struct one_hot_args *a) {
    a->indices = req_typed(c, "indices", k_int32);
    a->size = a->indices ? req_typed(c, "one_hot_vector_size", k_int32) : NULL;
    if (!a->size) {
        return fail_code(c, ANML_E_SHAPE);
    }
    if (a->size->numel != 1) {
        return ex_fail(c, ANML_E_SHAPE, "'one_hot_vector_size' must be a scalar");
    }
    if (a->indices->rank + 1 > EX_MAX_DIMS) {
        return ex_fail(c, ANML_E_UNSUPPORTED, "result rank exceeds %d", EX_MAX_DIMS);
    }
    enum anml_status st = one_hot_scalar(c, "on_value", &a->on);
    if (st == ANML_OK) {
        st = one_hot_scalar(c, "off_value", &a->off);
    }
    if (st != ANML_OK) {
        return st;
    }
    /* Defaults are the int32 1 and 0; a lone given value decides the dtype of both. */
    a->dt = a->on ? a->on->dtype : a->off ? a->off->dtype : ANML_DTYPE_INT32;
    if (a->on && a->off && a->on->dtype != a->off->dtype) {
        return ex_fail(c, ANML_E_SHAPE, "'on_value' (%s) and 'off_value' (%s) must share a dtype",
                       anml_dtype_name(a->on->dtype), anml_dtype_name(a->off->dtype));
    }
    int64_t axis;
    st = opt_i64(c, "axis", -1, &axis);
    if (st != ANML_OK) {
        return st;
    }
    int32_t out_rank = a->indices->rank + 1;
    if (!ex_axis(c, axis, out_rank, &a->axis)) {
        return fail_code(c, ANML_E_SHAPE);
    }
    return ANML_OK;
}

static enum anml_status infer_one_hot(struct ex_call *c) {
    struct one_hot_args a;
    enum anml_status st = one_hot_args(c, &a);
    if (st == ANML_OK) {
        st = need_outs(c, 1);
    }
    if (st != ANML_OK) {
        return st;
    }
    int32_t r = a.indices->rank + 1;
    int64_t depth;
    if (is_const(a.size)) {
        depth = ex_get_i64(a.size, 0);
        if (depth < 0) {
            return ex_fail(c, ANML_E_SHAPE, "'one_hot_vector_size' is negative (%lld)",
                           (long long)depth);
        }
    } else {
        st = ex_declared(c, 0);
        if (st != ANML_OK) {
            return st;
        }
        if (c->outs[0]->rank != r) {
            return ex_fail(c, ANML_E_SHAPE, "declared result must have rank %d", (int)r);
        }
        depth = c->outs[0]->shape[a.axis];
    }
    int64_t shape[EX_MAX_DIMS];
    for (int32_t i = 0, j = 0; i < r; i++) {
        shape[i] = i == a.axis ? depth : a.indices->shape[j++];
    }
    if (!shape_numel_ok(shape, r)) {
        return ex_fail(c, ANML_E_SHAPE, "result shape overflows");
    }
    ex_set_shape(c->outs[0], a.dt, r, shape);
    return ANML_OK;
}

static enum anml_status run_one_hot(struct ex_call *c) {
    struct one_hot_args a;
    enum anml_status st = one_hot_args(c, &a);
    if (st != ANML_OK) {
        return st;
    }
    struct ex_tensor *out = c->outs[0];
    int64_t depth = out->shape[a.axis];
    if (!is_const(a.size) && ex_get_i64(a.size, 0) != depth) {
        return ex_fail(c, ANML_E_SHAPE,
                       "runtime 'one_hot_vector_size' %lld differs from the planned %lld",
                       (long long)ex_get_i64(a.size, 0), (long long)depth);
    }
    uint8_t on[8], off[8];
    make_elem(out->dtype, a.on, on);
    if (!a.on) {
        struct ex_tensor t = { .dtype = out->dtype, .data = on };
        ex_set_i64(&t, 0, 1);
    }
    make_elem(out->dtype, a.off, off);
    size_t es = esize(out);
    int64_t outer = dims_prod(a.indices->shape, 0, a.axis);
    int64_t inner = dims_prod(a.indices->shape, a.axis, a.indices->rank);
    const int32_t *ind = a.indices->data;
    uint8_t *dst = out->data;
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t d = 0; d < depth; d++) {
            for (int64_t i = 0; i < inner; i++) {
                /* out-of-range (including negative) indices give an all-off vector */
                bool hit = ind[o * inner + i] == d;
                memcpy(dst + (size_t)((o * depth + d) * inner + i) * es, hit ? on : off, es);
            }
        }
    }
    return ANML_OK;
}

/* ---- cumsum ---- */

struct cumsum_args {
    struct ex_tensor *x;
    int32_t axis;
    bool exclusive, reverse;
};

static enum anml_status cumsum_args(struct ex_call *c, struct cumsum_args *a) {
    a->x = req_typed(c, "x", k_num);
    if (!a->x) {
        return fail_code(c, ANML_E_SHAPE);
    }
    int64_t axis;
    enum anml_status st = opt_i64(c, "axis", 0, &axis);
    if (st == ANML_OK) {
        st = opt_bool(c, "exclusive", false, &a->exclusive);
    }
    if (st == ANML_OK) {
        st = opt_bool(c, "reverse", false, &a->reverse);
    }
    if (st == ANML_OK && !ex_axis(c, axis, a->x->rank, &a->axis)) {
        st = fail_code(c, ANML_E_SHAPE);
    }
    return st;
}

static enum anml_status infer_cumsum(struct ex_call *c) {
    struct cumsum_args a;
    enum anml_status st = cumsum_args(c, &a);
    if (st == ANML_OK) {
        st = need_outs(c, 1);
    }
    if (st != ANML_OK) {
        return st;
    }
    ex_set_shape(c->outs[0], a.x->dtype, a.x->rank, a.x->shape);
    /* two rows of `inner` accumulators: the running sums and the current input row */
    int64_t inner = dims_prod(a.x->shape, a.axis + 1, a.x->rank);
    ex_request_scratch(c, (size_t)(inner > 0 ? inner : 1) * 2 * sizeof(int64_t));
    return ANML_OK;
}

static enum anml_status run_cumsum(struct ex_call *c) {
    struct cumsum_args a;
    enum anml_status st = cumsum_args(c, &a);
    if (st != ANML_OK) {
        return st;
    }
    const struct ex_tensor *x = a.x;
    struct ex_tensor *out = c->outs[0];
    int64_t outer = dims_prod(x->shape, 0, a.axis), len = x->shape[a.axis];
    int64_t inner = dims_prod(x->shape, a.axis + 1, x->rank);
    if (out->numel == 0) {
        return ANML_OK;
    }
    if (!c->scratch || c->scratch_size < (size_t)inner * 2 * sizeof(int64_t)) {
        return ex_fail(c, ANML_E_INTERNAL, "scratch memory missing");
    }
    bool is_float = ex_is_float(x->dtype);
    float *facc = c->scratch, *frow = facc + inner;
    int64_t *iacc = c->scratch;
    for (int64_t o = 0; o < outer; o++) {
        if (is_float) {
            memset(facc, 0, (size_t)inner * sizeof(float));
        } else {
            memset(iacc, 0, (size_t)inner * sizeof(int64_t));
        }
        for (int64_t s = 0; s < len; s++) {
            int64_t j = a.reverse ? len - 1 - s : s;
            int64_t off = (o * len + j) * inner;
            if (is_float) {
                ex_to_f32(x, off, inner, frow);
                for (int64_t i = 0; i < inner; i++) {
                    float prev = facc[i];
                    facc[i] += frow[i];
                    frow[i] = a.exclusive ? prev : facc[i];
                }
                ex_from_f32(out, off, inner, frow);
            } else {
                for (int64_t i = 0; i < inner; i++) {
                    int64_t prev = iacc[i];
                    iacc[i] += ex_get_i64(x, off + i);
                    ex_set_i64(out, off + i, a.exclusive ? prev : iacc[i]);
                }
            }
        }
    }
    return ANML_OK;
}

/* ---- shape, identity, flatten2d ---- */

static enum anml_status infer_shape(struct ex_call *c) {
    struct ex_tensor *x = req_typed(c, "x", k_any8);
    if (!x) {
        return fail_code(c, ANML_E_SHAPE);
    }
    enum anml_status st = need_outs(c, 1);
    if (st != ANML_OK) {
        return st;
    }
    for (int32_t i = 0; i < x->rank; i++) {
        if (x->shape[i] > INT32_MAX) {
            return ex_fail(c, ANML_E_SHAPE, "dim %d of 'x' does not fit int32", (int)i);
        }
    }
    int64_t n = x->rank;
    ex_set_shape(c->outs[0], ANML_DTYPE_INT32, 1, &n);
    return ANML_OK;
}

static enum anml_status run_shape(struct ex_call *c) {
    struct ex_tensor *x = ex_req(c, "x");
    if (!x) {
        return fail_code(c, ANML_E_INTERNAL);
    }
    int32_t *o = c->outs[0]->data;
    for (int32_t i = 0; i < x->rank; i++) {
        o[i] = (int32_t)x->shape[i];
    }
    return ANML_OK;
}

static enum anml_status infer_identity(struct ex_call *c) {
    struct ex_tensor *x = req_typed(c, "x", k_any8);
    if (!x) {
        return fail_code(c, ANML_E_SHAPE);
    }
    enum anml_status st = need_outs(c, 1);
    if (st == ANML_OK) {
        ex_set_shape(c->outs[0], x->dtype, x->rank, x->shape);
    }
    return st;
}

/* Copies x's data unchanged (identity, flatten2d). */
static enum anml_status run_copy(struct ex_call *c) {
    struct ex_tensor *x = req_typed(c, "x", k_any8);
    if (!x) {
        return fail_code(c, ANML_E_INTERNAL);
    }
    struct ex_tensor *out = c->outs[0];
    copy_bytes(out->data, x->data, (size_t)out->numel * esize(out));
    return ANML_OK;
}

static enum anml_status infer_flatten2d(struct ex_call *c) {
    struct ex_tensor *x = req_typed(c, "x", k_any8);
    if (!x) {
        return fail_code(c, ANML_E_SHAPE);
    }
    int64_t axis;
    enum anml_status st = opt_i64(c, "axis", 1, &axis);
    if (st == ANML_OK) {
        st = need_outs(c, 1);
    }
    if (st != ANML_OK) {
        return st;
    }
    /* axis in [-rank, rank]: the split point between the two flattened groups */
    int64_t a = axis < 0 ? axis + x->rank : axis;
    if (a < 0 || a > x->rank) {
        return ex_fail(c, ANML_E_SHAPE, "axis %lld out of range [-%d, %d]", (long long)axis,
                       (int)x->rank, (int)x->rank);
    }
    int64_t shape[2] = { dims_prod(x->shape, 0, (int32_t)a),
                         dims_prod(x->shape, (int32_t)a, x->rank) };
    ex_set_shape(c->outs[0], x->dtype, 2, shape);
    return ANML_OK;
}

/* ---- non_zero ---- */

static bool elem_nonzero(const struct ex_tensor *x, int64_t i) {
    return ex_is_float(x->dtype) ? ex_get_f32(x, i) != 0.0f : ex_get_i64(x, i) != 0;
}

static int64_t count_nonzero(const struct ex_tensor *x) {
    int64_t n = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        n += elem_nonzero(x, i);
    }
    return n;
}

static enum anml_status infer_non_zero(struct ex_call *c) {
    struct ex_tensor *x = req_typed(c, "x", k_any4);
    if (!x) {
        return fail_code(c, ANML_E_SHAPE);
    }
    enum anml_status st = need_outs(c, 1);
    if (st != ANML_OK) {
        return st;
    }
    if (is_const(x)) {
        int64_t shape[2] = { count_nonzero(x), x->rank };
        ex_set_shape(c->outs[0], ANML_DTYPE_INT32, 2, shape);
        return ANML_OK;
    }
    /* the count depends on runtime data: only a fully declared result type can be planned */
    st = ex_declared(c, 0);
    if (st == ANML_OK && (c->outs[0]->rank != 2 || c->outs[0]->shape[1] != x->rank)) {
        return ex_fail(c, ANML_E_SHAPE, "declared result must have shape [N, %d]", (int)x->rank);
    }
    return st;
}

static enum anml_status run_non_zero(struct ex_call *c) {
    struct ex_tensor *x = req_typed(c, "x", k_any4);
    if (!x) {
        return fail_code(c, ANML_E_INTERNAL);
    }
    struct ex_tensor *out = c->outs[0];
    int64_t n = count_nonzero(x);
    if (n != out->shape[0]) {
        return ex_fail(c, ANML_E_SHAPE,
                       "'x' has %lld non-zero elements at run time, the declared result has %lld",
                       (long long)n, (long long)out->shape[0]);
    }
    int32_t *o = out->data;
    int64_t idx[EX_MAX_DIMS] = { 0 };
    int64_t row = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        if (elem_nonzero(x, i)) {
            for (int32_t d = 0; d < x->rank; d++) {
                o[row * x->rank + d] = (int32_t)idx[d];
            }
            row++;
        }
        for (int32_t d = x->rank - 1; d >= 0; d--) {
            if (++idx[d] < x->shape[d]) {
                break;
            }
            idx[d] = 0;
        }
    }
    return ANML_OK;
}

/* ---- sorting: argsort, topk ---- */

/* Every dtype these ops accept (fp16, fp32, int8..int32, uint8, uint16) is exact in a double. */
static double key_of(const struct ex_tensor *x, int64_t i) {
    return ex_is_float(x->dtype) ? (double)ex_get_f32(x, i) : (double)ex_get_i64(x, i);
}

/* True when key a must come strictly before key b. NaN sorts last either way. */
static bool key_before(double a, double b, bool ascending) {
    if (a != a) {
        return false;
    }
    if (b != b) {
        return true;
    }
    return ascending ? a < b : a > b;
}

/* Stable merge sort of idx[0..n) by keys; tmp has room for n entries. */
static void sort_lane(const double *keys, int32_t *idx, int32_t *tmp, int64_t n, bool ascending) {
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                /* take from the right only when it is strictly before: keeps equal keys stable */
                if (key_before(keys[idx[j]], keys[idx[i]], ascending)) {
                    tmp[k++] = idx[j++];
                } else {
                    tmp[k++] = idx[i++];
                }
            }
            while (i < mid) {
                tmp[k++] = idx[i++];
            }
            while (j < hi) {
                tmp[k++] = idx[j++];
            }
        }
        memcpy(idx, tmp, (size_t)n * sizeof(int32_t));
    }
}

struct sort_args {
    struct ex_tensor *x;
    int32_t axis;
    bool ascending;
    int64_t k;           /* topk */
    bool return_indices; /* topk */
    enum anml_dtype indices_dtype;
};

static size_t sort_scratch(int64_t len) {
    return (size_t)(len > 0 ? len : 1) * (sizeof(double) + 2 * sizeof(int32_t));
}

/* Sorts every lane of x along axis; calls emit(lane_outer, lane_inner, sorted idx). */
static enum anml_status sort_lanes(struct ex_call *c, const struct sort_args *a,
                                   void (*emit)(struct ex_call *, const struct sort_args *, int64_t,
                                                int64_t, const int32_t *)) {
    const struct ex_tensor *x = a->x;
    int64_t len = x->shape[a->axis];
    int64_t outer = dims_prod(x->shape, 0, a->axis);
    int64_t inner = dims_prod(x->shape, a->axis + 1, x->rank);
    if (x->numel == 0) {
        return ANML_OK;
    }
    if (!c->scratch || c->scratch_size < sort_scratch(len)) {
        return ex_fail(c, ANML_E_INTERNAL, "scratch memory missing");
    }
    double *keys = c->scratch;
    int32_t *idx = (int32_t *)(keys + len), *tmp = idx + len;
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t i = 0; i < inner; i++) {
            for (int64_t j = 0; j < len; j++) {
                keys[j] = key_of(x, (o * len + j) * inner + i);
                idx[j] = (int32_t)j;
            }
            sort_lane(keys, idx, tmp, len, a->ascending);
            emit(c, a, o, i, idx);
        }
    }
    return ANML_OK;
}

static enum anml_status sort_common(struct ex_call *c, struct sort_args *a,
                                    const enum anml_dtype *list) {
    a->x = req_typed(c, "x", list);
    if (!a->x) {
        return fail_code(c, ANML_E_SHAPE);
    }
    int64_t axis;
    enum anml_status st = opt_i64(c, "axis", -1, &axis);
    if (st == ANML_OK) {
        st = opt_bool(c, "ascending", false, &a->ascending);
    }
    if (st == ANML_OK && !ex_axis(c, axis, a->x->rank, &a->axis)) {
        st = fail_code(c, ANML_E_SHAPE);
    }
    if (st == ANML_OK && a->x->shape[a->axis] > INT32_MAX) {
        st = ex_fail(c, ANML_E_SHAPE, "sorted axis is too long");
    }
    return st;
}

static enum anml_status infer_argsort(struct ex_call *c) {
    struct sort_args a;
    enum anml_status st = sort_common(c, &a, k_num);
    if (st == ANML_OK) {
        st = need_outs(c, 1);
    }
    if (st != ANML_OK) {
        return st;
    }
    ex_set_shape(c->outs[0], ANML_DTYPE_INT32, a.x->rank, a.x->shape);
    ex_request_scratch(c, sort_scratch(a.x->shape[a.axis]));
    return ANML_OK;
}

static void emit_argsort(struct ex_call *c, const struct sort_args *a, int64_t o, int64_t i,
                         const int32_t *idx) {
    int64_t len = a->x->shape[a->axis];
    int64_t inner = dims_prod(a->x->shape, a->axis + 1, a->x->rank);
    int32_t *dst = c->outs[0]->data;
    for (int64_t j = 0; j < len; j++) {
        dst[(o * len + j) * inner + i] = idx[j];
    }
}

static enum anml_status run_argsort(struct ex_call *c) {
    struct sort_args a;
    enum anml_status st = sort_common(c, &a, k_num);
    return st == ANML_OK ? sort_lanes(c, &a, emit_argsort) : st;
}

static enum anml_status topk_args(struct ex_call *c, struct sort_args *a) {
    enum anml_status st = sort_common(c, a, c->opset >= 7 ? k_topk17 : k_num);
    if (st != ANML_OK) {
        return st;
    }
    int64_t len = a->x->shape[a->axis];
    st = opt_i64(c, "k", 1, &a->k);
    if (st == ANML_OK) {
        st = opt_bool(c, "return_indices", true, &a->return_indices);
    }
    if (st != ANML_OK) {
        return st;
    }
    bool sorted;
    st = opt_bool(c, "sort", true, &sorted); /* unsorted order is unspecified: sorted is valid */
    if (st != ANML_OK) {
        return st;
    }
    if (a->k == -1 && c->opset >= 7) {
        a->k = len; /* iOS17: -1 selects every element */
    }
    if (a->k < 1 || a->k > len) {
        return ex_fail(c, ANML_E_SHAPE, "k = %lld is out of range [1, %lld] for the axis size",
                       (long long)a->k, (long long)len);
    }
    a->indices_dtype = ANML_DTYPE_INT32;
    if (ex_in(c, "output_indices_dtype")) {
        if (!a->return_indices) {
            return ex_fail(c, ANML_E_SHAPE,
                           "'output_indices_dtype' can only be set when 'return_indices' is true");
        }
        const char *s = ex_const_str(c, "output_indices_dtype");
        if (!s) {
            return fail_code(c, ANML_E_SHAPE);
        }
        if (strcmp(s, "uint16") == 0) {
            a->indices_dtype = ANML_DTYPE_UINT16;
        } else if (strcmp(s, "int32") != 0) {
            return ex_fail(c, ANML_E_SHAPE,
                           "'output_indices_dtype' is \"%s\"; expected \"int32\" or \"uint16\"", s);
        }
    }
    if (a->indices_dtype == ANML_DTYPE_UINT16 && len > 65536) {
        return ex_fail(c, ANML_E_SHAPE, "uint16 indices cannot address an axis of %lld",
                       (long long)len);
    }
    return need_outs(c, a->return_indices ? 2 : 1);
}

static enum anml_status infer_topk(struct ex_call *c) {
    struct sort_args a;
    enum anml_status st = topk_args(c, &a);
    if (st != ANML_OK) {
        return st;
    }
    int64_t shape[EX_MAX_DIMS];
    memcpy(shape, a.x->shape, sizeof shape);
    shape[a.axis] = a.k;
    ex_set_shape(c->outs[0], a.x->dtype, a.x->rank, shape);
    if (a.return_indices) {
        ex_set_shape(c->outs[1], a.indices_dtype, a.x->rank, shape);
    }
    ex_request_scratch(c, sort_scratch(a.x->shape[a.axis]));
    return ANML_OK;
}

static void emit_topk(struct ex_call *c, const struct sort_args *a, int64_t o, int64_t i,
                      const int32_t *idx) {
    const struct ex_tensor *x = a->x;
    int64_t len = x->shape[a->axis];
    int64_t inner = dims_prod(x->shape, a->axis + 1, x->rank);
    size_t es = esize(x);
    const uint8_t *src = x->data;
    uint8_t *vals = c->outs[0]->data;
    for (int64_t j = 0; j < a->k; j++) {
        int64_t at = (o * a->k + j) * inner + i;
        memcpy(vals + (size_t)at * es, src + (size_t)((o * len + idx[j]) * inner + i) * es, es);
        if (a->return_indices) {
            ex_set_i64(c->outs[1], at, idx[j]);
        }
    }
}

static enum anml_status run_topk(struct ex_call *c) {
    struct sort_args a;
    enum anml_status st = topk_args(c, &a);
    return st == ANML_OK ? sort_lanes(c, &a, emit_topk) : st;
}

/* ---- reverse ---- */

static enum anml_status reverse_args(struct ex_call *c, struct ex_tensor **x, bool *flip) {
    *x = req_typed(c, "x", c->opset >= 7 ? k_any8 : k_any4);
    if (!*x) {
        return fail_code(c, ANML_E_SHAPE);
    }
    int32_t r = (*x)->rank;
    for (int32_t d = 0; d < EX_MAX_DIMS; d++) {
        flip[d] = !ex_in(c, "axes") && d < r;
    }
    if (!ex_in(c, "axes")) {
        return ANML_OK;
    }
    int64_t axes[EX_MAX_DIMS];
    int32_t n;
    if (!ex_const_i64s(c, "axes", axes, EX_MAX_DIMS, &n)) {
        return fail_code(c, ANML_E_SHAPE);
    }
    for (int32_t i = 0; i < n; i++) {
        int32_t a;
        if (!ex_axis(c, axes[i], r, &a)) {
            return fail_code(c, ANML_E_SHAPE);
        }
        if (flip[a]) {
            return ex_fail(c, ANML_E_SHAPE, "axis %d is listed twice in 'axes'", (int)a);
        }
        flip[a] = true;
    }
    return ANML_OK;
}

static enum anml_status infer_reverse(struct ex_call *c) {
    struct ex_tensor *x;
    bool flip[EX_MAX_DIMS];
    enum anml_status st = reverse_args(c, &x, flip);
    if (st == ANML_OK) {
        st = need_outs(c, 1);
    }
    if (st == ANML_OK) {
        ex_set_shape(c->outs[0], x->dtype, x->rank, x->shape);
    }
    return st;
}

static enum anml_status run_reverse(struct ex_call *c) {
    struct ex_tensor *x;
    bool flip[EX_MAX_DIMS];
    enum anml_status st = reverse_args(c, &x, flip);
    if (st != ANML_OK) {
        return st;
    }
    struct ex_tensor *out = c->outs[0];
    size_t es = esize(x);
    if (x->rank == 0 || x->numel == 0) {
        copy_bytes(out->data, x->data, (size_t)x->numel * es);
        return ANML_OK;
    }
    int32_t r = x->rank;
    int64_t stride[EX_MAX_DIMS];
    stride[r - 1] = 1;
    for (int32_t d = r - 2; d >= 0; d--) {
        stride[d] = stride[d + 1] * x->shape[d + 1];
    }
    int64_t n = x->shape[r - 1];
    int64_t idx[EX_MAX_DIMS] = { 0 };
    const uint8_t *src = x->data;
    uint8_t *dst = out->data;
    for (int64_t oo = 0; oo < out->numel; oo += n) {
        int64_t so = 0;
        for (int32_t d = 0; d < r - 1; d++) {
            so += (flip[d] ? x->shape[d] - 1 - idx[d] : idx[d]) * stride[d];
        }
        if (flip[r - 1]) {
            for (int64_t i = 0; i < n; i++) {
                memcpy(dst + (size_t)(oo + i) * es, src + (size_t)(so + n - 1 - i) * es, es);
            }
        } else {
            memcpy(dst + (size_t)oo * es, src + (size_t)so * es, (size_t)n * es);
        }
        for (int32_t d = r - 2; d >= 0; d--) {
            if (++idx[d] < x->shape[d]) {
                break;
            }
            idx[d] = 0;
        }
    }
    return ANML_OK;
}

/* ---- pad ---- */

enum pad_mode { PAD_CONSTANT, PAD_REFLECT, PAD_REPLICATE };

struct pad_args {
    struct ex_tensor *x, *pad;
    enum pad_mode mode;
    const struct ex_tensor *value;
    int64_t before[EX_MAX_DIMS], after[EX_MAX_DIMS];
};

/* Reads pad amounts (runtime data when the plan is running) into a->before / a->after. */
static enum anml_status pad_amounts(struct ex_call *c, struct pad_args *a) {
    int64_t p[2 * EX_MAX_DIMS];
    int32_t n;
    if (!ex_read_i64s(c, a->pad, p, 2 * EX_MAX_DIMS, &n)) {
        return fail_code(c, ANML_E_SHAPE);
    }
    int32_t r = a->x->rank;
    if (n % 2 != 0 || n / 2 > r) {
        return ex_fail(c, ANML_E_SHAPE, "'pad' has %d entries; expected 2*N with N <= rank %d",
                       (int)n, (int)r);
    }
    for (int32_t d = 0; d < r; d++) {
        int32_t k = d - (r - n / 2); /* pads apply to the last n/2 dims */
        a->before[d] = k >= 0 ? p[2 * k] : 0;
        a->after[d] = k >= 0 ? p[2 * k + 1] : 0;
        int64_t dim = a->x->shape[d];
        if (a->before[d] < 0 || a->after[d] < 0) {
            return ex_fail(c, ANML_E_SHAPE, "negative pad for dim %d", (int)d);
        }
        if (a->mode == PAD_REFLECT && (a->before[d] > dim - 1 || a->after[d] > dim - 1)) {
            return ex_fail(c, ANML_E_SHAPE,
                           "reflect pad of dim %d (size %lld) must be at most %lld", (int)d,
                           (long long)dim, (long long)(dim - 1));
        }
        if (a->mode == PAD_REPLICATE && dim == 0 && (a->before[d] > 0 || a->after[d] > 0)) {
            return ex_fail(c, ANML_E_SHAPE, "replicate pad of empty dim %d", (int)d);
        }
        if (a->before[d] > (INT64_MAX / 4) || a->after[d] > (INT64_MAX / 4)) {
            return ex_fail(c, ANML_E_SHAPE, "pad for dim %d is too large", (int)d);
        }
    }
    return ANML_OK;
}

static enum anml_status pad_args(struct ex_call *c, struct pad_args *a) {
    a->x = req_typed(c, "x", k_float);
    a->pad = a->x ? req_typed(c, "pad", k_int32) : NULL;
    if (!a->pad) {
        return fail_code(c, ANML_E_SHAPE);
    }
    if (a->pad->rank != 1) {
        return ex_fail(c, ANML_E_SHAPE, "'pad' must be a vector");
    }
    a->mode = PAD_CONSTANT;
    if (ex_in(c, "mode")) {
        const char *m = ex_const_str(c, "mode");
        if (!m) {
            return fail_code(c, ANML_E_SHAPE);
        }
        if (strcmp(m, "reflect") == 0) {
            a->mode = PAD_REFLECT;
        } else if (strcmp(m, "replicate") == 0) {
            a->mode = PAD_REPLICATE;
        } else if (strcmp(m, "constant") != 0) {
            return ex_fail(c, ANML_E_UNSUPPORTED,
                           "mode \"%s\"; expected \"constant\", \"reflect\" or \"replicate\"", m);
        }
    }
    a->value = ex_in(c, "constant_val");
    if (a->value && (!is_const(a->value) || a->value->numel != 1 ||
                     !(ex_is_float(a->value->dtype) || ex_is_int(a->value->dtype)))) {
        return ex_fail(c, ANML_E_SHAPE, "'constant_val' must be a constant numeric scalar");
    }
    return ANML_OK;
}

static enum anml_status infer_pad(struct ex_call *c) {
    struct pad_args a;
    enum anml_status st = pad_args(c, &a);
    if (st == ANML_OK) {
        st = need_outs(c, 1);
    }
    if (st != ANML_OK) {
        return st;
    }
    if (!is_const(a.pad)) {
        if (a.pad->numel != 2 * a.x->rank) {
            return ex_fail(c, ANML_E_SHAPE, "a runtime 'pad' must have %d entries (2 * rank)",
                           (int)(2 * a.x->rank));
        }
        st = ex_declared(c, 0);
        if (st == ANML_OK && c->outs[0]->rank != a.x->rank) {
            return ex_fail(c, ANML_E_SHAPE, "declared result must have rank %d", (int)a.x->rank);
        }
        return st;
    }
    st = pad_amounts(c, &a);
    if (st != ANML_OK) {
        return st;
    }
    int64_t shape[EX_MAX_DIMS];
    for (int32_t d = 0; d < a.x->rank; d++) {
        shape[d] = a.x->shape[d] + a.before[d] + a.after[d];
    }
    if (!shape_numel_ok(shape, a.x->rank)) {
        return ex_fail(c, ANML_E_SHAPE, "result shape overflows");
    }
    ex_set_shape(c->outs[0], a.x->dtype, a.x->rank, shape);
    return ANML_OK;
}

/* Source index along one dim for output index o; -1 means "the constant". */
static int64_t pad_src(const struct pad_args *a, int32_t d, int64_t o) {
    int64_t dim = a->x->shape[d], s = o - a->before[d];
    if (s >= 0 && s < dim) {
        return s;
    }
    switch (a->mode) {
    case PAD_REFLECT: return s < 0 ? -s : 2 * (dim - 1) - s;
    case PAD_REPLICATE: return s < 0 ? 0 : dim - 1;
    default: return -1;
    }
}

static enum anml_status run_pad(struct ex_call *c) {
    struct pad_args a;
    enum anml_status st = pad_args(c, &a);
    if (st == ANML_OK) {
        st = pad_amounts(c, &a);
    }
    if (st != ANML_OK) {
        return st;
    }
    struct ex_tensor *out = c->outs[0];
    int32_t r = a.x->rank;
    for (int32_t d = 0; d < r; d++) {
        if (out->shape[d] != a.x->shape[d] + a.before[d] + a.after[d]) {
            return ex_fail(c, ANML_E_SHAPE, "runtime pads give dim %d = %lld, the plan has %lld",
                           (int)d, (long long)(a.x->shape[d] + a.before[d] + a.after[d]),
                           (long long)out->shape[d]);
        }
    }
    size_t es = esize(out);
    uint8_t cval[8];
    make_elem(out->dtype, a.value, cval);
    if (r == 0 || out->numel == 0) {
        copy_bytes(out->data, a.x->data, (size_t)out->numel * es);
        return ANML_OK;
    }
    int64_t stride[EX_MAX_DIMS];
    stride[r - 1] = 1;
    for (int32_t d = r - 2; d >= 0; d--) {
        stride[d] = stride[d + 1] * a.x->shape[d + 1];
    }
    int64_t n = out->shape[r - 1];
    int64_t idx[EX_MAX_DIMS] = { 0 };
    const uint8_t *src = a.x->data;
    uint8_t *dst = out->data;
    for (int64_t oo = 0; oo < out->numel; oo += n) {
        int64_t so = 0;
        bool constant_row = false;
        for (int32_t d = 0; d < r - 1; d++) {
            int64_t s = pad_src(&a, d, idx[d]);
            if (s < 0) {
                constant_row = true;
                break;
            }
            so += s * stride[d];
        }
        for (int64_t i = 0; i < n; i++) {
            int64_t s = constant_row ? -1 : pad_src(&a, r - 1, i);
            memcpy(dst + (size_t)(oo + i) * es, s < 0 ? cval : src + (size_t)(so + s) * es, es);
        }
        for (int32_t d = r - 2; d >= 0; d--) {
            if (++idx[d] < out->shape[d]) {
                break;
            }
            idx[d] = 0;
        }
    }
    return ANML_OK;
}

/* ---- stack ---- */

static enum anml_status stack_args(struct ex_call *c, int32_t *n, int32_t *axis) {
    *n = ex_in_count(c, "values");
    if (*n < 1) {
        return ex_fail(c, ANML_E_FORMAT, "'values' must hold at least one tensor");
    }
    const struct ex_tensor *v0 = ex_in_at(c, "values", 0);
    if (!dt_in(v0->dtype, k_any4)) {
        return ex_fail(c, ANML_E_SHAPE, "'values' have dtype %s; expected %s",
                       anml_dtype_name(v0->dtype), dt_list_str(k_any4));
    }
    for (int32_t i = 1; i < *n; i++) {
        const struct ex_tensor *v = ex_in_at(c, "values", i);
        bool same = v->dtype == v0->dtype && v->rank == v0->rank;
        for (int32_t d = 0; same && d < v0->rank; d++) {
            same = v->shape[d] == v0->shape[d];
        }
        if (!same) {
            return ex_fail(c, ANML_E_SHAPE,
                           "'values'[%d] ('%s') differs in dtype or shape from "
                           "'values'[0] ('%s')",
                           (int)i, v->name, v0->name);
        }
    }
    if (v0->rank + 1 > EX_MAX_DIMS) {
        return ex_fail(c, ANML_E_UNSUPPORTED, "result rank exceeds %d", EX_MAX_DIMS);
    }
    if (!ex_in(c, "axis")) {
        return ex_fail(c, ANML_E_FORMAT, "missing required argument 'axis'");
    }
    int64_t a;
    if (!ex_const_i64(c, "axis", &a)) {
        return fail_code(c, ANML_E_SHAPE);
    }
    return ex_axis(c, a, v0->rank + 1, axis) ? ANML_OK : fail_code(c, ANML_E_SHAPE);
}

static enum anml_status infer_stack(struct ex_call *c) {
    int32_t n, axis;
    enum anml_status st = stack_args(c, &n, &axis);
    if (st == ANML_OK) {
        st = need_outs(c, 1);
    }
    if (st != ANML_OK) {
        return st;
    }
    const struct ex_tensor *v0 = ex_in_at(c, "values", 0);
    int64_t shape[EX_MAX_DIMS];
    for (int32_t i = 0, j = 0; i <= v0->rank; i++) {
        shape[i] = i == axis ? n : v0->shape[j++];
    }
    ex_set_shape(c->outs[0], v0->dtype, v0->rank + 1, shape);
    return ANML_OK;
}

static enum anml_status run_stack(struct ex_call *c) {
    int32_t n, axis;
    enum anml_status st = stack_args(c, &n, &axis);
    if (st != ANML_OK) {
        return st;
    }
    const struct ex_tensor *v0 = ex_in_at(c, "values", 0);
    struct ex_tensor *out = c->outs[0];
    size_t es = esize(out);
    int64_t outer = dims_prod(v0->shape, 0, axis);
    size_t block = (size_t)dims_prod(v0->shape, axis, v0->rank) * es;
    uint8_t *dst = out->data;
    for (int64_t o = 0; o < outer; o++) {
        for (int32_t k = 0; k < n; k++) {
            const uint8_t *src = ex_in_at(c, "values", k)->data;
            copy_bytes(dst + ((size_t)o * (size_t)n + (size_t)k) * block, src + (size_t)o * block,
                       block);
        }
    }
    return ANML_OK;
}

/* ---- the table ---- */

const struct ex_opdef anml__ops_misc[] = {
    { "fill", infer_fill, run_fill, NULL },
    { "fill_like", infer_fill_like, run_fill_like, NULL },
    { "range_1d", infer_range_1d, run_range_1d, NULL },
    { "band_part", infer_band_part, run_band_part, NULL },
    { "one_hot", infer_one_hot, run_one_hot, NULL },
    { "cumsum", infer_cumsum, run_cumsum, NULL },
    { "shape", infer_shape, run_shape, NULL },
    { "identity", infer_identity, run_copy, NULL },
    { "non_zero", infer_non_zero, run_non_zero, NULL },
    { "argsort", infer_argsort, run_argsort, NULL },
    { "topk", infer_topk, run_topk, NULL },
    { "reverse", infer_reverse, run_reverse, NULL },
    { "flatten2d", infer_flatten2d, run_copy, NULL },
    { "pad", infer_pad, run_pad, NULL },
    { "stack", infer_stack, run_stack, NULL },
    { NULL, NULL, NULL, NULL },
};
