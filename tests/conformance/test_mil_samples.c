/*
 * test_mil_samples.c -- the text reader on every real model.mil / metadata.json saved under
 * ../shared/fixtures/mil-samples (compiler output of several coremlc generations, a dialect-D
 * excerpt, hand-written files Apple's compiler accepted, and statement lines quoted in
 * coremltools' own tests).
 *
 * Every program must parse; where a metadata.json sits beside it, the metadata must parse and
 * its features must agree with the MIL signatures (checked here independently of the reader's
 * own cross-check). Concrete facts below were read from the files by hand.
 *
 * The .EXCERPT file is the first 6253 characters of a large program, cut after a statement: the
 * test checks that the raw excerpt fails only at its very end (a block left open), then closes it
 * by appending "} -> (<last result>);\n}\n" and parses the whole.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "coreml/mil_text.h"
#include "coreml/program.h"
#include "testutil.h"

#define SAMPLES "fixtures/mil-samples"

static struct mil_program *parse_file(const char *path) {
    size_t len;
    char *text = anml_test_read_file(path, &len);
    if (!text) {
        fail_msg("cannot read %s", path);
    }
    struct mil_program *p = anml__mil_program_new();
    assert_non_null(p);
    struct anml_error err = { 0 };
    enum anml_status st = anml__mil_parse_text(p, text, len, path, &err);
    free(text);
    if (st != ANML_OK) {
        fail_msg("%s: status %d at %s: %s", path, st, err.where, err.msg);
    }
    return p;
}

static struct mil_program *parse_sample(const char *rel) {
    char path[4096];
    snprintf(path, sizeof path, "%s", anml_test_shared_path(rel));
    return parse_file(path);
}

static void parse_metadata(struct mil_program *p, const char *path) {
    size_t len;
    char *text = anml_test_read_file(path, &len);
    if (!text) {
        fail_msg("cannot read %s", path);
    }
    struct anml_error err = { 0 };
    enum anml_status st = anml__mil_parse_metadata_json(p, text, len, path, &err);
    free(text);
    if (st != ANML_OK) {
        fail_msg("%s: status %d at %s: %s", path, st, err.where, err.msg);
    }
}

static const struct mil_op *find_op(const struct mil_function *f, const char *result) {
    for (int32_t i = 0; i < f->block.n_ops; i++) {
        for (int32_t r = 0; r < f->block.ops[i].n_results; r++) {
            if (strcmp(f->block.ops[i].results[r].name, result) == 0) {
                return &f->block.ops[i];
            }
        }
    }
    fail_msg("function %s: no op defines '%s'", f->name, result);
    return NULL;
}

static const struct mil_type *input_type(const struct mil_function *f, const char *name) {
    for (int32_t i = 0; i < f->n_inputs; i++) {
        if (strcmp(f->inputs[i].name, name) == 0) {
            return f->inputs[i].type;
        }
    }
    return NULL;
}

static const char *str_value(const struct mil_value *v) {
    assert_int_equal(v->kind, MIL_VALUE_TENSOR);
    assert_int_equal(v->type->dtype, ANML_DTYPE_STRING);
    assert_int_equal(v->n_elem, 1);
    return ((char **)v->data)[0];
}

static void assert_tensor_type(const struct mil_type *t, enum anml_dtype dt, int32_t rank,
                               const int64_t *dims) {
    assert_non_null(t);
    assert_int_equal(t->kind, MIL_TYPE_TENSOR);
    assert_int_equal(t->dtype, dt);
    assert_int_equal(t->rank, rank);
    for (int32_t i = 0; i < rank; i++) {
        assert_int_equal(t->dims[i], dims[i]);
    }
}

/* ---- metadata vs. MIL signature, checked independently of metadata.c ---- */

static void check_feature(const struct mil_function *f, const struct mil_feature *ft,
                          const struct mil_type *t, const char *what) {
    if (!t) {
        fail_msg("%s %s: not in MIL function %s", what, ft->name, f->name);
    }
    if (ft->kind == MIL_FEATURE_STATE) {
        assert_int_equal(t->kind, MIL_TYPE_STATE);
        t = t->elems[0];
    }
    assert_int_equal(t->kind, MIL_TYPE_TENSOR);
    if (ft->dtype != ANML_DTYPE_INVALID) {
        assert_int_equal(ft->dtype, t->dtype);
    }
    assert_int_equal(ft->rank, t->rank);
    for (int32_t i = 0; i < t->rank; i++) {
        if (t->dims[i] != MIL_DIM_UNKNOWN) {
            assert_int_equal(ft->shape[i], t->dims[i]);
        }
        if (ft->has_range) {
            assert_true(ft->range_lo[i] <= ft->shape[i]);
            assert_true(ft->range_hi[i] < 0 || ft->shape[i] <= ft->range_hi[i]);
        }
    }
}

static void check_desc_against_mil(const struct mil_program *p) {
    assert_true(p->desc.n_functions >= 1);
    for (int32_t i = 0; i < p->desc.n_functions; i++) {
        const struct mil_function_desc *fd = &p->desc.functions[i];
        const struct mil_function *f = anml__mil_find_function(p, fd->name);
        if (!f) {
            fail_msg("described function %s missing from model.mil", fd->name);
        }
        for (int32_t k = 0; k < fd->n_inputs; k++) {
            check_feature(f, &fd->inputs[k], input_type(f, fd->inputs[k].name), "input");
        }
        for (int32_t k = 0; k < fd->n_states; k++) {
            check_feature(f, &fd->states[k], input_type(f, fd->states[k].name), "state");
        }
        for (int32_t k = 0; k < fd->n_outputs; k++) {
            const struct mil_type *t = input_type(f, fd->outputs[k].name);
            bool listed = false;
            for (int32_t o = 0; o < f->block.n_outputs; o++) {
                listed = listed || strcmp(f->block.outputs[o], fd->outputs[k].name) == 0;
            }
            assert_true(listed);
            if (!t) {
                const struct mil_op *op = find_op(f, fd->outputs[k].name);
                for (int32_t r = 0; r < op->n_results; r++) {
                    if (strcmp(op->results[r].name, fd->outputs[k].name) == 0) {
                        t = op->results[r].type;
                    }
                }
            }
            check_feature(f, &fd->outputs[k], t, "output");
        }
    }
    if (p->desc.default_function) {
        assert_non_null(anml__mil_find_function(p, p->desc.default_function));
    }
    if (!p->desc.multifunction) {
        assert_int_equal(p->desc.n_functions, 1);
        assert_string_equal(p->desc.functions[0].name, p->functions[0].name);
    }
}

/* ---- every sample ---- */

static bool ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Parses every *.mil below dir (and its metadata.json when present); returns the count. */
static int walk(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) {
        fail_msg("cannot open %s", dir);
    }
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (stat(path, &st) != 0) {
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            n += walk(path);
            continue;
        }
        if (!ends_with(e->d_name, ".mil")) {
            continue;
        }
        struct mil_program *p = parse_file(path);
        assert_true(p->n_functions >= 1);
        char meta[4096];
        snprintf(meta, sizeof meta, "%s/metadata.json", dir);
        if (strcmp(e->d_name, "model.mil") == 0 && stat(meta, &st) == 0) {
            parse_metadata(p, meta);
            check_desc_against_mil(p);
        }
        anml__mil_program_free(p);
        n++;
    }
    closedir(d);
    return n;
}

static void test_every_sample_parses(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    int n = walk(anml_test_shared_path(SAMPLES));
    /* 5 hand-written + add_model + 8 mlmodelc-export programs */
    assert_true(n >= 14);
}

/* ---- facts read from the files ---- */

static void test_add_model(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    struct mil_program *p = parse_sample(SAMPLES "/apple_coremltools_add_model.mlmodelc/model.mil");
    assert_int_equal(p->n_attrs, 1);
    assert_string_equal(p->attrs[0].name, "buildInfo");
    const struct mil_value *bi = p->attrs[0].value;
    assert_int_equal(bi->kind, MIL_VALUE_DICT);
    assert_int_equal(bi->n_items, 10);
    assert_string_equal(str_value(bi->items[0]), "coremlc-component-MIL");
    assert_string_equal(str_value(bi->items[1]), "3402.3.2");
    assert_string_equal(str_value(bi->items[9]), "8.1");
    assert_int_equal(p->n_functions, 1);
    const struct mil_function *f = &p->functions[0];
    assert_string_equal(f->name, "main");
    assert_int_equal(f->opset, 6);
    assert_int_equal(f->n_inputs, 2);
    static const int64_t dims[] = { 1, 10 };
    assert_string_equal(f->inputs[0].name, "x");
    assert_string_equal(f->inputs[1].name, "y");
    assert_tensor_type(f->inputs[0].type, ANML_DTYPE_F16, 2, dims);
    assert_tensor_type(f->inputs[1].type, ANML_DTYPE_F16, 2, dims);
    assert_int_equal(f->block.n_ops, 1);
    const struct mil_op *op = &f->block.ops[0];
    assert_string_equal(op->type, "mul");
    assert_string_equal(op->results[0].name, "var_3");
    assert_tensor_type(op->results[0].type, ANML_DTYPE_F16, 2, dims);
    assert_string_equal(anml__mil_op_arg(op, "x")->bindings[0].name, "x");
    assert_string_equal(str_value(anml__mil_op_attr(op, "name")->value), "op_3_cast_fp16");
    assert_int_equal(op->line, 5);
    assert_int_equal(f->block.n_outputs, 1);
    assert_string_equal(f->block.outputs[0], "var_3");
    parse_metadata(p, anml_test_shared_path(SAMPLES "/apple_coremltools_add_model.mlmodelc/"
                                                    "metadata.json"));
    assert_int_equal(p->spec_version, 7);
    assert_false(p->desc.multifunction);
    assert_null(p->desc.default_function);
    const struct mil_function_desc *fd = &p->desc.functions[0];
    assert_string_equal(fd->name, "main");
    assert_int_equal(fd->n_inputs, 2);
    assert_int_equal(fd->n_outputs, 1);
    assert_int_equal(fd->n_states, 0);
    assert_string_equal(fd->outputs[0].name, "var_3");
    assert_int_equal(fd->inputs[1].kind, MIL_FEATURE_MULTIARRAY);
    assert_int_equal(fd->inputs[1].dtype, ANML_DTYPE_F16);
    assert_int_equal(fd->inputs[1].rank, 2);
    assert_int_equal(fd->inputs[1].shape[1], 10);
    assert_false(fd->inputs[1].optional);
    assert_int_equal(p->desc.n_user, 3);
    assert_string_equal(p->desc.user_keys[0], "com.github.apple.coremltools.source_dialect");
    assert_string_equal(p->desc.user_values[2], "8.1");
    anml__mil_program_free(p);

    /* the whole bundle through the loader */
    struct mil_program *q = NULL;
    struct anml_error err = { 0 };
    enum anml_status st = anml__mil_load(
        anml_test_shared_path(SAMPLES "/apple_coremltools_add_model.mlmodelc"), &q, &err);
    if (st != ANML_OK) {
        fail_msg("load: %s: %s", err.where, err.msg);
    }
    assert_int_equal(q->format, MIL_FORMAT_MLMODELC);
    assert_int_equal(q->spec_version, 7);
    assert_string_equal(anml__mil_default_function(q), "main");
    anml__mil_program_free(q);
}

static void test_flexible_multifunction(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    const char *dir = SAMPLES "/rebeckerspecialties_mlmodelc-export/flexible-multifunction";
    char rel[512];
    snprintf(rel, sizeof rel, "%s/model.mil", dir);
    struct mil_program *p = parse_sample(rel);
    assert_int_equal(p->n_functions, 2);
    assert_string_equal(p->functions[0].name, "first");
    assert_string_equal(p->functions[1].name, "second");
    static const int64_t unk[] = { MIL_DIM_UNKNOWN };
    for (int i = 0; i < 2; i++) {
        const struct mil_function *f = &p->functions[i];
        assert_int_equal(f->opset, 8);
        assert_tensor_type(f->inputs[0].type, ANML_DTYPE_F32, 1, unk);
        assert_int_equal(f->n_attrs, 1);
        const struct mil_value *fsi = f->attrs[0].value;
        assert_string_equal(f->attrs[0].name, "FlexibleShapeInformation");
        assert_int_equal(fsi->kind, MIL_VALUE_TUPLE);
        assert_int_equal(fsi->n_items, 2);
        assert_string_equal(str_value(fsi->items[0]->items[0]), "DefaultShapes");
        assert_string_equal(str_value(fsi->items[1]->items[0]), "RangeDims");
        const struct mil_value *def = fsi->items[0]->items[1];
        assert_string_equal(str_value(def->items[0]), "input");
        int32_t dflt;
        memcpy(&dflt, def->items[1]->data, 4);
        assert_int_equal(dflt, i == 0 ? 4 : 2);
        const struct mil_value *range = fsi->items[1]->items[1]->items[1]; /* list of [lo, hi] */
        assert_int_equal(range->kind, MIL_VALUE_LIST);
        assert_int_equal(range->n_items, 1);
        int32_t hi;
        memcpy(&hi, (const uint8_t *)range->items[0]->data + 4, 4);
        assert_int_equal(hi, 4);
        assert_string_equal(f->block.ops[0].type, "relu");
        assert_int_equal(f->block.ops[0].n_attrs, 0);
    }
    snprintf(rel, sizeof rel, "%s/metadata.json", dir);
    parse_metadata(p, anml_test_shared_path(rel));
    assert_int_equal(p->spec_version, 9);
    assert_true(p->desc.multifunction);
    assert_int_equal(p->desc.n_functions, 2);
    assert_string_equal(p->desc.functions[0].name, "first");
    assert_string_equal(p->desc.functions[1].name, "second");
    assert_string_equal(p->desc.default_function, "second");
    assert_string_equal(anml__mil_default_function(p), "second");
    const struct mil_feature *in2 = &p->desc.functions[1].inputs[0];
    assert_string_equal(in2->name, "input");
    assert_int_equal(in2->shape[0], 2);
    assert_true(in2->has_range);
    assert_int_equal(in2->range_lo[0], 0);
    assert_int_equal(in2->range_hi[0], 4);
    assert_non_null(strstr(in2->short_description, "Default input: \"second\"\nxxx"));
    assert_int_equal(p->desc.functions[0].inputs[0].shape[0], 4);
    check_desc_against_mil(p);
    anml__mil_program_free(p);
}

static void test_fp16_subnormal_cast(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    struct mil_program *p =
        parse_sample(SAMPLES "/rebeckerspecialties_mlmodelc-export/fp16-subnormal-cast/model.mil");
    const struct mil_function *f = &p->functions[0];
    assert_int_equal(f->opset, 7);
    const struct mil_value *half = anml__mil_op_attr(find_op(f, "half"), "val")->value;
    assert_int_equal(half->n_elem, 5);
    /* [0x1p-24, 0x1.5p-17, 0x1.ff8p-15, 0x1p-14, -0x1.5p-17] as binary16 bit patterns */
    static const uint16_t want[] = { 0x0001, 0x00a8, 0x03ff, 0x0400, 0x80a8 };
    for (int i = 0; i < 5; i++) {
        uint16_t h;
        memcpy(&h, (const uint8_t *)half->data + 2 * i, 2);
        assert_int_equal(h, want[i]);
    }
    const struct mil_op *cast = find_op(f, "constant");
    assert_string_equal(str_value(anml__mil_op_arg(cast, "dtype")->bindings[0].value), "fp32");
    assert_string_equal(anml__mil_op_arg(cast, "x")->bindings[0].name, "half");
    anml__mil_program_free(p);
}

static void test_quantized_constexpr_and_blobs(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    const char *dir = SAMPLES "/rebeckerspecialties_mlmodelc-export/quantized-constexpr";
    char rel[512];
    snprintf(rel, sizeof rel, "%s/model.mil", dir);
    struct mil_program *p = parse_sample(rel);
    const struct mil_op *op = find_op(&p->functions[0], "constant");
    assert_string_equal(op->type, "constexpr_affine_dequantize");
    assert_int_equal(op->n_args, 0);
    assert_int_equal(op->n_attrs, 4);
    const struct mil_value *q = anml__mil_op_attr(op, "quantized_data")->value;
    assert_int_equal(q->kind, MIL_VALUE_BLOB);
    assert_string_equal(q->blob_path, "@model_path/weights/weights.bin");
    assert_int_equal(q->blob_offset, 64);
    assert_int_equal(q->n_elem, 4);
    assert_int_equal(q->type->dtype, ANML_DTYPE_INT8);
    float scale;
    memcpy(&scale, anml__mil_op_attr(op, "scale")->value->data, 4);
    assert_true(scale == 0.5f);
    assert_int_equal(((int8_t *)anml__mil_op_attr(op, "zero_point")->value->data)[0], -1);
    snprintf(rel, sizeof rel, "%s/metadata.json", dir);
    parse_metadata(p, anml_test_shared_path(rel));
    assert_int_equal(p->desc.functions[0].inputs[0].dtype, ANML_DTYPE_F32);
    anml__mil_program_free(p);

    p = parse_sample(SAMPLES
                     "/rebeckerspecialties_mlmodelc-export/flexible-weighted-legacy/model.mil");
    const struct mil_value *w =
        anml__mil_op_attr(find_op(&p->functions[0], "weight"), "val")->value;
    assert_int_equal(w->kind, MIL_VALUE_BLOB);
    assert_int_equal(w->n_elem, 4);
    assert_int_equal(w->blob_offset, 64);
    static const int64_t in_dims[] = { MIL_DIM_UNKNOWN, 4 };
    assert_tensor_type(p->functions[0].inputs[0].type, ANML_DTYPE_F32, 2, in_dims);
    parse_metadata(p, anml_test_shared_path(SAMPLES "/rebeckerspecialties_mlmodelc-export/"
                                                    "flexible-weighted-legacy/metadata.json"));
    const struct mil_feature *in = &p->desc.functions[0].inputs[0];
    assert_true(in->has_range);
    assert_int_equal(in->range_lo[0], 1);
    assert_int_equal(in->range_hi[0], 4);
    assert_int_equal(in->range_lo[1], 4);
    anml__mil_program_free(p);
}

static void test_gather_enumerated_neg_scalar(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    struct mil_program *p =
        parse_sample(SAMPLES "/rebeckerspecialties_mlmodelc-export/flexible-gather/model.mil");
    const struct mil_function *f = &p->functions[0];
    assert_int_equal(f->block.n_ops, 11);
    const struct mil_op *g = find_op(f, "output");
    assert_string_equal(g->type, "gather");
    assert_int_equal(g->n_attrs, 0);
    const struct mil_value *axis = anml__mil_op_arg(g, "axis")->bindings[0].value;
    assert_int_equal(axis->type->rank, 0);
    assert_int_equal(((int32_t *)axis->data)[0], 0);
    assert_int_equal(
        ((uint8_t *)anml__mil_op_arg(g, "validate_indices")->bindings[0].value->data)[0], 0);
    static const int64_t out_dims[] = { MIL_DIM_UNKNOWN, MIL_DIM_UNKNOWN, 2 };
    assert_tensor_type(g->results[0].type, ANML_DTYPE_F32, 3, out_dims);
    const struct mil_op *gsz = find_op(f, "output_gsz");
    assert_int_equal(gsz->n_args, 0);
    assert_int_equal(((int32_t *)anml__mil_op_attr(gsz, "val")->value->data)[0], 3);
    anml__mil_program_free(p);

    const char *dir = SAMPLES "/rebeckerspecialties_mlmodelc-export/flexible-enumerated";
    char rel[512];
    snprintf(rel, sizeof rel, "%s/model.mil", dir);
    p = parse_sample(rel);
    const struct mil_value *fsi = p->functions[0].attrs[0].value;
    const struct mil_value *en = fsi->items[1];
    assert_string_equal(str_value(en->items[0]), "EnumeratedShapes");
    const struct mil_value *byhash = en->items[1];
    assert_int_equal(byhash->kind, MIL_VALUE_DICT);
    assert_int_equal(byhash->n_items, 6);
    assert_string_equal(str_value(byhash->items[2]), "697b758f");
    snprintf(rel, sizeof rel, "%s/metadata.json", dir);
    parse_metadata(p, anml_test_shared_path(rel));
    const struct mil_feature *in = &p->desc.functions[0].inputs[0];
    assert_int_equal(in->n_enum_shapes, 3);
    assert_int_equal(in->enum_shapes[0][0], 1);
    assert_int_equal(in->enum_shapes[2][0], 4);
    assert_int_equal(in->shape[0], 4);
    anml__mil_program_free(p);

    p = parse_sample(SAMPLES "/rebeckerspecialties_mlmodelc-export/neg-0d-scalar/model.mil");
    const struct mil_op *m = find_op(&p->functions[0], "negOutput");
    const struct mil_value *y = anml__mil_op_arg(m, "y")->bindings[0].value;
    assert_int_equal(y->n_elem, 1);
    assert_true(((float *)y->data)[0] == -1.0f);
    anml__mil_program_free(p);
}

static void test_handwritten(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    struct mil_program *p =
        parse_sample(SAMPLES "/handwritten-accepted/mlx-omarchy_probe_concat-values-tuple.mil");
    const struct mil_arg *vals = anml__mil_op_arg(find_op(&p->functions[0], "y"), "values");
    assert_int_equal(vals->n_bindings, 2);
    assert_string_equal(vals->bindings[0].name, "a");
    assert_string_equal(vals->bindings[1].name, "b");
    assert_int_equal(p->attrs[0].value->n_items, 0);
    anml__mil_program_free(p);
    p = parse_sample(SAMPLES "/handwritten-accepted/mlx-omarchy_probe_layer-norm-encoder.mil");
    const struct mil_op *ln = find_op(&p->functions[0], "y");
    float eps;
    memcpy(&eps, anml__mil_op_arg(ln, "epsilon")->bindings[0].value->data, 4);
    assert_true(eps == 0.00001f);
    assert_string_equal(
        anml__mil_op_attr(find_op(&p->functions[0], "gamma"), "val")->value->blob_path,
        "@model_path/gamma.bin");
    anml__mil_program_free(p);
}

/* The excerpt is cut after a complete statement inside the open function body. */
static void test_dialect_d_excerpt(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    const char *path = anml_test_shared_path(
        SAMPLES "/joshuaswarren_mlx-omarchy/fp16-output-peel_model.mil.EXCERPT");
    size_t len;
    char *text = anml_test_read_file(path, &len);
    assert_non_null(text);
    /* raw: the only error is the end of input where the block should continue */
    struct mil_program *p = anml__mil_program_new();
    struct anml_error err = { 0 };
    assert_int_equal(anml__mil_parse_text(p, text, len, "x.mil", &err), ANML_E_FORMAT);
    assert_non_null(strstr(err.msg, "found end of input"));
    long lines = 1;
    for (size_t i = 0; i < len; i++) {
        lines += text[i] == '\n';
    }
    char want_where[64];
    snprintf(want_where, sizeof want_where, "x.mil:%ld:1", lines);
    assert_string_equal(err.where, want_where);
    anml__mil_program_free(p);

    /* close it: the last statement's result becomes the function output */
    const char *last_line = text + len;
    while (last_line > text && (last_line[-1] == '\n' || last_line[-1] == ' ')) {
        last_line--;
    }
    while (last_line > text && last_line[-1] != '\n') {
        last_line--;
    }
    const char *eq = strstr(last_line, " = ");
    assert_non_null(eq);
    const char *name = eq;
    while (name > last_line && name[-1] != ' ') {
        name--;
    }
    char *full = malloc(len + 256);
    assert_non_null(full);
    int n = snprintf(full, len + 256, "%s    } -> (%.*s);\n}\n", text, (int)(eq - name), name);
    p = anml__mil_program_new();
    if (anml__mil_parse_text(p, full, (size_t)n, "x.mil", &err) != ANML_OK) {
        fail_msg("%s: %s", err.where, err.msg);
    }
    assert_int_equal(p->n_attrs, 0);
    const struct mil_function *f = &p->functions[0];
    assert_string_equal(f->name, "main");
    assert_int_equal(f->opset, 8);
    static const int64_t feat_dims[] = { 1, 3000, 128 };
    static const int64_t mask_dims[] = { 1, 3000 };
    assert_tensor_type(input_type(f, "input_features"), ANML_DTYPE_F32, 3, feat_dims);
    assert_tensor_type(input_type(f, "attention_mask"), ANML_DTYPE_INT32, 2, mask_dims);
    /* `tensor<int32, [1]>(1)`: a bare scalar for a one-element tensor */
    const struct mil_value *axes = anml__mil_op_attr(find_op(f, "input_1_axes_0"), "val")->value;
    assert_int_equal(axes->type->rank, 1);
    assert_int_equal(axes->n_elem, 1);
    assert_int_equal(((int32_t *)axes->data)[0], 1);
    const struct mil_value *v23 = anml__mil_op_attr(find_op(f, "var_23"), "val")->value;
    assert_int_equal(v23->type->rank, 0);
    assert_int_equal(((int32_t *)v23->data)[0], 2);
    assert_string_equal(str_value(anml__mil_op_attr(find_op(f, "var_23"), "name")->value), "op_23");
    const struct mil_value *bias =
        anml__mil_op_attr(find_op(f, "encoder_subsampling_layers_0_bias_to_fp16"), "val")->value;
    assert_int_equal(bias->kind, MIL_VALUE_BLOB);
    assert_int_equal(bias->blob_offset, 4736);
    assert_int_equal(bias->n_elem, 256);
    assert_true(f->block.n_ops > 20);
    anml__mil_program_free(p);
    free(full);
    free(text);
}

/* Statement lines quoted in coremltools' tests: every complete one (ending in ';') parses. */
static void test_coremltools_statement_lines(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    size_t len;
    char *text = anml_test_read_file(
        anml_test_shared_path(SAMPLES "/apple_coremltools_test_expectations/"
                                      "model_mil_lines_from_coremltools_tests.txt"),
        &len);
    assert_non_null(text);
    int n_statements = 0, n_blob_2176 = 0;
    for (char *line = text; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) {
            *nl = '\0';
        }
        /* each line is "path:lineno:<python source>"; the statement is a quoted literal */
        char *q = line + strcspn(line, "'\"");
        char quote = *q;
        char *end = quote ? strrchr(q + 1, quote) : NULL;
        if (quote && end && end > q + 1 && end[-1] == ';') {
            struct mil_program *p = anml__mil_program_new();
            struct anml_error err = { 0 };
            enum anml_status st =
                anml__mil_parse_statements_for_test(p, q + 1, (size_t)(end - q - 1), "t", &err);
            if (st != ANML_OK) {
                fail_msg("statement %.*s: %s: %s", (int)(end - q - 1), q + 1, err.where, err.msg);
            }
            const struct mil_op *op = &p->functions[0].block.ops[0];
            assert_int_equal(p->functions[0].block.n_ops, 1);
            assert_string_equal(op->type, "const");
            const struct mil_value *v = anml__mil_op_attr(op, "val")->value;
            assert_int_equal(v->kind, MIL_VALUE_BLOB);
            assert_string_equal(v->blob_path, "@model_path/weights/weight.bin");
            if (v->blob_offset == 2176) {
                assert_int_equal(v->n_elem, 500);
                assert_int_equal(v->type->dtype, ANML_DTYPE_F32);
                n_blob_2176++;
            }
            anml__mil_program_free(p);
            n_statements++;
        }
        line = nl ? nl + 1 : NULL;
    }
    free(text);
    /* nine full statements plus two result-less `const()[...]` tails */
    assert_int_equal(n_statements, 11);
    assert_int_equal(n_blob_2176, 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_sample_parses),
        cmocka_unit_test(test_add_model),
        cmocka_unit_test(test_flexible_multifunction),
        cmocka_unit_test(test_fp16_subnormal_cast),
        cmocka_unit_test(test_quantized_constexpr_and_blobs),
        cmocka_unit_test(test_gather_enumerated_neg_scalar),
        cmocka_unit_test(test_handwritten),
        cmocka_unit_test(test_dialect_d_excerpt),
        cmocka_unit_test(test_coremltools_statement_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
