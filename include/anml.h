/*
 * anml.h -- the one public header of anml, a C library that reads Apple CoreML ML Programs
 * (.mlmodelc / .mlpackage, as written for ANEMLL language models) and runs them on any CPU.
 *
 * This header is the manual. Conventions that hold for every function below:
 *
 *  - Fallible functions return enum anml_status; ANML_OK is 0. Functions that create a handle
 *    take an optional `struct anml_error *err` out-parameter that receives the code, a one-line
 *    message and where it happened (a file name with line:col or @offset). Passing NULL is fine.
 *  - Every *_load / *_create has exactly one *_free; *_free(NULL) is a no-op.
 *  - Pointers returned by anml are borrowed from the handle they came from unless the comment
 *    says "caller frees with anml_free".
 *  - The library never prints to stdout, never calls exit() and never aborts on bad input.
 *  - Logging is the only global state: see anml_log_set().
 */
#ifndef ANML_H
#define ANML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#  define ANML_API __attribute__((visibility("default")))
#else
#  define ANML_API
#endif

#define ANML_VERSION_MAJOR 0
#define ANML_VERSION_MINOR 1
#define ANML_VERSION_PATCH 0

/* Returns the library version as "MAJOR.MINOR.PATCH". Ownership: static string.
 * Thread-safety: safe. */
ANML_API const char *anml_version(void);

/* ---- status codes ---------------------------------------------------------------------------
 * Values are never renumbered; new codes are added just before ANML_STATUS_COUNT. */
enum anml_status {
    ANML_OK = 0,
    ANML_E_NOMEM,       /* an allocation failed */
    ANML_E_IO,          /* a file could not be opened, read, mapped or written */
    ANML_E_FORMAT,      /* a file's contents are malformed (the message says where and why) */
    ANML_E_UNSUPPORTED, /* well-formed input that anml does not implement */
    ANML_E_INVALID_ARG, /* a caller passed a bad argument */
    ANML_E_SHAPE,       /* tensor shapes or dtypes do not agree */
    ANML_E_ABORTED,     /* an abort callback asked to stop */
    ANML_E_MISUSE,      /* an API call in a state where it is not allowed */
    ANML_E_INTERNAL,    /* a bug in anml */
    ANML_E_NOT_FOUND,   /* a named function, input, output or state does not exist */
    ANML_STATUS_COUNT
};

/* Returns a static, never-NULL description of a status code. Thread-safety: safe. */
ANML_API const char *anml_status_str(enum anml_status status);

/* Error detail for calls that create handles. `where` names the file and position, e.g.
 * "model.mil:412:9" or "weights/weight.bin@0x1f40"; it is empty when no position applies. */
struct anml_error {
    enum anml_status code;
    char where[256];
    char msg[512];
};

/* ---- data types -----------------------------------------------------------------------------
 * Every scalar type of the MIL type system. Tensors handed to and from anml use one of these;
 * sub-byte types (uint1..uint6, int4) only occur inside compressed constants. */
enum anml_dtype {
    ANML_DTYPE_INVALID = 0,
    ANML_DTYPE_BOOL, /* one byte per element, 0 or 1 */
    ANML_DTYPE_STRING,
    ANML_DTYPE_F16, /* IEEE binary16, stored as uint16_t bit patterns */
    ANML_DTYPE_F32,
    ANML_DTYPE_F64,
    ANML_DTYPE_BF16,
    ANML_DTYPE_INT4,
    ANML_DTYPE_INT8,
    ANML_DTYPE_INT16,
    ANML_DTYPE_INT32,
    ANML_DTYPE_INT64,
    ANML_DTYPE_UINT1,
    ANML_DTYPE_UINT2,
    ANML_DTYPE_UINT3,
    ANML_DTYPE_UINT4,
    ANML_DTYPE_UINT6,
    ANML_DTYPE_UINT8,
    ANML_DTYPE_UINT16,
    ANML_DTYPE_UINT32,
    ANML_DTYPE_UINT64,
    ANML_DTYPE_FP8E4M3FN,
    ANML_DTYPE_FP8E5M2,
    ANML_DTYPE_COUNT
};

/* Returns the MIL spelling of a dtype ("fp16", "int32", "uint4", ...), or "invalid".
 * Ownership: static string. Thread-safety: safe. */
ANML_API const char *anml_dtype_name(enum anml_dtype dtype);

/* Returns the storage width of one element in bits (1..64); 0 for STRING and INVALID.
 * Thread-safety: safe. */
ANML_API int anml_dtype_bits(enum anml_dtype dtype);

/* ---- logging (the only global state) ------------------------------------------------------- */
enum anml_log_level {
    ANML_LOG_LEVEL_ERROR = 0,
    ANML_LOG_LEVEL_WARN,
    ANML_LOG_LEVEL_INFO,
    ANML_LOG_LEVEL_DEBUG,
    ANML_LOG_LEVEL_COUNT
};

/* A log sink receives one line per event, without a trailing newline. */
typedef void (*anml_log_fn)(enum anml_log_level level, const char *line, void *user_data);

/* Sets the log sink and the most verbose level delivered. fn == NULL restores the default sink
 * (stderr). The default level is WARN. Thread-safety: call before other threads use anml; the
 * sink itself may be called from any thread. */
ANML_API void anml_log_set(anml_log_fn fn, void *user_data, enum anml_log_level max_level);

/* Frees memory that a function documented as "caller frees with anml_free" returned.
 * anml_free(NULL) is a no-op. Thread-safety: safe. */
ANML_API void anml_free(void *ptr);

#ifdef __cplusplus
}
#endif
#endif /* ANML_H */
