/*
 * test_mlpackage.c -- the .mlpackage reader against genuine coremltools output: every package
 * under fixtures/coreml/<model>/model/ must load and agree with that fixture's packages.json
 * (spec version, metadata, functions, default function, input/output/state features with dtypes,
 * shapes and enumerated shapes, per-function opsets, the MIL op histogram), and the real
 * anemll-profile multifunction sample must agree with its decoded dump.
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coreml/program.h"
#include "testutil.h"

/* ---- helpers ---- */

static cJSON *read_json(const char *path) {
    size_t n = 0;
    char *text = anml_test_read_file(path, &n);
    if (!text) {
        fail_msg("cannot read %s", path);
    }
    cJSON *j = cJSON_ParseWithLength(text, n);
    free(text);
    if (!j) {
        fail_msg("%s is not valid JSON", path);
    }
    return j;
}

static struct mil_program *load_ok(const char *path) {
    struct mil_program *prog = NULL;
    struct anml_error err;
    memset(&err, 0, sizeof err);
    enum anml_status st = anml__mil_load(path, &prog, &err);
    if (st != ANML_OK) {
        fail_msg("loading %s: %s at %s: %s", path, anml_status_str(st), err.where, err.msg);
    }
    assert_non_null(prog);
    return prog;
}

/* packages.json spells ArrayDataType names */
static enum anml_dtype dtype_from_json(const char *s) {
    static const struct {
        const char *name;
        enum anml_dtype dt;
    } k[] = { { "FLOAT16", ANML_DTYPE_F16 },
              { "FLOAT32", ANML_DTYPE_F32 },
              { "DOUBLE", ANML_DTYPE_F64 },
              { "INT32", ANML_DTYPE_INT32 },
              { "INT8", ANML_DTYPE_INT8 } };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        if (strcmp(k[i].name, s) == 0) {
            return k[i].dt;
        }
    }
    fail_msg("unknown dtype '%s' in packages.json", s);
    return ANML_DTYPE_INVALID;
}

static void check_shape(const char *ctx, const cJSON *jshape, int32_t rank, const int64_t *dims) {
    assert_true(cJSON_IsArray(jshape));
    if (cJSON_GetArraySize(jshape) != rank) {
        fail_msg("%s: rank %d, packages.json says %d", ctx, (int)rank, cJSON_GetArraySize(jshape));
    }
    int i = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, jshape) {
        if ((int64_t)d->valuedouble != dims[i]) {
            fail_msg("%s: dim %d is %lld, packages.json says %lld", ctx, i, (long long)dims[i],
                     (long long)d->valuedouble);
        }
        i++;
    }
}

static void check_features(const char *ctx, const cJSON *jlist, int32_t n,
                           const struct mil_feature *f, enum mil_feature_kind want_kind) {
    assert_true(cJSON_IsArray(jlist));
    if (cJSON_GetArraySize(jlist) != n) {
        fail_msg("%s: %d features, packages.json lists %d", ctx, (int)n, cJSON_GetArraySize(jlist));
    }
    int i = 0;
    const cJSON *jf;
    cJSON_ArrayForEach(jf, jlist) {
        char fctx[512];
        const char *name = cJSON_GetObjectItem(jf, "name")->valuestring;
        snprintf(fctx, sizeof fctx, "%s feature '%s'", ctx, name);
        assert_string_equal(f[i].name, name);
        const char *type = cJSON_GetObjectItem(jf, "type")->valuestring;
        enum mil_feature_kind k =
            strcmp(type, "state") == 0 ? MIL_FEATURE_STATE : MIL_FEATURE_MULTIARRAY;
        assert_int_equal(strcmp(type, "state") == 0 || strcmp(type, "multiArray") == 0, 1);
        assert_int_equal(f[i].kind, k);
        assert_int_equal(f[i].kind, want_kind);
        assert_int_equal(f[i].dtype,
                         dtype_from_json(cJSON_GetObjectItem(jf, "dtype")->valuestring));
        check_shape(fctx, cJSON_GetObjectItem(jf, "shape"), f[i].rank, f[i].shape);
        const cJSON *je = cJSON_GetObjectItem(jf, "enumerated_shapes");
        if (!je) {
            assert_int_equal(f[i].n_enum_shapes, 0);
        } else {
            if (cJSON_GetArraySize(je) != f[i].n_enum_shapes) {
                fail_msg("%s: %d enumerated shapes, packages.json lists %d", fctx,
                         (int)f[i].n_enum_shapes, cJSON_GetArraySize(je));
            }
            int k2 = 0;
            const cJSON *js;
            cJSON_ArrayForEach(js, je) {
                check_shape(fctx, js, f[i].rank, f[i].enum_shapes[k2++]);
            }
        }
        assert_false(f[i].optional);
        i++;
    }
}

/* The MIL function signature must carry the described features too: same names, dtypes, fixed
 * shapes, and states typed state<tensor>. */
static void check_signature(const char *ctx, const struct mil_function *fn,
                            const struct mil_function_desc *fd) {
    for (int32_t i = 0; i < fd->n_inputs + fd->n_states; i++) {
        const struct mil_feature *f =
            i < fd->n_inputs ? &fd->inputs[i] : &fd->states[i - fd->n_inputs];
        const struct mil_named_type *in = NULL;
        for (int32_t k = 0; k < fn->n_inputs; k++) {
            if (strcmp(fn->inputs[k].name, f->name) == 0) {
                in = &fn->inputs[k];
            }
        }
        if (!in) {
            fail_msg("%s: feature '%s' is not an input of MIL function '%s'", ctx, f->name,
                     fn->name);
        }
        const struct mil_type *t = in->type;
        if (f->kind == MIL_FEATURE_STATE) {
            assert_int_equal(t->kind, MIL_TYPE_STATE);
            t = t->elems[0];
        }
        assert_int_equal(t->kind, MIL_TYPE_TENSOR);
        assert_int_equal(t->dtype, f->dtype);
        if (f->n_enum_shapes == 0 && !f->has_range) {
            assert_int_equal(t->rank, f->rank);
            for (int32_t d = 0; d < f->rank; d++) {
                assert_int_equal(t->dims[d], f->shape[d]);
            }
        }
    }
    assert_int_equal(fn->n_inputs, fd->n_inputs + fd->n_states);
    /* the block returns the described outputs, in order */
    assert_int_equal(fn->block.n_outputs, fd->n_outputs);
    for (int32_t i = 0; i < fd->n_outputs; i++) {
        assert_string_equal(fn->block.outputs[i], fd->outputs[i].name);
    }
    (void)ctx;
}

/* ---- op histogram ---- */

struct hist {
    int n;
    char *names[256];
    long counts[256];
};

static void hist_add_block(struct hist *h, const struct mil_block *b) {
    for (int32_t i = 0; i < b->n_ops; i++) {
        const struct mil_op *op = &b->ops[i];
        int k = 0;
        while (k < h->n && strcmp(h->names[k], op->type) != 0) {
            k++;
        }
        if (k == h->n) {
            assert_true(h->n < 256);
            h->names[h->n] = op->type;
            h->counts[h->n++] = 0;
        }
        h->counts[k]++;
        for (int32_t j = 0; j < op->n_blocks; j++) {
            hist_add_block(h, &op->blocks[j]);
        }
    }
}

/* ---- per-package check ---- */

static void check_package(const char *fixture, const char *pkg_name, const cJSON *jp) {
    char rel[1024];
    snprintf(rel, sizeof rel, "fixtures/coreml/%s/model/%s", fixture, pkg_name);
    char path[4096];
    snprintf(path, sizeof path, "%s", anml_test_shared_path(rel));
    struct mil_program *prog = load_ok(path);
    char ctx[1200];
    snprintf(ctx, sizeof ctx, "%s/%s", fixture, pkg_name);

    assert_int_equal(prog->format, MIL_FORMAT_MLPACKAGE);
    assert_int_equal(prog->spec_version,
                     (int64_t)cJSON_GetObjectItem(jp, "specificationVersion")->valuedouble);
    /* @model_path is Data/com.apple.CoreML */
    char want_dir[4200];
    snprintf(want_dir, sizeof want_dir, "%s/Data/com.apple.CoreML", path);
    assert_string_equal(prog->model_dir, want_dir);

    /* metadata */
    const struct mil_model_desc *d = &prog->desc;
    const cJSON *jmeta = cJSON_GetObjectItem(jp, "metadata");
    assert_int_equal(d->n_user, cJSON_GetArraySize(jmeta));
    const cJSON *kv;
    cJSON_ArrayForEach(kv, jmeta) {
        int found = 0;
        for (int32_t i = 0; i < d->n_user; i++) {
            if (strcmp(d->user_keys[i], kv->string) == 0) {
                assert_string_equal(d->user_values[i], kv->valuestring);
                found++;
            }
        }
        if (found != 1) {
            fail_msg("%s: user metadata '%s' found %d times", ctx, kv->string, found);
        }
    }
    const struct {
        const char *key;
        const char *val;
    } strs[] = { { "author", d->author },
                 { "versionString", d->version },
                 { "shortDescription", d->short_description },
                 { "license", d->license } };
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++) {
        const cJSON *js = cJSON_GetObjectItem(jp, strs[i].key);
        if (js) {
            assert_non_null(strs[i].val);
            assert_string_equal(strs[i].val, js->valuestring);
        } else {
            assert_null(strs[i].val);
        }
    }

    /* program functions and opsets */
    const cJSON *jpf = cJSON_GetObjectItem(jp, "program_functions");
    assert_int_equal(prog->n_functions, cJSON_GetArraySize(jpf));
    const cJSON *jfn;
    cJSON_ArrayForEach(jfn, jpf) {
        const struct mil_function *fn = anml__mil_find_function(prog, jfn->string);
        if (!fn) {
            fail_msg("%s: function '%s' missing", ctx, jfn->string);
        }
        const char *opset = cJSON_GetObjectItem(jfn, "opset")->valuestring;
        assert_int_equal(fn->opset, anml__mil_opset_from_tag(opset));
        assert_true(fn->opset >= 5);
        assert_string_equal(cJSON_GetObjectItem(jfn, "block")->valuestring, opset);
        assert_true(fn->block.n_ops > 0);
    }

    /* description */
    const cJSON *jfuncs = cJSON_GetObjectItem(jp, "functions");
    if (jfuncs) {
        assert_true(d->multifunction);
        assert_int_equal(d->n_functions, cJSON_GetArraySize(jfuncs));
        assert_non_null(d->default_function);
        assert_string_equal(d->default_function,
                            cJSON_GetObjectItem(jp, "defaultFunctionName")->valuestring);
        assert_string_equal(anml__mil_default_function(prog), d->default_function);
        cJSON_ArrayForEach(jfn, jfuncs) {
            const struct mil_function_desc *fd = NULL;
            for (int32_t i = 0; i < d->n_functions; i++) {
                if (strcmp(d->functions[i].name, jfn->string) == 0) {
                    fd = &d->functions[i];
                }
            }
            if (!fd) {
                fail_msg("%s: no description of function '%s'", ctx, jfn->string);
            }
            char fctx[1300];
            snprintf(fctx, sizeof fctx, "%s:%s", ctx, jfn->string);
            check_features(fctx, cJSON_GetObjectItem(jfn, "inputs"), fd->n_inputs, fd->inputs,
                           MIL_FEATURE_MULTIARRAY);
            check_features(fctx, cJSON_GetObjectItem(jfn, "outputs"), fd->n_outputs, fd->outputs,
                           MIL_FEATURE_MULTIARRAY);
            check_features(fctx, cJSON_GetObjectItem(jfn, "states"), fd->n_states, fd->states,
                           MIL_FEATURE_STATE);
            check_signature(fctx, anml__mil_find_function(prog, fd->name), fd);
        }
    } else {
        assert_false(d->multifunction);
        assert_null(cJSON_GetObjectItem(jp, "defaultFunctionName"));
        assert_null(d->default_function);
        assert_int_equal(d->n_functions, 1);
        assert_int_equal(prog->n_functions, 1);
        const struct mil_function_desc *fd = &d->functions[0];
        assert_string_equal(fd->name, prog->functions[0].name);
        check_features(ctx, cJSON_GetObjectItem(jp, "inputs"), fd->n_inputs, fd->inputs,
                       MIL_FEATURE_MULTIARRAY);
        check_features(ctx, cJSON_GetObjectItem(jp, "outputs"), fd->n_outputs, fd->outputs,
                       MIL_FEATURE_MULTIARRAY);
        check_features(ctx, cJSON_GetObjectItem(jp, "states"), fd->n_states, fd->states,
                       MIL_FEATURE_STATE);
        check_signature(ctx, &prog->functions[0], fd);
    }

    /* op histogram: every op of every function of the package (nested blocks included) */
    struct hist h;
    memset(&h, 0, sizeof h);
    for (int32_t i = 0; i < prog->n_functions; i++) {
        hist_add_block(&h, &prog->functions[i].block);
    }
    const cJSON *jh = cJSON_GetObjectItem(jp, "op_histogram");
    assert_int_equal(h.n, cJSON_GetArraySize(jh));
    for (int k = 0; k < h.n; k++) {
        const cJSON *jc = cJSON_GetObjectItem(jh, h.names[k]);
        if (!jc) {
            fail_msg("%s: op type '%s' (x%ld) not in op_histogram", ctx, h.names[k], h.counts[k]);
        }
        if ((long)jc->valuedouble != h.counts[k]) {
            fail_msg("%s: %ld '%s' ops, op_histogram says %ld", ctx, h.counts[k], h.names[k],
                     (long)jc->valuedouble);
        }
    }
    anml__mil_program_free(prog);
}

static void test_coreml_fixture_packages(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    char root[4096];
    snprintf(root, sizeof root, "%s", anml_test_shared_path("fixtures/coreml"));
    DIR *dir = opendir(root);
    assert_non_null(dir);
    int n_fixtures = 0, n_packages = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        char pj[4400];
        snprintf(pj, sizeof pj, "%s/%s/packages.json", root, e->d_name);
        FILE *probe = fopen(pj, "rb");
        if (!probe) {
            continue;
        }
        fclose(probe);
        cJSON *j = read_json(pj);
        const cJSON *jp;
        cJSON_ArrayForEach(jp, j) {
            check_package(e->d_name, jp->string, jp);
            n_packages++;
        }
        /* every .mlpackage on disk is described (nothing silently skipped) */
        char md[4400];
        snprintf(md, sizeof md, "%s/%s/model", root, e->d_name);
        DIR *mdir = opendir(md);
        assert_non_null(mdir);
        struct dirent *me;
        while ((me = readdir(mdir)) != NULL) {
            size_t l = strlen(me->d_name);
            if (l > 10 && strcmp(me->d_name + l - 10, ".mlpackage") == 0) {
                assert_non_null(cJSON_GetObjectItem(j, me->d_name));
            }
        }
        closedir(mdir);
        cJSON_Delete(j);
        n_fixtures++;
    }
    closedir(dir);
    print_message("checked %d packages of %d fixtures\n", n_packages, n_fixtures);
    assert_true(n_fixtures >= 4);
    assert_true(n_packages >= 20);
}

/* ---- the anemll-profile sample (facts from its .decoded.txt / coreml-format.md App. A) ---- */

static const struct mil_op *find_op(const struct mil_function *fn, const char *result) {
    for (int32_t i = 0; i < fn->block.n_ops; i++) {
        const struct mil_op *op = &fn->block.ops[i];
        if (op->n_results > 0 && strcmp(op->results[0].name, result) == 0) {
            return op;
        }
    }
    fail_msg("no op produces '%s' in '%s'", result, fn->name);
    return NULL;
}

static const char *str_attr(const struct mil_op *op, const char *name) {
    const struct mil_attr *a = anml__mil_op_attr(op, name);
    assert_non_null(a);
    assert_int_equal(a->value->kind, MIL_VALUE_TENSOR);
    assert_int_equal(a->value->type->dtype, ANML_DTYPE_STRING);
    assert_int_equal(a->value->n_elem, 1);
    return ((char **)a->value->data)[0];
}

static void check_profile_function(const struct mil_program *prog, const char *name,
                                   const char *arith, uint16_t fp16_const) {
    const struct mil_function *fn = anml__mil_find_function(prog, name);
    assert_non_null(fn);
    assert_int_equal(fn->opset, 8);
    assert_int_equal(fn->n_inputs, 1);
    assert_string_equal(fn->inputs[0].name, "x");
    assert_int_equal(fn->inputs[0].type->dtype, ANML_DTYPE_F32);
    assert_int_equal(fn->inputs[0].type->rank, 1);
    assert_int_equal(fn->inputs[0].type->dims[0], 1);
    assert_int_equal(fn->block.n_outputs, 1);
    assert_string_equal(fn->block.outputs[0], name);
    static const char *const types[] = { "const", "const", "cast", NULL, "const", "cast" };
    assert_int_equal(fn->block.n_ops, 6);
    for (int i = 0; i < 6; i++) {
        assert_string_equal(fn->block.ops[i].type, types[i] ? types[i] : arith);
        assert_int_equal(fn->block.ops[i].line, 0);
    }

    /* string const: dtype name "fp16", a rank-0 STRING tensor */
    const struct mil_op *c0 = find_op(fn, "x_to_fp16_dtype_0");
    assert_string_equal(str_attr(c0, "name"), "x_to_fp16_dtype_0");
    assert_string_equal(str_attr(c0, "val"), "fp16");
    assert_int_equal(c0->n_args, 0);

    /* fp16 scalar const in TensorValue.bytes */
    char cname[64];
    snprintf(cname, sizeof cname, "%s_y_0_to_fp16", name);
    const struct mil_op *c1 = find_op(fn, cname);
    const struct mil_attr *val = anml__mil_op_attr(c1, "val");
    assert_non_null(val);
    assert_int_equal(val->value->type->dtype, ANML_DTYPE_F16);
    assert_int_equal(val->value->type->rank, 0);
    assert_int_equal(val->value->n_elem, 1);
    assert_int_equal(((const uint16_t *)val->value->data)[0], fp16_const);

    /* cast(x = x, dtype = x_to_fp16_dtype_0) -> tensor<fp16, [1]> x_to_fp16, name cast_1 */
    const struct mil_op *cast = find_op(fn, "x_to_fp16");
    assert_string_equal(str_attr(cast, "name"), "cast_1");
    assert_int_equal(cast->n_args, 2);
    const struct mil_arg *ax = anml__mil_op_arg(cast, "x");
    const struct mil_arg *ad = anml__mil_op_arg(cast, "dtype");
    assert_non_null(ax);
    assert_non_null(ad);
    assert_int_equal(ax->n_bindings, 1);
    assert_string_equal(ax->bindings[0].name, "x");
    assert_null(ax->bindings[0].value);
    assert_string_equal(ad->bindings[0].name, "x_to_fp16_dtype_0");
    assert_int_equal(cast->results[0].type->dtype, ANML_DTYPE_F16);

    /* arithmetic op binds y to the fp16 const */
    char rname[64];
    snprintf(rname, sizeof rname, "%s_cast_fp16", name);
    const struct mil_op *ar = find_op(fn, rname);
    assert_string_equal(anml__mil_op_arg(ar, "x")->bindings[0].name, "x_to_fp16");
    assert_string_equal(anml__mil_op_arg(ar, "y")->bindings[0].name, cname);

    /* the final cast produces the function output in fp32, named cast_0 */
    const struct mil_op *out = find_op(fn, name);
    assert_string_equal(str_attr(out, "name"), "cast_0");
    assert_int_equal(out->results[0].type->dtype, ANML_DTYPE_F32);
}

static void test_anemll_profile_multifunction(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    const char *rel = "fixtures/mil-samples/anemll-profile_multifunction.mlpackage";
    char path[4096];
    snprintf(path, sizeof path, "%s", anml_test_shared_path(rel));

    /* tie the facts below to the decoded dump saved beside the sample */
    char dump_path[4200];
    snprintf(dump_path, sizeof dump_path, "%s.model.mlmodel.decoded.txt", path);
    char *dump = anml_test_read_file(dump_path, NULL);
    assert_non_null(dump);
    assert_non_null(strstr(dump, "1: 9 (v)"));
    assert_non_null(strstr(dump, "21: 'add_one'"));
    assert_non_null(strstr(dump, "2: 'CoreML8'"));
    assert_non_null(strstr(dump, "1: '\\x00@'")); /* fp16 2.0 */
    assert_non_null(strstr(dump, "1: '\\x00<'")); /* fp16 1.0 */
    free(dump);

    struct mil_program *prog = load_ok(path);
    assert_int_equal(prog->spec_version, 9);
    assert_int_equal(prog->n_attrs, 0); /* no buildInfo */
    assert_int_equal(prog->n_functions, 2);
    /* map entries keep file order: the non-default function comes first */
    assert_string_equal(prog->functions[0].name, "mul_two");
    assert_string_equal(prog->functions[1].name, "add_one");
    assert_true(prog->desc.multifunction);
    assert_string_equal(prog->desc.default_function, "add_one");
    assert_string_equal(anml__mil_default_function(prog), "add_one");
    assert_int_equal(prog->desc.n_functions, 2);
    assert_string_equal(prog->desc.functions[0].name, "add_one");
    assert_string_equal(prog->desc.functions[1].name, "mul_two");
    for (int i = 0; i < 2; i++) {
        const struct mil_function_desc *fd = &prog->desc.functions[i];
        assert_int_equal(fd->n_inputs, 1);
        assert_int_equal(fd->n_outputs, 1);
        assert_int_equal(fd->n_states, 0);
        assert_string_equal(fd->inputs[0].name, "x");
        assert_string_equal(fd->outputs[0].name, fd->name);
        assert_int_equal(fd->inputs[0].kind, MIL_FEATURE_MULTIARRAY);
        assert_int_equal(fd->inputs[0].dtype, ANML_DTYPE_F32);
        assert_int_equal(fd->inputs[0].rank, 1);
        assert_int_equal(fd->inputs[0].shape[0], 1);
        assert_int_equal(fd->outputs[0].dtype, ANML_DTYPE_F32);
    }
    assert_null(prog->desc.author);
    assert_int_equal(prog->desc.n_user, 0);
    check_profile_function(prog, "mul_two", "mul", 0x4000);
    check_profile_function(prog, "add_one", "add", 0x3c00);
    anml__mil_program_free(prog);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coreml_fixture_packages),
        cmocka_unit_test(test_anemll_profile_multifunction),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
