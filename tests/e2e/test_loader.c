/*
 * tests/e2e/test_loader.c: the plugin loader and registry, driven through
 * `mcrt plugins` and `mcrt run` over the test-only plugins of
 * tests/plugins/loader (see its README for what each one is).
 */
#include <check.h>
#include <errno.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static char *g_toy, *g_loader, *g_dir;

/* The block of `mcrt plugins` output that starts with the line ending in `file`. */
static char *block_for(const char *out, const char *file)
{
    const char *p = out;
    while ((p = strstr(p, file)) != NULL) {
        const char *line_end = strchr(p, '\n');
        if (line_end != NULL && (size_t)(line_end - p) == strlen(file)) {
            const char *start = p;
            while (start > out && start[-1] != '\n') start--;
            if (start[0] == '/' || start[0] == '.') {
                /* up to the next line that starts a new plugin (not indented) */
                const char *end = line_end + 1;
                while (*end && *end == ' ') {
                    const char *nl = strchr(end, '\n');
                    end = nl ? nl + 1 : end + strlen(end);
                }
                return strndup(start, (size_t)(end - start));
            }
        }
        p += strlen(file);
    }
    return strdup("");
}

typedef struct listing_case {
    const char *file;
    const char *expect[3];
} listing_case;

static const listing_case listing[] = {
    {"mcrt-sampler-good.so", {"score: 5", "strength", "mode"}},
    {"mcrt-sampler-oldabi.so", {"unusable: incompatible ABI (plugin 0.0, host 1.0)"}},
    {"mcrt-sampler-newerminor.so", {"unusable:", "plugin ABI 1.99, host 1.0"}},
    {"mcrt-sampler-smallstruct.so", {"unusable:", "struct_size 16", "plugin ABI 1.0, host 1.0"}},
    {"mcrt-sampler-zeroscore.so", {"score: 0 (unusable here: needs a quantum accelerator)"}},
    {"mcrt-engine-wrongkind.so", {"unusable:", "kind 'engine'", "'sampler'"}},
    {"mcrt-tokenizer-nosymbol.so", {"unusable: no mcrt_plugin symbol"}},
};

START_TEST(listing_says_why)
{
    const listing_case *c = &listing[_i];
    const char *args[] = {"plugins", "--plugin-dir", g_loader, NULL};
    const char *env[] = {"NO_COLOR=1", NULL};
    run_result r = run_mcrt(args, env, 30);
    ck_assert_int_eq(r.timed_out, 0);
    ck_assert_msg(r.exit_code == 0, "exit %d\n%s", r.exit_code, r.err);
    char *b = block_for(r.out, c->file);
    ck_assert_msg(b[0] != '\0', "%s not listed:\n%s", c->file, r.out);
    for (int k = 0; k < 3 && c->expect[k]; k++)
        ck_assert_msg(strstr(b, c->expect[k]) != NULL, "%s: missing \"%s\" in:\n%s", c->file,
                      c->expect[k], b);
    free(b);
    run_result_free(&r);
}
END_TEST

/* `auto` picks the highest positive score and logs why zero scores were skipped. */
START_TEST(auto_skips_zero_score_with_reason)
{
    char yaml[8192];
    snprintf(yaml, sizeof yaml,
             "runtime:\n  plugin_dirs: [\"%s\", \"%s\"]\n  log_level: info\n"
             "generation:\n  prompts: [\"ab\"]\n  num_tokens_to_generate: 2\n"
             "engine:\n  name: fifo\ncontroller:\n  name: toy\nmodel:\n  name: counter\n"
             "tokenizer:\n  name: bytes\n",
             g_toy, g_loader);
    char *cfg = write_file(g_dir, "auto.yaml", yaml);
    const char *args[] = {"run", cfg, NULL};
    const char *env[] = {"NO_COLOR=1", NULL};
    run_result r = run_mcrt(args, env, 60);
    ck_assert_int_eq(r.timed_out, 0);
    ck_assert_msg(r.exit_code == 0, "exit %d\n%s", r.exit_code, r.err);
    ck_assert_msg(strstr(r.err, "sampler/zeroscore: skipped, not usable here: needs a quantum accelerator"),
                  "no skip reason logged:\n%s", r.err);
    ck_assert_msg(strstr(r.err, "sampler=good "), "the score-5 sampler was not chosen:\n%s", r.err);
    ck_assert_msg(strstr(r.err, "oldabi.so: refused: incompatible ABI (plugin 0.0, host 1.0)"),
                  "refusal not logged:\n%s", r.err);
    free(cfg);
    run_result_free(&r);
}
END_TEST

static void copy_file(const char *from, const char *to)
{
    FILE *a = fopen(from, "rb"), *b = fopen(to, "wb");
    ck_assert_msg(a && b, "copy %s -> %s", from, to);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, a)) > 0) fwrite(buf, 1, n, b);
    fclose(a);
    fclose(b);
    chmod(to, 0755);
}

/* Search order: --plugin-dir first, then MCRT_PLUGIN_PATH; the later copy is shadowed. */
START_TEST(search_order_and_shadowing)
{
    char dup[2048], src[4096], dst[4096];
    snprintf(dup, sizeof dup, "%s/dup", g_dir);
    mkdir(dup, 0755);
    snprintf(src, sizeof src, "%s/mcrt-sampler-greedy.so", g_toy);
    snprintf(dst, sizeof dst, "%s/mcrt-sampler-greedy.so", dup);
    copy_file(src, dst);
    char envp[2100];
    snprintf(envp, sizeof envp, "MCRT_PLUGIN_PATH=%s", dup);
    const char *args[] = {"plugins", "--plugin-dir", g_toy, NULL};
    const char *env[] = {"NO_COLOR=1", envp, NULL};
    run_result r = run_mcrt(args, env, 30);
    ck_assert_int_eq(r.exit_code, 0);
    char *b = block_for(r.out, dst);
    ck_assert_msg(strstr(b, "found via: MCRT_PLUGIN_PATH"), "origin missing:\n%s", b);
    ck_assert_msg(strstr(b, "shadowed: shadowed by"), "not shadowed:\n%s", b);
    ck_assert_msg(strstr(b, g_toy), "shadowing file not named:\n%s", b);
    free(b);
    b = block_for(r.out, src);
    ck_assert_msg(strstr(b, "found via: --plugin-dir"), "flag dir not first:\n%s", r.out);
    free(b);
    run_result_free(&r);
}
END_TEST

/* A world-writable plugin file is refused even in a safe folder. */
START_TEST(world_writable_file_refused)
{
    char d[2048], src[4096], dst[4096];
    snprintf(d, sizeof d, "%s/wwfile", g_dir);
    mkdir(d, 0755);
    snprintf(src, sizeof src, "%s/mcrt-sampler-greedy.so", g_toy);
    snprintf(dst, sizeof dst, "%s/mcrt-sampler-greedy.so", d);
    copy_file(src, dst);
    chmod(dst, 0777);
    const char *args[] = {"plugins", "--plugin-dir", d, NULL};
    run_result r = run_mcrt(args, NULL, 30);
    ck_assert_int_eq(r.exit_code, 0);
    ck_assert_msg(strstr(r.out, "unusable: the file is world-writable"), "%s", r.out);
    run_result_free(&r);
}
END_TEST

START_TEST(version_and_help)
{
    const char *a1[] = {"--version", NULL};
    run_result r = run_mcrt(a1, NULL, 30);
    ck_assert_int_eq(r.exit_code, 0);
    ck_assert_msg(strstr(r.out, "mcrt 0.") && strstr(r.out, "plugin ABI 1.0") && strstr(r.out, "features: cuda="),
                  "%s", r.out);
    run_result_free(&r);
    static const char *const cmds[] = {"run", "config", "plugins"};
    for (int i = 0; i < 3; i++) {
        const char *a2[] = {cmds[i], "--help", NULL};
        r = run_mcrt(a2, NULL, 30);
        ck_assert_int_eq(r.exit_code, 0);
        ck_assert_msg(strstr(r.out, "usage: mcrt ") != NULL, "%s --help:\n%s", cmds[i], r.out);
        run_result_free(&r);
    }
    const char *a3[] = {"run", "--help", NULL};
    r = run_mcrt(a3, NULL, 30);
    ck_assert_msg(strstr(r.out, "--num-tokens-to-generate") && strstr(r.out, "--top-k") &&
                      strstr(r.out, "--tensor-model-parallel-size"), "%s", r.out);
    run_result_free(&r);
}
END_TEST

/* Run `mcrt run -v -p x` (no plugins: debug lines, then an error) with stderr on a terminal;
 * returns what the terminal saw. */
static char *run_on_tty(const char *no_color)
{
    int master;
    pid_t pid = forkpty(&master, NULL, NULL, NULL);
    ck_assert_msg(pid >= 0, "forkpty: %s", strerror(errno));
    if (pid == 0) {
        if (no_color) setenv("NO_COLOR", no_color, 1);
        else unsetenv("NO_COLOR");
        unsetenv("MCRT_PLUGIN_PATH");
        const char *exe = getenv("MCRT_EXE");
        execl(exe, exe, "run", "-v", "-p", "x", "--plugin-dir", g_dir, (char *)NULL);
        _exit(127);
    }
    char *out = calloc(1, 65536);
    size_t n = 0;
    for (;;) {
        struct pollfd pf = {master, POLLIN, 0};
        if (poll(&pf, 1, 20000) <= 0) { kill(pid, SIGKILL); break; }
        ssize_t r = read(master, out + n, 65535 - n);
        if (r <= 0) break; /* EIO once the child has exited */
        n += (size_t)r;
        if (n >= 65535) break;
    }
    close(master);
    waitpid(pid, NULL, 0);
    return out;
}

/* Colour only on a terminal, and never with NO_COLOR set (no-color.org). */
START_TEST(color_only_on_a_terminal_without_no_color)
{
    char *tty = run_on_tty(NULL);
    ck_assert_msg(strstr(tty, "\033[") != NULL, "no colour on a terminal:\n%s", tty);
    ck_assert_msg(strstr(tty, "no tokenizer plugin found") != NULL, "%s", tty);
    free(tty);
    tty = run_on_tty("1");
    ck_assert_msg(strstr(tty, "\033[") == NULL, "colour despite NO_COLOR:\n%s", tty);
    ck_assert_msg(strstr(tty, "no tokenizer plugin found") != NULL, "%s", tty);
    free(tty);
    tty = run_on_tty(""); /* empty NO_COLOR does not count */
    ck_assert_msg(strstr(tty, "\033[") != NULL, "empty NO_COLOR turned colour off:\n%s", tty);
    free(tty);
    /* not a terminal: a pipe */
    const char *args[] = {"run", "-v", "-p", "x", "--plugin-dir", g_dir, NULL};
    run_result r = run_mcrt(args, NULL, 30);
    ck_assert_msg(strstr(r.err, "\033[") == NULL, "colour on a pipe:\n%s", r.err);
    run_result_free(&r);
}
END_TEST

int main(void)
{
    g_toy = strdup(need_env("MCRT_TOY_DIR"));
    g_loader = strdup(need_env("MCRT_LOADER_DIR"));
    g_dir = scratch_dir();
    use_isolated_exe(g_dir);
    Suite *s = suite_create("loader");
    TCase *tc = tcase_create("loader");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, listing_says_why, 0, (int)(sizeof listing / sizeof listing[0]));
    tcase_add_test(tc, auto_skips_zero_score_with_reason);
    tcase_add_test(tc, search_order_and_shadowing);
    tcase_add_test(tc, world_writable_file_refused);
    tcase_add_test(tc, version_and_help);
    tcase_add_test(tc, color_only_on_a_terminal_without_no_color);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    free(g_toy);
    free(g_loader);
    free(g_dir);
    return failed == 0 ? 0 : 1;
}
