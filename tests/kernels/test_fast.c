/*
 * tests/kernels/test_fast.c: every fast CPU op (<op>_forward_cpu_fast)
 * against its reference (<op>_forward_cpu), table-driven over shapes, under
 * four execution contexts: 1 thread and 3 threads with the detected ISA
 * (AVX2 on this machine), the portable loops (MK_CPU_PORTABLE), and f32
 * matmul through the own kernels instead of OpenBLAS (MK_CPU_NO_BLAS). The
 * suite runs a second time with MCRT_KERNELS_ISA=portable in the environment,
 * which turns every context portable (meson test kernels-fast-portable).
 *
 * Tolerances are first-order rounding-error bounds, computed per element
 * from the data (u = 2^-24, the f32 unit roundoff), with the derivation next
 * to each; the reference computes in f64 and rounds once, so the bound is
 * the fast kernel's own error. Ops whose fast version does the same
 * arithmetic as the reference (copies, adds, the portable path) must match
 * bit for bit.
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu.h" /* reference and fast ops, mk_ctx */
#include "kernels/dtype.h"   /* mk_f32_to_bf16, mk_f32_to_f16 */

#define U_F32 5.9604644775390625e-8 /* 2^-24 */

/* --- fixtures ----------------------------------------------------------------------- */

typedef struct ctx_cfg {
    int threads;
    unsigned flags;
    const char *name;
} ctx_cfg;

static const ctx_cfg cfgs[] = {
    {1, 0, "1 thread"},
    {3, 0, "3 threads"},
    {2, MK_CPU_PORTABLE, "portable, 2 threads"},
    {2, MK_CPU_NO_BLAS, "no BLAS, 2 threads"},
};
enum { N_CFGS = sizeof cfgs / sizeof cfgs[0] };

static mk_ctx *make_ctx(int c)
{
    mk_ctx *ctx = NULL;
    ck_assert_int_eq(mk_cpu_ctx_create(cfgs[c].threads, cfgs[c].flags, &ctx), MCRT_OK);
    return ctx;
}

/* xorshift64*: deterministic data, the same on every run */
typedef struct rng {
    uint64_t s;
} rng;

static double rnd01(rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return (double)((r->s * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
}

static float rnd(rng *r, float lo, float hi)
{
    return lo + (hi - lo) * (float)rnd01(r);
}

static void fill(rng *r, float *p, size_t n, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        p[i] = rnd(r, lo, hi);
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* Asserts |got - want| <= tol[i] for every i; reports the worst element. */
static void assert_within(const float *got, const float *want, const double *tol, size_t n,
                          const char *what, const char *cfg)
{
    size_t worst = 0;
    double worst_ratio = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]);
        if (isnan(got[i]) != isnan(want[i]))
            d = INFINITY;
        double ratio = d == 0.0 ? 0.0 : d / tol[i];
        if (ratio > worst_ratio) {
            worst_ratio = ratio;
            worst = i;
        }
    }
    ck_assert_msg(worst_ratio <= 1.0, "%s [%s]: element %zu = %.9g, reference %.9g, tolerance %.3g",
                  what, cfg, worst, (double)got[worst], (double)want[worst], tol[worst]);
}

static void assert_same(const void *got, const void *want, size_t bytes, const char *what,
                        const char *cfg)
{
    ck_assert_msg(memcmp(got, want, bytes) == 0, "%s [%s]: differs from the reference", what, cfg);
}

/* --- matmul --------------------------------------------------------------------------- */

/* Odd sizes on purpose: T = 1 (decode); T <= 48, the unpacked dot-product
 * kernels (row tiles of 4 plus a remainder of 1, 2 or 3); T > 48, the packed
 * kernel (row tiles of 6, 130 crossing its 72-row block); K across the
 * 8-wide vectors and the 256-deep K block; N across the 16-wide panels and
 * the 1536-column block, and not divisible by the thread split. */
static const struct {
    int T, K, N, bias;
} mm_cases[] = {
    {1, 1, 1, 0},    {1, 7, 3, 1},    {1, 8, 16, 0},   {1, 9, 17, 1},   {1, 768, 100, 1},
    {2, 33, 31, 1},  {3, 100, 64, 0}, {4, 257, 129, 1}, {5, 64, 48, 1}, {6, 17, 16, 0},
    {7, 300, 33, 1}, {13, 129, 100, 0}, {64, 256, 130, 1}, {130, 96, 20, 1}, {1, 1000, 1, 0},
    {17, 8, 1, 1},   {49, 20, 33, 1}, {50, 300, 40, 1}, {55, 40, 1601, 0}, {7, 40, 1601, 1},
    /* 16 <= T <= 48 (batched decode): x packed in 16-row panels, weights broadcast in
     * groups of 6 rows, 16-bit rows widened in blocks (K = 769: 60 rows, K = 3072: 12) */
    {16, 64, 7, 1},  {33, 100, 61, 0}, {48, 769, 250, 1}, {31, 3072, 20, 1}, {47, 24, 6, 0},
    /* without OpenBLAS, T > 128 runs the same kernel on 128-row blocks of x */
    {300, 40, 70, 1},
};
static const int32_t mm_dtypes[] = {MCRT_DTYPE_F32, MCRT_DTYPE_BF16, MCRT_DTYPE_F16};

START_TEST(matmul_fast_vs_reference)
{
    int T = mm_cases[_i].T, K = mm_cases[_i].K, N = mm_cases[_i].N;
    rng r = {0x9e3779b97f4a7c15ull + (uint64_t)_i};
    float *x = xmalloc(sizeof(float) * T * K), *wf = xmalloc(sizeof(float) * N * K);
    float *bias = mm_cases[_i].bias ? xmalloc(sizeof(float) * N) : NULL;
    uint16_t *wh = xmalloc(sizeof(uint16_t) * N * K);
    float *ref = xmalloc(sizeof(float) * T * N), *got = xmalloc(sizeof(float) * T * N);
    double *tol = xmalloc(sizeof(double) * T * N);
    fill(&r, x, (size_t)T * K, -1, 1);
    fill(&r, wf, (size_t)N * K, -1, 1);
    if (bias)
        fill(&r, bias, N, -1, 1);
    for (size_t d = 0; d < 3; d++) {
        int32_t dt = mm_dtypes[d];
        /* the SAME rounded weights go to both sides: only summation order differs */
        for (size_t i = 0; i < (size_t)N * K; i++)
            wh[i] = dt == MCRT_DTYPE_BF16 ? mk_f32_to_bf16(wf[i]) : mk_f32_to_f16(wf[i]);
        const void *w = dt == MCRT_DTYPE_F32 ? (const void *)wf : (const void *)wh;
        ck_assert_int_eq(matmul_forward_cpu(ref, x, w, dt, bias, T, K, N, NULL), MCRT_OK);
        /* Tolerance: an f32 sum of K products, in any order or blocking (FMA or
         * not), is within (K+1) u sum_k |x_k w_k| of the exact value (Higham's
         * gamma_K bound); the bias add and the final rounding add 2u(|b|+|y|). */
        for (int t = 0; t < T; t++)
            for (int n = 0; n < N; n++) {
                double s = 0.0;
                for (int k = 0; k < K; k++)
                    s += fabs((double)x[(size_t)t * K + k] *
                              (double)mk_load_f32(w, dt, (size_t)n * K + k));
                double b = bias ? fabs(bias[n]) : 0.0;
                tol[(size_t)t * N + n] = (K + 1) * U_F32 * s + 2 * U_F32 * (b + s) + 1e-30;
            }
        for (int c = 0; c < N_CFGS; c++) {
            mk_ctx *ctx = make_ctx(c);
            for (size_t i = 0; i < (size_t)T * N; i++)
                got[i] = NAN;
            ck_assert_int_eq(matmul_forward_cpu_fast(got, x, w, dt, bias, T, K, N, ctx), MCRT_OK);
            char what[96];
            snprintf(what, sizeof what, "matmul T=%d K=%d N=%d dtype=%d", T, K, N, (int)dt);
            /* the portable path is the reference loop on column ranges, except
             * f32 through OpenBLAS */
            int exact = mk_cpu_ctx_isa(ctx) == MK_ISA_PORTABLE &&
                        !(dt == MCRT_DTYPE_F32 && mk_cpu_has_blas() &&
                          !(cfgs[c].flags & MK_CPU_NO_BLAS));
            if (exact)
                assert_same(got, ref, sizeof(float) * T * N, what, cfgs[c].name);
            else
                assert_within(got, ref, tol, (size_t)T * N, what, cfgs[c].name);
            mk_cpu_ctx_destroy(ctx);
        }
    }
    free(x);
    free(wf);
    free(bias);
    free(wh);
    free(ref);
    free(got);
    free(tol);
}
END_TEST

/* --- norms ------------------------------------------------------------------------------ */

static const struct {
    int T, C;
} norm_cases[] = {{1, 1}, {1, 7}, {3, 8}, {2, 17}, {9, 768}, {4, 1000}, {1, 4096}};

/* variant bits: 1 rmsnorm, 2 residual r, 4 resid_out, 8 one_p, 16 out aliases x (in place) */
START_TEST(norm_fast_vs_reference)
{
    int T = norm_cases[_i].T, C = norm_cases[_i].C;
    size_t n = (size_t)T * C;
    rng r = {0x1234567ull + (uint64_t)_i};
    float *x = xmalloc(sizeof(float) * n), *res = xmalloc(sizeof(float) * n);
    float *w = xmalloc(sizeof(float) * C), *b = xmalloc(sizeof(float) * C);
    float *ref = xmalloc(sizeof(float) * n), *ref_res = xmalloc(sizeof(float) * n);
    float *got = xmalloc(sizeof(float) * n), *got_res = xmalloc(sizeof(float) * n);
    double *tol = xmalloc(sizeof(double) * n);
    fill(&r, x, n, -2, 3); /* a non-zero mean, as real activations have */
    fill(&r, res, n, -1, 1);
    fill(&r, w, C, -1.5f, 1.5f);
    fill(&r, b, C, -1, 1);
    for (int v = 0; v < 32; v++) {
        int rms = v & 1, use_r = (v >> 1) & 1, use_ro = (v >> 2) & 1, one_p = (v >> 3) & 1,
            in_place = (v >> 4) & 1;
        const float *rr = use_r ? res : NULL;
        float eps = 1e-5f;
        if (rms)
            ck_assert_int_eq(rmsnorm_forward_cpu(ref, use_ro ? ref_res : NULL, x, rr, w, eps, one_p,
                                                 T, C, NULL),
                             MCRT_OK);
        else
            ck_assert_int_eq(layernorm_forward_cpu(ref, use_ro ? ref_res : NULL, x, rr, w, b, eps,
                                                   one_p, T, C, NULL),
                             MCRT_OK);
        /* Tolerance, per row (first order): the fast kernel sums in f32, so the mean
         * is off by <= C u mean|s| and the variance (mean square) by <= (C+2) u
         * relative, giving rstd <= ((C+2)/2 + 2) u relative; xhat = (s - mean) rstd
         * errs by rstd C u mean|s| + |xhat| (C/2 + 3) u; then g xhat + b adds
         * 2u(|g xhat| + |b|). Doubled for second-order terms. */
        for (int t = 0; t < T; t++) {
            double sum = 0, sabs = 0, sq = 0;
            for (int c = 0; c < C; c++) {
                double s = (double)(use_r ? x[(size_t)t * C + c] + res[(size_t)t * C + c]
                                          : x[(size_t)t * C + c]);
                sum += s;
                sabs += fabs(s);
                sq += s * s;
            }
            double mean = rms ? 0.0 : sum / C;
            double var = rms ? sq / C : sq / C - mean * mean;
            double rstd = 1.0 / sqrt((var > 0 ? var : 0) + eps);
            for (int c = 0; c < C; c++) {
                double s = (double)(use_r ? x[(size_t)t * C + c] + res[(size_t)t * C + c]
                                          : x[(size_t)t * C + c]);
                double xhat = fabs((s - mean) * rstd), g = fabs(w[c] + (one_p ? 1.0 : 0.0));
                double bb = rms ? 0.0 : fabs(b[c]);
                double e = g * (rstd * C * U_F32 * (sabs / C) * (rms ? 0.0 : 1.0) +
                                xhat * (C / 2.0 + 3) * U_F32) +
                           2 * U_F32 * (g * xhat + bb);
                tol[(size_t)t * C + c] = 2 * e + 1e-30;
            }
        }
        for (int c = 0; c < N_CFGS; c++) {
            mk_ctx *ctx = make_ctx(c);
            float *out = got;
            const float *xin = x;
            if (in_place) { /* out is the x buffer */
                memcpy(got, x, sizeof(float) * n);
                xin = got;
            }
            if (rms)
                ck_assert_int_eq(rmsnorm_forward_cpu_fast(out, use_ro ? got_res : NULL, xin, rr, w,
                                                          eps, one_p, T, C, ctx),
                                 MCRT_OK);
            else
                ck_assert_int_eq(layernorm_forward_cpu_fast(out, use_ro ? got_res : NULL, xin, rr, w,
                                                            b, eps, one_p, T, C, ctx),
                                 MCRT_OK);
            char what[96];
            snprintf(what, sizeof what, "%s T=%d C=%d variant=%d", rms ? "rmsnorm" : "layernorm", T,
                     C, v);
            if (mk_cpu_ctx_isa(ctx) == MK_ISA_PORTABLE)
                assert_same(got, ref, sizeof(float) * n, what, cfgs[c].name);
            else
                assert_within(got, ref, tol, n, what, cfgs[c].name);
            if (use_ro) /* the new residual is a plain f32 add on both sides */
                assert_same(got_res, ref_res, sizeof(float) * n, what, cfgs[c].name);
            mk_cpu_ctx_destroy(ctx);
        }
    }
    free(x);
    free(res);
    free(w);
    free(b);
    free(ref);
    free(ref_res);
    free(got);
    free(got_res);
    free(tol);
}
END_TEST

/* --- attention and the KV cache ------------------------------------------------------- */

/* A step: sequences with ctx_len cached positions and n_new tokens in this
 * step. Blocks are handed out in a shuffled order from a pool with spare
 * blocks, so block tables are never contiguous. */
typedef struct attn_case {
    int NH, NKV, HS, BS, n_seqs;
    int ctx_len[4], n_new[4];
} attn_case;

static const attn_case attn_cases[] = {
    {4, 4, 64, 16, 1, {37}, {1}},               /* decode, MHA */
    {8, 2, 16, 3, 1, {0}, {20}},                /* prefill, GQA 4:1, BS 3 */
    {6, 1, 33, 1, 2, {0, 40}, {5, 1}},          /* MQA, odd HS, BS 1, prefill + decode */
    {2, 2, 8, 16, 1, {17}, {9}},                /* chunked prefill */
    {2, 2, 128, 16, 1, {300}, {1}},             /* long context: several online-softmax chunks */
    {4, 2, 24, 3, 4, {0, 5, 12, 70}, {7, 1, 3, 1}}, /* a mixed batch */
    {12, 3, 64, 1, 2, {0, 130}, {2, 1}},        /* GQA 4:1, BS 1 */
    {2, 1, 7, 5, 1, {0}, {1}},                  /* the very first token */
    {4, 2, 16, 16, 1, {60}, {8}},               /* a query block across a key chunk */
    {3, 3, 40, 7, 2, {100, 3}, {40, 2}},        /* long prefill chunk, HS % 32 = 8 */
};

typedef struct attn_step {
    int T, MB, NB, S;
    int32_t *positions, *seq_index, *table; /* [T], [T], [S,MB] */
    float *kc, *vc;                         /* pools [NB,NKV,BS,HS] */
    float *q, *k, *v;                       /* [T,NH,HS], [T,NKV,HS] x2 */
} attn_step;

static void attn_step_make(const attn_case *ac, rng *r, attn_step *st)
{
    memset(st, 0, sizeof *st);
    st->S = ac->n_seqs;
    int nblk[4], total_blocks = 0;
    for (int s = 0; s < ac->n_seqs; s++) {
        st->T += ac->n_new[s];
        nblk[s] = (ac->ctx_len[s] + ac->n_new[s] + ac->BS - 1) / ac->BS;
        total_blocks += nblk[s];
        if (nblk[s] > st->MB)
            st->MB = nblk[s];
    }
    st->NB = total_blocks + 3; /* spare blocks nobody owns */
    int32_t *perm = xmalloc(sizeof(int32_t) * st->NB);
    for (int i = 0; i < st->NB; i++)
        perm[i] = i;
    for (int i = st->NB - 1; i > 0; i--) { /* Fisher-Yates */
        int j = (int)(rnd01(r) * (i + 1));
        int32_t tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
    st->table = xmalloc(sizeof(int32_t) * st->S * st->MB);
    for (int i = 0; i < st->S * st->MB; i++)
        st->table[i] = -1; /* unused entries: never read */
    int next = 0;
    for (int s = 0; s < st->S; s++)
        for (int b = 0; b < nblk[s]; b++)
            st->table[s * st->MB + b] = perm[next++];
    free(perm);

    size_t pool = (size_t)st->NB * ac->NKV * ac->BS * ac->HS;
    st->kc = xmalloc(sizeof(float) * pool);
    st->vc = xmalloc(sizeof(float) * pool);
    for (size_t i = 0; i < pool; i++)
        st->kc[i] = st->vc[i] = NAN; /* a slot read before it is written poisons the result */
    /* the cached context: every earlier position of every sequence */
    size_t kvn = (size_t)ac->NKV * ac->HS;
    float *kv = xmalloc(sizeof(float) * 2 * kvn);
    for (int s = 0; s < st->S; s++) {
        for (int p = 0; p < ac->ctx_len[s]; p++) {
            fill(r, kv, 2 * kvn, -1, 1);
            int32_t pos = p, seq = s;
            ck_assert_int_eq(kv_write_forward_cpu(st->kc, st->vc, kv, kv + kvn, &pos, &seq,
                                                  st->table, 1, ac->NKV, ac->HS, ac->BS, st->MB,
                                                  NULL),
                             MCRT_OK);
        }
    }
    free(kv);
    /* this step's tokens, sequence by sequence */
    st->positions = xmalloc(sizeof(int32_t) * st->T);
    st->seq_index = xmalloc(sizeof(int32_t) * st->T);
    int t = 0;
    for (int s = 0; s < st->S; s++)
        for (int k = 0; k < ac->n_new[s]; k++, t++) {
            st->positions[t] = ac->ctx_len[s] + k;
            st->seq_index[t] = s;
        }
    st->q = xmalloc(sizeof(float) * st->T * ac->NH * ac->HS);
    st->k = xmalloc(sizeof(float) * st->T * ac->NKV * ac->HS);
    st->v = xmalloc(sizeof(float) * st->T * ac->NKV * ac->HS);
    fill(r, st->q, (size_t)st->T * ac->NH * ac->HS, -2, 2); /* scores of a few units */
    fill(r, st->k, (size_t)st->T * ac->NKV * ac->HS, -1, 1);
    fill(r, st->v, (size_t)st->T * ac->NKV * ac->HS, -1, 1);
}

static void attn_step_free(attn_step *st)
{
    free(st->positions);
    free(st->seq_index);
    free(st->table);
    free(st->kc);
    free(st->vc);
    free(st->q);
    free(st->k);
    free(st->v);
}

START_TEST(kv_write_fast_vs_reference)
{
    const attn_case *ac = &attn_cases[_i];
    rng r = {0xabcdefull + (uint64_t)_i};
    attn_step st;
    attn_step_make(ac, &r, &st);
    size_t pool = (size_t)st.NB * ac->NKV * ac->BS * ac->HS;
    float *kref = xmalloc(sizeof(float) * pool), *vref = xmalloc(sizeof(float) * pool);
    float *kgot = xmalloc(sizeof(float) * pool), *vgot = xmalloc(sizeof(float) * pool);
    memcpy(kref, st.kc, sizeof(float) * pool);
    memcpy(vref, st.vc, sizeof(float) * pool);
    ck_assert_int_eq(kv_write_forward_cpu(kref, vref, st.k, st.v, st.positions, st.seq_index,
                                          st.table, st.T, ac->NKV, ac->HS, ac->BS, st.MB, NULL),
                     MCRT_OK);
    for (int c = 0; c < N_CFGS; c++) {
        mk_ctx *ctx = make_ctx(c);
        memcpy(kgot, st.kc, sizeof(float) * pool);
        memcpy(vgot, st.vc, sizeof(float) * pool);
        ck_assert_int_eq(kv_write_forward_cpu_fast(kgot, vgot, st.k, st.v, st.positions,
                                                   st.seq_index, st.table, st.T, ac->NKV, ac->HS,
                                                   ac->BS, st.MB, ctx),
                         MCRT_OK);
        /* a copy: bit for bit, NaN patterns of untouched slots included */
        assert_same(kgot, kref, sizeof(float) * pool, "kv_write k", cfgs[c].name);
        assert_same(vgot, vref, sizeof(float) * pool, "kv_write v", cfgs[c].name);
        mk_cpu_ctx_destroy(ctx);
    }
    free(kref);
    free(vref);
    free(kgot);
    free(vgot);
    attn_step_free(&st);
}
END_TEST

START_TEST(attention_fast_vs_reference)
{
    const attn_case *ac = &attn_cases[_i];
    rng r = {0x5eed0000ull + (uint64_t)_i};
    attn_step st;
    attn_step_make(ac, &r, &st);
    /* the step's own K/V first, as a model does */
    ck_assert_int_eq(kv_write_forward_cpu(st.kc, st.vc, st.k, st.v, st.positions, st.seq_index,
                                          st.table, st.T, ac->NKV, ac->HS, ac->BS, st.MB, NULL),
                     MCRT_OK);
    size_t n = (size_t)st.T * ac->NH * ac->HS;
    float *ref = xmalloc(sizeof(float) * n), *got = xmalloc(sizeof(float) * n);
    double *tol = xmalloc(sizeof(double) * n);
    float scale = (float)(1.0 / sqrt((double)ac->HS));
    ck_assert_int_eq(attention_forward_cpu(ref, st.q, st.kc, st.vc, st.positions, st.seq_index,
                                           st.table, 0.0f, st.T, ac->NH, ac->NKV, ac->HS, ac->BS,
                                           st.MB, NULL),
                     MCRT_OK);
    /* Tolerance, per (token, head), with L = pos + 1 keys: an f32 score is off by
     * D <= (HS + 2) u scale max_j sum_c |q_c k_jc| (the dot plus scaling q first);
     * each probability then by <= 2D + 4u relative (exp argument, ~2 ulp exp),
     * the normalizer sums L terms ((L + 2) u); the output is a convex
     * combination of values, so |err| <= max|v| (2D + (L + 8) u), doubled. */
    int R = ac->NH / ac->NKV;
    for (int t = 0; t < st.T; t++) {
        const int32_t *row = st.table + (size_t)st.seq_index[t] * st.MB;
        int L = st.positions[t] + 1;
        for (int h = 0; h < ac->NH; h++) {
            int g = h / R;
            double qk = 0, vmax = 0;
            for (int j = 0; j < L; j++) {
                int32_t blk = row[j / ac->BS];
                size_t base = (((size_t)blk * ac->NKV + g) * ac->BS + j % ac->BS) * ac->HS;
                double s = 0;
                for (int c = 0; c < ac->HS; c++) {
                    s += fabs((double)st.q[((size_t)t * ac->NH + h) * ac->HS + c] *
                              (double)st.kc[base + c]);
                    vmax = fmax(vmax, fabs((double)st.vc[base + c]));
                }
                qk = fmax(qk, s);
            }
            double D = (ac->HS + 2) * U_F32 * scale * qk;
            for (int c = 0; c < ac->HS; c++)
                tol[((size_t)t * ac->NH + h) * ac->HS + c] =
                    2 * vmax * (2 * D + (L + 8) * U_F32) + 1e-30;
        }
    }
    for (int c = 0; c < N_CFGS; c++) {
        mk_ctx *ctx = make_ctx(c);
        ck_assert_int_eq(attention_forward_cpu_fast(got, st.q, st.kc, st.vc, st.positions,
                                                    st.seq_index, st.table, 0.0f, st.T, ac->NH,
                                                    ac->NKV, ac->HS, ac->BS, st.MB, ctx),
                         MCRT_OK);
        char what[96];
        snprintf(what, sizeof what, "attention case %d (T=%d NH=%d NKV=%d HS=%d BS=%d)", _i, st.T,
                 ac->NH, ac->NKV, ac->HS, ac->BS);
        if (mk_cpu_ctx_isa(ctx) == MK_ISA_PORTABLE)
            assert_same(got, ref, sizeof(float) * n, what, cfgs[c].name);
        else
            assert_within(got, ref, tol, n, what, cfgs[c].name);
        /* an explicit softmax_scale equal to the default gives the same result */
        ck_assert_int_eq(attention_forward_cpu_fast(got, st.q, st.kc, st.vc, st.positions,
                                                    st.seq_index, st.table, scale, st.T, ac->NH,
                                                    ac->NKV, ac->HS, ac->BS, st.MB, ctx),
                         MCRT_OK);
        if (mk_cpu_ctx_isa(ctx) != MK_ISA_PORTABLE)
            assert_within(got, ref, tol, n, what, cfgs[c].name);
        mk_cpu_ctx_destroy(ctx);
    }
    free(ref);
    free(got);
    free(tol);
    attn_step_free(&st);
}
END_TEST

/* --- rotary, split_qkv ------------------------------------------------------------------ */

static const struct {
    int T, NH, NKV, HS;
    double percent;
    int interleaved, with_k;
} rot_cases[] = {
    {1, 4, 4, 64, 1.0, 0, 1},  {1, 4, 4, 64, 1.0, 1, 1},  {7, 8, 2, 64, 0.5, 0, 1},
    {7, 8, 2, 64, 0.5, 1, 1},  {33, 6, 3, 80, 0.5, 0, 1}, {5, 2, 1, 6, 1.0, 1, 0},
    {3, 12, 4, 128, 0.25, 0, 1}, {2, 3, 3, 34, 0.5, 1, 1}, /* HS 34 * 0.5 = 17: odd, refused */
};

START_TEST(rotary_fast_vs_reference)
{
    int T = rot_cases[_i].T, NH = rot_cases[_i].NH, NKV = rot_cases[_i].NKV, HS = rot_cases[_i].HS;
    int rot_dim = mk_rotary_dim(HS, rot_cases[_i].percent), il = rot_cases[_i].interleaved;
    rng r = {0x707ull + (uint64_t)_i};
    size_t nq = (size_t)T * NH * HS, nk = (size_t)T * NKV * HS;
    float *q0 = xmalloc(sizeof(float) * nq), *k0 = xmalloc(sizeof(float) * nk);
    float *qr = xmalloc(sizeof(float) * nq), *kr = xmalloc(sizeof(float) * nk);
    float *qg = xmalloc(sizeof(float) * nq), *kg = xmalloc(sizeof(float) * nk);
    double *tq = xmalloc(sizeof(double) * nq), *tk = xmalloc(sizeof(double) * nk);
    int32_t *pos = xmalloc(sizeof(int32_t) * T);
    fill(&r, q0, nq, -3, 3);
    fill(&r, k0, nk, -3, 3);
    for (int t = 0; t < T; t++)
        pos[t] = (int32_t)(rnd01(&r) * 5000); /* large angles too */
    float *kk = rot_cases[_i].with_k ? kr : NULL;
    memcpy(qr, q0, sizeof(float) * nq);
    memcpy(kr, k0, sizeof(float) * nk);
    mcrt_status want = rot_dim % 2 ? MCRT_E_INVAL : MCRT_OK;
    ck_assert_int_eq(rotary_forward_cpu(qr, kk, pos, 10000.0f, il, T, NH, NKV, HS, rot_dim, NULL),
                     want);
    /* The fast version does the reference's f32 operations (same inv_freq,
     * angle, cosf/sinf, products); only a compiler's choice to contract
     * a*c - b*s into an FMA could differ: <= 2u (|a| + |b|) per element. */
    for (size_t i = 0; i < nq; i++)
        tq[i] = 4 * U_F32 * 3.0 + 1e-30;
    for (size_t i = 0; i < nk; i++)
        tk[i] = 4 * U_F32 * 3.0 + 1e-30;
    for (int c = 0; c < N_CFGS; c++) {
        mk_ctx *ctx = make_ctx(c);
        memcpy(qg, q0, sizeof(float) * nq);
        memcpy(kg, k0, sizeof(float) * nk);
        ck_assert_int_eq(rotary_forward_cpu_fast(qg, kk ? kg : NULL, pos, 10000.0f, il, T, NH, NKV,
                                                 HS, rot_dim, ctx),
                         want);
        if (want == MCRT_OK) {
            assert_within(qg, qr, tq, nq, "rotary q", cfgs[c].name);
            assert_within(kg, kr, tk, nk, "rotary k", cfgs[c].name);
        }
        mk_cpu_ctx_destroy(ctx);
    }
    free(q0);
    free(k0);
    free(qr);
    free(kr);
    free(qg);
    free(kg);
    free(tq);
    free(tk);
    free(pos);
}
END_TEST

START_TEST(split_qkv_fast_vs_reference)
{
    static const int shapes[][4] = {{1, 4, 4, 8}, {9, 8, 2, 16}, {5, 6, 1, 33}, {40, 12, 12, 64}};
    int T = shapes[_i][0], NH = shapes[_i][1], NKV = shapes[_i][2], HS = shapes[_i][3];
    rng r = {0x51ull + (uint64_t)_i};
    size_t nqkv = (size_t)T * (NH + 2 * NKV) * HS, nq = (size_t)T * NH * HS,
           nk = (size_t)T * NKV * HS;
    float *qkv = xmalloc(sizeof(float) * nqkv);
    fill(&r, qkv, nqkv, -1, 1);
    float *q[2], *k[2], *v[2];
    for (int i = 0; i < 2; i++) {
        q[i] = xmalloc(sizeof(float) * nq);
        k[i] = xmalloc(sizeof(float) * nk);
        v[i] = xmalloc(sizeof(float) * nk);
    }
    ck_assert_int_eq(split_qkv_forward_cpu(q[0], k[0], v[0], qkv, T, NH, NKV, HS, NULL), MCRT_OK);
    for (int c = 0; c < N_CFGS; c++) {
        mk_ctx *ctx = make_ctx(c);
        ck_assert_int_eq(split_qkv_forward_cpu_fast(q[1], k[1], v[1], qkv, T, NH, NKV, HS, ctx),
                         MCRT_OK);
        assert_same(q[1], q[0], sizeof(float) * nq, "split_qkv q", cfgs[c].name);
        assert_same(k[1], k[0], sizeof(float) * nk, "split_qkv k", cfgs[c].name);
        assert_same(v[1], v[0], sizeof(float) * nk, "split_qkv v", cfgs[c].name);
        mk_cpu_ctx_destroy(ctx);
    }
    for (int i = 0; i < 2; i++) {
        free(q[i]);
        free(k[i]);
        free(v[i]);
    }
    free(qkv);
}
END_TEST

/* --- activations ------------------------------------------------------------------------ */

static const struct {
    int T, F;
} act_shapes[] = {{1, 1}, {1, 7}, {3, 64}, {2, 1003}, {5, 256}};
static const mk_act acts[] = {MK_ACT_GELU_TANH, MK_ACT_GELU_ERF, MK_ACT_SWIGLU,
                              MK_ACT_SQUARED_RELU};

START_TEST(activation_fast_vs_reference)
{
    int T = act_shapes[_i].T, F = act_shapes[_i].F;
    rng r = {0xac7ull + (uint64_t)_i};
    size_t nin = (size_t)T * 2 * F, nout = (size_t)T * 2 * F;
    float *x = xmalloc(sizeof(float) * nin), *ref = xmalloc(sizeof(float) * nout);
    float *got = xmalloc(sizeof(float) * nout);
    double *tol = xmalloc(sizeof(double) * nout);
    for (size_t i = 0; i < nin; i++) { /* mostly |x| < 6, with zeros and extremes */
        x[i] = rnd(&r, -6, 6);
        if (i % 17 == 3)
            x[i] = (i % 3 == 0) ? 0.0f : (i % 3 == 1 ? -20.0f : 40.0f);
        if (i % 23 == 5)
            x[i] = 1e-30f;
    }
    for (size_t a = 0; a < sizeof acts / sizeof acts[0]; a++) {
        mk_act act = acts[a];
        size_t n = (size_t)T * F;
        ck_assert_int_eq(activation_forward_cpu(ref, x, act, T, F, NULL), MCRT_OK);
        /* Tolerance: the fast kernels evaluate in f32 through one exp (~2 ulp)
         * whose argument z carries a relative error of a few u, which becomes
         * |z| u relative in exp(z); plus the erfc fit (< 1.2e-7 = 2u), the
         * division and products: |ref| u (16 + 8|z|), and 1e-37 absolute
         * where exp's input clamp turns an underflow into ~1e-38. */
        for (size_t i = 0; i < n; i++) {
            double v = act == MK_ACT_SWIGLU ? x[(i / F) * 2 * F + i % F] : x[i];
            double z = 0.0;
            if (act == MK_ACT_GELU_TANH)
                z = 2 * 0.7978845608 * fabs(v + 0.044715 * v * v * v);
            else if (act == MK_ACT_GELU_ERF)
                z = v * v / 2;
            else if (act == MK_ACT_SWIGLU)
                z = fabs(v);
            tol[i] = fabs(ref[i]) * U_F32 * (16 + 8 * z) + 1e-37;
        }
        for (int c = 0; c < N_CFGS; c++) {
            mk_ctx *ctx = make_ctx(c);
            ck_assert_int_eq(activation_forward_cpu_fast(got, x, act, T, F, ctx), MCRT_OK);
            char what[64];
            snprintf(what, sizeof what, "activation %d T=%d F=%d", (int)act, T, F);
            if (mk_cpu_ctx_isa(ctx) == MK_ISA_PORTABLE)
                assert_same(got, ref, sizeof(float) * n, what, cfgs[c].name);
            else
                assert_within(got, ref, tol, n, what, cfgs[c].name);
            if (act != MK_ACT_SWIGLU) { /* in place */
                memcpy(got, x, sizeof(float) * n);
                ck_assert_int_eq(activation_forward_cpu_fast(got, got, act, T, F, ctx), MCRT_OK);
                assert_within(got, ref, tol, n, what, cfgs[c].name);
            }
            mk_cpu_ctx_destroy(ctx);
        }
    }
    free(x);
    free(ref);
    free(got);
    free(tol);
}
END_TEST

/* --- embedding, element-wise, logits: same arithmetic, bit for bit ---------------------- */

START_TEST(embedding_fast_vs_reference)
{
    static const struct {
        int T, C, V, vocab_start, wpe;
        int32_t dt;
    } cases[] = {
        {1, 8, 10, 0, 1, MCRT_DTYPE_F32},  {13, 33, 50, 0, 0, MCRT_DTYPE_BF16},
        {40, 64, 97, 20, 1, MCRT_DTYPE_F16}, {7, 768, 30, 0, 1, MCRT_DTYPE_BF16},
    };
    int T = cases[_i].T, C = cases[_i].C, V = cases[_i].V;
    int32_t dt = cases[_i].dt;
    rng r = {0xe3bull + (uint64_t)_i};
    size_t esz = dt == MCRT_DTYPE_F32 ? 4 : 2, maxpos = 64;
    void *wte = xmalloc(esz * V * C), *wpe = xmalloc(esz * maxpos * C);
    unsigned char *bw = wte, *bp = wpe;
    for (size_t i = 0; i < esz * V * C; i++)
        bw[i] = (unsigned char)(rnd01(&r) * 256);
    for (size_t i = 0; i < esz * maxpos * C; i++)
        bp[i] = (unsigned char)(rnd01(&r) * 256);
    int32_t *tok = xmalloc(sizeof(int32_t) * T), *pos = xmalloc(sizeof(int32_t) * T);
    for (int t = 0; t < T; t++) {
        tok[t] = (int32_t)(rnd01(&r) * (V + 2 * cases[_i].vocab_start)); /* some out of shard */
        pos[t] = (int32_t)(rnd01(&r) * maxpos);
    }
    const void *pe = cases[_i].wpe ? wpe : NULL;
    float *ref = xmalloc(sizeof(float) * T * C), *got = xmalloc(sizeof(float) * T * C);
    ck_assert_int_eq(embedding_forward_cpu(ref, tok, pos, wte, pe, dt, cases[_i].vocab_start, T, C,
                                           V, NULL),
                     MCRT_OK);
    for (int c = 0; c < N_CFGS; c++) {
        mk_ctx *ctx = make_ctx(c);
        ck_assert_int_eq(embedding_forward_cpu_fast(got, tok, pos, wte, pe, dt,
                                                    cases[_i].vocab_start, T, C, V, ctx),
                         MCRT_OK);
        assert_same(got, ref, sizeof(float) * T * C, "embedding", cfgs[c].name);
        mk_cpu_ctx_destroy(ctx);
    }
    free(wte);
    free(wpe);
    free(tok);
    free(pos);
    free(ref);
    free(got);
}
END_TEST

START_TEST(elementwise_fast_vs_reference)
{
    static const int shapes[][2] = {{1, 1}, {3, 7}, {64, 768}, {100, 1000}};
    int T = shapes[_i][0], N = shapes[_i][1];
    size_t n = (size_t)T * N;
    rng r = {0xe1eull + (uint64_t)_i};
    float *a = xmalloc(sizeof(float) * n), *b = xmalloc(sizeof(float) * n);
    float *bias = xmalloc(sizeof(float) * N);
    float *ref = xmalloc(sizeof(float) * n), *got = xmalloc(sizeof(float) * n);
    fill(&r, a, n, -5, 5);
    fill(&r, b, n, -5, 5);
    fill(&r, bias, N, -1, 1);
    int ldx = N + 3; /* logits rows with padding columns */
    float *lg = xmalloc(sizeof(float) * T * ldx);
    fill(&r, lg, (size_t)T * ldx, -30, 30);
    lg[0] = NAN; /* argmax skips NaNs */
    float *lsr = xmalloc(sizeof(float) * n), *lsg = xmalloc(sizeof(float) * n);
    int32_t *amr = xmalloc(sizeof(int32_t) * T), *amg = xmalloc(sizeof(int32_t) * T);
    ck_assert_int_eq(log_softmax_forward_cpu(lsr, lg, T, N, ldx, NULL), MCRT_OK);
    ck_assert_int_eq(argmax_forward_cpu(amr, lg, T, N, ldx, NULL), MCRT_OK);
    for (int c = 0; c < N_CFGS; c++) {
        mk_ctx *ctx = make_ctx(c);
        ck_assert_int_eq(residual_forward_cpu(ref, a, b, (int)n, NULL), MCRT_OK);
        ck_assert_int_eq(residual_forward_cpu_fast(got, a, b, (int)n, ctx), MCRT_OK);
        assert_same(got, ref, sizeof(float) * n, "residual", cfgs[c].name);
        memcpy(got, a, sizeof(float) * n);
        ck_assert_int_eq(residual_forward_cpu_fast(got, got, b, (int)n, ctx), MCRT_OK); /* in place */
        assert_same(got, ref, sizeof(float) * n, "residual in place", cfgs[c].name);
        memcpy(ref, a, sizeof(float) * n);
        memcpy(got, a, sizeof(float) * n);
        ck_assert_int_eq(bias_add_forward_cpu(ref, bias, T, N, NULL), MCRT_OK);
        ck_assert_int_eq(bias_add_forward_cpu_fast(got, bias, T, N, ctx), MCRT_OK);
        assert_same(got, ref, sizeof(float) * n, "bias_add", cfgs[c].name);
        ck_assert_int_eq(log_softmax_forward_cpu_fast(lsg, lg, T, N, ldx, ctx), MCRT_OK);
        assert_same(lsg, lsr, sizeof(float) * n, "log_softmax", cfgs[c].name);
        ck_assert_int_eq(argmax_forward_cpu_fast(amg, lg, T, N, ldx, ctx), MCRT_OK);
        assert_same(amg, amr, sizeof(int32_t) * T, "argmax", cfgs[c].name);
        mk_cpu_ctx_destroy(ctx);
    }
    free(a);
    free(b);
    free(bias);
    free(ref);
    free(got);
    free(lg);
    free(lsr);
    free(lsg);
    free(amr);
    free(amg);
}
END_TEST

START_TEST(fast_rejects_what_reference_rejects)
{
    mk_ctx *ctx = make_ctx(1);
    float buf[64] = {0};
    int32_t ids[4] = {0};
    const mk_ops *ops[2] = {mk_ops_cpu_reference(), mk_ops_cpu()};
    for (int i = 0; i < 2; i++) {
        const mk_ops *o = ops[i];
        ck_assert_int_eq(o->matmul(buf, buf, buf, MCRT_DTYPE_I32, NULL, 1, 2, 2, ctx), MCRT_E_INVAL);
        ck_assert_int_eq(o->matmul(buf, buf, buf, MCRT_DTYPE_F32, NULL, -1, 2, 2, ctx),
                         MCRT_E_INVAL);
        ck_assert_int_eq(o->attention(buf + 32, buf, buf, buf, ids, ids, ids, 0, 1, 3, 2, 4, 1, 1,
                                      ctx),
                         MCRT_E_INVAL); /* NH % NKV */
        ck_assert_int_eq(o->split_qkv(buf, buf, buf, buf, 1, 3, 2, 4, ctx), MCRT_E_INVAL);
        ck_assert_int_eq(o->rotary(buf, buf, ids, 10000.0f, 0, 1, 1, 1, 8, 5, ctx), MCRT_E_INVAL);
        ck_assert_int_eq(o->rotary(buf, buf, ids, 0.0f, 0, 1, 1, 1, 8, 4, ctx), MCRT_E_INVAL);
        ck_assert_int_eq(o->activation(buf, buf, (mk_act)0, 1, 4, ctx), MCRT_E_INVAL);
        ck_assert_int_eq(o->layernorm(buf, buf, buf, NULL, buf, NULL, 1e-5f, 0, 1, 4, ctx),
                         MCRT_E_INVAL); /* out == resid_out */
        ck_assert_int_eq(o->kv_write(buf, buf, buf, buf, ids, ids, ids, 1, 1, 4, 0, 1, ctx),
                         MCRT_E_INVAL); /* BS 0 */
        ck_assert_int_eq(o->embedding(buf, ids, NULL, buf, buf, MCRT_DTYPE_F32, 0, 1, 4, 4, ctx),
                         MCRT_E_INVAL); /* wpe without positions */
        ck_assert_int_eq(o->log_softmax(buf, buf, 1, 8, 4, ctx), MCRT_E_INVAL); /* N > ldx */
        /* zero tokens: fine, nothing touched */
        ck_assert_int_eq(o->matmul(NULL, NULL, NULL, MCRT_DTYPE_BF16, NULL, 0, 8, 8, ctx), MCRT_OK);
    }
    mk_cpu_ctx_destroy(ctx);
}
END_TEST

static Suite *fast_suite(void)
{
    Suite *s = suite_create("kernels-fast");
    TCase *tc = tcase_create("fast-vs-reference");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, matmul_fast_vs_reference, 0, sizeof mm_cases / sizeof mm_cases[0]);
    tcase_add_loop_test(tc, norm_fast_vs_reference, 0, sizeof norm_cases / sizeof norm_cases[0]);
    tcase_add_loop_test(tc, kv_write_fast_vs_reference, 0, sizeof attn_cases / sizeof attn_cases[0]);
    tcase_add_loop_test(tc, attention_fast_vs_reference, 0,
                        sizeof attn_cases / sizeof attn_cases[0]);
    tcase_add_loop_test(tc, rotary_fast_vs_reference, 0, sizeof rot_cases / sizeof rot_cases[0]);
    tcase_add_loop_test(tc, split_qkv_fast_vs_reference, 0, 4);
    tcase_add_loop_test(tc, activation_fast_vs_reference, 0,
                        sizeof act_shapes / sizeof act_shapes[0]);
    tcase_add_loop_test(tc, embedding_fast_vs_reference, 0, 4);
    tcase_add_loop_test(tc, elementwise_fast_vs_reference, 0, 4);
    tcase_add_test(tc, fast_rejects_what_reference_rejects);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(fast_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
