/*
 * anml.h -- the one public header of anml, a C library that reads Apple CoreML ML Programs
 * (.mlmodelc / .mlpackage, as written for ANEMLL language models) and runs them on any CPU.
 *
 * This header is the manual. Conventions that hold for every function below:
 *
 *  - Fallible functions return enum anml_status; ANML_OK is 0. Functions that create a handle
 *    take an optional `struct anml_error *err` out-parameter that receives the code, a one-line
 *    message and where it happened (a file name with line:col or @offset). Passing NULL is fine.
 *  - Every *_load / *_create has exactly one *_free; *_free(NULL) is a no-op.
 *  - Pointers returned by anml are borrowed from the handle they came from unless the comment
 *    says "caller frees with anml_free".
 *  - The library never prints to stdout, never calls exit() and never aborts on bad input.
 *  - Logging is the only global state: see anml_log_set(). (The kernel set, chosen once per
 *    process, is fixed state: the best the CPU supports, or the one the environment variable
 *    ANML_KERNELS=ref|avx2|avx512 names -- the only variable the library reads. It is logged at
 *    INFO. Results of different kernel sets differ only by fp32 summation rounding.)
 *  - Threads: contexts and sessions run conv, linear and matmul on a pool of worker threads
 *    (anml_context_params.n_threads, anml_model_params.n_threads); results are bit-identical
 *    for every thread count.
 */
#ifndef ANML_H
#define ANML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#  define ANML_API __attribute__((visibility("default")))
#else
#  define ANML_API
#endif

#define ANML_VERSION_MAJOR 0
#define ANML_VERSION_MINOR 1
#define ANML_VERSION_PATCH 0

/* Returns the library version as "MAJOR.MINOR.PATCH". Ownership: static string.
 * Thread-safety: safe. */
ANML_API const char *anml_version(void);

/* ---- status codes ---------------------------------------------------------------------------
 * Values are never renumbered; new codes are added just before ANML_STATUS_COUNT. */
enum anml_status {
    ANML_OK = 0,
    ANML_E_NOMEM,       /* an allocation failed */
    ANML_E_IO,          /* a file could not be opened, read, mapped or written */
    ANML_E_FORMAT,      /* a file's contents are malformed (the message says where and why) */
    ANML_E_UNSUPPORTED, /* well-formed input that anml does not implement */
    ANML_E_INVALID_ARG, /* a caller passed a bad argument */
    ANML_E_SHAPE,       /* tensor shapes or dtypes do not agree */
    ANML_E_ABORTED,     /* an abort callback asked to stop */
    ANML_E_MISUSE,      /* an API call in a state where it is not allowed */
    ANML_E_INTERNAL,    /* a bug in anml */
    ANML_E_NOT_FOUND,   /* a named function, input, output or state does not exist */
    ANML_STATUS_COUNT
};

/* Returns a static, never-NULL description of a status code. Thread-safety: safe. */
ANML_API const char *anml_status_str(enum anml_status status);

/* Error detail for calls that create handles. `where` names the file and position, e.g.
 * "model.mil:412:9" or "weights/weight.bin@0x1f40"; it is empty when no position applies. */
struct anml_error {
    enum anml_status code;
    char where[256];
    char msg[512];
};

/* ---- data types -----------------------------------------------------------------------------
 * Every scalar type of the MIL type system. Tensors handed to and from anml use one of these;
 * sub-byte types (uint1..uint6, int4) only occur inside compressed constants. */
enum anml_dtype {
    ANML_DTYPE_INVALID = 0,
    ANML_DTYPE_BOOL, /* one byte per element, 0 or 1 */
    ANML_DTYPE_STRING,
    ANML_DTYPE_F16, /* IEEE binary16, stored as uint16_t bit patterns */
    ANML_DTYPE_F32,
    ANML_DTYPE_F64,
    ANML_DTYPE_BF16,
    ANML_DTYPE_INT4,
    ANML_DTYPE_INT8,
    ANML_DTYPE_INT16,
    ANML_DTYPE_INT32,
    ANML_DTYPE_INT64,
    ANML_DTYPE_UINT1,
    ANML_DTYPE_UINT2,
    ANML_DTYPE_UINT3,
    ANML_DTYPE_UINT4,
    ANML_DTYPE_UINT6,
    ANML_DTYPE_UINT8,
    ANML_DTYPE_UINT16,
    ANML_DTYPE_UINT32,
    ANML_DTYPE_UINT64,
    ANML_DTYPE_FP8E4M3FN,
    ANML_DTYPE_FP8E5M2,
    ANML_DTYPE_COUNT
};

/* Returns the MIL spelling of a dtype ("fp16", "int32", "uint4", ...), or "invalid".
 * Ownership: static string. Thread-safety: safe. */
ANML_API const char *anml_dtype_name(enum anml_dtype dtype);

/* Returns the storage width of one element in bits (1..64); 0 for STRING and INVALID.
 * Thread-safety: safe. */
ANML_API int anml_dtype_bits(enum anml_dtype dtype);

/* ---- tensors ----------------------------------------------------------------------------------
 * A tensor is a plain description of caller- or library-owned memory: row-major (C order),
 * `data` holds prod(shape) elements of `dtype` (fp16 as uint16_t bit patterns, bool one byte).
 * A rank-0 tensor is a scalar with one element. */
#define ANML_MAX_DIMS 8

struct anml_tensor {
    enum anml_dtype dtype;
    int32_t rank;
    int64_t shape[ANML_MAX_DIMS];
    void *data;
};

/* A tensor with a name, for passing function inputs. */
struct anml_named_tensor {
    const char *name;
    struct anml_tensor tensor;
};

/* Number of elements of a tensor (1 for rank 0); -1 if a dim is negative or the product
 * overflows. Thread-safety: safe. */
ANML_API int64_t anml_tensor_numel(const struct anml_tensor *t);

/* Bytes of data of a tensor (numel * element size); 0 for sub-byte/string dtypes or bad shapes.
 * Thread-safety: safe. */
ANML_API size_t anml_tensor_nbytes(const struct anml_tensor *t);

/* ---- .npy files -------------------------------------------------------------------------------
 * Reads a NumPy .npy file (versions 1-3, C order, dtypes <f2 <f4 <f8 |b1 |i1 |u1 <i2 <u2 <i4 <u4
 * <i8 <u8). On success *out describes the array and out->data is allocated.
 * Ownership: caller frees out->data with anml_free. Thread-safety: safe. */
ANML_API enum anml_status anml_npy_read(const char *path, struct anml_tensor *out,
                                        struct anml_error *err);
/* Writes a tensor as a version-1 .npy file. Thread-safety: safe. */
ANML_API enum anml_status anml_npy_write(const char *path, const struct anml_tensor *t,
                                         struct anml_error *err);

/* ---- programs: one CoreML ML Program (component-level API) ------------------------------------
 * A program is loaded from a .mlmodelc directory, a .mlpackage directory or a bare model.mil
 * file. Loading parses the program, validates every weight reference against the weight files
 * (which stay memory-mapped, read-only) and checks that every op is implemented, so that an
 * unsupported op is reported here, by name, and never during a run.
 *
 * A program is immutable after loading: it may be shared by any number of threads and contexts.
 * It must outlive every context and state created from it. */
struct anml_program;

/* Loads a program. On failure *out is NULL and err (optional) says what and where.
 * Ownership: caller frees *out with anml_program_free. Thread-safety: safe. */
ANML_API enum anml_status anml_program_load(const char *path, struct anml_program **out,
                                            struct anml_error *err);

/* Loads a program from model.mil text in memory; `model_dir` is what @model_path stands for
 * (where weights/ would be), or NULL. Used for tests and tools.
 * Ownership: caller frees *out with anml_program_free. Thread-safety: safe. */
ANML_API enum anml_status anml_program_load_mil(const char *text, size_t len, const char *model_dir,
                                                struct anml_program **out, struct anml_error *err);

/* Frees a program. NULL is a no-op. Thread-safety: no other call may use the program. */
ANML_API void anml_program_free(struct anml_program *prog);

/* Number of functions and the name of function i (0-based; NULL when out of range).
 * Ownership: borrowed, valid while the program lives. Thread-safety: safe. */
ANML_API int32_t anml_program_n_functions(const struct anml_program *prog);
ANML_API const char *anml_program_function_name(const struct anml_program *prog, int32_t i);

/* The function used when none is named (defaultFunctionName, else "main", else the first).
 * Ownership: borrowed. Thread-safety: safe. */
ANML_API const char *anml_program_default_function(const struct anml_program *prog);

enum anml_io_kind { ANML_IO_INPUT = 0, ANML_IO_OUTPUT, ANML_IO_STATE, ANML_IO_KIND_COUNT };

/* One entry of a function signature. shape[i] is -1 for a flexible dimension. */
struct anml_io_desc {
    const char *name; /* borrowed from the program */
    enum anml_dtype dtype;
    int32_t rank;
    int64_t shape[ANML_MAX_DIMS];
};

/* Number of inputs / outputs / states of function `fn` (NULL = default function); -1 when there
 * is no such function. Thread-safety: safe. */
ANML_API int32_t anml_program_io_count(const struct anml_program *prog, const char *fn,
                                       enum anml_io_kind kind);
/* Describes entry i of that list. Returns ANML_E_NOT_FOUND for a bad function or index.
 * Thread-safety: safe. */
ANML_API enum anml_status anml_program_io(const struct anml_program *prog, const char *fn,
                                          enum anml_io_kind kind, int32_t i,
                                          struct anml_io_desc *out);

/* ---- states ------------------------------------------------------------------------------------
 * A state holds named persistent buffers (the KV cache of ANEMLL models). One state object may
 * be passed to several functions and several programs: each state input of a function binds to
 * the buffer with the same name, whose dtype and shape must match. New buffers are zero-filled. */
struct anml_state;

/* Creates an empty state (no buffers). Ownership: caller frees with anml_state_free.
 * Thread-safety: safe. */
ANML_API enum anml_status anml_state_create(struct anml_state **out, struct anml_error *err);

/* Adds (zero-filled) every state buffer that function `fn` of `prog` declares and the state does
 * not have yet; existing buffers with the same name must have the same dtype and shape
 * (ANML_E_SHAPE otherwise). Thread-safety: the state must not be in use by another call. */
ANML_API enum anml_status anml_state_add_program(struct anml_state *state,
                                                 const struct anml_program *prog, const char *fn,
                                                 struct anml_error *err);

/* Frees a state and its buffers. NULL is a no-op. */
ANML_API void anml_state_free(struct anml_state *state);

/* Number of buffers, and a view of buffer i or of the buffer called `name`. The view's data may be
 * read and written by the caller between runs (that is how a state is loaded or saved).
 * Ownership: borrowed, valid until the state is freed. Returns ANML_E_NOT_FOUND when absent.
 * Thread-safety: not while a run uses the state. */
ANML_API int32_t anml_state_count(const struct anml_state *state);
ANML_API enum anml_status anml_state_buffer(struct anml_state *state, int32_t i, const char **name,
                                            struct anml_tensor *view);
ANML_API enum anml_status anml_state_find(struct anml_state *state, const char *name,
                                          struct anml_tensor *view);

/* ---- contexts: running one function ------------------------------------------------------------
 * A context holds what running one function needs: its plan (shapes, memory layout) and the
 * activation memory. Create one per function and per thread; a run allocates nothing.
 *
 * Rounding policy: tensors keep the program's storage dtype (fp16 stays fp16 in memory); each op
 * computes in fp32 (sums and dot products accumulate in fp32) and rounds its result once to the
 * output dtype, round-to-nearest-even. */
struct anml_context;

/* Creates a context for function `fn` (NULL = default function). Shape inference and memory
 * planning happen here for the declared input shapes; for inputs with enumerated shapes every
 * enumerated shape is checked. Ownership: caller frees with anml_context_free; the program must
 * outlive it. Thread-safety: safe (the program is only read). */
ANML_API enum anml_status anml_context_create(const struct anml_program *prog, const char *fn,
                                              struct anml_context **out, struct anml_error *err);
ANML_API void anml_context_free(struct anml_context *ctx);

/* Options of anml_context_create_ex; anml_context_create uses the defaults. */
struct anml_context_params {
    uint32_t size; /* sizeof(struct anml_context_params), for ABI growth */
    /* Threads a run uses, the calling thread included: conv, linear and matmul split their output
     * rows across them. 0 (the default) = the number of online cores; 1 = the calling thread
     * only. Each output element is computed by one thread in a fixed order, so results are
     * bit-identical for every thread count. The context owns n_threads - 1 worker threads; they
     * start on the first run that has an op large enough to split (so a context of small ops
     * never creates one) and end with anml_context_free. */
    int32_t n_threads;
};

/* Defaults for anml_context_create_ex. Thread-safety: safe. */
ANML_API struct anml_context_params anml_context_params_default(void);

/* As anml_context_create, with options (params may be NULL: defaults).
 * Ownership: caller frees with anml_context_free. Thread-safety: safe. */
ANML_API enum anml_status anml_context_create_ex(const struct anml_program *prog, const char *fn,
                                                 const struct anml_context_params *params,
                                                 struct anml_context **out, struct anml_error *err);

/* Runs the function. `inputs` must name every function input once, with the declared dtype and
 * a shape the function accepts (a different shape among the allowed ones re-plans, which
 * allocates). `state` must hold every state buffer the function declares (see
 * anml_state_add_program); it may be NULL for functions without states. On error the detail is
 * in anml_context_errmsg(). Thread-safety: one thread at a time per context and per state. */
ANML_API enum anml_status anml_context_run(struct anml_context *ctx,
                                           const struct anml_named_tensor *inputs, int32_t n_inputs,
                                           struct anml_state *state);

/* The output called `name` of the last successful run (or output i in declaration order).
 * Ownership: borrowed, valid until the next run or anml_context_free.
 * Returns ANML_E_NOT_FOUND when absent, ANML_E_MISUSE before a successful run. */
ANML_API enum anml_status anml_context_output(const struct anml_context *ctx, const char *name,
                                              struct anml_tensor *out);
ANML_API int32_t anml_context_n_outputs(const struct anml_context *ctx);
ANML_API enum anml_status anml_context_output_at(const struct anml_context *ctx, int32_t i,
                                                 const char **name, struct anml_tensor *out);

/* The message of the last failed call on this context ("" when none); names the op and where.
 * Ownership: borrowed, valid until the next call on ctx. */
ANML_API const char *anml_context_errmsg(const struct anml_context *ctx);

/* ---- models: an ANEMLL model directory (high-level API) ----------------------------------------
 * A model is an ANEMLL model directory: meta.yaml (any version, optional), an embeddings program,
 * one or more FFN chunks (functions `infer` and `prefill` sharing the KV-cache state) and an LM
 * head whose logits come out in slices. Components may be .mlmodelc, .mlpackage or
 * .mlmodelc.zip (unpacked once, next to the zip). Every shape is read from the programs
 * themselves; meta.yaml is cross-checked against them.
 *
 * A model is immutable after loading and may be shared by threads and sessions. */
struct anml_model;

struct anml_model_params {
    uint32_t size; /* sizeof(struct anml_model_params), for ABI growth */
    /* Directory to unpack .mlmodelc.zip components into, one subfolder per archive (named by a
     * hash of the zip's device, inode, size and mtime), so one unzip_dir can serve several
     * models; NULL = next to the zip, as <name>.mlmodelc/ (what unzipping in place gives). */
    const char *unzip_dir;
    /* Threads each session of this model runs with (the calling thread included); one pool of
     * them per session serves all its components. 0 (the default) = the number of online cores;
     * 1 = single-threaded. Results do not depend on it (see anml_context_params). */
    int32_t n_threads;
};

/* Defaults for anml_model_load. Thread-safety: safe. */
ANML_API struct anml_model_params anml_model_params_default(void);

/* Loads a model directory. params may be NULL (defaults).
 * Ownership: caller frees *out with anml_model_free. Thread-safety: safe. */
ANML_API enum anml_status anml_model_load(const char *dir, const struct anml_model_params *params,
                                          struct anml_model **out, struct anml_error *err);
ANML_API void anml_model_free(struct anml_model *model);

/* The assembled model. Strings are borrowed from the model. */
struct anml_model_info {
    const char *architecture; /* meta.yaml `architecture` ("qwen3", "qwen2", "llama"), or "" */
    const char *meta_version; /* meta.yaml model_info.version, or "" */
    const char *model_prefix; /* or "" */
    int32_t n_chunks;
    int32_t context_length; /* from the causal mask width */
    int32_t batch_size;     /* prefill batch; 1 when the model has no prefill function */
    int32_t state_length;   /* KV slots (state dim 2) */
    int32_t hidden_size;
    int32_t vocab_size; /* sum of the LM head slices */
    int32_t n_logit_slices;
    int32_t lut_embeddings, lut_ffn, lut_lmhead; /* the _lut<bits> of the files, 0 = none */
    const char *state_name;                      /* "model_model_kv_cache_0" */
    int32_t state_rank;
    int64_t state_shape[ANML_MAX_DIMS];
    const char *tokenizer_dir; /* directory with tokenizer.json, or NULL */
};
ANML_API void anml_model_get_info(const struct anml_model *model, struct anml_model_info *out);

enum anml_component_role {
    ANML_COMPONENT_EMBEDDINGS = 0,
    ANML_COMPONENT_FFN,
    ANML_COMPONENT_LM_HEAD,
    ANML_COMPONENT_ROLE_COUNT
};

struct anml_component_info {
    enum anml_component_role role;
    const char *path;         /* the file or directory loaded */
    int32_t chunk;            /* 1-based FFN chunk number; 0 for the others */
    const char *infer_fn;     /* function run per token */
    const char *prefill_fn;   /* function run per prefill batch, or NULL */
    const char *prefill_path; /* separate prefill file, or NULL */
    const struct anml_program *program;
};

/* Number of components and a description of component i (embeddings, chunks in order, LM
 * head). Returns ANML_E_NOT_FOUND for a bad index. Thread-safety: safe. */
ANML_API int32_t anml_model_n_components(const struct anml_model *model);
ANML_API enum anml_status anml_model_component_info(const struct anml_model *model, int32_t i,
                                                    struct anml_component_info *out);

/* ---- sessions: one conversation's KV cache over a model --------------------------------------- */
struct anml_session;

/* Creates a session (KV state, execution contexts, buffers; all memory a decode step needs).
 * Ownership: caller frees with anml_session_free; the model must outlive it.
 * Thread-safety: safe; the session is then used by one thread at a time. */
ANML_API enum anml_status anml_session_create(const struct anml_model *model,
                                              struct anml_session **out, struct anml_error *err);
ANML_API void anml_session_free(struct anml_session *s);

/* Forgets all tokens (the KV cache is reused from position 0). */
ANML_API void anml_session_reset(struct anml_session *s);

/* Tokens held by the session (prompt + generated). */
ANML_API int32_t anml_session_n_tokens(const struct anml_session *s);

/* Called between steps of long operations; returning true aborts with ANML_E_ABORTED. */
typedef bool (*anml_abort_fn)(void *user_data);

/* Appends tokens and writes their K/V into the cache: batches of batch_size through `prefill`
 * (right-padded with id 0, positions and mask rows as ANEMLL's reference client), one at a
 * time through `infer` where a batch would run past the state. Fails with ANML_E_INVALID_ARG if
 * the tokens do not fit in the context. abort may be NULL.
 * Thread-safety: one thread at a time per session. */
ANML_API enum anml_status anml_session_prefill(struct anml_session *s, const int32_t *ids,
                                               int32_t n, anml_abort_fn abort, void *abort_ud);

/* Computes the logits of the next token: re-runs the last token through `infer` (writing its
 * K/V slot, as ANEMLL does) and the LM head, and concatenates the slices.
 * Ownership: *logits is borrowed (vocab_size floats), valid until the next call on s.
 * Returns ANML_E_MISUSE when the session holds no token. */
ANML_API enum anml_status anml_session_logits(struct anml_session *s, const float **logits);

/* Appends one token without running anything: the next anml_session_logits processes it. */
ANML_API enum anml_status anml_session_push(struct anml_session *s, int32_t token);

/* The message of the last failed call on this session ("" when none). Borrowed until the next
 * call on s. */
ANML_API const char *anml_session_errmsg(const struct anml_session *s);

/* Streaming callback: receives each generated token id; return false to stop. Calling into the
 * same session from inside it returns ANML_E_MISUSE. */
typedef bool (*anml_token_fn)(int32_t token, void *user_data);

struct anml_generate_params {
    uint32_t size;           /* sizeof(struct anml_generate_params) */
    int32_t max_tokens;      /* generated tokens at most; <= 0: until the context is full */
    const int32_t *stop_ids; /* generation stops after emitting one of these (EOS set) */
    int32_t n_stop_ids;
    anml_token_fn on_token; /* may be NULL */
    void *on_token_ud;
    anml_abort_fn abort; /* may be NULL */
    void *abort_ud;
};
ANML_API struct anml_generate_params anml_generate_params_default(void);

/* Greedy generation after a prefill: picks the first maximum of the logits, appends it, calls
 * on_token, and stops at a stop id (which is emitted), max_tokens, the context limit or when
 * on_token returns false. *n_generated receives the count (optional).
 * Thread-safety: one thread at a time per session. */
ANML_API enum anml_status anml_session_generate(struct anml_session *s,
                                                const struct anml_generate_params *params,
                                                int32_t *n_generated);

/* Convenience: the logits that follow a token sequence, computed in a fresh session.
 * logits must have room for vocab_size floats (anml_model_get_info). Thread-safety: safe. */
ANML_API enum anml_status anml_model_forward_tokens(const struct anml_model *model,
                                                    const int32_t *ids, int32_t n, float *logits,
                                                    struct anml_error *err);

/* ---- tokenizer: byte-level BPE from a Hugging Face tokenizer.json -----------------------------
 * Reads the tokenizer.json the model ships (model.type "BPE": vocab + merges, added_tokens,
 * normalizer, pre_tokenizer, decoder) and, when present, tokenizer_config.json next to it (bos /
 * eos tokens). Encoding follows the Hugging Face `tokenizers` library step by step, so ids equal
 * the reference ids: added tokens are matched first (leftmost, longest), the text between them is
 * normalized (NFC/NFKC/... through utf8proc), split by the pre-tokenizer's regex (PCRE2 with
 * Unicode properties) and each piece is BPE-merged by merge rank. Qwen 2.5/3 and Llama 3 files
 * are the tested ones; unsupported components are rejected at load with ANML_E_UNSUPPORTED.
 *
 * A tokenizer is immutable after loading: any number of threads may encode and decode with one
 * tokenizer at the same time. It must outlive every anml_detok created from it.
 *
 * The int32_t-returning calls below follow snprintf: they return the number of items produced
 * (ids or bytes) when it fits the caller's buffer, -needed when the buffer is too small (nothing
 * useful is in the buffer then; call again with a buffer of `needed`), or an error code, which is
 * always <= ANML_TOKENIZER_ERR_MAX and carries an enum anml_status: */
#define ANML_TOKENIZER_ERR_MAX           (INT32_MIN + 255)
#define ANML_TOKENIZER_IS_ERROR(ret)     ((ret) <= ANML_TOKENIZER_ERR_MAX)
#define ANML_TOKENIZER_ERROR_STATUS(ret) ((enum anml_status)(INT64_C(2147483648) + (ret)))
/* Largest count a call can return; longer results are refused with ANML_E_INVALID_ARG. */
#define ANML_TOKENIZER_MAX_COUNT (INT32_MAX - 256)
struct anml_tokenizer;

/* Loads a tokenizer. `path` is a tokenizer.json file or a directory holding one (a model
 * directory); tokenizer_config.json in the same directory is read when it exists. Added tokens
 * get the ids the reference library gives them (their vocabulary id, else the next free id in
 * file order), which real files also state; a differing stated id is logged as a warning. On
 * failure *out is NULL and err says which field of which file is wrong (ANML_E_IO: unreadable file,
 * ANML_E_FORMAT: bad JSON or an inconsistent vocabulary, e.g. a merge naming an unknown token,
 * ANML_E_UNSUPPORTED: a model type or normalizer / pre-tokenizer / decoder anml lacks).
 * Ownership: caller frees *out with anml_tokenizer_free. Thread-safety: safe. */
ANML_API enum anml_status anml_tokenizer_load(const char *path, struct anml_tokenizer **out,
                                              struct anml_error *err);

/* Frees a tokenizer. NULL is a no-op. Thread-safety: no other call may use it. */
ANML_API void anml_tokenizer_free(struct anml_tokenizer *tok);

/* Encodes `len` bytes of text (UTF-8; ill-formed bytes are kept and encoded byte by byte) into
 * token ids, written to ids[0..cap). No BOS is added (see anml_tokenizer_bos). With
 * parse_special, special tokens spelled in the text ("<|im_start|>") become their ids; without
 * it they are encoded as plain text. Non-special added tokens ("<think>" for Qwen 3) are always
 * matched, as the reference library does. `ids` may be NULL when cap is 0 (to ask for the size).
 * Returns the number of ids, -needed when cap is too small, or an error
 * (ANML_TOKENIZER_IS_ERROR): ANML_E_INVALID_ARG for NULL tok, NULL text with len > 0, cap < 0,
 * NULL ids with cap > 0 or a result longer than ANML_TOKENIZER_MAX_COUNT; ANML_E_NOMEM; and
 * ANML_E_INTERNAL if the regex engine gives up on a pathological input.
 * Thread-safety: safe (allocates its own scratch memory). */
ANML_API int32_t anml_tokenizer_encode(const struct anml_tokenizer *tok, const char *text,
                                       size_t len, bool parse_special, int32_t *ids, int32_t cap);

/* Decodes ids into UTF-8 text in buf[0..cap), as the reference library's decode: every token,
 * added ones included, goes through the decoder (ByteLevel: back to bytes; a token with a
 * character outside the byte alphabet, such as "a b", stays as written) and ill-formed UTF-8
 * (e.g. an emoji cut in half) becomes U+FFFD. With skip_special, special added tokens produce
 * nothing. A NUL is appended when the text is shorter than cap; the returned count never
 * includes it. Returns the
 * number of bytes, -needed when cap is too small, or an error: ANML_E_INVALID_ARG for NULL tok,
 * an id outside [0, n_vocab), NULL ids with n_ids > 0, n_ids < 0, cap < 0 or NULL buf with
 * cap > 0; ANML_E_NOMEM. Thread-safety: safe. */
ANML_API int32_t anml_tokenizer_decode(const struct anml_tokenizer *tok, const int32_t *ids,
                                       int32_t n_ids, bool skip_special, char *buf, int32_t cap);

/* The raw bytes token `id` decodes to on its own (the ByteLevel decoder's bytes, which may be
 * part of a UTF-8 sequence), *len of them; "" for an id no token uses; NULL (and *len = 0) for an
 * id outside [0, n_vocab).
 * Ownership: borrowed, valid while the tokenizer lives; NUL-terminated for convenience, but
 * may contain NUL bytes. Thread-safety: safe. */
ANML_API const char *anml_tokenizer_token_to_piece(const struct anml_tokenizer *tok, int32_t id,
                                                   size_t *len);

/* The token's spelling in tokenizer.json ("Ġworld", "<|im_end|>"); NULL for an id outside
 * [0, n_vocab) or an id no token uses. Ownership: borrowed. Thread-safety: safe. */
ANML_API const char *anml_tokenizer_token_text(const struct anml_tokenizer *tok, int32_t id);

/* The id of the token spelled `text` in tokenizer.json (added tokens first, then the
 * vocabulary), or -1. Thread-safety: safe. */
ANML_API int32_t anml_tokenizer_token_id(const struct anml_tokenizer *tok, const char *text);

/* Number of ids: 1 + the largest id of the vocabulary and the added tokens. (The model's LM head
 * may be larger.) Thread-safety: safe. */
ANML_API int32_t anml_tokenizer_n_vocab(const struct anml_tokenizer *tok);

/* True for added tokens marked "special" (they are what skip_special skips). */
ANML_API bool anml_tokenizer_is_special(const struct anml_tokenizer *tok, int32_t id);

/* BOS: tokenizer_config.json `bos_token`, else the first special token of a TemplateProcessing
 * post-processor; -1 when there is none. add_bos is tokenizer_config.json `add_bos_token` when
 * given, else whether the post-processor prepends that token. Thread-safety: safe. */
ANML_API int32_t anml_tokenizer_bos(const struct anml_tokenizer *tok);
ANML_API bool anml_tokenizer_add_bos(const struct anml_tokenizer *tok);

/* EOS: tokenizer_config.json `eos_token`, or -1. The EOS set, which generation should stop on,
 * is that token plus every added token that is a known end-of-turn / end-of-text marker:
 * <|im_end|> <|endoftext|> (Qwen), <|eot_id|> <|end_of_text|> <|eom_id|> (Llama 3) and
 * <end_of_turn> (Gemma), without duplicates, eos_token first. anml_tokenizer_eos_ids returns the
 * set and its size in *n. Ownership: borrowed. Thread-safety: safe. */
ANML_API int32_t anml_tokenizer_eos(const struct anml_tokenizer *tok);
ANML_API const int32_t *anml_tokenizer_eos_ids(const struct anml_tokenizer *tok, int32_t *n);
ANML_API bool anml_tokenizer_is_eos(const struct anml_tokenizer *tok, int32_t id);

/* ---- streaming detokenizer ------------------------------------------------------------------
 * Turns ids arriving one at a time into text that is always complete UTF-8: bytes of a
 * character split across tokens are held back until it is complete, so a stream never shows a
 * broken sequence. The concatenation of everything feed and flush return equals
 * anml_tokenizer_decode of the same ids. */
struct anml_detok;

/* Creates a detokenizer over `tok` (which must outlive it); skip_special as in decode.
 * Ownership: caller frees *out with anml_detok_free. Thread-safety: safe; one detokenizer serves
 * one stream on one thread at a time. */
ANML_API enum anml_status anml_detok_create(const struct anml_tokenizer *tok, bool skip_special,
                                            struct anml_detok **out);
ANML_API void anml_detok_free(struct anml_detok *d);

/* Adds token `id`; *text / *len receive the text that became complete (often empty, *len = 0).
 * Ill-formed bytes that can never complete are emitted as U+FFFD right away. Returns
 * ANML_E_INVALID_ARG for an id outside [0, n_vocab) (the stream is unchanged), ANML_E_NOMEM.
 * Ownership: *text is borrowed, valid until the next call on d; NUL-terminated. */
ANML_API enum anml_status anml_detok_feed(struct anml_detok *d, int32_t id, const char **text,
                                          size_t *len);

/* Ends the stream: returns what is still held back, an incomplete tail as U+FFFD, and resets d
 * for a new stream. Ownership: as anml_detok_feed. */
ANML_API enum anml_status anml_detok_flush(struct anml_detok *d, const char **text, size_t *len);

/* Drops anything held back and starts a new stream. */
ANML_API void anml_detok_reset(struct anml_detok *d);

/* ---- logging (the only global state) ------------------------------------------------------- */
enum anml_log_level {
    ANML_LOG_LEVEL_ERROR = 0,
    ANML_LOG_LEVEL_WARN,
    ANML_LOG_LEVEL_INFO,
    ANML_LOG_LEVEL_DEBUG,
    ANML_LOG_LEVEL_COUNT
};

/* A log sink receives one line per event, without a trailing newline. */
typedef void (*anml_log_fn)(enum anml_log_level level, const char *line, void *user_data);

/* Sets the log sink and the most verbose level delivered. fn == NULL restores the default sink
 * (stderr). The default level is WARN. Thread-safety: call before other threads use anml; the
 * sink itself may be called from any thread. */
ANML_API void anml_log_set(anml_log_fn fn, void *user_data, enum anml_log_level max_level);

/* Frees memory that a function documented as "caller frees with anml_free" returned.
 * anml_free(NULL) is a no-op. Thread-safety: safe. */
ANML_API void anml_free(void *ptr);

#ifdef __cplusplus
}
#endif
#endif /* ANML_H */
