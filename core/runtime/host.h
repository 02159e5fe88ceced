/*
 * core/runtime/host.h: the host services table handed to plugins.
 *
 * Every plugin (for probe/init) and every instance (for create) gets its own
 * host_ctx, whose embedded mcrt_host is the table the plugin sees. host_data
 * points back at the context, so the core knows who calls: log lines carry
 * the tag ("sampler/default", "model/gpt r1"), and an instance's errors become
 * its pipeline's last error.
 */
#ifndef MCRT_CORE_HOST_H
#define MCRT_CORE_HOST_H

#include "mcrt/host.h"
#include "util/log.h"

struct pipeline;

typedef struct host_ctx {
    mcrt_host host;          /* what the plugin sees; host.host_data == this */
    const log_sink *log;     /* borrowed */
    struct pipeline *pipe;   /* NULL for plugin-level contexts (probe/init) */
    char tag[96];
} host_ctx;

/* tag is copied; pipe may be NULL. NULL on out of memory. */
host_ctx *host_ctx_create(const log_sink *log, const char *tag, struct pipeline *pipe);
void host_ctx_destroy(host_ctx *c);

/* The context behind a host pointer a plugin passed back to us. */
static inline host_ctx *host_ctx_of(const mcrt_host *h) { return (host_ctx *)h->host_data; }

#endif
