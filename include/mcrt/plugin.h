/*
 * mcrt/plugin.h: the plugin descriptor, ABI versions and compatibility rules.
 *
 * A plugin is a shared object that exports exactly one symbol, the const data
 * object `mcrt_plugin` (of type mcrt_plugin_entry), defined with MCRT_PLUGIN_DEFINE. The host reads its
 * versions before it runs any plugin code, then asks `probe` whether the plugin
 * can work here, calls `init` once, and gets interface tables by versioned id
 * through `get_iface` ("mcrt.engine/1", ...). Plugins link against no mcrt
 * library: everything they need from the host comes through the host services
 * table (mcrt/host.h).
 *
 * Compatibility rules (the host enforces them at load time):
 *  1. abi_major must equal the host's MCRT_ABI_MAJOR. A major changes only when
 *     a field is removed or reordered, a signature or a meaning changes.
 *  2. abi_minor must not be newer than the host's: a plugin built against 1.3
 *     may use slots that a 1.2 host lacks, so a 1.2 host refuses it.
 *  3. Every ABI struct starts with its struct_size (the descriptor after the
 *     two version fields) and only grows at the end, with a "since 1.N" note.
 *     A reader touches a field only if MCRT_HAS(ptr, field) says the writer's
 *     struct_size covers it and, for function pointers, it is non-NULL.
 *  4. Interface ids carry their revision ("mcrt.sampler/1"); an incompatible
 *     interface is a new id ("mcrt.sampler/2"), never a changed table.
 *  5. Enums that cross the ABI are append-only with explicit values.
 *  6. tests/abi pins every offset with static assertions, so a reordered field
 *     fails the build.
 *
 * Threading tags on every function in these headers:
 *   [loader]     probe, init, fini: called from one thread, never concurrently
 *                with any other call into the same plugin; init/fini in pairs.
 *   [any-thread] pure and reentrant; may be called from any thread at any time.
 *   [control]    create, destroy and configuration: called from the pipeline's
 *                control thread, never concurrently with [instance] calls on
 *                the same instance.
 *   [instance]   per-instance work (step, sample, encode): never concurrent on
 *                one instance; different instances may run at once on
 *                different threads (each rank's model instance has its own).
 *
 * Ownership rules:
 *  1. The descriptor, its strings, config key arrays and interface tables are
 *     static in the plugin and valid from dlopen until the plugin is unloaded.
 *  2. Whoever allocates frees: the host never frees plugin memory and a plugin
 *     never frees host memory (host->free only frees what host->alloc gave).
 *  3. Pointer arguments are borrowed for the duration of the call. A plugin
 *     copies what it keeps. The `const mcrt_host *` given to create() stays
 *     valid until destroy() returns; the one given to init() until fini().
 *  4. Out-parameters are written only when a call returns MCRT_OK, except the
 *     needed-size out-parameter of an MCRT_E_RANGE return (buffer too small).
 *  5. The core never dlcloses a plugin that still has instances.
 */
#ifndef MCRT_PLUGIN_H
#define MCRT_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "mcrt/config.h" /* mcrt_config, mcrt_config_key */
#include "mcrt/status.h" /* mcrt_status */

#ifdef __cplusplus
extern "C" {
#endif

#define MCRT_ABI_MAJOR 1
#define MCRT_ABI_MINOR 0

/* Plugin kinds. Append-only. */
enum {
    MCRT_KIND_ENGINE = 1,      /* scheduling: which requests run together, when */
    MCRT_KIND_CONTROLLER = 2,  /* the token loop: steps, sampling, stop, detokenize */
    MCRT_KIND_MODEL = 3,       /* the network on one rank: weights, KV cache, forward */
    MCRT_KIND_SAMPLER = 4,     /* logits -> token */
    MCRT_KIND_TOKENIZER = 5    /* text <-> ids */
};
#define MCRT_KIND_COUNT 5

/* Interface ids: one per kind, revision after the slash. */
#define MCRT_IFACE_ENGINE "mcrt.engine/1"
#define MCRT_IFACE_CONTROLLER "mcrt.controller/1"
#define MCRT_IFACE_MODEL "mcrt.model/1"
#define MCRT_IFACE_SAMPLER "mcrt.sampler/1"
#define MCRT_IFACE_TOKENIZER "mcrt.tokenizer/1"

typedef struct mcrt_host mcrt_host;

/* True when the struct behind `ptr` (which starts with uint32_t struct_size)
 * is large enough to contain `field`. The guarded accessor for later slots. */
#define MCRT_HAS(ptr, field)                                                                   \
    ((ptr) != NULL &&                                                                          \
     (size_t)((const char *)&(ptr)->field - (const char *)(ptr)) + sizeof((ptr)->field) <=     \
         (size_t)(ptr)->struct_size)

typedef struct mcrt_plugin_entry {
    uint16_t abi_major;        /* MCRT_ABI_MAJOR the plugin was built with */
    uint16_t abi_minor;        /* MCRT_ABI_MINOR the plugin was built with */
    uint32_t struct_size;      /* sizeof(mcrt_plugin_entry) the plugin was built with */
    uint32_t kind;             /* MCRT_KIND_* */
    uint32_t flags;            /* reserved, zero */
    const char *name;          /* short name within its kind: "static", "gpt", "gpt2-bpe" */
    const char *version;       /* the plugin's own version, "0.1.0" */
    const char *description;   /* one line for `mcrt plugins` */
    /* Keys this plugin accepts in its kind's YAML section, ended by
     * MCRT_CONFIG_KEY_END; NULL when it takes none. */
    const mcrt_config_key *config_keys;

    /* [loader] How well this plugin fits here and now: 0 = unusable, higher =
     * preferred when the YAML says `name: auto`. `cfg` is the kind's section
     * as the user wrote it, not yet validated against this plugin's keys (read
     * it through host's config accessors; it may be NULL when only listing).
     * On 0, write a one-line reason into why[0..why_size) (NUL-terminated).
     * Must not create devices or contexts beyond a device-count query.
     * (optional: NULL means score 1 everywhere) */
    int32_t (*probe)(const mcrt_host *host, const mcrt_config *cfg, char *why, size_t why_size);

    /* [loader] Once per load, before any get_iface or create. The host pointer
     * stays valid until fini returns. (optional) */
    mcrt_status (*init)(const mcrt_host *host);

    /* [loader] Once, after the last instance is destroyed. (optional) */
    void (*fini)(void);

    /* [any-thread] The interface table with this id, or NULL when the plugin
     * does not implement it. The table is static in the plugin. */
    const void *(*get_iface)(const char *iface_id);
} mcrt_plugin_entry;

#if defined(_WIN32)
#define MCRT_PLUGIN_EXPORT __declspec(dllexport)
#elif defined(__GNUC__) || defined(__clang__)
#define MCRT_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define MCRT_PLUGIN_EXPORT
#endif

/* The linkage of the descriptor: C linkage in C++, plain `extern` in C. */
#ifdef __cplusplus
#define MCRT_PLUGIN_EXTERN extern "C"
#else
#define MCRT_PLUGIN_EXTERN extern
#endif

/* Defines the exported descriptor. Use it once per plugin, at file scope:
 *   MCRT_PLUGIN_DEFINE(MCRT_KIND_SAMPLER, "default", "0.1.0", "temperature, top-k, top-p",
 *                      sampler_keys, sampler_probe, NULL, NULL, sampler_get_iface);
 */
#define MCRT_PLUGIN_DEFINE(kind_, name_, version_, description_, config_keys_, probe_, init_,  \
                           fini_, get_iface_)                                                  \
    MCRT_PLUGIN_EXTERN MCRT_PLUGIN_EXPORT const mcrt_plugin_entry mcrt_plugin;                 \
    const mcrt_plugin_entry mcrt_plugin = {                                                    \
        (uint16_t)MCRT_ABI_MAJOR, (uint16_t)MCRT_ABI_MINOR,                                    \
        (uint32_t)sizeof(mcrt_plugin_entry),                                                   \
        (uint32_t)(kind_), 0u, (name_), (version_), (description_), (config_keys_), (probe_), \
        (init_), (fini_), (get_iface_)}

#ifdef __cplusplus
}
#endif

#endif /* MCRT_PLUGIN_H */
