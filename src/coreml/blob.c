/*
 * blob.c -- the weight.bin reader (MIL blob storage v2, coreml-format.md §5): file header and
 * metadata-record validation, the store of mapped weight files of a program (each file mapped
 * once, parsed records cached per (file, offset)), resolution of blob values against their
 * declared types, the whole-program blob validation pass, and the LSB-first sub-byte packing
 * shared by blobs, protobuf `bytes` values and constexpr ops (§5.4).
 *
 * Nothing here copies weight data: views point into the read-only mappings, which live as long
 * as the store.
 */
#include "coreml/blob.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define BLOB_HEADER_SIZE 64u
#define BLOB_RECORD_SIZE 64u
#define BLOB_SENTINEL    0xDEADBEEFu
#define BLOB_VERSION     2u
#define BLOB_PATH_MAX    4096
#define MODEL_PATH_TAG   "@model_path"

static void blob_where(char *buf, size_t cap, const char *name, uint64_t offset) {
    snprintf(buf, cap, "%s@0x%" PRIx64, name ? name : "weight.bin", offset);
}

enum anml_status anml__blob_check_header(const uint8_t *file, size_t file_size, const char *name,
                                         uint32_t *count, struct anml_error *err) {
    char where[300];
    blob_where(where, sizeof where, name, 0);
    if (file_size < BLOB_HEADER_SIZE) {
        return anml__err(err, ANML_E_FORMAT, where,
                         "truncated weight file: %zu bytes, the header alone needs %u", file_size,
                         BLOB_HEADER_SIZE);
    }
    uint32_t n = anml__le32(file);
    uint32_t version = anml__le32(file + 4);
    if (version != BLOB_VERSION) {
        return anml__err(err, ANML_E_FORMAT, where,
                         "weight file version %" PRIu32 ", expected %u (blob storage v2)", version,
                         BLOB_VERSION);
    }
    /* Every blob takes at least its 64-byte record, so a larger count cannot be right. */
    uint64_t max_count = (file_size - BLOB_HEADER_SIZE) / BLOB_RECORD_SIZE;
    if (n > max_count) {
        return anml__err(err, ANML_E_FORMAT, where,
                         "header claims %" PRIu32
                         " blobs, but a %zu-byte file holds at most %" PRIu64,
                         n, file_size, max_count);
    }
    if (count) {
        *count = n;
    }
    return ANML_OK;
}

enum anml_status anml__blob_parse_record(const uint8_t *file, size_t file_size, const char *name,
                                         uint64_t offset, struct mil_blob_view *out,
                                         struct anml_error *err) {
    char where[300];
    blob_where(where, sizeof where, name, offset);
    memset(out, 0, sizeof *out);
    uint64_t rec_end;
    if (offset < BLOB_HEADER_SIZE) {
        return anml__err(err, ANML_E_FORMAT, where,
                         "blob record offset %" PRIu64 " lies inside the 64-byte file header",
                         offset);
    }
    if (!anml__add_u64(offset, BLOB_RECORD_SIZE, &rec_end) || rec_end > file_size) {
        return anml__err(err, ANML_E_FORMAT, where,
                         "blob record at offset %" PRIu64
                         " runs past the end of the file (%zu bytes)",
                         offset, file_size);
    }
    const uint8_t *rec = file + offset;
    uint32_t sentinel = anml__le32(rec);
    if (sentinel != BLOB_SENTINEL) {
        return anml__err(err, ANML_E_FORMAT, where, "sentinel 0x%08" PRIx32 ", expected 0x%08x",
                         sentinel, BLOB_SENTINEL);
    }
    uint32_t code = anml__le32(rec + 4);
    enum anml_dtype dt = anml__dtype_from_blob_code(code);
    if (dt == ANML_DTYPE_INVALID) {
        return anml__err(err, ANML_E_FORMAT, where, "unknown blob dtype code %" PRIu32, code);
    }
    uint64_t size = anml__le64(rec + 8);
    uint64_t data_off = anml__le64(rec + 16);
    uint64_t padding = anml__le64(rec + 24);
    uint64_t data_end;
    if (data_off < BLOB_HEADER_SIZE) {
        return anml__err(err, ANML_E_FORMAT, where,
                         "blob data offset %" PRIu64 " lies inside the 64-byte file header",
                         data_off);
    }
    if (!anml__add_u64(data_off, size, &data_end)) {
        return anml__err(err, ANML_E_FORMAT, where,
                         "blob data offset %" PRIu64 " + size %" PRIu64 " overflows", data_off,
                         size);
    }
    if (data_end > file_size) {
        return anml__err(err, ANML_E_FORMAT, where,
                         "blob data [%" PRIu64 ", %" PRIu64 ") runs past the end of the file (%zu "
                         "bytes)",
                         data_off, data_end, file_size);
    }
    if (padding > 7) {
        return anml__err(err, ANML_E_FORMAT, where,
                         "padding_size_in_bits %" PRIu64 " out of range 0..7", padding);
    }
    int bits = anml_dtype_bits(dt);
    /* data_end <= file_size, so size * 8 cannot overflow on any real file; check anyway. */
    uint64_t nbits;
    if (!anml__mul_u64(size, 8, &nbits) || nbits > (uint64_t)INT64_MAX) {
        return anml__err(err, ANML_E_FORMAT, where, "blob size %" PRIu64 " too large", size);
    }
    if (bits >= 8 && padding != 0) {
        return anml__err(err, ANML_E_FORMAT, where,
                         "padding_size_in_bits %" PRIu64 " on a %s blob (only sub-byte types pad)",
                         padding, anml_dtype_name(dt));
    }
    if (padding > nbits) {
        return anml__err(err, ANML_E_FORMAT, where,
                         "padding_size_in_bits %" PRIu64 " exceeds the blob's %" PRIu64 " bits",
                         padding, nbits);
    }
    uint64_t used = nbits - padding;
    if (used % (uint64_t)bits != 0) {
        return anml__err(err, ANML_E_FORMAT, where,
                         "%s blob of %" PRIu64 " bytes with %" PRIu64
                         " padding bits does not hold a whole number of %d-bit elements",
                         anml_dtype_name(dt), size, padding, bits);
    }
    out->file = name;
    out->record_offset = offset;
    out->data_offset = data_off;
    out->dtype = dt;
    out->data = file + data_off;
    out->size_bytes = size;
    out->padding_bits = padding;
    out->n_elem = (int64_t)(used / (uint64_t)bits);
    return ANML_OK;
}

/* ---- the store ---- */

struct blob_file {
    char *rel;  /* normalized path relative to the model directory ("weights/weight.bin") */
    char *path; /* model_dir + "/" + rel */
    struct anml_mmap map;
    enum anml_status status; /* of opening the file and checking its header */
    struct anml_error open_err;
};

struct blob_slot {
    bool used;
    int32_t file;
    uint64_t offset;
    struct mil_blob_view view;
};

struct mil_blob_store {
    char *model_dir;
    struct blob_file *files;
    int32_t n_files, cap_files;
    struct blob_slot *slots; /* open addressing, power-of-two capacity */
    size_t n_slots, cap_slots;
};

struct mil_blob_store *anml__blob_store_new(const char *model_dir) {
    struct mil_blob_store *s = anml__calloc(1, sizeof *s);
    if (!s) {
        return NULL;
    }
    s->model_dir = anml__strdup(model_dir ? model_dir : ".");
    if (!s->model_dir) {
        anml__free(s);
        return NULL;
    }
    return s;
}

void anml__blob_store_free(struct mil_blob_store *s) {
    if (!s) {
        return;
    }
    for (int32_t i = 0; i < s->n_files; i++) {
        anml__mmap_close(&s->files[i].map);
        anml__free(s->files[i].rel);
        anml__free(s->files[i].path);
    }
    anml__free(s->files);
    anml__free(s->slots);
    anml__free(s->model_dir);
    anml__free(s);
}

/* Turns a blob path as written ("@model_path/weights/weight.bin") into a normalized path relative
 * to the model directory. Only paths inside the model directory are accepted: absolute paths and
 * `..` components are rejected, `.` and empty components dropped. */
static enum anml_status normalize_blob_path(const char *spelled, char *out, size_t cap,
                                            struct anml_error *err) {
    const char *p = spelled;
    if (!p || !*p) {
        return anml__err(err, ANML_E_FORMAT, "", "empty weight file path");
    }
    size_t tag = strlen(MODEL_PATH_TAG);
    if (strncmp(p, MODEL_PATH_TAG, tag) == 0 && (p[tag] == '/' || p[tag] == '\0')) {
        p += tag;
    } else if (p[0] == '/') {
        return anml__err(err, ANML_E_FORMAT, spelled,
                         "absolute weight file path '%s' rejected: weight files must lie inside "
                         "the model directory (@model_path/...)",
                         spelled);
    }
    size_t n = 0;
    while (*p) {
        while (*p == '/') {
            p++;
        }
        const char *start = p;
        while (*p && *p != '/') {
            p++;
        }
        size_t len = (size_t)(p - start);
        if (len == 0 || (len == 1 && start[0] == '.')) {
            continue;
        }
        if (len == 2 && start[0] == '.' && start[1] == '.') {
            return anml__err(err, ANML_E_FORMAT, spelled,
                             "weight file path '%s' rejected: '..' components could escape the "
                             "model directory",
                             spelled);
        }
        if (memchr(start, '\\', len)) {
            return anml__err(err, ANML_E_FORMAT, spelled,
                             "weight file path '%s' rejected: backslash in path", spelled);
        }
        if (n + (n ? 1 : 0) + len + 1 > cap) {
            return anml__err(err, ANML_E_FORMAT, "", "weight file path too long (%zu+ bytes)",
                             strlen(spelled));
        }
        if (n) {
            out[n++] = '/';
        }
        memcpy(out + n, start, len);
        n += len;
    }
    if (n == 0) {
        return anml__err(err, ANML_E_FORMAT, spelled,
                         "weight file path '%s' names the model directory, not a file", spelled);
    }
    out[n] = '\0';
    return ANML_OK;
}

/* Finds or opens (maps and header-checks) the weight file `rel`; *idx receives its index. A file
 * that failed to open stays in the list with its error, so every reference reports it. */
static enum anml_status store_file(struct mil_blob_store *s, const char *rel, int32_t *idx,
                                   struct anml_error *err) {
    for (int32_t i = 0; i < s->n_files; i++) {
        if (strcmp(s->files[i].rel, rel) == 0) {
            *idx = i;
            if (s->files[i].status != ANML_OK && err) {
                *err = s->files[i].open_err;
            }
            return s->files[i].status;
        }
    }
    if (s->n_files == s->cap_files) {
        int32_t cap = s->cap_files ? s->cap_files * 2 : 4;
        struct blob_file *f = anml__realloc(s->files, (size_t)cap * sizeof *f);
        if (!f) {
            return anml__err(err, ANML_E_NOMEM, rel, "out of memory");
        }
        s->files = f;
        s->cap_files = cap;
    }
    struct blob_file *f = &s->files[s->n_files];
    memset(f, 0, sizeof *f);
    f->rel = anml__strdup(rel);
    f->path = anml__path_join(s->model_dir, rel);
    if (!f->rel || !f->path) {
        anml__free(f->rel);
        anml__free(f->path);
        return anml__err(err, ANML_E_NOMEM, rel, "out of memory");
    }
    *idx = s->n_files++;
    f->status = anml__mmap_open(f->path, &f->map, &f->open_err);
    if (f->status != ANML_OK) {
        /* Name the file as the program spells it; the message keeps the OS reason. */
        char msg[sizeof f->open_err.msg];
        memcpy(msg, f->open_err.msg, sizeof msg);
        anml__err(&f->open_err, f->status, rel, "weight file %s: %s", f->path, msg);
    } else {
        f->status = anml__blob_check_header(f->map.data, f->map.size, f->rel, NULL, &f->open_err);
    }
    if (f->status != ANML_OK && err) {
        *err = f->open_err;
    }
    return f->status;
}

static size_t slot_hash(int32_t file, uint64_t offset) {
    uint64_t h =
        offset * 0x9E3779B97F4A7C15ull ^ ((uint64_t)(uint32_t)file * 0xC2B2AE3D27D4EB4Full);
    return (size_t)(h ^ (h >> 29));
}

static struct blob_slot *slot_find(struct mil_blob_store *s, int32_t file, uint64_t offset) {
    if (!s->cap_slots) {
        return NULL;
    }
    size_t mask = s->cap_slots - 1;
    for (size_t i = slot_hash(file, offset) & mask;; i = (i + 1) & mask) {
        struct blob_slot *sl = &s->slots[i];
        if (!sl->used) {
            return NULL;
        }
        if (sl->file == file && sl->offset == offset) {
            return sl;
        }
    }
}

static bool slot_insert(struct mil_blob_store *s, int32_t file, uint64_t offset,
                        const struct mil_blob_view *v) {
    if ((s->n_slots + 1) * 2 > s->cap_slots) {
        size_t cap = s->cap_slots ? s->cap_slots * 2 : 64;
        struct blob_slot *slots = anml__calloc(cap, sizeof *slots);
        if (!slots) {
            return false;
        }
        for (size_t i = 0; i < s->cap_slots; i++) {
            if (s->slots[i].used) {
                size_t j = slot_hash(s->slots[i].file, s->slots[i].offset) & (cap - 1);
                while (slots[j].used) {
                    j = (j + 1) & (cap - 1);
                }
                slots[j] = s->slots[i];
            }
        }
        anml__free(s->slots);
        s->slots = slots;
        s->cap_slots = cap;
    }
    size_t mask = s->cap_slots - 1;
    size_t i = slot_hash(file, offset) & mask;
    while (s->slots[i].used) {
        i = (i + 1) & mask;
    }
    s->slots[i].used = true;
    s->slots[i].file = file;
    s->slots[i].offset = offset;
    s->slots[i].view = *v;
    s->n_slots++;
    return true;
}

enum anml_status anml__blob_resolve(struct mil_blob_store *s, const struct mil_value *v,
                                    struct mil_blob_view *out, struct anml_error *err) {
    memset(out, 0, sizeof *out);
    if (!v || v->kind != MIL_VALUE_BLOB) {
        return anml__err(err, ANML_E_INTERNAL, "", "not a blob value");
    }
    char rel[BLOB_PATH_MAX];
    enum anml_status st = normalize_blob_path(v->blob_path, rel, sizeof rel, err);
    if (st != ANML_OK) {
        return st;
    }
    char where[BLOB_PATH_MAX + 32];
    blob_where(where, sizeof where, rel, v->blob_offset);
    const struct mil_type *t = v->type;
    if (!t || t->kind != MIL_TYPE_TENSOR) {
        return anml__err(err, ANML_E_FORMAT, where, "blob value without a tensor type");
    }
    int64_t numel = 0;
    if (t->rank < 0 || (t->rank > 0 && !t->dims) || !anml__shape_numel(t->dims, t->rank, &numel)) {
        char ts[128];
        anml__mil_type_str(t, ts, sizeof ts);
        return anml__err(err, ANML_E_FORMAT, where,
                         "blob value of type %s: the shape of a weight must be fully known", ts);
    }
    int32_t fi = -1;
    st = store_file(s, rel, &fi, err);
    if (st != ANML_OK) {
        return st;
    }
    struct blob_file *f = &s->files[fi];
    struct blob_slot *sl = slot_find(s, fi, v->blob_offset);
    struct mil_blob_view view;
    if (sl) {
        view = sl->view;
    } else {
        st = anml__blob_parse_record(f->map.data, f->map.size, f->rel, v->blob_offset, &view, err);
        if (st != ANML_OK) {
            return st;
        }
        if (!slot_insert(s, fi, v->blob_offset, &view)) {
            return anml__err(err, ANML_E_NOMEM, where, "out of memory");
        }
    }
    if (view.dtype != t->dtype) {
        return anml__err(err, ANML_E_FORMAT, where,
                         "blob holds %s data, but the value is declared %s",
                         anml_dtype_name(view.dtype), anml_dtype_name(t->dtype));
    }
    if (view.n_elem != numel) {
        char ts[128];
        anml__mil_type_str(t, ts, sizeof ts);
        return anml__err(err, ANML_E_FORMAT, where,
                         "blob holds %" PRId64 " %s elements (%" PRIu64 " bytes, %" PRIu64
                         " padding bits), but the declared type %s has %" PRId64,
                         view.n_elem, anml_dtype_name(view.dtype), view.size_bytes,
                         view.padding_bits, ts, numel);
    }
    *out = view;
    return ANML_OK;
}

/* ---- whole-program validation ---- */

struct validate_ctx {
    struct mil_program *prog;
    const char *mil_name; /* file name for op positions */
    struct anml_error *err;
};

static enum anml_status validate_value(struct validate_ctx *c, const struct mil_value *v) {
    if (!v) {
        return ANML_OK;
    }
    if (v->kind == MIL_VALUE_BLOB) {
        struct mil_blob_view view;
        return anml__blob_resolve(c->prog->blobs, v, &view, c->err);
    }
    if (v->kind == MIL_VALUE_TUPLE || v->kind == MIL_VALUE_LIST || v->kind == MIL_VALUE_DICT) {
        for (int32_t i = 0; i < v->n_items; i++) {
            enum anml_status st = validate_value(c, v->items ? v->items[i] : NULL);
            if (st != ANML_OK) {
                return st;
            }
        }
    }
    return ANML_OK;
}

static enum anml_status validate_attrs(struct validate_ctx *c, const struct mil_attr *attrs,
                                       int32_t n) {
    for (int32_t i = 0; i < n; i++) {
        enum anml_status st = validate_value(c, attrs[i].value);
        if (st != ANML_OK) {
            return st;
        }
    }
    return ANML_OK;
}

/* "const 'w' (model.mil:12:5): weights/weight.bin@0x40: <reason>" */
static void prefix_op_error(struct validate_ctx *c, const struct mil_op *op) {
    if (!c->err) {
        return;
    }
    char pos[300] = "";
    if (op->line > 0) {
        snprintf(pos, sizeof pos, " (%s:%d:%d)", c->mil_name, (int)op->line, (int)op->col);
    }
    if (c->err->where[0]) {
        anml__err_prefix(c->err, "%s '%s'%s: %s", op->type ? op->type : "op", anml__mil_op_name(op),
                         pos, c->err->where);
    } else {
        anml__err_prefix(c->err, "%s '%s'%s", op->type ? op->type : "op", anml__mil_op_name(op),
                         pos);
    }
}

static enum anml_status validate_block(struct validate_ctx *c, const struct mil_block *b);

static enum anml_status validate_op(struct validate_ctx *c, const struct mil_op *op) {
    enum anml_status st = ANML_OK;
    for (int32_t i = 0; i < op->n_args && st == ANML_OK; i++) {
        const struct mil_arg *a = &op->args[i];
        for (int32_t j = 0; j < a->n_bindings && st == ANML_OK; j++) {
            st = validate_value(c, a->bindings[j].value);
        }
    }
    if (st == ANML_OK) {
        st = validate_attrs(c, op->attrs, op->n_attrs);
    }
    if (st != ANML_OK) {
        prefix_op_error(c, op);
        return st;
    }
    for (int32_t i = 0; i < op->n_blocks; i++) {
        st = validate_block(c, &op->blocks[i]);
        if (st != ANML_OK) {
            return st;
        }
    }
    return ANML_OK;
}

static enum anml_status validate_block(struct validate_ctx *c, const struct mil_block *b) {
    enum anml_status st = validate_attrs(c, b->attrs, b->n_attrs);
    if (st != ANML_OK) {
        return st;
    }
    for (int32_t i = 0; i < b->n_ops; i++) {
        st = validate_op(c, &b->ops[i]);
        if (st != ANML_OK) {
            return st;
        }
    }
    return ANML_OK;
}

static const char *mil_file_name(const struct mil_program *prog) {
    const char *src = prog->source_path;
    if (prog->format == MIL_FORMAT_MLMODELC && src) {
        size_t n = strlen(src);
        if (n > 4 && strcmp(src + n - 4, ".mil") == 0) {
            const char *slash = strrchr(src, '/');
            return slash ? slash + 1 : src;
        }
        return "model.mil";
    }
    return prog->format == MIL_FORMAT_MLPACKAGE ? "model.mlmodel" : "model.mil";
}

enum anml_status anml__mil_validate_blobs(struct mil_program *prog, struct anml_error *err) {
    if (!prog->blobs) {
        prog->blobs = anml__blob_store_new(prog->model_dir);
        if (!prog->blobs) {
            return anml__err(err, ANML_E_NOMEM, "", "out of memory");
        }
    }
    struct validate_ctx c = { prog, mil_file_name(prog), err };
    enum anml_status st = validate_attrs(&c, prog->attrs, prog->n_attrs);
    if (st != ANML_OK) {
        anml__err_prefix(err, "program attribute");
        return st;
    }
    for (int32_t i = 0; i < prog->n_functions; i++) {
        const struct mil_function *fn = &prog->functions[i];
        st = validate_attrs(&c, fn->attrs, fn->n_attrs);
        if (st != ANML_OK) {
            anml__err_prefix(err, "function '%s' attribute", fn->name ? fn->name : "?");
            return st;
        }
        /* Op errors name the op and its position, which is enough to find it. */
        st = validate_block(&c, &fn->block);
        if (st != ANML_OK) {
            return st;
        }
    }
    return ANML_OK;
}
/* ---- sub-byte packing ---- */

void anml__subbyte_unpack(enum anml_dtype dt, const uint8_t *packed, int64_t n, uint8_t *dst) {
    int bits = anml_dtype_bits(dt);
    if (bits == 8) {
        if (n > 0) {
            memcpy(dst, packed, (size_t)n);
        }
        return;
    }
    ANML_ASSERT(bits >= 1 && bits < 8);
    if (bits == 4) {
        /* Fast path for the common case: two elements per byte, low nibble first. */
        int64_t i = 0;
        for (; i + 1 < n; i += 2) {
            uint8_t b = packed[i >> 1];
            dst[i] = b & 15u;
            dst[i + 1] = (uint8_t)(b >> 4);
        }
        if (i < n) {
            dst[i] = packed[i >> 1] & 15u;
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            dst[i] = (uint8_t)anml__subbyte_get(packed, bits, i);
        }
    }
    if (dt == ANML_DTYPE_INT4) {
        for (int64_t i = 0; i < n; i++) {
            /* Sign-extend bit 3: values 8..15 stand for -8..-1. */
            dst[i] = (uint8_t)(int8_t)(int)(((int)dst[i] ^ 8) - 8);
        }
    }
}

size_t anml__subbyte_pack(enum anml_dtype dt, const uint8_t *src, int64_t n, uint8_t *dst) {
    int bits = anml_dtype_bits(dt);
    if (n <= 0) {
        return 0;
    }
    if (bits == 8) {
        memcpy(dst, src, (size_t)n);
        return (size_t)n;
    }
    ANML_ASSERT(bits >= 1 && bits < 8);
    size_t nbytes = (size_t)(((uint64_t)n * (uint64_t)bits + 7) / 8);
    memset(dst, 0, nbytes);
    uint32_t mask = (1u << bits) - 1;
    for (int64_t i = 0; i < n; i++) {
        uint64_t bit = (uint64_t)i * (uint64_t)bits;
        uint32_t v = (uint32_t)src[i] & mask;
        unsigned shift = (unsigned)(bit & 7);
        uint8_t *p = dst + (bit >> 3);
        p[0] = (uint8_t)(p[0] | (v << shift));
        if (shift + (unsigned)bits > 8) {
            p[1] = (uint8_t)(p[1] | (v >> (8 - shift)));
        }
    }
    return nbytes;
}
