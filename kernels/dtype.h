/*
 * kernels/dtype.h: scalar conversions between f32 and the 16-bit weight
 * formats (bf16, IEEE f16). Header-only, device-neutral, no state.
 *
 * Widening (bf16 -> f32, f16 -> f32) is exact for every input, subnormals,
 * infinities and NaNs included; the SIMD conversions in kernels/cpu (shift by
 * 16, F16C vcvtph2ps) are exact too, so the reference and the fast kernels see
 * bit-identical weights. Narrowing rounds to nearest, ties to even (what
 * torch's .to(torch.bfloat16) / .half() do); NaN stays NaN, f16 overflow gives
 * infinity.
 */
#ifndef MCRT_KERNELS_DTYPE_H
#define MCRT_KERNELS_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mcrt/tensor.h" /* MCRT_DTYPE_* */

static inline float mk_bits_to_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint32_t mk_f32_to_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* bf16 is the top half of an f32. */
static inline float mk_bf16_to_f32(uint16_t h)
{
    return mk_bits_to_f32((uint32_t)h << 16);
}

static inline uint16_t mk_f32_to_bf16(float f)
{
    uint32_t u = mk_f32_to_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it quiet and a NaN */
        return (uint16_t)((u >> 16) | 0x40u);
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest, ties to even */
    return (uint16_t)(u >> 16);
}

/* IEEE binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits. */
static inline float mk_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f) /* inf / NaN */
        return mk_bits_to_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) { /* zero / subnormal: man * 2^-24, exact in f32 */
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return mk_bits_to_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

static inline uint16_t mk_f32_to_f16(float f)
{
    uint32_t u = mk_f32_to_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) /* NaN */
        return (uint16_t)(sign | 0x7e00u);
    if (a >= 0x477ff000u) /* rounds to >= 65520: infinity */
        return (uint16_t)(sign | 0x7c00u);
    if (a < 0x38800000u) { /* below 2^-14: subnormal or zero in f16 */
        /* value / 2^-24 rounded to an integer, ties to even; float arithmetic
         * is exact here because the value has at most 24 significant bits */
        float v = mk_bits_to_f32(a) * 16777216.0f;
        float r = (float)(int32_t)v;
        float d = v - r;
        if (d > 0.5f || (d == 0.5f && ((int32_t)r & 1)))
            r += 1.0f;
        return (uint16_t)(sign | (uint16_t)(int32_t)r);
    }
    /* normal: rebias the exponent, round the 13 dropped mantissa bits */
    uint32_t r = a - 0x38000000u; /* exponent 127 -> 15 */
    r += 0xfffu + ((r >> 13) & 1u);
    return (uint16_t)(sign | (uint16_t)(r >> 13));
}

/* Element i of a weight array of dtype F32, BF16 or F16, widened to f32.
 * Any other dtype reads as 0 (the ops reject them before reading). */
static inline float mk_load_f32(const void *w, int32_t dtype, size_t i)
{
    switch (dtype) {
    case MCRT_DTYPE_F32: return ((const float *)w)[i];
    case MCRT_DTYPE_BF16: return mk_bf16_to_f32(((const uint16_t *)w)[i]);
    case MCRT_DTYPE_F16: return mk_f16_to_f32(((const uint16_t *)w)[i]);
    default: return 0.0f;
    }
}

/* 1 for the weight dtypes the ops accept (F32, BF16, F16). */
static inline int mk_weight_dtype_ok(int32_t dtype)
{
    return dtype == MCRT_DTYPE_F32 || dtype == MCRT_DTYPE_BF16 || dtype == MCRT_DTYPE_F16;
}

#endif /* MCRT_KERNELS_DTYPE_H */
