/*
 * core/plugin/registry.c: plugin discovery, loading, checks and selection.
 * See registry.h for the search order and the rules.
 */
#include "plugin/registry.h"

#include <dirent.h>
#include <stdarg.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mcrt/controller.h" /* mcrt_controller_iface */
#include "mcrt/engine.h"     /* mcrt_engine_iface */
#include "mcrt/model.h"      /* mcrt_model_iface */
#include "mcrt/sampler.h"    /* mcrt_sampler_iface */
#include "mcrt/tokenizer.h"  /* mcrt_tokenizer_iface */
#include "mcrt_build_config.h" /* MCRT_PLUGINDIR */
#include "runtime/host.h"    /* host_ctx */
#include "util/strutil.h"    /* edit_distance, xstrdup */

struct registry {
    const log_sink *log;
    char *exe_dir;
    plugin_entry *items;
    size_t n, cap;
    char **dirs;         /* folders already scanned (realpath), to skip repeats */
    size_t n_dirs;
};

static const char *const kind_names[MCRT_KIND_COUNT + 1] = {
    NULL, "engine", "controller", "model", "sampler", "tokenizer"};
static const char *const kind_ifaces[MCRT_KIND_COUNT + 1] = {
    NULL, MCRT_IFACE_ENGINE, MCRT_IFACE_CONTROLLER, MCRT_IFACE_MODEL, MCRT_IFACE_SAMPLER,
    MCRT_IFACE_TOKENIZER};

const char *kind_name(int kind)
{
    return kind >= 1 && kind <= MCRT_KIND_COUNT ? kind_names[kind] : NULL;
}

int kind_from_name(const char *s)
{
    for (int k = 1; k <= MCRT_KIND_COUNT; k++)
        if (strcmp(s, kind_names[k]) == 0)
            return k;
    return 0;
}

const char *kind_iface_id(int kind)
{
    return kind >= 1 && kind <= MCRT_KIND_COUNT ? kind_ifaces[kind] : NULL;
}

const char *registry_dir_origin_name(dir_origin o)
{
    switch (o) {
    case DIR_FLAG: return "--plugin-dir";
    case DIR_ENV: return "MCRT_PLUGIN_PATH";
    case DIR_INSTALLED: return "installed";
    case DIR_BUILD: return "build tree";
    default: return "?";
    }
}

registry *registry_create(const log_sink *log, const char *exe_path)
{
    registry *r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->log = log;
    if (exe_path != NULL) {
        char buf[PATH_MAX];
        if (realpath(exe_path, buf) != NULL) {
            char *slash = strrchr(buf, '/');
            if (slash != NULL) {
                *slash = '\0';
                r->exe_dir = xstrdup(buf);
            }
        }
    }
    return r;
}

void registry_destroy(registry *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->n; i++) {
        plugin_entry *e = &r->items[i];
        if (e->state == PLUGIN_READY && e->instances == 0) {
            if (e->desc->fini != NULL)
                e->desc->fini();
            dlclose(e->dl);
        } else if (e->instances > 0) {
            /* Never unload code that live instances may still run. */
            log_msg(r->log, MCRT_LOG_DEBUG, "loader", "%s: %u instances alive, not unloaded",
                    e->path, e->instances);
        }
        host_ctx_destroy(e->hctx);
        free(e->path);
        free(e->name);
    }
    free(r->items);
    for (size_t i = 0; i < r->n_dirs; i++)
        free(r->dirs[i]);
    free(r->dirs);
    free(r->exe_dir);
    free(r);
}

size_t registry_count(const registry *r) { return r->n; }
plugin_entry *registry_at(registry *r, size_t i) { return i < r->n ? &r->items[i] : NULL; }

/* Parse "mcrt-<kind>-<name>.so": kind must be known, name non-empty. */
static int parse_file_name(const char *file, int *kind, char **name)
{
    size_t len = strlen(file);
    if (len < 8 || strncmp(file, "mcrt-", 5) != 0 || strcmp(file + len - 3, ".so") != 0)
        return -1;
    const char *k = file + 5;
    const char *dash = strchr(k, '-');
    if (dash == NULL)
        return -1;
    char kbuf[32];
    size_t kl = (size_t)(dash - k);
    if (kl == 0 || kl >= sizeof kbuf)
        return -1;
    memcpy(kbuf, k, kl);
    kbuf[kl] = '\0';
    int kd = kind_from_name(kbuf);
    if (kd == 0)
        return -1;
    const char *nm = dash + 1;
    size_t nl = (size_t)(file + len - 3 - nm);
    if (nl == 0)
        return -1;
    *name = xstrndup(nm, nl);
    if (*name == NULL)
        return -1;
    *kind = kd;
    return 0;
}

static plugin_entry *find_ready_or_listed(registry *r, int kind, const char *name, size_t before)
{
    for (size_t i = 0; i < before; i++) {
        plugin_entry *e = &r->items[i];
        if (e->kind == kind && strcmp(e->name, name) == 0 && e->state != PLUGIN_SHADOWED)
            return e;
    }
    return NULL;
}

static int push_entry(registry *r, const char *path, int kind, char *name, dir_origin origin)
{
    if (r->n == r->cap) {
        size_t nc = r->cap ? r->cap * 2 : 16;
        plugin_entry *ni = realloc(r->items, nc * sizeof *ni);
        if (ni == NULL)
            return -1;
        r->items = ni;
        r->cap = nc;
    }
    plugin_entry *e = &r->items[r->n];
    memset(e, 0, sizeof *e);
    e->path = xstrdup(path);
    if (e->path == NULL)
        return -1;
    e->kind = kind;
    e->name = name;
    e->origin = origin;
    e->state = PLUGIN_LISTED;
    plugin_entry *first = find_ready_or_listed(r, kind, name, r->n);
    if (first != NULL) {
        e->state = PLUGIN_SHADOWED;
        snprintf(e->reason, sizeof e->reason, "shadowed by %s (earlier in the search order)",
                 first->path);
    }
    r->n++;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

int registry_add_dir(registry *r, const char *dir, dir_origin origin, bool must_exist, char *err,
                     size_t err_size, int *exit_code)
{
    struct stat st;
    if (stat(dir, &st) != 0) {
        if (must_exist) {
            snprintf(err, err_size, "plugin dir %s: %s", dir, strerror(errno));
            *exit_code = 66;
            return -1;
        }
        log_msg(r->log, MCRT_LOG_DEBUG, "loader", "plugin dir %s (%s): %s, skipped", dir,
                registry_dir_origin_name(origin), strerror(errno));
        return 0;
    }
    if (!S_ISDIR(st.st_mode)) {
        if (must_exist) {
            snprintf(err, err_size, "plugin dir %s: not a directory", dir);
            *exit_code = 66;
            return -1;
        }
        log_msg(r->log, MCRT_LOG_WARN, "loader", "plugin dir %s (%s): not a directory, skipped",
                dir, registry_dir_origin_name(origin));
        return 0;
    }
    if (st.st_mode & S_IWOTH) {
        if (must_exist) {
            snprintf(err, err_size,
                     "plugin dir %s: refusing to load plugins from a world-writable directory "
                     "(any local user could place code there); run chmod o-w on it",
                     dir);
            *exit_code = 69;
            return -1;
        }
        log_msg(r->log, MCRT_LOG_WARN, "loader",
                "plugin dir %s (%s): world-writable, refused (any local user could place code "
                "there)",
                dir, registry_dir_origin_name(origin));
        return 0;
    }
    char real[PATH_MAX];
    if (realpath(dir, real) == NULL)
        snprintf(real, sizeof real, "%s", dir);
    for (size_t i = 0; i < r->n_dirs; i++)
        if (strcmp(r->dirs[i], real) == 0)
            return 0;
    char **nd = realloc(r->dirs, (r->n_dirs + 1) * sizeof *nd);
    if (nd == NULL)
        return 0;
    r->dirs = nd;
    r->dirs[r->n_dirs] = xstrdup(real);
    if (r->dirs[r->n_dirs] != NULL)
        r->n_dirs++;

    DIR *d = opendir(dir);
    if (d == NULL) {
        if (must_exist) {
            snprintf(err, err_size, "plugin dir %s: %s", dir, strerror(errno));
            *exit_code = 66;
            return -1;
        }
        return 0;
    }
    /* Sort names so the order (and so "auto" ties) never depends on readdir. */
    char **names = NULL;
    size_t nn = 0, nc = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "mcrt-", 5) != 0)
            continue;
        if (nn == nc) {
            nc = nc ? nc * 2 : 16;
            char **t = realloc(names, nc * sizeof *t);
            if (t == NULL)
                break;
            names = t;
        }
        names[nn] = xstrdup(de->d_name);
        if (names[nn] != NULL)
            nn++;
    }
    closedir(d);
    if (nn > 0)
        qsort(names, nn, sizeof *names, cmp_str);
    for (size_t i = 0; i < nn; i++) {
        int kind;
        char *name;
        if (parse_file_name(names[i], &kind, &name) == 0) {
            char path[PATH_MAX];
            int w = snprintf(path, sizeof path, "%s/%s", dir, names[i]);
            if (w > 0 && (size_t)w < sizeof path) {
                if (push_entry(r, path, kind, name, origin) != 0)
                    free(name);
            } else {
                free(name);
            }
        } else {
            log_msg(r->log, MCRT_LOG_DEBUG, "loader",
                    "%s/%s: not named mcrt-<kind>-<name>.so with a known kind, ignored", dir,
                    names[i]);
        }
        free(names[i]);
    }
    free(names);
    return 0;
}

void registry_add_default_dirs(registry *r, const char *env_plugin_path)
{
    char err[256];
    int code;
    if (env_plugin_path != NULL && env_plugin_path[0] != '\0') {
        char *copy = xstrdup(env_plugin_path);
        char *save = NULL;
        for (char *tok = copy ? strtok_r(copy, ":", &save) : NULL; tok != NULL;
             tok = strtok_r(NULL, ":", &save))
            registry_add_dir(r, tok, DIR_ENV, false, err, sizeof err, &code);
        free(copy);
    }
    registry_add_dir(r, MCRT_PLUGINDIR, DIR_INSTALLED, false, err, sizeof err, &code);
    if (r->exe_dir != NULL) {
        /* The build tree: build/mcrt -> build/plugins/<plugin>/mcrt-*.so */
        char base[PATH_MAX];
        int w = snprintf(base, sizeof base, "%s/plugins", r->exe_dir);
        if (w <= 0 || (size_t)w >= sizeof base)
            return;
        DIR *d = opendir(base);
        if (d == NULL)
            return;
        char **subs = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.')
                continue;
            if (n == cap) {
                cap = cap ? cap * 2 : 8;
                char **t = realloc(subs, cap * sizeof *t);
                if (t == NULL)
                    break;
                subs = t;
            }
            subs[n] = xstrdup(de->d_name);
            if (subs[n] != NULL)
                n++;
        }
        closedir(d);
        if (n > 0)
            qsort(subs, n, sizeof *subs, cmp_str);
        for (size_t i = 0; i < n; i++) {
            char sub[PATH_MAX];
            w = snprintf(sub, sizeof sub, "%s/%s", base, subs[i]);
            struct stat st;
            if (w > 0 && (size_t)w < sizeof sub && stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
                registry_add_dir(r, sub, DIR_BUILD, false, err, sizeof err, &code);
            free(subs[i]);
        }
        free(subs);
    }
}

/* The smallest interface table the core can drive, per kind: up to and
 * including the last slot of ABI 1.0. */
static size_t min_iface_size(int kind)
{
    switch (kind) {
    case MCRT_KIND_ENGINE: return offsetof(mcrt_engine_iface, run) + sizeof(void (*)(void));
    case MCRT_KIND_CONTROLLER:
        return offsetof(mcrt_controller_iface, generate_static) + sizeof(void (*)(void));
    case MCRT_KIND_MODEL: return offsetof(mcrt_model_iface, step) + sizeof(void (*)(void));
    case MCRT_KIND_SAMPLER: return offsetof(mcrt_sampler_iface, sample) + sizeof(void (*)(void));
    case MCRT_KIND_TOKENIZER:
        return offsetof(mcrt_tokenizer_iface, token_bytes) + sizeof(void (*)(void));
    default: return SIZE_MAX;
    }
}

/* The required (non-optional) slots of each interface are non-NULL. */
static const char *missing_slot(int kind, const void *iface)
{
    switch (kind) {
    case MCRT_KIND_ENGINE: {
        const mcrt_engine_iface *t = iface;
        if (!t->create) return "create";
        if (!t->destroy) return "destroy";
        if (!t->submit) return "submit";
        if (!t->run) return "run";
        return NULL;
    }
    case MCRT_KIND_CONTROLLER: {
        const mcrt_controller_iface *t = iface;
        if (!t->create) return "create";
        if (!t->destroy) return "destroy";
        if (!t->generate_static) return "generate_static";
        return NULL;
    }
    case MCRT_KIND_MODEL: {
        const mcrt_model_iface *t = iface;
        if (!t->create) return "create";
        if (!t->destroy) return "destroy";
        if (!t->info) return "info";
        if (!t->step) return "step";
        return NULL;
    }
    case MCRT_KIND_SAMPLER: {
        const mcrt_sampler_iface *t = iface;
        if (!t->create) return "create";
        if (!t->destroy) return "destroy";
        if (!t->sample) return "sample";
        return NULL;
    }
    case MCRT_KIND_TOKENIZER: {
        const mcrt_tokenizer_iface *t = iface;
        if (!t->create) return "create";
        if (!t->destroy) return "destroy";
        if (!t->info) return "info";
        if (!t->encode) return "encode";
        if (!t->decode) return "decode";
        if (!t->token_bytes) return "token_bytes";
        return NULL;
    }
    default: return "?";
    }
}

static void refuse(registry *r, plugin_entry *e, const char *fmt, ...) MCRT_PRINTF(3, 4);
static void refuse(registry *r, plugin_entry *e, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(e->reason, sizeof e->reason, "%s", msg);
    e->state = PLUGIN_REFUSED;
    log_msg(r->log, MCRT_LOG_INFO, "loader", "%s: refused: %s", e->path, msg);
}

/* Descriptor fields up to get_iface are what ABI 1.0 needs. */
#define DESC_MIN_SIZE (offsetof(mcrt_plugin_entry, get_iface) + sizeof(void (*)(void)))

void registry_open(registry *r, plugin_entry *e)
{
    if (e->state != PLUGIN_LISTED)
        return;
    struct stat st;
    if (stat(e->path, &st) != 0) {
        refuse(r, e, "cannot stat: %s", strerror(errno));
        return;
    }
    if (st.st_mode & S_IWOTH) {
        refuse(r, e, "the file is world-writable; refusing to load it (chmod o-w)");
        return;
    }
    dlerror();
    void *dl = dlopen(e->path, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        const char *de = dlerror();
        refuse(r, e, "dlopen failed: %s", de ? de : "unknown error");
        return;
    }
    const mcrt_plugin_entry *d = (const mcrt_plugin_entry *)dlsym(dl, "mcrt_plugin");
    if (d == NULL) {
        refuse(r, e, "no mcrt_plugin symbol (not an mcrt plugin, or built without "
                     "MCRT_PLUGIN_DEFINE)");
        dlclose(dl);
        return;
    }
    if (d->abi_major != MCRT_ABI_MAJOR) {
        refuse(r, e, "incompatible ABI (plugin %u.%u, host %u.%u): rebuild the plugin against "
                     "mcrt ABI %u",
               (unsigned)d->abi_major, (unsigned)d->abi_minor, (unsigned)MCRT_ABI_MAJOR,
               (unsigned)MCRT_ABI_MINOR, (unsigned)MCRT_ABI_MAJOR);
        dlclose(dl);
        return;
    }
    if (d->abi_minor > MCRT_ABI_MINOR) {
        refuse(r, e, "plugin needs a newer host (plugin ABI %u.%u, host %u.%u): upgrade mcrt",
               (unsigned)d->abi_major, (unsigned)d->abi_minor, (unsigned)MCRT_ABI_MAJOR,
               (unsigned)MCRT_ABI_MINOR);
        dlclose(dl);
        return;
    }
    if (d->struct_size < DESC_MIN_SIZE) {
        refuse(r, e, "descriptor struct_size %u is smaller than %zu, the size of ABI %u.0's "
                     "mcrt_plugin_entry (plugin ABI %u.%u, host %u.%u)",
               (unsigned)d->struct_size, (size_t)DESC_MIN_SIZE, (unsigned)MCRT_ABI_MAJOR,
               (unsigned)d->abi_major, (unsigned)d->abi_minor, (unsigned)MCRT_ABI_MAJOR,
               (unsigned)MCRT_ABI_MINOR);
        dlclose(dl);
        return;
    }
    if (d->kind != (uint32_t)e->kind) {
        const char *dk = kind_name((int)d->kind);
        refuse(r, e, "the file name says kind '%s' but the descriptor says %s%s%s", kind_name(e->kind),
               dk ? "'" : "unknown kind ", dk ? dk : "", dk ? "'" : "");
        dlclose(dl);
        return;
    }
    if (d->name == NULL || strcmp(d->name, e->name) != 0) {
        refuse(r, e, "the file name says name '%s' but the descriptor says '%s'", e->name,
               d->name ? d->name : "(null)");
        dlclose(dl);
        return;
    }
    if (d->get_iface == NULL) {
        refuse(r, e, "descriptor has no get_iface");
        dlclose(dl);
        return;
    }
    if (d->config_keys != NULL && d->config_keys[0].name != NULL &&
        d->config_keys[0].struct_size < offsetof(mcrt_config_key, doc) + sizeof(const char *)) {
        refuse(r, e, "config key declarations have struct_size %u, smaller than ABI 1.0's %zu",
               (unsigned)d->config_keys[0].struct_size,
               offsetof(mcrt_config_key, doc) + sizeof(const char *));
        dlclose(dl);
        return;
    }
    char tag[96];
    snprintf(tag, sizeof tag, "%s/%s", kind_name(e->kind), e->name);
    e->hctx = host_ctx_create(r->log, tag, NULL);
    if (e->hctx == NULL) {
        refuse(r, e, "out of memory");
        dlclose(dl);
        return;
    }
    if (d->init != NULL) {
        mcrt_status s = d->init(&e->hctx->host);
        if (s != MCRT_OK) {
            refuse(r, e, "init failed: %s (%d)", mcrt_status_str(s), (int)s);
            /* init failed: no fini owed. */
            dlclose(dl);
            return;
        }
    }
    const void *iface = d->get_iface(kind_iface_id(e->kind));
    if (iface == NULL) {
        refuse(r, e, "does not provide interface %s", kind_iface_id(e->kind));
        if (d->fini) d->fini();
        dlclose(dl);
        return;
    }
    uint32_t isz = *(const uint32_t *)iface;
    if (isz < min_iface_size(e->kind)) {
        refuse(r, e, "interface %s has struct_size %u, smaller than ABI 1.0's %zu",
               kind_iface_id(e->kind), (unsigned)isz, min_iface_size(e->kind));
        if (d->fini) d->fini();
        dlclose(dl);
        return;
    }
    const char *miss = missing_slot(e->kind, iface);
    if (miss != NULL) {
        refuse(r, e, "interface %s leaves the required slot '%s' NULL", kind_iface_id(e->kind),
               miss);
        if (d->fini) d->fini();
        dlclose(dl);
        return;
    }
    e->dl = dl;
    e->desc = d;
    e->iface = iface;
    e->state = PLUGIN_READY;
    log_msg(r->log, MCRT_LOG_DEBUG, "loader", "%s: loaded %s/%s %s (ABI %u.%u)", e->path,
            kind_name(e->kind), e->name, d->version ? d->version : "?", (unsigned)d->abi_major,
            (unsigned)d->abi_minor);
}

void registry_probe(registry *r, plugin_entry *e, const void *section_cfg)
{
    if (e->state != PLUGIN_READY)
        return;
    e->probed = true;
    if (e->desc->probe == NULL) {
        e->score = 1;
        e->reason[0] = '\0';
        return;
    }
    char why[256];
    why[0] = '\0';
    int32_t s = e->desc->probe(&e->hctx->host, (const mcrt_config *)section_cfg, why, sizeof why);
    why[sizeof why - 1] = '\0';
    e->score = s < 0 ? 0 : s;
    if (e->score == 0)
        snprintf(e->reason, sizeof e->reason, "%s", why[0] ? why : "probe returned 0 (no reason given)");
    else
        e->reason[0] = '\0';
}

plugin_entry *registry_select(registry *r, int kind, const char *name, const void *section_cfg,
                              char *err, size_t err_size, int *exit_code)
{
    const char *kn = kind_name(kind);
    bool is_auto = name == NULL || strcmp(name, "auto") == 0;
    plugin_entry *best = NULL;
    size_t n_of_kind = 0;
    for (size_t i = 0; i < r->n; i++) {
        plugin_entry *e = &r->items[i];
        if (e->kind != kind || e->state == PLUGIN_SHADOWED)
            continue;
        n_of_kind++;
        if (!is_auto && strcmp(e->name, name) != 0)
            continue;
        registry_open(r, e);
        if (e->state != PLUGIN_READY) {
            if (!is_auto) {
                snprintf(err, err_size, "%s plugin '%s' (%s) cannot be loaded: %s", kn, name,
                         e->path, e->reason);
                *exit_code = 69;
                return NULL;
            }
            continue;
        }
        registry_probe(r, e, section_cfg);
        if (e->score == 0) {
            log_msg(r->log, MCRT_LOG_INFO, "loader", "%s/%s: skipped, not usable here: %s", kn,
                    e->name, e->reason);
            if (!is_auto) {
                snprintf(err, err_size, "%s plugin '%s' (%s) is not usable here: %s", kn, name,
                         e->path, e->reason);
                *exit_code = 69;
                return NULL;
            }
            continue;
        }
        if (best == NULL || e->score > best->score)
            best = e;
        if (!is_auto)
            break;
    }
    if (best != NULL) {
        log_msg(r->log, MCRT_LOG_DEBUG, "loader", "%s: using %s (%s, score %d)", kn, best->name,
                best->path, (int)best->score);
        return best;
    }
    /* Nothing: explain what exists. */
    char avail[512];
    size_t off = 0;
    avail[0] = '\0';
    const char *nearest = NULL;
    size_t best_d = SIZE_MAX;
    for (size_t i = 0; i < r->n; i++) {
        plugin_entry *e = &r->items[i];
        if (e->kind != kind || e->state == PLUGIN_SHADOWED)
            continue;
        int w = snprintf(avail + off, sizeof avail - off, "%s%s", off ? ", " : "", e->name);
        if (w > 0 && (size_t)w < sizeof avail - off)
            off += (size_t)w;
        if (!is_auto) {
            size_t dd = edit_distance(name, e->name);
            if (dd < best_d) {
                best_d = dd;
                nearest = e->name;
            }
        }
    }
    if (!is_auto) {
        if (nearest != NULL && best_d <= 2)
            snprintf(err, err_size, "unknown %s plugin '%s'; did you mean '%s'? (available: %s)",
                     kn, name, nearest, avail);
        else
            snprintf(err, err_size, "unknown %s plugin '%s' (available: %s)", kn, name,
                     n_of_kind ? avail : "none found; see `mcrt plugins`");
        *exit_code = 78;
    } else if (n_of_kind == 0) {
        snprintf(err, err_size,
                 "no %s plugin found (searched --plugin-dir, MCRT_PLUGIN_PATH, %s and the build "
                 "tree; see `mcrt plugins`)",
                 kn, MCRT_PLUGINDIR);
        *exit_code = 69;
    } else {
        snprintf(err, err_size, "no usable %s plugin here (candidates: %s; `mcrt plugins` says why)",
                 kn, avail);
        *exit_code = 69;
    }
    return NULL;
}
