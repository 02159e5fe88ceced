/*
 * mcrt-tokenizer-bytes: a test-only byte tokenizer.
 *
 * Ids 0..255 are the bytes themselves; id 256 is the end-of-document token
 * `<|endoftext|>` (its text is the `eod_text` key). vocab_size 257, eod 256,
 * no BOS, no pad. encode() gives one id per byte. decode() concatenates the
 * tokens' bytes and replaces invalid UTF-8 with U+FFFD using the "maximal
 * subpart" rule (exactly Python's bytes.decode('utf-8', errors='replace')).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mcrt/mcrt.h"
#include "toy_common.h"

#define TB_EOD 256
#define TB_VOCAB 257
#define TB_DEFAULT_EOD_TEXT "<|endoftext|>"

static const mcrt_config_key tb_keys[] = {
    MCRT_CONFIG_KEY(MCRT_CFG_STRING, "eod_text", TB_DEFAULT_EOD_TEXT,
                    "text of the end-of-document token (id 256)"),
    MCRT_CONFIG_KEY_END,
};

typedef struct tb_self {
    const mcrt_host *host;
    char *eod_text; /* host memory, NUL-terminated */
    size_t eod_len;
} tb_self;

static mcrt_status tb_create(const mcrt_host *host, const mcrt_config *cfg, void **out_self)
{
    const char *eod = NULL;
    tb_self *self;
    mcrt_status st = toy_check_host(host);
    if (st != MCRT_OK)
        return st;
    if (out_self == NULL) {
        toy_log(host, MCRT_LOG_ERROR, "create: out_self is NULL");
        return MCRT_E_INVAL;
    }
    st = toy_config_string(host, cfg, "eod_text", TB_DEFAULT_EOD_TEXT, &eod);
    if (st != MCRT_OK)
        return st;
    self = (tb_self *)toy_calloc(host, 1, sizeof *self);
    if (self == NULL) {
        toy_log(host, MCRT_LOG_ERROR, "out of memory creating the byte tokenizer");
        return MCRT_E_NOMEM;
    }
    self->host = host;
    self->eod_len = strlen(eod);
    self->eod_text = (char *)toy_calloc(host, self->eod_len + 1, 1);
    if (self->eod_text == NULL) {
        toy_free(host, self);
        toy_log(host, MCRT_LOG_ERROR, "out of memory copying eod_text");
        return MCRT_E_NOMEM;
    }
    memcpy(self->eod_text, eod, self->eod_len);
    *out_self = self;
    return MCRT_OK;
}

static void tb_destroy(void *vself)
{
    tb_self *self = (tb_self *)vself;
    if (self == NULL)
        return;
    toy_free(self->host, self->eod_text);
    toy_free(self->host, self);
}

static mcrt_status tb_info(void *vself, mcrt_tokenizer_info *out)
{
    tb_self *self = (tb_self *)vself;
    if (out == NULL) {
        toy_log(self->host, MCRT_LOG_ERROR, "info: out is NULL");
        return MCRT_E_INVAL;
    }
    /* Write only the fields the caller's struct has. */
    if (MCRT_HAS(out, vocab_size))
        out->vocab_size = TB_VOCAB;
    if (MCRT_HAS(out, eod))
        out->eod = TB_EOD;
    if (MCRT_HAS(out, bos))
        out->bos = -1;
    if (MCRT_HAS(out, pad))
        out->pad = -1;
    if (MCRT_HAS(out, reserved))
        out->reserved = 0;
    return MCRT_OK;
}

/* Common checks of a (buf, cap, out_len) triple: buf may be NULL only when
 * cap is 0 (a size query). */
static mcrt_status tb_check_buf(const tb_self *self, const char *what, const void *buf,
                                size_t cap, const void *out_len)
{
    if (out_len == NULL) {
        toy_log(self->host, MCRT_LOG_ERROR, "%s: the size out-parameter is NULL", what);
        return MCRT_E_INVAL;
    }
    if (buf == NULL && cap != 0) {
        toy_log(self->host, MCRT_LOG_ERROR, "%s: buffer is NULL but cap is %zu", what, cap);
        return MCRT_E_INVAL;
    }
    return MCRT_OK;
}

static mcrt_status tb_encode(void *vself, const char *text, size_t len, int32_t *ids, size_t cap,
                             size_t *out_n)
{
    tb_self *self = (tb_self *)vself;
    size_t i;
    mcrt_status st = tb_check_buf(self, "encode", ids, cap, out_n);
    if (st != MCRT_OK)
        return st;
    if (text == NULL && len != 0) {
        toy_log(self->host, MCRT_LOG_ERROR, "encode: text is NULL but len is %zu", len);
        return MCRT_E_INVAL;
    }
    *out_n = len;
    if (cap < len)
        return MCRT_E_RANGE;
    for (i = 0; i < len; i++)
        ids[i] = (int32_t)(unsigned char)text[i];
    return MCRT_OK;
}

/* A cursor over the concatenated bytes of a token sequence (ids already
 * validated), so decode needs no scratch buffer. */
typedef struct tb_cursor {
    const tb_self *self;
    const int32_t *ids;
    size_t n;
    size_t i;   /* current token */
    size_t off; /* byte offset inside the current token */
} tb_cursor;

static size_t tb_token_len(const tb_self *self, int32_t id)
{
    return id == TB_EOD ? self->eod_len : 1;
}

static unsigned char tb_token_byte(const tb_self *self, int32_t id, size_t off)
{
    return id == TB_EOD ? (unsigned char)self->eod_text[off] : (unsigned char)id;
}

/* Skip tokens with no bytes left (an empty eod_text). */
static void tb_cursor_settle(tb_cursor *c)
{
    while (c->i < c->n && c->off >= tb_token_len(c->self, c->ids[c->i])) {
        c->i++;
        c->off = 0;
    }
}

/* Copy up to 4 upcoming bytes into out; returns how many there are. */
static size_t tb_cursor_peek(const tb_cursor *c, unsigned char out[4])
{
    tb_cursor t = *c;
    size_t k = 0;
    while (k < 4) {
        tb_cursor_settle(&t);
        if (t.i >= t.n)
            break;
        out[k++] = tb_token_byte(t.self, t.ids[t.i], t.off);
        t.off++;
    }
    return k;
}

static void tb_cursor_advance(tb_cursor *c, size_t k)
{
    while (k-- > 0) {
        tb_cursor_settle(c);
        c->off++;
    }
    tb_cursor_settle(c);
}

/* The length of the valid UTF-8 sequence at b[0..avail) (1..4), or 0 when it
 * is invalid, in which case *bad is the length of its maximal subpart (the
 * bytes one U+FFFD replaces, >= 1). Unicode 15, table 3-7. */
static size_t tb_utf8_seq(const unsigned char *b, size_t avail, size_t *bad)
{
    unsigned char lo = 0x80, hi = 0xBF;
    size_t need, k;
    unsigned char c = b[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        *bad = 1; /* 80..C1, F5..FF: never valid as a lead byte */
        return 0;
    }
    for (k = 1; k < need; k++) {
        unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
        if (k >= avail || b[k] < l || b[k] > h) {
            *bad = k;
            return 0;
        }
    }
    return need;
}

/* Decode into buf (NULL = only measure); returns the bytes written/needed. */
static size_t tb_decode_into(const tb_self *self, const int32_t *ids, size_t n, char *buf)
{
    static const char replacement[3] = {(char)0xEF, (char)0xBF, (char)0xBD};
    tb_cursor c = {self, ids, n, 0, 0};
    size_t len = 0;
    tb_cursor_settle(&c);
    while (c.i < c.n) {
        unsigned char b[4];
        size_t avail = tb_cursor_peek(&c, b), bad = 0;
        size_t ok = tb_utf8_seq(b, avail, &bad);
        if (ok > 0) {
            if (buf != NULL)
                memcpy(buf + len, b, ok);
            len += ok;
            tb_cursor_advance(&c, ok);
        } else {
            if (buf != NULL)
                memcpy(buf + len, replacement, sizeof replacement);
            len += sizeof replacement;
            tb_cursor_advance(&c, bad);
        }
    }
    return len;
}

static int tb_valid_id(int32_t id)
{
    return id >= 0 && id < TB_VOCAB;
}

static mcrt_status tb_decode(void *vself, const int32_t *ids, size_t n, char *buf, size_t cap,
                             size_t *out_len)
{
    tb_self *self = (tb_self *)vself;
    size_t i, need;
    mcrt_status st = tb_check_buf(self, "decode", buf, cap, out_len);
    if (st != MCRT_OK)
        return st;
    if (ids == NULL && n != 0) {
        toy_log(self->host, MCRT_LOG_ERROR, "decode: ids is NULL but n is %zu", n);
        return MCRT_E_INVAL;
    }
    for (i = 0; i < n; i++) {
        if (!tb_valid_id(ids[i])) {
            toy_log(self->host, MCRT_LOG_ERROR,
                    "decode: token id %d (index %zu) is outside the vocabulary [0, %d)",
                    (int)ids[i], i, TB_VOCAB);
            return MCRT_E_INVAL;
        }
    }
    need = tb_decode_into(self, ids, n, NULL);
    *out_len = need;
    if (need > cap)
        return MCRT_E_RANGE;
    tb_decode_into(self, ids, n, buf);
    return MCRT_OK;
}

static mcrt_status tb_token_bytes(void *vself, int32_t id, char *buf, size_t cap,
                                  size_t *out_len)
{
    tb_self *self = (tb_self *)vself;
    size_t need;
    mcrt_status st = tb_check_buf(self, "token_bytes", buf, cap, out_len);
    if (st != MCRT_OK)
        return st;
    if (!tb_valid_id(id)) {
        toy_log(self->host, MCRT_LOG_ERROR,
                "token_bytes: token id %d is outside the vocabulary [0, %d)", (int)id, TB_VOCAB);
        return MCRT_E_INVAL;
    }
    need = tb_token_len(self, id);
    *out_len = need;
    if (need > cap)
        return MCRT_E_RANGE;
    if (id == TB_EOD)
        memcpy(buf, self->eod_text, need);
    else
        buf[0] = (char)(unsigned char)id;
    return MCRT_OK;
}

static const mcrt_tokenizer_iface tb_iface = {
    (uint32_t)sizeof(mcrt_tokenizer_iface),
    tb_create,
    tb_destroy,
    tb_info,
    tb_encode,
    tb_decode,
    tb_token_bytes,
};

static const void *tb_get_iface(const char *iface_id)
{
    if (iface_id != NULL && strcmp(iface_id, MCRT_IFACE_TOKENIZER) == 0)
        return &tb_iface;
    return NULL;
}

MCRT_PLUGIN_DEFINE(MCRT_KIND_TOKENIZER, "bytes", "0.1.0",
                   "test-only: one token per byte, 256 = <|endoftext|>", tb_keys, NULL, NULL, NULL,
                   tb_get_iface);
