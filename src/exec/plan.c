/*
 * plan.c -- turns one function of a program into a runnable plan (exec.h): a value table for
 * every SSA name, constants bound in place (blob data straight from the mmap, LUT weights kept
 * compressed for the ops that accept them), shape inference through each op's `infer` hook
 * checked against the types declared in the file, and one activation arena in which values
 * whose lives do not overlap share memory.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coreml/blob.h"
#include "coreml/constexpr.h"
#include "exec/plan_internal.h"

#define EX_ALIGN 64

/* ---- small owned-memory helpers ---- */

static void *plan_own(struct ex_plan *p, size_t n) {
    if (p->n_owned == p->cap_owned) {
        int32_t cap = p->cap_owned ? p->cap_owned * 2 : 16;
        void **o = anml__realloc(p->owned, (size_t)cap * sizeof(void *));
        if (!o) {
            return NULL;
        }
        p->owned = o;
        p->cap_owned = cap;
    }
    void *m = anml__calloc(1, n ? n : 1);
    if (m) {
        p->owned[p->n_owned++] = m;
    }
    return m;
}

/* ---- value table with a name index ---- */

static uint32_t hash_str(const char *s) {
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h = (h ^ (uint8_t)*s) * 16777619u;
    }
    return h;
}

static int32_t value_find(const struct ex_plan *p, const char *name) {
    if (!p->hash_cap) {
        return -1;
    }
    for (uint32_t i = hash_str(name) & (p->hash_cap - 1);; i = (i + 1) & (p->hash_cap - 1)) {
        int32_t v = p->hash[i];
        if (v < 0) {
            return -1;
        }
        if (p->values[v].name && strcmp(p->values[v].name, name) == 0) {
            return v;
        }
    }
}

static bool hash_insert(struct ex_plan *p, int32_t v) {
    if ((uint32_t)(p->n_values + 1) * 2 > p->hash_cap) {
        uint32_t cap = p->hash_cap ? p->hash_cap * 2 : 256;
        int32_t *h = anml__malloc((size_t)cap * sizeof(int32_t));
        if (!h) {
            return false;
        }
        memset(h, 0xff, (size_t)cap * sizeof(int32_t));
        anml__free(p->hash);
        p->hash = h;
        p->hash_cap = cap;
        for (int32_t i = 0; i < p->n_values; i++) {
            if (i != v && p->values[i].name && p->values[i].name[0] != '<') {
                uint32_t j = hash_str(p->values[i].name) & (cap - 1);
                while (h[j] >= 0) {
                    j = (j + 1) & (cap - 1);
                }
                h[j] = i;
            }
        }
    }
    uint32_t j = hash_str(p->values[v].name) & (p->hash_cap - 1);
    while (p->hash[j] >= 0) {
        j = (j + 1) & (p->hash_cap - 1);
    }
    p->hash[j] = v;
    return true;
}

/* Adds a value; named values ("<...>" names are anonymous) become findable. Returns its index or
 * -1 when out of memory. The values array may move: never hold pointers across this call. */
static int32_t value_add(struct ex_plan *p, const char *name, enum ex_value_kind kind) {
    if (p->n_values == p->cap_values) {
        int32_t cap = p->cap_values ? p->cap_values * 2 : 256;
        struct ex_tensor *v = anml__realloc(p->values, (size_t)cap * sizeof *v);
        if (!v) {
            return -1;
        }
        p->values = v;
        p->cap_values = cap;
    }
    int32_t idx = p->n_values;
    memset(&p->values[idx], 0, sizeof p->values[idx]);
    p->values[idx].name = name;
    p->values[idx].kind = kind;
    if (name[0] != '<' && !hash_insert(p, idx)) {
        return -1;
    }
    p->n_values++;
    return idx;
}

/* ---- errors ---- */

static enum anml_status op_err(struct anml_error *err, const struct mil_op *op,
                               enum anml_status code, const char *fmt, ...) ANML_PRINTF(4, 5);
static enum anml_status op_err(struct anml_error *err, const struct mil_op *op,
                               enum anml_status code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    enum anml_status st = anml__op_verr(err, op, code, fmt, ap);
    va_end(ap);
    return st;
}

/* ---- constants ---- */

static enum anml_status set_from_type(struct ex_tensor *t, const struct mil_type *ty,
                                      struct anml_error *err, const char *what) {
    if (ty->kind != MIL_TYPE_TENSOR || ty->rank < 0 || ty->rank > EX_MAX_DIMS) {
        return anml__err(err, ANML_E_UNSUPPORTED, NULL, "%s: not a tensor of rank <= %d", what,
                         EX_MAX_DIMS);
    }
    int64_t numel;
    if (!anml__shape_numel(ty->dims, ty->rank, &numel)) {
        return anml__err(err, ANML_E_SHAPE, NULL, "%s: shape has unknown dims or overflows", what);
    }
    ex_set_shape(t, ty->dtype, ty->rank, ty->dims);
    return ANML_OK;
}

/* Binds a literal (immediate or blob) to value v. */
static enum anml_status bind_literal(struct ex_plan *p, int32_t v, const struct mil_value *val,
                                     struct anml_error *err) {
    if (val->kind != MIL_VALUE_TENSOR && val->kind != MIL_VALUE_BLOB) {
        return anml__err(err, ANML_E_UNSUPPORTED, NULL,
                         "'%s': tuple/list/dict literals are not supported as op inputs",
                         p->values[v].name);
    }
    enum anml_status st = set_from_type(&p->values[v], val->type, err, p->values[v].name);
    if (st != ANML_OK) {
        return st;
    }
    struct ex_tensor *t = &p->values[v];
    if (val->kind == MIL_VALUE_TENSOR) {
        if (t->dtype == ANML_DTYPE_STRING) {
            t->strings = (char **)val->data;
        } else {
            t->data = val->data;
        }
        return ANML_OK;
    }
    struct mil_blob_view view;
    st = anml__blob_resolve(p->prog->blobs, val, &view, err);
    if (st != ANML_OK) {
        return st;
    }
    if (!anml__dtype_is_subbyte(view.dtype)) {
        t->data = (void *)(uintptr_t)view.data; /* read-only: ops never write constants */
        return ANML_OK;
    }
    uint8_t *d = plan_own(p, (size_t)view.n_elem);
    if (!d) {
        return anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
    }
    anml__subbyte_unpack(view.dtype, view.data, view.n_elem, d);
    t->data = d;
    return ANML_OK;
}

/* A constexpr op: LUT weights stay compressed; everything else is materialized once. */
static enum anml_status plan_constexpr(struct ex_plan *p, const struct mil_op *op,
                                       struct anml_error *err) {
    for (int32_t r = 0; r < op->n_results; r++) {
        int32_t v = value_add(p, op->results[r].name, EX_VALUE_CONST);
        if (v < 0) {
            return anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
        }
        enum anml_status st =
            set_from_type(&p->values[v], op->results[r].type, err, op->results[r].name);
        if (st != ANML_OK) {
            return st;
        }
        if (r == 0 && strcmp(op->type, "constexpr_lut_to_dense") == 0) {
            struct anml_lut_weight *w = anml__arena_alloc(p->arena, sizeof *w);
            if (!w) {
                return anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
            }
            struct anml_error lerr = { 0 };
            st = anml__constexpr_lut_from_op(p->prog, op, w, &lerr);
            if (st == ANML_OK) {
                p->values[v].lut = w;
                continue;
            }
            if (st != ANML_E_UNSUPPORTED) { /* e.g. a table computed by another constexpr op */
                if (err) {
                    *err = lerr;
                }
                return st;
            }
        }
        size_t bytes = (size_t)p->values[v].numel * anml__dtype_size(p->values[v].dtype);
        void *d = plan_own(p, bytes);
        if (!d) {
            return anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
        }
        st = anml__constexpr_materialize_result(p->prog, op, r, d, bytes, err);
        if (st != ANML_OK) {
            return st;
        }
        p->values[v].data = d;
    }
    return ANML_OK;
}

/* A dense copy of a compressed LUT value, for consumers that do not accept LUT weights. The copy
 * is a new anonymous value, made once per LUT value (dense_of caches it). */
static int32_t densify(struct ex_plan *p, int32_t v, int32_t *dense_of, struct anml_error *err) {
    if (dense_of[v] >= 0) {
        return dense_of[v];
    }
    const struct anml_lut_weight *w = p->values[v].lut;
    size_t bytes = (size_t)w->numel * anml__dtype_size(w->out_dtype);
    void *d = plan_own(p, bytes);
    if (!d) {
        anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
        return -1;
    }
    anml__lut_decode_raw(w, 0, w->numel, d);
    int32_t nv = value_add(p, "<dense>", EX_VALUE_CONST);
    if (nv < 0) {
        anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
        return -1;
    }
    struct ex_tensor *t = &p->values[nv];
    ex_set_shape(t, w->out_dtype, w->rank, w->shape);
    t->data = d;
    dense_of[v] = nv;
    return nv;
}

static bool lut_arg_ok(const struct ex_opdef *def, const char *arg) {
    if (!def->lut_args) {
        return false;
    }
    size_t n = strlen(arg);
    for (const char *s = def->lut_args; *s;) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == n && strncmp(s, arg, n) == 0) {
            return true;
        }
        if (!e) {
            break;
        }
        s = e + 1;
    }
    return false;
}

/* ---- state aliasing ----
 * ANEMLL reads the whole KV cache (read_state), writes one slot (slice_update of that copy), writes
 * the result back (write_state) and reads it again, for every layer: copied naively, that is
 * several state-sized copies per layer per token. Two rewrites keep the semantics and remove the
 * copies:
 *  1. A read_state result whose whole life sees no write to that state is the state buffer itself.
 *  2. A slice_update whose `x` is such an alias and dies there, and whose result feeds exactly one
 *     write_state to the same state with no access to the state in between, updates the state
 *     buffer in place (the write_state then finds data == state and copies nothing).
 * Aliased values get no arena memory; the run binds them to the state's buffer. */

static bool is_op(const struct ex_step *st, const char *type) {
    return strcmp(st->op->type, type) == 0;
}

static bool step_uses(const struct ex_step *st, int32_t v) {
    for (int32_t a = 0; a < st->n_args; a++) {
        for (int32_t b = 0; b < st->args[a].n; b++) {
            if (st->args[a].vals[b] == v) {
                return true;
            }
        }
    }
    return false;
}

/* Does step st touch state value s (read, write or update)? */
static bool step_touches_state(const struct ex_step *st, int32_t s) {
    return st->state_val == s;
}

static enum anml_status plan_aliases(struct ex_plan *p, const int32_t *last_use,
                                     struct anml_error *err) {
    int32_t *alias_of = anml__malloc((size_t)(p->n_values ? p->n_values : 1) * sizeof(int32_t));
    if (!alias_of) {
        return anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
    }
    for (int32_t v = 0; v < p->n_values; v++) {
        alias_of[v] = -1;
    }
    int32_t n = 0;
    for (int32_t s = 0; s < p->n_steps; s++) {
        const struct ex_step *st = &p->steps[s];
        int32_t sv = st->state_val;
        if (is_op(st, "read_state") && sv >= 0 && st->n_outs == 1) {
            int32_t v = st->out_vals[0];
            bool ok = true;
            for (int32_t k = s + 1; ok && k <= last_use[v] && k < p->n_steps; k++) {
                ok = !(step_touches_state(&p->steps[k], sv) && !is_op(&p->steps[k], "read_state"));
            }
            if (ok && last_use[v] < p->n_steps) {
                alias_of[v] = sv;
                n++;
            }
        } else if (is_op(st, "slice_update") && st->n_outs == 1) {
            struct ex_call c = {
                .op = st->op, .n_args = st->n_args, .args = st->args, .values = p->values
            };
            const struct ex_tensor *x = ex_in(&c, "x");
            int32_t xv = x ? (int32_t)(x - p->values) : -1;
            if (xv < 0 || alias_of[xv] < 0 || last_use[xv] != s) {
                continue;
            }
            int32_t state = alias_of[xv];
            int32_t o = st->out_vals[0];
            /* the one consumer must be write_state(input = state, data = o) */
            int32_t w = -1, uses = 0;
            for (int32_t k = s + 1; k < p->n_steps; k++) {
                if (step_uses(&p->steps[k], o)) {
                    uses++;
                    w = k;
                }
            }
            if (uses != 1 || !is_op(&p->steps[w], "write_state") ||
                p->steps[w].state_val != state || last_use[o] != w) {
                continue;
            }
            bool ok = true;
            for (int32_t k = s + 1; ok && k < w; k++) {
                ok = !step_touches_state(&p->steps[k], state);
            }
            /* no other alias of the state may be alive between the update and the write */
            for (int32_t v = 0; ok && v < p->n_values; v++) {
                ok = v == xv || alias_of[v] != state || last_use[v] < s;
            }
            if (ok) {
                alias_of[o] = state;
                n++;
            }
        }
    }
    p->alias_val = anml__arena_array(p->arena, (size_t)n + 1, sizeof(int32_t));
    p->alias_state = anml__arena_array(p->arena, (size_t)n + 1, sizeof(int32_t));
    if (!p->alias_val || !p->alias_state) {
        anml__free(alias_of);
        return anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
    }
    for (int32_t v = 0; v < p->n_values; v++) {
        if (alias_of[v] >= 0) {
            p->alias_val[p->n_alias] = v;
            p->alias_state[p->n_alias++] = alias_of[v];
        }
    }
    anml__free(alias_of);
    return ANML_OK;
}

/* ---- memory planning ---- */

struct free_block {
    size_t off, size;
};

struct mem_planner {
    struct free_block *blocks;
    int32_t n, cap;
    size_t top;
};

static size_t align_up(size_t x) {
    return (x + EX_ALIGN - 1) & ~(size_t)(EX_ALIGN - 1);
}

static bool mem_alloc(struct mem_planner *m, size_t size, size_t *off) {
    size = align_up(size ? size : 1);
    int32_t best = -1;
    for (int32_t i = 0; i < m->n; i++) {
        if (m->blocks[i].size >= size && (best < 0 || m->blocks[i].size < m->blocks[best].size)) {
            best = i;
        }
    }
    if (best >= 0) {
        *off = m->blocks[best].off;
        m->blocks[best].off += size;
        m->blocks[best].size -= size;
        if (m->blocks[best].size == 0) {
            m->blocks[best] = m->blocks[--m->n];
        }
        return true;
    }
    /* grow the top; absorb a free block that ends at the top */
    for (int32_t i = 0; i < m->n; i++) {
        if (m->blocks[i].off + m->blocks[i].size == m->top) {
            *off = m->blocks[i].off;
            m->top = m->blocks[i].off + size;
            m->blocks[i] = m->blocks[--m->n];
            return true;
        }
    }
    *off = m->top;
    return anml__add_size(m->top, size, &m->top);
}

static bool mem_free(struct mem_planner *m, size_t off, size_t size) {
    size = align_up(size ? size : 1);
    /* merge with neighbours */
    for (int32_t i = 0; i < m->n; i++) {
        if (m->blocks[i].off + m->blocks[i].size == off) {
            off = m->blocks[i].off;
            size += m->blocks[i].size;
            m->blocks[i--] = m->blocks[--m->n];
        } else if (off + size == m->blocks[i].off) {
            size += m->blocks[i].size;
            m->blocks[i--] = m->blocks[--m->n];
        }
    }
    if (m->n == m->cap) {
        int32_t cap = m->cap ? m->cap * 2 : 64;
        struct free_block *b = anml__realloc(m->blocks, (size_t)cap * sizeof *b);
        if (!b) {
            return false;
        }
        m->blocks = b;
        m->cap = cap;
    }
    m->blocks[m->n++] = (struct free_block){ off, size };
    return true;
}

static size_t value_bytes(const struct ex_tensor *t) {
    return (size_t)t->numel * anml__dtype_size(t->dtype);
}

/* ---- views ----
 * reshape, squeeze, expand_dims and identity keep the bytes of their input in the same order: their
 * result can share the input's memory instead of copying it (the op's run then finds the same
 * pointer and copies nothing). Only inputs whose memory the plan owns or that never change qualify:
 * activations (their life is extended to the view's) and constants. Function inputs and state
 * buffers are left alone, so that outputs never point into caller or state memory. */
static bool is_view_op(const struct ex_step *st) {
    static const char *const k_views[] = { "reshape", "squeeze", "expand_dims", "identity" };
    for (size_t i = 0; i < sizeof k_views / sizeof k_views[0]; i++) {
        if (strcmp(st->op->type, k_views[i]) == 0) {
            return st->n_outs == 1;
        }
    }
    return false;
}

/* view_of[v] = the value whose memory v shares (its root), or -1. Extends roots' last use. */
static void plan_views(struct ex_plan *p, const bool *aliased, int32_t *last_use,
                       int32_t *view_of) {
    for (int32_t s = 0; s < p->n_steps; s++) {
        const struct ex_step *st = &p->steps[s];
        if (!is_view_op(st)) {
            continue;
        }
        struct ex_call c = {
            .op = st->op, .n_args = st->n_args, .args = st->args, .values = p->values
        };
        const struct ex_tensor *x = ex_in(&c, "x");
        int32_t o = st->out_vals[0];
        if (!x || aliased[o]) {
            continue;
        }
        int32_t xv = (int32_t)(x - p->values);
        int32_t root = view_of[xv] >= 0 ? view_of[xv] : xv;
        const struct ex_tensor *r = &p->values[root], *t = &p->values[o];
        bool owned = (r->kind == EX_VALUE_ACT && !aliased[root]) ||
                     (r->kind == EX_VALUE_CONST && r->data && !r->lut);
        if (!owned || r->dtype != t->dtype || value_bytes(r) != value_bytes(t)) {
            continue;
        }
        view_of[o] = root;
        if (last_use[o] > last_use[root]) {
            last_use[root] = last_use[o];
        }
    }
}

static enum anml_status plan_memory(struct ex_plan *p, struct anml_error *err) {
    int32_t *last_use = anml__malloc((size_t)(p->n_values ? p->n_values : 1) * sizeof(int32_t));
    size_t *offs = anml__calloc((size_t)(p->n_values ? p->n_values : 1), sizeof(size_t));
    struct mem_planner m = { 0 };
    bool *aliased = NULL;
    int32_t *view_of = anml__malloc((size_t)(p->n_values ? p->n_values : 1) * sizeof(int32_t));
    enum anml_status st = ANML_OK;
    if (!last_use || !offs || !view_of) {
        st = anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
        goto done;
    }
    for (int32_t v = 0; v < p->n_values; v++) {
        last_use[v] = -1;
        view_of[v] = -1;
    }
    for (int32_t s = 0; s < p->n_steps; s++) {
        const struct ex_step *step = &p->steps[s];
        for (int32_t a = 0; a < step->n_args; a++) {
            for (int32_t b = 0; b < step->args[a].n; b++) {
                last_use[step->args[a].vals[b]] = s;
            }
        }
    }
    for (int32_t o = 0; o < p->n_outputs; o++) {
        last_use[p->output_vals[o]] = p->n_steps; /* outputs live past the end */
    }
    st = plan_aliases(p, last_use, err);
    if (st != ANML_OK) {
        goto done;
    }
    aliased = anml__calloc((size_t)(p->n_values ? p->n_values : 1), sizeof(bool));
    if (!aliased) {
        st = anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
        goto done;
    }
    for (int32_t i = 0; i < p->n_alias; i++) {
        aliased[p->alias_val[i]] = true;
    }
    plan_views(p, aliased, last_use, view_of);
    for (int32_t s = 0; s < p->n_steps; s++) {
        struct ex_step *step = &p->steps[s];
        for (int32_t o = 0; o < step->n_outs; o++) {
            int32_t v = step->out_vals[o];
            if (aliased[v] || view_of[v] >= 0) {
                continue;
            }
            if (!mem_alloc(&m, value_bytes(&p->values[v]), &offs[v])) {
                st = anml__err(err, ANML_E_NOMEM, NULL, "activation memory overflows");
                goto done;
            }
        }
        if (step->scratch_size && !mem_alloc(&m, step->scratch_size, &step->scratch_off)) {
            st = anml__err(err, ANML_E_NOMEM, NULL, "activation memory overflows");
            goto done;
        }
        if (step->scratch_size && !mem_free(&m, step->scratch_off, step->scratch_size)) {
            st = anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
            goto done;
        }
        /* values whose last use is this step (inputs, or outputs nobody reads) die here; a view
         * keeps its root's memory alive */
        for (int32_t a = 0; a < step->n_args; a++) {
            for (int32_t b = 0; b < step->args[a].n; b++) {
                int32_t v = step->args[a].vals[b];
                v = view_of[v] >= 0 ? view_of[v] : v;
                if (p->values[v].kind == EX_VALUE_ACT && last_use[v] == s && !aliased[v]) {
                    last_use[v] = -2; /* freed (a tuple may name a value twice) */
                    if (!mem_free(&m, offs[v], value_bytes(&p->values[v]))) {
                        st = anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
                        goto done;
                    }
                }
            }
        }
        for (int32_t o = 0; o < step->n_outs; o++) {
            int32_t v = step->out_vals[o];
            if (last_use[v] == -1 && !aliased[v] && view_of[v] < 0 &&
                !mem_free(&m, offs[v], value_bytes(&p->values[v]))) {
                st = anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
                goto done;
            }
        }
    }
    p->act_size = m.top;
    p->act_mem = aligned_alloc(EX_ALIGN, align_up(m.top ? m.top : EX_ALIGN));
    if (!p->act_mem) {
        st = anml__err(err, ANML_E_NOMEM, NULL, "cannot allocate %zu bytes of activations", m.top);
        goto done;
    }
    memset(p->act_mem, 0, align_up(m.top ? m.top : EX_ALIGN));
    for (int32_t s = 0; s < p->n_steps; s++) {
        for (int32_t o = 0; o < p->steps[s].n_outs; o++) {
            int32_t v = p->steps[s].out_vals[o];
            p->values[v].data = aliased[v] ? NULL : p->act_mem + offs[v];
        }
    }
    for (int32_t s = 0; s < p->n_steps; s++) { /* views last: their roots are placed now */
        int32_t v = p->steps[s].out_vals[0];
        if (p->steps[s].n_outs == 1 && view_of[v] >= 0) {
            p->values[v].data = p->values[view_of[v]].data;
        }
    }
done:
    anml__free(view_of);
    anml__free(aliased);
    anml__free(m.blocks);
    anml__free(last_use);
    anml__free(offs);
    return st;
}

/* ---- building ---- */

static enum anml_status plan_inputs(struct ex_plan *p, const struct ex_tensor *const *shapes,
                                    struct anml_error *err) {
    const struct mil_function *fn = p->fn;
    p->input_vals = anml__arena_array(p->arena, (size_t)fn->n_inputs + 1, sizeof(int32_t));
    p->state_vals = anml__arena_array(p->arena, (size_t)fn->n_inputs + 1, sizeof(int32_t));
    if (!p->input_vals || !p->state_vals) {
        return anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
    }
    for (int32_t i = 0; i < fn->n_inputs; i++) {
        const struct mil_named_type *in = &fn->inputs[i];
        bool is_state = in->type->kind == MIL_TYPE_STATE;
        int32_t v = value_add(p, in->name, is_state ? EX_VALUE_STATE : EX_VALUE_INPUT);
        if (v < 0) {
            return anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
        }
        const struct mil_type *ty = is_state ? in->type->elems[0] : in->type;
        if (!is_state && shapes && shapes[i]) {
            ex_set_shape(&p->values[v], shapes[i]->dtype, shapes[i]->rank, shapes[i]->shape);
        } else {
            enum anml_status st = set_from_type(&p->values[v], ty, err, in->name);
            if (st != ANML_OK) {
                anml__err_prefix(err, "function '%s' input", fn->name);
                return st;
            }
        }
        if (is_state) {
            p->state_vals[p->n_states++] = v;
        } else {
            p->input_vals[p->n_inputs++] = v;
        }
    }
    return ANML_OK;
}

/* Checks an inferred output against the type the file declares. */
static enum anml_status check_declared(const struct mil_op *op, int32_t r,
                                       const struct ex_tensor *t, struct anml_error *err) {
    const struct mil_type *ty = op->results[r].type;
    if (ty->kind != MIL_TYPE_TENSOR) {
        return ANML_OK;
    }
    if (t->dtype != ty->dtype) {
        return op_err(err, op, ANML_E_SHAPE, "result '%s' computes dtype %s, file declares %s",
                      op->results[r].name, anml_dtype_name(t->dtype), anml_dtype_name(ty->dtype));
    }
    if (ty->rank < 0) {
        return ANML_OK;
    }
    bool same = ty->rank == t->rank;
    for (int32_t d = 0; same && d < ty->rank; d++) {
        same = ty->dims[d] < 0 || ty->dims[d] == t->shape[d];
    }
    if (!same) {
        char decl[128];
        anml__mil_type_str(ty, decl, sizeof decl);
        char got[128] = "[";
        size_t n = 1;
        for (int32_t d = 0; d < t->rank && n < sizeof got; d++) {
            n += (size_t)snprintf(got + n, sizeof got - n, "%s%lld", d ? ", " : "",
                                  (long long)t->shape[d]);
        }
        if (n < sizeof got - 1) {
            got[n] = ']';
            got[n + 1] = '\0';
        }
        return op_err(err, op, ANML_E_SHAPE, "result '%s' computes shape %s, file declares %s",
                      op->results[r].name, got, decl);
    }
    return ANML_OK;
}

static enum anml_status plan_op(struct ex_plan *p, const struct mil_op *op, int32_t **dense_of,
                                int32_t *dense_cap, struct anml_error *err) {
    if (strcmp(op->type, "const") == 0) {
        const struct mil_attr *val = anml__mil_op_attr(op, "val");
        if (!val || op->n_results != 1) {
            return op_err(err, op, ANML_E_FORMAT, "const needs a `val` attribute and one result");
        }
        int32_t v = value_add(p, op->results[0].name, EX_VALUE_CONST);
        if (v < 0) {
            return anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
        }
        if (val->value->kind != MIL_VALUE_TENSOR && val->value->kind != MIL_VALUE_BLOB) {
            return ANML_OK; /* list/dict consts: only usable by ops that read the IR directly */
        }
        enum anml_status st = bind_literal(p, v, val->value, err);
        if (st != ANML_OK) {
            anml__err_prefix(err, "const '%s'", op->results[0].name);
        }
        return st;
    }
    if (anml__is_constexpr_op(op->type)) {
        return plan_constexpr(p, op, err);
    }
    const struct ex_opdef *def = anml__op_find(op->type);
    if (!def) {
        return op_err(err, op, ANML_E_UNSUPPORTED, "op type '%s' is not implemented", op->type);
    }
    if (op->n_blocks > 0) {
        return op_err(err, op, ANML_E_UNSUPPORTED, "ops with nested blocks are not supported");
    }
    if (p->n_steps == p->cap_steps) {
        int32_t cap = p->cap_steps ? p->cap_steps * 2 : 128;
        struct ex_step *s = anml__realloc(p->steps, (size_t)cap * sizeof *s);
        if (!s) {
            return anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
        }
        p->steps = s;
        p->cap_steps = cap;
    }
    struct ex_step *step = &p->steps[p->n_steps];
    memset(step, 0, sizeof *step);
    step->op = op;
    step->def = def;
    step->state_val = -1;
    step->n_args = op->n_args;
    step->args = anml__arena_array(p->arena, (size_t)op->n_args + 1, sizeof(struct ex_arg));
    if (!step->args) {
        return anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
    }
    for (int32_t a = 0; a < op->n_args; a++) {
        const struct mil_arg *ma = &op->args[a];
        struct ex_arg *ea = &step->args[a];
        ea->name = ma->name;
        ea->n = ma->n_bindings;
        ea->vals = anml__arena_array(p->arena, (size_t)ma->n_bindings + 1, sizeof(int32_t));
        if (!ea->vals) {
            return anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
        }
        for (int32_t b = 0; b < ma->n_bindings; b++) {
            int32_t v;
            if (ma->bindings[b].name) {
                v = value_find(p, ma->bindings[b].name);
                if (v < 0) {
                    return op_err(err, op, ANML_E_FORMAT, "argument '%s' refers to unknown '%s'",
                                  ma->name, ma->bindings[b].name);
                }
            } else {
                v = value_add(p, "<literal>", EX_VALUE_CONST);
                if (v < 0) {
                    return anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
                }
                enum anml_status st = bind_literal(p, v, ma->bindings[b].value, err);
                if (st != ANML_OK) {
                    anml__err_prefix(err, "%s '%s' argument '%s'", op->type, anml__mil_op_name(op),
                                     ma->name);
                    return st;
                }
            }
            if (p->values[v].kind == EX_VALUE_STATE) {
                step->state_val = v;
            }
            if (p->values[v].lut && !lut_arg_ok(def, ma->name)) {
                if (*dense_cap < p->cap_values) {
                    int32_t *d = anml__realloc(*dense_of, (size_t)p->cap_values * sizeof(int32_t));
                    if (!d) {
                        return anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
                    }
                    for (int32_t i = *dense_cap; i < p->cap_values; i++) {
                        d[i] = -1;
                    }
                    *dense_of = d;
                    *dense_cap = p->cap_values;
                }
                v = densify(p, v, *dense_of, err);
                if (v < 0) {
                    return err ? err->code : ANML_E_NOMEM;
                }
            }
            ea->vals[b] = v;
        }
    }
    step->n_outs = op->n_results;
    step->out_vals = anml__arena_array(p->arena, (size_t)op->n_results + 1, sizeof(int32_t));
    step->outs = anml__arena_array(p->arena, (size_t)op->n_results + 1, sizeof(void *));
    if (!step->out_vals || !step->outs) {
        return anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
    }
    for (int32_t r = 0; r < op->n_results; r++) {
        if (value_find(p, op->results[r].name) >= 0) {
            return op_err(err, op, ANML_E_FORMAT, "result '%s' is defined twice",
                          op->results[r].name);
        }
        int32_t v = value_add(p, op->results[r].name, EX_VALUE_ACT);
        if (v < 0) {
            return anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
        }
        step->out_vals[r] = v;
    }
    for (int32_t r = 0; r < op->n_results; r++) {
        step->outs[r] = &p->values[step->out_vals[r]];
    }
    struct ex_call call = {
        .op = op,
        .def = def,
        .opset = p->fn->opset,
        .n_args = step->n_args,
        .args = step->args,
        .values = p->values,
        .n_outs = step->n_outs,
        .outs = step->outs,
        .err = err,
        .planning = true,
        .n_threads = p->n_threads,
    };
    enum anml_status st = def->infer(&call);
    if (st != ANML_OK) {
        return st;
    }
    for (int32_t r = 0; r < op->n_results; r++) {
        if (step->outs[r]->dtype == ANML_DTYPE_INVALID) {
            return op_err(err, op, ANML_E_INTERNAL, "infer did not set result '%s'",
                          op->results[r].name);
        }
        st = check_declared(op, r, step->outs[r], err);
        if (st != ANML_OK) {
            return st;
        }
    }
    step->scratch_size = call.scratch_request;
    p->n_steps++;
    return ANML_OK;
}

enum anml_status anml__plan_build(const struct mil_program *prog, const struct mil_function *fn,
                                  const struct ex_tensor *const *input_shapes, int32_t n_threads,
                                  struct ex_plan **out, struct anml_error *err) {
    *out = NULL;
    struct ex_plan *p = anml__calloc(1, sizeof *p);
    if (!p) {
        return anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
    }
    p->n_threads = n_threads < 1 ? 1 : n_threads;
    p->prog = prog;
    p->fn = fn;
    p->arena = anml__arena_create();
    int32_t *dense_of = NULL;
    int32_t dense_cap = 0;
    enum anml_status st;
    if (!p->arena) {
        st = anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
        goto fail;
    }
    st = plan_inputs(p, input_shapes, err);
    for (int32_t i = 0; st == ANML_OK && i < fn->block.n_ops; i++) {
        st = plan_op(p, &fn->block.ops[i], &dense_of, &dense_cap, err);
    }
    if (st != ANML_OK) {
        goto fail;
    }
    p->output_vals = anml__arena_array(p->arena, (size_t)fn->block.n_outputs + 1, sizeof(int32_t));
    if (!p->output_vals) {
        st = anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
        goto fail;
    }
    for (int32_t o = 0; o < fn->block.n_outputs; o++) {
        int32_t v = value_find(p, fn->block.outputs[o]);
        if (v < 0) {
            st = anml__err(err, ANML_E_FORMAT, NULL, "function '%s' output '%s' is not defined",
                           fn->name, fn->block.outputs[o]);
            goto fail;
        }
        if (p->values[v].lut) {
            if (dense_cap < p->cap_values) {
                int32_t *d = anml__realloc(dense_of, (size_t)p->cap_values * sizeof(int32_t));
                if (!d) {
                    st = anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
                    goto fail;
                }
                for (int32_t i = dense_cap; i < p->cap_values; i++) {
                    d[i] = -1;
                }
                dense_of = d;
                dense_cap = p->cap_values;
            }
            v = densify(p, v, dense_of, err);
            if (v < 0) {
                st = err ? err->code : ANML_E_NOMEM;
                goto fail;
            }
        }
        p->output_vals[p->n_outputs++] = v;
    }
    /* step->outs point into the values array, which may have moved while building */
    for (int32_t s = 0; s < p->n_steps; s++) {
        for (int32_t r = 0; r < p->steps[s].n_outs; r++) {
            p->steps[s].outs[r] = &p->values[p->steps[s].out_vals[r]];
        }
    }
    st = plan_memory(p, err);
    if (st != ANML_OK) {
        goto fail;
    }
    anml__free(dense_of);
    ANML_LOG_DEBUG("exec: planned function '%s': %d values, %d steps, %zu activation bytes",
                   fn->name, (int)p->n_values, (int)p->n_steps, p->act_size);
    *out = p;
    return ANML_OK;
fail:
    anml__free(dense_of);
    anml__plan_free(p);
    return st;
}

void anml__plan_free(struct ex_plan *plan) {
    if (!plan) {
        return;
    }
    for (int32_t i = 0; i < plan->n_owned; i++) {
        anml__free(plan->owned[i]);
    }
    anml__free(plan->owned);
    free(plan->act_mem);
    anml__free(plan->values);
    anml__free(plan->hash);
    anml__free(plan->steps);
    anml__arena_free(plan->arena);
    anml__free(plan);
}
