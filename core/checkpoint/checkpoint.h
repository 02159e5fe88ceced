/*
 * core/checkpoint/checkpoint.h: the core's checkpoint reader (internal API).
 *
 * One object, whatever the format: an open checkpoint is a table of tensors
 * sorted by name (byte order), each with its stored dtype, shape and size.
 * Reads (whole tensor or a slice along one dimension, converted to the
 * requested dtype) and zero-copy views are format-independent; a format is
 * a backend (backend.h) that fills the table and gives the stored bytes.
 * Today: safetensors files and sharded model.safetensors.index.json sets.
 *
 * Nothing here logs. Every failing call fills a ckpt_err (status and one
 * complete message naming the file, the tensor and the problem); the host
 * adapter (core/runtime/host_checkpoint.c) logs it through the calling
 * plugin's host. A checkpoint is immutable after ckpt_open, so every
 * function taking a const ckpt * may run concurrently with any other.
 */
#ifndef MCRT_CORE_CHECKPOINT_H
#define MCRT_CORE_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mcrt/checkpoint.h" /* struct mcrt_checkpoint, MCRT_CHECKPOINT_MAX_DIMS */
#include "mcrt/status.h"
#include "mcrt/tensor.h"     /* MCRT_DTYPE_* */

/* The public opaque type is the core's object. */
typedef struct mcrt_checkpoint ckpt;

/* Largest accepted safetensors header / index file, as the reference
 * implementation (safetensors' MAX_HEADER_SIZE). */
#define CKPT_MAX_HEADER 100000000u

typedef struct ckpt_err {
    mcrt_status status;
    char msg[1024];
} ckpt_err;

typedef struct ckpt_tensor {
    const char *name;          /* NUL-terminated, no NUL inside; owned by the ckpt */
    int32_t dtype;             /* MCRT_DTYPE_* as stored */
    int32_t ndim;              /* 0..MCRT_CHECKPOINT_MAX_DIMS */
    int64_t shape[MCRT_CHECKPOINT_MAX_DIMS]; /* unused dims are 0 */
    uint64_t nelem;            /* product of shape (1 for a scalar) */
    uint64_t nbytes;           /* nelem * dtype size */
    /* Where the bytes are, for the backend: */
    uint32_t file;             /* the backend's file index */
    uint64_t offset;           /* of the first byte in that file */
    const unsigned char *data; /* the mapped bytes, or NULL (no zero-copy) */
    size_t name_off;           /* backend.h: while building */
} ckpt_tensor;

/* Open a file or folder (see mcrt/checkpoint.h for what is accepted).
 * MCRT_OK and *out, or an error in *err (MCRT_E_NOTFOUND, MCRT_E_IO,
 * MCRT_E_DATA, MCRT_E_UNSUPPORTED, MCRT_E_NOMEM, MCRT_E_INVAL). */
mcrt_status ckpt_open(const char *path, ckpt **out, ckpt_err *err);
void ckpt_close(ckpt *ck);

/* Options for ckpt_open_ex (zero-initialise, then set what you need). */
typedef struct ckpt_open_options {
    /* A Megatron --load folder: open iteration `step` instead of what
     * latest_checkpointed_iteration.txt says (Megatron's --ckpt-step).
     * -1 (or 0 when has_step is false): the tracker's. */
    bool has_step;
    int64_t step;
} ckpt_open_options;

/* ckpt_open with options (opt NULL: ckpt_open). */
mcrt_status ckpt_open_ex(const char *path, const ckpt_open_options *opt, ckpt **out,
                         ckpt_err *err);

/* The path as given to ckpt_open; the format ("safetensors"). */
const char *ckpt_path(const ckpt *ck);
const char *ckpt_format_name(const ckpt *ck);

/* True when p looks like an open checkpoint (a plugin may pass garbage). */
bool ckpt_valid(const ckpt *ck);

size_t ckpt_count(const ckpt *ck);
const ckpt_tensor *ckpt_at(const ckpt *ck, size_t i);       /* NULL if i >= count */
const ckpt_tensor *ckpt_find(const ckpt *ck, const char *name); /* NULL if absent */

/* ckpt_find, or MCRT_E_NOTFOUND with a message naming the checkpoint and
 * the closest name ("did you mean ..."). */
mcrt_status ckpt_lookup(const ckpt *ck, const char *name, const ckpt_tensor **out, ckpt_err *err);

/* `__metadata__` values (string map; merged over shards, first wins). For
 * Megatron checkpoints: format, iteration, checkpoint_version,
 * tensor_model_parallel_size, pipeline_model_parallel_size,
 * layers_per_stage (and release). */
const char *ckpt_metadata(const ckpt *ck, const char *key);
/* The metadata pairs in insertion order: false when i >= their count. */
bool ckpt_metadata_at(const ckpt *ck, size_t i, const char **key, const char **value);

/* A model hyper-parameter the checkpoint carries, named as Megatron's
 * argument (mcrt/checkpoint.h, `arg`). type is MCRT_CFG_BOOL / _INT / _FLOAT
 * / _STRING; i holds BOOL and INT values, f FLOAT values (and INT ones,
 * converted), s STRING values. `source` names where it came from (copied). */
typedef struct ckpt_arg {
    char *name;
    int32_t type;
    int64_t i;
    double f;
    char *s;
    const char *source;
    int32_t origin; /* MCRT_CHECKPOINT_ARG_* */
} ckpt_arg;

/* Add one (name, s and source are copied; an existing name keeps its value). */
mcrt_status ckpt_add_arg(ckpt *ck, const ckpt_arg *a, ckpt_err *err);
/* The argument called name, or NULL; count and i-th in insertion order. */
const ckpt_arg *ckpt_find_arg(const ckpt *ck, const char *name);
size_t ckpt_arg_count(const ckpt *ck);
const ckpt_arg *ckpt_arg_at(const ckpt *ck, size_t i);

/* Reads config.json beside the weights (in `path` when it is a folder, else
 * in the file's folder), when there is one, and adds what it says as
 * Megatron arguments (hf_config.c; docs/checkpoints.md). Only HF GPT-2
 * configs ("model_type": "gpt2") are mapped; another model_type is left
 * alone. A malformed config.json is MCRT_E_DATA naming the file. */
mcrt_status ckpt_read_hf_config(ckpt *ck, const char *path, bool is_dir, ckpt_err *err);

/* Copy tensor t (or [start, start+len) along dim; dim -1 = whole tensor)
 * converted to dtype into dst[0..dst_size), row-major contiguous. Exactly
 * *out_bytes bytes are written (out_bytes may be NULL). Errors:
 * MCRT_E_INVAL (dim, dtype, conversion, NULL dst), MCRT_E_RANGE (slice
 * bounds, dst too small), or the backend's read error. */
mcrt_status ckpt_read(const ckpt *ck, const ckpt_tensor *t, int32_t dim, int64_t start,
                      int64_t len, int32_t dtype, void *dst, size_t dst_size, size_t *out_bytes,
                      ckpt_err *err);

/* Borrow the stored bytes, valid until ckpt_close. MCRT_E_UNSUPPORTED when
 * the backend cannot map them. */
mcrt_status ckpt_view(const ckpt *ck, const ckpt_tensor *t, const void **data, ckpt_err *err);

/* Tests: behave as a backend without zero-copy (view is unsupported and
 * reads go through the backend's read_bytes). Not thread-safe: call right
 * after open. */
void ckpt_set_copy_only(ckpt *ck, bool on);

/* ---- dtypes (convert.c) ------------------------------------------------- */

/* "F32", "BF16", ...; "?" for unknown. */
const char *ckpt_dtype_name(int32_t dtype);

/* Whether read may convert from -> to: identity for every dtype, and any
 * pair of F32, F16, BF16. */
bool ckpt_can_convert(int32_t from, int32_t to);

/* Convert n elements (both buffers may be unaligned; must not overlap). */
void ckpt_convert(void *dst, int32_t to, const void *src, int32_t from, size_t n);

/* Scalar conversions, by bits. Narrowing rounds to nearest, ties to even;
 * overflow gives infinity; NaN stays NaN (quiet, sign kept). */
uint16_t ckpt_f32_to_f16(uint32_t f);
uint16_t ckpt_f32_to_bf16(uint32_t f);
uint32_t ckpt_f16_to_f32(uint16_t h);
uint32_t ckpt_bf16_to_f32(uint16_t b);

#endif /* MCRT_CORE_CHECKPOINT_H */
