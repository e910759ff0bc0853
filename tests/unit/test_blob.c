/* test_blob.c -- weight.bin reader: header and record validation, the store, blob resolution
 * against declared types, whole-program validation messages, and the LSB-first sub-byte packing
 * (coreml-format.md §5). Weight files are built here byte by byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coreml/blob.h"
#include "testutil.h"

/* ---- a tiny weight-file builder ---- */

struct wfile {
    uint8_t buf[16384];
    size_t len;
    uint32_t count;
};

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

static void wf_init(struct wfile *w) {
    memset(w, 0, sizeof *w);
    w->len = 64;
    put32(w->buf + 4, 2);
}

/* Appends a record + data at the next 64-aligned offset (as the writer does); returns the record
 * offset. */
static uint64_t wf_add(struct wfile *w, uint32_t code, const void *data, uint64_t size,
                       uint64_t padding) {
    size_t rec = (w->len + 63) & ~(size_t)63;
    assert_true(rec + 64 + size <= sizeof w->buf);
    uint8_t *r = w->buf + rec;
    put32(r, 0xDEADBEEFu);
    put32(r + 4, code);
    put64(r + 8, size);
    put64(r + 16, rec + 64);
    put64(r + 24, padding);
    memcpy(r + 64, data, (size_t)size);
    w->len = rec + 64 + (size_t)size;
    w->count++;
    put32(w->buf, w->count);
    return rec;
}

static char *wf_save(const struct wfile *w, const char *tag) {
    char *dir = anml_test_tmpdir(tag);
    assert_non_null(dir);
    char path[4096];
    snprintf(path, sizeof path, "%s/weights", dir);
    assert_int_equal(anml__mkdirs(path, NULL), ANML_OK);
    snprintf(path, sizeof path, "%s/weights/weight.bin", dir);
    assert_int_equal(anml__write_file(path, w->buf, w->len, NULL), ANML_OK);
    return dir;
}

static struct mil_value *blob_value(struct mil_program *prog, const char *path, uint64_t off,
                                    enum anml_dtype dt, int32_t rank, const int64_t *dims) {
    struct mil_value *v = anml__arena_alloc(prog->arena, sizeof *v);
    assert_non_null(v);
    v->kind = MIL_VALUE_BLOB;
    v->type = anml__mil_tensor_type(prog->arena, dt, rank, dims);
    assert_non_null(v->type);
    v->blob_path = anml__arena_strdup(prog->arena, path);
    v->blob_offset = off;
    return v;
}

#define WPATH "@model_path/weights/weight.bin"

/* ---- header ---- */

static void test_header_checks(void **state) {
    (void)state;
    struct wfile w;
    wf_init(&w);
    uint32_t count = 99;
    struct anml_error err;
    assert_int_equal(anml__blob_check_header(w.buf, 64, "weights/weight.bin", &count, &err),
                     ANML_OK);
    assert_int_equal(count, 0);
    /* truncated */
    assert_int_equal(anml__blob_check_header(w.buf, 63, "weights/weight.bin", &count, &err),
                     ANML_E_FORMAT);
    assert_non_null(strstr(err.msg, "truncated"));
    assert_string_equal(err.where, "weights/weight.bin@0x0");
    assert_int_equal(anml__blob_check_header(NULL, 0, "w.bin", &count, &err), ANML_E_FORMAT);
    /* version 1 */
    put32(w.buf + 4, 1);
    assert_int_equal(anml__blob_check_header(w.buf, 64, "weights/weight.bin", &count, &err),
                     ANML_E_FORMAT);
    assert_non_null(strstr(err.msg, "version 1"));
    /* count larger than the file can hold */
    put32(w.buf + 4, 2);
    put32(w.buf, 2);
    assert_int_equal(anml__blob_check_header(w.buf, 128, "weights/weight.bin", &count, &err),
                     ANML_E_FORMAT);
    assert_non_null(strstr(err.msg, "2 blobs"));
    assert_int_equal(anml__blob_check_header(w.buf, 192, "weights/weight.bin", &count, &err),
                     ANML_OK);
    assert_int_equal(count, 2);
}

/* ---- records ---- */

static void test_appendix_b_layout(void **state) {
    (void)state;
    /* coreml-format.md Appendix B: two fp32[500] blobs at record offsets 64 and 2176. */
    struct wfile w;
    wf_init(&w);
    float a[500], b[500];
    for (int i = 0; i < 500; i++) {
        a[i] = (float)i;
        b[i] = (float)-i;
    }
    assert_int_equal(wf_add(&w, 2, a, sizeof a, 0), 64);
    assert_int_equal(wf_add(&w, 2, b, sizeof b, 0), 2176);
    struct mil_blob_view v;
    struct anml_error err;
    assert_int_equal(anml__blob_parse_record(w.buf, w.len, "w.bin", 2176, &v, &err), ANML_OK);
    assert_int_equal(v.data_offset, 2240);
    assert_int_equal(v.n_elem, 500);
    assert_int_equal(v.dtype, ANML_DTYPE_F32);
    assert_memory_equal(v.data, b, sizeof b);
}

struct rec_case {
    const char *what;
    uint64_t rel; /* field offset inside the record */
    int width;    /* 4 or 8 */
    uint64_t value;
    const char *needle; /* expected in the message */
};

static void test_record_hostile(void **state) {
    (void)state;
    static const struct rec_case cases[] = {
        { "wrong sentinel", 0, 4, 0, "sentinel 0x00000000, expected 0xdeadbeef" },
        { "unknown dtype code", 4, 4, 99, "unknown blob dtype code 99" },
        { "dtype code 0", 4, 4, 0, "unknown blob dtype code 0" },
        { "size past end", 8, 8, 4096, "runs past the end of the file" },
        { "offset past end", 16, 8, 1u << 20, "runs past the end of the file" },
        { "offset+size overflow", 8, 8, UINT64_MAX - 64, "overflows" },
        { "data in header", 16, 8, 8, "inside the 64-byte file header" },
        { "padding > 7", 24, 8, 8, "out of range 0..7" },
        { "padding 3 on uint4", 24, 8, 3, "whole number of 4-bit elements" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct wfile w;
        wf_init(&w);
        const uint8_t data[4] = { 0x21, 0x43, 0x65, 0x07 };
        uint64_t off = wf_add(&w, 11 /* uint4 */, data, 4, 0);
        if (cases[i].width == 4) {
            put32(w.buf + off + cases[i].rel, (uint32_t)cases[i].value);
        } else {
            put64(w.buf + off + cases[i].rel, cases[i].value);
        }
        struct mil_blob_view v;
        struct anml_error err;
        memset(&err, 0, sizeof err);
        enum anml_status st =
            anml__blob_parse_record(w.buf, w.len, "weights/weight.bin", off, &v, &err);
        if (st != ANML_E_FORMAT || !strstr(err.msg, cases[i].needle)) {
            fail_msg("%s: status %d msg '%s'", cases[i].what, (int)st, err.msg);
        }
        assert_string_equal(err.where, "weights/weight.bin@0x40");
    }
    /* record itself out of range / inside the header */
    struct wfile w;
    wf_init(&w);
    struct mil_blob_view v;
    struct anml_error err;
    assert_int_equal(anml__blob_parse_record(w.buf, w.len, "w.bin", 64, &v, &err), ANML_E_FORMAT);
    assert_non_null(strstr(err.msg, "runs past the end"));
    assert_int_equal(anml__blob_parse_record(w.buf, w.len, "w.bin", UINT64_MAX - 10, &v, &err),
                     ANML_E_FORMAT);
    assert_int_equal(anml__blob_parse_record(w.buf, w.len, "w.bin", 0, &v, &err), ANML_E_FORMAT);
    assert_non_null(strstr(err.msg, "header"));
    /* padding on a byte-sized type */
    const uint8_t d8[2] = { 1, 2 };
    uint64_t off = wf_add(&w, 3 /* uint8 */, d8, 2, 0);
    put64(w.buf + off + 24, 4);
    assert_int_equal(anml__blob_parse_record(w.buf, w.len, "w.bin", off, &v, &err), ANML_E_FORMAT);
    assert_non_null(strstr(err.msg, "only sub-byte types pad"));
    /* odd byte count for fp16 */
    off = wf_add(&w, 1 /* fp16 */, d8, 1, 0);
    assert_int_equal(anml__blob_parse_record(w.buf, w.len, "w.bin", off, &v, &err), ANML_E_FORMAT);
    assert_non_null(strstr(err.msg, "whole number"));
}

/* ---- the store and resolution ---- */

struct dt_case {
    enum anml_dtype dt;
    uint32_t code;
    int64_t n;
};

static void test_resolve_every_dtype(void **state) {
    (void)state;
    static const struct dt_case cases[] = {
        { ANML_DTYPE_F16, 1, 7 },      { ANML_DTYPE_F32, 2, 5 },
        { ANML_DTYPE_UINT8, 3, 13 },   { ANML_DTYPE_INT8, 4, 10 },
        { ANML_DTYPE_BF16, 5, 3 },     { ANML_DTYPE_INT16, 6, 4 },
        { ANML_DTYPE_UINT16, 7, 4 },   { ANML_DTYPE_INT4, 8, 9 },
        { ANML_DTYPE_UINT1, 9, 13 },   { ANML_DTYPE_UINT2, 10, 5 },
        { ANML_DTYPE_UINT4, 11, 3 },   { ANML_DTYPE_UINT3, 12, 11 },
        { ANML_DTYPE_UINT6, 13, 7 },   { ANML_DTYPE_INT32, 14, 6 },
        { ANML_DTYPE_UINT32, 15, 2 },  { ANML_DTYPE_FP8E4M3FN, 16, 3 },
        { ANML_DTYPE_FP8E5M2, 17, 3 },
    };
    enum { NC = sizeof cases / sizeof cases[0] };
    struct wfile *w = malloc(sizeof *w);
    assert_non_null(w);
    wf_init(w);
    uint64_t offs[NC];
    uint8_t payload[NC][64];
    size_t sizes[NC];
    for (size_t i = 0; i < NC; i++) {
        int bits = anml_dtype_bits(cases[i].dt);
        for (int j = 0; j < 64; j++) {
            payload[i][j] = (uint8_t)(j * 29 + (int)i * 7 + 1);
        }
        uint64_t nbits = (uint64_t)cases[i].n * (uint64_t)bits;
        sizes[i] = (size_t)((nbits + 7) / 8);
        uint64_t pad = (8 - nbits % 8) % 8;
        if (pad) {
            payload[i][sizes[i] - 1] &= (uint8_t)(0xff >> pad); /* writers zero the tail bits */
        }
        offs[i] = wf_add(w, cases[i].code, payload[i], sizes[i], pad);
    }
    char *dir = wf_save(w, "blob-dtypes");
    struct mil_program *prog = anml__mil_program_new();
    assert_non_null(prog);
    struct mil_blob_store *s = anml__blob_store_new(dir);
    assert_non_null(s);
    for (size_t i = 0; i < NC; i++) {
        int64_t dims[2] = { 1, cases[i].n };
        struct mil_value *v = blob_value(prog, WPATH, offs[i], cases[i].dt, 2, dims);
        struct mil_blob_view view;
        struct anml_error err;
        memset(&err, 0, sizeof err);
        enum anml_status st = anml__blob_resolve(s, v, &view, &err);
        if (st != ANML_OK) {
            fail_msg("%s: %s: %s", anml_dtype_name(cases[i].dt), err.where, err.msg);
        }
        assert_int_equal(view.dtype, cases[i].dt);
        assert_int_equal(view.n_elem, cases[i].n);
        assert_int_equal(view.size_bytes, sizes[i]);
        assert_int_equal(view.record_offset, offs[i]);
        assert_int_equal(view.data_offset, offs[i] + 64);
        assert_memory_equal(view.data, payload[i], sizes[i]);
        assert_string_equal(view.file, "weights/weight.bin");
        if (anml__dtype_is_subbyte(cases[i].dt)) {
            uint8_t un[64];
            anml__subbyte_unpack(cases[i].dt, view.data, view.n_elem, un);
            int bits = anml_dtype_bits(cases[i].dt);
            for (int64_t j = 0; j < view.n_elem; j++) {
                uint32_t raw = anml__subbyte_get(payload[i], bits, j);
                uint8_t want = (uint8_t)raw;
                if (cases[i].dt == ANML_DTYPE_INT4 && raw >= 8) {
                    want = (uint8_t)(raw | 0xf0u);
                }
                assert_int_equal(un[j], want);
            }
        }
        /* A second resolution is served from the cache: same view. */
        struct mil_blob_view again;
        assert_int_equal(anml__blob_resolve(s, v, &again, &err), ANML_OK);
        assert_ptr_equal(again.data, view.data);
    }
    /* The same file under another spelling maps once: pointers into the same mapping. */
    {
        int64_t dims[1] = { cases[0].n };
        struct mil_value *v1 =
            blob_value(prog, "@model_path/./weights//weight.bin", offs[0], cases[0].dt, 1, dims);
        struct mil_value *v0 = blob_value(prog, WPATH, offs[0], cases[0].dt, 1, dims);
        struct mil_blob_view a, b;
        assert_int_equal(anml__blob_resolve(s, v0, &a, NULL), ANML_OK);
        assert_int_equal(anml__blob_resolve(s, v1, &b, NULL), ANML_OK);
        assert_ptr_equal(a.data, b.data);
    }
    anml__blob_store_free(s);
    anml__mil_program_free(prog);
    free(dir);
    free(w);
}

static void expect_resolve_error(struct mil_blob_store *s, const struct mil_value *v,
                                 enum anml_status code, const char *where, const char *needle) {
    struct mil_blob_view view;
    struct anml_error err;
    memset(&err, 0, sizeof err);
    enum anml_status st = anml__blob_resolve(s, v, &view, &err);
    if (st != code || !strstr(err.msg, needle) || (where && strcmp(err.where, where) != 0)) {
        fail_msg("status %d where '%s' msg '%s' (wanted %d '%s' '%s')", (int)st, err.where, err.msg,
                 (int)code, where ? where : "", needle);
    }
}

static void test_resolve_hostile(void **state) {
    (void)state;
    struct wfile *w = malloc(sizeof *w);
    assert_non_null(w);
    wf_init(w);
    const uint8_t d[8] = { 0x21, 0x43, 0x65, 0x87, 0xa9, 0xcb, 0xed, 0x0f };
    uint64_t o4 = wf_add(w, 11, d, 8, 0);  /* uint4 [16] */
    uint64_t o16 = wf_add(w, 1, d, 8, 0);  /* fp16 [4] */
    uint64_t obad = wf_add(w, 1, d, 8, 0); /* fp16 [4], sentinel destroyed below */
    put32(w->buf + obad, 0);
    char *dir = wf_save(w, "blob-hostile");
    struct mil_program *prog = anml__mil_program_new();
    struct mil_blob_store *s = anml__blob_store_new(dir);
    assert_non_null(s);
    int64_t d16[1] = { 16 }, d4[1] = { 4 }, d5[1] = { 5 }, dq[2] = { 4, MIL_DIM_UNKNOWN };
    expect_resolve_error(s, blob_value(prog, WPATH, o4, ANML_DTYPE_UINT4, 1, d4), ANML_E_FORMAT,
                         "weights/weight.bin@0x40", "blob holds 16 uint4 elements");
    expect_resolve_error(s, blob_value(prog, WPATH, o4, ANML_DTYPE_UINT8, 1, d16), ANML_E_FORMAT,
                         "weights/weight.bin@0x40",
                         "blob holds uint4 data, but the value is "
                         "declared uint8");
    expect_resolve_error(s, blob_value(prog, WPATH, o16, ANML_DTYPE_F16, 1, d5), ANML_E_FORMAT,
                         NULL, "declared type tensor<fp16, [5]> has 5");
    expect_resolve_error(s, blob_value(prog, WPATH, o16, ANML_DTYPE_F16, 2, dq), ANML_E_FORMAT,
                         NULL, "fully known");
    char where_bad[64];
    snprintf(where_bad, sizeof where_bad, "weights/weight.bin@0x%llx", (unsigned long long)obad);
    expect_resolve_error(s, blob_value(prog, WPATH, obad, ANML_DTYPE_F16, 1, d4), ANML_E_FORMAT,
                         where_bad, "sentinel 0x00000000, expected 0xdeadbeef");
    expect_resolve_error(s, blob_value(prog, WPATH, 12345, ANML_DTYPE_F16, 1, d4), ANML_E_FORMAT,
                         "weights/weight.bin@0x3039", "past the end");
    /* paths escaping the model directory */
    expect_resolve_error(
        s, blob_value(prog, "@model_path/../weights/weight.bin", o16, ANML_DTYPE_F16, 1, d4),
        ANML_E_FORMAT, NULL, "'..'");
    expect_resolve_error(
        s, blob_value(prog, "@model_path/weights/../../x.bin", o16, ANML_DTYPE_F16, 1, d4),
        ANML_E_FORMAT, NULL, "'..'");
    expect_resolve_error(s, blob_value(prog, "/etc/passwd", o16, ANML_DTYPE_F16, 1, d4),
                         ANML_E_FORMAT, NULL, "absolute");
    expect_resolve_error(s, blob_value(prog, "@model_path/", o16, ANML_DTYPE_F16, 1, d4),
                         ANML_E_FORMAT, NULL, "not a file");
    /* missing file: named as the program spells it, every time */
    expect_resolve_error(
        s, blob_value(prog, "@model_path/weights/nope.bin", 64, ANML_DTYPE_F16, 1, d4), ANML_E_IO,
        "weights/nope.bin", "cannot open");
    expect_resolve_error(
        s, blob_value(prog, "@model_path/weights/nope.bin", 64, ANML_DTYPE_F16, 1, d4), ANML_E_IO,
        "weights/nope.bin", "cannot open");
    /* the good blobs still resolve */
    struct mil_blob_view view;
    assert_int_equal(
        anml__blob_resolve(s, blob_value(prog, WPATH, o4, ANML_DTYPE_UINT4, 1, d16), &view, NULL),
        ANML_OK);
    anml__blob_store_free(s);

    /* a version-1 file is rejected at its first use, naming the file */
    put32(w->buf + 4, 1);
    char *dir2 = wf_save(w, "blob-v1");
    s = anml__blob_store_new(dir2);
    expect_resolve_error(s, blob_value(prog, WPATH, o16, ANML_DTYPE_F16, 1, d4), ANML_E_FORMAT,
                         "weights/weight.bin@0x0", "version 1");
    anml__blob_store_free(s);
    anml__mil_program_free(prog);
    free(dir);
    free(dir2);
    free(w);
}

/* ---- whole-program validation ---- */

static struct mil_value *string_value(struct mil_program *prog, const char *str) {
    struct mil_value *v = anml__arena_alloc(prog->arena, sizeof *v);
    v->kind = MIL_VALUE_TENSOR;
    v->type = anml__mil_tensor_type(prog->arena, ANML_DTYPE_STRING, 0, NULL);
    v->n_elem = 1;
    char **data = anml__arena_alloc(prog->arena, sizeof(char *));
    data[0] = anml__arena_strdup(prog->arena, str);
    v->data = data;
    return v;
}

static void test_validate_program_messages(void **state) {
    (void)state;
    struct wfile *w = malloc(sizeof *w);
    assert_non_null(w);
    wf_init(w);
    const uint8_t d[8] = { 0 };
    uint64_t good = wf_add(w, 1, d, 8, 0); /* fp16 [4] */
    uint64_t bad = wf_add(w, 1, d, 8, 0);
    put32(w->buf + bad, 0);
    char *dir = wf_save(w, "blob-validate");

    struct mil_program *prog = anml__mil_program_new();
    prog->format = MIL_FORMAT_MLMODELC;
    prog->model_dir = anml__arena_strdup(prog->arena, dir);
    prog->source_path = prog->model_dir;
    prog->n_functions = 1;
    prog->functions = anml__arena_array(prog->arena, 1, sizeof(struct mil_function));
    struct mil_function *fn = &prog->functions[0];
    fn->name = anml__arena_strdup(prog->arena, "main");
    fn->block.n_ops = 2;
    fn->block.ops = anml__arena_array(prog->arena, 2, sizeof(struct mil_op));
    int64_t d4[1] = { 4 };
    for (int i = 0; i < 2; i++) {
        struct mil_op *op = &fn->block.ops[i];
        op->type = anml__arena_strdup(prog->arena, "const");
        op->n_attrs = 2;
        op->attrs = anml__arena_array(prog->arena, 2, sizeof(struct mil_attr));
        op->attrs[0].name = anml__arena_strdup(prog->arena, "name");
        op->attrs[0].value = string_value(prog, i == 0 ? "w_good" : "layers_0_mlp_up_proj_weight");
        op->attrs[1].name = anml__arena_strdup(prog->arena, "val");
        op->attrs[1].value = blob_value(prog, WPATH, good, ANML_DTYPE_F16, 1, d4);
        op->n_results = 1;
        op->results = anml__arena_array(prog->arena, 1, sizeof(struct mil_named_type));
        op->results[0].name = anml__arena_strdup(prog->arena, i == 0 ? "w0" : "w1");
        op->line = 10 + i;
        op->col = 9;
    }
    struct anml_error err;
    prog->blobs = anml__blob_store_new(prog->model_dir);
    assert_int_equal(anml__mil_validate_blobs(prog, &err), ANML_OK);

    /* a bad blob as const val */
    fn->block.ops[1].attrs[1].value->blob_offset = bad;
    memset(&err, 0, sizeof err);
    assert_int_equal(anml__mil_validate_blobs(prog, &err), ANML_E_FORMAT);
    char want[256];
    snprintf(want, sizeof want,
             "const 'layers_0_mlp_up_proj_weight' (model.mil:11:9): weights/weight.bin@0x%llx: "
             "sentinel 0x00000000, expected 0xdeadbeef",
             (unsigned long long)bad);
    assert_string_equal(err.msg, want);

    /* a bad blob inside a literal argument's tuple, op without a name attribute, no position */
    fn->block.ops[1].attrs[1].value->blob_offset = good;
    struct mil_op *op = &fn->block.ops[0];
    op->n_attrs = 0;
    op->line = 0;
    op->type = anml__arena_strdup(prog->arena, "concat");
    struct mil_value *tup = anml__arena_alloc(prog->arena, sizeof *tup);
    tup->kind = MIL_VALUE_TUPLE;
    tup->n_items = 2;
    tup->items = anml__arena_array(prog->arena, 2, sizeof(struct mil_value *));
    tup->items[0] = blob_value(prog, WPATH, good, ANML_DTYPE_F16, 1, d4);
    tup->items[1] = blob_value(prog, WPATH, good, ANML_DTYPE_INT8, 1, d4);
    op->n_args = 1;
    op->args = anml__arena_array(prog->arena, 1, sizeof(struct mil_arg));
    op->args[0].name = anml__arena_strdup(prog->arena, "values");
    op->args[0].n_bindings = 1;
    op->args[0].bindings = anml__arena_array(prog->arena, 1, sizeof(struct mil_binding));
    op->args[0].bindings[0].value = tup;
    memset(&err, 0, sizeof err);
    assert_int_equal(anml__mil_validate_blobs(prog, &err), ANML_E_FORMAT);
    assert_non_null(strstr(err.msg, "concat 'w0': weights/weight.bin@0x40: blob holds fp16"));
    assert_string_equal(err.where, "weights/weight.bin@0x40");

    anml__mil_program_free(prog);
    free(dir);
    free(w);
}

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
        cmocka_unit_test(test_header_checks),
        cmocka_unit_test(test_appendix_b_layout),
        cmocka_unit_test(test_record_hostile),
        cmocka_unit_test(test_resolve_every_dtype),
        cmocka_unit_test(test_resolve_hostile),
        cmocka_unit_test(test_validate_program_messages),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
