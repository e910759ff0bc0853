/*
 * writer.c -- writes a program IR as a .mlmodelc directory: model.mil in the coremlc
 * `program(1.3)` printer style (coreml-format.md §3.1 dialects B/C), weights/weight.bin in blob
 * storage v2 (§5) holding every distinct blob the program references, re-packed with the data
 * copied byte for byte, and metadata.json (§2.3) carrying everything the metadata reader needs to
 * rebuild prog->desc.
 *
 * The output is deterministic: the same IR always gives byte-identical files, which is what the
 * round-trip tests check (write, read back, write again).
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coreml/blob.h"
#include "coreml/program.h"

#define BLOB_ALIGN    64u
#define BLOB_SENTINEL 0xDEADBEEFu
#define WEIGHT_PATH   "@model_path/weights/weight.bin"

/* ---- growable text buffer ---- */

struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

static bool sb_reserve(struct sbuf *b, size_t extra) {
    if (b->oom) {
        return false;
    }
    size_t need;
    if (!anml__add_size(b->len, extra, &need) || !anml__add_size(need, 1, &need)) {
        b->oom = true;
        return false;
    }
    if (need <= b->cap) {
        return true;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need) {
        if (!anml__mul_size(cap, 2, &cap)) {
            b->oom = true;
            return false;
        }
    }
    char *np = anml__realloc(b->p, cap);
    if (!np) {
        b->oom = true;
        return false;
    }
    b->p = np;
    b->cap = cap;
    return true;
}

static void sb_putn(struct sbuf *b, const char *s, size_t n) {
    if (!sb_reserve(b, n)) {
        return;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(struct sbuf *b, const char *s) {
    sb_putn(b, s, strlen(s));
}

static void sb_indent(struct sbuf *b, int n) {
    if (!sb_reserve(b, (size_t)n)) {
        return;
    }
    memset(b->p + b->len, ' ', (size_t)n);
    b->len += (size_t)n;
    b->p[b->len] = '\0';
}

static void sb_printf(struct sbuf *b, const char *fmt, ...) ANML_PRINTF(2, 3);
static void sb_printf(struct sbuf *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return;
    }
    if ((size_t)n < sizeof tmp) {
        sb_putn(b, tmp, (size_t)n);
        return;
    }
    if (!sb_reserve(b, (size_t)n)) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* ---- literal formatting ---- */

int anml__mil_format_float(double v, char *buf, size_t cap) {
    if (isnan(v)) {
        return snprintf(buf, cap, "nan");
    }
    if (isinf(v)) {
        return snprintf(buf, cap, "%sinf", v < 0 ? "-" : "");
    }
    const char *sign = signbit(v) ? "-" : "";
    if (v == 0) {
        return snprintf(buf, cap, "%s0x0p+0", sign);
    }
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    int exp = (int)((bits >> 52) & 0x7ff);
    uint64_t mant = bits & ((UINT64_C(1) << 52) - 1);
    int e;
    if (exp == 0) {
        /* A double subnormal: normalize so the leading digit is always 1, as coremlc does. */
        e = -1022;
        while (!(mant & (UINT64_C(1) << 52))) {
            mant <<= 1;
            e--;
        }
        mant &= (UINT64_C(1) << 52) - 1;
    } else {
        e = exp - 1023;
    }
    char digits[14];
    int nd = 0;
    for (int i = 12; i >= 0; i--) {
        digits[nd++] = "0123456789abcdef"[(mant >> (4 * i)) & 0xf];
    }
    while (nd > 0 && digits[nd - 1] == '0') {
        nd--;
    }
    digits[nd] = '\0';
    if (nd == 0) {
        return snprintf(buf, cap, "%s0x1p%+d", sign, e);
    }
    return snprintf(buf, cap, "%s0x1.%sp%+d", sign, digits, e);
}

static void sb_put_string_lit(struct sbuf *b, const char *s) {
    sb_puts(b, "\"");
    const char *run = s;
    for (const char *q = s;; q++) {
        const char *esc = NULL;
        switch (*q) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\t': esc = "\\t"; break;
        default: break;
        }
        if (esc || *q == '\0') {
            sb_putn(b, run, (size_t)(q - run));
            if (!esc) {
                break;
            }
            sb_puts(b, esc);
            run = q + 1;
        }
    }
    sb_puts(b, "\"");
}

int anml__mil_format_string(const char *s, char *buf, size_t cap) {
    struct sbuf b = { 0 };
    sb_put_string_lit(&b, s);
    if (b.oom) {
        anml__free(b.p);
        return -1;
    }
    int n = snprintf(buf, cap, "%s", b.p);
    anml__free(b.p);
    return n;
}

static void sb_put_float(struct sbuf *b, double v) {
    char tmp[40];
    anml__mil_format_float(v, tmp, sizeof tmp);
    sb_puts(b, tmp);
}

/* fp8 E4M3FN (bias 7, no infinities, S.1111.111 is NaN) to double; exact. */
static double fp8e4m3_to_double(uint8_t x) {
    int s = x >> 7, e = (x >> 3) & 0xf, m = x & 7;
    double r;
    if (e == 0xf && m == 7) {
        r = (double)NAN;
    } else if (e == 0) {
        r = ldexp((double)m, -9);
    } else {
        r = ldexp(1.0 + (double)m / 8.0, e - 7);
    }
    return s ? -r : r;
}

/* One element of an immediate tensor in its literal form. */
static void sb_put_elem(struct sbuf *b, enum anml_dtype dt, const void *data, int64_t i) {
    const uint8_t *p = (const uint8_t *)data;
    size_t at = (size_t)i * anml__dtype_size(dt);
    switch (dt) {
    case ANML_DTYPE_BOOL: sb_puts(b, p[i] ? "true" : "false"); break;
    case ANML_DTYPE_STRING: {
        const char *s = ((char *const *)data)[i];
        sb_put_string_lit(b, s ? s : "");
        break;
    }
    case ANML_DTYPE_F16:
    case ANML_DTYPE_BF16: {
        uint16_t h;
        memcpy(&h, p + at, 2);
        float f = dt == ANML_DTYPE_F16 ? anml__fp16_to_fp32(h) : anml__bf16_to_fp32(h);
        sb_put_float(b, (double)f);
        break;
    }
    case ANML_DTYPE_F32: {
        float f;
        memcpy(&f, p + at, 4);
        sb_put_float(b, (double)f);
        break;
    }
    case ANML_DTYPE_F64: {
        double d;
        memcpy(&d, p + at, 8);
        sb_put_float(b, d);
        break;
    }
    case ANML_DTYPE_FP8E5M2: /* the top byte of an fp16 */
        sb_put_float(b, (double)anml__fp16_to_fp32((uint16_t)(p[i] << 8)));
        break;
    case ANML_DTYPE_FP8E4M3FN: sb_put_float(b, fp8e4m3_to_double(p[i])); break;
    case ANML_DTYPE_INT4:
    case ANML_DTYPE_INT8: sb_printf(b, "%d", (int)(int8_t)p[i]); break;
    case ANML_DTYPE_INT16: {
        int16_t x;
        memcpy(&x, p + at, 2);
        sb_printf(b, "%d", (int)x);
        break;
    }
    case ANML_DTYPE_INT32: {
        int32_t x;
        memcpy(&x, p + at, 4);
        sb_printf(b, "%ld", (long)x);
        break;
    }
    case ANML_DTYPE_INT64: {
        int64_t x;
        memcpy(&x, p + at, 8);
        sb_printf(b, "%lld", (long long)x);
        break;
    }
    case ANML_DTYPE_UINT1:
    case ANML_DTYPE_UINT2:
    case ANML_DTYPE_UINT3:
    case ANML_DTYPE_UINT4:
    case ANML_DTYPE_UINT6:
    case ANML_DTYPE_UINT8: sb_printf(b, "%u", (unsigned)p[i]); break;
    case ANML_DTYPE_UINT16: {
        uint16_t x;
        memcpy(&x, p + at, 2);
        sb_printf(b, "%u", (unsigned)x);
        break;
    }
    case ANML_DTYPE_UINT32: {
        uint32_t x;
        memcpy(&x, p + at, 4);
        sb_printf(b, "%lu", (unsigned long)x);
        break;
    }
    case ANML_DTYPE_UINT64: {
        uint64_t x;
        memcpy(&x, p + at, 8);
        sb_printf(b, "%llu", (unsigned long long)x);
        break;
    }
    case ANML_DTYPE_INVALID:
    case ANML_DTYPE_COUNT: sb_puts(b, "0"); break;
    }
}

/* ---- the writer state ---- */

struct blob_entry {
    const char *file;    /* source weight file (owned by the program's blob store) */
    uint64_t src_record; /* record offset in the source file */
    uint64_t new_record; /* record offset in the written weight.bin */
    struct mil_blob_view view;
};

struct writer {
    const struct mil_program *prog;
    struct sbuf text;
    /* distinct blobs in first-reference order, with an open-addressing index over them */
    struct blob_entry *blobs;
    size_t n_blobs, cap_blobs;
    size_t *slots; /* index + 1, 0 = empty */
    size_t n_slots;
    uint64_t next_record;
    struct anml_error *err;
    enum anml_status st; /* first error; the text is abandoned once it is set */
};

static uint64_t blob_hash(const char *file, uint64_t off) {
    uint64_t h = UINT64_C(1469598103934665603);
    for (const unsigned char *s = (const unsigned char *)file; *s; s++) {
        h = (h ^ *s) * UINT64_C(1099511628211);
    }
    h ^= off + UINT64_C(0x9e3779b97f4a7c15) + (h << 6) + (h >> 2);
    return h;
}

static bool blob_index_grow(struct writer *w) {
    size_t n = w->n_slots ? w->n_slots * 2 : 256;
    size_t *slots = anml__calloc(n, sizeof *slots);
    if (!slots) {
        return false;
    }
    for (size_t i = 0; i < w->n_blobs; i++) {
        size_t h = (size_t)blob_hash(w->blobs[i].file, w->blobs[i].src_record) & (n - 1);
        while (slots[h]) {
            h = (h + 1) & (n - 1);
        }
        slots[h] = i + 1;
    }
    anml__free(w->slots);
    w->slots = slots;
    w->n_slots = n;
    return true;
}

/* Returns the new record offset of a blob value, adding it to the table on first reference. */
static bool blob_place(struct writer *w, const struct mil_value *v, uint64_t *new_record) {
    struct mil_blob_view view;
    if (!w->prog->blobs) {
        w->st = anml__err(w->err, ANML_E_INVALID_ARG, v->blob_path,
                          "blob value but the program has no weight files open");
        return false;
    }
    enum anml_status st = anml__blob_resolve(w->prog->blobs, v, &view, w->err);
    if (st != ANML_OK) {
        w->st = st;
        return false;
    }
    if ((w->n_blobs + 1) * 2 > w->n_slots && !blob_index_grow(w)) {
        w->st = anml__err(w->err, ANML_E_NOMEM, NULL, "out of memory");
        return false;
    }
    size_t mask = w->n_slots - 1;
    size_t h = (size_t)blob_hash(view.file, view.record_offset) & mask;
    while (w->slots[h]) {
        const struct blob_entry *e = &w->blobs[w->slots[h] - 1];
        if (e->src_record == view.record_offset && strcmp(e->file, view.file) == 0) {
            *new_record = e->new_record;
            return true;
        }
        h = (h + 1) & mask;
    }
    if (w->n_blobs == w->cap_blobs) {
        size_t cap = w->cap_blobs ? w->cap_blobs * 2 : 64;
        struct blob_entry *nb = anml__realloc(w->blobs, cap * sizeof *nb);
        if (!nb) {
            w->st = anml__err(w->err, ANML_E_NOMEM, NULL, "out of memory");
            return false;
        }
        w->blobs = nb;
        w->cap_blobs = cap;
    }
    if (w->n_blobs >= UINT32_MAX) {
        w->st = anml__err(w->err, ANML_E_UNSUPPORTED, view.file, "more than 2^32-1 blobs");
        return false;
    }
    uint64_t rec = w->next_record, end;
    if (!anml__add_u64(rec, BLOB_ALIGN, &end) || !anml__add_u64(end, view.size_bytes, &end) ||
        !anml__add_u64(end, BLOB_ALIGN - 1, &end)) {
        w->st = anml__err(w->err, ANML_E_FORMAT, view.file, "blob sizes overflow 64 bits");
        return false;
    }
    w->next_record = end & ~(uint64_t)(BLOB_ALIGN - 1);
    struct blob_entry *e = &w->blobs[w->n_blobs];
    e->file = view.file;
    e->src_record = view.record_offset;
    e->new_record = rec;
    e->view = view;
    w->slots[h] = ++w->n_blobs;
    *new_record = rec;
    return true;
}

static void put_type(struct writer *w, const struct mil_type *t) {
    char tmp[512];
    int n = anml__mil_type_str(t, tmp, sizeof tmp);
    if (n < 0) {
        w->text.oom = true;
        return;
    }
    if ((size_t)n < sizeof tmp) {
        sb_putn(&w->text, tmp, (size_t)n);
        return;
    }
    char *big = anml__malloc((size_t)n + 1);
    if (!big) {
        w->text.oom = true;
        return;
    }
    anml__mil_type_str(t, big, (size_t)n + 1);
    sb_putn(&w->text, big, (size_t)n);
    anml__free(big);
}

/* Nested brackets following the shape, row-major. */
static void put_nested(struct writer *w, const struct mil_value *v, const int64_t *dims,
                       int32_t rank, int32_t axis, int64_t *next) {
    sb_puts(&w->text, "[");
    for (int64_t i = 0; i < dims[axis]; i++) {
        if (i) {
            sb_puts(&w->text, ", ");
        }
        if (axis + 1 < rank) {
            put_nested(w, v, dims, rank, axis + 1, next);
        } else {
            sb_put_elem(&w->text, v->type->dtype, v->data, (*next)++);
        }
    }
    sb_puts(&w->text, "]");
}

static void put_value(struct writer *w, const struct mil_value *v, bool with_type);

/* A value without its type prefix (the items of tuples, lists and dicts). */
static void put_literal(struct writer *w, const struct mil_value *v) {
    struct sbuf *b = &w->text;
    switch (v->kind) {
    case MIL_VALUE_TENSOR: {
        const struct mil_type *t = v->type;
        if (!t || t->kind != MIL_TYPE_TENSOR || (v->n_elem > 0 && !v->data)) {
            w->st = anml__err(w->err, ANML_E_INTERNAL, NULL, "tensor value without data");
            return;
        }
        if (t->rank == 0) {
            if (v->n_elem >= 1) {
                sb_put_elem(b, t->dtype, v->data, 0);
            }
            return;
        }
        int64_t numel = -1;
        if (t->rank > 0 && !anml__shape_numel(t->dims, t->rank, &numel)) {
            numel = -1; /* unknown dims: the shape does not say how to nest */
        }
        int64_t next = 0;
        if (numel == v->n_elem && numel >= 0) {
            put_nested(w, v, t->dims, t->rank, 0, &next);
        } else {
            int64_t flat = v->n_elem;
            put_nested(w, v, &flat, 1, 0, &next);
        }
        return;
    }
    case MIL_VALUE_BLOB: put_value(w, v, true); return;
    case MIL_VALUE_TUPLE:
    case MIL_VALUE_LIST:
        sb_puts(b, v->kind == MIL_VALUE_TUPLE ? "(" : "[");
        for (int32_t i = 0; i < v->n_items; i++) {
            if (i) {
                sb_puts(b, ", ");
            }
            put_literal(w, v->items[i]);
        }
        sb_puts(b, v->kind == MIL_VALUE_TUPLE ? ")" : "]");
        return;
    case MIL_VALUE_DICT:
        sb_puts(b, "{");
        for (int32_t i = 0; i + 1 < v->n_items; i += 2) {
            sb_puts(b, i ? ", {" : "{");
            put_literal(w, v->items[i]);
            sb_puts(b, ", ");
            put_literal(w, v->items[i + 1]);
            sb_puts(b, "}");
        }
        sb_puts(b, "}");
        return;
    case MIL_VALUE_KIND_COUNT: break;
    }
    w->st = anml__err(w->err, ANML_E_INTERNAL, NULL, "unknown value kind %d", (int)v->kind);
}

static void put_value(struct writer *w, const struct mil_value *v, bool with_type) {
    if (!v->type) {
        w->st = anml__err(w->err, ANML_E_INTERNAL, NULL, "value without a type");
        return;
    }
    if (v->kind == MIL_VALUE_BLOB) {
        uint64_t rec = 0;
        if (!blob_place(w, v, &rec)) {
            return;
        }
        put_type(w, v->type);
        sb_printf(&w->text, "(BLOBFILE(path = string(\"%s\"), offset = uint64(%llu)))", WEIGHT_PATH,
                  (unsigned long long)rec);
        return;
    }
    if (with_type) {
        put_type(w, v->type);
        sb_puts(&w->text, "(");
    }
    put_literal(w, v);
    if (with_type) {
        sb_puts(&w->text, ")");
    }
}

/* ---- sorted views (coremlc prints arguments and attributes sorted by name) ---- */

static int32_t *sorted_order(const void *items, size_t stride, size_t name_off, int32_t n) {
    int32_t *idx = anml__malloc((size_t)(n > 0 ? n : 1) * sizeof *idx);
    if (!idx) {
        return NULL;
    }
    const char *base = (const char *)items;
    for (int32_t i = 0; i < n; i++) {
        int32_t j = i;
        const char *ni;
        memcpy(&ni, base + (size_t)i * stride + name_off, sizeof ni);
        while (j > 0) {
            const char *nj;
            memcpy(&nj, base + (size_t)idx[j - 1] * stride + name_off, sizeof nj);
            if (strcmp(nj, ni) <= 0) {
                break;
            }
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = i;
    }
    return idx;
}

static void put_attr_block(struct writer *w, const struct mil_attr *attrs, int32_t n) {
    if (n <= 0) {
        return;
    }
    int32_t *idx = sorted_order(attrs, sizeof *attrs, offsetof(struct mil_attr, name), n);
    if (!idx) {
        w->text.oom = true;
        return;
    }
    sb_puts(&w->text, "[");
    for (int32_t k = 0; k < n && w->st == ANML_OK; k++) {
        const struct mil_attr *a = &attrs[idx[k]];
        if (k) {
            sb_puts(&w->text, ", ");
        }
        sb_puts(&w->text, a->name);
        sb_puts(&w->text, " = ");
        put_value(w, a->value, true);
    }
    sb_puts(&w->text, "]");
    anml__free(idx);
}

static void put_block_body(struct writer *w, const struct mil_block *blk, int indent);

static void put_binding(struct writer *w, const struct mil_binding *bd) {
    if (bd->name) {
        sb_puts(&w->text, bd->name);
    } else if (bd->value) {
        put_value(w, bd->value, true);
    } else {
        w->st = anml__err(w->err, ANML_E_INTERNAL, NULL, "binding without name or value");
    }
}

static void put_op(struct writer *w, const struct mil_op *op, int indent) {
    struct sbuf *b = &w->text;
    sb_indent(b, indent);
    for (int32_t i = 0; i < op->n_results; i++) {
        if (i) {
            sb_puts(b, ", ");
        }
        put_type(w, op->results[i].type);
        sb_puts(b, " ");
        sb_puts(b, op->results[i].name);
    }
    if (op->n_results > 0) {
        sb_puts(b, " = ");
    }
    sb_puts(b, op->type);
    sb_puts(b, "(");
    int32_t *idx =
        sorted_order(op->args, sizeof *op->args, offsetof(struct mil_arg, name), op->n_args);
    if (!idx) {
        b->oom = true;
        return;
    }
    for (int32_t k = 0; k < op->n_args && w->st == ANML_OK; k++) {
        const struct mil_arg *a = &op->args[idx[k]];
        if (k) {
            sb_puts(b, ", ");
        }
        sb_puts(b, a->name);
        sb_puts(b, " = ");
        if (a->n_bindings == 1) {
            put_binding(w, &a->bindings[0]);
        } else {
            sb_puts(b, "(");
            for (int32_t j = 0; j < a->n_bindings; j++) {
                if (j) {
                    sb_puts(b, ", ");
                }
                put_binding(w, &a->bindings[j]);
            }
            sb_puts(b, ")");
        }
    }
    anml__free(idx);
    sb_puts(b, ")");
    put_attr_block(w, op->attrs, op->n_attrs);
    for (int32_t k = 0; k < op->n_blocks && w->st == ANML_OK; k++) {
        const struct mil_block *blk = &op->blocks[k];
        sb_puts(b, " ");
        if (blk->n_inputs > 0) {
            sb_puts(b, "(");
            for (int32_t i = 0; i < blk->n_inputs; i++) {
                if (i) {
                    sb_puts(b, ", ");
                }
                put_type(w, blk->inputs[i].type);
                sb_puts(b, " ");
                sb_puts(b, blk->inputs[i].name);
            }
            sb_puts(b, ") ");
        }
        sb_puts(b, "{\n");
        put_block_body(w, blk, indent + 4);
        sb_indent(b, indent);
        sb_puts(b, "}");
        sb_puts(b, " -> (");
        for (int32_t i = 0; i < blk->n_outputs; i++) {
            if (i) {
                sb_puts(b, ", ");
            }
            sb_puts(b, blk->outputs[i]);
        }
        sb_puts(b, ")");
    }
    sb_puts(b, ";\n");
}

/* What names an op in messages: its first result, else its `name` attribute. */
static const char *op_label(const struct mil_op *op) {
    if (op->n_results > 0) {
        return op->results[0].name;
    }
    const struct mil_attr *nm = anml__mil_op_attr(op, "name");
    const struct mil_value *v = nm ? nm->value : NULL;
    if (v && v->kind == MIL_VALUE_TENSOR && v->type && v->type->dtype == ANML_DTYPE_STRING &&
        v->n_elem == 1 && ((char **)v->data)[0]) {
        return ((char **)v->data)[0];
    }
    return "?";
}

static void put_block_body(struct writer *w, const struct mil_block *blk, int indent) {
    for (int32_t i = 0; i < blk->n_ops && w->st == ANML_OK; i++) {
        put_op(w, &blk->ops[i], indent);
        if (w->st != ANML_OK) {
            const struct mil_op *op = &blk->ops[i];
            anml__err_prefix(w->err, "op #%d (%s '%s')", (int)i, op->type, op_label(op));
        }
    }
}

static void put_function(struct writer *w, const struct mil_function *fn) {
    struct sbuf *b = &w->text;
    sb_printf(b, "    func %s<%s>(", fn->name, anml__mil_opset_text_tag(fn->opset));
    for (int32_t i = 0; i < fn->n_inputs; i++) {
        if (i) {
            sb_puts(b, ", ");
        }
        put_type(w, fn->inputs[i].type);
        sb_puts(b, " ");
        sb_puts(b, fn->inputs[i].name);
    }
    sb_puts(b, ")");
    if (fn->n_attrs > 0) {
        sb_puts(b, " ");
        put_attr_block(w, fn->attrs, fn->n_attrs);
    }
    sb_puts(b, " {\n");
    put_block_body(w, &fn->block, 12);
    sb_puts(b, "        } -> (");
    for (int32_t i = 0; i < fn->block.n_outputs; i++) {
        if (i) {
            sb_puts(b, ", ");
        }
        sb_puts(b, fn->block.outputs[i]);
    }
    sb_puts(b, ");\n");
    if (w->st != ANML_OK) {
        anml__err_prefix(w->err, "function '%s'", fn->name);
    }
}

static void put_program(struct writer *w) {
    const struct mil_program *prog = w->prog;
    sb_puts(&w->text, "program(1.3)\n");
    if (prog->n_attrs > 0) {
        put_attr_block(w, prog->attrs, prog->n_attrs);
        sb_puts(&w->text, "\n");
    }
    sb_puts(&w->text, "{\n");
    for (int32_t i = 0; i < prog->n_functions && w->st == ANML_OK; i++) {
        put_function(w, &prog->functions[i]);
    }
    sb_puts(&w->text, "}");
}

/* ---- weight.bin ---- */

static void put_le32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void put_le64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

void anml__blob_encode_header(uint8_t hdr[64], uint32_t count) {
    memset(hdr, 0, BLOB_ALIGN);
    put_le32(hdr, count);
    put_le32(hdr + 4, 2);
}

void anml__blob_encode_record(uint8_t rec[64], enum anml_dtype dt, uint64_t size_bytes,
                              uint64_t data_offset, uint64_t padding_bits) {
    memset(rec, 0, BLOB_ALIGN);
    put_le32(rec, BLOB_SENTINEL);
    put_le32(rec + 4, anml__dtype_blob_code(dt));
    put_le64(rec + 8, size_bytes);
    put_le64(rec + 16, data_offset);
    put_le64(rec + 24, padding_bits);
}

static bool write_zeros(FILE *f, uint64_t n) {
    static const uint8_t zeros[BLOB_ALIGN];
    while (n > 0) {
        size_t k = n < sizeof zeros ? (size_t)n : sizeof zeros;
        if (fwrite(zeros, 1, k, f) != k) {
            return false;
        }
        n -= k;
    }
    return true;
}

static enum anml_status write_weights(const struct writer *w, const char *path,
                                      struct anml_error *err) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        return anml__err(err, ANML_E_IO, path, "cannot create: %s", strerror(errno));
    }
    uint8_t hdr[BLOB_ALIGN];
    anml__blob_encode_header(hdr, (uint32_t)w->n_blobs);
    bool ok = fwrite(hdr, 1, sizeof hdr, f) == sizeof hdr;
    uint64_t pos = BLOB_ALIGN;
    for (size_t i = 0; ok && i < w->n_blobs; i++) {
        const struct blob_entry *e = &w->blobs[i];
        ok = write_zeros(f, e->new_record - pos);
        uint8_t rec[BLOB_ALIGN];
        anml__blob_encode_record(rec, e->view.dtype, e->view.size_bytes, e->new_record + BLOB_ALIGN,
                                 e->view.padding_bits);
        ok = ok && fwrite(rec, 1, sizeof rec, f) == sizeof rec;
        /* fwrite takes size_t; a blob larger than SIZE_MAX cannot have been mapped anyway */
        ok = ok && (e->view.size_bytes == 0 || fwrite(e->view.data, 1, (size_t)e->view.size_bytes,
                                                      f) == (size_t)e->view.size_bytes);
        pos = e->new_record + BLOB_ALIGN + e->view.size_bytes;
    }
    int rc = fclose(f);
    if (!ok || rc != 0) {
        return anml__err(err, ANML_E_IO, path, "write failed: %s", strerror(errno));
    }
    return ANML_OK;
}

/* Every file goes to "<path>.tmp" first and is renamed over the target when complete. Besides
 * never leaving a half-written file behind, this makes converting a model into its own directory
 * safe: the source weight.bin stays mapped (the old inode lives on) while the new one is written. */
static char *tmp_path(const char *path) {
    size_t n = strlen(path);
    char *t = anml__malloc(n + 5);
    if (t) {
        memcpy(t, path, n);
        memcpy(t + n, ".tmp", 5);
    }
    return t;
}

static enum anml_status commit_file(const char *tmp, const char *path, enum anml_status st,
                                    struct anml_error *err) {
    if (st == ANML_OK && rename(tmp, path) != 0) {
        st = anml__err(err, ANML_E_IO, path, "cannot rename %s into place: %s", tmp,
                       strerror(errno));
    }
    if (st != ANML_OK) {
        unlink(tmp);
    }
    return st;
}

static enum anml_status write_text_file(const char *path, const char *text, size_t len,
                                        struct anml_error *err) {
    char *tmp = tmp_path(path);
    if (!tmp) {
        return anml__err(err, ANML_E_NOMEM, path, "out of memory");
    }
    enum anml_status st = commit_file(tmp, path, anml__write_file(tmp, text, len, err), err);
    anml__free(tmp);
    return st;
}

static enum anml_status write_weight_file(const struct writer *w, const char *path,
                                          struct anml_error *err) {
    char *tmp = tmp_path(path);
    if (!tmp) {
        return anml__err(err, ANML_E_NOMEM, path, "out of memory");
    }
    enum anml_status st = commit_file(tmp, path, write_weights(w, tmp, err), err);
    anml__free(tmp);
    return st;
}

/* ---- metadata.json ---- */

static const char *feature_data_type(enum anml_dtype dt) {
    switch (dt) {
    case ANML_DTYPE_F16: return "Float16";
    case ANML_DTYPE_F32: return "Float32";
    case ANML_DTYPE_F64: return "Double";
    case ANML_DTYPE_INT32: return "Int32";
    case ANML_DTYPE_INT8: return "Int8";
    default: return NULL;
    }
}

static const char *const k_feature_type[MIL_FEATURE_KIND_COUNT] = {
    [MIL_FEATURE_MULTIARRAY] = "MultiArray", [MIL_FEATURE_STATE] = "State",
    [MIL_FEATURE_INT64] = "Int64",           [MIL_FEATURE_DOUBLE] = "Double",
    [MIL_FEATURE_STRING] = "String",         [MIL_FEATURE_IMAGE] = "Image",
    [MIL_FEATURE_DICTIONARY] = "Dictionary", [MIL_FEATURE_SEQUENCE] = "Sequence",
};

static void sb_put_dims(struct sbuf *b, const int64_t *d, int32_t n, const char *sep) {
    for (int32_t i = 0; i < n; i++) {
        sb_printf(b, "%s%lld", i ? sep : "", (long long)d[i]);
    }
}

static bool add_str(cJSON *o, const char *key, const char *val) {
    return cJSON_AddStringToObject(o, key, val ? val : "") != NULL;
}

static cJSON *feature_json(const struct mil_feature *f, struct sbuf *b) {
    cJSON *o = cJSON_CreateObject();
    if (!o) {
        return NULL;
    }
    bool is_array = f->kind == MIL_FEATURE_MULTIARRAY || f->kind == MIL_FEATURE_STATE;
    const char *type = (int)f->kind >= 0 && f->kind < MIL_FEATURE_KIND_COUNT
                           ? k_feature_type[f->kind]
                           : "MultiArray";
    const char *dt = feature_data_type(f->dtype);
    bool ok = add_str(o, "name", f->name) && add_str(o, "type", type) &&
              add_str(o, "isOptional", f->optional ? "1" : "0") &&
              add_str(o, "shortDescription", f->short_description);
    /* formattedType: "MultiArray (Float16 1 × 10)", a trailing '?' for optional features */
    b->len = 0;
    sb_puts(b, type);
    if (is_array) {
        sb_printf(b, " (%s", dt ? dt : "Float32");
        if (f->rank > 0) {
            sb_puts(b, " ");
            sb_put_dims(b, f->shape, f->rank, " \xc3\x97 ");
        }
        sb_puts(b, ")");
    }
    if (f->optional) {
        sb_puts(b, "?");
    }
    ok = ok && !b->oom && add_str(o, "formattedType", b->p);
    if (is_array) {
        if (dt) {
            ok = ok && add_str(o, "dataType", dt);
        }
        bool flex = f->has_range || f->n_enum_shapes > 0;
        /* An empty shape means "not specified" (real ANEMLL embeddings outputs have one); no
         * "shape" key says exactly that, while "[]" would claim a rank-0 tensor. */
        if (f->rank > 0 || flex) {
            b->len = 0;
            sb_puts(b, "[");
            sb_put_dims(b, f->shape, f->rank, ", ");
            sb_puts(b, "]");
            ok = ok && !b->oom && add_str(o, "shape", b->p);
        }
        if (f->kind == MIL_FEATURE_MULTIARRAY || flex) {
            ok = ok && add_str(o, "hasShapeFlexibility", flex ? "1" : "0");
        }
        if (f->n_enum_shapes > 0) {
            b->len = 0;
            sb_puts(b, "[");
            for (int32_t s = 0; s < f->n_enum_shapes; s++) {
                sb_puts(b, s ? ", [" : "[");
                sb_put_dims(b, f->enum_shapes[s], f->rank, ", ");
                sb_puts(b, "]");
            }
            sb_puts(b, "]");
            ok = ok && !b->oom && add_str(o, "enumeratedShapes", b->p);
            b->len = 0;
            for (int32_t s = 0; s < f->n_enum_shapes; s++) {
                if (s) {
                    sb_puts(b, " | ");
                }
                sb_put_dims(b, f->enum_shapes[s], f->rank, " \xc3\x97 ");
            }
            ok = ok && !b->oom && add_str(o, "shapeFlexibility", b->p);
        } else if (f->has_range) {
            b->len = 0;
            sb_puts(b, "[");
            for (int32_t d = 0; d < f->rank; d++) {
                sb_printf(b, "%s[%lld, %lld]", d ? ", " : "", (long long)f->range_lo[d],
                          (long long)f->range_hi[d]);
            }
            sb_puts(b, "]");
            ok = ok && !b->oom && add_str(o, "shapeRange", b->p);
            b->len = 0;
            for (int32_t d = 0; d < f->rank; d++) {
                if (d) {
                    sb_puts(b, " \xc3\x97 ");
                }
                if (f->range_hi[d] < 0) {
                    sb_printf(b, "%lld...", (long long)f->range_lo[d]);
                } else if (f->range_hi[d] == f->range_lo[d]) {
                    sb_printf(b, "%lld", (long long)f->range_lo[d]);
                } else {
                    sb_printf(b, "%lld...%lld", (long long)f->range_lo[d],
                              (long long)f->range_hi[d]);
                }
            }
            ok = ok && !b->oom && add_str(o, "shapeFlexibility", b->p);
        }
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static bool add_schema(cJSON *o, const char *key, const struct mil_feature *fs, int32_t n,
                       struct sbuf *b) {
    cJSON *arr = cJSON_AddArrayToObject(o, key);
    if (!arr) {
        return false;
    }
    for (int32_t i = 0; i < n; i++) {
        cJSON *f = feature_json(&fs[i], b);
        if (!f || !cJSON_AddItemToArray(arr, f)) {
            cJSON_Delete(f);
            return false;
        }
    }
    return true;
}

/* "constexpr_lut_to_dense" in an ios18 function -> "Ios18.constexprLutToDense" */
static void histogram_key(struct sbuf *b, int opset, const char *type) {
    b->len = 0;
    const char *tag = anml__mil_opset_text_tag(opset);
    sb_printf(b, "I%s.", tag + 1);
    bool up = false;
    for (const char *s = type; *s; s++) {
        if (*s == '_') {
            up = true;
            continue;
        }
        char c = *s;
        if (up && c >= 'a' && c <= 'z') {
            c = (char)(c - 'a' + 'A');
        }
        up = false;
        sb_putn(b, &c, 1);
    }
}

static bool histogram_add_block(cJSON *h, const struct mil_block *blk, int opset, struct sbuf *b) {
    for (int32_t i = 0; i < blk->n_ops; i++) {
        const struct mil_op *op = &blk->ops[i];
        histogram_key(b, opset, op->type);
        if (b->oom) {
            return false;
        }
        cJSON *n = cJSON_GetObjectItemCaseSensitive(h, b->p);
        if (n) {
            cJSON_SetNumberValue(n, n->valuedouble + 1);
        } else if (!cJSON_AddNumberToObject(h, b->p, 1)) {
            return false;
        }
        for (int32_t k = 0; k < op->n_blocks; k++) {
            if (!histogram_add_block(h, &op->blocks[k], opset, b)) {
                return false;
            }
        }
    }
    return true;
}

/* Op counts of one function, keys sorted so the file is deterministic and easy to diff. */
static bool add_histogram(cJSON *o, const struct mil_function *fn, struct sbuf *b) {
    cJSON *h = cJSON_CreateObject();
    if (!h) {
        return false;
    }
    if (fn && !histogram_add_block(h, &fn->block, fn->opset, b)) {
        cJSON_Delete(h);
        return false;
    }
    /* insertion sort of the (few) keys by relinking the child list */
    cJSON *sorted = NULL;
    while (h->child) {
        cJSON *it = h->child;
        h->child = it->next;
        it->next = it->prev = NULL;
        cJSON **pp = &sorted;
        cJSON *prev = NULL;
        while (*pp && strcmp((*pp)->string, it->string) < 0) {
            prev = *pp;
            pp = &(*pp)->next;
        }
        it->next = *pp;
        if (*pp) {
            (*pp)->prev = it;
        }
        it->prev = prev;
        *pp = it;
    }
    /* cJSON keeps the last element in child->prev */
    if (sorted) {
        cJSON *last = sorted;
        while (last->next) {
            last = last->next;
        }
        sorted->prev = last;
    }
    h->child = sorted;
    return cJSON_AddItemToObject(o, "mlProgramOperationTypeHistogram", h) != 0;
}

static const struct mil_function_desc *default_fdesc(const struct mil_model_desc *d) {
    if (d->n_functions <= 0) {
        return NULL;
    }
    for (int32_t i = 0; d->default_function && i < d->n_functions; i++) {
        if (d->functions[i].name && strcmp(d->functions[i].name, d->default_function) == 0) {
            return &d->functions[i];
        }
    }
    return &d->functions[0];
}

static const struct mil_function *fdesc_function(const struct mil_program *prog,
                                                 const struct mil_function_desc *fd) {
    const struct mil_function *fn = fd && fd->name ? anml__mil_find_function(prog, fd->name) : NULL;
    if (!fn && !prog->desc.multifunction) {
        const char *def = anml__mil_default_function(prog);
        fn = def ? anml__mil_find_function(prog, def) : NULL;
    }
    return fn;
}

static bool add_function_schemas(cJSON *o, const struct mil_function_desc *fd, struct sbuf *b) {
    return add_schema(o, "inputSchema", fd ? fd->inputs : NULL, fd ? fd->n_inputs : 0, b) &&
           add_schema(o, "outputSchema", fd ? fd->outputs : NULL, fd ? fd->n_outputs : 0, b) &&
           add_schema(o, "stateSchema", fd ? fd->states : NULL, fd ? fd->n_states : 0, b);
}

static char *metadata_text(const struct mil_program *prog) {
    const struct mil_model_desc *d = &prog->desc;
    struct sbuf b = { 0 };
    cJSON *root = cJSON_CreateArray();
    cJSON *o = cJSON_CreateObject();
    bool ok = root && o && cJSON_AddItemToArray(root, o);
    if (!ok) {
        cJSON_Delete(o);
    }
    const struct mil_function_desc *def = default_fdesc(d);
    ok = ok && add_str(o, "metadataOutputVersion", "3.0") &&
         cJSON_AddNumberToObject(o, "specificationVersion", (double)prog->spec_version);
    cJSON *mt = ok ? cJSON_AddObjectToObject(o, "modelType") : NULL;
    ok = ok && mt && add_str(mt, "name", "MLModelType_mlProgram");
    if (ok && d->short_description) {
        ok = add_str(o, "shortDescription", d->short_description);
    }
    if (ok && d->author) {
        ok = add_str(o, "author", d->author);
    }
    if (ok && d->license) {
        ok = add_str(o, "license", d->license);
    }
    if (ok && d->version) {
        ok = add_str(o, "version", d->version);
    }
    cJSON *ud = ok ? cJSON_AddObjectToObject(o, "userDefinedMetadata") : NULL;
    ok = ok && ud;
    for (int32_t i = 0; ok && i < d->n_user; i++) {
        ok = add_str(ud, d->user_keys[i], d->user_values[i]);
    }
    ok = ok && add_str(o, "isUpdatable", "0") && add_str(o, "method", "predict") &&
         cJSON_AddArrayToObject(o, "modelParameters") &&
         add_histogram(o, fdesc_function(prog, def), &b) && add_function_schemas(o, def, &b);
    if (ok && d->multifunction) {
        cJSON *fa = cJSON_AddArrayToObject(o, "functions");
        ok = fa != NULL;
        for (int32_t i = 0; ok && i < d->n_functions; i++) {
            const struct mil_function_desc *fd = &d->functions[i];
            cJSON *fo = cJSON_CreateObject();
            ok = fo && cJSON_AddItemToArray(fa, fo);
            if (!ok) {
                cJSON_Delete(fo);
                break;
            }
            ok = add_str(fo, "name", fd->name) && add_histogram(fo, fdesc_function(prog, fd), &b) &&
                 add_function_schemas(fo, fd, &b);
        }
        if (ok && d->default_function) {
            ok = add_str(o, "defaultFunctionName", d->default_function);
        }
    }
    anml__free(b.p);
    char *text = ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    return text;
}

/* A program read from a bare model.mil has no description at all; writing one would make the
 * metadata reader invent an (empty) function description that was not there. */
static bool desc_is_empty(const struct mil_program *prog) {
    const struct mil_model_desc *d = &prog->desc;
    return prog->spec_version == 0 && d->n_functions == 0 && !d->multifunction &&
           !d->default_function && !d->short_description && !d->author && !d->license &&
           !d->version && d->n_user == 0;
}

/* Removes a file left by an earlier conversion into the same directory (--force), which would
 * otherwise be read together with the new files. */
static enum anml_status remove_stale(const char *path, struct anml_error *err) {
    if (unlink(path) != 0 && errno != ENOENT) {
        return anml__err(err, ANML_E_IO, path, "cannot remove stale file: %s", strerror(errno));
    }
    return ANML_OK;
}

enum anml_status anml__mil_write_metadata_json(const struct mil_program *prog, const char *path,
                                               struct anml_error *err) {
    char *meta = metadata_text(prog);
    if (!meta) {
        return anml__err(err, ANML_E_NOMEM, path, "out of memory building metadata.json");
    }
    enum anml_status st = write_text_file(path, meta, strlen(meta), err);
    cJSON_free(meta);
    return st;
}

/* ---- entry point ---- */

enum anml_status anml__mil_write_mlmodelc(const struct mil_program *prog, const char *out_dir,
                                          struct anml_error *err) {
    struct writer w = { .prog = prog, .next_record = BLOB_ALIGN, .err = err, .st = ANML_OK };
    char *weights_dir = anml__path_join(out_dir, "weights");
    char *mil_path = anml__path_join(out_dir, "model.mil");
    char *meta_path = anml__path_join(out_dir, "metadata.json");
    char *bin_path = weights_dir ? anml__path_join(weights_dir, "weight.bin") : NULL;
    char *meta = NULL;
    enum anml_status st;
    if (!weights_dir || !mil_path || !meta_path || !bin_path) {
        st = anml__err(err, ANML_E_NOMEM, out_dir, "out of memory");
        goto done;
    }
    put_program(&w);
    if (w.st != ANML_OK) {
        st = w.st;
        goto done;
    }
    if (w.text.oom) {
        st = anml__err(err, ANML_E_NOMEM, mil_path, "out of memory");
        goto done;
    }
    meta = desc_is_empty(prog) ? NULL : metadata_text(prog);
    if (!meta && !desc_is_empty(prog)) {
        st = anml__err(err, ANML_E_NOMEM, meta_path, "out of memory building metadata.json");
        goto done;
    }
    st = anml__mkdirs(out_dir, err);
    if (st == ANML_OK) {
        st = anml__mkdirs(weights_dir, err);
    }
    if (st == ANML_OK) {
        st = write_text_file(mil_path, w.text.p, w.text.len, err);
    }
    if (st == ANML_OK) {
        st = meta ? write_text_file(meta_path, meta, strlen(meta), err)
                  : remove_stale(meta_path, err);
    }
    if (st == ANML_OK) {
        st = w.n_blobs > 0 ? write_weight_file(&w, bin_path, err) : remove_stale(bin_path, err);
    }
done:
    if (meta) {
        cJSON_free(meta);
    }
    anml__free(w.text.p);
    anml__free(w.blobs);
    anml__free(w.slots);
    anml__free(weights_dir);
    anml__free(mil_path);
    anml__free(meta_path);
    anml__free(bin_path);
    return st;
}
