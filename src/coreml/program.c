/* program.c -- construction, lookup and type helpers of the program IR (program.h), and the
 * loader that picks the right reader for a path. */
#include "coreml/program.h"

#include <stdio.h>
#include <string.h>

#include "coreml/blob.h"

struct mil_program *anml__mil_program_new(void) {
    struct mil_program *p = anml__calloc(1, sizeof *p);
    if (!p) {
        return NULL;
    }
    p->arena = anml__arena_create();
    if (!p->arena) {
        anml__free(p);
        return NULL;
    }
    return p;
}

void anml__mil_program_free(struct mil_program *prog) {
    if (!prog) {
        return;
    }
    anml__blob_store_free(prog->blobs);
    anml__arena_free(prog->arena);
    anml__free(prog);
}

struct mil_function *anml__mil_find_function(const struct mil_program *prog, const char *name) {
    for (int32_t i = 0; i < prog->n_functions; i++) {
        if (strcmp(prog->functions[i].name, name) == 0) {
            return &prog->functions[i];
        }
    }
    return NULL;
}

const char *anml__mil_default_function(const struct mil_program *prog) {
    if (prog->desc.default_function && anml__mil_find_function(prog, prog->desc.default_function)) {
        return prog->desc.default_function;
    }
    if (anml__mil_find_function(prog, "main")) {
        return "main";
    }
    return prog->n_functions > 0 ? prog->functions[0].name : NULL;
}

const struct mil_arg *anml__mil_op_arg(const struct mil_op *op, const char *name) {
    for (int32_t i = 0; i < op->n_args; i++) {
        if (strcmp(op->args[i].name, name) == 0) {
            return &op->args[i];
        }
    }
    return NULL;
}

const struct mil_attr *anml__mil_op_attr(const struct mil_op *op, const char *name) {
    for (int32_t i = 0; i < op->n_attrs; i++) {
        if (strcmp(op->attrs[i].name, name) == 0) {
            return &op->attrs[i];
        }
    }
    return NULL;
}

const char *anml__mil_op_name(const struct mil_op *op) {
    const struct mil_attr *a = anml__mil_op_attr(op, "name");
    if (a && a->value && a->value->kind == MIL_VALUE_TENSOR && a->value->type &&
        a->value->type->kind == MIL_TYPE_TENSOR && a->value->type->dtype == ANML_DTYPE_STRING &&
        a->value->n_elem == 1 && a->value->data && ((char **)a->value->data)[0]) {
        return ((char **)a->value->data)[0];
    }
    if (op->n_results > 0 && op->results[0].name) {
        return op->results[0].name;
    }
    return "<unnamed>";
}

/* ---- opsets ---- */

static const char *const k_text_tags[] = { "ios15", "ios16", "ios17", "ios18", "ios26" };
static const char *const k_proto_names[] = { "CoreML5", "CoreML6", "CoreML7", "CoreML8",
                                             "CoreML9" };

int anml__mil_opset_from_tag(const char *tag) {
    for (int i = 0; i < 5; i++) {
        if (strcmp(tag, k_text_tags[i]) == 0 || strcmp(tag, k_proto_names[i]) == 0) {
            return 5 + i;
        }
    }
    return 0;
}

const char *anml__mil_opset_text_tag(int opset) {
    return opset >= 5 && opset <= 9 ? k_text_tags[opset - 5] : "ios18";
}

const char *anml__mil_opset_proto_name(int opset) {
    return opset >= 5 && opset <= 9 ? k_proto_names[opset - 5] : "CoreML8";
}

/* ---- types ---- */

struct mil_type *anml__mil_tensor_type(struct anml_arena *a, enum anml_dtype dt, int32_t rank,
                                       const int64_t *dims) {
    struct mil_type *t = anml__arena_alloc(a, sizeof *t);
    if (!t) {
        return NULL;
    }
    t->kind = MIL_TYPE_TENSOR;
    t->dtype = dt;
    t->rank = rank;
    if (rank > 0) {
        t->dims = anml__arena_array(a, (size_t)rank, sizeof(int64_t));
        if (!t->dims) {
            return NULL;
        }
        memcpy(t->dims, dims, (size_t)rank * sizeof(int64_t));
    }
    return t;
}

bool anml__mil_type_equal(const struct mil_type *a, const struct mil_type *b) {
    if (a == b) {
        return true;
    }
    if (!a || !b || a->kind != b->kind) {
        return false;
    }
    if (a->kind == MIL_TYPE_TENSOR) {
        if (a->dtype != b->dtype || a->rank != b->rank) {
            return false;
        }
        for (int32_t i = 0; i < a->rank; i++) {
            if (a->dims[i] != b->dims[i]) {
                return false;
            }
        }
        return true;
    }
    if (a->n_elems != b->n_elems ||
        (a->kind == MIL_TYPE_LIST && a->list_length != b->list_length)) {
        return false;
    }
    for (int32_t i = 0; i < a->n_elems; i++) {
        if (!anml__mil_type_equal(a->elems[i], b->elems[i])) {
            return false;
        }
    }
    return true;
}

/* Appends to a snprintf-style buffer; returns the new logical length. */
static int put(char *buf, size_t cap, int len, const char *s) {
    int n = snprintf(len >= 0 && (size_t)len < cap ? buf + len : NULL,
                     len >= 0 && (size_t)len < cap ? cap - (size_t)len : 0, "%s", s);
    return len + n;
}

int anml__mil_type_str(const struct mil_type *t, char *buf, size_t cap) {
    if (cap > 0) {
        buf[0] = '\0';
    }
    int len = 0;
    char tmp[64];
    switch (t->kind) {
    case MIL_TYPE_TENSOR:
        if (t->rank == 0) {
            return put(buf, cap, len, anml_dtype_name(t->dtype));
        }
        len = put(buf, cap, len, "tensor<");
        len = put(buf, cap, len, anml_dtype_name(t->dtype));
        len = put(buf, cap, len, ", [");
        for (int32_t i = 0; i < t->rank; i++) {
            if (t->dims[i] == MIL_DIM_UNKNOWN) {
                snprintf(tmp, sizeof tmp, "%s?", i ? ", " : "");
            } else {
                snprintf(tmp, sizeof tmp, "%s%lld", i ? ", " : "", (long long)t->dims[i]);
            }
            len = put(buf, cap, len, tmp);
        }
        return put(buf, cap, len, "]>");
    case MIL_TYPE_STATE:
    case MIL_TYPE_LIST:
    case MIL_TYPE_TUPLE:
    case MIL_TYPE_DICT: {
        static const char *const names[] = { "", "state<", "list<", "tuple<", "dict<" };
        len = put(buf, cap, len, names[t->kind]);
        for (int32_t i = 0; i < t->n_elems; i++) {
            if (i) {
                len = put(buf, cap, len, ", ");
            }
            size_t off = len >= 0 && (size_t)len < cap ? (size_t)len : cap;
            len += anml__mil_type_str(t->elems[i], buf + off, cap - off);
        }
        if (t->kind == MIL_TYPE_LIST) {
            if (t->list_length == MIL_DIM_UNKNOWN) {
                snprintf(tmp, sizeof tmp, ", ?");
            } else {
                snprintf(tmp, sizeof tmp, ", %lld", (long long)t->list_length);
            }
            len = put(buf, cap, len, tmp);
        }
        return put(buf, cap, len, ">");
    }
    case MIL_TYPE_KIND_COUNT: break;
    }
    return len;
}

/* ---- loading ---- */

static bool ends_with(const char *s, const char *suffix) {
    size_t ls = strlen(s);
    size_t lf = strlen(suffix);
    return ls >= lf && strcmp(s + ls - lf, suffix) == 0;
}

/* Reads model.mil (+ metadata.json when present) from a .mlmodelc directory. */
static enum anml_status load_mlmodelc(struct mil_program *prog, const char *dir,
                                      struct anml_error *err) {
    char *mil_path = anml__path_join(dir, "model.mil");
    char *meta_path = anml__path_join(dir, "metadata.json");
    char *text = NULL;
    size_t len = 0;
    enum anml_status st = ANML_E_NOMEM;
    if (!mil_path || !meta_path) {
        anml__err(err, st, dir, "out of memory");
        goto done;
    }
    prog->format = MIL_FORMAT_MLMODELC;
    st = anml__read_file(mil_path, &text, &len, err);
    if (st != ANML_OK) {
        goto done;
    }
    st = anml__mil_parse_text(prog, text, len, mil_path, err);
    anml__free(text);
    text = NULL;
    if (st != ANML_OK) {
        goto done;
    }
    if (anml__is_file(meta_path)) {
        st = anml__read_file(meta_path, &text, &len, err);
        if (st == ANML_OK) {
            st = anml__mil_parse_metadata_json(prog, text, len, meta_path, err);
        }
    }
done:
    anml__free(text);
    anml__free(mil_path);
    anml__free(meta_path);
    return st;
}

enum anml_status anml__mil_load(const char *path, struct mil_program **out,
                                struct anml_error *err) {
    *out = NULL;
    struct mil_program *prog = anml__mil_program_new();
    if (!prog) {
        return anml__err(err, ANML_E_NOMEM, path, "out of memory");
    }
    enum anml_status st;
    prog->source_path = anml__arena_strdup(prog->arena, path);
    if (!prog->source_path) {
        st = anml__err(err, ANML_E_NOMEM, path, "out of memory");
        goto fail;
    }
    if (anml__is_dir(path)) {
        char *manifest = anml__path_join(path, "Manifest.json");
        bool is_package = manifest && anml__is_file(manifest);
        anml__free(manifest);
        if (is_package || ends_with(path, ".mlpackage") || ends_with(path, ".mlpackage/")) {
            st = anml__mlpackage_load(prog, path, err); /* sets model_dir */
        } else {
            prog->model_dir = anml__arena_strdup(prog->arena, path);
            st = prog->model_dir ? load_mlmodelc(prog, path, err)
                                 : anml__err(err, ANML_E_NOMEM, path, "out of memory");
        }
    } else if (anml__is_file(path) && ends_with(path, ".mil")) {
        /* a bare model.mil: the directory that holds it is @model_path */
        const char *slash = strrchr(path, '/');
        size_t n = slash ? (size_t)(slash - path) : 1;
        prog->model_dir = slash ? anml__arena_strndup(prog->arena, path, n)
                                : anml__arena_strdup(prog->arena, ".");
        char *text = NULL;
        size_t len = 0;
        st = prog->model_dir ? anml__read_file(path, &text, &len, err)
                             : anml__err(err, ANML_E_NOMEM, path, "out of memory");
        if (st == ANML_OK) {
            prog->format = MIL_FORMAT_MLMODELC;
            st = anml__mil_parse_text(prog, text, len, path, err);
        }
        anml__free(text);
    } else {
        st = anml__err(err, ANML_E_IO, path,
                       "not a .mlmodelc or .mlpackage directory, nor a model.mil file");
    }
    if (st != ANML_OK) {
        goto fail;
    }
    prog->blobs = anml__blob_store_new(prog->model_dir);
    if (!prog->blobs) {
        st = anml__err(err, ANML_E_NOMEM, path, "out of memory");
        goto fail;
    }
    st = anml__mil_validate_blobs(prog, err);
    if (st != ANML_OK) {
        goto fail;
    }
    *out = prog;
    return ANML_OK;
fail:
    anml__mil_program_free(prog);
    return st;
}
