/*
 * blob.c -- the weight.bin reader (MIL blob storage v2, coreml-format.md §5) and the LSB-first
 * sub-byte packing shared by blobs, protobuf `bytes` values and constexpr ops (§5.4).
 */
#include "coreml/blob.h"

#include <string.h>

struct mil_blob_store {
    int unused;
};

struct mil_blob_store *anml__blob_store_new(const char *model_dir) {
    (void)model_dir;
    return anml__calloc(1, sizeof(struct mil_blob_store));
}

void anml__blob_store_free(struct mil_blob_store *s) {
    anml__free(s);
}

enum anml_status anml__mil_validate_blobs(struct mil_program *prog, struct anml_error *err) {
    (void)prog;
    (void)err;
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
