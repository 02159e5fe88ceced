/*
 * mcrt/config.h: how a plugin declares the configuration keys it accepts.
 *
 * A pipeline YAML has one section per plugin kind (`engine:`, `controller:`,
 * `model:`, `sampler:`, `tokenizer:`). The core validates each section against
 * the keys that the core itself declares for that kind plus the keys that the
 * chosen plugin declares here: an unknown key, a wrong type or a value out of
 * range is an error that names file:line:col before any plugin code runs, and
 * every declared key that the YAML leaves out gets its default. A plugin reads
 * its values through the host's config accessors (mcrt/host.h); `mcrt plugins`
 * prints the declarations.
 *
 * Declarations are static data in the plugin: an array of mcrt_config_key
 * ended by MCRT_CONFIG_KEY_END, pointed to by mcrt_plugin_entry.config_keys. The
 * array's stride is its first element's struct_size, so the struct may grow.
 */
#ifndef MCRT_CONFIG_H
#define MCRT_CONFIG_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An opaque section of the validated configuration tree. Owned by the core;
 * valid until the instance created with it is destroyed. */
typedef struct mcrt_config mcrt_config;

/* Value types. Append-only. */
enum {
    MCRT_CFG_BOOL = 1,        /* true/false, yes/no, on/off, 1/0 */
    MCRT_CFG_INT = 2,         /* 64-bit signed integer */
    MCRT_CFG_FLOAT = 3,       /* double; integers are accepted */
    MCRT_CFG_STRING = 4,      /* any scalar */
    MCRT_CFG_PATH = 5,        /* a string; relative paths resolve against the YAML file's folder */
    MCRT_CFG_ENUM = 6,        /* one of `choices` ("a|b|c") */
    MCRT_CFG_STRING_LIST = 7  /* a YAML sequence of scalars (a single scalar is a list of one) */
};

/* Flags. Append-only bits. */
enum {
    MCRT_CFG_REQUIRED = 1u << 0,   /* no default: the section must set it */
    MCRT_CFG_HAS_MIN = 1u << 1,    /* `min` is an inclusive lower bound (INT, FLOAT) */
    MCRT_CFG_HAS_MAX = 1u << 2     /* `max` is an inclusive upper bound (INT, FLOAT) */
};

typedef struct mcrt_config_key {
    uint32_t struct_size;      /* sizeof(mcrt_config_key) when the plugin was built */
    uint32_t type;             /* MCRT_CFG_* */
    uint32_t flags;            /* MCRT_CFG_REQUIRED | MCRT_CFG_HAS_MIN | MCRT_CFG_HAS_MAX */
    uint32_t reserved;         /* zero */
    const char *name;          /* snake_case key, unique in its section; NULL ends the array */
    const char *default_value; /* the default as YAML text ("0.9", "true", "a|b"); NULL = unset */
    const char *choices;       /* ENUM: the allowed values separated by '|'; else NULL */
    double min;                /* inclusive bound when MCRT_CFG_HAS_MIN */
    double max;                /* inclusive bound when MCRT_CFG_HAS_MAX */
    const char *doc;           /* one line: what it does, in the user's words */
} mcrt_config_key;

/* Initializers for the declaration array (positional, so C++ accepts them too). */
#define MCRT_CONFIG_KEY(type_, name_, default_, doc_) \
    { (uint32_t)sizeof(mcrt_config_key), (type_), 0u, 0u, (name_), (default_), NULL, 0.0, 0.0, (doc_) }
#define MCRT_CONFIG_KEY_RANGE(type_, name_, default_, min_, max_, doc_)                        \
    { (uint32_t)sizeof(mcrt_config_key), (type_), MCRT_CFG_HAS_MIN | MCRT_CFG_HAS_MAX, 0u,     \
      (name_), (default_), NULL, (min_), (max_), (doc_) }
#define MCRT_CONFIG_KEY_MIN(type_, name_, default_, min_, doc_)                                \
    { (uint32_t)sizeof(mcrt_config_key), (type_), MCRT_CFG_HAS_MIN, 0u, (name_), (default_),   \
      NULL, (min_), 0.0, (doc_) }
#define MCRT_CONFIG_KEY_ENUM(name_, default_, choices_, doc_)                                  \
    { (uint32_t)sizeof(mcrt_config_key), MCRT_CFG_ENUM, 0u, 0u, (name_), (default_),          \
      (choices_), 0.0, 0.0, (doc_) }
#define MCRT_CONFIG_KEY_END \
    { (uint32_t)sizeof(mcrt_config_key), 0u, 0u, 0u, NULL, NULL, NULL, 0.0, 0.0, NULL }

#ifdef __cplusplus
}
#endif

#endif /* MCRT_CONFIG_H */
