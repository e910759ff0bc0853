/*
 * reduce.c -- the reduction and normalization op family of the MIL executor
 * (coreml-format.md §9.4 softmax, §9.5, §9.6): reduce_sum/mean/max/min/prod/sum_square/l1_norm/
 * l2_norm/log_sum/log_sum_exp, reduce_argmax/argmin, softmax, layer_norm, batch_norm,
 * instance_norm, l2_norm and local_response_norm. (topk lives with the misc ops.)
 *
 * Float inputs are converted to fp32 once (into scratch), reduced with fp32 accumulators and the
 * results rounded once to the output dtype. Integer reductions that have an exact integer result
 * (sum, mean, prod, max, min, sum_square, l1_norm) use int64 accumulators; the others go through
 * fp32 and are truncated toward zero on the way back, like any float-to-int store.
 *
 * Reductions over an arbitrary set of axes walk the input once in row-major order with an
 * odometer that keeps the matching output offset up to date, so no transposes are needed.
 *
 * Edge cases, chosen to follow the math: softmax of a row that is all -inf gives NaN (0/0), as
 * PyTorch and NumPy do; reduce_log_sum_exp of such a row gives -inf. argmax/argmin return the
 * first occurrence on ties and treat NaN as the extreme value (NumPy).
 */
#include <math.h>
#include <string.h>

#include "exec/exec.h"

/* ---- parameter helpers ---- */

static bool is_float_or_i32(enum anml_dtype dt) {
    return dt == ANML_DTYPE_F16 || dt == ANML_DTYPE_F32 || dt == ANML_DTYPE_INT32;
}

static bool is_f16_f32(enum anml_dtype dt) {
    return dt == ANML_DTYPE_F16 || dt == ANML_DTYPE_F32;
}

/* x: a required fp16/fp32 input with rank in [min_rank, max_rank]. */
static struct ex_tensor *float_x(struct ex_call *c, int32_t min_rank, int32_t max_rank) {
    struct ex_tensor *x = ex_req(c, "x");
    if (!x) {
        return NULL;
    }
    if (!is_f16_f32(x->dtype)) {
        ex_fail(c, ANML_E_SHAPE, "x '%s' must be fp16 or fp32, got %s", x->name,
                anml_dtype_name(x->dtype));
        return NULL;
    }
    if (x->rank < min_rank || x->rank > max_rank) {
        ex_fail(c, ANML_E_SHAPE, "x '%s' has rank %d, expected %d to %d", x->name, (int)x->rank,
                (int)min_rank, (int)max_rank);
        return NULL;
    }
    return x;
}

static bool read_bool(struct ex_call *c, const char *name, bool dflt, bool *out) {
    *out = dflt;
    return !ex_in(c, name) || ex_const_bool(c, name, out);
}

/* An optional float scalar parameter (epsilon, alpha, ...). */
static bool read_f32(struct ex_call *c, const char *name, float dflt, float *out) {
    *out = dflt;
    return !ex_in(c, name) || ex_const_f32(c, name, out);
}

/* axes (optional, default all) -> mask[d] = reduced. Negative axes count from the end;
 * duplicates are an error. */
static bool read_axes(struct ex_call *c, const char *name, int32_t rank, bool *mask) {
    if (!ex_in(c, name)) {
        for (int32_t d = 0; d < rank; d++) {
            mask[d] = true;
        }
        return true;
    }
    int64_t axes[EX_MAX_DIMS + 1];
    int32_t n = 0;
    if (!ex_const_i64s(c, name, axes, EX_MAX_DIMS + 1, &n)) {
        return false;
    }
    memset(mask, 0, (size_t)rank * sizeof(bool));
    for (int32_t i = 0; i < n; i++) {
        int32_t a;
        if (!ex_axis(c, axes[i], rank, &a)) {
            return false;
        }
        if (mask[a]) {
            ex_fail(c, ANML_E_SHAPE, "'%s' lists axis %lld twice", name, (long long)axes[i]);
            return false;
        }
        mask[a] = true;
    }
    return true;
}

/* Axis argument (default -1) split as outer x len x inner. */
static bool read_axis_split(struct ex_call *c, const struct ex_tensor *x, int32_t *axis,
                            int64_t *outer, int64_t *len, int64_t *inner) {
    int64_t a = -1;
    if (ex_in(c, "axis") && !ex_const_i64(c, "axis", &a)) {
        return false;
    }
    if (!ex_axis(c, a, x->rank, axis)) {
        return false;
    }
    *outer = *inner = 1;
    for (int32_t d = 0; d < *axis; d++) {
        *outer *= x->shape[d];
    }
    for (int32_t d = *axis + 1; d < x->rank; d++) {
        *inner *= x->shape[d];
    }
    *len = x->shape[*axis];
    return true;
}

/* Odometer over x's index space that tracks two derived offsets, a (stride sa[d] per step of
 * dim d) and b (stride sb[d]); a stride of 0 ignores the dim. */
struct odo {
    int32_t rank;
    const int64_t *shape;
    int64_t idx[EX_MAX_DIMS];
    const int64_t *sa, *sb;
    int64_t a, b;
};

static void odo_init(struct odo *o, int32_t rank, const int64_t *shape, const int64_t *sa,
                     const int64_t *sb) {
    memset(o, 0, sizeof *o);
    o->rank = rank;
    o->shape = shape;
    o->sa = sa;
    o->sb = sb;
}

static void odo_next(struct odo *o) {
    for (int32_t d = o->rank - 1; d >= 0; d--) {
        o->a += o->sa[d];
        o->b += o->sb[d];
        if (++o->idx[d] < o->shape[d]) {
            return;
        }
        o->a -= o->sa[d] * o->shape[d];
        o->b -= o->sb[d] * o->shape[d];
        o->idx[d] = 0;
    }
}

/* Strides for a reduction: out_stride[d] is the output stride of dim d (0 for reduced dims), in
 * the keep_dims output layout; in_stride[d] the stride inside the reduced sub-space. Returns the
 * number of output elements and sets *count to the number of reduced elements per output. */
static int64_t reduce_strides(int32_t rank, const int64_t *shape, const bool *mask,
                              int64_t *out_stride, int64_t *in_stride, int64_t *count) {
    int64_t so = 1, si = 1;
    for (int32_t d = rank - 1; d >= 0; d--) {
        out_stride[d] = mask[d] ? 0 : so;
        in_stride[d] = mask[d] ? si : 0;
        if (mask[d]) {
            si *= shape[d];
        } else {
            so *= shape[d];
        }
    }
    *count = si;
    return so;
}

/* ---- reduce_* ---- */

enum red_kind {
    RED_SUM = 0,
    RED_MEAN,
    RED_MAX,
    RED_MIN,
    RED_PROD,
    RED_SUM_SQUARE,
    RED_L1,
    RED_L2,
    RED_LOG_SUM,
    RED_LOG_SUM_EXP,
    RED_KIND_COUNT
};

static const char *const k_red_names[RED_KIND_COUNT] = {
    "reduce_sum",        "reduce_mean",    "reduce_max",     "reduce_min",     "reduce_prod",
    "reduce_sum_square", "reduce_l1_norm", "reduce_l2_norm", "reduce_log_sum", "reduce_log_sum_exp",
};

static enum red_kind red_kind_of(const struct ex_call *c) {
    for (int k = 0; k < RED_KIND_COUNT; k++) {
        if (strcmp(c->def->name, k_red_names[k]) == 0) {
            return (enum red_kind)k;
        }
    }
    ANML_ASSERT(!"unknown reduction");
    return RED_SUM;
}

/* Integer inputs keep exact integer arithmetic where the result is an integer anyway. */
static bool red_int_exact(enum red_kind k) {
    return k <= RED_L1;
}

struct red_geom {
    bool mask[EX_MAX_DIMS];
    bool keep;
    int64_t out_stride[EX_MAX_DIMS], in_stride[EX_MAX_DIMS];
    int64_t n_out, count;
    bool int_path;
};

static enum anml_status red_check(struct ex_call *c, struct red_geom *g) {
    const struct ex_tensor *x = ex_req(c, "x");
    if (!x) {
        return ANML_E_FORMAT;
    }
    if (!is_float_or_i32(x->dtype)) {
        return ex_fail(c, ANML_E_SHAPE, "x '%s' must be fp16, fp32 or int32, got %s", x->name,
                       anml_dtype_name(x->dtype));
    }
    if (!read_axes(c, "axes", x->rank, g->mask) || !read_bool(c, "keep_dims", false, &g->keep)) {
        return ANML_E_SHAPE;
    }
    g->n_out = reduce_strides(x->rank, x->shape, g->mask, g->out_stride, g->in_stride, &g->count);
    g->int_path = x->dtype == ANML_DTYPE_INT32 && red_int_exact(red_kind_of(c));
    return ANML_OK;
}

static void red_carve(struct ex_carve *cv, const struct ex_tensor *x, const struct red_geom *g,
                      float **xf, float **acc, int64_t **iacc) {
    *xf = NULL;
    *acc = NULL;
    *iacc = NULL;
    if (g->int_path) {
        *iacc = ex_carve_bytes(cv, g->n_out, sizeof(int64_t));
    } else {
        *xf = ex_carve_f32(cv, x->numel);
        *acc = ex_carve_f32(cv, 2 * g->n_out); /* accumulator + the max of log_sum_exp */
    }
}

static enum anml_status infer_reduce(struct ex_call *c) {
    struct red_geom g;
    enum anml_status st = red_check(c, &g);
    if (st != ANML_OK) {
        return st;
    }
    const struct ex_tensor *x = ex_in(c, "x");
    int64_t shape[EX_MAX_DIMS];
    int32_t rank = 0;
    for (int32_t d = 0; d < x->rank; d++) {
        if (!g.mask[d]) {
            shape[rank++] = x->shape[d];
        } else if (g.keep) {
            shape[rank++] = 1;
        }
    }
    ex_set_shape(c->outs[0], x->dtype, rank, shape);
    struct ex_carve cv = { 0 };
    float *xf, *acc;
    int64_t *iacc;
    red_carve(&cv, x, &g, &xf, &acc, &iacc);
    return ex_carve_request(c, &cv);
}

static void reduce_int(enum red_kind k, const struct ex_tensor *x, const struct red_geom *g,
                       int64_t *acc, struct ex_tensor *out) {
    int64_t init = k == RED_PROD ? 1 : k == RED_MAX ? INT64_MIN : k == RED_MIN ? INT64_MAX : 0;
    for (int64_t i = 0; i < g->n_out; i++) {
        acc[i] = init;
    }
    const int32_t *xv = x->data;
    struct odo o;
    odo_init(&o, x->rank, x->shape, g->out_stride, g->in_stride);
    for (int64_t i = 0; i < x->numel; i++, odo_next(&o)) {
        int64_t v = xv[i];
        int64_t *a = &acc[o.a];
        /* unsigned arithmetic: overflow wraps instead of being undefined */
        switch (k) {
        case RED_SUM:
        case RED_MEAN: *a = (int64_t)((uint64_t)*a + (uint64_t)v); break;
        case RED_MAX: *a = v > *a ? v : *a; break;
        case RED_MIN: *a = v < *a ? v : *a; break;
        case RED_PROD: *a = (int64_t)((uint64_t)*a * (uint64_t)v); break;
        case RED_SUM_SQUARE: *a = (int64_t)((uint64_t)*a + (uint64_t)v * (uint64_t)v); break;
        case RED_L1: *a = (int64_t)((uint64_t)*a + (uint64_t)(v < 0 ? -v : v)); break;
        default: break;
        }
    }
    for (int64_t i = 0; i < g->n_out; i++) {
        int64_t v = acc[i];
        if (k == RED_MEAN) {
            v = g->count > 0 ? v / g->count : 0;
        }
        ex_set_i64(out, i, v);
    }
}

static enum anml_status run_reduce(struct ex_call *c) {
    struct red_geom g;
    enum anml_status st = red_check(c, &g);
    if (st != ANML_OK) {
        return st;
    }
    enum red_kind k = red_kind_of(c);
    const struct ex_tensor *x = ex_in(c, "x");
    struct ex_tensor *out = c->outs[0];
    struct ex_carve cv = ex_carve_run(c);
    float *xf, *acc;
    int64_t *iacc;
    red_carve(&cv, x, &g, &xf, &acc, &iacc);
    ANML_ASSERT(cv.used <= c->scratch_size);
    if (g.int_path) {
        reduce_int(k, x, &g, iacc, out);
        return ANML_OK;
    }
    ex_to_f32(x, 0, x->numel, xf);
    float *mx = acc + g.n_out;
    float init = k == RED_PROD ? 1.0f : k == RED_MAX ? -INFINITY : k == RED_MIN ? INFINITY : 0.0f;
    for (int64_t i = 0; i < g.n_out; i++) {
        acc[i] = init;
        mx[i] = -INFINITY;
    }
    struct odo o;
    if (k == RED_LOG_SUM_EXP) {
        odo_init(&o, x->rank, x->shape, g.out_stride, g.in_stride);
        for (int64_t i = 0; i < x->numel; i++, odo_next(&o)) {
            mx[o.a] = xf[i] > mx[o.a] ? xf[i] : mx[o.a];
        }
    }
    odo_init(&o, x->rank, x->shape, g.out_stride, g.in_stride);
    for (int64_t i = 0; i < x->numel; i++, odo_next(&o)) {
        float v = xf[i];
        float *a = &acc[o.a];
        switch (k) {
        case RED_SUM:
        case RED_MEAN:
        case RED_LOG_SUM: *a += v; break;
        /* NaN propagates through max/min (NumPy's np.max / np.min) */
        case RED_MAX: *a = (v > *a || v != v) ? v : *a; break;
        case RED_MIN: *a = (v < *a || v != v) ? v : *a; break;
        case RED_PROD: *a *= v; break;
        case RED_SUM_SQUARE:
        case RED_L2: *a += v * v; break;
        case RED_L1: *a += fabsf(v); break;
        case RED_LOG_SUM_EXP: *a += expf(v - mx[o.a]); break;
        default: break;
        }
    }
    for (int64_t i = 0; i < g.n_out; i++) {
        float v = acc[i];
        switch (k) {
        case RED_MEAN: v = v / (float)g.count; break;
        case RED_L2: v = sqrtf(v); break;
        case RED_LOG_SUM: v = logf(v); break;
        case RED_LOG_SUM_EXP: v = isinf(mx[i]) ? mx[i] : mx[i] + logf(v); break;
        default: break;
        }
        acc[i] = v;
    }
    ex_from_f32(out, 0, g.n_out, acc);
    return ANML_OK;
}

/* ---- reduce_argmax / reduce_argmin ---- */

static enum anml_status arg_check(struct ex_call *c, int32_t *axis, int64_t *outer, int64_t *len,
                                  int64_t *inner, bool *keep, enum anml_dtype *odt) {
    const struct ex_tensor *x = ex_req(c, "x");
    if (!x) {
        return ANML_E_FORMAT;
    }
    if (!is_float_or_i32(x->dtype)) {
        return ex_fail(c, ANML_E_SHAPE, "x '%s' must be fp16, fp32 or int32, got %s", x->name,
                       anml_dtype_name(x->dtype));
    }
    if (x->rank < 1) {
        return ex_fail(c, ANML_E_SHAPE, "x '%s' must have rank >= 1", x->name);
    }
    if (!read_axis_split(c, x, axis, outer, len, inner) ||
        !read_bool(c, "keep_dims", false, keep)) {
        return ANML_E_SHAPE;
    }
    *odt = ANML_DTYPE_INT32;
    if (ex_in(c, "output_dtype")) {
        const char *s = ex_const_str(c, "output_dtype");
        if (!s) {
            return ANML_E_SHAPE;
        }
        if (c->opset < 7) {
            return ex_fail(c, ANML_E_UNSUPPORTED, "output_dtype needs iOS17 or later");
        }
        if (strcmp(s, "uint16") == 0) {
            *odt = ANML_DTYPE_UINT16;
        } else if (strcmp(s, "int32") != 0) {
            return ex_fail(c, ANML_E_UNSUPPORTED,
                           "output_dtype \"%s\" is not supported (int32 or uint16)", s);
        }
    }
    if (*odt == ANML_DTYPE_UINT16 && *len > 65536) {
        return ex_fail(c, ANML_E_SHAPE, "axis length %lld does not fit uint16 indices",
                       (long long)*len);
    }
    if (*len < 1) {
        return ex_fail(c, ANML_E_SHAPE, "cannot take an arg-extremum over an empty axis");
    }
    return ANML_OK;
}

static enum anml_status infer_arg(struct ex_call *c) {
    int32_t axis;
    int64_t outer, len, inner;
    bool keep;
    enum anml_dtype odt;
    enum anml_status st = arg_check(c, &axis, &outer, &len, &inner, &keep, &odt);
    if (st != ANML_OK) {
        return st;
    }
    const struct ex_tensor *x = ex_in(c, "x");
    int64_t shape[EX_MAX_DIMS];
    int32_t rank = 0;
    for (int32_t d = 0; d < x->rank; d++) {
        if (d != axis) {
            shape[rank++] = x->shape[d];
        } else if (keep) {
            shape[rank++] = 1;
        }
    }
    ex_set_shape(c->outs[0], odt, rank, shape);
    return ANML_OK;
}

static enum anml_status run_arg(struct ex_call *c) {
    int32_t axis;
    int64_t outer, len, inner;
    bool keep;
    enum anml_dtype odt;
    enum anml_status st = arg_check(c, &axis, &outer, &len, &inner, &keep, &odt);
    if (st != ANML_OK) {
        return st;
    }
    const struct ex_tensor *x = ex_in(c, "x");
    bool is_max = strcmp(c->def->name, "reduce_argmax") == 0;
    bool is_int = x->dtype == ANML_DTYPE_INT32;
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = o * len * inner + i, best = 0;
            if (is_int) {
                int64_t bv = ex_get_i64(x, base);
                for (int64_t j = 1; j < len; j++) {
                    int64_t v = ex_get_i64(x, base + j * inner);
                    if (is_max ? v > bv : v < bv) {
                        bv = v;
                        best = j;
                    }
                }
            } else {
                float bv = ex_get_f32(x, base);
                for (int64_t j = 1; j < len && bv == bv; j++) {
                    float v = ex_get_f32(x, base + j * inner);
                    if (v != v || (is_max ? v > bv : v < bv)) {
                        bv = v;
                        best = j;
                    }
                }
            }
            ex_set_i64(c->outs[0], o * inner + i, best);
        }
    }
    return ANML_OK;
}

/* ---- softmax ---- */

static enum anml_status infer_softmax(struct ex_call *c) {
    struct ex_tensor *x = float_x(c, 1, EX_MAX_DIMS);
    int32_t axis;
    int64_t outer, len, inner;
    if (!x || !read_axis_split(c, x, &axis, &outer, &len, &inner)) {
        return ANML_E_SHAPE;
    }
    ex_set_shape(c->outs[0], x->dtype, x->rank, x->shape);
    struct ex_carve cv = { 0 };
    ex_carve_f32(&cv, len);
    return ex_carve_request(c, &cv);
}

/* In place over one row: exp(v - max) / sum. */
static void softmax_row(float *v, int64_t n) {
    float mx = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        mx = v[i] > mx ? v[i] : mx;
    }
    float sum = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        v[i] = expf(v[i] - mx);
        sum += v[i];
    }
    for (int64_t i = 0; i < n; i++) {
        v[i] = v[i] / sum;
    }
}

static enum anml_status run_softmax(struct ex_call *c) {
    struct ex_tensor *x = float_x(c, 1, EX_MAX_DIMS);
    int32_t axis;
    int64_t outer, len, inner;
    if (!x || !read_axis_split(c, x, &axis, &outer, &len, &inner)) {
        return ANML_E_SHAPE;
    }
    struct ex_tensor *out = c->outs[0];
    struct ex_carve cv = ex_carve_run(c);
    float *row = ex_carve_f32(&cv, len);
    ANML_ASSERT(cv.used <= c->scratch_size);
    for (int64_t o = 0; o < outer; o++) {
        for (int64_t i = 0; i < inner; i++) {
            int64_t base = o * len * inner + i;
            if (inner == 1) {
                ex_to_f32(x, base, len, row);
            } else {
                for (int64_t j = 0; j < len; j++) {
                    row[j] = ex_get_f32(x, base + j * inner);
                }
            }
            softmax_row(row, len);
            if (inner == 1) {
                ex_from_f32(out, base, len, row);
            } else {
                for (int64_t j = 0; j < len; j++) {
                    ex_set_f32(out, base + j * inner, row[j]);
                }
            }
        }
    }
    return ANML_OK;
}

/* ---- layer_norm ---- */

/* A float parameter of a normalization (gamma, beta, mean, ...): optional unless `required`,
 * dense, of n elements; its dtype must match x before iOS17. */
static bool norm_param(struct ex_call *c, const struct ex_tensor *x, const char *name,
                       bool required, int64_t n, const struct ex_tensor **out) {
    const struct ex_tensor *p = required ? ex_req(c, name) : ex_in(c, name);
    *out = p;
    if (!p) {
        return !required;
    }
    if (!ex_is_float(p->dtype) || !p->data) {
        ex_fail(c, ANML_E_SHAPE, "'%s' must be a dense float tensor", name);
        return false;
    }
    if (p->dtype != x->dtype && c->opset < 7) {
        ex_fail(c, ANML_E_SHAPE, "'%s' is %s but x is %s (a different dtype needs iOS17)", name,
                anml_dtype_name(p->dtype), anml_dtype_name(x->dtype));
        return false;
    }
    if (p->numel != n) {
        ex_fail(c, ANML_E_SHAPE, "'%s' has %lld elements, expected %lld", name, (long long)p->numel,
                (long long)n);
        return false;
    }
    return true;
}

struct ln_geom {
    bool mask[EX_MAX_DIMS];
    int64_t group_stride[EX_MAX_DIMS], norm_stride[EX_MAX_DIMS];
    int64_t n_groups, count;
    float eps;
};

static enum anml_status ln_check(struct ex_call *c, struct ln_geom *g) {
    struct ex_tensor *x = float_x(c, 0, EX_MAX_DIMS);
    if (!x || !read_axes(c, "axes", x->rank, g->mask) || !read_f32(c, "epsilon", 1e-5f, &g->eps)) {
        return ANML_E_SHAPE;
    }
    g->n_groups =
        reduce_strides(x->rank, x->shape, g->mask, g->group_stride, g->norm_stride, &g->count);
    int64_t nshape[EX_MAX_DIMS];
    int32_t nrank = 0;
    for (int32_t d = 0; d < x->rank; d++) {
        if (g->mask[d]) {
            nshape[nrank++] = x->shape[d];
        }
    }
    const char *names[2] = { "gamma", "beta" };
    for (int i = 0; i < 2; i++) {
        const struct ex_tensor *p;
        if (!norm_param(c, x, names[i], false, g->count, &p)) {
            return ANML_E_SHAPE;
        }
        bool same = p == NULL || p->rank == nrank;
        for (int32_t d = 0; same && p && d < nrank; d++) {
            same = p->shape[d] == nshape[d];
        }
        if (!same) {
            return ex_fail(c, ANML_E_SHAPE,
                           "'%s' must have the shape of the normalized dims of x (rank %d)",
                           names[i], (int)nrank);
        }
    }
    return ANML_OK;
}

static void ln_carve(struct ex_carve *cv, const struct ex_tensor *x, const struct ln_geom *g,
                     float **xf, float **mean, float **rstd, float **gb) {
    *xf = ex_carve_f32(cv, x->numel);
    *mean = ex_carve_f32(cv, g->n_groups);
    *rstd = ex_carve_f32(cv, g->n_groups);
    *gb = ex_carve_f32(cv, 2 * g->count);
}

static enum anml_status infer_layer_norm(struct ex_call *c) {
    struct ln_geom g;
    enum anml_status st = ln_check(c, &g);
    if (st != ANML_OK) {
        return st;
    }
    const struct ex_tensor *x = ex_in(c, "x");
    ex_set_shape(c->outs[0], x->dtype, x->rank, x->shape);
    struct ex_carve cv = { 0 };
    float *xf, *mean, *rstd, *gb;
    ln_carve(&cv, x, &g, &xf, &mean, &rstd, &gb);
    return ex_carve_request(c, &cv);
}

static enum anml_status run_layer_norm(struct ex_call *c) {
    struct ln_geom g;
    enum anml_status st = ln_check(c, &g);
    if (st != ANML_OK) {
        return st;
    }
    const struct ex_tensor *x = ex_in(c, "x");
    const struct ex_tensor *gamma = ex_in(c, "gamma");
    const struct ex_tensor *beta = ex_in(c, "beta");
    struct ex_carve cv = ex_carve_run(c);
    float *xf, *mean, *rstd, *gb;
    ln_carve(&cv, x, &g, &xf, &mean, &rstd, &gb);
    ANML_ASSERT(cv.used <= c->scratch_size);
    float *gam = gb, *bet = gb + g.count;
    for (int64_t i = 0; i < g.count; i++) {
        gam[i] = gamma ? ex_get_f32(gamma, i) : 1.0f;
        bet[i] = beta ? ex_get_f32(beta, i) : 0.0f;
    }
    ex_to_f32(x, 0, x->numel, xf);
    memset(mean, 0, (size_t)g.n_groups * sizeof(float));
    memset(rstd, 0, (size_t)g.n_groups * sizeof(float));
    /* two passes (mean, then the biased variance around it) for accuracy; the RMSNorm idiom
     * layer_norm(concat([x, -x])) relies on the mean coming out (almost exactly) zero */
    struct odo o;
    odo_init(&o, x->rank, x->shape, g.group_stride, g.norm_stride);
    for (int64_t i = 0; i < x->numel; i++, odo_next(&o)) {
        mean[o.a] += xf[i];
    }
    for (int64_t i = 0; i < g.n_groups; i++) {
        mean[i] /= (float)g.count;
    }
    odo_init(&o, x->rank, x->shape, g.group_stride, g.norm_stride);
    for (int64_t i = 0; i < x->numel; i++, odo_next(&o)) {
        float d = xf[i] - mean[o.a];
        rstd[o.a] += d * d;
    }
    for (int64_t i = 0; i < g.n_groups; i++) {
        rstd[i] = 1.0f / sqrtf(rstd[i] / (float)g.count + g.eps);
    }
    odo_init(&o, x->rank, x->shape, g.group_stride, g.norm_stride);
    for (int64_t i = 0; i < x->numel; i++, odo_next(&o)) {
        xf[i] = (xf[i] - mean[o.a]) * rstd[o.a] * gam[o.b] + bet[o.b];
    }
    ex_from_f32(c->outs[0], 0, x->numel, xf);
    return ANML_OK;
}

/* ---- batch_norm, instance_norm (per channel of [N, C, *D]) ---- */

struct chan_geom {
    int64_t n, ch, inner;
    float eps;
};

static void chan_split(const struct ex_tensor *x, struct chan_geom *g) {
    g->n = x->shape[0];
    g->ch = x->shape[1];
    g->inner = 1;
    for (int32_t d = 2; d < x->rank; d++) {
        g->inner *= x->shape[d];
    }
}

static enum anml_status bn_check(struct ex_call *c, struct chan_geom *g) {
    struct ex_tensor *x = float_x(c, 3, 5);
    if (!x || !read_f32(c, "epsilon", 1e-5f, &g->eps)) {
        return ANML_E_SHAPE;
    }
    chan_split(x, g);
    const struct ex_tensor *p;
    if (!norm_param(c, x, "mean", true, g->ch, &p) ||
        !norm_param(c, x, "variance", true, g->ch, &p) ||
        !norm_param(c, x, "gamma", false, g->ch, &p) ||
        !norm_param(c, x, "beta", false, g->ch, &p)) {
        return ANML_E_SHAPE;
    }
    return ANML_OK;
}

static enum anml_status infer_batch_norm(struct ex_call *c) {
    struct chan_geom g;
    enum anml_status st = bn_check(c, &g);
    if (st != ANML_OK) {
        return st;
    }
    const struct ex_tensor *x = ex_in(c, "x");
    ex_set_shape(c->outs[0], x->dtype, x->rank, x->shape);
    struct ex_carve cv = { 0 };
    ex_carve_f32(&cv, g.inner);
    return ex_carve_request(c, &cv);
}

static enum anml_status run_batch_norm(struct ex_call *c) {
    struct chan_geom g;
    enum anml_status st = bn_check(c, &g);
    if (st != ANML_OK) {
        return st;
    }
    const struct ex_tensor *x = ex_in(c, "x");
    const struct ex_tensor *mean = ex_in(c, "mean"), *var = ex_in(c, "variance");
    const struct ex_tensor *gamma = ex_in(c, "gamma"), *beta = ex_in(c, "beta");
    struct ex_carve cv = ex_carve_run(c);
    float *row = ex_carve_f32(&cv, g.inner);
    ANML_ASSERT(cv.used <= c->scratch_size);
    for (int64_t n = 0; n < g.n; n++) {
        for (int64_t ch = 0; ch < g.ch; ch++) {
            float mu = ex_get_f32(mean, ch);
            float rs = 1.0f / sqrtf(ex_get_f32(var, ch) + g.eps);
            float ga = gamma ? ex_get_f32(gamma, ch) : 1.0f;
            float be = beta ? ex_get_f32(beta, ch) : 0.0f;
            int64_t off = (n * g.ch + ch) * g.inner;
            ex_to_f32(x, off, g.inner, row);
            for (int64_t i = 0; i < g.inner; i++) {
                row[i] = (row[i] - mu) * rs * ga + be;
            }
            ex_from_f32(c->outs[0], off, g.inner, row);
        }
    }
    return ANML_OK;
}

static enum anml_status in_check(struct ex_call *c, struct chan_geom *g) {
    struct ex_tensor *x = float_x(c, 3, 4);
    if (!x || !read_f32(c, "epsilon", 1e-5f, &g->eps)) {
        return ANML_E_SHAPE;
    }
    chan_split(x, g);
    const struct ex_tensor *p;
    if (!norm_param(c, x, "gamma", false, g->ch, &p) ||
        !norm_param(c, x, "beta", false, g->ch, &p)) {
        return ANML_E_SHAPE;
    }
    return ANML_OK;
}

static enum anml_status infer_instance_norm(struct ex_call *c) {
    struct chan_geom g;
    enum anml_status st = in_check(c, &g);
    if (st != ANML_OK) {
        return st;
    }
    const struct ex_tensor *x = ex_in(c, "x");
    ex_set_shape(c->outs[0], x->dtype, x->rank, x->shape);
    struct ex_carve cv = { 0 };
    ex_carve_f32(&cv, g.inner);
    return ex_carve_request(c, &cv);
}

static enum anml_status run_instance_norm(struct ex_call *c) {
    struct chan_geom g;
    enum anml_status st = in_check(c, &g);
    if (st != ANML_OK) {
        return st;
    }
    const struct ex_tensor *x = ex_in(c, "x");
    const struct ex_tensor *gamma = ex_in(c, "gamma"), *beta = ex_in(c, "beta");
    struct ex_carve cv = ex_carve_run(c);
    float *row = ex_carve_f32(&cv, g.inner);
    ANML_ASSERT(cv.used <= c->scratch_size);
    for (int64_t n = 0; n < g.n; n++) {
        for (int64_t ch = 0; ch < g.ch; ch++) {
            int64_t off = (n * g.ch + ch) * g.inner;
            ex_to_f32(x, off, g.inner, row);
            float mu = 0.0f, var = 0.0f;
            for (int64_t i = 0; i < g.inner; i++) {
                mu += row[i];
            }
            mu /= (float)g.inner;
            for (int64_t i = 0; i < g.inner; i++) {
                var += (row[i] - mu) * (row[i] - mu);
            }
            float rs = 1.0f / sqrtf(var / (float)g.inner + g.eps);
            float ga = gamma ? ex_get_f32(gamma, ch) : 1.0f;
            float be = beta ? ex_get_f32(beta, ch) : 0.0f;
            for (int64_t i = 0; i < g.inner; i++) {
                row[i] = (row[i] - mu) * rs * ga + be;
            }
            ex_from_f32(c->outs[0], off, g.inner, row);
        }
    }
    return ANML_OK;
}

/* ---- l2_norm: x / sqrt(sum(x^2) + eps) over the last three dims, per leading index ---- */

static enum anml_status infer_l2_norm(struct ex_call *c) {
    struct ex_tensor *x = float_x(c, 3, EX_MAX_DIMS);
    float eps;
    if (!x || !read_f32(c, "epsilon", 1e-6f, &eps)) {
        return ANML_E_SHAPE;
    }
    ex_set_shape(c->outs[0], x->dtype, x->rank, x->shape);
    struct ex_carve cv = { 0 };
    ex_carve_f32(&cv, x->shape[x->rank - 1] * x->shape[x->rank - 2] * x->shape[x->rank - 3]);
    return ex_carve_request(c, &cv);
}

static enum anml_status run_l2_norm(struct ex_call *c) {
    struct ex_tensor *x = float_x(c, 3, EX_MAX_DIMS);
    float eps;
    if (!x || !read_f32(c, "epsilon", 1e-6f, &eps)) {
        return ANML_E_SHAPE;
    }
    int64_t inner = x->shape[x->rank - 1] * x->shape[x->rank - 2] * x->shape[x->rank - 3];
    int64_t outer = inner > 0 ? x->numel / inner : 0;
    struct ex_carve cv = ex_carve_run(c);
    float *row = ex_carve_f32(&cv, inner);
    ANML_ASSERT(cv.used <= c->scratch_size);
    for (int64_t o = 0; o < outer; o++) {
        ex_to_f32(x, o * inner, inner, row);
        float ss = 0.0f;
        for (int64_t i = 0; i < inner; i++) {
            ss += row[i] * row[i];
        }
        float rs = 1.0f / sqrtf(ss + eps);
        for (int64_t i = 0; i < inner; i++) {
            row[i] *= rs;
        }
        ex_from_f32(c->outs[0], o * inner, inner, row);
    }
    return ANML_OK;
}

/* ---- local_response_norm ----
 * x / (k + alpha/size * sum_{j in window(c)} x_j^2)^beta over channels j of [N, C, *D], with the
 * window [c - floor((size-1)/2), c + ceil((size-1)/2)] clipped to the channel range (the
 * NeuralNetwork LRN layer's convention; the same as PyTorch's for odd sizes). */

struct lrn_params {
    int64_t size;
    float alpha, beta, k;
};

static enum anml_status lrn_check(struct ex_call *c, struct lrn_params *p) {
    struct ex_tensor *x = float_x(c, 3, 4);
    if (!x || !ex_req(c, "size") || !ex_const_i64(c, "size", &p->size) ||
        !read_f32(c, "alpha", 1e-4f, &p->alpha) || !read_f32(c, "beta", 0.75f, &p->beta) ||
        !read_f32(c, "k", 1.0f, &p->k)) {
        return ANML_E_SHAPE;
    }
    if (p->size < 1) {
        return ex_fail(c, ANML_E_SHAPE, "size must be >= 1, got %lld", (long long)p->size);
    }
    return ANML_OK;
}

static enum anml_status infer_lrn(struct ex_call *c) {
    struct lrn_params p;
    enum anml_status st = lrn_check(c, &p);
    if (st != ANML_OK) {
        return st;
    }
    const struct ex_tensor *x = ex_in(c, "x");
    ex_set_shape(c->outs[0], x->dtype, x->rank, x->shape);
    struct ex_carve cv = { 0 };
    ex_carve_f32(&cv, x->numel);
    return ex_carve_request(c, &cv);
}

static enum anml_status run_lrn(struct ex_call *c) {
    struct lrn_params p;
    enum anml_status st = lrn_check(c, &p);
    if (st != ANML_OK) {
        return st;
    }
    const struct ex_tensor *x = ex_in(c, "x");
    struct chan_geom g;
    chan_split(x, &g);
    struct ex_carve cv = ex_carve_run(c);
    float *xf = ex_carve_f32(&cv, x->numel);
    ANML_ASSERT(cv.used <= c->scratch_size);
    ex_to_f32(x, 0, x->numel, xf);
    int64_t lo = (p.size - 1) / 2, hi = p.size / 2;
    float scale = p.alpha / (float)p.size;
    for (int64_t n = 0; n < g.n; n++) {
        for (int64_t ch = 0; ch < g.ch; ch++) {
            int64_t j0 = ch - lo < 0 ? 0 : ch - lo;
            int64_t j1 = ch + hi >= g.ch ? g.ch - 1 : ch + hi;
            for (int64_t i = 0; i < g.inner; i++) {
                float ss = 0.0f;
                for (int64_t j = j0; j <= j1; j++) {
                    float v = xf[(n * g.ch + j) * g.inner + i];
                    ss += v * v;
                }
                float v = xf[(n * g.ch + ch) * g.inner + i];
                ex_set_f32(c->outs[0], (n * g.ch + ch) * g.inner + i,
                           v / powf(p.k + scale * ss, p.beta));
            }
        }
    }
    return ANML_OK;
}

/* ---- table ---- */

const struct ex_opdef anml__ops_reduce[] = {
    { "reduce_sum", infer_reduce, run_reduce, NULL },
    { "reduce_mean", infer_reduce, run_reduce, NULL },
    { "reduce_max", infer_reduce, run_reduce, NULL },
    { "reduce_min", infer_reduce, run_reduce, NULL },
    { "reduce_prod", infer_reduce, run_reduce, NULL },
    { "reduce_sum_square", infer_reduce, run_reduce, NULL },
    { "reduce_l1_norm", infer_reduce, run_reduce, NULL },
    { "reduce_l2_norm", infer_reduce, run_reduce, NULL },
    { "reduce_log_sum", infer_reduce, run_reduce, NULL },
    { "reduce_log_sum_exp", infer_reduce, run_reduce, NULL },
    { "reduce_argmax", infer_arg, run_arg, NULL },
    { "reduce_argmin", infer_arg, run_arg, NULL },
    { "softmax", infer_softmax, run_softmax, NULL },
    { "layer_norm", infer_layer_norm, run_layer_norm, NULL },
    { "batch_norm", infer_batch_norm, run_batch_norm, NULL },
    { "instance_norm", infer_instance_norm, run_instance_norm, NULL },
    { "l2_norm", infer_l2_norm, run_l2_norm, NULL },
    { "local_response_norm", infer_lrn, run_lrn, NULL },
    { NULL, NULL, NULL, NULL },
};
