/* STUB: replaced by the weight.bin reader. */
#include "coreml/blob.h"

struct mil_blob_store {
    int unused;
};

struct mil_blob_store *anml__blob_store_new(const char *model_dir) {
    (void)model_dir;
    return anml__calloc(1, sizeof(struct mil_blob_store));
}

void anml__blob_store_free(struct mil_blob_store *s) {
    anml__free(s);
}

enum anml_status anml__mil_validate_blobs(struct mil_program *prog, struct anml_error *err) {
    (void)prog;
    (void)err;
    return ANML_OK;
}
