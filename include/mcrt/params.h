/*
 * mcrt/params.h: per-request sampling and generation parameters.
 *
 * Field names are Megatron-Core's SamplingParams names where Megatron has the
 * field. Semantics depend on `compat` (docs/sampling.md has the shipped
 * sampler's exact rules): in MCRT_COMPAT_DEFAULT they are OpenAI/vLLM's (temperature 0 =
 * greedy, top_k 0 = off, top_p 1.0 = off, top_k and top_p compose); in
 * MCRT_COMPAT_MEGATRON they are Megatron-Core's sample_from_logits (top_k 1 =
 * argmax ignoring temperature, top_p 0 = off, top_k and top_p both set is a
 * validation error).
 *
 * The struct is filled by the core from YAML, flags, environment and (later)
 * per-request input; plugins read it. It grows only at the end.
 */
#ifndef MCRT_PARAMS_H
#define MCRT_PARAMS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum {
    MCRT_COMPAT_DEFAULT = 0,   /* OpenAI / vLLM semantics */
    MCRT_COMPAT_MEGATRON = 1   /* Megatron-Core semantics, exactly */
};

typedef struct mcrt_sampling_params {
    uint32_t struct_size;            /* sizeof(mcrt_sampling_params) of the writer */
    uint32_t compat;                 /* MCRT_COMPAT_* */
    float temperature;               /* >= 0 */
    int32_t top_k;                   /* >= 0; 0 = off */
    float top_p;                     /* [0, 1] */
    float min_p;                     /* [0, 1]; 0 = off */
    float repetition_penalty;        /* > 0; 1 = off */
    float presence_penalty;          /* 0 = off */
    float frequency_penalty;         /* 0 = off */
    int32_t num_tokens_to_generate;  /* >= 0; 0 = prompt log probs only */
    int64_t seed;                    /* per-request seed; -1 = none (nondeterministic) */
    uint8_t return_log_probs;        /* log p of prompt and generated tokens */
    uint8_t return_segments;         /* per-token text pieces */
    uint8_t ignore_eos;              /* do not stop at the tokenizer's EOD */
    uint8_t add_bos;                 /* prepend the tokenizer's BOS, if it has one */
    int32_t top_n_logprobs;          /* >= 0; top-N alternatives per generated token */
    /* Stop strings, matched on generated text; the text is cut before them. */
    const char *const *stop;         /* [n_stop], borrowed from the request */
    uint32_t n_stop;
    uint32_t n_stop_token_ids;
    const int32_t *stop_token_ids;   /* [n_stop_token_ids], borrowed from the request */
    /* Additive logit bias on token ids. */
    const int32_t *logit_bias_ids;   /* [n_logit_bias] */
    const float *logit_bias_values;  /* [n_logit_bias] */
    uint32_t n_logit_bias;
    uint32_t reserved;               /* zero */
} mcrt_sampling_params;

#ifdef __cplusplus
}
#endif

#endif /* MCRT_PARAMS_H */
