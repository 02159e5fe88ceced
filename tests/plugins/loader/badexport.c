/*
 * tests/plugins/loader/badexport.c: nmcheck-badexport.so, a plugin that
 * exports a function besides `mcrt_plugin`. It exists only to prove that
 * tests/plugins/nm_exports.sh can fail (test plugin-exports-rejects-extra);
 * its file name keeps the loader from treating it as a plugin.
 */
#include "mcrt/mcrt.h" /* the plugin ABI */

/* The mistake: a helper left with default visibility. */
MCRT_PLUGIN_EXPORT int badexport_helper(void);
MCRT_PLUGIN_EXPORT int badexport_helper(void)
{
    return 42;
}

static const void *badexport_get_iface(const char *iface_id)
{
    (void)iface_id;
    return NULL;
}

MCRT_PLUGIN_DEFINE(MCRT_KIND_SAMPLER, "badexport", "1.0.0", "test-only: exports a helper",
                   NULL, NULL, NULL, NULL, badexport_get_iface);
