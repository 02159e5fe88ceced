/*
 * core/checkpoint/convert.c: dtype names and conversions between F32, F16
 * and BF16, by bit manipulation (no hardware half-precision needed).
 *
 * Narrowing rounds to nearest, ties to even (IEEE 754 default, as numpy's
 * float32 -> float16 and torch's .to(bfloat16)); values past the largest
 * finite become infinity; subnormals are produced and read exactly; NaN
 * stays NaN (quiet bit set, sign and top payload bits kept).
 */
#include "checkpoint/checkpoint.h"

#include <string.h>

const char *ckpt_dtype_name(int32_t dtype)
{
    switch (dtype) {
    case MCRT_DTYPE_F32: return "F32";
    case MCRT_DTYPE_F16: return "F16";
    case MCRT_DTYPE_BF16: return "BF16";
    case MCRT_DTYPE_F64: return "F64";
    case MCRT_DTYPE_I8: return "I8";
    case MCRT_DTYPE_I16: return "I16";
    case MCRT_DTYPE_I32: return "I32";
    case MCRT_DTYPE_I64: return "I64";
    case MCRT_DTYPE_U8: return "U8";
    case MCRT_DTYPE_BOOL: return "BOOL";
    default: return "?";
    }
}

static bool is_float16_32(int32_t d)
{
    return d == MCRT_DTYPE_F32 || d == MCRT_DTYPE_F16 || d == MCRT_DTYPE_BF16;
}

bool ckpt_can_convert(int32_t from, int32_t to)
{
    if (mcrt_dtype_size(from) == 0 || mcrt_dtype_size(to) == 0)
        return false;
    return from == to || (is_float16_32(from) && is_float16_32(to));
}

uint16_t ckpt_f32_to_f16(uint32_t x)
{
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t a = x & 0x7fffffffu;
    if (a > 0x7f800000u) /* NaN: quiet, top payload bits */
        return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x38800000u) { /* |x| >= 2^-14: a normal half, or overflow */
        uint32_t m = a - (112u << 23);        /* rebias 127 -> 15 */
        m += 0xfffu + ((m >> 13) & 1u);       /* round the 13 dropped bits, ties to even */
        m >>= 13;
        if (m >= 0x7c00u)
            return (uint16_t)(sign | 0x7c00u); /* infinity */
        return (uint16_t)(sign | m);
    }
    if (a <= 0x33000000u) /* |x| <= 2^-25: rounds to zero (2^-25 is a tie, to even) */
        return (uint16_t)sign;
    /* A half subnormal: units of 2^-24. */
    uint32_t e = a >> 23;                      /* 102..112 */
    uint32_t mant = (a & 0x7fffffu) | 0x800000u;
    uint32_t shift = 126u - e;                 /* 14..24 */
    uint32_t r = mant >> shift;
    uint32_t rem = mant & ((1u << shift) - 1u);
    uint32_t half = 1u << (shift - 1u);
    if (rem > half || (rem == half && (r & 1u)))
        r++; /* may carry into the smallest normal, which is the right encoding */
    return (uint16_t)(sign | r);
}

uint16_t ckpt_f32_to_bf16(uint32_t x)
{
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((x >> 16) | 0x40u); /* NaN: quiet */
    uint32_t r = x + 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(r >> 16);
}

uint32_t ckpt_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1fu;
    uint32_t m = h & 0x3ffu;
    if (e == 0x1fu)
        return sign | 0x7f800000u | (m << 13);
    if (e == 0) {
        if (m == 0)
            return sign;
        uint32_t s = 0;
        while ((m & 0x400u) == 0) {
            m <<= 1;
            s++;
        }
        m &= 0x3ffu;
        return sign | ((113u - s) << 23) | (m << 13);
    }
    return sign | ((e + 112u) << 23) | (m << 13);
}

uint32_t ckpt_bf16_to_f32(uint16_t b)
{
    return (uint32_t)b << 16;
}

/* Unaligned little-endian element access (the host is little-endian). */
static inline uint16_t ld16(const unsigned char *p)
{
    uint16_t v;
    memcpy(&v, p, 2);
    return v;
}
static inline uint32_t ld32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static inline void st16(unsigned char *p, uint16_t v)
{
    memcpy(p, &v, 2);
}
static inline void st32(unsigned char *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

void ckpt_convert(void *dst, int32_t to, const void *src, int32_t from, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;
    if (from == to) {
        memcpy(d, s, n * mcrt_dtype_size(from));
        return;
    }
    size_t i;
    switch (from * 16 + to) {
    case MCRT_DTYPE_F32 * 16 + MCRT_DTYPE_F16:
        for (i = 0; i < n; i++)
            st16(d + 2 * i, ckpt_f32_to_f16(ld32(s + 4 * i)));
        break;
    case MCRT_DTYPE_F32 * 16 + MCRT_DTYPE_BF16:
        for (i = 0; i < n; i++)
            st16(d + 2 * i, ckpt_f32_to_bf16(ld32(s + 4 * i)));
        break;
    case MCRT_DTYPE_F16 * 16 + MCRT_DTYPE_F32:
        for (i = 0; i < n; i++)
            st32(d + 4 * i, ckpt_f16_to_f32(ld16(s + 2 * i)));
        break;
    case MCRT_DTYPE_BF16 * 16 + MCRT_DTYPE_F32:
        for (i = 0; i < n; i++)
            st32(d + 4 * i, ckpt_bf16_to_f32(ld16(s + 2 * i)));
        break;
    case MCRT_DTYPE_F16 * 16 + MCRT_DTYPE_BF16: /* the widening step is exact: one rounding */
        for (i = 0; i < n; i++)
            st16(d + 2 * i, ckpt_f32_to_bf16(ckpt_f16_to_f32(ld16(s + 2 * i))));
        break;
    case MCRT_DTYPE_BF16 * 16 + MCRT_DTYPE_F16:
        for (i = 0; i < n; i++)
            st16(d + 2 * i, ckpt_f32_to_f16(ckpt_bf16_to_f32(ld16(s + 2 * i))));
        break;
    default: /* callers check ckpt_can_convert first */
        memset(d, 0, n * mcrt_dtype_size(to));
        break;
    }
}
