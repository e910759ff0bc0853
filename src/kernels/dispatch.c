/*
 * dispatch.c -- chooses the kernel set once per process: CPU feature detection (CPUID and
 * XGETBV on x86: the instructions and the OS saving the wider registers; clang's
 * __builtin_cpu_supports does not know "f16c"), overridden by the environment variable
 * ANML_KERNELS=ref|avx2|avx512 (the only one the library reads). The choice is logged at INFO
 * ("kern: ...").
 *
 * Preference: avx512 (AVX-512 F/BW/VL/VBMI on top of AVX2+FMA+F16C) > avx2 > ref. The avx512 set
 * is composed here, once: the avx2 table with the AVX-512 6- and 8-bit LUT kernels in place.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#ifdef ANML_HAVE_AVX2_KERNELS
#  include <cpuid.h>
#endif

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
struct cpu_features {
    bool avx2, avx512;
};

static struct cpu_features cpu_detect(void) {
    struct cpu_features f = { false, false };
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) {
        return f;
    }
    bool osxsave = c & (1u << 27), fma = c & (1u << 12), f16c = c & (1u << 29);
    if (!osxsave || __get_cpuid_max(0, NULL) < 7) {
        return f;
    }
    unsigned xlo, xhi;
    __asm__ __volatile__("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
    (void)xhi;
    bool os_ymm = (xlo & 0x6u) == 0x6u;   /* XMM and YMM state */
    bool os_zmm = (xlo & 0xe6u) == 0xe6u; /* ... and opmask, ZMM_Hi256, Hi16_ZMM */
    __cpuid_count(7, 0, a, b, c, d);
    bool avx2 = b & (1u << 5);
    bool avx512f = b & (1u << 16), avx512bw = b & (1u << 30), avx512vl = b & (1u << 31);
    bool avx512vbmi = c & (1u << 1);
    f.avx2 = os_ymm && avx2 && fma && f16c;
    f.avx512 = f.avx2 && os_zmm && avx512f && avx512bw && avx512vl && avx512vbmi;
    return f;
}

static pthread_once_t g_cpu_once = PTHREAD_ONCE_INIT;
static struct cpu_features g_cpu;

static void cpu_init(void) {
    g_cpu = cpu_detect();
}

static bool cpu_has_avx2(void) {
    pthread_once(&g_cpu_once, cpu_init);
    return g_cpu.avx2;
}

static bool cpu_has_avx512(void) {
    pthread_once(&g_cpu_once, cpu_init);
    return g_cpu.avx512;
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
