/*
 * tests/common/fake_host.h: a minimal mcrt_host for tests that drive one
 * plugin directly (dlopen + its iface), without the runtime.
 *
 *   - config: a flat key/value list (struct mcrt_config below, filled with
 *     fake_cfg_set); lists are never set (NOTFOUND);
 *   - log: the last ERROR message in fake_last_error, counted in
 *     fake_errors (other levels are dropped);
 *   - alloc/free: posix_memalign, counted in fake_allocs / fake_live;
 *   - clock_ns: fake_clock_ns; get_ext: nothing.
 *
 * Header-only (static): include it in one test file.
 */
#ifndef MCRT_TESTS_COMMON_FAKE_HOST_H
#define MCRT_TESTS_COMMON_FAKE_HOST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcrt/mcrt.h"

#define FAKE_MAX_KEYS 16

struct mcrt_config {
    const char *key[FAKE_MAX_KEYS];
    const char *value[FAKE_MAX_KEYS];
    int n;
};

static char fake_last_error[2048];
static int fake_errors;
static long fake_allocs, fake_live;
static uint64_t fake_clock_ns;

/* Set (or replace) key k; the strings are borrowed. */
static inline void fake_cfg_set(struct mcrt_config *c, const char *k, const char *v)
{
    for (int i = 0; i < c->n; i++)
        if (strcmp(c->key[i], k) == 0) {
            c->value[i] = v;
            return;
        }
    if (c->n < FAKE_MAX_KEYS) {
        c->key[c->n] = k;
        c->value[c->n] = v;
        c->n++;
    }
}

static void fake_logv(const mcrt_host *h, int32_t level, const char *fmt, va_list ap)
    MCRT_PRINTF(3, 0);
static void fake_logv(const mcrt_host *h, int32_t level, const char *fmt, va_list ap)
{
    (void)h;
    if (level == MCRT_LOG_ERROR) {
        vsnprintf(fake_last_error, sizeof fake_last_error, fmt, ap);
        fake_errors++;
    }
}

static void fake_log(const mcrt_host *h, int32_t level, const char *fmt, ...) MCRT_PRINTF(3, 4);
static void fake_log(const mcrt_host *h, int32_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fake_logv(h, level, fmt, ap);
    va_end(ap);
}

static void *fake_alloc(const mcrt_host *h, size_t size, size_t align)
{
    void *p = NULL;
    (void)h;
    if (align < sizeof(void *))
        align = sizeof(void *);
    if (posix_memalign(&p, align, size ? size : 1) != 0)
        return NULL;
    fake_allocs++;
    fake_live++;
    return p;
}

static void fake_free(const mcrt_host *h, void *p)
{
    (void)h;
    if (p != NULL)
        fake_live--;
    free(p);
}

static const char *fake_get(const mcrt_config *c, const char *k)
{
    for (int i = 0; c != NULL && i < c->n; i++)
        if (strcmp(c->key[i], k) == 0)
            return c->value[i];
    return NULL;
}

static mcrt_status fake_bool(const mcrt_host *h, const mcrt_config *c, const char *k, bool *out)
{
    const char *v = fake_get(c, k);
    (void)h;
    if (v == NULL)
        return MCRT_E_NOTFOUND;
    *out = strcmp(v, "true") == 0;
    return MCRT_OK;
}

static mcrt_status fake_int(const mcrt_host *h, const mcrt_config *c, const char *k, int64_t *out)
{
    const char *v = fake_get(c, k);
    (void)h;
    if (v == NULL)
        return MCRT_E_NOTFOUND;
    *out = strtoll(v, NULL, 10);
    return MCRT_OK;
}

static mcrt_status fake_float(const mcrt_host *h, const mcrt_config *c, const char *k,
                              double *out)
{
    const char *v = fake_get(c, k);
    (void)h;
    if (v == NULL)
        return MCRT_E_NOTFOUND;
    *out = strtod(v, NULL);
    return MCRT_OK;
}

static mcrt_status fake_string(const mcrt_host *h, const mcrt_config *c, const char *k,
                               const char **out)
{
    const char *v = fake_get(c, k);
    (void)h;
    if (v == NULL)
        return MCRT_E_NOTFOUND;
    *out = v;
    return MCRT_OK;
}

static mcrt_status fake_list_size(const mcrt_host *h, const mcrt_config *c, const char *k,
                                  size_t *out)
{
    (void)h, (void)c, (void)k, (void)out;
    return MCRT_E_NOTFOUND;
}

static mcrt_status fake_list_item(const mcrt_host *h, const mcrt_config *c, const char *k,
                                  size_t i, const char **out)
{
    (void)h, (void)c, (void)k, (void)i, (void)out;
    return MCRT_E_NOTFOUND;
}

static uint64_t fake_clock(const mcrt_host *h)
{
    (void)h;
    return fake_clock_ns;
}

static const void *fake_ext(const mcrt_host *h, const char *id)
{
    (void)h, (void)id;
    return NULL;
}

static const mcrt_host fake_host = {
    MCRT_ABI_MAJOR, MCRT_ABI_MINOR, (uint32_t)sizeof(mcrt_host), NULL, fake_log, fake_logv,
    fake_alloc, fake_free, fake_bool, fake_int, fake_float, fake_string, fake_list_size,
    fake_list_item, fake_clock, fake_ext,
};

#endif /* MCRT_TESTS_COMMON_FAKE_HOST_H */
