/*
 * tests/sampler/test_sampler_plugin.c: the `default` sampler through its ABI
 * (dlopen, a fake host), plus hand-computed checks of its filter library.
 *
 *   test_sampler_plugin PLUGIN.so
 *
 * The statistical tests draw 100,000 tokens per parameter set through the
 * plugin's sample() with fixed seeds, so they are deterministic, and compare
 * the counts with the filtered softmax by a chi-square goodness-of-fit test
 * at p = 1e-4 (df = bins - 1, bins with an expected count below 5 pooled; the
 * degrees of freedom are printed per set). The expected distribution comes
 * from the filter library (sampling.c), which test_sampler_golden holds
 * against the PyTorch reference; the hand-computed cases below hold it
 * without torch. Everything else (padding, seeds, batches, greedy rules, log
 * probs, refusals) is checked against values computed here.
 */
#include <check.h>
#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcrt/mcrt.h"
#include "../common/fake_host.h" /* fake_host, fake_last_error, fake_allocs */
#include "sampling.h" /* plugins/sampler-default: the expected distributions */

static const char *g_path;
static void *g_dl;
static const mcrt_plugin_entry *g_desc;
static const mcrt_sampler_iface *g_sam;


/* ---- helpers ------------------------------------------------------------------ */

static void *mk(void)
{
    void *self = NULL;
    ck_assert_int_eq(g_sam->create(&fake_host, NULL, &self), MCRT_OK);
    ck_assert_ptr_nonnull(self);
    return self;
}

static void rm(void *self)
{
    g_sam->destroy(self);
}

static mcrt_sampling_params params(uint32_t compat)
{
    mcrt_sampling_params p;
    memset(&p, 0, sizeof p);
    p.struct_size = (uint32_t)sizeof p;
    p.compat = compat;
    p.temperature = 1.0f;
    p.top_p = compat == MCRT_COMPAT_MEGATRON ? 0.0f : 1.0f;
    p.repetition_penalty = 1.0f;
    p.num_tokens_to_generate = 16;
    p.seed = 1234;
    return p;
}

/* A deterministic source for test data (not the sampler's RNG). Each test
 * seeds it, so its data do not depend on the tests before it (CK_FORK=no). */
static uint64_t g_rs = 0x1234567ull;
static void rnd_seed(uint64_t seed)
{
    g_rs = seed;
}

static double rnd01(void)
{
    g_rs += 0x9E3779B97F4A7C15ull;
    return sd_u01(sd_mix64(g_rs));
}

static double rnd_normal(void)
{
    double u = rnd01(), v = rnd01();
    return sqrt(-2.0 * log(u + 1e-300)) * cos(6.283185307179586 * v);
}

static void fill_normal(float *x, int32_t n, double scale)
{
    for (int32_t i = 0; i < n; i++)
        x[i] = (float)(scale * rnd_normal());
}

/* Sample R rows. history/history_len may be NULL (no history). */
static mcrt_status sample(void *self, uint32_t R, int32_t V, int32_t Vp, const float *logits,
                          const mcrt_sampling_params *const *ps, const int32_t *const *history,
                          const size_t *history_len, const uint64_t *draw_index, int32_t *out,
                          float *lps)
{
    mcrt_sample_batch b;
    memset(&b, 0, sizeof b);
    b.struct_size = (uint32_t)sizeof b;
    b.n_rows = R;
    b.vocab_size = V;
    b.padded_vocab_size = Vp;
    b.logits = logits;
    b.params = ps;
    b.history = history;
    b.history_len = history_len;
    b.draw_index = draw_index;
    return g_sam->sample(self, &b, out, lps);
}

/* One row, one params, one draw index; the token (fails the test on error). */
static int32_t sample1(void *self, int32_t V, int32_t Vp, const float *logits,
                       const mcrt_sampling_params *p, uint64_t draw_index, float *lp)
{
    int32_t tok = -7;
    const mcrt_sampling_params *ps[1] = {p};
    fake_last_error[0] = '\0';
    mcrt_status st = sample(self, 1, V, Vp, logits, ps, NULL, NULL, &draw_index, &tok, lp);
    ck_assert_msg(st == MCRT_OK, "sample: %s: %s", mcrt_status_str(st), fake_last_error);
    return tok;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    ck_assert_ptr_nonnull(p);
    return p;
}

static void *l_alloc(void *ctx, size_t n)
{
    (void)ctx;
    return malloc(n);
}

static void l_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

static const sd_allocator g_lalloc = {l_alloc, l_free, NULL};

/* The library's filtered distribution of one row: probs[0..V). */
static sd_dist lib_probs(const float *logits, int32_t V, int32_t Vp, const mcrt_sampling_params *p,
                         const int32_t *history, size_t history_len, uint64_t draw_index,
                         double *probs)
{
    sd_work w = {0};
    sd_dist d;
    char why[512] = "";
    sd_row row = {logits, V, Vp, p, history, history_len, draw_index, 0};
    ck_assert_int_eq(sd_work_reserve(&w, (size_t)V, &g_lalloc), MCRT_OK);
    mcrt_status st = sd_filter(&w, &row, &d, why, sizeof why);
    ck_assert_msg(st == MCRT_OK, "sd_filter: %s", why);
    sd_weights(&w, V, &d);
    for (int32_t i = 0; i < V; i++)
        probs[i] = w.z[i] / d.total;
    sd_work_release(&w, &g_lalloc);
    return d;
}

/* ---- chi-square ------------------------------------------------------------------ */

/* Regularized upper incomplete gamma Q(a, x) (series below a + 1, Lentz's
 * continued fraction above). The chi-square p-value is Q(df / 2, x / 2). */
static double gamma_q(double a, double x)
{
    if (x <= 0.0)
        return 1.0;
    double lpre = -x + a * log(x) - lgamma(a);
    if (x < a + 1.0) {
        double ap = a, del = 1.0 / a, sum = del;
        for (int n = 0; n < 100000; n++) {
            ap += 1.0;
            del *= x / ap;
            sum += del;
            if (fabs(del) < fabs(sum) * 1e-16)
                break;
        }
        return 1.0 - sum * exp(lpre);
    }
    const double tiny = 1e-300;
    double b = x + 1.0 - a, c = 1.0 / tiny, d = 1.0 / b, h = d;
    for (int i = 1; i < 100000; i++) {
        double an = -i * (i - a);
        b += 2.0;
        d = an * d + b;
        if (fabs(d) < tiny)
            d = tiny;
        c = b + an / c;
        if (fabs(c) < tiny)
            c = tiny;
        d = 1.0 / d;
        double del = d * c;
        h *= del;
        if (fabs(del - 1.0) < 1e-16)
            break;
    }
    return exp(lpre) * h;
}

static double chi2_pvalue(double chi2, int df)
{
    return gamma_q(df / 2.0, chi2 / 2.0);
}

#define CHI_N 100000       /* draws per parameter set */
#define CHI_BATCH 1000     /* rows per sample() call */
#define CHI_P_MIN 1e-4     /* fail below this p-value */
#define CHI_MIN_EXPECTED 5.0

/* Goodness of fit of counts[0..V) to N probs[0..V): pools bins with an
 * expected count below 5 (merged into the smallest other bin when the pool is
 * still below 5). Writes the statistic and df; returns the p-value. Tokens
 * with probability 0 must not have been drawn at all (checked by the caller). */
static double chi_square(const long *counts, const double *probs, int32_t V, long N,
                         double *out_chi2, int *out_df)
{
    double chi2 = 0.0, pool_e = 0.0, pool_o = 0.0, small_e = INFINITY, small_o = 0.0;
    double small_term = 0.0;
    int bins = 0;
    for (int32_t i = 0; i < V; i++) {
        if (probs[i] <= 0.0)
            continue;
        double e = (double)N * probs[i], o = (double)counts[i];
        if (e < CHI_MIN_EXPECTED) {
            pool_e += e;
            pool_o += o;
            continue;
        }
        double t = (o - e) * (o - e) / e;
        chi2 += t;
        bins++;
        if (e < small_e) {
            small_e = e;
            small_o = o;
            small_term = t;
        }
    }
    if (pool_e > 0.0) {
        if (pool_e >= CHI_MIN_EXPECTED || bins == 0) {
            chi2 += (pool_o - pool_e) * (pool_o - pool_e) / pool_e;
            bins++;
        } else { /* merge the pool into the smallest bin */
            double e = small_e + pool_e, o = small_o + pool_o;
            chi2 += (o - e) * (o - e) / e - small_term;
        }
    }
    *out_chi2 = chi2;
    *out_df = bins - 1;
    return bins > 1 ? chi2_pvalue(chi2, bins - 1) : 1.0;
}

START_TEST(test_chi2_pvalue)
{
    /* Upper quantiles of the chi-square distribution (torch.special.gammaincc, bisected). */
    static const struct {
        int df;
        double x, p;
    } t[] = {
        {1, 3.841459, 0.05}, {1, 15.13671, 1e-4}, {2, 18.42068, 1e-4}, {10, 18.30704, 0.05},
        {10, 35.56401, 1e-4}, {39, 54.57223, 0.05}, {100, 124.3421, 0.05}, {100, 161.3187, 1e-4},
        {999, 1073.643, 0.05},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        double p = chi2_pvalue(t[i].x, t[i].df);
        ck_assert_msg(fabs(p - t[i].p) <= 2e-3 * t[i].p, "df %d, x %g: p %g, want %g", t[i].df,
                      t[i].x, p, t[i].p);
    }
}
END_TEST

typedef struct chi_set {
    const char *name;
    uint32_t compat;
    float temperature;
    int32_t top_k;
    float top_p, min_p, rep, pres, freq;
    int32_t V, Vp;
    double scale;      /* logits ~ N(0, scale) */
    int history;       /* with a history and a logit bias (penalty sets) */
    int vary_seed;     /* rows differ by seed (fixed draw index) instead of by draw index */
} chi_set;

static const chi_set g_chi_sets[] = {
    {"default: temperature 1", 0, 1.0f, 0, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f, 40, 48, 1.5, 0, 0},
    {"default: temperature 0.7, top_k 10", 0, 0.7f, 10, 1.0f, 0.0f, 1.0f, 0.0f, 0.0f, 40, 48,
     1.5, 0, 0},
    {"default: temperature 1.3, top_p 0.8", 0, 1.3f, 0, 0.8f, 0.0f, 1.0f, 0.0f, 0.0f, 40, 48,
     1.5, 0, 1},
    {"default: top_k 20 + top_p 0.9 + min_p 0.05", 0, 1.0f, 20, 0.9f, 0.05f, 1.0f, 0.0f, 0.0f,
     40, 48, 1.5, 0, 0},
    {"default: penalties + logit bias", 0, 0.9f, 0, 1.0f, 0.0f, 1.3f, 0.4f, 0.3f, 40, 48, 1.5, 1,
     1},
    {"default: top_p 0.95, V 300", 0, 1.0f, 0, 0.95f, 0.0f, 1.0f,
     0.0f, 0.0f, 300, 320, 0.5, 0, 0},
    {"megatron: temperature 1", 1, 1.0f, 0, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 40, 48, 1.5, 0, 0},
    {"megatron: temperature 0.8, top_k 5", 1, 0.8f, 5, 0.0f, 0.0f, 1.0f, 0.0f, 0.0f, 40, 48, 1.5,
     0, 1},
    {"megatron: temperature 1.5, top_p 0.7", 1, 1.5f, 0, 0.7f, 0.0f, 1.0f, 0.0f, 0.0f, 40, 48,
     1.5, 0, 0},
};

START_TEST(test_chi_square)
{
    rnd_seed(0xC0FFEEull + (uint64_t)_i);
    const chi_set *cs = &g_chi_sets[_i];
    const int32_t V = cs->V, Vp = cs->Vp;
    float *row = xmalloc((size_t)Vp * sizeof *row);
    fill_normal(row, Vp, cs->scale);
    for (int32_t i = V; i < Vp; i++)
        row[i] = 40.0f; /* padding that would dominate if it were not masked */
    mcrt_sampling_params p = params(cs->compat);
    p.temperature = cs->temperature;
    p.top_k = cs->top_k;
    p.top_p = cs->top_p;
    p.min_p = cs->min_p;
    p.repetition_penalty = cs->rep;
    p.presence_penalty = cs->pres;
    p.frequency_penalty = cs->freq;
    p.seed = 1000 + _i;
    static const int32_t hist[] = {3, 7, 7, 1, 0, 3, 3, 12, 25, 7, 2, 39};
    static const int32_t bias_ids[] = {5, 9};
    static const float bias_values[] = {2.0f, -1.5f};
    const size_t hlen = cs->history ? sizeof hist / sizeof hist[0] : 0;
    const uint64_t fixed_draw = 5; /* with the history: 7 prompt tokens, 5 generated */
    if (cs->history) {
        p.logit_bias_ids = bias_ids;
        p.logit_bias_values = bias_values;
        p.n_logit_bias = 2;
    }
    double *probs = xmalloc((size_t)V * sizeof *probs);
    sd_dist d = lib_probs(row, V, Vp, &p, cs->history ? hist : NULL, hlen, fixed_draw, probs);
    ck_assert_int_gt(d.n_kept, 1);
    if (p.top_k > 0 && p.top_p < 1.0f && p.min_p > 0.0f) { /* every filter of the set binds */
        mcrt_sampling_params q = p;
        q.min_p = 0.0f;
        int32_t k_p = lib_probs(row, V, Vp, &q, NULL, 0, 0, probs).n_kept;
        q.top_p = 1.0f;
        int32_t k_only = lib_probs(row, V, Vp, &q, NULL, 0, 0, probs).n_kept;
        ck_assert_msg(V > k_only && k_only > k_p && k_p > d.n_kept,
                      "%s: kept %d -> top-k %d -> top-p %d -> min-p %d: a filter does not bind",
                      cs->name, (int)V, (int)k_only, (int)k_p, (int)d.n_kept);
        lib_probs(row, V, Vp, &p, NULL, 0, 0, probs);
    }

    float *logits = xmalloc((size_t)CHI_BATCH * (size_t)Vp * sizeof *logits);
    mcrt_sampling_params *rp = xmalloc(CHI_BATCH * sizeof *rp);
    const mcrt_sampling_params **ps = xmalloc(CHI_BATCH * sizeof *ps);
    const int32_t **hs = xmalloc(CHI_BATCH * sizeof *hs);
    size_t *hl = xmalloc(CHI_BATCH * sizeof *hl);
    uint64_t *di = xmalloc(CHI_BATCH * sizeof *di);
    int32_t *tok = xmalloc(CHI_BATCH * sizeof *tok);
    long *counts = calloc((size_t)Vp, sizeof *counts);
    ck_assert_ptr_nonnull(counts);
    for (int r = 0; r < CHI_BATCH; r++) {
        memcpy(logits + (size_t)r * (size_t)Vp, row, (size_t)Vp * sizeof *row);
        rp[r] = p;
        ps[r] = &rp[r];
        hs[r] = hist;
        hl[r] = hlen;
    }
    void *self = mk();
    for (long done = 0; done < CHI_N; done += CHI_BATCH) {
        for (int r = 0; r < CHI_BATCH; r++) {
            if (cs->vary_seed) {
                rp[r].seed = p.seed + 7919 * (done + r);
                di[r] = fixed_draw;
            } else {
                di[r] = (uint64_t)(done + r);
            }
        }
        mcrt_status st = sample(self, CHI_BATCH, V, Vp, logits, ps, hs, hl, di, tok, NULL);
        ck_assert_msg(st == MCRT_OK, "%s: %s", cs->name, fake_last_error);
        for (int r = 0; r < CHI_BATCH; r++) {
            ck_assert_int_ge(tok[r], 0);
            ck_assert_int_lt(tok[r], Vp);
            counts[tok[r]]++;
        }
    }
    rm(self);
    for (int32_t i = 0; i < Vp; i++)
        ck_assert_msg(counts[i] == 0 || (i < V && probs[i] > 0.0),
                      "%s: token %d (outside the filtered support) drawn %ld times", cs->name,
                      (int)i, counts[i]);
    double chi2;
    int df;
    double pv = chi_square(counts, probs, V, CHI_N, &chi2, &df);
    printf("chi-square %-55s kept %4d  df %4d  chi2 %9.2f  p %.4f\n", cs->name, (int)d.n_kept, df,
           chi2, pv);
    ck_assert_msg(pv >= CHI_P_MIN, "%s: chi2 %.2f with %d df: p = %.3g < %g", cs->name, chi2, df,
                  pv, CHI_P_MIN);
    free(row), free(probs), free(logits), free(rp), free(ps), free(hs), free(hl), free(di);
    free(tok), free(counts);
}
END_TEST

/* ---- padding, seeds, batches ------------------------------------------------------ */

START_TEST(test_padding_never_drawn)
{
    enum { V = 7, Vp = 16, N = 20000 };
    float row[Vp];
    for (int32_t i = 0; i < V; i++)
        row[i] = (float)(-0.1 * i);
    for (int32_t i = V; i < Vp; i++)
        row[i] = 1e30f; /* huge padding: any leak would be drawn nearly always */
    void *self = mk();
    for (uint32_t compat = 0; compat < 2; compat++) {
        mcrt_sampling_params p = params(compat);
        p.temperature = 5.0f;
        for (uint64_t i = 0; i < N; i++) {
            int32_t t = sample1(self, V, Vp, row, &p, i, NULL);
            ck_assert_msg(t >= 0 && t < V, "compat %u: padding id %d drawn", compat, (int)t);
        }
        /* Greedy rules too. */
        p.temperature = 0.0f;
        ck_assert_int_eq(sample1(self, V, Vp, row, &p, 0, NULL), 0);
        p.temperature = 1.0f;
        if (compat == MCRT_COMPAT_MEGATRON) {
            p.top_k = 1;
            ck_assert_int_eq(sample1(self, V, Vp, row, &p, 0, NULL), 0);
        }
    }
    rm(self);
}
END_TEST

/* A row alone or inside any batch, in any order, gets the same token. */
START_TEST(test_batch_independence)
{
    rnd_seed(11);
    enum { R = 6, V = 50, Vp = 64, STEPS = 200 };
    float rows[R][Vp];
    mcrt_sampling_params ps[R];
    const int32_t hist[] = {1, 2, 3, 3, 40};
    const int32_t *hs[R];
    size_t hl[R];
    for (int r = 0; r < R; r++) {
        fill_normal(rows[r], Vp, 1.0 + 0.3 * r);
        ps[r] = params(r % 2 ? MCRT_COMPAT_MEGATRON : MCRT_COMPAT_DEFAULT);
        ps[r].seed = 77 + r % 3; /* rows 0 and 3 share a seed, so do 1 and 4 ... */
        hs[r] = hist;
        hl[r] = 5;
    }
    ps[0].top_k = 8;
    ps[0].top_p = 0.9f;
    ps[1].top_p = 0.8f;
    ps[2].repetition_penalty = 1.5f;
    ps[2].presence_penalty = 0.5f;
    ps[3].temperature = 0.6f;
    ps[3].top_k = 3;
    ps[4].top_k = 4;
    ps[4].min_p = 0.1f;
    ps[5].temperature = 1.7f;
    static const int orders[4][R] = {
        {0, 1, 2, 3, 4, 5}, {5, 4, 3, 2, 1, 0}, {2, 0, 5, 1, 3, 4}, {3, 5, 1, 4, 0, 2}};
    void *a = mk(), *b = mk();
    int distinct = 0;
    for (uint64_t step = 0; step < STEPS; step++) {
        int32_t alone[R];
        float alone_lp[R];
        for (int r = 0; r < R; r++) {
            const mcrt_sampling_params *pr[1] = {&ps[r]};
            const int32_t *hr[1] = {hs[r]};
            uint64_t di[1] = {step};
            ck_assert_int_eq(
                sample(a, 1, V, Vp, rows[r], pr, hr, &hl[r], di, &alone[r], &alone_lp[r]),
                MCRT_OK);
        }
        distinct += alone[0] != alone[3];
        for (int o = 0; o < 4; o++) {
            float batch[R][Vp];
            const mcrt_sampling_params *pb[R];
            const int32_t *hb[R];
            size_t lb[R];
            uint64_t db[R];
            int32_t out[R];
            float lp[R];
            for (int j = 0; j < R; j++) {
                int r = orders[o][j];
                memcpy(batch[j], rows[r], sizeof batch[j]);
                pb[j] = &ps[r];
                hb[j] = hs[r];
                lb[j] = hl[r];
                db[j] = step;
            }
            /* Another instance for half the orders: no state leaks between calls. */
            ck_assert_int_eq(sample(o % 2 ? b : a, R, V, Vp, &batch[0][0], pb, hb, lb, db, out, lp),
                             MCRT_OK);
            for (int j = 0; j < R; j++) {
                int r = orders[o][j];
                ck_assert_msg(out[j] == alone[r],
                              "step %llu, order %d: row %d drew %d in the batch, %d alone",
                              (unsigned long long)step, o, r, (int)out[j], (int)alone[r]);
                ck_assert(lp[j] == alone_lp[r]);
            }
        }
    }
    ck_assert_int_gt(distinct, STEPS / 4); /* same seed, different rows: not the same token */
    rm(a);
    rm(b);
}
END_TEST

START_TEST(test_seeds_differ)
{
    enum { V = 64, N = 4000 };
    float row[V];
    for (int i = 0; i < V; i++)
        row[i] = 0.0f; /* uniform: two independent streams agree 1 time in 64 */
    mcrt_sampling_params p1 = params(0), p2 = params(0), p3 = params(0);
    p1.seed = 1;
    p2.seed = 2;
    p3.seed = 1;
    void *self = mk(), *other = mk();
    int same12 = 0;
    for (uint64_t i = 0; i < N; i++) {
        int32_t a = sample1(self, V, V, row, &p1, i, NULL);
        int32_t b = sample1(self, V, V, row, &p2, i, NULL);
        int32_t c = sample1(other, V, V, row, &p3, i, NULL);
        same12 += a == b;
        ck_assert_msg(a == c, "seed 1, draw %llu: %d in one instance, %d in another",
                      (unsigned long long)i, (int)a, (int)c);
    }
    /* Expected N / 64 = 62.5 agreements, sd 7.8: 120 is 7 sd away. */
    ck_assert_msg(same12 < 120, "seeds 1 and 2 agree on %d of %d draws", same12, N);
    /* The uniforms themselves: distinct per draw index and per seed. */
    ck_assert(sd_uniform_seeded(1, 0) != sd_uniform_seeded(1, 1));
    ck_assert(sd_uniform_seeded(1, 0) != sd_uniform_seeded(2, 0));
    ck_assert(sd_uniform_seeded(0, 0) != sd_uniform_seeded(-1, 0));
    rm(self);
    rm(other);
}
END_TEST

/* seed -1: valid tokens, and two instances (or two calls) do not repeat each other. */
START_TEST(test_unseeded)
{
    enum { V = 64, N = 2000 };
    float row[V];
    for (int i = 0; i < V; i++)
        row[i] = i < 32 ? 0.0f : -INFINITY;
    mcrt_sampling_params p = params(0);
    p.seed = -1;
    void *a = mk(), *b = mk();
    int same_inst = 0, same_call = 0;
    for (uint64_t i = 0; i < N; i++) {
        int32_t x = sample1(a, V, V, row, &p, 0, NULL);
        int32_t y = sample1(b, V, V, row, &p, 0, NULL);
        int32_t z = sample1(a, V, V, row, &p, 0, NULL);
        ck_assert(x >= 0 && x < 32 && y >= 0 && y < 32 && z >= 0 && z < 32);
        same_inst += x == y;
        same_call += x == z;
    }
    /* Expected N / 32 = 62.5 each; a shared or repeated stream would give N. */
    ck_assert_msg(same_inst < N / 4 && same_call < N / 4, "unseeded streams repeat (%d, %d of %d)",
                  same_inst, same_call, N);
    rm(a);
    rm(b);
}
END_TEST

/* ---- greedy rules and log probs ----------------------------------------------------- */

START_TEST(test_greedy)
{
    const float row[] = {1.0f, 4.0f, NAN, 4.0f, 2.0f, -INFINITY, 9.0f};
    void *self = mk();
    /* default: temperature 0 = argmax over the real vocabulary, lowest id on ties. */
    mcrt_sampling_params p = params(0);
    p.temperature = 0.0f;
    p.top_k = 3;
    p.top_p = 0.2f;
    p.min_p = 0.5f;
    for (uint64_t i = 0; i < 50; i++)
        ck_assert_int_eq(sample1(self, 6, 7, row, &p, i, NULL), 1);
    /* ... after logit bias and penalties. */
    const int32_t bias_id[] = {4};
    const float bias_val[] = {2.5f};
    p.logit_bias_ids = bias_id;
    p.logit_bias_values = bias_val;
    p.n_logit_bias = 1;
    ck_assert_int_eq(sample1(self, 6, 7, row, &p, 0, NULL), 4);
    /* megatron: top_k 1 is argmax of the raw logits whatever the temperature. */
    mcrt_sampling_params m = params(MCRT_COMPAT_MEGATRON);
    m.top_k = 1;
    const float temps[] = {1e-3f, 0.5f, 1.0f, 7.0f, 100.0f, 0.0f};
    for (size_t t = 0; t < sizeof temps / sizeof temps[0]; t++) {
        m.temperature = temps[t];
        for (uint64_t i = 0; i < 50; i++)
            ck_assert_int_eq(sample1(self, 6, 7, row, &m, i, NULL), 1);
    }
    /* megatron: temperature 0 without top_k = greedy too (Megatron's server mapping). */
    m.top_k = 0;
    m.temperature = 0.0f;
    m.top_p = 0.9f;
    ck_assert_int_eq(sample1(self, 6, 7, row, &m, 3, NULL), 1);
    /* Contrast: at temperature 100 without top_k the draws spread over the support. */
    m.temperature = 100.0f;
    m.top_p = 0.0f;
    int not_argmax = 0;
    for (uint64_t i = 0; i < 200; i++) {
        int32_t t = sample1(self, 6, 7, row, &m, i, NULL);
        ck_assert(t != 2 && t != 5 && t != 6); /* NaN, -inf, padding */
        not_argmax += t != 1;
    }
    ck_assert_int_gt(not_argmax, 50);
    rm(self);
}
END_TEST

/* log_softmax of the raw logits at the chosen token: default over [0, V),
 * megatron over [0, Vp) (computed here in long double). */
static double ref_logprob(const float *x, int32_t n, int32_t tok)
{
    long double m = -INFINITY, s = 0.0L;
    for (int32_t i = 0; i < n; i++)
        if (!isnan(x[i]) && x[i] > m)
            m = x[i];
    for (int32_t i = 0; i < n; i++)
        if (!isnan(x[i]))
            s += expl((long double)x[i] - m);
    return (double)(((long double)x[tok] - m) - logl(s));
}

START_TEST(test_logprobs)
{
    rnd_seed(12);
    enum { V = 30, Vp = 40 };
    float row[Vp];
    fill_normal(row, Vp, 2.0);
    row[3] = NAN;
    row[4] = -INFINITY;
    row[35] = 6.0f; /* a large padding logit: it matters to megatron's normaliser only */
    void *self = mk();
    for (uint32_t compat = 0; compat < 2; compat++) {
        mcrt_sampling_params p = params(compat);
        p.temperature = 0.6f; /* temperature and filters do not change the log prob */
        if (compat == 0) {
            p.top_k = 5;
            p.top_p = 0.7f;
            p.min_p = 0.1f;
        } else {
            p.top_p = 0.5f;
        }
        for (uint64_t i = 0; i < 100; i++) {
            float lp = 0.0f;
            int32_t t = sample1(self, V, Vp, row, &p, i, &lp);
            double want = ref_logprob(row, compat ? Vp : V, t);
            ck_assert_msg(fabs((double)lp - want) <= 2e-6 * fmax(1.0, fabs(want)),
                          "compat %u, token %d: log p %.9g, want %.9g", compat, (int)t,
                          (double)lp, want);
        }
    }
    /* Greedy rows get one too; +inf logits share the mass. */
    const float inf_row[] = {1.0f, INFINITY, 0.0f, INFINITY, NAN};
    mcrt_sampling_params g = params(0);
    g.temperature = 0.0f;
    float lp = 0.0f;
    ck_assert_int_eq(sample1(self, 5, 5, inf_row, &g, 0, &lp), 1);
    ck_assert_float_eq_tol(lp, (float)-log(2.0), 1e-7f);
    mcrt_sampling_params t1 = params(0);
    for (uint64_t i = 0; i < 100; i++) {
        int32_t t = sample1(self, 5, 5, inf_row, &t1, i, &lp);
        ck_assert(t == 1 || t == 3);
    }
    rm(self);
}
END_TEST

/* ---- the filter by hand (holds the library without torch) ------------------------- */

static void expect_probs(const char *what, const float *logits, int32_t V, int32_t Vp,
                         const mcrt_sampling_params *p, const int32_t *history, size_t hlen,
                         uint64_t draw_index, const double *want)
{
    double probs[64];
    ck_assert_int_le(V, 64);
    lib_probs(logits, V, Vp, p, history, hlen, draw_index, probs);
    for (int32_t i = 0; i < V; i++)
        ck_assert_msg(fabs(probs[i] - want[i]) <= 1e-12 && ((probs[i] > 0) == (want[i] > 0)),
                      "%s: p[%d] = %.17g, want %.17g", what, (int)i, probs[i], want[i]);
}

START_TEST(test_filter_by_hand)
{
    const double e2 = exp(2.0), e3 = exp(3.0);
    /* top_p 0.5 over two equal logits: the second's exclusive mass is exactly
     * 0.5; default keeps the head whose mass reaches top_p, megatron keeps
     * tokens while the mass before them is <= top_p. */
    const float two[] = {1.0f, 1.0f};
    mcrt_sampling_params p = params(0);
    p.top_p = 0.5f;
    expect_probs("default top_p 0.5", two, 2, 2, &p, NULL, 0, 0, (const double[]){1.0, 0.0});
    mcrt_sampling_params m = params(MCRT_COMPAT_MEGATRON);
    m.top_p = 0.5f;
    expect_probs("megatron top_p 0.5", two, 2, 2, &m, NULL, 0, 0, (const double[]){0.5, 0.5});
    /* top_k 2 with three tied at the 2nd value: all kept. */
    const float tk[] = {3.0f, 1.0f, 2.0f, 2.0f, 2.0f, 0.0f};
    const double sk = e3 + 3 * e2;
    p = params(0);
    p.top_k = 2;
    const double want_k[] = {e3 / sk, 0, e2 / sk, e2 / sk, e2 / sk, 0};
    expect_probs("default top_k ties", tk, 6, 6, &p, NULL, 0, 0, want_k);
    m = params(MCRT_COMPAT_MEGATRON);
    m.top_k = 2;
    expect_probs("megatron top_k ties", tk, 6, 6, &m, NULL, 0, 0, want_k);
    /* min_p 0.3: exp(-1) = 0.37 stays, exp(-2) = 0.14 goes. */
    const float mp[] = {3.0f, 2.0f, 1.0f, 0.0f};
    p = params(0);
    p.min_p = 0.3f;
    expect_probs("min_p", mp, 4, 4, &p, NULL, 0, 0,
                 (const double[]){e3 / (e3 + e2), e2 / (e3 + e2), 0, 0});
    /* min_p 1 keeps exactly the tokens tied at the maximum (p_i < min_p * p_max drops). */
    const float tie[] = {1.0f, 3.0f, 3.0f, 2.0f};
    p = params(0);
    p.min_p = 1.0f;
    expect_probs("min_p 1", tie, 4, 4, &p, NULL, 0, 0, (const double[]){0, 0.5, 0.5, 0});
    /* top_p 0 in default mode keeps the top token only (the lowest id of a tie). */
    p = params(0);
    p.top_p = 0.0f;
    expect_probs("top_p 0", tie, 4, 4, &p, NULL, 0, 0, (const double[]){0, 1, 0, 0});
    /* temperature 2, top_k 3, top_p 0.6 and min_p 0.5 composed, by hand. */
    const float c4[] = {4.0f, 2.0f, 0.0f, -2.0f, 4.0f};
    p = params(0);
    p.temperature = 2.0f; /* -> 2, 1, 0, -1, 2 */
    p.top_k = 3;          /* keeps 2, 1, 2 (ids 0, 1, 4) */
    p.top_p = 0.6f;       /* masses e2, e, e2 / (2e2 + e) = 0.42, 0.16, 0.42: id 0, then id 4
                             (0.42 < 0.6), then the mass before id 1 is 0.84: dropped */
    expect_probs("composed", c4, 5, 5, &p, NULL, 0, 0, (const double[]){0.5, 0, 0, 0, 0.5});
    p.top_p = 0.4f; /* 0.42 >= 0.4: id 0 alone */
    expect_probs("composed, top_p 0.4", c4, 5, 5, &p, NULL, 0, 0, (const double[]){1, 0, 0, 0, 0});
    p.top_p = 1.0f;
    p.min_p = 0.5f; /* e / e2 = 0.37 < 0.5: id 1 goes */
    expect_probs("composed, min_p", c4, 5, 5, &p, NULL, 0, 0, (const double[]){0.5, 0, 0, 0, 0.5});
    /* Penalties: history 0 1 4 | 4 2 (draw_index 2: the last two are generated).
     * repetition 2 over {0, 1, 2, 4}: 2 -> 1, -1 -> -2, 0.5 -> 0.25, 1 -> 0.5;
     * presence 0.5 and frequency 0.25 over {4: 1, 2: 1}: 0.25 - 0.75, 0.5 - 0.75. */
    const float pen[] = {2.0f, -1.0f, 0.5f, 0.0f, 1.0f};
    const int32_t hist[] = {0, 1, 4, 4, 2};
    p = params(0);
    p.repetition_penalty = 2.0f;
    p.presence_penalty = 0.5f;
    p.frequency_penalty = 0.25f;
    {
        const double z[] = {1.0, -2.0, -0.5, 0.0, -0.25};
        double s = 0, want[5];
        for (int i = 0; i < 5; i++)
            s += exp(z[i]);
        for (int i = 0; i < 5; i++)
            want[i] = exp(z[i]) / s;
        expect_probs("penalties", pen, 5, 5, &p, hist, 5, 2, want);
    }
    /* draw_index 3: tokens 4, 4, 2 are generated: 4 counted twice. */
    {
        const double z[] = {1.0, -2.0, -0.5, 0.0, 0.5 - 0.5 - 0.5};
        double s = 0, want[5];
        for (int i = 0; i < 5; i++)
            s += exp(z[i]);
        for (int i = 0; i < 5; i++)
            want[i] = exp(z[i]) / s;
        expect_probs("penalties, 3 generated", pen, 5, 5, &p, hist, 5, 3, want);
    }
    /* Logit bias: -100 all but removes token 0; +1.5 on token 2. */
    const float flat[] = {0.0f, 0.0f, 0.0f, 0.0f};
    const int32_t bid[] = {2, 0};
    const float bval[] = {1.5f, -100.0f};
    p = params(0);
    p.logit_bias_ids = bid;
    p.logit_bias_values = bval;
    p.n_logit_bias = 2;
    {
        const double w[] = {exp(-100.0), 1.0, exp(1.5), 1.0};
        const double s = w[0] + w[1] + w[2] + w[3];
        expect_probs("logit bias", flat, 4, 4, &p, NULL, 0, 0,
                     (const double[]){w[0] / s, w[1] / s, w[2] / s, w[3] / s});
    }
}
END_TEST

/* Top-p against the definition (sort the row, accumulate, cut) on larger rows
 * of many shapes, both modes: the bucketed search must keep the same set. Rows
 * whose boundary lies within 1e-9 of top_p are skipped (rounding decides them). */
START_TEST(test_top_p_vs_sort)
{
    rnd_seed(13);
    enum { VMAX = 4000 };
    float *row = xmalloc(VMAX * sizeof *row);
    double *probs = xmalloc(VMAX * sizeof *probs);
    sd_pair *a = xmalloc(VMAX * sizeof *a);
    int checked = 0;
    for (int t = 0; t < 400; t++) {
        const int32_t V = t % 3 == 0 ? VMAX : t % 3 == 1 ? 300 : 37;
        const double scales[] = {0.01, 0.3, 1.0, 3.0, 10.0, 40.0};
        fill_normal(row, V, scales[t % 6]);
        if (t % 5 == 0) /* ties */
            for (int32_t i = 0; i < V; i++)
                row[i] = (float)floor(row[i]);
        mcrt_sampling_params p = params(t % 2 ? MCRT_COMPAT_MEGATRON : MCRT_COMPAT_DEFAULT);
        p.top_p = (float)(0.01 + 0.98 * rnd01());
        if (t % 7 == 0)
            p.top_p = 0.999f;
        p.temperature = (float)(0.2 + 2.0 * rnd01());
        /* The definition, on the temperature-scaled row. */
        double m = -INFINITY, s = 0.0;
        for (int32_t i = 0; i < V; i++) {
            a[i].v = (double)row[i] / (double)p.temperature;
            a[i].id = i;
            m = fmax(m, a[i].v);
        }
        for (int32_t i = 0; i < V; i++)
            s += exp(a[i].v - m);
        sd_sort(a, (size_t)V);
        double cum = 0.0, margin = INFINITY;
        int32_t keep = V;
        for (int32_t j = 0; j < V; j++) {
            if (j > 0)
                margin = fmin(margin, fabs(cum - p.top_p));
            if (j > 0 && (p.compat ? cum > p.top_p : cum >= p.top_p)) {
                keep = j;
                break;
            }
            cum += exp(a[j].v - m) / s;
        }
        if (margin < 1e-9)
            continue;
        lib_probs(row, V, V, &p, NULL, 0, 0, probs);
        int32_t n = 0;
        for (int32_t i = 0; i < V; i++)
            n += probs[i] > 0.0;
        ck_assert_msg(n == keep, "row %d (V %d, top_p %g, compat %u): %d kept, want %d", t,
                      (int)V, (double)p.top_p, p.compat, (int)n, (int)keep);
        for (int32_t j = 0; j < keep; j++)
            ck_assert_msg(probs[a[j].id] > 0.0, "row %d: token %d dropped", t, (int)a[j].id);
        checked++;
    }
    ck_assert_int_gt(checked, 350);
    free(row);
    free(probs);
    free(a);
}
END_TEST

static int cmp_desc(const void *pa, const void *pb)
{
    double a = *(const double *)pa, b = *(const double *)pb;
    return a > b ? -1 : a < b ? 1 : 0;
}

/* Top-k against sorting, through both of its paths (a heap up to k = 4096,
 * selection above), with ties and -inf. */
START_TEST(test_top_k_vs_sort)
{
    enum { VMAX = 9000 };
    rnd_seed(16);
    float *row = xmalloc(VMAX * sizeof *row);
    double *probs = xmalloc(VMAX * sizeof *probs), *sorted = xmalloc(VMAX * sizeof *sorted);
    const int32_t sizes[] = {37, 5000, VMAX};
    const int32_t ks[] = {1, 2, 50, 4096, 4097, 6000, VMAX - 1};
    int checked = 0;
    for (int t = 0; t < 3 * 3; t++) {
        const int32_t V = sizes[t % 3];
        fill_normal(row, V, 2.0);
        for (int32_t i = 0; i < V; i++) {
            if (t / 3 == 1)
                row[i] = (float)floor(row[i]); /* ties */
            if (t / 3 == 2 && rnd01() < 0.3)
                row[i] = -INFINITY;
        }
        for (size_t j = 0; j < sizeof ks / sizeof ks[0]; j++) {
            const int32_t k = ks[j];
            if (k >= V)
                continue;
            for (int32_t i = 0; i < V; i++)
                sorted[i] = row[i];
            qsort(sorted, (size_t)V, sizeof *sorted, cmp_desc);
            const double kth = sorted[k - 1];
            mcrt_sampling_params p = params(j % 2 ? MCRT_COMPAT_MEGATRON : MCRT_COMPAT_DEFAULT);
            p.top_k = k;
            lib_probs(row, V, V, &p, NULL, 0, 0, probs);
            for (int32_t i = 0; i < V; i++)
                ck_assert_msg((probs[i] > 0.0) == ((double)row[i] >= kth && row[i] > -INFINITY),
                              "V %d, k %d, token %d (logit %g, k-th %g): kept %d", (int)V, (int)k,
                              (int)i, (double)row[i], kth, probs[i] > 0.0);
            checked++;
        }
    }
    ck_assert_int_ge(checked, 30);
    free(row);
    free(probs);
    free(sorted);
}
END_TEST

/* sd_select against sorting, on ties, sorted and reversed inputs. */
START_TEST(test_select)
{
    rnd_seed(14);
    enum { N = 3000 };
    sd_pair *a = xmalloc(N * sizeof *a), *b = xmalloc(N * sizeof *b);
    for (int pattern = 0; pattern < 5; pattern++) {
        for (int n = 1; n <= N; n = n < 40 ? n + 1 : n * 3) {
            for (int i = 0; i < n; i++) {
                double v;
                switch (pattern) {
                case 0: v = rnd_normal(); break;
                case 1: v = (double)(int)(rnd01() * 4); break; /* many ties */
                case 2: v = i; break;
                case 3: v = -i; break;
                default: v = rnd01() < 0.5 ? -INFINITY : 1.0; break;
                }
                a[i].v = v;
                a[i].id = (int32_t)((i * 7919) % n);
            }
            memcpy(b, a, (size_t)n * sizeof *a);
            sd_sort(b, (size_t)n);
            for (int i = 1; i < n; i++)
                ck_assert(b[i - 1].v > b[i].v || (b[i - 1].v == b[i].v && b[i - 1].id < b[i].id));
            const int nths[] = {0, n / 3, n / 2, n - 1};
            for (int k = 0; k < 4; k++) {
                sd_pair *c = xmalloc((size_t)n * sizeof *c);
                memcpy(c, a, (size_t)n * sizeof *a);
                sd_select(c, (size_t)n, (size_t)nths[k]);
                ck_assert_msg(c[nths[k]].id == b[nths[k]].id, "pattern %d, n %d, nth %d", pattern,
                              n, nths[k]);
                for (int i = 0; i < nths[k]; i++)
                    ck_assert(!(c[i].v < c[nths[k]].v));
                for (int i = nths[k] + 1; i < n; i++)
                    ck_assert(!(c[i].v > c[nths[k]].v));
                free(c);
            }
        }
    }
    free(a);
    free(b);
}
END_TEST

/* ---- refusals ------------------------------------------------------------------------ */

typedef struct bad_case {
    const char *what;
    void (*set)(mcrt_sampling_params *p);
    const char *field; /* must appear in the message */
} bad_case;

static const int32_t g_bad_id[] = {50};
static const int32_t g_neg_id[] = {-1};
static const int32_t g_ok_id[] = {3};
static const float g_ok_val[] = {1.0f};
static const float g_nan_val[] = {NAN};
static const float g_inf_val[] = {INFINITY};

#define BAD(name, field, body)                                                                 \
    static void bad_##name(mcrt_sampling_params *p) { body; }
BAD(temp_neg, "temperature", p->temperature = -0.5f)
BAD(temp_nan, "temperature", p->temperature = NAN)
BAD(temp_inf, "temperature", p->temperature = INFINITY)
BAD(top_k_neg, "top_k", p->top_k = -1)
BAD(top_p_neg, "top_p", p->top_p = -0.1f)
BAD(top_p_big, "top_p", p->top_p = 1.5f)
BAD(top_p_nan, "top_p", p->top_p = NAN)
BAD(min_p_neg, "min_p", p->min_p = -0.01f)
BAD(min_p_big, "min_p", p->min_p = 1.01f)
BAD(min_p_nan, "min_p", p->min_p = NAN)
BAD(rep_zero, "repetition_penalty", p->repetition_penalty = 0.0f)
BAD(rep_neg, "repetition_penalty", p->repetition_penalty = -1.0f)
BAD(rep_inf, "repetition_penalty", p->repetition_penalty = INFINITY)
BAD(rep_nan, "repetition_penalty", p->repetition_penalty = NAN)
BAD(pres_nan, "presence_penalty", p->presence_penalty = NAN)
BAD(pres_inf, "presence_penalty", p->presence_penalty = -INFINITY)
BAD(freq_nan, "frequency_penalty", p->frequency_penalty = NAN)
BAD(freq_inf, "frequency_penalty", p->frequency_penalty = INFINITY)
BAD(ntok_neg, "num_tokens_to_generate", p->num_tokens_to_generate = -1)
BAD(seed_neg, "seed", p->seed = -2)
BAD(topn_neg, "top_n_logprobs", p->top_n_logprobs = -1)
BAD(topn_big, "top_n_logprobs", p->top_n_logprobs = 21)
BAD(compat_bad, "compat", p->compat = 7)
BAD(bias_null, "n_logit_bias", (p->n_logit_bias = 1, p->logit_bias_ids = NULL,
                                p->logit_bias_values = g_ok_val))
BAD(bias_id_big, "logit_bias_ids[0]", (p->n_logit_bias = 1, p->logit_bias_ids = g_bad_id,
                                       p->logit_bias_values = g_ok_val))
BAD(bias_id_neg, "logit_bias_ids[0]", (p->n_logit_bias = 1, p->logit_bias_ids = g_neg_id,
                                       p->logit_bias_values = g_ok_val))
BAD(bias_val_nan, "logit_bias_values[0]", (p->n_logit_bias = 1, p->logit_bias_ids = g_ok_id,
                                           p->logit_bias_values = g_nan_val))
BAD(bias_val_inf, "logit_bias_values[0]", (p->n_logit_bias = 1, p->logit_bias_ids = g_ok_id,
                                           p->logit_bias_values = g_inf_val))
BAD(small_struct, "struct_size", p->struct_size = 16)
/* compat megatron */
BAD(meg_k_and_p, "top_k = 5 and top_p", (p->compat = 1, p->top_k = 5, p->top_p = 0.9f))
BAD(meg_k1_and_p, "top_p", (p->compat = 1, p->top_k = 1, p->top_p = 0.5f))
BAD(meg_k_vocab, "top_k", (p->compat = 1, p->top_p = 0.0f, p->top_k = 10))
BAD(meg_k_over, "top_k", (p->compat = 1, p->top_p = 0.0f, p->top_k = 11))
BAD(meg_top_p_big, "top_p", (p->compat = 1, p->top_p = 1.01f))
BAD(meg_min_p, "min_p", (p->compat = 1, p->top_p = 0.0f, p->min_p = 0.1f))
BAD(meg_rep, "repetition_penalty", (p->compat = 1, p->top_p = 0.0f, p->repetition_penalty = 1.2f))
BAD(meg_pres, "presence_penalty", (p->compat = 1, p->top_p = 0.0f, p->presence_penalty = 0.1f))
BAD(meg_freq, "frequency_penalty", (p->compat = 1, p->top_p = 0.0f, p->frequency_penalty = 0.1f))
BAD(meg_bias, "logit bias", (p->compat = 1, p->top_p = 0.0f, p->n_logit_bias = 1,
                             p->logit_bias_ids = g_ok_id, p->logit_bias_values = g_ok_val))
#undef BAD

static const bad_case g_bad[] = {
#define B(name, field) {#name, bad_##name, field}
    B(temp_neg, "temperature"), B(temp_nan, "temperature"), B(temp_inf, "temperature"),
    B(top_k_neg, "top_k"), B(top_p_neg, "top_p"), B(top_p_big, "top_p"), B(top_p_nan, "top_p"),
    B(min_p_neg, "min_p"), B(min_p_big, "min_p"), B(min_p_nan, "min_p"),
    B(rep_zero, "repetition_penalty"), B(rep_neg, "repetition_penalty"),
    B(rep_inf, "repetition_penalty"), B(rep_nan, "repetition_penalty"),
    B(pres_nan, "presence_penalty"), B(pres_inf, "presence_penalty"),
    B(freq_nan, "frequency_penalty"), B(freq_inf, "frequency_penalty"),
    B(ntok_neg, "num_tokens_to_generate"), B(seed_neg, "seed"), B(topn_neg, "top_n_logprobs"),
    B(topn_big, "top_n_logprobs"), B(compat_bad, "compat"), B(bias_null, "n_logit_bias"),
    B(bias_id_big, "logit_bias_ids[0] = 50"), B(bias_id_neg, "logit_bias_ids[0] = -1"),
    B(bias_val_nan, "logit_bias_values[0]"), B(bias_val_inf, "logit_bias_values[0]"),
    B(small_struct, "struct_size"), B(meg_k_and_p, "top_k = 5 and top_p = 0.9"),
    B(meg_k1_and_p, "top_p"), B(meg_k_vocab, "top_k = 10"), B(meg_k_over, "top_k = 11"),
    B(meg_top_p_big, "top_p = 1.01"), B(meg_min_p, "min_p"), B(meg_rep, "repetition_penalty"),
    B(meg_pres, "presence_penalty"), B(meg_freq, "frequency_penalty"),
    B(meg_bias, "logit bias"),
#undef B
};

START_TEST(test_validate_table)
{
    enum { V = 10 };
    float row[V] = {0};
    void *self = mk();
    /* Good parameters, both modes, with every field at a legal edge. */
    mcrt_sampling_params ok = params(0);
    ok.top_k = 1000;
    ok.top_p = 0.0f;
    ok.min_p = 1.0f;
    ok.presence_penalty = -2.0f;
    ok.top_n_logprobs = 20;
    ok.seed = -1;
    ok.n_logit_bias = 1;
    ok.logit_bias_ids = g_ok_id;
    ok.logit_bias_values = g_ok_val;
    ck_assert_int_eq(g_sam->validate(self, &ok, V), MCRT_OK);
    mcrt_sampling_params okm = params(MCRT_COMPAT_MEGATRON);
    okm.top_k = 9;
    okm.temperature = 0.0f;
    ck_assert_int_eq(g_sam->validate(self, &okm, V), MCRT_OK);
    okm.top_k = 0;
    okm.top_p = 1.0f;
    ck_assert_int_eq(g_sam->validate(self, &okm, V), MCRT_OK);
    okm.top_p = 0.0f;
    okm.top_k = 1; /* 1 < V always; Megatron checks top_k < vocab only for top_k > 1 */
    ck_assert_int_eq(g_sam->validate(self, &okm, 1), MCRT_OK);

    for (size_t i = 0; i < sizeof g_bad / sizeof g_bad[0]; i++) {
        mcrt_sampling_params p = params(0);
        g_bad[i].set(&p);
        fake_last_error[0] = '\0';
        ck_assert_msg(g_sam->validate(self, &p, V) == MCRT_E_INVAL, "%s: accepted", g_bad[i].what);
        ck_assert_msg(strstr(fake_last_error, g_bad[i].field) != NULL,
                      "%s: the message does not name '%s': %s", g_bad[i].what, g_bad[i].field,
                      fake_last_error);
        /* sample() guards too, and leaves the outputs alone. */
        const mcrt_sampling_params *ps[1] = {&p};
        uint64_t di = 0;
        int32_t tok = -7;
        float lp = 7.0f;
        fake_last_error[0] = '\0';
        ck_assert_msg(sample(self, 1, V, V, row, ps, NULL, NULL, &di, &tok, &lp) == MCRT_E_INVAL,
                      "%s: sampled", g_bad[i].what);
        ck_assert_msg(strstr(fake_last_error, "row 0") && strstr(fake_last_error, g_bad[i].field),
                      "%s: sample's message: %s", g_bad[i].what, fake_last_error);
        ck_assert_int_eq(tok, -7);
        ck_assert(lp == 7.0f);
    }
    /* NULL params, bad vocabulary. */
    ck_assert_int_eq(g_sam->validate(self, NULL, V), MCRT_E_INVAL);
    ck_assert_int_eq(g_sam->validate(self, &ok, 0), MCRT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(fake_last_error, "vocab_size"));
    printf("validate: %zu refusals checked\n", sizeof g_bad / sizeof g_bad[0]);
    rm(self);
}
END_TEST

/* Rows with nothing to sample, bad rows, bad batches: errors with a reason,
 * outputs untouched, never a crash. */
START_TEST(test_bad_rows)
{
    enum { V = 4, Vp = 6 };
    void *self = mk();
    mcrt_sampling_params p = params(0), m = params(MCRT_COMPAT_MEGATRON);
    const mcrt_sampling_params *ps2[2] = {&p, &p};
    const float good[Vp] = {0, 1, 2, 3, 0, 0};
    const float nothing_rows[][Vp] = {
        {-INFINITY, -INFINITY, -INFINITY, -INFINITY, 5.0f, 5.0f},
        {NAN, NAN, NAN, NAN, 1.0f, 1.0f},
        {NAN, -INFINITY, NAN, -INFINITY, 0.0f, 0.0f},
    };
    for (size_t k = 0; k < 3; k++) {
        for (int mode = 0; mode < 3; mode++) {
            mcrt_sampling_params q = mode == 1 ? m : p;
            if (mode == 2)
                q.temperature = 0.0f;
            const mcrt_sampling_params *ps[2] = {&q, &q};
            float two[2][Vp];
            memcpy(two[0], good, sizeof two[0]);
            memcpy(two[1], nothing_rows[k], sizeof two[1]);
            uint64_t di[2] = {0, 0};
            int32_t tok[2] = {-7, -7};
            fake_last_error[0] = '\0';
            ck_assert_int_eq(sample(self, 2, V, Vp, &two[0][0], ps, NULL, NULL, di, tok, NULL),
                             MCRT_E_INVAL);
            ck_assert_msg(strstr(fake_last_error, "row 1") &&
                              strstr(fake_last_error, "nothing to sample"),
                          "%s", fake_last_error);
            ck_assert(tok[0] == -7 && tok[1] == -7); /* row 0 was fine, but nothing is written */
        }
    }
    uint64_t di[2] = {0, 0};
    int32_t tok[2];
    float two_good[2][Vp];
    memcpy(two_good[0], good, sizeof good);
    memcpy(two_good[1], good, sizeof good);
    /* A history id outside the vocabulary, and penalties without a history. */
    mcrt_sampling_params r = params(0);
    r.repetition_penalty = 1.2f;
    const mcrt_sampling_params *pr[2] = {&p, &r};
    const int32_t h_ok[] = {1, 2}, h_bad[] = {1, 4};
    const int32_t *hs[2] = {h_ok, h_bad};
    size_t hl[2] = {2, 2};
    fake_last_error[0] = '\0';
    ck_assert_int_eq(sample(self, 2, V, Vp, &two_good[0][0], pr, hs, hl, di, tok, NULL),
                     MCRT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(fake_last_error, "history[1] = 4"));
    hs[1] = h_ok;
    ck_assert_int_eq(sample(self, 2, V, Vp, &two_good[0][0], pr, hs, hl, di, tok, NULL), MCRT_OK);
    ck_assert_int_eq(sample(self, 2, V, Vp, &two_good[0][0], pr, NULL, NULL, di, tok, NULL),
                     MCRT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(fake_last_error, "no history"));
    /* Penalties off: no history needed. */
    ck_assert_int_eq(sample(self, 2, V, Vp, &two_good[0][0], ps2, NULL, NULL, di, tok, NULL),
                     MCRT_OK);
    /* Bad batches. */
    const mcrt_sampling_params *pnull[2] = {&p, NULL};
    ck_assert_int_eq(sample(self, 2, V, Vp, &two_good[0][0], pnull, NULL, NULL, di, tok, NULL),
                     MCRT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(fake_last_error, "row 1"));
    ck_assert_int_eq(sample(self, 2, V, V - 1, &two_good[0][0], ps2, NULL, NULL, di, tok, NULL),
                     MCRT_E_INVAL);
    ck_assert_int_eq(sample(self, 2, 0, Vp, &two_good[0][0], ps2, NULL, NULL, di, tok, NULL),
                     MCRT_E_INVAL);
    ck_assert_int_eq(sample(self, 2, V, Vp, NULL, ps2, NULL, NULL, di, tok, NULL), MCRT_E_INVAL);
    ck_assert_int_eq(sample(self, 2, V, Vp, &two_good[0][0], NULL, NULL, NULL, di, tok, NULL),
                     MCRT_E_INVAL);
    ck_assert_int_eq(sample(self, 2, V, Vp, &two_good[0][0], ps2, NULL, NULL, NULL, tok, NULL),
                     MCRT_E_INVAL);
    ck_assert_int_eq(sample(self, 2, V, Vp, &two_good[0][0], ps2, NULL, NULL, di, NULL, NULL),
                     MCRT_E_INVAL);
    ck_assert_int_eq(g_sam->sample(self, NULL, tok, NULL), MCRT_E_INVAL);
    mcrt_sample_batch old;
    memset(&old, 0, sizeof old);
    old.struct_size = 8;
    ck_assert_int_eq(g_sam->sample(self, &old, tok, NULL), MCRT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(fake_last_error, "struct_size"));
    /* Zero rows: nothing to do. */
    ck_assert_int_eq(sample(self, 0, V, Vp, NULL, NULL, NULL, NULL, NULL, tok, NULL), MCRT_OK);
    rm(self);
}
END_TEST

/* Scratch comes from host->alloc, is reused, and is all freed by destroy. */
START_TEST(test_scratch_reuse)
{
    rnd_seed(15);
    enum { V = 3000, Vp = 3072, R = 8 };
    float *rows = xmalloc((size_t)R * Vp * sizeof *rows);
    fill_normal(rows, R * Vp, 1.0);
    mcrt_sampling_params p = params(0);
    p.top_k = 50;
    p.top_p = 0.9f;
    p.repetition_penalty = 1.1f;
    const mcrt_sampling_params *ps[R];
    const int32_t hist[] = {1, 2, 3};
    const int32_t *hs[R];
    size_t hl[R];
    uint64_t di[R];
    for (int r = 0; r < R; r++) {
        ps[r] = &p;
        hs[r] = hist;
        hl[r] = 3;
        di[r] = (uint64_t)r;
    }
    int32_t tok[R];
    float lp[R];
    long live0 = fake_live;
    void *self = mk();
    ck_assert_int_eq(sample(self, R, V, Vp, rows, ps, hs, hl, di, tok, lp), MCRT_OK);
    long after_first = fake_allocs;
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(sample(self, R, V, Vp, rows, ps, hs, hl, di, tok, lp), MCRT_OK);
        ck_assert_int_eq(sample(self, R / 2, V / 2, Vp, rows, ps, hs, hl, di, tok, NULL), MCRT_OK);
    }
    ck_assert_msg(fake_allocs == after_first, "%ld allocations after the first call",
                  fake_allocs - after_first);
    ck_assert_int_eq(sample(self, R, V + 10, Vp, rows, ps, hs, hl, di, tok, lp), MCRT_OK);
    ck_assert_int_gt(fake_allocs, after_first); /* a larger vocabulary grows the scratch */
    rm(self);
    ck_assert_int_eq(fake_live, live0);
    free(rows);
}
END_TEST

START_TEST(test_descriptor)
{
    ck_assert_int_eq(g_desc->abi_major, MCRT_ABI_MAJOR);
    ck_assert_int_eq(g_desc->kind, MCRT_KIND_SAMPLER);
    ck_assert_str_eq(g_desc->name, "default");
    ck_assert_ptr_null(g_desc->config_keys);
    ck_assert_ptr_null(g_desc->get_iface(MCRT_IFACE_TOKENIZER));
    ck_assert_ptr_null(g_desc->get_iface("mcrt.sampler/2"));
    ck_assert_int_ge(g_sam->struct_size, sizeof(mcrt_sampler_iface));
    ck_assert_ptr_nonnull(g_sam->validate);
    ck_assert_int_eq(g_sam->create(&fake_host, NULL, NULL), MCRT_E_INVAL);
    g_sam->destroy(NULL);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s mcrt-sampler-default.so\n", argv[0]);
        return 2;
    }
    g_path = argv[1];
    fake_clock_ns = 12345;
    g_dl = dlopen(g_path, RTLD_NOW | RTLD_LOCAL);
    if (g_dl == NULL) {
        fprintf(stderr, "dlopen %s: %s\n", g_path, dlerror());
        return 1;
    }
    g_desc = dlsym(g_dl, "mcrt_plugin");
    if (g_desc == NULL || (g_sam = g_desc->get_iface(MCRT_IFACE_SAMPLER)) == NULL) {
        fprintf(stderr, "%s: no mcrt_plugin or no %s table\n", g_path, MCRT_IFACE_SAMPLER);
        return 1;
    }
    Suite *s = suite_create("sampler-plugin");
    TCase *tc = tcase_create("plugin");
    tcase_add_test(tc, test_descriptor);
    tcase_add_test(tc, test_validate_table);
    tcase_add_test(tc, test_bad_rows);
    tcase_add_test(tc, test_filter_by_hand);
    tcase_add_test(tc, test_select);
    tcase_add_test(tc, test_top_p_vs_sort);
    tcase_add_test(tc, test_top_k_vs_sort);
    tcase_add_test(tc, test_greedy);
    tcase_add_test(tc, test_logprobs);
    tcase_add_test(tc, test_padding_never_drawn);
    tcase_add_test(tc, test_batch_independence);
    tcase_add_test(tc, test_seeds_differ);
    tcase_add_test(tc, test_unseeded);
    tcase_add_test(tc, test_scratch_reuse);
    tcase_add_test(tc, test_chi2_pvalue);
    tcase_add_loop_test(tc, test_chi_square, 0, (int)(sizeof g_chi_sets / sizeof g_chi_sets[0]));
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
