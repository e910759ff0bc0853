/* registry.c -- finds an op definition by type across the per-family tables. */
#include <string.h>

#include "exec/plan_internal.h"

static const struct ex_opdef *const k_families[] = {
    anml__ops_elementwise, anml__ops_reduce, anml__ops_shape,
    anml__ops_linear,      anml__ops_misc,   anml__ops_state,
};

const struct ex_opdef *anml__op_find(const char *type) {
    for (size_t f = 0; f < sizeof k_families / sizeof k_families[0]; f++) {
        for (const struct ex_opdef *d = k_families[f]; d->name; d++) {
            if (strcmp(d->name, type) == 0) {
                return d;
            }
        }
    }
    return NULL;
}
