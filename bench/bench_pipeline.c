/*
 * bench_pipeline.c -- load / prefill / decode figures of an ANEMLL model directory through the
 * public pipeline API: load time, peak RSS after loading (to compare with the files' size),
 * batched prefill tokens/s and greedy decode tokens/s.
 *
 * usage: bench_pipeline DIR [PROMPT_TOKENS (default 128)] [DECODE_TOKENS (default 32)]
 * Built and run by bench/bench_synth.sh.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

#include "anml.h"

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [PROMPT_TOKENS] [DECODE_TOKENS]\n", argv[0]);
        return 2;
    }
    int n_prompt = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 128;
    int n_gen = argc > 3 ? (int)strtol(argv[3], NULL, 10) : 32;
    struct anml_error err = { 0 };
    struct anml_model *m = NULL;
    double t0 = now_s();
    if (anml_model_load(argv[1], NULL, &m, &err) != ANML_OK) {
        fprintf(stderr, "load: %s: %s\n", err.where, err.msg);
        return 1;
    }
    double t1 = now_s();
    double rss_load = peak_rss_mb();
    struct anml_session *s = NULL;
    if (anml_session_create(m, &s, &err) != ANML_OK) {
        fprintf(stderr, "session: %s\n", err.msg);
        return 1;
    }
    double t2 = now_s();
    printf("load %.2f s (peak RSS %.0f MB), session %.2f s (peak RSS %.0f MB)\n", t1 - t0, rss_load,
           t2 - t1, peak_rss_mb());
    struct anml_model_info info;
    anml_model_get_info(m, &info);
    if (n_prompt + n_gen > info.context_length) {
        n_prompt = info.context_length - n_gen;
    }
    int32_t *ids = malloc((size_t)n_prompt * sizeof *ids);
    unsigned x = 12345;
    for (int i = 0; i < n_prompt; i++) {
        x = x * 1664525u + 1013904223u;
        ids[i] = (int32_t)((x >> 8) % (unsigned)info.vocab_size);
    }
    double t3 = now_s();
    if (anml_session_prefill(s, ids, n_prompt, NULL, NULL) != ANML_OK) {
        fprintf(stderr, "prefill: %s\n", anml_session_errmsg(s));
        return 1;
    }
    double t4 = now_s();
    struct anml_generate_params gp = anml_generate_params_default();
    gp.max_tokens = n_gen;
    int32_t produced = 0;
    if (anml_session_generate(s, &gp, &produced) != ANML_OK) {
        fprintf(stderr, "generate: %s\n", anml_session_errmsg(s));
        return 1;
    }
    double t5 = now_s();
    printf("prefill %d tokens in %.2f s: %.1f tokens/s (batch %d)\n", n_prompt, t4 - t3,
           n_prompt / (t4 - t3), (int)info.batch_size);
    printf("decode %d tokens in %.2f s: %.2f tokens/s\n", (int)produced, t5 - t4,
           produced / (t5 - t4));
    printf("peak RSS %.0f MB\n", peak_rss_mb());
    free(ids);
    anml_session_free(s);
    anml_model_free(m);
    return 0;
}
