/* model_internal.h -- the assembled ANEMLL model (model.c) as the pipeline (pipeline.c) sees it. */
#ifndef ANML_LLM_MODEL_INTERNAL_H
#define ANML_LLM_MODEL_INTERNAL_H

#include "core/core.h"

#define ANML_MAX_CHUNKS 64
#define ANML_MAX_SLICES 64

struct anml_chunk {
    struct anml_program *prog;         /* infer (and prefill when combined) */
    struct anml_program *prefill_prog; /* a separate prefill file, or NULL */
    char *path, *prefill_path;
    const char *infer_fn;   /* borrowed from the program */
    const char *prefill_fn; /* NULL: no prefill function; prefill runs token by token */
};

struct anml_model {
    char *dir;
    char *architecture, *meta_version, *model_prefix, *tokenizer_dir;
    int lut_emb, lut_ffn, lut_head;
    struct anml_program *emb, *head;
    char *emb_path, *head_path;
    struct anml_chunk chunks[ANML_MAX_CHUNKS];
    int32_t n_chunks;
    /* derived from the programs */
    int32_t hidden, batch, context, state_len, vocab;
    int32_t n_slices;
    int32_t slice_size[ANML_MAX_SLICES];
    char *slice_name[ANML_MAX_SLICES]; /* LM head outputs in numeric order */
    char *state_name;
    int32_t state_rank;
    int64_t state_shape[ANML_MAX_DIMS];
    int32_t n_threads; /* per session (anml_model_params.n_threads, resolved) */
};

#endif
