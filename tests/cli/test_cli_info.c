/*
 * test_cli_info.c -- runs the built `anml info` on the genuine ANEMLL fixtures and checks what it
 * reports against each fixture's packages.json (written by the fixture generator from
 * coremltools, independently of anml): function names, default function, inputs / outputs /
 * states with dtypes and shapes, opsets, the MIL op histogram and the user metadata; for the
 * fixture model directories also the assembled model (`model` object and the text header) against
 * the fixture's index.json (sizes, chunks, slices, LUT widths, KV state from the HF config). Also the
 * hand-written examples/hello.mlmodelc, and the error contract: exit 1 with exactly one line on
 * stderr starting "anml info: ".
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

/* ---- helpers ---- */

struct run {
    int rc;
    char *out;
    char *err;
};

static struct run run_info(const char *args) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "'%s' info %s", ANML_CLI_PATH, args);
    struct run r = { 0 };
    r.rc = anml_test_run(cmd, &r.out, &r.err);
    assert_int_not_equal(r.rc, -1);
    assert_non_null(r.out);
    assert_non_null(r.err);
    return r;
}

static void run_free(struct run *r) {
    free(r->out);
    free(r->err);
}

/* Runs `anml info --json 'path'`, requires success and returns the parsed object. */
static cJSON *info_json(const char *path) {
    char args[4096];
    snprintf(args, sizeof args, "--json '%s'", path);
    struct run r = run_info(args);
    if (r.rc != 0) {
        print_message("anml info --json %s failed (%d): %s\n", path, r.rc, r.err);
    }
    assert_int_equal(r.rc, 0);
    cJSON *j = cJSON_Parse(r.out);
    if (!j) {
        print_message("not JSON: %.400s\n", r.out);
    }
    assert_non_null(j);
    assert_true(cJSON_IsObject(j));
    run_free(&r);
    return j;
}

/* Requires the failure contract: exit 1, nothing on stdout, exactly one stderr line. */
static void expect_failure(const char *args) {
    struct run r = run_info(args);
    print_message("anml info %s -> %d, stderr: %s", args, r.rc, r.err);
    assert_int_equal(r.rc, 1);
    assert_string_equal(r.out, "");
    assert_true(strncmp(r.err, "anml info: ", 11) == 0);
    size_t len = strlen(r.err);
    assert_true(len > 11);
    assert_int_equal(r.err[len - 1], '\n');
    assert_null(memchr(r.err, '\n', len - 1));
    run_free(&r);
}

static cJSON *read_json(const char *path) {
    char *text = anml_test_read_file(path, NULL);
    if (!text) {
        fail_msg("cannot read %s", path);
    }
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) {
        fail_msg("cannot parse %s", path);
    }
    return j;
}

static const cJSON *get(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) {
        fail_msg("missing key \"%s\"", key);
    }
    return v;
}

static const char *get_str(const cJSON *o, const char *key) {
    const char *s = cJSON_GetStringValue(get(o, key));
    if (!s) {
        fail_msg("key \"%s\" is not a string", key);
    }
    return s;
}

static const cJSON *find_by_name(const cJSON *arr, const char *name) {
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "name"));
        if (n && strcmp(n, name) == 0) {
            return it;
        }
    }
    return NULL;
}

/* packages.json spells dtypes as the protobuf ArrayDataType names. */
static const char *fixture_dtype(const char *d) {
    if (strcmp(d, "FLOAT16") == 0) {
        return "fp16";
    }
    if (strcmp(d, "FLOAT32") == 0) {
        return "fp32";
    }
    if (strcmp(d, "DOUBLE") == 0) {
        return "fp64";
    }
    if (strcmp(d, "INT32") == 0) {
        return "int32";
    }
    if (strcmp(d, "INT8") == 0) {
        return "int8";
    }
    fail_msg("unexpected fixture dtype %s", d);
    return NULL;
}

static bool int_arrays_equal(const cJSON *a, const cJSON *b) {
    if (!cJSON_IsArray(a) || !cJSON_IsArray(b) || cJSON_GetArraySize(a) != cJSON_GetArraySize(b)) {
        return false;
    }
    for (const cJSON *x = a->child, *y = b->child; x && y; x = x->next, y = y->next) {
        if (!cJSON_IsNumber(x) || !cJSON_IsNumber(y) || x->valuedouble != y->valuedouble) {
            return false;
        }
    }
    return true;
}

static void print_json(const char *what, const cJSON *j) {
    char *s = cJSON_PrintUnformatted(j);
    print_message("%s: %s\n", what, s ? s : "(null)");
    cJSON_free(s);
}

/* Our feature list must hold exactly the fixture's features, with the same dtypes and shapes.
 * The fixture shape is the model description's default shape; the MIL signature shape we report
 * may have -1 where the description is flexible, so it is checked for compatibility. */
static void check_features(const char *ctx, const cJSON *ours, const cJSON *theirs) {
    if (cJSON_GetArraySize(ours) != cJSON_GetArraySize(theirs)) {
        print_json(ctx, ours);
        print_json("expected", theirs);
    }
    assert_int_equal(cJSON_GetArraySize(ours), cJSON_GetArraySize(theirs));
    const cJSON *t;
    cJSON_ArrayForEach(t, theirs) {
        const char *name = get_str(t, "name");
        const cJSON *o = find_by_name(ours, name);
        if (!o) {
            fail_msg("%s: feature %s missing", ctx, name);
        }
        assert_string_equal(get_str(o, "dtype"), fixture_dtype(get_str(t, "dtype")));
        const cJSON *want = get(t, "shape");
        const cJSON *shape = get(o, "shape");
        const cJSON *def = cJSON_GetObjectItemCaseSensitive(o, "default_shape");
        const cJSON *got = def ? def : shape;
        if (!int_arrays_equal(got, want)) {
            print_json(ctx, o);
            print_json("expected", t);
            fail_msg("%s: shape of %s differs", ctx, name);
        }
        if (cJSON_GetArraySize(want) > 0) {
            assert_true(cJSON_IsArray(shape));
            assert_int_equal(cJSON_GetArraySize(shape), cJSON_GetArraySize(want));
            for (const cJSON *x = shape->child, *y = want->child; x && y;
                 x = x->next, y = y->next) {
                if (x->valuedouble != -1 && x->valuedouble != y->valuedouble) {
                    print_json(ctx, o);
                    fail_msg("%s: MIL shape of %s contradicts the description", ctx, name);
                }
            }
        }
        const cJSON *want_enum = cJSON_GetObjectItemCaseSensitive(t, "enumerated_shapes");
        if (want_enum) {
            const cJSON *got_enum = get(o, "enumerated_shapes");
            assert_int_equal(cJSON_GetArraySize(got_enum), cJSON_GetArraySize(want_enum));
            for (const cJSON *x = got_enum->child, *y = want_enum->child; x && y;
                 x = x->next, y = y->next) {
                assert_true(int_arrays_equal(x, y));
            }
        }
    }
}

/* ---- weight.bin, walked independently of anml (coreml-format.md §5) ---- */

static uint64_t le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) {
        v = (v << 8) | p[i];
    }
    return v;
}

/* {"<dtype>": bytes, ..., "total": bytes} over every blob record in the file. */
static cJSON *walk_weight_file(const char *path) {
    static const char *const k_names[] = { NULL,    "fp16",   "fp32",  "uint8", "int8",  "bf16",
                                           "int16", "uint16", "int4",  "uint1", "uint2", "uint4",
                                           "uint3", "uint6",  "int32", "uint32" };
    size_t size = 0;
    unsigned char *d = (unsigned char *)anml_test_read_file(path, &size);
    assert_non_null(d);
    assert_true(size >= 64);
    uint64_t count = le(d, 4);
    assert_int_equal(le(d + 4, 4), 2);
    uint64_t per[16] = { 0 };
    uint64_t total = 0, off = 64;
    for (uint64_t i = 0; i < count; i++) {
        assert_true(off + 64 <= size);
        assert_int_equal(le(d + off, 4), 0xDEADBEEFu);
        uint64_t code = le(d + off + 4, 4);
        uint64_t bytes = le(d + off + 8, 8);
        uint64_t data = le(d + off + 16, 8);
        assert_true(code > 0 && code < 16);
        per[code] += bytes;
        total += bytes;
        off = (data + bytes + 63) / 64 * 64;
    }
    free(d);
    cJSON *o = cJSON_CreateObject();
    for (int c = 1; c < 16; c++) {
        if (per[c] > 0) {
            cJSON_AddNumberToObject(o, k_names[c], (double)per[c]);
        }
    }
    cJSON_AddNumberToObject(o, "total", (double)total);
    return o;
}

/* ---- one package ---- */

static void check_package(const char *pkg_path, const char *pkg_name, const cJSON *want,
                          const cJSON *got) {
    print_message("checking %s\n", pkg_name);
    assert_string_equal(get_str(got, "format"), "mlpackage");
    assert_true(cJSON_GetNumberValue(get(got, "specification_version")) ==
                cJSON_GetNumberValue(get(want, "specificationVersion")));

    /* functions: the multifunction fixtures list them under "functions", single-function ones
     * carry inputs/outputs/states at the top and name their function in program_functions */
    const cJSON *fns = get(got, "functions");
    const cJSON *pf = get(want, "program_functions");
    assert_int_equal(cJSON_GetArraySize(fns), cJSON_GetArraySize(pf));
    const cJSON *want_fns = cJSON_GetObjectItemCaseSensitive(want, "functions");
    if (want_fns) {
        assert_string_equal(get_str(got, "default_function"), get_str(want, "defaultFunctionName"));
        assert_int_equal(cJSON_GetArraySize(fns), cJSON_GetArraySize(want_fns));
    } else {
        assert_int_equal(cJSON_GetArraySize(pf), 1);
        assert_string_equal(get_str(got, "default_function"), pf->child->string);
    }
    cJSON *ops_sum = cJSON_CreateObject();
    const cJSON *p;
    cJSON_ArrayForEach(p, pf) {
        char ctx[512];
        const cJSON *fn = find_by_name(fns, p->string);
        if (!fn) {
            fail_msg("%s: function %s missing", pkg_name, p->string);
        }
        assert_string_equal(get_str(fn, "opset_coreml"), get_str(p, "opset"));
        const cJSON *wf = want_fns ? get(want_fns, p->string) : want;
        snprintf(ctx, sizeof ctx, "%s %s inputs", pkg_name, p->string);
        check_features(ctx, get(fn, "inputs"), get(wf, "inputs"));
        snprintf(ctx, sizeof ctx, "%s %s outputs", pkg_name, p->string);
        check_features(ctx, get(fn, "outputs"), get(wf, "outputs"));
        snprintf(ctx, sizeof ctx, "%s %s states", pkg_name, p->string);
        check_features(ctx, get(fn, "states"), get(wf, "states"));
        /* the fixture histogram covers the whole package, all functions */
        const cJSON *op;
        cJSON_ArrayForEach(op, get(fn, "ops")) {
            cJSON *acc = cJSON_GetObjectItemCaseSensitive(ops_sum, op->string);
            if (acc) {
                cJSON_SetNumberValue(acc, acc->valuedouble + op->valuedouble);
            } else {
                cJSON_AddNumberToObject(ops_sum, op->string, op->valuedouble);
            }
        }
    }
    const cJSON *hist = get(want, "op_histogram");
    if (cJSON_GetArraySize(ops_sum) != cJSON_GetArraySize(hist)) {
        print_json("ops", ops_sum);
        print_json("expected", hist);
    }
    assert_int_equal(cJSON_GetArraySize(ops_sum), cJSON_GetArraySize(hist));
    const cJSON *h;
    cJSON_ArrayForEach(h, hist) {
        const cJSON *mine = cJSON_GetObjectItemCaseSensitive(ops_sum, h->string);
        if (!mine || mine->valuedouble != h->valuedouble) {
            fail_msg("%s: op %s: got %g, want %g", pkg_name, h->string,
                     mine ? mine->valuedouble : 0, h->valuedouble);
        }
    }
    cJSON_Delete(ops_sum);

    /* metadata: every user-defined key (com.anemll.* and the coremltools ones) and the
     * description fields */
    const cJSON *meta = get(got, "metadata");
    const cJSON *kv;
    cJSON_ArrayForEach(kv, get(want, "metadata")) {
        const cJSON *mine = cJSON_GetObjectItemCaseSensitive(meta, kv->string);
        if (!mine || !cJSON_IsString(mine) || strcmp(mine->valuestring, kv->valuestring) != 0) {
            fail_msg("%s: metadata %s: got %s, want %s", pkg_name, kv->string,
                     mine && cJSON_IsString(mine) ? mine->valuestring : "(missing)",
                     kv->valuestring);
        }
    }
    assert_string_equal(get_str(meta, "author"), get_str(want, "author"));
    assert_string_equal(get_str(meta, "version"), get_str(want, "versionString"));
    assert_string_equal(get_str(meta, "short_description"), get_str(want, "shortDescription"));

    /* weights: every fixture has weights; the per-dtype entries add up to the total, and
     * coremltools writes exactly the blobs the program references (shared ones once), so they
     * equal what a walk over weight.bin's records finds */
    const cJSON *w = get(got, "weights");
    double total = cJSON_GetNumberValue(get(w, "total"));
    double sum = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, w) {
        if (strcmp(e->string, "total") != 0) {
            assert_true(e->valuedouble > 0);
            sum += e->valuedouble;
        }
    }
    assert_true(total > 0);
    assert_true(sum == total);
    const cJSON *wbin = get(get(want, "files"), "Data/com.apple.CoreML/weights/weight.bin");
    assert_true(total < cJSON_GetNumberValue(get(wbin, "bytes")));
    char wpath[4096];
    snprintf(wpath, sizeof wpath, "%s/Data/com.apple.CoreML/weights/weight.bin", pkg_path);
    cJSON *walked = walk_weight_file(wpath);
    if (!cJSON_Compare(walked, w, 1)) {
        print_json("weights", w);
        print_json("weight.bin records", walked);
        fail_msg("%s: weight bytes differ from weight.bin", pkg_name);
    }
    cJSON_Delete(walked);

    /* text mode names every function */
    char args[4096];
    snprintf(args, sizeof args, "'%s'", pkg_path);
    struct run r = run_info(args);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, "");
    cJSON_ArrayForEach(p, pf) {
        char needle[256];
        snprintf(needle, sizeof needle, "function %s:", p->string);
        if (!strstr(r.out, needle)) {
            fail_msg("%s: text output lacks \"%s\":\n%s", pkg_name, needle, r.out);
        }
    }
    run_free(&r);
}

/* ---- fixture discovery ---- */

/* Names of the fixture model sets (coreml/<name>/packages.json), sorted; NULL-terminated. */
static char **fixture_sets(void) {
    const char *root = anml_test_shared_path("fixtures/coreml");
    char rootbuf[4096];
    snprintf(rootbuf, sizeof rootbuf, "%s", root);
    DIR *d = opendir(rootbuf);
    assert_non_null(d);
    char **names = calloc(64, sizeof *names);
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 63) {
        char p[4096];
        struct stat st;
        snprintf(p, sizeof p, "%s/%s/packages.json", rootbuf, e->d_name);
        if (e->d_name[0] != '.' && stat(p, &st) == 0) {
            names[n++] = strdup(e->d_name);
        }
    }
    closedir(d);
    for (size_t i = 1; i < n; i++) { /* insertion sort: a handful of names */
        for (size_t j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    }
    assert_true(n > 0);
    return names;
}

static void free_names(char **names) {
    for (size_t i = 0; names[i]; i++) {
        free(names[i]);
    }
    free(names);
}

static void test_fixture_packages(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    char **sets = fixture_sets();
    int n_checked = 0;
    for (size_t s = 0; sets[s]; s++) {
        char rel[1024];
        snprintf(rel, sizeof rel, "fixtures/coreml/%s/packages.json", sets[s]);
        cJSON *pk = read_json(anml_test_shared_path(rel));
        const cJSON *pkg;
        cJSON_ArrayForEach(pkg, pk) {
            char prel[2048], path[4096];
            snprintf(prel, sizeof prel, "fixtures/coreml/%s/model/%s", sets[s], pkg->string);
            snprintf(path, sizeof path, "%s", anml_test_shared_path(prel));
            cJSON *got = info_json(path);
            check_package(path, pkg->string, pkg, got);
            cJSON_Delete(got);
            n_checked++;
        }
        cJSON_Delete(pk);
    }
    free_names(sets);
    print_message("%d packages checked\n", n_checked);
    assert_true(n_checked >= 5);
}

/* The assembled model (`model` object) against the fixture's index.json entry and packages.json
 * (both written by the fixture generator, independently of anml). */
static void check_model_object(const char *dir, const cJSON *model, const cJSON *want,
                               const cJSON *pk) {
    const cJSON *hf = get(want, "hf_config");
    assert_string_equal(get_str(model, "architecture"), get_str(want, "architecture"));
    /* the fixtures' meta.yaml came from ANEMLL 0.3.4's generate_meta_yaml.py (README) */
    assert_string_equal(get_str(model, "meta_version"), "0.3.4");
    static const char *const same[][2] = {
        { "num_chunks", "num_chunks" },         { "context_length", "context_length" },
        { "batch_size", "batch_size" },         { "logit_slices", "split_lm_head" },
        { "lut_embeddings", "lut_embeddings" }, { "lut_ffn", "lut_ffn" },
        { "lut_lmhead", "lut_lmhead" },
    };
    for (size_t i = 0; i < sizeof same / sizeof same[0]; i++) {
        const cJSON *a = get(model, same[i][0]);
        const cJSON *b = get(want, same[i][1]);
        if (!cJSON_Compare(a, b, 1)) {
            fail_msg("%s: model.%s differs from index.json %s", dir, same[i][0], same[i][1]);
        }
    }
    assert_true(get(model, "hidden_size")->valuedouble == get(hf, "hidden_size")->valuedouble);
    assert_true(get(model, "vocab_size")->valuedouble == get(hf, "vocab_size")->valuedouble);
    assert_true(get(model, "state_length")->valuedouble == get(hf, "state_length")->valuedouble);
    /* KV state [2 * layers, kv heads, state length, head dim] (README) */
    const cJSON *st = get(model, "state");
    assert_string_equal(get_str(st, "name"), "model_model_kv_cache_0");
    char shape[128];
    snprintf(shape, sizeof shape, "[%d, %d, %d, %d]", 2 * get(hf, "num_hidden_layers")->valueint,
             get(hf, "num_key_value_heads")->valueint, get(hf, "state_length")->valueint,
             get(hf, "head_dim")->valueint);
    cJSON *want_shape = cJSON_Parse(shape);
    assert_true(cJSON_Compare(get(st, "shape"), want_shape, 1));
    cJSON_Delete(want_shape);
    assert_true(cJSON_IsNull(get(model, "tokenizer_dir"))); /* the fixtures ship no tokenizer */

    /* components: embeddings, the combined chunks in order, the LM head; each a fixture
     * package whose functions (packages.json) are the ones named */
    const cJSON *comps = get(model, "components");
    int n_chunks = get(want, "num_chunks")->valueint;
    assert_int_equal(cJSON_GetArraySize(comps), n_chunks + 2);
    const char *prefix = get_str(model, "model_prefix");
    int k = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, comps) {
        const char *role = get_str(c, "role");
        const char *path = get_str(c, "path");
        const char *file = strrchr(path, '/') + 1;
        assert_true(strncmp(path, dir, strlen(dir)) == 0);
        const cJSON *pkg = get(pk, file);
        const cJSON *pf = get(pkg, "program_functions");
        char want_name[256];
        if (k == 0) {
            assert_string_equal(role, "embeddings");
            snprintf(want_name, sizeof want_name, "%s_embeddings", prefix);
        } else if (k == n_chunks + 1) {
            assert_string_equal(role, "lm_head");
            snprintf(want_name, sizeof want_name, "%s_lm_head", prefix);
        } else {
            assert_string_equal(role, "ffn");
            assert_int_equal(get(c, "chunk")->valueint, k);
            snprintf(want_name, sizeof want_name, "_chunk_%02dof%02d.mlpackage", k, n_chunks);
            assert_non_null(strstr(file, want_name));
            snprintf(want_name, sizeof want_name, "%s_FFN_PF", prefix);
            assert_non_null(get(pf, get_str(c, "prefill_function")));
            assert_string_equal(get_str(c, "prefill_function"), "prefill");
            assert_true(cJSON_IsNull(get(c, "prefill_path")));
        }
        assert_true(strncmp(file, want_name, strlen(want_name)) == 0);
        assert_non_null(get(pf, get_str(c, "infer_function")));
        k++;
    }
}

static void test_fixture_model_dirs(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    char **sets = fixture_sets();
    for (size_t s = 0; sets[s]; s++) {
        char rel[1024], dir[4096];
        snprintf(rel, sizeof rel, "fixtures/coreml/%s/packages.json", sets[s]);
        cJSON *pk = read_json(anml_test_shared_path(rel));
        snprintf(rel, sizeof rel, "fixtures/coreml/%s/model", sets[s]);
        snprintf(dir, sizeof dir, "%s", anml_test_shared_path(rel));
        print_message("checking model directory %s\n", dir);

        cJSON *got = info_json(dir);
        assert_string_equal(get_str(got, "path"), dir);
        snprintf(rel, sizeof rel, "fixtures/coreml/index.json");
        cJSON *index = read_json(anml_test_shared_path(rel));
        const cJSON *want_model = get(get(index, "models"), sets[s]);
        check_model_object(dir, get(got, "model"), want_model, pk);
        const cJSON *comps = get(got, "components");
        assert_int_equal(cJSON_GetArraySize(comps), cJSON_GetArraySize(pk));
        const char *prev = "";
        const cJSON *c;
        cJSON_ArrayForEach(c, comps) {
            const char *file = get_str(c, "file");
            assert_true(strcmp(prev, file) < 0); /* sorted by name */
            prev = file;
            const cJSON *want = get(pk, file);
            const cJSON *fns = get(c, "functions");
            const cJSON *pf = get(want, "program_functions");
            assert_int_equal(cJSON_GetArraySize(fns), cJSON_GetArraySize(pf));
            const cJSON *p;
            cJSON_ArrayForEach(p, pf) {
                assert_non_null(find_by_name(fns, p->string));
            }
            assert_true(cJSON_GetNumberValue(get(get(c, "weights"), "total")) > 0);
        }

        char args[4096];
        snprintf(args, sizeof args, "'%s'", dir);
        struct run r = run_info(args);
        assert_int_equal(r.rc, 0);
        /* text mode: the assembled model first, then the components */
        char line[256];
        assert_true(strncmp(r.out, "ANEMLL model ", 13) == 0);
        snprintf(line, sizeof line, "  chunks: %d\n", get(want_model, "num_chunks")->valueint);
        assert_non_null(strstr(r.out, line));
        snprintf(line, sizeof line, "  context length: %d\n",
                 get(want_model, "context_length")->valueint);
        assert_non_null(strstr(r.out, line));
        snprintf(line, sizeof line, " in %d logit slices\n",
                 get(want_model, "split_lm_head")->valueint);
        assert_non_null(strstr(r.out, line));
        assert_true(strstr(r.out, "ANEMLL model ") < strstr(r.out, "model directory "));
        const cJSON *pkg;
        cJSON_ArrayForEach(pkg, pk) {
            if (!strstr(r.out, pkg->string)) {
                fail_msg("text output for %s lacks %s", dir, pkg->string);
            }
        }
        run_free(&r);
        cJSON_Delete(index);
        cJSON_Delete(got);
        cJSON_Delete(pk);
    }
    free_names(sets);
}

/* The same program read from text: each fixture package converted to a .mlmodelc by
 * `anml convert` must describe identically (metadata.json carries the functions, states,
 * enumerated shapes and user metadata that the protobuf description held). */
static void test_converted_mlmodelc(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    char **sets = fixture_sets();
    char *tmp = anml_test_tmpdir("cli-info-conv");
    assert_non_null(tmp);
    for (size_t s = 0; sets[s]; s++) {
        char rel[1024];
        snprintf(rel, sizeof rel, "fixtures/coreml/%s/packages.json", sets[s]);
        cJSON *pk = read_json(anml_test_shared_path(rel));
        const cJSON *pkg;
        cJSON_ArrayForEach(pkg, pk) {
            char src[4096], dst[4096], cmd[8192];
            snprintf(rel, sizeof rel, "fixtures/coreml/%s/model/%s", sets[s], pkg->string);
            snprintf(src, sizeof src, "%s", anml_test_shared_path(rel));
            snprintf(dst, sizeof dst, "%s/%s-%s.mlmodelc", tmp, sets[s], pkg->string);
            snprintf(cmd, sizeof cmd, "'%s' convert '%s' '%s' >/dev/null", ANML_CLI_PATH, src, dst);
            char *err = NULL;
            int rc = anml_test_run(cmd, NULL, &err);
            if (rc != 0) {
                fail_msg("anml convert %s failed: %s", src, err ? err : "");
            }
            free(err);
            cJSON *a = info_json(src);
            cJSON *b = info_json(dst);
            assert_string_equal(get_str(a, "format"), "mlpackage");
            assert_string_equal(get_str(b, "format"), "mlmodelc");
            const char *strip[] = { "path", "format" };
            for (size_t i = 0; i < 2; i++) {
                cJSON_DeleteItemFromObjectCaseSensitive(a, strip[i]);
                cJSON_DeleteItemFromObjectCaseSensitive(b, strip[i]);
            }
            if (!cJSON_Compare(a, b, 1)) {
                print_json("mlpackage", a);
                print_json("mlmodelc", b);
                fail_msg("%s: the converted .mlmodelc describes differently", pkg->string);
            }
            cJSON_Delete(a);
            cJSON_Delete(b);
        }
        cJSON_Delete(pk);
    }
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    assert_int_equal(system(cmd), 0);
    free(tmp);
    free_names(sets);
}

/* ---- the bundled sample ---- */

/* The expectations below are read off examples/hello.mlmodelc/model.mil and metadata.json, the
 * hand-written input files. */
static void test_hello(void **state) {
    (void)state;
    const char *path = ANML_SOURCE_DIR "/examples/hello.mlmodelc";
    cJSON *got = info_json(path);
    assert_string_equal(get_str(got, "format"), "mlmodelc");
    assert_true(cJSON_GetNumberValue(get(got, "specification_version")) == 9);
    assert_string_equal(get_str(got, "default_function"), "main");
    const cJSON *fns = get(got, "functions");
    assert_int_equal(cJSON_GetArraySize(fns), 1);
    const cJSON *fn = find_by_name(fns, "main");
    assert_non_null(fn);
    assert_string_equal(get_str(fn, "opset"), "ios18");
    assert_string_equal(get_str(fn, "opset_coreml"), "CoreML8");

    cJSON *want = cJSON_Parse("[{\"name\": \"x\", \"dtype\": \"FLOAT16\", \"shape\": [1, 4]}]");
    check_features("hello inputs", get(fn, "inputs"), want);
    cJSON_Delete(want);
    want = cJSON_Parse("[{\"name\": \"y\", \"dtype\": \"FLOAT16\", \"shape\": [1, 4]}]");
    check_features("hello outputs", get(fn, "outputs"), want);
    cJSON_Delete(want);
    assert_int_equal(cJSON_GetArraySize(get(fn, "states")), 0);

    /* sorted by count, then name */
    static const char *const k_ops[][2] = { { "const", "5" },       { "mul", "3" },
                                            { "add", "1" },         { "linear", "1" },
                                            { "reduce_mean", "1" }, { "rsqrt", "1" } };
    const cJSON *ops = get(fn, "ops");
    assert_int_equal(cJSON_GetArraySize(ops), 6);
    const cJSON *op = ops->child;
    for (size_t i = 0; i < 6; i++, op = op->next) {
        assert_string_equal(op->string, k_ops[i][0]);
        assert_true(op->valuedouble == strtod(k_ops[i][1], NULL));
    }

    const cJSON *meta = get(got, "metadata");
    assert_string_equal(get_str(meta, "com.anemll.info"), "hand-written anml sample");
    assert_string_equal(get_str(meta, "anml.example"), "hello");
    assert_string_equal(get_str(meta, "author"), "anml");
    assert_string_equal(get_str(meta, "version"), "1.0");
    /* every constant is immediate: no weight file */
    const cJSON *w = get(got, "weights");
    assert_int_equal(cJSON_GetArraySize(w), 1);
    assert_true(cJSON_GetNumberValue(get(w, "total")) == 0);
    cJSON_Delete(got);

    struct run r = run_info("'" ANML_SOURCE_DIR "/examples/hello.mlmodelc'");
    print_message("%s", r.out);
    assert_int_equal(r.rc, 0);
    assert_string_equal(r.err, "");
    assert_non_null(strstr(r.out, "function main: opset ios18 (CoreML8)"));
    assert_non_null(strstr(r.out, "x: fp16 [1, 4]"));
    assert_non_null(strstr(r.out, "y: fp16 [1, 4]"));
    assert_non_null(strstr(r.out, "com.anemll.info: hand-written anml sample"));
    run_free(&r);
}

static void test_help(void **state) {
    (void)state;
    struct run r = run_info("--help");
    assert_int_equal(r.rc, 0);
    assert_non_null(strstr(r.out, "usage: anml info PATH [--json]"));
    run_free(&r);
}

/* ---- errors ---- */

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void test_errors(void **state) {
    (void)state;
    char *tmp = anml_test_tmpdir("cli-info");
    assert_non_null(tmp);
    char path[4096], args[4096];

    expect_failure("");
    expect_failure("--bogus-option '" ANML_SOURCE_DIR "/examples/hello.mlmodelc'");

    snprintf(args, sizeof args, "'%s/does-not-exist.mlmodelc'", tmp);
    expect_failure(args);
    snprintf(args, sizeof args, "--json '%s/does-not-exist'", tmp);
    expect_failure(args);

    snprintf(path, sizeof path, "%s/notes.txt", tmp);
    write_text(path, "this is not a model\n");
    snprintf(args, sizeof args, "'%s'", path);
    expect_failure(args);
    snprintf(args, sizeof args, "--json '%s'", path);
    expect_failure(args);

    /* a directory with no model inside */
    snprintf(path, sizeof path, "%s/empty", tmp);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(args, sizeof args, "'%s'", path);
    expect_failure(args);

    /* a .mlmodelc whose model.mil is garbage, alone and inside a model directory */
    snprintf(path, sizeof path, "%s/models", tmp);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/models/bad.mlmodelc", tmp);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/models/bad.mlmodelc/model.mil", tmp);
    write_text(path, "program(1.3) { func main<ios18>(tensor<fp16, [1, 4> x) { garbage } -> (");
    snprintf(args, sizeof args, "'%s/models/bad.mlmodelc'", tmp);
    expect_failure(args);
    snprintf(args, sizeof args, "--json '%s/models/bad.mlmodelc'", tmp);
    expect_failure(args);
    snprintf(args, sizeof args, "--json '%s/models'", tmp);
    expect_failure(args);

    /* a .mlmodelc without model.mil */
    snprintf(path, sizeof path, "%s/hollow.mlmodelc", tmp);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(args, sizeof args, "'%s'", path);
    expect_failure(args);

    char cmd[8192];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    assert_int_equal(system(cmd), 0);
    free(tmp);
}

/* A model directory with a meta.yaml that anml_model_load rejects is an error (its message, one
 * line); without meta.yaml a directory anml can assemble still gets the model object, and one it
 * cannot is described component by component as before. */
static void test_model_dir_errors(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    char *tmp = anml_test_tmpdir("cli-info-model");
    assert_non_null(tmp);
    static const char *const pkgs[] = { "llama_embeddings.mlpackage", "llama_lm_head.mlpackage",
                                        "llama_FFN_PF_chunk_01of01.mlpackage" };
    char dir[4096], path[4200], src[4096], args[4300];
    snprintf(dir, sizeof dir, "%s/llama", tmp);
    assert_int_equal(mkdir(dir, 0755), 0);
    for (size_t i = 0; i < 3; i++) {
        snprintf(src, sizeof src, "%s/%s",
                 anml_test_shared_path("fixtures/coreml/llama-tiny/model"), pkgs[i]);
        snprintf(path, sizeof path, "%s/%s", dir, pkgs[i]);
        assert_int_equal(symlink(src, path), 0);
    }
    /* no meta.yaml: assembled from the file names */
    cJSON *got = info_json(dir);
    const cJSON *model = get(got, "model");
    assert_true(cJSON_IsNull(get(model, "meta_version")));
    assert_true(cJSON_IsNull(get(model, "architecture")));
    assert_string_equal(get_str(model, "model_prefix"), "llama");
    assert_int_equal(get(model, "logit_slices")->valueint, 8); /* llama-tiny README: 8 */
    assert_int_equal(cJSON_GetArraySize(get(got, "components")), 3);
    cJSON_Delete(got);

    /* meta.yaml contradicting the programs, and meta.yaml that is not YAML */
    snprintf(path, sizeof path, "%s/meta.yaml", dir);
    write_text(path, "model_info:\n  version: 0.3.4\n  parameters:\n    context_length: 512\n"
                     "    model_prefix: llama\n");
    snprintf(args, sizeof args, "'%s'", dir);
    expect_failure(args);
    struct run r = run_info(args);
    assert_non_null(strstr(r.err, "meta.yaml:4:21: context_length is 512 in meta.yaml but 64"));
    run_free(&r);
    write_text(path, "model_info:\n  version: [0.3.4\n");
    snprintf(args, sizeof args, "--json '%s'", dir);
    expect_failure(args);
    r = run_info(args);
    assert_non_null(strstr(r.err, "meta.yaml:"));
    assert_non_null(strstr(r.err, "bad YAML"));
    run_free(&r);
    /* a meta.yaml naming a chunk count the directory lacks */
    write_text(path, "model_info:\n  parameters:\n    num_chunks: 2\n    model_prefix: llama\n");
    snprintf(args, sizeof args, "'%s'", dir);
    expect_failure(args);
    r = run_info(args);
    assert_non_null(strstr(r.err, "llama_FFN_PF_chunk_01of02"));
    run_free(&r);

    char cmd[8300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    assert_int_equal(system(cmd), 0);
    free(tmp);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_hello),
        cmocka_unit_test(test_fixture_packages),
        cmocka_unit_test(test_fixture_model_dirs),
        cmocka_unit_test(test_converted_mlmodelc),
        cmocka_unit_test(test_model_dir_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
