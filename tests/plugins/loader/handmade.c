/*
 * tests/plugins/loader/handmade.c: descriptors written by hand, without
 * MCRT_PLUGIN_DEFINE (which always writes the current version and size), for
 * the plugins the loader must refuse before it runs any of their code.
 * meson.build compiles this file once per plugin:
 *
 *   mcrt-sampler-oldabi.so       HM_MAJOR 0, HM_MINOR 0   incompatible ABI (plugin 0.0, host 1.0)
 *   mcrt-sampler-newerminor.so   HM_MAJOR 1, HM_MINOR 99  built for 1.99, host 1.0
 *   mcrt-sampler-smallstruct.so  HM_SIZE 16               struct_size too small for name, probe, ...
 *
 * The rest of the descriptor is a complete 1.0 descriptor, so a loader that
 * reads past a bad header finds valid pointers, and a loader that wrongly
 * runs the probe gets a score of 0 and a reason that says so.
 */
#include <stdio.h>

#include "mcrt/mcrt.h" /* the plugin ABI */

#if !defined(HM_MAJOR) || !defined(HM_MINOR) || !defined(HM_NAME)
#error "define HM_MAJOR, HM_MINOR and HM_NAME (and optionally HM_SIZE)"
#endif
#ifndef HM_SIZE
#define HM_SIZE sizeof(mcrt_plugin_entry)
#endif

static int32_t handmade_probe(const mcrt_host *host, const mcrt_config *cfg, char *why,
                              size_t why_size)
{
    (void)cfg;
    if (host != NULL)
        host->log(host, MCRT_LOG_ERROR, "%s: the loader ran a plugin it should have refused",
                  HM_NAME);
    if (why != NULL && why_size > 0)
        snprintf(why, why_size, "BUG: the loader should have refused this plugin");
    return 0;
}

static const void *handmade_get_iface(const char *iface_id)
{
    (void)iface_id;
    return NULL;
}

extern MCRT_PLUGIN_EXPORT const mcrt_plugin_entry mcrt_plugin;
MCRT_PLUGIN_EXPORT const mcrt_plugin_entry mcrt_plugin = {
    (uint16_t)HM_MAJOR,
    (uint16_t)HM_MINOR,
    (uint32_t)HM_SIZE,
    MCRT_KIND_SAMPLER,
    0u,
    HM_NAME,
    "1.0.0",
    "test-only: a hand-made descriptor the loader must refuse",
    NULL,
    handmade_probe,
    NULL,
    NULL,
    handmade_get_iface,
};
