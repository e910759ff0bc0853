/*
 * bench_conv.c -- times the conv 1x1 hot path of an ANEMLL decode/prefill step at kernel level:
 * out[o][t] = W[o] . x[t] for the shapes of a 0.6B-class model (Cout x Cin = 1024x1024, 3072x1024
 * (up/gate), 1024x3072 (down)), T = 1 (decode: fused decode + dot per row) and T = 64 (prefill:
 * panel decode + GEMM), weights fp16, LUT4, LUT6 and LUT8 (one fp16 table per 8 output channels),
 * for every kernel set the host runs (ref, avx2, avx512) on 1 and 2 threads. Rows are split across the pool as the conv op
 * does (blocks of 8, PANEL_ROWS at a time).
 *
 * Validate, then time: each variant's output is first compared with ref's (max |d| relative to
 * sum |w x|, the kernels' tolerance measure). All ratios are measured in this one run.
 *
 * usage: bench_conv [MIN_SECONDS_PER_CASE (default 0.3)]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/core.h"
#include "kernels/kernels.h"

#define PANEL_ROWS 16
#define MAX_T      64

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static uint32_t rnd(void) {
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)(g_rng >> 16);
}
static float rndf(void) { /* [-1, 1) */
    return (float)(rnd() & 0xffffff) / (float)0x800000 - 1.0f;
}

struct job {
    const struct anml_kernels *kt;
    const struct anml_wrows *w;
    int64_t rows, k, t, ld;
    const float *xt; /* [T][K], rows ld apart */
    float *y;        /* [rows][T] */
    float *panels;   /* per thread PANEL_ROWS * K */
};

static void run_rows(void *arg, int32_t ith, int32_t nth) {
    const struct job *j = arg;
    int64_t blocks = (j->rows + 7) / 8;
    int64_t r0 = blocks * ith / nth * 8, r1 = blocks * (ith + 1) / nth * 8;
    r1 = r1 < j->rows ? r1 : j->rows;
    float *panel = j->panels + ith * PANEL_ROWS * j->ld;
    for (int64_t o = r0; o < r1; o += PANEL_ROWS) {
        int64_t n = r1 - o < PANEL_ROWS ? r1 - o : PANEL_ROWS;
        if (j->t == 1) {
            anml__kern_matvec(j->kt, j->w)(j->w, o, o + n, j->xt, j->y + o);
        } else {
            /* strides as the conv op uses them: rows not a multiple of 4 KiB apart */
            anml__kern_decode(j->kt, j->w)(j->w, o, o + n, panel, j->ld);
            j->kt->gemm_f32(panel, j->ld, n, j->xt, j->ld, j->t, j->k, j->y + o * j->t, j->t, 1);
        }
    }
}

/* Seconds per call (median of repeated timings of batches lasting >= min_s / 5). */
static double time_job(struct anml_threadpool *tp, struct job *j, double min_s) {
    anml__threadpool_run(tp, run_rows, j); /* warm up (and start the workers) */
    double best[5];
    for (int rep = 0; rep < 5; rep++) {
        int64_t iters = 0;
        double t0 = now_s(), t1;
        do {
            anml__threadpool_run(tp, run_rows, j);
            iters++;
            t1 = now_s();
        } while (t1 - t0 < min_s / 5);
        best[rep] = (t1 - t0) / (double)iters;
    }
    for (int a = 0; a < 5; a++) { /* sort for the median */
        for (int b = a + 1; b < 5; b++) {
            if (best[b] < best[a]) {
                double tmp = best[a];
                best[a] = best[b];
                best[b] = tmp;
            }
        }
    }
    return best[2];
}

int main(int argc, char **argv) {
    double min_s = argc > 1 ? strtod(argv[1], NULL) : 0.3;
    if (!(min_s > 0)) {
        min_s = 0.3;
    }
    const char *names[3] = { "ref", "avx2", "avx512" };
    const struct anml_kernels *sets[3];
    int n_sets = 0;
    for (int i = 0; i < 3; i++) {
        sets[n_sets] = anml__kernels_variant(names[i]);
        if (sets[n_sets]) {
            n_sets++;
        } else {
            printf("(%s kernels not available on this host)\n", names[i]);
        }
    }
    struct anml_threadpool *pools[2] = { NULL, anml__threadpool_create(2) };
    const int64_t shapes[3][2] = { { 1024, 1024 }, { 3072, 1024 }, { 1024, 3072 } }; /* rows, k */
    const int fmts[4] = { 0, 4, 6, 8 };                                              /* 0 = fp16 */
    const int64_t ts[2] = { 1, MAX_T };
    int64_t max_rows = 3072, max_k = 3072;
    uint16_t *f16 = malloc((size_t)(max_rows * max_k) * sizeof(uint16_t));
    uint8_t *idx = malloc((size_t)(max_rows * max_k));
    uint16_t *lut = malloc((size_t)(max_rows / 8 * 256) * sizeof(uint16_t));
    float *xt = malloc((size_t)(MAX_T * (max_k + 16)) * sizeof(float));
    float *yref = malloc((size_t)(max_rows * MAX_T) * sizeof(float));
    float *y = malloc((size_t)(max_rows * MAX_T) * sizeof(float));
    float *panels = malloc((size_t)(2 * PANEL_ROWS * (max_k + 16)) * sizeof(float));
    if (!f16 || !idx || !lut || !xt || !yref || !y || !panels || !pools[1]) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    for (int64_t i = 0; i < max_rows * max_k; i++) {
        f16[i] = anml__fp32_to_fp16(rndf() * 0.05f);
        idx[i] = (uint8_t)rnd();
    }
    for (int64_t i = 0; i < max_rows / 8 * 256; i++) {
        lut[i] = anml__fp32_to_fp16(rndf() * 0.05f);
    }
    for (int64_t i = 0; i < MAX_T * (max_k + 16); i++) {
        xt[i] = rndf();
    }
    printf("conv 1x1 kernels: ms per call (median of 5), speed-ups vs ref on 1 thread\n");
    printf("%-5s %-10s %3s |", "fmt", "CoutxCin", "T");
    for (int v = 0; v < n_sets; v++) {
        printf(" %6s 1t %6s 2t |", sets[v]->name, sets[v]->name);
    }
    for (int v = 1; v < n_sets; v++) {
        printf(" %6s 1t %6s 2t |", sets[v]->name, sets[v]->name);
    }
    printf(" max rel err\n");
    for (int f = 0; f < 4; f++) {
        for (int s = 0; s < 3; s++) {
            for (int ti = 0; ti < 2; ti++) {
                struct anml_wrows w = { .k = shapes[s][1] };
                if (fmts[f] == 0) {
                    w.fmt = ANML_WFMT_F16;
                    w.f16 = f16;
                    w.ld = w.k;
                } else {
                    w.fmt = ANML_WFMT_LUT;
                    w.idx = idx; /* random bytes: any packing of them is a valid index stream */
                    w.bits = fmts[f];
                    w.lut = lut;
                    w.rows_per_table = 8;
                }
                int64_t ld = shapes[s][1] % 1024 == 0 ? shapes[s][1] + 16 : shapes[s][1];
                struct job j = { .w = &w,
                                 .rows = shapes[s][0],
                                 .k = shapes[s][1],
                                 .t = ts[ti],
                                 .ld = ld,
                                 .xt = xt,
                                 .panels = panels };
                double ms[3][2] = { { 0 } };
                double max_rel = 0;
                for (int v = 0; v < n_sets; v++) {
                    j.kt = sets[v];
                    j.y = v == 0 ? yref : y;
                    anml__threadpool_run(NULL, run_rows, &j);
                    for (int64_t e = 0; v > 0 && e < j.rows * j.t; e++) { /* validate first */
                        double d = fabs((double)y[e] - (double)yref[e]);
                        double mag = fabs((double)yref[e]) + 1e-3;
                        max_rel = d / mag > max_rel ? d / mag : max_rel;
                    }
                    for (int p = 0; p < 2; p++) {
                        ms[v][p] = 1e3 * time_job(pools[p], &j, min_s);
                    }
                }
                char shape[32];
                snprintf(shape, sizeof shape, "%lldx%lld", (long long)j.rows, (long long)j.k);
                const char *fname = fmts[f] == 0   ? "fp16"
                                    : fmts[f] == 4 ? "lut4"
                                    : fmts[f] == 6 ? "lut6"
                                                   : "lut8";
                printf("%-5s %-10s %3lld |", fname, shape, (long long)j.t);
                for (int v = 0; v < n_sets; v++) {
                    printf(" %9.3f %9.3f |", ms[v][0], ms[v][1]);
                }
                for (int v = 1; v < n_sets; v++) {
                    printf(" %8.1fx %8.1fx |", ms[0][0] / ms[v][0], ms[0][0] / ms[v][1]);
                }
                printf(" %.2g\n", max_rel);
                fflush(stdout);
            }
        }
    }
    anml__threadpool_free(pools[1]);
    free(f16);
    free(idx);
    free(lut);
    free(xt);
    free(yref);
    free(y);
    free(panels);
    return 0;
}
