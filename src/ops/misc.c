/* STUB: op family 'misc' (filled in by its implementer). */
#include "exec/exec.h"

const struct ex_opdef anml__ops_misc[] = {
    { NULL, NULL, NULL, NULL },
};
