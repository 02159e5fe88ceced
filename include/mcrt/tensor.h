/*
 * mcrt/tensor.h: the plain tensor descriptor that crosses the ABI.
 *
 * A tensor is a view: it never owns its data and never carries behaviour. The
 * memory belongs to whoever filled in `data` (see each call's ownership note).
 * Strides are in elements, not bytes; shape[0] is the outermost dimension.
 */
#ifndef MCRT_TENSOR_H
#define MCRT_TENSOR_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Element types. Append-only. */
enum {
    MCRT_DTYPE_F32 = 1,
    MCRT_DTYPE_F16 = 2,
    MCRT_DTYPE_BF16 = 3,
    MCRT_DTYPE_F64 = 4,
    MCRT_DTYPE_I8 = 5,
    MCRT_DTYPE_I16 = 6,
    MCRT_DTYPE_I32 = 7,
    MCRT_DTYPE_I64 = 8,
    MCRT_DTYPE_U8 = 9,
    MCRT_DTYPE_BOOL = 10
};

/* Where the data lives. Append-only. */
enum {
    MCRT_DEVICE_CPU = 1,
    MCRT_DEVICE_CUDA = 2
};

#define MCRT_TENSOR_MAX_DIMS 4

typedef struct mcrt_tensor {
    void *data;                           /* first element; borrowed */
    int32_t dtype;                        /* MCRT_DTYPE_* */
    int32_t device;                       /* MCRT_DEVICE_* */
    int32_t device_index;                 /* CUDA ordinal; 0 on the CPU */
    int32_t ndim;                         /* 0..MCRT_TENSOR_MAX_DIMS */
    int64_t shape[MCRT_TENSOR_MAX_DIMS];  /* unused dims are 1 */
    int64_t stride[MCRT_TENSOR_MAX_DIMS]; /* in elements; unused dims are 0 */
} mcrt_tensor;

/* [any-thread] Bytes per element of a dtype; 0 for an unknown dtype. */
static inline uint32_t mcrt_dtype_size(int32_t dtype)
{
    switch (dtype) {
    case MCRT_DTYPE_F32: return 4;
    case MCRT_DTYPE_F16: return 2;
    case MCRT_DTYPE_BF16: return 2;
    case MCRT_DTYPE_F64: return 8;
    case MCRT_DTYPE_I8: return 1;
    case MCRT_DTYPE_I16: return 2;
    case MCRT_DTYPE_I32: return 4;
    case MCRT_DTYPE_I64: return 8;
    case MCRT_DTYPE_U8: return 1;
    case MCRT_DTYPE_BOOL: return 1;
    default: return 0;
    }
}

#ifdef __cplusplus
}
#endif

#endif /* MCRT_TENSOR_H */
