/* STUB: replaced by the .mlmodelc writer. */
#include "coreml/program.h"

enum anml_status anml__mil_write_mlmodelc(const struct mil_program *prog, const char *out_dir,
                                          struct anml_error *err) {
    (void)prog;
    return anml__err(err, ANML_E_UNSUPPORTED, out_dir, "writer not built yet");
}

bool anml__mil_program_equal(const struct mil_program *a, const struct mil_program *b, char *why,
                             size_t why_len) {
    (void)a;
    (void)b;
    (void)why;
    (void)why_len;
    return false;
}
