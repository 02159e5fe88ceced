/*
 * core/config/flags.c: the flag table of `mcrt run` / `mcrt config`, the
 * command-line parser, the MCRT_* environment mirror of the flags, and
 * cfg_build, which merges them with the YAML file (CLI > env > YAML > defaults).
 *
 * Spellings follow Megatron-Core (--num-tokens-to-generate, --top_k, --load)
 * with llama.cpp / vLLM short forms (-n, -m, -tp). Long flags accept '_' and
 * '-' alike, and `--flag=value` as well as `--flag value`.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/internal.h"

enum {
    ARG_VALUE,   /* one value */
    ARG_BOOL,    /* no value (or =value); --no-X sets false */
    ARG_MANY,    /* one or more values: every following argument up to the next flag */
    ARG_APPEND,  /* one value, appended to a list; repeatable */
    ARG_VERBOSE, /* -v, -vv */
    ARG_QUIET    /* -q */
};

typedef struct cfg_flag {
    const char *names[4]; /* the canonical long spelling first (when there is one), then aliases */
    int arity;
    const char *metavar;
    const char *section;
    const char *key;
    const char *doc;
} cfg_flag;

static const cfg_flag flag_table[] = {
    { { "--prompts" }, ARG_MANY, "P [P ...]", "generation", "prompts",
      "prompts to complete: every following argument up to the next flag" },
    { { "-p" }, ARG_APPEND, "P", "generation", "prompts", "one prompt to complete (repeatable)" },
    { { "--prompt-file", "-f" }, ARG_VALUE, "F", "generation", "prompt_file",
      "text file of prompts, one per line" },
    { { "--num-tokens-to-generate", "-n" }, ARG_VALUE, "N", "generation",
      "num_tokens_to_generate", "new tokens to generate per prompt" },
    { { "--temperature", "--temp" }, ARG_VALUE, "T", "generation", "temperature",
      "sampling temperature; 0 = greedy" },
    { { "--top-k" }, ARG_VALUE, "K", "generation", "top_k", "top-k sampling; 0 = off" },
    { { "--top-p" }, ARG_VALUE, "P", "generation", "top_p", "nucleus sampling mass" },
    { { "--min-p" }, ARG_VALUE, "P", "generation", "min_p", "min-p sampling; 0 = off" },
    { { "--seed", "-s" }, ARG_VALUE, "N", "generation", "seed",
      "random seed; -1 = nondeterministic" },
    { { "--return-log-probs" }, ARG_BOOL, NULL, "generation", "return_log_probs",
      "return the log probability of each generated token" },
    { { "--top-n-logprobs" }, ARG_VALUE, "N", "generation", "top_n_logprobs",
      "also return the N most likely tokens per step" },
    { { "--return-segments" }, ARG_BOOL, NULL, "generation", "return_segments",
      "return the text of each generated token" },
    { { "--stop", "--stop-words" }, ARG_APPEND, "S", "generation", "stop",
      "stop at this string (repeatable)" },
    { { "--ignore-eos" }, ARG_BOOL, NULL, "generation", "ignore_eos",
      "keep generating after end-of-document" },
    { { "--compat" }, ARG_VALUE, "MODE", "generation", "compat",
      "sampling semantics: default or megatron" },
    { { "--max-batch-size" }, ARG_VALUE, "N", "engine", "max_batch_size",
      "most requests in one batch" },
    { { "--engine" }, ARG_VALUE, "NAME", "engine", "name", "engine plugin" },
    { { "--controller" }, ARG_VALUE, "NAME", "controller", "name", "controller plugin" },
    { { "--sampler" }, ARG_VALUE, "NAME", "sampler", "name", "sampler plugin" },
    { { "--tokenizer" }, ARG_VALUE, "NAME", "tokenizer", "name", "tokenizer plugin" },
    { { "--model-plugin" }, ARG_VALUE, "NAME", "model", "name", "model plugin" },
    { { "--tensor-model-parallel-size", "-tp" }, ARG_VALUE, "N", "parallel",
      "tensor_model_parallel_size", "tensor-parallel ranks" },
    { { "--pipeline-model-parallel-size", "-pp" }, ARG_VALUE, "N", "parallel",
      "pipeline_model_parallel_size", "pipeline-parallel stages" },
    { { "--load", "--model", "-m" }, ARG_VALUE, "DIR", "model", "load",
      "checkpoint folder or file" },
    { { "--use-checkpoint-args" }, ARG_BOOL, NULL, "model", "use_checkpoint_args",
      "model hyper-parameters from the Megatron checkpoint's args" },
    { { "--ckpt-step" }, ARG_VALUE, "N", "model", "ckpt_step",
      "open this iteration of a Megatron --load folder" },
    { { "--vocab-file" }, ARG_VALUE, "F", "tokenizer", "vocab_file", "tokenizer vocabulary" },
    { { "--merge-file" }, ARG_VALUE, "F", "tokenizer", "merge_file", "BPE merges" },
    { { "--tokenizer-type" }, ARG_VALUE, "T", "tokenizer", "tokenizer_type",
      "Megatron tokenizer type, e.g. GPT2BPETokenizer" },
    { { "--output-path", "-o" }, ARG_VALUE, "F", "output", "path",
      "write generations to this file" },
    { { "--output-format" }, ARG_VALUE, "FMT", "output", "format", "text, json or jsonl" },
    { { "--stream" }, ARG_BOOL, NULL, "output", "stream", "print tokens as they come" },
    { { "--threads", "-t" }, ARG_VALUE, "N", "runtime", "threads",
      "CPU threads per rank; 0 = all cores" },
    { { "--plugin-dir" }, ARG_APPEND, "D", "runtime", "plugin_dirs",
      "search this folder for plugins (repeatable)" },
    { { "--log-level" }, ARG_VALUE, "L", "runtime", "log_level",
      "error, warn, info, debug or trace" },
    { { "-v" }, ARG_VERBOSE, NULL, "runtime", "log_level", "log level debug; -vv: trace" },
    { { "-q" }, ARG_QUIET, NULL, "runtime", "log_level", "log level error" },
};

#define N_FLAGS (sizeof flag_table / sizeof flag_table[0])

/* ---- Lookup ---------------------------------------------------------------- */

static bool is_long(const char *s) { return s[0] == '-' && s[1] == '-'; }

/* The canonical long spelling of a flag, or NULL (-p, -v, -q). */
static const char *canonical_long(const cfg_flag *f)
{
    return is_long(f->names[0]) ? f->names[0] : NULL;
}

static bool is_verbose(const char *a)
{
    if (a[0] != '-' || a[1] != 'v')
        return false;
    for (const char *p = a + 1; *p; p++)
        if (*p != 'v')
            return false;
    return true;
}

static const cfg_flag *find_spelling(const char *name)
{
    for (size_t i = 0; i < N_FLAGS; i++)
        for (size_t j = 0; j < 4 && flag_table[i].names[j]; j++)
            if (strcmp(flag_table[i].names[j], name) == 0)
                return &flag_table[i];
    return NULL;
}

static bool is_known_short(const char *a)
{
    if (a[0] != '-' || a[1] == '-' || a[1] == '\0')
        return false;
    if (strcmp(a, "-h") == 0 || is_verbose(a))
        return true;
    return find_spelling(a) != NULL;
}

/* An argument that ends --prompts and that cannot be a flag's value. */
static bool is_flag_arg(const char *a)
{
    return is_long(a) || is_known_short(a);
}

/* "--top_k" -> "--top-k" into buf; false when too long. */
static bool normalize_long(const char *a, size_t len, char *buf, size_t cap)
{
    if (len + 1 > cap)
        return false;
    for (size_t i = 0; i < len; i++)
        buf[i] = (i >= 2 && a[i] == '_') ? '-' : a[i];
    buf[len] = '\0';
    return true;
}

static void env_name(const char *canon, char *buf, size_t cap)
{
    size_t o = (size_t)snprintf(buf, cap, "MCRT_");
    for (const char *p = canon + 2; *p && o + 1 < cap; p++)
        buf[o++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    buf[o < cap ? o : cap - 1] = '\0';
}

static const char *env_get(char **envp, const char *name)
{
    size_t n = strlen(name);
    for (char **e = envp; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return *e + n + 1;
    return NULL;
}

/* ---- Parsing ------------------------------------------------------------------ */

typedef struct cli_val {
    const cfg_flag *flag;
    char spelling[48]; /* as typed (without "=value") */
    const char *value; /* NULL for BOOL without value, VERBOSE, QUIET */
    bool neg;          /* --no-X */
    int count;         /* VERBOSE: number of v */
} cli_val;

typedef struct cli {
    cli_val *v;
    size_t n;
    const char *file;
    const char *sub;                /* argv[0], for messages */
    const char *first_verbose;      /* spellings, for conflict messages */
    const char *first_quiet;
    const char *first_log_level;
    const char *first_prompts;
    const char *first_prompt_file;
} cli;

static int unknown_flag(const cli *c, const char *arg, size_t len, cfg_diag *diag)
{
    char typed[80];
    char tmp[256];
    size_t l = len < sizeof tmp - 1 ? len : sizeof tmp - 1;
    memcpy(tmp, arg, l);
    tmp[l] = '\0';
    cfg_quote_for_msg(tmp, typed, sizeof typed);
    const char *bare = tmp;
    while (*bare == '-')
        bare++;
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; i < N_FLAGS; i++) {
        for (size_t j = 0; j < 4 && flag_table[i].names[j]; j++) {
            const char *cand = flag_table[i].names[j];
            const char *cb = cand;
            while (*cb == '-')
                cb++;
            size_t d = edit_distance(bare, cb);
            if (d < best_d && cfg_is_close(bare, cb, d)) {
                best_d = d;
                best = cand;
            }
        }
    }
    if (best)
        return cfg_fail(diag, CFG_EXIT_USAGE, "unknown flag '%s'; did you mean '%s'?", typed, best);
    return cfg_fail(diag, CFG_EXIT_USAGE, "unknown flag '%s' (see 'mcrt %s --help')", typed,
                    c->sub ? c->sub : "run");
}

/* Checks a flag value against the key's type, range and choices (exit 64). */
static int check_value(const cli_val *v, cfg_diag *diag)
{
    const mcrt_config_key *k = cfg_core_key(v->flag->section, v->flag->key);
    if (!k)
        return 0;
    if (k->type == MCRT_CFG_STRING_LIST)
        return 0;
    cfg_entry e = { 0 };
    e.key = (char *)v->flag->key;
    e.src = CFG_SRC_CLI;
    e.origin = (char *)v->spelling;
    e.kind = CFG_V_SCALAR;
    e.text = (char *)(v->value ? v->value : (v->neg ? "false" : "true"));
    int rc = cfg_convert_entry(NULL, v->flag->section, k, &e, diag);
    cfg_entry_clear_typed(&e);
    return rc;
}

static int missing_value(const cli_val *v, cfg_diag *diag)
{
    const mcrt_config_key *k = cfg_core_key(v->flag->section, v->flag->key);
    char expected[256] = "a value";
    if (k && k->type != MCRT_CFG_STRING_LIST)
        cfg_describe_expected(v->flag->section, k, expected, sizeof expected);
    else if (k)
        snprintf(expected, sizeof expected, "a string");
    return cfg_fail(diag, CFG_EXIT_USAGE, "%s: missing value (expected %s)", v->spelling,
                    expected);
}

static void note_first(const char **slot, const char *spelling)
{
    if (!*slot)
        *slot = spelling;
}

static int parse_args(cli *c, int argc, char **argv, cfg_diag *diag)
{
    c->v = calloc(argc > 0 ? (size_t)argc : 1, sizeof *c->v);
    if (!c->v)
        return cfg_fail(diag, CFG_EXIT_UNAVAILABLE, "out of memory");
    bool end_of_flags = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!a)
            break;
        if (!end_of_flags && strcmp(a, "--") == 0) {
            end_of_flags = true;
            continue;
        }
        bool flagish = !end_of_flags && a[0] == '-' && a[1] != '\0' &&
                       !(isdigit((unsigned char)a[1]) || a[1] == '.');
        if (!flagish) {
            if (c->file) {
                char q[80], f[80];
                cfg_quote_for_msg(a, q, sizeof q);
                cfg_quote_for_msg(c->file, f, sizeof f);
                return cfg_fail(diag, CFG_EXIT_USAGE,
                                "unexpected argument '%s': the YAML file is already '%s' (one "
                                "configuration file per run)",
                                q, f);
            }
            c->file = a;
            continue;
        }

        cli_val *v = &c->v[c->n];
        const char *eq = NULL;
        size_t name_len = strlen(a);
        if (is_verbose(a)) {
            v->flag = find_spelling("-v");
            v->count = (int)name_len - 1;
        } else if (is_long(a)) {
            eq = strchr(a, '=');
            if (eq)
                name_len = (size_t)(eq - a);
            char norm[64];
            if (!normalize_long(a, name_len, norm, sizeof norm))
                return unknown_flag(c, a, name_len, diag);
            v->flag = find_spelling(norm);
            if (!v->flag && strncmp(norm, "--no-", 5) == 0) {
                char pos[64];
                snprintf(pos, sizeof pos, "--%s", norm + 5);
                const cfg_flag *f = find_spelling(pos);
                if (f && f->arity == ARG_BOOL) {
                    if (eq) {
                        char q[80];
                        cfg_quote_for_msg(norm, q, sizeof q);
                        return cfg_fail(diag, CFG_EXIT_USAGE, "%s: takes no value", q);
                    }
                    v->flag = f;
                    v->neg = true;
                }
            }
            if (!v->flag)
                return unknown_flag(c, a, name_len, diag);
        } else {
            v->flag = find_spelling(a);
            if (!v->flag)
                return unknown_flag(c, a, name_len, diag);
        }
        size_t sl = name_len < sizeof v->spelling - 1 ? name_len : sizeof v->spelling - 1;
        memcpy(v->spelling, a, sl);
        v->spelling[sl] = '\0';

        const cfg_flag *f = v->flag;
        if (eq && (f->arity == ARG_VERBOSE || f->arity == ARG_QUIET))
            return cfg_fail(diag, CFG_EXIT_USAGE, "%s: takes no value", v->spelling);
        switch (f->arity) {
        case ARG_VERBOSE:
            note_first(&c->first_verbose, v->spelling);
            c->n++;
            break;
        case ARG_QUIET:
            note_first(&c->first_quiet, v->spelling);
            c->n++;
            break;
        case ARG_BOOL:
            v->value = eq ? eq + 1 : NULL;
            if (check_value(v, diag) < 0)
                return -1;
            c->n++;
            break;
        case ARG_VALUE:
        case ARG_APPEND:
            if (eq) {
                v->value = eq + 1;
            } else if (i + 1 < argc && argv[i + 1] && !is_flag_arg(argv[i + 1])) {
                v->value = argv[++i];
            } else {
                return missing_value(v, diag);
            }
            if (check_value(v, diag) < 0)
                return -1;
            c->n++;
            break;
        case ARG_MANY: {
            size_t taken = 0;
            if (eq) {
                v->value = eq + 1;
                c->n++;
                taken++;
            }
            while (i + 1 < argc && argv[i + 1] && !is_flag_arg(argv[i + 1])) {
                cli_val *w = &c->v[c->n];
                if (taken)
                    *w = *v;
                w->value = argv[++i];
                c->n++;
                taken++;
            }
            if (!taken)
                return missing_value(v, diag);
            break;
        }
        default:
            break;
        }
        if (strcmp(f->key, "prompts") == 0)
            note_first(&c->first_prompts, v->spelling);
        else if (strcmp(f->key, "prompt_file") == 0)
            note_first(&c->first_prompt_file, v->spelling);
        else if (f->arity == ARG_VALUE && strcmp(f->key, "log_level") == 0)
            note_first(&c->first_log_level, v->spelling);
    }

    if (c->first_verbose && c->first_quiet)
        return cfg_fail(diag, CFG_EXIT_USAGE, "%s and %s cannot be used together",
                        c->first_verbose, c->first_quiet);
    if (c->first_log_level && (c->first_verbose || c->first_quiet))
        return cfg_fail(diag, CFG_EXIT_USAGE, "%s and %s cannot be used together",
                        c->first_log_level, c->first_verbose ? c->first_verbose : c->first_quiet);
    if (c->first_prompts && c->first_prompt_file)
        return cfg_fail(diag, CFG_EXIT_USAGE,
                        "%s and %s cannot be used together (give prompts or a prompt file)",
                        c->first_prompts, c->first_prompt_file);
    return 0;
}

/* ---- Applying overrides -------------------------------------------------------- */

static cfg_entry *entry_for(cfg_tree *t, const char *section, const char *key)
{
    mcrt_config *s = cfg_section(t, section);
    cfg_entry *e = cfg_entry_find(s, key);
    return e ? e : cfg_entry_add(s, key);
}

static int oom(cfg_diag *diag)
{
    return cfg_fail(diag, CFG_EXIT_UNAVAILABLE, "out of memory");
}

/* Sets section.key to a one-item or growing list from src/origin. */
static int set_list_item(cfg_tree *t, const cfg_flag *f, const char *value, int src,
                         const char *origin, cfg_diag *diag)
{
    cfg_entry *e = entry_for(t, f->section, f->key);
    if (!e)
        return oom(diag);
    if (e->src != src || e->kind != CFG_V_LIST) {
        cfg_entry_clear(e);
        e->src = src;
        e->kind = CFG_V_LIST;
        e->origin = cfg_strdup(origin);
        if (!e->origin)
            return oom(diag);
    }
    return cfg_entry_append_item(e, value) < 0 ? oom(diag) : 0;
}

static int set_scalar(cfg_tree *t, const char *section, const char *key, const char *value,
                      int src, const char *origin, cfg_diag *diag)
{
    cfg_entry *e = entry_for(t, section, key);
    if (!e || cfg_entry_set_scalar(e, value, src, origin) < 0)
        return oom(diag);
    return 0;
}

static int apply_env(cfg_tree *t, char **envp, cfg_diag *diag)
{
    for (size_t i = 0; i < N_FLAGS; i++) {
        const cfg_flag *f = &flag_table[i];
        const char *canon = canonical_long(f);
        if (!canon || f->arity == ARG_VERBOSE || f->arity == ARG_QUIET)
            continue;
        char name[64];
        env_name(canon, name, sizeof name);
        const char *val = env_get(envp, name);
        if (!val || !val[0])
            continue;
        const mcrt_config_key *k = cfg_core_key(f->section, f->key);
        if (k && k->type == MCRT_CFG_STRING_LIST) {
            if (set_list_item(t, f, val, CFG_SRC_ENV, name, diag) < 0)
                return -1;
            continue;
        }
        if (set_scalar(t, f->section, f->key, val, CFG_SRC_ENV, name, diag) < 0)
            return -1;
        if (k) {
            cfg_entry *e = cfg_entry_find(cfg_section(t, f->section), f->key);
            int rc = cfg_convert_entry(t, f->section, k, e, diag);
            cfg_entry_clear_typed(e);
            if (rc < 0)
                return -1;
        }
    }
    return 0;
}

static int apply_cli(cfg_tree *t, const cli *c, cfg_diag *diag)
{
    int verbose = 0;
    const char *vspell = NULL, *qspell = NULL;
    for (size_t i = 0; i < c->n; i++) {
        const cli_val *v = &c->v[i];
        const cfg_flag *f = v->flag;
        switch (f->arity) {
        case ARG_VERBOSE:
            verbose += v->count;
            if (!vspell)
                vspell = v->spelling;
            break;
        case ARG_QUIET:
            qspell = v->spelling;
            break;
        case ARG_BOOL:
            if (set_scalar(t, f->section, f->key,
                           v->value ? v->value : (v->neg ? "false" : "true"), CFG_SRC_CLI,
                           v->spelling, diag) < 0)
                return -1;
            break;
        case ARG_VALUE:
            if (set_scalar(t, f->section, f->key, v->value, CFG_SRC_CLI, v->spelling, diag) < 0)
                return -1;
            break;
        case ARG_MANY:
        case ARG_APPEND:
            if (set_list_item(t, f, v->value, CFG_SRC_CLI, v->spelling, diag) < 0)
                return -1;
            break;
        default:
            break;
        }
    }
    if (verbose) {
        const char *origin = verbose >= 2 ? (strcmp(vspell, "-v") == 0 ? "-v -v" : vspell)
                                          : vspell;
        if (set_scalar(t, "runtime", "log_level", verbose >= 2 ? "trace" : "debug", CFG_SRC_CLI,
                       origin, diag) < 0)
            return -1;
    } else if (qspell) {
        if (set_scalar(t, "runtime", "log_level", "error", CFG_SRC_CLI, qspell, diag) < 0)
            return -1;
    }
    return 0;
}

/* prompts vs prompt_file: the higher source wins; the same source is an error. */
static int resolve_prompt_sources(cfg_tree *t, cfg_diag *diag)
{
    mcrt_config *g = cfg_section(t, "generation");
    cfg_entry *p = cfg_entry_find(g, "prompts"), *f = cfg_entry_find(g, "prompt_file");
    if (!p || !f || p->kind == CFG_V_NULL || f->kind == CFG_V_NULL)
        return 0;
    if (p->src == f->src) {
        if (p->src == CFG_SRC_YAML)
            return cfg_fail(diag, CFG_EXIT_CONFIG,
                            "%s:%d:%d: generation.prompts and generation.prompt_file (at %d:%d) "
                            "are both set; use one of them",
                            t->file, p->key_line, p->key_col, f->key_line, f->key_col);
        return cfg_fail(diag, p->src == CFG_SRC_CLI ? CFG_EXIT_USAGE : CFG_EXIT_CONFIG,
                        "%s and %s are both set; use one of them", p->origin ? p->origin : "?",
                        f->origin ? f->origin : "?");
    }
    cfg_entry_remove(g, p->src < f->src ? p : f);
    return 0;
}

static int set_file(cfg_tree *t, const char *file, char **envp, cfg_diag *diag)
{
    const char *home = env_get(envp, "HOME");
    if (home && home[0] && !(t->home = cfg_strdup(home)))
        return oom(diag);
    if (!file)
        return 0;
    t->file = cfg_strdup(file);
    const char *slash = strrchr(file, '/');
    if (!slash)
        t->dir = cfg_strdup(".");
    else if (slash == file)
        t->dir = cfg_strdup("/");
    else
        t->dir = cfg_strndup(file, (size_t)(slash - file));
    if (!t->file || !t->dir)
        return oom(diag);
    return 0;
}

int cfg_build(cfg_tree *t, int argc, char **argv, char **envp, cfg_diag *diag)
{
    if (diag) {
        diag->exit_code = 0;
        diag->msg[0] = '\0';
    }
    if (!t)
        return cfg_fail(diag, CFG_EXIT_SOFTWARE, "cfg_build: no tree");
    if (t->built)
        return cfg_fail(diag, CFG_EXIT_SOFTWARE, "cfg_build: called twice on one tree");
    t->built = true;
    if (!argv)
        argc = 0;

    cli c = { 0 };
    c.sub = argc > 0 ? argv[0] : NULL;
    int rc = parse_args(&c, argc, argv, diag);
    if (rc == 0)
        rc = set_file(t, c.file, envp, diag);
    if (rc == 0 && t->file) {
        cfg_ynode *root = NULL;
        rc = cfg_yaml_load(t->file, &root, diag);
        if (rc == 0)
            rc = cfg_tree_from_yaml(t, root, diag);
        cfg_ynode_free(root);
    }
    if (rc == 0)
        rc = apply_env(t, envp, diag);
    if (rc == 0)
        rc = apply_cli(t, &c, diag);
    if (rc == 0)
        rc = resolve_prompt_sources(t, diag);
    free(c.v);
    return rc;
}

/* ---- Help ------------------------------------------------------------------------ */

void cfg_print_flags_help(FILE *out)
{
    if (!out)
        return;
    for (size_t i = 0; i < N_FLAGS; i++) {
        const cfg_flag *f = &flag_table[i];
        char left[160];
        size_t o = 0;
        for (size_t j = 0; j < 4 && f->names[j] && o < sizeof left; j++) {
            const char *nm = f->names[j];
            int w;
            if (f->arity == ARG_BOOL && is_long(nm))
                w = snprintf(left + o, sizeof left - o, "%s--[no-]%s", j ? ", " : "", nm + 2);
            else
                w = snprintf(left + o, sizeof left - o, "%s%s", j ? ", " : "", nm);
            if (w > 0)
                o += (size_t)w;
        }
        if (f->arity == ARG_VERBOSE && o < sizeof left)
            o += (size_t)snprintf(left + o, sizeof left - o, ", -vv");
        if (f->metavar && o < sizeof left)
            snprintf(left + o, sizeof left - o, " %s", f->metavar);
        fprintf(out, "  %-40s %s [%s.%s]\n", left, f->doc, f->section, f->key);
    }
}
