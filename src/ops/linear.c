/*
 * linear.c -- the linear-algebra op family of the MIL executor (coreml-format.md §9.7, §9.12):
 * conv (1-3 spatial dims, strides, dilations, padding modes, groups, bias), conv_transpose,
 * linear, matmul (transposes, rank-1 promotion, batch broadcasting), einsum (the two supported
 * equations) and scaled_dot_product_attention.
 *
 * The hot path of ANEMLL models is conv 1x1 (and linear) against a constant weight that is either
 * dense fp16 or a palettized LUT weight kept in its compressed form. Weights are therefore only
 * ever read one output-channel row at a time: the row is decoded (LUT) or converted (fp16) to fp32
 * in scratch, then dotted with every activation column, so a weight is decoded once per run
 * whatever the number of tokens, and never exists as a full fp32 copy. Activations are small by
 * comparison and are converted to fp32 (transposed where that makes the dots contiguous) once per
 * run. All sums accumulate in fp32 and each output element is rounded once to the output dtype.
 *
 * The arithmetic is done by the dispatched kernels (kernels.h): a fused decode + dot per weight
 * row for one token, a decoded panel of rows times all tokens (a GEMM) otherwise. conv 1x1,
 * linear and matmul split their output rows statically across the context's threads; every
 * output element is computed by exactly one thread in a fixed order, so the thread count never
 * changes a result.
 */
#include <math.h>
#include <string.h>

#include "coreml/constexpr.h"
#include "exec/exec.h"
#include "kernels/kernels.h"

/* Below this many multiply-adds an op runs on the calling thread alone (handing work to the pool
 * costs about a microsecond). */
#define PAR_MIN_MACS 32768
/* Weight rows decoded per panel on the GEMM path (a multiple of 8, the row split granule). */
#define PANEL_ROWS 16
/* Activation rows converted per block by matmul's streaming paths. */
#define MM_YBLOCK 64

/* ---- element access helpers ---- */

/* Elements [first, first + n) of t (row-major) as fp32: decoded from the palette for a compressed
 * constant, converted otherwise (fp16 by the kernels' converter, which may quiet a signaling
 * NaN; every value loaded here feeds arithmetic, which would quiet it anyway). */
static void load_f32(const struct ex_tensor *t, int64_t first, int64_t n, float *dst) {
    if (n <= 0) {
        return;
    } else if (t->lut) {
        anml__lut_decode_f32(t->lut, first, n, dst);
    } else if (t->dtype == ANML_DTYPE_F16) {
        anml__kernels()->cvt_f16((const uint16_t *)t->data + first, n, dst);
    } else {
        ex_to_f32(t, first, n, dst);
    }
}

/* Stores n fp32 values into dst from element off on, rounded once to its dtype (fp16 with the
 * kernels' converter, which is bit-identical to the core one). */
static void store_f32(struct ex_tensor *dst, int64_t off, int64_t n, const float *src) {
    if (dst->dtype == ANML_DTYPE_F16) {
        anml__kernels()->cvt_f32_f16(src, n, (uint16_t *)dst->data + off);
    } else {
        ex_from_f32(dst, off, n, src);
    }
}

/* dst[j * dld + i] = t[off + i * ld + j] in fp32 (i < rows, j < cols), using `tmp` (cols
 * floats) for one source row at a time so that the dtype conversion stays out of the scatter
 * loop. */
static void load_transposed_ld_f32(const struct ex_tensor *t, int64_t off, int64_t rows,
                                   int64_t cols, int64_t ld, float *dst, int64_t dld, float *tmp) {
    for (int64_t i = 0; i < rows; i++) {
        load_f32(t, off + i * ld, cols, tmp);
        for (int64_t j = 0; j < cols; j++) {
            dst[j * dld + i] = tmp[j];
        }
    }
}

static void load_transposed_f32(const struct ex_tensor *t, int64_t off, int64_t rows, int64_t cols,
                                float *dst, float *tmp) {
    load_transposed_ld_f32(t, off, rows, cols, cols, dst, rows, tmp);
}

/* ---- threads ---- */

/* Rows [*r0, *r1) of n for thread ith of nth, split in blocks of `granule` rows. */
static void split_rows(int64_t n, int64_t granule, int32_t ith, int32_t nth, int64_t *r0,
                       int64_t *r1) {
    int64_t blocks = (n + granule - 1) / granule;
    int64_t b0 = blocks * ith / nth, b1 = blocks * (ith + 1) / nth;
    *r0 = b0 * granule < n ? b0 * granule : n;
    *r1 = b1 * granule < n ? b1 * granule : n;
}

/* The pool for an op of `macs` multiply-adds: none for small ones. */
static struct anml_threadpool *pool_for(const struct ex_call *c, double macs) {
    return macs >= (double)PAR_MIN_MACS ? c->pool : NULL;
}

/* Scratch sizes in floats from shapes that infer has not bounded yet: a product or sum that
 * overflows (or a negative operand) gives -1, which carve_f32 reports as an overflow. */
static int64_t smul(int64_t a, int64_t b) {
    int64_t r;
    return a < 0 || b < 0 || __builtin_mul_overflow(a, b, &r) ? -1 : r;
}

static int64_t sadd(int64_t a, int64_t b) {
    int64_t r;
    return a < 0 || b < 0 || __builtin_add_overflow(a, b, &r) ? -1 : r;
}

/* Row stride (floats) of fp32 rows of k elements that the GEMM streams several at a time: a
 * multiple of 16 (64 bytes) that is not a multiple of 1024 (4 KiB), so that the rows fall in
 * different L1 sets (k = 1024 runs about 20% faster). -1 on overflow. */
static int64_t padded_ld(int64_t k) {
    if (k < 0 || k > INT64_MAX - 32) {
        return -1;
    }
    int64_t ld = (k + 15) / 16 * 16;
    return ld % 1024 == 0 ? ld + 16 : ld;
}

/* Floats per thread for a per-thread scratch of n floats (64-byte multiples). */
static int64_t per_thread(int64_t n) {
    return n < 0 || n > INT64_MAX - 15 ? -1 : (n + 15) / 16 * 16;
}

/* ---- weight rows ---- */

/* The kernels' view of a constant weight of `rows` rows of k elements (conv [Cout, Cin/groups,
 * 1, 1], linear [Dout, Din]), when its format has kernels: dense fp16, or a LUT weight with fp16
 * tables of 16, 64 or 256 entries, scalar entries (vector_size 1) and one table per group of
 * whole rows (the ANEMLL layout). Anything else is decoded row by row with load_f32. */
static bool weight_rows(const struct ex_tensor *w, int64_t rows, int64_t k, struct anml_wrows *wr) {
    memset(wr, 0, sizeof *wr);
    wr->k = k;
    const struct anml_lut_weight *l = w->lut;
    if (!l) {
        if (w->dtype != ANML_DTYPE_F16 || !w->data || w->numel != rows * k) {
            return false;
        }
        wr->fmt = ANML_WFMT_F16;
        wr->f16 = w->data;
        wr->ld = k;
        return true;
    }
    int bits = l->index_bits;
    if (l->lut_dtype != ANML_DTYPE_F16 || l->vector_size != 1 || l->numel != rows * k ||
        l->shape[0] != rows || (bits != 4 && bits != 6 && bits != 8) ||
        (!l->indices_packed && bits != 8) || l->n_entries != ((int64_t)1 << bits) ||
        l->group[0] < 1) {
        return false;
    }
    for (int32_t d = 1; d < l->rank; d++) {
        if (l->lut_shape[d] != 1) {
            return false;
        }
    }
    wr->fmt = ANML_WFMT_LUT;
    wr->idx = l->indices;
    wr->bits = bits;
    wr->lut = l->lut;
    wr->rows_per_table = l->group[0];
    return true;
}

/* A constant weight matrix and how the kernels read it. */
struct wjob {
    const struct anml_kernels *kt;
    const struct ex_tensor *w;
    struct anml_wrows wr;
    bool fast; /* wr is valid */
    int64_t k;
};

static void wjob_init(struct wjob *j, const struct ex_tensor *w, int64_t rows, int64_t k) {
    j->kt = anml__kernels();
    j->w = w;
    j->k = k;
    j->fast = weight_rows(w, rows, k, &j->wr);
}

/* y[(r - r0) * rs + jx * cs] = W[r] . x[jx * ldx ..] for r in [r0, r1) (at most PANEL_ROWS rows)
 * and jx < n. One activation column: a fused decode + dot per row; more: the rows decoded once
 * into `panel` (PANEL_ROWS rows of stride padded_ld(k)), then a GEMM against every column. */
static void wjob_rows(const struct wjob *j, int64_t r0, int64_t r1, const float *x, int64_t ldx,
                      int64_t n, float *panel, float *y, int64_t rs, int64_t cs) {
    int64_t k = j->k, ldp = padded_ld(k);
    if (n == 1 && rs == 1 && j->fast) {
        anml__kern_matvec(j->kt, &j->wr)(&j->wr, r0, r1, x, y);
        return;
    }
    const float *a = panel;
    if (j->fast) {
        anml__kern_decode(j->kt, &j->wr)(&j->wr, r0, r1, panel, ldp);
    } else if (j->w->dtype == ANML_DTYPE_F32 && j->w->data) {
        a = (const float *)j->w->data + r0 * k;
        ldp = k;
    } else {
        for (int64_t r = r0; r < r1; r++) {
            load_f32(j->w, r * k, k, panel + (r - r0) * ldp);
        }
    }
    j->kt->gemm_f32(a, ldp, r1 - r0, x, ldx, n, k, y, rs, cs);
}

static bool is_const(const struct ex_tensor *t) {
    return t->kind == EX_VALUE_CONST;
}

/* A float parameter (weight, bias) next to a float activation x: before iOS17 both share one
 * dtype; from iOS17 on a constant parameter may use the other float dtype. */
static bool check_float_param(struct ex_call *c, const struct ex_tensor *x,
                              const struct ex_tensor *p, const char *what) {
    if (!ex_is_float(p->dtype)) {
        ex_fail(c, ANML_E_SHAPE, "%s '%s' must be fp16 or fp32, got %s", what, p->name,
                anml_dtype_name(p->dtype));
        return false;
    }
    if (p->dtype != x->dtype && (c->opset < 7 || !is_const(p))) {
        ex_fail(c, ANML_E_SHAPE,
                "%s '%s' is %s but x is %s (a different dtype needs iOS17 and a constant)", what,
                p->name, anml_dtype_name(p->dtype), anml_dtype_name(x->dtype));
        return false;
    }
    return true;
}

/* An optional int vector parameter of exactly `want` entries; `dflt` fills it when absent. */
static bool read_ints(struct ex_call *c, const char *name, int64_t *out, int32_t want,
                      int64_t dflt) {
    if (!ex_in(c, name)) {
        for (int32_t i = 0; i < want; i++) {
            out[i] = dflt;
        }
        return true;
    }
    int64_t tmp[2 * EX_MAX_DIMS];
    int32_t n = 0;
    if (!ex_const_i64s(c, name, tmp, 2 * EX_MAX_DIMS, &n)) {
        return false;
    }
    if (n != want) {
        ex_fail(c, ANML_E_SHAPE, "'%s' must have %d entries, got %d", name, (int)want, (int)n);
        return false;
    }
    memcpy(out, tmp, (size_t)want * sizeof(int64_t));
    return true;
}

/* An optional bool parameter (default false). */
static bool read_bool(struct ex_call *c, const char *name, bool *out) {
    *out = false;
    if (!ex_in(c, name)) {
        return true;
    }
    return ex_const_bool(c, name, out);
}

/* A bias: absent, or a constant vector of n floats. */
static bool check_bias(struct ex_call *c, const struct ex_tensor *x, const struct ex_tensor *b,
                       int64_t n) {
    if (!b) {
        return true;
    }
    if (b->rank > 1 || b->numel != n) {
        ex_fail(c, ANML_E_SHAPE, "bias '%s' must be a vector of %lld values, got %lld", b->name,
                (long long)n, (long long)b->numel);
        return false;
    }
    if (!b->data) {
        ex_fail(c, ANML_E_UNSUPPORTED, "bias '%s' must be dense", b->name);
        return false;
    }
    return check_float_param(c, x, b, "bias");
}

/* Linear index into an operand whose (right-aligned) batch shape broadcasts to oshape, for the
 * output batch element with linear index oi. */
static int64_t bcast_index(const int64_t *oshape, int32_t orank, int64_t oi, const int64_t *shape,
                           int32_t rank) {
    int64_t idx = 0, stride = 1;
    for (int32_t d = orank - 1; d >= 0; d--) {
        int64_t coord = oi % oshape[d];
        oi /= oshape[d];
        int32_t sd = d - (orank - rank);
        if (sd >= 0) {
            if (shape[sd] != 1) {
                idx += coord * stride;
            }
            stride *= shape[sd];
        }
    }
    return idx;
}

/* ---- conv ---- */

/* Geometry of a conv, spatial dims padded to three (leading dims of size 1) so that one loop
 * nest serves 1-D, 2-D and 3-D. */
struct conv_geom {
    int64_t n, cin, cout, groups, cin_g, cout_g;
    int64_t in[3], k[3], out[3], stride[3], dil[3], pad_before[3];
    int64_t in_sp, out_sp, k_sp; /* products over the spatial dims */
    bool pointwise;              /* 1x1 kernel, stride 1, no padding: a plain GEMM */
};

/* Geometry of conv (transpose false; weight [Cout, Cin/groups, *K]) or conv_transpose (weight
 * [Cin, Cout/groups, *K]; optional output_shape). */
static enum anml_status conv_geometry(struct ex_call *c, struct conv_geom *g, bool transpose) {
    const struct ex_tensor *x = ex_req(c, "x");
    const struct ex_tensor *w = x ? ex_req(c, "weight") : NULL;
    if (!w) {
        return ANML_E_FORMAT;
    }
    if (!ex_is_float(x->dtype)) {
        return ex_fail(c, ANML_E_SHAPE, "x '%s' must be fp16 or fp32, got %s", x->name,
                       anml_dtype_name(x->dtype));
    }
    if (x->rank < 3 || x->rank > 5) {
        return ex_fail(c, ANML_E_SHAPE, "x '%s' must have rank 3 to 5 ([N, Cin, *D]), got %d",
                       x->name, (int)x->rank);
    }
    if (w->rank != x->rank) {
        return ex_fail(c, ANML_E_SHAPE, "weight '%s' has rank %d but x has rank %d", w->name,
                       (int)w->rank, (int)x->rank);
    }
    if (!check_float_param(c, x, w, "weight")) {
        return ANML_E_SHAPE;
    }
    int32_t ns = x->rank - 2;
    memset(g, 0, sizeof *g);
    g->groups = 1;
    if (ex_in(c, "groups") && !ex_const_i64(c, "groups", &g->groups)) {
        return ANML_E_SHAPE;
    }
    g->n = x->shape[0];
    g->cin = x->shape[1];
    if (g->groups < 1 || g->groups > INT32_MAX || g->cin % g->groups != 0) {
        return ex_fail(c, ANML_E_SHAPE, "groups %lld must be >= 1 and divide Cin %lld",
                       (long long)g->groups, (long long)g->cin);
    }
    g->cin_g = g->cin / g->groups;
    if (transpose) {
        if (w->shape[0] != g->cin) {
            return ex_fail(c, ANML_E_SHAPE,
                           "weight '%s' has %lld input channels, x has %lld (weight is [Cin, "
                           "Cout/groups, *K])",
                           w->name, (long long)w->shape[0], (long long)g->cin);
        }
        g->cout_g = w->shape[1];
        g->cout = g->cout_g * g->groups;
    } else {
        g->cout = w->shape[0];
        if (g->cout % g->groups != 0) {
            return ex_fail(c, ANML_E_SHAPE, "groups %lld does not divide Cout %lld",
                           (long long)g->groups, (long long)g->cout);
        }
        g->cout_g = g->cout / g->groups;
        if (w->shape[1] != g->cin_g) {
            return ex_fail(c, ANML_E_SHAPE,
                           "weight '%s' has %lld input channels per group, expected Cin/groups "
                           "= %lld",
                           w->name, (long long)w->shape[1], (long long)g->cin_g);
        }
    }
    int64_t strides[3], dils[3], pads[6] = { 0 }, oshape[5] = { 0 };
    if (!read_ints(c, "strides", strides, ns, 1) || !read_ints(c, "dilations", dils, ns, 1)) {
        return ANML_E_SHAPE;
    }
    const char *pad_type = "valid";
    if (ex_in(c, "pad_type")) {
        pad_type = ex_const_str(c, "pad_type");
        if (!pad_type) {
            return ANML_E_SHAPE;
        }
    }
    bool custom = strcmp(pad_type, "custom") == 0;
    bool same = strcmp(pad_type, "same") == 0;
    bool same_lower = strcmp(pad_type, "same_lower") == 0;
    if (!custom && !same && !same_lower && strcmp(pad_type, "valid") != 0) {
        return ex_fail(c, ANML_E_UNSUPPORTED,
                       "pad_type \"%s\" is not one of valid, same, same_lower, custom", pad_type);
    }
    if (same_lower && c->opset < 6) {
        return ex_fail(c, ANML_E_UNSUPPORTED, "pad_type \"same_lower\" needs iOS16 or later");
    }
    if (custom && !read_ints(c, "pad", pads, 2 * ns, 0)) {
        return ANML_E_SHAPE;
    }
    /* conv_transpose's output_shape: the full [N, Cout, *D] or just the spatial dims */
    bool have_oshape = transpose && ex_in(c, "output_shape");
    if (have_oshape) {
        int32_t n = 0;
        if (!ex_const_i64s(c, "output_shape", oshape, 5, &n)) {
            return ANML_E_SHAPE;
        }
        if (n == ns + 2) {
            if (oshape[0] != g->n || oshape[1] != g->cout) {
                return ex_fail(c, ANML_E_SHAPE,
                               "output_shape must start with [N, Cout] = [%lld, "
                               "%lld]",
                               (long long)g->n, (long long)g->cout);
            }
            memmove(oshape, oshape + 2, (size_t)ns * sizeof(int64_t));
        } else if (n != ns) {
            return ex_fail(c, ANML_E_SHAPE, "output_shape must have %d or %d entries, got %d",
                           (int)ns, (int)ns + 2, (int)n);
        }
    }
    for (int32_t d = 0; d < 3; d++) {
        g->in[d] = g->k[d] = g->out[d] = g->stride[d] = g->dil[d] = 1;
    }
    for (int32_t i = 0; i < ns; i++) {
        int32_t d = 3 - ns + i;
        g->in[d] = x->shape[2 + i];
        g->k[d] = w->shape[2 + i];
        g->stride[d] = strides[i];
        g->dil[d] = dils[i];
        if (strides[i] < 1 || dils[i] < 1 || pads[2 * i] < 0 || pads[2 * i + 1] < 0) {
            return ex_fail(c, ANML_E_SHAPE,
                           "spatial dim %d: strides and dilations must be >= 1 and pads >= 0", i);
        }
        if (g->k[d] < 1 || g->in[d] < 1 || g->k[d] > INT32_MAX || g->in[d] > INT32_MAX ||
            strides[i] > INT32_MAX || dils[i] > INT32_MAX || pads[2 * i] > INT32_MAX ||
            pads[2 * i + 1] > INT32_MAX || oshape[i] < 0 || oshape[i] > INT32_MAX) {
            return ex_fail(c, ANML_E_SHAPE, "spatial dim %d: bad sizes", i);
        }
        int64_t keff = (g->k[d] - 1) * g->dil[d] + 1;
        int64_t s = g->stride[d], din = g->in[d];
        int64_t before = pads[2 * i], after = pads[2 * i + 1];
        if (transpose) {
            /* the full (unpadded) transposed output is (D - 1) * s + keff long; padding crops it */
            int64_t full = (din - 1) * s + keff, out;
            if (have_oshape) {
                out = oshape[i];
            } else if (same || same_lower) {
                out = din * s;
            } else {
                out = full - before - after;
            }
            if (same || same_lower) {
                int64_t total = full - out > 0 ? full - out : 0;
                before = same ? total / 2 : total - total / 2;
            }
            if (out < 1) {
                return ex_fail(c, ANML_E_SHAPE, "spatial dim %d: output size %lld is not positive",
                               i, (long long)out);
            }
            g->out[d] = out;
            g->pad_before[d] = before;
            continue;
        }
        if (same || same_lower) {
            int64_t total = s * ((din + s - 1) / s) - din + keff - s;
            if (total < 0) {
                total = 0;
            }
            before = same ? total / 2 : total - total / 2;
            after = total - before;
        }
        int64_t padded = din + before + after;
        if (padded < keff) {
            return ex_fail(c, ANML_E_SHAPE,
                           "spatial dim %d: effective kernel %lld is larger than the padded "
                           "input %lld",
                           i, (long long)keff, (long long)padded);
        }
        g->out[d] = (padded - keff) / s + 1;
        g->pad_before[d] = before;
    }
    g->in_sp = g->in[0] * g->in[1] * g->in[2];
    g->out_sp = g->out[0] * g->out[1] * g->out[2];
    g->k_sp = g->k[0] * g->k[1] * g->k[2];
    g->pointwise = !transpose && g->k_sp == 1 && g->out_sp == g->in_sp;
    for (int32_t d = 0; d < 3; d++) {
        g->pointwise = g->pointwise && g->stride[d] == 1 && g->pad_before[d] == 0;
    }
    return ANML_OK;
}

/* Scratch of a conv: x in fp32 (transposed to [N, D, Cin] for the pointwise path), one weight
 * row, one output row; for the pointwise path without groups, per thread a weight panel
 * [PANEL_ROWS, Cin] and its outputs [PANEL_ROWS, D] (*thr, n_threads blocks of
 * pw_thread_floats). */
static bool conv_threaded(const struct conv_geom *g) {
    return g->pointwise && g->groups == 1;
}

static int64_t pw_thread_floats(const struct conv_geom *g) {
    return per_thread(sadd(smul(PANEL_ROWS, padded_ld(g->cin)), smul(PANEL_ROWS, g->out_sp)));
}

static void conv_carve(struct ex_carve *cv, const struct conv_geom *g, int32_t n_threads,
                       float **xf, float **wrow, float **orow, float **thr) {
    /* the threaded path keeps xt rows at a padded stride */
    *xf = ex_carve_f32(cv, conv_threaded(g) ? smul(smul(g->n, g->in_sp), padded_ld(g->cin))
                                            : g->n * g->cin * g->in_sp);
    *wrow = ex_carve_f32(cv, g->cin_g * g->k_sp);
    *orow = ex_carve_f32(cv, g->out_sp > g->in_sp ? g->out_sp : g->in_sp);
    *thr = conv_threaded(g) ? ex_carve_f32(cv, smul(n_threads, pw_thread_floats(g))) : NULL;
}

static enum anml_status conv_infer(struct ex_call *c, bool transpose) {
    struct conv_geom g;
    enum anml_status st = conv_geometry(c, &g, transpose);
    if (st != ANML_OK) {
        return st;
    }
    const struct ex_tensor *x = ex_in(c, "x");
    if (!check_bias(c, x, ex_in(c, "bias"), g.cout)) {
        return ANML_E_SHAPE;
    }
    int64_t shape[5] = { g.n, g.cout };
    int32_t ns = x->rank - 2;
    for (int32_t i = 0; i < ns; i++) {
        shape[2 + i] = g.out[3 - ns + i];
    }
    int64_t numel;
    if (!anml__shape_numel(shape, x->rank, &numel)) {
        return ex_fail(c, ANML_E_SHAPE, "output shape overflows");
    }
    ex_set_shape(c->outs[0], x->dtype, x->rank, shape);
    struct ex_carve cv = { 0 };
    float *xf, *wrow, *orow, *thr;
    conv_carve(&cv, &g, c->n_threads, &xf, &wrow, &orow, &thr);
    return ex_carve_request(c, &cv);
}

static enum anml_status infer_conv(struct ex_call *c) {
    return conv_infer(c, false);
}

static enum anml_status infer_conv_transpose(struct ex_call *c) {
    return conv_infer(c, true);
}

/* One output row (all output positions of channel o, batch n) of a general conv. */
static void conv_direct_row(const struct conv_geom *g, const float *xn, const float *wrow,
                            int64_t grp, float *orow) {
    for (int64_t od = 0; od < g->out[0]; od++) {
        for (int64_t oh = 0; oh < g->out[1]; oh++) {
            for (int64_t ow = 0; ow < g->out[2]; ow++) {
                float acc = 0.0f;
                for (int64_t ci = 0; ci < g->cin_g; ci++) {
                    const float *xc = xn + (grp * g->cin_g + ci) * g->in_sp;
                    const float *wc = wrow + ci * g->k_sp;
                    for (int64_t kd = 0; kd < g->k[0]; kd++) {
                        int64_t id = od * g->stride[0] + kd * g->dil[0] - g->pad_before[0];
                        if (id < 0 || id >= g->in[0]) {
                            continue;
                        }
                        for (int64_t kh = 0; kh < g->k[1]; kh++) {
                            int64_t ih = oh * g->stride[1] + kh * g->dil[1] - g->pad_before[1];
                            if (ih < 0 || ih >= g->in[1]) {
                                continue;
                            }
                            const float *xrow = xc + (id * g->in[1] + ih) * g->in[2];
                            const float *wk = wc + (kd * g->k[1] + kh) * g->k[2];
                            for (int64_t kw = 0; kw < g->k[2]; kw++) {
                                int64_t iw = ow * g->stride[2] + kw * g->dil[2] - g->pad_before[2];
                                if (iw >= 0 && iw < g->in[2]) {
                                    acc += wk[kw] * xrow[iw];
                                }
                            }
                        }
                    }
                }
                orow[(od * g->out[1] + oh) * g->out[2] + ow] = acc;
            }
        }
    }
}

/* The pointwise conv without groups: out[n, o, p] = bias[o] + W[o] . xt[n][p], output channels
 * split across threads. */
struct pw_task {
    const struct conv_geom *g;
    struct wjob wj;
    const struct ex_tensor *b;
    struct ex_tensor *out;
    const float *xt; /* [N][D][Cin], rows padded_ld(Cin) apart */
    float *thr;      /* per-thread panels */
};

static void pw_run(void *arg, int32_t ith, int32_t nth) {
    const struct pw_task *t = arg;
    const struct conv_geom *g = t->g;
    int64_t r0, r1, T = g->out_sp;
    split_rows(g->cout, 8, ith, nth, &r0, &r1);
    float *panel = t->thr + ith * pw_thread_floats(g);
    int64_t ldx = padded_ld(g->cin);
    float *ybuf = panel + PANEL_ROWS * ldx;
    for (int64_t o = r0; o < r1; o += PANEL_ROWS) {
        int64_t rows = r1 - o < PANEL_ROWS ? r1 - o : PANEL_ROWS;
        for (int64_t n = 0; n < g->n; n++) {
            wjob_rows(&t->wj, o, o + rows, t->xt + n * T * ldx, ldx, T, panel, ybuf, T, 1);
            for (int64_t r = 0; r < rows; r++) {
                float *yr = ybuf + r * T;
                float bias = t->b ? ex_get_f32(t->b, o + r) : 0.0f; /* (+0 turns -0 into +0) */
                for (int64_t j = 0; j < T; j++) {
                    yr[j] += bias;
                }
            }
            /* the panel's output rows are contiguous in out ([N, Cout, D]) */
            store_f32(t->out, (n * g->cout + o) * T, rows * T, ybuf);
        }
    }
}

static enum anml_status run_conv(struct ex_call *c) {
    struct conv_geom g;
    enum anml_status st = conv_geometry(c, &g, false);
    if (st != ANML_OK) {
        return st;
    }
    const struct ex_tensor *x = ex_in(c, "x");
    const struct ex_tensor *w = ex_in(c, "weight");
    const struct ex_tensor *b = ex_in(c, "bias");
    struct ex_tensor *out = c->outs[0];
    struct ex_carve cv = ex_carve_run(c);
    float *xf, *wrow, *orow, *thr;
    conv_carve(&cv, &g, c->n_threads, &xf, &wrow, &orow, &thr);
    ANML_ASSERT(cv.used <= c->scratch_size);

    if (g.pointwise) {
        /* xt[n][p][ci]: each output position's input channels contiguous for the dots, rows
         * padded_ld(Cin) apart on the threaded path */
        int64_t ldx = conv_threaded(&g) ? padded_ld(g.cin) : g.cin;
        for (int64_t n = 0; n < g.n; n++) {
            if (g.in_sp == 1) {
                load_f32(x, n * g.cin, g.cin, xf + n * ldx);
            } else {
                load_transposed_ld_f32(x, n * g.cin * g.in_sp, g.cin, g.in_sp, g.in_sp,
                                       xf + n * g.in_sp * ldx, ldx, orow);
            }
        }
        if (conv_threaded(&g)) {
            struct pw_task t = { .g = &g, .b = b, .out = out, .xt = xf, .thr = thr };
            wjob_init(&t.wj, w, g.cout, g.cin);
            double macs = (double)g.n * (double)g.cout * (double)g.cin * (double)g.out_sp;
            anml__threadpool_run(pool_for(c, macs), pw_run, &t);
            return ANML_OK;
        }
    } else {
        ex_to_f32(x, 0, x->numel, xf);
    }
    int64_t wlen = g.cin_g * g.k_sp;
    for (int64_t o = 0; o < g.cout; o++) {
        int64_t grp = o / g.cout_g;
        load_f32(w, o * wlen, wlen, wrow);
        float bias = b ? ex_get_f32(b, o) : 0.0f;
        for (int64_t n = 0; n < g.n; n++) {
            if (g.pointwise) {
                anml__ref_dot_rows_f32(wrow, xf + n * g.in_sp * g.cin + grp * g.cin_g, g.cin_g,
                                       g.cin, g.in_sp, orow, 1);
            } else {
                conv_direct_row(&g, xf + n * g.cin * g.in_sp, wrow, grp, orow);
            }
            for (int64_t j = 0; j < g.out_sp; j++) {
                orow[j] += bias;
            }
            store_f32(out, (n * g.cout + o) * g.out_sp, g.out_sp, orow);
        }
    }
    return ANML_OK;
}

/* One output row of a conv_transpose: out[j] = sum_{ic, k} w[ic, k] x[ic, i] over the input
 * positions i with i * s + k * d - pad_before = j (a gather over the scatter definition). */
static void convt_direct_row(const struct conv_geom *g, const float *xn, const float *wrow,
                             int64_t grp, float *orow) {
    for (int64_t od = 0; od < g->out[0]; od++) {
        for (int64_t oh = 0; oh < g->out[1]; oh++) {
            for (int64_t ow = 0; ow < g->out[2]; ow++) {
                float acc = 0.0f;
                for (int64_t ci = 0; ci < g->cin_g; ci++) {
                    const float *xc = xn + (grp * g->cin_g + ci) * g->in_sp;
                    const float *wc = wrow + ci * g->k_sp;
                    for (int64_t kd = 0; kd < g->k[0]; kd++) {
                        int64_t td = od + g->pad_before[0] - kd * g->dil[0];
                        int64_t id = td / g->stride[0];
                        if (td < 0 || td % g->stride[0] != 0 || id >= g->in[0]) {
                            continue;
                        }
                        for (int64_t kh = 0; kh < g->k[1]; kh++) {
                            int64_t th = oh + g->pad_before[1] - kh * g->dil[1];
                            int64_t ih = th / g->stride[1];
                            if (th < 0 || th % g->stride[1] != 0 || ih >= g->in[1]) {
                                continue;
                            }
                            const float *xrow = xc + (id * g->in[1] + ih) * g->in[2];
                            const float *wk = wc + (kd * g->k[1] + kh) * g->k[2];
                            for (int64_t kw = 0; kw < g->k[2]; kw++) {
                                int64_t tw = ow + g->pad_before[2] - kw * g->dil[2];
                                int64_t iw = tw / g->stride[2];
                                if (tw >= 0 && tw % g->stride[2] == 0 && iw < g->in[2]) {
                                    acc += wk[kw] * xrow[iw];
                                }
                            }
                        }
                    }
                }
                orow[(od * g->out[1] + oh) * g->out[2] + ow] = acc;
            }
        }
    }
}

static enum anml_status run_conv_transpose(struct ex_call *c) {
    struct conv_geom g;
    enum anml_status st = conv_geometry(c, &g, true);
    if (st != ANML_OK) {
        return st;
    }
    const struct ex_tensor *x = ex_in(c, "x");
    const struct ex_tensor *w = ex_in(c, "weight");
    const struct ex_tensor *b = ex_in(c, "bias");
    struct ex_carve cv = ex_carve_run(c);
    float *xf, *wrow, *orow, *thr;
    conv_carve(&cv, &g, c->n_threads, &xf, &wrow, &orow, &thr);
    ANML_ASSERT(cv.used <= c->scratch_size);
    ex_to_f32(x, 0, x->numel, xf);
    for (int64_t o = 0; o < g.cout; o++) {
        int64_t grp = o / g.cout_g, oc = o % g.cout_g;
        /* wrow[ic][k] = weight[grp * Cin_g + ic, oc, k] */
        for (int64_t ic = 0; ic < g.cin_g; ic++) {
            load_f32(w, ((grp * g.cin_g + ic) * g.cout_g + oc) * g.k_sp, g.k_sp,
                     wrow + ic * g.k_sp);
        }
        float bias = b ? ex_get_f32(b, o) : 0.0f;
        for (int64_t n = 0; n < g.n; n++) {
            convt_direct_row(&g, xf + n * g.cin * g.in_sp, wrow, grp, orow);
            for (int64_t j = 0; j < g.out_sp; j++) {
                orow[j] += bias;
            }
            store_f32(c->outs[0], (n * g.cout + o) * g.out_sp, g.out_sp, orow);
        }
    }
    return ANML_OK;
}

/* ---- linear ---- */

struct linear_geom {
    int64_t m, din, dout;
};

static enum anml_status linear_check(struct ex_call *c, struct linear_geom *g) {
    const struct ex_tensor *x = ex_req(c, "x");
    const struct ex_tensor *w = x ? ex_req(c, "weight") : NULL;
    if (!w) {
        return ANML_E_FORMAT;
    }
    if (x->rank < 1) {
        return ex_fail(c, ANML_E_SHAPE, "x '%s' must have rank >= 1", x->name);
    }
    if (w->rank != 2) {
        return ex_fail(c, ANML_E_SHAPE, "weight '%s' must have rank 2 ([Dout, Din]), got %d",
                       w->name, (int)w->rank);
    }
    g->din = x->shape[x->rank - 1];
    g->dout = w->shape[0];
    g->m = 1;
    for (int32_t d = 0; d + 1 < x->rank; d++) {
        g->m *= x->shape[d];
    }
    if (w->shape[1] != g->din) {
        return ex_fail(c, ANML_E_SHAPE, "weight '%s' has Din %lld but x '%s' has %lld", w->name,
                       (long long)w->shape[1], x->name, (long long)g->din);
    }
    if (ex_is_float(x->dtype)) {
        if (!check_float_param(c, x, w, "weight")) {
            return ANML_E_SHAPE;
        }
    } else if (x->dtype == ANML_DTYPE_INT32) {
        if (!ex_is_int(w->dtype) || !w->data) {
            return ex_fail(c, ANML_E_SHAPE,
                           "weight '%s' must be a dense integer tensor for an "
                           "int32 x",
                           w->name);
        }
    } else {
        return ex_fail(c, ANML_E_SHAPE, "x '%s' must be fp16, fp32 or int32, got %s", x->name,
                       anml_dtype_name(x->dtype));
    }
    const struct ex_tensor *b = ex_in(c, "bias");
    if (b) {
        if (b->rank > 1 || b->numel != g->dout || !b->data) {
            return ex_fail(c, ANML_E_SHAPE, "bias '%s' must be a vector of %lld values", b->name,
                           (long long)g->dout);
        }
        if (ex_is_float(x->dtype) ? !check_float_param(c, x, b, "bias") : !ex_is_int(b->dtype)) {
            return ex_fail(c, ANML_E_SHAPE, "bias '%s' has dtype %s, incompatible with x", b->name,
                           anml_dtype_name(b->dtype));
        }
    }
    return ANML_OK;
}

/* x in fp32 [M, Din] (rows padded_ld(Din) apart), per thread a weight panel [PANEL_ROWS, Din]
 * (the same stride), the outputs [M, Dout]. */
static void linear_carve(struct ex_carve *cv, const struct linear_geom *g, int32_t n_threads,
                         float **xf, float **panels, float **of) {
    *xf = ex_carve_f32(cv, smul(g->m, padded_ld(g->din)));
    *panels = ex_carve_f32(cv, smul(n_threads, per_thread(smul(PANEL_ROWS, padded_ld(g->din)))));
    *of = ex_carve_f32(cv, g->m * g->dout);
}

struct linear_task {
    const struct linear_geom *g;
    struct wjob wj;
    const float *xf;
    float *panels, *of;
};

static void linear_run_rows(void *arg, int32_t ith, int32_t nth) {
    const struct linear_task *t = arg;
    const struct linear_geom *g = t->g;
    int64_t r0, r1;
    split_rows(g->dout, 8, ith, nth, &r0, &r1);
    int64_t ldx = padded_ld(g->din);
    float *panel = t->panels + ith * per_thread(smul(PANEL_ROWS, ldx));
    for (int64_t o = r0; o < r1; o += PANEL_ROWS) {
        int64_t rows = r1 - o < PANEL_ROWS ? r1 - o : PANEL_ROWS;
        /* of[m][o]: rows of W are columns of of */
        wjob_rows(&t->wj, o, o + rows, t->xf, ldx, g->m, panel, t->of + o, 1, g->dout);
    }
}

static enum anml_status infer_linear(struct ex_call *c) {
    struct linear_geom g;
    enum anml_status st = linear_check(c, &g);
    if (st != ANML_OK) {
        return st;
    }
    const struct ex_tensor *x = ex_in(c, "x");
    int64_t shape[EX_MAX_DIMS];
    memcpy(shape, x->shape, sizeof shape);
    shape[x->rank - 1] = g.dout;
    int64_t numel;
    if (!anml__shape_numel(shape, x->rank, &numel)) {
        return ex_fail(c, ANML_E_SHAPE, "output shape overflows");
    }
    ex_set_shape(c->outs[0], x->dtype, x->rank, shape);
    if (!ex_is_float(x->dtype)) {
        return ANML_OK;
    }
    struct ex_carve cv = { 0 };
    float *xf, *panels, *of;
    linear_carve(&cv, &g, c->n_threads, &xf, &panels, &of);
    return ex_carve_request(c, &cv);
}

static enum anml_status run_linear(struct ex_call *c) {
    struct linear_geom g;
    enum anml_status st = linear_check(c, &g);
    if (st != ANML_OK) {
        return st;
    }
    const struct ex_tensor *x = ex_in(c, "x");
    const struct ex_tensor *w = ex_in(c, "weight");
    const struct ex_tensor *b = ex_in(c, "bias");
    struct ex_tensor *out = c->outs[0];
    if (!ex_is_float(x->dtype)) {
        /* integer linear: exact int64 sums, stored with the output dtype's wrap-around */
        for (int64_t m = 0; m < g.m; m++) {
            for (int64_t o = 0; o < g.dout; o++) {
                uint64_t acc = b ? (uint64_t)ex_get_i64(b, o) : 0;
                for (int64_t i = 0; i < g.din; i++) {
                    acc += (uint64_t)ex_get_i64(x, m * g.din + i) *
                           (uint64_t)ex_get_i64(w, o * g.din + i);
                }
                ex_set_i64(out, m * g.dout + o, (int64_t)acc);
            }
        }
        return ANML_OK;
    }
    struct ex_carve cv = ex_carve_run(c);
    float *xf, *panels, *of;
    linear_carve(&cv, &g, c->n_threads, &xf, &panels, &of);
    ANML_ASSERT(cv.used <= c->scratch_size);
    for (int64_t m = 0; m < g.m; m++) {
        ex_to_f32(x, m * g.din, g.din, xf + m * padded_ld(g.din));
    }
    struct linear_task t = { .g = &g, .xf = xf, .panels = panels, .of = of };
    wjob_init(&t.wj, w, g.dout, g.din);
    double macs = (double)g.m * (double)g.dout * (double)g.din;
    anml__threadpool_run(pool_for(c, macs), linear_run_rows, &t);
    for (int64_t o = 0; o < g.dout; o++) {
        if (b) {
            float bias = ex_get_f32(b, o);
            for (int64_t m = 0; m < g.m; m++) {
                of[m * g.dout + o] += bias;
            }
        }
    }
    store_f32(out, 0, g.m * g.dout, of);
    return ANML_OK;
}

/* ---- matmul ---- */

/* out[b] = X_eff[b] @ Y_eff[b] with X_eff [M, K], Y_eff [K, N]. In storage, x is [.., M, K]
 * (or [.., K, M] when tx) and y is [.., K, N] (or [.., N, K] when ty); a rank-1 x is one row
 * [1, K] and a rank-1 y one column [K, 1] (transposes do not apply to them). */
struct matmul_geom {
    int64_t m, k, n;
    bool tx, ty;
    int32_t xbr, ybr, obr; /* batch ranks */
    int64_t xb[EX_MAX_DIMS], yb[EX_MAX_DIMS], ob[EX_MAX_DIMS];
    int64_t n_batch;
    /* The operand read one storage row at a time (a constant weight, possibly compressed); the
     * other one is converted to an fp32 panel per batch element. */
    bool stream_x;
};

static bool matmul_dtype_ok(enum anml_dtype dt) {
    return dt == ANML_DTYPE_F16 || dt == ANML_DTYPE_F32 || dt == ANML_DTYPE_INT32;
}

static enum anml_status matmul_check(struct ex_call *c, struct matmul_geom *g,
                                     enum anml_dtype *out_dt) {
    const struct ex_tensor *x = ex_req(c, "x");
    const struct ex_tensor *y = x ? ex_req(c, "y") : NULL;
    if (!y) {
        return ANML_E_FORMAT;
    }
    memset(g, 0, sizeof *g);
    if (!read_bool(c, "transpose_x", &g->tx) || !read_bool(c, "transpose_y", &g->ty)) {
        return ANML_E_SHAPE;
    }
    if (x->rank < 1 || y->rank < 1) {
        return ex_fail(c, ANML_E_SHAPE, "x and y must have rank >= 1 (got %d and %d)", (int)x->rank,
                       (int)y->rank);
    }
    if (!matmul_dtype_ok(x->dtype) || !matmul_dtype_ok(y->dtype)) {
        return ex_fail(c, ANML_E_SHAPE, "x and y must be fp16, fp32 or int32 (got %s and %s)",
                       anml_dtype_name(x->dtype), anml_dtype_name(y->dtype));
    }
    *out_dt = x->dtype;
    if (x->dtype != y->dtype) {
        if (c->opset < 7 || is_const(x) == is_const(y)) {
            return ex_fail(c, ANML_E_SHAPE,
                           "x is %s but y is %s (different dtypes need iOS17 and exactly one "
                           "constant operand)",
                           anml_dtype_name(x->dtype), anml_dtype_name(y->dtype));
        }
        *out_dt = is_const(x) ? y->dtype : x->dtype;
    }
    int64_t k2;
    if (x->rank == 1) {
        g->m = 1;
        g->k = x->shape[0];
        g->tx = false;
    } else {
        int64_t r0 = x->shape[x->rank - 2], r1 = x->shape[x->rank - 1];
        g->m = g->tx ? r1 : r0;
        g->k = g->tx ? r0 : r1;
        g->xbr = x->rank - 2;
        memcpy(g->xb, x->shape, (size_t)g->xbr * sizeof(int64_t));
    }
    if (y->rank == 1) {
        k2 = y->shape[0];
        g->n = 1;
        g->ty = false;
    } else {
        int64_t r0 = y->shape[y->rank - 2], r1 = y->shape[y->rank - 1];
        k2 = g->ty ? r1 : r0;
        g->n = g->ty ? r0 : r1;
        g->ybr = y->rank - 2;
        memcpy(g->yb, y->shape, (size_t)g->ybr * sizeof(int64_t));
    }
    if (k2 != g->k) {
        return ex_fail(c, ANML_E_SHAPE,
                       "inner dimensions differ: x '%s' has K = %lld, y '%s' has "
                       "K = %lld",
                       x->name, (long long)g->k, y->name, (long long)k2);
    }
    g->obr = g->xbr > g->ybr ? g->xbr : g->ybr;
    g->n_batch = 1;
    for (int32_t d = 0; d < g->obr; d++) {
        int32_t dx = d - (g->obr - g->xbr), dy = d - (g->obr - g->ybr);
        int64_t sx = dx >= 0 ? g->xb[dx] : 1, sy = dy >= 0 ? g->yb[dy] : 1;
        if (sx != sy && sx != 1 && sy != 1) {
            return ex_fail(c, ANML_E_SHAPE,
                           "batch dimensions do not broadcast: %lld vs %lld at batch axis %d",
                           (long long)sx, (long long)sy, (int)d);
        }
        g->ob[d] = sx == 1 ? sy : sx;
        g->n_batch *= g->ob[d];
    }
    g->stream_x = (is_const(x) || x->lut) && !(is_const(y) || y->lut);
    return ANML_OK;
}

/* Per thread: the panel (X_eff rows [M, K], or Y_eff transposed [N, K] when x is streamed), a
 * row buffer (MM_YBLOCK rows of K when y rows are dotted in blocks, else one row) and the
 * outputs [M, N]; *per receives the floats of one thread's block. */
static void matmul_sizes(const struct matmul_geom *g, int64_t *panel, int64_t *row, int64_t *of) {
    int64_t r = g->k > g->m ? g->k : g->m;
    r = r > g->n ? r : g->n;
    if (!g->stream_x && g->ty) {
        int64_t block = smul(MM_YBLOCK, g->k);
        r = block < 0 || block > r ? block : r;
    }
    *panel = per_thread(g->stream_x ? smul(g->n, g->k) : smul(g->m, g->k));
    *row = per_thread(r);
    *of = per_thread(smul(g->m, g->n));
}

static void matmul_carve(struct ex_carve *cv, const struct matmul_geom *g, int32_t n_threads,
                         float **scr, int64_t *per) {
    int64_t panel, row, of;
    matmul_sizes(g, &panel, &row, &of);
    *per = sadd(sadd(panel, row), of);
    *scr = ex_carve_f32(cv, smul(n_threads, *per));
}

struct mm_task {
    const struct matmul_geom *g;
    const struct ex_tensor *x, *y;
    struct ex_tensor *out;
    const struct anml_kernels *kt;
    float *scr;
    int64_t per;
};

/* Output rows [i0, i1) of batch element b. */
static void mm_segment(const struct mm_task *t, int64_t b, int64_t i0, int64_t i1, float *panel,
                       float *row, float *of) {
    const struct matmul_geom *g = t->g;
    const struct ex_tensor *x = t->x, *y = t->y;
    const struct anml_kernels *kt = t->kt;
    int64_t M = g->m, K = g->k, N = g->n, mi = i1 - i0;
    int64_t xo = bcast_index(g->ob, g->obr, b, g->xb, g->xbr) * M * K;
    int64_t yo = bcast_index(g->ob, g->obr, b, g->yb, g->ybr) * K * N;
    if (!g->stream_x) {
        /* panel = X_eff rows [i0, i1) [mi][K]; y streamed */
        if (g->tx) {
            load_transposed_ld_f32(x, xo + i0, K, mi, M, panel, K, row);
        } else {
            load_f32(x, xo + i0 * K, mi * K, panel);
        }
        if (g->ty) { /* y rows are Y_eff columns: dot form, MM_YBLOCK columns at a time */
            for (int64_t j = 0; j < N; j += MM_YBLOCK) {
                int64_t nj = N - j < MM_YBLOCK ? N - j : MM_YBLOCK;
                load_f32(y, yo + j * K, nj * K, row);
                kt->gemm_f32(panel, K, mi, row, K, nj, K, of + j, N, 1);
            }
        } else { /* y rows are Y_eff rows: rank-1 updates */
            memset(of, 0, (size_t)(mi * N) * sizeof(float));
            for (int64_t k = 0; k < K; k++) {
                load_f32(y, yo + k * N, N, row);
                for (int64_t i = 0; i < mi; i++) {
                    kt->axpy_f32(N, panel[i * K + k], row, of + i * N);
                }
            }
        }
    } else {
        /* panel = Y_eff transposed, [N][K]; x streamed */
        if (g->ty) {
            load_f32(y, yo, N * K, panel);
        } else {
            load_transposed_f32(y, yo, K, N, panel, row);
        }
        if (!g->tx) {
            for (int64_t i = 0; i < mi; i++) {
                load_f32(x, xo + (i0 + i) * K, K, row);
                kt->gemm_f32(row, K, 1, panel, K, N, K, of + i * N, 0, 1);
            }
        } else {
            memset(of, 0, (size_t)(mi * N) * sizeof(float));
            for (int64_t k = 0; k < K; k++) {
                load_f32(x, xo + k * M + i0, mi, row);
                for (int64_t i = 0; i < mi; i++) {
                    for (int64_t j = 0; j < N; j++) {
                        of[i * N + j] += row[i] * panel[j * K + k];
                    }
                }
            }
        }
    }
    store_f32(t->out, (b * M + i0) * N, mi * N, of);
}

/* Output rows of all batch elements, flattened to n_batch * M, split across threads. */
static void mm_run(void *arg, int32_t ith, int32_t nth) {
    const struct mm_task *t = arg;
    const struct matmul_geom *g = t->g;
    int64_t M = g->m, panel_f, row_f, of_f;
    matmul_sizes(g, &panel_f, &row_f, &of_f);
    float *panel = t->scr + ith * t->per;
    float *row = panel + panel_f;
    float *of = row + row_f;
    int64_t f0, f1;
    split_rows(g->n_batch * M, 1, ith, nth, &f0, &f1);
    while (f0 < f1 && M > 0) {
        int64_t b = f0 / M, i0 = f0 % M;
        int64_t i1 = M < i0 + (f1 - f0) ? M : i0 + (f1 - f0);
        mm_segment(t, b, i0, i1, panel, row, of);
        f0 += i1 - i0;
    }
}

static enum anml_status infer_matmul(struct ex_call *c) {
    struct matmul_geom g;
    enum anml_dtype dt;
    enum anml_status st = matmul_check(c, &g, &dt);
    if (st != ANML_OK) {
        return st;
    }
    const struct ex_tensor *x = ex_in(c, "x");
    const struct ex_tensor *y = ex_in(c, "y");
    int64_t shape[EX_MAX_DIMS + 2];
    int32_t rank = g.obr;
    memcpy(shape, g.ob, (size_t)g.obr * sizeof(int64_t));
    if (x->rank > 1) {
        shape[rank++] = g.m;
    }
    if (y->rank > 1) {
        shape[rank++] = g.n;
    }
    int64_t numel;
    if (rank > EX_MAX_DIMS || !anml__shape_numel(shape, rank, &numel)) {
        return ex_fail(c, ANML_E_SHAPE, "output shape is too large");
    }
    ex_set_shape(c->outs[0], dt, rank, shape);
    if (ex_is_int(x->dtype) && ex_is_int(y->dtype)) {
        return ANML_OK;
    }
    struct ex_carve cv = { 0 };
    float *scr;
    int64_t per;
    matmul_carve(&cv, &g, c->n_threads, &scr, &per);
    return ex_carve_request(c, &cv);
}

static void matmul_int(const struct matmul_geom *g, const struct ex_tensor *x,
                       const struct ex_tensor *y, struct ex_tensor *out) {
    int64_t mk = g->m * g->k, kn = g->k * g->n;
    for (int64_t b = 0; b < g->n_batch; b++) {
        int64_t xo = bcast_index(g->ob, g->obr, b, g->xb, g->xbr) * mk;
        int64_t yo = bcast_index(g->ob, g->obr, b, g->yb, g->ybr) * kn;
        for (int64_t i = 0; i < g->m; i++) {
            for (int64_t j = 0; j < g->n; j++) {
                uint64_t acc = 0; /* wraps like the int32 result would */
                for (int64_t k = 0; k < g->k; k++) {
                    int64_t xi = g->tx ? k * g->m + i : i * g->k + k;
                    int64_t yi = g->ty ? j * g->k + k : k * g->n + j;
                    acc += (uint64_t)ex_get_i64(x, xo + xi) * (uint64_t)ex_get_i64(y, yo + yi);
                }
                ex_set_i64(out, (b * g->m + i) * g->n + j, (int64_t)acc);
            }
        }
    }
}

static enum anml_status run_matmul(struct ex_call *c) {
    struct matmul_geom g;
    enum anml_dtype dt;
    enum anml_status st = matmul_check(c, &g, &dt);
    if (st != ANML_OK) {
        return st;
    }
    const struct ex_tensor *x = ex_in(c, "x");
    const struct ex_tensor *y = ex_in(c, "y");
    struct ex_tensor *out = c->outs[0];
    if (ex_is_int(x->dtype) && ex_is_int(y->dtype)) {
        matmul_int(&g, x, y, out);
        return ANML_OK;
    }
    struct ex_carve cv = ex_carve_run(c);
    struct mm_task t = { .g = &g, .x = x, .y = y, .out = out, .kt = anml__kernels() };
    matmul_carve(&cv, &g, c->n_threads, &t.scr, &t.per);
    ANML_ASSERT(cv.used <= c->scratch_size);
    double macs = (double)g.n_batch * (double)g.m * (double)g.n * (double)g.k;
    anml__threadpool_run(pool_for(c, macs), mm_run, &t);
    return ANML_OK;
}

/* ---- einsum ---- */

/* The two supported equations, up to renaming of the letters: "nchw,nwhu->nchu" (rank 4) and
 * "chw,whr->chr" (rank 3), i.e. out[n, c, h, u] = sum_w a[n, c, h, w] * b[n, w, h, u] with n
 * and h broadcast between a and b. Returns the rank, or 0 when the equation is not supported. */
static int32_t einsum_form(const char *eq) {
    char s[64];
    size_t n = 0;
    for (const char *p = eq; *p; p++) {
        if (*p != ' ') {
            if (n + 1 >= sizeof s) {
                return 0;
            }
            s[n++] = *p;
        }
    }
    s[n] = '\0';
    const char *comma = strchr(s, ',');
    const char *arrow = strstr(s, "->");
    if (!comma || !arrow || arrow < comma) {
        return 0;
    }
    size_t la = (size_t)(comma - s), lb = (size_t)(arrow - comma - 1), lo = strlen(arrow + 2);
    const char *a = s, *b = comma + 1, *o = arrow + 2;
    if (la != lb || la != lo || (la != 3 && la != 4)) {
        return 0;
    }
    /* rank 3 is rank 4 without the leading n */
    const char *pa = la == 4 ? a + 1 : a, *pb = la == 4 ? b + 1 : b, *po = la == 4 ? o + 1 : o;
    char C = pa[0], H = pa[1], W = pa[2], U = pb[2];
    bool ok = pb[0] == W && pb[1] == H && po[0] == C && po[1] == H && po[2] == U;
    char letters[5] = { C, H, W, U, la == 4 ? a[0] : '#' };
    if (la == 4) {
        ok = ok && b[0] == a[0] && o[0] == a[0];
    }
    for (int i = 0; i < 5 && ok; i++) {
        for (int j = i + 1; j < 5; j++) {
            ok = ok && letters[i] != letters[j];
        }
    }
    return ok ? (int32_t)la : 0;
}

struct einsum_geom {
    int64_t na, nb, nn, ha, hb, hh, c, w, u;
};

static enum anml_status einsum_check(struct ex_call *c, struct einsum_geom *g) {
    if (ex_in_count(c, "values") != 2) {
        return ex_fail(c, ANML_E_SHAPE, "values must be a tuple of two tensors, got %d",
                       (int)ex_in_count(c, "values"));
    }
    const struct ex_tensor *a = ex_in_at(c, "values", 0);
    const struct ex_tensor *b = ex_in_at(c, "values", 1);
    const char *eq = ex_const_str(c, "equation");
    if (!eq) {
        return ex_in(c, "equation") ? ANML_E_SHAPE
                                    : ex_fail(c, ANML_E_FORMAT, "missing argument 'equation'");
    }
    int32_t r = einsum_form(eq);
    if (r == 0) {
        return ex_fail(c, ANML_E_UNSUPPORTED,
                       "equation \"%s\" is not supported (only the forms of \"nchw,nwhu->nchu\" "
                       "and \"chw,whr->chr\")",
                       eq);
    }
    if (a->rank != r || b->rank != r) {
        return ex_fail(c, ANML_E_SHAPE, "equation \"%s\" needs rank-%d operands, got %d and %d", eq,
                       (int)r, (int)a->rank, (int)b->rank);
    }
    if (!ex_is_float(a->dtype) || a->dtype != b->dtype) {
        return ex_fail(c, ANML_E_SHAPE, "operands must share one float dtype (got %s and %s)",
                       anml_dtype_name(a->dtype), anml_dtype_name(b->dtype));
    }
    int32_t o = r - 3;
    g->na = o ? a->shape[0] : 1;
    g->nb = o ? b->shape[0] : 1;
    g->c = a->shape[o];
    g->ha = a->shape[o + 1];
    g->w = a->shape[o + 2];
    g->hb = b->shape[o + 1];
    g->u = b->shape[o + 2];
    if (b->shape[o] != g->w || (g->na != g->nb && g->na != 1 && g->nb != 1) ||
        (g->ha != g->hb && g->ha != 1 && g->hb != 1)) {
        return ex_fail(c, ANML_E_SHAPE, "operand shapes do not fit equation \"%s\"", eq);
    }
    g->nn = g->na == 1 ? g->nb : g->na;
    g->hh = g->ha == 1 ? g->hb : g->ha;
    return ANML_OK;
}

static enum anml_status infer_einsum(struct ex_call *c) {
    struct einsum_geom g;
    enum anml_status st = einsum_check(c, &g);
    if (st != ANML_OK) {
        return st;
    }
    const struct ex_tensor *a = ex_in_at(c, "values", 0);
    const struct ex_tensor *b = ex_in_at(c, "values", 1);
    int64_t shape[4] = { g.nn, g.c, g.hh, g.u };
    int32_t r = a->rank;
    ex_set_shape(c->outs[0], a->dtype, r, r == 4 ? shape : shape + 1);
    struct ex_carve cv = { 0 };
    ex_carve_f32(&cv, a->numel);
    ex_carve_f32(&cv, b->numel);
    ex_carve_f32(&cv, g.u);
    return ex_carve_request(c, &cv);
}

static enum anml_status run_einsum(struct ex_call *c) {
    struct einsum_geom g;
    enum anml_status st = einsum_check(c, &g);
    if (st != ANML_OK) {
        return st;
    }
    const struct ex_tensor *a = ex_in_at(c, "values", 0);
    const struct ex_tensor *b = ex_in_at(c, "values", 1);
    struct ex_carve cv = ex_carve_run(c);
    float *af = ex_carve_f32(&cv, a->numel);
    float *bf = ex_carve_f32(&cv, b->numel);
    float *orow = ex_carve_f32(&cv, g.u);
    ANML_ASSERT(cv.used <= c->scratch_size);
    load_f32(a, 0, a->numel, af);
    load_f32(b, 0, b->numel, bf);
    for (int64_t n = 0; n < g.nn; n++) {
        for (int64_t ci = 0; ci < g.c; ci++) {
            for (int64_t h = 0; h < g.hh; h++) {
                /* a[n, ci, h, :] and b[n, :, h, :] */
                const float *arow =
                    af + ((((g.na == 1 ? 0 : n) * g.c + ci) * g.ha) + (g.ha == 1 ? 0 : h)) * g.w;
                const float *bn = bf + (g.nb == 1 ? 0 : n) * g.w * g.hb * g.u;
                int64_t hb = g.hb == 1 ? 0 : h;
                memset(orow, 0, (size_t)g.u * sizeof(float));
                for (int64_t wi = 0; wi < g.w; wi++) {
                    anml__ref_axpy_f32(g.u, arow[wi], bn + (wi * g.hb + hb) * g.u, orow);
                }
                ex_from_f32(c->outs[0], ((n * g.c + ci) * g.hh + h) * g.u, g.u, orow);
            }
        }
    }
    return ANML_OK;
}

/* ---- scaled_dot_product_attention ---- */

/* softmax(q k^T / sqrt(E) + mask) v per batch element. A bool mask keeps the positions where it
 * is true (the others get -inf); a float mask is added. A row whose scores are all -inf follows
 * the math and gives NaN (as PyTorch does); ANEMLL never produces one. */
struct sdpa_geom {
    int32_t rank;
    int64_t n_batch, l, s, e, ev;
    int64_t mstride[EX_MAX_DIMS]; /* mask strides over the [*B, L, S] index space; 0 = broadcast */
};

static enum anml_status sdpa_check(struct ex_call *c, struct sdpa_geom *g) {
    const struct ex_tensor *q = ex_req(c, "query");
    const struct ex_tensor *k = q ? ex_req(c, "key") : NULL;
    const struct ex_tensor *v = k ? ex_req(c, "value") : NULL;
    if (!v) {
        return ANML_E_FORMAT;
    }
    if (c->opset < 8) {
        return ex_fail(c, ANML_E_UNSUPPORTED, "the op needs iOS18 (the function is iOS%d)",
                       c->opset + 10);
    }
    const struct ex_tensor *mask = ex_in(c, "attn_mask");
    int32_t r = q->rank;
    if (r < 3 || k->rank != r || v->rank != r) {
        return ex_fail(c, ANML_E_SHAPE,
                       "query, key and value must share one rank >= 3 (got %d, "
                       "%d, %d)",
                       (int)q->rank, (int)k->rank, (int)v->rank);
    }
    if (!ex_is_float(q->dtype) || k->dtype != q->dtype || v->dtype != q->dtype) {
        return ex_fail(
            c, ANML_E_SHAPE, "query, key and value must share one float dtype (got %s, %s, %s)",
            anml_dtype_name(q->dtype), anml_dtype_name(k->dtype), anml_dtype_name(v->dtype));
    }
    g->rank = r;
    g->n_batch = 1;
    for (int32_t d = 0; d < r - 2; d++) {
        if (k->shape[d] != q->shape[d] || v->shape[d] != q->shape[d]) {
            return ex_fail(c, ANML_E_SHAPE,
                           "batch dimension %d differs between query, key and "
                           "value",
                           (int)d);
        }
        g->n_batch *= q->shape[d];
    }
    g->l = q->shape[r - 2];
    g->e = q->shape[r - 1];
    g->s = k->shape[r - 2];
    g->ev = v->shape[r - 1];
    if (k->shape[r - 1] != g->e || v->shape[r - 2] != g->s) {
        return ex_fail(c, ANML_E_SHAPE,
                       "key must be [.., S, %lld] and value [.., S, EV] with the same S",
                       (long long)g->e);
    }
    memset(g->mstride, 0, sizeof g->mstride);
    if (mask) {
        if (mask->dtype != ANML_DTYPE_BOOL && !ex_is_float(mask->dtype)) {
            return ex_fail(c, ANML_E_SHAPE, "attn_mask must be bool or float, got %s",
                           anml_dtype_name(mask->dtype));
        }
        if (mask->rank > r) {
            return ex_fail(c, ANML_E_SHAPE, "attn_mask rank %d exceeds the query rank %d",
                           (int)mask->rank, (int)r);
        }
        int64_t stride = 1;
        for (int32_t d = r - 1; d >= 0; d--) {
            int32_t md = d - (r - mask->rank);
            if (md < 0) {
                break;
            }
            int64_t want = d == r - 1 ? g->s : d == r - 2 ? g->l : q->shape[d];
            if (mask->shape[md] != want && mask->shape[md] != 1) {
                return ex_fail(c, ANML_E_SHAPE,
                               "attn_mask dim %d (%lld) does not broadcast to %lld", (int)md,
                               (long long)mask->shape[md], (long long)want);
            }
            g->mstride[d] = mask->shape[md] == 1 ? 0 : stride;
            stride *= mask->shape[md];
        }
    }
    return ANML_OK;
}

static void sdpa_carve(struct ex_carve *cv, const struct sdpa_geom *g, float **qf, float **kf,
                       float **vf, float **sc, float **orow) {
    *qf = ex_carve_f32(cv, g->l * g->e);
    *kf = ex_carve_f32(cv, g->s * g->e);
    *vf = ex_carve_f32(cv, g->s * g->ev);
    *sc = ex_carve_f32(cv, g->s);
    *orow = ex_carve_f32(cv, g->ev);
}

static enum anml_status infer_sdpa(struct ex_call *c) {
    struct sdpa_geom g;
    enum anml_status st = sdpa_check(c, &g);
    if (st != ANML_OK) {
        return st;
    }
    const struct ex_tensor *q = ex_in(c, "query");
    int64_t shape[EX_MAX_DIMS];
    memcpy(shape, q->shape, sizeof shape);
    shape[q->rank - 1] = g.ev;
    ex_set_shape(c->outs[0], q->dtype, q->rank, shape);
    struct ex_carve cv = { 0 };
    float *qf, *kf, *vf, *sc, *orow;
    sdpa_carve(&cv, &g, &qf, &kf, &vf, &sc, &orow);
    return ex_carve_request(c, &cv);
}

static enum anml_status run_sdpa(struct ex_call *c) {
    struct sdpa_geom g;
    enum anml_status st = sdpa_check(c, &g);
    if (st != ANML_OK) {
        return st;
    }
    const struct ex_tensor *q = ex_in(c, "query");
    const struct ex_tensor *k = ex_in(c, "key");
    const struct ex_tensor *v = ex_in(c, "value");
    const struct ex_tensor *mask = ex_in(c, "attn_mask");
    struct ex_carve cv = ex_carve_run(c);
    float *qf, *kf, *vf, *sc, *orow;
    sdpa_carve(&cv, &g, &qf, &kf, &vf, &sc, &orow);
    ANML_ASSERT(cv.used <= c->scratch_size);
    float scale = 1.0f / sqrtf((float)g.e);
    int32_t r = g.rank;
    for (int64_t b = 0; b < g.n_batch; b++) {
        load_f32(q, b * g.l * g.e, g.l * g.e, qf);
        load_f32(k, b * g.s * g.e, g.s * g.e, kf);
        load_f32(v, b * g.s * g.ev, g.s * g.ev, vf);
        int64_t mbase = 0, rest = b;
        for (int32_t d = r - 3; d >= 0; d--) {
            mbase += (rest % q->shape[d]) * g.mstride[d];
            rest /= q->shape[d];
        }
        for (int64_t l = 0; l < g.l; l++) {
            anml__ref_dot_rows_f32(qf + l * g.e, kf, g.e, g.e, g.s, sc, 1);
            float mx = -INFINITY;
            for (int64_t s = 0; s < g.s; s++) {
                sc[s] *= scale;
                if (mask) {
                    int64_t mi = mbase + l * g.mstride[r - 2] + s * g.mstride[r - 1];
                    if (mask->dtype == ANML_DTYPE_BOOL) {
                        if (!((const uint8_t *)mask->data)[mi]) {
                            sc[s] = -INFINITY;
                        }
                    } else {
                        sc[s] += ex_get_f32(mask, mi);
                    }
                }
                mx = sc[s] > mx ? sc[s] : mx;
            }
            float sum = 0.0f;
            for (int64_t s = 0; s < g.s; s++) {
                sc[s] = expf(sc[s] - mx);
                sum += sc[s];
            }
            memset(orow, 0, (size_t)g.ev * sizeof(float));
            for (int64_t s = 0; s < g.s; s++) {
                anml__ref_axpy_f32(g.ev, sc[s] / sum, vf + s * g.ev, orow);
            }
            ex_from_f32(c->outs[0], (b * g.l + l) * g.ev, g.ev, orow);
        }
    }
    return ANML_OK;
}

/* ---- table ---- */

const struct ex_opdef anml__ops_linear[] = {
    { "conv", infer_conv, run_conv, "weight" },
    { "conv_transpose", infer_conv_transpose, run_conv_transpose, NULL },
    { "linear", infer_linear, run_linear, "weight" },
    { "matmul", infer_matmul, run_matmul, "x,y" },
    { "einsum", infer_einsum, run_einsum, NULL },
    { "scaled_dot_product_attention", infer_sdpa, run_sdpa, NULL },
    { NULL, NULL, NULL, NULL },
};
