/*
 * core.h -- private helpers shared by every part of the library: error reporting, logging,
 * allocation, arenas, checked arithmetic, file access (read whole file, read-only mmap),
 * fp16 conversion and the dtype table.
 */
#ifndef ANML_CORE_H
#define ANML_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "anml.h"

#define ANML_PRINTF(fmt_idx, arg_idx) __attribute__((format(printf, fmt_idx, arg_idx)))

/* ---- errors ---- */

/* Fills *err (when not NULL) and returns `code`, so callers can write
 * `return anml__err(err, ANML_E_FORMAT, "model.mil:3:4", "expected '('")`. `where` may be NULL. */
enum anml_status anml__err(struct anml_error *err, enum anml_status code, const char *where,
                           const char *fmt, ...) ANML_PRINTF(4, 5);
enum anml_status anml__verr(struct anml_error *err, enum anml_status code, const char *where,
                            const char *fmt, va_list ap) ANML_PRINTF(4, 0);
/* "<base>: <field>: <reason>" (just "<base>: <reason>" when field is NULL or empty), with
 * where = path: errors about one field of a JSON/YAML file. */
enum anml_status anml__verr_field(struct anml_error *err, enum anml_status code, const char *path,
                                  const char *base, const char *field, const char *fmt, va_list ap)
    ANML_PRINTF(6, 0);
/* Prefixes err->msg with "<prefix>: " (used to add context such as a const's name). */
void anml__err_prefix(struct anml_error *err, const char *fmt, ...) ANML_PRINTF(2, 3);

/* ---- logging ---- */
void anml__log(enum anml_log_level level, const char *fmt, ...) ANML_PRINTF(2, 3);
#define ANML_LOG_ERROR(...) anml__log(ANML_LOG_LEVEL_ERROR, __VA_ARGS__)
#define ANML_LOG_WARN(...)  anml__log(ANML_LOG_LEVEL_WARN, __VA_ARGS__)
#define ANML_LOG_INFO(...)  anml__log(ANML_LOG_LEVEL_INFO, __VA_ARGS__)
#define ANML_LOG_DEBUG(...) anml__log(ANML_LOG_LEVEL_DEBUG, __VA_ARGS__)

/* Cheap internal invariant, on in release builds: logs file:line and aborts. Never use it for
 * properties of input data. */
#define ANML_ASSERT(x)                           \
  do {                                           \
    if (!(x)) {                                  \
      anml__assert_fail(__FILE__, __LINE__, #x); \
    }                                            \
  } while (0)
_Noreturn void anml__assert_fail(const char *file, int line, const char *expr);

/* ---- allocation (all library allocations go through these) ---- */
void *anml__malloc(size_t n);
void *anml__calloc(size_t count, size_t size);
void *anml__realloc(void *p, size_t n);
void anml__free(void *p);
char *anml__strdup(const char *s);
char *anml__strndup(const char *s, size_t n);

/* ---- arena: many small allocations freed together (the IR of a program lives in one) ---- */
struct anml_arena;
struct anml_arena *anml__arena_create(void);
void anml__arena_free(struct anml_arena *a);
/* Zero-filled, 16-byte aligned; NULL on overflow or out of memory. */
void *anml__arena_alloc(struct anml_arena *a, size_t n);
void *anml__arena_array(struct anml_arena *a, size_t count, size_t size);
char *anml__arena_strdup(struct anml_arena *a, const char *s);
char *anml__arena_strndup(struct anml_arena *a, const char *s, size_t n);
/* Bytes handed out so far (for statistics). */
size_t anml__arena_used(const struct anml_arena *a);

/* ---- checked arithmetic: return false on overflow ---- */
static inline bool anml__add_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_add_overflow(a, b, out);
}
static inline bool anml__mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool anml__mul_i64(int64_t a, int64_t b, int64_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
static inline bool anml__add_size(size_t a, size_t b, size_t *out) {
    return !__builtin_add_overflow(a, b, out);
}
static inline bool anml__mul_size(size_t a, size_t b, size_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
/* Product of dims (all >= 0); false when a dim is negative or the product overflows int64. */
bool anml__shape_numel(const int64_t *dims, int rank, int64_t *out);

/* ---- files ---- */
/* Reads a whole file into a NUL-terminated buffer (caller frees with anml__free). */
enum anml_status anml__read_file(const char *path, char **data, size_t *size,
                                 struct anml_error *err);
/* Writes a whole file. */
enum anml_status anml__write_file(const char *path, const void *data, size_t size,
                                  struct anml_error *err);
bool anml__is_dir(const char *path);
bool anml__is_file(const char *path);
/* mkdir -p. */
enum anml_status anml__mkdirs(const char *path, struct anml_error *err);
/* Removes a file or a directory tree (best effort; symlinks are removed, not followed). */
void anml__rmtree(const char *path);
/* Joins a and b with '/' (caller frees with anml__free); NULL on out of memory. */
char *anml__path_join(const char *a, const char *b);

/* A read-only memory map of a whole file. An empty file maps to data == NULL, size == 0. */
struct anml_mmap {
    const uint8_t *data;
    size_t size;
    char *path; /* owned copy of the path, for error messages */
};
enum anml_status anml__mmap_open(const char *path, struct anml_mmap *m, struct anml_error *err);
void anml__mmap_close(struct anml_mmap *m);

/* ---- fp16 / bf16 ---- */
float anml__fp16_to_fp32(uint16_t h);
uint16_t anml__fp32_to_fp16(float f); /* round to nearest, ties to even */
float anml__bf16_to_fp32(uint16_t h);
uint16_t anml__fp32_to_bf16(float f);

/* ---- dtype table ---- */
/* MIL text name -> dtype; ANML_DTYPE_INVALID if unknown. `n` is the name's length. */
enum anml_dtype anml__dtype_from_name(const char *name, size_t n);
/* weight.bin blob dtype code <-> dtype (0 / INVALID when there is none). */
enum anml_dtype anml__dtype_from_blob_code(uint32_t code);
uint32_t anml__dtype_blob_code(enum anml_dtype dt);
/* protobuf MILSpec.DataType enum value <-> dtype. */
enum anml_dtype anml__dtype_from_proto(int code);
int anml__dtype_proto(enum anml_dtype dt);
/* Sub-byte integer types (uint1..uint6, int4). */
bool anml__dtype_is_subbyte(enum anml_dtype dt);
/* Bytes one element takes in an unpacked in-memory tensor (sub-byte types unpack to 1 byte). */
size_t anml__dtype_size(enum anml_dtype dt);

/* ---- npy: NumPy .npy files (npy.c) ---- */
/* Parses a .npy file held in memory (versions 1-3; descrs <f2 <f4 <f8 |i1 <i2 <i4 <i8 |u1 <u2
 * <u4 <u8 |b1; C order only). dims needs ANML_MAX_DIMS entries. On success the data is the
 * *nbytes bytes at buf + *data_offset. `name` is used in error positions. */
enum anml_status anml__npy_parse(const uint8_t *buf, size_t len, const char *name,
                                 enum anml_dtype *dtype, int32_t *rank, int64_t *dims,
                                 size_t *data_offset, size_t *nbytes, struct anml_error *err);
/* Reads a .npy file; *data (caller frees with anml__free) holds *nbytes bytes. */
enum anml_status anml__npy_read(const char *path, enum anml_dtype *dtype, int32_t *rank,
                                int64_t *dims, void **data, size_t *nbytes, struct anml_error *err);
/* Encodes a version-1.0 .npy image in memory (caller frees *out with anml__free). */
enum anml_status anml__npy_encode(enum anml_dtype dtype, int32_t rank, const int64_t *dims,
                                  const void *data, uint8_t **out, size_t *out_len,
                                  struct anml_error *err);
/* Writes a version-1.0 .npy file. */
enum anml_status anml__npy_write(const char *path, enum anml_dtype dtype, int32_t rank,
                                 const int64_t *dims, const void *data, struct anml_error *err);

/* ---- little-endian loads (unaligned-safe) ---- */
static inline uint32_t anml__le32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t anml__le64(const uint8_t *p) {
    return (uint64_t)anml__le32(p) | ((uint64_t)anml__le32(p + 4) << 32);
}

/* ---- thread pool (threadpool.c) ----
 * A fixed set of persistent worker threads that run one task at a time: anml__threadpool_run()
 * calls fn(arg, ith, nth) once for every share ith in [0, nth), nth = the pool's size, and
 * returns when all calls have returned, so consecutive runs are separated by a barrier. Kernels
 * split their output rows statically by (ith, nth). Thread i normally runs share i (the caller
 * runs share 0), but a thread that is done takes any share not started yet: on a busy machine a
 * descheduled worker delays nothing, and since each share's work is fixed, results do not depend
 * on which thread ran it. Two calls with the same ith never run at once, so per-share scratch
 * may be indexed by ith.
 *
 * Ownership: a context owns its pool, or borrows its session's pool (one pool serves every
 * context of a session, which runs them one at a time). Workers start on the first run that
 * uses them (a pool that only ever sees small ops never creates a thread); if a thread cannot be
 * created the others (or the caller alone) run its shares. Idle workers spin briefly, then sleep
 * on a condition variable.
 * Thread-safety: one caller at a time per pool; fn may be called from any of the threads. */
struct anml_threadpool;
typedef void (*anml_task_fn)(void *arg, int32_t ith, int32_t nth);
/* n_threads <= 0: the number of online cores; at most ANML_MAX_THREADS. NULL on out of
 * memory. */
#define ANML_MAX_THREADS 32
struct anml_threadpool *anml__threadpool_create(int32_t n_threads);
void anml__threadpool_free(struct anml_threadpool *tp); /* joins the workers; NULL is a no-op */
/* Shares a run hands out (nth; 1 for NULL). */
int32_t anml__threadpool_size(const struct anml_threadpool *tp);
/* Runs fn on every thread (only on the caller when tp is NULL or has one thread). */
void anml__threadpool_run(struct anml_threadpool *tp, anml_task_fn fn, void *arg);
/* Number of online cores (at least 1). */
int32_t anml__n_cores(void);

#endif /* ANML_CORE_H */
