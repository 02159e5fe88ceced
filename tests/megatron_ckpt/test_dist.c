/*
 * tests/megatron_ckpt/test_dist.c: the torch_dist checkpoint backend
 * (core/checkpoint/megatron_dist.c) on the fixtures of
 * tools/reference/megatron_ckpt (README, c. and d.).
 *
 *   test_dist CKPTS FIXTURES CKPTS_STAMP FIXTURES_STAMP
 *
 * Good cases: every dist_* case opened twice, as its iteration folder and
 * as its load folder (the tracker), must give exactly the reference
 * fixture's tensors (<config>/<variant>/model.safetensors, names mapped to
 * the TE spelling, `_extra_state` dropped), bit for bit, whole and in
 * slices along the first and last dimension; its args must agree with
 * expected.json's config, and its metadata must say torch_dist, the
 * iteration, checkpoint_version and the saved TP/PP.
 *
 * Bad inputs: bad_dist_truncated_distcp, and copies of a good case damaged
 * here (another sharded backend, a missing or garbled file, a .metadata
 * edited in place, a flipped byte in a chunk's pickle or tensor data):
 * each fails with the expected status and a message naming the file.
 *
 * Exits 77 when a stamp says torch was missing (the fixtures were not made).
 * Scratch copies go to $TEST_SCRATCH (or /tmp), removed at the end.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "checkpoint/json.h"
#include "checkpoint/megatron.h"
#include "mcrt/config.h" /* MCRT_CFG_* */

static char ckpts_dir[2048];    /* <build>/tests/megatron_ckpt/ckpts */
static char fixtures_dir[2048]; /* <build>/tests/reference/gpt */
static char scratch[2048];      /* this run's copies */

static const char *const good_cases[] = {
    "dist_gpt2_te_tp2_pp1",
    "dist_gpt2_te_tp2_pp2_uneven",
    "dist_llama_local_tp2_pp2",
    "dist_kv_channels_local_tp1_pp1",
};
#define N_GOOD (int)(sizeof good_cases / sizeof good_cases[0])

/* The case every damaged copy starts from: one rank, two .distcp files. */
#define BASE_CASE "dist_kv_channels_local_tp1_pp1"
#define ITER "iter_0000100"

/* ---- files ----------------------------------------------------------------------------- */

/* snprintf into a path buffer, failing the test when it does not fit. */
static void fmt_path(char *out, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void fmt_path(char *out, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(out, n, fmt, ap);
    va_end(ap);
    ck_assert_msg(w >= 0 && (size_t)w < n, "a path of more than %zu bytes: %s", n, out);
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s: %s", path, strerror(errno));
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    ck_assert_int_ge(n, 0);
    ck_assert_int_eq(fseek(f, 0, SEEK_SET), 0);
    unsigned char *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = 0;
    *len = (size_t)n;
    return buf;
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s: %s", path, strerror(errno));
    if (n > 0)
        ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

static void write_text(const char *path, const char *text)
{
    write_file(path, text, strlen(text));
}

static void copy_file(const char *from, const char *to)
{
    size_t n;
    unsigned char *b = read_file(from, &n);
    write_file(to, b, n);
    free(b);
}

/* A copy of BASE_CASE (tracker + iteration folder) at <scratch>/<name>;
 * the iteration folder's path into iter (size n). */
static void copy_base(const char *name, char *iter, size_t n)
{
    char src[4096], dst[4096], a[4096], b[4096];
    fmt_path(dst, sizeof dst, "%s/%s", scratch, name);
    ck_assert_msg(mkdir(dst, 0700) == 0, "mkdir %s: %s", dst, strerror(errno));
    fmt_path(a, sizeof a, "%s/%s/latest_checkpointed_iteration.txt", ckpts_dir, BASE_CASE);
    fmt_path(b, sizeof b, "%s/latest_checkpointed_iteration.txt", dst);
    copy_file(a, b);
    fmt_path(src, sizeof src, "%s/%s/%s", ckpts_dir, BASE_CASE, ITER);
    fmt_path(iter, n, "%s/%s", dst, ITER);
    ck_assert_msg(mkdir(iter, 0700) == 0, "mkdir %s: %s", iter, strerror(errno));
    DIR *d = opendir(src);
    ck_assert_msg(d != NULL, "cannot list %s", src);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        fmt_path(a, sizeof a, "%s/%s", src, e->d_name);
        fmt_path(b, sizeof b, "%s/%s", iter, e->d_name);
        copy_file(a, b);
    }
    closedir(d);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* ---- expected.json ----------------------------------------------------------------------- */

#define MAX_CONFIG 64

typedef struct cfg_value {
    char name[64];
    json_kind kind;
    bool is_integer;
    int64_t i;
    double f;
    char s[64];
} cfg_value;

typedef struct expected {
    char reference_fixture[128];
    int64_t tp, pp, iteration;
    char checkpoint_version[64];
    cfg_value config[MAX_CONFIG];
    int n_config;
} expected;

static void read_scalar(json_reader *r, cfg_value *v)
{
    v->kind = json_peek(r);
    const char *s;
    size_t n;
    json_number num;
    switch (v->kind) {
    case JSON_STRING:
        ck_assert(json_read_string(r, &s, &n));
        snprintf(v->s, sizeof v->s, "%.*s", (int)n, s);
        break;
    case JSON_NUMBER:
        ck_assert(json_read_number(r, &num));
        v->is_integer = num.is_integer && !num.overflow;
        v->i = num.value;
        snprintf(v->s, sizeof v->s, "%.*s", (int)num.len, num.text);
        v->f = strtod(v->s, NULL);
        break;
    default:
        ck_assert(json_skip(r));
    }
}

static void read_expected(const char *case_name, expected *e)
{
    char path[4096];
    fmt_path(path, sizeof path, "%s/%s/expected.json", ckpts_dir, case_name);
    size_t len;
    unsigned char *text = read_file(path, &len);
    memset(e, 0, sizeof *e);
    json_reader r;
    json_init(&r, (const char *)text, len, 0, JSON_MAX_DEPTH);
    ck_assert(json_open_object(&r));
    const char *key;
    size_t kl;
    int m;
    while ((m = json_next_member(&r, &key, &kl)) == 1) {
        char k[64];
        snprintf(k, sizeof k, "%.*s", (int)kl, key);
        cfg_value v;
        memset(&v, 0, sizeof v);
        if (strcmp(k, "config") == 0) {
            ck_assert(json_open_object(&r));
            while ((m = json_next_member(&r, &key, &kl)) == 1) {
                ck_assert_int_lt(e->n_config, MAX_CONFIG);
                cfg_value *c = &e->config[e->n_config++];
                snprintf(c->name, sizeof c->name, "%.*s", (int)kl, key);
                read_scalar(&r, c);
            }
            ck_assert_int_eq(m, 0);
            continue;
        }
        read_scalar(&r, &v);
        if (strcmp(k, "reference_fixture") == 0)
            snprintf(e->reference_fixture, sizeof e->reference_fixture, "%s", v.s);
        else if (strcmp(k, "tensor_model_parallel_size") == 0)
            e->tp = v.i;
        else if (strcmp(k, "pipeline_model_parallel_size") == 0)
            e->pp = v.i;
        else if (strcmp(k, "iteration") == 0)
            e->iteration = v.i;
        else if (strcmp(k, "checkpoint_version") == 0)
            snprintf(e->checkpoint_version, sizeof e->checkpoint_version, "%s", v.s);
    }
    ck_assert_msg(m == 0, "%s: %s", path, json_error(&r));
    ck_assert(json_finish(&r));
    json_fini(&r);
    free(text);
    ck_assert_msg(e->reference_fixture[0] != '\0' && e->tp > 0 && e->pp > 0,
                  "%s: no reference_fixture, tensor_model_parallel_size, "
                  "pipeline_model_parallel_size", path);
}

/* ---- the good cases ---------------------------------------------------------------------- */

/* Every element of `a`'s tensor equals `b`'s: whole, and slices along the
 * first and last dimension. */
static void compare_tensor(const ckpt *a, const ckpt_tensor *ta, const ckpt *b,
                           const ckpt_tensor *tb, const char *what)
{
    ck_assert_msg(ta->dtype == tb->dtype && ta->ndim == tb->ndim, "%s: dtype/ndim differ", what);
    for (int32_t d = 0; d < ta->ndim; d++)
        ck_assert_msg(ta->shape[d] == tb->shape[d], "%s: shape[%d] %" PRId64 " vs %" PRId64, what,
                      d, ta->shape[d], tb->shape[d]);
    size_t n = (size_t)ta->nbytes;
    unsigned char *x = malloc(n + 1), *y = malloc(n + 1);
    ck_assert(x != NULL && y != NULL);
    ckpt_err err;
    size_t got = 0;
    mcrt_status s = ckpt_read(a, ta, -1, 0, 0, ta->dtype, x, n, &got, &err);
    ck_assert_msg(s == MCRT_OK, "%s: %s", what, err.msg);
    ck_assert_uint_eq(got, n);
    s = ckpt_read(b, tb, -1, 0, 0, tb->dtype, y, n, &got, &err);
    ck_assert_msg(s == MCRT_OK, "%s (reference): %s", what, err.msg);
    ck_assert_msg(memcmp(x, y, n) == 0, "%s: the bytes differ from the reference", what);
    int32_t dims[2] = {0, ta->ndim - 1};
    for (int k = 0; k < 2 && ta->ndim > 0; k++) {
        int32_t d = dims[k];
        int64_t start = ta->shape[d] / 3, len = ta->shape[d] - 2 * start;
        if (len <= 0)
            continue;
        size_t gx = 0, gy = 0;
        s = ckpt_read(a, ta, d, start, len, ta->dtype, x, n, &gx, &err);
        ck_assert_msg(s == MCRT_OK, "%s: slice dim %d: %s", what, d, err.msg);
        s = ckpt_read(b, tb, d, start, len, tb->dtype, y, n, &gy, &err);
        ck_assert_msg(s == MCRT_OK, "%s (reference): slice dim %d: %s", what, d, err.msg);
        ck_assert_uint_eq(gx, gy);
        ck_assert_msg(memcmp(x, y, gx) == 0, "%s: slice [%" PRId64 ", +%" PRId64 ") of dim %d "
                      "differs from the reference", what, start, len, d);
    }
    free(x);
    free(y);
}

static void check_args(const ckpt *ck, const expected *e, const char *path)
{
    /* config members the checkpoint's args carry, except vocab_size (a
     * tokenizer argument: NullTokenizer's is V - 1, GPT-2's is unset) */
    int compared = 0;
    for (int i = 0; i < e->n_config; i++) {
        const cfg_value *v = &e->config[i];
        const ckpt_arg *a = ckpt_find_arg(ck, v->name);
        if (a == NULL || strcmp(v->name, "vocab_size") == 0)
            continue;
        compared++;
        switch (v->kind) {
        case JSON_TRUE:
        case JSON_FALSE:
            ck_assert_msg(a->type == MCRT_CFG_BOOL && a->i == (v->kind == JSON_TRUE),
                          "%s: arg %s", path, v->name);
            break;
        case JSON_STRING:
            ck_assert_msg(a->type == MCRT_CFG_STRING && strcmp(a->s, v->s) == 0,
                          "%s: arg %s is '%s', expected '%s'", path, v->name,
                          a->s ? a->s : "(not a string)", v->s);
            break;
        case JSON_NUMBER:
            if (v->is_integer)
                ck_assert_msg(a->type == MCRT_CFG_INT && a->i == v->i,
                              "%s: arg %s is %" PRId64 ", expected %" PRId64, path, v->name, a->i,
                              v->i);
            else
                ck_assert_msg(a->type == MCRT_CFG_FLOAT && a->f == v->f,
                              "%s: arg %s is %g, expected %g", path, v->name, a->f, v->f);
            break;
        default:
            break;
        }
        ck_assert_msg(a->source != NULL && strstr(a->source, "common.pt: args") != NULL,
                      "%s: arg %s comes from '%s'", path, v->name,
                      a->source ? a->source : "(null)");
    }
    static const char *const needed[] = {"num_layers", "hidden_size", "num_attention_heads",
                                         "ffn_hidden_size", "padded_vocab_size"};
    for (size_t i = 0; i < sizeof needed / sizeof needed[0]; i++)
        ck_assert_msg(ckpt_find_arg(ck, needed[i]) != NULL, "%s: no arg %s", path, needed[i]);
    ck_assert_int_ge(compared, 10);
    const ckpt_arg *fmt = ckpt_find_arg(ck, "ckpt_format");
    ck_assert_msg(fmt != NULL && fmt->s != NULL && strcmp(fmt->s, "torch_dist") == 0,
                  "%s: args.ckpt_format", path);
}

static void check_metadata(const ckpt *ck, const expected *e, const char *path)
{
    char want[64];
    ck_assert_str_eq(ckpt_format_name(ck), "torch_dist");
    const char *v = ckpt_metadata(ck, "format");
    ck_assert_msg(v != NULL && strcmp(v, "torch_dist") == 0, "%s: metadata format", path);
    snprintf(want, sizeof want, "%" PRId64, e->iteration);
    v = ckpt_metadata(ck, "iteration");
    ck_assert_msg(v != NULL && strcmp(v, want) == 0, "%s: metadata iteration %s", path,
                  v ? v : "(none)");
    v = ckpt_metadata(ck, "checkpoint_version");
    ck_assert_msg(v != NULL && strcmp(v, e->checkpoint_version) == 0,
                  "%s: metadata checkpoint_version %s, expected %s", path, v ? v : "(none)",
                  e->checkpoint_version);
    snprintf(want, sizeof want, "%" PRId64, e->tp);
    v = ckpt_metadata(ck, "tensor_model_parallel_size");
    ck_assert_msg(v != NULL && strcmp(v, want) == 0, "%s: metadata tensor_model_parallel_size",
                  path);
    snprintf(want, sizeof want, "%" PRId64, e->pp);
    v = ckpt_metadata(ck, "pipeline_model_parallel_size");
    ck_assert_msg(v != NULL && strcmp(v, want) == 0, "%s: metadata pipeline_model_parallel_size",
                  path);
}

/* The checkpoint at path holds exactly the reference's tensors. */
static void check_good(const char *path, const expected *e, const ckpt *ref)
{
    ckpt *ck = NULL;
    ckpt_err err;
    mcrt_status s = ckpt_open(path, &ck, &err);
    ck_assert_msg(s == MCRT_OK, "%s: %s", path, err.msg);
    size_t matched = 0;
    for (size_t i = 0; i < ckpt_count(ref); i++) {
        const ckpt_tensor *tr = ckpt_at(ref, i);
        char te[512];
        bool legacy_qkv = false;
        int r = mg_te_name(tr->name, te, sizeof te, &legacy_qkv);
        if (r == 0)
            continue; /* _extra_state */
        ck_assert_msg(r == 1 && !legacy_qkv, "reference tensor '%s' has no TE name", tr->name);
        const ckpt_tensor *t = ckpt_find(ck, te);
        ck_assert_msg(t != NULL, "%s: no tensor '%s' (reference '%s')", path, te, tr->name);
        char what[1024];
        fmt_path(what, sizeof what, "%s: tensor '%s'", path, te);
        compare_tensor(ck, t, ref, tr, what);
        matched++;
    }
    ck_assert_msg(matched == ckpt_count(ck), "%s: %zu tensors, of which %zu are the reference's",
                  path, ckpt_count(ck), matched);
    check_args(ck, e, path);
    check_metadata(ck, e, path);
    ckpt_close(ck);
}

START_TEST(good_case)
{
    const char *name = good_cases[_i];
    expected e;
    read_expected(name, &e);
    char ref_path[4096], iter[4096], load[4096];
    fmt_path(ref_path, sizeof ref_path, "%s/%s/model.safetensors", fixtures_dir,
             e.reference_fixture);
    ckpt *ref = NULL;
    ckpt_err err;
    ck_assert_msg(ckpt_open(ref_path, &ref, &err) == MCRT_OK, "%s", err.msg);
    fmt_path(load, sizeof load, "%s/%s", ckpts_dir, name);
    fmt_path(iter, sizeof iter, "%s/%s", load, ITER);
    check_good(iter, &e, ref);
    check_good(load, &e, ref);
    ckpt_close(ref);
}
END_TEST

/* ---- bad inputs -------------------------------------------------------------------------- */

/* Replace every occurrence of `from` by `to` (same length) in the file;
 * returns how many. */
static size_t replace_bytes(const char *path, const void *from, const void *to, size_t n,
                            bool first_only)
{
    size_t len, count = 0;
    unsigned char *b = read_file(path, &len);
    for (size_t i = 0; i + n <= len; i++) {
        if (memcmp(b + i, from, n) != 0)
            continue;
        memcpy(b + i, to, n);
        count++;
        i += n - 1;
        if (first_only)
            break;
    }
    write_file(path, b, len);
    free(b);
    return count;
}

/* Flip a byte of the data of the last ZIP entry in the file whose name
 * ends in `pattern` ("/data.pkl") or, with suffix false, holds it
 * ("/data/"). A .distcp file holds its BYTE_IO items (torch.save ZIPs too)
 * first and its tensor chunks last, so the last such entry is a tensor's. */
static void flip_entry_byte(const char *path, const char *pattern, bool suffix)
{
    size_t len;
    unsigned char *b = read_file(path, &len);
    size_t pl = strlen(pattern);
    size_t at = SIZE_MAX;
    for (size_t p = 0; p + 30 <= len; p++) {
        if (memcmp(b + p, "PK\003\004", 4) != 0)
            continue;
        size_t nl = (size_t)b[p + 26] | (size_t)b[p + 27] << 8;
        size_t el = (size_t)b[p + 28] | (size_t)b[p + 29] << 8;
        if (p + 30 + nl + el + 8 > len || nl < pl)
            continue;
        const char *name = (const char *)b + p + 30;
        bool hit = suffix ? memcmp(name + nl - pl, pattern, pl) == 0
                          : memmem(name, nl, pattern, pl) != NULL;
        if (hit)
            at = p + 30 + nl + el + 5;
    }
    ck_assert_msg(at != SIZE_MAX, "%s: no ZIP entry with '%s'", path, pattern);
    b[at] ^= 0x40;
    write_file(path, b, len);
    free(b);
}

typedef enum damage {
    D_NONE,              /* the fixture as it is */
    D_BACKEND_ZARR,      /* metadata.json says zarr */
    D_BACKEND_VERSION,   /* torch_dist version 2 */
    D_CONFIG_GARBAGE,    /* metadata.json is not JSON */
    D_NO_COMMON,         /* common.pt removed */
    D_COMMON_GARBAGE,    /* common.pt is not a ZIP */
    D_NO_METADATA,       /* .metadata removed */
    D_METADATA_GARBAGE,  /* .metadata is not a pickle */
    D_METADATA_TRUNC,    /* .metadata cut in half */
    D_METADATA_EMPTY,    /* .metadata has no bytes */
    D_NO_DISTCP,         /* __0_1.distcp removed */
    D_DISTCP_RENAMED,    /* .metadata names __9_1.distcp, which does not exist */
    D_PATH_ESCAPE,       /* .metadata names ../0_0.distc */
    D_DTYPE,             /* .metadata says float16; the chunks hold float32 */
    D_SIZE,              /* .metadata's embedding size is 703 rows; a chunk has 704 */
    D_PICKLE_CRC,        /* a flipped byte in a chunk's data.pkl */
    D_DISTCP_EMPTY,      /* __0_0.distcp has no bytes */
} damage;

typedef struct bad_case {
    const char *name;
    const char *fixture; /* a bad fixture case as it is, or NULL: a damaged copy */
    damage d;
    mcrt_status status;
    const char *needles[3]; /* parts of the message */
} bad_case;

static const bad_case bad_cases[] = {
    {"truncated_distcp", "bad_dist_truncated_distcp", D_NONE, MCRT_E_DATA,
     {"__0_0.distcp", "which has only", ".metadata"}},
    {"zarr", NULL, D_BACKEND_ZARR, MCRT_E_UNSUPPORTED, {"metadata.json", "zarr"}},
    {"version", NULL, D_BACKEND_VERSION, MCRT_E_UNSUPPORTED,
     {"metadata.json", "sharded_backend_version 2"}},
    {"config_garbage", NULL, D_CONFIG_GARBAGE, MCRT_E_DATA, {"metadata.json", "invalid JSON"}},
    {"no_common", NULL, D_NO_COMMON, MCRT_E_NOTFOUND, {"common.pt", "no such file"}},
    {"common_garbage", NULL, D_COMMON_GARBAGE, MCRT_E_DATA, {"common.pt"}},
    {"no_metadata", NULL, D_NO_METADATA, MCRT_E_NOTFOUND, {".metadata", "no such file"}},
    {"metadata_garbage", NULL, D_METADATA_GARBAGE, MCRT_E_DATA, {".metadata", "pickle"}},
    {"metadata_trunc", NULL, D_METADATA_TRUNC, MCRT_E_DATA, {".metadata", "pickle"}},
    {"metadata_empty", NULL, D_METADATA_EMPTY, MCRT_E_DATA, {".metadata", "empty"}},
    {"no_distcp", NULL, D_NO_DISTCP, MCRT_E_NOTFOUND, {"__0_1.distcp", "no such file"}},
    {"distcp_renamed", NULL, D_DISTCP_RENAMED, MCRT_E_NOTFOUND, {"__9_1.distcp"}},
    {"path_escape", NULL, D_PATH_ESCAPE, MCRT_E_DATA,
     {".metadata", "../0_0.distc", "not a file name"}},
    {"dtype", NULL, D_DTYPE, MCRT_E_DATA, {".distcp [", "F32", ".metadata says F16"}},
    {"size", NULL, D_SIZE, MCRT_E_DATA,
     {".metadata", "embedding.word_embeddings.weight", "runs past the tensor's shape"}},
    {"pickle_crc", NULL, D_PICKLE_CRC, MCRT_E_DATA, {"__0_0.distcp [", "data.pkl", "CRC"}},
    {"distcp_empty", NULL, D_DISTCP_EMPTY, MCRT_E_DATA, {"__0_0.distcp", "which has only 0"}},
};
#define N_BAD (int)(sizeof bad_cases / sizeof bad_cases[0])

static void apply_damage(const char *iter, damage d)
{
    char p[4096];
    switch (d) {
    case D_NONE:
        break;
    case D_BACKEND_ZARR:
        fmt_path(p, sizeof p, "%s/metadata.json", iter);
        write_text(p, "{\"sharded_backend\": \"zarr\", \"sharded_backend_version\": 1, "
                      "\"common_backend\": \"torch\", \"common_backend_version\": 1}");
        break;
    case D_BACKEND_VERSION:
        fmt_path(p, sizeof p, "%s/metadata.json", iter);
        write_text(p, "{\"sharded_backend\": \"torch_dist\", \"sharded_backend_version\": 2}");
        break;
    case D_CONFIG_GARBAGE:
        fmt_path(p, sizeof p, "%s/metadata.json", iter);
        write_text(p, "{\"sharded_backend\": \"torch_dist\",");
        break;
    case D_NO_COMMON:
        fmt_path(p, sizeof p, "%s/common.pt", iter);
        ck_assert_int_eq(unlink(p), 0);
        break;
    case D_COMMON_GARBAGE:
        fmt_path(p, sizeof p, "%s/common.pt", iter);
        write_text(p, "not a zip archive at all, just some text");
        break;
    case D_NO_METADATA:
        fmt_path(p, sizeof p, "%s/.metadata", iter);
        ck_assert_int_eq(unlink(p), 0);
        break;
    case D_METADATA_GARBAGE:
        fmt_path(p, sizeof p, "%s/.metadata", iter);
        write_text(p, "\x80\x04garbage");
        break;
    case D_METADATA_TRUNC: {
        fmt_path(p, sizeof p, "%s/.metadata", iter);
        size_t len;
        unsigned char *b = read_file(p, &len);
        write_file(p, b, len / 2);
        free(b);
        break;
    }
    case D_METADATA_EMPTY:
        fmt_path(p, sizeof p, "%s/.metadata", iter);
        write_text(p, "");
        break;
    case D_NO_DISTCP:
        fmt_path(p, sizeof p, "%s/__0_1.distcp", iter);
        ck_assert_int_eq(unlink(p), 0);
        break;
    case D_DISTCP_RENAMED:
        fmt_path(p, sizeof p, "%s/.metadata", iter);
        ck_assert_uint_gt(replace_bytes(p, "__0_1.distcp", "__9_1.distcp", 12, false), 0);
        break;
    case D_PATH_ESCAPE:
        fmt_path(p, sizeof p, "%s/.metadata", iter);
        ck_assert_uint_gt(replace_bytes(p, "__0_0.distcp", "../0_0.distc", 12, false), 0);
        break;
    case D_DTYPE:
        fmt_path(p, sizeof p, "%s/.metadata", iter);
        ck_assert_uint_gt(replace_bytes(p, "float32", "float16", 7, false), 0);
        break;
    case D_SIZE:
        /* the first 704 (BININT2) is embedding.word_embeddings.weight's size
         * [704, 96], the first tensor of state_dict_metadata */
        fmt_path(p, sizeof p, "%s/.metadata", iter);
        ck_assert_uint_eq(replace_bytes(p, "M\xc0\x02", "M\xbf\x02", 3, true), 1);
        break;
    case D_PICKLE_CRC:
        fmt_path(p, sizeof p, "%s/__0_0.distcp", iter);
        flip_entry_byte(p, "/data.pkl", true);
        break;
    case D_DISTCP_EMPTY:
        fmt_path(p, sizeof p, "%s/__0_0.distcp", iter);
        write_text(p, "");
        break;
    }
}

static void expect_failure(const char *path, const bad_case *b)
{
    ckpt *ck = NULL;
    ckpt_err err;
    memset(&err, 0, sizeof err);
    mcrt_status s = ckpt_open(path, &ck, &err);
    ck_assert_msg(s == b->status, "%s (%s): status %d (%s), expected %d", path, b->name, (int)s,
                  s == MCRT_OK ? "ok" : err.msg, (int)b->status);
    ck_assert_ptr_null(ck);
    ck_assert_int_eq(err.status, s);
    ck_assert_msg(strchr(err.msg, '\n') == NULL, "%s: a message of more than one line: %s",
                  b->name, err.msg);
    for (int i = 0; i < 3 && b->needles[i] != NULL; i++)
        ck_assert_msg(strstr(err.msg, b->needles[i]) != NULL,
                      "%s: the message lacks '%s': %s", b->name, b->needles[i], err.msg);
    printf("bad %s: %s\n", b->name, err.msg); /* for the log */
}

START_TEST(bad_input)
{
    const bad_case *b = &bad_cases[_i];
    char load[4096], iter[4096];
    if (b->fixture != NULL) {
        fmt_path(load, sizeof load, "%s/%s", ckpts_dir, b->fixture);
        fmt_path(iter, sizeof iter, "%s/%s", load, ITER);
    } else {
        copy_base(b->name, iter, sizeof iter);
        fmt_path(load, sizeof load, "%s/%s", scratch, b->name);
        apply_damage(iter, b->d);
    }
    expect_failure(iter, b);
    expect_failure(load, b);
}
END_TEST

/* A flipped byte in a tensor's data opens (CRC is checked on read) and
 * fails the read that touches it, naming the archive and the entry; every
 * other tensor still reads. */
START_TEST(tensor_crc)
{
    char iter[4096], p[4096];
    copy_base("tensor_crc", iter, sizeof iter);
    fmt_path(p, sizeof p, "%s/__0_0.distcp", iter);
    flip_entry_byte(p, "/data/", false);
    ckpt *ck = NULL;
    ckpt_err err;
    ck_assert_msg(ckpt_open(iter, &ck, &err) == MCRT_OK, "%s", err.msg);
    size_t failed = 0;
    for (size_t i = 0; i < ckpt_count(ck); i++) {
        const ckpt_tensor *t = ckpt_at(ck, i);
        void *buf = malloc((size_t)t->nbytes + 1);
        ck_assert_ptr_nonnull(buf);
        mcrt_status s = ckpt_read(ck, t, -1, 0, 0, t->dtype, buf, (size_t)t->nbytes, NULL, &err);
        if (s != MCRT_OK) {
            ck_assert_int_eq(s, MCRT_E_DATA);
            ck_assert_msg(strstr(err.msg, "__0_0.distcp [") != NULL &&
                              strstr(err.msg, "CRC") != NULL,
                          "tensor '%s': %s", t->name, err.msg);
            failed++;
        }
        free(buf);
    }
    ck_assert_uint_eq(failed, 1);
    ckpt_close(ck);
}
END_TEST

/* The iteration folder of a torch_dist checkpoint without metadata.json is
 * no checkpoint at all (nothing else in it is a format mcrt knows). */
START_TEST(not_dist)
{
    char iter[4096], p[4096];
    copy_base("not_dist", iter, sizeof iter);
    fmt_path(p, sizeof p, "%s/metadata.json", iter);
    ck_assert_int_eq(unlink(p), 0);
    ckpt *ck = NULL;
    ckpt_err err;
    mcrt_status s = ckpt_open(iter, &ck, &err);
    ck_assert_msg(s != MCRT_OK && ck == NULL, "opened a folder without metadata.json");
    ck_assert_msg(strstr(err.msg, ITER) != NULL, "%s", err.msg);
}
END_TEST

/* The tracker names iteration 200 and iter_0000200 holds a checkpoint
 * saved at 100: refused, naming common.pt. As a release (tracker
 * "release", folder release/), the same files open, the iteration being
 * common.pt's. */
START_TEST(iteration_from_tracker)
{
    char iter[4096], load[4096], p[4096], q[4096];
    copy_base("iteration", iter, sizeof iter);
    fmt_path(load, sizeof load, "%s/iteration", scratch);
    fmt_path(p, sizeof p, "%s/iter_0000200", load);
    ck_assert_int_eq(rename(iter, p), 0);
    fmt_path(q, sizeof q, "%s/latest_checkpointed_iteration.txt", load);
    write_text(q, "200\n");
    ckpt *ck = NULL;
    ckpt_err err;
    mcrt_status s = ckpt_open(load, &ck, &err);
    ck_assert_msg(s == MCRT_E_DATA, "status %d: %s", (int)s, s == MCRT_OK ? "" : err.msg);
    ck_assert_msg(strstr(err.msg, "iter_0000200/common.pt") != NULL &&
                      strstr(err.msg, "iteration 100") != NULL &&
                      strstr(err.msg, "iteration 200") != NULL,
                  "%s", err.msg);
    printf("iteration mismatch: %s\n", err.msg);

    fmt_path(iter, sizeof iter, "%s/release", load);
    ck_assert_int_eq(rename(p, iter), 0);
    write_text(q, "release\n");
    s = ckpt_open(load, &ck, &err);
    ck_assert_msg(s == MCRT_OK, "%s", err.msg);
    const char *v = ckpt_metadata(ck, "release");
    ck_assert_msg(v != NULL && strcmp(v, "true") == 0, "release: %s", v ? v : "(none)");
    v = ckpt_metadata(ck, "iteration");
    ck_assert_msg(v != NULL && strcmp(v, "100") == 0, "iteration: %s", v ? v : "(none)");
    ckpt_close(ck);
}
END_TEST

/* A third of the bytes of .metadata (every third, the phase turning so
 * that all three residues are hit along the file), each changed by one bit
 * (xor 1: small ints, offsets, lengths and names shift by one): each open
 * either succeeds, and then
 * every tensor reads or fails cleanly, or fails with a one-line message
 * and a checkpoint status. Run under the sanitizers, this is what finds a
 * missed bounds check. */
START_TEST(metadata_mutations)
{
    char iter[4096], p[4096];
    copy_base("mutations", iter, sizeof iter);
    fmt_path(p, sizeof p, "%s/.metadata", iter);
    size_t len;
    unsigned char *orig = read_file(p, &len);
    unsigned char *b = malloc(len);
    ck_assert_ptr_nonnull(b);
    size_t opened = 0, refused = 0;
    for (size_t step = 0, i = 0; i < len; step++, i = 3 * step + step % 3) {
        memcpy(b, orig, len);
        b[i] ^= 0x01;
        write_file(p, b, len);
        ckpt *ck = NULL;
        ckpt_err err;
        memset(&err, 0, sizeof err);
        mcrt_status s = ckpt_open(iter, &ck, &err);
        if (s != MCRT_OK) {
            ck_assert_msg(s == MCRT_E_DATA || s == MCRT_E_UNSUPPORTED || s == MCRT_E_NOTFOUND,
                          "byte %zu: status %d: %s", i, (int)s, err.msg);
            ck_assert_msg(err.msg[0] != '\0' && strchr(err.msg, '\n') == NULL,
                          "byte %zu: message '%s'", i, err.msg);
            ck_assert_ptr_null(ck);
            refused++;
            continue;
        }
        for (size_t k = 0; k < ckpt_count(ck); k++) {
            const ckpt_tensor *t = ckpt_at(ck, k);
            void *buf = malloc((size_t)t->nbytes + 1);
            ck_assert_ptr_nonnull(buf);
            s = ckpt_read(ck, t, -1, 0, 0, t->dtype, buf, (size_t)t->nbytes, NULL, &err);
            ck_assert_msg(s == MCRT_OK || s == MCRT_E_DATA, "byte %zu: tensor '%s': %s", i,
                          t->name, err.msg);
            free(buf);
        }
        ckpt_close(ck);
        opened++;
    }
    printf("metadata mutations: %zu of %zu bytes flipped: %zu opened, %zu refused\n",
           opened + refused, len, opened, refused);
    free(b);
    free(orig);
}
END_TEST

/* ---- main -------------------------------------------------------------------------------- */

/* 0: made; 1: skipped (torch missing); -1: unreadable. */
static int stamp_state(const char *path)
{
    FILE *f = fopen(path, "r");
    char line[256] = "";
    if (f == NULL || fgets(line, sizeof line, f) == NULL) {
        fprintf(stderr, "test_dist: cannot read the stamp %s\n", path);
        if (f != NULL)
            fclose(f);
        return -1;
    }
    fclose(f);
    if (strncmp(line, "skipped", 7) == 0) {
        printf("test_dist: %s", line); /* one line: torch is missing */
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: test_dist CKPTS FIXTURES CKPTS_STAMP FIXTURES_STAMP\n");
        return 2;
    }
    for (int i = 3; i <= 4; i++) {
        int st = stamp_state(argv[i]);
        if (st != 0)
            return st > 0 ? 77 : 1;
    }
    snprintf(ckpts_dir, sizeof ckpts_dir, "%s", argv[1]);
    snprintf(fixtures_dir, sizeof fixtures_dir, "%s", argv[2]);
    const char *base = getenv("TEST_SCRATCH");
    int w = snprintf(scratch, sizeof scratch, "%s/test-dist-XXXXXX",
                     base != NULL && base[0] != '\0' ? base : "/tmp");
    if (w < 0 || (size_t)w >= sizeof scratch) {
        fprintf(stderr, "test_dist: TEST_SCRATCH is too long\n");
        return 1;
    }
    if (mkdtemp(scratch) == NULL) {
        fprintf(stderr, "test_dist: cannot make a scratch folder %s: %s\n", scratch,
                strerror(errno));
        return 1;
    }

    Suite *s = suite_create("megatron-dist");
    TCase *tg = tcase_create("good");
    tcase_set_timeout(tg, 300);
    tcase_add_loop_test(tg, good_case, 0, N_GOOD);
    suite_add_tcase(s, tg);
    TCase *tb = tcase_create("bad");
    tcase_set_timeout(tb, 120);
    tcase_add_loop_test(tb, bad_input, 0, N_BAD);
    tcase_add_test(tb, tensor_crc);
    tcase_add_test(tb, not_dist);
    tcase_add_test(tb, iteration_from_tracker);
    suite_add_tcase(s, tb);
    TCase *tm = tcase_create("mutations");
    tcase_set_timeout(tm, 600);
    tcase_add_test(tm, metadata_mutations);
    suite_add_tcase(s, tm);

    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    nftw(scratch, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return failed == 0 ? 0 : 1;
}
