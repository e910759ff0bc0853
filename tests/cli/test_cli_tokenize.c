/* test_cli_tokenize.c -- `anml tokenize` as a user runs it: the ids printed for reference texts
 * (../shared/fixtures/tokenizer/{qwen3,llama3}.jsonl, including a chat prompt with special tokens
 * and the empty text) equal the reference ids, through both --tokenizer FILE and -m DIR; usage
 * errors and a missing file give one line on stderr and exit status 1; --help goes to stdout. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "testutil.h"

static const char *models_dir(const char *family) {
    static char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer-%s/models", ANML_TOKENIZER_DIR, family);
    return path;
}

#define REQUIRE_TOKENIZER(family)                                                              \
  do {                                                                                         \
    char p_[4200];                                                                             \
    struct stat st_;                                                                           \
    snprintf(p_, sizeof p_, "%s/tokenizer.json", models_dir(family));                          \
    if (stat(p_, &st_) != 0) {                                                                 \
      if (anml_test_fixtures_required()) {                                                     \
        fail_msg("fixtures required but %s is missing (run scripts/fetch-tokenizers.sh)", p_); \
      }                                                                                        \
      print_message("SKIP: %s missing (run scripts/fetch-tokenizers.sh)\n", p_);               \
      skip();                                                                                  \
    }                                                                                          \
  } while (0)

/* Appends s to the command as one single-quoted shell word. */
static void append_quoted(char *cmd, size_t cap, const char *s) {
    size_t n = strlen(cmd);
    if (n + 2 < cap) {
        cmd[n++] = '\'';
    }
    for (; *s && n + 6 < cap; s++) {
        if (*s == '\'') {
            memcpy(cmd + n, "'\\''", 4);
            n += 4;
        } else {
            cmd[n++] = *s;
        }
    }
    cmd[n++] = '\'';
    cmd[n] = '\0';
}

static int run(const char *args, const char *text, char **out, char **err) {
    size_t cap = strlen(ANML_CLI_PATH) + strlen(args) + (text ? 4 * strlen(text) : 0) + 64;
    char *cmd = malloc(cap);
    snprintf(cmd, cap, "'%s' %s ", ANML_CLI_PATH, args);
    if (text) {
        append_quoted(cmd, cap, text);
    }
    int rc = anml_test_run(cmd, out, err);
    free(cmd);
    return rc;
}

static void assert_one_line_error(const char *err) {
    assert_non_null(err);
    if (strncmp(err, "anml tokenize: ", 15) != 0) {
        fail_msg("stderr does not start with the command prefix: %s", err);
    }
    const char *nl = strchr(err, '\n');
    assert_non_null(nl);
    assert_int_equal(nl[1], '\0');
}

/* Runs the texts of the given 1-based fixture lines and compares the printed ids. */
static void check_lines(const char *family, const char *how, const int *wanted, int n_wanted) {
    char rel[128];
    snprintf(rel, sizeof rel, "fixtures/tokenizer/%s.jsonl", family);
    char *data = anml_test_read_file(anml_test_shared_path(rel), NULL);
    assert_non_null(data);
    int lineno = 0;
    for (char *line = data, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) {
            *next++ = '\0';
        }
        lineno++;
        bool use = false;
        for (int i = 0; i < n_wanted; i++) {
            use = use || wanted[i] == lineno;
        }
        if (!use) {
            continue;
        }
        cJSON *obj = cJSON_Parse(line);
        assert_non_null(obj);
        const char *text = cJSON_GetObjectItemCaseSensitive(obj, "text")->valuestring;
        const cJSON *ids = cJSON_GetObjectItemCaseSensitive(obj, "ids");
        char want[8192] = "";
        size_t w = 0;
        const cJSON *id;
        cJSON_ArrayForEach(id, ids) {
            w += (size_t)snprintf(want + w, sizeof want - w, "%s%d", w ? " " : "",
                                  (int)id->valuedouble);
        }
        snprintf(want + w, sizeof want - w, "\n");
        char args[4400];
        snprintf(args, sizeof args, "tokenize %s '%s%s' --", how, models_dir(family),
                 strcmp(how, "--tokenizer") == 0 ? "/tokenizer.json" : "");
        char *out = NULL, *err = NULL;
        int rc = run(args, text, &out, &err);
        if (rc != 0) {
            fail_msg("%s line %d: exit %d, stderr: %s", family, lineno, rc, err ? err : "");
        }
        if (strcmp(out, want) != 0) {
            fail_msg("%s line %d: printed \"%s\", reference \"%s\"", family, lineno, out, want);
        }
        assert_string_equal(err, "");
        free(out);
        free(err);
        cJSON_Delete(obj);
    }
    free(data);
}

/* Lines: 1 the empty text, 13 "Hello, world!", 14 contractions, 45 a chat prompt with
 * <|im_start|>/<|im_end|>, 49 a Llama 3 header prompt. */
static void test_tokenize_qwen3_file(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    REQUIRE_TOKENIZER("qwen3");
    const int lines[] = { 1, 13, 14, 45, 49 };
    check_lines("qwen3", "--tokenizer", lines, 5);
}

static void test_tokenize_llama3_model_dir(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    REQUIRE_TOKENIZER("llama3");
    const int lines[] = { 1, 13, 14, 45, 49 };
    check_lines("llama3", "-m", lines, 5);
}

static void test_tokenize_usage_errors(void **state) {
    (void)state;
    char *out = NULL, *err = NULL;
    /* no TEXT */
    assert_int_equal(run("tokenize --tokenizer x.json", NULL, &out, &err), 1);
    assert_one_line_error(err);
    assert_string_equal(out, "");
    free(out);
    free(err);
    /* neither or both sources */
    assert_int_equal(run("tokenize", "hi", &out, &err), 1);
    assert_one_line_error(err);
    free(out);
    free(err);
    assert_int_equal(run("tokenize -m a --tokenizer b", "hi", &out, &err), 1);
    assert_one_line_error(err);
    free(out);
    free(err);
    /* an unknown option, a missing value */
    assert_int_equal(run("tokenize --frobnicate", "hi", &out, &err), 1);
    assert_one_line_error(err);
    assert_non_null(strstr(err, "--frobnicate"));
    free(out);
    free(err);
    assert_int_equal(run("tokenize -m", NULL, &out, &err), 1);
    assert_one_line_error(err);
    free(out);
    free(err);
    /* a file that does not exist: the library's error, on one line */
    assert_int_equal(run("tokenize --tokenizer /nonexistent/tokenizer.json", "hi", &out, &err), 1);
    assert_one_line_error(err);
    assert_non_null(strstr(err, "/nonexistent/tokenizer.json"));
    assert_string_equal(out, "");
    free(out);
    free(err);
    /* help */
    assert_int_equal(run("tokenize --help", NULL, &out, &err), 0);
    assert_non_null(strstr(out, "usage: anml tokenize"));
    free(out);
    free(err);
    /* the top-level usage lists the command */
    assert_int_equal(run("--help", NULL, &out, &err), 0);
    assert_non_null(strstr(out, "tokenize"));
    free(out);
    free(err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokenize_qwen3_file),
        cmocka_unit_test(test_tokenize_llama3_model_dir),
        cmocka_unit_test(test_tokenize_usage_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
