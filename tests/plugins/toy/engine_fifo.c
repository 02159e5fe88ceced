/*
 * mcrt-engine-fifo: a test-only engine with Megatron-Core's static scheduler
 * pools (reference/megatron-inference.md 1.4).
 *
 * submit(): the request joins the active pool (status
 * ACTIVE_BUT_NOT_GENERATING_TOKENS) while fewer than max_batch_size are
 * active, else the waiting queue (WAITING_IN_QUEUE). max_batch_size is the
 * core's key of the engine section (read, not redeclared; 8 when the host has
 * no value, Megatron's inference_max_requests default).
 * run(): MCRT_DONE when both pools are empty; otherwise the active pool runs
 * as one static batch through the controller (arrival order), completed and
 * failed requests leave it, it refills from the waiting queue in FIFO order,
 * and run() returns MCRT_OK. The waiting queue is an intrusive list through
 * each request's engine_data, so submit() never allocates.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mcrt/mcrt.h"
#include "toy_common.h"

#define EF_DEFAULT_MAX_BATCH 8

typedef struct ef_self {
    const mcrt_host *host;
    const mcrt_pipeline_services *svc;
    mcrt_request **active; /* [max_batch], arrival order */
    size_t n_active;
    size_t max_batch;
    mcrt_request *wait_head; /* FIFO; next = engine_data */
    mcrt_request *wait_tail;
    size_t n_waiting;
} ef_self;

static mcrt_status ef_create(const mcrt_host *host, const mcrt_config *cfg, void **out_self)
{
    const mcrt_pipeline_services *svc;
    int64_t mbs;
    ef_self *self;
    mcrt_status st = toy_check_host(host);
    if (st != MCRT_OK)
        return st;
    if (out_self == NULL) {
        toy_log(host, MCRT_LOG_ERROR, "create: out_self is NULL");
        return MCRT_E_INVAL;
    }
    svc = toy_pipeline(host);
    if (svc == NULL)
        return MCRT_E_UNSUPPORTED;
    if (!TOY_SVC_HAS(svc, controller_generate_static) || !TOY_SVC_HAS(svc, request_update)) {
        toy_log(host, MCRT_LOG_ERROR,
                "the pipeline services lack controller_generate_static or request_update");
        return MCRT_E_UNSUPPORTED;
    }
    st = toy_config_int(host, cfg, "max_batch_size", EF_DEFAULT_MAX_BATCH, 1, 1 << 20, &mbs);
    if (st != MCRT_OK)
        return st;
    self = (ef_self *)toy_calloc(host, 1, sizeof *self);
    if (self == NULL) {
        toy_log(host, MCRT_LOG_ERROR, "out of memory creating the fifo engine");
        return MCRT_E_NOMEM;
    }
    self->active = (mcrt_request **)toy_calloc(host, (size_t)mbs, sizeof *self->active);
    if (self->active == NULL) {
        toy_free(host, self);
        toy_log(host, MCRT_LOG_ERROR, "out of memory for an active pool of %lld",
                (long long)mbs);
        return MCRT_E_NOMEM;
    }
    self->host = host;
    self->svc = svc;
    self->max_batch = (size_t)mbs;
    *out_self = self;
    return MCRT_OK;
}

static void ef_destroy(void *vself)
{
    ef_self *self = (ef_self *)vself;
    if (self == NULL)
        return;
    /* Queued requests belong to the core, which frees them. */
    toy_free(self->host, self->active);
    toy_free(self->host, self);
}

static mcrt_status ef_set_status(ef_self *self, mcrt_request *req, uint32_t status)
{
    mcrt_request_update u;
    mcrt_status st;
    memset(&u, 0, sizeof u);
    u.struct_size = (uint32_t)sizeof u;
    u.kind = MCRT_UPDATE_STATUS;
    u.status = status;
    st = self->svc->request_update(self->host, req, &u);
    if (st != MCRT_OK)
        toy_log(self->host, MCRT_LOG_ERROR, "request %llu: the core rejected status %u (%s)",
                (unsigned long long)req->id, status, mcrt_status_str(st));
    return st;
}

static mcrt_status ef_submit(void *vself, mcrt_request *req)
{
    ef_self *self = (ef_self *)vself;
    mcrt_status st;
    if (req == NULL || !MCRT_HAS(req, engine_data)) {
        toy_log(self->host, MCRT_LOG_ERROR, "submit: the request is NULL or too old");
        return MCRT_E_INVAL;
    }
    if (self->n_active < self->max_batch) {
        st = ef_set_status(self, req, MCRT_REQ_ACTIVE_BUT_NOT_GENERATING_TOKENS);
        if (st == MCRT_OK)
            self->active[self->n_active++] = req;
        return st;
    }
    st = ef_set_status(self, req, MCRT_REQ_WAITING_IN_QUEUE);
    if (st != MCRT_OK)
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

static int ef_finished(const mcrt_request *req)
{
    return req->status == MCRT_REQ_COMPLETED || req->status == MCRT_REQ_FAILED;
}

/* Move the head of the waiting queue to the end of the active pool. */
static mcrt_status ef_promote(ef_self *self)
{
    mcrt_request *req = self->wait_head;
    mcrt_status st = ef_set_status(self, req, MCRT_REQ_ACTIVE_BUT_NOT_GENERATING_TOKENS);
    if (st != MCRT_OK)
        return st;
    self->wait_head = (mcrt_request *)req->engine_data;
    if (self->wait_head == NULL)
        self->wait_tail = NULL;
    req->engine_data = NULL;
    self->n_waiting--;
    self->active[self->n_active++] = req;
    return MCRT_OK;
}

static mcrt_status ef_run(void *vself)
{
    ef_self *self = (ef_self *)vself;
    size_t i, kept = 0;
    mcrt_status st, gen;

    if (self->n_active == 0 && self->n_waiting == 0)
        return MCRT_DONE;
    while (self->n_active < self->max_batch && self->n_waiting > 0)
        if ((st = ef_promote(self)) != MCRT_OK)
            return st;

    gen = self->svc->controller_generate_static(self->host, self->active, self->n_active);
    if (gen != MCRT_OK)
        toy_log(self->host, MCRT_LOG_ERROR, "the static batch of %zu requests failed: %s",
                self->n_active, mcrt_status_str(gen));

    /* Completed and failed requests leave the pool; order is kept. */
    for (i = 0; i < self->n_active; i++)
        if (!ef_finished(self->active[i]))
            self->active[kept++] = self->active[i];
    if (gen != MCRT_OK) {
        self->n_active = kept;
        return gen;
    }
    if (kept > 0) {
        /* A static batch runs to the end: an unfinished request is a
         * controller bug, and running it again would repeat its tokens. */
        toy_log(self->host, MCRT_LOG_ERROR,
                "the controller returned with %zu of %zu requests unfinished (first: request "
                "%llu, status %u)",
                kept, self->n_active, (unsigned long long)self->active[0]->id,
                self->active[0]->status);
        self->n_active = kept;
        return MCRT_E_INTERNAL;
    }
    self->n_active = 0;
    while (self->n_active < self->max_batch && self->n_waiting > 0)
        if ((st = ef_promote(self)) != MCRT_OK)
            return st;
    return MCRT_OK;
}

static const mcrt_engine_iface ef_iface = {
    (uint32_t)sizeof(mcrt_engine_iface),
    ef_create,
    ef_destroy,
    ef_submit,
    ef_run,
};

static const void *ef_get_iface(const char *iface_id)
{
    if (iface_id != NULL && strcmp(iface_id, MCRT_IFACE_ENGINE) == 0)
        return &ef_iface;
    return NULL;
}

MCRT_PLUGIN_DEFINE(MCRT_KIND_ENGINE, "fifo", "0.1.0",
                   "test-only: static batches of max_batch_size in arrival order", NULL, NULL,
                   NULL, NULL, ef_get_iface);
