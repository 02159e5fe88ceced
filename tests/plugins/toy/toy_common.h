/*
 * tests/plugins/toy/toy_common.h: small helpers shared by the toy plugins
 * (logging, config reads with a fallback default, host memory, the pipeline
 * services extension).
 *
 * Everything here is `static inline`, so each plugin keeps its own copy and
 * exports nothing but `mcrt_plugin`. Only the public ABI (include/mcrt) is
 * used. The core prefixes every log line with the plugin's kind and name, so
 * messages here do not repeat them.
 */
#ifndef MCRT_TOY_COMMON_H
#define MCRT_TOY_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mcrt/mcrt.h"

/* Log through the host (nothing when it has no logger). */
static inline void toy_log(const mcrt_host *host, int32_t level, const char *fmt, ...)
    MCRT_PRINTF(3, 4);
static inline void toy_log(const mcrt_host *host, int32_t level, const char *fmt, ...)
{
    va_list ap;
    if (host == NULL || !MCRT_HAS(host, logv) || host->logv == NULL)
        return;
    va_start(ap, fmt);
    host->logv(host, level, fmt, ap);
    va_end(ap);
}

/* Does the host have what every toy uses (logv, alloc/free, the config
 * accessors, get_ext)? MCRT_E_ABI (logged when possible) when not. */
static inline mcrt_status toy_check_host(const mcrt_host *host)
{
    if (host == NULL)
        return MCRT_E_INVAL;
    if (!MCRT_HAS(host, get_ext) || host->alloc == NULL || host->free == NULL ||
        host->config_int == NULL || host->config_string == NULL) {
        toy_log(host, MCRT_LOG_ERROR, "the host table lacks alloc/free/config services");
        return MCRT_E_ABI;
    }
    return MCRT_OK;
}

/* Zeroed host memory for count * size bytes (at least 1); NULL when out of
 * memory or when the size overflows. Free with toy_free. */
static inline void *toy_calloc(const mcrt_host *host, size_t count, size_t size)
{
    void *p;
    size_t total;
    if (count != 0 && size > SIZE_MAX / count)
        return NULL;
    total = count * size;
    if (total == 0)
        total = 1;
    p = host->alloc(host, total, 0);
    if (p != NULL)
        memset(p, 0, total);
    return p;
}

static inline void toy_free(const mcrt_host *host, void *p)
{
    if (p != NULL)
        host->free(host, p);
}

/* Read an INT key. MCRT_E_NOTFOUND (not set and no default) means "use
 * `def`"; any other error is returned. The value must lie in [lo, hi], else
 * MCRT_E_CONFIG with a message naming the key. */
static inline mcrt_status toy_config_int(const mcrt_host *host, const mcrt_config *cfg,
                                         const char *key, int64_t def, int64_t lo, int64_t hi,
                                         int64_t *out)
{
    int64_t v = def;
    mcrt_status st = host->config_int(host, cfg, key, &v);
    if (st == MCRT_E_NOTFOUND) {
        v = def;
    } else if (st != MCRT_OK) {
        toy_log(host, MCRT_LOG_ERROR, "cannot read config key '%s' (%s)", key,
                mcrt_status_str(st));
        return st;
    }
    if (v < lo || v > hi) {
        toy_log(host, MCRT_LOG_ERROR, "config key '%s' = %lld is out of range [%lld, %lld]",
                key, (long long)v, (long long)lo, (long long)hi);
        return MCRT_E_CONFIG;
    }
    *out = v;
    return MCRT_OK;
}

/* Read a STRING key; MCRT_E_NOTFOUND means "use `def`". */
static inline mcrt_status toy_config_string(const mcrt_host *host, const mcrt_config *cfg,
                                            const char *key, const char *def, const char **out)
{
    const char *v = def;
    mcrt_status st = host->config_string(host, cfg, key, &v);
    if (st == MCRT_E_NOTFOUND) {
        v = def;
    } else if (st != MCRT_OK) {
        toy_log(host, MCRT_LOG_ERROR, "cannot read config key '%s' (%s)", key,
                mcrt_status_str(st));
        return st;
    }
    if (v == NULL) {
        toy_log(host, MCRT_LOG_ERROR, "config key '%s' has no value", key);
        return MCRT_E_CONFIG;
    }
    *out = v;
    return MCRT_OK;
}

/* The pipeline services extension, or NULL (logged) when the host has none. */
static inline const mcrt_pipeline_services *toy_pipeline(const mcrt_host *host)
{
    const mcrt_pipeline_services *svc = NULL;
    if (MCRT_HAS(host, get_ext) && host->get_ext != NULL)
        svc = (const mcrt_pipeline_services *)host->get_ext(host, MCRT_HOST_EXT_PIPELINE);
    if (svc == NULL)
        toy_log(host, MCRT_LOG_ERROR, "the host has no '%s' extension", MCRT_HOST_EXT_PIPELINE);
    return svc;
}

/* A pipeline-services slot is usable: inside the table the host built, and set. */
#define TOY_SVC_HAS(svc, slot) (MCRT_HAS(svc, slot) && (svc)->slot != NULL)

#endif /* MCRT_TOY_COMMON_H */
