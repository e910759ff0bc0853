/*
 * test_cli_run.c -- `anml run --tokens ... --print-ids` on every genuine fixture directory and
 * prompt: the printed ids equal the reference greedy ids (compared up to and including the first
 * step whose reference top1-top2 gap is below 0.03, see test_pipeline_fixtures.c), stderr carries
 * one stats line; and the error paths exit non-zero with a one-line message.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

static void run_fixture(const char *name, const char *variant) {
    ANML_TEST_REQUIRE_SHARED();
    char rel[512], mdir[4096], ipath[4096];
    snprintf(rel, sizeof rel, "fixtures/coreml/%s/model", name);
    snprintf(mdir, sizeof mdir, "%s", anml_test_shared_path(rel));
    snprintf(rel, sizeof rel, "fixtures/coreml/%s/reference/%s/index.json", name, variant);
    snprintf(ipath, sizeof ipath, "%s", anml_test_shared_path(rel));
    char *text = anml_test_read_file(ipath, NULL);
    assert_non_null(text);
    cJSON *idx = cJSON_Parse(text);
    free(text);
    const cJSON *prompt;
    cJSON_ArrayForEach(prompt, cJSON_GetObjectItemCaseSensitive(idx, "prompts")) {
        char ids[512] = "";
        size_t n = 0;
        const cJSON *v;
        cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(prompt, "prompt_ids")) {
            n += (size_t)snprintf(ids + n, sizeof ids - n, "%s%d", n ? "," : "", v->valueint);
        }
        char cmd[8192];
        snprintf(cmd, sizeof cmd, "%s run -m '%s' --tokens %s --print-ids -n 16", ANML_CLI_PATH,
                 mdir, ids);
        char *out = NULL, *err = NULL;
        int rc = anml_test_run(cmd, &out, &err);
        if (rc != 0) {
            fail_msg("%s: exit %d: %s", cmd, rc, err);
        }
        assert_non_null(strstr(err, "prefill"));
        assert_non_null(strstr(err, "decode"));
        double gap[16];
        int ng = 0;
        const cJSON *call;
        cJSON_ArrayForEach(call, cJSON_GetObjectItemCaseSensitive(prompt, "calls")) {
            const cJSON *g = cJSON_GetObjectItemCaseSensitive(call, "top1_top2_gap");
            if (g && ng < 16) {
                gap[ng++] = g->valuedouble;
            }
        }
        char *line = out;
        int step = 0;
        cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(prompt, "generated_ids")) {
            char *end;
            long got = strtol(line, &end, 10);
            if (end == line || *end != '\n') {
                fail_msg("%s %s: output line %d is not an id: %s", name, prompt->string, step, out);
            }
            if (got != v->valueint) {
                fail_msg("%s %s step %d: %ld, reference %d", name, prompt->string, step, got,
                         v->valueint);
            }
            line = end + 1;
            if (gap[step] < 0.03) {
                break;
            }
            step++;
        }
        free(out);
        free(err);
    }
    cJSON_Delete(idx);
}

static void test_fixtures_greedy_ids(void **state) {
    (void)state;
    run_fixture("qwen3-tiny-fp16", "fp16_checkpoint_weights");
    run_fixture("qwen3-tiny-lut", "fp16_mlpackage_weights");
    run_fixture("qwen25-tiny-lut8", "fp16_mlpackage_weights");
    run_fixture("llama-tiny", "fp16_checkpoint_weights");
}

static void expect_fail(const char *args, const char *needle) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s run %s", ANML_CLI_PATH, args);
    char *out = NULL, *err = NULL;
    int rc = anml_test_run(cmd, &out, &err);
    if (rc == 0) {
        fail_msg("%s: expected failure", cmd);
    }
    assert_string_equal(out, "");
    char *nl = strchr(err, '\n');
    assert_non_null(nl);
    assert_string_equal(nl + 1, ""); /* exactly one line */
    if (!strstr(err, needle)) {
        fail_msg("%s: stderr lacks '%s': %s", cmd, needle, err);
    }
    free(out);
    free(err);
}

static void test_errors(void **state) {
    (void)state;
    expect_fail("-m /nonexistent/model --tokens 1,2", "/nonexistent/model");
    expect_fail("--tokens 1,2", "need -m DIR");
    ANML_TEST_REQUIRE_SHARED();
    char args[4300];
    const char *dir = anml_test_shared_path("fixtures/coreml/llama-tiny/model");
    snprintf(args, sizeof args, "-m '%s' --tokens 1,x", dir);
    expect_fail(args, "--tokens");
    snprintf(args, sizeof args, "-m '%s' --tokens 1,5000 --print-ids", dir);
    expect_fail(args, "outside the vocabulary");
    snprintf(args, sizeof args, "-m '%s' -p hello", dir);
    expect_fail(args, "tokenizer.json");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures_greedy_ids),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
