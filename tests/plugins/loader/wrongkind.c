/*
 * tests/plugins/loader/wrongkind.c: built as mcrt-engine-wrongkind.so, but its
 * descriptor says MCRT_KIND_SAMPLER. The loader refuses it: the file name and
 * the descriptor disagree about the kind.
 */
#include "mcrt/mcrt.h" /* the plugin ABI */

static const void *wrongkind_get_iface(const char *iface_id)
{
    (void)iface_id;
    return NULL;
}

MCRT_PLUGIN_DEFINE(MCRT_KIND_SAMPLER, "wrongkind", "1.0.0",
                   "test-only: file says engine, descriptor says sampler", NULL, NULL, NULL, NULL,
                   wrongkind_get_iface);
