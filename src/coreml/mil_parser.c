/*
 * mil_parser.c -- model.mil text -> program IR (coreml-format.md §3.4 and its notes 1-13).
 *
 * A recursive-descent parser over the on-demand tokenizer of mil_lexer.c with two tokens of
 * lookahead. It accepts every observed printer dialect (program(1.0)/(1.3)/(1), both scalar literal
 * styles, both multi-result forms, BLOBFILE values, function attribute blocks) and our own nested
 * block syntax for control-flow ops, which the writer emits the same way:
 *
 *     T r = cond(pred = p) { T a = ...; } -> (a) { T b = ...; } -> (b);
 *     T r = while_loop(loop_vars = (x)) (T x_in) { ... } -> (c) (T x_in2) { ... } -> (y);
 *
 * i.e. after an op's argument list and optional attribute block come zero or more blocks, each an
 * optional parenthesised input list, a braced statement list and `-> (names)`, then `;`.
 *
 * Literal values are stored unpacked in the arena as program.h describes; each one is checked
 * against its declared type (element count, integer range, float overflow) and sizes are bounded
 * before anything is allocated. Names are resolved as they are read: function parameters first,
 * then results in order; nested blocks see the names of enclosing scopes. Every error reports
 * "file:line:col" and what was expected versus found. Recursion is bounded by MIL_MAX_DEPTH.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coreml/mil_text.h"

#define MIL_MAX_DEPTH       64
#define MIL_MAX_RANK        32
#define MIL_MAX_SPLAT_BYTES ((int64_t)1 << 24) /* a bare scalar may fill at most 16 MiB */
#define MIL_NUM_BUF         128                /* longest number token we convert */

/* ---- name table: the names visible at the current point, as a scope stack ---- */

/* Open addressing over arena-owned strings; removed entries become tombstones so probe chains
 * stay intact. Names are pushed on a stack so a nested block can drop its own on exit. */
struct name_table {
    const char **slots;
    size_t cap, used, live;
    const char **stack;
    size_t n_stack, cap_stack;
};

static const char k_tombstone[1] = { 0 };

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    }
    return h;
}

static const char **nt_find(const struct name_table *t, const char *name) {
    if (t->cap == 0) {
        return NULL;
    }
    size_t mask = t->cap - 1;
    for (size_t i = (size_t)hash_name(name) & mask;; i = (i + 1) & mask) {
        const char *s = t->slots[i];
        if (!s) {
            return NULL;
        }
        if (s != k_tombstone && strcmp(s, name) == 0) {
            return &t->slots[i];
        }
    }
}

static bool nt_contains(const struct name_table *t, const char *name) {
    return nt_find(t, name) != NULL;
}

static void nt_place(const char **slots, size_t cap, const char *name) {
    size_t mask = cap - 1;
    size_t i = (size_t)hash_name(name) & mask;
    while (slots[i] && slots[i] != k_tombstone) {
        i = (i + 1) & mask;
    }
    slots[i] = name;
}

/* Adds a name that is known not to be present. */
static bool nt_insert(struct name_table *t, const char *name) {
    if (t->n_stack == t->cap_stack) {
        size_t nc = t->cap_stack ? t->cap_stack * 2 : 64;
        const char **ns = anml__realloc(t->stack, nc * sizeof *ns);
        if (!ns) {
            return false;
        }
        t->stack = ns;
        t->cap_stack = nc;
    }
    if ((t->used + 1) * 2 > t->cap) {
        size_t nc = 64;
        while (nc < (t->live + 1) * 4) {
            nc *= 2;
        }
        const char **ns = anml__calloc(nc, sizeof *ns);
        if (!ns) {
            return false;
        }
        for (size_t i = 0; i < t->cap; i++) {
            if (t->slots[i] && t->slots[i] != k_tombstone) {
                nt_place(ns, nc, t->slots[i]);
            }
        }
        anml__free(t->slots);
        t->slots = ns;
        t->cap = nc;
        t->used = t->live;
    }
    size_t mask = t->cap - 1;
    size_t i = (size_t)hash_name(name) & mask;
    while (t->slots[i] && t->slots[i] != k_tombstone) {
        i = (i + 1) & mask;
    }
    if (!t->slots[i]) {
        t->used++;
    }
    t->slots[i] = name;
    t->live++;
    t->stack[t->n_stack++] = name;
    return true;
}

/* Forgets every name added after the stack held `mark` entries. */
static void nt_pop(struct name_table *t, size_t mark) {
    while (t->n_stack > mark) {
        const char **slot = nt_find(t, t->stack[--t->n_stack]);
        if (slot) {
            *slot = k_tombstone;
            t->live--;
        }
    }
}

static void nt_free(struct name_table *t) {
    anml__free(t->slots);
    anml__free(t->stack);
    memset(t, 0, sizeof *t);
}

/* ---- parser state, tokens and errors ---- */

struct parser {
    struct mil_program *prog;
    struct anml_arena *arena;
    struct mil_lexer lx;
    struct mil_token la[2]; /* lookahead */
    int n_la;
    const char *filename;
    struct anml_error *err;
    int depth;
    bool lenient_names; /* test hook: undefined references are accepted */
    struct name_table names;
};

static const struct mil_token *peek(struct parser *p, int k) {
    while (p->n_la <= k) {
        anml__mil_lex_next(&p->lx, &p->la[p->n_la]);
        p->n_la++;
    }
    return &p->la[k];
}

static struct mil_token next_tok(struct parser *p) {
    peek(p, 0);
    struct mil_token t = p->la[0];
    p->la[0] = p->la[1];
    p->n_la--;
    return t;
}

static enum anml_status fail(struct parser *p, const struct mil_token *t, enum anml_status code,
                             const char *fmt, ...) ANML_PRINTF(4, 5);

static enum anml_status fail(struct parser *p, const struct mil_token *t, enum anml_status code,
                             const char *fmt, ...) {
    char where[256];
    snprintf(where, sizeof where, "%s:%ld:%ld", p->filename, (long)t->line, (long)t->col);
    va_list ap;
    va_start(ap, fmt);
    anml__verr(p->err, code, where, fmt, ap);
    va_end(ap);
    return code;
}

/* Quotes a token for a message: 'foo', '"a str...', or end of input. */
static void describe(const struct parser *p, const struct mil_token *t, char *buf, size_t cap) {
    if (t->kind == MIL_TOK_EOF) {
        snprintf(buf, cap, "end of input");
        return;
    }
    char tmp[48];
    size_t n = t->len < 40 ? t->len : 40;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p->lx.text[t->off + i];
        tmp[i] = (char)(c < 0x20 || c >= 0x7f ? '?' : c);
    }
    tmp[n] = '\0';
    snprintf(buf, cap, "'%s%s'", tmp, t->len > 40 ? "..." : "");
}

static enum anml_status expected(struct parser *p, const struct mil_token *t, const char *what,
                                 const char *ctx) {
    char found[64];
    describe(p, t, found, sizeof found);
    if (t->kind == MIL_TOK_ERROR) {
        if (t->lex_error == MIL_LEX_BAD_CHAR) {
            return fail(p, t, ANML_E_FORMAT, "unexpected character 0x%02x (expected %s)", t->bad,
                        what);
        }
        return fail(p, t, ANML_E_FORMAT, "%s: %s", anml__mil_lex_error_str(t->lex_error), found);
    }
    if (ctx) {
        return fail(p, t, ANML_E_FORMAT, "expected %s in %s, found %s", what, ctx, found);
    }
    return fail(p, t, ANML_E_FORMAT, "expected %s, found %s", what, found);
}

static enum anml_status nomem(struct parser *p) {
    return fail(p, peek(p, 0), ANML_E_NOMEM, "out of memory");
}

static bool tok_punct(const struct mil_token *t, char c) {
    return t->kind == MIL_TOK_PUNCT && t->punct == c;
}

static bool tok_word(const struct parser *p, const struct mil_token *t, const char *w) {
    size_t n = strlen(w);
    return t->kind == MIL_TOK_IDENT && t->len == n && memcmp(p->lx.text + t->off, w, n) == 0;
}

static bool at_punct(struct parser *p, char c) {
    return tok_punct(peek(p, 0), c);
}

static bool accept_punct(struct parser *p, char c) {
    if (!at_punct(p, c)) {
        return false;
    }
    next_tok(p);
    return true;
}

static enum anml_status expect_punct(struct parser *p, char c, const char *ctx) {
    if (accept_punct(p, c)) {
        return ANML_OK;
    }
    char what[8];
    snprintf(what, sizeof what, "'%c'", c);
    return expected(p, peek(p, 0), what, ctx);
}

static enum anml_status expect_word(struct parser *p, const char *w, const char *ctx) {
    if (tok_word(p, peek(p, 0), w)) {
        next_tok(p);
        return ANML_OK;
    }
    char what[64];
    snprintf(what, sizeof what, "'%s'", w);
    return expected(p, peek(p, 0), what, ctx);
}

static char *tok_strdup(struct parser *p, const struct mil_token *t) {
    return anml__arena_strndup(p->arena, p->lx.text + t->off, t->len);
}

/* Reads an identifier into the arena; `tok` (optional) receives its token for later errors. */
static enum anml_status expect_ident(struct parser *p, const char *what, const char *ctx,
                                     char **out, struct mil_token *tok) {
    const struct mil_token *t = peek(p, 0);
    if (t->kind != MIL_TOK_IDENT) {
        return expected(p, t, what, ctx);
    }
    if (tok) {
        *tok = *t;
    }
    *out = tok_strdup(p, t);
    if (!*out) {
        return nomem(p);
    }
    next_tok(p);
    return ANML_OK;
}

static enum anml_status enter(struct parser *p) {
    if (p->depth >= MIL_MAX_DEPTH) {
        return fail(p, peek(p, 0), ANML_E_FORMAT, "nesting deeper than %d levels", MIL_MAX_DEPTH);
    }
    p->depth++;
    return ANML_OK;
}

/* Makes room for element n of an arena array that grows by doubling; returns the (possibly
 * moved) array, or NULL with the error set. */
static void *grow(struct parser *p, void *arr, int32_t n, int32_t *cap, size_t esize) {
    if (n < *cap) {
        return arr;
    }
    if (*cap >= INT32_MAX / 2) {
        fail(p, peek(p, 0), ANML_E_FORMAT, "more than %d items in one list", INT32_MAX / 2);
        return NULL;
    }
    int32_t nc = *cap ? *cap * 2 : 4;
    void *na = anml__arena_array(p->arena, (size_t)nc, esize);
    if (!na) {
        nomem(p);
        return NULL;
    }
    if (n > 0) {
        memcpy(na, arr, (size_t)n * esize);
    }
    *cap = nc;
    return na;
}

/* ---- names ---- */

static enum anml_status define_name(struct parser *p, const struct mil_token *t, const char *name) {
    if (nt_contains(&p->names, name)) {
        return fail(p, t, ANML_E_FORMAT, "redefinition of '%s'", name);
    }
    if (!nt_insert(&p->names, name)) {
        return nomem(p);
    }
    return ANML_OK;
}

static enum anml_status check_defined(struct parser *p, const struct mil_token *t,
                                      const char *name) {
    if (p->lenient_names || nt_contains(&p->names, name)) {
        return ANML_OK;
    }
    return fail(p, t, ANML_E_FORMAT, "undefined name '%s'", name);
}

/* `( [IDENT {, IDENT}] )` where every name must be visible: block and function outputs. */
static enum anml_status parse_output_names(struct parser *p, char ***out, int32_t *n_out,
                                           const char *ctx) {
    enum anml_status st = expect_punct(p, '(', ctx);
    int32_t cap = 0;
    *n_out = 0;
    *out = NULL;
    if (st != ANML_OK || accept_punct(p, ')')) {
        return st;
    }
    for (;;) {
        struct mil_token t;
        char *name = NULL;
        st = expect_ident(p, "an output name", ctx, &name, &t);
        if (st != ANML_OK) {
            return st;
        }
        st = check_defined(p, &t, name);
        if (st != ANML_OK) {
            return st;
        }
        char **na = grow(p, *out, *n_out, &cap, sizeof **out);
        if (!na) {
            return p->err ? p->err->code : ANML_E_NOMEM;
        }
        *out = na;
        (*out)[(*n_out)++] = name;
        if (accept_punct(p, ',')) {
            continue;
        }
        if (accept_punct(p, ')')) {
            return ANML_OK;
        }
        return expected(p, peek(p, 0), "',' or ')'", ctx);
    }
}

/* ---- types ---- */

static enum anml_status parse_type(struct parser *p, struct mil_type **out);

static enum anml_status parse_dtype(struct parser *p, enum anml_dtype *dt) {
    const struct mil_token *t = peek(p, 0);
    if (t->kind != MIL_TOK_IDENT) {
        return expected(p, t, "a dtype", "tensor type");
    }
    *dt = anml__dtype_from_name(p->lx.text + t->off, t->len);
    if (*dt == ANML_DTYPE_INVALID) {
        char found[64];
        describe(p, t, found, sizeof found);
        return fail(p, t, ANML_E_FORMAT, "unknown dtype %s", found);
    }
    next_tok(p);
    return ANML_OK;
}

/* A non-negative decimal that fits int64 (dims, list lengths). */
static enum anml_status parse_count(struct parser *p, const char *what, int64_t *out) {
    const struct mil_token *t = peek(p, 0);
    if (t->kind != MIL_TOK_INT || p->lx.text[t->off] == '-') {
        return expected(p, t, what, NULL);
    }
    uint64_t v = 0;
    for (size_t i = 0; i < t->len; i++) {
        unsigned d = (unsigned)(p->lx.text[t->off + i] - '0');
        if (v > ((uint64_t)INT64_MAX - d) / 10) {
            char found[64];
            describe(p, t, found, sizeof found);
            return fail(p, t, ANML_E_FORMAT, "%s %s does not fit int64", what, found);
        }
        v = v * 10 + d;
    }
    *out = (int64_t)v;
    next_tok(p);
    return ANML_OK;
}

static enum anml_status parse_shape(struct parser *p, int32_t *rank, int64_t *dims) {
    const struct mil_token start = *peek(p, 0);
    enum anml_status st = expect_punct(p, '[', "tensor shape");
    *rank = 0;
    if (st != ANML_OK || accept_punct(p, ']')) {
        return st;
    }
    for (;;) {
        if (*rank == MIL_MAX_RANK) {
            return fail(p, peek(p, 0), ANML_E_FORMAT, "tensor rank exceeds %d", MIL_MAX_RANK);
        }
        if (accept_punct(p, '?')) {
            dims[(*rank)++] = MIL_DIM_UNKNOWN;
        } else {
            st = parse_count(p, "a dimension (integer or '?')", &dims[*rank]);
            if (st != ANML_OK) {
                return st;
            }
            (*rank)++;
        }
        if (accept_punct(p, ',')) {
            continue;
        }
        if (accept_punct(p, ']')) {
            break;
        }
        return expected(p, peek(p, 0), "',' or ']'", "tensor shape");
    }
    /* the product of the known dims must be representable */
    int64_t known[MIL_MAX_RANK];
    for (int32_t i = 0; i < *rank; i++) {
        known[i] = dims[i] == MIL_DIM_UNKNOWN ? 1 : dims[i];
    }
    int64_t numel;
    if (!anml__shape_numel(known, *rank, &numel)) {
        return fail(p, &start, ANML_E_FORMAT, "tensor shape has more elements than int64 holds");
    }
    return ANML_OK;
}

static struct mil_type *new_type(struct parser *p, enum mil_type_kind kind, int32_t n_elems) {
    struct mil_type *t = anml__arena_alloc(p->arena, sizeof *t);
    if (!t) {
        return NULL;
    }
    t->kind = kind;
    t->n_elems = n_elems;
    if (n_elems > 0) {
        t->elems = anml__arena_array(p->arena, (size_t)n_elems, sizeof *t->elems);
        if (!t->elems) {
            return NULL;
        }
    }
    return t;
}

static enum anml_status parse_type_inner(struct parser *p, struct mil_type **out) {
    const struct mil_token t = *peek(p, 0);
    if (t.kind != MIL_TOK_IDENT) {
        return expected(p, &t, "a type", NULL);
    }
    enum anml_status st;
    if (tok_word(p, &t, "tensor")) {
        next_tok(p);
        enum anml_dtype dt = ANML_DTYPE_INVALID;
        int32_t rank = 0;
        int64_t dims[MIL_MAX_RANK] = { 0 };
        if ((st = expect_punct(p, '<', "tensor type")) != ANML_OK ||
            (st = parse_dtype(p, &dt)) != ANML_OK ||
            (st = expect_punct(p, ',', "tensor type")) != ANML_OK ||
            (st = parse_shape(p, &rank, dims)) != ANML_OK ||
            (st = expect_punct(p, '>', "tensor type")) != ANML_OK) {
            return st;
        }
        *out = anml__mil_tensor_type(p->arena, dt, rank, dims);
        return *out ? ANML_OK : nomem(p);
    }
    if (tok_word(p, &t, "state")) {
        next_tok(p);
        struct mil_type *ty = new_type(p, MIL_TYPE_STATE, 1);
        if (!ty) {
            return nomem(p);
        }
        if ((st = expect_punct(p, '<', "state type")) != ANML_OK) {
            return st;
        }
        const struct mil_token inner = *peek(p, 0);
        if ((st = parse_type(p, &ty->elems[0])) != ANML_OK) {
            return st;
        }
        if (ty->elems[0]->kind != MIL_TYPE_TENSOR) {
            return fail(p, &inner, ANML_E_FORMAT, "a state must wrap a tensor type");
        }
        if ((st = expect_punct(p, '>', "state type")) != ANML_OK) {
            return st;
        }
        *out = ty;
        return ANML_OK;
    }
    if (tok_word(p, &t, "list")) {
        next_tok(p);
        struct mil_type *ty = new_type(p, MIL_TYPE_LIST, 1);
        if (!ty) {
            return nomem(p);
        }
        if ((st = expect_punct(p, '<', "list type")) != ANML_OK ||
            (st = parse_type(p, &ty->elems[0])) != ANML_OK ||
            (st = expect_punct(p, ',', "list type")) != ANML_OK) {
            return st;
        }
        if (accept_punct(p, '?')) {
            ty->list_length = MIL_DIM_UNKNOWN;
        } else if ((st = parse_count(p, "a list length (integer or '?')", &ty->list_length)) !=
                   ANML_OK) {
            return st;
        }
        if ((st = expect_punct(p, '>', "list type")) != ANML_OK) {
            return st;
        }
        *out = ty;
        return ANML_OK;
    }
    if (tok_word(p, &t, "tuple")) {
        next_tok(p);
        if ((st = expect_punct(p, '<', "tuple type")) != ANML_OK) {
            return st;
        }
        struct mil_type **elems = NULL;
        int32_t n = 0, cap = 0;
        for (;;) {
            struct mil_type **ne = grow(p, elems, n, &cap, sizeof *elems);
            if (!ne) {
                return p->err ? p->err->code : ANML_E_NOMEM;
            }
            elems = ne;
            if ((st = parse_type(p, &elems[n])) != ANML_OK) {
                return st;
            }
            n++;
            if (accept_punct(p, ',')) {
                continue;
            }
            if (accept_punct(p, '>')) {
                break;
            }
            return expected(p, peek(p, 0), "',' or '>'", "tuple type");
        }
        struct mil_type *ty = new_type(p, MIL_TYPE_TUPLE, 0);
        if (!ty) {
            return nomem(p);
        }
        ty->n_elems = n;
        ty->elems = elems;
        *out = ty;
        return ANML_OK;
    }
    if (tok_word(p, &t, "dict")) {
        next_tok(p);
        struct mil_type *ty = new_type(p, MIL_TYPE_DICT, 2);
        if (!ty) {
            return nomem(p);
        }
        if ((st = expect_punct(p, '<', "dict type")) != ANML_OK ||
            (st = parse_type(p, &ty->elems[0])) != ANML_OK ||
            (st = expect_punct(p, ',', "dict type")) != ANML_OK ||
            (st = parse_type(p, &ty->elems[1])) != ANML_OK ||
            (st = expect_punct(p, '>', "dict type")) != ANML_OK) {
            return st;
        }
        *out = ty;
        return ANML_OK;
    }
    enum anml_dtype dt = anml__dtype_from_name(p->lx.text + t.off, t.len);
    if (dt == ANML_DTYPE_INVALID) {
        char found[64];
        describe(p, &t, found, sizeof found);
        return fail(p, &t, ANML_E_FORMAT, "unknown type %s", found);
    }
    next_tok(p);
    *out = anml__mil_tensor_type(p->arena, dt, 0, NULL);
    return *out ? ANML_OK : nomem(p);
}

static enum anml_status parse_type(struct parser *p, struct mil_type **out) {
    enum anml_status st = enter(p);
    if (st != ANML_OK) {
        return st;
    }
    st = parse_type_inner(p, out);
    p->depth--;
    return st;
}

/* True when the identifier names a type, i.e. a value can start here. */
static bool is_type_word(const struct parser *p, const struct mil_token *t) {
    if (t->kind != MIL_TOK_IDENT) {
        return false;
    }
    return tok_word(p, t, "tensor") || tok_word(p, t, "state") || tok_word(p, t, "list") ||
           tok_word(p, t, "tuple") || tok_word(p, t, "dict") ||
           anml__dtype_from_name(p->lx.text + t->off, t->len) != ANML_DTYPE_INVALID;
}

/* ---- scalar elements ---- */

static bool tok_copy(const struct parser *p, const struct mil_token *t, char *buf, size_t cap) {
    if (t->len >= cap) {
        return false;
    }
    memcpy(buf, p->lx.text + t->off, t->len);
    buf[t->len] = '\0';
    return true;
}

static char *unescape(struct parser *p, const struct mil_token *t) {
    const char *s = p->lx.text + t->off + 1;
    size_t n = t->len - 2;
    char *d = anml__arena_alloc(p->arena, n + 1);
    if (!d) {
        return NULL;
    }
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '\\' && i + 1 < n) {
            c = s[++i];
            c = c == 'n' ? '\n' : c == 't' ? '\t' : c;
        }
        d[j++] = c;
    }
    d[j] = '\0';
    return d;
}

/* Inclusive integer range of an integer dtype: [-neg_max, pos_max]. */
static bool int_range(enum anml_dtype dt, uint64_t *neg_max, uint64_t *pos_max) {
    switch (dt) {
    case ANML_DTYPE_INT4: *neg_max = 8, *pos_max = 7; return true;
    case ANML_DTYPE_INT8: *neg_max = 128, *pos_max = 127; return true;
    case ANML_DTYPE_INT16: *neg_max = 32768, *pos_max = 32767; return true;
    case ANML_DTYPE_INT32: *neg_max = 2147483648u, *pos_max = 2147483647u; return true;
    case ANML_DTYPE_INT64: *neg_max = (uint64_t)1 << 63, *pos_max = INT64_MAX; return true;
    case ANML_DTYPE_UINT1: *neg_max = 0, *pos_max = 1; return true;
    case ANML_DTYPE_UINT2: *neg_max = 0, *pos_max = 3; return true;
    case ANML_DTYPE_UINT3: *neg_max = 0, *pos_max = 7; return true;
    case ANML_DTYPE_UINT4: *neg_max = 0, *pos_max = 15; return true;
    case ANML_DTYPE_UINT6: *neg_max = 0, *pos_max = 63; return true;
    case ANML_DTYPE_UINT8: *neg_max = 0, *pos_max = 255; return true;
    case ANML_DTYPE_UINT16: *neg_max = 0, *pos_max = 65535; return true;
    case ANML_DTYPE_UINT32: *neg_max = 0, *pos_max = 4294967295u; return true;
    case ANML_DTYPE_UINT64: *neg_max = 0, *pos_max = UINT64_MAX; return true;
    default: return false;
    }
}

static enum anml_status expected_value(struct parser *p, const struct mil_token *t,
                                       enum anml_dtype dt) {
    char what[48];
    snprintf(what, sizeof what, "an %s value", anml_dtype_name(dt));
    return expected(p, t, what, NULL);
}

static enum anml_status parse_int_elem(struct parser *p, const struct mil_token *t,
                                       enum anml_dtype dt, void *dst) {
    if (t->kind != MIL_TOK_INT) {
        return expected_value(p, t, dt);
    }
    const char *s = p->lx.text + t->off;
    bool neg = s[0] == '-';
    uint64_t mag = 0;
    bool overflow = false;
    for (size_t i = neg ? 1 : 0; i < t->len; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (mag > (UINT64_MAX - d) / 10) {
            overflow = true;
            break;
        }
        mag = mag * 10 + d;
    }
    uint64_t neg_max = 0, pos_max = 0;
    int_range(dt, &neg_max, &pos_max);
    if (overflow || (neg && mag > neg_max) || (!neg && mag > pos_max)) {
        char found[64];
        describe(p, t, found, sizeof found);
        return fail(p, t, ANML_E_FORMAT, "integer %s is out of range for %s (-%llu..%llu)", found,
                    anml_dtype_name(dt), (unsigned long long)neg_max, (unsigned long long)pos_max);
    }
    int64_t v = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    switch (dt) {
    case ANML_DTYPE_INT4:
    case ANML_DTYPE_INT8: {
        int8_t x = (int8_t)v;
        memcpy(dst, &x, 1);
        break;
    }
    case ANML_DTYPE_INT16: {
        int16_t x = (int16_t)v;
        memcpy(dst, &x, 2);
        break;
    }
    case ANML_DTYPE_INT32: {
        int32_t x = (int32_t)v;
        memcpy(dst, &x, 4);
        break;
    }
    case ANML_DTYPE_INT64: memcpy(dst, &v, 8); break;
    case ANML_DTYPE_UINT16: {
        uint16_t x = (uint16_t)mag;
        memcpy(dst, &x, 2);
        break;
    }
    case ANML_DTYPE_UINT32: {
        uint32_t x = (uint32_t)mag;
        memcpy(dst, &x, 4);
        break;
    }
    case ANML_DTYPE_UINT64: memcpy(dst, &mag, 8); break;
    default: { /* uint1..uint8: one byte each */
        uint8_t x = (uint8_t)mag;
        memcpy(dst, &x, 1);
        break;
    }
    }
    return ANML_OK;
}

static enum anml_status parse_float_elem(struct parser *p, const struct mil_token *t,
                                         enum anml_dtype dt, void *dst) {
    bool word = tok_word(p, t, "inf") || tok_word(p, t, "nan");
    if (t->kind != MIL_TOK_FLOAT && t->kind != MIL_TOK_INT && !word) {
        return expected_value(p, t, dt);
    }
    char buf[MIL_NUM_BUF];
    if (!tok_copy(p, t, buf, sizeof buf)) {
        return fail(p, t, ANML_E_FORMAT, "number longer than %d characters", MIL_NUM_BUF - 1);
    }
    char *end = NULL;
    bool finite_literal = !word && strstr(buf, "inf") == NULL && strstr(buf, "nan") == NULL;
    if (dt == ANML_DTYPE_F64) {
        double d = strtod(buf, &end);
        if (end != buf + t->len) {
            return expected_value(p, t, dt);
        }
        if (finite_literal && isinf(d)) {
            return fail(p, t, ANML_E_FORMAT, "%s is out of range for fp64", buf);
        }
        memcpy(dst, &d, 8);
        return ANML_OK;
    }
    float f = strtof(buf, &end);
    if (end != buf + t->len) {
        return expected_value(p, t, dt);
    }
    bool overflow = finite_literal && isinf(f);
    if (dt == ANML_DTYPE_F32) {
        memcpy(dst, &f, 4);
    } else {
        uint16_t h = dt == ANML_DTYPE_F16 ? anml__fp32_to_fp16(f) : anml__fp32_to_bf16(f);
        overflow = overflow ||
                   (finite_literal && (h & 0x7fff) == (dt == ANML_DTYPE_F16 ? 0x7c00 : 0x7f80));
        memcpy(dst, &h, 2);
    }
    if (overflow) {
        return fail(p, t, ANML_E_FORMAT, "%s is out of range for %s", buf, anml_dtype_name(dt));
    }
    return ANML_OK;
}

/* One scalar of dtype dt into dst (anml__dtype_size bytes, or a char * for strings). */
static enum anml_status parse_elem(struct parser *p, enum anml_dtype dt, void *dst) {
    const struct mil_token t = *peek(p, 0);
    enum anml_status st = ANML_OK;
    switch (dt) {
    case ANML_DTYPE_STRING: {
        if (t.kind != MIL_TOK_STRING) {
            return expected(p, &t, "a string", NULL);
        }
        char *s = unescape(p, &t);
        if (!s) {
            return nomem(p);
        }
        memcpy(dst, &s, sizeof s);
        break;
    }
    case ANML_DTYPE_BOOL: {
        uint8_t b = tok_word(p, &t, "true");
        if (!b && !tok_word(p, &t, "false")) {
            return expected(p, &t, "'true' or 'false'", NULL);
        }
        memcpy(dst, &b, 1);
        break;
    }
    case ANML_DTYPE_F16:
    case ANML_DTYPE_F32:
    case ANML_DTYPE_F64:
    case ANML_DTYPE_BF16: st = parse_float_elem(p, &t, dt, dst); break;
    case ANML_DTYPE_FP8E4M3FN:
    case ANML_DTYPE_FP8E5M2:
        return fail(p, &t, ANML_E_UNSUPPORTED, "immediate %s values are not supported",
                    anml_dtype_name(dt));
    default: st = parse_int_elem(p, &t, dt, dst); break;
    }
    if (st == ANML_OK) {
        next_tok(p);
    }
    return st;
}

/* ---- literals ---- */

static enum anml_status parse_literal(struct parser *p, struct mil_type *type,
                                      struct mil_value **out);
static enum anml_status parse_value(struct parser *p, struct mil_value **out);

/* Collects the elements of a nested array literal, row-major, checking every row length against
 * the declared dim (or, for '?', against the first row seen at that axis). */
struct tensor_builder {
    enum anml_dtype dt;
    size_t esize;
    int32_t rank;
    const int64_t *decl;
    int64_t dims[MIL_MAX_RANK]; /* -1 until a '?' dim is inferred */
    uint8_t *data;
    int64_t n, cap;
};

static enum anml_status tb_slot(struct parser *p, struct tensor_builder *b, void **slot) {
    if (b->n == b->cap) {
        int64_t nc = b->cap ? b->cap * 2 : 16;
        void *nd = anml__arena_array(p->arena, (size_t)nc, b->esize);
        if (!nd) {
            return nomem(p);
        }
        if (b->n > 0) {
            memcpy(nd, b->data, (size_t)b->n * b->esize);
        }
        b->data = nd;
        b->cap = nc;
    }
    *slot = b->data + (size_t)b->n * b->esize;
    b->n++;
    return ANML_OK;
}

static enum anml_status parse_nested_inner(struct parser *p, struct tensor_builder *b,
                                           int32_t axis);

static enum anml_status parse_nested(struct parser *p, struct tensor_builder *b, int32_t axis) {
    if (axis == b->rank) {
        void *slot = NULL;
        enum anml_status st = tb_slot(p, b, &slot);
        return st != ANML_OK ? st : parse_elem(p, b->dt, slot);
    }
    enum anml_status st = enter(p);
    if (st != ANML_OK) {
        return st;
    }
    st = parse_nested_inner(p, b, axis);
    p->depth--;
    return st;
}

static enum anml_status parse_nested_inner(struct parser *p, struct tensor_builder *b,
                                           int32_t axis) {
    const struct mil_token open = *peek(p, 0);
    char ctx[64];
    snprintf(ctx, sizeof ctx, "axis %d of a rank-%d tensor literal", axis, b->rank);
    enum anml_status st = expect_punct(p, '[', ctx);
    if (st != ANML_OK) {
        return st;
    }
    int64_t count = 0;
    if (!accept_punct(p, ']')) {
        for (;;) {
            st = parse_nested(p, b, axis + 1);
            if (st != ANML_OK) {
                return st;
            }
            count++;
            if (b->dims[axis] >= 0 && count > b->dims[axis]) {
                return fail(p, &open, ANML_E_FORMAT,
                            "too many elements along axis %d of the tensor literal: expected "
                            "%lld%s",
                            axis, (long long)b->dims[axis],
                            b->decl[axis] >= 0 ? "" : " as in the first row");
            }
            if (accept_punct(p, ',')) {
                continue;
            }
            if (accept_punct(p, ']')) {
                break;
            }
            return expected(p, peek(p, 0), "',' or ']'", ctx);
        }
    }
    if (b->dims[axis] < 0) {
        b->dims[axis] = count;
    } else if (count != b->dims[axis]) {
        return fail(p, &open, ANML_E_FORMAT,
                    "expected %lld elements along axis %d of the tensor literal%s, found %lld",
                    (long long)b->dims[axis], axis,
                    b->decl[axis] >= 0 ? "" : " (as in the first row)", (long long)count);
    }
    return ANML_OK;
}

static enum anml_status parse_tensor_literal(struct parser *p, struct mil_type *type,
                                             struct mil_value **out) {
    const struct mil_token start = *peek(p, 0);
    enum anml_dtype dt = type->dtype;
    if (dt == ANML_DTYPE_FP8E4M3FN || dt == ANML_DTYPE_FP8E5M2) {
        return fail(p, &start, ANML_E_UNSUPPORTED, "immediate %s values are not supported",
                    anml_dtype_name(dt));
    }
    size_t esize = dt == ANML_DTYPE_STRING ? sizeof(char *) : anml__dtype_size(dt);
    struct mil_value *v = anml__arena_alloc(p->arena, sizeof *v);
    if (!v) {
        return nomem(p);
    }
    v->kind = MIL_VALUE_TENSOR;
    v->type = type;
    enum anml_status st;
    if (type->rank == 0 || !tok_punct(&start, '[')) {
        /* a scalar, or a bare scalar filling every element (dialect D) */
        int64_t numel = 1;
        for (int32_t i = 0; i < type->rank; i++) {
            if (type->dims[i] == MIL_DIM_UNKNOWN) {
                return fail(p, &start, ANML_E_FORMAT,
                            "a single value cannot fill a tensor with unknown dimensions "
                            "(expected '[')");
            }
        }
        if (!anml__shape_numel(type->dims, type->rank, &numel) ||
            numel > MIL_MAX_SPLAT_BYTES / (int64_t)esize) {
            return fail(p, &start, ANML_E_FORMAT,
                        "a single value cannot fill %lld elements (limit %lld bytes)",
                        (long long)numel, (long long)MIL_MAX_SPLAT_BYTES);
        }
        uint8_t *data = anml__arena_array(p->arena, numel > 0 ? (size_t)numel : 1, esize);
        uint8_t one[16];
        if (!data) {
            return nomem(p);
        }
        if ((st = parse_elem(p, dt, one)) != ANML_OK) {
            return st;
        }
        for (int64_t i = 0; i < numel; i++) {
            memcpy(data + (size_t)i * esize, one, esize);
        }
        v->n_elem = numel;
        v->data = data;
        *out = v;
        return ANML_OK;
    }
    struct tensor_builder b = { .dt = dt, .esize = esize, .rank = type->rank, .decl = type->dims };
    bool all_known = true;
    for (int32_t i = 0; i < type->rank; i++) {
        b.dims[i] = type->dims[i];
        all_known = all_known && type->dims[i] >= 0;
    }
    if (all_known) {
        /* Preallocate, but never more than the rest of the text could hold (each element takes
         * at least two bytes with its separator), so an absurd declared size fails cleanly. */
        int64_t numel;
        if (!anml__shape_numel(type->dims, type->rank, &numel)) {
            return fail(p, &start, ANML_E_FORMAT, "tensor literal too large");
        }
        size_t rest = p->lx.len - start.off;
        int64_t cap = (int64_t)(rest / 2 + 1) < numel ? (int64_t)(rest / 2 + 1) : numel;
        if (cap > 0) {
            b.data = anml__arena_array(p->arena, (size_t)cap, esize);
            if (!b.data) {
                return nomem(p);
            }
            b.cap = cap;
        }
    }
    if ((st = parse_nested(p, &b, 0)) != ANML_OK) {
        return st;
    }
    bool inferred = false;
    for (int32_t i = 0; i < type->rank; i++) {
        if (b.dims[i] < 0) {
            b.dims[i] = 0; /* under an empty outer row */
        }
        inferred = inferred || type->dims[i] < 0;
    }
    int64_t numel;
    if (!anml__shape_numel(b.dims, b.rank, &numel) || numel != b.n) {
        return fail(p, &start, ANML_E_FORMAT, "tensor literal is not rectangular");
    }
    if (inferred) {
        v->type = anml__mil_tensor_type(p->arena, dt, type->rank, b.dims);
        if (!v->type) {
            return nomem(p);
        }
    }
    if (!b.data) {
        b.data = anml__arena_alloc(p->arena, esize);
        if (!b.data) {
            return nomem(p);
        }
    }
    v->n_elem = b.n;
    v->data = b.data;
    *out = v;
    return ANML_OK;
}

static enum anml_status push_item(struct parser *p, struct mil_value *v, int32_t *cap,
                                  struct mil_value *item) {
    struct mil_value **ni = grow(p, v->items, v->n_items, cap, sizeof *v->items);
    if (!ni) {
        return p->err ? p->err->code : ANML_E_NOMEM;
    }
    v->items = ni;
    v->items[v->n_items++] = item;
    return ANML_OK;
}

static enum anml_status parse_list_literal(struct parser *p, struct mil_type *type,
                                           struct mil_value *v) {
    const struct mil_token open = *peek(p, 0);
    enum anml_status st = expect_punct(p, '[', "list literal");
    int32_t cap = 0;
    if (st != ANML_OK) {
        return st;
    }
    if (!accept_punct(p, ']')) {
        for (;;) {
            struct mil_value *item = NULL;
            if ((st = parse_literal(p, type->elems[0], &item)) != ANML_OK ||
                (st = push_item(p, v, &cap, item)) != ANML_OK) {
                return st;
            }
            if (accept_punct(p, ',')) {
                continue;
            }
            if (accept_punct(p, ']')) {
                break;
            }
            return expected(p, peek(p, 0), "',' or ']'", "list literal");
        }
    }
    if (type->list_length >= 0 && v->n_items != type->list_length) {
        return fail(p, &open, ANML_E_FORMAT, "expected %lld list items, found %d",
                    (long long)type->list_length, v->n_items);
    }
    return ANML_OK;
}

static enum anml_status parse_tuple_literal(struct parser *p, struct mil_type *type,
                                            struct mil_value *v) {
    const struct mil_token open = *peek(p, 0);
    enum anml_status st = expect_punct(p, '(', "tuple literal");
    int32_t cap = 0;
    if (st != ANML_OK) {
        return st;
    }
    for (int32_t i = 0; i < type->n_elems; i++) {
        if (i > 0 && !accept_punct(p, ',')) {
            if (at_punct(p, ')')) {
                return fail(p, &open, ANML_E_FORMAT, "expected %d tuple items, found %d",
                            type->n_elems, i);
            }
            return expected(p, peek(p, 0), "','", "tuple literal");
        }
        struct mil_value *item = NULL;
        if ((st = parse_literal(p, type->elems[i], &item)) != ANML_OK ||
            (st = push_item(p, v, &cap, item)) != ANML_OK) {
            return st;
        }
    }
    if (at_punct(p, ',')) {
        return fail(p, &open, ANML_E_FORMAT,
                    "tuple literal has more than the %d items its type "
                    "declares",
                    type->n_elems);
    }
    return expect_punct(p, ')', "tuple literal");
}

static enum anml_status parse_dict_literal(struct parser *p, struct mil_type *type,
                                           struct mil_value *v) {
    enum anml_status st = expect_punct(p, '{', "dict literal");
    int32_t cap = 0;
    if (st != ANML_OK || accept_punct(p, '}')) {
        return st;
    }
    for (;;) {
        struct mil_value *key = NULL, *val = NULL;
        if ((st = expect_punct(p, '{', "dict literal entry")) != ANML_OK ||
            (st = parse_literal(p, type->elems[0], &key)) != ANML_OK ||
            (st = expect_punct(p, ',', "dict literal entry")) != ANML_OK ||
            (st = parse_literal(p, type->elems[1], &val)) != ANML_OK ||
            (st = expect_punct(p, '}', "dict literal entry")) != ANML_OK ||
            (st = push_item(p, v, &cap, key)) != ANML_OK ||
            (st = push_item(p, v, &cap, val)) != ANML_OK) {
            return st;
        }
        if (accept_punct(p, ',')) {
            continue;
        }
        if (accept_punct(p, '}')) {
            return ANML_OK;
        }
        return expected(p, peek(p, 0), "',' or '}'", "dict literal");
    }
}

static enum anml_status parse_literal_inner(struct parser *p, struct mil_type *type,
                                            struct mil_value **out) {
    if (type->kind == MIL_TYPE_TENSOR) {
        return parse_tensor_literal(p, type, out);
    }
    if (type->kind == MIL_TYPE_STATE) {
        return fail(p, peek(p, 0), ANML_E_FORMAT, "a state type has no literal values");
    }
    struct mil_value *v = anml__arena_alloc(p->arena, sizeof *v);
    if (!v) {
        return nomem(p);
    }
    v->type = type;
    enum anml_status st;
    switch (type->kind) {
    case MIL_TYPE_LIST:
        v->kind = MIL_VALUE_LIST;
        st = parse_list_literal(p, type, v);
        break;
    case MIL_TYPE_TUPLE:
        v->kind = MIL_VALUE_TUPLE;
        st = parse_tuple_literal(p, type, v);
        break;
    default:
        v->kind = MIL_VALUE_DICT;
        st = parse_dict_literal(p, type, v);
        break;
    }
    *out = v;
    return st;
}

static enum anml_status parse_literal(struct parser *p, struct mil_type *type,
                                      struct mil_value **out) {
    enum anml_status st = enter(p);
    if (st != ANML_OK) {
        return st;
    }
    st = parse_literal_inner(p, type, out);
    p->depth--;
    return st;
}

/* BLOBFILE(path = <string>, offset = <integer>) inside `type( ... )`. */
static enum anml_status parse_blobfile(struct parser *p, struct mil_type *type,
                                       struct mil_value **out) {
    const struct mil_token kw = next_tok(p);
    if (type->kind != MIL_TYPE_TENSOR) {
        return fail(p, &kw, ANML_E_FORMAT, "BLOBFILE needs a tensor type");
    }
    if (anml__dtype_blob_code(type->dtype) == 0) {
        return fail(p, &kw, ANML_E_FORMAT, "dtype %s cannot be stored in a weight file",
                    anml_dtype_name(type->dtype));
    }
    int64_t numel;
    for (int32_t i = 0; i < type->rank; i++) {
        if (type->dims[i] == MIL_DIM_UNKNOWN) {
            return fail(p, &kw, ANML_E_FORMAT, "BLOBFILE value needs a fully known shape");
        }
    }
    if (!anml__shape_numel(type->dims, type->rank, &numel)) {
        return fail(p, &kw, ANML_E_FORMAT, "BLOBFILE shape too large");
    }
    struct mil_value *v = anml__arena_alloc(p->arena, sizeof *v);
    if (!v) {
        return nomem(p);
    }
    v->kind = MIL_VALUE_BLOB;
    v->type = type;
    v->n_elem = numel;
    enum anml_status st = expect_punct(p, '(', "BLOBFILE");
    bool have_path = false, have_offset = false;
    if (st != ANML_OK) {
        return st;
    }
    for (;;) {
        const struct mil_token key = *peek(p, 0);
        bool is_path = tok_word(p, &key, "path") && !have_path;
        bool is_offset = tok_word(p, &key, "offset") && !have_offset;
        if (!is_path && !is_offset) {
            return expected(p, &key, have_path ? "'offset'" : "'path'", "BLOBFILE");
        }
        next_tok(p);
        struct mil_value *kv = NULL;
        if ((st = expect_punct(p, '=', "BLOBFILE")) != ANML_OK) {
            return st;
        }
        const struct mil_token vt = *peek(p, 0);
        if ((st = parse_value(p, &kv)) != ANML_OK) {
            return st;
        }
        if (kv->kind != MIL_VALUE_TENSOR || kv->n_elem != 1) {
            return fail(p, &vt, ANML_E_FORMAT, "BLOBFILE %s must be a scalar",
                        is_path ? "path" : "offset");
        }
        if (is_path) {
            if (kv->type->dtype != ANML_DTYPE_STRING) {
                return fail(p, &vt, ANML_E_FORMAT, "BLOBFILE path must be a string");
            }
            memcpy(&v->blob_path, kv->data, sizeof v->blob_path);
            have_path = true;
        } else {
            uint64_t off = 0;
            switch (kv->type->dtype) {
            case ANML_DTYPE_UINT64: memcpy(&off, kv->data, 8); break;
            case ANML_DTYPE_UINT32: {
                uint32_t x;
                memcpy(&x, kv->data, 4);
                off = x;
                break;
            }
            case ANML_DTYPE_INT64:
            case ANML_DTYPE_INT32: {
                int64_t x;
                if (kv->type->dtype == ANML_DTYPE_INT64) {
                    memcpy(&x, kv->data, 8);
                } else {
                    int32_t y;
                    memcpy(&y, kv->data, 4);
                    x = y;
                }
                if (x < 0) {
                    return fail(p, &vt, ANML_E_FORMAT, "BLOBFILE offset is negative");
                }
                off = (uint64_t)x;
                break;
            }
            default:
                return fail(p, &vt, ANML_E_FORMAT, "BLOBFILE offset must be an integer, not %s",
                            anml_dtype_name(kv->type->dtype));
            }
            v->blob_offset = off;
            have_offset = true;
        }
        if (have_path && have_offset) {
            break;
        }
        if ((st = expect_punct(p, ',', "BLOBFILE")) != ANML_OK) {
            return st;
        }
    }
    if ((st = expect_punct(p, ')', "BLOBFILE")) != ANML_OK) {
        return st;
    }
    *out = v;
    return ANML_OK;
}

/* value = type '(' (literal | BLOBFILE(...)) ')' */
static enum anml_status parse_value(struct parser *p, struct mil_value **out) {
    struct mil_type *type = NULL;
    enum anml_status st = parse_type(p, &type);
    if (st != ANML_OK || (st = expect_punct(p, '(', "value")) != ANML_OK) {
        return st;
    }
    if (tok_word(p, peek(p, 0), "BLOBFILE") && tok_punct(peek(p, 1), '(')) {
        st = parse_blobfile(p, type, out);
    } else {
        st = parse_literal(p, type, out);
    }
    return st != ANML_OK ? st : expect_punct(p, ')', "value");
}

/* ---- attributes, arguments, statements, blocks ---- */

/* '[' [IDENT '=' value {, ...}] ']' */
static enum anml_status parse_attr_block(struct parser *p, int32_t *n_attrs,
                                         struct mil_attr **attrs, const char *ctx) {
    enum anml_status st = expect_punct(p, '[', ctx);
    int32_t cap = 0;
    if (st != ANML_OK || accept_punct(p, ']')) {
        return st;
    }
    for (;;) {
        struct mil_token nt;
        char *name = NULL;
        if ((st = expect_ident(p, "an attribute name", ctx, &name, &nt)) != ANML_OK) {
            return st;
        }
        for (int32_t i = 0; i < *n_attrs; i++) {
            if (strcmp((*attrs)[i].name, name) == 0) {
                return fail(p, &nt, ANML_E_FORMAT, "duplicate attribute '%s'", name);
            }
        }
        struct mil_attr *na = grow(p, *attrs, *n_attrs, &cap, sizeof **attrs);
        if (!na) {
            return p->err ? p->err->code : ANML_E_NOMEM;
        }
        *attrs = na;
        struct mil_attr *a = &(*attrs)[*n_attrs];
        a->name = name;
        if ((st = expect_punct(p, '=', ctx)) != ANML_OK ||
            (st = parse_value(p, &a->value)) != ANML_OK) {
            return st;
        }
        (*n_attrs)++;
        if (accept_punct(p, ',')) {
            continue;
        }
        if (accept_punct(p, ']')) {
            return ANML_OK;
        }
        return expected(p, peek(p, 0), "',' or ']'", ctx);
    }
}

/* binding = IDENT | value; a name is never followed by '(' or '<', a value always is. */
static enum anml_status parse_binding(struct parser *p, struct mil_binding *b) {
    const struct mil_token t = *peek(p, 0);
    if (t.kind == MIL_TOK_IDENT && is_type_word(p, &t) &&
        (tok_punct(peek(p, 1), '(') || tok_punct(peek(p, 1), '<'))) {
        return parse_value(p, &b->value);
    }
    if (t.kind != MIL_TOK_IDENT) {
        return expected(p, &t, "a value name or a typed literal", "argument");
    }
    enum anml_status st = expect_ident(p, "a value name", "argument", &b->name, NULL);
    return st != ANML_OK ? st : check_defined(p, &t, b->name);
}

/* '(' [IDENT '=' (binding | '(' binding {, binding} ')') {, ...}] ')' */
static enum anml_status parse_args(struct parser *p, struct mil_op *op) {
    enum anml_status st = expect_punct(p, '(', "operation");
    int32_t cap = 0;
    if (st != ANML_OK || accept_punct(p, ')')) {
        return st;
    }
    for (;;) {
        struct mil_token nt;
        char *name = NULL;
        if ((st = expect_ident(p, "a parameter name", "argument list", &name, &nt)) != ANML_OK) {
            return st;
        }
        for (int32_t i = 0; i < op->n_args; i++) {
            if (strcmp(op->args[i].name, name) == 0) {
                return fail(p, &nt, ANML_E_FORMAT, "duplicate argument '%s'", name);
            }
        }
        if ((st = expect_punct(p, '=', "argument list")) != ANML_OK) {
            return st;
        }
        struct mil_arg arg = { .name = name };
        int32_t bcap = 0;
        bool tuple = accept_punct(p, '(');
        for (;;) {
            struct mil_binding *nb =
                grow(p, arg.bindings, arg.n_bindings, &bcap, sizeof *arg.bindings);
            if (!nb) {
                return p->err ? p->err->code : ANML_E_NOMEM;
            }
            arg.bindings = nb;
            if ((st = parse_binding(p, &arg.bindings[arg.n_bindings])) != ANML_OK) {
                return st;
            }
            arg.n_bindings++;
            if (!tuple || accept_punct(p, ')')) {
                break;
            }
            if (!accept_punct(p, ',')) {
                return expected(p, peek(p, 0), "',' or ')'", "tuple argument");
            }
        }
        struct mil_arg *na = grow(p, op->args, op->n_args, &cap, sizeof *op->args);
        if (!na) {
            return p->err ? p->err->code : ANML_E_NOMEM;
        }
        op->args = na;
        op->args[op->n_args++] = arg;
        if (accept_punct(p, ',')) {
            continue;
        }
        if (accept_punct(p, ')')) {
            return ANML_OK;
        }
        return expected(p, peek(p, 0), "',' or ')'", "argument list");
    }
}

/* `type IDENT {, type IDENT}` ended by `end` (not consumed); names are checked for redefinition
 * here but defined by the caller. Used for results and block inputs. */
static enum anml_status parse_typed_names(struct parser *p, struct mil_named_type **out,
                                          int32_t *n_out, struct mil_token **toks, char end,
                                          const char *ctx) {
    int32_t cap = 0, tcap = 0;
    for (;;) {
        struct mil_type *type = NULL;
        struct mil_token nt;
        char *name = NULL;
        enum anml_status st = parse_type(p, &type);
        if (st != ANML_OK || (st = expect_ident(p, "a name", ctx, &name, &nt)) != ANML_OK) {
            return st;
        }
        if (nt_contains(&p->names, name)) {
            return fail(p, &nt, ANML_E_FORMAT, "redefinition of '%s'", name);
        }
        for (int32_t i = 0; i < *n_out; i++) {
            if (strcmp((*out)[i].name, name) == 0) {
                return fail(p, &nt, ANML_E_FORMAT, "redefinition of '%s'", name);
            }
        }
        struct mil_named_type *no = grow(p, *out, *n_out, &cap, sizeof **out);
        struct mil_token *ntk = no ? grow(p, *toks, *n_out, &tcap, sizeof **toks) : NULL;
        if (!no || !ntk) {
            return p->err ? p->err->code : ANML_E_NOMEM;
        }
        *out = no;
        *toks = ntk;
        (*out)[*n_out].name = name;
        (*out)[*n_out].type = type;
        (*toks)[*n_out] = nt;
        (*n_out)++;
        if (accept_punct(p, ',')) {
            continue;
        }
        if (at_punct(p, end)) {
            return ANML_OK;
        }
        char what[16];
        snprintf(what, sizeof what, "',' or '%c'", end);
        return expected(p, peek(p, 0), what, ctx);
    }
}

static enum anml_status define_all(struct parser *p, const struct mil_named_type *nt, int32_t n,
                                   const struct mil_token *toks) {
    for (int32_t i = 0; i < n; i++) {
        enum anml_status st = define_name(p, &toks[i], nt[i].name);
        if (st != ANML_OK) {
            return st;
        }
    }
    return ANML_OK;
}

static enum anml_status parse_statements(struct parser *p, struct mil_block *b, bool until_eof);

/* [ '(' type name {, type name} ')' ] '{' statements '}' '->' '(' names ')' */
static enum anml_status parse_nested_block_inner(struct parser *p, struct mil_block *b) {
    size_t mark = p->names.n_stack;
    enum anml_status st = ANML_OK;
    if (accept_punct(p, '(')) {
        struct mil_token *toks = NULL;
        if (!accept_punct(p, ')')) {
            if ((st = parse_typed_names(p, &b->inputs, &b->n_inputs, &toks, ')', "block inputs")) !=
                    ANML_OK ||
                (st = expect_punct(p, ')', "block inputs")) != ANML_OK ||
                (st = define_all(p, b->inputs, b->n_inputs, toks)) != ANML_OK) {
                return st;
            }
        }
    }
    if ((st = expect_punct(p, '{', "nested block")) != ANML_OK ||
        (st = parse_statements(p, b, false)) != ANML_OK ||
        (st = expect_punct(p, '}', "nested block")) != ANML_OK) {
        return st;
    }
    if (peek(p, 0)->kind != MIL_TOK_ARROW) {
        return expected(p, peek(p, 0), "'->'", "nested block");
    }
    next_tok(p);
    st = parse_output_names(p, &b->outputs, &b->n_outputs, "block outputs");
    nt_pop(&p->names, mark);
    return st;
}

static enum anml_status parse_nested_block(struct parser *p, struct mil_block *b) {
    enum anml_status st = enter(p);
    if (st != ANML_OK) {
        return st;
    }
    st = parse_nested_block_inner(p, b);
    p->depth--;
    return st;
}

/* statement = [results '='] IDENT args [attr_block] {nested_block} ';' */
static enum anml_status parse_statement(struct parser *p, struct mil_op *op) {
    const struct mil_token start = *peek(p, 0);
    struct mil_token *res_toks = NULL;
    enum anml_status st;
    op->line = start.line;
    op->col = start.col;
    if (accept_punct(p, '(')) {
        if ((st = parse_typed_names(p, &op->results, &op->n_results, &res_toks, ')',
                                    "result list")) != ANML_OK ||
            (st = expect_punct(p, ')', "result list")) != ANML_OK ||
            (st = expect_punct(p, '=', "statement")) != ANML_OK) {
            return st;
        }
    } else if (!(start.kind == MIL_TOK_IDENT && tok_punct(peek(p, 1), '('))) {
        if (start.kind != MIL_TOK_IDENT) {
            return expected(p, &start, "a statement (result type or operation name)", NULL);
        }
        if ((st = parse_typed_names(p, &op->results, &op->n_results, &res_toks, '=',
                                    "result list")) != ANML_OK ||
            (st = expect_punct(p, '=', "statement")) != ANML_OK) {
            return st;
        }
    }
    if ((st = expect_ident(p, "an operation name", "statement", &op->type, NULL)) != ANML_OK ||
        (st = parse_args(p, op)) != ANML_OK) {
        return st;
    }
    if (at_punct(p, '[') &&
        (st = parse_attr_block(p, &op->n_attrs, &op->attrs, "attribute list")) != ANML_OK) {
        return st;
    }
    int32_t cap = 0;
    while (at_punct(p, '(') || at_punct(p, '{')) {
        struct mil_block *nb = grow(p, op->blocks, op->n_blocks, &cap, sizeof *op->blocks);
        if (!nb) {
            return p->err ? p->err->code : ANML_E_NOMEM;
        }
        op->blocks = nb;
        memset(&op->blocks[op->n_blocks], 0, sizeof *op->blocks);
        if ((st = parse_nested_block(p, &op->blocks[op->n_blocks])) != ANML_OK) {
            return st;
        }
        op->n_blocks++;
    }
    if (!at_punct(p, ';')) {
        return expected(p, peek(p, 0),
                        op->n_blocks ? "';' or another block" : "';' (or '[', '{' after ')')",
                        "statement");
    }
    next_tok(p);
    return define_all(p, op->results, op->n_results, res_toks);
}

/* Ops are gathered in a heap vector and copied into the arena once, so a block of N ops costs
 * N op structs of arena instead of the ~3N a doubling arena array would leave behind. */
static enum anml_status parse_statements_into(struct parser *p, struct mil_op **ops, int32_t *n_ops,
                                              int32_t *cap, bool until_eof) {
    for (;;) {
        const struct mil_token *t = peek(p, 0);
        if (until_eof ? t->kind == MIL_TOK_EOF : tok_punct(t, '}')) {
            return ANML_OK;
        }
        if (t->kind == MIL_TOK_EOF) {
            return expected(p, t, "a statement or '}'", "block");
        }
        if (*n_ops == *cap) {
            if (*cap >= INT32_MAX / 2) {
                return fail(p, t, ANML_E_FORMAT, "more than %d statements in one block",
                            INT32_MAX / 2);
            }
            int32_t nc = *cap ? *cap * 2 : 16;
            struct mil_op *no = anml__realloc(*ops, (size_t)nc * sizeof *no);
            if (!no) {
                return nomem(p);
            }
            *ops = no;
            *cap = nc;
        }
        struct mil_op *op = &(*ops)[*n_ops];
        memset(op, 0, sizeof *op);
        enum anml_status st = parse_statement(p, op);
        if (st != ANML_OK) {
            return st;
        }
        (*n_ops)++;
    }
}

/* Statements up to '}' (not consumed), or to the end of the text for the test hook. */
static enum anml_status parse_statements(struct parser *p, struct mil_block *b, bool until_eof) {
    struct mil_op *ops = NULL;
    int32_t n = 0, cap = 0;
    enum anml_status st = parse_statements_into(p, &ops, &n, &cap, until_eof);
    if (st == ANML_OK && n > 0) {
        b->ops = anml__arena_array(p->arena, (size_t)n, sizeof *b->ops);
        if (b->ops) {
            memcpy(b->ops, ops, (size_t)n * sizeof *b->ops);
            b->n_ops = n;
        } else {
            st = nomem(p);
        }
    }
    anml__free(ops);
    return st;
}

/* ---- functions and the program ---- */

static enum anml_status parse_function(struct parser *p, struct mil_function *f,
                                       const struct mil_function *prev, int32_t n_prev) {
    enum anml_status st = expect_word(p, "func", "program body");
    struct mil_token nt, tag_tok;
    char *tag = NULL;
    if (st != ANML_OK ||
        (st = expect_ident(p, "a function name", "function header", &f->name, &nt)) != ANML_OK) {
        return st;
    }
    for (int32_t i = 0; i < n_prev; i++) {
        if (strcmp(prev[i].name, f->name) == 0) {
            return fail(p, &nt, ANML_E_FORMAT, "duplicate function '%s'", f->name);
        }
    }
    if ((st = expect_punct(p, '<', "function header")) != ANML_OK ||
        (st = expect_ident(p, "an opset tag (e.g. ios18)", "function header", &tag, &tag_tok)) !=
            ANML_OK) {
        return st;
    }
    /* the tag is judged only once its '>' is seen, so truncated input reads as truncated */
    if ((st = expect_punct(p, '>', "function header")) != ANML_OK) {
        return st;
    }
    f->opset = anml__mil_opset_from_tag(tag);
    if (f->opset == 0) {
        return fail(p, &tag_tok, ANML_E_UNSUPPORTED,
                    "unknown opset tag '%s' (expected ios15..ios18, ios26 or CoreML5..CoreML9)",
                    tag);
    }
    if ((st = expect_punct(p, '(', "function header")) != ANML_OK) {
        return st;
    }
    nt_pop(&p->names, 0);
    if (!accept_punct(p, ')')) {
        struct mil_token *toks = NULL;
        if ((st = parse_typed_names(p, &f->inputs, &f->n_inputs, &toks, ')',
                                    "function parameters")) != ANML_OK ||
            (st = expect_punct(p, ')', "function parameters")) != ANML_OK ||
            (st = define_all(p, f->inputs, f->n_inputs, toks)) != ANML_OK) {
            return st;
        }
    }
    if (at_punct(p, '[') &&
        (st = parse_attr_block(p, &f->n_attrs, &f->attrs, "function attributes")) != ANML_OK) {
        return st;
    }
    if ((st = expect_punct(p, '{', "function")) != ANML_OK ||
        (st = parse_statements(p, &f->block, false)) != ANML_OK ||
        (st = expect_punct(p, '}', "function")) != ANML_OK) {
        return st;
    }
    if (peek(p, 0)->kind != MIL_TOK_ARROW) {
        return expected(p, peek(p, 0), "'->'", "function");
    }
    next_tok(p);
    if ((st = parse_output_names(p, &f->block.outputs, &f->block.n_outputs, "function outputs")) !=
        ANML_OK) {
        return st;
    }
    nt_pop(&p->names, 0);
    return expect_punct(p, ';', "function");
}

static enum anml_status parse_program(struct parser *p) {
    enum anml_status st = expect_word(p, "program", NULL);
    if (st != ANML_OK || (st = expect_punct(p, '(', "program header")) != ANML_OK) {
        return st;
    }
    const struct mil_token vt = *peek(p, 0);
    char buf[MIL_NUM_BUF];
    if ((vt.kind != MIL_TOK_INT && vt.kind != MIL_TOK_FLOAT) ||
        !tok_copy(p, &vt, buf, sizeof buf)) {
        return expected(p, &vt, "a version number", "program header");
    }
    double version = strtod(buf, NULL);
    if (!(version >= 1.0 && version < 2.0)) {
        return fail(p, &vt, ANML_E_UNSUPPORTED, "unsupported program version %s (expected 1.x)",
                    buf);
    }
    next_tok(p);
    if ((st = expect_punct(p, ')', "program header")) != ANML_OK) {
        return st;
    }
    int32_t n_attrs = 0;
    struct mil_attr *attrs = NULL;
    if (at_punct(p, '[') &&
        (st = parse_attr_block(p, &n_attrs, &attrs, "program attributes")) != ANML_OK) {
        return st;
    }
    if ((st = expect_punct(p, '{', "program")) != ANML_OK) {
        return st;
    }
    struct mil_function *funcs = NULL;
    int32_t n_funcs = 0, cap = 0;
    while (!at_punct(p, '}')) {
        if (!tok_word(p, peek(p, 0), "func")) {
            return expected(p, peek(p, 0), "'func' or '}'", "program body");
        }
        struct mil_function *nf = grow(p, funcs, n_funcs, &cap, sizeof *funcs);
        if (!nf) {
            return p->err ? p->err->code : ANML_E_NOMEM;
        }
        funcs = nf;
        memset(&funcs[n_funcs], 0, sizeof *funcs);
        if ((st = parse_function(p, &funcs[n_funcs], funcs, n_funcs)) != ANML_OK) {
            return st;
        }
        n_funcs++;
    }
    next_tok(p);
    if (peek(p, 0)->kind != MIL_TOK_EOF) {
        return expected(p, peek(p, 0), "end of input", "after the program");
    }
    p->prog->n_attrs = n_attrs;
    p->prog->attrs = attrs;
    p->prog->n_functions = n_funcs;
    p->prog->functions = funcs;
    return ANML_OK;
}

static void parser_init(struct parser *p, struct mil_program *prog, const char *text, size_t len,
                        const char *filename, struct anml_error *err) {
    memset(p, 0, sizeof *p);
    p->prog = prog;
    p->arena = prog->arena;
    p->filename = filename ? filename : "model.mil";
    p->err = err;
    anml__mil_lexer_init(&p->lx, text ? text : "", text ? len : 0);
}

enum anml_status anml__mil_parse_text(struct mil_program *prog, const char *text, size_t len,
                                      const char *filename, struct anml_error *err) {
    struct anml_error local;
    struct parser p;
    parser_init(&p, prog, text, len, filename, err ? err : &local);
    enum anml_status st = parse_program(&p);
    nt_free(&p.names);
    return st;
}

enum anml_status anml__mil_parse_statements_for_test(struct mil_program *prog, const char *text,
                                                     size_t len, const char *filename,
                                                     struct anml_error *err) {
    struct anml_error local;
    struct parser p;
    parser_init(&p, prog, text, len, filename, err ? err : &local);
    p.lenient_names = true;
    struct mil_function *funcs =
        anml__arena_array(prog->arena, (size_t)prog->n_functions + 1, sizeof *funcs);
    enum anml_status st;
    if (!funcs) {
        st = nomem(&p);
    } else {
        struct mil_function *f = &funcs[prog->n_functions];
        if (prog->n_functions > 0) {
            memcpy(funcs, prog->functions, (size_t)prog->n_functions * sizeof *funcs);
        }
        f->name = anml__arena_strdup(prog->arena, "main");
        f->opset = 8;
        st = f->name ? parse_statements(&p, &f->block, true) : nomem(&p);
        if (st == ANML_OK) {
            prog->functions = funcs;
            prog->n_functions++;
        }
    }
    nt_free(&p.names);
    return st;
}
