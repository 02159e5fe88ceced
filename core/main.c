/*
 * core/main.c: the `mcrt` command line. Only argument handling and the order
 * of things live here: config -> registry -> pipeline -> run -> output.
 *
 *   mcrt run [CONFIG] [flags]      generate text (Megatron-Core's static batch flow)
 *   mcrt config [CONFIG] [flags]   print the effective configuration and sources
 *   mcrt plugins [--plugin-dir D]  list plugins, their scores and config keys
 *   mcrt tokenize | detokenize     text <-> ids with the configured tokenizer
 *   mcrt --version | --help | help COMMAND
 *
 * Exit codes (docs/cli.md): 0 ok, 64 usage, 65 data (some requests failed),
 * 66 no input, 69 unavailable, 70 software, 73 cannot create output, 78 config.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "commands/convert.h"  /* cmd_convert */
#include "commands/inspect.h"  /* cmd_inspect */
#include "commands/prompts.h"  /* run_requests */
#include "commands/tokenize.h" /* cmd_tokenize */
#include "config/config.h"     /* cfg_tree, cfg_build, cfg_validate_* */
#include "mcrt/plugin.h"       /* MCRT_ABI_* */
#include "mcrt/request.h"      /* MCRT_REQ_* */
#include "mcrt_build_config.h" /* MCRT_VERSION, MCRT_PLUGINDIR, MCRT_HAVE_* */
#include "output/output.h"     /* output_write */
#include "plugin/registry.h"   /* registry */
#include "runtime/pipeline.h"  /* pipeline */
#include "util/exitcode.h"     /* EXIT_* */
#include "util/log.h"          /* log_sink */
#include "util/strutil.h"      /* strbuf */

extern char **environ;

/* Hard limits on what a prompt file may hold, so bad input cannot exhaust
 * memory: 256 MiB of text, 1M prompts. */

static void print_version(FILE *out)
{
    fprintf(out, "mcrt %s (plugin ABI %d.%d)\n", MCRT_VERSION, MCRT_ABI_MAJOR, MCRT_ABI_MINOR);
    fprintf(out, "features: cuda=%s nccl=%s mpi=%s server=%s\n", MCRT_HAVE_CUDA ? "yes" : "no",
            MCRT_HAVE_NCCL ? "yes" : "no", MCRT_HAVE_MPI ? "yes" : "no",
            MCRT_HAVE_SERVER ? "yes" : "no");
    fprintf(out, "plugin dir: %s\n", MCRT_PLUGINDIR);
}

static void usage_main(FILE *out)
{
    fputs("usage: mcrt COMMAND [ARGS]\n"
          "\n"
          "commands:\n"
          "  run [CONFIG] [flags]       generate text for prompts (see `mcrt run --help`)\n"
          "  config [CONFIG] [flags]    print the effective configuration and where each value came from\n"
          "  plugins [--plugin-dir D]   list plugins: kind, name, version, ABI, score, config keys\n"
          "  tokenize [CONFIG] TEXT...  print the token ids (and --pieces) of each text\n"
          "  detokenize [CONFIG] ID...  print the text of token ids\n"
          "  inspect PATH [--json]      what a checkpoint holds: format, hyper-parameters, tensors\n"
          "  convert PATH OUT           any checkpoint (Megatron torch, torch_dist) to safetensors\n"
          "  help [COMMAND]             this text, or a command's help\n"
          "\n"
          "options:\n"
          "  -h, --help                 show help\n"
          "  -V, --version              show version, plugin ABI and build features\n"
          "\n"
          "Exit codes: 0 ok, 64 usage, 65 data, 66 no input, 69 unavailable, 70 software,\n"
          "73 cannot create output, 78 config (docs/cli.md).\n",
          out);
}

static void usage_run(FILE *out)
{
    fputs("usage: mcrt run [CONFIG.yaml] [flags]\n"
          "\n"
          "Runs the pipeline of CONFIG (engine, controller, model, sampler, tokenizer) on the\n"
          "prompts and prints one result per request, in request order.\n"
          "Values come from flags, then MCRT_* environment variables, then the YAML, then defaults.\n"
          "\n"
          "flags:\n",
          out);
    cfg_print_flags_help(out);
}

static void usage_config(FILE *out)
{
    fputs("usage: mcrt config [CONFIG.yaml] [flags]\n"
          "\n"
          "Validates CONFIG with the flags and MCRT_* environment applied, and prints every key's\n"
          "effective value with where it came from (cli, env, FILE:LINE:COL, default).\n"
          "Takes the same flags as `mcrt run`.\n",
          out);
}

static void usage_plugins(FILE *out)
{
    fputs("usage: mcrt plugins [--plugin-dir DIR]... [-v|-q|--log-level L]\n"
          "\n"
          "Lists every plugin found in the search path (--plugin-dir, MCRT_PLUGIN_PATH, the\n"
          "installed plugin dir, the build tree): path, kind, name, version, ABI, its probe score\n"
          "or the reason it is unusable, and each config key with type, default and doc.\n",
          out);
}

static bool is_help(const char *a) { return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0; }

static const char *type_name(uint32_t t)
{
    switch (t) {
    case MCRT_CFG_BOOL: return "bool";
    case MCRT_CFG_INT: return "int";
    case MCRT_CFG_FLOAT: return "float";
    case MCRT_CFG_STRING: return "string";
    case MCRT_CFG_PATH: return "path";
    case MCRT_CFG_ENUM: return "enum";
    case MCRT_CFG_STRING_LIST: return "list";
    default: return "?";
    }
}

static void print_keys(FILE *out, const mcrt_config_key *keys)
{
    if (keys == NULL || keys[0].name == NULL) {
        fputs("    (no config keys)\n", out);
        return;
    }
    size_t stride = keys[0].struct_size;
    for (const char *p = (const char *)keys;; p += stride) {
        const mcrt_config_key *k = (const mcrt_config_key *)p;
        if (k->name == NULL)
            break;
        fprintf(out, "    %-28s %-6s", k->name, type_name(k->type));
        if (k->type == MCRT_CFG_ENUM && k->choices)
            fprintf(out, " {%s}", k->choices);
        if (k->flags & MCRT_CFG_REQUIRED)
            fputs(" required", out);
        else
            fprintf(out, " default %s", k->default_value ? k->default_value : "unset");
        if (k->flags & (MCRT_CFG_HAS_MIN | MCRT_CFG_HAS_MAX)) {
            fputs(" range [", out);
            if (k->flags & MCRT_CFG_HAS_MIN) fprintf(out, "%g", k->min); else fputs("-inf", out);
            fputs(", ", out);
            if (k->flags & MCRT_CFG_HAS_MAX) fprintf(out, "%g", k->max); else fputs("inf", out);
            fputc(']', out);
        }
        fprintf(out, "\n      %s\n", k->doc ? k->doc : "");
    }
}

/* `mcrt plugins` */
static int cmd_plugins(int argc, char **argv, const char *exe)
{
    int level = MCRT_LOG_WARN;
    int verbose = 0, quiet = 0;
    registry *reg = NULL;
    log_sink log;
    log_sink_init(&log, stderr, level);
    /* First pass: flags other than --plugin-dir, so logging is set before scanning. */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (is_help(a)) {
            usage_plugins(stdout);
            return EXIT_OK;
        } else if (strcmp(a, "-v") == 0) {
            verbose++;
        } else if (strcmp(a, "-vv") == 0) {
            verbose += 2;
        } else if (strcmp(a, "-q") == 0) {
            quiet = 1;
        } else if (strcmp(a, "--log-level") == 0 || strncmp(a, "--log-level=", 12) == 0) {
            const char *v = a[11] == '=' ? a + 12 : (i + 1 < argc ? argv[++i] : NULL);
            static const char *const names[] = {"error", "warn", "info", "debug", "trace"};
            int found = 0;
            for (int k = 0; v && k < 5; k++)
                if (strcmp(v, names[k]) == 0) { level = k + 1; found = 1; }
            if (!found) {
                fprintf(stderr, "mcrt plugins: --log-level: expected one of error, warn, info, "
                                "debug, trace, got '%s'\n", v ? v : "(nothing)");
                return EXIT_USAGE;
            }
        } else if (strcmp(a, "--plugin-dir") == 0 || strcmp(a, "--plugin_dir") == 0) {
            if (i + 1 >= argc || argv[i + 1][0] == '-') {
                fprintf(stderr, "mcrt plugins: --plugin-dir needs a directory\n");
                return EXIT_USAGE;
            }
            i++;
        } else if (strncmp(a, "--plugin-dir=", 13) == 0) {
        } else {
            fprintf(stderr, "mcrt plugins: unknown argument '%s' (see `mcrt plugins --help`)\n", a);
            return EXIT_USAGE;
        }
    }
    if (verbose && quiet) {
        fprintf(stderr, "mcrt plugins: -v and -q conflict\n");
        return EXIT_USAGE;
    }
    if (verbose) level = verbose > 1 ? MCRT_LOG_TRACE : MCRT_LOG_DEBUG;
    if (quiet) level = MCRT_LOG_ERROR;
    log_sink_init(&log, stderr, level);
    reg = registry_create(&log, exe);
    if (reg == NULL) {
        fprintf(stderr, "mcrt plugins: out of memory\n");
        return EXIT_UNAVAILABLE;
    }
    for (int i = 1; i < argc; i++) {
        const char *dir = NULL;
        if (strcmp(argv[i], "--plugin-dir") == 0 || strcmp(argv[i], "--plugin_dir") == 0)
            dir = argv[++i];
        else if (strncmp(argv[i], "--plugin-dir=", 13) == 0)
            dir = argv[i] + 13;
        else if (strcmp(argv[i], "--log-level") == 0)
            i++;
        if (dir == NULL)
            continue;
        char err[1024];
        int code = 0;
        if (registry_add_dir(reg, dir, DIR_FLAG, true, err, sizeof err, &code) != 0) {
            fprintf(stderr, "mcrt plugins: %s\n", err);
            registry_destroy(reg);
            return code;
        }
    }
    registry_add_default_dirs(reg, getenv("MCRT_PLUGIN_PATH"));
    size_t n = registry_count(reg);
    if (n == 0)
        printf("no plugins found (searched --plugin-dir, MCRT_PLUGIN_PATH, %s and the build tree)\n",
               MCRT_PLUGINDIR);
    for (size_t i = 0; i < n; i++) {
        plugin_entry *e = registry_at(reg, i);
        registry_open(reg, e);
        registry_probe(reg, e, NULL);
        printf("%s\n", e->path);
        printf("  kind: %s  name: %s  found via: %s\n", kind_name(e->kind), e->name,
               registry_dir_origin_name(e->origin));
        if (e->state == PLUGIN_READY) {
            printf("  version: %s  ABI: %u.%u  %s\n", e->desc->version ? e->desc->version : "?",
                   (unsigned)e->desc->abi_major, (unsigned)e->desc->abi_minor,
                   e->desc->description ? e->desc->description : "");
            if (e->score > 0)
                printf("  score: %d\n", (int)e->score);
            else
                printf("  score: 0 (unusable here: %s)\n", e->reason);
            printf("  config keys:\n");
            print_keys(stdout, e->desc->config_keys);
        } else {
            printf("  %s: %s\n", e->state == PLUGIN_SHADOWED ? "shadowed" : "unusable", e->reason);
        }
    }
    fflush(stdout);
    registry_destroy(reg);
    return EXIT_OK;
}

/* Strip -h/--help; true when one was present. */
static bool wants_help(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (is_help(argv[i]))
            return true;
    }
    return false;
}

/* Build and validate the config tree; on failure prints and returns the exit code. */
static int load_config(cfg_tree *t, int argc, char **argv, const char *cmd)
{
    cfg_diag d;
    memset(&d, 0, sizeof d);
    if (cfg_build(t, argc, argv, environ, &d) != 0 || cfg_validate_core(t, &d) != 0 ||
        cfg_apply_checkpoint_args(t, &d) != 0) {
        fprintf(stderr, "mcrt %s: %s\n", cmd, d.msg);
        return d.exit_code ? d.exit_code : EXIT_CONFIG;
    }
    return EXIT_OK;
}

static int add_config_plugin_dirs(registry *reg, cfg_tree *t, const char *cmd)
{
    const mcrt_config *rt = cfg_section(t, "runtime");
    size_t n = 0;
    if (cfg_list_size(rt, "plugin_dirs", &n) == MCRT_OK) {
        for (size_t i = 0; i < n; i++) {
            const char *dir;
            if (cfg_list_item(rt, "plugin_dirs", i, &dir) != MCRT_OK)
                continue;
            char err[1024];
            int code = 0;
            if (registry_add_dir(reg, dir, DIR_FLAG, true, err, sizeof err, &code) != 0) {
                fprintf(stderr, "mcrt %s: %s\n", cmd, err);
                return code;
            }
        }
    }
    registry_add_default_dirs(reg, getenv("MCRT_PLUGIN_PATH"));
    return EXIT_OK;
}

/* `mcrt config` */
static int cmd_config(int argc, char **argv, const char *exe)
{
    if (wants_help(argc, argv)) {
        usage_config(stdout);
        return EXIT_OK;
    }
    cfg_tree *t = cfg_tree_create();
    if (t == NULL) {
        fprintf(stderr, "mcrt config: out of memory\n");
        return EXIT_UNAVAILABLE;
    }
    int rc = load_config(t, argc, argv, "config");
    registry *reg = NULL;
    log_sink log;
    if (rc == EXIT_OK) {
        log_sink_init(&log, stderr, cfg_log_level(t));
        reg = registry_create(&log, exe);
        rc = reg ? add_config_plugin_dirs(reg, t, "config") : EXIT_UNAVAILABLE;
    }
    /* Validate each plugin section against its chosen plugin when one is found;
     * otherwise against the core's keys only, with a note. */
    for (int k = 1; rc == EXIT_OK && k <= MCRT_KIND_COUNT; k++) {
        const char *kn = kind_name(k);
        mcrt_config *sec = cfg_section(t, kn);
        const char *name = "auto";
        if (cfg_get_string(sec, "name", &name) != MCRT_OK)
            name = "auto";
        char err[1024];
        int code = 0;
        plugin_entry *pe = registry_select(reg, k, name, sec, err, sizeof err, &code);
        const mcrt_config_key *sets[2] = {cfg_core_keys(kn), pe ? pe->desc->config_keys : NULL};
        cfg_diag d;
        memset(&d, 0, sizeof d);
        if (pe == NULL) {
            if (code == EXIT_CONFIG) {
                fprintf(stderr, "mcrt config: %s\n", err);
                rc = code;
                break;
            }
            printf("# %s: %s; its plugin keys are not checked\n", kn, err);
            /* Core keys only: unknown keys cannot be told from the plugin's own. */
            continue;
        }
        if (cfg_validate_section(t, kn, sets, 2, &d) != 0) {
            fprintf(stderr, "mcrt config: %s\n", d.msg);
            rc = d.exit_code ? d.exit_code : EXIT_CONFIG;
            break;
        }
        printf("# %s: plugin %s (%s)\n", kn, pe->name, pe->path);
    }
    if (rc == EXIT_OK)
        cfg_print_effective(t, stdout);
    fflush(stdout);
    registry_destroy(reg);
    cfg_tree_destroy(t);
    return rc;
}

/* llama.cpp's closing summary, on stderr: load, prompt (prefill steps), generation
 * (the rest of the run), total. With json output, one JSON object instead. */
static void print_timing(FILE *f, const pipeline *p, uint64_t load_ns, size_t n_prompt,
                         size_t n_gen, size_t failed, bool json)
{
    pipeline_stats s;
    pipeline_get_stats(p, &s);
    double load = (double)load_ns / 1e6, pre = (double)s.prefill_ns / 1e6;
    double run = (double)s.run_ns / 1e6, gen = run > pre ? run - pre : 0.0;
    double pre_tps = pre > 0 ? (double)n_prompt / (pre / 1e3) : 0.0;
    double gen_tps = gen > 0 ? (double)n_gen / (gen / 1e3) : 0.0;
    size_t n = pipeline_result_count(p);
    if (json) {
        fprintf(f, "{\"timing\": {\"load_ms\": %.3f, \"prompt_tokens\": %zu, \"prompt_ms\": %.3f, "
                "\"prompt_tokens_per_s\": %.2f, \"generated_tokens\": %zu, \"generation_ms\": %.3f, "
                "\"generated_tokens_per_s\": %.2f, \"total_ms\": %.3f, \"requests\": %zu, "
                "\"failed\": %zu}}\n", load, n_prompt, pre, pre_tps, n_gen, gen, gen_tps, load + run,
                n, failed);
        return;
    }
    fprintf(f, "mcrt: load time      = %10.2f ms\n", load);
    fprintf(f, "mcrt: prompt eval    = %10.2f ms / %6zu tokens (%8.2f tokens per second)\n", pre,
            n_prompt, pre_tps);
    fprintf(f, "mcrt: generation     = %10.2f ms / %6zu tokens (%8.2f tokens per second)\n", gen,
            n_gen, gen_tps);
    fprintf(f, "mcrt: total time     = %10.2f ms / %6zu requests%s\n", load + run, n,
            failed ? " (some failed)" : "");
}

static int cmd_run(int argc, char **argv, const char *exe)
{
    if (wants_help(argc, argv)) {
        usage_run(stdout);
        return EXIT_OK;
    }
    int rc;
    cfg_tree *t = cfg_tree_create();
    registry *reg = NULL;
    pipeline *p = NULL;
    run_requests prompts;
    memset(&prompts, 0, sizeof prompts);
    FILE *out = stdout;
    log_sink log;
    if (t == NULL) {
        fprintf(stderr, "mcrt run: out of memory\n");
        return EXIT_UNAVAILABLE;
    }
    rc = load_config(t, argc, argv, "run");
    if (rc != EXIT_OK)
        goto done;
    log_sink_init(&log, stderr, cfg_log_level(t));
    const mcrt_config *gen = cfg_section(t, "generation");
    const mcrt_config *outsec = cfg_section(t, "output");
    rc = run_requests_read(gen, &prompts);
    if (rc != EXIT_OK)
        goto done;
    const char *fmt_s = "text";
    if (cfg_get_string(outsec, "format", &fmt_s) != MCRT_OK)
        fmt_s = "text";
    int fmt = output_format_parse(fmt_s);
    if (fmt < 0) {
        fprintf(stderr, "mcrt run: output.format: expected text, json or jsonl, got '%s'\n", fmt_s);
        rc = EXIT_CONFIG;
        goto done;
    }
    bool stream = false;
    if (cfg_get_bool(outsec, "stream", &stream) != MCRT_OK)
        stream = false;
    if (stream && fmt != OUTPUT_TEXT) {
        fprintf(stderr, "mcrt run: output.stream prints text as it is generated; it needs "
                        "output.format text, not %s\n", fmt_s);
        rc = EXIT_CONFIG;
        goto done;
    }
    reg = registry_create(&log, exe);
    if (reg == NULL) {
        rc = EXIT_UNAVAILABLE;
        goto done;
    }
    rc = add_config_plugin_dirs(reg, t, "run");
    if (rc != EXIT_OK)
        goto done;
    char err[2048];
    int code = EXIT_SOFTWARE;
    struct timespec ts0, ts1;
    clock_gettime(CLOCK_MONOTONIC, &ts0);
    p = pipeline_create(t, reg, &log, err, sizeof err, &code);
    clock_gettime(CLOCK_MONOTONIC, &ts1);
    uint64_t load_ns = (uint64_t)(ts1.tv_sec - ts0.tv_sec) * 1000000000ull +
                       (uint64_t)(ts1.tv_nsec - ts0.tv_nsec);
    if (p == NULL) {
        fprintf(stderr, "mcrt run: %s\n", err);
        rc = code;
        goto done;
    }
    /* Open the output before the (long) run, so a bad path fails fast. */
    const char *out_path = NULL;
    if (cfg_get_string(outsec, "path", &out_path) == MCRT_OK && out_path != NULL) {
        out = fopen(out_path, "w");
        if (out == NULL) {
            fprintf(stderr, "mcrt run: output.path %s: %s\n", out_path, strerror(errno));
            out = stdout;
            rc = EXIT_CANTCREAT;
            goto done;
        }
    }
    if (stream)
        pipeline_set_stream(p, out);
    bool quiet = cfg_log_level(t) <= MCRT_LOG_ERROR;
    if (!quiet && isatty(fileno(stderr)) && !stream)
        pipeline_set_progress(p, stderr);
    for (size_t i = 0; i < prompts.n; i++) {
        const run_request *rq = &prompts.items[i];
        mcrt_status st = pipeline_submit(p, rq->text, rq->len, &rq->params, rq->custom_id);
        if (st != MCRT_OK) {
            fprintf(stderr, "mcrt run: cannot queue request %zu: %s\n", i, mcrt_status_str(st));
            rc = exit_code_for_status(st);
            goto done;
        }
    }
    mcrt_status st = pipeline_run(p);
    if (st != MCRT_OK) {
        const char *le = pipeline_last_error(p);
        fprintf(stderr, "mcrt run: generation failed: %s%s%s\n", mcrt_status_str(st),
                le[0] ? ": " : "", le);
        rc = exit_code_for_status(st);
        goto done;
    }
    if (stream) {
        fflush(out);
        if (ferror(out)) {
            fprintf(stderr, "mcrt run: writing results: %s\n", strerror(errno));
            rc = EXIT_CANTCREAT;
            goto done;
        }
    } else if (output_write(out, (output_format)fmt, p) != 0) {
        fprintf(stderr, "mcrt run: writing results: %s\n", strerror(errno));
        rc = EXIT_CANTCREAT;
        goto done;
    }
    size_t failed = 0, n_prompt = 0, n_gen = 0;
    for (size_t i = 0; i < pipeline_result_count(p); i++) {
        pipeline_result r;
        pipeline_result_at(p, i, &r);
        n_prompt += r.n_prompt_tokens;
        n_gen += r.n_tokens;
        if (r.status != MCRT_REQ_COMPLETED) {
            failed++;
            fprintf(stderr, "mcrt run: request %llu failed: %s\n", (unsigned long long)r.id,
                    r.error ? r.error : "unknown reason");
        }
    }
    if (!quiet)
        print_timing(stderr, p, load_ns, n_prompt, n_gen, failed, fmt == OUTPUT_JSON);
    rc = failed ? EXIT_DATAERR : EXIT_OK;
done:
    if (out != stdout && out != NULL && fclose(out) != 0 && rc == EXIT_OK) {
        fprintf(stderr, "mcrt run: closing the output: %s\n", strerror(errno));
        rc = EXIT_CANTCREAT;
    }
    pipeline_destroy(p);
    registry_destroy(reg);
    run_requests_free(&prompts);
    cfg_tree_destroy(t);
    return rc;
}

int main(int argc, char **argv)
{
    const char *exe = "/proc/self/exe";
    if (argc < 2) {
        usage_main(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (is_help(cmd)) {
        usage_main(stdout);
        return EXIT_OK;
    }
    if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
        print_version(stdout);
        return EXIT_OK;
    }
    if (strcmp(cmd, "help") == 0) {
        const char *what = argc > 2 ? argv[2] : NULL;
        if (what == NULL) usage_main(stdout);
        else if (strcmp(what, "run") == 0) usage_run(stdout);
        else if (strcmp(what, "config") == 0) usage_config(stdout);
        else if (strcmp(what, "plugins") == 0) usage_plugins(stdout);
        else if (strcmp(what, "tokenize") == 0) cmd_tokenize_usage(stdout, false);
        else if (strcmp(what, "detokenize") == 0) cmd_tokenize_usage(stdout, true);
        else if (strcmp(what, "inspect") == 0) cmd_inspect_usage(stdout);
        else if (strcmp(what, "convert") == 0) cmd_convert_usage(stdout);
        else {
            fprintf(stderr, "mcrt help: unknown command '%s'\n", what);
            return EXIT_USAGE;
        }
        return EXIT_OK;
    }
    if (strcmp(cmd, "run") == 0)
        return cmd_run(argc - 1, argv + 1, exe);
    if (strcmp(cmd, "config") == 0)
        return cmd_config(argc - 1, argv + 1, exe);
    if (strcmp(cmd, "plugins") == 0)
        return cmd_plugins(argc - 1, argv + 1, exe);
    if (strcmp(cmd, "tokenize") == 0)
        return cmd_tokenize(argc - 1, argv + 1, exe, false);
    if (strcmp(cmd, "detokenize") == 0)
        return cmd_tokenize(argc - 1, argv + 1, exe, true);
    if (strcmp(cmd, "inspect") == 0)
        return cmd_inspect(argc - 1, argv + 1);
    if (strcmp(cmd, "convert") == 0)
        return cmd_convert(argc - 1, argv + 1);
    static const char *const cmds[] = {"run", "config", "plugins", "tokenize", "detokenize",
                                       "inspect", "convert", "help"};
    const char *best = NULL;
    size_t bd = 3;
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        size_t d = edit_distance(cmd, cmds[i]);
        if (d < bd) { bd = d; best = cmds[i]; }
    }
    if (best)
        fprintf(stderr, "mcrt: unknown command '%s'; did you mean '%s'? (see `mcrt --help`)\n", cmd, best);
    else
        fprintf(stderr, "mcrt: unknown command '%s' (see `mcrt --help`)\n", cmd);
    return EXIT_USAGE;
}
