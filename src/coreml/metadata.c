/* STUB: replaced by the metadata.json reader. */
#include "coreml/program.h"

enum anml_status anml__mil_parse_metadata_json(struct mil_program *prog, const char *text,
                                               size_t len, const char *filename,
                                               struct anml_error *err) {
    (void)prog;
    (void)text;
    (void)len;
    return anml__err(err, ANML_E_UNSUPPORTED, filename, "metadata.json reader not built yet");
}
