/*
 * core/config/print.c: `mcrt config`, the effective configuration, one line
 * per key with where its value came from:
 *
 *   generation.temperature = 0.7            # cli --temperature
 *
 * Values are written as YAML: lists as flow lists, strings double-quoted when
 * plain YAML would read them differently.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "config/internal.h"

#define SOURCE_COLUMN 40

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool failed;
} sbuf;

static void sb_putn(sbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->n + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 128;
        while (b->n + n + 1 > ncap)
            ncap *= 2;
        char *np = realloc(b->p, ncap);
        if (!np) {
            b->failed = true;
            return;
        }
        b->p = np;
        b->cap = ncap;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

static bool needs_quote(const char *s, bool flow)
{
    if (!s[0] || cfg_is_null_text(s))
        return true;
    bool bv;
    int64_t iv;
    double dv;
    if (cfg_parse_bool(s, &bv) || cfg_parse_int(s, &iv) == 0 || cfg_parse_float(s, &dv) != -1)
        return true;
    if (strchr("-?:,[]{}#&*!|>'\"%@` \t", s[0]))
        return true;
    size_t n = strlen(s);
    if (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == ':')
        return true;
    if (strstr(s, ": ") || strstr(s, " #"))
        return true;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f)
            return true;
        if (flow && strchr(",[]{}", c))
            return true;
    }
    return false;
}

static void put_quoted(sbuf *b, const char *s)
{
    sb_puts(b, "\"");
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        char esc[8];
        switch (c) {
        case '"': sb_puts(b, "\\\""); break;
        case '\\': sb_puts(b, "\\\\"); break;
        case '\n': sb_puts(b, "\\n"); break;
        case '\t': sb_puts(b, "\\t"); break;
        case '\r': sb_puts(b, "\\r"); break;
        default:
            if (c < 0x20 || c == 0x7f) {
                snprintf(esc, sizeof esc, "\\x%02X", c);
                sb_puts(b, esc);
            } else {
                sb_putn(b, (const char *)p, 1);
            }
        }
    }
    sb_puts(b, "\"");
}

static void put_string(sbuf *b, const char *s, bool flow)
{
    if (needs_quote(s, flow))
        put_quoted(b, s);
    else
        sb_puts(b, s);
}

static void put_float(sbuf *b, double v)
{
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    if (!strpbrk(buf, ".eEn"))
        strcat(buf, ".0");
    sb_puts(b, buf);
}

static void put_typed(sbuf *b, const cfg_entry *e)
{
    char buf[32];
    switch (e->type) {
    case MCRT_CFG_BOOL: sb_puts(b, e->b ? "true" : "false"); break;
    case MCRT_CFG_INT:
        snprintf(buf, sizeof buf, "%" PRId64, e->i);
        sb_puts(b, buf);
        break;
    case MCRT_CFG_FLOAT: put_float(b, e->f); break;
    case MCRT_CFG_STRING_LIST:
        sb_puts(b, "[");
        for (size_t i = 0; i < e->n_list; i++) {
            if (i)
                sb_puts(b, ", ");
            put_string(b, e->list[i], true);
        }
        sb_puts(b, "]");
        break;
    default: put_string(b, e->str ? e->str : "", false); break;
    }
}

/* Raw text: quoted scalars stay quoted, plain YAML scalars stay as written. */
static void put_raw_scalar(sbuf *b, const char *text, bool quoted, int src, bool flow)
{
    if (quoted)
        put_quoted(b, text);
    else if (src == CFG_SRC_YAML && !(flow && strpbrk(text, ",[]{}")))
        sb_puts(b, text);
    else
        put_string(b, text, flow);
}

static void put_raw(sbuf *b, const cfg_entry *e)
{
    switch (e->kind) {
    case CFG_V_SCALAR: put_raw_scalar(b, e->text, e->quoted, e->src, false); break;
    case CFG_V_LIST:
        sb_puts(b, "[");
        for (size_t i = 0; i < e->n_items; i++) {
            if (i)
                sb_puts(b, ", ");
            put_raw_scalar(b, e->items[i].text, e->items[i].quoted, e->src, true);
        }
        sb_puts(b, "]");
        break;
    default: sb_puts(b, "~"); break;
    }
}

static void emit(FILE *out, sbuf *b, const char *source)
{
    if (b->failed || !b->p) {
        fprintf(out, "# (out of memory)\n");
    } else {
        size_t pad = b->n < SOURCE_COLUMN ? SOURCE_COLUMN - b->n : 2;
        fprintf(out, "%s%*s# %s\n", b->p, (int)pad, "", source);
    }
    b->n = 0;
    b->failed = false;
    if (b->p)
        b->p[0] = '\0';
}

static void start_line(sbuf *b, const char *section, const char *key)
{
    sb_puts(b, section);
    sb_puts(b, ".");
    sb_puts(b, key);
    sb_puts(b, " = ");
}

static void print_raw_section(const cfg_tree *t, const mcrt_config *s, bool skip_core, FILE *out,
                              sbuf *b)
{
    for (size_t i = 0; i < s->n; i++) {
        const cfg_entry *e = s->entries[i];
        if (skip_core && cfg_core_key(s->name, e->key))
            continue;
        if (e->kind == CFG_V_MAP && e->map) {
            print_raw_section(t, e->map, false, out, b);
            continue;
        }
        char src[600];
        cfg_entry_source(t, e, src, sizeof src);
        start_line(b, s->name, e->key);
        put_raw(b, e);
        emit(out, b, src);
    }
}

static void print_default(const mcrt_config_key *k, sbuf *b)
{
    if (!k->default_value) {
        sb_puts(b, "~");
    } else if (k->type == MCRT_CFG_STRING || k->type == MCRT_CFG_PATH) {
        put_string(b, k->default_value, false);
    } else {
        sb_puts(b, k->default_value);
    }
}

void cfg_print_effective(const cfg_tree *t, FILE *out)
{
    if (!t || !out)
        return;
    sbuf b = { 0 };
    char src[600];
    for (int i = 0; i < CFG_N_SECTIONS; i++) {
        const mcrt_config *s = t->sections[i];
        if (s->validated) {
            for (size_t j = 0; j < s->n; j++) {
                const cfg_entry *e = s->entries[j];
                if (e->kind == CFG_V_NULL && e->src != CFG_SRC_DEFAULT)
                    continue; /* a null YAML value, hidden behind its default */
                start_line(&b, s->name, e->key);
                if (e->kind == CFG_V_NULL) {
                    sb_puts(&b, "~");
                    emit(out, &b, "unset");
                    continue;
                }
                if (e->typed)
                    put_typed(&b, e);
                else
                    put_raw(&b, e);
                cfg_entry_source(t, e, src, sizeof src);
                emit(out, &b, src);
            }
            continue;
        }
        /* Not validated: the core keys with their defaults, then the rest as written. */
        for (const mcrt_config_key *k = cfg_core_keys(s->name); k && k->name; k++) {
            const cfg_entry *e = cfg_entry_find(s, k->name);
            start_line(&b, s->name, k->name);
            if (e && e->kind != CFG_V_NULL) {
                put_raw(&b, e);
                cfg_entry_source(t, e, src, sizeof src);
                emit(out, &b, src);
            } else {
                print_default(k, &b);
                emit(out, &b, k->default_value ? "default" : "unset");
            }
        }
        print_raw_section(t, s, true, out, &b);
    }
    free(b.p);
}
