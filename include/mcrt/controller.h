/*
 * mcrt/controller.h: the text-generation controller ("mcrt.controller/1"),
 * Megatron-Core's TextGenerationController level: tokenize, build step
 * batches, sample, check stop conditions, compute log probs, detokenize.
 *
 * A controller reaches the tokenizer, the model group, the KV block allocator
 * and the sampler only through the pipeline services (mcrt/host.h), and
 * reports results through request_update. It never deals with ranks.
 */
#ifndef MCRT_CONTROLLER_H
#define MCRT_CONTROLLER_H

#include <stddef.h>
#include <stdint.h>

#include "mcrt/config.h"  /* mcrt_config */
#include "mcrt/plugin.h"  /* mcrt_host, mcrt_status */
#include "mcrt/request.h" /* mcrt_request */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mcrt_controller_iface {
    uint32_t struct_size;

    /* [control] Create the controller from its config section. On success
     * *out_self is plugin-owned until destroy. */
    mcrt_status (*create)(const mcrt_host *host, const mcrt_config *cfg, void **out_self);

    /* [control] Free the instance. */
    void (*destroy)(void *self);

    /* [instance] Megatron's generate_all_output_tokens_static_batch: run the
     * requests reqs[0..n) as one static batch until every one of them is
     * COMPLETED or FAILED, reporting through request_update. The array and
     * the requests are borrowed for the call. A request that fails (prompt
     * too long, empty prompt, ...) fails alone; the call returns an error only
     * when the batch as a whole could not run (model step failed), and before
     * it does, it reports every request it has not finished as FAILED. */
    mcrt_status (*generate_static)(void *self, mcrt_request *const *reqs, size_t n);
} mcrt_controller_iface;

#ifdef __cplusplus
}
#endif

#endif /* MCRT_CONTROLLER_H */
