/*
 * reference.h -- an independent reference forward of the three decoder families (reference.c):
 * plain C transformer math written from the formulas (HF-style RMSNorm, rotate-half RoPE, GQA
 * attention with a causal mask, SiLU-gated MLP, Qwen 3 q/k norm, Qwen 2.5 qkv bias), fp32
 * arithmetic with fp64 accumulation, a KV cache of fp32 values. It knows nothing about MIL: it
 * reads the weights through the weight source of synth.h (random, or a .safetensors checkpoint),
 * taking the values the synthesized files hold (fp16 / dequantized LUT).
 */
#ifndef ANML_LLM_REFERENCE_H
#define ANML_LLM_REFERENCE_H

#include "llm/synth.h"

struct anml_ref;

/* Materializes every weight of cfg from ws as floats. The reference keeps no pointer to ws. */
enum anml_status anml__ref_create(const struct anml_synth_config *cfg, struct anml_wsrc *ws,
                                  struct anml_ref **out, struct anml_error *err);
void anml__ref_free(struct anml_ref *r);

/* Reproduce ANEMLL 0.3.4's multi-chunk Qwen `infer` quirk: the final norm is applied at the end
 * of every chunk for tokens run one at a time (not for prompt tokens, which ANEMLL runs through
 * `prefill`). Off by default (textbook model). */
void anml__ref_set_chunk_norm_quirk(struct anml_ref *r, bool on);

/* Forgets all tokens. */
void anml__ref_reset(struct anml_ref *r);

/* Runs token `id` at position `pos` (0 <= pos < context; writes its K/V slot, positions must be
 * fed in order, a position may be fed again as ANEMLL re-runs the last prompt token) and, when
 * logits is not NULL, writes the head_vocab logits that follow it. `prefill` says the token goes
 * through ANEMLL's prefill path (matters only with the quirk). */
enum anml_status anml__ref_step(struct anml_ref *r, int32_t id, int32_t pos, bool prefill,
                                float *logits, struct anml_error *err);

/* ANEMLL's protocol: the prompt through prefill, then the last prompt token again through infer
 * (its logits give the first token), then each generated token through infer, greedy (first
 * maximum). Writes n_gen ids to gen and, when logits is not NULL, n_gen rows of head_vocab
 * logits (row s = the logits step s chose from). When force is not NULL, step s feeds force[s]
 * instead of its own choice (teacher forcing); gen still receives the reference's choices. */
enum anml_status anml__ref_generate(struct anml_ref *r, const int32_t *prompt, int32_t n_prompt,
                                    int32_t n_gen, const int32_t *force, int32_t *gen,
                                    float *logits, struct anml_error *err);

#endif /* ANML_LLM_REFERENCE_H */
