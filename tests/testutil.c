/* testutil.c -- see testutil.h. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

const char *anml_test_shared_dir(void) {
    const char *env = getenv("ANML_SHARED_DIR");
    const char *dir = env && *env ? env : ANML_SHARED_DIR;
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        return NULL;
    }
    return dir;
}

int anml_test_fixtures_required(void) {
    const char *env = getenv("ANML_REQUIRE_FIXTURES");
    return env && *env && strcmp(env, "0") != 0;
}

const char *anml_test_shared_path(const char *rel) {
    static char buf[4096];
    const char *dir = anml_test_shared_dir();
    snprintf(buf, sizeof buf, "%s/%s", dir ? dir : ANML_SHARED_DIR, rel);
    return buf;
}

char *anml_test_read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        return NULL;
    }
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (n + 4096 + 1 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        size_t got = fread(buf + n, 1, 4096, f);
        n += got;
        if (got == 0) {
            break;
        }
    }
    fclose(f);
    buf[n] = '\0';
    if (size) {
        *size = n;
    }
    return buf;
}

static char *slurp_fd(FILE *f) {
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    buf[n] = '\0';
    return buf;
}

int anml_test_run(const char *cmd, char **out, char **err_out) {
    char errfile[] = "/tmp/anml_test_err_XXXXXX";
    int efd = mkstemp(errfile);
    if (efd < 0) {
        return -1;
    }
    close(efd);
    size_t len = strlen(cmd) + strlen(errfile) + 16;
    char *full = malloc(len);
    snprintf(full, len, "%s 2>%s", cmd, errfile);
    FILE *p = popen(full, "r");
    free(full);
    if (!p) {
        unlink(errfile);
        return -1;
    }
    char *o = slurp_fd(p);
    int status = pclose(p);
    if (out) {
        *out = o;
    } else {
        free(o);
    }
    if (err_out) {
        *err_out = anml_test_read_file(errfile, NULL);
    }
    unlink(errfile);
    if (status == -1) {
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

char *anml_test_tmpdir(const char *tag) {
    char tmpl[4096];
    snprintf(tmpl, sizeof tmpl, "%s/tmp-%s-XXXXXX", ANML_BINARY_DIR, tag);
    char *d = mkdtemp(tmpl);
    return d ? strdup(d) : NULL;
}
