/*
 * ban.c: an mcrt sampler, "ban": greedy decoding that never picks the token
 * ids listed in `banned_ids` (a "bad words" filter). Among the real
 * vocabulary minus the banned ids it takes the most likely token (the lowest
 * id on ties); its log probability, when asked, is log-softmax over the real
 * vocabulary of the raw logits.
 *
 *   sampler:
 *     name: ban
 *     banned_ids: [50256, 198]
 *
 * Built out of tree against the installed headers (see meson.build).
 */
#include <math.h>   /* exp, log, INFINITY */
#include <stdlib.h> /* strtol */
#include <string.h> /* memset, strcmp */

#include "mcrt/mcrt.h"

#define BAN_MAX 1024

typedef struct ban {
    const mcrt_host *host;
    int32_t ids[BAN_MAX];
    size_t n;
} ban;

static const mcrt_config_key ban_keys[] = {
    MCRT_CONFIG_KEY(MCRT_CFG_STRING_LIST, "banned_ids", NULL, "token ids never to generate"),
    MCRT_CONFIG_KEY_END,
};

static mcrt_status ban_create(const mcrt_host *host, const mcrt_config *cfg, void **out)
{
    ban *b = host->alloc(host, sizeof *b, 0);
    if (b == NULL)
        return MCRT_E_NOMEM;
    memset(b, 0, sizeof *b);
    b->host = host;
    size_t n = 0;
    if (host->config_list_size(host, cfg, "banned_ids", &n) == MCRT_OK) {
        for (size_t i = 0; i < n; i++) {
            const char *s = NULL;
            char *end = NULL;
            host->config_list_item(host, cfg, "banned_ids", i, &s);
            long v = s ? strtol(s, &end, 10) : -1;
            if (s == NULL || *end != '\0' || v < 0 || v > INT32_MAX || i >= BAN_MAX) {
                host->log(host, MCRT_LOG_ERROR, "banned_ids[%zu] = %s: expected a token id "
                          "(at most %d of them)", i, s ? s : "?", BAN_MAX);
                host->free(host, b);
                return MCRT_E_CONFIG;
            }
            b->ids[b->n++] = (int32_t)v;
        }
    }
    *out = b;
    return MCRT_OK;
}

static void ban_destroy(void *self)
{
    ban *b = self;
    b->host->free(b->host, b);
}

static int banned(const ban *b, int32_t id)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->ids[i] == id)
            return 1;
    return 0;
}

static mcrt_status ban_sample(void *self, const mcrt_sample_batch *batch, int32_t *out,
                              float *out_logprobs)
{
    ban *b = self;
    for (uint32_t r = 0; r < batch->n_rows; r++) {
        const float *row = batch->logits + (size_t)r * (size_t)batch->padded_vocab_size;
        int32_t best = -1;
        float mx = -INFINITY;
        for (int32_t j = 0; j < batch->vocab_size; j++) {
            if (row[j] > mx)
                mx = row[j];
            if (!banned(b, j) && (best < 0 || row[j] > row[best]))
                best = j;
        }
        if (best < 0) {
            b->host->log(b->host, MCRT_LOG_ERROR, "row %u: every token is banned", r);
            return MCRT_E_INVAL;
        }
        out[r] = best;
        if (out_logprobs != NULL) {
            double sum = 0.0;
            for (int32_t j = 0; j < batch->vocab_size; j++)
                sum += exp((double)row[j] - mx);
            out_logprobs[r] = (float)((double)row[best] - mx - log(sum));
        }
    }
    return MCRT_OK;
}

static const mcrt_sampler_iface ban_iface = {
    sizeof(mcrt_sampler_iface), ban_create, ban_destroy, NULL, ban_sample,
};

static const void *ban_get_iface(const char *id)
{
    return strcmp(id, MCRT_IFACE_SAMPLER) == 0 ? &ban_iface : NULL;
}

MCRT_PLUGIN_DEFINE(MCRT_KIND_SAMPLER, "ban", "1.0.0",
                   "greedy, never picking the token ids in banned_ids", ban_keys, NULL, NULL,
                   NULL, ban_get_iface);
