/*
 * kernels/cpu/internal.h: what the CPU kernel files share and nobody else
 * sees: the context, scratch memory, argument checks, and the range helpers
 * through which the fast ops reuse the reference loops (the portable path).
 *
 * Legend as in kernels/ops.h (T, C, NH, NKV, HS, F, K, N, BS, MB).
 */
#ifndef MCRT_KERNELS_CPU_INTERNAL_H
#define MCRT_KERNELS_CPU_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "cpu.h"        /* the public CPU API, ops.h */
#include "threadpool.h" /* mk_threadpool, mk_range_fn */

struct mk_ctx {
    int32_t device;        /* MCRT_DEVICE_CPU */
    int isa;               /* MK_ISA_* actually used */
    int use_blas;          /* f32 matmul through OpenBLAS */
    int n_threads;         /* pool size, caller included */
    mk_threadpool *pool;
    unsigned char *scratch; /* n_threads slices of scratch_stride bytes, 64-byte aligned */
    size_t scratch_stride;
    int32_t *work;          /* the driving thread's index lists (attention blocks) */
    size_t work_cap;        /* int32 entries in work */
};

/* Grows the per-thread scratch to at least `bytes` per thread (contents are
 * not kept). Call on the driving thread, before parallel_for. */
mcrt_status mk_ctx_reserve(mk_ctx *ctx, size_t bytes);

/* Grows ctx->work to at least n int32 entries (contents are not kept). */
mcrt_status mk_ctx_reserve_work(mk_ctx *ctx, size_t n);

/* Thread `thread`'s scratch slice (valid until the next reserve). */
static inline void *mk_ctx_scratch(const mk_ctx *ctx, int thread)
{
    return ctx->scratch + (size_t)thread * ctx->scratch_stride;
}

/* parallel_for over [0, n) unless the whole job is small (n * cost_per_item
 * below ~32k flop-equivalents), in which case it runs on the caller: waking a
 * worker costs more than such a job. */
void mk_par_for(mk_ctx *ctx, int64_t n, int64_t grain, double cost_per_item, mk_range_fn *fn,
                void *arg);


/* --- reference loops on sub-ranges (reference.c) ----------------------------- */

/* y[t, n0..n1) for all t of y [T, ldy]: the reference dot products, f64 accumulation.
 * y row t at y + t*ldy; w [N,K] of dtype w_dtype; bias [N] or NULL. */
void matmul_ref_cols(float *y, int ldy, const float *x, const void *w, int32_t w_dtype,
                     const float *bias, int T, int K, int n0, int n1);

/* One (token, query head) of attention_forward_cpu: out_h [HS] from q_h [HS]. */
void attention_ref_head(float *out_h, const float *q_h, const float *k_cache,
                        const float *v_cache, const int32_t *table_row, int pos, int g,
                        float scale, int NKV, int HS, int BS);

/* Element-wise activations on n values (not SwiGLU). */
void activation_ref_elementwise(float *out, const float *x, mk_act act, int64_t n);

/* SwiGLU on rows: out [T,F] from x [T,2F]. */
void swiglu_ref_rows(float *out, const float *x, int T, int F);

/* Pointer to (position p, kv head g) of sequence row `table_row` [MB] in a pool
 * [NB,NKV,BS,HS]. */
static inline const float *mk_kv_at(const float *cache, const int32_t *table_row, int p, int g,
                                    int NKV, int HS, int BS)
{
    int32_t b = table_row[p / BS];
    return cache + (((size_t)b * (size_t)NKV + (size_t)g) * (size_t)BS + (size_t)(p % BS)) *
                       (size_t)HS;
}

#endif /* MCRT_KERNELS_CPU_INTERNAL_H */
