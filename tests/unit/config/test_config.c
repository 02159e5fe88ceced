/*
 * tests/unit/config/test_config.c: the config subsystem (core/config) end to
 * end: YAML files written to a temporary folder, command lines and
 * environments given as lists, results read back through cfg_get_* and
 * through the text of cfg_print_effective.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* open_memstream, mkdtemp, nftw */
#endif
#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"

/* ---- Fixture: a temporary folder per test ------------------------------ */

static char tmpdir[64];

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/mcrt-cfg-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void teardown(void)
{
    nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes `content` to tmpdir/name (creating its folders); the path into buf. */
static const char *write_file(const char *name, const char *content, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", tmpdir, name);
    for (char *slash = buf + strlen(tmpdir) + 1; (slash = strchr(slash, '/')); slash++) {
        *slash = '\0';
        mkdir(buf, 0700);
        *slash = '/';
    }
    FILE *f = fopen(buf, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(content, 1, strlen(content), f), strlen(content));
    fclose(f);
    return buf;
}

/* Builds a tree from `args` (argv after the subcommand; "@" is replaced by
 * yaml_path) and `env` (NULL-terminated "NAME=value" list, may be NULL). */
static cfg_tree *build(const char *yaml_path, const char *const *args, const char *const *env,
                       int *rc, cfg_diag *d)
{
    char *argv[64];
    int argc = 0;
    argv[argc++] = (char *)"run";
    for (size_t i = 0; args && args[i]; i++)
        argv[argc++] = (char *)(strcmp(args[i], "@") == 0 ? yaml_path : args[i]);
    argv[argc] = NULL;
    char *envp[32];
    size_t n = 0;
    for (size_t i = 0; env && env[i]; i++)
        envp[n++] = (char *)env[i];
    envp[n] = NULL;
    cfg_tree *t = cfg_tree_create();
    ck_assert_ptr_nonnull(t);
    memset(d, 0, sizeof *d);
    *rc = cfg_build(t, argc, argv, envp, d);
    return t;
}

/* cfg_validate_core, then every plugin section against the core's keys only. */
static int validate_all(cfg_tree *t, cfg_diag *d)
{
    if (cfg_validate_core(t, d) != 0)
        return -1;
    const char *const *names = cfg_section_names();
    for (size_t i = 0; names[i]; i++) {
        if (!cfg_section_is_plugin(names[i]))
            continue;
        const mcrt_config_key *set = cfg_core_keys(names[i]);
        if (cfg_validate_section(t, names[i], &set, 1, d) != 0)
            return -1;
    }
    return 0;
}

static cfg_tree *build_ok(const char *yaml_path, const char *const *args, const char *const *env)
{
    int rc;
    cfg_diag d;
    cfg_tree *t = build(yaml_path, args, env, &rc, &d);
    ck_assert_msg(rc == 0, "cfg_build failed: %d %s", d.exit_code, d.msg);
    ck_assert_msg(validate_all(t, &d) == 0, "validation failed: %d %s", d.exit_code, d.msg);
    return t;
}

static char *printed(const cfg_tree *t)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    cfg_print_effective(t, f);
    fclose(f);
    return buf;
}

/* Asserts that `out` has a line "LEFT<spaces># SOURCE" (any source when NULL). */
static void assert_line(const char *out, const char *left, const char *source)
{
    size_t ll = strlen(left);
    for (const char *p = out; p && *p;) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        if (n > ll && strncmp(p, left, ll) == 0 && p[ll] == ' ') {
            const char *h = p + ll;
            while (*h == ' ')
                h++;
            ck_assert_msg(*h == '#', "line '%.*s': no source", (int)n, p);
            if (!source)
                return;
            size_t rest = n - (size_t)(h - p);
            ck_assert_msg(rest == strlen(source) + 2 && strncmp(h + 2, source, rest - 2) == 0,
                          "line '%.*s': expected source '%s'", (int)n, p, source);
            return;
        }
        p = eol ? eol + 1 : NULL;
    }
    ck_abort_msg("no line '%s  # %s' in:\n%s", left, source ? source : "*", out);
}

static int64_t get_int(cfg_tree *t, const char *sec, const char *key)
{
    int64_t v = -12345;
    mcrt_status st = cfg_get_int(cfg_section(t, sec), key, &v);
    ck_assert_msg(st == MCRT_OK, "%s.%s: status %d", sec, key, (int)st);
    return v;
}

static double get_float(cfg_tree *t, const char *sec, const char *key)
{
    double v = -12345;
    mcrt_status st = cfg_get_float(cfg_section(t, sec), key, &v);
    ck_assert_msg(st == MCRT_OK, "%s.%s: status %d", sec, key, (int)st);
    return v;
}

static bool get_bool(cfg_tree *t, const char *sec, const char *key)
{
    bool v = false;
    mcrt_status st = cfg_get_bool(cfg_section(t, sec), key, &v);
    ck_assert_msg(st == MCRT_OK, "%s.%s: status %d", sec, key, (int)st);
    return v;
}

static const char *get_str(cfg_tree *t, const char *sec, const char *key)
{
    const char *v = NULL;
    mcrt_status st = cfg_get_string(cfg_section(t, sec), key, &v);
    ck_assert_msg(st == MCRT_OK, "%s.%s: status %d", sec, key, (int)st);
    return v;
}

static void assert_list(cfg_tree *t, const char *sec, const char *key, const char *const *want)
{
    size_t n = 0, wn = 0;
    while (want[wn])
        wn++;
    const mcrt_config *s = cfg_section(t, sec);
    ck_assert_int_eq(cfg_list_size(s, key, &n), MCRT_OK);
    ck_assert_uint_eq(n, wn);
    for (size_t i = 0; i < n; i++) {
        const char *item = NULL;
        ck_assert_int_eq(cfg_list_item(s, key, i, &item), MCRT_OK);
        ck_assert_str_eq(item, want[i]);
    }
    const char *item;
    ck_assert_int_eq(cfg_list_item(s, key, n, &item), MCRT_E_RANGE);
}

/* ---- A good file with every type ------------------------------------------- */

static const char good_yaml[] =
    "# every core key\n"
    "runtime:\n"
    "  log_level: debug\n"
    "  plugin_dirs: [plugins, /opt/mcrt/plugins]\n"
    "  threads: 4\n"
    "parallel:\n"
    "  tensor_model_parallel_size: 2\n"
    "  pipeline_model_parallel_size: 3\n"
    "generation:\n"
    "  prompts:\n"
    "    - Hello\n"
    "    - 'it''s: quoted'\n"
    "  num_tokens_to_generate: 64\n"
    "  temperature: 0.7\n"
    "  top_k: 40\n"
    "  top_p: 0.95\n"
    "  min_p: 0.05\n"
    "  repetition_penalty: 1.1\n"
    "  presence_penalty: -0.5\n"
    "  frequency_penalty: 2\n"
    "  seed: -1\n"
    "  return_log_probs: yes\n"
    "  top_n_logprobs: 5\n"
    "  return_segments: On\n"
    "  stop: \"\\n\\n\"\n"
    "  ignore_eos: FALSE\n"
    "  add_bos: 1\n"
    "  compat: megatron\n"
    "output:\n"
    "  path: out/result.json\n"
    "  format: json\n"
    "  stream: off\n"
    "engine:\n"
    "  name: static\n"
    "  max_batch_size: 16\n"
    "controller: {name: simple}\n"
    "model:\n"
    "  name: gpt\n"
    "  load: ../ckpt/gpt2\n"
    "sampler:\n"
    "  name: \"default\"\n"
    "tokenizer:\n"
    "  name: gpt2-bpe\n"
    "  tokenizer_type: GPT2BPETokenizer\n"
    "  vocab_file: /data/vocab.json\n"
    "  merge_file: merges.txt\n";

START_TEST(good_file_every_type)
{
    char path[256], want[512];
    write_file("conf/good.yaml", good_yaml, path, sizeof path);
    const char *args[] = { "@", NULL };
    cfg_tree *t = build_ok(path, args, NULL);

    ck_assert_str_eq(cfg_file(t), path);
    ck_assert_int_eq(cfg_log_level(t), 4);
    snprintf(want, sizeof want, "%s/conf/plugins", tmpdir);
    assert_list(t, "runtime", "plugin_dirs", (const char *const[]){ want, "/opt/mcrt/plugins", NULL });
    ck_assert_int_eq(get_int(t, "runtime", "threads"), 4);
    ck_assert_int_eq(get_int(t, "parallel", "tensor_model_parallel_size"), 2);
    ck_assert_int_eq(get_int(t, "parallel", "pipeline_model_parallel_size"), 3);
    assert_list(t, "generation", "prompts", (const char *const[]){ "Hello", "it's: quoted", NULL });
    ck_assert_int_eq(get_int(t, "generation", "num_tokens_to_generate"), 64);
    ck_assert_double_eq(get_float(t, "generation", "temperature"), 0.7);
    ck_assert_int_eq(get_int(t, "generation", "top_k"), 40);
    ck_assert_double_eq(get_float(t, "generation", "top_p"), 0.95);
    ck_assert_double_eq(get_float(t, "generation", "min_p"), 0.05);
    ck_assert_double_eq(get_float(t, "generation", "repetition_penalty"), 1.1);
    ck_assert_double_eq(get_float(t, "generation", "presence_penalty"), -0.5);
    ck_assert_double_eq(get_float(t, "generation", "frequency_penalty"), 2.0);
    ck_assert_int_eq(get_int(t, "generation", "seed"), -1);
    ck_assert(get_bool(t, "generation", "return_log_probs"));
    ck_assert_int_eq(get_int(t, "generation", "top_n_logprobs"), 5);
    ck_assert(get_bool(t, "generation", "return_segments"));
    assert_list(t, "generation", "stop", (const char *const[]){ "\n\n", NULL });
    ck_assert(!get_bool(t, "generation", "ignore_eos"));
    ck_assert(get_bool(t, "generation", "add_bos"));
    ck_assert_str_eq(get_str(t, "generation", "compat"), "megatron");
    snprintf(want, sizeof want, "%s/conf/out/result.json", tmpdir);
    ck_assert_str_eq(get_str(t, "output", "path"), want);
    ck_assert_str_eq(get_str(t, "output", "format"), "json");
    ck_assert(!get_bool(t, "output", "stream"));
    ck_assert_str_eq(get_str(t, "engine", "name"), "static");
    ck_assert_int_eq(get_int(t, "engine", "max_batch_size"), 16);
    ck_assert_str_eq(get_str(t, "controller", "name"), "simple");
    ck_assert_str_eq(get_str(t, "model", "name"), "gpt");
    snprintf(want, sizeof want, "%s/conf/../ckpt/gpt2", tmpdir);
    ck_assert_str_eq(get_str(t, "model", "load"), want);
    ck_assert_str_eq(get_str(t, "sampler", "name"), "default");
    ck_assert_str_eq(get_str(t, "tokenizer", "tokenizer_type"), "GPT2BPETokenizer");
    ck_assert_str_eq(get_str(t, "tokenizer", "vocab_file"), "/data/vocab.json");
    snprintf(want, sizeof want, "%s/conf/merges.txt", tmpdir);
    ck_assert_str_eq(get_str(t, "tokenizer", "merge_file"), want);

    /* Typed reads of the wrong type. */
    const mcrt_config *g = cfg_section(t, "generation");
    int64_t i;
    const char *s;
    bool b;
    double f;
    ck_assert_int_eq(cfg_get_int(g, "temperature", &i), MCRT_E_CONFIG);
    ck_assert_int_eq(cfg_get_string(g, "top_k", &s), MCRT_E_CONFIG);
    ck_assert_int_eq(cfg_get_bool(g, "compat", &b), MCRT_E_CONFIG);
    ck_assert_int_eq(cfg_get_float(g, "top_k", &f), MCRT_OK); /* an INT reads as a float */
    ck_assert_double_eq(f, 40.0);
    ck_assert_int_eq(cfg_get_int(g, "no_such_key", &i), MCRT_E_NOTFOUND);
    ck_assert_int_eq(cfg_get_string(g, "prompt_file", &s), MCRT_E_NOTFOUND);

    char *out = printed(t);
    snprintf(want, sizeof want, "%s:14:16", path);
    assert_line(out, "generation.temperature = 0.7", want);
    snprintf(want, sizeof want, "%s:11:5", path); /* a block list starts at its first '-' */
    assert_line(out, "generation.prompts = [Hello, \"it's: quoted\"]", want);
    snprintf(want, sizeof want, "%s:25:9", path);
    assert_line(out, "generation.stop = [\"\\n\\n\"]", want);
    snprintf(want, sizeof want, "%s:35:19", path);
    assert_line(out, "engine.max_batch_size = 16", want);
    snprintf(want, sizeof want, "%s:46:15", path);
    char left[512];
    snprintf(left, sizeof left, "tokenizer.merge_file = %s/conf/merges.txt", tmpdir);
    assert_line(out, left, want);
    assert_line(out, "generation.prompt_file = ~", "unset");
    free(out);
    cfg_tree_destroy(t);
}
END_TEST

START_TEST(defaults_without_file)
{
    cfg_tree *t = build_ok(NULL, NULL, NULL);
    ck_assert_ptr_null(cfg_file(t));
    ck_assert_int_eq(cfg_log_level(t), 3);
    ck_assert_int_eq(get_int(t, "generation", "num_tokens_to_generate"), 30);
    ck_assert_double_eq(get_float(t, "generation", "temperature"), 1.0);
    ck_assert_int_eq(get_int(t, "generation", "seed"), 1234);
    ck_assert_int_eq(get_int(t, "engine", "max_batch_size"), 8);
    ck_assert_str_eq(get_str(t, "engine", "name"), "auto");
    ck_assert_str_eq(get_str(t, "output", "format"), "text");
    double f;
    ck_assert_int_eq(cfg_get_float(cfg_section(t, "generation"), "top_p", &f), MCRT_E_NOTFOUND);
    size_t n;
    ck_assert_int_eq(cfg_list_size(cfg_section(t, "generation"), "prompts", &n), MCRT_E_NOTFOUND);

    char *out = printed(t);
    assert_line(out, "generation.num_tokens_to_generate = 30", "default");
    assert_line(out, "generation.temperature = 1.0", "default");
    assert_line(out, "generation.top_p = ~", "unset");
    assert_line(out, "engine.name = auto", "default");
    assert_line(out, "runtime.log_level = info", "default");
    /* Sections print in the fixed order. */
    const char *order[] = { "runtime.", "parallel.", "generation.", "output.", "engine.",
                            "controller.", "model.", "sampler.", "tokenizer." };
    const char *prev = out;
    for (size_t i = 0; i < 9; i++) {
        const char *p = strstr(out, order[i]);
        ck_assert_ptr_nonnull(p);
        ck_assert_msg(p >= prev, "%s out of order", order[i]);
        prev = p;
    }
    free(out);
    cfg_tree_destroy(t);
}
END_TEST

/* ---- Errors, table-driven --------------------------------------------------- */

typedef struct err_case {
    const char *name;
    const char *yaml;      /* NULL: no file written */
    const char *args[10];  /* "@": the YAML path */
    const char *env[4];
    int exit_code;
    bool at_file;          /* the message starts with the YAML path */
    const char *parts[4];  /* substrings of the message */
} err_case;

static const err_case err_cases[] = {
    /* YAML syntax and structure */
    { "tab indentation", "generation:\n\ttop_k: 5\n", { "@" }, { NULL }, 78, true,
      { ":2:1: YAML syntax error: ", "tabs for indentation" } },
    { "syntax error", "generation:\n  top_k: 5\n  stop: [a\n", { "@" }, { NULL }, 78, true,
      { ": YAML syntax error: did not find expected ',' or ']'" } },
    { "duplicate key", "generation:\n  top_k: 5\n  top_k: 6\n", { "@" }, { NULL }, 78, true,
      { ":3:3: duplicate key 'generation.top_k' (first set at 2:3)" } },
    { "duplicate section", "engine: {}\nmodel: {}\nengine: {}\n", { "@" }, { NULL }, 78, true,
      { ":3:1: duplicate key 'engine' (first set at 1:1)" } },
    { "empty file", "", { "@" }, { NULL }, 78, true, { ": empty configuration file" } },
    { "only comments", "# nothing\n\n   # here\n", { "@" }, { NULL }, 78, true,
      { ": empty configuration file" } },
    { "alias", "generation:\n  stop: &s [a]\nsampler:\n  x: *s\n", { "@" }, { NULL }, 78, true,
      { ":2:9: ", "anchors and aliases are not supported" } },
    { "two documents", "generation: {}\n---\nengine: {}\n", { "@" }, { NULL }, 78, true,
      { ":2:1: more than one YAML document" } },
    { "too deep", "model:\n a:\n  b:\n   c:\n    d:\n     e:\n      f:\n       g: {h: 1}\n",
      { "@" }, { NULL }, 78, true, { "nested deeper than 8 levels" } },
    { "top level is a list", "- a\n- b\n", { "@" }, { NULL }, 78, true,
      { ":1:1: expected a mapping of sections at the top level", "got a list" } },
    { "section is a scalar", "engine: static\n", { "@" }, { NULL }, 78, true,
      { ":1:9: section 'engine' must be a mapping of keys, got a scalar",
        "engine: {name: static}" } },
    { "not UTF-8", "generation:\n  stop: [\"a\xff\"]\n", { "@" }, { NULL }, 78, true,
      { "YAML syntax error: invalid", "UTF-8" } },
    { "custom tag", "generation:\n  top_k: !weird 5\n", { "@" }, { NULL }, 78, true,
      { ":2:10: YAML tag '!weird' is not supported" } },
    { "list of maps", "generation:\n  stop:\n    - {a: 1}\n", { "@" }, { NULL }, 78, true,
      { ":3:7: generation.stop: list items must be scalars, got a mapping" } },
    /* Files */
    { "missing file", NULL, { "/nonexistent/mcrt/x.yaml" }, { NULL }, 66, false,
      { "/nonexistent/mcrt/x.yaml: cannot open: No such file or directory" } },
    { "directory", NULL, { "/tmp" }, { NULL }, 66, false,
      { "/tmp: is a directory, expected a YAML file" } },
    /* Keys and values */
    { "unknown key, near", "generation:\n  top_kk: 5\n", { "@" }, { NULL }, 78, true,
      { ":2:3: generation.top_kk: unknown key; did you mean 'top_k'?" } },
    { "unknown key, swapped", "engine:\n  max_batch_szie: 5\n", { "@" }, { NULL }, 78, true,
      { "engine.max_batch_szie: unknown key; did you mean 'max_batch_size'?" } },
    { "unknown key, hyphen", "generation:\n  num-tokens-to-generate: 5\n", { "@" }, { NULL },
      78, true, { "did you mean 'num_tokens_to_generate'?" } },
    { "unknown key, far", "output:\n  colour: red\n", { "@" }, { NULL }, 78, true,
      { ":2:3: output.colour: unknown key; valid keys: path, format, stream" } },
    { "unknown section", "genration:\n  top_k: 5\n", { "@" }, { NULL }, 78, true,
      { ":1:1: unknown section 'genration'; did you mean 'generation'?" } },
    { "unknown section, far", "xyzzy: {}\n", { "@" }, { NULL }, 78, true,
      { "unknown section 'xyzzy'; valid sections: runtime, parallel, generation" } },
    { "quoted int", "generation:\n  top_k: \"5\"\n", { "@" }, { NULL }, 78, true,
      { ":2:10: generation.top_k: expected an integer >= 0, got the quoted string \"5\"",
        "remove the quotes" } },
    { "quoted bool", "output:\n  stream: 'true'\n", { "@" }, { NULL }, 78, true,
      { "output.stream: expected a boolean", "quoted string \"true\"" } },
    { "not an int", "generation:\n  num_tokens_to_generate: 1.5\n", { "@" }, { NULL }, 78, true,
      { ":2:27: generation.num_tokens_to_generate: expected an integer >= 0, got '1.5'" } },
    { "int overflow", "generation:\n  seed: 9223372036854775808\n", { "@" }, { NULL }, 78, true,
      { "generation.seed: expected an integer >= -1", "out of the 64-bit range" } },
    { "int range", "parallel:\n  tensor_model_parallel_size: 0\n", { "@" }, { NULL }, 78, true,
      { "parallel.tensor_model_parallel_size: expected an integer in [1, 4096], got 0" } },
    { "float range", "generation:\n  top_p: 1.5\n", { "@" }, { NULL }, 78, true,
      { ":2:10: generation.top_p: expected a number in [0, 1], got 1.5" } },
    { "float not finite", "generation:\n  temperature: .inf\n", { "@" }, { NULL }, 78, true,
      { "generation.temperature: expected a number in [0, 100], got '.inf'" } },
    { "float garbage", "generation:\n  min_p: 0.1x\n", { "@" }, { NULL }, 78, true,
      { "generation.min_p: expected a number in [0, 1], got '0.1x'" } },
    { "repetition penalty 0", "generation:\n  repetition_penalty: 0\n", { "@" }, { NULL }, 78,
      true, { "generation.repetition_penalty: expected a number > 0, got 0" } },
    { "bool garbage", "generation:\n  ignore_eos: maybe\n", { "@" }, { NULL }, 78, true,
      { "generation.ignore_eos: expected a boolean (true/false, yes/no, on/off, 1/0), got "
        "'maybe'" } },
    { "enum", "runtime:\n  log_level: verbose\n", { "@" }, { NULL }, 78, true,
      { ":2:14: runtime.log_level: expected one of error, warn, info, debug, trace, got "
        "'verbose'" } },
    { "enum near", "generation:\n  compat: megatorn\n", { "@" }, { NULL }, 78, true,
      { "did you mean 'megatron'?" } },
    { "list for scalar", "generation:\n  top_k: [1, 2]\n", { "@" }, { NULL }, 78, true,
      { ":2:10: generation.top_k: expected an integer >= 0, got a list" } },
    { "map for scalar", "generation:\n  temperature: {a: 1}\n", { "@" }, { NULL }, 78, true,
      { "generation.temperature: expected a number in [0, 100], got a mapping" } },
    { "map for list", "generation:\n  prompts: {a: b}\n", { "@" }, { NULL }, 78, true,
      { "generation.prompts: expected a string or a list of strings, got a mapping" } },
    { "null list item", "generation:\n  stop: [a, ~]\n", { "@" }, { NULL }, 78, true,
      { ":2:13: generation.stop: list item 2 is empty" } },
    { "empty path", "model:\n  load: \"\"\n", { "@" }, { NULL }, 78, true,
      { "model.load: expected a path, got an empty string" } },
    { "prompts and prompt_file in YAML", "generation:\n  prompts: [a]\n  prompt_file: p.txt\n",
      { "@" }, { NULL }, 78, true,
      { ":2:3: generation.prompts and generation.prompt_file (at 3:3) are both set" } },
    /* Flags */
    { "unknown flag, near", NULL, { "--top-kk", "5" }, { NULL }, 64, false,
      { "unknown flag '--top-kk'; did you mean '--top-k'?" } },
    { "unknown flag, underscore", NULL, { "--temprature=1" }, { NULL }, 64, false,
      { "unknown flag '--temprature'; did you mean '--temperature'?" } },
    { "unknown flag, far", NULL, { "--frobnicate" }, { NULL }, 64, false,
      { "unknown flag '--frobnicate'", "mcrt run --help" } },
    { "unknown short flag", NULL, { "-x" }, { NULL }, 64, false, { "unknown flag '-x'" } },
    { "no- on a value flag", NULL, { "--no-top-k" }, { NULL }, 64, false,
      { "unknown flag '--no-top-k'" } },
    { "value missing at end", NULL, { "--top-k" }, { NULL }, 64, false,
      { "--top-k: missing value (expected an integer >= 0)" } },
    { "value missing before flag", NULL, { "--temperature", "--top-k", "3" }, { NULL }, 64, false,
      { "--temperature: missing value" } },
    { "value missing before short flag", NULL, { "-n", "-v" }, { NULL }, 64, false,
      { "-n: missing value" } },
    { "prompts without any", NULL, { "--prompts", "--top-k", "3" }, { NULL }, 64, false,
      { "--prompts: missing value" } },
    { "bad int flag", NULL, { "--top-k", "abc" }, { NULL }, 64, false,
      { "--top-k: expected an integer >= 0, got 'abc'", "generation.top_k" } },
    { "range on flag", NULL, { "-tp", "5000" }, { NULL }, 64, false,
      { "-tp: expected an integer in [1, 4096], got 5000" } },
    { "enum on flag", NULL, { "--output-format=xml" }, { NULL }, 64, false,
      { "--output-format: expected one of text, json, jsonl, got 'xml'" } },
    { "bool flag value", NULL, { "--stream=perhaps" }, { NULL }, 64, false,
      { "--stream: expected a boolean" } },
    { "negated bool with value", NULL, { "--no-stream=true" }, { NULL }, 64, false,
      { "--no-stream: takes no value" } },
    { "-v with -q", NULL, { "-v", "-q" }, { NULL }, 64, false,
      { "-v and -q cannot be used together" } },
    { "--log-level with -vv", NULL, { "--log-level", "warn", "-vv" }, { NULL }, 64, false,
      { "--log-level and -vv cannot be used together" } },
    { "--prompts with --prompt-file", NULL, { "--prompts", "a", "--prompt-file", "f" }, { NULL },
      64, false, { "--prompts and --prompt-file cannot be used together" } },
    { "-p with -f", NULL, { "-f", "x.txt", "-p", "a" }, { NULL }, 64, false,
      { "-p and -f cannot be used together" } },
    { "second positional", NULL, { "a.yaml", "b.yaml" }, { NULL }, 64, false,
      { "unexpected argument 'b.yaml'" } },
    { "flag error before file error", NULL, { "/nonexistent.yaml", "--bogus" }, { NULL }, 64,
      false, { "unknown flag '--bogus'" } },
    /* Environment */
    { "bad env int", NULL, { NULL }, { "MCRT_TOP_K=abc", NULL }, 78, false,
      { "MCRT_TOP_K: expected an integer >= 0, got 'abc' (generation.top_k)" } },
    { "bad env enum", NULL, { NULL }, { "MCRT_LOG_LEVEL=loud", NULL }, 78, false,
      { "MCRT_LOG_LEVEL: expected one of error, warn" } },
    { "bad env bool", NULL, { NULL }, { "MCRT_RETURN_LOG_PROBS=si", NULL }, 78, false,
      { "MCRT_RETURN_LOG_PROBS: expected a boolean" } },
    { "env prompts and prompt file", NULL, { NULL },
      { "MCRT_PROMPTS=a", "MCRT_PROMPT_FILE=f", NULL }, 78, false,
      { "MCRT_PROMPTS and MCRT_PROMPT_FILE are both set" } },
};

START_TEST(error_table)
{
    const err_case *c = &err_cases[_i];
    char path[256] = "";
    if (c->yaml)
        write_file("case.yaml", c->yaml, path, sizeof path);
    int rc;
    cfg_diag d;
    cfg_tree *t = build(path, c->args, c->env, &rc, &d);
    if (rc == 0)
        rc = validate_all(t, &d);
    ck_assert_msg(rc == -1, "[%s] expected an error", c->name);
    ck_assert_msg(d.exit_code == c->exit_code, "[%s] exit %d, expected %d: %s", c->name,
                  d.exit_code, c->exit_code, d.msg);
    if (c->at_file)
        ck_assert_msg(strncmp(d.msg, path, strlen(path)) == 0, "[%s] '%s' does not start with %s",
                      c->name, d.msg, path);
    for (size_t i = 0; i < 4 && c->parts[i]; i++)
        ck_assert_msg(strstr(d.msg, c->parts[i]), "[%s] '%s' lacks '%s'", c->name, d.msg,
                      c->parts[i]);
    ck_assert_msg(d.msg[0] && d.msg[strlen(d.msg) - 1] != '\n', "[%s] trailing newline",
                  c->name);
    cfg_tree_destroy(t);
}
END_TEST

START_TEST(file_too_large)
{
    char path[256];
    snprintf(path, sizeof path, "%s/big.yaml", tmpdir);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    static char line[4096];
    memset(line, '#', sizeof line - 1);
    line[sizeof line - 1] = '\n';
    for (size_t i = 0; i <= (16u << 20) / sizeof line; i++)
        ck_assert_uint_eq(fwrite(line, 1, sizeof line, f), sizeof line);
    fclose(f);
    int rc;
    cfg_diag d;
    cfg_tree *t = build(path, (const char *const[]){ "@", NULL }, NULL, &rc, &d);
    ck_assert_int_eq(rc, -1);
    ck_assert_int_eq(d.exit_code, 78);
    ck_assert_ptr_nonnull(strstr(d.msg, "too large"));
    cfg_tree_destroy(t);
}
END_TEST

START_TEST(unreadable_file)
{
    if (geteuid() == 0)
        return; /* root reads anything */
    char path[256];
    write_file("secret.yaml", "engine: {}\n", path, sizeof path);
    chmod(path, 0);
    int rc;
    cfg_diag d;
    cfg_tree *t = build(path, (const char *const[]){ "@", NULL }, NULL, &rc, &d);
    ck_assert_int_eq(rc, -1);
    ck_assert_int_eq(d.exit_code, 66);
    ck_assert_ptr_nonnull(strstr(d.msg, "cannot open: Permission denied"));
    cfg_tree_destroy(t);
}
END_TEST

/* ---- Precedence: CLI > env > YAML > default ---------------------------------- */

START_TEST(precedence)
{
    char path[256], src[300];
    write_file("p.yaml",
               "generation:\n  top_k: 10\n  temperature: 0.5\n  stop: [a, b]\n"
               "engine:\n  max_batch_size: 4\n",
               path, sizeof path);
    snprintf(src, sizeof src, "%s:2:10", path);
    const char *env[] = { "MCRT_TOP_K=20", "MCRT_TEMPERATURE=0.25", "MCRT_STOP=envstop",
                          "MCRT_MAX_BATCH_SIZE=", /* empty: ignored */
                          NULL };

    /* YAML only */
    cfg_tree *t = build_ok(path, (const char *const[]){ "@", NULL }, NULL);
    ck_assert_int_eq(get_int(t, "generation", "top_k"), 10);
    char *out = printed(t);
    assert_line(out, "generation.top_k = 10", src);
    free(out);
    cfg_tree_destroy(t);

    /* env beats YAML */
    t = build_ok(path, (const char *const[]){ "@", NULL }, env);
    ck_assert_int_eq(get_int(t, "generation", "top_k"), 20);
    ck_assert_double_eq(get_float(t, "generation", "temperature"), 0.25);
    assert_list(t, "generation", "stop", (const char *const[]){ "envstop", NULL });
    ck_assert_int_eq(get_int(t, "engine", "max_batch_size"), 4);
    out = printed(t);
    assert_line(out, "generation.top_k = 20", "env MCRT_TOP_K");
    assert_line(out, "generation.temperature = 0.25", "env MCRT_TEMPERATURE");
    assert_line(out, "generation.stop = [envstop]", "env MCRT_STOP");
    free(out);
    cfg_tree_destroy(t);

    /* CLI beats env; repeated --stop appends; the last scalar flag wins */
    t = build_ok(path,
                 (const char *const[]){ "@", "--top-k", "30", "--stop", "x", "--stop-words", "y",
                                        "--temp", "0.1", "--temperature=0.7", NULL },
                 env);
    ck_assert_int_eq(get_int(t, "generation", "top_k"), 30);
    ck_assert_double_eq(get_float(t, "generation", "temperature"), 0.7);
    assert_list(t, "generation", "stop", (const char *const[]){ "x", "y", NULL });
    out = printed(t);
    assert_line(out, "generation.top_k = 30", "cli --top-k");
    assert_line(out, "generation.temperature = 0.7", "cli --temperature");
    assert_line(out, "generation.stop = [x, y]", "cli --stop");
    free(out);
    cfg_tree_destroy(t);

    /* No YAML: env, else default */
    t = build_ok(NULL, NULL, (const char *const[]){ "MCRT_NUM_TOKENS_TO_GENERATE=5", NULL });
    ck_assert_int_eq(get_int(t, "generation", "num_tokens_to_generate"), 5);
    ck_assert_int_eq(get_int(t, "generation", "top_k"), 0);
    out = printed(t);
    assert_line(out, "generation.top_k = 0", "default");
    assert_line(out, "generation.num_tokens_to_generate = 5", "env MCRT_NUM_TOKENS_TO_GENERATE");
    free(out);
    cfg_tree_destroy(t);
}
END_TEST

START_TEST(env_mirrors)
{
    const char *env[] = { "MCRT_RETURN_LOG_PROBS=true", "MCRT_MAX_BATCH_SIZE=12",
                          "MCRT_LOAD=ckpt/dir", "MCRT_PLUGIN_DIR=/p/one",
                          "MCRT_PLUGIN_PATH=/not/mine", "MCRT_TENSOR_MODEL_PARALLEL_SIZE=2",
                          "MCRT_ENGINE=dynamic", "MCRT_SEED=-1", "MCRT_TOKENIZER_TYPE=GPT2BPETokenizer",
                          "MCRT_PROMPTS=one prompt, not split", "MCRT_LOG_LEVEL=warn",
                          NULL };
    cfg_tree *t = build_ok(NULL, NULL, env);
    ck_assert(get_bool(t, "generation", "return_log_probs"));
    ck_assert_int_eq(get_int(t, "engine", "max_batch_size"), 12);
    ck_assert_str_eq(get_str(t, "model", "load"), "ckpt/dir"); /* env paths: as given */
    assert_list(t, "runtime", "plugin_dirs", (const char *const[]){ "/p/one", NULL });
    ck_assert_int_eq(get_int(t, "parallel", "tensor_model_parallel_size"), 2);
    ck_assert_str_eq(get_str(t, "engine", "name"), "dynamic");
    ck_assert_int_eq(get_int(t, "generation", "seed"), -1);
    ck_assert_str_eq(get_str(t, "tokenizer", "tokenizer_type"), "GPT2BPETokenizer");
    assert_list(t, "generation", "prompts", (const char *const[]){ "one prompt, not split", NULL });
    ck_assert_int_eq(cfg_log_level(t), 2);
    cfg_tree_destroy(t);
}
END_TEST

/* ---- Flags ------------------------------------------------------------------- */

START_TEST(underscore_and_hyphen_flags)
{
    const char *spellings[][2] = {
        { "--top_k", "--top-k" },
        { "--num_tokens_to_generate", "--num-tokens-to-generate" },
        { "--tensor_model_parallel_size", "-tp" },
        { "--max_batch_size", "--max-batch-size" },
    };
    const char *keys[][2] = { { "generation", "top_k" },
                              { "generation", "num_tokens_to_generate" },
                              { "parallel", "tensor_model_parallel_size" },
                              { "engine", "max_batch_size" } };
    for (size_t i = 0; i < 4; i++) {
        for (size_t j = 0; j < 2; j++) {
            cfg_tree *t = build_ok(NULL, (const char *const[]){ spellings[i][j], "7", NULL }, NULL);
            ck_assert_int_eq(get_int(t, keys[i][0], keys[i][1]), 7);
            char src[64];
            ck_assert(cfg_get_source(cfg_section(t, keys[i][0]), keys[i][1], src, sizeof src));
            char want[64];
            snprintf(want, sizeof want, "cli %s", spellings[i][j]);
            ck_assert_str_eq(src, want);
            cfg_tree_destroy(t);
        }
    }
}
END_TEST

START_TEST(prompts_then_flag)
{
    cfg_tree *t = build_ok(NULL,
                           (const char *const[]){ "--prompts", "a", "b c", "-weird", "--top-k", "3",
                                                  NULL },
                           NULL);
    assert_list(t, "generation", "prompts", (const char *const[]){ "a", "b c", "-weird", NULL });
    ck_assert_int_eq(get_int(t, "generation", "top_k"), 3);
    cfg_tree_destroy(t);

    /* Stops at a known short flag too; -p appends after --prompts. */
    t = build_ok(NULL,
                 (const char *const[]){ "--prompts=x", "y", "-n", "4", "-p", "z", NULL }, NULL);
    assert_list(t, "generation", "prompts", (const char *const[]){ "x", "y", "z", NULL });
    ck_assert_int_eq(get_int(t, "generation", "num_tokens_to_generate"), 4);
    char *out = printed(t);
    assert_line(out, "generation.prompts = [x, y, z]", "cli --prompts");
    free(out);
    cfg_tree_destroy(t);
}
END_TEST

START_TEST(equals_values_and_bools)
{
    cfg_tree *t = build_ok(NULL,
                           (const char *const[]){ "--seed=-1", "--min-p=0.05", "--stream",
                                                  "--return-log-probs=false", "--ignore_eos",
                                                  "--no-ignore-eos", "--compat=megatron",
                                                  "--output-path=o.txt", "--top-p", "0", NULL },
                           NULL);
    ck_assert_int_eq(get_int(t, "generation", "seed"), -1);
    ck_assert_double_eq(get_float(t, "generation", "min_p"), 0.05);
    ck_assert(get_bool(t, "output", "stream"));
    ck_assert(!get_bool(t, "generation", "return_log_probs"));
    ck_assert(!get_bool(t, "generation", "ignore_eos"));
    ck_assert_str_eq(get_str(t, "generation", "compat"), "megatron");
    ck_assert_str_eq(get_str(t, "output", "path"), "o.txt"); /* CLI paths: as given */
    ck_assert_double_eq(get_float(t, "generation", "top_p"), 0.0);
    char *out = printed(t);
    assert_line(out, "output.stream = true", "cli --stream");
    assert_line(out, "generation.ignore_eos = false", "cli --no-ignore-eos");
    assert_line(out, "output.path = o.txt", "cli --output-path");
    free(out);
    cfg_tree_destroy(t);

    /* Negative numbers are values, not flags. */
    t = build_ok(NULL, (const char *const[]){ "-s", "-1", "-n", "3", NULL }, NULL);
    ck_assert_int_eq(get_int(t, "generation", "seed"), -1);
    ck_assert_int_eq(get_int(t, "generation", "num_tokens_to_generate"), 3);
    cfg_tree_destroy(t);
}
END_TEST

START_TEST(double_dash_ends_flags)
{
    char path[256];
    write_file("-odd.yaml", "engine: {max_batch_size: 3}\n", path, sizeof path);
    char cwd[1024];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    ck_assert_int_eq(chdir(tmpdir), 0);
    int rc;
    cfg_diag d;
    cfg_tree *t = build(NULL, (const char *const[]){ "-n", "2", "--", "-odd.yaml", NULL }, NULL,
                        &rc, &d);
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_msg(rc == 0, "%s", d.msg);
    ck_assert_str_eq(cfg_file(t), "-odd.yaml");
    ck_assert_int_eq(validate_all(t, &d), 0);
    ck_assert_int_eq(get_int(t, "engine", "max_batch_size"), 3);
    ck_assert_int_eq(get_int(t, "generation", "num_tokens_to_generate"), 2);
    cfg_tree_destroy(t);
}
END_TEST

START_TEST(unknown_presence_penalty_flag)
{
    /* --presence-penalty is a YAML key only: no flag. */
    int rc;
    cfg_diag d;
    cfg_tree *t = build(NULL, (const char *const[]){ "--presence-penalty", "1", NULL }, NULL, &rc,
                        &d);
    ck_assert_int_eq(rc, -1);
    ck_assert_int_eq(d.exit_code, 64);
    cfg_tree_destroy(t);
}
END_TEST

START_TEST(log_levels)
{
    static const struct {
        const char *args[4];
        const char *env;
        int level;
        const char *source;
    } cases[] = {
        { { NULL }, NULL, 3, "default" },
        { { "-v" }, NULL, 4, "cli -v" },
        { { "-vv" }, NULL, 5, "cli -vv" },
        { { "-v", "-v" }, NULL, 5, "cli -v -v" },
        { { "-q" }, NULL, 1, "cli -q" },
        { { "--log-level", "warn" }, NULL, 2, "cli --log-level" },
        { { "--log_level=trace" }, NULL, 5, "cli --log_level" },
        { { NULL }, "MCRT_LOG_LEVEL=error", 1, "env MCRT_LOG_LEVEL" },
        { { "-v" }, "MCRT_LOG_LEVEL=error", 4, "cli -v" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *env[] = { cases[i].env, NULL };
        cfg_tree *t = build_ok(NULL, cases[i].args, env);
        ck_assert_msg(cfg_log_level(t) == cases[i].level, "case %zu: level %d", i,
                      cfg_log_level(t));
        char src[64];
        cfg_get_source(cfg_section(t, "runtime"), "log_level", src, sizeof src);
        ck_assert_str_eq(src, cases[i].source);
        cfg_tree_destroy(t);
    }
    /* Before validation, from YAML. */
    char path[256];
    write_file("l.yaml", "runtime: {log_level: debug}\n", path, sizeof path);
    int rc;
    cfg_diag d;
    cfg_tree *t = build(path, (const char *const[]){ "@", NULL }, NULL, &rc, &d);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(cfg_log_level(t), 4);
    cfg_tree_destroy(t);
    ck_assert_int_eq(cfg_log_level(NULL), 3);
}
END_TEST

START_TEST(prompt_sources)
{
    char path[256], want[300];
    write_file("pr.yaml", "generation:\n  prompts: [from yaml]\n", path, sizeof path);
    /* CLI prompt file beats YAML prompts, which are dropped. */
    cfg_tree *t = build_ok(path, (const char *const[]){ "@", "-f", "list.txt", NULL }, NULL);
    ck_assert_str_eq(get_str(t, "generation", "prompt_file"), "list.txt");
    size_t n;
    ck_assert_int_eq(cfg_list_size(cfg_section(t, "generation"), "prompts", &n), MCRT_E_NOTFOUND);
    cfg_tree_destroy(t);

    /* YAML prompt file vs env prompts: env wins. */
    write_file("pf.yaml", "generation:\n  prompt_file: p.txt\n", path, sizeof path);
    t = build_ok(path, (const char *const[]){ "@", NULL },
                 (const char *const[]){ "MCRT_PROMPTS=hi", NULL });
    assert_list(t, "generation", "prompts", (const char *const[]){ "hi", NULL });
    const char *s;
    ck_assert_int_eq(cfg_get_string(cfg_section(t, "generation"), "prompt_file", &s),
                     MCRT_E_NOTFOUND);
    cfg_tree_destroy(t);

    /* And without overrides the YAML prompt file stands, resolved next to the file. */
    t = build_ok(path, (const char *const[]){ "@", NULL }, NULL);
    snprintf(want, sizeof want, "%s/p.txt", tmpdir);
    ck_assert_str_eq(get_str(t, "generation", "prompt_file"), want);
    cfg_tree_destroy(t);
}
END_TEST

/* ---- Paths, nulls, quoting ---------------------------------------------------- */

START_TEST(path_resolution)
{
    char path[256], want[512];
    write_file("deep/er/x.yaml",
               "model: {load: ../ckpt}\n"
               "tokenizer: {vocab_file: /abs/vocab.json, merge_file: ~/m.txt}\n"
               "output: {path: out.jsonl}\n"
               "runtime: {plugin_dirs: plug}\n",
               path, sizeof path);
    cfg_tree *t = build_ok(path, (const char *const[]){ "@", NULL },
                           (const char *const[]){ "HOME=/home/u", NULL });
    snprintf(want, sizeof want, "%s/deep/er/../ckpt", tmpdir);
    ck_assert_str_eq(get_str(t, "model", "load"), want);
    ck_assert_str_eq(get_str(t, "tokenizer", "vocab_file"), "/abs/vocab.json");
    ck_assert_str_eq(get_str(t, "tokenizer", "merge_file"), "/home/u/m.txt");
    snprintf(want, sizeof want, "%s/deep/er/out.jsonl", tmpdir);
    ck_assert_str_eq(get_str(t, "output", "path"), want);
    snprintf(want, sizeof want, "%s/deep/er/plug", tmpdir); /* a single scalar: a list of one */
    assert_list(t, "runtime", "plugin_dirs", (const char *const[]){ want, NULL });
    cfg_tree_destroy(t);

    /* CLI paths override and stay relative to the current directory. */
    t = build_ok(path, (const char *const[]){ "@", "-m", "here/ckpt", "--plugin-dir", "p1",
                                              "--plugin-dir=p2", NULL },
                 NULL);
    ck_assert_str_eq(get_str(t, "model", "load"), "here/ckpt");
    assert_list(t, "runtime", "plugin_dirs", (const char *const[]){ "p1", "p2", NULL });
    cfg_tree_destroy(t);

    /* A YAML file in the current directory: paths stay as written. */
    char cwd[1024];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    ck_assert_int_eq(chdir(tmpdir), 0);
    write_file("here.yaml", "model: {load: ckpt}\n", path, sizeof path);
    int rc;
    cfg_diag d;
    t = build(NULL, (const char *const[]){ "here.yaml", NULL }, NULL, &rc, &d);
    ck_assert_int_eq(chdir(cwd), 0);
    ck_assert_msg(rc == 0, "%s", d.msg);
    ck_assert_int_eq(validate_all(t, &d), 0);
    ck_assert_str_eq(get_str(t, "model", "load"), "ckpt");
    char *out = printed(t);
    assert_line(out, "model.load = ckpt", "here.yaml:1:15");
    free(out);
    cfg_tree_destroy(t);
}
END_TEST

START_TEST(nulls_and_quotes)
{
    char path[256];
    write_file("n.yaml",
               "generation:\n"
               "  top_k: ~\n"
               "  seed:\n"
               "  temperature: null\n"
               "  top_p: NULL\n"
               "  stop: \"~\"\n"
               "engine:\n"
               "  name: \"5\"\n"
               "tokenizer:\n"
               "  tokenizer_type: 'null'\n"
               "sampler:\n",
               path, sizeof path);
    cfg_tree *t = build_ok(path, (const char *const[]){ "@", NULL }, NULL);
    ck_assert_int_eq(get_int(t, "generation", "top_k"), 0);
    ck_assert_int_eq(get_int(t, "generation", "seed"), 1234);
    ck_assert_double_eq(get_float(t, "generation", "temperature"), 1.0);
    double f;
    ck_assert_int_eq(cfg_get_float(cfg_section(t, "generation"), "top_p", &f), MCRT_E_NOTFOUND);
    assert_list(t, "generation", "stop", (const char *const[]){ "~", NULL });
    ck_assert_str_eq(get_str(t, "engine", "name"), "5");
    ck_assert_str_eq(get_str(t, "tokenizer", "tokenizer_type"), "null");
    ck_assert_str_eq(get_str(t, "sampler", "name"), "auto");
    char *out = printed(t);
    assert_line(out, "generation.top_k = 0", "default");
    assert_line(out, "generation.top_p = ~", "unset");
    assert_line(out, "generation.stop = [\"~\"]", NULL);
    free(out);
    cfg_tree_destroy(t);
}
END_TEST

/* ---- Plugin sections ----------------------------------------------------------- */

static const mcrt_config_key plugin_keys[] = {
    MCRT_CONFIG_KEY_RANGE(MCRT_CFG_INT, "kv_block_size", "16", 1, 1024, "tokens per KV block"),
    MCRT_CONFIG_KEY_ENUM("device", "auto", "auto|cpu|cuda", "where to run"),
    MCRT_CONFIG_KEY(MCRT_CFG_PATH, "weights", NULL, "weights file"),
    { (uint32_t)sizeof(mcrt_config_key), MCRT_CFG_STRING, MCRT_CFG_REQUIRED, 0u, "mode", NULL,
      NULL, 0.0, 0.0, "what mode" },
    MCRT_CONFIG_KEY(MCRT_CFG_STRING_LIST, "layers", "[1, \"2\"]", "a list default"),
    MCRT_CONFIG_KEY(MCRT_CFG_STRING, "name", "shadowed", "a redeclared core key"),
    MCRT_CONFIG_KEY_END,
};

START_TEST(plugin_section)
{
    char path[256], want[512];
    write_file("m.yaml",
               "model:\n  name: gpt\n  kv_block_size: 32\n  weights: w.bin\n  mode: fast\n"
               "  extra: {a: 1}\n",
               path, sizeof path);
    int rc;
    cfg_diag d;
    cfg_tree *t = build(path, (const char *const[]){ "@", NULL }, NULL, &rc, &d);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(cfg_validate_core(t, &d), 0);

    /* Not validated yet: raw reads, core defaults, raw printing. */
    mcrt_config *m = cfg_section(t, "model");
    ck_assert(!cfg_section_validated(m));
    ck_assert_str_eq(cfg_section_name(m), "model");
    int64_t i;
    ck_assert_int_eq(cfg_get_int(m, "kv_block_size", &i), MCRT_OK);
    ck_assert_int_eq(i, 32);
    const char *s;
    ck_assert_int_eq(cfg_get_string(m, "weights", &s), MCRT_OK);
    ck_assert_str_eq(s, "w.bin");
    ck_assert_int_eq(cfg_get_string(cfg_section(t, "engine"), "name", &s), MCRT_OK);
    ck_assert_str_eq(s, "auto"); /* core default before validation */
    ck_assert_int_eq(cfg_get_int(m, "mode", &i), MCRT_E_CONFIG);
    ck_assert_int_eq(cfg_get_int(m, "extra", &i), MCRT_E_CONFIG);
    char *out = printed(t);
    snprintf(want, sizeof want, "%s:3:18", path);
    assert_line(out, "model.kv_block_size = 32", want);
    snprintf(want, sizeof want, "%s:6:14", path);
    assert_line(out, "model.extra.a = 1", want);
    free(out);

    /* The nested mapping is an unknown key once the plugin's keys are known. */
    const mcrt_config_key *sets[2] = { cfg_core_keys("model"), plugin_keys };
    ck_assert_int_eq(cfg_validate_section(t, "model", sets, 2, &d), -1);
    ck_assert_int_eq(d.exit_code, 78);
    ck_assert_ptr_nonnull(strstr(d.msg, ":6:3: model.extra: unknown key; valid keys: name, load, "
                                        "use_checkpoint_args, ckpt_step, "
                                        "kv_block_size, device, weights, mode, layers"));
    cfg_tree_destroy(t);

    /* Without the extra key it validates; defaults come from both sets; the core's name wins. */
    write_file("m.yaml", "model:\n  kv_block_size: 32\n  weights: w.bin\n  mode: fast\n", path,
               sizeof path);
    t = build(path, (const char *const[]){ "@", NULL }, NULL, &rc, &d);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(cfg_validate_section(t, "model", sets, 2, &d), 0);
    m = cfg_section(t, "model");
    ck_assert(cfg_section_validated(m));
    ck_assert_int_eq(get_int(t, "model", "kv_block_size"), 32);
    ck_assert_str_eq(get_str(t, "model", "device"), "auto");
    ck_assert_str_eq(get_str(t, "model", "name"), "auto");
    snprintf(want, sizeof want, "%s/w.bin", tmpdir);
    ck_assert_str_eq(get_str(t, "model", "weights"), want);
    assert_list(t, "model", "layers", (const char *const[]){ "1", "2", NULL });
    out = printed(t);
    assert_line(out, "model.layers = [\"1\", \"2\"]", "default");
    assert_line(out, "model.mode = fast", NULL);
    free(out);

    /* Validating again with other keys: the same answers, no double path resolution. */
    ck_assert_int_eq(cfg_validate_section(t, "model", sets, 2, &d), 0);
    ck_assert_str_eq(get_str(t, "model", "weights"), want);
    cfg_tree_destroy(t);
}
END_TEST

START_TEST(plugin_errors)
{
    char path[256];
    const mcrt_config_key *sets[2] = { cfg_core_keys("model"), plugin_keys };
    static const struct {
        const char *yaml;
        int code;
        const char *part;
    } cases[] = {
        { "model: {kv_block_size: 16}\n", 78, ": model.mode: required key is missing (what mode)" },
        { "model: {mode: a, kv_blocksize: 16}\n", 78,
          "model.kv_blocksize: unknown key; did you mean 'kv_block_size'?" },
        { "model: {mode: a, kv_block_size: 2048}\n", 78,
          "model.kv_block_size: expected an integer in [1, 1024], got 2048" },
        { "model: {mode: a, device: gpu}\n", 78,
          "model.device: expected one of auto, cpu, cuda, got 'gpu'" },
        { "model: {mode: a, weights: [a, b]}\n", 78, "model.weights: expected a path, got a list" },
        { "model: {mode: a, mode_: b}\n", 78, "did you mean 'mode'?" },
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        write_file("e.yaml", cases[c].yaml, path, sizeof path);
        int rc;
        cfg_diag d;
        cfg_tree *t = build(path, (const char *const[]){ "@", NULL }, NULL, &rc, &d);
        ck_assert_int_eq(rc, 0);
        ck_assert_int_eq(cfg_validate_section(t, "model", sets, 2, &d), -1);
        ck_assert_msg(d.exit_code == cases[c].code, "case %zu: exit %d", c, d.exit_code);
        ck_assert_msg(strstr(d.msg, cases[c].part), "case %zu: '%s' lacks '%s'", c, d.msg,
                      cases[c].part);
        cfg_tree_destroy(t);
    }
}
END_TEST

typedef struct future_key { /* a later, larger mcrt_config_key */
    mcrt_config_key k;
    double extra;
} future_key;

START_TEST(key_set_layouts)
{
    cfg_tree *t = build_ok(NULL, (const char *const[]){ "--max-batch-size", "2", NULL }, NULL);
    cfg_diag d;
    /* A larger stride (a plugin built against a newer header) works. */
    static future_key future[] = {
        { { (uint32_t)sizeof(future_key), MCRT_CFG_INT, 0, 0, "depth", "3", NULL, 0, 0, "d" }, 1 },
        { { (uint32_t)sizeof(future_key), MCRT_CFG_BOOL, 0, 0, "fast", "yes", NULL, 0, 0, "f" }, 2 },
        { { (uint32_t)sizeof(future_key), 0, 0, 0, NULL, NULL, NULL, 0, 0, NULL }, 0 },
    };
    const mcrt_config_key *sets[3] = { cfg_core_keys("engine"), NULL,
                                       (const mcrt_config_key *)future };
    ck_assert_int_eq(cfg_validate_section(t, "engine", sets, 3, &d), 0);
    ck_assert_int_eq(get_int(t, "engine", "depth"), 3);
    ck_assert(get_bool(t, "engine", "fast"));
    ck_assert_int_eq(get_int(t, "engine", "max_batch_size"), 2);

    /* A smaller struct_size is refused. */
    static mcrt_config_key small[] = {
        { 8, MCRT_CFG_INT, 0, 0, "x", NULL, NULL, 0, 0, NULL },
        MCRT_CONFIG_KEY_END,
    };
    const mcrt_config_key *bad[2] = { cfg_core_keys("sampler"), small };
    ck_assert_int_eq(cfg_validate_section(t, "sampler", bad, 2, &d), -1);
    ck_assert_ptr_nonnull(strstr(d.msg, "struct_size 8"));

    /* Unknown type, ENUM without choices, a bad default. */
    static mcrt_config_key badtype[] = {
        { (uint32_t)sizeof(mcrt_config_key), 99, 0, 0, "x", NULL, NULL, 0, 0, NULL },
        MCRT_CONFIG_KEY_END,
    };
    static mcrt_config_key nochoice[] = {
        MCRT_CONFIG_KEY_ENUM("x", "a", NULL, "no choices"),
        MCRT_CONFIG_KEY_END,
    };
    static mcrt_config_key baddefault[] = {
        MCRT_CONFIG_KEY(MCRT_CFG_INT, "x", "many", "bad default"),
        MCRT_CONFIG_KEY_END,
    };
    const mcrt_config_key *b1[1] = { badtype }, *b2[1] = { nochoice }, *b3[1] = { baddefault };
    ck_assert_int_eq(cfg_validate_section(t, "sampler", b1, 1, &d), -1);
    ck_assert_ptr_nonnull(strstr(d.msg, "unknown type 99"));
    ck_assert_int_eq(cfg_validate_section(t, "sampler", b2, 1, &d), -1);
    ck_assert_ptr_nonnull(strstr(d.msg, "without choices"));
    ck_assert_int_eq(cfg_validate_section(t, "sampler", b3, 1, &d), -1);
    ck_assert_ptr_nonnull(strstr(d.msg, "sampler.x: the declared default is invalid"));
    ck_assert_int_eq(cfg_validate_section(t, "nonsense", b3, 1, &d), -1);
    ck_assert_ptr_null(cfg_section(t, "nonsense"));
    cfg_tree_destroy(t);
}
END_TEST

START_TEST(core_keys_in_plugin_sections)
{
    /* cfg_validate_core checks the core's keys of plugin sections, not the plugin's. */
    char path[256];
    write_file("c.yaml", "engine:\n  name: static\n  max_batch_size: four\n  own_key: 1\n", path,
               sizeof path);
    int rc;
    cfg_diag d;
    cfg_tree *t = build(path, (const char *const[]){ "@", NULL }, NULL, &rc, &d);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(cfg_validate_core(t, &d), -1);
    ck_assert_int_eq(d.exit_code, 78);
    ck_assert_ptr_nonnull(strstr(d.msg, ":3:19: engine.max_batch_size: expected an integer in "
                                        "[1, 65536], got 'four'"));
    cfg_tree_destroy(t);

    write_file("c.yaml", "engine:\n  max_batch_size: 3\n  own_key: 1\nmodel: {load: [a]}\n",
               path, sizeof path);
    t = build(path, (const char *const[]){ "@", NULL }, NULL, &rc, &d);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(cfg_validate_core(t, &d), -1);
    ck_assert_ptr_nonnull(strstr(d.msg, ":4:15: model.load: expected a path, got a list"));
    cfg_tree_destroy(t);

    write_file("c.yaml", "engine:\n  max_batch_size: 3\n  own_key: 1\n", path, sizeof path);
    t = build(path, (const char *const[]){ "@", NULL }, NULL, &rc, &d);
    ck_assert_int_eq(rc, 0);
    ck_assert_int_eq(cfg_validate_core(t, &d), 0); /* own_key waits for the plugin's keys */
    ck_assert(!cfg_section_validated(cfg_section(t, "engine")));
    ck_assert(cfg_section_validated(cfg_section(t, "generation")));
    ck_assert_int_eq(get_int(t, "engine", "max_batch_size"), 3);
    cfg_tree_destroy(t);
}
END_TEST

/* ---- Unvalidated getters, API edges, help ----------------------------------------- */

START_TEST(raw_getters)
{
    char path[256];
    write_file("r.yaml",
               "sampler:\n  t: 0.5\n  q: \"7\"\n  b: Yes\n  l: [x, y]\n  one: z\n  n: ~\n",
               path, sizeof path);
    int rc;
    cfg_diag d;
    cfg_tree *t = build(path, (const char *const[]){ "@", NULL }, NULL, &rc, &d);
    ck_assert_int_eq(rc, 0);
    const mcrt_config *s = cfg_section(t, "sampler");
    double f;
    int64_t i;
    bool b;
    size_t n;
    const char *str;
    ck_assert_int_eq(cfg_get_float(s, "t", &f), MCRT_OK);
    ck_assert_double_eq(f, 0.5);
    ck_assert_int_eq(cfg_get_int(s, "t", &i), MCRT_E_CONFIG);
    ck_assert_int_eq(cfg_get_int(s, "q", &i), MCRT_E_CONFIG); /* quoted: a string */
    ck_assert_int_eq(cfg_get_string(s, "q", &str), MCRT_OK);
    ck_assert_str_eq(str, "7");
    ck_assert_int_eq(cfg_get_bool(s, "b", &b), MCRT_OK);
    ck_assert(b);
    ck_assert_int_eq(cfg_list_size(s, "l", &n), MCRT_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(cfg_list_item(s, "l", 1, &str), MCRT_OK);
    ck_assert_str_eq(str, "y");
    ck_assert_int_eq(cfg_get_string(s, "l", &str), MCRT_E_CONFIG);
    ck_assert_int_eq(cfg_list_size(s, "one", &n), MCRT_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(cfg_list_item(s, "one", 0, &str), MCRT_OK);
    ck_assert_str_eq(str, "z");
    ck_assert_int_eq(cfg_list_item(s, "one", 1, &str), MCRT_E_RANGE);
    ck_assert_int_eq(cfg_get_int(s, "n", &i), MCRT_E_NOTFOUND);
    ck_assert_int_eq(cfg_get_int(s, "absent", &i), MCRT_E_NOTFOUND);
    ck_assert_int_eq(cfg_get_int(NULL, "t", &i), MCRT_E_INVAL);
    ck_assert_int_eq(cfg_get_int(s, NULL, &i), MCRT_E_INVAL);
    ck_assert_int_eq(cfg_get_int(s, "t", NULL), MCRT_E_INVAL);
    char *out = printed(t);
    char want[300];
    snprintf(want, sizeof want, "%s:3:6", path);
    assert_line(out, "sampler.q = \"7\"", want);
    snprintf(want, sizeof want, "%s:5:6", path);
    assert_line(out, "sampler.l = [x, y]", want);
    free(out);
    cfg_tree_destroy(t);
}
END_TEST

START_TEST(api_edges)
{
    cfg_tree_destroy(NULL);
    ck_assert_ptr_null(cfg_section(NULL, "engine"));
    ck_assert_ptr_null(cfg_core_keys("nope"));
    ck_assert_ptr_nonnull(cfg_core_keys("engine"));
    ck_assert_str_eq(cfg_core_keys("engine")[1].name, "max_batch_size");
    const char *const *names = cfg_section_names();
    const char *want[] = { "runtime", "parallel", "generation", "output", "engine",
                           "controller", "model", "sampler", "tokenizer" };
    for (size_t i = 0; i < 9; i++)
        ck_assert_str_eq(names[i], want[i]);
    ck_assert_ptr_null(names[9]);
    /* Every core key has a one-line doc. */
    for (size_t i = 0; names[i]; i++)
        for (const mcrt_config_key *k = cfg_core_keys(names[i]); k->name; k++)
            ck_assert_msg(k->doc && k->doc[0] && !strchr(k->doc, '\n'), "%s.%s", names[i],
                          k->name);

    /* cfg_build once per tree; no argv, no envp. */
    cfg_tree *t = cfg_tree_create();
    cfg_diag d;
    ck_assert_int_eq(cfg_build(t, 0, NULL, NULL, &d), 0);
    ck_assert_int_eq(cfg_build(t, 0, NULL, NULL, &d), -1);
    ck_assert_int_eq(d.exit_code, 70);
    cfg_tree_destroy(t);
}
END_TEST

START_TEST(flags_help)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cfg_print_flags_help(f);
    fclose(f);
    ck_assert_ptr_nonnull(strstr(buf, "--top-k K"));
    ck_assert_ptr_nonnull(strstr(buf, "[generation.top_k]"));
    ck_assert_ptr_nonnull(strstr(buf, "--prompts P [P ...]"));
    ck_assert_ptr_nonnull(strstr(buf, "--[no-]stream"));
    ck_assert_ptr_nonnull(strstr(buf, "--load, --model, -m DIR"));
    ck_assert_ptr_nonnull(strstr(buf, "-v, -vv"));
    free(buf);
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("config");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, good_file_every_type);
    tcase_add_test(tc, defaults_without_file);
    tcase_add_loop_test(tc, error_table, 0, (int)(sizeof err_cases / sizeof err_cases[0]));
    tcase_add_test(tc, file_too_large);
    tcase_add_test(tc, unreadable_file);
    tcase_add_test(tc, precedence);
    tcase_add_test(tc, env_mirrors);
    tcase_add_test(tc, underscore_and_hyphen_flags);
    tcase_add_test(tc, prompts_then_flag);
    tcase_add_test(tc, equals_values_and_bools);
    tcase_add_test(tc, double_dash_ends_flags);
    tcase_add_test(tc, unknown_presence_penalty_flag);
    tcase_add_test(tc, log_levels);
    tcase_add_test(tc, prompt_sources);
    tcase_add_test(tc, path_resolution);
    tcase_add_test(tc, nulls_and_quotes);
    tcase_add_test(tc, plugin_section);
    tcase_add_test(tc, plugin_errors);
    tcase_add_test(tc, key_set_layouts);
    tcase_add_test(tc, core_keys_in_plugin_sections);
    tcase_add_test(tc, raw_getters);
    tcase_add_test(tc, api_edges);
    tcase_add_test(tc, flags_help);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
