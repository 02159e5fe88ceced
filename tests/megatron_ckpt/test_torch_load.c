/*
 * tests/megatron_ckpt/test_torch_load.c: the Megatron `torch` format loader
 * (core/checkpoint/megatron_torch.c) against the checkpoints that
 * tools/reference/megatron_ckpt writes with torch.save.
 *
 *   test_torch_load CKPTS FIXTURES
 *
 * Each good case is opened as a --load folder (tracker), as its iteration
 * folder, and at --ckpt-step 100, and every tensor of the reference fixture
 * it was saved from (FIXTURES/<config>/<variant>/model.safetensors, local
 * names mapped to TE) must come back bit for bit: the merge of TP/PP
 * shards, the legacy QKV orders, the renames. Nothing else may appear but
 * the tied output copy of PP > 1 and padding rows (which must replicate the
 * last real row, §3.4). Args and metadata are checked against
 * expected.json's values. Bad cases fail with the expected status and a
 * message naming the file. Exits 77 when the fixtures were not made.
 */
#include <check.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "checkpoint/megatron.h"
#include "commands/convert.h"

static char g_ckpts[PATH_MAX], g_fixtures[PATH_MAX];

typedef struct good_case {
    const char *name, *fixture;
    int tp, pp;
    const char *layers_per_stage;
    double version;
    bool tied_copy; /* output_layer.weight present though tied (PP > 1 last stage) */
    int vp;         /* padded rows in the checkpoint (0: the fixture's) */
} good_case;

static const good_case GOOD[] = {
    {"gpt2_te_tp1_pp1", "gpt2/fp32", 1, 1, "3", 3.0, false, 0},
    {"gpt2_te_tp2_pp1", "gpt2/fp32", 2, 1, "3", 3.0, false, 0},
    {"gpt2_te_tp4_pp1", "gpt2/fp32", 4, 1, "3", 3.0, false, 0},
    {"gpt2_local_tp2_pp1", "gpt2/fp32", 2, 1, "3", 3.0, false, 0},
    {"gpt2_te_tp2_pp2_uneven", "gpt2/fp32", 2, 2, "2,1", 3.0, true, 0},
    {"llama_local_tp1_pp1", "llama/fp32", 1, 1, "2", 3.0, false, 0},
    {"llama_local_tp2_pp1", "llama/fp32", 2, 1, "2", 3.0, false, 0},
    {"llama_local_tp1_pp2", "llama/fp32", 1, 2, "1,1", 3.0, false, 0},
    {"llama_local_tp2_pp2", "llama/fp32", 2, 2, "1,1", 3.0, false, 0},
    {"llama_te_tp1_pp1", "llama/fp32", 1, 1, "2", 3.0, false, 0},
    {"llama_te_tp2_pp2", "llama/fp32", 2, 2, "1,1", 3.0, false, 0},
    {"llama_local_tp2_pp1_bf16", "llama/bf16", 2, 1, "2", 3.0, false, 0},
    {"kv_channels_local_tp1_pp1_release", "kv_channels/fp32", 1, 1, "2", 3.0, false, 0},
    {"kv_channels_local_tp2_pp1", "kv_channels/fp32", 2, 1, "2", 3.0, false, 0},
    {"kv_channels_local_tp1_pp2", "kv_channels/fp32", 1, 2, "1,1", 3.0, false, 0},
    {"kv_channels_te_tp2_pp2", "kv_channels/fp32", 2, 2, "1,1", 3.0, false, 0},
    {"gelu_erf_te_tp2_pp1_vp512", "gelu_erf/fp32", 2, 1, "2", 3.0, false, 512},
    {"legacy_gpt2_v0_tp1", "gpt2/fp32", 1, 1, "3", 0.0, false, 0},
    {"legacy_gpt2_v0_tp2", "gpt2/fp32", 2, 1, "3", 0.0, false, 0},
    {"legacy_gpt2_v1_tp1", "gpt2/fp32", 1, 1, "3", 1.0, false, 0},
    {"legacy_gpt2_v1_tp2", "gpt2/fp32", 2, 1, "3", 1.0, false, 0},
    {"legacy_gpt2_v3_oldnames_tp2", "gpt2/fp32", 2, 1, "3", 3.0, false, 0},
    {"legacy_gpt2_v3_tp1", "gpt2/fp32", 1, 1, "3", 3.0, false, 0},
};
#define N_GOOD ((int)(sizeof GOOD / sizeof GOOD[0]))

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void *read_all(ckpt *ck, const ckpt_tensor *t)
{
    size_t n = (size_t)t->nbytes;
    void *buf = malloc(n ? n : 1);
    ckpt_err e;
    mcrt_status s = ckpt_read(ck, t, -1, 0, 0, t->dtype, buf, n, NULL, &e);
    ck_assert_msg(s == MCRT_OK, "read %s: %s", t->name, e.msg);
    return buf;
}

/* Every fixture tensor equals the loaded one (first rows when padded). */
static void compare_with_fixture(const good_case *gc, ckpt *ck)
{
    char fpath[PATH_MAX + 64];
    snprintf(fpath, sizeof fpath, "%s/%s/model.safetensors", g_fixtures, gc->fixture);
    ckpt *fx = NULL;
    ckpt_err e;
    ck_assert_msg(ckpt_open(fpath, &fx, &e) == MCRT_OK, "%s", e.msg);
    size_t matched = 0;
    for (size_t i = 0; i < ckpt_count(fx); i++) {
        const ckpt_tensor *ft = ckpt_at(fx, i);
        char te[600];
        bool lq;
        int kind = mg_te_name(ft->name, te, sizeof te, &lq);
        if (kind == 0) /* the fixture's empty TE _extra_state: never loaded */
            continue;
        ck_assert_int_eq(kind, 1);
        const ckpt_tensor *lt = ckpt_find(ck, te);
        ck_assert_msg(lt != NULL, "%s: no tensor %s (fixture %s)", gc->name, te, ft->name);
        ck_assert_msg(lt->dtype == ft->dtype, "%s: %s dtype %d, fixture %d", gc->name, te,
                      lt->dtype, ft->dtype);
        ck_assert_int_eq(lt->ndim, ft->ndim);
        bool vocab = strcmp(te, "embedding.word_embeddings.weight") == 0 ||
                     strcmp(te, "output_layer.weight") == 0;
        for (int d = 0; d < ft->ndim; d++)
            if (!(vocab && d == 0 && gc->vp))
                ck_assert_msg(lt->shape[d] == ft->shape[d], "%s: %s dim %d is %" PRId64
                              ", fixture %" PRId64, gc->name, te, d, lt->shape[d], ft->shape[d]);
        unsigned char *a = read_all(ck, lt), *b = read_all(fx, ft);
        ck_assert_msg(memcmp(a, b, (size_t)ft->nbytes) == 0, "%s: tensor %s differs from the "
                      "fixture's %s", gc->name, te, ft->name);
        if (vocab && gc->vp) {
            ck_assert_int_eq(lt->shape[0], gc->vp);
            size_t row = (size_t)ft->nbytes / (size_t)ft->shape[0];
            for (int64_t r = ft->shape[0]; r < lt->shape[0]; r++) /* §3.4 pad_weight */
                ck_assert_msg(memcmp(a + (size_t)r * row, b + (size_t)(ft->shape[0] - 1) * row,
                                     row) == 0, "%s: padding row %" PRId64 " is not the last "
                              "row", gc->name, r);
        }
        /* a slice read equals the same rows of the whole read */
        if (lt->ndim == 2 && lt->shape[0] >= 3) {
            size_t row = (size_t)lt->nbytes / (size_t)lt->shape[0];
            unsigned char *s = malloc(row * 2);
            ck_assert(ckpt_read(ck, lt, 0, 1, 2, lt->dtype, s, row * 2, NULL, &e) == MCRT_OK);
            ck_assert(memcmp(s, a + row, row * 2) == 0);
            free(s);
        }
        free(a);
        free(b);
        matched++;
    }
    size_t extra = ckpt_count(ck) - matched;
    ck_assert_msg(extra == (gc->tied_copy ? 1u : 0u), "%s: %zu tensors beyond the fixture's",
                  gc->name, extra);
    if (gc->tied_copy) { /* an equal copy of the embeddings */
        const ckpt_tensor *o = ckpt_find(ck, "output_layer.weight");
        const ckpt_tensor *w = ckpt_find(ck, "embedding.word_embeddings.weight");
        ck_assert(o != NULL && w != NULL && o->nbytes == w->nbytes);
        void *a = read_all(ck, o), *b = read_all(ck, w);
        ck_assert(memcmp(a, b, (size_t)o->nbytes) == 0);
        free(a);
        free(b);
    }
    ckpt_close(fx);
}

static void check_meta(const good_case *gc, ckpt *ck)
{
    char buf[64];
    ck_assert_str_eq(ckpt_format_name(ck), "torch");
    snprintf(buf, sizeof buf, "%d", gc->tp);
    ck_assert_str_eq(ckpt_metadata(ck, "tensor_model_parallel_size"), buf);
    snprintf(buf, sizeof buf, "%d", gc->pp);
    ck_assert_str_eq(ckpt_metadata(ck, "pipeline_model_parallel_size"), buf);
    ck_assert_str_eq(ckpt_metadata(ck, "layers_per_stage"), gc->layers_per_stage);
    snprintf(buf, sizeof buf, "%.1f", gc->version);
    ck_assert_str_eq(ckpt_metadata(ck, "checkpoint_version"), buf);
    bool release = strstr(gc->name, "release") != NULL;
    if (!release)
        ck_assert_str_eq(ckpt_metadata(ck, "iteration"), "100");
    const ckpt_arg *a = ckpt_find_arg(ck, "num_layers");
    ck_assert(a != NULL && a->type == 2);
    ck_assert_ptr_nonnull(strstr(a->source, "model_optim_rng.pt: args"));
    a = ckpt_find_arg(ck, "hidden_size");
    ck_assert(a != NULL && a->i > 0);
}

/* `mcrt convert` of the checkpoint: the same tensors bit for bit, the same
 * arguments (typed, origin kept), and it refuses to overwrite. */
static void check_convert(const good_case *gc, ckpt *ck, const char *path)
{
    char dir[] = "/tmp/mcrt-test-convert-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char *argv[] = {(char *)"convert", (char *)path, dir, NULL};
    fflush(stdout);
    ck_assert_int_eq(cmd_convert(3, argv), 0);
    ck_assert_int_eq(cmd_convert(3, argv), 73); /* exists */
    char out[256];
    snprintf(out, sizeof out, "%s/model.safetensors", dir);
    ckpt *cv = NULL;
    ckpt_err e;
    ck_assert_msg(ckpt_open(out, &cv, &e) == MCRT_OK, "%s", e.msg);
    ck_assert_int_eq(ckpt_count(cv), ckpt_count(ck));
    for (size_t i = 0; i < ckpt_count(ck); i++) {
        const ckpt_tensor *a = ckpt_at(ck, i), *b = ckpt_find(cv, a->name);
        ck_assert_msg(b != NULL, "%s: converted file lacks %s", gc->name, a->name);
        ck_assert(a->dtype == b->dtype && a->nbytes == b->nbytes);
        void *x = read_all(ck, a), *y = read_all(cv, b);
        ck_assert_msg(memcmp(x, y, (size_t)a->nbytes) == 0, "%s: %s differs after convert",
                      gc->name, a->name);
        free(x);
        free(y);
    }
    ck_assert_int_eq(ckpt_arg_count(cv), ckpt_arg_count(ck));
    for (size_t i = 0; i < ckpt_arg_count(ck); i++) {
        const ckpt_arg *a = ckpt_arg_at(ck, i), *b = ckpt_find_arg(cv, a->name);
        ck_assert_msg(b != NULL && b->type == a->type && b->i == a->i && b->f == a->f &&
                          b->origin == MCRT_CHECKPOINT_ARG_TRAINING_ARGS &&
                          (a->s == NULL || strcmp(a->s, b->s) == 0),
                      "%s: argument %s changed in the conversion", gc->name, a->name);
    }
    ckpt_close(cv);
    unlink(out);
    rmdir(dir);
}

START_TEST(test_good)
{
    const good_case *gc = &GOOD[_i];
    char dir[PATH_MAX + 128];
    snprintf(dir, sizeof dir, "%s/%s", g_ckpts, gc->name);
    bool release = strstr(gc->name, "release") != NULL;
    for (int how = 0; how < 3; how++) {
        char path[PATH_MAX + 160];
        ckpt_open_options o = {0};
        if (how == 1)
            snprintf(path, sizeof path, "%s/%s", dir, release ? "release" : "iter_0000100");
        else
            snprintf(path, sizeof path, "%s", dir);
        if (how == 2) {
            if (release)
                continue;
            o.has_step = true;
            o.step = 100;
        }
        ckpt *ck = NULL;
        ckpt_err e;
        mcrt_status s = ckpt_open_ex(path, &o, &ck, &e);
        ck_assert_msg(s == MCRT_OK, "%s (%d): %s", gc->name, how, e.msg);
        check_meta(gc, ck);
        compare_with_fixture(gc, ck);
        if (how == 0)
            check_convert(gc, ck, path);
        ckpt_close(ck);
    }
}
END_TEST

/* ---- bad input --------------------------------------------------------------------- */

typedef struct bad_case {
    const char *name;
    const char *sub;  /* opened path under the case ("" = the case folder) */
    int64_t step;     /* >= 0: --ckpt-step */
    mcrt_status status;
    const char *parts[3]; /* substrings of the message */
} bad_case;

static const bad_case BAD[] = {
    {"bad_truncated_pt", "", -1, MCRT_E_DATA,
     {"mp_rank_00/model_optim_rng.pt", "end-of-central-directory", NULL}},
    {"bad_mixed_iterations", "", -1, MCRT_E_DATA,
     {"shards of different iterations", "mp_rank_01/model_optim_rng.pt", "200"}},
    {"bad_missing_rank", "", -1, MCRT_E_NOTFOUND, {"mp_rank_01_001", "TP 2 x PP 2", NULL}},
    {"bad_pickle_os_system", "", -1, MCRT_E_DATA,
     {"model_optim_rng.pt", "'os.system' is not allowed", NULL}},
    {"bad_tracker_mismatch", "", -1, MCRT_E_NOTFOUND, {"iter_0000200", "tracker", NULL}},
    {"gpt2_te_tp2_pp1", "", 300, MCRT_E_NOTFOUND, {"iter_0000300", "--ckpt-step", NULL}},
    {"gpt2_te_tp2_pp1", "iter_0000100/mp_rank_01", -1, MCRT_E_NOTFOUND, {"a folder without", NULL}},
    {"gpt2_te_tp2_pp1", "iter_0000100/mp_rank_01/model_optim_rng.pt", -1, MCRT_E_DATA,
     {"tensor_model_parallel_size 2", "1 tensor-parallel shard", NULL}},
};
#define N_BAD ((int)(sizeof BAD / sizeof BAD[0]))

START_TEST(test_bad)
{
    const bad_case *bc = &BAD[_i];
    char path[PATH_MAX + 256];
    snprintf(path, sizeof path, "%s/%s%s%s", g_ckpts, bc->name, bc->sub[0] ? "/" : "", bc->sub);
    ckpt_open_options o = {0};
    if (bc->step >= 0) {
        o.has_step = true;
        o.step = bc->step;
    }
    unlink("/tmp/mcrt-megatron-ckpt-pickle-was-executed");
    ckpt *ck = NULL;
    ckpt_err e;
    memset(&e, 0, sizeof e);
    mcrt_status s = ckpt_open_ex(path, &o, &ck, &e);
    ck_assert_msg(s == bc->status, "%s %s: status %d, expected %d: %s", bc->name, bc->sub, s,
                  bc->status, s == MCRT_OK ? "(opened)" : e.msg);
    for (int i = 0; i < 3 && bc->parts[i] != NULL; i++)
        ck_assert_msg(strstr(e.msg, bc->parts[i]) != NULL, "%s: message lacks '%s': %s",
                      bc->name, bc->parts[i], e.msg);
    ck_assert_msg(access("/tmp/mcrt-megatron-ckpt-pickle-was-executed", F_OK) != 0,
                  "the pickle ran code");
    ckpt_close(ck);
}
END_TEST

/* A flipped byte inside a tensor's storage: open succeeds (CRC is checked on
 * the first read), the read fails naming the file, the entry and the CRC. */
START_TEST(test_crc)
{
    char src[PATH_MAX + 128], dir[] = "/tmp/mcrt-test-crc-XXXXXX";
    snprintf(src, sizeof src, "%s/gpt2_te_tp1_pp1/iter_0000100/mp_rank_00/model_optim_rng.pt",
             g_ckpts);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char dst[256];
    snprintf(dst, sizeof dst, "%s/model_optim_rng.pt", dir);
    FILE *in = fopen(src, "rb");
    ck_assert_ptr_nonnull(in);
    fseek(in, 0, SEEK_END);
    long n = ftell(in);
    fseek(in, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n);
    ck_assert_int_eq((long)fread(buf, 1, (size_t)n, in), n);
    fclose(in);
    /* the data of the first `data/` entry: find its local header name */
    unsigned char *p = NULL;
    for (long i = 0; i + 30 < n; i++)
        if (memcmp(buf + i, "PK\003\004", 4) == 0 &&
            memmem(buf + i + 30, (size_t)(buf[i + 26] | buf[i + 27] << 8), "/data/", 6)) {
            size_t nl = (size_t)(buf[i + 26] | buf[i + 27] << 8);
            size_t xl = (size_t)(buf[i + 28] | buf[i + 29] << 8);
            p = buf + i + 30 + nl + xl;
            break;
        }
    ck_assert_ptr_nonnull(p);
    p[0] ^= 0x40;
    FILE *out = fopen(dst, "wb");
    fwrite(buf, 1, (size_t)n, out);
    fclose(out);
    free(buf);
    ckpt *ck = NULL;
    ckpt_err e;
    ck_assert_msg(ckpt_open(dst, &ck, &e) == MCRT_OK, "%s", e.msg);
    mcrt_status worst = MCRT_OK;
    char msg[1024] = "";
    for (size_t i = 0; i < ckpt_count(ck); i++) {
        const ckpt_tensor *t = ckpt_at(ck, i);
        void *b = malloc((size_t)t->nbytes);
        mcrt_status s = ckpt_read(ck, t, -1, 0, 0, t->dtype, b, (size_t)t->nbytes, NULL, &e);
        if (s != MCRT_OK && worst == MCRT_OK) {
            worst = s;
            snprintf(msg, sizeof msg, "%s", e.msg);
        }
        free(b);
    }
    ck_assert_int_eq(worst, MCRT_E_DATA);
    ck_assert_ptr_nonnull(strstr(msg, "CRC-32 mismatch"));
    ck_assert_ptr_nonnull(strstr(msg, "model_optim_rng.pt"));
    ckpt_close(ck);
    unlink(dst);
    rmdir(dir);
}
END_TEST

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: test_torch_load CKPTS FIXTURES\n");
        return 2;
    }
    char probe[PATH_MAX + 64];
    if (realpath(argv[1], g_ckpts) == NULL || realpath(argv[2], g_fixtures) == NULL ||
        (snprintf(probe, sizeof probe, "%s/gpt2_te_tp1_pp1", g_ckpts), !is_dir(probe))) {
        printf("SKIP: no Megatron checkpoint fixtures in %s (they need Debian's "
               "python3-torch)\n", argv[1]);
        return 77;
    }
    Suite *s = suite_create("megatron-torch");
    TCase *tc = tcase_create("load");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_good, 0, N_GOOD);
    tcase_add_loop_test(tc, test_bad, 0, N_BAD);
    tcase_add_test(tc, test_crc);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
