/*
 * fuzz_model_dir.c -- anml_model_load on a model directory made from the input. The first byte
 * picks what the rest becomes: even, the meta.yaml of a directory holding nothing else (YAML
 * parsing, integer fields, name building, discovery errors); odd, the zip
 * m_embeddings.mlmodelc.zip next to a meta.yaml with model_prefix m (archive checks, entry-name
 * checks, extraction). Loading must fail or succeed cleanly, and afterwards the sandbox around
 * the model directory must hold nothing but the model directory: no zip entry may land outside.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char g_root[64]; /* the sandbox: <tmp>/anml-fuzz-md-XXXXXX */
static char g_dir[128]; /* g_root/model */

static const char k_meta[] = "model_info:\n  parameters:\n    model_prefix: m\n    num_chunks: 1\n";

static void quiet(enum anml_log_level level, const char *line, void *ud) {
    (void)level;
    (void)line;
    (void)ud;
}

/* The sandbox must hold exactly one entry, "model". */
static void check_sandbox(void) {
    DIR *d = opendir(g_root);
    if (!d) {
        abort();
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 &&
            strcmp(e->d_name, "model") != 0) {
            fprintf(stderr, "fuzz_model_dir: %s/%s was written outside the model directory\n",
                    g_root, e->d_name);
            abort();
        }
    }
    closedir(d);
}

static void cleanup(void) {
    anml__rmtree(g_root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_root[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(g_root, sizeof g_root, "%s/anml-fuzz-md-XXXXXX", t && strlen(t) < 32 ? t : "/tmp");
        if (!mkdtemp(g_root)) {
            abort();
        }
        snprintf(g_dir, sizeof g_dir, "%s/model", g_root);
        atexit(cleanup);
        anml_log_set(quiet, NULL, ANML_LOG_LEVEL_ERROR);
    }
    if (size < 1) {
        return 0;
    }
    anml__rmtree(g_dir);
    if (anml__mkdirs(g_dir, NULL) != ANML_OK) {
        abort();
    }
    char path[256];
    snprintf(path, sizeof path, "%s/meta.yaml", g_dir);
    if (data[0] & 1) {
        if (anml__write_file(path, k_meta, sizeof k_meta - 1, NULL) != ANML_OK) {
            abort();
        }
        snprintf(path, sizeof path, "%s/m_embeddings.mlmodelc.zip", g_dir);
    }
    if (anml__write_file(path, data + 1, size - 1, NULL) != ANML_OK) {
        abort();
    }
    struct anml_model *m = NULL;
    struct anml_error err;
    memset(&err, 0, sizeof err);
    enum anml_status st = anml_model_load(g_dir, NULL, &m, &err);
    if ((st == ANML_OK) != (m != NULL) || (st != ANML_OK && (!err.msg[0] || err.code != st))) {
        abort();
    }
    anml_model_free(m);
    check_sandbox();
    anml__rmtree(g_dir);
    return 0;
}
