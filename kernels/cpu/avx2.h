/*
 * kernels/cpu/avx2.h: the AVX2 + FMA + F16C inner kernels (avx2.c, a
 * separate translation unit compiled with -mavx2 -mfma -mf16c). Call them
 * only when the context's ISA level is MK_ISA_AVX2: the rest of the library
 * is built for the baseline ISA and runs on any x86-64.
 *
 * Each kernel works on a sub-range that the fast drivers (fast.c) hand to one
 * pool thread; scratch is that thread's slice of the context's scratch.
 * Legend as in kernels/ops.h.
 */
#ifndef MCRT_KERNELS_CPU_AVX2_H
#define MCRT_KERNELS_CPU_AVX2_H

#include <stddef.h>
#include <stdint.h>

#include "../ops.h" /* mk_act */

/* Rows of T at or below which matmul uses the kernels that read each weight
 * from DRAM once, without repacking it (row dot products, 4x3 dot-product
 * tiles, or 6 broadcast weight rows against packed x panels); above it,
 * OpenBLAS, where the build has it (fast.c). */
#define MK_AVX2_MATMUL_SMALL_T 128

/* Columns [n0, n1) of y [T,N] = x [T,K] . w[N,K]^T (+ bias [N]); w of dtype
 * F32, BF16 or F16. n1 - n0 need not be a multiple of anything. */
void mk_avx2_matmul(float *y, const float *x, const void *w, int32_t w_dtype, const float *bias,
                    int T, int K, int N, int n0, int n1, void *scratch);
/* dst[0..n) = w[start .. start+n) widened to f32 (exact); w of dtype F32,
 * BF16 or F16. */
void mk_avx2_widen(float *dst, const void *w, int32_t w_dtype, size_t start, size_t n);
/* Scratch bytes per thread that mk_avx2_matmul needs for these shapes. */
size_t mk_avx2_matmul_scratch(int T, int K, int32_t w_dtype);

/* Fused residual + norm over rows (contract of layernorm_forward in ops.h);
 * out [T,C], resid_out [T,C] or NULL, x [T,C], r [T,C] or NULL. */
void mk_avx2_layernorm_rows(float *out, float *resid_out, const float *x, const float *r,
                            const float *weight, const float *bias, float eps, int one_p, int T,
                            int C);
void mk_avx2_rmsnorm_rows(float *out, float *resid_out, const float *x, const float *r,
                          const float *weight, float eps, int one_p, int T, int C);

/* Attention for a block of nq consecutive tokens of one sequence (positions
 * pos0 .. pos0+nq-1) and the R query heads of kv head g: online softmax over
 * positions 0 .. pos0+nq-1, each token masked to its own position (causal).
 * out, q [nq,NH,HS] (the block's rows; heads g*R .. g*R+R-1 are used);
 * k_cache, v_cache [NB,NKV,BS,HS]; table_row [MB]. nq * R <= MK_AVX2_ATTN_ROWS. */
#define MK_AVX2_ATTN_ROWS 32
void mk_avx2_attention_block(float *out, const float *q, const float *k_cache,
                             const float *v_cache, const int32_t *table_row, int pos0, int nq,
                             int g, float scale, int NH, int R, int NKV, int HS, int BS,
                             void *scratch);
/* Scratch bytes per thread for blocks of up to `rows` rows (nq * R). */
size_t mk_avx2_attention_scratch(int rows, int HS);

/* Element-wise activations on n values (GELU tanh, GELU erf, squared ReLU). */
void mk_avx2_activation(float *out, const float *x, mk_act act, int64_t n);
/* SwiGLU rows: out [T,F] = silu(x[:, :F]) * x[:, F:], x [T,2F]. */
void mk_avx2_swiglu_rows(float *out, const float *x, int T, int F);

#endif /* MCRT_KERNELS_CPU_AVX2_H */
