/*
 * convert.c -- `anml convert IN OUT.mlmodelc [--force]`: loads a .mlpackage, .mlmodelc or bare
 * model.mil and writes it as a .mlmodelc directory (model.mil, metadata.json, weights/weight.bin)
 * with the library's writer. Refuses to write into an existing non-empty directory unless
 * --force, so a typo cannot clobber a model.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "coreml/program.h"

static void convert_usage(FILE *f) {
    fprintf(f, "usage: anml convert IN OUT.mlmodelc [--force]\n"
               "\n"
               "Converts IN (a .mlpackage, a .mlmodelc or a model.mil file) into a compiled-style\n"
               ".mlmodelc directory: model.mil, metadata.json and weights/weight.bin.\n"
               "\n"
               "options:\n"
               "  --force    write into OUT even if it exists and is not empty\n"
               "  -h, --help show this help\n");
}

/* 1 = exists and holds entries, 0 = missing or empty directory, -1 = exists but is not a
 * directory or cannot be read. */
static int dir_state(const char *path) {
    DIR *d = opendir(path);
    if (!d) {
        return errno == ENOENT ? 0 : -1;
    }
    int state = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            state = 1;
            break;
        }
    }
    closedir(d);
    return state;
}

static int fail(const struct anml_error *err) {
    fprintf(stderr, "anml convert: %s: %s\n", err->where[0] ? err->where : "error", err->msg);
    return 1;
}

int anml_cli_convert(int argc, char **argv) {
    const char *in = NULL;
    const char *out = NULL;
    bool force = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            convert_usage(stdout);
            return 0;
        }
        if (strcmp(a, "--force") == 0 || strcmp(a, "-f") == 0) {
            force = true;
        } else if (a[0] == '-' && a[1] != '\0') {
            fprintf(stderr, "anml convert: unknown option '%s' (see anml convert --help)\n", a);
            return 1;
        } else if (!in) {
            in = a;
        } else if (!out) {
            out = a;
        } else {
            fprintf(stderr, "anml convert: unexpected argument '%s' (see anml convert --help)\n",
                    a);
            return 1;
        }
    }
    if (!in || !out) {
        fprintf(stderr, "anml convert: need IN and OUT (see anml convert --help)\n");
        return 1;
    }
    int st_out = dir_state(out);
    if (st_out < 0) {
        fprintf(stderr, "anml convert: %s: exists and is not a readable directory\n", out);
        return 1;
    }
    if (st_out > 0 && !force) {
        fprintf(stderr, "anml convert: %s: directory exists and is not empty (use --force)\n", out);
        return 1;
    }
    struct anml_error err = { 0 };
    struct mil_program *prog = NULL;
    if (anml__mil_load(in, &prog, &err) != ANML_OK) {
        return fail(&err);
    }
    enum anml_status st = anml__mil_write_mlmodelc(prog, out, &err);
    anml__mil_program_free(prog);
    if (st != ANML_OK) {
        return fail(&err);
    }
    return 0;
}
