/*
 * mcrt/sampler.h: the sampler interface ("mcrt.sampler/1"), Megatron-Core's
 * sample_from_logits level: logits -> one token per row.
 *
 * Dimension legend: R = rows (sequences) to sample, Vp = padded vocabulary,
 * V = real vocabulary (ids >= V are padding; the shipped sampler never
 * samples them, in either mode: docs/sampling.md).
 */
#ifndef MCRT_SAMPLER_H
#define MCRT_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "mcrt/config.h" /* mcrt_config */
#include "mcrt/params.h" /* mcrt_sampling_params */
#include "mcrt/plugin.h" /* mcrt_host, mcrt_status */

#ifdef __cplusplus
extern "C" {
#endif

/* One batch of rows to sample. All arrays are borrowed for the call. */
typedef struct mcrt_sample_batch {
    uint32_t struct_size;
    uint32_t n_rows;                            /* R */
    int32_t vocab_size;                         /* V */
    int32_t padded_vocab_size;                  /* Vp, the row stride of `logits` */
    const float *logits;                        /* [R, Vp] raw logits, not modified */
    const mcrt_sampling_params *const *params;  /* [R] each row's own parameters */
    /* Tokens seen so far per row (prompt then generated), for penalties. */
    const int32_t *const *history;              /* [R] -> [history_len[r]] */
    const size_t *history_len;                  /* [R] */
    /* Index of this draw within its request (0 for the first generated token).
     * A seeded row's random stream depends only on (seed, draw_index), never
     * on the other rows, so results do not depend on batch composition. */
    const uint64_t *draw_index;                 /* [R] */
} mcrt_sample_batch;

typedef struct mcrt_sampler_iface {
    uint32_t struct_size;

    /* [control] Create a sampler from its config section. On success
     * *out_self is plugin-owned until destroy. */
    mcrt_status (*create)(const mcrt_host *host, const mcrt_config *cfg, void **out_self);

    /* [control] Free the instance. */
    void (*destroy)(void *self);

    /* [control] Reject parameters this sampler cannot honour (for example
     * top_k and top_p both set in MCRT_COMPAT_MEGATRON) before a request is
     * admitted; the reason is logged naming the field. (optional) */
    mcrt_status (*validate)(void *self, const mcrt_sampling_params *params, int32_t vocab_size);

    /* [instance] Sample one token per row into out_tokens[R] (caller-owned).
     * When out_logprobs is not NULL, also write the log probability of each
     * chosen token under the sampler's documented log-prob rule. */
    mcrt_status (*sample)(void *self, const mcrt_sample_batch *batch, int32_t *out_tokens,
                          float *out_logprobs);
} mcrt_sampler_iface;

#ifdef __cplusplus
}
#endif

#endif /* MCRT_SAMPLER_H */
