/*
 * threadpool.c -- the library's worker threads (declared in core.h): a pool of persistent
 * pthreads that run one task at a time on every thread, the caller included, with a barrier at
 * the end of each run. No OpenMP: the pool's threads are the only ones the library creates.
 *
 * Hand-off: the caller publishes (fn, arg, nth), then bumps `gen` with release order; a worker
 * that sees a new generation (acquire) runs its share and decrements `pending`; the caller runs
 * share 0 and then waits for `pending` to reach zero. Both sides spin for a short while before
 * sleeping on a condition variable, because a decode step hands out hundreds of tasks of a few
 * tens of microseconds each and a futex wake-up costs about as much as one task. Sleepers are
 * woken under the mutex, after the counter changed, so no wake-up is lost.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "core/core.h"

/* Spin iterations (each a CPU pause hint) before a waiting thread sleeps: roughly 50-200 us. */
#define SPIN_ITERS (1 << 14)

#if defined(__x86_64__) || defined(__i386__)
#  define CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#  define CPU_RELAX() __asm__ __volatile__("yield")
#else
#  define CPU_RELAX() ((void)0)
#endif

struct worker {
    struct anml_threadpool *tp;
    int32_t ith;
};

struct anml_threadpool {
    int32_t n_threads;  /* configured, caller included */
    int32_t n_started;  /* workers running */
    bool start_tried;   /* workers are started once, on the first run with n_threads > 1 */
    pthread_t *threads; /* [n_threads - 1] */
    struct worker *workers;
    pthread_mutex_t mu;
    pthread_cond_t cv_work, cv_done;
    atomic_uint gen;    /* bumped once per run (and once to stop) */
    atomic_int pending; /* workers still inside the current run */
    atomic_bool stop;
    /* the current task: written by the caller before the release bump of gen */
    anml_task_fn fn;
    void *arg;
    int32_t nth;
};

int32_t anml__n_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 1024 ? 1024 : (int32_t)n;
}

static void *worker_main(void *p) {
    struct worker *w = p;
    struct anml_threadpool *tp = w->tp;
    unsigned seen = 0;
    for (;;) {
        unsigned g = atomic_load_explicit(&tp->gen, memory_order_acquire);
        for (int i = 0; g == seen && i < SPIN_ITERS; i++) {
            CPU_RELAX();
            g = atomic_load_explicit(&tp->gen, memory_order_acquire);
        }
        if (g == seen) {
            pthread_mutex_lock(&tp->mu);
            while ((g = atomic_load_explicit(&tp->gen, memory_order_acquire)) == seen) {
                pthread_cond_wait(&tp->cv_work, &tp->mu);
            }
            pthread_mutex_unlock(&tp->mu);
        }
        seen = g;
        if (atomic_load_explicit(&tp->stop, memory_order_acquire)) {
            return NULL;
        }
        if (w->ith < tp->nth) {
            tp->fn(tp->arg, w->ith, tp->nth);
        }
        if (atomic_fetch_sub_explicit(&tp->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&tp->mu);
            pthread_cond_signal(&tp->cv_done);
            pthread_mutex_unlock(&tp->mu);
        }
    }
}

struct anml_threadpool *anml__threadpool_create(int32_t n_threads) {
    if (n_threads <= 0) {
        n_threads = anml__n_cores();
    }
    struct anml_threadpool *tp = anml__calloc(1, sizeof *tp);
    if (!tp) {
        return NULL;
    }
    tp->n_threads = n_threads;
    if (n_threads > 1) {
        tp->threads = anml__calloc((size_t)n_threads - 1, sizeof *tp->threads);
        tp->workers = anml__calloc((size_t)n_threads - 1, sizeof *tp->workers);
        if (!tp->threads || !tp->workers) {
            anml__free(tp->threads);
            anml__free(tp->workers);
            anml__free(tp);
            return NULL;
        }
    }
    pthread_mutex_init(&tp->mu, NULL);
    pthread_cond_init(&tp->cv_work, NULL);
    pthread_cond_init(&tp->cv_done, NULL);
    atomic_init(&tp->gen, 0u);
    atomic_init(&tp->pending, 0);
    atomic_init(&tp->stop, false);
    return tp;
}

/* Starts the workers; on failure keeps the ones that started. */
static void start_workers(struct anml_threadpool *tp) {
    tp->start_tried = true;
    for (int32_t i = 0; i + 1 < tp->n_threads; i++) {
        tp->workers[i].tp = tp;
        tp->workers[i].ith = i + 1;
        if (pthread_create(&tp->threads[i], NULL, worker_main, &tp->workers[i]) != 0) {
            ANML_LOG_WARN("threads: could only start %d of %d worker threads", (int)i,
                          (int)tp->n_threads - 1);
            break;
        }
        tp->n_started++;
    }
}

void anml__threadpool_free(struct anml_threadpool *tp) {
    if (!tp) {
        return;
    }
    if (tp->n_started > 0) {
        atomic_store_explicit(&tp->stop, true, memory_order_release);
        pthread_mutex_lock(&tp->mu);
        atomic_fetch_add_explicit(&tp->gen, 1u, memory_order_acq_rel);
        pthread_cond_broadcast(&tp->cv_work);
        pthread_mutex_unlock(&tp->mu);
        for (int32_t i = 0; i < tp->n_started; i++) {
            pthread_join(tp->threads[i], NULL);
        }
    }
    pthread_cond_destroy(&tp->cv_done);
    pthread_cond_destroy(&tp->cv_work);
    pthread_mutex_destroy(&tp->mu);
    anml__free(tp->threads);
    anml__free(tp->workers);
    anml__free(tp);
}

int32_t anml__threadpool_size(const struct anml_threadpool *tp) {
    return tp ? tp->n_threads : 1;
}

void anml__threadpool_run(struct anml_threadpool *tp, anml_task_fn fn, void *arg) {
    if (!tp || tp->n_threads <= 1) {
        fn(arg, 0, 1);
        return;
    }
    if (!tp->start_tried) {
        start_workers(tp);
    }
    if (tp->n_started == 0) {
        fn(arg, 0, 1);
        return;
    }
    tp->fn = fn;
    tp->arg = arg;
    tp->nth = tp->n_started + 1;
    atomic_store_explicit(&tp->pending, tp->n_started, memory_order_relaxed);
    /* the mutex orders the bump against a worker that is about to sleep */
    pthread_mutex_lock(&tp->mu);
    atomic_fetch_add_explicit(&tp->gen, 1u, memory_order_release);
    pthread_cond_broadcast(&tp->cv_work);
    pthread_mutex_unlock(&tp->mu);
    fn(arg, 0, tp->nth);
    for (int i = 0; i < SPIN_ITERS; i++) {
        if (atomic_load_explicit(&tp->pending, memory_order_acquire) == 0) {
            return;
        }
        CPU_RELAX();
    }
    pthread_mutex_lock(&tp->mu);
    while (atomic_load_explicit(&tp->pending, memory_order_acquire) != 0) {
        pthread_cond_wait(&tp->cv_done, &tp->mu);
    }
    pthread_mutex_unlock(&tp->mu);
}
