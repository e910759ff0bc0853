/* test_kernels_ref.c -- the scalar reference kernels of src/kernels/ref: dot products against
 * exact small-integer sums, and the row fp16 -> fp32 conversion against the core converter for
 * all 65536 bit patterns. */
#include <string.h>

#include "testutil.h"
// clang-format off
#include "core/core.h"
#include "kernels/kernels.h"
// clang-format on

static void test_f16_to_f32_exhaustive(void **state) {
    (void)state;
    static uint16_t h[65536];
    static float f[65536];
    for (uint32_t i = 0; i < 65536; i++) {
        h[i] = (uint16_t)i;
    }
    anml__ref_f16_to_f32(h, 65536, f);
    for (uint32_t i = 0; i < 65536; i++) {
        float want = anml__fp16_to_fp32((uint16_t)i);
        if (memcmp(&want, &f[i], sizeof want) != 0) {
            fail_msg("fp16 0x%04x: got %a, want %a", i, (double)f[i], (double)want);
        }
    }
}

static void test_dot_kernels(void **state) {
    (void)state;
    float a[37], b[37], x[3 * 40], y[6];
    float want = 0;
    for (int i = 0; i < 37; i++) { /* odd length: eight-way body plus a tail */
        a[i] = (float)(i % 5 - 2);
        b[i] = (float)(i % 7 - 3);
        want += a[i] * b[i];
    }
    assert_true(anml__ref_dot_f32(a, b, 37) == want);
    assert_true(anml__ref_dot_f32(a, b, 0) == 0.0f);
    /* three activation rows with stride 40, results every other element */
    for (int j = 0; j < 3; j++) {
        for (int i = 0; i < 40; i++) {
            x[j * 40 + i] = (float)((i + j) % 4);
        }
    }
    memset(y, 0, sizeof y);
    anml__ref_dot_rows_f32(a, x, 37, 40, 3, y, 2);
    for (int j = 0; j < 3; j++) {
        float w = 0;
        for (int i = 0; i < 37; i++) {
            w += a[i] * x[j * 40 + i];
        }
        assert_true(y[2 * j] == w);
        assert_true(y[2 * j + 1] == 0.0f);
    }
    float acc[4] = { 1, 2, 3, 4 };
    anml__ref_axpy_f32(4, -2.0f, (const float[]){ 1, 0, 1, 0.5f }, acc);
    assert_true(acc[0] == -1 && acc[1] == 2 && acc[2] == 1 && acc[3] == 3);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_to_f32_exhaustive),
        cmocka_unit_test(test_dot_kernels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
