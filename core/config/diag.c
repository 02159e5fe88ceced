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
    /* At most `limit` characters; a longer text keeps its end ("...tail"),
     * which is where a path's file name is. Control characters become '?'. */
    if (cap == 0)
        return;
    const size_t limit = 60;
    size_t len = s ? strlen(s) : 0, start = 0, o = 0;
    if (len > limit && cap > 4) {
        start = len - (limit - 3);
        memcpy(buf, "...", 3);
        o = 3;
    }
    for (size_t n = start; n < len && o + 1 < cap; n++) {
        unsigned char c = (unsigned char)s[n];
        buf[o++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    buf[o] = '\0';
}
