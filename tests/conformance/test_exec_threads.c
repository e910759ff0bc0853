/*
 * test_exec_threads.c -- thread-count determinism on the genuine fixture models: a session with
 * 1, 2 and 3 threads (anml_model_params.n_threads; 3 gives uneven row splits) produces
 * bit-identical logits after a two-batch prefill (the batched GEMM path, split across threads)
 * and after each of several decode steps (the fused T = 1 path, LM head split across threads),
 * and two sessions with the same thread count agree with each other. Runs with whatever kernel
 * set is dispatched (ANML_KERNELS selects another). Under TSan this also exercises the pool.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#define N_PROMPT 13 /* two prefill batches of 8, the second padded */
#define N_STEPS  4

/* Logits after the prompt and after each greedy step: (1 + N_STEPS) x vocab floats. */
static float *run_session(const char *mdir, int32_t n_threads, int32_t *vocab) {
    struct anml_model_params p = anml_model_params_default();
    p.n_threads = n_threads;
    struct anml_model *m = NULL;
    struct anml_error err = { 0 };
    if (anml_model_load(mdir, &p, &m, &err) != ANML_OK) {
        fail_msg("load %s: %s: %s", mdir, err.where, err.msg);
    }
    struct anml_model_info info;
    anml_model_get_info(m, &info);
    *vocab = info.vocab_size;
    struct anml_session *s = NULL;
    assert_int_equal(anml_session_create(m, &s, &err), ANML_OK);
    int32_t ids[N_PROMPT];
    for (int32_t i = 0; i < N_PROMPT; i++) {
        ids[i] = (i * 37 + 11) % info.vocab_size;
    }
    assert_int_equal(anml_session_prefill(s, ids, N_PROMPT, NULL, NULL), ANML_OK);
    size_t v = (size_t)info.vocab_size;
    float *out = malloc((1 + N_STEPS) * v * sizeof(float));
    assert_non_null(out);
    for (int32_t step = 0; step <= N_STEPS; step++) {
        const float *logits = NULL;
        assert_int_equal(anml_session_logits(s, &logits), ANML_OK);
        memcpy(out + (size_t)step * v, logits, v * sizeof(float));
        int32_t best = 0;
        for (int32_t i = 1; i < info.vocab_size; i++) {
            best = logits[i] > logits[best] ? i : best;
        }
        assert_int_equal(anml_session_push(s, best), ANML_OK);
    }
    anml_session_free(s);
    anml_model_free(m);
    return out;
}

static void check_fixture(const char *name) {
    ANML_TEST_REQUIRE_SHARED();
    char rel[512], mdir[4096];
    snprintf(rel, sizeof rel, "fixtures/coreml/%s/model", name);
    snprintf(mdir, sizeof mdir, "%s", anml_test_shared_path(rel));
    int32_t vocab = 0, vocab2 = 0;
    float *one = run_session(mdir, 1, &vocab);
    size_t bytes = (size_t)(1 + N_STEPS) * (size_t)vocab * sizeof(float);
    for (int32_t n_threads = 1; n_threads <= 3; n_threads++) {
        float *many = run_session(mdir, n_threads, &vocab2);
        assert_int_equal(vocab, vocab2);
        if (memcmp(one, many, bytes) != 0) {
            for (size_t i = 0; i < bytes / sizeof(float); i++) {
                if (memcmp(&one[i], &many[i], sizeof(float)) != 0) {
                    fail_msg("%s: %d threads: logit %zu (step %zu) is %a, 1 thread gives %a", name,
                             (int)n_threads, i % (size_t)vocab, i / (size_t)vocab, (double)many[i],
                             (double)one[i]);
                }
            }
        }
        free(many);
    }
    free(one);
}

static void test_qwen3_fp16(void **state) {
    (void)state;
    check_fixture("qwen3-tiny-fp16");
}

static void test_qwen3_lut(void **state) {
    (void)state;
    check_fixture("qwen3-tiny-lut");
}

static void test_qwen25_lut8(void **state) {
    (void)state;
    check_fixture("qwen25-tiny-lut8");
}

static void test_llama(void **state) {
    (void)state;
    check_fixture("llama-tiny");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qwen3_fp16),
        cmocka_unit_test(test_qwen3_lut),
        cmocka_unit_test(test_qwen25_lut8),
        cmocka_unit_test(test_llama),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
