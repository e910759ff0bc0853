/* fuzz_ops_elementwise.c -- structure-aware libFuzzer target for the elementwise and misc op
 * families (src/ops/elementwise.c, src/ops/misc.c). The input bytes pick an opset, one op, the
 * dtypes and shapes of its tensor inputs (mostly broadcast-compatible, sometimes not), its
 * constant parameters (mostly in range, sometimes anywhere), whether size arguments are
 * constants or runtime inputs, and the input data (raw fp16/fp32 bit patterns, so NaN and inf
 * occur). Result types are declared with the rank the op should produce and '?' dims (concrete
 * dims where the size depends on runtime data). The harness plans the program and, when that
 * works, runs it twice. Failing is fine; a crash, a sanitizer report, an error without a message
 * or a second run that disagrees with the first is a bug.
 * Set FUZZ_OPS_VERBOSE=1 to print each generated program. */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- reading the input ---- */

struct rd {
    const uint8_t *p;
    size_t n, at;
};

static unsigned byte(struct rd *r) {
    return r->at < r->n ? r->p[r->at++] : 0;
}

static int pick(struct rd *r, int n) {
    return n <= 0 ? 0 : (int)(byte(r) % (unsigned)n);
}

static int range(struct rd *r, int lo, int hi) {
    return lo + pick(r, hi - lo + 1);
}

static bool chance(struct rd *r, int percent) {
    return pick(r, 100) < percent;
}

/* ---- text ---- */

struct text {
    char s[8192];
    size_t n;
    bool full;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...) {
    if (t->full) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(t->s + t->n, sizeof t->s - t->n, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= sizeof t->s - t->n) {
        t->full = true;
        return;
    }
    t->n += (size_t)k;
}

/* ---- shapes and dtypes ---- */

#define MAXR  4
#define MAXIN 4

struct shp {
    int rank;
    int64_t d[MAXR + 1];
};

static struct shp rand_shape(struct rd *r, int min_rank, int max_rank) {
    struct shp s = { .rank = range(r, min_rank, max_rank) };
    for (int i = 0; i < s.rank; i++) {
        s.d[i] = chance(r, 5) ? 0 : range(r, 1, 3);
    }
    return s;
}

/* A shape that broadcasts against s (usually): each trailing dim kept, set to 1, or dropped. */
static struct shp bcast_partner(struct rd *r, const struct shp *s) {
    if (chance(r, 5)) {
        return rand_shape(r, 0, MAXR);
    }
    struct shp o = { .rank = range(r, 0, s->rank) };
    for (int i = 0; i < o.rank; i++) {
        int64_t d = s->d[s->rank - o.rank + i];
        o.d[i] = chance(r, 35) ? 1 : d;
    }
    return o;
}

static int max_rank(const struct shp *a, const struct shp *b) {
    return a->rank > b->rank ? a->rank : b->rank;
}

static const char *const k_dtypes[] = { "fp16", "fp32",  "int32", "bool",
                                        "int8", "uint8", "int16", "uint16" };
static const enum anml_dtype k_dtype_enum[] = {
    ANML_DTYPE_F16,  ANML_DTYPE_F32,   ANML_DTYPE_INT32, ANML_DTYPE_BOOL,
    ANML_DTYPE_INT8, ANML_DTYPE_UINT8, ANML_DTYPE_INT16, ANML_DTYPE_UINT16,
};
enum { DT_F16, DT_F32, DT_I32, DT_BOOL, DT_I8, DT_U8, DT_I16, DT_U16, DT_N };

/* Mostly one of `usual` (a bit set of DT_*), sometimes anything. */
static int rand_dt(struct rd *r, unsigned usual) {
    if (chance(r, 8)) {
        return pick(r, DT_N);
    }
    int opts[DT_N], n = 0;
    for (int i = 0; i < DT_N; i++) {
        if (usual & (1u << i)) {
            opts[n++] = i;
        }
    }
    return n ? opts[pick(r, n)] : DT_F32;
}

#define B(x)   (1u << (x))
#define FLOATS (B(DT_F16) | B(DT_F32))
#define NUMS   (FLOATS | B(DT_I32))
#define ANY4   (NUMS | B(DT_BOOL))

/* ---- the program under construction ---- */

struct input {
    char name[8];
    int dt;
    struct shp s;
    bool runtime_ints; /* data given by the harness (sizes), not random */
    int64_t ints[2 * MAXR + 2];
};

struct gen {
    struct rd r;
    int opset;
    struct text sig, body;
    int n_in;
    struct input in[MAXIN];
    int n_out;
};

static void shape_str(const struct shp *s, bool unknown, char *buf, size_t cap) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < s->rank && n < cap; i++) {
        if (unknown) {
            n += (size_t)snprintf(buf + n, cap - n, "%s?", i ? ", " : "");
        } else {
            n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)s->d[i]);
        }
    }
    if (n < cap) {
        snprintf(buf + n, cap - n, "]");
    }
}

/* Adds a function input; returns its name. */
static const char *add_input(struct gen *g, int dt, const struct shp *s) {
    if (g->n_in >= MAXIN) {
        return "x0";
    }
    struct input *in = &g->in[g->n_in];
    snprintf(in->name, sizeof in->name, "x%d", g->n_in);
    in->dt = dt;
    in->s = *s;
    in->runtime_ints = false;
    char sh[64];
    shape_str(s, false, sh, sizeof sh);
    put(&g->sig, "%stensor<%s, %s> %s", g->n_in ? ", " : "", k_dtypes[dt], sh, in->name);
    g->n_in++;
    return in->name;
}

/* A runtime int32 vector input whose values the harness chooses. */
static const char *add_int_input(struct gen *g, const int64_t *vals, int n, bool scalar) {
    struct shp s = { .rank = scalar ? 0 : 1, .d = { n } };
    const char *name = add_input(g, DT_I32, &s);
    struct input *in = &g->in[g->n_in - 1];
    in->runtime_ints = true;
    for (int i = 0; i < n && i < 2 * MAXR + 2; i++) {
        in->ints[i] = vals[i];
    }
    return name;
}

/* A scalar literal of dtype dt, value v (ints truncate; bool v != 0). */
static void lit(struct text *t, int dt, double v) {
    switch (dt) {
    case DT_F16:
    case DT_F32: put(t, "%s(%g)", k_dtypes[dt], v); break;
    case DT_BOOL: put(t, "bool(%s)", v != 0.0 ? "true" : "false"); break;
    default: put(t, "%s(%lld)", k_dtypes[dt], (long long)v); break;
    }
}

static double rand_val(struct rd *r) {
    static const double k_vals[] = { 0, 1, -1, 0.5, -2.5, 3, 100, -1e4, 6e4, 1e-7 };
    return k_vals[pick(r, (int)(sizeof k_vals / sizeof k_vals[0]))];
}

static void int_vec(struct text *t, const int64_t *v, int n) {
    put(t, "tensor<int32, [%d]>([", n);
    for (int i = 0; i < n; i++) {
        put(t, "%s%lld", i ? ", " : "", (long long)v[i]);
    }
    put(t, "])");
}

/* Declares result #k ("r<k>") of dtype dt with rank `rank` and unknown dims, or the given dims. */
static void result(struct gen *g, int dt, int rank, const int64_t *dims) {
    struct shp s = { .rank = rank };
    for (int i = 0; i < rank && i <= MAXR; i++) {
        s.d[i] = dims ? dims[i] : 0;
    }
    char sh[64];
    shape_str(&s, dims == NULL, sh, sizeof sh);
    put(&g->body, "%stensor<%s, %s> r%d", g->n_out ? ", " : "        ", k_dtypes[dt], sh, g->n_out);
    g->n_out++;
}

/* ---- per-op generators: each writes "results = op(args)" without the trailing name ---- */

enum { P_NONE, P_EPS, P_ALPHA, P_AB, P_MODE };

struct unary_def {
    const char *name;
    int params;
    bool ints;
};

static const struct unary_def k_unary[] = {
    { "abs", P_NONE, true },
    { "sign", P_NONE, true },
    { "square", P_NONE, true },
    { "exp", P_NONE, false },
    { "exp2", P_NONE, true },
    { "sqrt", P_NONE, false },
    { "rsqrt", P_EPS, false },
    { "inverse", P_EPS, false },
    { "log", P_EPS, false },
    { "erf", P_NONE, false },
    { "sin", P_NONE, false },
    { "cos", P_NONE, false },
    { "tan", P_NONE, false },
    { "tanh", P_NONE, false },
    { "sinh", P_NONE, false },
    { "cosh", P_NONE, false },
    { "asin", P_NONE, false },
    { "acos", P_NONE, false },
    { "atan", P_NONE, false },
    { "atanh", P_NONE, false },
    { "ceil", P_NONE, false },
    { "floor", P_NONE, false },
    { "round", P_NONE, false },
    { "clip", P_AB, false },
    { "threshold", P_ALPHA, true },
    { "relu", P_NONE, false },
    { "relu6", P_NONE, false },
    { "sigmoid", P_NONE, false },
    { "silu", P_NONE, false },
    { "gelu", P_MODE, false },
    { "softplus", P_NONE, false },
    { "softsign", P_NONE, false },
    { "elu", P_ALPHA, false },
    { "leaky_relu", P_ALPHA, false },
    { "clamped_relu", P_AB, false },
    { "linear_activation", P_AB, false },
    { "scaled_tanh", P_AB, false },
    { "sigmoid_hard", P_AB, false },
    { "thresholded_relu", P_ALPHA, false },
};

static const char *const k_binary[] = {
    "add",           "sub",     "mul",        "real_div",    "floor_div",  "mod",
    "pow",           "maximum", "minimum",    "equal",       "not_equal",  "greater",
    "greater_equal", "less",    "less_equal", "logical_and", "logical_or", "logical_xor",
};

static void gen_binary(struct gen *g) {
    struct rd *r = &g->r;
    int op = pick(r, (int)(sizeof k_binary / sizeof k_binary[0]));
    bool logical = op >= 15, cmp = op >= 9 && op < 15;
    int dt = rand_dt(r, logical ? B(DT_BOOL) : NUMS);
    struct shp a = rand_shape(r, 0, MAXR), b = bcast_partner(r, &a);
    if (chance(r, 50)) {
        struct shp t = a;
        a = b;
        b = t;
    }
    const char *x = add_input(g, dt, &a);
    int dty = chance(r, 5) ? pick(r, DT_N) : dt;
    result(g, logical || cmp ? DT_BOOL : dt, max_rank(&a, &b), NULL);
    if (chance(r, 20)) {
        put(&g->body, " = %s(x = %s, y = ", k_binary[op], x);
        lit(&g->body, dty, rand_val(r));
        put(&g->body, ")");
    } else {
        const char *y = add_input(g, dty, &b);
        put(&g->body, " = %s(x = %s, y = %s)", k_binary[op], x, y);
    }
}

static void param_lit(struct gen *g, int xdt) {
    /* iOS17+ parameters may be fp32 on fp16 tensors */
    int dt = g->opset >= 7 && chance(&g->r, 30) ? DT_F32 : xdt;
    lit(&g->body, dt, rand_val(&g->r));
}

static void gen_unary(struct gen *g) {
    struct rd *r = &g->r;
    const struct unary_def *u = &k_unary[pick(r, (int)(sizeof k_unary / sizeof k_unary[0]))];
    int dt = rand_dt(r, u->ints ? NUMS : FLOATS);
    struct shp s = rand_shape(r, 0, MAXR);
    const char *x = add_input(g, dt, &s);
    result(g, dt, s.rank, NULL);
    put(&g->body, " = %s(x = %s", u->name, x);
    switch (u->params) {
    case P_EPS:
        if (chance(r, 60)) {
            put(&g->body, ", epsilon = ");
            param_lit(g, dt);
        }
        break;
    case P_ALPHA:
        if (chance(r, 95)) {
            put(&g->body, ", alpha = ");
            param_lit(g, dt);
        }
        break;
    case P_AB:
        put(&g->body, ", alpha = ");
        param_lit(g, dt);
        put(&g->body, ", beta = ");
        param_lit(g, dt);
        break;
    case P_MODE: {
        static const char *const k_modes[] = { "EXACT", "TANH_APPROXIMATION",
                                               "SIGMOID_APPROXIMATION", "FAST" };
        if (chance(r, 70)) {
            put(&g->body, ", mode = string(\"%s\")", k_modes[pick(r, 4)]);
        }
        break;
    }
    default: break;
    }
    put(&g->body, ")");
}

static void gen_cast_select_channel(struct gen *g) {
    struct rd *r = &g->r;
    int which = pick(r, 4);
    if (which == 0) {
        int dt = rand_dt(r, ANY4 | B(DT_I8) | B(DT_U16));
        int to = pick(r, DT_N + 1);
        struct shp s = rand_shape(r, 0, MAXR);
        const char *x = add_input(g, dt, &s);
        result(g, to < DT_N ? to : DT_F32, s.rank, NULL);
        put(&g->body, " = cast(x = %s, dtype = string(\"%s\"))", x,
            to < DT_N ? k_dtypes[to] : "fp64");
    } else if (which == 1) {
        int dt = rand_dt(r, ANY4);
        struct shp a = rand_shape(r, 0, MAXR), b = bcast_partner(r, &a), c = bcast_partner(r, &a);
        const char *cn = add_input(g, chance(r, 95) ? DT_BOOL : DT_F32, &c);
        const char *an = add_input(g, dt, &a);
        int rk = max_rank(&a, &b) > c.rank ? max_rank(&a, &b) : c.rank;
        result(g, dt, rk, NULL);
        put(&g->body, " = select(cond = %s, a = %s, b = ", cn, an);
        if (chance(r, 40)) {
            lit(&g->body, dt, rand_val(r));
        } else {
            put(&g->body, "%s", add_input(g, dt, &b));
        }
        put(&g->body, ")");
    } else if (which == 2) {
        int dt = rand_dt(r, B(DT_BOOL));
        struct shp s = rand_shape(r, 0, MAXR);
        const char *x = add_input(g, dt, &s);
        result(g, DT_BOOL, s.rank, NULL);
        put(&g->body, " = logical_not(x = %s)", x);
    } else {
        bool parametric = chance(r, 50);
        int dt = rand_dt(r, FLOATS);
        struct shp s = rand_shape(r, 2, MAXR);
        const char *x = add_input(g, dt, &s);
        int64_t ch = chance(r, 90) && s.rank > 1 ? s.d[1] : range(r, 0, 3);
        result(g, dt, s.rank, NULL);
        put(&g->body, " = %s(x = %s, alpha = tensor<%s, [%lld]>([",
            parametric ? "softplus_parametric" : "prelu", x, k_dtypes[dt], (long long)ch);
        for (int64_t i = 0; i < ch; i++) {
            put(&g->body, "%s%g", i ? ", " : "", rand_val(r));
        }
        put(&g->body, "])");
        if (parametric) {
            put(&g->body, ", beta = tensor<%s, [%lld]>([", k_dtypes[dt], (long long)ch);
            for (int64_t i = 0; i < ch; i++) {
                put(&g->body, "%s%g", i ? ", " : "", rand_val(r));
            }
            put(&g->body, "])");
        }
        put(&g->body, ")");
    }
}

static void gen_misc(struct gen *g) {
    struct rd *r = &g->r;
    int op = pick(r, 15);
    struct shp s = rand_shape(r, 0, MAXR);
    int dt = rand_dt(r, NUMS);
    switch (op) {
    case 0: { /* fill */
        int vdt = rand_dt(r, ANY4);
        struct shp t = rand_shape(r, 0, MAXR);
        if (chance(r, 50)) {
            result(g, vdt, t.rank, NULL);
            put(&g->body, " = fill(shape = ");
            int_vec(&g->body, t.d, t.rank);
        } else {
            int64_t vals[MAXR];
            for (int i = 0; i < t.rank; i++) {
                vals[i] = chance(r, 90) ? t.d[i] : range(r, -1, 4);
            }
            result(g, vdt, t.rank, t.d);
            put(&g->body, " = fill(shape = %s", add_int_input(g, vals, t.rank, false));
        }
        put(&g->body, ", value = ");
        lit(&g->body, vdt, rand_val(r));
        put(&g->body, ")");
        break;
    }
    case 1: { /* fill_like */
        int vdt = rand_dt(r, ANY4);
        const char *x = add_input(g, rand_dt(r, ANY4), &s);
        result(g, vdt, s.rank, NULL);
        put(&g->body, " = fill_like(ref_tensor = %s, value = ", x);
        lit(&g->body, vdt, rand_val(r));
        put(&g->body, ")");
        break;
    }
    case 2: { /* range_1d */
        int a = range(r, -8, 8), b = range(r, -8, 8), st = range(r, -3, 3);
        int rdt = rand_dt(r, NUMS);
        if (chance(r, 30)) {
            int64_t n = range(r, 0, 8), v = a;
            result(g, rdt, 1, &n);
            put(&g->body, " = range_1d(start = %s, end = ", add_int_input(g, &v, 1, true));
            lit(&g->body, rdt, b);
        } else {
            result(g, rdt, 1, NULL);
            put(&g->body, " = range_1d(start = ");
            lit(&g->body, rdt, a);
            put(&g->body, ", end = ");
            lit(&g->body, rdt, b);
        }
        put(&g->body, ", step = ");
        lit(&g->body, rdt, rdt == DT_I32 ? st : st * 0.5);
        put(&g->body, ")");
        break;
    }
    case 3: { /* band_part */
        int bdt = rand_dt(r, ANY4);
        const char *x = add_input(g, bdt, &s);
        result(g, bdt, s.rank, NULL);
        put(&g->body, " = band_part(x = %s, lower = int32(%d), upper = int32(%d))", x,
            range(r, -2, 3), range(r, -2, 3));
        break;
    }
    case 4: { /* one_hot */
        struct shp is = rand_shape(r, 0, 3);
        const char *ind = add_input(g, rand_dt(r, B(DT_I32)), &is);
        int odt = rand_dt(r, ANY4);
        int axis = range(r, -is.rank - 2, is.rank + 1);
        int64_t depth = range(r, 0, 4);
        if (chance(r, 30)) {
            struct shp os = { .rank = is.rank + 1 };
            int ax = axis < 0 ? axis + os.rank : axis;
            for (int i = 0, j = 0; i < os.rank; i++) {
                os.d[i] = i == ax ? depth : is.d[j++];
            }
            result(g, odt, os.rank, os.d);
            int64_t v = chance(r, 90) ? depth : depth + 1;
            put(&g->body, " = one_hot(indices = %s, one_hot_vector_size = %s", ind,
                add_int_input(g, &v, 1, true));
        } else {
            result(g, odt, is.rank + 1, NULL);
            put(&g->body, " = one_hot(indices = %s, one_hot_vector_size = int32(%lld)", ind,
                (long long)depth);
        }
        put(&g->body, ", axis = int32(%d), on_value = ", axis);
        lit(&g->body, odt, 1);
        put(&g->body, ", off_value = ");
        lit(&g->body, chance(r, 95) ? odt : DT_F32, 0);
        put(&g->body, ")");
        break;
    }
    case 5: { /* cumsum */
        const char *x = add_input(g, dt, &s);
        result(g, dt, s.rank, NULL);
        put(&g->body,
            " = cumsum(x = %s, axis = int32(%d), exclusive = bool(%s), reverse = "
            "bool(%s))",
            x, range(r, -MAXR, MAXR), chance(r, 50) ? "true" : "false",
            chance(r, 50) ? "true" : "false");
        break;
    }
    case 6: { /* shape */
        const char *x = add_input(g, rand_dt(r, ANY4), &s);
        result(g, DT_I32, 1, NULL);
        put(&g->body, " = shape(x = %s)", x);
        break;
    }
    case 7: { /* identity */
        int idt = rand_dt(r, ANY4);
        const char *x = add_input(g, idt, &s);
        result(g, idt, s.rank, NULL);
        put(&g->body, " = identity(x = %s)", x);
        break;
    }
    case 8: { /* non_zero */
        const char *x = add_input(g, rand_dt(r, ANY4), &s);
        int64_t d[2] = { range(r, 0, 4), s.rank };
        result(g, DT_I32, 2, d);
        put(&g->body, " = non_zero(x = %s)", x);
        break;
    }
    case 9: { /* argsort */
        const char *x = add_input(g, dt, &s);
        result(g, DT_I32, s.rank, NULL);
        put(&g->body, " = argsort(x = %s, axis = int32(%d), ascending = bool(%s))", x,
            range(r, -MAXR, MAXR), chance(r, 50) ? "true" : "false");
        break;
    }
    case 10: { /* topk */
        int tdt = rand_dt(r, NUMS | B(DT_I8) | B(DT_U16));
        const char *x = add_input(g, tdt, &s);
        bool idx = chance(r, 70);
        bool u16 = chance(r, 30);
        result(g, tdt, s.rank, NULL);
        if (idx) {
            result(g, u16 ? DT_U16 : DT_I32, s.rank, NULL);
        }
        put(&g->body, " = topk(x = %s, k = int32(%d), axis = int32(%d), ascending = bool(%s)", x,
            range(r, -1, 4), range(r, -MAXR, MAXR), chance(r, 50) ? "true" : "false");
        if (g->opset >= 6 && chance(r, 60)) {
            put(&g->body, ", sort = bool(%s), return_indices = bool(%s)",
                chance(r, 50) ? "true" : "false", idx ? "true" : "false");
        }
        if (g->opset >= 7 && u16) {
            put(&g->body, ", output_indices_dtype = string(\"uint16\")");
        }
        put(&g->body, ")");
        break;
    }
    case 11: { /* reverse */
        int rdt = rand_dt(r, ANY4);
        const char *x = add_input(g, rdt, &s);
        result(g, rdt, s.rank, NULL);
        put(&g->body, " = reverse(x = %s", x);
        if (chance(r, 70)) {
            int64_t axes[3];
            int n = range(r, 0, 2);
            for (int i = 0; i < n; i++) {
                axes[i] = range(r, -MAXR, MAXR - 1);
            }
            put(&g->body, ", axes = ");
            int_vec(&g->body, axes, n);
        }
        put(&g->body, ")");
        break;
    }
    case 12: { /* flatten2d */
        const char *x = add_input(g, dt, &s);
        result(g, dt, 2, NULL);
        put(&g->body, " = flatten2d(x = %s, axis = int32(%d))", x, range(r, -MAXR - 1, MAXR + 1));
        break;
    }
    case 13: { /* pad */
        static const char *const k_modes[] = { "constant", "reflect", "replicate", "edge" };
        int pdt = rand_dt(r, FLOATS);
        const char *x = add_input(g, pdt, &s);
        int n = chance(r, 90) ? range(r, 0, s.rank) : range(r, 0, MAXR + 1);
        int64_t p[2 * (MAXR + 1)];
        for (int i = 0; i < 2 * n; i++) {
            p[i] = chance(r, 95) ? range(r, 0, 2) : -1;
        }
        const char *mode = k_modes[chance(r, 90) ? pick(r, 3) : 3];
        if (chance(r, 30) && n == s.rank) {
            struct shp o = s;
            for (int i = 0; i < s.rank; i++) {
                o.d[i] += p[2 * i] + p[2 * i + 1];
            }
            result(g, pdt, s.rank, o.d);
            put(&g->body, " = pad(x = %s, pad = %s", x, add_int_input(g, p, 2 * n, false));
        } else {
            result(g, pdt, s.rank, NULL);
            put(&g->body, " = pad(x = %s, pad = ", x);
            int_vec(&g->body, p, 2 * n);
        }
        put(&g->body, ", mode = string(\"%s\"), constant_val = ", mode);
        lit(&g->body, pdt, rand_val(r));
        put(&g->body, ")");
        break;
    }
    default: { /* stack */
        int sdt = rand_dt(r, ANY4);
        int n = range(r, 1, 3);
        const char *names[3];
        for (int i = 0; i < n; i++) {
            struct shp t = chance(r, 95) ? s : rand_shape(r, 0, MAXR);
            names[i] = add_input(g, sdt, &t);
        }
        result(g, sdt, s.rank + 1, NULL);
        put(&g->body, " = stack(values = (");
        for (int i = 0; i < n; i++) {
            put(&g->body, "%s%s", i ? ", " : "", names[i]);
        }
        put(&g->body, "), axis = int32(%d))", range(r, -s.rank - 2, s.rank + 1));
        break;
    }
    }
}

/* ---- running ---- */

static size_t dt_size(int dt) {
    switch (dt) {
    case DT_F32:
    case DT_I32: return 4;
    case DT_F16:
    case DT_I16:
    case DT_U16: return 2;
    default: return 1;
    }
}

static int64_t numel(const struct shp *s) {
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++) {
        n *= s->d[i];
    }
    return n;
}

static bool same_outputs(struct anml_context *ctx, void **saved, const size_t *sizes, int n) {
    for (int i = 0; i < n; i++) {
        const char *name;
        struct anml_tensor t;
        if (anml_context_output_at(ctx, i, &name, &t) != ANML_OK) {
            return false;
        }
        size_t bytes = anml_tensor_nbytes(&t);
        if (bytes != sizes[i] || (bytes && memcmp(saved[i], t.data, bytes) != 0)) {
            return false;
        }
    }
    return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static struct gen g;
    memset(&g, 0, sizeof g);
    g.r = (struct rd){ data, size, 0 };
    g.opset = range(&g.r, 5, 8);
    int family = pick(&g.r, 5);
    if (family == 0) {
        gen_binary(&g);
    } else if (family == 1 || family == 2) {
        gen_unary(&g);
    } else if (family == 3) {
        gen_cast_select_channel(&g);
    } else {
        gen_misc(&g);
    }
    put(&g.body, "[name = string(\"op\")];\n");
    static struct text prog;
    memset(&prog, 0, sizeof prog);
    static const char *const k_tags[] = { "ios15", "ios16", "ios17", "ios18" };
    put(&prog, "program(1.3)\n{\n    func main<%s>(%s) {\n%s    } -> (", k_tags[g.opset - 5],
        g.sig.s, g.body.s);
    for (int i = 0; i < g.n_out; i++) {
        put(&prog, "%sr%d", i ? ", " : "", i);
    }
    put(&prog, ");\n}\n");
    if (prog.full || g.sig.full || g.body.full || g.n_in == 0) {
        return 0;
    }
    if (getenv("FUZZ_OPS_VERBOSE")) {
        fprintf(stderr, "%s", prog.s);
    }

    struct anml_error err;
    memset(&err, 0, sizeof err);
    struct anml_program *p = NULL;
    struct anml_context *ctx = NULL;
    if (anml_program_load_mil(prog.s, prog.n, NULL, &p, &err) != ANML_OK) {
        if (err.msg[0] == '\0') {
            abort(); /* every failure must say why */
        }
        return 0;
    }
    if (anml_context_create(p, NULL, &ctx, &err) != ANML_OK) {
        if (err.msg[0] == '\0') {
            abort();
        }
        anml_program_free(p);
        return 0;
    }
    /* input data: harness-chosen sizes, or raw bytes from the fuzz input */
    struct anml_named_tensor ins[MAXIN];
    void *bufs[MAXIN] = { 0 };
    for (int i = 0; i < g.n_in; i++) {
        struct input *in = &g.in[i];
        int64_t n = numel(&in->s);
        size_t bytes = (size_t)n * dt_size(in->dt);
        bufs[i] = calloc(bytes ? bytes : 1, 1);
        uint8_t *b = bufs[i];
        if (in->runtime_ints) {
            for (int64_t k = 0; k < n; k++) {
                int32_t v = (int32_t)in->ints[k];
                memcpy(b + 4 * k, &v, 4);
            }
        } else {
            for (size_t k = 0; k < bytes; k++) {
                b[k] = (uint8_t)byte(&g.r);
            }
            if (in->dt == DT_BOOL) {
                for (size_t k = 0; k < bytes; k++) {
                    b[k] &= 1;
                }
            }
        }
        memset(&ins[i], 0, sizeof ins[i]);
        ins[i].name = in->name;
        ins[i].tensor.dtype = k_dtype_enum[in->dt];
        ins[i].tensor.rank = in->s.rank;
        memcpy(ins[i].tensor.shape, in->s.d, sizeof(int64_t) * (size_t)in->s.rank);
        ins[i].tensor.data = bufs[i];
    }
    enum anml_status st1 = anml_context_run(ctx, ins, g.n_in, NULL);
    if (st1 != ANML_OK && anml_context_errmsg(ctx)[0] == '\0') {
        abort();
    }
    void *saved[4] = { 0 };
    size_t sizes[4] = { 0 };
    int n_out = anml_context_n_outputs(ctx);
    if (st1 == ANML_OK) {
        for (int i = 0; i < n_out && i < 4; i++) {
            const char *name;
            struct anml_tensor t;
            if (anml_context_output_at(ctx, i, &name, &t) == ANML_OK) {
                sizes[i] = anml_tensor_nbytes(&t);
                saved[i] = malloc(sizes[i] ? sizes[i] : 1);
                if (sizes[i]) {
                    memcpy(saved[i], t.data, sizes[i]);
                }
            }
        }
    }
    enum anml_status st2 = anml_context_run(ctx, ins, g.n_in, NULL);
    if (st1 != st2) {
        abort(); /* runs are deterministic */
    }
    if (st1 == ANML_OK && !same_outputs(ctx, saved, sizes, n_out < 4 ? n_out : 4)) {
        abort();
    }
    for (int i = 0; i < 4; i++) {
        free(saved[i]);
    }
    for (int i = 0; i < g.n_in; i++) {
        free(bufs[i]);
    }
    anml_context_free(ctx);
    anml_program_free(p);
    return 0;
}
