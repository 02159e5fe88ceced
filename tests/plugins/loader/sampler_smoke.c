/*
 * tests/plugins/loader/sampler_smoke.c: loads one sampler plugin the way a
 * host would, with a fake host table, and checks that it works:
 *
 *   sampler_smoke PLUGIN.so
 *
 * Descriptor (versions, kind, struct_size), config key declarations (types,
 * defaults inside their ranges and choices), probe > 0, init/fini,
 * get_iface (known id and an unknown revision), create with every key at its
 * declared default, greedy sampling that ignores padding ids and picks the
 * first maximum, log-softmax log probs, and a bad batch refused with an
 * error. Exits 0 when all holds, 1 with one line per failure otherwise.
 * This is not the loader's test (core/plugin has its own); it keeps the
 * test-only and example plugins honest.
 */
#include <dlfcn.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mcrt/mcrt.h" /* the plugin ABI */

static int failures;

#define CHECK(cond, ...)                                                                        \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            fprintf(stderr, "sampler_smoke: %s:%d: %s: ", __FILE__, __LINE__, #cond);          \
            fprintf(stderr, __VA_ARGS__);                                                       \
            fputc('\n', stderr);                                                                \
            failures++;                                                                         \
        }                                                                                       \
    } while (0)

/* ---- A fake host: logs to stderr, counts allocations, and answers config
 *      reads with the defaults the plugin declared. ------------------------- */

static const mcrt_plugin_entry *plugin;
static int live_allocs;
static int error_logs;

static void fake_logv(const mcrt_host *host, int32_t level, const char *fmt, va_list ap)
    MCRT_PRINTF(3, 0);
static void fake_logv(const mcrt_host *host, int32_t level, const char *fmt, va_list ap)
{
    (void)host;
    if (level == MCRT_LOG_ERROR)
        error_logs++;
    fprintf(stderr, "[plugin, level %d] ", (int)level);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

static void fake_log(const mcrt_host *host, int32_t level, const char *fmt, ...) MCRT_PRINTF(3, 4);
static void fake_log(const mcrt_host *host, int32_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fake_logv(host, level, fmt, ap);
    va_end(ap);
}

static void *fake_alloc(const mcrt_host *host, size_t size, size_t align)
{
    (void)host;
    (void)align; /* malloc's alignment is max_align_t, all this test needs */
    void *p = malloc(size);
    if (p != NULL)
        live_allocs++;
    return p;
}

static void fake_free(const mcrt_host *host, void *ptr)
{
    (void)host;
    if (ptr != NULL)
        live_allocs--;
    free(ptr);
}

static const mcrt_config_key *key_at(size_t i)
{
    const mcrt_config_key *keys = plugin->config_keys;
    return (const mcrt_config_key *)((const char *)keys + i * keys[0].struct_size);
}

/* The declaration of `key` if it has type `type` (0 = any string type). */
static mcrt_status find_default(const char *key, uint32_t type, const char **out)
{
    for (size_t i = 0; plugin->config_keys != NULL && key_at(i)->name != NULL; i++) {
        const mcrt_config_key *k = key_at(i);
        if (strcmp(k->name, key) != 0)
            continue;
        bool stringy = k->type == MCRT_CFG_STRING || k->type == MCRT_CFG_PATH ||
                       k->type == MCRT_CFG_ENUM;
        if (type != 0 ? k->type != type : !stringy) {
            fake_log(NULL, MCRT_LOG_ERROR, "fake host: key %s read with the wrong type", key);
            return MCRT_E_CONFIG;
        }
        if (k->default_value == NULL)
            return MCRT_E_NOTFOUND;
        *out = k->default_value;
        return MCRT_OK;
    }
    fake_log(NULL, MCRT_LOG_ERROR, "fake host: key %s was never declared", key);
    return MCRT_E_NOTFOUND;
}

static mcrt_status fake_config_bool(const mcrt_host *host, const mcrt_config *cfg,
                                    const char *key, bool *out)
{
    (void)host;
    (void)cfg;
    const char *v;
    mcrt_status st = find_default(key, MCRT_CFG_BOOL, &v);
    if (st == MCRT_OK)
        *out = strcmp(v, "true") == 0 || strcmp(v, "yes") == 0 || strcmp(v, "on") == 0 ||
               strcmp(v, "1") == 0;
    return st;
}

static mcrt_status fake_config_int(const mcrt_host *host, const mcrt_config *cfg,
                                   const char *key, int64_t *out)
{
    (void)host;
    (void)cfg;
    const char *v;
    mcrt_status st = find_default(key, MCRT_CFG_INT, &v);
    if (st == MCRT_OK)
        *out = strtoll(v, NULL, 10);
    return st;
}

static mcrt_status fake_config_float(const mcrt_host *host, const mcrt_config *cfg,
                                     const char *key, double *out)
{
    (void)host;
    (void)cfg;
    const char *v;
    mcrt_status st = find_default(key, MCRT_CFG_FLOAT, &v);
    if (st == MCRT_OK)
        *out = strtod(v, NULL);
    return st;
}

static mcrt_status fake_config_string(const mcrt_host *host, const mcrt_config *cfg,
                                      const char *key, const char **out)
{
    (void)host;
    (void)cfg;
    return find_default(key, 0, out);
}

static mcrt_status fake_config_list_size(const mcrt_host *host, const mcrt_config *cfg,
                                         const char *key, size_t *out_n)
{
    (void)host;
    (void)cfg;
    (void)key;
    (void)out_n;
    return MCRT_E_NOTFOUND;
}

static mcrt_status fake_config_list_item(const mcrt_host *host, const mcrt_config *cfg,
                                         const char *key, size_t index, const char **out)
{
    (void)host;
    (void)cfg;
    (void)key;
    (void)index;
    (void)out;
    return MCRT_E_NOTFOUND;
}

static uint64_t fake_clock_ns(const mcrt_host *host)
{
    (void)host;
    return 0;
}

static const void *fake_get_ext(const mcrt_host *host, const char *ext_id)
{
    (void)host;
    (void)ext_id;
    return NULL;
}

static const mcrt_host fake_host = {
    MCRT_ABI_MAJOR,
    MCRT_ABI_MINOR,
    sizeof(mcrt_host),
    NULL,
    fake_log,
    fake_logv,
    fake_alloc,
    fake_free,
    fake_config_bool,
    fake_config_int,
    fake_config_float,
    fake_config_string,
    fake_config_list_size,
    fake_config_list_item,
    fake_clock_ns,
    fake_get_ext,
};

/* Any non-NULL pointer will do: the fake accessors never look inside. */
static const char fake_cfg_storage;
#define FAKE_CFG ((const mcrt_config *)(const void *)&fake_cfg_storage)

/* ---- Checks --------------------------------------------------------------- */

/* Every declared key is well formed and its default fits its own rules. */
static void check_keys(void)
{
    if (plugin->config_keys == NULL)
        return;
    CHECK(plugin->config_keys[0].struct_size >= sizeof(mcrt_config_key), "key struct_size %u",
          (unsigned)plugin->config_keys[0].struct_size);
    for (size_t i = 0; key_at(i)->name != NULL; i++) {
        const mcrt_config_key *k = key_at(i);
        CHECK(k->type >= MCRT_CFG_BOOL && k->type <= MCRT_CFG_STRING_LIST, "key %s: type %u",
              k->name, (unsigned)k->type);
        CHECK(k->doc != NULL && k->doc[0] != '\0', "key %s: no doc line", k->name);
        CHECK(!(k->flags & MCRT_CFG_REQUIRED) || k->default_value == NULL,
              "key %s: REQUIRED with a default", k->name);
        if (k->default_value == NULL)
            continue;
        if (k->type == MCRT_CFG_FLOAT || k->type == MCRT_CFG_INT) {
            char *end;
            double d = strtod(k->default_value, &end);
            CHECK(*end == '\0', "key %s: default \"%s\" is not a number", k->name,
                  k->default_value);
            CHECK(!(k->flags & MCRT_CFG_HAS_MIN) || d >= k->min, "key %s: default below min",
                  k->name);
            CHECK(!(k->flags & MCRT_CFG_HAS_MAX) || d <= k->max, "key %s: default above max",
                  k->name);
        }
        if (k->type == MCRT_CFG_ENUM) {
            CHECK(k->choices != NULL, "key %s: ENUM without choices", k->name);
            if (k->choices == NULL)
                continue;
            size_t n = strlen(k->default_value);
            bool found = false;
            for (const char *c = k->choices; *c != '\0';) {
                size_t len = strcspn(c, "|");
                found = found || (len == n && strncmp(c, k->default_value, n) == 0);
                c += len + (c[len] == '|');
            }
            CHECK(found, "key %s: default \"%s\" not in \"%s\"", k->name, k->default_value,
                  k->choices);
        }
    }
}

/* log_softmax(row[0..V))[tok], the reference. */
static double ref_logprob(const float *row, int V, int tok)
{
    double m = row[0], sum = 0.0;
    for (int v = 1; v < V; v++)
        m = row[v] > m ? row[v] : m;
    for (int v = 0; v < V; v++)
        sum += exp((double)row[v] - m);
    return (double)row[tok] - m - log(sum);
}

static void check_sampling(const mcrt_sampler_iface *iface, void *self)
{
    enum { R = 3, V = 5, Vp = 8 };
    /* [R, Vp]; the padding ids (5..7) hold the largest logits and must never win. */
    static const float logits[R * Vp] = {
        0.1f, 2.0f, -1.0f, 0.5f, 1.9f, 9.0f, 9.0f, 9.0f,      /* -> 1 */
        3.0f, 3.0f, 1.0f, 0.0f, 0.0f, 9.0f, 9.0f, 9.0f,       /* tie -> the first, 0 */
        -2.0f, -1.0f, -3.0f, -0.5f, -4.0f, 99.f, 99.f, 99.f,  /* -> 3 */
    };
    static const int32_t want[R] = {1, 0, 3};
    mcrt_sampling_params params;
    memset(&params, 0, sizeof params);
    params.struct_size = sizeof params;
    params.temperature = 0.0f;
    params.top_p = 1.0f;
    params.repetition_penalty = 1.0f;
    params.seed = -1;
    const mcrt_sampling_params *row_params[R] = {&params, &params, &params};
    const int32_t *history[R] = {NULL, NULL, NULL};
    const size_t history_len[R] = {0, 0, 0};
    const uint64_t draw_index[R] = {0, 0, 0};
    const mcrt_sample_batch batch = {
        sizeof(mcrt_sample_batch), R, V, Vp, logits, row_params, history, history_len,
        draw_index,
    };

    int32_t tokens[R] = {-1, -1, -1};
    float logprobs[R] = {0};
    mcrt_status st = iface->sample(self, &batch, tokens, NULL);
    CHECK(st == MCRT_OK, "sample without log probs: %s", mcrt_status_str(st));
    st = iface->sample(self, &batch, tokens, logprobs);
    CHECK(st == MCRT_OK, "sample with log probs: %s", mcrt_status_str(st));
    for (int r = 0; r < R; r++) {
        CHECK(tokens[r] == want[r], "row %d: token %d, want %d", r, (int)tokens[r],
              (int)want[r]);
        double ref = ref_logprob(logits + r * Vp, V, want[r]);
        CHECK(fabs(logprobs[r] - ref) <= 1e-5 * (1.0 + fabs(ref)), "row %d: logprob %g, want %g",
              r, (double)logprobs[r], ref);
    }

    /* A malformed batch is an error status with a logged reason, not a crash. */
    mcrt_sample_batch bad = batch;
    bad.vocab_size = Vp + 1;
    int errors_before = error_logs;
    st = iface->sample(self, &bad, tokens, NULL);
    CHECK(st < 0, "vocab_size > padded_vocab_size: got %s, want an error",
          mcrt_status_str(st));
    CHECK(error_logs > errors_before, "the error was not logged");
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: sampler_smoke PLUGIN.so\n");
        return 2;
    }
    void *dso = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (dso == NULL) {
        fprintf(stderr, "sampler_smoke: %s\n", dlerror());
        return 1;
    }
    plugin = (const mcrt_plugin_entry *)dlsym(dso, "mcrt_plugin");
    if (plugin == NULL) {
        fprintf(stderr, "sampler_smoke: %s: no mcrt_plugin symbol\n", argv[1]);
        return 1;
    }
    CHECK(plugin->abi_major == MCRT_ABI_MAJOR && plugin->abi_minor <= MCRT_ABI_MINOR,
          "ABI %u.%u", (unsigned)plugin->abi_major, (unsigned)plugin->abi_minor);
    CHECK(plugin->struct_size >= sizeof(mcrt_plugin_entry), "struct_size %u",
          (unsigned)plugin->struct_size);
    CHECK(plugin->kind == MCRT_KIND_SAMPLER, "kind %u", (unsigned)plugin->kind);
    CHECK(plugin->flags == 0, "flags %u", (unsigned)plugin->flags);
    CHECK(plugin->name != NULL && plugin->version != NULL && plugin->description != NULL,
          "name, version and description are required");
    if (failures > 0)
        return 1;
    check_keys();

    if (plugin->probe != NULL) {
        char why[256] = "";
        int32_t score = plugin->probe(&fake_host, NULL, why, sizeof why);
        CHECK(score > 0, "probe says 0: %s", why);
    }
    if (plugin->init != NULL) {
        mcrt_status st = plugin->init(&fake_host);
        CHECK(st == MCRT_OK, "init: %s", mcrt_status_str(st));
    }

    const mcrt_sampler_iface *iface = plugin->get_iface(MCRT_IFACE_SAMPLER);
    CHECK(iface != NULL, "no %s", MCRT_IFACE_SAMPLER);
    CHECK(plugin->get_iface("mcrt.sampler/999") == NULL, "an unknown revision is not NULL");
    if (iface != NULL) {
        CHECK(MCRT_HAS(iface, sample) && iface->create != NULL && iface->destroy != NULL &&
                  iface->sample != NULL,
              "the iface lacks create, destroy or sample");
        void *self = NULL;
        mcrt_status st = iface->create(&fake_host, FAKE_CFG, &self);
        CHECK(st == MCRT_OK && self != NULL, "create: %s", mcrt_status_str(st));
        if (st == MCRT_OK) {
            if (MCRT_HAS(iface, validate) && iface->validate != NULL) {
                mcrt_sampling_params p;
                memset(&p, 0, sizeof p);
                p.struct_size = sizeof p;
                p.top_p = 1.0f;
                p.repetition_penalty = 1.0f;
                CHECK(iface->validate(self, &p, 5) == MCRT_OK, "validate refused greedy");
            }
            check_sampling(iface, self);
            iface->destroy(self);
        }
    }
    if (plugin->fini != NULL)
        plugin->fini();
    CHECK(live_allocs == 0, "%d host allocations not freed", live_allocs);
    dlclose(dso);

    if (failures == 0)
        printf("sampler_smoke: %s: ok\n", argv[1]);
    return failures == 0 ? 0 : 1;
}
