/*
 * tools/bench/common/limits.c: this machine's limits, measured with all the
 * threads of a pool (see limits.h). Shared by the kernel and model benchmarks.
 */
#include "limits.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "kernels/cpu/cpu.h" /* mk_cpu_detect_isa */

double bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *xmalloc(size_t n)
{
    void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);
    if (p == NULL) {
        fprintf(stderr, "bench: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

#define now_s bench_now_s

/* --- machine limits ------------------------------------------------------------------- */

typedef struct triad_job {
    float *a, *b, *c;
    float s;
    int init;
} triad_job;

static void triad_range(void *arg, int64_t b, int64_t e, int thread)
{
    triad_job *j = arg;
    (void)thread;
    if (j->init) { /* first touch by the thread that will use the pages */
        for (int64_t i = b; i < e; i++) {
            j->a[i] = 0.0f;
            j->b[i] = 1.0f;
            j->c[i] = 2.0f;
        }
        return;
    }
    float *restrict a = j->a;
    const float *restrict bb = j->b, *restrict cc = j->c;
    float s = j->s;
    for (int64_t i = b; i < e; i++)
        a[i] = bb[i] + s * cc[i];
}

double bench_measure_triad(mk_threadpool *pool)
{
    const int64_t n = 16 * 1024 * 1024; /* 64 MiB per array, 2x the L3 */
    triad_job j = {xmalloc(sizeof(float) * n), xmalloc(sizeof(float) * n),
                   xmalloc(sizeof(float) * n), 3.0f, 1};
    int nt = mk_threadpool_size(pool);
    int64_t grain = (n + nt - 1) / nt;
    mk_threadpool_parallel_for(pool, n, grain, triad_range, &j);
    j.init = 0;
    double best = 1e30;
    for (int rep = 0; rep < 10; rep++) {
        double t0 = now_s();
        mk_threadpool_parallel_for(pool, n, grain, triad_range, &j);
        double dt = now_s() - t0;
        if (dt < best)
            best = dt;
    }
    volatile float sink = j.a[n / 2];
    (void)sink;
    free(j.a);
    free(j.b);
    free(j.c);
    return 3.0 * sizeof(float) * (double)n / best / 1e9; /* GB/s */
}

typedef struct read_job {
    const float *a;
    double sum[64];
} read_job;

#if defined(__x86_64__) || defined(__i386__)
/* 4 vector accumulators: the sum must not be what limits the read rate */
__attribute__((target("avx2"))) static double read_sum_avx2(const float *a, int64_t b, int64_t e)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    int64_t i = b;
    for (; i + 32 <= e; i += 32) {
        s0 = _mm256_add_ps(s0, _mm256_loadu_ps(a + i));
        s1 = _mm256_add_ps(s1, _mm256_loadu_ps(a + i + 8));
        s2 = _mm256_add_ps(s2, _mm256_loadu_ps(a + i + 16));
        s3 = _mm256_add_ps(s3, _mm256_loadu_ps(a + i + 24));
    }
    float out[8];
    _mm256_storeu_ps(out, _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    double sum = 0;
    for (int k = 0; k < 8; k++)
        sum += out[k];
    for (; i < e; i++)
        sum += a[i];
    return sum;
}
#endif

static void read_range(void *arg, int64_t b, int64_t e, int thread)
{
    read_job *j = arg;
#if defined(__x86_64__) || defined(__i386__)
    if (mk_cpu_detect_isa() == MK_ISA_AVX2) {
        j->sum[thread] += read_sum_avx2(j->a, b, e);
        return;
    }
#endif
    const float *restrict a = j->a;
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
    int64_t i = b;
    for (; i + 8 <= e; i += 8) {
        s0 += a[i];
        s1 += a[i + 1];
        s2 += a[i + 2];
        s3 += a[i + 3];
        s4 += a[i + 4];
        s5 += a[i + 5];
        s6 += a[i + 6];
        s7 += a[i + 7];
    }
    for (; i < e; i++)
        s0 += a[i];
    j->sum[thread] += (double)(s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7);
}

/* Read-only bandwidth: a sum over 256 MiB, all threads, best of 5. This is
 * the bound for a decode step, which only reads its weights. */
double bench_measure_read(mk_threadpool *pool)
{
    const int64_t n = 64 * 1024 * 1024;
    float *a = xmalloc(sizeof(float) * n);
    triad_job init = {a, a, a, 0.0f, 1};
    int nt = mk_threadpool_size(pool);
    int64_t grain = (n + nt - 1) / nt;
    mk_threadpool_parallel_for(pool, n, grain, triad_range, &init);
    read_job j;
    memset(&j, 0, sizeof j);
    j.a = a;
    double best = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now_s();
        mk_threadpool_parallel_for(pool, n, grain, read_range, &j);
        double dt = now_s() - t0;
        if (dt < best)
            best = dt;
    }
    free(a);
    return sizeof(float) * (double)n / best / 1e9;
}

typedef struct fma_job {
    int64_t iters;
    float out[64];
} fma_job;

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("avx2,fma"))) static float fma_loop(int64_t iters)
{
    /* 12 independent chains hide the 4-5 cycle FMA latency at 2 FMAs per cycle.
     * Each starts from a different value: identical chains would be merged
     * into one by the compiler (common subexpressions). */
    __m256 a0 = _mm256_set1_ps(0.01f), a1 = _mm256_set1_ps(0.02f), a2 = _mm256_set1_ps(0.03f);
    __m256 a3 = _mm256_set1_ps(0.04f), a4 = _mm256_set1_ps(0.05f), a5 = _mm256_set1_ps(0.06f);
    __m256 a6 = _mm256_set1_ps(0.07f), a7 = _mm256_set1_ps(0.08f), a8 = _mm256_set1_ps(0.09f);
    __m256 a9 = _mm256_set1_ps(0.10f), a10 = _mm256_set1_ps(0.11f), a11 = _mm256_set1_ps(0.12f);
    const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
    for (int64_t i = 0; i < iters; i++) {
        a0 = _mm256_fmadd_ps(a0, m, c);
        a1 = _mm256_fmadd_ps(a1, m, c);
        a2 = _mm256_fmadd_ps(a2, m, c);
        a3 = _mm256_fmadd_ps(a3, m, c);
        a4 = _mm256_fmadd_ps(a4, m, c);
        a5 = _mm256_fmadd_ps(a5, m, c);
        a6 = _mm256_fmadd_ps(a6, m, c);
        a7 = _mm256_fmadd_ps(a7, m, c);
        a8 = _mm256_fmadd_ps(a8, m, c);
        a9 = _mm256_fmadd_ps(a9, m, c);
        a10 = _mm256_fmadd_ps(a10, m, c);
        a11 = _mm256_fmadd_ps(a11, m, c);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                             _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0];
}
#endif

static void fma_range(void *arg, int64_t b, int64_t e, int thread)
{
    fma_job *j = arg;
    for (int64_t i = b; i < e; i++) {
#if defined(__x86_64__) || defined(__i386__)
        j->out[thread] += fma_loop(j->iters);
#else
        (void)j;
#endif
    }
}

/* GFLOP/s with every thread running the FMA loop (2 flops x 8 lanes x 12 per iteration). */
double bench_measure_fma_peak(mk_threadpool *pool)
{
    int nt = mk_threadpool_size(pool);
    fma_job j;
    memset(&j, 0, sizeof j);
    j.iters = 5 * 1000 * 1000;
    double best = 1e30;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now_s();
        mk_threadpool_parallel_for(pool, nt, 1, fma_range, &j);
        double dt = now_s() - t0;
        if (dt < best)
            best = dt;
    }
    return (double)nt * (double)j.iters * 12.0 * 16.0 / best / 1e9;
}

