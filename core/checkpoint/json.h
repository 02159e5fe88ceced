/*
 * core/checkpoint/json.h: a strict, streaming (pull) JSON reader for
 * checkpoint headers and index files.
 *
 * Strict RFC 8259: one value, surrounded only by whitespace; UTF-8 checked
 * (no overlong forms, surrogates or code points past U+10FFFF); no control
 * characters in strings; escapes and surrogate pairs checked; numbers by the
 * grammar (no leading zeros, no NaN/Infinity, no trailing commas); nesting
 * bounded. Nothing is built: the caller walks the document with
 * json_open_object / json_next_member / json_open_array / json_next_item and
 * reads scalars, so memory is the caller's tables plus one scratch buffer for
 * decoded strings. Every syntax error records the byte offset (plus `base`,
 * so offsets count from the start of the file) and stops the reader: every
 * call after the first error fails.
 *
 * Not thread-safe; one reader per document.
 */
#ifndef MCRT_CORE_CHECKPOINT_JSON_H
#define MCRT_CORE_CHECKPOINT_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 64

typedef enum json_kind {
    JSON_INVALID = 0, /* no value starts here (the error is recorded) */
    JSON_OBJECT,
    JSON_ARRAY,
    JSON_STRING,
    JSON_NUMBER,
    JSON_TRUE,
    JSON_FALSE,
    JSON_NULL
} json_kind;

typedef struct json_reader {
    const char *text;
    size_t len;
    size_t pos;
    size_t base;                           /* added to every reported offset */
    int depth;
    int max_depth;                         /* <= JSON_MAX_DEPTH */
    unsigned char first[JSON_MAX_DEPTH];   /* per open container: nothing read yet */
    char *buf;                             /* decoded strings with escapes */
    size_t cap;
    bool failed;
    size_t err_offset;                     /* base + position of the error */
    char err[192];
} json_reader;

/* A number token: its text, and its value when it is an integer literal. */
typedef struct json_number {
    const char *text;
    size_t len;
    bool is_integer;  /* no fraction, no exponent */
    bool overflow;    /* an integer literal outside int64_t */
    int64_t value;    /* when is_integer && !overflow */
} json_number;

/* `text` is borrowed for the reader's lifetime; max_depth is clamped to
 * [1, JSON_MAX_DEPTH]. */
void json_init(json_reader *r, const char *text, size_t len, size_t base, int max_depth);
void json_fini(json_reader *r);

/* The kind of the next value (whitespace skipped), without consuming it. */
json_kind json_peek(json_reader *r);

/* Consume '{' / '['. False (error recorded) when something else is next or
 * the nesting limit is reached. */
bool json_open_object(json_reader *r);
bool json_open_array(json_reader *r);

/* Next member of the innermost open object: 1 with its decoded key (valid
 * until the next string is read; may hold NUL bytes) and the ':' consumed,
 * so the value is next; 0 when '}' closed the object; -1 on error. */
int json_next_member(json_reader *r, const char **key, size_t *key_len);

/* Next item of the innermost open array: 1 when a value follows, 0 when ']'
 * closed the array, -1 on error. */
int json_next_item(json_reader *r);

/* Read a string (decoded; valid until the next string is read), a number,
 * or skip any value (fully checked). False on error or wrong kind. */
bool json_read_string(json_reader *r, const char **s, size_t *len);
bool json_read_number(json_reader *r, json_number *out);
bool json_skip(json_reader *r);

/* After the top-level value: only whitespace may remain. */
bool json_finish(json_reader *r);

/* base + the offset of the next non-whitespace byte. */
size_t json_offset(json_reader *r);

/* The recorded error ("" if none) and its offset. */
const char *json_error(const json_reader *r);

/* A kind's English name with an article ("an object", "a string"). */
const char *json_kind_name(json_kind k);

/* s[0..len) equals the NUL-terminated lit. */
bool json_eq(const char *s, size_t len, const char *lit);

#endif /* MCRT_CORE_CHECKPOINT_JSON_H */
