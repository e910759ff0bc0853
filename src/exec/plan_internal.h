/* plan_internal.h -- the plan structure, shared by plan.c (building) and interp.c (running). */
#ifndef ANML_EXEC_PLAN_INTERNAL_H
#define ANML_EXEC_PLAN_INTERNAL_H

#include "exec/exec.h"

/* One op to run. */
struct ex_step {
    const struct mil_op *op;
    const struct ex_opdef *def;
    int32_t n_args;
    struct ex_arg *args;
    int32_t n_outs;
    int32_t *out_vals;       /* indices into plan->values */
    struct ex_tensor **outs; /* pointers to those values */
    size_t scratch_off;      /* in the activation arena */
    size_t scratch_size;
    int32_t state_val; /* read_state/write_state: the state value, else -1 */
};

struct ex_plan {
    const struct mil_program *prog;
    const struct mil_function *fn;
    struct anml_arena *arena; /* everything small the plan owns */
    int32_t n_values, cap_values;
    struct ex_tensor *values;
    int32_t *hash; /* open addressing over value names, -1 = empty */
    uint32_t hash_cap;
    int32_t n_steps, cap_steps;
    struct ex_step *steps;
    int32_t n_inputs;
    int32_t *input_vals; /* function inputs that are not states, in declaration order */
    int32_t n_states;
    int32_t *state_vals;
    int32_t n_outputs;
    int32_t *output_vals;
    void **owned; /* dense materializations (anml__free'd with the plan) */
    int32_t n_owned, cap_owned;
    uint8_t *act_mem; /* activation arena */
    size_t act_size;
    /* Values that live in a state's buffer instead of the arena (see plan.c, "state aliasing"):
     * alias_val[i] takes the data pointer of state value alias_state[i] when a run binds it. */
    int32_t n_alias;
    int32_t *alias_val;
    int32_t *alias_state;
    int32_t n_threads;            /* planned for (per-thread scratch) */
    struct anml_threadpool *pool; /* borrowed from the context; NULL = single-threaded */
};

/* Runs a built plan: binds inputs (zero-copy) and state buffers, then every step. */
enum anml_status anml__plan_run(struct ex_plan *plan, const struct anml_named_tensor *inputs,
                                int32_t n_inputs, struct anml_state *state, struct anml_error *err);

/* State buffers (state.c). */
enum anml_status anml__state_bind(struct anml_state *state, const char *name, enum anml_dtype dt,
                                  int32_t rank, const int64_t *shape, void **data,
                                  struct anml_error *err);

/* Adds zero-filled buffers for every state input of fn that the state does not hold yet. */
enum anml_status anml__state_add_function(struct anml_state *state, const struct mil_function *fn,
                                          struct anml_error *err);

extern const struct ex_opdef anml__ops_state[]; /* read_state, write_state, coreml_update_state */

#endif
