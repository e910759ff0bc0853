/* fuzz_mil_parse.c -- libFuzzer target for the model.mil text parser: arbitrary bytes go through
 * anml__mil_parse_text into a fresh program, which is then freed. Any crash, leak, sanitizer
 * report or error without a position is a bug. The same bytes are also fed to the lenient
 * statement entry point used by the tests. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coreml/mil_text.h"
#include "coreml/program.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct mil_program *prog = anml__mil_program_new();
    if (!prog) {
        return 0;
    }
    struct anml_error err;
    memset(&err, 0, sizeof err);
    enum anml_status st = anml__mil_parse_text(prog, (const char *)data, size, "f.mil", &err);
    if (st != ANML_OK && (err.where[0] == '\0' || err.msg[0] == '\0')) {
        abort(); /* every error must say where and what */
    }
    anml__mil_program_free(prog);
    prog = anml__mil_program_new();
    if (!prog) {
        return 0;
    }
    anml__mil_parse_statements_for_test(prog, (const char *)data, size, "f.mil", &err);
    anml__mil_program_free(prog);
    return 0;
}
