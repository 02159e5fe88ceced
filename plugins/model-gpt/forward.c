/*
 * plugins/model-gpt/forward.c: one step of the MCore GPT forward (reference
 * §2.1) for one rank, over the ops of kernels/ops.h.
 *
 *   x = E_word[tokens] (+ E_pos[positions])                  first stage
 *   for each layer of this stage:
 *       x = x + r;  h = Norm_in(x)            (r: the previous sublayer's output)
 *       q, k, v = split(h W_qkv^T + b_qkv)    group-major rows
 *       q, k = qk_norm(q, k); RoPE(q, k)      when configured
 *       cache[positions] = k, v               paged, through the block tables
 *       a = softmax(q K^T / sqrt(HS)) V       causal over the cache
 *       r = a W_proj^T + b_proj
 *       x = x + r;  h = Norm_mlp(x)
 *       r = act(h W_fc1^T + b_fc1) W_fc2^T + b_fc2
 *   logits = Norm_final(x + r) W_out^T        last stage, rows that want them
 *   hidden_out = x + r                        other stages
 *
 * The residual add is fused into the next norm, so x + r is formed once per
 * sublayer. With tensor parallelism (a later issue lends the communicator),
 * r after linear_proj and after linear_fc2, and the embedding output, are
 * all-reduced at the three places marked TP, the biases of proj and fc2 added
 * after; every dimension below is already this rank's share (NH/tp heads,
 * NKV/tp groups, F/tp MLP rows, Vp/tp vocabulary rows).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "gpt.h"

static mcrt_status step_fail(const gpt_model *m, const char *fmt, ...) MCRT_PRINTF(2, 3);
static mcrt_status step_fail(const gpt_model *m, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gpt_log(m, MCRT_LOG_ERROR, "step: %s", msg);
    return MCRT_E_INVAL;
}

/* ints: [S] per-sequence counters, then the flat block table [S, MB]. */
static mcrt_status grow_iscratch(gpt_model *m, size_t n)
{
    if (n <= m->iscratch_n)
        return MCRT_OK;
    int32_t *p = gpt_alloc(m, n * sizeof *p);
    if (p == NULL)
        return MCRT_E_NOMEM;
    gpt_free(m, m->iscratch);
    m->iscratch = p;
    m->iscratch_n = n;
    return MCRT_OK;
}

static mcrt_status grow_scratch(gpt_model *m, size_t n)
{
    if (n <= m->scratch_floats)
        return MCRT_OK;
    float *p = gpt_alloc(m, n * sizeof *p);
    if (p == NULL)
        return MCRT_E_NOMEM;
    gpt_free(m, m->scratch);
    m->scratch = p;
    m->scratch_floats = n;
    return MCRT_OK;
}

static bool tensor_is(const mcrt_tensor *t, int64_t d0, int64_t d1)
{
    return t->data != NULL && t->dtype == MCRT_DTYPE_F32 && t->ndim == 2 && t->shape[0] == d0 &&
           t->shape[1] == d1 && (d0 <= 1 || t->stride[0] == d1) && (d1 <= 1 || t->stride[1] == 1);
}

mcrt_status gpt_validate_step(gpt_model *m, const mcrt_step_batch *b, const mcrt_step_io *io)
{
    const gpt_config *c = &m->cfg;
    if (b == NULL || io == NULL || !MCRT_HAS(b, n_blocks) || !MCRT_HAS(io, logits))
        return step_fail(m, "no batch or io, or their struct_size is too small");
    uint32_t T = b->n_tokens, S = b->n_seqs;
    if (T == 0)
        return MCRT_OK;
    if (S == 0 || T > (1u << 24) || S > T)
        return step_fail(m, "%u tokens in %u sequences", T, S);
    if (b->positions == NULL || b->seq_index == NULL || b->want_logits == NULL ||
        b->context_len == NULL || b->block_tables == NULL || b->n_blocks == NULL ||
        (m->first_stage && b->tokens == NULL))
        return step_fail(m, "a required array of the batch is NULL");
    if (grow_iscratch(m, S) != MCRT_OK)
        return MCRT_E_NOMEM;
    int32_t *cnt = m->iscratch;
    memset(cnt, 0, sizeof(int32_t) * S);
    uint32_t n_logits = 0;
    for (uint32_t t = 0; t < T; t++) {
        int32_t s = b->seq_index[t];
        if (s < 0 || (uint32_t)s >= S)
            return step_fail(m, "token %u: sequence index %d is outside [0, %u)", t, (int)s, S);
        if (m->first_stage && (b->tokens[t] < 0 || b->tokens[t] >= c->vocab_size))
            return step_fail(m, "token %u (sequence %d): id %d is outside the vocabulary "
                             "[0, %d)", t, (int)s, (int)b->tokens[t], c->vocab_size);
        int32_t ctx = b->context_len[s];
        if (ctx < 0)
            return step_fail(m, "sequence %d: context_len %d < 0", (int)s, (int)ctx);
        int64_t want = (int64_t)ctx + cnt[s];
        if (b->positions[t] != want)
            return step_fail(m, "token %u (sequence %d): position %d, expected %lld (its "
                             "context_len %d + its tokens before it in this step)", t, (int)s,
                             (int)b->positions[t], (long long)want, (int)ctx);
        if (b->positions[t] >= c->max_sequence_length)
            return step_fail(m, "token %u (sequence %d): position %d is past the model's "
                             "max_sequence_length %d", t, (int)s, (int)b->positions[t],
                             c->max_sequence_length);
        cnt[s]++;
        n_logits += b->want_logits[t] != 0;
    }
    if (n_logits != b->n_logits)
        return step_fail(m, "n_logits is %u but %u tokens want logits", b->n_logits, n_logits);
    for (uint32_t s = 0; s < S; s++) {
        if (cnt[s] == 0)
            continue;
        int64_t need_pos = (int64_t)b->context_len[s] + cnt[s];
        int64_t need = (need_pos + c->kv_block_size - 1) / c->kv_block_size;
        if (b->n_blocks[s] < need || b->block_tables[s] == NULL)
            return step_fail(m, "sequence %u: %d KV blocks of %d tokens do not hold its %lld "
                             "positions (the KV pool was too small for the request?)", s,
                             (int)b->n_blocks[s], c->kv_block_size, (long long)need_pos);
        for (int64_t k = 0; k < need; k++) {
            int32_t blk = b->block_tables[s][k];
            if (blk < 0 || blk >= m->kv_num_blocks)
                return step_fail(m, "sequence %u: block table entry %lld = %d is outside the "
                                 "pool [0, %lld)", s, (long long)k, (int)blk,
                                 (long long)m->kv_num_blocks);
        }
    }
    if (!m->first_stage && (io->hidden_in == NULL || !tensor_is(io->hidden_in, T,
                                                                 c->hidden_size)))
        return step_fail(m, "hidden_in must be an f32 [%u, %d] contiguous tensor on pipeline "
                         "stage %d", T, c->hidden_size, m->rank.pp_rank);
    if (!m->last_stage && io->hidden_out != NULL && !tensor_is(io->hidden_out, T,
                                                               c->hidden_size))
        return step_fail(m, "hidden_out must be an f32 [%u, %d] contiguous tensor", T,
                         c->hidden_size);
    if (m->last_stage && io->logits != NULL &&
        !tensor_is(io->logits, n_logits, c->padded_vocab_size))
        return step_fail(m, "logits must be an f32 [%u, %d] contiguous tensor", n_logits,
                         c->padded_vocab_size);
    if (m->last_stage && m->rank.tp_rank == 0 && n_logits > 0 && io->logits == NULL)
        return step_fail(m, "%u tokens want logits but io->logits is NULL", n_logits);
    return MCRT_OK;
}

/* Norm of rows [n, C]: out = norm(x (+ r)), resid_out = x (+ r) when not NULL. */
static mcrt_status norm(const gpt_model *m, float *out, float *resid_out, const float *x,
                        const float *r, const float *w, const float *bias, int n, int C)
{
    const gpt_config *c = &m->cfg;
    if (c->normalization == GPT_RMSNORM)
        return m->ops->rmsnorm(out, resid_out, x, r, w, (float)c->norm_epsilon,
                               c->apply_layernorm_1p, n, C, m->ctx);
    return m->ops->layernorm(out, resid_out, x, r, w, bias, (float)c->norm_epsilon,
                             c->apply_layernorm_1p, n, C, m->ctx);
}

mcrt_status gpt_forward(gpt_model *m, const mcrt_step_batch *b, const mcrt_step_io *io)
{
    const gpt_config *c = &m->cfg;
    const mk_ops *ops = m->ops;
    mk_ctx *ctx = m->ctx;
    int T = (int)b->n_tokens, S = (int)b->n_seqs, NL = (int)b->n_logits;
    if (T == 0)
        return MCRT_OK;
    int tp = m->rank.tp_size;
    int C = c->hidden_size, HS = c->kv_channels, BS = c->kv_block_size;
    int NH = c->num_attention_heads / tp, NKV = c->num_query_groups / tp;
    int F = c->ffn_hidden_size / tp;
    int F1 = c->activation == MK_ACT_SWIGLU ? 2 * F : F;
    int QKV = (NH + 2 * NKV) * HS;

    /* the flat block table [S, MB] */
    int MB = 1;
    for (int s = 0; s < S; s++)
        if (b->n_blocks[s] > MB)
            MB = b->n_blocks[s];
    if (grow_iscratch(m, (size_t)S * (size_t)MB) != MCRT_OK)
        return MCRT_E_NOMEM;
    int32_t *table = m->iscratch;
    for (int s = 0; s < S; s++) {
        int nb = b->n_blocks[s];
        if (nb > 0 && b->block_tables[s] != NULL)
            memcpy(table + (size_t)s * MB, b->block_tables[s], sizeof(int32_t) * (size_t)nb);
        for (int k = nb; k < MB; k++)
            table[(size_t)s * MB + k] = 0; /* never read: past the sequence */
    }

    /* scratch: x, h, r [T,C]; qkv [T,QKV]; q [T,NH,HS]; k, v [T,NKV,HS];
     * att [T,NH*HS]; f1 [T,F1]; g [T,F]; final: xr, rr, hn [NL,C], lo [NL,Vrows] */
    int Vrows = m->last_stage ? m->out.rows : 0;
    size_t Tz = (size_t)T, NLz = (size_t)NL;
    size_t need = Tz * (3 * (size_t)C + (size_t)QKV + 2 * (size_t)NH * HS +
                        2 * (size_t)NKV * HS + (size_t)F1 + (size_t)F) +
                  NLz * (3 * (size_t)C + (size_t)Vrows);
    if (grow_scratch(m, need) != MCRT_OK) {
        gpt_log(m, MCRT_LOG_ERROR, "step: out of memory for %zu floats of activations", need);
        return MCRT_E_NOMEM;
    }
    float *p = m->scratch;
    float *x = p; p += Tz * C;
    float *h = p; p += Tz * C;
    float *r = p; p += Tz * C;
    float *qkv = p; p += Tz * QKV;
    float *q = p; p += Tz * NH * HS;
    float *k = p; p += Tz * NKV * HS;
    float *v = p; p += Tz * NKV * HS;
    float *att = p; p += Tz * NH * HS;
    float *f1 = p; p += Tz * F1;
    float *g = p; p += Tz * F;
    float *xr = p; p += NLz * C;
    float *rr = p; p += NLz * C;
    float *hn = p; p += NLz * C;
    float *lo = p;

    mcrt_status st = MCRT_OK;
    if (m->first_stage) {
        st = ops->embedding(x, b->tokens, b->positions, m->wte.w,
                            c->position_embedding_type == GPT_POS_LEARNED ? m->wpe.w : NULL,
                            m->wte.dtype, m->wte.rows * m->rank.tp_rank, T, C, m->wte.rows, ctx);
        /* TP: all-reduce x (vocab-parallel rows; wpe added on one rank only) */
    } else {
        memcpy(x, io->hidden_in->data, sizeof(float) * Tz * C);
    }
    const float *res = NULL;
    for (int l = 0; l < m->n_layers && st == MCRT_OK; l++) {
        gpt_layer *ly = &m->layers[l];
        if ((st = norm(m, h, x, x, res, ly->ln1_w, ly->ln1_b, T, C)) != MCRT_OK ||
            (st = ops->matmul(qkv, h, ly->qkv.w, ly->qkv.dtype, ly->qkv_b, T, C, QKV, ctx)) ||
            (st = ops->split_qkv(q, k, v, qkv, T, NH, NKV, HS, ctx)))
            break;
        if (c->qk_layernorm &&
            ((st = norm(m, q, NULL, q, NULL, ly->q_ln_w, ly->q_ln_b, T * NH, HS)) ||
             (st = norm(m, k, NULL, k, NULL, ly->k_ln_w, ly->k_ln_b, T * NKV, HS))))
            break;
        if (c->position_embedding_type == GPT_POS_ROPE &&
            (st = ops->rotary(q, k, b->positions, (float)c->rotary_base, c->rotary_interleaved,
                              T, NH, NKV, HS, c->rot_dim, ctx)))
            break;
        if ((st = ops->kv_write(ly->k_cache, ly->v_cache, k, v, b->positions, b->seq_index,
                                table, T, NKV, HS, BS, MB, ctx)) ||
            (st = ops->attention(att, q, ly->k_cache, ly->v_cache, b->positions, b->seq_index,
                                 table, 0.0f, T, NH, NKV, HS, BS, MB, ctx)) ||
            (st = ops->matmul(r, att, ly->proj.w, ly->proj.dtype, tp == 1 ? ly->proj_b : NULL,
                              T, NH * HS, C, ctx)))
            break;
        /* TP: all-reduce r, then add proj_b */
        if ((st = norm(m, h, x, x, r, ly->ln2_w, ly->ln2_b, T, C)) ||
            (st = ops->matmul(f1, h, ly->fc1.w, ly->fc1.dtype, ly->fc1_b, T, C, F1, ctx)) ||
            (st = ops->activation(g, f1, c->activation, T, F, ctx)) ||
            (st = ops->matmul(r, g, ly->fc2.w, ly->fc2.dtype, tp == 1 ? ly->fc2_b : NULL, T, F,
                              C, ctx)))
            break;
        /* TP: all-reduce r, then add fc2_b */
        res = r;
    }
    if (st != MCRT_OK) {
        gpt_log(m, MCRT_LOG_ERROR, "step: a kernel failed: %s", mcrt_status_str(st));
        return st;
    }
    if (!m->last_stage) {
        if (io->hidden_out == NULL)
            return MCRT_OK;
        float *out = io->hidden_out->data;
        if (res != NULL)
            return ops->residual(out, x, res, T * C, ctx);
        memcpy(out, x, sizeof(float) * Tz * C);
        return MCRT_OK;
    }
    if (NL == 0 || io->logits == NULL)
        return MCRT_OK;
    /* the rows that want logits, in token order */
    int i = 0;
    for (int t = 0; t < T; t++) {
        if (!b->want_logits[t])
            continue;
        memcpy(xr + (size_t)i * C, x + (size_t)t * C, sizeof(float) * C);
        if (res != NULL)
            memcpy(rr + (size_t)i * C, res + (size_t)t * C, sizeof(float) * C);
        i++;
    }
    if ((st = norm(m, hn, NULL, xr, res != NULL ? rr : NULL, m->lnf_w, m->lnf_b, NL, C)))
        return st;
    int Vp = c->padded_vocab_size;
    float *logits = io->logits->data;
    if (Vrows == Vp)
        return ops->matmul(logits, hn, m->out.w, m->out.dtype, NULL, NL, C, Vp, ctx);
    /* HF: no padding rows; the padded ids get logit 0 (as zero rows would give) */
    if ((st = ops->matmul(lo, hn, m->out.w, m->out.dtype, NULL, NL, C, Vrows, ctx)))
        return st;
    for (int row = 0; row < NL; row++) {
        memcpy(logits + (size_t)row * Vp, lo + (size_t)row * Vrows, sizeof(float) * Vrows);
        memset(logits + (size_t)row * Vp + Vrows, 0, sizeof(float) * (size_t)(Vp - Vrows));
    }
    /* TP: gather the vocabulary shards of the logits */
    return MCRT_OK;
}
