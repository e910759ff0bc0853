/*
 * api.c -- the component-level public API (anml.h): programs, signatures, contexts.
 * A program wraps the IR; a context holds the plans of one function (one per distinct set of
 * input shapes, built on demand) and the last run's outputs.
 */
#include <stdio.h>
#include <string.h>

#include "coreml/blob.h"
#include "coreml/constexpr.h"
#include "exec/plan_internal.h"
#include "kernels/kernels.h"

struct anml_program {
    struct mil_program *ir;
};

#define CTX_MAX_PLANS 8

struct anml_context {
    const struct anml_program *prog;
    const struct mil_function *fn;
    struct ex_plan *plans[CTX_MAX_PLANS];
    int32_t n_plans;
    int32_t current; /* plan of the last successful run, -1 before */
    struct anml_error err;
    char
        errmsg[sizeof(((struct anml_error *)0)->where) + sizeof(((struct anml_error *)0)->msg) + 2];
    struct anml_threadpool *pool; /* NULL: single-threaded */
    bool owns_pool;               /* else borrowed from a session */
    int32_t n_threads;
};

/* ---- tensors ---- */

int64_t anml_tensor_numel(const struct anml_tensor *t) {
    int64_t n;
    if (!t || t->rank < 0 || t->rank > ANML_MAX_DIMS || !anml__shape_numel(t->shape, t->rank, &n)) {
        return -1;
    }
    return n;
}

size_t anml_tensor_nbytes(const struct anml_tensor *t) {
    int64_t n = anml_tensor_numel(t);
    if (n < 0 || anml__dtype_is_subbyte(t->dtype)) {
        return 0;
    }
    size_t bytes;
    return anml__mul_size((size_t)n, anml__dtype_size(t->dtype), &bytes) ? bytes : 0;
}

/* ---- programs ---- */

/* Every op of every function must be implemented: report the first unknown one by name. */
static enum anml_status check_ops_block(const struct mil_block *b, const char *fn,
                                        struct anml_error *err) {
    for (int32_t i = 0; i < b->n_ops; i++) {
        const struct mil_op *op = &b->ops[i];
        if (strcmp(op->type, "const") != 0 && !anml__is_constexpr_op(op->type) &&
            !anml__op_find(op->type)) {
            char where[64] = "";
            if (op->line > 0) {
                snprintf(where, sizeof where, "model.mil:%d:%d", (int)op->line, (int)op->col);
            }
            return anml__err(err, ANML_E_UNSUPPORTED, where,
                             "function '%s': op '%s' ('%s') is not implemented", fn, op->type,
                             anml__mil_op_name(op));
        }
        for (int32_t k = 0; k < op->n_blocks; k++) {
            enum anml_status st = check_ops_block(&op->blocks[k], fn, err);
            if (st != ANML_OK) {
                return st;
            }
        }
    }
    return ANML_OK;
}

static enum anml_status wrap_program(struct mil_program *ir, struct anml_program **out,
                                     struct anml_error *err) {
    for (int32_t f = 0; f < ir->n_functions; f++) {
        enum anml_status st = check_ops_block(&ir->functions[f].block, ir->functions[f].name, err);
        if (st != ANML_OK) {
            anml__mil_program_free(ir);
            return st;
        }
    }
    *out = anml__calloc(1, sizeof **out);
    if (!*out) {
        anml__mil_program_free(ir);
        return anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
    }
    (*out)->ir = ir;
    return ANML_OK;
}

enum anml_status anml_program_load(const char *path, struct anml_program **out,
                                   struct anml_error *err) {
    if (!out || !path) {
        return anml__err(err, ANML_E_INVALID_ARG, NULL, "path and out are required");
    }
    *out = NULL;
    struct mil_program *ir;
    enum anml_status st = anml__mil_load(path, &ir, err);
    if (st != ANML_OK) {
        return st;
    }
    return wrap_program(ir, out, err);
}

enum anml_status anml_program_load_mil(const char *text, size_t len, const char *model_dir,
                                       struct anml_program **out, struct anml_error *err) {
    if (!out || !text) {
        return anml__err(err, ANML_E_INVALID_ARG, NULL, "text and out are required");
    }
    *out = NULL;
    struct mil_program *ir = anml__mil_program_new();
    if (!ir) {
        return anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
    }
    enum anml_status st = ANML_OK;
    ir->model_dir = anml__arena_strdup(ir->arena, model_dir ? model_dir : ".");
    ir->source_path = anml__arena_strdup(ir->arena, "model.mil");
    if (!ir->model_dir || !ir->source_path) {
        st = anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
    }
    if (st == ANML_OK) {
        st = anml__mil_parse_text(ir, text, len, "model.mil", err);
    }
    if (st == ANML_OK) {
        ir->blobs = anml__blob_store_new(ir->model_dir);
        st = ir->blobs ? anml__mil_validate_blobs(ir, err)
                       : anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
    }
    if (st != ANML_OK) {
        anml__mil_program_free(ir);
        return st;
    }
    return wrap_program(ir, out, err);
}

void anml_program_free(struct anml_program *prog) {
    if (!prog) {
        return;
    }
    anml__mil_program_free(prog->ir);
    anml__free(prog);
}

int32_t anml_program_n_functions(const struct anml_program *prog) {
    return prog->ir->n_functions;
}

const char *anml_program_function_name(const struct anml_program *prog, int32_t i) {
    return i >= 0 && i < prog->ir->n_functions ? prog->ir->functions[i].name : NULL;
}

const char *anml_program_default_function(const struct anml_program *prog) {
    return anml__mil_default_function(prog->ir);
}

static const struct mil_function *find_fn(const struct anml_program *prog, const char *fn) {
    const char *name = fn ? fn : anml__mil_default_function(prog->ir);
    return name ? anml__mil_find_function(prog->ir, name) : NULL;
}

/* The declared type of a value named in a function (input or op result). */
static const struct mil_type *value_type(const struct mil_function *fn, const char *name) {
    for (int32_t i = 0; i < fn->n_inputs; i++) {
        if (strcmp(fn->inputs[i].name, name) == 0) {
            return fn->inputs[i].type;
        }
    }
    for (int32_t i = 0; i < fn->block.n_ops; i++) {
        const struct mil_op *op = &fn->block.ops[i];
        for (int32_t r = 0; r < op->n_results; r++) {
            if (strcmp(op->results[r].name, name) == 0) {
                return op->results[r].type;
            }
        }
    }
    return NULL;
}

int32_t anml_program_io_count(const struct anml_program *prog, const char *fn,
                              enum anml_io_kind kind) {
    const struct mil_function *f = find_fn(prog, fn);
    if (!f) {
        return -1;
    }
    if (kind == ANML_IO_OUTPUT) {
        return f->block.n_outputs;
    }
    int32_t n = 0;
    for (int32_t i = 0; i < f->n_inputs; i++) {
        bool is_state = f->inputs[i].type->kind == MIL_TYPE_STATE;
        n += (kind == ANML_IO_STATE) == is_state;
    }
    return n;
}

static void fill_io(struct anml_io_desc *out, const char *name, const struct mil_type *ty) {
    memset(out, 0, sizeof *out);
    out->name = name;
    if (ty && ty->kind == MIL_TYPE_STATE) {
        ty = ty->elems[0];
    }
    if (!ty || ty->kind != MIL_TYPE_TENSOR) {
        out->rank = -1;
        return;
    }
    out->dtype = ty->dtype;
    out->rank = ty->rank;
    for (int32_t d = 0; d < ty->rank && d < ANML_MAX_DIMS; d++) {
        out->shape[d] = ty->dims[d];
    }
}

enum anml_status anml_program_io(const struct anml_program *prog, const char *fn,
                                 enum anml_io_kind kind, int32_t i, struct anml_io_desc *out) {
    const struct mil_function *f = find_fn(prog, fn);
    if (!f || i < 0) {
        return ANML_E_NOT_FOUND;
    }
    if (kind == ANML_IO_OUTPUT) {
        if (i >= f->block.n_outputs) {
            return ANML_E_NOT_FOUND;
        }
        fill_io(out, f->block.outputs[i], value_type(f, f->block.outputs[i]));
        return ANML_OK;
    }
    int32_t n = 0;
    for (int32_t k = 0; k < f->n_inputs; k++) {
        bool is_state = f->inputs[k].type->kind == MIL_TYPE_STATE;
        if ((kind == ANML_IO_STATE) == is_state && n++ == i) {
            fill_io(out, f->inputs[k].name, f->inputs[k].type);
            return ANML_OK;
        }
    }
    return ANML_E_NOT_FOUND;
}

enum anml_status anml_state_add_program(struct anml_state *state, const struct anml_program *prog,
                                        const char *fn, struct anml_error *err) {
    const struct mil_function *f = find_fn(prog, fn);
    if (!f) {
        return anml__err(err, ANML_E_NOT_FOUND, NULL, "no function '%s'", fn ? fn : "(default)");
    }
    return anml__state_add_function(state, f, err);
}

/* ---- contexts ---- */

static const struct mil_function_desc *fn_desc(const struct mil_program *ir, const char *fn) {
    for (int32_t i = 0; i < ir->desc.n_functions; i++) {
        if (ir->desc.functions[i].name && strcmp(ir->desc.functions[i].name, fn) == 0) {
            return &ir->desc.functions[i];
        }
    }
    return ir->desc.n_functions == 1 && !ir->desc.multifunction ? &ir->desc.functions[0] : NULL;
}

static const struct mil_feature *find_feature(const struct mil_function_desc *d, const char *n) {
    for (int32_t i = 0; d && i < d->n_inputs; i++) {
        if (strcmp(d->inputs[i].name, n) == 0) {
            return &d->inputs[i];
        }
    }
    return NULL;
}

static bool plan_matches(const struct ex_plan *p, const struct anml_named_tensor *inputs,
                         int32_t n) {
    for (int32_t i = 0; i < p->n_inputs; i++) {
        const struct ex_tensor *t = &p->values[p->input_vals[i]];
        for (int32_t j = 0; j < n; j++) {
            if (inputs[j].name && strcmp(inputs[j].name, t->name) == 0) {
                const struct anml_tensor *a = &inputs[j].tensor;
                if (a->rank != t->rank || a->dtype != t->dtype) {
                    return false;
                }
                for (int32_t d = 0; d < t->rank; d++) {
                    if (a->shape[d] != t->shape[d]) {
                        return false;
                    }
                }
            }
        }
    }
    return true;
}

/* Builds a plan for the given concrete input tensors (NULL: declared or default shapes). */
static enum anml_status ctx_add_plan(struct anml_context *ctx, const struct ex_tensor *const *sh,
                                     struct anml_error *err) {
    if (ctx->n_plans == CTX_MAX_PLANS) {
        /* forget the oldest plan that is not current */
        int32_t victim = ctx->current == 0 ? 1 : 0;
        anml__plan_free(ctx->plans[victim]);
        memmove(&ctx->plans[victim], &ctx->plans[victim + 1],
                (size_t)(ctx->n_plans - victim - 1) * sizeof ctx->plans[0]);
        ctx->n_plans--;
        if (ctx->current > victim) {
            ctx->current--;
        }
    }
    struct ex_plan *p;
    enum anml_status st = anml__plan_build(ctx->prog->ir, ctx->fn, sh, ctx->n_threads, &p, err);
    if (st == ANML_OK) {
        p->pool = ctx->pool;
        ctx->plans[ctx->n_plans++] = p;
    }
    return st;
}

void anml_context_free(struct anml_context *ctx) {
    if (!ctx) {
        return;
    }
    for (int32_t i = 0; i < ctx->n_plans; i++) {
        anml__plan_free(ctx->plans[i]);
    }
    if (ctx->owns_pool) {
        anml__threadpool_free(ctx->pool);
    }
    anml__free(ctx);
}

struct anml_context_params anml_context_params_default(void) {
    struct anml_context_params p;
    memset(&p, 0, sizeof p);
    p.size = sizeof p;
    return p;
}

/* A context running on `pool` (borrowed), or on a pool of its own of n_threads when pool is NULL
 * (n_threads <= 0: the number of online cores). */
static enum anml_status context_create(const struct anml_program *prog, const char *fn,
                                       struct anml_threadpool *pool, int32_t n_threads,
                                       struct anml_context **out, struct anml_error *err) {
    *out = NULL;
    const struct mil_function *f = find_fn(prog, fn);
    if (!f) {
        return anml__err(err, ANML_E_NOT_FOUND, NULL, "no function '%s'", fn ? fn : "(default)");
    }
    struct anml_context *ctx = anml__calloc(1, sizeof *ctx);
    if (!ctx) {
        return anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
    }
    ctx->prog = prog;
    ctx->fn = f;
    ctx->current = -1;
    if (pool) {
        ctx->pool = pool;
        ctx->n_threads = anml__threadpool_size(pool);
    } else {
        ctx->n_threads = n_threads > 0 ? n_threads : anml__n_cores();
        if (ctx->n_threads > 1) {
            ctx->pool = anml__threadpool_create(ctx->n_threads);
            if (!ctx->pool) {
                anml__free(ctx);
                return anml__err(err, ANML_E_NOMEM, NULL, "out of memory");
            }
            ctx->owns_pool = true;
        }
    }
    ANML_LOG_DEBUG("exec: context for function '%s': %d thread(s), %s kernels", f->name,
                   (int)ctx->n_threads, anml__kernels()->name);
    /* Concrete shapes: declared, else the description's default; then each enumerated shape. */
    const struct mil_function_desc *d = fn_desc(prog->ir, f->name);
    struct ex_tensor shapes[16];
    const struct ex_tensor *sh[16] = { 0 };
    int32_t n_enum = 0;
    enum anml_status st = ANML_OK;
    if (f->n_inputs > 16) {
        st = anml__err(err, ANML_E_UNSUPPORTED, NULL, "function '%s' has more than 16 inputs",
                       f->name);
    }
    for (int32_t i = 0; st == ANML_OK && i < f->n_inputs; i++) {
        const struct mil_type *ty = f->inputs[i].type;
        const struct mil_feature *feat = find_feature(d, f->inputs[i].name);
        if (ty->kind != MIL_TYPE_TENSOR || !feat || ty->rank != feat->rank) {
            continue;
        }
        if (feat->n_enum_shapes > n_enum) {
            n_enum = feat->n_enum_shapes;
        }
        bool unknown = false;
        for (int32_t k = 0; k < ty->rank; k++) {
            unknown |= ty->dims[k] < 0;
        }
        if (unknown && ty->rank <= EX_MAX_DIMS) {
            memset(&shapes[i], 0, sizeof shapes[i]);
            ex_set_shape(&shapes[i], ty->dtype, ty->rank, feat->shape);
            sh[i] = &shapes[i];
        }
    }
    if (st == ANML_OK) {
        st = ctx_add_plan(ctx, sh, err);
    }
    /* every enumerated shape must plan too (the ANEMLL embeddings take [1, 1] and [1, batch]) */
    for (int32_t e = 0; st == ANML_OK && e < n_enum && e < CTX_MAX_PLANS - 1; e++) {
        bool any = false;
        for (int32_t i = 0; i < f->n_inputs; i++) {
            const struct mil_type *ty = f->inputs[i].type;
            const struct mil_feature *feat = find_feature(d, f->inputs[i].name);
            sh[i] = NULL;
            if (ty->kind == MIL_TYPE_TENSOR && feat && e < feat->n_enum_shapes &&
                ty->rank == feat->rank && ty->rank <= EX_MAX_DIMS) {
                memset(&shapes[i], 0, sizeof shapes[i]);
                ex_set_shape(&shapes[i], ty->dtype, ty->rank, feat->enum_shapes[e]);
                sh[i] = &shapes[i];
                any = true;
            }
        }
        if (!any) {
            continue;
        }
        bool dup = false;
        for (int32_t k = 0; k < ctx->n_plans && !dup; k++) {
            const struct ex_plan *p = ctx->plans[k];
            dup = true;
            for (int32_t i = 0; i < p->n_inputs && dup; i++) {
                const struct ex_tensor *t = &p->values[p->input_vals[i]];
                for (int32_t j = 0; j < f->n_inputs; j++) {
                    if (sh[j] && strcmp(f->inputs[j].name, t->name) == 0) {
                        dup = memcmp(sh[j]->shape, t->shape, (size_t)t->rank * 8) == 0;
                    }
                }
            }
        }
        if (!dup) {
            st = ctx_add_plan(ctx, sh, err);
            if (st != ANML_OK) {
                anml__err_prefix(err, "enumerated input shape #%d", (int)e);
            }
        }
    }
    if (st != ANML_OK) {
        anml_context_free(ctx);
        return st;
    }
    *out = ctx;
    return ANML_OK;
}

enum anml_status anml_context_create_ex(const struct anml_program *prog, const char *fn,
                                        const struct anml_context_params *params,
                                        struct anml_context **out, struct anml_error *err) {
    struct anml_context_params p = anml_context_params_default();
    if (params) {
        memcpy(&p, params, params->size < sizeof p ? params->size : sizeof p);
    }
    if (!out || !prog) {
        return anml__err(err, ANML_E_INVALID_ARG, NULL, "prog and out are required");
    }
    return context_create(prog, fn, NULL, p.n_threads, out, err);
}

enum anml_status anml_context_create(const struct anml_program *prog, const char *fn,
                                     struct anml_context **out, struct anml_error *err) {
    return anml_context_create_ex(prog, fn, NULL, out, err);
}

enum anml_status anml__context_create_pooled(const struct anml_program *prog, const char *fn,
                                             struct anml_threadpool *pool,
                                             struct anml_context **out, struct anml_error *err) {
    return context_create(prog, fn, pool, 1, out, err);
}

static enum anml_status context_run(struct anml_context *ctx,
                                    const struct anml_named_tensor *inputs, int32_t n_inputs,
                                    struct anml_state *state) {
    if (n_inputs < 0 || (n_inputs > 0 && !inputs)) {
        return anml__err(&ctx->err, ANML_E_INVALID_ARG, NULL, "bad input list");
    }
    int32_t pick = -1;
    for (int32_t i = 0; i < ctx->n_plans && pick < 0; i++) {
        if (plan_matches(ctx->plans[i], inputs, n_inputs)) {
            pick = i;
        }
    }
    if (pick < 0) {
        /* an input shape no plan has: validate against the signature, then plan it */
        const struct mil_function *f = ctx->fn;
        struct ex_tensor shapes[16];
        const struct ex_tensor *sh[16] = { 0 };
        if (f->n_inputs > 16) {
            return anml__err(&ctx->err, ANML_E_UNSUPPORTED, NULL, "too many inputs");
        }
        for (int32_t i = 0; i < f->n_inputs; i++) {
            const struct mil_type *ty = f->inputs[i].type;
            if (ty->kind != MIL_TYPE_TENSOR) {
                continue;
            }
            for (int32_t j = 0; j < n_inputs; j++) {
                const struct anml_tensor *a = &inputs[j].tensor;
                if (!inputs[j].name || strcmp(inputs[j].name, f->inputs[i].name) != 0) {
                    continue;
                }
                if (a->dtype != ty->dtype || a->rank != ty->rank || a->rank > EX_MAX_DIMS ||
                    anml_tensor_numel(a) < 0) {
                    return anml__err(&ctx->err, ANML_E_SHAPE, NULL,
                                     "input '%s': expected %s of rank %d, got %s of rank %d",
                                     f->inputs[i].name, anml_dtype_name(ty->dtype), (int)ty->rank,
                                     anml_dtype_name(a->dtype), (int)a->rank);
                }
                for (int32_t d = 0; d < ty->rank; d++) {
                    if (ty->dims[d] >= 0 && ty->dims[d] != a->shape[d]) {
                        return anml__err(&ctx->err, ANML_E_SHAPE, NULL,
                                         "input '%s': dim %d is %lld, the function takes %lld",
                                         f->inputs[i].name, (int)d, (long long)a->shape[d],
                                         (long long)ty->dims[d]);
                    }
                }
                memset(&shapes[i], 0, sizeof shapes[i]);
                ex_set_shape(&shapes[i], a->dtype, a->rank, a->shape);
                sh[i] = &shapes[i];
            }
        }
        enum anml_status st = ctx_add_plan(ctx, sh, &ctx->err);
        if (st != ANML_OK) {
            return st;
        }
        pick = ctx->n_plans - 1;
    }
    ctx->current = -1;
    enum anml_status st = anml__plan_run(ctx->plans[pick], inputs, n_inputs, state, &ctx->err);
    if (st == ANML_OK) {
        ctx->current = pick;
    }
    return st;
}

enum anml_status anml_context_run(struct anml_context *ctx, const struct anml_named_tensor *inputs,
                                  int32_t n_inputs, struct anml_state *state) {
    memset(&ctx->err, 0, sizeof ctx->err);
    ctx->errmsg[0] = '\0';
    enum anml_status st = context_run(ctx, inputs, n_inputs, state);
    if (st != ANML_OK) { /* "where: message" when the error has a position (model.mil:line:col) */
        snprintf(ctx->errmsg, sizeof ctx->errmsg, "%s%s%s", ctx->err.where,
                 ctx->err.where[0] ? ": " : "", ctx->err.msg);
    }
    return st;
}

static void to_public(const struct ex_tensor *t, struct anml_tensor *out) {
    memset(out, 0, sizeof *out);
    out->dtype = t->dtype;
    out->rank = t->rank;
    memcpy(out->shape, t->shape, (size_t)t->rank * sizeof(int64_t));
    out->data = t->data;
}

int32_t anml_context_n_outputs(const struct anml_context *ctx) {
    return ctx->fn->block.n_outputs;
}

enum anml_status anml_context_output_at(const struct anml_context *ctx, int32_t i,
                                        const char **name, struct anml_tensor *out) {
    if (ctx->current < 0) {
        return ANML_E_MISUSE;
    }
    const struct ex_plan *p = ctx->plans[ctx->current];
    if (i < 0 || i >= p->n_outputs) {
        return ANML_E_NOT_FOUND;
    }
    if (name) {
        *name = ctx->fn->block.outputs[i];
    }
    to_public(&p->values[p->output_vals[i]], out);
    return ANML_OK;
}

enum anml_status anml_context_output(const struct anml_context *ctx, const char *name,
                                     struct anml_tensor *out) {
    if (ctx->current < 0) {
        return ANML_E_MISUSE;
    }
    for (int32_t i = 0; i < ctx->fn->block.n_outputs; i++) {
        if (strcmp(ctx->fn->block.outputs[i], name) == 0) {
            return anml_context_output_at(ctx, i, NULL, out);
        }
    }
    return ANML_E_NOT_FOUND;
}

const char *anml_context_errmsg(const struct anml_context *ctx) {
    return ctx->errmsg;
}
