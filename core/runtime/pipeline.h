/*
 * core/runtime/pipeline.h: the pipeline object that wires the five kinds.
 *
 * One pipeline = one tokenizer, one sampler, one model group (all ranks), the
 * KV block allocator, one controller and one engine, chosen from the config
 * and the registry. The core (world rank 0's thread, the control thread)
 * submits requests and drives the engine; the engine drives the controller;
 * the controller reaches the rest through the pipeline services. Results are
 * collected per request in the core. Errors logged by any instance of the
 * pipeline are kept as its last error.
 */
#ifndef MCRT_CORE_PIPELINE_H
#define MCRT_CORE_PIPELINE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "mcrt/host.h"
#include "plugin/registry.h"
#include "util/log.h"

typedef struct pipeline pipeline;

/* One request's outcome, owned by the pipeline. */
typedef struct pipeline_result {
    uint64_t id;
    const char *prompt;
    size_t prompt_len;
    const char *custom_id;      /* the user's id (JSONL "id"), or NULL */
    const mcrt_sampling_params *params;
    uint32_t status;            /* MCRT_REQ_* */
    uint32_t finish_reason;     /* MCRT_FINISH_* */
    const char *error;          /* NULL unless FAILED */
    const int32_t *prompt_tokens;
    size_t n_prompt_tokens;
    const float *prompt_logprobs; /* [n_prompt_logprobs] or NULL */
    size_t n_prompt_logprobs;
    const int32_t *tokens;      /* generated ids */
    const float *logprobs;      /* [n_tokens] or NULL */
    size_t n_tokens;
    const char *text;           /* generated text (UTF-8 as the controller gave it) */
    size_t text_len;
    const char *segments;       /* n_segments pieces back to back, or NULL */
    const size_t *segment_lens; /* [n_segments] */
    size_t n_segments;
    /* top-N alternatives: position i has top_counts[i] entries (ids, log
     * probs, text lengths; texts back to back in top_text) */
    const int32_t *top_ids;
    const float *top_logprobs;
    const size_t *top_lens;
    const char *top_text;
    const size_t *top_counts;   /* [n_top_positions] */
    size_t n_top_positions;
    uint64_t arrival_ns, first_token_ns, done_ns;
} pipeline_result;

/* Choose the plugin of `kind` (the section's `name`, or "auto") and validate
 * its section against the core's keys plus the plugin's. On failure writes a
 * message, sets *exit_code and returns NULL. */
plugin_entry *pipeline_choose_plugin(cfg_tree *cfg, registry *reg, int kind, char *err,
                                     size_t err_size, int *exit_code);

/* Build the pipeline from a tree whose core sections are validated: choose
 * and validate each plugin section, create every instance. On failure writes
 * a message to err, sets *exit_code and returns NULL. */
pipeline *pipeline_create(cfg_tree *cfg, registry *reg, const log_sink *log, char *err,
                          size_t err_size, int *exit_code);
void pipeline_destroy(pipeline *p);

/* The chosen plugin of a kind (for logs and `mcrt run -v`). */
const plugin_entry *pipeline_plugin(const pipeline *p, int kind);

/* Queue one request; the prompt and custom_id (may be NULL) are copied,
 * params copied (their pointers must outlive the pipeline: they point into the
 * config tree or the caller's request list). */
mcrt_status pipeline_submit(pipeline *p, const char *prompt, size_t len,
                            const mcrt_sampling_params *params, const char *custom_id);

/* Where the time went (model steps as the controller made them). A step with
 * more tokens than sequences holds prompt chunks and counts as prefill. */
typedef struct pipeline_stats {
    uint64_t prefill_ns, decode_ns, run_ns;
    uint64_t prefill_steps, decode_steps, prefill_tokens;
} pipeline_stats;
void pipeline_get_stats(const pipeline *p, pipeline_stats *out);

/* A progress line (requests done, tokens, tok/s), rewritten in place on `out`
 * (a terminal) from two seconds into pipeline_run; cleared at its end. */
void pipeline_set_progress(pipeline *p, FILE *out);

/* Print each request's text to `out` as its tokens arrive (text format, in
 * request order, raw token bytes); NULL turns streaming off. */
void pipeline_set_stream(pipeline *p, FILE *out);

/* Drive the engine until every request is COMPLETED or FAILED. */
mcrt_status pipeline_run(pipeline *p);

size_t pipeline_result_count(const pipeline *p);
void pipeline_result_at(const pipeline *p, size_t i, pipeline_result *out);

/* The last error logged by an instance of this pipeline ("" if none). */
const char *pipeline_last_error(const pipeline *p);

/* For core/runtime/host.c. */
void pipeline_note_errorv(pipeline *p, const char *tag, const char *fmt, va_list ap);
const mcrt_pipeline_services *pipeline_services(void);

/* Fill sampling parameters from the validated `generation` section. */
void params_from_config(const mcrt_config *gen, mcrt_sampling_params *out,
                        const char **stop_storage, uint32_t stop_cap);

#endif
