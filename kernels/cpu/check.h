/*
 * kernels/cpu/check.h: the argument checks of every op, shared by the
 * reference and the fast version so both accept and reject exactly the same
 * calls. Each returns MCRT_OK (run it), MCRT_DONE (valid, nothing to do:
 * zero tokens or zero rotary channels) or MCRT_E_INVAL.
 *
 * Only structure is checked (pointers, dims, dtypes, divisibility); token
 * ids, positions and block ids are the caller's to validate (ops.h).
 */
#ifndef MCRT_KERNELS_CPU_CHECK_H
#define MCRT_KERNELS_CPU_CHECK_H

#include <stddef.h>

#include "../dtype.h" /* mk_weight_dtype_ok */
#include "../ops.h"   /* mk_act, mcrt_status */

#define MK_REQUIRE(cond)                                                                          \
    do {                                                                                          \
        if (!(cond))                                                                              \
            return MCRT_E_INVAL;                                                                  \
    } while (0)

/* Runs a check; returns from the calling op unless it said MCRT_OK. */
#define MK_VALIDATE(check_call)                                                                   \
    do {                                                                                          \
        mcrt_status mk_st_ = (check_call);                                                        \
        if (mk_st_ != MCRT_OK)                                                                    \
            return mk_st_ == MCRT_DONE ? MCRT_OK : mk_st_;                                        \
    } while (0)

static inline mcrt_status mk_check_embedding(const float *out, const int32_t *tokens,
                                             const int32_t *positions, const void *wte,
                                             const void *wpe, int32_t w_dtype, int T, int C,
                                             int V)
{
    MK_REQUIRE(T >= 0 && C > 0 && V > 0 && mk_weight_dtype_ok(w_dtype));
    if (T == 0)
        return MCRT_DONE;
    MK_REQUIRE(out && tokens && wte && (!wpe || positions));
    return MCRT_OK;
}

static inline mcrt_status mk_check_norm(const float *out, const float *resid_out, const float *x,
                                        const float *weight, int T, int C)
{
    MK_REQUIRE(T >= 0 && C > 0);
    if (T == 0)
        return MCRT_DONE;
    MK_REQUIRE(out && x && weight && out != resid_out);
    return MCRT_OK;
}

static inline mcrt_status mk_check_matmul(const float *y, const float *x, const void *w,
                                          int32_t w_dtype, int T, int K, int N)
{
    MK_REQUIRE(T >= 0 && K > 0 && N > 0 && mk_weight_dtype_ok(w_dtype));
    if (T == 0)
        return MCRT_DONE;
    MK_REQUIRE(y && x && w);
    return MCRT_OK;
}

static inline mcrt_status mk_check_split_qkv(const float *q, const float *k, const float *v,
                                             const float *qkv, int T, int NH, int NKV, int HS)
{
    MK_REQUIRE(T >= 0 && NH > 0 && NKV > 0 && HS > 0 && NH % NKV == 0);
    if (T == 0)
        return MCRT_DONE;
    MK_REQUIRE(q && k && v && qkv);
    return MCRT_OK;
}

static inline mcrt_status mk_check_rotary(const float *q, const int32_t *positions, float base,
                                          int T, int NH, int NKV, int HS, int rot_dim)
{
    MK_REQUIRE(T >= 0 && NH > 0 && NKV > 0 && HS > 0);
    MK_REQUIRE(rot_dim >= 0 && rot_dim <= HS && rot_dim % 2 == 0 && base > 0.0f);
    if (T == 0 || rot_dim == 0)
        return MCRT_DONE;
    MK_REQUIRE(q && positions);
    return MCRT_OK;
}

static inline mcrt_status mk_check_kv_write(const float *k_cache, const float *v_cache,
                                            const float *k, const float *v,
                                            const int32_t *positions, const int32_t *seq_index,
                                            const int32_t *block_table, int T, int NKV, int HS,
                                            int BS, int MB)
{
    MK_REQUIRE(T >= 0 && NKV > 0 && HS > 0 && BS > 0 && MB > 0);
    if (T == 0)
        return MCRT_DONE;
    MK_REQUIRE(k_cache && v_cache && k && v && positions && seq_index && block_table);
    return MCRT_OK;
}

static inline mcrt_status mk_check_attention(const float *out, const float *q,
                                             const float *k_cache, const float *v_cache,
                                             const int32_t *positions, const int32_t *seq_index,
                                             const int32_t *block_table, int T, int NH, int NKV,
                                             int HS, int BS, int MB)
{
    MK_REQUIRE(T >= 0 && NH > 0 && NKV > 0 && HS > 0 && BS > 0 && MB > 0 && NH % NKV == 0);
    if (T == 0)
        return MCRT_DONE;
    MK_REQUIRE(out && q && k_cache && v_cache && positions && seq_index && block_table);
    MK_REQUIRE(out != q);
    return MCRT_OK;
}

static inline mcrt_status mk_check_activation(const float *out, const float *x, mk_act act, int T,
                                              int F)
{
    MK_REQUIRE(T >= 0 && F > 0);
    MK_REQUIRE(act == MK_ACT_GELU_TANH || act == MK_ACT_GELU_ERF || act == MK_ACT_SWIGLU ||
               act == MK_ACT_SQUARED_RELU);
    if (T == 0)
        return MCRT_DONE;
    MK_REQUIRE(out && x && (act != MK_ACT_SWIGLU || out != x));
    return MCRT_OK;
}

static inline mcrt_status mk_check_rows(const void *out, const float *x, int T, int N)
{
    MK_REQUIRE(T >= 0 && N > 0);
    if (T == 0)
        return MCRT_DONE;
    MK_REQUIRE(out && x);
    return MCRT_OK;
}

static inline mcrt_status mk_check_residual(const float *out, const float *a, const float *b,
                                            int N)
{
    MK_REQUIRE(N >= 0);
    if (N == 0)
        return MCRT_DONE;
    MK_REQUIRE(out && a && b);
    return MCRT_OK;
}

static inline mcrt_status mk_check_logits_rows(const void *out, const float *x, int T, int N,
                                               int ldx)
{
    MK_REQUIRE(T >= 0 && N > 0 && ldx >= N);
    if (T == 0)
        return MCRT_DONE;
    MK_REQUIRE(out && x);
    return MCRT_OK;
}

#endif /* MCRT_KERNELS_CPU_CHECK_H */
