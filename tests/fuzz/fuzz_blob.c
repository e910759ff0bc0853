/*
 * fuzz_blob.c -- the weight.bin reader on arbitrary bytes: header check, then every record as
 * coreml-format.md §5.3 enumerates them (next = align_up(data offset + size, 64)), touching all
 * data bytes, unpacking and re-packing a bounded number of sub-byte elements (the round trip must
 * reproduce the stream), and decoding a LUT built from the first two records when they fit
 * together. The same bytes also go to the .npy header parser.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "coreml/blob.h"
#include "coreml/constexpr.h"

#define MAX_RECORDS 4096
#define MAX_UNPACK  4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile uint64_t g_sink;

static void check_subbyte(const struct mil_blob_view *v) {
    int bits = anml_dtype_bits(v->dtype);
    int64_t n = v->n_elem < MAX_UNPACK ? v->n_elem : MAX_UNPACK;
    static uint8_t un[MAX_UNPACK], re[MAX_UNPACK];
    anml__subbyte_unpack(v->dtype, v->data, n, un);
    size_t nb = anml__subbyte_pack(v->dtype, un, n, re);
    if (nb != (size_t)(((uint64_t)n * (uint64_t)bits + 7) / 8) || nb > v->size_bytes) {
        abort();
    }
    /* Every whole byte must come back unchanged; in the last byte only the used bits. */
    uint64_t used_bits = (uint64_t)n * (uint64_t)bits;
    for (size_t i = 0; i < nb; i++) {
        uint8_t mask = 0xff;
        if (i == nb - 1 && used_bits % 8) {
            mask = (uint8_t)((1u << (used_bits % 8)) - 1);
        }
        if ((re[i] & mask) != (v->data[i] & mask)) {
            abort();
        }
    }
    for (int64_t i = 0; i < n; i++) {
        uint32_t g = anml__subbyte_get(v->data, bits, i);
        uint8_t want = (uint8_t)g;
        if (v->dtype == ANML_DTYPE_INT4 && g >= 8) {
            want = (uint8_t)(g | 0xf0u);
        }
        if (un[i] != want) {
            abort();
        }
    }
}

/* indices = record a (uint1..uint8, rank 1), lut = record b (fp16/fp32/int8/uint8) split into
 * tables of 2^bits entries: decode a bounded run. */
static void try_lut(const struct mil_blob_view *a, const struct mil_blob_view *b) {
    int bits = anml_dtype_bits(a->dtype);
    bool idx_ok = anml__dtype_is_subbyte(a->dtype) ? a->dtype != ANML_DTYPE_INT4
                                                   : a->dtype == ANML_DTYPE_UINT8;
    bool lut_ok = b->dtype == ANML_DTYPE_F16 || b->dtype == ANML_DTYPE_F32 ||
                  b->dtype == ANML_DTYPE_INT8 || b->dtype == ANML_DTYPE_UINT8;
    if (!idx_ok || !lut_ok || a->n_elem == 0) {
        return;
    }
    int64_t entries = (int64_t)1 << bits;
    if (b->n_elem < entries || b->n_elem % entries != 0) {
        return;
    }
    int64_t tables = b->n_elem / entries;
    if (a->n_elem % tables != 0) {
        return;
    }
    struct anml_lut_weight w;
    memset(&w, 0, sizeof w);
    w.out_dtype = w.lut_dtype = b->dtype;
    w.rank = 1;
    w.shape[0] = w.idx_shape[0] = w.numel = a->n_elem;
    w.index_bits = bits;
    w.indices = a->data;
    w.indices_packed = true;
    w.lut = b->data;
    w.lut_shape[0] = w.n_tables = tables;
    w.n_entries = entries;
    w.vector_size = 1;
    w.vector_axis = -1;
    w.group[0] = a->n_elem / tables;
    static float out[MAX_UNPACK];
    int64_t first = a->n_elem > MAX_UNPACK ? a->n_elem - MAX_UNPACK : 0;
    anml__lut_decode_f32(&w, first, a->n_elem - first, out);
    uint32_t bits0;
    memcpy(&bits0, &out[0], sizeof bits0); /* decoded values may be NaN: keep the bits */
    g_sink += bits0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint32_t count = 0;
    struct anml_error err;
    if (anml__blob_check_header(data, size, "fuzz.bin", &count, &err) == ANML_OK) {
        uint64_t off = 64;
        struct mil_blob_view first[2];
        int n_first = 0;
        for (uint32_t i = 0; i < count && i < MAX_RECORDS; i++) {
            struct mil_blob_view v;
            if (anml__blob_parse_record(data, size, "fuzz.bin", off, &v, &err) != ANML_OK) {
                break;
            }
            uint64_t sum = 0;
            for (uint64_t j = 0; j < v.size_bytes; j++) {
                sum += v.data[j];
            }
            g_sink += sum;
            if (anml__dtype_is_subbyte(v.dtype)) {
                check_subbyte(&v);
            }
            if (n_first < 2) {
                first[n_first++] = v;
            }
            uint64_t end, next;
            if (!anml__add_u64(v.data_offset, v.size_bytes, &end) ||
                !anml__add_u64(end, 63, &next)) {
                break;
            }
            next &= ~(uint64_t)63;
            if (next <= off) {
                break; /* data before its record: stop instead of looping */
            }
            off = next;
        }
        if (n_first == 2) {
            try_lut(&first[0], &first[1]);
        }
    }
    enum anml_dtype dt;
    int32_t rank;
    int64_t dims[ANML_MAX_DIMS];
    size_t data_off, nbytes;
    if (anml__npy_parse(data, size, "fuzz.npy", &dt, &rank, dims, &data_off, &nbytes, &err) ==
        ANML_OK) {
        if (data_off + nbytes != size) {
            abort();
        }
    }
    return 0;
}
