/*
 * model.c -- loads an ANEMLL model directory (anemll-format.md §1): meta.yaml of every version,
 * component discovery (LUT suffixes, chunk names, .mlmodelc / .mlpackage / .mlmodelc.zip,
 * separate FFN/prefill files, chunks without function names), then derives every shape from
 * the programs and cross-checks meta.yaml and config.json against them.
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>
#include <zip.h>

#include "llm/model_internal.h"

/* ---- meta.yaml: model_info scalars and model_info.parameters scalars ---- */

#define META_MAX 64

struct meta {
    bool present;
    int32_t n;
    char *key[META_MAX]; /* "name", "version", "parameters.context_length", ... */
    char *val[META_MAX];
};

static void meta_free(struct meta *m) {
    for (int32_t i = 0; i < m->n; i++) {
        anml__free(m->key[i]);
        anml__free(m->val[i]);
    }
    m->n = 0;
}

static const char *meta_get(const struct meta *m, const char *key) {
    for (int32_t i = 0; i < m->n; i++) {
        if (strcmp(m->key[i], key) == 0) {
            return m->val[i];
        }
    }
    return NULL;
}

static bool meta_add(struct meta *m, const char *prefix, const char *key, const char *val) {
    if (m->n == META_MAX) {
        return true; /* ignore the rest: nothing we read lives there */
    }
    size_t n = strlen(prefix) + strlen(key) + 1;
    char *k = anml__malloc(n);
    char *v = anml__strdup(val);
    if (!k || !v) {
        anml__free(k);
        anml__free(v);
        return false;
    }
    snprintf(k, n, "%s%s", prefix, key);
    m->key[m->n] = k;
    m->val[m->n++] = v;
    return true;
}

/* Adds the scalar entries of mapping node `map` under prefix; nested `parameters` recurses. */
static enum anml_status meta_walk(yaml_document_t *doc, yaml_node_t *map, const char *prefix,
                                  struct meta *m, const char *path, struct anml_error *err) {
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        yaml_node_t *v = yaml_document_get_node(doc, p->value);
        if (!k || !v || k->type != YAML_SCALAR_NODE) {
            continue;
        }
        const char *key = (const char *)k->data.scalar.value;
        if (v->type == YAML_SCALAR_NODE) {
            if (!meta_add(m, prefix, key, (const char *)v->data.scalar.value)) {
                return anml__err(err, ANML_E_NOMEM, path, "out of memory");
            }
        } else if (v->type == YAML_MAPPING_NODE && strcmp(key, "parameters") == 0 && !*prefix) {
            enum anml_status st = meta_walk(doc, v, "parameters.", m, path, err);
            if (st != ANML_OK) {
                return st;
            }
        }
    }
    return ANML_OK;
}

static enum anml_status meta_load(const char *path, struct meta *m, struct anml_error *err) {
    memset(m, 0, sizeof *m);
    char *text;
    size_t len;
    enum anml_status st = anml__read_file(path, &text, &len, err);
    if (st != ANML_OK) {
        return st;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        anml__free(text);
        return anml__err(err, ANML_E_NOMEM, path, "out of memory");
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        char where[300];
        snprintf(where, sizeof where, "%s:%zu:%zu", path, parser.problem_mark.line + 1,
                 parser.problem_mark.column + 1);
        st = anml__err(err, ANML_E_FORMAT, where, "bad YAML: %s",
                       parser.problem ? parser.problem : "parse error");
        yaml_parser_delete(&parser);
        anml__free(text);
        return st;
    }
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    yaml_node_t *info = NULL;
    if (root && root->type == YAML_MAPPING_NODE) {
        for (yaml_node_pair_t *p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top;
             p++) {
            yaml_node_t *k = yaml_document_get_node(&doc, p->key);
            if (k && k->type == YAML_SCALAR_NODE &&
                strcmp((const char *)k->data.scalar.value, "model_info") == 0) {
                info = yaml_document_get_node(&doc, p->value);
            }
        }
    }
    if (!info || info->type != YAML_MAPPING_NODE) {
        st = anml__err(err, ANML_E_FORMAT, path, "expected a top-level `model_info:` mapping");
    } else {
        st = meta_walk(&doc, info, "", m, path, err);
        m->present = st == ANML_OK;
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    anml__free(text);
    if (st != ANML_OK) {
        meta_free(m);
    }
    return st;
}

/* An integer parameter; -1 when absent. "none" counts as 0 for LUT fields. */
static enum anml_status meta_int(const struct meta *m, const char *key, const char *path,
                                 int32_t *out, struct anml_error *err) {
    const char *v = meta_get(m, key);
    *out = -1;
    if (!v) {
        return ANML_OK;
    }
    if (strcmp(v, "none") == 0 || strcmp(v, "None") == 0 || strcmp(v, "null") == 0 || !*v) {
        *out = 0;
        return ANML_OK;
    }
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || x < 0 || x > 1 << 30) {
        return anml__err(err, ANML_E_FORMAT, path,
                         "%s: expected a non-negative integer, found '%s'", key, v);
    }
    *out = (int32_t)x;
    return ANML_OK;
}

/* ---- zip components (.mlmodelc.zip, unpacked once next to the zip or into unzip_dir) ---- */

static bool zip_name_ok(const char *name, const char *top) {
    if (name[0] == '/' || strstr(name, "\\")) {
        return false;
    }
    size_t lt = strlen(top);
    if (strncmp(name, top, lt) != 0 || (name[lt] != '/' && name[lt] != '\0')) {
        return false;
    }
    for (const char *s = name; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if ((n == 2 && s[0] == '.' && s[1] == '.') || (n == 1 && s[0] == '.')) {
            return false;
        }
        s += n + (e ? 1 : 0);
    }
    return true;
}

static enum anml_status unzip_component(const char *zip_path, const char *out_dir, const char *top,
                                        struct anml_error *err) {
    int zerr = 0;
    zip_t *z = zip_open(zip_path, ZIP_RDONLY, &zerr);
    if (!z) {
        return anml__err(err, ANML_E_FORMAT, zip_path,
                         "not a readable zip archive (libzip error %d)", zerr);
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s/.%s.unzip-%ld", out_dir, top, (long)getpid());
    enum anml_status st = anml__mkdirs(tmp, err);
    char *buf = anml__malloc(1 << 20);
    if (!buf) {
        st = anml__err(err, ANML_E_NOMEM, zip_path, "out of memory");
    }
    zip_int64_t n = zip_get_num_entries(z, 0);
    for (zip_int64_t i = 0; st == ANML_OK && i < n; i++) {
        const char *name = zip_get_name(z, (zip_uint64_t)i, 0);
        if (!name) {
            st = anml__err(err, ANML_E_FORMAT, zip_path, "entry %lld has no name", (long long)i);
            break;
        }
        if (!zip_name_ok(name, top)) {
            st =
                anml__err(err, ANML_E_FORMAT, zip_path,
                          "entry '%s' is outside the folder '%s/' (refusing to unpack)", name, top);
            break;
        }
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", tmp, name);
        size_t pl = strlen(path);
        if (pl && path[pl - 1] == '/') {
            st = anml__mkdirs(path, err);
            continue;
        }
        char *slash = strrchr(path, '/');
        *slash = '\0';
        st = anml__mkdirs(path, err);
        *slash = '/';
        if (st != ANML_OK) {
            break;
        }
        zip_file_t *zf = zip_fopen_index(z, (zip_uint64_t)i, 0);
        FILE *f = zf ? fopen(path, "wb") : NULL;
        if (!zf || !f) {
            st = anml__err(err, zf ? ANML_E_IO : ANML_E_FORMAT, zip_path, "cannot extract '%s'",
                           name);
        }
        zip_int64_t got;
        while (st == ANML_OK && (got = zip_fread(zf, buf, 1 << 20)) > 0) {
            if (fwrite(buf, 1, (size_t)got, f) != (size_t)got) {
                st = anml__err(err, ANML_E_IO, path, "write failed");
            }
        }
        if (st == ANML_OK && got < 0) {
            st = anml__err(err, ANML_E_FORMAT, zip_path, "corrupt entry '%s'", name);
        }
        if (f && fclose(f) != 0 && st == ANML_OK) {
            st = anml__err(err, ANML_E_IO, path, "write failed");
        }
        if (zf) {
            zip_fclose(zf);
        }
    }
    anml__free(buf);
    zip_discard(z);
    char from[4200], to[4096];
    snprintf(from, sizeof from, "%s/%s", tmp, top);
    snprintf(to, sizeof to, "%s/%s", out_dir, top);
    if (st == ANML_OK && !anml__is_dir(from)) {
        st = anml__err(err, ANML_E_FORMAT, zip_path, "archive holds no folder '%s/'", top);
    }
    if (st == ANML_OK && rename(from, to) != 0) {
        st = anml__err(err, ANML_E_IO, to, "cannot move the unpacked folder: %s", strerror(errno));
    }
    anml__rmtree(tmp); /* what is left of the temporary tree (all of it after an error) */
    return st;
}

/* ---- component discovery ---- */

static void strip_ext(char *s) {
    static const char *const exts[] = { ".mlmodelc.zip", ".mlmodelc", ".mlpackage" };
    size_t n = strlen(s);
    for (size_t i = 0; i < 3; i++) {
        size_t le = strlen(exts[i]);
        if (n > le && strcmp(s + n - le, exts[i]) == 0) {
            s[n - le] = '\0';
            return;
        }
    }
}

/* Finds component `name` (with or without extension) in dir: X.mlmodelc, X.mlpackage, then
 * X.mlmodelc.zip (unpacked). Returns an owned path, NULL when absent (err set on a zip error). */
static char *resolve(const struct anml_model *m, const char *name, const char *unzip_dir,
                     enum anml_status *st, struct anml_error *err) {
    char base[1024], path[4096];
    snprintf(base, sizeof base, "%s", name);
    strip_ext(base);
    *st = ANML_OK;
    static const char *const exts[] = { ".mlmodelc", ".mlpackage" };
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s%s", m->dir, base, exts[i]);
        if (anml__is_dir(path)) {
            return anml__strdup(path);
        }
    }
    const char *out_dir = unzip_dir ? unzip_dir : m->dir;
    snprintf(path, sizeof path, "%s/%s.mlmodelc", out_dir, base);
    if (anml__is_dir(path)) {
        return anml__strdup(path); /* unpacked on an earlier load */
    }
    char zip_path[4096];
    snprintf(zip_path, sizeof zip_path, "%s/%s.mlmodelc.zip", m->dir, base);
    if (!anml__is_file(zip_path)) {
        return NULL;
    }
    char top[1100];
    snprintf(top, sizeof top, "%s.mlmodelc", base);
    ANML_LOG_INFO("model: unpacking %s into %s", zip_path, out_dir);
    *st = unzip_component(zip_path, out_dir, top, err);
    return *st == ANML_OK ? anml__strdup(path) : NULL;
}

/* Lists directory entries matching `<anything>_FFN_PF*_chunk_NNofMM` style names (pattern
 * "FFN_PF" or "prefill"/"FFN") and returns them sorted by chunk number. */
static int32_t find_chunks(const char *dir, const char *tag, char **names, int32_t cap,
                           int32_t *total) {
    DIR *d = opendir(dir);
    int32_t n = 0;
    *total = 0;
    if (!d) {
        return 0;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *s = strstr(e->d_name, tag);
        const char *c = s ? strstr(s, "_chunk_") : NULL;
        int ii, nn;
        char rest[64];
        if (!c || sscanf(c, "_chunk_%2dof%2d%63s", &ii, &nn, rest) < 2 || ii < 1 || ii > nn ||
            nn > cap) {
            continue;
        }
        if (strcmp(tag, "_FFN_") == 0 && strstr(e->d_name, "_FFN_PF")) {
            continue; /* the separate-file layout must not pick up combined chunks */
        }
        if (names[ii - 1]) {
            continue; /* .mlmodelc and .mlpackage of the same chunk: keep the first seen */
        }
        char base[1024];
        snprintf(base, sizeof base, "%s", e->d_name);
        strip_ext(base);
        names[ii - 1] = anml__strdup(base);
        *total = nn;
        n++;
    }
    closedir(d);
    return n;
}

static enum anml_status load_program(const char *path, struct anml_program **out,
                                     struct anml_error *err) {
    enum anml_status st = anml_program_load(path, out, err);
    if (st != ANML_OK && err && !strstr(err->where, path)) {
        anml__err_prefix(err, "%s", path);
    }
    return st;
}

/* ---- shapes ---- */

static bool io_find(const struct anml_program *p, const char *fn, enum anml_io_kind kind,
                    const char *name, struct anml_io_desc *d) {
    int32_t n = anml_program_io_count(p, fn, kind);
    for (int32_t i = 0; i < n; i++) {
        if (anml_program_io(p, fn, kind, i, d) == ANML_OK && (!name || !strcmp(d->name, name))) {
            return true;
        }
    }
    return false;
}

static int cmp_slice(const void *a, const void *b) {
    const char *x = *(const char *const *)a, *y = *(const char *const *)b;
    long nx = strtol(x + 6, NULL, 10), ny = strtol(y + 6, NULL, 10);
    return nx < ny ? -1 : nx > ny;
}

static enum anml_status derive_shapes(struct anml_model *m, struct anml_error *err) {
    struct anml_io_desc d;
    struct anml_chunk *c0 = &m->chunks[0];
    if (!io_find(c0->prog, c0->infer_fn, ANML_IO_INPUT, "hidden_states", &d) || d.rank != 3) {
        return anml__err(err, ANML_E_FORMAT, c0->path,
                         "function '%s' has no rank-3 input 'hidden_states'", c0->infer_fn);
    }
    m->hidden = (int32_t)d.shape[2];
    if (!io_find(c0->prog, c0->infer_fn, ANML_IO_INPUT, "causal_mask", &d) || d.rank != 4) {
        return anml__err(err, ANML_E_FORMAT, c0->path,
                         "function '%s' has no rank-4 input 'causal_mask'", c0->infer_fn);
    }
    m->context = (int32_t)d.shape[3];
    if (!io_find(c0->prog, c0->infer_fn, ANML_IO_STATE, NULL, &d) || d.rank < 3) {
        return anml__err(err, ANML_E_FORMAT, c0->path, "function '%s' declares no KV-cache state",
                         c0->infer_fn);
    }
    m->state_name = anml__strdup(d.name);
    m->state_rank = d.rank;
    memcpy(m->state_shape, d.shape, sizeof d.shape);
    m->state_len = (int32_t)d.shape[2];
    m->batch = 1;
    if (c0->prefill_fn) {
        const struct anml_program *pp = c0->prefill_prog ? c0->prefill_prog : c0->prog;
        if (!io_find(pp, c0->prefill_fn, ANML_IO_INPUT, "hidden_states", &d) || d.rank != 3) {
            return anml__err(err, ANML_E_FORMAT, c0->prefill_path ? c0->prefill_path : c0->path,
                             "function '%s' has no rank-3 input 'hidden_states'", c0->prefill_fn);
        }
        m->batch = (int32_t)d.shape[1];
    }
    if (m->context < 1 || m->hidden < 1 || m->batch < 1 || m->state_len < m->context) {
        return anml__err(err, ANML_E_FORMAT, c0->path,
                         "inconsistent shapes: context %d, hidden %d, batch %d, state length %d",
                         (int)m->context, (int)m->hidden, (int)m->batch, (int)m->state_len);
    }
    /* every chunk: same hidden size, same state, same context */
    for (int32_t i = 0; i < m->n_chunks; i++) {
        struct anml_chunk *c = &m->chunks[i];
        if (!io_find(c->prog, c->infer_fn, ANML_IO_INPUT, "hidden_states", &d) ||
            d.shape[2] != m->hidden) {
            return anml__err(err, ANML_E_SHAPE, c->path,
                             "hidden size %lld differs from chunk 1's %d", (long long)d.shape[2],
                             (int)m->hidden);
        }
        if (!io_find(c->prog, c->infer_fn, ANML_IO_STATE, m->state_name, &d) ||
            memcmp(d.shape, m->state_shape, sizeof d.shape) != 0) {
            return anml__err(err, ANML_E_SHAPE, c->path,
                             "state '%s' is missing or differs from chunk 1's", m->state_name);
        }
    }
    /* embeddings output and LM head input */
    if (!io_find(m->emb, NULL, ANML_IO_OUTPUT, NULL, &d) || d.rank != 3 ||
        (d.shape[2] >= 0 && d.shape[2] != m->hidden)) {
        return anml__err(err, ANML_E_SHAPE, m->emb_path,
                         "output is not [1, T, %d] (the chunks' hidden size)", (int)m->hidden);
    }
    if (!io_find(m->head, NULL, ANML_IO_INPUT, NULL, &d) || d.rank != 3 ||
        d.shape[2] != m->hidden) {
        return anml__err(err, ANML_E_SHAPE, m->head_path,
                         "input is not [1, 1, %d] (the chunks' hidden size)", (int)m->hidden);
    }
    /* LM head slices: logits1..K in numeric order, or one `logits` */
    int32_t n_out = anml_program_io_count(m->head, NULL, ANML_IO_OUTPUT);
    const char *names[ANML_MAX_SLICES];
    int32_t k = 0;
    for (int32_t i = 0; i < n_out && k < ANML_MAX_SLICES; i++) {
        if (anml_program_io(m->head, NULL, ANML_IO_OUTPUT, i, &d) == ANML_OK &&
            strncmp(d.name, "logits", 6) == 0) {
            names[k++] = d.name;
        }
    }
    if (k == 0) {
        return anml__err(err, ANML_E_UNSUPPORTED, m->head_path,
                         "no `logits*` outputs (argmax-in-model heads are not supported yet)");
    }
    qsort(names, (size_t)k, sizeof names[0], cmp_slice);
    m->n_slices = k;
    m->vocab = 0;
    for (int32_t i = 0; i < k; i++) {
        io_find(m->head, NULL, ANML_IO_OUTPUT, names[i], &d);
        if (d.rank < 1 || d.shape[d.rank - 1] < 1) {
            return anml__err(err, ANML_E_FORMAT, m->head_path, "output '%s' has no vocab size",
                             names[i]);
        }
        m->slice_size[i] = (int32_t)d.shape[d.rank - 1];
        m->slice_name[i] = anml__strdup(names[i]);
        m->vocab += m->slice_size[i];
    }
    return ANML_OK;
}

/* meta.yaml and config.json against the programs: contradictions are errors. */
static enum anml_status cross_check(struct anml_model *m, const struct meta *meta,
                                    const char *meta_path, struct anml_error *err) {
    static const struct {
        const char *key;
        size_t off;
        const char *what;
    } checks[] = {
        { "parameters.context_length", offsetof(struct anml_model, context),
          "the causal_mask width of chunk 1" },
        { "parameters.batch_size", offsetof(struct anml_model, batch),
          "the prefill batch of chunk 1" },
        { "parameters.num_chunks", offsetof(struct anml_model, n_chunks), "the chunk files found" },
        { "parameters.split_lm_head", offsetof(struct anml_model, n_slices),
          "the LM head's logits outputs" },
        { "parameters.num_logits", offsetof(struct anml_model, n_slices),
          "the LM head's logits outputs" },
    };
    for (size_t i = 0; meta->present && i < sizeof checks / sizeof checks[0]; i++) {
        int32_t v;
        enum anml_status st = meta_int(meta, checks[i].key, meta_path, &v, err);
        if (st != ANML_OK) {
            return st;
        }
        int32_t have = *(const int32_t *)((const char *)m + checks[i].off);
        if (v >= 0 && v != have) {
            if (strcmp(checks[i].key, "parameters.batch_size") == 0 && !m->chunks[0].prefill_fn) {
                continue; /* no prefill function: batch_size is not used */
            }
            return anml__err(err, ANML_E_FORMAT, meta_path, "%s is %d in meta.yaml but %d from %s",
                             checks[i].key + 11, (int)v, (int)have, checks[i].what);
        }
    }
    char *cfg_path = anml__path_join(m->dir, "config.json");
    char *text = NULL;
    size_t len;
    enum anml_status st = ANML_OK;
    if (cfg_path && anml__is_file(cfg_path) &&
        anml__read_file(cfg_path, &text, &len, NULL) == ANML_OK) {
        cJSON *cfg = cJSON_ParseWithLength(text, len);
        if (!cfg) {
            st = anml__err(err, ANML_E_FORMAT, cfg_path, "not valid JSON");
        }
        const struct {
            const char *key;
            int32_t have;
            const char *what;
        } cc[] = {
            { "hidden_size", m->hidden, "the programs' hidden_states" },
            { "vocab_size", m->vocab, "the LM head slices" },
            { "context_length", m->context, "the causal_mask width" },
        };
        for (size_t i = 0; cfg && st == ANML_OK && i < sizeof cc / sizeof cc[0]; i++) {
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, cc[i].key);
            if (cJSON_IsNumber(v) && (int32_t)v->valuedouble != cc[i].have) {
                /* Llama heads drop V % 8 rows: a vocab larger than the slices is expected */
                if (strcmp(cc[i].key, "vocab_size") == 0 && v->valuedouble > cc[i].have &&
                    v->valuedouble < cc[i].have + m->n_slices) {
                    continue;
                }
                st = anml__err(err, ANML_E_FORMAT, cfg_path,
                               "%s is %d in config.json but %d from %s", cc[i].key,
                               (int)v->valuedouble, (int)cc[i].have, cc[i].what);
            }
        }
        cJSON_Delete(cfg);
    }
    anml__free(text);
    anml__free(cfg_path);
    return st;
}

/* ---- loading ---- */

struct anml_model_params anml_model_params_default(void) {
    struct anml_model_params p;
    memset(&p, 0, sizeof p);
    p.size = sizeof p;
    return p;
}

static char *lut_suffix(int32_t bits, char *buf, size_t cap) {
    if (bits > 0) {
        snprintf(buf, cap, "_lut%d", (int)bits);
    } else {
        buf[0] = '\0';
    }
    return buf;
}

/* Picks the infer/prefill functions of a chunk program. */
static void chunk_functions(struct anml_chunk *c) {
    int32_t n = anml_program_n_functions(c->prog);
    c->infer_fn = anml_program_default_function(c->prog);
    c->prefill_fn = NULL;
    for (int32_t i = 0; i < n; i++) {
        const char *f = anml_program_function_name(c->prog, i);
        if (strcmp(f, "infer") == 0) {
            c->infer_fn = f;
        } else if (strcmp(f, "prefill") == 0) {
            c->prefill_fn = f;
        }
    }
    if (c->prefill_prog) {
        c->prefill_fn = anml_program_default_function(c->prefill_prog);
    }
}

static enum anml_status discover(struct anml_model *m, const struct meta *meta,
                                 const char *meta_path, const struct anml_model_params *params,
                                 struct anml_error *err) {
    enum anml_status st;
    const char *prefix = meta_get(meta, "parameters.model_prefix");
    int32_t n_chunks = -1;
    st = meta_int(meta, "parameters.num_chunks", meta_path, &n_chunks, err);
    int32_t le = 0, lf = 0, ll = 0;
    if (st == ANML_OK) {
        st = meta_int(meta, "parameters.lut_embeddings", meta_path, &le, err);
    }
    if (st == ANML_OK) {
        st = meta_int(meta, "parameters.lut_ffn", meta_path, &lf, err);
    }
    if (st == ANML_OK) {
        st = meta_int(meta, "parameters.lut_lmhead", meta_path, &ll, err);
    }
    if (st != ANML_OK) {
        return st;
    }
    m->lut_emb = le > 0 ? le : 0;
    m->lut_ffn = lf > 0 ? lf : 0;
    m->lut_head = ll > 0 ? ll : 0;
    const char *unzip = params->unzip_dir;
    char name[1024], sfx[32];
    /* embeddings: key, {P}_embeddings{lut}, {P}_embeddings */
    const char *key = meta_get(meta, "parameters.embeddings");
    if (key) {
        m->emb_path = resolve(m, key, unzip, &st, err);
    }
    if (!m->emb_path && st == ANML_OK && prefix) {
        snprintf(name, sizeof name, "%s_embeddings%s", prefix, lut_suffix(le, sfx, sizeof sfx));
        m->emb_path = resolve(m, name, unzip, &st, err);
        if (!m->emb_path && st == ANML_OK) {
            snprintf(name, sizeof name, "%s_embeddings", prefix);
            m->emb_path = resolve(m, name, unzip, &st, err);
        }
    }
    key = meta_get(meta, "parameters.lm_head");
    if (key && st == ANML_OK) {
        m->head_path = resolve(m, key, unzip, &st, err);
    }
    if (!m->head_path && st == ANML_OK && prefix) {
        snprintf(name, sizeof name, "%s_lm_head%s", prefix, lut_suffix(ll, sfx, sizeof sfx));
        m->head_path = resolve(m, name, unzip, &st, err);
    }
    if (st != ANML_OK) {
        return st;
    }
    /* without meta.yaml (or its names), look at the directory */
    if (!m->emb_path || !m->head_path) {
        DIR *d = opendir(m->dir);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            char **slot = strstr(e->d_name, "_embeddings") ? &m->emb_path
                          : strstr(e->d_name, "_lm_head")  ? &m->head_path
                                                           : NULL;
            if (slot && !*slot && st == ANML_OK) {
                *slot = resolve(m, e->d_name, unzip, &st, err);
            }
        }
        if (d) {
            closedir(d);
        }
    }
    if (st != ANML_OK) {
        return st;
    }
    if (!m->emb_path) {
        return anml__err(err, ANML_E_NOT_FOUND, m->dir, "no embeddings component (%s_embeddings%s)",
                         prefix ? prefix : "*", lut_suffix(le, sfx, sizeof sfx));
    }
    if (!m->head_path) {
        return anml__err(err, ANML_E_NOT_FOUND, m->dir, "no LM head component (%s_lm_head%s)",
                         prefix ? prefix : "*", lut_suffix(ll, sfx, sizeof sfx));
    }
    /* FFN chunks: combined FFN_PF first, then separate FFN + prefill files */
    char *names[ANML_MAX_CHUNKS] = { 0 }, *pnames[ANML_MAX_CHUNKS] = { 0 };
    int32_t total = 0, ptotal = 0;
    int32_t found = find_chunks(m->dir, "_FFN_PF", names, ANML_MAX_CHUNKS, &total);
    bool separate = false;
    if (found == 0) {
        found = find_chunks(m->dir, "_FFN_", names, ANML_MAX_CHUNKS, &total);
        find_chunks(m->dir, "_prefill", pnames, ANML_MAX_CHUNKS, &ptotal);
        separate = found > 0;
    }
    if (found == 0) {
        /* a single chunk named by `ffn:` as given (0.3.x with one chunk) */
        key = meta_get(meta, "parameters.ffn");
        char *p = key ? resolve(m, key, unzip, &st, err) : NULL;
        if (p) {
            names[0] = p;
            found = total = 1;
        }
    }
    if (st != ANML_OK) {
        goto out;
    }
    if (found == 0) {
        st = anml__err(err, ANML_E_NOT_FOUND, m->dir, "no FFN chunk (%s_FFN_PF%s_chunk_01of..)",
                       prefix ? prefix : "*", lut_suffix(lf, sfx, sizeof sfx));
        goto out;
    }
    if (found != total || (n_chunks > 0 && n_chunks != total)) {
        st = anml__err(err, ANML_E_NOT_FOUND, m->dir,
                       "found %d of %d FFN chunk files (meta.yaml num_chunks: %d)", (int)found,
                       (int)total, (int)n_chunks);
        goto out;
    }
    m->n_chunks = total;
    for (int32_t i = 0; i < total && st == ANML_OK; i++) {
        struct anml_chunk *c = &m->chunks[i];
        c->path =
            strchr(names[i], '/') ? anml__strdup(names[i]) : resolve(m, names[i], unzip, &st, err);
        if (!c->path) {
            if (st == ANML_OK) {
                st = anml__err(err, ANML_E_NOT_FOUND, m->dir, "chunk %d: '%s' not found",
                               (int)i + 1, names[i]);
            }
            break;
        }
        st = load_program(c->path, &c->prog, err);
        if (st == ANML_OK && separate && pnames[i]) {
            c->prefill_path = resolve(m, pnames[i], unzip, &st, err);
            if (c->prefill_path) {
                st = load_program(c->prefill_path, &c->prefill_prog, err);
            }
        }
        if (st == ANML_OK) {
            chunk_functions(c);
        }
    }
out:
    for (int32_t i = 0; i < ANML_MAX_CHUNKS; i++) {
        anml__free(names[i]);
        anml__free(pnames[i]);
    }
    return st;
}

void anml_model_free(struct anml_model *m) {
    if (!m) {
        return;
    }
    for (int32_t i = 0; i < m->n_chunks; i++) {
        anml_program_free(m->chunks[i].prog);
        anml_program_free(m->chunks[i].prefill_prog);
        anml__free(m->chunks[i].path);
        anml__free(m->chunks[i].prefill_path);
    }
    for (int32_t i = 0; i < m->n_slices; i++) {
        anml__free(m->slice_name[i]);
    }
    anml_program_free(m->emb);
    anml_program_free(m->head);
    anml__free(m->emb_path);
    anml__free(m->head_path);
    anml__free(m->dir);
    anml__free(m->architecture);
    anml__free(m->meta_version);
    anml__free(m->model_prefix);
    anml__free(m->tokenizer_dir);
    anml__free(m->state_name);
    anml__free(m);
}

enum anml_status anml_model_load(const char *dir, const struct anml_model_params *params,
                                 struct anml_model **out, struct anml_error *err) {
    struct anml_model_params defaults = anml_model_params_default();
    if (!out || !dir) {
        return anml__err(err, ANML_E_INVALID_ARG, NULL, "dir and out are required");
    }
    *out = NULL;
    if (!params) {
        params = &defaults;
    }
    if (!anml__is_dir(dir)) {
        return anml__err(err, ANML_E_IO, dir, "not a directory");
    }
    struct anml_model *m = anml__calloc(1, sizeof *m);
    if (!m || !(m->dir = anml__strdup(dir))) {
        anml__free(m);
        return anml__err(err, ANML_E_NOMEM, dir, "out of memory");
    }
    struct meta meta = { 0 };
    char *meta_path = anml__path_join(dir, "meta.yaml");
    enum anml_status st = meta_path ? ANML_OK : anml__err(err, ANML_E_NOMEM, dir, "out of memory");
    if (st == ANML_OK && anml__is_file(meta_path)) {
        st = meta_load(meta_path, &meta, err);
    }
    if (st == ANML_OK) {
        const char *a = meta_get(&meta, "architecture");
        const char *v = meta_get(&meta, "version");
        const char *p = meta_get(&meta, "parameters.model_prefix");
        m->architecture = anml__strdup(a ? a : "");
        m->meta_version = anml__strdup(v ? v : "");
        m->model_prefix = anml__strdup(p ? p : "");
        st = discover(m, &meta, meta_path, params, err);
    }
    if (st == ANML_OK) {
        st = load_program(m->emb_path, &m->emb, err);
    }
    if (st == ANML_OK) {
        st = load_program(m->head_path, &m->head, err);
    }
    if (st == ANML_OK) {
        st = derive_shapes(m, err);
    }
    if (st == ANML_OK) {
        st = cross_check(m, &meta, meta_path, err);
    }
    if (st == ANML_OK) {
        const char *tp = meta_get(&meta, "parameters.tokenizer_path");
        char *tdir =
            tp ? (tp[0] == '/' ? anml__strdup(tp) : anml__path_join(dir, tp)) : anml__strdup(dir);
        char *tj = tdir ? anml__path_join(tdir, "tokenizer.json") : NULL;
        if (tj && anml__is_file(tj)) {
            m->tokenizer_dir = tdir;
            tdir = NULL;
        }
        anml__free(tdir);
        anml__free(tj);
    }
    meta_free(&meta);
    anml__free(meta_path);
    if (st != ANML_OK) {
        anml_model_free(m);
        return st;
    }
    ANML_LOG_INFO("model: %s: %d chunks, context %d, batch %d, hidden %d, vocab %d in %d slices",
                  dir, (int)m->n_chunks, (int)m->context, (int)m->batch, (int)m->hidden,
                  (int)m->vocab, (int)m->n_slices);
    *out = m;
    return ANML_OK;
}

void anml_model_get_info(const struct anml_model *m, struct anml_model_info *o) {
    memset(o, 0, sizeof *o);
    o->architecture = m->architecture;
    o->meta_version = m->meta_version;
    o->model_prefix = m->model_prefix;
    o->n_chunks = m->n_chunks;
    o->context_length = m->context;
    o->batch_size = m->batch;
    o->state_length = m->state_len;
    o->hidden_size = m->hidden;
    o->vocab_size = m->vocab;
    o->n_logit_slices = m->n_slices;
    o->lut_embeddings = m->lut_emb;
    o->lut_ffn = m->lut_ffn;
    o->lut_lmhead = m->lut_head;
    o->state_name = m->state_name;
    o->state_rank = m->state_rank;
    memcpy(o->state_shape, m->state_shape, sizeof o->state_shape);
    o->tokenizer_dir = m->tokenizer_dir;
}

int32_t anml_model_n_components(const struct anml_model *m) {
    return m->n_chunks + 2;
}

enum anml_status anml_model_component_info(const struct anml_model *m, int32_t i,
                                           struct anml_component_info *o) {
    if (i < 0 || i >= m->n_chunks + 2) {
        return ANML_E_NOT_FOUND;
    }
    memset(o, 0, sizeof *o);
    if (i == 0) {
        o->role = ANML_COMPONENT_EMBEDDINGS;
        o->path = m->emb_path;
        o->program = m->emb;
        o->infer_fn = anml_program_default_function(m->emb);
    } else if (i == m->n_chunks + 1) {
        o->role = ANML_COMPONENT_LM_HEAD;
        o->path = m->head_path;
        o->program = m->head;
        o->infer_fn = anml_program_default_function(m->head);
    } else {
        const struct anml_chunk *c = &m->chunks[i - 1];
        o->role = ANML_COMPONENT_FFN;
        o->chunk = i;
        o->path = c->path;
        o->program = c->prog;
        o->infer_fn = c->infer_fn;
        o->prefill_fn = c->prefill_fn;
        o->prefill_path = c->prefill_path;
    }
    return ANML_OK;
}
