/*
 * core/commands/prompts.h: the requests of `mcrt run`: generation.prompts,
 * or generation.prompt_file as text (one prompt a line, empty lines skipped)
 * or JSONL (one object a line, with per-request parameters; a file whose
 * first non-blank byte is '{', or named *.jsonl). docs/cli.md lists the
 * JSONL keys.
 *
 * Every request starts from the `generation` section's parameters; a JSONL
 * line overrides them field by field. Values are checked with the same
 * ranges as the YAML keys; a bad line is an error naming file:line and the
 * key (exit 65, DATAERR).
 */
#ifndef MCRT_CORE_COMMANDS_PROMPTS_H
#define MCRT_CORE_COMMANDS_PROMPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"  /* mcrt_config */
#include "mcrt/params.h"    /* mcrt_sampling_params */

typedef struct run_request {
    char *text;                   /* the prompt (may hold NULs) */
    size_t len;
    char *custom_id;              /* JSONL "id", or NULL */
    bool own_seed;                /* JSONL "seed" given (else seed = generation.seed + index) */
    mcrt_sampling_params params;  /* its pointers point into the arrays below or the config */
    char **stop;                  /* owned (JSONL "stop") */
    const char **stop_ptrs;
    int32_t *stop_ids;            /* owned */
    int32_t *bias_ids;            /* owned */
    float *bias_values;           /* owned */
} run_request;

typedef struct run_requests {
    run_request *items;
    size_t n, cap;
    const char *stop_storage[64]; /* the config's stop strings, shared */
} run_requests;

/* [control] Read the requests. Returns EXIT_OK or an exit code with the
 * message written to stderr. */
int run_requests_read(const mcrt_config *gen, run_requests *out);
void run_requests_free(run_requests *rr);

#endif /* MCRT_CORE_COMMANDS_PROMPTS_H */
