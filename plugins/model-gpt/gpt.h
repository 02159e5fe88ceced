/*
 * plugins/model-gpt/gpt.h: the GPT model plugin's internal types.
 *
 * One instance = one rank: its pipeline stage's layers, its tensor-parallel
 * shard of each (tp = 1 today), its KV pool and its scratch. Files:
 *   plugin.c   the entry, config keys, create/destroy/info/step
 *   config.c   hyper-parameters: YAML (Megatron argument names) > the
 *              checkpoint's own (HF config.json) > Megatron's defaults
 *   load.c     weights: MCore (TE and local spellings) and HF GPT-2 names onto
 *              one internal layout, views of the mapped file where possible
 *   forward.c  step validation and the forward pass over kernels/ops.h
 *
 * Dimension legend as kernels/ops.h: T tokens, S sequences, C hidden,
 * F ffn hidden, NH query heads, NKV query groups, HS head size, Vp padded
 * vocabulary, NB KV blocks, BS tokens per block.
 */
#ifndef MCRT_MODEL_GPT_H
#define MCRT_MODEL_GPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/ops.h"
#include "mcrt/mcrt.h"

#define GPT_MAX_LAYERS 4096

enum gpt_norm { GPT_LAYERNORM = 1, GPT_RMSNORM = 2 };
enum gpt_pos { GPT_POS_LEARNED = 1, GPT_POS_ROPE = 2 };

/* Hyper-parameters, Megatron's meanings (reference §2.2). */
typedef struct gpt_config {
    int hidden_size;             /* C */
    int num_layers;              /* whole model */
    int num_attention_heads;     /* NH */
    int num_query_groups;        /* NKV */
    int kv_channels;             /* HS */
    int ffn_hidden_size;         /* F */
    int normalization;           /* gpt_norm */
    double norm_epsilon;
    bool apply_layernorm_1p;
    bool qk_layernorm;
    int position_embedding_type; /* gpt_pos */
    double rotary_percent;
    double rotary_base;
    bool rotary_interleaved;
    int rot_dim;                 /* int(HS * rotary_percent) */
    int max_position_embeddings; /* 0 = not given (rope) */
    int max_sequence_length;     /* positions a sequence may use */
    mk_act activation;
    bool add_bias_linear;
    bool add_qkv_bias;
    bool untie;                  /* untie_embeddings_and_output_weights */
    int vocab_size;              /* V */
    int padded_vocab_size;       /* Vp */
    /* runtime */
    int kv_block_size;           /* BS */
    int64_t kv_num_blocks;       /* 0 = from kv_cache_memory */
    uint64_t kv_cache_memory;    /* bytes; 0 = auto */
    int32_t weights_dtype;       /* 0 = as stored, else MCRT_DTYPE_F32/BF16/F16 */
    bool reference_kernels;      /* kernels: reference */
    const char *load;            /* checkpoint path */
} gpt_config;

/* A weight matrix [rows, cols], row-major, in `dtype`: a view of the mapped
 * checkpoint, or `owned` (host memory) when it had to be converted, sliced
 * or rearranged. */
typedef struct gpt_mat {
    const void *w;
    int32_t dtype;
    int rows, cols;
    void *owned;
} gpt_mat;

typedef struct gpt_layer {
    float *ln1_w, *ln1_b;        /* [C]; b only with LayerNorm */
    gpt_mat qkv;                 /* [(NH + 2 NKV) HS, C], group-major */
    float *qkv_b;                /* [(NH + 2 NKV) HS] or NULL */
    float *q_ln_w, *q_ln_b;      /* [HS] with qk_layernorm */
    float *k_ln_w, *k_ln_b;
    gpt_mat proj;                /* [C, NH HS] */
    float *proj_b;               /* [C] or NULL */
    float *ln2_w, *ln2_b;        /* [C] */
    gpt_mat fc1;                 /* [F or 2F, C]; SwiGLU rows [gate; up] */
    float *fc1_b;
    gpt_mat fc2;                 /* [C, F] */
    float *fc2_b;
    float *k_cache, *v_cache;    /* [NB, NKV, BS, HS] each */
} gpt_layer;

typedef struct gpt_model {
    const mcrt_host *host;
    const mcrt_checkpoint_services *ck_svc;
    mcrt_checkpoint *ck;         /* open while views are in use */
    bool use_ckpt_args;          /* model.use_checkpoint_args (Megatron's rules, config.c) */
    gpt_config cfg;
    mcrt_rank_info rank;
    int first_layer, n_layers;   /* this stage's layers [first, first + n) */
    bool first_stage, last_stage;

    gpt_mat wte;                 /* [rows, C], rows = Vp (MCore) or V (HF, no padding) */
    gpt_mat wpe;                 /* [max_pos, C] learned positions, same dtype as wte */
    float *lnf_w, *lnf_b;        /* final norm */
    gpt_mat out;                 /* [rows, C]: the output layer (== wte when tied) */
    gpt_layer *layers;           /* [n_layers] */

    int64_t kv_num_blocks;       /* NB */
    void *layers_kv_base;        /* the pool's mapping */
    size_t kv_bytes;             /* the whole pool, all layers, K and V */
    size_t weight_bytes;         /* matrices and vectors this rank holds */
    size_t weight_bytes_mapped;  /* of which views of the file */
    size_t vector_bytes;         /* of which f32 norm weights and biases (always copies) */

    const mk_ops *ops;
    mk_ctx *ctx;

    /* step scratch, grown on demand (host memory) */
    float *scratch;
    size_t scratch_floats;
    int32_t *iscratch;
    size_t iscratch_n;
} gpt_model;

/* log through the host, prefixed by nothing (the core tags the plugin). */
void gpt_log(const gpt_model *m, int32_t level, const char *fmt, ...) MCRT_PRINTF(3, 4);
void *gpt_alloc(const gpt_model *m, size_t bytes);
void gpt_free(const gpt_model *m, void *p);

/* config.c: read and validate; MCRT_E_CONFIG with a logged reason. Needs
 * m->host, m->ck_svc and m->ck (for the checkpoint's own arguments). */
mcrt_status gpt_config_read(gpt_model *m, const mcrt_config *cfg);
/* The keys the plugin declares (plugin.c points its entry at them). */
extern const mcrt_config_key gpt_config_keys[];

/* load.c: every weight of this rank; MCRT_E_DATA / _NOTFOUND / _NOMEM logged. */
mcrt_status gpt_load_weights(gpt_model *m);
void gpt_free_weights(gpt_model *m);

/* forward.c */
mcrt_status gpt_validate_step(gpt_model *m, const mcrt_step_batch *b, const mcrt_step_io *io);
mcrt_status gpt_forward(gpt_model *m, const mcrt_step_batch *b, const mcrt_step_io *io);

#endif /* MCRT_MODEL_GPT_H */
