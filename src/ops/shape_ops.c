/* STUB: op family 'shape' (filled in by its implementer). */
#include "exec/exec.h"

const struct ex_opdef anml__ops_shape[] = {
    { NULL, NULL, NULL, NULL },
};
