/*
 * mcrt-controller-toy: a test-only text-generation controller, Megatron's
 * static batch loop simplified (reference/megatron-inference.md 1.5.3).
 *
 * generate_static(reqs, n):
 *  1. Per request, in order: tokenize the prompt (retrying with the size the
 *     tokenizer asks for on MCRT_E_RANGE; the tokenizer's BOS is prepended
 *     when params->add_bos and it has one), report MCRT_UPDATE_PROMPT_TOKENS.
 *     The request fails alone (FINISH, FAILED, finish_reason ERROR, with a
 *     one-line error) when its prompt is empty, when prompt tokens +
 *     num_tokens_to_generate exceed the model's max_sequence_length, when the
 *     sampler rejects its parameters, or when its KV blocks
 *     (ceil((prompt + num_tokens_to_generate) / kv_block_size)) cannot be
 *     allocated. num_tokens_to_generate == 0 completes at once (LENGTH, no
 *     tokens): there are no prompt log probs here.
 *  2. The live requests then run as one batch: one prefill step holding
 *     every live prompt whole (a flat batch, logits only for each prompt's
 *     last token), then decode steps of one token per live row. After each
 *     step every row samples (services->sample, its own params, its history
 *     = prompt + generated, draw_index = tokens generated so far) and
 *     reports MCRT_UPDATE_TOKENS with the token, its log prob when
 *     params->return_log_probs, and its raw bytes (token_bytes) as text. A row
 *     finishes COMPLETED with LENGTH after num_tokens_to_generate tokens, or
 *     with EOD when it samples the tokenizer's eod (unless params->ignore_eos);
 *     the eod itself is not reported, like Megatron. A finished row leaves the
 *     batch and frees its KV blocks at once.
 *  3. A failing model step or sample, or a rejected request_update, stops the
 *     whole batch: every unfinished request is reported FAILED with the reason
 *     and the error is returned.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mcrt/mcrt.h"
#include "toy_common.h"

typedef struct ct_self {
    const mcrt_host *host;
    const mcrt_pipeline_services *svc;
} ct_self;

enum { CT_PENDING = 0, CT_LIVE = 1, CT_DONE = 2 };

typedef struct ct_row {
    mcrt_request *req;
    const mcrt_sampling_params *params;
    int32_t *tokens;  /* [n_prompt + n_to_gen]: prompt, then generated tokens */
    size_t n_prompt;
    size_t n_gen;
    size_t n_to_gen;
    int32_t *blocks;  /* [n_blocks] KV block ids, from kv_alloc */
    uint32_t n_blocks;
    int state;        /* CT_* */
} ct_row;

/* What one generate_static call shares between its helpers. */
typedef struct ct_run {
    ct_self *self;
    mcrt_tokenizer_info ti;
    mcrt_model_info mi;
    char *text;       /* token_bytes buffer */
    size_t text_cap;
} ct_run;

static mcrt_status ct_create(const mcrt_host *host, const mcrt_config *cfg, void **out_self)
{
    const mcrt_pipeline_services *svc;
    ct_self *self;
    mcrt_status st = toy_check_host(host);
    (void)cfg;
    if (st != MCRT_OK)
        return st;
    if (out_self == NULL) {
        toy_log(host, MCRT_LOG_ERROR, "create: out_self is NULL");
        return MCRT_E_INVAL;
    }
    svc = toy_pipeline(host);
    if (svc == NULL)
        return MCRT_E_UNSUPPORTED;
#define CT_NEED(slot)                                                                          \
    if (!TOY_SVC_HAS(svc, slot)) {                                                             \
        toy_log(host, MCRT_LOG_ERROR, "the pipeline services lack '%s'", #slot);               \
        return MCRT_E_UNSUPPORTED;                                                             \
    }
    CT_NEED(tokenizer_info)
    CT_NEED(tokenize)
    CT_NEED(token_bytes)
    CT_NEED(model_info)
    CT_NEED(model_step)
    CT_NEED(kv_alloc)
    CT_NEED(kv_free)
    CT_NEED(sample)
    CT_NEED(request_update)
#undef CT_NEED
    self = (ct_self *)toy_calloc(host, 1, sizeof *self);
    if (self == NULL) {
        toy_log(host, MCRT_LOG_ERROR, "out of memory creating the toy controller");
        return MCRT_E_NOMEM;
    }
    self->host = host;
    self->svc = svc;
    *out_self = self;
    return MCRT_OK;
}

static void ct_destroy(void *vself)
{
    ct_self *self = (ct_self *)vself;
    if (self != NULL)
        toy_free(self->host, self);
}

static mcrt_status ct_update(ct_self *self, ct_row *row, const mcrt_request_update *u)
{
    mcrt_status st = self->svc->request_update(self->host, row->req, u);
    if (st != MCRT_OK)
        toy_log(self->host, MCRT_LOG_ERROR, "request %llu: the core rejected update kind %u (%s)",
                (unsigned long long)row->req->id, u->kind, mcrt_status_str(st));
    return st;
}

static void ct_release(ct_self *self, ct_row *row)
{
    if (row->blocks != NULL) {
        self->svc->kv_free(self->host, row->blocks, row->n_blocks);
        toy_free(self->host, row->blocks);
        row->blocks = NULL;
        row->n_blocks = 0;
    }
}

/* Finish a row (its blocks go back first). */
static mcrt_status ct_finish(ct_self *self, ct_row *row, uint32_t status, uint32_t reason,
                             const char *error)
{
    mcrt_request_update u;
    ct_release(self, row);
    row->state = CT_DONE;
    memset(&u, 0, sizeof u);
    u.struct_size = (uint32_t)sizeof u;
    u.kind = MCRT_UPDATE_FINISH;
    u.status = status;
    u.finish_reason = reason;
    u.error = error;
    return ct_update(self, row, &u);
}

/* Fail one request alone, with a logged one-line reason. */
static mcrt_status ct_fail(ct_self *self, ct_row *row, const char *fmt, ...) MCRT_PRINTF(3, 4);
static mcrt_status ct_fail(ct_self *self, ct_row *row, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    toy_log(self->host, MCRT_LOG_ERROR, "request %llu failed: %s",
            (unsigned long long)row->req->id, msg);
    return ct_finish(self, row, MCRT_REQ_FAILED, MCRT_FINISH_ERROR, msg);
}

/* Tokenize the prompt into row->tokens (room left for the generated tokens).
 * MCRT_OK with row->state still CT_PENDING on success; a per-request problem
 * fails the row (state CT_DONE) and returns MCRT_OK; other errors are the
 * batch's. */
static mcrt_status ct_tokenize(ct_run *run, ct_row *row)
{
    ct_self *self = run->self;
    const mcrt_request *req = row->req;
    size_t cap = req->prompt_len + 1, n = 0, bos, total;
    int32_t *ids = NULL;
    mcrt_status st = MCRT_E_RANGE;
    int tries;

    if (req->prompt == NULL && req->prompt_len != 0)
        return ct_fail(self, row, "prompt is NULL but prompt_len is %zu", req->prompt_len);
    for (tries = 0; tries < 4 && st == MCRT_E_RANGE; tries++) {
        ids = (int32_t *)toy_calloc(self->host, cap, sizeof *ids);
        if (ids == NULL)
            return ct_fail(self, row, "out of memory tokenizing a %zu-byte prompt",
                           req->prompt_len);
        st = self->svc->tokenize(self->host, req->prompt, req->prompt_len, ids, cap, &n);
        if (st == MCRT_E_RANGE) {
            toy_free(self->host, ids);
            ids = NULL;
            if (n <= cap)
                break; /* the tokenizer asked for no more room: do not loop */
            cap = n;
        }
    }
    if (st != MCRT_OK) {
        toy_free(self->host, ids);
        return ct_fail(self, row, "the tokenizer could not encode the prompt (%s)",
                       mcrt_status_str(st));
    }
    bos = (row->params->add_bos && run->ti.bos >= 0) ? 1 : 0;
    total = bos + n + row->n_to_gen;
    row->tokens = (int32_t *)toy_calloc(self->host, total, sizeof *row->tokens);
    if (row->tokens == NULL) {
        toy_free(self->host, ids);
        return ct_fail(self, row, "out of memory for %zu tokens", total);
    }
    if (bos)
        row->tokens[0] = run->ti.bos;
    if (n > 0)
        memcpy(row->tokens + bos, ids, n * sizeof *ids);
    row->n_prompt = bos + n;
    toy_free(self->host, ids);
    return MCRT_OK;
}

/* Step 1 for one request: tokenize, report, check, allocate. */
static mcrt_status ct_prepare(ct_run *run, ct_row *row)
{
    ct_self *self = run->self;
    const mcrt_request *req = row->req;
    const mcrt_sampling_params *p;
    mcrt_request_update u;
    int64_t total, need;
    mcrt_status st;

    if (!MCRT_HAS(req, params) || req->params == NULL)
        return ct_fail(self, row, "the request has no sampling params");
    p = req->params;
    if (!MCRT_HAS(p, add_bos))
        return ct_fail(self, row, "the sampling params struct is too old (struct_size %u)",
                       p->struct_size);
    if (p->num_tokens_to_generate < 0)
        return ct_fail(self, row, "num_tokens_to_generate must be >= 0 (got %d)",
                       (int)p->num_tokens_to_generate);
    row->params = p;
    row->n_to_gen = (size_t)p->num_tokens_to_generate;

    st = ct_tokenize(run, row);
    if (st != MCRT_OK || row->state == CT_DONE)
        return st;
    memset(&u, 0, sizeof u);
    u.struct_size = (uint32_t)sizeof u;
    u.kind = MCRT_UPDATE_PROMPT_TOKENS;
    u.tokens = row->tokens;
    u.n = row->n_prompt;
    if ((st = ct_update(self, row, &u)) != MCRT_OK)
        return st;

    if (row->n_prompt == 0)
        return ct_fail(self, row, "empty prompt");
    total = (int64_t)row->n_prompt + (int64_t)row->n_to_gen;
    if (total > run->mi.max_sequence_length)
        return ct_fail(self, row,
                       "prompt (%zu tokens) + num_tokens_to_generate (%zu) exceeds the model's "
                       "max_sequence_length %d",
                       row->n_prompt, row->n_to_gen, (int)run->mi.max_sequence_length);
    if (TOY_SVC_HAS(self->svc, sampler_validate) &&
        (st = self->svc->sampler_validate(self->host, p)) != MCRT_OK)
        return ct_fail(self, row, "the sampler rejected the sampling params (%s)",
                       mcrt_status_str(st));
    if (row->n_to_gen == 0)
        return ct_finish(self, row, MCRT_REQ_COMPLETED, MCRT_FINISH_LENGTH, NULL);

    need = (total + run->mi.kv_block_size - 1) / run->mi.kv_block_size;
    row->blocks = (int32_t *)toy_calloc(self->host, (size_t)need, sizeof *row->blocks);
    if (row->blocks == NULL)
        return ct_fail(self, row, "out of memory for %lld KV block ids", (long long)need);
    st = self->svc->kv_alloc(self->host, (uint32_t)need, row->blocks);
    if (st != MCRT_OK) {
        uint32_t left = TOY_SVC_HAS(self->svc, kv_free_blocks)
                            ? self->svc->kv_free_blocks(self->host)
                            : 0;
        toy_free(self->host, row->blocks);
        row->blocks = NULL;
        return ct_fail(self, row, "cannot allocate %lld KV blocks (%u free): %s",
                       (long long)need, left, mcrt_status_str(st));
    }
    row->n_blocks = (uint32_t)need;
    row->state = CT_LIVE;
    return MCRT_OK;
}

/* The raw bytes of token `id` into run->text, growing it on MCRT_E_RANGE. */
static mcrt_status ct_token_text(ct_run *run, int32_t id, size_t *len)
{
    ct_self *self = run->self;
    int tries;
    for (tries = 0; tries < 4; tries++) {
        size_t need = 0;
        mcrt_status st =
            self->svc->token_bytes(self->host, id, run->text, run->text_cap, &need);
        if (st != MCRT_E_RANGE) {
            if (st == MCRT_OK)
                *len = need;
            return st;
        }
        if (need <= run->text_cap)
            return MCRT_E_INTERNAL;
        toy_free(self->host, run->text);
        run->text_cap = 0;
        run->text = (char *)toy_calloc(self->host, need, 1);
        if (run->text == NULL)
            return MCRT_E_NOMEM;
        run->text_cap = need;
    }
    return MCRT_E_INTERNAL;
}

/* Take the token a row sampled. Per-request problems fail the row and
 * return MCRT_OK; errors returned are the batch's. */
static mcrt_status ct_accept(ct_run *run, ct_row *row, int32_t tok, const float *logprob)
{
    ct_self *self = run->self;
    mcrt_request_update u;
    size_t len = 0;
    mcrt_status st;

    if (run->ti.eod >= 0 && tok == run->ti.eod && !row->params->ignore_eos)
        return ct_finish(self, row, MCRT_REQ_COMPLETED, MCRT_FINISH_EOD, NULL);
    st = ct_token_text(run, tok, &len);
    if (st != MCRT_OK)
        return ct_fail(self, row, "no text for sampled token %d (%s)", (int)tok,
                       mcrt_status_str(st));
    row->tokens[row->n_prompt + row->n_gen] = tok;
    row->n_gen++;
    memset(&u, 0, sizeof u);
    u.struct_size = (uint32_t)sizeof u;
    u.kind = MCRT_UPDATE_TOKENS;
    u.tokens = &row->tokens[row->n_prompt + row->n_gen - 1];
    u.logprobs = row->params->return_log_probs ? logprob : NULL;
    u.n = 1;
    u.text = run->text;
    u.text_len = len;
    if ((st = ct_update(self, row, &u)) != MCRT_OK)
        return st;
    if (row->n_gen >= row->n_to_gen)
        return ct_finish(self, row, MCRT_REQ_COMPLETED, MCRT_FINISH_LENGTH, NULL);
    return MCRT_OK;
}

/* Step 2: prefill, then decode, until no row is live. */
static mcrt_status ct_loop(ct_run *run, ct_row *rows, size_t n)
{
    ct_self *self = run->self;
    const mcrt_host *host = self->host;
    size_t i, n_live = 0, max_tokens = 0;
    size_t vp = (size_t)run->mi.padded_vocab_size;
    int prefill = 1;
    mcrt_status st = MCRT_OK;
    /* Step and sample arrays, sized for the prefill (the largest step). */
    int32_t *tokens = NULL, *positions = NULL, *seq_index = NULL, *context_len = NULL;
    int32_t *n_blocks = NULL, *out_tokens = NULL;
    uint8_t *want = NULL;
    const int32_t **tables = NULL, **history = NULL;
    const mcrt_sampling_params **params = NULL;
    size_t *history_len = NULL, *rowmap = NULL;
    uint64_t *draw = NULL;
    float *logits = NULL, *logprobs = NULL;

    for (i = 0; i < n; i++) {
        mcrt_request_update u;
        if (rows[i].state != CT_LIVE)
            continue;
        n_live++;
        max_tokens += rows[i].n_prompt;
        memset(&u, 0, sizeof u);
        u.struct_size = (uint32_t)sizeof u;
        u.kind = MCRT_UPDATE_STATUS;
        u.status = MCRT_REQ_ACTIVE_AND_GENERATING_TOKENS;
        if ((st = ct_update(self, &rows[i], &u)) != MCRT_OK)
            return st;
    }
    if (n_live == 0)
        return MCRT_OK;

    tokens = (int32_t *)toy_calloc(host, max_tokens, sizeof *tokens);
    positions = (int32_t *)toy_calloc(host, max_tokens, sizeof *positions);
    seq_index = (int32_t *)toy_calloc(host, max_tokens, sizeof *seq_index);
    want = (uint8_t *)toy_calloc(host, max_tokens, sizeof *want);
    context_len = (int32_t *)toy_calloc(host, n_live, sizeof *context_len);
    n_blocks = (int32_t *)toy_calloc(host, n_live, sizeof *n_blocks);
    tables = (const int32_t **)toy_calloc(host, n_live, sizeof *tables);
    history = (const int32_t **)toy_calloc(host, n_live, sizeof *history);
    params = (const mcrt_sampling_params **)toy_calloc(host, n_live, sizeof *params);
    history_len = (size_t *)toy_calloc(host, n_live, sizeof *history_len);
    rowmap = (size_t *)toy_calloc(host, n_live, sizeof *rowmap);
    draw = (uint64_t *)toy_calloc(host, n_live, sizeof *draw);
    out_tokens = (int32_t *)toy_calloc(host, n_live, sizeof *out_tokens);
    logprobs = (float *)toy_calloc(host, n_live, sizeof *logprobs);
    logits = (float *)toy_calloc(host, n_live, vp * sizeof *logits);
    if (!tokens || !positions || !seq_index || !want || !context_len || !n_blocks || !tables ||
        !history || !params || !history_len || !rowmap || !draw || !out_tokens || !logprobs ||
        !logits || vp == 0) {
        toy_log(host, MCRT_LOG_ERROR, "out of memory for a batch of %zu rows (%zu tokens)",
                n_live, max_tokens);
        st = vp == 0 ? MCRT_E_INTERNAL : MCRT_E_NOMEM;
        goto out;
    }

    for (;;) {
        mcrt_step_batch b;
        mcrt_sample_batch sb;
        uint32_t t = 0, r = 0;
        int any_lp = 0;
        for (i = 0; i < n; i++) {
            ct_row *row = &rows[i];
            if (row->state != CT_LIVE)
                continue;
            if (prefill) {
                size_t j;
                for (j = 0; j < row->n_prompt; j++, t++) {
                    tokens[t] = row->tokens[j];
                    positions[t] = (int32_t)j;
                    seq_index[t] = (int32_t)r;
                    want[t] = j + 1 == row->n_prompt;
                }
                context_len[r] = 0;
            } else {
                size_t last = row->n_prompt + row->n_gen - 1;
                tokens[t] = row->tokens[last];
                positions[t] = (int32_t)last;
                seq_index[t] = (int32_t)r;
                want[t] = 1;
                t++;
                context_len[r] = (int32_t)last;
            }
            tables[r] = row->blocks;
            n_blocks[r] = (int32_t)row->n_blocks;
            params[r] = row->params;
            history[r] = row->tokens;
            history_len[r] = row->n_prompt + row->n_gen;
            draw[r] = row->n_gen;
            any_lp |= row->params->return_log_probs != 0;
            rowmap[r++] = i;
        }
        if (r == 0)
            break;

        memset(&b, 0, sizeof b);
        b.struct_size = (uint32_t)sizeof b;
        b.n_tokens = t;
        b.n_seqs = r;
        b.n_logits = r;
        b.tokens = tokens;
        b.positions = positions;
        b.seq_index = seq_index;
        b.want_logits = want;
        b.context_len = context_len;
        b.block_tables = tables;
        b.n_blocks = n_blocks;
        st = self->svc->model_step(host, &b, logits);
        if (st != MCRT_OK) {
            toy_log(host, MCRT_LOG_ERROR, "the model step (%u rows, %u tokens) failed: %s", r,
                    t, mcrt_status_str(st));
            goto out;
        }

        memset(&sb, 0, sizeof sb);
        sb.struct_size = (uint32_t)sizeof sb;
        sb.n_rows = r;
        sb.vocab_size = run->mi.vocab_size;
        sb.padded_vocab_size = run->mi.padded_vocab_size;
        sb.logits = logits;
        sb.params = params;
        sb.history = history;
        sb.history_len = history_len;
        sb.draw_index = draw;
        st = self->svc->sample(host, &sb, out_tokens, any_lp ? logprobs : NULL);
        if (st != MCRT_OK) {
            toy_log(host, MCRT_LOG_ERROR, "sampling %u rows failed: %s", r,
                    mcrt_status_str(st));
            goto out;
        }
        for (i = 0; i < r; i++) {
            st = ct_accept(run, &rows[rowmap[i]], out_tokens[i], any_lp ? &logprobs[i] : NULL);
            if (st != MCRT_OK)
                goto out;
        }
        prefill = 0;
    }
out:
    toy_free(host, tokens);
    toy_free(host, positions);
    toy_free(host, seq_index);
    toy_free(host, want);
    toy_free(host, context_len);
    toy_free(host, n_blocks);
    toy_free(host, tables);
    toy_free(host, history);
    toy_free(host, params);
    toy_free(host, history_len);
    toy_free(host, rowmap);
    toy_free(host, draw);
    toy_free(host, out_tokens);
    toy_free(host, logprobs);
    toy_free(host, logits);
    return st;
}

static mcrt_status ct_generate_static(void *vself, mcrt_request *const *reqs, size_t n)
{
    ct_self *self = (ct_self *)vself;
    const mcrt_host *host = self->host;
    ct_run run;
    ct_row *rows;
    size_t i;
    mcrt_status st = MCRT_OK;

    if (n == 0)
        return MCRT_OK;
    if (reqs == NULL) {
        toy_log(host, MCRT_LOG_ERROR, "generate_static: reqs is NULL (n = %zu)", n);
        return MCRT_E_INVAL;
    }
    for (i = 0; i < n; i++) {
        if (reqs[i] == NULL || !MCRT_HAS(reqs[i], params)) {
            toy_log(host, MCRT_LOG_ERROR, "generate_static: request %zu is NULL or too old", i);
            return MCRT_E_INVAL;
        }
    }
    rows = (ct_row *)toy_calloc(host, n, sizeof *rows);
    if (rows == NULL) {
        toy_log(host, MCRT_LOG_ERROR, "out of memory for a batch of %zu requests", n);
        return MCRT_E_NOMEM;
    }
    memset(&run, 0, sizeof run);
    run.self = self;
    run.ti.struct_size = (uint32_t)sizeof run.ti;
    run.mi.struct_size = (uint32_t)sizeof run.mi;
    for (i = 0; i < n; i++)
        rows[i].req = reqs[i];

    st = self->svc->tokenizer_info(host, &run.ti);
    if (st != MCRT_OK)
        toy_log(host, MCRT_LOG_ERROR, "cannot get the tokenizer info: %s", mcrt_status_str(st));
    if (st == MCRT_OK) {
        st = self->svc->model_info(host, &run.mi);
        if (st != MCRT_OK)
            toy_log(host, MCRT_LOG_ERROR, "cannot get the model info: %s", mcrt_status_str(st));
        else if (run.mi.kv_block_size <= 0 || run.mi.vocab_size <= 0 ||
                 run.mi.padded_vocab_size < run.mi.vocab_size) {
            toy_log(host, MCRT_LOG_ERROR,
                    "the model info is unusable (kv_block_size %d, vocab %d, padded %d)",
                    (int)run.mi.kv_block_size, (int)run.mi.vocab_size,
                    (int)run.mi.padded_vocab_size);
            st = MCRT_E_INTERNAL;
        }
    }
    for (i = 0; i < n && st == MCRT_OK; i++)
        st = ct_prepare(&run, &rows[i]);
    if (st == MCRT_OK)
        st = ct_loop(&run, rows, n);

    /* A batch-level error: nothing unfinished may be left behind. */
    for (i = 0; i < n; i++) {
        if (rows[i].state != CT_DONE) {
            char msg[160];
            snprintf(msg, sizeof msg, "the batch stopped: %s (see the log)",
                     mcrt_status_str(st == MCRT_OK ? MCRT_E_INTERNAL : st));
            (void)ct_finish(self, &rows[i], MCRT_REQ_FAILED, MCRT_FINISH_ERROR, msg);
            if (st == MCRT_OK)
                st = MCRT_E_INTERNAL;
        }
        toy_free(host, rows[i].tokens);
    }
    toy_free(host, run.text);
    toy_free(host, rows);
    return st;
}

static const mcrt_controller_iface ct_iface = {
    (uint32_t)sizeof(mcrt_controller_iface),
    ct_create,
    ct_destroy,
    ct_generate_static,
};

static const void *ct_get_iface(const char *iface_id)
{
    if (iface_id != NULL && strcmp(iface_id, MCRT_IFACE_CONTROLLER) == 0)
        return &ct_iface;
    return NULL;
}

MCRT_PLUGIN_DEFINE(MCRT_KIND_CONTROLLER, "toy", "0.1.0",
                   "test-only: one prefill step, then one decode token per row", NULL, NULL,
                   NULL, NULL, ct_get_iface);
