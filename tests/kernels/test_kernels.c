/* test_kernels.c -- every kernel set the host supports (ref always; avx2 on x86-64 CPUs with
 * AVX2+FMA+F16C; avx512 with AVX-512 F/BW/VL/VBMI as well) against exact sums, on random shapes with odd tails; the thread pool; and
 * determinism (same output twice, and independent of row blocking and thread count).
 *
 * Tolerance (kernels.h): each dot product of length k is within (k/8 + 6) * 2^-24 * sum|w_i x_i|
 * of the exact sum (computed here in double from the exactly decoded weights). The eight-lane
 * order gives every partial sum at most ceil(k/8) terms (k/8 + 1 roundings, plus one per product
 * without FMA) and the final combination three more; LUT rows with an unaligned start shift
 * their lanes by up to three elements, which the margin covers. Decoding (fp16 -> fp32, LUT
 * lookups) is exact, so decode kernels must match bit for bit. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
// clang-format off
#include "core/core.h"
#include "kernels/kernels.h"
// clang-format on

static uint64_t g_rng = 0x2545f4914f6cdd1dull;
static uint32_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 11);
}
static float rndf(void) { /* [-1, 1) */
    return (float)(rnd() & 0xffffff) / (float)0x800000 - 1.0f;
}
static int64_t rnd_below(int64_t n) {
    return (int64_t)(rnd() % (uint32_t)n);
}

/* The kernel sets to check: ref, and every other one the host runs. */
static const struct anml_kernels *g_sets[4];
static int g_n_sets;

static int setup(void **state) {
    (void)state;
    g_n_sets = 0;
    const char *names[] = { "ref", "avx2", "avx512" };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const struct anml_kernels *k = anml__kernels_variant(names[i]);
        if (k) {
            g_sets[g_n_sets++] = k;
        } else {
            print_message("note: kernel set %s is not available on this host\n", names[i]);
        }
    }
    return 0;
}

/* ---- random weights ---- */

static const int64_t k_lengths[] = { 1,  2,  3,  5,  7,  8,   9,   15,  16,   17,  31,
                                     32, 33, 63, 64, 65, 100, 255, 256, 1000, 1027 };
#define N_LENGTHS ((int)(sizeof k_lengths / sizeof k_lengths[0]))

struct wmat {
    struct anml_wrows w;
    int64_t rows;
    uint16_t *f16;
    uint8_t *idx;
    uint16_t *lut;
};

/* fmt_bits 16 = dense fp16; 4, 6, 8 = LUT. Buffers are exactly as large as the data, so that
 * ASan catches any read past a row's last byte. */
static void wmat_make(struct wmat *m, int fmt_bits, int64_t rows, int64_t k, int64_t per_table) {
    memset(m, 0, sizeof *m);
    m->rows = rows;
    m->w.k = k;
    if (fmt_bits == 16) {
        m->f16 = malloc((size_t)(rows * k) * sizeof(uint16_t));
        for (int64_t i = 0; i < rows * k; i++) {
            m->f16[i] = anml__fp32_to_fp16(rndf());
        }
        m->w.fmt = ANML_WFMT_F16;
        m->w.f16 = m->f16;
        m->w.ld = k;
        return;
    }
    size_t nbytes = (size_t)((rows * k * fmt_bits + 7) / 8);
    m->idx = malloc(nbytes);
    for (size_t i = 0; i < nbytes; i++) {
        m->idx[i] = (uint8_t)rnd();
    }
    int64_t n_tables = (rows + per_table - 1) / per_table, n = (int64_t)1 << fmt_bits;
    m->lut = malloc((size_t)(n_tables * n) * sizeof(uint16_t));
    for (int64_t i = 0; i < n_tables * n; i++) {
        m->lut[i] = anml__fp32_to_fp16(rndf());
    }
    m->w.fmt = ANML_WFMT_LUT;
    m->w.idx = m->idx;
    m->w.bits = fmt_bits;
    m->w.lut = m->lut;
    m->w.rows_per_table = per_table;
}

static void wmat_free(struct wmat *m) {
    free(m->f16);
    free(m->idx);
    free(m->lut);
}

/* Element (r, i), decoded with the core converter and a plain bit-field read. */
static float welem(const struct wmat *m, int64_t r, int64_t i) {
    const struct anml_wrows *w = &m->w;
    if (w->fmt == ANML_WFMT_F16) {
        return anml__fp16_to_fp32(w->f16[r * w->ld + i]);
    }
    int64_t e = r * w->k + i, bitpos = e * w->bits;
    uint32_t v = 0;
    for (int b = 0; b < w->bits; b++) {
        int64_t p = bitpos + b;
        v |= (uint32_t)((w->idx[p >> 3] >> (p & 7)) & 1) << b;
    }
    int64_t t = r / w->rows_per_table;
    return anml__fp16_to_fp32(w->lut[t * ((int64_t)1 << w->bits) + v]);
}

/* Fails unless |got - exact(dot)| <= (k/8 + 6) * 2^-24 * sum |w x|. */
static void check_dot(const char *what, const char *set, float got, double exact, double mag,
                      int64_t k, int64_t r, int64_t j) {
    double bound = ((double)k / 8.0 + 6.0) * 0x1p-24 * mag + 1e-30;
    double d = fabs((double)got - exact);
    if (!(d <= bound)) {
        fail_msg("%s [%s] k=%lld row %lld col %lld: got %.9g, exact %.9g, |d| = %.3g > bound %.3g",
                 what, set, (long long)k, (long long)r, (long long)j, (double)got, exact, d, bound);
    }
}

/* ---- matvec and decode ---- */

static void check_matvec(int fmt_bits) {
    for (int li = 0; li < N_LENGTHS; li++) {
        int64_t k = k_lengths[li];
        int64_t rows = 1 + rnd_below(37);
        int64_t tables[] = { 1, 3, 8, rows };
        int64_t per_table = tables[rnd_below(4)];
        struct wmat m;
        wmat_make(&m, fmt_bits, rows, k, per_table);
        float *x = malloc((size_t)k * sizeof(float));
        for (int64_t i = 0; i < k; i++) {
            x[i] = rndf();
        }
        int64_t r0 = rnd_below(rows), r1 = r0 + 1 + rnd_below(rows - r0);
        float *y = malloc((size_t)rows * sizeof(float));
        float *y2 = malloc((size_t)rows * sizeof(float));
        /* decoded rows ldd apart; the gaps must stay untouched */
        int64_t ldd = k + rnd_below(3);
        float *dec = malloc((size_t)(rows * ldd) * sizeof(float));
        float *dec_ref = malloc((size_t)(rows * ldd) * sizeof(float));
        float *y_avx2 = malloc((size_t)rows * sizeof(float));
        bool have_avx2 = false;
        for (int s = 0; s < g_n_sets; s++) {
            const struct anml_kernels *kt = g_sets[s];
            anml_matvec_fn mv = anml__kern_matvec(kt, &m.w);
            anml_decode_fn de = anml__kern_decode(kt, &m.w);
            assert_non_null(mv);
            assert_non_null(de);
            mv(&m.w, r0, r1, x, y);
            for (int64_t r = r0; r < r1; r++) {
                double exact = 0, mag = 0;
                for (int64_t i = 0; i < k; i++) {
                    double p = (double)welem(&m, r, i) * (double)x[i];
                    exact += p;
                    mag += fabs(p);
                }
                check_dot("matvec", kt->name, y[r - r0], exact, mag, k, r, 0);
            }
            /* determinism: the same call twice, and row by row, give the same bits */
            mv(&m.w, r0, r1, x, y2);
            assert_memory_equal(y, y2, (size_t)(r1 - r0) * sizeof(float));
            for (int64_t r = r0; r < r1; r++) {
                mv(&m.w, r, r + 1, x, y2 + (r - r0));
            }
            assert_memory_equal(y, y2, (size_t)(r1 - r0) * sizeof(float));
            /* decode is exact: every set gives the same bits as the plain decoder */
            for (int64_t i = 0; i < rows * ldd; i++) {
                dec[i] = -7.0f;
            }
            de(&m.w, r0, r1, dec, ldd);
            for (int64_t r = r0; r < r1; r++) {
                for (int64_t i = 0; i < ldd; i++) {
                    float want = i < k ? welem(&m, r, i) : -7.0f;
                    if (memcmp(&want, &dec[(r - r0) * ldd + i], sizeof want) != 0) {
                        fail_msg("decode [%s] bits %d k=%lld ldd=%lld (%lld, %lld): got %a, want "
                                 "%a",
                                 kt->name, fmt_bits, (long long)k, (long long)ldd, (long long)r,
                                 (long long)i, (double)dec[(r - r0) * ldd + i], (double)want);
                    }
                }
            }
            /* avx512 only replaces avx2's table lookups: the same sums, bit for bit */
            if (strcmp(kt->name, "avx2") == 0) {
                memcpy(y_avx2, y, (size_t)(r1 - r0) * sizeof(float));
                have_avx2 = true;
            } else if (strcmp(kt->name, "avx512") == 0 && have_avx2) {
                assert_memory_equal(y, y_avx2, (size_t)(r1 - r0) * sizeof(float));
            }
            if (s == 0) {
                /* ref's fused kernel is "decode, then anml__ref_dot_f32", bit for bit */
                memcpy(dec_ref, dec, (size_t)((r1 - r0) * ldd) * sizeof(float));
                for (int64_t r = r0; r < r1; r++) {
                    float want = anml__ref_dot_f32(dec_ref + (r - r0) * ldd, x, k);
                    assert_memory_equal(&want, &y[r - r0], sizeof want);
                }
            }
        }
        free(dec);
        free(dec_ref);
        free(y_avx2);
        free(y);
        free(y2);
        free(x);
        wmat_free(&m);
    }
}

static void test_matvec_f16(void **state) {
    (void)state;
    for (int rep = 0; rep < 4; rep++) {
        check_matvec(16);
    }
}

static void test_matvec_lut4(void **state) {
    (void)state;
    for (int rep = 0; rep < 4; rep++) {
        check_matvec(4);
    }
}

static void test_matvec_lut6(void **state) {
    (void)state;
    for (int rep = 0; rep < 4; rep++) {
        check_matvec(6);
    }
}

static void test_matvec_lut8(void **state) {
    (void)state;
    for (int rep = 0; rep < 4; rep++) {
        check_matvec(8);
    }
}

/* ---- the conv 1x1 path: T = 1 (fused matvec), T = 3 and 64 (panel decode + GEMM) ---- */

static void conv_rows(const struct anml_kernels *kt, const struct anml_wrows *w, int64_t rows,
                      const float *xt, int64_t t, float *panel, float *y) {
    for (int64_t o = 0; o < rows; o += 16) {
        int64_t n = rows - o < 16 ? rows - o : 16;
        if (t == 1) {
            anml__kern_matvec(kt, w)(w, o, o + n, xt, y + o);
        } else {
            anml__kern_decode(kt, w)(w, o, o + n, panel, w->k);
            kt->gemm_f32(panel, w->k, n, xt, w->k, t, w->k, y + o * t, t, 1);
        }
    }
}

static void test_conv_paths(void **state) {
    (void)state;
    const int fmts[] = { 16, 4, 6, 8 };
    const int64_t ts[] = { 1, 3, 64 };
    const int64_t ks[] = { 7, 64, 129, 1027 };
    for (int f = 0; f < 4; f++) {
        for (int ti = 0; ti < 3; ti++) {
            for (int ki = 0; ki < 4; ki++) {
                int64_t k = ks[ki], t = ts[ti], rows = 8 + rnd_below(30);
                struct wmat m;
                wmat_make(&m, fmts[f], rows, k, 8);
                float *xt = malloc((size_t)(t * k) * sizeof(float));
                float *y = malloc((size_t)(rows * t) * sizeof(float));
                float *panel = malloc((size_t)(16 * k) * sizeof(float));
                for (int64_t i = 0; i < t * k; i++) {
                    xt[i] = rndf();
                }
                for (int s = 0; s < g_n_sets; s++) {
                    conv_rows(g_sets[s], &m.w, rows, xt, t, panel, y);
                    for (int64_t r = 0; r < rows; r++) {
                        for (int64_t j = 0; j < t; j++) {
                            double exact = 0, mag = 0;
                            for (int64_t i = 0; i < k; i++) {
                                double p = (double)welem(&m, r, i) * (double)xt[j * k + i];
                                exact += p;
                                mag += fabs(p);
                            }
                            check_dot("conv", g_sets[s]->name, y[r * t + j], exact, mag, k, r, j);
                        }
                    }
                }
                free(xt);
                free(y);
                free(panel);
                wmat_free(&m);
            }
        }
    }
}

/* ---- GEMM ---- */

static void test_gemm(void **state) {
    (void)state;
    const int64_t ms[] = { 1, 3, 4, 5, 13 };
    const int64_t ns[] = { 1, 2, 3, 4, 7, 64 };
    for (int mi = 0; mi < 5; mi++) {
        for (int ni = 0; ni < 6; ni++) {
            for (int li = 0; li < N_LENGTHS; li += 2) {
                int64_t m = ms[mi], n = ns[ni], k = k_lengths[li];
                int64_t lda = k + rnd_below(3), ldb = k + rnd_below(3);
                float *a = malloc((size_t)(m * lda) * sizeof(float));
                float *b = malloc((size_t)(n * ldb) * sizeof(float));
                float *c = malloc((size_t)(m * n) * sizeof(float));
                float *c2 = malloc((size_t)(m * n) * sizeof(float));
                for (int64_t i = 0; i < m * lda; i++) {
                    a[i] = rndf();
                }
                for (int64_t i = 0; i < n * ldb; i++) {
                    b[i] = rndf();
                }
                for (int s = 0; s < g_n_sets; s++) {
                    const struct anml_kernels *kt = g_sets[s];
                    bool col_major = (mi + ni) % 2 == 1;
                    int64_t rs = col_major ? 1 : n, cs = col_major ? m : 1;
                    kt->gemm_f32(a, lda, m, b, ldb, n, k, c, rs, cs);
                    for (int64_t i = 0; i < m; i++) {
                        for (int64_t j = 0; j < n; j++) {
                            double exact = 0, mag = 0;
                            for (int64_t p = 0; p < k; p++) {
                                double v = (double)a[i * lda + p] * (double)b[j * ldb + p];
                                exact += v;
                                mag += fabs(v);
                            }
                            check_dot("gemm", kt->name, c[i * rs + j * cs], exact, mag, k, i, j);
                        }
                    }
                    /* blocking does not change a result: one element at a time, same bits */
                    for (int64_t i = 0; i < m; i++) {
                        for (int64_t j = 0; j < n; j++) {
                            kt->gemm_f32(a + i * lda, lda, 1, b + j * ldb, ldb, 1, k,
                                         c2 + i * rs + j * cs, rs, cs);
                        }
                    }
                    assert_memory_equal(c, c2, (size_t)(m * n) * sizeof(float));
                }
                free(a);
                free(b);
                free(c);
                free(c2);
            }
        }
    }
}

static void test_axpy_cvt(void **state) {
    (void)state;
    static uint16_t h[65536];
    static float f[65536];
    for (uint32_t i = 0; i < 65536; i++) {
        h[i] = (uint16_t)i;
    }
    for (int s = 0; s < g_n_sets; s++) {
        const struct anml_kernels *kt = g_sets[s];
        /* fp16 -> fp32: exact, except that a signaling NaN may come out quieted */
        memset(f, 0, sizeof f);
        kt->cvt_f16(h + 3, 65533, f + 3); /* odd start and length: vector body and tail */
        for (uint32_t i = 3; i < 65536; i++) {
            float want = anml__fp16_to_fp32((uint16_t)i);
            bool snan = (i & 0x7c00u) == 0x7c00u && (i & 0x3ffu) != 0 && !(i & 0x200u);
            if (snan ? !isnan(f[i]) : memcmp(&want, &f[i], sizeof want) != 0) {
                fail_msg("cvt_f16 [%s] 0x%04x: got %a, want %a", kt->name, i, (double)f[i],
                         (double)want);
            }
        }
        /* fp32 -> fp16: bit-identical to the core converter; every 257th bit pattern (all
         * exponents, signs and NaN kinds, rounding cases spread over the mantissa) */
        for (uint64_t base = 0; base < (1ull << 32); base += 257ull * 65536) {
            static float src[65536];
            static uint16_t got[65536];
            for (uint32_t i = 0; i < 65536; i++) {
                uint32_t u = (uint32_t)(base + (uint64_t)i * 257u);
                memcpy(&src[i], &u, sizeof u);
            }
            kt->cvt_f32_f16(src, 65535, got); /* odd length: vector body and tail */
            for (uint32_t i = 0; i < 65535; i++) {
                uint16_t want = anml__fp32_to_fp16(src[i]);
                if (got[i] != want) {
                    uint32_t u;
                    memcpy(&u, &src[i], sizeof u);
                    fail_msg("cvt_f32_f16 [%s] 0x%08x: got 0x%04x, want 0x%04x", kt->name, u,
                             got[i], want);
                }
            }
        }
        for (int64_t n = 0; n < 40; n++) {
            float x[40], y[40], want[40];
            for (int64_t i = 0; i < n; i++) {
                x[i] = rndf();
                y[i] = want[i] = rndf();
            }
            float a = rndf();
            kt->axpy_f32(n, a, x, y);
            for (int64_t i = 0; i < n; i++) {
                double exact = (double)want[i] + (double)a * (double)x[i];
                double bound =
                    2 * 0x1p-24 * (fabs((double)want[i]) + fabs((double)a * (double)x[i]));
                assert_true(fabs((double)y[i] - exact) <= bound);
            }
        }
    }
}

/* ---- thread pool ---- */

struct pool_probe {
    int64_t iteration;
    int64_t seen[8];
    int32_t nth_seen[8];
    atomic_int calls;
};

static void probe_task(void *arg, int32_t ith, int32_t nth) {
    struct pool_probe *p = arg;
    p->seen[ith] = p->iteration;
    p->nth_seen[ith] = nth;
    atomic_fetch_add(&p->calls, 1);
}

static void test_threadpool(void **state) {
    (void)state;
    /* no pool and a one-thread pool run on the caller only */
    struct pool_probe p = { 0 };
    atomic_init(&p.calls, 0);
    anml__threadpool_run(NULL, probe_task, &p);
    assert_int_equal(atomic_load(&p.calls), 1);
    assert_int_equal(p.nth_seen[0], 1);
    struct anml_threadpool *one = anml__threadpool_create(1);
    assert_non_null(one);
    assert_int_equal(anml__threadpool_size(one), 1);
    anml__threadpool_run(one, probe_task, &p);
    assert_int_equal(atomic_load(&p.calls), 2);
    anml__threadpool_free(one);
    anml__threadpool_free(NULL);
    /* a pool freed before any run never started a thread */
    anml__threadpool_free(anml__threadpool_create(4));
    struct anml_threadpool *dflt = anml__threadpool_create(0);
    assert_int_equal(anml__threadpool_size(dflt), anml__n_cores());
    anml__threadpool_free(dflt);

    /* three threads: every run calls each (ith, 3) exactly once and returns only when all are
     * done (the barrier: the caller sees every thread's write of this iteration) */
    struct anml_threadpool *tp = anml__threadpool_create(3);
    assert_int_equal(anml__threadpool_size(tp), 3);
    atomic_store(&p.calls, 0);
    for (int64_t it = 1; it <= 2000; it++) {
        p.iteration = it;
        anml__threadpool_run(tp, probe_task, &p);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(p.seen[i], it);
            assert_int_equal(p.nth_seen[i], 3);
        }
    }
    assert_int_equal(atomic_load(&p.calls), 3 * 2000);
    anml__threadpool_free(tp);
}

/* ---- determinism across thread counts ---- */

struct split_job {
    const struct anml_kernels *kt;
    const struct anml_wrows *w;
    int64_t rows, t;
    const float *xt;
    float *y, *panels;
};

static void split_task(void *arg, int32_t ith, int32_t nth) {
    const struct split_job *j = arg;
    int64_t blocks = (j->rows + 7) / 8;
    int64_t r0 = blocks * ith / nth * 8, r1 = blocks * (ith + 1) / nth * 8;
    r1 = r1 < j->rows ? r1 : j->rows;
    r0 = r0 < r1 ? r0 : r1;
    float *panel = j->panels + ith * 16 * j->w->k;
    for (int64_t o = r0; o < r1; o += 16) {
        int64_t n = r1 - o < 16 ? r1 - o : 16;
        if (j->t == 1) {
            anml__kern_matvec(j->kt, j->w)(j->w, o, o + n, j->xt, j->y + o);
        } else {
            anml__kern_decode(j->kt, j->w)(j->w, o, o + n, panel, j->w->k);
            j->kt->gemm_f32(panel, j->w->k, n, j->xt, j->w->k, j->t, j->w->k, j->y + o * j->t, j->t,
                            1);
        }
    }
}

static void test_thread_count_determinism(void **state) {
    (void)state;
    const int fmts[] = { 16, 4, 6, 8 };
    for (int f = 0; f < 4; f++) {
        for (int64_t t = 1; t <= 3; t += 2) {
            int64_t rows = 77, k = 203;
            struct wmat m;
            wmat_make(&m, fmts[f], rows, k, 8);
            float *xt = malloc((size_t)(t * k) * sizeof(float));
            for (int64_t i = 0; i < t * k; i++) {
                xt[i] = rndf();
            }
            float *y1 = malloc((size_t)(rows * t) * sizeof(float));
            float *yn = malloc((size_t)(rows * t) * sizeof(float));
            float *panels = malloc((size_t)(4 * 16 * k) * sizeof(float));
            for (int s = 0; s < g_n_sets; s++) {
                struct split_job j = { g_sets[s], &m.w, rows, t, xt, y1, panels };
                anml__threadpool_run(NULL, split_task, &j);
                for (int32_t nth = 2; nth <= 4; nth++) {
                    struct anml_threadpool *tp = anml__threadpool_create(nth);
                    for (int rep = 0; rep < 2; rep++) {
                        memset(yn, 0xff, (size_t)(rows * t) * sizeof(float));
                        j.y = yn;
                        anml__threadpool_run(tp, split_task, &j);
                        assert_memory_equal(y1, yn, (size_t)(rows * t) * sizeof(float));
                    }
                    anml__threadpool_free(tp);
                }
                j.y = y1;
            }
            free(panels);
            free(y1);
            free(yn);
            free(xt);
            wmat_free(&m);
        }
    }
}

static void test_dispatch(void **state) {
    (void)state;
    const struct anml_kernels *k = anml__kernels();
    assert_non_null(k);
    assert_ptr_equal(k, anml__kernels()); /* chosen once */
    assert_non_null(anml__kernels_variant("ref"));
    assert_null(anml__kernels_variant("no-such-set"));
    /* the chosen set is one of the variants (ANML_KERNELS may force either) */
    assert_true(k == anml__kernels_variant("ref") || k == anml__kernels_variant("avx2") ||
                k == anml__kernels_variant("avx512"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dispatch),    cmocka_unit_test(test_matvec_f16),
        cmocka_unit_test(test_matvec_lut4), cmocka_unit_test(test_matvec_lut6),
        cmocka_unit_test(test_matvec_lut8), cmocka_unit_test(test_conv_paths),
        cmocka_unit_test(test_gemm),        cmocka_unit_test(test_axpy_cvt),
        cmocka_unit_test(test_threadpool),  cmocka_unit_test(test_thread_count_determinism),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
