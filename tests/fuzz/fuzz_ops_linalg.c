/* fuzz_ops_linalg.c -- structure-aware libFuzzer target for the linear-algebra ops
 * (src/ops/linear.c: conv, conv_transpose, linear, matmul, einsum, scaled_dot_product_attention)
 * and the reduction/normalization ops (src/ops/reduce.c). The input bytes choose an op, the
 * opset, dtypes and shapes, the constant parameters (strides, pads, groups, axes, ...), whether a
 * weight is a runtime input, a dense constant or a palettized constexpr_lut_to_dense, and the
 * values of the runtime inputs. Parameters are drawn mostly from their valid ranges so that many
 * programs plan and run, and sometimes from anywhere so that the checks are exercised too.
 * The harness writes a small MIL program (results declared with '?' dims), plans it with
 * anml_context_create and, when it plans, runs it twice. Failing is fine; a crash, a sanitizer
 * report, a failure without a message, or a second run that disagrees with the first is a bug.
 * Set FUZZ_OPS_VERBOSE=1 to print each program. */
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- input bytes ---- */

struct rd {
    const uint8_t *p;
    size_t n, at;
};

static unsigned next(struct rd *r) {
    return r->at < r->n ? r->p[r->at++] : 0;
}

static int pick(struct rd *r, int n) {
    return n <= 0 ? 0 : (int)(next(r) % (unsigned)n);
}

static int small(struct rd *r, int lo, int hi) { /* lo..hi inclusive */
    return hi < lo ? lo : lo + pick(r, hi - lo + 1);
}

/* true with probability about 1/n */
static bool rarely(struct rd *r, int n) {
    return pick(r, n) == 0;
}

/* ---- text output ---- */

struct buf {
    char s[32768];
    size_t n;
    bool full;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...) {
    if (b->full) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->s + b->n, sizeof b->s - b->n, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= sizeof b->s - b->n) {
        b->full = true;
        return;
    }
    b->n += (size_t)k;
}

static void put_dims(struct buf *b, int rank, const int64_t *d) {
    put(b, "[");
    for (int i = 0; i < rank; i++) {
        put(b, i ? ", %lld" : "%lld", (long long)d[i]);
    }
    put(b, "]");
}

static void put_type(struct buf *b, const char *dt, int rank, const int64_t *d) {
    put(b, "tensor<%s, ", dt);
    put_dims(b, rank, d);
    put(b, ">");
}

/* A result type of known rank with every dim '?'. */
static void put_qtype(struct buf *b, const char *dt, int rank) {
    put(b, "tensor<%s, [", dt);
    for (int i = 0; i < rank; i++) {
        put(b, i ? ", ?" : "?");
    }
    put(b, "]>");
}

static void put_ints(struct buf *b, int n, const int64_t *v) {
    put(b, "tensor<int32, [%d]>([", n);
    for (int i = 0; i < n; i++) {
        put(b, i ? ", %lld" : "%lld", (long long)v[i]);
    }
    put(b, "])");
}

/* ---- the program being built ---- */

#define MAX_INPUTS 4

struct prog {
    struct buf body;
    struct buf sig;
    int n_in;
    struct anml_named_tensor in[MAX_INPUTS];
    char names[MAX_INPUTS][8];
};

static const char *dt_name(enum anml_dtype dt) {
    switch (dt) {
    case ANML_DTYPE_F16: return "fp16";
    case ANML_DTYPE_F32: return "fp32";
    case ANML_DTYPE_INT32: return "int32";
    case ANML_DTYPE_BOOL: return "bool";
    default: return "fp32";
    }
}

/* A function input with the given type; its data is filled from the bytes at run time. */
static const char *add_input(struct prog *p, enum anml_dtype dt, int rank, const int64_t *d) {
    if (p->n_in == MAX_INPUTS) {
        return "x";
    }
    int i = p->n_in++;
    snprintf(p->names[i], sizeof p->names[i], "in%d", i);
    put(&p->sig, "%s", i ? ", " : "");
    put_type(&p->sig, dt_name(dt), rank, d);
    put(&p->sig, " %s", p->names[i]);
    struct anml_tensor *t = &p->in[i].tensor;
    p->in[i].name = p->names[i];
    t->dtype = dt;
    t->rank = rank;
    for (int k = 0; k < rank; k++) {
        t->shape[k] = d[k];
    }
    t->data = NULL;
    return p->names[i];
}

/* A tensor operand named `name`: a runtime input, a splat constant, or (for float weights) a
 * palettized constexpr_lut_to_dense with one table per group of `lut_rows` leading rows. */
static void operand(struct rd *r, struct prog *p, const char *name, enum anml_dtype dt, int rank,
                    const int64_t *d, bool allow_input, int64_t lut_rows, char *out_name,
                    size_t cap) {
    int kind = allow_input ? pick(r, 3) : 1 + pick(r, 2);
    bool is_float = dt == ANML_DTYPE_F16 || dt == ANML_DTYPE_F32;
    if (kind == 0) {
        snprintf(out_name, cap, "%s", add_input(p, dt, rank, d));
        return;
    }
    snprintf(out_name, cap, "%s", name);
    put(&p->body, "            ");
    put_type(&p->body, dt_name(dt), rank, d);
    if (kind == 2 && is_float && rank >= 1 && lut_rows >= 1 && d[0] % lut_rows == 0) {
        int bits = pick(r, 2) ? 4 : 2;
        int64_t lshape[10];
        lshape[0] = d[0] / lut_rows;
        for (int i = 1; i < rank; i++) {
            lshape[i] = 1;
        }
        lshape[rank] = (int64_t)1 << bits;
        lshape[rank + 1] = 1;
        put(&p->body, " %s = constexpr_lut_to_dense(indices = ", name);
        put_type(&p->body, bits == 4 ? "uint4" : "uint2", rank, d);
        put(&p->body, "(%d), lut = ", pick(r, 1 << bits));
        put_type(&p->body, dt_name(dt), rank + 2, lshape);
        put(&p->body, "(%g))[name = string(\"%s\")];\n", (double)small(r, -4, 4) * 0.25, name);
        return;
    }
    const char *val = dt == ANML_DTYPE_BOOL ? (pick(r, 2) ? "true" : "false") : NULL;
    char num[32];
    if (!val) {
        snprintf(num, sizeof num, "%d", small(r, -3, 3));
        val = num;
    }
    put(&p->body, " %s = const()[name = string(\"%s\"), val = ", name, name);
    put_type(&p->body, dt_name(dt), rank, d);
    put(&p->body, "(%s)];\n", val);
}

static enum anml_dtype float_dt(struct rd *r) {
    return rarely(r, 8) ? ANML_DTYPE_INT32 : pick(r, 2) ? ANML_DTYPE_F16 : ANML_DTYPE_F32;
}

/* ---- op builders: each writes the op statement(s) and returns the result rank ---- */

static int build_conv(struct rd *r, struct prog *p, bool transpose) {
    enum anml_dtype dt = float_dt(r);
    int ns = small(r, 1, 3);
    int64_t groups = small(r, 1, 3), cin_g = small(r, 1, 3), cout_g = small(r, 1, 3);
    int64_t n = small(r, 1, 2);
    int64_t xd[5] = { n, groups * cin_g }, wd[5];
    if (rarely(r, 10)) {
        xd[1] += 1; /* channels that do not divide */
    }
    if (transpose) {
        wd[0] = groups * cin_g;
        wd[1] = cout_g;
    } else {
        wd[0] = groups * cout_g;
        wd[1] = cin_g;
    }
    for (int i = 0; i < ns; i++) {
        xd[2 + i] = small(r, 1, 5);
        wd[2 + i] = small(r, 1, 3);
    }
    const char *x = add_input(p, dt, ns + 2, xd);
    char w[16];
    enum anml_dtype wdt =
        rarely(r, 4) ? (dt == ANML_DTYPE_F16 ? ANML_DTYPE_F32 : ANML_DTYPE_F16) : dt;
    operand(r, p, "w", wdt, ns + 2, wd, true, transpose ? 1 : cout_g, w, sizeof w);
    bool bias = pick(r, 2);
    int64_t cout = groups * cout_g + (rarely(r, 10) ? 1 : 0);
    if (bias) {
        put(&p->body, "            ");
        put_type(&p->body, dt_name(dt), 1, &cout);
        put(&p->body, " b = const()[name = string(\"b\"), val = ");
        put_type(&p->body, dt_name(dt), 1, &cout);
        put(&p->body, "(0.5)];\n");
    }
    put(&p->body, "            ");
    put_qtype(&p->body, dt_name(dt), ns + 2);
    put(&p->body, " z = %s(x = %s, weight = %s%s", transpose ? "conv_transpose" : "conv", x, w,
        bias ? ", bias = b" : "");
    int64_t v[6];
    const char *pads[5] = { "valid", "same", "same_lower", "custom", "full" };
    int pt = pick(r, 5);
    if (pt != 4 || rarely(r, 4)) {
        put(&p->body, ", pad_type = string(\"%s\")", pads[pt]);
    }
    int nv = rarely(r, 10) ? ns + 1 : ns;
    for (int i = 0; i < nv; i++) {
        v[i] = rarely(r, 12) ? 0 : small(r, 1, 3);
    }
    if (pick(r, 2)) {
        put(&p->body, ", strides = ");
        put_ints(&p->body, nv, v);
    }
    for (int i = 0; i < nv; i++) {
        v[i] = small(r, 1, 2);
    }
    if (pick(r, 2)) {
        put(&p->body, ", dilations = ");
        put_ints(&p->body, nv, v);
    }
    if (pt == 3 || rarely(r, 8)) {
        for (int i = 0; i < 2 * ns; i++) {
            v[i] = rarely(r, 16) ? -1 : small(r, 0, 2);
        }
        put(&p->body, ", pad = ");
        put_ints(&p->body, 2 * ns, v);
    }
    if (groups > 1 || rarely(r, 4)) {
        put(&p->body, ", groups = int32(%lld)", (long long)(rarely(r, 12) ? 0 : groups));
    }
    if (transpose && rarely(r, 3)) {
        int64_t os[5] = { n, groups * cout_g };
        for (int i = 0; i < ns; i++) {
            os[2 + i] = small(r, 1, 8);
        }
        int full = pick(r, 2);
        put(&p->body, ", output_shape = ");
        put_ints(&p->body, full ? ns + 2 : ns, full ? os : os + 2);
    }
    put(&p->body, ")[name = string(\"z\")];\n");
    return ns + 2;
}

static int build_linear(struct rd *r, struct prog *p) {
    enum anml_dtype dt = float_dt(r);
    int rank = small(r, 1, 3);
    int64_t xd[3], din = small(r, 0, 5), dout = small(r, 1, 6);
    for (int i = 0; i < rank; i++) {
        xd[i] = small(r, 1, 3);
    }
    xd[rank - 1] = din;
    const char *x = add_input(p, dt, rank, xd);
    int64_t wd[2] = { dout, rarely(r, 10) ? din + 1 : din };
    char w[16];
    operand(r, p, "w", dt, 2, wd, false, small(r, 1, 2), w, sizeof w);
    bool bias = pick(r, 2);
    if (bias) {
        put(&p->body, "            ");
        put_type(&p->body, dt_name(dt), 1, &dout);
        put(&p->body, " b = const()[name = string(\"b\"), val = ");
        put_type(&p->body, dt_name(dt), 1, &dout);
        put(&p->body, "(1)];\n");
    }
    put(&p->body, "            ");
    put_qtype(&p->body, dt_name(dt), rank);
    put(&p->body, " z = linear(x = %s, weight = %s%s)[name = string(\"z\")];\n", x, w,
        bias ? ", bias = b" : "");
    return rank;
}

static int build_matmul(struct rd *r, struct prog *p) {
    enum anml_dtype dt = float_dt(r);
    int rx = small(r, 1, 4), ry = small(r, 1, 4);
    bool tx = pick(r, 2), ty = pick(r, 2);
    int64_t m = small(r, 1, 3), k = small(r, 0, 4), n = small(r, 1, 3);
    int64_t xd[4], yd[4];
    for (int i = 0; i < 4; i++) {
        xd[i] = small(r, 1, 3);
        yd[i] = pick(r, 3) ? xd[i] : small(r, 1, 3);
    }
    if (rx == 1) {
        xd[0] = k;
    } else {
        xd[rx - 2] = tx ? k : m;
        xd[rx - 1] = tx ? m : k;
    }
    if (ry == 1) {
        yd[0] = rarely(r, 10) ? k + 1 : k;
    } else {
        yd[ry - 2] = ty ? n : k;
        yd[ry - 1] = ty ? k : n;
    }
    char x[16], y[16];
    enum anml_dtype ydt =
        rarely(r, 6) ? (dt == ANML_DTYPE_F16 ? ANML_DTYPE_F32 : ANML_DTYPE_F16) : dt;
    operand(r, p, "xc", dt, rx, xd, true, 1, x, sizeof x);
    operand(r, p, "yc", ydt, ry, yd, true, 1, y, sizeof y);
    int bx = rx > 2 ? rx - 2 : 0, by = ry > 2 ? ry - 2 : 0;
    int rank = (bx > by ? bx : by) + (rx > 1) + (ry > 1);
    put(&p->body, "            ");
    put_qtype(&p->body, dt_name(dt), rank);
    put(&p->body,
        " z = matmul(x = %s, y = %s, transpose_x = bool(%s), transpose_y = bool(%s))"
        "[name = string(\"z\")];\n",
        x, y, tx ? "true" : "false", ty ? "true" : "false");
    return rank;
}

static int build_einsum(struct rd *r, struct prog *p) {
    enum anml_dtype dt = float_dt(r);
    int rank = pick(r, 2) ? 4 : 3;
    int64_t nb = small(r, 1, 2), c = small(r, 1, 3), h = small(r, 1, 3), w = small(r, 1, 3),
            u = small(r, 1, 3);
    int64_t ad[4] = { nb, c, pick(r, 4) ? h : 1, w };
    int64_t bd[4] = { pick(r, 4) ? nb : 1, rarely(r, 10) ? w + 1 : w, pick(r, 4) ? h : 1, u };
    const char *a = add_input(p, dt, rank, rank == 4 ? ad : ad + 1);
    const char *b = add_input(p, dt, rank, rank == 4 ? bd : bd + 1);
    const char *eqs[4] = { "nchw,nwhu->nchu", "chw,whr->chr", "ij,jk->ik", "abcd,adce->abce" };
    int e = rarely(r, 6) ? 2 : rank == 4 ? (pick(r, 2) ? 0 : 3) : 1;
    put(&p->body, "            ");
    put_qtype(&p->body, dt_name(dt), rank);
    put(&p->body,
        " z = einsum(values = (%s, %s), equation = string(\"%s\"))[name = string(\"z\")];\n", a, b,
        eqs[e]);
    return rank;
}

static int build_sdpa(struct rd *r, struct prog *p) {
    enum anml_dtype dt = float_dt(r);
    int rank = small(r, 3, 4);
    int64_t b0 = small(r, 1, 2), b1 = small(r, 1, 2), l = small(r, 1, 3), s = small(r, 0, 4),
            e = small(r, 1, 4), ev = small(r, 1, 3);
    int64_t qd[4] = { b0, b1, l, e }, kd[4] = { b0, b1, s, rarely(r, 10) ? e + 1 : e },
            vd[4] = { b0, b1, s, ev };
    int o = 4 - rank;
    const char *q = add_input(p, dt, rank, qd + o);
    const char *k = add_input(p, dt, rank, kd + o);
    const char *v = add_input(p, dt, rank, vd + o);
    int mk = pick(r, 3);
    if (mk) {
        int mr = small(r, 1, rank);
        int64_t full[4] = { b0, b1, l, s }, md[4];
        for (int i = 0; i < mr; i++) {
            md[i] = pick(r, 3) ? full[4 - mr + i] : 1;
        }
        char m[16];
        operand(r, p, "m", mk == 1 ? ANML_DTYPE_BOOL : dt, mr, md, true, 0, m, sizeof m);
        put(&p->body, "            ");
        put_qtype(&p->body, dt_name(dt), rank);
        put(&p->body,
            " z = scaled_dot_product_attention(query = %s, key = %s, value = %s, attn_mask = %s)"
            "[name = string(\"z\")];\n",
            q, k, v, m);
    } else {
        put(&p->body, "            ");
        put_qtype(&p->body, dt_name(dt), rank);
        put(&p->body,
            " z = scaled_dot_product_attention(query = %s, key = %s, value = %s)"
            "[name = string(\"z\")];\n",
            q, k, v);
    }
    return rank;
}

static const char *const k_reduce_ops[] = {
    "reduce_sum",        "reduce_mean",    "reduce_max",     "reduce_min",     "reduce_prod",
    "reduce_sum_square", "reduce_l1_norm", "reduce_l2_norm", "reduce_log_sum", "reduce_log_sum_exp",
};

static int build_reduce(struct rd *r, struct prog *p, int which) {
    enum anml_dtype dt = float_dt(r);
    int rank = small(r, 0, 4);
    int64_t xd[4] = { 0 };
    for (int i = 0; i < rank; i++) {
        xd[i] = small(r, rarely(r, 8) ? 0 : 1, 4);
    }
    const char *x = add_input(p, dt, rank, xd);
    bool keep = pick(r, 2);
    bool mask[4] = { false, false, false, false };
    int64_t axes[5];
    int na = 0;
    bool have_axes = rank > 0 && pick(r, 4);
    if (have_axes) {
        na = small(r, 0, rank);
        for (int i = 0; i < na; i++) {
            int a = small(r, -rank, rank - 1);
            if (rarely(r, 16)) {
                a = rank; /* out of range */
            }
            axes[i] = a;
            mask[a < 0 ? a + rank : a % (rank ? rank : 1)] = true;
        }
    }
    int out_rank = 0;
    for (int i = 0; i < rank; i++) {
        out_rank += keep || !(have_axes ? mask[i] : true);
    }
    put(&p->body, "            ");
    put_qtype(&p->body, dt_name(dt), out_rank);
    put(&p->body, " z = %s(x = %s, keep_dims = bool(%s)", k_reduce_ops[which], x,
        keep ? "true" : "false");
    if (have_axes) {
        put(&p->body, ", axes = ");
        put_ints(&p->body, na, axes);
    }
    put(&p->body, ")[name = string(\"z\")];\n");
    return -1; /* declared rank is a guess when axes repeat; the planner checks it */
}

static int build_arg(struct rd *r, struct prog *p) {
    enum anml_dtype dt = float_dt(r);
    int rank = small(r, 1, 4);
    int64_t xd[4] = { 0 };
    for (int i = 0; i < rank; i++) {
        xd[i] = small(r, 1, 4);
    }
    const char *x = add_input(p, dt, rank, xd);
    bool keep = pick(r, 2);
    int axis = small(r, -rank, rank - 1);
    /* output dtype: 0 int32 (default), 1 int8 (rejected), 2 uint16 */
    int which_dt = pick(r, 3) ? 0 : rarely(r, 3) ? 1 : 2;
    static const char *const k_odt[] = { "int32", "int8", "uint16" };
    const char *odt = k_odt[which_dt];
    put(&p->body, "            ");
    put_qtype(&p->body, which_dt == 2 ? "uint16" : "int32", keep ? rank : rank - 1);
    put(&p->body, " z = %s(x = %s, axis = int32(%d), keep_dims = bool(%s)",
        pick(r, 2) ? "reduce_argmax" : "reduce_argmin", x, axis, keep ? "true" : "false");
    if (which_dt != 0 || pick(r, 2)) {
        put(&p->body, ", output_dtype = string(\"%s\")", odt);
    }
    put(&p->body, ")[name = string(\"z\")];\n");
    return -1;
}

static int build_norm(struct rd *r, struct prog *p, int which) {
    enum anml_dtype dt = float_dt(r);
    int lo = which == 0 ? 0 : which == 4 ? 3 : 3, hi = which == 4 ? 6 : which == 1 ? 5 : 4;
    if (which == 0) {
        hi = 4;
    }
    int rank = rarely(r, 10) ? small(r, 0, 5) : small(r, lo, hi);
    int64_t xd[6] = { 0 };
    for (int i = 0; i < rank; i++) {
        xd[i] = small(r, 1, 3);
    }
    const char *x = add_input(p, dt, rank, xd);
    int64_t ch = rank > 1 ? xd[1] : 1;
    if (rarely(r, 10)) {
        ch++;
    }
    const char *names[5] = { "layer_norm", "batch_norm", "instance_norm", "local_response_norm",
                             "l2_norm" };
    if (which == 0) {
        bool mask[6] = { false };
        int64_t axes[6];
        int na = rank > 0 ? small(r, 0, rank) : 0;
        for (int i = 0; i < na; i++) {
            axes[i] = small(r, -rank, rank - 1);
            mask[axes[i] < 0 ? axes[i] + rank : axes[i]] = true;
        }
        int64_t gd[6];
        int gr = 0;
        for (int i = 0; i < rank; i++) {
            if (mask[i]) {
                gd[gr++] = xd[i];
            }
        }
        bool g = na > 0 && pick(r, 2);
        if (g) {
            char gn[16];
            operand(r, p, "g", dt, gr, gd, false, 0, gn, sizeof gn);
        }
        put(&p->body, "            ");
        put_qtype(&p->body, dt_name(dt), rank);
        put(&p->body, " z = layer_norm(x = %s%s, epsilon = %s(0.001)", x, g ? ", gamma = g" : "",
            dt_name(dt));
        if (na > 0 || pick(r, 2)) {
            put(&p->body, ", axes = ");
            put_ints(&p->body, na, axes);
        }
        put(&p->body, ")[name = string(\"z\")];\n");
        return rank;
    }
    if (which == 1 || which == 2) {
        const char *pn[4] = { "mean", "variance", "gamma", "beta" };
        for (int i = which == 1 ? 0 : 2; i < 4; i++) {
            put(&p->body, "            ");
            put_type(&p->body, dt_name(dt), 1, &ch);
            put(&p->body, " %s = const()[name = string(\"%s\"), val = ", pn[i], pn[i]);
            put_type(&p->body, dt_name(dt), 1, &ch);
            put(&p->body, "(%s)];\n", i == 1 ? "0.5" : "1");
        }
        put(&p->body, "            ");
        put_qtype(&p->body, dt_name(dt), rank);
        put(&p->body, " z = %s(x = %s, %sgamma = gamma, beta = beta)[name = string(\"z\")];\n",
            names[which], x, which == 1 ? "mean = mean, variance = variance, " : "");
        return rank;
    }
    put(&p->body, "            ");
    put_qtype(&p->body, dt_name(dt), rank);
    if (which == 3) {
        put(&p->body, " z = local_response_norm(x = %s, size = int32(%d))[name = string(\"z\")];\n",
            x, small(r, 0, 4));
    } else {
        put(&p->body, " z = l2_norm(x = %s)[name = string(\"z\")];\n", x);
    }
    return rank;
}

static int build_softmax(struct rd *r, struct prog *p) {
    enum anml_dtype dt = float_dt(r);
    int rank = small(r, 1, 4);
    int64_t xd[4];
    for (int i = 0; i < rank; i++) {
        xd[i] = small(r, 1, 4);
    }
    const char *x = add_input(p, dt, rank, xd);
    put(&p->body, "            ");
    put_qtype(&p->body, dt_name(dt), rank);
    put(&p->body, " z = softmax(x = %s, axis = int32(%d))[name = string(\"z\")];\n", x,
        small(r, -rank - 1, rank));
    return rank;
}

/* ---- running ---- */

static void fill_inputs(struct rd *r, struct prog *p) {
    for (int i = 0; i < p->n_in; i++) {
        struct anml_tensor *t = &p->in[i].tensor;
        int64_t n = anml_tensor_numel(t);
        size_t bytes = anml_tensor_nbytes(t);
        t->data = calloc(1, bytes ? bytes : 1);
        for (int64_t k = 0; k < n && t->data; k++) {
            unsigned b = next(r);
            float f = b == 255 ? INFINITY : b == 254 ? -INFINITY : ((float)b - 128.0f) / 16.0f;
            switch (t->dtype) {
            case ANML_DTYPE_F32: ((float *)t->data)[k] = f; break;
            case ANML_DTYPE_F16: {
                /* crude fp32 -> fp16 for test data: exact for these values (multiples of 1/16
                 * below 8, and the infinities) */
                uint16_t h = 0;
                if (isinf(f)) {
                    h = f > 0 ? 0x7c00 : 0xfc00;
                } else if (f != 0.0f) {
                    int e;
                    float m = frexpf(fabsf(f), &e); /* |f| = m * 2^e, m in [0.5, 1) */
                    h = (uint16_t)(((unsigned)(e + 14) << 10) |
                                   ((unsigned)((m * 2.0f - 1.0f) * 1024.0f) & 0x3ff));
                    h |= f < 0 ? 0x8000 : 0;
                }
                ((uint16_t *)t->data)[k] = h;
                break;
            }
            case ANML_DTYPE_INT32: ((int32_t *)t->data)[k] = (int32_t)b - 128; break;
            case ANML_DTYPE_BOOL: ((uint8_t *)t->data)[k] = (uint8_t)(b & 1); break;
            default: break;
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct rd r = { data, size, 0 };
    static struct prog p;
    memset(&p, 0, sizeof p);
    int op = pick(&r, 24);
    int opsets[4] = { 5, 6, 7, 8 };
    int opset = rarely(&r, 4) ? opsets[pick(&r, 3)] : 8;
    int rank;
    if (op < 2) {
        rank = build_conv(&r, &p, op == 1);
    } else if (op == 2) {
        rank = build_linear(&r, &p);
    } else if (op < 5) {
        rank = build_matmul(&r, &p);
    } else if (op == 5) {
        rank = build_einsum(&r, &p);
    } else if (op == 6) {
        rank = build_sdpa(&r, &p);
    } else if (op < 17) {
        rank = build_reduce(&r, &p, op - 7);
    } else if (op == 17) {
        rank = build_arg(&r, &p);
    } else if (op == 18) {
        rank = build_softmax(&r, &p);
    } else {
        rank = build_norm(&r, &p, op - 19);
    }
    (void)rank;
    static struct buf text;
    memset(&text, 0, sizeof text);
    const char *tags[4] = { "ios15", "ios16", "ios17", "ios18" };
    put(&text, "program(1.3)\n{\n    func main<%s>(%s) {\n%s        } -> (z);\n}\n",
        tags[opset - 5], p.sig.s, p.body.s);
    if (p.body.full || p.sig.full || text.full) {
        return 0;
    }
    if (getenv("FUZZ_OPS_VERBOSE")) {
        fprintf(stderr, "%s\n", text.s);
    }
    struct anml_program *prog = NULL;
    struct anml_context *ctx = NULL;
    struct anml_error err;
    memset(&err, 0, sizeof err);
    enum anml_status st = anml_program_load_mil(text.s, text.n, NULL, &prog, &err);
    if (st == ANML_OK) {
        st = anml_context_create(prog, NULL, &ctx, &err);
    }
    if (st != ANML_OK) {
        if (err.msg[0] == '\0') {
            fprintf(stderr, "failure without a message:\n%s\n", text.s);
            abort();
        }
        if (getenv("FUZZ_OPS_VERBOSE")) {
            fprintf(stderr, "rejected: %s\n", err.msg);
        }
        anml_program_free(prog);
        return 0;
    }
    fill_inputs(&r, &p);
    enum anml_status s1 = anml_context_run(ctx, p.in, p.n_in, NULL);
    if (s1 != ANML_OK && anml_context_errmsg(ctx)[0] == '\0') {
        fprintf(stderr, "run failed without a message:\n%s\n", text.s);
        abort();
    }
    enum anml_status s2 = anml_context_run(ctx, p.in, p.n_in, NULL);
    if (s1 != s2) {
        fprintf(stderr, "second run status %d differs from the first %d:\n%s\n", (int)s2, (int)s1,
                text.s);
        abort();
    }
    anml_context_free(ctx);
    anml_program_free(prog);
    for (int i = 0; i < p.n_in; i++) {
        free(p.in[i].tensor.data);
    }
    return 0;
}
