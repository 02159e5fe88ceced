/*
 * plugins/common/utf8.h: UTF-8 validation, repair and an incremental
 * (streaming) decoder, header-only, for plugins and the core alike.
 *
 * "Repair" is exactly Python's bytes.decode('utf-8', errors='replace') (what
 * Megatron's tokenizers do when they detokenize): every valid sequence is
 * kept, and each *maximal subpart* of an ill-formed sequence becomes one
 * U+FFFD (Unicode 15, section 3.9, table 3-8: "U+FFFD substitution of maximal
 * subparts"). For example E2 82 41 -> U+FFFD 'A' (one replacement for the
 * truncated E2 82), and C0 AF -> U+FFFD U+FFFD (C0 is never valid).
 *
 * The streaming decoder takes bytes in arbitrary pieces (a token's bytes at a
 * time) and never emits a partial character: bytes that may still become a
 * valid character are held back until the next piece completes or breaks
 * them; mcrt_utf8_stream_flush ends the stream, writing one U+FFFD for a held
 * incomplete sequence. Feeding any split of a byte string and then flushing
 * gives exactly mcrt_utf8_repair of the whole string.
 *
 * Everything is static inline: include it where it is needed, nothing to link.
 */
#ifndef MCRT_PLUGINS_COMMON_UTF8_H
#define MCRT_PLUGINS_COMMON_UTF8_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* U+FFFD REPLACEMENT CHARACTER in UTF-8, and its length. */
#define MCRT_UTF8_REPLACEMENT "\xEF\xBF\xBD"
#define MCRT_UTF8_REPLACEMENT_LEN 3

/* The sequence that starts at b[0], with `avail` >= 1 bytes available.
 * Returns its length (1..4) when it is a valid UTF-8 character. Otherwise
 * returns 0 and sets *bad to the length of its maximal subpart (>= 1: the
 * bytes one U+FFFD replaces), and *incomplete to 1 when those bytes are a
 * valid prefix cut short only by the end of the input (more bytes could
 * still complete it), else 0. Unicode 15, table 3-7. */
static inline size_t mcrt_utf8_seq(const unsigned char *b, size_t avail, size_t *bad,
                                   int *incomplete)
{
    unsigned char c = b[0], lo = 0x80, hi = 0xBF;
    size_t need, k;
    *incomplete = 0;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        need = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlong forms */
        else if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90; /* no overlong forms */
        else if (c == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else {
        *bad = 1; /* 80..C1, F5..FF are never a lead byte */
        return 0;
    }
    for (k = 1; k < need; k++) {
        unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
        if (k >= avail) {
            *bad = k;
            *incomplete = 1;
            return 0;
        }
        if (b[k] < l || b[k] > h) {
            *bad = k;
            return 0;
        }
    }
    return need;
}

/* The offset of the first byte of in[0..n) that starts no valid UTF-8
 * character, or n when all of it is valid. */
static inline size_t mcrt_utf8_first_invalid(const char *in, size_t n)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0, bad;
    int inc;
    while (i < n) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = mcrt_utf8_seq(s + i, n - i, &bad, &inc);
        if (k == 0)
            return i;
        i += k;
    }
    return n;
}

/* True when in[0..n) is valid UTF-8. */
static inline int mcrt_utf8_valid(const char *in, size_t n)
{
    return mcrt_utf8_first_invalid(in, n) == n;
}

/* Write code point cp (<= U+10FFFF, not a surrogate: the caller checks) as
 * UTF-8 to o, which has room for 4 bytes. Returns the bytes written. */
static inline size_t mcrt_utf8_put(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Repair in[0..n) into out (Python's errors='replace'); out == NULL only
 * measures. Returns the bytes written (needed). The output is at most
 * 3 * n bytes. */
static inline size_t mcrt_utf8_repair(const char *in, size_t n, char *out)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0, o = 0, bad = 0;
    int inc;
    while (i < n) {
        size_t run = i;
        while (run < n && s[run] < 0x80)
            run++;
        if (run > i) {
            if (out != NULL)
                memcpy(out + o, s + i, run - i);
            o += run - i;
            i = run;
            continue;
        }
        size_t k = mcrt_utf8_seq(s + i, n - i, &bad, &inc);
        if (k > 0) {
            if (out != NULL)
                memcpy(out + o, s + i, k);
            o += k;
            i += k;
        } else {
            if (out != NULL)
                memcpy(out + o, MCRT_UTF8_REPLACEMENT, MCRT_UTF8_REPLACEMENT_LEN);
            o += MCRT_UTF8_REPLACEMENT_LEN;
            i += bad;
        }
    }
    return o;
}

/* The incremental decoder: at most 3 bytes held back between calls. */
typedef struct mcrt_utf8_stream {
    unsigned char held[4];
    size_t n_held;
} mcrt_utf8_stream;

static inline void mcrt_utf8_stream_init(mcrt_utf8_stream *st)
{
    memset(st, 0, sizeof *st);
}

/* The most bytes mcrt_utf8_stream_feed can write for `len` input bytes (and
 * mcrt_utf8_stream_flush for len = 0). */
static inline size_t mcrt_utf8_stream_bound(size_t len)
{
    return 3 * (len + 3);
}

/* Feed in[0..len) and write the text it completes to out (room for
 * mcrt_utf8_stream_bound(len) bytes); returns the bytes written. A trailing
 * incomplete character is held back for the next call. */
static inline size_t mcrt_utf8_stream_feed(mcrt_utf8_stream *st, const char *in, size_t len,
                                           char *out)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t o = 0, i = 0, bad = 0;
    int inc;
    /* First finish (or break) the held sequence with bytes from `in`. */
    while (st->n_held > 0) {
        unsigned char tmp[4];
        size_t t = st->n_held, k;
        memcpy(tmp, st->held, t);
        while (t < 4 && i + (t - st->n_held) < len) {
            tmp[t] = s[i + (t - st->n_held)];
            t++;
        }
        k = mcrt_utf8_seq(tmp, t, &bad, &inc);
        if (k > 0) { /* completed: k > n_held because the held bytes alone were incomplete */
            memcpy(out + o, tmp, k);
            o += k;
            i += k - st->n_held;
            st->n_held = 0;
        } else if (inc) { /* still incomplete: everything is held */
            memcpy(st->held, tmp, t);
            st->n_held = t;
            return o;
        } else { /* broken: one U+FFFD for the maximal subpart, then go on */
            memcpy(out + o, MCRT_UTF8_REPLACEMENT, MCRT_UTF8_REPLACEMENT_LEN);
            o += MCRT_UTF8_REPLACEMENT_LEN;
            if (bad >= st->n_held) {
                i += bad - st->n_held;
                st->n_held = 0;
            } else { /* the subpart ends inside the held bytes: keep the rest */
                memmove(st->held, st->held + bad, st->n_held - bad);
                st->n_held -= bad;
            }
        }
    }
    while (i < len) {
        if (s[i] < 0x80) {
            out[o++] = (char)s[i++];
            continue;
        }
        size_t k = mcrt_utf8_seq(s + i, len - i, &bad, &inc);
        if (k > 0) {
            memcpy(out + o, s + i, k);
            o += k;
            i += k;
        } else if (inc) {
            memcpy(st->held, s + i, len - i);
            st->n_held = len - i;
            return o;
        } else {
            memcpy(out + o, MCRT_UTF8_REPLACEMENT, MCRT_UTF8_REPLACEMENT_LEN);
            o += MCRT_UTF8_REPLACEMENT_LEN;
            i += bad;
        }
    }
    return o;
}

/* End the stream: one U+FFFD for a held incomplete character (out has room
 * for 3 bytes). Returns the bytes written (0 or 3); the stream is reset. */
static inline size_t mcrt_utf8_stream_flush(mcrt_utf8_stream *st, char *out)
{
    if (st->n_held == 0)
        return 0;
    st->n_held = 0;
    memcpy(out, MCRT_UTF8_REPLACEMENT, MCRT_UTF8_REPLACEMENT_LEN);
    return MCRT_UTF8_REPLACEMENT_LEN;
}

#endif /* MCRT_PLUGINS_COMMON_UTF8_H */
