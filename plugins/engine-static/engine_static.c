/*
 * mcrt-engine-static: Megatron-Core's static engine (MCoreEngine /
 * StaticInferenceEngine legacy path) and its Scheduler (reference §1.4).
 *
 * Three pools, as Megatron keeps them:
 *   active     at most max_batch_size requests, in arrival order
 *   waiting    a FIFO queue of the rest
 *   completed  requests COMPLETED or FAILED, in request-id order of completion
 * submit(): a request joins the active pool (status
 * ACTIVE_BUT_NOT_GENERATING_TOKENS) while it has room, else the waiting
 * queue (WAITING_IN_QUEUE); ids are the core's (0, 1, 2, ... in arrival
 * order, Megatron's Counter).
 * run(): MCRT_DONE when active and waiting are empty. Otherwise the active
 * pool runs as one static batch through the controller and runs to
 * completion; its requests move to the completed pool; the active pool is
 * refilled from the waiting queue in FIFO order (popitem(last=False)); MCRT_OK.
 * Results reach the user ordered by request id (the core's order, Megatron
 * v0.12+).
 *
 * One difference from Megatron, on purpose: every request keeps its own
 * sampling parameters. Megatron applies the first request's parameters to the
 * whole batch (list(active_requests.values())[0].sampling_params), so a
 * request's output would depend on which batch it landed in.
 *
 * The waiting queue is an intrusive list through each request's engine_data,
 * so submit() never allocates.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mcrt/mcrt.h"

#define ES_DEFAULT_MAX_BATCH 8

/* The plugin's name. tests/plugins/toy builds this same file as the
 * test-only engine "fifo" (-DES_PLUGIN_NAME="fifo"), so the core's own tests
 * run the real scheduler without depending on the shipped plugin folder. */
#ifndef ES_PLUGIN_NAME
#define ES_PLUGIN_NAME "static"
#endif

typedef struct es_self {
    const mcrt_host *host;
    const mcrt_pipeline_services *svc;
    mcrt_request **active;   /* [max_batch], arrival order */
    size_t n_active;
    size_t max_batch;
    mcrt_request *wait_head; /* FIFO; next = engine_data */
    mcrt_request *wait_tail;
    size_t n_waiting;
    size_t n_completed, n_failed, n_batches;
} es_self;

static mcrt_status es_create(const mcrt_host *host, const mcrt_config *cfg, void **out_self)
{
    if (host == NULL || out_self == NULL)
        return MCRT_E_INVAL;
    const mcrt_pipeline_services *svc = host->get_ext(host, MCRT_HOST_EXT_PIPELINE);
    if (svc == NULL || !MCRT_HAS(svc, request_update) || svc->controller_generate_static == NULL) {
        host->log(host, MCRT_LOG_ERROR, "the host lacks the pipeline services (%s) or their "
                  "controller_generate_static", MCRT_HOST_EXT_PIPELINE);
        return MCRT_E_UNSUPPORTED;
    }
    int64_t mbs = ES_DEFAULT_MAX_BATCH;
    mcrt_status st = host->config_int(host, cfg, "max_batch_size", &mbs);
    if (st != MCRT_OK && st != MCRT_E_NOTFOUND)
        return st;
    if (mbs < 1 || mbs > (1 << 20)) {
        host->log(host, MCRT_LOG_ERROR, "engine.max_batch_size = %lld: expected 1 .. %d",
                  (long long)mbs, 1 << 20);
        return MCRT_E_CONFIG;
    }
    es_self *self = host->alloc(host, sizeof *self, 0);
    if (self == NULL)
        return MCRT_E_NOMEM;
    memset(self, 0, sizeof *self);
    self->active = host->alloc(host, sizeof(*self->active) * (size_t)mbs, 0);
    if (self->active == NULL) {
        host->free(host, self);
        host->log(host, MCRT_LOG_ERROR, "out of memory for an active pool of %lld",
                  (long long)mbs);
        return MCRT_E_NOMEM;
    }
    self->host = host;
    self->svc = svc;
    self->max_batch = (size_t)mbs;
    *out_self = self;
    return MCRT_OK;
}

static void es_destroy(void *vself)
{
    es_self *self = vself;
    if (self == NULL)
        return;
    if (self->n_batches > 0)
        self->host->log(self->host, MCRT_LOG_DEBUG,
                        "%zu static batches; %zu requests completed, %zu failed",
                        self->n_batches, self->n_completed, self->n_failed);
    /* queued requests belong to the core, which frees them */
    self->host->free(self->host, self->active);
    self->host->free(self->host, self);
}

static mcrt_status es_set_status(es_self *self, mcrt_request *req, uint32_t status)
{
    mcrt_request_update u;
    memset(&u, 0, sizeof u);
    u.struct_size = (uint32_t)sizeof u;
    u.kind = MCRT_UPDATE_STATUS;
    u.status = status;
    mcrt_status st = self->svc->request_update(self->host, req, &u);
    if (st != MCRT_OK)
        self->host->log(self->host, MCRT_LOG_ERROR,
                        "request %llu: the core rejected status %u (%s)",
                        (unsigned long long)req->id, status, mcrt_status_str(st));
    return st;
}

static mcrt_status es_submit(void *vself, mcrt_request *req)
{
    es_self *self = vself;
    if (self == NULL || req == NULL || !MCRT_HAS(req, engine_data)) {
        if (self != NULL)
            self->host->log(self->host, MCRT_LOG_ERROR, "submit: the request is NULL or too old");
        return MCRT_E_INVAL;
    }
    mcrt_status st;
    if (self->n_active < self->max_batch) {
        st = es_set_status(self, req, MCRT_REQ_ACTIVE_BUT_NOT_GENERATING_TOKENS);
        if (st == MCRT_OK)
            self->active[self->n_active++] = req;
        return st;
    }
    if ((st = es_set_status(self, req, MCRT_REQ_WAITING_IN_QUEUE)) != MCRT_OK)
        return st;
    req->engine_data = NULL;
    if (self->wait_tail != NULL)
        self->wait_tail->engine_data = req;
    else
        self->wait_head = req;
    self->wait_tail = req;
    self->n_waiting++;
    return MCRT_OK;
}

static int es_finished(const mcrt_request *req)
{
    return req->status == MCRT_REQ_COMPLETED || req->status == MCRT_REQ_FAILED;
}

/* The head of the waiting queue joins the end of the active pool. */
static mcrt_status es_promote(es_self *self)
{
    mcrt_request *req = self->wait_head;
    mcrt_status st = es_set_status(self, req, MCRT_REQ_ACTIVE_BUT_NOT_GENERATING_TOKENS);
    if (st != MCRT_OK)
        return st;
    self->wait_head = req->engine_data;
    if (self->wait_head == NULL)
        self->wait_tail = NULL;
    req->engine_data = NULL;
    self->n_waiting--;
    self->active[self->n_active++] = req;
    return MCRT_OK;
}

static mcrt_status es_run(void *vself)
{
    es_self *self = vself;
    mcrt_status st;
    if (self->n_active == 0 && self->n_waiting == 0)
        return MCRT_DONE;
    while (self->n_active < self->max_batch && self->n_waiting > 0)
        if ((st = es_promote(self)) != MCRT_OK)
            return st;
    self->n_batches++;
    self->host->log(self->host, MCRT_LOG_DEBUG,
                    "static batch %zu: requests %llu..%llu (%zu), %zu waiting", self->n_batches,
                    (unsigned long long)self->active[0]->id,
                    (unsigned long long)self->active[self->n_active - 1]->id, self->n_active,
                    self->n_waiting);
    mcrt_status gen = self->svc->controller_generate_static(self->host, self->active,
                                                            self->n_active);
    if (gen != MCRT_OK)
        self->host->log(self->host, MCRT_LOG_ERROR,
                        "the static batch of %zu requests failed: %s", self->n_active,
                        mcrt_status_str(gen));
    /* update_requests_pools: finished requests move to the completed pool */
    size_t kept = 0;
    for (size_t i = 0; i < self->n_active; i++) {
        mcrt_request *r = self->active[i];
        if (!es_finished(r)) {
            self->active[kept++] = r;
            continue;
        }
        if (r->status == MCRT_REQ_COMPLETED)
            self->n_completed++;
        else
            self->n_failed++;
    }
    if (gen != MCRT_OK) {
        self->n_active = kept;
        return gen;
    }
    if (kept > 0) {
        /* a static batch runs to the end: an unfinished request is a
         * controller bug, and running it again would repeat its tokens */
        self->host->log(self->host, MCRT_LOG_ERROR,
                        "the controller returned with %zu of %zu requests unfinished (first: "
                        "request %llu, status %u)", kept, self->n_active,
                        (unsigned long long)self->active[0]->id, self->active[0]->status);
        self->n_active = kept;
        return MCRT_E_INTERNAL;
    }
    self->n_active = 0;
    while (self->n_active < self->max_batch && self->n_waiting > 0)
        if ((st = es_promote(self)) != MCRT_OK)
            return st;
    return MCRT_OK;
}

static const mcrt_engine_iface es_iface = {
    (uint32_t)sizeof(mcrt_engine_iface),
    es_create,
    es_destroy,
    es_submit,
    es_run,
};

static const void *es_get_iface(const char *iface_id)
{
    if (iface_id != NULL && strcmp(iface_id, MCRT_IFACE_ENGINE) == 0)
        return &es_iface;
    return NULL;
}

MCRT_PLUGIN_DEFINE(MCRT_KIND_ENGINE, ES_PLUGIN_NAME, "1.0.0",
                   "Megatron-Core's static engine: FIFO static batches of max_batch_size, "
                   "each run to completion",
                   NULL, NULL, NULL, NULL, es_get_iface);
