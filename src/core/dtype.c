/* dtype.c -- the dtype table: MIL text names, bit widths, weight.bin blob codes and protobuf
 * MILSpec.DataType values (coreml-format.md §4.1). */
#include <string.h>

#include "core/core.h"

struct dtype_info {
    const char *name;
    int bits;
    uint32_t blob_code; /* 0 = cannot live in a blob */
    int proto;          /* MILSpec.DataType */
};

static const struct dtype_info k_dtypes[ANML_DTYPE_COUNT] = {
    [ANML_DTYPE_INVALID] = { "invalid", 0, 0, 0 },
    [ANML_DTYPE_BOOL] = { "bool", 8, 0, 1 },
    [ANML_DTYPE_STRING] = { "string", 0, 0, 2 },
    [ANML_DTYPE_F16] = { "fp16", 16, 1, 10 },
    [ANML_DTYPE_F32] = { "fp32", 32, 2, 11 },
    [ANML_DTYPE_F64] = { "fp64", 64, 0, 12 },
    [ANML_DTYPE_BF16] = { "bf16", 16, 5, 13 },
    [ANML_DTYPE_INT4] = { "int4", 4, 8, 25 },
    [ANML_DTYPE_INT8] = { "int8", 8, 4, 21 },
    [ANML_DTYPE_INT16] = { "int16", 16, 6, 22 },
    [ANML_DTYPE_INT32] = { "int32", 32, 14, 23 },
    [ANML_DTYPE_INT64] = { "int64", 64, 0, 24 },
    [ANML_DTYPE_UINT1] = { "uint1", 1, 9, 37 },
    [ANML_DTYPE_UINT2] = { "uint2", 2, 10, 36 },
    [ANML_DTYPE_UINT3] = { "uint3", 3, 12, 39 },
    [ANML_DTYPE_UINT4] = { "uint4", 4, 11, 35 },
    [ANML_DTYPE_UINT6] = { "uint6", 6, 13, 38 },
    [ANML_DTYPE_UINT8] = { "uint8", 8, 3, 31 },
    [ANML_DTYPE_UINT16] = { "uint16", 16, 7, 32 },
    [ANML_DTYPE_UINT32] = { "uint32", 32, 15, 33 },
    [ANML_DTYPE_UINT64] = { "uint64", 64, 0, 34 },
    [ANML_DTYPE_FP8E4M3FN] = { "fp8e4m3fn", 8, 16, 40 },
    [ANML_DTYPE_FP8E5M2] = { "fp8e5m2", 8, 17, 41 },
};

static bool dtype_ok(enum anml_dtype dt) {
    return (int)dt > 0 && dt < ANML_DTYPE_COUNT;
}

const char *anml_dtype_name(enum anml_dtype dtype) {
    return dtype_ok(dtype) ? k_dtypes[dtype].name : "invalid";
}

int anml_dtype_bits(enum anml_dtype dtype) {
    return dtype_ok(dtype) ? k_dtypes[dtype].bits : 0;
}

enum anml_dtype anml__dtype_from_name(const char *name, size_t n) {
    for (int i = 1; i < ANML_DTYPE_COUNT; i++) {
        if (strlen(k_dtypes[i].name) == n && memcmp(k_dtypes[i].name, name, n) == 0) {
            return (enum anml_dtype)i;
        }
    }
    return ANML_DTYPE_INVALID;
}

enum anml_dtype anml__dtype_from_blob_code(uint32_t code) {
    for (int i = 1; i < ANML_DTYPE_COUNT; i++) {
        if (code != 0 && k_dtypes[i].blob_code == code) {
            return (enum anml_dtype)i;
        }
    }
    return ANML_DTYPE_INVALID;
}

uint32_t anml__dtype_blob_code(enum anml_dtype dt) {
    return dtype_ok(dt) ? k_dtypes[dt].blob_code : 0;
}

enum anml_dtype anml__dtype_from_proto(int code) {
    for (int i = 1; i < ANML_DTYPE_COUNT; i++) {
        if (k_dtypes[i].proto == code) {
            return (enum anml_dtype)i;
        }
    }
    return ANML_DTYPE_INVALID;
}

int anml__dtype_proto(enum anml_dtype dt) {
    return dtype_ok(dt) ? k_dtypes[dt].proto : 0;
}

bool anml__dtype_is_subbyte(enum anml_dtype dt) {
    return dtype_ok(dt) && k_dtypes[dt].bits > 0 && k_dtypes[dt].bits < 8;
}

size_t anml__dtype_size(enum anml_dtype dt) {
    if (!dtype_ok(dt) || dt == ANML_DTYPE_STRING) {
        return 0;
    }
    int bits = k_dtypes[dt].bits;
    return bits < 8 ? 1 : (size_t)bits / 8;
}
