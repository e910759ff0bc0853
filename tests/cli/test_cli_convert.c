/* test_cli_convert.c -- `anml convert` as a user runs it: success on a real fixture package (the
 * result loads back equal), one-line errors with exit status 1 for a missing input and for a
 * non-empty output directory without --force, and --help. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "coreml/program.h"
#include "testutil.h"

#define FIXTURE "fixtures/coreml/qwen3-tiny-lut/model/qwen_FFN_lut4_chunk_01of02.mlpackage"

static int run(const char *args, char **out, char **err) {
    size_t n = strlen(ANML_CLI_PATH) + strlen(args) + 8;
    char *cmd = malloc(n);
    snprintf(cmd, n, "'%s' %s", ANML_CLI_PATH, args);
    int rc = anml_test_run(cmd, out, err);
    free(cmd);
    return rc;
}

static bool exists(const char *dir, const char *rel) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    struct stat st;
    return stat(path, &st) == 0;
}

/* Exactly one line, prefixed as the CLI promises. */
static void assert_one_line_error(const char *err) {
    assert_non_null(err);
    assert_true(strncmp(err, "anml convert: ", 14) == 0);
    const char *nl = strchr(err, '\n');
    assert_non_null(nl);
    assert_int_equal(nl[1], '\0');
}

static void test_convert_fixture(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    char *tmp = anml_test_tmpdir("cli-convert");
    char *in = strdup(anml_test_shared_path(FIXTURE));
    char args[8192];
    snprintf(args, sizeof args, "convert '%s' '%s/out.mlmodelc'", in, tmp);
    char *out = NULL, *err = NULL;
    int rc = run(args, &out, &err);
    if (rc != 0) {
        fail_msg("exit %d, stderr: %s", rc, err ? err : "");
    }
    assert_string_equal(out, ""); /* nothing on stdout */
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/out.mlmodelc", tmp);
    assert_true(exists(dir, "model.mil"));
    assert_true(exists(dir, "metadata.json"));
    assert_true(exists(dir, "weights/weight.bin"));
    free(out);
    free(err);

    /* what it wrote is the same program */
    struct mil_program *a = NULL, *b = NULL;
    assert_int_equal(anml__mil_load(in, &a, NULL), ANML_OK);
    assert_int_equal(anml__mil_load(dir, &b, NULL), ANML_OK);
    char why[1024];
    if (!anml__mil_program_equal(a, b, why, sizeof why)) {
        fail_msg("converted program differs: %s", why);
    }
    anml__mil_program_free(a);
    anml__mil_program_free(b);

    /* a second conversion into the now non-empty directory is refused ... */
    rc = run(args, &out, &err);
    assert_int_equal(rc, 1);
    assert_one_line_error(err);
    assert_non_null(strstr(err, "--force"));
    free(out);
    free(err);
    /* ... unless forced */
    snprintf(args, sizeof args, "convert '%s' '%s/out.mlmodelc' --force", in, tmp);
    rc = run(args, &out, &err);
    if (rc != 0) {
        fail_msg("--force: exit %d, stderr: %s", rc, err ? err : "");
    }
    free(out);
    free(err);
    free(in);
    free(tmp);
}

static void test_convert_missing_input(void **state) {
    (void)state;
    char *tmp = anml_test_tmpdir("cli-convert-missing");
    char args[4200];
    snprintf(args, sizeof args, "convert '%s/no-such.mlpackage' '%s/out.mlmodelc'", tmp, tmp);
    char *out = NULL, *err = NULL;
    int rc = run(args, &out, &err);
    assert_int_not_equal(rc, 0);
    assert_one_line_error(err);
    assert_non_null(strstr(err, "no-such.mlpackage"));
    assert_false(exists(tmp, "out.mlmodelc/model.mil"));
    free(out);
    free(err);
    free(tmp);
}

static void test_convert_usage(void **state) {
    (void)state;
    char *out = NULL, *err = NULL;
    assert_int_equal(run("convert --help", &out, &err), 0);
    assert_non_null(strstr(out, "usage: anml convert IN OUT.mlmodelc [--force]"));
    free(out);
    free(err);
    assert_int_equal(run("convert onlyone", &out, &err), 1);
    assert_one_line_error(err);
    free(out);
    free(err);
    assert_int_equal(run("convert a b --bogus", &out, &err), 1);
    assert_one_line_error(err);
    free(out);
    free(err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_convert_fixture),
        cmocka_unit_test(test_convert_missing_input),
        cmocka_unit_test(test_convert_usage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
