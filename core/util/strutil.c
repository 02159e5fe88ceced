/* core/util/strutil.c: see strutil.h. */
#include "util/strutil.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

char *xstrndup(const char *s, size_t n)
{
    return s ? strndup(s, n) : NULL;
}

/* Names compare case-insensitively with '-' equal to '_' (flags and keys use both). */
static int fold(int c)
{
    c = tolower((unsigned char)c);
    return c == '-' ? '_' : c;
}

size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 256 || lb > 256)
        return SIZE_MAX;
    /* Three rows of the DP table: i-2, i-1, i. */
    size_t rows[3][257];
    for (size_t j = 0; j <= lb; j++)
        rows[0][j] = j;
    size_t *pp = rows[2], *prev = rows[0], *cur = rows[1];
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = fold(a[i - 1]) == fold(b[j - 1]) ? 0 : 1;
            size_t v = prev[j] + 1;
            if (cur[j - 1] + 1 < v) v = cur[j - 1] + 1;
            if (prev[j - 1] + cost < v) v = prev[j - 1] + cost;
            if (i > 1 && j > 1 && fold(a[i - 1]) == fold(b[j - 2]) &&
                fold(a[i - 2]) == fold(b[j - 1]) && pp[j - 2] + 1 < v)
                v = pp[j - 2] + 1;
            cur[j] = v;
        }
        size_t *t = pp;
        pp = prev;
        prev = cur;
        cur = t;
    }
    return prev[lb];
}

static void strbuf_grow(strbuf *b, size_t need)
{
    if (b->failed)
        return;
    if (b->len + need + 1 <= b->cap)
        return;
    size_t nc = b->cap ? b->cap : 64;
    while (nc < b->len + need + 1) {
        if (nc > ((size_t)-1) / 2) {
            b->failed = 1;
            return;
        }
        nc *= 2;
    }
    char *nd = realloc(b->data, nc);
    if (nd == NULL) {
        b->failed = 1;
        return;
    }
    b->data = nd;
    b->cap = nc;
}

void strbuf_append(strbuf *b, const char *s, size_t n)
{
    strbuf_grow(b, n);
    if (b->failed)
        return;
    if (n > 0)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void strbuf_puts(strbuf *b, const char *s)
{
    strbuf_append(b, s, strlen(s));
}

void strbuf_printf(strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[512];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = 1;
        return;
    }
    if ((size_t)n < sizeof tmp) {
        strbuf_append(b, tmp, (size_t)n);
        return;
    }
    strbuf_grow(b, (size_t)n);
    if (b->failed)
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

const char *strbuf_cstr(strbuf *b)
{
    if (b->failed)
        return "";
    if (b->data == NULL) {
        strbuf_grow(b, 0);
        if (b->failed)
            return "";
        b->data[0] = '\0';
    }
    return b->data;
}

void strbuf_free(strbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

int hex_digit_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
