/*
 * tests/plugins/loader/zeroscore.c: mcrt-sampler-zeroscore.so, a complete
 * plugin that is unusable here: probe returns 0 with the reason "needs a
 * quantum accelerator". The loader lists it with that reason and never
 * selects it. Its sampler table is real (the loader checks the table before
 * it probes), but its calls only refuse.
 */
#include <stdio.h>
#include <string.h>

#include "mcrt/mcrt.h" /* the plugin ABI */

static int32_t zeroscore_probe(const mcrt_host *host, const mcrt_config *cfg, char *why,
                               size_t why_size)
{
    (void)host;
    (void)cfg;
    if (why != NULL && why_size > 0)
        snprintf(why, why_size, "needs a quantum accelerator");
    return 0;
}

/* Never reached while the probe says 0; refuses if a host calls it anyway. */
static mcrt_status zeroscore_create(const mcrt_host *host, const mcrt_config *cfg,
                                    void **out_self)
{
    (void)cfg;
    (void)out_self;
    host->log(host, MCRT_LOG_ERROR, "zeroscore: created although probe said 0");
    return MCRT_E_UNSUPPORTED;
}

static void zeroscore_destroy(void *self)
{
    (void)self;
}

static mcrt_status zeroscore_sample(void *self, const mcrt_sample_batch *batch,
                                    int32_t *out_tokens, float *out_logprobs)
{
    (void)self;
    (void)batch;
    (void)out_tokens;
    (void)out_logprobs;
    return MCRT_E_UNSUPPORTED;
}

static const mcrt_sampler_iface zeroscore_iface = {
    sizeof(mcrt_sampler_iface), zeroscore_create, zeroscore_destroy, NULL, zeroscore_sample,
};

static const void *zeroscore_get_iface(const char *iface_id)
{
    return strcmp(iface_id, MCRT_IFACE_SAMPLER) == 0 ? &zeroscore_iface : NULL;
}

MCRT_PLUGIN_DEFINE(MCRT_KIND_SAMPLER, "zeroscore", "1.0.0",
                   "test-only: probe says 0 (needs a quantum accelerator)", NULL, zeroscore_probe,
                   NULL, NULL, zeroscore_get_iface);
