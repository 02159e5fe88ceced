/*
 * core/runtime/host.c: the mcrt_host table (see host.h and mcrt/host.h).
 */
#include "runtime/host.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/config.h"     /* cfg_get_* */
#include "runtime/host_checkpoint.h" /* checkpoint_services */
#include "runtime/pipeline.h"  /* pipeline_note_error, pipeline_services */

static void host_logv(const mcrt_host *h, int32_t level, const char *fmt, va_list ap)
{
    host_ctx *c = host_ctx_of(h);
    if (c->pipe != NULL && level == MCRT_LOG_ERROR) {
        va_list ap2;
        va_copy(ap2, ap);
        pipeline_note_errorv(c->pipe, c->tag, fmt, ap2);
        va_end(ap2);
    }
    log_msgv(c->log, level, c->tag, fmt, ap);
}

static void host_log(const mcrt_host *h, int32_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    host_logv(h, level, fmt, ap);
    va_end(ap);
}

static void *host_alloc(const mcrt_host *h, size_t size, size_t align)
{
    (void)h;
    if (align == 0)
        align = _Alignof(max_align_t);
    if (align < sizeof(void *))
        align = sizeof(void *);
    if ((align & (align - 1)) != 0)
        return NULL;
    if (size == 0)
        size = 1;
    void *p = NULL;
    if (posix_memalign(&p, align, size) != 0)
        return NULL;
    return p;
}

static void host_free(const mcrt_host *h, void *p)
{
    (void)h;
    free(p);
}

/* Config accessors: a type mismatch is a plugin bug or a schema mismatch;
 * say which key. NOTFOUND is normal (unset key without default). */
static mcrt_status cfg_report(const mcrt_host *h, mcrt_status s, const char *key, const char *want)
{
    if (s == MCRT_E_CONFIG)
        host_log(h, MCRT_LOG_ERROR, "config key '%s' is not %s", key, want);
    return s;
}

static mcrt_status host_config_bool(const mcrt_host *h, const mcrt_config *cfg, const char *key, bool *out)
{
    if (cfg == NULL || key == NULL || out == NULL)
        return cfg == NULL ? MCRT_E_NOTFOUND : MCRT_E_INVAL;
    return cfg_report(h, cfg_get_bool(cfg, key, out), key, "a boolean");
}

static mcrt_status host_config_int(const mcrt_host *h, const mcrt_config *cfg, const char *key, int64_t *out)
{
    if (cfg == NULL || key == NULL || out == NULL)
        return cfg == NULL ? MCRT_E_NOTFOUND : MCRT_E_INVAL;
    return cfg_report(h, cfg_get_int(cfg, key, out), key, "an integer");
}

static mcrt_status host_config_float(const mcrt_host *h, const mcrt_config *cfg, const char *key, double *out)
{
    if (cfg == NULL || key == NULL || out == NULL)
        return cfg == NULL ? MCRT_E_NOTFOUND : MCRT_E_INVAL;
    return cfg_report(h, cfg_get_float(cfg, key, out), key, "a number");
}

static mcrt_status host_config_string(const mcrt_host *h, const mcrt_config *cfg, const char *key,
                                      const char **out)
{
    if (cfg == NULL || key == NULL || out == NULL)
        return cfg == NULL ? MCRT_E_NOTFOUND : MCRT_E_INVAL;
    return cfg_report(h, cfg_get_string(cfg, key, out), key, "a string");
}

static mcrt_status host_config_list_size(const mcrt_host *h, const mcrt_config *cfg, const char *key,
                                         size_t *out)
{
    if (cfg == NULL || key == NULL || out == NULL)
        return cfg == NULL ? MCRT_E_NOTFOUND : MCRT_E_INVAL;
    return cfg_report(h, cfg_list_size(cfg, key, out), key, "a list");
}

static mcrt_status host_config_list_item(const mcrt_host *h, const mcrt_config *cfg, const char *key,
                                         size_t i, const char **out)
{
    if (cfg == NULL || key == NULL || out == NULL)
        return cfg == NULL ? MCRT_E_NOTFOUND : MCRT_E_INVAL;
    return cfg_report(h, cfg_list_item(cfg, key, i, out), key, "a list");
}

static uint64_t host_clock_ns(const mcrt_host *h)
{
    (void)h;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const void *host_get_ext(const mcrt_host *h, const char *id)
{
    host_ctx *c = host_ctx_of(h);
    if (id == NULL)
        return NULL;
    if (strcmp(id, MCRT_HOST_EXT_PIPELINE) == 0 && c->pipe != NULL)
        return pipeline_services();
    if (strcmp(id, MCRT_HOST_EXT_CHECKPOINT) == 0)
        return checkpoint_services();
    return NULL;
}

host_ctx *host_ctx_create(const log_sink *log, const char *tag, struct pipeline *pipe)
{
    host_ctx *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->log = log;
    c->pipe = pipe;
    snprintf(c->tag, sizeof c->tag, "%s", tag ? tag : "?");
    mcrt_host *h = &c->host;
    h->abi_major = MCRT_ABI_MAJOR;
    h->abi_minor = MCRT_ABI_MINOR;
    h->struct_size = (uint32_t)sizeof(mcrt_host);
    h->host_data = c;
    h->log = host_log;
    h->logv = host_logv;
    h->alloc = host_alloc;
    h->free = host_free;
    h->config_bool = host_config_bool;
    h->config_int = host_config_int;
    h->config_float = host_config_float;
    h->config_string = host_config_string;
    h->config_list_size = host_config_list_size;
    h->config_list_item = host_config_list_item;
    h->clock_ns = host_clock_ns;
    h->get_ext = host_get_ext;
    return c;
}

void host_ctx_destroy(host_ctx *c)
{
    free(c);
}
