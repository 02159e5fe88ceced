/*
 * mcrt/model.h: the model interface ("mcrt.model/1"), Megatron-Core's model
 * inference wrapper level, for one rank.
 *
 * Every rank (world = tensor-parallel size x pipeline-parallel size) owns one
 * model instance holding its shard of the weights and of the KV cache. The
 * core's model group fans one step out to every rank and hands the logits of
 * the last pipeline stage back to the controller, so engines and controllers
 * see one logical model.
 *
 * A step is a flat batch, like a packed varlen sequence (DESIGN.md section 4).
 * Prefill of a prompt, one decode token, a chunk of a long prompt and any mix of
 * them are the same call. The KV cache is paged: the instance owns a pool of
 * kv_num_blocks blocks of kv_block_size tokens each; a sequence's block table
 * lists, in order, the blocks that hold its positions
 * [0, kv_block_size), [kv_block_size, 2*kv_block_size), ...
 *
 * Dimension legend: T = tokens in the step, S = sequences in the step,
 * Vp = padded vocabulary, H = hidden size.
 */
#ifndef MCRT_MODEL_H
#define MCRT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "mcrt/config.h" /* mcrt_config */
#include "mcrt/plugin.h" /* mcrt_host, mcrt_status */
#include "mcrt/tensor.h" /* mcrt_tensor */

#ifdef __cplusplus
extern "C" {
#endif

/* Where this instance sits in the parallel layout. world = tp_size * pp_size;
 * world_rank = pp_rank * tp_size + tp_rank (Megatron's order: TP innermost). */
typedef struct mcrt_rank_info {
    uint32_t struct_size;
    int32_t world_size;
    int32_t world_rank;
    int32_t tp_size;      /* tensor-model-parallel size */
    int32_t tp_rank;
    int32_t pp_size;      /* pipeline-model-parallel size */
    int32_t pp_rank;      /* 0 = first stage (embeddings), pp_size-1 = last (logits) */
    int32_t device;       /* MCRT_DEVICE_* this rank runs on */
    int32_t device_index; /* CUDA ordinal, 0 on the CPU */
    int32_t threads;      /* CPU threads this rank may use (>= 1) */
} mcrt_rank_info;

/* What the model tells the core and the controller. Identical on every rank
 * except the kv_* fields, which describe this rank's pool. */
typedef struct mcrt_model_info {
    uint32_t struct_size;
    int32_t vocab_size;           /* real vocabulary (ids the tokenizer knows) */
    int32_t padded_vocab_size;    /* Vp: rows of the output layer, >= vocab_size */
    int32_t max_sequence_length;  /* positions the model accepts */
    int32_t hidden_size;          /* H: activations passed between pipeline stages (0 allowed
                                     only for a model that refuses pp_size > 1) */
    int32_t num_layers;           /* layers of this rank's pipeline stage */
    int32_t kv_block_size;        /* tokens per KV block */
    int32_t kv_num_blocks;        /* blocks in this rank's pool */
    int32_t activation_dtype;     /* MCRT_DTYPE_* of hidden states between stages */
} mcrt_model_info;

/* One forward step. All arrays are borrowed for the call.
 * Tokens of one sequence appear in increasing position order; a sequence's
 * tokens attend to its context_len cached positions plus its earlier tokens
 * in this step (causal): the k-th token of sequence s in the step has position
 * context_len[s] + k. The step writes the K/V of every token it runs into
 * the sequence's blocks, so block tables must cover context_len + its tokens. */
typedef struct mcrt_step_batch {
    uint32_t struct_size;
    uint32_t n_tokens;                  /* T */
    uint32_t n_seqs;                    /* S */
    uint32_t n_logits;                  /* tokens with want_logits set */
    const int32_t *tokens;              /* [T] token ids (first stage) */
    const int32_t *positions;           /* [T] absolute positions */
    const int32_t *seq_index;           /* [T] index into the per-sequence arrays */
    const uint8_t *want_logits;         /* [T] 1 = return logits for this token */
    const int32_t *context_len;         /* [S] cached positions before this step */
    const int32_t *const *block_tables; /* [S] -> [n_blocks[s]] block ids in this rank's pool */
    const int32_t *n_blocks;            /* [S] */
} mcrt_step_batch;

/* The step's activations. The core supplies the buffers. Within a pipeline
 * stage every tensor-parallel rank computes the same hidden states (after its
 * all-reduce); the core passes hidden_out and logits to tp_rank 0 only, and
 * the other ranks of the stage receive NULL there and need not write them. */
typedef struct mcrt_step_io {
    uint32_t struct_size;
    uint32_t reserved;
    const mcrt_tensor *hidden_in;  /* [T, H] from the previous stage; NULL on the first stage */
    mcrt_tensor *hidden_out;       /* [T, H] for the next stage; NULL on the last stage */
    mcrt_tensor *logits;           /* [n_logits, Vp] fp32, rows in token order; last stage only */
} mcrt_step_io;

typedef struct mcrt_model_iface {
    uint32_t struct_size;

    /* [control] Build this rank's instance: read the config section, load its
     * shard of the weights, size its KV pool. `rank` is borrowed for the call.
     * On success *out_self is the plugin-owned instance; on failure it is
     * untouched and the reason was logged through `host`. */
    mcrt_status (*create)(const mcrt_host *host, const mcrt_config *cfg,
                          const mcrt_rank_info *rank, void **out_self);

    /* [control] Free everything the instance owns. */
    void (*destroy)(void *self);

    /* [control] Describe the model; `out` is caller-owned and filled in up to
     * out->struct_size. */
    mcrt_status (*info)(void *self, mcrt_model_info *out);

    /* [instance] Run one step on this rank. Buffers in `io` are owned by the
     * core and valid for the call. An invalid batch (token id out of range,
     * position past max_sequence_length, block id outside the pool) returns
     * MCRT_E_INVAL with a logged reason and leaves the KV cache unchanged. */
    mcrt_status (*step)(void *self, const mcrt_step_batch *batch, const mcrt_step_io *io);
} mcrt_model_iface;

#ifdef __cplusplus
}
#endif

#endif /* MCRT_MODEL_H */
