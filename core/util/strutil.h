/*
 * core/util/strutil.h: small string helpers shared by the core.
 */
#ifndef MCRT_CORE_STRUTIL_H
#define MCRT_CORE_STRUTIL_H

#include <stddef.h>

/* strdup/strndup that accept NULL (returning NULL). */
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* The value of one hex digit (0-9, a-f, A-F; c as an unsigned char, or
 * EOF), or -1 for any other character. */
int hex_digit_value(int c);

/* Damerau-Levenshtein (optimal string alignment) distance, for "did you mean":
 * case-insensitive, '-' equal to '_'. SIZE_MAX for strings over 256 bytes. */
size_t edit_distance(const char *a, const char *b);

/* A growable byte buffer; on allocation failure `failed` is set and appends
 * become no-ops, so callers check once at the end. */
typedef struct strbuf {
    char *data;   /* NUL-terminated when len > 0 or after strbuf_cstr */
    size_t len, cap;
    int failed;
} strbuf;

void strbuf_append(strbuf *b, const char *s, size_t n);
void strbuf_puts(strbuf *b, const char *s);
void strbuf_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *strbuf_cstr(strbuf *b);
void strbuf_free(strbuf *b);

#endif
