/*
 * mcrt-sampler-greedy: a test-only greedy sampler.
 *
 * Each row's token is the argmax of its raw logits over the real vocabulary
 * [0, vocab_size); ties go to the lowest id; NaN logits are ignored (a row of
 * only NaN is an error). Padding ids [vocab_size, padded_vocab_size) are never
 * chosen. Sampling parameters (temperature, top-k, ...) do not change the
 * choice. Log-prob rule: log_softmax over the real vocabulary of the raw
 * logits (no temperature), taken at the chosen id, computed in double:
 *   logprob = x[c] - (m + log(sum_j exp(x[j] - m))), m = max_j x[j], j < vocab_size.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mcrt/mcrt.h"
#include "toy_common.h"

typedef struct sg_self {
    const mcrt_host *host;
} sg_self;

static mcrt_status sg_create(const mcrt_host *host, const mcrt_config *cfg, void **out_self)
{
    sg_self *self;
    mcrt_status st = toy_check_host(host);
    (void)cfg;
    if (st != MCRT_OK)
        return st;
    if (out_self == NULL) {
        toy_log(host, MCRT_LOG_ERROR, "create: out_self is NULL");
        return MCRT_E_INVAL;
    }
    self = (sg_self *)toy_calloc(host, 1, sizeof *self);
    if (self == NULL) {
        toy_log(host, MCRT_LOG_ERROR, "out of memory creating the greedy sampler");
        return MCRT_E_NOMEM;
    }
    self->host = host;
    *out_self = self;
    return MCRT_OK;
}

static void sg_destroy(void *vself)
{
    sg_self *self = (sg_self *)vself;
    if (self != NULL)
        toy_free(self->host, self);
}

static mcrt_status sg_validate(void *vself, const mcrt_sampling_params *params,
                               int32_t vocab_size)
{
    sg_self *self = (sg_self *)vself;
    (void)vocab_size;
    if (params == NULL || !MCRT_HAS(params, temperature)) {
        toy_log(self->host, MCRT_LOG_ERROR, "validate: sampling params are NULL or too old");
        return MCRT_E_INVAL;
    }
    if (!(params->temperature >= 0.0f)) { /* also rejects NaN */
        toy_log(self->host, MCRT_LOG_ERROR, "temperature must be >= 0 (got %g)",
                (double)params->temperature);
        return MCRT_E_INVAL;
    }
    return MCRT_OK;
}

/* The lowest id with the largest non-NaN logit in x[0..n), or -1 when all are NaN. */
static int32_t sg_argmax(const float *x, int32_t n)
{
    int32_t j, best = -1;
    for (j = 0; j < n; j++)
        if (!isnan(x[j]) && (best < 0 || x[j] > x[best]))
            best = j;
    return best;
}

/* log_softmax(x[0..n))[best] where x[best] is the maximum (NaN entries are
 * left out). Infinite maxima are taken in the limit: the maximum's share is
 * 1 / (number of entries equal to it). */
static float sg_logprob_of_max(const float *x, int32_t n, int32_t best)
{
    double m = (double)x[best], z = 0.0;
    int32_t j, ties = 0;
    if (isinf(m)) {
        for (j = 0; j < n; j++)
            if (x[j] == x[best])
                ties++;
        return (float)-log((double)ties);
    }
    for (j = 0; j < n; j++)
        if (!isnan(x[j]))
            z += exp((double)x[j] - m);
    return (float)-log(z); /* x[best] - m == 0 */
}

static mcrt_status sg_sample(void *vself, const mcrt_sample_batch *batch, int32_t *out_tokens,
                             float *out_logprobs)
{
    sg_self *self = (sg_self *)vself;
    const mcrt_host *host = self->host;
    uint32_t r;

    if (batch == NULL || !MCRT_HAS(batch, logits) || out_tokens == NULL) {
        toy_log(host, MCRT_LOG_ERROR, "sample: the batch or out_tokens is NULL (or too old)");
        return MCRT_E_INVAL;
    }
    if (batch->n_rows == 0)
        return MCRT_OK;
    if (batch->vocab_size <= 0 || batch->padded_vocab_size < batch->vocab_size ||
        batch->logits == NULL) {
        toy_log(host, MCRT_LOG_ERROR,
                "sample: bad batch (vocab_size %d, padded_vocab_size %d, logits %s)",
                (int)batch->vocab_size, (int)batch->padded_vocab_size,
                batch->logits == NULL ? "NULL" : "set");
        return MCRT_E_INVAL;
    }
    /* Check every row first: out-parameters are written only on success. */
    for (r = 0; r < batch->n_rows; r++) {
        if (sg_argmax(batch->logits + (size_t)r * (size_t)batch->padded_vocab_size,
                      batch->vocab_size) < 0) {
            toy_log(host, MCRT_LOG_ERROR, "sample: row %u: every logit is NaN", r);
            return MCRT_E_INVAL;
        }
    }
    for (r = 0; r < batch->n_rows; r++) {
        const float *x = batch->logits + (size_t)r * (size_t)batch->padded_vocab_size;
        int32_t best = sg_argmax(x, batch->vocab_size);
        out_tokens[r] = best;
        if (out_logprobs != NULL)
            out_logprobs[r] = sg_logprob_of_max(x, batch->vocab_size, best);
    }
    return MCRT_OK;
}

static const mcrt_sampler_iface sg_iface = {
    (uint32_t)sizeof(mcrt_sampler_iface),
    sg_create,
    sg_destroy,
    sg_validate,
    sg_sample,
};

static const void *sg_get_iface(const char *iface_id)
{
    if (iface_id != NULL && strcmp(iface_id, MCRT_IFACE_SAMPLER) == 0)
        return &sg_iface;
    return NULL;
}

MCRT_PLUGIN_DEFINE(MCRT_KIND_SAMPLER, "greedy", "0.1.0",
                   "test-only: argmax over the real vocabulary, lowest id on ties", NULL, NULL,
                   NULL, NULL, sg_get_iface);
