/*
 * pipeline.c -- runs an ANEMLL model the way ANEMLL's reference client (tests/chat.py) does
 * (anemll-format.md §3): one KV state shared by every chunk and function; prefill in batches of
 * B right-padded with id 0, position ids q..q+B-1 and causal-mask rows q..q+B-1; each decode step
 * re-runs the previous token through `infer` at its own position and the LM head, whose slices
 * are concatenated; greedy picks the first maximum.
 *
 * All buffers a step needs are allocated at session creation; a step allocates nothing.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "exec/exec.h"
#include "kernels/kernels.h"
#include "llm/model_internal.h"

struct anml_session {
    const struct anml_model *m;
    struct anml_state *state;
    struct anml_threadpool *pool; /* shared by all the session's contexts (run one at a time) */
    struct anml_context *emb, *head;
    struct anml_context *infer[ANML_MAX_CHUNKS], *prefill[ANML_MAX_CHUNKS];
    int32_t *tokens;  /* context tokens */
    int32_t n_tokens; /* tokens held */
    int32_t n_cached; /* tokens whose K/V are in the cache (prefilled) */
    int32_t *ids;     /* [B] */
    int32_t *pos;     /* [B] */
    int32_t cur[1];
    uint16_t *mask; /* [B, C] fp16 rows */
    float *logits;  /* [V] */
    bool busy;      /* re-entry guard for callbacks */
    struct anml_error err;
};

#define FP16_NEG_INF 0xfc00

void anml_session_free(struct anml_session *s) {
    if (!s) {
        return;
    }
    for (int32_t i = 0; i < s->m->n_chunks; i++) {
        anml_context_free(s->infer[i]);
        anml_context_free(s->prefill[i]);
    }
    anml_context_free(s->emb);
    anml_context_free(s->head);
    anml__threadpool_free(s->pool);
    anml_state_free(s->state);
    anml__free(s->tokens);
    anml__free(s->ids);
    anml__free(s->pos);
    anml__free(s->mask);
    anml__free(s->logits);
    anml__free(s);
}

enum anml_status anml_session_create(const struct anml_model *m, struct anml_session **out,
                                     struct anml_error *err) {
    *out = NULL;
    struct anml_session *s = anml__calloc(1, sizeof *s);
    if (!s) {
        return anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
    }
    s->m = m;
    enum anml_status st = anml_state_create(&s->state, err);
    if (st == ANML_OK && m->n_threads > 1 && !(s->pool = anml__threadpool_create(m->n_threads))) {
        st = anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
    }
    if (st == ANML_OK) {
        st = anml__context_create_pooled(m->emb, NULL, s->pool, &s->emb, err);
    }
    if (st == ANML_OK) {
        st = anml__context_create_pooled(m->head, NULL, s->pool, &s->head, err);
    }
    for (int32_t i = 0; st == ANML_OK && i < m->n_chunks; i++) {
        const struct anml_chunk *c = &m->chunks[i];
        st = anml__context_create_pooled(c->prog, c->infer_fn, s->pool, &s->infer[i], err);
        if (st == ANML_OK) {
            st = anml_state_add_program(s->state, c->prog, c->infer_fn, err);
        }
        if (st == ANML_OK && c->prefill_fn) {
            const struct anml_program *pp = c->prefill_prog ? c->prefill_prog : c->prog;
            st = anml__context_create_pooled(pp, c->prefill_fn, s->pool, &s->prefill[i], err);
            if (st == ANML_OK) {
                st = anml_state_add_program(s->state, pp, c->prefill_fn, err);
            }
        }
        if (st != ANML_OK) {
            anml__err_prefix(err, "chunk %d", (int)i + 1);
        }
    }
    if (st == ANML_OK) {
        s->tokens = anml__calloc((size_t)m->context, sizeof(int32_t));
        s->ids = anml__calloc((size_t)m->batch, sizeof(int32_t));
        s->pos = anml__calloc((size_t)m->batch, sizeof(int32_t));
        s->mask = anml__calloc((size_t)m->batch * (size_t)m->context, sizeof(uint16_t));
        s->logits = anml__calloc((size_t)m->vocab, sizeof(float));
        if (!s->tokens || !s->ids || !s->pos || !s->mask || !s->logits) {
            st = anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
        }
    }
    if (st != ANML_OK) {
        anml_session_free(s);
        return st;
    }
    ANML_LOG_INFO("session: %d thread(s), %s kernels", (int)m->n_threads, anml__kernels()->name);
    *out = s;
    return ANML_OK;
}

void anml_session_reset(struct anml_session *s) {
    s->n_tokens = 0;
    s->n_cached = 0;
}

int32_t anml_session_n_tokens(const struct anml_session *s) {
    return s->n_tokens;
}

const char *anml_session_errmsg(const struct anml_session *s) {
    return s->err.msg;
}

/* Causal-mask rows q..q+rows-1 ([rows, C] fp16): 0 where column <= row position, -inf after. */
static void build_mask(struct anml_session *s, int32_t q, int32_t rows) {
    int32_t C = s->m->context;
    for (int32_t r = 0; r < rows; r++) {
        uint16_t *row = s->mask + (size_t)r * (size_t)C;
        for (int32_t j = 0; j < C; j++) {
            row[j] = j <= q + r ? 0 : FP16_NEG_INF;
        }
    }
}

static enum anml_status ctx_fail(struct anml_session *s, struct anml_context *c,
                                 enum anml_status st, const char *what) {
    return anml__err(&s->err, st, NULL, "%s: %s", what, anml_context_errmsg(c));
}

/* Runs the embeddings on s->ids[0..T) and every chunk's `fn` (infer or prefill) at position q.
 * On return *hidden is the last chunk's output (borrowed from its context). */
static enum anml_status run_chunks(struct anml_session *s, int32_t T, int32_t q, bool prefill,
                                   struct anml_tensor *hidden) {
    const struct anml_model *m = s->m;
    struct anml_named_tensor ein = {
        "input_ids",
        { ANML_DTYPE_INT32, 2, { 1, T }, s->ids },
    };
    enum anml_status st = anml_context_run(s->emb, &ein, 1, NULL);
    if (st != ANML_OK) {
        return ctx_fail(s, s->emb, st, "embeddings");
    }
    struct anml_tensor h;
    anml_context_output_at(s->emb, 0, NULL, &h);
    for (int32_t i = 0; i < T; i++) {
        s->pos[i] = q + i;
    }
    s->cur[0] = q;
    build_mask(s, q, T);
    for (int32_t c = 0; c < m->n_chunks; c++) {
        struct anml_named_tensor in[4] = {
            { "hidden_states", h },
            { "position_ids", { ANML_DTYPE_INT32, 1, { T }, s->pos } },
            { "causal_mask", { ANML_DTYPE_F16, 4, { 1, 1, T, m->context }, s->mask } },
            { "current_pos", { ANML_DTYPE_INT32, 1, { 1 }, s->cur } },
        };
        struct anml_context *ctx = prefill ? s->prefill[c] : s->infer[c];
        st = anml_context_run(ctx, in, 4, s->state);
        if (st != ANML_OK) {
            char what[64];
            snprintf(what, sizeof what, "chunk %d %s", (int)c + 1, prefill ? "prefill" : "infer");
            return ctx_fail(s, ctx, st, what);
        }
        anml_context_output_at(ctx, 0, NULL, &h);
    }
    *hidden = h;
    return ANML_OK;
}

/* Writes the K/V of one token at position p through `infer` (no LM head). */
static enum anml_status infer_one(struct anml_session *s, int32_t p, struct anml_tensor *hidden) {
    s->ids[0] = s->tokens[p];
    return run_chunks(s, 1, p, false, hidden);
}

enum anml_status anml_session_prefill(struct anml_session *s, const int32_t *ids, int32_t n,
                                      anml_abort_fn abort, void *abort_ud) {
    memset(&s->err, 0, sizeof s->err);
    if (s->busy) {
        return anml__err(&s->err, ANML_E_MISUSE, NULL, "called from inside a callback");
    }
    const struct anml_model *m = s->m;
    if (n < 0 || (n > 0 && !ids) || n > m->context - s->n_tokens) {
        return anml__err(&s->err, ANML_E_INVALID_ARG, NULL,
                         "%d tokens do not fit: the session holds %d of %d", (int)n,
                         (int)s->n_tokens, (int)m->context);
    }
    for (int32_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= m->vocab) {
            return anml__err(&s->err, ANML_E_INVALID_ARG, NULL,
                             "token id %d at %d is outside the vocabulary (%d)", (int)ids[i],
                             (int)i, (int)m->vocab);
        }
    }
    memcpy(s->tokens + s->n_tokens, ids, (size_t)n * sizeof(int32_t));
    s->n_tokens += n;
    int32_t B = m->batch;
    bool has_prefill = m->chunks[0].prefill_fn != NULL;
    struct anml_tensor h;
    while (s->n_cached < s->n_tokens) {
        if (abort && abort(abort_ud)) {
            return anml__err(&s->err, ANML_E_ABORTED, NULL, "aborted");
        }
        int32_t q = s->n_cached;
        int32_t k = s->n_tokens - q < B ? s->n_tokens - q : B;
        enum anml_status st;
        if (has_prefill && q + B <= m->state_len && (k > 1 || B == 1)) {
            memset(s->ids, 0, (size_t)B * sizeof(int32_t));
            memcpy(s->ids, s->tokens + q, (size_t)k * sizeof(int32_t));
            st = run_chunks(s, B, q, true, &h);
        } else {
            /* no prefill function, a single token, or a batch that would run past the state */
            k = 1;
            st = infer_one(s, q, &h);
        }
        if (st != ANML_OK) {
            return st;
        }
        s->n_cached = q + k;
    }
    return ANML_OK;
}

enum anml_status anml_session_push(struct anml_session *s, int32_t token) {
    memset(&s->err, 0, sizeof s->err);
    if (token < 0 || token >= s->m->vocab) {
        return anml__err(&s->err, ANML_E_INVALID_ARG, NULL, "token id %d outside the vocabulary",
                         (int)token);
    }
    if (s->n_tokens >= s->m->context) {
        return anml__err(&s->err, ANML_E_INVALID_ARG, NULL, "the context (%d) is full",
                         (int)s->m->context);
    }
    s->tokens[s->n_tokens++] = token;
    return ANML_OK;
}

enum anml_status anml_session_logits(struct anml_session *s, const float **logits) {
    memset(&s->err, 0, sizeof s->err);
    if (s->busy) {
        return anml__err(&s->err, ANML_E_MISUSE, NULL, "called from inside a callback");
    }
    if (s->n_tokens == 0) {
        return anml__err(&s->err, ANML_E_MISUSE, NULL, "the session holds no token");
    }
    /* tokens pushed after the last prefill (all but the last) get their K/V written first */
    struct anml_tensor h;
    enum anml_status st;
    while (s->n_cached < s->n_tokens - 1) {
        st = infer_one(s, s->n_cached, &h);
        if (st != ANML_OK) {
            return st;
        }
        s->n_cached++;
    }
    /* ANEMLL's step: re-run the last token at its own position, then the LM head */
    int32_t p = s->n_tokens - 1;
    st = infer_one(s, p, &h);
    if (st != ANML_OK) {
        return st;
    }
    s->n_cached = s->n_tokens;
    struct anml_named_tensor in = { "hidden_states", h };
    in.tensor.rank = 3;
    in.tensor.shape[0] = 1;
    in.tensor.shape[1] = 1;
    in.tensor.shape[2] = s->m->hidden;
    st = anml_context_run(s->head, &in, 1, NULL);
    if (st != ANML_OK) {
        return ctx_fail(s, s->head, st, "lm head");
    }
    int64_t off = 0;
    for (int32_t k = 0; k < s->m->n_slices; k++) {
        struct anml_tensor t;
        if (anml_context_output(s->head, s->m->slice_name[k], &t) != ANML_OK ||
            anml_tensor_numel(&t) != s->m->slice_size[k]) {
            return anml__err(&s->err, ANML_E_INTERNAL, NULL, "lm head output '%s' is missing",
                             s->m->slice_name[k]);
        }
        if (t.dtype == ANML_DTYPE_F16) {
            const uint16_t *d = t.data;
            for (int32_t i = 0; i < s->m->slice_size[k]; i++) {
                s->logits[off + i] = anml__fp16_to_fp32(d[i]);
            }
        } else if (t.dtype == ANML_DTYPE_F32) {
            memcpy(s->logits + off, t.data, (size_t)s->m->slice_size[k] * sizeof(float));
        } else {
            return anml__err(&s->err, ANML_E_UNSUPPORTED, NULL, "lm head output '%s' is %s",
                             s->m->slice_name[k], anml_dtype_name(t.dtype));
        }
        off += s->m->slice_size[k];
    }
    *logits = s->logits;
    return ANML_OK;
}

struct anml_generate_params anml_generate_params_default(void) {
    struct anml_generate_params p;
    memset(&p, 0, sizeof p);
    p.size = sizeof p;
    return p;
}

/* First index of the maximum (torch.argmax semantics); NaN never wins. */
static int32_t argmax_first(const float *x, int32_t n) {
    int32_t best = 0;
    for (int32_t i = 1; i < n; i++) {
        if (x[i] > x[best] || (isnan(x[best]) && !isnan(x[i]))) {
            best = i;
        }
    }
    return best;
}

enum anml_status anml_session_generate(struct anml_session *s,
                                       const struct anml_generate_params *params,
                                       int32_t *n_generated) {
    struct anml_generate_params p = anml_generate_params_default();
    if (params) {
        memcpy(&p, params, params->size < sizeof p ? params->size : sizeof p);
    }
    int32_t produced = 0;
    enum anml_status st = ANML_OK;
    if (n_generated) {
        *n_generated = 0;
    }
    /* ANEMLL's loop produces the token of position pos while pos < C - 1 */
    while (s->n_tokens < s->m->context - 1 && (p.max_tokens <= 0 || produced < p.max_tokens)) {
        if (p.abort && p.abort(p.abort_ud)) {
            st = anml__err(&s->err, ANML_E_ABORTED, NULL, "aborted");
            break;
        }
        const float *logits;
        st = anml_session_logits(s, &logits);
        if (st != ANML_OK) {
            break;
        }
        int32_t tok = argmax_first(logits, s->m->vocab);
        s->tokens[s->n_tokens++] = tok;
        produced++;
        if (n_generated) {
            *n_generated = produced;
        }
        bool go_on = true;
        if (p.on_token) {
            s->busy = true;
            go_on = p.on_token(tok, p.on_token_ud);
            s->busy = false;
        }
        bool stop = false;
        for (int32_t i = 0; i < p.n_stop_ids; i++) {
            stop |= p.stop_ids[i] == tok;
        }
        if (!go_on || stop) {
            break;
        }
    }
    return st;
}

enum anml_status anml_model_forward_tokens(const struct anml_model *m, const int32_t *ids,
                                           int32_t n, float *logits, struct anml_error *err) {
    struct anml_session *s;
    enum anml_status st = anml_session_create(m, &s, err);
    if (st != ANML_OK) {
        return st;
    }
    const float *l = NULL;
    st = anml_session_prefill(s, ids, n, NULL, NULL);
    if (st == ANML_OK) {
        st = anml_session_logits(s, &l);
    }
    if (st == ANML_OK) {
        memcpy(logits, l, (size_t)m->vocab * sizeof(float));
    } else if (err) {
        *err = s->err;
    }
    anml_session_free(s);
    return st;
}
