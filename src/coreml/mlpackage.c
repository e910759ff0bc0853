/* STUB: replaced by the .mlpackage reader. */
#include "coreml/program.h"

enum anml_status anml__mlpackage_parse_model(struct mil_program *prog, const uint8_t *data,
                                             size_t len, const char *filename,
                                             struct anml_error *err) {
    (void)prog;
    (void)data;
    (void)len;
    return anml__err(err, ANML_E_UNSUPPORTED, filename, "protobuf reader not built yet");
}

enum anml_status anml__mlpackage_load(struct mil_program *prog, const char *dir,
                                      struct anml_error *err) {
    (void)prog;
    return anml__err(err, ANML_E_UNSUPPORTED, dir, ".mlpackage reader not built yet");
}
