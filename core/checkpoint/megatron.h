/*
 * core/checkpoint/megatron.h: what the two Megatron-LM formats share (the
 * legacy `torch` format, megatron_torch.c, and `torch_dist`,
 * megatron_dist.c): the mapped files, the assembled tensors, MCore names,
 * the merge rules of reference §3.4 and the `args` Namespace.
 *
 * The view a Megatron checkpoint gives is the one a TP=1, PP=1 safetensors
 * checkpoint of the same model would give: every tensor under its MCore
 * Transformer-Engine name (`decoder.layers.<global layer>.…`, legacy and
 * local spellings renamed, `_extra_state` dropped) with its global shape.
 * Each such tensor is *assembled*: a list of pieces, each a rectangular
 * block of the global tensor whose elements lie, strided, in a mapped file
 * (a TP shard's rows, a column split, a swiglu half, one head's q rows of a
 * legacy QKV, one layer of a torch_dist chunk). Nothing is copied at open;
 * a read (ckpt_read, whole or a slice) copies just the pieces it touches,
 * so a tensor-parallel rank reads only its own slices. The first read that
 * touches a ZIP entry checks that entry's CRC-32 (and fails naming the file
 * and entry when it does not match); there are no zero-copy views, so
 * every byte a plugin gets has been checked.
 *
 * mg_finish checks every assembled tensor: pieces inside the tensor, no two
 * overlapping, together covering it exactly (so a missing or repeated
 * shard is an error naming the tensor, not garbage weights).
 */
#ifndef MCRT_CORE_CHECKPOINT_MEGATRON_H
#define MCRT_CORE_CHECKPOINT_MEGATRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "checkpoint/backend.h"
#include "checkpoint/pickle.h"
#include "checkpoint/zip.h"

#define MG_MAX_DIMS MCRT_CHECKPOINT_MAX_DIMS
#define MG_NO_ENTRY UINT32_MAX

/* The torch_dist backend (megatron_dist.c): open the iteration folder
 * `dir` (holding metadata.json) into ck. `iteration` is what the tracker
 * or --ckpt-step said (-1 for none, "release" = 0 with release true). */
mcrt_status mg_open_dist(ckpt *ck, const char *dir, int64_t iteration, bool release,
                         ckpt_err *err);

/* A block of a tensor: elements [off[d], off[d] + size[d]) along every
 * dimension d, element (off + i) at src + sum_d i[d] * stride[d] elements. */
typedef struct mg_piece {
    int64_t off[MG_MAX_DIMS];
    int64_t size[MG_MAX_DIMS];
    int64_t stride[MG_MAX_DIMS];
    const unsigned char *src;
    uint32_t entry; /* mg_entry index whose CRC covers src, or MG_NO_ENTRY */
    uint32_t file;  /* mg_map index, for messages */
} mg_piece;

typedef struct mg_state mg_state;

mg_state *mg_new(void); /* NULL on out of memory */
/* Free everything (also what mg_finish handed to the checkpoint is freed by
 * its close, not here: call mg_free only when mg_finish was not reached or
 * failed before ckpt_set_backend). */
void mg_free(mg_state *st);

/* The arena pickles are loaded into (freed by mg_free or at close). */
pk_arena *mg_arena(mg_state *st);

/* Map a whole file read-only; *file indexes it for pieces and messages. */
mcrt_status mg_map(mg_state *st, const char *path, uint32_t *file, const unsigned char **data,
                   size_t *len, ckpt_err *err);
const char *mg_file_path(const mg_state *st, uint32_t file);

/* Open the ZIP in bytes [off, off + len) of mapped file `file` (label names
 * it in messages; copied). The archive lives as long as the state. */
mcrt_status mg_zip(mg_state *st, uint32_t file, uint64_t off, uint64_t len, const char *label,
                   zip_archive **out, ckpt_err *err);

/* Load `<prefix>/data.pkl` of a torch.save archive (into mg_arena; label
 * e.g. "<path>: data.pkl"). extra_classes as pk_options (may be NULL). */
mcrt_status mg_torch_pickle(mg_state *st, const zip_archive *z, const char *const *extra_classes,
                            const pk_value **root, ckpt_err *err);

/* The CRC-check slot for entry e of archive z (the same e gives the same
 * slot). MG_NO_ENTRY on out of memory. */
uint32_t mg_entry(mg_state *st, const zip_archive *z, const zip_entry *e, uint32_t file);

/* Add a piece of tensor `name` (created on first use with this dtype and
 * global shape; later pieces must agree, MCRT_E_DATA naming both files
 * otherwise). `where` names the piece's origin in messages. */
mcrt_status mg_add_piece(mg_state *st, const char *name, int32_t dtype, int32_t ndim,
                         const int64_t *shape, const mg_piece *p, const char *where,
                         ckpt_err *err);

/* The piece a resolved torch tensor gives: its whole view placed at `off`
 * (ndim of the view; NULL = all zeros). */
void mg_piece_of_view(mg_piece *p, const pk_tensor_view *v, const int64_t *off, uint32_t entry,
                      uint32_t file);

/* Resolve a PK_TENSOR of archive z (pk_tensor_resolve, plus the CRC slot). */
mcrt_status mg_resolve(mg_state *st, const pk_value *t, const zip_archive *z, uint32_t file,
                       pk_tensor_view *view, uint32_t *entry, ckpt_err *err);

/* Whether tensor `name` has been added; its dtype/shape when so. */
bool mg_has(const mg_state *st, const char *name, int32_t *ndim, int64_t *shape);

/* Check every tensor (see the top) and hand the table and the state to the
 * checkpoint (format name as given). On failure the state is still the
 * caller's to free. */
mcrt_status mg_finish(mg_state *st, ckpt *ck, const char *format, ckpt_err *err);

/* ---- MCore names and merge rules (§3.2-§3.4) ------------------------------ */

/* How a tensor is split over tensor-parallel ranks. */
typedef enum mg_split {
    MG_SPLIT_UNKNOWN = 0, /* not a GPT weight mcrt knows */
    MG_REPLICATED,        /* norms, position embeddings, row-parallel biases */
    MG_SPLIT_ROWS,        /* dim 0: vocab rows, QKV (group-major), fc1 (plain) */
    MG_SPLIT_COLS,        /* dim 1: linear_proj, linear_fc2 weights */
    MG_SPLIT_GATED_ROWS,  /* fc1 with swiglu: rank r = [gate_r; up_r] */
} mg_split;

/* The split of an MCore TE name ("decoder.layers.3.mlp.linear_fc1.weight"). */
mg_split mg_split_of(const char *te_name, bool gated);

/* Rename an MCore local-spec or legacy (§3.3) key to the TE spelling,
 * written to out (size n). The layer index is kept as given (local to the
 * stage). Returns: 1 renamed or already TE, 0 a key to skip
 * (`*._extra_state`, `rotary_pos_emb.inv_freq`), -1 unknown (out holds the
 * key unchanged). *legacy_qkv is set for legacy `query_key_value` keys,
 * whose rows need the checkpoint_version reorder. */
int mg_te_name(const char *key, char *out, size_t n, bool *legacy_qkv);

/* Split "decoder.layers.<i>.<rest>": the index and a pointer to rest; false
 * for other names. */
bool mg_layer_name(const char *name, int64_t *layer, const char **rest);

/* ---- args ------------------------------------------------------------------ */

/* Add every scalar attribute of the args Namespace (bool, int, float, str;
 * torch dtypes as their name, "bfloat16"; enum members as their name) as a
 * checkpoint argument with this source ("<file>: args"); None and other
 * values are left out. Also `disable_bias_linear` -> add_bias_linear. */
mcrt_status mg_add_args(ckpt *ck, const pk_value *ns, const char *source, ckpt_err *err);

/* Attribute `key` of the Namespace as an int / bool; false if absent or of
 * another type. */
bool mg_arg_int(const pk_value *ns, const char *key, int64_t *out);
bool mg_arg_bool(const pk_value *ns, const char *key, bool *out);

/* ckpt_add_metadata with a printf value. */
mcrt_status mg_meta(ckpt *ck, const char *key, ckpt_err *err, const char *fmt, ...)
    CKPT_PRINTF(4, 5);

#endif /* MCRT_CORE_CHECKPOINT_MEGATRON_H */
