/*
 * core/checkpoint/backend.h: what a checkpoint format implements, and the
 * table-building helpers it uses (only core/checkpoint/ includes this).
 *
 * A format registers a ckpt_format in checkpoint.c's table: how to
 * recognise it (a file's first bytes and name, or a folder's entry names)
 * and how to open it. Its open allocates the checkpoint with ckpt_new, adds
 * every tensor with ckpt_add_tensor (stored dtype, shape, size and where its
 * bytes are), installs its ops and state with ckpt_set_backend, and returns;
 * ckpt_open then sorts the table, refuses duplicate names and hands it out.
 * Reads, slices, conversions and views are generic: a tensor with `data`
 * set is read from memory; otherwise through ops->read_bytes.
 *
 * Later formats (Megatron torch zip + restricted pickle, torch_dist) fit the
 * same shape: a torch zip's stored entries are mmap-able like safetensors;
 * torch_dist chunks are reached through read_bytes.
 */
#ifndef MCRT_CORE_CHECKPOINT_BACKEND_H
#define MCRT_CORE_CHECKPOINT_BACKEND_H

#include <stdarg.h>

#include "checkpoint/checkpoint.h"

#if defined(__GNUC__) || defined(__clang__)
#define CKPT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CKPT_PRINTF(a, b)
#endif

typedef struct ckpt_backend {
    const char *format; /* "safetensors" */
    /* Free the state (unmap files). */
    void (*close)(void *state);
    /* Stored bytes [off, off + n) of tensor t into dst. */
    mcrt_status (*read_bytes)(const void *state, const ckpt_tensor *t, uint64_t off, size_t n,
                              void *dst, ckpt_err *err);
    /* The path of file index `file`, for messages. */
    const char *(*file_path)(const void *state, uint32_t file);
} ckpt_backend;

/* A format: `open` is called for a path that `match_file` accepted (head =
 * the file's first bytes, up to 16) or, for a folder, for the first of
 * `folder_entries` (NULL-terminated) that exists, with that entry's path. */
typedef struct ckpt_format {
    const char *name;
    bool (*match_file)(const char *path, const unsigned char *head, size_t n);
    const char *const *folder_entries;
    mcrt_status (*open)(ckpt *ck, const char *path, ckpt_err *err);
} ckpt_format;

extern const ckpt_format ckpt_format_safetensors;
extern const ckpt_format ckpt_format_safetensors_index;
extern const ckpt_format ckpt_format_megatron;   /* megatron_torch.c */
extern const ckpt_format ckpt_format_torch_file; /* megatron_torch.c */

/* ---- helpers for backends ------------------------------------------------ */

/* The iteration ckpt_open_ex asked for (--ckpt-step); false when none. */
bool ckpt_requested_step(const ckpt *ck, int64_t *step);

/* Fill err (status and message) and return the status. */
mcrt_status ckpt_fail(ckpt_err *err, mcrt_status status, const char *fmt, ...) CKPT_PRINTF(3, 4);

/* Quote a string for a message: printable ASCII and UTF-8 kept, other bytes
 * as \xNN, long strings shortened in the middle. Returns buf. */
const char *ckpt_quote(char *buf, size_t size, const char *s, size_t len);
#define CKPT_QUOTE_SIZE 256

/* Install the backend (its state is freed by ops->close at ckpt_close, also
 * when open fails after this call). */
void ckpt_set_backend(ckpt *ck, const ckpt_backend *ops, void *state);

/* Add a tensor: name[0..name_len) is copied (must be non-empty, no NUL);
 * proto's name and name_off are ignored. */
mcrt_status ckpt_add_tensor(ckpt *ck, const char *name, size_t name_len, const ckpt_tensor *proto,
                            ckpt_err *err);

/* Tensor i in insertion order (before ckpt_open sorts the table); its name
 * is not set yet: use ckpt_tensor_name. */
size_t ckpt_table_size(const ckpt *ck);
ckpt_tensor *ckpt_table_at(ckpt *ck, size_t i);
const char *ckpt_tensor_name(const ckpt *ck, const ckpt_tensor *t);

/* Add a `__metadata__` pair (copied; an existing key keeps its value). */
mcrt_status ckpt_add_metadata(ckpt *ck, const char *key, size_t key_len, const char *val,
                              size_t val_len, ckpt_err *err);

/* Map `path` whole, read-only (munmap(*map, *size) to free). An empty file
 * maps to NULL with size 0. MCRT_E_NOTFOUND, MCRT_E_IO naming the path. */
mcrt_status ckpt_map_file(const char *path, const unsigned char **map, size_t *size,
                          ckpt_err *err);

/* n integers for a message, into buf (truncated to size), returned:
 * "[2, 3]", or as a Python tuple when tuple != 0: "(2, 3)", "(2,)", "()". */
const char *ckpt_ints_text(char *buf, size_t size, const int64_t *v, int32_t n, int tuple);

/* dir + "/" + name, malloc'd; NULL on out of memory. */
char *ckpt_join(const char *dir, const char *name);

/* Overflow-checked arithmetic: false (and *out untouched) on overflow. */
static inline bool ckpt_mul_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    if (a != 0 && b > UINT64_MAX / a)
        return false;
    *out = a * b;
    return true;
}
static inline bool ckpt_add_u64(uint64_t a, uint64_t b, uint64_t *out)
{
    if (b > UINT64_MAX - a)
        return false;
    *out = a + b;
    return true;
}

#endif /* MCRT_CORE_CHECKPOINT_BACKEND_H */
