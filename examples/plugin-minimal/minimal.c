/*
 * minimal.c: a complete mcrt plugin, the sampler "greedy". It always picks
 * the most likely token (argmax over the real vocabulary; the first maximum
 * wins) and, when asked, reports that token's log probability.
 *
 * Built as mcrt-sampler-greedy.so, selected in a pipeline YAML with
 *   sampler:
 *     name: greedy
 *     verbose: true       # optional, see greedy_keys below
 *
 * Dimension legend: R = rows to sample, V = real vocabulary,
 * Vp = padded vocabulary (the row stride of the logits).
 */
#include <math.h>    /* exp, log */
#include <stdbool.h> /* bool */
#include <string.h>  /* strcmp */

#include "mcrt/mcrt.h" /* the whole plugin ABI */

/* One instance. The host pointer stays valid until destroy returns. */
typedef struct greedy {
    const mcrt_host *host;
    bool verbose;
} greedy;

/* The keys this plugin accepts in the `sampler:` section. The core checks the
 * user's YAML against them (and its own key `name`) before create runs. */
static const mcrt_config_key greedy_keys[] = {
    MCRT_CONFIG_KEY(MCRT_CFG_BOOL, "verbose", "false", "log every chosen token at debug level"),
    MCRT_CONFIG_KEY_END,
};

/* [control] Make an instance. Out-parameters are written only on success. */
static mcrt_status greedy_create(const mcrt_host *host, const mcrt_config *cfg, void **out_self)
{
    bool verbose = false;
    mcrt_status st = host->config_bool(host, cfg, "verbose", &verbose);
    if (st != MCRT_OK)
        return st; /* the core has already said which key and why */

    greedy *g = host->alloc(host, sizeof *g, 0);
    if (g == NULL) {
        host->log(host, MCRT_LOG_ERROR, "out of memory (%zu bytes)", sizeof *g);
        return MCRT_E_NOMEM;
    }
    g->host = host;
    g->verbose = verbose;
    host->log(host, MCRT_LOG_DEBUG, "greedy sampler ready (verbose: %s)",
              verbose ? "true" : "false");
    *out_self = g;
    return MCRT_OK;
}

/* [control] Free what create allocated, with the allocator that gave it. */
static void greedy_destroy(void *self)
{
    greedy *g = self;
    if (g != NULL)
        g->host->free(g->host, g);
}

/* [instance] One token per row into out_tokens[R]; log probs into
 * out_logprobs[R] when it is not NULL. All arrays are borrowed for the call. */
static mcrt_status greedy_sample(void *self, const mcrt_sample_batch *batch, int32_t *out_tokens,
                                 float *out_logprobs)
{
    greedy *g = self;
    if (batch->vocab_size <= 0 || batch->padded_vocab_size < batch->vocab_size) {
        /* The detail goes through the log; the status says what kind of error. */
        g->host->log(g->host, MCRT_LOG_ERROR,
                     "vocab_size %d must be in [1, padded_vocab_size %d]",
                     (int)batch->vocab_size, (int)batch->padded_vocab_size);
        return MCRT_E_INVAL;
    }
    const size_t V = (size_t)batch->vocab_size;
    const size_t Vp = (size_t)batch->padded_vocab_size;
    for (uint32_t r = 0; r < batch->n_rows; r++) {
        const float *row = batch->logits + (size_t)r * Vp; /* [Vp]; ids >= V are padding */
        size_t best = 0;
        for (size_t v = 1; v < V; v++)
            if (row[v] > row[best])
                best = v;
        out_tokens[r] = (int32_t)best;
        if (out_logprobs != NULL) {
            /* log_softmax(row[0..V))[best] = -log(sum_v exp(row[v] - row[best])) */
            double sum = 0.0;
            for (size_t v = 0; v < V; v++)
                sum += exp((double)row[v] - (double)row[best]);
            out_logprobs[r] = (float)-log(sum);
        }
        if (g->verbose)
            g->host->log(g->host, MCRT_LOG_DEBUG, "row %u: token %zu (logit %g)", (unsigned)r,
                         best, (double)row[best]);
    }
    return MCRT_OK;
}

/* The interface table: static, valid as long as the plugin is loaded.
 * `validate` is optional; NULL means "every parameter set is fine". */
static const mcrt_sampler_iface greedy_iface = {
    sizeof(mcrt_sampler_iface), greedy_create, greedy_destroy, NULL, greedy_sample,
};

/* [any-thread] Hand out the table for the ids this plugin implements. */
static const void *greedy_get_iface(const char *iface_id)
{
    return strcmp(iface_id, MCRT_IFACE_SAMPLER) == 0 ? &greedy_iface : NULL;
}

/* [loader] Greedy runs anywhere: score 1. A plugin that needs a GPU would
 * return 0 here and write the reason into why[0..why_size). */
static int32_t greedy_probe(const mcrt_host *host, const mcrt_config *cfg, char *why,
                            size_t why_size)
{
    (void)host;
    (void)cfg;
    (void)why;
    (void)why_size;
    return 1;
}

/* The one exported symbol. The file must be named mcrt-sampler-greedy.so:
 * kind and name in the file name match the descriptor. No init or fini. */
MCRT_PLUGIN_DEFINE(MCRT_KIND_SAMPLER, "greedy", "1.0.0", "always the most likely token",
                   greedy_keys, greedy_probe, NULL, NULL, greedy_get_iface);
