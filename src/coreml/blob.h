/*
 * blob.h -- weight.bin (MIL blob storage v2, coreml-format.md §5) over read-only mmaps, and the
 * LSB-first sub-byte packing shared by blobs, protobuf `bytes` values and constexpr ops.
 *
 * Every offset, size and element count is checked against the mapped file and the declared
 * tensor type before a pointer into the file is formed.
 */
#ifndef ANML_COREML_BLOB_H
#define ANML_COREML_BLOB_H

#include "coreml/program.h"

/* A validated view of one blob's data inside a mapped weight file. */
struct mil_blob_view {
    const char *file;       /* resolved path of the weight file (owned by the store) */
    uint64_t record_offset; /* offset of the 64-byte metadata record */
    uint64_t data_offset;   /* absolute offset of the data */
    enum anml_dtype dtype;
    const uint8_t *data; /* size_bytes bytes; packed LSB-first for sub-byte dtypes */
    uint64_t size_bytes;
    uint64_t padding_bits;
    int64_t n_elem; /* (size_bytes * 8 - padding_bits) / bits */
};

/* Checks the 64-byte file header of a weight file held in memory; returns its blob count. */
enum anml_status anml__blob_check_header(const uint8_t *file, size_t file_size, const char *name,
                                         uint32_t *count, struct anml_error *err);
/* Reads and validates the metadata record at `offset` of a weight file held in memory:
 * sentinel, known dtype code, data range inside the file, padding consistent with the dtype. */
enum anml_status anml__blob_parse_record(const uint8_t *file, size_t file_size, const char *name,
                                         uint64_t offset, struct mil_blob_view *out,
                                         struct anml_error *err);

/* The set of weight files a program references, each mapped once. */
struct mil_blob_store *anml__blob_store_new(const char *model_dir);
void anml__blob_store_free(struct mil_blob_store *s);
/* Resolves a MIL_VALUE_BLOB value: maps the file (path relative to @model_path; paths that
 * escape the model directory are rejected), parses the record and checks that its dtype and
 * element count equal the value's declared type. Errors name the file, offset and reason. */
enum anml_status anml__blob_resolve(struct mil_blob_store *s, const struct mil_value *v,
                                    struct mil_blob_view *out, struct anml_error *err);
/* Resolves every blob value in the program (const vals, literal arguments, attributes), so that
 * later reads cannot fail. Errors name the op (its `name` attribute or result) too. */
enum anml_status anml__mil_validate_blobs(struct mil_program *prog, struct anml_error *err);

/* Encoders for weight files (writer.c): the 64-byte file header of a storage-v2 file holding
 * `count` blobs, and the 64-byte metadata record of one blob whose data starts at the absolute
 * file offset data_offset. */
void anml__blob_encode_header(uint8_t hdr[64], uint32_t count);
void anml__blob_encode_record(uint8_t rec[64], enum anml_dtype dt, uint64_t size_bytes,
                              uint64_t data_offset, uint64_t padding_bits);

/* ---- sub-byte packing (LSB-first bit stream, §5.4) ---- */
/* Element i of a packed stream of `bits`-wide unsigned elements. */
static inline uint32_t anml__subbyte_get(const uint8_t *packed, int bits, int64_t i) {
    uint64_t bit = (uint64_t)i * (uint64_t)bits;
    const uint8_t *p = packed + (bit >> 3);
    unsigned shift = (unsigned)(bit & 7);
    uint32_t v = p[0] >> shift;
    if (shift + (unsigned)bits > 8) {
        v |= (uint32_t)p[1] << (8 - shift);
    }
    return v & ((1u << bits) - 1);
}
/* Unpacks n elements of a sub-byte dtype into one byte each (int4 sign-extended). */
void anml__subbyte_unpack(enum anml_dtype dt, const uint8_t *packed, int64_t n, uint8_t *dst);
/* Packs n one-byte elements; writes ceil(n*bits/8) bytes and returns that count. */
size_t anml__subbyte_pack(enum anml_dtype dt, const uint8_t *src, int64_t n, uint8_t *dst);

#endif /* ANML_COREML_BLOB_H */
