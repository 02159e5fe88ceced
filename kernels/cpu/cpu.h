/*
 * kernels/cpu/cpu.h: the CPU implementation of kernels/ops.h.
 *
 * Two implementations of every op, with the signatures of ops.h:
 *   <op>_forward_cpu       the reference: one thread, plain C, written to be
 *                          obviously correct; ctx is ignored and may be NULL.
 *   <op>_forward_cpu_fast  the fast version: work split over the context's
 *                          thread pool, inner loops chosen by the context's
 *                          ISA level (AVX2+FMA+F16C, or portable C that is
 *                          the reference's own loops on sub-ranges). Matmul
 *                          with f32 weights uses OpenBLAS sgemm/sgemv when the
 *                          build found it.
 * Tables: mk_ops_cpu() (fast) and mk_ops_cpu_reference().
 *
 * The context owns the thread pool and per-thread scratch memory (grown on
 * demand, by the thread calling the op). Thread count comes from the caller
 * (the `threads` config key). The ISA level is detected once, at creation,
 * with cpuid (__builtin_cpu_supports); MK_CPU_PORTABLE or the environment
 * variable MCRT_KERNELS_ISA=portable forces the portable loops (that is how the
 * tests cover both paths on an AVX2 machine).
 *
 * OpenBLAS: the kernels do their own threading and call sgemm/sgemv from
 * every pool thread on disjoint output columns, so mk_cpu_ctx_create sets
 * OpenBLAS's own thread count to 1 (openblas_set_num_threads, process-wide;
 * nothing else in mcrt uses OpenBLAS).
 */
#ifndef MCRT_KERNELS_CPU_H
#define MCRT_KERNELS_CPU_H

#include "../ops.h" /* mk_ctx, mk_ops, the op signatures, MCRT_DTYPE_* */

#ifdef __cplusplus
extern "C" {
#endif

/* ISA levels of the CPU path. */
enum {
    MK_ISA_PORTABLE = 0, /* plain C (the reference loops), any CPU */
    MK_ISA_AVX2 = 1      /* x86-64 with AVX2, FMA and F16C */
};

/* mk_cpu_ctx_create flags. */
enum {
    MK_CPU_PORTABLE = 1u << 0, /* never use SIMD kernels, whatever the CPU has */
    MK_CPU_NO_BLAS = 1u << 1   /* f32 matmul through the own kernels, not OpenBLAS */
};

/* [control] A CPU execution context with n_threads threads (the caller
 * counts as one; n_threads < 1 means the number of online CPUs). On success
 * *out is the new context. MCRT_E_NOMEM / MCRT_E_INTERNAL if the pool could
 * not be started. */
mcrt_status mk_cpu_ctx_create(int n_threads, unsigned flags, mk_ctx **out);

/* [control] Joins the pool, frees the scratch. NULL is a no-op. */
void mk_cpu_ctx_destroy(mk_ctx *ctx);

/* [any-thread] Getters. */
int mk_cpu_ctx_threads(const mk_ctx *ctx);
int mk_cpu_ctx_isa(const mk_ctx *ctx);         /* MK_ISA_* in use */
const char *mk_cpu_ctx_isa_name(const mk_ctx *ctx); /* "avx2" or "portable" */
int mk_cpu_has_blas(void);                     /* 1 when f32 matmul uses OpenBLAS */
int mk_cpu_detect_isa(void);                   /* best MK_ISA_* this CPU and build support */

/* [any-thread] The op tables (static, constant). */
const mk_ops *mk_ops_cpu(void);
const mk_ops *mk_ops_cpu_reference(void);

/* --- reference ops (see ops.h for each contract) ------------------------------ */
mcrt_status embedding_forward_cpu(float *out, const int32_t *tokens, const int32_t *positions,
                                  const void *wte, const void *wpe, int32_t w_dtype,
                                  int32_t vocab_start, int T, int C, int V, mk_ctx *ctx);
mcrt_status layernorm_forward_cpu(float *out, float *resid_out, const float *x, const float *r,
                                  const float *weight, const float *bias, float eps, int one_p,
                                  int T, int C, mk_ctx *ctx);
mcrt_status rmsnorm_forward_cpu(float *out, float *resid_out, const float *x, const float *r,
                                const float *weight, float eps, int one_p, int T, int C,
                                mk_ctx *ctx);
mcrt_status matmul_forward_cpu(float *y, const float *x, const void *w, int32_t w_dtype,
                               const float *bias, int T, int K, int N, mk_ctx *ctx);
mcrt_status split_qkv_forward_cpu(float *q, float *k, float *v, const float *qkv, int T, int NH,
                                  int NKV, int HS, mk_ctx *ctx);
mcrt_status rotary_forward_cpu(float *q, float *k, const int32_t *positions, float base,
                               int interleaved, int T, int NH, int NKV, int HS, int rot_dim,
                               mk_ctx *ctx);
mcrt_status kv_write_forward_cpu(float *k_cache, float *v_cache, const float *k, const float *v,
                                 const int32_t *positions, const int32_t *seq_index,
                                 const int32_t *block_table, int T, int NKV, int HS, int BS, int MB,
                                 mk_ctx *ctx);
mcrt_status attention_forward_cpu(float *out, const float *q, const float *k_cache,
                                  const float *v_cache, const int32_t *positions,
                                  const int32_t *seq_index, const int32_t *block_table,
                                  float softmax_scale, int T, int NH, int NKV, int HS, int BS,
                                  int MB, mk_ctx *ctx);
mcrt_status activation_forward_cpu(float *out, const float *x, mk_act act, int T, int F,
                                   mk_ctx *ctx);
mcrt_status residual_forward_cpu(float *out, const float *a, const float *b, int N, mk_ctx *ctx);
mcrt_status bias_add_forward_cpu(float *x, const float *bias, int T, int N, mk_ctx *ctx);
mcrt_status log_softmax_forward_cpu(float *out, const float *x, int T, int N, int ldx,
                                    mk_ctx *ctx);
mcrt_status argmax_forward_cpu(int32_t *out, const float *x, int T, int N, int ldx, mk_ctx *ctx);

/* --- fast ops (same contracts; ctx required) ---------------------------------- */
mcrt_status embedding_forward_cpu_fast(float *out, const int32_t *tokens,
                                       const int32_t *positions, const void *wte, const void *wpe,
                                       int32_t w_dtype, int32_t vocab_start, int T, int C, int V,
                                       mk_ctx *ctx);
mcrt_status layernorm_forward_cpu_fast(float *out, float *resid_out, const float *x,
                                       const float *r, const float *weight, const float *bias,
                                       float eps, int one_p, int T, int C, mk_ctx *ctx);
mcrt_status rmsnorm_forward_cpu_fast(float *out, float *resid_out, const float *x, const float *r,
                                     const float *weight, float eps, int one_p, int T, int C,
                                     mk_ctx *ctx);
mcrt_status matmul_forward_cpu_fast(float *y, const float *x, const void *w, int32_t w_dtype,
                                    const float *bias, int T, int K, int N, mk_ctx *ctx);
mcrt_status split_qkv_forward_cpu_fast(float *q, float *k, float *v, const float *qkv, int T,
                                       int NH, int NKV, int HS, mk_ctx *ctx);
mcrt_status rotary_forward_cpu_fast(float *q, float *k, const int32_t *positions, float base,
                                    int interleaved, int T, int NH, int NKV, int HS, int rot_dim,
                                    mk_ctx *ctx);
mcrt_status kv_write_forward_cpu_fast(float *k_cache, float *v_cache, const float *k,
                                      const float *v, const int32_t *positions,
                                      const int32_t *seq_index, const int32_t *block_table, int T,
                                      int NKV, int HS, int BS, int MB, mk_ctx *ctx);
mcrt_status attention_forward_cpu_fast(float *out, const float *q, const float *k_cache,
                                       const float *v_cache, const int32_t *positions,
                                       const int32_t *seq_index, const int32_t *block_table,
                                       float softmax_scale, int T, int NH, int NKV, int HS, int BS,
                                       int MB, mk_ctx *ctx);
mcrt_status activation_forward_cpu_fast(float *out, const float *x, mk_act act, int T, int F,
                                        mk_ctx *ctx);
mcrt_status residual_forward_cpu_fast(float *out, const float *a, const float *b, int N,
                                      mk_ctx *ctx);
mcrt_status bias_add_forward_cpu_fast(float *x, const float *bias, int T, int N, mk_ctx *ctx);
mcrt_status log_softmax_forward_cpu_fast(float *out, const float *x, int T, int N, int ldx,
                                         mk_ctx *ctx);
mcrt_status argmax_forward_cpu_fast(int32_t *out, const float *x, int T, int N, int ldx,
                                    mk_ctx *ctx);

#ifdef __cplusplus
}
#endif

#endif /* MCRT_KERNELS_CPU_H */
