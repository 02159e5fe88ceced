/*
 * core/config/yaml.c: a YAML file -> a small node tree (cfg_ynode), through
 * libyaml's event parser. The only file of mcrt that includes <yaml.h>.
 *
 * Kept deliberately small and strict: one document, no anchors or aliases
 * (no billion laughs), no custom tags, nesting at most CFG_MAX_DEPTH, files at
 * most CFG_MAX_FILE_SIZE bytes and CFG_MAX_NODES nodes. Every node keeps its
 * 1-based line and column and whether a scalar was plain or quoted. What the
 * nodes mean is decided in tree.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "config/internal.h"

#define CFG_MAX_NODES 262144u

void cfg_ynode_free(cfg_ynode *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->n; i++)
        cfg_ynode_free(n->kids[i]);
    free(n->kids);
    free(n->text);
    free(n);
}

static int read_file(const char *path, char **out, size_t *out_len, cfg_diag *diag)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return cfg_fail(diag, CFG_EXIT_NOINPUT, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return cfg_fail(diag, CFG_EXIT_NOINPUT, "%s: cannot open: %s", path, strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        close(fd);
        return cfg_fail(diag, CFG_EXIT_NOINPUT, "%s: is a directory, expected a YAML file", path);
    }
    if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > CFG_MAX_FILE_SIZE) {
        close(fd);
        return cfg_fail(diag, CFG_EXIT_CONFIG,
                        "%s: file is too large (%llu bytes; a configuration file may have at most "
                        "16 MiB)",
                        path, (unsigned long long)st.st_size);
    }
    size_t cap = S_ISREG(st.st_mode) ? (size_t)st.st_size + 1 : 4096;
    size_t len = 0;
    char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return cfg_fail(diag, CFG_EXIT_UNAVAILABLE, "%s: out of memory", path);
    }
    for (;;) {
        if (len == cap) {
            if (cap > CFG_MAX_FILE_SIZE) {
                free(buf);
                close(fd);
                return cfg_fail(diag, CFG_EXIT_CONFIG,
                                "%s: file is too large (a configuration file may have at most "
                                "16 MiB)",
                                path);
            }
            size_t ncap = cap * 2;
            if (ncap > CFG_MAX_FILE_SIZE + 1)
                ncap = CFG_MAX_FILE_SIZE + 1;
            char *nb = realloc(buf, ncap);
            if (!nb) {
                free(buf);
                close(fd);
                return cfg_fail(diag, CFG_EXIT_UNAVAILABLE, "%s: out of memory", path);
            }
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(buf);
            close(fd);
            if (e == EISDIR)
                return cfg_fail(diag, CFG_EXIT_NOINPUT, "%s: is a directory, expected a YAML file",
                                path);
            return cfg_fail(diag, CFG_EXIT_NOINPUT, "%s: cannot read: %s", path, strerror(e));
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > CFG_MAX_FILE_SIZE) {
            free(buf);
            close(fd);
            return cfg_fail(diag, CFG_EXIT_CONFIG,
                            "%s: file is too large (a configuration file may have at most 16 MiB)",
                            path);
        }
    }
    close(fd);
    *out = buf;
    *out_len = len;
    return 0;
}

/* The bytes of line `line` (0-based) of buf: true when its indentation holds a TAB. */
static bool line_has_tab_indent(const char *buf, size_t len, size_t line)
{
    size_t i = 0, l = 0;
    while (i < len && l < line) {
        if (buf[i] == '\n') {
            l++;
        } else if (buf[i] == '\r') {
            l++;
            if (i + 1 < len && buf[i + 1] == '\n')
                i++;
        }
        i++;
    }
    if (l != line)
        return false;
    for (; i < len && (buf[i] == ' ' || buf[i] == '\t'); i++)
        if (buf[i] == '\t')
            return true;
    return false;
}

/* 1-based line and column (in characters) of a byte offset. */
static void offset_to_mark(const char *buf, size_t len, size_t off, int *line, int *col)
{
    int l = 1, c = 1;
    for (size_t i = 0; i < off && i < len; i++) {
        unsigned char ch = (unsigned char)buf[i];
        if (ch == '\n') {
            l++;
            c = 1;
        } else if ((ch & 0xC0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *col = c;
}

static int parser_error(const yaml_parser_t *p, const char *path, const char *buf, size_t len,
                        cfg_diag *diag)
{
    const char *problem = p->problem ? p->problem : "unknown error";
    switch (p->error) {
    case YAML_MEMORY_ERROR:
        return cfg_fail(diag, CFG_EXIT_UNAVAILABLE, "%s: out of memory while reading YAML", path);
    case YAML_READER_ERROR: {
        int line, col;
        offset_to_mark(buf, len, p->problem_offset, &line, &col);
        if (p->problem_value >= 0)
            return cfg_fail(diag, CFG_EXIT_CONFIG,
                            "%s:%d:%d: YAML syntax error: %s #x%02X (the file must be UTF-8 text)",
                            path, line, col, problem, (unsigned)p->problem_value);
        return cfg_fail(diag, CFG_EXIT_CONFIG, "%s:%d:%d: YAML syntax error: %s", path, line, col,
                        problem);
    }
    default: {
        size_t line = p->problem_mark.line, col = p->problem_mark.column;
        cfg_fail(diag, CFG_EXIT_CONFIG, "%s:%zu:%zu: YAML syntax error: %s%s%s", path, line + 1,
                 col + 1, problem, p->context ? " " : "", p->context ? p->context : "");
        bool tab = line_has_tab_indent(buf, len, line);
        if (!tab && p->context)
            tab = line_has_tab_indent(buf, len, p->context_mark.line);
        if (tab)
            cfg_diag_append(diag, "; YAML does not allow tabs for indentation");
        return -1;
    }
    }
}

typedef struct yload {
    const char *path;
    cfg_ynode *root;
    cfg_ynode *stack[CFG_MAX_DEPTH];
    size_t depth;
    size_t nodes;
    int docs;
} yload;

static int mark_line(const yaml_mark_t *m) { return (int)m->line + 1; }
static int mark_col(const yaml_mark_t *m) { return (int)m->column + 1; }

static cfg_ynode *node_new(yload *y, int kind, const yaml_event_t *ev, cfg_diag *diag)
{
    if (++y->nodes > CFG_MAX_NODES) {
        cfg_fail(diag, CFG_EXIT_CONFIG, "%s:%d:%d: too many YAML nodes (the limit is %u)", y->path,
                 mark_line(&ev->start_mark), mark_col(&ev->start_mark), CFG_MAX_NODES);
        return NULL;
    }
    cfg_ynode *n = calloc(1, sizeof *n);
    if (!n) {
        cfg_fail(diag, CFG_EXIT_UNAVAILABLE, "%s: out of memory", y->path);
        return NULL;
    }
    n->kind = kind;
    n->line = mark_line(&ev->start_mark);
    n->col = mark_col(&ev->start_mark);
    return n;
}

/* Hands n to its parent (or makes it the root); frees it on failure. */
static int attach(yload *y, cfg_ynode *n, cfg_diag *diag)
{
    if (y->depth == 0) {
        if (y->root) { /* cannot happen with one document; be safe */
            cfg_ynode_free(n);
            return cfg_fail(diag, CFG_EXIT_CONFIG, "%s: more than one top-level node", y->path);
        }
        y->root = n;
        return 0;
    }
    cfg_ynode *p = y->stack[y->depth - 1];
    if (p->n == p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 8;
        cfg_ynode **k = realloc(p->kids, ncap * sizeof *k);
        if (!k) {
            cfg_ynode_free(n);
            return cfg_fail(diag, CFG_EXIT_UNAVAILABLE, "%s: out of memory", y->path);
        }
        p->kids = k;
        p->cap = ncap;
    }
    p->kids[p->n++] = n;
    return 0;
}

static bool tag_is(const yaml_char_t *tag, const char *suffix)
{
    static const char prefix[] = "tag:yaml.org,2002:";
    const char *t = (const char *)tag;
    return strncmp(t, prefix, sizeof prefix - 1) == 0 && strcmp(t + sizeof prefix - 1, suffix) == 0;
}

static int check_anchor_tag(yload *y, const yaml_event_t *ev, const yaml_char_t *anchor,
                            const yaml_char_t *tag, int kind, cfg_diag *diag)
{
    int line = mark_line(&ev->start_mark), col = mark_col(&ev->start_mark);
    if (anchor) {
        char q[80];
        cfg_quote_for_msg((const char *)anchor, q, sizeof q);
        return cfg_fail(diag, CFG_EXIT_CONFIG,
                        "%s:%d:%d: YAML anchors and aliases are not supported (anchor '&%s'); "
                        "write the value out",
                        y->path, line, col, q);
    }
    if (!tag)
        return 0;
    bool ok;
    if (kind == CFG_Y_SCALAR)
        ok = tag_is(tag, "str") || tag_is(tag, "null") || tag_is(tag, "bool") ||
             tag_is(tag, "int") || tag_is(tag, "float") || strcmp((const char *)tag, "!") == 0;
    else if (kind == CFG_Y_SEQ)
        ok = tag_is(tag, "seq");
    else
        ok = tag_is(tag, "map");
    if (!ok) {
        char q[80];
        cfg_quote_for_msg((const char *)tag, q, sizeof q);
        return cfg_fail(diag, CFG_EXIT_CONFIG, "%s:%d:%d: YAML tag '%s' is not supported", y->path,
                        line, col, q);
    }
    return 0;
}

/* Handles one event; returns 1 at the end of the stream, 0 to go on, -1 on error. */
static int on_event(yload *y, const yaml_event_t *ev, cfg_diag *diag)
{
    int line = mark_line(&ev->start_mark), col = mark_col(&ev->start_mark);
    switch (ev->type) {
    case YAML_STREAM_START_EVENT:
    case YAML_DOCUMENT_END_EVENT:
    case YAML_NO_EVENT:
        return 0;
    case YAML_STREAM_END_EVENT:
        return 1;
    case YAML_DOCUMENT_START_EVENT:
        if (y->docs++ > 0)
            return cfg_fail(diag, CFG_EXIT_CONFIG,
                            "%s:%d:%d: more than one YAML document; a configuration file holds "
                            "exactly one",
                            y->path, line, col);
        return 0;
    case YAML_ALIAS_EVENT: {
        char q[80];
        cfg_quote_for_msg((const char *)ev->data.alias.anchor, q, sizeof q);
        return cfg_fail(diag, CFG_EXIT_CONFIG,
                        "%s:%d:%d: YAML anchors and aliases are not supported (alias '*%s'); "
                        "write the value out",
                        y->path, line, col, q);
    }
    case YAML_SCALAR_EVENT: {
        if (check_anchor_tag(y, ev, ev->data.scalar.anchor, ev->data.scalar.tag, CFG_Y_SCALAR,
                             diag) < 0)
            return -1;
        const char *v = (const char *)ev->data.scalar.value;
        size_t len = ev->data.scalar.length;
        if (memchr(v, '\0', len))
            return cfg_fail(diag, CFG_EXIT_CONFIG,
                            "%s:%d:%d: a NUL character is not allowed in a value", y->path, line,
                            col);
        cfg_ynode *n = node_new(y, CFG_Y_SCALAR, ev, diag);
        if (!n)
            return -1;
        n->text = cfg_strndup(v, len);
        if (!n->text) {
            cfg_ynode_free(n);
            return cfg_fail(diag, CFG_EXIT_UNAVAILABLE, "%s: out of memory", y->path);
        }
        n->quoted = ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        const yaml_char_t *tag = ev->data.scalar.tag;
        if (tag && (tag_is(tag, "str") || strcmp((const char *)tag, "!") == 0))
            n->quoted = true;
        return attach(y, n, diag);
    }
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        bool seq = ev->type == YAML_SEQUENCE_START_EVENT;
        int kind = seq ? CFG_Y_SEQ : CFG_Y_MAP;
        const yaml_char_t *anchor = seq ? ev->data.sequence_start.anchor
                                        : ev->data.mapping_start.anchor;
        const yaml_char_t *tag = seq ? ev->data.sequence_start.tag : ev->data.mapping_start.tag;
        if (check_anchor_tag(y, ev, anchor, tag, kind, diag) < 0)
            return -1;
        if (y->depth >= CFG_MAX_DEPTH)
            return cfg_fail(diag, CFG_EXIT_CONFIG,
                            "%s:%d:%d: YAML nested deeper than %d levels", y->path, line, col,
                            CFG_MAX_DEPTH);
        cfg_ynode *n = node_new(y, kind, ev, diag);
        if (!n)
            return -1;
        if (attach(y, n, diag) < 0)
            return -1;
        y->stack[y->depth++] = n;
        return 0;
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        if (y->depth > 0)
            y->depth--;
        return 0;
    default:
        return 0;
    }
}

int cfg_yaml_load(const char *path, cfg_ynode **out, cfg_diag *diag)
{
    *out = NULL;
    char *buf = NULL;
    size_t len = 0;
    if (read_file(path, &buf, &len, diag) < 0)
        return -1;

    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        free(buf);
        return cfg_fail(diag, CFG_EXIT_UNAVAILABLE, "%s: out of memory", path);
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);

    yload y = { .path = path };
    int rc = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = parser_error(&parser, path, buf, len, diag);
            break;
        }
        int r = on_event(&y, &ev, diag);
        yaml_event_delete(&ev);
        if (r < 0) {
            rc = -1;
            break;
        }
        if (r == 1)
            break;
    }
    yaml_parser_delete(&parser);
    free(buf);
    if (rc < 0) {
        cfg_ynode_free(y.root);
        return -1;
    }
    *out = y.root;
    return 0;
}
