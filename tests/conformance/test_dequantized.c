/*
 * test_dequantized.c -- constexpr_lut_to_dense decoding against coremltools' own
 * materialization: for every fixture with a dequantized/index.json, every listed palettized
 * weight (package, function, op) is loaded from the real .mlpackage, materialized, and compared
 * byte for byte with the .npy coremltools wrote; the compressed descriptor must report the listed
 * shapes and decode every output-channel row to the same values. Every .npy file in each
 * dequantized/ directory must be listed and checked.
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coreml/constexpr.h"
#include "coreml/program.h"
#include "testutil.h"

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

static const char *op_name(const struct mil_op *op) {
    const struct mil_attr *a = anml__mil_op_attr(op, "name");
    if (a && a->value && a->value->kind == MIL_VALUE_TENSOR && a->value->n_elem == 1 &&
        a->value->type && a->value->type->dtype == ANML_DTYPE_STRING) {
        return ((char **)a->value->data)[0];
    }
    return op->n_results ? op->results[0].name : "";
}

static const struct mil_op *find_op(const struct mil_block *b, const char *name) {
    for (int32_t i = 0; i < b->n_ops; i++) {
        const struct mil_op *op = &b->ops[i];
        if (strcmp(op->type, "constexpr_lut_to_dense") == 0 &&
            (strcmp(op_name(op), name) == 0 ||
             (op->n_results && strcmp(op->results[0].name, name) == 0))) {
            return op;
        }
    }
    return NULL;
}

static int count_npy(const char *dir) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l > 4 && strcmp(e->d_name + l - 4, ".npy") == 0) {
            n++;
        }
    }
    closedir(d);
    return n;
}

static int64_t json_ints(const cJSON *arr, int64_t *out, int cap) {
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        assert_true(n < cap);
        out[n++] = (int64_t)it->valuedouble;
    }
    return n;
}

/* Checks one palettized weight; returns normally only when everything matched. */
static void check_weight(const struct mil_program *prog, const char *pkg, const char *fn_name,
                         const char *name, const cJSON *entry, const char *deq_dir) {
    const struct mil_function *fn = anml__mil_find_function(prog, fn_name);
    if (!fn) {
        fail_msg("%s: no function '%s'", pkg, fn_name);
    }
    const struct mil_op *op = find_op(&fn->block, name);
    if (!op) {
        fail_msg("%s/%s: no constexpr_lut_to_dense op '%s'", pkg, fn_name, name);
    }
    const cJSON *jfile = cJSON_GetObjectItemCaseSensitive(entry, "file");
    const cJSON *jshape = cJSON_GetObjectItemCaseSensitive(entry, "shape");
    const cJSON *jlut = cJSON_GetObjectItemCaseSensitive(entry, "lut_shape");
    const cJSON *jdtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    assert_true(cJSON_IsString(jfile) && cJSON_IsArray(jshape) && cJSON_IsArray(jlut));
    assert_string_equal(jdtype->valuestring, "float16");
    int64_t shape[ANML_LUT_MAX_RANK], lut_shape[ANML_LUT_MAX_RANK + 2];
    int rank = (int)json_ints(jshape, shape, ANML_LUT_MAX_RANK);
    int lut_rank = (int)json_ints(jlut, lut_shape, ANML_LUT_MAX_RANK + 2);

    char path[4096];
    snprintf(path, sizeof path, "%s/%s", deq_dir, jfile->valuestring);
    enum anml_dtype dt;
    int32_t nrank;
    int64_t dims[ANML_MAX_DIMS];
    void *want;
    size_t nbytes;
    struct anml_error err;
    memset(&err, 0, sizeof err);
    if (anml__npy_read(path, &dt, &nrank, dims, &want, &nbytes, &err) != ANML_OK) {
        fail_msg("%s: %s", path, err.msg);
    }
    assert_int_equal(dt, ANML_DTYPE_F16);
    assert_int_equal(nrank, rank);
    for (int k = 0; k < rank; k++) {
        assert_int_equal(dims[k], shape[k]);
    }

    /* dense materialization, byte-exact */
    uint8_t *got = malloc(nbytes ? nbytes : 1);
    assert_non_null(got);
    memset(got, 0xa5, nbytes);
    enum anml_status st = anml__constexpr_materialize(prog, op, got, nbytes, &err);
    if (st != ANML_OK) {
        fail_msg("%s/%s/%s: %s: %s", pkg, fn_name, name, err.where, err.msg);
    }
    if (memcmp(got, want, nbytes) != 0) {
        size_t i = 0;
        while (got[i] == ((uint8_t *)want)[i]) {
            i++;
        }
        fail_msg("%s/%s/%s: first difference at byte %zu", pkg, fn_name, name, i);
    }

    /* the compressed descriptor: listed shapes, and every row decodes to the same values */
    struct anml_lut_weight w;
    st = anml__constexpr_lut_from_op(prog, op, &w, &err);
    if (st != ANML_OK) {
        fail_msg("%s/%s/%s: %s", pkg, fn_name, name, err.msg);
    }
    assert_int_equal(w.rank, rank);
    assert_int_equal(lut_rank, rank + 2);
    for (int k = 0; k < rank; k++) {
        assert_int_equal(w.shape[k], shape[k]);
        assert_int_equal(w.lut_shape[k], lut_shape[k]);
    }
    assert_int_equal(w.n_entries, lut_shape[rank]);
    assert_int_equal(w.vector_size, lut_shape[rank + 1]);
    assert_int_equal(w.out_dtype, ANML_DTYPE_F16);
    assert_true(w.indices_packed || w.index_bits == 8);
    int64_t row = w.numel / shape[0];
    float *buf = malloc((size_t)row * sizeof(float));
    assert_non_null(buf);
    const uint16_t *h = want;
    for (int64_t r = 0; r < shape[0]; r++) {
        anml__lut_decode_f32(&w, r * row, row, buf);
        for (int64_t j = 0; j < row; j++) {
            float e = anml__fp16_to_fp32(h[r * row + j]);
            if (memcmp(&e, &buf[j], sizeof e) != 0) {
                fail_msg("%s/%s/%s: row %lld element %lld: %g != %g", pkg, fn_name, name,
                         (long long)r, (long long)j, (double)buf[j], (double)e);
            }
        }
    }
    /* an unaligned run across rows, in the stored dtype */
    if (w.numel > 7) {
        int64_t first = row / 2 + 3, n = w.numel - first - 1;
        uint16_t *raw = malloc((size_t)n * 2);
        assert_non_null(raw);
        anml__lut_decode_raw(&w, first, n, raw);
        assert_memory_equal(raw, h + first, (size_t)n * 2);
        free(raw);
    }
    free(buf);
    free(got);
    anml__free(want);
}

static void test_dequantized_fixtures(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    char coreml_dir[4096];
    snprintf(coreml_dir, sizeof coreml_dir, "%s", anml_test_shared_path("fixtures/coreml"));
    DIR *d = opendir(coreml_dir);
    assert_non_null(d);
    int fixtures = 0, total_listed = 0, total_checked = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') {
            continue;
        }
        char deq_dir[4096], index_path[4200];
        snprintf(deq_dir, sizeof deq_dir, "%s/%s/dequantized", coreml_dir, e->d_name);
        snprintf(index_path, sizeof index_path, "%s/index.json", deq_dir);
        FILE *f = fopen(index_path, "rb");
        if (!f) {
            continue;
        }
        fclose(f);
        fixtures++;
        cJSON *index = read_json(index_path);
        int listed = 0, checked = 0;
        const cJSON *pkg;
        cJSON_ArrayForEach(pkg, index) {
            char pkg_path[4400];
            snprintf(pkg_path, sizeof pkg_path, "%s/%s/model/%s", coreml_dir, e->d_name,
                     pkg->string);
            struct mil_program *prog = NULL;
            struct anml_error err;
            memset(&err, 0, sizeof err);
            if (anml__mil_load(pkg_path, &prog, &err) != ANML_OK) {
                fail_msg("loading %s: %s: %s", pkg_path, err.where, err.msg);
            }
            const cJSON *fn;
            cJSON_ArrayForEach(fn, pkg) {
                const cJSON *w;
                cJSON_ArrayForEach(w, fn) {
                    listed++;
                    check_weight(prog, pkg->string, fn->string, w->string, w, deq_dir);
                    checked++;
                }
            }
            anml__mil_program_free(prog);
        }
        cJSON_Delete(index);
        print_message("%s: %d palettized weights checked\n", e->d_name, checked);
        assert_int_equal(checked, listed);
        /* every .npy of the directory is listed exactly once */
        assert_int_equal(count_npy(deq_dir), listed);
        total_listed += listed;
        total_checked += checked;
    }
    closedir(d);
    /* qwen25-tiny-lut8 (42 weights) and qwen3-tiny-lut (96 weights) */
    assert_int_equal(fixtures, 2);
    assert_int_equal(total_checked, total_listed);
    assert_int_equal(total_checked, 42 + 96);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dequantized_fixtures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
