/*
 * tests/plugins/loader/good.c: mcrt-sampler-good.so, the valid plugin of the
 * loader tests. Probe score 5, init/fini that log at debug level, two config
 * keys, and a working "mcrt.sampler/1": greedy (argmax over the real
 * vocabulary), with log-softmax log probs when asked.
 *
 * Config keys (sampler: section):
 *   strength  FLOAT in [0, 1], default 0.5  (read and logged, changes nothing)
 *   mode      ENUM fast|exact, default fast (read and logged, changes nothing)
 *
 * Dimension legend: R = rows, V = real vocabulary, Vp = padded vocabulary.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "mcrt/mcrt.h" /* the plugin ABI */

typedef struct good_sampler {
    const mcrt_host *host; /* valid until destroy returns */
    double strength;
    const char *mode;      /* core-owned, valid as long as the instance's cfg */
} good_sampler;

static const mcrt_config_key good_keys[] = {
    MCRT_CONFIG_KEY_RANGE(MCRT_CFG_FLOAT, "strength", "0.5", 0.0, 1.0,
                          "test key: a float in [0, 1]; read, logged, otherwise unused"),
    MCRT_CONFIG_KEY_ENUM("mode", "fast", "fast|exact",
                         "test key: fast or exact; read, logged, otherwise unused"),
    MCRT_CONFIG_KEY_END,
};

/* The host given to init, valid until fini returns. */
static const mcrt_host *good_plugin_host;

static int32_t good_probe(const mcrt_host *host, const mcrt_config *cfg, char *why,
                          size_t why_size)
{
    (void)host;
    (void)cfg;
    (void)why;
    (void)why_size;
    return 5;
}

static mcrt_status good_init(const mcrt_host *host)
{
    good_plugin_host = host;
    host->log(host, MCRT_LOG_DEBUG, "good: init");
    return MCRT_OK;
}

static void good_fini(void)
{
    if (good_plugin_host != NULL)
        good_plugin_host->log(good_plugin_host, MCRT_LOG_DEBUG, "good: fini");
    good_plugin_host = NULL;
}

static mcrt_status good_create(const mcrt_host *host, const mcrt_config *cfg, void **out_self)
{
    double strength = 0.0;
    const char *mode = NULL;
    mcrt_status st = host->config_float(host, cfg, "strength", &strength);
    if (st != MCRT_OK)
        return st; /* the core has logged which key */
    st = host->config_string(host, cfg, "mode", &mode);
    if (st != MCRT_OK)
        return st;

    good_sampler *s = host->alloc(host, sizeof *s, 0);
    if (s == NULL) {
        host->log(host, MCRT_LOG_ERROR, "good: out of memory (%zu bytes)", sizeof *s);
        return MCRT_E_NOMEM;
    }
    s->host = host;
    s->strength = strength;
    s->mode = mode;
    host->log(host, MCRT_LOG_DEBUG, "good: created (strength %g, mode %s)", strength, mode);
    *out_self = s;
    return MCRT_OK;
}

static void good_destroy(void *self)
{
    good_sampler *s = self;
    if (s != NULL)
        s->host->free(s->host, s);
}

static mcrt_status good_validate(void *self, const mcrt_sampling_params *params,
                                 int32_t vocab_size)
{
    good_sampler *s = self;
    if (params == NULL || vocab_size <= 0) {
        s->host->log(s->host, MCRT_LOG_ERROR, "good: validate needs params and vocab_size > 0");
        return MCRT_E_INVAL;
    }
    return MCRT_OK; /* greedy honours nothing, so it rejects nothing */
}

static mcrt_status good_sample(void *self, const mcrt_sample_batch *batch, int32_t *out_tokens,
                               float *out_logprobs)
{
    good_sampler *s = self;
    if (batch == NULL || batch->logits == NULL || out_tokens == NULL || batch->vocab_size <= 0 ||
        batch->padded_vocab_size < batch->vocab_size) {
        s->host->log(s->host, MCRT_LOG_ERROR,
                     "good: sample needs logits, out_tokens and 0 < vocab_size <= "
                     "padded_vocab_size");
        return MCRT_E_INVAL;
    }
    const size_t V = (size_t)batch->vocab_size;
    const size_t Vp = (size_t)batch->padded_vocab_size;
    for (uint32_t r = 0; r < batch->n_rows; r++) {
        const float *row = batch->logits + (size_t)r * Vp; /* [Vp]; ids >= V are padding */
        size_t best = 0;
        for (size_t v = 1; v < V; v++)
            if (row[v] > row[best]) /* first maximum wins, as torch.argmax */
                best = v;
        out_tokens[r] = (int32_t)best;
        if (out_logprobs != NULL) {
            /* log_softmax(row[0..V))[best] = -log(sum_v exp(row[v] - row[best])) */
            double sum = 0.0;
            for (size_t v = 0; v < V; v++)
                sum += exp((double)row[v] - (double)row[best]);
            out_logprobs[r] = (float)-log(sum);
        }
    }
    return MCRT_OK;
}

static const mcrt_sampler_iface good_iface = {
    sizeof(mcrt_sampler_iface), good_create, good_destroy, good_validate, good_sample,
};

static const void *good_get_iface(const char *iface_id)
{
    return strcmp(iface_id, MCRT_IFACE_SAMPLER) == 0 ? &good_iface : NULL;
}

MCRT_PLUGIN_DEFINE(MCRT_KIND_SAMPLER, "good", "1.0.0", "test-only: a valid greedy sampler",
                   good_keys, good_probe, good_init, good_fini, good_get_iface);
