/* status.c -- status strings, structured errors, logging and the release-mode assertion. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

const char *anml_version(void) {
    return "0.1.0";
}

const char *anml_status_str(enum anml_status status) {
    switch (status) {
    case ANML_OK: return "ok";
    case ANML_E_NOMEM: return "out of memory";
    case ANML_E_IO: return "I/O error";
    case ANML_E_FORMAT: return "malformed input";
    case ANML_E_UNSUPPORTED: return "unsupported";
    case ANML_E_INVALID_ARG: return "invalid argument";
    case ANML_E_SHAPE: return "shape or dtype mismatch";
    case ANML_E_ABORTED: return "aborted";
    case ANML_E_MISUSE: return "API misuse";
    case ANML_E_INTERNAL: return "internal error";
    case ANML_E_NOT_FOUND: return "not found";
    case ANML_STATUS_COUNT: break;
    }
    return "unknown status";
}

enum anml_status anml__verr(struct anml_error *err, enum anml_status code, const char *where,
                            const char *fmt, va_list ap) {
    if (err) {
        err->code = code;
        snprintf(err->where, sizeof err->where, "%s", where ? where : "");
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    }
    return code;
}

enum anml_status anml__err(struct anml_error *err, enum anml_status code, const char *where,
                           const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    anml__verr(err, code, where, fmt, ap);
    va_end(ap);
    return code;
}

enum anml_status anml__verr_field(struct anml_error *err, enum anml_status code, const char *path,
                                  const char *base, const char *field, const char *fmt,
                                  va_list ap) {
    char reason[384];
    vsnprintf(reason, sizeof reason, fmt, ap);
    if (field && field[0]) {
        return anml__err(err, code, path, "%s: %s: %s", base, field, reason);
    }
    return anml__err(err, code, path, "%s: %s", base, reason);
}

void anml__err_prefix(struct anml_error *err, const char *fmt, ...) {
    if (!err) {
        return;
    }
    char prefix[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[sizeof err->msg];
    memcpy(old, err->msg, sizeof old);
    snprintf(err->msg, sizeof err->msg, "%s: %s", prefix, old);
}

/* ---- logging ---- */

static anml_log_fn g_log_fn;
static void *g_log_ud;
static enum anml_log_level g_log_level = ANML_LOG_LEVEL_WARN;

void anml_log_set(anml_log_fn fn, void *user_data, enum anml_log_level max_level) {
    g_log_fn = fn;
    g_log_ud = user_data;
    g_log_level = max_level;
}

void anml__log(enum anml_log_level level, const char *fmt, ...) {
    if (level > g_log_level) {
        return;
    }
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (g_log_fn) {
        g_log_fn(level, line, g_log_ud);
        return;
    }
    static const char *const names[] = { "error", "warn", "info", "debug" };
    fprintf(stderr, "anml %s: %s\n", names[level < ANML_LOG_LEVEL_COUNT ? level : 0], line);
}

_Noreturn void anml__assert_fail(const char *file, int line, const char *expr) {
    anml__log(ANML_LOG_LEVEL_ERROR, "assertion failed at %s:%d: %s", file, line, expr);
    abort();
}
