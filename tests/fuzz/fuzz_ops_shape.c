/* fuzz_ops_shape.c -- structure-aware libFuzzer target for the shape-manipulation ops
 * (src/ops/shape_ops.c). The input bytes choose an op and opset, the dtype and shape of x, the
 * op's constant parameters (axes, perms, shapes, strides, masks, split sizes, reps, ...), the
 * shapes of the other inputs, the declared result types and the values of runtime inputs (slice
 * bounds, gather/scatter indices, reshape shapes). Parameters are drawn mostly from their valid
 * ranges so that many programs plan and run, and sometimes from anywhere so that the checks are
 * exercised too. The harness writes a small MIL program, plans it with anml_context_create and,
 * when it plans, runs it twice. Failing is fine; a crash, a sanitizer report, a failure without
 * a message, or a second run that fails where the first succeeded is a bug.
 * Set FUZZ_OPS_VERBOSE=1 to see what each input became. */
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

/* ---- text output ---- */

struct buf {
    char s[16384];
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

/* ---- the program being generated ---- */

#define MAXR 4

struct shp {
    int rank;
    int64_t d[MAXR];
};

enum { IN_X = 0, IN_Y, IN_I, IN_J, N_IN };

struct gen {
    struct rd r;
    struct buf body;
    const char *dt; /* x and y */
    const char *it; /* i and j */
    struct shp s[N_IN];
    bool used[N_IN];
    /* planned values of the runtime int inputs i and j (when set, usually used) */
    bool planned[N_IN];
    int64_t val[N_IN][MAXR];
};

static const char *const k_in_names[N_IN] = { "x", "y", "i", "j" };

static struct shp rand_shape(struct rd *r, int min_rank, int max_rank) {
    struct shp s;
    s.rank = small(r, min_rank, max_rank);
    for (int i = 0; i < s.rank; i++) {
        s.d[i] = pick(r, 8) == 0 ? 0 : small(r, 1, 4);
    }
    return s;
}

/* An axis for a tensor of `rank`: usually valid (either sign), sometimes anything. */
static int rand_axis(struct gen *g, int rank) {
    if (rank > 0 && pick(&g->r, 8) != 0) {
        return small(&g->r, -rank, rank - 1);
    }
    return small(&g->r, -5, 5);
}

static int norm_axis(int a, int rank) {
    return a < 0 ? a + rank : a;
}

static void put_ivec(struct gen *g, const char *name, int k, const int *v) {
    put(&g->body,
        "    tensor<int32, [%d]> %s = const()[name = string(\"%s\"), val = tensor<int32, "
        "[%d]>([",
        k, name, name, k);
    for (int i = 0; i < k; i++) {
        put(&g->body, "%s%d", i ? ", " : "", v[i]);
    }
    put(&g->body, "])];\n");
}

static void put_bvec(struct gen *g, const char *name, int k, const bool *v) {
    put(&g->body,
        "    tensor<bool, [%d]> %s = const()[name = string(\"%s\"), val = tensor<bool, "
        "[%d]>([",
        k, name, name, k);
    for (int i = 0; i < k; i++) {
        put(&g->body, "%s%s", i ? ", " : "", v[i] ? "true" : "false");
    }
    put(&g->body, "])];\n");
}

static void put_int(struct gen *g, const char *name, int v) {
    put(&g->body, "    int32 %s = const()[name = string(\"%s\"), val = int32(%d)];\n", name, name,
        v);
}

static void put_bool(struct gen *g, const char *name, bool v) {
    put(&g->body, "    bool %s = const()[name = string(\"%s\"), val = bool(%s)];\n", name, name,
        v ? "true" : "false");
}

/* "    tensor<dt, [...]> name" for a result of rank `rank`. With dims (the harness's expectation)
 * those are usually written; without, '?' -- unless the shape depends on runtime values, which
 * needs concrete declared dims (then random ones). Sometimes the rank is off on purpose. */
static void put_result(struct gen *g, const char *name, int rank, const int64_t *dims,
                       bool runtime) {
    struct rd *r = &g->r;
    if (pick(r, 16) == 0 || rank < 0 || rank > MAXR + 2) {
        rank = small(r, 0, MAXR);
        dims = NULL;
    }
    put(&g->body, "    tensor<%s, [", g->dt);
    for (int i = 0; i < rank; i++) {
        if (dims && pick(r, 8) != 0) {
            put(&g->body, "%s%lld", i ? ", " : "", (long long)dims[i]);
        } else if (!runtime && pick(r, 8) != 0) {
            put(&g->body, "%s?", i ? ", " : "");
        } else {
            put(&g->body, "%s%d", i ? ", " : "", small(r, 0, 4));
        }
    }
    put(&g->body, "]> %s", name);
}

/* ---- per-op generators ---- */

static void gen_reshape(struct gen *g) {
    struct rd *r = &g->r;
    const struct shp *x = &g->s[IN_X];
    int k = x->rank, v[MAXR];
    int64_t dims[MAXR];
    bool runtime = pick(r, 3) == 0;
    /* x's dims, merged or split a little, one of them maybe -1 or 0 */
    for (int i = 0; i < k; i++) {
        v[i] = (int)x->d[i];
        dims[i] = x->d[i];
    }
    if (k >= 2 && pick(r, 2)) { /* merge the last two */
        v[k - 2] *= v[k - 1];
        dims[k - 2] = v[k - 2];
        k--;
    }
    if (k > 0 && pick(r, 3) == 0) {
        v[pick(r, k)] = pick(r, 2) ? -1 : 0;
    }
    if (pick(r, 8) == 0) {
        k = small(r, 1, MAXR);
        for (int i = 0; i < k; i++) {
            v[i] = small(r, -2, 6);
        }
    }
    if (runtime) {
        g->s[IN_I].rank = 1;
        g->s[IN_I].d[0] = k;
        g->used[IN_I] = true;
        g->planned[IN_I] = true;
        for (int i = 0; i < k; i++) {
            g->val[IN_I][i] = v[i];
        }
    } else {
        put_ivec(g, "s", k, v);
    }
    put_result(g, "z", k, dims, runtime);
    put(&g->body, " = reshape(x = x, shape = %s)[name = string(\"op\")];\n", runtime ? "i" : "s");
}

static void gen_axes_op(struct gen *g, int op) { /* expand_dims, squeeze, transpose, tile */
    struct rd *r = &g->r;
    const struct shp *x = &g->s[IN_X];
    int rk = x->rank, k, v[MAXR + 2];
    int64_t dims[MAXR + 2];
    int orank = rk;
    bool bare = false;
    switch (op) {
    case 1: /* expand_dims */
        k = small(r, 0, 2);
        for (int i = 0; i < k; i++) {
            v[i] = rand_axis(g, rk + k);
        }
        orank = rk + k;
        put_ivec(g, "p", k, v);
        put_result(g, "z", orank, NULL, false);
        put(&g->body, " = expand_dims(x = x, axes = p)[name = string(\"op\")];\n");
        return;
    case 2: { /* squeeze */
        bool drop[MAXR] = { false };
        k = small(r, 0, 2);
        bare = pick(r, 2);
        for (int i = 0; i < k; i++) {
            v[i] = rand_axis(g, rk);
            int a = norm_axis(v[i], rk);
            if (a >= 0 && a < rk && x->d[a] == 1) {
                drop[a] = true;
            }
        }
        for (int a = 0; a < rk; a++) {
            drop[a] = bare ? x->d[a] == 1 : drop[a];
            orank -= drop[a];
        }
        if (!bare) {
            put_ivec(g, "p", k, v);
        }
        put_result(g, "z", orank, NULL, false);
        if (bare) {
            put(&g->body, " = squeeze(x = x)[name = string(\"op\")];\n");
        } else {
            put(&g->body, " = squeeze(x = x, axes = p)[name = string(\"op\")];\n");
        }
        return;
    }
    case 3: /* transpose: a permutation, sometimes broken */
        k = rk;
        for (int i = 0; i < k; i++) {
            v[i] = i;
        }
        for (int i = k - 1; i > 0; i--) {
            int j = pick(r, i + 1), t = v[i];
            v[i] = v[j];
            v[j] = t;
        }
        for (int i = 0; i < k; i++) {
            dims[i] = x->d[v[i]];
            if (pick(r, 4) == 0) {
                v[i] -= rk;
            }
        }
        if (k > 0 && pick(r, 10) == 0) {
            v[pick(r, k)] = small(r, -5, 5);
        }
        put_ivec(g, "p", k, v);
        put_result(g, "z", rk, dims, false);
        put(&g->body, " = transpose(x = x, perm = p)[name = string(\"op\")];\n");
        return;
    default: /* tile */
        k = rk + (pick(r, 6) == 0);
        for (int i = 0; i < k; i++) {
            v[i] = pick(r, 8) == 0 ? small(r, -1, 9) : small(r, 0, 3);
        }
        put_ivec(g, "p", k, v);
        put_result(g, "z", k, NULL, false);
        put(&g->body, " = tile(x = x, reps = p)[name = string(\"op\")];\n");
        return;
    }
}

static void gen_concat(struct gen *g) {
    struct rd *r = &g->r;
    const struct shp *x = &g->s[IN_X];
    int ax = rand_axis(g, x->rank), a = norm_axis(ax, x->rank);
    bool il = pick(r, 3) == 0;
    g->s[IN_Y] = *x;
    if (!il && a >= 0 && a < x->rank) {
        g->s[IN_Y].d[a] = small(r, 0, 4);
    }
    g->used[IN_Y] = true;
    int n = small(r, 1, 3);
    put_int(g, "ax", ax);
    put_bool(g, "il", il);
    put_result(g, "z", x->rank, NULL, false);
    put(&g->body,
        " = concat(values = (x%s%s), axis = ax, interleave = il)[name = string(\"op\")];\n",
        n > 1 ? ", y" : "", n > 2 ? ", x" : "");
}

static void gen_split(struct gen *g) {
    struct rd *r = &g->r;
    const struct shp *x = &g->s[IN_X];
    int ax = rand_axis(g, x->rank), a = norm_axis(ax, x->rank);
    int64_t d = a >= 0 && a < x->rank ? x->d[a] : 3;
    int n = small(r, 1, 3), sizes[3];
    bool use_sizes = pick(r, 2);
    int64_t left = d;
    for (int i = 0; i < n; i++) { /* a partition of d */
        sizes[i] = i + 1 < n ? small(r, 0, (int)left) : (int)left;
        left -= sizes[i];
    }
    if (pick(r, 8) == 0) {
        sizes[pick(r, n)] += small(r, -2, 2);
    }
    put_int(g, "ax", ax);
    if (use_sizes) {
        put_ivec(g, "ss", n, sizes);
    } else {
        put_int(g, "ns", pick(r, 8) == 0 ? small(r, -1, 4) : n);
    }
    for (int i = 0; i < n; i++) {
        char nm[8];
        snprintf(nm, sizeof nm, "z%d", i);
        if (i > 0) {
            put(&g->body, ",");
        }
        put_result(g, nm, x->rank, NULL, false);
    }
    put(&g->body, " = split(x = x, axis = ax, %s)[name = string(\"op\")];\n",
        use_sizes ? "split_sizes = ss" : "num_splits = ns");
}

static void gen_sliding_windows(struct gen *g) {
    struct rd *r = &g->r;
    const struct shp *x = &g->s[IN_X];
    int ax = rand_axis(g, x->rank), a = norm_axis(ax, x->rank);
    int d = a >= 0 && a < x->rank ? (int)x->d[a] : 3;
    put_int(g, "ax", ax);
    put_int(g, "sz", pick(r, 8) == 0 ? small(r, -1, 6) : small(r, 1, d));
    put_int(g, "st", small(r, pick(r, 8) == 0 ? -1 : 1, 3));
    put_result(g, "z", x->rank + 1, NULL, false);
    put(&g->body, " = sliding_windows(x = x, axis = ax, size = sz, stride = st)[name = "
                  "string(\"op\")];\n");
}

/* slice_by_index (update = false) and slice_update: per axis either a consistent Python slice
 * (whose length the harness knows) or random bounds, strides and masks. */
static void gen_slice(struct gen *g, bool update) {
    struct rd *r = &g->r;
    const struct shp *x = &g->s[IN_X];
    int k = pick(r, 10) == 0 ? small(r, 0, MAXR) : x->rank;
    int b[MAXR], e[MAXR], s[MAXR];
    bool bm[MAXR], em[MAXR], sq[MAXR];
    int64_t dims[MAXR];
    int orank = 0;
    bool runtime = pick(r, 2);
    for (int i = 0; i < k; i++) {
        int d = i < x->rank ? (int)x->d[i] : 2;
        bm[i] = em[i] = sq[i] = false;
        if (pick(r, 4) != 0) { /* a plain slice of known length */
            b[i] = small(r, 0, d);
            int len = small(r, 0, d - b[i]);
            e[i] = b[i] + len;
            s[i] = 1;
            if (d > 0 && b[i] < d && pick(r, 6) == 0) {
                sq[i] = true;
                continue;
            }
            if (b[i] < d && pick(r, 4) == 0) { /* the same slice with negative indices */
                b[i] -= d;
                e[i] = e[i] == d ? e[i] : e[i] - d;
            }
            dims[orank++] = len;
        } else {
            b[i] = small(r, -6, 6);
            e[i] = small(r, -6, 6);
            s[i] = small(r, -3, 3);
            bm[i] = pick(r, 3) == 0;
            em[i] = pick(r, 3) == 0;
            sq[i] = pick(r, 5) == 0;
            if (!sq[i]) {
                dims[orank++] = small(r, 0, d);
            }
        }
    }
    if (runtime) {
        g->s[IN_I].rank = g->s[IN_J].rank = 1;
        g->s[IN_I].d[0] = g->s[IN_J].d[0] = k;
        g->used[IN_I] = g->used[IN_J] = true;
        g->planned[IN_I] = g->planned[IN_J] = true;
        for (int i = 0; i < k; i++) {
            g->val[IN_I][i] = b[i];
            g->val[IN_J][i] = e[i];
        }
    } else {
        put_ivec(g, "b", k, b);
        put_ivec(g, "e", k, e);
    }
    bool has_stride = pick(r, 3) != 0;
    if (has_stride) {
        put_ivec(g, "s", k, s);
    }
    put_bvec(g, "bm", k, bm);
    put_bvec(g, "em", k, em);
    put_bvec(g, "sq", k, sq);
    if (update) {
        g->s[IN_Y].rank = orank;
        for (int i = 0; i < orank; i++) {
            g->s[IN_Y].d[i] = dims[i];
        }
        if (pick(r, 10) == 0) {
            g->s[IN_Y] = rand_shape(r, 0, MAXR);
        }
        g->used[IN_Y] = true;
        put_result(g, "z", x->rank, x->d, false);
    } else {
        put_result(g, "z", orank, dims, runtime);
    }
    put(&g->body,
        " = %s(x = x, %sbegin = %s, end = %s, %sbegin_mask = bm, end_mask = em, "
        "squeeze_mask = sq)[name = string(\"op\")];\n",
        update ? "slice_update" : "slice_by_index", update ? "update = y, " : "",
        runtime ? "i" : "b", runtime ? "j" : "e", has_stride ? "stride = s, " : "");
}

static void gen_slice_by_size(struct gen *g) {
    struct rd *r = &g->r;
    const struct shp *x = &g->s[IN_X];
    int k = x->rank, b[MAXR] = { 0 }, sz[MAXR] = { 0 };
    int64_t dims[MAXR] = { 0 };
    bool runtime = pick(r, 3) == 0;
    for (int i = 0; i < k; i++) {
        int d = (int)x->d[i];
        b[i] = small(r, 0, d);
        sz[i] = small(r, 0, d - b[i]);
        dims[i] = sz[i];
        if (pick(r, 4) == 0) {
            sz[i] = -1;
            dims[i] = d - b[i];
        }
        if (b[i] < d && pick(r, 4) == 0) {
            b[i] -= d;
        }
        if (pick(r, 12) == 0) {
            b[i] += small(r, -3, 3);
        }
    }
    if (runtime) {
        g->s[IN_I].rank = 1;
        g->s[IN_I].d[0] = k;
        g->used[IN_I] = true;
        g->planned[IN_I] = true;
        for (int i = 0; i < k; i++) {
            g->val[IN_I][i] = b[i];
        }
    } else {
        put_ivec(g, "b", k, b);
    }
    put_ivec(g, "sz", k, sz);
    put_result(g, "z", k, dims, runtime);
    put(&g->body, " = slice_by_size(x = x, begin = %s, size = sz)[name = string(\"op\")];\n",
        runtime ? "i" : "b");
}

static void gen_gather(struct gen *g, int op) {
    struct rd *r = &g->r;
    const struct shp *x = &g->s[IN_X];
    int rk = x->rank;
    int ax = rand_axis(g, rk), a = norm_axis(ax, rk);
    int bd = pick(r, 6) == 0 ? small(r, -1, 2) : 0;
    struct shp *ix = &g->s[IN_I];
    g->used[IN_I] = true;
    int orank;
    if (op == 11) { /* gather */
        *ix = rand_shape(r, 0, 2);
        if (bd > 0 && pick(r, 2)) {
            for (int i = 0; i < bd && i < ix->rank && i < rk; i++) {
                ix->d[i] = x->d[i];
            }
        }
        orank = rk - 1 + ix->rank - (bd < 0 ? bd + ix->rank : bd);
        put_int(g, "ax", ax);
        put_int(g, "bd", bd);
        put_bool(g, "v", pick(r, 4) == 0);
        put_result(g, "z", orank, NULL, false);
        put(&g->body, " = gather(x = x, indices = i, axis = ax, batch_dims = bd, "
                      "validate_indices = v)[name = string(\"op\")];\n");
    } else if (op == 12) { /* gather_along_axis */
        *ix = *x;
        if (a >= 0 && a < rk) {
            ix->d[a] = small(r, 0, 4);
        }
        put_int(g, "ax", ax);
        put_bool(g, "v", pick(r, 4) == 0);
        put_result(g, "z", ix->rank, ix->d, false);
        put(&g->body, " = gather_along_axis(x = x, indices = i, axis = ax, validate_indices = "
                      "v)[name = string(\"op\")];\n");
    } else { /* gather_nd */
        *ix = rand_shape(r, 1, 3);
        ix->d[ix->rank - 1] = small(r, 1, rk > 0 ? rk : 1);
        if (bd > 0 && pick(r, 2)) {
            for (int i = 0; i < bd && i < ix->rank - 1 && i < rk; i++) {
                ix->d[i] = x->d[i];
            }
        }
        orank = ix->rank - 1 + rk - bd - (int)ix->d[ix->rank - 1];
        put_int(g, "bd", bd);
        put_result(g, "z", orank, NULL, false);
        put(&g->body,
            " = gather_nd(x = x, indices = i, batch_dims = bd)[name = string(\"op\")];\n");
    }
}

static void gen_scatter(struct gen *g, int op) {
    static const char *const modes[] = { "update", "add", "sub", "mul", "div", "max", "min" };
    struct rd *r = &g->r;
    const struct shp *x = &g->s[IN_X];
    int rk = x->rank;
    int ax = rand_axis(g, rk), a = norm_axis(ax, rk);
    struct shp *ix = &g->s[IN_I], *u = &g->s[IN_Y];
    g->used[IN_I] = g->used[IN_Y] = true;
    if (op == 14) { /* scatter: updates = x[:a] + i + x[a+1:] */
        *ix = rand_shape(r, 0, 2);
        u->rank = 0;
        for (int i = 0; i < rk && u->rank < MAXR; i++) {
            if (i == a) {
                for (int j = 0; j < ix->rank && u->rank < MAXR; j++) {
                    u->d[u->rank++] = ix->d[j];
                }
            } else {
                u->d[u->rank++] = x->d[i];
            }
        }
    } else if (op == 15) { /* scatter_along_axis */
        *ix = *x;
        if (a >= 0 && a < rk) {
            ix->d[a] = small(r, 0, 4);
        }
        *u = *ix;
    } else { /* scatter_nd: updates = i[:-1] + x[k:] */
        *ix = rand_shape(r, 1, 3);
        int k = small(r, 1, rk > 0 ? rk : 1);
        ix->d[ix->rank - 1] = k;
        u->rank = 0;
        for (int j = 0; j < ix->rank - 1; j++) {
            u->d[u->rank++] = ix->d[j];
        }
        for (int i = k; i < rk && u->rank < MAXR; i++) {
            u->d[u->rank++] = x->d[i];
        }
    }
    if (pick(r, 10) == 0) {
        *u = rand_shape(r, 0, MAXR);
    }
    put_int(g, "ax", ax);
    put(&g->body, "    string m = const()[name = string(\"m\"), val = string(\"%s\")];\n",
        modes[pick(r, 7)]);
    put_bool(g, "v", pick(r, 4) == 0);
    put_result(g, "z", rk, x->d, false);
    put(&g->body,
        " = %s(data = x, indices = i, updates = y, %smode = m, validate_indices = "
        "v)[name = string(\"op\")];\n",
        op == 14   ? "scatter"
        : op == 15 ? "scatter_along_axis"
                   : "scatter_nd",
        op == 16 ? "" : "axis = ax, ");
}

static void gen_reshape_like(struct gen *g) {
    struct rd *r = &g->r;
    int bg[2], en[2], orank = 0;
    bool ms[2];
    g->used[IN_Y] = g->used[IN_I] = true;
    for (int q = 0; q < 2; q++) {
        int rr = g->s[q == 0 ? IN_Y : IN_I].rank;
        bg[q] = small(r, -rr, rr);
        en[q] = small(r, -rr, rr);
        ms[q] = pick(r, 3) == 0;
        int lo = norm_axis(bg[q], rr), hi = ms[q] ? rr : norm_axis(en[q], rr);
        orank += hi > lo ? hi - lo : 0;
    }
    put_ivec(g, "bg", 2, bg);
    put_ivec(g, "en", 2, en);
    put_bvec(g, "ms", 2, ms);
    put_result(g, "z", orank, NULL, false);
    put(&g->body, " = reshape_like(x = x, ref_tensors = (y, i), begins = bg, ends = en, "
                  "end_masks = ms)[name = string(\"op\")];\n");
}

/* ---- the harness ---- */

static const char *const k_dtypes[] = { "fp32", "fp16", "int32", "bool", "int8" };
static const enum anml_dtype k_dt[] = { ANML_DTYPE_F32, ANML_DTYPE_F16, ANML_DTYPE_INT32,
                                        ANML_DTYPE_BOOL, ANML_DTYPE_INT8 };
static const size_t k_esz[] = { 4, 2, 4, 1, 1 };
static const char *const k_itypes[] = { "int32", "int16", "int8", "uint16", "uint8" };
static const enum anml_dtype k_it[] = { ANML_DTYPE_INT32, ANML_DTYPE_INT16, ANML_DTYPE_INT8,
                                        ANML_DTYPE_UINT16, ANML_DTYPE_UINT8 };
static const size_t k_iesz[] = { 4, 2, 1, 2, 1 };
static const char *const k_ops[] = {
    "reshape",
    "expand_dims",
    "squeeze",
    "transpose",
    "concat",
    "split",
    "tile",
    "sliding_windows",
    "slice_by_index",
    "slice_by_size",
    "slice_update",
    "gather",
    "gather_along_axis",
    "gather_nd",
    "scatter",
    "scatter_along_axis",
    "scatter_nd",
    "reshape_like",
};
#define N_OPS ((int)(sizeof k_ops / sizeof k_ops[0]))
static const char *const k_opsets[] = { "ios15", "ios16", "ios17", "ios18" };

static struct gen g_gen;
static struct buf g_prog;
static uint8_t g_data[N_IN][4096];

/* Writes little-endian integer v into an element of esz bytes. */
static void store_int(uint8_t *dst, size_t esz, int64_t v) {
    for (size_t q = 0; q < esz; q++) {
        dst[q] = (uint8_t)((uint64_t)v >> (8 * q));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct gen *g = &g_gen;
    memset(g, 0, sizeof *g);
    g->r = (struct rd){ data, size, 0 };
    struct rd *r = &g->r;
    int op = pick(r, N_OPS);
    const char *opset = k_opsets[pick(r, 4)];
    int ti = pick(r, 5), ii = pick(r, 3) ? 0 : pick(r, 5);
    g->dt = k_dtypes[ti];
    g->it = k_itypes[ii];
    g->s[IN_X] = rand_shape(r, 1, MAXR);
    g->s[IN_Y] = rand_shape(r, 0, MAXR);
    g->s[IN_I] = rand_shape(r, 0, 2);
    g->s[IN_J] = g->s[IN_I];
    g->used[IN_X] = true;
    switch (op) {
    case 0: gen_reshape(g); break;
    case 1:
    case 2:
    case 3:
    case 6: gen_axes_op(g, op); break;
    case 4: gen_concat(g); break;
    case 5: gen_split(g); break;
    case 7: gen_sliding_windows(g); break;
    case 8: gen_slice(g, false); break;
    case 9: gen_slice_by_size(g); break;
    case 10: gen_slice(g, true); break;
    case 11:
    case 12:
    case 13: gen_gather(g, op); break;
    case 14:
    case 15:
    case 16: gen_scatter(g, op); break;
    default: gen_reshape_like(g); break;
    }
    if (pick(r, 16) == 0) { /* chaos: another shape for one of the other inputs */
        int k = small(r, IN_Y, IN_J);
        g->s[k] = rand_shape(r, 0, MAXR);
    }

    struct buf *b = &g_prog;
    b->n = 0;
    b->full = false;
    put(b, "program(1.3)\n{\n  func main<%s>(", opset);
    bool first = true;
    for (int k = 0; k < N_IN; k++) {
        if (!g->used[k]) {
            continue;
        }
        put(b, "%stensor<%s, [", first ? "" : ", ", k < IN_I ? g->dt : g->it);
        for (int d = 0; d < g->s[k].rank; d++) {
            put(b, "%s%lld", d ? ", " : "", (long long)g->s[k].d[d]);
        }
        put(b, "]> %s", k_in_names[k]);
        first = false;
    }
    put(b, ") {\n%s  } -> (%s);\n}\n", g->body.s, op == 5 ? "z0" : "z");
    if (b->full || g->body.full) {
        return 0;
    }

    struct anml_program *prog = NULL;
    struct anml_context *ctx = NULL;
    struct anml_error err;
    memset(&err, 0, sizeof err);
    enum anml_status st = anml_program_load_mil(b->s, b->n, NULL, &prog, &err);
    if (st == ANML_OK) {
        st = anml_context_create(prog, NULL, &ctx, &err);
    }
    if (st != ANML_OK && err.msg[0] == '\0') {
        abort(); /* every failure must say why */
    }
    bool verbose = getenv("FUZZ_OPS_VERBOSE") != NULL;
    if (verbose) {
        fprintf(stderr, "%s: %s %s\n", k_ops[op], st == ANML_OK ? "planned" : "rejected",
                st == ANML_OK ? "" : err.msg);
    }
    if (st == ANML_OK) {
        struct anml_named_tensor nt[N_IN];
        int n = 0;
        for (int k = 0; k < N_IN; k++) {
            if (!g->used[k]) {
                continue;
            }
            size_t esz = k < IN_I ? k_esz[ti] : k_iesz[ii];
            memset(&nt[n], 0, sizeof nt[n]);
            nt[n].name = k_in_names[k];
            nt[n].tensor.dtype = k < IN_I ? k_dt[ti] : k_it[ii];
            nt[n].tensor.rank = g->s[k].rank;
            size_t numel = 1;
            for (int d = 0; d < g->s[k].rank; d++) {
                nt[n].tensor.shape[d] = g->s[k].d[d];
                numel *= (size_t)g->s[k].d[d];
            }
            bool planned = g->planned[k] && pick(r, 6) != 0;
            for (size_t e = 0; e < numel && (e + 1) * esz <= sizeof g_data[k]; e++) {
                uint8_t *dst = g_data[k] + e * esz;
                if (k >= IN_I) { /* small ints around the valid range */
                    int64_t v = planned && e < MAXR ? g->val[k][e] : (int)(next(r) % 15) - 7;
                    store_int(dst, esz, v);
                } else if (nt[n].tensor.dtype == ANML_DTYPE_BOOL) {
                    dst[0] = (uint8_t)(next(r) & 1);
                } else {
                    for (size_t q = 0; q < esz; q++) {
                        dst[q] = (uint8_t)next(r);
                    }
                }
            }
            nt[n].tensor.data = g_data[k];
            n++;
        }
        st = anml_context_run(ctx, nt, n, NULL);
        if (st != ANML_OK && anml_context_errmsg(ctx)[0] == '\0') {
            abort();
        }
        if (verbose) {
            fprintf(stderr, "%s: run %s %s\n", k_ops[op], st == ANML_OK ? "ok" : "failed",
                    st == ANML_OK ? "" : anml_context_errmsg(ctx));
        }
        if (st == ANML_OK && anml_context_run(ctx, nt, n, NULL) != ANML_OK) {
            abort(); /* the same inputs must run again */
        }
    }
    anml_context_free(ctx);
    anml_program_free(prog);
    return 0;
}
