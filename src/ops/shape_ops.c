/*
 * shape_ops.c -- the shape-manipulation op family of the MIL executor (coreml-format.md §9.8 and
 * §9.9): reshape, reshape_like, expand_dims, squeeze, transpose, concat, split, tile,
 * sliding_windows, slice_by_index, slice_by_size, slice_update, gather, gather_along_axis,
 * gather_nd, scatter, scatter_along_axis and scatter_nd. (reverse, pad, stack and flatten2d live
 * in misc.c.)
 *
 * Every op here moves whole elements (anml__dtype_size bytes each) without converting them, so
 * every dtype passes through bit-exactly; only the scatter modes other than "update" do
 * arithmetic (fp32 for float dtypes, int64 for integer ones). Most copies go through one
 * strided-view routine (copy_view) that merges dims that are contiguous on both sides and moves
 * contiguous runs with memcpy, so concat/split become block copies and transposes strided loops.
 *
 * Runtime data never makes an op touch memory outside a tensor: gather-like ops clamp an index
 * to [0, D-1] (after adding D to negatives where the opset allows them; §9.9 leaves this
 * undefined, clamping is our documented choice) unless validate_indices asks for an error;
 * scatter-like ops skip out-of-range updates instead (a clamped write would corrupt a valid
 * element); slices whose bounds are runtime values are recomputed at run time with the Python
 * clamping rules and fail with ANML_E_SHAPE when they do not have the planned shape.
 */
#include <stdio.h>
#include <string.h>

#include "coreml/constexpr.h"
#include "exec/exec.h"

/* transpose/tile views interleave two dims per tensor dim */
#define VIEW_MAX_DIMS (2 * EX_MAX_DIMS)

/* ---- small helpers ---- */

/* The status of the error an accessor just reported (they return bool). */
static enum anml_status cur_err(struct ex_call *c) {
    return c->err && c->err->code != ANML_OK ? c->err->code : ANML_E_SHAPE;
}

static bool is_const(const struct ex_tensor *t) {
    return t->kind == EX_VALUE_CONST && t->data != NULL;
}

/* Dtypes an element-moving op accepts: everything with a whole-byte element. */
static bool movable_dtype(enum anml_dtype dt) {
    switch (dt) {
    case ANML_DTYPE_BOOL:
    case ANML_DTYPE_F16:
    case ANML_DTYPE_F32:
    case ANML_DTYPE_F64:
    case ANML_DTYPE_BF16:
    case ANML_DTYPE_INT8:
    case ANML_DTYPE_INT16:
    case ANML_DTYPE_INT32:
    case ANML_DTYPE_INT64:
    case ANML_DTYPE_UINT8:
    case ANML_DTYPE_UINT16:
    case ANML_DTYPE_UINT32:
    case ANML_DTYPE_UINT64: return true;
    default: return false;
    }
}

static enum anml_status check_data(struct ex_call *c, const struct ex_tensor *t, const char *arg) {
    if (!movable_dtype(t->dtype)) {
        return ex_fail(c, ANML_E_SHAPE, "'%s' ('%s') has dtype %s, which this op does not accept",
                       arg, t->name, anml_dtype_name(t->dtype));
    }
    if (t->rank < 0 || t->rank > EX_MAX_DIMS) {
        return ex_fail(c, ANML_E_UNSUPPORTED, "'%s' has unsupported rank %d", arg, (int)t->rank);
    }
    return ANML_OK;
}

static enum anml_status need_outs(struct ex_call *c, int32_t n) {
    if (c->n_outs != n) {
        return ex_fail(c, ANML_E_FORMAT, "expected %d result(s), the op declares %d", (int)n,
                       (int)c->n_outs);
    }
    return ANML_OK;
}

/* Sets output i after checking rank and element count. */
static enum anml_status set_out(struct ex_call *c, int32_t i, enum anml_dtype dt, int32_t rank,
                                const int64_t *shape) {
    int64_t n;
    if (rank > EX_MAX_DIMS) {
        return ex_fail(c, ANML_E_UNSUPPORTED, "result rank %d exceeds the maximum of %d", (int)rank,
                       EX_MAX_DIMS);
    }
    if (!anml__shape_numel(shape, rank, &n)) {
        return ex_fail(c, ANML_E_SHAPE, "result shape has a negative dim or too many elements");
    }
    ex_set_shape(c->outs[i], dt, rank, shape);
    return ANML_OK;
}

/* Output i from the declared result type (shape depends on runtime data); its dtype must be dt. */
static enum anml_status declared_out(struct ex_call *c, int32_t i, enum anml_dtype dt) {
    enum anml_status st = ex_declared(c, i);
    if (st != ANML_OK) {
        return st;
    }
    if (c->outs[i]->dtype != dt) {
        return ex_fail(c, ANML_E_SHAPE, "declared result dtype %s differs from the input dtype %s",
                       anml_dtype_name(c->outs[i]->dtype), anml_dtype_name(dt));
    }
    return ANML_OK;
}

static enum anml_status opt_i64(struct ex_call *c, const char *name, int64_t def, int64_t *out) {
    if (!ex_in(c, name)) {
        *out = def;
        return ANML_OK;
    }
    return ex_const_i64(c, name, out) ? ANML_OK : cur_err(c);
}

static enum anml_status req_i64(struct ex_call *c, const char *name, int64_t *out) {
    if (!ex_in(c, name)) {
        return ex_fail(c, ANML_E_FORMAT, "missing required argument '%s'", name);
    }
    return ex_const_i64(c, name, out) ? ANML_OK : cur_err(c);
}

static enum anml_status opt_bool(struct ex_call *c, const char *name, bool def, bool *out) {
    if (!ex_in(c, name)) {
        *out = def;
        return ANML_OK;
    }
    return ex_const_bool(c, name, out) ? ANML_OK : cur_err(c);
}

/* A constant int vector of at most EX_MAX_DIMS entries; *present says whether it was given. */
static enum anml_status opt_i64s(struct ex_call *c, const char *name, int64_t *out, int32_t *n,
                                 bool *present) {
    *present = ex_in(c, name) != NULL;
    *n = 0;
    if (!*present) {
        return ANML_OK;
    }
    return ex_const_i64s(c, name, out, EX_MAX_DIMS, n) ? ANML_OK : cur_err(c);
}

static enum anml_status req_i64s(struct ex_call *c, const char *name, int64_t *out, int32_t *n) {
    bool present;
    enum anml_status st = opt_i64s(c, name, out, n, &present);
    if (st == ANML_OK && !present) {
        return ex_fail(c, ANML_E_FORMAT, "missing required argument '%s'", name);
    }
    return st;
}

/* A constant bool vector of exactly `rank` entries, all false when absent. */
static enum anml_status opt_mask(struct ex_call *c, const char *name, int32_t rank, bool *out) {
    for (int32_t i = 0; i < EX_MAX_DIMS; i++) {
        out[i] = false;
    }
    if (!ex_in(c, name)) {
        return ANML_OK;
    }
    int32_t n = 0;
    if (!ex_const_bools(c, name, out, EX_MAX_DIMS, &n)) {
        return cur_err(c);
    }
    if (n != rank) {
        return ex_fail(c, ANML_E_SHAPE, "'%s' has %d entries, expected rank(x) = %d", name, (int)n,
                       (int)rank);
    }
    return ANML_OK;
}

/* "[2, 3, 4]" into buf. */
static const char *shape_str(char *buf, size_t cap, int32_t rank, const int64_t *shape) {
    size_t n = 0;
    buf[0] = '\0';
    n += (size_t)snprintf(buf, cap, "[");
    for (int32_t i = 0; i < rank && n < cap; i++) {
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    }
    if (n < cap) {
        snprintf(buf + n, cap - n, "]");
    }
    return buf;
}

static bool same_shape(int32_t ra, const int64_t *a, int32_t rb, const int64_t *b) {
    if (ra != rb) {
        return false;
    }
    for (int32_t i = 0; i < ra; i++) {
        if (a[i] != b[i]) {
            return false;
        }
    }
    return true;
}

/* Row-major element strides. */
static void strides_of(int32_t rank, const int64_t *shape, int64_t *st) {
    int64_t s = 1;
    for (int32_t i = rank - 1; i >= 0; i--) {
        st[i] = s;
        s *= shape[i];
    }
}

static int64_t prod(const int64_t *shape, int32_t from, int32_t to) {
    int64_t p = 1;
    for (int32_t i = from; i < to; i++) {
        p *= shape[i];
    }
    return p;
}

/* Integer index dtypes (gather family) allowed per opset (§9.9 table). */
static enum anml_status check_indices(struct ex_call *c, const struct ex_tensor *t) {
    enum anml_dtype dt = t->dtype;
    bool ok = dt == ANML_DTYPE_INT32;
    if (c->opset >= 6) {
        ok = ok || dt == ANML_DTYPE_INT16 || dt == ANML_DTYPE_UINT16;
    }
    if (c->opset >= 7) {
        ok = ok || dt == ANML_DTYPE_INT8 || dt == ANML_DTYPE_UINT8;
    }
    if (!ok) {
        return ex_fail(c, ANML_E_SHAPE,
                       "indices '%s' have dtype %s, which this opset (%s) does "
                       "not allow",
                       t->name, anml_dtype_name(dt), anml__mil_opset_text_tag(c->opset));
    }
    if (t->rank < 0 || t->rank > EX_MAX_DIMS) {
        return ex_fail(c, ANML_E_UNSUPPORTED, "indices have unsupported rank %d", (int)t->rank);
    }
    return ANML_OK;
}

/* An index v for an axis of size d: negatives count from the end before iOS17; the result is
 * -1 when it is out of range. */
static int64_t index_in_range(const struct ex_call *c, int64_t v, int64_t d) {
    if (v < 0 && c->opset < 7) {
        v += d;
    }
    return v >= 0 && v < d ? v : -1;
}

/* ---- strided copies ---- */

/* Copies n elements of esz bytes from s (element stride ss) to d (element stride ds). */
static void copy_row(uint8_t *d, int64_t ds, const uint8_t *s, int64_t ss, int64_t n, size_t esz) {
    if (ds == 1 && ss == 1) {
        memcpy(d, s, (size_t)n * esz);
        return;
    }
    /* Pointers are formed only for elements that exist (negative strides walk backwards). */
    switch (esz) {
    case 1:
        for (int64_t i = 0; i < n; i++) {
            d[i * ds] = s[i * ss];
        }
        break;
    case 2:
        for (int64_t i = 0; i < n; i++) {
            memcpy(d + i * ds * 2, s + i * ss * 2, 2);
        }
        break;
    case 4:
        for (int64_t i = 0; i < n; i++) {
            memcpy(d + i * ds * 4, s + i * ss * 4, 4);
        }
        break;
    case 8:
        for (int64_t i = 0; i < n; i++) {
            memcpy(d + i * ds * 8, s + i * ss * 8, 8);
        }
        break;
    default:
        for (int64_t i = 0; i < n; i++) {
            memcpy(d + i * ds * (int64_t)esz, s + i * ss * (int64_t)esz, esz);
        }
        break;
    }
}

/*
 * Copies the view `shape` (rank dims) of src, element strides sstr, to the view of dst with
 * element strides dstr; src and dst point at the views' first elements. Strides may be zero
 * (broadcast reads) or negative. Size-1 dims are dropped and dims that are contiguous in both
 * views are merged, so plain block copies collapse into a few memcpy calls.
 */
static void copy_view(void *dst, const int64_t *dstr, const void *src, const int64_t *sstr,
                      size_t esz, int32_t rank, const int64_t *shape) {
    int64_t sh[VIEW_MAX_DIMS], ds[VIEW_MAX_DIMS], ss[VIEW_MAX_DIMS];
    int32_t r = 0;
    for (int32_t i = 0; i < rank; i++) {
        if (shape[i] == 0) {
            return;
        }
        if (shape[i] == 1) {
            continue;
        }
        if (r > 0 && ds[r - 1] == dstr[i] * shape[i] && ss[r - 1] == sstr[i] * shape[i]) {
            sh[r - 1] *= shape[i];
            ds[r - 1] = dstr[i];
            ss[r - 1] = sstr[i];
        } else {
            sh[r] = shape[i];
            ds[r] = dstr[i];
            ss[r] = sstr[i];
            r++;
        }
    }
    uint8_t *d = dst;
    const uint8_t *s = src;
    if (r == 0) {
        memcpy(d, s, esz);
        return;
    }
    int64_t idx[VIEW_MAX_DIMS] = { 0 };
    int64_t doff = 0, soff = 0;
    const int64_t e = (int64_t)esz;
    for (;;) {
        copy_row(d + doff * e, ds[r - 1], s + soff * e, ss[r - 1], sh[r - 1], esz);
        int32_t k = r - 2;
        for (; k >= 0; k--) {
            idx[k]++;
            doff += ds[k];
            soff += ss[k];
            if (idx[k] < sh[k]) {
                break;
            }
            doff -= ds[k] * sh[k];
            soff -= ss[k] * sh[k];
            idx[k] = 0;
        }
        if (k < 0) {
            break;
        }
    }
}

/* Copies a whole tensor's bytes (reshape-like ops); nothing to do when the planner aliased. */
static void copy_all(struct ex_tensor *out, const struct ex_tensor *x) {
    size_t n = (size_t)x->numel * anml__dtype_size(x->dtype);
    if (out->data != x->data && n > 0) {
        memcpy(out->data, x->data, n);
    }
}

static enum anml_status run_copy(struct ex_call *c) {
    copy_all(c->outs[0], ex_in(c, "x"));
    return ANML_OK;
}

/* ---- reshape ---- */

/* Resolves a reshape `shape` argument (k entries) against x per the opset's rules for 0/-1. */
static enum anml_status reshape_resolve(struct ex_call *c, const struct ex_tensor *x,
                                        const int64_t *spec, int32_t k, int64_t *out) {
    int32_t infer_at = -1;
    int64_t known = 1;
    for (int32_t i = 0; i < k; i++) {
        int64_t v = spec[i];
        if (v == -1) {
            if (infer_at >= 0) {
                return ex_fail(c, ANML_E_SHAPE, "shape has more than one -1 entry");
            }
            infer_at = i;
            continue;
        }
        if (v == 0) {
            if (c->opset >= 7) {
                /* iOS17: 0 copies the x dim at the same distance from the right, else 1 */
                int32_t j = x->rank - k + i;
                v = j >= 0 ? x->shape[j] : 1;
            } else if (k == x->rank) {
                v = x->shape[i];
            } else {
                return ex_fail(c, ANML_E_SHAPE,
                               "shape entry %d is 0, which before iOS17 is only allowed when the "
                               "shape has rank(x) = %d entries (it has %d)",
                               (int)i, (int)x->rank, (int)k);
            }
        } else if (v < 0) {
            return ex_fail(c, ANML_E_SHAPE, "shape entry %d is %lld; entries must be > 0, 0 or -1",
                           (int)i, (long long)v);
        }
        out[i] = v;
        if (!anml__mul_i64(known, v, &known)) {
            return ex_fail(c, ANML_E_SHAPE, "shape overflows");
        }
    }
    if (infer_at >= 0) {
        if (known == 0 || x->numel % known != 0) {
            return ex_fail(c, ANML_E_SHAPE,
                           "cannot infer the -1 entry of shape: x has %lld elements, the other "
                           "entries multiply to %lld",
                           (long long)x->numel, (long long)known);
        }
        out[infer_at] = x->numel / known;
    } else if (known != x->numel) {
        return ex_fail(c, ANML_E_SHAPE, "shape has %lld elements but x ('%s') has %lld",
                       (long long)known, x->name, (long long)x->numel);
    }
    return ANML_OK;
}

static enum anml_status infer_reshape(struct ex_call *c) {
    struct ex_tensor *x = ex_req(c, "x");
    struct ex_tensor *sh = ex_req(c, "shape");
    enum anml_status st;
    if (!x || !sh) {
        return cur_err(c);
    }
    if ((st = need_outs(c, 1)) != ANML_OK || (st = check_data(c, x, "x")) != ANML_OK) {
        return st;
    }
    if (!ex_is_int(sh->dtype) || sh->rank != 1 || sh->shape[0] > EX_MAX_DIMS) {
        return ex_fail(c, ANML_E_SHAPE,
                       "shape ('%s') must be an integer vector of at most %d "
                       "entries",
                       sh->name, EX_MAX_DIMS);
    }
    int32_t k = (int32_t)sh->shape[0];
    if (is_const(sh)) {
        int64_t spec[EX_MAX_DIMS], out[EX_MAX_DIMS];
        int32_t n;
        if (!ex_read_i64s(c, sh, spec, EX_MAX_DIMS, &n)) {
            return cur_err(c);
        }
        if ((st = reshape_resolve(c, x, spec, n, out)) != ANML_OK) {
            return st;
        }
        return set_out(c, 0, x->dtype, n, out);
    }
    /* runtime shape: trust the declared type, check it at run */
    if ((st = declared_out(c, 0, x->dtype)) != ANML_OK) {
        return st;
    }
    if (c->outs[0]->rank != k || c->outs[0]->numel != x->numel) {
        char b[96];
        return ex_fail(c, ANML_E_SHAPE,
                       "declared result shape %s does not fit %d shape entries "
                       "and %lld elements of x",
                       shape_str(b, sizeof b, c->outs[0]->rank, c->outs[0]->shape), (int)k,
                       (long long)x->numel);
    }
    return ANML_OK;
}

static enum anml_status run_reshape(struct ex_call *c) {
    struct ex_tensor *x = ex_in(c, "x");
    struct ex_tensor *sh = ex_in(c, "shape");
    struct ex_tensor *o = c->outs[0];
    if (!is_const(sh)) {
        int64_t spec[EX_MAX_DIMS], res[EX_MAX_DIMS];
        int32_t n;
        enum anml_status st;
        if (!ex_read_i64s(c, sh, spec, EX_MAX_DIMS, &n)) {
            return cur_err(c);
        }
        if ((st = reshape_resolve(c, x, spec, n, res)) != ANML_OK) {
            return st;
        }
        if (!same_shape(n, res, o->rank, o->shape)) {
            char b1[96], b2[96];
            return ex_fail(c, ANML_E_SHAPE, "runtime shape %s differs from the planned shape %s",
                           shape_str(b1, sizeof b1, n, res),
                           shape_str(b2, sizeof b2, o->rank, o->shape));
        }
    }
    copy_all(o, x);
    return ANML_OK;
}

/* reshape_like (iOS16): the shape is cut from the shapes of ref_tensors. */
static enum anml_status infer_reshape_like(struct ex_call *c) {
    struct ex_tensor *x = ex_req(c, "x");
    enum anml_status st;
    if (!x) {
        return cur_err(c);
    }
    if ((st = need_outs(c, 1)) != ANML_OK || (st = check_data(c, x, "x")) != ANML_OK) {
        return st;
    }
    int32_t n = ex_in_count(c, "ref_tensors");
    int64_t begins[EX_MAX_DIMS], ends[EX_MAX_DIMS];
    bool masks[EX_MAX_DIMS];
    int32_t nb, ne, nm = 0;
    if (n < 1 || n > EX_MAX_DIMS) {
        return ex_fail(c, ANML_E_SHAPE, "ref_tensors must hold 1 to %d tensors (has %d)",
                       EX_MAX_DIMS, (int)n);
    }
    if ((st = req_i64s(c, "begins", begins, &nb)) != ANML_OK ||
        (st = req_i64s(c, "ends", ends, &ne)) != ANML_OK) {
        return st;
    }
    for (int32_t i = 0; i < EX_MAX_DIMS; i++) {
        masks[i] = false;
    }
    if (ex_in(c, "end_masks") && !ex_const_bools(c, "end_masks", masks, EX_MAX_DIMS, &nm)) {
        return cur_err(c);
    }
    if (nb != n || ne != n || (ex_in(c, "end_masks") && nm != n)) {
        return ex_fail(c, ANML_E_SHAPE,
                       "begins, ends and end_masks must have one entry per "
                       "ref_tensors entry (%d)",
                       (int)n);
    }
    int64_t shape[EX_MAX_DIMS];
    int32_t r = 0;
    for (int32_t i = 0; i < n; i++) {
        const struct ex_tensor *ref = ex_in_at(c, "ref_tensors", i);
        int64_t b = begins[i] < 0 ? begins[i] + ref->rank : begins[i];
        int64_t e = masks[i] ? ref->rank : (ends[i] < 0 ? ends[i] + ref->rank : ends[i]);
        if (b < 0 || e > ref->rank || b > e) {
            return ex_fail(c, ANML_E_SHAPE, "range [%lld, %lld) does not fit rank %d of '%s'",
                           (long long)begins[i], (long long)ends[i], (int)ref->rank, ref->name);
        }
        for (int64_t d = b; d < e; d++) {
            if (r >= EX_MAX_DIMS) {
                return ex_fail(c, ANML_E_UNSUPPORTED, "result rank exceeds %d", EX_MAX_DIMS);
            }
            shape[r++] = ref->shape[d];
        }
    }
    int64_t numel;
    if (!anml__shape_numel(shape, r, &numel) || numel != x->numel) {
        char b[96];
        return ex_fail(c, ANML_E_SHAPE, "shape %s does not hold the %lld elements of x",
                       shape_str(b, sizeof b, r, shape), (long long)x->numel);
    }
    return set_out(c, 0, x->dtype, r, shape);
}

/* ---- expand_dims, squeeze ---- */

static enum anml_status infer_expand_dims(struct ex_call *c) {
    struct ex_tensor *x = ex_req(c, "x");
    enum anml_status st;
    int64_t axes[EX_MAX_DIMS];
    int32_t k;
    if (!x) {
        return cur_err(c);
    }
    if ((st = need_outs(c, 1)) != ANML_OK || (st = check_data(c, x, "x")) != ANML_OK ||
        (st = req_i64s(c, "axes", axes, &k)) != ANML_OK) {
        return st;
    }
    int32_t r = x->rank + k;
    if (r > EX_MAX_DIMS) {
        return ex_fail(c, ANML_E_UNSUPPORTED, "result rank %d exceeds %d", (int)r, EX_MAX_DIMS);
    }
    bool inserted[EX_MAX_DIMS] = { false };
    for (int32_t i = 0; i < k; i++) {
        int32_t a;
        if (!ex_axis(c, axes[i], r, &a)) {
            return cur_err(c);
        }
        if (inserted[a]) {
            return ex_fail(c, ANML_E_SHAPE, "axes repeats axis %lld", (long long)axes[i]);
        }
        inserted[a] = true;
    }
    int64_t shape[EX_MAX_DIMS];
    for (int32_t i = 0, j = 0; i < r; i++) {
        shape[i] = inserted[i] ? 1 : x->shape[j++];
    }
    return set_out(c, 0, x->dtype, r, shape);
}

static enum anml_status infer_squeeze(struct ex_call *c) {
    struct ex_tensor *x = ex_req(c, "x");
    enum anml_status st;
    int64_t axes[EX_MAX_DIMS];
    int32_t k;
    bool present;
    if (!x) {
        return cur_err(c);
    }
    if ((st = need_outs(c, 1)) != ANML_OK || (st = check_data(c, x, "x")) != ANML_OK ||
        (st = opt_i64s(c, "axes", axes, &k, &present)) != ANML_OK) {
        return st;
    }
    bool drop[EX_MAX_DIMS] = { false };
    if (present) {
        for (int32_t i = 0; i < k; i++) {
            int32_t a;
            if (!ex_axis(c, axes[i], x->rank, &a)) {
                return cur_err(c);
            }
            /* listed axes that are not size 1 are kept (PyTorch behaviour) */
            drop[a] = x->shape[a] == 1;
        }
    } else {
        for (int32_t i = 0; i < x->rank; i++) {
            drop[i] = x->shape[i] == 1;
        }
    }
    int64_t shape[EX_MAX_DIMS];
    int32_t r = 0;
    for (int32_t i = 0; i < x->rank; i++) {
        if (!drop[i]) {
            shape[r++] = x->shape[i];
        }
    }
    return set_out(c, 0, x->dtype, r, shape);
}

/* ---- transpose ---- */

static enum anml_status read_perm(struct ex_call *c, const struct ex_tensor *x, int32_t *perm) {
    int64_t p[EX_MAX_DIMS];
    int32_t n;
    enum anml_status st = req_i64s(c, "perm", p, &n);
    if (st != ANML_OK) {
        return st;
    }
    if (n != x->rank) {
        return ex_fail(c, ANML_E_SHAPE, "perm has %d entries, x has rank %d", (int)n, (int)x->rank);
    }
    bool seen[EX_MAX_DIMS] = { false };
    for (int32_t i = 0; i < n; i++) {
        if (!ex_axis(c, p[i], x->rank, &perm[i])) {
            return cur_err(c);
        }
        if (seen[perm[i]]) {
            return ex_fail(c, ANML_E_SHAPE, "perm is not a permutation (axis %d repeats)",
                           (int)perm[i]);
        }
        seen[perm[i]] = true;
    }
    return ANML_OK;
}

static enum anml_status infer_transpose(struct ex_call *c) {
    struct ex_tensor *x = ex_req(c, "x");
    enum anml_status st;
    int32_t perm[EX_MAX_DIMS];
    if (!x) {
        return cur_err(c);
    }
    if ((st = need_outs(c, 1)) != ANML_OK || (st = check_data(c, x, "x")) != ANML_OK ||
        (st = read_perm(c, x, perm)) != ANML_OK) {
        return st;
    }
    int64_t shape[EX_MAX_DIMS];
    for (int32_t i = 0; i < x->rank; i++) {
        shape[i] = x->shape[perm[i]];
    }
    return set_out(c, 0, x->dtype, x->rank, shape);
}

static enum anml_status run_transpose(struct ex_call *c) {
    struct ex_tensor *x = ex_in(c, "x");
    struct ex_tensor *o = c->outs[0];
    int32_t perm[EX_MAX_DIMS];
    enum anml_status st = read_perm(c, x, perm);
    if (st != ANML_OK) {
        return st;
    }
    int64_t xs[EX_MAX_DIMS], ss[EX_MAX_DIMS], os[EX_MAX_DIMS];
    strides_of(x->rank, x->shape, xs);
    strides_of(o->rank, o->shape, os);
    for (int32_t i = 0; i < x->rank; i++) {
        ss[i] = xs[perm[i]];
    }
    copy_view(o->data, os, x->data, ss, anml__dtype_size(x->dtype), o->rank, o->shape);
    return ANML_OK;
}

/* ---- concat, split ---- */

static enum anml_status concat_params(struct ex_call *c, int32_t *axis, bool *interleave) {
    int32_t n = ex_in_count(c, "values");
    int64_t a;
    enum anml_status st;
    if (n < 1) {
        return ex_fail(c, ANML_E_FORMAT, "missing required argument 'values'");
    }
    if ((st = req_i64(c, "axis", &a)) != ANML_OK ||
        (st = opt_bool(c, "interleave", false, interleave)) != ANML_OK) {
        return st;
    }
    const struct ex_tensor *v0 = ex_in_at(c, "values", 0);
    return ex_axis(c, a, v0->rank, axis) ? ANML_OK : cur_err(c);
}

static enum anml_status infer_concat(struct ex_call *c) {
    int32_t axis;
    bool interleave;
    enum anml_status st;
    if ((st = need_outs(c, 1)) != ANML_OK ||
        (st = concat_params(c, &axis, &interleave)) != ANML_OK) {
        return st;
    }
    int32_t n = ex_in_count(c, "values");
    const struct ex_tensor *v0 = ex_in_at(c, "values", 0);
    if ((st = check_data(c, v0, "values")) != ANML_OK) {
        return st;
    }
    int64_t shape[EX_MAX_DIMS];
    memcpy(shape, v0->shape, sizeof shape);
    for (int32_t k = 1; k < n; k++) {
        const struct ex_tensor *v = ex_in_at(c, "values", k);
        if (v->dtype != v0->dtype) {
            return ex_fail(c, ANML_E_SHAPE, "values[%d] ('%s') has dtype %s, values[0] has %s",
                           (int)k, v->name, anml_dtype_name(v->dtype), anml_dtype_name(v0->dtype));
        }
        bool ok = v->rank == v0->rank;
        for (int32_t i = 0; ok && i < v0->rank; i++) {
            ok = v->shape[i] == v0->shape[i] || (i == axis && !interleave);
        }
        if (!ok) {
            char b1[96], b2[96];
            return ex_fail(c, ANML_E_SHAPE,
                           "values[%d] ('%s') has shape %s, which does not match values[0] %s %s "
                           "axis %d",
                           (int)k, v->name, shape_str(b1, sizeof b1, v->rank, v->shape),
                           shape_str(b2, sizeof b2, v0->rank, v0->shape),
                           interleave ? "(interleave needs identical shapes) at" : "outside",
                           (int)axis);
        }
        if (!interleave) {
            if (shape[axis] > INT64_MAX - v->shape[axis]) {
                return ex_fail(c, ANML_E_SHAPE, "concatenated axis overflows");
            }
            shape[axis] += v->shape[axis];
        }
    }
    if (interleave && !anml__mul_i64(shape[axis], n, &shape[axis])) {
        return ex_fail(c, ANML_E_SHAPE, "concatenated axis overflows");
    }
    return set_out(c, 0, v0->dtype, v0->rank, shape);
}

static enum anml_status run_concat(struct ex_call *c) {
    int32_t axis;
    bool interleave;
    enum anml_status st = concat_params(c, &axis, &interleave);
    if (st != ANML_OK) {
        return st;
    }
    struct ex_tensor *o = c->outs[0];
    size_t esz = anml__dtype_size(o->dtype);
    int32_t n = ex_in_count(c, "values");
    int64_t os[EX_MAX_DIMS], ds[EX_MAX_DIMS], vs[EX_MAX_DIMS];
    strides_of(o->rank, o->shape, os);
    memcpy(ds, os, sizeof ds);
    if (interleave) {
        ds[axis] = os[axis] * n;
    }
    int64_t off = 0; /* position along axis where values[k] starts */
    for (int32_t k = 0; k < n; k++) {
        const struct ex_tensor *v = ex_in_at(c, "values", k);
        int64_t start = interleave ? k : off;
        strides_of(v->rank, v->shape, vs);
        if (v->numel > 0) {
            copy_view((uint8_t *)o->data + start * os[axis] * (int64_t)esz, ds, v->data, vs, esz,
                      v->rank, v->shape);
        }
        off += v->shape[axis];
    }
    return ANML_OK;
}

/* Split sizes along the axis; one per result. */
static enum anml_status split_sizes(struct ex_call *c, const struct ex_tensor *x, int32_t *axis,
                                    int64_t *sizes) {
    int64_t a;
    enum anml_status st = req_i64(c, "axis", &a);
    if (st != ANML_OK) {
        return st;
    }
    if (!ex_axis(c, a, x->rank, axis)) {
        return cur_err(c);
    }
    int64_t d = x->shape[*axis];
    const struct ex_tensor *ss = ex_in(c, "split_sizes");
    if (ss) {
        if (!is_const(ss)) {
            return ex_fail(c, ANML_E_UNSUPPORTED, "argument 'split_sizes' must be a constant");
        }
        if (ss->numel != c->n_outs || ss->rank > 1 || !ex_is_int(ss->dtype)) {
            return ex_fail(c, ANML_E_SHAPE,
                           "split_sizes has %lld entries but the op has %d "
                           "results",
                           (long long)ss->numel, (int)c->n_outs);
        }
        int64_t sum = 0;
        for (int32_t i = 0; i < c->n_outs; i++) {
            sizes[i] = ex_get_i64(ss, i);
            if (sizes[i] < 0 || sizes[i] > d) {
                return ex_fail(c, ANML_E_SHAPE, "split_sizes[%d] = %lld is out of range", (int)i,
                               (long long)sizes[i]);
            }
            sum += sizes[i];
        }
        if (sum != d) {
            return ex_fail(c, ANML_E_SHAPE, "split_sizes sum to %lld, axis %d has size %lld",
                           (long long)sum, (int)*axis, (long long)d);
        }
        return ANML_OK;
    }
    int64_t ns;
    if (!ex_in(c, "num_splits")) {
        return ex_fail(c, ANML_E_FORMAT, "needs num_splits or split_sizes");
    }
    if ((st = req_i64(c, "num_splits", &ns)) != ANML_OK) {
        return st;
    }
    if (ns != c->n_outs || ns <= 0 || d % ns != 0) {
        return ex_fail(c, ANML_E_SHAPE,
                       "num_splits = %lld must equal the %d results and divide "
                       "axis size %lld",
                       (long long)ns, (int)c->n_outs, (long long)d);
    }
    for (int32_t i = 0; i < c->n_outs; i++) {
        sizes[i] = d / ns;
    }
    return ANML_OK;
}

static enum anml_status infer_split(struct ex_call *c) {
    struct ex_tensor *x = ex_req(c, "x");
    enum anml_status st;
    if (!x) {
        return cur_err(c);
    }
    if ((st = check_data(c, x, "x")) != ANML_OK) {
        return st;
    }
    if (c->n_outs < 1 || c->n_outs > 1024) {
        return ex_fail(c, ANML_E_UNSUPPORTED, "unsupported number of results %d", (int)c->n_outs);
    }
    int64_t sizes[1024];
    int32_t axis;
    if ((st = split_sizes(c, x, &axis, sizes)) != ANML_OK) {
        return st;
    }
    for (int32_t i = 0; i < c->n_outs; i++) {
        int64_t shape[EX_MAX_DIMS];
        memcpy(shape, x->shape, sizeof shape);
        shape[axis] = sizes[i];
        if ((st = set_out(c, i, x->dtype, x->rank, shape)) != ANML_OK) {
            return st;
        }
    }
    return ANML_OK;
}

static enum anml_status run_split(struct ex_call *c) {
    struct ex_tensor *x = ex_in(c, "x");
    size_t esz = anml__dtype_size(x->dtype);
    int64_t a;
    int32_t axis;
    enum anml_status st = req_i64(c, "axis", &a);
    if (st != ANML_OK) {
        return st;
    }
    if (!ex_axis(c, a, x->rank, &axis)) {
        return cur_err(c);
    }
    int64_t xs[EX_MAX_DIMS], os[EX_MAX_DIMS];
    strides_of(x->rank, x->shape, xs);
    int64_t off = 0;
    for (int32_t i = 0; i < c->n_outs; i++) {
        struct ex_tensor *o = c->outs[i];
        strides_of(o->rank, o->shape, os);
        if (o->numel > 0) {
            copy_view(o->data, os, (const uint8_t *)x->data + off * xs[axis] * (int64_t)esz, xs,
                      esz, o->rank, o->shape);
        }
        off += o->shape[axis];
    }
    return ANML_OK;
}

/* ---- tile ---- */

/* reps (may be longer than rank(x): x then gets leading 1 dims, like NumPy). xshape receives the
 * padded shape of x, rank the result rank. */
static enum anml_status tile_reps(struct ex_call *c, const struct ex_tensor *x, int64_t *reps,
                                  int64_t *xshape, int32_t *rank) {
    const struct ex_tensor *rt = ex_in(c, "reps");
    int32_t n;
    if (!ex_read_i64s(c, rt, reps, EX_MAX_DIMS, &n)) {
        return cur_err(c);
    }
    if (n < x->rank) {
        return ex_fail(c, ANML_E_SHAPE, "reps has %d entries, x has rank %d", (int)n, (int)x->rank);
    }
    for (int32_t i = 0; i < n; i++) {
        if (reps[i] < 0) {
            return ex_fail(c, ANML_E_SHAPE, "reps[%d] = %lld is negative", (int)i,
                           (long long)reps[i]);
        }
        int32_t j = i - (n - x->rank);
        xshape[i] = j >= 0 ? x->shape[j] : 1;
    }
    *rank = n;
    return ANML_OK;
}

static enum anml_status infer_tile(struct ex_call *c) {
    struct ex_tensor *x = ex_req(c, "x");
    struct ex_tensor *rt = ex_req(c, "reps");
    enum anml_status st;
    if (!x || !rt) {
        return cur_err(c);
    }
    if ((st = need_outs(c, 1)) != ANML_OK || (st = check_data(c, x, "x")) != ANML_OK) {
        return st;
    }
    if (!is_const(rt)) {
        if ((st = declared_out(c, 0, x->dtype)) != ANML_OK) {
            return st;
        }
        if (c->outs[0]->rank < x->rank) {
            return ex_fail(c, ANML_E_SHAPE, "declared result rank is below rank(x)");
        }
        return ANML_OK;
    }
    int64_t reps[EX_MAX_DIMS], xsh[EX_MAX_DIMS], shape[EX_MAX_DIMS];
    int32_t r;
    if ((st = tile_reps(c, x, reps, xsh, &r)) != ANML_OK) {
        return st;
    }
    for (int32_t i = 0; i < r; i++) {
        if (!anml__mul_i64(xsh[i], reps[i], &shape[i])) {
            return ex_fail(c, ANML_E_SHAPE, "tiled shape overflows");
        }
    }
    return set_out(c, 0, x->dtype, r, shape);
}

static enum anml_status run_tile(struct ex_call *c) {
    struct ex_tensor *x = ex_in(c, "x");
    struct ex_tensor *o = c->outs[0];
    int64_t reps[EX_MAX_DIMS], xsh[EX_MAX_DIMS];
    int32_t r;
    enum anml_status st = tile_reps(c, x, reps, xsh, &r);
    if (st != ANML_OK) {
        return st;
    }
    bool ok = r == o->rank;
    for (int32_t i = 0; ok && i < r; i++) {
        int64_t d;
        ok = anml__mul_i64(xsh[i], reps[i], &d) && d == o->shape[i];
    }
    if (!ok) {
        return ex_fail(c, ANML_E_SHAPE, "runtime reps do not give the planned shape");
    }
    if (o->numel == 0) {
        return ANML_OK;
    }
    /* view [reps0, D0, reps1, D1, ...]: x is read with stride 0 along the rep dims */
    int64_t vsh[VIEW_MAX_DIMS], vs[VIEW_MAX_DIMS], vd[VIEW_MAX_DIMS], xs[EX_MAX_DIMS],
        os[EX_MAX_DIMS];
    strides_of(r, xsh, xs);
    strides_of(r, o->shape, os);
    for (int32_t i = 0; i < r; i++) {
        vsh[2 * i] = reps[i];
        vsh[2 * i + 1] = xsh[i];
        vs[2 * i] = 0;
        vs[2 * i + 1] = xs[i];
        vd[2 * i] = os[i] * xsh[i];
        vd[2 * i + 1] = os[i];
    }
    copy_view(o->data, vd, x->data, vs, anml__dtype_size(x->dtype), 2 * r, vsh);
    return ANML_OK;
}

/* ---- sliding_windows ---- */

static enum anml_status sw_params(struct ex_call *c, const struct ex_tensor *x, int32_t *axis,
                                  int64_t *size, int64_t *stride) {
    int64_t a;
    enum anml_status st;
    if ((st = req_i64(c, "axis", &a)) != ANML_OK || (st = req_i64(c, "size", size)) != ANML_OK ||
        (st = opt_i64(c, "stride", 1, stride)) != ANML_OK) {
        return st;
    }
    if (!ex_axis(c, a, x->rank, axis)) {
        return cur_err(c);
    }
    if (*size < 1 || *size > x->shape[*axis] || *stride < 1) {
        return ex_fail(c, ANML_E_SHAPE, "size %lld / stride %lld do not fit axis size %lld",
                       (long long)*size, (long long)*stride, (long long)x->shape[*axis]);
    }
    return ANML_OK;
}

static enum anml_status infer_sliding_windows(struct ex_call *c) {
    struct ex_tensor *x = ex_req(c, "x");
    enum anml_status st;
    int32_t axis;
    int64_t size, stride;
    if (!x) {
        return cur_err(c);
    }
    if ((st = need_outs(c, 1)) != ANML_OK || (st = check_data(c, x, "x")) != ANML_OK ||
        (st = sw_params(c, x, &axis, &size, &stride)) != ANML_OK) {
        return st;
    }
    if (x->rank + 1 > EX_MAX_DIMS) {
        return ex_fail(c, ANML_E_UNSUPPORTED, "result rank exceeds %d", EX_MAX_DIMS);
    }
    int64_t shape[EX_MAX_DIMS];
    for (int32_t i = 0, j = 0; i < x->rank; i++) {
        if (i == axis) {
            shape[j++] = (x->shape[i] - size) / stride + 1;
            shape[j++] = size;
        } else {
            shape[j++] = x->shape[i];
        }
    }
    return set_out(c, 0, x->dtype, x->rank + 1, shape);
}

static enum anml_status run_sliding_windows(struct ex_call *c) {
    struct ex_tensor *x = ex_in(c, "x");
    struct ex_tensor *o = c->outs[0];
    int32_t axis;
    int64_t size, stride;
    enum anml_status st = sw_params(c, x, &axis, &size, &stride);
    if (st != ANML_OK) {
        return st;
    }
    int64_t xs[EX_MAX_DIMS], vs[EX_MAX_DIMS], os[EX_MAX_DIMS];
    strides_of(x->rank, x->shape, xs);
    strides_of(o->rank, o->shape, os);
    for (int32_t i = 0, j = 0; i < x->rank; i++) {
        if (i == axis) {
            vs[j++] = xs[i] * stride;
        }
        vs[j++] = xs[i];
    }
    copy_view(o->data, os, x->data, vs, anml__dtype_size(x->dtype), o->rank, o->shape);
    return ANML_OK;
}

/* ---- slicing (slice_by_index, slice_by_size, slice_update) ---- */

struct slice_params {
    int64_t stride[EX_MAX_DIMS];
    bool begin_mask[EX_MAX_DIMS], end_mask[EX_MAX_DIMS], squeeze_mask[EX_MAX_DIMS];
};

/* The selected elements: per axis of x the first index, step and count (1 for squeezed axes),
 * and the result shape (squeezed axes removed). */
struct slice_geom {
    int64_t start[EX_MAX_DIMS], step[EX_MAX_DIMS], len[EX_MAX_DIMS];
    int32_t out_rank;
    int64_t out_shape[EX_MAX_DIMS];
};

/* The constant parameters stride/begin_mask/end_mask/squeeze_mask for x of rank `rank`. */
static enum anml_status slice_read_params(struct ex_call *c, int32_t rank, struct slice_params *p) {
    enum anml_status st;
    int32_t n;
    bool present;
    if ((st = opt_mask(c, "begin_mask", rank, p->begin_mask)) != ANML_OK ||
        (st = opt_mask(c, "end_mask", rank, p->end_mask)) != ANML_OK ||
        (st = opt_mask(c, "squeeze_mask", rank, p->squeeze_mask)) != ANML_OK ||
        (st = opt_i64s(c, "stride", p->stride, &n, &present)) != ANML_OK) {
        return st;
    }
    if (!present) {
        for (int32_t i = 0; i < rank; i++) {
            p->stride[i] = 1;
        }
    } else if (n != rank) {
        return ex_fail(c, ANML_E_SHAPE, "stride has %d entries, expected rank(x) = %d", (int)n,
                       (int)rank);
    }
    for (int32_t i = 0; i < rank; i++) {
        if (!p->squeeze_mask[i] && (p->stride[i] == 0 || p->stride[i] == INT64_MIN)) {
            return ex_fail(c, ANML_E_SHAPE, "stride[%d] = %lld is not allowed", (int)i,
                           (long long)p->stride[i]);
        }
    }
    return ANML_OK;
}

/* Checks that begin/end style argument `name` is an integer vector of rank(x) entries. */
static enum anml_status check_bounds_arg(struct ex_call *c, const struct ex_tensor *t,
                                         const char *name, int32_t rank, bool allow_i64) {
    bool ok_dt = t->dtype == ANML_DTYPE_INT32 || t->dtype == ANML_DTYPE_INT16 ||
                 t->dtype == ANML_DTYPE_INT8 || (allow_i64 && ex_is_int(t->dtype));
    if (!ok_dt || t->rank != 1 || t->shape[0] != rank) {
        return ex_fail(c, ANML_E_SHAPE,
                       "%s ('%s') must be an int8/int16/int32 vector of rank(x) "
                       "= %d entries",
                       name, t->name, (int)rank);
    }
    return ANML_OK;
}

static enum anml_status read_bounds(struct ex_call *c, const struct ex_tensor *t, int32_t rank,
                                    int64_t *out) {
    int32_t n;
    if (!ex_read_i64s(c, t, out, EX_MAX_DIMS, &n)) {
        return cur_err(c);
    }
    if (n != rank) {
        return ex_fail(c, ANML_E_SHAPE, "'%s' has %d entries, expected %d", t->name, (int)n,
                       (int)rank);
    }
    return ANML_OK;
}

/* Python slice semantics with masks and clamping, coreml-format.md §9.8. */
static enum anml_status slice_geometry(struct ex_call *c, const struct ex_tensor *x,
                                       const int64_t *begin, const int64_t *end,
                                       const struct slice_params *p, struct slice_geom *g) {
    g->out_rank = 0;
    for (int32_t i = 0; i < x->rank; i++) {
        int64_t d = x->shape[i];
        int64_t s = p->stride[i];
        if (p->squeeze_mask[i]) {
            int64_t b = p->begin_mask[i] ? (s < 0 ? d - 1 : 0) : begin[i];
            if (b < 0) {
                b += d;
            }
            if (b < 0 || b >= d) {
                return ex_fail(c, ANML_E_SHAPE,
                               "axis %d: index %lld picked by squeeze_mask is out of range for "
                               "size %lld",
                               (int)i, (long long)begin[i], (long long)d);
            }
            g->start[i] = b;
            g->step[i] = 1;
            g->len[i] = 1;
            continue;
        }
        int64_t lo, hi, len;
        if (s > 0) {
            lo = p->begin_mask[i] ? 0 : begin[i];
            hi = p->end_mask[i] ? d : end[i];
            if (!p->begin_mask[i] && lo < 0) {
                lo += d;
            }
            if (!p->end_mask[i] && hi < 0) {
                hi += d;
            }
            lo = lo < 0 ? 0 : (lo > d ? d : lo);
            hi = hi < 0 ? 0 : (hi > d ? d : hi);
            len = hi > lo ? 1 + (hi - lo - 1) / s : 0;
        } else {
            /* "before 0" is -1: the stop for a full backwards walk */
            lo = p->begin_mask[i] ? d - 1 : begin[i];
            hi = p->end_mask[i] ? -1 : end[i];
            if (!p->begin_mask[i] && lo < 0) {
                lo += d;
            }
            if (!p->end_mask[i] && hi < 0) {
                hi += d;
            }
            lo = lo < -1 ? -1 : (lo > d - 1 ? d - 1 : lo);
            hi = hi < -1 ? -1 : (hi > d - 1 ? d - 1 : hi);
            len = lo > hi ? 1 + (lo - hi - 1) / (-s) : 0;
        }
        g->start[i] = lo;
        g->step[i] = s;
        g->len[i] = len;
        g->out_shape[g->out_rank++] = len;
    }
    return ANML_OK;
}

/* Element offset of the slice's first element and its strides in x. Only valid when the slice is
 * not empty (an empty backwards slice may start at -1). */
static int64_t slice_view(const struct ex_tensor *x, const struct slice_geom *g, int64_t *vstr) {
    int64_t xs[EX_MAX_DIMS], off = 0;
    strides_of(x->rank, x->shape, xs);
    for (int32_t i = 0; i < x->rank; i++) {
        off += g->start[i] * xs[i];
        vstr[i] = xs[i] * g->step[i];
    }
    return off;
}

static int64_t geom_numel(const struct ex_tensor *x, const struct slice_geom *g) {
    return prod(g->len, 0, x->rank);
}

static enum anml_status infer_slice_by_index(struct ex_call *c) {
    struct ex_tensor *x = ex_req(c, "x");
    struct ex_tensor *bt = ex_req(c, "begin");
    struct ex_tensor *et = ex_req(c, "end");
    struct slice_params p;
    enum anml_status st;
    if (!x || !bt || !et) {
        return cur_err(c);
    }
    if ((st = need_outs(c, 1)) != ANML_OK || (st = check_data(c, x, "x")) != ANML_OK ||
        (st = slice_read_params(c, x->rank, &p)) != ANML_OK ||
        (st = check_bounds_arg(c, bt, "begin", x->rank, true)) != ANML_OK ||
        (st = check_bounds_arg(c, et, "end", x->rank, true)) != ANML_OK) {
        return st;
    }
    if (is_const(bt) && is_const(et)) {
        int64_t b[EX_MAX_DIMS], e[EX_MAX_DIMS];
        struct slice_geom g;
        if ((st = read_bounds(c, bt, x->rank, b)) != ANML_OK ||
            (st = read_bounds(c, et, x->rank, e)) != ANML_OK ||
            (st = slice_geometry(c, x, b, e, &p, &g)) != ANML_OK) {
            return st;
        }
        return set_out(c, 0, x->dtype, g.out_rank, g.out_shape);
    }
    /* runtime bounds: the declared type gives the shape, run checks it */
    if ((st = declared_out(c, 0, x->dtype)) != ANML_OK) {
        return st;
    }
    const struct ex_tensor *o = c->outs[0];
    bool ok = true;
    int32_t r = 0;
    for (int32_t i = 0; i < x->rank; i++) {
        if (!p.squeeze_mask[i]) {
            ok = ok && r < o->rank && o->shape[r] <= x->shape[i];
            r++;
        }
    }
    if (!ok || r != o->rank) {
        char b1[96], b2[96];
        return ex_fail(c, ANML_E_SHAPE, "declared result shape %s cannot be a slice of x %s",
                       shape_str(b1, sizeof b1, o->rank, o->shape),
                       shape_str(b2, sizeof b2, x->rank, x->shape));
    }
    return ANML_OK;
}

static enum anml_status run_slice_by_index(struct ex_call *c) {
    struct ex_tensor *x = ex_in(c, "x");
    struct ex_tensor *o = c->outs[0];
    struct slice_params p;
    struct slice_geom g;
    int64_t b[EX_MAX_DIMS], e[EX_MAX_DIMS];
    enum anml_status st;
    if ((st = slice_read_params(c, x->rank, &p)) != ANML_OK ||
        (st = read_bounds(c, ex_in(c, "begin"), x->rank, b)) != ANML_OK ||
        (st = read_bounds(c, ex_in(c, "end"), x->rank, e)) != ANML_OK ||
        (st = slice_geometry(c, x, b, e, &p, &g)) != ANML_OK) {
        return st;
    }
    if (!same_shape(g.out_rank, g.out_shape, o->rank, o->shape)) {
        char b1[96], b2[96];
        return ex_fail(c, ANML_E_SHAPE, "runtime slice has shape %s, the planned shape is %s",
                       shape_str(b1, sizeof b1, g.out_rank, g.out_shape),
                       shape_str(b2, sizeof b2, o->rank, o->shape));
    }
    if (o->numel == 0) {
        return ANML_OK;
    }
    int64_t vs[EX_MAX_DIMS], ds[EX_MAX_DIMS];
    size_t esz = anml__dtype_size(x->dtype);
    int64_t off = slice_view(x, &g, vs);
    strides_of(x->rank, g.len, ds);
    copy_view(o->data, ds, (const uint8_t *)x->data + off * (int64_t)esz, vs, esz, x->rank, g.len);
    return ANML_OK;
}

/* slice_by_size: begin (negative + D; may be runtime), size (const; -1 = to the end). */
static enum anml_status sbs_geometry(struct ex_call *c, const struct ex_tensor *x,
                                     const int64_t *begin, const int64_t *size,
                                     struct slice_geom *g) {
    for (int32_t i = 0; i < x->rank; i++) {
        int64_t d = x->shape[i];
        int64_t b = begin[i] < 0 ? begin[i] + d : begin[i];
        int64_t n = size[i] == -1 ? d - b : size[i];
        if (b < 0 || b > d || n < 0 || n > d - b) {
            return ex_fail(c, ANML_E_SHAPE, "axis %d: begin %lld size %lld do not fit size %lld",
                           (int)i, (long long)begin[i], (long long)size[i], (long long)d);
        }
        g->start[i] = b;
        g->step[i] = 1;
        g->len[i] = n;
        g->out_shape[i] = n;
    }
    g->out_rank = x->rank;
    return ANML_OK;
}

static enum anml_status sbs_size(struct ex_call *c, const struct ex_tensor *x, int64_t *size) {
    int32_t n;
    enum anml_status st = req_i64s(c, "size", size, &n);
    if (st != ANML_OK) {
        return st;
    }
    if (n != x->rank) {
        return ex_fail(c, ANML_E_SHAPE, "size has %d entries, expected rank(x) = %d", (int)n,
                       (int)x->rank);
    }
    for (int32_t i = 0; i < n; i++) {
        if (size[i] < -1 || size[i] > x->shape[i]) {
            return ex_fail(c, ANML_E_SHAPE, "size[%d] = %lld does not fit axis size %lld", (int)i,
                           (long long)size[i], (long long)x->shape[i]);
        }
    }
    return ANML_OK;
}

static enum anml_status infer_slice_by_size(struct ex_call *c) {
    struct ex_tensor *x = ex_req(c, "x");
    struct ex_tensor *bt = ex_req(c, "begin");
    int64_t size[EX_MAX_DIMS], b[EX_MAX_DIMS];
    enum anml_status st;
    if (!x || !bt) {
        return cur_err(c);
    }
    if ((st = need_outs(c, 1)) != ANML_OK || (st = check_data(c, x, "x")) != ANML_OK ||
        (st = check_bounds_arg(c, bt, "begin", x->rank, true)) != ANML_OK ||
        (st = sbs_size(c, x, size)) != ANML_OK) {
        return st;
    }
    if (is_const(bt)) {
        struct slice_geom g;
        if ((st = read_bounds(c, bt, x->rank, b)) != ANML_OK ||
            (st = sbs_geometry(c, x, b, size, &g)) != ANML_OK) {
            return st;
        }
        return set_out(c, 0, x->dtype, g.out_rank, g.out_shape);
    }
    bool open = false;
    for (int32_t i = 0; i < x->rank; i++) {
        open = open || size[i] == -1;
    }
    if (!open) {
        return set_out(c, 0, x->dtype, x->rank, size);
    }
    if ((st = declared_out(c, 0, x->dtype)) != ANML_OK) {
        return st;
    }
    if (c->outs[0]->rank != x->rank) {
        return ex_fail(c, ANML_E_SHAPE, "declared result rank %d differs from rank(x) = %d",
                       (int)c->outs[0]->rank, (int)x->rank);
    }
    return ANML_OK;
}

static enum anml_status run_slice_by_size(struct ex_call *c) {
    struct ex_tensor *x = ex_in(c, "x");
    struct ex_tensor *o = c->outs[0];
    int64_t size[EX_MAX_DIMS], b[EX_MAX_DIMS];
    struct slice_geom g;
    enum anml_status st;
    if ((st = sbs_size(c, x, size)) != ANML_OK ||
        (st = read_bounds(c, ex_in(c, "begin"), x->rank, b)) != ANML_OK ||
        (st = sbs_geometry(c, x, b, size, &g)) != ANML_OK) {
        return st;
    }
    if (!same_shape(g.out_rank, g.out_shape, o->rank, o->shape)) {
        char b1[96], b2[96];
        return ex_fail(c, ANML_E_SHAPE, "runtime slice has shape %s, the planned shape is %s",
                       shape_str(b1, sizeof b1, g.out_rank, g.out_shape),
                       shape_str(b2, sizeof b2, o->rank, o->shape));
    }
    if (o->numel == 0) {
        return ANML_OK;
    }
    int64_t vs[EX_MAX_DIMS], ds[EX_MAX_DIMS];
    size_t esz = anml__dtype_size(x->dtype);
    int64_t off = slice_view(x, &g, vs);
    strides_of(x->rank, g.len, ds);
    copy_view(o->data, ds, (const uint8_t *)x->data + off * (int64_t)esz, vs, esz, x->rank, g.len);
    return ANML_OK;
}

/* update must have the slice's shape with squeezed axes removed. */
static enum anml_status check_update_shape(struct ex_call *c, const struct ex_tensor *u,
                                           const struct slice_geom *g) {
    if (!same_shape(u->rank, u->shape, g->out_rank, g->out_shape)) {
        char b1[96], b2[96];
        return ex_fail(c, ANML_E_SHAPE, "update ('%s') has shape %s, the slice has shape %s",
                       u->name, shape_str(b1, sizeof b1, u->rank, u->shape),
                       shape_str(b2, sizeof b2, g->out_rank, g->out_shape));
    }
    return ANML_OK;
}

static enum anml_status infer_slice_update(struct ex_call *c) {
    struct ex_tensor *x = ex_req(c, "x");
    struct ex_tensor *u = ex_req(c, "update");
    struct ex_tensor *bt = ex_req(c, "begin");
    struct ex_tensor *et = ex_req(c, "end");
    struct slice_params p;
    enum anml_status st;
    if (!x || !u || !bt || !et) {
        return cur_err(c);
    }
    if ((st = need_outs(c, 1)) != ANML_OK || (st = check_data(c, x, "x")) != ANML_OK ||
        (st = check_data(c, u, "update")) != ANML_OK ||
        (st = slice_read_params(c, x->rank, &p)) != ANML_OK ||
        (st = check_bounds_arg(c, bt, "begin", x->rank, false)) != ANML_OK ||
        (st = check_bounds_arg(c, et, "end", x->rank, false)) != ANML_OK) {
        return st;
    }
    if (u->dtype != x->dtype) {
        return ex_fail(c, ANML_E_SHAPE, "update has dtype %s, x has %s", anml_dtype_name(u->dtype),
                       anml_dtype_name(x->dtype));
    }
    if (u->rank == 0) {
        return ex_fail(c, ANML_E_SHAPE, "a rank-0 update is not allowed");
    }
    int32_t n_sq = 0;
    for (int32_t i = 0; i < x->rank; i++) {
        n_sq += p.squeeze_mask[i];
    }
    if (u->rank != x->rank - n_sq) {
        return ex_fail(c, ANML_E_SHAPE, "update has rank %d, expected rank(x) - squeezed axes = %d",
                       (int)u->rank, (int)(x->rank - n_sq));
    }
    if (is_const(bt) && is_const(et)) {
        int64_t b[EX_MAX_DIMS], e[EX_MAX_DIMS];
        struct slice_geom g;
        if ((st = read_bounds(c, bt, x->rank, b)) != ANML_OK ||
            (st = read_bounds(c, et, x->rank, e)) != ANML_OK ||
            (st = slice_geometry(c, x, b, e, &p, &g)) != ANML_OK ||
            (st = check_update_shape(c, u, &g)) != ANML_OK) {
            return st;
        }
    }
    return set_out(c, 0, x->dtype, x->rank, x->shape);
}

static enum anml_status run_slice_update(struct ex_call *c) {
    struct ex_tensor *x = ex_in(c, "x");
    struct ex_tensor *u = ex_in(c, "update");
    struct ex_tensor *o = c->outs[0];
    struct slice_params p;
    struct slice_geom g;
    int64_t b[EX_MAX_DIMS], e[EX_MAX_DIMS];
    enum anml_status st;
    /* Validate everything before writing, so a failed run leaves the output untouched. */
    if ((st = slice_read_params(c, x->rank, &p)) != ANML_OK ||
        (st = read_bounds(c, ex_in(c, "begin"), x->rank, b)) != ANML_OK ||
        (st = read_bounds(c, ex_in(c, "end"), x->rank, e)) != ANML_OK ||
        (st = slice_geometry(c, x, b, e, &p, &g)) != ANML_OK ||
        (st = check_update_shape(c, u, &g)) != ANML_OK) {
        return st;
    }
    /* TODO(lead): when the planner aliases the output to x (KV cache), this copy disappears. */
    copy_all(o, x);
    if (geom_numel(x, &g) == 0) {
        return ANML_OK;
    }
    int64_t vs[EX_MAX_DIMS], us[EX_MAX_DIMS];
    size_t esz = anml__dtype_size(x->dtype);
    int64_t off = slice_view(x, &g, vs);
    strides_of(x->rank, g.len, us);
    copy_view((uint8_t *)o->data + off * (int64_t)esz, vs, u->data, us, esz, x->rank, g.len);
    return ANML_OK;
}

/* ---- gather ---- */

struct gather_geom {
    int32_t axis, batch_dims;
    bool validate;
    int64_t batch, pre, dax, inner, nidx;
};

static enum anml_status gather_params(struct ex_call *c, const struct ex_tensor *x,
                                      const struct ex_tensor *ix, struct gather_geom *g) {
    int64_t a, b;
    enum anml_status st;
    if ((st = opt_i64(c, "axis", 0, &a)) != ANML_OK ||
        (st = opt_i64(c, "batch_dims", 0, &b)) != ANML_OK ||
        (st = opt_bool(c, "validate_indices", false, &g->validate)) != ANML_OK) {
        return st;
    }
    if (!ex_axis(c, a, x->rank, &g->axis)) {
        return cur_err(c);
    }
    if (b < 0) {
        b += ix->rank;
    }
    if (b < 0 || b > ix->rank || b > g->axis) {
        return ex_fail(c, ANML_E_SHAPE,
                       "batch_dims %lld must be in [0, min(rank(indices) = %d, "
                       "axis = %d)]",
                       (long long)b, (int)ix->rank, (int)g->axis);
    }
    g->batch_dims = (int32_t)b;
    for (int32_t i = 0; i < g->batch_dims; i++) {
        if (ix->shape[i] != x->shape[i]) {
            return ex_fail(c, ANML_E_SHAPE, "batch dim %d: indices have %lld, x has %lld", (int)i,
                           (long long)ix->shape[i], (long long)x->shape[i]);
        }
    }
    g->batch = prod(x->shape, 0, g->batch_dims);
    g->pre = prod(x->shape, g->batch_dims, g->axis);
    g->dax = x->shape[g->axis];
    g->inner = prod(x->shape, g->axis + 1, x->rank);
    g->nidx = prod(ix->shape, g->batch_dims, ix->rank);
    return ANML_OK;
}

static enum anml_status infer_gather(struct ex_call *c) {
    struct ex_tensor *x = ex_req(c, "x");
    struct ex_tensor *ix = ex_req(c, "indices");
    struct gather_geom g;
    enum anml_status st;
    if (!x || !ix) {
        return cur_err(c);
    }
    if ((st = need_outs(c, 1)) != ANML_OK || (st = check_data(c, x, "x")) != ANML_OK ||
        (st = check_indices(c, ix)) != ANML_OK || (st = gather_params(c, x, ix, &g)) != ANML_OK) {
        return st;
    }
    int32_t r = x->rank - 1 + ix->rank - g.batch_dims;
    if (r > EX_MAX_DIMS) {
        return ex_fail(c, ANML_E_UNSUPPORTED, "result rank %d exceeds %d", (int)r, EX_MAX_DIMS);
    }
    int64_t shape[EX_MAX_DIMS];
    int32_t k = 0;
    for (int32_t i = 0; i < g.axis; i++) {
        shape[k++] = x->shape[i];
    }
    for (int32_t i = g.batch_dims; i < ix->rank; i++) {
        shape[k++] = ix->shape[i];
    }
    for (int32_t i = g.axis + 1; i < x->rank; i++) {
        shape[k++] = x->shape[i];
    }
    if ((st = set_out(c, 0, x->dtype, r, shape)) != ANML_OK) {
        return st;
    }
    if (g.dax == 0 && c->outs[0]->numel > 0) {
        return ex_fail(c, ANML_E_SHAPE, "cannot gather from axis %d of size 0", (int)g.axis);
    }
    if (x->lut && x->lut->lut_dtype != x->dtype) {
        ex_request_scratch(c, (size_t)g.inner * sizeof(float));
    }
    return ANML_OK;
}

/* Reads the index at flat position i of ix and maps it into [0, d): -1 on a validation failure. */
static int64_t fetch_index(struct ex_call *c, const struct ex_tensor *ix, int64_t i, int64_t d,
                           bool validate) {
    int64_t v = ex_get_i64(ix, i);
    int64_t r = index_in_range(c, v, d);
    if (r >= 0) {
        return r;
    }
    if (validate) {
        ex_fail(c, ANML_E_SHAPE, "index %lld (at %lld in '%s') is out of range for size %lld",
                (long long)v, (long long)i, ix->name, (long long)d);
        return -1;
    }
    /* documented choice: clamp (negatives before iOS17 already had D added) */
    if (v < 0 && c->opset < 7) {
        v += d;
    }
    return v < 0 ? 0 : d - 1;
}

static enum anml_status run_gather(struct ex_call *c) {
    struct ex_tensor *x = ex_in(c, "x");
    struct ex_tensor *ix = ex_in(c, "indices");
    struct ex_tensor *o = c->outs[0];
    struct gather_geom g;
    enum anml_status st = gather_params(c, x, ix, &g);
    if (st != ANML_OK) {
        return st;
    }
    if (o->numel == 0) {
        return ANML_OK;
    }
    size_t esz = anml__dtype_size(x->dtype);
    const size_t row = (size_t)g.inner * esz;
    uint8_t *od = o->data;
    const uint8_t *xd = x->data;
    const struct anml_lut_weight *lut = x->lut;
    for (int64_t bi = 0; bi < g.batch; bi++) {
        for (int64_t pi = 0; pi < g.pre; pi++) {
            const int64_t blk = bi * g.pre + pi;
            for (int64_t ii = 0; ii < g.nidx; ii++) {
                int64_t v = fetch_index(c, ix, bi * g.nidx + ii, g.dax, g.validate);
                if (v < 0) {
                    return cur_err(c);
                }
                const int64_t src = (blk * g.dax + v) * g.inner;
                uint8_t *dst = od + (size_t)((blk * g.nidx + ii) * g.inner) * esz;
                if (!lut) {
                    memcpy(dst, xd + (size_t)src * esz, row);
                } else if (lut->lut_dtype == x->dtype) {
                    anml__lut_decode_raw(lut, src, g.inner, dst);
                } else {
                    anml__lut_decode_f32(lut, src, g.inner, c->scratch);
                    ex_from_f32(o, (blk * g.nidx + ii) * g.inner, g.inner, c->scratch);
                }
            }
        }
    }
    return ANML_OK;
}

/* gather_along_axis: indices have x's rank and shape except along axis; out[p] =
 * x[p with p_axis = indices[p]]. */
static enum anml_status gaa_params(struct ex_call *c, const struct ex_tensor *x,
                                   const struct ex_tensor *ix, int32_t *axis, bool *validate) {
    int64_t a;
    enum anml_status st;
    if ((st = opt_i64(c, "axis", 0, &a)) != ANML_OK ||
        (st = opt_bool(c, "validate_indices", false, validate)) != ANML_OK) {
        return st;
    }
    if (!ex_axis(c, a, x->rank, axis)) {
        return cur_err(c);
    }
    bool ok = ix->rank == x->rank;
    for (int32_t i = 0; ok && i < x->rank; i++) {
        ok = i == *axis || ix->shape[i] == x->shape[i];
    }
    if (!ok) {
        char b1[96], b2[96];
        return ex_fail(c, ANML_E_SHAPE, "indices shape %s must match x %s except along axis %d",
                       shape_str(b1, sizeof b1, ix->rank, ix->shape),
                       shape_str(b2, sizeof b2, x->rank, x->shape), (int)*axis);
    }
    return ANML_OK;
}

static enum anml_status infer_gather_along_axis(struct ex_call *c) {
    struct ex_tensor *x = ex_req(c, "x");
    struct ex_tensor *ix = ex_req(c, "indices");
    int32_t axis;
    bool validate;
    enum anml_status st;
    if (!x || !ix) {
        return cur_err(c);
    }
    if ((st = need_outs(c, 1)) != ANML_OK || (st = check_data(c, x, "x")) != ANML_OK ||
        (st = check_indices(c, ix)) != ANML_OK ||
        (st = gaa_params(c, x, ix, &axis, &validate)) != ANML_OK) {
        return st;
    }
    if ((st = set_out(c, 0, x->dtype, ix->rank, ix->shape)) != ANML_OK) {
        return st;
    }
    if (x->shape[axis] == 0 && c->outs[0]->numel > 0) {
        return ex_fail(c, ANML_E_SHAPE, "cannot gather from axis %d of size 0", (int)axis);
    }
    return ANML_OK;
}

static enum anml_status run_gather_along_axis(struct ex_call *c) {
    struct ex_tensor *x = ex_in(c, "x");
    struct ex_tensor *ix = ex_in(c, "indices");
    struct ex_tensor *o = c->outs[0];
    int32_t axis;
    bool validate;
    enum anml_status st = gaa_params(c, x, ix, &axis, &validate);
    if (st != ANML_OK) {
        return st;
    }
    size_t esz = anml__dtype_size(x->dtype);
    int64_t outer = prod(x->shape, 0, axis), dax = x->shape[axis], nax = ix->shape[axis];
    int64_t inner = prod(x->shape, axis + 1, x->rank);
    uint8_t *od = o->data;
    const uint8_t *xd = x->data;
    for (int64_t oi = 0; oi < outer; oi++) {
        for (int64_t j = 0; j < nax; j++) {
            for (int64_t in = 0; in < inner; in++) {
                int64_t p = (oi * nax + j) * inner + in;
                int64_t v = fetch_index(c, ix, p, dax, validate);
                if (v < 0) {
                    return cur_err(c);
                }
                memcpy(od + (size_t)p * esz, xd + (size_t)((oi * dax + v) * inner + in) * esz, esz);
            }
        }
    }
    return ANML_OK;
}

/* gather_nd: the last dim (k) of indices addresses dims b..b+k-1 of x. */
static enum anml_status gnd_params(struct ex_call *c, const struct ex_tensor *x,
                                   const struct ex_tensor *ix, int32_t *bd, int32_t *k,
                                   bool *validate) {
    int64_t b;
    enum anml_status st;
    if ((st = opt_i64(c, "batch_dims", 0, &b)) != ANML_OK ||
        (st = opt_bool(c, "validate_indices", false, validate)) != ANML_OK) {
        return st;
    }
    if (ix->rank < 1) {
        return ex_fail(c, ANML_E_SHAPE, "indices must have rank >= 1");
    }
    *k = (int32_t)(ix->shape[ix->rank - 1] > EX_MAX_DIMS ? EX_MAX_DIMS + 1
                                                         : ix->shape[ix->rank - 1]);
    if (b < 0 || b >= ix->rank || b > x->rank) {
        return ex_fail(c, ANML_E_SHAPE, "batch_dims %lld is out of range", (long long)b);
    }
    *bd = (int32_t)b;
    if (*k < 1 || *bd + *k > x->rank) {
        return ex_fail(c, ANML_E_SHAPE,
                       "indices' last dim %lld plus batch_dims %d exceeds rank(x) "
                       "= %d",
                       (long long)ix->shape[ix->rank - 1], (int)*bd, (int)x->rank);
    }
    for (int32_t i = 0; i < *bd; i++) {
        if (ix->shape[i] != x->shape[i]) {
            return ex_fail(c, ANML_E_SHAPE, "batch dim %d: indices have %lld, x has %lld", (int)i,
                           (long long)ix->shape[i], (long long)x->shape[i]);
        }
    }
    return ANML_OK;
}

static enum anml_status infer_gather_nd(struct ex_call *c) {
    struct ex_tensor *x = ex_req(c, "x");
    struct ex_tensor *ix = ex_req(c, "indices");
    int32_t bd, k;
    bool validate;
    enum anml_status st;
    if (!x || !ix) {
        return cur_err(c);
    }
    if ((st = need_outs(c, 1)) != ANML_OK || (st = check_data(c, x, "x")) != ANML_OK ||
        (st = check_indices(c, ix)) != ANML_OK ||
        (st = gnd_params(c, x, ix, &bd, &k, &validate)) != ANML_OK) {
        return st;
    }
    int64_t shape[EX_MAX_DIMS];
    int32_t r = 0;
    if (ix->rank - 1 + x->rank - bd - k > EX_MAX_DIMS) {
        return ex_fail(c, ANML_E_UNSUPPORTED, "result rank exceeds %d", EX_MAX_DIMS);
    }
    for (int32_t i = 0; i < ix->rank - 1; i++) {
        shape[r++] = ix->shape[i];
    }
    for (int32_t i = bd + k; i < x->rank; i++) {
        shape[r++] = x->shape[i];
    }
    if ((st = set_out(c, 0, x->dtype, r, shape)) != ANML_OK) {
        return st;
    }
    for (int32_t i = bd; i < bd + k; i++) {
        if (x->shape[i] == 0 && c->outs[0]->numel > 0) {
            return ex_fail(c, ANML_E_SHAPE, "cannot gather from axis %d of size 0", (int)i);
        }
    }
    return ANML_OK;
}

static enum anml_status run_gather_nd(struct ex_call *c) {
    struct ex_tensor *x = ex_in(c, "x");
    struct ex_tensor *ix = ex_in(c, "indices");
    struct ex_tensor *o = c->outs[0];
    int32_t bd, k;
    bool validate;
    enum anml_status st;
    if ((st = gnd_params(c, x, ix, &bd, &k, &validate)) != ANML_OK) {
        return st;
    }
    if (o->numel == 0) {
        return ANML_OK;
    }
    size_t esz = anml__dtype_size(x->dtype);
    int64_t xs[EX_MAX_DIMS];
    strides_of(x->rank, x->shape, xs);
    int64_t batch = prod(x->shape, 0, bd);
    int64_t nq = prod(ix->shape, bd, ix->rank - 1);
    int64_t inner = prod(x->shape, bd + k, x->rank);
    int64_t bstride = prod(x->shape, bd, x->rank);
    uint8_t *od = o->data;
    const uint8_t *xd = x->data;
    for (int64_t bi = 0; bi < batch; bi++) {
        for (int64_t q = 0; q < nq; q++) {
            int64_t src = bi * bstride;
            int64_t ipos = (bi * nq + q) * k;
            for (int32_t t = 0; t < k; t++) {
                int64_t v = fetch_index(c, ix, ipos + t, x->shape[bd + t], validate);
                if (v < 0) {
                    return cur_err(c);
                }
                src += v * xs[bd + t];
            }
            memcpy(od + (size_t)((bi * nq + q) * inner) * esz, xd + (size_t)src * esz,
                   (size_t)inner * esz);
        }
    }
    return ANML_OK;
}

/* ---- scatter family ---- */

enum scatter_mode {
    SCATTER_UPDATE = 0,
    SCATTER_ADD,
    SCATTER_SUB,
    SCATTER_MUL,
    SCATTER_DIV,
    SCATTER_MAX,
    SCATTER_MIN,
    SCATTER_MODE_COUNT
};

static enum anml_status scatter_mode(struct ex_call *c, enum scatter_mode *m) {
    static const char *const names[SCATTER_MODE_COUNT] = { "update", "add", "sub", "mul",
                                                           "div",    "max", "min" };
    const char *s = NULL;
    if (ex_in(c, "mode")) {
        s = ex_const_str(c, "mode");
        if (!s) {
            return cur_err(c);
        }
    }
    if (!s) {
        s = "add"; /* the code default (§9.9); files spell it out */
    }
    for (int i = 0; i < SCATTER_MODE_COUNT; i++) {
        if (strcmp(s, names[i]) == 0) {
            *m = (enum scatter_mode)i;
            return ANML_OK;
        }
    }
    return ex_fail(c, ANML_E_UNSUPPORTED, "unknown mode \"%s\"", s);
}

/* out[o..o+n) = out[o..] (mode) upd[u..u+n). */
static void scatter_apply(struct ex_tensor *out, int64_t o, const struct ex_tensor *upd, int64_t u,
                          int64_t n, enum scatter_mode m) {
    size_t esz = anml__dtype_size(out->dtype);
    if (m == SCATTER_UPDATE) {
        memcpy((uint8_t *)out->data + (size_t)o * esz, (const uint8_t *)upd->data + (size_t)u * esz,
               (size_t)n * esz);
        return;
    }
    if (ex_is_float(out->dtype)) {
        for (int64_t i = 0; i < n; i++) {
            float a = ex_get_f32(out, o + i), b = ex_get_f32(upd, u + i), r;
            switch (m) {
            case SCATTER_ADD: r = a + b; break;
            case SCATTER_SUB: r = a - b; break;
            case SCATTER_MUL: r = a * b; break;
            case SCATTER_DIV: r = a / b; break;
            case SCATTER_MAX: r = a > b ? a : b; break;
            default: r = a < b ? a : b; break;
            }
            ex_set_f32(out, o + i, r);
        }
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        int64_t a = ex_get_i64(out, o + i), b = ex_get_i64(upd, u + i), r;
        switch (m) {
        case SCATTER_ADD: r = (int64_t)((uint64_t)a + (uint64_t)b); break;
        case SCATTER_SUB: r = (int64_t)((uint64_t)a - (uint64_t)b); break;
        case SCATTER_MUL: r = (int64_t)((uint64_t)a * (uint64_t)b); break;
        case SCATTER_DIV: r = b == 0 || (a == INT64_MIN && b == -1) ? 0 : a / b; break;
        case SCATTER_MAX: r = a > b ? a : b; break;
        default: r = a < b ? a : b; break;
        }
        ex_set_i64(out, o + i, r);
    }
}

/* Maps a scatter index into [0, d); -1 = skip, -2 = validation error (already reported). */
static int64_t scatter_index(struct ex_call *c, const struct ex_tensor *ix, int64_t i, int64_t d,
                             bool validate) {
    int64_t v = ex_get_i64(ix, i);
    int64_t r = index_in_range(c, v, d);
    if (r < 0 && validate) {
        ex_fail(c, ANML_E_SHAPE, "index %lld (at %lld in '%s') is out of range for size %lld",
                (long long)v, (long long)i, ix->name, (long long)d);
        return -2;
    }
    return r;
}

/* Checks data/indices/updates and the common parameters; sets out = data's type. */
static enum anml_status scatter_common(struct ex_call *c, struct ex_tensor **data,
                                       struct ex_tensor **ix, struct ex_tensor **upd,
                                       enum scatter_mode *m, bool *validate) {
    enum anml_status st;
    *data = ex_req(c, "data");
    *ix = ex_req(c, "indices");
    *upd = ex_req(c, "updates");
    if (!*data || !*ix || !*upd) {
        return cur_err(c);
    }
    if ((st = need_outs(c, 1)) != ANML_OK || (st = check_data(c, *data, "data")) != ANML_OK ||
        (st = check_data(c, *upd, "updates")) != ANML_OK ||
        (st = check_indices(c, *ix)) != ANML_OK || (st = scatter_mode(c, m)) != ANML_OK ||
        (st = opt_bool(c, "validate_indices", false, validate)) != ANML_OK) {
        return st;
    }
    if ((*upd)->dtype != (*data)->dtype) {
        return ex_fail(c, ANML_E_SHAPE, "updates have dtype %s, data has %s",
                       anml_dtype_name((*upd)->dtype), anml_dtype_name((*data)->dtype));
    }
    return ANML_OK;
}

static enum anml_status shape_mismatch(struct ex_call *c, const struct ex_tensor *u, int32_t rank,
                                       const int64_t *want) {
    char b1[96], b2[96];
    return ex_fail(c, ANML_E_SHAPE, "updates have shape %s, expected %s",
                   shape_str(b1, sizeof b1, u->rank, u->shape),
                   shape_str(b2, sizeof b2, rank, want));
}

/* scatter: updates = data.shape[:axis] + indices.shape + data.shape[axis+1:]. */
static enum anml_status scatter_check(struct ex_call *c, struct ex_tensor **data,
                                      struct ex_tensor **ix, struct ex_tensor **upd,
                                      enum scatter_mode *m, bool *validate, int32_t *axis) {
    int64_t a;
    enum anml_status st;
    if ((st = scatter_common(c, data, ix, upd, m, validate)) != ANML_OK ||
        (st = opt_i64(c, "axis", 0, &a)) != ANML_OK) {
        return st;
    }
    const struct ex_tensor *d = *data, *i = *ix;
    if (!ex_axis(c, a, d->rank, axis)) {
        return cur_err(c);
    }
    int32_t r = d->rank - 1 + i->rank;
    if (r > EX_MAX_DIMS) {
        return ex_fail(c, ANML_E_UNSUPPORTED, "updates rank exceeds %d", EX_MAX_DIMS);
    }
    int64_t want[EX_MAX_DIMS];
    int32_t k = 0;
    for (int32_t j = 0; j < *axis; j++) {
        want[k++] = d->shape[j];
    }
    for (int32_t j = 0; j < i->rank; j++) {
        want[k++] = i->shape[j];
    }
    for (int32_t j = *axis + 1; j < d->rank; j++) {
        want[k++] = d->shape[j];
    }
    if (!same_shape((*upd)->rank, (*upd)->shape, r, want)) {
        return shape_mismatch(c, *upd, r, want);
    }
    return ANML_OK;
}

static enum anml_status infer_scatter(struct ex_call *c) {
    struct ex_tensor *d, *ix, *u;
    enum scatter_mode m;
    bool validate;
    int32_t axis;
    enum anml_status st = scatter_check(c, &d, &ix, &u, &m, &validate, &axis);
    return st != ANML_OK ? st : set_out(c, 0, d->dtype, d->rank, d->shape);
}

static enum anml_status run_scatter(struct ex_call *c) {
    struct ex_tensor *d, *ix, *u, *o = c->outs[0];
    enum scatter_mode m;
    bool validate;
    int32_t axis;
    enum anml_status st = scatter_check(c, &d, &ix, &u, &m, &validate, &axis);
    if (st != ANML_OK) {
        return st;
    }
    copy_all(o, d);
    int64_t outer = prod(d->shape, 0, axis), dax = d->shape[axis];
    int64_t inner = prod(d->shape, axis + 1, d->rank), n = ix->numel;
    for (int64_t j = 0; j < n; j++) {
        int64_t v = scatter_index(c, ix, j, dax, validate);
        if (v == -2) {
            return cur_err(c);
        }
        if (v < 0) {
            continue;
        }
        for (int64_t oi = 0; oi < outer; oi++) {
            scatter_apply(o, (oi * dax + v) * inner, u, (oi * n + j) * inner, inner, m);
        }
    }
    return ANML_OK;
}

/* scatter_along_axis: indices and updates have data's rank and agree with data except along
 * axis; out[p with p_axis = indices[p]] (mode)= updates[p]. */
static enum anml_status saa_check(struct ex_call *c, struct ex_tensor **data, struct ex_tensor **ix,
                                  struct ex_tensor **upd, enum scatter_mode *m, bool *validate,
                                  int32_t *axis) {
    int64_t a;
    enum anml_status st;
    if ((st = scatter_common(c, data, ix, upd, m, validate)) != ANML_OK ||
        (st = opt_i64(c, "axis", 0, &a)) != ANML_OK) {
        return st;
    }
    const struct ex_tensor *d = *data, *i = *ix;
    if (!ex_axis(c, a, d->rank, axis)) {
        return cur_err(c);
    }
    bool ok = i->rank == d->rank;
    for (int32_t j = 0; ok && j < d->rank; j++) {
        ok = j == *axis || i->shape[j] == d->shape[j];
    }
    if (!ok) {
        char b1[96], b2[96];
        return ex_fail(c, ANML_E_SHAPE, "indices shape %s must match data %s except along axis %d",
                       shape_str(b1, sizeof b1, i->rank, i->shape),
                       shape_str(b2, sizeof b2, d->rank, d->shape), (int)*axis);
    }
    if (!same_shape((*upd)->rank, (*upd)->shape, i->rank, i->shape)) {
        return shape_mismatch(c, *upd, i->rank, i->shape);
    }
    return ANML_OK;
}

static enum anml_status infer_scatter_along_axis(struct ex_call *c) {
    struct ex_tensor *d, *ix, *u;
    enum scatter_mode m;
    bool validate;
    int32_t axis;
    enum anml_status st = saa_check(c, &d, &ix, &u, &m, &validate, &axis);
    return st != ANML_OK ? st : set_out(c, 0, d->dtype, d->rank, d->shape);
}

static enum anml_status run_scatter_along_axis(struct ex_call *c) {
    struct ex_tensor *d, *ix, *u, *o = c->outs[0];
    enum scatter_mode m;
    bool validate;
    int32_t axis;
    enum anml_status st = saa_check(c, &d, &ix, &u, &m, &validate, &axis);
    if (st != ANML_OK) {
        return st;
    }
    copy_all(o, d);
    int64_t outer = prod(d->shape, 0, axis), dax = d->shape[axis], nax = ix->shape[axis];
    int64_t inner = prod(d->shape, axis + 1, d->rank);
    for (int64_t oi = 0; oi < outer; oi++) {
        for (int64_t j = 0; j < nax; j++) {
            for (int64_t in = 0; in < inner; in++) {
                int64_t p = (oi * nax + j) * inner + in;
                int64_t v = scatter_index(c, ix, p, dax, validate);
                if (v == -2) {
                    return cur_err(c);
                }
                if (v >= 0) {
                    scatter_apply(o, (oi * dax + v) * inner + in, u, p, 1, m);
                }
            }
        }
    }
    return ANML_OK;
}

/* scatter_nd: indices [..., k]; updates = indices.shape[:-1] + data.shape[k:]. */
static enum anml_status snd_check(struct ex_call *c, struct ex_tensor **data, struct ex_tensor **ix,
                                  struct ex_tensor **upd, enum scatter_mode *m, bool *validate,
                                  int32_t *k) {
    enum anml_status st = scatter_common(c, data, ix, upd, m, validate);
    if (st != ANML_OK) {
        return st;
    }
    const struct ex_tensor *d = *data, *i = *ix;
    if (i->rank < 1 || i->shape[i->rank - 1] < 1 || i->shape[i->rank - 1] > d->rank) {
        return ex_fail(c, ANML_E_SHAPE, "indices' last dim must be in [1, rank(data) = %d]",
                       (int)d->rank);
    }
    *k = (int32_t)i->shape[i->rank - 1];
    int32_t r = i->rank - 1 + d->rank - *k;
    if (r > EX_MAX_DIMS) {
        return ex_fail(c, ANML_E_UNSUPPORTED, "updates rank exceeds %d", EX_MAX_DIMS);
    }
    int64_t want[EX_MAX_DIMS];
    int32_t n = 0;
    for (int32_t j = 0; j < i->rank - 1; j++) {
        want[n++] = i->shape[j];
    }
    for (int32_t j = *k; j < d->rank; j++) {
        want[n++] = d->shape[j];
    }
    if (!same_shape((*upd)->rank, (*upd)->shape, r, want)) {
        return shape_mismatch(c, *upd, r, want);
    }
    return ANML_OK;
}

static enum anml_status infer_scatter_nd(struct ex_call *c) {
    struct ex_tensor *d, *ix, *u;
    enum scatter_mode m;
    bool validate;
    int32_t k;
    enum anml_status st = snd_check(c, &d, &ix, &u, &m, &validate, &k);
    return st != ANML_OK ? st : set_out(c, 0, d->dtype, d->rank, d->shape);
}

static enum anml_status run_scatter_nd(struct ex_call *c) {
    struct ex_tensor *d, *ix, *u, *o = c->outs[0];
    enum scatter_mode m;
    bool validate;
    int32_t k;
    enum anml_status st = snd_check(c, &d, &ix, &u, &m, &validate, &k);
    if (st != ANML_OK) {
        return st;
    }
    copy_all(o, d);
    int64_t ds[EX_MAX_DIMS];
    strides_of(d->rank, d->shape, ds);
    int64_t nq = prod(ix->shape, 0, ix->rank - 1), inner = prod(d->shape, k, d->rank);
    for (int64_t q = 0; q < nq; q++) {
        int64_t dst = 0;
        bool skip = false;
        for (int32_t t = 0; t < k; t++) {
            int64_t v = scatter_index(c, ix, q * k + t, d->shape[t], validate);
            if (v == -2) {
                return cur_err(c);
            }
            skip = skip || v < 0;
            dst += v * ds[t];
        }
        if (!skip) {
            scatter_apply(o, dst, u, q * inner, inner, m);
        }
    }
    return ANML_OK;
}

/* ---- the table ---- */

const struct ex_opdef anml__ops_shape[] = {
    { "reshape", infer_reshape, run_reshape, NULL },
    { "reshape_like", infer_reshape_like, run_copy, NULL },
    { "expand_dims", infer_expand_dims, run_copy, NULL },
    { "squeeze", infer_squeeze, run_copy, NULL },
    { "transpose", infer_transpose, run_transpose, NULL },
    { "concat", infer_concat, run_concat, NULL },
    { "split", infer_split, run_split, NULL },
    { "tile", infer_tile, run_tile, NULL },
    { "sliding_windows", infer_sliding_windows, run_sliding_windows, NULL },
    { "slice_by_index", infer_slice_by_index, run_slice_by_index, NULL },
    { "slice_by_size", infer_slice_by_size, run_slice_by_size, NULL },
    { "slice_update", infer_slice_update, run_slice_update, NULL },
    { "gather", infer_gather, run_gather, "x" },
    { "gather_along_axis", infer_gather_along_axis, run_gather_along_axis, NULL },
    { "gather_nd", infer_gather_nd, run_gather_nd, NULL },
    { "scatter", infer_scatter, run_scatter, NULL },
    { "scatter_along_axis", infer_scatter_along_axis, run_scatter_along_axis, NULL },
    { "scatter_nd", infer_scatter_nd, run_scatter_nd, NULL },
    { NULL, NULL, NULL, NULL },
};
