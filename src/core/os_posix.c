/* os_posix.c -- file access for the library: whole-file reads and writes, directories and
 * read-only memory maps. All OS-specific code of the library lives here. */
#define _XOPEN_SOURCE 700 /* nftw */

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"

enum anml_status anml__read_file(const char *path, char **data, size_t *size,
                                 struct anml_error *err) {
    *data = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        return anml__err(err, ANML_E_IO, path, "cannot open: %s", strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return anml__err(err, ANML_E_IO, path, "not a regular file");
    }
    size_t n = (size_t)st.st_size;
    char *buf = anml__malloc(n + 1);
    if (!buf) {
        close(fd);
        return anml__err(err, ANML_E_NOMEM, path, "cannot allocate %zu bytes", n + 1);
    }
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            anml__free(buf);
            close(fd);
            return anml__err(err, ANML_E_IO, path, "read failed after %zu of %zu bytes", got, n);
        }
        got += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    *data = buf;
    *size = n;
    return ANML_OK;
}

enum anml_status anml__write_file(const char *path, const void *data, size_t size,
                                  struct anml_error *err) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        return anml__err(err, ANML_E_IO, path, "cannot create: %s", strerror(errno));
    }
    size_t put = size ? fwrite(data, 1, size, f) : 0;
    int rc = fclose(f);
    if (put != size || rc != 0) {
        return anml__err(err, ANML_E_IO, path, "write failed");
    }
    return ANML_OK;
}

bool anml__is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

bool anml__is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

enum anml_status anml__mkdirs(const char *path, struct anml_error *err) {
    char *p = anml__strdup(path);
    if (!p) {
        return anml__err(err, ANML_E_NOMEM, path, "out of memory");
    }
    for (char *s = p + 1;; s++) {
        bool end = *s == '\0';
        if (*s == '/' || end) {
            *s = '\0';
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                enum anml_status st =
                    anml__err(err, ANML_E_IO, p, "cannot create directory: %s", strerror(errno));
                anml__free(p);
                return st;
            }
            if (end) {
                break;
            }
            *s = '/';
        }
    }
    anml__free(p);
    return ANML_OK;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    (void)remove(path); /* keep going past entries that cannot be removed */
    return 0;
}

void anml__rmtree(const char *path) {
    (void)nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

char *anml__path_join(const char *a, const char *b) {
    size_t la = strlen(a);
    size_t lb = strlen(b);
    char *r = anml__malloc(la + lb + 2);
    if (!r) {
        return NULL;
    }
    memcpy(r, a, la);
    size_t n = la;
    if (la && a[la - 1] != '/') {
        r[n++] = '/';
    }
    memcpy(r + n, b, lb + 1);
    return r;
}

enum anml_status anml__mmap_open(const char *path, struct anml_mmap *m, struct anml_error *err) {
    memset(m, 0, sizeof *m);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        return anml__err(err, ANML_E_IO, path, "cannot open: %s", strerror(errno));
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return anml__err(err, ANML_E_IO, path, "not a regular file");
    }
    m->path = anml__strdup(path);
    if (!m->path) {
        close(fd);
        return anml__err(err, ANML_E_NOMEM, path, "out of memory");
    }
    if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            close(fd);
            anml__free(m->path);
            m->path = NULL;
            return anml__err(err, ANML_E_IO, path, "mmap failed: %s", strerror(errno));
        }
        m->data = p;
        m->size = (size_t)st.st_size;
    }
    close(fd);
    return ANML_OK;
}

void anml__mmap_close(struct anml_mmap *m) {
    if (m->data) {
        munmap((void *)m->data, m->size);
    }
    anml__free(m->path);
    memset(m, 0, sizeof *m);
}
