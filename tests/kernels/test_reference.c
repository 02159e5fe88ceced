/*
 * tests/kernels/test_reference.c: the reference ops (kernels/cpu, the
 * <op>_forward_cpu functions) against values worked out by hand, so the
 * standard the fast kernels are held to is itself checked independently.
 * Also: the dtype conversions, argument rejection, and the thread pool.
 *
 * Expected values were computed on paper / with Python's math module in
 * double precision; they are compared with a tolerance of a few f32 ulps
 * (1e-6 relative), since the references compute in f64 and round once.
 */
#include <check.h>
#include <math.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/cpu/cpu.h"        /* reference ops, mk_ctx */
#include "kernels/cpu/threadpool.h" /* mk_threadpool */
#include "kernels/dtype.h"          /* mk_f32_to_bf16 and friends */

/* |got - want| <= 1e-6 * max(1, |want|): a few ulps of f32 */
#define ASSERT_NEAR(got, want)                                                                    \
    do {                                                                                          \
        double g_ = (got), w_ = (want);                                                           \
        ck_assert_msg(fabs(g_ - w_) <= 1e-6 * fmax(1.0, fabs(w_)), "%s = %.9g, expected %.9g",    \
                      #got, g_, w_);                                                              \
    } while (0)

/* --- matmul: a 2x2 by hand ---------------------------------------------------------- */

static const int32_t matmul_dtypes[] = {MCRT_DTYPE_F32, MCRT_DTYPE_BF16, MCRT_DTYPE_F16};

START_TEST(matmul_2x2)
{
    /* x = [[1,2],[3,4]], W = [[5,6],[7,8]] (rows are outputs), bias = [0.5,-1]
     * y = x W^T + b = [[1*5+2*6+0.5, 1*7+2*8-1], [3*5+4*6+0.5, 3*7+4*8-1]] */
    const float x[4] = {1, 2, 3, 4}, wf[4] = {5, 6, 7, 8}, bias[2] = {0.5f, -1.0f};
    uint16_t wh[4];
    int32_t dt = matmul_dtypes[_i];
    for (int i = 0; i < 4; i++) /* small integers are exact in bf16 and f16 */
        wh[i] = dt == MCRT_DTYPE_BF16 ? mk_f32_to_bf16(wf[i]) : mk_f32_to_f16(wf[i]);
    const void *w = dt == MCRT_DTYPE_F32 ? (const void *)wf : (const void *)wh;
    float y[4];
    ck_assert_int_eq(matmul_forward_cpu(y, x, w, dt, bias, 2, 2, 2, NULL), MCRT_OK);
    ASSERT_NEAR(y[0], 17.5);
    ASSERT_NEAR(y[1], 22.0);
    ASSERT_NEAR(y[2], 39.5);
    ASSERT_NEAR(y[3], 52.0);
    ck_assert_int_eq(matmul_forward_cpu(y, x, w, dt, NULL, 2, 2, 2, NULL), MCRT_OK);
    ASSERT_NEAR(y[0], 17.0);
    ASSERT_NEAR(y[3], 53.0);
}
END_TEST

/* --- norms: 4 elements by hand ------------------------------------------------------ */

START_TEST(rmsnorm_4)
{
    /* mean(x^2) = (1+4+9+16)/4 = 7.5, out = x / sqrt(7.5) */
    const float x[4] = {1, 2, 3, 4}, w1[4] = {1, 1, 1, 1}, w0[4] = {0, 0, 0, 0};
    const double want[4] = {0.3651483716701107, 0.7302967433402214, 1.0954451150103321,
                            1.4605934866804429};
    float out[4];
    ck_assert_int_eq(rmsnorm_forward_cpu(out, NULL, x, NULL, w1, 0.0f, 0, 1, 4, NULL), MCRT_OK);
    for (int i = 0; i < 4; i++)
        ASSERT_NEAR(out[i], want[i]);
    /* apply_layernorm_1p: weight 0 means gamma 1 */
    ck_assert_int_eq(rmsnorm_forward_cpu(out, NULL, x, NULL, w0, 0.0f, 1, 1, 4, NULL), MCRT_OK);
    for (int i = 0; i < 4; i++)
        ASSERT_NEAR(out[i], want[i]);
    /* fused residual: x' + r = x, and the sum comes back in resid_out */
    const float xp[4] = {0, 1, 2, 3}, r[4] = {1, 1, 1, 1};
    float res[4];
    ck_assert_int_eq(rmsnorm_forward_cpu(out, res, xp, r, w1, 0.0f, 0, 1, 4, NULL), MCRT_OK);
    for (int i = 0; i < 4; i++) {
        ASSERT_NEAR(out[i], want[i]);
        ASSERT_NEAR(res[i], x[i]);
    }
    /* eps: mean(x^2) = 1 for x = 1, eps = 3 gives 1/2 */
    const float ones[4] = {1, 1, 1, 1};
    ck_assert_int_eq(rmsnorm_forward_cpu(out, NULL, ones, NULL, w1, 3.0f, 0, 1, 4, NULL), MCRT_OK);
    ASSERT_NEAR(out[0], 0.5);
}
END_TEST

START_TEST(layernorm_4)
{
    /* mean 2.5, biased variance (2.25+0.25+0.25+2.25)/4 = 1.25 */
    const float x[4] = {1, 2, 3, 4}, w1[4] = {1, 1, 1, 1}, w2[4] = {2, 2, 2, 2},
                b1[4] = {1, 1, 1, 1};
    const double want[4] = {-1.3416407864998738, -0.4472135954999579, 0.4472135954999579,
                            1.3416407864998738};
    float out[4];
    ck_assert_int_eq(layernorm_forward_cpu(out, NULL, x, NULL, w1, NULL, 0.0f, 0, 1, 4, NULL),
                     MCRT_OK);
    for (int i = 0; i < 4; i++)
        ASSERT_NEAR(out[i], want[i]);
    ck_assert_int_eq(layernorm_forward_cpu(out, NULL, x, NULL, w2, b1, 0.0f, 0, 1, 4, NULL),
                     MCRT_OK);
    for (int i = 0; i < 4; i++)
        ASSERT_NEAR(out[i], 2.0 * want[i] + 1.0);
    /* 1p: gamma = 1 + 1 */
    ck_assert_int_eq(layernorm_forward_cpu(out, NULL, x, NULL, w1, NULL, 0.0f, 1, 1, 4, NULL),
                     MCRT_OK);
    for (int i = 0; i < 4; i++)
        ASSERT_NEAR(out[i], 2.0 * want[i]);
    /* in place, with the residual: out = x buffer, resid_out = r buffer */
    float xb[4] = {0, 0, 1, 1}, rb[4] = {1, 2, 2, 3};
    ck_assert_int_eq(layernorm_forward_cpu(xb, rb, xb, rb, w1, NULL, 0.0f, 0, 1, 4, NULL), MCRT_OK);
    for (int i = 0; i < 4; i++) {
        ASSERT_NEAR(xb[i], want[i]);
        ASSERT_NEAR(rb[i], x[i]);
    }
}
END_TEST

/* --- rotary: known vectors ----------------------------------------------------------- */

START_TEST(rotary_known)
{
    /* HS = 4, rot_dim 4, base 10000: inv_freq = [1, 10000^(-1/2)] = [1, 0.01].
     * Position 1: angles 1 and 0.01. */
    const double c1 = 0.5403023058681398, s1 = 0.8414709848078965;
    const double c01 = 0.9999500004166653, s01 = 0.009999833334166664;
    int32_t pos1 = 1, pos0 = 0;
    /* rotate-half pairs (0,2) and (1,3) */
    float q[4] = {1, 0, 0, 0}, k[4] = {0, 0, 0, 1};
    ck_assert_int_eq(rotary_forward_cpu(q, k, &pos1, 10000.0f, 0, 1, 1, 1, 4, 4, NULL), MCRT_OK);
    ASSERT_NEAR(q[0], c1);
    ASSERT_NEAR(q[1], 0.0);
    ASSERT_NEAR(q[2], s1);
    ASSERT_NEAR(q[3], 0.0);
    ASSERT_NEAR(k[1], -s01); /* (a, b) = (0, 1) -> (-s, c) */
    ASSERT_NEAR(k[3], c01);
    /* interleaved pairs (0,1) and (2,3) */
    float qi[4] = {1, 0, 0, 1};
    ck_assert_int_eq(rotary_forward_cpu(qi, NULL, &pos1, 10000.0f, 1, 1, 1, 1, 4, 4, NULL), MCRT_OK);
    ASSERT_NEAR(qi[0], c1);
    ASSERT_NEAR(qi[1], s1);
    ASSERT_NEAR(qi[2], -s01);
    ASSERT_NEAR(qi[3], c01);
    /* position 0 is the identity */
    float qz[4] = {1, 2, 3, 4};
    ck_assert_int_eq(rotary_forward_cpu(qz, NULL, &pos0, 10000.0f, 0, 1, 1, 1, 4, 4, NULL), MCRT_OK);
    for (int i = 0; i < 4; i++)
        ASSERT_NEAR(qz[i], i + 1);
    /* rotary_percent 0.5: rot_dim 2, one pair (0,1) with inv_freq 1; 2 and 3 untouched */
    ck_assert_int_eq(mk_rotary_dim(4, 0.5), 2);
    float qh[4] = {1, 0, 5, 6};
    ck_assert_int_eq(rotary_forward_cpu(qh, NULL, &pos1, 10000.0f, 0, 1, 1, 1, 4, 2, NULL), MCRT_OK);
    ASSERT_NEAR(qh[0], c1);
    ASSERT_NEAR(qh[1], s1);
    ASSERT_NEAR(qh[2], 5.0);
    ASSERT_NEAR(qh[3], 6.0);
    /* odd rot_dim and rot_dim > HS are refused */
    ck_assert_int_eq(rotary_forward_cpu(qh, NULL, &pos1, 10000.0f, 0, 1, 1, 1, 4, 3, NULL),
                     MCRT_E_INVAL);
    ck_assert_int_eq(rotary_forward_cpu(qh, NULL, &pos1, 10000.0f, 0, 1, 1, 1, 4, 6, NULL),
                     MCRT_E_INVAL);
}
END_TEST

/* --- attention: two keys by hand ----------------------------------------------------- */

START_TEST(attention_two_keys)
{
    /* HS = 2, one head, one sequence, block size _i+1 (1 or 2), blocks placed out of order.
     * q = [1,0]; k0 = [0,0], k1 = [2,0]; v0 = [1,0], v1 = [0,1].
     * Scale 1/sqrt(2): scores 0 and sqrt(2); p1 = e^s/(1+e^s) = 0.80442968...
     * Token at position 1 -> [1-p1, p1]; at position 0 it sees k0 only -> v0. */
    int BS = _i + 1;
    enum { NB = 4, HS = 2 };
    float kc[NB * 2 * HS], vc[NB * 2 * HS];
    for (int i = 0; i < NB * 2 * HS; i++)
        kc[i] = vc[i] = NAN; /* unused slots must never be read */
    int32_t table[2] = {3, 1}; /* position 0 in block 3, position 1 in block 3 or 1 */
    const float k[2 * HS] = {0, 0, 2, 0}, v[2 * HS] = {1, 0, 0, 1};
    int32_t pos[2] = {0, 1}, seq[2] = {0, 0};
    ck_assert_int_eq(kv_write_forward_cpu(kc, vc, k, v, pos, seq, table, 2, 1, HS, BS, 2, NULL),
                     MCRT_OK);
    const float q[2 * HS] = {1, 0, 1, 0};
    float out[2 * HS];
    ck_assert_int_eq(attention_forward_cpu(out, q, kc, vc, pos, seq, table, 0.0f, 2, 1, 1, HS, BS,
                                           2, NULL),
                     MCRT_OK);
    ASSERT_NEAR(out[0], 1.0);
    ASSERT_NEAR(out[1], 0.0);
    ASSERT_NEAR(out[2], 0.1955703174930431);
    ASSERT_NEAR(out[3], 0.8044296825069569);
    /* an explicit scale of 0.5 * ln(3) / 1 makes p1 = 3/4: score = 2 * scale = ln 3 */
    float scale = (float)(0.5 * log(3.0));
    ck_assert_int_eq(attention_forward_cpu(out, q, kc, vc, pos, seq, table, scale, 2, 1, 1, HS,
                                           BS, 2, NULL),
                     MCRT_OK);
    ASSERT_NEAR(out[2], 0.25);
    ASSERT_NEAR(out[3], 0.75);
}
END_TEST

START_TEST(attention_gqa_grouping)
{
    /* NH = 4 query heads on NKV = 2 kv heads: heads 0,1 read kv head 0, heads 2,3
     * read kv head 1. One key per head, so each output is that head's value. */
    enum { HS = 2 };
    float kc[1 * 2 * 1 * HS], vc[1 * 2 * 1 * HS];
    const float k[2 * HS] = {1, 1, 1, 1}, v[2 * HS] = {10, 11, 20, 21};
    int32_t pos = 0, seq = 0, table = 0;
    ck_assert_int_eq(kv_write_forward_cpu(kc, vc, k, v, &pos, &seq, &table, 1, 2, HS, 1, 1, NULL),
                     MCRT_OK);
    /* kv pool layout [NB, NKV, BS, HS]: head 1 of block 0 starts at HS */
    ck_assert(vc[0] == 10 && vc[1] == 11 && vc[2] == 20 && vc[3] == 21);
    const float q[4 * HS] = {1, 2, 3, 4, 5, 6, 7, 8};
    float out[4 * HS];
    ck_assert_int_eq(
        attention_forward_cpu(out, q, kc, vc, &pos, &seq, &table, 0.0f, 1, 4, 2, HS, 1, 1, NULL),
        MCRT_OK);
    const float want[4 * HS] = {10, 11, 10, 11, 20, 21, 20, 21};
    for (int i = 0; i < 4 * HS; i++)
        ASSERT_NEAR(out[i], want[i]);
    /* NH not a multiple of NKV is refused */
    ck_assert_int_eq(
        attention_forward_cpu(out, q, kc, vc, &pos, &seq, &table, 0.0f, 1, 3, 2, HS, 1, 1, NULL),
        MCRT_E_INVAL);
}
END_TEST

START_TEST(kv_write_layout)
{
    /* BS = 3, NKV = 2, HS = 1; sequence 1's table is {4, 0}: position 4 -> block 0, slot 1 */
    enum { NB = 5, NKV = 2, BS = 3, HS = 1, MB = 2 };
    float kc[NB * NKV * BS * HS] = {0}, vc[NB * NKV * BS * HS] = {0};
    const int32_t table[2 * MB] = {2, 3, 4, 0};
    int32_t pos[2] = {2, 4}, seq[2] = {0, 1};
    const float k[2 * NKV] = {1, 2, 3, 4}, v[2 * NKV] = {5, 6, 7, 8};
    ck_assert_int_eq(kv_write_forward_cpu(kc, vc, k, v, pos, seq, table, 2, NKV, HS, BS, MB, NULL),
                     MCRT_OK);
    /* token 0: seq 0, pos 2 -> block 2, slot 2: index ((2*2 + g)*3 + 2) */
    ck_assert(kc[(2 * 2 + 0) * 3 + 2] == 1 && kc[(2 * 2 + 1) * 3 + 2] == 2);
    /* token 1: seq 1, pos 4 -> block table[1*2 + 1] = 0, slot 1 */
    ck_assert(kc[(0 * 2 + 0) * 3 + 1] == 3 && kc[(0 * 2 + 1) * 3 + 1] == 4);
    ck_assert(vc[(0 * 2 + 1) * 3 + 1] == 8);
    float sum = 0;
    for (int i = 0; i < NB * NKV * BS * HS; i++)
        sum += kc[i];
    ck_assert(sum == 10.0f); /* nothing else written */
}
END_TEST

START_TEST(split_qkv_group_major)
{
    /* NH = 4, NKV = 2, HS = 1: row = [q0 q1 k0 v0 | q2 q3 k1 v1] */
    const float qkv[8] = {0, 1, 10, 20, 2, 3, 11, 21};
    float q[4], k[2], v[2];
    ck_assert_int_eq(split_qkv_forward_cpu(q, k, v, qkv, 1, 4, 2, 1, NULL), MCRT_OK);
    ck_assert(q[0] == 0 && q[1] == 1 && q[2] == 2 && q[3] == 3);
    ck_assert(k[0] == 10 && k[1] == 11 && v[0] == 20 && v[1] == 21);
}
END_TEST

/* --- activations, embedding, element-wise, logits ------------------------------------ */

START_TEST(activations_known)
{
    const float x[3] = {1, -1, 2};
    float out[3];
    ck_assert_int_eq(activation_forward_cpu(out, x, MK_ACT_GELU_TANH, 1, 3, NULL), MCRT_OK);
    ASSERT_NEAR(out[0], 0.8411919906082768);
    ASSERT_NEAR(out[1], -0.15880800939172324);
    ASSERT_NEAR(out[2], 1.954597694087775);
    ck_assert_int_eq(activation_forward_cpu(out, x, MK_ACT_GELU_ERF, 1, 3, NULL), MCRT_OK);
    ASSERT_NEAR(out[0], 0.8413447460685429);
    ASSERT_NEAR(out[1], -0.15865525393145707);
    ASSERT_NEAR(out[2], 1.9544997361036416);
    const float xr[3] = {-2, 0, 3};
    ck_assert_int_eq(activation_forward_cpu(out, xr, MK_ACT_SQUARED_RELU, 1, 3, NULL), MCRT_OK);
    ck_assert(out[0] == 0.0f && out[1] == 0.0f && out[2] == 9.0f);
    /* SwiGLU: the first half is the gate: [a | b] = [1, 0 | 2, 5] -> [silu(1)*2, silu(0)*5] */
    const float xs[4] = {1, 0, 2, 5};
    float os[2];
    ck_assert_int_eq(activation_forward_cpu(os, xs, MK_ACT_SWIGLU, 1, 2, NULL), MCRT_OK);
    ASSERT_NEAR(os[0], 1.4621171572600098);
    ASSERT_NEAR(os[1], 0.0);
    /* unknown activation and in-place SwiGLU are refused */
    ck_assert_int_eq(activation_forward_cpu(out, x, (mk_act)99, 1, 3, NULL), MCRT_E_INVAL);
    float xi[4] = {1, 0, 2, 5};
    ck_assert_int_eq(activation_forward_cpu(xi, xi, MK_ACT_SWIGLU, 1, 2, NULL), MCRT_E_INVAL);
}
END_TEST

START_TEST(embedding_known)
{
    /* V = 3 rows of C = 2 held by this rank, ids 10..12 (vocab_start 10); bf16 weights */
    const float wf[6] = {1, 2, 3, 4, 5, 6}, pf[4] = {0.5f, 0.25f, -1, -2};
    uint16_t wte[6], wpe[4];
    for (int i = 0; i < 6; i++)
        wte[i] = mk_f32_to_bf16(wf[i]);
    for (int i = 0; i < 4; i++)
        wpe[i] = mk_f32_to_bf16(pf[i]);
    const int32_t tok[3] = {12, 10, 3}, pos[3] = {0, 1, 1};
    float out[6];
    ck_assert_int_eq(embedding_forward_cpu(out, tok, pos, wte, wpe, MCRT_DTYPE_BF16, 10, 3, 2, 3,
                                           NULL),
                     MCRT_OK);
    const float want[6] = {5.5f, 6.25f, 0, 0, -1, -2}; /* id 3 is another rank's: 0 + pos */
    for (int i = 0; i < 6; i++)
        ASSERT_NEAR(out[i], want[i]);
    ck_assert_int_eq(embedding_forward_cpu(out, tok, NULL, wte, NULL, MCRT_DTYPE_BF16, 10, 3, 2, 3,
                                           NULL),
                     MCRT_OK);
    ASSERT_NEAR(out[0], 5.0);
    ASSERT_NEAR(out[5], 0.0);
    /* an unknown weight dtype is refused */
    ck_assert_int_eq(embedding_forward_cpu(out, tok, NULL, wte, NULL, MCRT_DTYPE_I8, 10, 3, 2, 3,
                                           NULL),
                     MCRT_E_INVAL);
}
END_TEST

START_TEST(elementwise_and_logits)
{
    const float a[3] = {1, 2, 3}, b[3] = {10, 20, 30};
    float out[3];
    ck_assert_int_eq(residual_forward_cpu(out, a, b, 3, NULL), MCRT_OK);
    ck_assert(out[0] == 11 && out[1] == 22 && out[2] == 33);
    float x[6] = {1, 2, 3, 4, 5, 6};
    const float bias[3] = {-1, 0, 1};
    ck_assert_int_eq(bias_add_forward_cpu(x, bias, 2, 3, NULL), MCRT_OK);
    ck_assert(x[0] == 0 && x[2] == 4 && x[3] == 3 && x[5] == 7);
    /* log-softmax of [0, ln 3] = log([1/4, 3/4]); the padded column (ldx 3) is ignored */
    const float lg[6] = {0, (float)log(3.0), 100, 7, 7, 100};
    float ls[4];
    ck_assert_int_eq(log_softmax_forward_cpu(ls, lg, 2, 2, 3, NULL), MCRT_OK);
    ASSERT_NEAR(ls[0], -1.3862943611198906);
    ASSERT_NEAR(ls[1], -0.2876820724517809);
    ASSERT_NEAR(ls[2], log(0.5)); /* a tie */
    int32_t am[2];
    ck_assert_int_eq(argmax_forward_cpu(am, lg, 2, 2, 3, NULL), MCRT_OK);
    ck_assert_int_eq(am[0], 1);
    ck_assert_int_eq(am[1], 0); /* ties go to the lowest index */
    const float nanrow[3] = {NAN, -5, NAN};
    ck_assert_int_eq(argmax_forward_cpu(am, nanrow, 1, 3, 3, NULL), MCRT_OK);
    ck_assert_int_eq(am[0], 1);
    ck_assert_int_eq(argmax_forward_cpu(am, lg, 2, 4, 3, NULL), MCRT_E_INVAL); /* N > ldx */
}
END_TEST

START_TEST(zero_tokens_and_bad_args)
{
    float y[1];
    const float x[1] = {1};
    /* T = 0 is a valid empty step: nothing is read or written, NULLs allowed */
    ck_assert_int_eq(matmul_forward_cpu(NULL, NULL, NULL, MCRT_DTYPE_F32, NULL, 0, 4, 4, NULL),
                     MCRT_OK);
    ck_assert_int_eq(attention_forward_cpu(NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 2, 2,
                                           4, 4, 4, NULL),
                     MCRT_OK);
    /* non-positive dims, NULL data and unknown dtypes are refused */
    ck_assert_int_eq(matmul_forward_cpu(y, x, x, MCRT_DTYPE_F32, NULL, 1, 0, 1, NULL), MCRT_E_INVAL);
    ck_assert_int_eq(matmul_forward_cpu(y, NULL, x, MCRT_DTYPE_F32, NULL, 1, 1, 1, NULL),
                     MCRT_E_INVAL);
    ck_assert_int_eq(matmul_forward_cpu(y, x, x, MCRT_DTYPE_F64, NULL, 1, 1, 1, NULL), MCRT_E_INVAL);
    ck_assert_int_eq(layernorm_forward_cpu(y, y, x, NULL, x, NULL, 0, 0, 1, 1, NULL), MCRT_E_INVAL);
    /* the fast ops refuse a missing context */
    ck_assert_int_eq(matmul_forward_cpu_fast(y, x, x, MCRT_DTYPE_F32, NULL, 1, 1, 1, NULL),
                     MCRT_E_INVAL);
}
END_TEST

/* --- dtype conversions ---------------------------------------------------------------- */

START_TEST(dtype_known_values)
{
    ck_assert_uint_eq(mk_f32_to_bf16(1.0f), 0x3f80);
    ck_assert_uint_eq(mk_f32_to_bf16(-2.0f), 0xc000);
    /* 1 + 2^-8 is halfway between bf16 1.0 and 1.0078125: ties to even -> 1.0 */
    ck_assert_uint_eq(mk_f32_to_bf16(1.00390625f), 0x3f80);
    ck_assert_uint_eq(mk_f32_to_bf16(1.01171875f), 0x3f82); /* 1 + 3*2^-8: tie -> even 0x3f82 */
    ck_assert(isnan(mk_bf16_to_f32(mk_f32_to_bf16(NAN))));
    ck_assert_uint_eq(mk_f32_to_f16(1.0f), 0x3c00);
    ck_assert_uint_eq(mk_f32_to_f16(65504.0f), 0x7bff);
    ck_assert_uint_eq(mk_f32_to_f16(65519.0f), 0x7bff);
    ck_assert_uint_eq(mk_f32_to_f16(65520.0f), 0x7c00); /* rounds past the max: inf */
    ck_assert_uint_eq(mk_f32_to_f16(5.9604644775390625e-8f), 0x0001); /* 2^-24 */
    ck_assert_uint_eq(mk_f32_to_f16(2.98023223876953125e-8f), 0x0000); /* 2^-25: tie -> 0 */
    ck_assert_uint_eq(mk_f32_to_f16(8.940696716308594e-8f), 0x0002);  /* 1.5 * 2^-24 -> 2 */
    ck_assert_uint_eq(mk_f32_to_f16(-0.0f), 0x8000);
    ASSERT_NEAR(mk_f16_to_f32(0x3555), 0.333251953125);
    ck_assert(mk_f16_to_f32(0x0001) == 5.9604644775390625e-8f);
    ck_assert(isinf(mk_f16_to_f32(0x7c00)));
}
END_TEST

START_TEST(dtype_round_trips)
{
    /* every non-NaN 16-bit pattern widens and narrows back to itself */
    for (uint32_t h = 0; h < 65536; h++) {
        uint16_t b = (uint16_t)h;
        float fb = mk_bf16_to_f32(b), fh = mk_f16_to_f32(b);
        if (!isnan(fb))
            ck_assert_uint_eq(mk_f32_to_bf16(fb), b);
        if (!isnan(fh))
            ck_assert_uint_eq(mk_f32_to_f16(fh), b);
    }
}
END_TEST

/* --- thread pool ----------------------------------------------------------------------- */

typedef struct pool_job {
    atomic_int *hits; /* [n] */
    atomic_int max_thread;
    mk_threadpool *pool;
    int nested;
} pool_job;

static void count_range(void *arg, int64_t b, int64_t e, int thread)
{
    pool_job *j = arg;
    for (int64_t i = b; i < e; i++)
        atomic_fetch_add(&j->hits[i], 1);
    int m = atomic_load(&j->max_thread);
    while (thread > m && !atomic_compare_exchange_weak(&j->max_thread, &m, thread))
        ;
}

static void nested_range(void *arg, int64_t b, int64_t e, int thread)
{
    pool_job *j = arg;
    (void)thread;
    /* a parallel_for from inside a chunk runs inline on this thread */
    for (int64_t i = b; i < e; i++) {
        pool_job inner = {j->hits + i * 4, 0, j->pool, 0};
        mk_threadpool_parallel_for(j->pool, 4, 1, count_range, &inner);
    }
}

static const int pool_sizes[] = {1, 2, 3, 5};

START_TEST(threadpool_covers_every_item_once)
{
    int nt = pool_sizes[_i];
    mk_threadpool *pool = mk_threadpool_create(nt);
    ck_assert_ptr_nonnull(pool);
    ck_assert_int_eq(mk_threadpool_size(pool), nt);
    enum { N = 1000 };
    atomic_int *hits = calloc(N * 4, sizeof *hits);
    ck_assert_ptr_nonnull(hits);
    const int64_t grains[] = {0, 1, 7, 333, 1000, 5000};
    for (int round = 0; round < 50; round++) { /* many jobs back to back */
        for (size_t g = 0; g < sizeof grains / sizeof grains[0]; g++) {
            pool_job j = {hits, 0, pool, 0};
            mk_threadpool_parallel_for(pool, N, grains[g], count_range, &j);
            ck_assert_int_lt(atomic_load(&j.max_thread), nt);
        }
    }
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(atomic_load(&hits[i]), 50 * 6);
    /* nested calls: every inner item once */
    memset(hits, 0, N * 4 * sizeof *hits);
    pool_job outer = {hits, 0, pool, 1};
    mk_threadpool_parallel_for(pool, N, 3, nested_range, &outer);
    for (int i = 0; i < N * 4; i++)
        ck_assert_int_eq(atomic_load(&hits[i]), 1);
    /* n = 0 does nothing */
    mk_threadpool_parallel_for(pool, 0, 1, count_range, &outer);
    free(hits);
    mk_threadpool_destroy(pool);
}
END_TEST

START_TEST(threadpool_null_and_idle)
{
    atomic_int hits[10] = {0};
    pool_job j = {hits, 0, NULL, 0};
    mk_threadpool_parallel_for(NULL, 10, 3, count_range, &j); /* no pool: inline */
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(atomic_load(&hits[i]), 1);
    ck_assert_int_eq(mk_threadpool_size(NULL), 1);
    mk_threadpool_destroy(NULL);
    /* a pool created and destroyed without ever running a job */
    mk_threadpool *pool = mk_threadpool_create(4);
    ck_assert_ptr_nonnull(pool);
    mk_threadpool_destroy(pool);
}
END_TEST

START_TEST(ctx_basics)
{
    mk_ctx *ctx = NULL;
    ck_assert_int_eq(mk_cpu_ctx_create(2, 0, &ctx), MCRT_OK);
    ck_assert_int_eq(mk_cpu_ctx_threads(ctx), 2);
    const char *env = getenv("MCRT_KERNELS_ISA");
    if (env && strcmp(env, "portable") == 0)
        ck_assert_int_eq(mk_cpu_ctx_isa(ctx), MK_ISA_PORTABLE);
    else
        ck_assert_int_eq(mk_cpu_ctx_isa(ctx), mk_cpu_detect_isa());
    mk_cpu_ctx_destroy(ctx);
    ck_assert_int_eq(mk_cpu_ctx_create(0, MK_CPU_PORTABLE, &ctx), MCRT_OK);
    ck_assert_int_ge(mk_cpu_ctx_threads(ctx), 1); /* 0 = online CPUs */
    ck_assert_int_eq(mk_cpu_ctx_isa(ctx), MK_ISA_PORTABLE);
    ck_assert_str_eq(mk_cpu_ctx_isa_name(ctx), "portable");
    mk_cpu_ctx_destroy(ctx);
    mk_cpu_ctx_destroy(NULL);
    ck_assert_int_eq(mk_cpu_ctx_create(1, 0, NULL), MCRT_E_INVAL);
    /* both tables fill every slot */
    const mk_ops *tabs[2] = {mk_ops_cpu(), mk_ops_cpu_reference()};
    for (int i = 0; i < 2; i++) {
        ck_assert_int_eq(tabs[i]->device, MCRT_DEVICE_CPU);
        ck_assert(tabs[i]->embedding && tabs[i]->layernorm && tabs[i]->rmsnorm &&
                  tabs[i]->matmul && tabs[i]->split_qkv && tabs[i]->rotary && tabs[i]->kv_write &&
                  tabs[i]->attention && tabs[i]->activation && tabs[i]->residual &&
                  tabs[i]->bias_add && tabs[i]->log_softmax && tabs[i]->argmax);
    }
}
END_TEST

static Suite *reference_suite(void)
{
    Suite *s = suite_create("kernels-reference");
    TCase *tc = tcase_create("reference");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, matmul_2x2, 0, 3);
    tcase_add_test(tc, rmsnorm_4);
    tcase_add_test(tc, layernorm_4);
    tcase_add_test(tc, rotary_known);
    tcase_add_loop_test(tc, attention_two_keys, 0, 2);
    tcase_add_test(tc, attention_gqa_grouping);
    tcase_add_test(tc, kv_write_layout);
    tcase_add_test(tc, split_qkv_group_major);
    tcase_add_test(tc, activations_known);
    tcase_add_test(tc, embedding_known);
    tcase_add_test(tc, elementwise_and_logits);
    tcase_add_test(tc, zero_tokens_and_bad_args);
    tcase_add_test(tc, dtype_known_values);
    tcase_add_test(tc, dtype_round_trips);
    suite_add_tcase(s, tc);
    TCase *tp = tcase_create("threads");
    tcase_set_timeout(tp, 120);
    tcase_add_loop_test(tp, threadpool_covers_every_item_once, 0, 4);
    tcase_add_test(tp, threadpool_null_and_idle);
    tcase_add_test(tp, ctx_basics);
    suite_add_tcase(s, tp);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(reference_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
