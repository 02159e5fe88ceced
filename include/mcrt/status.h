/*
 * mcrt/status.h: status codes shared by the host and every plugin.
 *
 * A status is an int32_t. Zero is success, negative values are errors, and a
 * few documented positive values mean "success, with information". Values are
 * append-only: a number is never reused or renumbered. Code that switches on a
 * status always has a `default:` branch, because a newer plugin may return a
 * code this header does not know yet.
 *
 * The detail of an error never travels in the return value: before returning
 * an error, the code that detected it calls the host's `log` with a message
 * naming the file, key or field and what was expected. The core keeps the last
 * such message per pipeline and reports it with the failure.
 */
#ifndef MCRT_STATUS_H
#define MCRT_STATUS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int32_t mcrt_status;

enum {
    MCRT_OK = 0,              /* success */
    MCRT_DONE = 1,            /* success; the work is finished (no more steps) */

    MCRT_E_INVAL = -1,        /* an argument or input is malformed */
    MCRT_E_NOMEM = -2,        /* an allocation failed */
    MCRT_E_UNSUPPORTED = -3,  /* valid, but not supported by this implementation */
    MCRT_E_ABI = -4,          /* incompatible ABI version or struct size */
    MCRT_E_IO = -5,           /* a file could not be read or written */
    MCRT_E_CONFIG = -6,       /* configuration invalid (key, type, range) */
    MCRT_E_DEVICE = -7,       /* CUDA / cuBLAS / cuDNN failure */
    MCRT_E_COMM = -8,         /* communication failure (NCCL, MPI, shared memory) */
    MCRT_E_INTERNAL = -9,     /* a bug: an invariant did not hold */
    MCRT_E_NOTFOUND = -10,    /* a named thing (key, tensor, plugin, file) does not exist */
    MCRT_E_RANGE = -11,       /* a buffer is too small or an index is out of range */
    MCRT_E_DATA = -12,        /* a data file (checkpoint, vocabulary) is corrupt */
    MCRT_E_CANCELLED = -13    /* the operation was cancelled */
    /* append new codes here, with the next free number */
};

/* [any-thread] A short static English name for a status ("invalid argument").
 * The returned string is static; unknown codes give "unknown status". */
static inline const char *mcrt_status_str(mcrt_status s)
{
    switch (s) {
    case MCRT_OK: return "ok";
    case MCRT_DONE: return "done";
    case MCRT_E_INVAL: return "invalid argument";
    case MCRT_E_NOMEM: return "out of memory";
    case MCRT_E_UNSUPPORTED: return "not supported";
    case MCRT_E_ABI: return "incompatible ABI";
    case MCRT_E_IO: return "I/O error";
    case MCRT_E_CONFIG: return "configuration error";
    case MCRT_E_DEVICE: return "device error";
    case MCRT_E_COMM: return "communication error";
    case MCRT_E_INTERNAL: return "internal error";
    case MCRT_E_NOTFOUND: return "not found";
    case MCRT_E_RANGE: return "out of range";
    case MCRT_E_DATA: return "corrupt data";
    case MCRT_E_CANCELLED: return "cancelled";
    default: return "unknown status";
    }
}

#ifdef __cplusplus
}
#endif

#endif /* MCRT_STATUS_H */
