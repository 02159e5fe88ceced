/*
 * admission.c: an mcrt engine, "admission": static batches like Megatron's
 * engine, plus admission control. A request whose prompt is longer than
 * `max_prompt_bytes` is refused at submit: it fails at once with a message,
 * and the others run. Requests are admitted in arrival order into static
 * batches of `max_batch_size` (the core's engine key), each run to the end
 * by the controller.
 *
 *   engine:
 *     name: admission
 *     max_batch_size: 4
 *     max_prompt_bytes: 2000
 *
 * Built out of tree against the installed headers (see meson.build).
 */
#include <stdio.h>  /* snprintf */
#include <string.h> /* memset, strcmp */

#include "mcrt/mcrt.h"

typedef struct admission {
    const mcrt_host *host;
    const mcrt_pipeline_services *svc;
    mcrt_request **queue; /* every admitted request not yet run, arrival order */
    size_t n, cap;
    size_t max_batch;
    int64_t max_prompt_bytes;
} admission;

static const mcrt_config_key admission_keys[] = {
    MCRT_CONFIG_KEY_MIN(MCRT_CFG_INT, "max_prompt_bytes", "4096", 1,
                        "refuse requests whose prompt is longer than this"),
    MCRT_CONFIG_KEY_END,
};

static mcrt_status admission_create(const mcrt_host *host, const mcrt_config *cfg, void **out)
{
    const mcrt_pipeline_services *svc = host->get_ext(host, MCRT_HOST_EXT_PIPELINE);
    if (svc == NULL || !MCRT_HAS(svc, request_update))
        return MCRT_E_UNSUPPORTED;
    int64_t mbs = 8, maxb = 4096;
    if (host->config_int(host, cfg, "max_batch_size", &mbs) != MCRT_OK)
        mbs = 8; /* the core's key; 8 when absent */
    mcrt_status st = host->config_int(host, cfg, "max_prompt_bytes", &maxb);
    if (st != MCRT_OK)
        return st;
    admission *a = host->alloc(host, sizeof *a, 0);
    if (a == NULL)
        return MCRT_E_NOMEM;
    memset(a, 0, sizeof *a);
    a->host = host;
    a->svc = svc;
    a->max_batch = mbs > 0 ? (size_t)mbs : 1;
    a->max_prompt_bytes = maxb;
    *out = a;
    return MCRT_OK;
}

static void admission_destroy(void *self)
{
    admission *a = self;
    a->host->free(a->host, a->queue);
    a->host->free(a->host, a);
}

static mcrt_status update(admission *a, mcrt_request *req, uint32_t kind, uint32_t status,
                          const char *error)
{
    mcrt_request_update u;
    memset(&u, 0, sizeof u);
    u.struct_size = (uint32_t)sizeof u;
    u.kind = kind;
    u.status = status;
    u.finish_reason = status == MCRT_REQ_FAILED ? MCRT_FINISH_ERROR : MCRT_FINISH_NONE;
    u.error = error;
    return a->svc->request_update(a->host, req, &u);
}

static mcrt_status admission_submit(void *self, mcrt_request *req)
{
    admission *a = self;
    if ((int64_t)req->prompt_len > a->max_prompt_bytes) {
        char msg[160];
        snprintf(msg, sizeof msg, "refused by admission control: the prompt is %zu bytes, "
                 "max_prompt_bytes is %lld", req->prompt_len, (long long)a->max_prompt_bytes);
        return update(a, req, MCRT_UPDATE_FINISH, MCRT_REQ_FAILED, msg);
    }
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 16;
        mcrt_request **q = a->host->alloc(a->host, cap * sizeof *q, 0);
        if (q == NULL)
            return MCRT_E_NOMEM;
        if (a->n)
            memcpy(q, a->queue, a->n * sizeof *q);
        a->host->free(a->host, a->queue);
        a->queue = q;
        a->cap = cap;
    }
    a->queue[a->n++] = req;
    return update(a, req, MCRT_UPDATE_STATUS, MCRT_REQ_WAITING_IN_QUEUE, NULL);
}

/* One static batch: the first max_batch_size queued requests. */
static mcrt_status admission_run(void *self)
{
    admission *a = self;
    if (a->n == 0)
        return MCRT_DONE;
    size_t k = a->n < a->max_batch ? a->n : a->max_batch;
    for (size_t i = 0; i < k; i++)
        update(a, a->queue[i], MCRT_UPDATE_STATUS, MCRT_REQ_ACTIVE_BUT_NOT_GENERATING_TOKENS,
               NULL);
    mcrt_status st = a->svc->controller_generate_static(a->host, a->queue, k);
    memmove(a->queue, a->queue + k, (a->n - k) * sizeof *a->queue);
    a->n -= k;
    return st;
}

static const mcrt_engine_iface admission_iface = {
    sizeof(mcrt_engine_iface), admission_create, admission_destroy, admission_submit,
    admission_run,
};

static const void *admission_get_iface(const char *id)
{
    return strcmp(id, MCRT_IFACE_ENGINE) == 0 ? &admission_iface : NULL;
}

MCRT_PLUGIN_DEFINE(MCRT_KIND_ENGINE, "admission", "1.0.0",
                   "static batches with admission control (max_prompt_bytes)", admission_keys,
                   NULL, NULL, NULL, admission_get_iface);
