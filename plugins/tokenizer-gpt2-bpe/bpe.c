/*
 * plugins/tokenizer-gpt2-bpe/bpe.c: GPT-2 byte-level BPE (see bpe.h).
 *
 * Layout of the hot path, for speed:
 *  - the pre-tokenizer is a scanner over bytes, not a regex engine: ASCII
 *    through a 128-entry class table, the rest of the BMP through a 64 KiB
 *    table filled from utf8proc when the encoder is created, the other
 *    planes through utf8proc directly;
 *  - every piece is looked up in a per-encoder cache (piece bytes -> ids)
 *    before any BPE work (GPT-2's own `cache`, but bounded);
 *  - BPE runs on token ids, not strings: a merge is a lookup of the pair
 *    (left id, right id) in an open-addressing table giving its rank and the
 *    merged id. Words up to G2B_SMALL bytes use GPT-2's loop on a small array;
 *    longer words (a 10 MB prompt without spaces is one word) use a bucket
 *    queue of positions per rank over a linked list, with the same result.
 */
#include "bpe.h"

#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utf8proc.h>

#include "../common/utf8.h" /* mcrt_utf8_seq */

#define G2B_SMALL 64           /* words up to this many bytes: the simple loop (and cached) */
#define G2B_NO_RANK INT32_MAX  /* a pair that is not a merge */
#define G2B_EMPTY_KEY UINT64_MAX
#define G2B_CACHE_MAX (1u << 22) /* most cached words (keeps cache offsets in 32 bits) */

/* Character classes of the pre-tokenizer. */
enum { G2B_O = 0, G2B_L = 1, G2B_N = 2, G2B_S = 3 };

typedef struct g2b_merge_slot {
    uint64_t key; /* (left << 32) | right, or G2B_EMPTY_KEY */
    int32_t rank;
    int32_t result;
} g2b_merge_slot;

struct g2b_vocab {
    int32_t n;          /* vocabulary size */
    uint32_t *off;      /* [n + 1]: token id's bytes are bytes[off[id] .. off[id + 1]) */
    uint8_t *bytes;
    int32_t byte_id[256];
    int32_t eod;        /* <|endoftext|> or -1 */
    int32_t *tmap;      /* bytes -> id, open addressing, -1 = empty */
    uint32_t tmask;
    size_t n_merges;
    g2b_merge_slot *mtab; /* (left, right) -> rank, result */
    uint32_t mmask;
    int32_t *merge_left, *merge_right, *merge_result; /* by rank */
};

/* ---- small helpers --------------------------------------------------------- */

#if defined(__GNUC__) || defined(__clang__)
static void g2b_err(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#endif
static void g2b_err(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;
    if (err == NULL || err_size == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

static uint64_t g2b_hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ ((uint64_t)n * 0xFF51AFD7ED558CCDull);
    while (n >= 8) {
        uint64_t k;
        memcpy(&k, p, 8);
        h = (h ^ k) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
        p += 8;
        n -= 8;
    }
    uint64_t k = 0;
    memcpy(&k, p, n);
    h = (h ^ k) * 0x94D049BB133111EBull;
    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    return h;
}

static inline uint32_t g2b_hash_pair(uint64_t key)
{
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(h >> 32) ^ (uint32_t)h;
}

static uint32_t g2b_pow2_at_least(size_t n)
{
    uint32_t c = 16;
    while (c < n && c < (1u << 31))
        c <<= 1;
    return c;
}

/* GPT-2's bytes_to_unicode: byte -> the code point that stands for it in
 * vocab.json and merges.txt. Printable Latin-1 bytes stand for themselves;
 * the 68 others (0x00-0x20, 0x7F-0xA0, 0xAD) get U+0100.. in byte order. */
static void g2b_byte_symbols(uint32_t sym[256], int16_t inverse[0x144])
{
    uint32_t extra = 0;
    for (int i = 0; i < 0x144; i++)
        inverse[i] = -1;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
        sym[b] = printable ? (uint32_t)b : 256u + extra++;
        inverse[sym[b]] = (int16_t)b;
    }
}

/* Convert a symbol string (UTF-8 of byte symbols) to its bytes. Returns 0,
 * -1 for invalid UTF-8, -2 for a character that is not a byte symbol
 * (*bad_cp set). out has room for n bytes. */
static int g2b_symbols_to_bytes(const int16_t inverse[0x144], const char *s, size_t n,
                                uint8_t *out, size_t *out_len, uint32_t *bad_cp)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, o = 0, bad;
    int inc;
    while (i < n) {
        size_t k = mcrt_utf8_seq(u + i, n - i, &bad, &inc);
        uint32_t cp;
        if (k == 0)
            return -1;
        if (k == 1)
            cp = u[i];
        else if (k == 2)
            cp = ((uint32_t)(u[i] & 0x1F) << 6) | (u[i + 1] & 0x3Fu);
        else if (k == 3)
            cp = ((uint32_t)(u[i] & 0x0F) << 12) | ((uint32_t)(u[i + 1] & 0x3F) << 6) |
                 (u[i + 2] & 0x3Fu);
        else
            cp = ((uint32_t)(u[i] & 0x07) << 18) | ((uint32_t)(u[i + 1] & 0x3F) << 12) |
                 ((uint32_t)(u[i + 2] & 0x3F) << 6) | (u[i + 3] & 0x3Fu);
        if (cp >= 0x144 || inverse[cp] < 0) {
            *bad_cp = cp;
            return -2;
        }
        out[o++] = (uint8_t)inverse[cp];
        i += k;
    }
    *out_len = o;
    return 0;
}

/* A token or symbol quoted for a message: at most ~60 bytes, control
 * characters and quotes escaped. */
static void g2b_quote(const char *s, size_t n, char *buf, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 8 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o > 60) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (c < 0x20 || c == 0x7F || c == '\'' || c == '\\')
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
        else
            buf[o++] = (char)c;
    }
    buf[o < cap ? o : cap - 1] = '\0';
}

/* ---- vocabulary --------------------------------------------------------- */

int32_t g2b_vocab_size(const g2b_vocab *v) { return v->n; }
int32_t g2b_vocab_eod(const g2b_vocab *v) { return v->eod; }
size_t g2b_vocab_merges(const g2b_vocab *v) { return v->n_merges; }

const uint8_t *g2b_token(const g2b_vocab *v, int32_t id, size_t *len)
{
    *len = v->off[id + 1] - v->off[id];
    return v->bytes + v->off[id];
}

static int32_t g2b_find_token(const g2b_vocab *v, const uint8_t *p, size_t n)
{
    uint32_t i = (uint32_t)g2b_hash_bytes(p, n) & v->tmask;
    for (;;) {
        int32_t id = v->tmap[i];
        if (id < 0)
            return -1;
        if (v->off[id + 1] - v->off[id] == n && memcmp(v->bytes + v->off[id], p, n) == 0)
            return id;
        i = (i + 1) & v->tmask;
    }
}

/* The rank of the pair (a, b) and its merged id, or G2B_NO_RANK. */
static inline int32_t g2b_rank(const g2b_vocab *v, int32_t a, int32_t b, int32_t *result)
{
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint32_t i = g2b_hash_pair(key) & v->mmask;
    for (;;) {
        const g2b_merge_slot *s = &v->mtab[i];
        if (s->key == key) {
            *result = s->result;
            return s->rank;
        }
        if (s->key == G2B_EMPTY_KEY)
            return G2B_NO_RANK;
        i = (i + 1) & v->mmask;
    }
}

void g2b_vocab_free(g2b_vocab *v)
{
    if (v == NULL)
        return;
    free(v->off);
    free(v->bytes);
    free(v->tmap);
    free(v->mtab);
    free(v->merge_left);
    free(v->merge_right);
    free(v->merge_result);
    free(v);
}

/* ---- vocab.json: a strict reader for one JSON object of string -> integer ----
 *
 * RFC 8259 syntax, checked in full (strings: escapes, surrogate pairs, UTF-8,
 * no raw control characters; numbers: no leading zeros), plus what a GPT-2
 * vocabulary must be: the top-level value is an object, every value is an
 * integer, ids are 0..n-1 each given once, no token string twice, every
 * character of a token is one of the 256 byte symbols. The token bytes are
 * decoded as the keys are read, in one pass over the file. */

typedef struct g2b_jentry {
    uint32_t key_at;   /* offset of the key's opening quote in the file */
    uint32_t key_len;  /* raw key length in the file, quotes included */
    uint32_t bytes_at; /* decoded bytes in the arena */
    uint32_t bytes_len;
    uint32_t val_at;   /* offset of the id's text */
    uint32_t val_len;
    int64_t id;        /* saturates far above any valid id */
} g2b_jentry;

typedef struct g2b_json {
    const char *s;
    size_t n, i;
    const char *name;
    char *err;
    size_t err_size;
} g2b_json;

#if defined(__GNUC__) || defined(__clang__)
static void g2b_json_fail(const g2b_json *j, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
#endif
static void g2b_json_fail(const g2b_json *j, size_t at, const char *fmt, ...)
{
    size_t line = 1, col = 1;
    char msg[400];
    va_list ap;
    for (size_t k = 0; k < at && k < j->n; k++) {
        if (j->s[k] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    g2b_err(j->err, j->err_size, "%s:%zu:%zu: %s", j->name, line, col, msg);
}

static void g2b_json_ws(g2b_json *j)
{
    while (j->i < j->n) {
        char c = j->s[j->i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        j->i++;
    }
}

/* What the JSON value at j->s[at] is, for messages; NULL when it is not
 * the start of a JSON value at all. */
static const char *g2b_json_kind(const g2b_json *j, size_t at)
{
    const char *p = j->s + at;
    size_t left = at < j->n ? j->n - at : 0;
    char c = left ? *p : '\0';
    switch (c) {
    case '{': return "an object";
    case '[': return "an array";
    case '"': return "a string";
    case 't': return left >= 4 && memcmp(p, "true", 4) == 0 ? "a boolean" : NULL;
    case 'f': return left >= 5 && memcmp(p, "false", 5) == 0 ? "a boolean" : NULL;
    case 'n': return left >= 4 && memcmp(p, "null", 4) == 0 ? "null" : NULL;
    default: return (c == '-' || (c >= '0' && c <= '9')) ? "a number" : NULL;
    }
}

static int g2b_json_hex4(const g2b_json *j, size_t at, uint32_t *out)
{
    uint32_t v = 0;
    if (at + 4 > j->n)
        return -1;
    for (size_t k = 0; k < 4; k++) {
        char c = j->s[at + k];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* A key string at j->i (a '"'): its code points mapped to bytes into out.
 * 0, or -1 with the error written. */
static int g2b_json_key(g2b_json *j, const int16_t inverse[0x144], uint8_t *out, size_t *out_len)
{
    const unsigned char *u = (const unsigned char *)j->s;
    size_t start = j->i, o = 0, bad;
    int inc;
    j->i++;
    for (;;) {
        if (j->i >= j->n) {
            g2b_json_fail(j, start, "not valid JSON: the string never ends");
            return -1;
        }
        size_t at = j->i;
        unsigned char c = u[at];
        uint32_t cp;
        if (c == '"') {
            j->i++;
            break;
        }
        if (c < 0x20) {
            g2b_json_fail(j, at, "not valid JSON: a raw control character (0x%02x) in a string; "
                                 "write it as \\u%04x", c, c);
            return -1;
        }
        if (c == '\\') {
            char e = at + 1 < j->n ? j->s[at + 1] : '\0';
            j->i += 2;
            switch (e) {
            case '"': cp = '"'; break;
            case '\\': cp = '\\'; break;
            case '/': cp = '/'; break;
            case 'b': cp = 0x08; break;
            case 'f': cp = 0x0C; break;
            case 'n': cp = 0x0A; break;
            case 'r': cp = 0x0D; break;
            case 't': cp = 0x09; break;
            case 'u':
                if (g2b_json_hex4(j, at + 2, &cp) != 0) {
                    g2b_json_fail(j, at, "not valid JSON: \\u needs 4 hex digits");
                    return -1;
                }
                j->i = at + 6;
                if (cp >= 0xD800 && cp <= 0xDBFF) {
                    uint32_t lo;
                    if (j->i + 1 < j->n && j->s[j->i] == '\\' && j->s[j->i + 1] == 'u' &&
                        g2b_json_hex4(j, j->i + 2, &lo) == 0 && lo >= 0xDC00 && lo <= 0xDFFF) {
                        cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                        j->i += 6;
                    } else {
                        g2b_json_fail(j, at, "not valid JSON: a lone surrogate \\u%04X", cp);
                        return -1;
                    }
                } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
                    g2b_json_fail(j, at, "not valid JSON: a lone surrogate \\u%04X", cp);
                    return -1;
                }
                break;
            default:
                g2b_json_fail(j, at, "not valid JSON: unknown escape in a string");
                return -1;
            }
        } else if (c < 0x80) {
            cp = c;
            j->i++;
        } else {
            size_t k = mcrt_utf8_seq(u + at, j->n - at, &bad, &inc);
            if (k == 0) {
                g2b_json_fail(j, at, "not valid UTF-8 (byte 0x%02x)", c);
                return -1;
            }
            if (k == 2)
                cp = ((uint32_t)(c & 0x1F) << 6) | (u[at + 1] & 0x3Fu);
            else if (k == 3)
                cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(u[at + 1] & 0x3F) << 6) |
                     (u[at + 2] & 0x3Fu);
            else
                cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(u[at + 1] & 0x3F) << 12) |
                     ((uint32_t)(u[at + 2] & 0x3F) << 6) | (u[at + 3] & 0x3Fu);
            j->i += k;
        }
        if (cp >= 0x144 || inverse[cp] < 0) {
            char q[96];
            size_t end = j->i;
            while (end < j->n && u[end] != '"' && u[end] != '\n')
                end++;
            g2b_quote(j->s + start + 1, end - start - 1, q, sizeof q);
            g2b_json_fail(j, at,
                          "token '%s' has the character U+%04X, which is not one of GPT-2's "
                          "256 byte symbols (bytes_to_unicode)",
                          q, (unsigned)cp);
            return -1;
        }
        out[o++] = (uint8_t)inverse[cp];
    }
    *out_len = o;
    return 0;
}

/* A value at j->i: an integer id, or -1 with the error written. */
static int g2b_json_id(g2b_json *j, size_t key_at, size_t key_len, int64_t *out)
{
    size_t at = j->i;
    char q[96];
    char c = at < j->n ? j->s[at] : '\0';
    const char *kind = g2b_json_kind(j, at);
    q[0] = '\0';
    if (kind == NULL || strcmp(kind, "a number") != 0)
        g2b_quote(j->s + key_at + 1, key_len - 2, q, sizeof q);
    if (kind == NULL) {
        g2b_json_fail(j, at, "not valid JSON: expected a value after the key '%s'", q);
        return -1;
    }
    if (strcmp(kind, "a number") != 0) {
        g2b_json_fail(j, at, "token '%s': the id must be an integer, got %s", q, kind);
        return -1;
    }
    bool neg = c == '-';
    size_t k = at + neg;
    int64_t v = 0;
    if (k >= j->n || j->s[k] < '0' || j->s[k] > '9') {
        g2b_json_fail(j, at, "not valid JSON: a number needs digits");
        return -1;
    }
    if (j->s[k] == '0' && k + 1 < j->n && j->s[k + 1] >= '0' && j->s[k + 1] <= '9') {
        g2b_json_fail(j, at, "not valid JSON: a number with a leading zero");
        return -1;
    }
    for (; k < j->n && j->s[k] >= '0' && j->s[k] <= '9'; k++)
        if (v < ((int64_t)1 << 40))
            v = v * 10 + (j->s[k] - '0');
    bool frac = false;
    if (k < j->n && j->s[k] == '.') {
        frac = true;
        k++;
        if (k >= j->n || j->s[k] < '0' || j->s[k] > '9') {
            g2b_json_fail(j, at, "not valid JSON: a number needs digits after '.'");
            return -1;
        }
        while (k < j->n && j->s[k] >= '0' && j->s[k] <= '9')
            k++;
    }
    if (k < j->n && (j->s[k] == 'e' || j->s[k] == 'E')) {
        frac = true;
        k++;
        if (k < j->n && (j->s[k] == '+' || j->s[k] == '-'))
            k++;
        if (k >= j->n || j->s[k] < '0' || j->s[k] > '9') {
            g2b_json_fail(j, at, "not valid JSON: an exponent needs digits");
            return -1;
        }
        while (k < j->n && j->s[k] >= '0' && j->s[k] <= '9')
            k++;
    }
    if (frac) {
        g2b_quote(j->s + key_at + 1, key_len - 2, q, sizeof q);
        g2b_json_fail(j, at, "token '%s': the id must be an integer, got %.*s", q,
                      (int)(k - at > 30 ? 30 : k - at), j->s + at);
        return -1;
    }
    j->i = k;
    *out = neg ? -v : v;
    return 0;
}

/* vocab.json -> v->n, off, bytes, tmap, byte_id, eod. */
static mcrt_status g2b_parse_vocab(g2b_vocab *v, const int16_t inverse[0x144], const char *json,
                                   size_t len, const char *name, char *err, size_t err_size)
{
    g2b_json j = {json, len, 0, name, err, err_size};
    g2b_jentry *ents = NULL;
    size_t n = 0, cap = 0;
    uint8_t *arena = NULL;
    int32_t *by_id = NULL;
    mcrt_status st = MCRT_E_DATA;
    char q[96], q2[96];

    if (len > UINT32_MAX) {
        g2b_err(err, err_size, "%s: too large", name);
        return MCRT_E_DATA;
    }
    g2b_json_ws(&j);
    if (j.i >= len) {
        g2b_err(err, err_size, "%s: not valid JSON: the file is empty", name);
        return MCRT_E_DATA;
    }
    if (json[j.i] != '{') {
        const char *kind = g2b_json_kind(&j, j.i);
        if (kind == NULL)
            g2b_json_fail(&j, j.i, "not valid JSON: unexpected character '%c'",
                          (json[j.i] >= 0x20 && json[j.i] < 0x7F) ? json[j.i] : '?');
        else
            g2b_json_fail(&j, j.i, "expected a JSON object mapping token strings to ids, got %s",
                          kind);
        return MCRT_E_DATA;
    }
    arena = malloc(len + 1);
    if (arena == NULL)
        goto nomem;
    j.i++;
    g2b_json_ws(&j);
    size_t used = 0;
    if (j.i < len && json[j.i] == '}') {
        j.i++;
    } else {
        for (;;) {
            g2b_json_ws(&j);
            if (j.i >= len || json[j.i] != '"') {
                g2b_json_fail(&j, j.i, j.i >= len ? "not valid JSON: the object never ends"
                                                  : "not valid JSON: expected a token string "
                                                    "in double quotes");
                goto done;
            }
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 65536;
                g2b_jentry *ne = realloc(ents, nc * sizeof *ne);
                if (ne == NULL)
                    goto nomem;
                ents = ne;
                cap = nc;
            }
            if (n >= (size_t)G2B_MAX_TOKENS) {
                g2b_err(err, err_size, "%s: more than %d tokens", name, G2B_MAX_TOKENS);
                goto done;
            }
            g2b_jentry *e = &ents[n];
            size_t blen = 0;
            e->key_at = (uint32_t)j.i;
            if (g2b_json_key(&j, inverse, arena + used, &blen) != 0)
                goto done;
            e->key_len = (uint32_t)(j.i - e->key_at);
            e->bytes_at = (uint32_t)used;
            e->bytes_len = (uint32_t)blen;
            used += blen;
            g2b_json_ws(&j);
            if (j.i >= len || json[j.i] != ':') {
                g2b_json_fail(&j, j.i, "not valid JSON: expected ':' after a token string");
                goto done;
            }
            j.i++;
            g2b_json_ws(&j);
            e->val_at = (uint32_t)j.i;
            if (g2b_json_id(&j, e->key_at, e->key_len, &e->id) != 0)
                goto done;
            e->val_len = (uint32_t)(j.i - e->val_at);
            if (blen == 0) {
                g2b_json_fail(&j, e->key_at, "the token string of id %lld is empty",
                              (long long)e->id);
                goto done;
            }
            n++;
            g2b_json_ws(&j);
            if (j.i < len && json[j.i] == ',') {
                j.i++;
                continue;
            }
            if (j.i < len && json[j.i] == '}') {
                j.i++;
                break;
            }
            g2b_json_fail(&j, j.i, j.i >= len ? "not valid JSON: the object never ends"
                                              : "not valid JSON: expected ',' or '}'");
            goto done;
        }
    }
    g2b_json_ws(&j);
    if (j.i < len) {
        g2b_json_fail(&j, j.i, "not valid JSON: unexpected content after the object");
        goto done;
    }
    if (n == 0) {
        g2b_err(err, err_size, "%s: the vocabulary is empty (no tokens)", name);
        goto done;
    }
    /* Ids: 0..n-1, each once. */
    by_id = malloc(n * sizeof *by_id);
    if (by_id == NULL)
        goto nomem;
    memset(by_id, 0xFF, n * sizeof *by_id);
    for (size_t k = 0; k < n; k++) {
        const g2b_jentry *e = &ents[k];
        if (e->id < 0 || (uint64_t)e->id >= n || by_id[e->id] >= 0)
            g2b_quote(json + e->key_at + 1, e->key_len - 2, q, sizeof q);
        if (e->id < 0 || (uint64_t)e->id >= n) {
            g2b_json_fail(&j, e->key_at,
                          "token '%s': id %.*s is out of range; the %zu tokens must have the "
                          "ids 0..%zu",
                          q, (int)(e->val_len > 30 ? 30 : e->val_len), json + e->val_at, n,
                          n - 1);
            goto done;
        }
        if (by_id[e->id] >= 0) {
            const g2b_jentry *f = &ents[by_id[e->id]];
            g2b_quote(json + f->key_at + 1, f->key_len - 2, q2, sizeof q2);
            g2b_json_fail(&j, e->key_at, "id %lld is given to two tokens, '%s' and '%s'",
                          (long long)e->id, q2, q);
            goto done;
        }
        by_id[e->id] = (int32_t)k;
    }
    /* Bytes in id order. */
    v->n = (int32_t)n;
    v->off = malloc((n + 1) * sizeof *v->off);
    v->bytes = malloc(used ? used : 1);
    if (v->off == NULL || v->bytes == NULL)
        goto nomem;
    uint32_t o = 0;
    for (size_t id = 0; id < n; id++) {
        const g2b_jentry *e = &ents[by_id[id]];
        v->off[id] = o;
        memcpy(v->bytes + o, arena + e->bytes_at, e->bytes_len);
        o += e->bytes_len;
    }
    v->off[n] = o;
    /* bytes -> id; the same bytes twice is a duplicate token. */
    v->tmask = g2b_pow2_at_least(2 * n) - 1;
    v->tmap = malloc(((size_t)v->tmask + 1) * sizeof *v->tmap);
    if (v->tmap == NULL)
        goto nomem;
    memset(v->tmap, 0xFF, ((size_t)v->tmask + 1) * sizeof *v->tmap);
    for (size_t id = 0; id < n; id++) {
        const uint8_t *p = v->bytes + v->off[id];
        size_t blen = v->off[id + 1] - v->off[id];
        uint32_t i = (uint32_t)g2b_hash_bytes(p, blen) & v->tmask;
        while (v->tmap[i] >= 0) {
            int32_t other = v->tmap[i];
            if (v->off[other + 1] - v->off[other] == blen &&
                memcmp(v->bytes + v->off[other], p, blen) == 0) {
                const g2b_jentry *e = &ents[by_id[id]], *f = &ents[by_id[other]];
                const g2b_jentry *later = e->key_at > f->key_at ? e : f;
                g2b_quote(json + e->key_at + 1, e->key_len - 2, q, sizeof q);
                g2b_json_fail(&j, later->key_at, "duplicate token '%s' (ids %d and %d)", q,
                              (int)other, (int)id);
                goto done;
            }
            i = (i + 1) & v->tmask;
        }
        v->tmap[i] = (int32_t)id;
    }
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        v->byte_id[b] = g2b_find_token(v, &byte, 1);
        if (v->byte_id[b] < 0) {
            uint32_t sym[256];
            int16_t inv[0x144];
            g2b_byte_symbols(sym, inv);
            g2b_err(err, err_size,
                    "%s: no token for the byte 0x%02X (symbol U+%04X); a byte-level BPE "
                    "vocabulary needs all 256 bytes",
                    name, (unsigned)b, (unsigned)sym[b]);
            goto done;
        }
    }
    v->eod = g2b_find_token(v, (const uint8_t *)G2B_EOD_TEXT, strlen(G2B_EOD_TEXT));
    st = MCRT_OK;
    goto done;
nomem:
    st = MCRT_E_NOMEM;
    g2b_err(err, err_size, "%s: out of memory", name);
done:
    free(ents);
    free(arena);
    free(by_id);
    return st;
}

/* merges.txt -> v->n_merges, mtab, merge_left/right/result. */
static mcrt_status g2b_parse_merges(g2b_vocab *v, const int16_t inverse[0x144], const char *text,
                                    size_t len, const char *name, char *err, size_t err_size)
{
    mcrt_status st = MCRT_E_DATA;
    size_t n_lines = 0, cap_merges;
    uint8_t *tmp = NULL;
    char q[96], q2[96];
    for (size_t i = 0; i < len; i++)
        n_lines += text[i] == '\n';
    cap_merges = n_lines + 1;
    if (cap_merges > (size_t)INT32_MAX / 2) {
        g2b_err(err, err_size, "%s: too many lines", name);
        return MCRT_E_DATA;
    }
    v->mmask = g2b_pow2_at_least(2 * cap_merges) - 1;
    v->mtab = malloc(((size_t)v->mmask + 1) * sizeof *v->mtab);
    v->merge_left = malloc(cap_merges * sizeof *v->merge_left);
    v->merge_right = malloc(cap_merges * sizeof *v->merge_right);
    v->merge_result = malloc(cap_merges * sizeof *v->merge_result);
    tmp = malloc(len + 1);
    if (v->mtab == NULL || v->merge_left == NULL || v->merge_right == NULL ||
        v->merge_result == NULL || tmp == NULL) {
        g2b_err(err, err_size, "%s: out of memory", name);
        st = MCRT_E_NOMEM;
        goto done;
    }
    for (size_t i = 0; i <= v->mmask; i++)
        v->mtab[i].key = G2B_EMPTY_KEY;

    size_t pos = 0, line_no = 0, first_merge_line = 1, empty_line = 0;
    while (pos < len) {
        const char *line = text + pos;
        const char *nl = memchr(line, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - line) : len - pos;
        pos += ll + (nl != NULL);
        line_no++;
        if (ll > 0 && line[ll - 1] == '\r')
            ll--;
        if (line_no == 1 && ll >= 8 && memcmp(line, "#version", 8) == 0) {
            first_merge_line = 2;
            continue;
        }
        if (ll == 0) {
            if (empty_line == 0)
                empty_line = line_no;
            continue;
        }
        if (empty_line != 0) {
            g2b_err(err, err_size,
                    "%s:%zu: empty line inside the merges; expected two symbols separated by a "
                    "space on every line",
                    name, empty_line);
            goto done;
        }
        /* Split on runs of spaces and tabs: exactly two fields. */
        const char *f[3];
        size_t fl[3], nf = 0;
        for (size_t i = 0; i < ll;) {
            while (i < ll && (line[i] == ' ' || line[i] == '\t'))
                i++;
            if (i >= ll)
                break;
            size_t s = i;
            while (i < ll && line[i] != ' ' && line[i] != '\t')
                i++;
            if (nf < 3) {
                f[nf] = line + s;
                fl[nf] = i - s;
            }
            nf++;
        }
        if (nf != 2) {
            g2b_err(err, err_size,
                    "%s:%zu: expected 2 symbols separated by a space, got %zu field%s", name,
                    line_no, nf, nf == 1 ? "" : "s");
            goto done;
        }
        int32_t id[2];
        size_t off[2], bl[2];
        for (int k = 0; k < 2; k++) {
            uint32_t bad_cp = 0;
            off[k] = k == 0 ? 0 : bl[0];
            int r = g2b_symbols_to_bytes(inverse, f[k], fl[k], tmp + off[k], &bl[k], &bad_cp);
            if (r == 0)
                id[k] = g2b_find_token(v, tmp + off[k], bl[k]);
            if (r != 0 || id[k] < 0)
                g2b_quote(f[k], fl[k], q, sizeof q);
            if (r == -1) {
                g2b_err(err, err_size, "%s:%zu: symbol '%s' is not valid UTF-8", name, line_no, q);
                goto done;
            }
            if (r == -2) {
                g2b_err(err, err_size,
                        "%s:%zu: unknown symbol '%s': the character U+%04X is not one of "
                        "GPT-2's 256 byte symbols",
                        name, line_no, q, (unsigned)bad_cp);
                goto done;
            }
            if (id[k] < 0) {
                g2b_err(err, err_size, "%s:%zu: unknown symbol '%s' (not in the vocabulary)",
                        name, line_no, q);
                goto done;
            }
        }
        int32_t res = g2b_find_token(v, tmp, bl[0] + bl[1]);
        if (res < 0) {
            g2b_quote(f[0], fl[0], q, sizeof q);
            g2b_quote(f[1], fl[1], q2, sizeof q2);
            g2b_err(err, err_size,
                    "%s:%zu: the merge of '%s' and '%s' gives '%s%s', which is not in the "
                    "vocabulary",
                    name, line_no, q, q2, q, q2);
            goto done;
        }
        uint64_t key = ((uint64_t)(uint32_t)id[0] << 32) | (uint32_t)id[1];
        uint32_t i = g2b_hash_pair(key) & v->mmask;
        while (v->mtab[i].key != G2B_EMPTY_KEY && v->mtab[i].key != key)
            i = (i + 1) & v->mmask;
        if (v->mtab[i].key == key) {
            g2b_quote(f[0], fl[0], q, sizeof q);
            g2b_quote(f[1], fl[1], q2, sizeof q2);
            g2b_err(err, err_size, "%s:%zu: duplicate merge '%s %s' (first on line %zu)", name,
                    line_no, q, q2, first_merge_line + (size_t)v->mtab[i].rank);
            goto done;
        }
        int32_t rank = (int32_t)v->n_merges++;
        v->mtab[i].key = key;
        v->mtab[i].rank = rank;
        v->mtab[i].result = res;
        v->merge_left[rank] = id[0];
        v->merge_right[rank] = id[1];
        v->merge_result[rank] = res;
    }
    st = MCRT_OK;
done:
    free(tmp);
    return st;
}

mcrt_status g2b_vocab_load_buffers(const char *vocab_json, size_t vocab_len,
                                   const char *vocab_name, const char *merges, size_t merges_len,
                                   const char *merges_name, g2b_vocab **out, char *err,
                                   size_t err_size)
{
    uint32_t sym[256];
    int16_t inverse[0x144];
    g2b_vocab *v = calloc(1, sizeof *v);
    if (v == NULL) {
        g2b_err(err, err_size, "out of memory loading the vocabulary");
        return MCRT_E_NOMEM;
    }
    g2b_byte_symbols(sym, inverse);
    mcrt_status st = g2b_parse_vocab(v, inverse, vocab_json, vocab_len, vocab_name, err, err_size);
    if (st == MCRT_OK)
        st = g2b_parse_merges(v, inverse, merges, merges_len, merges_name, err, err_size);
    if (st != MCRT_OK) {
        g2b_vocab_free(v);
        return st;
    }
    *out = v;
    return MCRT_OK;
}

/* Read a whole file into a malloc'd buffer (NUL-terminated). */
static mcrt_status g2b_read_file(const char *path, char **buf, size_t *len, char *err,
                                 size_t err_size)
{
    struct stat sb;
    FILE *f = NULL;
    if (stat(path, &sb) != 0) {
        g2b_err(err, err_size, "%s: %s", path, strerror(errno));
        return MCRT_E_IO;
    }
    if (S_ISDIR(sb.st_mode)) {
        g2b_err(err, err_size, "%s: is a folder, expected a file", path);
        return MCRT_E_IO;
    }
    if (sb.st_size < 0 || (uint64_t)sb.st_size > G2B_MAX_FILE_BYTES) {
        g2b_err(err, err_size, "%s: larger than %u MiB", path, G2B_MAX_FILE_BYTES >> 20);
        return MCRT_E_IO;
    }
    f = fopen(path, "rb");
    if (f == NULL) {
        g2b_err(err, err_size, "%s: %s", path, strerror(errno));
        return MCRT_E_IO;
    }
    /* Read up to the limit whatever the size said (pipes, growing files). */
    size_t cap = (size_t)sb.st_size + 1, n = 0;
    char *b = malloc(cap + 1);
    if (b == NULL) {
        fclose(f);
        g2b_err(err, err_size, "%s: out of memory", path);
        return MCRT_E_NOMEM;
    }
    for (;;) {
        size_t got = fread(b + n, 1, cap - n, f);
        n += got;
        if (n < cap)
            break;
        if (cap >= G2B_MAX_FILE_BYTES) {
            free(b);
            fclose(f);
            g2b_err(err, err_size, "%s: larger than %u MiB", path, G2B_MAX_FILE_BYTES >> 20);
            return MCRT_E_IO;
        }
        size_t nc = cap * 2 > G2B_MAX_FILE_BYTES ? G2B_MAX_FILE_BYTES : cap * 2;
        char *nb = realloc(b, nc + 1);
        if (nb == NULL) {
            free(b);
            fclose(f);
            g2b_err(err, err_size, "%s: out of memory", path);
            return MCRT_E_NOMEM;
        }
        b = nb;
        cap = nc;
    }
    if (ferror(f)) {
        free(b);
        fclose(f);
        g2b_err(err, err_size, "%s: read error", path);
        return MCRT_E_IO;
    }
    fclose(f);
    b[n] = '\0';
    *buf = b;
    *len = n;
    return MCRT_OK;
}

mcrt_status g2b_vocab_load_files(const char *vocab_path, const char *merges_path,
                                 g2b_vocab **out, char *err, size_t err_size)
{
    char *vb = NULL, *mb = NULL;
    size_t vl = 0, ml = 0;
    mcrt_status st = g2b_read_file(vocab_path, &vb, &vl, err, err_size);
    if (st == MCRT_OK)
        st = g2b_read_file(merges_path, &mb, &ml, err, err_size);
    if (st == MCRT_OK)
        st = g2b_vocab_load_buffers(vb, vl, vocab_path, mb, ml, merges_path, out, err, err_size);
    free(vb);
    free(mb);
    return st;
}

size_t g2b_decode_raw(const g2b_vocab *v, const int32_t *ids, size_t n, char *buf, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = v->off[ids[i] + 1] - v->off[ids[i]];
        if (o + len <= cap)
            memcpy(buf + o, v->bytes + v->off[ids[i]], len);
        o += len;
    }
    return o;
}

/* ---- encoder ------------------------------------------------------------- */

#define G2B_CHUNK 14 /* positions per chunk of a long-word bucket (64-byte chunks) */
typedef struct g2b_chunk {
    int32_t next; /* the bucket's older chunk, or the free list's next; -1 ends */
    int32_t n;
    int32_t pos[G2B_CHUNK];
} g2b_chunk;

typedef struct g2b_cache_slot {
    uint64_t hash;
    uint32_t key_off;  /* into ckeys */
    uint32_t ids_off;  /* into cids */
    uint16_t key_len;
    uint16_t n_ids;    /* 0 = empty slot */
} g2b_cache_slot;

struct g2b_encoder {
    const g2b_vocab *v;
    bool parse_special;
    size_t small_max;       /* longer words take g2b_bpe_big */
    /* merge cache */
    size_t cache_max, cache_count;
    uint32_t cache_mask;
    g2b_cache_slot *cache;
    uint8_t *ckeys;
    size_t ckeys_used, ckeys_cap;
    int32_t *cids;
    size_t cids_used, cids_cap;
    /* long words */
    int32_t *sym, *nxt, *prv;
    size_t big_cap;
    int32_t *round;          /* positions of one round */
    size_t round_cap;
    int32_t *q_head;         /* [n_merges]: a bucket's first pool entry, or -1 */
    uint64_t *q_bits;        /* [n_merges / 64]: the non-empty buckets */
    g2b_chunk *q_pool;       /* the chunks of every bucket */
    size_t q_cap, q_used;
    int32_t q_free;
    uint32_t q_cursor;
    uint8_t cls[0x10000]; /* class of every BMP code point */
};

typedef struct g2b_out {
    int32_t *ids;
    size_t cap, n;
} g2b_out;

static inline void g2b_push(g2b_out *o, int32_t id)
{
    if (o->n < o->cap)
        o->ids[o->n] = id;
    o->n++;
}

static uint8_t g2b_class_of(int32_t cp)
{
    /* \s is White_Space: Zs, Zl, Zp and the controls U+0009..U+000D, U+0085. */
    if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x85)
        return G2B_S;
    switch (utf8proc_category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO: return G2B_L;
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO: return G2B_N;
    case UTF8PROC_CATEGORY_ZS:
    case UTF8PROC_CATEGORY_ZL:
    case UTF8PROC_CATEGORY_ZP: return G2B_S;
    default: return G2B_O;
    }
}

g2b_encoder *g2b_encoder_create(const g2b_vocab *v, size_t cache_size, bool parse_special)
{
    g2b_encoder *e = calloc(1, sizeof *e);
    if (e == NULL)
        return NULL;
    e->v = v;
    e->parse_special = parse_special && v->eod >= 0;
    e->cache_max = cache_size > G2B_CACHE_MAX ? G2B_CACHE_MAX : cache_size;
    e->small_max = G2B_SMALL;
    for (int32_t cp = 0; cp < 0x10000; cp++)
        e->cls[cp] = g2b_class_of(cp);
    return e;
}

static void g2b_big_free(g2b_encoder *e);

void g2b_encoder_free(g2b_encoder *e)
{
    if (e == NULL)
        return;
    free(e->cache);
    free(e->ckeys);
    free(e->cids);
    g2b_big_free(e);
    free(e->q_head);
    free(e->q_bits);
    free(e);
}

void g2b_encoder_long_path_only(g2b_encoder *e, bool on)
{
    e->small_max = on ? 1 : G2B_SMALL;
}


/* ---- pre-tokenizer ---------------------------------------------------------- */

/* The class of the character at s[i] and its length in *len. A byte that
 * does not start a valid UTF-8 sequence is a character of class O, 1 byte. */
static inline int g2b_cls_at(const g2b_encoder *e, const uint8_t *s, size_t n, size_t i,
                             size_t *len)
{
    uint8_t c = s[i];
    size_t bad;
    int inc;
    if (c < 0x80) {
        *len = 1;
        return e->cls[c];
    }
    size_t k = mcrt_utf8_seq(s + i, n - i, &bad, &inc);
    if (k == 0) {
        *len = 1;
        return G2B_O;
    }
    *len = k;
    if (k == 2)
        return e->cls[((uint32_t)(c & 0x1F) << 6) | (s[i + 1] & 0x3Fu)];
    if (k == 3)
        return e->cls[((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[i + 1] & 0x3F) << 6) |
                      (s[i + 2] & 0x3Fu)];
    return g2b_class_of((int32_t)(((uint32_t)(c & 0x07) << 18) |
                                  ((uint32_t)(s[i + 1] & 0x3F) << 12) |
                                  ((uint32_t)(s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3Fu)));
}

/* The end of the run of class `k` that continues at j. */
static inline size_t g2b_run(const g2b_encoder *e, const uint8_t *s, size_t n, size_t j, int k)
{
    while (j < n) {
        uint8_t c = s[j];
        if (c < 0x80) {
            if (e->cls[c] != k)
                break;
            j++;
            continue;
        }
        size_t l;
        if (g2b_cls_at(e, s, n, j, &l) != k)
            break;
        j += l;
    }
    return j;
}

/* The end of the piece that starts at i (< n): the first alternative of
 * 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * that matches at i, as a backtracking regex engine finds it. */
static size_t g2b_next_piece(const g2b_encoder *e, const uint8_t *s, size_t n, size_t i)
{
    uint8_t c = s[i];
    size_t l0, l1;
    if (c == '\'' && i + 1 < n) {
        uint8_t d = s[i + 1];
        if (d == 's' || d == 't' || d == 'm' || d == 'd')
            return i + 2;
        if (i + 2 < n) {
            uint8_t f = s[i + 2];
            if ((d == 'r' && f == 'e') || (d == 'v' && f == 'e') || (d == 'l' && f == 'l'))
                return i + 3;
        }
    }
    if (c == ' ' && i + 1 < n) {
        /* " ?X+": a space joins the letters, numbers or other characters after it. */
        int k1 = g2b_cls_at(e, s, n, i + 1, &l1);
        if (k1 != G2B_S)
            return g2b_run(e, s, n, i + 1 + l1, k1);
    }
    int k0 = g2b_cls_at(e, s, n, i, &l0);
    if (k0 != G2B_S)
        return g2b_run(e, s, n, i + l0, k0);
    /* Whitespace. \s+(?!\S): the whole run when it ends the text; else the run
     * but its last character, which then starts the next piece (" word");
     * \s+: a single whitespace character before a non-space. */
    size_t last = i, j = i + l0;
    while (j < n) {
        size_t l;
        if (g2b_cls_at(e, s, n, j, &l) != G2B_S)
            break;
        last = j;
        j += l;
    }
    if (j == n)
        return n;
    return last > i ? last : j;
}

/* ---- BPE ------------------------------------------------------------------- */

/* GPT-2's loop over a short word p[0..n), 2 <= n <= G2B_SMALL: w[0..*nw). */
static void g2b_bpe_small(const g2b_vocab *v, const uint8_t *p, size_t n, int32_t *w, size_t *nw)
{
    int32_t rank[G2B_SMALL], res[G2B_SMALL];
    for (size_t i = 0; i < n; i++)
        w[i] = v->byte_id[p[i]];
    for (size_t i = 0; i + 1 < n; i++)
        rank[i] = g2b_rank(v, w[i], w[i + 1], &res[i]);
    while (n > 1) {
        size_t best = 0;
        for (size_t i = 1; i + 1 < n; i++)
            if (rank[i] < rank[best])
                best = i;
        if (rank[best] == G2B_NO_RANK)
            break;
        /* Merge every occurrence of the pair, left to right; `best` is the first. */
        int32_t a = w[best], b = w[best + 1], m = res[best];
        size_t o = best;
        for (size_t i = best; i < n;) {
            if (i + 1 < n && w[i] == a && w[i + 1] == b) {
                w[o++] = m;
                i += 2;
            } else {
                w[o++] = w[i++];
            }
        }
        n = o;
        for (size_t i = best > 0 ? best - 1 : 0; i + 1 < n; i++)
            rank[i] = g2b_rank(v, w[i], w[i + 1], &res[i]);
    }
    *nw = n;
}

static bool g2b_grow(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t nc = *cap ? *cap : 64;
    while (nc < need) {
        if (nc > SIZE_MAX / 2 / elem)
            return false;
        nc *= 2;
    }
    void *np = realloc(*p, nc * elem);
    if (np == NULL)
        return false;
    *p = np;
    *cap = nc;
    return true;
}

/* The long-word queue: one bucket per merge rank, a linked list of chunks
 * of positions (pool with a free list), a bitmap of the non-empty buckets
 * and a cursor at or below the lowest one. Pushing is O(1); finding the
 * next rank scans the bitmap forward from the cursor, which only moves back
 * when a merges file ranks a merged symbol's pair before the merge that made
 * it (never in GPT-2's own file). */
static bool g2b_q_push(g2b_encoder *e, int32_t rank, int32_t pos)
{
    int32_t k = e->q_head[rank];
    if (k < 0 || e->q_pool[k].n == G2B_CHUNK) {
        int32_t c = e->q_free;
        if (c >= 0) {
            e->q_free = e->q_pool[c].next;
        } else {
            if (e->q_used == e->q_cap) {
                size_t nc = e->q_cap ? e->q_cap * 2 : 1024;
                if (nc > (size_t)INT32_MAX)
                    return false;
                g2b_chunk *a = realloc(e->q_pool, nc * sizeof *a);
                if (a == NULL)
                    return false;
                e->q_pool = a;
                e->q_cap = nc;
            }
            c = (int32_t)e->q_used++;
        }
        e->q_pool[c].next = k;
        e->q_pool[c].n = 0;
        e->q_head[rank] = k = c;
        e->q_bits[(uint32_t)rank >> 6] |= (uint64_t)1 << ((uint32_t)rank & 63);
        if ((uint32_t)rank < e->q_cursor)
            e->q_cursor = (uint32_t)rank;
    }
    e->q_pool[k].pos[e->q_pool[k].n++] = pos;
    return true;
}

/* The lowest rank with a non-empty bucket, or -1. */
static int32_t g2b_q_min(g2b_encoder *e)
{
    size_t words = (e->v->n_merges + 63) / 64;
    size_t w = e->q_cursor >> 6;
    if (w >= words)
        return -1;
    uint64_t bits = e->q_bits[w] & (~(uint64_t)0 << (e->q_cursor & 63));
    while (bits == 0) {
        if (++w >= words)
            return -1;
        bits = e->q_bits[w];
    }
    e->q_cursor = (uint32_t)(w * 64 + (size_t)__builtin_ctzll(bits));
    return (int32_t)e->q_cursor;
}

static int g2b_cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return x < y ? -1 : x > y;
}

static void g2b_big_free(g2b_encoder *e)
{
    free(e->sym);
    free(e->nxt);
    free(e->prv);
    free(e->round);
    free(e->q_pool);
    e->sym = e->nxt = e->prv = e->round = NULL;
    e->q_pool = NULL;
    e->big_cap = e->round_cap = e->q_cap = 0;
}

/* A long word: the same merges as g2b_bpe_small, without its quadratic
 * rescans. A round takes the bucket of the lowest rank (every entry is the
 * same pair), sorts it by position and merges the occurrences still present,
 * left to right, exactly as GPT-2's loop merges every occurrence of its best
 * pair in one pass; pairs formed by the round only take part in later rounds
 * (they can never have the round's own rank: they contain its result). */
static mcrt_status g2b_bpe_big(g2b_encoder *e, const uint8_t *p, size_t n, g2b_out *o)
{
    const g2b_vocab *v = e->v;
    if (n > (size_t)INT32_MAX)
        return MCRT_E_NOMEM;
    if (e->q_head == NULL) {
        size_t words = (v->n_merges + 63) / 64;
        e->q_head = malloc((v->n_merges ? v->n_merges : 1) * sizeof *e->q_head);
        e->q_bits = calloc(words ? words : 1, sizeof *e->q_bits);
        if (e->q_head == NULL || e->q_bits == NULL)
            return MCRT_E_NOMEM;
        memset(e->q_head, 0xFF, v->n_merges * sizeof *e->q_head);
    }
    if (n > e->big_cap) {
        int32_t *a = realloc(e->sym, n * sizeof *a);
        if (a == NULL)
            return MCRT_E_NOMEM;
        e->sym = a;
        a = realloc(e->nxt, n * sizeof *a);
        if (a == NULL)
            return MCRT_E_NOMEM;
        e->nxt = a;
        a = realloc(e->prv, n * sizeof *a);
        if (a == NULL)
            return MCRT_E_NOMEM;
        e->prv = a;
        e->big_cap = n;
    }
    int32_t *sym = e->sym, *nxt = e->nxt, *prv = e->prv;
    mcrt_status st = MCRT_OK;
    e->q_used = 0;
    e->q_free = -1;
    e->q_cursor = 0;
    for (size_t i = 0; i < n; i++) {
        sym[i] = v->byte_id[p[i]];
        nxt[i] = i + 1 < n ? (int32_t)(i + 1) : -1;
        prv[i] = (int32_t)i - 1;
    }
    for (size_t i = 0; i + 1 < n; i++) {
        int32_t res, r = g2b_rank(v, sym[i], sym[i + 1], &res);
        if (r != G2B_NO_RANK && st == MCRT_OK && !g2b_q_push(e, r, (int32_t)i))
            st = MCRT_E_NOMEM;
    }
    int32_t r;
    while ((r = g2b_q_min(e)) >= 0) {
        /* Take the bucket: its positions into e->round in push order (the
         * list runs newest chunk first, so fill from the end), its chunks
         * freed. */
        size_t rn = 0;
        int32_t k = e->q_head[r];
        e->q_head[r] = -1;
        e->q_bits[(uint32_t)r >> 6] &= ~((uint64_t)1 << ((uint32_t)r & 63));
        for (int32_t c = k; c >= 0; c = e->q_pool[c].next)
            rn += (size_t)e->q_pool[c].n;
        if (st == MCRT_OK) {
            void *rp = e->round;
            if (!g2b_grow(&rp, &e->round_cap, rn, sizeof *e->round))
                st = MCRT_E_NOMEM;
            e->round = rp;
        }
        size_t at = rn;
        while (k >= 0) {
            g2b_chunk *c = &e->q_pool[k];
            int32_t next = c->next;
            at -= (size_t)c->n;
            if (st == MCRT_OK)
                memcpy(e->round + at, c->pos, (size_t)c->n * sizeof *c->pos);
            c->next = e->q_free;
            e->q_free = k;
            k = next;
        }
        if (st != MCRT_OK)
            continue; /* drain the queue: every bucket must be empty again */
        /* Pushes come in rising position order within a round, so this is
         * usually a few ascending runs; sort unless it already is sorted. */
        bool sorted = true;
        for (size_t i = 1; i < rn && sorted; i++)
            sorted = e->round[i] > e->round[i - 1];
        if (!sorted)
            qsort(e->round, rn, sizeof *e->round, g2b_cmp_i32);
        int32_t a = v->merge_left[r], b = v->merge_right[r], m = v->merge_result[r];
        for (size_t i = 0; i < rn && st == MCRT_OK; i++) {
            int32_t pos = e->round[i];
            if (sym[pos] != a)
                continue; /* merged away, or changed earlier in this round */
            int32_t nx = nxt[pos];
            if (nx < 0 || sym[nx] != b)
                continue;
            sym[pos] = m;
            sym[nx] = -1;
            int32_t nn = nxt[nx];
            nxt[pos] = nn;
            if (nn >= 0)
                prv[nn] = pos;
            int32_t res, rr, pv = prv[pos];
            if (pv >= 0 && (rr = g2b_rank(v, sym[pv], m, &res)) != G2B_NO_RANK &&
                !g2b_q_push(e, rr, pv))
                st = MCRT_E_NOMEM;
            if (nn >= 0 && (rr = g2b_rank(v, m, sym[nn], &res)) != G2B_NO_RANK &&
                !g2b_q_push(e, rr, pos))
                st = MCRT_E_NOMEM;
        }
    }
    if (st == MCRT_OK)
        for (int32_t i = 0; i >= 0; i = nxt[i])
            g2b_push(o, sym[i]);
    /* Give back the memory of a huge word. */
    if (e->big_cap > (1u << 20))
        g2b_big_free(e);
    return st;
}

/* ---- cache ----------------------------------------------------------------- */

static void g2b_cache_clear(g2b_encoder *e)
{
    if (e->cache != NULL)
        memset(e->cache, 0, ((size_t)e->cache_mask + 1) * sizeof *e->cache);
    e->cache_count = 0;
    e->ckeys_used = 0;
    e->cids_used = 0;
}

static const g2b_cache_slot *g2b_cache_find(const g2b_encoder *e, const uint8_t *p, size_t n,
                                            uint64_t h)
{
    uint32_t i = (uint32_t)h & e->cache_mask;
    for (;;) {
        const g2b_cache_slot *s = &e->cache[i];
        if (s->n_ids == 0)
            return NULL;
        if (s->hash == h && s->key_len == n && memcmp(e->ckeys + s->key_off, p, n) == 0)
            return s;
        i = (i + 1) & e->cache_mask;
    }
}

/* Best effort: a failed allocation only means the word is not cached. */
static void g2b_cache_put(g2b_encoder *e, const uint8_t *p, size_t n, uint64_t h,
                          const int32_t *w, size_t nw)
{
    if (e->cache == NULL) {
        e->cache_mask = g2b_pow2_at_least(2 * e->cache_max) - 1;
        e->cache = calloc((size_t)e->cache_mask + 1, sizeof *e->cache);
        if (e->cache == NULL)
            return;
    }
    if (e->cache_count >= e->cache_max)
        g2b_cache_clear(e);
    void *kp = e->ckeys, *ip = e->cids;
    bool ok = g2b_grow(&kp, &e->ckeys_cap, e->ckeys_used + n, 1);
    e->ckeys = kp;
    if (!ok)
        return;
    ok = g2b_grow(&ip, &e->cids_cap, e->cids_used + nw, sizeof *e->cids);
    e->cids = ip;
    if (!ok)
        return;
    uint32_t i = (uint32_t)h & e->cache_mask;
    while (e->cache[i].n_ids != 0)
        i = (i + 1) & e->cache_mask;
    g2b_cache_slot *s = &e->cache[i];
    s->hash = h;
    s->key_off = (uint32_t)e->ckeys_used;
    s->ids_off = (uint32_t)e->cids_used;
    s->key_len = (uint16_t)n;
    s->n_ids = (uint16_t)nw;
    memcpy(e->ckeys + e->ckeys_used, p, n);
    memcpy(e->cids + e->cids_used, w, nw * sizeof *w);
    e->ckeys_used += n;
    e->cids_used += nw;
    e->cache_count++;
}

/* ---- encode ---------------------------------------------------------------- */

static mcrt_status g2b_piece(g2b_encoder *e, const uint8_t *p, size_t n, g2b_out *o)
{
    if (n == 1) {
        g2b_push(o, e->v->byte_id[p[0]]);
        return MCRT_OK;
    }
    if (n > e->small_max)
        return g2b_bpe_big(e, p, n, o);
    uint64_t h = 0;
    if (e->cache_max > 0) {
        h = g2b_hash_bytes(p, n);
        const g2b_cache_slot *s = e->cache ? g2b_cache_find(e, p, n, h) : NULL;
        if (s != NULL) {
            const int32_t *w = e->cids + s->ids_off;
            for (size_t k = 0; k < s->n_ids; k++)
                g2b_push(o, w[k]);
            return MCRT_OK;
        }
    }
    int32_t w[G2B_SMALL];
    size_t nw = 0;
    g2b_bpe_small(e->v, p, n, w, &nw);
    for (size_t k = 0; k < nw; k++)
        g2b_push(o, w[k]);
    if (e->cache_max > 0)
        g2b_cache_put(e, p, n, h, w, nw);
    return MCRT_OK;
}

static mcrt_status g2b_encode_plain(g2b_encoder *e, const uint8_t *s, size_t n, g2b_out *o)
{
    size_t i = 0;
    while (i < n) {
        size_t j = g2b_next_piece(e, s, n, i);
        mcrt_status st = g2b_piece(e, s + i, j - i, o);
        if (st != MCRT_OK)
            return st;
        i = j;
    }
    return MCRT_OK;
}

mcrt_status g2b_encode(g2b_encoder *e, const char *text, size_t len, int32_t *ids, size_t cap,
                       size_t *out_n)
{
    g2b_out o = {ids, cap, 0};
    const uint8_t *s = (const uint8_t *)text;
    mcrt_status st = MCRT_OK;
    if (!e->parse_special) {
        st = g2b_encode_plain(e, s, len, &o);
    } else {
        const size_t sl = strlen(G2B_EOD_TEXT);
        size_t i = 0;
        while (st == MCRT_OK && i < len) {
            const uint8_t *hit = memmem(s + i, len - i, G2B_EOD_TEXT, sl);
            size_t end = hit ? (size_t)(hit - s) : len;
            st = g2b_encode_plain(e, s + i, end - i, &o);
            if (hit != NULL) {
                g2b_push(&o, e->v->eod);
                end += sl;
            }
            i = end;
        }
    }
    if (st == MCRT_OK)
        *out_n = o.n;
    return st;
}
