/*
 * mcrt-sampler-default: the shipped sampler, Megatron-Core's
 * sample_from_logits level (logits -> one token per row), the plugin around
 * sampling.c.
 *
 *   sampler:
 *     name: default                  # or auto; this plugin has no keys
 *
 * Semantics follow each row's params->compat: OpenAI/vLLM by default,
 * Megatron-Core exactly with compat megatron (docs/sampling.md). Seeded rows
 * draw from (seed, draw_index) only, so a request gets the same tokens in any
 * batch; unseeded rows (seed -1) from a per-instance random key.
 *
 * Memory: the scratch (sampling.h's sd_work, 32 bytes per vocabulary entry,
 * plus the staged outputs) comes from host->alloc, grows on demand and is
 * reused: a call that fits what an earlier one needed allocates nothing.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h> /* getrandom */

#include "mcrt/mcrt.h"
#include "sampling.h"

typedef struct sdp_self {
    const mcrt_host *host;
    sd_work work;
    int32_t *tokens;   /* [rows_cap] staged: out-parameters are written only on success */
    float *logprobs;   /* [rows_cap] */
    size_t rows_cap;
    uint64_t key;      /* random, per instance: the stream of unseeded rows */
    uint64_t counter;  /* unseeded draws so far */
    char why[512];
} sdp_self;

static void *sdp_alloc(void *ctx, size_t size)
{
    const mcrt_host *host = ctx;
    return host->alloc(host, size, 0);
}

static void sdp_free(void *ctx, void *ptr)
{
    const mcrt_host *host = ctx;
    host->free(host, ptr);
}

static sd_allocator sdp_allocator(const sdp_self *self)
{
    sd_allocator a = {sdp_alloc, sdp_free, (void *)self->host};
    return a;
}

/* A 64-bit key nobody chose: getrandom, else the clock and an address. */
static uint64_t sdp_random_key(const mcrt_host *host, const void *addr)
{
    uint64_t key = 0;
    if (getrandom(&key, sizeof key, GRND_NONBLOCK) != (ssize_t)sizeof key)
        key = sd_mix64(host->clock_ns(host)) ^ sd_mix64((uint64_t)(uintptr_t)addr);
    return key;
}

static mcrt_status sdp_create(const mcrt_host *host, const mcrt_config *cfg, void **out_self)
{
    (void)cfg;
    if (host == NULL || !MCRT_HAS(host, clock_ns) || host->alloc == NULL || host->free == NULL ||
        host->log == NULL || host->clock_ns == NULL)
        return MCRT_E_INVAL;
    if (out_self == NULL) {
        host->log(host, MCRT_LOG_ERROR, "create: out_self is NULL");
        return MCRT_E_INVAL;
    }
    sdp_self *self = host->alloc(host, sizeof *self, 0);
    if (self == NULL) {
        host->log(host, MCRT_LOG_ERROR, "out of memory creating the sampler");
        return MCRT_E_NOMEM;
    }
    memset(self, 0, sizeof *self);
    self->host = host;
    self->key = sdp_random_key(host, self);
    *out_self = self;
    return MCRT_OK;
}

static void sdp_destroy(void *vself)
{
    sdp_self *self = vself;
    if (self == NULL)
        return;
    const mcrt_host *host = self->host;
    sd_allocator a = sdp_allocator(self);
    sd_work_release(&self->work, &a);
    if (self->tokens != NULL)
        host->free(host, self->tokens);
    if (self->logprobs != NULL)
        host->free(host, self->logprobs);
    host->free(host, self);
}

static mcrt_status sdp_validate(void *vself, const mcrt_sampling_params *params,
                                int32_t vocab_size)
{
    sdp_self *self = vself;
    if (self == NULL)
        return MCRT_E_INVAL;
    mcrt_status st = sd_check_params(params, vocab_size, self->why, sizeof self->why);
    if (st != MCRT_OK)
        self->host->log(self->host, MCRT_LOG_ERROR, "%s", self->why);
    return st;
}

/* Room for n rows of staged output and a vocabulary of V. */
static mcrt_status sdp_reserve(sdp_self *self, uint32_t n, int32_t V)
{
    const mcrt_host *host = self->host;
    sd_allocator a = sdp_allocator(self);
    if (sd_work_reserve(&self->work, (size_t)V, &a) != MCRT_OK) {
        host->log(host, MCRT_LOG_ERROR, "sample: out of memory for a vocabulary of %d",
                  (int)V);
        return MCRT_E_NOMEM;
    }
    if (self->rows_cap >= n)
        return MCRT_OK;
    int32_t *t = host->alloc(host, (size_t)n * sizeof *t, 0);
    float *l = host->alloc(host, (size_t)n * sizeof *l, 0);
    if (t == NULL || l == NULL) {
        if (t != NULL)
            host->free(host, t);
        if (l != NULL)
            host->free(host, l);
        host->log(host, MCRT_LOG_ERROR, "sample: out of memory for %u rows", (unsigned)n);
        return MCRT_E_NOMEM;
    }
    if (self->tokens != NULL)
        host->free(host, self->tokens);
    if (self->logprobs != NULL)
        host->free(host, self->logprobs);
    self->tokens = t;
    self->logprobs = l;
    self->rows_cap = n;
    return MCRT_OK;
}

static mcrt_status sdp_sample(void *vself, const mcrt_sample_batch *batch, int32_t *out_tokens,
                              float *out_logprobs)
{
    sdp_self *self = vself;
    if (self == NULL)
        return MCRT_E_INVAL;
    const mcrt_host *host = self->host;
    if (batch == NULL || !MCRT_HAS(batch, draw_index) || out_tokens == NULL) {
        host->log(host, MCRT_LOG_ERROR,
                  "sample: the batch or out_tokens is NULL, or the batch's struct_size is "
                  "older than ABI 1.0's mcrt_sample_batch");
        return MCRT_E_INVAL;
    }
    const uint32_t R = batch->n_rows;
    const int32_t V = batch->vocab_size, Vp = batch->padded_vocab_size;
    if (R == 0)
        return MCRT_OK;
    if (V <= 0 || Vp < V || batch->logits == NULL || batch->params == NULL ||
        batch->draw_index == NULL) {
        host->log(host, MCRT_LOG_ERROR,
                  "sample: bad batch (vocab_size %d, padded_vocab_size %d, logits %s, params "
                  "%s, draw_index %s)",
                  (int)V, (int)Vp, batch->logits ? "set" : "NULL",
                  batch->params ? "set" : "NULL", batch->draw_index ? "set" : "NULL");
        return MCRT_E_INVAL;
    }
    mcrt_status st = sdp_reserve(self, R, V);
    if (st != MCRT_OK)
        return st;
    for (uint32_t r = 0; r < R; r++) {
        const mcrt_sampling_params *p = batch->params[r];
        const bool no_history = batch->history == NULL || batch->history_len == NULL;
        sd_row row = {
            batch->logits + (size_t)r * (size_t)Vp, V, Vp, p,
            no_history ? NULL : batch->history[r], no_history ? 0 : batch->history_len[r],
            batch->draw_index[r], no_history,
        };
        sd_dist d;
        st = sd_filter(&self->work, &row, &d, self->why, sizeof self->why);
        if (st != MCRT_OK) {
            host->log(host, MCRT_LOG_ERROR, "sample: row %u: %s", (unsigned)r, self->why);
            return st;
        }
        int32_t tok = d.single;
        if (tok < 0) {
            sd_weights(&self->work, V, &d);
            double u = p->seed >= 0
                           ? sd_uniform_seeded(p->seed, row.draw_index)
                           : sd_uniform_keyed(self->key, self->counter++, row.draw_index);
            tok = sd_draw(self->work.z, V, d.total, u);
            if (tok < 0) { /* cannot happen: the largest kept logit has weight 1 */
                host->log(host, MCRT_LOG_ERROR, "sample: row %u: no token has weight > 0",
                          (unsigned)r);
                return MCRT_E_INTERNAL;
            }
        }
        self->tokens[r] = tok;
        if (out_logprobs != NULL)
            self->logprobs[r] = (float)sd_logprob(row.logits, V, Vp, p->compat, tok);
    }
    memcpy(out_tokens, self->tokens, (size_t)R * sizeof *out_tokens);
    if (out_logprobs != NULL)
        memcpy(out_logprobs, self->logprobs, (size_t)R * sizeof *out_logprobs);
    return MCRT_OK;
}

static const mcrt_sampler_iface sdp_iface = {
    (uint32_t)sizeof(mcrt_sampler_iface),
    sdp_create,
    sdp_destroy,
    sdp_validate,
    sdp_sample,
};

static const void *sdp_get_iface(const char *iface_id)
{
    if (iface_id != NULL && strcmp(iface_id, MCRT_IFACE_SAMPLER) == 0)
        return &sdp_iface;
    return NULL;
}

MCRT_PLUGIN_DEFINE(MCRT_KIND_SAMPLER, "default", "1.0.0",
                   "temperature, top-k, top-p, min-p, penalties, logit bias; OpenAI/vLLM or "
                   "Megatron-Core (compat: megatron) semantics, seeded per request",
                   NULL, NULL, NULL, NULL, sdp_get_iface);
