/* STUB: replaced by `anml convert`. */
#include <stdio.h>

#include "cli.h"

int anml_cli_convert(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "anml convert: not built yet\n");
    return 1;
}
