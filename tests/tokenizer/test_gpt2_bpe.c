/*
 * tests/tokenizer/test_gpt2_bpe.c: the gpt2-bpe plugin through its ABI
 * (dlopen, a fake host), plus the UTF-8 helper of plugins/common/utf8.h.
 *
 *   test_gpt2_bpe PLUGIN.so MODELS_DIR
 *
 * Expected values come from outside the plugin: ids from the JavaScript
 * reference (gpt-3-encoder 1.1.4, as printed by node), repaired bytes from
 * Python's bytes.decode('utf-8', errors='replace'), and toy vocabularies
 * whose BPE result follows by hand from GPT-2's algorithm. The whole corpus
 * is compared with the reference in test_reference.py.
 */
#include <check.h>
#include <dlfcn.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mcrt/mcrt.h"
#include "../common/fake_host.h" /* fake_host, fake_cfg_set, fake_last_error */
#include "utf8.h" /* plugins/common */

static const char *g_plugin, *g_models;
static void *g_dl;
static const mcrt_plugin_entry *g_desc;
static const mcrt_tokenizer_iface *g_tok;
static char g_scratch[4096];



/* ---- helpers ------------------------------------------------------------------ */

static char g_vocab[4200], g_merges[4200];

/* An instance over the real GPT-2 files with extra config. */
static void *create_real(const char *k1, const char *v1)
{
    mcrt_config c = {{0}, {0}, 0};
    void *self = NULL;
    fake_cfg_set(&c, "vocab_file", g_vocab);
    fake_cfg_set(&c, "merge_file", g_merges);
    if (k1 != NULL)
        fake_cfg_set(&c, k1, v1);
    fake_last_error[0] = '\0';
    mcrt_status st = g_tok->create(&fake_host, &c, &self);
    ck_assert_msg(st == MCRT_OK, "create: %s: %s", mcrt_status_str(st), fake_last_error);
    return self;
}

static size_t encode(void *self, const char *s, size_t len, int32_t *ids, size_t cap)
{
    size_t n = 0;
    mcrt_status st = g_tok->encode(self, s, len, ids, cap, &n);
    ck_assert_msg(st == MCRT_OK, "encode: %s", mcrt_status_str(st));
    return n;
}

static void assert_ids(void *self, const char *s, size_t len, const int32_t *want, size_t n_want)
{
    int32_t got[256];
    size_t n = encode(self, s, len, got, 256);
    ck_assert_uint_eq(n, n_want);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(got[i] == want[i], "'%s': id %zu is %d, want %d", s, i, (int)got[i],
                      (int)want[i]);
}

/* The id of the single-byte token for b, found through token_bytes. */
static int32_t byte_token(void *self, unsigned char b)
{
    static int32_t cache[256];
    static int filled;
    if (!filled) {
        for (int32_t id = 0; id < 50257; id++) {
            char buf[64];
            size_t len = 0;
            if (g_tok->token_bytes(self, id, buf, sizeof buf, &len) == MCRT_OK && len == 1)
                cache[(unsigned char)buf[0]] = id;
        }
        filled = 1;
    }
    return cache[b];
}

static void write_text(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(text, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

/* ---- descriptor, probe, info ----------------------------------------------------- */

START_TEST(test_descriptor)
{
    ck_assert_uint_eq(g_desc->kind, MCRT_KIND_TOKENIZER);
    ck_assert_str_eq(g_desc->name, "gpt2-bpe");
    const mcrt_config_key *k = g_desc->config_keys;
    bool special = false, cache = false;
    for (; k->name != NULL; k++) {
        ck_assert_msg(strcmp(k->name, "vocab_file") != 0 && strcmp(k->name, "merge_file") != 0 &&
                          strcmp(k->name, "tokenizer_type") != 0 && strcmp(k->name, "name") != 0,
                      "the plugin redeclares the core key %s", k->name);
        if (strcmp(k->name, "parse_special_tokens") == 0) {
            special = true;
            ck_assert_uint_eq(k->type, MCRT_CFG_BOOL);
            ck_assert_str_eq(k->default_value, "false");
        }
        if (strcmp(k->name, "cache_size") == 0) {
            cache = true;
            ck_assert_uint_eq(k->type, MCRT_CFG_INT);
        }
    }
    ck_assert(special && cache);
}
END_TEST

START_TEST(test_probe)
{
    char why[256];
    mcrt_config c = {{0}, {0}, 0};
    int32_t none = g_desc->probe(&fake_host, NULL, why, sizeof why);
    ck_assert_int_gt(none, 0);
    ck_assert_int_gt(g_desc->probe(&fake_host, &c, why, sizeof why), 0);
    fake_cfg_set(&c, "tokenizer_type", "GPT2BPETokenizer");
    ck_assert_int_gt(g_desc->probe(&fake_host, &c, why, sizeof why), none);
    why[0] = '\0';
    fake_cfg_set(&c, "tokenizer_type", "SentencePieceTokenizer");
    ck_assert_int_eq(g_desc->probe(&fake_host, &c, why, sizeof why), 0);
    ck_assert_msg(strstr(why, "SentencePieceTokenizer") != NULL, "reason: '%s'", why);
}
END_TEST

START_TEST(test_info)
{
    void *self = create_real(NULL, NULL);
    mcrt_tokenizer_info ti;
    memset(&ti, 0x55, sizeof ti);
    ti.struct_size = sizeof ti;
    ck_assert_int_eq(g_tok->info(self, &ti), MCRT_OK);
    ck_assert_int_eq(ti.vocab_size, 50257); /* entries of vocab.json */
    ck_assert_int_eq(ti.eod, 50256);        /* <|endoftext|> */
    ck_assert_int_eq(ti.bos, -1);           /* Megatron: no BOS */
    ck_assert_int_eq(ti.pad, -1);
    ck_assert_int_eq(ti.reserved, 0);
    /* A caller with an older, smaller struct: fields past its size untouched. */
    struct {
        uint32_t struct_size;
        int32_t vocab_size;
        int32_t canary;
    } small = {8, 0, 77};
    ck_assert_int_eq(g_tok->info(self, (mcrt_tokenizer_info *)&small), MCRT_OK);
    ck_assert_int_eq(small.vocab_size, 50257);
    ck_assert_int_eq(small.canary, 77);
    g_tok->destroy(self);
}
END_TEST

/* ---- encode ------------------------------------------------------------------------- */

START_TEST(test_encode_reference)
{
    /* node: require('gpt-3-encoder').encode(s) */
    void *self = create_real(NULL, NULL);
    static const int32_t hello[] = {15496, 995};
    static const int32_t eot[] = {27, 91, 437, 1659, 5239, 91, 29};
    static const int32_t aeotb[] = {64, 27, 91, 437, 1659, 5239, 91, 29, 65};
    static const int32_t mixed[] = {1026, 338, 48609, 0, 628, 220, 773, 4714};
    static const int32_t uni[] = {220, 25125, 2634, 220, 19526, 254, 25001, 121, 30325, 222};
    static const int32_t space[] = {220};
    assert_ids(self, "Hello world", 11, hello, 2);
    assert_ids(self, "<|endoftext|>", 13, eot, 7); /* plain text by default, as Megatron */
    assert_ids(self, "a<|endoftext|>b", 15, aeotb, 9);
    assert_ids(self, "It's 2024!\n\n  indented", 22, mixed, 8);
    assert_ids(self, " \xc3\xa9t\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80", 18, uni, 10);
    assert_ids(self, " ", 1, space, 1);
    /* The empty prompt: no ids, and ids may be NULL for it. */
    size_t n = 99;
    ck_assert_int_eq(g_tok->encode(self, "", 0, NULL, 0, &n), MCRT_OK);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(g_tok->encode(self, NULL, 0, NULL, 0, &n), MCRT_OK);
    g_tok->destroy(self);
}
END_TEST

START_TEST(test_parse_special_tokens)
{
    void *self = create_real("parse_special_tokens", "true");
    static const int32_t aeotb[] = {64, 50256, 65};
    static const int32_t two[] = {50256, 50256};
    static const int32_t partial[] = {27, 91, 437, 1659, 5239}; /* node: encode("<|endoftext") */
    assert_ids(self, "a<|endoftext|>b", 15, aeotb, 3);
    assert_ids(self, "<|endoftext|><|endoftext|>", 26, two, 2);
    assert_ids(self, "<|endoftext", 11, partial, 5);
    g_tok->destroy(self);
}
END_TEST

START_TEST(test_buffers)
{
    void *self = create_real(NULL, NULL);
    int32_t ids[4];
    size_t n = 0;
    char buf[8];
    /* Too small: MCRT_E_RANGE and the size needed. */
    ck_assert_int_eq(g_tok->encode(self, "Hello world", 11, ids, 1, &n), MCRT_E_RANGE);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(g_tok->encode(self, "Hello world", 11, NULL, 0, &n), MCRT_E_RANGE);
    ck_assert_uint_eq(n, 2);
    static const int32_t hw[] = {15496, 995};
    ck_assert_int_eq(g_tok->decode(self, hw, 2, NULL, 0, &n), MCRT_E_RANGE);
    ck_assert_uint_eq(n, 11);
    ck_assert_int_eq(g_tok->decode(self, hw, 2, buf, sizeof buf, &n), MCRT_E_RANGE);
    ck_assert_uint_eq(n, 11);
    ck_assert_int_eq(g_tok->token_bytes(self, 50256, buf, 4, &n), MCRT_E_RANGE);
    ck_assert_uint_eq(n, 13);
    /* Misuse is an error with a message, never a crash. */
    fake_errors = 0;
    ck_assert_int_eq(g_tok->encode(self, "x", 1, NULL, 5, &n), MCRT_E_INVAL);
    ck_assert_int_eq(g_tok->encode(self, "x", 1, ids, 4, NULL), MCRT_E_INVAL);
    ck_assert_int_eq(g_tok->encode(self, NULL, 3, ids, 4, &n), MCRT_E_INVAL);
    ck_assert_int_eq(g_tok->decode(self, NULL, 2, buf, 8, &n), MCRT_E_INVAL);
    ck_assert_int_eq(g_tok->token_bytes(self, 1, NULL, 8, &n), MCRT_E_INVAL);
    ck_assert_int_eq(fake_errors, 5);
    g_tok->destroy(self);
}
END_TEST

/* The cache changes nothing: no cache, a cache that is cleared all the
 * time, the default cache, and the same instance again. */
START_TEST(test_cache_sizes)
{
    static const char text[] =
        "The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs. "
        "It's 12:30 -- caf\xc3\xa9, na\xc3\xafve, \xe4\xbd\xa0\xe5\xa5\xbd, \xf0\x9f\x98\x80!";
    static const char *const sizes[] = {"0", "1", "3", "65536"};
    int32_t want[256], got[256];
    void *self = create_real("cache_size", "0");
    size_t n = encode(self, text, sizeof text - 1, want, 256);
    g_tok->destroy(self);
    for (size_t s = 0; s < 4; s++) {
        self = create_real("cache_size", sizes[s]);
        for (int rep = 0; rep < 3; rep++) {
            ck_assert_uint_eq(encode(self, text, sizeof text - 1, got, 256), n);
            ck_assert_mem_eq(got, want, n * sizeof *got);
        }
        g_tok->destroy(self);
    }
}
END_TEST

/* Any bytes: the tokens' raw bytes give the input back exactly, and decode
 * gives it repaired (checked here with utf8.h's repair, itself checked
 * against Python below). */
START_TEST(test_arbitrary_bytes)
{
    void *self = create_real(NULL, NULL);
    unsigned int seed = 12345;
    char text[600], back[700], dec[2000], want[2000];
    int32_t ids[700];
    for (int iter = 0; iter < 300; iter++) {
        size_t len = (size_t)(rand_r(&seed) % 600);
        for (size_t i = 0; i < len; i++) {
            int r = rand_r(&seed) % 10;
            text[i] = r < 4 ? (char)(rand_r(&seed) & 0xFF)
                      : r < 7 ? "ab \n'0\xc3\xa9"[rand_r(&seed) % 8]
                              : "\xe2\x82\xac\xf0\x9f\x98\x80"[rand_r(&seed) % 7];
        }
        size_t n = encode(self, text, len, ids, 700), o = 0, blen;
        for (size_t i = 0; i < n; i++) {
            ck_assert_int_eq(g_tok->token_bytes(self, ids[i], back + o, sizeof back - o, &blen),
                             MCRT_OK);
            o += blen;
        }
        ck_assert_uint_eq(o, len);
        ck_assert_mem_eq(back, text, len);
        size_t dl = 0;
        ck_assert_int_eq(g_tok->decode(self, ids, n, dec, sizeof dec, &dl), MCRT_OK);
        size_t wl = mcrt_utf8_repair(text, len, want);
        ck_assert_uint_eq(dl, wl);
        ck_assert_mem_eq(dec, want, wl);
    }
    g_tok->destroy(self);
}
END_TEST

/* One word of 200 KB without spaces: the long-word path, a correct round
 * trip, no crash. (The 10 MB prompt runs through the CLI: test_cli.py.) */
START_TEST(test_long_word)
{
    void *self = create_real(NULL, NULL);
    size_t len = 200000;
    char *text = malloc(len), *back = malloc(len);
    int32_t *ids = malloc(len * sizeof *ids);
    unsigned int seed = 7;
    ck_assert(text && back && ids);
    for (size_t i = 0; i < len; i++)
        text[i] = "etaoinshrdlucmfwyp"[rand_r(&seed) % 18];
    size_t n = encode(self, text, len, ids, len), o = 0, blen;
    ck_assert_uint_gt(n, len / 10);
    ck_assert_uint_lt(n, len);
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_eq(g_tok->token_bytes(self, ids[i], back + o, len - o, &blen), MCRT_OK);
        o += blen;
    }
    ck_assert_uint_eq(o, len);
    ck_assert_mem_eq(back, text, len);
    free(text);
    free(back);
    free(ids);
    g_tok->destroy(self);
}
END_TEST

/* ---- decode -------------------------------------------------------------------------- */

START_TEST(test_decode_ids_outside)
{
    void *self = create_real(NULL, NULL);
    static const int32_t bad[][3] = {{15496, 50257, 995}, {-1, 1, 2}, {1, 2, INT32_MAX}};
    static const char *const named[] = {"50257", "-1", "2147483647"};
    char buf[64];
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        fake_last_error[0] = '\0';
        ck_assert_int_eq(g_tok->decode(self, bad[i], 3, buf, sizeof buf, &n), MCRT_E_INVAL);
        ck_assert_msg(strstr(fake_last_error, named[i]) != NULL, "message '%s' does not name %s",
                      fake_last_error, named[i]);
        fake_last_error[0] = '\0';
        ck_assert_int_eq(g_tok->token_bytes(self, bad[i][i == 0 ? 1 : i == 1 ? 0 : 2], buf,
                                            sizeof buf, &n),
                         MCRT_E_INVAL);
        ck_assert_msg(strstr(fake_last_error, named[i]) != NULL, "message '%s'", fake_last_error);
    }
    g_tok->destroy(self);
}
END_TEST

/* Python: bytes.decode('utf-8', errors='replace').encode('utf-8') */
static const struct {
    const char *in, *out;
} repairs[] = {
    {"\xe2\x82", "\xef\xbf\xbd"},
    {"\xe2\x82" "A", "\xef\xbf\xbd" "A"},
    {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},
    {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    {"\xf0\x9f\x98", "\xef\xbf\xbd"},
    {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    {"\xff", "\xef\xbf\xbd"},
    {"a\x80" "b", "a\xef\xbf\xbd" "b"},
    {"\xe0\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
    {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},
    {"\xe2\x82\xac", "\xe2\x82\xac"},
    {"\xf0\x9f\x98\xe2\x82\xac", "\xef\xbf\xbd\xe2\x82\xac"},
    {"\xc3", "\xef\xbf\xbd"},
    {"\xe1\x80\xe1\x80\x80", "\xef\xbf\xbd\xe1\x80\x80"},
};

START_TEST(test_decode_repairs)
{
    void *self = create_real(NULL, NULL);
    for (size_t r = 0; r < sizeof repairs / sizeof repairs[0]; r++) {
        int32_t ids[8];
        size_t n = strlen(repairs[r].in), got = 0;
        char buf[64];
        for (size_t i = 0; i < n; i++)
            ids[i] = byte_token(self, (unsigned char)repairs[r].in[i]);
        ck_assert_int_eq(g_tok->decode(self, ids, n, buf, sizeof buf, &got), MCRT_OK);
        ck_assert_uint_eq(got, strlen(repairs[r].out));
        ck_assert_mem_eq(buf, repairs[r].out, got);
    }
    g_tok->destroy(self);
}
END_TEST

START_TEST(test_token_bytes)
{
    void *self = create_real(NULL, NULL);
    char buf[32];
    size_t n = 0;
    ck_assert_int_eq(g_tok->token_bytes(self, 50256, buf, sizeof buf, &n), MCRT_OK);
    ck_assert_uint_eq(n, 13);
    ck_assert_mem_eq(buf, "<|endoftext|>", 13);
    ck_assert_int_eq(g_tok->token_bytes(self, 220, buf, sizeof buf, &n), MCRT_OK);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(buf[0], ' ');
    ck_assert_int_eq(g_tok->token_bytes(self, 995, buf, sizeof buf, &n), MCRT_OK);
    ck_assert_uint_eq(n, 6);
    ck_assert_mem_eq(buf, " world", 6);
    /* 447 and 247: the two halves of U+2019 as GPT-2 splits it ("\xe2\x80" "\x99"). */
    ck_assert_int_eq(g_tok->token_bytes(self, 447, buf, sizeof buf, &n), MCRT_OK);
    ck_assert_uint_eq(n, 2);
    ck_assert_mem_eq(buf, "\xe2\x80", 2);
    g_tok->destroy(self);
}
END_TEST

/* ---- plugins/common/utf8.h ------------------------------------------------------------ */

START_TEST(test_utf8_repair_table)
{
    for (size_t r = 0; r < sizeof repairs / sizeof repairs[0]; r++) {
        char out[64];
        size_t n = mcrt_utf8_repair(repairs[r].in, strlen(repairs[r].in), out);
        ck_assert_uint_eq(n, strlen(repairs[r].out));
        ck_assert_mem_eq(out, repairs[r].out, n);
        ck_assert_uint_eq(mcrt_utf8_repair(repairs[r].in, strlen(repairs[r].in), NULL), n);
        ck_assert_int_eq(mcrt_utf8_valid(repairs[r].in, strlen(repairs[r].in)),
                         strcmp(repairs[r].in, repairs[r].out) == 0);
    }
}
END_TEST

START_TEST(test_utf8_stream)
{
    mcrt_utf8_stream st;
    char out[64];
    mcrt_utf8_stream_init(&st);
    /* A character split over three tokens comes out whole, once. */
    ck_assert_uint_eq(mcrt_utf8_stream_feed(&st, "a\xf0\x9f", 3, out), 1);
    ck_assert_int_eq(out[0], 'a');
    ck_assert_uint_eq(mcrt_utf8_stream_feed(&st, "\x98", 1, out), 0);
    ck_assert_uint_eq(mcrt_utf8_stream_feed(&st, "\x80!", 2, out), 5);
    ck_assert_mem_eq(out, "\xf0\x9f\x98\x80!", 5);
    ck_assert_uint_eq(mcrt_utf8_stream_flush(&st, out), 0);
    /* Broken by the next byte: one U+FFFD, then the byte itself. */
    ck_assert_uint_eq(mcrt_utf8_stream_feed(&st, "\xe2\x82", 2, out), 0);
    ck_assert_uint_eq(mcrt_utf8_stream_feed(&st, "A", 1, out), 4);
    ck_assert_mem_eq(out, "\xef\xbf\xbd" "A", 4);
    /* Cut off at the end: the flush gives one U+FFFD. */
    ck_assert_uint_eq(mcrt_utf8_stream_feed(&st, "\xe2\x82", 2, out), 0);
    ck_assert_uint_eq(mcrt_utf8_stream_flush(&st, out), 3);
    ck_assert_mem_eq(out, "\xef\xbf\xbd", 3);
    ck_assert_uint_eq(mcrt_utf8_stream_flush(&st, out), 0);
}
END_TEST

/* Any split of any bytes, fed piece by piece, gives the whole-buffer repair. */
START_TEST(test_utf8_stream_splits)
{
    unsigned int seed = 99;
    char in[64], whole[256], streamed[512];
    for (int iter = 0; iter < 20000; iter++) {
        size_t len = (size_t)(rand_r(&seed) % 40), o = 0;
        for (size_t i = 0; i < len; i++) {
            int r = rand_r(&seed) % 4;
            in[i] = r == 0   ? (char)(rand_r(&seed) & 0xFF)
                    : r == 1 ? (char)(0x80 | (rand_r(&seed) & 0x3F))
                    : r == 2 ? "\xc3\xe2\xf0\xed\xf4\xe0"[rand_r(&seed) % 6]
                             : "a \x9f\x80\xbf"[rand_r(&seed) % 5];
        }
        size_t wl = mcrt_utf8_repair(in, len, whole);
        mcrt_utf8_stream st;
        mcrt_utf8_stream_init(&st);
        for (size_t i = 0; i < len;) {
            size_t k = 1 + (size_t)(rand_r(&seed) % 5);
            if (k > len - i)
                k = len - i;
            size_t w = mcrt_utf8_stream_feed(&st, in + i, k, streamed + o);
            ck_assert_uint_le(w, mcrt_utf8_stream_bound(k));
            /* Never a partial character: what came out so far is valid UTF-8. */
            ck_assert(mcrt_utf8_valid(streamed, o + w));
            o += w;
            i += k;
        }
        o += mcrt_utf8_stream_flush(&st, streamed + o);
        ck_assert_uint_eq(o, wl);
        ck_assert_mem_eq(streamed, whole, wl);
    }
}
END_TEST

/* ---- toy vocabularies: bad input, and BPE by hand ------------------------------------------ */

/* GPT-2's bytes_to_unicode, written out again here. */
static unsigned byte_symbol(unsigned b)
{
    unsigned n = 0;
    for (unsigned x = 0; x < 256; x++) {
        bool printable = (x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || x >= 0xAE;
        if (x == b)
            return printable ? x : 256 + n;
        if (!printable)
            n++;
    }
    return 0;
}

/* A JSON object: the 256 byte tokens (ids 0..255 in byte order) then
 * `extra` (JSON members text, may be ""). */
static char *toy_vocab(const char *extra)
{
    size_t cap = 256 * 16 + strlen(extra) + 16, o = 0;
    char *s = malloc(cap);
    ck_assert_ptr_nonnull(s);
    s[o++] = '{';
    for (unsigned b = 0; b < 256; b++)
        o += (size_t)snprintf(s + o, cap - o, "%s\"\\u%04x\": %u", b ? ", " : "",
                              byte_symbol(b), b);
    o += (size_t)snprintf(s + o, cap - o, "%s%s}", extra[0] ? ", " : "", extra);
    return s;
}

typedef struct bad_case {
    const char *name;
    const char *vocab_extra; /* NULL: use vocab_raw */
    const char *vocab_raw;   /* the whole vocab.json */
    const char *merges;
    mcrt_status want;
    const char *expect;      /* a substring of the error message */
} bad_case;

#define MERGES_OK "#version: 0.2\na b\n"

static const bad_case bad_cases[] = {
    {"not JSON", NULL, "hello", MERGES_OK, MCRT_E_DATA, "not valid JSON"},
    {"empty file", NULL, "", MERGES_OK, MCRT_E_DATA, "empty"},
    {"not an object", NULL, "[1, 2, 3]", MERGES_OK, MCRT_E_DATA, "got an array"},
    {"a string", NULL, "\"vocab\"", MERGES_OK, MCRT_E_DATA, "got a string"},
    {"empty object", NULL, "{}", MERGES_OK, MCRT_E_DATA, "empty"},
    {"truncated", NULL, "{\"a\": 1", MERGES_OK, MCRT_E_DATA, "never ends"},
    {"trailing comma", NULL, "{\"a\": 0,}", MERGES_OK, MCRT_E_DATA, "token string"},
    {"trailing content", "\"ab\": 256", NULL, MERGES_OK, MCRT_E_DATA,
     "unexpected content after the object"},
    {"duplicate token", "\"ab\": 256, \"ab\": 257", NULL, MERGES_OK, MCRT_E_DATA,
     "duplicate token 'ab'"},
    {"duplicate token through an escape", "\"ab\": 256, \"a\\u0062\": 257", NULL, MERGES_OK,
     MCRT_E_DATA, "duplicate token"},
    {"id out of range", "\"ab\": 999", NULL, MERGES_OK, MCRT_E_DATA, "id 999 is out of range"},
    {"negative id", "\"ab\": -1", NULL, MERGES_OK, MCRT_E_DATA, "id -1 is out of range"},
    {"huge id", "\"ab\": 99999999999999999999999", NULL, MERGES_OK, MCRT_E_DATA,
     "out of range"},
    {"non-integer id", "\"ab\": 256.5", NULL, MERGES_OK, MCRT_E_DATA,
     "must be an integer, got 256.5"},
    {"exponent id", "\"ab\": 2.56e2", NULL, MERGES_OK, MCRT_E_DATA, "must be an integer"},
    {"string id", "\"ab\": \"256\"", NULL, MERGES_OK, MCRT_E_DATA,
     "must be an integer, got a string"},
    {"null id", "\"ab\": null", NULL, MERGES_OK, MCRT_E_DATA, "must be an integer, got null"},
    {"array id", "\"ab\": [256]", NULL, MERGES_OK, MCRT_E_DATA, "got an array"},
    {"boolean id", "\"ab\": true", NULL, MERGES_OK, MCRT_E_DATA, "got a boolean"},
    {"leading zero", "\"ab\": 0256", NULL, MERGES_OK, MCRT_E_DATA, "leading zero"},
    {"id given twice", "\"ab\": 256, \"cd\": 256", NULL, MERGES_OK, MCRT_E_DATA,
     "id 256 is given to two tokens"},
    {"not a byte symbol", "\"ab\": 256, \"\xe2\x82\xac\": 257", NULL, MERGES_OK, MCRT_E_DATA,
     "U+20AC"},
    {"invalid UTF-8 in a key", "\"ab\": 256, \"\xff\": 257", NULL, MERGES_OK, MCRT_E_DATA,
     "not valid UTF-8"},
    {"lone surrogate", "\"ab\": 256, \"\\ud800\": 257", NULL, MERGES_OK, MCRT_E_DATA,
     "lone surrogate"},
    {"raw control character", "\"ab\": 256, \"a\tb\": 257", NULL, MERGES_OK, MCRT_E_DATA,
     "control character"},
    {"bad escape", "\"ab\": 256, \"a\\qb\": 257", NULL, MERGES_OK, MCRT_E_DATA,
     "unknown escape"},
    {"empty token", "\"ab\": 256, \"\": 257", NULL, MERGES_OK, MCRT_E_DATA, "empty"},
    {"missing byte", NULL, "{\"a\": 0, \"b\": 1, \"ab\": 2}", MERGES_OK, MCRT_E_DATA,
     "no token for the byte 0x00"},
    {"merges: three fields", "\"ab\": 256", NULL, "#version: 0.2\na b c\n", MCRT_E_DATA,
     ":2: expected 2 symbols separated by a space, got 3"},
    {"merges: one field", "\"ab\": 256", NULL, "#version: 0.2\nab\n", MCRT_E_DATA,
     "got 1 field"},
    {"merges: unknown symbol", "\"ab\": 256", NULL, "#version: 0.2\na b\nab zz\n", MCRT_E_DATA,
     ":3: unknown symbol 'zz'"},
    {"merges: result not in the vocabulary", "\"ab\": 256", NULL, "#version: 0.2\nb a\n",
     MCRT_E_DATA, "'ba', which is not in the vocabulary"},
    {"merges: not a byte symbol", "\"ab\": 256", NULL, "#version: 0.2\na \xe2\x82\xac\n",
     MCRT_E_DATA, "U+20AC"},
    {"merges: invalid UTF-8", "\"ab\": 256", NULL, "#version: 0.2\na \xff\n", MCRT_E_DATA,
     "not valid UTF-8"},
    {"merges: duplicate", "\"ab\": 256", NULL, "#version: 0.2\na b\na b\n", MCRT_E_DATA,
     ":3: duplicate merge 'a b' (first on line 2)"},
    {"merges: empty line inside", "\"ab\": 256, \"cd\": 257", NULL,
     "#version: 0.2\na b\n\nc d\n", MCRT_E_DATA, ":3: empty line"},
};

START_TEST(test_bad_vocab)
{
    const bad_case *c = &bad_cases[_i];
    char vpath[4200], mpath[4200];
    snprintf(vpath, sizeof vpath, "%s/bad%d.json", g_scratch, _i);
    snprintf(mpath, sizeof mpath, "%s/bad%d.txt", g_scratch, _i);
    char *v = c->vocab_extra ? toy_vocab(c->vocab_extra) : NULL;
    const char *vt = v ? v : c->vocab_raw;
    if (strcmp(c->name, "trailing content") == 0) {
        /* a valid object followed by more text */
        size_t l = strlen(vt);
        char *t = malloc(l + 8);
        memcpy(t, vt, l);
        memcpy(t + l, "\n{}", 4);
        free(v);
        v = t;
        vt = v;
    }
    write_text(vpath, vt, strlen(vt));
    write_text(mpath, c->merges, strlen(c->merges));
    mcrt_config cfg = {{0}, {0}, 0};
    fake_cfg_set(&cfg, "vocab_file", vpath);
    fake_cfg_set(&cfg, "merge_file", mpath);
    void *self = NULL;
    fake_last_error[0] = '\0';
    mcrt_status st = g_tok->create(&fake_host, &cfg, &self);
    ck_assert_msg(st == c->want, "%s: status %s, message '%s'", c->name, mcrt_status_str(st),
                  fake_last_error);
    ck_assert_ptr_null(self);
    ck_assert_msg(strstr(fake_last_error, c->expect) != NULL, "%s: message '%s' lacks '%s'",
                  c->name, fake_last_error, c->expect);
    /* The message names the file. */
    ck_assert_msg(strstr(fake_last_error, strstr(c->name, "merges") ? mpath : vpath) != NULL,
                  "%s: message '%s' does not name the file", c->name, fake_last_error);
    free(v);
}
END_TEST

START_TEST(test_missing_files)
{
    mcrt_config cfg = {{0}, {0}, 0};
    void *self = NULL;
    char dir[4200];
    /* Unset keys: a config error naming the key. */
    fake_last_error[0] = '\0';
    ck_assert_int_eq(g_tok->create(&fake_host, &cfg, &self), MCRT_E_CONFIG);
    ck_assert(strstr(fake_last_error, "vocab_file") != NULL);
    fake_cfg_set(&cfg, "vocab_file", g_vocab);
    ck_assert_int_eq(g_tok->create(&fake_host, &cfg, &self), MCRT_E_CONFIG);
    ck_assert(strstr(fake_last_error, "merge_file") != NULL);
    /* Missing files, a folder: I/O errors naming the path. */
    fake_cfg_set(&cfg, "merge_file", "/nonexistent/merges.txt");
    ck_assert_int_eq(g_tok->create(&fake_host, &cfg, &self), MCRT_E_IO);
    ck_assert(strstr(fake_last_error, "/nonexistent/merges.txt") != NULL);
    fake_cfg_set(&cfg, "vocab_file", "/nonexistent/vocab.json");
    fake_cfg_set(&cfg, "merge_file", g_merges);
    ck_assert_int_eq(g_tok->create(&fake_host, &cfg, &self), MCRT_E_IO);
    ck_assert(strstr(fake_last_error, "/nonexistent/vocab.json") != NULL);
    snprintf(dir, sizeof dir, "%s", g_scratch);
    fake_cfg_set(&cfg, "vocab_file", dir);
    ck_assert_int_eq(g_tok->create(&fake_host, &cfg, &self), MCRT_E_IO);
    ck_assert(strstr(fake_last_error, "folder") != NULL);
    ck_assert_ptr_null(self);
}
END_TEST

/* A toy vocabulary, written to files, as an instance. */
static void *toy_create(const char *extra, const char *merges, const char *tag)
{
    char vpath[4200], mpath[4200];
    snprintf(vpath, sizeof vpath, "%s/toy-%s.json", g_scratch, tag);
    snprintf(mpath, sizeof mpath, "%s/toy-%s.txt", g_scratch, tag);
    char *v = toy_vocab(extra);
    write_text(vpath, v, strlen(v));
    free(v);
    write_text(mpath, merges, strlen(merges));
    mcrt_config cfg = {{0}, {0}, 0};
    fake_cfg_set(&cfg, "vocab_file", vpath);
    fake_cfg_set(&cfg, "merge_file", mpath);
    void *self = NULL;
    fake_last_error[0] = '\0';
    mcrt_status st = g_tok->create(&fake_host, &cfg, &self);
    ck_assert_msg(st == MCRT_OK, "toy %s: %s: %s", tag, mcrt_status_str(st), fake_last_error);
    return self;
}

/* GPT-2 merges every occurrence of the best pair in one pass before it looks
 * at the pairs that pass made. With merges [xx x] (rank 0) and [x x] (rank
 * 1), "xxxx" is [x x] everywhere first: xx xx; then no rank applies. A word
 * longer than 64 bytes takes the long-word path and must do the same. */
START_TEST(test_toy_merge_rounds)
{
    void *self = toy_create("\"xx\": 256, \"xxx\": 257, \"<|endoftext|>\": 258",
                            "#version: 0.2\r\nxx x\r\nx x\r\n\r\n", "rounds");
    mcrt_tokenizer_info ti = {sizeof ti, 0, 0, 0, 0, 0};
    ck_assert_int_eq(g_tok->info(self, &ti), MCRT_OK);
    ck_assert_int_eq(ti.vocab_size, 259);
    ck_assert_int_eq(ti.eod, 258);
    for (size_t len = 1; len <= 201; len += (len < 70 ? 1 : 33)) {
        char text[256];
        int32_t ids[256];
        memset(text, 'x', len);
        size_t n = encode(self, text, len, ids, 256);
        /* Even: the first pass leaves len/2 "xx" and no rank applies. Odd:
         * it leaves (len-1)/2 "xx" and one "x"; then [xx x] (rank 0) joins
         * the last "xx" and the "x" into "xxx". */
        size_t pairs = len % 2 ? (len >= 3 ? (len - 3) / 2 : 0) : len / 2;
        size_t want_n = pairs + (len % 2 ? 1 : 0);
        ck_assert_msg(n == want_n, "len %zu: %zu ids, want %zu", len, n, want_n);
        for (size_t i = 0; i < pairs; i++)
            ck_assert_msg(ids[i] == 256, "len %zu: id %zu is %d", len, i, (int)ids[i]);
        if (len % 2)
            ck_assert_int_eq(ids[pairs], len == 1 ? 'x' : 257);
    }
    g_tok->destroy(self);
}
END_TEST

/* No version line: the first line is a merge. Merges rank by line. */
START_TEST(test_toy_no_version_line)
{
    void *self = toy_create("\"ab\": 256, \"bc\": 257", "b c\na b\n", "nover");
    int32_t ids[8];
    size_t n = encode(self, "abc", 3, ids, 8); /* (b c) ranks first: a bc */
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(ids[0], 'a');
    ck_assert_int_eq(ids[1], 257);
    g_tok->destroy(self);
    self = toy_create("\"ab\": 256, \"bc\": 257", "#version: 0.2\na b\nb c", "ver");
    n = encode(self, "abc", 3, ids, 8); /* (a b) first: ab c */
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(ids[0], 256);
    ck_assert_int_eq(ids[1], 'c');
    g_tok->destroy(self);
}
END_TEST

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

/* ---- main ---------------------------------------------------------------------------------- */

static Suite *suite(void)
{
    Suite *s = suite_create("gpt2-bpe");
    TCase *t = tcase_create("plugin");
    tcase_set_timeout(t, 600);
    tcase_add_test(t, test_descriptor);
    tcase_add_test(t, test_probe);
    tcase_add_test(t, test_info);
    tcase_add_test(t, test_encode_reference);
    tcase_add_test(t, test_parse_special_tokens);
    tcase_add_test(t, test_buffers);
    tcase_add_test(t, test_cache_sizes);
    tcase_add_test(t, test_arbitrary_bytes);
    tcase_add_test(t, test_long_word);
    tcase_add_test(t, test_decode_ids_outside);
    tcase_add_test(t, test_decode_repairs);
    tcase_add_test(t, test_token_bytes);
    suite_add_tcase(s, t);
    t = tcase_create("utf8");
    tcase_add_test(t, test_utf8_repair_table);
    tcase_add_test(t, test_utf8_stream);
    tcase_add_test(t, test_utf8_stream_splits);
    suite_add_tcase(s, t);
    t = tcase_create("bad_input");
    tcase_set_timeout(t, 600);
    tcase_add_loop_test(t, test_bad_vocab, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_test(t, test_missing_files);
    tcase_add_test(t, test_toy_merge_rounds);
    tcase_add_test(t, test_toy_no_version_line);
    suite_add_tcase(s, t);
    return s;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: test_gpt2_bpe PLUGIN.so MODELS_DIR\n");
        return 2;
    }
    g_plugin = argv[1];
    g_models = argv[2];
    snprintf(g_vocab, sizeof g_vocab, "%s/vocab.json", g_models);
    snprintf(g_merges, sizeof g_merges, "%s/merges.txt", g_models);
    const char *base = getenv("TEST_SCRATCH") ? getenv("TEST_SCRATCH") : "/tmp";
    snprintf(g_scratch, sizeof g_scratch, "%s/gpt2-bpe-XXXXXX", base);
    if (mkdtemp(g_scratch) == NULL) {
        perror(g_scratch);
        return 2;
    }
    g_dl = dlopen(g_plugin, RTLD_NOW | RTLD_LOCAL);
    if (g_dl == NULL) {
        fprintf(stderr, "test_gpt2_bpe: %s\n", dlerror());
        return 2;
    }
    g_desc = dlsym(g_dl, "mcrt_plugin");
    g_tok = g_desc ? g_desc->get_iface(MCRT_IFACE_TOKENIZER) : NULL;
    if (g_tok == NULL) {
        fprintf(stderr, "test_gpt2_bpe: %s: no tokenizer interface\n", g_plugin);
        return 2;
    }
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    dlclose(g_dl);
    /* Leave the scratch files only when something failed. */
    if (failed == 0)
        nftw(g_scratch, rm_one, 8, FTW_DEPTH | FTW_PHYS);
    return failed == 0 ? 0 : 1;
}
