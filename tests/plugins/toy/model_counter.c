/*
 * mcrt-model-counter: a test-only, deterministic toy "network" with a real
 * paged KV cache, for proving the step ABI and the runtime end to end.
 *
 * The KV cache is an int32 pool [kv_num_blocks, kv_block_size]: slot
 * (block, offset) holds the token id stored at that position, -1 when never
 * written. A step first validates the whole batch (nothing is written when it
 * is invalid), then stores each token at position p into block
 * block_tables[s][p / kv_block_size], offset p % kv_block_size, and for each
 * token with want_logits produces one logits row of Vp floats:
 *
 *   sum  = token ids at positions 0..p of that sequence, read back through
 *          its block table (cached context and this step's tokens alike)
 *   next = (sum + p) % 256      (p = the position being run; the + p keeps the
 *                                sequence from collapsing to 0 as the sum doubles)
 *   logits[j] = 0.0 for every real id j in [0, vocab_size),
 *               -1e4 for every padding id j in [vocab_size, padded_vocab_size)
 *                 (finite, far below any real id: never the argmax, and no
 *                 inf/NaN in a softmax over Vp)
 *   logits[(next + 1) % 256] = 9.0
 *   logits[next] = 10.0
 *   and, when eod_at_length > 0 and p + 1 >= eod_at_length:
 *   logits[vocab_size - 1] = 11.0   (the bytes tokenizer's <|endoftext|>)
 *
 * So greedy decoding appends next = (sum of the whole sequence so far + p) % 256,
 * a known function of the prompt (tools/reference/toy_counter.py).
 * vocab_size must be >= 256 so that `next` is a real id.
 *
 * Ranks: any tp_size x pp_size layout gives the same logits, which is what
 * the core's rank structure is tested with. Every rank keeps its own KV pool
 * (indexed by the same block ids). Pipeline stage 0 reads the token ids from
 * the batch; it and every middle stage pass them on as the hidden state
 * (H = 1, fp32, hidden_out [T, 1]); later stages read them from hidden_in.
 * The last stage computes the logits. Tensor-parallel ranks of a stage all
 * compute; only the one the core gives io->logits / io->hidden_out (tp_rank
 * 0) writes them.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mcrt/mcrt.h"
#include "toy_common.h"

#define MC_MAX_SEQ_LIMIT (1 << 24)
#define MC_PAD_LOGIT (-1.0e4f)

static const mcrt_config_key mc_keys[] = {
    MCRT_CONFIG_KEY_RANGE(MCRT_CFG_INT, "kv_block_size", "16", 1.0, 4096.0,
                          "tokens per KV block"),
    MCRT_CONFIG_KEY_RANGE(MCRT_CFG_INT, "kv_num_blocks", "256", 1.0, 1048576.0,
                          "blocks in the KV pool"),
    MCRT_CONFIG_KEY_RANGE(MCRT_CFG_INT, "max_sequence_length", "1024", 1.0, 16777216.0,
                          "positions the model accepts"),
    MCRT_CONFIG_KEY_RANGE(MCRT_CFG_INT, "vocab_size", "257", 256.0, 16777216.0,
                          "real vocabulary size (at least 256)"),
    MCRT_CONFIG_KEY_RANGE(MCRT_CFG_INT, "make_vocab_size_divisible_by", "8", 1.0, 65536.0,
                          "pad the vocabulary up to a multiple of this"),
    MCRT_CONFIG_KEY_RANGE(MCRT_CFG_INT, "eod_at_length", "0", 0.0, 16777216.0,
                          "when > 0, predict id vocab_size-1 once a sequence has this many tokens"),
    MCRT_CONFIG_KEY_END,
};

typedef struct mc_self {
    const mcrt_host *host;
    int32_t block_size;
    int32_t num_blocks;
    int32_t max_seq;
    int32_t vocab;
    int32_t padded_vocab;
    int32_t eod_at_length;
    int32_t pp_rank, pp_size, tp_rank;
    int32_t *pool; /* [num_blocks * block_size], -1 = never written */
} mc_self;

/* Per-sequence scratch of one step. */
typedef struct mc_seq {
    int64_t sum;      /* token ids summed so far, positions 0..next_pos-1 */
    int32_t next_pos; /* the position the sequence's next token must have */
    int32_t has_tokens;
} mc_seq;

static mcrt_status mc_create(const mcrt_host *host, const mcrt_config *cfg,
                             const mcrt_rank_info *rank, void **out_self)
{
    int64_t bs, nb, msl, v, div, eod_at, padded;
    size_t slots, i;
    mc_self *self;
    mcrt_status st = toy_check_host(host);
    if (st != MCRT_OK)
        return st;
    if (out_self == NULL) {
        toy_log(host, MCRT_LOG_ERROR, "create: out_self is NULL");
        return MCRT_E_INVAL;
    }
    if (rank == NULL || !MCRT_HAS(rank, pp_rank)) {
        toy_log(host, MCRT_LOG_ERROR, "create: rank info is missing or too old");
        return MCRT_E_INVAL;
    }
    if (rank->tp_size < 1 || rank->pp_size < 1 || rank->tp_rank < 0 ||
        rank->tp_rank >= rank->tp_size || rank->pp_rank < 0 || rank->pp_rank >= rank->pp_size ||
        rank->world_size != rank->tp_size * rank->pp_size ||
        rank->world_rank != rank->pp_rank * rank->tp_size + rank->tp_rank) {
        toy_log(host, MCRT_LOG_ERROR,
                "create: inconsistent rank info (world %d/%d, tp %d/%d, pp %d/%d)",
                (int)rank->world_rank, (int)rank->world_size, (int)rank->tp_rank,
                (int)rank->tp_size, (int)rank->pp_rank, (int)rank->pp_size);
        return MCRT_E_INVAL;
    }
    if ((st = toy_config_int(host, cfg, "kv_block_size", 16, 1, 4096, &bs)) != MCRT_OK ||
        (st = toy_config_int(host, cfg, "kv_num_blocks", 256, 1, 1 << 20, &nb)) != MCRT_OK ||
        (st = toy_config_int(host, cfg, "max_sequence_length", 1024, 1, MC_MAX_SEQ_LIMIT,
                             &msl)) != MCRT_OK ||
        (st = toy_config_int(host, cfg, "vocab_size", 257, 256, MC_MAX_SEQ_LIMIT, &v)) !=
            MCRT_OK ||
        (st = toy_config_int(host, cfg, "make_vocab_size_divisible_by", 8, 1, 65536, &div)) !=
            MCRT_OK ||
        (st = toy_config_int(host, cfg, "eod_at_length", 0, 0, MC_MAX_SEQ_LIMIT, &eod_at)) !=
            MCRT_OK)
        return st;
    padded = (v + div - 1) / div * div; /* <= 2^24 + 2^16, fits int32 */

    self = (mc_self *)toy_calloc(host, 1, sizeof *self);
    if (self == NULL) {
        toy_log(host, MCRT_LOG_ERROR, "out of memory creating the counter model");
        return MCRT_E_NOMEM;
    }
    self->host = host;
    self->block_size = (int32_t)bs;
    self->num_blocks = (int32_t)nb;
    self->max_seq = (int32_t)msl;
    self->vocab = (int32_t)v;
    self->padded_vocab = (int32_t)padded;
    self->eod_at_length = (int32_t)eod_at;
    self->pp_rank = rank->pp_rank;
    self->pp_size = rank->pp_size;
    self->tp_rank = rank->tp_rank;
    slots = (size_t)nb * (size_t)bs;
    self->pool = (int32_t *)toy_calloc(host, slots, sizeof(int32_t));
    if (self->pool == NULL) {
        toy_log(host, MCRT_LOG_ERROR,
                "out of memory for the KV pool (%lld blocks x %lld tokens x 4 bytes)",
                (long long)nb, (long long)bs);
        toy_free(host, self);
        return MCRT_E_NOMEM;
    }
    for (i = 0; i < slots; i++)
        self->pool[i] = -1;
    toy_log(host, MCRT_LOG_DEBUG,
            "counter model: vocab %d (padded %d), max_sequence_length %d, KV %d x %d",
            (int)v, (int)padded, (int)msl, (int)nb, (int)bs);
    *out_self = self;
    return MCRT_OK;
}

static void mc_destroy(void *vself)
{
    mc_self *self = (mc_self *)vself;
    if (self == NULL)
        return;
    toy_free(self->host, self->pool);
    toy_free(self->host, self);
}

static mcrt_status mc_info(void *vself, mcrt_model_info *out)
{
    mc_self *self = (mc_self *)vself;
    if (out == NULL) {
        toy_log(self->host, MCRT_LOG_ERROR, "info: out is NULL");
        return MCRT_E_INVAL;
    }
    /* Write only the fields the caller's struct has. */
    if (MCRT_HAS(out, vocab_size))
        out->vocab_size = self->vocab;
    if (MCRT_HAS(out, padded_vocab_size))
        out->padded_vocab_size = self->padded_vocab;
    if (MCRT_HAS(out, max_sequence_length))
        out->max_sequence_length = self->max_seq;
    if (MCRT_HAS(out, hidden_size))
        out->hidden_size = 1; /* the token id, passed from stage to stage */
    if (MCRT_HAS(out, num_layers))
        out->num_layers = 1;
    if (MCRT_HAS(out, kv_block_size))
        out->kv_block_size = self->block_size;
    if (MCRT_HAS(out, kv_num_blocks))
        out->kv_num_blocks = self->num_blocks;
    if (MCRT_HAS(out, activation_dtype))
        out->activation_dtype = MCRT_DTYPE_F32;
    return MCRT_OK;
}

/* The pool slot of position p of sequence s (p already checked against the
 * block table). */
static int32_t *mc_slot(const mc_self *self, const mcrt_step_batch *b, uint32_t s, int32_t p)
{
    int32_t block = b->block_tables[s][p / self->block_size];
    return &self->pool[(size_t)block * (size_t)self->block_size +
                       (size_t)(p % self->block_size)];
}

/* Everything about the batch and io that can be wrong, checked before any
 * write; fills seq[] (next_pos = context_len, sum of the cached context). */
static mcrt_status mc_validate(const mc_self *self, const mcrt_step_batch *b,
                               const int32_t *toks, const mcrt_step_io *io, mc_seq *seq)
{
    const mcrt_host *host = self->host;
    uint32_t t, s, n_logits = 0;

    if ((b->n_tokens > 0 && (b->tokens == NULL || b->positions == NULL ||
                             b->seq_index == NULL || b->want_logits == NULL)) ||
        (b->n_seqs > 0 && (b->context_len == NULL || b->block_tables == NULL ||
                           b->n_blocks == NULL))) {
        toy_log(host, MCRT_LOG_ERROR, "step: a batch array is NULL (%u tokens, %u sequences)",
                b->n_tokens, b->n_seqs);
        return MCRT_E_INVAL;
    }
    for (s = 0; s < b->n_seqs; s++) {
        int32_t k, nb = b->n_blocks[s], ctx = b->context_len[s];
        if (ctx < 0 || ctx > self->max_seq) {
            toy_log(host, MCRT_LOG_ERROR,
                    "step: sequence %u: context_len %d is outside [0, max_sequence_length %d]",
                    s, (int)ctx, (int)self->max_seq);
            return MCRT_E_INVAL;
        }
        if (nb < 0 || (nb > 0 && b->block_tables[s] == NULL)) {
            toy_log(host, MCRT_LOG_ERROR, "step: sequence %u: bad block table (n_blocks %d)", s,
                    (int)nb);
            return MCRT_E_INVAL;
        }
        for (k = 0; k < nb; k++) {
            int32_t id = b->block_tables[s][k];
            if (id < 0 || id >= self->num_blocks) {
                toy_log(host, MCRT_LOG_ERROR,
                        "step: sequence %u: block_tables[%d] = %d is outside the pool [0, %d)",
                        s, (int)k, (int)id, (int)self->num_blocks);
                return MCRT_E_INVAL;
            }
        }
        seq[s].sum = 0;
        seq[s].next_pos = ctx;
        seq[s].has_tokens = 0;
    }
    for (t = 0; t < b->n_tokens; t++) {
        int32_t tok = toks[t], pos = b->positions[t], si = b->seq_index[t];
        int64_t covered;
        if (tok < 0 || tok >= self->vocab) {
            toy_log(host, MCRT_LOG_ERROR, "step: token %u: id %d is outside [0, vocab_size %d)",
                    t, (int)tok, (int)self->vocab);
            return MCRT_E_INVAL;
        }
        if (si < 0 || (uint32_t)si >= b->n_seqs) {
            toy_log(host, MCRT_LOG_ERROR, "step: token %u: seq_index %d is outside [0, %u)", t,
                    (int)si, b->n_seqs);
            return MCRT_E_INVAL;
        }
        if (pos < 0 || pos >= self->max_seq) {
            toy_log(host, MCRT_LOG_ERROR,
                    "step: token %u: position %d is outside [0, max_sequence_length %d)", t,
                    (int)pos, (int)self->max_seq);
            return MCRT_E_INVAL;
        }
        if (pos != seq[si].next_pos) {
            toy_log(host, MCRT_LOG_ERROR,
                    "step: token %u: position %d of sequence %d should be %d (context_len %d "
                    "plus its earlier tokens in this step)",
                    t, (int)pos, (int)si, (int)seq[si].next_pos, (int)b->context_len[si]);
            return MCRT_E_INVAL;
        }
        covered = (int64_t)b->n_blocks[si] * self->block_size;
        if (pos >= covered) {
            toy_log(host, MCRT_LOG_ERROR,
                    "step: token %u: position %d of sequence %d is past its block table "
                    "(%d blocks x %d tokens)",
                    t, (int)pos, (int)si, (int)b->n_blocks[si], (int)self->block_size);
            return MCRT_E_INVAL;
        }
        seq[si].next_pos++;
        seq[si].has_tokens = 1;
        if (b->want_logits[t])
            n_logits++;
    }
    if (n_logits != b->n_logits) {
        toy_log(host, MCRT_LOG_ERROR, "step: n_logits is %u but %u tokens have want_logits set",
                b->n_logits, n_logits);
        return MCRT_E_INVAL;
    }
    /* The cached context of every sequence that runs: covered by its table,
     * written by earlier steps, summed through the block table. */
    for (s = 0; s < b->n_seqs; s++) {
        int32_t p, ctx = b->context_len[s];
        if (!seq[s].has_tokens)
            continue;
        if ((int64_t)ctx > (int64_t)b->n_blocks[s] * self->block_size) {
            toy_log(host, MCRT_LOG_ERROR,
                    "step: sequence %u: context_len %d is past its block table (%d blocks)", s,
                    (int)ctx, (int)b->n_blocks[s]);
            return MCRT_E_INVAL;
        }
        for (p = 0; p < ctx; p++) {
            int32_t v = *mc_slot(self, b, s, p);
            if (v < 0) {
                toy_log(host, MCRT_LOG_ERROR,
                        "step: sequence %u: cached position %d (block %d) was never written", s,
                        (int)p, (int)b->block_tables[s][p / self->block_size]);
                return MCRT_E_INVAL;
            }
            seq[s].sum += v;
        }
    }
    /* Logits are owed by the last stage's tp_rank 0, which the core hands a
     * buffer; the other ranks of that stage compute the same and write nothing. */
    if (n_logits > 0 && self->pp_rank == self->pp_size - 1 && self->tp_rank == 0) {
        const mcrt_tensor *lg = io != NULL && MCRT_HAS(io, logits) ? io->logits : NULL;
        if (lg == NULL || lg->data == NULL) {
            toy_log(host, MCRT_LOG_ERROR, "step: %u logits rows wanted but io->logits is NULL",
                    n_logits);
            return MCRT_E_INVAL;
        }
        if (lg->dtype != MCRT_DTYPE_F32 || lg->device != MCRT_DEVICE_CPU || lg->ndim != 2 ||
            lg->shape[0] < (int64_t)n_logits || lg->shape[1] != self->padded_vocab ||
            lg->stride[1] != 1 || lg->stride[0] < self->padded_vocab) {
            toy_log(host, MCRT_LOG_ERROR,
                    "step: io->logits must be a CPU fp32 [%u, %d] row-major tensor (got dtype "
                    "%d device %d ndim %d shape [%lld, %lld] stride [%lld, %lld])",
                    n_logits, (int)self->padded_vocab, (int)lg->dtype, (int)lg->device,
                    (int)lg->ndim, (long long)lg->shape[0], (long long)lg->shape[1],
                    (long long)lg->stride[0], (long long)lg->stride[1]);
            return MCRT_E_INVAL;
        }
    }
    return MCRT_OK;
}

static void mc_logits_row(const mc_self *self, int64_t sum, int32_t pos, float *row)
{
    int32_t j, next = (int32_t)((sum + pos) % 256);
    for (j = 0; j < self->vocab; j++)
        row[j] = 0.0f;
    for (j = self->vocab; j < self->padded_vocab; j++)
        row[j] = MC_PAD_LOGIT;
    row[(next + 1) % 256] = 9.0f;
    row[next] = 10.0f;
    if (self->eod_at_length > 0 && (int64_t)pos + 1 >= self->eod_at_length)
        row[self->vocab - 1] = 11.0f;
}

static mcrt_status mc_step(void *vself, const mcrt_step_batch *batch, const mcrt_step_io *io)
{
    mc_self *self = (mc_self *)vself;
    const mcrt_host *host = self->host;
    mc_seq *seq;
    uint32_t t, row = 0;
    mcrt_status st;

    if (batch == NULL || !MCRT_HAS(batch, n_blocks)) {
        toy_log(host, MCRT_LOG_ERROR, "step: the batch is NULL or too old");
        return MCRT_E_INVAL;
    }
    /* The tokens: from the batch on the first stage, from the previous
     * stage's hidden state [T, 1] on the others. */
    const int32_t *toks = batch->tokens;
    int32_t *from_hidden = NULL;
    if (self->pp_rank > 0) {
        const mcrt_tensor *h = io != NULL && MCRT_HAS(io, hidden_in) ? io->hidden_in : NULL;
        if (h == NULL || h->data == NULL || h->dtype != MCRT_DTYPE_F32 || h->ndim != 2 ||
            h->shape[0] != (int64_t)batch->n_tokens || h->shape[1] != 1) {
            toy_log(host, MCRT_LOG_ERROR, "step: stage %d needs hidden_in as fp32 [%u, 1]",
                    (int)self->pp_rank, batch->n_tokens);
            return MCRT_E_INVAL;
        }
        from_hidden = (int32_t *)toy_calloc(host, batch->n_tokens ? batch->n_tokens : 1,
                                            sizeof *from_hidden);
        if (from_hidden == NULL)
            return MCRT_E_NOMEM;
        for (t = 0; t < batch->n_tokens; t++) {
            float v = ((const float *)h->data)[(int64_t)t * h->stride[0]];
            from_hidden[t] = v >= 0.0f && v < (float)self->vocab ? (int32_t)v : -1;
        }
        toks = from_hidden;
    }
    seq = (mc_seq *)toy_calloc(host, batch->n_seqs, sizeof *seq);
    if (seq == NULL) {
        toy_free(host, from_hidden);
        toy_log(host, MCRT_LOG_ERROR, "step: out of memory for %u sequences", batch->n_seqs);
        return MCRT_E_NOMEM;
    }
    st = mc_validate(self, batch, toks, io, seq);
    if (st != MCRT_OK) {
        toy_free(host, seq);
        toy_free(host, from_hidden);
        return st;
    }
    /* Store every token in its slot... */
    for (t = 0; t < batch->n_tokens; t++)
        *mc_slot(self, batch, (uint32_t)batch->seq_index[t], batch->positions[t]) = toks[t];
    /* ...hand them to the next stage... */
    if (self->pp_rank < self->pp_size - 1 && io != NULL && MCRT_HAS(io, hidden_out) &&
        io->hidden_out != NULL) {
        const mcrt_tensor *h = io->hidden_out;
        if (h->data == NULL || h->dtype != MCRT_DTYPE_F32 || h->shape[0] != (int64_t)batch->n_tokens) {
            toy_log(host, MCRT_LOG_ERROR, "step: hidden_out must be fp32 [%u, 1]", batch->n_tokens);
            toy_free(host, seq);
            toy_free(host, from_hidden);
            return MCRT_E_INVAL;
        }
        for (t = 0; t < batch->n_tokens; t++)
            ((float *)h->data)[(int64_t)t * h->stride[0]] = (float)toks[t];
    }
    int write_logits = self->pp_rank == self->pp_size - 1 && io != NULL &&
                       MCRT_HAS(io, logits) && io->logits != NULL;
    /* ...then read the sequences back through their block tables. */
    for (t = 0; t < batch->n_tokens; t++) {
        uint32_t s = (uint32_t)batch->seq_index[t];
        int32_t pos = batch->positions[t];
        seq[s].sum += *mc_slot(self, batch, s, pos);
        if (batch->want_logits[t] && write_logits) {
            float *out = (float *)io->logits->data + (int64_t)row * io->logits->stride[0];
            mc_logits_row(self, seq[s].sum, pos, out);
            row++;
        }
    }
    toy_free(host, seq);
    toy_free(host, from_hidden);
    return MCRT_OK;
}

static const mcrt_model_iface mc_iface = {
    (uint32_t)sizeof(mcrt_model_iface),
    mc_create,
    mc_destroy,
    mc_info,
    mc_step,
};

static const void *mc_get_iface(const char *iface_id)
{
    if (iface_id != NULL && strcmp(iface_id, MCRT_IFACE_MODEL) == 0)
        return &mc_iface;
    return NULL;
}

MCRT_PLUGIN_DEFINE(MCRT_KIND_MODEL, "counter", "0.1.0",
                   "test-only: greedy next token = (sum of the sequence's ids + position) % 256, paged KV",
                   mc_keys, NULL, NULL, NULL, mc_get_iface);
