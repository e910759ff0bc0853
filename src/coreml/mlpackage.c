/*
 * mlpackage.c -- the .mlpackage reader (coreml-format.md §6, §7): Manifest.json -> the root model
 * item -> the protobuf Model in model.mlmodel -> the program IR of program.h (functions, blocks,
 * operations, typed values, program attributes) and the model description (features per
 * function, default function, metadata).
 *
 * Decoding is done by protobuf-c with our own schema subset (proto/coreml.proto). protobuf-c is
 * robust against malformed bytes but recurses without a depth limit and only says "failed", so
 * every buffer is first walked here against the same descriptors: that bounds the nesting depth
 * and turns a bad byte into an error naming the offset and the message/field path. After
 * unpacking, every semantic rule the IR relies on (known dtypes, rank = number of dimensions,
 * element counts = declared shape, bindings set, names non-empty) is checked while converting;
 * any violation is ANML_E_FORMAT naming the function, op and field. All IR memory comes from
 * prog->arena and the protobuf message is freed before returning.
 */
#include <cjson/cJSON.h>
#include <limits.h>
#include <protobuf-c/protobuf-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coreml.pb-c.h"
#include "coreml/blob.h"
#include "coreml/program.h"

#define SPEC(name)   CoreML__Specification__##name
#define MIL(name)    CoreML__Specification__MILSpec__##name
#define SPEC_K(name) CORE_ML__SPECIFICATION__##name
#define MIL_K(name)  CORE_ML__SPECIFICATION__MILSPEC__##name

/* Protobuf message nesting accepted on the wire; real files stay below 25. It bounds the
 * recursion of protobuf-c's own unpacker, which has no limit. */
#define WIRE_MAX_DEPTH 100
/* Nesting of blocks, values and types accepted in the IR (the wire limit is stricter in
 * practice: each IR level costs two or more protobuf levels). */
#define IR_MAX_DEPTH 64

/* The newest Manifest.json fileFormatVersion this reader understands. */
#define MANIFEST_MAJOR 1
#define MANIFEST_MINOR 0
#define MANIFEST_PATCH 0

/* ---- error positions ---- */

/* "file@0xOFF", keeping the tail of a long path so the offset always fits in err->where. */
static void where_at(char *buf, size_t cap, const char *file, size_t off) {
    size_t n = strlen(file);
    const char *tail = n > 200 ? file + (n - 200) : file;
    snprintf(buf, cap, "%s%s@0x%zx", n > 200 ? "..." : "", tail, off);
}

/* ---- wire-format walk (structure, depth and field wire types before protobuf-c runs) ---- */

struct wire_walk {
    const uint8_t *buf;
    const char *file;
    struct anml_error *err;
    const ProtobufCMessageDescriptor *root;
    int depth;
    const ProtobufCFieldDescriptor *path[WIRE_MAX_DEPTH + 1]; /* field entered at each level */
};

static enum anml_status wire_fail(struct wire_walk *w, size_t off, const char *fmt, ...)
    ANML_PRINTF(3, 4);

static enum anml_status wire_fail(struct wire_walk *w, size_t off, const char *fmt, ...) {
    char where[256];
    char reason[256];
    char path[256];
    where_at(where, sizeof where, w->file, off);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    int len = snprintf(path, sizeof path, "%s", w->root->short_name);
    for (int i = 0; i < w->depth && len >= 0 && (size_t)len < sizeof path; i++) {
        len += snprintf(path + len, sizeof path - (size_t)len, ".%s", w->path[i]->name);
    }
    return anml__err(w->err, ANML_E_FORMAT, where, "malformed protobuf in %s: %s", path, reason);
}

/* Reads a varint of at most max_bytes bytes from [*pos, end). */
static bool wire_varint(const uint8_t *p, size_t end, size_t *pos, uint64_t *out, int max_bytes) {
    uint64_t v = 0;
    for (int i = 0; i < max_bytes; i++) {
        if (*pos >= end) {
            return false;
        }
        uint8_t b = p[(*pos)++];
        v |= (uint64_t)(b & 0x7fu) << (7 * i);
        if (!(b & 0x80u)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* The wire type a scalar of this field type is written with. */
static unsigned natural_wire_type(ProtobufCType t) {
    switch (t) {
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT: return 5;
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE: return 1;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE: return 2;
    default: return 0;
    }
}

static const char *wire_type_name(unsigned wt) {
    static const char *const names[] = {
        "varint",    "fixed64", "length-delimited", "start-group",
        "end-group", "fixed32", "invalid (6)",      "invalid (7)"
    };
    return names[wt & 7u];
}

static enum anml_status wire_check(struct wire_walk *w, const ProtobufCMessageDescriptor *md,
                                   size_t pos, size_t end);

/* Checks the payload of a length-delimited field [pos, pos + n) of a known field. */
static enum anml_status wire_check_delimited(struct wire_walk *w,
                                             const ProtobufCFieldDescriptor *fd, size_t tag_off,
                                             size_t pos, size_t n) {
    unsigned natural = natural_wire_type(fd->type);
    if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
        if (w->depth >= WIRE_MAX_DEPTH) {
            return wire_fail(w, tag_off, "messages nested deeper than %d levels", WIRE_MAX_DEPTH);
        }
        w->path[w->depth++] = fd;
        enum anml_status st = wire_check(w, fd->descriptor, pos, pos + n);
        w->depth--;
        return st;
    }
    if (natural == 2) {
        return ANML_OK; /* string / bytes: any content */
    }
    if (fd->label != PROTOBUF_C_LABEL_REPEATED) {
        return wire_fail(w, tag_off, "field %s (#%u) is a scalar but arrives length-delimited",
                         fd->name, fd->id);
    }
    /* a packed run of scalars */
    if ((natural == 5 && n % 4 != 0) || (natural == 1 && n % 8 != 0)) {
        return wire_fail(w, tag_off, "packed field %s (#%u): %zu bytes is not a multiple of %d",
                         fd->name, fd->id, n, natural == 5 ? 4 : 8);
    }
    if (natural == 0) {
        size_t p = pos;
        while (p < pos + n) {
            uint64_t v;
            size_t at = p;
            if (!wire_varint(w->buf, pos + n, &p, &v, 10)) {
                return wire_fail(w, at, "packed field %s (#%u): truncated or overlong varint",
                                 fd->name, fd->id);
            }
        }
    }
    return ANML_OK;
}

/* Walks the fields of one message in [pos, end): every tag, length and nested message must stay
 * inside its parent, known fields must use a wire type their type allows. Unknown fields are
 * skipped (but must be well-formed too). */
static enum anml_status wire_check(struct wire_walk *w, const ProtobufCMessageDescriptor *md,
                                   size_t pos, size_t end) {
    while (pos < end) {
        size_t tag_off = pos;
        uint64_t tag;
        /* protobuf-c reads tags of at most 5 bytes; so do we, to agree on what is valid */
        if (!wire_varint(w->buf, end, &pos, &tag, 5)) {
            return wire_fail(w, tag_off, "truncated or overlong field tag");
        }
        uint64_t fnum = tag >> 3;
        unsigned wt = (unsigned)(tag & 7u);
        if (fnum == 0 || fnum > 0x1fffffffu) {
            return wire_fail(w, tag_off, "invalid field number %llu", (unsigned long long)fnum);
        }
        const ProtobufCFieldDescriptor *fd =
            protobuf_c_message_descriptor_get_field(md, (unsigned)fnum);
        if (fd && wt != natural_wire_type(fd->type) &&
            !(wt == 2 && fd->label == PROTOBUF_C_LABEL_REPEATED)) {
            return wire_fail(w, tag_off, "field %s (#%u) has wire type %s, expected %s", fd->name,
                             fd->id, wire_type_name(wt),
                             wire_type_name(natural_wire_type(fd->type)));
        }
        char label[128];
        if (fd) {
            snprintf(label, sizeof label, "%s (#%u)", fd->name, fd->id);
        } else {
            snprintf(label, sizeof label, "#%llu", (unsigned long long)fnum);
        }
        uint64_t v;
        switch (wt) {
        case 0:
            if (!wire_varint(w->buf, end, &pos, &v, 10)) {
                return wire_fail(w, tag_off, "field %s: truncated or overlong varint", label);
            }
            break;
        case 1:
        case 5: {
            size_t need = wt == 1 ? 8 : 4;
            if (end - pos < need) {
                return wire_fail(w, tag_off, "field %s: %zu-byte value past the end (%zu left)",
                                 label, need, end - pos);
            }
            pos += need;
            break;
        }
        case 2: {
            size_t len_off = pos;
            if (!wire_varint(w->buf, end, &pos, &v, 10)) {
                return wire_fail(w, len_off, "field %s: truncated or overlong length", label);
            }
            if (v > end - pos) {
                return wire_fail(w, tag_off,
                                 "field %s: length %llu past the end of the enclosing "
                                 "message (%zu bytes left)",
                                 label, (unsigned long long)v, end - pos);
            }
            if (fd) {
                enum anml_status st = wire_check_delimited(w, fd, tag_off, pos, (size_t)v);
                if (st != ANML_OK) {
                    return st;
                }
            }
            pos += (size_t)v;
            break;
        }
        default:
            return wire_fail(w, tag_off, "field %s: unsupported wire type %s", label,
                             wire_type_name(wt));
        }
    }
    return ANML_OK;
}

/* ---- protobuf-c allocator over anml__malloc ---- */

struct pb_alloc_state {
    bool failed; /* an allocation failed: an unpack error is out-of-memory, not bad input */
};

static void *pb_alloc(void *ud, size_t n) {
    void *p = anml__malloc(n ? n : 1);
    if (!p) {
        ((struct pb_alloc_state *)ud)->failed = true;
    }
    return p;
}

static void pb_free(void *ud, void *p) {
    (void)ud;
    anml__free(p);
}

/* ---- conversion context ---- */

struct pb_ctx {
    struct mil_program *prog;
    struct anml_arena *a;
    const char *file;
    struct anml_error *err;
    int depth;
    /* what is being converted, for error messages (borrowed from the protobuf message) */
    const char *fn_name;
    const char *op_label;
    const char *op_type;
    const char *what;
};

static enum anml_status fail(struct pb_ctx *c, const char *fmt, ...) ANML_PRINTF(2, 3);

static enum anml_status fail(struct pb_ctx *c, const char *fmt, ...) {
    char prefix[256];
    char reason[320];
    int n = 0;
    prefix[0] = '\0';
    if (c->fn_name) {
        n += snprintf(prefix + n, sizeof prefix - (size_t)n, "function '%s': ", c->fn_name);
    }
    if (c->op_type && n >= 0 && (size_t)n < sizeof prefix) {
        n += snprintf(prefix + n, sizeof prefix - (size_t)n,
                      "op '%s' (%s): ", c->op_label ? c->op_label : "?", c->op_type);
    }
    if (c->what && n >= 0 && (size_t)n < sizeof prefix) {
        snprintf(prefix + n, sizeof prefix - (size_t)n, "%s: ", c->what);
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    return anml__err(c->err, ANML_E_FORMAT, c->file, "%s%s", prefix, reason);
}

static enum anml_status nomem(struct pb_ctx *c) {
    return anml__err(c->err, ANML_E_NOMEM, c->file, "out of memory");
}

/* Arena copy of a protobuf string; NULL only when out of memory. */
static char *dup_str(struct pb_ctx *c, const char *s) {
    return anml__arena_strdup(c->a, s ? s : "");
}

/* Arena array of count elements, NULL for count 0; *ok is false when out of memory. */
static void *arr(struct pb_ctx *c, size_t count, size_t size, bool *ok) {
    if (count == 0) {
        return NULL;
    }
    void *p = anml__arena_array(c->a, count, size);
    if (!p) {
        *ok = false;
    }
    return p;
}

/* Protobuf counts are size_t; the IR uses int32. The input size bounds them, but a hostile
 * multi-gigabyte file must not wrap around. */
static enum anml_status count32(struct pb_ctx *c, size_t n, const char *field, int32_t *out) {
    if (n > INT32_MAX) {
        return fail(c, "%s has %zu entries, more than supported", field, n);
    }
    *out = (int32_t)n;
    return ANML_OK;
}

/* ---- types ---- */

static const char *type_kind_name(enum mil_type_kind k) {
    static const char *const names[] = { "tensor", "state", "list", "tuple", "dict" };
    return (int)k >= 0 && k < MIL_TYPE_KIND_COUNT ? names[k] : "?";
}

static enum anml_status conv_dim(struct pb_ctx *c, const MIL(Dimension) * d, const char *field,
                                 int64_t *out) {
    switch (d->dimension_case) {
    case MIL_K(DIMENSION__DIMENSION_CONSTANT):
        if (d->constant->size > (uint64_t)INT64_MAX) {
            return fail(c, "%s: constant dimension %llu is too large", field,
                        (unsigned long long)d->constant->size);
        }
        *out = (int64_t)d->constant->size;
        return ANML_OK;
    case MIL_K(DIMENSION__DIMENSION_UNKNOWN):
        /* a variadic unknown dimension has no IR form; it is unknown all the same */
        *out = MIL_DIM_UNKNOWN;
        return ANML_OK;
    default: return fail(c, "%s: Dimension has neither constant nor unknown set", field);
    }
}

static enum anml_status conv_type(struct pb_ctx *c, const MIL(ValueType) * vt,
                                  struct mil_type **out);

static enum anml_status conv_tensor_type(struct pb_ctx *c, const MIL(TensorType) * tt,
                                         struct mil_type *t) {
    t->kind = MIL_TYPE_TENSOR;
    t->dtype = anml__dtype_from_proto((int)tt->datatype);
    if (t->dtype == ANML_DTYPE_INVALID) {
        return fail(c, "TensorType.dataType %d is not a known MIL DataType", (int)tt->datatype);
    }
    if (tt->rank == -1) {
        if (tt->n_dimensions != 0) {
            return fail(c, "TensorType of unknown rank (-1) lists %zu dimensions",
                        tt->n_dimensions);
        }
        t->rank = -1;
        return ANML_OK;
    }
    if (tt->rank < 0 || (uint64_t)tt->rank != tt->n_dimensions) {
        return fail(c, "TensorType.rank is %lld but %zu dimensions are listed", (long long)tt->rank,
                    tt->n_dimensions);
    }
    enum anml_status st = count32(c, tt->n_dimensions, "TensorType.dimensions", &t->rank);
    if (st != ANML_OK) {
        return st;
    }
    bool ok = true;
    t->dims = arr(c, tt->n_dimensions, sizeof(int64_t), &ok);
    if (!ok) {
        return nomem(c);
    }
    for (size_t i = 0; i < tt->n_dimensions; i++) {
        st = conv_dim(c, tt->dimensions[i], "TensorType.dimensions", &t->dims[i]);
        if (st != ANML_OK) {
            return st;
        }
    }
    return ANML_OK;
}

static enum anml_status conv_type_inner(struct pb_ctx *c, const MIL(ValueType) * vt,
                                        struct mil_type *t) {
    enum anml_status st;
    bool ok = true;
    switch (vt->type_case) {
    case MIL_K(VALUE_TYPE__TYPE_TENSOR_TYPE): return conv_tensor_type(c, vt->tensortype, t);
    case MIL_K(VALUE_TYPE__TYPE_LIST_TYPE): {
        const MIL(ListType) *lt = vt->listtype;
        t->kind = MIL_TYPE_LIST;
        t->n_elems = 1;
        t->elems = arr(c, 1, sizeof *t->elems, &ok);
        if (!ok) {
            return nomem(c);
        }
        if (!lt->type) {
            return fail(c, "ListType has no element type");
        }
        st = conv_type(c, lt->type, &t->elems[0]);
        if (st != ANML_OK) {
            return st;
        }
        t->list_length = MIL_DIM_UNKNOWN;
        return lt->length ? conv_dim(c, lt->length, "ListType.length", &t->list_length) : ANML_OK;
    }
    case MIL_K(VALUE_TYPE__TYPE_TUPLE_TYPE): {
        const MIL(TupleType) *tu = vt->tupletype;
        t->kind = MIL_TYPE_TUPLE;
        st = count32(c, tu->n_types, "TupleType.types", &t->n_elems);
        if (st != ANML_OK) {
            return st;
        }
        t->elems = arr(c, tu->n_types, sizeof *t->elems, &ok);
        if (!ok) {
            return nomem(c);
        }
        for (size_t i = 0; i < tu->n_types; i++) {
            st = conv_type(c, tu->types[i], &t->elems[i]);
            if (st != ANML_OK) {
                return st;
            }
        }
        return ANML_OK;
    }
    case MIL_K(VALUE_TYPE__TYPE_DICTIONARY_TYPE): {
        const MIL(DictionaryType) *dt = vt->dictionarytype;
        t->kind = MIL_TYPE_DICT;
        t->n_elems = 2;
        t->elems = arr(c, 2, sizeof *t->elems, &ok);
        if (!ok) {
            return nomem(c);
        }
        if (!dt->keytype || !dt->valuetype) {
            return fail(c, "DictionaryType lacks its %s", dt->keytype ? "valueType" : "keyType");
        }
        st = conv_type(c, dt->keytype, &t->elems[0]);
        return st != ANML_OK ? st : conv_type(c, dt->valuetype, &t->elems[1]);
    }
    case MIL_K(VALUE_TYPE__TYPE_STATE_TYPE): {
        const MIL(StateType) *sty = vt->statetype;
        t->kind = MIL_TYPE_STATE;
        t->n_elems = 1;
        t->elems = arr(c, 1, sizeof *t->elems, &ok);
        if (!ok) {
            return nomem(c);
        }
        if (!sty->wrappedtype) {
            return fail(c, "StateType has no wrappedType");
        }
        st = conv_type(c, sty->wrappedtype, &t->elems[0]);
        if (st == ANML_OK && t->elems[0]->kind != MIL_TYPE_TENSOR) {
            return fail(c, "StateType wraps a %s type, not a tensor",
                        type_kind_name(t->elems[0]->kind));
        }
        return st;
    }
    default: return fail(c, "ValueType has no type set");
    }
}

static enum anml_status conv_type(struct pb_ctx *c, const MIL(ValueType) * vt,
                                  struct mil_type **out) {
    if (c->depth >= IR_MAX_DEPTH) {
        return fail(c, "types, values or blocks nested deeper than %d levels", IR_MAX_DEPTH);
    }
    struct mil_type *t = anml__arena_alloc(c->a, sizeof *t);
    if (!t) {
        return nomem(c);
    }
    *out = t;
    c->depth++;
    enum anml_status st = conv_type_inner(c, vt, t);
    c->depth--;
    return st;
}

/* ---- immediate tensor values ---- */

/* Value range of an integer dtype (bool counts as 0..1); false for other dtypes. */
static bool int_range(enum anml_dtype dt, int64_t *lo, int64_t *hi) {
    switch (dt) {
    case ANML_DTYPE_BOOL: *lo = 0, *hi = 1; return true;
    case ANML_DTYPE_INT4: *lo = -8, *hi = 7; return true;
    case ANML_DTYPE_INT8: *lo = INT8_MIN, *hi = INT8_MAX; return true;
    case ANML_DTYPE_INT16: *lo = INT16_MIN, *hi = INT16_MAX; return true;
    case ANML_DTYPE_INT32: *lo = INT32_MIN, *hi = INT32_MAX; return true;
    case ANML_DTYPE_INT64:
    case ANML_DTYPE_UINT64: /* longInts carry uint64 bit patterns */
        *lo = INT64_MIN, *hi = INT64_MAX;
        return true;
    case ANML_DTYPE_UINT1:
    case ANML_DTYPE_UINT2:
    case ANML_DTYPE_UINT3:
    case ANML_DTYPE_UINT4:
    case ANML_DTYPE_UINT6: *lo = 0, *hi = (1 << anml_dtype_bits(dt)) - 1; return true;
    case ANML_DTYPE_UINT8: *lo = 0, *hi = UINT8_MAX; return true;
    case ANML_DTYPE_UINT16: *lo = 0, *hi = UINT16_MAX; return true;
    case ANML_DTYPE_UINT32: *lo = 0, *hi = UINT32_MAX; return true;
    default: return false;
    }
}

/* Stores element i of an unpacked tensor in host byte order (esz = anml__dtype_size). */
static void store_int(void *data, size_t esz, int64_t i, int64_t v) {
    uint8_t *p = (uint8_t *)data + (size_t)i * esz;
    switch (esz) {
    case 1: *p = (uint8_t)v; break;
    case 2: {
        uint16_t x = (uint16_t)v;
        memcpy(p, &x, 2);
        break;
    }
    case 4: {
        uint32_t x = (uint32_t)v;
        memcpy(p, &x, 4);
        break;
    }
    default: memcpy(p, &v, 8); break;
    }
}

/* Stores a floating-point element converted to dt (F16, BF16, F32 or F64). */
static void store_float(void *data, enum anml_dtype dt, int64_t i, double v) {
    switch (dt) {
    case ANML_DTYPE_F16: ((uint16_t *)data)[i] = anml__fp32_to_fp16((float)v); break;
    case ANML_DTYPE_BF16: ((uint16_t *)data)[i] = anml__fp32_to_bf16((float)v); break;
    case ANML_DTYPE_F32: ((float *)data)[i] = (float)v; break;
    default: ((double *)data)[i] = v; break;
    }
}

static bool is_float_dtype(enum anml_dtype dt) {
    return dt == ANML_DTYPE_F16 || dt == ANML_DTYPE_BF16 || dt == ANML_DTYPE_F32 ||
           dt == ANML_DTYPE_F64;
}

static const char *const k_tensor_field_names[] = { "(none)",  "floats",   "ints",    "bools",
                                                    "strings", "longInts", "doubles", "bytes" };

static enum anml_status count_mismatch(struct pb_ctx *c, const char *field, size_t got,
                                       const char *unit, const struct mil_type *t, int64_t n) {
    char ty[128];
    anml__mil_type_str(t, ty, sizeof ty);
    return fail(c, "TensorValue.%s holds %zu %s but %s needs %lld", field, got, unit, ty,
                (long long)n);
}

static enum anml_status wrong_field(struct pb_ctx *c, const char *field, enum anml_dtype dt) {
    return fail(c, "TensorValue.%s cannot hold %s elements", field, anml_dtype_name(dt));
}

/* Fills v->n_elem / v->data from a TensorValue of the tensor type v->type (§7.6; any sensible
 * field is accepted, every element count is checked against the declared shape). */
static enum anml_status conv_tensor_value(struct pb_ctx *c, const MIL(TensorValue) * tv,
                                          struct mil_value *v) {
    const struct mil_type *t = v->type;
    enum anml_dtype dt = t->dtype;
    int64_t n;
    if (t->rank < 0 || !anml__shape_numel(t->dims, t->rank, &n)) {
        char ty[128];
        anml__mil_type_str(t, ty, sizeof ty);
        return fail(c, "immediate tensor of type %s has no fixed element count", ty);
    }
    v->n_elem = n;
    unsigned vc = (unsigned)tv->value_case;
    const char *field = vc < 8 ? k_tensor_field_names[vc] : "?";
    size_t esz = dt == ANML_DTYPE_STRING ? sizeof(char *) : anml__dtype_size(dt);
    int64_t lo = 0, hi = 0;
    bool is_int = int_range(dt, &lo, &hi);
    bool ok = true;

    switch (tv->value_case) {
    case MIL_K(TENSOR_VALUE__VALUE__NOT_SET):
        /* writers set the oneof even for empty tensors; tolerate its absence only then */
        return n == 0 ? ANML_OK
                      : fail(c, "TensorValue has no data for %lld elements", (long long)n);
    case MIL_K(TENSOR_VALUE__VALUE_FLOATS):
    case MIL_K(TENSOR_VALUE__VALUE_DOUBLES): {
        bool is_f = tv->value_case == MIL_K(TENSOR_VALUE__VALUE_FLOATS);
        size_t cnt = is_f ? tv->floats->n_values : tv->doubles->n_values;
        if (!is_float_dtype(dt)) {
            return wrong_field(c, field, dt);
        }
        if ((uint64_t)cnt != (uint64_t)n) {
            return count_mismatch(c, field, cnt, "values", t, n);
        }
        v->data = arr(c, cnt, esz, &ok);
        if (!ok) {
            return nomem(c);
        }
        for (size_t i = 0; i < cnt; i++) {
            double x = is_f ? (double)tv->floats->values[i] : tv->doubles->values[i];
            store_float(v->data, dt, (int64_t)i, x);
        }
        return ANML_OK;
    }
    case MIL_K(TENSOR_VALUE__VALUE_INTS):
    case MIL_K(TENSOR_VALUE__VALUE_LONG_INTS): {
        bool is32 = tv->value_case == MIL_K(TENSOR_VALUE__VALUE_INTS);
        size_t cnt = is32 ? tv->ints->n_values : tv->longints->n_values;
        if (!is_int) {
            return wrong_field(c, field, dt);
        }
        if (is32 && dt == ANML_DTYPE_UINT64) {
            lo = 0; /* only longInts carry uint64 bit patterns */
        }
        if ((uint64_t)cnt != (uint64_t)n) {
            return count_mismatch(c, field, cnt, "values", t, n);
        }
        v->data = arr(c, cnt, esz, &ok);
        if (!ok) {
            return nomem(c);
        }
        for (size_t i = 0; i < cnt; i++) {
            int64_t x = is32 ? tv->ints->values[i] : tv->longints->values[i];
            if (x < lo || x > hi) {
                return fail(c, "TensorValue.%s element %zu = %lld is out of range for %s", field, i,
                            (long long)x, anml_dtype_name(dt));
            }
            store_int(v->data, esz, (int64_t)i, x);
        }
        return ANML_OK;
    }
    case MIL_K(TENSOR_VALUE__VALUE_BOOLS): {
        size_t cnt = tv->bools->n_values;
        if (dt != ANML_DTYPE_BOOL) {
            return wrong_field(c, field, dt);
        }
        if ((uint64_t)cnt != (uint64_t)n) {
            return count_mismatch(c, field, cnt, "values", t, n);
        }
        uint8_t *d = arr(c, cnt, 1, &ok);
        if (!ok) {
            return nomem(c);
        }
        for (size_t i = 0; i < cnt; i++) {
            d[i] = tv->bools->values[i] ? 1 : 0;
        }
        v->data = d;
        return ANML_OK;
    }
    case MIL_K(TENSOR_VALUE__VALUE_STRINGS): {
        size_t cnt = tv->strings->n_values;
        if (dt != ANML_DTYPE_STRING) {
            return wrong_field(c, field, dt);
        }
        if ((uint64_t)cnt != (uint64_t)n) {
            return count_mismatch(c, field, cnt, "values", t, n);
        }
        char **d = arr(c, cnt, sizeof(char *), &ok);
        if (!ok) {
            return nomem(c);
        }
        for (size_t i = 0; i < cnt; i++) {
            d[i] = dup_str(c, tv->strings->values[i]);
            if (!d[i]) {
                return nomem(c);
            }
        }
        v->data = d;
        return ANML_OK;
    }
    case MIL_K(TENSOR_VALUE__VALUE_BYTES): {
        const ProtobufCBinaryData *b = &tv->bytes->values;
        if (dt == ANML_DTYPE_STRING) {
            return wrong_field(c, field, dt);
        }
        uint64_t need;
        int bits = anml_dtype_bits(dt);
        if (!anml__mul_u64((uint64_t)n, (uint64_t)bits, &need)) {
            return fail(c, "TensorValue.bytes: element count %lld overflows", (long long)n);
        }
        need = need / 8 + (need % 8 != 0);
        if ((uint64_t)b->len != need) {
            return count_mismatch(c, field, b->len, "bytes", t, (int64_t)need);
        }
        v->data = arr(c, (size_t)n, esz, &ok);
        if (!ok) {
            return nomem(c);
        }
        if (n == 0) {
            return ANML_OK;
        }
        if (anml__dtype_is_subbyte(dt)) {
            anml__subbyte_unpack(dt, b->data, n, v->data);
            return ANML_OK;
        }
        for (int64_t i = 0; i < n; i++) {
            const uint8_t *p = b->data + (size_t)i * esz;
            switch (esz) {
            case 1:
                ((uint8_t *)v->data)[i] = (uint8_t)(dt == ANML_DTYPE_BOOL ? p[0] != 0 : p[0]);
                break;
            case 2:
                store_int(v->data, 2, i, (int64_t)((uint32_t)p[0] | (uint32_t)p[1] << 8));
                break;
            case 4: store_int(v->data, 4, i, (int64_t)anml__le32(p)); break;
            default: store_int(v->data, 8, i, (int64_t)anml__le64(p)); break;
            }
        }
        return ANML_OK;
    }
    default: return fail(c, "TensorValue has an unknown value field %u", vc);
    }
}

/* ---- values ---- */

static enum anml_status conv_value(struct pb_ctx *c, const MIL(Value) * pv, struct mil_value **out);

static enum anml_status conv_items(struct pb_ctx *c, size_t n, MIL(Value) * *vals,
                                   const char *field, struct mil_value *v) {
    enum anml_status st = count32(c, n, field, &v->n_items);
    if (st != ANML_OK) {
        return st;
    }
    bool ok = true;
    v->items = arr(c, n, sizeof *v->items, &ok);
    if (!ok) {
        return nomem(c);
    }
    for (size_t i = 0; i < n; i++) {
        st = conv_value(c, vals[i], &v->items[i]);
        if (st != ANML_OK) {
            return st;
        }
    }
    return ANML_OK;
}

static enum anml_status expect_kind(struct pb_ctx *c, const struct mil_value *v,
                                    enum mil_type_kind k, const char *what) {
    if (v->type->kind != k) {
        return fail(c, "%s value has a %s type", what, type_kind_name(v->type->kind));
    }
    return ANML_OK;
}

static enum anml_status conv_immediate(struct pb_ctx *c, const MIL(Value__ImmediateValue) * iv,
                                       struct mil_value *v) {
    enum anml_status st;
    switch (iv->value_case) {
    case MIL_K(VALUE__IMMEDIATE_VALUE__VALUE_TENSOR):
        v->kind = MIL_VALUE_TENSOR;
        st = expect_kind(c, v, MIL_TYPE_TENSOR, "immediate tensor");
        return st != ANML_OK ? st : conv_tensor_value(c, iv->tensor, v);
    case MIL_K(VALUE__IMMEDIATE_VALUE__VALUE_TUPLE):
        v->kind = MIL_VALUE_TUPLE;
        st = expect_kind(c, v, MIL_TYPE_TUPLE, "tuple");
        if (st == ANML_OK) {
            st = conv_items(c, iv->tuple->n_values, iv->tuple->values, "TupleValue.values", v);
        }
        if (st == ANML_OK && v->n_items != v->type->n_elems) {
            return fail(c, "tuple value has %d items but its type has %d", (int)v->n_items,
                        (int)v->type->n_elems);
        }
        return st;
    case MIL_K(VALUE__IMMEDIATE_VALUE__VALUE_LIST):
        v->kind = MIL_VALUE_LIST;
        st = expect_kind(c, v, MIL_TYPE_LIST, "list");
        if (st == ANML_OK) {
            st = conv_items(c, iv->list->n_values, iv->list->values, "ListValue.values", v);
        }
        if (st == ANML_OK && v->type->list_length != MIL_DIM_UNKNOWN &&
            v->n_items != v->type->list_length) {
            return fail(c, "list value has %d items but its type has length %lld", (int)v->n_items,
                        (long long)v->type->list_length);
        }
        return st;
    case MIL_K(VALUE__IMMEDIATE_VALUE__VALUE_DICTIONARY): {
        const MIL(DictionaryValue) *dv = iv->dictionary;
        v->kind = MIL_VALUE_DICT;
        st = expect_kind(c, v, MIL_TYPE_DICT, "dictionary");
        if (st != ANML_OK) {
            return st;
        }
        if (dv->n_values > INT32_MAX / 2) {
            return fail(c, "DictionaryValue has too many entries");
        }
        v->n_items = (int32_t)dv->n_values * 2;
        bool ok = true;
        v->items = arr(c, dv->n_values * 2, sizeof *v->items, &ok);
        if (!ok) {
            return nomem(c);
        }
        for (size_t i = 0; i < dv->n_values; i++) {
            const MIL(DictionaryValue__KeyValuePair) *kv = dv->values[i];
            if (!kv->key || !kv->value) {
                return fail(c, "DictionaryValue entry %zu lacks its %s", i,
                            kv->key ? "value" : "key");
            }
            st = conv_value(c, kv->key, &v->items[2 * i]);
            if (st == ANML_OK) {
                st = conv_value(c, kv->value, &v->items[2 * i + 1]);
            }
            if (st != ANML_OK) {
                return st;
            }
        }
        return ANML_OK;
    }
    default: return fail(c, "ImmediateValue has no value set");
    }
}

static enum anml_status conv_value_inner(struct pb_ctx *c, const MIL(Value) * pv,
                                         struct mil_value *v) {
    if (!pv->type) {
        return fail(c, "Value has no type");
    }
    enum anml_status st = conv_type(c, pv->type, &v->type);
    if (st != ANML_OK) {
        return st;
    }
    switch (pv->value_case) {
    case MIL_K(VALUE__VALUE_IMMEDIATE_VALUE): return conv_immediate(c, pv->immediatevalue, v);
    case MIL_K(VALUE__VALUE_BLOB_FILE_VALUE): {
        const MIL(Value__BlobFileValue) *bf = pv->blobfilevalue;
        v->kind = MIL_VALUE_BLOB;
        st = expect_kind(c, v, MIL_TYPE_TENSOR, "blob file");
        if (st != ANML_OK) {
            return st;
        }
        if (!bf->filename[0]) {
            return fail(c, "BlobFileValue.fileName is empty");
        }
        v->blob_path = dup_str(c, bf->filename);
        v->blob_offset = bf->offset;
        return v->blob_path ? ANML_OK : nomem(c);
    }
    default: return fail(c, "Value has neither immediateValue nor blobFileValue");
    }
}

static enum anml_status conv_value(struct pb_ctx *c, const MIL(Value) * pv,
                                   struct mil_value **out) {
    if (c->depth >= IR_MAX_DEPTH) {
        return fail(c, "types, values or blocks nested deeper than %d levels", IR_MAX_DEPTH);
    }
    struct mil_value *v = anml__arena_alloc(c->a, sizeof *v);
    if (!v) {
        return nomem(c);
    }
    *out = v;
    c->depth++;
    enum anml_status st = conv_value_inner(c, pv, v);
    c->depth--;
    return st;
}

/* ---- attributes, named types ---- */

/* One entry of a map<string, Value>: the four attribute maps have distinct generated types of
 * the same shape, so callers pass key and value. Duplicate keys are rejected: the IR looks
 * attributes up by name. */
static enum anml_status conv_attr(struct pb_ctx *c, const char *map, const char *key,
                                  const MIL(Value) * val, struct mil_attr *attrs, int32_t i) {
    if (!key[0]) {
        return fail(c, "%s has an entry with an empty key", map);
    }
    for (int32_t j = 0; j < i; j++) {
        if (strcmp(attrs[j].name, key) == 0) {
            return fail(c, "%s has the key '%s' twice", map, key);
        }
    }
    if (!val) {
        return fail(c, "%s['%s'] has no value", map, key);
    }
    attrs[i].name = dup_str(c, key);
    if (!attrs[i].name) {
        return nomem(c);
    }
    char what[192];
    snprintf(what, sizeof what, "attribute '%s'", key);
    const char *saved = c->what;
    c->what = what;
    enum anml_status st = conv_value(c, val, &attrs[i].value);
    c->what = saved;
    return st;
}

/* Converts a map<string, Value> field of any of the four generated entry types. */
#define CONV_ATTRS(c, map, n_entries, entries, out_n, out_attrs)                         \
  do {                                                                                   \
    enum anml_status st_ = count32((c), (n_entries), (map), &(out_n));                   \
    bool ok_ = true;                                                                     \
    if (st_ != ANML_OK) {                                                                \
      return st_;                                                                        \
    }                                                                                    \
    (out_attrs) = arr((c), (n_entries), sizeof(struct mil_attr), &ok_);                  \
    if (!ok_) {                                                                          \
      return nomem(c);                                                                   \
    }                                                                                    \
    for (size_t i_ = 0; i_ < (n_entries); i_++) {                                        \
      st_ = conv_attr((c), (map), (entries)[i_]->key, (entries)[i_]->value, (out_attrs), \
                      (int32_t)i_);                                                      \
      if (st_ != ANML_OK) {                                                              \
        return st_;                                                                      \
      }                                                                                  \
    }                                                                                    \
  } while (0)

static enum anml_status conv_named_types(struct pb_ctx *c, const char *field, size_t n,
                                         MIL(NamedValueType) * *src, int32_t *out_n,
                                         struct mil_named_type **out) {
    enum anml_status st = count32(c, n, field, out_n);
    if (st != ANML_OK) {
        return st;
    }
    bool ok = true;
    struct mil_named_type *nt = arr(c, n, sizeof *nt, &ok);
    if (!ok) {
        return nomem(c);
    }
    *out = nt;
    for (size_t i = 0; i < n; i++) {
        if (!src[i]->name[0]) {
            return fail(c, "%s entry %zu has an empty name", field, i);
        }
        if (!src[i]->type) {
            return fail(c, "%s '%s' has no type", field, src[i]->name);
        }
        nt[i].name = dup_str(c, src[i]->name);
        if (!nt[i].name) {
            return nomem(c);
        }
        st = conv_type(c, src[i]->type, &nt[i].type);
        if (st != ANML_OK) {
            return st;
        }
    }
    return ANML_OK;
}

/* ---- blocks and operations ---- */

static enum anml_status conv_block(struct pb_ctx *c, const MIL(Block) * pb, struct mil_block *b);

/* The op's `name` attribute when it is a string, else its first result, for messages. */
static const char *op_label(const MIL(Operation) * po) {
    for (size_t i = 0; i < po->n_attributes; i++) {
        const MIL(Value) *v = po->attributes[i]->value;
        if (strcmp(po->attributes[i]->key, "name") == 0 && v &&
            v->value_case == MIL_K(VALUE__VALUE_IMMEDIATE_VALUE) &&
            v->immediatevalue->value_case == MIL_K(VALUE__IMMEDIATE_VALUE__VALUE_TENSOR) &&
            v->immediatevalue->tensor->value_case == MIL_K(TENSOR_VALUE__VALUE_STRINGS) &&
            v->immediatevalue->tensor->strings->n_values > 0) {
            return v->immediatevalue->tensor->strings->values[0];
        }
    }
    return po->n_outputs > 0 ? po->outputs[0]->name : NULL;
}

static enum anml_status conv_arg(struct pb_ctx *c, const char *key, const MIL(Argument) * pa,
                                 struct mil_arg *args, int32_t i) {
    if (!key[0]) {
        return fail(c, "Operation.inputs has an entry with an empty key");
    }
    for (int32_t j = 0; j < i; j++) {
        if (strcmp(args[j].name, key) == 0) {
            return fail(c, "Operation.inputs has the parameter '%s' twice", key);
        }
    }
    if (!pa || pa->n_arguments == 0) {
        return fail(c, "parameter '%s' has no bindings", key);
    }
    struct mil_arg *arg = &args[i];
    arg->name = dup_str(c, key);
    if (!arg->name) {
        return nomem(c);
    }
    enum anml_status st = count32(c, pa->n_arguments, "Argument.arguments", &arg->n_bindings);
    if (st != ANML_OK) {
        return st;
    }
    bool ok = true;
    arg->bindings = arr(c, pa->n_arguments, sizeof *arg->bindings, &ok);
    if (!ok) {
        return nomem(c);
    }
    char what[192];
    snprintf(what, sizeof what, "parameter '%s'", key);
    const char *saved = c->what;
    c->what = what;
    for (size_t k = 0; k < pa->n_arguments && st == ANML_OK; k++) {
        const MIL(Argument__Binding) *pbnd = pa->arguments[k];
        switch (pbnd->binding_case) {
        case MIL_K(ARGUMENT__BINDING__BINDING_NAME):
            if (!pbnd->name[0]) {
                st = fail(c, "binding %zu names an empty value", k);
                break;
            }
            arg->bindings[k].name = dup_str(c, pbnd->name);
            st = arg->bindings[k].name ? ANML_OK : nomem(c);
            break;
        case MIL_K(ARGUMENT__BINDING__BINDING_VALUE):
            st = conv_value(c, pbnd->value, &arg->bindings[k].value);
            break;
        default: st = fail(c, "binding %zu has neither name nor value", k); break;
        }
    }
    c->what = saved;
    return st;
}

static enum anml_status conv_op_inner(struct pb_ctx *c, const MIL(Operation) * po,
                                      struct mil_op *op) {
    if (!po->type[0]) {
        return fail(c, "Operation.type is empty");
    }
    op->type = dup_str(c, po->type);
    if (!op->type) {
        return nomem(c);
    }
    enum anml_status st = count32(c, po->n_inputs, "Operation.inputs", &op->n_args);
    if (st != ANML_OK) {
        return st;
    }
    bool ok = true;
    op->args = arr(c, po->n_inputs, sizeof *op->args, &ok);
    if (!ok) {
        return nomem(c);
    }
    for (size_t i = 0; i < po->n_inputs; i++) {
        st = conv_arg(c, po->inputs[i]->key, po->inputs[i]->value, op->args, (int32_t)i);
        if (st != ANML_OK) {
            return st;
        }
    }
    st = conv_named_types(c, "Operation.outputs", po->n_outputs, po->outputs, &op->n_results,
                          &op->results);
    if (st != ANML_OK) {
        return st;
    }
    CONV_ATTRS(c, "Operation.attributes", po->n_attributes, po->attributes, op->n_attrs, op->attrs);
    st = count32(c, po->n_blocks, "Operation.blocks", &op->n_blocks);
    if (st != ANML_OK) {
        return st;
    }
    op->blocks = arr(c, po->n_blocks, sizeof *op->blocks, &ok);
    if (!ok) {
        return nomem(c);
    }
    for (size_t i = 0; i < po->n_blocks; i++) {
        if (c->depth >= IR_MAX_DEPTH) {
            return fail(c, "types, values or blocks nested deeper than %d levels", IR_MAX_DEPTH);
        }
        c->depth++;
        st = conv_block(c, po->blocks[i], &op->blocks[i]);
        c->depth--;
        if (st != ANML_OK) {
            return st;
        }
    }
    op->line = 0;
    op->col = 0;
    return ANML_OK;
}

static enum anml_status conv_op(struct pb_ctx *c, const MIL(Operation) * po, struct mil_op *op) {
    const char *saved_label = c->op_label;
    const char *saved_type = c->op_type;
    c->op_label = op_label(po);
    c->op_type = po->type;
    enum anml_status st = conv_op_inner(c, po, op);
    c->op_label = saved_label;
    c->op_type = saved_type;
    return st;
}

static enum anml_status conv_block(struct pb_ctx *c, const MIL(Block) * pb, struct mil_block *b) {
    enum anml_status st =
        conv_named_types(c, "Block.inputs", pb->n_inputs, pb->inputs, &b->n_inputs, &b->inputs);
    if (st != ANML_OK) {
        return st;
    }
    st = count32(c, pb->n_outputs, "Block.outputs", &b->n_outputs);
    if (st != ANML_OK) {
        return st;
    }
    bool ok = true;
    b->outputs = arr(c, pb->n_outputs, sizeof *b->outputs, &ok);
    if (!ok) {
        return nomem(c);
    }
    for (size_t i = 0; i < pb->n_outputs; i++) {
        if (!pb->outputs[i][0]) {
            return fail(c, "Block.outputs entry %zu is empty", i);
        }
        b->outputs[i] = dup_str(c, pb->outputs[i]);
        if (!b->outputs[i]) {
            return nomem(c);
        }
    }
    st = count32(c, pb->n_operations, "Block.operations", &b->n_ops);
    if (st != ANML_OK) {
        return st;
    }
    b->ops = arr(c, pb->n_operations, sizeof *b->ops, &ok);
    if (!ok) {
        return nomem(c);
    }
    for (size_t i = 0; i < pb->n_operations; i++) {
        st = conv_op(c, pb->operations[i], &b->ops[i]);
        if (st != ANML_OK) {
            return st;
        }
    }
    CONV_ATTRS(c, "Block.attributes", pb->n_attributes, pb->attributes, b->n_attrs, b->attrs);
    return ANML_OK;
}

/* ---- functions and program ---- */

static enum anml_status conv_function(struct pb_ctx *c, const char *name, const MIL(Function) * pf,
                                      struct mil_function *fn) {
    fn->name = dup_str(c, name);
    if (!fn->name) {
        return nomem(c);
    }
    enum anml_status st = conv_named_types(c, "Function.inputs", pf->n_inputs, pf->inputs,
                                           &fn->n_inputs, &fn->inputs);
    if (st != ANML_OK) {
        return st;
    }
    if (!pf->opset[0]) {
        return fail(c, "Function.opset is empty");
    }
    fn->opset = anml__mil_opset_from_tag(pf->opset);
    if (fn->opset == 0) {
        return anml__err(c->err, ANML_E_UNSUPPORTED, c->file,
                         "function '%s': opset '%s' is not supported (known: CoreML5..CoreML9)",
                         name, pf->opset);
    }
    CONV_ATTRS(c, "Function.attributes", pf->n_attributes, pf->attributes, fn->n_attrs, fn->attrs);
    const MIL(Block) *block = NULL;
    for (size_t i = 0; i < pf->n_block_specializations; i++) {
        if (strcmp(pf->block_specializations[i]->key, pf->opset) == 0) {
            block = pf->block_specializations[i]->value;
        }
    }
    if (!block) {
        return fail(c, "Function.block_specializations has no block for its opset '%s'", pf->opset);
    }
    return conv_block(c, block, &fn->block);
}

static enum anml_status conv_program(struct pb_ctx *c, const MIL(Program) * pp) {
    struct mil_program *prog = c->prog;
    CONV_ATTRS(c, "Program.attributes", pp->n_attributes, pp->attributes, prog->n_attrs,
               prog->attrs);
    if (pp->n_functions == 0) {
        return fail(c, "Program has no functions");
    }
    enum anml_status st = count32(c, pp->n_functions, "Program.functions", &prog->n_functions);
    if (st != ANML_OK) {
        return st;
    }
    bool ok = true;
    prog->functions = arr(c, pp->n_functions, sizeof *prog->functions, &ok);
    if (!ok) {
        return nomem(c);
    }
    for (size_t i = 0; i < pp->n_functions; i++) {
        const char *name = pp->functions[i]->key;
        if (!name[0]) {
            return fail(c, "Program.functions has an entry with an empty name");
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(pp->functions[j]->key, name) == 0) {
                return fail(c, "Program.functions has the function '%s' twice", name);
            }
        }
        if (!pp->functions[i]->value) {
            return fail(c, "Program.functions['%s'] has no value", name);
        }
        c->fn_name = name;
        st = conv_function(c, name, pp->functions[i]->value, &prog->functions[i]);
        c->fn_name = NULL;
        if (st != ANML_OK) {
            return st;
        }
    }
    return ANML_OK;
}

/* ---- model description ---- */

static enum anml_status conv_array_feature(struct pb_ctx *c, const SPEC(ArrayFeatureType) * at,
                                           struct mil_feature *f) {
    switch ((int)at->datatype) {
    case 0: f->dtype = ANML_DTYPE_INVALID; break;
    case 65552: f->dtype = ANML_DTYPE_F16; break;
    case 65568: f->dtype = ANML_DTYPE_F32; break;
    case 65600: f->dtype = ANML_DTYPE_F64; break;
    case 131104: f->dtype = ANML_DTYPE_INT32; break;
    case 131080: f->dtype = ANML_DTYPE_INT8; break;
    default:
        return fail(c, "ArrayFeatureType.dataType %d is not a known ArrayDataType",
                    (int)at->datatype);
    }
    bool ok = true;
    const SPEC(ArrayFeatureType__EnumeratedShapes) *es =
        at->shape_flexibility_case ==
                SPEC_K(ARRAY_FEATURE_TYPE__SHAPE_FLEXIBILITY_ENUMERATED_SHAPES)
            ? at->enumeratedshapes
            : NULL;
    const SPEC(ArrayFeatureType__ShapeRange) *sr =
        at->shape_flexibility_case == SPEC_K(ARRAY_FEATURE_TYPE__SHAPE_FLEXIBILITY_SHAPE_RANGE)
            ? at->shaperange
            : NULL;
    /* The default shape: the explicit one, else the first enumerated shape, else the range's
     * lower bounds -- the rule metadata.json's "shape" follows, so both readers agree. */
    size_t rank = at->n_shape;
    const int64_t *shape = at->shape;
    if (rank == 0 && es && es->n_shapes > 0) {
        rank = es->shapes[0]->n_shape;
        shape = es->shapes[0]->shape;
    } else if (rank == 0 && sr) {
        rank = sr->n_sizeranges;
        shape = NULL;
    }
    enum anml_status st = count32(c, rank, "ArrayFeatureType.shape", &f->rank);
    if (st != ANML_OK) {
        return st;
    }
    f->shape = arr(c, rank, sizeof(int64_t), &ok);
    if (!ok) {
        return nomem(c);
    }
    for (size_t i = 0; i < rank; i++) {
        if (shape) {
            f->shape[i] = shape[i];
        } else if (sr->sizeranges[i]->lowerbound > (uint64_t)INT64_MAX) {
            return fail(c, "ShapeRange lower bound %llu is too large",
                        (unsigned long long)sr->sizeranges[i]->lowerbound);
        } else {
            f->shape[i] = (int64_t)sr->sizeranges[i]->lowerbound;
        }
        if (f->shape[i] < 0) {
            return fail(c, "ArrayFeatureType.shape dimension %zu is negative (%lld)", i,
                        (long long)f->shape[i]);
        }
    }
    if (es) {
        st = count32(c, es->n_shapes, "EnumeratedShapes.shapes", &f->n_enum_shapes);
        if (st != ANML_OK) {
            return st;
        }
        f->enum_shapes = arr(c, es->n_shapes, sizeof *f->enum_shapes, &ok);
        if (!ok) {
            return nomem(c);
        }
        for (size_t k = 0; k < es->n_shapes; k++) {
            const SPEC(ArrayFeatureType__Shape) *s = es->shapes[k];
            if (s->n_shape != rank) {
                return fail(c, "enumerated shape %zu has %zu dimensions, the feature has %zu", k,
                            s->n_shape, rank);
            }
            f->enum_shapes[k] = arr(c, rank, sizeof(int64_t), &ok);
            if (!ok) {
                return nomem(c);
            }
            for (size_t i = 0; i < rank; i++) {
                if (s->shape[i] < 0) {
                    return fail(c, "enumerated shape %zu has a negative dimension", k);
                }
                f->enum_shapes[k][i] = s->shape[i];
            }
        }
    }
    if (sr) {
        if (sr->n_sizeranges != rank) {
            return fail(c, "ShapeRange has %zu ranges, the feature has %zu dimensions",
                        sr->n_sizeranges, rank);
        }
        f->has_range = true;
        f->range_lo = arr(c, rank, sizeof(int64_t), &ok);
        f->range_hi = arr(c, rank, sizeof(int64_t), &ok);
        if (!ok) {
            return nomem(c);
        }
        for (size_t i = 0; i < rank; i++) {
            const SPEC(SizeRange) *r = sr->sizeranges[i];
            if (r->lowerbound > (uint64_t)INT64_MAX || r->upperbound < -1 ||
                (r->upperbound != -1 && r->upperbound < (int64_t)r->lowerbound)) {
                return fail(c, "ShapeRange %zu is invalid (%llu..%lld)", i,
                            (unsigned long long)r->lowerbound, (long long)r->upperbound);
            }
            f->range_lo[i] = (int64_t)r->lowerbound;
            f->range_hi[i] = r->upperbound;
        }
    }
    return ANML_OK;
}

static enum anml_status conv_feature(struct pb_ctx *c, const char *field,
                                     const SPEC(FeatureDescription) * fd, struct mil_feature *f) {
    if (!fd->name[0]) {
        return fail(c, "%s has a feature with an empty name", field);
    }
    f->name = dup_str(c, fd->name);
    f->short_description = dup_str(c, fd->shortdescription);
    if (!f->name || !f->short_description) {
        return nomem(c);
    }
    char what[192];
    snprintf(what, sizeof what, "feature '%s'", fd->name);
    const char *saved = c->what;
    c->what = what;
    enum anml_status st = ANML_OK;
    const SPEC(FeatureType) *ft = fd->type;
    if (!ft) {
        st = fail(c, "FeatureDescription has no type");
        goto done;
    }
    f->optional = ft->isoptional != 0;
    f->dtype = ANML_DTYPE_INVALID;
    switch (ft->type_case) {
    case SPEC_K(FEATURE_TYPE__TYPE_INT64_TYPE): f->kind = MIL_FEATURE_INT64; break;
    case SPEC_K(FEATURE_TYPE__TYPE_DOUBLE_TYPE): f->kind = MIL_FEATURE_DOUBLE; break;
    case SPEC_K(FEATURE_TYPE__TYPE_STRING_TYPE): f->kind = MIL_FEATURE_STRING; break;
    case SPEC_K(FEATURE_TYPE__TYPE_IMAGE_TYPE): f->kind = MIL_FEATURE_IMAGE; break;
    case SPEC_K(FEATURE_TYPE__TYPE_DICTIONARY_TYPE): f->kind = MIL_FEATURE_DICTIONARY; break;
    case SPEC_K(FEATURE_TYPE__TYPE_SEQUENCE_TYPE): f->kind = MIL_FEATURE_SEQUENCE; break;
    case SPEC_K(FEATURE_TYPE__TYPE_MULTI_ARRAY_TYPE):
        f->kind = MIL_FEATURE_MULTIARRAY;
        st = conv_array_feature(c, ft->multiarraytype, f);
        break;
    case SPEC_K(FEATURE_TYPE__TYPE_STATE_TYPE):
        f->kind = MIL_FEATURE_STATE;
        if (ft->statetype->type_case != SPEC_K(STATE_FEATURE_TYPE__TYPE_ARRAY_TYPE)) {
            st = fail(c, "StateFeatureType has no arrayType");
            break;
        }
        st = conv_array_feature(c, ft->statetype->arraytype, f);
        break;
    default: st = fail(c, "FeatureType has no type set"); break;
    }
done:
    c->what = saved;
    return st;
}

static enum anml_status conv_features(struct pb_ctx *c, const char *field, size_t n,
                                      SPEC(FeatureDescription) * *src, int32_t *out_n,
                                      struct mil_feature **out) {
    enum anml_status st = count32(c, n, field, out_n);
    if (st != ANML_OK) {
        return st;
    }
    bool ok = true;
    *out = arr(c, n, sizeof **out, &ok);
    if (!ok) {
        return nomem(c);
    }
    for (size_t i = 0; i < n; i++) {
        st = conv_feature(c, field, src[i], &(*out)[i]);
        if (st != ANML_OK) {
            return st;
        }
    }
    return ANML_OK;
}

static enum anml_status conv_metadata(struct pb_ctx *c, const SPEC(Metadata) * md) {
    struct mil_model_desc *d = &c->prog->desc;
    const char *src[4] = { md->shortdescription, md->author, md->license, md->versionstring };
    char **dst[4] = { &d->short_description, &d->author, &d->license, &d->version };
    for (int i = 0; i < 4; i++) {
        if (src[i] && src[i][0]) {
            *dst[i] = dup_str(c, src[i]);
            if (!*dst[i]) {
                return nomem(c);
            }
        }
    }
    enum anml_status st = count32(c, md->n_userdefined, "Metadata.userDefined", &d->n_user);
    if (st != ANML_OK) {
        return st;
    }
    bool ok = true;
    d->user_keys = arr(c, md->n_userdefined, sizeof(char *), &ok);
    d->user_values = arr(c, md->n_userdefined, sizeof(char *), &ok);
    if (!ok) {
        return nomem(c);
    }
    for (size_t i = 0; i < md->n_userdefined; i++) {
        d->user_keys[i] = dup_str(c, md->userdefined[i]->key);
        d->user_values[i] = dup_str(c, md->userdefined[i]->value);
        if (!d->user_keys[i] || !d->user_values[i]) {
            return nomem(c);
        }
    }
    return ANML_OK;
}

static enum anml_status conv_description(struct pb_ctx *c, const SPEC(ModelDescription) * md) {
    struct mil_program *prog = c->prog;
    struct mil_model_desc *d = &prog->desc;
    enum anml_status st;
    bool ok = true;
    if (md && (md->n_functions > 0 || md->defaultfunctionname[0])) {
        d->multifunction = true;
        st = count32(c, md->n_functions, "ModelDescription.functions", &d->n_functions);
        if (st != ANML_OK) {
            return st;
        }
        d->functions = arr(c, md->n_functions, sizeof *d->functions, &ok);
        if (!ok) {
            return nomem(c);
        }
        for (size_t i = 0; i < md->n_functions; i++) {
            const SPEC(FunctionDescription) *fd = md->functions[i];
            struct mil_function_desc *f = &d->functions[i];
            if (!anml__mil_find_function(prog, fd->name)) {
                return fail(c, "FunctionDescription '%s' names no function of the program",
                            fd->name);
            }
            for (size_t j = 0; j < i; j++) {
                if (strcmp(md->functions[j]->name, fd->name) == 0) {
                    return fail(c, "ModelDescription.functions describes '%s' twice", fd->name);
                }
            }
            f->name = dup_str(c, fd->name);
            if (!f->name) {
                return nomem(c);
            }
            c->fn_name = fd->name;
            st = conv_features(c, "FunctionDescription.input", fd->n_input, fd->input, &f->n_inputs,
                               &f->inputs);
            if (st == ANML_OK) {
                st = conv_features(c, "FunctionDescription.output", fd->n_output, fd->output,
                                   &f->n_outputs, &f->outputs);
            }
            if (st == ANML_OK) {
                st = conv_features(c, "FunctionDescription.state", fd->n_state, fd->state,
                                   &f->n_states, &f->states);
            }
            c->fn_name = NULL;
            if (st != ANML_OK) {
                return st;
            }
        }
        if (md->defaultfunctionname[0]) {
            if (!anml__mil_find_function(prog, md->defaultfunctionname)) {
                return fail(c, "defaultFunctionName '%s' names no function of the program",
                            md->defaultfunctionname);
            }
            d->default_function = dup_str(c, md->defaultfunctionname);
            if (!d->default_function) {
                return nomem(c);
            }
        }
    } else {
        /* single-function description: one entry named after the program's function */
        d->multifunction = false;
        d->n_functions = 1;
        d->functions = arr(c, 1, sizeof *d->functions, &ok);
        if (!ok) {
            return nomem(c);
        }
        struct mil_function_desc *f = &d->functions[0];
        f->name = dup_str(c, anml__mil_default_function(prog));
        if (!f->name) {
            return nomem(c);
        }
        if (md) {
            st = conv_features(c, "ModelDescription.input", md->n_input, md->input, &f->n_inputs,
                               &f->inputs);
            if (st == ANML_OK) {
                st = conv_features(c, "ModelDescription.output", md->n_output, md->output,
                                   &f->n_outputs, &f->outputs);
            }
            if (st == ANML_OK) {
                st = conv_features(c, "ModelDescription.state", md->n_state, md->state,
                                   &f->n_states, &f->states);
            }
            if (st != ANML_OK) {
                return st;
            }
        }
    }
    return md && md->metadata ? conv_metadata(c, md->metadata) : ANML_OK;
}

/* ---- Model ---- */

static const struct {
    uint32_t field;
    const char *name;
} k_model_types[] = {
    { 200, "pipelineClassifier" },
    { 201, "pipelineRegressor" },
    { 202, "pipeline" },
    { 300, "glmRegressor" },
    { 301, "supportVectorRegressor" },
    { 302, "treeEnsembleRegressor" },
    { 303, "neuralNetworkRegressor" },
    { 304, "bayesianProbitRegressor" },
    { 400, "glmClassifier" },
    { 401, "supportVectorClassifier" },
    { 402, "treeEnsembleClassifier" },
    { 403, "neuralNetworkClassifier" },
    { 404, "kNearestNeighborsClassifier" },
    { 500, "neuralNetwork" },
    { 501, "itemSimilarityRecommender" },
    { 555, "customModel" },
    { 556, "linkedModel" },
    { 560, "classConfidenceThresholding" },
    { 600, "oneHotEncoder" },
    { 601, "imputer" },
    { 602, "featureVectorizer" },
    { 603, "dictVectorizer" },
    { 604, "scaler" },
    { 606, "categoricalMapping" },
    { 607, "normalizer" },
    { 609, "arrayFeatureExtractor" },
    { 610, "nonMaximumSuppression" },
    { 900, "identity" },
    { 2000, "textClassifier" },
    { 2001, "wordTagger" },
    { 2002, "visionFeaturePrint" },
    { 2003, "soundAnalysisPreprocessing" },
    { 2004, "gazetteer" },
    { 2005, "wordEmbedding" },
    { 2006, "audioFeaturePrint" },
    { 3000, "serializedModel" },
};

/* Model.Type is a oneof of fields 200..3000 of which we declare only mlProgram (502); another
 * type shows up among the unknown fields, so the error can name it. */
static enum anml_status reject_model_type(struct pb_ctx *c, const SPEC(Model) * m) {
    for (unsigned i = 0; i < m->base.n_unknown_fields; i++) {
        uint32_t tag = m->base.unknown_fields[i].tag;
        if (tag < 200) {
            continue;
        }
        const char *name = "unknown";
        for (size_t k = 0; k < sizeof k_model_types / sizeof k_model_types[0]; k++) {
            if (k_model_types[k].field == tag) {
                name = k_model_types[k].name;
            }
        }
        return anml__err(c->err, ANML_E_UNSUPPORTED, c->file,
                         "model type %u (%s) is not an ML Program (mlProgram, 502); only ML "
                         "Programs are supported",
                         (unsigned)tag, name);
    }
    return fail(c, "Model has no model type (no mlProgram, field 502)");
}

enum anml_status anml__mlpackage_parse_model(struct mil_program *prog, const uint8_t *data,
                                             size_t len, const char *filename,
                                             struct anml_error *err) {
    const char *file = filename ? filename : "model.mlmodel";
    if (len > 0 && !data) {
        return anml__err(err, ANML_E_INVALID_ARG, file, "no data");
    }
    struct wire_walk *w = anml__calloc(1, sizeof *w);
    if (!w) {
        return anml__err(err, ANML_E_NOMEM, file, "out of memory");
    }
    w->buf = data;
    w->file = file;
    w->err = err;
    w->root = &core_ml__specification__model__descriptor;
    enum anml_status st = wire_check(w, w->root, 0, len);
    anml__free(w);
    if (st != ANML_OK) {
        return st;
    }

    struct pb_alloc_state as = { false };
    ProtobufCAllocator allocator = { pb_alloc, pb_free, &as };
    SPEC(Model) *m = core_ml__specification__model__unpack(&allocator, len, data);
    if (!m) {
        return as.failed ? anml__err(err, ANML_E_NOMEM, file, "out of memory decoding Model")
                         : anml__err(err, ANML_E_FORMAT, file,
                                     "protobuf-c could not decode the Model message");
    }
    struct pb_ctx c = { .prog = prog, .a = prog->arena, .file = file, .err = err };
    prog->format = MIL_FORMAT_MLPACKAGE;
    prog->spec_version = m->specificationversion;
    if (m->type_case != SPEC_K(MODEL__TYPE_ML_PROGRAM)) {
        st = reject_model_type(&c, m);
    } else {
        st = conv_program(&c, m->mlprogram);
        if (st == ANML_OK) {
            st = conv_description(&c, m->description);
        }
    }
    core_ml__specification__model__free_unpacked(m, &allocator);
    return st;
}

/* ---- Manifest.json ---- */

/* Parses "MAJOR.MINOR.PATCH" (missing trailing parts count as 0). */
static bool parse_version(const char *s, long long v[3]) {
    v[0] = v[1] = v[2] = 0;
    const char *p = s;
    for (int i = 0; i < 3; i++) {
        if (*p < '0' || *p > '9') {
            return false;
        }
        char *end;
        v[i] = strtoll(p, &end, 10);
        if (end == p || v[i] < 0 || v[i] == LLONG_MAX) {
            return false;
        }
        p = end;
        if (*p == '\0') {
            return true;
        }
        if (*p != '.' || i == 2) {
            return false;
        }
        p++;
    }
    return false;
}

/* An item path must stay inside Data/: relative, no ".." component. */
static bool safe_rel_path(const char *p) {
    if (!p[0] || p[0] == '/') {
        return false;
    }
    for (const char *s = p; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 2 && s[0] == '.' && s[1] == '.') {
            return false;
        }
        s += n;
        if (*s == '/') {
            s++;
        }
    }
    return true;
}

static void json_where(char *buf, size_t cap, const char *path, const char *text, const char *at) {
    int line = 1, col = 1;
    for (const char *p = text; p < at; p++) {
        if (*p == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    snprintf(buf, cap, "%s:%d:%d", path, line, col);
}

/* Reads Manifest.json and returns the root model item's path relative to Data/ (arena copy). */
static enum anml_status read_manifest(struct mil_program *prog, const char *manifest_path,
                                      const char *text, size_t len, char **rel_out,
                                      struct anml_error *err) {
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (!root) {
        char where[256];
        json_where(where, sizeof where, manifest_path, text, end ? end : text);
        return anml__err(err, ANML_E_FORMAT, where, "Manifest.json is not valid JSON");
    }
    enum anml_status st = ANML_OK;
    long long v[3];
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(root, "fileFormatVersion");
    const cJSON *rid = cJSON_GetObjectItemCaseSensitive(root, "rootModelIdentifier");
    const cJSON *items = cJSON_GetObjectItemCaseSensitive(root, "itemInfoEntries");
    const cJSON *item = NULL;
    const cJSON *path = NULL;
    if (!cJSON_IsObject(root)) {
        st = anml__err(err, ANML_E_FORMAT, manifest_path, "Manifest.json is not a JSON object");
    } else if (!cJSON_IsString(ver) || !parse_version(ver->valuestring, v)) {
        st = anml__err(err, ANML_E_FORMAT, manifest_path,
                       "Manifest.json fileFormatVersion is missing or not a \"X.Y.Z\" string");
    } else if (v[0] > MANIFEST_MAJOR ||
               (v[0] == MANIFEST_MAJOR &&
                (v[1] > MANIFEST_MINOR || (v[1] == MANIFEST_MINOR && v[2] > MANIFEST_PATCH)))) {
        st = anml__err(err, ANML_E_UNSUPPORTED, manifest_path,
                       "Manifest.json fileFormatVersion %s is newer than %d.%d.%d, the newest "
                       "this reader supports",
                       ver->valuestring, MANIFEST_MAJOR, MANIFEST_MINOR, MANIFEST_PATCH);
    } else if (!cJSON_IsString(rid) || !rid->valuestring[0]) {
        st = anml__err(err, ANML_E_FORMAT, manifest_path,
                       "Manifest.json rootModelIdentifier is missing or not a string");
    } else if (!cJSON_IsObject(items)) {
        st = anml__err(err, ANML_E_FORMAT, manifest_path,
                       "Manifest.json itemInfoEntries is missing or not an object");
    } else if (!(item = cJSON_GetObjectItemCaseSensitive(items, rid->valuestring)) ||
               !cJSON_IsObject(item)) {
        st = anml__err(err, ANML_E_FORMAT, manifest_path,
                       "Manifest.json rootModelIdentifier '%s' has no entry in itemInfoEntries",
                       rid->valuestring);
    } else if (!cJSON_IsString(path = cJSON_GetObjectItemCaseSensitive(item, "path"))) {
        st = anml__err(err, ANML_E_FORMAT, manifest_path,
                       "Manifest.json item '%s' has no \"path\" string", rid->valuestring);
    } else if (!safe_rel_path(path->valuestring)) {
        st = anml__err(err, ANML_E_FORMAT, manifest_path,
                       "Manifest.json item path '%s' is absolute or leaves the Data directory",
                       path->valuestring);
    } else {
        *rel_out = anml__arena_strdup(prog->arena, path->valuestring);
        if (!*rel_out) {
            st = anml__err(err, ANML_E_NOMEM, manifest_path, "out of memory");
        }
    }
    cJSON_Delete(root);
    return st;
}

enum anml_status anml__mlpackage_load(struct mil_program *prog, const char *dir,
                                      struct anml_error *err) {
    char *manifest_path = anml__path_join(dir, "Manifest.json");
    char *data_dir = anml__path_join(dir, "Data");
    char *model_path = NULL;
    char *text = NULL;
    size_t len = 0;
    char *rel = NULL;
    enum anml_status st;
    if (!manifest_path || !data_dir) {
        st = anml__err(err, ANML_E_NOMEM, dir, "out of memory");
        goto done;
    }
    st = anml__read_file(manifest_path, &text, &len, err);
    if (st != ANML_OK) {
        goto done;
    }
    st = read_manifest(prog, manifest_path, text, len, &rel, err);
    anml__free(text);
    text = NULL;
    if (st != ANML_OK) {
        goto done;
    }
    model_path = anml__path_join(data_dir, rel);
    if (!model_path) {
        st = anml__err(err, ANML_E_NOMEM, dir, "out of memory");
        goto done;
    }
    /* @model_path is the directory holding model.mlmodel (Data/com.apple.CoreML) */
    const char *slash = strrchr(model_path, '/');
    prog->model_dir = anml__arena_strndup(prog->arena, model_path, (size_t)(slash - model_path));
    if (!prog->model_dir) {
        st = anml__err(err, ANML_E_NOMEM, dir, "out of memory");
        goto done;
    }
    prog->format = MIL_FORMAT_MLPACKAGE;
    st = anml__read_file(model_path, &text, &len, err);
    if (st != ANML_OK) {
        goto done;
    }
    st = anml__mlpackage_parse_model(prog, (const uint8_t *)text, len, model_path, err);
done:
    anml__free(text);
    anml__free(model_path);
    anml__free(data_dir);
    anml__free(manifest_path);
    return st;
}
