/*
 * mcrt/request.h: an inference request as engines and controllers see it.
 *
 * Requests are allocated, filled and freed by the core. Engines and
 * controllers read them and report progress through the pipeline services'
 * request_update (mcrt/host.h); they never write the struct, except the
 * engine's own engine_data field. A request pointer
 * stays valid from the engine's submit() until the engine reports the request
 * COMPLETED or FAILED and the core has collected it.
 */
#ifndef MCRT_REQUEST_H
#define MCRT_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "mcrt/params.h" /* mcrt_sampling_params */

#ifdef __cplusplus
extern "C" {
#endif

/* Megatron-Core's Status values, same numbers. Append-only. */
enum {
    MCRT_REQ_WAITING_IN_QUEUE = 1,
    MCRT_REQ_ACTIVE_AND_GENERATING_TOKENS = 2,
    MCRT_REQ_ACTIVE_BUT_NOT_GENERATING_TOKENS = 3,
    MCRT_REQ_COMPLETED = 4,
    MCRT_REQ_FAILED = 5
};

/* Why generation ended. Append-only. */
enum {
    MCRT_FINISH_NONE = 0,     /* not finished */
    MCRT_FINISH_LENGTH = 1,   /* num_tokens_to_generate reached */
    MCRT_FINISH_EOD = 2,      /* the tokenizer's end-of-document token */
    MCRT_FINISH_STOP = 3,     /* a stop string or stop token id */
    MCRT_FINISH_ERROR = 4,    /* the request failed; see its error message */
    MCRT_FINISH_CANCELLED = 5
};

typedef struct mcrt_request {
    uint32_t struct_size;                 /* sizeof(mcrt_request) of the core */
    uint32_t status;                      /* MCRT_REQ_*; kept current by the core */
    uint64_t id;                          /* 0, 1, 2, ... in arrival order */
    const char *prompt;                   /* UTF-8 (or any bytes), NUL-terminated, but... */
    size_t prompt_len;                    /* ...may hold NULs: its length in bytes */
    const mcrt_sampling_params *params;   /* this request's own parameters */
    uint64_t arrival_ns;                  /* host clock at submission */
    /* Set once the controller has tokenized the prompt (request_update
     * MCRT_UPDATE_PROMPT_TOKENS); NULL before. Core-owned. */
    const int32_t *prompt_tokens;         /* [n_prompt_tokens] */
    size_t n_prompt_tokens;
    void *engine_data;                    /* the engine's own bookkeeping; NULL at submit; the
                                             engine frees what it points to */
} mcrt_request;

/* What a controller reports about a request. Append-only kinds. */
enum {
    MCRT_UPDATE_STATUS = 1,         /* status (MCRT_REQ_*) */
    MCRT_UPDATE_PROMPT_TOKENS = 2,  /* tokens[0..n): the tokenized prompt */
    MCRT_UPDATE_PROMPT_LOGPROBS = 3,/* logprobs[0..n): log p(prompt[j+1] | prompt[..j]) */
    MCRT_UPDATE_TOKENS = 4,         /* tokens[0..n) generated, logprobs[0..n) or NULL,
                                       text[0..text_len): their raw bytes, for streaming (a
                                       UTF-8 character may be split across updates) */
    MCRT_UPDATE_FINISH = 5,         /* status COMPLETED or FAILED, finish_reason, error (FAILED);
                                       text, when not NULL, is the final generated text (e.g.
                                       cut before a stop string); when NULL the core sets it to
                                       the tokenizer's decoding of the generated ids */
    MCRT_UPDATE_SEGMENTS = 6,       /* n per-token pieces, back to back in text[0..text_len),
                                       piece i is lens[i] bytes (pieces may hold any byte) */
    MCRT_UPDATE_TOP_LOGPROBS = 7    /* the next generated position's n most likely tokens:
                                       tokens[0..n) ids, logprobs[0..n) their log probs (most
                                       likely first), their bytes back to back in
                                       text[0..text_len), piece i lens[i] bytes; one update per
                                       generated token, in order, when top_n_logprobs > 0 */
};

typedef struct mcrt_request_update {
    uint32_t struct_size;      /* sizeof(mcrt_request_update) of the writer */
    uint32_t kind;             /* MCRT_UPDATE_* */
    uint32_t status;           /* MCRT_REQ_* (STATUS, FINISH) */
    uint32_t finish_reason;    /* MCRT_FINISH_* (FINISH) */
    const int32_t *tokens;     /* [n] borrowed for the call */
    const float *logprobs;     /* [n] borrowed for the call, or NULL */
    size_t n;
    const char *text;          /* borrowed for the call; not NUL-terminated */
    size_t text_len;
    const char *error;         /* FINISH with FAILED: one line, NUL-terminated */
    const size_t *lens;        /* [n] SEGMENTS: byte length of each piece; else NULL */
} mcrt_request_update;

#ifdef __cplusplus
}
#endif

#endif /* MCRT_REQUEST_H */
