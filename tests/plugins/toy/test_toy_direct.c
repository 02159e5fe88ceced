/*
 * tests/plugins/toy/test_toy_direct.c: the toy plugins, dlopened directly
 * with a fake host written here (no runtime needed).
 *
 * argv: the built modules, in this order: tokenizer-bytes, model-counter,
 * sampler-greedy, controller-toy, engine-fifo.
 *
 * The fake host logs to stderr (keeping the last ERROR line), allocates with
 * malloc (counting live blocks, so leaks show), and answers every config read
 * with MCRT_E_NOTFOUND except the integer keys a test sets. For the
 * controller and the engine it also provides the pipeline services, routed to
 * the toy tokenizer, model and sampler themselves, with a LIFO KV allocator.
 * Expected outputs are computed here by hand from the documented rule
 * (README.md), independently of the plugins.
 */
#include <check.h>
#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcrt/mcrt.h"

static const char *g_paths[5]; /* tokenizer, model, sampler, controller, engine */
enum { P_TOK, P_MODEL, P_SAMPLER, P_CTRL, P_ENGINE };

/* ---- The fake host --------------------------------------------------------- */

typedef struct fake_pipe fake_pipe;

typedef struct fake_host {
    mcrt_host host; /* host.host_data == this */
    const char *tag;
    fake_pipe *pipe;            /* NULL: no pipeline extension */
    const char *int_keys[8];    /* config ints this instance sees */
    int64_t int_vals[8];
    size_t n_ints;
} fake_host;

static char g_last_error[1024];
static long g_live_allocs;

static void fh_logv(const mcrt_host *h, int32_t level, const char *fmt, va_list ap)
    MCRT_PRINTF(3, 0);
static void fh_logv(const mcrt_host *h, int32_t level, const char *fmt, va_list ap)
{
    const fake_host *fh = (const fake_host *)h->host_data;
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    fprintf(stderr, "[%s] %d: %s\n", fh->tag, (int)level, line);
    if (level == MCRT_LOG_ERROR)
        snprintf(g_last_error, sizeof g_last_error, "%s", line);
}

static void fh_log(const mcrt_host *h, int32_t level, const char *fmt, ...) MCRT_PRINTF(3, 4);
static void fh_log(const mcrt_host *h, int32_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fh_logv(h, level, fmt, ap);
    va_end(ap);
}

static void *fh_alloc(const mcrt_host *h, size_t size, size_t align)
{
    void *p = NULL;
    (void)h;
    if (align <= sizeof(max_align_t))
        p = malloc(size);
    else if (posix_memalign(&p, align, size) != 0)
        p = NULL;
    if (p != NULL)
        g_live_allocs++;
    return p;
}

static void fh_free(const mcrt_host *h, void *p)
{
    (void)h;
    if (p != NULL)
        g_live_allocs--;
    free(p);
}

static mcrt_status fh_config_bool(const mcrt_host *h, const mcrt_config *cfg, const char *key,
                                  bool *out)
{
    (void)h, (void)cfg, (void)key, (void)out;
    return MCRT_E_NOTFOUND;
}

static mcrt_status fh_config_int(const mcrt_host *h, const mcrt_config *cfg, const char *key,
                                 int64_t *out)
{
    const fake_host *fh = (const fake_host *)h->host_data;
    size_t i;
    (void)cfg;
    for (i = 0; i < fh->n_ints; i++) {
        if (strcmp(fh->int_keys[i], key) == 0) {
            *out = fh->int_vals[i];
            return MCRT_OK;
        }
    }
    return MCRT_E_NOTFOUND;
}

static mcrt_status fh_config_float(const mcrt_host *h, const mcrt_config *cfg, const char *key,
                                   double *out)
{
    (void)h, (void)cfg, (void)key, (void)out;
    return MCRT_E_NOTFOUND;
}

static mcrt_status fh_config_string(const mcrt_host *h, const mcrt_config *cfg,
                                    const char *key, const char **out)
{
    (void)h, (void)cfg, (void)key, (void)out;
    return MCRT_E_NOTFOUND;
}

static mcrt_status fh_config_list_size(const mcrt_host *h, const mcrt_config *cfg,
                                       const char *key, size_t *out)
{
    (void)h, (void)cfg, (void)key, (void)out;
    return MCRT_E_NOTFOUND;
}

static mcrt_status fh_config_list_item(const mcrt_host *h, const mcrt_config *cfg,
                                       const char *key, size_t i, const char **out)
{
    (void)h, (void)cfg, (void)key, (void)i, (void)out;
    return MCRT_E_NOTFOUND;
}

static uint64_t fh_clock(const mcrt_host *h)
{
    (void)h;
    return 0;
}

static const void *fh_get_ext(const mcrt_host *h, const char *id);

static void fake_host_init(fake_host *fh, const char *tag, fake_pipe *pipe)
{
    memset(fh, 0, sizeof *fh);
    fh->host.abi_major = MCRT_ABI_MAJOR;
    fh->host.abi_minor = MCRT_ABI_MINOR;
    fh->host.struct_size = (uint32_t)sizeof(mcrt_host);
    fh->host.host_data = fh;
    fh->host.log = fh_log;
    fh->host.logv = fh_logv;
    fh->host.alloc = fh_alloc;
    fh->host.free = fh_free;
    fh->host.config_bool = fh_config_bool;
    fh->host.config_int = fh_config_int;
    fh->host.config_float = fh_config_float;
    fh->host.config_string = fh_config_string;
    fh->host.config_list_size = fh_config_list_size;
    fh->host.config_list_item = fh_config_list_item;
    fh->host.clock_ns = fh_clock;
    fh->host.get_ext = fh_get_ext;
    fh->tag = tag;
    fh->pipe = pipe;
}

static void fake_host_set_int(fake_host *fh, const char *key, int64_t v)
{
    ck_assert_uint_lt(fh->n_ints, 8);
    fh->int_keys[fh->n_ints] = key;
    fh->int_vals[fh->n_ints++] = v;
}

/* ---- Loading --------------------------------------------------------------- */

static const void *load_iface(int which, uint32_t kind, const char *name, const char *iface_id)
{
    void *dl = dlopen(g_paths[which], RTLD_NOW | RTLD_LOCAL);
    const mcrt_plugin_entry *p;
    const void *iface;
    ck_assert_msg(dl != NULL, "dlopen %s: %s", g_paths[which], dlerror());
    p = (const mcrt_plugin_entry *)dlsym(dl, "mcrt_plugin");
    ck_assert_msg(p != NULL, "%s exports no mcrt_plugin", g_paths[which]);
    ck_assert_uint_eq(p->abi_major, MCRT_ABI_MAJOR);
    ck_assert_uint_le(p->abi_minor, MCRT_ABI_MINOR);
    ck_assert_uint_eq(p->struct_size, sizeof(mcrt_plugin_entry));
    ck_assert_uint_eq(p->kind, kind);
    ck_assert_str_eq(p->name, name);
    ck_assert(p->get_iface != NULL);
    ck_assert_ptr_null(p->get_iface("mcrt.nothing/1"));
    iface = p->get_iface(iface_id);
    ck_assert_ptr_nonnull(iface);
    ck_assert_uint_ge(*(const uint32_t *)iface, sizeof(uint32_t) + sizeof(void *));
    /* Never dlclosed: the process ends with the test (fork mode). */
    return iface;
}

static const mcrt_tokenizer_iface *load_tok(void)
{
    return (const mcrt_tokenizer_iface *)load_iface(P_TOK, MCRT_KIND_TOKENIZER, "bytes",
                                                    MCRT_IFACE_TOKENIZER);
}
static const mcrt_model_iface *load_model(void)
{
    return (const mcrt_model_iface *)load_iface(P_MODEL, MCRT_KIND_MODEL, "counter",
                                                MCRT_IFACE_MODEL);
}
static const mcrt_sampler_iface *load_sampler(void)
{
    return (const mcrt_sampler_iface *)load_iface(P_SAMPLER, MCRT_KIND_SAMPLER, "greedy",
                                                  MCRT_IFACE_SAMPLER);
}

static mcrt_rank_info one_rank(void)
{
    mcrt_rank_info r;
    memset(&r, 0, sizeof r);
    r.struct_size = (uint32_t)sizeof r;
    r.world_size = r.tp_size = r.pp_size = 1;
    r.device = MCRT_DEVICE_CPU;
    r.threads = 1;
    return r;
}

/* ---- The tokenizer ----------------------------------------------------------- */

typedef struct utf8_case {
    const char *in;
    size_t in_len;
    const char *out; /* Python: in.decode('utf-8', 'replace').encode('utf-8') */
    size_t out_len;
} utf8_case;

static const utf8_case utf8_cases[] = {
    {"\x61\xff\x62", 3, "\x61\xef\xbf\xbd\x62", 5},
    {"\xe2\x82", 2, "\xef\xbf\xbd", 3},
    {"\xe2\x82\xac\x21", 4, "\xe2\x82\xac\x21", 4},
    {"\xed\xa0\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 9},
    {"\xf0\x90\x80\x41", 4, "\xef\xbf\xbd\x41", 4},
    {"\xf0\x80\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 9},
    {"\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd", 6},
    {"\xf4\x90\x80\x80", 4, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 12},
    {"\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80", 4},
    {"\xe0\x80\xaf", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 9},
    {"\xef\xbf\xbf\xc2", 4, "\xef\xbf\xbf\xef\xbf\xbd", 6},
    {"\x00\x7a", 2, "\x00\x7a", 2},
};

START_TEST(tokenizer_round_trip)
{
    const mcrt_tokenizer_iface *t = load_tok();
    fake_host fh;
    void *self = NULL;
    long base = g_live_allocs;
    const char *text = "h\xc3\xa9llo, w\xc3\xb6rld \xe2\x82\xac";
    size_t len = strlen(text), n = 0, out_len = 0, i;
    int32_t ids[64];
    char buf[64];
    mcrt_tokenizer_info info;

    fake_host_init(&fh, "tokenizer/bytes", NULL);
    ck_assert_int_eq(t->create(&fh.host, NULL, &self), MCRT_OK);

    /* info honours struct_size: a caller that knows only up to `eod`. */
    memset(&info, 0x5a, sizeof info);
    info.struct_size = (uint32_t)(offsetof(mcrt_tokenizer_info, eod) + sizeof info.eod);
    ck_assert_int_eq(t->info(self, &info), MCRT_OK);
    ck_assert_int_eq(info.vocab_size, 257);
    ck_assert_int_eq(info.eod, 256);
    ck_assert_int_eq(info.bos, 0x5a5a5a5a);
    info.struct_size = (uint32_t)sizeof info;
    ck_assert_int_eq(t->info(self, &info), MCRT_OK);
    ck_assert_int_eq(info.bos, -1);
    ck_assert_int_eq(info.pad, -1);

    /* Size query, then too small, then exact. */
    ck_assert_int_eq(t->encode(self, text, len, NULL, 0, &n), MCRT_E_RANGE);
    ck_assert_uint_eq(n, len);
    ck_assert_int_eq(t->encode(self, text, len, ids, 3, &n), MCRT_E_RANGE);
    ck_assert_uint_eq(n, len);
    ck_assert_int_eq(t->encode(self, text, len, ids, len, &n), MCRT_OK);
    ck_assert_uint_eq(n, len);
    for (i = 0; i < len; i++)
        ck_assert_int_eq(ids[i], (unsigned char)text[i]);
    ck_assert_int_eq(t->decode(self, ids, n, buf, 2, &out_len), MCRT_E_RANGE);
    ck_assert_uint_eq(out_len, len);
    ck_assert_int_eq(t->decode(self, ids, n, buf, sizeof buf, &out_len), MCRT_OK);
    ck_assert_uint_eq(out_len, len);
    ck_assert_mem_eq(buf, text, len);
    ck_assert_int_eq(t->encode(self, "", 0, NULL, 0, &n), MCRT_OK);
    ck_assert_uint_eq(n, 0);

    /* Invalid UTF-8 -> U+FFFD, maximal subparts (Python's errors='replace'). */
    for (i = 0; i < sizeof utf8_cases / sizeof utf8_cases[0]; i++) {
        const utf8_case *c = &utf8_cases[i];
        ck_assert_int_eq(t->encode(self, c->in, c->in_len, ids, 64, &n), MCRT_OK);
        ck_assert_int_eq(t->decode(self, ids, n, NULL, 0, &out_len),
                         c->out_len == 0 ? MCRT_OK : MCRT_E_RANGE);
        ck_assert_uint_eq(out_len, c->out_len);
        ck_assert_int_eq(t->decode(self, ids, n, buf, sizeof buf, &out_len), MCRT_OK);
        ck_assert_msg(out_len == c->out_len && memcmp(buf, c->out, out_len) == 0,
                      "utf8 case %zu: got %zu bytes", i, out_len);
    }

    /* The eod token: its text, inside a decode too (repair spans tokens). */
    ck_assert_int_eq(t->token_bytes(self, 256, buf, 4, &out_len), MCRT_E_RANGE);
    ck_assert_uint_eq(out_len, 13);
    ck_assert_int_eq(t->token_bytes(self, 256, buf, sizeof buf, &out_len), MCRT_OK);
    ck_assert_uint_eq(out_len, 13);
    ck_assert_mem_eq(buf, "<|endoftext|>", 13);
    ck_assert_int_eq(t->token_bytes(self, 0xe9, buf, sizeof buf, &out_len), MCRT_OK);
    ck_assert_uint_eq(out_len, 1);
    ck_assert_int_eq((unsigned char)buf[0], 0xe9);
    {
        const int32_t mixed[] = {0xe2, 256, 0x82, 'x'};
        const char want[] = "\xef\xbf\xbd<|endoftext|>\xef\xbf\xbdx";
        ck_assert_int_eq(t->decode(self, mixed, 4, buf, sizeof buf, &out_len), MCRT_OK);
        ck_assert_uint_eq(out_len, sizeof want - 1);
        ck_assert_mem_eq(buf, want, sizeof want - 1);
    }

    /* Ids outside [0, 257): MCRT_E_INVAL with a message naming the id. */
    {
        const int32_t bad[] = {'a', 257};
        const int32_t neg[] = {-3};
        g_last_error[0] = '\0';
        out_len = 777;
        ck_assert_int_eq(t->decode(self, bad, 2, buf, sizeof buf, &out_len), MCRT_E_INVAL);
        ck_assert_uint_eq(out_len, 777); /* untouched on error */
        ck_assert_ptr_nonnull(strstr(g_last_error, "257"));
        ck_assert_int_eq(t->decode(self, neg, 1, buf, sizeof buf, &out_len), MCRT_E_INVAL);
        ck_assert_ptr_nonnull(strstr(g_last_error, "-3"));
        ck_assert_int_eq(t->token_bytes(self, 1000, buf, sizeof buf, &out_len), MCRT_E_INVAL);
        ck_assert_ptr_nonnull(strstr(g_last_error, "1000"));
    }
    t->destroy(self);
    ck_assert_int_eq(g_live_allocs, base);
}
END_TEST

/* ---- The counter model --------------------------------------------------------- */

/* The documented rule, by hand: the logits row for a sequence whose tokens
 * at positions 0..p are seq[0..p]. */
static void expect_row(const int32_t *seq, size_t upto, int32_t vocab, int32_t padded,
                       float *row)
{
    int64_t sum = 0;
    int32_t j, next;
    size_t i;
    for (i = 0; i < upto; i++)
        sum += seq[i];
    next = (int32_t)((sum + (int64_t)upto - 1) % 256);
    for (j = 0; j < padded; j++)
        row[j] = j < vocab ? 0.0f : -1.0e4f;
    row[(next + 1) % 256] = 9.0f;
    row[next] = 10.0f;
}

static void check_row(const float *got, const int32_t *seq, size_t upto, int32_t vocab,
                      int32_t padded)
{
    float want[264];
    int32_t j;
    expect_row(seq, upto, vocab, padded, want);
    for (j = 0; j < padded; j++)
        ck_assert_msg(got[j] == want[j], "logit %d: got %g want %g (sequence of %zu tokens)",
                      (int)j, (double)got[j], (double)want[j], upto);
}

/* A step's io over a [rows, 264] logits buffer. */
static void make_io(mcrt_step_io *io, mcrt_tensor *lt, float *logits, uint32_t rows)
{
    memset(io, 0, sizeof *io);
    memset(lt, 0, sizeof *lt);
    io->struct_size = (uint32_t)sizeof *io;
    lt->data = logits;
    lt->dtype = MCRT_DTYPE_F32;
    lt->device = MCRT_DEVICE_CPU;
    lt->ndim = 2;
    lt->shape[0] = rows;
    lt->shape[1] = 264;
    lt->shape[2] = lt->shape[3] = 1;
    lt->stride[0] = 264;
    lt->stride[1] = 1;
    io->logits = lt;
}

START_TEST(model_counter_step)
{
    const mcrt_model_iface *m = load_model();
    fake_host fh;
    void *self = NULL;
    long base = g_live_allocs;
    mcrt_rank_info rank = one_rank();
    mcrt_model_info mi;
    mcrt_step_io io;
    mcrt_tensor lt;
    static float logits[4 * 264];
    /* Two sequences, block size 4, non-contiguous and out-of-order tables. */
    int32_t seq_a[32], seq_b[32];
    const int32_t table_a[] = {9, 2, 30, 5, 17};
    const int32_t table_b[] = {4, 11, 0};
    const int32_t *tables[2] = {table_a, table_b};
    int32_t n_blocks[2] = {5, 3};
    int32_t ctx[2] = {0, 0};
    int32_t tok[32], pos[32], si[32];
    uint8_t want[32];
    mcrt_step_batch b;
    uint32_t i;

    fake_host_init(&fh, "model/counter", NULL);
    fake_host_set_int(&fh, "kv_block_size", 4);
    fake_host_set_int(&fh, "kv_num_blocks", 32);
    ck_assert_int_eq(m->create(&fh.host, NULL, &rank, &self), MCRT_OK);

    memset(&mi, 0x5a, sizeof mi);
    mi.struct_size = (uint32_t)sizeof mi;
    ck_assert_int_eq(m->info(self, &mi), MCRT_OK);
    ck_assert_int_eq(mi.vocab_size, 257);
    ck_assert_int_eq(mi.padded_vocab_size, 264); /* 257 rounded up to a multiple of 8 */
    ck_assert_int_eq(mi.max_sequence_length, 1024);
    ck_assert_int_eq(mi.kv_block_size, 4);
    ck_assert_int_eq(mi.kv_num_blocks, 32);
    /* A caller that knows only up to padded_vocab_size. */
    memset(&mi, 0x5a, sizeof mi);
    mi.struct_size = (uint32_t)offsetof(mcrt_model_info, max_sequence_length);
    ck_assert_int_eq(m->info(self, &mi), MCRT_OK);
    ck_assert_int_eq(mi.padded_vocab_size, 264);
    ck_assert_int_eq(mi.max_sequence_length, 0x5a5a5a5a);

    /* Step 1: prefill A (10 tokens) and B (6 tokens), interleaved in the
     * flat batch; logits for each prompt's last token. */
    for (i = 0; i < 10; i++)
        seq_a[i] = (int32_t)(100 + 17 * i) % 257;
    for (i = 0; i < 6; i++)
        seq_b[i] = (int32_t)(250 + i);
    {
        uint32_t t = 0, ia = 0, ib = 0;
        while (ia < 10 || ib < 6) {
            int pick_b = ib < 6 && (ia >= 10 || (t % 3) == 1);
            tok[t] = pick_b ? seq_b[ib] : seq_a[ia];
            pos[t] = (int32_t)(pick_b ? ib : ia);
            si[t] = pick_b;
            want[t] = pick_b ? ib == 5 : ia == 9;
            if (pick_b)
                ib++;
            else
                ia++;
            t++;
        }
        ck_assert_uint_eq(t, 16);
    }
    memset(&b, 0, sizeof b);
    b.struct_size = (uint32_t)sizeof b;
    b.n_tokens = 16;
    b.n_seqs = 2;
    b.n_logits = 2;
    b.tokens = tok;
    b.positions = pos;
    b.seq_index = si;
    b.want_logits = want;
    b.context_len = ctx;
    b.block_tables = tables;
    b.n_blocks = n_blocks;
    make_io(&io, &lt, logits, 2);
    ck_assert_int_eq(m->step(self, &b, &io), MCRT_OK);
    /* Logits rows come in token order. */
    {
        uint32_t last_a = 0, last_b = 0;
        for (i = 0; i < 16; i++) {
            if (want[i] && si[i] == 0)
                last_a = i;
            if (want[i] && si[i] == 1)
                last_b = i;
        }
        check_row(logits + (last_a < last_b ? 0 : 264), seq_a, 10, 257, 264);
        check_row(logits + (last_a < last_b ? 264 : 0), seq_b, 6, 257, 264);
    }

    /* Step 2: decode, B first then A; positions 6 and 10 read the cached
     * context through the tables. */
    seq_b[6] = 7;
    seq_a[10] = 256;
    tok[0] = seq_b[6], pos[0] = 6, si[0] = 1, want[0] = 1;
    tok[1] = seq_a[10], pos[1] = 10, si[1] = 0, want[1] = 1;
    ctx[0] = 10, ctx[1] = 6;
    b.n_tokens = 2;
    b.n_logits = 2;
    ck_assert_int_eq(m->step(self, &b, &io), MCRT_OK);
    check_row(logits, seq_b, 7, 257, 264);
    check_row(logits + 264, seq_a, 11, 257, 264);

    /* Step 3: a chunk of 3 for A (logits on all three) and one for B. */
    seq_a[11] = 1, seq_a[12] = 2, seq_a[13] = 200;
    seq_b[7] = 0;
    for (i = 0; i < 3; i++)
        tok[i] = seq_a[11 + i], pos[i] = (int32_t)(11 + i), si[i] = 0, want[i] = 1;
    tok[3] = seq_b[7], pos[3] = 7, si[3] = 1, want[3] = 1;
    ctx[0] = 11, ctx[1] = 7;
    b.n_tokens = 4;
    b.n_logits = 4;
    make_io(&io, &lt, logits, 4);
    ck_assert_int_eq(m->step(self, &b, &io), MCRT_OK);
    check_row(logits, seq_a, 12, 257, 264);
    check_row(logits + 264, seq_a, 13, 257, 264);
    check_row(logits + 2 * 264, seq_a, 14, 257, 264);
    check_row(logits + 3 * 264, seq_b, 8, 257, 264);

    /* Reads really go through the block table: B's next token, but with
     * A's table, sums A's cached positions 0..7. */
    {
        int32_t mixed[9];
        const int32_t *tables_x[1] = {table_a};
        int32_t nb_x[1] = {5}, ctx_x[1] = {8};
        int32_t tok_x[1] = {3}, pos_x[1] = {8}, si_x[1] = {0};
        uint8_t want_x[1] = {1};
        mcrt_step_batch bx = b;
        memcpy(mixed, seq_a, 8 * sizeof *mixed);
        mixed[8] = 3;
        bx.n_tokens = 1, bx.n_seqs = 1, bx.n_logits = 1;
        bx.tokens = tok_x, bx.positions = pos_x, bx.seq_index = si_x, bx.want_logits = want_x;
        bx.context_len = ctx_x, bx.block_tables = tables_x, bx.n_blocks = nb_x;
        make_io(&io, &lt, logits, 1);
        ck_assert_int_eq(m->step(self, &bx, &io), MCRT_OK);
        check_row(logits, mixed, 9, 257, 264);
        seq_a[8] = 3; /* that step wrote A's position 8 */
    }

    /* Invalid batches: MCRT_E_INVAL, logged, and the cache untouched. The
     * probe: A's position 14 (block 30 offset 2) is still unwritten, so a
     * step that claims it as cached context is refused. */
    {
        mcrt_step_batch bad;
        int32_t tok_v[2] = {5, 6}, pos_v[2] = {14, 15}, si_v[2] = {0, 0};
        uint8_t want_v[2] = {0, 1};
        int32_t ctx_v[2] = {14, 8};
        int32_t nb_v[2] = {5, 3};
        const int32_t short_a[] = {9, 2, 30};
        const int32_t bad_blk[] = {9, 2, 30, 5, 32};
        const int32_t *tables_v[2] = {table_a, table_b};
        make_io(&io, &lt, logits, 1);
#define BAD_STEP(what)                                                                         \
    do {                                                                                       \
        g_last_error[0] = '\0';                                                                \
        ck_assert_int_eq(m->step(self, &bad, &io), MCRT_E_INVAL);                              \
        ck_assert_msg(g_last_error[0] != '\0', "no message for %s", what);                     \
    } while (0)
#define RESET_BAD()                                                                            \
    do {                                                                                       \
        bad = b;                                                                               \
        bad.n_tokens = 2, bad.n_seqs = 2, bad.n_logits = 1;                                    \
        bad.tokens = tok_v, bad.positions = pos_v, bad.seq_index = si_v;                       \
        bad.want_logits = want_v, bad.context_len = ctx_v, bad.block_tables = tables_v;        \
        bad.n_blocks = nb_v;                                                                   \
        tok_v[0] = 5, tok_v[1] = 6, pos_v[0] = 14, pos_v[1] = 15, si_v[0] = si_v[1] = 0;       \
        ctx_v[0] = 14, ctx_v[1] = 8, nb_v[0] = 5, nb_v[1] = 3;                                 \
        tables_v[0] = table_a, tables_v[1] = table_b;                                          \
    } while (0)
        /* The valid form of it runs (checked last, after the bad ones). */
        RESET_BAD();
        tok_v[1] = 257; /* id past the vocabulary */
        BAD_STEP("token id");
        ck_assert_ptr_nonnull(strstr(g_last_error, "257"));
        RESET_BAD();
        tok_v[1] = -1;
        BAD_STEP("negative token id");
        RESET_BAD();
        pos_v[1] = 16; /* skips position 15 */
        BAD_STEP("position gap");
        RESET_BAD();
        pos_v[0] = 13, pos_v[1] = 14; /* overlaps the cache */
        BAD_STEP("position before context_len");
        RESET_BAD();
        si_v[1] = 2;
        BAD_STEP("seq_index");
        RESET_BAD();
        tables_v[0] = bad_blk; /* block 32 is outside a pool of 32 */
        BAD_STEP("block id");
        ck_assert_ptr_nonnull(strstr(g_last_error, "32"));
        RESET_BAD();
        tables_v[0] = short_a, nb_v[0] = 3; /* 12 positions: 14, 15 do not fit */
        BAD_STEP("short block table");
        RESET_BAD();
        nb_v[1] = -1;
        BAD_STEP("negative n_blocks");
        RESET_BAD();
        bad.n_logits = 2;
        BAD_STEP("n_logits");
        RESET_BAD();
        ctx_v[0] = 16, pos_v[0] = 16, pos_v[1] = 17; /* claims unwritten cache */
        BAD_STEP("unwritten cache");
        ck_assert_ptr_nonnull(strstr(g_last_error, "never written"));
        RESET_BAD();
        ctx_v[0] = 1024, pos_v[0] = 1024, pos_v[1] = 1025;
        BAD_STEP("position past max_sequence_length");
        ck_assert_ptr_nonnull(strstr(g_last_error, "max_sequence_length"));
        RESET_BAD();
        io.logits = NULL;
        BAD_STEP("no logits buffer");
        make_io(&io, &lt, logits, 1);
        lt.shape[1] = 257;
        BAD_STEP("logits shape");
        make_io(&io, &lt, logits, 1);

        /* After all that, position 14 is still unwritten: */
        RESET_BAD();
        ctx_v[0] = 15, pos_v[0] = 15, pos_v[1] = 16;
        BAD_STEP("position 14 still unwritten");
        ck_assert_ptr_nonnull(strstr(g_last_error, "never written"));
        /* and the valid step runs, reading A's 14 earlier tokens. */
        RESET_BAD();
        ck_assert_int_eq(m->step(self, &bad, &io), MCRT_OK);
        seq_a[14] = 5, seq_a[15] = 6;
        check_row(logits, seq_a, 16, 257, 264);
#undef BAD_STEP
#undef RESET_BAD
    }
    m->destroy(self);
    ck_assert_int_eq(g_live_allocs, base);
}
END_TEST

START_TEST(model_counter_config)
{
    const mcrt_model_iface *m = load_model();
    fake_host fh;
    void *self = (void *)&fh;
    mcrt_rank_info rank = one_rank();
    long base = g_live_allocs;

    /* Refuses rank info that does not add up (world_rank != pp_rank*tp_size+tp_rank). */
    fake_host_init(&fh, "model/counter", NULL);
    rank.tp_size = 2, rank.world_size = 2, rank.tp_rank = 1, rank.world_rank = 0;
    g_last_error[0] = '\0';
    ck_assert_int_eq(m->create(&fh.host, NULL, &rank, &self), MCRT_E_INVAL);
    ck_assert_ptr_eq(self, (void *)&fh); /* out-parameter untouched */
    ck_assert_ptr_nonnull(strstr(g_last_error, "inconsistent rank info"));
    rank = one_rank();
    rank.pp_size = 2; /* world_size still 1 */
    ck_assert_int_eq(m->create(&fh.host, NULL, &rank, &self), MCRT_E_INVAL);

    /* A value out of range is a config error naming the key. */
    rank = one_rank();
    fake_host_set_int(&fh, "kv_block_size", 0);
    ck_assert_int_eq(m->create(&fh.host, NULL, &rank, &self), MCRT_E_CONFIG);
    ck_assert_ptr_nonnull(strstr(g_last_error, "kv_block_size"));
    fake_host_init(&fh, "model/counter", NULL);
    fake_host_set_int(&fh, "vocab_size", 100);
    ck_assert_int_eq(m->create(&fh.host, NULL, &rank, &self), MCRT_E_CONFIG);
    ck_assert_ptr_nonnull(strstr(g_last_error, "vocab_size"));

    /* Padding rounds up: 300 with 128 -> 384. */
    fake_host_init(&fh, "model/counter", NULL);
    fake_host_set_int(&fh, "vocab_size", 300);
    fake_host_set_int(&fh, "make_vocab_size_divisible_by", 128);
    ck_assert_int_eq(m->create(&fh.host, NULL, &rank, &self), MCRT_OK);
    {
        mcrt_model_info mi;
        memset(&mi, 0, sizeof mi);
        mi.struct_size = (uint32_t)sizeof mi;
        ck_assert_int_eq(m->info(self, &mi), MCRT_OK);
        ck_assert_int_eq(mi.vocab_size, 300);
        ck_assert_int_eq(mi.padded_vocab_size, 384);
        ck_assert_int_eq(mi.kv_block_size, 16);
        ck_assert_int_eq(mi.kv_num_blocks, 256);
    }
    m->destroy(self);
    ck_assert_int_eq(g_live_allocs, base);
}
END_TEST

/* ---- The greedy sampler ------------------------------------------------------------ */

START_TEST(sampler_greedy)
{
    const mcrt_sampler_iface *s = load_sampler();
    fake_host fh;
    void *self = NULL;
    long base = g_live_allocs;
    float logits[2 * 8];
    mcrt_sampling_params p;
    const mcrt_sampling_params *pp[2] = {&p, &p};
    mcrt_sample_batch b;
    int32_t out[2];
    float lp[2];
    double z;
    int j;

    fake_host_init(&fh, "sampler/greedy", NULL);
    ck_assert_int_eq(s->create(&fh.host, NULL, &self), MCRT_OK);
    memset(&p, 0, sizeof p);
    p.struct_size = (uint32_t)sizeof p;
    p.temperature = 0.7f;
    ck_assert_int_eq(s->validate(self, &p, 6), MCRT_OK);
    p.temperature = -0.5f;
    g_last_error[0] = '\0';
    ck_assert_int_eq(s->validate(self, &p, 6), MCRT_E_INVAL);
    ck_assert_ptr_nonnull(strstr(g_last_error, "temperature"));
    p.temperature = 1.0f;

    /* V = 6, Vp = 8. Row 0: a tie (ids 1 and 4) -> 1; a huge padding logit
     * is never chosen. Row 1: the last real id wins. */
    {
        const float r0[8] = {0.5f, 3.0f, -1.0f, 2.0f, 3.0f, 0.0f, 99.0f, 99.0f};
        const float r1[8] = {0.0f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f, 5.0f, -5.0f};
        memcpy(logits, r0, sizeof r0);
        memcpy(logits + 8, r1, sizeof r1);
    }
    memset(&b, 0, sizeof b);
    b.struct_size = (uint32_t)sizeof b;
    b.n_rows = 2;
    b.vocab_size = 6;
    b.padded_vocab_size = 8;
    b.logits = logits;
    b.params = pp;
    ck_assert_int_eq(s->sample(self, &b, out, lp), MCRT_OK);
    ck_assert_int_eq(out[0], 1);
    ck_assert_int_eq(out[1], 5);
    for (z = 0.0, j = 0; j < 6; j++)
        z += exp((double)logits[j]);
    ck_assert_double_eq_tol(lp[0], 3.0 - log(z), 1e-6);
    for (z = 0.0, j = 0; j < 6; j++)
        z += exp((double)logits[8 + j]);
    ck_assert_double_eq_tol(lp[1], 1.0 - log(z), 1e-6);
    out[0] = -7;
    ck_assert_int_eq(s->sample(self, &b, out, NULL), MCRT_OK);
    ck_assert_int_eq(out[0], 1);
    s->destroy(self);
    ck_assert_int_eq(g_live_allocs, base);
}
END_TEST

/* ---- A fake pipeline for the controller and the engine --------------------------- */

#define MAX_REQ 8
#define MAX_TOK 512

typedef struct fake_req {
    mcrt_request req; /* first: the plugins see &req */
    mcrt_sampling_params params;
    int32_t prompt_tokens[MAX_TOK];
    size_t n_prompt;
    int32_t gen[MAX_TOK];
    float lp[MAX_TOK];
    size_t n_gen, n_lp;
    char text[4 * MAX_TOK];
    size_t text_len;
    uint32_t statuses[16]; /* every status it was given, in order */
    size_t n_statuses;
    uint32_t finish_reason;
    int n_finish;
    char error[256];
} fake_req;

struct fake_pipe {
    fake_host h_tok, h_model, h_sampler, h_ctrl, h_engine;
    const mcrt_tokenizer_iface *tok;
    const mcrt_model_iface *model;
    const mcrt_sampler_iface *sampler;
    const mcrt_controller_iface *ctrl;
    const mcrt_engine_iface *engine;
    void *tok_self, *model_self, *sampler_self, *ctrl_self, *engine_self;
    mcrt_model_info mi;
    int32_t free_ids[4096]; /* LIFO stack */
    uint32_t n_free;
    uint8_t in_use[4096];
    int kv_errors;
    size_t batches[MAX_REQ][MAX_REQ]; /* request ids of each generate_static call */
    size_t batch_len[MAX_REQ];
    size_t n_batches;
};

static fake_pipe *pipe_of(const mcrt_host *h)
{
    return ((const fake_host *)h->host_data)->pipe;
}

static mcrt_status fs_tokenizer_info(const mcrt_host *h, mcrt_tokenizer_info *out)
{
    fake_pipe *p = pipe_of(h);
    return p->tok->info(p->tok_self, out);
}
static mcrt_status fs_tokenize(const mcrt_host *h, const char *text, size_t len, int32_t *ids,
                               size_t cap, size_t *out_n)
{
    fake_pipe *p = pipe_of(h);
    return p->tok->encode(p->tok_self, text, len, ids, cap, out_n);
}
static mcrt_status fs_detokenize(const mcrt_host *h, const int32_t *ids, size_t n, char *buf,
                                 size_t cap, size_t *out_len)
{
    fake_pipe *p = pipe_of(h);
    return p->tok->decode(p->tok_self, ids, n, buf, cap, out_len);
}
static mcrt_status fs_token_bytes(const mcrt_host *h, int32_t id, char *buf, size_t cap,
                                  size_t *out_len)
{
    fake_pipe *p = pipe_of(h);
    return p->tok->token_bytes(p->tok_self, id, buf, cap, out_len);
}
static mcrt_status fs_model_info(const mcrt_host *h, mcrt_model_info *out)
{
    fake_pipe *p = pipe_of(h);
    return p->model->info(p->model_self, out);
}
static mcrt_status fs_model_step(const mcrt_host *h, const mcrt_step_batch *batch,
                                 float *logits)
{
    fake_pipe *p = pipe_of(h);
    mcrt_step_io io;
    mcrt_tensor lt;
    memset(&io, 0, sizeof io);
    memset(&lt, 0, sizeof lt);
    io.struct_size = (uint32_t)sizeof io;
    lt.data = logits;
    lt.dtype = MCRT_DTYPE_F32;
    lt.device = MCRT_DEVICE_CPU;
    lt.ndim = 2;
    lt.shape[0] = batch->n_logits;
    lt.shape[1] = p->mi.padded_vocab_size;
    lt.shape[2] = lt.shape[3] = 1;
    lt.stride[0] = p->mi.padded_vocab_size;
    lt.stride[1] = 1;
    io.logits = &lt;
    return p->model->step(p->model_self, batch, &io);
}
static mcrt_status fs_kv_alloc(const mcrt_host *h, uint32_t n, int32_t *out)
{
    fake_pipe *p = pipe_of(h);
    uint32_t i;
    if (n > p->n_free)
        return MCRT_E_NOMEM;
    for (i = 0; i < n; i++) {
        out[i] = p->free_ids[--p->n_free];
        p->in_use[out[i]] = 1;
    }
    return MCRT_OK;
}
static void fs_kv_free(const mcrt_host *h, const int32_t *blocks, uint32_t n)
{
    fake_pipe *p = pipe_of(h);
    uint32_t i;
    for (i = 0; i < n; i++) {
        if (blocks[i] < 0 || blocks[i] >= p->mi.kv_num_blocks || !p->in_use[blocks[i]]) {
            p->kv_errors++;
            continue;
        }
        p->in_use[blocks[i]] = 0;
        p->free_ids[p->n_free++] = blocks[i];
    }
}
static uint32_t fs_kv_free_blocks(const mcrt_host *h)
{
    return pipe_of(h)->n_free;
}
static mcrt_status fs_sample(const mcrt_host *h, const mcrt_sample_batch *b, int32_t *out,
                             float *lp)
{
    fake_pipe *p = pipe_of(h);
    return p->sampler->sample(p->sampler_self, b, out, lp);
}
static mcrt_status fs_sampler_validate(const mcrt_host *h, const mcrt_sampling_params *params)
{
    fake_pipe *p = pipe_of(h);
    return p->sampler->validate(p->sampler_self, params, p->mi.vocab_size);
}
static mcrt_status fs_generate_static(const mcrt_host *h, mcrt_request *const *reqs, size_t n)
{
    fake_pipe *p = pipe_of(h);
    size_t i;
    ck_assert_uint_lt(p->n_batches, MAX_REQ);
    for (i = 0; i < n && i < MAX_REQ; i++)
        p->batches[p->n_batches][i] = reqs[i]->id;
    p->batch_len[p->n_batches++] = n;
    return p->ctrl->generate_static(p->ctrl_self, reqs, n);
}
static mcrt_status fs_request_update(const mcrt_host *h, mcrt_request *req,
                                     const mcrt_request_update *u)
{
    fake_req *r = (fake_req *)req;
    size_t i;
    (void)h;
    ck_assert_uint_ge(u->struct_size, sizeof *u);
    ck_assert_msg(r->n_finish == 0, "request %llu: update kind %u after FINISH",
                  (unsigned long long)req->id, u->kind);
    switch (u->kind) {
    case MCRT_UPDATE_STATUS:
        ck_assert_uint_lt(r->n_statuses, 16);
        r->statuses[r->n_statuses++] = u->status;
        req->status = u->status;
        break;
    case MCRT_UPDATE_PROMPT_TOKENS:
        ck_assert_uint_le(u->n, MAX_TOK);
        memcpy(r->prompt_tokens, u->tokens, u->n * sizeof *u->tokens);
        r->n_prompt = u->n;
        req->prompt_tokens = r->prompt_tokens;
        req->n_prompt_tokens = u->n;
        break;
    case MCRT_UPDATE_TOKENS:
        for (i = 0; i < u->n; i++) {
            ck_assert_uint_lt(r->n_gen, MAX_TOK);
            r->gen[r->n_gen++] = u->tokens[i];
            if (u->logprobs != NULL)
                r->lp[r->n_lp++] = u->logprobs[i];
        }
        ck_assert_uint_le(r->text_len + u->text_len, sizeof r->text);
        memcpy(r->text + r->text_len, u->text, u->text_len);
        r->text_len += u->text_len;
        break;
    case MCRT_UPDATE_FINISH:
        ck_assert(u->status == MCRT_REQ_COMPLETED || u->status == MCRT_REQ_FAILED);
        r->n_finish++;
        r->finish_reason = u->finish_reason;
        ck_assert_uint_lt(r->n_statuses, 16);
        r->statuses[r->n_statuses++] = u->status;
        req->status = u->status;
        if (u->error != NULL)
            snprintf(r->error, sizeof r->error, "%s", u->error);
        ck_assert((u->status == MCRT_REQ_FAILED) == (u->error != NULL));
        break;
    default:
        ck_abort_msg("unexpected update kind %u", u->kind);
    }
    return MCRT_OK;
}

static const mcrt_pipeline_services fake_services = {
    (uint32_t)sizeof(mcrt_pipeline_services),
    fs_tokenizer_info,
    fs_tokenize,
    fs_detokenize,
    fs_token_bytes,
    fs_model_info,
    fs_model_step,
    fs_kv_alloc,
    fs_kv_free,
    fs_kv_free_blocks,
    fs_sample,
    fs_sampler_validate,
    fs_generate_static,
    fs_request_update,
};

static const void *fh_get_ext(const mcrt_host *h, const char *id)
{
    const fake_host *fh = (const fake_host *)h->host_data;
    if (fh->pipe != NULL && strcmp(id, MCRT_HOST_EXT_PIPELINE) == 0)
        return &fake_services;
    return NULL;
}

/* Build the whole pipeline: model config ints as key/value pairs, then the
 * engine's max_batch_size. */
static void pipe_open(fake_pipe *p, int64_t block_size, int64_t num_blocks, int64_t eod_at,
                      int64_t max_batch)
{
    mcrt_rank_info rank = one_rank();
    int32_t i;
    memset(p, 0, sizeof *p);
    fake_host_init(&p->h_tok, "tokenizer/bytes", p);
    fake_host_init(&p->h_model, "model/counter", p);
    fake_host_init(&p->h_sampler, "sampler/greedy", p);
    fake_host_init(&p->h_ctrl, "controller/toy", p);
    fake_host_init(&p->h_engine, "engine/fifo", p);
    fake_host_set_int(&p->h_model, "kv_block_size", block_size);
    fake_host_set_int(&p->h_model, "kv_num_blocks", num_blocks);
    fake_host_set_int(&p->h_model, "eod_at_length", eod_at);
    fake_host_set_int(&p->h_model, "max_sequence_length", 64);
    fake_host_set_int(&p->h_engine, "max_batch_size", max_batch);
    p->tok = load_tok();
    p->model = load_model();
    p->sampler = load_sampler();
    p->ctrl = (const mcrt_controller_iface *)load_iface(P_CTRL, MCRT_KIND_CONTROLLER, "toy",
                                                        MCRT_IFACE_CONTROLLER);
    p->engine = (const mcrt_engine_iface *)load_iface(P_ENGINE, MCRT_KIND_ENGINE, "fifo",
                                                      MCRT_IFACE_ENGINE);
    ck_assert_int_eq(p->tok->create(&p->h_tok.host, NULL, &p->tok_self), MCRT_OK);
    ck_assert_int_eq(p->model->create(&p->h_model.host, NULL, &rank, &p->model_self), MCRT_OK);
    ck_assert_int_eq(p->sampler->create(&p->h_sampler.host, NULL, &p->sampler_self), MCRT_OK);
    ck_assert_int_eq(p->ctrl->create(&p->h_ctrl.host, NULL, &p->ctrl_self), MCRT_OK);
    ck_assert_int_eq(p->engine->create(&p->h_engine.host, NULL, &p->engine_self), MCRT_OK);
    p->mi.struct_size = (uint32_t)sizeof p->mi;
    ck_assert_int_eq(p->model->info(p->model_self, &p->mi), MCRT_OK);
    ck_assert_int_le(p->mi.kv_num_blocks, 4096);
    for (i = p->mi.kv_num_blocks - 1; i >= 0; i--)
        p->free_ids[p->n_free++] = i;
}

static void pipe_close(fake_pipe *p)
{
    p->engine->destroy(p->engine_self);
    p->ctrl->destroy(p->ctrl_self);
    p->sampler->destroy(p->sampler_self);
    p->model->destroy(p->model_self);
    p->tok->destroy(p->tok_self);
    ck_assert_int_eq(p->kv_errors, 0);
    ck_assert_uint_eq(p->n_free, (uint32_t)p->mi.kv_num_blocks); /* every block came back */
}

static void req_init(fake_req *r, uint64_t id, const char *prompt, int32_t n_gen)
{
    memset(r, 0, sizeof *r);
    r->req.struct_size = (uint32_t)sizeof r->req;
    r->req.id = id;
    r->req.prompt = prompt;
    r->req.prompt_len = strlen(prompt);
    r->req.params = &r->params;
    r->params.struct_size = (uint32_t)sizeof r->params;
    r->params.temperature = 1.0f;
    r->params.top_p = 1.0f;
    r->params.repetition_penalty = 1.0f;
    r->params.num_tokens_to_generate = n_gen;
    r->params.seed = -1;
}

/* The documented greedy rule, by hand: tokens a prompt generates. Returns
 * how many; *eod says whether the model predicted EOD (and it stopped). */
static size_t expect_greedy(const char *prompt, size_t n_gen, int64_t eod_at, int ignore_eos,
                            int32_t *out, int *eod)
{
    int32_t seq[MAX_TOK];
    size_t len = strlen(prompt), g, i;
    for (i = 0; i < len; i++)
        seq[i] = (unsigned char)prompt[i];
    *eod = 0;
    for (g = 0; g < n_gen; g++) {
        int64_t sum = 0;
        int32_t next;
        for (i = 0; i < len; i++)
            sum += seq[i];
        next = (int32_t)((sum + (int64_t)len - 1) % 256);
        if (eod_at > 0 && (int64_t)len >= eod_at) /* position len-1 predicts len */
            next = 256;
        if (next == 256 && !ignore_eos) {
            *eod = 1;
            break;
        }
        seq[len++] = next;
        out[g] = next;
    }
    return g;
}

/* log_softmax at the argmax of a counter-model row: 10 / 9 and zeros
 * (boosted: 11 / 10 / 9 and zeros) over 257 real ids. */
static double expect_logprob(int boosted)
{
    if (boosted)
        return -log(1.0 + exp(-1.0) + exp(-2.0) + 254.0 * exp(-11.0));
    return -log(1.0 + exp(-1.0) + 255.0 * exp(-10.0));
}

static void check_generated(const fake_req *r, const char *prompt, size_t n_gen, int64_t eod_at,
                            int ignore_eos)
{
    int32_t want[MAX_TOK];
    int eod = 0;
    size_t n = expect_greedy(prompt, n_gen, eod_at, ignore_eos, want, &eod), i;
    size_t text_len = 0;
    ck_assert_uint_eq(r->n_finish, 1);
    ck_assert_uint_eq(r->req.status, MCRT_REQ_COMPLETED);
    ck_assert_uint_eq(r->finish_reason, eod ? MCRT_FINISH_EOD : MCRT_FINISH_LENGTH);
    ck_assert_uint_eq(r->n_prompt, strlen(prompt));
    for (i = 0; i < r->n_prompt; i++)
        ck_assert_int_eq(r->prompt_tokens[i], (unsigned char)prompt[i]);
    ck_assert_uint_eq(r->n_gen, n);
    for (i = 0; i < n; i++) {
        ck_assert_msg(r->gen[i] == want[i], "request %llu token %zu: got %d want %d",
                      (unsigned long long)r->req.id, i, (int)r->gen[i], (int)want[i]);
        if (want[i] == 256) {
            ck_assert_mem_eq(r->text + text_len, "<|endoftext|>", 13);
            text_len += 13;
        } else {
            ck_assert_int_eq((unsigned char)r->text[text_len], want[i]);
            text_len++;
        }
    }
    ck_assert_uint_eq(r->text_len, text_len);
    if (r->params.return_log_probs) {
        ck_assert_uint_eq(r->n_lp, n);
        for (i = 0; i < n; i++) {
            int boosted = eod_at > 0 && (int64_t)(r->n_prompt + i) >= eod_at;
            ck_assert_double_eq_tol(r->lp[i], expect_logprob(boosted), 1e-5);
        }
    } else {
        ck_assert_uint_eq(r->n_lp, 0);
    }
}

START_TEST(pipeline_fifo_static_batches)
{
    fake_pipe p;
    static fake_req r[5];
    long base = g_live_allocs;
    const char *prompts[5] = {"Hello, world", "ab", "", "way too long for N", "\xff\xfe"};
    const int32_t n_gen[5] = {20, 7, 4, 60, 5};
    mcrt_status st;
    int i, calls = 0;

    pipe_open(&p, 4, 64, 0, 2);
    for (i = 0; i < 5; i++) {
        req_init(&r[i], (uint64_t)i, prompts[i], n_gen[i]);
        ck_assert_int_eq(p.engine->submit(p.engine_self, &r[i].req), MCRT_OK);
    }
    r[1].params.return_log_probs = 1;
    /* max_batch_size 2: two active, three waiting. */
    for (i = 0; i < 5; i++)
        ck_assert_uint_eq(r[i].statuses[0], i < 2 ? MCRT_REQ_ACTIVE_BUT_NOT_GENERATING_TOKENS
                                                  : MCRT_REQ_WAITING_IN_QUEUE);
    while ((st = p.engine->run(p.engine_self)) == MCRT_OK)
        ck_assert_int_lt(++calls, 10);
    ck_assert_int_eq(st, MCRT_DONE);
    ck_assert_int_eq(p.engine->run(p.engine_self), MCRT_DONE);

    /* Static batches of <= 2 in arrival order. */
    ck_assert_uint_eq(p.n_batches, 3);
    ck_assert_uint_eq(p.batch_len[0], 2);
    ck_assert_uint_eq(p.batches[0][0], 0);
    ck_assert_uint_eq(p.batches[0][1], 1);
    ck_assert_uint_eq(p.batch_len[1], 2);
    ck_assert_uint_eq(p.batches[1][0], 2);
    ck_assert_uint_eq(p.batches[1][1], 3);
    ck_assert_uint_eq(p.batch_len[2], 1);
    ck_assert_uint_eq(p.batches[2][0], 4);

    check_generated(&r[0], prompts[0], 20, 0, 0);
    check_generated(&r[1], prompts[1], 7, 0, 0);
    check_generated(&r[4], prompts[4], 5, 0, 0);
    /* Statuses: active, generating, completed (request 4 waited first). */
    ck_assert_uint_eq(r[0].n_statuses, 3);
    ck_assert_uint_eq(r[0].statuses[1], MCRT_REQ_ACTIVE_AND_GENERATING_TOKENS);
    ck_assert_uint_eq(r[4].statuses[0], MCRT_REQ_WAITING_IN_QUEUE);
    ck_assert_uint_eq(r[4].statuses[1], MCRT_REQ_ACTIVE_BUT_NOT_GENERATING_TOKENS);
    ck_assert_uint_eq(r[4].statuses[2], MCRT_REQ_ACTIVE_AND_GENERATING_TOKENS);

    /* The empty prompt and the one past max_sequence_length fail alone. */
    ck_assert_uint_eq(r[2].req.status, MCRT_REQ_FAILED);
    ck_assert_uint_eq(r[2].finish_reason, MCRT_FINISH_ERROR);
    ck_assert_ptr_nonnull(strstr(r[2].error, "empty prompt"));
    ck_assert_uint_eq(r[3].req.status, MCRT_REQ_FAILED);
    ck_assert_uint_eq(r[3].finish_reason, MCRT_FINISH_ERROR);
    ck_assert_ptr_nonnull(strstr(r[3].error, "max_sequence_length"));
    ck_assert_uint_eq(r[3].n_gen, 0);

    pipe_close(&p);
    ck_assert_int_eq(g_live_allocs, base);
}
END_TEST

START_TEST(pipeline_eod_and_kv_exhaustion)
{
    fake_pipe p;
    static fake_req r[4];
    long base = g_live_allocs;
    mcrt_request *batch[4];
    int i;

    /* eod_at_length 9: a sequence ends with EOD at 9 tokens. 8 blocks of 4. */
    pipe_open(&p, 4, 8, 9, 8);
    req_init(&r[0], 0, "abc", 10);          /* 6 tokens, then EOD */
    req_init(&r[1], 1, "xyz", 10);          /* ignore_eos: 10 tokens, the last 4 EOD */
    r[1].params.ignore_eos = 1;
    r[1].params.return_log_probs = 1;
    req_init(&r[2], 2, "0123456789abc", 4); /* needs 5 blocks: none left */
    req_init(&r[3], 3, "q", 2);
    r[3].params.temperature = -1.0f;        /* the sampler rejects it */
    for (i = 0; i < 4; i++)
        batch[i] = &r[i].req;
    ck_assert_int_eq(p.ctrl->generate_static(p.ctrl_self, batch, 4), MCRT_OK);

    check_generated(&r[0], "abc", 10, 9, 0);
    ck_assert_uint_eq(r[0].n_gen, 6);
    ck_assert_uint_eq(r[0].finish_reason, MCRT_FINISH_EOD);
    check_generated(&r[1], "xyz", 10, 9, 1);
    ck_assert_int_eq(r[1].gen[9], 256);
    ck_assert_uint_eq(r[2].req.status, MCRT_REQ_FAILED);
    ck_assert_ptr_nonnull(strstr(r[2].error, "KV blocks"));
    ck_assert_uint_eq(r[3].req.status, MCRT_REQ_FAILED);
    ck_assert_ptr_nonnull(strstr(r[3].error, "sampl"));
    pipe_close(&p);
    ck_assert_int_eq(g_live_allocs, base);
}
END_TEST

int main(int argc, char **argv)
{
    Suite *s = suite_create("toy-direct");
    TCase *tc = tcase_create("toy");
    SRunner *sr;
    int i, failed;
    if (argc != 6) {
        fprintf(stderr,
                "usage: %s TOKENIZER.so MODEL.so SAMPLER.so CONTROLLER.so ENGINE.so\n",
                argv[0]);
        return 2;
    }
    for (i = 0; i < 5; i++)
        g_paths[i] = argv[i + 1];
    tcase_add_test(tc, tokenizer_round_trip);
    tcase_add_test(tc, model_counter_step);
    tcase_add_test(tc, model_counter_config);
    tcase_add_test(tc, sampler_greedy);
    tcase_add_test(tc, pipeline_fifo_static_batches);
    tcase_add_test(tc, pipeline_eod_and_kv_exhaustion);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
