/*
 * mcrt/engine.h: the engine interface ("mcrt.engine/1"), Megatron-Core's
 * AbstractEngine level: which requests run together, and when.
 *
 * The core submits requests, then calls run() until it returns MCRT_DONE. The
 * engine drives the controller through the pipeline services
 * (controller_generate_static and, later, step-level calls) and keeps its
 * pools (active / waiting / completed) in its own instance.
 */
#ifndef MCRT_ENGINE_H
#define MCRT_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#include "mcrt/config.h"  /* mcrt_config */
#include "mcrt/plugin.h"  /* mcrt_host, mcrt_status */
#include "mcrt/request.h" /* mcrt_request */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mcrt_engine_iface {
    uint32_t struct_size;

    /* [control] Create the engine from its config section. On success
     * *out_self is plugin-owned until destroy. */
    mcrt_status (*create)(const mcrt_host *host, const mcrt_config *cfg, void **out_self);

    /* [control] Free the instance. Requests still queued are dropped; they
     * belong to the core, which frees them. */
    void (*destroy)(void *self);

    /* [control] Queue a request (core-owned; valid until the engine reports
     * it COMPLETED or FAILED). The engine sets its pool through request_update
     * MCRT_UPDATE_STATUS (WAITING_IN_QUEUE or ACTIVE_BUT_NOT_GENERATING). */
    mcrt_status (*submit)(void *self, mcrt_request *req);

    /* [control] Make progress: run one batch (static) or one step (dynamic).
     * Returns MCRT_OK while work remains, MCRT_DONE once every submitted
     * request is COMPLETED or FAILED, or an error when the engine cannot go on. */
    mcrt_status (*run)(void *self);
} mcrt_engine_iface;

#ifdef __cplusplus
}
#endif

#endif /* MCRT_ENGINE_H */
