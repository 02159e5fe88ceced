/*
 * tools/bench/tokenizer/bench_tokenizer.c: the gpt2-bpe tokenizer plugin's
 * speed, through the plugin ABI exactly as mcrt calls it (dlopen, get_iface,
 * create/encode/decode), on one thread.
 *
 *   bench_tokenizer PLUGIN.so VOCAB MERGES CHUNKS [--loads N] [--ids-out FILE]
 *
 * CHUNKS is the benchmark text cut into prompts (bench.py writes it): a
 * sequence of records, a 4-byte little-endian length then the bytes.
 * Prints one JSON object:
 *   load_ms        create() of a fresh instance (vocab.json + merges.txt):
 *                  median and min of N loads
 *   encode_cold    MB/s over every chunk with a fresh instance (empty cache)
 *   encode_warm    MB/s, the same instance again (cache filled)
 *   encode_whole   MB/s for the whole text as one prompt, fresh instance
 *   decode         MB/s of decoded text, every chunk's ids back to text
 *   tokens, bytes and chunks are printed for context
 * --ids-out FILE writes every chunk's ids (int32, little-endian, in order),
 * for bench.py to compare with the JavaScript reference's.
 */
#include <dlfcn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mcrt/mcrt.h"

/* ---- a minimal host: logging to stderr and a flat config ---------------------- */

typedef struct bt_kv {
    const char *key, *value;
} bt_kv;

struct mcrt_config {
    bt_kv kv[8];
    int n;
};

static const char *bt_get(const mcrt_config *cfg, const char *key)
{
    for (int i = 0; cfg != NULL && i < cfg->n; i++)
        if (strcmp(cfg->kv[i].key, key) == 0)
            return cfg->kv[i].value;
    return NULL;
}

static void bt_logv(const mcrt_host *h, int32_t level, const char *fmt, va_list ap)
{
    (void)h;
    if (level > MCRT_LOG_WARN)
        return;
    fputs("bench_tokenizer: plugin: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

static void bt_log(const mcrt_host *h, int32_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bt_logv(h, level, fmt, ap);
    va_end(ap);
}

static void *bt_alloc(const mcrt_host *h, size_t size, size_t align)
{
    void *p = NULL;
    (void)h;
    if (align < sizeof(void *))
        align = sizeof(void *);
    return posix_memalign(&p, align, size ? size : 1) == 0 ? p : NULL;
}

static void bt_free(const mcrt_host *h, void *p)
{
    (void)h;
    free(p);
}

static mcrt_status bt_bool(const mcrt_host *h, const mcrt_config *c, const char *k, bool *out)
{
    const char *v = bt_get(c, k);
    (void)h;
    if (v == NULL)
        return MCRT_E_NOTFOUND;
    *out = strcmp(v, "true") == 0;
    return MCRT_OK;
}

static mcrt_status bt_int(const mcrt_host *h, const mcrt_config *c, const char *k, int64_t *out)
{
    const char *v = bt_get(c, k);
    (void)h;
    if (v == NULL)
        return MCRT_E_NOTFOUND;
    *out = strtoll(v, NULL, 10);
    return MCRT_OK;
}

static mcrt_status bt_float(const mcrt_host *h, const mcrt_config *c, const char *k, double *out)
{
    const char *v = bt_get(c, k);
    (void)h;
    if (v == NULL)
        return MCRT_E_NOTFOUND;
    *out = strtod(v, NULL);
    return MCRT_OK;
}

static mcrt_status bt_string(const mcrt_host *h, const mcrt_config *c, const char *k,
                             const char **out)
{
    const char *v = bt_get(c, k);
    (void)h;
    if (v == NULL)
        return MCRT_E_NOTFOUND;
    *out = v;
    return MCRT_OK;
}

static mcrt_status bt_list_size(const mcrt_host *h, const mcrt_config *c, const char *k,
                                size_t *out)
{
    (void)h, (void)c, (void)k, (void)out;
    return MCRT_E_NOTFOUND;
}

static mcrt_status bt_list_item(const mcrt_host *h, const mcrt_config *c, const char *k, size_t i,
                                const char **out)
{
    (void)h, (void)c, (void)k, (void)i, (void)out;
    return MCRT_E_NOTFOUND;
}

static uint64_t bt_clock(const mcrt_host *h)
{
    struct timespec ts;
    (void)h;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const void *bt_ext(const mcrt_host *h, const char *id)
{
    (void)h, (void)id;
    return NULL;
}

static const mcrt_host bt_host = {
    MCRT_ABI_MAJOR, MCRT_ABI_MINOR, (uint32_t)sizeof(mcrt_host), NULL, bt_log, bt_logv,
    bt_alloc, bt_free, bt_bool, bt_int, bt_float, bt_string, bt_list_size, bt_list_item,
    bt_clock, bt_ext,
};

/* ---- the benchmark --------------------------------------------------------------- */

static double bt_now(void)
{
    return (double)bt_clock(NULL) / 1e9;
}

static int bt_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void *bt_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t cap = 0, n = 0, got;
    if (f == NULL) {
        perror(path);
        return NULL;
    }
    do {
        if (n == cap) {
            cap = cap ? cap * 2 : (1u << 20);
            char *nb = realloc(buf, cap);
            if (nb == NULL) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    fclose(f);
    *len = n;
    return buf;
}

int main(int argc, char **argv)
{
    int loads = 9;
    const char *ids_out = NULL;
    if (argc < 5) {
        fprintf(stderr, "usage: bench_tokenizer PLUGIN.so VOCAB MERGES CHUNKS [--loads N] "
                        "[--ids-out FILE]\n");
        return 64;
    }
    for (int i = 5; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--loads") == 0)
            loads = atoi(argv[i + 1]) > 0 ? atoi(argv[i + 1]) : 1;
        else if (strcmp(argv[i], "--ids-out") == 0)
            ids_out = argv[i + 1];
    }
    void *dl = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        fprintf(stderr, "bench_tokenizer: %s\n", dlerror());
        return 69;
    }
    const mcrt_plugin_entry *pe = dlsym(dl, "mcrt_plugin");
    const mcrt_tokenizer_iface *ti = pe ? pe->get_iface(MCRT_IFACE_TOKENIZER) : NULL;
    if (ti == NULL) {
        fprintf(stderr, "bench_tokenizer: %s is not a tokenizer plugin\n", argv[1]);
        return 69;
    }
    mcrt_config cfg = {{{"vocab_file", argv[2]}, {"merge_file", argv[3]},
                        {"parse_special_tokens", "false"}, {"cache_size", "65536"}}, 4};

    /* Chunks. */
    size_t raw_len = 0, n_chunks = 0, total = 0;
    unsigned char *raw = bt_read(argv[4], &raw_len);
    if (raw == NULL)
        return 66;
    for (size_t o = 0; o + 4 <= raw_len; n_chunks++) {
        uint32_t l = (uint32_t)raw[o] | (uint32_t)raw[o + 1] << 8 | (uint32_t)raw[o + 2] << 16 |
                     (uint32_t)raw[o + 3] << 24;
        o += 4 + l;
        total += l;
    }
    const char **chunk = calloc(n_chunks, sizeof *chunk);
    size_t *clen = calloc(n_chunks, sizeof *clen);
    char *whole = malloc(total + 1);
    if (chunk == NULL || clen == NULL || whole == NULL)
        return 69;
    for (size_t o = 0, i = 0, w = 0; i < n_chunks; i++) {
        clen[i] = (uint32_t)raw[o] | (uint32_t)raw[o + 1] << 8 | (uint32_t)raw[o + 2] << 16 |
                  (uint32_t)raw[o + 3] << 24;
        chunk[i] = (const char *)raw + o + 4;
        memcpy(whole + w, chunk[i], clen[i]);
        w += clen[i];
        o += 4 + clen[i];
    }

    /* Load time. */
    double *lt = calloc((size_t)loads, sizeof *lt);
    void *self = NULL;
    for (int i = 0; i < loads; i++) {
        double t0 = bt_now();
        if (ti->create(&bt_host, &cfg, &self) != MCRT_OK)
            return 65;
        lt[i] = (bt_now() - t0) * 1e3;
        if (i + 1 < loads)
            ti->destroy(self);
    }
    qsort(lt, (size_t)loads, sizeof *lt, bt_cmp_double);

    /* Encode: every chunk, cold then warm; ids kept for decode. */
    int32_t *ids = malloc((total + 16) * sizeof *ids);
    size_t *off = calloc(n_chunks + 1, sizeof *off);
    if (ids == NULL || off == NULL)
        return 69;
    double enc[2];
    for (int pass = 0; pass < 2; pass++) {
        double t0 = bt_now();
        size_t at = 0;
        for (size_t i = 0; i < n_chunks; i++) {
            size_t n = 0;
            if (ti->encode(self, chunk[i], clen[i], ids + at, total + 16 - at, &n) != MCRT_OK)
                return 70;
            at += n;
            off[i + 1] = at;
        }
        enc[pass] = bt_now() - t0;
    }
    size_t tokens = off[n_chunks];
    if (ids_out != NULL) {
        FILE *f = fopen(ids_out, "wb");
        if (f == NULL || fwrite(ids, sizeof *ids, tokens, f) != tokens || fclose(f) != 0) {
            perror(ids_out);
            return 73;
        }
    }

    /* Decode every chunk. */
    char *text = malloc(3 * total + 16);
    size_t out_bytes = 0;
    double t0 = bt_now();
    for (size_t i = 0; i < n_chunks; i++) {
        size_t got = 0;
        if (ti->decode(self, ids + off[i], off[i + 1] - off[i], text, 3 * total + 16, &got) !=
            MCRT_OK)
            return 70;
        out_bytes += got;
    }
    double dec = bt_now() - t0;
    ti->destroy(self);

    /* The whole text as one prompt, fresh instance. */
    if (ti->create(&bt_host, &cfg, &self) != MCRT_OK)
        return 65;
    size_t n_whole = 0;
    t0 = bt_now();
    if (ti->encode(self, whole, total, ids, total + 16, &n_whole) != MCRT_OK)
        return 70;
    double enc_whole = bt_now() - t0;
    ti->destroy(self);

    printf("{\"bytes\": %zu, \"chunks\": %zu, \"tokens\": %zu, \"tokens_whole\": %zu, "
           "\"load_ms_median\": %.1f, \"load_ms_min\": %.1f, \"loads\": %d, "
           "\"encode_cold_mbs\": %.2f, \"encode_warm_mbs\": %.2f, \"encode_whole_mbs\": %.2f, "
           "\"decode_mbs\": %.2f, \"decoded_bytes\": %zu}\n",
           total, n_chunks, tokens, n_whole, lt[loads / 2], lt[0], loads,
           (double)total / 1e6 / enc[0], (double)total / 1e6 / enc[1],
           (double)total / 1e6 / enc_whole, (double)out_bytes / 1e6 / dec, out_bytes);
    free(lt);
    free(ids);
    free(off);
    free(text);
    free(chunk);
    free(clen);
    free(whole);
    free(raw);
    dlclose(dl);
    return 0;
}
