/* alloc.c -- the library's allocation wrappers and the bump arena that owns a program's IR. */
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

void *anml__malloc(size_t n) {
    return malloc(n ? n : 1);
}

void *anml__calloc(size_t count, size_t size) {
    return calloc(count ? count : 1, size ? size : 1);
}

void *anml__realloc(void *p, size_t n) {
    return realloc(p, n ? n : 1);
}

void anml__free(void *p) {
    free(p);
}

void anml_free(void *ptr) {
    free(ptr);
}

char *anml__strndup(const char *s, size_t n) {
    char *d = anml__malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

char *anml__strdup(const char *s) {
    return anml__strndup(s, strlen(s));
}

/* ---- arena ---- */

struct arena_chunk {
    struct arena_chunk *next;
    size_t cap;
    size_t used;
    _Alignas(16) unsigned char data[];
};

struct anml_arena {
    struct arena_chunk *head;
    size_t total;
};

struct anml_arena *anml__arena_create(void) {
    return anml__calloc(1, sizeof(struct anml_arena));
}

void anml__arena_free(struct anml_arena *a) {
    if (!a) {
        return;
    }
    struct arena_chunk *c = a->head;
    while (c) {
        struct arena_chunk *next = c->next;
        anml__free(c);
        c = next;
    }
    anml__free(a);
}

void *anml__arena_alloc(struct anml_arena *a, size_t n) {
    size_t need = (n + 15) & ~(size_t)15;
    if (need < n) {
        return NULL;
    }
    struct arena_chunk *c = a->head;
    if (!c || c->cap - c->used < need) {
        size_t cap = need > 65536 ? need : 65536;
        size_t bytes;
        if (!anml__add_size(sizeof(struct arena_chunk), cap, &bytes)) {
            return NULL;
        }
        struct arena_chunk *nc = anml__malloc(bytes);
        if (!nc) {
            return NULL;
        }
        nc->cap = cap;
        nc->used = 0;
        /* Keep a partly used head chunk in front when the new one is a big one-off. */
        if (c && need > 65536) {
            nc->next = c->next;
            c->next = nc;
        } else {
            nc->next = c;
            a->head = nc;
        }
        c = nc;
    }
    void *p = c->data + c->used;
    c->used += need;
    a->total += need;
    memset(p, 0, n);
    return p;
}

void *anml__arena_array(struct anml_arena *a, size_t count, size_t size) {
    size_t n;
    if (!anml__mul_size(count, size, &n)) {
        return NULL;
    }
    return anml__arena_alloc(a, n);
}

char *anml__arena_strndup(struct anml_arena *a, const char *s, size_t n) {
    if (n == SIZE_MAX) {
        return NULL;
    }
    char *d = anml__arena_alloc(a, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

char *anml__arena_strdup(struct anml_arena *a, const char *s) {
    return anml__arena_strndup(a, s, strlen(s));
}

size_t anml__arena_used(const struct anml_arena *a) {
    return a->total;
}

bool anml__shape_numel(const int64_t *dims, int rank, int64_t *out) {
    int64_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0 || !anml__mul_i64(n, dims[i], &n)) {
            return false;
        }
    }
    *out = n;
    return true;
}
