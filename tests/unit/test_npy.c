/* test_npy.c -- .npy reading and writing: round trips for every dtype and rank, headers written
 * by NumPy (v1, v2, v3, odd spacing), and malformed headers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "testutil.h"

/* Builds a v1/v2 file image from a header text and data (the header is used verbatim). */
static uint8_t *npy_image(int major, const char *hdr, const void *data, size_t nbytes,
                          size_t *len) {
    size_t hl = strlen(hdr);
    size_t pre = major == 1 ? 10 : 12;
    *len = pre + hl + nbytes;
    uint8_t *b = malloc(*len);
    assert_non_null(b);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (uint8_t)major;
    b[7] = 0;
    if (major == 1) {
        b[8] = (uint8_t)hl;
        b[9] = (uint8_t)(hl >> 8);
    } else {
        b[8] = (uint8_t)hl;
        b[9] = (uint8_t)(hl >> 8);
        b[10] = 0;
        b[11] = 0;
    }
    memcpy(b + pre, hdr, hl);
    if (nbytes) {
        memcpy(b + pre + hl, data, nbytes);
    }
    return b;
}

static enum anml_status parse(int major, const char *hdr, const void *data, size_t nbytes,
                              enum anml_dtype *dt, int32_t *rank, int64_t *dims,
                              struct anml_error *err) {
    size_t len, off, nb;
    uint8_t *b = npy_image(major, hdr, data, nbytes, &len);
    enum anml_status st = anml__npy_parse(b, len, "t.npy", dt, rank, dims, &off, &nb, err);
    if (st == ANML_OK) {
        assert_int_equal(nb, nbytes);
        assert_memory_equal(b + off, data, nbytes);
    }
    free(b);
    return st;
}

static void test_numpy_headers(void **state) {
    (void)state;
    enum anml_dtype dt;
    int32_t rank;
    int64_t dims[ANML_MAX_DIMS];
    struct anml_error err;
    const uint16_t h[6] = { 0x3c00, 0, 1, 2, 3, 4 };
    /* exactly what numpy 1.24 writes for np.zeros((2,3), np.float16) (padding shortened) */
    assert_int_equal(parse(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (2, 3), }    \n",
                           h, 12, &dt, &rank, dims, &err),
                     ANML_OK);
    assert_int_equal(dt, ANML_DTYPE_F16);
    assert_int_equal(rank, 2);
    assert_int_equal(dims[0], 2);
    assert_int_equal(dims[1], 3);
    /* 1-tuple, double quotes, any key order, no trailing comma, v2 and v3 */
    assert_int_equal(parse(2, "{\"shape\": (3,), \"descr\": \"|u1\", \"fortran_order\": False}\n",
                           h, 3, &dt, &rank, dims, &err),
                     ANML_OK);
    assert_int_equal(dt, ANML_DTYPE_UINT8);
    assert_int_equal(rank, 1);
    assert_int_equal(dims[0], 3);
    assert_int_equal(parse(3, "{'descr': '|b1', 'fortran_order': False, 'shape': (), }\n", h, 1,
                           &dt, &rank, dims, &err),
                     ANML_OK);
    assert_int_equal(dt, ANML_DTYPE_BOOL);
    assert_int_equal(rank, 0);
    /* empty array */
    assert_int_equal(parse(1, "{'descr': '<i4', 'fortran_order': False, 'shape': (0, 5), }\n", h, 0,
                           &dt, &rank, dims, &err),
                     ANML_OK);
    assert_int_equal(dims[1], 5);
    /* every descr */
    static const struct {
        const char *d;
        enum anml_dtype dt;
    } ds[] = { { "<f2", ANML_DTYPE_F16 },    { "<f4", ANML_DTYPE_F32 },
               { "<f8", ANML_DTYPE_F64 },    { "<i1", ANML_DTYPE_INT8 },
               { "|i1", ANML_DTYPE_INT8 },   { "<i2", ANML_DTYPE_INT16 },
               { "<i4", ANML_DTYPE_INT32 },  { "<i8", ANML_DTYPE_INT64 },
               { "|u1", ANML_DTYPE_UINT8 },  { "<u2", ANML_DTYPE_UINT16 },
               { "<u4", ANML_DTYPE_UINT32 }, { "<u8", ANML_DTYPE_UINT64 },
               { "|b1", ANML_DTYPE_BOOL } };
    for (size_t i = 0; i < sizeof ds / sizeof ds[0]; i++) {
        char hdr[128];
        snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (1,), }\n",
                 ds[i].d);
        uint8_t data[8] = { 0 };
        assert_int_equal(parse(1, hdr, data, anml__dtype_size(ds[i].dt), &dt, &rank, dims, &err),
                         ANML_OK);
        assert_int_equal(dt, ds[i].dt);
    }
}

static void expect_bad(int major, const char *hdr, size_t nbytes, enum anml_status code,
                       const char *needle) {
    enum anml_dtype dt;
    int32_t rank;
    int64_t dims[ANML_MAX_DIMS];
    struct anml_error err;
    memset(&err, 0, sizeof err);
    uint8_t data[64] = { 0 };
    enum anml_status st = parse(major, hdr, data, nbytes, &dt, &rank, dims, &err);
    if (st != code || !strstr(err.msg, needle)) {
        fail_msg("header %s: status %d msg '%s' (wanted %d '%s')", hdr, (int)st, err.msg, (int)code,
                 needle);
    }
}

static void test_malformed_headers(void **state) {
    (void)state;
    const char *ok_tail = "'fortran_order': False, 'shape': (2,), }\n";
    (void)ok_tail;
    expect_bad(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }\n", 8,
               ANML_E_UNSUPPORTED, "fortran_order True");
    expect_bad(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }\n", 8, ANML_E_FORMAT,
               "unsupported descr '>f4'");
    expect_bad(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }\n", 16, ANML_E_FORMAT,
               "unsupported descr");
    expect_bad(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\n", 8, ANML_E_FORMAT,
               "needs 12");
    expect_bad(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", 9, ANML_E_FORMAT,
               "data is 9 bytes");
    expect_bad(1, "{'descr': '<f4', 'fortran_order': False}\n", 4, ANML_E_FORMAT,
               "missing key 'shape'");
    expect_bad(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': ()}\n", 4,
               ANML_E_FORMAT, "duplicate key");
    expect_bad(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}\n", 8,
               ANML_E_FORMAT, "unexpected key 'x'");
    expect_bad(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }\n", 8, ANML_E_FORMAT,
               "non-negative integer");
    expect_bad(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,)}\n", 8,
               ANML_E_FORMAT, "too large");
    expect_bad(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1)}\n", 4,
               ANML_E_FORMAT, "more than 8");
    expect_bad(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2 2)}\n", 8, ANML_E_FORMAT,
               "expected ',' or ')'");
    expect_bad(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} junk\n", 8,
               ANML_E_FORMAT, "after the header dict");
    expect_bad(1, "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (2,)}\n", 8, ANML_E_FORMAT,
               "True or False");
    expect_bad(1, "{'descr: '<f4', 'fortran_order': False, 'shape': (2,)}\n", 8, ANML_E_FORMAT,
               "expected ':'");
    expect_bad(1,
               "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, "
               "4294967296)}\n",
               8, ANML_E_FORMAT, "too large");
    expect_bad(1, "'descr': '<f4'}\n", 8, ANML_E_FORMAT, "expected '{'");

    /* magic, version, header length */
    enum anml_dtype dt;
    int32_t rank;
    int64_t dims[ANML_MAX_DIMS];
    size_t off, nb;
    struct anml_error err;
    uint8_t bad[16] = { 0x93, 'N', 'U', 'M', 'P', 'X', 1, 0, 4, 0 };
    assert_int_equal(anml__npy_parse(bad, 16, "t.npy", &dt, &rank, dims, &off, &nb, &err),
                     ANML_E_FORMAT);
    assert_non_null(strstr(err.msg, "magic"));
    memcpy(bad, "\x93NUMPY", 6);
    bad[6] = 4;
    assert_int_equal(anml__npy_parse(bad, 16, "t.npy", &dt, &rank, dims, &off, &nb, &err),
                     ANML_E_UNSUPPORTED);
    bad[6] = 1;
    bad[8] = 0xff;
    assert_int_equal(anml__npy_parse(bad, 16, "t.npy", &dt, &rank, dims, &off, &nb, &err),
                     ANML_E_FORMAT);
    assert_non_null(strstr(err.msg, "runs past the end"));
    assert_int_equal(anml__npy_parse(bad, 5, "t.npy", &dt, &rank, dims, &off, &nb, &err),
                     ANML_E_FORMAT);
    bad[6] = 2;
    assert_int_equal(anml__npy_parse(bad, 11, "t.npy", &dt, &rank, dims, &off, &nb, &err),
                     ANML_E_FORMAT);
}

static void test_roundtrip_files(void **state) {
    (void)state;
    char *dir = anml_test_tmpdir("npy");
    assert_non_null(dir);
    const enum anml_dtype dts[] = { ANML_DTYPE_F16,    ANML_DTYPE_F32,    ANML_DTYPE_F64,
                                    ANML_DTYPE_INT8,   ANML_DTYPE_INT16,  ANML_DTYPE_INT32,
                                    ANML_DTYPE_INT64,  ANML_DTYPE_UINT8,  ANML_DTYPE_UINT16,
                                    ANML_DTYPE_UINT32, ANML_DTYPE_UINT64, ANML_DTYPE_BOOL };
    const int64_t shapes[][3] = { { 0, 0, 0 }, { 7, 0, 0 }, { 2, 3, 0 }, { 2, 1, 4 } };
    const int32_t ranks[] = { 0, 1, 2, 3 };
    uint8_t data[256], *back_img;
    for (size_t i = 0; i < sizeof data; i++) {
        data[i] = (uint8_t)(i * 37 + 5);
    }
    for (size_t d = 0; d < sizeof dts / sizeof dts[0]; d++) {
        for (size_t s = 0; s < 4; s++) {
            if (dts[d] == ANML_DTYPE_BOOL) {
                for (size_t i = 0; i < sizeof data; i++) {
                    data[i] &= 1;
                }
            }
            char path[4096];
            snprintf(path, sizeof path, "%s/a_%zu_%zu.npy", dir, d, s);
            struct anml_error err;
            assert_int_equal(anml__npy_write(path, dts[d], ranks[s], shapes[s], data, &err),
                             ANML_OK);
            enum anml_dtype dt;
            int32_t rank;
            int64_t dims[ANML_MAX_DIMS];
            void *back;
            size_t nbytes;
            assert_int_equal(anml__npy_read(path, &dt, &rank, dims, &back, &nbytes, &err), ANML_OK);
            assert_int_equal(dt, dts[d]);
            assert_int_equal(rank, ranks[s]);
            int64_t numel = 1;
            for (int32_t k = 0; k < rank; k++) {
                assert_int_equal(dims[k], shapes[s][k]);
                numel *= dims[k];
            }
            assert_int_equal(nbytes, (size_t)numel * anml__dtype_size(dts[d]));
            if (nbytes) {
                assert_memory_equal(back, data, nbytes);
            }
            anml__free(back);
            /* the data starts at a multiple of 64, header ends with '\n' */
            size_t flen;
            back_img = (uint8_t *)anml_test_read_file(path, &flen);
            assert_non_null(back_img);
            assert_int_equal((flen - nbytes) % 64, 0);
            assert_int_equal(back_img[flen - nbytes - 1], '\n');
            free(back_img);
        }
    }
    /* the public API */
    struct anml_tensor t;
    char path[4096];
    snprintf(path, sizeof path, "%s/a_1_2.npy", dir);
    struct anml_error err;
    assert_int_equal(anml_npy_read(path, &t, &err), ANML_OK);
    assert_int_equal(t.dtype, ANML_DTYPE_F32);
    assert_int_equal(t.rank, 2);
    assert_int_equal(t.shape[1], 3);
    snprintf(path, sizeof path, "%s/copy.npy", dir);
    assert_int_equal(anml_npy_write(path, &t, &err), ANML_OK);
    anml_free(t.data);
    /* unsupported dtypes and missing files */
    assert_int_equal(anml__npy_write(path, ANML_DTYPE_UINT4, 1, shapes[1], data, &err),
                     ANML_E_UNSUPPORTED);
    void *back;
    size_t nbytes;
    enum anml_dtype dt;
    int32_t rank;
    int64_t dims[ANML_MAX_DIMS];
    snprintf(path, sizeof path, "%s/missing.npy", dir);
    assert_int_not_equal(anml__npy_read(path, &dt, &rank, dims, &back, &nbytes, &err), ANML_OK);
    free(dir);
}

static void test_fixture_file(void **state) {
    (void)state;
    ANML_TEST_REQUIRE_SHARED();
    /* a file written by NumPy itself */
    const char *p = anml_test_shared_path(
        "fixtures/coreml/qwen3-tiny-lut/dequantized/"
        "qwen_FFN_lut4_chunk_01of02__main__model_model_layers_0_mlp_up_proj_weight_palettized.npy");
    enum anml_dtype dt;
    int32_t rank;
    int64_t dims[ANML_MAX_DIMS];
    void *data;
    size_t nbytes;
    struct anml_error err;
    assert_int_equal(anml__npy_read(p, &dt, &rank, dims, &data, &nbytes, &err), ANML_OK);
    assert_int_equal(dt, ANML_DTYPE_F16);
    assert_int_equal(rank, 4);
    assert_int_equal(dims[0], 128);
    assert_int_equal(dims[1], 64);
    assert_int_equal(nbytes, 128 * 64 * 2);
    anml__free(data);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_numpy_headers),
        cmocka_unit_test(test_malformed_headers),
        cmocka_unit_test(test_roundtrip_files),
        cmocka_unit_test(test_fixture_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
