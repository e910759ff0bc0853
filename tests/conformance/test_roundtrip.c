/* test_roundtrip.c -- every genuine fixture survives load -> write .mlmodelc -> load unchanged:
 * anml__mil_program_equal holds, every blob's bytes are identical, and writing the re-read
 * program again gives byte-identical model.mil, metadata.json and weights/weight.bin. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coreml/blob.h"
#include "coreml/program.h"
#include "testutil.h"

/* ---- helpers ---- */

static struct mil_program *load_or_fail(const char *path) {
    struct mil_program *p = NULL;
    struct anml_error err = { 0 };
    if (anml__mil_load(path, &p, &err) != ANML_OK) {
        fail_msg("loading %s failed: %s: %s", path, err.where, err.msg);
    }
    return p;
}

static void write_or_fail(const struct mil_program *p, const char *dir) {
    struct anml_error err = { 0 };
    if (anml__mil_write_mlmodelc(p, dir, &err) != ANML_OK) {
        fail_msg("writing %s failed: %s: %s", dir, err.where, err.msg);
    }
}

static char *join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *r = malloc(n);
    assert_non_null(r);
    snprintf(r, n, "%s/%s", a, b);
    return r;
}

/* Both present and identical, or both absent. */
static void assert_same_file(const char *d1, const char *d2, const char *rel, const char *model) {
    char *p1 = join(d1, rel);
    char *p2 = join(d2, rel);
    size_t n1 = 0, n2 = 0;
    char *a = anml_test_read_file(p1, &n1);
    char *b = anml_test_read_file(p2, &n2);
    if ((a == NULL) != (b == NULL)) {
        fail_msg("%s: %s written only once", model, rel);
    }
    if (a && (n1 != n2 || memcmp(a, b, n1) != 0)) {
        size_t i = 0;
        while (i < n1 && i < n2 && a[i] == b[i]) {
            i++;
        }
        fail_msg("%s: second write of %s differs at byte %zu (%zu vs %zu bytes)", model, rel, i, n1,
                 n2);
    }
    free(a);
    free(b);
    free(p1);
    free(p2);
}

/* Every blob value of a program, in walk order (functions in the given name order). */
struct blob_list {
    const struct mil_value **v;
    size_t n, cap;
};

static void collect_value(struct blob_list *l, const struct mil_value *v) {
    if (!v) {
        return;
    }
    if (v->kind == MIL_VALUE_BLOB) {
        if (l->n == l->cap) {
            l->cap = l->cap ? l->cap * 2 : 64;
            l->v = realloc(l->v, l->cap * sizeof *l->v);
            assert_non_null(l->v);
        }
        l->v[l->n++] = v;
    }
    for (int32_t i = 0; i < v->n_items; i++) {
        collect_value(l, v->items[i]);
    }
}

static const struct mil_arg *arg_named(const struct mil_op *op, const char *name) {
    return anml__mil_op_arg(op, name);
}

/* Arguments and attributes are visited in the order of `ref` (the other program's op), so the two
 * lists line up even when the readers store them in different orders. */
static void collect_block(struct blob_list *l, const struct mil_block *b,
                          const struct mil_block *ref) {
    for (int32_t i = 0; i < b->n_ops && i < ref->n_ops; i++) {
        const struct mil_op *op = &b->ops[i];
        const struct mil_op *rop = &ref->ops[i];
        for (int32_t k = 0; k < rop->n_args; k++) {
            const struct mil_arg *a = arg_named(op, rop->args[k].name);
            for (int32_t j = 0; a && j < a->n_bindings; j++) {
                collect_value(l, a->bindings[j].value);
            }
        }
        for (int32_t k = 0; k < rop->n_attrs; k++) {
            const struct mil_attr *a = anml__mil_op_attr(op, rop->attrs[k].name);
            collect_value(l, a ? a->value : NULL);
        }
        for (int32_t k = 0; k < op->n_blocks && k < rop->n_blocks; k++) {
            collect_block(l, &op->blocks[k], &rop->blocks[k]);
        }
    }
}

static void collect_program(struct blob_list *l, const struct mil_program *p,
                            const struct mil_program *ref) {
    for (int32_t i = 0; i < ref->n_functions; i++) {
        const struct mil_function *f = anml__mil_find_function(p, ref->functions[i].name);
        assert_non_null(f);
        for (int32_t k = 0; k < f->n_attrs; k++) {
            collect_value(l, f->attrs[k].value);
        }
        collect_block(l, &f->block, &ref->functions[i].block);
    }
}

/* Compares the bytes of every blob of a with the matching blob of b. Returns the count. */
static size_t assert_blobs_identical(const struct mil_program *a, const struct mil_program *b,
                                     const char *model) {
    struct blob_list la = { 0 }, lb = { 0 };
    collect_program(&la, a, a);
    collect_program(&lb, b, a);
    if (la.n != lb.n) {
        fail_msg("%s: %zu blob values before, %zu after", model, la.n, lb.n);
    }
    for (size_t i = 0; i < la.n; i++) {
        struct mil_blob_view va, vb;
        struct anml_error err = { 0 };
        if (anml__blob_resolve(a->blobs, la.v[i], &va, &err) != ANML_OK ||
            anml__blob_resolve(b->blobs, lb.v[i], &vb, &err) != ANML_OK) {
            fail_msg("%s: blob #%zu does not resolve: %s: %s", model, i, err.where, err.msg);
        }
        assert_int_equal(va.dtype, vb.dtype);
        assert_int_equal(va.n_elem, vb.n_elem);
        assert_int_equal(va.padding_bits, vb.padding_bits);
        assert_int_equal(va.size_bytes, vb.size_bytes);
        if (va.size_bytes && memcmp(va.data, vb.data, (size_t)va.size_bytes) != 0) {
            fail_msg("%s: blob #%zu (offset %llu -> %llu) bytes differ", model, i,
                     (unsigned long long)va.record_offset, (unsigned long long)vb.record_offset);
        }
        /* the written file holds the blob at a 64-aligned record, data right behind it */
        assert_int_equal(vb.record_offset % 64, 0);
        assert_int_equal(vb.data_offset, vb.record_offset + 64);
    }
    size_t n = la.n;
    free(la.v);
    free(lb.v);
    return n;
}

/* The full round trip of one model; returns the number of blob values checked. */
static size_t roundtrip(const char *path, const char *tag) {
    struct mil_program *a = load_or_fail(path);
    char *d1 = anml_test_tmpdir(tag);
    char *d2 = anml_test_tmpdir(tag);
    assert_non_null(d1);
    assert_non_null(d2);
    write_or_fail(a, d1);
    struct mil_program *b = load_or_fail(d1);
    char why[2048];
    if (!anml__mil_program_equal(a, b, why, sizeof why)) {
        fail_msg("%s: differs after write + read: %s", path, why);
    }
    size_t n_blobs = assert_blobs_identical(a, b, path);
    write_or_fail(b, d2);
    assert_same_file(d1, d2, "model.mil", path);
    assert_same_file(d1, d2, "metadata.json", path);
    assert_same_file(d1, d2, "weights/weight.bin", path);
    /* and the second write reads back equal too */
    struct mil_program *c = load_or_fail(d2);
    if (!anml__mil_program_equal(b, c, why, sizeof why)) {
        fail_msg("%s: differs after the second write: %s", path, why);
    }
    anml__mil_program_free(a);
    anml__mil_program_free(b);
    anml__mil_program_free(c);
    free(d1);
    free(d2);
    return n_blobs;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted names in dir ending with suffix (caller frees each and the array). */
static char **list_dir(const char *dir, const char *suffix, size_t *n) {
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) {
        return NULL;
    }
    size_t cap = 16;
    char **names = malloc(cap * sizeof *names);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t ln = strlen(e->d_name), ls = strlen(suffix);
        if (e->d_name[0] == '.' || ln < ls || strcmp(e->d_name + ln - ls, suffix) != 0) {
            continue;
        }
        if (*n == cap) {
            cap *= 2;
            names = realloc(names, cap * sizeof *names);
        }
        names[(*n)++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, *n, sizeof *names, cmp_str);
    return names;
}

/* ---- tests ---- */

static void test_roundtrip_every_fixture_mlpackage(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    char *root = strdup(anml_test_shared_path("fixtures/coreml"));
    size_t n_sets = 0;
    char **sets = list_dir(root, "", &n_sets);
    assert_non_null(sets);
    size_t n_models = 0, n_blobs = 0;
    for (size_t s = 0; s < n_sets; s++) {
        char *set = join(root, sets[s]);
        char *model_dir = join(set, "model");
        size_t n = 0;
        char **pkgs = list_dir(model_dir, ".mlpackage", &n);
        for (size_t i = 0; i < n; i++) {
            char *path = join(model_dir, pkgs[i]);
            size_t nb = roundtrip(path, "rt-pkg");
            print_message("round trip ok: %s/%s (%zu blob values)\n", sets[s], pkgs[i], nb);
            n_blobs += nb;
            n_models++;
            free(path);
            free(pkgs[i]);
        }
        free(pkgs);
        free(model_dir);
        free(set);
        free(sets[s]);
    }
    free(sets);
    free(root);
    /* the fixture sets hold 23 packages, all with weights; never let a missing set pass */
    assert_true(n_models >= 20);
    assert_true(n_blobs > 0);
}

/* The real compiler-produced .mlmodelc samples (no weights) and the other small real files. */
static void test_roundtrip_mil_samples(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    static const char *const samples[] = {
        "apple_coremltools_add_model.mlmodelc",
        "rebeckerspecialties_mlmodelc-export/flexible-enumerated",
        "rebeckerspecialties_mlmodelc-export/flexible-gather",
        "rebeckerspecialties_mlmodelc-export/flexible-multifunction",
        "rebeckerspecialties_mlmodelc-export/flexible-range",
        "rebeckerspecialties_mlmodelc-export/fp16-subnormal-cast",
        "rebeckerspecialties_mlmodelc-export/neg-0d-scalar",
        "anemll-profile_multifunction.mlpackage",
        "handwritten-accepted/mlx-omarchy_probe_concat-values-tuple.mil",
        "handwritten-accepted/mlx-omarchy_probe_softmax.mil",
    };
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        char rel[512];
        snprintf(rel, sizeof rel, "fixtures/mil-samples/%s", samples[i]);
        char *path = strdup(anml_test_shared_path(rel));
        assert_int_equal(roundtrip(path, "rt-sample"), 0);
        free(path);
    }
}

/* The fp16 literals of the subnormal sample keep their exact compiler spelling. */
static void test_roundtrip_keeps_compiler_literals(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    const char *rel =
        "fixtures/mil-samples/rebeckerspecialties_mlmodelc-export/fp16-subnormal-cast";
    char *src = strdup(anml_test_shared_path(rel));
    struct mil_program *p = load_or_fail(src);
    char *d = anml_test_tmpdir("rt-literals");
    write_or_fail(p, d);
    char *orig_path = join(src, "model.mil");
    char *out_path = join(d, "model.mil");
    char *orig = anml_test_read_file(orig_path, NULL);
    char *out = anml_test_read_file(out_path, NULL);
    assert_non_null(orig);
    assert_non_null(out);
    /* every statement line of the compiler's output appears verbatim in ours */
    int n_lines = 0;
    for (char *line = orig; line && *line;) {
        char *nl = strchr(line, '\n');
        if (nl) {
            *nl = '\0';
        }
        if (strstr(line, " = ") && !strstr(line, "buildInfo")) {
            if (!strstr(out, line)) {
                fail_msg("line not reproduced:\n%s\nin:\n%s", line, out);
            }
            n_lines++;
        }
        line = nl ? nl + 1 : NULL;
    }
    assert_int_equal(n_lines, 3);
    anml__mil_program_free(p);
    free(orig);
    free(out);
    free(orig_path);
    free(out_path);
    free(d);
    free(src);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_every_fixture_mlpackage),
        cmocka_unit_test(test_roundtrip_mil_samples),
        cmocka_unit_test(test_roundtrip_keeps_compiler_literals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
