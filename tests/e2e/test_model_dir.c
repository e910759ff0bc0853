/*
 * test_model_dir.c -- anml_model_load on ANEMLL model directories assembled in temporary folders
 * from the genuine fixture packages (../shared/fixtures/coreml/<f>/model/ packages, linked,
 * converted to .mlmodelc in-process, or zipped with libzip here), as anemll-format.md §1.3-§1.4
 * describes them:
 *  - meta.yaml of every version (0.1.x, 0.3.0, 0.3.3, 0.3.4, 0.3.5) and no meta.yaml at all: each
 *    directory loads and generates the fixture's fp16 reference greedy ids (compared up to the
 *    first reference near-tie, as test_pipeline_fixtures does);
 *  - discovery: the embeddings' LUT-suffix fallback, .mlmodelc, .mlpackage, .mlmodelc.zip
 *    (unpacked once: a second load reuses the folder), unzip_dir, separate FFN + prefill files
 *    (found by name and by the fork's ffn:/prefill: keys), chunks without infer/prefill functions
 *    (prefill then runs token by token through infer);
 *  - broken directories: the status AND that the error names the file or the meta.yaml key
 *    (with line:col), and for zips that nothing is written outside the model directory.
 * The meta.yaml texts below are hand-written after the schemas of §1.3; the expectations (ids,
 * sizes) come from the fixtures' reference/index.json and packages.json.
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zip.h>

#include "coreml/program.h"
#include "testutil.h"

static char *g_tmp; /* this run's scratch folder */

/* ---- files ---- */

static const char *fixture_model(const char *fixture) {
    static char buf[4096];
    char rel[512];
    snprintf(rel, sizeof rel, "fixtures/coreml/%s/model", fixture);
    snprintf(buf, sizeof buf, "%s", anml_test_shared_path(rel));
    return buf;
}

/* A fresh folder g_tmp/<name>. */
static const char *new_dir(const char *name) {
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", g_tmp, name);
    if (mkdir(buf, 0755) != 0) {
        fail_msg("mkdir %s: %s", buf, strerror(errno));
    }
    return buf;
}

static void write_text(const char *dir, const char *name, const char *text) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

/* dir/as -> the fixture's package `pkg` (as = NULL: the same name). */
static void link_pkg(const char *dir, const char *fixture, const char *pkg, const char *as) {
    char src[4096], dst[4096];
    snprintf(src, sizeof src, "%s/%s", fixture_model(fixture), pkg);
    snprintf(dst, sizeof dst, "%s/%s", dir, as ? as : pkg);
    if (symlink(src, dst) != 0) {
        fail_msg("symlink %s: %s", dst, strerror(errno));
    }
}

/* Links every .mlpackage of a fixture (combined and intermediate chunks, as the fixture ships). */
static void link_all(const char *dir, const char *fixture) {
    DIR *d = opendir(fixture_model(fixture));
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > 10 && strcmp(e->d_name + n - 10, ".mlpackage") == 0) {
            link_pkg(dir, fixture, e->d_name, NULL);
        }
    }
    closedir(d);
}

static void copy_fixture_file(const char *dir, const char *fixture, const char *name) {
    char src[4096];
    snprintf(src, sizeof src, "%s/%s", fixture_model(fixture), name);
    char *text = anml_test_read_file(src, NULL);
    assert_non_null(text);
    write_text(dir, name, text);
    free(text);
}

/* Converts a fixture package to dir/<as>.mlmodelc with the library's own reader and writer. */
static void convert_pkg(const char *dir, const char *fixture, const char *pkg, const char *as) {
    char src[4096], dst[4096];
    snprintf(src, sizeof src, "%s/%s.mlpackage", fixture_model(fixture), pkg);
    snprintf(dst, sizeof dst, "%s/%s.mlmodelc", dir, as ? as : pkg);
    struct mil_program *prog = NULL;
    struct anml_error err = { 0 };
    if (anml__mil_load(src, &prog, &err) != ANML_OK ||
        anml__mil_write_mlmodelc(prog, dst, &err) != ANML_OK) {
        fail_msg("convert %s: %s: %s", src, err.where, err.msg);
    }
    anml__mil_program_free(prog);
}

/* Adds the tree under path to z as <prefix>/... */
static void zip_tree(zip_t *z, const char *path, const char *prefix) {
    DIR *d = opendir(path);
    assert_non_null(d);
    assert_true(zip_dir_add(z, prefix, ZIP_FL_ENC_UTF_8) >= 0);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
            continue;
        }
        char full[4096], name[4096];
        snprintf(full, sizeof full, "%s/%s", path, e->d_name);
        snprintf(name, sizeof name, "%s/%s", prefix, e->d_name);
        struct stat st;
        assert_int_equal(stat(full, &st), 0);
        if (S_ISDIR(st.st_mode)) {
            zip_tree(z, full, name);
        } else {
            zip_source_t *s = zip_source_file(z, full, 0, -1);
            assert_non_null(s);
            assert_true(zip_file_add(z, name, s, ZIP_FL_ENC_UTF_8) >= 0);
        }
    }
    closedir(d);
}

/* Zips dir/<name>.mlmodelc into dir/<name>.mlmodelc.zip (as `zip -r` from dir does) and removes
 * the folder. */
static void zip_component(const char *dir, const char *name) {
    char src[4096], zpath[4096], top[1024], cmd[8300];
    snprintf(src, sizeof src, "%s/%s.mlmodelc", dir, name);
    snprintf(zpath, sizeof zpath, "%s/%s.mlmodelc.zip", dir, name);
    snprintf(top, sizeof top, "%s.mlmodelc", name);
    int zerr;
    zip_t *z = zip_open(zpath, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
    assert_non_null(z);
    zip_tree(z, src, top);
    assert_int_equal(zip_close(z), 0);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", src);
    assert_int_equal(system(cmd), 0);
}

/* A zip at path whose entries are names[i] holding a few bytes each. */
static void zip_entries(const char *path, const char *const *names, int n) {
    int zerr;
    zip_t *z = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &zerr);
    assert_non_null(z);
    static const char payload[] = "payload";
    for (int i = 0; i < n; i++) {
        zip_source_t *s = zip_source_buffer(z, payload, sizeof payload - 1, 0);
        assert_non_null(s);
        if (zip_file_add(z, names[i], s, 0) < 0) {
            fail_msg("libzip refused entry %s: %s", names[i], zip_strerror(z));
        }
    }
    assert_int_equal(zip_close(z), 0);
}

/* The sorted entry names of a folder, joined by '|' (to see that nothing appeared). */
static char *dir_listing(const char *dir) {
    char *names[256];
    int n = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL && n < 256) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            names[n++] = strdup(e->d_name);
        }
    }
    closedir(d);
    for (int i = 1; i < n; i++) {
        for (int j = i; j > 0 && strcmp(names[j - 1], names[j]) > 0; j--) {
            char *t = names[j];
            names[j] = names[j - 1];
            names[j - 1] = t;
        }
    }
    size_t len = 1;
    for (int i = 0; i < n; i++) {
        len += strlen(names[i]) + 1;
    }
    char *s = calloc(1, len);
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        size_t l = strlen(names[i]);
        memcpy(s + at, names[i], l);
        s[at + l] = '|';
        at += l + 1;
        free(names[i]);
    }
    return s;
}

/* ---- the fixtures' expectations ---- */

struct fixture {
    const char *name, *variant;
    int32_t chunks, slices;
};

static const struct fixture k_qwen3_fp16 = { "qwen3-tiny-fp16", "fp16_checkpoint_weights", 1, 2 };
static const struct fixture k_qwen3_lut = { "qwen3-tiny-lut", "fp16_mlpackage_weights", 2, 16 };
static const struct fixture k_qwen25 = { "qwen25-tiny-lut8", "fp16_mlpackage_weights", 1, 2 };
static const struct fixture k_llama = { "llama-tiny", "fp16_checkpoint_weights", 1, 8 };

struct gen {
    int32_t ids[64];
    int32_t n;
};

static bool collect(int32_t token, void *ud) {
    struct gen *g = ud;
    g->ids[g->n++] = token;
    return g->n < 64;
}

static struct anml_model *load_ok(const char *dir, const struct anml_model_params *params) {
    struct anml_model *m = NULL;
    struct anml_error err = { 0 };
    if (anml_model_load(dir, params, &m, &err) != ANML_OK) {
        fail_msg("load %s: %s: %s", dir, err.where, err.msg);
    }
    assert_non_null(m);
    return m;
}

/* Checks the assembled sizes against the fixture (README table: context 64, batch 8 -- or 1
 * without a prefill function -- hidden 64, vocab 1024) and generates 16 greedy ids after each
 * reference prompt: they must equal the reference up to and including its first near-tie. */
static void check_model(const struct anml_model *m, const struct fixture *fx, bool has_prefill) {
    struct anml_model_info info;
    anml_model_get_info(m, &info);
    assert_int_equal(info.n_chunks, fx->chunks);
    assert_int_equal(info.context_length, 64);
    assert_int_equal(info.batch_size, has_prefill ? 8 : 1);
    assert_int_equal(info.hidden_size, 64);
    assert_int_equal(info.vocab_size, 1024);
    assert_int_equal(info.n_logit_slices, fx->slices);
    assert_string_equal(info.state_name, "model_model_kv_cache_0");
    for (int32_t i = 0; i < anml_model_n_components(m); i++) {
        struct anml_component_info ci;
        assert_int_equal(anml_model_component_info(m, i, &ci), ANML_OK);
        if (ci.role == ANML_COMPONENT_FFN) {
            assert_true((ci.prefill_fn != NULL) == has_prefill);
        }
    }
    char rel[512];
    snprintf(rel, sizeof rel, "fixtures/coreml/%s/reference/%s/index.json", fx->name, fx->variant);
    char *text = anml_test_read_file(anml_test_shared_path(rel), NULL);
    assert_non_null(text);
    cJSON *idx = cJSON_Parse(text);
    free(text);
    assert_non_null(idx);
    const cJSON *prompt;
    int checked = 0;
    cJSON_ArrayForEach(prompt, cJSON_GetObjectItemCaseSensitive(idx, "prompts")) {
        int32_t ids[64], n = 0;
        const cJSON *v;
        cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(prompt, "prompt_ids")) {
            ids[n++] = v->valueint;
        }
        double gap[16];
        int ngap = 0;
        const cJSON *call;
        cJSON_ArrayForEach(call, cJSON_GetObjectItemCaseSensitive(prompt, "calls")) {
            const cJSON *g = cJSON_GetObjectItemCaseSensitive(call, "top1_top2_gap");
            if (g && ngap < 16) {
                gap[ngap++] = g->valuedouble;
            }
        }
        struct anml_session *s = NULL;
        struct anml_error err = { 0 };
        assert_int_equal(anml_session_create(m, &s, &err), ANML_OK);
        assert_int_equal(anml_session_prefill(s, ids, n, NULL, NULL), ANML_OK);
        struct gen g = { .n = 0 };
        struct anml_generate_params gp = anml_generate_params_default();
        gp.max_tokens = 16;
        gp.on_token = collect;
        gp.on_token_ud = &g;
        if (anml_session_generate(s, &gp, NULL) != ANML_OK) {
            fail_msg("%s %s: %s", fx->name, prompt->string, anml_session_errmsg(s));
        }
        assert_int_equal(g.n, 16);
        int step = 0;
        cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(prompt, "generated_ids")) {
            if (g.ids[step] != v->valueint) {
                fail_msg("%s %s: step %d: got %d, reference %d", fx->name, prompt->string, step,
                         g.ids[step], v->valueint);
            }
            checked++;
            if (step < ngap && gap[step] < 0.03) {
                break;
            }
            step++;
        }
        anml_session_free(s);
    }
    assert_true(checked >= 3);
    cJSON_Delete(idx);
}

static void load_and_check(const char *dir, const struct fixture *fx, bool has_prefill) {
    struct anml_model *m = load_ok(dir, NULL);
    check_model(m, fx, has_prefill);
    anml_model_free(m);
}

/* Expects anml_model_load to fail with `code`; where_sub (may be NULL) must occur in err.where and
 * each of msg_sub1/msg_sub2 (may be NULL) in "where: msg". Returns the error for more checks. */
static struct anml_error expect_error(const char *dir, const struct anml_model_params *params,
                                      enum anml_status code, const char *where_sub,
                                      const char *msg_sub1, const char *msg_sub2) {
    struct anml_model *m = NULL;
    struct anml_error err = { 0 };
    enum anml_status st = anml_model_load(dir, params, &m, &err);
    print_message("  %s -> %s: %s: %s\n", strrchr(dir, '/') + 1, anml_status_str(st), err.where,
                  err.msg);
    if (st == ANML_OK) {
        anml_model_free(m);
        fail_msg("%s loaded but should fail", dir);
    }
    assert_null(m);
    assert_int_equal(st, code);
    assert_int_equal(err.code, code);
    char full[1024];
    snprintf(full, sizeof full, "%s: %s", err.where, err.msg);
    if (where_sub && !strstr(err.where, where_sub)) {
        fail_msg("where '%s' lacks '%s'", err.where, where_sub);
    }
    if (msg_sub1 && !strstr(full, msg_sub1)) {
        fail_msg("error '%s' lacks '%s'", full, msg_sub1);
    }
    if (msg_sub2 && !strstr(full, msg_sub2)) {
        fail_msg("error '%s' lacks '%s'", full, msg_sub2);
    }
    return err;
}

/* "meta.yaml:<line>:<col>" of the value of the first line starting (after spaces) with `key:`. */
static void meta_pos(const char *text, const char *key, char *out, size_t cap) {
    int line = 1;
    for (const char *s = text; *s;) {
        const char *e = strchr(s, '\n');
        const char *k = s;
        while (*k == ' ') {
            k++;
        }
        if (strncmp(k, key, strlen(key)) == 0 && k[strlen(key)] == ':') {
            const char *v = k + strlen(key) + 1;
            while (*v == ' ') {
                v++;
            }
            snprintf(out, cap, "meta.yaml:%d:%d", line, (int)(v - s) + 1);
            return;
        }
        line++;
        if (!e) {
            break;
        }
        s = e + 1;
    }
    fail_msg("no %s in the meta.yaml text", key);
}

/* ---- meta.yaml texts (schemas of anemll-format.md §1.3) ---- */

static const char k_meta_head[] = "model_info:\n"
                                  "  name: anemll-test-ctx64\n"
                                  "  version: %s\n"
                                  "  description: |\n"
                                  "    Hand-written for anml's tests\n"
                                  "    Context length: 64\n"
                                  "  license: MIT\n"
                                  "  author: Anemll\n"
                                  "  framework: Core ML\n"
                                  "  language: Python\n";

/* The fixture-like 0.3.4 meta.yaml of qwen3-tiny-lut with the values of up to two keys replaced
 * (key "" = none; value NULL = drop the line); a key it lacks is appended under parameters. */
static void qwen3_lut_meta2(char *out, size_t cap, const char *k1, const char *v1, const char *k2,
                            const char *v2) {
    static const char *const lines[][2] = {
        { "context_length", "64" },
        { "batch_size", "8" },
        { "lut_embeddings", "none" },
        { "lut_ffn", "4" },
        { "lut_lmhead", "8" },
        { "num_chunks", "2" },
        { "model_prefix", "qwen" },
        { "embeddings", "qwen_embeddings.mlmodelc" },
        { "lm_head", "qwen_lm_head_lut8.mlmodelc" },
        { "ffn", "qwen_FFN_PF_lut4.mlmodelc" },
        { "split_lm_head", "16" },
    };
    const char *keys[2] = { k1, k2 }, *vals[2] = { v1, v2 };
    bool used[2] = { false, false };
    int n = snprintf(out, cap, k_meta_head, "0.3.4");
    n += snprintf(out + n, cap - (size_t)n, "  architecture: qwen3\n  parameters:\n");
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        const char *v = lines[i][1];
        bool drop = false;
        for (int k = 0; k < 2; k++) {
            if (strcmp(lines[i][0], keys[k]) == 0) {
                used[k] = true;
                v = vals[k];
                drop = !v;
            }
        }
        if (!drop) {
            n += snprintf(out + n, cap - (size_t)n, "    %s: %s\n", lines[i][0], v);
        }
    }
    for (int k = 0; k < 2; k++) {
        if (!used[k] && *keys[k]) {
            n += snprintf(out + n, cap - (size_t)n, "    %s: %s\n", keys[k], vals[k]);
        }
    }
    assert_true((size_t)n < cap);
}

static void qwen3_lut_meta(char *out, size_t cap, const char *key, const char *value) {
    qwen3_lut_meta2(out, cap, key, value, "", NULL);
}

/* ---- meta.yaml versions ---- */

static void test_meta_0_1_x(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    char meta[4096];
    /* 0.1.1: no file keys, no split_lm_head, no architecture (llama-tiny, no LUT) */
    const char *dir = new_dir("v011");
    link_all(dir, "llama-tiny");
    int n = snprintf(meta, sizeof meta, k_meta_head, "0.1.1");
    snprintf(meta + n, sizeof meta - (size_t)n,
             "  parameters:\n    context_length: 64\n    batch_size: 8\n"
             "    lut_embeddings: none\n    lut_ffn: none\n    lut_lmhead: none\n"
             "    num_chunks: 1\n    model_prefix: llama\n");
    write_text(dir, "meta.yaml", meta);
    struct anml_model *m = load_ok(dir, NULL);
    struct anml_model_info info;
    anml_model_get_info(m, &info);
    assert_string_equal(info.meta_version, "0.1.1");
    assert_string_equal(info.architecture, "");
    assert_string_equal(info.model_prefix, "llama");
    assert_null(info.tokenizer_dir);
    check_model(m, &k_llama, true);
    anml_model_free(m);

    /* 0.1.2 with LUT fields: names built from the prefix and the LUT suffixes, 2 chunks */
    dir = new_dir("v012");
    link_all(dir, "qwen3-tiny-lut");
    n = snprintf(meta, sizeof meta, k_meta_head, "0.1.2");
    snprintf(meta + n, sizeof meta - (size_t)n,
             "  parameters:\n    context_length: 64\n    batch_size: 8\n"
             "    lut_embeddings: none\n    lut_ffn: 4\n    lut_lmhead: 8\n"
             "    num_chunks: 2\n    model_prefix: qwen\n");
    write_text(dir, "meta.yaml", meta);
    m = load_ok(dir, NULL);
    anml_model_get_info(m, &info);
    assert_int_equal(info.lut_embeddings, 0);
    assert_int_equal(info.lut_ffn, 4);
    assert_int_equal(info.lut_lmhead, 8);
    struct anml_component_info ci;
    assert_int_equal(anml_model_component_info(m, 2, &ci), ANML_OK);
    assert_int_equal(ci.role, ANML_COMPONENT_FFN);
    assert_int_equal(ci.chunk, 2);
    assert_non_null(strstr(ci.path, "qwen_FFN_PF_lut4_chunk_02of02.mlpackage"));
    assert_string_equal(ci.infer_fn, "infer");
    assert_string_equal(ci.prefill_fn, "prefill");
    assert_null(ci.prefill_path);
    check_model(m, &k_qwen3_lut, true);
    anml_model_free(m);
}

static void test_meta_0_3_0(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    /* 0.3.0: embeddings/lm_head/ffn keys naming .mlmodelc files; ffn without the chunk suffix
     * names no file; still no architecture and no split_lm_head */
    const char *dir = new_dir("v030");
    link_all(dir, "qwen25-tiny-lut8");
    char meta[4096];
    int n = snprintf(meta, sizeof meta, k_meta_head, "0.3.0");
    snprintf(meta + n, sizeof meta - (size_t)n,
             "  parameters:\n    context_length: 64\n    batch_size: 8\n"
             "    lut_embeddings: none\n    lut_ffn: 8\n    lut_lmhead: 8\n"
             "    num_chunks: 1\n    model_prefix: qwen25\n"
             "    embeddings: qwen25_embeddings.mlmodelc\n"
             "    lm_head: qwen25_lm_head_lut8.mlmodelc\n"
             "    ffn: qwen25_FFN_PF_lut8.mlmodelc\n");
    write_text(dir, "meta.yaml", meta);
    struct anml_model *m = load_ok(dir, NULL);
    struct anml_model_info info;
    anml_model_get_info(m, &info);
    assert_string_equal(info.meta_version, "0.3.0");
    assert_string_equal(info.model_prefix, "qwen25");
    struct anml_component_info ci;
    assert_int_equal(anml_model_component_info(m, 1, &ci), ANML_OK);
    assert_non_null(strstr(ci.path, "/qwen25_FFN_PF_lut8_chunk_01of01.mlpackage"));
    check_model(m, &k_qwen25, true);
    anml_model_free(m);
}

static void test_meta_0_3_3_and_0_3_4(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    /* 0.3.3: architecture and split_lm_head (2 for this fixture) */
    const char *dir = new_dir("v033");
    link_all(dir, "qwen3-tiny-fp16");
    char meta[4096];
    int n = snprintf(meta, sizeof meta, k_meta_head, "0.3.3");
    snprintf(meta + n, sizeof meta - (size_t)n,
             "  architecture: qwen3\n"
             "  parameters:\n    context_length: 64\n    batch_size: 8\n"
             "    lut_embeddings: none\n    lut_ffn: none\n    lut_lmhead: none\n"
             "    num_chunks: 1\n    model_prefix: qwen\n"
             "    embeddings: qwen_embeddings.mlmodelc\n    lm_head: qwen_lm_head.mlmodelc\n"
             "    ffn: qwen_FFN_PF.mlmodelc\n    split_lm_head: 2\n");
    write_text(dir, "meta.yaml", meta);
    struct anml_model *m = load_ok(dir, NULL);
    struct anml_model_info info;
    anml_model_get_info(m, &info);
    assert_string_equal(info.meta_version, "0.3.3");
    assert_string_equal(info.architecture, "qwen3");
    check_model(m, &k_qwen3_fp16, true);
    anml_model_free(m);

    /* 0.3.4: the fixture's own meta.yaml and config.json (llama-tiny, 8 slices) */
    dir = new_dir("v034");
    link_all(dir, "llama-tiny");
    copy_fixture_file(dir, "llama-tiny", "meta.yaml");
    copy_fixture_file(dir, "llama-tiny", "config.json");
    m = load_ok(dir, NULL);
    anml_model_get_info(m, &info);
    assert_string_equal(info.meta_version, "0.3.4");
    assert_string_equal(info.architecture, "llama");
    check_model(m, &k_llama, true);
    anml_model_free(m);
}

static void test_meta_0_3_5(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    /* 0.3.5: ffn WITH the chunk suffix, *_per_channel, vocab_size, lm_head_chunk_sizes, a nested
     * recommended_sampling mapping, flags, and the trailing comment block */
    const char *dir = new_dir("v035");
    link_all(dir, "qwen3-tiny-lut");
    char meta[4096];
    int n = snprintf(meta, sizeof meta, k_meta_head, "0.3.5");
    snprintf(meta + n, sizeof meta - (size_t)n,
             "  architecture: qwen3\n"
             "  parameters:\n    context_length: 64\n    batch_size: 8\n"
             "    lut_embeddings: none\n    lut_ffn: 4\n    lut_ffn_per_channel: 8\n"
             "    lut_lmhead: 8\n    lut_lmhead_per_channel: 8\n"
             "    num_chunks: 2\n    model_prefix: qwen\n"
             "    embeddings: qwen_embeddings.mlmodelc\n"
             "    lm_head: qwen_lm_head_lut8.mlmodelc\n"
             "    ffn: qwen_FFN_PF_lut4_chunk_01of02.mlmodelc\n"
             "    split_lm_head: 16\n    vocab_size: 1024\n"
             "    lm_head_chunk_sizes: [64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, "
             "64, 64]\n"
             "    prefill_dynamic_slice: true\n"
             "    recommended_sampling:\n      do_sample: true\n      temperature: 0.6\n"
             "      top_p: 0.95\n      top_k: 20\n"
             "# Conversion Parameters (for troubleshooting)\n"
             "#   --context 64 --batch 8 --chunk 2 --lut2 4,8 --lut3 8,8\n");
    write_text(dir, "meta.yaml", meta);
    struct anml_model *m = load_ok(dir, NULL);
    struct anml_model_info info;
    anml_model_get_info(m, &info);
    assert_string_equal(info.meta_version, "0.3.5");
    assert_int_equal(info.lut_ffn, 4);
    check_model(m, &k_qwen3_lut, true);
    anml_model_free(m);
}

static void test_no_meta(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    /* every role found by file name: the combined chunks win over the intermediates next to
     * them; prefix and LUT widths are read off the names */
    const char *dir = new_dir("nometa");
    link_all(dir, "qwen3-tiny-lut");
    struct anml_model *m = load_ok(dir, NULL);
    struct anml_model_info info;
    anml_model_get_info(m, &info);
    assert_string_equal(info.meta_version, "");
    assert_string_equal(info.model_prefix, "qwen");
    assert_int_equal(info.lut_embeddings, 0);
    assert_int_equal(info.lut_ffn, 4);
    assert_int_equal(info.lut_lmhead, 8);
    check_model(m, &k_qwen3_lut, true);
    anml_model_free(m);

    /* llama-tiny without meta.yaml but with its config.json (a tokenizer hint, no sizes) */
    dir = new_dir("nometa-llama");
    link_all(dir, "llama-tiny");
    copy_fixture_file(dir, "llama-tiny", "config.json");
    load_and_check(dir, &k_llama, true);
}

/* ---- discovery ---- */

static void test_lut_fallback(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    /* lut_embeddings says 8 but the file has no suffix: chat.py retries without it */
    const char *dir = new_dir("lutfb");
    link_all(dir, "qwen3-tiny-lut");
    char meta[4096];
    qwen3_lut_meta(meta, sizeof meta, "lut_embeddings", "8");
    write_text(dir, "meta.yaml", meta);
    struct anml_model *m = load_ok(dir, NULL);
    struct anml_model_info info;
    anml_model_get_info(m, &info);
    assert_int_equal(info.lut_embeddings, 0); /* the file loaded carries no LUT suffix */
    struct anml_component_info ci;
    assert_int_equal(anml_model_component_info(m, 0, &ci), ANML_OK);
    assert_int_equal(ci.role, ANML_COMPONENT_EMBEDDINGS);
    assert_non_null(strstr(ci.path, "/qwen_embeddings.mlpackage"));
    check_model(m, &k_qwen3_lut, true);
    anml_model_free(m);

    /* the same without the embeddings: key (names built from the prefix only) */
    dir = new_dir("lutfb-nokey");
    link_all(dir, "qwen3-tiny-lut");
    qwen3_lut_meta2(meta, sizeof meta, "embeddings", NULL, "lut_embeddings", "6");
    write_text(dir, "meta.yaml", meta);
    m = load_ok(dir, NULL);
    anml_model_free(m);
}

static void test_mlmodelc_and_zip(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    static const char *const comps[] = { "qwen_embeddings", "qwen_lm_head_lut8",
                                         "qwen_FFN_PF_lut4_chunk_01of02",
                                         "qwen_FFN_PF_lut4_chunk_02of02" };
    /* compiled components (.mlmodelc: model.mil text + weights/weight.bin) */
    const char *d = new_dir("mlmodelc");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", d);
    for (int i = 0; i < 4; i++) {
        convert_pkg(dir, "qwen3-tiny-lut", comps[i], NULL);
    }
    copy_fixture_file(dir, "qwen3-tiny-lut", "meta.yaml");
    struct anml_model *m = load_ok(dir, NULL);
    struct anml_component_info ci;
    assert_int_equal(anml_model_component_info(m, 3, &ci), ANML_OK);
    assert_int_equal(ci.role, ANML_COMPONENT_LM_HEAD);
    assert_non_null(strstr(ci.path, "/qwen_lm_head_lut8.mlmodelc"));
    check_model(m, &k_qwen3_lut, true);
    anml_model_free(m);

    /* the Hugging Face layout: every component as <name>.mlmodelc.zip */
    for (int i = 0; i < 4; i++) {
        zip_component(dir, comps[i]);
    }
    char *before = dir_listing(dir);
    assert_null(strstr(before, ".mlmodelc|"));
    m = load_ok(dir, NULL);
    check_model(m, &k_qwen3_lut, true);
    anml_model_free(m);
    /* unpacked next to each zip, nothing else left behind (no temporary folders) */
    char *after = dir_listing(dir);
    print_message("after the first load: %s\n", after);
    assert_string_equal(after, "meta.yaml|qwen_FFN_PF_lut4_chunk_01of02.mlmodelc|"
                               "qwen_FFN_PF_lut4_chunk_01of02.mlmodelc.zip|"
                               "qwen_FFN_PF_lut4_chunk_02of02.mlmodelc|"
                               "qwen_FFN_PF_lut4_chunk_02of02.mlmodelc.zip|"
                               "qwen_embeddings.mlmodelc|qwen_embeddings.mlmodelc.zip|"
                               "qwen_lm_head_lut8.mlmodelc|qwen_lm_head_lut8.mlmodelc.zip|");
    /* a second load must not unpack again: a marker inside the folder survives and the
     * unpacked model.mil is the same file */
    char path[4200];
    struct stat st1, st2;
    snprintf(path, sizeof path, "%s/qwen_embeddings.mlmodelc/model.mil", dir);
    assert_int_equal(stat(path, &st1), 0);
    snprintf(path, sizeof path, "%s/qwen_embeddings.mlmodelc", dir);
    write_text(path, "anml-test-marker", "x");
    m = load_ok(dir, NULL);
    anml_model_free(m);
    snprintf(path, sizeof path, "%s/qwen_embeddings.mlmodelc/anml-test-marker", dir);
    assert_int_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/qwen_embeddings.mlmodelc/model.mil", dir);
    assert_int_equal(stat(path, &st2), 0);
    assert_true(st1.st_ino == st2.st_ino && st1.st_mtime == st2.st_mtime);
    free(before);
    free(after);

    /* unzip_dir: the zips-only directory stays untouched, the cache gets the folders, and a
     * second load reuses them */
    d = new_dir("zips-only");
    char zdir[4096];
    snprintf(zdir, sizeof zdir, "%s", d);
    for (int i = 0; i < 4; i++) {
        char src[4200], cmd[8600];
        snprintf(src, sizeof src, "%s/%s.mlmodelc.zip", dir, comps[i]);
        snprintf(cmd, sizeof cmd, "cp '%s' '%s/'", src, zdir);
        assert_int_equal(system(cmd), 0);
    }
    copy_fixture_file(zdir, "qwen3-tiny-lut", "meta.yaml");
    before = dir_listing(zdir);
    char cache[4200];
    snprintf(cache, sizeof cache, "%s/unzip-cache", g_tmp);
    struct anml_model_params params = anml_model_params_default();
    params.unzip_dir = cache;
    m = load_ok(zdir, &params);
    assert_int_equal(anml_model_component_info(m, 0, &ci), ANML_OK);
    assert_true(strncmp(ci.path, cache, strlen(cache)) == 0);
    char emb_path[4096];
    snprintf(emb_path, sizeof emb_path, "%s", ci.path);
    check_model(m, &k_qwen3_lut, true);
    anml_model_free(m);
    after = dir_listing(zdir);
    assert_string_equal(before, after);
    snprintf(path, sizeof path, "%s/model.mil", emb_path);
    assert_int_equal(stat(path, &st1), 0);
    m = load_ok(zdir, &params);
    assert_int_equal(anml_model_component_info(m, 0, &ci), ANML_OK);
    assert_string_equal(ci.path, emb_path);
    anml_model_free(m);
    assert_int_equal(stat(path, &st2), 0);
    assert_true(st1.st_ino == st2.st_ino);
    free(before);
    free(after);
}

static void test_separate_ffn_prefill(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    static const char *const pkgs[] = {
        "qwen_embeddings.mlpackage",
        "qwen_lm_head_lut8.mlpackage",
        "qwen_FFN_lut4_chunk_01of02.mlpackage",
        "qwen_FFN_lut4_chunk_02of02.mlpackage",
        "qwen_prefill_lut4_chunk_01of02.mlpackage",
        "qwen_prefill_lut4_chunk_02of02.mlpackage",
    };
    /* {P}_FFN + {P}_prefill files found by name (the meta.yaml's ffn: names the combined file) */
    const char *dir = new_dir("separate");
    for (size_t i = 0; i < 6; i++) {
        link_pkg(dir, "qwen3-tiny-lut", pkgs[i], NULL);
    }
    copy_fixture_file(dir, "qwen3-tiny-lut", "meta.yaml");
    struct anml_model *m = load_ok(dir, NULL);
    for (int32_t c = 1; c <= 2; c++) {
        struct anml_component_info ci;
        char want[128];
        assert_int_equal(anml_model_component_info(m, c, &ci), ANML_OK);
        snprintf(want, sizeof want, "/qwen_FFN_lut4_chunk_0%dof02.mlpackage", (int)c);
        assert_non_null(strstr(ci.path, want));
        snprintf(want, sizeof want, "/qwen_prefill_lut4_chunk_0%dof02.mlpackage", (int)c);
        assert_non_null(ci.prefill_path);
        assert_non_null(strstr(ci.prefill_path, want));
        assert_string_equal(ci.infer_fn, "main");
        assert_string_equal(ci.prefill_fn, "main");
    }
    check_model(m, &k_qwen3_lut, true);
    anml_model_free(m);

    /* the fork's ffn: + prefill: keys (chunk-suffixed .mlpackage names), no meta.yaml prefix */
    dir = new_dir("separate-keys");
    for (size_t i = 0; i < 6; i++) {
        link_pkg(dir, "qwen3-tiny-lut", pkgs[i], NULL);
    }
    char meta[4096];
    int n = snprintf(meta, sizeof meta, k_meta_head, "0.3.4");
    snprintf(meta + n, sizeof meta - (size_t)n,
             "  parameters:\n    context_length: 64\n    batch_size: 8\n    num_chunks: 2\n"
             "    embeddings: qwen_embeddings.mlpackage\n    lm_head: qwen_lm_head_lut8.mlpackage\n"
             "    ffn: qwen_FFN_lut4_chunk_01of02.mlpackage\n"
             "    prefill: qwen_prefill_lut4_chunk_01of02.mlpackage\n");
    write_text(dir, "meta.yaml", meta);
    m = load_ok(dir, NULL);
    check_model(m, &k_qwen3_lut, true);
    anml_model_free(m);

    /* {P}_FFN_chunk + {P}_prefill_chunk without LUT suffixes and without meta.yaml */
    dir = new_dir("separate-nometa");
    link_pkg(dir, "llama-tiny", "llama_embeddings.mlpackage", NULL);
    link_pkg(dir, "llama-tiny", "llama_lm_head.mlpackage", NULL);
    link_pkg(dir, "llama-tiny", "llama_FFN_chunk_01of01.mlpackage", NULL);
    link_pkg(dir, "llama-tiny", "llama_prefill_chunk_01of01.mlpackage", NULL);
    m = load_ok(dir, NULL);
    struct anml_component_info ci;
    assert_int_equal(anml_model_component_info(m, 1, &ci), ANML_OK);
    assert_non_null(ci.prefill_path);
    assert_non_null(strstr(ci.prefill_path, "/llama_prefill_chunk_01of01.mlpackage"));
    check_model(m, &k_llama, true);
    anml_model_free(m);
}

static void test_chunk_without_function_names(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    /* a combined-chunk name whose program has one `main` function (no infer/prefill names):
     * main is infer, and prefill runs one token at a time through it. Single-chunk fixtures only:
     * in the 2-chunk qwen3-tiny-lut, ANEMLL's infer graphs normalise between chunks while the
     * prefill graphs do not, so infer-written K/V legitimately differ there. */
    const char *dir = new_dir("nofn-qwen3");
    link_pkg(dir, "qwen3-tiny-fp16", "qwen_embeddings.mlpackage", NULL);
    link_pkg(dir, "qwen3-tiny-fp16", "qwen_lm_head.mlpackage", NULL);
    link_pkg(dir, "qwen3-tiny-fp16", "qwen_FFN_chunk_01of01.mlpackage",
             "qwen_FFN_PF_chunk_01of01.mlpackage");
    copy_fixture_file(dir, "qwen3-tiny-fp16", "meta.yaml"); /* says batch_size 8: unused */
    struct anml_model *m = load_ok(dir, NULL);
    struct anml_component_info ci;
    assert_int_equal(anml_model_component_info(m, 1, &ci), ANML_OK);
    assert_string_equal(ci.infer_fn, "main");
    assert_null(ci.prefill_fn);
    check_model(m, &k_qwen3_fp16, false);
    anml_model_free(m);

    /* an infer-only intermediate with no prefill file next to it, no meta.yaml */
    dir = new_dir("nofn-llama");
    link_pkg(dir, "llama-tiny", "llama_embeddings.mlpackage", NULL);
    link_pkg(dir, "llama-tiny", "llama_lm_head.mlpackage", NULL);
    link_pkg(dir, "llama-tiny", "llama_FFN_chunk_01of01.mlpackage", NULL);
    load_and_check(dir, &k_llama, false);
}

/* ---- broken directories ---- */

/* A qwen3-tiny-lut directory of combined chunks with the fixture's meta.yaml, minus `skip`. */
static const char *lut_dir(const char *name, const char *skip) {
    static const char *const pkgs[] = { "qwen_embeddings.mlpackage", "qwen_lm_head_lut8.mlpackage",
                                        "qwen_FFN_PF_lut4_chunk_01of02.mlpackage",
                                        "qwen_FFN_PF_lut4_chunk_02of02.mlpackage" };
    const char *dir = new_dir(name);
    for (size_t i = 0; i < 4; i++) {
        if (!skip || strcmp(pkgs[i], skip) != 0) {
            link_pkg(dir, "qwen3-tiny-lut", pkgs[i], NULL);
        }
    }
    return dir;
}

static void test_missing_components(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    char meta[4096];
    qwen3_lut_meta(meta, sizeof meta, "", "");
    const char *dir = lut_dir("no-emb", "qwen_embeddings.mlpackage");
    write_text(dir, "meta.yaml", meta);
    expect_error(dir, NULL, ANML_E_NOT_FOUND, "no-emb", "embeddings", "'qwen_embeddings'");

    dir = lut_dir("no-head", "qwen_lm_head_lut8.mlpackage");
    write_text(dir, "meta.yaml", meta);
    expect_error(dir, NULL, ANML_E_NOT_FOUND, "no-head", "LM head", "'qwen_lm_head_lut8'");

    /* 01of02 present, 02of02 missing: with meta.yaml and by file name alone */
    dir = lut_dir("no-chunk2", "qwen_FFN_PF_lut4_chunk_02of02.mlpackage");
    write_text(dir, "meta.yaml", meta);
    expect_error(dir, NULL, ANML_E_NOT_FOUND, "no-chunk2", "chunk 2 of 2",
                 "qwen_FFN_PF_lut4_chunk_02of02");
    dir = lut_dir("no-chunk2-nometa", "qwen_FFN_PF_lut4_chunk_02of02.mlpackage");
    expect_error(dir, NULL, ANML_E_NOT_FOUND, NULL, "chunk 2 of 2",
                 "qwen_FFN_PF_lut4_chunk_02of02");

    /* num_chunks 3 with the two files of a 2-chunk set */
    dir = lut_dir("three-chunks", NULL);
    qwen3_lut_meta(meta, sizeof meta, "num_chunks", "3");
    write_text(dir, "meta.yaml", meta);
    expect_error(dir, NULL, ANML_E_NOT_FOUND, NULL, "qwen_FFN_PF_lut4_chunk_01of03",
                 "num_chunks: 3");
    /* a 0.3.5 ffn: naming a 2-chunk set while num_chunks says 3 */
    dir = lut_dir("ffn-vs-num", NULL);
    qwen3_lut_meta2(meta, sizeof meta, "ffn", "qwen_FFN_PF_lut4_chunk_01of02.mlmodelc",
                    "num_chunks", "3");
    write_text(dir, "meta.yaml", meta);
    char pos[64];
    meta_pos(meta, "ffn", pos, sizeof pos);
    expect_error(dir, NULL, ANML_E_FORMAT, pos, "ffn", "num_chunks is 3");

    /* an empty directory, and one with two candidate embeddings and no meta.yaml to choose */
    dir = new_dir("empty");
    expect_error(dir, NULL, ANML_E_NOT_FOUND, "empty", "embeddings", NULL);
    dir = lut_dir("two-emb", NULL);
    link_pkg(dir, "qwen3-tiny-fp16", "qwen_embeddings.mlpackage", "qwen_embeddings_lut8.mlpackage");
    expect_error(dir, NULL, ANML_E_FORMAT, "two-emb", "several embeddings", "qwen_embeddings_lut8");
    /* a meta.yaml file key that is a path */
    dir = lut_dir("key-path", NULL);
    qwen3_lut_meta(meta, sizeof meta, "embeddings", "../qwen_embeddings.mlmodelc");
    write_text(dir, "meta.yaml", meta);
    meta_pos(meta, "embeddings", pos, sizeof pos);
    expect_error(dir, NULL, ANML_E_FORMAT, pos, "embeddings", "must name a file");
    dir = lut_dir("prefix-path", NULL);
    qwen3_lut_meta(meta, sizeof meta, "model_prefix", "../qwen");
    write_text(dir, "meta.yaml", meta);
    meta_pos(meta, "model_prefix", pos, sizeof pos);
    expect_error(dir, NULL, ANML_E_FORMAT, pos, "model_prefix", "not a path");
    /* a monolithic 0.3.5 model */
    dir = lut_dir("monolithic", NULL);
    qwen3_lut_meta(meta, sizeof meta, "monolithic_model", "qwen_monolithic_full_lut4.mlmodelc");
    write_text(dir, "meta.yaml", meta);
    meta_pos(meta, "monolithic_model", pos, sizeof pos);
    expect_error(dir, NULL, ANML_E_UNSUPPORTED, pos, "monolithic", NULL);
}

/* Hand-written components with hidden size 32 (every fixture has 64). */
static const char k_emb32[] =
    "program(1.3)\n"
    "[buildInfo = dict<string, string>({{\"anml-test\", \"hidden-32\"}})]\n"
    "{\n"
    "    func main<ios18>(tensor<int32, [1, 1]> input_ids) {\n"
    "        string dt = const()[name = string(\"dt\"), val = string(\"fp16\")];\n"
    "        tensor<fp16, [1, 1]> f = cast(dtype = dt, x = input_ids)[name = string(\"f\")];\n"
    "        tensor<int32, [1]> ax = const()[name = string(\"ax\"), val = tensor<int32, "
    "[1]>([-1])];\n"
    "        tensor<fp16, [1, 1, 1]> e = expand_dims(axes = ax, x = f)[name = string(\"e\")];\n"
    "        tensor<int32, [3]> reps = const()[name = string(\"reps\"), val = tensor<int32, "
    "[3]>([1, 1, 32])];\n"
    "        tensor<fp16, [1, 1, 32]> hidden_states = tile(reps = reps, x = e)[name = "
    "string(\"hidden_states\")];\n"
    "    } -> (hidden_states);\n"
    "}\n";

static const char k_head32[] =
    "program(1.3)\n"
    "[buildInfo = dict<string, string>({{\"anml-test\", \"hidden-32\"}})]\n"
    "{\n"
    "    func main<ios18>(tensor<fp16, [1, 1, 32]> hidden_states) {\n"
    "        tensor<int32, [3]> reps = const()[name = string(\"reps\"), val = tensor<int32, "
    "[3]>([1, 1, 32])];\n"
    "        tensor<fp16, [1, 1, 1024]> logits1 = tile(reps = reps, x = hidden_states)[name = "
    "string(\"logits1\")];\n"
    "    } -> (logits1);\n"
    "}\n";

static void hand_written(const char *dir, const char *name, const char *mil) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.mlmodelc", dir, name);
    assert_int_equal(mkdir(path, 0755), 0);
    write_text(path, "model.mil", mil);
}

static void test_mismatched_components(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    char meta[4096];
    qwen3_lut_meta(meta, sizeof meta, "", "");
    /* the hand-written programs load on their own */
    const char *dir = new_dir("hidden32-alone");
    hand_written(dir, "emb", k_emb32);
    hand_written(dir, "head", k_head32);
    char path[4200];
    struct anml_program *prog = NULL;
    struct anml_error err = { 0 };
    snprintf(path, sizeof path, "%s/emb.mlmodelc", dir);
    if (anml_program_load(path, &prog, &err) != ANML_OK) {
        fail_msg("%s: %s: %s", path, err.where, err.msg);
    }
    anml_program_free(prog);
    snprintf(path, sizeof path, "%s/head.mlmodelc", dir);
    if (anml_program_load(path, &prog, &err) != ANML_OK) {
        fail_msg("%s: %s: %s", path, err.where, err.msg);
    }
    anml_program_free(prog);

    dir = lut_dir("hidden32-emb", "qwen_embeddings.mlpackage");
    hand_written(dir, "qwen_embeddings", k_emb32);
    write_text(dir, "meta.yaml", meta);
    expect_error(dir, NULL, ANML_E_SHAPE, "qwen_embeddings.mlmodelc", "hidden size 32",
                 "64 of qwen_FFN_PF_lut4_chunk_01of02");

    dir = lut_dir("hidden32-head", "qwen_lm_head_lut8.mlpackage");
    hand_written(dir, "qwen_lm_head_lut8", k_head32);
    write_text(dir, "meta.yaml", meta);
    expect_error(dir, NULL, ANML_E_SHAPE, "qwen_lm_head_lut8.mlmodelc", "hidden size 32",
                 "64 of qwen_FFN_PF_lut4_chunk_01of02");

    /* chunk 1 of qwen3-tiny-fp16 (2 layers: KV state [4,2,64,16]) with chunk 2 of
     * qwen3-tiny-lut (4 layers: [8,2,64,16]) */
    dir = lut_dir("mixed-state", "qwen_FFN_PF_lut4_chunk_01of02.mlpackage");
    link_pkg(dir, "qwen3-tiny-fp16", "qwen_FFN_PF_chunk_01of01.mlpackage",
             "qwen_FFN_PF_lut4_chunk_01of02.mlpackage");
    write_text(dir, "meta.yaml", meta);
    expect_error(dir, NULL, ANML_E_SHAPE, "qwen_FFN_PF_lut4_chunk_02of02", "chunk 2",
                 "model_model_kv_cache_0");

    /* a combined chunk next to an infer-only chunk: prefill in one chunk but not the other */
    dir = lut_dir("mixed-prefill", "qwen_FFN_PF_lut4_chunk_02of02.mlpackage");
    link_pkg(dir, "qwen3-tiny-lut", "qwen_FFN_lut4_chunk_02of02.mlpackage",
             "qwen_FFN_PF_lut4_chunk_02of02.mlpackage");
    write_text(dir, "meta.yaml", meta);
    expect_error(dir, NULL, ANML_E_FORMAT, "qwen_FFN_PF_lut4_chunk_02of02", "chunk 2 lacks",
                 "prefill");
}

static void test_meta_contradictions(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    static const struct {
        const char *key, *value, *says;
    } cases[] = {
        { "context_length", "128", "context_length is 128 in meta.yaml but 64" },
        { "batch_size", "64", "batch_size is 64 in meta.yaml but 8" },
        { "split_lm_head", "8", "split_lm_head is 8 in meta.yaml but 16" },
        { "vocab_size", "151936", "vocab_size is 151936 in meta.yaml" },
        { "lm_head_chunk_sizes", "[64, 64, 64]", "lm_head_chunk_sizes" },
        { "num_logits", "8", "num_logits is 8 in meta.yaml but 16" },
        { "context_length", "sixty-four", "expected a non-negative integer" },
        { "lut_ffn", "four", "lut_ffn" },
    };
    char meta[4096], pos[64], name[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(name, sizeof name, "contra-%zu", i);
        const char *dir = lut_dir(name, NULL);
        qwen3_lut_meta(meta, sizeof meta, cases[i].key, cases[i].value);
        write_text(dir, "meta.yaml", meta);
        meta_pos(meta, cases[i].key, pos, sizeof pos);
        expect_error(dir, NULL, ANML_E_FORMAT, pos, cases[i].says, NULL);
    }
    /* the program it contradicts is named too */
    const char *dir = lut_dir("contra-named", NULL);
    qwen3_lut_meta(meta, sizeof meta, "context_length", "512");
    write_text(dir, "meta.yaml", meta);
    expect_error(dir, NULL, ANML_E_FORMAT, "meta.yaml:", "causal_mask width",
                 "qwen_FFN_PF_lut4_chunk_01of02.mlpackage");
}

static void test_bad_yaml_and_config(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    /* line 3 has a second ':' (column 17) where a plain scalar cannot hold one */
    const char *dir = lut_dir("bad-yaml", NULL);
    write_text(dir, "meta.yaml",
               "model_info:\n  name: x\n  version: 0.3.4: x\n  parameters:\n    num_chunks: 2\n");
    struct anml_error err =
        expect_error(dir, NULL, ANML_E_FORMAT, "meta.yaml:3:", "bad YAML", NULL);
    const char *col = strstr(err.where, "meta.yaml:3:") + 12;
    assert_int_equal(strtol(col, NULL, 10), 17);

    /* an unclosed flow sequence */
    dir = lut_dir("bad-yaml-2", NULL);
    write_text(dir, "meta.yaml", "model_info:\n  parameters:\n    lm_head_chunk_sizes: [64, 64\n");
    expect_error(dir, NULL, ANML_E_FORMAT, "meta.yaml:", "bad YAML", NULL);

    /* valid YAML without model_info */
    dir = lut_dir("no-model-info", NULL);
    write_text(dir, "meta.yaml", "parameters:\n  num_chunks: 2\n");
    expect_error(dir, NULL, ANML_E_FORMAT, "meta.yaml", "model_info", NULL);

    /* config.json with sizes that contradict the programs, and a broken one */
    char meta[4096];
    qwen3_lut_meta(meta, sizeof meta, "", "");
    dir = lut_dir("config-hidden", NULL);
    write_text(dir, "meta.yaml", meta);
    write_text(dir, "config.json",
               "{\"tokenizer_class\": \"Qwen2Tokenizer\", \"model_type\": \"qwen3\", "
               "\"hidden_size\": 1024}");
    expect_error(dir, NULL, ANML_E_FORMAT, "config.json", "hidden_size is 1024 in config.json",
                 "64");
    dir = lut_dir("config-vocab", NULL);
    write_text(dir, "config.json", "{\"vocab_size\": 151936, \"context_length\": 64}");
    expect_error(dir, NULL, ANML_E_FORMAT, "config.json", "vocab_size is 151936", "1024");
    dir = lut_dir("config-broken", NULL);
    write_text(dir, "config.json", "{\"tokenizer_class\": ");
    expect_error(dir, NULL, ANML_E_FORMAT, "config.json", "JSON", NULL);
    /* a matching one is fine */
    dir = lut_dir("config-ok", NULL);
    write_text(dir, "meta.yaml", meta);
    write_text(dir, "config.json", "{\"hidden_size\": 64, \"vocab_size\": 1024}");
    struct anml_model *m = load_ok(dir, NULL);
    anml_model_free(m);
}

/* A directory `sandbox/model` holding the qwen3-tiny-lut meta.yaml, the linked head and chunks,
 * and the embeddings as the zip `zip_src` (copied) or as the zip of `names` (when zip_src is
 * NULL). Returns the model directory. */
static const char *zip_case(const char *sandbox_name, const char *zip_src, const char *const *names,
                            int n, char *sandbox, size_t cap) {
    const char *sb = new_dir(sandbox_name);
    snprintf(sandbox, cap, "%s", sb);
    static char dir[4200];
    snprintf(dir, sizeof dir, "%s/model", sandbox);
    assert_int_equal(mkdir(dir, 0755), 0);
    link_pkg(dir, "qwen3-tiny-lut", "qwen_lm_head_lut8.mlpackage", NULL);
    link_pkg(dir, "qwen3-tiny-lut", "qwen_FFN_PF_lut4_chunk_01of02.mlpackage", NULL);
    link_pkg(dir, "qwen3-tiny-lut", "qwen_FFN_PF_lut4_chunk_02of02.mlpackage", NULL);
    char meta[4096], zpath[4300];
    qwen3_lut_meta(meta, sizeof meta, "", "");
    write_text(dir, "meta.yaml", meta);
    snprintf(zpath, sizeof zpath, "%s/qwen_embeddings.mlmodelc.zip", dir);
    if (zip_src) {
        char cmd[9000];
        snprintf(cmd, sizeof cmd, "cp '%s' '%s'", zip_src, zpath);
        assert_int_equal(system(cmd), 0);
    } else {
        zip_entries(zpath, names, n);
    }
    return dir;
}

/* After a refused zip: the sandbox holds only `model`, and the model directory only what was put
 * there (no unpacked folder, no temporary folder). */
static void expect_untouched(const char *sandbox, const char *dir) {
    char *top = dir_listing(sandbox);
    assert_string_equal(top, "model|");
    free(top);
    char *inside = dir_listing(dir);
    assert_string_equal(inside, "meta.yaml|qwen_FFN_PF_lut4_chunk_01of02.mlpackage|"
                                "qwen_FFN_PF_lut4_chunk_02of02.mlpackage|"
                                "qwen_embeddings.mlmodelc.zip|qwen_lm_head_lut8.mlpackage|");
    free(inside);
}

static void test_bad_zips(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    char sandbox[4096], good[4200], bad[4200], cmd[9000];
    /* a good zip of the embeddings, to damage */
    const char *gd = new_dir("zip-src");
    convert_pkg(gd, "qwen3-tiny-lut", "qwen_embeddings", NULL);
    zip_component(gd, "qwen_embeddings");
    snprintf(good, sizeof good, "%s/qwen_embeddings.mlmodelc.zip", gd);
    struct stat st;
    assert_int_equal(stat(good, &st), 0);

    /* truncated to half */
    snprintf(bad, sizeof bad, "%s/truncated.zip", gd);
    snprintf(cmd, sizeof cmd, "head -c %lld '%s' > '%s'", (long long)st.st_size / 2, good, bad);
    assert_int_equal(system(cmd), 0);
    const char *dir = zip_case("zip-truncated", bad, NULL, 0, sandbox, sizeof sandbox);
    expect_error(dir, NULL, ANML_E_FORMAT, "qwen_embeddings.mlmodelc.zip", "zip", NULL);
    expect_untouched(sandbox, dir);

    /* garbage bytes */
    snprintf(bad, sizeof bad, "%s/garbage.zip", gd);
    FILE *f = fopen(bad, "wb");
    assert_non_null(f);
    for (int i = 0; i < 5000; i++) {
        fputc((i * 7919 + 13) & 0xff, f);
    }
    fclose(f);
    dir = zip_case("zip-garbage", bad, NULL, 0, sandbox, sizeof sandbox);
    expect_error(dir, NULL, ANML_E_FORMAT, "qwen_embeddings.mlmodelc.zip", "not a readable zip",
                 NULL);
    expect_untouched(sandbox, dir);

    /* intact directory, damaged entry data (the weights dominate the middle of the file) */
    snprintf(bad, sizeof bad, "%s/damaged.zip", gd);
    char *data = anml_test_read_file(good, NULL);
    for (long long i = st.st_size / 3; i < st.st_size / 3 + 64; i++) {
        data[i] = (char)(data[i] ^ 0x5a);
    }
    f = fopen(bad, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, (size_t)st.st_size, f), (size_t)st.st_size);
    fclose(f);
    free(data);
    dir = zip_case("zip-damaged", bad, NULL, 0, sandbox, sizeof sandbox);
    expect_error(dir, NULL, ANML_E_FORMAT, "qwen_embeddings.mlmodelc.zip", NULL, NULL);
    expect_untouched(sandbox, dir);

    /* entries escaping the folder, each after a legitimate first entry */
    char abs_target[4200];
    snprintf(abs_target, sizeof abs_target, "%s/escaped-absolute.txt", g_tmp);
    const char *escapes[] = { "../evil.txt",
                              "qwen_embeddings.mlmodelc/../../evil.txt",
                              "qwen_embeddings.mlmodelc/./weights/../../evil.txt",
                              abs_target,
                              "other.mlmodelc/model.mil",
                              "qwen_embeddings.mlmodelcX/model.mil",
                              "qwen_embeddings.mlmodelc\\..\\evil.txt" };
    for (size_t i = 0; i < sizeof escapes / sizeof escapes[0]; i++) {
        const char *names[2] = { "qwen_embeddings.mlmodelc/model.mil", escapes[i] };
        char sb_name[64];
        snprintf(sb_name, sizeof sb_name, "zip-escape-%zu", i);
        dir = zip_case(sb_name, NULL, names, 2, sandbox, sizeof sandbox);
        expect_error(dir, NULL, ANML_E_FORMAT, "qwen_embeddings.mlmodelc.zip", escapes[i],
                     "outside the folder");
        expect_untouched(sandbox, dir);
        assert_int_equal(access(abs_target, F_OK), -1);
    }
    /* no folder of the right name at all */
    const char *names[1] = { "model.mil" };
    dir = zip_case("zip-no-folder", NULL, names, 1, sandbox, sizeof sandbox);
    expect_error(dir, NULL, ANML_E_FORMAT, "qwen_embeddings.mlmodelc.zip", "model.mil", NULL);
    expect_untouched(sandbox, dir);
    /* a clean zip, for contrast, loads from the same layout */
    dir = zip_case("zip-good", good, NULL, 0, sandbox, sizeof sandbox);
    struct anml_model *m = load_ok(dir, NULL);
    anml_model_free(m);
    /* nothing in g_tmp's own level came from a zip */
    assert_int_equal(access(abs_target, F_OK), -1);
    snprintf(bad, sizeof bad, "%s/evil.txt", g_tmp);
    assert_int_equal(access(bad, F_OK), -1);
}

/* ---- setup ---- */

static int setup(void **state) {
    (void)state;
    g_tmp = anml_test_tmpdir("model-dir");
    return g_tmp ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_tmp);
    int rc = system(cmd);
    free(g_tmp);
    return rc == 0 ? 0 : -1;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_meta_0_1_x),
        cmocka_unit_test(test_meta_0_3_0),
        cmocka_unit_test(test_meta_0_3_3_and_0_3_4),
        cmocka_unit_test(test_meta_0_3_5),
        cmocka_unit_test(test_no_meta),
        cmocka_unit_test(test_lut_fallback),
        cmocka_unit_test(test_mlmodelc_and_zip),
        cmocka_unit_test(test_separate_ffn_prefill),
        cmocka_unit_test(test_chunk_without_function_names),
        cmocka_unit_test(test_missing_components),
        cmocka_unit_test(test_mismatched_components),
        cmocka_unit_test(test_meta_contradictions),
        cmocka_unit_test(test_bad_yaml_and_config),
        cmocka_unit_test(test_bad_zips),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
