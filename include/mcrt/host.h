/*
 * mcrt/host.h: the host services table, the only way a plugin reaches the core.
 *
 * Plugins link against no mcrt library. Each plugin (at init) and each
 * instance (at create) receives its own `const mcrt_host *`; the core uses it
 * to know who is calling, so log lines are tagged with the plugin's kind and
 * name and errors land on the right pipeline. The pointer stays valid until
 * fini (plugin) or destroy (instance) returns.
 *
 * The table is append-only: a slot added in ABI 1.N is marked "since 1.N",
 * and a plugin reads it only through MCRT_HAS(host, slot). Optional services
 * live in extension tables fetched by versioned id with get_ext.
 *
 * All host services are [any-thread] unless their comment says otherwise.
 */
#ifndef MCRT_HOST_H
#define MCRT_HOST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mcrt/config.h"    /* mcrt_config */
#include "mcrt/model.h"     /* mcrt_model_info, mcrt_step_batch */
#include "mcrt/plugin.h"    /* mcrt_status, mcrt_host */
#include "mcrt/request.h"   /* mcrt_request, mcrt_request_update */
#include "mcrt/sampler.h"   /* mcrt_sample_batch */
#include "mcrt/tokenizer.h" /* mcrt_tokenizer_info */

#ifdef __cplusplus
extern "C" {
#endif

/* Log levels, most severe first. Append-only. */
enum {
    MCRT_LOG_ERROR = 1,
    MCRT_LOG_WARN = 2,
    MCRT_LOG_INFO = 3,
    MCRT_LOG_DEBUG = 4,
    MCRT_LOG_TRACE = 5
};

#if defined(__GNUC__) || defined(__clang__)
#define MCRT_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define MCRT_PRINTF(fmt_index, first_arg)
#endif

/* Extension ids for get_ext. */
#define MCRT_HOST_EXT_PIPELINE "mcrt.host.pipeline/1"

struct mcrt_host {
    uint16_t abi_major;     /* the host's MCRT_ABI_MAJOR */
    uint16_t abi_minor;     /* the host's MCRT_ABI_MINOR */
    uint32_t struct_size;   /* sizeof(mcrt_host) of the host */
    void *host_data;        /* the core's; plugins never touch it */

    /* Log one message at `level` (MCRT_LOG_*), printf-style, no trailing
     * newline needed. The core prefixes the plugin's kind and name, filters
     * by the user's log level, writes to stderr, and keeps the last ERROR
     * message as the pipeline's last error. */
    void (*log)(const mcrt_host *host, int32_t level, const char *fmt, ...) MCRT_PRINTF(3, 4);

    /* The same, with a va_list. */
    void (*logv)(const mcrt_host *host, int32_t level, const char *fmt, va_list ap);

    /* Host memory: `align` is a power of two (0 = max_align_t). Returns NULL
     * when out of memory. Only host->free may free it. */
    void *(*alloc)(const mcrt_host *host, size_t size, size_t align);
    void (*free)(const mcrt_host *host, void *ptr);

    /* Config accessors over a section: validated for create (every declared
     * key has its value or default); as written and possibly NULL for probe
     * (a NULL section reads as MCRT_E_NOTFOUND). MCRT_OK and *out, MCRT_E_NOTFOUND when the key
     * is not set and has no default, or MCRT_E_CONFIG when its type differs
     * (the message names the key). Strings are owned by the core and valid as
     * long as `cfg`. An ENUM or PATH key reads as a string; PATH strings are
     * already resolved against the YAML file's folder. */
    mcrt_status (*config_bool)(const mcrt_host *host, const mcrt_config *cfg, const char *key,
                               bool *out);
    mcrt_status (*config_int)(const mcrt_host *host, const mcrt_config *cfg, const char *key,
                              int64_t *out);
    mcrt_status (*config_float)(const mcrt_host *host, const mcrt_config *cfg, const char *key,
                                double *out);
    mcrt_status (*config_string)(const mcrt_host *host, const mcrt_config *cfg, const char *key,
                                 const char **out);
    /* STRING_LIST keys: *out_n items; item i through config_list_item. */
    mcrt_status (*config_list_size)(const mcrt_host *host, const mcrt_config *cfg,
                                    const char *key, size_t *out_n);
    mcrt_status (*config_list_item)(const mcrt_host *host, const mcrt_config *cfg,
                                    const char *key, size_t index, const char **out);

    /* Monotonic clock in nanoseconds. */
    uint64_t (*clock_ns)(const mcrt_host *host);

    /* The extension table with this id, or NULL when the host lacks it.
     * Tables are owned by the core and valid as long as `host`. */
    const void *(*get_ext)(const mcrt_host *host, const char *ext_id);
};

/* "mcrt.host.pipeline/1": the pipeline's other components, as an engine or a
 * controller needs them. Available to instances (through the host given to
 * create), not to probe/init. Each call is routed to this pipeline's
 * tokenizer, model group, KV allocator, sampler or controller. */
typedef struct mcrt_pipeline_services {
    uint32_t struct_size;

    /* [instance] Tokenizer (see mcrt/tokenizer.h for the buffer rules). */
    mcrt_status (*tokenizer_info)(const mcrt_host *host, mcrt_tokenizer_info *out);
    mcrt_status (*tokenize)(const mcrt_host *host, const char *text, size_t len, int32_t *ids,
                            size_t cap, size_t *out_n);
    mcrt_status (*detokenize)(const mcrt_host *host, const int32_t *ids, size_t n, char *buf,
                              size_t cap, size_t *out_len);
    mcrt_status (*token_bytes)(const mcrt_host *host, int32_t id, char *buf, size_t cap,
                               size_t *out_len);

    /* [instance] The logical model. model_step runs the batch on every rank
     * (pipeline stages in order) and writes the last stage's logits to
     * logits[batch->n_logits * padded_vocab_size] (caller-owned, fp32). */
    mcrt_status (*model_info)(const mcrt_host *host, mcrt_model_info *out);
    mcrt_status (*model_step)(const mcrt_host *host, const mcrt_step_batch *batch,
                              float *logits);

    /* [instance] KV block allocator over the model's pool (the same block
     * ids on every rank). kv_alloc gives n block ids into out_blocks[n] or
     * returns MCRT_E_NOMEM and gives none. */
    mcrt_status (*kv_alloc)(const mcrt_host *host, uint32_t n, int32_t *out_blocks);
    void (*kv_free)(const mcrt_host *host, const int32_t *blocks, uint32_t n);
    uint32_t (*kv_free_blocks)(const mcrt_host *host);

    /* [instance] The sampler (see mcrt/sampler.h). */
    mcrt_status (*sample)(const mcrt_host *host, const mcrt_sample_batch *batch,
                          int32_t *out_tokens, float *out_logprobs);
    mcrt_status (*sampler_validate)(const mcrt_host *host, const mcrt_sampling_params *params);

    /* [instance] The controller, for engines (see mcrt/controller.h). */
    mcrt_status (*controller_generate_static)(const mcrt_host *host, mcrt_request *const *reqs,
                                              size_t n);

    /* [instance] Report progress on a request (core-owned). The update is
     * copied; its pointers are borrowed for the call; req->status (and
     * prompt_tokens) are current when it returns. A rejected update (wrong
     * request, finished request, malformed update) returns an error with a
     * logged reason: a plugin bug, which the controller treats as a failure
     * of the batch. */
    mcrt_status (*request_update)(const mcrt_host *host, mcrt_request *req,
                                  const mcrt_request_update *update);
} mcrt_pipeline_services;

#ifdef __cplusplus
}
#endif

#endif /* MCRT_HOST_H */
