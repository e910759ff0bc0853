/*
 * ophelper.h -- shared helpers for op tests: run a small MIL text program through the public
 * component API (anml_program_load_mil, anml_context_create/run/output) and compare its outputs
 * with hand-computed values. Header-only (static functions) so every test executable can include
 * it without CMake changes; include it after testutil.h.
 *
 * Typical use:
 *     struct oph h;
 *     oph_open(&h, MIL, NULL);
 *     float x[6] = { ... };
 *     struct anml_named_tensor in[] = { oph_in("x", ANML_DTYPE_F32, OPH_RANK(2, 3), OPH_DIMS(2, 3), x) };
 *     oph_run(&h, in, 1);
 *     oph_check_f32(&h, "z", OPH_RANK(3, 2), OPH_DIMS(3, 2), want, 0.0f);
 *     oph_close(&h);
 * and for programs that must be rejected:
 *     oph_expect_fail(MIL, "concat", "values[1]");
 */
#ifndef ANML_TEST_OPHELPER_H
#define ANML_TEST_OPHELPER_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "testutil.h"

/* Shapes as compound literals: OPH_DIMS(2, 3) and OPH_RANK(2, 3) == 2. */
#define OPH_DIMS(...) ((const int64_t[]){ __VA_ARGS__ })
#define OPH_RANK(...) ((int32_t)(sizeof((const int64_t[]){ __VA_ARGS__ }) / sizeof(int64_t)))

struct oph {
    struct anml_program *prog;
    struct anml_context *ctx;
    struct anml_state *state; /* created on demand by oph_state() */
};

/* Loads `mil` and creates a context for function fn (NULL = default); fails the test (printing
 * the error) when either step fails. */
static inline void oph_open(struct oph *h, const char *mil, const char *fn) {
    struct anml_error err;
    memset(h, 0, sizeof *h);
    memset(&err, 0, sizeof err);
    enum anml_status st = anml_program_load_mil(mil, strlen(mil), NULL, &h->prog, &err);
    if (st != ANML_OK) {
        fail_msg("program load failed (%s): %s: %s", anml_status_str(st), err.where, err.msg);
    }
    st = anml_context_create(h->prog, fn, &h->ctx, &err);
    if (st != ANML_OK) {
        anml_program_free(h->prog);
        fail_msg("context creation failed (%s): %s: %s", anml_status_str(st), err.where, err.msg);
    }
}

static inline void oph_close(struct oph *h) {
    anml_context_free(h->ctx);
    anml_state_free(h->state);
    anml_program_free(h->prog);
    memset(h, 0, sizeof *h);
}

/* The state of the program's function fn (created and filled with zeros on first use). */
static inline struct anml_state *oph_state(struct oph *h, const char *fn) {
    if (!h->state) {
        struct anml_error err;
        memset(&err, 0, sizeof err);
        assert_int_equal(anml_state_create(&h->state, &err), ANML_OK);
        if (anml_state_add_program(h->state, h->prog, fn, &err) != ANML_OK) {
            fail_msg("state_add_program: %s", err.msg);
        }
    }
    return h->state;
}

/* Expects `mil` to be rejected at program load or at context creation, with a message that
 * contains needle1 and (when not NULL) needle2. Returns the status. */
static inline enum anml_status oph_expect_fail(const char *mil, const char *needle1,
                                               const char *needle2) {
    struct anml_error err;
    struct anml_program *prog = NULL;
    struct anml_context *ctx = NULL;
    memset(&err, 0, sizeof err);
    enum anml_status st = anml_program_load_mil(mil, strlen(mil), NULL, &prog, &err);
    if (st == ANML_OK) {
        st = anml_context_create(prog, NULL, &ctx, &err);
        anml_context_free(ctx);
    }
    anml_program_free(prog);
    if (st == ANML_OK) {
        fail_msg("expected a failure mentioning '%s', but the program was accepted", needle1);
    }
    char full[1024];
    snprintf(full, sizeof full, "%s: %s", err.where, err.msg);
    if (!strstr(full, needle1) || (needle2 && !strstr(full, needle2))) {
        fail_msg("error message \"%s\" does not mention '%s'%s%s", full, needle1,
                 needle2 ? " and " : "", needle2 ? needle2 : "");
    }
    return st;
}

static inline struct anml_named_tensor oph_in(const char *name, enum anml_dtype dt, int32_t rank,
                                              const int64_t *shape, void *data) {
    struct anml_named_tensor t;
    memset(&t, 0, sizeof t);
    t.name = name;
    t.tensor.dtype = dt;
    t.tensor.rank = rank;
    for (int32_t i = 0; i < rank; i++) {
        t.tensor.shape[i] = shape[i];
    }
    t.tensor.data = data;
    return t;
}

/* Runs and returns the status (for runs that are expected to fail). */
static inline enum anml_status oph_run_status(struct oph *h, const struct anml_named_tensor *in,
                                              int32_t n) {
    return anml_context_run(h->ctx, in, n, h->state);
}

static inline void oph_run(struct oph *h, const struct anml_named_tensor *in, int32_t n) {
    enum anml_status st = oph_run_status(h, in, n);
    if (st != ANML_OK) {
        fail_msg("run failed (%s): %s", anml_status_str(st), anml_context_errmsg(h->ctx));
    }
}

/* Output `name`, checked to have dtype dt and the given shape. */
static inline struct anml_tensor oph_out(struct oph *h, const char *name, enum anml_dtype dt,
                                         int32_t rank, const int64_t *shape) {
    struct anml_tensor t;
    if (anml_context_output(h->ctx, name, &t) != ANML_OK) {
        fail_msg("no output '%s'", name);
    }
    if (t.dtype != dt) {
        fail_msg("output '%s' has dtype %s, expected %s", name, anml_dtype_name(t.dtype),
                 anml_dtype_name(dt));
    }
    if (t.rank != rank) {
        fail_msg("output '%s' has rank %d, expected %d", name, (int)t.rank, (int)rank);
    }
    for (int32_t i = 0; i < rank; i++) {
        if (t.shape[i] != shape[i]) {
            fail_msg("output '%s' dim %d is %lld, expected %lld", name, (int)i,
                     (long long)t.shape[i], (long long)shape[i]);
        }
    }
    return t;
}

static inline int64_t oph_numel(int32_t rank, const int64_t *shape) {
    int64_t n = 1;
    for (int32_t i = 0; i < rank; i++) {
        n *= shape[i];
    }
    return n;
}

/* fp32 output compared elementwise with an absolute tolerance (0 = exact; NaN matches NaN). */
static inline void oph_check_f32(struct oph *h, const char *name, int32_t rank,
                                 const int64_t *shape, const float *want, float tol) {
    struct anml_tensor t = oph_out(h, name, ANML_DTYPE_F32, rank, shape);
    const float *got = t.data;
    for (int64_t i = 0; i < oph_numel(rank, shape); i++) {
        bool both_nan = got[i] != got[i] && want[i] != want[i];
        float d = got[i] > want[i] ? got[i] - want[i] : want[i] - got[i];
        if (!both_nan && !(d <= tol) && got[i] != want[i]) {
            fail_msg("output '%s'[%lld] = %.9g, expected %.9g", name, (long long)i, (double)got[i],
                     (double)want[i]);
        }
    }
}

/* fp16 output compared with fp32 expectations (each rounded to fp16 first) within tol. */
static inline void oph_check_f16(struct oph *h, const char *name, int32_t rank,
                                 const int64_t *shape, const float *want, float tol) {
    struct anml_tensor t = oph_out(h, name, ANML_DTYPE_F16, rank, shape);
    const uint16_t *got = t.data;
    for (int64_t i = 0; i < oph_numel(rank, shape); i++) {
        float g = anml__fp16_to_fp32(got[i]);
        float w = anml__fp16_to_fp32(anml__fp32_to_fp16(want[i]));
        float d = g > w ? g - w : w - g;
        if (!(d <= tol) && g != w && !(g != g && w != w)) {
            fail_msg("output '%s'[%lld] = %.9g, expected %.9g", name, (long long)i, (double)g,
                     (double)w);
        }
    }
}

/* Integer output (any integer or bool dtype) compared exactly. */
static inline void oph_check_int(struct oph *h, const char *name, enum anml_dtype dt, int32_t rank,
                                 const int64_t *shape, const int64_t *want) {
    struct anml_tensor t = oph_out(h, name, dt, rank, shape);
    for (int64_t i = 0; i < oph_numel(rank, shape); i++) {
        int64_t g = 0;
        switch (dt) {
        case ANML_DTYPE_BOOL:
        case ANML_DTYPE_UINT8: g = ((const uint8_t *)t.data)[i]; break;
        case ANML_DTYPE_INT8: g = ((const int8_t *)t.data)[i]; break;
        case ANML_DTYPE_INT16: g = ((const int16_t *)t.data)[i]; break;
        case ANML_DTYPE_UINT16: g = ((const uint16_t *)t.data)[i]; break;
        case ANML_DTYPE_INT32: g = ((const int32_t *)t.data)[i]; break;
        case ANML_DTYPE_UINT32: g = ((const uint32_t *)t.data)[i]; break;
        case ANML_DTYPE_INT64: g = ((const int64_t *)t.data)[i]; break;
        default: fail_msg("oph_check_int: %s is not an integer dtype", anml_dtype_name(dt));
        }
        if (g != want[i]) {
            fail_msg("output '%s'[%lld] = %lld, expected %lld", name, (long long)i, (long long)g,
                     (long long)want[i]);
        }
    }
}

/* Raw bytes of an output compared exactly (bit-exact moves of any dtype). */
static inline void oph_check_bytes(struct oph *h, const char *name, enum anml_dtype dt,
                                   int32_t rank, const int64_t *shape, const void *want,
                                   size_t elem_size) {
    struct anml_tensor t = oph_out(h, name, dt, rank, shape);
    size_t n = (size_t)oph_numel(rank, shape) * elem_size;
    if (n && memcmp(t.data, want, n) != 0) {
        for (size_t i = 0; i < n; i++) {
            if (((const uint8_t *)t.data)[i] != ((const uint8_t *)want)[i]) {
                fail_msg("output '%s' differs at byte %zu (element %zu)", name, i, i / elem_size);
            }
        }
    }
}

#endif /* ANML_TEST_OPHELPER_H */
