/*
 * mcrt/checkpoint.h: reading model weights through the host
 * ("mcrt.host.checkpoint/1", fetched with host->get_ext).
 *
 * The core opens a checkpoint (a safetensors file, a folder holding
 * model.safetensors or a sharded model.safetensors.index.json set; later the
 * Megatron torch and torch_dist formats) and lists its tensors by name. A
 * model plugin reads each tensor, or a slice of it along one dimension (what
 * tensor parallelism needs), converted to the dtype it asks for, into its own
 * buffer; or, when no slice or conversion is needed, borrows a read-only view
 * of the mapped file without copying.
 *
 * Everything about the file is validated when it is opened (header, offsets
 * inside the file, no overlaps, known dtypes, shape x dtype size = bytes, no
 * integer overflow); a malformed checkpoint is MCRT_E_DATA with a logged
 * message naming the file, the tensor and the problem.
 *
 * All functions are [any-thread]: a checkpoint is immutable once open, so
 * ranks may read their shards concurrently.
 */
#ifndef MCRT_CHECKPOINT_H
#define MCRT_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>

#include "mcrt/plugin.h" /* mcrt_host, mcrt_status */

#ifdef __cplusplus
extern "C" {
#endif

#define MCRT_HOST_EXT_CHECKPOINT "mcrt.host.checkpoint/1"

/* An open checkpoint; core-owned, freed by close. */
typedef struct mcrt_checkpoint mcrt_checkpoint;

#define MCRT_CHECKPOINT_MAX_DIMS 8

typedef struct mcrt_tensor_info {
    uint32_t struct_size;                      /* of the caller's struct */
    int32_t dtype;                             /* MCRT_DTYPE_* as stored */
    int32_t ndim;                              /* 0..MCRT_CHECKPOINT_MAX_DIMS */
    int32_t reserved;                          /* zero */
    int64_t shape[MCRT_CHECKPOINT_MAX_DIMS];   /* unused dims are 0 */
    const char *name;                          /* owned by the checkpoint, valid until close */
    uint64_t nbytes;                           /* stored size in bytes */
} mcrt_tensor_info;

/* One hyper-parameter the checkpoint carries (see `arg` below). */
typedef struct mcrt_checkpoint_arg {
    uint32_t struct_size; /* of the caller's struct */
    int32_t type;         /* MCRT_CFG_BOOL, _INT, _FLOAT or _STRING (mcrt/config.h) */
    int64_t i;            /* BOOL (0/1) and INT values */
    double f;             /* FLOAT values (INT values too, converted) */
    const char *s;        /* STRING values; owned by the checkpoint, valid until close */
    const char *source;   /* where it came from ("config.json"), for messages */
    /* --- ABI 1.0 additions (check with MCRT_HAS) --- */
    int32_t origin;       /* MCRT_CHECKPOINT_ARG_* below */
} mcrt_checkpoint_arg;

/* What kind of statement an argument is (mcrt_checkpoint_arg.origin):
 *   MODEL_CONFIG   a model description shipped with the weights (an HF
 *                  config.json): it describes these weights, so a model
 *                  fills every key the YAML leaves unset from it.
 *   TRAINING_ARGS  the argparse Namespace a Megatron training run saved: a
 *                  model reads it only when asked (--use-checkpoint-args),
 *                  with Megatron's rules (reference §3.5: some keys forced,
 *                  some filling only what is unset, the rest never read). */
#define MCRT_CHECKPOINT_ARG_MODEL_CONFIG 0
#define MCRT_CHECKPOINT_ARG_TRAINING_ARGS 1

/* Options for open_ex (zero-initialise, set struct_size). */
typedef struct mcrt_checkpoint_open_options {
    uint32_t struct_size;
    int32_t has_step; /* nonzero: open iteration `step` of a Megatron --load folder */
    int64_t step;     /* Megatron's --ckpt-step (instead of the tracker's iteration) */
} mcrt_checkpoint_open_options;

typedef struct mcrt_checkpoint_services {
    uint32_t struct_size;

    /* Open `path`: a .safetensors file, a .safetensors.index.json file, or a
     * folder holding model.safetensors or model.safetensors.index.json. On
     * success *out is core-owned until close. Errors: MCRT_E_NOTFOUND /
     * MCRT_E_IO (missing, unreadable), MCRT_E_DATA (malformed), each logged. */
    mcrt_status (*open)(const mcrt_host *host, const char *path, mcrt_checkpoint **out);

    /* Close; every view and name handed out becomes invalid. NULL is a no-op. */
    void (*close)(const mcrt_host *host, mcrt_checkpoint *ck);

    /* Number of tensors; tensor i's description (i in [0, count)), in a
     * stable order (sorted by name). */
    size_t (*count)(const mcrt_host *host, const mcrt_checkpoint *ck);
    mcrt_status (*info_at)(const mcrt_host *host, const mcrt_checkpoint *ck, size_t i,
                           mcrt_tensor_info *out);

    /* The description of the tensor called `name`, or MCRT_E_NOTFOUND (not
     * logged: callers probe alternative spellings). `out` may be NULL. */
    mcrt_status (*find)(const mcrt_host *host, const mcrt_checkpoint *ck, const char *name,
                        mcrt_tensor_info *out);

    /* Copy tensor `name`, or its slice [start, start + len) along dimension
     * `dim` (dim = -1: the whole tensor, start and len ignored), converted to
     * `dtype` (MCRT_DTYPE_F32, F16 or BF16 from any of them, rounding to
     * nearest even; every other dtype -- F64, integers, BOOL -- only to
     * itself), row-major and contiguous, into dst[0..dst_size) (caller-owned;
     * exactly product(shape) x dtype size bytes are written, dst_size may be
     * larger). A slice, dtype or size that does not fit is MCRT_E_INVAL /
     * MCRT_E_RANGE with a logged reason naming the tensor. */
    mcrt_status (*read)(const mcrt_host *host, const mcrt_checkpoint *ck, const char *name,
                        int32_t dim, int64_t start, int64_t len, int32_t dtype, void *dst,
                        size_t dst_size);

    /* Borrow the stored bytes of tensor `name` (read-only, row-major, stored
     * dtype), valid until close; `out` may be NULL. The pointer is aligned
     * only as the file is (safetensors does not promise element alignment).
     * MCRT_E_UNSUPPORTED, not logged as an error, when the format cannot
     * give a zero-copy view (the caller then uses read). */
    mcrt_status (*view)(const mcrt_host *host, const mcrt_checkpoint *ck, const char *name,
                        const void **data, mcrt_tensor_info *out);

    /* --- ABI 1.0 additions (check with MCRT_HAS) --- */

    /* The model hyper-parameter `name` that the checkpoint itself carries,
     * spelled as Megatron's argument (hidden_size, num_layers, ...): today
     * from an HF GPT-2 config.json beside the weights, mapped to Megatron's
     * names (docs/checkpoints.md); later from a Megatron checkpoint's args.
     * MCRT_OK and *out, or MCRT_E_NOTFOUND (not logged) when the checkpoint
     * does not say. `out` is caller-owned (set out->struct_size). */
    mcrt_status (*arg)(const mcrt_host *host, const mcrt_checkpoint *ck, const char *name,
                       mcrt_checkpoint_arg *out);

    /* --- ABI 1.0 additions, after `arg` (check with MCRT_HAS) --- */

    /* open with options (opt NULL: as open). Besides open's formats: a
     * Megatron-LM --load folder (latest_checkpointed_iteration.txt), an
     * iteration folder, or a torch.save file, in the legacy `torch` or the
     * `torch_dist` format; the shards are merged into the TP=1 view with
     * MCore names, and the args Namespace is offered through `arg` with
     * origin TRAINING_ARGS. */
    mcrt_status (*open_ex)(const mcrt_host *host, const char *path,
                           const mcrt_checkpoint_open_options *opt, mcrt_checkpoint **out);
} mcrt_checkpoint_services;

#ifdef __cplusplus
}
#endif

#endif /* MCRT_CHECKPOINT_H */
