/*
 * synth.h -- synthesis of ANEMLL model directories (synth.c) and the weight source it shares
 * with the independent reference forward (reference.c).
 *
 * A model is described by a struct anml_synth_config (architecture, shapes, context, LUT widths,
 * LM-head split, seed). Its weights come from a weight source: either a fixed-seed generator
 * (every tensor and every row has its own deterministic stream, so any row range can be
 * produced on its own, in any order) or a Hugging Face .safetensors checkpoint. The values the
 * synthesized files hold -- rounded to fp16, or palettized with one LUT per group of 8 output
 * channels -- are produced by anml__synth_tensor_rows, which both the writer and the reference
 * call, so the reference computes with exactly the weights the files carry.
 */
#ifndef ANML_LLM_SYNTH_H
#define ANML_LLM_SYNTH_H

#include <stdbool.h>
#include <stdint.h>

#include "core/core.h"

enum anml_synth_arch { ANML_SYNTH_QWEN3 = 0, ANML_SYNTH_QWEN2, ANML_SYNTH_LLAMA };

struct anml_synth_config {
    enum anml_synth_arch arch;
    int32_t hidden, layers, heads, kv_heads, head_dim, intermediate, vocab;
    int32_t context; /* also the KV state length */
    int32_t batch;   /* prefill batch */
    int32_t chunks;
    int32_t lut_emb, lut_ffn, lut_head; /* bits (1, 2, 3, 4, 6 or 8); 0 = fp16 */
    int32_t split;                      /* LM head slices (logits1..K) */
    double rms_eps;
    double rope_base; /* the base the RoPE tables use (ANEMLL: theta, or theta x factor) */
    uint64_t seed;
    char prefix[32]; /* file name prefix: qwen, qwen25, llama */
};

/* Architecture names as meta.yaml spells them ("qwen3", "qwen2", "llama"). */
const char *anml__synth_arch_name(enum anml_synth_arch arch);
bool anml__synth_arch_parse(const char *s, enum anml_synth_arch *out);

/* Fills cfg with a named preset: "tiny" (the fixtures' shapes: hidden 64, 2 layers, vocab 1024,
 * context 64, batch 8) or "qwen3-0.6b", "qwen2.5-0.5b", "llama3.2-1b" (anemll-format.md §2.9,
 * context 512, batch 64). `arch` picks the family of "tiny"; the others imply theirs.
 * Returns false for an unknown name. */
bool anml__synth_preset(const char *name, enum anml_synth_arch arch, struct anml_synth_config *cfg);
/* Architecture defaults that do not depend on the shapes: eps, RoPE base, split, prefix. */
void anml__synth_arch_defaults(enum anml_synth_arch arch, struct anml_synth_config *cfg);
/* Reads a Hugging Face config.json (model_type qwen3 / qwen2 / llama) into cfg's architecture,
 * shapes, eps and RoPE base (ANEMLL 0.3.4 rule: Qwen 3 uses rope_theta, Qwen 2.5 and LLaMA
 * rope_theta x rope_scaling.factor when a factor is given). Context/batch/chunks/LUT/seed are
 * left as they are. */
enum anml_status anml__synth_config_from_hf(const char *config_json_path,
                                            struct anml_synth_config *cfg, struct anml_error *err);
/* Checks the shapes and settings for consistency and range (a clear message otherwise). */
enum anml_status anml__synth_config_check(const struct anml_synth_config *cfg,
                                          struct anml_error *err);

/* Layers of chunk k (0-based): [*first, *first + *count). The remainder of layers / chunks goes
 * to the first chunks (ANEMLL 0.3.5 rule; 0.3.4 dropped trailing layers, a bug not reproduced). */
void anml__synth_chunk_layers(const struct anml_synth_config *cfg, int32_t k, int32_t *first,
                              int32_t *count);
/* Rows of LM-head slice k (0-based) and its first row in lm_head.weight: Qwen spreads V % K
 * over the first slices, LLaMA gives every slice V / K rows and drops V % K (as ANEMLL). */
void anml__synth_slice_rows(const struct anml_synth_config *cfg, int32_t k, int32_t *rows,
                            int32_t *first);
/* Logits the LM head produces (sum of the slices). */
int32_t anml__synth_head_vocab(const struct anml_synth_config *cfg);

/* ---- weight source ---- */

struct anml_wsrc;

/* A generator source (safetensors_path NULL) or a checkpoint. A checkpoint's tensors are checked
 * against cfg's shapes when they are read; F16, BF16 and F32 are accepted; a missing
 * lm_head.weight falls back to model.embed_tokens.weight (tied embeddings). */
enum anml_status anml__wsrc_open(const struct anml_synth_config *cfg, const char *safetensors_path,
                                 struct anml_wsrc **out, struct anml_error *err);
/* A checkpoint held in memory (`name` appears in errors); data must outlive the source. */
enum anml_status anml__wsrc_open_memory(const struct anml_synth_config *cfg, const uint8_t *data,
                                        size_t size, const char *name, struct anml_wsrc **out,
                                        struct anml_error *err);
void anml__wsrc_free(struct anml_wsrc *ws);
/* Checks that a checkpoint holds every tensor of cfg with the right shape and a supported
 * dtype (anml__synth_write does this before writing anything). */
enum anml_status anml__wsrc_check(struct anml_wsrc *ws, const struct anml_synth_config *cfg,
                                  struct anml_error *err);

/* Which component a tensor belongs to (decides its LUT setting). */
enum anml_synth_part { ANML_SYNTH_PART_EMB = 0, ANML_SYNTH_PART_FFN, ANML_SYNTH_PART_HEAD };

/* One weight as a 2-D [rows, cols] view of the Hugging Face tensor `name` starting at row
 * `row0` (LM-head slices take a row range of lm_head.weight; 1-D tensors have cols 1). */
struct anml_synth_tensor {
    char name[96];
    int64_t rows, cols, row0;
    int64_t full_rows; /* rows of the whole Hugging Face tensor */
    int32_t lut_bits;  /* 0: stored as fp16 */
};

/* Describes a tensor and decides its palettization like coremltools' per-grouped-channel pass
 * (group 8): only when the part asks for a LUT, the tensor is 2-D, has more than 2048 elements
 * and its rows divide by 8. */
void anml__synth_tensor_init(const struct anml_synth_config *cfg, enum anml_synth_part part,
                             const char *name, int64_t rows, int64_t cols, int64_t row0,
                             struct anml_synth_tensor *t);

/* Rows [r0, r0 + n) of t (r0 and n multiples of 8 for palettized tensors, or n reaching the
 * last row) as the files hold them: `values` (n * cols floats, required) receive the fp16 values
 * or the dequantized LUT values; for palettized tensors `lut` (n / 8 * 2^bits fp16 bit patterns)
 * and `idx` (n * cols indices) receive the encoding when not NULL. */
enum anml_status anml__synth_tensor_rows(struct anml_wsrc *ws, const struct anml_synth_tensor *t,
                                         int64_t r0, int64_t n, float *values, uint16_t *lut,
                                         uint8_t *idx, struct anml_error *err);

/* Palettizes one group of n values with a 2^bits-entry table: quantile-initialized Lloyd
 * iterations over a histogram, table rounded to fp16 and sorted, each value mapped to the
 * table entry nearest its histogram bin. Deterministic. */
void anml__synth_lut_encode(const float *x, int64_t n, int bits, uint16_t *lut, uint8_t *idx);

/* ---- writing ---- */

struct anml_synth_options {
    const char *weights_path;   /* .safetensors, or NULL for random weights */
    const char *tokenizer_path; /* tokenizer.json (its directory's tokenizer files are copied) */
    const char *name;           /* model_info.name; NULL: derived */
};

/* Writes a complete ANEMLL 0.3.4 model directory into out_dir (created if needed; existing
 * component directories of the same names are replaced). */
enum anml_status anml__synth_write(const struct anml_synth_config *cfg,
                                   const struct anml_synth_options *opt, const char *out_dir,
                                   struct anml_error *err);

#endif /* ANML_LLM_SYNTH_H */
