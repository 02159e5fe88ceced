/*
 * core/config/validate.c: scalar parsing, type/range/choice checks, defaults,
 * path resolution, and the messages that name where a bad value came from.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/internal.h"

/* ---- Scalar parsers ------------------------------------------------------ */

bool cfg_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "true", "yes", "on", "1" };
    static const char *const no[] = { "false", "no", "off", "0" };
    if (!s)
        return false;
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

int cfg_parse_int(const char *s, int64_t *out)
{
    if (!s)
        return -1;
    const char *p = s;
    if (*p == '+' || *p == '-')
        p++;
    if (!*p)
        return -1;
    for (const char *q = p; *q; q++)
        if (!isdigit((unsigned char)*q))
            return -1;
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (errno == ERANGE)
        return -2;
    if (!end || *end)
        return -1;
    *out = (int64_t)v;
    return 0;
}

int cfg_parse_float(const char *s, double *out)
{
    if (!s || !*s || isspace((unsigned char)s[0]) || strpbrk(s, "xX"))
        return -1;
    errno = 0;
    char *end = NULL;
    double v = strtod(s, &end);
    if (!end || end == s || *end)
        return -1;
    if (!isfinite(v) || (errno == ERANGE && fabs(v) == HUGE_VAL))
        return -2;
    *out = v;
    return 0;
}

/* ---- Messages ------------------------------------------------------------ */

static void fmt_num(double v, char *buf, size_t cap)
{
    if (v == floor(v) && fabs(v) < 1e15)
        snprintf(buf, cap, "%.0f", v);
    else
        snprintf(buf, cap, "%g", v);
}

void cfg_describe_expected(const char *section, const mcrt_config_key *k, char *buf, size_t cap)
{
    const char *base;
    switch (k->type) {
    case MCRT_CFG_BOOL: base = "a boolean (true/false, yes/no, on/off, 1/0)"; break;
    case MCRT_CFG_INT: base = "an integer"; break;
    case MCRT_CFG_FLOAT: base = "a number"; break;
    case MCRT_CFG_STRING: base = "a string"; break;
    case MCRT_CFG_PATH: base = "a path"; break;
    case MCRT_CFG_STRING_LIST: base = "a string or a list of strings"; break;
    case MCRT_CFG_ENUM: {
        size_t o = (size_t)snprintf(buf, cap, "one of ");
        for (const char *c = k->choices ? k->choices : ""; *c && o + 3 < cap; c++) {
            if (*c == '|') {
                buf[o++] = ',';
                buf[o++] = ' ';
            } else {
                buf[o++] = *c;
            }
        }
        if (o < cap)
            buf[o] = '\0';
        return;
    }
    default: base = "a value"; break;
    }
    char lo[32], hi[32];
    fmt_num(k->min, lo, sizeof lo);
    fmt_num(k->max, hi, sizeof hi);
    bool num = k->type == MCRT_CFG_INT || k->type == MCRT_CFG_FLOAT;
    bool has_min = num && (k->flags & MCRT_CFG_HAS_MIN);
    bool has_max = num && (k->flags & MCRT_CFG_HAS_MAX);
    bool excl = has_min && section && k->name && cfg_key_min_exclusive(section, k->name);
    if (has_min && has_max)
        snprintf(buf, cap, "%s in %c%s, %s]", base, excl ? '(' : '[', lo, hi);
    else if (has_min)
        snprintf(buf, cap, "%s %s %s", base, excl ? ">" : ">=", lo);
    else if (has_max)
        snprintf(buf, cap, "%s <= %s", base, hi);
    else
        snprintf(buf, cap, "%s", base);
}

void cfg_entry_source(const cfg_tree *t, const cfg_entry *e, char *buf, size_t cap)
{
    switch (e->src) {
    case CFG_SRC_YAML:
        snprintf(buf, cap, "%s:%d:%d", t && t->file ? t->file : "(yaml)", e->line, e->col);
        break;
    case CFG_SRC_ENV: snprintf(buf, cap, "env %s", e->origin ? e->origin : "?"); break;
    case CFG_SRC_CLI: snprintf(buf, cap, "cli %s", e->origin ? e->origin : "?"); break;
    case CFG_SRC_CHECKPOINT:
        snprintf(buf, cap, "checkpoint %s", e->origin ? e->origin : "args");
        break;
    default: snprintf(buf, cap, "default"); break;
    }
}

/* "expected X, got Y" for entry e of section.key, at (line, col) when from YAML. */
static int value_error(const cfg_tree *t, const char *section, const cfg_entry *e, int line,
                       int col, const char *expected, const char *given, cfg_diag *diag)
{
    char key[96];
    cfg_quote_for_msg(e->key, key, sizeof key);
    switch (e->src) {
    case CFG_SRC_YAML:
        return cfg_fail(diag, CFG_EXIT_CONFIG, "%s:%d:%d: %s.%s: expected %s, got %s",
                        t && t->file ? t->file : "(yaml)", line, col, section, key, expected,
                        given);
    case CFG_SRC_CLI:
        return cfg_fail(diag, CFG_EXIT_USAGE, "%s: expected %s, got %s (%s.%s)",
                        e->origin ? e->origin : "?", expected, given, section, key);
    case CFG_SRC_ENV:
    case CFG_SRC_CHECKPOINT:
        return cfg_fail(diag, CFG_EXIT_CONFIG, "%s: expected %s, got %s (%s.%s)",
                        e->origin ? e->origin : "?", expected, given, section, key);
    default:
        return cfg_fail(diag, CFG_EXIT_SOFTWARE,
                        "%s.%s: the declared default is invalid: expected %s, got %s", section,
                        key, expected, given);
    }
}

static void given_text(const char *text, bool quoted, char *buf, size_t cap)
{
    char q[80];
    cfg_quote_for_msg(text, q, sizeof q);
    if (quoted)
        snprintf(buf, cap,
                 "the quoted string \"%s\" (a quoted value is a string; remove the quotes)", q);
    else
        snprintf(buf, cap, "'%s'", q);
}

/* ---- Conversion ------------------------------------------------------------ */

static char *resolve_path(const cfg_tree *t, int src, const char *p)
{
    if (src != CFG_SRC_YAML || p[0] == '/')
        return cfg_strdup(p);
    if (t->home && (strcmp(p, "~") == 0 || strncmp(p, "~/", 2) == 0)) {
        size_t n = strlen(t->home) + strlen(p);
        char *r = malloc(n + 1);
        if (r)
            snprintf(r, n + 1, "%s%s", t->home, p + 1);
        return r;
    }
    if (!t->dir || strcmp(t->dir, ".") == 0)
        return cfg_strdup(p);
    size_t dl = strlen(t->dir);
    bool slash = dl > 0 && t->dir[dl - 1] == '/';
    size_t n = dl + 1 + strlen(p);
    char *r = malloc(n + 1);
    if (r)
        snprintf(r, n + 1, "%s%s%s", t->dir, slash ? "" : "/", p);
    return r;
}

static bool in_choices(const char *choices, const char *v)
{
    size_t vl = strlen(v);
    for (const char *c = choices; c && *c;) {
        const char *bar = strchr(c, '|');
        size_t n = bar ? (size_t)(bar - c) : strlen(c);
        if (n == vl && strncmp(c, v, n) == 0)
            return true;
        if (!bar)
            break;
        c = bar + 1;
    }
    return false;
}

/* The choice nearest to v, if close, into buf (else ""). */
static void nearest_choice(const char *choices, const char *v, char *buf, size_t cap)
{
    size_t best = (size_t)-1;
    buf[0] = '\0';
    for (const char *c = choices; c && *c;) {
        const char *bar = strchr(c, '|');
        size_t n = bar ? (size_t)(bar - c) : strlen(c);
        char one[64];
        if (n < sizeof one) {
            memcpy(one, c, n);
            one[n] = '\0';
            size_t d = edit_distance(v, one);
            if (d < best && cfg_is_close(v, one, d)) {
                best = d;
                snprintf(buf, cap, "%s", one);
            }
        }
        if (!bar)
            break;
        c = bar + 1;
    }
}

static int oom(cfg_diag *diag)
{
    return cfg_fail(diag, CFG_EXIT_UNAVAILABLE, "out of memory");
}

static int convert_scalar(const cfg_tree *t, const char *section, const mcrt_config_key *k,
                          cfg_entry *e, const char *expected, cfg_diag *diag)
{
    char given[256];
    const char *text = e->text;
    bool typed_scalar = k->type == MCRT_CFG_BOOL || k->type == MCRT_CFG_INT ||
                        k->type == MCRT_CFG_FLOAT;
    if (typed_scalar && e->quoted) {
        given_text(text, true, given, sizeof given);
        return value_error(t, section, e, e->line, e->col, expected, given, diag);
    }
    switch (k->type) {
    case MCRT_CFG_BOOL:
        if (!cfg_parse_bool(text, &e->b)) {
            given_text(text, false, given, sizeof given);
            return value_error(t, section, e, e->line, e->col, expected, given, diag);
        }
        break;
    case MCRT_CFG_INT: {
        int r = cfg_parse_int(text, &e->i);
        if (r != 0) {
            char q[80];
            cfg_quote_for_msg(text, q, sizeof q);
            if (r == -2)
                snprintf(given, sizeof given, "'%s', which is out of the 64-bit range", q);
            else
                snprintf(given, sizeof given, "'%s'", q);
            return value_error(t, section, e, e->line, e->col, expected, given, diag);
        }
        double v = (double)e->i;
        if (((k->flags & MCRT_CFG_HAS_MIN) && v < k->min) ||
            ((k->flags & MCRT_CFG_HAS_MAX) && v > k->max) ||
            ((k->flags & MCRT_CFG_HAS_MIN) && v <= k->min &&
             cfg_key_min_exclusive(section, k->name))) {
            snprintf(given, sizeof given, "%" PRId64, e->i);
            return value_error(t, section, e, e->line, e->col, expected, given, diag);
        }
        break;
    }
    case MCRT_CFG_FLOAT: {
        int r = cfg_parse_float(text, &e->f);
        if (r != 0) {
            char q[80];
            cfg_quote_for_msg(text, q, sizeof q);
            if (r == -2)
                snprintf(given, sizeof given, "'%s', which is not a finite number", q);
            else
                snprintf(given, sizeof given, "'%s'", q);
            return value_error(t, section, e, e->line, e->col, expected, given, diag);
        }
        if (((k->flags & MCRT_CFG_HAS_MIN) && e->f < k->min) ||
            ((k->flags & MCRT_CFG_HAS_MAX) && e->f > k->max) ||
            ((k->flags & MCRT_CFG_HAS_MIN) && e->f <= k->min &&
             cfg_key_min_exclusive(section, k->name))) {
            char q[80];
            cfg_quote_for_msg(text, q, sizeof q);
            snprintf(given, sizeof given, "%s", q);
            return value_error(t, section, e, e->line, e->col, expected, given, diag);
        }
        break;
    }
    case MCRT_CFG_STRING:
        e->str = cfg_strdup(text);
        if (!e->str)
            return oom(diag);
        break;
    case MCRT_CFG_PATH:
        if (!text[0])
            return value_error(t, section, e, e->line, e->col, expected, "an empty string",
                               diag);
        e->str = resolve_path(t, e->src, text);
        if (!e->str)
            return oom(diag);
        break;
    case MCRT_CFG_ENUM:
        if (!in_choices(k->choices, text)) {
            char near[64];
            given_text(text, false, given, sizeof given);
            nearest_choice(k->choices, text, near, sizeof near);
            if (near[0]) {
                size_t gl = strlen(given);
                snprintf(given + gl, sizeof given - gl, "; did you mean '%s'?", near);
            }
            return value_error(t, section, e, e->line, e->col, expected, given, diag);
        }
        e->str = cfg_strdup(text);
        if (!e->str)
            return oom(diag);
        break;
    default:
        break;
    }
    return 0;
}

/* A STRING_LIST default: "[a, b]" (flow list) or "a|b". */
static int split_default_list(const char *text, cfg_entry *e)
{
    size_t len = strlen(text);
    char sep = '|';
    const char *p = text, *end = text + len;
    if (len >= 2 && text[0] == '[' && text[len - 1] == ']') {
        sep = ',';
        p = text + 1;
        end = text + len - 1;
    }
    while (p <= end) {
        const char *q = p;
        while (q < end && *q != sep)
            q++;
        const char *a = p, *b = q;
        while (a < b && isspace((unsigned char)*a))
            a++;
        while (b > a && isspace((unsigned char)b[-1]))
            b--;
        if (b - a >= 2 && (*a == '"' || *a == '\'') && b[-1] == *a) {
            a++;
            b--;
        }
        if (b > a || sep == '|') {
            char **nl = realloc(e->list, (e->n_list + 1) * sizeof *nl);
            if (!nl)
                return -1;
            e->list = nl;
            e->list[e->n_list] = cfg_strndup(a, (size_t)(b - a));
            if (!e->list[e->n_list])
                return -1;
            e->n_list++;
        }
        p = q + 1;
    }
    return 0;
}

static int convert_list(const cfg_tree *t, const char *section, const mcrt_config_key *k,
                        cfg_entry *e, cfg_diag *diag)
{
    bool paths = cfg_key_is_path_list(section, k->name);
    if (e->kind == CFG_V_SCALAR) {
        if (e->src == CFG_SRC_DEFAULT) {
            if (split_default_list(e->text, e) < 0)
                return oom(diag);
            return 0;
        }
        e->list = calloc(1, sizeof *e->list);
        if (!e->list)
            return oom(diag);
        e->list[0] = paths ? resolve_path(t, e->src, e->text) : cfg_strdup(e->text);
        if (!e->list[0])
            return oom(diag);
        e->n_list = 1;
        return 0;
    }
    if (e->n_items) {
        e->list = calloc(e->n_items, sizeof *e->list);
        if (!e->list)
            return oom(diag);
    }
    for (size_t i = 0; i < e->n_items; i++) {
        const cfg_item *it = &e->items[i];
        if (e->src == CFG_SRC_YAML && !it->quoted && cfg_is_null_text(it->text)) {
            char key[96];
            cfg_quote_for_msg(e->key, key, sizeof key);
            return cfg_fail(diag, CFG_EXIT_CONFIG,
                            "%s:%d:%d: %s.%s: list item %zu is empty (null); quote it (\"\") for "
                            "an empty string",
                            t && t->file ? t->file : "(yaml)", it->line, it->col, section, key,
                            i + 1);
        }
        e->list[i] = paths ? resolve_path(t, e->src, it->text) : cfg_strdup(it->text);
        if (!e->list[i])
            return oom(diag);
        e->n_list = i + 1;
    }
    return 0;
}

int cfg_convert_entry(const cfg_tree *t, const char *section, const mcrt_config_key *k,
                      cfg_entry *e, cfg_diag *diag)
{
    char expected[256];
    cfg_entry_clear_typed(e);
    cfg_describe_expected(section, k, expected, sizeof expected);
    if (e->kind == CFG_V_MAP)
        return value_error(t, section, e, e->line, e->col, expected, "a mapping", diag);
    if (k->type == MCRT_CFG_STRING_LIST) {
        if (e->kind != CFG_V_NULL && convert_list(t, section, k, e, diag) < 0) {
            cfg_entry_clear_typed(e);
            return -1;
        }
    } else {
        if (e->kind == CFG_V_LIST)
            return value_error(t, section, e, e->line, e->col, expected, "a list", diag);
        if (e->kind == CFG_V_SCALAR && convert_scalar(t, section, k, e, expected, diag) < 0) {
            cfg_entry_clear_typed(e);
            return -1;
        }
    }
    e->type = k->type;
    e->typed = e->kind != CFG_V_NULL;
    return 0;
}

/* ---- Sections ------------------------------------------------------------ */

#define CFG_MAX_KEYS_PER_SET 1024

typedef struct decls {
    mcrt_config_key *k;
    size_t n, cap;
} decls;

static const mcrt_config_key *decl_find(const decls *d, const char *name)
{
    for (size_t i = 0; i < d->n; i++)
        if (strcmp(d->k[i].name, name) == 0)
            return &d->k[i];
    return NULL;
}

static int collect_decls(const char *section, const mcrt_config_key *const *sets, size_t n_sets,
                         decls *d, cfg_diag *diag)
{
    const size_t need = offsetof(mcrt_config_key, doc) + sizeof(((mcrt_config_key *)0)->doc);
    for (size_t s = 0; s < n_sets; s++) {
        const char *base = (const char *)sets[s];
        if (!base)
            continue;
        uint32_t stride;
        memcpy(&stride, base, sizeof stride);
        if (stride < need)
            return cfg_fail(diag, CFG_EXIT_SOFTWARE,
                            "%s: key declarations with struct_size %u (at least %zu expected); "
                            "was the plugin built against another mcrt/config.h?",
                            section, stride, need);
        for (size_t i = 0;; i++) {
            if (i == CFG_MAX_KEYS_PER_SET)
                return cfg_fail(diag, CFG_EXIT_SOFTWARE,
                                "%s: more than %d key declarations in one set (missing "
                                "MCRT_CONFIG_KEY_END?)",
                                section, CFG_MAX_KEYS_PER_SET);
            mcrt_config_key k;
            memcpy(&k, base + i * stride, sizeof k);
            if (!k.name)
                break;
            if (k.type < MCRT_CFG_BOOL || k.type > MCRT_CFG_STRING_LIST)
                return cfg_fail(diag, CFG_EXIT_SOFTWARE,
                                "%s.%s: declared with unknown type %u", section, k.name, k.type);
            if (k.type == MCRT_CFG_ENUM && (!k.choices || !k.choices[0]))
                return cfg_fail(diag, CFG_EXIT_SOFTWARE,
                                "%s.%s: an ENUM key declared without choices", section, k.name);
            if (decl_find(d, k.name))
                continue; /* the first declaration wins */
            if (d->n == d->cap) {
                size_t ncap = d->cap ? d->cap * 2 : 16;
                mcrt_config_key *nk = realloc(d->k, ncap * sizeof *nk);
                if (!nk)
                    return oom(diag);
                d->k = nk;
                d->cap = ncap;
            }
            d->k[d->n++] = k;
        }
    }
    return 0;
}

static int unknown_key_error(const cfg_tree *t, const mcrt_config *s, const cfg_entry *e,
                             const decls *d, cfg_diag *diag)
{
    char key[96], where[512];
    cfg_quote_for_msg(e->key, key, sizeof key);
    if (e->src == CFG_SRC_YAML)
        snprintf(where, sizeof where, "%s:%d:%d: ", t->file ? t->file : "(yaml)", e->key_line,
                 e->key_col);
    else if (e->origin)
        snprintf(where, sizeof where, "%s: ", e->origin);
    else
        where[0] = '\0';
    int code = e->src == CFG_SRC_CLI ? CFG_EXIT_USAGE : CFG_EXIT_CONFIG;
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; i < d->n; i++) {
        size_t dist = edit_distance(e->key, d->k[i].name);
        if (dist < best_d && cfg_is_close(e->key, d->k[i].name, dist)) {
            best_d = dist;
            best = d->k[i].name;
        }
    }
    if (best)
        return cfg_fail(diag, code, "%s%s.%s: unknown key; did you mean '%s'?", where, s->name,
                        key, best);
    if (d->n == 0)
        return cfg_fail(diag, code, "%s%s.%s: unknown key; this section takes no keys", where,
                        s->name, key);
    cfg_fail(diag, code, "%s%s.%s: unknown key; valid keys: ", where, s->name, key);
    for (size_t i = 0; i < d->n; i++)
        cfg_diag_append(diag, "%s%s", i ? ", " : "", d->k[i].name);
    return -1;
}

int cfg_validate_section(cfg_tree *t, const char *section, const mcrt_config_key *const *key_sets,
                         size_t n_sets, cfg_diag *diag)
{
    if (!t || !section)
        return cfg_fail(diag, CFG_EXIT_SOFTWARE, "cfg_validate_section: no tree or section");
    mcrt_config *s = cfg_section(t, section);
    if (!s) {
        char q[80];
        cfg_quote_for_msg(section, q, sizeof q);
        return cfg_fail(diag, CFG_EXIT_SOFTWARE, "unknown section '%s'", q);
    }
    if (n_sets && !key_sets)
        return cfg_fail(diag, CFG_EXIT_SOFTWARE, "%s: no key sets", section);

    decls d = { 0 };
    int rc = -1;
    cfg_entry **fresh = NULL; /* the new entry order */
    size_t n_fresh = 0, fresh_cap = 0;
    if (collect_decls(section, key_sets, n_sets, &d, diag) < 0)
        goto out;

    /* Forget what an earlier validation added. */
    s->validated = false;
    for (size_t i = s->n; i-- > 0;)
        if (s->entries[i]->src == CFG_SRC_DEFAULT)
            cfg_entry_remove(s, s->entries[i]);
    for (size_t i = 0; i < s->n; i++)
        cfg_entry_clear_typed(s->entries[i]);

    /* Every entry, in file order: known key, right type. */
    for (size_t i = 0; i < s->n; i++) {
        cfg_entry *e = s->entries[i];
        const mcrt_config_key *k = decl_find(&d, e->key);
        if (!k) {
            unknown_key_error(t, s, e, &d, diag);
            goto out;
        }
        if (e->kind != CFG_V_NULL && cfg_convert_entry(t, section, k, e, diag) < 0)
            goto out;
    }
    /* Required keys. */
    for (size_t i = 0; i < d.n; i++) {
        const cfg_entry *e = cfg_entry_find(s, d.k[i].name);
        if ((d.k[i].flags & MCRT_CFG_REQUIRED) && (!e || e->kind == CFG_V_NULL)) {
            if (t->file)
                cfg_fail(diag, CFG_EXIT_CONFIG, "%s: %s.%s: required key is missing (%s)",
                         t->file, section, d.k[i].name, d.k[i].doc ? d.k[i].doc : "no doc");
            else
                cfg_fail(diag, CFG_EXIT_CONFIG,
                         "%s.%s: required key is missing (%s); set it in the YAML file", section,
                         d.k[i].name, d.k[i].doc ? d.k[i].doc : "no doc");
            goto out;
        }
    }
    /* Defaults and the declaration order. */
    fresh_cap = d.n + s->n + 1;
    fresh = calloc(fresh_cap, sizeof *fresh);
    if (!fresh) {
        oom(diag);
        goto out;
    }
    for (size_t i = 0; i < d.n; i++) {
        cfg_entry *e = cfg_entry_find(s, d.k[i].name);
        if (e && e->kind != CFG_V_NULL) {
            fresh[n_fresh++] = e;
            continue;
        }
        cfg_entry *ne = calloc(1, sizeof *ne);
        if (!ne || !(ne->key = cfg_strdup(d.k[i].name))) {
            free(ne);
            oom(diag);
            goto out;
        }
        fresh[n_fresh++] = ne;
        ne->src = CFG_SRC_DEFAULT;
        if (d.k[i].default_value) {
            if (cfg_entry_set_scalar(ne, d.k[i].default_value, CFG_SRC_DEFAULT, NULL) < 0) {
                oom(diag);
                goto out;
            }
            if (cfg_convert_entry(t, section, &d.k[i], ne, diag) < 0)
                goto out;
        }
    }
    /* Swap. Null YAML values stay hidden behind the declared keys (lookups
     * find the first entry of a name), so that validating again still sees
     * their keys. */
    for (size_t i = 0; i < s->n; i++) {
        bool kept = false;
        for (size_t j = 0; j < n_fresh && !kept; j++)
            kept = fresh[j] == s->entries[i];
        if (!kept)
            fresh[n_fresh++] = s->entries[i];
    }
    free(s->entries);
    s->entries = fresh;
    s->n = n_fresh;
    s->cap = fresh_cap;
    fresh = NULL;
    s->validated = true;
    rc = 0;
out:
    if (fresh) {
        for (size_t j = 0; j < n_fresh; j++)
            if (fresh[j]->src == CFG_SRC_DEFAULT)
                cfg_entry_free(fresh[j]);
        free(fresh);
    }
    free(d.k);
    return rc;
}

int cfg_validate_core(cfg_tree *t, cfg_diag *diag)
{
    if (!t)
        return cfg_fail(diag, CFG_EXIT_SOFTWARE, "cfg_validate_core: no tree");
    const char *const *names = cfg_section_names();
    if (t->n_unknown) {
        const cfg_unknown_section *u = &t->unknown[0];
        char q[80];
        cfg_quote_for_msg(u->name, q, sizeof q);
        const char *best = NULL;
        size_t best_d = (size_t)-1;
        for (size_t i = 0; names[i]; i++) {
            size_t dist = edit_distance(u->name, names[i]);
            if (dist < best_d && cfg_is_close(u->name, names[i], dist)) {
                best_d = dist;
                best = names[i];
            }
        }
        if (best)
            return cfg_fail(diag, CFG_EXIT_CONFIG,
                            "%s:%d:%d: unknown section '%s'; did you mean '%s'?", t->file,
                            u->line, u->col, q, best);
        cfg_fail(diag, CFG_EXIT_CONFIG, "%s:%d:%d: unknown section '%s'; valid sections: ",
                 t->file, u->line, u->col, q);
        for (size_t i = 0; names[i]; i++)
            cfg_diag_append(diag, "%s%s", i ? ", " : "", names[i]);
        return -1;
    }
    for (size_t i = 0; names[i]; i++) {
        if (cfg_section_is_plugin(names[i]))
            continue;
        const mcrt_config_key *set = cfg_core_keys(names[i]);
        if (cfg_validate_section(t, names[i], &set, 1, diag) < 0)
            return -1;
    }
    /* Plugin sections: their plugin's keys are not known yet, but the core's
     * own keys there (engine.max_batch_size, model.load, ...) are checked now,
     * so that a bad value is reported before any plugin is chosen. The section
     * stays unvalidated; cfg_validate_section does the rest. */
    for (size_t i = 0; names[i]; i++) {
        if (!cfg_section_is_plugin(names[i]))
            continue;
        mcrt_config *s = t->sections[i];
        if (s->validated)
            continue;
        for (size_t j = 0; j < s->n; j++) {
            cfg_entry *e = s->entries[j];
            const mcrt_config_key *k = cfg_core_key(names[i], e->key);
            if (!k || e->kind == CFG_V_NULL)
                continue;
            int rc = cfg_convert_entry(t, names[i], k, e, diag);
            cfg_entry_clear_typed(e);
            if (rc < 0)
                return -1;
        }
    }
    return 0;
}
