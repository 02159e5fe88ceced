/*
 * plugins/sampler-default/sampling.c: the sampling math, one row at a time
 * (specification: docs/sampling.md; interface: sampling.h).
 *
 * Numerics: everything after the float logits are read is double. A row's
 * logits are copied to w->z[0..V) as doubles (NaN -> -inf; the padding ids
 * [V, Vp) are never copied, so they can never be chosen), then each stage
 * rewrites w->z in place. Dividing by a tiny temperature cannot overflow a
 * double (|float| < 3.4e38, temperature >= 1.4e-45 as a float), so the
 * stages never meet an infinity they did not get from the input.
 *
 * Cost per row: O(V) for the copy, bias, penalties (O(history) more),
 * temperature, top-k (a heap of k or a selection, not a sort), min-p and the
 * weights. Top-p buckets the row by probability in O(V) and sorts only the
 * bucket where its boundary falls (see sd_top_p), so the worst case (a flat
 * distribution) is one O(V log V) sort.
 */
#include "sampling.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcrt/plugin.h" /* MCRT_HAS */

#if defined(__GNUC__) || defined(__clang__)
#define SD_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define SD_PRINTF(fmt_index, first_arg)
#endif

/* ---- scratch ------------------------------------------------------------------ */

mcrt_status sd_work_reserve(sd_work *w, size_t n, const sd_allocator *a)
{
    if (n == 0)
        n = 1;
    if (w->cap >= n)
        return MCRT_OK;
    sd_work_release(w, a);
    w->z = a->alloc(a->ctx, n * sizeof *w->z);
    w->pairs = a->alloc(a->ctx, n * sizeof *w->pairs);
    w->mark = a->alloc(a->ctx, n * sizeof *w->mark);
    w->count = a->alloc(a->ctx, n * sizeof *w->count);
    if (w->z == NULL || w->pairs == NULL || w->mark == NULL || w->count == NULL) {
        sd_work_release(w, a);
        return MCRT_E_NOMEM;
    }
    memset(w->mark, 0, n * sizeof *w->mark);
    w->mark_gen = 0;
    w->cap = n;
    return MCRT_OK;
}

void sd_work_release(sd_work *w, const sd_allocator *a)
{
    if (w->z != NULL)
        a->free(a->ctx, w->z);
    if (w->pairs != NULL)
        a->free(a->ctx, w->pairs);
    if (w->mark != NULL)
        a->free(a->ctx, w->mark);
    if (w->count != NULL)
        a->free(a->ctx, w->count);
    memset(w, 0, sizeof *w);
}

/* A fresh stamp for w->mark; on wrap-around the stamps are cleared. */
static uint32_t sd_next_gen(sd_work *w)
{
    if (++w->mark_gen == 0) {
        memset(w->mark, 0, w->cap * sizeof *w->mark);
        w->mark_gen = 1;
    }
    return w->mark_gen;
}

/* ---- reasons ------------------------------------------------------------------ */

/* Write a reason (when why is not NULL) and return MCRT_E_INVAL. */
static mcrt_status sd_refuse(char *why, size_t why_size, const char *fmt, ...) SD_PRINTF(3, 4);
static mcrt_status sd_refuse(char *why, size_t why_size, const char *fmt, ...)
{
    if (why != NULL && why_size > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_size, fmt, ap);
        va_end(ap);
    }
    return MCRT_E_INVAL;
}

/* ---- parameters ------------------------------------------------------------- */

/* In megatron mode, a parameter Megatron-Core does not have must keep its
 * "off" value (docs/sampling.md, "compat: megatron"). */
static mcrt_status sd_not_megatron(char *why, size_t why_size, const char *field, double value)
{
    return sd_refuse(why, why_size,
                     "%s = %g: Megatron-Core has no %s; compat megatron takes temperature, "
                     "top_k and top_p only (use compat: default for %s)",
                     field, value, field, field);
}

mcrt_status sd_check_params(const mcrt_sampling_params *p, int32_t vocab_size, char *why,
                            size_t why_size)
{
    if (p == NULL)
        return sd_refuse(why, why_size, "the sampling parameters are NULL");
    if (!MCRT_HAS(p, n_logit_bias))
        return sd_refuse(why, why_size,
                         "the sampling parameters' struct_size %u is smaller than ABI 1.0's "
                         "mcrt_sampling_params (%zu bytes)",
                         (unsigned)p->struct_size, sizeof(mcrt_sampling_params));
    if (vocab_size <= 0)
        return sd_refuse(why, why_size, "vocab_size = %d: must be > 0", (int)vocab_size);
    if (p->compat != MCRT_COMPAT_DEFAULT && p->compat != MCRT_COMPAT_MEGATRON)
        return sd_refuse(why, why_size,
                         "compat = %u: must be %d (default: OpenAI/vLLM) or %d (megatron)",
                         (unsigned)p->compat, MCRT_COMPAT_DEFAULT, MCRT_COMPAT_MEGATRON);
    bool meg = p->compat == MCRT_COMPAT_MEGATRON;
    if (!(p->temperature >= 0.0f) || isinf(p->temperature))
        return sd_refuse(why, why_size,
                         "temperature = %g: must be a finite number >= 0 (0 = greedy)",
                         (double)p->temperature);
    if (p->top_k < 0)
        return sd_refuse(why, why_size, "top_k = %d: must be >= 0 (0 = off)", (int)p->top_k);
    if (!(p->top_p >= 0.0f && p->top_p <= 1.0f))
        return sd_refuse(why, why_size, "top_p = %g: must be in [0, 1] (%s = off)",
                         (double)p->top_p, meg ? "0" : "1");
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return sd_refuse(why, why_size, "min_p = %g: must be in [0, 1] (0 = off)",
                         (double)p->min_p);
    if (!(p->repetition_penalty > 0.0f) || isinf(p->repetition_penalty))
        return sd_refuse(why, why_size,
                         "repetition_penalty = %g: must be a finite number > 0 (1 = off)",
                         (double)p->repetition_penalty);
    if (!isfinite(p->presence_penalty))
        return sd_refuse(why, why_size, "presence_penalty = %g: must be a finite number (0 = off)",
                         (double)p->presence_penalty);
    if (!isfinite(p->frequency_penalty))
        return sd_refuse(why, why_size,
                         "frequency_penalty = %g: must be a finite number (0 = off)",
                         (double)p->frequency_penalty);
    if (p->num_tokens_to_generate < 0)
        return sd_refuse(why, why_size, "num_tokens_to_generate = %d: must be >= 0",
                         (int)p->num_tokens_to_generate);
    if (p->seed < -1)
        return sd_refuse(why, why_size,
                         "seed = %lld: must be >= 0, or -1 for a nondeterministic seed",
                         (long long)p->seed);
    if (p->top_n_logprobs < 0 || p->top_n_logprobs > 20)
        return sd_refuse(why, why_size, "top_n_logprobs = %d: must be in [0, 20]",
                         (int)p->top_n_logprobs);
    if (p->n_logit_bias > 0 && (p->logit_bias_ids == NULL || p->logit_bias_values == NULL))
        return sd_refuse(why, why_size,
                         "n_logit_bias = %u but logit_bias_ids or logit_bias_values is NULL",
                         (unsigned)p->n_logit_bias);
    for (uint32_t j = 0; j < p->n_logit_bias; j++) {
        int32_t id = p->logit_bias_ids[j];
        float v = p->logit_bias_values[j];
        if (id < 0 || id >= vocab_size)
            return sd_refuse(why, why_size,
                             "logit_bias_ids[%u] = %d: must be a token id in [0, %d) (the real "
                             "vocabulary)",
                             (unsigned)j, (int)id, (int)vocab_size);
        if (!isfinite(v))
            return sd_refuse(why, why_size,
                             "logit_bias_values[%u] = %g (token %d): must be a finite number",
                             (unsigned)j, (double)v, (int)id);
    }
    if (!meg)
        return MCRT_OK;

    /* compat megatron: Megatron-Core's sample_from_logits (reference §1.5.4). */
    if (p->top_k > 0 && p->top_p > 0.0f)
        return sd_refuse(why, why_size,
                         "top_k = %d and top_p = %g are both set: compat megatron refuses top-k "
                         "together with top-p, as Megatron-Core asserts (\"Cannot have top-p and "
                         "top-k both greater than zero\"); set one of them to 0, or use "
                         "compat: default, where they compose",
                         (int)p->top_k, (double)p->top_p);
    if (p->top_k > 1 && p->top_k >= vocab_size)
        return sd_refuse(why, why_size,
                         "top_k = %d: compat megatron needs top_k < vocab_size (%d), as "
                         "Megatron-Core asserts (0 = off, 1 = greedy)",
                         (int)p->top_k, (int)vocab_size);
    if (p->min_p != 0.0f)
        return sd_not_megatron(why, why_size, "min_p", (double)p->min_p);
    if (p->repetition_penalty != 1.0f)
        return sd_not_megatron(why, why_size, "repetition_penalty", (double)p->repetition_penalty);
    if (p->presence_penalty != 0.0f)
        return sd_not_megatron(why, why_size, "presence_penalty", (double)p->presence_penalty);
    if (p->frequency_penalty != 0.0f)
        return sd_not_megatron(why, why_size, "frequency_penalty", (double)p->frequency_penalty);
    if (p->n_logit_bias != 0)
        return sd_refuse(why, why_size,
                         "n_logit_bias = %u: Megatron-Core has no logit bias; compat megatron "
                         "takes temperature, top_k and top_p only (use compat: default for a "
                         "logit bias)",
                         (unsigned)p->n_logit_bias);
    return MCRT_OK;
}

/* ---- selection and sorting ---------------------------------------------------- */

/* The sd_pair order: larger value first, then lower id. A total order (ids
 * are distinct; values are never NaN here). */
static inline bool sd_before(const sd_pair *a, const sd_pair *b)
{
    return a->v > b->v || (a->v == b->v && a->id < b->id);
}

static inline void sd_swap(sd_pair *a, sd_pair *b)
{
    sd_pair t = *a;
    *a = *b;
    *b = t;
}

static int sd_cmp(const void *pa, const void *pb)
{
    const sd_pair *a = pa, *b = pb;
    if (sd_before(a, b))
        return -1;
    return sd_before(b, a) ? 1 : 0;
}

void sd_sort(sd_pair *a, size_t n)
{
    if (n > 1)
        qsort(a, n, sizeof *a, sd_cmp);
}

static void sd_insertion_sort(sd_pair *a, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        sd_pair x = a[i];
        size_t j = i;
        while (j > 0 && sd_before(&x, &a[j - 1])) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = x;
    }
}

/* Quickselect with a median-of-three pivot (Sedgewick's partition, the
 * median's neighbours as sentinels); after 2 log2(n) + 4 rounds without
 * reaching nth it sorts what is left, so the worst case is O(n log n). */
void sd_select(sd_pair *a, size_t n, size_t nth)
{
    size_t lo = 0, hi = n; /* nth is in [lo, hi) */
    int budget = 4;
    for (size_t m = n; m > 1; m >>= 1)
        budget += 2;
    while (hi - lo > 16) {
        if (budget-- == 0) {
            sd_sort(a + lo, hi - lo);
            return;
        }
        size_t mid = lo + (hi - lo) / 2;
        if (sd_before(&a[mid], &a[lo]))
            sd_swap(&a[mid], &a[lo]);
        if (sd_before(&a[hi - 1], &a[lo]))
            sd_swap(&a[hi - 1], &a[lo]);
        if (sd_before(&a[hi - 1], &a[mid]))
            sd_swap(&a[hi - 1], &a[mid]);
        /* a[lo] <= a[mid] <= a[hi-1] in the order; the pivot goes to hi-2. */
        sd_swap(&a[mid], &a[hi - 2]);
        const sd_pair pivot = a[hi - 2];
        size_t i = lo, j = hi - 2;
        for (;;) {
            while (sd_before(&a[++i], &pivot))
                ;
            while (sd_before(&pivot, &a[--j]))
                ;
            if (i >= j)
                break;
            sd_swap(&a[i], &a[j]);
        }
        sd_swap(&a[i], &a[hi - 2]);
        if (nth == i)
            return;
        if (nth < i)
            hi = i;
        else
            lo = i + 1;
    }
    sd_insertion_sort(a + lo, hi - lo);
}

/* ---- the stages --------------------------------------------------------------- */

/* Repetition penalty over every token of the history (each distinct token
 * once), then presence and frequency penalties over the generated tokens:
 * the last draw_index entries of the history. */
static mcrt_status sd_penalties(sd_work *w, const sd_row *row, char *why, size_t why_size)
{
    const mcrt_sampling_params *p = row->params;
    const bool rep = p->repetition_penalty != 1.0f;
    const bool pf = p->presence_penalty != 0.0f || p->frequency_penalty != 0.0f;
    const int32_t *h = row->history;
    const size_t len = row->history_len;
    double *z = w->z;
    if (!rep && !pf)
        return MCRT_OK;
    if (row->no_history)
        return sd_refuse(why, why_size,
                         "repetition_penalty, presence_penalty or frequency_penalty is set but "
                         "the batch carries no history (history or history_len is NULL)");
    if (len > 0 && h == NULL)
        return sd_refuse(why, why_size,
                         "the history is NULL but history_len is %zu (the penalties need it)",
                         len);
    for (size_t i = 0; i < len; i++)
        if (h[i] < 0 || h[i] >= row->vocab_size)
            return sd_refuse(why, why_size, "history[%zu] = %d is not a token id in [0, %d)", i,
                             (int)h[i], (int)row->vocab_size);
    if (rep) {
        const double pen = (double)p->repetition_penalty;
        const uint32_t gen = sd_next_gen(w);
        for (size_t i = 0; i < len; i++) {
            int32_t t = h[i];
            if (w->mark[t] == gen)
                continue;
            w->mark[t] = gen;
            z[t] = z[t] > 0.0 ? z[t] / pen : z[t] * pen;
        }
    }
    if (pf) {
        const double pres = (double)p->presence_penalty, freq = (double)p->frequency_penalty;
        const size_t n_gen = row->draw_index < (uint64_t)len ? (size_t)row->draw_index : len;
        const uint32_t gen = sd_next_gen(w);
        for (size_t i = len - n_gen; i < len; i++) {
            int32_t t = h[i];
            if (w->mark[t] != gen) {
                w->mark[t] = gen;
                w->count[t] = 0;
            }
            w->count[t]++;
        }
        for (size_t i = len - n_gen; i < len; i++) {
            int32_t t = h[i];
            if (w->count[t] > 0) {
                z[t] = z[t] - freq * (double)w->count[t] - pres;
                w->count[t] = 0; /* done: each distinct token once */
            }
        }
    }
    return MCRT_OK;
}

/* The k-th largest of w->z[0..V) (0 < k < V), counting repeated values, as
 * torch.topk(z, k).values[-1]. Small k: a min-heap of the k largest in
 * w->pairs' memory, O(V + k log k · log V) for typical rows (most values lose
 * to the heap's minimum at once); large k: selection, O(V) expected. */
#define SD_HEAP_MAX_K 4096

static void sd_sift_down(double *h, int32_t n, int32_t i)
{
    const double x = h[i];
    for (;;) {
        int32_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && h[c + 1] < h[c])
            c++;
        if (!(h[c] < x))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

static double sd_kth_largest(sd_work *w, int32_t V, int32_t k)
{
    const double *z = w->z;
    if (k <= SD_HEAP_MAX_K) {
        double *h = (double *)(void *)w->pairs; /* V pairs hold >= 2V doubles */
        for (int32_t i = 0; i < k; i++)
            h[i] = z[i];
        for (int32_t i = k / 2 - 1; i >= 0; i--)
            sd_sift_down(h, k, i);
        for (int32_t i = k; i < V; i++) {
            if (z[i] > h[0]) {
                h[0] = z[i];
                sd_sift_down(h, k, 0);
            }
        }
        return h[0];
    }
    sd_pair *a = w->pairs;
    for (int32_t i = 0; i < V; i++) {
        a[i].v = z[i];
        a[i].id = i;
    }
    sd_select(a, (size_t)V, (size_t)k - 1);
    return a[k - 1].v;
}

/* Nucleus: keep the head of the distribution in the sd_pair order. With the
 * exclusive prefix mass c_j (the mass of the tokens before j), token j is
 * kept when j == 0 or c_j < top_p (default: the smallest head whose mass
 * reaches top_p) or c_j <= top_p (megatron: Megatron's "cum > top_p shifted
 * right by one").
 *
 * Without sorting the row: one pass puts every candidate in a bucket by its
 * distance below the maximum, m - z, in steps of 1/SD_BUCKETS_PER_NAT (the
 * last bucket takes everything further than SD_BUCKET_SPAN), summing each
 * bucket's mass. Bucket order is sd_pair order between buckets, so every
 * bucket before the first one whose cumulative mass meets the drop rule is
 * kept whole, every bucket after it is dropped whole, and only that one
 * bucket is sorted to find the boundary token. The mass before a token is the
 * bucket sums plus the sorted bucket's own prefix: the same value as a
 * cumulative sum over the sorted row up to rounding (~1e-16). Worst case: one
 * bucket holds the whole row (a flat distribution), an O(V log V) sort. */
#define SD_BUCKETS_PER_NAT 8
#define SD_BUCKET_SPAN 32 /* nats: e^-32 = 1.3e-14 of the top token's mass */
#define SD_NBUCKETS (SD_BUCKETS_PER_NAT * SD_BUCKET_SPAN + 1)

static inline int sd_bucket(double m, double z)
{
    const double d = (m - z) * SD_BUCKETS_PER_NAT; /* >= 0 */
    return d < (double)(SD_NBUCKETS - 1) ? (int)d : SD_NBUCKETS - 1;
}

static void sd_top_p(sd_work *w, int32_t V, double m, double top_p, bool meg)
{
    double *z = w->z;
    double mass[SD_NBUCKETS];
    double s = 0.0;
    memset(mass, 0, sizeof mass);
    for (int32_t i = 0; i < V; i++) {
        if (z[i] > -INFINITY) {
            const double e = exp(z[i] - m);
            mass[sd_bucket(m, z[i])] += e;
            s += e;
        }
    }
    /* The first bucket c whose cumulative mass meets the drop rule; `before`
     * is the (normalised) mass of the buckets before it. */
    int c = -1;
    double before = 0.0;
    for (int b = 0; b < SD_NBUCKETS; b++) {
        const double through = before + mass[b] / s;
        if (meg ? through > top_p : through >= top_p) {
            c = b;
            break;
        }
        before = through;
    }
    if (c < 0)
        return; /* the whole row is within top_p (rounding at top_p near 1) */
    /* Sort bucket c; drop the buckets after it. */
    sd_pair *a = w->pairs;
    size_t n = 0;
    for (int32_t i = 0; i < V; i++) {
        if (!(z[i] > -INFINITY))
            continue;
        const int b = sd_bucket(m, z[i]);
        if (b == c) {
            a[n].v = z[i];
            a[n].id = i;
            n++;
        } else if (b > c) {
            z[i] = -INFINITY;
        }
    }
    /* Bucket 0 holds the top token, so a bucket c > 0 follows kept tokens; the
     * rule did not hold at `before`, so the walk never drops a whole bucket
     * and the top token is always kept. */
    sd_sort(a, n);
    double cum = before;
    size_t j = 0;
    for (; j < n; j++) {
        if (j > 0 && (meg ? cum > top_p : cum >= top_p))
            break;
        cum += exp(a[j].v - m) / s;
    }
    for (; j < n; j++)
        z[a[j].id] = -INFINITY;
}

mcrt_status sd_filter(sd_work *w, const sd_row *row, sd_dist *out, char *why, size_t why_size)
{
    if (w == NULL || row == NULL || out == NULL)
        return sd_refuse(why, why_size, "sd_filter: NULL argument");
    const mcrt_sampling_params *p = row->params;
    const int32_t V = row->vocab_size;
    mcrt_status st = sd_check_params(p, V, why, why_size);
    if (st != MCRT_OK)
        return st;
    if (row->padded_vocab_size < V)
        return sd_refuse(why, why_size, "padded_vocab_size = %d is smaller than vocab_size = %d",
                         (int)row->padded_vocab_size, (int)V);
    if (row->logits == NULL)
        return sd_refuse(why, why_size, "the logits are NULL");
    if (w->cap < (size_t)V) {
        sd_refuse(why, why_size, "sd_filter: the scratch holds %zu entries, the row needs %d",
                  w->cap, (int)V);
        return MCRT_E_INTERNAL;
    }
    const bool meg = p->compat == MCRT_COMPAT_MEGATRON;
    double *z = w->z;

    /* 1. The real vocabulary only; NaN is -inf. */
    for (int32_t i = 0; i < V; i++) {
        float x = row->logits[i];
        z[i] = isnan(x) ? -INFINITY : (double)x;
    }
    /* 2. Logit bias, then the penalties (default mode; megatron refuses them). */
    if (!meg) {
        for (uint32_t j = 0; j < p->n_logit_bias; j++)
            z[p->logit_bias_ids[j]] += (double)p->logit_bias_values[j];
        if ((st = sd_penalties(w, row, why, why_size)) != MCRT_OK)
            return st;
    }
    /* 3. Something to sample; +inf logits share all the mass (softmax's limit). */
    double m = -INFINITY;
    for (int32_t i = 0; i < V; i++)
        if (z[i] > m)
            m = z[i];
    if (m == -INFINITY)
        return sd_refuse(why, why_size,
                         "nothing to sample: every logit of the real vocabulary [0, %d) is -inf "
                         "or NaN",
                         (int)V);
    if (m == INFINITY) {
        for (int32_t i = 0; i < V; i++)
            z[i] = z[i] == INFINITY ? 0.0 : -INFINITY;
        m = 0.0;
    }
    /* 4. Greedy: default temperature 0; megatron top_k 1 (temperature ignored)
     * or temperature 0 (as Megatron's server maps it). Lowest id on ties. */
    const double temp = (double)p->temperature;
    if (temp == 0.0 || (meg && p->top_k == 1)) {
        int32_t best = 0;
        while (z[best] != m)
            best++;
        for (int32_t i = 0; i < V; i++)
            z[i] = -INFINITY;
        z[best] = 0.0;
        out->n_kept = 1;
        out->single = best;
        out->max = 0.0;
        out->total = 0.0;
        return MCRT_OK;
    }
    /* 5. Temperature. */
    if (temp != 1.0) {
        for (int32_t i = 0; i < V; i++)
            z[i] /= temp;
        m /= temp;
    }
    /* 6. Top-k: keep the logits >= the k-th largest (ties at it kept). */
    const int32_t k = p->top_k;
    if (k > 0 && k < V) {
        const double kth = sd_kth_largest(w, V, k);
        for (int32_t i = 0; i < V; i++)
            if (z[i] < kth)
                z[i] = -INFINITY;
    }
    /* 7. Top-p (megatron: only without top-k, which validation ensures). */
    if (meg ? (p->top_p > 0.0f && k == 0) : p->top_p < 1.0f)
        sd_top_p(w, V, m, (double)p->top_p, meg);
    /* 8. Min-p (default mode): drop p_i < min_p * p_max. */
    if (!meg && p->min_p > 0.0f) {
        const double min_p = (double)p->min_p;
        for (int32_t i = 0; i < V; i++)
            if (z[i] > -INFINITY && exp(z[i] - m) < min_p)
                z[i] = -INFINITY;
    }
    int32_t kept = 0, single = -1;
    for (int32_t i = 0; i < V; i++) {
        if (z[i] > -INFINITY) {
            kept++;
            single = i;
        }
    }
    out->n_kept = kept;
    out->single = kept == 1 ? single : -1;
    out->max = m;
    out->total = 0.0;
    return MCRT_OK;
}

void sd_weights(sd_work *w, int32_t vocab_size, sd_dist *d)
{
    double *z = w->z, total = 0.0;
    for (int32_t i = 0; i < vocab_size; i++) {
        if (z[i] > -INFINITY) {
            z[i] = exp(z[i] - d->max);
            total += z[i];
        } else {
            z[i] = 0.0;
        }
    }
    d->total = total;
}

int32_t sd_draw(const double *weights, int32_t vocab_size, double total, double u)
{
    const double target = u * total;
    double cum = 0.0;
    int32_t last = -1;
    for (int32_t i = 0; i < vocab_size; i++) {
        if (weights[i] > 0.0) {
            cum += weights[i];
            last = i;
            if (target < cum)
                return i;
        }
    }
    return last; /* u * total rounded up to the whole mass */
}

/* ---- log probabilities -------------------------------------------------------- */

double sd_logprob(const float *logits, int32_t vocab_size, int32_t padded_vocab_size,
                  uint32_t compat, int32_t token)
{
    const int32_t n = compat == MCRT_COMPAT_MEGATRON ? padded_vocab_size : vocab_size;
    if (logits == NULL || token < 0 || token >= n)
        return NAN;
    double m = -INFINITY;
    for (int32_t i = 0; i < n; i++)
        if (!isnan(logits[i]) && (double)logits[i] > m)
            m = (double)logits[i];
    const double xt = isnan(logits[token]) ? -INFINITY : (double)logits[token];
    if (m == -INFINITY)
        return NAN; /* no mass anywhere */
    if (m == INFINITY) {
        int32_t ties = 0;
        for (int32_t i = 0; i < n; i++)
            if (logits[i] == INFINITY)
                ties++;
        return xt == INFINITY ? -log((double)ties) : -INFINITY;
    }
    if (xt == -INFINITY)
        return -INFINITY;
    double s = 0.0;
    for (int32_t i = 0; i < n; i++)
        if (!isnan(logits[i]))
            s += exp((double)logits[i] - m);
    return (xt - m) - log(s);
}

/* ---- randomness --------------------------------------------------------------- */

#define SD_GOLDEN 0x9E3779B97F4A7C15ull   /* 2^64 / phi, SplitMix64's increment */
#define SD_INDEX_MUL 0xD1B54A32D192ED03ull /* an odd multiplier for the draw index */
#define SD_COUNTER_SALT 0x8CB92BA72F3D8DD7ull

uint64_t sd_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBull;
    x ^= x >> 31;
    return x;
}

double sd_u01(uint64_t bits)
{
    return (double)(bits >> 11) * 0x1.0p-53;
}

/* u = U01(mix(key(seed) xor mix(draw_index * M + G))): for one seed, distinct
 * draw indices give distinct 64-bit words (mix64 is a bijection). */
double sd_uniform_seeded(int64_t seed, uint64_t draw_index)
{
    const uint64_t key = sd_mix64((uint64_t)seed + SD_GOLDEN);
    return sd_u01(sd_mix64(key ^ sd_mix64(draw_index * SD_INDEX_MUL + SD_GOLDEN)));
}

double sd_uniform_keyed(uint64_t key, uint64_t counter, uint64_t draw_index)
{
    const uint64_t k = sd_mix64(key ^ sd_mix64(counter * SD_GOLDEN + SD_COUNTER_SALT));
    return sd_u01(sd_mix64(k ^ sd_mix64(draw_index * SD_INDEX_MUL + SD_GOLDEN)));
}
