/* test_blob.c -- weight.bin reader: header and record validation, the store, blob resolution
 * against declared types, and the LSB-first sub-byte packing (coreml-format.md §5). */
#include <string.h>

#include "coreml/blob.h"
#include "testutil.h"

/* ---- sub-byte packing: the worked examples of §5.4 ---- */

static void check_pack(enum anml_dtype dt, const uint8_t *vals, int64_t n, const uint8_t *bytes,
                       size_t nbytes) {
    uint8_t packed[32];
    uint8_t unpacked[64];
    memset(packed, 0xcc, sizeof packed);
    assert_int_equal(anml__subbyte_pack(dt, vals, n, packed), nbytes);
    assert_memory_equal(packed, bytes, nbytes);
    assert_int_equal(packed[nbytes], 0xcc); /* nothing written past the end */
    memset(unpacked, 0xcc, sizeof unpacked);
    anml__subbyte_unpack(dt, bytes, n, unpacked);
    assert_memory_equal(unpacked, vals, (size_t)n);
    assert_int_equal(unpacked[n], 0xcc);
    for (int64_t i = 0; i < n; i++) {
        uint32_t mask = (1u << anml_dtype_bits(dt)) - 1;
        assert_int_equal(anml__subbyte_get(bytes, anml_dtype_bits(dt), i), vals[i] & mask);
    }
}

static void test_subbyte_worked_examples(void **state) {
    (void)state;
    /* uint4 1,2,3 -> 0x21 0x03 (element 0 in the low nibble) */
    check_pack(ANML_DTYPE_UINT4, (const uint8_t[]){ 1, 2, 3 }, 3, (const uint8_t[]){ 0x21, 0x03 },
               2);
    /* int4 -1,7 -> 0x7F (two's complement nibbles, sign-extended on unpack) */
    check_pack(ANML_DTYPE_INT4, (const uint8_t[]){ (uint8_t)-1, 7 }, 2, (const uint8_t[]){ 0x7f },
               1);
    /* int4 -8 .. 7 */
    check_pack(ANML_DTYPE_INT4, (const uint8_t[]){ (uint8_t)-8, (uint8_t)-2, 0, 5 }, 4,
               (const uint8_t[]){ 0xe8, 0x50 }, 2);
    /* uint2 0,3,2,1,3 -> 0x6C 0x03 (the iOS16 doc example) */
    check_pack(ANML_DTYPE_UINT2, (const uint8_t[]){ 0, 3, 2, 1, 3 }, 5,
               (const uint8_t[]){ 0x6c, 0x03 }, 2);
    /* uint6 a=0x2d (101101), b=0x3a (111010): byte0 = a | (b & 3) << 6 = 0xad, byte1 = b >> 2 */
    check_pack(ANML_DTYPE_UINT6, (const uint8_t[]){ 0x2d, 0x3a }, 2,
               (const uint8_t[]){ 0xad, 0x0e }, 2);
    /* uint6 four elements fill three bytes exactly: 63,0,63,0 */
    check_pack(ANML_DTYPE_UINT6, (const uint8_t[]){ 63, 0, 63, 0 }, 4,
               (const uint8_t[]){ 0x3f, 0xf0, 0x03 }, 3);
    /* uint3 e0..e7 = 1..7,0: e2 = 3 spans bits 6..8 -> bits 6,7 of byte0 = 11b, bit 0 of byte1
     * = 0. Stream: 001 010 011 100 101 110 111 000 (LSB first) */
    check_pack(ANML_DTYPE_UINT3, (const uint8_t[]){ 1, 2, 3, 4, 5, 6, 7, 0 }, 8,
               (const uint8_t[]){ 0xd1, 0x58, 0x1f }, 3);
    /* uint3 with e2 = 4 (100b): the high bit lands in bit 0 of byte 1 */
    check_pack(ANML_DTYPE_UINT3, (const uint8_t[]){ 0, 0, 4 }, 3, (const uint8_t[]){ 0x00, 0x01 },
               2);
    /* uint3 with e2 = 3 (011b): the low bits land in bits 6,7 of byte 0 */
    check_pack(ANML_DTYPE_UINT3, (const uint8_t[]){ 0, 0, 3 }, 3, (const uint8_t[]){ 0xc0, 0x00 },
               2);
    /* uint1 mask bits m0..m7 -> one byte, m0 in bit 0 */
    check_pack(ANML_DTYPE_UINT1, (const uint8_t[]){ 1, 0, 0, 0, 0, 0, 0, 1 }, 8,
               (const uint8_t[]){ 0x81 }, 1);
    check_pack(ANML_DTYPE_UINT1, (const uint8_t[]){ 0, 1, 1, 0, 1, 0, 0, 0, 1 }, 9,
               (const uint8_t[]){ 0x16, 0x01 }, 2);
}

static void test_subbyte_roundtrip_all_widths(void **state) {
    (void)state;
    const enum anml_dtype dts[] = { ANML_DTYPE_UINT1, ANML_DTYPE_UINT2, ANML_DTYPE_UINT3,
                                    ANML_DTYPE_UINT4, ANML_DTYPE_UINT6, ANML_DTYPE_INT4 };
    uint8_t vals[61], packed[64], back[61];
    for (size_t d = 0; d < sizeof dts / sizeof dts[0]; d++) {
        int bits = anml_dtype_bits(dts[d]);
        for (int64_t n = 0; n <= 61; n++) {
            for (int64_t i = 0; i < n; i++) {
                uint32_t v = (uint32_t)(i * 37 + n * 11 + d) & ((1u << bits) - 1);
                if (dts[d] == ANML_DTYPE_INT4 && v >= 8) {
                    v |= 0xf0u; /* sign-extended form */
                }
                vals[i] = (uint8_t)v;
            }
            size_t nb = anml__subbyte_pack(dts[d], vals, n, packed);
            assert_int_equal(nb, (size_t)((n * bits + 7) / 8));
            anml__subbyte_unpack(dts[d], packed, n, back);
            if (n > 0) {
                assert_memory_equal(vals, back, (size_t)n);
            }
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subbyte_worked_examples),
        cmocka_unit_test(test_subbyte_roundtrip_all_widths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
