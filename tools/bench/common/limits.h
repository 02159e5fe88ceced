/*
 * tools/bench/common/limits.h: what this machine can do, measured in the
 * benchmark's own run, with every thread of `pool`, so figures can be given
 * as a fraction of it:
 *   triad   STREAM triad a = b + s c over 3 arrays of 64 MiB, 12 bytes counted
 *           per element as STREAM does; best of 10; GB/s
 *   read    a sum over 256 MiB (what a decode step does to its weights);
 *           best of 5; GB/s
 *   fma     per thread 12 independent 8-wide FMA chains (AVX2+FMA only; 0
 *           elsewhere); best of 5; GFLOP/s
 */
#ifndef MCRT_BENCH_LIMITS_H
#define MCRT_BENCH_LIMITS_H

#include "kernels/cpu/threadpool.h"

double bench_measure_triad(mk_threadpool *pool);
double bench_measure_read(mk_threadpool *pool);
double bench_measure_fma_peak(mk_threadpool *pool);

/* Monotonic seconds. */
double bench_now_s(void);

#endif
