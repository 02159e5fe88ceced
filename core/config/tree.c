/*
 * core/config/tree.c: the configuration tree: sections and their entries,
 * building it from a parsed YAML document, and the typed getters.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/internal.h"

/* ---- Entries and sections ---------------------------------------------- */

void cfg_entry_clear_typed(cfg_entry *e)
{
    free(e->str);
    e->str = NULL;
    for (size_t i = 0; i < e->n_list; i++)
        free(e->list[i]);
    free(e->list);
    e->list = NULL;
    e->n_list = 0;
    e->typed = false;
    e->type = 0;
    e->b = false;
    e->i = 0;
    e->f = 0.0;
}

void cfg_entry_clear(cfg_entry *e)
{
    cfg_entry_clear_typed(e);
    free(e->text);
    e->text = NULL;
    for (size_t i = 0; i < e->n_items; i++)
        free(e->items[i].text);
    free(e->items);
    e->items = NULL;
    e->n_items = 0;
    cfg_config_free(e->map);
    e->map = NULL;
    free(e->origin);
    e->origin = NULL;
    e->kind = CFG_V_NULL;
    e->quoted = false;
    e->src = CFG_SRC_DEFAULT;
    e->line = e->col = 0;
    e->key_line = e->key_col = 0;
}

void cfg_entry_free(cfg_entry *e)
{
    if (!e)
        return;
    cfg_entry_clear(e);
    free(e->key);
    free(e);
}

mcrt_config *cfg_config_new(cfg_tree *t, const char *name)
{
    mcrt_config *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->tree = t;
    s->name = cfg_strdup(name);
    if (!s->name) {
        free(s);
        return NULL;
    }
    return s;
}

void cfg_config_free(mcrt_config *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        cfg_entry_free(s->entries[i]);
    free(s->entries);
    free(s->name);
    free(s);
}

cfg_entry *cfg_entry_find(const mcrt_config *s, const char *key)
{
    if (!s || !key)
        return NULL;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->entries[i]->key, key) == 0)
            return s->entries[i];
    return NULL;
}

cfg_entry *cfg_entry_add(mcrt_config *s, const char *key)
{
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 8;
        cfg_entry **ne = realloc(s->entries, ncap * sizeof *ne);
        if (!ne)
            return NULL;
        s->entries = ne;
        s->cap = ncap;
    }
    cfg_entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->key = cfg_strdup(key);
    if (!e->key) {
        free(e);
        return NULL;
    }
    s->entries[s->n++] = e;
    return e;
}

void cfg_entry_remove(mcrt_config *s, cfg_entry *e)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->entries[i] == e) {
            memmove(&s->entries[i], &s->entries[i + 1], (s->n - i - 1) * sizeof *s->entries);
            s->n--;
            cfg_entry_free(e);
            return;
        }
    }
}

int cfg_entry_set_scalar(cfg_entry *e, const char *text, int src, const char *origin)
{
    cfg_entry_clear(e);
    e->src = src;
    e->kind = CFG_V_SCALAR;
    e->text = cfg_strdup(text);
    e->origin = origin ? cfg_strdup(origin) : NULL;
    if (!e->text || (origin && !e->origin))
        return -1;
    return 0;
}

int cfg_entry_append_item(cfg_entry *e, const char *text)
{
    if (e->kind != CFG_V_LIST) {
        free(e->text);
        e->text = NULL;
        e->kind = CFG_V_LIST;
    }
    char *dup = cfg_strdup(text);
    if (!dup)
        return -1;
    cfg_item *ni = realloc(e->items, (e->n_items + 1) * sizeof *ni);
    if (!ni) {
        free(dup);
        return -1;
    }
    e->items = ni;
    e->items[e->n_items++] = (cfg_item){ .text = dup };
    return 0;
}

bool cfg_is_null_text(const char *text)
{
    return !text || text[0] == '\0' || strcmp(text, "~") == 0 || strcasecmp(text, "null") == 0;
}

/* ---- The tree ------------------------------------------------------------ */

cfg_tree *cfg_tree_create(void)
{
    cfg_tree *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    const char *const *names = cfg_section_names();
    for (int i = 0; i < CFG_N_SECTIONS; i++) {
        t->sections[i] = cfg_config_new(t, names[i]);
        if (!t->sections[i]) {
            cfg_tree_destroy(t);
            return NULL;
        }
    }
    return t;
}

void cfg_tree_destroy(cfg_tree *t)
{
    if (!t)
        return;
    for (int i = 0; i < CFG_N_SECTIONS; i++)
        cfg_config_free(t->sections[i]);
    for (size_t i = 0; i < t->n_unknown; i++)
        free(t->unknown[i].name);
    free(t->unknown);
    free(t->file);
    free(t->dir);
    free(t->home);
    free(t);
}

mcrt_config *cfg_section(cfg_tree *t, const char *section)
{
    int i = cfg_section_index(section);
    return (t && i >= 0) ? t->sections[i] : NULL;
}

const char *cfg_section_name(const mcrt_config *s)
{
    return s ? s->name : NULL;
}

bool cfg_section_validated(const mcrt_config *s)
{
    return s && s->validated;
}

const char *cfg_file(const cfg_tree *t)
{
    return t ? t->file : NULL;
}

/* ---- YAML document -> sections ------------------------------------------- */

static const char *ykind_name(const cfg_ynode *n)
{
    switch (n->kind) {
    case CFG_Y_SEQ: return "a list";
    case CFG_Y_MAP: return "a mapping";
    default: return "a scalar";
    }
}

static int oom(const cfg_tree *t, cfg_diag *diag)
{
    return cfg_fail(diag, CFG_EXIT_UNAVAILABLE, "%s: out of memory", t->file ? t->file : "config");
}

static int fill_map(cfg_tree *t, mcrt_config *s, const cfg_ynode *map, cfg_diag *diag)
{
    const char *file = t->file;
    for (size_t i = 0; i + 1 < map->n; i += 2) {
        const cfg_ynode *k = map->kids[i], *v = map->kids[i + 1];
        if (k->kind != CFG_Y_SCALAR)
            return cfg_fail(diag, CFG_EXIT_CONFIG,
                            "%s:%d:%d: %s: a key must be a scalar, got %s", file, k->line, k->col,
                            s->name, ykind_name(k));
        const cfg_entry *prev = cfg_entry_find(s, k->text);
        if (prev) {
            char q[80];
            cfg_quote_for_msg(k->text, q, sizeof q);
            return cfg_fail(diag, CFG_EXIT_CONFIG,
                            "%s:%d:%d: duplicate key '%s.%s' (first set at %d:%d)", file, k->line,
                            k->col, s->name, q, prev->key_line, prev->key_col);
        }
        cfg_entry *e = cfg_entry_add(s, k->text);
        if (!e)
            return oom(t, diag);
        e->src = CFG_SRC_YAML;
        e->key_line = k->line;
        e->key_col = k->col;
        e->line = v->line;
        e->col = v->col;
        if (v->kind == CFG_Y_SCALAR) {
            if (!v->quoted && cfg_is_null_text(v->text))
                continue; /* null: unset */
            e->kind = CFG_V_SCALAR;
            e->quoted = v->quoted;
            e->text = cfg_strdup(v->text);
            if (!e->text)
                return oom(t, diag);
        } else if (v->kind == CFG_Y_SEQ) {
            e->kind = CFG_V_LIST;
            if (v->n) {
                e->items = calloc(v->n, sizeof *e->items);
                if (!e->items)
                    return oom(t, diag);
            }
            for (size_t j = 0; j < v->n; j++) {
                const cfg_ynode *it = v->kids[j];
                if (it->kind != CFG_Y_SCALAR) {
                    char q[80];
                    cfg_quote_for_msg(k->text, q, sizeof q);
                    return cfg_fail(diag, CFG_EXIT_CONFIG,
                                    "%s:%d:%d: %s.%s: list items must be scalars, got %s", file,
                                    it->line, it->col, s->name, q, ykind_name(it));
                }
                e->items[j] = (cfg_item){ .text = cfg_strdup(it->text),
                                          .quoted = it->quoted,
                                          .line = it->line,
                                          .col = it->col };
                e->n_items = j + 1;
                if (!e->items[j].text)
                    return oom(t, diag);
            }
        } else {
            e->kind = CFG_V_MAP;
            size_t nl = strlen(s->name) + strlen(k->text) + 2;
            char *name = malloc(nl);
            if (!name)
                return oom(t, diag);
            snprintf(name, nl, "%s.%s", s->name, k->text);
            e->map = cfg_config_new(t, name);
            free(name);
            if (!e->map)
                return oom(t, diag);
            e->map->line = k->line;
            e->map->col = k->col;
            if (fill_map(t, e->map, v, diag) < 0)
                return -1;
        }
    }
    return 0;
}

int cfg_tree_from_yaml(cfg_tree *t, const cfg_ynode *root, cfg_diag *diag)
{
    const char *file = t->file;
    if (!root || (root->kind == CFG_Y_SCALAR && !root->quoted && cfg_is_null_text(root->text)))
        return cfg_fail(diag, CFG_EXIT_CONFIG, "%s: empty configuration file", file);
    if (root->kind != CFG_Y_MAP)
        return cfg_fail(diag, CFG_EXIT_CONFIG,
                        "%s:%d:%d: expected a mapping of sections at the top level (runtime:, "
                        "generation:, engine:, ...), got %s",
                        file, root->line, root->col, ykind_name(root));
    for (size_t i = 0; i + 1 < root->n; i += 2) {
        const cfg_ynode *k = root->kids[i], *v = root->kids[i + 1];
        if (k->kind != CFG_Y_SCALAR)
            return cfg_fail(diag, CFG_EXIT_CONFIG,
                            "%s:%d:%d: a section name must be a scalar, got %s", file, k->line,
                            k->col, ykind_name(k));
        char q[80];
        cfg_quote_for_msg(k->text, q, sizeof q);
        int idx = cfg_section_index(k->text);
        /* Duplicate top-level keys, known or not. */
        int pl = 0, pc = 0;
        if (idx >= 0 && t->sections[idx]->line) {
            pl = t->sections[idx]->line;
            pc = t->sections[idx]->col;
        }
        for (size_t u = 0; idx < 0 && u < t->n_unknown; u++)
            if (strcmp(t->unknown[u].name, k->text) == 0) {
                pl = t->unknown[u].line;
                pc = t->unknown[u].col;
                break;
            }
        if (pl)
            return cfg_fail(diag, CFG_EXIT_CONFIG,
                            "%s:%d:%d: duplicate key '%s' (first set at %d:%d)", file, k->line,
                            k->col, q, pl, pc);
        if (idx < 0) {
            cfg_unknown_section *nu = realloc(t->unknown, (t->n_unknown + 1) * sizeof *nu);
            if (!nu)
                return oom(t, diag);
            t->unknown = nu;
            nu[t->n_unknown].name = cfg_strdup(k->text);
            nu[t->n_unknown].line = k->line;
            nu[t->n_unknown].col = k->col;
            if (!nu[t->n_unknown].name)
                return oom(t, diag);
            t->n_unknown++;
            continue;
        }
        mcrt_config *s = t->sections[idx];
        s->line = k->line;
        s->col = k->col;
        if (v->kind == CFG_Y_MAP) {
            if (fill_map(t, s, v, diag) < 0)
                return -1;
        } else if (v->kind == CFG_Y_SCALAR && !v->quoted && cfg_is_null_text(v->text)) {
            continue; /* "engine:" alone: an empty section */
        } else {
            cfg_fail(diag, CFG_EXIT_CONFIG,
                     "%s:%d:%d: section '%s' must be a mapping of keys, got %s", file, v->line,
                     v->col, q, ykind_name(v));
            if (cfg_section_is_plugin(k->text) && v->kind == CFG_Y_SCALAR) {
                char qv[80];
                cfg_quote_for_msg(v->text, qv, sizeof qv);
                cfg_diag_append(diag, " (to choose a plugin write '%s: {name: %s}')", q, qv);
            }
            return -1;
        }
    }
    return 0;
}

/* ---- Getters ---------------------------------------------------------------- */

/* The entry holding key's value, or NULL when unset (null entries count as unset). */
static const cfg_entry *value_of(const mcrt_config *s, const char *key)
{
    const cfg_entry *e = cfg_entry_find(s, key);
    return (e && e->kind != CFG_V_NULL) ? e : NULL;
}

/* Raw scalar text of an unvalidated key, falling back to the core default. */
static mcrt_status raw_scalar(const mcrt_config *s, const char *key, const char **text,
                              bool *quoted)
{
    const cfg_entry *e = value_of(s, key);
    if (e) {
        if (e->kind != CFG_V_SCALAR)
            return MCRT_E_CONFIG;
        *text = e->text;
        *quoted = e->quoted;
        return MCRT_OK;
    }
    const mcrt_config_key *k = cfg_core_key(s->name, key);
    if (k && k->default_value) {
        *text = k->default_value;
        *quoted = false;
        return MCRT_OK;
    }
    return MCRT_E_NOTFOUND;
}

/* For a validated section: the typed entry, or a status. */
static mcrt_status typed_of(const mcrt_config *s, const char *key, const cfg_entry **out)
{
    const cfg_entry *e = value_of(s, key);
    if (!e)
        return MCRT_E_NOTFOUND;
    if (!e->typed)
        return MCRT_E_CONFIG;
    *out = e;
    return MCRT_OK;
}

/* The three scalar types share one lookup: the typed value of a validated
 * section, or the raw text of an unvalidated one parsed as `want`. An INT
 * reads as a FLOAT too. */
typedef union cfg_scalar {
    bool b;
    int64_t i;
    double f;
} cfg_scalar;

static mcrt_status get_scalar(const mcrt_config *s, const char *key, uint32_t want, cfg_scalar *v)
{
    if (s->validated) {
        const cfg_entry *e;
        mcrt_status st = typed_of(s, key, &e);
        if (st != MCRT_OK)
            return st;
        if (want == MCRT_CFG_BOOL && e->type == MCRT_CFG_BOOL)
            v->b = e->b;
        else if (want == MCRT_CFG_INT && e->type == MCRT_CFG_INT)
            v->i = e->i;
        else if (want == MCRT_CFG_FLOAT && e->type == MCRT_CFG_FLOAT)
            v->f = e->f;
        else if (want == MCRT_CFG_FLOAT && e->type == MCRT_CFG_INT)
            v->f = (double)e->i;
        else
            return MCRT_E_CONFIG;
        return MCRT_OK;
    }
    const char *text;
    bool quoted;
    mcrt_status st = raw_scalar(s, key, &text, &quoted);
    if (st != MCRT_OK)
        return st;
    if (quoted)
        return MCRT_E_CONFIG;
    bool ok = want == MCRT_CFG_BOOL    ? cfg_parse_bool(text, &v->b)
              : want == MCRT_CFG_INT   ? cfg_parse_int(text, &v->i) == 0
              : want == MCRT_CFG_FLOAT ? cfg_parse_float(text, &v->f) == 0
                                       : false;
    return ok ? MCRT_OK : MCRT_E_CONFIG;
}

mcrt_status cfg_get_bool(const mcrt_config *s, const char *key, bool *out)
{
    if (!s || !key || !out)
        return MCRT_E_INVAL;
    cfg_scalar v;
    mcrt_status st = get_scalar(s, key, MCRT_CFG_BOOL, &v);
    if (st == MCRT_OK)
        *out = v.b;
    return st;
}

mcrt_status cfg_get_int(const mcrt_config *s, const char *key, int64_t *out)
{
    if (!s || !key || !out)
        return MCRT_E_INVAL;
    cfg_scalar v;
    mcrt_status st = get_scalar(s, key, MCRT_CFG_INT, &v);
    if (st == MCRT_OK)
        *out = v.i;
    return st;
}

mcrt_status cfg_get_float(const mcrt_config *s, const char *key, double *out)
{
    if (!s || !key || !out)
        return MCRT_E_INVAL;
    cfg_scalar v;
    mcrt_status st = get_scalar(s, key, MCRT_CFG_FLOAT, &v);
    if (st == MCRT_OK)
        *out = v.f;
    return st;
}

mcrt_status cfg_get_string(const mcrt_config *s, const char *key, const char **out)
{
    if (!s || !key || !out)
        return MCRT_E_INVAL;
    if (s->validated) {
        const cfg_entry *e;
        mcrt_status st = typed_of(s, key, &e);
        if (st != MCRT_OK)
            return st;
        if (e->type != MCRT_CFG_STRING && e->type != MCRT_CFG_PATH && e->type != MCRT_CFG_ENUM)
            return MCRT_E_CONFIG;
        *out = e->str;
        return MCRT_OK;
    }
    bool quoted;
    return raw_scalar(s, key, out, &quoted);
}

mcrt_status cfg_list_size(const mcrt_config *s, const char *key, size_t *out)
{
    if (!s || !key || !out)
        return MCRT_E_INVAL;
    if (s->validated) {
        const cfg_entry *e;
        mcrt_status st = typed_of(s, key, &e);
        if (st != MCRT_OK)
            return st;
        if (e->type != MCRT_CFG_STRING_LIST)
            return MCRT_E_CONFIG;
        *out = e->n_list;
        return MCRT_OK;
    }
    const cfg_entry *e = value_of(s, key);
    if (!e)
        return MCRT_E_NOTFOUND;
    if (e->kind == CFG_V_SCALAR)
        *out = 1;
    else if (e->kind == CFG_V_LIST)
        *out = e->n_items;
    else
        return MCRT_E_CONFIG;
    return MCRT_OK;
}

mcrt_status cfg_list_item(const mcrt_config *s, const char *key, size_t i, const char **out)
{
    if (!s || !key || !out)
        return MCRT_E_INVAL;
    if (s->validated) {
        const cfg_entry *e;
        mcrt_status st = typed_of(s, key, &e);
        if (st != MCRT_OK)
            return st;
        if (e->type != MCRT_CFG_STRING_LIST)
            return MCRT_E_CONFIG;
        if (i >= e->n_list)
            return MCRT_E_RANGE;
        *out = e->list[i];
        return MCRT_OK;
    }
    const cfg_entry *e = value_of(s, key);
    if (!e)
        return MCRT_E_NOTFOUND;
    if (e->kind == CFG_V_SCALAR) {
        if (i >= 1)
            return MCRT_E_RANGE;
        *out = e->text;
    } else if (e->kind == CFG_V_LIST) {
        if (i >= e->n_items)
            return MCRT_E_RANGE;
        *out = e->items[i].text;
    } else {
        return MCRT_E_CONFIG;
    }
    return MCRT_OK;
}

bool cfg_get_source(const mcrt_config *s, const char *key, char *buf, size_t cap)
{
    if (cap)
        buf[0] = '\0';
    const cfg_entry *e = (s && key) ? value_of(s, key) : NULL;
    if (!e)
        return false;
    cfg_entry_source(s->tree, e, buf, cap);
    return true;
}

int cfg_log_level(const cfg_tree *t)
{
    static const char *const names[] = { "error", "warn", "info", "debug", "trace" };
    const cfg_entry *e = t ? value_of(t->sections[0], "log_level") : NULL;
    const char *v = NULL;
    if (e && e->typed && e->str)
        v = e->str;
    else if (e && e->kind == CFG_V_SCALAR)
        v = e->text;
    for (int i = 0; v && i < 5; i++)
        if (strcmp(v, names[i]) == 0)
            return MCRT_LOG_ERROR + i;
    return MCRT_LOG_INFO;
}
