/*
 * exec.h -- the MIL executor's private interface: the per-function plan (values, ops, memory),
 * the op-definition table, and the accessors op implementations use.
 *
 * Life of a function call:
 *   load:  anml__plan_build() turns one IR function into a plan: every SSA value gets an entry in
 *          plan->values; const / constexpr ops are evaluated once (blob data is used in place
 *          from the mmap; LUT weights stay compressed when every consumer accepts them); every op's
 *          `infer` hook checks input dtypes and computes output shapes; activations get offsets in
 *          one arena, reusing the memory of values that are dead.
 *   run:   anml__plan_run() binds inputs and states, then calls each op's `run` hook in order.
 *          There is no allocation during a run.
 *
 * Rounding policy (also stated in anml.h): tensors keep the program's storage dtype (fp16 stays
 * fp16 in memory); ops compute in fp32 (reductions and dot products accumulate in fp32) and round
 * once to the output dtype, round-to-nearest-even, unless an op's comment says otherwise.
 */
#ifndef ANML_EXEC_H
#define ANML_EXEC_H

#include "coreml/program.h"

struct anml_lut_weight; /* coreml/constexpr.h */

#define EX_MAX_DIMS 8

/* ---- runtime values ---- */

enum ex_value_kind {
    EX_VALUE_ACT = 0, /* computed by an op during a run; lives in the activation arena */
    EX_VALUE_CONST,   /* known at load time (const, literal, folded constexpr) */
    EX_VALUE_INPUT,   /* a function input, bound per call */
    EX_VALUE_STATE,   /* a state input: data points at the state's buffer during a run */
    EX_VALUE_KIND_COUNT
};

struct ex_tensor {
    enum anml_dtype dtype;
    int32_t rank;
    int64_t shape[EX_MAX_DIMS];
    int64_t numel;
    void *data; /* numel elements, row-major; NULL for a compressed LUT constant */
    /* Compressed constant (constexpr_lut_to_dense kept in its stored form). Only ops whose
     * definition sets `lut_args` ever see one; everything else gets a dense copy. */
    const struct anml_lut_weight *lut;
    enum ex_value_kind kind;
    const char *name; /* SSA name (or "<literal>") for messages */
    /* STRING values (rare: const strings feeding ops as parameters) */
    char **strings;
};

/* One named argument of an op: n values (n > 1 for tuple arguments such as concat's values). */
struct ex_arg {
    const char *name;
    int32_t n;
    int32_t *vals; /* indices into plan->values */
};

struct ex_call;

/* An op implementation. `infer` runs at load time: it checks dtypes/ranks of the inputs that are
 * present and sets dtype/rank/shape of every output (c->outs[i]); it may read the data of inputs
 * that are constant (ex_const_*), and must fall back to the declared result type (ex_declared())
 * when a shape depends on runtime data. `run` computes the outputs; buffers are already sized.
 * Both return ANML_OK or an error set with ex_fail(). */
struct ex_opdef {
    const char *name;
    enum anml_status (*infer)(struct ex_call *c);
    enum anml_status (*run)(struct ex_call *c);
    /* Comma-separated argument names that may receive a compressed LUT weight, e.g. "weight".
     * NULL: all inputs are dense. */
    const char *lut_args;
};

/* Everything an op hook sees. */
struct ex_call {
    const struct mil_op *op; /* the IR op (for names/positions in messages) */
    const struct ex_opdef *def;
    int opset; /* the function's opset (5..9) */
    int32_t n_args;
    const struct ex_arg *args;
    struct ex_tensor *values; /* plan->values */
    int32_t n_outs;
    struct ex_tensor **outs;
    struct anml_error *err;
    bool planning; /* true inside infer */
    void *scratch; /* per-op scratch memory, planned (see ex_request_scratch) */
    size_t scratch_size;
    size_t scratch_request; /* set by infer: bytes of scratch `run` needs */
    void *state_buf;        /* read_state/write_state: the bound state buffer (run only) */
    /* Threads: `n_threads` (infer and run) is the most threads a run hands an op, so infer sizes
     * per-thread scratch for that many; `pool` (run only; NULL = the caller alone) runs an op's
     * parallel part via anml__threadpool_run (core.h). */
    int32_t n_threads;
    struct anml_threadpool *pool;
};

/* ---- accessors for op implementations (exec/args.c) ---- */

/* The (first) value bound to argument `name`, or NULL when the argument is absent. */
struct ex_tensor *ex_in(struct ex_call *c, const char *name);
/* Number of values bound to `name` (tuple arguments); 0 when absent. */
int32_t ex_in_count(struct ex_call *c, const char *name);
struct ex_tensor *ex_in_at(struct ex_call *c, const char *name, int32_t i);
/* An input that must be present: on absence sets an error and returns NULL. */
struct ex_tensor *ex_req(struct ex_call *c, const char *name);

/* Constant parameters. Each returns false (without error) when the argument is absent, and
 * false with an error set (c->err) when it is present but not constant or of the wrong kind;
 * callers distinguish with ex_in(). ints accept any integer dtype; bools accept bool. */
bool ex_const_i64(struct ex_call *c, const char *name, int64_t *out);
bool ex_const_f32(struct ex_call *c, const char *name, float *out);
bool ex_const_bool(struct ex_call *c, const char *name, bool *out);
/* Up to `cap` ints (a rank-0 or rank-1 tensor); *n receives the count. */
bool ex_const_i64s(struct ex_call *c, const char *name, int64_t *out, int32_t cap, int32_t *n);
bool ex_const_bools(struct ex_call *c, const char *name, bool *out, int32_t cap, int32_t *n);
/* A string parameter (e.g. cast's dtype, conv's pad_type); borrowed. */
const char *ex_const_str(struct ex_call *c, const char *name);
/* Integer data of a tensor that may be runtime (e.g. slice_update's begin): up to cap values. */
bool ex_read_i64s(struct ex_call *c, const struct ex_tensor *t, int64_t *out, int32_t cap,
                  int32_t *n);

/* Element access in fp32 / int64 for any numeric dtype (bool as 0/1). */
float ex_get_f32(const struct ex_tensor *t, int64_t i);
void ex_set_f32(struct ex_tensor *t, int64_t i, float v); /* rounds to t->dtype */
int64_t ex_get_i64(const struct ex_tensor *t, int64_t i);
void ex_set_i64(struct ex_tensor *t, int64_t i, int64_t v);
/* Converts n elements of src (any numeric dtype) starting at src_off into fp32. */
void ex_to_f32(const struct ex_tensor *src, int64_t src_off, int64_t n, float *dst);
/* Stores n fp32 values into dst (rounding to its dtype) starting at dst_off. */
void ex_from_f32(struct ex_tensor *dst, int64_t dst_off, int64_t n, const float *src);
static inline bool ex_is_float(enum anml_dtype dt) {
    return dt == ANML_DTYPE_F16 || dt == ANML_DTYPE_F32 || dt == ANML_DTYPE_F64 ||
           dt == ANML_DTYPE_BF16;
}
static inline bool ex_is_int(enum anml_dtype dt) {
    return dt == ANML_DTYPE_INT8 || dt == ANML_DTYPE_INT16 || dt == ANML_DTYPE_INT32 ||
           dt == ANML_DTYPE_INT64 || dt == ANML_DTYPE_UINT8 || dt == ANML_DTYPE_UINT16 ||
           dt == ANML_DTYPE_UINT32 || dt == ANML_DTYPE_UINT64;
}

/* Output helpers for infer. */
void ex_set_shape(struct ex_tensor *t, enum anml_dtype dt, int32_t rank, const int64_t *shape);
/* Sets out #i from the op's declared result type; fails when it has unknown dims. */
enum anml_status ex_declared(struct ex_call *c, int32_t i);
/* Normalizes a possibly negative axis against rank; sets an error and returns false when out of
 * range. */
bool ex_axis(struct ex_call *c, int64_t axis, int32_t rank, int32_t *out);
/* NumPy broadcast of two shapes; false with an error when incompatible. */
bool ex_broadcast(struct ex_call *c, const struct ex_tensor *a, const struct ex_tensor *b,
                  int32_t *rank, int64_t *shape);
/* Asks for `bytes` of scratch memory for run (call from infer). */
void ex_request_scratch(struct ex_call *c, size_t bytes);

/* Scratch carving: infer and run carve the same sequence of buffers; in infer (base NULL) only the
 * total is computed and then requested with ex_carve_request, in run (ex_carve_run) the pointers
 * are handed out. Every buffer is 64-byte aligned relative to the base. */
struct ex_carve {
    char *base;
    size_t used;
    bool overflow;
};
void *ex_carve_bytes(struct ex_carve *cv, int64_t n, size_t elem);
static inline float *ex_carve_f32(struct ex_carve *cv, int64_t n) {
    return (float *)ex_carve_bytes(cv, n, sizeof(float));
}
enum anml_status ex_carve_request(struct ex_call *c, const struct ex_carve *cv);
struct ex_carve ex_carve_run(struct ex_call *c);

/* Sets an error naming the op (type, name attribute, position) and returns ANML_E_SHAPE or the
 * given code. */
enum anml_status ex_fail(struct ex_call *c, enum anml_status code, const char *fmt, ...)
    ANML_PRINTF(3, 4);
/* The same for an op outside a call: "<type> '<name>': <message>" at model.mil:line:col. */
enum anml_status anml__op_verr(struct anml_error *err, const struct mil_op *op,
                               enum anml_status code, const char *fmt, va_list ap)
    ANML_PRINTF(4, 0);

/* ---- op tables (one per family in src/ops, each ends with a { NULL } entry) ---- */
extern const struct ex_opdef anml__ops_elementwise[]; /* elementwise.c: binary, unary, activations,
                                                         cast, select, clip, comparisons */
extern const struct ex_opdef anml__ops_reduce[];      /* reduce.c: reductions, argmax, softmax,
                                                         layer_norm and other norms, topk */
extern const struct ex_opdef anml__ops_shape[];       /* shape_ops.c: reshape, transpose, concat,
                                                         split, slice_*, gather*, tile, pad, ... */
extern const struct ex_opdef anml__ops_linear[];      /* linear.c: conv, linear, matmul, einsum,
                                                         scaled_dot_product_attention */
extern const struct ex_opdef anml__ops_misc[];        /* misc.c: fill, range_1d, band_part,
                                                         one_hot, cumsum, shape, identity, ... */
/* Looks an op up by type; NULL when unknown. */
const struct ex_opdef *anml__op_find(const char *type);

/* ---- plans (plan.c / interp.c) ---- */

struct ex_plan;
struct anml_state;

/* Builds the plan of function `fn` of prog. `input_shapes` (optional, n entries in function-input
 * order, NULL entries = declared shape) chooses concrete shapes for flexible inputs. `n_threads`
 * (>= 1) is the thread count runs will use (ops plan per-thread scratch for it). */
enum anml_status anml__plan_build(const struct mil_program *prog, const struct mil_function *fn,
                                  const struct ex_tensor *const *input_shapes, int32_t n_threads,
                                  struct ex_plan **out, struct anml_error *err);
void anml__plan_free(struct ex_plan *plan);

/* A context (anml.h) that runs on `pool`, borrowed (it must outlive the context): a session
 * creates one pool for all its contexts, which it runs one at a time. pool NULL: single-threaded.
 * (api.c) */
enum anml_status anml__context_create_pooled(const struct anml_program *prog, const char *fn,
                                             struct anml_threadpool *pool,
                                             struct anml_context **out, struct anml_error *err);

#endif /* ANML_EXEC_H */
