/*
 * tools/bench/kernels/bench_kernels.c: throughput of the CPU kernels at
 * GPT-2 124M shapes, next to this machine's limits measured in the same run.
 * A program, not a test. Run it through /work/shared/tools/quiet_run.py so
 * other work on the machine does not skew the numbers:
 *
 *   quiet_run.py -- build/kernels/bench-kernels [--threads N] [--quick]
 *
 * Reports:
 *   - limits, all threads: STREAM triad bandwidth (a = b + s c over 3 arrays
 *     of 64 MiB, 12 bytes counted per element as STREAM does, although the
 *     write also reads its line: best of 10), read-only bandwidth (a sum over
 *     256 MiB, best of 5: what a decode step does) and FMA peak (per thread,
 *     12 independent 8-wide FMA chains, best of 5).
 *   - matmul y[T,N] = x[T,K] W[N,K]^T, f32 (OpenBLAS, and the own kernels),
 *     bf16 and f16 weights: GFLOP/s = 2 T K N / time, and the effective
 *     weight bandwidth (weight bytes / time) that matters at T = 1. The
 *     weights rotate through enough copies (>= 128 MiB) that every call reads
 *     them from DRAM, as one step of a model does. T = 1: mean time; else the
 *     best of the repetitions.
 *   - attention: decode (T = 1) at context 128 and 512 (KV bytes read / time)
 *     and causal prefill of 128 and 512 tokens (GFLOP/s), GPT-2 heads (12 x 64),
 *     block size 16.
 *   - a GPT-2 124M forward built from the op table (random weights, f32 and
 *     bf16): decode at batch 1, 8, 32 (context 128) against the read-bandwidth
 *     bound (weight bytes per step / read bandwidth), prefill of 128 and 512
 *     tokens against the FMA peak (matmul + attention flops).
 *   - ratios: matmul T=1 bf16 bandwidth / triad (and / read bandwidth);
 *     matmul T=512 GFLOP/s / FMA peak; GPT-2 bf16 decode batch 32 / batch 1.
 *
 * Options: --threads N (default: online CPUs), --quick (shorter timings),
 * --gpt-only (limits and the GPT-2 section only), --matmul DTYPE T K N
 * [--no-blas] (one shape, with the FMA peak measured just before and after:
 * for tuning on a machine whose clock moves).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "kernels/cpu/cpu.h"        /* the ops, mk_ctx */
#include "kernels/cpu/threadpool.h" /* the pool, for the limit measurements */
#include "kernels/dtype.h"          /* mk_f32_to_bf16, mk_f32_to_f16 */
#include "../common/limits.h"       /* the machine limits */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *xmalloc(size_t n)
{
    void *p = aligned_alloc(64, (n + 63) & ~(size_t)63);
    if (!p) {
        fprintf(stderr, "bench-kernels: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static float frand(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (float)((rng_state * 2685821657736338717ull) >> 40) / 16777216.0f * 2.0f - 1.0f;
}

/* --- matmul ---------------------------------------------------------------------------- */

typedef struct mm_result {
    double gflops, gbs, us;
} mm_result;

static mm_result bench_matmul(mk_ctx *ctx, int32_t dt, int T, int K, int N, double min_time)
{
    size_t esz = dt == MCRT_DTYPE_F32 ? 4 : 2, wbytes = esz * (size_t)N * K;
    /* rotate through >= 128 MiB of weight copies, so that every call reads its
     * weights from DRAM, as one step of a model does */
    int copies = (int)((128u << 20) / wbytes) + 1;
    if (copies > 64)
        copies = 64;
    void **w = malloc(sizeof(void *) * copies);
    w[0] = xmalloc(wbytes);
    if (dt == MCRT_DTYPE_F32) {
        float *wf = w[0];
        for (size_t i = 0; i < (size_t)N * K; i++)
            wf[i] = frand() * 0.05f;
    } else {
        uint16_t *wh = w[0];
        for (size_t i = 0; i < (size_t)N * K; i++)
            wh[i] = dt == MCRT_DTYPE_BF16 ? mk_f32_to_bf16(frand() * 0.05f)
                                          : mk_f32_to_f16(frand() * 0.05f);
    }
    for (int c = 1; c < copies; c++) { /* the same values at other addresses */
        w[c] = xmalloc(wbytes);
        memcpy(w[c], w[0], wbytes);
    }
    float *x = xmalloc(sizeof(float) * T * K), *y = xmalloc(sizeof(float) * T * N);
    float *bias = xmalloc(sizeof(float) * N);
    for (size_t i = 0; i < (size_t)T * K; i++)
        x[i] = frand();
    for (int i = 0; i < N; i++)
        bias[i] = frand();
    (void)matmul_forward_cpu_fast(y, x, w[0], dt, bias, T, K, N, ctx); /* warm up */
    int reps = 0;
    double t0 = now_s(), best = 1e30, t_total;
    do {
        double t1 = now_s();
        if (matmul_forward_cpu_fast(y, x, w[reps % copies], dt, bias, T, K, N, ctx) != MCRT_OK) {
            fprintf(stderr, "bench-kernels: matmul failed\n");
            exit(1);
        }
        double dt1 = now_s() - t1;
        if (dt1 < best)
            best = dt1;
        reps++;
        t_total = now_s() - t0;
    } while ((t_total < min_time || reps < 3) && reps < 100000);
    double avg = t_total / reps;
    /* bandwidth runs report the mean (every call streams from DRAM); compute runs the best */
    double t = T == 1 ? avg : best;
    mm_result r = {2.0 * T * K * N / t / 1e9, (double)wbytes / t / 1e9, t * 1e6};
    for (int c = 0; c < copies; c++)
        free(w[c]);
    free(w);
    free(x);
    free(y);
    free(bias);
    return r;
}

/* --- attention -------------------------------------------------------------------------- */

typedef struct attn_result {
    double us, gbs, gflops;
} attn_result;

/* One sequence; T new tokens at positions ctx_len - T .. ctx_len - 1 (T = 1: decode). */
static attn_result bench_attention(mk_ctx *ctx, int T, int ctx_len, double min_time)
{
    const int NH = 12, NKV = 12, HS = 64, BS = 16;
    int MB = (ctx_len + BS - 1) / BS, NB = MB + 8;
    size_t pool = (size_t)NB * NKV * BS * HS;
    float *kc = xmalloc(sizeof(float) * pool), *vc = xmalloc(sizeof(float) * pool);
    for (size_t i = 0; i < pool; i++) {
        kc[i] = frand();
        vc[i] = frand();
    }
    int32_t *table = xmalloc(sizeof(int32_t) * MB);
    for (int b = 0; b < MB; b++)
        table[b] = (b * 5 + 3) % NB; /* scattered blocks */
    int32_t *pos = xmalloc(sizeof(int32_t) * T), *seq = xmalloc(sizeof(int32_t) * T);
    double keys = 0;
    for (int t = 0; t < T; t++) {
        pos[t] = ctx_len - T + t;
        seq[t] = 0;
        keys += pos[t] + 1;
    }
    float *q = xmalloc(sizeof(float) * T * NH * HS), *out = xmalloc(sizeof(float) * T * NH * HS);
    for (size_t i = 0; i < (size_t)T * NH * HS; i++)
        q[i] = frand();
    (void)attention_forward_cpu_fast(out, q, kc, vc, pos, seq, table, 0.0f, T, NH, NKV, HS, BS, MB,
                                     ctx);
    int reps = 0;
    double t0 = now_s(), best = 1e30;
    do {
        double t1 = now_s();
        (void)attention_forward_cpu_fast(out, q, kc, vc, pos, seq, table, 0.0f, T, NH, NKV, HS, BS,
                                         MB, ctx);
        double d = now_s() - t1;
        if (d < best)
            best = d;
        reps++;
    } while ((now_s() - t0 < min_time || reps < 3) && reps < 1000000);
    attn_result r;
    r.us = best * 1e6;
    r.gbs = keys * 2.0 * NH * HS * sizeof(float) / best / 1e9; /* K and V read per token */
    r.gflops = keys * 4.0 * NH * HS / best / 1e9;              /* QK^T and PV */
    free(kc);
    free(vc);
    free(table);
    free(pos);
    free(seq);
    free(q);
    free(out);
    return r;
}

/* --- a GPT-2 124M layer stack built from the ops ---------------------------------- */

/* The whole forward of a GPT-2 124M-shaped model (12 layers, C 768, 12 heads,
 * F 3072, Vp 50304, tied output layer, learned positions) with random
 * weights, through the op table exactly as a model plugin would call it. It
 * tells what the kernels allow the plugin to reach: decode tokens/s against
 * the read-bandwidth bound, prefill against the FMA peak. */
enum { G_L = 12, G_C = 768, G_NH = 12, G_HS = 64, G_F = 3072, G_VP = 50304, G_BS = 16 };

typedef struct gpt {
    int32_t dt;
    size_t esz;
    void *wte, *wpe;                      /* [Vp,C], [1024,C] */
    void *w_qkv[G_L], *w_proj[G_L], *w_fc[G_L], *w_fc2[G_L];
    float *b_qkv[G_L], *b_proj[G_L], *b_fc[G_L], *b_fc2[G_L];
    float *ln_w, *ln_b;                   /* shared by every norm: values do not matter */
    float *kc[G_L], *vc[G_L];             /* [NB, NH, BS, HS] */
    int NB;
    void *all;                            /* the weight allocation */
    double weight_bytes;
} gpt;

static void gpt_fill(void *p, int32_t dt, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        float v = frand() * 0.02f;
        if (dt == MCRT_DTYPE_F32)
            ((float *)p)[i] = v;
        else
            ((uint16_t *)p)[i] = dt == MCRT_DTYPE_BF16 ? mk_f32_to_bf16(v) : mk_f32_to_f16(v);
    }
}

static void gpt_init(gpt *g, int32_t dt, int NB)
{
    memset(g, 0, sizeof *g);
    g->dt = dt;
    g->esz = dt == MCRT_DTYPE_F32 ? 4 : 2;
    size_t per_layer = (size_t)3 * G_C * G_C + (size_t)G_C * G_C + 2 * (size_t)G_F * G_C;
    size_t total = (size_t)G_VP * G_C + (size_t)1024 * G_C + G_L * per_layer;
    g->weight_bytes = (double)(G_L * per_layer + (size_t)G_VP * G_C) * g->esz;
    char *p = g->all = xmalloc(total * g->esz);
    gpt_fill(p, dt, total);
    g->wte = p;
    p += (size_t)G_VP * G_C * g->esz;
    g->wpe = p;
    p += (size_t)1024 * G_C * g->esz;
    for (int l = 0; l < G_L; l++) {
        g->w_qkv[l] = p;
        p += (size_t)3 * G_C * G_C * g->esz;
        g->w_proj[l] = p;
        p += (size_t)G_C * G_C * g->esz;
        g->w_fc[l] = p;
        p += (size_t)G_F * G_C * g->esz;
        g->w_fc2[l] = p;
        p += (size_t)G_F * G_C * g->esz;
        g->b_qkv[l] = xmalloc(sizeof(float) * 3 * G_C);
        g->b_proj[l] = xmalloc(sizeof(float) * G_C);
        g->b_fc[l] = xmalloc(sizeof(float) * G_F);
        g->b_fc2[l] = xmalloc(sizeof(float) * G_C);
        gpt_fill(g->b_qkv[l], MCRT_DTYPE_F32, 3 * G_C);
        gpt_fill(g->b_proj[l], MCRT_DTYPE_F32, G_C);
        gpt_fill(g->b_fc[l], MCRT_DTYPE_F32, G_F);
        gpt_fill(g->b_fc2[l], MCRT_DTYPE_F32, G_C);
    }
    g->ln_w = xmalloc(sizeof(float) * G_C);
    g->ln_b = xmalloc(sizeof(float) * G_C);
    for (int c = 0; c < G_C; c++) {
        g->ln_w[c] = 1.0f + 0.1f * frand();
        g->ln_b[c] = 0.1f * frand();
    }
    g->NB = NB;
    size_t pool = (size_t)NB * G_NH * G_BS * G_HS;
    for (int l = 0; l < G_L; l++) {
        g->kc[l] = xmalloc(sizeof(float) * pool);
        g->vc[l] = xmalloc(sizeof(float) * pool);
        for (size_t i = 0; i < pool; i++) /* any finite values will do */
            g->kc[l][i] = g->vc[l][i] = (float)(i % 17) * 0.01f;
    }
}

static void gpt_free(gpt *g)
{
    free(g->all);
    for (int l = 0; l < G_L; l++) {
        free(g->b_qkv[l]);
        free(g->b_proj[l]);
        free(g->b_fc[l]);
        free(g->b_fc2[l]);
        free(g->kc[l]);
        free(g->vc[l]);
    }
    free(g->ln_w);
    free(g->ln_b);
}

/* One step of T tokens; logits for the last token of each sequence (n_logits
 * rows, the last n_logits tokens). Returns MCRT_OK or the first failure. */
static mcrt_status gpt_step(const gpt *g, const mk_ops *ops, mk_ctx *ctx, const int32_t *tokens,
                            const int32_t *pos, const int32_t *seq, const int32_t *table, int MB,
                            int T, int n_logits, float *buf)
{
    /* buf: x, h, a, r [T,C]; qkv [T,3C]; q, k, v [T,C]; f [T,F]; gl [T,F]; logits [n_logits,Vp] */
    float *x = buf, *h = x + (size_t)T * G_C, *a = h + (size_t)T * G_C, *r = a + (size_t)T * G_C;
    float *qkv = r + (size_t)T * G_C, *q = qkv + (size_t)T * 3 * G_C, *k = q + (size_t)T * G_C;
    float *v = k + (size_t)T * G_C, *f = v + (size_t)T * G_C, *gl = f + (size_t)T * G_F;
    float *logits = gl + (size_t)T * G_F;
    mcrt_status st = ops->embedding(x, tokens, pos, g->wte, g->wpe, g->dt, 0, T, G_C, G_VP, ctx);
    const float *res = NULL; /* the sublayer output the next norm adds to x */
    for (int l = 0; l < G_L && st == MCRT_OK; l++) {
        st |= ops->layernorm(h, x, x, res, g->ln_w, g->ln_b, 1e-5f, 0, T, G_C, ctx);
        st |= ops->matmul(qkv, h, g->w_qkv[l], g->dt, g->b_qkv[l], T, G_C, 3 * G_C, ctx);
        st |= ops->split_qkv(q, k, v, qkv, T, G_NH, G_NH, G_HS, ctx);
        st |= ops->kv_write(g->kc[l], g->vc[l], k, v, pos, seq, table, T, G_NH, G_HS, G_BS, MB, ctx);
        st |= ops->attention(a, q, g->kc[l], g->vc[l], pos, seq, table, 0.0f, T, G_NH, G_NH, G_HS,
                             G_BS, MB, ctx);
        st |= ops->matmul(r, a, g->w_proj[l], g->dt, g->b_proj[l], T, G_C, G_C, ctx);
        st |= ops->layernorm(h, x, x, r, g->ln_w, g->ln_b, 1e-5f, 0, T, G_C, ctx);
        st |= ops->matmul(f, h, g->w_fc[l], g->dt, g->b_fc[l], T, G_C, G_F, ctx);
        st |= ops->activation(gl, f, MK_ACT_GELU_TANH, T, G_F, ctx);
        st |= ops->matmul(r, gl, g->w_fc2[l], g->dt, g->b_fc2[l], T, G_F, G_C, ctx);
        res = r;
    }
    /* the final norm and the tied output layer, only on the rows that want logits */
    size_t first = (size_t)(T - n_logits) * G_C;
    st |= ops->layernorm(h, NULL, x + first, r + first, g->ln_w, g->ln_b, 1e-5f, 0, n_logits, G_C,
                         ctx);
    st |= ops->matmul(logits, h, g->wte, g->dt, NULL, n_logits, G_C, G_VP, ctx);
    return st;
}

typedef struct gpt_result {
    double tok_s, ms;
} gpt_result;

/* B sequences decoding one token each at context ctx_len (T = B), or one
 * sequence prefilling `prefill` tokens (T = prefill). */
static gpt_result bench_gpt(const gpt *g, mk_ctx *ctx, int B, int ctx_len, int prefill,
                            double min_time)
{
    int T = prefill ? prefill : B, S = prefill ? 1 : B;
    int MB = (ctx_len + T + G_BS) / G_BS + 1, n_logits = S;
    int32_t *tokens = xmalloc(sizeof(int32_t) * T), *pos = xmalloc(sizeof(int32_t) * T);
    int32_t *seq = xmalloc(sizeof(int32_t) * T), *table = xmalloc(sizeof(int32_t) * S * MB);
    for (int t = 0; t < T; t++) {
        tokens[t] = (t * 7919) % 50257;
        seq[t] = prefill ? 0 : t;
        pos[t] = prefill ? t : ctx_len;
    }
    for (int i = 0; i < S * MB; i++)
        table[i] = (i * 7) % g->NB; /* scattered, shared blocks: timing only */
    size_t floats = (size_t)T * (10 * G_C + 2 * G_F) + (size_t)n_logits * G_VP;
    float *buf = xmalloc(sizeof(float) * floats);
    const mk_ops *ops = mk_ops_cpu();
    if (gpt_step(g, ops, ctx, tokens, pos, seq, table, MB, T, n_logits, buf) != MCRT_OK) {
        fprintf(stderr, "bench-kernels: model step failed\n");
        exit(1);
    }
    int reps = 0;
    double t0 = now_s(), best = 1e30;
    do {
        double t1 = now_s();
        (void)gpt_step(g, ops, ctx, tokens, pos, seq, table, MB, T, n_logits, buf);
        double d = now_s() - t1;
        if (d < best)
            best = d;
        reps++;
    } while ((now_s() - t0 < min_time || reps < 3) && reps < 10000);
    double mean = (now_s() - t0) / reps;
    double t = prefill ? best : mean; /* decode: every step streams the weights: mean */
    gpt_result res = {T / t, t * 1e3};
    free(tokens);
    free(pos);
    free(seq);
    free(table);
    free(buf);
    return res;
}

int main(int argc, char **argv)
{
    int threads = 0, quick = 0, one[4] = {0}, one_flags = 0, gpt_only = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (strcmp(argv[i], "--quick") == 0)
            quick = 1;
        else if (strcmp(argv[i], "--gpt-only") == 0)
            gpt_only = 1;
        else if (strcmp(argv[i], "--no-blas") == 0)
            one_flags = MK_CPU_NO_BLAS;
        else if (strcmp(argv[i], "--matmul") == 0 && i + 4 < argc) {
            for (int k = 0; k < 4; k++)
                one[k] = atoi(argv[++i]);
        } else {
            fprintf(stderr, "usage: bench-kernels [--threads N] [--quick] [--gpt-only]\n"
                            "       bench-kernels [--threads N] [--no-blas] --matmul DTYPE T K N\n"
                            "         (one matmul; DTYPE 1 f32, 2 f16, 3 bf16: MCRT_DTYPE_*)\n");
            return 2;
        }
    }
    if (one[0]) { /* one matmul shape, for tuning */
        mk_ctx *c1 = NULL;
        if (mk_cpu_ctx_create(threads, (unsigned)one_flags, &c1) != MCRT_OK)
            return 1;
        mk_threadpool *p1 = mk_threadpool_create(mk_cpu_ctx_threads(c1));
        int avx2 = mk_cpu_detect_isa() == MK_ISA_AVX2;
        double pk0 = avx2 ? bench_measure_fma_peak(p1) : 0.0;
        mm_result r = bench_matmul(c1, one[0], one[1], one[2], one[3], quick ? 0.1 : 0.5);
        double pk1 = avx2 ? bench_measure_fma_peak(p1) : 0.0;
        mk_threadpool_destroy(p1);
        printf("matmul dtype %d T=%d K=%d N=%d threads %d: %.1f us, %.2f GFLOP/s, %.2f GB/s, "
               "%.1f %% of FMA peak (%.1f / %.1f before / after)\n",
               one[0], one[1], one[2], one[3], mk_cpu_ctx_threads(c1), r.us, r.gflops, r.gbs,
               avx2 ? 200.0 * r.gflops / (pk0 + pk1) : 0.0, pk0, pk1);
        mk_cpu_ctx_destroy(c1);
        return 0;
    }
    mk_ctx *ctx = NULL, *ctx_own = NULL;
    if (mk_cpu_ctx_create(threads, 0, &ctx) != MCRT_OK ||
        mk_cpu_ctx_create(threads, MK_CPU_NO_BLAS, &ctx_own) != MCRT_OK) {
        fprintf(stderr, "bench-kernels: cannot create the CPU context\n");
        return 1;
    }
    int nt = mk_cpu_ctx_threads(ctx);
    double min_time = quick ? 0.05 : 0.25;
    printf("bench-kernels: %d threads, ISA %s, f32 matmul via %s\n", nt, mk_cpu_ctx_isa_name(ctx),
           mk_cpu_has_blas() ? "OpenBLAS" : "own kernels");

    mk_threadpool *pool = mk_threadpool_create(nt);
    double triad = bench_measure_triad(pool);
    double rdbw = bench_measure_read(pool);
    double peak = mk_cpu_detect_isa() == MK_ISA_AVX2 ? bench_measure_fma_peak(pool) : 0.0;
    mk_threadpool_destroy(pool);
    printf("\nmachine limits (all %d threads)\n", nt);
    printf("  STREAM triad bandwidth   %8.2f GB/s  (12 bytes per element, STREAM's count)\n", triad);
    printf("  read-only bandwidth      %8.2f GB/s  (sum over 256 MiB)\n", rdbw);
    printf("  FMA peak (AVX2, f32)     %8.2f GFLOP/s\n", peak);

    static const int Ts[] = {1, 128, 512};
    static const int shapes[][2] = {{768, 768}, {768, 2304}, {768, 3072}, {3072, 768}, {768, 50304}};
    struct {
        const char *name;
        int32_t dt;
        mk_ctx *c;
    } kinds[] = {{"f32 (OpenBLAS)", MCRT_DTYPE_F32, ctx},
                 {"f32 (own)", MCRT_DTYPE_F32, ctx_own},
                 {"bf16", MCRT_DTYPE_BF16, ctx},
                 {"f16", MCRT_DTYPE_F16, ctx}};
    int nkinds = mk_cpu_has_blas() ? 4 : 3;
    double bf16_t1_bw_sum = 0, bf16_t512_gf_sum = 0, f32_t512_gf_sum = 0;
    int n_bw = 0, n_gf = 0;
    printf("\nmatmul y[T,N] = x[T,K] W[N,K]^T + b   (GFLOP/s; T=1: also weight GB/s from DRAM)\n");
    printf("  %-15s %5s %5s %6s %10s %10s %10s\n", "weights", "T", "K", "N", "time us", "GFLOP/s",
           "GB/s");
    for (int k = 0; k < nkinds && !gpt_only; k++) {
        int ki = mk_cpu_has_blas() ? k : k + 1;
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (size_t ti = 0; ti < sizeof Ts / sizeof Ts[0]; ti++) {
                int T = Ts[ti], K = shapes[s][0], N = shapes[s][1];
                if (quick && T == 512 && N == 50304)
                    continue;
                mm_result r = bench_matmul(kinds[ki].c, kinds[ki].dt, T, K, N, min_time);
                if (T == 1)
                    printf("  %-15s %5d %5d %6d %10.1f %10.2f %10.2f\n", kinds[ki].name, T, K, N,
                           r.us, r.gflops, r.gbs);
                else
                    printf("  %-15s %5d %5d %6d %10.1f %10.2f %10s\n", kinds[ki].name, T, K, N,
                           r.us, r.gflops, "");
                fflush(stdout);
                if (kinds[ki].dt == MCRT_DTYPE_BF16 && T == 1) {
                    bf16_t1_bw_sum += r.gbs;
                    n_bw++;
                }
                if (T == 512 && kinds[ki].dt == MCRT_DTYPE_BF16) {
                    bf16_t512_gf_sum += r.gflops;
                    n_gf++;
                }
                if (T == 512 && ki == 0)
                    f32_t512_gf_sum += r.gflops;
            }
    }

    printf("\nattention, GPT-2 heads (NH=NKV=12, HS=64), block size 16, online softmax\n");
    printf("  %-22s %10s %10s %10s\n", "case", "time us", "KV GB/s", "GFLOP/s");
    static const int ctxs[] = {128, 512};
    for (int i = 0; i < 2 && !gpt_only; i++) {
        attn_result r = bench_attention(ctx, 1, ctxs[i], min_time);
        char name[32];
        snprintf(name, sizeof name, "decode, context %d", ctxs[i]);
        printf("  %-22s %10.1f %10.2f %10.2f\n", name, r.us, r.gbs, r.gflops);
    }
    for (int i = 0; i < 2 && !gpt_only; i++) {
        attn_result r = bench_attention(ctx, ctxs[i], ctxs[i], min_time);
        char name[32];
        snprintf(name, sizeof name, "prefill, %d tokens", ctxs[i]);
        printf("  %-22s %10.1f %10.2f %10.2f\n", name, r.us, r.gbs, r.gflops);
    }

    printf("\nGPT-2 124M forward built from the ops (12 layers, tied logits, GELU tanh, decode at context 128)\n");
    printf("  %-6s %-22s %10s %12s %14s\n", "dtype", "step", "ms/step", "tokens/s", "vs limit");
    double dec1_bf16 = 0, dec32_bf16 = 0;
    for (int d = 0; d < 2; d++) {
        gpt g;
        int32_t dt = d == 0 ? MCRT_DTYPE_F32 : MCRT_DTYPE_BF16;
        gpt_init(&g, dt, 32 * 11); /* blocks for 32 sequences of 129+ positions */
        /* matmul flops per token (non-embedding + one logits row per sequence) */
        double mm_flops = 2.0 * G_L * (12.0 * G_C * G_C);
        static const int batches[] = {1, 8, 32};
        for (int b = 0; b < 3; b++) {
            gpt_result r = bench_gpt(&g, ctx, batches[b], 128, 0, min_time);
            double bound = rdbw * 1e9 / g.weight_bytes; /* steps/s if only the weights were read */
            char name[32];
            snprintf(name, sizeof name, "decode, batch %d", batches[b]);
            printf("  %-6s %-22s %10.2f %12.1f %9.1f %% bw\n", d ? "bf16" : "f32", name, r.ms,
                   r.tok_s, 100.0 * (r.tok_s / batches[b]) / bound);
            if (d == 1 && b == 0)
                dec1_bf16 = r.tok_s;
            if (d == 1 && b == 2)
                dec32_bf16 = r.tok_s;
        }
        static const int prompts[] = {128, 512};
        for (int p = 0; p < 2; p++) {
            int T = prompts[p];
            gpt_result r = bench_gpt(&g, ctx, 1, 0, T, min_time);
            double attn = G_L * 4.0 * G_C * (T + 1) / 2.0; /* per token, causal average */
            double flops = (mm_flops + attn) * T + 2.0 * G_C * G_VP;
            char name[32];
            snprintf(name, sizeof name, "prefill %d", T);
            printf("  %-6s %-22s %10.2f %12.1f %9.1f %% FMA\n", d ? "bf16" : "f32", name, r.ms,
                   r.tok_s, peak > 0 ? 100.0 * flops / (r.ms * 1e-3) / 1e9 / peak : 0.0);
        }
        gpt_free(&g);
    }

    printf("\nratios\n");
    if (dec1_bf16 > 0)
        printf("  GPT-2 decode bf16: batch 32 / batch 1 tokens/s  %6.1f x\n", dec32_bf16 / dec1_bf16);
    if (n_bw) {
        printf("  matmul T=1 bf16 weight bandwidth / triad   %6.1f %%  (mean over %d shapes)\n",
               100.0 * bf16_t1_bw_sum / n_bw / triad, n_bw);
        printf("  matmul T=1 bf16 weight bandwidth / read    %6.1f %%\n",
               100.0 * bf16_t1_bw_sum / n_bw / rdbw);
    }
    if (n_gf && peak > 0)
        printf("  matmul T=512 bf16 GFLOP/s / FMA peak       %6.1f %%  (mean over %d shapes)\n",
               100.0 * bf16_t512_gf_sum / n_gf / peak, n_gf);
    if (n_gf && peak > 0 && mk_cpu_has_blas())
        printf("  matmul T=512 f32 (OpenBLAS) / FMA peak     %6.1f %%\n",
               100.0 * f32_t512_gf_sum / n_gf / peak);
    mk_cpu_ctx_destroy(ctx);
    mk_cpu_ctx_destroy(ctx_own);
    return 0;
}
