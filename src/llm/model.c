/*
 * model.c -- loads an ANEMLL model directory (anemll-format.md §1). It owns:
 *  - meta.yaml of every version (0.1.x without file keys, 0.3.0 `embeddings/lm_head/ffn`, 0.3.3 /
 *    0.3.4 `architecture` + `split_lm_head`, 0.3.5 `ffn` with the chunk suffix, `*_per_channel`,
 *    `vocab_size`, `lm_head_chunk_sizes`, nested mappings, comment blocks); meta.yaml is optional;
 *  - component discovery (§1.4): the file keys first, then names built from model_prefix and the
 *    LUT fields (embeddings retry without the LUT suffix), FFN chunk names built as
 *    <stem>_chunk_<i>of<N> whether or not `ffn:` carries the suffix, separate FFN + prefill files,
 *    a single `ffn:` file, and -- without meta.yaml -- the same roles found by file name; each
 *    name as .mlmodelc, .mlpackage or .mlmodelc.zip (unpacked once, see unzip_component);
 *  - shapes: every size comes from the programs' signatures; meta.yaml and config.json are only
 *    cross-checked, and a contradiction is an error naming both sources.
 * Errors name the file, or the meta.yaml key with its line:col.
 */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>
#include <zip.h>

#include "llm/model_internal.h"

/* ---- meta.yaml: every scalar under model_info, by dotted key ---- */

#define META_MAX   256
#define META_DEPTH 4

struct meta_entry {
    char *key;        /* "version", "parameters.context_length", "parameters.a.b" */
    char *val;        /* a scalar, or the scalars of a sequence joined by "," */
    size_t line, col; /* 1-based position of the value */
};

struct meta {
    bool present;
    const char *path;
    int32_t n;
    struct meta_entry e[META_MAX];
};

static void meta_free(struct meta *m) {
    for (int32_t i = 0; i < m->n; i++) {
        anml__free(m->e[i].key);
        anml__free(m->e[i].val);
    }
    m->n = 0;
}

static const struct meta_entry *meta_find(const struct meta *m, const char *key) {
    for (int32_t i = 0; i < m->n; i++) {
        if (strcmp(m->e[i].key, key) == 0) {
            return &m->e[i];
        }
    }
    return NULL;
}

static const char *meta_get(const struct meta *m, const char *key) {
    const struct meta_entry *e = meta_find(m, key);
    return e ? e->val : NULL;
}

/* "<meta.yaml>:line:col" of a key's value, or the file alone when the key is absent. */
static const char *meta_where(const struct meta *m, const char *key, char *buf, size_t cap) {
    const struct meta_entry *e = meta_find(m, key);
    if (e) {
        snprintf(buf, cap, "%s:%zu:%zu", m->path, e->line, e->col);
    } else {
        snprintf(buf, cap, "%s", m->path ? m->path : "meta.yaml");
    }
    return buf;
}

/* Takes ownership of val. */
static bool meta_add(struct meta *m, const char *key, char *val, const yaml_node_t *node) {
    if (m->n == META_MAX || meta_find(m, key)) {
        anml__free(val); /* later duplicates and the long tail: nothing we read lives there */
        return true;
    }
    char *k = anml__strdup(key);
    if (!k || !val) {
        anml__free(k);
        anml__free(val);
        return false;
    }
    m->e[m->n++] =
        (struct meta_entry){ k, val, node->start_mark.line + 1, node->start_mark.column + 1 };
    return true;
}

/* The scalars of a sequence node joined by ","; non-scalar items are skipped. */
static char *join_sequence(yaml_document_t *doc, yaml_node_t *seq) {
    size_t len = 1;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
         it++) {
        yaml_node_t *v = yaml_document_get_node(doc, *it);
        if (v && v->type == YAML_SCALAR_NODE) {
            len += v->data.scalar.length + 1;
        }
    }
    char *s = anml__malloc(len);
    if (!s) {
        return NULL;
    }
    size_t n = 0;
    for (yaml_node_item_t *it = seq->data.sequence.items.start; it < seq->data.sequence.items.top;
         it++) {
        yaml_node_t *v = yaml_document_get_node(doc, *it);
        if (v && v->type == YAML_SCALAR_NODE) {
            if (n) {
                s[n++] = ',';
            }
            memcpy(s + n, v->data.scalar.value, v->data.scalar.length);
            n += v->data.scalar.length;
        }
    }
    s[n] = '\0';
    return s;
}

/* Adds the entries of mapping `map` under `prefix`; nested mappings recurse (bounded, so that
 * aliases cannot loop). */
static bool meta_walk(yaml_document_t *doc, yaml_node_t *map, const char *prefix, int depth,
                      struct meta *m) {
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        yaml_node_t *v = yaml_document_get_node(doc, p->value);
        if (!k || !v || k->type != YAML_SCALAR_NODE) {
            continue;
        }
        char key[256];
        int kn = snprintf(key, sizeof key, "%s%s", prefix, (const char *)k->data.scalar.value);
        if (kn < 0 || (size_t)kn >= sizeof key - 1) {
            continue;
        }
        bool ok = true;
        if (v->type == YAML_SCALAR_NODE) {
            ok = meta_add(m, key, anml__strdup((const char *)v->data.scalar.value), v);
        } else if (v->type == YAML_SEQUENCE_NODE) {
            ok = meta_add(m, key, join_sequence(doc, v), v);
        } else if (v->type == YAML_MAPPING_NODE && depth < META_DEPTH) {
            key[kn] = '.';
            key[kn + 1] = '\0';
            ok = meta_walk(doc, v, key, depth + 1, m);
        }
        if (!ok) {
            return false;
        }
    }
    return true;
}

static enum anml_status meta_load(const char *path, struct meta *m, struct anml_error *err) {
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
        char where[4200];
        snprintf(where, sizeof where, "%s:%zu:%zu", path, parser.problem_mark.line + 1,
                 parser.problem_mark.column + 1);
        if (parser.context) {
            st = anml__err(err, ANML_E_FORMAT, where, "bad YAML: %s %s", parser.problem,
                           parser.context);
        } else {
            st = anml__err(err, ANML_E_FORMAT, where, "bad YAML: %s",
                           parser.problem ? parser.problem : "parse error");
        }
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
    } else if (!meta_walk(&doc, info, "", 0, m)) {
        st = anml__err(err, ANML_E_NOMEM, path, "out of memory");
    } else {
        m->present = true;
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    anml__free(text);
    return st;
}

/* Parses a non-negative decimal integer (the whole string). */
static bool parse_count(const char *v, int32_t *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < 0 || x > 1 << 30) {
        return false;
    }
    *out = (int32_t)x;
    return true;
}

/* An integer parameter; -1 when absent. With `lut`, "none" (and an empty value) mean 0. */
static enum anml_status meta_int(const struct meta *m, const char *key, bool lut, int32_t *out,
                                 struct anml_error *err) {
    const char *v = meta_get(m, key);
    *out = -1;
    if (!v) {
        return ANML_OK;
    }
    if (lut && (!*v || strcmp(v, "none") == 0 || strcmp(v, "None") == 0 || strcmp(v, "null") == 0 ||
                strcmp(v, "false") == 0)) {
        *out = 0;
        return ANML_OK;
    }
    if (!parse_count(v, out)) {
        char where[4200];
        *out = -1;
        return anml__err(err, ANML_E_FORMAT, meta_where(m, key, where, sizeof where),
                         "%s: expected a non-negative integer%s, found '%s'", key,
                         lut ? " or none" : "", v);
    }
    return ANML_OK;
}

/* ---- zip components: <name>.mlmodelc.zip holds the folder <name>.mlmodelc/ ---- */

/* An entry may only name <top> or something inside it, by a relative path without "." or ".."
 * components: anything else could write outside the folder being unpacked. */
static bool zip_name_ok(const char *name, const char *top) {
    size_t lt = strlen(top);
    if (name[0] == '/' || strchr(name, '\\') || strlen(name) > 1024 ||
        strncmp(name, top, lt) != 0 || (name[lt] != '/' && name[lt] != '\0')) {
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

static enum anml_status zip_fail(struct anml_error *err, const char *zip_path, zip_error_t *ze,
                                 const char *what) {
    return anml__err(err, ANML_E_FORMAT, zip_path, "%s: %s", what, zip_error_strerror(ze));
}

/* Extracts entry i into tmp/<name>. */
static enum anml_status unzip_entry(zip_t *z, zip_uint64_t i, const char *name, const char *tmp,
                                    const char *zip_path, char *buf, size_t cap,
                                    struct anml_error *err) {
    char path[4096];
    int pn = snprintf(path, sizeof path, "%s/%s", tmp, name);
    if (pn < 0 || (size_t)pn >= sizeof path) {
        return anml__err(err, ANML_E_FORMAT, zip_path, "entry name '%s' is too long", name);
    }
    size_t pl = (size_t)pn;
    if (path[pl - 1] == '/') {
        return anml__mkdirs(path, err);
    }
    char *slash = strrchr(path, '/');
    *slash = '\0';
    enum anml_status st = anml__mkdirs(path, err);
    *slash = '/';
    if (st != ANML_OK) {
        return st;
    }
    zip_file_t *zf = zip_fopen_index(z, i, 0);
    if (!zf) {
        return zip_fail(err, zip_path, zip_get_error(z), name);
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        st = anml__err(err, ANML_E_IO, path, "cannot create: %s", strerror(errno));
    }
    while (st == ANML_OK) {
        zip_int64_t got = zip_fread(zf, buf, cap);
        if (got < 0) {
            st = zip_fail(err, zip_path, zip_file_get_error(zf), name);
        } else if (got == 0) {
            break;
        } else if (fwrite(buf, 1, (size_t)got, f) != (size_t)got) {
            st = anml__err(err, ANML_E_IO, path, "write failed: %s", strerror(errno));
        }
    }
    if (f && fclose(f) != 0 && st == ANML_OK) {
        st = anml__err(err, ANML_E_IO, path, "write failed: %s", strerror(errno));
    }
    zip_fclose(zf);
    return st;
}

/* Unpacks the folder `top` of zip_path into out_dir/top. The archive is extracted into a hidden
 * temporary folder next to the target and renamed into place only when every entry checked and
 * extracted, so an interrupted or refused unpack never leaves a half-filled component behind,
 * and a later load finds either nothing or the complete folder (and then never unpacks again). */
static enum anml_status unzip_component(const char *zip_path, const char *out_dir, const char *top,
                                        struct anml_error *err) {
    char tmp[4096], from[4200], to[4096];
    snprintf(tmp, sizeof tmp, "%s/.%s.unzip-%ld", out_dir, top, (long)getpid());
    snprintf(from, sizeof from, "%s/%s", tmp, top);
    snprintf(to, sizeof to, "%s/%s", out_dir, top);
    int zerr = 0;
    zip_t *z = zip_open(zip_path, ZIP_RDONLY | ZIP_CHECKCONS, &zerr);
    if (!z) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, zerr);
        enum anml_status st = zip_fail(err, zip_path, &ze, "not a readable zip archive");
        zip_error_fini(&ze);
        return st;
    }
    /* every name is checked before anything is written */
    enum anml_status st = ANML_OK;
    zip_int64_t n = zip_get_num_entries(z, 0);
    for (zip_int64_t i = 0; st == ANML_OK && i < n; i++) {
        const char *name = zip_get_name(z, (zip_uint64_t)i, 0);
        if (!name) {
            st = zip_fail(err, zip_path, zip_get_error(z), "unreadable entry name");
        } else if (!zip_name_ok(name, top)) {
            st =
                anml__err(err, ANML_E_FORMAT, zip_path,
                          "entry '%s' is outside the folder '%s/' (refusing to unpack)", name, top);
        }
    }
    if (st == ANML_OK) {
        anml__rmtree(tmp); /* a leftover of a crashed process with the same pid */
        st = anml__mkdirs(tmp, err);
        if (st != ANML_OK) {
            anml__err_prefix(err,
                             "cannot unpack %s (anml_model_params.unzip_dir can name a "
                             "writable folder)",
                             zip_path);
        }
    }
    size_t cap = (size_t)1 << 20;
    char *buf = st == ANML_OK ? anml__malloc(cap) : NULL;
    if (st == ANML_OK && !buf) {
        st = anml__err(err, ANML_E_NOMEM, zip_path, "out of memory");
    }
    for (zip_int64_t i = 0; st == ANML_OK && i < n; i++) {
        st = unzip_entry(z, (zip_uint64_t)i, zip_get_name(z, (zip_uint64_t)i, 0), tmp, zip_path,
                         buf, cap, err);
    }
    anml__free(buf);
    zip_discard(z);
    if (st == ANML_OK && !anml__is_dir(from)) {
        st = anml__err(err, ANML_E_FORMAT, zip_path, "the archive holds no folder '%s/'", top);
    }
    if (st == ANML_OK && rename(from, to) != 0 && !anml__is_dir(to)) {
        /* (a concurrent load that won the race has put the same folder there: fine) */
        st = anml__err(err, ANML_E_IO, to, "cannot move the unpacked folder into place: %s",
                       strerror(errno));
    }
    anml__rmtree(tmp); /* what is left of the temporary tree (all of it after an error) */
    return st;
}

/* ---- the directory listing: component base names ---- */

static const char *const k_exts[] = { ".mlmodelc.zip", ".mlmodelc", ".mlpackage" };

/* Length of `s` without its component extension; *ext receives its index in k_exts, or -1. */
static size_t base_len(const char *s, int *ext) {
    size_t n = strlen(s);
    for (int i = 0; i < 3; i++) {
        size_t le = strlen(k_exts[i]);
        if (n > le && strcmp(s + n - le, k_exts[i]) == 0) {
            *ext = i;
            return n - le;
        }
    }
    *ext = -1;
    return n;
}

struct listing {
    char **v; /* base names (no extension) of the components in the directory, sorted, unique */
    int32_t n, cap;
};

static void listing_free(struct listing *l) {
    for (int32_t i = 0; i < l->n; i++) {
        anml__free(l->v[i]);
    }
    anml__free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool listing_has(const struct listing *l, const char *base) {
    return l->n > 0 && bsearch(&base, l->v, (size_t)l->n, sizeof l->v[0], cmp_str) != NULL;
}

static enum anml_status list_dir(const char *dir, struct listing *l, struct anml_error *err) {
    DIR *d = opendir(dir);
    if (!d) {
        return anml__err(err, ANML_E_IO, dir, "cannot list the directory: %s", strerror(errno));
    }
    enum anml_status st = ANML_OK;
    struct dirent *e;
    while (st == ANML_OK && (e = readdir(d)) != NULL) {
        int ext;
        size_t bl = base_len(e->d_name, &ext);
        if (ext < 0 || e->d_name[0] == '.' || bl > 900) {
            continue; /* hidden entries include our own temporary unpack folders */
        }
        char *full = anml__path_join(dir, e->d_name);
        bool ok = full && (ext == 0 ? anml__is_file(full) : anml__is_dir(full));
        anml__free(full);
        if (!ok) {
            continue;
        }
        if (l->n == l->cap) {
            int32_t cap = l->cap ? l->cap * 2 : 32;
            char **nv = cap <= 1 << 20 ? anml__realloc(l->v, (size_t)cap * sizeof *nv) : NULL;
            if (!nv) {
                st = anml__err(err, ANML_E_NOMEM, dir, "out of memory listing the directory");
                break;
            }
            l->v = nv;
            l->cap = cap;
        }
        if (!(l->v[l->n] = anml__strndup(e->d_name, bl))) {
            st = anml__err(err, ANML_E_NOMEM, dir, "out of memory listing the directory");
            break;
        }
        l->n++;
    }
    closedir(d);
    if (l->n > 1) {
        qsort(l->v, (size_t)l->n, sizeof l->v[0], cmp_str);
        int32_t w = 1; /* X.mlmodelc next to X.mlmodelc.zip is one component */
        for (int32_t i = 1; i < l->n; i++) {
            if (strcmp(l->v[i], l->v[w - 1]) == 0) {
                anml__free(l->v[i]);
            } else {
                l->v[w++] = l->v[i];
            }
        }
        l->n = w;
    }
    return st;
}

/* ---- names ---- */

/* True when s is "" or "_lut<digits>". */
static bool is_lut_tail(const char *s) {
    if (!*s) {
        return true;
    }
    if (strncmp(s, "_lut", 4) != 0 || !isdigit((unsigned char)s[4])) {
        return false;
    }
    for (s += 4; *s; s++) {
        if (!isdigit((unsigned char)*s)) {
            return false;
        }
    }
    return true;
}

/* The n of the last "_lut<n>" in a name that ends there or continues with '_'; 0 when none. */
static int32_t lut_of(const char *name) {
    int32_t bits = 0;
    for (const char *s = strstr(name, "_lut"); s; s = strstr(s + 1, "_lut")) {
        const char *p = s + 4;
        int32_t v = 0;
        int nd = 0;
        while (isdigit((unsigned char)*p) && nd < 3) {
            v = v * 10 + (*p++ - '0');
            nd++;
        }
        if (nd > 0 && (*p == '\0' || *p == '_')) {
            bits = v;
        }
    }
    return bits;
}

static const char *lut_suffix(int32_t bits, char *buf, size_t cap) {
    if (bits > 0) {
        snprintf(buf, cap, "_lut%d", (int)bits);
    } else {
        buf[0] = '\0';
    }
    return buf;
}

/* Splits "<stem>_chunk_<i>of<n>" (1-3 digits each, 1 <= i <= n); false for other names. */
static bool parse_chunk(const char *base, size_t *stem_len, int32_t *i, int32_t *n) {
    const char *c = NULL;
    for (const char *s = strstr(base, "_chunk_"); s; s = strstr(s + 1, "_chunk_")) {
        c = s;
    }
    if (!c || c == base) {
        return false;
    }
    const char *p = c + 7;
    int32_t v[2] = { 0, 0 };
    for (int k = 0; k < 2; k++) {
        int nd = 0;
        while (isdigit((unsigned char)*p) && nd < 4) {
            v[k] = v[k] * 10 + (*p++ - '0');
            nd++;
        }
        if (nd == 0 || nd > 3 || (k == 0 && strncmp(p, "of", 2) != 0)) {
            return false;
        }
        p += k == 0 ? 2 : 0;
    }
    if (*p || v[0] < 1 || v[0] > v[1]) {
        return false;
    }
    *stem_len = (size_t)(c - base);
    *i = v[0];
    *n = v[1];
    return true;
}

static const char *chunk_name(char *buf, size_t cap, const char *stem, int32_t i, int32_t n) {
    snprintf(buf, cap, "%s_chunk_%02dof%02d", stem, (int)i, (int)n);
    return buf;
}

/* ---- component discovery ---- */

struct finder {
    struct anml_model *m;
    const struct meta *meta;
    struct listing l;
    const char *unzip_dir;
    struct anml_error *err;
};

/* unzip_dir/<hash of the zip's device, inode, size and mtime>: each archive (and each version
 * of it) gets its own folder, so models with equally named components can share one unzip_dir. */
static enum anml_status zip_cache_dir(const char *unzip_dir, const char *zip_path, char *out,
                                      size_t cap, struct anml_error *err) {
    struct stat sb;
    if (stat(zip_path, &sb) != 0) {
        return anml__err(err, ANML_E_IO, zip_path, "cannot stat: %s", strerror(errno));
    }
    uint64_t h = 1469598103934665603ull;
    int64_t ids[4] = { (int64_t)sb.st_dev, (int64_t)sb.st_ino, (int64_t)sb.st_size,
                       (int64_t)sb.st_mtime };
    const unsigned char *b = (const unsigned char *)ids;
    for (size_t i = 0; i < sizeof ids; i++) {
        h = (h ^ b[i]) * 1099511628211ull;
    }
    snprintf(out, cap, "%s/%016llx", unzip_dir, (unsigned long long)h);
    return ANML_OK;
}

/* Finds component `base`: <dir>/<base>.mlmodelc, <base>.mlpackage, an earlier unpack of
 * <base>.mlmodelc.zip, else that zip, unpacked now. *out (owned) is NULL when none exists. */
static enum anml_status resolve(struct finder *f, const char *base, char **out) {
    char path[4096], zip_path[4096], out_dir[4096];
    *out = NULL;
    for (int i = 1; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s%s", f->m->dir, base, k_exts[i]);
        if (anml__is_dir(path)) {
            *out = anml__strdup(path);
            return *out ? ANML_OK : anml__err(f->err, ANML_E_NOMEM, path, "out of memory");
        }
    }
    snprintf(zip_path, sizeof zip_path, "%s/%s.mlmodelc.zip", f->m->dir, base);
    if (!anml__is_file(zip_path)) {
        return ANML_OK;
    }
    enum anml_status st = ANML_OK;
    if (f->unzip_dir) {
        st = zip_cache_dir(f->unzip_dir, zip_path, out_dir, sizeof out_dir, f->err);
    } else {
        snprintf(out_dir, sizeof out_dir, "%s", f->m->dir);
    }
    snprintf(path, sizeof path, "%s/%s.mlmodelc", out_dir, base);
    if (st == ANML_OK && !anml__is_dir(path)) {
        char top[1024];
        snprintf(top, sizeof top, "%s.mlmodelc", base);
        ANML_LOG_INFO("model: unpacking %s into %s", zip_path, out_dir);
        st = unzip_component(zip_path, out_dir, top, f->err);
    }
    if (st == ANML_OK && !(*out = anml__strdup(path))) {
        st = anml__err(f->err, ANML_E_NOMEM, path, "out of memory");
    }
    return st;
}

/* The component a meta.yaml key names (a file in the model directory, any or no extension) as a
 * base name in buf; *out is NULL when the key is absent or empty. */
static enum anml_status meta_component(const struct finder *f, const char *key, char *buf,
                                       size_t cap, const char **out) {
    *out = NULL;
    const char *v = meta_get(f->meta, key);
    if (!v || !*v) {
        return ANML_OK;
    }
    if (strchr(v, '/') || strchr(v, '\\') || strcmp(v, ".") == 0 || strcmp(v, "..") == 0 ||
        strlen(v) > 900) {
        char where[4200];
        return anml__err(f->err, ANML_E_FORMAT, meta_where(f->meta, key, where, sizeof where),
                         "%s: '%s' must name a file in the model directory", key, v);
    }
    int ext;
    size_t bl = base_len(v, &ext);
    snprintf(buf, cap, "%.*s", (int)bl, v);
    *out = buf;
    return ANML_OK;
}

/* Where `role` ("_embeddings", "_FFN_PF", ...) ends in `name` when name is
 * <prefix><role><"" or "_lut<n>"> (any non-empty prefix when prefix is NULL); NULL otherwise. */
static const char *match_role(const char *name, const char *prefix, const char *role) {
    size_t lr = strlen(role);
    if (prefix) {
        size_t lp = strlen(prefix);
        if (strncmp(name, prefix, lp) != 0 || strncmp(name + lp, role, lr) != 0) {
            return NULL;
        }
        return is_lut_tail(name + lp + lr) ? name + lp + lr : NULL;
    }
    for (const char *s = strstr(name, role); s; s = strstr(s + 1, role)) {
        if (s > name && is_lut_tail(s + lr)) {
            return s + lr;
        }
    }
    return NULL;
}

/* The one listed base (glob_chunks: the one stem of listed chunk names) matching
 * <prefix><role><lut>; out[0] = '\0' when none. Several are an error: picking one would be a
 * guess. */
static enum anml_status glob_one(struct finder *f, const char *prefix, const char *role,
                                 bool chunks, char *out, size_t cap) {
    out[0] = '\0';
    char other[1024] = "";
    for (int32_t i = 0; i < f->l.n; i++) {
        char name[1024];
        size_t sl;
        int32_t ci, cn;
        if (chunks) {
            if (!parse_chunk(f->l.v[i], &sl, &ci, &cn)) {
                continue;
            }
            snprintf(name, sizeof name, "%.*s", (int)sl, f->l.v[i]);
        } else {
            snprintf(name, sizeof name, "%s", f->l.v[i]);
        }
        if (!match_role(name, prefix, role)) {
            continue;
        }
        if (!out[0]) {
            snprintf(out, cap, "%s", name);
        } else if (strcmp(out, name) != 0 && !other[0]) {
            snprintf(other, sizeof other, "%s", name);
        }
    }
    if (other[0]) {
        return anml__err(f->err, ANML_E_FORMAT, f->m->dir,
                         "several %s%s components (%s, %s): a meta.yaml must say which to use",
                         role + 1, chunks ? " chunk" : "", out, other);
    }
    return ANML_OK;
}

/* How many chunk counts n have <stem>_chunk_01of<n> listed; the first in *n. */
static int32_t stem_counts(const struct listing *l, const char *stem, int32_t *n) {
    int32_t k = 0;
    size_t ls = strlen(stem);
    for (int32_t i = 0; i < l->n; i++) {
        size_t sl;
        int32_t ci, cn;
        if (parse_chunk(l->v[i], &sl, &ci, &cn) && ci == 1 && sl == ls &&
            strncmp(l->v[i], stem, ls) == 0) {
            if (k++ == 0) {
                *n = cn;
            }
        }
    }
    return k;
}

/* Finds the embeddings or the LM head: the meta.yaml key, then <P>_<role><lut> and (embeddings
 * only) <P>_<role> without the LUT suffix; without a prefix or LUT field, by file name. */
static enum anml_status find_single(struct finder *f, const char *role, const char *prefix,
                                    int32_t lut, bool nolut_fallback, char **path, char *base,
                                    size_t cap) {
    char key[64], rolep[64], kb[1024], cand[3][1024], sfx[32];
    const char *kbase;
    int nc = 0;
    snprintf(key, sizeof key, "parameters.%s", role);
    snprintf(rolep, sizeof rolep, "_%s", role);
    enum anml_status st = meta_component(f, key, kb, sizeof kb, &kbase);
    if (st != ANML_OK) {
        return st;
    }
    if (kbase) {
        snprintf(cand[nc++], sizeof cand[0], "%s", kbase);
    }
    if (prefix && lut >= 0) {
        snprintf(cand[nc++], sizeof cand[0], "%s%s%s", prefix, rolep,
                 lut_suffix(lut, sfx, sizeof sfx));
        if (nolut_fallback && lut > 0) {
            snprintf(cand[nc++], sizeof cand[0], "%s%s", prefix, rolep);
        }
    } else {
        st = glob_one(f, prefix, rolep, false, cand[nc], sizeof cand[0]);
        if (st != ANML_OK) {
            return st;
        }
        nc += cand[nc][0] != '\0';
    }
    char tried[700] = "";
    size_t tl = 0;
    for (int i = 0; i < nc; i++) {
        bool seen = false; /* the key may name what the prefix and LUT fields build */
        for (int j = 0; j < i; j++) {
            seen |= strcmp(cand[i], cand[j]) == 0;
        }
        if (seen) {
            continue;
        }
        st = resolve(f, cand[i], path);
        if (st != ANML_OK || *path) {
            snprintf(base, cap, "%s", cand[i]);
            return st;
        }
        int w = snprintf(tried + tl, sizeof tried - tl, "%s'%s'", i ? ", " : "", cand[i]);
        tl += w > 0 && (size_t)w < sizeof tried - tl ? (size_t)w : 0;
    }
    if (nc == 0) {
        snprintf(tried, sizeof tried, "%s%s[_lutN] by file name", prefix ? prefix : "*", rolep);
    }
    return anml__err(f->err, ANML_E_NOT_FOUND, f->m->dir,
                     "no %s component: tried %s (as .mlmodelc, .mlpackage and .mlmodelc.zip)",
                     strcmp(role, "lm_head") == 0 ? "LM head" : role, tried);
}

/* How the FFN chunks are named. */
struct plan {
    char stem[1024];  /* chunk i of n is <stem>_chunk_<ii>of<nn> */
    char pstem[1024]; /* separate prefill files named alike, or "" */
    int32_t n;
    bool plain; /* one chunk named <stem> itself (an `ffn:` file without the chunk suffix) */
};

static bool plan_has(const struct listing *l, const char *stem, const struct plan *p) {
    char name[1100];
    return listing_has(l, p->plain ? stem : chunk_name(name, sizeof name, stem, 1, p->n));
}

/* Strips a chunk suffix from a meta.yaml ffn/prefill name; its count must agree with *n. */
static enum anml_status key_stem(struct finder *f, const char *key, char *stem, int32_t *n) {
    size_t sl;
    int32_t ki, kn;
    if (!parse_chunk(stem, &sl, &ki, &kn)) {
        return ANML_OK;
    }
    if (*n > 0 && kn != *n) {
        char where[4200];
        return anml__err(f->err, ANML_E_FORMAT, meta_where(f->meta, key, where, sizeof where),
                         "%s: '%s' names a set of %d chunks but num_chunks is %d", key, stem,
                         (int)kn, (int)*n);
    }
    *n = kn;
    stem[sl] = '\0';
    return ANML_OK;
}

static enum anml_status find_plan(struct finder *f, const char *prefix, int32_t lut,
                                  struct plan *p) {
    char where[4200], kb[1024], pb[1024], cand[4][1024], sfx[32];
    const char *kstem = NULL, *pkey = NULL;
    int32_t N;
    int nc = 0;
    memset(p, 0, sizeof *p);
    enum anml_status st = meta_int(f->meta, "parameters.num_chunks", false, &N, f->err);
    if (st == ANML_OK && N == 0) {
        st = anml__err(f->err, ANML_E_FORMAT,
                       meta_where(f->meta, "parameters.num_chunks", where, sizeof where),
                       "num_chunks must be at least 1");
    }
    if (st == ANML_OK) {
        st = meta_component(f, "parameters.ffn", kb, sizeof kb, &kstem);
    }
    if (st == ANML_OK) {
        st = meta_component(f, "parameters.prefill", pb, sizeof pb, &pkey);
    }
    if (st == ANML_OK && kstem) {
        st = key_stem(f, "parameters.ffn", kb, &N);
    }
    if (st == ANML_OK && pkey) {
        st = key_stem(f, "parameters.prefill", pb, &N);
    }
    if (st != ANML_OK) {
        return st;
    }
    if (kstem) {
        snprintf(cand[nc++], sizeof cand[0], "%s", kstem);
    }
    static const char *const roles[] = { "_FFN_PF", "_FFN" };
    for (int r = 0; r < 2; r++) {
        if (prefix && lut >= 0) {
            snprintf(cand[nc++], sizeof cand[0], "%s%s%s", prefix, roles[r],
                     lut_suffix(lut, sfx, sizeof sfx));
        } else {
            st = glob_one(f, prefix, roles[r], true, cand[nc], sizeof cand[0]);
            if (st != ANML_OK) {
                return st;
            }
            nc += cand[nc][0] != '\0';
        }
    }
    for (int i = 0; i < nc && !p->n; i++) {
        int32_t n1 = 0;
        if (N > 0) {
            p->n = N;
            if (!plan_has(&f->l, cand[i], p)) {
                p->n = 0;
            }
        } else if (stem_counts(&f->l, cand[i], &n1) > 1) {
            return anml__err(f->err, ANML_E_FORMAT, f->m->dir,
                             "several chunk sets named %s_chunk_01of..: a meta.yaml with "
                             "num_chunks must say which to use",
                             cand[i]);
        } else {
            p->n = n1;
        }
        if (p->n) {
            snprintf(p->stem, sizeof p->stem, "%s", cand[i]);
        }
    }
    /* a single `ffn:` file (or <P>_FFN_PF<lut>) without the chunk suffix */
    for (int i = 0; i < nc && !p->n && N <= 1; i++) {
        if (listing_has(&f->l, cand[i])) {
            p->n = 1;
            p->plain = true;
            snprintf(p->stem, sizeof p->stem, "%s", cand[i]);
        }
    }
    if (!p->n) {
        char expect[1200], held[400] = "";
        size_t hl = 0;
        if (nc > 0) {
            char nn[16];
            snprintf(nn, sizeof nn, N > 0 ? "%02d" : "NN", (int)N);
            snprintf(expect, sizeof expect, "'%s_chunk_01of%s'", cand[0], nn);
        } else {
            snprintf(expect, sizeof expect, "%s_FFN_PF[_lutN]_chunk_01ofNN", prefix ? prefix : "*");
        }
        for (int32_t i = 0; i < f->l.n; i++) {
            size_t sl;
            int32_t ci, cn;
            if (parse_chunk(f->l.v[i], &sl, &ci, &cn)) {
                int w = snprintf(held + hl, sizeof held - hl, "%s%s", hl ? ", " : "", f->l.v[i]);
                hl += w > 0 && (size_t)w < sizeof held - hl ? (size_t)w : 0;
            }
        }
        char nchunks[64] = "";
        if (meta_get(f->meta, "parameters.num_chunks")) {
            snprintf(nchunks, sizeof nchunks, " (meta.yaml num_chunks: %d)", (int)N);
        }
        return anml__err(f->err, ANML_E_NOT_FOUND, f->m->dir,
                         "no FFN chunks: expected %s%s; the directory holds %s", expect, nchunks,
                         hl ? held : "no chunk files");
    }
    /* separate prefill files: the `prefill:` key, else <A>_prefill<lut> next to <A>_FFN<lut> */
    if (pkey) {
        if (!plan_has(&f->l, pb, p)) {
            char name[1100];
            return anml__err(f->err, ANML_E_NOT_FOUND,
                             meta_where(f->meta, "parameters.prefill", where, sizeof where),
                             "prefill: '%s' not found",
                             p->plain ? pb : chunk_name(name, sizeof name, pb, 1, p->n));
        }
        snprintf(p->pstem, sizeof p->pstem, "%s", pb);
    } else {
        const char *t = match_role(p->stem, NULL, "_FFN");
        if (t) {
            char ps[1100];
            snprintf(ps, sizeof ps, "%.*s_prefill%s", (int)(t - 4 - p->stem), p->stem, t);
            if (plan_has(&f->l, ps, p)) {
                snprintf(p->pstem, sizeof p->pstem, "%s", ps);
            }
        }
    }
    return ANML_OK;
}

static enum anml_status load_program(const char *path, struct anml_program **out,
                                     struct anml_error *err) {
    enum anml_status st = anml_program_load(path, out, err);
    if (st != ANML_OK && err && !strstr(err->where, path)) {
        anml__err_prefix(err, "%s", path);
    }
    return st;
}

/* Picks the infer/prefill functions of a chunk: `infer` (else the default function) and
 * `prefill`, or the default function of a separate prefill file. A chunk with neither name has
 * no prefill: the pipeline then prefills one token at a time through `infer`. */
static void chunk_functions(struct anml_chunk *c) {
    int32_t n = anml_program_n_functions(c->prog);
    c->infer_fn = anml_program_default_function(c->prog);
    c->prefill_fn = NULL;
    for (int32_t i = 0; i < n; i++) {
        const char *fn = anml_program_function_name(c->prog, i);
        if (strcmp(fn, "infer") == 0) {
            c->infer_fn = fn;
        } else if (strcmp(fn, "prefill") == 0) {
            c->prefill_fn = fn;
        }
    }
    if (c->prefill_prog) {
        c->prefill_fn = anml_program_default_function(c->prefill_prog);
    }
}

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

static enum anml_status discover(struct finder *f) {
    struct anml_model *m = f->m;
    char where[4200];
    const char *v = meta_get(f->meta, "model_type");
    const char *mono = meta_get(f->meta, "parameters.monolithic_model");
    if ((v && strcmp(v, "monolithic") == 0) || mono) {
        const char *key = mono ? "parameters.monolithic_model" : "model_type";
        return anml__err(f->err, ANML_E_UNSUPPORTED, meta_where(f->meta, key, where, sizeof where),
                         "monolithic models (one program from input_ids to logits) are not "
                         "supported yet");
    }
    int32_t le, lf, ll;
    enum anml_status st = meta_int(f->meta, "parameters.lut_embeddings", true, &le, f->err);
    if (st == ANML_OK) {
        st = meta_int(f->meta, "parameters.lut_ffn", true, &lf, f->err);
    }
    if (st == ANML_OK) {
        st = meta_int(f->meta, "parameters.lut_lmhead", true, &ll, f->err);
    }
    const char *pre = f->m->model_prefix;
    if (st == ANML_OK && (strchr(pre, '/') || strchr(pre, '\\') || strlen(pre) > 200)) {
        st = anml__err(f->err, ANML_E_FORMAT,
                       meta_where(f->meta, "parameters.model_prefix", where, sizeof where),
                       "model_prefix: '%s' must be the start of file names, not a path", pre);
    }
    if (st == ANML_OK) {
        st = list_dir(m->dir, &f->l, f->err);
    }
    if (st != ANML_OK) {
        return st;
    }
    const char *prefix = m->model_prefix[0] ? m->model_prefix : NULL;
    char base[1024];
    st = find_single(f, "embeddings", prefix, le, true, &m->emb_path, base, sizeof base);
    if (st != ANML_OK) {
        return st;
    }
    m->lut_emb = lut_of(base);
    if (!prefix) {
        /* without meta.yaml the prefix is what precedes _embeddings */
        const char *t = match_role(base, NULL, "_embeddings");
        char *p = t ? anml__strndup(base, (size_t)(t - 11 - base)) : NULL;
        if (p) {
            anml__free(m->model_prefix);
            m->model_prefix = p;
            prefix = p;
        }
    }
    st = find_single(f, "lm_head", prefix, ll, false, &m->head_path, base, sizeof base);
    if (st != ANML_OK) {
        return st;
    }
    m->lut_head = lut_of(base);
    struct plan p;
    st = find_plan(f, prefix, lf, &p);
    if (st != ANML_OK) {
        return st;
    }
    if (p.n > ANML_MAX_CHUNKS) {
        return anml__err(f->err, ANML_E_UNSUPPORTED, m->dir, "%d FFN chunks (at most %d)", (int)p.n,
                         ANML_MAX_CHUNKS);
    }
    m->lut_ffn = lut_of(p.stem);
    for (int32_t i = 0; i < p.n && st == ANML_OK; i++) {
        struct anml_chunk *c = &m->chunks[i];
        char name[1100];
        m->n_chunks = i + 1;
        if (!p.plain) {
            chunk_name(name, sizeof name, p.stem, i + 1, p.n);
        }
        st = resolve(f, p.plain ? p.stem : name, &c->path);
        if (st == ANML_OK && !c->path) {
            st = anml__err(f->err, ANML_E_NOT_FOUND, m->dir,
                           "FFN chunk %d of %d: '%s' not found (as .mlmodelc, .mlpackage or "
                           ".mlmodelc.zip)",
                           (int)i + 1, (int)p.n, p.plain ? p.stem : name);
        }
        if (st == ANML_OK) {
            st = load_program(c->path, &c->prog, f->err);
        }
        if (st == ANML_OK && p.pstem[0]) {
            if (!p.plain) {
                chunk_name(name, sizeof name, p.pstem, i + 1, p.n);
            }
            st = resolve(f, p.plain ? p.pstem : name, &c->prefill_path);
            if (st == ANML_OK && !c->prefill_path) {
                st = anml__err(f->err, ANML_E_NOT_FOUND, m->dir,
                               "prefill chunk %d of %d: '%s' not found (as .mlmodelc, "
                               ".mlpackage or .mlmodelc.zip)",
                               (int)i + 1, (int)p.n, p.plain ? p.pstem : name);
            }
            if (st == ANML_OK) {
                st = load_program(c->prefill_path, &c->prefill_prog, f->err);
            }
        }
        if (st == ANML_OK) {
            chunk_functions(c);
        }
    }
    return st;
}

/* ---- shapes, all from the programs ---- */

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

/* Checks one FFN function: hidden_states [1, T, hidden] (T returned), the causal mask width and
 * the KV state against chunk 1's. The first call (m->hidden == 0) sets them. */
static enum anml_status check_ffn_fn(struct anml_model *m, const struct anml_program *p,
                                     const char *fn, const char *path, int32_t chunk, int32_t *T,
                                     struct anml_error *err) {
    struct anml_io_desc d;
    if (!io_find(p, fn, ANML_IO_INPUT, "hidden_states", &d) || d.rank != 3 || d.shape[1] < 1 ||
        d.shape[2] < 1) {
        return anml__err(err, ANML_E_FORMAT, path,
                         "function '%s' has no input hidden_states [1, T, hidden]", fn);
    }
    if (m->hidden && d.shape[2] != m->hidden) {
        return anml__err(err, ANML_E_SHAPE, path,
                         "hidden size %lld (function '%s' input hidden_states) differs from the "
                         "%d of %s",
                         (long long)d.shape[2], fn, (int)m->hidden, base_name(m->chunks[0].path));
    }
    m->hidden = (int32_t)d.shape[2];
    *T = (int32_t)d.shape[1];
    if (!io_find(p, fn, ANML_IO_INPUT, "causal_mask", &d) || d.rank != 4 || d.shape[3] < 1) {
        return anml__err(err, ANML_E_FORMAT, path,
                         "function '%s' has no input causal_mask [1, 1, T, context]", fn);
    }
    if (m->context && d.shape[3] != m->context) {
        return anml__err(err, ANML_E_SHAPE, path,
                         "context %lld (function '%s' causal_mask width) differs from the %d of "
                         "%s",
                         (long long)d.shape[3], fn, (int)m->context, base_name(m->chunks[0].path));
    }
    m->context = (int32_t)d.shape[3];
    if (!m->state_name) {
        if (!io_find(p, fn, ANML_IO_STATE, NULL, &d) || d.rank < 3) {
            return anml__err(err, ANML_E_FORMAT, path, "function '%s' declares no KV-cache state",
                             fn);
        }
        if (!(m->state_name = anml__strdup(d.name))) {
            return anml__err(err, ANML_E_NOMEM, path, "out of memory");
        }
        m->state_rank = d.rank;
        memcpy(m->state_shape, d.shape, sizeof d.shape);
        m->state_len = (int32_t)d.shape[2];
    } else if (!io_find(p, fn, ANML_IO_STATE, m->state_name, &d) || d.rank != m->state_rank ||
               memcmp(d.shape, m->state_shape, sizeof d.shape) != 0) {
        return anml__err(err, ANML_E_SHAPE, path,
                         "chunk %d function '%s': state '%s' is missing or has another shape "
                         "than in %s",
                         (int)chunk, fn, m->state_name, base_name(m->chunks[0].path));
    }
    return ANML_OK;
}

static enum anml_status derive_shapes(struct anml_model *m, struct anml_error *err) {
    struct anml_io_desc d;
    bool has_prefill = m->chunks[0].prefill_fn != NULL;
    m->batch = 1;
    for (int32_t i = 0; i < m->n_chunks; i++) {
        struct anml_chunk *c = &m->chunks[i];
        int32_t T;
        if ((c->prefill_fn != NULL) != has_prefill) {
            return anml__err(err, ANML_E_FORMAT, c->path,
                             "chunk %d %s a prefill function but chunk 1 %s", (int)i + 1,
                             has_prefill ? "lacks" : "has", has_prefill ? "has one" : "does not");
        }
        enum anml_status st = check_ffn_fn(m, c->prog, c->infer_fn, c->path, i + 1, &T, err);
        if (st == ANML_OK && T != 1) {
            st = anml__err(err, ANML_E_SHAPE, c->path,
                           "function '%s' takes %d tokens, not one (hidden_states [1, 1, %d])",
                           c->infer_fn, (int)T, (int)m->hidden);
        }
        if (st == ANML_OK && c->prefill_fn) {
            const char *pp = c->prefill_path ? c->prefill_path : c->path;
            st = check_ffn_fn(m, c->prefill_prog ? c->prefill_prog : c->prog, c->prefill_fn, pp,
                              i + 1, &T, err);
            if (st == ANML_OK && i > 0 && T != m->batch) {
                st = anml__err(err, ANML_E_SHAPE, pp,
                               "prefill batch %d (function '%s') differs from chunk 1's %d", (int)T,
                               c->prefill_fn, (int)m->batch);
            }
            m->batch = T;
        }
        if (st != ANML_OK) {
            return st;
        }
    }
    if (m->state_len < m->context) {
        return anml__err(err, ANML_E_FORMAT, m->chunks[0].path,
                         "the KV state holds %d positions, fewer than the context %d",
                         (int)m->state_len, (int)m->context);
    }
    /* embeddings output and LM head input carry the same hidden size */
    if (!io_find(m->emb, NULL, ANML_IO_OUTPUT, NULL, &d) || d.rank != 3) {
        return anml__err(err, ANML_E_FORMAT, m->emb_path, "output is not [1, T, hidden]");
    }
    if (d.shape[2] >= 0 && d.shape[2] != m->hidden) {
        return anml__err(err, ANML_E_SHAPE, m->emb_path,
                         "hidden size %lld (output %s) differs from the %d of %s",
                         (long long)d.shape[2], d.name, (int)m->hidden,
                         base_name(m->chunks[0].path));
    }
    if (!io_find(m->head, NULL, ANML_IO_INPUT, NULL, &d) || d.rank != 3) {
        return anml__err(err, ANML_E_FORMAT, m->head_path, "input is not [1, 1, hidden]");
    }
    if (d.shape[2] != m->hidden) {
        return anml__err(err, ANML_E_SHAPE, m->head_path,
                         "hidden size %lld (input %s) differs from the %d of %s",
                         (long long)d.shape[2], d.name, (int)m->hidden,
                         base_name(m->chunks[0].path));
    }
    /* LM head slices: logits1..K in numeric order, or one `logits` */
    int32_t n_out = anml_program_io_count(m->head, NULL, ANML_IO_OUTPUT);
    const char *names[ANML_MAX_SLICES];
    int32_t k = 0;
    for (int32_t i = 0; i < n_out; i++) {
        if (anml_program_io(m->head, NULL, ANML_IO_OUTPUT, i, &d) == ANML_OK &&
            strncmp(d.name, "logits", 6) == 0) {
            if (k == ANML_MAX_SLICES) {
                return anml__err(err, ANML_E_UNSUPPORTED, m->head_path,
                                 "more than %d logits outputs", ANML_MAX_SLICES);
            }
            names[k++] = d.name;
        }
    }
    if (k == 0) {
        return anml__err(err, ANML_E_UNSUPPORTED, m->head_path,
                         "no `logits*` outputs (argmax-in-model heads are not supported yet)");
    }
    qsort(names, (size_t)k, sizeof names[0], cmp_slice);
    m->vocab = 0;
    for (int32_t i = 0; i < k; i++) {
        io_find(m->head, NULL, ANML_IO_OUTPUT, names[i], &d);
        if (d.rank < 1 || d.shape[d.rank - 1] < 1 || d.shape[d.rank - 1] > (1 << 24)) {
            return anml__err(err, ANML_E_FORMAT, m->head_path, "output '%s' has no vocab size",
                             names[i]);
        }
        m->slice_size[i] = (int32_t)d.shape[d.rank - 1];
        if (!(m->slice_name[i] = anml__strdup(names[i]))) {
            return anml__err(err, ANML_E_NOMEM, m->head_path, "out of memory");
        }
        m->n_slices = i + 1;
        m->vocab += m->slice_size[i];
    }
    return ANML_OK;
}

/* ---- meta.yaml and config.json against the programs: contradictions are errors ---- */

static enum anml_status check_meta(struct anml_model *m, const struct meta *meta,
                                   struct anml_error *err) {
    char where[4200];
    const struct anml_chunk *c0 = &m->chunks[0];
    const struct {
        const char *key;
        int32_t have;
        const char *what;
        const char *file;
    } checks[] = {
        { "parameters.context_length", m->context, "the causal_mask width of", c0->path },
        { "parameters.batch_size", m->batch, "the prefill batch of",
          c0->prefill_path ? c0->prefill_path : c0->path },
        { "parameters.num_chunks", m->n_chunks, "the FFN chunk files found in", m->dir },
        { "parameters.split_lm_head", m->n_slices, "the logits outputs of", m->head_path },
        { "parameters.num_logits", m->n_slices, "the logits outputs of", m->head_path },
    };
    for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
        int32_t v;
        enum anml_status st = meta_int(meta, checks[i].key, false, &v, err);
        if (st != ANML_OK) {
            return st;
        }
        if (i == 1 && !c0->prefill_fn) {
            continue; /* no prefill function: batch_size is not used */
        }
        if (v >= 0 && v != checks[i].have) {
            return anml__err(err, ANML_E_FORMAT,
                             meta_where(meta, checks[i].key, where, sizeof where),
                             "%s is %d in meta.yaml but %d from %s %s", checks[i].key + 11, (int)v,
                             (int)checks[i].have, checks[i].what, base_name(checks[i].file));
        }
    }
    /* 0.3.5: vocab_size (a Llama head split 8 ways may drop up to 7 rows) and the slice sizes */
    int32_t v;
    enum anml_status st = meta_int(meta, "parameters.vocab_size", false, &v, err);
    if (st != ANML_OK) {
        return st;
    }
    if (v >= 0 && (v < m->vocab || v >= m->vocab + m->n_slices)) {
        return anml__err(err, ANML_E_FORMAT,
                         meta_where(meta, "parameters.vocab_size", where, sizeof where),
                         "vocab_size is %d in meta.yaml but the logits outputs of %s hold %d",
                         (int)v, base_name(m->head_path), (int)m->vocab);
    }
    const char *sizes = meta_get(meta, "parameters.lm_head_chunk_sizes");
    if (sizes) {
        meta_where(meta, "parameters.lm_head_chunk_sizes", where, sizeof where);
        int32_t k = 0;
        for (const char *s = sizes; *s; k++) {
            const char *e = strchr(s, ',');
            size_t n = e ? (size_t)(e - s) : strlen(s);
            char item[32];
            int32_t x;
            snprintf(item, sizeof item, "%.*s", (int)(n < 31 ? n : 31), s);
            if (n >= 31 || !parse_count(item, &x)) {
                return anml__err(err, ANML_E_FORMAT, where,
                                 "lm_head_chunk_sizes: expected integers, found '%s'", item);
            }
            if (k >= m->n_slices || x != m->slice_size[k]) {
                return anml__err(err, ANML_E_FORMAT, where,
                                 "lm_head_chunk_sizes: slice %d is %d in meta.yaml but %s has "
                                 "%s%d",
                                 (int)k + 1, (int)x, base_name(m->head_path),
                                 k >= m->n_slices ? "slices: " : "",
                                 k >= m->n_slices ? (int)m->n_slices : (int)m->slice_size[k]);
            }
            s += n + (e ? 1 : 0);
        }
        if (k != m->n_slices) {
            return anml__err(err, ANML_E_FORMAT, where,
                             "lm_head_chunk_sizes lists %d slices but %s has %d", (int)k,
                             base_name(m->head_path), (int)m->n_slices);
        }
    }
    return ANML_OK;
}

/* config.json is usually only the tokenizer hint (anemll-format.md §8.2); when it does carry
 * model sizes they must agree with the programs. */
static enum anml_status check_config(struct anml_model *m, struct anml_error *err) {
    char *cfg_path = anml__path_join(m->dir, "config.json");
    char *text = NULL;
    size_t len;
    enum anml_status st = ANML_OK;
    if (!cfg_path) {
        return anml__err(err, ANML_E_NOMEM, m->dir, "out of memory");
    }
    if (!anml__is_file(cfg_path) || anml__read_file(cfg_path, &text, &len, NULL) != ANML_OK) {
        anml__free(cfg_path);
        return ANML_OK;
    }
    cJSON *cfg = cJSON_ParseWithLength(text, len);
    if (!cfg || !cJSON_IsObject(cfg)) {
        st = anml__err(err, ANML_E_FORMAT, cfg_path, "not a JSON object");
    }
    const struct {
        const char *key;
        int32_t have;
        const char *what;
        const char *file;
    } cc[] = {
        { "hidden_size", m->hidden, "the hidden_states of", m->chunks[0].path },
        { "vocab_size", m->vocab, "the logits outputs of", m->head_path },
        { "context_length", m->context, "the causal_mask width of", m->chunks[0].path },
    };
    for (size_t i = 0; st == ANML_OK && i < sizeof cc / sizeof cc[0]; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, cc[i].key);
        if (!v) {
            continue;
        }
        double x = cJSON_GetNumberValue(v);
        bool ok = cJSON_IsNumber(v) && x == cc[i].have;
        if (i == 1 && cJSON_IsNumber(v) && x > cc[i].have && x < cc[i].have + m->n_slices) {
            ok = true; /* a Llama head split 8 ways drops V % 8 rows */
        }
        if (!ok) {
            char *shown = cJSON_PrintUnformatted(v);
            st = anml__err(err, ANML_E_FORMAT, cfg_path,
                           "%s is %s in config.json but %d from %s %s", cc[i].key,
                           shown ? shown : "?", (int)cc[i].have, cc[i].what, base_name(cc[i].file));
            cJSON_free(shown);
        }
    }
    cJSON_Delete(cfg);
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

/* meta.yaml `tokenizer_path` (relative to the model directory), else the model directory, when
 * it holds tokenizer.json. */
static enum anml_status find_tokenizer(struct anml_model *m, const struct meta *meta,
                                       struct anml_error *err) {
    const char *tp = meta_get(meta, "parameters.tokenizer_path");
    if (tp && !*tp) {
        tp = NULL;
    }
    char *tdir =
        tp ? (tp[0] == '/' ? anml__strdup(tp) : anml__path_join(m->dir, tp)) : anml__strdup(m->dir);
    char *tj = tdir ? anml__path_join(tdir, "tokenizer.json") : NULL;
    if (!tj) {
        anml__free(tdir);
        return anml__err(err, ANML_E_NOMEM, m->dir, "out of memory");
    }
    if (anml__is_file(tj)) {
        m->tokenizer_dir = tdir;
        tdir = NULL;
    }
    anml__free(tdir);
    anml__free(tj);
    return ANML_OK;
}

enum anml_status anml_model_load(const char *dir, const struct anml_model_params *params,
                                 struct anml_model **out, struct anml_error *err) {
    struct anml_model_params p = anml_model_params_default();
    if (!out || !dir) {
        return anml__err(err, ANML_E_INVALID_ARG, NULL, "dir and out are required");
    }
    *out = NULL;
    if (params) {
        memcpy(&p, params, params->size < sizeof p ? params->size : sizeof p);
    }
    if (!anml__is_dir(dir)) {
        return anml__err(err, ANML_E_IO, dir, "not a directory");
    }
    struct anml_model *m = anml__calloc(1, sizeof *m);
    if (!m || !(m->dir = anml__strdup(dir))) {
        anml__free(m);
        return anml__err(err, ANML_E_NOMEM, dir, "out of memory");
    }
    m->n_threads = p.n_threads > 0 ? p.n_threads : anml__n_cores();
    struct meta *meta = anml__calloc(1, sizeof *meta);
    char *meta_path = anml__path_join(dir, "meta.yaml");
    enum anml_status st =
        meta && meta_path ? ANML_OK : anml__err(err, ANML_E_NOMEM, dir, "out of memory");
    if (st == ANML_OK) {
        meta->path = meta_path;
        if (anml__is_file(meta_path)) {
            st = meta_load(meta_path, meta, err);
        }
    }
    if (st == ANML_OK) {
        const char *a = meta_get(meta, "architecture");
        const char *v = meta_get(meta, "version");
        const char *pre = meta_get(meta, "parameters.model_prefix");
        m->architecture = anml__strdup(a ? a : "");
        m->meta_version = anml__strdup(v ? v : "");
        m->model_prefix = anml__strdup(pre ? pre : "");
        if (!m->architecture || !m->meta_version || !m->model_prefix) {
            st = anml__err(err, ANML_E_NOMEM, dir, "out of memory");
        }
    }
    if (st == ANML_OK) {
        struct finder f = { .m = m, .meta = meta, .unzip_dir = p.unzip_dir, .err = err };
        st = discover(&f);
        listing_free(&f.l);
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
    if (st == ANML_OK && meta->present) {
        st = check_meta(m, meta, err);
    }
    if (st == ANML_OK) {
        st = check_config(m, err);
    }
    if (st == ANML_OK) {
        st = find_tokenizer(m, meta, err);
    }
    if (meta) {
        meta_free(meta);
    }
    anml__free(meta);
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
