/*
 * info.c -- `anml info PATH [--json]`: describes a .mlmodelc, a .mlpackage, or a model directory
 * holding several of them (an ANEMLL model directory), without running anything.
 *
 * For each model it reports the format, specification version, default function and, per
 * function, the opset, the typed inputs / outputs / states (with the flexible shapes that the
 * model description declares), an op-type histogram, the user metadata, and how many weight bytes
 * the program references per blob dtype (each distinct blob counted once, so weights shared by the
 * functions of a multifunction model are not counted twice).
 *
 * The description is first built as one cJSON tree; `--json` prints that tree and the text mode
 * renders it, so both modes always say the same thing. Nothing reaches stdout until every model
 * has loaded, so a failure prints only the one-line error on stderr.
 *
 * A directory holding several models is described component by component (each *.mlmodelc and
 * *.mlpackage in it, sorted by name). When it is an ANEMLL model directory -- it has a meta.yaml,
 * or anml_model_load accepts it anyway -- the ASSEMBLED model comes first: what anml_model_load
 * made of it (meta.yaml version, components by role, chunks, shapes read from the programs).
 * A directory with a meta.yaml that anml_model_load rejects is an error (its one-line message).
 * Loading may unpack *.mlmodelc.zip components next to the zips, as anml_model_load does.
 *
 * JSON layout of a model directory: { path, model (only for an ANEMLL model directory),
 * components: [ {"file", <one model>} ] } with
 *   model: { architecture (meta.yaml, null when absent), meta_version (null when no meta.yaml),
 *            model_prefix, num_chunks, context_length, batch_size (1 without a prefill
 *            function), state: { name, shape }, state_length, hidden_size, vocab_size,
 *            logit_slices, lut_embeddings, lut_ffn, lut_lmhead (bits, null = no LUT),
 *            tokenizer_dir (null when there is no tokenizer.json),
 *            components: [ { role ("embeddings" | "ffn" | "lm_head"), chunk (ffn: 1-based),
 *                            path, infer_function, prefill_function (ffn; null = prefill runs
 *                            token by token through infer), prefill_path (ffn; a separate
 *                            prefill file, or null) } ] }
 *
 * JSON layout of one model:
 *   path, format ("mlmodelc" | "mlpackage"), specification_version (null when unknown),
 *   default_function,
 *   functions: [ { name, opset ("ios18"), opset_coreml ("CoreML8"),
 *                  inputs / outputs / states: [ { name, dtype, shape,
 *                      default_shape, enumerated_shapes, shape_range, optional } ],
 *                  ops: { type: count } } ]   (ops sorted by count, then name)
 *   metadata: { every user-defined key: value (file order),
 *               author, short_description, version, license (when present and not already a
 *               user-defined key) }
 *   weights: { dtype: bytes, ..., total: bytes }
 * A feature's `shape` comes from the MIL signature (-1 for an unknown dim, null for an unknown
 * rank); `default_shape` (the model description's shape), `enumerated_shapes` ([[d, ...], ...]),
 * `shape_range` ([[lo, hi], ...], hi -1 = unbounded) and `optional` appear only when the
 * description provides them.
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "coreml/blob.h"
#include "coreml/program.h"

/* ---- errors ---- */

/* Prints the one-line error; newlines inside a message would break "exactly one line". */
static int info_fail(const char *where, const char *msg) {
    char line[1024];
    snprintf(line, sizeof line, "anml info: %s: %s", where && *where ? where : "(unknown)", msg);
    for (char *p = line; *p; p++) {
        if (*p == '\n' || *p == '\r') {
            *p = ' ';
        }
    }
    fprintf(stderr, "%s\n", line);
    return 1;
}

static int info_fail_err(const char *path, const struct anml_error *err) {
    const char *msg = err->msg[0] ? err->msg : anml_status_str(err->code);
    return info_fail(err->where[0] ? err->where : path, msg);
}

/* ---- small helpers ---- */

static bool ends_with(const char *s, const char *suffix) {
    size_t ls = strlen(s);
    size_t lf = strlen(suffix);
    return ls >= lf && strcmp(s + ls - lf, suffix) == 0;
}

/* A path names one model when it is called *.mlmodelc / *.mlpackage or holds model.mil or
 * Manifest.json; any other directory is scanned for models. */
static bool is_single_model_dir(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    size_t n = strlen(buf);
    while (n > 1 && buf[n - 1] == '/') {
        buf[--n] = '\0';
    }
    if (ends_with(buf, ".mlmodelc") || ends_with(buf, ".mlpackage")) {
        return true;
    }
    char *mil = anml__path_join(path, "model.mil");
    char *manifest = anml__path_join(path, "Manifest.json");
    bool yes = (mil && anml__is_file(mil)) || (manifest && anml__is_file(manifest));
    anml__free(mil);
    anml__free(manifest);
    return yes;
}

static const char *format_name(enum mil_format f) {
    return f == MIL_FORMAT_MLPACKAGE ? "mlpackage" : "mlmodelc";
}

/* cJSON_Add* return NULL on allocation failure; every builder below funnels that into `ok`. */
struct builder {
    bool ok;
};

static cJSON *add_item(struct builder *b, cJSON *parent, const char *key, cJSON *item) {
    if (!item) {
        b->ok = false;
        return NULL;
    }
    if (key) {
        if (!cJSON_AddItemToObject(parent, key, item)) {
            cJSON_Delete(item);
            b->ok = false;
            return NULL;
        }
    } else if (!cJSON_AddItemToArray(parent, item)) {
        cJSON_Delete(item);
        b->ok = false;
        return NULL;
    }
    return item;
}

static cJSON *int_array(struct builder *b, const int64_t *v, int32_t n) {
    cJSON *arr = cJSON_CreateArray();
    if (!arr) {
        b->ok = false;
        return NULL;
    }
    for (int32_t i = 0; i < n; i++) {
        add_item(b, arr, NULL, cJSON_CreateNumber((double)v[i]));
    }
    return arr;
}

/* ---- features (inputs, outputs, states) ---- */

static const struct mil_function_desc *find_function_desc(const struct mil_program *prog,
                                                          const struct mil_function *fn) {
    for (int32_t i = 0; i < prog->desc.n_functions; i++) {
        if (prog->desc.functions[i].name && strcmp(prog->desc.functions[i].name, fn->name) == 0) {
            return &prog->desc.functions[i];
        }
    }
    /* A single-function description belongs to the single function whatever its name. */
    if (prog->desc.n_functions == 1 && prog->n_functions == 1) {
        return &prog->desc.functions[0];
    }
    return NULL;
}

static const struct mil_feature *find_feature(const struct mil_feature *list, int32_t n,
                                              const char *name) {
    for (int32_t i = 0; list && i < n; i++) {
        if (list[i].name && strcmp(list[i].name, name) == 0) {
            return &list[i];
        }
    }
    return NULL;
}

/* One {"name","dtype","shape",...} entry: the type from the MIL signature, flexibility from the
 * model description feature `feat` (may be NULL). */
static void add_feature(struct builder *b, cJSON *arr, const char *name,
                        const struct mil_type *type, const struct mil_feature *feat) {
    cJSON *o = add_item(b, arr, NULL, cJSON_CreateObject());
    if (!o) {
        return;
    }
    add_item(b, o, "name", cJSON_CreateString(name));
    const struct mil_type *t = type;
    if (t && t->kind == MIL_TYPE_STATE && t->n_elems > 0 && t->elems) {
        t = t->elems[0];
    }
    if (t && t->kind == MIL_TYPE_TENSOR) {
        add_item(b, o, "dtype", cJSON_CreateString(anml_dtype_name(t->dtype)));
        add_item(b, o, "shape", t->rank < 0 ? cJSON_CreateNull() : int_array(b, t->dims, t->rank));
    } else if (t) {
        char buf[256];
        anml__mil_type_str(t, buf, sizeof buf);
        add_item(b, o, "dtype", cJSON_CreateString(buf));
        add_item(b, o, "shape", cJSON_CreateNull());
    } else if (feat && feat->dtype != ANML_DTYPE_INVALID) {
        /* no MIL type (should not happen): fall back on the description */
        add_item(b, o, "dtype", cJSON_CreateString(anml_dtype_name(feat->dtype)));
        add_item(b, o, "shape", int_array(b, feat->shape, feat->rank));
    } else {
        add_item(b, o, "dtype", cJSON_CreateString("unknown"));
        add_item(b, o, "shape", cJSON_CreateNull());
    }
    if (!feat) {
        return;
    }
    if (feat->rank >= 0 && (feat->shape || feat->rank == 0)) {
        add_item(b, o, "default_shape", int_array(b, feat->shape, feat->rank));
    }
    if (feat->n_enum_shapes > 0 && feat->enum_shapes) {
        cJSON *en = add_item(b, o, "enumerated_shapes", cJSON_CreateArray());
        for (int32_t i = 0; en && i < feat->n_enum_shapes; i++) {
            add_item(b, en, NULL, int_array(b, feat->enum_shapes[i], feat->rank));
        }
    }
    if (feat->has_range && feat->range_lo && feat->range_hi) {
        cJSON *rg = add_item(b, o, "shape_range", cJSON_CreateArray());
        for (int32_t i = 0; rg && i < feat->rank; i++) {
            int64_t pair[2] = { feat->range_lo[i], feat->range_hi[i] };
            add_item(b, rg, NULL, int_array(b, pair, 2));
        }
    }
    if (feat->optional) {
        add_item(b, o, "optional", cJSON_CreateBool(1));
    }
}

/* The type of a value named in the function's outputs: a function input or a top-level result. */
static const struct mil_type *find_value_type(const struct mil_function *fn, const char *name) {
    for (int32_t i = 0; i < fn->n_inputs; i++) {
        if (strcmp(fn->inputs[i].name, name) == 0) {
            return fn->inputs[i].type;
        }
    }
    for (int32_t i = 0; i < fn->block.n_ops; i++) {
        const struct mil_op *op = &fn->block.ops[i];
        for (int32_t j = 0; j < op->n_results; j++) {
            if (op->results[j].name && strcmp(op->results[j].name, name) == 0) {
                return op->results[j].type;
            }
        }
    }
    return NULL;
}

/* ---- op histogram ---- */

struct op_count {
    const char *type;
    int64_t count;
};

struct op_hist {
    struct op_count *v;
    size_t n, cap;
};

static bool hist_add(struct op_hist *h, const char *type) {
    for (size_t i = 0; i < h->n; i++) {
        if (strcmp(h->v[i].type, type) == 0) {
            h->v[i].count++;
            return true;
        }
    }
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 32;
        struct op_count *nv = anml__realloc(h->v, cap * sizeof *nv);
        if (!nv) {
            return false;
        }
        h->v = nv;
        h->cap = cap;
    }
    h->v[h->n].type = type;
    h->v[h->n].count = 1;
    h->n++;
    return true;
}

static bool hist_block(struct op_hist *h, const struct mil_block *blk) {
    for (int32_t i = 0; i < blk->n_ops; i++) {
        const struct mil_op *op = &blk->ops[i];
        if (!hist_add(h, op->type ? op->type : "?")) {
            return false;
        }
        for (int32_t j = 0; j < op->n_blocks; j++) {
            if (!hist_block(h, &op->blocks[j])) {
                return false;
            }
        }
    }
    return true;
}

static int cmp_op_count(const void *a, const void *b) {
    const struct op_count *x = a;
    const struct op_count *y = b;
    if (x->count != y->count) {
        return x->count > y->count ? -1 : 1;
    }
    return strcmp(x->type, y->type);
}

/* ---- weights: distinct blobs by (file, record offset) ---- */

struct blob_ref {
    const char *file;
    uint64_t offset;
    enum anml_dtype dtype;
    uint64_t size;
};

struct blob_set {
    struct mil_program *prog;
    struct blob_ref *v;
    size_t n, cap;
    struct anml_error *err;
    enum anml_status st;
};

static void blobs_value(struct blob_set *s, const struct mil_value *val) {
    if (!val || s->st != ANML_OK) {
        return;
    }
    if (val->kind == MIL_VALUE_BLOB) {
        struct mil_blob_view view;
        s->st = anml__blob_resolve(s->prog->blobs, val, &view, s->err);
        if (s->st != ANML_OK) {
            return;
        }
        if (s->n == s->cap) {
            size_t cap = s->cap ? s->cap * 2 : 64;
            struct blob_ref *nv = anml__realloc(s->v, cap * sizeof *nv);
            if (!nv) {
                s->st = anml__err(s->err, ANML_E_NOMEM, NULL, "out of memory");
                return;
            }
            s->v = nv;
            s->cap = cap;
        }
        s->v[s->n++] =
            (struct blob_ref){ view.file, view.record_offset, view.dtype, view.size_bytes };
        return;
    }
    if (val->kind == MIL_VALUE_TUPLE || val->kind == MIL_VALUE_LIST ||
        val->kind == MIL_VALUE_DICT) {
        for (int32_t i = 0; i < val->n_items && val->items; i++) {
            blobs_value(s, val->items[i]);
        }
    }
}

static void blobs_attrs(struct blob_set *s, const struct mil_attr *attrs, int32_t n) {
    for (int32_t i = 0; i < n; i++) {
        blobs_value(s, attrs[i].value);
    }
}

static void blobs_block(struct blob_set *s, const struct mil_block *blk) {
    blobs_attrs(s, blk->attrs, blk->n_attrs);
    for (int32_t i = 0; i < blk->n_ops; i++) {
        const struct mil_op *op = &blk->ops[i];
        for (int32_t j = 0; j < op->n_args; j++) {
            for (int32_t k = 0; k < op->args[j].n_bindings; k++) {
                blobs_value(s, op->args[j].bindings[k].value);
            }
        }
        blobs_attrs(s, op->attrs, op->n_attrs);
        for (int32_t j = 0; j < op->n_blocks; j++) {
            blobs_block(s, &op->blocks[j]);
        }
    }
}

static int cmp_blob_ref(const void *a, const void *b) {
    const struct blob_ref *x = a;
    const struct blob_ref *y = b;
    int c = strcmp(x->file, y->file);
    if (c != 0) {
        return c;
    }
    return x->offset < y->offset ? -1 : x->offset > y->offset ? 1 : 0;
}

/* Fills `weights` with bytes per blob dtype (largest first) and "total". */
static enum anml_status add_weights(struct builder *b, cJSON *weights, struct mil_program *prog,
                                    struct anml_error *err) {
    struct blob_set s = { .prog = prog, .err = err, .st = ANML_OK };
    blobs_attrs(&s, prog->attrs, prog->n_attrs);
    for (int32_t i = 0; i < prog->n_functions && s.st == ANML_OK; i++) {
        blobs_attrs(&s, prog->functions[i].attrs, prog->functions[i].n_attrs);
        blobs_block(&s, &prog->functions[i].block);
    }
    if (s.st != ANML_OK) {
        anml__free(s.v);
        return s.st;
    }
    uint64_t per_dtype[ANML_DTYPE_COUNT] = { 0 };
    uint64_t total = 0;
    if (s.n > 0) {
        qsort(s.v, s.n, sizeof *s.v, cmp_blob_ref);
    }
    for (size_t i = 0; i < s.n; i++) {
        if (i > 0 && cmp_blob_ref(&s.v[i - 1], &s.v[i]) == 0) {
            continue;
        }
        int d = (int)s.v[i].dtype;
        if (d > 0 && d < ANML_DTYPE_COUNT) {
            per_dtype[d] += s.v[i].size;
        }
        total += s.v[i].size;
    }
    anml__free(s.v);
    /* dtypes by bytes, largest first (a selection sort over at most ANML_DTYPE_COUNT entries) */
    bool done[ANML_DTYPE_COUNT] = { false };
    for (;;) {
        int best = -1;
        for (int d = 1; d < ANML_DTYPE_COUNT; d++) {
            if (!done[d] && per_dtype[d] > 0 && (best < 0 || per_dtype[d] > per_dtype[best])) {
                best = d;
            }
        }
        if (best < 0) {
            break;
        }
        done[best] = true;
        add_item(b, weights, anml_dtype_name((enum anml_dtype)best),
                 cJSON_CreateNumber((double)per_dtype[best]));
    }
    add_item(b, weights, "total", cJSON_CreateNumber((double)total));
    return ANML_OK;
}

/* ---- one model -> JSON ---- */

static void add_function(struct builder *b, cJSON *arr, const struct mil_program *prog,
                         const struct mil_function *fn) {
    cJSON *o = add_item(b, arr, NULL, cJSON_CreateObject());
    if (!o) {
        return;
    }
    add_item(b, o, "name", cJSON_CreateString(fn->name));
    if (fn->opset >= 5 && fn->opset <= 9) {
        add_item(b, o, "opset", cJSON_CreateString(anml__mil_opset_text_tag(fn->opset)));
        add_item(b, o, "opset_coreml", cJSON_CreateString(anml__mil_opset_proto_name(fn->opset)));
    } else {
        add_item(b, o, "opset", cJSON_CreateNull());
        add_item(b, o, "opset_coreml", cJSON_CreateNull());
    }
    const struct mil_function_desc *fd = find_function_desc(prog, fn);
    cJSON *inputs = add_item(b, o, "inputs", cJSON_CreateArray());
    cJSON *outputs = add_item(b, o, "outputs", cJSON_CreateArray());
    cJSON *states = add_item(b, o, "states", cJSON_CreateArray());
    if (!inputs || !outputs || !states) {
        return;
    }
    for (int32_t i = 0; i < fn->n_inputs; i++) {
        const struct mil_named_type *in = &fn->inputs[i];
        bool is_state = in->type && in->type->kind == MIL_TYPE_STATE;
        const struct mil_feature *feat = !fd ? NULL
                                         : is_state
                                             ? find_feature(fd->states, fd->n_states, in->name)
                                             : find_feature(fd->inputs, fd->n_inputs, in->name);
        add_feature(b, is_state ? states : inputs, in->name, in->type, feat);
    }
    for (int32_t i = 0; i < fn->block.n_outputs; i++) {
        const char *name = fn->block.outputs[i];
        const struct mil_feature *feat = fd ? find_feature(fd->outputs, fd->n_outputs, name) : NULL;
        add_feature(b, outputs, name, find_value_type(fn, name), feat);
    }
    struct op_hist h = { 0 };
    if (!hist_block(&h, &fn->block)) {
        b->ok = false;
        anml__free(h.v);
        return;
    }
    if (h.n > 0) {
        qsort(h.v, h.n, sizeof *h.v, cmp_op_count);
    }
    cJSON *ops = add_item(b, o, "ops", cJSON_CreateObject());
    for (size_t i = 0; ops && i < h.n; i++) {
        add_item(b, ops, h.v[i].type, cJSON_CreateNumber((double)h.v[i].count));
    }
    anml__free(h.v);
}

static void add_metadata(struct builder *b, cJSON *meta, const struct mil_model_desc *d) {
    for (int32_t i = 0; i < d->n_user; i++) {
        if (!cJSON_GetObjectItemCaseSensitive(meta, d->user_keys[i])) {
            add_item(b, meta, d->user_keys[i], cJSON_CreateString(d->user_values[i]));
        }
    }
    const char *keys[] = { "author", "short_description", "version", "license" };
    const char *vals[] = { d->author, d->short_description, d->version, d->license };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        if (vals[i] && !cJSON_GetObjectItemCaseSensitive(meta, keys[i])) {
            add_item(b, meta, keys[i], cJSON_CreateString(vals[i]));
        }
    }
}

/* Loads the model at `path` and adds its description to `o`. Returns 0 or the exit status. */
static int describe_model(const char *path, cJSON *o) {
    struct anml_error err = { 0 };
    struct mil_program *prog = NULL;
    if (anml__mil_load(path, &prog, &err) != ANML_OK) {
        return info_fail_err(path, &err);
    }
    struct builder b = { .ok = true };
    add_item(&b, o, "path", cJSON_CreateString(path));
    add_item(&b, o, "format", cJSON_CreateString(format_name(prog->format)));
    add_item(&b, o, "specification_version",
             prog->spec_version > 0 ? cJSON_CreateNumber((double)prog->spec_version)
                                    : cJSON_CreateNull());
    const char *def = anml__mil_default_function(prog);
    add_item(&b, o, "default_function", def ? cJSON_CreateString(def) : cJSON_CreateNull());
    cJSON *fns = add_item(&b, o, "functions", cJSON_CreateArray());
    for (int32_t i = 0; fns && i < prog->n_functions; i++) {
        add_function(&b, fns, prog, &prog->functions[i]);
    }
    cJSON *meta = add_item(&b, o, "metadata", cJSON_CreateObject());
    if (meta) {
        add_metadata(&b, meta, &prog->desc);
    }
    cJSON *weights = add_item(&b, o, "weights", cJSON_CreateObject());
    int rc = 0;
    if (weights && add_weights(&b, weights, prog, &err) != ANML_OK) {
        rc = info_fail_err(path, &err);
    } else if (!b.ok) {
        rc = info_fail(path, "out of memory");
    }
    anml__mil_program_free(prog);
    return rc;
}

/* ---- model directories ---- */

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.mlmodelc / *.mlpackage directories inside `dir`, sorted by name (caller frees). */
static int list_components(const char *dir, char ***out, size_t *n_out) {
    *out = NULL;
    *n_out = 0;
    DIR *d = opendir(dir);
    if (!d) {
        return info_fail(dir, "cannot open directory");
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (!ends_with(e->d_name, ".mlmodelc") && !ends_with(e->d_name, ".mlpackage")) {
            continue;
        }
        char *full = anml__path_join(dir, e->d_name);
        bool is_dir = full && anml__is_dir(full);
        anml__free(full);
        if (!is_dir) {
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            char **nv = anml__realloc(names, cap * sizeof *nv);
            if (!nv) {
                rc = info_fail(dir, "out of memory");
                break;
            }
            names = nv;
        }
        names[n] = anml__strdup(e->d_name);
        if (!names[n]) {
            rc = info_fail(dir, "out of memory");
            break;
        }
        n++;
    }
    closedir(d);
    if (rc == 0 && n == 0) {
        rc = info_fail(dir, "not a .mlmodelc, .mlpackage or model directory (it holds no "
                            "*.mlmodelc or *.mlpackage)");
    }
    if (rc != 0) {
        for (size_t i = 0; i < n; i++) {
            anml__free(names[i]);
        }
        anml__free(names);
        return rc;
    }
    qsort(names, n, sizeof *names, cmp_str);
    *out = names;
    *n_out = n;
    return 0;
}

/* ---- the assembled ANEMLL model ---- */

static cJSON *str_or_null(const char *s) {
    return s && *s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

static const char *role_name(enum anml_component_role r) {
    return r == ANML_COMPONENT_EMBEDDINGS ? "embeddings"
           : r == ANML_COMPONENT_FFN      ? "ffn"
                                          : "lm_head";
}

/* Adds root.model when `path` is an ANEMLL model directory. With a meta.yaml a failed load is
 * the command's error; without one the directory is simply not an ANEMLL model. */
static int describe_assembled(const char *path, cJSON *root) {
    char *meta = anml__path_join(path, "meta.yaml");
    bool required = meta && anml__is_file(meta);
    anml__free(meta);
    struct anml_model *m = NULL;
    struct anml_error err = { 0 };
    if (anml_model_load(path, NULL, &m, &err) != ANML_OK) {
        return required ? info_fail_err(path, &err) : 0;
    }
    struct anml_model_info mi;
    anml_model_get_info(m, &mi);
    struct builder b = { .ok = true };
    cJSON *o = add_item(&b, root, "model", cJSON_CreateObject());
    if (o) {
        add_item(&b, o, "architecture", str_or_null(mi.architecture));
        add_item(&b, o, "meta_version", str_or_null(mi.meta_version));
        add_item(&b, o, "model_prefix", str_or_null(mi.model_prefix));
        add_item(&b, o, "num_chunks", cJSON_CreateNumber(mi.n_chunks));
        add_item(&b, o, "context_length", cJSON_CreateNumber(mi.context_length));
        add_item(&b, o, "batch_size", cJSON_CreateNumber(mi.batch_size));
        cJSON *state = add_item(&b, o, "state", cJSON_CreateObject());
        if (state) {
            add_item(&b, state, "name", str_or_null(mi.state_name));
            add_item(&b, state, "shape", int_array(&b, mi.state_shape, mi.state_rank));
        }
        add_item(&b, o, "state_length", cJSON_CreateNumber(mi.state_length));
        add_item(&b, o, "hidden_size", cJSON_CreateNumber(mi.hidden_size));
        add_item(&b, o, "vocab_size", cJSON_CreateNumber(mi.vocab_size));
        add_item(&b, o, "logit_slices", cJSON_CreateNumber(mi.n_logit_slices));
        const char *lut_keys[] = { "lut_embeddings", "lut_ffn", "lut_lmhead" };
        int32_t luts[] = { mi.lut_embeddings, mi.lut_ffn, mi.lut_lmhead };
        for (int i = 0; i < 3; i++) {
            add_item(&b, o, lut_keys[i],
                     luts[i] > 0 ? cJSON_CreateNumber(luts[i]) : cJSON_CreateNull());
        }
        add_item(&b, o, "tokenizer_dir", str_or_null(mi.tokenizer_dir));
        cJSON *comps = add_item(&b, o, "components", cJSON_CreateArray());
        for (int32_t i = 0; comps && i < anml_model_n_components(m); i++) {
            struct anml_component_info ci;
            cJSON *c = add_item(&b, comps, NULL, cJSON_CreateObject());
            if (!c || anml_model_component_info(m, i, &ci) != ANML_OK) {
                continue;
            }
            add_item(&b, c, "role", cJSON_CreateString(role_name(ci.role)));
            if (ci.role == ANML_COMPONENT_FFN) {
                add_item(&b, c, "chunk", cJSON_CreateNumber(ci.chunk));
            }
            add_item(&b, c, "path", str_or_null(ci.path));
            add_item(&b, c, "infer_function", str_or_null(ci.infer_fn));
            if (ci.role == ANML_COMPONENT_FFN) {
                add_item(&b, c, "prefill_function", str_or_null(ci.prefill_fn));
                add_item(&b, c, "prefill_path", str_or_null(ci.prefill_path));
            }
        }
    }
    anml_model_free(m);
    return b.ok ? 0 : info_fail(path, "out of memory");
}

/* ---- text rendering of the JSON tree ---- */

static void print_dims(FILE *f, const cJSON *dims) {
    if (!cJSON_IsArray(dims)) {
        fputs("[*]", f);
        return;
    }
    fputc('[', f);
    const cJSON *d;
    bool first = true;
    cJSON_ArrayForEach(d, dims) {
        double v = cJSON_GetNumberValue(d);
        if (!first) {
            fputs(", ", f);
        }
        if (v < 0) {
            fputc('?', f);
        } else {
            fprintf(f, "%.0f", v);
        }
        first = false;
    }
    fputc(']', f);
}

static bool dims_equal(const cJSON *a, const cJSON *b) {
    if (!cJSON_IsArray(a) || !cJSON_IsArray(b) || cJSON_GetArraySize(a) != cJSON_GetArraySize(b)) {
        return false;
    }
    for (const cJSON *x = a->child, *y = b->child; x && y; x = x->next, y = y->next) {
        if (cJSON_GetNumberValue(x) != cJSON_GetNumberValue(y)) {
            return false;
        }
    }
    return true;
}

static void print_features(FILE *f, const char *title, const cJSON *arr) {
    if (cJSON_GetArraySize(arr) == 0) {
        fprintf(f, "    %s: none\n", title);
        return;
    }
    fprintf(f, "    %s:\n", title);
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) {
        fprintf(f, "      %s: %s ", cJSON_GetStringValue(cJSON_GetObjectItem(it, "name")),
                cJSON_GetStringValue(cJSON_GetObjectItem(it, "dtype")));
        const cJSON *shape = cJSON_GetObjectItem(it, "shape");
        print_dims(f, shape);
        const cJSON *def = cJSON_GetObjectItem(it, "default_shape");
        if (def && cJSON_GetArraySize(def) > 0 && !dims_equal(def, shape)) {
            fputs("  default ", f);
            print_dims(f, def);
        }
        const cJSON *en = cJSON_GetObjectItem(it, "enumerated_shapes");
        if (en) {
            fputs("  enumerated ", f);
            const cJSON *s;
            bool first = true;
            cJSON_ArrayForEach(s, en) {
                fputs(first ? "" : " | ", f);
                print_dims(f, s);
                first = false;
            }
        }
        const cJSON *rg = cJSON_GetObjectItem(it, "shape_range");
        if (rg) {
            fputs("  range [", f);
            const cJSON *p;
            bool first = true;
            cJSON_ArrayForEach(p, rg) {
                double lo = cJSON_GetNumberValue(cJSON_GetArrayItem(p, 0));
                double hi = cJSON_GetNumberValue(cJSON_GetArrayItem(p, 1));
                fprintf(f, "%s%.0f..", first ? "" : ", ", lo);
                if (hi >= 0) {
                    fprintf(f, "%.0f", hi);
                }
                first = false;
            }
            fputc(']', f);
        }
        if (cJSON_IsTrue(cJSON_GetObjectItem(it, "optional"))) {
            fputs("  (optional)", f);
        }
        fputc('\n', f);
    }
}

static const char *str_or(const cJSON *o, const char *key, const char *fallback) {
    const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, key));
    return s ? s : fallback;
}

static void print_model(FILE *f, const cJSON *m) {
    fprintf(f, "%s\n", str_or(m, "path", "?"));
    fprintf(f, "  format: %s\n", str_or(m, "format", "?"));
    const cJSON *sv = cJSON_GetObjectItem(m, "specification_version");
    if (cJSON_IsNumber(sv)) {
        fprintf(f, "  specification version: %.0f\n", cJSON_GetNumberValue(sv));
    } else {
        fputs("  specification version: unknown\n", f);
    }
    fprintf(f, "  default function: %s\n", str_or(m, "default_function", "none"));
    const cJSON *fn;
    cJSON_ArrayForEach(fn, cJSON_GetObjectItem(m, "functions")) {
        const char *opset = str_or(fn, "opset", NULL);
        if (opset) {
            fprintf(f, "  function %s: opset %s (%s)\n", str_or(fn, "name", "?"), opset,
                    str_or(fn, "opset_coreml", "?"));
        } else {
            fprintf(f, "  function %s: opset unknown\n", str_or(fn, "name", "?"));
        }
        print_features(f, "inputs", cJSON_GetObjectItem(fn, "inputs"));
        print_features(f, "outputs", cJSON_GetObjectItem(fn, "outputs"));
        print_features(f, "states", cJSON_GetObjectItem(fn, "states"));
        const cJSON *ops = cJSON_GetObjectItem(fn, "ops");
        double n_ops = 0;
        const cJSON *op;
        cJSON_ArrayForEach(op, ops) {
            n_ops += cJSON_GetNumberValue(op);
        }
        fprintf(f, "    ops: %.0f\n", n_ops);
        cJSON_ArrayForEach(op, ops) {
            fprintf(f, "      %-28s %8.0f\n", op->string, cJSON_GetNumberValue(op));
        }
    }
    const cJSON *meta = cJSON_GetObjectItem(m, "metadata");
    if (cJSON_GetArraySize(meta) == 0) {
        fputs("  metadata: none\n", f);
    } else {
        fputs("  metadata:\n", f);
        const cJSON *kv;
        cJSON_ArrayForEach(kv, meta) {
            const char *v = cJSON_GetStringValue(kv);
            fprintf(f, "    %s: %s\n", kv->string, v ? v : "");
        }
    }
    const cJSON *weights = cJSON_GetObjectItem(m, "weights");
    if (cJSON_GetNumberValue(cJSON_GetObjectItem(weights, "total")) == 0) {
        fputs("  weights: none (every constant is immediate)\n", f);
        return;
    }
    fputs("  weights:\n", f);
    const cJSON *w;
    cJSON_ArrayForEach(w, weights) {
        fprintf(f, "    %-8s %12.0f bytes\n", w->string, cJSON_GetNumberValue(w));
    }
}

/* `path` relative to the model directory when it lies inside it. */
static const char *rel_path(const char *dir, const char *path) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') {
        n--;
    }
    return strncmp(path, dir, n) == 0 && path[n] == '/' ? path + n + 1 : path;
}

static void print_lut(FILE *f, const char *name, const cJSON *v) {
    if (cJSON_IsNumber(v)) {
        fprintf(f, "%s %.0f-bit", name, cJSON_GetNumberValue(v));
    } else {
        fprintf(f, "%s none", name);
    }
}

static void print_assembled(FILE *f, const char *dir, const cJSON *m) {
    fprintf(f, "ANEMLL model %s\n", dir);
    const char *arch = str_or(m, "architecture", NULL);
    const char *ver = str_or(m, "meta_version", NULL);
    fprintf(f, "  architecture: %s\n", arch ? arch : "unknown (not in meta.yaml)");
    if (ver) {
        fprintf(f, "  meta.yaml: version %s\n", ver);
    } else {
        fputs("  meta.yaml: none (components found by file name)\n", f);
    }
    fprintf(f, "  prefix: %s\n", str_or(m, "model_prefix", "none"));
    const cJSON *n = cJSON_GetObjectItem(m, "num_chunks");
    fprintf(f, "  chunks: %.0f\n", cJSON_GetNumberValue(n));
    fprintf(f, "  context length: %.0f\n",
            cJSON_GetNumberValue(cJSON_GetObjectItem(m, "context_length")));
    fprintf(f, "  batch size: %.0f\n", cJSON_GetNumberValue(cJSON_GetObjectItem(m, "batch_size")));
    const cJSON *state = cJSON_GetObjectItem(m, "state");
    fprintf(f, "  state: %s ", str_or(state, "name", "?"));
    print_dims(f, cJSON_GetObjectItem(state, "shape"));
    fprintf(f, " (%.0f positions)\n", cJSON_GetNumberValue(cJSON_GetObjectItem(m, "state_length")));
    fprintf(f, "  hidden size: %.0f\n",
            cJSON_GetNumberValue(cJSON_GetObjectItem(m, "hidden_size")));
    fprintf(f, "  vocab size: %.0f in %.0f logit slices\n",
            cJSON_GetNumberValue(cJSON_GetObjectItem(m, "vocab_size")),
            cJSON_GetNumberValue(cJSON_GetObjectItem(m, "logit_slices")));
    fputs("  LUT: ", f);
    print_lut(f, "embeddings", cJSON_GetObjectItem(m, "lut_embeddings"));
    print_lut(f, ", ffn", cJSON_GetObjectItem(m, "lut_ffn"));
    print_lut(f, ", lm head", cJSON_GetObjectItem(m, "lut_lmhead"));
    fputc('\n', f);
    fprintf(f, "  tokenizer: %s\n", str_or(m, "tokenizer_dir", "none"));
    fputs("  components:\n", f);
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(m, "components")) {
        const char *role = str_or(c, "role", "?");
        char label[64];
        if (strcmp(role, "ffn") == 0) {
            snprintf(label, sizeof label, "ffn %.0f/%.0f",
                     cJSON_GetNumberValue(cJSON_GetObjectItem(c, "chunk")),
                     cJSON_GetNumberValue(n));
        } else {
            snprintf(label, sizeof label, "%s", strcmp(role, "lm_head") == 0 ? "lm head" : role);
        }
        fprintf(f, "    %-11s %s: %s", label, rel_path(dir, str_or(c, "path", "?")),
                str_or(c, "infer_function", "?"));
        if (strcmp(role, "ffn") == 0) {
            const char *pf = str_or(c, "prefill_function", NULL);
            const char *pp = str_or(c, "prefill_path", NULL);
            if (pp) {
                fprintf(f, ", prefill %s: %s", rel_path(dir, pp), pf ? pf : "?");
            } else if (pf) {
                fprintf(f, ", %s", pf);
            } else {
                fputs(" (no prefill function: prefill runs token by token)", f);
            }
        }
        fputc('\n', f);
    }
    fputc('\n', f);
}

/* ---- entry point ---- */

static void usage(FILE *f) {
    fputs("usage: anml info PATH [--json]\n\n"
          "Describes a .mlmodelc or .mlpackage directory, or a model directory holding several\n"
          "(each component is described, sorted by name): format, specification version, default\n"
          "function, per function its opset, inputs, outputs, states and op counts, the user\n"
          "metadata, and the weight bytes per dtype. For an ANEMLL model directory (one with\n"
          "meta.yaml, or whose components anml can assemble) the assembled model comes first:\n"
          "meta.yaml version, architecture, components by role, chunks, context length, batch\n"
          "size, KV state, hidden and vocab sizes, logit slices, LUT widths, tokenizer.\n\n"
          "  --json     print one JSON object instead of text\n"
          "  -h, --help show this help\n",
          f);
}

int anml_cli_info(int argc, char **argv) {
    const char *path = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return info_fail(argv[i], "unknown option (usage: anml info PATH [--json])");
        } else if (path) {
            return info_fail(argv[i], "only one PATH is allowed (usage: anml info PATH [--json])");
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        return info_fail("usage", "anml info PATH [--json]");
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        return info_fail(path, "no such file or directory");
    }

    cJSON *root = cJSON_CreateObject();
    if (!root) {
        return info_fail(path, "out of memory");
    }
    int rc = 0;
    bool is_dir_of_models = anml__is_dir(path) && !is_single_model_dir(path);
    if (!is_dir_of_models) {
        rc = describe_model(path, root);
    } else {
        char **names = NULL;
        size_t n = 0;
        struct builder b = { .ok = true };
        cJSON *comps = NULL;
        if (rc == 0) {
            add_item(&b, root, "path", cJSON_CreateString(path));
            rc = describe_assembled(path, root);
        }
        if (rc == 0) {
            /* after the model load, which may have unpacked zipped components */
            rc = list_components(path, &names, &n);
        }
        if (rc == 0) {
            comps = add_item(&b, root, "components", cJSON_CreateArray());
        }
        for (size_t i = 0; rc == 0 && i < n; i++) {
            char *full = anml__path_join(path, names[i]);
            cJSON *c = comps ? add_item(&b, comps, NULL, cJSON_CreateObject()) : NULL;
            if (!full || !c || !add_item(&b, c, "file", cJSON_CreateString(names[i]))) {
                rc = info_fail(path, "out of memory");
            } else {
                rc = describe_model(full, c);
            }
            anml__free(full);
        }
        for (size_t i = 0; i < n; i++) {
            anml__free(names[i]);
        }
        anml__free(names);
        if (rc == 0 && !b.ok) {
            rc = info_fail(path, "out of memory");
        }
    }
    if (rc != 0) {
        cJSON_Delete(root);
        return rc;
    }

    if (json) {
        char *text = cJSON_Print(root);
        if (!text) {
            cJSON_Delete(root);
            return info_fail(path, "out of memory");
        }
        fputs(text, stdout);
        fputc('\n', stdout);
        cJSON_free(text);
    } else {
        const cJSON *comps = cJSON_GetObjectItem(root, "components");
        const cJSON *model = cJSON_GetObjectItem(root, "model");
        if (model) {
            print_assembled(stdout, path, model);
        }
        if (comps) {
            fprintf(stdout, "model directory %s: %d components\n", path, cJSON_GetArraySize(comps));
            const cJSON *c;
            cJSON_ArrayForEach(c, comps) {
                fprintf(stdout, "\n== %s ==\n", str_or(c, "file", "?"));
                print_model(stdout, c);
            }
        } else {
            print_model(stdout, root);
        }
    }
    cJSON_Delete(root);
    if (fflush(stdout) != 0) {
        return info_fail("stdout", "write failed");
    }
    return 0;
}
