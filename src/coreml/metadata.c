/*
 * metadata.c -- metadata.json of a .mlmodelc (coreml-format.md §2.3) -> prog->desc and
 * prog->spec_version, then a cross-check of the described features against the MIL functions
 * that anml__mil_parse_text already put in prog.
 *
 * The file is a JSON array holding one object. Feature-level values are all strings, including
 * numbers, flags and shapes ("[1, 10]", "[[1], [2]]", "[[1, 4], [4, -1]]"); shapes are parsed
 * here strictly. Errors name the file and the field as a JSON path
 * ("metadata.json: inputSchema[2].shape: ..."); contradictions with model.mil name both sides.
 */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "coreml/program.h"

#define META_MAX_RANK 32

struct meta {
    struct mil_program *prog;
    struct anml_arena *arena;
    const char *filename; /* as given, for err->where */
    const char *base;     /* its last path component, for messages */
    struct anml_error *err;
};

static enum anml_status merr(struct meta *m, enum anml_status code, const char *field,
                             const char *fmt, ...) ANML_PRINTF(4, 5);

static enum anml_status merr(struct meta *m, enum anml_status code, const char *field,
                             const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    enum anml_status st = anml__verr_field(m->err, code, m->filename, m->base, field, fmt, ap);
    va_end(ap);
    return st;
}

static enum anml_status nomem(struct meta *m) {
    return merr(m, ANML_E_NOMEM, NULL, "out of memory");
}

static void field_path(char *buf, size_t cap, const char *parent, const char *key) {
    snprintf(buf, cap, "%s%s%s", parent, parent[0] ? "." : "", key);
}

/* An optional string member: absent -> *out = NULL; present but not a string -> error. */
static enum anml_status get_string(struct meta *m, const cJSON *obj, const char *key,
                                   const char *parent, bool required, const char **out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);
    char path[256];
    *out = NULL;
    if (!it) {
        if (required) {
            field_path(path, sizeof path, parent, key);
            return merr(m, ANML_E_FORMAT, path, "missing");
        }
        return ANML_OK;
    }
    if (!cJSON_IsString(it) || !it->valuestring) {
        field_path(path, sizeof path, parent, key);
        return merr(m, ANML_E_FORMAT, path, "expected a string");
    }
    *out = it->valuestring;
    return ANML_OK;
}

static enum anml_status dup_string(struct meta *m, const cJSON *obj, const char *key,
                                   const char *parent, char **out) {
    const char *s;
    enum anml_status st = get_string(m, obj, key, parent, false, &s);
    *out = NULL;
    if (st != ANML_OK || !s) {
        return st;
    }
    *out = anml__arena_strdup(m->arena, s);
    return *out ? ANML_OK : nomem(m);
}

/* ---- shape strings ---- */

static const char *skip_ws(const char *s) {
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r') {
        s++;
    }
    return s;
}

/* "[a, b, ...]" of decimal integers (negative only when allow_neg) starting at *sp. */
static bool parse_int_list(const char **sp, int64_t *out, int32_t *n, bool allow_neg) {
    const char *s = skip_ws(*sp);
    *n = 0;
    if (*s != '[') {
        return false;
    }
    s = skip_ws(s + 1);
    if (*s == ']') {
        *sp = s + 1;
        return true;
    }
    for (;;) {
        bool neg = *s == '-';
        if (neg) {
            if (!allow_neg) {
                return false;
            }
            s++;
        }
        if (*s < '0' || *s > '9' || *n == META_MAX_RANK) {
            return false;
        }
        int64_t v = 0;
        while (*s >= '0' && *s <= '9') {
            int d = *s - '0';
            if (v > (INT64_MAX - d) / 10) {
                return false;
            }
            v = v * 10 + d;
            s++;
        }
        out[(*n)++] = neg ? -v : v;
        s = skip_ws(s);
        if (*s == ',') {
            s = skip_ws(s + 1);
            continue;
        }
        if (*s == ']') {
            *sp = s + 1;
            return true;
        }
        return false;
    }
}

static bool at_end(const char *s) {
    return *skip_ws(s) == '\0';
}

/* ---- features ---- */

static const struct {
    const char *name;
    enum mil_feature_kind kind;
} k_kinds[] = {
    { "MultiArray", MIL_FEATURE_MULTIARRAY }, { "State", MIL_FEATURE_STATE },
    { "Int64", MIL_FEATURE_INT64 },           { "Double", MIL_FEATURE_DOUBLE },
    { "String", MIL_FEATURE_STRING },         { "Image", MIL_FEATURE_IMAGE },
    { "Dictionary", MIL_FEATURE_DICTIONARY }, { "Sequence", MIL_FEATURE_SEQUENCE },
};

static const struct {
    const char *name;
    enum anml_dtype dtype;
} k_dtypes[] = {
    { "Float16", ANML_DTYPE_F16 }, { "Float32", ANML_DTYPE_F32 }, { "Double", ANML_DTYPE_F64 },
    { "Int32", ANML_DTYPE_INT32 }, { "Int8", ANML_DTYPE_INT8 },
};

static const char *kind_name(enum mil_feature_kind k) {
    for (size_t i = 0; i < sizeof k_kinds / sizeof k_kinds[0]; i++) {
        if (k_kinds[i].kind == k) {
            return k_kinds[i].name;
        }
    }
    return "?";
}

static const char *dtype_feature_name(enum anml_dtype dt) {
    for (size_t i = 0; i < sizeof k_dtypes / sizeof k_dtypes[0]; i++) {
        if (k_dtypes[i].dtype == dt) {
            return k_dtypes[i].name;
        }
    }
    return anml_dtype_name(dt);
}

static int64_t *dup_dims(struct meta *m, const int64_t *d, int32_t n) {
    int64_t *out = anml__arena_array(m->arena, n > 0 ? (size_t)n : 1, sizeof *out);
    if (out && n > 0) {
        memcpy(out, d, (size_t)n * sizeof *out);
    }
    return out;
}

/* Shape fields of a MultiArray / State feature: shape, enumeratedShapes, shapeRange. */
static enum anml_status parse_feature_shapes(struct meta *m, const cJSON *obj, const char *path,
                                             struct mil_feature *f) {
    const char *shape, *enums, *range;
    enum anml_status st;
    char fp[256];
    if ((st = get_string(m, obj, "shape", path, false, &shape)) != ANML_OK ||
        (st = get_string(m, obj, "enumeratedShapes", path, false, &enums)) != ANML_OK ||
        (st = get_string(m, obj, "shapeRange", path, false, &range)) != ANML_OK) {
        return st;
    }
    int64_t dims[META_MAX_RANK];
    int32_t rank = -1;
    if (shape) {
        const char *s = shape;
        int32_t n;
        if (!parse_int_list(&s, dims, &n, false) || !at_end(s)) {
            field_path(fp, sizeof fp, path, "shape");
            return merr(m, ANML_E_FORMAT, fp, "expected \"[d, ...]\", found \"%.64s\"", shape);
        }
        rank = n;
        if (!(f->shape = dup_dims(m, dims, n))) {
            return nomem(m);
        }
    }
    if (enums) {
        field_path(fp, sizeof fp, path, "enumeratedShapes");
        const char *s = skip_ws(enums);
        if (*s != '[') {
            return merr(m, ANML_E_FORMAT, fp, "expected \"[[d, ...], ...]\", found \"%.64s\"",
                        enums);
        }
        s = skip_ws(s + 1);
        int32_t cap = 0;
        while (*s != ']') {
            int32_t n;
            if (!parse_int_list(&s, dims, &n, false) || (rank >= 0 && n != rank)) {
                return merr(m, ANML_E_FORMAT, fp,
                            "expected shapes \"[d, ...]\" of rank %d, found \"%.64s\"", rank,
                            enums);
            }
            rank = n;
            if (f->n_enum_shapes == cap) {
                int32_t nc = cap ? cap * 2 : 4;
                int64_t **ns = anml__arena_array(m->arena, (size_t)nc, sizeof *ns);
                if (!ns) {
                    return nomem(m);
                }
                if (cap) {
                    memcpy(ns, f->enum_shapes, (size_t)cap * sizeof *ns);
                }
                f->enum_shapes = ns;
                cap = nc;
            }
            if (!(f->enum_shapes[f->n_enum_shapes++] = dup_dims(m, dims, n))) {
                return nomem(m);
            }
            s = skip_ws(s);
            if (*s == ',') {
                s = skip_ws(s + 1);
            } else if (*s != ']') {
                return merr(m, ANML_E_FORMAT, fp, "expected ',' or ']' in \"%.64s\"", enums);
            }
        }
        if (!at_end(s + 1) || f->n_enum_shapes == 0) {
            return merr(m, ANML_E_FORMAT, fp, "expected \"[[d, ...], ...]\", found \"%.64s\"",
                        enums);
        }
    }
    if (range) {
        field_path(fp, sizeof fp, path, "shapeRange");
        const char *s = skip_ws(range);
        int64_t lo[META_MAX_RANK], hi[META_MAX_RANK];
        int32_t n = 0;
        if (*s != '[') {
            return merr(m, ANML_E_FORMAT, fp, "expected \"[[lo, hi], ...]\", found \"%.64s\"",
                        range);
        }
        s = skip_ws(s + 1);
        while (*s != ']') {
            int64_t pair[META_MAX_RANK];
            int32_t k;
            if (n == META_MAX_RANK || !parse_int_list(&s, pair, &k, true) || k != 2 ||
                pair[0] < 0 || (pair[1] >= 0 && pair[1] < pair[0])) {
                return merr(m, ANML_E_FORMAT, fp,
                            "expected \"[[lo, hi], ...]\" with 0 <= lo <= hi (hi < 0: unbounded), "
                            "found \"%.64s\"",
                            range);
            }
            lo[n] = pair[0];
            hi[n] = pair[1] < 0 ? -1 : pair[1];
            n++;
            s = skip_ws(s);
            if (*s == ',') {
                s = skip_ws(s + 1);
            } else if (*s != ']') {
                return merr(m, ANML_E_FORMAT, fp, "expected ',' or ']' in \"%.64s\"", range);
            }
        }
        if (!at_end(s + 1) || (rank >= 0 && n != rank)) {
            return merr(m, ANML_E_FORMAT, fp,
                        "expected %d ranges \"[[lo, hi], ...]\", found "
                        "\"%.64s\"",
                        rank, range);
        }
        rank = n;
        f->has_range = true;
        if (!(f->range_lo = dup_dims(m, lo, n)) || !(f->range_hi = dup_dims(m, hi, n))) {
            return nomem(m);
        }
        if (shape) {
            for (int32_t i = 0; i < n; i++) {
                if (f->shape[i] < lo[i] || (hi[i] >= 0 && f->shape[i] > hi[i])) {
                    return merr(m, ANML_E_FORMAT, fp,
                                "default shape %s is outside the range at dim %d", shape, i);
                }
            }
        }
    }
    f->rank = rank < 0 ? 0 : rank;
    if (!shape && rank > 0) {
        /* the default shape is the first enumerated shape, else the range's lower bounds */
        f->shape = f->n_enum_shapes ? f->enum_shapes[0] : f->range_lo;
    }
    return ANML_OK;
}

static enum anml_status parse_feature(struct meta *m, const cJSON *obj, const char *path,
                                      struct mil_feature *f) {
    if (!cJSON_IsObject(obj)) {
        return merr(m, ANML_E_FORMAT, path, "expected an object");
    }
    const char *name, *type, *opt, *desc, *dtype;
    enum anml_status st;
    char fp[256];
    if ((st = get_string(m, obj, "name", path, true, &name)) != ANML_OK ||
        (st = get_string(m, obj, "type", path, true, &type)) != ANML_OK ||
        (st = get_string(m, obj, "isOptional", path, false, &opt)) != ANML_OK ||
        (st = get_string(m, obj, "shortDescription", path, false, &desc)) != ANML_OK ||
        (st = get_string(m, obj, "dataType", path, false, &dtype)) != ANML_OK) {
        return st;
    }
    if (!name[0]) {
        field_path(fp, sizeof fp, path, "name");
        return merr(m, ANML_E_FORMAT, fp, "empty feature name");
    }
    f->name = anml__arena_strdup(m->arena, name);
    f->short_description = anml__arena_strdup(m->arena, desc ? desc : "");
    if (!f->name || !f->short_description) {
        return nomem(m);
    }
    size_t k = 0;
    while (k < sizeof k_kinds / sizeof k_kinds[0] && strcmp(k_kinds[k].name, type) != 0) {
        k++;
    }
    if (k == sizeof k_kinds / sizeof k_kinds[0]) {
        field_path(fp, sizeof fp, path, "type");
        return merr(m, ANML_E_FORMAT, fp, "unknown feature type \"%.64s\"", type);
    }
    f->kind = k_kinds[k].kind;
    if (opt && strcmp(opt, "0") != 0 && strcmp(opt, "1") != 0) {
        field_path(fp, sizeof fp, path, "isOptional");
        return merr(m, ANML_E_FORMAT, fp, "expected \"0\" or \"1\", found \"%.64s\"", opt);
    }
    f->optional = opt && opt[0] == '1';
    f->dtype = ANML_DTYPE_INVALID;
    if (dtype) {
        size_t d = 0;
        while (d < sizeof k_dtypes / sizeof k_dtypes[0] && strcmp(k_dtypes[d].name, dtype) != 0) {
            d++;
        }
        if (d == sizeof k_dtypes / sizeof k_dtypes[0]) {
            field_path(fp, sizeof fp, path, "dataType");
            return merr(m, ANML_E_FORMAT, fp,
                        "expected Float16, Float32, Double, Int32 or Int8, found \"%.64s\"", dtype);
        }
        f->dtype = k_dtypes[d].dtype;
    }
    if (f->kind == MIL_FEATURE_MULTIARRAY || f->kind == MIL_FEATURE_STATE) {
        return parse_feature_shapes(m, obj, path, f);
    }
    return ANML_OK;
}

/* An optional array of feature objects. */
static enum anml_status parse_schema(struct meta *m, const cJSON *obj, const char *key,
                                     const char *parent, struct mil_feature **out, int32_t *n) {
    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(obj, key);
    char path[256];
    field_path(path, sizeof path, parent, key);
    *out = NULL;
    *n = 0;
    if (!arr) {
        return ANML_OK;
    }
    if (!cJSON_IsArray(arr)) {
        return merr(m, ANML_E_FORMAT, path, "expected an array");
    }
    int count = cJSON_GetArraySize(arr);
    if (count == 0) {
        return ANML_OK;
    }
    *out = anml__arena_array(m->arena, (size_t)count, sizeof **out);
    if (!*out) {
        return nomem(m);
    }
    int i = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        char ipath[256];
        snprintf(ipath, sizeof ipath, "%s[%d]", path, i);
        enum anml_status st = parse_feature(m, it, ipath, &(*out)[i]);
        if (st != ANML_OK) {
            return st;
        }
        for (int j = 0; j < i; j++) {
            if (strcmp((*out)[j].name, (*out)[i].name) == 0) {
                return merr(m, ANML_E_FORMAT, ipath, "duplicate feature name '%s'", (*out)[i].name);
            }
        }
        i++;
    }
    *n = count;
    return ANML_OK;
}

static enum anml_status parse_function_desc(struct meta *m, const cJSON *obj, const char *path,
                                            struct mil_function_desc *fd) {
    enum anml_status st;
    if ((st = parse_schema(m, obj, "inputSchema", path, &fd->inputs, &fd->n_inputs)) != ANML_OK ||
        (st = parse_schema(m, obj, "outputSchema", path, &fd->outputs, &fd->n_outputs)) !=
            ANML_OK ||
        (st = parse_schema(m, obj, "stateSchema", path, &fd->states, &fd->n_states)) != ANML_OK) {
        return st;
    }
    return ANML_OK;
}

/* ---- cross-check against model.mil ---- */

/* The type of a value named in a function's signature: input, or result of a top-level op. */
static const struct mil_type *mil_value_type(const struct mil_function *fn, const char *name) {
    for (int32_t i = 0; i < fn->n_inputs; i++) {
        if (strcmp(fn->inputs[i].name, name) == 0) {
            return fn->inputs[i].type;
        }
    }
    for (int32_t i = fn->block.n_ops - 1; i >= 0; i--) {
        const struct mil_op *op = &fn->block.ops[i];
        for (int32_t r = 0; r < op->n_results; r++) {
            if (strcmp(op->results[r].name, name) == 0) {
                return op->results[r].type;
            }
        }
    }
    return NULL;
}

static enum anml_status check_feature(struct meta *m, const struct mil_function *fn,
                                      const struct mil_feature *f, const char *path,
                                      const char *role, const struct mil_type *t) {
    char ts[160];
    if (!t) {
        return merr(m, ANML_E_FORMAT, path, "%s '%s' is not %s of function '%s' in model.mil", role,
                    f->name, strcmp(role, "output") == 0 ? "an output" : "a parameter", fn->name);
    }
    anml__mil_type_str(t, ts, sizeof ts);
    bool want_state = f->kind == MIL_FEATURE_STATE;
    if (want_state != (t->kind == MIL_TYPE_STATE)) {
        return merr(m, ANML_E_FORMAT, path,
                    "%s '%s' is a %s feature but model.mil declares it as %s in function '%s'",
                    role, f->name, kind_name(f->kind), ts, fn->name);
    }
    if (f->kind != MIL_FEATURE_MULTIARRAY && f->kind != MIL_FEATURE_STATE) {
        return ANML_OK;
    }
    const struct mil_type *tt = want_state ? t->elems[0] : t;
    if (tt->kind != MIL_TYPE_TENSOR) {
        return merr(m, ANML_E_FORMAT, path,
                    "%s '%s' is a %s feature but model.mil declares it as %s in function '%s'",
                    role, f->name, kind_name(f->kind), ts, fn->name);
    }
    if (f->dtype != ANML_DTYPE_INVALID && f->dtype != tt->dtype) {
        return merr(m, ANML_E_FORMAT, path,
                    "dataType %s of %s '%s' contradicts model.mil type %s in function '%s'",
                    dtype_feature_name(f->dtype), role, f->name, ts, fn->name);
    }
    bool has_shape = f->shape || f->has_range || f->n_enum_shapes > 0;
    if (!has_shape || tt->rank < 0) {
        return ANML_OK;
    }
    if (f->rank != tt->rank) {
        return merr(m, ANML_E_FORMAT, path,
                    "shape of rank %d for %s '%s' contradicts model.mil type %s in function '%s'",
                    f->rank, role, f->name, ts, fn->name);
    }
    for (int32_t i = 0; f->shape && i < f->rank; i++) {
        if (tt->dims[i] != MIL_DIM_UNKNOWN && tt->dims[i] != f->shape[i]) {
            return merr(m, ANML_E_FORMAT, path,
                        "dim %d of %s '%s' is %lld but model.mil declares %s in function '%s'", i,
                        role, f->name, (long long)f->shape[i], ts, fn->name);
        }
    }
    return ANML_OK;
}

static enum anml_status check_function_desc(struct meta *m, const struct mil_function_desc *fd,
                                            const char *path) {
    const struct mil_function *fn = anml__mil_find_function(m->prog, fd->name);
    char fp[256];
    if (!fn) {
        return merr(m, ANML_E_FORMAT, path, "function '%s' is not in model.mil", fd->name);
    }
    enum anml_status st;
    for (int32_t i = 0; i < fd->n_inputs; i++) {
        snprintf(fp, sizeof fp, "%s%sinputSchema[%d]", path, path[0] ? "." : "", i);
        const struct mil_type *t = NULL;
        for (int32_t j = 0; j < fn->n_inputs; j++) {
            if (strcmp(fn->inputs[j].name, fd->inputs[i].name) == 0) {
                t = fn->inputs[j].type;
            }
        }
        if ((st = check_feature(m, fn, &fd->inputs[i], fp, "input", t)) != ANML_OK) {
            return st;
        }
    }
    for (int32_t i = 0; i < fd->n_states; i++) {
        snprintf(fp, sizeof fp, "%s%sstateSchema[%d]", path, path[0] ? "." : "", i);
        const struct mil_type *t = NULL;
        for (int32_t j = 0; j < fn->n_inputs; j++) {
            if (strcmp(fn->inputs[j].name, fd->states[i].name) == 0) {
                t = fn->inputs[j].type;
            }
        }
        if ((st = check_feature(m, fn, &fd->states[i], fp, "state", t)) != ANML_OK) {
            return st;
        }
    }
    for (int32_t i = 0; i < fd->n_outputs; i++) {
        snprintf(fp, sizeof fp, "%s%soutputSchema[%d]", path, path[0] ? "." : "", i);
        const struct mil_type *t = NULL;
        for (int32_t j = 0; j < fn->block.n_outputs; j++) {
            if (strcmp(fn->block.outputs[j], fd->outputs[i].name) == 0) {
                t = mil_value_type(fn, fd->outputs[i].name);
            }
        }
        if ((st = check_feature(m, fn, &fd->outputs[i], fp, "output", t)) != ANML_OK) {
            return st;
        }
    }
    return ANML_OK;
}

/* ---- top level ---- */

static enum anml_status parse_user_metadata(struct meta *m, const cJSON *root) {
    const cJSON *ud = cJSON_GetObjectItemCaseSensitive(root, "userDefinedMetadata");
    struct mil_model_desc *d = &m->prog->desc;
    if (!ud) {
        return ANML_OK;
    }
    if (!cJSON_IsObject(ud)) {
        return merr(m, ANML_E_FORMAT, "userDefinedMetadata", "expected an object");
    }
    int n = cJSON_GetArraySize(ud);
    if (n == 0) {
        return ANML_OK;
    }
    d->user_keys = anml__arena_array(m->arena, (size_t)n, sizeof *d->user_keys);
    d->user_values = anml__arena_array(m->arena, (size_t)n, sizeof *d->user_values);
    if (!d->user_keys || !d->user_values) {
        return nomem(m);
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, ud) {
        if (!cJSON_IsString(it) || !it->valuestring || !it->string) {
            char fp[256];
            snprintf(fp, sizeof fp, "userDefinedMetadata.%.200s", it->string ? it->string : "?");
            return merr(m, ANML_E_FORMAT, fp, "expected a string");
        }
        d->user_keys[d->n_user] = anml__arena_strdup(m->arena, it->string);
        d->user_values[d->n_user] = anml__arena_strdup(m->arena, it->valuestring);
        if (!d->user_keys[d->n_user] || !d->user_values[d->n_user]) {
            return nomem(m);
        }
        d->n_user++;
    }
    return ANML_OK;
}

static enum anml_status parse_root(struct meta *m, const cJSON *json) {
    struct mil_model_desc *d = &m->prog->desc;
    enum anml_status st;
    if (!cJSON_IsArray(json) || cJSON_GetArraySize(json) != 1) {
        return merr(m, ANML_E_FORMAT, NULL, "expected a JSON array holding one object");
    }
    const cJSON *root = cJSON_GetArrayItem(json, 0);
    if (!cJSON_IsObject(root)) {
        return merr(m, ANML_E_FORMAT, "[0]", "expected an object");
    }
    const cJSON *sv = cJSON_GetObjectItemCaseSensitive(root, "specificationVersion");
    if (sv) {
        if (!cJSON_IsNumber(sv) || sv->valuedouble < 1 || sv->valuedouble > 1000 ||
            sv->valuedouble != (double)sv->valueint) {
            return merr(m, ANML_E_FORMAT, "specificationVersion", "expected a positive integer");
        }
        m->prog->spec_version = sv->valueint;
    }
    if ((st = dup_string(m, root, "shortDescription", "", &d->short_description)) != ANML_OK ||
        (st = dup_string(m, root, "author", "", &d->author)) != ANML_OK ||
        (st = dup_string(m, root, "license", "", &d->license)) != ANML_OK ||
        (st = dup_string(m, root, "version", "", &d->version)) != ANML_OK ||
        (st = dup_string(m, root, "defaultFunctionName", "", &d->default_function)) != ANML_OK ||
        (st = parse_user_metadata(m, root)) != ANML_OK) {
        return st;
    }
    /* the top-level schemas describe the default (or only) function */
    struct mil_function_desc top = { 0 };
    if ((st = parse_function_desc(m, root, "", &top)) != ANML_OK) {
        return st;
    }
    const cJSON *funcs = cJSON_GetObjectItemCaseSensitive(root, "functions");
    if (funcs) {
        if (!cJSON_IsArray(funcs) || cJSON_GetArraySize(funcs) == 0) {
            return merr(m, ANML_E_FORMAT, "functions", "expected a non-empty array");
        }
        int n = cJSON_GetArraySize(funcs);
        d->multifunction = true;
        d->functions = anml__arena_array(m->arena, (size_t)n, sizeof *d->functions);
        if (!d->functions) {
            return nomem(m);
        }
        const cJSON *it;
        cJSON_ArrayForEach(it, funcs) {
            char path[64];
            snprintf(path, sizeof path, "functions[%d]", d->n_functions);
            struct mil_function_desc *fd = &d->functions[d->n_functions];
            if (!cJSON_IsObject(it)) {
                return merr(m, ANML_E_FORMAT, path, "expected an object");
            }
            if ((st = dup_string(m, it, "name", path, &fd->name)) != ANML_OK) {
                return st;
            }
            if (!fd->name) {
                return merr(m, ANML_E_FORMAT, path, "missing function name");
            }
            for (int32_t j = 0; j < d->n_functions; j++) {
                if (strcmp(d->functions[j].name, fd->name) == 0) {
                    return merr(m, ANML_E_FORMAT, path, "duplicate function '%s'", fd->name);
                }
            }
            if ((st = parse_function_desc(m, it, path, fd)) != ANML_OK ||
                (st = check_function_desc(m, fd, path)) != ANML_OK) {
                return st;
            }
            d->n_functions++;
        }
        if (d->default_function) {
            bool found = false;
            for (int32_t j = 0; j < d->n_functions; j++) {
                found = found || strcmp(d->functions[j].name, d->default_function) == 0;
            }
            if (!found) {
                return merr(m, ANML_E_FORMAT, "defaultFunctionName",
                            "'%s' is not one of the listed functions", d->default_function);
            }
        }
        top.name = d->default_function ? d->default_function : d->functions[0].name;
        return check_function_desc(m, &top, "");
    }
    if (d->default_function && !anml__mil_find_function(m->prog, d->default_function)) {
        return merr(m, ANML_E_FORMAT, "defaultFunctionName", "function '%s' is not in model.mil",
                    d->default_function);
    }
    /* single function: named after the program's only (or first) function */
    const char *fname = d->default_function;
    if (!fname) {
        fname = m->prog->n_functions > 0 ? m->prog->functions[0].name : "main";
    }
    top.name = anml__arena_strdup(m->arena, fname);
    d->functions = anml__arena_alloc(m->arena, sizeof *d->functions);
    if (!top.name || !d->functions) {
        return nomem(m);
    }
    d->functions[0] = top;
    d->n_functions = 1;
    if (m->prog->n_functions == 0) {
        return ANML_OK; /* nothing to check against (metadata read on its own) */
    }
    return check_function_desc(m, &top, "");
}

enum anml_status anml__mil_parse_metadata_json(struct mil_program *prog, const char *text,
                                               size_t len, const char *filename,
                                               struct anml_error *err) {
    struct meta m = { .prog = prog, .arena = prog->arena, .err = err };
    m.filename = filename ? filename : "metadata.json";
    const char *slash = strrchr(m.filename, '/');
    m.base = slash ? slash + 1 : m.filename;
    const char *end = NULL;
    cJSON *json = text ? cJSON_ParseWithLengthOpts(text, len, &end, false) : NULL;
    if (!json) {
        /* locate the failure as line:col for the message */
        size_t off = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        long line = 1, col = 1;
        for (size_t i = 0; text && i < off; i++) {
            if (text[i] == '\n') {
                line++;
                col = 1;
            } else {
                col++;
            }
        }
        char where[256];
        snprintf(where, sizeof where, "%s:%ld:%ld", m.filename, line, col);
        return anml__err(err, ANML_E_FORMAT, where, "%s: invalid JSON", m.base);
    }
    for (const char *s = end; s && s < text + len; s++) {
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r' && *s != '\0') {
            cJSON_Delete(json);
            return anml__err(err, ANML_E_FORMAT, m.filename, "%s: trailing data after the JSON",
                             m.base);
        }
    }
    memset(&prog->desc, 0, sizeof prog->desc);
    enum anml_status st = parse_root(&m, json);
    cJSON_Delete(json);
    return st;
}
