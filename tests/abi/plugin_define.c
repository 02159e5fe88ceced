/*
 * tests/abi/plugin_define.c: mcrt/mcrt.h as a plugin author uses it, compiled
 * as C11 (abi-plugin-define-c) and, copied to a .cc, as C++17
 * (abi-plugin-define-cpp), both -Wall -Wextra -Wpedantic -Werror:
 * MCRT_PLUGIN_DEFINE, every MCRT_CONFIG_KEY* initializer and MCRT_HAS must
 * compile in both languages and do what they say at run time. With
 * -DPLUGIN_DEFINE_NO_MAIN the same file is a plugin module, which the nm
 * check proves exports the unmangled `mcrt_plugin` from C++ too.
 */
#include <stdio.h>
#include <string.h>

#include "mcrt/mcrt.h" /* the whole plugin ABI, in one include */

static const mcrt_config_key demo_keys[] = {
    MCRT_CONFIG_KEY(MCRT_CFG_BOOL, "verbose", "false", "log every call"),
    MCRT_CONFIG_KEY_RANGE(MCRT_CFG_FLOAT, "strength", "0.5", 0.0, 1.0, "how hard to try"),
    MCRT_CONFIG_KEY_MIN(MCRT_CFG_INT, "threads", "1", 1, "worker threads"),
    MCRT_CONFIG_KEY_ENUM("mode", "fast", "fast|exact", "speed or accuracy"),
    MCRT_CONFIG_KEY_END,
};

static int32_t demo_probe(const mcrt_host *host, const mcrt_config *cfg, char *why,
                          size_t why_size)
{
    (void)host;
    (void)cfg;
    (void)why;
    (void)why_size;
    return 3;
}

static mcrt_status demo_create(const mcrt_host *host, const mcrt_config *cfg, void **out_self)
{
    (void)host;
    (void)cfg;
    *out_self = NULL;
    return MCRT_OK;
}

static void demo_destroy(void *self)
{
    (void)self;
}

static mcrt_status demo_sample(void *self, const mcrt_sample_batch *batch, int32_t *out_tokens,
                               float *out_logprobs)
{
    (void)self;
    (void)batch;
    (void)out_tokens;
    (void)out_logprobs;
    return MCRT_E_UNSUPPORTED;
}

static const mcrt_sampler_iface demo_iface = {
    sizeof(mcrt_sampler_iface), demo_create, demo_destroy, NULL, demo_sample,
};

static const void *demo_get_iface(const char *iface_id)
{
    return strcmp(iface_id, MCRT_IFACE_SAMPLER) == 0 ? &demo_iface : NULL;
}

MCRT_PLUGIN_DEFINE(MCRT_KIND_SAMPLER, "demo", "0.1.0", "header compile test", demo_keys,
                   demo_probe, NULL, NULL, demo_get_iface);

#ifndef PLUGIN_DEFINE_NO_MAIN

static int failures;

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "plugin_define: FAILED: %s\n", what);
        failures++;
    }
}

int main(void)
{
    /* The macro fills in the versions and the size; the rest is ours. */
    const mcrt_plugin_entry *d = &mcrt_plugin;
    check(d->abi_major == MCRT_ABI_MAJOR && d->abi_minor == MCRT_ABI_MINOR, "versions");
    check(d->struct_size == sizeof(mcrt_plugin_entry), "descriptor struct_size");
    check(d->kind == MCRT_KIND_SAMPLER && d->flags == 0, "kind and flags");
    check(strcmp(d->name, "demo") == 0 && strcmp(d->version, "0.1.0") == 0, "name, version");
    check(d->config_keys == demo_keys && d->probe == demo_probe, "keys and probe");
    check(d->init == NULL && d->fini == NULL, "optional init/fini left NULL");
    check(d->get_iface(MCRT_IFACE_SAMPLER) == &demo_iface, "get_iface(sampler/1)");
    check(d->get_iface("mcrt.sampler/2") == NULL, "get_iface(unknown revision)");

    /* The key initializers. */
    check(demo_keys[0].struct_size == sizeof(mcrt_config_key), "key struct_size");
    check(demo_keys[0].type == MCRT_CFG_BOOL && demo_keys[0].flags == 0, "MCRT_CONFIG_KEY");
    check(demo_keys[1].flags == (MCRT_CFG_HAS_MIN | MCRT_CFG_HAS_MAX) &&
              demo_keys[1].min == 0.0 && demo_keys[1].max == 1.0,
          "MCRT_CONFIG_KEY_RANGE");
    check(demo_keys[2].flags == MCRT_CFG_HAS_MIN && demo_keys[2].min == 1.0,
          "MCRT_CONFIG_KEY_MIN");
    check(demo_keys[3].type == MCRT_CFG_ENUM && strcmp(demo_keys[3].choices, "fast|exact") == 0,
          "MCRT_CONFIG_KEY_ENUM");
    check(demo_keys[4].name == NULL && demo_keys[4].struct_size == sizeof(mcrt_config_key),
          "MCRT_CONFIG_KEY_END");

    /* MCRT_HAS: a field counts only if the writer's struct_size covers all of it. */
    check(MCRT_HAS(d, get_iface), "descriptor has get_iface");
    const mcrt_sampler_iface *full = &demo_iface;
    check(MCRT_HAS(full, sample) && MCRT_HAS(full, validate), "full iface has every slot");

    mcrt_sampler_iface old_iface = demo_iface; /* as if written by an older plugin */
    const mcrt_sampler_iface *old = &old_iface;
    old_iface.struct_size = (uint32_t)offsetof(mcrt_sampler_iface, sample);
    check(MCRT_HAS(old, validate), "older iface still has validate");
    check(!MCRT_HAS(old, sample), "older iface lacks sample");
    old_iface.struct_size =
        (uint32_t)(offsetof(mcrt_sampler_iface, sample) + sizeof(old_iface.sample) - 1);
    check(!MCRT_HAS(old, sample), "a partly covered field does not count");

    mcrt_host host_storage;
    memset(&host_storage, 0, sizeof host_storage);
    const mcrt_host *host = &host_storage;
    host_storage.struct_size = (uint32_t)offsetof(mcrt_host, get_ext);
    check(MCRT_HAS(host, clock_ns) && !MCRT_HAS(host, get_ext), "host table size");
    const mcrt_host *no_host = NULL;
    check(!MCRT_HAS(no_host, log), "MCRT_HAS(NULL, ...) is false");

    check(strcmp(mcrt_status_str(MCRT_E_ABI), "incompatible ABI") == 0, "mcrt_status_str");
    check(strcmp(mcrt_status_str(-9999), "unknown status") == 0, "unknown status");
    check(mcrt_dtype_size(MCRT_DTYPE_BF16) == 2 && mcrt_dtype_size(0) == 0, "mcrt_dtype_size");

    return failures == 0 ? 0 : 1;
}

#endif /* PLUGIN_DEFINE_NO_MAIN */
