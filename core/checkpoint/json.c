/*
 * core/checkpoint/json.c: the strict streaming JSON reader (see json.h).
 */
#include "checkpoint/json.h"

#include "../../plugins/common/utf8.h" /* mcrt_utf8_seq, mcrt_utf8_put */
#include "util/strutil.h"               /* hex_digit_value */

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__) || defined(__clang__)
#define JSON_FMT __attribute__((format(printf, 3, 4)))
#else
#define JSON_FMT
#endif

static bool fail_at(json_reader *r, size_t pos, const char *fmt, ...) JSON_FMT;

static bool fail_at(json_reader *r, size_t pos, const char *fmt, ...)
{
    if (r->failed)
        return false;
    r->failed = true;
    r->err_offset = r->base + pos;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof r->err, fmt, ap);
    va_end(ap);
    return false;
}

void json_init(json_reader *r, const char *text, size_t len, size_t base, int max_depth)
{
    memset(r, 0, sizeof *r);
    r->text = text;
    r->len = len;
    r->base = base;
    if (max_depth < 1)
        max_depth = 1;
    if (max_depth > JSON_MAX_DEPTH)
        max_depth = JSON_MAX_DEPTH;
    r->max_depth = max_depth;
}

void json_fini(json_reader *r)
{
    free(r->buf);
    r->buf = NULL;
    r->cap = 0;
}

const char *json_error(const json_reader *r)
{
    return r->failed ? r->err : "";
}

bool json_eq(const char *s, size_t len, const char *lit)
{
    size_t n = strlen(lit);
    return n == len && memcmp(s, lit, n) == 0;
}

const char *json_kind_name(json_kind k)
{
    switch (k) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_NUMBER: return "a number";
    case JSON_TRUE: return "true";
    case JSON_FALSE: return "false";
    case JSON_NULL: return "null";
    default: return "not a JSON value";
    }
}

static void skip_ws(json_reader *r)
{
    while (r->pos < r->len) {
        char c = r->text[r->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        r->pos++;
    }
}

size_t json_offset(json_reader *r)
{
    skip_ws(r);
    return r->base + r->pos;
}

/* A printable description of the byte at pos, for messages. */
static const char *describe(const json_reader *r, size_t pos, char *buf, size_t n)
{
    if (pos >= r->len) {
        snprintf(buf, n, "the end of the text");
        return buf;
    }
    unsigned char c = (unsigned char)r->text[pos];
    if (c >= 0x20 && c < 0x7f)
        snprintf(buf, n, "'%c'", (char)c);
    else
        snprintf(buf, n, "byte 0x%02x", (unsigned)c);
    return buf;
}

json_kind json_peek(json_reader *r)
{
    if (r->failed)
        return JSON_INVALID;
    skip_ws(r);
    if (r->pos >= r->len) {
        fail_at(r, r->pos, "expected a value, found the end of the text");
        return JSON_INVALID;
    }
    char c = r->text[r->pos];
    switch (c) {
    case '{': return JSON_OBJECT;
    case '[': return JSON_ARRAY;
    case '"': return JSON_STRING;
    case 't': return JSON_TRUE;
    case 'f': return JSON_FALSE;
    case 'n': return JSON_NULL;
    default:
        if (c == '-' || (c >= '0' && c <= '9'))
            return JSON_NUMBER;
        {
            char d[32];
            fail_at(r, r->pos, "expected a value, found %s", describe(r, r->pos, d, sizeof d));
        }
        return JSON_INVALID;
    }
}

static bool open_container(json_reader *r, json_kind kind)
{
    if (r->failed)
        return false;
    json_kind k = json_peek(r);
    if (k == JSON_INVALID)
        return false;
    if (k != kind)
        return fail_at(r, r->pos, "expected %s, found %s", json_kind_name(kind), json_kind_name(k));
    if (r->depth >= r->max_depth)
        return fail_at(r, r->pos, "nesting deeper than %d levels", r->max_depth);
    r->pos++;
    r->first[r->depth] = 1;
    r->depth++;
    return true;
}

bool json_open_object(json_reader *r)
{
    return open_container(r, JSON_OBJECT);
}

bool json_open_array(json_reader *r)
{
    return open_container(r, JSON_ARRAY);
}

/* ---- strings --------------------------------------------------------------- */

/* Four hex digits at pos (after "\u"). */
static bool read_hex4(json_reader *r, size_t pos, uint32_t *out)
{
    if (r->len - pos < 4)
        return fail_at(r, pos, "truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = hex_digit_value((unsigned char)r->text[pos + (size_t)i]);
        if (h < 0)
            return fail_at(r, pos + (size_t)i, "invalid hex digit in \\u escape");
        v = v << 4 | (uint32_t)h;
    }
    *out = v;
    return true;
}

/* Length of the valid UTF-8 sequence starting at pos (lead byte >= 0x80), or 0. */
static size_t utf8_len(const json_reader *r, size_t pos)
{
    size_t bad;
    int incomplete;
    return mcrt_utf8_seq((const unsigned char *)r->text + pos, r->len - pos, &bad, &incomplete);
}

static bool reserve(json_reader *r, size_t need)
{
    if (need <= r->cap)
        return true;
    size_t cap = r->cap ? r->cap : 64;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) {
            cap = need;
            break;
        }
        cap *= 2;
    }
    char *nb = realloc(r->buf, cap);
    if (nb == NULL)
        return fail_at(r, r->pos, "out of memory decoding a string");
    r->buf = nb;
    r->cap = cap;
    return true;
}

/* The string at r->pos (a '"'). Without escapes the result points into the
 * text; with escapes it is decoded into r->buf (NUL-terminated there). */
static bool scan_string(json_reader *r, const char **s, size_t *len)
{
    size_t start = r->pos + 1;
    size_t i = start;
    bool escaped = false;
    /* Pass 1: validate and find the end. */
    for (;;) {
        if (i >= r->len)
            return fail_at(r, r->pos, "unterminated string");
        unsigned char c = (unsigned char)r->text[i];
        if (c == '"')
            break;
        if (c < 0x20)
            return fail_at(r, i, "control character 0x%02x in a string (must be escaped)", c);
        if (c == '\\') {
            escaped = true;
            if (i + 1 >= r->len)
                return fail_at(r, i, "unterminated string");
            char e = r->text[i + 1];
            if (e == 'u') {
                uint32_t cp;
                if (!read_hex4(r, i + 2, &cp))
                    return false;
                if (cp >= 0xdc00 && cp <= 0xdfff)
                    return fail_at(r, i, "unpaired low surrogate \\u%04x", (unsigned)cp);
                if (cp >= 0xd800 && cp <= 0xdbff) {
                    uint32_t lo;
                    if (r->len - (i + 6) < 2 || r->text[i + 6] != '\\' || r->text[i + 7] != 'u')
                        return fail_at(r, i, "high surrogate \\u%04x without a low surrogate",
                                       (unsigned)cp);
                    if (!read_hex4(r, i + 8, &lo))
                        return false;
                    if (lo < 0xdc00 || lo > 0xdfff)
                        return fail_at(r, i + 6, "\\u%04x after high surrogate \\u%04x is not a "
                                       "low surrogate", (unsigned)lo, (unsigned)cp);
                    i += 12;
                } else
                    i += 6;
                continue;
            }
            if (e != '"' && e != '\\' && e != '/' && e != 'b' && e != 'f' && e != 'n' && e != 'r' &&
                e != 't') {
                char d[32];
                return fail_at(r, i, "invalid escape \\%s", describe(r, i + 1, d, sizeof d));
            }
            i += 2;
            continue;
        }
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n = utf8_len(r, i);
        if (n == 0)
            return fail_at(r, i, "invalid UTF-8 in a string (byte 0x%02x)", c);
        i += n;
    }
    size_t end = i; /* the closing quote */
    if (!escaped) {
        *s = r->text + start;
        *len = end - start;
        r->pos = end + 1;
        return true;
    }
    /* Pass 2: decode (never longer than the raw text). */
    if (!reserve(r, end - start + 1))
        return false;
    char *o = r->buf;
    for (i = start; i < end;) {
        char c = r->text[i];
        if (c != '\\') {
            *o++ = c;
            i++;
            continue;
        }
        char e = r->text[i + 1];
        i += 2;
        switch (e) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        default: { /* 'u', validated above */
            uint32_t cp = 0, lo = 0;
            (void)read_hex4(r, i, &cp);
            i += 4;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                (void)read_hex4(r, i + 2, &lo);
                i += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            o += mcrt_utf8_put(o, cp);
            break;
        }
        }
    }
    *o = '\0';
    *s = r->buf;
    *len = (size_t)(o - r->buf);
    r->pos = end + 1;
    return true;
}

bool json_read_string(json_reader *r, const char **s, size_t *len)
{
    json_kind k = json_peek(r);
    if (k == JSON_INVALID)
        return false;
    if (k != JSON_STRING)
        return fail_at(r, r->pos, "expected a string, found %s", json_kind_name(k));
    return scan_string(r, s, len);
}

/* ---- members and items ------------------------------------------------------ */

int json_next_member(json_reader *r, const char **key, size_t *key_len)
{
    if (r->failed || r->depth == 0)
        return -1;
    skip_ws(r);
    char d[32];
    unsigned char *first = &r->first[r->depth - 1];
    if (r->pos < r->len && r->text[r->pos] == '}' && *first) {
        r->pos++;
        r->depth--;
        return 0;
    }
    if (!*first) {
        if (r->pos < r->len && r->text[r->pos] == '}') {
            r->pos++;
            r->depth--;
            return 0;
        }
        if (r->pos >= r->len || r->text[r->pos] != ',') {
            fail_at(r, r->pos, "expected ',' or '}' after an object member, found %s",
                    describe(r, r->pos, d, sizeof d));
            return -1;
        }
        r->pos++;
        skip_ws(r);
    }
    if (r->pos >= r->len || r->text[r->pos] != '"') {
        fail_at(r, r->pos, "expected a string key%s, found %s", *first ? " or '}'" : "",
                describe(r, r->pos, d, sizeof d));
        return -1;
    }
    if (!scan_string(r, key, key_len))
        return -1;
    skip_ws(r);
    if (r->pos >= r->len || r->text[r->pos] != ':') {
        fail_at(r, r->pos, "expected ':' after an object key, found %s",
                describe(r, r->pos, d, sizeof d));
        return -1;
    }
    r->pos++;
    *first = 0;
    return 1;
}

int json_next_item(json_reader *r)
{
    if (r->failed || r->depth == 0)
        return -1;
    skip_ws(r);
    char d[32];
    unsigned char *first = &r->first[r->depth - 1];
    if (r->pos < r->len && r->text[r->pos] == ']') {
        r->pos++;
        r->depth--;
        return 0;
    }
    if (!*first) {
        if (r->pos >= r->len || r->text[r->pos] != ',') {
            fail_at(r, r->pos, "expected ',' or ']' after an array item, found %s",
                    describe(r, r->pos, d, sizeof d));
            return -1;
        }
        r->pos++;
        skip_ws(r);
        if (r->pos < r->len && r->text[r->pos] == ']') {
            fail_at(r, r->pos, "trailing comma before ']'");
            return -1;
        }
    }
    *first = 0;
    return 1;
}

/* ---- numbers and literals ---------------------------------------------------- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

bool json_read_number(json_reader *r, json_number *out)
{
    json_kind k = json_peek(r);
    if (k == JSON_INVALID)
        return false;
    if (k != JSON_NUMBER)
        return fail_at(r, r->pos, "expected a number, found %s", json_kind_name(k));
    size_t start = r->pos, i = r->pos;
    bool neg = false;
    if (r->text[i] == '-') {
        neg = true;
        i++;
    }
    if (i >= r->len || !is_digit(r->text[i]))
        return fail_at(r, i, "invalid number: expected a digit after '-'");
    size_t int_start = i;
    if (r->text[i] == '0') {
        i++;
        if (i < r->len && is_digit(r->text[i]))
            return fail_at(r, start, "invalid number: leading zero");
    } else
        while (i < r->len && is_digit(r->text[i]))
            i++;
    size_t int_end = i;
    bool is_int = true;
    if (i < r->len && r->text[i] == '.') {
        is_int = false;
        i++;
        if (i >= r->len || !is_digit(r->text[i]))
            return fail_at(r, i, "invalid number: expected a digit after '.'");
        while (i < r->len && is_digit(r->text[i]))
            i++;
    }
    if (i < r->len && (r->text[i] == 'e' || r->text[i] == 'E')) {
        is_int = false;
        i++;
        if (i < r->len && (r->text[i] == '+' || r->text[i] == '-'))
            i++;
        if (i >= r->len || !is_digit(r->text[i]))
            return fail_at(r, i, "invalid number: expected a digit in the exponent");
        while (i < r->len && is_digit(r->text[i]))
            i++;
    }
    out->text = r->text + start;
    out->len = i - start;
    out->is_integer = is_int;
    out->overflow = false;
    out->value = 0;
    if (is_int) {
        /* Accumulate as a negative number so INT64_MIN fits. */
        int64_t v = 0;
        for (size_t j = int_start; j < int_end; j++) {
            int d = r->text[j] - '0';
            if (v < (INT64_MIN + d) / 10) {
                out->overflow = true;
                break;
            }
            v = v * 10 - d;
        }
        if (!out->overflow) {
            if (!neg) {
                if (v == INT64_MIN)
                    out->overflow = true;
                else
                    v = -v;
            }
            out->value = out->overflow ? 0 : v;
        }
    }
    r->pos = i;
    return true;
}

static bool read_literal(json_reader *r, const char *lit)
{
    size_t n = strlen(lit);
    if (r->len - r->pos < n || memcmp(r->text + r->pos, lit, n) != 0)
        return fail_at(r, r->pos, "invalid literal (expected '%s')", lit);
    r->pos += n;
    return true;
}

bool json_skip(json_reader *r)
{
    json_kind k = json_peek(r);
    switch (k) {
    case JSON_OBJECT: {
        if (!json_open_object(r))
            return false;
        const char *key;
        size_t kl;
        int m;
        while ((m = json_next_member(r, &key, &kl)) == 1)
            if (!json_skip(r))
                return false;
        return m == 0;
    }
    case JSON_ARRAY: {
        if (!json_open_array(r))
            return false;
        int m;
        while ((m = json_next_item(r)) == 1)
            if (!json_skip(r))
                return false;
        return m == 0;
    }
    case JSON_STRING: {
        const char *s;
        size_t n;
        return scan_string(r, &s, &n);
    }
    case JSON_NUMBER: {
        json_number num;
        return json_read_number(r, &num);
    }
    case JSON_TRUE: return read_literal(r, "true");
    case JSON_FALSE: return read_literal(r, "false");
    case JSON_NULL: return read_literal(r, "null");
    default: return false;
    }
}

bool json_finish(json_reader *r)
{
    if (r->failed)
        return false;
    if (r->depth != 0)
        return fail_at(r, r->pos, "internal: %d containers left open", r->depth);
    skip_ws(r);
    if (r->pos < r->len) {
        char d[32];
        return fail_at(r, r->pos, "unexpected %s after the end of the JSON value",
                       describe(r, r->pos, d, sizeof d));
    }
    return true;
}
