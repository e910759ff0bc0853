/*
 * fuzz_safetensors.c -- the .safetensors reader of `anml synth --weights` on arbitrary bytes:
 * header length and JSON, dtypes, shapes and data offsets; when the bytes parse, the checkpoint
 * is checked against a tiny Qwen 2.5 model (every tensor's presence, shape and dtype) and, if it
 * passes, every tensor is read through anml__synth_tensor_rows with LUT palettization on (so the
 * encoder sees whatever values the bytes hold: NaN, infinities, subnormals, constant groups).
 * Decoded LUT values must come from the group's table.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "llm/synth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void tiny(struct anml_synth_config *c) {
    memset(c, 0, sizeof *c);
    anml__synth_arch_defaults(ANML_SYNTH_QWEN2, c);
    c->hidden = 16;
    c->layers = 1;
    c->heads = 2;
    c->kv_heads = 1;
    c->head_dim = 8;
    c->intermediate = 136; /* 136 x 16 > 2048: gate/up are palettized */
    c->vocab = 136;
    c->context = 8;
    c->batch = 4;
    c->chunks = 1;
    c->split = 2;
    c->lut_emb = 4;
    c->lut_ffn = 6;
    c->lut_head = 3;
}

static void read_all(struct anml_wsrc *ws, const struct anml_synth_config *c,
                     enum anml_synth_part part, const char *name, int64_t rows, int64_t cols) {
    struct anml_synth_tensor t;
    anml__synth_tensor_init(c, part, name, rows, cols, 0, &t);
    float *v = malloc((size_t)(rows * cols) * sizeof *v);
    uint16_t *lut = malloc((size_t)(rows / 8 + 1) * 256 * sizeof *lut);
    uint8_t *idx = malloc((size_t)(rows * cols));
    struct anml_error err;
    if (v && lut && idx && anml__synth_tensor_rows(ws, &t, 0, rows, v, lut, idx, &err) == ANML_OK &&
        t.lut_bits) {
        int k = 1 << t.lut_bits;
        for (int64_t i = 0; i < rows * cols; i++) {
            if (idx[i] >= k) {
                abort();
            }
            float want = anml__fp16_to_fp32(lut[(i / (8 * cols)) * k + idx[i]]);
            if (memcmp(&want, &v[i], sizeof want) != 0 && !(isnan(want) && isnan(v[i]))) {
                abort();
            }
        }
    }
    free(v);
    free(lut);
    free(idx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct anml_synth_config c;
    tiny(&c);
    struct anml_wsrc *ws = NULL;
    struct anml_error err;
    if (anml__wsrc_open_memory(&c, data, size, "fuzz.safetensors", &ws, &err) != ANML_OK) {
        return 0;
    }
    if (anml__wsrc_check(ws, &c, &err) == ANML_OK) {
        read_all(ws, &c, ANML_SYNTH_PART_EMB, "model.embed_tokens.weight", c.vocab, c.hidden);
        read_all(ws, &c, ANML_SYNTH_PART_HEAD, "lm_head.weight", c.vocab, c.hidden);
        read_all(ws, &c, ANML_SYNTH_PART_FFN, "model.layers.0.mlp.gate_proj.weight", c.intermediate,
                 c.hidden);
        read_all(ws, &c, ANML_SYNTH_PART_FFN, "model.layers.0.self_attn.q_proj.bias", 16, 1);
    }
    anml__wsrc_free(ws);
    return 0;
}
