/*
 * tests/plugins/loader/nosymbol.c: mcrt-tokenizer-nosymbol.so, a plugin whose
 * author wrote the descriptor by hand and forgot to export it: `mcrt_plugin`
 * exists but is hidden, so the .so exports no symbol at all. The loader
 * refuses it: "no mcrt_plugin symbol".
 */
#include "mcrt/mcrt.h" /* the plugin ABI */

static const void *nosymbol_get_iface(const char *iface_id)
{
    (void)iface_id;
    return NULL;
}

extern __attribute__((visibility("hidden"))) const mcrt_plugin_entry mcrt_plugin;
__attribute__((visibility("hidden"))) const mcrt_plugin_entry mcrt_plugin = {
    (uint16_t)MCRT_ABI_MAJOR,
    (uint16_t)MCRT_ABI_MINOR,
    (uint32_t)sizeof(mcrt_plugin_entry),
    MCRT_KIND_TOKENIZER,
    0u,
    "nosymbol",
    "1.0.0",
    "test-only: the descriptor is not exported",
    NULL,
    NULL,
    NULL,
    NULL,
    nosymbol_get_iface,
};
