/*
 * tests/e2e/test_bad_requests.c: bad requests and generation flags through
 * the real `mcrt run` and the shipped pipeline (engine static, controller
 * simple, sampler default, model gpt on the gpt2 reference fixture, the
 * test-only bytes tokenizer). Each row asserts the exit code (docs/cli.md:
 * 64 a bad flag, 78 a bad config value, 65 a bad prompt file or a request
 * that failed alone, 66 a missing file) and the words a user needs on stderr,
 * and for requests that fail alone, that the others still completed. No row
 * may crash, hang (killed after 60 s) or, under ASan, leak.
 *
 * argv: none; env: MCRT_EXE, MCRT_TOY_DIR, MCRT_BUILD_DIR, MCRT_FIXTURE (the
 * gpt2/fp32 fixture folder). Without the fixture (no python3-torch): 77.
 *
 * Placeholders: @D scratch folder; @B build dir; @TOY toy plugins; @FX fixture.
 */
#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

#define MAXA 16

typedef struct bad_request {
    const char *name;
    const char *args[MAXA];   /* after `mcrt run @D/base.yaml` */
    int exit_code;
    const char *expect[3];    /* substrings of stderr */
    int completed;            /* requests expected COMPLETED in stdout (jsonl), -1: not checked */
} bad_request;

/* Files written into @D first. */
static const struct { const char *name, *text; } files[] = {
    {"two.txt", "hello there\nx\n"},
    {"empty.txt", ""},
    {"dup.jsonl", "{\"prompt\": \"a\", \"id\": 7}\n{\"prompt\": \"b\", \"id\": 7}\n"},
    {"malformed.jsonl", "{\"prompt\": \"a\"}\n{\"prompt\": \"b\",}\n"},
    {"unknown.jsonl", "{\"prompt\": \"a\", \"temprature\": 0.5}\n"},
    {"wrongtype.jsonl", "{\"prompt\": \"a\", \"top_k\": \"five\"}\n"},
    {"noprompt.jsonl", "{\"temperature\": 0.5}\n"},
    {"inf.jsonl", "{\"prompt\": \"a\", \"temperature\": 1e999}\n"},
    {"badutf8.jsonl", "{\"prompt\": \"a\xff\xfe\"}\n"},
    {"emptystop.jsonl", "{\"prompt\": \"a\", \"stop\": [\"\"]}\n"},
    {"bias_range.jsonl", "{\"prompt\": \"hello\"}\n{\"prompt\": \"x\", \"logit_bias\": {\"99999\": 5}}\n"},
    {"bias_value.jsonl", "{\"prompt\": \"a\", \"logit_bias\": {\"5\": 500}}\n"},
    {"stopid.jsonl", "{\"prompt\": \"a\", \"stop_token_ids\": [-3]}\n"},
    {"topk_big.jsonl", "{\"prompt\": \"hello\"}\n{\"prompt\": \"x\", \"compat\": \"megatron\", "
                       "\"top_k\": 100000}\n"},
    {"both.jsonl", "{\"prompt\": \"hello\"}\n{\"prompt\": \"x\", \"compat\": \"megatron\", "
                   "\"top_k\": 5, \"top_p\": 0.9}\n"},
    {"empty_prompt.jsonl", "{\"prompt\": \"hello\"}\n{\"prompt\": \"\"}\n"},
    {"long_prompt.jsonl", "{\"prompt\": \"hello\"}\n{\"prompt\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}\n"},
    {"too_many_tokens.jsonl", "{\"prompt\": \"hello\"}\n{\"prompt\": \"x\", \"num_tokens_to_generate\": 200}\n"},
    {"bos.jsonl", "{\"prompt\": \"hello\"}\n{\"prompt\": \"x\", \"add_bos\": true}\n"},
    {"penalty.jsonl", "{\"prompt\": \"a\", \"repetition_penalty\": 0}\n"},
    {"compat.jsonl", "{\"prompt\": \"a\", \"compat\": \"vllm\"}\n"},
    {"neg_tokens.jsonl", "{\"prompt\": \"a\", \"num_tokens_to_generate\": -1}\n"},
};

static const bad_request cases[] = {
    /* flags: usage errors (64) */
    {"negative temperature", {"--temperature", "-1", NULL}, 64, {"--temperature", "[0, 100]"}, -1},
    {"NaN temperature", {"--temperature", "nan", NULL}, 64, {"--temperature", "not a finite number"}, -1},
    {"top_p above 1", {"--top-p", "1.5", NULL}, 64, {"--top-p", "[0, 1]"}, -1},
    {"negative top_k", {"--top-k", "-2", NULL}, 64, {"--top-k"}, -1},
    {"negative num_tokens_to_generate", {"--num-tokens-to-generate", "-1", NULL}, 64,
     {"--num-tokens-to-generate"}, -1},
    {"top_n_logprobs above 20", {"--top-n-logprobs", "21", NULL}, 64, {"--top-n-logprobs"}, -1},
    {"seed below -1", {"--seed", "-2", NULL}, 64, {"--seed"}, -1},
    {"compat unknown", {"--compat", "vllm", NULL}, 64, {"--compat", "vllm"}, -1},
    /* prompt files (65 / 66) */
    {"prompt file missing", {"--prompt-file", "@D/nope.txt", NULL}, 66, {"nope.txt"}, -1},
    {"prompt file is a folder", {"--prompt-file", "@D", NULL}, 66, {"is a directory"}, -1},
    {"prompt file empty", {"--prompt-file", "@D/empty.txt", NULL}, 65, {"no prompts"}, -1},
    {"JSONL duplicate id", {"--prompt-file", "@D/dup.jsonl", NULL}, 65,
     {"dup.jsonl:2", "\"7\" is already the id of request 0"}, -1},
    {"JSONL malformed line", {"--prompt-file", "@D/malformed.jsonl", NULL}, 65,
     {"malformed.jsonl:2", "not valid JSON"}, -1},
    {"JSONL unknown key", {"--prompt-file", "@D/unknown.jsonl", NULL}, 65,
     {"unknown.jsonl:1", "unknown key \"temprature\"", "did you mean \"temperature\""}, -1},
    {"JSONL wrong type", {"--prompt-file", "@D/wrongtype.jsonl", NULL}, 65,
     {"wrongtype.jsonl:1", "\"top_k\": expected an integer"}, -1},
    {"JSONL without prompt", {"--prompt-file", "@D/noprompt.jsonl", NULL}, 65,
     {"noprompt.jsonl:1", "no \"prompt\""}, -1},
    {"JSONL infinite temperature", {"--prompt-file", "@D/inf.jsonl", NULL}, 65,
     {"inf.jsonl:1", "\"temperature\""}, -1},
    {"JSONL invalid UTF-8 prompt", {"--prompt-file", "@D/badutf8.jsonl", NULL}, 65,
     {"badutf8.jsonl:1", "UTF-8"}, -1},
    {"JSONL empty stop string", {"--prompt-file", "@D/emptystop.jsonl", NULL}, 65,
     {"emptystop.jsonl:1", "stop string 0 is empty"}, -1},
    {"JSONL logit bias value out of range", {"--prompt-file", "@D/bias_value.jsonl", NULL}, 65,
     {"bias_value.jsonl:1", "logit_bias", "[-100, 100]"}, -1},
    {"JSONL negative stop token id", {"--prompt-file", "@D/stopid.jsonl", NULL}, 65,
     {"stopid.jsonl:1", "stop_token_ids"}, -1},
    {"JSONL zero repetition penalty", {"--prompt-file", "@D/penalty.jsonl", NULL}, 65,
     {"penalty.jsonl:1", "repetition_penalty", "> 0"}, -1},
    {"JSONL unknown compat", {"--prompt-file", "@D/compat.jsonl", NULL}, 65,
     {"compat.jsonl:1", "\"compat\""}, -1},
    {"JSONL negative num_tokens_to_generate", {"--prompt-file", "@D/neg_tokens.jsonl", NULL}, 65,
     {"neg_tokens.jsonl:1", "num_tokens_to_generate"}, -1},
    /* requests that fail alone (65), the others complete */
    {"empty stop string flag", {"--prompts", "hello", "--stop", "", NULL}, 65,
     {"request 0 failed", "stop string 0 is empty"}, 0},
    {"logit bias on an id out of range", {"--prompt-file", "@D/bias_range.jsonl", NULL}, 65,
     {"request 1 failed", "logit_bias"}, 1},
    /* (default mode follows vLLM: top_k >= vocab keeps every token; docs/sampling.md) */
    {"megatron top_k larger than the vocabulary", {"--prompt-file", "@D/topk_big.jsonl", NULL}, 65,
     {"request 1 failed", "top_k"}, 1},
    {"megatron top_k and top_p together", {"--prompt-file", "@D/both.jsonl", NULL}, 65,
     {"request 1 failed", "top_k", "top_p"}, 1},
    {"empty prompt", {"--prompt-file", "@D/empty_prompt.jsonl", NULL}, 65,
     {"request 1 failed", "empty prompt"}, 1},
    {"prompt longer than the context", {"--prompt-file", "@D/long_prompt.jsonl", NULL}, 65,
     {"request 1 failed", "exceeds the model's max_sequence_length 128"}, 1},
    {"prompt + tokens past the context", {"--prompt-file", "@D/too_many_tokens.jsonl", NULL}, 65,
     {"request 1 failed", "num_tokens_to_generate (200)"}, 1},
    {"add_bos without a BOS token", {"--prompt-file", "@D/bos.jsonl", NULL}, 65,
     {"request 1 failed", "no BOS token"}, 1},
    {"KV pool too small for one request",
     {"--prompts", "hi", "a prompt that is longer than thirty-two bytes", NULL}, 65,
     {"request 1 failed", "the whole pool has 2; raise model.kv_cache_memory"}, 1},
    {"KV pool full: the second request waits, then runs",
     {"--prompts", "a rather long prompt here", "another prompt of that size", NULL}, 0,
     {"total time"}, 2},
};
#define N_CASES (sizeof cases / sizeof cases[0])

static char *g_dir, *g_toy, *g_build, *g_fx;

static char *subst(const char *s)
{
    size_t cap = strlen(s) * 4 + 4096, o = 0;
    char *out = malloc(cap);
    for (const char *p = s; *p && o + 1024 < cap;) {
        const char *rep = NULL;
        size_t skip = 0;
        if (strncmp(p, "@TOY", 4) == 0) rep = g_toy, skip = 4;
        else if (strncmp(p, "@FX", 3) == 0) rep = g_fx, skip = 3;
        else if (strncmp(p, "@D", 2) == 0) rep = g_dir, skip = 2;
        else if (strncmp(p, "@B", 2) == 0) rep = g_build, skip = 2;
        if (rep != NULL) {
            o += (size_t)snprintf(out + o, cap - o, "%s", rep);
            p += skip;
        } else {
            out[o++] = *p++;
        }
    }
    out[o] = '\0';
    return out;
}

/* base.yaml: the shipped pipeline on the gpt2 fixture, its model section from
 * the fixture's config.yaml with the vocabulary cut to the bytes tokenizer's
 * 257 ids (the rest of the rows become padding). */
static void write_base(const char *name, const char *model_extra)
{
    char path[4200], line[512];
    snprintf(path, sizeof path, "%s/config.yaml", g_fx);
    FILE *in = fopen(path, "r");
    if (in == NULL) {
        fprintf(stderr, "test_bad_requests: cannot read %s\n", path);
        exit(1);
    }
    char *y = malloc(1 << 16);
    size_t o = 0;
    o += (size_t)snprintf(y + o, 4096,
                          "runtime:\n  plugin_dirs: [\"%s\", \"%s/plugins/engine-static\", "
                          "\"%s/plugins/controller-simple\", \"%s/plugins/sampler-default\", "
                          "\"%s/plugins/model-gpt\"]\n"
                          "engine:\n  name: static\n  max_batch_size: 2\n"
                          "controller:\n  name: simple\nsampler:\n  name: default\n"
                          "tokenizer:\n  name: bytes\n"
                          "generation:\n  num_tokens_to_generate: 4\n  prompts: [\"hello\", \"x\"]\n",
                          g_toy, g_build, g_build, g_build, g_build);
    bool in_model = false;
    while (fgets(line, sizeof line, in) != NULL) {
        if (strncmp(line, "model:", 6) == 0)
            in_model = true;
        if (!in_model || line[0] == '#')
            continue;
        if (strncmp(line, "  load:", 7) == 0)
            o += (size_t)snprintf(y + o, 4200, "  load: \"%s\"\n", g_fx);
        else if (strncmp(line, "  vocab_size:", 13) == 0)
            o += (size_t)snprintf(y + o, 256, "  vocab_size: 257\n  padded_vocab_size: 512\n");
        else if (strncmp(line, "  make_vocab_size_divisible_by:", 31) == 0)
            continue;
        else
            o += (size_t)snprintf(y + o, 600, "%s", line);
    }
    fclose(in);
    if (model_extra != NULL)
        o += (size_t)snprintf(y + o, 600, "%s", model_extra);
    free(write_file(g_dir, name, y));
    free(y);
}

START_TEST(bad_request_case)
{
    const bad_request *c = &cases[_i];
    const char *args[MAXA + 6] = {"run", NULL, "--output-format", "jsonl", NULL};
    char *own[MAXA + 2] = {0};
    char base[4200];
    bool kv = strncmp(c->name, "KV pool", 7) == 0;
    snprintf(base, sizeof base, "%s/%s", g_dir, kv ? "small_kv.yaml" : "base.yaml");
    args[1] = base;
    size_t na = 4;
    for (size_t i = 0; i < MAXA && c->args[i]; i++)
        args[na++] = own[i] = subst(c->args[i]);
    args[na] = NULL;
    const char *env[] = {"NO_COLOR=1", NULL};
    run_result r = run_mcrt(args, env, 60);
    ck_assert_msg(!r.timed_out, "[%s] mcrt hung (killed after 60 s)", c->name);
    ck_assert_msg(r.exit_code == c->exit_code, "[%s] exit code %d, expected %d\nstderr:\n%s",
                  c->name, r.exit_code, c->exit_code, r.err);
    for (size_t i = 0; i < 3 && c->expect[i]; i++)
        ck_assert_msg(strstr(r.err, c->expect[i]) != NULL, "[%s] stderr lacks \"%s\"\nstderr:\n%s",
                      c->name, c->expect[i], r.err);
    if (c->completed >= 0) {
        int n = 0;
        for (const char *p = r.out; (p = strstr(p, "\"status\": \"COMPLETED\"")) != NULL; p++)
            n++;
        ck_assert_msg(n == c->completed, "[%s] %d requests completed, expected %d\nstdout:\n%s",
                      c->name, n, c->completed, r.out);
        if (c->exit_code != 0)
            ck_assert_msg(strstr(r.out, "\"finish_reason\": \"error\"") != NULL,
                          "[%s] no request reported finish_reason error:\n%s", c->name, r.out);
    }
    const char *line = strstr(r.err, "error");
    fprintf(stderr, "%-40s exit %d: %.140s\n", c->name, r.exit_code,
            line ? line : r.err);
    run_result_free(&r);
    for (size_t i = 0; i < MAXA + 2; i++)
        free(own[i]);
}
END_TEST

int main(void)
{
    g_fx = strdup(need_env("MCRT_FIXTURE"));
    char probe[4200];
    struct stat st;
    snprintf(probe, sizeof probe, "%s/model.safetensors", g_fx);
    if (stat(probe, &st) != 0) {
        printf("SKIP: no reference fixture at %s (it needs Debian's python3-torch)\n", g_fx);
        free(g_fx);
        return 77;
    }
    g_dir = scratch_dir();
    use_isolated_exe(g_dir);
    g_toy = strdup(need_env("MCRT_TOY_DIR"));
    g_build = strdup(need_env("MCRT_BUILD_DIR"));
    snprintf(probe, sizeof probe, "%s/plugins/sampler-default/mcrt-sampler-default.so", g_build);
    if (stat(probe, &st) != 0) {
        printf("SKIP: the shipped sampler is not built (%s)\n", probe);
        return 77;
    }
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++)
        if (files[i].text != NULL)
            free(write_file(g_dir, files[i].name, files[i].text));
    write_base("base.yaml", NULL);
    /* 2 blocks of 16 tokens: a 25-byte prompt + 4 takes both, a 45-byte one never fits */
    write_base("small_kv.yaml", "  kv_block_size: 16\n  kv_num_blocks: 2\n");

    Suite *s = suite_create("bad-requests");
    TCase *tc = tcase_create("table");
    tcase_set_timeout(tc, 300);
    tcase_add_loop_test(tc, bad_request_case, 0, (int)N_CASES);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    printf("bad-requests table: %zu cases\n", N_CASES);
    free(g_dir);
    free(g_toy);
    free(g_build);
    free(g_fx);
    return failed == 0 ? 0 : 1;
}
