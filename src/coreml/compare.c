/*
 * compare.c -- structural equality of two programs (anml__mil_program_equal), used by the
 * round-trip tests: .mlpackage -> IR -> .mlmodelc -> IR must give the same program.
 *
 * Functions are matched by name, operations compared in order, arguments and attributes matched
 * by name, values compared by content. Blob values are compared by their resolved dtype and data
 * bytes through each program's own blob store, never by file name or offset, because a writer
 * re-packs weight files. Source positions (line/col), the source path and the input format are
 * not part of the program and are ignored; so are the attributes of blocks, which the MIL text
 * form cannot carry.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "coreml/blob.h"
#include "coreml/program.h"

struct cmp {
    const struct mil_program *pa, *pb;
    char *why;
    size_t why_len;
};

/* Records the first difference as "<ctx>: <message>" and returns false. */
static bool differ(struct cmp *c, const char *ctx, const char *fmt, ...) ANML_PRINTF(3, 4);
static bool differ(struct cmp *c, const char *ctx, const char *fmt, ...) {
    if (c->why && c->why_len > 0) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (ctx && *ctx) {
            snprintf(c->why, c->why_len, "%s: %s", ctx, msg);
        } else {
            snprintf(c->why, c->why_len, "%s", msg);
        }
    }
    return false;
}

static bool str_eq(const char *a, const char *b) {
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

static const char *show(const char *s) {
    return s ? s : "(none)";
}

static void type_text(const struct mil_type *t, char *buf, size_t cap) {
    if (!t) {
        snprintf(buf, cap, "(no type)");
        return;
    }
    anml__mil_type_str(t, buf, cap);
}

static bool types_equal(struct cmp *c, const char *ctx, const struct mil_type *a,
                        const struct mil_type *b) {
    if (anml__mil_type_equal(a, b)) {
        return true;
    }
    char ta[160], tb[160];
    type_text(a, ta, sizeof ta);
    type_text(b, tb, sizeof tb);
    return differ(c, ctx, "type differs (%s vs %s)", ta, tb);
}

/* ---- values ---- */

static const char *const k_value_kind[MIL_VALUE_KIND_COUNT] = { "tensor", "blob", "tuple", "list",
                                                                "dict" };

static const char *kind_name(enum mil_value_kind k) {
    return (int)k >= 0 && k < MIL_VALUE_KIND_COUNT ? k_value_kind[k] : "?";
}

static bool blobs_equal(struct cmp *c, const char *ctx, const struct mil_value *a,
                        const struct mil_value *b) {
    struct mil_blob_view va, vb;
    struct anml_error e;
    if (!c->pa->blobs || anml__blob_resolve(c->pa->blobs, a, &va, &e) != ANML_OK) {
        return differ(c, ctx, "blob of the first program does not resolve: %s",
                      c->pa->blobs ? e.msg : "no blob store");
    }
    if (!c->pb->blobs || anml__blob_resolve(c->pb->blobs, b, &vb, &e) != ANML_OK) {
        return differ(c, ctx, "blob of the second program does not resolve: %s",
                      c->pb->blobs ? e.msg : "no blob store");
    }
    if (va.dtype != vb.dtype) {
        return differ(c, ctx, "blob dtype differs (%s vs %s)", anml_dtype_name(va.dtype),
                      anml_dtype_name(vb.dtype));
    }
    if (va.n_elem != vb.n_elem || va.size_bytes != vb.size_bytes ||
        va.padding_bits != vb.padding_bits) {
        return differ(c, ctx, "blob size differs (%llu bytes, %lld elements vs %llu, %lld)",
                      (unsigned long long)va.size_bytes, (long long)va.n_elem,
                      (unsigned long long)vb.size_bytes, (long long)vb.n_elem);
    }
    if (va.size_bytes > 0 && memcmp(va.data, vb.data, (size_t)va.size_bytes) != 0) {
        uint64_t i = 0;
        while (va.data[i] == vb.data[i]) {
            i++;
        }
        return differ(c, ctx, "blob bytes differ at byte %llu (0x%02x vs 0x%02x)",
                      (unsigned long long)i, va.data[i], vb.data[i]);
    }
    return true;
}

static bool tensor_data_equal(struct cmp *c, const char *ctx, const struct mil_value *a,
                              const struct mil_value *b) {
    if (a->n_elem != b->n_elem) {
        return differ(c, ctx, "element count differs (%lld vs %lld)", (long long)a->n_elem,
                      (long long)b->n_elem);
    }
    enum anml_dtype dt = a->type->dtype;
    if (a->n_elem == 0) {
        return true;
    }
    if (!a->data || !b->data) {
        return differ(c, ctx, "tensor data missing in the %s program",
                      a->data ? "second" : "first");
    }
    if (dt == ANML_DTYPE_STRING) {
        char *const *sa = a->data;
        char *const *sb = b->data;
        for (int64_t i = 0; i < a->n_elem; i++) {
            if (!str_eq(sa[i], sb[i])) {
                return differ(c, ctx, "string element %lld differs (\"%s\" vs \"%s\")",
                              (long long)i, show(sa[i]), show(sb[i]));
            }
        }
        return true;
    }
    size_t es = anml__dtype_size(dt);
    const uint8_t *da = a->data;
    const uint8_t *db = b->data;
    for (int64_t i = 0; i < a->n_elem; i++) {
        if (memcmp(da + (size_t)i * es, db + (size_t)i * es, es) != 0) {
            return differ(c, ctx, "element %lld differs", (long long)i);
        }
    }
    return true;
}

static bool values_equal(struct cmp *c, const char *ctx, const struct mil_value *a,
                         const struct mil_value *b) {
    if (!a || !b) {
        return a == b ? true
                      : differ(c, ctx, "value missing in the %s program", a ? "second" : "first");
    }
    if (a->kind != b->kind) {
        return differ(c, ctx, "value kind differs (%s vs %s)", kind_name(a->kind),
                      kind_name(b->kind));
    }
    if (!types_equal(c, ctx, a->type, b->type)) {
        return false;
    }
    switch (a->kind) {
    case MIL_VALUE_TENSOR:
        if (!a->type || a->type->kind != MIL_TYPE_TENSOR) {
            return differ(c, ctx, "tensor value without a tensor type");
        }
        return tensor_data_equal(c, ctx, a, b);
    case MIL_VALUE_BLOB: return blobs_equal(c, ctx, a, b);
    case MIL_VALUE_TUPLE:
    case MIL_VALUE_LIST:
    case MIL_VALUE_DICT:
        if (a->n_items != b->n_items) {
            return differ(c, ctx, "%s length differs (%d vs %d)", kind_name(a->kind),
                          (int)a->n_items, (int)b->n_items);
        }
        for (int32_t i = 0; i < a->n_items; i++) {
            char sub[768];
            snprintf(sub, sizeof sub, "%s item #%d", ctx, (int)i);
            if (!values_equal(c, sub, a->items[i], b->items[i])) {
                return false;
            }
        }
        return true;
    case MIL_VALUE_KIND_COUNT: break;
    }
    return differ(c, ctx, "unknown value kind");
}

/* Attributes (program, function or op) matched by name; their order is not significant. */
static bool attrs_equal(struct cmp *c, const char *ctx, const struct mil_attr *a, int32_t na,
                        const struct mil_attr *b, int32_t nb) {
    for (int32_t i = 0; i < na; i++) {
        const struct mil_attr *m = NULL;
        for (int32_t j = 0; j < nb && !m; j++) {
            if (str_eq(a[i].name, b[j].name)) {
                m = &b[j];
            }
        }
        if (!m) {
            return differ(c, ctx, "attribute '%s' missing in the second program", show(a[i].name));
        }
        char sub[768];
        snprintf(sub, sizeof sub, "%s attribute '%s'", ctx, a[i].name);
        if (!values_equal(c, sub, a[i].value, m->value)) {
            return false;
        }
    }
    for (int32_t j = 0; j < nb; j++) {
        bool found = false;
        for (int32_t i = 0; i < na && !found; i++) {
            found = str_eq(a[i].name, b[j].name);
        }
        if (!found) {
            return differ(c, ctx, "attribute '%s' missing in the first program", show(b[j].name));
        }
    }
    return true;
}

static bool named_types_equal(struct cmp *c, const char *ctx, const char *what,
                              const struct mil_named_type *a, int32_t na,
                              const struct mil_named_type *b, int32_t nb) {
    if (na != nb) {
        return differ(c, ctx, "%s count differs (%d vs %d)", what, (int)na, (int)nb);
    }
    for (int32_t i = 0; i < na; i++) {
        if (!str_eq(a[i].name, b[i].name)) {
            return differ(c, ctx, "%s #%d name differs ('%s' vs '%s')", what, (int)i,
                          show(a[i].name), show(b[i].name));
        }
        char sub[768];
        snprintf(sub, sizeof sub, "%s %s '%s'", ctx, what, a[i].name);
        if (!types_equal(c, sub, a[i].type, b[i].type)) {
            return false;
        }
    }
    return true;
}

/* ---- operations and blocks ---- */

static const char *op_label(const struct mil_op *op) {
    if (op->n_results > 0 && op->results[0].name) {
        return op->results[0].name;
    }
    const struct mil_attr *nm = anml__mil_op_attr(op, "name");
    const struct mil_value *v = nm ? nm->value : NULL;
    if (v && v->kind == MIL_VALUE_TENSOR && v->type && v->type->dtype == ANML_DTYPE_STRING &&
        v->n_elem == 1 && v->data && ((char **)v->data)[0]) {
        return ((char **)v->data)[0];
    }
    return "?";
}

static bool args_equal(struct cmp *c, const char *ctx, const struct mil_op *a,
                       const struct mil_op *b) {
    if (a->n_args != b->n_args) {
        return differ(c, ctx, "argument count differs (%d vs %d)", (int)a->n_args, (int)b->n_args);
    }
    for (int32_t i = 0; i < a->n_args; i++) {
        const struct mil_arg *x = &a->args[i];
        const struct mil_arg *y = NULL;
        for (int32_t j = 0; j < b->n_args && !y; j++) {
            if (str_eq(x->name, b->args[j].name)) {
                y = &b->args[j];
            }
        }
        if (!y) {
            return differ(c, ctx, "argument '%s' missing in the second program", show(x->name));
        }
        char sub[768];
        snprintf(sub, sizeof sub, "%s arg '%s'", ctx, x->name);
        if (x->n_bindings != y->n_bindings) {
            return differ(c, sub, "binding count differs (%d vs %d)", (int)x->n_bindings,
                          (int)y->n_bindings);
        }
        for (int32_t k = 0; k < x->n_bindings; k++) {
            const struct mil_binding *p = &x->bindings[k];
            const struct mil_binding *q = &y->bindings[k];
            char bsub[800];
            if (x->n_bindings > 1) {
                snprintf(bsub, sizeof bsub, "%s binding #%d", sub, (int)k);
            } else {
                snprintf(bsub, sizeof bsub, "%s", sub);
            }
            if ((p->name != NULL) != (q->name != NULL)) {
                return differ(c, bsub, "one binds a name ('%s'), the other a literal",
                              show(p->name ? p->name : q->name));
            }
            if (p->name) {
                if (strcmp(p->name, q->name) != 0) {
                    return differ(c, bsub, "bound name differs ('%s' vs '%s')", p->name, q->name);
                }
            } else if (!values_equal(c, bsub, p->value, q->value)) {
                return false;
            }
        }
    }
    return true;
}

static bool block_equal(struct cmp *c, const char *ctx, const struct mil_block *a,
                        const struct mil_block *b);

static bool op_equal(struct cmp *c, const char *ctx, const struct mil_op *a,
                     const struct mil_op *b) {
    if (!str_eq(a->type, b->type)) {
        return differ(c, ctx, "op type differs ('%s' vs '%s')", show(a->type), show(b->type));
    }
    if (!named_types_equal(c, ctx, "result", a->results, a->n_results, b->results, b->n_results) ||
        !args_equal(c, ctx, a, b) ||
        !attrs_equal(c, ctx, a->attrs, a->n_attrs, b->attrs, b->n_attrs)) {
        return false;
    }
    if (a->n_blocks != b->n_blocks) {
        return differ(c, ctx, "nested block count differs (%d vs %d)", (int)a->n_blocks,
                      (int)b->n_blocks);
    }
    for (int32_t i = 0; i < a->n_blocks; i++) {
        char sub[768];
        snprintf(sub, sizeof sub, "%s block #%d", ctx, (int)i);
        if (!block_equal(c, sub, &a->blocks[i], &b->blocks[i])) {
            return false;
        }
    }
    return true;
}

static bool block_equal(struct cmp *c, const char *ctx, const struct mil_block *a,
                        const struct mil_block *b) {
    if (!named_types_equal(c, ctx, "block input", a->inputs, a->n_inputs, b->inputs, b->n_inputs)) {
        return false;
    }
    int32_t n = a->n_ops < b->n_ops ? a->n_ops : b->n_ops;
    for (int32_t i = 0; i < n; i++) {
        char sub[768];
        snprintf(sub, sizeof sub, "%s op #%d (%s '%s')", ctx, (int)i, show(a->ops[i].type),
                 op_label(&a->ops[i]));
        if (!op_equal(c, sub, &a->ops[i], &b->ops[i])) {
            return false;
        }
    }
    if (a->n_ops != b->n_ops) {
        const struct mil_op *extra = a->n_ops > b->n_ops ? &a->ops[n] : &b->ops[n];
        return differ(c, ctx, "op count differs (%d vs %d); first extra op #%d (%s '%s')",
                      (int)a->n_ops, (int)b->n_ops, (int)n, show(extra->type), op_label(extra));
    }
    if (a->n_outputs != b->n_outputs) {
        return differ(c, ctx, "output count differs (%d vs %d)", (int)a->n_outputs,
                      (int)b->n_outputs);
    }
    for (int32_t i = 0; i < a->n_outputs; i++) {
        if (!str_eq(a->outputs[i], b->outputs[i])) {
            return differ(c, ctx, "output #%d differs ('%s' vs '%s')", (int)i, show(a->outputs[i]),
                          show(b->outputs[i]));
        }
    }
    return true;
}

static bool function_equal(struct cmp *c, const struct mil_function *a,
                           const struct mil_function *b) {
    char ctx[384];
    snprintf(ctx, sizeof ctx, "function '%s'", a->name);
    if (a->opset != b->opset) {
        return differ(c, ctx, "opset differs (%s vs %s)", anml__mil_opset_text_tag(a->opset),
                      anml__mil_opset_text_tag(b->opset));
    }
    return named_types_equal(c, ctx, "input", a->inputs, a->n_inputs, b->inputs, b->n_inputs) &&
           attrs_equal(c, ctx, a->attrs, a->n_attrs, b->attrs, b->n_attrs) &&
           block_equal(c, ctx, &a->block, &b->block);
}

/* ---- description ---- */

static bool dims_equal(const int64_t *a, const int64_t *b, int32_t n) {
    for (int32_t i = 0; i < n; i++) {
        if (a[i] != b[i]) {
            return false;
        }
    }
    return true;
}

/* Absent and empty metadata strings mean the same (formats differ in which they produce). */
static bool meta_str_eq(const char *a, const char *b) {
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static bool feature_equal(struct cmp *c, const char *ctx, const struct mil_feature *a,
                          const struct mil_feature *b) {
    if (!meta_str_eq(a->short_description, b->short_description)) {
        return differ(c, ctx, "shortDescription differs (\"%s\" vs \"%s\")",
                      show(a->short_description), show(b->short_description));
    }
    if (a->kind != b->kind) {
        return differ(c, ctx, "feature kind differs (%d vs %d)", (int)a->kind, (int)b->kind);
    }
    if (a->optional != b->optional) {
        return differ(c, ctx, "isOptional differs");
    }
    if (a->dtype != b->dtype) {
        return differ(c, ctx, "dataType differs (%s vs %s)", anml_dtype_name(a->dtype),
                      anml_dtype_name(b->dtype));
    }
    if (a->rank != b->rank) {
        return differ(c, ctx, "rank differs (%d vs %d)", (int)a->rank, (int)b->rank);
    }
    if (a->rank > 0 && !dims_equal(a->shape, b->shape, a->rank)) {
        return differ(c, ctx, "shape differs");
    }
    if (a->n_enum_shapes != b->n_enum_shapes) {
        return differ(c, ctx, "enumerated shape count differs (%d vs %d)", (int)a->n_enum_shapes,
                      (int)b->n_enum_shapes);
    }
    for (int32_t i = 0; i < a->n_enum_shapes; i++) {
        if (!dims_equal(a->enum_shapes[i], b->enum_shapes[i], a->rank)) {
            return differ(c, ctx, "enumerated shape #%d differs", (int)i);
        }
    }
    if (a->has_range != b->has_range) {
        return differ(c, ctx, "shape range present in only one program");
    }
    if (a->has_range && (!dims_equal(a->range_lo, b->range_lo, a->rank) ||
                         !dims_equal(a->range_hi, b->range_hi, a->rank))) {
        return differ(c, ctx, "shape range differs");
    }
    return true;
}

static bool features_equal(struct cmp *c, const char *ctx, const char *what,
                           const struct mil_feature *a, int32_t na, const struct mil_feature *b,
                           int32_t nb) {
    if (na != nb) {
        return differ(c, ctx, "%s count differs (%d vs %d)", what, (int)na, (int)nb);
    }
    for (int32_t i = 0; i < na; i++) {
        if (!str_eq(a[i].name, b[i].name)) {
            return differ(c, ctx, "%s #%d name differs ('%s' vs '%s')", what, (int)i,
                          show(a[i].name), show(b[i].name));
        }
        char sub[768];
        snprintf(sub, sizeof sub, "%s %s '%s'", ctx, what, a[i].name);
        if (!feature_equal(c, sub, &a[i], &b[i])) {
            return false;
        }
    }
    return true;
}

static bool desc_equal(struct cmp *c, const struct mil_model_desc *a,
                       const struct mil_model_desc *b) {
    const char *ctx = "description";
    if (a->multifunction != b->multifunction) {
        return differ(c, ctx, "multifunction flag differs (%d vs %d)", (int)a->multifunction,
                      (int)b->multifunction);
    }
    if (!str_eq(a->default_function, b->default_function)) {
        return differ(c, ctx, "default function differs ('%s' vs '%s')", show(a->default_function),
                      show(b->default_function));
    }
    static const char *const names[] = { "shortDescription", "author", "license", "version" };
    const char *sa[] = { a->short_description, a->author, a->license, a->version };
    const char *sb[] = { b->short_description, b->author, b->license, b->version };
    for (int i = 0; i < 4; i++) {
        if (!meta_str_eq(sa[i], sb[i])) {
            return differ(c, ctx, "%s differs (\"%s\" vs \"%s\")", names[i], show(sa[i]),
                          show(sb[i]));
        }
    }
    if (a->n_user != b->n_user) {
        return differ(c, ctx, "user metadata count differs (%d vs %d)", (int)a->n_user,
                      (int)b->n_user);
    }
    for (int32_t i = 0; i < a->n_user; i++) {
        if (!str_eq(a->user_keys[i], b->user_keys[i]) ||
            !str_eq(a->user_values[i], b->user_values[i])) {
            return differ(c, ctx, "user metadata #%d differs (\"%s\": \"%s\" vs \"%s\": \"%s\")",
                          (int)i, show(a->user_keys[i]), show(a->user_values[i]),
                          show(b->user_keys[i]), show(b->user_values[i]));
        }
    }
    if (a->n_functions != b->n_functions) {
        return differ(c, ctx, "function description count differs (%d vs %d)", (int)a->n_functions,
                      (int)b->n_functions);
    }
    for (int32_t i = 0; i < a->n_functions; i++) {
        const struct mil_function_desc *fa = &a->functions[i];
        const struct mil_function_desc *fb = NULL;
        for (int32_t j = 0; j < b->n_functions && !fb; j++) {
            if (str_eq(fa->name, b->functions[j].name)) {
                fb = &b->functions[j];
            }
        }
        if (!fb) {
            return differ(c, ctx, "function description '%s' missing in the second program",
                          show(fa->name));
        }
        char sub[384];
        snprintf(sub, sizeof sub, "description of function '%s'", show(fa->name));
        if (!features_equal(c, sub, "input", fa->inputs, fa->n_inputs, fb->inputs, fb->n_inputs) ||
            !features_equal(c, sub, "output", fa->outputs, fa->n_outputs, fb->outputs,
                            fb->n_outputs) ||
            !features_equal(c, sub, "state", fa->states, fa->n_states, fb->states, fb->n_states)) {
            return false;
        }
    }
    return true;
}

/* ---- entry point ---- */

bool anml__mil_program_equal(const struct mil_program *a, const struct mil_program *b, char *why,
                             size_t why_len) {
    struct cmp c = { .pa = a, .pb = b, .why = why, .why_len = why_len };
    if (why && why_len > 0) {
        why[0] = '\0';
    }
    if (!a || !b) {
        return a == b ? true : differ(&c, "", "one program is NULL");
    }
    if (a->spec_version != b->spec_version) {
        return differ(&c, "", "specificationVersion differs (%lld vs %lld)",
                      (long long)a->spec_version, (long long)b->spec_version);
    }
    if (!attrs_equal(&c, "program", a->attrs, a->n_attrs, b->attrs, b->n_attrs)) {
        return false;
    }
    if (a->n_functions != b->n_functions) {
        return differ(&c, "", "function count differs (%d vs %d)", (int)a->n_functions,
                      (int)b->n_functions);
    }
    for (int32_t i = 0; i < a->n_functions; i++) {
        const struct mil_function *fb = anml__mil_find_function(b, a->functions[i].name);
        if (!fb) {
            return differ(&c, "", "function '%s' missing in the second program",
                          a->functions[i].name);
        }
        if (!function_equal(&c, &a->functions[i], fb)) {
            return false;
        }
    }
    return desc_equal(&c, &a->desc, &b->desc);
}
