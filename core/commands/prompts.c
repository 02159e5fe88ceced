/*
 * core/commands/prompts.c: the requests of `mcrt run` (see prompts.h).
 */
#include "commands/prompts.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "checkpoint/json.h"   /* the strict JSON reader */
#include "runtime/pipeline.h"  /* params_from_config */
#include "util/exitcode.h"     /* EXIT_* */
#include "util/strutil.h"      /* strbuf, edit_distance, xstrndup */

#define PROMPT_FILE_MAX (256u << 20)
#define PROMPTS_MAX (1u << 20)
#define JSONL_STOPS_MAX 64
#define JSONL_IDS_MAX 4096

static run_request *push(run_requests *rr, const char *s, size_t len,
                         const mcrt_sampling_params *base)
{
    if (rr->n >= PROMPTS_MAX)
        return NULL;
    if (rr->n == rr->cap) {
        size_t nc = rr->cap ? rr->cap * 2 : 16;
        run_request *ni = realloc(rr->items, nc * sizeof *ni);
        if (ni == NULL)
            return NULL;
        rr->items = ni;
        rr->cap = nc;
    }
    run_request *r = &rr->items[rr->n];
    memset(r, 0, sizeof *r);
    r->text = xstrndup(s, len);
    if (r->text == NULL)
        return NULL;
    r->len = len;
    r->params = *base;
    rr->n++;
    return r;
}

void run_requests_free(run_requests *rr)
{
    for (size_t i = 0; i < rr->n; i++) {
        run_request *r = &rr->items[i];
        free(r->text);
        free(r->custom_id);
        if (r->stop != NULL)
            for (uint32_t k = 0; k < r->params.n_stop; k++)
                free(r->stop[k]);
        free(r->stop);
        free(r->stop_ptrs);
        free(r->stop_ids);
        free(r->bias_ids);
        free(r->bias_values);
    }
    free(rr->items);
    memset(rr, 0, sizeof *rr);
}

/* ---- JSONL ------------------------------------------------------------------------ */

typedef struct jl {
    const char *file;
    size_t line;
    json_reader *r;
    char err[512];
} jl;

static bool jl_fail(jl *j, const char *fmt, ...) MCRT_PRINTF(2, 3);
static bool jl_fail(jl *j, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(j->err, sizeof j->err, "%s:%zu: %s", j->file, j->line, msg);
    return false;
}

static const char *const JSONL_KEYS[] = {
    "prompt", "id", "num_tokens_to_generate", "temperature", "top_k", "top_p", "min_p",
    "repetition_penalty", "presence_penalty", "frequency_penalty", "seed", "return_log_probs",
    "top_n_logprobs", "return_segments", "ignore_eos", "add_bos", "compat", "stop",
    "stop_token_ids", "logit_bias", NULL,
};

static bool jl_number(jl *j, const char *key, double lo, double hi, double *out)
{
    json_number num;
    if (json_peek(j->r) != JSON_NUMBER || !json_read_number(j->r, &num))
        return jl_fail(j, "\"%s\": expected a number", key);
    char tmp[64];
    size_t n = num.len < sizeof tmp - 1 ? num.len : sizeof tmp - 1;
    memcpy(tmp, num.text, n);
    tmp[n] = '\0';
    double v = strtod(tmp, NULL);
    if (!isfinite(v) || v < lo || v > hi)
        return jl_fail(j, "\"%s\" = %s: expected a number in [%g, %g]", key, tmp, lo, hi);
    *out = v;
    return true;
}

static bool jl_int(jl *j, const char *key, int64_t lo, int64_t hi, int64_t *out)
{
    json_number num;
    if (json_peek(j->r) != JSON_NUMBER || !json_read_number(j->r, &num) || !num.is_integer ||
        num.overflow)
        return jl_fail(j, "\"%s\": expected an integer", key);
    if (num.value < lo || num.value > hi)
        return jl_fail(j, "\"%s\" = %lld: expected %lld .. %lld", key, (long long)num.value,
                       (long long)lo, (long long)hi);
    *out = num.value;
    return true;
}

static bool jl_bool(jl *j, const char *key, uint8_t *out)
{
    json_kind k = json_peek(j->r);
    if (k != JSON_TRUE && k != JSON_FALSE)
        return jl_fail(j, "\"%s\": expected true or false", key);
    json_skip(j->r);
    *out = k == JSON_TRUE;
    return true;
}

static bool jl_stop(jl *j, run_request *req)
{
    json_kind k = json_peek(j->r);
    req->stop = calloc(JSONL_STOPS_MAX, sizeof *req->stop);
    req->stop_ptrs = calloc(JSONL_STOPS_MAX, sizeof *req->stop_ptrs);
    if (req->stop == NULL || req->stop_ptrs == NULL)
        return jl_fail(j, "out of memory");
    uint32_t n = 0;
    if (k == JSON_STRING || k == JSON_ARRAY) {
        bool arr = k == JSON_ARRAY;
        if (arr && !json_open_array(j->r))
            return jl_fail(j, "\"stop\": %s", json_error(j->r));
        for (;;) {
            if (arr) {
                int more = json_next_item(j->r);
                if (more < 0)
                    return jl_fail(j, "\"stop\": %s", json_error(j->r));
                if (more == 0)
                    break;
            }
            const char *s;
            size_t len;
            if (json_peek(j->r) != JSON_STRING || !json_read_string(j->r, &s, &len))
                return j->r->failed ? jl_fail(j, "\"stop\": %s", json_error(j->r))
                                    : jl_fail(j, "\"stop\": expected a string or a list of "
                                                 "strings");
            if (len == 0)
                return jl_fail(j, "\"stop\": stop string %u is empty", n);
            if (memchr(s, '\0', len) != NULL)
                return jl_fail(j, "\"stop\": stop string %u holds a NUL character", n);
            if (n >= JSONL_STOPS_MAX)
                return jl_fail(j, "\"stop\": more than %d stop strings", JSONL_STOPS_MAX);
            req->stop[n] = xstrndup(s, len);
            req->stop_ptrs[n] = req->stop[n];
            n++;
            if (!arr)
                break;
        }
    } else {
        return jl_fail(j, "\"stop\": expected a string or a list of strings");
    }
    req->params.stop = req->stop_ptrs;
    req->params.n_stop = n;
    return true;
}

static bool jl_stop_ids(jl *j, run_request *req)
{
    if (!json_open_array(j->r))
        return jl_fail(j, "\"stop_token_ids\": expected a list of token ids");
    req->stop_ids = calloc(JSONL_IDS_MAX, sizeof *req->stop_ids);
    if (req->stop_ids == NULL)
        return jl_fail(j, "out of memory");
    uint32_t n = 0;
    int more;
    while ((more = json_next_item(j->r)) == 1) {
        int64_t v;
        if (n >= JSONL_IDS_MAX)
            return jl_fail(j, "\"stop_token_ids\": more than %d ids", JSONL_IDS_MAX);
        if (!jl_int(j, "stop_token_ids", 0, INT32_MAX, &v))
            return false;
        req->stop_ids[n++] = (int32_t)v;
    }
    if (more < 0)
        return jl_fail(j, "\"stop_token_ids\": %s", json_error(j->r));
    req->params.stop_token_ids = req->stop_ids;
    req->params.n_stop_token_ids = n;
    return true;
}

/* OpenAI's shape: {"50256": -100, "11": 5.5}: token id (as a string) -> bias. */
static bool jl_logit_bias(jl *j, run_request *req)
{
    if (!json_open_object(j->r))
        return jl_fail(j, "\"logit_bias\": expected an object of \"token id\": bias");
    req->bias_ids = calloc(JSONL_IDS_MAX, sizeof *req->bias_ids);
    req->bias_values = calloc(JSONL_IDS_MAX, sizeof *req->bias_values);
    if (req->bias_ids == NULL || req->bias_values == NULL)
        return jl_fail(j, "out of memory");
    uint32_t n = 0;
    const char *key;
    size_t kl;
    int more;
    while ((more = json_next_member(j->r, &key, &kl)) == 1) {
        char ks[32];
        if (kl == 0 || kl >= sizeof ks)
            return jl_fail(j, "\"logit_bias\": a key must be a token id");
        memcpy(ks, key, kl);
        ks[kl] = '\0';
        char *end = NULL;
        long long id = strtoll(ks, &end, 10);
        if (*end != '\0' || id < 0 || id > INT32_MAX || ks[0] == '-' || ks[0] == '+')
            return jl_fail(j, "\"logit_bias\": key \"%s\" is not a token id (a non-negative "
                           "integer in quotes)", ks);
        if (n >= JSONL_IDS_MAX)
            return jl_fail(j, "\"logit_bias\": more than %d entries", JSONL_IDS_MAX);
        double v;
        if (!jl_number(j, "logit_bias", -100.0, 100.0, &v))
            return false;
        req->bias_ids[n] = (int32_t)id;
        req->bias_values[n] = (float)v;
        n++;
    }
    if (more < 0)
        return jl_fail(j, "\"logit_bias\": %s", json_error(j->r));
    req->params.logit_bias_ids = req->bias_ids;
    req->params.logit_bias_values = req->bias_values;
    req->params.n_logit_bias = n;
    return true;
}

/* One line: an object with "prompt" and parameters. */
static bool jl_line(jl *j, run_requests *rr, const char *text, size_t len,
                    const mcrt_sampling_params *base, bool top_p_set)
{
    json_reader r;
    json_init(&r, text, len, 0, 8);
    j->r = &r;
    bool ok = true;
    run_request *req = NULL;
    if (!json_open_object(&r)) {
        ok = jl_fail(j, "expected one JSON object per line (%s)", json_error(&r));
        goto out;
    }
    req = push(rr, "", 0, base);
    if (req == NULL) {
        ok = jl_fail(j, "more than %u prompts, or out of memory", PROMPTS_MAX);
        goto out;
    }
    bool have_prompt = false, line_top_p = false;
    const char *key;
    size_t kl;
    int more;
    while (ok && (more = json_next_member(&r, &key, &kl)) == 1) {
        char k[40];
        if (kl >= sizeof k || memchr(key, '\0', kl) != NULL) {
            ok = jl_fail(j, "unknown key (too long)");
            break;
        }
        memcpy(k, key, kl);
        k[kl] = '\0';
        mcrt_sampling_params *p = &req->params;
        double d;
        int64_t i;
        if (strcmp(k, "prompt") == 0) {
            const char *s;
            size_t sl;
            if (json_peek(&r) != JSON_STRING || !json_read_string(&r, &s, &sl)) {
                ok = r.failed ? jl_fail(j, "\"prompt\": %s", json_error(&r))
                              : jl_fail(j, "\"prompt\": expected a string");
                break;
            }
            free(req->text);
            req->text = xstrndup(s, sl);
            req->len = sl;
            have_prompt = req->text != NULL;
        } else if (strcmp(k, "id") == 0) {
            json_kind kind = json_peek(&r);
            if (kind == JSON_STRING) {
                const char *s;
                size_t sl;
                json_read_string(&r, &s, &sl);
                if (sl == 0 || memchr(s, '\0', sl) != NULL) {
                    ok = jl_fail(j, "\"id\": expected a non-empty string or an integer");
                    break;
                }
                req->custom_id = xstrndup(s, sl);
            } else if (kind == JSON_NUMBER) {
                json_number num;
                json_read_number(&r, &num);
                if (!num.is_integer || num.overflow) {
                    ok = jl_fail(j, "\"id\": expected a non-empty string or an integer");
                    break;
                }
                req->custom_id = xstrndup(num.text, num.len);
            } else {
                ok = jl_fail(j, "\"id\": expected a non-empty string or an integer");
                break;
            }
            for (size_t q = 0; q + 1 < rr->n && req->custom_id != NULL; q++)
                if (rr->items[q].custom_id != NULL &&
                    strcmp(rr->items[q].custom_id, req->custom_id) == 0) {
                    ok = jl_fail(j, "\"id\": \"%s\" is already the id of request %zu; ids "
                                 "must be unique", req->custom_id, q);
                    break;
                }
        } else if (strcmp(k, "num_tokens_to_generate") == 0) {
            if ((ok = jl_int(j, k, 0, INT32_MAX, &i)))
                p->num_tokens_to_generate = (int32_t)i;
        } else if (strcmp(k, "temperature") == 0) {
            if ((ok = jl_number(j, k, 0.0, 100.0, &d)))
                p->temperature = (float)d;
        } else if (strcmp(k, "top_k") == 0) {
            if ((ok = jl_int(j, k, 0, INT32_MAX, &i)))
                p->top_k = (int32_t)i;
        } else if (strcmp(k, "top_p") == 0) {
            if ((ok = jl_number(j, k, 0.0, 1.0, &d))) {
                p->top_p = (float)d;
                line_top_p = true;
            }
        } else if (strcmp(k, "min_p") == 0) {
            if ((ok = jl_number(j, k, 0.0, 1.0, &d)))
                p->min_p = (float)d;
        } else if (strcmp(k, "repetition_penalty") == 0) {
            if ((ok = jl_number(j, k, 0.0, 1e6, &d)) && d <= 0.0)
                ok = jl_fail(j, "\"repetition_penalty\": must be > 0 (1 = off)");
            if (ok)
                p->repetition_penalty = (float)d;
        } else if (strcmp(k, "presence_penalty") == 0) {
            if ((ok = jl_number(j, k, -2.0, 2.0, &d)))
                p->presence_penalty = (float)d;
        } else if (strcmp(k, "frequency_penalty") == 0) {
            if ((ok = jl_number(j, k, -2.0, 2.0, &d)))
                p->frequency_penalty = (float)d;
        } else if (strcmp(k, "seed") == 0) {
            if ((ok = jl_int(j, k, -1, INT64_MAX, &i))) {
                p->seed = i;
                req->own_seed = true;
            }
        } else if (strcmp(k, "return_log_probs") == 0) {
            ok = jl_bool(j, k, &p->return_log_probs);
        } else if (strcmp(k, "top_n_logprobs") == 0) {
            if ((ok = jl_int(j, k, 0, 20, &i)))
                p->top_n_logprobs = (int32_t)i;
        } else if (strcmp(k, "return_segments") == 0) {
            ok = jl_bool(j, k, &p->return_segments);
        } else if (strcmp(k, "ignore_eos") == 0) {
            ok = jl_bool(j, k, &p->ignore_eos);
        } else if (strcmp(k, "add_bos") == 0) {
            ok = jl_bool(j, k, &p->add_bos);
        } else if (strcmp(k, "compat") == 0) {
            const char *s;
            size_t sl;
            if (json_peek(&r) != JSON_STRING || !json_read_string(&r, &s, &sl) ||
                !(json_eq(s, sl, "default") || json_eq(s, sl, "megatron")))
                ok = jl_fail(j, "\"compat\": expected \"default\" or \"megatron\"");
            else
                p->compat = json_eq(s, sl, "megatron") ? MCRT_COMPAT_MEGATRON
                                                       : MCRT_COMPAT_DEFAULT;
        } else if (strcmp(k, "stop") == 0) {
            ok = jl_stop(j, req);
        } else if (strcmp(k, "stop_token_ids") == 0) {
            ok = jl_stop_ids(j, req);
        } else if (strcmp(k, "logit_bias") == 0) {
            ok = jl_logit_bias(j, req);
        } else {
            const char *best = NULL;
            size_t bd = (size_t)-1;
            for (int q = 0; JSONL_KEYS[q] != NULL; q++) {
                size_t dd = edit_distance(k, JSONL_KEYS[q]);
                if (dd < bd) {
                    bd = dd;
                    best = JSONL_KEYS[q];
                }
            }
            if (best != NULL && bd <= 3)
                ok = jl_fail(j, "unknown key \"%s\" (did you mean \"%s\"?)", k, best);
            else
                ok = jl_fail(j, "unknown key \"%s\"", k);
        }
    }
    if (ok && (r.failed || !json_finish(&r)))
        ok = jl_fail(j, "not valid JSON: %s (at byte %zu of the line)", json_error(&r),
                     r.err_offset);
    if (ok && !have_prompt)
        ok = jl_fail(j, "no \"prompt\"");
    if (ok && !top_p_set && !line_top_p)
        req->params.top_p = req->params.compat == MCRT_COMPAT_MEGATRON ? 0.0f : 1.0f;
out:
    json_fini(&r);
    return ok;
}

/* ---- files ------------------------------------------------------------------------ */

static bool looks_jsonl(const char *file, const char *data, size_t n)
{
    size_t fl = strlen(file);
    if (fl >= 6 && strcmp(file + fl - 6, ".jsonl") == 0)
        return true;
    for (size_t i = 0; i < n; i++) {
        if (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r')
            continue;
        return data[i] == '{';
    }
    return false;
}

static int read_file(const char *file, strbuf *all)
{
    struct stat st;
    if (stat(file, &st) != 0) {
        fprintf(stderr, "mcrt run: generation.prompt_file %s: %s\n", file, strerror(errno));
        return EXIT_NOINPUT;
    }
    if (S_ISDIR(st.st_mode)) {
        fprintf(stderr, "mcrt run: generation.prompt_file %s: is a directory, expected a text "
                        "file with one prompt per line (or JSONL)\n", file);
        return EXIT_NOINPUT;
    }
    FILE *f = fopen(file, "rb");
    if (f == NULL) {
        fprintf(stderr, "mcrt run: generation.prompt_file %s: %s\n", file, strerror(errno));
        return EXIT_NOINPUT;
    }
    char buf[65536];
    size_t got;
    int rc = EXIT_OK;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) {
        if (all->len + got > PROMPT_FILE_MAX) {
            fprintf(stderr, "mcrt run: generation.prompt_file %s: larger than %u MiB\n", file,
                    PROMPT_FILE_MAX >> 20);
            rc = EXIT_DATAERR;
            break;
        }
        strbuf_append(all, buf, got);
    }
    if (rc == EXIT_OK && (ferror(f) || all->failed)) {
        fprintf(stderr, "mcrt run: generation.prompt_file %s: read error\n", file);
        rc = EXIT_NOINPUT;
    }
    fclose(f);
    return rc;
}

/* generation.seed is the run's seed (Megatron's --seed): request i draws from
 * seed + i, so the requests of a run get independent random streams (as rows
 * of Megatron's batch do) while each stays reproducible whatever its batch. A
 * request that sets its own seed (JSONL) keeps it; -1 stays nondeterministic. */
static void spread_seeds(run_requests *rr)
{
    for (size_t i = 0; i < rr->n; i++) {
        run_request *r = &rr->items[i];
        if (!r->own_seed && r->params.seed >= 0)
            r->params.seed = (int64_t)((uint64_t)r->params.seed + (uint64_t)i) & INT64_MAX;
    }
}

int run_requests_read(const mcrt_config *gen, run_requests *rr)
{
    mcrt_sampling_params base;
    params_from_config(gen, &base, rr->stop_storage, 64);
    double tp;
    bool top_p_set = cfg_get_float(gen, "top_p", &tp) == MCRT_OK;
    const char *file = NULL;
    if (cfg_get_string(gen, "prompt_file", &file) == MCRT_OK && file != NULL) {
        strbuf all = {0};
        int rc = read_file(file, &all);
        if (rc != EXIT_OK) {
            strbuf_free(&all);
            return rc;
        }
        const char *d = all.data ? all.data : "";
        bool jsonl = looks_jsonl(file, d, all.len);
        jl j = {file, 0, NULL, ""};
        size_t pos = 0;
        while (pos < all.len && rc == EXIT_OK) {
            const char *nl = memchr(d + pos, '\n', all.len - pos);
            size_t end = nl ? (size_t)(nl - d) : all.len, len = end - pos;
            j.line++;
            if (len > 0 && d[pos + len - 1] == '\r')
                len--;
            bool blank = true;
            for (size_t q = 0; q < len && blank; q++)
                blank = d[pos + q] == ' ' || d[pos + q] == '\t';
            if (jsonl) {
                if (!blank && !jl_line(&j, rr, d + pos, len, &base, top_p_set)) {
                    fprintf(stderr, "mcrt run: %s\n", j.err);
                    rc = EXIT_DATAERR;
                }
            } else if (len > 0 && push(rr, d + pos, len, &base) == NULL) {
                fprintf(stderr, "mcrt run: generation.prompt_file %s: more than %u prompts or "
                                "out of memory\n", file, PROMPTS_MAX);
                rc = EXIT_DATAERR;
            }
            pos = end + 1;
        }
        strbuf_free(&all);
        spread_seeds(rr);
        if (rc == EXIT_OK && rr->n == 0) {
            fprintf(stderr, "mcrt run: generation.prompt_file %s: no prompts (the file has no "
                            "non-empty line)\n", file);
            rc = EXIT_DATAERR;
        }
        return rc;
    }
    size_t n = 0;
    if (cfg_list_size(gen, "prompts", &n) == MCRT_OK && n > 0) {
        for (size_t i = 0; i < n; i++) {
            const char *s;
            if (cfg_list_item(gen, "prompts", i, &s) != MCRT_OK ||
                push(rr, s, strlen(s), &base) == NULL) {
                fprintf(stderr, "mcrt run: out of memory reading prompts\n");
                return EXIT_UNAVAILABLE;
            }
        }
        spread_seeds(rr);
        return EXIT_OK;
    }
    fprintf(stderr, "mcrt run: no prompts: give --prompts P..., -p P, --prompt-file F, or "
                    "generation.prompts in the YAML\n");
    return EXIT_USAGE;
}
