/*
 * synth.c -- writes ANEMLL 0.3.4 model directories of any size (anemll-format.md §1-§5):
 * meta.yaml, the embeddings program, the multifunction FFN chunks (infer + prefill sharing one
 * KV state) and the split LM head, each a .mlmodelc (model.mil, metadata.json,
 * weights/weight.bin), plus tokenizer files.
 *
 * The graphs follow the genuine fixtures op for op (coremltools 9 lowering of ANEMLL's PyTorch
 * modules): mirror-LayerNorm RMSNorm, Qwen 3 q/k head norm, Qwen 2.5 qkv bias, rotate-half RoPE
 * from baked cos/sin tables gathered by position, KV writes through read_state / slice_update /
 * write_state, GQA by expand_dims + tile + reshape, Qwen softmax vs LLaMA's manual softmax,
 * Qwen's conv1d o_proj vs LLaMA's linear, the final norm where 0.3.4 puts it, and palettized
 * weights as iOS18 constexpr_lut_to_dense with one table per group of 8 output channels.
 *
 * Writing streams: each weight is produced a group of rows at a time, written to weight.bin and
 * forgotten; only small per-tensor LUT tables and the MIL text stay in memory. The weight
 * source (generator or .safetensors) and the fp16 / LUT encoding live here too and are shared
 * with the reference forward (reference.c), which reads the very values written.
 */
#include "llm/synth.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coreml/blob.h"
#include "coreml/program.h"

#define LUT_GROUP     8    /* output channels per LUT (ANEMLL's per_channel) */
#define LUT_THRESHOLD 2048 /* coremltools' weight_threshold: larger tensors are palettized */
#define HIST_BINS     2048
#define WEIGHT_PATH   "@model_path/weights/weight.bin"
#define STATE_NAME    "model_model_kv_cache_0"
#define ANEMLL_VER    "0.3.4"

/* ---- configuration ---- */

const char *anml__synth_arch_name(enum anml_synth_arch arch) {
    switch (arch) {
    case ANML_SYNTH_QWEN3: return "qwen3";
    case ANML_SYNTH_QWEN2: return "qwen2";
    case ANML_SYNTH_LLAMA: return "llama";
    }
    return "?";
}

bool anml__synth_arch_parse(const char *s, enum anml_synth_arch *out) {
    if (!strcmp(s, "qwen3")) {
        *out = ANML_SYNTH_QWEN3;
    } else if (!strcmp(s, "qwen2") || !strcmp(s, "qwen2.5") || !strcmp(s, "qwen25")) {
        *out = ANML_SYNTH_QWEN2;
    } else if (!strcmp(s, "llama")) {
        *out = ANML_SYNTH_LLAMA;
    } else {
        return false;
    }
    return true;
}

void anml__synth_arch_defaults(enum anml_synth_arch arch, struct anml_synth_config *cfg) {
    cfg->arch = arch;
    switch (arch) {
    case ANML_SYNTH_QWEN3:
        cfg->rms_eps = 1e-6;
        cfg->rope_base = 1e6;
        cfg->split = 16;
        snprintf(cfg->prefix, sizeof cfg->prefix, "qwen");
        break;
    case ANML_SYNTH_QWEN2:
        cfg->rms_eps = 1e-6;
        cfg->rope_base = 1e6;
        cfg->split = 16;
        snprintf(cfg->prefix, sizeof cfg->prefix, "qwen25");
        break;
    case ANML_SYNTH_LLAMA:
        cfg->rms_eps = 1e-5;
        cfg->rope_base = 5e5;
        cfg->split = 8;
        snprintf(cfg->prefix, sizeof cfg->prefix, "llama");
        break;
    }
}

static void set_shapes(struct anml_synth_config *c, int32_t h, int32_t l, int32_t nh, int32_t nkv,
                       int32_t d, int32_t inter, int32_t v) {
    c->hidden = h;
    c->layers = l;
    c->heads = nh;
    c->kv_heads = nkv;
    c->head_dim = d;
    c->intermediate = inter;
    c->vocab = v;
}

bool anml__synth_preset(const char *name, enum anml_synth_arch arch,
                        struct anml_synth_config *cfg) {
    struct anml_synth_config c;
    memset(&c, 0, sizeof c);
    c.chunks = 1;
    c.seed = 1;
    if (!strcmp(name, "tiny")) {
        anml__synth_arch_defaults(arch, &c);
        set_shapes(&c, 64, 2, 4, 2, 16, 128, 1024);
        c.context = 64;
        c.batch = 8;
    } else if (!strcmp(name, "qwen3-0.6b")) {
        anml__synth_arch_defaults(ANML_SYNTH_QWEN3, &c);
        set_shapes(&c, 1024, 28, 16, 8, 128, 3072, 151936);
    } else if (!strcmp(name, "qwen2.5-0.5b")) {
        anml__synth_arch_defaults(ANML_SYNTH_QWEN2, &c);
        set_shapes(&c, 896, 24, 14, 2, 64, 4864, 151936);
    } else if (!strcmp(name, "llama3.2-1b")) {
        anml__synth_arch_defaults(ANML_SYNTH_LLAMA, &c);
        set_shapes(&c, 2048, 16, 32, 8, 64, 8192, 128256);
        /* ANEMLL 0.3.4 bakes theta x rope_scaling.factor (500000 x 32), not HF's llama3 rule */
        c.rope_base = 5e5 * 32.0;
    } else {
        return false;
    }
    if (!c.context) {
        c.context = 512;
        c.batch = 64;
    }
    *cfg = c;
    return true;
}

static enum anml_status cfg_err(struct anml_error *err, const char *fmt, ...) ANML_PRINTF(2, 3);
static enum anml_status cfg_err(struct anml_error *err, const char *fmt, ...) {
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return anml__err(err, ANML_E_INVALID_ARG, "synth", "%s", msg);
}

static bool lut_ok(int32_t b) {
    return b == 0 || b == 1 || b == 2 || b == 3 || b == 4 || b == 6 || b == 8;
}

enum anml_status anml__synth_config_check(const struct anml_synth_config *c,
                                          struct anml_error *err) {
    const struct {
        const char *name;
        int32_t v, max;
    } pos[] = {
        { "hidden", c->hidden, 1 << 16 },  { "layers", c->layers, 1024 },
        { "heads", c->heads, 1024 },       { "kv-heads", c->kv_heads, 1024 },
        { "head-dim", c->head_dim, 4096 }, { "intermediate", c->intermediate, 1 << 18 },
        { "vocab", c->vocab, 1 << 24 },    { "context", c->context, 1 << 20 },
        { "batch", c->batch, 1 << 16 },    { "chunks", c->chunks, 64 },
        { "split-lm-head", c->split, 64 },
    };
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++) {
        if (pos[i].v < 1 || pos[i].v > pos[i].max) {
            return cfg_err(err, "--%s must be in 1..%d, got %d", pos[i].name, (int)pos[i].max,
                           (int)pos[i].v);
        }
    }
    if ((int)c->arch < 0 || c->arch > ANML_SYNTH_LLAMA) {
        return cfg_err(err, "unknown architecture %d", (int)c->arch);
    }
    if (c->heads % c->kv_heads != 0) {
        return cfg_err(err, "--heads (%d) must be a multiple of --kv-heads (%d)", (int)c->heads,
                       (int)c->kv_heads);
    }
    if (c->head_dim % 2 != 0) {
        return cfg_err(err, "--head-dim must be even (rotate-half RoPE), got %d", (int)c->head_dim);
    }
    if (c->batch > c->context) {
        return cfg_err(err, "--batch (%d) exceeds --context (%d)", (int)c->batch, (int)c->context);
    }
    if (c->chunks > c->layers) {
        return cfg_err(err, "--chunks (%d) exceeds --layers (%d)", (int)c->chunks, (int)c->layers);
    }
    if (c->split > c->vocab || (c->arch == ANML_SYNTH_LLAMA && c->vocab / c->split < 1)) {
        return cfg_err(err, "--split-lm-head (%d) exceeds --vocab (%d)", (int)c->split,
                       (int)c->vocab);
    }
    if (!lut_ok(c->lut_emb) || !lut_ok(c->lut_ffn) || !lut_ok(c->lut_head)) {
        return cfg_err(err, "LUT widths must be none, 1, 2, 3, 4, 6 or 8 bits");
    }
    if (!(c->rms_eps > 0) || !(c->rope_base > 1) || !isfinite(c->rope_base)) {
        return cfg_err(err, "rms eps (%g) must be > 0 and the RoPE base (%g) > 1", c->rms_eps,
                       c->rope_base);
    }
    if ((int64_t)c->heads * c->head_dim > (1 << 20) ||
        (int64_t)2 * c->layers * c->kv_heads * c->context * c->head_dim > ((int64_t)1 << 36)) {
        return cfg_err(err, "shapes too large");
    }
    if (!c->prefix[0] || strchr(c->prefix, '/')) {
        return cfg_err(err, "bad file prefix '%s'", c->prefix);
    }
    return ANML_OK;
}

void anml__synth_chunk_layers(const struct anml_synth_config *cfg, int32_t k, int32_t *first,
                              int32_t *count) {
    int32_t base = cfg->layers / cfg->chunks, rem = cfg->layers % cfg->chunks;
    *count = base + (k < rem ? 1 : 0);
    *first = k * base + (k < rem ? k : rem);
}

void anml__synth_slice_rows(const struct anml_synth_config *cfg, int32_t k, int32_t *rows,
                            int32_t *first) {
    int32_t base = cfg->vocab / cfg->split, rem = cfg->vocab % cfg->split;
    if (cfg->arch == ANML_SYNTH_LLAMA) {
        *rows = base;
        *first = k * base;
        return;
    }
    *rows = base + (k < rem ? 1 : 0);
    *first = k * base + (k < rem ? k : rem);
}

int32_t anml__synth_head_vocab(const struct anml_synth_config *cfg) {
    return cfg->arch == ANML_SYNTH_LLAMA ? cfg->vocab / cfg->split * cfg->split : cfg->vocab;
}

static int json_int(const cJSON *o, const char *key, int32_t *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || cJSON_IsNull(v)) {
        return 0;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > (double)INT32_MAX ||
        v->valuedouble != floor(v->valuedouble)) {
        return -1;
    }
    *out = (int32_t)v->valuedouble;
    return 1;
}

enum anml_status anml__synth_config_from_hf(const char *path, struct anml_synth_config *cfg,
                                            struct anml_error *err) {
    char *text = NULL;
    size_t len = 0;
    enum anml_status st = anml__read_file(path, &text, &len, err);
    if (st != ANML_OK) {
        return st;
    }
    cJSON *j = cJSON_ParseWithLength(text, len);
    anml__free(text);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return anml__err(err, ANML_E_FORMAT, path, "not a JSON object");
    }
    const cJSON *mt = cJSON_GetObjectItemCaseSensitive(j, "model_type");
    enum anml_synth_arch arch;
    if (!cJSON_IsString(mt) || !anml__synth_arch_parse(mt->valuestring, &arch)) {
        st = anml__err(err, ANML_E_UNSUPPORTED, path,
                       "model_type: expected qwen3, qwen2 or llama, found %s",
                       cJSON_IsString(mt) ? mt->valuestring : "nothing");
        cJSON_Delete(j);
        return st;
    }
    struct anml_synth_config c = *cfg;
    int32_t keep_split = c.split;
    char keep_prefix[sizeof c.prefix];
    memcpy(keep_prefix, c.prefix, sizeof keep_prefix);
    anml__synth_arch_defaults(arch, &c);
    if (keep_split > 0) {
        c.split = keep_split;
    }
    if (keep_prefix[0]) {
        memcpy(c.prefix, keep_prefix, sizeof keep_prefix);
    }
    static const char *const keys[] = { "hidden_size",         "num_hidden_layers",
                                        "num_attention_heads", "num_key_value_heads",
                                        "intermediate_size",   "vocab_size" };
    int32_t *dst[] = { &c.hidden, &c.layers, &c.heads, &c.kv_heads, &c.intermediate, &c.vocab };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        int r = json_int(j, keys[i], dst[i]);
        if (r <= 0 && !(r == 0 && i == 3)) {
            st = anml__err(err, ANML_E_FORMAT, path, "%s: expected a positive integer", keys[i]);
            cJSON_Delete(j);
            return st;
        }
        if (r == 0) {
            c.kv_heads = c.heads; /* no GQA */
        }
    }
    int r = json_int(j, "head_dim", &c.head_dim);
    if (r < 0 || (r == 0 && c.hidden % c.heads != 0)) {
        cJSON_Delete(j);
        return anml__err(err, ANML_E_FORMAT, path, "head_dim: expected a positive integer");
    }
    if (r == 0 || arch == ANML_SYNTH_LLAMA) {
        c.head_dim = c.hidden / c.heads; /* LLaMA always uses hidden / heads */
    }
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(j, "rms_norm_eps");
    if (cJSON_IsNumber(eps)) {
        c.rms_eps = eps->valuedouble;
    }
    const cJSON *theta = cJSON_GetObjectItemCaseSensitive(j, "rope_theta");
    if (cJSON_IsNumber(theta)) {
        c.rope_base = theta->valuedouble;
    }
    const cJSON *rs = cJSON_GetObjectItemCaseSensitive(j, "rope_scaling");
    const cJSON *factor =
        cJSON_IsObject(rs) ? cJSON_GetObjectItemCaseSensitive(rs, "factor") : NULL;
    if (arch != ANML_SYNTH_QWEN3 && cJSON_IsNumber(factor) && factor->valuedouble > 0) {
        c.rope_base *= factor->valuedouble;
    }
    cJSON_Delete(j);
    *cfg = c;
    return ANML_OK;
}

/* ---- random numbers: splitmix64 streams, one per (seed, tensor, row) ---- */

static inline uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* Sum of four 16-bit uniforms, centred and scaled to unit variance (Irwin-Hall): close enough to
 * N(0, 1) for weights, bounded by +-3.46, one 64-bit draw per value. */
static inline float approx_normal(uint64_t *s) {
    uint64_t r = splitmix64(s);
    uint32_t sum = (uint32_t)(r & 0xffff) + (uint32_t)((r >> 16) & 0xffff) +
                   (uint32_t)((r >> 32) & 0xffff) + (uint32_t)(r >> 48);
    return ((float)sum - 131070.0f) * (1.0f / 37837.23f);
}

static uint64_t name_hash(const char *s) {
    uint64_t h = UINT64_C(1469598103934665603);
    for (; *s; s++) {
        h = (h ^ (unsigned char)*s) * UINT64_C(1099511628211);
    }
    return h;
}

/* ---- safetensors ---- */

struct st_tensor {
    char *name;
    enum anml_dtype dtype;
    int32_t rank;
    int64_t shape[ANML_MAX_DIMS];
    const uint8_t *data;
};

struct anml_wsrc {
    struct anml_synth_config cfg;
    bool random;
    struct anml_mmap map; /* map.path names the checkpoint in errors */
    bool borrowed;        /* map.data is the caller's memory (anml__wsrc_open_memory) */
    struct st_tensor *t;
    int32_t n;
};

static enum anml_status st_parse(struct anml_wsrc *ws, const char *path, struct anml_error *err) {
    const uint8_t *p = ws->map.data;
    size_t size = ws->map.size;
    if (size < 8) {
        return anml__err(err, ANML_E_FORMAT, path, "truncated safetensors file (%zu bytes)", size);
    }
    uint64_t hlen = anml__le64(p);
    if (hlen > size - 8) {
        return anml__err(err, ANML_E_FORMAT, path,
                         "header length %llu runs past the end of the file (%zu bytes)",
                         (unsigned long long)hlen, size);
    }
    const uint8_t *data = p + 8 + hlen;
    size_t data_len = size - 8 - (size_t)hlen;
    cJSON *j = cJSON_ParseWithLength((const char *)p + 8, (size_t)hlen);
    if (!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return anml__err(err, ANML_E_FORMAT, path, "header is not a JSON object");
    }
    int32_t n = cJSON_GetArraySize(j);
    ws->t = anml__calloc((size_t)(n > 0 ? n : 1), sizeof *ws->t);
    if (!ws->t) {
        cJSON_Delete(j);
        return anml__err(err, ANML_E_NOMEM, path, "out of memory");
    }
    enum anml_status st = ANML_OK;
    const cJSON *it;
    cJSON_ArrayForEach(it, j) {
        if (!strcmp(it->string, "__metadata__")) {
            continue;
        }
        const cJSON *dt = cJSON_GetObjectItemCaseSensitive(it, "dtype");
        const cJSON *shape = cJSON_GetObjectItemCaseSensitive(it, "shape");
        const cJSON *offs = cJSON_GetObjectItemCaseSensitive(it, "data_offsets");
        struct st_tensor *t = &ws->t[ws->n];
        if (!cJSON_IsString(dt) || !cJSON_IsArray(shape) || !cJSON_IsArray(offs) ||
            cJSON_GetArraySize(offs) != 2 || cJSON_GetArraySize(shape) > ANML_MAX_DIMS) {
            st = anml__err(err, ANML_E_FORMAT, path,
                           "tensor '%s': expected dtype, shape (rank <= 8) and data_offsets",
                           it->string);
            break;
        }
        if (!strcmp(dt->valuestring, "F16")) {
            t->dtype = ANML_DTYPE_F16;
        } else if (!strcmp(dt->valuestring, "BF16")) {
            t->dtype = ANML_DTYPE_BF16;
        } else if (!strcmp(dt->valuestring, "F32")) {
            t->dtype = ANML_DTYPE_F32;
        } else {
            t->dtype = ANML_DTYPE_INVALID; /* allowed to exist, refused when used */
        }
        t->rank = cJSON_GetArraySize(shape);
        int64_t numel = 1;
        for (int32_t d = 0; d < t->rank; d++) {
            const cJSON *v = cJSON_GetArrayItem(shape, d);
            if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 4e15 ||
                !anml__mul_i64(numel, (int64_t)v->valuedouble, &numel)) {
                st = anml__err(err, ANML_E_FORMAT, path, "tensor '%s': bad shape", it->string);
                break;
            }
            t->shape[d] = (int64_t)v->valuedouble;
        }
        if (st != ANML_OK) {
            break;
        }
        const cJSON *b = cJSON_GetArrayItem(offs, 0), *e = cJSON_GetArrayItem(offs, 1);
        if (!cJSON_IsNumber(b) || !cJSON_IsNumber(e) || b->valuedouble < 0 ||
            e->valuedouble < b->valuedouble || e->valuedouble > (double)data_len) {
            st = anml__err(err, ANML_E_FORMAT, path,
                           "tensor '%s': data_offsets outside the %zu data bytes", it->string,
                           data_len);
            break;
        }
        uint64_t bytes = (uint64_t)e->valuedouble - (uint64_t)b->valuedouble;
        if (t->dtype != ANML_DTYPE_INVALID &&
            bytes != (uint64_t)numel * (uint64_t)(anml_dtype_bits(t->dtype) / 8)) {
            st = anml__err(err, ANML_E_FORMAT, path,
                           "tensor '%s': %llu data bytes for %lld elements of %s", it->string,
                           (unsigned long long)bytes, (long long)numel, anml_dtype_name(t->dtype));
            break;
        }
        t->data = data + (size_t)b->valuedouble;
        t->name = anml__strdup(it->string);
        if (!t->name) {
            st = anml__err(err, ANML_E_NOMEM, path, "out of memory");
            break;
        }
        ws->n++;
    }
    cJSON_Delete(j);
    return st;
}

enum anml_status anml__wsrc_open(const struct anml_synth_config *cfg, const char *safetensors_path,
                                 struct anml_wsrc **out, struct anml_error *err) {
    *out = NULL;
    struct anml_wsrc *ws = anml__calloc(1, sizeof *ws);
    if (!ws) {
        return anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
    }
    ws->cfg = *cfg;
    ws->random = safetensors_path == NULL;
    if (!ws->random) {
        enum anml_status st = anml__mmap_open(safetensors_path, &ws->map, err);
        if (st == ANML_OK) {
            st = st_parse(ws, safetensors_path, err);
        }
        if (st != ANML_OK) {
            anml__wsrc_free(ws);
            return st;
        }
    }
    *out = ws;
    return ANML_OK;
}

enum anml_status anml__wsrc_open_memory(const struct anml_synth_config *cfg, const uint8_t *data,
                                        size_t size, const char *name, struct anml_wsrc **out,
                                        struct anml_error *err) {
    *out = NULL;
    struct anml_wsrc *ws = anml__calloc(1, sizeof *ws);
    if (!ws) {
        return anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
    }
    ws->cfg = *cfg;
    ws->borrowed = true;
    ws->map.data = data;
    ws->map.size = size;
    ws->map.path = anml__strdup(name ? name : "safetensors");
    enum anml_status st = ws->map.path ? st_parse(ws, ws->map.path, err)
                                       : anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
    if (st != ANML_OK) {
        anml__wsrc_free(ws);
        return st;
    }
    *out = ws;
    return ANML_OK;
}

void anml__wsrc_free(struct anml_wsrc *ws) {
    if (!ws) {
        return;
    }
    for (int32_t i = 0; i < ws->n; i++) {
        anml__free(ws->t[i].name);
    }
    anml__free(ws->t);
    if (ws->borrowed) {
        anml__free(ws->map.path);
    } else {
        anml__mmap_close(&ws->map);
    }
    anml__free(ws);
}

static const struct st_tensor *st_find(const struct anml_wsrc *ws, const char *name) {
    for (int32_t i = 0; i < ws->n; i++) {
        if (!strcmp(ws->t[i].name, name)) {
            return &ws->t[i];
        }
    }
    return NULL;
}

static bool ends_with(const char *s, const char *suffix) {
    size_t ls = strlen(s), lf = strlen(suffix);
    return ls >= lf && !strcmp(s + ls - lf, suffix);
}

/* The fixtures' recipe (README): embeddings N(0,1), projections N(0, 1/fan_in), lm_head
 * N(0, 4/hidden), norm gains 1 + 0.1 N(0,1), biases 0.5 N(0,1). */
static void random_rows(const struct anml_wsrc *ws, const struct anml_synth_tensor *t, int64_t r0,
                        int64_t n, float *out) {
    float scale = 1.0f, offset = 0.0f;
    if (ends_with(t->name, "embed_tokens.weight")) {
        scale = 1.0f;
    } else if (!strcmp(t->name, "lm_head.weight")) {
        scale = 2.0f / sqrtf((float)ws->cfg.hidden);
    } else if (ends_with(t->name, "norm.weight")) {
        scale = 0.1f;
        offset = 1.0f;
    } else if (ends_with(t->name, ".bias")) {
        scale = 0.5f;
    } else {
        scale = 1.0f / sqrtf((float)t->cols);
    }
    uint64_t base = ws->cfg.seed * UINT64_C(0xD1B54A32D192ED03) ^ name_hash(t->name);
    for (int64_t r = 0; r < n; r++) {
        uint64_t s = base ^ ((uint64_t)(t->row0 + r0 + r) * UINT64_C(0x9E6C63D0676A9A99));
        splitmix64(&s);
        float *o = out + r * t->cols;
        for (int64_t c = 0; c < t->cols; c++) {
            o[c] = offset + scale * approx_normal(&s);
        }
    }
}

static enum anml_status ckpt_rows(const struct anml_wsrc *ws, const struct anml_synth_tensor *t,
                                  int64_t r0, int64_t n, float *out, struct anml_error *err) {
    const struct st_tensor *s = st_find(ws, t->name);
    if (!s && !strcmp(t->name, "lm_head.weight")) {
        s = st_find(ws, "model.embed_tokens.weight"); /* tied embeddings */
    }
    if (!s) {
        return anml__err(err, ANML_E_NOT_FOUND, ws->map.path, "no tensor '%s' in the checkpoint",
                         t->name);
    }
    bool one_d = t->cols == 1 && s->rank == 1;
    int64_t want0 = t->full_rows;
    if (one_d ? (s->shape[0] != want0)
              : (s->rank != 2 || s->shape[0] != want0 || s->shape[1] != t->cols)) {
        return anml__err(
            err, ANML_E_SHAPE, ws->map.path,
            "tensor '%s': shape [%lld%s%lld] in the checkpoint, the model needs "
            "[%lld, %lld]",
            s->name, (long long)(s->rank > 0 ? s->shape[0] : 0), s->rank > 1 ? ", " : " rank ",
            (long long)(s->rank > 1 ? s->shape[1] : s->rank), (long long)want0, (long long)t->cols);
    }
    if (s->dtype == ANML_DTYPE_INVALID) {
        return anml__err(err, ANML_E_UNSUPPORTED, ws->map.path,
                         "tensor '%s': dtype not F16, BF16 or F32", s->name);
    }
    int64_t first = (t->row0 + r0) * t->cols, count = n * t->cols;
    for (int64_t i = 0; i < count; i++) {
        const uint8_t *p = s->data + (size_t)(first + i) * (size_t)(anml_dtype_bits(s->dtype) / 8);
        uint16_t h;
        float f;
        switch (s->dtype) {
        case ANML_DTYPE_F16:
            memcpy(&h, p, 2);
            out[i] = anml__fp16_to_fp32(h);
            break;
        case ANML_DTYPE_BF16:
            memcpy(&h, p, 2);
            out[i] = anml__bf16_to_fp32(h);
            break;
        default:
            memcpy(&f, p, 4);
            out[i] = f;
            break;
        }
    }
    return ANML_OK;
}

/* ---- tensors: fp16 or palettized values, shared with the reference ---- */

/* x rounded to the nearest fp16 value (ties to even), as a float. The normal fp16 range takes
 * a bit trick (it vectorizes; generating a large model spends its time here); the rest goes
 * through the exact converters. */
static inline float round_fp16(float x) {
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    uint32_t a = b & 0x7fffffffu;
    if (a >= 0x38800000u && a < 0x477ff000u) { /* 2^-14 <= |x| < 65520 */
        b += 0x0fffu + ((b >> 13) & 1u);
        b &= ~0x1fffu;
        memcpy(&x, &b, sizeof x);
        return x;
    }
    return anml__fp16_to_fp32(anml__fp32_to_fp16(x));
}

/* fp16 bits of a value that is exactly representable (round_fp16 output). */
static inline uint16_t exact_fp16(float x) {
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    uint32_t a = b & 0x7fffffffu;
    if (a >= 0x38800000u && a <= 0x477fe000u) {
        return (uint16_t)(((b >> 16) & 0x8000u) | (((a >> 23) - 112u) << 10) |
                          ((a >> 13) & 0x3ffu));
    }
    return anml__fp32_to_fp16(x);
}

void anml__synth_tensor_init(const struct anml_synth_config *cfg, enum anml_synth_part part,
                             const char *name, int64_t rows, int64_t cols, int64_t row0,
                             struct anml_synth_tensor *t) {
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->rows = rows;
    t->cols = cols;
    t->row0 = row0;
    t->full_rows = !strcmp(name, "lm_head.weight") ? cfg->vocab : rows;
    int32_t bits = part == ANML_SYNTH_PART_EMB   ? cfg->lut_emb
                   : part == ANML_SYNTH_PART_FFN ? cfg->lut_ffn
                                                 : cfg->lut_head;
    if (bits > 0 && cols > 1 && rows * cols > LUT_THRESHOLD && rows % LUT_GROUP == 0) {
        t->lut_bits = bits;
    }
}

static inline int bin_of(float v, float lo, float scale) {
    float b = (v - lo) * scale;
    int i = b >= 0 ? (int)b : 0; /* NaN lands in bin 0 */
    return i < HIST_BINS ? i : HIST_BINS - 1;
}

void anml__synth_lut_encode(const float *x, int64_t n, int bits, uint16_t *lut, uint8_t *idx) {
    int k = 1 << bits;
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        if (x[i] < lo) {
            lo = x[i];
        }
        if (x[i] > hi) {
            hi = x[i];
        }
    }
    if (!(hi > lo) || !isfinite(lo) || !isfinite(hi)) {
        uint16_t v = anml__fp32_to_fp16(isfinite(lo) ? lo : 0.0f);
        for (int i = 0; i < k; i++) {
            lut[i] = v;
        }
        memset(idx, 0, (size_t)n);
        return;
    }
    uint32_t cnt[HIST_BINS];
    double sum[HIST_BINS];
    uint8_t bin_idx[HIST_BINS];
    double cent[256], csum[256];
    uint64_t ccnt[256];
    float scale = (float)HIST_BINS / (hi - lo);
#define BIN_OF(v) bin_of((v), lo, scale)
    memset(cnt, 0, sizeof cnt);
    memset(sum, 0, sizeof sum);
    for (int64_t i = 0; i < n; i++) {
        int b = BIN_OF(x[i]);
        cnt[b]++;
        sum[b] += (double)x[i];
    }
    double width = (double)(hi - lo) / HIST_BINS;
    /* quantile initialization: centroid j sits where the cumulative count crosses (j+1/2)/k */
    {
        uint64_t acc = 0;
        int b = 0;
        for (int j = 0; j < k; j++) {
            double target = ((double)j + 0.5) * (double)n / k;
            while (b < HIST_BINS - 1 && (double)(acc + cnt[b]) < target) {
                acc += cnt[b];
                b++;
            }
            cent[j] = (double)lo + ((double)b + 0.5) * width;
        }
    }
    for (int iter = 0; iter < 6; iter++) {
        bool moved = false;
        memset(csum, 0, sizeof(double) * (size_t)k);
        memset(ccnt, 0, sizeof(uint64_t) * (size_t)k);
        int j = 0;
        for (int b = 0; b < HIST_BINS; b++) {
            if (!cnt[b]) {
                continue;
            }
            double c = (double)lo + ((double)b + 0.5) * width;
            while (j + 1 < k && fabs(cent[j + 1] - c) <= fabs(cent[j] - c)) {
                j++;
            }
            csum[j] += sum[b];
            ccnt[j] += cnt[b];
        }
        for (j = 0; j < k; j++) {
            if (ccnt[j]) {
                double nc = csum[j] / (double)ccnt[j];
                moved |= nc != cent[j];
                cent[j] = nc;
            }
        }
        if (!moved) {
            break;
        }
        /* keep the centroids sorted for the sweep */
        for (int a = 1; a < k; a++) {
            double v = cent[a];
            int c = a;
            while (c > 0 && cent[c - 1] > v) {
                cent[c] = cent[c - 1];
                c--;
            }
            cent[c] = v;
        }
    }
    float tab[256];
    for (int j = 0; j < k; j++) {
        lut[j] = anml__fp32_to_fp16((float)cent[j]);
        tab[j] = anml__fp16_to_fp32(lut[j]);
    }
    /* bin -> nearest table entry (the table is sorted: fp16 rounding keeps the order) */
    int j = 0;
    for (int b = 0; b < HIST_BINS; b++) {
        float c = lo + ((float)b + 0.5f) * (float)width;
        while (j + 1 < k && fabsf(tab[j + 1] - c) <= fabsf(tab[j] - c)) {
            j++;
        }
        bin_idx[b] = (uint8_t)j;
    }
    for (int64_t i = 0; i < n; i++) {
        idx[i] = bin_idx[BIN_OF(x[i])];
    }
#undef BIN_OF
}

enum anml_status anml__synth_tensor_rows(struct anml_wsrc *ws, const struct anml_synth_tensor *t,
                                         int64_t r0, int64_t n, float *values, uint16_t *lut,
                                         uint8_t *idx, struct anml_error *err) {
    if (r0 < 0 || n < 0 || r0 + n > t->rows ||
        (t->lut_bits && (r0 % LUT_GROUP != 0 || n % LUT_GROUP != 0))) {
        return anml__err(err, ANML_E_INTERNAL, t->name, "bad row range [%lld, +%lld)",
                         (long long)r0, (long long)n);
    }
    if (ws->random) {
        random_rows(ws, t, r0, n, values);
    } else {
        enum anml_status st = ckpt_rows(ws, t, r0, n, values, err);
        if (st != ANML_OK) {
            return st;
        }
    }
    int64_t count = n * t->cols;
    for (int64_t i = 0; i < count; i++) {
        values[i] = round_fp16(values[i]);
    }
    if (!t->lut_bits) {
        return ANML_OK;
    }
    int k = 1 << t->lut_bits;
    int64_t gsize = LUT_GROUP * t->cols;
    uint16_t tab[256];
    uint8_t *gidx = idx;
    uint8_t *own = NULL;
    if (!gidx) {
        own = anml__malloc((size_t)gsize);
        if (!own) {
            return anml__err(err, ANML_E_NOMEM, t->name, "out of memory");
        }
    }
    float tabf[256];
    for (int64_t g = 0; g < n / LUT_GROUP; g++) {
        float *v = values + g * gsize;
        uint8_t *ix = idx ? idx + g * gsize : own;
        anml__synth_lut_encode(v, gsize, t->lut_bits, tab, ix);
        for (int i = 0; i < k; i++) {
            tabf[i] = anml__fp16_to_fp32(tab[i]);
        }
        for (int64_t i = 0; i < gsize; i++) {
            v[i] = tabf[ix[i]];
        }
        if (lut) {
            memcpy(lut + g * k, tab, (size_t)k * sizeof *tab);
        }
    }
    anml__free(own);
    return ANML_OK;
}

/* ---- streaming weight.bin writer ---- */

struct bw {
    FILE *f;
    const char *path;
    uint64_t pos;
    uint32_t count;
    enum anml_status st;
    struct anml_error *err;
};

static void bw_fail(struct bw *w, const char *what) {
    if (w->st == ANML_OK) {
        w->st = anml__err(w->err, ANML_E_IO, w->path, "%s: %s", what, strerror(errno));
    }
}

static void bw_bytes(struct bw *w, const void *p, size_t n) {
    if (w->st != ANML_OK || n == 0) {
        return;
    }
    if (fwrite(p, 1, n, w->f) != n) {
        bw_fail(w, "write failed");
        return;
    }
    w->pos += n;
}

static enum anml_status bw_open(struct bw *w, const char *path, struct anml_error *err) {
    memset(w, 0, sizeof *w);
    w->path = path;
    w->err = err;
    w->f = fopen(path, "wb");
    if (!w->f) {
        return anml__err(err, ANML_E_IO, path, "cannot create: %s", strerror(errno));
    }
    setvbuf(w->f, NULL, _IOFBF, 1 << 20);
    uint8_t hdr[64];
    anml__blob_encode_header(hdr, 0); /* the count is patched in bw_close */
    bw_bytes(w, hdr, sizeof hdr);
    return w->st;
}

/* Starts a blob of size_bytes bytes; returns its record offset. The data follows with bw_bytes. */
static uint64_t bw_begin(struct bw *w, enum anml_dtype dt, uint64_t size_bytes,
                         uint64_t padding_bits) {
    static const uint8_t zeros[64];
    bw_bytes(w, zeros, (size_t)((64 - w->pos % 64) % 64));
    uint64_t rec_off = w->pos;
    uint8_t rec[64];
    anml__blob_encode_record(rec, dt, size_bytes, rec_off + 64, padding_bits);
    bw_bytes(w, rec, sizeof rec);
    w->count++;
    return rec_off;
}

static enum anml_status bw_close(struct bw *w) {
    if (!w->f) {
        return w->st;
    }
    if (w->st == ANML_OK) {
        uint8_t hdr[64];
        anml__blob_encode_header(hdr, w->count);
        if (fseek(w->f, 0, SEEK_SET) != 0 || fwrite(hdr, 1, sizeof hdr, w->f) != sizeof hdr) {
            bw_fail(w, "write failed");
        }
    }
    if (fclose(w->f) != 0) {
        bw_fail(w, "close failed");
    }
    w->f = NULL;
    return w->st;
}

/* Where a written weight lives: fp16 data, or LUT indices + table. */
struct wref {
    struct anml_synth_tensor t;
    uint64_t off;     /* fp16 data or indices */
    uint64_t lut_off; /* palettized: the table */
};

static enum anml_dtype uint_dtype(int bits) {
    switch (bits) {
    case 1: return ANML_DTYPE_UINT1;
    case 2: return ANML_DTYPE_UINT2;
    case 3: return ANML_DTYPE_UINT3;
    case 4: return ANML_DTYPE_UINT4;
    case 6: return ANML_DTYPE_UINT6;
    default: return ANML_DTYPE_UINT8;
    }
}

/* Generates, encodes and writes one tensor, a block of rows at a time. */
static enum anml_status write_tensor(struct bw *w, struct anml_wsrc *ws, struct wref *r,
                                     struct anml_error *err) {
    const struct anml_synth_tensor *t = &r->t;
    int64_t numel = t->rows * t->cols;
    /* rows per block: about 256K values, a multiple of the LUT group */
    int64_t block = (262144 / (t->cols > 0 ? t->cols : 1)) / LUT_GROUP * LUT_GROUP;
    if (block < LUT_GROUP) {
        block = LUT_GROUP;
    }
    int k = t->lut_bits ? 1 << t->lut_bits : 0;
    float *vals = anml__malloc((size_t)(block * t->cols) * sizeof *vals);
    uint8_t *idx = t->lut_bits ? anml__malloc((size_t)(block * t->cols)) : NULL;
    uint8_t *packed = anml__malloc((size_t)(block * t->cols) * 2);
    uint16_t *luts = t->lut_bits ? anml__malloc((size_t)(t->rows / LUT_GROUP * k) * 2) : NULL;
    enum anml_status st = ANML_OK;
    if (!vals || !packed || (t->lut_bits && (!idx || !luts))) {
        st = anml__err(err, ANML_E_NOMEM, t->name, "out of memory");
        goto done;
    }
    if (t->lut_bits) {
        uint64_t bytes = ((uint64_t)numel * (uint64_t)t->lut_bits + 7) / 8;
        r->off = bw_begin(w, uint_dtype(t->lut_bits), bytes,
                          bytes * 8 - (uint64_t)numel * (uint64_t)t->lut_bits);
    } else {
        r->off = bw_begin(w, ANML_DTYPE_F16, (uint64_t)numel * 2, 0);
    }
    for (int64_t r0 = 0; r0 < t->rows && st == ANML_OK && w->st == ANML_OK; r0 += block) {
        int64_t n = t->rows - r0 < block ? t->rows - r0 : block;
        int64_t cnt = n * t->cols;
        st = anml__synth_tensor_rows(ws, t, r0, n, vals, luts ? luts + r0 / LUT_GROUP * k : NULL,
                                     idx, err);
        if (st != ANML_OK) {
            break;
        }
        if (t->lut_bits) {
            /* groups of 8 rows are whole bytes for every width, so blocks pack independently */
            if (t->lut_bits == 8) {
                bw_bytes(w, idx, (size_t)cnt);
            } else {
                bw_bytes(w, packed, anml__subbyte_pack(uint_dtype(t->lut_bits), idx, cnt, packed));
            }
        } else {
            uint16_t *h = (uint16_t *)(void *)packed;
            for (int64_t i = 0; i < cnt; i++) {
                h[i] = exact_fp16(vals[i]);
            }
            bw_bytes(w, packed, (size_t)cnt * 2);
        }
    }
    if (st == ANML_OK && t->lut_bits) {
        uint64_t bytes = (uint64_t)(t->rows / LUT_GROUP) * (uint64_t)k * 2;
        r->lut_off = bw_begin(w, ANML_DTYPE_F16, bytes, 0);
        bw_bytes(w, luts, (size_t)bytes);
    }
    if (st == ANML_OK) {
        st = w->st;
    }
done:
    anml__free(vals);
    anml__free(idx);
    anml__free(packed);
    anml__free(luts);
    return st;
}

/* Writes n fp16 values (small constants: RoPE tables, zero biases). */
static uint64_t write_f16(struct bw *w, const float *v, int64_t n) {
    uint64_t off = bw_begin(w, ANML_DTYPE_F16, (uint64_t)n * 2, 0);
    uint16_t buf[512];
    for (int64_t i = 0; i < n; i += 512) {
        int64_t m = n - i < 512 ? n - i : 512;
        for (int64_t j = 0; j < m; j++) {
            buf[j] = anml__fp32_to_fp16(v ? v[i + j] : 0.0f);
        }
        bw_bytes(w, buf, (size_t)m * 2);
    }
    return off;
}

/* ---- MIL text emission ---- */

struct sb {
    char *p;
    size_t len, cap;
    bool oom;
};

static void sb_putn(struct sb *b, const char *s, size_t n) {
    if (b->oom) {
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1 << 16;
        while (cap < b->len + n + 1) {
            cap *= 2;
        }
        char *np = anml__realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_printf(struct sb *b, const char *fmt, ...) ANML_PRINTF(2, 3);
static void sb_printf(struct sb *b, const char *fmt, ...) {
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        b->oom = true; /* every line we print is short */
        return;
    }
    sb_putn(b, tmp, (size_t)n);
}

struct shp {
    int r;
    int64_t d[6];
};

/* A value: its name and its MIL type text. */
struct val {
    char n[80];
    char t[96];
    struct shp s;
};

struct em {
    struct sb b;
    int32_t id;
};

static void type_text(char *buf, size_t cap, const char *dt, struct shp s) {
    if (s.r == 0) {
        snprintf(buf, cap, "%s", dt);
        return;
    }
    size_t n = (size_t)snprintf(buf, cap, "tensor<%s, [", dt);
    for (int i = 0; i < s.r && n < cap; i++) {
        if (s.d[i] < 0) {
            n += (size_t)snprintf(buf + n, cap - n, "%s?", i ? ", " : "");
        } else {
            n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)s.d[i]);
        }
    }
    if (n < cap) {
        snprintf(buf + n, cap - n, "]>");
    }
}

static struct shp S(int r, int64_t a, int64_t b, int64_t c, int64_t d) {
    struct shp s = { r, { a, b, c, d, 0, 0 } };
    return s;
}
#define S0             S(0, 0, 0, 0, 0)
#define S1(a)          S(1, a, 0, 0, 0)
#define S2(a, b)       S(2, a, b, 0, 0)
#define S3(a, b, c)    S(3, a, b, c, 0)
#define S4(a, b, c, d) S(4, a, b, c, d)

/* A new value named `name` (NULL: var_N) of the given dtype and shape. */
static struct val
newval(struct em *e, const char *name, const char *dt, struct shp s) {
    struct val v;
    if (name) {
        snprintf(v.n, sizeof v.n, "%s", name);
    } else {
        snprintf(v.n, sizeof v.n, "var_%d", (int)++e->id);
    }
    type_text(v.t, sizeof v.t, dt, s);
    v.s = s;
    return v;
}

/* A const named after the value it parameterizes: "<of>_<param>_0". */
static void const_line(struct em *e, const struct val *v, const char *lit) {
    sb_printf(&e->b, "            %s %s = const()[name = string(\"%s\"), val = %s];\n", v->t, v->n,
              v->n, lit);
}

static struct val c_named(struct em *e, const char *of, const char *param, const char *dt,
                          struct shp s) {
    char name[80];
    snprintf(name, sizeof name, "%s_%s_0", of, param);
    return newval(e, name, dt, s);
}

static struct val c_i32(struct em *e, const char *of, const char *param, int64_t x) {
    struct val v = c_named(e, of, param, "int32", S0);
    char lit[64];
    snprintf(lit, sizeof lit, "int32(%lld)", (long long)x);
    const_line(e, &v, lit);
    return v;
}

static struct val c_i32v(struct em *e, const char *of, const char *param, int n, const int64_t *x) {
    struct val v = c_named(e, of, param, "int32", S1(n));
    char lit[400];
    size_t k = (size_t)snprintf(lit, sizeof lit, "tensor<int32, [%d]>([", n);
    for (int i = 0; i < n && k < sizeof lit; i++) {
        k += (size_t)snprintf(lit + k, sizeof lit - k, "%s%lld", i ? ", " : "", (long long)x[i]);
    }
    if (k < sizeof lit) {
        snprintf(lit + k, sizeof lit - k, "])");
    }
    const_line(e, &v, lit);
    return v;
}

static struct val c_bool(struct em *e, const char *of, const char *param, bool x) {
    struct val v = c_named(e, of, param, "bool", S0);
    const_line(e, &v, x ? "bool(true)" : "bool(false)");
    return v;
}

static struct val c_boolv(struct em *e, const char *of, const char *param, int n, const bool *x) {
    struct val v = c_named(e, of, param, "bool", S1(n));
    char lit[200];
    size_t k = (size_t)snprintf(lit, sizeof lit, "tensor<bool, [%d]>([", n);
    for (int i = 0; i < n && k < sizeof lit; i++) {
        k += (size_t)snprintf(lit + k, sizeof lit - k, "%s%s", i ? ", " : "",
                              x[i] ? "true" : "false");
    }
    if (k < sizeof lit) {
        snprintf(lit + k, sizeof lit - k, "])");
    }
    const_line(e, &v, lit);
    return v;
}

static struct val c_str(struct em *e, const char *of, const char *param, const char *x) {
    struct val v = c_named(e, of, param, "string", S0);
    char lit[128];
    snprintf(lit, sizeof lit, "string(\"%s\")", x);
    const_line(e, &v, lit);
    return v;
}

static struct val c_f16(struct em *e, const char *of, const char *param, double x) {
    struct val v = c_named(e, of, param, "fp16", S0);
    char num[48], lit[64];
    anml__mil_format_float((double)anml__fp16_to_fp32(anml__fp32_to_fp16((float)x)), num,
                           sizeof num);
    snprintf(lit, sizeof lit, "fp16(%s)", num);
    const_line(e, &v, lit);
    return v;
}

static struct val c_blob(struct em *e, const char *name, struct shp s, uint64_t off) {
    struct val v = newval(e, name, "fp16", s);
    char lit[256];
    snprintf(lit, sizeof lit,
             "%s(BLOBFILE(path = string(\"" WEIGHT_PATH "\"), offset = uint64(%llu)))", v.t,
             (unsigned long long)off);
    const_line(e, &v, lit);
    return v;
}

/* A weight as the program sees it: a const, or constexpr_lut_to_dense of indices + table. */
static struct val c_weight(struct em *e, const char *name, struct shp s, const struct wref *w) {
    if (!w->t.lut_bits) {
        return c_blob(e, name, s, w->off);
    }
    char pname[96];
    snprintf(pname, sizeof pname, "%s_palettized", name);
    struct val v = newval(e, pname, "fp16", s);
    char itype[96], ltype[96], udt[16];
    snprintf(udt, sizeof udt, "uint%d", (int)w->t.lut_bits);
    type_text(itype, sizeof itype, udt, s);
    /* table [Cout/8, 1, ..., 1, 2^n, 1]: rank(W) + 2 */
    char lbuf[96];
    size_t k = (size_t)snprintf(lbuf, sizeof lbuf, "tensor<fp16, [%lld", (long long)(s.d[0] / 8));
    for (int i = 1; i < s.r; i++) {
        k += (size_t)snprintf(lbuf + k, sizeof lbuf - k, ", 1");
    }
    snprintf(lbuf + k, sizeof lbuf - k, ", %d, 1]>", 1 << w->t.lut_bits);
    snprintf(ltype, sizeof ltype, "%s", lbuf);
    sb_printf(&e->b,
              "            %s %s = constexpr_lut_to_dense(indices = %s(BLOBFILE(path = "
              "string(\"" WEIGHT_PATH
              "\"), offset = uint64(%llu))), lut = %s(BLOBFILE(path = string(\"" WEIGHT_PATH
              "\"), offset = uint64(%llu))))[name = string(\"%s\")];\n",
              v.t, v.n, itype, (unsigned long long)w->off, ltype, (unsigned long long)w->lut_off,
              v.n);
    return v;
}

/* Emits `<type> <r> = <op>(a0 = v0, a1 = v1, ...)[name = ...]`; args are (name, value-name)
 * pairs ending with NULL. A value-name starting with '(' is a tuple written as is. */
static void emit(struct em *e, const struct val *r, const char *op, ...) {
    struct sb *b = &e->b;
    if (r) {
        sb_printf(b, "            %s %s = %s(", r->t, r->n, op);
    } else {
        sb_printf(b, "            %s(", op);
    }
    va_list ap;
    va_start(ap, op);
    bool first = true;
    for (;;) {
        const char *a = va_arg(ap, const char *);
        if (!a) {
            break;
        }
        const char *v = va_arg(ap, const char *);
        sb_printf(b, "%s%s = %s", first ? "" : ", ", a, v);
        first = false;
    }
    va_end(ap);
    if (r) {
        sb_printf(b, ")[name = string(\"%s\")];\n", r->n);
    } else {
        sb_printf(b, ")[name = string(\"op_%d\")];\n", (int)++e->id);
    }
}

static struct shp shp_set(struct shp s, int i, int64_t v) {
    s.d[i] = v;
    return s;
}

/* ---- graph building blocks ---- */

struct g {
    struct em *e;
    const struct anml_synth_config *cfg;
    bool llama, qwen3, qwen2;
    /* LLaMA's programs share one `axis = -1` and one epsilon const per function */
    struct val shared_axis, shared_eps;
    bool shared;
};

static struct val g_bin(struct g *g, const char *op, const struct val *x, const struct val *y,
                        struct shp out, const char *name) {
    struct val r = newval(g->e, name, "fp16", out);
    emit(g->e, &r, op, "x", x->n, "y", y->n, NULL);
    return r;
}

static struct val g_transpose(struct g *g, const struct val *x, int n, const int64_t *perm) {
    struct shp out = x->s;
    for (int i = 0; i < n; i++) {
        out.d[i] = x->s.d[perm[i]];
    }
    struct val r = newval(g->e, NULL, "fp16", out);
    struct val p = c_i32v(g->e, r.n, "perm", n, perm);
    emit(g->e, &r, "transpose", "perm", p.n, "x", x->n, NULL);
    return r;
}

static struct val g_reshape(struct g *g, const struct val *x, struct shp out,
                            const int64_t *shape_lit) {
    struct val r = newval(g->e, NULL, "fp16", out);
    struct val p = c_i32v(g->e, r.n, "shape", out.r, shape_lit ? shape_lit : out.d);
    emit(g->e, &r, "reshape", "shape", p.n, "x", x->n, NULL);
    return r;
}

static struct val g_axes_op(struct g *g, const char *op, const struct val *x, int64_t axis,
                            struct shp out) {
    struct val r = newval(g->e, NULL, "fp16", out);
    struct val a = c_i32v(g->e, r.n, "axes", 1, &axis);
    emit(g->e, &r, op, "axes", a.n, "x", x->n, NULL);
    return r;
}

/* slice_by_index with constant begin/end and an end mask. */
static struct val g_slice(struct g *g, const struct val *x, const int64_t *begin,
                          const int64_t *end, const bool *end_mask, struct shp out,
                          const char *name) {
    struct val r = newval(g->e, name, "fp16", out);
    struct val b = c_i32v(g->e, r.n, "begin", x->s.r, begin);
    struct val en = c_i32v(g->e, r.n, "end", x->s.r, end);
    struct val m = c_boolv(g->e, r.n, "end_mask", x->s.r, end_mask);
    emit(g->e, &r, "slice_by_index", "begin", b.n, "end", en.n, "end_mask", m.n, "x", x->n, NULL);
    return r;
}

static struct val g_concat(struct g *g, const struct val *a, const struct val *b, struct shp out) {
    struct val r = newval(g->e, NULL, "fp16", out);
    struct val ax = g->shared ? g->shared_axis : c_i32(g->e, r.n, "axis", -1);
    struct val il = c_bool(g->e, r.n, "interleave", false);
    char tup[200];
    snprintf(tup, sizeof tup, "(%s, %s)", a->n, b->n);
    emit(g->e, &r, "concat", "axis", ax.n, "interleave", il.n, "values", tup, NULL);
    return r;
}

static struct val g_neg(struct g *g, const struct val *x) {
    struct val r = newval(g->e, NULL, "fp16", x->s);
    struct val m1 = c_f16(g->e, r.n, "y", -1.0);
    emit(g->e, &r, "mul", "x", x->n, "y", m1.n, NULL);
    return r;
}

/* RMSNorm as ANEMLL 0.3.4 writes it: layer_norm over [x, -x] (mean exactly 0), first half,
 * times the gain. */
static struct val g_rmsnorm(struct g *g, const struct val *x, const struct val *gain,
                            const char *name) {
    int r = x->s.r;
    int64_t d = x->s.d[r - 1];
    struct val neg = g_neg(g, x);
    struct val cat = g_concat(g, x, &neg, shp_set(x->s, r - 1, 2 * d));
    struct val ln = newval(g->e, NULL, "fp16", cat.s);
    int64_t ax = -1;
    struct val axes = c_i32v(g->e, ln.n, "axes", 1, &ax);
    struct val eps = g->shared ? g->shared_eps : c_f16(g->e, ln.n, "epsilon", g->cfg->rms_eps);
    emit(g->e, &ln, "layer_norm", "axes", axes.n, "epsilon", eps.n, "x", cat.n, NULL);
    int64_t begin[6] = { 0 }, end[6];
    bool mask[6];
    for (int i = 0; i < r; i++) {
        end[i] = x->s.d[i];
        mask[i] = i < r - 1;
    }
    struct val half = g_slice(g, &ln, begin, end, mask, x->s, NULL);
    return g_bin(g, "mul", &half, gain, x->s, name);
}

/* 1x1 conv (rank-4 input) or its conv1d form (rank-3 input, Qwen o_proj). */
static struct val g_conv(struct g *g, const struct val *x, const struct val *w,
                         const struct val *bias, struct shp out) {
    struct val r = newval(g->e, NULL, "fp16", out);
    bool two_d = x->s.r == 4;
    int64_t ones[2] = { 1, 1 }, zeros[4] = { 0, 0, 0, 0 };
    struct val pt = c_str(g->e, r.n, "pad_type", "valid");
    struct val st = c_i32v(g->e, r.n, "strides", two_d ? 2 : 1, ones);
    struct val pd = c_i32v(g->e, r.n, "pad", two_d ? 4 : 2, zeros);
    struct val dl = c_i32v(g->e, r.n, "dilations", two_d ? 2 : 1, ones);
    struct val gr = c_i32(g->e, r.n, "groups", 1);
    if (bias) {
        emit(g->e, &r, "conv", "bias", bias->n, "dilations", dl.n, "groups", gr.n, "pad", pd.n,
             "pad_type", pt.n, "strides", st.n, "weight", w->n, "x", x->n, NULL);
    } else {
        emit(g->e, &r, "conv", "dilations", dl.n, "groups", gr.n, "pad", pd.n, "pad_type", pt.n,
             "strides", st.n, "weight", w->n, "x", x->n, NULL);
    }
    return r;
}

/* ---- FFN chunks ---- */

enum {
    W_Q,
    W_K,
    W_V,
    W_O,
    W_GATE,
    W_UP,
    W_DOWN,
    W_IN_NORM,
    W_POST_NORM,
    W_Q_NORM,
    W_K_NORM,
    W_Q_BIAS,
    W_K_BIAS,
    W_V_BIAS,
    W_PER_LAYER
};

struct chunk_w {
    int32_t k, first, count;
    bool last;
    struct wref *w; /* count * W_PER_LAYER; unused slots have rows == 0 */
    struct wref final_norm;
    uint64_t cos_off, sin_off, zero_bias_off;
    int64_t rope_rows;
};

static const char *const k_wname[W_PER_LAYER] = {
    "self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight",
    "self_attn.o_proj.weight", "mlp.gate_proj.weight",    "mlp.up_proj.weight",
    "mlp.down_proj.weight",    "input_layernorm.weight",  "post_attention_layernorm.weight",
    "self_attn.q_norm.weight", "self_attn.k_norm.weight", "self_attn.q_proj.bias",
    "self_attn.k_proj.bias",   "self_attn.v_proj.bias",
};

/* The MIL const name of a layer weight: the torch frontend's "model_model_layers_3_mlp_up_proj_
 * weight" (dots to underscores, prefixed by the wrapper's `model.`). */
static void mil_wname(char *buf, size_t cap, int32_t layer, int which) {
    size_t n = (size_t)snprintf(buf, cap, "model_model_layers_%d_%s", (int)layer, k_wname[which]);
    for (size_t i = 0; i < n && i < cap; i++) {
        if (buf[i] == '.') {
            buf[i] = '_';
        }
    }
}

static void layer_tensor_shapes(const struct anml_synth_config *c, int which, int64_t *rows,
                                int64_t *cols) {
    int64_t hq = (int64_t)c->heads * c->head_dim, hkv = (int64_t)c->kv_heads * c->head_dim;
    int64_t r = 0, k = 1;
    switch (which) {
    case W_Q: r = hq, k = c->hidden; break;
    case W_K:
    case W_V: r = hkv, k = c->hidden; break;
    case W_O: r = c->hidden, k = hq; break;
    case W_GATE:
    case W_UP: r = c->intermediate, k = c->hidden; break;
    case W_DOWN: r = c->hidden, k = c->intermediate; break;
    case W_IN_NORM:
    case W_POST_NORM: r = c->hidden; break;
    case W_Q_NORM:
    case W_K_NORM:
        if (c->arch == ANML_SYNTH_QWEN3) {
            r = c->head_dim;
        }
        break;
    case W_Q_BIAS:
        if (c->arch == ANML_SYNTH_QWEN2) {
            r = hq;
        }
        break;
    case W_K_BIAS:
    case W_V_BIAS:
        if (c->arch == ANML_SYNTH_QWEN2) {
            r = hkv;
        }
        break;
    default: break;
    }
    *rows = r;
    *cols = k;
}

/* Every weight of one chunk into its weight.bin; shared by both functions. */
static enum anml_status write_chunk_weights(struct bw *w, struct anml_wsrc *ws,
                                            const struct anml_synth_config *c, struct chunk_w *cw,
                                            struct anml_error *err) {
    enum anml_status st = ANML_OK;
    char name[128];
    for (int32_t l = 0; l < cw->count && st == ANML_OK; l++) {
        int32_t gl = cw->first + l;
        for (int which = 0; which < W_PER_LAYER && st == ANML_OK; which++) {
            int64_t rows, cols;
            layer_tensor_shapes(c, which, &rows, &cols);
            struct wref *r = &cw->w[l * W_PER_LAYER + which];
            memset(r, 0, sizeof *r);
            if (!rows) {
                continue;
            }
            snprintf(name, sizeof name, "model.layers.%d.%s", (int)gl, k_wname[which]);
            anml__synth_tensor_init(c, ANML_SYNTH_PART_FFN, name, rows, cols, 0, &r->t);
            st = write_tensor(w, ws, r, err);
        }
    }
    bool qwen = c->arch != ANML_SYNTH_LLAMA;
    memset(&cw->final_norm, 0, sizeof cw->final_norm);
    if (st == ANML_OK && (qwen || cw->last)) {
        anml__synth_tensor_init(c, ANML_SYNTH_PART_FFN, "model.norm.weight", c->hidden, 1, 0,
                                &cw->final_norm.t);
        st = write_tensor(w, ws, &cw->final_norm, err);
    }
    if (st != ANML_OK) {
        return st;
    }
    /* RoPE tables [1, 2 max(C, S), d] (ANEMLL 0.3.4), computed like its fp32 torch code */
    int64_t rows = 2 * (int64_t)c->context, d = c->head_dim;
    cw->rope_rows = rows;
    float *tab = anml__malloc((size_t)(rows * d) * sizeof *tab);
    if (!tab) {
        return anml__err(err, ANML_E_NOMEM, "synth", "out of memory");
    }
    for (int pass = 0; pass < 2; pass++) {
        for (int64_t t = 0; t < rows; t++) {
            for (int64_t i = 0; i < d / 2; i++) {
                float inv = (float)(1.0 / pow(c->rope_base, (double)(2 * i) / (double)d));
                float a = (float)t * inv;
                float v = pass == 0 ? cosf(a) : sinf(a);
                tab[t * d + i] = v;
                tab[t * d + i + d / 2] = v;
            }
        }
        uint64_t off = write_f16(w, tab, rows * d);
        if (pass == 0) {
            cw->cos_off = off;
        } else {
            cw->sin_off = off;
        }
    }
    anml__free(tab);
    cw->zero_bias_off = c->arch == ANML_SYNTH_LLAMA ? write_f16(w, NULL, c->hidden) : 0;
    return w->st;
}

static struct val layer_const(struct g *g, const struct chunk_w *cw, int32_t l, int which,
                              struct shp s) {
    char name[128];
    mil_wname(name, sizeof name, cw->first + l, which);
    return c_weight(g->e, name, s, &cw->w[l * W_PER_LAYER + which]);
}

/* cos and sin rows for the positions of this call: [1, 1, Q, d] */
struct rope {
    struct val cos, sin, cos_h, sin_h;
};

/* The gather index lowering of coremltools 9: indices cast to int16 and back, negative ones
 * wrapped by `size`, cast to int16 again for the gather. A palettized program went through the
 * pass pipeline twice and carries the wrap twice, the second time gathering with int32
 * (`twice`). An int16 index cannot hold ids above 32767, so for tables that large the casts are
 * left out and the gather takes int32 indices (coremltools would overflow there). */
static struct val g_gather_index(struct g *g, const struct val *in, int64_t size, bool twice) {
    struct em *e = g->e;
    bool i16 = size <= 32767;
    struct val x = *in;
    for (int round = 0; round < (twice ? 2 : 1); round++) {
        struct val p32 = x;
        if (i16) {
            if (!strcmp(x.t, "int32") || strncmp(x.t, "tensor<int32", 12) == 0) {
                struct val a = newval(e, NULL, "int16", x.s);
                struct val adt = c_str(e, a.n, "dtype", "int16");
                emit(e, &a, "cast", "dtype", adt.n, "x", x.n, NULL);
                x = a;
            }
            p32 = newval(e, NULL, "int32", x.s);
            struct val bdt = c_str(e, p32.n, "dtype", "int32");
            emit(e, &p32, "cast", "dtype", bdt.n, "x", x.n, NULL);
        }
        struct val ge = newval(e, NULL, "bool", x.s);
        struct val zero = c_i32(e, ge.n, "y", 0);
        emit(e, &ge, "greater_equal", "x", p32.n, "y", zero.n, NULL);
        struct val add = newval(e, NULL, "int32", x.s);
        struct val tt = c_i32(e, add.n, "y", size);
        emit(e, &add, "add", "x", p32.n, "y", tt.n, NULL);
        struct val sel = newval(e, NULL, "int32", x.s);
        emit(e, &sel, "select", "a", p32.n, "b", add.n, "cond", ge.n, NULL);
        x = sel;
        if (i16 && round == 0) {
            struct val c16 = newval(e, NULL, "int16", x.s);
            struct val dt = c_str(e, c16.n, "dtype", "int16");
            emit(e, &c16, "cast", "dtype", dt.n, "x", sel.n, NULL);
            x = c16;
        }
    }
    return x;
}

static struct rope g_rope(struct g *g, const struct chunk_w *cw, int64_t q, bool prefill) {
    struct em *e = g->e;
    int64_t d = g->cfg->head_dim, t = cw->rope_rows;
    struct val pos = newval(e, prefill ? "position_ids" : "current_pos", "int32", S1(q));
    struct val idx = g_gather_index(g, &pos, t, g->cfg->lut_ffn > 0);
    struct rope r;
    for (int which = 0; which < 2; which++) {
        struct val tab = c_blob(e, which ? "sin_cached_to_fp16" : "cos_cached_to_fp16", S3(1, t, d),
                                which ? cw->sin_off : cw->cos_off);
        struct val gth = newval(e, NULL, "fp16", S3(1, q, d));
        struct val ax = c_i32(e, gth.n, "axis", 1);
        struct val bd = c_i32(e, gth.n, "batch_dims", 0);
        struct val vi = c_bool(e, gth.n, "validate_indices", false);
        emit(e, &gth, "gather", "axis", ax.n, "batch_dims", bd.n, "indices", idx.n,
             "validate_indices", vi.n, "x", tab.n, NULL);
        struct val v;
        if (prefill) {
            int64_t lit[4] = { 1, q, 1, d };
            struct val rs = g_reshape(g, &gth, S4(1, q, 1, d), lit);
            int64_t perm[4] = { 0, 2, 1, 3 };
            v = g_transpose(g, &rs, 4, perm);
        } else {
            int64_t lit[4] = { 1, 1, 1, -1 };
            v = g_reshape(g, &gth, S4(1, 1, 1, d), lit);
        }
        if (which) {
            r.sin = v;
        } else {
            r.cos = v;
        }
    }
    if (g->llama) {
        int64_t b[4] = { 0, 0, 0, 0 }, en[4] = { 1, 1, q, d / 2 };
        bool m[4] = { true, true, true, false };
        r.cos_h = g_slice(g, &r.cos, b, en, m, S4(1, 1, q, d / 2), NULL);
        r.sin_h = g_slice(g, &r.sin, b, en, m, S4(1, 1, q, d / 2), NULL);
    }
    return r;
}

/* Rotary embedding of x [1, h, Q, d]. Qwen: x*cos + cat(-x2, x1)*sin; LLaMA:
 * cat(x1*cos - x2*sin, x2*cos + x1*sin) with the first half of the rows. */
static struct val g_apply_rope(struct g *g, const struct val *x, const struct rope *r) {
    struct shp s = x->s, hs = x->s;
    int64_t d = s.d[3];
    hs.d[3] = d / 2;
    int64_t b1[4] = { 0, 0, 0, 0 }, e1[4] = { s.d[0], s.d[1], s.d[2], d / 2 };
    int64_t b2[4] = { 0, 0, 0, d / 2 }, e2[4] = { s.d[0], s.d[1], s.d[2], d };
    bool m1[4] = { true, true, true, false }, m2[4] = { true, true, true, true };
    if (!g->llama) {
        struct val a = g_bin(g, "mul", x, &r->cos, s, NULL);
        struct val x1 = g_slice(g, x, b1, e1, m1, hs, NULL);
        struct val x2 = g_slice(g, x, b2, e2, m2, hs, NULL);
        struct val nx2 = g_neg(g, &x2);
        struct val rh = g_concat(g, &nx2, &x1, s);
        struct val b = g_bin(g, "mul", &rh, &r->sin, s, NULL);
        return g_bin(g, "add", &a, &b, s, NULL);
    }
    struct val x1 = g_slice(g, x, b1, e1, m1, hs, NULL);
    struct val x2 = g_slice(g, x, b2, e2, m2, hs, NULL);
    struct val a = g_bin(g, "mul", &x1, &r->cos_h, hs, NULL);
    struct val b = g_bin(g, "mul", &x2, &r->sin_h, hs, NULL);
    struct val lo = g_bin(g, "sub", &a, &b, hs, NULL);
    struct val c = g_bin(g, "mul", &x2, &r->cos_h, hs, NULL);
    struct val dd = g_bin(g, "mul", &x1, &r->sin_h, hs, NULL);
    struct val hi = g_bin(g, "add", &c, &dd, hs, NULL);
    return g_concat(g, &lo, &hi, s);
}

struct kvstate {
    char cur[80]; /* the latest read of the state */
    bool read;
    struct val end_pos;
    int32_t n_updates;
};

/* Writes `upd` [1, kv, Q, d] into state row `row` at slots current_pos..current_pos+Q-1. */
static void g_kv_write(struct g *g, struct kvstate *ks, const struct val *upd, int64_t row,
                       struct shp state_shape) {
    struct em *e = g->e;
    if (!ks->read) {
        struct val rd = newval(e, NULL, "fp16", state_shape);
        emit(e, &rd, "read_state", "input", STATE_NAME, NULL);
        snprintf(ks->cur, sizeof ks->cur, "%s", rd.n);
        ks->read = true;
    }
    int64_t r0 = row, r1 = row + 1, z = 0;
    struct val bg = newval(e, NULL, "int32", S1(4));
    struct val v0 = c_i32v(e, bg.n, "values0", 1, &r0);
    struct val v1 = c_i32v(e, bg.n, "values1", 1, &z);
    struct val v3 = c_i32v(e, bg.n, "values3", 1, &z);
    struct val ax = c_i32(e, bg.n, "axis", 0);
    struct val il = c_bool(e, bg.n, "interleave", false);
    char tup[300];
    snprintf(tup, sizeof tup, "(%s, %s, current_pos, %s)", v0.n, v1.n, v3.n);
    emit(e, &bg, "concat", "axis", ax.n, "interleave", il.n, "values", tup, NULL);
    struct val en = newval(e, NULL, "int32", S1(4));
    struct val w0 = c_i32v(e, en.n, "values0", 1, &r1);
    struct val w1 = c_i32v(e, en.n, "values1", 1, &z);
    struct val w3 = c_i32v(e, en.n, "values3", 1, &z);
    struct val ax2 = c_i32(e, en.n, "axis", 0);
    struct val il2 = c_bool(e, en.n, "interleave", false);
    snprintf(tup, sizeof tup, "(%s, %s, %s, %s)", w0.n, w1.n, ks->end_pos.n, w3.n);
    emit(e, &en, "concat", "axis", ax2.n, "interleave", il2.n, "values", tup, NULL);
    char nm[80];
    snprintf(nm, sizeof nm, STATE_NAME "_internal_tensor_assign_%d", (int)++ks->n_updates);
    struct val su = newval(e, nm, "fp16", state_shape);
    int64_t ones[4] = { 1, 1, 1, 1 };
    bool bm[4] = { false, false, false, false }, em4[4] = { false, true, false, true };
    struct val stv = c_i32v(e, su.n, "stride", 4, ones);
    struct val bmv = c_boolv(e, su.n, "begin_mask", 4, bm);
    struct val emv = c_boolv(e, su.n, "end_mask", 4, em4);
    struct val sqv = c_boolv(e, su.n, "squeeze_mask", 4, bm);
    emit(e, &su, "slice_update", "begin", bg.n, "begin_mask", bmv.n, "end", en.n, "end_mask", emv.n,
         "squeeze_mask", sqv.n, "stride", stv.n, "update", upd->n, "x", ks->cur, NULL);
    emit(e, NULL, "write_state", "data", su.n, "input", STATE_NAME, NULL);
    struct val rd = newval(e, NULL, "fp16", state_shape);
    emit(e, &rd, "read_state", "input", STATE_NAME, NULL);
    snprintf(ks->cur, sizeof ks->cur, "%s", rd.n);
}

/* The full K or V cache of one layer, repeated to every query head: [1, heads, S, d]. */
static struct val g_kv_read(struct g *g, const struct kvstate *ks, int64_t row,
                            struct shp state_shape, bool to_3d) {
    const struct anml_synth_config *c = g->cfg;
    int64_t kv = c->kv_heads, s = c->context, d = c->head_dim, rep = c->heads / c->kv_heads;
    struct val st = newval(g->e, ks->cur, "fp16", state_shape);
    int64_t b[4] = { row, 0, 0, 0 }, en[4] = { row + 1, kv, s, d };
    bool m[4] = { false, true, true, true };
    if (g->llama && to_3d && row + 1 == state_shape.d[0]) {
        /* LLaMA's prefill reads the last row as an open-ended slice */
        en[0] = 1;
        m[0] = true;
    }
    struct val sl = g_slice(g, &st, b, en, m, S4(1, kv, s, d), NULL);
    struct val sq = g_axes_op(g, "squeeze", &sl, 0, S3(kv, s, d));
    struct val ex = g_axes_op(g, "expand_dims", &sq, 1, S4(kv, 1, s, d));
    struct val tl = newval(g->e, NULL, "fp16", S4(kv, rep, s, d));
    int64_t reps[4] = { 1, rep, 1, 1 };
    struct val rp = c_i32v(g->e, tl.n, "reps", 4, reps);
    emit(g->e, &tl, "tile", "reps", rp.n, "x", ex.n, NULL);
    if (to_3d) {
        return g_reshape(g, &tl, S3(kv * rep, s, d), NULL);
    }
    int64_t lit[4] = { 1, -1, s, d };
    return g_reshape(g, &tl, S4(1, kv * rep, s, d), lit);
}

/* Per-head RMSNorm (Qwen 3 q_norm / k_norm) over the last axis of [1, h, Q, d]. */
static struct val g_head_norm(struct g *g, const struct chunk_w *cw, int32_t l, int which,
                              const struct val *x) {
    struct val gain = layer_const(g, cw, l, which, S1(g->cfg->head_dim));
    return g_rmsnorm(g, x, &gain, NULL);
}

/* One FFN function: infer (q == 1) or prefill (q == batch). */
static bool emit_ffn_function(struct g *g, const struct chunk_w *cw, bool prefill) {
    struct em *e = g->e;
    const struct anml_synth_config *c = g->cfg;
    int64_t q = prefill ? c->batch : 1, h = c->hidden, nh = c->heads, nkv = c->kv_heads,
            d = c->head_dim, s = c->context, L = c->layers, inter = c->intermediate;
    struct shp state_shape = S4(2 * L, nkv, s, d);
    sb_printf(&e->b,
              "    func %s<ios18>(tensor<fp16, [1, %lld, %lld]> hidden_states, tensor<int32, "
              "[%lld]> position_ids, tensor<fp16, [1, 1, %lld, %lld]> causal_mask, "
              "tensor<int32, [1]> current_pos, state<tensor<fp16, [%lld, %lld, %lld, %lld]>> "
              "%s) {\n",
              prefill ? "prefill" : "infer", (long long)q, (long long)h, (long long)q, (long long)q,
              (long long)s, (long long)(2 * L), (long long)nkv, (long long)s, (long long)d,
              STATE_NAME);
    /* the projection weights first, as coremltools hoists them */
    struct val(*wv)[W_DOWN + 1] = anml__calloc((size_t)cw->count, sizeof *wv);
    if (!wv) {
        return false;
    }
    for (int32_t l = 0; l < cw->count; l++) {
        for (int which = W_Q; which <= W_DOWN; which++) {
            if (g->llama && prefill && cw->first + l == L - 1 && which >= W_GATE) {
                continue; /* the skipped MLP of LLaMA's last prefill layer */
            }
            const struct wref *r = &cw->w[l * W_PER_LAYER + which];
            struct shp ws = S4(r->t.rows, r->t.cols, 1, 1);
            if (which == W_O) {
                ws = g->llama ? S2(r->t.rows, r->t.cols) : S3(r->t.rows, r->t.cols, 1);
            }
            wv[l][which] = layer_const(g, cw, l, which, ws);
        }
    }
    g->shared = false;
    if (g->llama) {
        g->shared_axis = c_i32(e, "var_axis", "m1", -1);
        g->shared_eps = c_f16(e, "var_rms", "eps", c->rms_eps);
        g->shared = true;
    }
    struct rope rope = g_rope(g, cw, q, prefill);
    struct kvstate ks;
    memset(&ks, 0, sizeof ks);
    ks.end_pos = newval(e, NULL, "int32", S1(1));
    {
        int64_t qq = q;
        struct val sl =
            prefill ? c_i32v(e, ks.end_pos.n, "y", 1, &qq) : c_i32(e, ks.end_pos.n, "y", 1);
        emit(e, &ks.end_pos, "add", "x", "current_pos", "y", sl.n, NULL);
    }
    struct val hs = newval(e, "hidden_states", "fp16", S3(1, q, h));
    bool final_norm = !prefill && (!g->llama || cw->last);
    for (int32_t l = 0; l < cw->count; l++) {
        int32_t gl = cw->first + l;
        bool last_layer = l == cw->count - 1;
        /* attention */
        struct val gin = layer_const(g, cw, l, W_IN_NORM, S1(h));
        struct val xn = g_rmsnorm(g, &hs, &gin, NULL);
        int64_t p021[3] = { 0, 2, 1 };
        struct val xt = g_transpose(g, &xn, 3, p021);
        struct val x4 = g_axes_op(g, "expand_dims", &xt, 2, S4(1, h, 1, q));
        struct val bq, bk, bvv;
        memset(&bq, 0, sizeof bq);
        bk = bvv = bq;
        if (g->qwen2) {
            bq = layer_const(g, cw, l, W_Q_BIAS, S1(nh * d));
            bk = layer_const(g, cw, l, W_K_BIAS, S1(nkv * d));
            bvv = layer_const(g, cw, l, W_V_BIAS, S1(nkv * d));
        }
        struct val qc = g_conv(g, &x4, &wv[l][W_Q], g->qwen2 ? &bq : NULL, S4(1, nh * d, 1, q));
        struct val kc = g_conv(g, &x4, &wv[l][W_K], g->qwen2 ? &bk : NULL, S4(1, nkv * d, 1, q));
        struct val vc = g_conv(g, &x4, &wv[l][W_V], g->qwen2 ? &bvv : NULL, S4(1, nkv * d, 1, q));
        struct val qh, kh, vh;
        if (!prefill) {
            qh = g_reshape(g, &qc, S4(1, nh, 1, d), NULL);
            kh = g_reshape(g, &kc, S4(1, nkv, 1, d), NULL);
            vh = g_reshape(g, &vc, S4(1, nkv, 1, d), NULL);
        } else {
            int64_t p0132[4] = { 0, 1, 3, 2 };
            struct val a = g_reshape(g, &qc, S4(1, nh, d, q), NULL);
            qh = g_transpose(g, &a, 4, p0132);
            struct val b = g_reshape(g, &kc, S4(1, nkv, d, q), NULL);
            kh = g_transpose(g, &b, 4, p0132);
            struct val cc = g_reshape(g, &vc, S4(1, nkv, d, q), NULL);
            vh = g_transpose(g, &cc, 4, p0132);
        }
        if (g->qwen3) {
            qh = g_head_norm(g, cw, l, W_Q_NORM, &qh);
            kh = g_head_norm(g, cw, l, W_K_NORM, &kh);
        }
        struct val qr = g_apply_rope(g, &qh, &rope);
        struct val kr = g_apply_rope(g, &kh, &rope);
        g_kv_write(g, &ks, &kr, gl, state_shape);
        g_kv_write(g, &ks, &vh, L + gl, state_shape);
        struct val kk = g_kv_read(g, &ks, gl, state_shape, false);
        /* the palettized and LLaMA prefill programs reshape the tiled V straight to
         * [heads, S, d] (coremltools merged the two reshapes there) */
        bool merged_v = prefill && (g->llama || c->lut_ffn > 0);
        struct val vv = g_kv_read(g, &ks, L + gl, state_shape, merged_v);
        struct val sc = newval(e, NULL, "fp16", S4(1, nh, q, s));
        struct val tx = c_bool(e, sc.n, "transpose_x", false);
        struct val ty = c_bool(e, sc.n, "transpose_y", true);
        emit(e, &sc, "matmul", "transpose_x", tx.n, "transpose_y", ty.n, "x", qr.n, "y", kk.n,
             NULL);
        struct val scale = c_f16(e, sc.n, "scale", 1.0 / sqrt((double)d));
        struct val ss = g_bin(g, "mul", &sc, &scale, sc.s, NULL);
        struct val cm = newval(e, "causal_mask", "fp16", S4(1, 1, q, s));
        struct val sm = g_bin(g, "add", &ss, &cm, sc.s, NULL);
        struct val p;
        if (!g->llama) {
            p = newval(e, NULL, "fp16", sc.s);
            struct val ax = c_i32(e, p.n, "axis", -1);
            emit(e, &p, "softmax", "axis", ax.n, "x", sm.n, NULL);
        } else {
            struct shp red = shp_set(sc.s, 3, 1);
            struct val mx = newval(e, NULL, "fp16", red);
            int64_t m1 = -1;
            struct val ax = c_i32v(e, mx.n, "axes", 1, &m1);
            struct val kd = c_bool(e, mx.n, "keep_dims", true);
            emit(e, &mx, "reduce_max", "axes", ax.n, "keep_dims", kd.n, "x", sm.n, NULL);
            struct val sub = g_bin(g, "sub", &sm, &mx, sc.s, NULL);
            struct val ex = newval(e, NULL, "fp16", sc.s);
            emit(e, &ex, "exp", "x", sub.n, NULL);
            struct val sum = newval(e, NULL, "fp16", red);
            struct val ax2 = c_i32v(e, sum.n, "axes", 1, &m1);
            struct val kd2 = c_bool(e, sum.n, "keep_dims", true);
            emit(e, &sum, "reduce_sum", "axes", ax2.n, "keep_dims", kd2.n, "x", ex.n, NULL);
            p = g_bin(g, "real_div", &ex, &sum, sc.s, NULL);
        }
        int64_t p0213[4] = { 0, 2, 1, 3 };
        struct val of;
        if (!prefill) {
            struct val o = newval(e, NULL, "fp16", S4(1, nh, 1, d));
            struct val tx2 = c_bool(e, o.n, "transpose_x", false);
            struct val ty2 = c_bool(e, o.n, "transpose_y", false);
            emit(e, &o, "matmul", "transpose_x", tx2.n, "transpose_y", ty2.n, "x", p.n, "y", vv.n,
                 NULL);
            struct val ot = g_transpose(g, &o, 4, p0213);
            of = g_reshape(g, &ot, S3(1, 1, nh * d), NULL);
        } else {
            struct val p3 = g_reshape(g, &p, S3(nh, q, s), NULL);
            struct val v3 = merged_v ? vv : g_reshape(g, &vv, S3(nh, s, d), NULL);
            struct val o3 = newval(e, NULL, "fp16", S3(nh, q, d));
            struct val tx2 = c_bool(e, o3.n, "transpose_x", false);
            struct val ty2 = c_bool(e, o3.n, "transpose_y", false);
            emit(e, &o3, "matmul", "transpose_x", tx2.n, "transpose_y", ty2.n, "x", p3.n, "y", v3.n,
                 NULL);
            struct val o4 = g_reshape(g, &o3, S4(1, nh, q, d), NULL);
            struct val ot = g_transpose(g, &o4, 4, p0213);
            of = g_reshape(g, &ot, S3(1, q, nh * d), NULL);
        }
        struct val ao;
        if (g->llama) {
            ao = newval(e, NULL, "fp16", S3(1, q, h));
            char zbn[96];
            snprintf(zbn, sizeof zbn, "linear_%d_bias_0_to_fp16", (int)l);
            struct val zb = c_blob(e, zbn, S1(h), cw->zero_bias_off);
            emit(e, &ao, "linear", "bias", zb.n, "weight", wv[l][W_O].n, "x", of.n, NULL);
        } else {
            struct val t1 = g_transpose(g, &of, 3, p021);
            struct val cv = g_conv(g, &t1, &wv[l][W_O], NULL, S3(1, h, q));
            ao = g_transpose(g, &cv, 3, p021);
        }
        bool skip_mlp = g->llama && prefill && gl == L - 1;
        bool name_out = last_layer && !final_norm && !(prefill && cw->last);
        struct val h1 = g_bin(g, "add", &hs, &ao, S3(1, q, h),
                              name_out && skip_mlp ? "output_hidden_states" : NULL);
        if (skip_mlp) {
            hs = h1;
            continue;
        }
        /* MLP */
        struct val gpost = layer_const(g, cw, l, W_POST_NORM, S1(h));
        struct val xn2 = g_rmsnorm(g, &h1, &gpost, NULL);
        struct val xt2 = g_transpose(g, &xn2, 3, p021);
        struct val x42 = g_axes_op(g, "expand_dims", &xt2, 2, S4(1, h, 1, q));
        struct val gt = g_conv(g, &x42, &wv[l][W_GATE], NULL, S4(1, inter, 1, q));
        struct val up = g_conv(g, &x42, &wv[l][W_UP], NULL, S4(1, inter, 1, q));
        struct val sg = newval(e, NULL, "fp16", gt.s);
        emit(e, &sg, "silu", "x", gt.n, NULL);
        struct val mm = g_bin(g, "mul", &sg, &up, gt.s, NULL);
        struct val dn = g_conv(g, &mm, &wv[l][W_DOWN], NULL, S4(1, h, 1, q));
        struct val sq = g_axes_op(g, "squeeze", &dn, 2, S3(1, h, q));
        struct val tt = g_transpose(g, &sq, 3, p021);
        hs = g_bin(g, "add", &h1, &tt, S3(1, q, h), name_out ? "output_hidden_states" : NULL);
    }
    if (final_norm) {
        struct val gf = c_blob(e, "model_model_norm_weight", S1(h), cw->final_norm.off);
        g_rmsnorm(g, &hs, &gf, "output_hidden_states");
    } else if (prefill && cw->last) {
        int64_t b[3] = { 0, 0, 0 }, en[3] = { 1, 1, h };
        bool m[3] = { true, false, true };
        g_slice(g, &hs, b, en, m, S3(1, 1, h), "output_hidden_states");
    }
    if (!prefill) {
        /* keeps the otherwise unused position_ids input, as the genuine programs do */
        struct val pt = newval(e, "position_ids_tmp", "int32", S1(1));
        emit(e, &pt, "identity", "x", "position_ids", NULL);
    }
    sb_printf(&e->b, "        } -> (output_hidden_states);\n");
    anml__free(wv);
    return true;
}

/* ---- embeddings and LM head ---- */

static void emit_embeddings(struct g *g, const struct wref *w) {
    struct em *e = g->e;
    const struct anml_synth_config *c = g->cfg;
    int64_t v = c->vocab, h = c->hidden;
    sb_printf(&e->b, "    func main<ios18>(tensor<int32, [1, ?]> input_ids) {\n");
    struct val tab = c_weight(e, "embed_tokens_weight_to_fp16", S2(v, h), w);
    /* As coremltools 9 lowers the gather: negative ids wrap by V, indices cast to int16. For
     * V > 32767 an int16 index would overflow, so larger vocabularies keep int32 indices
     * (g_gather_index). */
    struct val ids = newval(e, "input_ids", "int32", S2(1, -1));
    struct val idx = g_gather_index(g, &ids, v, c->lut_emb > 0);
    struct val out = newval(e, "hidden_states", "fp16", S3(1, -1, h));
    struct val ax = c_i32(e, out.n, "axis", 0);
    struct val bd = c_i32(e, out.n, "batch_dims", 0);
    struct val vi = c_bool(e, out.n, "validate_indices", false);
    emit(e, &out, "gather", "axis", ax.n, "batch_dims", bd.n, "indices", idx.n, "validate_indices",
         vi.n, "x", tab.n, NULL);
    sb_printf(&e->b, "        } -> (hidden_states);\n");
}

static void emit_lm_head(struct g *g, const struct wref *w) {
    struct em *e = g->e;
    const struct anml_synth_config *c = g->cfg;
    int64_t h = c->hidden;
    sb_printf(&e->b, "    func main<ios18>(tensor<fp16, [1, 1, %lld]> hidden_states) {\n",
              (long long)h);
    struct val hs = newval(e, "hidden_states", "fp16", S3(1, 1, h));
    int64_t p021[3] = { 0, 2, 1 };
    struct val t = g_transpose(g, &hs, 3, p021);
    struct val x4 = g_axes_op(g, "expand_dims", &t, 2, S4(1, h, 1, 1));
    for (int32_t k = 0; k < c->split; k++) {
        int64_t rows = w[k].t.rows;
        char name[64];
        snprintf(name, sizeof name, "lm_head%d_%d_weight", (int)c->split, (int)k + 1);
        struct val wk = c_weight(e, name, S4(rows, h, 1, 1), &w[k]);
        struct val cv = g_conv(g, &x4, &wk, NULL, S4(1, rows, 1, 1));
        struct val sq = g_axes_op(g, "squeeze", &cv, 2, S3(1, rows, 1));
        snprintf(name, sizeof name, "logits%d", (int)k + 1);
        struct val lo = newval(e, name, "fp16", S3(1, 1, rows));
        struct val p = c_i32v(e, lo.n, "perm", 3, p021);
        emit(e, &lo, "transpose", "perm", p.n, "x", sq.n, NULL);
    }
    sb_printf(&e->b, "        } -> (");
    for (int32_t k = 0; k < c->split; k++) {
        sb_printf(&e->b, "%slogits%d", k ? ", " : "", (int)k + 1);
    }
    sb_printf(&e->b, ");\n");
}

/* ---- components: model.mil, weights/weight.bin, metadata.json ---- */

enum comp_kind { COMP_EMB, COMP_FFN, COMP_HEAD };

struct comp {
    enum comp_kind kind;
    char *dir, *bin;
    struct bw w;
    struct em em;
    struct g g;
};

static enum anml_status comp_open(struct comp *cp, enum comp_kind kind, const char *out_dir,
                                  const char *name, const struct anml_synth_config *cfg,
                                  struct anml_error *err) {
    memset(cp, 0, sizeof *cp);
    cp->kind = kind;
    cp->dir = anml__path_join(out_dir, name);
    char *wdir = cp->dir ? anml__path_join(cp->dir, "weights") : NULL;
    cp->bin = wdir ? anml__path_join(wdir, "weight.bin") : NULL;
    enum anml_status st = ANML_OK;
    if (!cp->bin) {
        st = anml__err(err, ANML_E_NOMEM, out_dir, "out of memory");
    } else {
        anml__rmtree(cp->dir);
        st = anml__mkdirs(wdir, err);
    }
    anml__free(wdir);
    if (st == ANML_OK) {
        st = bw_open(&cp->w, cp->bin, err);
    }
    cp->g.e = &cp->em;
    cp->g.cfg = cfg;
    cp->g.llama = cfg->arch == ANML_SYNTH_LLAMA;
    cp->g.qwen3 = cfg->arch == ANML_SYNTH_QWEN3;
    cp->g.qwen2 = cfg->arch == ANML_SYNTH_QWEN2;
    sb_printf(&cp->em.b,
              "program(1.3)\n[buildInfo = dict<string, string>({{\"anml-synth\", \"%s\"}, "
              "{\"anml-synth-weights\", \"%s\"}})]\n{\n",
              anml_version(), "see metadata.json");
    return st;
}

static void comp_close(struct comp *cp) {
    bw_close(&cp->w);
    anml__free(cp->em.b.p);
    anml__free(cp->dir);
    anml__free(cp->bin);
    memset(cp, 0, sizeof *cp);
}

static char *arena_printf(struct anml_arena *a, const char *fmt, ...) ANML_PRINTF(2, 3);
static char *arena_printf(struct anml_arena *a, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return anml__arena_strdup(a, buf);
}

static const struct mil_type *result_type(const struct mil_function *fn, const char *name) {
    for (int32_t i = 0; i < fn->block.n_ops; i++) {
        const struct mil_op *op = &fn->block.ops[i];
        for (int32_t r = 0; r < op->n_results; r++) {
            if (!strcmp(op->results[r].name, name)) {
                return op->results[r].type;
            }
        }
    }
    return NULL;
}

/* A feature for a MIL tensor type; unknown dims make the embeddings input enumerated
 * ([1, 1] and [1, batch]) and outputs unspecified (no shape), as the genuine files. */
static bool feature_of(struct anml_arena *a, struct mil_feature *f, const char *name,
                       const struct mil_type *t, bool is_input, int32_t batch) {
    memset(f, 0, sizeof *f);
    f->name = anml__arena_strdup(a, name);
    f->short_description = anml__arena_strdup(a, "");
    f->kind = MIL_FEATURE_MULTIARRAY;
    if (t->kind == MIL_TYPE_STATE) {
        f->kind = MIL_FEATURE_STATE;
        t = t->elems[0];
    }
    f->dtype = t->dtype;
    bool flexible = false;
    for (int32_t i = 0; i < t->rank; i++) {
        flexible |= t->dims[i] == MIL_DIM_UNKNOWN;
    }
    if (flexible && !is_input) {
        return f->name && f->short_description;
    }
    f->rank = t->rank;
    f->shape = anml__arena_array(a, (size_t)(t->rank > 0 ? t->rank : 1), sizeof *f->shape);
    if (!f->shape) {
        return false;
    }
    for (int32_t i = 0; i < t->rank; i++) {
        f->shape[i] = t->dims[i] == MIL_DIM_UNKNOWN ? 1 : t->dims[i];
    }
    if (flexible) {
        f->n_enum_shapes = 2;
        f->enum_shapes = anml__arena_array(a, 2, sizeof *f->enum_shapes);
        if (!f->enum_shapes) {
            return false;
        }
        for (int s = 0; s < 2; s++) {
            f->enum_shapes[s] = anml__arena_array(a, (size_t)t->rank, sizeof(int64_t));
            if (!f->enum_shapes[s]) {
                return false;
            }
            for (int32_t i = 0; i < t->rank; i++) {
                f->enum_shapes[s][i] = t->dims[i] != MIL_DIM_UNKNOWN ? t->dims[i]
                                       : s == 0                      ? 1
                                                                     : batch;
            }
        }
    }
    return f->name && f->short_description;
}

/* Reads the written program back (which also validates every blob reference), describes it and
 * writes metadata.json. */
static enum anml_status comp_describe(const struct comp *cp, const struct anml_synth_config *cfg,
                                      const struct anml_synth_options *opt, int32_t chunk_no,
                                      struct anml_error *err) {
    struct mil_program *prog = NULL;
    enum anml_status st = anml__mil_load(cp->dir, &prog, err);
    if (st != ANML_OK) {
        anml__err_prefix(err, "synthesized program does not read back");
        return st;
    }
    struct anml_arena *a = prog->arena;
    struct mil_model_desc *d = &prog->desc;
    bool ok = true;
    prog->spec_version = 9;
    d->multifunction = prog->n_functions > 1;
    d->n_functions = prog->n_functions;
    d->functions = anml__arena_array(a, (size_t)prog->n_functions, sizeof *d->functions);
    ok = d->functions != NULL;
    for (int32_t i = 0; ok && i < prog->n_functions; i++) {
        const struct mil_function *fn = &prog->functions[i];
        struct mil_function_desc *fd = &d->functions[i];
        fd->name = anml__arena_strdup(a, fn->name);
        fd->inputs = anml__arena_array(a, (size_t)fn->n_inputs, sizeof *fd->inputs);
        fd->states = anml__arena_array(a, (size_t)fn->n_inputs, sizeof *fd->states);
        fd->outputs = anml__arena_array(a, (size_t)fn->block.n_outputs, sizeof *fd->outputs);
        ok = fd->name && fd->inputs && fd->states && fd->outputs;
        for (int32_t k = 0; ok && k < fn->n_inputs; k++) {
            const struct mil_named_type *in = &fn->inputs[k];
            if (in->type->kind == MIL_TYPE_STATE) {
                ok = feature_of(a, &fd->states[fd->n_states++], in->name, in->type, true,
                                cfg->batch);
            } else {
                ok = feature_of(a, &fd->inputs[fd->n_inputs++], in->name, in->type, true,
                                cfg->batch);
            }
        }
        for (int32_t k = 0; ok && k < fn->block.n_outputs; k++) {
            const struct mil_type *t = result_type(fn, fn->block.outputs[k]);
            ok = t && feature_of(a, &fd->outputs[fd->n_outputs++], fn->block.outputs[k], t, false,
                                 cfg->batch);
        }
    }
    if (ok && d->multifunction) {
        d->default_function = anml__arena_strdup(a, "infer");
        ok = d->default_function != NULL;
    }
    static const char *const what[] = { "Embeddings", "Multifunction FFN+Prefill", "LM Head" };
    d->short_description =
        arena_printf(a, "Anemll Model (%s), synthesized by anml with %s weights", what[cp->kind],
                     opt->weights_path ? "checkpoint" : "random");
    d->author = arena_printf(a, "anml %s synth (ANEMLL %s layout)", anml_version(), ANEMLL_VER);
    d->version = arena_printf(a, "%s", ANEMLL_VER);
    char *keys[12], *vals[12];
    int32_t n = 0;
    keys[n] = "com.anemll.info";
    vals[n++] =
        arena_printf(a, "Synthesized by anml %s (ANEMLL v%s layout)", anml_version(), ANEMLL_VER);
    keys[n] = "com.anemll.context_length";
    vals[n++] = arena_printf(a, "%d", (int)cfg->context);
    int32_t lut = cp->kind == COMP_EMB   ? cfg->lut_emb
                  : cp->kind == COMP_FFN ? cfg->lut_ffn
                                         : cfg->lut_head;
    if (lut) {
        keys[n] = "com.anemll.lut_bits";
        vals[n++] = arena_printf(a, "%d", (int)lut);
    }
    if (cp->kind == COMP_FFN) {
        keys[n] = "com.anemll.batch_size";
        vals[n++] = arena_printf(a, "%d", (int)cfg->batch);
        keys[n] = "com.anemll.num_chunks";
        vals[n++] = arena_printf(a, "%d", (int)cfg->chunks);
        keys[n] = "com.anemll.chunk_no";
        vals[n++] = arena_printf(a, "%d", (int)chunk_no);
    }
    keys[n] = "com.anml.weights";
    if (opt->weights_path) {
        const char *base = strrchr(opt->weights_path, '/');
        vals[n++] = arena_printf(a, "%s", base ? base + 1 : opt->weights_path);
    } else {
        vals[n++] = arena_printf(a, "random, seed %llu", (unsigned long long)cfg->seed);
    }
    d->n_user = n;
    d->user_keys = anml__arena_array(a, (size_t)n, sizeof *d->user_keys);
    d->user_values = anml__arena_array(a, (size_t)n, sizeof *d->user_values);
    ok = ok && d->short_description && d->author && d->version && d->user_keys && d->user_values;
    for (int32_t i = 0; ok && i < n; i++) {
        d->user_keys[i] = anml__arena_strdup(a, keys[i]);
        d->user_values[i] = vals[i];
        ok = d->user_keys[i] && vals[i];
    }
    if (!ok) {
        st = anml__err(err, ANML_E_NOMEM, cp->dir, "out of memory");
    } else {
        char *mp = anml__path_join(cp->dir, "metadata.json");
        st = mp ? anml__mil_write_metadata_json(prog, mp, err)
                : anml__err(err, ANML_E_NOMEM, cp->dir, "out of memory");
        anml__free(mp);
    }
    anml__mil_program_free(prog);
    return st;
}

/* Closes the weight file, writes model.mil, then the description. */
static enum anml_status comp_finish(struct comp *cp, const struct anml_synth_config *cfg,
                                    const struct anml_synth_options *opt, int32_t chunk_no,
                                    struct anml_error *err) {
    sb_printf(&cp->em.b, "}\n");
    enum anml_status st = bw_close(&cp->w);
    if (st != ANML_OK) {
        return st;
    }
    if (cp->em.b.oom) {
        return anml__err(err, ANML_E_NOMEM, cp->dir, "out of memory writing model.mil");
    }
    char *mil = anml__path_join(cp->dir, "model.mil");
    st = mil ? anml__write_file(mil, cp->em.b.p, cp->em.b.len, err)
             : anml__err(err, ANML_E_NOMEM, cp->dir, "out of memory");
    anml__free(mil);
    if (st == ANML_OK) {
        st = comp_describe(cp, cfg, opt, chunk_no, err);
    }
    return st;
}

static void lut_suffix(char *buf, size_t cap, int32_t bits) {
    if (bits) {
        snprintf(buf, cap, "_lut%d", (int)bits);
    } else {
        buf[0] = '\0';
    }
}

static enum anml_status write_embeddings(const struct anml_synth_config *cfg,
                                         const struct anml_synth_options *opt, struct anml_wsrc *ws,
                                         const char *out_dir, struct anml_error *err) {
    char name[128], lut[16];
    lut_suffix(lut, sizeof lut, cfg->lut_emb);
    snprintf(name, sizeof name, "%s_embeddings%s.mlmodelc", cfg->prefix, lut);
    struct comp cp;
    enum anml_status st = comp_open(&cp, COMP_EMB, out_dir, name, cfg, err);
    struct wref w;
    memset(&w, 0, sizeof w);
    anml__synth_tensor_init(cfg, ANML_SYNTH_PART_EMB, "model.embed_tokens.weight", cfg->vocab,
                            cfg->hidden, 0, &w.t);
    if (st == ANML_OK) {
        st = write_tensor(&cp.w, ws, &w, err);
    }
    if (st == ANML_OK) {
        emit_embeddings(&cp.g, &w);
        st = comp_finish(&cp, cfg, opt, 0, err);
    }
    comp_close(&cp);
    return st;
}

static enum anml_status write_head(const struct anml_synth_config *cfg,
                                   const struct anml_synth_options *opt, struct anml_wsrc *ws,
                                   const char *out_dir, struct anml_error *err) {
    char name[128], lut[16];
    lut_suffix(lut, sizeof lut, cfg->lut_head);
    snprintf(name, sizeof name, "%s_lm_head%s.mlmodelc", cfg->prefix, lut);
    struct comp cp;
    enum anml_status st = comp_open(&cp, COMP_HEAD, out_dir, name, cfg, err);
    struct wref *w = anml__calloc((size_t)cfg->split, sizeof *w);
    if (!w && st == ANML_OK) {
        st = anml__err(err, ANML_E_NOMEM, name, "out of memory");
    }
    for (int32_t k = 0; st == ANML_OK && k < cfg->split; k++) {
        int32_t rows, first;
        anml__synth_slice_rows(cfg, k, &rows, &first);
        anml__synth_tensor_init(cfg, ANML_SYNTH_PART_HEAD, "lm_head.weight", rows, cfg->hidden,
                                first, &w[k].t);
        st = write_tensor(&cp.w, ws, &w[k], err);
    }
    if (st == ANML_OK) {
        emit_lm_head(&cp.g, w);
        st = comp_finish(&cp, cfg, opt, 0, err);
    }
    anml__free(w);
    comp_close(&cp);
    return st;
}

static enum anml_status write_chunk(const struct anml_synth_config *cfg,
                                    const struct anml_synth_options *opt, struct anml_wsrc *ws,
                                    const char *out_dir, int32_t k, struct anml_error *err) {
    char name[160], lut[16];
    lut_suffix(lut, sizeof lut, cfg->lut_ffn);
    snprintf(name, sizeof name, "%s_FFN_PF%s_chunk_%02dof%02d.mlmodelc", cfg->prefix, lut,
             (int)k + 1, (int)cfg->chunks);
    struct comp cp;
    enum anml_status st = comp_open(&cp, COMP_FFN, out_dir, name, cfg, err);
    struct chunk_w cw;
    memset(&cw, 0, sizeof cw);
    cw.k = k;
    cw.last = k == cfg->chunks - 1;
    anml__synth_chunk_layers(cfg, k, &cw.first, &cw.count);
    cw.w = anml__calloc((size_t)cw.count * W_PER_LAYER, sizeof *cw.w);
    if (!cw.w && st == ANML_OK) {
        st = anml__err(err, ANML_E_NOMEM, name, "out of memory");
    }
    if (st == ANML_OK) {
        st = write_chunk_weights(&cp.w, ws, cfg, &cw, err);
    }
    if (st == ANML_OK) {
        if (!emit_ffn_function(&cp.g, &cw, false) || !emit_ffn_function(&cp.g, &cw, true)) {
            st = anml__err(err, ANML_E_NOMEM, name, "out of memory");
        }
    }
    if (st == ANML_OK) {
        st = comp_finish(&cp, cfg, opt, k + 1, err);
    }
    anml__free(cw.w);
    comp_close(&cp);
    return st;
}

/* ---- meta.yaml, config.json, tokenizer files ---- */

static enum anml_status write_text(const char *dir, const char *name, const char *text,
                                   struct anml_error *err) {
    char *p = anml__path_join(dir, name);
    enum anml_status st = p ? anml__write_file(p, text, strlen(text), err)
                            : anml__err(err, ANML_E_NOMEM, dir, "out of memory");
    anml__free(p);
    return st;
}

static void lut_yaml(char *buf, size_t cap, int32_t bits) {
    if (bits) {
        snprintf(buf, cap, "%d", (int)bits);
    } else {
        snprintf(buf, cap, "none");
    }
}

static enum anml_status write_meta(const struct anml_synth_config *cfg,
                                   const struct anml_synth_options *opt, const char *out_dir,
                                   struct anml_error *err) {
    char le[16], lf[16], lh[16], se[16], sf[16], sh[16], name[160];
    lut_yaml(le, sizeof le, cfg->lut_emb);
    lut_yaml(lf, sizeof lf, cfg->lut_ffn);
    lut_yaml(lh, sizeof lh, cfg->lut_head);
    lut_suffix(se, sizeof se, cfg->lut_emb);
    lut_suffix(sf, sizeof sf, cfg->lut_ffn);
    lut_suffix(sh, sizeof sh, cfg->lut_head);
    if (opt->name) {
        snprintf(name, sizeof name, "%s", opt->name);
    } else {
        snprintf(name, sizeof name, "anml-synth-%s-h%d-l%d-ctx%d", anml__synth_arch_name(cfg->arch),
                 (int)cfg->hidden, (int)cfg->layers, (int)cfg->context);
    }
    struct sb b = { 0 };
    sb_printf(&b,
              "model_info:\n"
              "  name: %s\n"
              "  version: " ANEMLL_VER "\n"
              "  description: |\n"
              "    Synthesized by anml %s in ANEMLL " ANEMLL_VER " layout (%s architecture).\n",
              name, anml_version(), anml__synth_arch_name(cfg->arch));
    if (opt->weights_path) {
        sb_printf(&b, "    Weights from a checkpoint.\n");
    } else {
        sb_printf(&b, "    Random weights (seed %llu): the model produces gibberish.\n",
                  (unsigned long long)cfg->seed);
    }
    sb_printf(&b,
              "    Context length: %d\n"
              "    Batch size: %d\n"
              "    Chunks: %d\n"
              "  license: MIT\n"
              "  author: Anemll\n"
              "  framework: Core ML\n"
              "  language: Python\n"
              "  architecture: %s\n"
              "  parameters:\n"
              "    context_length: %d\n"
              "    batch_size: %d\n"
              "    lut_embeddings: %s\n"
              "    lut_ffn: %s\n"
              "    lut_lmhead: %s\n"
              "    num_chunks: %d\n"
              "    model_prefix: %s\n",
              (int)cfg->context, (int)cfg->batch, (int)cfg->chunks,
              anml__synth_arch_name(cfg->arch), (int)cfg->context, (int)cfg->batch, le, lf, lh,
              (int)cfg->chunks, cfg->prefix);
    sb_printf(&b,
              "    embeddings: %s_embeddings%s.mlmodelc\n"
              "    lm_head: %s_lm_head%s.mlmodelc\n"
              "    ffn: %s_FFN_PF%s.mlmodelc\n"
              "    split_lm_head: %d\n",
              cfg->prefix, se, cfg->prefix, sh, cfg->prefix, sf, (int)cfg->split);
    enum anml_status st = b.oom ? anml__err(err, ANML_E_NOMEM, out_dir, "out of memory")
                                : write_text(out_dir, "meta.yaml", b.p, err);
    anml__free(b.p);
    if (st == ANML_OK) {
        /* the 2-key tokenizer hint convert_model.sh writes, not an HF model config */
        char cj[160];
        snprintf(cj, sizeof cj, "{\n  \"tokenizer_class\": \"%s\",\n  \"model_type\": \"%s\"\n}\n",
                 cfg->arch == ANML_SYNTH_LLAMA ? "LlamaTokenizer" : "Qwen2Tokenizer",
                 anml__synth_arch_name(cfg->arch));
        st = write_text(out_dir, "config.json", cj, err);
    }
    return st;
}

static enum anml_status copy_file(const char *from, const char *to, struct anml_error *err) {
    char *data = NULL;
    size_t len = 0;
    enum anml_status st = anml__read_file(from, &data, &len, err);
    if (st == ANML_OK) {
        st = anml__write_file(to, data, len, err);
    }
    anml__free(data);
    return st;
}

static enum anml_status copy_tokenizer(const char *path, const char *out_dir,
                                       struct anml_error *err) {
    char *dir;
    if (anml__is_dir(path)) {
        dir = anml__strdup(path);
    } else {
        const char *slash = strrchr(path, '/');
        dir = slash ? anml__strndup(path, (size_t)(slash - path)) : anml__strdup(".");
    }
    if (!dir) {
        return anml__err(err, ANML_E_NOMEM, path, "out of memory");
    }
    enum anml_status st = ANML_OK;
    static const char *const files[] = { "tokenizer.json", "tokenizer_config.json" };
    for (size_t i = 0; st == ANML_OK && i < 2; i++) {
        char *from =
            anml__is_dir(path) || i == 1 ? anml__path_join(dir, files[i]) : anml__strdup(path);
        char *to = anml__path_join(out_dir, files[i]);
        if (!from || !to) {
            st = anml__err(err, ANML_E_NOMEM, path, "out of memory");
        } else if (i == 0 && !anml__is_file(from)) {
            st = anml__err(err, ANML_E_NOT_FOUND, from, "no tokenizer.json");
        } else if (anml__is_file(from)) {
            st = copy_file(from, to, err);
        }
        anml__free(from);
        anml__free(to);
    }
    anml__free(dir);
    return st;
}

/* Every tensor the model needs is in the checkpoint with the right shape and dtype, checked
 * before anything is written. */
enum anml_status anml__wsrc_check(struct anml_wsrc *ws, const struct anml_synth_config *c,
                                  struct anml_error *err) {
    if (ws->random) {
        return ANML_OK;
    }
    struct anml_synth_tensor t;
    anml__synth_tensor_init(c, ANML_SYNTH_PART_EMB, "model.embed_tokens.weight", c->vocab,
                            c->hidden, 0, &t);
    enum anml_status st = ckpt_rows(ws, &t, 0, 0, NULL, err);
    if (st == ANML_OK) {
        anml__synth_tensor_init(c, ANML_SYNTH_PART_HEAD, "lm_head.weight", c->vocab, c->hidden, 0,
                                &t);
        st = ckpt_rows(ws, &t, 0, 0, NULL, err);
    }
    if (st == ANML_OK) {
        anml__synth_tensor_init(c, ANML_SYNTH_PART_FFN, "model.norm.weight", c->hidden, 1, 0, &t);
        st = ckpt_rows(ws, &t, 0, 0, NULL, err);
    }
    for (int32_t l = 0; st == ANML_OK && l < c->layers; l++) {
        for (int which = 0; st == ANML_OK && which < W_PER_LAYER; which++) {
            int64_t rows, cols;
            layer_tensor_shapes(c, which, &rows, &cols);
            if (!rows) {
                continue;
            }
            char name[128];
            snprintf(name, sizeof name, "model.layers.%d.%s", (int)l, k_wname[which]);
            anml__synth_tensor_init(c, ANML_SYNTH_PART_FFN, name, rows, cols, 0, &t);
            st = ckpt_rows(ws, &t, 0, 0, NULL, err);
        }
    }
    return st;
}

/* ---- entry point ---- */

enum anml_status anml__synth_write(const struct anml_synth_config *cfg,
                                   const struct anml_synth_options *opt, const char *out_dir,
                                   struct anml_error *err) {
    static const struct anml_synth_options no_opt = { 0 };
    if (!opt) {
        opt = &no_opt;
    }
    enum anml_status st = anml__synth_config_check(cfg, err);
    if (st != ANML_OK) {
        return st;
    }
    struct anml_wsrc *ws = NULL;
    st = anml__wsrc_open(cfg, opt->weights_path, &ws, err);
    if (st == ANML_OK && opt->weights_path) {
        st = anml__wsrc_check(ws, cfg, err);
    }
    if (st == ANML_OK && opt->tokenizer_path && !anml__is_file(opt->tokenizer_path) &&
        !anml__is_dir(opt->tokenizer_path)) {
        st = anml__err(err, ANML_E_NOT_FOUND, opt->tokenizer_path, "no tokenizer.json there");
    }
    if (st == ANML_OK) {
        st = anml__mkdirs(out_dir, err);
    }
    if (st == ANML_OK) {
        st = write_embeddings(cfg, opt, ws, out_dir, err);
    }
    for (int32_t k = 0; st == ANML_OK && k < cfg->chunks; k++) {
        st = write_chunk(cfg, opt, ws, out_dir, k, err);
    }
    if (st == ANML_OK) {
        st = write_head(cfg, opt, ws, out_dir, err);
    }
    if (st == ANML_OK) {
        st = write_meta(cfg, opt, out_dir, err);
    }
    if (st == ANML_OK && opt->tokenizer_path) {
        st = copy_tokenizer(opt->tokenizer_path, out_dir, err);
    }
    anml__wsrc_free(ws);
    return st;
}
