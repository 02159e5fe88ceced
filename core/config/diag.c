/*
 * core/config/diag.c: diagnostics (cfg_diag) and the small string helpers of
 * the config subsystem: duplication, "did you mean" distances, quoting user
 * text inside messages.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/internal.h"

int cfg_fail(cfg_diag *d, int exit_code, const char *fmt, ...)
{
    if (d) {
        va_list ap;
        d->exit_code = exit_code;
        va_start(ap, fmt);
        vsnprintf(d->msg, sizeof d->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void cfg_diag_append(cfg_diag *d, const char *fmt, ...)
{
    if (!d)
        return;
    size_t len = strnlen(d->msg, sizeof d->msg);
    if (len + 1 >= sizeof d->msg)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->msg + len, sizeof d->msg - len, fmt, ap);
    va_end(ap);
}

char *cfg_strdup(const char *s)
{
    return s ? cfg_strndup(s, strlen(s)) : NULL;
}

char *cfg_strndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static int fold(int c)
{
    c = tolower((unsigned char)c);
    return c == '-' ? '_' : c;
}

#define CFG_DIST_MAX_LEN 64

size_t cfg_edit_distance(const char *a, const char *b)
{
    /* Optimal string alignment: insert, delete, substitute, swap two neighbours. */
    size_t la = strlen(a), lb = strlen(b);
    if (la > CFG_DIST_MAX_LEN || lb > CFG_DIST_MAX_LEN)
        return (size_t)-1;
    size_t rows[3][CFG_DIST_MAX_LEN + 1];
    size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = fold(a[i - 1]) == fold(b[j - 1]) ? 0 : 1;
            size_t best = prev[j - 1] + cost;
            if (prev[j] + 1 < best)
                best = prev[j] + 1;
            if (cur[j - 1] + 1 < best)
                best = cur[j - 1] + 1;
            if (i > 1 && j > 1 && fold(a[i - 1]) == fold(b[j - 2]) &&
                fold(a[i - 2]) == fold(b[j - 1]) && prev2[j - 2] + 1 < best)
                best = prev2[j - 2] + 1;
            cur[j] = best;
        }
        size_t *tmp = prev2;
        prev2 = prev;
        prev = cur;
        cur = tmp;
    }
    return prev[lb];
}

bool cfg_is_close(const char *typed, const char *cand, size_t d)
{
    size_t lt = strlen(typed), lc = strlen(cand);
    size_t longer = lt > lc ? lt : lc;
    if (d == (size_t)-1)
        return false;
    /* One typo in a name of 3+ characters, or up to a third of the longer name. */
    if (d == 0 || (d == 1 && longer >= 3))
        return true;
    return d <= longer / 3;
}

void cfg_quote_for_msg(const char *s, char *buf, size_t cap)
{
    if (cap == 0)
        return;
    size_t o = 0, n = 0;
    const size_t limit = 60;
    for (; s && s[n] && o + 4 < cap; n++) {
        if (n == limit) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        unsigned char c = (unsigned char)s[n];
        buf[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    buf[o] = '\0';
}
