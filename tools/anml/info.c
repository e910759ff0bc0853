/* STUB: replaced by `anml info`. */
#include <stdio.h>

#include "cli.h"

int anml_cli_info(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "anml info: not built yet\n");
    return 1;
}
