/* main.c -- `anml <command> ...`: dispatches to the subcommands. */
#include <stdio.h>
#include <string.h>

#include "anml.h"
#include "cli.h"

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
};

static const struct command k_commands[] = {
    { "info", anml_cli_info, "describe a .mlmodelc, .mlpackage or model directory" },
    { "convert", anml_cli_convert, "convert a .mlpackage (or .mlmodelc) into a .mlmodelc" },
    { "run", anml_cli_run, "generate text (or token ids) with an ANEMLL model directory" },
    { "predict", anml_cli_predict, "run one function of a program on .npy inputs" },
    { "tokenize", anml_cli_tokenize, "print the token ids of a text (tokenizer.json)" },
    { "synth", anml_cli_synth, "write an ANEMLL model directory of any size (random weights)" },
};

static void usage(FILE *f) {
    fprintf(f,
            "anml %s -- run ANEMLL CoreML models anywhere\n\nusage: anml <command> [options]\n\n"
            "commands:\n",
            anml_version());
    for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++) {
        fprintf(f, "  %-10s %s\n", k_commands[i].name, k_commands[i].help);
    }
    fprintf(f, "\nRun `anml <command> --help` for a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("anml %s\n", anml_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof k_commands / sizeof k_commands[0]; i++) {
        if (strcmp(argv[1], k_commands[i].name) == 0) {
            return k_commands[i].run(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "anml: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
