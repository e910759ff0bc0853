/*
 * fuzz_mlpackage.c -- libFuzzer target for the protobuf Model reader: arbitrary bytes are decoded
 * into a fresh program as if they were model.mlmodel; on success every part of the IR is visited
 * so that a dangling or short allocation shows up under ASan. Seeds: scripts/gen_proto_seeds.py.
 */
#include <stdint.h>
#include <string.h>

#include "coreml/program.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t g_sink;

static void visit_type(const struct mil_type *t) {
    char buf[256];
    g_sink += (size_t)anml__mil_type_str(t, buf, sizeof buf);
    if (t->kind == MIL_TYPE_TENSOR) {
        for (int32_t i = 0; i < t->rank; i++) {
            g_sink += (size_t)t->dims[i];
        }
        return;
    }
    for (int32_t i = 0; i < t->n_elems; i++) {
        visit_type(t->elems[i]);
    }
}

static void visit_value(const struct mil_value *v) {
    visit_type(v->type);
    switch (v->kind) {
    case MIL_VALUE_TENSOR:
        if (v->type->dtype == ANML_DTYPE_STRING) {
            for (int64_t i = 0; i < v->n_elem; i++) {
                g_sink += strlen(((char **)v->data)[i]);
            }
        } else if (v->n_elem > 0) {
            const uint8_t *p = v->data;
            size_t bytes = (size_t)v->n_elem * anml__dtype_size(v->type->dtype);
            g_sink += p[0] + p[bytes - 1];
        }
        break;
    case MIL_VALUE_BLOB: g_sink += strlen(v->blob_path) + v->blob_offset; break;
    default:
        for (int32_t i = 0; i < v->n_items; i++) {
            visit_value(v->items[i]);
        }
        break;
    }
}

static void visit_attrs(int32_t n, const struct mil_attr *a) {
    for (int32_t i = 0; i < n; i++) {
        g_sink += strlen(a[i].name);
        visit_value(a[i].value);
    }
}

static void visit_named(int32_t n, const struct mil_named_type *nt) {
    for (int32_t i = 0; i < n; i++) {
        g_sink += strlen(nt[i].name);
        visit_type(nt[i].type);
    }
}

static void visit_block(const struct mil_block *b) {
    visit_named(b->n_inputs, b->inputs);
    for (int32_t i = 0; i < b->n_outputs; i++) {
        g_sink += strlen(b->outputs[i]);
    }
    visit_attrs(b->n_attrs, b->attrs);
    for (int32_t i = 0; i < b->n_ops; i++) {
        const struct mil_op *op = &b->ops[i];
        g_sink += strlen(op->type);
        for (int32_t k = 0; k < op->n_args; k++) {
            g_sink += strlen(op->args[k].name);
            for (int32_t j = 0; j < op->args[k].n_bindings; j++) {
                const struct mil_binding *bd = &op->args[k].bindings[j];
                if (bd->name) {
                    g_sink += strlen(bd->name);
                } else {
                    visit_value(bd->value);
                }
            }
        }
        visit_named(op->n_results, op->results);
        visit_attrs(op->n_attrs, op->attrs);
        for (int32_t k = 0; k < op->n_blocks; k++) {
            visit_block(&op->blocks[k]);
        }
    }
}

static void visit_features(int32_t n, const struct mil_feature *f) {
    for (int32_t i = 0; i < n; i++) {
        g_sink += strlen(f[i].name) + strlen(f[i].short_description);
        for (int32_t d = 0; d < f[i].rank; d++) {
            g_sink += (size_t)f[i].shape[d];
            for (int32_t k = 0; k < f[i].n_enum_shapes; k++) {
                g_sink += (size_t)f[i].enum_shapes[k][d];
            }
            if (f[i].has_range) {
                g_sink += (size_t)f[i].range_lo[d] + (size_t)f[i].range_hi[d];
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct mil_program *prog = anml__mil_program_new();
    if (!prog) {
        return 0;
    }
    struct anml_error err;
    if (anml__mlpackage_parse_model(prog, data, size, "fuzz.mlmodel", &err) == ANML_OK) {
        visit_attrs(prog->n_attrs, prog->attrs);
        for (int32_t i = 0; i < prog->n_functions; i++) {
            const struct mil_function *fn = &prog->functions[i];
            g_sink += strlen(fn->name) + (size_t)fn->opset;
            visit_named(fn->n_inputs, fn->inputs);
            visit_attrs(fn->n_attrs, fn->attrs);
            visit_block(&fn->block);
        }
        const struct mil_model_desc *d = &prog->desc;
        for (int32_t i = 0; i < d->n_functions; i++) {
            g_sink += strlen(d->functions[i].name);
            visit_features(d->functions[i].n_inputs, d->functions[i].inputs);
            visit_features(d->functions[i].n_outputs, d->functions[i].outputs);
            visit_features(d->functions[i].n_states, d->functions[i].states);
        }
        for (int32_t i = 0; i < d->n_user; i++) {
            g_sink += strlen(d->user_keys[i]) + strlen(d->user_values[i]);
        }
        g_sink += anml__mil_default_function(prog) ? 1 : 0;
    }
    anml__mil_program_free(prog);
    return 0;
}
