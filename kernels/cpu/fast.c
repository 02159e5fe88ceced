/*
 * kernels/cpu/fast.c: the fast CPU ops. Each one checks its arguments exactly
 * as the reference does (check.h), splits its work over the context's thread
 * pool, and runs on each sub-range either the AVX2 kernel (avx2.c, when the
 * context's ISA level is MK_ISA_AVX2) or the reference loops themselves (the
 * portable path). Matmuls of more than MK_AVX2_MATMUL_SMALL_T rows go to
 * OpenBLAS when the build has it (one single-threaded sgemm per pool thread on
 * its own columns; 16-bit weights widened block by block into scratch); at or
 * below it, and without OpenBLAS, the own AVX2 kernels, which read each
 * weight from DRAM once. The portable path sends f32 weights to OpenBLAS at
 * every T and 16-bit ones to the reference loops.
 *
 * Work split (thread i gets contiguous items; chunks are claimed dynamically):
 *   matmul       columns of W, in multiples of 16     (each weight read once)
 *   attention    (token, kv head) pairs                (causal work is uneven)
 *   norms, embedding, rotary, kv_write, split_qkv, softmax, argmax: tokens
 *   activations, residual: elements (multiples of 64)
 * Jobs smaller than ~32k flops run on the calling thread (mk_par_for).
 *
 * Legend: T tokens, C hidden, NH/NKV heads, HS head size, F ffn, K/N matmul.
 */
#include <math.h>
#include <string.h>

#if MK_HAVE_OPENBLAS
#include <cblas.h> /* cblas_sgemm, cblas_sgemv */
#endif

#include "check.h"    /* MK_VALIDATE, mk_check_* */
#include "internal.h" /* struct mk_ctx, mk_par_for, reference range helpers */
#if MK_HAVE_AVX2
#include "avx2.h" /* mk_avx2_* */
#endif

#define MK_CTX_REQUIRED(ctx)                                                                      \
    do {                                                                                          \
        if (!(ctx) || (ctx)->device != MCRT_DEVICE_CPU)                                           \
            return MCRT_E_INVAL;                                                                  \
    } while (0)

static int use_avx2(const mk_ctx *ctx)
{
#if MK_HAVE_AVX2
    return ctx->isa == MK_ISA_AVX2;
#else
    (void)ctx;
    return 0;
#endif
}

static int64_t round_up(int64_t v, int64_t m)
{
    return (v + m - 1) / m * m;
}

/* An even split of n items over the pool, rounded up to a multiple of m. */
static int64_t even_grain(const mk_ctx *ctx, int64_t n, int64_t m)
{
    return round_up((n + ctx->n_threads - 1) / ctx->n_threads, m);
}

/* --- embedding ------------------------------------------------------------------- */

typedef struct embedding_job {
    float *out;
    const int32_t *tokens, *positions;
    const void *wte, *wpe;
    int32_t w_dtype, vocab_start;
    int C, V;
} embedding_job;

static void embedding_range(void *arg, int64_t b, int64_t e, int thread)
{
    const embedding_job *j = arg;
    (void)thread;
    (void)embedding_forward_cpu(j->out + b * j->C, j->tokens + b,
                                j->positions ? j->positions + b : NULL, j->wte, j->wpe, j->w_dtype,
                                j->vocab_start, (int)(e - b), j->C, j->V, NULL);
}

mcrt_status embedding_forward_cpu_fast(float *out, const int32_t *tokens,
                                       const int32_t *positions, const void *wte, const void *wpe,
                                       int32_t w_dtype, int32_t vocab_start, int T, int C, int V,
                                       mk_ctx *ctx)
{
    /* out is [T,C]; tokens, positions are [T]; wte is [V,C]; wpe is [max_pos,C] */
    MK_VALIDATE(mk_check_embedding(out, tokens, positions, wte, wpe, w_dtype, T, C, V));
    MK_CTX_REQUIRED(ctx);
    embedding_job j = {out, tokens, positions, wte, wpe, w_dtype, vocab_start, C, V};
    mk_par_for(ctx, T, even_grain(ctx, T, 1), 2.0 * C, embedding_range, &j);
    return MCRT_OK;
}

/* --- norms ------------------------------------------------------------------------ */

typedef struct norm_job {
    float *out, *resid_out;
    const float *x, *r, *weight, *bias;
    float eps;
    int one_p, C, rms, avx2;
} norm_job;

static void norm_range(void *arg, int64_t b, int64_t e, int thread)
{
    const norm_job *j = arg;
    (void)thread;
    size_t off = (size_t)b * j->C;
    float *out = j->out + off, *res = j->resid_out ? j->resid_out + off : NULL;
    const float *x = j->x + off, *r = j->r ? j->r + off : NULL;
    int T = (int)(e - b);
#if MK_HAVE_AVX2
    if (j->avx2) {
        if (j->rms)
            mk_avx2_rmsnorm_rows(out, res, x, r, j->weight, j->eps, j->one_p, T, j->C);
        else
            mk_avx2_layernorm_rows(out, res, x, r, j->weight, j->bias, j->eps, j->one_p, T, j->C);
        return;
    }
#endif
    if (j->rms)
        (void)rmsnorm_forward_cpu(out, res, x, r, j->weight, j->eps, j->one_p, T, j->C, NULL);
    else
        (void)layernorm_forward_cpu(out, res, x, r, j->weight, j->bias, j->eps, j->one_p, T, j->C,
                                    NULL);
}

mcrt_status layernorm_forward_cpu_fast(float *out, float *resid_out, const float *x,
                                       const float *r, const float *weight, const float *bias,
                                       float eps, int one_p, int T, int C, mk_ctx *ctx)
{
    /* out, resid_out, x, r are [T,C]; weight, bias are [C] */
    MK_VALIDATE(mk_check_norm(out, resid_out, x, weight, T, C));
    MK_CTX_REQUIRED(ctx);
    norm_job j = {out, resid_out, x, r, weight, bias, eps, one_p, C, 0, use_avx2(ctx)};
    mk_par_for(ctx, T, even_grain(ctx, T, 1), 6.0 * C, norm_range, &j);
    return MCRT_OK;
}

mcrt_status rmsnorm_forward_cpu_fast(float *out, float *resid_out, const float *x, const float *r,
                                     const float *weight, float eps, int one_p, int T, int C,
                                     mk_ctx *ctx)
{
    /* out, resid_out, x, r are [T,C]; weight is [C] */
    MK_VALIDATE(mk_check_norm(out, resid_out, x, weight, T, C));
    MK_CTX_REQUIRED(ctx);
    norm_job j = {out, resid_out, x, r, weight, NULL, eps, one_p, C, 1, use_avx2(ctx)};
    mk_par_for(ctx, T, even_grain(ctx, T, 1), 5.0 * C, norm_range, &j);
    return MCRT_OK;
}

/* --- matmul ----------------------------------------------------------------------- */

typedef struct matmul_job {
    float *y;
    const float *x;
    const void *w;
    int32_t w_dtype;
    const float *bias;
    int T, K, N;
    int path; /* 0 reference loops, 1 AVX2, 2 OpenBLAS, 3 OpenBLAS on widened blocks */
    mk_ctx *ctx;
} matmul_job;

#if MK_HAVE_OPENBLAS
/* Columns [n0, n1) through OpenBLAS, with wn = rows n0..n1 of the weights as
 * f32: the bias is copied into y first and beta = 1 adds the product to it. */
static void blas_cols(const matmul_job *j, const float *wn, int n0, int n1)
{
    int nc = n1 - n0;
    float beta = 0.0f;
    if (j->bias) {
        for (int t = 0; t < j->T; t++)
            memcpy(j->y + (size_t)t * j->N + n0, j->bias + n0, (size_t)nc * sizeof(float));
        beta = 1.0f;
    }
    if (j->T == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, nc, j->K, 1.0f, wn, j->K, j->x, 1, beta,
                    j->y + n0, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->T, nc, j->K, 1.0f, j->x, j->K, wn,
                    j->K, beta, j->y + n0, j->N);
}

static void matmul_blas_cols(const matmul_job *j, int n0, int n1)
{
    blas_cols(j, (const float *)j->w + (size_t)n0 * j->K, n0, n1);
}

#if MK_HAVE_AVX2
/* 16-bit weights at prefill sizes: blocks of rows widened to f32 into the
 * thread's scratch (~1 MiB, never a copy of the whole matrix), each through
 * sgemm. The widening is one linear pass, 1/T of sgemm's work per weight. */
static int widen_block_rows(int K)
{
    int rows = (int)((1u << 20) / ((size_t)K * sizeof(float))) / 16 * 16;
    return rows < 16 ? 16 : rows;
}

static void matmul_blas_widened_cols(const matmul_job *j, int n0, int n1, float *wide)
{
    int rows = widen_block_rows(j->K);
    for (int nb = n0; nb < n1; nb += rows) {
        int ne = nb + rows < n1 ? nb + rows : n1;
        mk_avx2_widen(wide, j->w, j->w_dtype, (size_t)nb * j->K, (size_t)(ne - nb) * j->K);
        blas_cols(j, wide, nb, ne);
    }
}
#endif
#endif

static void matmul_range(void *arg, int64_t b, int64_t e, int thread)
{
    const matmul_job *j = arg;
    switch (j->path) {
#if MK_HAVE_OPENBLAS
    case 2: matmul_blas_cols(j, (int)b, (int)e); return;
#if MK_HAVE_AVX2
    case 3: matmul_blas_widened_cols(j, (int)b, (int)e, mk_ctx_scratch(j->ctx, thread)); return;
#endif
#endif
#if MK_HAVE_AVX2
    case 1:
        mk_avx2_matmul(j->y, j->x, j->w, j->w_dtype, j->bias, j->T, j->K, j->N, (int)b, (int)e,
                       mk_ctx_scratch(j->ctx, thread));
        return;
#endif
    default:
        matmul_ref_cols(j->y, j->N, j->x, j->w, j->w_dtype, j->bias, j->T, j->K, (int)b, (int)e);
        return;
    }
}

mcrt_status matmul_forward_cpu_fast(float *y, const float *x, const void *w, int32_t w_dtype,
                                    const float *bias, int T, int K, int N, mk_ctx *ctx)
{
    /* y is [T,N]; x is [T,K]; w is [N,K] (w_dtype); bias is [N] */
    MK_VALIDATE(mk_check_matmul(y, x, w, w_dtype, T, K, N));
    MK_CTX_REQUIRED(ctx);
    matmul_job j = {y, x, w, w_dtype, bias, T, K, N, 0, ctx};
    /* OpenBLAS above MK_AVX2_MATMUL_SMALL_T rows; at or below it, the own
     * kernels stream the weights once, faster than sgemm packs them */
    int small = 0;
#if MK_HAVE_AVX2
    small = use_avx2(ctx) && T <= MK_AVX2_MATMUL_SMALL_T;
#endif
    if (w_dtype == MCRT_DTYPE_F32 && ctx->use_blas && !small)
        j.path = 2;
#if MK_HAVE_AVX2 && MK_HAVE_OPENBLAS
    else if (ctx->use_blas && !small && use_avx2(ctx)) {
        j.path = 3;
        mcrt_status st =
            mk_ctx_reserve(ctx, (size_t)widen_block_rows(K) * (size_t)K * sizeof(float));
        if (st != MCRT_OK)
            return st;
    }
#endif
#if MK_HAVE_AVX2
    else if (use_avx2(ctx)) {
        j.path = 1;
        mcrt_status st = mk_ctx_reserve(ctx, mk_avx2_matmul_scratch(T, K, w_dtype));
        if (st != MCRT_OK)
            return st;
    }
#endif
    mk_par_for(ctx, N, even_grain(ctx, N, 16), 2.0 * T * K, matmul_range, &j);
    return MCRT_OK;
}

/* --- split_qkv, rotary, kv_write -------------------------------------------------- */

typedef struct qkv_job {
    float *q, *k, *v;
    const float *qkv;
    int NH, NKV, HS;
} qkv_job;

static void split_qkv_range(void *arg, int64_t b, int64_t e, int thread)
{
    const qkv_job *j = arg;
    (void)thread;
    (void)split_qkv_forward_cpu(j->q + b * j->NH * j->HS, j->k + b * j->NKV * j->HS,
                                j->v + b * j->NKV * j->HS, j->qkv + b * (j->NH + 2 * j->NKV) * j->HS,
                                (int)(e - b), j->NH, j->NKV, j->HS, NULL);
}

mcrt_status split_qkv_forward_cpu_fast(float *q, float *k, float *v, const float *qkv, int T,
                                       int NH, int NKV, int HS, mk_ctx *ctx)
{
    /* q is [T,NH,HS]; k, v are [T,NKV,HS]; qkv is [T, NKV, NH/NKV + 2, HS] */
    MK_VALIDATE(mk_check_split_qkv(q, k, v, qkv, T, NH, NKV, HS));
    MK_CTX_REQUIRED(ctx);
    qkv_job j = {q, k, v, qkv, NH, NKV, HS};
    mk_par_for(ctx, T, even_grain(ctx, T, 1), (double)(NH + 2 * NKV) * HS, split_qkv_range, &j);
    return MCRT_OK;
}

typedef struct rotary_job {
    float *q, *k;
    const int32_t *positions;
    float base;
    int interleaved, NH, NKV, HS, rot_dim;
    mk_ctx *ctx;
} rotary_job;

/* The reference's arithmetic, with each token's cos/sin computed once and
 * shared by all its heads instead of once per head. */
static void rotary_range(void *arg, int64_t b, int64_t e, int thread)
{
    const rotary_job *j = arg;
    int half = j->rot_dim / 2;
    float *inv = mk_ctx_scratch(j->ctx, thread), *cs = inv + half, *sn = cs + half;
    for (int i = 0; i < half; i++)
        inv[i] = 1.0f / powf(j->base, (float)(2 * i) / (float)j->rot_dim);
    for (int64_t t = b; t < e; t++) {
        float pos = (float)j->positions[t];
        for (int i = 0; i < half; i++) {
            float angle = pos * inv[i];
            cs[i] = cosf(angle);
            sn[i] = sinf(angle);
        }
        int nheads = j->NH + (j->k ? j->NKV : 0);
        for (int h = 0; h < nheads; h++) {
            float *v = h < j->NH ? j->q + ((size_t)t * j->NH + h) * j->HS
                                 : j->k + ((size_t)t * j->NKV + (h - j->NH)) * j->HS;
            if (j->interleaved) {
                for (int i = 0; i < half; i++) {
                    float xa = v[2 * i], xb = v[2 * i + 1];
                    v[2 * i] = xa * cs[i] - xb * sn[i];
                    v[2 * i + 1] = xb * cs[i] + xa * sn[i];
                }
            } else {
                for (int i = 0; i < half; i++) {
                    float xa = v[i], xb = v[i + half];
                    v[i] = xa * cs[i] - xb * sn[i];
                    v[i + half] = xb * cs[i] + xa * sn[i];
                }
            }
        }
    }
}

mcrt_status rotary_forward_cpu_fast(float *q, float *k, const int32_t *positions, float base,
                                    int interleaved, int T, int NH, int NKV, int HS, int rot_dim,
                                    mk_ctx *ctx)
{
    /* q is [T,NH,HS]; k is [T,NKV,HS]; positions is [T]; both rotated in place */
    MK_VALIDATE(mk_check_rotary(q, positions, base, T, NH, NKV, HS, rot_dim));
    MK_CTX_REQUIRED(ctx);
    mcrt_status st = mk_ctx_reserve(ctx, (size_t)3 * (rot_dim / 2) * sizeof(float));
    if (st != MCRT_OK)
        return st;
    rotary_job j = {q, k, positions, base, interleaved, NH, NKV, HS, rot_dim, ctx};
    mk_par_for(ctx, T, even_grain(ctx, T, 1), 3.0 * (NH + NKV) * rot_dim + 40.0 * rot_dim,
               rotary_range, &j);
    return MCRT_OK;
}

typedef struct kv_job {
    float *k_cache, *v_cache;
    const float *k, *v;
    const int32_t *positions, *seq_index, *block_table;
    int NKV, HS, BS, MB;
} kv_job;

static void kv_write_range(void *arg, int64_t b, int64_t e, int thread)
{
    const kv_job *j = arg;
    (void)thread;
    size_t off = (size_t)b * j->NKV * j->HS;
    (void)kv_write_forward_cpu(j->k_cache, j->v_cache, j->k + off, j->v + off, j->positions + b,
                               j->seq_index + b, j->block_table, (int)(e - b), j->NKV, j->HS,
                               j->BS, j->MB, NULL);
}

mcrt_status kv_write_forward_cpu_fast(float *k_cache, float *v_cache, const float *k,
                                      const float *v, const int32_t *positions,
                                      const int32_t *seq_index, const int32_t *block_table, int T,
                                      int NKV, int HS, int BS, int MB, mk_ctx *ctx)
{
    /* k_cache, v_cache are [NB,NKV,BS,HS]; k, v are [T,NKV,HS]; block_table is [S,MB] */
    MK_VALIDATE(mk_check_kv_write(k_cache, v_cache, k, v, positions, seq_index, block_table, T,
                                  NKV, HS, BS, MB));
    MK_CTX_REQUIRED(ctx);
    kv_job j = {k_cache, v_cache, k, v, positions, seq_index, block_table, NKV, HS, BS, MB};
    mk_par_for(ctx, T, even_grain(ctx, T, 1), 2.0 * NKV * HS, kv_write_range, &j);
    return MCRT_OK;
}

/* --- attention -------------------------------------------------------------------- */

typedef struct attention_job {
    float *out;
    const float *q, *k_cache, *v_cache;
    const int32_t *positions, *seq_index, *block_table;
    float scale;
    int NH, NKV, HS, BS, MB, avx2;
    const int32_t *blocks; /* AVX2: [n_blocks, 2] = first token, token count */
    mk_ctx *ctx;
} attention_job;

/* Portable: items are (token, kv head) pairs, item i = t * NKV + g, each head
 * through the reference. AVX2: items are (block, kv head) pairs, a block
 * being up to MK_AVX2_ATTN_ROWS / R consecutive tokens of one sequence with
 * consecutive positions, so a prefill chunk shares each key and value it
 * loads among many query rows. */
static void attention_range(void *arg, int64_t b, int64_t e, int thread)
{
    const attention_job *j = arg;
    int R = j->NH / j->NKV;
    for (int64_t i = b; i < e; i++) {
        int g = (int)(i % j->NKV);
#if MK_HAVE_AVX2
        if (j->avx2) {
            int t0 = j->blocks[2 * (i / j->NKV)], nq = j->blocks[2 * (i / j->NKV) + 1];
            const int32_t *row = j->block_table + (size_t)j->seq_index[t0] * j->MB;
            size_t off = (size_t)t0 * j->NH * j->HS;
            mk_avx2_attention_block(j->out + off, j->q + off, j->k_cache, j->v_cache, row,
                                    j->positions[t0], nq, g, j->scale, j->NH, R, j->NKV, j->HS,
                                    j->BS, mk_ctx_scratch(j->ctx, thread));
            continue;
        }
#else
        (void)thread;
#endif
        int t = (int)(i / j->NKV);
        const int32_t *row = j->block_table + (size_t)j->seq_index[t] * j->MB;
        float *out_t = j->out + (size_t)t * j->NH * j->HS;
        const float *q_t = j->q + (size_t)t * j->NH * j->HS;
        for (int h = g * R; h < (g + 1) * R; h++)
            attention_ref_head(out_t + (size_t)h * j->HS, q_t + (size_t)h * j->HS, j->k_cache,
                               j->v_cache, row, j->positions[t], g, j->scale, j->NKV, j->HS,
                               j->BS);
    }
}

mcrt_status attention_forward_cpu_fast(float *out, const float *q, const float *k_cache,
                                       const float *v_cache, const int32_t *positions,
                                       const int32_t *seq_index, const int32_t *block_table,
                                       float softmax_scale, int T, int NH, int NKV, int HS, int BS,
                                       int MB, mk_ctx *ctx)
{
    /* out, q are [T,NH,HS]; k_cache, v_cache are [NB,NKV,BS,HS]; block_table is [S,MB] */
    MK_VALIDATE(mk_check_attention(out, q, k_cache, v_cache, positions, seq_index, block_table, T,
                                   NH, NKV, HS, BS, MB));
    MK_CTX_REQUIRED(ctx);
    float scale = softmax_scale > 0.0f ? softmax_scale : (float)(1.0 / sqrt((double)HS));
    attention_job j = {out, q,  k_cache, v_cache, positions,     seq_index, block_table, scale,
                       NH,  NKV, HS,     BS,      MB,            use_avx2(ctx), NULL,    ctx};
    int64_t units = T; /* tokens, or blocks of tokens */
#if MK_HAVE_AVX2
    if (j.avx2) {
        int R = NH / NKV;
        int qb = MK_AVX2_ATTN_ROWS / R > 1 ? MK_AVX2_ATTN_ROWS / R : 1; /* tokens per block */
        mcrt_status st = mk_ctx_reserve(ctx, mk_avx2_attention_scratch(qb * R, HS));
        if (st == MCRT_OK)
            st = mk_ctx_reserve_work(ctx, (size_t)2 * T);
        if (st != MCRT_OK)
            return st;
        /* blocks: runs of one sequence's consecutive positions, at most qb tokens */
        int32_t *blocks = ctx->work;
        int nb = 0;
        for (int t = 0; t < T;) {
            int t1 = t + 1;
            while (t1 < T && t1 - t < qb && seq_index[t1] == seq_index[t] &&
                   positions[t1] == positions[t1 - 1] + 1)
                t1++;
            blocks[2 * nb] = t;
            blocks[2 * nb + 1] = t1 - t;
            nb++;
            t = t1;
        }
        j.blocks = blocks;
        units = nb;
    }
#endif
    /* cost: every (token, head) reads pos+1 keys and values */
    double keys = 0.0;
    for (int t = 0; t < T; t++)
        keys += (double)positions[t] + 1.0;
    int64_t items = units * NKV;
    double cost = keys * 4.0 * HS * NH / (double)items;
    int64_t grain = items / (8 * (int64_t)ctx->n_threads);
    mk_par_for(ctx, items, grain < 1 ? 1 : grain, cost, attention_range, &j);
    return MCRT_OK;
}

/* --- activations and element-wise ------------------------------------------------- */

typedef struct act_job {
    float *out;
    const float *x;
    mk_act act;
    int F, avx2;
} act_job;

static void act_range(void *arg, int64_t b, int64_t e, int thread)
{
    const act_job *j = arg;
    (void)thread;
    if (j->act == MK_ACT_SWIGLU) { /* items are rows */
        float *out = j->out + b * j->F;
        const float *x = j->x + b * 2 * j->F;
#if MK_HAVE_AVX2
        if (j->avx2) {
            mk_avx2_swiglu_rows(out, x, (int)(e - b), j->F);
            return;
        }
#endif
        swiglu_ref_rows(out, x, (int)(e - b), j->F);
        return;
    }
#if MK_HAVE_AVX2
    if (j->avx2) { /* items are elements */
        mk_avx2_activation(j->out + b, j->x + b, j->act, e - b);
        return;
    }
#endif
    activation_ref_elementwise(j->out + b, j->x + b, j->act, e - b);
}

mcrt_status activation_forward_cpu_fast(float *out, const float *x, mk_act act, int T, int F,
                                        mk_ctx *ctx)
{
    /* out is [T,F]; x is [T,F], or [T,2F] for SwiGLU */
    MK_VALIDATE(mk_check_activation(out, x, act, T, F));
    MK_CTX_REQUIRED(ctx);
    act_job j = {out, x, act, F, use_avx2(ctx)};
    if (act == MK_ACT_SWIGLU)
        mk_par_for(ctx, T, even_grain(ctx, T, 1), 30.0 * F, act_range, &j);
    else {
        int64_t n = (int64_t)T * F;
        mk_par_for(ctx, n, even_grain(ctx, n, 64), 30.0, act_range, &j);
    }
    return MCRT_OK;
}

typedef struct add_job {
    float *out;
    const float *a, *b;
    int N;
} add_job;

static void residual_range(void *arg, int64_t b, int64_t e, int thread)
{
    const add_job *j = arg;
    (void)thread;
    for (int64_t i = b; i < e; i++)
        j->out[i] = j->a[i] + j->b[i];
}

mcrt_status residual_forward_cpu_fast(float *out, const float *a, const float *b, int N,
                                      mk_ctx *ctx)
{
    /* out, a, b are [N] */
    MK_VALIDATE(mk_check_residual(out, a, b, N));
    MK_CTX_REQUIRED(ctx);
    add_job j = {out, a, b, N};
    mk_par_for(ctx, N, even_grain(ctx, N, 64), 1.0, residual_range, &j);
    return MCRT_OK;
}

static void bias_add_range(void *arg, int64_t b, int64_t e, int thread)
{
    const add_job *j = arg;
    (void)thread;
    for (int64_t t = b; t < e; t++)
        for (int n = 0; n < j->N; n++)
            j->out[t * j->N + n] += j->b[n];
}

mcrt_status bias_add_forward_cpu_fast(float *x, const float *bias, int T, int N, mk_ctx *ctx)
{
    /* x is [T,N]; bias is [N] */
    MK_VALIDATE(mk_check_rows(bias, x, T, N));
    MK_CTX_REQUIRED(ctx);
    add_job j = {x, x, bias, N};
    mk_par_for(ctx, T, even_grain(ctx, T, 1), (double)N, bias_add_range, &j);
    return MCRT_OK;
}

/* --- logits helpers ----------------------------------------------------------------- */

typedef struct logits_job {
    void *out;
    const float *x;
    int N, ldx;
} logits_job;

static void log_softmax_range(void *arg, int64_t b, int64_t e, int thread)
{
    const logits_job *j = arg;
    (void)thread;
    (void)log_softmax_forward_cpu((float *)j->out + b * j->N, j->x + b * j->ldx, (int)(e - b), j->N,
                                  j->ldx, NULL);
}

mcrt_status log_softmax_forward_cpu_fast(float *out, const float *x, int T, int N, int ldx,
                                         mk_ctx *ctx)
{
    /* out is [T,N]; x is [T,ldx] */
    MK_VALIDATE(mk_check_logits_rows(out, x, T, N, ldx));
    MK_CTX_REQUIRED(ctx);
    logits_job j = {out, x, N, ldx};
    mk_par_for(ctx, T, even_grain(ctx, T, 1), 20.0 * N, log_softmax_range, &j);
    return MCRT_OK;
}

static void argmax_range(void *arg, int64_t b, int64_t e, int thread)
{
    const logits_job *j = arg;
    (void)thread;
    (void)argmax_forward_cpu((int32_t *)j->out + b, j->x + b * j->ldx, (int)(e - b), j->N, j->ldx,
                             NULL);
}

mcrt_status argmax_forward_cpu_fast(int32_t *out, const float *x, int T, int N, int ldx,
                                    mk_ctx *ctx)
{
    /* out is [T]; x is [T,ldx] */
    MK_VALIDATE(mk_check_logits_rows(out, x, T, N, ldx));
    MK_CTX_REQUIRED(ctx);
    logits_job j = {out, x, N, ldx};
    mk_par_for(ctx, T, even_grain(ctx, T, 1), 2.0 * N, argmax_range, &j);
    return MCRT_OK;
}
