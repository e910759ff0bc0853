/* STUB: op family 'elementwise' (filled in by its implementer). */
#include "exec/exec.h"

const struct ex_opdef anml__ops_elementwise[] = {
    { NULL, NULL, NULL, NULL },
};
