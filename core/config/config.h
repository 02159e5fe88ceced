/*
 * core/config/config.h: the effective configuration of one `mcrt run` /
 * `mcrt config`: YAML file + MCRT_* environment + command-line flags, merged
 * with precedence CLI > environment > YAML > defaults, each value tagged with
 * where it came from, validated against the keys the core and the chosen
 * plugins declare (mcrt/config.h). docs/config.md is the user's reference.
 *
 * Nothing here exits, aborts or prints on its own: failures return -1 and
 * fill a cfg_diag (message + sysexits code) for the caller to report.
 * Everything a tree hands out is owned by the tree and lives until
 * cfg_tree_destroy (or until the section is validated again).
 */
#ifndef MCRT_CORE_CONFIG_CONFIG_H
#define MCRT_CORE_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mcrt/config.h" /* mcrt_config (struct defined in config/internal.h), mcrt_config_key */
#include "mcrt/status.h"

typedef struct cfg_tree cfg_tree; /* the whole effective configuration */

/* Exit codes used by the config subsystem (sysexits.h values). */
enum {
    CFG_EXIT_USAGE = 64,       /* bad flag, missing flag value, conflicting flags, bad flag value */
    CFG_EXIT_NOINPUT = 66,     /* YAML file missing, unreadable, or a directory */
    CFG_EXIT_UNAVAILABLE = 69, /* out of memory */
    CFG_EXIT_SOFTWARE = 70,    /* a bug: malformed key declarations, API misuse */
    CFG_EXIT_CONFIG = 78       /* YAML syntax or value error, bad environment value */
};

typedef struct cfg_diag { /* the first error: message + sysexits exit code */
    int exit_code;        /* CFG_EXIT_* */
    char msg[2048];       /* one or more lines, no trailing newline */
} cfg_diag;

/* [control] A tree with every known section present and empty. NULL when out
 * of memory. */
cfg_tree *cfg_tree_create(void);
/* [control] Frees the tree and everything it handed out. NULL is a no-op. */
void cfg_tree_destroy(cfg_tree *t);

/* [control] Parse the command line of `mcrt run` / `mcrt config` (argv[0] is
 * the subcommand name and is skipped). Recognises every flag of the flag table
 * (flags.c) and collects them as overrides; the first positional argument is
 * the YAML file (optional); a second positional is a usage error; "--" ends
 * the flags. Then loads the YAML (if any), applies MCRT_* environment
 * overrides from envp (may be NULL), then the CLI overrides, each value
 * tagged with its source. Precedence: CLI > environment > YAML > defaults.
 * Call it once per tree. Returns 0, or -1 with *diag filled.
 * `--help`/`-h` are NOT handled here (the caller strips them). */
int cfg_build(cfg_tree *t, int argc, char **argv, char **envp, cfg_diag *diag);

/* [control] Validate one section against key sets (the core's keys for it +
 * the chosen plugin's keys; NULL sets are skipped; when two sets declare the
 * same name the first declaration wins). Each set is an array ended by an
 * element with name == NULL; its stride is element[0].struct_size (a set whose
 * struct_size is smaller than the struct up to and including `doc` is refused).
 * Unknown key, wrong type, out of range, not one of the choices, required key
 * missing -> -1 with *diag naming where the value came from. On success every
 * declared key that is not set gets its default, values are converted to their
 * type, PATH values are resolved (YAML: against the YAML file's folder, with
 * "~/" expanded from HOME; CLI and environment: as given, i.e. against the
 * current directory), and the entries are put in declaration order.
 * A section may be validated again (e.g. with another plugin's keys). */
int cfg_validate_section(cfg_tree *t, const char *section, const mcrt_config_key *const *key_sets,
                         size_t n_sets, cfg_diag *diag);

/* [control] Validate the top level (unknown section -> error with the nearest
 * section name) and every core-only section (runtime, parallel, generation,
 * output) against cfg_core_keys(). In the plugin sections the values of the
 * core's own keys (engine.max_batch_size, model.load, ...) are type-checked
 * too, but those sections stay unvalidated: the caller validates them with
 * cfg_validate_section once plugins are chosen. */
int cfg_validate_core(cfg_tree *t, cfg_diag *diag);

/* [control] After cfg_validate_core: with model.use_checkpoint_args, the
 * keys the host itself takes from a Megatron checkpoint's saved args
 * (tokenizer.tokenizer_type, forced as Megatron does; checkpoint_args.c).
 * An unreadable checkpoint is left to the model plugin to report. 0, or -1
 * with *diag filled. */
int cfg_apply_checkpoint_args(cfg_tree *t, cfg_diag *diag);

/* [any-thread] The core's own keys for a section (plugin sections too: e.g.
 * "engine" -> name, max_batch_size), or NULL for an unknown section. Static. */
const mcrt_config_key *cfg_core_keys(const char *section);
/* [any-thread] The sections in a fixed order: runtime, parallel, generation,
 * output, engine, controller, model, sampler, tokenizer. NULL-terminated, static. */
const char *const *cfg_section_names(void);
/* [any-thread] True for the sections a plugin kind owns (engine, controller,
 * model, sampler, tokenizer). */
bool cfg_section_is_plugin(const char *section);

/* [control] The section node (created empty if the YAML lacks it); never NULL
 * for a known section name, NULL otherwise (and for t == NULL). */
mcrt_config *cfg_section(cfg_tree *t, const char *section);
/* [any-thread] The section's name ("generation"), or NULL for NULL. */
const char *cfg_section_name(const mcrt_config *s);
/* [any-thread] True once cfg_validate_section succeeded for the section. */
bool cfg_section_validated(const mcrt_config *s);
/* [any-thread] Path of the YAML file as given on the command line (NULL if none). */
const char *cfg_file(const cfg_tree *t);

/* [any-thread, read-only] Typed reads of a validated value (or of a section not
 * yet validated: then the raw scalar text is parsed, quoted scalars are
 * strings, and an unset core key reads its core default). MCRT_OK,
 * MCRT_E_NOTFOUND (not set, no default), MCRT_E_CONFIG (wrong type),
 * MCRT_E_INVAL (NULL argument), MCRT_E_RANGE (list index out of range).
 * An INT reads as a float too; ENUM and PATH read as strings; a single
 * scalar reads as a list of one. Strings are owned by the tree. */
mcrt_status cfg_get_bool(const mcrt_config *s, const char *key, bool *out);
mcrt_status cfg_get_int(const mcrt_config *s, const char *key, int64_t *out);
mcrt_status cfg_get_float(const mcrt_config *s, const char *key, double *out);
mcrt_status cfg_get_string(const mcrt_config *s, const char *key, const char **out);
mcrt_status cfg_list_size(const mcrt_config *s, const char *key, size_t *out);
mcrt_status cfg_list_item(const mcrt_config *s, const char *key, size_t i, const char **out);

/* [any-thread, read-only] Where a key's effective value came from, as
 * cfg_print_effective writes it: "default", "cli --top-k", "env MCRT_TOP_K",
 * "FILE:LINE:COL". Writes "" and returns false when the key has no value. */
bool cfg_get_source(const mcrt_config *s, const char *key, char *buf, size_t cap);

/* [control] `mcrt config`: print every section and key with its effective
 * value and where it came from, e.g.
 *   generation.temperature = 0.7            # cli --temperature
 *   generation.top_k = 40                   # env MCRT_TOP_K
 *   engine.max_batch_size = 4               # configs/x.yaml:3:19
 *   generation.num_tokens_to_generate = 30  # default
 *   generation.top_p = ~                    # unset
 * Unvalidated plugin-specific keys are printed with their raw text. Lists print
 * as YAML flow lists, strings are double-quoted when needed. */
void cfg_print_effective(const cfg_tree *t, FILE *out);
/* [any-thread] Print the flag table for --help (flag spellings, value, the key
 * it sets, one-line doc), one flag per line. */
void cfg_print_flags_help(FILE *out);
/* [any-thread, read-only] The log level implied by -v/-vv/-q/--log-level/env/
 * YAML after cfg_build, as MCRT_LOG_* (1..5); default info (3). */
int cfg_log_level(const cfg_tree *t);

#endif /* MCRT_CORE_CONFIG_CONFIG_H */
