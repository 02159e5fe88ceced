/*
 * mcrt-tokenizer-gpt2-bpe: Megatron's GPT2BPETokenizer (OpenAI's GPT-2
 * byte-level BPE), the plugin around bpe.c.
 *
 *   tokenizer:
 *     name: gpt2-bpe                 # or auto
 *     tokenizer_type: GPT2BPETokenizer
 *     vocab_file: models/gpt2/vocab.json
 *     merge_file: models/gpt2/merges.txt
 *     parse_special_tokens: false    # this plugin's keys: see README.md
 *     cache_size: 65536
 *
 * vocab_size = entries of vocab.json, eod = id of <|endoftext|>, no BOS, no
 * pad (Megatron pads with eod). decode() repairs invalid UTF-8 to U+FFFD like
 * Python's errors='replace'; token_bytes() gives a token's raw bytes.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

#include "../common/utf8.h" /* mcrt_utf8_valid, mcrt_utf8_repair */
#include "bpe.h"
#include "mcrt/mcrt.h"

#define GB_TYPE "GPT2BPETokenizer"
#define GB_SCRATCH_KEEP (64u << 20) /* decode scratch larger than this is freed after use */

static const mcrt_config_key gb_keys[] = {
    MCRT_CONFIG_KEY(MCRT_CFG_BOOL, "parse_special_tokens", "false",
                    "encode <|endoftext|> in prompt text as the end-of-document id; false = "
                    "plain text, as Megatron's GPT2BPETokenizer"),
    MCRT_CONFIG_KEY_RANGE(MCRT_CFG_INT, "cache_size", "65536", 0, 4194304,
                          "words kept in each tokenizer instance's BPE merge cache; 0 = none"),
    MCRT_CONFIG_KEY_END,
};

typedef struct gb_self {
    const mcrt_host *host;
    g2b_vocab *vocab;
    g2b_encoder *enc;
    char *scratch; /* decode: the raw bytes before repair */
    size_t scratch_cap;
} gb_self;

/* A path key of the tokenizer section; MCRT_E_CONFIG with a message when unset. */
static mcrt_status gb_path(const mcrt_host *host, const mcrt_config *cfg, const char *key,
                           const char *flag, const char **out)
{
    const char *v = NULL;
    mcrt_status st = host->config_string(host, cfg, key, &v);
    if (st == MCRT_E_NOTFOUND || (st == MCRT_OK && (v == NULL || v[0] == '\0'))) {
        host->log(host, MCRT_LOG_ERROR,
                  "tokenizer.%s is not set: GPT2BPETokenizer needs it (give %s FILE or "
                  "`%s:` in the tokenizer section)",
                  key, flag, key);
        return MCRT_E_CONFIG;
    }
    if (st != MCRT_OK)
        return st;
    *out = v;
    return MCRT_OK;
}

static mcrt_status gb_create(const mcrt_host *host, const mcrt_config *cfg, void **out_self)
{
    const char *vocab = NULL, *merges = NULL;
    bool special = false;
    int64_t cache = 65536;
    char err[1024];
    mcrt_status st;
    if (host == NULL || out_self == NULL)
        return MCRT_E_INVAL;
    st = gb_path(host, cfg, "vocab_file", "--vocab-file", &vocab);
    if (st == MCRT_OK)
        st = gb_path(host, cfg, "merge_file", "--merge-file", &merges);
    if (st != MCRT_OK)
        return st;
    st = host->config_bool(host, cfg, "parse_special_tokens", &special);
    if (st != MCRT_OK && st != MCRT_E_NOTFOUND)
        return st;
    st = host->config_int(host, cfg, "cache_size", &cache);
    if (st != MCRT_OK && st != MCRT_E_NOTFOUND)
        return st;
    if (cache < 0)
        cache = 0;

    gb_self *self = calloc(1, sizeof *self);
    if (self == NULL) {
        host->log(host, MCRT_LOG_ERROR, "out of memory creating the tokenizer");
        return MCRT_E_NOMEM;
    }
    self->host = host;
    uint64_t t0 = host->clock_ns(host);
    st = g2b_vocab_load_files(vocab, merges, &self->vocab, err, sizeof err);
    if (st != MCRT_OK) {
        host->log(host, MCRT_LOG_ERROR, "%s", err);
        free(self);
        return st;
    }
    uint64_t t1 = host->clock_ns(host);
    self->enc = g2b_encoder_create(self->vocab, (size_t)cache, special);
    if (self->enc == NULL) {
        host->log(host, MCRT_LOG_ERROR, "out of memory creating the tokenizer");
        g2b_vocab_free(self->vocab);
        free(self);
        return MCRT_E_NOMEM;
    }
    if (special && g2b_vocab_eod(self->vocab) < 0)
        host->log(host, MCRT_LOG_WARN,
                  "parse_special_tokens: the vocabulary has no %s, so there is nothing to parse",
                  G2B_EOD_TEXT);
    host->log(host, MCRT_LOG_DEBUG,
              "%d tokens (eod %d), %zu merges, loaded in %.1f ms (Unicode %s via utf8proc)",
              (int)g2b_vocab_size(self->vocab), (int)g2b_vocab_eod(self->vocab),
              g2b_vocab_merges(self->vocab), (double)(t1 - t0) / 1e6,
              utf8proc_unicode_version());
    *out_self = self;
    return MCRT_OK;
}

static void gb_destroy(void *vself)
{
    gb_self *self = vself;
    if (self == NULL)
        return;
    g2b_encoder_free(self->enc);
    g2b_vocab_free(self->vocab);
    free(self->scratch);
    free(self);
}

static mcrt_status gb_info(void *vself, mcrt_tokenizer_info *out)
{
    gb_self *self = vself;
    if (self == NULL || out == NULL)
        return MCRT_E_INVAL;
    if (MCRT_HAS(out, vocab_size))
        out->vocab_size = g2b_vocab_size(self->vocab);
    if (MCRT_HAS(out, eod))
        out->eod = g2b_vocab_eod(self->vocab);
    if (MCRT_HAS(out, bos))
        out->bos = -1;
    if (MCRT_HAS(out, pad))
        out->pad = -1;
    if (MCRT_HAS(out, reserved))
        out->reserved = 0;
    return MCRT_OK;
}

/* buf may be NULL only when cap is 0 (a size query). */
static mcrt_status gb_check_buf(const gb_self *self, const char *what, const void *buf,
                                size_t cap, const void *out_len)
{
    if (out_len == NULL) {
        self->host->log(self->host, MCRT_LOG_ERROR, "%s: the size out-parameter is NULL", what);
        return MCRT_E_INVAL;
    }
    if (buf == NULL && cap != 0) {
        self->host->log(self->host, MCRT_LOG_ERROR, "%s: the buffer is NULL but cap is %zu",
                        what, cap);
        return MCRT_E_INVAL;
    }
    return MCRT_OK;
}

static mcrt_status gb_encode(void *vself, const char *text, size_t len, int32_t *ids, size_t cap,
                             size_t *out_n)
{
    gb_self *self = vself;
    size_t n = 0;
    if (self == NULL)
        return MCRT_E_INVAL;
    mcrt_status st = gb_check_buf(self, "encode", ids, cap, out_n);
    if (st != MCRT_OK)
        return st;
    if (text == NULL && len != 0) {
        self->host->log(self->host, MCRT_LOG_ERROR, "encode: text is NULL but len is %zu", len);
        return MCRT_E_INVAL;
    }
    st = g2b_encode(self->enc, text, len, ids, cap, &n);
    if (st != MCRT_OK) {
        self->host->log(self->host, MCRT_LOG_ERROR, "encode: out of memory (%zu bytes of text)",
                        len);
        return st;
    }
    *out_n = n;
    return n > cap ? MCRT_E_RANGE : MCRT_OK;
}

static mcrt_status gb_check_id(const gb_self *self, const char *what, int32_t id, size_t index,
                               bool indexed)
{
    int32_t n = g2b_vocab_size(self->vocab);
    if (id >= 0 && id < n)
        return MCRT_OK;
    if (indexed)
        self->host->log(self->host, MCRT_LOG_ERROR,
                        "%s: token id %d (index %zu) is outside the vocabulary [0, %d)", what,
                        (int)id, index, (int)n);
    else
        self->host->log(self->host, MCRT_LOG_ERROR,
                        "%s: token id %d is outside the vocabulary [0, %d)", what, (int)id, (int)n);
    return MCRT_E_INVAL;
}

static mcrt_status gb_decode(void *vself, const int32_t *ids, size_t n, char *buf, size_t cap,
                             size_t *out_len)
{
    gb_self *self = vself;
    if (self == NULL)
        return MCRT_E_INVAL;
    mcrt_status st = gb_check_buf(self, "decode", buf, cap, out_len);
    if (st != MCRT_OK)
        return st;
    if (ids == NULL && n != 0) {
        self->host->log(self->host, MCRT_LOG_ERROR, "decode: ids is NULL but n is %zu", n);
        return MCRT_E_INVAL;
    }
    for (size_t i = 0; i < n; i++)
        if ((st = gb_check_id(self, "decode", ids[i], i, true)) != MCRT_OK)
            return st;
    size_t raw = g2b_decode_raw(self->vocab, ids, n, NULL, 0);
    if (raw > self->scratch_cap) {
        char *p = realloc(self->scratch, raw);
        if (p == NULL) {
            self->host->log(self->host, MCRT_LOG_ERROR, "decode: out of memory (%zu bytes)", raw);
            return MCRT_E_NOMEM;
        }
        self->scratch = p;
        self->scratch_cap = raw;
    }
    g2b_decode_raw(self->vocab, ids, n, self->scratch, raw);
    bool valid = mcrt_utf8_valid(self->scratch, raw) != 0;
    size_t need = valid ? raw : mcrt_utf8_repair(self->scratch, raw, NULL);
    *out_len = need;
    if (need > cap) {
        st = MCRT_E_RANGE;
    } else if (need > 0) {
        if (valid)
            memcpy(buf, self->scratch, raw);
        else
            mcrt_utf8_repair(self->scratch, raw, buf);
    }
    if (self->scratch_cap > GB_SCRATCH_KEEP) {
        free(self->scratch);
        self->scratch = NULL;
        self->scratch_cap = 0;
    }
    return st;
}

static mcrt_status gb_token_bytes(void *vself, int32_t id, char *buf, size_t cap,
                                  size_t *out_len)
{
    gb_self *self = vself;
    size_t len = 0;
    if (self == NULL)
        return MCRT_E_INVAL;
    mcrt_status st = gb_check_buf(self, "token_bytes", buf, cap, out_len);
    if (st != MCRT_OK)
        return st;
    if ((st = gb_check_id(self, "token_bytes", id, 0, false)) != MCRT_OK)
        return st;
    const uint8_t *p = g2b_token(self->vocab, id, &len);
    *out_len = len;
    if (len > cap)
        return MCRT_E_RANGE;
    memcpy(buf, p, len);
    return MCRT_OK;
}

static const mcrt_tokenizer_iface gb_iface = {
    (uint32_t)sizeof(mcrt_tokenizer_iface),
    gb_create,
    gb_destroy,
    gb_info,
    gb_encode,
    gb_decode,
    gb_token_bytes,
};

static const void *gb_get_iface(const char *iface_id)
{
    if (iface_id != NULL && strcmp(iface_id, MCRT_IFACE_TOKENIZER) == 0)
        return &gb_iface;
    return NULL;
}

/* [loader] Score 10 by default, 100 when tokenizer_type asks for
 * GPT2BPETokenizer, 0 when it asks for another tokenizer. */
static int32_t gb_probe(const mcrt_host *host, const mcrt_config *cfg, char *why,
                        size_t why_size)
{
    const char *type = NULL;
    if (host == NULL || cfg == NULL ||
        host->config_string(host, cfg, "tokenizer_type", &type) != MCRT_OK || type == NULL ||
        type[0] == '\0')
        return 10;
    if (strcmp(type, GB_TYPE) == 0)
        return 100;
    if (why != NULL && why_size > 0)
        snprintf(why, why_size, "tokenizer_type is %s; this plugin implements %s", type, GB_TYPE);
    return 0;
}

MCRT_PLUGIN_DEFINE(MCRT_KIND_TOKENIZER, "gpt2-bpe", "1.0.0",
                   "GPT-2 byte-level BPE (Megatron's GPT2BPETokenizer): vocab.json + merges.txt",
                   gb_keys, gb_probe, NULL, NULL, gb_get_iface);
