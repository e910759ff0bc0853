/* STUB: op family 'linear' (filled in by its implementer). */
#include "exec/exec.h"

const struct ex_opdef anml__ops_linear[] = {
    { NULL, NULL, NULL, NULL },
};
