/*
 * core/config/internal.h: the config subsystem's private types, shared by the
 * files of core/config/ only. Nothing outside core/config/ includes it.
 *
 * The tree: cfg_tree holds one mcrt_config per known section; a section is an
 * ordered list of entries (key -> value + where the value came from). A value
 * is null (YAML `~`, `null`, empty: unset), a scalar (text + plain/quoted), a
 * list of scalars, or a nested mapping (kept only so that validation can name
 * it). Validation adds the typed value to each entry.
 */
#ifndef MCRT_CORE_CONFIG_INTERNAL_H
#define MCRT_CORE_CONFIG_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "util/strutil.h" /* edit_distance */
#include "mcrt/host.h" /* MCRT_PRINTF, MCRT_LOG_* */

#define CFG_N_SECTIONS 9
#define CFG_MAX_DEPTH 8                     /* YAML nesting (top-level mapping = 1) */
#define CFG_MAX_FILE_SIZE (16u * 1024u * 1024u)

/* Where a value came from, lowest precedence first. */
enum { CFG_SRC_DEFAULT = 0, CFG_SRC_YAML = 1, CFG_SRC_ENV = 2, CFG_SRC_CLI = 3,
       CFG_SRC_CHECKPOINT = 4 /* --use-checkpoint-args: origin names the args */ };

/* Value kinds. */
enum { CFG_V_NULL = 0, CFG_V_SCALAR = 1, CFG_V_LIST = 2, CFG_V_MAP = 3 };

typedef struct cfg_item { /* one list item */
    char *text;
    bool quoted;
    int line, col; /* YAML position (0 when not from YAML) */
} cfg_item;

typedef struct cfg_entry {
    char *key;
    int key_line, key_col; /* YAML position of the key (0 when not from YAML) */
    int src;               /* CFG_SRC_* */
    char *origin;          /* CLI: the flag as typed; ENV: the variable; CHECKPOINT: the
                            * file's args; else NULL */
    int line, col;         /* YAML position of the value */
    int kind;              /* CFG_V_* */
    char *text;            /* SCALAR: the text */
    bool quoted;           /* SCALAR: single- or double-quoted (or tagged !!str) */
    cfg_item *items;       /* LIST */
    size_t n_items;
    mcrt_config *map;      /* MAP */

    /* The typed value, set by cfg_convert_entry. */
    bool typed;
    uint32_t type; /* MCRT_CFG_* */
    bool b;
    int64_t i;
    double f;
    char *str;   /* STRING, PATH (resolved), ENUM */
    char **list; /* STRING_LIST (PATH-like lists resolved) */
    size_t n_list;
} cfg_entry;

struct mcrt_config {
    cfg_tree *tree;
    char *name;    /* "generation"; nested maps: "model.foo" */
    int line, col; /* YAML position of the section's key (0 when absent) */
    bool validated;
    cfg_entry **entries;
    size_t n, cap;
};

typedef struct cfg_unknown_section {
    char *name;
    int line, col;
} cfg_unknown_section;

struct cfg_tree {
    char *file; /* YAML path as given; NULL when none */
    char *dir;  /* its folder, for PATH values ("." when the path has no '/') */
    char *home; /* HOME from envp, for "~/" in YAML paths; NULL when unset */
    mcrt_config *sections[CFG_N_SECTIONS];
    cfg_unknown_section *unknown; /* top-level keys that are not sections */
    size_t n_unknown;
    bool built;
};

/* ---- diag.c: diagnostics and small string helpers ---------------------- */

int cfg_fail(cfg_diag *d, int exit_code, const char *fmt, ...) MCRT_PRINTF(3, 4);
void cfg_diag_append(cfg_diag *d, const char *fmt, ...) MCRT_PRINTF(2, 3);
char *cfg_strdup(const char *s);
char *cfg_strndup(const char *s, size_t n);
/* True when `cand` is a plausible correction of `typed` at distance d. */
bool cfg_is_close(const char *typed, const char *cand, size_t d);
/* Writes `s` into buf for a message: at most 60 chars, keeping the end of a
 * longer text ("...tail", where a path's file name is), control chars as '?'. */
void cfg_quote_for_msg(const char *s, char *buf, size_t cap);

/* ---- yaml.c: the only file that sees libyaml ------------------------- */

enum { CFG_Y_SCALAR = 1, CFG_Y_SEQ = 2, CFG_Y_MAP = 3 };

typedef struct cfg_ynode cfg_ynode;
struct cfg_ynode {
    int kind;       /* CFG_Y_* */
    int line, col;  /* 1-based */
    char *text;     /* SCALAR */
    bool quoted;    /* SCALAR: not plain (or tagged !!str) */
    cfg_ynode **kids; /* SEQ: items; MAP: key, value, key, value, ... */
    size_t n, cap;
};

/* Parse `path` into a node tree. *out is NULL for a file with no document or
 * an empty document. Returns 0, or -1 with *diag (66 for open errors, 78 for
 * the rest). */
int cfg_yaml_load(const char *path, cfg_ynode **out, cfg_diag *diag);
void cfg_ynode_free(cfg_ynode *n);

/* ---- tree.c ------------------------------------------------------------ */

mcrt_config *cfg_config_new(cfg_tree *t, const char *name);
void cfg_config_free(mcrt_config *s);
cfg_entry *cfg_entry_find(const mcrt_config *s, const char *key);
void cfg_entry_free(cfg_entry *e);
/* Drops the value (raw and typed) of an entry, keeping its key. */
void cfg_entry_clear(cfg_entry *e);
void cfg_entry_clear_typed(cfg_entry *e);
/* Appends a new entry with `key` and a null value; NULL when out of memory. */
cfg_entry *cfg_entry_add(mcrt_config *s, const char *key);
/* Removes (and frees) the entry `e` of s. */
void cfg_entry_remove(mcrt_config *s, cfg_entry *e);
/* Sets a scalar value (replacing any value) from src/origin. 0 or -1 (no memory). */
int cfg_entry_set_scalar(cfg_entry *e, const char *text, int src, const char *origin);
/* Appends one plain item to a LIST entry (converting a null entry to a list). */
int cfg_entry_append_item(cfg_entry *e, const char *text);
/* Builds sections from a parsed YAML document. */
int cfg_tree_from_yaml(cfg_tree *t, const cfg_ynode *root, cfg_diag *diag);
/* True for a plain YAML null scalar: "", "~", "null" (any case). */
bool cfg_is_null_text(const char *text);

/* ---- keys.c ------------------------------------------------------------ */

/* Index of a known section in cfg_section_names(), or -1. */
int cfg_section_index(const char *name);

/* Runtime keys whose STRING_LIST items are paths (runtime.plugin_dirs). */
bool cfg_key_is_path_list(const char *section, const char *key);
/* Keys whose lower bound is exclusive although declared inclusive
 * (generation.repetition_penalty > 0). */
bool cfg_key_min_exclusive(const char *section, const char *key);
/* The declaration of a core key, or NULL. */
const mcrt_config_key *cfg_core_key(const char *section, const char *key);

/* ---- validate.c ---------------------------------------------------------- */

/* Parsers for raw text (no whitespace allowed). */
bool cfg_parse_bool(const char *s, bool *out);
/* 0 ok, -1 not an integer, -2 out of 64-bit range. */
int cfg_parse_int(const char *s, int64_t *out);
/* 0 ok, -1 not a number, -2 not finite. */
int cfg_parse_float(const char *s, double *out);
/* Writes what a key expects ("an integer >= 0") into buf. */
void cfg_describe_expected(const char *section, const mcrt_config_key *k, char *buf, size_t cap);
/* Converts the raw value of e to k's type into e's typed fields, resolving
 * paths. Returns 0, or -1 with *diag naming where the value came from
 * (exit 64 for CLI values, 78 otherwise). */
int cfg_convert_entry(const cfg_tree *t, const char *section, const mcrt_config_key *k,
                      cfg_entry *e, cfg_diag *diag);
/* Writes "FILE:L:C", "cli --x", "env MCRT_X" or "default" for e into buf. */
void cfg_entry_source(const cfg_tree *t, const cfg_entry *e, char *buf, size_t cap);

#endif /* MCRT_CORE_CONFIG_INTERNAL_H */
