/*
 * reference.c -- the independent reference forward: a textbook decoder (Hugging Face Qwen3 /
 * Qwen2 / LLaMA math) written from the formulas, one token at a time with a KV cache, fp32
 * weights and activations with fp64 accumulation. It shares nothing with the MIL graphs: it gets
 * its weights from the weight source (synth.h) and its RoPE from the closed form.
 *
 *   x = embed[id]
 *   per layer:  h = rms(x) * g_in
 *               q = Wq h + bq, k = Wk h + bk, v = Wv h + bv     (biases: Qwen 2.5)
 *               q, k per head: rms(.) * q_norm / k_norm           (Qwen 3)
 *               q, k: rotate-half RoPE at the token's position
 *               K/V slot [pos] = k, v; head h attends (GQA) kv head h / (heads / kv_heads)
 *               over slots 0..pos: softmax(q.k / sqrt(d)) . v
 *               x += Wo attn;  x += Wdown (silu(Wgate rms(x) g_post) * Wup rms(x) g_post)
 *   logits = W_lm rms(x) * g_final
 */
#include "llm/reference.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

struct ref_layer {
    float *w[14]; /* indexed like the writer's per-layer tensors, see k_layer_tensors */
};

enum {
    T_Q,
    T_K,
    T_V,
    T_O,
    T_GATE,
    T_UP,
    T_DOWN,
    T_IN,
    T_POST,
    T_QN,
    T_KN,
    T_QB,
    T_KB,
    T_VB,
    T_COUNT
};

struct anml_ref {
    struct anml_synth_config cfg;
    int32_t head_vocab;
    float *embed, *head, *final_norm;
    struct ref_layer *layers;
    float *kcache, *vcache; /* [layers][context][kv_heads * head_dim] */
    bool quirk;
    /* scratch */
    float *x, *h, *q, *k, *v, *att, *mid, *mid2, *tmp;
    double *p;
};

static const char *const k_layer_tensors[T_COUNT] = {
    "self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
    "self_attn.o_proj.weight", "mlp.gate_proj.weight",    "mlp.up_proj.weight",
    "mlp.down_proj.weight",    "input_layernorm.weight",  "post_attention_layernorm.weight",
    "self_attn.q_norm.weight", "self_attn.k_norm.weight", "self_attn.q_proj.bias",
    "self_attn.k_proj.bias",   "self_attn.v_proj.bias",
};

/* Loads a whole tensor (rows x cols of the HF tensor from row0) as the files hold it. */
static enum anml_status load(struct anml_ref *r, struct anml_wsrc *ws, enum anml_synth_part part,
                             const char *name, int64_t rows, int64_t cols, int64_t row0, float *dst,
                             struct anml_error *err) {
    struct anml_synth_tensor t;
    anml__synth_tensor_init(&r->cfg, part, name, rows, cols, row0, &t);
    return anml__synth_tensor_rows(ws, &t, 0, rows, dst, NULL, NULL, err);
}

static float *falloc(int64_t n) {
    return anml__calloc((size_t)(n > 0 ? n : 1), sizeof(float));
}

void anml__ref_free(struct anml_ref *r) {
    if (!r) {
        return;
    }
    if (r->layers) {
        for (int32_t l = 0; l < r->cfg.layers; l++) {
            for (int t = 0; t < T_COUNT; t++) {
                anml__free(r->layers[l].w[t]);
            }
        }
    }
    anml__free(r->layers);
    float *bufs[] = { r->embed, r->head, r->final_norm, r->kcache, r->vcache, r->x,    r->h,
                      r->q,     r->k,    r->v,          r->att,    r->mid,    r->mid2, r->tmp };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) {
        anml__free(bufs[i]);
    }
    anml__free(r->p);
    anml__free(r);
}

enum anml_status anml__ref_create(const struct anml_synth_config *cfg, struct anml_wsrc *ws,
                                  struct anml_ref **out, struct anml_error *err) {
    *out = NULL;
    enum anml_status st = anml__synth_config_check(cfg, err);
    if (st != ANML_OK) {
        return st;
    }
    struct anml_ref *r = anml__calloc(1, sizeof *r);
    if (!r) {
        return anml__err(err, ANML_E_NOMEM, "reference", "out of memory");
    }
    r->cfg = *cfg;
    const struct anml_synth_config *c = &r->cfg;
    int64_t h = c->hidden, d = c->head_dim, hq = (int64_t)c->heads * d,
            hkv = (int64_t)c->kv_heads * d, inter = c->intermediate;
    r->head_vocab = anml__synth_head_vocab(c);
    r->embed = falloc((int64_t)c->vocab * h);
    r->head = falloc((int64_t)r->head_vocab * h);
    r->final_norm = falloc(h);
    r->layers = anml__calloc((size_t)c->layers, sizeof *r->layers);
    r->kcache = falloc((int64_t)c->layers * c->context * hkv);
    r->vcache = falloc((int64_t)c->layers * c->context * hkv);
    int64_t big = h > inter ? h : inter;
    big = big > hq ? big : hq;
    r->x = falloc(h);
    r->h = falloc(h);
    r->q = falloc(hq);
    r->k = falloc(hkv);
    r->v = falloc(hkv);
    r->att = falloc(hq);
    r->mid = falloc(big);
    r->mid2 = falloc(big);
    r->tmp = falloc(big);
    r->p = anml__calloc((size_t)c->context, sizeof *r->p);
    if (!r->embed || !r->head || !r->final_norm || !r->layers || !r->kcache || !r->vcache ||
        !r->x || !r->h || !r->q || !r->k || !r->v || !r->att || !r->mid || !r->mid2 || !r->tmp ||
        !r->p) {
        anml__ref_free(r);
        return anml__err(err, ANML_E_NOMEM, "reference", "out of memory");
    }
    st = load(r, ws, ANML_SYNTH_PART_EMB, "model.embed_tokens.weight", c->vocab, h, 0, r->embed,
              err);
    for (int32_t k = 0; st == ANML_OK && k < c->split; k++) {
        int32_t rows, first;
        anml__synth_slice_rows(c, k, &rows, &first);
        st = load(r, ws, ANML_SYNTH_PART_HEAD, "lm_head.weight", rows, h, first,
                  r->head + (int64_t)first * h, err);
    }
    if (st == ANML_OK) {
        st = load(r, ws, ANML_SYNTH_PART_FFN, "model.norm.weight", h, 1, 0, r->final_norm, err);
    }
    for (int32_t l = 0; st == ANML_OK && l < c->layers; l++) {
        const int64_t shapes[T_COUNT][2] = {
            { hq, h },
            { hkv, h },
            { hkv, h },
            { h, hq },
            { inter, h },
            { inter, h },
            { h, inter },
            { h, 1 },
            { h, 1 },
            { c->arch == ANML_SYNTH_QWEN3 ? d : 0, 1 },
            { c->arch == ANML_SYNTH_QWEN3 ? d : 0, 1 },
            { c->arch == ANML_SYNTH_QWEN2 ? hq : 0, 1 },
            { c->arch == ANML_SYNTH_QWEN2 ? hkv : 0, 1 },
            { c->arch == ANML_SYNTH_QWEN2 ? hkv : 0, 1 },
        };
        for (int t = 0; st == ANML_OK && t < T_COUNT; t++) {
            if (!shapes[t][0]) {
                continue;
            }
            char name[128];
            snprintf(name, sizeof name, "model.layers.%d.%s", (int)l, k_layer_tensors[t]);
            r->layers[l].w[t] = falloc(shapes[t][0] * shapes[t][1]);
            st = r->layers[l].w[t] ? load(r, ws, ANML_SYNTH_PART_FFN, name, shapes[t][0],
                                          shapes[t][1], 0, r->layers[l].w[t], err)
                                   : anml__err(err, ANML_E_NOMEM, "reference", "out of memory");
        }
    }
    if (st != ANML_OK) {
        anml__ref_free(r);
        return st;
    }
    *out = r;
    return ANML_OK;
}

void anml__ref_set_chunk_norm_quirk(struct anml_ref *r, bool on) {
    r->quirk = on;
}

void anml__ref_reset(struct anml_ref *r) {
    int64_t n = (int64_t)r->cfg.layers * r->cfg.context * r->cfg.kv_heads * r->cfg.head_dim;
    memset(r->kcache, 0, (size_t)n * sizeof(float));
    memset(r->vcache, 0, (size_t)n * sizeof(float));
}

/* ---- the math ---- */

/* y = x / sqrt(mean(x^2) + eps) * g */
static void rmsnorm(float *y, const float *x, const float *g, int64_t n, double eps) {
    double ss = 0;
    for (int64_t i = 0; i < n; i++) {
        ss += (double)x[i] * (double)x[i];
    }
    double inv = 1.0 / sqrt(ss / (double)n + eps);
    for (int64_t i = 0; i < n; i++) {
        y[i] = (float)((double)x[i] * inv * (double)g[i]);
    }
}

/* y[rows] = W[rows, cols] x (+ b) */
static void matvec(float *y, const float *w, const float *x, const float *b, int64_t rows,
                   int64_t cols) {
    for (int64_t r = 0; r < rows; r++) {
        const float *wr = w + r * cols;
        double acc = b ? (double)b[r] : 0.0;
        for (int64_t c = 0; c < cols; c++) {
            acc += (double)wr[c] * (double)x[c];
        }
        y[r] = (float)acc;
    }
}

/* rotate-half RoPE of one head vector at position pos: angle_i = pos / base^(2i/d) */
static void rope(float *v, int64_t d, int32_t pos, double base) {
    for (int64_t i = 0; i < d / 2; i++) {
        double ang = (double)pos * pow(base, -(double)(2 * i) / (double)d);
        double cs = cos(ang), sn = sin(ang);
        double a = (double)v[i], b = (double)v[i + d / 2];
        v[i] = (float)(a * cs - b * sn);
        v[i + d / 2] = (float)(b * cs + a * sn);
    }
}

static double silu(double x) {
    return x / (1.0 + exp(-x));
}

enum anml_status anml__ref_step(struct anml_ref *r, int32_t id, int32_t pos, bool prefill,
                                float *logits, struct anml_error *err) {
    const struct anml_synth_config *c = &r->cfg;
    if (id < 0 || id >= c->vocab || pos < 0 || pos >= c->context) {
        return anml__err(err, ANML_E_INVALID_ARG, "reference",
                         "token %d at position %d outside vocab %d / context %d", (int)id, (int)pos,
                         (int)c->vocab, (int)c->context);
    }
    int64_t h = c->hidden, d = c->head_dim, nh = c->heads, nkv = c->kv_heads, hkv = nkv * d,
            hq = nh * d, inter = c->intermediate, rep = nh / nkv;
    memcpy(r->x, r->embed + (int64_t)id * h, (size_t)h * sizeof(float));
    int32_t chunk_end = 0, chunk = 0;
    for (int32_t l = 0; l < c->layers; l++) {
        if (l == chunk_end) {
            /* ANEMLL 0.3.4 Qwen infer: every chunk ends with the final norm, so the next chunk
             * starts from a normalized residual stream */
            if (chunk > 0 && r->quirk && !prefill) {
                rmsnorm(r->x, r->x, r->final_norm, h, c->rms_eps);
            }
            int32_t first, count;
            anml__synth_chunk_layers(c, chunk++, &first, &count);
            chunk_end = first + count;
        }
        float *const *w = r->layers[l].w;
        rmsnorm(r->h, r->x, w[T_IN], h, c->rms_eps);
        matvec(r->q, w[T_Q], r->h, w[T_QB], hq, h);
        matvec(r->k, w[T_K], r->h, w[T_KB], hkv, h);
        matvec(r->v, w[T_V], r->h, w[T_VB], hkv, h);
        for (int64_t hh = 0; hh < nh; hh++) {
            if (w[T_QN]) {
                rmsnorm(r->q + hh * d, r->q + hh * d, w[T_QN], d, c->rms_eps);
            }
            rope(r->q + hh * d, d, pos, c->rope_base);
        }
        for (int64_t hh = 0; hh < nkv; hh++) {
            if (w[T_KN]) {
                rmsnorm(r->k + hh * d, r->k + hh * d, w[T_KN], d, c->rms_eps);
            }
            rope(r->k + hh * d, d, pos, c->rope_base);
        }
        float *kc = r->kcache + (int64_t)l * c->context * hkv;
        float *vc = r->vcache + (int64_t)l * c->context * hkv;
        memcpy(kc + (int64_t)pos * hkv, r->k, (size_t)hkv * sizeof(float));
        memcpy(vc + (int64_t)pos * hkv, r->v, (size_t)hkv * sizeof(float));
        double scale = 1.0 / sqrt((double)d);
        for (int64_t hh = 0; hh < nh; hh++) {
            int64_t kvh = hh / rep;
            const float *qh = r->q + hh * d;
            double mx = -(double)INFINITY;
            for (int32_t j = 0; j <= pos; j++) {
                const float *kj = kc + (int64_t)j * hkv + kvh * d;
                double s = 0;
                for (int64_t i = 0; i < d; i++) {
                    s += (double)qh[i] * (double)kj[i];
                }
                r->p[j] = s * scale;
                mx = r->p[j] > mx ? r->p[j] : mx;
            }
            double sum = 0;
            for (int32_t j = 0; j <= pos; j++) {
                r->p[j] = exp(r->p[j] - mx);
                sum += r->p[j];
            }
            for (int64_t i = 0; i < d; i++) {
                double acc = 0;
                for (int32_t j = 0; j <= pos; j++) {
                    acc += r->p[j] * (double)vc[(int64_t)j * hkv + kvh * d + i];
                }
                r->att[hh * d + i] = (float)(acc / sum);
            }
        }
        matvec(r->tmp, w[T_O], r->att, NULL, h, hq);
        for (int64_t i = 0; i < h; i++) {
            r->x[i] += r->tmp[i];
        }
        rmsnorm(r->h, r->x, w[T_POST], h, c->rms_eps);
        matvec(r->mid, w[T_GATE], r->h, NULL, inter, h);
        matvec(r->mid2, w[T_UP], r->h, NULL, inter, h);
        for (int64_t i = 0; i < inter; i++) {
            r->mid[i] = (float)(silu((double)r->mid[i]) * (double)r->mid2[i]);
        }
        matvec(r->tmp, w[T_DOWN], r->mid, NULL, h, inter);
        for (int64_t i = 0; i < h; i++) {
            r->x[i] += r->tmp[i];
        }
    }
    if (logits) {
        rmsnorm(r->h, r->x, r->final_norm, h, c->rms_eps);
        matvec(logits, r->head, r->h, NULL, r->head_vocab, h);
    }
    return ANML_OK;
}

enum anml_status anml__ref_generate(struct anml_ref *r, const int32_t *prompt, int32_t n_prompt,
                                    int32_t n_gen, const int32_t *force, int32_t *gen,
                                    float *logits, struct anml_error *err) {
    if (n_prompt < 1 || n_gen < 0 || (int64_t)n_prompt + n_gen - 1 > r->cfg.context) {
        return anml__err(err, ANML_E_INVALID_ARG, "reference",
                         "%d prompt + %d generated tokens do not fit context %d", (int)n_prompt,
                         (int)n_gen, (int)r->cfg.context);
    }
    anml__ref_reset(r);
    enum anml_status st = ANML_OK;
    for (int32_t i = 0; st == ANML_OK && i < n_prompt; i++) {
        st = anml__ref_step(r, prompt[i], i, true, NULL, err);
    }
    float *lg = falloc(r->head_vocab);
    if (!lg) {
        return anml__err(err, ANML_E_NOMEM, "reference", "out of memory");
    }
    int32_t tok = prompt[n_prompt - 1];
    for (int32_t s = 0; st == ANML_OK && s < n_gen; s++) {
        st = anml__ref_step(r, tok, n_prompt - 1 + s, false, lg, err);
        if (st != ANML_OK) {
            break;
        }
        int32_t best = 0;
        for (int32_t i = 1; i < r->head_vocab; i++) {
            if (lg[i] > lg[best]) {
                best = i;
            }
        }
        gen[s] = best;
        if (logits) {
            memcpy(logits + (int64_t)s * r->head_vocab, lg, (size_t)r->head_vocab * sizeof *lg);
        }
        tok = force ? force[s] : best;
    }
    anml__free(lg);
    return st;
}
