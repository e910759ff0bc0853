/* predict.c -- `anml predict PATH [--function NAME] --input NAME=FILE.npy ... [--state
 * NAME=FILE.npy] --out DIR`: runs one function of one CoreML program on .npy inputs and writes
 * every output as DIR/NAME.npy and every state after the call as DIR/state.NAME.npy. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "anml.h"
#include "cli.h"

#define MAX_ARGS 64

static void usage(FILE *f) {
    fprintf(f, "usage: anml predict PATH [--function NAME] --input NAME=FILE.npy ...\n"
               "                    [--state NAME=FILE.npy ...] --out DIR\n\n"
               "Runs one function of a .mlmodelc/.mlpackage program. Writes DIR/<output>.npy for\n"
               "each output and DIR/state.<name>.npy for each state after the call. States start\n"
               "zero-filled unless --state gives their initial contents.\n");
}

struct kv {
    char *name;
    const char *file;
};

static int split_kv(char *arg, struct kv *out) {
    char *eq = strchr(arg, '=');
    if (!eq || eq == arg || !eq[1]) {
        return -1;
    }
    *eq = '\0';
    out->name = arg;
    out->file = eq + 1;
    return 0;
}

static int fail(const char *what, const struct anml_error *err) {
    if (err->where[0]) {
        fprintf(stderr, "anml predict: %s: %s: %s\n", what, err->where, err->msg);
    } else {
        fprintf(stderr, "anml predict: %s: %s\n", what, err->msg);
    }
    return 1;
}

static int write_npy(const char *dir, const char *prefix, const char *name,
                     const struct anml_tensor *t) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s%s.npy", dir, prefix, name);
    struct anml_error err = { 0 };
    if (anml_npy_write(path, t, &err) != ANML_OK) {
        return fail("write", &err);
    }
    return 0;
}

int anml_cli_predict(int argc, char **argv) {
    const char *path = NULL, *fn = NULL, *out_dir = NULL;
    struct kv inputs[MAX_ARGS], states[MAX_ARGS];
    int n_in = 0, n_st = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        bool has_val = i + 1 < argc;
        if ((!strcmp(a, "--function") || !strcmp(a, "-f")) && has_val) {
            fn = argv[++i];
        } else if (!strcmp(a, "--out") && has_val) {
            out_dir = argv[++i];
        } else if ((!strcmp(a, "--input") || !strcmp(a, "--state")) && has_val) {
            bool is_state = !strcmp(a, "--state");
            struct kv *list = is_state ? states : inputs;
            int *n = is_state ? &n_st : &n_in;
            if (*n == MAX_ARGS || split_kv(argv[++i], &list[*n]) != 0) {
                fprintf(stderr, "anml predict: %s expects NAME=FILE.npy\n", a);
                return 2;
            }
            (*n)++;
        } else if (a[0] == '-') {
            fprintf(stderr, "anml predict: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (!path) {
            path = a;
        } else {
            fprintf(stderr, "anml predict: unexpected argument '%s'\n", a);
            return 2;
        }
    }
    if (!path || !out_dir) {
        usage(stderr);
        return 2;
    }
    struct anml_error err = { 0 };
    struct anml_program *prog = NULL;
    struct anml_context *ctx = NULL;
    struct anml_state *state = NULL;
    struct anml_named_tensor named[MAX_ARGS];
    int n_loaded = 0, rc = 1;
    memset(named, 0, sizeof named);
    if (anml_program_load(path, &prog, &err) != ANML_OK) {
        rc = fail(path, &err);
        goto done;
    }
    if (anml_context_create(prog, fn, &ctx, &err) != ANML_OK) {
        rc = fail(fn ? fn : "context", &err);
        goto done;
    }
    if (anml_state_create(&state, &err) != ANML_OK ||
        anml_state_add_program(state, prog, fn, &err) != ANML_OK) {
        rc = fail("state", &err);
        goto done;
    }
    for (int i = 0; i < n_st; i++) {
        struct anml_tensor view, t;
        if (anml_state_find(state, states[i].name, &view) != ANML_OK) {
            fprintf(stderr, "anml predict: the function has no state '%s'\n", states[i].name);
            goto done;
        }
        if (anml_npy_read(states[i].file, &t, &err) != ANML_OK) {
            rc = fail(states[i].file, &err);
            goto done;
        }
        bool same = t.dtype == view.dtype && t.rank == view.rank;
        for (int d = 0; same && d < t.rank; d++) {
            same = t.shape[d] == view.shape[d];
        }
        if (same) {
            memcpy(view.data, t.data, anml_tensor_nbytes(&t));
        }
        anml_free(t.data);
        if (!same) {
            fprintf(stderr, "anml predict: %s: dtype/shape differ from state '%s'\n",
                    states[i].file, states[i].name);
            goto done;
        }
    }
    for (int i = 0; i < n_in; i++) {
        named[i].name = inputs[i].name;
        if (anml_npy_read(inputs[i].file, &named[i].tensor, &err) != ANML_OK) {
            rc = fail(inputs[i].file, &err);
            goto done;
        }
        n_loaded++;
    }
    if (anml_context_run(ctx, named, n_in, state) != ANML_OK) {
        fprintf(stderr, "anml predict: %s\n", anml_context_errmsg(ctx));
        goto done;
    }
    if (mkdir(out_dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "anml predict: cannot create %s: %s\n", out_dir, strerror(errno));
        goto done;
    }
    for (int32_t i = 0; i < anml_context_n_outputs(ctx); i++) {
        const char *name;
        struct anml_tensor t;
        if (anml_context_output_at(ctx, i, &name, &t) != ANML_OK ||
            write_npy(out_dir, "", name, &t) != 0) {
            goto done;
        }
    }
    for (int32_t i = 0; i < anml_state_count(state); i++) {
        const char *name;
        struct anml_tensor t;
        if (anml_state_buffer(state, i, &name, &t) != ANML_OK ||
            write_npy(out_dir, "state.", name, &t) != 0) {
            goto done;
        }
    }
    rc = 0;
done:
    for (int i = 0; i < n_loaded; i++) {
        anml_free(named[i].tensor.data);
    }
    anml_state_free(state);
    anml_context_free(ctx);
    anml_program_free(prog);
    return rc;
}
