/*
 * kernels/ops.h: the op list of the GPT forward pass, one argument order for
 * every device.
 *
 * Every device (kernels/cpu today, kernels/cuda later) implements each op
 * below with exactly the signature of its mk_<op>_fn type, and publishes an
 * mk_ops table of them. Model plugins call ops only through such a table, so a
 * plugin's forward pass reads the same on every device. The CPU side also
 * exports each op by name: <op>_forward_cpu is the plain reference (readable,
 * kept forever as the definition and the fallback) and <op>_forward_cpu_fast
 * the threaded, SIMD-dispatched version (kernels/cpu/cpu.h).
 *
 * Argument order, always: outputs, then inputs (each pointer followed by its
 * dtype where it has one, then scalar parameters), then dimensions, then the
 * execution context. Pointers are plain device pointers; an output that is
 * also read (in place) is listed with the outputs.
 *
 * Dimension legend:
 *   T    tokens in the step (a flat batch: prefill, decode and chunks mixed)
 *   S    sequences in the step;   MB  entries per row of the block table
 *   C    hidden size;             F   ffn hidden size (SwiGLU input is 2F)
 *   NH   query heads;             NKV key/value heads (query groups), NH % NKV == 0
 *   HS   head size (kv_channels, need not be C / NH)
 *   V    vocabulary rows held by this rank;  Vp  padded vocabulary
 *   K, N matmul reduction / output width
 *   NB   blocks in the KV pool;   BS  tokens per KV block
 *
 * Dtypes. Activations, norm weights, biases and the KV cache are f32 on the
 * CPU. Matrix weights (matmul, embedding tables) are MCRT_DTYPE_F32, _BF16 or
 * _F16, read in place and widened on the fly; no op ever makes an f32 copy of
 * a weight matrix. Accumulation is always f32 or wider.
 *
 * KV pool layout (one pool for K and one for V, per layer):
 *   k_cache, v_cache: [NB, NKV, BS, HS] f32, i.e. element (block b, head g,
 *   slot j, channel c) at ((b*NKV + g)*BS + j)*HS + c. Position p of sequence
 *   s lives in block block_table[s*MB + p/BS], slot p%BS. One (block, head)
 *   is BS*HS contiguous floats, so attention streams a head's keys linearly.
 *
 * Block tables are one flat int32 array [S, MB] (row s lists sequence s's
 * blocks in position order; unused entries are ignored). The model plugin
 * packs mcrt_step_batch's per-sequence tables into it.
 *
 * Validation. Ops check what is cheap and structural (NULL required
 * pointers, non-positive dims, unknown dtypes, NH % NKV, odd rot_dim) and
 * return MCRT_E_INVAL. They do not check data: token ids, positions and block
 * ids must already be validated by the caller (the model plugin does it once
 * per step, before anything is written, as model.h requires).
 *
 * Aliasing. Outputs never alias inputs unless an op says so.
 *
 * Thread safety: [instance] an mk_ctx is used by one thread at a time; ops
 * on different contexts run concurrently.
 */
#ifndef MCRT_KERNELS_OPS_H
#define MCRT_KERNELS_OPS_H

#include <stdint.h>

#include "mcrt/status.h" /* mcrt_status, MCRT_OK, MCRT_E_* */
#include "mcrt/tensor.h" /* MCRT_DTYPE_*, MCRT_DEVICE_* */

#ifdef __cplusplus
extern "C" {
#endif

/* An execution context: what one rank needs to run ops on its device. Opaque;
 * each device defines it (CPU: thread pool, ISA level, scratch memory; CUDA:
 * stream and library handles). A context is only ever passed to its own
 * device's ops; reference ops accept NULL. */
typedef struct mk_ctx mk_ctx;

/* MLP activations (activation_forward). */
typedef enum mk_act {
    MK_ACT_GELU_TANH = 1,    /* 0.5x(1+tanh(sqrt(2/pi)(x+0.044715x^3))): MCore's fused bias-gelu, HF gelu_new */
    MK_ACT_GELU_ERF = 2,     /* 0.5x(1+erf(x/sqrt(2))): F.gelu, MCore without bias fusion */
    MK_ACT_SWIGLU = 3,       /* in [T,2F] -> out [T,F]: silu(in[:, :F]) * in[:, F:] (first half is the gate) */
    MK_ACT_SQUARED_RELU = 4  /* relu(x)^2 */
} mk_act;

/* --- the op signatures ------------------------------------------------------ */

/* Embedding lookup, plus an optional learned position embedding.
 *   out[t,:] = wte[tokens[t] - vocab_start, :]  (0 when the id is outside
 *              [vocab_start, vocab_start + V): another tensor-parallel rank's rows)
 *            + wpe[positions[t], :]             (when wpe != NULL)
 * out [T,C] f32; tokens [T]; positions [T] (may be NULL when wpe is NULL);
 * wte [V,C] and wpe [max_positions,C], both of dtype w_dtype.
 * With TP > 1, pass wpe on one rank only so the all-reduce adds it once. */
typedef mcrt_status mk_embedding_fn(float *out, const int32_t *tokens, const int32_t *positions,
                                    const void *wte, const void *wpe, int32_t w_dtype,
                                    int32_t vocab_start, int T, int C, int V, mk_ctx *ctx);

/* LayerNorm fused with the residual add:
 *   s = x + r (s = x when r is NULL);  resid_out = s (when not NULL)
 *   out = (s - mean(s)) / sqrt(var(s) + eps) * g + bias,  g = weight (+1 when one_p)
 * Statistics in f32 or wider, variance biased (divide by C), two passes.
 * out, resid_out [T,C]; x, r [T,C]; weight [C]; bias [C] or NULL.
 * out and resid_out may each be the same buffer as x or r (element for
 * element), but not the same buffer as each other. */
typedef mcrt_status mk_layernorm_fn(float *out, float *resid_out, const float *x, const float *r,
                                    const float *weight, const float *bias, float eps, int one_p,
                                    int T, int C, mk_ctx *ctx);

/* RMSNorm fused with the residual add: as layernorm, with
 *   out = s / sqrt(mean(s^2) + eps) * g,  g = weight (+1 when one_p); no bias.
 * Also used for qk_layernorm: T*NH rows of HS (see docs/kernels.md). */
typedef mcrt_status mk_rmsnorm_fn(float *out, float *resid_out, const float *x, const float *r,
                                  const float *weight, float eps, int one_p, int T, int C,
                                  mk_ctx *ctx);

/* y = x . W^T (+ bias):  y[t,n] = sum_k x[t,k] * w[n,k] + bias[n].
 * y [T,N] f32; x [T,K] f32; w [N,K] of dtype w_dtype (row n is output n, as
 * torch.nn.Linear stores it); bias [N] f32 or NULL. f32 accumulation. */
typedef mcrt_status mk_matmul_fn(float *y, const float *x, const void *w, int32_t w_dtype,
                                 const float *bias, int T, int K, int N, mk_ctx *ctx);

/* Splits the fused QKV projection, MCore's group-major layout, into q, k, v:
 *   qkv[t] = for g in 0..NKV-1: [ q heads g*R .. g*R+R-1 (R = NH/NKV), k_g, v_g ], each HS
 * q [T,NH,HS], k [T,NKV,HS], v [T,NKV,HS]; qkv [T, (NH + 2*NKV)*HS]. */
typedef mcrt_status mk_split_qkv_fn(float *q, float *k, float *v, const float *qkv, int T, int NH,
                                    int NKV, int HS, mk_ctx *ctx);

/* Rotary position embedding, in place on q and k (MCore rope_utils):
 *   rot_dim = int(HS * rotary_percent), even; channels >= rot_dim pass through
 *   inv_freq[i] = 1 / base^(2i / rot_dim) (f32),  i < rot_dim/2
 *   angle = f32(positions[t]) * inv_freq[i];  c = cos(angle), s = sin(angle)
 *   rotate-half (interleaved = 0): pairs (i, i + rot_dim/2)
 *   interleaved (interleaved = 1): pairs (2i, 2i + 1)
 *   (a, b) -> (a*c - b*s, b*c + a*s)
 * q [T,NH,HS] and k [T,NKV,HS] f32, in place (k may be NULL); positions [T]. */
typedef mcrt_status mk_rotary_fn(float *q, float *k, const int32_t *positions, float base,
                                 int interleaved, int T, int NH, int NKV, int HS, int rot_dim,
                                 mk_ctx *ctx);

/* Writes the step's keys and values into the paged pool:
 *   token t (sequence s = seq_index[t], position p = positions[t]) goes to
 *   block block_table[s*MB + p/BS], slot p%BS, for every kv head.
 * k_cache, v_cache [NB,NKV,BS,HS] (see the layout above); k, v [T,NKV,HS];
 * positions, seq_index [T]; block_table [S,MB]. */
typedef mcrt_status mk_kv_write_fn(float *k_cache, float *v_cache, const float *k, const float *v,
                                   const int32_t *positions, const int32_t *seq_index,
                                   const int32_t *block_table, int T, int NKV, int HS, int BS,
                                   int MB, mk_ctx *ctx);

/* Causal attention over the paged cache, for a flat batch:
 *   token t (sequence s, position p) and query head h (kv head g = h / (NH/NKV))
 *   attends to positions 0..p of sequence s, read through s's block table:
 *   out[t,h] = sum_j softmax_j(scale * q[t,h] . K[s,j,g]) * V[s,j,g]
 * The cache must already hold positions 0..p of every sequence (write the
 * step's own K/V with kv_write first). scale = softmax_scale, or 1/sqrt(HS)
 * when softmax_scale <= 0. Softmax in f32 with a running max (online), so any
 * context length works in O(HS) memory per head.
 * out [T,NH,HS]; q [T,NH,HS]; k_cache, v_cache [NB,NKV,BS,HS];
 * positions, seq_index [T]; block_table [S,MB]. */
typedef mcrt_status mk_attention_fn(float *out, const float *q, const float *k_cache,
                                    const float *v_cache, const int32_t *positions,
                                    const int32_t *seq_index, const int32_t *block_table,
                                    float softmax_scale, int T, int NH, int NKV, int HS, int BS,
                                    int MB, mk_ctx *ctx);

/* MLP activation. out [T,F]; x [T,F], or [T,2F] for MK_ACT_SWIGLU.
 * out may be x for the element-wise ones, never for SwiGLU. */
typedef mcrt_status mk_activation_fn(float *out, const float *x, mk_act act, int T, int F,
                                     mk_ctx *ctx);

/* out = a + b, element-wise. out, a, b [N]; out may be a or b. */
typedef mcrt_status mk_residual_fn(float *out, const float *a, const float *b, int N, mk_ctx *ctx);

/* x[t,n] += bias[n], in place (the row-parallel bias after a TP all-reduce).
 * x [T,N]; bias [N]. */
typedef mcrt_status mk_bias_add_fn(float *x, const float *bias, int T, int N, mk_ctx *ctx);

/* Row-wise log-softmax over the first N columns of rows of stride ldx
 * (logits [T,Vp]: N = V real entries, ldx = Vp). f32, max-subtracted, sum in
 * f32 or wider. out [T,N]; x [T,ldx]. */
typedef mcrt_status mk_log_softmax_fn(float *out, const float *x, int T, int N, int ldx,
                                      mk_ctx *ctx);

/* Row-wise argmax over the first N columns of rows of stride ldx; ties go to
 * the lowest index (torch.argmax), NaNs are skipped (an all-NaN row gives 0).
 * out [T]; x [T,ldx]. */
typedef mcrt_status mk_argmax_fn(int32_t *out, const float *x, int T, int N, int ldx, mk_ctx *ctx);

/* --- the op table ----------------------------------------------------------- */

/* One device's implementation of the list. Slots are append-only. */
typedef struct mk_ops {
    const char *name; /* "cpu-reference", "cpu", "cuda" */
    int32_t device;   /* MCRT_DEVICE_* */
    mk_embedding_fn *embedding;
    mk_layernorm_fn *layernorm;
    mk_rmsnorm_fn *rmsnorm;
    mk_matmul_fn *matmul;
    mk_split_qkv_fn *split_qkv;
    mk_rotary_fn *rotary;
    mk_kv_write_fn *kv_write;
    mk_attention_fn *attention;
    mk_activation_fn *activation;
    mk_residual_fn *residual;
    mk_bias_add_fn *bias_add;
    mk_log_softmax_fn *log_softmax;
    mk_argmax_fn *argmax;
} mk_ops;

/* rot_dim for a head size and MCore's rotary_percent: int(HS * rotary_percent),
 * computed as Python does (truncation of the double product). */
static inline int mk_rotary_dim(int HS, double rotary_percent)
{
    return (int)((double)HS * rotary_percent);
}

#ifdef __cplusplus
}
#endif

#endif /* MCRT_KERNELS_OPS_H */
