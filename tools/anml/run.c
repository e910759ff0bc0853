/* run.c -- `anml run -m DIR (-p TEXT | --tokens 1,2,3) [-n N] [--raw] [--print-ids]`: loads an
 * ANEMLL model directory, prefills the prompt and generates greedily, streaming the output; a
 * stats line goes to stderr. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "anml.h"
#include "cli.h"

static void usage(FILE *f) {
    fprintf(f, "usage: anml run -m DIR (-p TEXT | --tokens ID,ID,...) [-n N] [-t N] [--raw] "
               "[--print-ids]\n"
               "\n"
               "  -m, --model DIR   ANEMLL model directory (meta.yaml, embeddings, FFN chunks, LM "
               "head)\n"
               "  -p, --prompt TEXT prompt text (tokenized with the model's tokenizer.json)\n"
               "  --tokens LIST     prompt as comma-separated token ids instead of text\n"
               "  -n N              generate at most N tokens (default: until EOS or the context "
               "is full)\n"
               "  -t, --threads N   worker threads (default 0: one per online core)\n"
               "  --raw             tokenize the prompt as given (the default until chat templates "
               "exist)\n"
               "  --print-ids       print generated token ids, one per line, instead of text\n");
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int parse_ids(const char *s, int32_t **out, int32_t *n) {
    int32_t cap = 16, k = 0;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    const char *p = s;
    while (ids && *p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
            free(ids);
            return -1;
        }
        if (k == cap) {
            cap *= 2;
            int32_t *g = realloc(ids, (size_t)cap * sizeof *ids);
            if (!g) {
                free(ids);
                return -1;
            }
            ids = g;
        }
        ids[k++] = (int32_t)v;
        p = *end ? end + 1 : end;
    }
    if (!ids || k == 0) {
        free(ids);
        return -1;
    }
    *out = ids;
    *n = k;
    return 0;
}

struct stream {
    bool print_ids;
    struct anml_tokenizer *tok;
    struct anml_detok *detok;
    double t_first;
    int32_t n;
};

static bool on_token(int32_t token, void *ud) {
    struct stream *st = ud;
    if (st->n++ == 0) {
        st->t_first = now_s();
    }
    if (st->print_ids) {
        printf("%d\n", (int)token);
    } else {
        const char *text;
        size_t len = 0;
        if (anml_detok_feed(st->detok, token, &text, &len) == ANML_OK && len > 0) {
            fwrite(text, 1, len, stdout);
        }
    }
    fflush(stdout);
    return true;
}

int anml_cli_run(int argc, char **argv) {
    const char *dir = NULL, *prompt = NULL, *tokens = NULL;
    long n_max = 0;
    long n_threads = 0;
    bool print_ids = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if ((!strcmp(a, "-m") || !strcmp(a, "--model")) && has) {
            dir = argv[++i];
        } else if ((!strcmp(a, "-p") || !strcmp(a, "--prompt")) && has) {
            prompt = argv[++i];
        } else if (!strcmp(a, "--tokens") && has) {
            tokens = argv[++i];
        } else if (!strcmp(a, "-n") && has) {
            char *end;
            n_max = strtol(argv[++i], &end, 10);
            if (*end || n_max < 0) {
                fprintf(stderr, "anml run: -n expects a non-negative number\n");
                return 2;
            }
        } else if ((!strcmp(a, "-t") || !strcmp(a, "--threads")) && has) {
            char *end;
            n_threads = strtol(argv[++i], &end, 10);
            if (*end || n_threads < 0 || n_threads > 256) {
                fprintf(stderr, "anml run: -t expects a thread count (0 = all cores)\n");
                return 2;
            }
        } else if (!strcmp(a, "--raw")) {
            /* the prompt is tokenized as given (no chat template yet) */
        } else if (!strcmp(a, "--print-ids")) {
            print_ids = true;
        } else {
            fprintf(stderr, "anml run: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!dir || (!prompt == !tokens)) {
        fprintf(stderr, "anml run: need -m DIR and exactly one of -p TEXT or --tokens LIST\n");
        return 2;
    }
    struct anml_error err = { 0 };
    struct anml_model *model = NULL;
    struct anml_session *sess = NULL;
    struct stream st = { .print_ids = print_ids };
    int32_t *ids = NULL, n_ids = 0;
    const int32_t *stop = NULL;
    int32_t n_stop = 0;
    int rc = 1;
    if (tokens && parse_ids(tokens, &ids, &n_ids) != 0) {
        fprintf(stderr, "anml run: --tokens expects comma-separated token ids\n");
        goto done;
    }
    struct anml_model_params mp = anml_model_params_default();
    mp.n_threads = (int32_t)n_threads;
    if (anml_model_load(dir, &mp, &model, &err) != ANML_OK) {
        fprintf(stderr, "anml run: %s%s%s\n", err.where, err.where[0] ? ": " : "", err.msg);
        goto done;
    }
    struct anml_model_info info;
    anml_model_get_info(model, &info);
    if (info.tokenizer_dir) {
        if (anml_tokenizer_load(info.tokenizer_dir, &st.tok, &err) != ANML_OK) {
            fprintf(stderr, "anml run: %s: %s\n", err.where, err.msg);
            goto done;
        }
        stop = anml_tokenizer_eos_ids(st.tok, &n_stop);
    }
    if (!print_ids && !st.tok) {
        fprintf(stderr, "anml run: %s has no tokenizer.json; use --print-ids\n", dir);
        goto done;
    }
    if (!tokens) {
        if (!st.tok) {
            fprintf(stderr, "anml run: %s has no tokenizer.json; use --tokens\n", dir);
            goto done;
        }
        /* BOS first when the tokenizer's config asks for it (Llama 3), as HF tokenizers do */
        int32_t bos = anml_tokenizer_add_bos(st.tok) ? anml_tokenizer_bos(st.tok) : -1;
        int32_t need = anml_tokenizer_encode(st.tok, prompt, strlen(prompt), true, NULL, 0);
        if (ANML_TOKENIZER_IS_ERROR(need)) {
            fprintf(stderr, "anml run: cannot tokenize the prompt: %s\n",
                    anml_status_str(ANML_TOKENIZER_ERROR_STATUS(need)));
            goto done;
        }
        need = need < 0 ? -need : need;
        ids = malloc((size_t)(need + 1) * sizeof *ids);
        n_ids = ids ? anml_tokenizer_encode(st.tok, prompt, strlen(prompt), true, ids + (bos >= 0),
                                            need)
                    : -1;
        if (n_ids < 0) {
            fprintf(stderr, "anml run: cannot tokenize the prompt\n");
            goto done;
        }
        if (bos >= 0) {
            ids[0] = bos;
            n_ids++;
        }
        if (n_ids == 0) {
            fprintf(stderr, "anml run: the prompt gives no tokens\n");
            goto done;
        }
    }
    if (st.tok && anml_detok_create(st.tok, false, &st.detok) != ANML_OK) {
        fprintf(stderr, "anml run: out of memory\n");
        goto done;
    }
    if (anml_session_create(model, &sess, &err) != ANML_OK) {
        fprintf(stderr, "anml run: %s%s%s\n", err.where, err.where[0] ? ": " : "", err.msg);
        goto done;
    }
    double t0 = now_s();
    if (anml_session_prefill(sess, ids, n_ids, NULL, NULL) != ANML_OK) {
        fprintf(stderr, "anml run: %s\n", anml_session_errmsg(sess));
        goto done;
    }
    double t1 = now_s();
    struct anml_generate_params gp = anml_generate_params_default();
    gp.max_tokens = (int32_t)n_max;
    gp.stop_ids = stop;
    gp.n_stop_ids = n_stop;
    gp.on_token = on_token;
    gp.on_token_ud = &st;
    int32_t produced = 0;
    if (anml_session_generate(sess, &gp, &produced) != ANML_OK) {
        fprintf(stderr, "\nanml run: %s\n", anml_session_errmsg(sess));
        goto done;
    }
    double t2 = now_s();
    if (!print_ids) {
        const char *text;
        size_t len = 0;
        if (anml_detok_flush(st.detok, &text, &len) == ANML_OK && len > 0) {
            fwrite(text, 1, len, stdout);
        }
        printf("\n");
    }
    fflush(stdout); /* the text before the stats line, also when stdout is not a terminal */
    /* decode speed counts the steps after the first token (the first one is TTFT) */
    double dec = produced > 1 ? (t2 - st.t_first) : 0;
    fprintf(stderr,
            "anml run: prompt %d tokens, prefill %.1f t/s, decode %.1f t/s (%d tokens), time to "
            "first token %.3f s\n",
            (int)n_ids, (double)n_ids / (t1 - t0 > 0 ? t1 - t0 : 1e-9),
            dec > 0 ? (double)(produced - 1) / dec : 0.0, (int)produced,
            produced ? st.t_first - t0 : 0.0);
    rc = 0;
done:
    free(ids);
    anml_detok_free(st.detok);
    anml_tokenizer_free(st.tok);
    anml_session_free(sess);
    anml_model_free(model);
    return rc;
}
