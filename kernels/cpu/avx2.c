/*
 * kernels/cpu/avx2.c: AVX2 + FMA + F16C inner kernels. This translation unit
 * alone is compiled with -mavx2 -mfma -mf16c; fast.c calls into it only after
 * the context's cpuid check said the CPU has all three.
 *
 * Legend: T tokens, K/N matmul in/out, C hidden, HS head size, R query heads
 * per kv head, BS block size.
 *
 * Numerics (what the tests bound, see tests/kernels):
 *  - matmul: f32 FMA accumulation in a different order than the reference's
 *    f64 sum; 16-bit weights are widened exactly (bf16: shift by 16; f16:
 *    vcvtph2ps), so only rounding of the sums differs.
 *  - norms: f32 vector sums for mean and variance (two passes).
 *  - exp: Cephes-style range reduction + degree-5 polynomial, ~2 ulp, inputs
 *    clamped to [-87.3, 88.4] (so exp(-inf) gives ~1e-38, never NaN).
 *  - GELU tanh as x * sigmoid(2u) (no cancellation for negative x); GELU erf
 *    as 0.5x * erfc(-x/sqrt2) with Numerical Recipes' erfcc (relative error
 *    < 1.2e-7 everywhere); SiLU as a / (1 + exp(-a)).
 *  - attention: online softmax (running max, rescaled sums) in f32.
 */
#include "avx2.h"

#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "../dtype.h" /* mk_load_f32 (scalar tails) */
#include "internal.h" /* mk_kv_at, activation_ref_elementwise */

#define MK_INLINE static inline __attribute__((always_inline))

/* --- small helpers ------------------------------------------------------------- */

MK_INLINE float hsum256(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
    return _mm_cvtss_f32(lo);
}

MK_INLINE float hmax256(__m256 v)
{
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_max_ps(lo, hi);
    lo = _mm_max_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_max_ss(lo, _mm_shuffle_ps(lo, lo, 1));
    return _mm_cvtss_f32(lo);
}

/* 8 consecutive weights w[i .. i+8) of dtype dt, widened to f32 (exact). */
MK_INLINE __m256 load8_w(const void *w, size_t i, int32_t dt)
{
    if (dt == MCRT_DTYPE_F32)
        return _mm256_loadu_ps((const float *)w + i);
    __m128i h = _mm_loadu_si128((const __m128i *)((const uint16_t *)w + i));
    if (dt == MCRT_DTYPE_BF16)
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    return _mm256_cvtph_ps(h);
}

/* e^x, ~2 ulp over the clamped range. */
MK_INLINE __m256 exp256(__m256 x)
{
    x = _mm256_min_ps(x, _mm256_set1_ps(88.3762626647949f));
    x = _mm256_max_ps(x, _mm256_set1_ps(-87.3365478515625f)); /* keeps 2^n normal */
    /* n = round(x / ln2); r = x - n ln2 in two parts (Cody-Waite) */
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    /* e^r = 1 + r + r^2 P(r) on |r| <= ln2/2 */
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    __m256 r2 = _mm256_mul_ps(r, r);
    p = _mm256_fmadd_ps(p, r2, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    /* times 2^n, built in the exponent field */
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)),
                                  23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

/* ================================================================================
 * matmul, small T (decode, small batches): y[t, n] = dot(x[t, :], w[n, :])
 * with TR x-rows and NR w-rows per tile (T = 1: one row at a time, a linear
 * stream), f32 vector accumulators reduced at the end. No packing: the
 * weights stream once from memory, widened in registers, with software
 * prefetches ahead of the stream.
 * ============================================================================== */

MK_INLINE void dot_tile(const int TR, const int NR, const int32_t dt, float *y, int ldy,
                        const float *x, int ldx, const void *w, int K, int n, const float *bias)
{
    /* y is [TR, ldy] at column n; x is [TR, ldx]; w rows n .. n+NR of [N,K] */
    __m256 acc[4][4];
#pragma GCC unroll 4
    for (int i = 0; i < TR; i++)
#pragma GCC unroll 4
        for (int j = 0; j < NR; j++)
            acc[i][j] = _mm256_setzero_ps();
    /* The next NR rows are contiguous after these: prefetch them at the rate
     * these are consumed (NR * 8 weights per step), one tile ahead, so DRAM
     * streams one linear region instead of NR short row streams. */
    const size_t esz = dt == MCRT_DTYPE_F32 ? 4 : 2;
    /* (integer arithmetic: past the last tile this points beyond w, harmless
     * for a prefetch but not a pointer C lets us form) */
    const uintptr_t pf = (uintptr_t)w + (uintptr_t)(n + NR) * (uintptr_t)K * esz;
    int k = 0;
    for (; k + 8 <= K; k += 8) {
        __m256 wv[4];
#pragma GCC unroll 4
        for (size_t off = 0; off < (size_t)NR * 8 * esz; off += 64)
            _mm_prefetch((const char *)(pf + (uintptr_t)k * NR * esz + off), _MM_HINT_T1);
#pragma GCC unroll 4
        for (int j = 0; j < NR; j++)
            wv[j] = load8_w(w, (size_t)(n + j) * K + k, dt);
#pragma GCC unroll 4
        for (int i = 0; i < TR; i++) {
            __m256 xv = _mm256_loadu_ps(x + (size_t)i * ldx + k);
#pragma GCC unroll 4
            for (int j = 0; j < NR; j++)
                acc[i][j] = _mm256_fmadd_ps(xv, wv[j], acc[i][j]);
        }
    }
#pragma GCC unroll 4
    for (int i = 0; i < TR; i++)
#pragma GCC unroll 4
        for (int j = 0; j < NR; j++) {
            float s = hsum256(acc[i][j]);
            for (int kk = k; kk < K; kk++) /* K % 8 tail */
                s += x[(size_t)i * ldx + kk] * mk_load_f32(w, dt, (size_t)(n + j) * K + kk);
            y[(size_t)i * ldy + n + j] = bias ? s + bias[n + j] : s;
        }
}

/* T = 1: y[n0..n1) = w[n0..n1, :] . x (+ bias), one weight row at a time with
 * four accumulators along K. Consecutive rows are contiguous, so the weights
 * are read as one linear stream, which the hardware prefetcher follows best. */
MK_INLINE void gemv_rows(const int32_t dt, float *y, const float *x, const void *w,
                         const float *bias, int K, int n0, int n1)
{
    /* a software prefetch 1 KiB ahead of the stream adds ~15-20% over the
     * hardware prefetcher alone (measured on Zen 3); integer arithmetic, as
     * it runs past the end of w on the last row */
    const uintptr_t wb = (uintptr_t)w, esz = dt == MCRT_DTYPE_F32 ? 4 : 2;
    for (int n = n0; n < n1; n++) {
        size_t base = (size_t)n * K;
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        int k = 0;
        for (; k + 32 <= K; k += 32) {
            const uintptr_t ahead = wb + (base + (size_t)k) * esz + 1024;
            _mm_prefetch((const char *)ahead, _MM_HINT_T0); /* 32 weights: 64 or 128 bytes */
            if (esz == 4)
                _mm_prefetch((const char *)(ahead + 64), _MM_HINT_T0);
            a0 = _mm256_fmadd_ps(load8_w(w, base + k, dt), _mm256_loadu_ps(x + k), a0);
            a1 = _mm256_fmadd_ps(load8_w(w, base + k + 8, dt), _mm256_loadu_ps(x + k + 8), a1);
            a2 = _mm256_fmadd_ps(load8_w(w, base + k + 16, dt), _mm256_loadu_ps(x + k + 16), a2);
            a3 = _mm256_fmadd_ps(load8_w(w, base + k + 24, dt), _mm256_loadu_ps(x + k + 24), a3);
        }
        for (; k + 8 <= K; k += 8)
            a0 = _mm256_fmadd_ps(load8_w(w, base + k, dt), _mm256_loadu_ps(x + k), a0);
        float s = hsum256(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
        for (; k < K; k++) /* K % 8 tail */
            s += x[k] * mk_load_f32(w, dt, base + k);
        y[n] = bias ? s + bias[n] : s;
    }
}

/* One row block: y[TR, n0..n1) for TR rows of x [TR, ldx], NR columns at a time. */
MK_INLINE void dot_rows(const int TR, const int NR, const int32_t dt, float *y, int ldy,
                        const float *x, int ldx, const void *w, int K, int n0, int n1,
                        const float *bias)
{
    int n = n0;
    for (; n + NR <= n1; n += NR)
        dot_tile(TR, NR, dt, y, ldy, x, ldx, w, K, n, bias);
    for (; n < n1; n++)
        dot_tile(TR, 1, dt, y, ldy, x, ldx, w, K, n, bias);
}

/* y[T, nb..ne) for all T rows in row tiles of 4 (3 columns at a time: 12
 * accumulators) and a remainder of 1-3 rows. */
MK_INLINE void matmul_small_block(const int32_t dt, float *y, const float *x, const void *w,
                                  const float *bias, int T, int K, int N, int nb, int ne)
{
    int t = 0;
    for (; t + 4 <= T; t += 4)
        dot_rows(4, 3, dt, y + (size_t)t * N, N, x + (size_t)t * K, K, w, K, nb, ne, bias);
    switch (T - t) {
    case 3: dot_rows(3, 3, dt, y + (size_t)t * N, N, x + (size_t)t * K, K, w, K, nb, ne, bias); break;
    case 2: dot_rows(2, 4, dt, y + (size_t)t * N, N, x + (size_t)t * K, K, w, K, nb, ne, bias); break;
    case 1: dot_rows(1, 4, dt, y + (size_t)t * N, N, x + (size_t)t * K, K, w, K, nb, ne, bias); break;
    default: break;
    }
}

/* Weight rows per block of the small-T path: ~192 KiB of them (in the
 * dtype they are read in), so a block stays in L2 while every row tile of x
 * passes over it and DRAM sees each weight once. */
static int small_block_rows(int K, size_t wsize)
{
    int nblk = (int)((192u * 1024u) / ((size_t)K * wsize));
    return nblk < 8 ? 8 : nblk;
}

/* ================================================================================
 * packing helpers
 * ============================================================================== */

enum { PANEL = 16 }; /* x panel width: two 8-float vectors */

/* 8x8 transpose of f32 registers. */
MK_INLINE void transpose8(__m256 *r)
{
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    r[0] = _mm256_permute2f128_ps(s0, s4, 0x20);
    r[1] = _mm256_permute2f128_ps(s1, s5, 0x20);
    r[2] = _mm256_permute2f128_ps(s2, s6, 0x20);
    r[3] = _mm256_permute2f128_ps(s3, s7, 0x20);
    r[4] = _mm256_permute2f128_ps(s0, s4, 0x31);
    r[5] = _mm256_permute2f128_ps(s1, s5, 0x31);
    r[6] = _mm256_permute2f128_ps(s2, s6, 0x31);
    r[7] = _mm256_permute2f128_ps(s3, s7, 0x31);
}

/* Bp [nc16/16][kc][16] (nc16 = nc rounded up to 16, padding columns zero)
 * from w rows nb .. nb+nc, k columns kb .. kb+kc: rows transposed into
 * 16-row panels (the x panels of the broadcast-weights kernel below). */
MK_INLINE void pack_panels(const int32_t dt, float *Bp, const void *w, int K, int nb, int nc,
                           int kb, int kc)
{
    for (int j = 0; j < nc; j += PANEL) {
        float *panel = Bp + (size_t)(j / PANEL) * kc * PANEL;
        for (int half = 0; half < 2; half++) {
            int r0 = j + half * 8; /* first of 8 w rows, relative to nb */
            int k = 0;
            for (; k + 8 <= kc; k += 8) {
                __m256 r[8];
                for (int i = 0; i < 8; i++)
                    r[i] = r0 + i < nc ? load8_w(w, (size_t)(nb + r0 + i) * K + kb + k, dt)
                                       : _mm256_setzero_ps();
                transpose8(r); /* r[q] = column k+q of the 8 rows */
                for (int q = 0; q < 8; q++)
                    _mm256_store_ps(panel + (size_t)(k + q) * PANEL + half * 8, r[q]);
            }
            for (; k < kc; k++) /* kc % 8 tail */
                for (int i = 0; i < 8; i++)
                    panel[(size_t)k * PANEL + half * 8 + i] =
                        r0 + i < nc ? mk_load_f32(w, dt, (size_t)(nb + r0 + i) * K + kb + k) : 0.0f;
        }
    }
}

void mk_avx2_widen(float *dst, const void *w, int32_t w_dtype, size_t start, size_t n)
{
    /* dst is [n]; w elements start .. start+n */
    size_t i = 0;
    if (w_dtype == MCRT_DTYPE_F32) {
        memcpy(dst, (const float *)w + start, n * sizeof(float));
        return;
    }
    if (w_dtype == MCRT_DTYPE_BF16)
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(dst + i, load8_w(w, start + i, MCRT_DTYPE_BF16));
    else if (w_dtype == MCRT_DTYPE_F16)
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(dst + i, load8_w(w, start + i, MCRT_DTYPE_F16));
    for (; i < n; i++)
        dst[i] = mk_load_f32(w, w_dtype, start + i);
}

/* ================================================================================
 * matmul, T >= MK_AVX2_WBCAST_T (batched decode, prefill): the roles of the
 * BLIS packed kernel swapped. x is the operand packed, once per call and
 * block of up to 128 rows: Xp[p][k][16] = x[16p + i, k] (pack_panels on x,
 * rows past T zero). The weights are not repacked at all: a 6x16 kernel
 * broadcasts W[n+r, k] straight from 6 weight rows (f32 rows of the mapped
 * file, or of a block of 16-bit rows widened into scratch by a linear pass,
 * no transpose) against two vectors of an x panel, so each weight is read
 * from DRAM once and stays in L1 while all the panels pass over it. The tile
 * is y^T: acc[r][h] holds y[16p + 8h .. +8, n + r].
 * ============================================================================== */

/* Rows of T from which the swapped kernel beats the dot-product tiles. */
#define MK_AVX2_WBCAST_T 16

/* out[r][i] = sum_k wr[r][k] * xp[k*16 + i], r < 6, i < 16. Meanwhile the
 * bytes [pf, pf + pf_bytes) (weights the next calls will read from DRAM) are
 * prefetched into L2, spread evenly over the k loop. */
static void ukernel_w6x16(int K, const float *const *wr, const float *xp, float out[6][16],
                          uintptr_t pf, size_t pf_bytes)
{
    const float *w0 = wr[0], *w1 = wr[1], *w2 = wr[2], *w3 = wr[3], *w4 = wr[4], *w5 = wr[5];
    __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
    __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
    /* lines per 16-k step, rounded up */
    size_t steps = (size_t)(K + 15) / 16, lines = (pf_bytes / 64 + steps - 1) / steps;
    uintptr_t pf_end = pf + pf_bytes;
    for (int k0 = 0; k0 < K; k0 += 16) {
        for (size_t i = 0; i < lines && pf < pf_end; i++, pf += 64)
            _mm_prefetch((const char *)pf, _MM_HINT_T1);
        int k1 = k0 + 16 < K ? k0 + 16 : K;
        for (int k = k0; k < k1; k++) {
            __m256 b0 = _mm256_load_ps(xp + (size_t)k * 16);
            __m256 b1 = _mm256_load_ps(xp + (size_t)k * 16 + 8);
            __m256 a = _mm256_broadcast_ss(w0 + k);
            c00 = _mm256_fmadd_ps(a, b0, c00);
            c01 = _mm256_fmadd_ps(a, b1, c01);
            a = _mm256_broadcast_ss(w1 + k);
            c10 = _mm256_fmadd_ps(a, b0, c10);
            c11 = _mm256_fmadd_ps(a, b1, c11);
            a = _mm256_broadcast_ss(w2 + k);
            c20 = _mm256_fmadd_ps(a, b0, c20);
            c21 = _mm256_fmadd_ps(a, b1, c21);
            a = _mm256_broadcast_ss(w3 + k);
            c30 = _mm256_fmadd_ps(a, b0, c30);
            c31 = _mm256_fmadd_ps(a, b1, c31);
            a = _mm256_broadcast_ss(w4 + k);
            c40 = _mm256_fmadd_ps(a, b0, c40);
            c41 = _mm256_fmadd_ps(a, b1, c41);
            a = _mm256_broadcast_ss(w5 + k);
            c50 = _mm256_fmadd_ps(a, b0, c50);
            c51 = _mm256_fmadd_ps(a, b1, c51);
        }
    }
    _mm256_storeu_ps(out[0], c00);
    _mm256_storeu_ps(out[0] + 8, c01);
    _mm256_storeu_ps(out[1], c10);
    _mm256_storeu_ps(out[1] + 8, c11);
    _mm256_storeu_ps(out[2], c20);
    _mm256_storeu_ps(out[2] + 8, c21);
    _mm256_storeu_ps(out[3], c30);
    _mm256_storeu_ps(out[3] + 8, c31);
    _mm256_storeu_ps(out[4], c40);
    _mm256_storeu_ps(out[4] + 8, c41);
    _mm256_storeu_ps(out[5], c50);
    _mm256_storeu_ps(out[5] + 8, c51);
}

/* 16-bit weight rows widened per block: ~192 KiB of f32, a multiple of 6 rows. */
static int wbcast_block_rows(int K)
{
    int nblk = (int)((192u * 1024u) / ((size_t)K * sizeof(float))) / 6 * 6;
    return nblk < 6 ? 6 : nblk;
}

static size_t wbcast_scratch(int T, int K, int32_t dt)
{
    size_t xp = (size_t)((T + 15) / 16) * K * 16;
    size_t wide = dt == MCRT_DTYPE_F32 ? 0 : (size_t)wbcast_block_rows(K) * K;
    return (xp + wide) * sizeof(float) + 64; /* + alignment of Xp */
}

MK_INLINE void matmul_wbcast(const int32_t dt, float *y, const float *x, const void *w,
                             const float *bias, int T, int K, int N, int n0, int n1,
                             void *scratch)
{
    /* y is [T,N] (columns n0..n1); x is [T,K]; w is [N,K] */
    float *Xp = (float *)(((uintptr_t)scratch + 31) & ~(uintptr_t)31); /* [P][K][16] */
    int P = (T + 15) / 16;
    pack_panels(MCRT_DTYPE_F32, Xp, x, K, 0, T, 0, K);
    float *wide = Xp + (size_t)P * K * 16;
    int nblk = dt == MCRT_DTYPE_F32 ? n1 - n0 : wbcast_block_rows(K);
    float tile[6][16];
    const size_t esz = dt == MCRT_DTYPE_F32 ? 4 : 2;
    for (int nb = n0; nb < n1; nb += nblk) {
        int ne = nb + nblk < n1 ? nb + nblk : n1;
        /* what to prefetch while this block runs: 16-bit, the next block's
         * rows (widened next); f32, each group the next group's 6 rows */
        int nn = n1 - ne < nblk ? n1 - ne : nblk;
        size_t ngroups = (size_t)(ne - nb + 5) / 6;
        size_t pf_group = dt == MCRT_DTYPE_F32 ? (size_t)6 * K * esz
                                               : ((size_t)nn * K * esz + ngroups - 1) / ngroups;
        uintptr_t pf = (uintptr_t)w + (uintptr_t)(dt == MCRT_DTYPE_F32 ? nb + 6 : ne) * K * esz;
        /* row n of the block at wbase + (n - nb) * K */
        const float *wbase = wide;
        if (dt == MCRT_DTYPE_F32)
            wbase = (const float *)w + (size_t)nb * K;
        else
            mk_avx2_widen(wide, w, dt, (size_t)nb * K, (size_t)(ne - nb) * K);
        for (int n = nb; n < ne; n += 6) {
            int nr = ne - n < 6 ? ne - n : 6;
            const float *wr[6]; /* rows past the block repeat its last row, never stored */
            for (int r = 0; r < 6; r++)
                wr[r] = wbase + (size_t)(n - nb + (r < nr ? r : nr - 1)) * K;
            /* (integer arithmetic: the last prefetches run past w's end, harmless) */
            size_t pf_bytes = pf_group;
            if (dt == MCRT_DTYPE_F32 && n + 6 >= n1)
                pf_bytes = 0;
            if (dt != MCRT_DTYPE_F32 && nn == 0)
                pf_bytes = 0;
            for (int p = 0; p < P; p++) {
                ukernel_w6x16(K, wr, Xp + (size_t)p * K * 16, tile, pf, p == 0 ? pf_bytes : 0);
                int nt = T - 16 * p < 16 ? T - 16 * p : 16;
                for (int i = 0; i < nt; i++) {
                    float *yr = y + (size_t)(16 * p + i) * N + n;
                    for (int r = 0; r < nr; r++)
                        yr[r] = bias ? tile[r][i] + bias[n + r] : tile[r][i];
                }
            }
            pf += pf_bytes;
        }
    }
}

/* y[T, n0..n1) of y [T,N] = x [T,K] . w[N,K]^T (+ bias), any T. */
MK_INLINE void matmul_rows(const int32_t dt, float *y, const float *x, const void *w,
                            const float *bias, int T, int K, int N, int n0, int n1, void *scratch)
{
    if (T == 1) {
        gemv_rows(dt, y, x, w, bias, K, n0, n1);
        return;
    }
    if (T >= MK_AVX2_WBCAST_T) {
        /* x in blocks of up to 128 rows (8 panels, which stay in L2) */
        for (int tb = 0; tb < T; tb += 128)
            matmul_wbcast(dt, y + (size_t)tb * N, x + (size_t)tb * K, w, bias,
                          T - tb < 128 ? T - tb : 128, K, N, n0, n1, scratch);
        return;
    }
    int nblk = small_block_rows(K, dt == MCRT_DTYPE_F32 ? 4 : 2);
    for (int nb = n0; nb < n1; nb += nblk) {
        int ne = nb + nblk < n1 ? nb + nblk : n1;
        matmul_small_block(dt, y, x, w, bias, T, K, N, nb, ne);
    }
}

size_t mk_avx2_matmul_scratch(int T, int K, int32_t w_dtype)
{
    if (T >= MK_AVX2_WBCAST_T)
        return wbcast_scratch(T < 128 ? T : 128, K, w_dtype);
    return 0;
}

void mk_avx2_matmul(float *y, const float *x, const void *w, int32_t w_dtype, const float *bias,
                    int T, int K, int N, int n0, int n1, void *scratch)
{
    /* y is [T,N] (columns n0..n1 written); x is [T,K]; w is [N,K]; bias is [N] */
    switch (w_dtype) {
    case MCRT_DTYPE_F32: matmul_rows(MCRT_DTYPE_F32, y, x, w, bias, T, K, N, n0, n1, scratch); break;
    case MCRT_DTYPE_BF16: matmul_rows(MCRT_DTYPE_BF16, y, x, w, bias, T, K, N, n0, n1, scratch); break;
    default: matmul_rows(MCRT_DTYPE_F16, y, x, w, bias, T, K, N, n0, n1, scratch); break;
    }
}

/* ================================================================================
 * norms (fused residual add)
 * ============================================================================== */

/* s = x + r for one row into st (which may be out, x or r), returns sum(s). */
MK_INLINE float residual_row(float *st, const float *xt, const float *rt, int C)
{
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int c = 0;
    for (; c + 16 <= C; c += 16) {
        __m256 v0 = _mm256_loadu_ps(xt + c), v1 = _mm256_loadu_ps(xt + c + 8);
        if (rt) {
            v0 = _mm256_add_ps(v0, _mm256_loadu_ps(rt + c));
            v1 = _mm256_add_ps(v1, _mm256_loadu_ps(rt + c + 8));
        }
        _mm256_storeu_ps(st + c, v0);
        _mm256_storeu_ps(st + c + 8, v1);
        acc0 = _mm256_add_ps(acc0, v0);
        acc1 = _mm256_add_ps(acc1, v1);
    }
    float sum = hsum256(_mm256_add_ps(acc0, acc1));
    for (; c < C; c++) {
        float s = rt ? xt[c] + rt[c] : xt[c];
        st[c] = s;
        sum += s;
    }
    return sum;
}

void mk_avx2_layernorm_rows(float *out, float *resid_out, const float *x, const float *r,
                            const float *weight, const float *bias, float eps, int one_p, int T,
                            int C)
{
    /* out, resid_out, x, r are [T,C]; weight, bias are [C] */
    const __m256 one = _mm256_set1_ps(one_p ? 1.0f : 0.0f);
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * C, *rt = r ? r + (size_t)t * C : NULL;
        float *ot = out + (size_t)t * C;
        float *st = resid_out ? resid_out + (size_t)t * C : ot; /* s lives here */
        float mean = residual_row(st, xt, rt, C) / (float)C;
        /* biased variance around the mean (second pass) */
        __m256 vm = _mm256_set1_ps(mean), acc = _mm256_setzero_ps();
        int c = 0;
        for (; c + 8 <= C; c += 8) {
            __m256 d = _mm256_sub_ps(_mm256_loadu_ps(st + c), vm);
            acc = _mm256_fmadd_ps(d, d, acc);
        }
        float var = hsum256(acc);
        for (; c < C; c++)
            var += (st[c] - mean) * (st[c] - mean);
        float rstd = 1.0f / sqrtf(var / (float)C + eps);
        __m256 vr = _mm256_set1_ps(rstd);
        for (c = 0; c + 8 <= C; c += 8) {
            __m256 g = _mm256_add_ps(_mm256_loadu_ps(weight + c), one);
            __m256 nrm = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(st + c), vm), vr);
            __m256 b = bias ? _mm256_loadu_ps(bias + c) : _mm256_setzero_ps();
            _mm256_storeu_ps(ot + c, _mm256_fmadd_ps(nrm, g, b));
        }
        for (; c < C; c++) {
            float g = weight[c] + (one_p ? 1.0f : 0.0f);
            ot[c] = (st[c] - mean) * rstd * g + (bias ? bias[c] : 0.0f);
        }
    }
}

void mk_avx2_rmsnorm_rows(float *out, float *resid_out, const float *x, const float *r,
                          const float *weight, float eps, int one_p, int T, int C)
{
    /* out, resid_out, x, r are [T,C]; weight is [C] */
    const __m256 one = _mm256_set1_ps(one_p ? 1.0f : 0.0f);
    for (int t = 0; t < T; t++) {
        const float *xt = x + (size_t)t * C, *rt = r ? r + (size_t)t * C : NULL;
        float *ot = out + (size_t)t * C;
        float *st = resid_out ? resid_out + (size_t)t * C : ot;
        (void)residual_row(st, xt, rt, C);
        __m256 acc = _mm256_setzero_ps();
        int c = 0;
        for (; c + 8 <= C; c += 8) {
            __m256 v = _mm256_loadu_ps(st + c);
            acc = _mm256_fmadd_ps(v, v, acc);
        }
        float ss = hsum256(acc);
        for (; c < C; c++)
            ss += st[c] * st[c];
        float rstd = 1.0f / sqrtf(ss / (float)C + eps);
        __m256 vr = _mm256_set1_ps(rstd);
        for (c = 0; c + 8 <= C; c += 8) {
            __m256 g = _mm256_add_ps(_mm256_loadu_ps(weight + c), one);
            _mm256_storeu_ps(ot + c, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(st + c), vr), g));
        }
        for (; c < C; c++)
            ot[c] = st[c] * rstd * (weight[c] + (one_p ? 1.0f : 0.0f));
    }
}

/* ================================================================================
 * attention: a block of consecutive query tokens of one sequence, times the R
 * query heads of one kv head ("rows", token-major: row i is token i / R, head
 * g*R + i % R), online softmax over the keys 0 .. last position, causal.
 * Keys are taken in chunks of up to ACH positions gathered through the block
 * table (any block size, even 1, gives full chunks). Per chunk:
 *   S = Q K^T (2 rows x 4 keys register tiles, reduced with hadd),
 *   per row: mask keys past the row's position, new running max m, rescale
 *   factor exp(m_old - m_new) for the running denominator l and numerator
 *   acc[HS], probabilities p = exp(S - m),
 *   acc += P V (2 rows x 32 channels register tiles).
 * An odd last row (decode: the only row when R = 1) goes through 1-row kernels.
 * ============================================================================== */

enum { ACH = 64 };

size_t mk_avx2_attention_scratch(int rows, int HS)
{
    size_t r2 = (size_t)rows;
    size_t floats = r2 * (2 * (size_t)HS + ACH + 3);
    return floats * sizeof(float) + 2 * (ACH + 4) * sizeof(const float *) + 128;
}

/* s0[0..4) = q0 . k[0..4), s1[0..4) = q1 . k[0..4). */
MK_INLINE void score_2x4(const float *q0, const float *q1, const float *const *kp, int HS,
                         float *s0, float *s1)
{
    __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00;
    __m256 a10 = a00, a11 = a00, a12 = a00, a13 = a00;
    const float *k0 = kp[0], *k1 = kp[1], *k2 = kp[2], *k3 = kp[3];
    int c = 0;
    for (; c + 8 <= HS; c += 8) {
        __m256 x0 = _mm256_loadu_ps(q0 + c), x1 = _mm256_loadu_ps(q1 + c);
        __m256 kv = _mm256_loadu_ps(k0 + c);
        a00 = _mm256_fmadd_ps(x0, kv, a00);
        a10 = _mm256_fmadd_ps(x1, kv, a10);
        kv = _mm256_loadu_ps(k1 + c);
        a01 = _mm256_fmadd_ps(x0, kv, a01);
        a11 = _mm256_fmadd_ps(x1, kv, a11);
        kv = _mm256_loadu_ps(k2 + c);
        a02 = _mm256_fmadd_ps(x0, kv, a02);
        a12 = _mm256_fmadd_ps(x1, kv, a12);
        kv = _mm256_loadu_ps(k3 + c);
        a03 = _mm256_fmadd_ps(x0, kv, a03);
        a13 = _mm256_fmadd_ps(x1, kv, a13);
    }
    /* eight horizontal sums at once */
    __m256 g0 = _mm256_hadd_ps(_mm256_hadd_ps(a00, a01), _mm256_hadd_ps(a02, a03));
    __m256 g1 = _mm256_hadd_ps(_mm256_hadd_ps(a10, a11), _mm256_hadd_ps(a12, a13));
    __m128 r0 = _mm_add_ps(_mm256_castps256_ps128(g0), _mm256_extractf128_ps(g0, 1));
    __m128 r1 = _mm_add_ps(_mm256_castps256_ps128(g1), _mm256_extractf128_ps(g1, 1));
    _mm_storeu_ps(s0, r0);
    _mm_storeu_ps(s1, r1);
    for (; c < HS; c++) /* HS % 8 tail */
        for (int j = 0; j < 4; j++) {
            s0[j] += q0[c] * kp[j][c];
            s1[j] += q1[c] * kp[j][c];
        }
}

/* acc0 += sum_j p0[j] v_j, acc1 += sum_j p1[j] v_j over n keys, all HS channels. */
MK_INLINE void pv_2rows(float *acc0, float *acc1, const float *p0, const float *p1,
                        const float *const *vp, int n, int HS)
{
    int c = 0;
    for (; c + 32 <= HS; c += 32) {
        __m256 a00 = _mm256_loadu_ps(acc0 + c), a01 = _mm256_loadu_ps(acc0 + c + 8);
        __m256 a02 = _mm256_loadu_ps(acc0 + c + 16), a03 = _mm256_loadu_ps(acc0 + c + 24);
        __m256 a10 = _mm256_loadu_ps(acc1 + c), a11 = _mm256_loadu_ps(acc1 + c + 8);
        __m256 a12 = _mm256_loadu_ps(acc1 + c + 16), a13 = _mm256_loadu_ps(acc1 + c + 24);
        for (int j = 0; j < n; j++) {
            const float *v = vp[j] + c;
            __m256 w0 = _mm256_broadcast_ss(p0 + j), w1 = _mm256_broadcast_ss(p1 + j);
            __m256 v0 = _mm256_loadu_ps(v), v1 = _mm256_loadu_ps(v + 8);
            __m256 v2 = _mm256_loadu_ps(v + 16), v3 = _mm256_loadu_ps(v + 24);
            a00 = _mm256_fmadd_ps(w0, v0, a00);
            a01 = _mm256_fmadd_ps(w0, v1, a01);
            a02 = _mm256_fmadd_ps(w0, v2, a02);
            a03 = _mm256_fmadd_ps(w0, v3, a03);
            a10 = _mm256_fmadd_ps(w1, v0, a10);
            a11 = _mm256_fmadd_ps(w1, v1, a11);
            a12 = _mm256_fmadd_ps(w1, v2, a12);
            a13 = _mm256_fmadd_ps(w1, v3, a13);
        }
        _mm256_storeu_ps(acc0 + c, a00);
        _mm256_storeu_ps(acc0 + c + 8, a01);
        _mm256_storeu_ps(acc0 + c + 16, a02);
        _mm256_storeu_ps(acc0 + c + 24, a03);
        _mm256_storeu_ps(acc1 + c, a10);
        _mm256_storeu_ps(acc1 + c + 8, a11);
        _mm256_storeu_ps(acc1 + c + 16, a12);
        _mm256_storeu_ps(acc1 + c + 24, a13);
    }
    for (; c + 8 <= HS; c += 8) {
        __m256 a0 = _mm256_loadu_ps(acc0 + c), a1 = _mm256_loadu_ps(acc1 + c);
        for (int j = 0; j < n; j++) {
            __m256 v = _mm256_loadu_ps(vp[j] + c);
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(p0 + j), v, a0);
            a1 = _mm256_fmadd_ps(_mm256_broadcast_ss(p1 + j), v, a1);
        }
        _mm256_storeu_ps(acc0 + c, a0);
        _mm256_storeu_ps(acc1 + c, a1);
    }
    for (; c < HS; c++) {
        float a0 = acc0[c], a1 = acc1[c];
        for (int j = 0; j < n; j++) {
            a0 += p0[j] * vp[j][c];
            a1 += p1[j] * vp[j][c];
        }
        acc0[c] = a0;
        acc1[c] = a1;
    }
}

/* s0[0..4) = q0 . k[0..4): the odd last row of a block (decode: the only one). */
MK_INLINE void score_1x4(const float *q0, const float *const *kp, int HS, float *s0)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    const float *k0 = kp[0], *k1 = kp[1], *k2 = kp[2], *k3 = kp[3];
    int c = 0;
    for (; c + 8 <= HS; c += 8) {
        __m256 x0 = _mm256_loadu_ps(q0 + c);
        a0 = _mm256_fmadd_ps(x0, _mm256_loadu_ps(k0 + c), a0);
        a1 = _mm256_fmadd_ps(x0, _mm256_loadu_ps(k1 + c), a1);
        a2 = _mm256_fmadd_ps(x0, _mm256_loadu_ps(k2 + c), a2);
        a3 = _mm256_fmadd_ps(x0, _mm256_loadu_ps(k3 + c), a3);
    }
    __m256 g0 = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
    _mm_storeu_ps(s0, _mm_add_ps(_mm256_castps256_ps128(g0), _mm256_extractf128_ps(g0, 1)));
    for (; c < HS; c++) /* HS % 8 tail */
        for (int j = 0; j < 4; j++)
            s0[j] += q0[c] * kp[j][c];
}

/* acc0 += sum_j p0[j] v_j over n keys, all HS channels (one row). */
MK_INLINE void pv_1row(float *acc0, const float *p0, const float *const *vp, int n, int HS)
{
    int c = 0;
    for (; c + 32 <= HS; c += 32) {
        __m256 a0 = _mm256_loadu_ps(acc0 + c), a1 = _mm256_loadu_ps(acc0 + c + 8);
        __m256 a2 = _mm256_loadu_ps(acc0 + c + 16), a3 = _mm256_loadu_ps(acc0 + c + 24);
        for (int j = 0; j < n; j++) {
            const float *v = vp[j] + c;
            __m256 w0 = _mm256_broadcast_ss(p0 + j);
            a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(v), a0);
            a1 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(v + 8), a1);
            a2 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(v + 16), a2);
            a3 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(v + 24), a3);
        }
        _mm256_storeu_ps(acc0 + c, a0);
        _mm256_storeu_ps(acc0 + c + 8, a1);
        _mm256_storeu_ps(acc0 + c + 16, a2);
        _mm256_storeu_ps(acc0 + c + 24, a3);
    }
    for (; c + 8 <= HS; c += 8) {
        __m256 a0 = _mm256_loadu_ps(acc0 + c);
        for (int j = 0; j < n; j++)
            a0 = _mm256_fmadd_ps(_mm256_broadcast_ss(p0 + j), _mm256_loadu_ps(vp[j] + c), a0);
        _mm256_storeu_ps(acc0 + c, a0);
    }
    for (; c < HS; c++) {
        float a0 = acc0[c];
        for (int j = 0; j < n; j++)
            a0 += p0[j] * vp[j][c];
        acc0[c] = a0;
    }
}

/* dst[0..n) = src[0..n) * f (dst may be src). */
MK_INLINE void scale_row(float *dst, const float *src, float f, int n)
{
    __m256 vf = _mm256_set1_ps(f);
    int c = 0;
    for (; c + 8 <= n; c += 8)
        _mm256_storeu_ps(dst + c, _mm256_mul_ps(_mm256_loadu_ps(src + c), vf));
    for (; c < n; c++)
        dst[c] = src[c] * f;
}

void mk_avx2_attention_block(float *out, const float *q, const float *k_cache,
                             const float *v_cache, const int32_t *table_row, int pos0, int nq,
                             int g, float scale, int NH, int R, int NKV, int HS, int BS,
                             void *scratch)
{
    /* out, q are [nq,NH,HS] (the block's tokens); heads g*R .. g*R+R-1 */
    int rows = nq * R;
    const float **kp = scratch;               /* [ACH+4] key pointers of the chunk */
    const float **vp = kp + ACH + 4;          /* [ACH+4] value pointers */
    float *qs = (float *)(vp + ACH + 4);      /* [rows,HS] scaled queries */
    float *acc = qs + (size_t)rows * HS;      /* [rows,HS] running numerators */
    float *S = acc + (size_t)rows * HS;       /* [rows,ACH] scores, then probabilities */
    float *m = S + (size_t)rows * ACH;        /* [rows] running max */
    float *l = m + rows;                      /* [rows] running denominators */
    float *corr = l + rows;                   /* [rows] this chunk's rescale factors */

    for (int i = 0; i < rows; i++) {
        float *qi = qs + (size_t)i * HS;
        const float *src = q + ((size_t)(i / R) * NH + (size_t)g * R + i % R) * HS;
        scale_row(qi, src, scale, HS);
        memset(acc + (size_t)i * HS, 0, (size_t)HS * sizeof(float));
        m[i] = -INFINITY;
        l[i] = 0.0f;
    }
    int L = pos0 + nq; /* keys 0 .. L-1 */
    for (int j0 = 0; j0 < L; j0 += ACH) {
        int n = L - j0 < ACH ? L - j0 : ACH, n4 = (n + 3) & ~3;
        for (int j = 0; j < n; j++) {
            kp[j] = mk_kv_at(k_cache, table_row, j0 + j, g, NKV, HS, BS);
            vp[j] = mk_kv_at(v_cache, table_row, j0 + j, g, NKV, HS, BS);
        }
        for (int j = n; j < n4; j++) /* pad the last 4-key tile; masked below */
            kp[j] = vp[j] = kp[n - 1];
        /* S = Q K^T: pairs of rows, then the odd last row */
        int i2 = 0;
        for (; i2 + 2 <= rows; i2 += 2)
            for (int j = 0; j < n4; j += 4)
                score_2x4(qs + (size_t)i2 * HS, qs + (size_t)(i2 + 1) * HS, kp + j, HS,
                          S + (size_t)i2 * ACH + j, S + (size_t)(i2 + 1) * ACH + j);
        if (i2 < rows)
            for (int j = 0; j < n4; j += 4)
                score_1x4(qs + (size_t)i2 * HS, kp + j, HS, S + (size_t)i2 * ACH + j);
        /* the online softmax, row by row */
        for (int i = 0; i < rows; i++) {
            float *s = S + (size_t)i * ACH;
            int valid = pos0 + i / R - j0 + 1; /* keys <= the row's position */
            if (valid > n)
                valid = n;
            if (valid <= 0) { /* nothing for this row in this chunk */
                memset(s, 0, (size_t)n * sizeof(float));
                corr[i] = 1.0f;
                continue;
            }
            __m256 vmx = _mm256_set1_ps(-INFINITY);
            int j = 0;
            for (; j + 8 <= valid; j += 8)
                vmx = _mm256_max_ps(vmx, _mm256_loadu_ps(s + j));
            float mx = hmax256(vmx);
            for (; j < valid; j++)
                mx = s[j] > mx ? s[j] : mx;
            float m_new = m[i] > mx ? m[i] : mx;
            corr[i] = m[i] == -INFINITY ? 0.0f : expf(m[i] - m_new);
            __m256 vm = _mm256_set1_ps(m_new), vsum = _mm256_setzero_ps();
            for (j = 0; j + 8 <= valid; j += 8) {
                __m256 p = exp256(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm));
                _mm256_storeu_ps(s + j, p);
                vsum = _mm256_add_ps(vsum, p);
            }
            float psum = hsum256(vsum);
            for (; j < valid; j++) {
                s[j] = expf(s[j] - m_new);
                psum += s[j];
            }
            for (; j < n; j++) /* masked: later positions than this row's token */
                s[j] = 0.0f;
            l[i] = l[i] * corr[i] + psum;
            m[i] = m_new;
        }
        /* acc = acc * corr + P V */
        for (int i = 0; i < rows; i++)
            if (corr[i] != 1.0f)
                scale_row(acc + (size_t)i * HS, acc + (size_t)i * HS, corr[i], HS);
        for (i2 = 0; i2 + 2 <= rows; i2 += 2)
            pv_2rows(acc + (size_t)i2 * HS, acc + (size_t)(i2 + 1) * HS, S + (size_t)i2 * ACH,
                     S + (size_t)(i2 + 1) * ACH, vp, n, HS);
        if (i2 < rows)
            pv_1row(acc + (size_t)i2 * HS, S + (size_t)i2 * ACH, vp, n, HS);
    }
    for (int i = 0; i < rows; i++) {
        float inv = 1.0f / l[i];
        float *oi = out + ((size_t)(i / R) * NH + (size_t)g * R + i % R) * HS;
        scale_row(oi, acc + (size_t)i * HS, inv, HS);
    }
}

/* ================================================================================
 * activations
 * ============================================================================== */

/* x * sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3): equals 0.5x(1 + tanh u). */
MK_INLINE __m256 gelu_tanh8(__m256 x)
{
    __m256 x2 = _mm256_mul_ps(x, x);
    __m256 u = _mm256_mul_ps(
        x, _mm256_fmadd_ps(x2, _mm256_set1_ps(0.0356774081363001f), _mm256_set1_ps(0.7978845608028654f)));
    __m256 e = exp256(_mm256_mul_ps(u, _mm256_set1_ps(-2.0f)));
    return _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
}

/* 0.5 x erfc(-x / sqrt2); erfc(z) for z >= 0 is Numerical Recipes' erfcc
 * t exp(-z^2 + P(t)), t = 1 / (1 + z/2), fractional error < 1.2e-7;
 * erfc(-z) = 2 - erfc(z). */
MK_INLINE __m256 gelu_erf8(__m256 x)
{
    __m256 zs = _mm256_mul_ps(x, _mm256_set1_ps(-0.7071067811865476f)); /* -x/sqrt2 */
    __m256 z = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), zs);            /* |zs| */
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f),
                             _mm256_fmadd_ps(z, _mm256_set1_ps(0.5f), _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_set1_ps(0.17087277f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.82215223f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.48851587f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.13520398f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.27886807f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.18628806f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.09678418f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.37409196f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.00002368f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.26551223f));
    __m256 ans = _mm256_mul_ps(t, exp256(_mm256_fnmadd_ps(z, z, p))); /* erfc(|zs|) */
    /* zs >= 0: erfc(zs) = ans; zs < 0: 2 - ans */
    __m256 neg = _mm256_cmp_ps(zs, _mm256_setzero_ps(), _CMP_LT_OQ);
    __m256 erfc_zs = _mm256_blendv_ps(ans, _mm256_sub_ps(_mm256_set1_ps(2.0f), ans), neg);
    return _mm256_mul_ps(_mm256_mul_ps(x, _mm256_set1_ps(0.5f)), erfc_zs);
}

void mk_avx2_activation(float *out, const float *x, mk_act act, int64_t n)
{
    /* out, x are [n] */
    int64_t i = 0;
    switch (act) {
    case MK_ACT_GELU_TANH:
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(out + i, gelu_tanh8(_mm256_loadu_ps(x + i)));
        break;
    case MK_ACT_GELU_ERF:
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(out + i, gelu_erf8(_mm256_loadu_ps(x + i)));
        break;
    case MK_ACT_SQUARED_RELU:
        for (; i + 8 <= n; i += 8) {
            __m256 r = _mm256_max_ps(_mm256_loadu_ps(x + i), _mm256_setzero_ps());
            _mm256_storeu_ps(out + i, _mm256_mul_ps(r, r));
        }
        break;
    default: break;
    }
    if (i < n) /* the tail through the reference */
        activation_ref_elementwise(out + i, x + i, act, n - i);
}

void mk_avx2_swiglu_rows(float *out, const float *x, int T, int F)
{
    /* out is [T,F]; x is [T,2F] = [gate | up] */
    for (int t = 0; t < T; t++) {
        const float *gate = x + (size_t)t * 2 * F, *up = gate + F;
        float *ot = out + (size_t)t * F;
        int j = 0;
        for (; j + 8 <= F; j += 8) {
            __m256 a = _mm256_loadu_ps(gate + j);
            __m256 e = exp256(_mm256_sub_ps(_mm256_setzero_ps(), a));
            __m256 silu = _mm256_div_ps(a, _mm256_add_ps(_mm256_set1_ps(1.0f), e));
            _mm256_storeu_ps(ot + j, _mm256_mul_ps(silu, _mm256_loadu_ps(up + j)));
        }
        if (j < F) { /* tail through the reference, one row */
            for (; j < F; j++) {
                double a = gate[j];
                ot[j] = (float)(a / (1.0 + exp(-a)) * (double)up[j]);
            }
        }
    }
}
