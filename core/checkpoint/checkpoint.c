/*
 * core/checkpoint/checkpoint.c: format dispatch, the tensor table, and the
 * format-independent read / slice / convert / view (see checkpoint.h).
 */
#include "checkpoint/backend.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mcrt/config.h"    /* MCRT_CFG_* */
#include "util/strutil.h" /* edit_distance */

#define CKPT_MAGIC 0x74706b63u /* "ckpt" */

struct mcrt_checkpoint {
    uint32_t magic;
    bool copy_only;
    char *path;
    const char *format;
    const ckpt_backend *ops;
    void *state;
    ckpt_tensor *t;        /* sorted by name once open */
    size_t n, cap;
    char *names;           /* NUL-terminated names, back to back */
    size_t names_len, names_cap;
    char *meta;            /* key\0value\0 ... */
    size_t meta_len, meta_cap, n_meta;
    ckpt_arg *args;        /* hyper-parameters the checkpoint carries (args.c) */
    size_t n_args, args_cap;
    bool has_step;         /* ckpt_open_ex's --ckpt-step */
    int64_t step;
};

/* ---- messages ------------------------------------------------------------- */

mcrt_status ckpt_fail(ckpt_err *err, mcrt_status status, const char *fmt, ...)
{
    if (err != NULL) {
        err->status = status;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return status;
}

static size_t esc_len(unsigned char c)
{
    return (c < 0x20 || c == 0x7f) ? 4 : 1;
}

static size_t put_esc(char *o, unsigned char c)
{
    if (esc_len(c) == 1) {
        o[0] = (char)c;
        return 1;
    }
    static const char hex[] = "0123456789abcdef";
    o[0] = '\\';
    o[1] = 'x';
    o[2] = hex[c >> 4];
    o[3] = hex[c & 15];
    return 4;
}

static bool is_cont(unsigned char c)
{
    return c >= 0x80 && c <= 0xbf;
}

const char *ckpt_quote(char *buf, size_t size, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    if (size < 16) {
        if (size > 0)
            buf[0] = '\0';
        return buf;
    }
    size_t total = 0;
    for (size_t i = 0; i < len; i++)
        total += esc_len(u[i]);
    size_t o = 0;
    if (total < size) {
        for (size_t i = 0; i < len; i++)
            o += put_esc(buf + o, u[i]);
        buf[o] = '\0';
        return buf;
    }
    size_t budget = size - 1 - 3;
    size_t head_budget = budget / 2, tail_budget = budget - head_budget;
    size_t i = 0;
    while (i < len && o + esc_len(u[i]) <= head_budget)
        o += put_esc(buf + o, u[i++]);
    while (i > 0 && is_cont(u[i])) { /* never cut a UTF-8 sequence */
        i--;
        o -= esc_len(u[i]);
    }
    size_t j = len, tail = 0;
    while (j > i && tail + esc_len(u[j - 1]) <= tail_budget)
        tail += esc_len(u[--j]);
    while (j < len && is_cont(u[j]))
        j++;
    memcpy(buf + o, "...", 3);
    o += 3;
    for (; j < len; j++)
        o += put_esc(buf + o, u[j]);
    buf[o] = '\0';
    return buf;
}

#define Q(buf, s) ckpt_quote((buf), sizeof(buf), (s), strlen(s))

/* ---- the object ----------------------------------------------------------- */

bool ckpt_valid(const ckpt *ck)
{
    return ck != NULL && ck->magic == CKPT_MAGIC;
}

void ckpt_close(ckpt *ck)
{
    if (ck == NULL)
        return;
    if (ck->ops != NULL && ck->ops->close != NULL)
        ck->ops->close(ck->state);
    ck->magic = 0;
    free(ck->t);
    free(ck->names);
    free(ck->meta);
    for (size_t i = 0; i < ck->n_args; i++) {
        free(ck->args[i].name);
        free(ck->args[i].s);
        free((char *)ck->args[i].source);
    }
    free(ck->args);
    free(ck->path);
    free(ck);
}

const char *ckpt_path(const ckpt *ck)
{
    return ck->path;
}

const char *ckpt_format_name(const ckpt *ck)
{
    return ck->format != NULL ? ck->format : "?";
}

void ckpt_set_backend(ckpt *ck, const ckpt_backend *ops, void *state)
{
    ck->ops = ops;
    ck->state = state;
    ck->format = ops->format;
}

void ckpt_set_copy_only(ckpt *ck, bool on)
{
    ck->copy_only = on;
}

char *ckpt_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    if (a > SIZE_MAX - b - 2)
        return NULL;
    char *p = malloc(a + b + 2);
    if (p == NULL)
        return NULL;
    memcpy(p, dir, a);
    size_t o = a;
    if (a > 0 && dir[a - 1] != '/')
        p[o++] = '/';
    memcpy(p + o, name, b);
    p[o + b] = '\0';
    return p;
}

static bool grow(void **buf, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap : 16;
    while (c < need) {
        if (c > SIZE_MAX / 2 / elem)
            return false;
        c *= 2;
    }
    if (c > SIZE_MAX / elem)
        return false;
    void *nb = realloc(*buf, c * elem);
    if (nb == NULL)
        return false;
    *buf = nb;
    *cap = c;
    return true;
}

mcrt_status ckpt_add_tensor(ckpt *ck, const char *name, size_t name_len, const ckpt_tensor *proto,
                            ckpt_err *err)
{
    if (name_len >= SIZE_MAX - ck->names_len - 1 ||
        !grow((void **)&ck->names, &ck->names_cap, ck->names_len + name_len + 1, 1) ||
        !grow((void **)&ck->t, &ck->cap, ck->n + 1, sizeof *ck->t))
        return ckpt_fail(err, MCRT_E_NOMEM, "%s: out of memory reading the tensor table",
                         ck->path);
    ckpt_tensor *t = &ck->t[ck->n++];
    *t = *proto;
    t->name = NULL;
    t->name_off = ck->names_len;
    memcpy(ck->names + ck->names_len, name, name_len);
    ck->names[ck->names_len + name_len] = '\0';
    ck->names_len += name_len + 1;
    return MCRT_OK;
}

size_t ckpt_table_size(const ckpt *ck)
{
    return ck->n;
}

ckpt_tensor *ckpt_table_at(ckpt *ck, size_t i)
{
    return i < ck->n ? &ck->t[i] : NULL;
}

const char *ckpt_tensor_name(const ckpt *ck, const ckpt_tensor *t)
{
    return t->name != NULL ? t->name : ck->names + t->name_off;
}

static const char *meta_find(const ckpt *ck, const char *key, size_t key_len)
{
    size_t o = 0;
    for (size_t i = 0; i < ck->n_meta; i++) {
        const char *k = ck->meta + o;
        size_t kl = strlen(k);
        const char *v = k + kl + 1;
        if (kl == key_len && memcmp(k, key, kl) == 0)
            return v;
        o += kl + 1 + strlen(v) + 1;
    }
    return NULL;
}

mcrt_status ckpt_add_metadata(ckpt *ck, const char *key, size_t key_len, const char *val,
                              size_t val_len, ckpt_err *err)
{
    if (memchr(key, '\0', key_len) != NULL || memchr(val, '\0', val_len) != NULL)
        return MCRT_OK; /* not representable as C strings: not kept */
    if (meta_find(ck, key, key_len) != NULL)
        return MCRT_OK; /* first wins */
    if (key_len > SIZE_MAX / 2 || val_len > SIZE_MAX / 2 ||
        key_len + val_len > SIZE_MAX - ck->meta_len - 2 ||
        !grow((void **)&ck->meta, &ck->meta_cap, ck->meta_len + key_len + val_len + 2, 1))
        return ckpt_fail(err, MCRT_E_NOMEM, "%s: out of memory reading __metadata__", ck->path);
    memcpy(ck->meta + ck->meta_len, key, key_len);
    ck->meta[ck->meta_len + key_len] = '\0';
    memcpy(ck->meta + ck->meta_len + key_len + 1, val, val_len);
    ck->meta[ck->meta_len + key_len + 1 + val_len] = '\0';
    ck->meta_len += key_len + val_len + 2;
    ck->n_meta++;
    return MCRT_OK;
}

const char *ckpt_metadata(const ckpt *ck, const char *key)
{
    if (!ckpt_valid(ck) || key == NULL)
        return NULL;
    return meta_find(ck, key, strlen(key));
}

bool ckpt_metadata_at(const ckpt *ck, size_t i, const char **key, const char **value)
{
    if (!ckpt_valid(ck) || i >= ck->n_meta)
        return false;
    size_t o = 0;
    for (size_t j = 0; j < i; j++) {
        o += strlen(ck->meta + o) + 1;
        o += strlen(ck->meta + o) + 1;
    }
    *key = ck->meta + o;
    *value = ck->meta + o + strlen(ck->meta + o) + 1;
    return true;
}

/* ---- hyper-parameters ------------------------------------------------------ */

mcrt_status ckpt_add_arg(ckpt *ck, const ckpt_arg *a, ckpt_err *err)
{
    for (size_t i = 0; i < ck->n_args; i++)
        if (strcmp(ck->args[i].name, a->name) == 0)
            return MCRT_OK; /* first wins */
    if (!grow((void **)&ck->args, &ck->args_cap, ck->n_args + 1, sizeof *ck->args))
        return ckpt_fail(err, MCRT_E_NOMEM, "%s: out of memory reading its arguments", ck->path);
    ckpt_arg *d = &ck->args[ck->n_args];
    *d = *a;
    d->name = strdup(a->name);
    d->s = a->s != NULL ? strdup(a->s) : NULL;
    d->source = a->source != NULL ? strdup(a->source) : NULL;
    if (d->name == NULL || (a->s != NULL && d->s == NULL) ||
        (a->source != NULL && d->source == NULL)) {
        free(d->name);
        free(d->s);
        free((char *)d->source);
        return ckpt_fail(err, MCRT_E_NOMEM, "%s: out of memory reading its arguments", ck->path);
    }
    ck->n_args++;
    return MCRT_OK;
}

const ckpt_arg *ckpt_find_arg(const ckpt *ck, const char *name)
{
    if (!ckpt_valid(ck) || name == NULL)
        return NULL;
    for (size_t i = 0; i < ck->n_args; i++)
        if (strcmp(ck->args[i].name, name) == 0)
            return &ck->args[i];
    return NULL;
}

size_t ckpt_arg_count(const ckpt *ck)
{
    return ckpt_valid(ck) ? ck->n_args : 0;
}

const ckpt_arg *ckpt_arg_at(const ckpt *ck, size_t i)
{
    return ckpt_valid(ck) && i < ck->n_args ? &ck->args[i] : NULL;
}

/* ---- mapping a file ------------------------------------------------------- */

static mcrt_status file_error(const char *path, int e, const char *what, ckpt_err *err)
{
    char q[CKPT_QUOTE_SIZE];
    if (e == ENOENT || e == ENOTDIR)
        return ckpt_fail(err, MCRT_E_NOTFOUND, "%s: no such file", Q(q, path));
    return ckpt_fail(err, MCRT_E_IO, "%s: cannot %s: %s", Q(q, path), what, strerror(e));
}

/* backend.h */
mcrt_status ckpt_map_file(const char *path, const unsigned char **map, size_t *size,
                            ckpt_err *err)
{
    *map = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return file_error(path, errno, "open", err);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return file_error(path, e, "stat", err);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        char q[CKPT_QUOTE_SIZE];
        return ckpt_fail(err, MCRT_E_IO, "%s: not a regular file", Q(q, path));
    }
    if (st.st_size < 0 || (uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        char q[CKPT_QUOTE_SIZE];
        return ckpt_fail(err, MCRT_E_IO, "%s: too large to map", Q(q, path));
    }
    size_t n = (size_t)st.st_size;
    if (n > 0) {
        void *p = mmap(NULL, n, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return file_error(path, e, "map", err);
        }
        *map = p;
    }
    close(fd);
    *size = n;
    return MCRT_OK;
}

/* ---- formats and open ----------------------------------------------------- */

/* Tried in order, for files and for folders (HF's order: model.safetensors
 * before the index). */
static const ckpt_format *const formats[] = {
    &ckpt_format_megatron,
    &ckpt_format_torch_file,
    &ckpt_format_safetensors,
    &ckpt_format_safetensors_index,
};
#define N_FORMATS (sizeof formats / sizeof formats[0])

/* `what` failed on path with errno e: NOTFOUND or IO. */
static mcrt_status sys_error(const char *path, const char *what, int e, ckpt_err *err)
{
    char q[CKPT_QUOTE_SIZE];
    if (e == ENOENT || e == ENOTDIR)
        return ckpt_fail(err, MCRT_E_NOTFOUND, "%s: no such file or folder", Q(q, path));
    return ckpt_fail(err, MCRT_E_IO, "%s: cannot %s: %s", Q(q, path), what, strerror(e));
}

static int cmp_tensor_name(const void *a, const void *b)
{
    return strcmp(((const ckpt_tensor *)a)->name, ((const ckpt_tensor *)b)->name);
}

/* Name pointers, sort, duplicate names. */
static mcrt_status finish(ckpt *ck, ckpt_err *err)
{
    for (size_t i = 0; i < ck->n; i++)
        ck->t[i].name = ck->names + ck->t[i].name_off;
    if (ck->n > 1)
        qsort(ck->t, ck->n, sizeof *ck->t, cmp_tensor_name);
    for (size_t i = 1; i < ck->n; i++) {
        const ckpt_tensor *a = &ck->t[i - 1], *b = &ck->t[i];
        if (strcmp(a->name, b->name) != 0)
            continue;
        char qn[CKPT_QUOTE_SIZE], qa[CKPT_QUOTE_SIZE], qb[CKPT_QUOTE_SIZE];
        const char *fa = ck->ops->file_path(ck->state, a->file);
        const char *fb = ck->ops->file_path(ck->state, b->file);
        if (a->file == b->file)
            return ckpt_fail(err, MCRT_E_DATA,
                             "%s: tensor '%s': the name appears twice in the header", Q(qa, fa),
                             Q(qn, a->name));
        return ckpt_fail(err, MCRT_E_DATA, "tensor '%s' is in two files: %s and %s",
                         Q(qn, a->name), Q(qa, fa), Q(qb, fb));
    }
    ck->magic = CKPT_MAGIC;
    return MCRT_OK;
}

/* The format for a file, by its first bytes and name. */
static mcrt_status pick_for_file(const char *path, const ckpt_format **out, ckpt_err *err)
{
    unsigned char head[16];
    size_t n = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return sys_error(path, "open", errno, err);
    while (n < sizeof head) {
        ssize_t r = read(fd, head + n, sizeof head - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return sys_error(path, "read", e, err);
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    for (size_t i = 0; i < N_FORMATS; i++)
        if (formats[i]->match_file(path, head, n)) {
            *out = formats[i];
            return MCRT_OK;
        }
    char q[CKPT_QUOTE_SIZE];
    return ckpt_fail(err, MCRT_E_DATA, "%s: not a checkpoint format mcrt knows", Q(q, path));
}

/* The format for a folder: the first known entry that is a file. */
static mcrt_status pick_for_folder(const char *path, const ckpt_format **out, char **entry,
                                   ckpt_err *err)
{
    char list[512] = "";
    size_t ll = 0;
    for (size_t i = 0; i < N_FORMATS; i++) {
        const char *const *e = formats[i]->folder_entries;
        for (; e != NULL && *e != NULL; e++) {
            char *p = ckpt_join(path, *e);
            if (p == NULL)
                return ckpt_fail(err, MCRT_E_NOMEM, "out of memory");
            struct stat st;
            if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
                *out = formats[i];
                *entry = p;
                return MCRT_OK;
            }
            free(p);
            int w = snprintf(list + ll, sizeof list - ll, "%s%s", ll ? " or " : "", *e);
            if (w > 0 && (size_t)w < sizeof list - ll)
                ll += (size_t)w;
        }
    }
    char q[CKPT_QUOTE_SIZE];
    return ckpt_fail(err, MCRT_E_NOTFOUND, "%s: a folder without %s", Q(q, path), list);
}

/* The hyper-parameters `mcrt convert` keeps in a safetensors file's
 * metadata ("mcrt.arg.<name>" = "int:64" | "float:1e-05" | "bool:true" |
 * "str:RMSNorm"; "mcrt.arg_origin", "mcrt.arg_source"), back as arguments.
 * A malformed value is MCRT_E_DATA naming the key. */
static mcrt_status read_converted_args(ckpt *ck, ckpt_err *err)
{
    const char *origin = meta_find(ck, "mcrt.arg_origin", 15);
    const char *source = meta_find(ck, "mcrt.arg_source", 15);
    char src[CKPT_QUOTE_SIZE + 64], q[CKPT_QUOTE_SIZE];
    snprintf(src, sizeof src, "%s (converted from %s)", ck->path,
             source != NULL ? source : "another checkpoint");
    size_t o = 0;
    for (size_t i = 0; i < ck->n_meta; i++) {
        const char *k = ck->meta + o;
        const char *v = k + strlen(k) + 1;
        o += strlen(k) + 1 + strlen(v) + 1;
        if (strncmp(k, "mcrt.arg.", 9) != 0 || k[9] == '\0')
            continue;
        ckpt_arg a;
        memset(&a, 0, sizeof a);
        a.name = (char *)k + 9;
        a.source = src;
        a.origin = origin != NULL && strcmp(origin, "training_args") == 0
                       ? MCRT_CHECKPOINT_ARG_TRAINING_ARGS
                       : MCRT_CHECKPOINT_ARG_MODEL_CONFIG;
        char *end = NULL;
        bool ok = true;
        errno = 0;
        if (strncmp(v, "int:", 4) == 0) {
            a.type = MCRT_CFG_INT;
            a.i = strtoll(v + 4, &end, 10);
            a.f = (double)a.i;
            ok = v[4] != '\0' && *end == '\0' && errno == 0;
        } else if (strncmp(v, "float:", 6) == 0) {
            a.type = MCRT_CFG_FLOAT;
            a.f = strtod(v + 6, &end);
            ok = v[6] != '\0' && *end == '\0';
        } else if (strcmp(v, "bool:true") == 0 || strcmp(v, "bool:false") == 0) {
            a.type = MCRT_CFG_BOOL;
            a.i = v[5] == 't';
        } else if (strncmp(v, "str:", 4) == 0) {
            a.type = MCRT_CFG_STRING;
            a.s = (char *)v + 4;
        } else {
            ok = false;
        }
        if (!ok)
            return ckpt_fail(err, MCRT_E_DATA, "%s: __metadata__ '%s' = '%s': expected int:N, "
                             "float:X, bool:true|false or str:TEXT", Q(q, ck->path), k, v);
        mcrt_status s = ckpt_add_arg(ck, &a, err);
        if (s != MCRT_OK)
            return s;
    }
    return MCRT_OK;
}

bool ckpt_requested_step(const ckpt *ck, int64_t *step)
{
    if (ck->has_step && step != NULL)
        *step = ck->step;
    return ck->has_step;
}

mcrt_status ckpt_open(const char *path, ckpt **out, ckpt_err *err)
{
    return ckpt_open_ex(path, NULL, out, err);
}

mcrt_status ckpt_open_ex(const char *path, const ckpt_open_options *opt, ckpt **out,
                         ckpt_err *err)
{
    if (out != NULL)
        *out = NULL;
    if (path == NULL || out == NULL || path[0] == '\0')
        return ckpt_fail(err, MCRT_E_INVAL, "checkpoint open: %s",
                         out == NULL ? "no result pointer" : "no path given");
    struct stat st;
    if (stat(path, &st) != 0)
        return sys_error(path, "stat", errno, err);
    const ckpt_format *fmt = NULL;
    char *entry = NULL;
    mcrt_status s = MCRT_OK;
    bool has_step = opt != NULL && opt->has_step;
    if (has_step && opt->step < 0)
        return ckpt_fail(err, MCRT_E_INVAL, "checkpoint open: step %" PRId64 " is negative",
                         opt->step);
    if (S_ISDIR(st.st_mode) && has_step)
        fmt = &ckpt_format_megatron; /* iter_<step> of a --load folder */
    else if (S_ISDIR(st.st_mode))
        s = pick_for_folder(path, &fmt, &entry, err);
    else if (S_ISREG(st.st_mode))
        s = pick_for_file(path, &fmt, err);
    else {
        char q[CKPT_QUOTE_SIZE];
        s = ckpt_fail(err, MCRT_E_IO, "%s: neither a file nor a folder", Q(q, path));
    }
    if (s != MCRT_OK)
        return s;
    ckpt *ck = calloc(1, sizeof *ck);
    if (ck == NULL || (ck->path = strdup(path)) == NULL) {
        free(ck);
        free(entry);
        return ckpt_fail(err, MCRT_E_NOMEM, "out of memory opening a checkpoint");
    }
    ck->has_step = has_step;
    ck->step = has_step ? opt->step : -1;
    s = fmt->open(ck, entry != NULL ? entry : path, err);
    free(entry);
    if (s == MCRT_OK && ck->ops == NULL)
        s = ckpt_fail(err, MCRT_E_INTERNAL, "checkpoint format %s set no backend", fmt->name);
    if (s == MCRT_OK)
        s = finish(ck, err);
    if (s == MCRT_OK)
        s = read_converted_args(ck, err);
    if (s == MCRT_OK)
        s = ckpt_read_hf_config(ck, path, S_ISDIR(st.st_mode), err);
    if (s != MCRT_OK) {
        ckpt_close(ck);
        return s;
    }
    *out = ck;
    return MCRT_OK;
}

/* ---- lookups -------------------------------------------------------------- */

size_t ckpt_count(const ckpt *ck)
{
    return ckpt_valid(ck) ? ck->n : 0;
}

const ckpt_tensor *ckpt_at(const ckpt *ck, size_t i)
{
    return ckpt_valid(ck) && i < ck->n ? &ck->t[i] : NULL;
}

const ckpt_tensor *ckpt_find(const ckpt *ck, const char *name)
{
    if (!ckpt_valid(ck) || name == NULL)
        return NULL;
    size_t lo = 0, hi = ck->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(ck->t[mid].name, name);
        if (c == 0)
            return &ck->t[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

mcrt_status ckpt_lookup(const ckpt *ck, const char *name, const ckpt_tensor **out, ckpt_err *err)
{
    *out = NULL;
    if (!ckpt_valid(ck) || name == NULL)
        return ckpt_fail(err, MCRT_E_INVAL, "checkpoint: %s",
                         name == NULL ? "no tensor name" : "not an open checkpoint");
    *out = ckpt_find(ck, name);
    if (*out != NULL)
        return MCRT_OK;
    /* The closest name, if it is close enough to be a typo. */
    const char *best = NULL;
    size_t best_d = SIZE_MAX, len = strlen(name);
    size_t limit = len / 5 > 2 ? len / 5 : 2;
    for (size_t i = 0; i < ck->n; i++) {
        size_t d = edit_distance(name, ck->t[i].name);
        if (d < best_d) {
            best_d = d;
            best = ck->t[i].name;
        }
    }
    char qp[CKPT_QUOTE_SIZE], qn[CKPT_QUOTE_SIZE], qb[CKPT_QUOTE_SIZE];
    if (best != NULL && best_d <= limit)
        return ckpt_fail(err, MCRT_E_NOTFOUND, "%s: no tensor '%s' (did you mean '%s'?)",
                         Q(qp, ck->path), Q(qn, name), Q(qb, best));
    return ckpt_fail(err, MCRT_E_NOTFOUND, "%s: no tensor '%s' (%zu tensors)", Q(qp, ck->path),
                     Q(qn, name), ck->n);
}

/* ---- read and view -------------------------------------------------------- */

/* Elements converted per bounce-buffer round when the backend has no mapping. */
#define BOUNCE_ELEMS 8192

/* Copy `count` elements starting at element `first` of t into dst. */
static mcrt_status copy_run(const ckpt *ck, const ckpt_tensor *t, uint64_t first, uint64_t count,
                            int32_t to, unsigned char *dst, unsigned char *bounce, ckpt_err *err)
{
    size_t ssz = mcrt_dtype_size(t->dtype), dsz = mcrt_dtype_size(to);
    if (t->data != NULL && !ck->copy_only) {
        ckpt_convert(dst, to, t->data + first * ssz, t->dtype, (size_t)count);
        return MCRT_OK;
    }
    if (to == t->dtype)
        return ck->ops->read_bytes(ck->state, t, first * ssz, (size_t)count * ssz, dst, err);
    while (count > 0) {
        size_t n = count < BOUNCE_ELEMS ? (size_t)count : BOUNCE_ELEMS;
        mcrt_status s = ck->ops->read_bytes(ck->state, t, first * ssz, n * ssz, bounce, err);
        if (s != MCRT_OK)
            return s;
        ckpt_convert(dst, to, bounce, t->dtype, n);
        dst += n * dsz;
        first += n;
        count -= n;
    }
    return MCRT_OK;
}

const char *ckpt_ints_text(char *buf, size_t size, const int64_t *v, int32_t n, int tuple)
{
    if (size == 0)
        return buf;
    size_t o = 0;
    int w = snprintf(buf, size, "%s", tuple ? "(" : "[");
    o = w > 0 ? (size_t)w : 0;
    for (int32_t i = 0; i < n && o < size; i++) {
        w = snprintf(buf + o, size - o, "%s%" PRId64, i ? ", " : "", v[i]);
        if (w < 0)
            break;
        o += (size_t)w;
    }
    if (o < size)
        snprintf(buf + o, size - o, "%s", !tuple ? "]" : n == 1 ? ",)" : ")");
    return buf;
}

mcrt_status ckpt_read(const ckpt *ck, const ckpt_tensor *t, int32_t dim, int64_t start,
                      int64_t len, int32_t dtype, void *dst, size_t dst_size, size_t *out_bytes,
                      ckpt_err *err)
{
    if (out_bytes != NULL)
        *out_bytes = 0;
    if (!ckpt_valid(ck) || t == NULL)
        return ckpt_fail(err, MCRT_E_INVAL, "checkpoint read: %s",
                         t == NULL ? "no tensor" : "not an open checkpoint");
    char qp[CKPT_QUOTE_SIZE], qn[CKPT_QUOTE_SIZE], sh[160];
    Q(qp, ck->path);
    Q(qn, t->name);
    if (mcrt_dtype_size(dtype) == 0)
        return ckpt_fail(err, MCRT_E_INVAL, "%s: tensor '%s': cannot read as dtype %d, which is "
                         "not an MCRT_DTYPE_*", qp, qn, (int)dtype);
    if (!ckpt_can_convert(t->dtype, dtype)) {
        bool fl = ckpt_can_convert(t->dtype, MCRT_DTYPE_F16);
        return ckpt_fail(err, MCRT_E_INVAL, "%s: tensor '%s' is %s and can be read as %s, not %s",
                         qp, qn, ckpt_dtype_name(t->dtype),
                         fl ? "F32, F16 or BF16" : ckpt_dtype_name(t->dtype),
                         ckpt_dtype_name(dtype));
    }
    /* The copy is `outer` runs of `run` elements; run o starts at element
     * (o * D + s0) * inner of the tensor. */
    uint64_t outer = 1, D = 1, s0 = 0, n = 1, inner = t->nelem;
    if (dim != -1) {
        ckpt_ints_text(sh, sizeof sh, t->shape, t->ndim, 0);
        if (dim < 0 || dim >= t->ndim)
            return ckpt_fail(err, MCRT_E_INVAL, "%s: tensor '%s' %s: no dimension %d to slice "
                             "(dim is 0..%d, or -1 for the whole tensor)",
                             qp, qn, sh, (int)dim, (int)t->ndim - 1);
        int64_t extent = t->shape[dim];
        if (start < 0 || len < 0 || start > extent || len > extent - start)
            return ckpt_fail(err, MCRT_E_RANGE, "%s: tensor '%s' %s: slice start %" PRId64
                             ", length %" PRId64 " along dim %d is outside [0, %" PRId64 ")",
                             qp, qn, sh, start, len, (int)dim, extent);
        if (t->nelem == 0) {
            outer = 0;
        } else {
            /* Every product below divides nelem, so none overflows. */
            outer = 1;
            for (int32_t i = 0; i < dim; i++)
                outer *= (uint64_t)t->shape[i];
            inner = 1;
            for (int32_t i = dim + 1; i < t->ndim; i++)
                inner *= (uint64_t)t->shape[i];
            D = (uint64_t)extent;
            s0 = (uint64_t)start;
            n = (uint64_t)len;
        }
    }
    uint64_t run = n * inner, count = 0, bytes = 0;
    if (!ckpt_mul_u64(outer, run, &count) || count > t->nelem ||
        !ckpt_mul_u64(count, mcrt_dtype_size(dtype), &bytes) || bytes > SIZE_MAX)
        return ckpt_fail(err, MCRT_E_RANGE, "%s: tensor '%s': the result is too large", qp, qn);
    if (dst_size < bytes) {
        if (dim == -1)
            snprintf(sh, sizeof sh, "the whole tensor");
        else
            snprintf(sh, sizeof sh, "the slice [%" PRId64 ", %" PRId64 ") of dim %d", start,
                     start + len, (int)dim);
        return ckpt_fail(err, MCRT_E_RANGE, "%s: tensor '%s': %s as %s needs %" PRIu64
                         " bytes, the buffer holds %zu", qp, qn, sh, ckpt_dtype_name(dtype),
                         bytes, dst_size);
    }
    if (bytes == 0)
        return MCRT_OK;
    if (dst == NULL)
        return ckpt_fail(err, MCRT_E_INVAL, "%s: tensor '%s': no destination buffer", qp, qn);
    /* One run when the slice covers whole rows. */
    if (s0 == 0 && n == D) {
        run = count;
        outer = 1;
    }
    unsigned char *bounce = NULL;
    if ((t->data == NULL || ck->copy_only) && dtype != t->dtype) {
        bounce = malloc((size_t)BOUNCE_ELEMS * mcrt_dtype_size(t->dtype));
        if (bounce == NULL)
            return ckpt_fail(err, MCRT_E_NOMEM, "%s: tensor '%s': out of memory", qp, qn);
    }
    size_t dsz = mcrt_dtype_size(dtype);
    unsigned char *o = dst;
    mcrt_status s = MCRT_OK;
    for (uint64_t i = 0; i < outer && s == MCRT_OK; i++) {
        s = copy_run(ck, t, (i * D + s0) * inner, run, dtype, o, bounce, err);
        o += run * dsz;
    }
    free(bounce);
    if (s == MCRT_OK && out_bytes != NULL)
        *out_bytes = (size_t)bytes;
    return s;
}

mcrt_status ckpt_view(const ckpt *ck, const ckpt_tensor *t, const void **data, ckpt_err *err)
{
    if (data != NULL)
        *data = NULL;
    if (!ckpt_valid(ck) || t == NULL || data == NULL)
        return ckpt_fail(err, MCRT_E_INVAL, "checkpoint view: %s",
                         !ckpt_valid(ck) ? "not an open checkpoint"
                         : t == NULL    ? "no tensor"
                                        : "no data pointer");
    if (t->data == NULL || ck->copy_only) {
        char qp[CKPT_QUOTE_SIZE], qn[CKPT_QUOTE_SIZE];
        return ckpt_fail(err, MCRT_E_UNSUPPORTED, "%s: tensor '%s': this checkpoint gives no "
                         "zero-copy view; read it instead", Q(qp, ck->path), Q(qn, t->name));
    }
    *data = t->data;
    return MCRT_OK;
}
