/*
 * threadpool.c -- the library's worker threads (declared in core.h): a pool of persistent
 * pthreads that run one task at a time as nth claimable shares, with a barrier at the end of
 * each run. No OpenMP: the pool's threads are the only ones the library creates.
 *
 * Hand-off: one 64-bit word `state` holds the run's generation (high 32 bits) and the set of
 * shares already claimed (low 32 bits). The caller publishes (fn, arg), resets `done`, then
 * stores a new generation with an empty set (release). Every thread claims shares with a
 * compare-and-swap on `state` -- its own index first, then any share still free -- runs them and
 * counts them in `done`; the caller returns when `done` == nth. A CAS that succeeds proves the
 * run is still the one whose (fn, arg) the thread read (a run cannot end while one of its shares
 * is unclaimed), so a worker that wakes up late can never call into a finished run. fn and arg
 * are atomics so that such a stale read is not a data race either.
 *
 * Waiting: workers spin (CPU pause) for a while after a run, since a decode step hands out
 * hundreds of tasks of tens of microseconds and a futex wake-up costs about as much as one;
 * then they sleep on a condition variable, woken under the mutex after each new generation so
 * that no wake-up is lost. The caller, once no share is left to claim, waits for the running
 * ones by spinning, then yielding.
 */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <unistd.h>

#include "core/core.h"

/* Spin iterations (each a CPU pause hint) before an idle worker sleeps: roughly 100 us. */
#define SPIN_ITERS (1 << 14)

#if defined(__x86_64__) || defined(__i386__)
#  define CPU_RELAX() __builtin_ia32_pause()
#elif defined(__aarch64__)
#  define CPU_RELAX() __asm__ __volatile__("yield")
#else
#  define CPU_RELAX() ((void)0)
#endif

#define GEN_OF(s)  ((uint32_t)((s) >> 32))
#define MASK_OF(s) ((uint32_t)(s))

struct worker {
    struct anml_threadpool *tp;
    int32_t ith;
};

struct anml_threadpool {
    int32_t n_threads;  /* shares per run, caller included */
    int32_t n_started;  /* workers running */
    bool start_tried;   /* workers are started once, on the first run with n_threads > 1 */
    pthread_t *threads; /* [n_threads - 1] */
    struct worker *workers;
    pthread_mutex_t mu;
    pthread_cond_t cv_work;
    _Atomic uint64_t state; /* generation << 32 | claimed shares */
    atomic_int done;        /* shares finished in the current run */
    atomic_bool stop;
    _Atomic(anml_task_fn) fn;
    _Atomic(void *) arg;
};

int32_t anml__n_cores(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > ANML_MAX_THREADS ? ANML_MAX_THREADS : (int32_t)n;
}

/* Claims and runs shares of the generation in *s (which the caller loaded), `first` first, until
 * none is left or the generation changes. */
static void work(struct anml_threadpool *tp, uint64_t s, int32_t first) {
    uint32_t gen = GEN_OF(s);
    uint32_t all = tp->n_threads >= 32 ? 0xffffffffu : (1u << tp->n_threads) - 1u;
    while (GEN_OF(s) == gen && MASK_OF(s) != all) {
        uint32_t free_mask = ~MASK_OF(s) & all;
        int32_t j = (free_mask >> first) & 1u ? first : __builtin_ctz(free_mask);
        anml_task_fn fn = atomic_load_explicit(&tp->fn, memory_order_relaxed);
        void *arg = atomic_load_explicit(&tp->arg, memory_order_relaxed);
        if (atomic_compare_exchange_weak_explicit(&tp->state, &s, s | (1ull << j),
                                                  memory_order_acquire, memory_order_acquire)) {
            fn(arg, j, tp->n_threads);
            atomic_fetch_add_explicit(&tp->done, 1, memory_order_release);
            s = atomic_load_explicit(&tp->state, memory_order_acquire);
        }
    }
}

static void *worker_main(void *p) {
    struct worker *w = p;
    struct anml_threadpool *tp = w->tp;
    uint32_t seen = 0;
    for (;;) {
        uint64_t s = atomic_load_explicit(&tp->state, memory_order_acquire);
        for (int i = 0; GEN_OF(s) == seen && i < SPIN_ITERS; i++) {
            CPU_RELAX();
            s = atomic_load_explicit(&tp->state, memory_order_acquire);
        }
        if (GEN_OF(s) == seen) {
            pthread_mutex_lock(&tp->mu);
            while (GEN_OF(s = atomic_load_explicit(&tp->state, memory_order_acquire)) == seen) {
                pthread_cond_wait(&tp->cv_work, &tp->mu);
            }
            pthread_mutex_unlock(&tp->mu);
        }
        seen = GEN_OF(s);
        if (atomic_load_explicit(&tp->stop, memory_order_acquire)) {
            return NULL;
        }
        work(tp, s, w->ith);
    }
}

struct anml_threadpool *anml__threadpool_create(int32_t n_threads) {
    if (n_threads <= 0) {
        n_threads = anml__n_cores();
    }
    n_threads = n_threads > ANML_MAX_THREADS ? ANML_MAX_THREADS : n_threads;
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
    atomic_init(&tp->state, 0u);
    atomic_init(&tp->done, 0);
    atomic_init(&tp->stop, false);
    atomic_init(&tp->fn, (anml_task_fn)0);
    atomic_init(&tp->arg, (void *)0);
    return tp;
}

/* Starts the workers; on failure keeps the ones that started (the others' shares are taken by
 * the threads that exist). */
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

/* Publishes a new generation (with an empty claim set) and wakes sleeping workers. */
static uint64_t publish(struct anml_threadpool *tp) {
    uint64_t s = atomic_load_explicit(&tp->state, memory_order_relaxed);
    uint64_t next = (uint64_t)(GEN_OF(s) + 1u) << 32;
    pthread_mutex_lock(&tp->mu);
    atomic_store_explicit(&tp->state, next, memory_order_release);
    pthread_cond_broadcast(&tp->cv_work);
    pthread_mutex_unlock(&tp->mu);
    return next;
}

void anml__threadpool_free(struct anml_threadpool *tp) {
    if (!tp) {
        return;
    }
    if (tp->n_started > 0) {
        atomic_store_explicit(&tp->stop, true, memory_order_release);
        publish(tp);
        for (int32_t i = 0; i < tp->n_started; i++) {
            pthread_join(tp->threads[i], NULL);
        }
    }
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
    atomic_store_explicit(&tp->fn, fn, memory_order_relaxed);
    atomic_store_explicit(&tp->arg, arg, memory_order_relaxed);
    atomic_store_explicit(&tp->done, 0, memory_order_relaxed);
    uint64_t s = publish(tp);
    work(tp, s, 0);
    for (int i = 0; atomic_load_explicit(&tp->done, memory_order_acquire) < tp->n_threads; i++) {
        if (i < SPIN_ITERS) {
            CPU_RELAX();
        } else {
            sched_yield();
        }
    }
}
