/*
 * tokenize.c -- `anml tokenize (-m DIR | --tokenizer FILE.json) TEXT`: prints the token ids of
 * TEXT on one line, separated by single spaces. Special tokens written in TEXT ("<|im_start|>")
 * are parsed as such and no BOS is added, so the output is what the model is fed for that exact
 * text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "anml.h"
#include "cli.h"

static void tokenize_usage(FILE *f) {
    fprintf(f, "usage: anml tokenize (-m DIR | --tokenizer FILE.json) TEXT\n"
               "\n"
               "Prints the token ids of TEXT on one line, separated by spaces. Special tokens\n"
               "spelled in TEXT are recognized; no BOS token is added.\n"
               "\n"
               "options:\n"
               "  -m, --model DIR         model directory holding tokenizer.json\n"
               "  -t, --tokenizer FILE    a tokenizer.json file\n"
               "  -h, --help              show this help\n");
}

int anml_cli_tokenize(int argc, char **argv) {
    const char *model = NULL, *file = NULL, *text = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            tokenize_usage(stdout);
            return 0;
        }
        if (strcmp(a, "-m") == 0 || strcmp(a, "--model") == 0 || strcmp(a, "-t") == 0 ||
            strcmp(a, "--tokenizer") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "anml tokenize: %s needs a value (see anml tokenize --help)\n", a);
                return 1;
            }
            if (strcmp(a, "-m") == 0 || strcmp(a, "--model") == 0) {
                model = argv[++i];
            } else {
                file = argv[++i];
            }
        } else if (strcmp(a, "--") == 0 && i + 1 < argc && !text) {
            text = argv[++i];
        } else if (a[0] == '-' && a[1] != '\0' && !text) {
            fprintf(stderr, "anml tokenize: unknown option '%s' (see anml tokenize --help)\n", a);
            return 1;
        } else if (!text) {
            text = a;
        } else {
            fprintf(stderr,
                    "anml tokenize: unexpected argument '%s' (quote TEXT as one argument)\n", a);
            return 1;
        }
    }
    if ((model != NULL) == (file != NULL)) {
        fprintf(stderr, "anml tokenize: give exactly one of -m DIR and --tokenizer FILE.json\n");
        return 1;
    }
    if (!text) {
        fprintf(stderr, "anml tokenize: missing TEXT (see anml tokenize --help)\n");
        return 1;
    }
    struct anml_tokenizer *tok = NULL;
    struct anml_error err = { 0 };
    if (anml_tokenizer_load(model ? model : file, &tok, &err) != ANML_OK) {
        fprintf(stderr, "anml tokenize: %s: %s\n", err.where[0] ? err.where : "error", err.msg);
        return 1;
    }
    size_t len = strlen(text);
    int32_t n = anml_tokenizer_encode(tok, text, len, true, NULL, 0);
    int32_t *ids = NULL;
    if (n < 0 && !ANML_TOKENIZER_IS_ERROR(n)) {
        ids = malloc((size_t)-n * sizeof *ids);
        n = ids ? anml_tokenizer_encode(tok, text, len, true, ids, -n)
                : INT32_MIN + (int32_t)ANML_E_NOMEM;
    }
    if (ANML_TOKENIZER_IS_ERROR(n)) {
        fprintf(stderr, "anml tokenize: encoding failed: %s\n",
                anml_status_str(ANML_TOKENIZER_ERROR_STATUS(n)));
        free(ids);
        anml_tokenizer_free(tok);
        return 1;
    }
    for (int32_t i = 0; i < n; i++) {
        printf(i ? " %d" : "%d", (int)ids[i]);
    }
    printf("\n");
    free(ids);
    anml_tokenizer_free(tok);
    return fflush(stdout) == 0 ? 0 : 1;
}
