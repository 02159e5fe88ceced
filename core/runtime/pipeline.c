/*
 * core/runtime/pipeline.c: wiring, the pipeline services and request records.
 * See pipeline.h.
 */
#include "runtime/pipeline.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mcrt/controller.h"    /* mcrt_controller_iface */
#include "mcrt/engine.h"        /* mcrt_engine_iface */
#include "mcrt/sampler.h"       /* mcrt_sampler_iface */
#include "mcrt/tokenizer.h"     /* mcrt_tokenizer_iface */
#include "runtime/host.h"       /* host_ctx */
#include "runtime/kvalloc.h"    /* kv_alloc */
#include "runtime/model_group.h"/* model_group */
#include "util/exitcode.h"       /* exit_code_for_status */
#include "util/strutil.h"       /* strbuf */

/* One instance of a single-instance kind. */
typedef struct component {
    plugin_entry *pe;
    const void *iface;
    void *self;
    host_ctx *hctx;
} component;

typedef struct req_rec {
    mcrt_request pub;          /* what plugins see; first, so &rec->pub == rec */
    char *prompt;              /* copy, NUL-terminated */
    char *custom_id;           /* the user's id for it (JSONL "id"), or NULL */
    mcrt_sampling_params params;
    int32_t *prompt_tokens;
    size_t n_prompt_tokens;
    float *prompt_logprobs;
    size_t n_prompt_logprobs;
    int32_t *tokens;
    float *logprobs;           /* parallel to tokens when every update had logprobs */
    bool logprobs_ok;
    size_t n_tokens, cap_tokens;
    strbuf text;
    strbuf segments;           /* pieces back to back */
    size_t *seg_lens;          /* [n_segments] */
    size_t n_segments;
    int32_t *top_ids;          /* top-N alternatives: [n_top] entries, ... */
    float *top_lps;
    size_t *top_lens;          /* ...their text lengths, back to back in top_text */
    strbuf top_text;
    size_t *top_counts;        /* [n_top_pos] entries per generated position */
    size_t n_top, n_top_pos;
    uint32_t status, finish_reason;
    char *error;
    bool final_text;           /* FINISH carried the final text; else the core detokenizes */
    bool stream_started;       /* streaming: header printed */
    size_t streamed;           /* streaming: bytes of text already printed */
    uint64_t first_token_ns, done_ns;
} req_rec;

struct pipeline {
    const log_sink *log;
    cfg_tree *cfg;
    registry *reg;
    component tok, smp, ctl, eng;
    plugin_entry *model_pe;
    model_group *models;
    kv_alloc *kv;
    pthread_mutex_t kv_mu;
    req_rec **reqs;
    size_t n_reqs, cap_reqs;
    pthread_mutex_t err_mu;
    char last_error[1024];
    FILE *stream;              /* text streaming target, or NULL */
    FILE *progress;            /* progress line target (a terminal), or NULL */
    uint64_t run_start_ns, progress_last_ns;
    bool progress_shown;
    pipeline_stats stats;
    size_t stream_cursor;      /* the request being streamed: all before it are printed */
};

static mcrt_status pipeline_run_engine(pipeline *p);

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void pipeline_note_errorv(pipeline *p, const char *tag, const char *fmt, va_list ap)
{
    char msg[900];
    vsnprintf(msg, sizeof msg, fmt, ap);
    pthread_mutex_lock(&p->err_mu);
    snprintf(p->last_error, sizeof p->last_error, "[%s] %s", tag, msg);
    pthread_mutex_unlock(&p->err_mu);
}

/* Set the last error from core code (instances go through host->log). */
static void set_error(pipeline *p, const char *tag, const char *fmt, ...) MCRT_PRINTF(3, 4);
static void set_error(pipeline *p, const char *tag, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pipeline_note_errorv(p, tag, fmt, ap);
    va_end(ap);
}

const char *pipeline_last_error(const pipeline *p) { return p->last_error; }

static pipeline *pipe_of(const mcrt_host *h) { return host_ctx_of(h)->pipe; }

/* ---- pipeline services: what engines and controllers call ------------------ */

static mcrt_status svc_tokenizer_info(const mcrt_host *h, mcrt_tokenizer_info *out)
{
    pipeline *p = pipe_of(h);
    const mcrt_tokenizer_iface *t = p->tok.iface;
    if (out == NULL)
        return MCRT_E_INVAL;
    return t->info(p->tok.self, out);
}

static mcrt_status svc_tokenize(const mcrt_host *h, const char *text, size_t len, int32_t *ids,
                                size_t cap, size_t *out_n)
{
    pipeline *p = pipe_of(h);
    const mcrt_tokenizer_iface *t = p->tok.iface;
    if ((text == NULL && len > 0) || out_n == NULL || (ids == NULL && cap > 0))
        return MCRT_E_INVAL;
    return t->encode(p->tok.self, text ? text : "", len, ids, cap, out_n);
}

static mcrt_status svc_detokenize(const mcrt_host *h, const int32_t *ids, size_t n, char *buf,
                                  size_t cap, size_t *out_len)
{
    pipeline *p = pipe_of(h);
    const mcrt_tokenizer_iface *t = p->tok.iface;
    if ((ids == NULL && n > 0) || out_len == NULL || (buf == NULL && cap > 0))
        return MCRT_E_INVAL;
    return t->decode(p->tok.self, ids, n, buf, cap, out_len);
}

static mcrt_status svc_token_bytes(const mcrt_host *h, int32_t id, char *buf, size_t cap,
                                   size_t *out_len)
{
    pipeline *p = pipe_of(h);
    const mcrt_tokenizer_iface *t = p->tok.iface;
    if (out_len == NULL || (buf == NULL && cap > 0))
        return MCRT_E_INVAL;
    return t->token_bytes(p->tok.self, id, buf, cap, out_len);
}

static mcrt_status svc_model_info(const mcrt_host *h, mcrt_model_info *out)
{
    pipeline *p = pipe_of(h);
    if (out == NULL || out->struct_size == 0)
        return MCRT_E_INVAL;
    const mcrt_model_info *mi = model_group_info(p->models);
    uint32_t n = out->struct_size < sizeof *mi ? out->struct_size : (uint32_t)sizeof *mi;
    uint32_t keep = out->struct_size;
    memcpy(out, mi, n);
    out->struct_size = keep;
    return MCRT_OK;
}

/* Check a step batch against the model before any rank sees it, so a plugin
 * bug in an engine or controller is an error with a message, not a crash. */
static mcrt_status check_batch(pipeline *p, const mcrt_step_batch *b)
{
    const mcrt_model_info *mi = model_group_info(p->models);
    const char *why = NULL;
    if (b == NULL || !MCRT_HAS(b, n_blocks))
        why = "batch missing or struct_size too small";
    else if (b->n_tokens == 0)
        why = "empty batch";
    else if (b->tokens == NULL || b->positions == NULL || b->seq_index == NULL ||
             b->want_logits == NULL || b->context_len == NULL || b->block_tables == NULL ||
             b->n_blocks == NULL)
        why = "a per-token or per-sequence array is NULL";
    if (why == NULL) {
        uint32_t nl = 0;
        for (uint32_t i = 0; i < b->n_tokens && why == NULL; i++) {
            if (b->seq_index[i] < 0 || (uint32_t)b->seq_index[i] >= b->n_seqs)
                why = "seq_index out of range";
            else if (b->positions[i] < 0 || b->positions[i] >= mi->max_sequence_length)
                why = "position outside [0, max_sequence_length)";
            else if (b->tokens[i] < 0 || b->tokens[i] >= mi->padded_vocab_size)
                why = "token id outside the vocabulary";
            nl += b->want_logits[i] ? 1u : 0u;
        }
        if (why == NULL && nl != b->n_logits)
            why = "n_logits differs from the number of want_logits flags";
        for (uint32_t s = 0; s < b->n_seqs && why == NULL; s++) {
            if (b->n_blocks[s] < 0 || (b->n_blocks[s] > 0 && b->block_tables[s] == NULL))
                why = "bad block table";
            for (int32_t k = 0; why == NULL && k < b->n_blocks[s]; k++)
                if (b->block_tables[s][k] < 0 || b->block_tables[s][k] >= mi->kv_num_blocks)
                    why = "block id outside the KV pool";
        }
    }
    if (why != NULL) {
        log_msg(p->log, MCRT_LOG_ERROR, "runtime", "model_step: invalid step batch: %s", why);
        set_error(p, "runtime", "model_step: invalid step batch: %s", why);
        return MCRT_E_INVAL;
    }
    return MCRT_OK;
}

static mcrt_status svc_model_step(const mcrt_host *h, const mcrt_step_batch *batch, float *logits)
{
    pipeline *p = pipe_of(h);
    mcrt_status st = check_batch(p, batch);
    if (st != MCRT_OK)
        return st;
    if (batch->n_logits > 0 && logits == NULL)
        return MCRT_E_INVAL;
    uint64_t t0 = now_ns();
    st = model_group_step(p->models, batch, logits);
    uint64_t t1 = now_ns();
    /* a step that runs more tokens than sequences holds prompt chunks: prefill */
    if (batch->n_tokens > batch->n_seqs) {
        p->stats.prefill_ns += t1 - t0;
        p->stats.prefill_steps++;
        p->stats.prefill_tokens += batch->n_tokens;
    } else {
        p->stats.decode_ns += t1 - t0;
        p->stats.decode_steps++;
    }
    if (p->progress != NULL && t1 - p->run_start_ns > 2000000000ull &&
        t1 - p->progress_last_ns > 250000000ull) {
        size_t done = 0, gen = 0;
        for (size_t i = 0; i < p->n_reqs; i++) {
            done += p->reqs[i]->status == MCRT_REQ_COMPLETED ||
                    p->reqs[i]->status == MCRT_REQ_FAILED;
            gen += p->reqs[i]->n_tokens;
        }
        double el = (double)(t1 - p->run_start_ns) / 1e9;
        fprintf(p->progress, "\rmcrt: %zu/%zu requests done, %zu tokens generated, %.1f tok/s, "
                "%.0f s \033[K", done, p->n_reqs, gen, (double)gen / el, el);
        fflush(p->progress);
        p->progress_last_ns = t1;
        p->progress_shown = true;
    }
    return st;
}

void pipeline_set_progress(pipeline *p, FILE *out) { p->progress = out; }

void pipeline_get_stats(const pipeline *p, pipeline_stats *out) { *out = p->stats; }

static mcrt_status svc_kv_alloc(const mcrt_host *h, uint32_t n, int32_t *out)
{
    pipeline *p = pipe_of(h);
    if (out == NULL && n > 0)
        return MCRT_E_INVAL;
    pthread_mutex_lock(&p->kv_mu);
    mcrt_status st = kv_alloc_take(p->kv, n, out);
    pthread_mutex_unlock(&p->kv_mu);
    return st;
}

static void svc_kv_free(const mcrt_host *h, const int32_t *blocks, uint32_t n)
{
    pipeline *p = pipe_of(h);
    if (blocks == NULL)
        return;
    pthread_mutex_lock(&p->kv_mu);
    uint32_t bad = kv_alloc_give(p->kv, blocks, n);
    pthread_mutex_unlock(&p->kv_mu);
    if (bad > 0)
        log_msg(p->log, MCRT_LOG_WARN, host_ctx_of(h)->tag,
                "kv_free: %u block ids were not allocated (double free?), ignored", bad);
}

static uint32_t svc_kv_free_blocks(const mcrt_host *h)
{
    pipeline *p = pipe_of(h);
    pthread_mutex_lock(&p->kv_mu);
    uint32_t n = kv_alloc_free_count(p->kv);
    pthread_mutex_unlock(&p->kv_mu);
    return n;
}

static mcrt_status svc_sample(const mcrt_host *h, const mcrt_sample_batch *b, int32_t *out_tokens,
                              float *out_logprobs)
{
    pipeline *p = pipe_of(h);
    const mcrt_sampler_iface *s = p->smp.iface;
    if (b == NULL || out_tokens == NULL || b->logits == NULL || b->params == NULL)
        return MCRT_E_INVAL;
    mcrt_status st = s->sample(p->smp.self, b, out_tokens, out_logprobs);
    if (st != MCRT_OK)
        return st;
    for (uint32_t r = 0; r < b->n_rows; r++)
        if (out_tokens[r] < 0 || out_tokens[r] >= b->padded_vocab_size) {
            log_msg(p->log, MCRT_LOG_ERROR, p->smp.hctx->tag,
                    "sampler returned token %d outside [0, %d)", out_tokens[r],
                    b->padded_vocab_size);
            return MCRT_E_INTERNAL;
        }
    return MCRT_OK;
}

static mcrt_status svc_sampler_validate(const mcrt_host *h, const mcrt_sampling_params *params)
{
    pipeline *p = pipe_of(h);
    const mcrt_sampler_iface *s = p->smp.iface;
    if (params == NULL)
        return MCRT_E_INVAL;
    if (!MCRT_HAS(s, validate) || s->validate == NULL)
        return MCRT_OK;
    return s->validate(p->smp.self, params, model_group_info(p->models)->vocab_size);
}

static mcrt_status svc_generate_static(const mcrt_host *h, mcrt_request *const *reqs, size_t n)
{
    pipeline *p = pipe_of(h);
    const mcrt_controller_iface *c = p->ctl.iface;
    if (reqs == NULL && n > 0)
        return MCRT_E_INVAL;
    return c->generate_static(p->ctl.self, reqs, n);
}

static req_rec *find_rec(pipeline *p, const mcrt_request *req)
{
    /* Only pointers the core handed out are accepted. */
    if (req == NULL)
        return NULL;
    for (size_t i = 0; i < p->n_reqs; i++)
        if (&p->reqs[i]->pub == req)
            return p->reqs[i];
    return NULL;
}

static bool valid_status(uint32_t s)
{
    return s >= MCRT_REQ_WAITING_IN_QUEUE && s <= MCRT_REQ_FAILED;
}

/* Streaming: print requests in id order as their bytes arrive. The request
 * at the cursor is printed live; later ones are held in their records and
 * caught up when the cursor reaches them, so the output equals a non-streamed
 * run's order. Streamed bytes are the tokens' raw bytes. */
static void stream_flush(pipeline *p)
{
    while (p->stream != NULL && p->stream_cursor < p->n_reqs) {
        req_rec *r = p->reqs[p->stream_cursor];
        if (!r->stream_started) {
            fprintf(p->stream, "--- request %llu ---\n", (unsigned long long)r->pub.id);
            fwrite(r->prompt, 1, r->pub.prompt_len, p->stream);
            r->stream_started = true;
        }
        if (r->text.len > r->streamed) {
            fwrite(r->text.data + r->streamed, 1, r->text.len - r->streamed, p->stream);
            r->streamed = r->text.len;
        }
        if (r->status != MCRT_REQ_COMPLETED && r->status != MCRT_REQ_FAILED)
            break;
        if (r->status == MCRT_REQ_FAILED)
            fprintf(p->stream, "\n[error: %s]", r->error ? r->error : "failed");
        fputc('\n', p->stream);
        p->stream_cursor++;
    }
    if (p->stream != NULL)
        fflush(p->stream);
}

void pipeline_set_stream(pipeline *p, FILE *out) { p->stream = out; }

static mcrt_status request_update(pipeline *p, const char *tag, mcrt_request *req,
                                  const mcrt_request_update *u);

static mcrt_status svc_request_update(const mcrt_host *h, mcrt_request *req,
                                      const mcrt_request_update *u)
{
    pipeline *p = pipe_of(h);
    mcrt_status st = request_update(p, host_ctx_of(h)->tag, req, u);
    if (st == MCRT_OK && p->stream != NULL && u != NULL &&
        (u->kind == MCRT_UPDATE_TOKENS || u->kind == MCRT_UPDATE_FINISH))
        stream_flush(p);
    return st;
}

static mcrt_status request_update(pipeline *p, const char *tag, mcrt_request *req,
                                  const mcrt_request_update *u)
{
    req_rec *r = find_rec(p, req);
    if (r == NULL || u == NULL || !MCRT_HAS(u, error)) {
        log_msg(p->log, MCRT_LOG_ERROR, tag, "request_update: %s",
                r == NULL ? "not a request of this pipeline" : "update missing or too small");
        return MCRT_E_INVAL;
    }
    if ((u->n > 0 && u->tokens == NULL && u->kind != MCRT_UPDATE_PROMPT_LOGPROBS &&
         u->kind != MCRT_UPDATE_SEGMENTS) ||
        (u->text_len > 0 && u->text == NULL)) {
        log_msg(p->log, MCRT_LOG_ERROR, tag, "request_update: NULL array with a non-zero length");
        return MCRT_E_INVAL;
    }
    if (r->status == MCRT_REQ_COMPLETED || r->status == MCRT_REQ_FAILED) {
        log_msg(p->log, MCRT_LOG_ERROR, tag, "request_update: request %llu is already finished",
                (unsigned long long)r->pub.id);
        return MCRT_E_INVAL;
    }
    switch (u->kind) {
    case MCRT_UPDATE_STATUS:
        if (!valid_status(u->status) || u->status == MCRT_REQ_COMPLETED ||
            u->status == MCRT_REQ_FAILED) {
            log_msg(p->log, MCRT_LOG_ERROR, tag,
                    "request_update: status %u is not a pool status (finish with "
                    "MCRT_UPDATE_FINISH)",
                    u->status);
            return MCRT_E_INVAL;
        }
        r->status = u->status;
        r->pub.status = u->status;
        return MCRT_OK;
    case MCRT_UPDATE_PROMPT_TOKENS: {
        int32_t *t = malloc((u->n ? u->n : 1) * sizeof *t);
        if (t == NULL)
            return MCRT_E_NOMEM;
        if (u->n)
            memcpy(t, u->tokens, u->n * sizeof *t);
        free(r->prompt_tokens);
        r->prompt_tokens = t;
        r->n_prompt_tokens = u->n;
        r->pub.prompt_tokens = t;
        r->pub.n_prompt_tokens = u->n;
        return MCRT_OK;
    }
    case MCRT_UPDATE_PROMPT_LOGPROBS: {
        if (u->n > 0 && u->logprobs == NULL)
            return MCRT_E_INVAL;
        float *l = malloc((u->n ? u->n : 1) * sizeof *l);
        if (l == NULL)
            return MCRT_E_NOMEM;
        if (u->n)
            memcpy(l, u->logprobs, u->n * sizeof *l);
        free(r->prompt_logprobs);
        r->prompt_logprobs = l;
        r->n_prompt_logprobs = u->n;
        return MCRT_OK;
    }
    case MCRT_UPDATE_TOKENS: {
        if (r->n_tokens + u->n > r->cap_tokens) {
            size_t nc = r->cap_tokens ? r->cap_tokens : 16;
            while (nc < r->n_tokens + u->n)
                nc *= 2;
            int32_t *nt = realloc(r->tokens, nc * sizeof *nt);
            if (nt == NULL)
                return MCRT_E_NOMEM;
            r->tokens = nt;
            float *nl = realloc(r->logprobs, nc * sizeof *nl);
            if (nl == NULL)
                return MCRT_E_NOMEM;
            r->logprobs = nl;
            r->cap_tokens = nc;
        }
        if (u->n > 0) {
            if (r->n_tokens == 0)
                r->logprobs_ok = u->logprobs != NULL;
            else if (u->logprobs == NULL)
                r->logprobs_ok = false;
            memcpy(r->tokens + r->n_tokens, u->tokens, u->n * sizeof(int32_t));
            if (u->logprobs != NULL)
                memcpy(r->logprobs + r->n_tokens, u->logprobs, u->n * sizeof(float));
            r->n_tokens += u->n;
            if (r->first_token_ns == 0)
                r->first_token_ns = now_ns();
        }
        strbuf_append(&r->text, u->text ? u->text : "", u->text_len);
        return r->text.failed ? MCRT_E_NOMEM : MCRT_OK;
    }
    case MCRT_UPDATE_SEGMENTS: {
        /* n pieces back to back in text[0..text_len), piece i lens[i] bytes. */
        if (!MCRT_HAS(u, lens) || (u->n > 0 && u->lens == NULL)) {
            log_msg(p->log, MCRT_LOG_ERROR, tag, "request_update: segments without lens");
            return MCRT_E_INVAL;
        }
        size_t sum = 0;
        for (size_t i = 0; i < u->n; i++)
            sum += u->lens[i];
        if (sum != u->text_len) {
            log_msg(p->log, MCRT_LOG_ERROR, tag,
                    "request_update: segments: the %zu piece lengths add up to %zu bytes, "
                    "text_len is %zu",
                    u->n, sum, u->text_len);
            return MCRT_E_INVAL;
        }
        size_t *nl = realloc(r->seg_lens, (r->n_segments + u->n + 1) * sizeof *nl);
        if (nl == NULL)
            return MCRT_E_NOMEM;
        r->seg_lens = nl;
        memcpy(r->seg_lens + r->n_segments, u->lens, u->n * sizeof *nl);
        strbuf_append(&r->segments, u->text ? u->text : "", u->text_len);
        r->n_segments += u->n;
        return r->segments.failed ? MCRT_E_NOMEM : MCRT_OK;
    }
    case MCRT_UPDATE_TOP_LOGPROBS: {
        /* n candidates: ids, log probs, and their bytes back to back */
        if (!MCRT_HAS(u, lens) || (u->n > 0 && (u->lens == NULL || u->logprobs == NULL))) {
            log_msg(p->log, MCRT_LOG_ERROR, tag,
                    "request_update: top log probs without log probs or lens");
            return MCRT_E_INVAL;
        }
        size_t sum = 0;
        for (size_t i = 0; i < u->n; i++)
            sum += u->lens[i];
        if (sum != u->text_len) {
            log_msg(p->log, MCRT_LOG_ERROR, tag,
                    "request_update: top log probs: %zu text lengths add up to %zu bytes, "
                    "text_len is %zu", u->n, sum, u->text_len);
            return MCRT_E_INVAL;
        }
        int32_t *ni = realloc(r->top_ids, (r->n_top + u->n + 1) * sizeof *ni);
        if (ni == NULL)
            return MCRT_E_NOMEM;
        r->top_ids = ni;
        float *nf = realloc(r->top_lps, (r->n_top + u->n + 1) * sizeof *nf);
        if (nf == NULL)
            return MCRT_E_NOMEM;
        r->top_lps = nf;
        size_t *nl = realloc(r->top_lens, (r->n_top + u->n + 1) * sizeof *nl);
        if (nl == NULL)
            return MCRT_E_NOMEM;
        r->top_lens = nl;
        size_t *nc = realloc(r->top_counts, (r->n_top_pos + 1) * sizeof *nc);
        if (nc == NULL)
            return MCRT_E_NOMEM;
        r->top_counts = nc;
        if (u->n) {
            memcpy(r->top_ids + r->n_top, u->tokens, u->n * sizeof *ni);
            memcpy(r->top_lps + r->n_top, u->logprobs, u->n * sizeof *nf);
            memcpy(r->top_lens + r->n_top, u->lens, u->n * sizeof *nl);
        }
        r->top_counts[r->n_top_pos++] = u->n;
        r->n_top += u->n;
        strbuf_append(&r->top_text, u->text ? u->text : "", u->text_len);
        return r->top_text.failed ? MCRT_E_NOMEM : MCRT_OK;
    }
    case MCRT_UPDATE_FINISH:
        if (u->status != MCRT_REQ_COMPLETED && u->status != MCRT_REQ_FAILED) {
            log_msg(p->log, MCRT_LOG_ERROR, tag,
                    "request_update: FINISH needs status COMPLETED or FAILED, got %u", u->status);
            return MCRT_E_INVAL;
        }
        r->status = u->status;
        r->pub.status = u->status;
        r->finish_reason = u->finish_reason;
        r->done_ns = now_ns();
        if (u->text != NULL && !(p->stream != NULL && r->stream_started)) {
            /* (Once streamed, the printed bytes stand; the final text is
             * kept only for non-streamed output.) */
            r->text.len = 0;
            strbuf_append(&r->text, u->text, u->text_len);
            r->final_text = true;
        }
        if (u->status == MCRT_REQ_FAILED) {
            free(r->error);
            r->error = xstrdup(u->error ? u->error : "failed (no reason given)");
            log_msg(p->log, MCRT_LOG_DEBUG, tag, "request %llu failed: %s",
                    (unsigned long long)r->pub.id, r->error ? r->error : "?");
        }
        return MCRT_OK;
    default:
        log_msg(p->log, MCRT_LOG_ERROR, tag, "request_update: unknown kind %u", u->kind);
        return MCRT_E_UNSUPPORTED;
    }
}

static const mcrt_pipeline_services services = {
    (uint32_t)sizeof(mcrt_pipeline_services),
    svc_tokenizer_info,
    svc_tokenize,
    svc_detokenize,
    svc_token_bytes,
    svc_model_info,
    svc_model_step,
    svc_kv_alloc,
    svc_kv_free,
    svc_kv_free_blocks,
    svc_sample,
    svc_sampler_validate,
    svc_generate_static,
    svc_request_update,
};

const mcrt_pipeline_services *pipeline_services(void) { return &services; }

/* ---- creation ------------------------------------------------------------ */

plugin_entry *pipeline_choose_plugin(cfg_tree *cfg, registry *reg, int kind, char *err,
                                     size_t err_size, int *exit_code)
{
    const char *kn = kind_name(kind);
    mcrt_config *sec = cfg_section(cfg, kn);
    const char *name = "auto";
    if (cfg_get_string(sec, "name", &name) != MCRT_OK || name == NULL)
        name = "auto";
    plugin_entry *pe = registry_select(reg, kind, name, sec, err, err_size, exit_code);
    if (pe == NULL)
        return NULL;
    const mcrt_config_key *sets[2];
    size_t n = 0;
    sets[n++] = cfg_core_keys(kn);
    if (pe->desc->config_keys != NULL)
        sets[n++] = pe->desc->config_keys;
    cfg_diag d;
    memset(&d, 0, sizeof d);
    if (cfg_validate_section(cfg, kn, sets, n, &d) != 0) {
        snprintf(err, err_size, "%s", d.msg);
        *exit_code = d.exit_code ? d.exit_code : EXIT_CONFIG;
        return NULL;
    }
    return pe;
}

static mcrt_status create_component(pipeline *p, component *c, plugin_entry *pe)
{
    char tag[96];
    snprintf(tag, sizeof tag, "%s/%s", kind_name(pe->kind), pe->name);
    c->pe = pe;
    c->iface = pe->iface;
    c->hctx = host_ctx_create(p->log, tag, p);
    if (c->hctx == NULL)
        return MCRT_E_NOMEM;
    const mcrt_config *sec = cfg_section(p->cfg, kind_name(pe->kind));
    void *self = NULL;
    mcrt_status st;
    /* Every single-instance kind starts with struct_size, create, destroy. */
    typedef struct {
        uint32_t struct_size;
        mcrt_status (*create)(const mcrt_host *, const mcrt_config *, void **);
        void (*destroy)(void *);
    } common_iface;
    const common_iface *ci = c->iface;
    st = ci->create(&c->hctx->host, sec, &self);
    if (st == MCRT_OK && self == NULL) {
        log_msg(p->log, MCRT_LOG_ERROR, tag, "create returned ok without an instance");
        st = MCRT_E_INTERNAL;
    }
    if (st != MCRT_OK) {
        if (p->last_error[0] == '\0')
            set_error(p, tag, "create failed: %s", mcrt_status_str(st));
        return st;
    }
    c->self = self;
    pe->instances++;
    return MCRT_OK;
}

static void destroy_component(component *c)
{
    if (c->self != NULL) {
        typedef struct {
            uint32_t struct_size;
            void *create;
            void (*destroy)(void *);
        } common_iface;
        const common_iface *ci = c->iface;
        ci->destroy(c->self);
        c->self = NULL;
        c->pe->instances--;
    }
    host_ctx_destroy(c->hctx);
    c->hctx = NULL;
}

static int fail_status(pipeline *p, mcrt_status st, const char *what, char *err, size_t err_size,
                       int *exit_code)
{
    snprintf(err, err_size, "%s: %s%s%s", what, mcrt_status_str(st), p->last_error[0] ? ": " : "",
             p->last_error);
    *exit_code = exit_code_for_status(st);
    return -1;
}

pipeline *pipeline_create(cfg_tree *cfg, registry *reg, const log_sink *log, char *err,
                          size_t err_size, int *exit_code)
{
    pipeline *p = calloc(1, sizeof *p);
    if (p == NULL) {
        snprintf(err, err_size, "out of memory");
        *exit_code = 69;
        return NULL;
    }
    p->log = log;
    p->cfg = cfg;
    p->reg = reg;
    pthread_mutex_init(&p->kv_mu, NULL);
    pthread_mutex_init(&p->err_mu, NULL);

    int64_t tp = 1, pp = 1, threads = 0;
    const mcrt_config *par = cfg_section(cfg, "parallel");
    const mcrt_config *rt = cfg_section(cfg, "runtime");
    if (cfg_get_int(par, "tensor_model_parallel_size", &tp) != MCRT_OK) tp = 1;
    if (cfg_get_int(par, "pipeline_model_parallel_size", &pp) != MCRT_OK) pp = 1;
    if (cfg_get_int(rt, "threads", &threads) != MCRT_OK) threads = 0;
    if (threads == 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        threads = nc > 0 ? nc : 1;
    }
    if (tp * pp > 4096) {
        snprintf(err, err_size, "parallel: tensor_model_parallel_size x pipeline_model_parallel_size "
                                "= %lld ranks, more than the 4096 supported",
                 (long long)(tp * pp));
        *exit_code = 78;
        goto fail;
    }

    /* Choose every plugin first, so a config error anywhere is reported before
     * any (slow) instance creation. */
    plugin_entry *pe[MCRT_KIND_COUNT + 1] = {0};
    static const int order[] = {MCRT_KIND_TOKENIZER, MCRT_KIND_SAMPLER, MCRT_KIND_MODEL,
                                MCRT_KIND_CONTROLLER, MCRT_KIND_ENGINE};
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        pe[order[i]] = pipeline_choose_plugin(p->cfg, p->reg, order[i], err, err_size, exit_code);
        if (pe[order[i]] == NULL)
            goto fail;
    }

    mcrt_status st = create_component(p, &p->tok, pe[MCRT_KIND_TOKENIZER]);
    if (st != MCRT_OK) { fail_status(p, st, "tokenizer", err, err_size, exit_code); goto fail; }
    st = create_component(p, &p->smp, pe[MCRT_KIND_SAMPLER]);
    if (st != MCRT_OK) { fail_status(p, st, "sampler", err, err_size, exit_code); goto fail; }
    p->model_pe = pe[MCRT_KIND_MODEL];
    st = model_group_create(p, log, p->model_pe, cfg_section(cfg, "model"), (int)tp, (int)pp,
                            (int)((threads + tp * pp - 1) / (tp * pp)), &p->models);
    if (st != MCRT_OK) { fail_status(p, st, "model", err, err_size, exit_code); goto fail; }
    p->kv = kv_alloc_create((uint32_t)model_group_info(p->models)->kv_num_blocks);
    if (p->kv == NULL) { fail_status(p, MCRT_E_NOMEM, "kv cache", err, err_size, exit_code); goto fail; }

    /* The tokenizer and the model must agree on the vocabulary. */
    mcrt_tokenizer_info ti;
    memset(&ti, 0, sizeof ti);
    ti.struct_size = (uint32_t)sizeof ti;
    const mcrt_tokenizer_iface *tif = p->tok.iface;
    st = tif->info(p->tok.self, &ti);
    if (st != MCRT_OK) { fail_status(p, st, "tokenizer info", err, err_size, exit_code); goto fail; }
    const mcrt_model_info *mi = model_group_info(p->models);
    if (ti.vocab_size > mi->padded_vocab_size) {
        snprintf(err, err_size,
                 "tokenizer/%s has %d ids but model/%s's output layer has only %d rows: they "
                 "do not belong together",
                 p->tok.pe->name, ti.vocab_size, p->model_pe->name, mi->padded_vocab_size);
        *exit_code = 78;
        goto fail;
    }

    st = create_component(p, &p->ctl, pe[MCRT_KIND_CONTROLLER]);
    if (st != MCRT_OK) { fail_status(p, st, "controller", err, err_size, exit_code); goto fail; }
    st = create_component(p, &p->eng, pe[MCRT_KIND_ENGINE]);
    if (st != MCRT_OK) { fail_status(p, st, "engine", err, err_size, exit_code); goto fail; }
    for (int k = 1; k <= MCRT_KIND_COUNT; k++)
        log_msg(log, MCRT_LOG_DEBUG, "runtime", "%s: %s (%s)", kind_name(k), pe[k]->name, pe[k]->path);
    log_msg(log, MCRT_LOG_INFO, "runtime",
            "pipeline: engine=%s controller=%s model=%s sampler=%s tokenizer=%s; %lld rank%s "
            "(tp %lld x pp %lld); KV pool %d blocks x %d tokens",
            pe[MCRT_KIND_ENGINE]->name, pe[MCRT_KIND_CONTROLLER]->name, pe[MCRT_KIND_MODEL]->name,
            pe[MCRT_KIND_SAMPLER]->name, pe[MCRT_KIND_TOKENIZER]->name, (long long)(tp * pp),
            tp * pp == 1 ? "" : "s", (long long)tp, (long long)pp, mi->kv_num_blocks,
            mi->kv_block_size);
    return p;
fail:
    pipeline_destroy(p);
    return NULL;
}

void pipeline_destroy(pipeline *p)
{
    if (p == NULL)
        return;
    destroy_component(&p->eng);
    destroy_component(&p->ctl);
    model_group_destroy(p->models);
    destroy_component(&p->smp);
    destroy_component(&p->tok);
    kv_alloc_destroy(p->kv);
    for (size_t i = 0; i < p->n_reqs; i++) {
        req_rec *r = p->reqs[i];
        free(r->prompt);
        free(r->custom_id);
        free(r->prompt_tokens);
        free(r->prompt_logprobs);
        free(r->tokens);
        free(r->logprobs);
        strbuf_free(&r->text);
        strbuf_free(&r->segments);
        free(r->seg_lens);
        free(r->top_ids);
        free(r->top_lps);
        free(r->top_lens);
        free(r->top_counts);
        strbuf_free(&r->top_text);
        free(r->error);
        free(r);
    }
    free(p->reqs);
    pthread_mutex_destroy(&p->kv_mu);
    pthread_mutex_destroy(&p->err_mu);
    free(p);
}

const plugin_entry *pipeline_plugin(const pipeline *p, int kind)
{
    switch (kind) {
    case MCRT_KIND_TOKENIZER: return p->tok.pe;
    case MCRT_KIND_SAMPLER: return p->smp.pe;
    case MCRT_KIND_MODEL: return p->model_pe;
    case MCRT_KIND_CONTROLLER: return p->ctl.pe;
    case MCRT_KIND_ENGINE: return p->eng.pe;
    default: return NULL;
    }
}

/* ---- requests ------------------------------------------------------------ */

mcrt_status pipeline_submit(pipeline *p, const char *prompt, size_t len,
                            const mcrt_sampling_params *params, const char *custom_id)
{
    if (p->n_reqs == p->cap_reqs) {
        size_t nc = p->cap_reqs ? p->cap_reqs * 2 : 16;
        req_rec **nr = realloc(p->reqs, nc * sizeof *nr);
        if (nr == NULL)
            return MCRT_E_NOMEM;
        p->reqs = nr;
        p->cap_reqs = nc;
    }
    req_rec *r = calloc(1, sizeof *r);
    if (r == NULL)
        return MCRT_E_NOMEM;
    r->prompt = malloc(len + 1);
    if (r->prompt == NULL) {
        free(r);
        return MCRT_E_NOMEM;
    }
    if (len)
        memcpy(r->prompt, prompt, len);
    r->prompt[len] = '\0';
    if (custom_id != NULL && (r->custom_id = xstrdup(custom_id)) == NULL) {
        free(r->prompt);
        free(r);
        return MCRT_E_NOMEM;
    }
    r->params = *params;
    r->params.struct_size = (uint32_t)sizeof r->params;
    r->pub.struct_size = (uint32_t)sizeof r->pub;
    r->pub.id = p->n_reqs;
    r->pub.prompt = r->prompt;
    r->pub.prompt_len = len;
    r->pub.params = &r->params;
    r->pub.arrival_ns = now_ns();
    r->status = MCRT_REQ_WAITING_IN_QUEUE;
    r->pub.status = r->status;
    p->reqs[p->n_reqs++] = r;

    const mcrt_engine_iface *e = p->eng.iface;
    mcrt_status st = e->submit(p->eng.self, &r->pub);
    if (st != MCRT_OK) {
        r->status = MCRT_REQ_FAILED;
        r->pub.status = r->status;
        r->finish_reason = MCRT_FINISH_ERROR;
        char msg[1100];
        snprintf(msg, sizeof msg, "the engine refused the request: %s%s%s", mcrt_status_str(st),
                 p->last_error[0] ? ": " : "", p->last_error);
        r->error = xstrdup(msg);
    }
    return MCRT_OK;
}

/* generated_text = detokenize(generated ids), with the tokenizer's own
 * handling of invalid UTF-8. */
static mcrt_status detokenize_all(pipeline *p, req_rec *r)
{
    const mcrt_tokenizer_iface *t = p->tok.iface;
    size_t need = 0;
    char small[256];
    mcrt_status st = t->decode(p->tok.self, r->tokens, r->n_tokens, small, sizeof small, &need);
    if (st == MCRT_OK) {
        r->text.len = 0;
        strbuf_append(&r->text, small, need);
        return r->text.failed ? MCRT_E_NOMEM : MCRT_OK;
    }
    if (st != MCRT_E_RANGE)
        return st;
    char *buf = malloc(need ? need : 1);
    if (buf == NULL)
        return MCRT_E_NOMEM;
    size_t got = 0;
    st = t->decode(p->tok.self, r->tokens, r->n_tokens, buf, need, &got);
    if (st == MCRT_OK) {
        r->text.len = 0;
        strbuf_append(&r->text, buf, got);
        if (r->text.failed)
            st = MCRT_E_NOMEM;
    }
    free(buf);
    return st;
}

mcrt_status pipeline_run(pipeline *p)
{
    mcrt_status st = pipeline_run_engine(p);
    if (p->progress_shown) {
        fputs("\r\033[K", p->progress); /* clear the progress line */
        fflush(p->progress);
    }
    p->stats.run_ns = now_ns() - p->run_start_ns;
    return st;
}

static mcrt_status pipeline_run_engine(pipeline *p)
{
    p->run_start_ns = now_ns();
    const mcrt_engine_iface *e = p->eng.iface;
    /* A bound on engine calls: each call must finish at least one request or
     * make progress; an engine that spins without progress is a bug that must
     * not hang mcrt. */
    size_t idle_rounds = 0;
    for (;;) {
        size_t done_before = 0;
        for (size_t i = 0; i < p->n_reqs; i++)
            done_before += p->reqs[i]->status == MCRT_REQ_COMPLETED ||
                           p->reqs[i]->status == MCRT_REQ_FAILED;
        mcrt_status st = e->run(p->eng.self);
        size_t done_after = 0;
        for (size_t i = 0; i < p->n_reqs; i++)
            done_after += p->reqs[i]->status == MCRT_REQ_COMPLETED ||
                          p->reqs[i]->status == MCRT_REQ_FAILED;
        if (st == MCRT_DONE)
            break;
        if (st != MCRT_OK)
            return st;
        idle_rounds = done_after == done_before ? idle_rounds + 1 : 0;
        if (idle_rounds > 1000000) {
            log_msg(p->log, MCRT_LOG_ERROR, p->eng.hctx->tag,
                    "engine made no progress in 1000000 run() calls; stopping");
            return MCRT_E_INTERNAL;
        }
    }
    /* The engine says done: anything not finished is its bug; fail it visibly.
     * Completed requests whose controller gave no final text get the
     * detokenized generated ids (Megatron's generated_text). */
    for (size_t i = 0; i < p->n_reqs; i++) {
        req_rec *r = p->reqs[i];
        if (r->status == MCRT_REQ_COMPLETED && !r->final_text && !r->stream_started) {
            mcrt_status st = detokenize_all(p, r);
            if (st != MCRT_OK) {
                r->status = MCRT_REQ_FAILED;
                r->finish_reason = MCRT_FINISH_ERROR;
                free(r->error);
                r->error = xstrdup(p->last_error[0] ? p->last_error
                                                    : "the generated ids could not be detokenized");
            }
        }
        if (r->status != MCRT_REQ_COMPLETED && r->status != MCRT_REQ_FAILED) {
            r->status = MCRT_REQ_FAILED;
            r->finish_reason = MCRT_FINISH_ERROR;
            r->error = xstrdup("the engine finished without completing this request");
        }
    }
    stream_flush(p);
    return MCRT_OK;
}

size_t pipeline_result_count(const pipeline *p) { return p->n_reqs; }

void pipeline_result_at(const pipeline *p, size_t i, pipeline_result *o)
{
    const req_rec *r = p->reqs[i];
    memset(o, 0, sizeof *o);
    o->id = r->pub.id;
    o->prompt = r->prompt;
    o->prompt_len = r->pub.prompt_len;
    o->custom_id = r->custom_id;
    o->params = &r->params;
    o->status = r->status;
    o->finish_reason = r->finish_reason;
    o->error = r->error;
    o->prompt_tokens = r->prompt_tokens;
    o->n_prompt_tokens = r->n_prompt_tokens;
    o->prompt_logprobs = r->prompt_logprobs;
    o->n_prompt_logprobs = r->n_prompt_logprobs;
    o->tokens = r->tokens;
    o->logprobs = r->logprobs_ok ? r->logprobs : NULL;
    o->n_tokens = r->n_tokens;
    o->text = r->text.data ? r->text.data : "";
    o->text_len = r->text.len;
    o->segments = r->n_segments ? r->segments.data : NULL;
    o->segment_lens = r->seg_lens;
    o->n_segments = r->n_segments;
    o->top_ids = r->top_ids;
    o->top_logprobs = r->top_lps;
    o->top_lens = r->top_lens;
    o->top_text = r->top_text.data ? r->top_text.data : "";
    o->top_counts = r->top_counts;
    o->n_top_positions = r->n_top_pos;
    o->arrival_ns = r->pub.arrival_ns;
    o->first_token_ns = r->first_token_ns;
    o->done_ns = r->done_ns;
}

/* ---- sampling parameters from the `generation` section --------------------- */

void params_from_config(const mcrt_config *gen, mcrt_sampling_params *o, const char **stop_storage,
                        uint32_t stop_cap)
{
    memset(o, 0, sizeof *o);
    o->struct_size = (uint32_t)sizeof *o;
    const char *compat = "default";
    if (cfg_get_string(gen, "compat", &compat) != MCRT_OK)
        compat = "default";
    o->compat = strcmp(compat, "megatron") == 0 ? MCRT_COMPAT_MEGATRON : MCRT_COMPAT_DEFAULT;
    double d;
    int64_t i;
    bool b;
    o->temperature = cfg_get_float(gen, "temperature", &d) == MCRT_OK ? (float)d : 1.0f;
    o->top_k = cfg_get_int(gen, "top_k", &i) == MCRT_OK ? (int32_t)i : 0;
    /* top_p unset: "off" in either mode (1.0 by default, 0.0 in megatron compat). */
    if (cfg_get_float(gen, "top_p", &d) == MCRT_OK)
        o->top_p = (float)d;
    else
        o->top_p = o->compat == MCRT_COMPAT_MEGATRON ? 0.0f : 1.0f;
    o->min_p = cfg_get_float(gen, "min_p", &d) == MCRT_OK ? (float)d : 0.0f;
    o->repetition_penalty = cfg_get_float(gen, "repetition_penalty", &d) == MCRT_OK ? (float)d : 1.0f;
    o->presence_penalty = cfg_get_float(gen, "presence_penalty", &d) == MCRT_OK ? (float)d : 0.0f;
    o->frequency_penalty = cfg_get_float(gen, "frequency_penalty", &d) == MCRT_OK ? (float)d : 0.0f;
    o->num_tokens_to_generate =
        cfg_get_int(gen, "num_tokens_to_generate", &i) == MCRT_OK ? (int32_t)i : 30;
    o->seed = cfg_get_int(gen, "seed", &i) == MCRT_OK ? i : 1234;
    o->return_log_probs = cfg_get_bool(gen, "return_log_probs", &b) == MCRT_OK && b;
    o->return_segments = cfg_get_bool(gen, "return_segments", &b) == MCRT_OK && b;
    o->ignore_eos = cfg_get_bool(gen, "ignore_eos", &b) == MCRT_OK && b;
    o->add_bos = cfg_get_bool(gen, "add_bos", &b) == MCRT_OK && b;
    o->top_n_logprobs = cfg_get_int(gen, "top_n_logprobs", &i) == MCRT_OK ? (int32_t)i : 0;
    size_t n = 0;
    if (cfg_list_size(gen, "stop", &n) == MCRT_OK && n > 0) {
        uint32_t k = 0;
        for (size_t j = 0; j < n && k < stop_cap; j++) {
            const char *s;
            if (cfg_list_item(gen, "stop", j, &s) == MCRT_OK)
                stop_storage[k++] = s;
        }
        o->stop = stop_storage;
        o->n_stop = k;
    }
}
