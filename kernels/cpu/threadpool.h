/*
 * kernels/cpu/threadpool.h: a small fixed-size thread pool for the CPU kernels.
 *
 * A pool of n threads is the calling thread plus n-1 workers started once by
 * mk_threadpool_create and joined by mk_threadpool_destroy. There is no global
 * pool: every user holds a handle (one per model rank, through its mk_ctx).
 *
 * parallel_for(n, grain, fn) splits [0, n) into chunks of `grain` items
 * (the last may be shorter) and runs fn(arg, begin, end, thread) on them.
 * Chunks are claimed dynamically (an atomic counter), so uneven work such as
 * causal attention balances itself; with grain = ceil(n / threads) every
 * thread gets one equal chunk. The call returns when every chunk is done;
 * everything the chunks wrote is then visible to the caller.
 *
 * `thread` is in [0, n_threads): 0 is the calling thread. Kernels use it to
 * pick a per-thread scratch slice. Two chunks never run concurrently on the
 * same `thread` index.
 *
 * Idle workers spin briefly (a few hundred microseconds) before sleeping on a
 * condition variable, so the back-to-back ops of a decode step do not pay a
 * futex wake-up each; a pool left idle costs no CPU.
 *
 * Thread safety: [instance] one thread drives a pool at a time. A parallel_for
 * issued from inside a chunk (nested) runs serially on the thread that issued
 * it, with that thread's index.
 */
#ifndef MCRT_KERNELS_CPU_THREADPOOL_H
#define MCRT_KERNELS_CPU_THREADPOOL_H

#include <stdint.h>

typedef struct mk_threadpool mk_threadpool;

/* fn(arg, begin, end, thread): process items [begin, end) on thread `thread`. */
typedef void mk_range_fn(void *arg, int64_t begin, int64_t end, int thread);

/* A pool of n_threads threads in all (the caller counts as one; n_threads-1
 * workers are started). n_threads < 1 is treated as 1. NULL if a thread or an
 * allocation could not be made. */
mk_threadpool *mk_threadpool_create(int n_threads);

/* Stops and joins the workers; NULL is a no-op. Not while a parallel_for runs. */
void mk_threadpool_destroy(mk_threadpool *pool);

/* Threads in the pool, caller included (>= 1). NULL counts as 1. */
int mk_threadpool_size(const mk_threadpool *pool);

/* Runs fn over [0, n) in chunks of `grain` (grain < 1 means an even split
 * over the pool's threads). pool NULL, a one-thread pool or n <= grain: fn
 * runs once on the calling thread over [0, n) with thread index 0. A nested
 * call: fn runs once over [0, n) with the issuing thread's own index. */
void mk_threadpool_parallel_for(mk_threadpool *pool, int64_t n, int64_t grain, mk_range_fn *fn,
                                void *arg);

#endif /* MCRT_KERNELS_CPU_THREADPOOL_H */
