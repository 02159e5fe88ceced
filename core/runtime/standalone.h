/*
 * core/runtime/standalone.h: one plugin instance outside a pipeline.
 *
 * `mcrt tokenize` and `mcrt detokenize` need the configured tokenizer and
 * nothing else: no model, KV cache or engine. This chooses the tokenizer
 * plugin exactly as a pipeline does (tokenizer.name or auto, probed with the
 * tokenizer section), validates the section against the core's keys plus the
 * plugin's, and creates one instance with its own host table (tag
 * "tokenizer/<name>"; the pipeline extension is not available to it).
 */
#ifndef MCRT_CORE_STANDALONE_H
#define MCRT_CORE_STANDALONE_H

#include <stddef.h>

#include "config/config.h"   /* cfg_tree */
#include "mcrt/tokenizer.h"  /* mcrt_tokenizer_iface */
#include "plugin/registry.h" /* registry, plugin_entry */
#include "runtime/host.h"    /* host_ctx */
#include "util/log.h"        /* log_sink */

typedef struct standalone_tokenizer {
    plugin_entry *pe;                   /* the chosen plugin (owned by the registry) */
    const mcrt_tokenizer_iface *iface;  /* its table */
    void *self;                         /* the instance */
    host_ctx *hctx;                     /* the instance's host table */
} standalone_tokenizer;

/* [control] Choose, validate and create. `cfg` has been built and its core
 * sections validated; the registry has its folders. On failure writes one
 * line to err (the plugin's own message went to the log), sets *exit_code
 * (docs/cli.md) and returns NULL. */
standalone_tokenizer *standalone_tokenizer_create(cfg_tree *cfg, registry *reg,
                                                  const log_sink *log, char *err,
                                                  size_t err_size, int *exit_code);

/* [control] Destroy the instance (NULL is a no-op). Call before
 * registry_destroy. */
void standalone_tokenizer_destroy(standalone_tokenizer *t);

/* The configured model alone: its ranks (parallel.* sizes, runtime.threads
 * shared among them as a pipeline does) without tokenizer, sampler, engine or
 * KV allocator. For the model tests and the model benchmark, which drive the
 * step interface directly. The model section is validated against the core's
 * keys plus the plugin's. */
typedef struct standalone_model {
    plugin_entry *pe;   /* the chosen plugin (owned by the registry) */
    struct model_group *group;
} standalone_model;

/* [control] As standalone_tokenizer_create, for the model. */
standalone_model *standalone_model_create(cfg_tree *cfg, registry *reg, const log_sink *log,
                                          char *err, size_t err_size, int *exit_code);
void standalone_model_destroy(standalone_model *m);

#endif /* MCRT_CORE_STANDALONE_H */
