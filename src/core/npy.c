/*
 * npy.c -- NumPy .npy files (format versions 1.0, 2.0 and 3.0): a strict header parser that
 * works on memory, file read/write helpers, and the public anml_npy_read/anml_npy_write.
 *
 * Accepted: little-endian or byte-order-free descrs <f2 <f4 <f8 <i1 |i1 <i2 <i4 <i8 |u1 <u1 <u2
 * <u4 <u8 |b1, fortran_order False, shapes of rank 0..ANML_MAX_DIMS. The header dict must hold
 * exactly the keys descr, fortran_order and shape; the data must be exactly prod(shape) elements.
 * Files are written as version 1.0 with the header padded so that the data starts at a multiple
 * of 64 bytes, as NumPy does.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"

static const uint8_t k_magic[6] = { 0x93, 'N', 'U', 'M', 'P', 'Y' };

struct npy_descr {
    const char *descr;
    enum anml_dtype dtype;
};

/* The first entry for a dtype is what the writer uses. */
static const struct npy_descr k_descrs[] = {
    { "<f2", ANML_DTYPE_F16 },    { "<f4", ANML_DTYPE_F32 },    { "<f8", ANML_DTYPE_F64 },
    { "|i1", ANML_DTYPE_INT8 },   { "<i1", ANML_DTYPE_INT8 },   { "<i2", ANML_DTYPE_INT16 },
    { "<i4", ANML_DTYPE_INT32 },  { "<i8", ANML_DTYPE_INT64 },  { "|u1", ANML_DTYPE_UINT8 },
    { "<u1", ANML_DTYPE_UINT8 },  { "<u2", ANML_DTYPE_UINT16 }, { "<u4", ANML_DTYPE_UINT32 },
    { "<u8", ANML_DTYPE_UINT64 }, { "|b1", ANML_DTYPE_BOOL },
};

/* ---- header dict parser ---- */

struct npy_lex {
    const char *p, *end;
    const char *name;
    const char *base; /* start of the file, for offsets in messages */
    struct anml_error *err;
};

static enum anml_status npy_fail(struct npy_lex *lx, const char *fmt, ...) ANML_PRINTF(2, 3);
static enum anml_status npy_fail(struct npy_lex *lx, const char *fmt, ...) {
    char where[300];
    snprintf(where, sizeof where, "%s@0x%zx", lx->name, (size_t)(lx->p - lx->base));
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return anml__err(lx->err, ANML_E_FORMAT, where, "npy header: %s", msg);
}

static void npy_ws(struct npy_lex *lx) {
    while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t')) {
        lx->p++;
    }
}

static bool npy_accept(struct npy_lex *lx, char ch) {
    npy_ws(lx);
    if (lx->p < lx->end && *lx->p == ch) {
        lx->p++;
        return true;
    }
    return false;
}

/* A quoted string ('...' or "...") without escapes; returns a pointer/length into the header. */
static enum anml_status npy_string(struct npy_lex *lx, const char **s, size_t *n) {
    npy_ws(lx);
    if (lx->p >= lx->end || (*lx->p != '\'' && *lx->p != '"')) {
        return npy_fail(lx, "expected a quoted string");
    }
    char q = *lx->p++;
    const char *start = lx->p;
    while (lx->p < lx->end && *lx->p != q) {
        if (*lx->p == '\\' || (unsigned char)*lx->p < 0x20) {
            return npy_fail(lx, "unsupported character in string");
        }
        lx->p++;
    }
    if (lx->p >= lx->end) {
        return npy_fail(lx, "unterminated string");
    }
    *s = start;
    *n = (size_t)(lx->p - start);
    lx->p++;
    return ANML_OK;
}

static bool npy_word(struct npy_lex *lx, const char *w) {
    npy_ws(lx);
    size_t n = strlen(w);
    if ((size_t)(lx->end - lx->p) >= n && memcmp(lx->p, w, n) == 0) {
        const char *after = lx->p + n;
        if (after == lx->end || !((*after >= 'a' && *after <= 'z') ||
                                  (*after >= 'A' && *after <= 'Z') || *after == '_')) {
            lx->p = after;
            return true;
        }
    }
    return false;
}

static enum anml_status npy_shape(struct npy_lex *lx, int32_t *rank, int64_t *dims) {
    if (!npy_accept(lx, '(')) {
        return npy_fail(lx, "shape: expected '('");
    }
    *rank = 0;
    for (;;) {
        if (npy_accept(lx, ')')) {
            return ANML_OK;
        }
        npy_ws(lx);
        if (lx->p >= lx->end || *lx->p < '0' || *lx->p > '9') {
            return npy_fail(lx, "shape: expected a non-negative integer or ')'");
        }
        int64_t v = 0;
        while (lx->p < lx->end && *lx->p >= '0' && *lx->p <= '9') {
            if (!anml__mul_i64(v, 10, &v) || __builtin_add_overflow(v, *lx->p - '0', &v)) {
                return npy_fail(lx, "shape: dimension too large");
            }
            lx->p++;
        }
        /* Python 2 longs ("3L") appear in old files. */
        if (lx->p < lx->end && *lx->p == 'L') {
            lx->p++;
        }
        if (*rank >= ANML_MAX_DIMS) {
            return npy_fail(lx, "shape: more than %d dimensions", ANML_MAX_DIMS);
        }
        dims[(*rank)++] = v;
        if (npy_accept(lx, ',')) {
            continue;
        }
        if (npy_accept(lx, ')')) {
            return ANML_OK;
        }
        return npy_fail(lx, "shape: expected ',' or ')'");
    }
}

static enum anml_status npy_dict(struct npy_lex *lx, enum anml_dtype *dtype, int32_t *rank,
                                 int64_t *dims) {
    bool have_descr = false, have_order = false, have_shape = false;
    if (!npy_accept(lx, '{')) {
        return npy_fail(lx, "expected '{'");
    }
    for (;;) {
        if (npy_accept(lx, '}')) {
            break;
        }
        const char *key;
        size_t klen;
        enum anml_status st = npy_string(lx, &key, &klen);
        if (st != ANML_OK) {
            return st;
        }
        if (!npy_accept(lx, ':')) {
            return npy_fail(lx, "expected ':' after key");
        }
        if (klen == 5 && memcmp(key, "descr", 5) == 0) {
            if (have_descr) {
                return npy_fail(lx, "duplicate key 'descr'");
            }
            have_descr = true;
            const char *d;
            size_t dlen;
            st = npy_string(lx, &d, &dlen);
            if (st != ANML_OK) {
                return st;
            }
            *dtype = ANML_DTYPE_INVALID;
            for (size_t i = 0; i < sizeof k_descrs / sizeof k_descrs[0]; i++) {
                if (strlen(k_descrs[i].descr) == dlen && memcmp(k_descrs[i].descr, d, dlen) == 0) {
                    *dtype = k_descrs[i].dtype;
                    break;
                }
            }
            if (*dtype == ANML_DTYPE_INVALID) {
                return npy_fail(lx,
                                "unsupported descr '%.*s' (supported: little-endian bool, "
                                "int, uint and float types)",
                                (int)(dlen > 32 ? 32 : dlen), d);
            }
        } else if (klen == 13 && memcmp(key, "fortran_order", 13) == 0) {
            if (have_order) {
                return npy_fail(lx, "duplicate key 'fortran_order'");
            }
            have_order = true;
            if (npy_word(lx, "True")) {
                return anml__err(lx->err, ANML_E_UNSUPPORTED, lx->name,
                                 "npy: fortran_order True (column-major) arrays are not "
                                 "supported; save with C order");
            }
            if (!npy_word(lx, "False")) {
                return npy_fail(lx, "fortran_order must be True or False");
            }
        } else if (klen == 5 && memcmp(key, "shape", 5) == 0) {
            if (have_shape) {
                return npy_fail(lx, "duplicate key 'shape'");
            }
            have_shape = true;
            st = npy_shape(lx, rank, dims);
            if (st != ANML_OK) {
                return st;
            }
        } else {
            return npy_fail(lx, "unexpected key '%.*s'", (int)(klen > 32 ? 32 : klen), key);
        }
        if (npy_accept(lx, ',')) {
            continue;
        }
        if (npy_accept(lx, '}')) {
            break;
        }
        return npy_fail(lx, "expected ',' or '}'");
    }
    if (!have_descr || !have_order || !have_shape) {
        return npy_fail(lx, "missing key '%s'",
                        !have_descr   ? "descr"
                        : !have_order ? "fortran_order"
                                      : "shape");
    }
    /* Only padding may follow: spaces, then a newline at the very end. */
    while (lx->p < lx->end && (*lx->p == ' ' || *lx->p == '\t' || *lx->p == '\n' ||
                               *lx->p == '\r' || *lx->p == '\0')) {
        lx->p++;
    }
    if (lx->p != lx->end) {
        return npy_fail(lx, "unexpected text after the header dict");
    }
    return ANML_OK;
}

enum anml_status anml__npy_parse(const uint8_t *buf, size_t len, const char *name,
                                 enum anml_dtype *dtype, int32_t *rank, int64_t *dims,
                                 size_t *data_offset, size_t *nbytes, struct anml_error *err) {
    if (!name) {
        name = "<npy>";
    }
    if (len < 10 || memcmp(buf, k_magic, 6) != 0) {
        return anml__err(err, ANML_E_FORMAT, name, "not a .npy file (bad magic)");
    }
    uint8_t major = buf[6];
    size_t hlen, hstart;
    if (major == 1) {
        hlen = (size_t)buf[8] | ((size_t)buf[9] << 8);
        hstart = 10;
    } else if (major == 2 || major == 3) {
        if (len < 12) {
            return anml__err(err, ANML_E_FORMAT, name, "truncated .npy header");
        }
        hlen = (size_t)anml__le32(buf + 8);
        hstart = 12;
    } else {
        return anml__err(err, ANML_E_UNSUPPORTED, name, ".npy format version %u.%u not supported",
                         (unsigned)major, (unsigned)buf[7]);
    }
    if (hlen > len - hstart) {
        return anml__err(err, ANML_E_FORMAT, name,
                         ".npy header length %zu runs past the end of the file (%zu bytes)", hlen,
                         len);
    }
    struct npy_lex lx = { (const char *)buf + hstart, (const char *)buf + hstart + hlen, name,
                          (const char *)buf, err };
    *dtype = ANML_DTYPE_INVALID;
    *rank = 0;
    enum anml_status st = npy_dict(&lx, dtype, rank, dims);
    if (st != ANML_OK) {
        return st;
    }
    int64_t numel;
    size_t need;
    if (!anml__shape_numel(dims, *rank, &numel) ||
        !anml__mul_size((size_t)numel, anml__dtype_size(*dtype), &need)) {
        return anml__err(err, ANML_E_FORMAT, name, ".npy shape too large");
    }
    size_t have = len - hstart - hlen;
    if (have != need) {
        return anml__err(err, ANML_E_FORMAT, name,
                         ".npy data is %zu bytes, but %s shape with %" PRId64 " elements needs %zu",
                         have, anml_dtype_name(*dtype), numel, need);
    }
    *data_offset = hstart + hlen;
    *nbytes = need;
    return ANML_OK;
}

enum anml_status anml__npy_read(const char *path, enum anml_dtype *dtype, int32_t *rank,
                                int64_t *dims, void **data, size_t *nbytes,
                                struct anml_error *err) {
    *data = NULL;
    char *buf = NULL;
    size_t len = 0;
    enum anml_status st = anml__read_file(path, &buf, &len, err);
    if (st != ANML_OK) {
        return st;
    }
    size_t off = 0;
    st = anml__npy_parse((const uint8_t *)buf, len, path, dtype, rank, dims, &off, nbytes, err);
    if (st == ANML_OK) {
        /* Move the data to the front so the caller gets one allocation to free. */
        memmove(buf, buf + off, *nbytes);
        *data = buf;
    } else {
        anml__free(buf);
    }
    return st;
}

/* The version-1.0 header of an array (magic, length, dict padded so that the data starts at a
 * multiple of 64) into hdr[0..*hdr_len), and the data's byte count. */
#define NPY_HEADER_MAX 576

static enum anml_status npy_header(enum anml_dtype dtype, int32_t rank, const int64_t *dims,
                                   const void *data, uint8_t *hdr, size_t *hdr_len,
                                   size_t *data_len, struct anml_error *err) {
    const char *descr = NULL;
    for (size_t i = 0; i < sizeof k_descrs / sizeof k_descrs[0]; i++) {
        if (k_descrs[i].dtype == dtype) {
            descr = k_descrs[i].descr;
            break;
        }
    }
    if (!descr) {
        return anml__err(err, ANML_E_UNSUPPORTED, "", "npy: cannot write %s arrays",
                         anml_dtype_name(dtype));
    }
    if (rank < 0 || rank > ANML_MAX_DIMS || (rank > 0 && !dims)) {
        return anml__err(err, ANML_E_INVALID_ARG, "", "npy: rank %d out of range", (int)rank);
    }
    int64_t numel;
    size_t nbytes;
    if (!anml__shape_numel(dims, rank, &numel) ||
        !anml__mul_size((size_t)numel, anml__dtype_size(dtype), &nbytes)) {
        return anml__err(err, ANML_E_INVALID_ARG, "", "npy: bad shape");
    }
    if (nbytes > 0 && !data) {
        return anml__err(err, ANML_E_INVALID_ARG, "", "npy: no data");
    }
    char dict[512];
    int n =
        snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int32_t k = 0; k < rank; k++) {
        n += snprintf(dict + n, sizeof dict - (size_t)n, "%s%" PRId64, k ? ", " : "", dims[k]);
    }
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%s), }", rank == 1 ? "," : "");
    /* Pad with spaces so that magic + len + header + '\n' is a multiple of 64. */
    size_t padded = (10 + (size_t)n + 1 + 63) & ~(size_t)63;
    size_t hlen = padded - 10;
    memcpy(hdr, k_magic, 6);
    hdr[6] = 1;
    hdr[7] = 0;
    hdr[8] = (uint8_t)(hlen & 0xff);
    hdr[9] = (uint8_t)(hlen >> 8);
    memcpy(hdr + 10, dict, (size_t)n);
    memset(hdr + 10 + n, ' ', hlen - (size_t)n - 1);
    hdr[padded - 1] = '\n';
    *hdr_len = padded;
    *data_len = nbytes;
    return ANML_OK;
}

enum anml_status anml__npy_encode(enum anml_dtype dtype, int32_t rank, const int64_t *dims,
                                  const void *data, uint8_t **out, size_t *out_len,
                                  struct anml_error *err) {
    *out = NULL;
    *out_len = 0;
    uint8_t hdr[NPY_HEADER_MAX];
    size_t hlen, nbytes, file_len;
    enum anml_status st = npy_header(dtype, rank, dims, data, hdr, &hlen, &nbytes, err);
    if (st != ANML_OK) {
        return st;
    }
    if (!anml__add_size(hlen, nbytes, &file_len)) {
        return anml__err(err, ANML_E_INVALID_ARG, "", "npy: too large");
    }
    uint8_t *buf = anml__malloc(file_len);
    if (!buf) {
        return anml__err(err, ANML_E_NOMEM, "", "out of memory");
    }
    memcpy(buf, hdr, hlen);
    if (nbytes) {
        memcpy(buf + hlen, data, nbytes);
    }
    *out = buf;
    *out_len = file_len;
    return ANML_OK;
}

/* Streams header and data to the file: no in-memory copy of a (possibly large) array. */
enum anml_status anml__npy_write(const char *path, enum anml_dtype dtype, int32_t rank,
                                 const int64_t *dims, const void *data, struct anml_error *err) {
    uint8_t hdr[NPY_HEADER_MAX];
    size_t hlen, nbytes;
    enum anml_status st = npy_header(dtype, rank, dims, data, hdr, &hlen, &nbytes, err);
    if (st != ANML_OK) {
        if (err) {
            snprintf(err->where, sizeof err->where, "%s", path);
        }
        return st;
    }
    FILE *f = fopen(path, "wb");
    if (!f) {
        return anml__err(err, ANML_E_IO, path, "cannot create the file");
    }
    bool ok =
        fwrite(hdr, 1, hlen, f) == hlen && (nbytes == 0 || fwrite(data, 1, nbytes, f) == nbytes);
    if (fclose(f) != 0 || !ok) {
        return anml__err(err, ANML_E_IO, path, "write failed");
    }
    return ANML_OK;
}

/* ---- public API ---- */

enum anml_status anml_npy_read(const char *path, struct anml_tensor *out, struct anml_error *err) {
    if (!path || !out) {
        return anml__err(err, ANML_E_INVALID_ARG, "", "anml_npy_read: NULL argument");
    }
    memset(out, 0, sizeof *out);
    size_t nbytes;
    void *data;
    enum anml_status st =
        anml__npy_read(path, &out->dtype, &out->rank, out->shape, &data, &nbytes, err);
    if (st == ANML_OK) {
        out->data = data;
    }
    return st;
}

enum anml_status anml_npy_write(const char *path, const struct anml_tensor *t,
                                struct anml_error *err) {
    if (!path || !t) {
        return anml__err(err, ANML_E_INVALID_ARG, "", "anml_npy_write: NULL argument");
    }
    return anml__npy_write(path, t->dtype, t->rank, t->shape, t->data, err);
}
