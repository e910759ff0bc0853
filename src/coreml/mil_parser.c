/* STUB: replaced by the MIL text parser. */
#include "coreml/program.h"

enum anml_status anml__mil_parse_text(struct mil_program *prog, const char *text, size_t len,
                                      const char *filename, struct anml_error *err) {
    (void)prog;
    (void)text;
    (void)len;
    return anml__err(err, ANML_E_UNSUPPORTED, filename, "MIL text parser not built yet");
}
