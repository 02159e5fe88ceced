/*
 * kernels/cpu/threadpool.c: fixed workers, one job at a time, chunks claimed
 * from an atomic counter. See threadpool.h for the contract.
 *
 * Protocol. The driver publishes a job (fn, arg, n, grain, next = 0,
 * pending = workers) and then bumps `generation` under the mutex and
 * broadcasts `wake`. A worker that sees a new generation runs chunks until the
 * counter passes n, then decrements `pending`; the one that takes it to zero
 * broadcasts `done` under the mutex. The driver runs chunks too, then waits
 * for pending == 0. Every worker takes part in every generation, so a worker
 * can never see a generation skipped, and the job fields are never rewritten
 * while a worker still reads them. Waits spin first, then sleep; both sides
 * re-check their condition under the mutex before sleeping, so no wake-up is
 * lost.
 */
#include "threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MK_CPU_RELAX() _mm_pause()
#else
#define MK_CPU_RELAX() ((void)0)
#endif

/* Spin iterations before sleeping: about 0.2-1 ms depending on the CPU's
 * pause latency. Long enough to bridge the gap between two ops of a step,
 * short enough that an idle pool stops burning a core quickly. */
enum { SPIN_ITERS = 1 << 14 };

struct mk_threadpool {
    int n_threads;          /* caller + workers */
    pthread_t *workers;     /* [n_threads - 1] */

    pthread_mutex_t mu;
    pthread_cond_t wake;    /* generation changed or stop */
    pthread_cond_t done;    /* pending reached 0 */

    atomic_uint_fast64_t generation;
    atomic_int stop;
    atomic_int busy;        /* a parallel_for is in progress */

    /* the current job; written by the driver before generation is bumped */
    mk_range_fn *fn;
    void *arg;
    int64_t n, grain;
    atomic_int_fast64_t next; /* next unclaimed item */
    atomic_int pending;       /* workers still inside this generation */
};

typedef struct worker_start {
    mk_threadpool *pool;
    int index; /* 1..n_threads-1 */
} worker_start;

/* Claims and runs chunks of the current job until none is left. */
static void run_chunks(mk_threadpool *pool, int thread)
{
    for (;;) {
        int64_t b = atomic_fetch_add_explicit(&pool->next, pool->grain, memory_order_relaxed);
        if (b >= pool->n)
            return;
        int64_t e = b + pool->grain < pool->n ? b + pool->grain : pool->n;
        pool->fn(pool->arg, b, e, thread);
    }
}

static void *worker_main(void *p)
{
    worker_start ws = *(worker_start *)p;
    free(p);
    mk_threadpool *pool = ws.pool;
    uint_fast64_t seen = 0;
    for (;;) {
        /* wait for a new generation (or stop): spin, then sleep */
        uint_fast64_t g = atomic_load_explicit(&pool->generation, memory_order_acquire);
        for (int i = 0; g == seen && i < SPIN_ITERS; i++) {
            if (atomic_load_explicit(&pool->stop, memory_order_relaxed))
                break;
            MK_CPU_RELAX();
            g = atomic_load_explicit(&pool->generation, memory_order_acquire);
        }
        if (g == seen) {
            pthread_mutex_lock(&pool->mu);
            while ((g = atomic_load_explicit(&pool->generation, memory_order_acquire)) == seen &&
                   !atomic_load_explicit(&pool->stop, memory_order_relaxed))
                pthread_cond_wait(&pool->wake, &pool->mu);
            pthread_mutex_unlock(&pool->mu);
        }
        if (g == seen) /* stop, and no job pending for us */
            return NULL;
        seen = g;
        run_chunks(pool, ws.index);
        if (atomic_fetch_sub_explicit(&pool->pending, 1, memory_order_acq_rel) == 1) {
            pthread_mutex_lock(&pool->mu);
            pthread_cond_broadcast(&pool->done);
            pthread_mutex_unlock(&pool->mu);
        }
    }
}

mk_threadpool *mk_threadpool_create(int n_threads)
{
    if (n_threads < 1)
        n_threads = 1;
    mk_threadpool *pool = calloc(1, sizeof *pool);
    if (!pool)
        return NULL;
    pool->n_threads = n_threads;
    atomic_init(&pool->generation, 0);
    atomic_init(&pool->stop, 0);
    atomic_init(&pool->busy, 0);
    atomic_init(&pool->next, 0);
    atomic_init(&pool->pending, 0);
    if (pthread_mutex_init(&pool->mu, NULL) != 0) {
        free(pool);
        return NULL;
    }
    if (pthread_cond_init(&pool->wake, NULL) != 0) {
        pthread_mutex_destroy(&pool->mu);
        free(pool);
        return NULL;
    }
    if (pthread_cond_init(&pool->done, NULL) != 0) {
        pthread_cond_destroy(&pool->wake);
        pthread_mutex_destroy(&pool->mu);
        free(pool);
        return NULL;
    }
    if (n_threads > 1) {
        pool->workers = calloc((size_t)(n_threads - 1), sizeof *pool->workers);
        if (!pool->workers) {
            pool->n_threads = 1;
            mk_threadpool_destroy(pool);
            return NULL;
        }
    }
    for (int i = 1; i < n_threads; i++) {
        worker_start *ws = malloc(sizeof *ws);
        if (ws) {
            ws->pool = pool;
            ws->index = i;
        }
        if (!ws || pthread_create(&pool->workers[i - 1], NULL, worker_main, ws) != 0) {
            free(ws);
            pool->n_threads = i; /* join the ones already started */
            mk_threadpool_destroy(pool);
            return NULL;
        }
    }
    return pool;
}

void mk_threadpool_destroy(mk_threadpool *pool)
{
    if (!pool)
        return;
    pthread_mutex_lock(&pool->mu);
    atomic_store(&pool->stop, 1);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mu);
    for (int i = 1; i < pool->n_threads; i++)
        pthread_join(pool->workers[i - 1], NULL);
    free(pool->workers);
    pthread_cond_destroy(&pool->done);
    pthread_cond_destroy(&pool->wake);
    pthread_mutex_destroy(&pool->mu);
    free(pool);
}

int mk_threadpool_size(const mk_threadpool *pool)
{
    return pool ? pool->n_threads : 1;
}

/* The pool index of the calling thread while a job runs: 0 for the driver,
 * i for worker i. Only used for nested calls, so a linear scan is fine. */
static int self_index(const mk_threadpool *pool)
{
    pthread_t me = pthread_self();
    for (int i = 1; i < pool->n_threads; i++)
        if (pthread_equal(pool->workers[i - 1], me))
            return i;
    return 0;
}

void mk_threadpool_parallel_for(mk_threadpool *pool, int64_t n, int64_t grain, mk_range_fn *fn,
                                void *arg)
{
    if (n <= 0)
        return;
    int nt = mk_threadpool_size(pool);
    if (grain < 1)
        grain = (n + nt - 1) / nt;
    if (!pool || nt == 1 || n <= grain) {
        fn(arg, 0, n, pool && atomic_load(&pool->busy) ? self_index(pool) : 0);
        return;
    }
    if (atomic_exchange(&pool->busy, 1)) { /* nested: run inline */
        fn(arg, 0, n, self_index(pool));
        return;
    }
    pool->fn = fn;
    pool->arg = arg;
    pool->n = n;
    pool->grain = grain;
    atomic_store_explicit(&pool->next, 0, memory_order_relaxed);
    atomic_store_explicit(&pool->pending, nt - 1, memory_order_relaxed);

    pthread_mutex_lock(&pool->mu);
    atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mu);

    run_chunks(pool, 0);

    /* wait for the workers: spin, then sleep */
    for (int i = 0; i < SPIN_ITERS; i++) {
        if (atomic_load_explicit(&pool->pending, memory_order_acquire) == 0)
            break;
        MK_CPU_RELAX();
    }
    if (atomic_load_explicit(&pool->pending, memory_order_acquire) != 0) {
        pthread_mutex_lock(&pool->mu);
        while (atomic_load_explicit(&pool->pending, memory_order_acquire) != 0)
            pthread_cond_wait(&pool->done, &pool->mu);
        pthread_mutex_unlock(&pool->mu);
    }
    atomic_store(&pool->busy, 0);
}
