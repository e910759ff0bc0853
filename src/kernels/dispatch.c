/*
 * dispatch.c -- chooses the kernel set once per process: CPU feature detection
 * (__builtin_cpu_supports on x86), overridden by the environment variable
 * ANML_KERNELS=ref|avx2|avx512 (the only one the library reads). The choice is logged at INFO
 * ("kern: ...").
 *
 * Preference: avx512 (AVX-512 F/BW/VL/VBMI on top of AVX2+FMA+F16C) > avx2 > ref. The avx512 set
 * is composed here, once: the avx2 table with the AVX-512 6- and 8-bit LUT kernels in place.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "kernels/kernels.h"

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static const struct anml_kernels *g_kernels = &anml__kernels_ref;
#ifdef ANML_HAVE_AVX2_KERNELS
static const char k_built[] = "ref, avx2, avx512";
static pthread_once_t g_avx512_once = PTHREAD_ONCE_INIT;
static struct anml_kernels g_avx512;
#else
static const char k_built[] = "ref";
#endif

#ifdef ANML_HAVE_AVX2_KERNELS
static bool cpu_has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
           __builtin_cpu_supports("f16c");
}

static bool cpu_has_avx512(void) {
    return cpu_has_avx2() && __builtin_cpu_supports("avx512f") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512vbmi");
}

static void compose_avx512(void) {
    g_avx512 = anml__kernels_avx2;
    g_avx512.name = "avx512";
    g_avx512.matvec_lut6 = anml__avx512_matvec_lut6;
    g_avx512.matvec_lut8 = anml__avx512_matvec_lut8;
    g_avx512.decode_lut6 = anml__avx512_decode_lut6;
    g_avx512.decode_lut8 = anml__avx512_decode_lut8;
}
#endif

const struct anml_kernels *anml__kernels_variant(const char *name) {
    if (strcmp(name, "ref") == 0) {
        return &anml__kernels_ref;
    }
#ifdef ANML_HAVE_AVX2_KERNELS
    if (strcmp(name, "avx2") == 0 && cpu_has_avx2()) {
        return &anml__kernels_avx2;
    }
    if (strcmp(name, "avx512") == 0 && cpu_has_avx512()) {
        pthread_once(&g_avx512_once, compose_avx512);
        return &g_avx512;
    }
#endif
    return NULL;
}

static void choose(void) {
    const struct anml_kernels *best = anml__kernels_variant("avx512");
    if (!best) {
        best = anml__kernels_variant("avx2");
    }
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
            ANML_LOG_WARN("kern: ANML_KERNELS=%s is not available here (built: %s; this CPU "
                          "runs the best of them, %s); using %s",
                          env, k_built, best->name, best->name);
        }
    }
    g_kernels = best;
    ANML_LOG_INFO("kern: using %s kernels (%s)", best->name, why);
}

const struct anml_kernels *anml__kernels(void) {
    pthread_once(&g_once, choose);
    return g_kernels;
}
