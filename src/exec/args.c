/* args.c -- what op implementations use to reach their arguments, read constant parameters,
 * convert elements between dtypes and report errors (exec.h). */
#include <stdio.h>
#include <string.h>

#include "exec/exec.h"

/* ---- errors ---- */

enum anml_status anml__op_verr(struct anml_error *err, const struct mil_op *op,
                               enum anml_status code, const char *fmt, va_list ap) {
    if (!err) {
        return code;
    }
    char msg[384];
    vsnprintf(msg, sizeof msg, fmt, ap);
    char where[64] = "";
    if (op->line > 0) {
        snprintf(where, sizeof where, "model.mil:%d:%d", (int)op->line, (int)op->col);
    }
    return anml__err(err, code, where, "%s '%s': %s", op->type, anml__mil_op_name(op), msg);
}

enum anml_status ex_fail(struct ex_call *c, enum anml_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    enum anml_status st = anml__op_verr(c->err, c->op, code, fmt, ap);
    va_end(ap);
    return st;
}

/* ---- arguments ---- */

static const struct ex_arg *find_arg(struct ex_call *c, const char *name) {
    for (int32_t i = 0; i < c->n_args; i++) {
        if (strcmp(c->args[i].name, name) == 0) {
            return &c->args[i];
        }
    }
    return NULL;
}

struct ex_tensor *ex_in(struct ex_call *c, const char *name) {
    const struct ex_arg *a = find_arg(c, name);
    return a && a->n > 0 ? &c->values[a->vals[0]] : NULL;
}

int32_t ex_in_count(struct ex_call *c, const char *name) {
    const struct ex_arg *a = find_arg(c, name);
    return a ? a->n : 0;
}

struct ex_tensor *ex_in_at(struct ex_call *c, const char *name, int32_t i) {
    const struct ex_arg *a = find_arg(c, name);
    return a && i >= 0 && i < a->n ? &c->values[a->vals[i]] : NULL;
}

struct ex_tensor *ex_req(struct ex_call *c, const char *name) {
    struct ex_tensor *t = ex_in(c, name);
    if (!t) {
        ex_fail(c, ANML_E_FORMAT, "missing required argument '%s'", name);
    }
    return t;
}

/* A constant input with data, or NULL (error set when present but unusable). */
static struct ex_tensor *const_arg(struct ex_call *c, const char *name) {
    struct ex_tensor *t = ex_in(c, name);
    if (!t) {
        return NULL;
    }
    if (t->kind != EX_VALUE_CONST || (t->numel > 0 && !t->data && !t->strings)) {
        ex_fail(c, ANML_E_UNSUPPORTED, "argument '%s' must be a constant", name);
        return NULL;
    }
    return t;
}

bool ex_const_i64(struct ex_call *c, const char *name, int64_t *out) {
    struct ex_tensor *t = const_arg(c, name);
    if (!t) {
        return false;
    }
    if (t->numel != 1 || !(ex_is_int(t->dtype) || t->dtype == ANML_DTYPE_BOOL)) {
        ex_fail(c, ANML_E_SHAPE, "argument '%s' must be an integer scalar", name);
        return false;
    }
    *out = ex_get_i64(t, 0);
    return true;
}

bool ex_const_f32(struct ex_call *c, const char *name, float *out) {
    struct ex_tensor *t = const_arg(c, name);
    if (!t) {
        return false;
    }
    if (t->numel != 1 || t->dtype == ANML_DTYPE_STRING) {
        ex_fail(c, ANML_E_SHAPE, "argument '%s' must be a numeric scalar", name);
        return false;
    }
    *out = ex_get_f32(t, 0);
    return true;
}

bool ex_const_bool(struct ex_call *c, const char *name, bool *out) {
    struct ex_tensor *t = const_arg(c, name);
    if (!t) {
        return false;
    }
    if (t->numel != 1 || t->dtype != ANML_DTYPE_BOOL) {
        ex_fail(c, ANML_E_SHAPE, "argument '%s' must be a bool scalar", name);
        return false;
    }
    *out = ((const uint8_t *)t->data)[0] != 0;
    return true;
}

bool ex_const_i64s(struct ex_call *c, const char *name, int64_t *out, int32_t cap, int32_t *n) {
    struct ex_tensor *t = const_arg(c, name);
    if (!t) {
        return false;
    }
    return ex_read_i64s(c, t, out, cap, n);
}

bool ex_const_bools(struct ex_call *c, const char *name, bool *out, int32_t cap, int32_t *n) {
    struct ex_tensor *t = const_arg(c, name);
    if (!t) {
        return false;
    }
    if (t->dtype != ANML_DTYPE_BOOL || t->rank > 1 || t->numel > cap) {
        ex_fail(c, ANML_E_SHAPE, "argument '%s' must be a bool vector of at most %d entries", name,
                (int)cap);
        return false;
    }
    for (int64_t i = 0; i < t->numel; i++) {
        out[i] = ((const uint8_t *)t->data)[i] != 0;
    }
    *n = (int32_t)t->numel;
    return true;
}

const char *ex_const_str(struct ex_call *c, const char *name) {
    struct ex_tensor *t = const_arg(c, name);
    if (!t) {
        return NULL;
    }
    if (t->dtype != ANML_DTYPE_STRING || t->numel != 1 || !t->strings) {
        ex_fail(c, ANML_E_SHAPE, "argument '%s' must be a string", name);
        return NULL;
    }
    return t->strings[0];
}

bool ex_read_i64s(struct ex_call *c, const struct ex_tensor *t, int64_t *out, int32_t cap,
                  int32_t *n) {
    if (!(ex_is_int(t->dtype) || t->dtype == ANML_DTYPE_BOOL) || t->rank > 1 || t->numel > cap) {
        ex_fail(c, ANML_E_SHAPE, "'%s' must be an integer vector of at most %d entries", t->name,
                (int)cap);
        return false;
    }
    if (!t->data && t->numel > 0) {
        ex_fail(c, ANML_E_INTERNAL, "'%s' has no data", t->name);
        return false;
    }
    for (int64_t i = 0; i < t->numel; i++) {
        out[i] = ex_get_i64(t, i);
    }
    *n = (int32_t)t->numel;
    return true;
}

/* ---- element access ---- */

float ex_get_f32(const struct ex_tensor *t, int64_t i) {
    const void *p = t->data;
    switch (t->dtype) {
    case ANML_DTYPE_F16: return anml__fp16_to_fp32(((const uint16_t *)p)[i]);
    case ANML_DTYPE_F32: return ((const float *)p)[i];
    case ANML_DTYPE_F64: return (float)((const double *)p)[i];
    case ANML_DTYPE_BF16: return anml__bf16_to_fp32(((const uint16_t *)p)[i]);
    default: return (float)ex_get_i64(t, i);
    }
}

int64_t ex_get_i64(const struct ex_tensor *t, int64_t i) {
    const void *p = t->data;
    switch (t->dtype) {
    case ANML_DTYPE_BOOL:
    case ANML_DTYPE_UINT8:
    case ANML_DTYPE_UINT1:
    case ANML_DTYPE_UINT2:
    case ANML_DTYPE_UINT3:
    case ANML_DTYPE_UINT4:
    case ANML_DTYPE_UINT6: return ((const uint8_t *)p)[i];
    case ANML_DTYPE_INT8:
    case ANML_DTYPE_INT4: return ((const int8_t *)p)[i];
    case ANML_DTYPE_INT16: return ((const int16_t *)p)[i];
    case ANML_DTYPE_UINT16: return ((const uint16_t *)p)[i];
    case ANML_DTYPE_INT32: return ((const int32_t *)p)[i];
    case ANML_DTYPE_UINT32: return ((const uint32_t *)p)[i];
    case ANML_DTYPE_INT64: return ((const int64_t *)p)[i];
    case ANML_DTYPE_UINT64: return (int64_t)((const uint64_t *)p)[i];
    case ANML_DTYPE_F16:
    case ANML_DTYPE_F32:
    case ANML_DTYPE_F64:
    case ANML_DTYPE_BF16: {
        /* float -> int truncates toward zero (NumPy astype); saturate instead of UB */
        float f = ex_get_f32(t, i);
        if (!(f == f)) {
            return 0;
        }
        if (f >= 9.2233715e18f) {
            return INT64_MAX;
        }
        if (f <= -9.2233715e18f) {
            return INT64_MIN;
        }
        return (int64_t)f;
    }
    default: return 0;
    }
}

void ex_set_f32(struct ex_tensor *t, int64_t i, float v) {
    void *p = t->data;
    switch (t->dtype) {
    case ANML_DTYPE_F16: ((uint16_t *)p)[i] = anml__fp32_to_fp16(v); return;
    case ANML_DTYPE_F32: ((float *)p)[i] = v; return;
    case ANML_DTYPE_F64: ((double *)p)[i] = (double)v; return;
    case ANML_DTYPE_BF16: ((uint16_t *)p)[i] = anml__fp32_to_bf16(v); return;
    case ANML_DTYPE_BOOL: ((uint8_t *)p)[i] = v != 0.0f; return;
    default: {
        int64_t x;
        if (!(v == v)) {
            x = 0;
        } else if (v >= 9.2233715e18f) {
            x = INT64_MAX;
        } else if (v <= -9.2233715e18f) {
            x = INT64_MIN;
        } else {
            x = (int64_t)v;
        }
        ex_set_i64(t, i, x);
        return;
    }
    }
}

void ex_set_i64(struct ex_tensor *t, int64_t i, int64_t v) {
    void *p = t->data;
    switch (t->dtype) {
    case ANML_DTYPE_BOOL: ((uint8_t *)p)[i] = v != 0; return;
    case ANML_DTYPE_UINT8: ((uint8_t *)p)[i] = (uint8_t)v; return;
    case ANML_DTYPE_INT8: ((int8_t *)p)[i] = (int8_t)v; return;
    case ANML_DTYPE_INT16: ((int16_t *)p)[i] = (int16_t)v; return;
    case ANML_DTYPE_UINT16: ((uint16_t *)p)[i] = (uint16_t)v; return;
    case ANML_DTYPE_INT32: ((int32_t *)p)[i] = (int32_t)v; return;
    case ANML_DTYPE_UINT32: ((uint32_t *)p)[i] = (uint32_t)v; return;
    case ANML_DTYPE_INT64: ((int64_t *)p)[i] = v; return;
    case ANML_DTYPE_UINT64: ((uint64_t *)p)[i] = (uint64_t)v; return;
    case ANML_DTYPE_F16:
    case ANML_DTYPE_F32:
    case ANML_DTYPE_F64:
    case ANML_DTYPE_BF16: ex_set_f32(t, i, (float)v); return;
    default: return;
    }
}

void ex_to_f32(const struct ex_tensor *src, int64_t src_off, int64_t n, float *dst) {
    if (src->dtype == ANML_DTYPE_F16) {
        const uint16_t *s = (const uint16_t *)src->data + src_off;
        for (int64_t i = 0; i < n; i++) {
            dst[i] = anml__fp16_to_fp32(s[i]);
        }
    } else if (src->dtype == ANML_DTYPE_F32) {
        memcpy(dst, (const float *)src->data + src_off, (size_t)n * sizeof(float));
    } else {
        for (int64_t i = 0; i < n; i++) {
            dst[i] = ex_get_f32(src, src_off + i);
        }
    }
}

void ex_from_f32(struct ex_tensor *dst, int64_t dst_off, int64_t n, const float *src) {
    if (dst->dtype == ANML_DTYPE_F16) {
        uint16_t *d = (uint16_t *)dst->data + dst_off;
        for (int64_t i = 0; i < n; i++) {
            d[i] = anml__fp32_to_fp16(src[i]);
        }
    } else if (dst->dtype == ANML_DTYPE_F32) {
        memcpy((float *)dst->data + dst_off, src, (size_t)n * sizeof(float));
    } else {
        for (int64_t i = 0; i < n; i++) {
            ex_set_f32(dst, dst_off + i, src[i]);
        }
    }
}

/* ---- infer helpers ---- */

void ex_set_shape(struct ex_tensor *t, enum anml_dtype dt, int32_t rank, const int64_t *shape) {
    t->dtype = dt;
    t->rank = rank;
    t->numel = 1;
    for (int32_t i = 0; i < rank; i++) {
        t->shape[i] = shape[i];
        t->numel *= shape[i];
    }
}

enum anml_status ex_declared(struct ex_call *c, int32_t i) {
    if (i >= c->op->n_results) {
        return ex_fail(c, ANML_E_INTERNAL, "no declared result #%d", (int)i);
    }
    const struct mil_type *ty = c->op->results[i].type;
    if (ty->kind != MIL_TYPE_TENSOR || ty->rank < 0 || ty->rank > EX_MAX_DIMS) {
        return ex_fail(c, ANML_E_UNSUPPORTED, "result '%s' has no usable tensor type",
                       c->op->results[i].name);
    }
    int64_t numel;
    for (int32_t d = 0; d < ty->rank; d++) {
        if (ty->dims[d] < 0) {
            return ex_fail(c, ANML_E_UNSUPPORTED,
                           "shape of result '%s' depends on runtime values and its declared type "
                           "has unknown dims",
                           c->op->results[i].name);
        }
    }
    if (!anml__shape_numel(ty->dims, ty->rank, &numel)) {
        return ex_fail(c, ANML_E_SHAPE, "declared shape of '%s' overflows", c->op->results[i].name);
    }
    ex_set_shape(c->outs[i], ty->dtype, ty->rank, ty->dims);
    return ANML_OK;
}

bool ex_axis(struct ex_call *c, int64_t axis, int32_t rank, int32_t *out) {
    int64_t a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= rank) {
        ex_fail(c, ANML_E_SHAPE, "axis %lld out of range for rank %d", (long long)axis, (int)rank);
        return false;
    }
    *out = (int32_t)a;
    return true;
}

bool ex_broadcast(struct ex_call *c, const struct ex_tensor *a, const struct ex_tensor *b,
                  int32_t *rank, int64_t *shape) {
    int32_t r = a->rank > b->rank ? a->rank : b->rank;
    for (int32_t i = 0; i < r; i++) {
        int32_t ia = i - (r - a->rank);
        int32_t ib = i - (r - b->rank);
        int64_t da = ia >= 0 ? a->shape[ia] : 1;
        int64_t db = ib >= 0 ? b->shape[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            ex_fail(c, ANML_E_SHAPE, "cannot broadcast '%s' and '%s' at axis %d (%lld vs %lld)",
                    a->name, b->name, (int)i, (long long)da, (long long)db);
            return false;
        }
        shape[i] = da == 1 ? db : da;
    }
    *rank = r;
    return true;
}

void ex_request_scratch(struct ex_call *c, size_t bytes) {
    if (bytes > c->scratch_request) {
        c->scratch_request = bytes;
    }
}

/* ---- scratch carving ---- */

void *ex_carve_bytes(struct ex_carve *cv, int64_t n, size_t elem) {
    size_t bytes;
    if (n < 0 || !anml__mul_size((size_t)n, elem, &bytes) || !anml__add_size(bytes, 63, &bytes)) {
        cv->overflow = true;
        return NULL;
    }
    bytes &= ~(size_t)63; /* keep every buffer 64-byte aligned relative to the base */
    void *p = cv->base ? cv->base + cv->used : NULL;
    if (!anml__add_size(cv->used, bytes, &cv->used)) {
        cv->overflow = true;
    }
    return p;
}

enum anml_status ex_carve_request(struct ex_call *c, const struct ex_carve *cv) {
    if (cv->overflow) {
        return ex_fail(c, ANML_E_SHAPE, "scratch memory size overflows");
    }
    ex_request_scratch(c, cv->used);
    return ANML_OK;
}

/* An op whose buffers are all empty gets no scratch; a non-NULL base keeps zero-length
 * memcpy/memset calls on those buffers well-defined. */
static _Alignas(64) char k_no_scratch[64];

struct ex_carve ex_carve_run(struct ex_call *c) {
    struct ex_carve cv = { c->scratch ? (char *)c->scratch : k_no_scratch, 0, false };
    return cv;
}
