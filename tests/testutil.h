/* testutil.h -- helpers shared by the test executables (cmocka-based). */
#ifndef ANML_TESTUTIL_H
#define ANML_TESTUTIL_H

#undef NDEBUG
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
/* cmocka.h needs the headers above first. */
// clang-format off
#include <cmocka.h>
// clang-format on

#include "anml.h"

/* The shared fixtures directory (ANML_SHARED_DIR at build time, or $ANML_SHARED_DIR), or NULL
 * when it does not exist. */
const char *anml_test_shared_dir(void);

/* Call at the top of a test that needs ../shared: when it is missing, the test is skipped with a
 * message naming the directory -- or fails, when $ANML_REQUIRE_FIXTURES is set (CI sets it, so a
 * missing fixture directory can never hide in a green run). */
#define ANML_TEST_REQUIRE_SHARED()                                               \
  do {                                                                           \
    if (!anml_test_shared_dir()) {                                               \
      if (anml_test_fixtures_required()) {                                       \
        fail_msg("fixtures required but %s is missing", ANML_SHARED_DIR);        \
      }                                                                          \
      print_message("SKIP: shared fixtures not found at %s\n", ANML_SHARED_DIR); \
      skip();                                                                    \
    }                                                                            \
  } while (0)
int anml_test_fixtures_required(void);

/* "<shared>/<rel>" in a static buffer (valid until the next call). */
const char *anml_test_shared_path(const char *rel);

/* Runs a shell command, captures stdout (caller frees with free) and returns the exit status
 * (or -1 when it could not run). stderr goes to *err_out when not NULL. */
int anml_test_run(const char *cmd, char **out, char **err_out);

/* Reads a whole file (caller frees with free); NULL when it cannot. */
char *anml_test_read_file(const char *path, size_t *size);

/* A fresh empty temporary directory under the build tree (caller frees with free). */
char *anml_test_tmpdir(const char *tag);

#endif
