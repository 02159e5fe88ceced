/*
 * kernels/cpu/reference.c: the reference implementation of every op in
 * kernels/ops.h. This is the definition of what the ops compute: one thread,
 * plain loops in the order the math is written, f64 accumulation wherever a
 * sum is taken, so it is also more accurate than any fast version. It is kept
 * forever, as the standard the fast CPU and CUDA kernels are tested against
 * and as their fallback (the portable path runs these loops on sub-ranges).
 *
 * Legend: T tokens, C hidden, NH heads, NKV kv heads, HS head size, F ffn,
 * V vocab rows, K/N matmul in/out, NB pool blocks, BS block size, MB block
 * table width, S sequences.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../dtype.h" /* mk_load_f32, mk_weight_dtype_ok */
#include "check.h"    /* MK_VALIDATE, mk_check_* */
#include "internal.h" /* prototypes, range helpers */

/* --- embedding ---------------------------------------------------------------- */

mcrt_status embedding_forward_cpu(float *out, const int32_t *tokens, const int32_t *positions,
                                  const void *wte, const void *wpe, int32_t w_dtype,
                                  int32_t vocab_start, int T, int C, int V, mk_ctx *ctx)
{
    /* out is [T,C]; tokens, positions are [T]; wte is [V,C]; wpe is [max_pos,C] */
    (void)ctx;
    MK_VALIDATE(mk_check_embedding(out, tokens, positions, wte, wpe, w_dtype, T, C, V));
    for (int t = 0; t < T; t++) {
        float *row = out + (size_t)t * C;
        int64_t id = (int64_t)tokens[t] - vocab_start;
        for (int c = 0; c < C; c++) /* word embedding, or 0 for another rank's id */
            row[c] = (id >= 0 && id < V) ? mk_load_f32(wte, w_dtype, (size_t)id * C + c) : 0.0f;
        if (wpe) /* learned absolute position embedding */
            for (int c = 0; c < C; c++)
                row[c] += mk_load_f32(wpe, w_dtype, (size_t)positions[t] * C + c);
    }
    return MCRT_OK;
}

/* --- norms -------------------------------------------------------------------- */

mcrt_status layernorm_forward_cpu(float *out, float *resid_out, const float *x, const float *r,
                                  const float *weight, const float *bias, float eps, int one_p,
                                  int T, int C, mk_ctx *ctx)
{
    /* out, resid_out, x, r are [T,C]; weight, bias are [C] */
    (void)ctx;
    MK_VALIDATE(mk_check_norm(out, resid_out, x, weight, T, C));
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * C;
        const float *rt = r ? r + (size_t)t * C : NULL;
        /* the mean of s = x + r (the sum itself is the f32 add torch does) */
        double sum = 0.0;
        for (int c = 0; c < C; c++)
            sum += (double)(rt ? xt[c] + rt[c] : xt[c]);
        double mean = sum / C;
        /* the biased variance, from a second pass */
        double var = 0.0;
        for (int c = 0; c < C; c++) {
            double d = (double)(rt ? xt[c] + rt[c] : xt[c]) - mean;
            var += d * d;
        }
        var /= C;
        double rstd = 1.0 / sqrt(var + (double)eps);
        /* normalize, scale, shift; s is read before out/resid_out are written */
        float *ot = out + (size_t)t * C;
        float *st = resid_out ? resid_out + (size_t)t * C : NULL;
        for (int c = 0; c < C; c++) {
            float s = rt ? xt[c] + rt[c] : xt[c];
            double g = (double)weight[c] + (one_p ? 1.0 : 0.0);
            double b = bias ? (double)bias[c] : 0.0;
            if (st)
                st[c] = s;
            ot[c] = (float)(((double)s - mean) * rstd * g + b);
        }
    }
    return MCRT_OK;
}

mcrt_status rmsnorm_forward_cpu(float *out, float *resid_out, const float *x, const float *r,
                                const float *weight, float eps, int one_p, int T, int C,
                                mk_ctx *ctx)
{
    /* out, resid_out, x, r are [T,C]; weight is [C] */
    (void)ctx;
    MK_VALIDATE(mk_check_norm(out, resid_out, x, weight, T, C));
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * C;
        const float *rt = r ? r + (size_t)t * C : NULL;
        /* the mean of squares of s = x + r */
        double ss = 0.0;
        for (int c = 0; c < C; c++) {
            double s = (double)(rt ? xt[c] + rt[c] : xt[c]);
            ss += s * s;
        }
        double rstd = 1.0 / sqrt(ss / C + (double)eps);
        float *ot = out + (size_t)t * C;
        float *st = resid_out ? resid_out + (size_t)t * C : NULL;
        for (int c = 0; c < C; c++) {
            float s = rt ? xt[c] + rt[c] : xt[c];
            double g = (double)weight[c] + (one_p ? 1.0 : 0.0);
            if (st)
                st[c] = s;
            ot[c] = (float)((double)s * rstd * g);
        }
    }
    return MCRT_OK;
}

/* --- matmul ------------------------------------------------------------------- */

void matmul_ref_cols(float *y, int ldy, const float *x, const void *w, int32_t w_dtype,
                     const float *bias, int T, int K, int n0, int n1)
{
    /* y is [T,ldy] (columns n0..n1 written); x is [T,K]; w is [N,K]; bias is [N] */
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * K;
        for (int n = n0; n < n1; n++) {
            double acc = 0.0;
            for (int k = 0; k < K; k++)
                acc += (double)xt[k] * (double)mk_load_f32(w, w_dtype, (size_t)n * K + k);
            if (bias)
                acc += (double)bias[n];
            y[(size_t)t * ldy + n] = (float)acc;
        }
    }
}

mcrt_status matmul_forward_cpu(float *y, const float *x, const void *w, int32_t w_dtype,
                               const float *bias, int T, int K, int N, mk_ctx *ctx)
{
    /* y is [T,N]; x is [T,K]; w is [N,K] (w_dtype); bias is [N] */
    (void)ctx;
    MK_VALIDATE(mk_check_matmul(y, x, w, w_dtype, T, K, N));
    matmul_ref_cols(y, N, x, w, w_dtype, bias, T, K, 0, N);
    return MCRT_OK;
}

/* --- attention pieces -------------------------------------------------------- */

mcrt_status split_qkv_forward_cpu(float *q, float *k, float *v, const float *qkv, int T, int NH,
                                  int NKV, int HS, mk_ctx *ctx)
{
    /* q is [T,NH,HS]; k, v are [T,NKV,HS]; qkv is [T, NKV, NH/NKV + 2, HS] (group-major) */
    (void)ctx;
    MK_VALIDATE(mk_check_split_qkv(q, k, v, qkv, T, NH, NKV, HS));
    int R = NH / NKV;
    size_t hs = (size_t)HS * sizeof(float);
    for (int t = 0; t < T; t++) {
        const float *src = qkv + (size_t)t * (NH + 2 * NKV) * HS;
        for (int g = 0; g < NKV; g++) {
            for (int j = 0; j < R; j++, src += HS)
                memcpy(q + ((size_t)t * NH + (size_t)g * R + j) * HS, src, hs);
            memcpy(k + ((size_t)t * NKV + g) * HS, src, hs);
            src += HS;
            memcpy(v + ((size_t)t * NKV + g) * HS, src, hs);
            src += HS;
        }
    }
    return MCRT_OK;
}

/* Rotates the first rot_dim channels of one head vector in place. */
static void rotary_head(float *h, float pos, float base, int interleaved, int rot_dim)
{
    int half = rot_dim / 2;
    for (int i = 0; i < half; i++) {
        /* MCore: inv_freq = 1 / base^(arange(0, dim, 2) / dim) in f32; angle = pos * inv_freq */
        float inv_freq = 1.0f / powf(base, (float)(2 * i) / (float)rot_dim);
        float angle = pos * inv_freq;
        float c = cosf(angle), s = sinf(angle);
        int a = interleaved ? 2 * i : i;            /* pairs (2i, 2i+1) ... */
        int b = interleaved ? 2 * i + 1 : i + half; /* ... or (i, i + dim/2) */
        float xa = h[a], xb = h[b];
        h[a] = xa * c - xb * s;
        h[b] = xb * c + xa * s;
    }
}

mcrt_status rotary_forward_cpu(float *q, float *k, const int32_t *positions, float base,
                               int interleaved, int T, int NH, int NKV, int HS, int rot_dim,
                               mk_ctx *ctx)
{
    /* q is [T,NH,HS]; k is [T,NKV,HS]; positions is [T]; both rotated in place */
    (void)ctx;
    MK_VALIDATE(mk_check_rotary(q, positions, base, T, NH, NKV, HS, rot_dim));
    for (int t = 0; t < T; t++) {
        float pos = (float)positions[t];
        for (int h = 0; h < NH; h++)
            rotary_head(q + ((size_t)t * NH + h) * HS, pos, base, interleaved, rot_dim);
        if (k)
            for (int h = 0; h < NKV; h++)
                rotary_head(k + ((size_t)t * NKV + h) * HS, pos, base, interleaved, rot_dim);
    }
    return MCRT_OK;
}

mcrt_status kv_write_forward_cpu(float *k_cache, float *v_cache, const float *k, const float *v,
                                 const int32_t *positions, const int32_t *seq_index,
                                 const int32_t *block_table, int T, int NKV, int HS, int BS, int MB,
                                 mk_ctx *ctx)
{
    /* k_cache, v_cache are [NB,NKV,BS,HS]; k, v are [T,NKV,HS]; block_table is [S,MB] */
    (void)ctx;
    MK_VALIDATE(mk_check_kv_write(k_cache, v_cache, k, v, positions, seq_index, block_table, T,
                                  NKV, HS, BS, MB));
    for (int t = 0; t < T; t++) {
        const int32_t *row = block_table + (size_t)seq_index[t] * MB;
        for (int g = 0; g < NKV; g++) {
            /* (const dropped: the slot belongs to this token, the pool to the caller) */
            float *kd = (float *)mk_kv_at(k_cache, row, positions[t], g, NKV, HS, BS);
            float *vd = (float *)mk_kv_at(v_cache, row, positions[t], g, NKV, HS, BS);
            memcpy(kd, k + ((size_t)t * NKV + g) * HS, (size_t)HS * sizeof(float));
            memcpy(vd, v + ((size_t)t * NKV + g) * HS, (size_t)HS * sizeof(float));
        }
    }
    return MCRT_OK;
}

void attention_ref_head(float *out_h, const float *q_h, const float *k_cache,
                        const float *v_cache, const int32_t *table_row, int pos, int g,
                        float scale, int NKV, int HS, int BS)
{
    /* out_h, q_h are [HS]; the keys/values are positions 0..pos of kv head g */
    /* pass 1: the largest score, so the exponentials cannot overflow */
    double mx = -INFINITY;
    for (int j = 0; j <= pos; j++) {
        const float *kj = mk_kv_at(k_cache, table_row, j, g, NKV, HS, BS);
        double s = 0.0;
        for (int c = 0; c < HS; c++)
            s += (double)q_h[c] * (double)kj[c];
        s *= scale;
        if (s > mx)
            mx = s;
    }
    /* pass 2: out = sum_j exp(s_j - max) v_j / sum_j exp(s_j - max); accumulated */
    /* straight into out_h in f64 steps, rounded once per addition */
    double denom = 0.0;
    for (int c = 0; c < HS; c++)
        out_h[c] = 0.0f;
    for (int j = 0; j <= pos; j++) {
        const float *kj = mk_kv_at(k_cache, table_row, j, g, NKV, HS, BS);
        const float *vj = mk_kv_at(v_cache, table_row, j, g, NKV, HS, BS);
        double s = 0.0;
        for (int c = 0; c < HS; c++)
            s += (double)q_h[c] * (double)kj[c];
        double p = exp(s * scale - mx);
        denom += p;
        for (int c = 0; c < HS; c++)
            out_h[c] = (float)((double)out_h[c] + p * (double)vj[c]);
    }
    for (int c = 0; c < HS; c++)
        out_h[c] = (float)((double)out_h[c] / denom);
}

mcrt_status attention_forward_cpu(float *out, const float *q, const float *k_cache,
                                  const float *v_cache, const int32_t *positions,
                                  const int32_t *seq_index, const int32_t *block_table,
                                  float softmax_scale, int T, int NH, int NKV, int HS, int BS,
                                  int MB, mk_ctx *ctx)
{
    /* out, q are [T,NH,HS]; k_cache, v_cache are [NB,NKV,BS,HS]; block_table is [S,MB] */
    (void)ctx;
    MK_VALIDATE(mk_check_attention(out, q, k_cache, v_cache, positions, seq_index, block_table, T,
                                   NH, NKV, HS, BS, MB));
    float scale = softmax_scale > 0.0f ? softmax_scale : (float)(1.0 / sqrt((double)HS));
    int R = NH / NKV; /* query heads per kv head (GQA group size) */
    for (int t = 0; t < T; t++) {
        const int32_t *row = block_table + (size_t)seq_index[t] * MB;
        for (int h = 0; h < NH; h++)
            attention_ref_head(out + ((size_t)t * NH + h) * HS, q + ((size_t)t * NH + h) * HS,
                               k_cache, v_cache, row, positions[t], h / R, scale, NKV, HS, BS);
    }
    return MCRT_OK;
}

/* --- activations and element-wise -------------------------------------------- */

void activation_ref_elementwise(float *out, const float *x, mk_act act, int64_t n)
{
    const double k_tanh = 0.7978845608028654; /* sqrt(2/pi) */
    for (int64_t i = 0; i < n; i++) {
        double v = x[i], y;
        switch (act) {
        case MK_ACT_GELU_TANH: y = 0.5 * v * (1.0 + tanh(k_tanh * (v + 0.044715 * v * v * v))); break;
        case MK_ACT_GELU_ERF: y = 0.5 * v * (1.0 + erf(v * 0.7071067811865476)); break;
        case MK_ACT_SQUARED_RELU: y = v > 0.0 ? v * v : 0.0; break;
        default: y = v; break; /* SwiGLU is row-wise (swiglu_ref_rows) */
        }
        out[i] = (float)y;
    }
}

void swiglu_ref_rows(float *out, const float *x, int T, int F)
{
    /* out is [T,F]; x is [T,2F]: gate = x[:, :F], up = x[:, F:] */
    for (int t = 0; t < T; t++) {
        const float *gate = x + (size_t)t * 2 * F, *up = gate + F;
        for (int j = 0; j < F; j++) {
            double a = gate[j];
            out[(size_t)t * F + j] = (float)(a / (1.0 + exp(-a)) * (double)up[j]); /* silu(a) * b */
        }
    }
}

mcrt_status activation_forward_cpu(float *out, const float *x, mk_act act, int T, int F,
                                   mk_ctx *ctx)
{
    /* out is [T,F]; x is [T,F], or [T,2F] for SwiGLU */
    (void)ctx;
    MK_VALIDATE(mk_check_activation(out, x, act, T, F));
    if (act == MK_ACT_SWIGLU)
        swiglu_ref_rows(out, x, T, F);
    else
        activation_ref_elementwise(out, x, act, (int64_t)T * F);
    return MCRT_OK;
}

mcrt_status residual_forward_cpu(float *out, const float *a, const float *b, int N, mk_ctx *ctx)
{
    /* out, a, b are [N] */
    (void)ctx;
    MK_VALIDATE(mk_check_residual(out, a, b, N));
    for (int i = 0; i < N; i++)
        out[i] = a[i] + b[i];
    return MCRT_OK;
}

mcrt_status bias_add_forward_cpu(float *x, const float *bias, int T, int N, mk_ctx *ctx)
{
    /* x is [T,N]; bias is [N] */
    (void)ctx;
    MK_VALIDATE(mk_check_rows(bias, x, T, N));
    for (int t = 0; t < T; t++)
        for (int n = 0; n < N; n++)
            x[(size_t)t * N + n] += bias[n];
    return MCRT_OK;
}

mcrt_status log_softmax_forward_cpu(float *out, const float *x, int T, int N, int ldx,
                                    mk_ctx *ctx)
{
    /* out is [T,N]; x is [T,ldx] (first N columns used) */
    (void)ctx;
    MK_VALIDATE(mk_check_logits_rows(out, x, T, N, ldx));
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * ldx;
        double mx = -INFINITY;
        for (int n = 0; n < N; n++)
            if (xt[n] > mx)
                mx = xt[n];
        double sum = 0.0;
        for (int n = 0; n < N; n++)
            sum += exp((double)xt[n] - mx);
        double lse = mx + log(sum); /* log sum exp */
        for (int n = 0; n < N; n++)
            out[(size_t)t * N + n] = (float)((double)xt[n] - lse);
    }
    return MCRT_OK;
}

mcrt_status argmax_forward_cpu(int32_t *out, const float *x, int T, int N, int ldx, mk_ctx *ctx)
{
    /* out is [T]; x is [T,ldx] (first N columns used) */
    (void)ctx;
    MK_VALIDATE(mk_check_logits_rows(out, x, T, N, ldx));
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * ldx;
        int32_t best = 0;
        float bv = -INFINITY;
        int found = 0;
        for (int n = 0; n < N; n++) {
            if (isnan(xt[n]))
                continue;
            if (!found || xt[n] > bv) { /* strict: ties keep the lowest index */
                best = n;
                bv = xt[n];
                found = 1;
            }
        }
        out[t] = best;
    }
    return MCRT_OK;
}
