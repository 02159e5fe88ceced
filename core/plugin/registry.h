/*
 * core/plugin/registry.h: finding, loading and choosing plugins.
 *
 * Search order (first hit of a kind/name wins; later ones are "shadowed"):
 *   1. every --plugin-dir / runtime.plugin_dirs, in the order given
 *   2. MCRT_PLUGIN_PATH, a colon-separated list
 *   3. the installed plugin dir (MCRT_PLUGINDIR from meson)
 *   4. the build tree: <exe_dir>/plugins/<each subfolder> (build/mcrt)
 * A file is a candidate when it is named mcrt-<kind>-<name>.so. Scanning only
 * lists names; a candidate is dlopened when it is listed or chosen, then
 * checked (symbol, ABI major/minor, struct_size, kind, name, interface table),
 * initialised and probed. Folders and files that anybody may write are
 * refused: loading code from them would let any local user run code as us.
 */
#ifndef MCRT_CORE_REGISTRY_H
#define MCRT_CORE_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mcrt/host.h"   /* mcrt_host */
#include "mcrt/plugin.h" /* mcrt_plugin_entry */
#include "util/log.h"    /* log_sink */

typedef struct host_ctx host_ctx; /* core/runtime/host.h */

/* Where a folder came from; printed by `mcrt plugins`. */
typedef enum { DIR_FLAG, DIR_ENV, DIR_INSTALLED, DIR_BUILD } dir_origin;

typedef enum {
    PLUGIN_LISTED = 0,   /* found by name, not opened yet */
    PLUGIN_READY,        /* opened, checked, initialised */
    PLUGIN_REFUSED,      /* unusable: `reason` says why */
    PLUGIN_SHADOWED      /* the same kind/name was found earlier in the search order */
} plugin_state;

typedef struct plugin_entry {
    char *path;                  /* as found */
    int kind;                    /* MCRT_KIND_* from the file name */
    char *name;                  /* from the file name */
    dir_origin origin;
    plugin_state state;
    char reason[512];            /* REFUSED/SHADOWED: why; after probe 0: the plugin's reason */
    void *dl;                    /* dlopen handle (READY) */
    const mcrt_plugin_entry *desc;     /* the descriptor (READY) */
    const void *iface;           /* the kind's interface table (READY) */
    bool probed;
    int32_t score;               /* probe result once probed */
    unsigned instances;          /* live instances; never unloaded while > 0 */
    host_ctx *hctx;              /* the plugin-level host table given to probe/init */
} plugin_entry;

typedef struct registry registry;

/* `exe_path` locates the build tree (may be NULL). The sink is borrowed. */
registry *registry_create(const log_sink *log, const char *exe_path);
/* fini + dlclose every plugin without instances. */
void registry_destroy(registry *r);

/* Add folders in search order. Explicit folders (flags, YAML) must exist and
 * must not be world-writable: otherwise an error is written to err and -1
 * returned (*exit_code set). Implicit ones are skipped with a debug/warn line. */
int registry_add_dir(registry *r, const char *dir, dir_origin origin, bool must_exist,
                     char *err, size_t err_size, int *exit_code);
/* Add MCRT_PLUGIN_PATH, the installed dir and the build tree. */
void registry_add_default_dirs(registry *r, const char *env_plugin_path);

size_t registry_count(const registry *r);
plugin_entry *registry_at(registry *r, size_t i);
const char *registry_dir_origin_name(dir_origin o);

/* Open + check + init one candidate (no-op when already READY/REFUSED). */
void registry_open(registry *r, plugin_entry *e);

/* Probe a READY entry with a section (may be NULL); updates score/reason. */
void registry_probe(registry *r, plugin_entry *e, const void *section_cfg);

/* Choose the plugin for `kind`: `name` is a plugin name or "auto" (highest
 * positive probe score; zero scores are skipped, with their reasons logged).
 * On failure writes a message naming what was looked for and what exists,
 * sets *exit_code (78 unknown name, 69 none usable) and returns NULL. */
plugin_entry *registry_select(registry *r, int kind, const char *name, const void *section_cfg,
                              char *err, size_t err_size, int *exit_code);

/* "engine", "controller", ... ; NULL for an unknown kind. */
const char *kind_name(int kind);
int kind_from_name(const char *s); /* 0 when unknown */
/* The interface id of a kind ("mcrt.engine/1"). */
const char *kind_iface_id(int kind);

#endif /* MCRT_CORE_REGISTRY_H */
