/*
 * constexpr.c -- decoding of compressed constants (coreml-format.md §9.1): parameter lookup for
 * the iOS16 (attribute) and iOS18 (input) forms of the constexpr_* ops, validation, the compressed
 * LUT-weight descriptor and its run decoder, and dense materialization of every constexpr op.
 *
 * Parameter data is never copied when it lives in a blob or an immediate value: an internal
 * `cx_tensor` points at it and records whether sub-byte elements are a packed LSB-first stream
 * (blob data) or one byte per element (immediate values, per program.h). A parameter bound by
 * name to another constexpr op is materialized into a temporary buffer owned by the decoding
 * context and freed before returning; the compressed descriptor therefore does not accept such
 * inputs (it must point at memory that lives as long as the program).
 *
 * Rounding: affine_dequantize computes scale * (q - zero_point) in fp32 and rounds once to the
 * output dtype. blockwise_shift_scale follows coremltools' reference (NumPy) order: data (and an
 * integer offset) are converted to the output dtype, `data - offset` is rounded to the output
 * dtype (unless the offset is fp32, which makes the difference fp32), then multiplied by the
 * scale and rounded. LUT ops copy table entries bit-exactly.
 */
#include "coreml/constexpr.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "coreml/blob.h"

#define CX_MAX_RANK  (ANML_LUT_MAX_RANK + 2)
#define CX_MAX_DEPTH 8
#define CX_MAX_TEMPS 16

/* One parameter's data. */
struct cx_tensor {
    const char *param;
    enum anml_dtype dtype;
    int32_t rank;
    int64_t shape[CX_MAX_RANK];
    int64_t numel;
    const uint8_t *data;
    bool packed; /* sub-byte elements as an LSB-first bit stream (blob data) */
    bool from_blob;
    char **strings; /* STRING tensors */
};

struct cx_ctx {
    const struct mil_program *prog;
    const struct mil_op *op;
    const struct mil_function *fn; /* holding op; NULL when not found */
    struct anml_error *err;
    int depth;
    bool allow_nested; /* may parameters be materialized from other constexpr ops? */
    void *temps[CX_MAX_TEMPS];
    int n_temps;
};

static enum anml_status cx_materialize_into(struct cx_ctx *parent, const struct mil_op *op,
                                            int32_t result, void *out, size_t out_bytes);

/* ---- messages ---- */

static void cx_where(const struct cx_ctx *c, char *buf, size_t cap) {
    buf[0] = '\0';
    if (c->op->line > 0) {
        const char *file = "model.mil";
        const char *src = c->prog->source_path;
        size_t n = src ? strlen(src) : 0;
        if (n > 4 && strcmp(src + n - 4, ".mil") == 0) {
            const char *slash = strrchr(src, '/');
            file = slash ? slash + 1 : src;
        }
        snprintf(buf, cap, "%s:%d:%d", file, (int)c->op->line, (int)c->op->col);
    }
}

ANML_PRINTF(3, 4)
static enum anml_status cx_fail(struct cx_ctx *c, enum anml_status code, const char *fmt, ...) {
    if (!c->err) {
        return code;
    }
    char detail[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    char where[300];
    cx_where(c, where, sizeof where);
    return anml__err(c->err, code, where, "%s '%s': %s", c->op->type ? c->op->type : "op",
                     anml__mil_op_name(c->op), detail);
}

/* ---- element access ---- */

static uint64_t cx_load(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}

static bool cx_is_intlike(enum anml_dtype dt) {
    switch (dt) {
    case ANML_DTYPE_BOOL:
    case ANML_DTYPE_INT4:
    case ANML_DTYPE_INT8:
    case ANML_DTYPE_INT16:
    case ANML_DTYPE_INT32:
    case ANML_DTYPE_INT64:
    case ANML_DTYPE_UINT1:
    case ANML_DTYPE_UINT2:
    case ANML_DTYPE_UINT3:
    case ANML_DTYPE_UINT4:
    case ANML_DTYPE_UINT6:
    case ANML_DTYPE_UINT8:
    case ANML_DTYPE_UINT16:
    case ANML_DTYPE_UINT32:
    case ANML_DTYPE_UINT64: return true;
    default: return false;
    }
}

static bool cx_is_float(enum anml_dtype dt) {
    return dt == ANML_DTYPE_F16 || dt == ANML_DTYPE_F32 || dt == ANML_DTYPE_F64 ||
           dt == ANML_DTYPE_BF16;
}

/* Integer element i (sub-byte types honour the packed flag; int4 sign-extended). */
static int64_t cx_int(const struct cx_tensor *t, int64_t i) {
    if (anml__dtype_is_subbyte(t->dtype)) {
        int64_t u;
        if (t->packed) {
            u = anml__subbyte_get(t->data, anml_dtype_bits(t->dtype), i);
            if (t->dtype == ANML_DTYPE_INT4 && u >= 8) {
                u -= 16;
            }
        } else {
            u = t->dtype == ANML_DTYPE_INT4 ? (int64_t)(int8_t)t->data[i] : (int64_t)t->data[i];
        }
        return u;
    }
    const uint8_t *p = t->data + (size_t)i * anml__dtype_size(t->dtype);
    switch (t->dtype) {
    case ANML_DTYPE_BOOL:
    case ANML_DTYPE_UINT8: return p[0];
    case ANML_DTYPE_INT8: return (int8_t)p[0];
    case ANML_DTYPE_INT16: return (int16_t)(uint16_t)cx_load(p, 2);
    case ANML_DTYPE_UINT16: return (int64_t)cx_load(p, 2);
    case ANML_DTYPE_INT32: return (int32_t)(uint32_t)cx_load(p, 4);
    case ANML_DTYPE_UINT32: return (int64_t)cx_load(p, 4);
    case ANML_DTYPE_INT64:
    case ANML_DTYPE_UINT64: return (int64_t)cx_load(p, 8);
    default: return 0;
    }
}

static float cx_float(const struct cx_tensor *t, int64_t i) {
    const uint8_t *p;
    switch (t->dtype) {
    case ANML_DTYPE_F16:
        p = t->data + (size_t)i * 2;
        return anml__fp16_to_fp32((uint16_t)cx_load(p, 2));
    case ANML_DTYPE_BF16:
        p = t->data + (size_t)i * 2;
        return anml__bf16_to_fp32((uint16_t)cx_load(p, 2));
    case ANML_DTYPE_F32: {
        float f;
        memcpy(&f, t->data + (size_t)i * 4, 4);
        return f;
    }
    case ANML_DTYPE_F64: {
        double d;
        memcpy(&d, t->data + (size_t)i * 8, 8);
        return (float)d;
    }
    default: return (float)cx_int(t, i);
    }
}

/* Rounds v to dtype (fp16/bf16/fp32) and returns it as a float. */
static float cx_round(float v, enum anml_dtype dt) {
    if (dt == ANML_DTYPE_F16) {
        return anml__fp16_to_fp32(anml__fp32_to_fp16(v));
    }
    if (dt == ANML_DTYPE_BF16) {
        return anml__bf16_to_fp32(anml__fp32_to_bf16(v));
    }
    return v;
}

static void cx_store_float(void *out, enum anml_dtype dt, int64_t i, float v) {
    uint8_t *p = out;
    if (dt == ANML_DTYPE_F16) {
        uint16_t h = anml__fp32_to_fp16(v);
        memcpy(p + (size_t)i * 2, &h, 2);
    } else if (dt == ANML_DTYPE_BF16) {
        uint16_t h = anml__fp32_to_bf16(v);
        memcpy(p + (size_t)i * 2, &h, 2);
    } else if (dt == ANML_DTYPE_F64) {
        double d = (double)v;
        memcpy(p + (size_t)i * 8, &d, 8);
    } else {
        memcpy(p + (size_t)i * 4, &v, 4);
    }
}

/* Copies element i of t into out[j] in the IR's unpacked layout (same dtype). */
static void cx_copy_elem(const struct cx_tensor *t, int64_t i, void *out, int64_t j) {
    uint8_t *o = out;
    if (anml__dtype_is_subbyte(t->dtype)) {
        o[j] = (uint8_t)(int8_t)cx_int(t, i);
        return;
    }
    size_t es = anml__dtype_size(t->dtype);
    memcpy(o + (size_t)j * es, t->data + (size_t)i * es, es);
}

/* ---- parameters ---- */

static void cx_ctx_free(struct cx_ctx *c) {
    for (int i = 0; i < c->n_temps; i++) {
        anml__free(c->temps[i]);
    }
    c->n_temps = 0;
}

static bool block_contains(const struct mil_block *b, const struct mil_op *op) {
    if (b->n_ops > 0 && op >= b->ops && op < b->ops + b->n_ops) {
        return true;
    }
    for (int32_t i = 0; i < b->n_ops; i++) {
        for (int32_t j = 0; j < b->ops[i].n_blocks; j++) {
            if (block_contains(&b->ops[i].blocks[j], op)) {
                return true;
            }
        }
    }
    return false;
}

static const struct mil_op *block_producer(const struct mil_block *b, const char *name,
                                           int32_t *result) {
    for (int32_t i = 0; i < b->n_ops; i++) {
        const struct mil_op *o = &b->ops[i];
        for (int32_t r = 0; r < o->n_results; r++) {
            if (o->results[r].name && strcmp(o->results[r].name, name) == 0) {
                *result = r;
                return o;
            }
        }
        for (int32_t j = 0; j < o->n_blocks; j++) {
            const struct mil_op *p = block_producer(&o->blocks[j], name, result);
            if (p) {
                return p;
            }
        }
    }
    return NULL;
}

static const struct mil_function *cx_find_function(const struct mil_program *prog,
                                                   const struct mil_op *op) {
    for (int32_t i = 0; i < prog->n_functions; i++) {
        if (block_contains(&prog->functions[i].block, op)) {
            return &prog->functions[i];
        }
    }
    return NULL;
}

/* Fills the shape part of *t from a fully known tensor type. */
static enum anml_status cx_shape_from_type(struct cx_ctx *c, const char *param,
                                           const struct mil_type *ty, struct cx_tensor *t) {
    if (!ty || ty->kind != MIL_TYPE_TENSOR) {
        return cx_fail(c, ANML_E_FORMAT, "parameter '%s' is not a tensor", param);
    }
    if (ty->rank < 0 || ty->rank > CX_MAX_RANK || (ty->rank > 0 && !ty->dims)) {
        return cx_fail(c, ANML_E_UNSUPPORTED, "parameter '%s' has rank %d (supported: 0..%d)",
                       param, (int)ty->rank, CX_MAX_RANK);
    }
    t->param = param;
    t->dtype = ty->dtype;
    t->rank = ty->rank;
    for (int32_t k = 0; k < ty->rank; k++) {
        t->shape[k] = ty->dims[k];
    }
    if (!anml__shape_numel(t->shape, t->rank, &t->numel)) {
        return cx_fail(c, ANML_E_FORMAT, "parameter '%s' must have a fully known shape", param);
    }
    return ANML_OK;
}

static enum anml_status cx_from_value(struct cx_ctx *c, const char *param,
                                      const struct mil_value *v, struct cx_tensor *t) {
    memset(t, 0, sizeof *t);
    if (!v || (v->kind != MIL_VALUE_TENSOR && v->kind != MIL_VALUE_BLOB)) {
        return cx_fail(c, ANML_E_FORMAT, "parameter '%s' is not a tensor value", param);
    }
    enum anml_status st = cx_shape_from_type(c, param, v->type, t);
    if (st != ANML_OK) {
        return st;
    }
    if (v->kind == MIL_VALUE_BLOB) {
        if (!c->prog->blobs) {
            return cx_fail(c, ANML_E_INTERNAL, "parameter '%s': no weight files are open", param);
        }
        struct mil_blob_view view;
        st = anml__blob_resolve(c->prog->blobs, v, &view, c->err);
        if (st != ANML_OK) {
            anml__err_prefix(c->err, "%s '%s': parameter '%s'", c->op->type,
                             anml__mil_op_name(c->op), param);
            return st;
        }
        t->data = view.data;
        t->packed = anml__dtype_is_subbyte(view.dtype);
        t->from_blob = true;
        return ANML_OK;
    }
    if (t->dtype == ANML_DTYPE_STRING) {
        if (v->n_elem != t->numel || (t->numel > 0 && !v->data)) {
            return cx_fail(c, ANML_E_FORMAT, "parameter '%s': string value without data", param);
        }
        t->strings = v->data;
        return ANML_OK;
    }
    if (anml__dtype_size(t->dtype) == 0) {
        return cx_fail(c, ANML_E_FORMAT, "parameter '%s' has dtype %s", param,
                       anml_dtype_name(t->dtype));
    }
    if (v->n_elem != t->numel || (t->numel > 0 && !v->data)) {
        return cx_fail(c, ANML_E_FORMAT,
                       "parameter '%s': immediate value holds %" PRId64
                       " elements, its type %" PRId64,
                       param, v->n_elem, t->numel);
    }
    t->data = v->data;
    return ANML_OK;
}

/* Finds parameter `param`: an argument (iOS18 inputs: literal or a name bound to a const or
 * constexpr op) or else an attribute (iOS16). *found is false when it is absent. */
static enum anml_status cx_param(struct cx_ctx *c, const char *param, bool required,
                                 struct cx_tensor *t, bool *found) {
    memset(t, 0, sizeof *t);
    *found = false;
    const struct mil_arg *arg = anml__mil_op_arg(c->op, param);
    if (arg && arg->n_bindings > 0) {
        *found = true;
        if (arg->n_bindings > 1) {
            return cx_fail(c, ANML_E_FORMAT, "parameter '%s' is bound to %d values, expected one",
                           param, (int)arg->n_bindings);
        }
        const struct mil_binding *b = &arg->bindings[0];
        if (b->value) {
            return cx_from_value(c, param, b->value, t);
        }
        if (!b->name) {
            return cx_fail(c, ANML_E_FORMAT, "parameter '%s' has an empty binding", param);
        }
        int32_t result = 0;
        const struct mil_op *p = c->fn ? block_producer(&c->fn->block, b->name, &result) : NULL;
        if (!p) {
            return cx_fail(c, ANML_E_FORMAT,
                           "parameter '%s' is bound to '%s', which is not a constant", param,
                           b->name);
        }
        if (p->type && strcmp(p->type, "const") == 0) {
            const struct mil_attr *val = anml__mil_op_attr(p, "val");
            if (!val) {
                return cx_fail(c, ANML_E_FORMAT, "parameter '%s': const '%s' has no val", param,
                               b->name);
            }
            return cx_from_value(c, param, val->value, t);
        }
        if (!p->type || !anml__is_constexpr_op(p->type)) {
            return cx_fail(c, ANML_E_FORMAT,
                           "parameter '%s' is bound to '%s', the result of a %s op, which is not a "
                           "constant",
                           param, b->name, p->type ? p->type : "?");
        }
        if (!c->allow_nested) {
            return cx_fail(c, ANML_E_UNSUPPORTED,
                           "parameter '%s' comes from %s '%s'; it cannot stay compressed (use a "
                           "dense copy)",
                           param, p->type, b->name);
        }
        if (c->depth >= CX_MAX_DEPTH || c->n_temps >= CX_MAX_TEMPS) {
            return cx_fail(c, ANML_E_FORMAT, "parameter '%s': constexpr chain too deep", param);
        }
        enum anml_status st = cx_shape_from_type(c, param, p->results[result].type, t);
        if (st != ANML_OK) {
            return st;
        }
        size_t es = anml__dtype_size(t->dtype);
        size_t bytes;
        if (es == 0 || !anml__mul_size((size_t)t->numel, es, &bytes)) {
            return cx_fail(c, ANML_E_FORMAT, "parameter '%s': bad result type of '%s'", param,
                           b->name);
        }
        void *buf = anml__malloc(bytes ? bytes : 1);
        if (!buf) {
            return cx_fail(c, ANML_E_NOMEM, "out of memory");
        }
        c->temps[c->n_temps++] = buf;
        st = cx_materialize_into(c, p, result, buf, bytes);
        if (st != ANML_OK) {
            return st;
        }
        t->data = buf;
        t->packed = false;
        return ANML_OK;
    }
    const struct mil_attr *attr = anml__mil_op_attr(c->op, param);
    if (attr) {
        *found = true;
        return cx_from_value(c, param, attr->value, t);
    }
    if (required) {
        return cx_fail(c, ANML_E_FORMAT, "missing parameter '%s'", param);
    }
    return ANML_OK;
}

static enum anml_status cx_require(struct cx_ctx *c, const char *param, struct cx_tensor *t) {
    bool found;
    return cx_param(c, param, true, t, &found);
}

static bool cx_has(const struct cx_ctx *c, const char *param) {
    const struct mil_arg *a = anml__mil_op_arg(c->op, param);
    return (a && a->n_bindings > 0) || anml__mil_op_attr(c->op, param);
}

/* A scalar integer parameter (rank 0 or a one-element rank 1). */
static enum anml_status cx_scalar_int(struct cx_ctx *c, const struct cx_tensor *t, int64_t *out) {
    if (!cx_is_intlike(t->dtype) || t->numel != 1 || t->rank > 1) {
        return cx_fail(c, ANML_E_FORMAT, "parameter '%s' must be an integer scalar", t->param);
    }
    *out = cx_int(t, 0);
    return ANML_OK;
}

/* Reads an integer vector parameter (an output shape). */
static enum anml_status cx_shape_param(struct cx_ctx *c, const struct cx_tensor *t, int32_t *rank,
                                       int64_t *shape, int64_t *numel) {
    if (!cx_is_intlike(t->dtype) || t->rank != 1) {
        return cx_fail(c, ANML_E_FORMAT, "parameter '%s' must be a rank-1 integer tensor",
                       t->param);
    }
    if (t->numel < 1 || t->numel > ANML_LUT_MAX_RANK) {
        return cx_fail(c, ANML_E_UNSUPPORTED,
                       "parameter '%s': output rank %" PRId64 " (supported: 1..%d)", t->param,
                       t->numel, ANML_LUT_MAX_RANK);
    }
    *rank = (int32_t)t->numel;
    for (int32_t k = 0; k < *rank; k++) {
        shape[k] = cx_int(t, k);
        if (shape[k] < 0) {
            return cx_fail(c, ANML_E_FORMAT, "parameter '%s': negative dimension %" PRId64,
                           t->param, shape[k]);
        }
    }
    if (!anml__shape_numel(shape, *rank, numel)) {
        return cx_fail(c, ANML_E_FORMAT, "parameter '%s': element count overflows", t->param);
    }
    return ANML_OK;
}

static void shape_str(const int64_t *s, int32_t rank, char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = '\0';
    n += (size_t)snprintf(buf + n, cap - n, "[");
    for (int32_t k = 0; k < rank && n < cap; k++) {
        n += (size_t)snprintf(buf + n, cap - n, "%s%" PRId64, k ? ", " : "", s[k]);
    }
    if (n < cap) {
        snprintf(buf + n, cap - n, "]");
    }
}

/* The op's declared result `idx` must be dtype dt with shape [rank] (unknown dims accepted). */
static enum anml_status cx_check_result(struct cx_ctx *c, int32_t idx, enum anml_dtype dt,
                                        int32_t rank, const int64_t *shape) {
    if (idx >= c->op->n_results) {
        return cx_fail(c, ANML_E_FORMAT, "op declares %d results, expected at least %d",
                       (int)c->op->n_results, (int)idx + 1);
    }
    const struct mil_type *ty = c->op->results[idx].type;
    const char *rname = c->op->results[idx].name ? c->op->results[idx].name : "?";
    char want[160], got[160];
    shape_str(shape, rank, want, sizeof want);
    if (!ty || ty->kind != MIL_TYPE_TENSOR || (ty->rank > 0 && !ty->dims)) {
        return cx_fail(c, ANML_E_FORMAT, "result '%s' is not a tensor", rname);
    }
    if (ty->dtype != dt) {
        return cx_fail(c, ANML_E_FORMAT, "result '%s' is declared %s, but the parameters give %s",
                       rname, anml_dtype_name(ty->dtype), anml_dtype_name(dt));
    }
    if (ty->rank < 0) {
        return ANML_OK;
    }
    bool ok = ty->rank == rank;
    for (int32_t k = 0; ok && k < rank; k++) {
        ok = ty->dims[k] == MIL_DIM_UNKNOWN || ty->dims[k] == shape[k];
    }
    if (!ok) {
        anml__mil_type_str(ty, got, sizeof got);
        return cx_fail(c, ANML_E_FORMAT,
                       "result '%s' is declared %s, but the parameters give shape %s", rname, got,
                       want);
    }
    return ANML_OK;
}

/* Checks that unpacked sub-byte/int data lies in [0, limit). Packed streams cannot exceed it. */
static enum anml_status cx_check_index_range(struct cx_ctx *c, const struct cx_tensor *t,
                                             int64_t limit) {
    if (t->packed) {
        return ANML_OK;
    }
    /* A byte cannot exceed a 256-entry table: no need to touch every index of a large uint8
     * weight at load time (that would pull the whole mapped file into memory). Sub-byte data
     * from blobs is packed (above); unpacked sub-byte immediates are small and get checked. */
    if (t->dtype == ANML_DTYPE_UINT8 && limit >= 256) {
        return ANML_OK;
    }
    for (int64_t i = 0; i < t->numel; i++) {
        int64_t v = cx_int(t, i);
        if (v < 0 || v >= limit) {
            return cx_fail(c, ANML_E_FORMAT,
                           "parameter '%s': element %" PRId64 " is %" PRId64
                           ", outside 0..%" PRId64,
                           t->param, i, v, limit - 1);
        }
    }
    return ANML_OK;
}

/* ---- constexpr_lut_to_dense: descriptor ---- */

static int bits_of_entries(int64_t p) {
    switch (p) {
    case 2: return 1;
    case 4: return 2;
    case 8: return 3;
    case 16: return 4;
    case 64: return 6;
    case 256: return 8;
    default: return 0;
    }
}

static bool lut_dtype_ok(enum anml_dtype dt) {
    return dt == ANML_DTYPE_INT8 || dt == ANML_DTYPE_UINT8 || dt == ANML_DTYPE_F16 ||
           dt == ANML_DTYPE_F32;
}

/* iOS16: indices uint8 [M] (packed n-bit fields), lut [P], shape uint32 [K]. */
static enum anml_status lut_build_ios16(struct cx_ctx *c, const struct cx_tensor *indices,
                                        const struct cx_tensor *lut, const struct cx_tensor *shp,
                                        struct anml_lut_weight *w) {
    enum anml_status st = cx_shape_param(c, shp, &w->rank, w->shape, &w->numel);
    if (st != ANML_OK) {
        return st;
    }
    if (lut->rank != 1) {
        return cx_fail(c, ANML_E_FORMAT, "parameter 'lut' must have rank 1 (iOS16 form), got %d",
                       (int)lut->rank);
    }
    int bits = bits_of_entries(lut->shape[0]);
    if (bits == 0) {
        return cx_fail(c, ANML_E_FORMAT,
                       "parameter 'lut' has %" PRId64
                       " entries; expected 2, 4, 8, 16, 64 or 256 (1..8-bit indices)",
                       lut->shape[0]);
    }
    if (indices->dtype != ANML_DTYPE_UINT8 || indices->rank != 1) {
        return cx_fail(c, ANML_E_FORMAT,
                       "parameter 'indices' must be a rank-1 uint8 tensor (iOS16 form), got %s "
                       "rank %d",
                       anml_dtype_name(indices->dtype), (int)indices->rank);
    }
    uint64_t need = ((uint64_t)w->numel * (uint64_t)bits + 7) / 8;
    if ((uint64_t)indices->numel != need) {
        return cx_fail(c, ANML_E_FORMAT,
                       "parameter 'indices' holds %" PRId64 " bytes; %" PRId64
                       " %d-bit indices need %" PRIu64,
                       indices->numel, w->numel, bits, need);
    }
    w->index_bits = bits;
    w->indices = indices->data;
    w->indices_packed = true;
    w->lut_dtype = lut->dtype;
    w->lut = lut->data;
    w->n_entries = lut->shape[0];
    w->n_tables = 1;
    w->vector_size = 1;
    w->vector_axis = -1;
    for (int32_t k = 0; k < w->rank; k++) {
        w->idx_shape[k] = w->shape[k];
        w->lut_shape[k] = 1;
        w->group[k] = w->shape[k] > 0 ? w->shape[k] : 1;
    }
    return ANML_OK;
}

/* iOS18: indices uintN of shape I (rank K), lut [L0..L(K-1), 2^N, V], optional vector_axis. */
static enum anml_status lut_build_ios18(struct cx_ctx *c, const struct cx_tensor *indices,
                                        const struct cx_tensor *lut, struct anml_lut_weight *w) {
    int bits;
    switch (indices->dtype) {
    case ANML_DTYPE_UINT1: bits = 1; break;
    case ANML_DTYPE_UINT2: bits = 2; break;
    case ANML_DTYPE_UINT3: bits = 3; break;
    case ANML_DTYPE_UINT4: bits = 4; break;
    case ANML_DTYPE_UINT6: bits = 6; break;
    case ANML_DTYPE_UINT8: bits = 8; break;
    default:
        return cx_fail(c, ANML_E_FORMAT,
                       "parameter 'indices' has dtype %s; expected uint1, uint2, uint3, uint4, "
                       "uint6 or uint8",
                       anml_dtype_name(indices->dtype));
    }
    int32_t k_rank = indices->rank;
    if (k_rank < 1 || k_rank > ANML_LUT_MAX_RANK) {
        return cx_fail(c, ANML_E_UNSUPPORTED, "parameter 'indices' has rank %d (supported: 1..%d)",
                       (int)k_rank, ANML_LUT_MAX_RANK);
    }
    if (lut->rank != k_rank + 2) {
        return cx_fail(c, ANML_E_FORMAT,
                       "parameter 'lut' has rank %d; it must be rank(indices) + 2 = %d",
                       (int)lut->rank, (int)k_rank + 2);
    }
    int64_t p = lut->shape[k_rank];
    int64_t v = lut->shape[k_rank + 1];
    if (p != ((int64_t)1 << bits)) {
        return cx_fail(c, ANML_E_FORMAT,
                       "parameter 'lut': dimension %d (palette size) is %" PRId64
                       "; %s indices need exactly %lld entries",
                       (int)k_rank, p, anml_dtype_name(indices->dtype), 1LL << bits);
    }
    if (v < 1) {
        return cx_fail(c, ANML_E_FORMAT, "parameter 'lut': vector size %" PRId64 " must be >= 1",
                       v);
    }
    w->rank = k_rank;
    w->n_tables = 1;
    for (int32_t k = 0; k < k_rank; k++) {
        int64_t l = lut->shape[k];
        if (l < 1 || indices->shape[k] % l != 0) {
            return cx_fail(c, ANML_E_FORMAT,
                           "parameter 'lut': dimension %d is %" PRId64
                           ", which does not divide indices dimension %" PRId64,
                           (int)k, l, indices->shape[k]);
        }
        w->idx_shape[k] = indices->shape[k];
        w->lut_shape[k] = l;
        w->group[k] = indices->shape[k] / l > 0 ? indices->shape[k] / l : 1;
        w->shape[k] = indices->shape[k];
        w->n_tables *= l; /* bounded by lut->numel, which did not overflow */
    }
    w->vector_axis = -1;
    bool have_axis = false;
    struct cx_tensor axis_t;
    enum anml_status st = cx_param(c, "vector_axis", false, &axis_t, &have_axis);
    if (st != ANML_OK) {
        return st;
    }
    if (have_axis) {
        int64_t a;
        st = cx_scalar_int(c, &axis_t, &a);
        if (st != ANML_OK) {
            return st;
        }
        if (a < -k_rank || a >= k_rank) {
            return cx_fail(c, ANML_E_FORMAT, "vector_axis %" PRId64 " out of range [%d, %d)", a,
                           -(int)k_rank, (int)k_rank);
        }
        if (v > 1) {
            w->vector_axis = (int32_t)(a < 0 ? a + k_rank : a);
        }
    } else if (v > 1) {
        return cx_fail(c, ANML_E_FORMAT,
                       "parameter 'lut' has vector size %" PRId64 ", which requires 'vector_axis'",
                       v);
    }
    if (w->vector_axis >= 0 &&
        !anml__mul_i64(w->shape[w->vector_axis], v, &w->shape[w->vector_axis])) {
        return cx_fail(c, ANML_E_FORMAT, "output dimension overflows");
    }
    if (!anml__shape_numel(w->shape, w->rank, &w->numel)) {
        return cx_fail(c, ANML_E_FORMAT, "output element count overflows");
    }
    st = cx_check_index_range(c, indices, p);
    if (st != ANML_OK) {
        return st;
    }
    w->index_bits = bits;
    w->indices = indices->data;
    w->indices_packed = indices->packed;
    w->lut_dtype = lut->dtype;
    w->lut = lut->data;
    w->n_entries = p;
    w->vector_size = v;
    return ANML_OK;
}

static enum anml_status lut_build(struct cx_ctx *c, struct anml_lut_weight *w) {
    memset(w, 0, sizeof *w);
    struct cx_tensor indices, lut;
    enum anml_status st = cx_require(c, "indices", &indices);
    if (st == ANML_OK) {
        st = cx_require(c, "lut", &lut);
    }
    if (st != ANML_OK) {
        return st;
    }
    if (!lut_dtype_ok(lut.dtype)) {
        return cx_fail(c, ANML_E_FORMAT,
                       "parameter 'lut' has dtype %s; expected int8, uint8, fp16 or fp32",
                       anml_dtype_name(lut.dtype));
    }
    if (cx_has(c, "shape")) {
        struct cx_tensor shp;
        st = cx_require(c, "shape", &shp);
        if (st == ANML_OK) {
            st = lut_build_ios16(c, &indices, &lut, &shp, w);
        }
    } else {
        st = lut_build_ios18(c, &indices, &lut, w);
    }
    if (st != ANML_OK) {
        return st;
    }
    w->out_dtype = lut.dtype;
    return cx_check_result(c, 0, w->out_dtype, w->rank, w->shape);
}

bool anml__is_constexpr_op(const char *type) {
    return type && strncmp(type, "constexpr_", 10) == 0;
}

enum anml_status anml__constexpr_lut_from_op(const struct mil_program *prog,
                                             const struct mil_op *op, struct anml_lut_weight *w,
                                             struct anml_error *err) {
    struct cx_ctx c = { .prog = prog, .op = op, .err = err };
    memset(w, 0, sizeof *w);
    if (!op->type || strcmp(op->type, "constexpr_lut_to_dense") != 0) {
        return cx_fail(&c, ANML_E_INVALID_ARG, "not a constexpr_lut_to_dense op");
    }
    c.fn = cx_find_function(prog, op);
    c.allow_nested = false; /* the descriptor must not point at temporaries */
    enum anml_status st = lut_build(&c, w);
    cx_ctx_free(&c);
    if (st != ANML_OK) {
        memset(w, 0, sizeof *w);
    }
    return st;
}

/* ---- constexpr_lut_to_dense: decoding ---- */

/* Walks output positions in row-major order, tracking the index position, the table and the
 * vector component incrementally (no divisions per element). Axes of output size 1 are skipped. */
struct lut_iter {
    int32_t n; /* active axes */
    int64_t out_dim[ANML_LUT_MAX_RANK];
    int64_t idx_dim[ANML_LUT_MAX_RANK];
    int64_t lut_dim[ANML_LUT_MAX_RANK];
    int64_t group[ANML_LUT_MAX_RANK];
    int64_t istride[ANML_LUT_MAX_RANK];
    int64_t lstride[ANML_LUT_MAX_RANK];
    bool is_vec[ANML_LUT_MAX_RANK];
    int64_t c[ANML_LUT_MAX_RANK]; /* output coordinate */
    int64_t r[ANML_LUT_MAX_RANK]; /* index coordinate modulo group */
    int64_t vsize;
    int64_t v;   /* vector component */
    int64_t idx; /* flat index position */
    int64_t tab; /* flat table number */
};

static void lut_iter_init(struct lut_iter *it, const struct anml_lut_weight *w, int64_t first) {
    int64_t istr[ANML_LUT_MAX_RANK], lstr[ANML_LUT_MAX_RANK];
    int64_t s1 = 1, s2 = 1;
    for (int32_t k = w->rank - 1; k >= 0; k--) {
        istr[k] = s1;
        lstr[k] = s2;
        s1 *= w->idx_shape[k];
        s2 *= w->lut_shape[k];
    }
    it->n = 0;
    it->vsize = w->vector_size;
    it->v = 0;
    it->idx = 0;
    it->tab = 0;
    /* Unravel `first` over all axes, then keep the axes that can move. */
    int64_t coord[ANML_LUT_MAX_RANK];
    int64_t rem = first;
    for (int32_t k = w->rank - 1; k >= 0; k--) {
        int64_t d = w->shape[k] > 0 ? w->shape[k] : 1;
        coord[k] = rem % d;
        rem /= d;
    }
    for (int32_t k = 0; k < w->rank; k++) {
        bool vec = k == w->vector_axis;
        int64_t p = vec ? coord[k] / w->vector_size : coord[k];
        if (vec) {
            it->v = coord[k] % w->vector_size;
        }
        it->idx += p * istr[k];
        it->tab += (p / w->group[k]) * lstr[k];
        if (w->shape[k] <= 1) {
            continue;
        }
        int32_t a = it->n++;
        it->out_dim[a] = w->shape[k];
        it->idx_dim[a] = w->idx_shape[k];
        it->lut_dim[a] = w->lut_shape[k];
        it->group[a] = w->group[k];
        it->istride[a] = istr[k];
        it->lstride[a] = lstr[k];
        it->is_vec[a] = vec;
        it->c[a] = coord[k];
        it->r[a] = p % w->group[k];
    }
}

static inline void lut_iter_next(struct lut_iter *it) {
    for (int32_t a = it->n - 1; a >= 0; a--) {
        if (++it->c[a] < it->out_dim[a]) {
            if (it->is_vec[a] && ++it->v < it->vsize) {
                return;
            }
            it->v = it->is_vec[a] ? 0 : it->v;
            it->idx += it->istride[a];
            if (++it->r[a] == it->group[a]) {
                it->r[a] = 0;
                it->tab += it->lstride[a];
            }
            return;
        }
        /* wrap: back to coordinate 0 on this axis */
        it->c[a] = 0;
        it->r[a] = 0;
        if (it->is_vec[a]) {
            it->v = 0;
        }
        it->idx -= (it->idx_dim[a] - 1) * it->istride[a];
        it->tab -= (it->lut_dim[a] - 1) * it->lstride[a];
    }
}

/* Flat lut element of the iterator's current position. */
static inline int64_t lut_iter_entry(const struct lut_iter *it, const struct anml_lut_weight *w) {
    uint32_t e = w->indices_packed ? anml__subbyte_get(w->indices, w->index_bits, it->idx)
                                   : w->indices[it->idx];
    return (it->tab * w->n_entries + (int64_t)e) * w->vector_size + it->v;
}

/* Index element j of the descriptor's index stream. */
static inline uint32_t lut_index(const struct anml_lut_weight *w, int64_t j) {
    if (!w->indices_packed || w->index_bits == 8) {
        return w->indices[j];
    }
    if (w->index_bits == 4) {
        return (uint32_t)(w->indices[j >> 1] >> ((j & 1) * 4)) & 15u;
    }
    return anml__subbyte_get(w->indices, w->index_bits, j);
}

static inline float lut_elem_f32(const struct anml_lut_weight *w, int64_t e) {
    const uint8_t *lut = w->lut;
    switch (w->lut_dtype) {
    case ANML_DTYPE_F16: {
        uint16_t h;
        memcpy(&h, lut + (size_t)e * 2, 2);
        return anml__fp16_to_fp32(h);
    }
    case ANML_DTYPE_F32: {
        float f;
        memcpy(&f, lut + (size_t)e * 4, 4);
        return f;
    }
    case ANML_DTYPE_INT8: return (float)(int8_t)lut[e];
    default: return (float)lut[e];
    }
}

/* Length of the run starting at the iterator's position along the innermost moving axis in which
 * the table stays the same and indices are consecutive (scalar palettes only); 1 otherwise. The
 * innermost moving axis always has index stride 1, because every axis after it has size 1. */
static inline int64_t lut_iter_run(const struct lut_iter *it, int64_t n) {
    if (it->n == 0 || it->vsize != 1) {
        return 1;
    }
    int32_t a = it->n - 1;
    int64_t run = it->out_dim[a] - it->c[a];
    if (it->group[a] - it->r[a] < run) {
        run = it->group[a] - it->r[a];
    }
    return run < n ? run : n;
}

/* Moves the iterator forward by run elements along the innermost axis (run - 1 of them stay in
 * the current table block; the last step may cross into the next block or row). */
static inline void lut_iter_skip(struct lut_iter *it, int64_t run) {
    if (run > 1) {
        int32_t a = it->n - 1;
        it->c[a] += run - 1;
        it->r[a] += run - 1;
        it->idx += run - 1;
    }
    lut_iter_next(it);
}

void anml__lut_decode_raw(const struct anml_lut_weight *w, int64_t first_elem, int64_t n,
                          void *out) {
    ANML_ASSERT(first_elem >= 0 && n >= 0 && n <= w->numel - first_elem);
    if (n == 0) {
        return;
    }
    struct lut_iter it;
    lut_iter_init(&it, w, first_elem);
    size_t es = anml__dtype_size(w->lut_dtype);
    const uint8_t *lut = w->lut;
    uint8_t *o = out;
    for (int64_t i = 0; i < n;) {
        int64_t run = lut_iter_run(&it, n - i);
        if (run == 1) {
            memcpy(o + (size_t)i * es, lut + (size_t)lut_iter_entry(&it, w) * es, es);
        } else {
            const uint8_t *table = lut + (size_t)(it.tab * w->n_entries) * es;
            for (int64_t j = 0; j < run; j++) {
                memcpy(o + (size_t)(i + j) * es, table + (size_t)lut_index(w, it.idx + j) * es, es);
            }
        }
        i += run;
        lut_iter_skip(&it, run);
    }
}

void anml__lut_decode_f32(const struct anml_lut_weight *w, int64_t first_elem, int64_t n,
                          float *out) {
    ANML_ASSERT(first_elem >= 0 && n >= 0 && n <= w->numel - first_elem);
    if (n == 0) {
        return;
    }
    struct lut_iter it;
    lut_iter_init(&it, w, first_elem);
    for (int64_t i = 0; i < n;) {
        int64_t run = lut_iter_run(&it, n - i);
        if (run == 1) {
            out[i] = lut_elem_f32(w, lut_iter_entry(&it, w));
        } else {
            int64_t base = it.tab * w->n_entries;
            for (int64_t j = 0; j < run; j++) {
                out[i + j] = lut_elem_f32(w, base + (int64_t)lut_index(w, it.idx + j));
            }
        }
        i += run;
        lut_iter_skip(&it, run);
    }
}

/* ---- dense materialization per op ---- */

struct cx_out {
    void *data;
    size_t bytes;
    int32_t result;
};

/* The declared result must be fully known; out_bytes must match it. */
static enum anml_status cx_out_check(struct cx_ctx *c, const struct cx_out *o, enum anml_dtype dt,
                                     int32_t rank, const int64_t *shape) {
    enum anml_status st = cx_check_result(c, o->result, dt, rank, shape);
    if (st != ANML_OK) {
        return st;
    }
    int64_t numel;
    size_t need;
    if (!anml__shape_numel(shape, rank, &numel) ||
        !anml__mul_size((size_t)numel, anml__dtype_size(dt), &need)) {
        return cx_fail(c, ANML_E_FORMAT, "output size overflows");
    }
    if (need != o->bytes) {
        return cx_fail(c, ANML_E_INVALID_ARG, "output buffer of %zu bytes, the result needs %zu",
                       o->bytes, need);
    }
    return ANML_OK;
}

static enum anml_status mat_lut_to_dense(struct cx_ctx *c, struct cx_out *o) {
    struct anml_lut_weight w;
    enum anml_status st = lut_build(c, &w);
    if (st == ANML_OK) {
        st = cx_out_check(c, o, w.out_dtype, w.rank, w.shape);
    }
    if (st == ANML_OK) {
        anml__lut_decode_raw(&w, 0, w.numel, o->data);
    }
    return st;
}

static enum anml_status mat_affine_dequantize(struct cx_ctx *c, struct cx_out *o) {
    struct cx_tensor q, zp, scale, axis_t;
    enum anml_status st = cx_require(c, "quantized_data", &q);
    if (st == ANML_OK) {
        st = cx_require(c, "zero_point", &zp);
    }
    if (st == ANML_OK) {
        st = cx_require(c, "scale", &scale);
    }
    if (st == ANML_OK) {
        st = cx_require(c, "axis", &axis_t);
    }
    if (st != ANML_OK) {
        return st;
    }
    if (q.dtype != ANML_DTYPE_INT8 && q.dtype != ANML_DTYPE_UINT8 && q.dtype != ANML_DTYPE_INT4 &&
        q.dtype != ANML_DTYPE_UINT4) {
        return cx_fail(c, ANML_E_FORMAT,
                       "parameter 'quantized_data' has dtype %s; expected int8 "
                       "or uint8",
                       anml_dtype_name(q.dtype));
    }
    if (scale.dtype != ANML_DTYPE_F16 && scale.dtype != ANML_DTYPE_F32) {
        return cx_fail(c, ANML_E_FORMAT, "parameter 'scale' has dtype %s; expected fp16 or fp32",
                       anml_dtype_name(scale.dtype));
    }
    if (!cx_is_intlike(zp.dtype) && !cx_is_float(zp.dtype)) {
        return cx_fail(c, ANML_E_FORMAT, "parameter 'zero_point' has dtype %s",
                       anml_dtype_name(zp.dtype));
    }
    if (q.rank < 1 || q.rank > ANML_LUT_MAX_RANK) {
        return cx_fail(c, ANML_E_UNSUPPORTED, "parameter 'quantized_data' has rank %d",
                       (int)q.rank);
    }
    int64_t axis;
    st = cx_scalar_int(c, &axis_t, &axis);
    if (st != ANML_OK) {
        return st;
    }
    if (axis < -q.rank || axis >= q.rank) {
        return cx_fail(c, ANML_E_FORMAT, "axis %" PRId64 " out of range [%d, %d)", axis,
                       -(int)q.rank, (int)q.rank);
    }
    if (axis < 0) {
        axis += q.rank;
    }
    int64_t dim = q.shape[axis];
    const struct cx_tensor *per[2] = { &scale, &zp };
    for (int i = 0; i < 2; i++) {
        const struct cx_tensor *t = per[i];
        if (t->rank > 1 || (t->rank == 1 && t->numel != dim && t->numel != 1)) {
            return cx_fail(c, ANML_E_FORMAT,
                           "parameter '%s' must be a scalar or a vector of length %" PRId64
                           " (quantized_data dimension %d)",
                           t->param, dim, (int)axis);
        }
    }
    st = cx_out_check(c, o, scale.dtype, q.rank, q.shape);
    if (st != ANML_OK) {
        return st;
    }
    int64_t inner = 1;
    for (int32_t k = (int32_t)axis + 1; k < q.rank; k++) {
        inner *= q.shape[k];
    }
    for (int64_t i = 0; i < q.numel; i++) {
        int64_t a = dim > 0 ? (i / inner) % dim : 0;
        float s = cx_float(&scale, scale.numel == 1 ? 0 : a);
        float z = cx_float(&zp, zp.numel == 1 ? 0 : a);
        cx_store_float(o->data, scale.dtype, i, s * ((float)cx_int(&q, i) - z));
    }
    return ANML_OK;
}

/* Block-wise scale/offset shapes (constexpr_blockwise_shift_scale and its sparse variant). */
struct shift_scale {
    struct cx_tensor scale, offset;
    bool has_offset;
    int32_t rank;
    int64_t shape[ANML_LUT_MAX_RANK]; /* data shape */
    int64_t block[ANML_LUT_MAX_RANK];
    int64_t sstride[ANML_LUT_MAX_RANK];
};

static enum anml_status shift_scale_setup(struct cx_ctx *c, enum anml_dtype src_dt, int32_t rank,
                                          const int64_t *shape, struct shift_scale *ss) {
    enum anml_status st = cx_require(c, "scale", &ss->scale);
    if (st != ANML_OK) {
        return st;
    }
    st = cx_param(c, "offset", false, &ss->offset, &ss->has_offset);
    if (st != ANML_OK) {
        return st;
    }
    if (ss->scale.dtype != ANML_DTYPE_F16 && ss->scale.dtype != ANML_DTYPE_F32) {
        return cx_fail(c, ANML_E_FORMAT, "parameter 'scale' has dtype %s; expected fp16 or fp32",
                       anml_dtype_name(ss->scale.dtype));
    }
    if (rank < 1 || rank > ANML_LUT_MAX_RANK) {
        return cx_fail(c, ANML_E_UNSUPPORTED, "data rank %d (supported: 1..%d)", (int)rank,
                       ANML_LUT_MAX_RANK);
    }
    if (ss->scale.rank != rank) {
        return cx_fail(c, ANML_E_FORMAT, "parameter 'scale' has rank %d; data has rank %d",
                       (int)ss->scale.rank, (int)rank);
    }
    ss->rank = rank;
    int64_t s = 1;
    for (int32_t k = rank - 1; k >= 0; k--) {
        int64_t sd = ss->scale.shape[k];
        if (sd < 1 || shape[k] % sd != 0) {
            return cx_fail(c, ANML_E_FORMAT,
                           "parameter 'scale': dimension %d is %" PRId64
                           ", which does not divide data dimension %" PRId64,
                           (int)k, sd, shape[k]);
        }
        ss->shape[k] = shape[k];
        ss->block[k] = shape[k] / sd > 0 ? shape[k] / sd : 1;
        ss->sstride[k] = s;
        s *= sd;
    }
    if (ss->has_offset) {
        bool same = ss->offset.rank == rank;
        for (int32_t k = 0; same && k < rank; k++) {
            same = ss->offset.shape[k] == ss->scale.shape[k];
        }
        if (!same) {
            return cx_fail(c, ANML_E_FORMAT, "parameter 'offset' must have the shape of 'scale'");
        }
        if (!cx_is_float(ss->offset.dtype) && ss->offset.dtype != src_dt) {
            return cx_fail(c, ANML_E_FORMAT,
                           "parameter 'offset' has dtype %s; expected %s (the data dtype), fp16 "
                           "or fp32",
                           anml_dtype_name(ss->offset.dtype), anml_dtype_name(src_dt));
        }
    }
    return ANML_OK;
}

/* Flat scale index of data position `flat`. */
static int64_t shift_scale_block(const struct shift_scale *ss, int64_t flat) {
    int64_t q = 0;
    for (int32_t k = ss->rank - 1; k >= 0; k--) {
        int64_t d = ss->shape[k] > 0 ? ss->shape[k] : 1;
        q += ((flat % d) / ss->block[k]) * ss->sstride[k];
        flat /= d;
    }
    return q;
}

static float shift_scale_apply(const struct shift_scale *ss, float data, int64_t q) {
    enum anml_dtype dst = ss->scale.dtype;
    float d = cx_round(data, dst);
    if (ss->has_offset) {
        float off = cx_float(&ss->offset, q);
        if (ss->offset.dtype == ANML_DTYPE_F32) {
            d = d - off; /* fp32 offset promotes the difference to fp32 */
        } else {
            d = cx_round(d - cx_round(off, dst), dst);
        }
    }
    return cx_float(&ss->scale, q) * d;
}

static bool shift_src_ok(enum anml_dtype dt) {
    return dt == ANML_DTYPE_INT4 || dt == ANML_DTYPE_UINT4 || dt == ANML_DTYPE_INT8 ||
           dt == ANML_DTYPE_UINT8 || dt == ANML_DTYPE_F16 || dt == ANML_DTYPE_F32;
}

static enum anml_status mat_blockwise_shift_scale(struct cx_ctx *c, struct cx_out *o) {
    struct cx_tensor data;
    struct shift_scale ss;
    enum anml_status st = cx_require(c, "data", &data);
    if (st != ANML_OK) {
        return st;
    }
    if (!shift_src_ok(data.dtype)) {
        return cx_fail(c, ANML_E_FORMAT,
                       "parameter 'data' has dtype %s; expected int4, uint4, int8, uint8, fp16 or "
                       "fp32",
                       anml_dtype_name(data.dtype));
    }
    st = shift_scale_setup(c, data.dtype, data.rank, data.shape, &ss);
    if (st == ANML_OK) {
        st = cx_out_check(c, o, ss.scale.dtype, data.rank, data.shape);
    }
    if (st != ANML_OK) {
        return st;
    }
    for (int64_t i = 0; i < data.numel; i++) {
        float v = shift_scale_apply(&ss, cx_float(&data, i), shift_scale_block(&ss, i));
        cx_store_float(o->data, ss.scale.dtype, i, v);
    }
    return ANML_OK;
}

static bool sparse_dtype_ok(enum anml_dtype dt) {
    return shift_src_ok(dt);
}

/* Reads mask bit i: iOS16 packed uint8 bytes, or an iOS18 uint1 tensor. */
static bool mask_bit(const struct cx_tensor *m, bool ios16, int64_t i) {
    if (ios16) {
        return anml__subbyte_get(m->data, 1, i) != 0;
    }
    return cx_int(m, i) != 0;
}

/* Mask and output shape of the sparse ops, both forms. */
static enum anml_status sparse_mask(struct cx_ctx *c, const char *mask_name, struct cx_tensor *mask,
                                    bool *ios16, int32_t *rank, int64_t *shape, int64_t *numel) {
    enum anml_status st = cx_require(c, mask_name, mask);
    if (st != ANML_OK) {
        return st;
    }
    *ios16 = cx_has(c, "shape");
    if (*ios16) {
        struct cx_tensor shp;
        st = cx_require(c, "shape", &shp);
        if (st == ANML_OK) {
            st = cx_shape_param(c, &shp, rank, shape, numel);
        }
        if (st != ANML_OK) {
            return st;
        }
        if (mask->dtype != ANML_DTYPE_UINT8 || mask->rank != 1 ||
            (uint64_t)mask->numel != ((uint64_t)*numel + 7) / 8) {
            return cx_fail(c, ANML_E_FORMAT,
                           "parameter '%s' must be uint8 [%" PRId64
                           "] (one bit per output element)",
                           mask_name, (*numel + 7) / 8);
        }
        return ANML_OK;
    }
    if (mask->dtype != ANML_DTYPE_UINT1 && mask->dtype != ANML_DTYPE_BOOL) {
        return cx_fail(c, ANML_E_FORMAT, "parameter '%s' has dtype %s; expected uint1", mask_name,
                       anml_dtype_name(mask->dtype));
    }
    if (mask->rank < 1 || mask->rank > ANML_LUT_MAX_RANK) {
        return cx_fail(c, ANML_E_UNSUPPORTED, "parameter '%s' has rank %d", mask_name,
                       (int)mask->rank);
    }
    *rank = mask->rank;
    memcpy(shape, mask->shape, sizeof(int64_t) * (size_t)mask->rank);
    *numel = mask->numel;
    return ANML_OK;
}

static enum anml_status sparse_count(struct cx_ctx *c, const struct cx_tensor *mask, bool ios16,
                                     int64_t numel, int64_t want, const char *data_name) {
    int64_t ones = 0;
    for (int64_t i = 0; i < numel; i++) {
        ones += mask_bit(mask, ios16, i);
    }
    if (ones != want) {
        return cx_fail(c, ANML_E_FORMAT,
                       "mask has %" PRId64 " set bits but '%s' holds %" PRId64 " elements", ones,
                       data_name, want);
    }
    return ANML_OK;
}

static enum anml_status mat_sparse_to_dense(struct cx_ctx *c, struct cx_out *o) {
    struct cx_tensor nz, mask;
    bool ios16;
    int32_t rank;
    int64_t shape[ANML_LUT_MAX_RANK], numel;
    enum anml_status st = cx_require(c, "nonzero_data", &nz);
    if (st == ANML_OK) {
        st = sparse_mask(c, "mask", &mask, &ios16, &rank, shape, &numel);
    }
    if (st != ANML_OK) {
        return st;
    }
    if (!sparse_dtype_ok(nz.dtype) || nz.rank != 1) {
        return cx_fail(c, ANML_E_FORMAT,
                       "parameter 'nonzero_data' must be a rank-1 int4, uint4, int8, uint8, fp16 "
                       "or fp32 tensor");
    }
    st = sparse_count(c, &mask, ios16, numel, nz.numel, "nonzero_data");
    if (st == ANML_OK) {
        st = cx_out_check(c, o, nz.dtype, rank, shape);
    }
    if (st != ANML_OK) {
        return st;
    }
    memset(o->data, 0, o->bytes);
    int64_t j = 0;
    for (int64_t i = 0; i < numel; i++) {
        if (mask_bit(&mask, ios16, i)) {
            cx_copy_elem(&nz, j++, o->data, i);
        }
    }
    return ANML_OK;
}

static enum anml_status mat_cast(struct cx_ctx *c, struct cx_out *o) {
    struct cx_tensor src, dt_t;
    enum anml_status st = cx_require(c, "source_val", &src);
    if (st == ANML_OK) {
        st = cx_require(c, "output_dtype", &dt_t);
    }
    if (st != ANML_OK) {
        return st;
    }
    if (dt_t.dtype != ANML_DTYPE_STRING || dt_t.numel != 1 || !dt_t.strings[0]) {
        return cx_fail(c, ANML_E_FORMAT, "parameter 'output_dtype' must be a string");
    }
    const char *name = dt_t.strings[0];
    enum anml_dtype dst = anml__dtype_from_name(name, strlen(name));
    if (!cx_is_float(src.dtype) || (dst != ANML_DTYPE_F32 && dst != ANML_DTYPE_F16)) {
        return cx_fail(c, ANML_E_UNSUPPORTED, "cast from %s to '%s' (supported: fp16 -> fp32)",
                       anml_dtype_name(src.dtype), name);
    }
    st = cx_out_check(c, o, dst, src.rank, src.shape);
    if (st != ANML_OK) {
        return st;
    }
    for (int64_t i = 0; i < src.numel; i++) {
        cx_store_float(o->data, dst, i, cx_float(&src, i));
    }
    return ANML_OK;
}

/* Writes the expanded mask (result 0 of the two-output sparse ops): mask repeated `vsize` times
 * along `vaxis` (vsize 1: the mask itself), as one byte per element. */
static enum anml_status sparse_mask_out(struct cx_ctx *c, struct cx_out *o,
                                        const struct cx_tensor *mask, int32_t rank,
                                        const int64_t *shape, int32_t vaxis, int64_t vsize) {
    int64_t oshape[ANML_LUT_MAX_RANK];
    memcpy(oshape, shape, sizeof(int64_t) * (size_t)rank);
    if (vaxis >= 0 && !anml__mul_i64(oshape[vaxis], vsize, &oshape[vaxis])) {
        return cx_fail(c, ANML_E_FORMAT, "output dimension overflows");
    }
    enum anml_status st = cx_out_check(c, o, mask->dtype, rank, oshape);
    if (st != ANML_OK) {
        return st;
    }
    int64_t numel;
    anml__shape_numel(oshape, rank, &numel);
    uint8_t *out = o->data;
    int64_t inner = 1;
    for (int32_t k = vaxis + 1; vaxis >= 0 && k < rank; k++) {
        inner *= oshape[k];
    }
    for (int64_t i = 0; i < numel; i++) {
        int64_t src = i;
        if (vaxis >= 0) {
            /* position along vaxis divided by vsize */
            int64_t outer = i / (inner * oshape[vaxis]);
            int64_t a = (i / inner) % oshape[vaxis];
            src = (outer * shape[vaxis] + a / vsize) * inner + i % inner;
        }
        out[i] = (uint8_t)(cx_int(mask, src) != 0);
    }
    return ANML_OK;
}

static enum anml_status mat_lut_to_sparse(struct cx_ctx *c, struct cx_out *o) {
    struct cx_tensor mask, nz, lut;
    bool ios16;
    int32_t rank;
    int64_t shape[ANML_LUT_MAX_RANK], numel;
    enum anml_status st = sparse_mask(c, "indices_mask", &mask, &ios16, &rank, shape, &numel);
    if (st == ANML_OK && ios16) {
        st = cx_fail(c, ANML_E_FORMAT, "unexpected parameter 'shape'");
    }
    if (st == ANML_OK) {
        st = cx_require(c, "indices_nonzero_data", &nz);
    }
    if (st == ANML_OK) {
        st = cx_require(c, "lut", &lut);
    }
    if (st != ANML_OK) {
        return st;
    }
    if (nz.rank != 1) {
        return cx_fail(c, ANML_E_FORMAT, "parameter 'indices_nonzero_data' must have rank 1");
    }
    if (!lut_dtype_ok(lut.dtype)) {
        return cx_fail(c, ANML_E_FORMAT, "parameter 'lut' has dtype %s",
                       anml_dtype_name(lut.dtype));
    }
    st = sparse_count(c, &mask, false, numel, nz.numel, "indices_nonzero_data");
    if (st != ANML_OK) {
        return st;
    }
    /* Scatter the indices to a dense unpacked tensor and reuse the LUT decoder. */
    if (c->n_temps >= CX_MAX_TEMPS) {
        return cx_fail(c, ANML_E_INTERNAL, "too many temporaries");
    }
    uint8_t *dense = anml__calloc((size_t)(numel > 0 ? numel : 1), 1);
    if (!dense) {
        return cx_fail(c, ANML_E_NOMEM, "out of memory");
    }
    c->temps[c->n_temps++] = dense;
    for (int64_t i = 0, j = 0; i < numel; i++) {
        if (cx_int(&mask, i)) {
            dense[i] = (uint8_t)cx_int(&nz, j++);
        }
    }
    struct cx_tensor idx = nz;
    idx.rank = rank;
    memcpy(idx.shape, shape, sizeof(int64_t) * (size_t)rank);
    idx.numel = numel;
    idx.data = dense;
    idx.packed = false;
    idx.param = "indices_nonzero_data";
    struct anml_lut_weight w;
    memset(&w, 0, sizeof w);
    st = lut_build_ios18(c, &idx, &lut, &w);
    if (st != ANML_OK) {
        return st;
    }
    w.out_dtype = lut.dtype;
    if (o->result == 0) {
        return sparse_mask_out(c, o, &mask, rank, shape, w.vector_axis, w.vector_size);
    }
    int64_t nvals;
    if (!anml__mul_i64(nz.numel, w.vector_size, &nvals)) {
        return cx_fail(c, ANML_E_FORMAT, "output size overflows");
    }
    st = cx_out_check(c, o, lut.dtype, 1, &nvals);
    if (st != ANML_OK) {
        return st;
    }
    /* Walk the dense output; keep the elements whose (expanded) mask bit is set. */
    struct lut_iter it;
    lut_iter_init(&it, &w, 0);
    size_t es = anml__dtype_size(lut.dtype);
    const uint8_t *lp = lut.data;
    uint8_t *out = o->data;
    int64_t j = 0;
    for (int64_t i = 0; i < w.numel; i++) {
        if (cx_int(&mask, it.idx)) {
            ANML_ASSERT(j < nvals);
            memcpy(out + (size_t)j * es, lp + (size_t)lut_iter_entry(&it, &w) * es, es);
            j++;
        }
        lut_iter_next(&it);
    }
    return ANML_OK;
}

static enum anml_status mat_sparse_shift_scale(struct cx_ctx *c, struct cx_out *o) {
    struct cx_tensor mask, nz;
    bool ios16;
    int32_t rank;
    int64_t shape[ANML_LUT_MAX_RANK], numel;
    struct shift_scale ss;
    enum anml_status st = sparse_mask(c, "data_mask", &mask, &ios16, &rank, shape, &numel);
    if (st == ANML_OK && ios16) {
        st = cx_fail(c, ANML_E_FORMAT, "unexpected parameter 'shape'");
    }
    if (st == ANML_OK) {
        st = cx_require(c, "nonzero_data", &nz);
    }
    if (st != ANML_OK) {
        return st;
    }
    if (!shift_src_ok(nz.dtype) || nz.rank != 1) {
        return cx_fail(c, ANML_E_FORMAT,
                       "parameter 'nonzero_data' must be a rank-1 int4, uint4, int8, uint8, fp16 "
                       "or fp32 tensor");
    }
    st = sparse_count(c, &mask, false, numel, nz.numel, "nonzero_data");
    if (st == ANML_OK) {
        st = shift_scale_setup(c, nz.dtype, rank, shape, &ss);
    }
    if (st != ANML_OK) {
        return st;
    }
    if (o->result == 0) {
        return sparse_mask_out(c, o, &mask, rank, shape, -1, 1);
    }
    st = cx_out_check(c, o, ss.scale.dtype, 1, &nz.numel);
    if (st != ANML_OK) {
        return st;
    }
    for (int64_t i = 0, j = 0; i < numel; i++) {
        if (cx_int(&mask, i)) {
            float v = shift_scale_apply(&ss, cx_float(&nz, j), shift_scale_block(&ss, i));
            cx_store_float(o->data, ss.scale.dtype, j, v);
            j++;
        }
    }
    return ANML_OK;
}

struct cx_opdef {
    const char *type;
    int32_t n_results;
    enum anml_status (*fn)(struct cx_ctx *c, struct cx_out *o);
};

static const struct cx_opdef k_ops[] = {
    { "constexpr_lut_to_dense", 1, mat_lut_to_dense },
    { "constexpr_affine_dequantize", 1, mat_affine_dequantize },
    { "constexpr_blockwise_shift_scale", 1, mat_blockwise_shift_scale },
    { "constexpr_sparse_to_dense", 1, mat_sparse_to_dense },
    { "constexpr_cast", 1, mat_cast },
    { "constexpr_lut_to_sparse", 2, mat_lut_to_sparse },
    { "constexpr_sparse_blockwise_shift_scale", 2, mat_sparse_shift_scale },
};

static enum anml_status cx_run(struct cx_ctx *c, int32_t result, void *out, size_t out_bytes) {
    for (size_t i = 0; i < sizeof k_ops / sizeof k_ops[0]; i++) {
        if (c->op->type && strcmp(c->op->type, k_ops[i].type) == 0) {
            if (result < 0 || result >= k_ops[i].n_results) {
                return cx_fail(c, ANML_E_INVALID_ARG, "has no result #%d", (int)result);
            }
            struct cx_out o = { out, out_bytes, result };
            return k_ops[i].fn(c, &o);
        }
    }
    return cx_fail(c, ANML_E_UNSUPPORTED, "unsupported constexpr op");
}

/* Materializes a producer op on behalf of a parameter lookup (nested constexpr chains). */
static enum anml_status cx_materialize_into(struct cx_ctx *parent, const struct mil_op *op,
                                            int32_t result, void *out, size_t out_bytes) {
    struct cx_ctx c = { .prog = parent->prog,
                        .op = op,
                        .fn = parent->fn,
                        .err = parent->err,
                        .depth = parent->depth + 1,
                        .allow_nested = true };
    enum anml_status st = cx_run(&c, result, out, out_bytes);
    cx_ctx_free(&c);
    return st;
}

enum anml_status anml__constexpr_materialize_result(const struct mil_program *prog,
                                                    const struct mil_op *op, int32_t result,
                                                    void *out, size_t out_bytes,
                                                    struct anml_error *err) {
    struct cx_ctx c = { .prog = prog, .op = op, .err = err, .allow_nested = true };
    c.fn = cx_find_function(prog, op);
    enum anml_status st = cx_run(&c, result, out, out_bytes);
    cx_ctx_free(&c);
    return st;
}

enum anml_status anml__constexpr_materialize(const struct mil_program *prog,
                                             const struct mil_op *op, void *out, size_t out_bytes,
                                             struct anml_error *err) {
    return anml__constexpr_materialize_result(prog, op, 0, out, out_bytes, err);
}
