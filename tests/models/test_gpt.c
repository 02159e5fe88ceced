/*
 * tests/models/test_gpt.c: the model-gpt plugin against the PyTorch
 * reference fixtures (tools/reference/gpt, docs/reference-models.md).
 *
 * argv: FIXTURE_ROOT PLUGIN_DIR. FIXTURE_ROOT/<config>/<variant>/ holds
 * config.yaml, model.safetensors and expected.safetensors. Without the
 * fixtures (no python3-torch) every test is skipped (exit 77).
 *
 * Each fixture sequence s is a stream of tokens: its prompt (L_s tokens),
 * then greedy_tokens[0..31] (teacher forcing). The logits expected after the
 * token at position i are prompt_logits[s][i] for i < L_s, else
 * decode_logits[s][i - L_s]; the argmax over the real vocabulary after
 * position L_s - 1 + k must be greedy_tokens[k]. A schedule decides how many
 * of its next tokens each sequence feeds in each step (whole prompts, chunks,
 * one at a time, sequences starting at different steps), so prefill, decode,
 * chunked prefill and their mixes all run against the same numbers, through
 * the real runtime (config, registry, model group), with scattered KV blocks.
 * Tolerance: atol = 1e-4 x logit scale, from the fixture (the docs say why).
 */
#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "config/config.h"
#include "plugin/registry.h"
#include "runtime/model_group.h"
#include "runtime/standalone.h"
#include "util/log.h"

static const char *g_root;
static const char *g_plugin_dir;
static const char *g_megatron; /* Megatron checkpoints of the fixtures, or NULL */

#define NSEQ 4
#define DECODE 32

/* ---- fixtures ---------------------------------------------------------------- */

typedef struct fixture {
    char dir[1024];
    int V, Vp, B, maxlen;
    int len[NSEQ];
    int32_t *tokens;       /* [B, maxlen] */
    float *prompt_logits;  /* [B, maxlen, Vp] */
    float *decode_logits;  /* [B, DECODE, Vp] */
    int32_t *greedy;       /* [B, DECODE + 1] */
    float atol;
    int compare_cols;
} fixture;

static float *read_f32(ckpt *ck, const char *name)
{
    const ckpt_tensor *t = ckpt_find(ck, name);
    ck_assert_msg(t != NULL, "expected.safetensors lacks %s", name);
    size_t n = (size_t)t->nelem * sizeof(float);
    float *buf = malloc(n ? n : 1);
    ckpt_err e;
    ck_assert_msg(ckpt_read(ck, t, -1, 0, 0, MCRT_DTYPE_F32, buf, n, NULL, &e) == MCRT_OK, "%s",
                  e.msg);
    return buf;
}

static int32_t *read_i64_as_i32(ckpt *ck, const char *name, size_t *n_out)
{
    const ckpt_tensor *t = ckpt_find(ck, name);
    ck_assert_msg(t != NULL && t->dtype == MCRT_DTYPE_I64, "expected.safetensors: %s", name);
    int64_t *tmp = malloc((size_t)t->nbytes + 8);
    ckpt_err e;
    ck_assert_msg(ckpt_read(ck, t, -1, 0, 0, MCRT_DTYPE_I64, tmp, (size_t)t->nbytes, NULL, &e) ==
                      MCRT_OK, "%s", e.msg);
    int32_t *out = malloc(sizeof(int32_t) * (size_t)t->nelem + 4);
    for (uint64_t i = 0; i < t->nelem; i++)
        out[i] = (int32_t)tmp[i];
    free(tmp);
    if (n_out)
        *n_out = (size_t)t->nelem;
    return out;
}

static bool fixture_load(fixture *f, const char *config, const char *variant)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "%s/%s/%s", g_root, config, variant);
    char path[1200];
    snprintf(path, sizeof path, "%s/expected.safetensors", f->dir);
    ckpt *ck = NULL;
    ckpt_err e;
    if (ckpt_open(path, &ck, &e) != MCRT_OK) {
        fprintf(stderr, "%s\n", e.msg);
        return false;
    }
    f->V = atoi(ckpt_metadata(ck, "vocab_size"));
    f->Vp = atoi(ckpt_metadata(ck, "padded_vocab_size"));
    f->atol = (float)atof(ckpt_metadata(ck, "atol"));
    f->compare_cols = strcmp(ckpt_metadata(ck, "compare_columns"), "vocab_size") == 0 ? f->V
                                                                                     : f->Vp;
    size_t n = 0;
    int32_t *lens = read_i64_as_i32(ck, "prompt_lengths", &n);
    ck_assert_int_eq((int)n, NSEQ);
    f->B = NSEQ;
    for (int s = 0; s < NSEQ; s++) {
        f->len[s] = lens[s];
        if (lens[s] > f->maxlen)
            f->maxlen = lens[s];
    }
    free(lens);
    f->tokens = read_i64_as_i32(ck, "tokens", NULL);
    f->greedy = read_i64_as_i32(ck, "greedy_tokens", NULL);
    f->prompt_logits = read_f32(ck, "prompt_logits");
    f->decode_logits = read_f32(ck, "decode_logits");
    ckpt_close(ck);
    return true;
}

static void fixture_free(fixture *f)
{
    free(f->tokens);
    free(f->prompt_logits);
    free(f->decode_logits);
    free(f->greedy);
}

/* the token fed at stream position i of sequence s, and the logits expected after it */
static int32_t stream_token(const fixture *f, int s, int i)
{
    return i < f->len[s] ? f->tokens[(size_t)s * f->maxlen + i] : f->greedy[(size_t)s * (DECODE + 1) + (i - f->len[s])];
}

static const float *stream_expected(const fixture *f, int s, int i)
{
    if (i < f->len[s])
        return f->prompt_logits + ((size_t)s * f->maxlen + i) * f->Vp;
    return f->decode_logits + ((size_t)s * DECODE + (i - f->len[s])) * f->Vp;
}

/* ---- the model through the runtime -------------------------------------------- */

typedef struct loaded {
    cfg_tree *cfg;
    registry *reg;
    standalone_model *model;
    log_sink log;
    char yaml[1200];
    char err[2048];
    int exit_code;
} loaded;

static char g_log_buf[1 << 16];

/* Write FIXTURE/config.yaml with load: made absolute and `extra` lines added to
 * the model section, plus `tail` (other sections), to a temp file; build the
 * config and the model. Returns the standalone model or NULL (err filled). */
/* A model section line "  key: ..." whose key is in `keys` ("a,b,c")? */
static bool line_has_key(const char *line, const char *keys)
{
    if (keys == NULL || strncmp(line, "  ", 2) != 0)
        return false;
    const char *colon = strchr(line + 2, ':');
    if (colon == NULL)
        return false;
    size_t kl = (size_t)(colon - line - 2);
    for (const char *k = keys; *k;) {
        const char *e = strchr(k, ',');
        size_t n = e ? (size_t)(e - k) : strlen(k);
        if (n == kl && strncmp(k, line + 2, kl) == 0)
            return true;
        k += n + (e ? 1 : 0);
    }
    return false;
}

static standalone_model *load_model_from(loaded *L, const char *dir, const char *load,
                                         const char *drop, const char *extra, const char *tail)
{
    memset(L, 0, sizeof *L);
    char src[1200];
    snprintf(src, sizeof src, "%s/config.yaml", dir);
    FILE *in = fopen(src, "r");
    ck_assert_msg(in != NULL, "cannot open %s", src);
    snprintf(L->yaml, sizeof L->yaml, "/tmp/mcrt-test-gpt-%d-XXXXXX", (int)getpid());
    int fd = mkstemp(L->yaml);
    ck_assert(fd >= 0);
    FILE *out = fdopen(fd, "w");
    char line[512];
    while (fgets(line, sizeof line, in) != NULL) {
        if (strncmp(line, "  load: ", 8) == 0)
            fprintf(out, "  load: %s\n", load);
        else if (!line_has_key(line, drop))
            fputs(line, out);
    }
    fclose(in);
    if (extra != NULL)
        fputs(extra, out);
    if (tail != NULL)
        fputs(tail, out);
    fclose(out);

    L->cfg = cfg_tree_create();
    char *argv[] = {(char *)"run", L->yaml, NULL};
    char *envp[] = {NULL};
    cfg_diag d;
    memset(&d, 0, sizeof d);
    if (cfg_build(L->cfg, 2, argv, envp, &d) != 0 || cfg_validate_core(L->cfg, &d) != 0) {
        snprintf(L->err, sizeof L->err, "%s", d.msg);
        return NULL;
    }
    FILE *logf = fmemopen(g_log_buf, sizeof g_log_buf, "w");
    setvbuf(logf, NULL, _IONBF, 0);
    log_sink_init(&L->log, logf, MCRT_LOG_INFO);
    L->reg = registry_create(&L->log, NULL);
    char e2[1024];
    int code = 0;
    ck_assert_msg(registry_add_dir(L->reg, g_plugin_dir, DIR_FLAG, true, e2, sizeof e2, &code) ==
                      0, "%s", e2);
    L->model = standalone_model_create(L->cfg, L->reg, &L->log, L->err, sizeof L->err,
                                       &L->exit_code);
    return L->model;
}

static standalone_model *load_model(loaded *L, const char *dir, const char *extra,
                                    const char *tail)
{
    return load_model_from(L, dir, dir, NULL, extra, tail);
}

static void unload(loaded *L)
{
    standalone_model_destroy(L->model);
    registry_destroy(L->reg);
    cfg_tree_destroy(L->cfg);
    if (L->log.out != NULL)
        fclose(L->log.out);
    unlink(L->yaml);
}

/* ---- schedules ------------------------------------------------------------------ */

typedef enum sched_kind {
    SCHED_ALONE,   /* one sequence after another: whole prompt, then one token a step */
    SCHED_BATCHED, /* all four at once: whole prompts in one step, then 4 tokens a step */
    SCHED_CHUNKED  /* all four, prompts in chunks, sequence s joining at step 2s: mixed steps */
} sched_kind;

typedef struct scenario {
    const char *name;
    sched_kind sched;
    int chunk;          /* SCHED_CHUNKED: prompt tokens per step */
    bool sparse;        /* logits only for some tokens */
    const char *extra;  /* model section lines */
    const char *tail;   /* other sections */
    bool portable;      /* MCRT_KERNELS_ISA=portable */
} scenario;

static const scenario SCENARIOS[] = {
    {"alone, block 16", SCHED_ALONE, 0, false, NULL, NULL, false},
    {"batched, block 3", SCHED_BATCHED, 0, false, "  kv_block_size: 3\n", NULL, false},
    {"chunked 7 + mixed decode, block 5, sparse logits", SCHED_CHUNKED, 7, true,
     "  kv_block_size: 5\n", NULL, false},
    {"chunked 1 (all decode), block 1, reference kernels", SCHED_CHUNKED, 1, false,
     "  kv_block_size: 1\n  kernels: reference\n", NULL, false},
    {"batched, 1 thread, portable loops", SCHED_BATCHED, 0, false, NULL, "runtime:\n  threads: 1\n",
     true},
    {"chunked 11, one pipeline stage per layer", SCHED_CHUNKED, 11, false, "  kv_block_size: 8\n",
     "parallel:\n  pipeline_model_parallel_size: PP\n", false},
};
#define N_SCENARIOS ((int)(sizeof SCENARIOS / sizeof SCENARIOS[0]))

static const struct {
    const char *config, *variant;
} FIXTURES[] = {
    {"gpt2", "fp32"}, {"gpt2", "bf16"}, {"gpt2", "fp16"}, {"gpt2", "hf"},
    {"llama", "fp32"}, {"llama", "bf16"}, {"llama", "fp16"},
    {"rope_interleaved_qkln", "fp32"}, {"gelu_erf", "fp32"}, {"kv_channels", "fp32"},
    {"squared_relu", "fp32"},
};
#define N_FIXTURES ((int)(sizeof FIXTURES / sizeof FIXTURES[0]))

static int num_layers_of(const char *dir)
{
    char p[1200], line[256];
    snprintf(p, sizeof p, "%s/config.yaml", dir);
    FILE *f = fopen(p, "r");
    int n = 0;
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "  num_layers: %d", &n) == 1)
            break;
    if (f != NULL)
        fclose(f);
    if (n > 0)
        return n;
    snprintf(p, sizeof p, "%s/config.json", dir); /* hf: the layers are in config.json */
    f = fopen(p, "r");
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, " \"n_layer\": %d", &n) == 1)
            break;
    if (f != NULL)
        fclose(f);
    return n > 0 ? n : 1;
}

/* Whether the fixture wants logits after stream position i of sequence s. */
static bool want(const fixture *f, const scenario *sc, int s, int i)
{
    if (!sc->sparse)
        return true;
    return i >= f->len[s] - 1 || i % 3 == 0;
}

/* Megatron checkpoints of the fixtures (tools/reference/megatron_ckpt): the
 * model loaded from the merged shards must give the fixture's logits. `drop`
 * lists model-section keys left out (so the checkpoint's args decide, with
 * use_checkpoint_args in `extra`). */
typedef struct megatron_case {
    const char *ckpt, *config, *variant;
    const char *drop;  /* keys of the fixture's model section left out */
    const char *extra; /* lines added */
} megatron_case;

#define ALL_HP "hidden_size,num_layers,num_attention_heads,group_query_attention,"            \
               "num_query_groups,kv_channels,ffn_hidden_size,normalization,"                 \
               "position_embedding_type,rotary_percent,rotary_base,rotary_interleaved,"      \
               "max_position_embeddings,activation,add_bias_linear,add_qkv_bias,"            \
               "untie_embeddings_and_output_weights,padded_vocab_size,"                      \
               "make_vocab_size_divisible_by"
#define USE_ARGS "  use_checkpoint_args: true\n"

static const megatron_case MEGATRON[] = {
    {"gpt2_te_tp2_pp2_uneven", "gpt2", "fp32", NULL, NULL},
    {"gpt2_te_tp2_pp2_uneven", "gpt2", "fp32", ALL_HP, USE_ARGS},
    {"llama_local_tp2_pp2", "llama", "fp32", NULL, NULL},
    {"llama_local_tp2_pp2", "llama", "fp32", ALL_HP, USE_ARGS "  activation: swiglu\n"},
    {"llama_local_tp2_pp1_bf16", "llama", "bf16", NULL, NULL},
    {"kv_channels_te_tp2_pp2", "kv_channels", "fp32", ALL_HP, USE_ARGS},
    {"gelu_erf_te_tp2_pp1_vp512", "gelu_erf", "fp32", "padded_vocab_size", USE_ARGS},
    {"legacy_gpt2_v0_tp2", "gpt2", "fp32", ALL_HP, USE_ARGS},
    {"legacy_gpt2_v1_tp2", "gpt2", "fp32", NULL, NULL},
    {"legacy_gpt2_v3_oldnames_tp2", "gpt2", "fp32", NULL, NULL},
    {"dist_llama_local_tp2_pp2", "llama", "fp32", ALL_HP, USE_ARGS "  activation: swiglu\n"},
    {"dist_gpt2_te_tp2_pp2_uneven", "gpt2", "fp32", NULL, NULL},
    {"dist_kv_channels_local_tp1_pp1", "kv_channels", "fp32", ALL_HP, USE_ARGS},
};
#define N_MEGATRON ((int)(sizeof MEGATRON / sizeof MEGATRON[0]))

static void run_case(const char *config, const char *variant, const megatron_case *mc, int si)
{
    fixture f;
    const scenario *sc = &SCENARIOS[si];
    if (!fixture_load(&f, config, variant)) {
        ck_abort_msg("cannot load the fixture %s/%s", config, variant);
        return;
    }
    char tail[256] = "";
    if (sc->tail != NULL) {
        const char *pp = strstr(sc->tail, "PP");
        if (pp != NULL)
            snprintf(tail, sizeof tail, "%.*s%d\n", (int)(pp - sc->tail), sc->tail,
                     num_layers_of(f.dir));
        else
            snprintf(tail, sizeof tail, "%s", sc->tail);
    }
    if (sc->portable)
        setenv("MCRT_KERNELS_ISA", "portable", 1);
    loaded L;
    char load[1400], extra[1024];
    snprintf(load, sizeof load, "%s/%s", mc != NULL ? g_megatron : f.dir,
             mc != NULL ? mc->ckpt : "");
    if (mc == NULL)
        snprintf(load, sizeof load, "%s", f.dir);
    snprintf(extra, sizeof extra, "%s%s", sc->extra ? sc->extra : "",
             mc != NULL && mc->extra ? mc->extra : "");
    standalone_model *sm = load_model_from(&L, f.dir, load, mc ? mc->drop : NULL,
                                           extra[0] ? extra : NULL, tail[0] ? tail : NULL);
    unsetenv("MCRT_KERNELS_ISA");
    ck_assert_msg(sm != NULL, "%s/%s [%s] %s: %s\n%s", config, variant, sc->name,
                  mc ? mc->ckpt : "", L.err, g_log_buf);
    const mcrt_model_info *mi = model_group_info(sm->group);
    ck_assert_int_eq(mi->vocab_size, f.V);
    int mVp = mi->padded_vocab_size; /* a checkpoint saved at another TP may pad more (§2.6) */
    if (mc == NULL)
        ck_assert_int_eq(mVp, f.Vp);
    else
        ck_assert_int_ge(mVp, f.Vp);
    int BS = mi->kv_block_size;
    /* issue 6: a loaded Megatron checkpoint within 1e-5 of the reference */
    float atol = mc != NULL && f.atol > 1e-5f ? 1e-5f : f.atol;

    /* blocks: sequence s's j-th block is a scattered id, distinct across sequences */
    int total[NSEQ], nblk[NSEQ];
    int32_t *tables[NSEQ];
    int next_id = 0, NB = mi->kv_num_blocks;
    for (int s = 0; s < NSEQ; s++) {
        total[s] = f.len[s] + DECODE;
        nblk[s] = (total[s] + BS - 1) / BS;
        tables[s] = malloc(sizeof(int32_t) * (size_t)nblk[s]);
    }
    int need = 0;
    for (int s = 0; s < NSEQ; s++)
        need += nblk[s];
    ck_assert_msg(need <= NB, "pool of %d blocks < %d needed", NB, need);
    /* interleave: round-robin over sequences, reversed ids */
    for (int j = 0; next_id < need; j++)
        for (int s = 0; s < NSEQ; s++)
            if (j < nblk[s])
                tables[s][j] = NB - 1 - next_id++;

    int done[NSEQ] = {0};
    int32_t *tok = malloc(sizeof(int32_t) * 512), *pos = malloc(sizeof(int32_t) * 512);
    int32_t *seq = malloc(sizeof(int32_t) * 512), ctx_len[NSEQ], nb_arr[NSEQ];
    uint8_t *wl = malloc(512);
    const int32_t *tbl[NSEQ];
    int who[512], at[512];
    float *logits = malloc(sizeof(float) * (size_t)512 * (size_t)mVp);
    float worst = 0;
    int step = 0, checked = 0;
    for (;;) {
        /* choose this step's tokens */
        int T = 0, S = 0, NL = 0;
        int seq_slot[NSEQ];
        for (int s = 0; s < NSEQ; s++) {
            seq_slot[s] = -1;
            if (done[s] >= total[s])
                continue;
            int n = 0;
            if (sc->sched == SCHED_ALONE) {
                bool earlier_busy = false;
                for (int e = 0; e < s; e++)
                    earlier_busy |= done[e] < total[e];
                if (earlier_busy)
                    continue;
                n = done[s] < f.len[s] ? f.len[s] : 1;
            } else if (sc->sched == SCHED_BATCHED) {
                n = done[s] < f.len[s] ? f.len[s] : 1;
            } else {
                if (step < 2 * s)
                    continue;
                n = done[s] < f.len[s] ? sc->chunk : 1;
                if (done[s] < f.len[s] && done[s] + n > f.len[s])
                    n = f.len[s] - done[s];
            }
            if (sc->sched == SCHED_ALONE && S > 0)
                continue;
            seq_slot[s] = S;
            ctx_len[S] = done[s];
            tbl[S] = tables[s];
            nb_arr[S] = nblk[s];
            for (int k = 0; k < n; k++) {
                int i = done[s] + k;
                tok[T] = stream_token(&f, s, i);
                pos[T] = i;
                seq[T] = S;
                wl[T] = want(&f, sc, s, i);
                if (wl[T]) {
                    who[NL] = s;
                    at[NL] = i;
                    NL++;
                }
                T++;
            }
            S++;
        }
        if (T == 0)
            break;
        mcrt_step_batch b;
        memset(&b, 0, sizeof b);
        b.struct_size = (uint32_t)sizeof b;
        b.n_tokens = (uint32_t)T;
        b.n_seqs = (uint32_t)S;
        b.n_logits = (uint32_t)NL;
        b.tokens = tok;
        b.positions = pos;
        b.seq_index = seq;
        b.want_logits = wl;
        b.context_len = ctx_len;
        b.block_tables = tbl;
        b.n_blocks = nb_arr;
        mcrt_status st = model_group_step(sm->group, &b, logits);
        ck_assert_msg(st == MCRT_OK, "%s/%s [%s] step %d: %s\n%s", config, variant, sc->name,
                      step, mcrt_status_str(st), g_log_buf);
        for (int r = 0; r < NL; r++) {
            const float *got = logits + (size_t)r * mVp, *exp = stream_expected(&f, who[r], at[r]);
            float md = 0;
            int amax = 0;
            for (int j = 0; j < f.compare_cols; j++) {
                float d = fabsf(got[j] - exp[j]);
                if (!(d <= md))
                    md = d;
            }
            for (int j = 1; j < f.V; j++)
                if (got[j] > got[amax])
                    amax = j;
            ck_assert_msg(md <= atol, "%s/%s [%s] %s: sequence %d position %d: max |error| %g "
                          "> atol %g", config, variant, sc->name, mc ? mc->ckpt : "", who[r],
                          at[r], (double)md, (double)atol);
            if (at[r] >= f.len[who[r]] - 1) {
                int k = at[r] - (f.len[who[r]] - 1);
                ck_assert_msg(amax == f.greedy[(size_t)who[r] * (DECODE + 1) + k],
                              "%s/%s [%s]: sequence %d greedy step %d: argmax %d, reference %d",
                              config, variant, sc->name, who[r], k,
                              amax, f.greedy[(size_t)who[r] * (DECODE + 1) + k]);
            }
            if (md > worst)
                worst = md;
            checked++;
        }
        for (int s = 0; s < NSEQ; s++)
            if (seq_slot[s] >= 0) {
                int n = 0;
                for (int t = 0; t < T; t++)
                    n += seq[t] == seq_slot[s];
                done[s] += n;
            }
        step++;
    }
    fprintf(stderr, "%-22s %-4s %-52s %3d steps, %4d rows, max |error| %.3g (atol %.3g)%s%s\n",
            config, variant, sc->name, step, checked, (double)worst, (double)atol,
            mc ? " from Megatron " : "", mc ? mc->ckpt : "");
    for (int s = 0; s < NSEQ; s++)
        free(tables[s]);
    free(tok);
    free(pos);
    free(seq);
    free(wl);
    free(logits);
    unload(&L);
    fixture_free(&f);
}

START_TEST(test_reference)
{
    run_case(FIXTURES[_i / N_SCENARIOS].config, FIXTURES[_i / N_SCENARIOS].variant, NULL,
             _i % N_SCENARIOS);
}
END_TEST

/* Megatron checkpoints the model must refuse, with the log naming the file. */
static const struct {
    const char *ckpt, *config, *extra, *expect;
} BAD_MEGATRON[] = {
    {"bad_wrong_shape", "gpt2", NULL,
     "tensor 'decoder.layers.1.self_attention.linear_qkv.weight' has shape [176, 64]; the "
     "config needs [192, 64]"},
    {"bad_wrong_shape", "gpt2", USE_ARGS, "has shape [176, 64]"},
    {"bad_pickle_os_system", "gpt2", NULL, "global 'os.system' is not allowed"},
    {"gpt2_te_tp2_pp1", "gpt2", "  ckpt_step: 7\n", "iter_0000007 does not exist"},
    /* the args say 3 layers and 64 wide; a forced key contradicting them
     * would be replaced, so contradict a fill key and keep it */
    {"gpt2_te_tp2_pp1", "gpt2", USE_ARGS "  hidden_size: 32\n", "has shape"},
};
#define N_BAD_MEGATRON ((int)(sizeof BAD_MEGATRON / sizeof BAD_MEGATRON[0]))

START_TEST(test_bad_megatron)
{
    char fdir[1024], load[1400];
    snprintf(fdir, sizeof fdir, "%s/%s/fp32", g_root, BAD_MEGATRON[_i].config);
    snprintf(load, sizeof load, "%s/%s", g_megatron, BAD_MEGATRON[_i].ckpt);
    const char *drop = strstr(BAD_MEGATRON[_i].extra ? BAD_MEGATRON[_i].extra : "",
                              "hidden_size") ? "hidden_size" : NULL;
    unlink("/tmp/mcrt-megatron-ckpt-pickle-was-executed");
    loaded L;
    standalone_model *sm = load_model_from(&L, fdir, load, drop, BAD_MEGATRON[_i].extra, NULL);
    ck_assert_msg(sm == NULL, "%s: the model was created", BAD_MEGATRON[_i].ckpt);
    ck_assert_msg(strstr(g_log_buf, BAD_MEGATRON[_i].expect) != NULL,
                  "%s: the log does not say \"%s\":\n%s", BAD_MEGATRON[_i].ckpt,
                  BAD_MEGATRON[_i].expect, g_log_buf);
    ck_assert_msg(strstr(g_log_buf, BAD_MEGATRON[_i].ckpt) != NULL,
                  "%s: the log does not name the checkpoint:\n%s", BAD_MEGATRON[_i].ckpt,
                  g_log_buf);
    ck_assert(access("/tmp/mcrt-megatron-ckpt-pickle-was-executed", F_OK) != 0);
    unload(&L);
}
END_TEST

START_TEST(test_megatron)
{
    const megatron_case *mc = &MEGATRON[_i];
    char probe[1400];
    struct stat st;
    snprintf(probe, sizeof probe, "%s/%s", g_megatron, mc->ckpt);
    ck_assert_msg(stat(probe, &st) == 0, "no Megatron checkpoint %s", probe);
    run_case(mc->config, mc->variant, mc, 2); /* chunked prefill, mixed decode, sparse logits */
}
END_TEST

/* ---- bad input ------------------------------------------------------------------- */

typedef struct bad_config {
    const char *what;
    const char *fixture;   /* config/variant */
    const char *extra;     /* model lines added (a later key wins? no: duplicates are errors) */
    const char *replace;   /* "key: value" replacing that key's line, or NULL */
    const char *expect;    /* substring of the error log */
} bad_config;

static const bad_config BAD_CONFIGS[] = {
    {"heads do not divide hidden", "gpt2/fp32", NULL, "num_attention_heads: 5",
     "does not divide hidden_size"},
    {"groups do not divide heads", "llama/fp32", NULL, "num_query_groups: 3",
     "does not divide num_attention_heads"},
    {"hidden size does not match the weights", "gpt2/fp32", NULL, "hidden_size: 32",
     "has shape [512, 64]; the config needs [512, 32]"},
    {"more layers than the file", "gpt2/fp32", NULL, "num_layers: 4",
     "missing tensor 'decoder.layers.3."},
    {"fewer layers than the file", "gpt2/fp32", NULL, "num_layers: 2",
     "tensors the config does not use, first 'decoder.layers.2."},
    {"vocabulary larger than the padded rows", "gpt2/fp32", NULL, "vocab_size: 600",
     "the config needs [640, 64]"},
    {"qk_layernorm without its weights", "gpt2/fp32", "  qk_layernorm: true\n", NULL,
     "missing tensor 'decoder.layers.0.self_attention.q_layernorm.weight'"},
    {"RMSNorm on LayerNorm weights (biases left over)", "gpt2/fp32", NULL,
     "normalization: RMSNorm", "the config does not use"},
    {"KV cache memory too small", "gpt2/fp32", "  kv_cache_memory: 1KiB\n", NULL,
     "holds no KV block"},
    {"kv_cache_memory not a size", "gpt2/fp32", "  kv_cache_memory: lots\n", NULL,
     "expected auto, or a size"},
    {"rotary dim odd", "llama/fp32", NULL, "rotary_percent: 0.2", "needs an even number"},
    {"learned positions without a table size", "gpt2/fp32", NULL,
     "max_position_embeddings: 64", "has shape [128, 64]; the config needs [64, 64]"},
    {"pipeline stages do not divide layers", "gpt2/fp32", NULL, NULL, "does not divide num_layers"},
};
#define N_BAD_CONFIGS ((int)(sizeof BAD_CONFIGS / sizeof BAD_CONFIGS[0]))

/* A copy of a fixture dir's config.yaml with one key replaced, in a temp dir
 * that links the fixture's model.safetensors. Returns the dir. */
static void make_variant_dir(char *dir, size_t n, const char *fixture_dir, const char *replace)
{
    snprintf(dir, n, "/tmp/mcrt-test-gpt-bad-%d-XXXXXX", (int)getpid());
    ck_assert(mkdtemp(dir) != NULL);
    char src[1200], dst[1200], line[512];
    snprintf(src, sizeof src, "%s/model.safetensors", fixture_dir);
    snprintf(dst, sizeof dst, "%s/model.safetensors", dir);
    ck_assert(symlink(src, dst) == 0);
    snprintf(src, sizeof src, "%s/config.yaml", fixture_dir);
    snprintf(dst, sizeof dst, "%s/config.yaml", dir);
    FILE *in = fopen(src, "r"), *out = fopen(dst, "w");
    ck_assert(in != NULL && out != NULL);
    size_t kl = replace ? (size_t)(strchr(replace, ':') - replace) : 0;
    while (fgets(line, sizeof line, in) != NULL) {
        if (replace != NULL && strncmp(line + 2, replace, kl) == 0 && line[2 + kl] == ':')
            fprintf(out, "  %s\n", replace);
        else
            fputs(line, out);
    }
    fclose(in);
    fclose(out);
}

static void remove_variant_dir(const char *dir)
{
    char p[1200];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    unlink(p);
    snprintf(p, sizeof p, "%s/config.yaml", dir);
    unlink(p);
    rmdir(dir);
}

START_TEST(test_bad_config)
{
    const bad_config *bc = &BAD_CONFIGS[_i];
    char fdir[1024], vdir[1024];
    snprintf(fdir, sizeof fdir, "%s/%s", g_root, bc->fixture);
    make_variant_dir(vdir, sizeof vdir, fdir, bc->replace);
    loaded L;
    const char *tail = strstr(bc->what, "pipeline") ? "parallel:\n  pipeline_model_parallel_size: 2\n"
                                                    : NULL;
    standalone_model *sm = load_model(&L, vdir, bc->extra, tail);
    ck_assert_msg(sm == NULL, "[%s] the model was created", bc->what);
    ck_assert_msg(strstr(g_log_buf, bc->expect) != NULL || strstr(L.err, bc->expect) != NULL,
                  "[%s] the error does not say \"%s\":\n%s\n%s", bc->what, bc->expect, L.err,
                  g_log_buf);
    fprintf(stderr, "bad config %-48s -> %s", bc->what, strrchr(g_log_buf, ']') ?
            strrchr(g_log_buf, ']') + 1 : g_log_buf);
    unload(&L);
    remove_variant_dir(vdir);
}
END_TEST

/* Bad steps: each is refused with MCRT_E_INVAL and a message, and the model
 * keeps working (a good step afterwards gives the reference logits). */
typedef struct bad_step {
    const char *what;
    int token;        /* token id fed (-1: the fixture's) */
    int ctx;          /* context_len of the sequence */
    int n_blocks;     /* blocks given */
    int block0;       /* first block id (-1: 0) */
    const char *expect;
} bad_step;

static const bad_step BAD_STEPS[] = {
    {"token id = vocab_size", 457, 0, 1, -1, "outside the vocabulary [0, 457)"},
    {"negative token id", -5, 0, 1, -1, "outside the vocabulary"},
    {"position = max_sequence_length", -1, 128, 9, -1, "past the model's max_sequence_length 128"},
    {"no KV block for the position", -1, 16, 1, -1, "do not hold its 17 positions"},
    {"block id outside the pool", -1, 0, 1, 1 << 30, "outside the pool"},
};
#define N_BAD_STEPS ((int)(sizeof BAD_STEPS / sizeof BAD_STEPS[0]))

START_TEST(test_bad_step)
{
    const bad_step *bs = &BAD_STEPS[_i];
    fixture f;
    ck_assert(fixture_load(&f, "gpt2", "fp32"));
    loaded L;
    standalone_model *sm = load_model(&L, f.dir, NULL, NULL);
    ck_assert_msg(sm != NULL, "%s\n%s", L.err, g_log_buf);
    int32_t table[16];
    for (int i = 0; i < 16; i++)
        table[i] = i;
    if (bs->block0 >= 0)
        table[0] = bs->block0;
    int32_t tok = bs->token >= 0 || bs->token < -1 ? bs->token : stream_token(&f, 0, 0);
    int32_t pos = bs->ctx, seq = 0, ctx = bs->ctx, nb = bs->n_blocks;
    uint8_t wl = 1;
    const int32_t *tbl = table;
    mcrt_step_batch b = {(uint32_t)sizeof b, 1, 1, 1, &tok, &pos, &seq, &wl, &ctx, &tbl, &nb};
    float *logits = malloc(sizeof(float) * (size_t)f.Vp);
    mcrt_status st = model_group_step(sm->group, &b, logits);
    ck_assert_msg(st == MCRT_E_INVAL, "[%s] step returned %s", bs->what, mcrt_status_str(st));
    ck_assert_msg(strstr(g_log_buf, bs->expect) != NULL, "[%s] the log does not say \"%s\":\n%s",
                  bs->what, bs->expect, g_log_buf);
    fprintf(stderr, "bad step %-34s -> %s", bs->what, strrchr(g_log_buf, ']') ?
            strrchr(g_log_buf, ']') + 1 : g_log_buf);
    /* still works: sequence 0's first token alone */
    for (int i = 0; i < 16; i++)
        table[i] = i;
    tok = stream_token(&f, 0, 0);
    pos = ctx = 0;
    nb = 1;
    ck_assert_int_eq(model_group_step(sm->group, &b, logits), MCRT_OK);
    const float *exp = stream_expected(&f, 0, 0);
    for (int j = 0; j < f.Vp; j++)
        ck_assert_msg(fabsf(logits[j] - exp[j]) <= f.atol, "after a refused step: column %d", j);
    free(logits);
    unload(&L);
    fixture_free(&f);
}
END_TEST

/* Weights files that are wrong: written here from the fixture's tensors. */
typedef struct bad_weights {
    const char *what;
    const char *drop;     /* tensor left out */
    const char *reshape;  /* tensor given a wrong shape ([n] of the same bytes) */
    const char *retype;   /* tensor stored as I32 */
    const char *dup;      /* also written under its local spelling */
    const char *expect;
} bad_weights;

static const bad_weights BAD_WEIGHTS[] = {
    {"missing tensor", "decoder.layers.1.mlp.linear_fc2.weight", NULL, NULL, NULL,
     "missing tensor 'decoder.layers.1.mlp.linear_fc2.weight'"},
    {"wrong shape", NULL, "decoder.layers.0.self_attention.linear_proj.weight", NULL, NULL,
     "'decoder.layers.0.self_attention.linear_proj.weight' has shape [4096]"},
    {"dtype mismatch", NULL, NULL, "decoder.layers.2.mlp.linear_fc1.weight", NULL,
     "is I32; weights must be F32, BF16 or F16"},
    {"both spellings", NULL, NULL, NULL, "decoder.layers.0.self_attention.linear_qkv.layer_norm_weight",
     "is there twice"},
};
#define N_BAD_WEIGHTS ((int)(sizeof BAD_WEIGHTS / sizeof BAD_WEIGHTS[0]))

static void write_bad_weights(const char *dir, const char *fixture_dir, const bad_weights *bw)
{
    char path[1200];
    snprintf(path, sizeof path, "%s/model.safetensors", fixture_dir);
    ckpt *ck = NULL;
    ckpt_err e;
    ck_assert_msg(ckpt_open(path, &ck, &e) == MCRT_OK, "%s", e.msg);
    /* header */
    size_t cap = 1 << 16, hl = 0, off = 0;
    char *hdr = malloc(cap);
    hl += (size_t)snprintf(hdr + hl, cap - hl, "{");
    size_t n = ckpt_count(ck);
    const ckpt_tensor *order[256];
    const char *names[256];
    size_t nn = 0;
    for (size_t i = 0; i < n && nn < 250; i++) {
        const ckpt_tensor *t = ckpt_at(ck, i);
        if (bw->drop && strcmp(t->name, bw->drop) == 0)
            continue;
        order[nn] = t;
        names[nn++] = t->name;
        if (bw->dup && strcmp(t->name, bw->dup) == 0) {
            order[nn] = t;
            names[nn++] = "decoder.layers.0.input_layernorm.weight";
        }
    }
    for (size_t i = 0; i < nn; i++) {
        const ckpt_tensor *t = order[i];
        const char *dt = ckpt_dtype_name(t->dtype);
        if (bw->retype && strcmp(names[i], bw->retype) == 0)
            dt = "I32";
        char shape[128];
        if (bw->reshape && strcmp(names[i], bw->reshape) == 0)
            snprintf(shape, sizeof shape, "[%llu]", (unsigned long long)t->nelem);
        else {
            size_t o = (size_t)snprintf(shape, sizeof shape, "[");
            for (int d = 0; d < t->ndim; d++)
                o += (size_t)snprintf(shape + o, sizeof shape - o, "%s%lld", d ? "," : "",
                                      (long long)t->shape[d]);
            snprintf(shape + o, sizeof shape - o, "]");
        }
        hl += (size_t)snprintf(hdr + hl, cap - hl,
                               "%s\"%s\":{\"dtype\":\"%s\",\"shape\":%s,\"data_offsets\":[%zu,%zu]}",
                               i ? "," : "", names[i], dt, shape, off,
                               off + (size_t)t->nbytes);
        off += (size_t)t->nbytes;
    }
    hl += (size_t)snprintf(hdr + hl, cap - hl, "}");
    while (hl % 8)
        hdr[hl++] = ' ';
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *out = fopen(path, "wb");
    uint64_t h64 = hl;
    unsigned char le[8];
    for (int i = 0; i < 8; i++)
        le[i] = (unsigned char)(h64 >> (8 * i));
    fwrite(le, 1, 8, out);
    fwrite(hdr, 1, hl, out);
    for (size_t i = 0; i < nn; i++) {
        const void *data = NULL;
        ck_assert(ckpt_view(ck, order[i], &data, &e) == MCRT_OK);
        fwrite(data, 1, (size_t)order[i]->nbytes, out);
    }
    fclose(out);
    free(hdr);
    ckpt_close(ck);
}

START_TEST(test_bad_weights)
{
    const bad_weights *bw = &BAD_WEIGHTS[_i];
    char fdir[1024], vdir[1024];
    snprintf(fdir, sizeof fdir, "%s/gpt2/fp32", g_root);
    make_variant_dir(vdir, sizeof vdir, fdir, NULL);
    char p[1200];
    snprintf(p, sizeof p, "%s/model.safetensors", vdir);
    unlink(p);
    write_bad_weights(vdir, fdir, bw);
    loaded L;
    standalone_model *sm = load_model(&L, vdir, NULL, NULL);
    ck_assert_msg(sm == NULL, "[%s] the model was created", bw->what);
    ck_assert_msg(strstr(g_log_buf, bw->expect) != NULL, "[%s] the log does not say \"%s\":\n%s",
                  bw->what, bw->expect, g_log_buf);
    ck_assert_msg(strstr(g_log_buf, vdir) != NULL, "[%s] the log does not name the checkpoint",
                  bw->what);
    fprintf(stderr, "bad weights %-16s -> %s", bw->what, strrchr(g_log_buf, ']') ?
            strrchr(g_log_buf, ']') + 1 : g_log_buf);
    unload(&L);
    remove_variant_dir(vdir);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: test_gpt FIXTURE_ROOT PLUGIN_DIR\n");
        return 2;
    }
    static char root[PATH_MAX], plugins[PATH_MAX];
    if (realpath(argv[1], root) == NULL || realpath(argv[2], plugins) == NULL) {
        printf("SKIP: no reference fixtures in %s (they need Debian's python3-torch)\n", argv[1]);
        return 77;
    }
    g_root = root;
    g_plugin_dir = plugins;
    char probe[PATH_MAX + 64];
    struct stat st;
    snprintf(probe, sizeof probe, "%s/gpt2/fp32/expected.safetensors", g_root);
    if (stat(probe, &st) != 0) {
        printf("SKIP: no reference fixtures in %s (they need Debian's python3-torch)\n", g_root);
        return 77;
    }
    Suite *s = suite_create("model-gpt");
    TCase *tc = tcase_create("reference");
    tcase_set_timeout(tc, 600);
    tcase_add_loop_test(tc, test_reference, 0, N_FIXTURES * N_SCENARIOS);
    suite_add_tcase(s, tc);
    static char megatron[PATH_MAX];
    if (argc > 3 && realpath(argv[3], megatron) != NULL) {
        snprintf(probe, sizeof probe, "%s/gpt2_te_tp1_pp1", megatron);
        if (stat(probe, &st) == 0) {
            g_megatron = megatron;
            TCase *tm = tcase_create("megatron");
            tcase_set_timeout(tm, 600);
            tcase_add_loop_test(tm, test_megatron, 0, N_MEGATRON);
            tcase_add_loop_test(tm, test_bad_megatron, 0, N_BAD_MEGATRON);
            suite_add_tcase(s, tm);
        }
    }
    if (g_megatron == NULL)
        printf("note: no Megatron checkpoints given; the megatron cases are not run\n");
    TCase *tb = tcase_create("bad-input");
    tcase_set_timeout(tb, 120);
    tcase_add_loop_test(tb, test_bad_config, 0, N_BAD_CONFIGS);
    tcase_add_loop_test(tb, test_bad_step, 0, N_BAD_STEPS);
    tcase_add_loop_test(tb, test_bad_weights, 0, N_BAD_WEIGHTS);
    suite_add_tcase(s, tb);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
