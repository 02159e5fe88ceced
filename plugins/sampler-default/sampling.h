/*
 * plugins/sampler-default/sampling.h: the math of the `default` sampler, one
 * row at a time. docs/sampling.md is the specification; this header says
 * which function does which part of it.
 *
 * A static library shared by the plugin (sampler_default.c) and the tests
 * (tests/sampler/), so the tests check the filtered distribution itself and
 * not only draws from it. Nothing here allocates except sd_work_reserve,
 * through the caller's allocator; nothing logs: errors come back as a status
 * and a one-line reason in why[0..why_size).
 *
 * Dimension legend: V = real vocabulary (ids >= V are padding and never
 * sampled), Vp = padded vocabulary (the row stride of the logits).
 */
#ifndef MCRT_SAMPLER_DEFAULT_SAMPLING_H
#define MCRT_SAMPLER_DEFAULT_SAMPLING_H

#include <stddef.h>
#include <stdint.h>

#include "mcrt/params.h" /* mcrt_sampling_params, MCRT_COMPAT_* */
#include "mcrt/status.h" /* mcrt_status */

/* A candidate token for selection and sorting: its logit and its id. The
 * order used everywhere is "larger v first, then lower id", a total order. */
typedef struct sd_pair {
    double v;
    int32_t id;
} sd_pair;

/* Per-instance scratch, grown on demand by sd_work_reserve and reused. */
typedef struct sd_work {
    double *z;        /* [cap] the row's working logits; after sd_filter the filtered
                         logits (-inf = dropped), after sd_weights the weights */
    sd_pair *pairs;   /* [cap] top-k selection, top-p ordering */
    uint32_t *mark;   /* [cap] generation stamps: "seen in this pass" for the penalties */
    int32_t *count;   /* [cap] occurrences of a generated token (valid where marked) */
    uint32_t mark_gen;
    size_t cap;       /* entries each array holds */
} sd_work;

/* The caller's allocator: alloc(ctx, bytes) returns NULL when out of memory. */
typedef struct sd_allocator {
    void *(*alloc)(void *ctx, size_t size);
    void (*free)(void *ctx, void *ptr);
    void *ctx;
} sd_allocator;

/* Make every array of `w` hold at least n entries (n = V). Keeps the arrays
 * when they are large enough (no allocation); otherwise replaces them. On
 * MCRT_E_NOMEM `w` is left empty (cap 0) and stays safe to release. */
mcrt_status sd_work_reserve(sd_work *w, size_t n, const sd_allocator *a);
void sd_work_release(sd_work *w, const sd_allocator *a);

/* One row to sample. All pointers are borrowed for the call. */
typedef struct sd_row {
    const float *logits;                  /* [Vp] raw logits */
    int32_t vocab_size;                   /* V */
    int32_t padded_vocab_size;            /* Vp >= V */
    const mcrt_sampling_params *params;
    const int32_t *history;               /* [history_len] prompt then generated tokens */
    size_t history_len;
    uint64_t draw_index;                  /* tokens generated so far for this request */
    int no_history;                       /* the caller has no history for this row: a row
                                             with penalties is refused */
} sd_row;

/* What sd_filter leaves. */
typedef struct sd_dist {
    int32_t n_kept;   /* tokens the filters keep (their filtered logit is > -inf) */
    int32_t single;   /* the token when the choice is deterministic (n_kept == 1), else -1 */
    double max;       /* the largest filtered logit (finite) */
    double total;     /* after sd_weights: the sum of the weights */
} sd_dist;

/* Check every field of `p` for a vocabulary of `vocab_size` real tokens in
 * p->compat's mode. MCRT_E_INVAL with a reason naming the field, its value
 * and what is allowed; MCRT_OK otherwise. */
mcrt_status sd_check_params(const mcrt_sampling_params *p, int32_t vocab_size, char *why,
                            size_t why_size);

/* Run the pipeline of docs/sampling.md on one row up to (not including) the
 * softmax: checks the parameters (sd_check_params) and the row, then leaves
 * the filtered, temperature-scaled logits in w->z[0..V) (-inf where a token
 * is dropped; a deterministic choice leaves 0 at the chosen id and -inf
 * elsewhere) and fills *out. `w` must hold V entries (sd_work_reserve).
 * MCRT_E_INVAL with a reason for bad parameters, a bad history id, or a row
 * with nothing to sample (every real logit -inf or NaN). */
mcrt_status sd_filter(sd_work *w, const sd_row *row, sd_dist *out, char *why, size_t why_size);

/* Turn the filtered logits of sd_filter into weights exp(z - max) in place
 * (0 for dropped tokens) and set d->total to their sum. */
void sd_weights(sd_work *w, int32_t vocab_size, sd_dist *d);

/* Inverse CDF in id order: the first id whose cumulative weight exceeds
 * u * total, for a uniform u in [0, 1). Never returns a zero-weight id;
 * -1 only when every weight is 0. */
int32_t sd_draw(const double *weights, int32_t vocab_size, double total, double u);

/* The log probability of `token` under the raw logits (no bias, penalty,
 * temperature or filter), NaN read as -inf: MCRT_COMPAT_DEFAULT normalises
 * over the real vocabulary [0, V), MCRT_COMPAT_MEGATRON over the whole
 * padded row [0, Vp), as Megatron-Core does. +inf logits are taken in the
 * limit (they share all the mass). Computed in double. */
double sd_logprob(const float *logits, int32_t vocab_size, int32_t padded_vocab_size,
                  uint32_t compat, int32_t token);

/* Randomness (docs/sampling.md, "Randomness"): counter-based, no state.
 * sd_mix64 is SplitMix64's finaliser; sd_u01 maps 64 bits to [0, 1) with 53
 * random bits. A seeded row's uniform depends on (seed, draw_index) only;
 * an unseeded one on the instance's random key and a per-instance counter. */
uint64_t sd_mix64(uint64_t x);
double sd_u01(uint64_t bits);
double sd_uniform_seeded(int64_t seed, uint64_t draw_index);
double sd_uniform_keyed(uint64_t key, uint64_t counter, uint64_t draw_index);

/* Rearrange a[0..n) so that a[nth] is the element that sorting by the sd_pair
 * order would put there, with no later element before it and no earlier one
 * after it (nth_element). O(n) expected, O(n log n) worst case. nth < n. */
void sd_select(sd_pair *a, size_t n, size_t nth);

/* Sort a[0..n) in the sd_pair order (larger v first, then lower id). */
void sd_sort(sd_pair *a, size_t n);

#endif /* MCRT_SAMPLER_DEFAULT_SAMPLING_H */
