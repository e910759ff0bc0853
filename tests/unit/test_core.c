/* test_core.c -- fp16 conversion, dtype table, arena and checked arithmetic. */
#include <math.h>
#include <string.h>

#include "core/core.h"
#include "testutil.h"

static void test_fp16_roundtrip_all_patterns(void **state) {
    (void)state;
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = anml__fp16_to_fp32((uint16_t)h);
        if (isnan(f)) {
            assert_true(isnan(anml__fp16_to_fp32(anml__fp32_to_fp16(f))));
            continue;
        }
        assert_int_equal(anml__fp32_to_fp16(f), h);
    }
}

static void test_fp16_rounding(void **state) {
    (void)state;
    assert_int_equal(anml__fp32_to_fp16(1.0f), 0x3c00);
    assert_int_equal(anml__fp32_to_fp16(65504.0f), 0x7bff);
    assert_int_equal(anml__fp32_to_fp16(65520.0f), 0x7c00); /* ties to even -> inf */
    assert_int_equal(anml__fp32_to_fp16(65519.0f), 0x7bff);
    assert_int_equal(anml__fp32_to_fp16(0x1p-24f), 0x0001); /* smallest subnormal */
    assert_int_equal(anml__fp32_to_fp16(0x1p-25f), 0x0000); /* tie to even -> 0 */
    assert_int_equal(anml__fp32_to_fp16(0x1.8p-25f), 0x0001);
    assert_int_equal(anml__fp32_to_fp16(0x1.8p-24f), 0x0002);      /* 1.5 ulp ties to even 2 */
    assert_int_equal(anml__fp32_to_fp16(1.0f + 0x1p-11f), 0x3c00); /* tie to even */
    assert_int_equal(anml__fp32_to_fp16(1.0f + 0x1.8p-10f), 0x3c02);
    assert_int_equal(anml__fp32_to_fp16(-INFINITY), 0xfc00);
    assert_int_equal(anml__fp32_to_fp16(-0.0f), 0x8000);
}

static void test_dtype_table(void **state) {
    (void)state;
    assert_int_equal(anml__dtype_from_name("uint6", 5), ANML_DTYPE_UINT6);
    assert_int_equal(anml__dtype_from_name("fp1", 3), ANML_DTYPE_INVALID);
    assert_int_equal(anml__dtype_from_blob_code(14), ANML_DTYPE_INT32);
    assert_int_equal(anml__dtype_from_blob_code(0), ANML_DTYPE_INVALID);
    assert_int_equal(anml__dtype_from_blob_code(99), ANML_DTYPE_INVALID);
    assert_int_equal(anml__dtype_from_proto(10), ANML_DTYPE_F16);
    assert_int_equal(anml_dtype_bits(ANML_DTYPE_UINT3), 3);
    assert_int_equal(anml__dtype_size(ANML_DTYPE_INT4), 1);
    assert_true(anml__dtype_is_subbyte(ANML_DTYPE_INT4));
    assert_false(anml__dtype_is_subbyte(ANML_DTYPE_UINT8));
    assert_string_equal(anml_dtype_name((enum anml_dtype)999), "invalid");
}

static void test_arena_and_overflow(void **state) {
    (void)state;
    struct anml_arena *a = anml__arena_create();
    assert_non_null(a);
    for (int i = 0; i < 1000; i++) {
        unsigned char *p = anml__arena_alloc(a, (size_t)i * 7 + 1);
        assert_non_null(p);
        assert_int_equal(((uintptr_t)p) & 15, 0);
        assert_int_equal(p[0], 0);
        memset(p, 0xab, (size_t)i * 7 + 1);
    }
    assert_non_null(anml__arena_alloc(a, 1 << 20));
    assert_null(anml__arena_array(a, SIZE_MAX / 2, 4));
    anml__arena_free(a);
    int64_t n;
    int64_t dims[] = { INT64_C(1) << 40, INT64_C(1) << 30 };
    assert_false(anml__shape_numel(dims, 2, &n));
    int64_t neg[] = { 3, -1 };
    assert_false(anml__shape_numel(neg, 2, &n));
    int64_t ok[] = { 3, 4, 5 };
    assert_true(anml__shape_numel(ok, 3, &n));
    assert_int_equal(n, 60);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fp16_roundtrip_all_patterns),
        cmocka_unit_test(test_fp16_rounding),
        cmocka_unit_test(test_dtype_table),
        cmocka_unit_test(test_arena_and_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
