/*
 * interp.c -- runs a plan: binds the caller's inputs (zero-copy) and the state buffers, then
 * calls every step's `run` hook in program order. Also defines the state ops, which need the
 * bound state buffers: read_state (copies the buffer into its result), write_state (copies data
 * into the buffer) and coreml_update_state (both).
 */
#include <string.h>

#include "exec/plan_internal.h"

/* ---- state ops ---- */

static enum anml_status infer_read_state(struct ex_call *c) {
    struct ex_tensor *s = ex_req(c, "input");
    if (!s) {
        return c->err ? c->err->code : ANML_E_FORMAT;
    }
    if (s->kind != EX_VALUE_STATE) {
        return ex_fail(c, ANML_E_SHAPE, "'input' must be a state");
    }
    ex_set_shape(c->outs[0], s->dtype, s->rank, s->shape);
    return ANML_OK;
}

static enum anml_status run_read_state(struct ex_call *c) {
    const struct ex_tensor *s = ex_in(c, "input");
    if (c->outs[0]->data != s->data) { /* aliased reads need no copy */
        memcpy(c->outs[0]->data, s->data, (size_t)s->numel * anml__dtype_size(s->dtype));
    }
    return ANML_OK;
}

static enum anml_status check_state_data(struct ex_call *c, const char *data_arg) {
    struct ex_tensor *s =
        ex_req(c, c->n_outs && strcmp(c->op->type, "write_state") != 0 ? "state" : "input");
    struct ex_tensor *d = ex_req(c, data_arg);
    if (!s || !d) {
        return c->err ? c->err->code : ANML_E_FORMAT;
    }
    if (s->kind != EX_VALUE_STATE) {
        return ex_fail(c, ANML_E_SHAPE, "the state argument must be a state");
    }
    bool same = s->dtype == d->dtype && s->rank == d->rank;
    for (int32_t i = 0; same && i < s->rank; i++) {
        same = s->shape[i] == d->shape[i];
    }
    if (!same) {
        return ex_fail(c, ANML_E_SHAPE, "'%s' does not match the state's dtype and shape",
                       data_arg);
    }
    return ANML_OK;
}

static enum anml_status infer_write_state(struct ex_call *c) {
    return check_state_data(c, "data");
}

static enum anml_status run_write_state(struct ex_call *c) {
    const struct ex_tensor *s = ex_in(c, "input");
    const struct ex_tensor *d = ex_in(c, "data");
    if (s->data != d->data) {
        memmove(s->data, d->data, (size_t)s->numel * anml__dtype_size(s->dtype));
    }
    return ANML_OK;
}

static enum anml_status infer_update_state(struct ex_call *c) {
    enum anml_status st = check_state_data(c, "value");
    if (st != ANML_OK) {
        return st;
    }
    const struct ex_tensor *s = ex_in(c, "state");
    ex_set_shape(c->outs[0], s->dtype, s->rank, s->shape);
    return ANML_OK;
}

static enum anml_status run_update_state(struct ex_call *c) {
    const struct ex_tensor *s = ex_in(c, "state");
    const struct ex_tensor *d = ex_in(c, "value");
    size_t n = (size_t)s->numel * anml__dtype_size(s->dtype);
    memmove(s->data, d->data, n);
    memcpy(c->outs[0]->data, s->data, n);
    return ANML_OK;
}

const struct ex_opdef anml__ops_state[] = {
    { "read_state", infer_read_state, run_read_state, NULL },
    { "write_state", infer_write_state, run_write_state, NULL },
    { "coreml_update_state", infer_update_state, run_update_state, NULL },
    { NULL, NULL, NULL, NULL },
};

/* ---- running ---- */

enum anml_status anml__plan_run(struct ex_plan *p, const struct anml_named_tensor *inputs,
                                int32_t n_inputs, struct anml_state *state,
                                struct anml_error *err) {
    for (int32_t i = 0; i < p->n_inputs; i++) {
        struct ex_tensor *t = &p->values[p->input_vals[i]];
        const struct anml_named_tensor *in = NULL;
        for (int32_t j = 0; j < n_inputs; j++) {
            if (inputs[j].name && strcmp(inputs[j].name, t->name) == 0) {
                in = &inputs[j];
                break;
            }
        }
        if (!in) {
            return anml__err(err, ANML_E_INVALID_ARG, NULL,
                             "input '%s' of function '%s' is missing", t->name, p->fn->name);
        }
        if (!in->tensor.data && t->numel > 0) {
            return anml__err(err, ANML_E_INVALID_ARG, NULL, "input '%s' has no data", t->name);
        }
        t->data = in->tensor.data;
    }
    for (int32_t i = 0; i < p->n_states; i++) {
        struct ex_tensor *t = &p->values[p->state_vals[i]];
        if (!state) {
            return anml__err(err, ANML_E_INVALID_ARG, NULL,
                             "function '%s' needs a state holding '%s'", p->fn->name, t->name);
        }
        enum anml_status st =
            anml__state_bind(state, t->name, t->dtype, t->rank, t->shape, &t->data, err);
        if (st != ANML_OK) {
            return st;
        }
    }
    for (int32_t i = 0; i < p->n_alias; i++) {
        p->values[p->alias_val[i]].data = p->values[p->alias_state[i]].data;
    }
    for (int32_t s = 0; s < p->n_steps; s++) {
        struct ex_step *step = &p->steps[s];
        struct ex_call call = {
            .op = step->op,
            .def = step->def,
            .opset = p->fn->opset,
            .n_args = step->n_args,
            .args = step->args,
            .values = p->values,
            .n_outs = step->n_outs,
            .outs = step->outs,
            .err = err,
            .planning = false,
            .scratch = step->scratch_size ? p->act_mem + step->scratch_off : NULL,
            .scratch_size = step->scratch_size,
            .n_threads = p->n_threads,
            .pool = p->pool,
        };
        enum anml_status st = step->def->run(&call);
        if (st != ANML_OK) {
            return st;
        }
    }
    return ANML_OK;
}
