/*
 * dispatch.c -- chooses the kernel set once per process: CPU feature detection
 * (__builtin_cpu_supports on x86), overridden by the environment variable ANML_KERNELS=ref|avx2
 * (the only one the library reads). The choice is logged at INFO ("kern: ...").
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "kernels/kernels.h"

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
#ifdef ANML_HAVE_AVX2_KERNELS
static const char k_built[] = "ref, avx2";
#else
static const char k_built[] = "ref";
#endif
static const struct anml_kernels *g_kernels = &anml__kernels_ref;

static bool cpu_has_avx2(void) {
#if defined(ANML_HAVE_AVX2_KERNELS) && (defined(__x86_64__) || defined(__i386__))
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("f16c");
#else
    return false;
#endif
}

const struct anml_kernels *anml__kernels_variant(const char *name) {
    if (strcmp(name, "ref") == 0) {
        return &anml__kernels_ref;
    }
#ifdef ANML_HAVE_AVX2_KERNELS
    if (strcmp(name, "avx2") == 0 && cpu_has_avx2()) {
        return &anml__kernels_avx2;
    }
#endif
    return NULL;
}

static void choose(void) {
    const struct anml_kernels *best = anml__kernels_variant("avx2");
    if (!best) {
        best = &anml__kernels_ref;
    }
    const char *env = getenv("ANML_KERNELS");
    const char *why = "best for this CPU";
    if (env && *env) {
        const struct anml_kernels *forced = anml__kernels_variant(env);
        if (forced) {
            best = forced;
            why = "ANML_KERNELS";
        } else {
            ANML_LOG_WARN("kern: ANML_KERNELS=%s is not available here (built: %s; CPU %s); "
                          "using %s",
                          env, k_built,
                          cpu_has_avx2() ? "has avx2+fma+f16c" : "lacks avx2+fma+f16c", best->name);
        }
    }
    g_kernels = best;
    ANML_LOG_INFO("kern: using %s kernels (%s)", best->name, why);
}

const struct anml_kernels *anml__kernels(void) {
    pthread_once(&g_once, choose);
    return g_kernels;
}
