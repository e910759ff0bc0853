/* STUB: op family 'reduce' (filled in by its implementer). */
#include "exec/exec.h"

const struct ex_opdef anml__ops_reduce[] = {
    { NULL, NULL, NULL, NULL },
};
