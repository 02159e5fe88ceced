/*
 * tests/e2e/test_bad_input.c: malformed configs and command lines, run
 * through the real `mcrt` program. Each row asserts the exit code (sysexits,
 * docs/cli.md) and the parts of the message a user needs: the file:line:col,
 * the key or flag, what was expected. No row may crash (exit >= 128), hang
 * (the harness kills it after 30 s) or, under ASan, leak (ASan's exit code
 * 86 would fail the exit-code check).
 *
 * Placeholders in args, env and file texts: @D = this run's scratch folder,
 * @TOY = the toy plugins' folder, @LOADER = the loader test plugins' folder.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

#define MAXA 12

typedef struct bad_case {
    const char *name;
    const char *args[MAXA];   /* after `mcrt` */
    const char *env[4];
    int exit_code;
    const char *expect[4];    /* substrings of stderr */
} bad_case;

/* Every toy kind named, so shipped plugins in the build tree never win "auto". */
#define TOY_NAMES "engine:\n  name: fifo\ncontroller:\n  name: toy\n" \
                  "sampler:\n  name: greedy\ntokenizer:\n  name: bytes\n"

/* Files written into @D before the cases run. */
static const struct { const char *name, *text; } files[] = {
    {"good.yaml", "plugins_ok: 1\n"},
    {"empty.yaml", ""},
    {"comments.yaml", "# nothing but a comment\n"},
    {"syntax.yaml", "engine:\n  max_batch_size: [1, 2\n"},
    {"tabs.yaml", "engine:\n\tmax_batch_size: 4\n"},
    {"unknown_section.yaml", "engnie:\n  max_batch_size: 4\n"},
    {"misspelled.yaml", "generation:\n  num_tokens_to_generate: 4\n  temperatur: 0.5\n"},
    {"wrong_type.yaml", "engine:\n  max_batch_size: four\n"},
    {"out_of_range.yaml", "generation:\n  top_p: 1.5\n"},
    {"duplicate_key.yaml", "generation:\n  top_k: 1\n  top_k: 2\n"},
    {"duplicate_section.yaml", "generation:\n  top_k: 1\ngeneration:\n  top_p: 0.5\n"},
    {"quoted_int.yaml", "generation:\n  top_k: \"5\"\n"},
    {"bad_enum.yaml", "output:\n  format: xml\n"},
    {"alias.yaml", "generation:\n  prompts: &p [a, b]\n  stop: *p\n"},
    {"list_top.yaml", "- engine\n- model\n"},
    {"two_docs.yaml", "generation:\n  top_k: 1\n---\ngeneration:\n  top_k: 2\n"},
    {"deep.yaml", "a:\n b:\n  c:\n   d:\n    e:\n     f:\n      g:\n       h:\n        i:\n         j: 1\n"},
    {"bad_utf8.yaml", "generation:\n  prompts: [\"\xff\xfe\"]\n"},
    {"scalar_section.yaml", "generation: 5\n"},
    {"map_value.yaml", "engine:\n  max_batch_size:\n    a: 1\n"},
    {"int_overflow.yaml", "engine:\n  max_batch_size: 99999999999999999999999\n"},
    {"unknown_plugin.yaml", "engine:\n  name: staitc\n"},
    {"toy.yaml", "runtime:\n  plugin_dirs: [\"@TOY\"]\ngeneration:\n  prompts: [\"hello\"]\n"
                 "  num_tokens_to_generate: 4\nmodel:\n  name: counter\n" TOY_NAMES},
    {"toy_badkey.yaml", "runtime:\n  plugin_dirs: [\"@TOY\"]\nmodel:\n  kv_blok_size: 16\n" TOY_NAMES},
    {"toy_badval.yaml", "runtime:\n  plugin_dirs: [\"@TOY\"]\nmodel:\n  kv_block_size: 0\n" TOY_NAMES},
    {"old_abi.yaml", "runtime:\n  plugin_dirs: [\"@TOY\", \"@LOADER\"]\nsampler:\n  name: oldabi\n"},
    {"zero.yaml", "runtime:\n  plugin_dirs: [\"@TOY\", \"@LOADER\"]\nsampler:\n  name: zeroscore\n"},
    {"prompts_empty.txt", ""},
};

static const bad_case cases[] = {
    /* command line */
    {"no arguments", {NULL}, {NULL}, 64, {"usage: mcrt"}},
    {"inspect without a path", {"inspect", NULL}, {NULL}, 64, {"no checkpoint given"}},
    {"inspect a missing checkpoint", {"inspect", "@D/nope.safetensors", NULL}, {NULL}, 66,
     {"nope.safetensors", "no such file"}},
    {"inspect a file that is no checkpoint", {"inspect", "@D/good.yaml", NULL}, {NULL}, 65,
     {"good.yaml", "not a safetensors file"}},
    {"inspect unknown flag", {"inspect", "--jsn", "x", NULL}, {NULL}, 64, {"--jsn"}},
    {"unknown command", {"rnu", NULL}, {NULL}, 64, {"unknown command 'rnu'", "did you mean 'run'"}},
    {"help for unknown command", {"help", "fly", NULL}, {NULL}, 64, {"unknown command 'fly'"}},
    {"unknown flag", {"run", "--top-kk", "3", NULL}, {NULL}, 64, {"--top-kk", "--top-k"}},
    {"flag without its value", {"run", "--prompts", "x", "--top-k", NULL}, {NULL}, 64, {"--top-k"}},
    {"flag followed by a flag", {"run", "--num-tokens-to-generate", "--top-k", "3", NULL}, {NULL}, 64,
     {"--num-tokens-to-generate"}},
    {"flag value of the wrong type", {"run", "--top-k", "abc", NULL}, {NULL}, 64, {"--top-k", "abc", "integer"}},
    {"flag value out of range", {"run", "--temperature", "-1", NULL}, {NULL}, 64, {"--temperature"}},
    {"flag enum value", {"run", "--output-format", "xml", NULL}, {NULL}, 64, {"--output-format", "xml"}},
    {"conflicting -v -q", {"run", "-v", "-q", NULL}, {NULL}, 64, {"-v", "-q"}},
    {"conflicting prompts and prompt file", {"run", "--prompts", "a", "--prompt-file", "@D/p.txt", NULL},
     {NULL}, 64, {"--prompt-file"}},
    {"bad log level", {"run", "--log-level", "loud", NULL}, {NULL}, 64, {"--log-level", "loud"}},
    {"two config files", {"run", "@D/good.yaml", "@D/empty.yaml", NULL}, {NULL}, 64, {"empty.yaml"}},
    {"plugins: dir without value", {"plugins", "--plugin-dir", NULL}, {NULL}, 64, {"--plugin-dir"}},
    {"plugins: unknown argument", {"plugins", "--bogus", NULL}, {NULL}, 64, {"--bogus"}},
    /* files */
    {"missing config file", {"run", "@D/nope.yaml", NULL}, {NULL}, 66, {"nope.yaml", "No such file"}},
    {"directory instead of file", {"run", "@D", NULL}, {NULL}, 66, {"is a directory"}},
    {"empty file", {"config", "@D/empty.yaml", NULL}, {NULL}, 78, {"empty.yaml", "empty"}},
    {"only comments", {"config", "@D/comments.yaml", NULL}, {NULL}, 78, {"comments.yaml", "empty"}},
    {"YAML syntax error", {"config", "@D/syntax.yaml", NULL}, {NULL}, 78, {"syntax.yaml:", "syntax"}},
    {"tab indentation", {"config", "@D/tabs.yaml", NULL}, {NULL}, 78, {"tabs.yaml:2:", "tab"}},
    {"unknown section", {"config", "@D/unknown_section.yaml", NULL}, {NULL}, 78,
     {"unknown_section.yaml:1:1", "engnie", "did you mean 'engine'"}},
    {"misspelled key", {"config", "@D/misspelled.yaml", NULL}, {NULL}, 78,
     {"misspelled.yaml:3:3", "generation.temperatur", "did you mean 'temperature'"}},
    {"wrong type", {"config", "@D/wrong_type.yaml", NULL}, {NULL}, 78,
     {"wrong_type.yaml:2:19", "engine.max_batch_size", "four"}},
    {"out of range", {"config", "@D/out_of_range.yaml", NULL}, {NULL}, 78,
     {"out_of_range.yaml:2:10", "generation.top_p", "1.5"}},
    {"duplicate key", {"config", "@D/duplicate_key.yaml", NULL}, {NULL}, 78,
     {"duplicate_key.yaml:3:3", "duplicate", "top_k"}},
    {"duplicate section", {"config", "@D/duplicate_section.yaml", NULL}, {NULL}, 78,
     {"duplicate_section.yaml:3:1", "duplicate", "generation"}},
    {"quoted number", {"config", "@D/quoted_int.yaml", NULL}, {NULL}, 78, {"quoted_int.yaml:2:10", "top_k"}},
    {"enum value", {"config", "@D/bad_enum.yaml", NULL}, {NULL}, 78, {"bad_enum.yaml:2:11", "xml", "jsonl"}},
    {"YAML alias", {"config", "@D/alias.yaml", NULL}, {NULL}, 78, {"alias.yaml:", "alias"}},
    {"top level is a list", {"config", "@D/list_top.yaml", NULL}, {NULL}, 78, {"list_top.yaml:1:1", "mapping"}},
    {"two documents", {"config", "@D/two_docs.yaml", NULL}, {NULL}, 78, {"two_docs.yaml:", "document"}},
    {"nesting too deep", {"config", "@D/deep.yaml", NULL}, {NULL}, 78, {"deep.yaml:"}},
    {"invalid UTF-8", {"config", "@D/bad_utf8.yaml", NULL}, {NULL}, 78, {"bad_utf8.yaml"}},
    {"section is a scalar", {"config", "@D/scalar_section.yaml", NULL}, {NULL}, 78,
     {"scalar_section.yaml:1:", "generation"}},
    {"mapping as a value", {"config", "@D/map_value.yaml", NULL}, {NULL}, 78,
     {"map_value.yaml:3:", "engine.max_batch_size"}},
    {"integer overflow", {"config", "@D/int_overflow.yaml", NULL}, {NULL}, 78,
     {"int_overflow.yaml:2:19", "max_batch_size"}},
    {"environment value", {"config", NULL}, {"MCRT_TOP_K=abc", NULL}, 78, {"MCRT_TOP_K", "abc"}},
    /* plugins */
    {"plugin dir missing", {"run", "--plugin-dir", "@D/no-such-dir", "-p", "x", NULL}, {NULL}, 66,
     {"no-such-dir"}},
    {"plugin dir is a file", {"plugins", "--plugin-dir", "@D/good.yaml", NULL}, {NULL}, 66,
     {"good.yaml", "not a directory"}},
    {"world-writable plugin dir", {"plugins", "--plugin-dir", "@D/ww", NULL}, {NULL}, 69,
     {"world-writable"}},
    {"unknown plugin name", {"run", "@D/unknown_plugin.yaml", "-p", "x", "--plugin-dir", "@TOY", NULL},
     {NULL}, 78, {"unknown engine plugin 'staitc'"}},
    {"no plugins at all", {"run", "-p", "x", NULL}, {NULL}, 69, {"no tokenizer plugin found"}},
    {"misspelled plugin key", {"run", "@D/toy_badkey.yaml", "-p", "x", NULL}, {NULL}, 78,
     {"toy_badkey.yaml:4:3", "model.kv_blok_size", "did you mean 'kv_block_size'"}},
    {"plugin key out of range", {"run", "@D/toy_badval.yaml", "-p", "x", NULL}, {NULL}, 78,
     {"toy_badval.yaml:4:18", "model.kv_block_size"}},
    {"plugin with an old ABI chosen", {"run", "@D/old_abi.yaml", "-p", "x", NULL}, {NULL}, 69,
     {"mcrt-sampler-oldabi.so", "plugin 0.", "host 1."}},
    {"plugin unusable here chosen", {"run", "@D/zero.yaml", "-p", "x", NULL}, {NULL}, 69,
     {"zeroscore", "quantum"}},
    {"zero tensor-parallel ranks", {"run", "@D/toy.yaml", "-tp", "0", NULL}, {NULL}, 64,
     {"-tp", "0"}},
    {"rank count too large", {"run", "@D/toy.yaml", "-tp", "4096", "-pp", "2", NULL}, {NULL}, 78,
     {"8192 ranks"}},
    /* inputs of a run */
    {"no prompts", {"run", "--plugin-dir", "@TOY", NULL}, {NULL}, 64, {"no prompts"}},
    {"prompt file missing", {"run", "--plugin-dir", "@TOY", "--prompt-file", "@D/none.txt", NULL},
     {NULL}, 66, {"none.txt"}},
    {"prompt file is a directory", {"run", "--plugin-dir", "@TOY", "--prompt-file", "@D", NULL},
     {NULL}, 66, {"is a directory"}},
    {"prompt file empty", {"run", "--plugin-dir", "@TOY", "--prompt-file", "@D/prompts_empty.txt", NULL},
     {NULL}, 65, {"no prompts"}},
    {"output path not creatable", {"run", "@D/toy.yaml", "--output-path", "@D/no/dir/out.json", NULL},
     {NULL}, 73, {"out.json"}},
    {"stream needs the text format", {"run", "@D/toy.yaml", "--stream", "--output-format", "jsonl", NULL},
     {NULL}, 78, {"output.stream", "jsonl"}},
    {"empty prompt fails alone", {"run", "@D/toy.yaml", "--prompts", "", "ok", NULL}, {NULL}, 65,
     {"request 0 failed"}},
};

#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

static char *g_dir, *g_toy, *g_loader;

/* Replace @D, @TOY, @LOADER; returns malloc'd. */
static char *subst(const char *s)
{
    char out[8192];
    size_t o = 0;
    while (*s && o < sizeof out - 1) {
        const char *rep = NULL;
        size_t skip = 0;
        if (strncmp(s, "@LOADER", 7) == 0) { rep = g_loader; skip = 7; }
        else if (strncmp(s, "@TOY", 4) == 0) { rep = g_toy; skip = 4; }
        else if (strncmp(s, "@D", 2) == 0) { rep = g_dir; skip = 2; }
        if (rep) {
            size_t l = strlen(rep);
            if (o + l >= sizeof out) break;
            memcpy(out + o, rep, l);
            o += l;
            s += skip;
        } else {
            out[o++] = *s++;
        }
    }
    out[o] = '\0';
    return strdup(out);
}

START_TEST(bad_input_case)
{
    const bad_case *c = &cases[_i];
    const char *args[MAXA + 1] = {0};
    char *own[MAXA + 4] = {0};
    size_t na = 0;
    for (; na < MAXA && c->args[na]; na++)
        args[na] = own[na] = subst(c->args[na]);
    const char *env[6] = {"NO_COLOR=1", NULL};
    size_t ne = 1;
    for (size_t i = 0; i < 4 && c->env[i]; i++)
        env[ne++] = own[MAXA + i] = subst(c->env[i]);
    run_result r = run_mcrt(args, env, 30);
    ck_assert_msg(!r.timed_out, "[%s] mcrt hung (killed after 30 s)", c->name);
    ck_assert_msg(r.exit_code == c->exit_code, "[%s] exit code %d, expected %d\nstderr:\n%s", c->name,
                  r.exit_code, c->exit_code, r.err);
    for (size_t i = 0; i < 4 && c->expect[i]; i++) {
        char *want = subst(c->expect[i]);
        ck_assert_msg(strstr(r.err, want) != NULL, "[%s] stderr lacks \"%s\"\nstderr:\n%s", c->name,
                      want, r.err);
        free(want);
    }
    /* Diagnostics go to stderr only; nothing but results (which name a failed
     * request's error) may reach stdout. */
    if (c->exit_code != 0)
        ck_assert_msg(strstr(r.out, "error") == NULL || strstr(r.out, "finish_reason: error") != NULL,
                      "[%s] an error message reached stdout:\n%s", c->name, r.out);
    run_result_free(&r);
    for (size_t i = 0; i < MAXA + 4; i++) free(own[i]);
}
END_TEST

int main(void)
{
    g_dir = scratch_dir();
    use_isolated_exe(g_dir);
    g_toy = strdup(need_env("MCRT_TOY_DIR"));
    g_loader = strdup(need_env("MCRT_LOADER_DIR"));
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char *text = subst(files[i].text);
        free(write_file(g_dir, files[i].name, text));
        free(text);
    }
    char ww[4096];
    snprintf(ww, sizeof ww, "%s/ww", g_dir);
    mkdir(ww, 0777);
    chmod(ww, 0777);

    Suite *s = suite_create("bad-input");
    TCase *tc = tcase_create("table");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, bad_input_case, 0, N_CASES);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    printf("bad-input table: %d cases\n", N_CASES);
    free(g_dir);
    free(g_toy);
    free(g_loader);
    return failed == 0 ? 0 : 1;
}
