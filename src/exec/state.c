/* state.c -- named persistent buffers (ANEMLL's KV cache) shared across functions and programs. */
#include <stdlib.h>
#include <string.h>

#include "exec/plan_internal.h"

struct state_buf {
    char *name;
    struct anml_tensor t;
};

struct anml_state {
    struct state_buf *bufs;
    int32_t n, cap;
};

enum anml_status anml_state_create(struct anml_state **out, struct anml_error *err) {
    *out = anml__calloc(1, sizeof **out);
    return *out ? ANML_OK : anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
}

void anml_state_free(struct anml_state *state) {
    if (!state) {
        return;
    }
    for (int32_t i = 0; i < state->n; i++) {
        anml__free(state->bufs[i].name);
        free(state->bufs[i].t.data);
    }
    anml__free(state->bufs);
    anml__free(state);
}

static struct state_buf *find_buf(struct anml_state *s, const char *name) {
    for (int32_t i = 0; i < s->n; i++) {
        if (strcmp(s->bufs[i].name, name) == 0) {
            return &s->bufs[i];
        }
    }
    return NULL;
}

static bool same_shape(const struct anml_tensor *t, enum anml_dtype dt, int32_t rank,
                       const int64_t *shape) {
    if (t->dtype != dt || t->rank != rank) {
        return false;
    }
    for (int32_t i = 0; i < rank; i++) {
        if (t->shape[i] != shape[i]) {
            return false;
        }
    }
    return true;
}

/* Adds a zero-filled buffer, or checks an existing one. */
static enum anml_status state_ensure(struct anml_state *s, const char *name, enum anml_dtype dt,
                                     int32_t rank, const int64_t *shape, struct anml_error *err) {
    struct state_buf *b = find_buf(s, name);
    if (b) {
        if (!same_shape(&b->t, dt, rank, shape)) {
            return anml__err(err, ANML_E_SHAPE, NULL,
                             "state '%s' already exists with another dtype or shape", name);
        }
        return ANML_OK;
    }
    if (rank > ANML_MAX_DIMS) {
        return anml__err(err, ANML_E_UNSUPPORTED, NULL, "state '%s' has rank %d", name, (int)rank);
    }
    int64_t numel;
    if (!anml__shape_numel(shape, rank, &numel)) {
        return anml__err(err, ANML_E_SHAPE, NULL, "state '%s' has an unknown or huge shape", name);
    }
    size_t bytes;
    if (!anml__mul_size((size_t)numel, anml__dtype_size(dt), &bytes)) {
        return anml__err(err, ANML_E_SHAPE, NULL, "state '%s' is too large", name);
    }
    if (s->n == s->cap) {
        int32_t cap = s->cap ? s->cap * 2 : 4;
        struct state_buf *nb = anml__realloc(s->bufs, (size_t)cap * sizeof *nb);
        if (!nb) {
            return anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
        }
        s->bufs = nb;
        s->cap = cap;
    }
    size_t alloc = (bytes + 63) & ~(size_t)63;
    void *data = aligned_alloc(64, alloc ? alloc : 64);
    char *nm = anml__strdup(name);
    if (!data || !nm) {
        free(data);
        anml__free(nm);
        return anml__err(err, ANML_E_NOMEM, NULL, "cannot allocate %zu bytes for state '%s'", bytes,
                         name);
    }
    memset(data, 0, alloc ? alloc : 64);
    b = &s->bufs[s->n++];
    b->name = nm;
    memset(&b->t, 0, sizeof b->t);
    b->t.dtype = dt;
    b->t.rank = rank;
    memcpy(b->t.shape, shape, (size_t)rank * sizeof(int64_t));
    b->t.data = data;
    return ANML_OK;
}

enum anml_status anml__state_bind(struct anml_state *state, const char *name, enum anml_dtype dt,
                                  int32_t rank, const int64_t *shape, void **data,
                                  struct anml_error *err) {
    struct state_buf *b = find_buf(state, name);
    if (!b) {
        return anml__err(err, ANML_E_NOT_FOUND, NULL,
                         "the state has no buffer '%s' (see anml_state_add_program)", name);
    }
    if (!same_shape(&b->t, dt, rank, shape)) {
        return anml__err(err, ANML_E_SHAPE, NULL,
                         "state buffer '%s' does not match the function's dtype and shape", name);
    }
    *data = b->t.data;
    return ANML_OK;
}

int32_t anml_state_count(const struct anml_state *state) {
    return state ? state->n : 0;
}

enum anml_status anml_state_buffer(struct anml_state *state, int32_t i, const char **name,
                                   struct anml_tensor *view) {
    if (!state || i < 0 || i >= state->n) {
        return ANML_E_NOT_FOUND;
    }
    if (name) {
        *name = state->bufs[i].name;
    }
    *view = state->bufs[i].t;
    return ANML_OK;
}

enum anml_status anml_state_find(struct anml_state *state, const char *name,
                                 struct anml_tensor *view) {
    struct state_buf *b = state && name ? find_buf(state, name) : NULL;
    if (!b) {
        return ANML_E_NOT_FOUND;
    }
    *view = b->t;
    return ANML_OK;
}

enum anml_status anml__state_add_function(struct anml_state *state, const struct mil_function *fn,
                                          struct anml_error *err) {
    for (int32_t i = 0; i < fn->n_inputs; i++) {
        const struct mil_type *ty = fn->inputs[i].type;
        if (ty->kind != MIL_TYPE_STATE) {
            continue;
        }
        const struct mil_type *w = ty->elems[0];
        if (w->kind != MIL_TYPE_TENSOR || w->rank < 0) {
            return anml__err(err, ANML_E_UNSUPPORTED, NULL, "state '%s' is not a tensor",
                             fn->inputs[i].name);
        }
        enum anml_status st =
            state_ensure(state, fn->inputs[i].name, w->dtype, w->rank, w->dims, err);
        if (st != ANML_OK) {
            return st;
        }
    }
    return ANML_OK;
}
