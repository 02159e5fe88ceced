/*
 * core/checkpoint/megatron_dist.c: Megatron-LM's `torch_dist` checkpoint
 * format (reference §3.7; tools/reference/megatron_ckpt/README.md, c.),
 * opened through the shared Megatron API of megatron.h.
 *
 * An iteration folder holds:
 *   metadata.json   {"sharded_backend": "torch_dist", "sharded_backend_version": 1,
 *                    "common_backend": "torch", "common_backend_version": 1}
 *   common.pt       torch.save of the non-sharded entries: args (an
 *                   argparse.Namespace), checkpoint_version, iteration, ...
 *   .metadata       a plain pickle (protocol 4 today) of PyTorch DCP's
 *                   torch.distributed.checkpoint.metadata.Metadata:
 *                     state_dict_metadata  fqn -> TensorStorageMetadata(
 *                         properties: TensorProperties (dtype, ...),
 *                         size: torch.Size,
 *                         chunks: [ChunkStorageMetadata(offsets, sizes)])
 *                       or BytesStorageMetadata() (a ShardedObject: BYTE_IO)
 *                     storage_data  MetadataIndex(fqn, offset, index)
 *                                     -> _StorageInfo(relative_path, offset, length)
 *   __<rank>_<n>.distcp  the items, back to back: every tensor chunk is a
 *                   complete torch.save ZIP embedded at [offset, offset +
 *                   length) of its file; BYTE_IO items are raw bytes.
 *
 * The DCP dataclasses are read as generic data classes of the restricted
 * pickle machine (pk_options.extra_classes, below): nothing runs. Their
 * fields are attributes (BUILD dict state), except TensorProperties, whose
 * __getstate__ gives the tuple (dtype, layout, requires_grad,
 * memory-format enum, pin_memory); both forms are read.
 *
 * Keys are global and use the Transformer-Engine names. Layer tensors are
 * stacked: `decoder.layers.<rest>` (no index) has the global shape
 * [L, ...]; a chunk [n, rows, ...] at offsets (l, r, ...) holds layers
 * l .. l+n-1, and becomes n pieces of `decoder.layers.<l+i>.<rest>` (shape
 * [...], the chunk's trailing dims at (r, ...)). A key that keeps its
 * index (a non-homogeneous stack) and every other key is one tensor of its
 * global shape. SwiGLU fc1 is stored as the global [gate; up], which is
 * the layout mcrt's view has: its chunks simply land at their rows. Tied
 * output weights are stored only as embedding.word_embeddings.weight.
 *
 * Skipped: BYTE_IO items (the `_extra_state` and `rng_state`
 * ShardedObjects), any `*._extra_state*` key, `rng_state*`, and the
 * optimizer's keys (`optimizer.*`, `chained_<i>.optimizer.*`). Their files
 * are not even mapped: a file is mapped on the first chunk that needs it.
 *
 * Every chunk read is checked: its storage_data entry exists, names a plain
 * file of the folder, and lies inside it; the chunk lies inside the global
 * shape; the embedded ZIP opens and its data.pkl is one tensor of exactly
 * the chunk's shape and the metadata's dtype. mg_finish then checks that
 * the chunks cover every tensor exactly once.
 *
 * common.pt gives the checkpoint's arguments (args, as the torch format)
 * and metadata: format torch_dist, iteration (which must be the one the
 * tracker or --ckpt-step named, unless it is a release), checkpoint_version
 * ("3.0"), the saving tensor_model_parallel_size and
 * pipeline_model_parallel_size (from args), release. A stacked layer axis
 * must have args.num_layers layers.
 *
 * Status: MCRT_E_NOTFOUND for a missing file, MCRT_E_UNSUPPORTED for a
 * valid checkpoint mcrt does not read (another sharded backend such as
 * zarr, a version other than 1, transformed storage), MCRT_E_DATA for
 * anything corrupt. Messages name the file (and the tensor and chunk).
 *
 * Nothing here needs more of the shared API (megatron.h) than it has.
 */
#include "checkpoint/backend.h"
#include "checkpoint/json.h"
#include "checkpoint/megatron.h"
#include "checkpoint/pickle.h"
#include "checkpoint/zip.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define Q(buf, s) ckpt_quote((buf), sizeof(buf), (s), strlen(s))

/* metadata.json is four short members; anything past this is not one. */
#define DIST_MAX_CONFIG_JSON (1u << 20)

/* The classes a .metadata pickle names besides the built-in allow-list:
 * PyTorch DCP's dataclasses (metadata.py, planner.py, filesystem.py; the
 * planner's appear in Megatron's extra `all_local_plans` attribute) and
 * Megatron-Core's subclasses of two of them (strategies/torch.py, v0.10 to
 * v0.15). Also the pre-2.0 module spelling torch.distributed._shard.checkpoint. */
static const char *const dist_classes[] = {
    "torch.distributed.checkpoint.metadata.Metadata",
    "torch.distributed.checkpoint.metadata.StorageMeta",
    "torch.distributed.checkpoint.metadata.TensorStorageMetadata",
    "torch.distributed.checkpoint.metadata.BytesStorageMetadata",
    "torch.distributed.checkpoint.metadata.ChunkStorageMetadata",
    "torch.distributed.checkpoint.metadata.TensorProperties",
    "torch.distributed.checkpoint.metadata._MEM_FORMAT_ENCODING",
    "torch.distributed.checkpoint.metadata.MetadataIndex",
    "torch.distributed.checkpoint.planner.SavePlan",
    "torch.distributed.checkpoint.planner.WriteItem",
    "torch.distributed.checkpoint.planner.WriteItemType",
    "torch.distributed.checkpoint.planner.TensorWriteData",
    "torch.distributed.checkpoint.filesystem._StorageInfo",
    "torch.distributed._shard.checkpoint.metadata.Metadata",
    "torch.distributed._shard.checkpoint.metadata.TensorStorageMetadata",
    "torch.distributed._shard.checkpoint.metadata.BytesStorageMetadata",
    "torch.distributed._shard.checkpoint.metadata.ChunkStorageMetadata",
    "torch.distributed._shard.checkpoint.metadata.TensorProperties",
    "torch.distributed._shard.checkpoint.metadata._MEM_FORMAT_ENCODING",
    "torch.distributed._shard.checkpoint.metadata.MetadataIndex",
    "torch.distributed._shard.checkpoint.filesystem._StorageInfo",
    "megatron.core.dist_checkpointing.strategies.torch.MCoreMetadata",
    "megatron.core.dist_checkpointing.strategies.torch.MCoreSavePlan",
    NULL,
};

/* One storage_data entry of a model tensor: MetadataIndex(fqn, offset) and
 * its _StorageInfo (parsed when a chunk asks for it). */
typedef struct dist_ref {
    const char *fqn; /* in the arena, NUL-terminated */
    size_t fqn_len;
    int32_t ndim;    /* length of the offset tuple, at most MG_MAX_DIMS */
    int64_t off[MG_MAX_DIMS];
    const pk_value *info;
} dist_ref;

/* A .distcp file, mapped when a chunk first needs it. */
typedef struct dist_file {
    const char *name; /* relative_path (in the arena) */
    uint32_t file;    /* mg_map index */
    const unsigned char *data;
    size_t len;
} dist_file;

typedef struct dist_ctx {
    ckpt *ck;
    mg_state *st;
    const char *dir;
    char *meta_path;               /* <dir>/.metadata */
    char qmeta[CKPT_QUOTE_SIZE];   /* it, quoted */
    dist_ref *refs;
    size_t nrefs;
    dist_file *files;              /* sorted by name */
    size_t nfiles, files_cap;
    char *name;                    /* scratch: a per-layer tensor name */
    size_t name_cap;
    int64_t num_layers;            /* args.num_layers, or -1 */
    char qcommon[CKPT_QUOTE_SIZE]; /* <dir>/common.pt, quoted */
} dist_ctx;

static mcrt_status nomem(ckpt_err *err)
{
    return ckpt_fail(err, MCRT_E_NOMEM, "out of memory opening a torch_dist checkpoint");
}

/* A value for a message: its Python-like rendering, or "absent". */
static const char *shown(const pk_value *v, char *buf, size_t size)
{
    return v == NULL ? "absent" : pk_repr(v, buf, size);
}

/* ---- metadata.json --------------------------------------------------------- */

typedef struct dist_config {
    char sharded_backend[64];
    bool has_sharded_backend;
    int64_t sharded_version;
    bool has_sharded_version;
    char common_backend[64];
    bool has_common_backend;
    int64_t common_version;
    bool has_common_version;
} dist_config;

/* The whole (small) file, NUL-terminated; NOTFOUND when it does not exist. */
static mcrt_status read_small_file(const char *path, size_t max, char **out, size_t *len,
                                   ckpt_err *err)
{
    char q[CKPT_QUOTE_SIZE];
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        int e = errno;
        if (e == ENOENT || e == ENOTDIR)
            return ckpt_fail(err, MCRT_E_NOTFOUND, "%s: no such file", Q(q, path));
        return ckpt_fail(err, MCRT_E_IO, "%s: cannot open: %s", Q(q, path), strerror(e));
    }
    char *buf = malloc(max + 1);
    if (buf == NULL) {
        fclose(f);
        return nomem(err);
    }
    size_t n = fread(buf, 1, max + 1, f);
    bool failed = ferror(f) != 0;
    fclose(f);
    if (failed) {
        free(buf);
        return ckpt_fail(err, MCRT_E_IO, "%s: cannot read", Q(q, path));
    }
    if (n > max) {
        free(buf);
        return ckpt_fail(err, MCRT_E_DATA, "%s: more than %zu bytes; not a checkpoint's "
                         "metadata.json", Q(q, path), max);
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return MCRT_OK;
}

static mcrt_status config_json_fail(const char *qpath, json_reader *r, ckpt_err *err)
{
    return ckpt_fail(err, MCRT_E_DATA, "%s: invalid JSON at byte %zu: %s", qpath, r->err_offset,
                     json_error(r));
}

/* A string member into buf (cut to its size: only compared and quoted). */
static mcrt_status config_string(const char *qpath, json_reader *r, const char *key, char *buf,
                                 size_t size, ckpt_err *err)
{
    json_kind k = json_peek(r);
    if (k == JSON_INVALID)
        return config_json_fail(qpath, r, err);
    if (k != JSON_STRING)
        return ckpt_fail(err, MCRT_E_DATA, "%s: \"%s\" is %s, not a string", qpath, key,
                         json_kind_name(k));
    const char *s;
    size_t n;
    if (!json_read_string(r, &s, &n))
        return config_json_fail(qpath, r, err);
    ckpt_quote(buf, size, s, n);
    return MCRT_OK;
}

static mcrt_status config_int(const char *qpath, json_reader *r, const char *key, int64_t *out,
                              ckpt_err *err)
{
    json_kind k = json_peek(r);
    if (k == JSON_INVALID)
        return config_json_fail(qpath, r, err);
    json_number num;
    if (k != JSON_NUMBER)
        return ckpt_fail(err, MCRT_E_DATA, "%s: \"%s\" is %s, not an integer", qpath, key,
                         json_kind_name(k));
    if (!json_read_number(r, &num))
        return config_json_fail(qpath, r, err);
    int shown = num.len > 40 ? 40 : (int)num.len;
    if (!num.is_integer || num.overflow)
        return ckpt_fail(err, MCRT_E_DATA, "%s: \"%s\" is %.*s, not a 64-bit integer", qpath,
                         key, shown, num.text);
    *out = num.value;
    return MCRT_OK;
}

/* metadata.json (Megatron's CheckpointingConfig): torch_dist version 1 with
 * the torch common backend, or MCRT_E_UNSUPPORTED naming what it says. */
static mcrt_status read_config(const char *dir, ckpt_err *err)
{
    char *path = ckpt_join(dir, "metadata.json");
    if (path == NULL)
        return nomem(err);
    char q[CKPT_QUOTE_SIZE];
    Q(q, path);
    char *text = NULL;
    size_t len = 0;
    mcrt_status s = read_small_file(path, DIST_MAX_CONFIG_JSON, &text, &len, err);
    free(path);
    if (s != MCRT_OK)
        return s;
    dist_config c;
    memset(&c, 0, sizeof c);
    json_reader r;
    json_init(&r, text, len, 0, 8);
    if (json_peek(&r) != JSON_OBJECT) {
        json_kind k = json_peek(&r);
        s = k == JSON_INVALID ? config_json_fail(q, &r, err)
                              : ckpt_fail(err, MCRT_E_DATA, "%s: the document is %s, not an "
                                          "object", q, json_kind_name(k));
        goto done;
    }
    if (!json_open_object(&r)) {
        s = config_json_fail(q, &r, err);
        goto done;
    }
    for (;;) {
        const char *key;
        size_t kl;
        int m = json_next_member(&r, &key, &kl);
        if (m < 0) {
            s = config_json_fail(q, &r, err);
            goto done;
        }
        if (m == 0)
            break;
        if (json_eq(key, kl, "sharded_backend")) {
            s = config_string(q, &r, "sharded_backend", c.sharded_backend,
                              sizeof c.sharded_backend, err);
            c.has_sharded_backend = true;
        } else if (json_eq(key, kl, "sharded_backend_version")) {
            s = config_int(q, &r, "sharded_backend_version", &c.sharded_version, err);
            c.has_sharded_version = true;
        } else if (json_eq(key, kl, "common_backend")) {
            s = config_string(q, &r, "common_backend", c.common_backend, sizeof c.common_backend,
                              err);
            c.has_common_backend = true;
        } else if (json_eq(key, kl, "common_backend_version")) {
            s = config_int(q, &r, "common_backend_version", &c.common_version, err);
            c.has_common_version = true;
        } else if (!json_skip(&r)) {
            s = config_json_fail(q, &r, err);
        }
        if (s != MCRT_OK)
            goto done;
    }
    if (!json_finish(&r)) {
        s = config_json_fail(q, &r, err);
        goto done;
    }
    if (!c.has_sharded_backend) {
        s = ckpt_fail(err, MCRT_E_DATA, "%s: no \"sharded_backend\"", q);
    } else if (strcmp(c.sharded_backend, "torch_dist") != 0) {
        s = ckpt_fail(err, MCRT_E_UNSUPPORTED, "%s: sharded_backend '%s' is not supported "
                      "(mcrt reads torch_dist and the legacy torch format)", q,
                      c.sharded_backend);
    } else if (c.has_sharded_version && c.sharded_version != 1) {
        s = ckpt_fail(err, MCRT_E_UNSUPPORTED, "%s: torch_dist sharded_backend_version %" PRId64
                      " is not supported (mcrt reads version 1)", q, c.sharded_version);
    } else if (c.has_common_backend && strcmp(c.common_backend, "torch") != 0) {
        s = ckpt_fail(err, MCRT_E_UNSUPPORTED, "%s: common_backend '%s' is not supported (mcrt "
                      "reads torch: common.pt)", q, c.common_backend);
    } else if (c.has_common_version && c.common_version != 1) {
        s = ckpt_fail(err, MCRT_E_UNSUPPORTED, "%s: common_backend_version %" PRId64 " is not "
                      "supported (mcrt reads version 1)", q, c.common_version);
    }
done:
    json_fini(&r);
    free(text);
    return s;
}

/* ---- common.pt ------------------------------------------------------------- */

/* checkpoint_version as Megatron prints it: 3.0, 1.0 (a float), or 0. */
static mcrt_status meta_number(ckpt *ck, const char *key, const pk_value *v, ckpt_err *err)
{
    int64_t i;
    double f;
    if (pk_as_int(v, &i))
        return mg_meta(ck, key, err, "%" PRId64, i);
    if (pk_as_float(v, &f)) {
        if (f == (double)(int64_t)f && f > -1e15 && f < 1e15)
            return mg_meta(ck, key, err, "%.1f", f);
        return mg_meta(ck, key, err, "%.17g", f);
    }
    return MCRT_OK;
}

/* common.pt: args into the checkpoint's arguments; iteration, version and
 * the saved parallel layout into its metadata. */
static mcrt_status read_common(dist_ctx *c, int64_t iteration, bool release, ckpt_err *err)
{
    char *path = ckpt_join(c->dir, "common.pt");
    if (path == NULL)
        return nomem(err);
    char label[CKPT_QUOTE_SIZE + 16], r[128];
    const char *q = Q(c->qcommon, path);
    uint32_t file;
    const unsigned char *data;
    size_t len;
    zip_archive *z = NULL;
    const pk_value *root = NULL;
    mcrt_status s = mg_map(c->st, path, &file, &data, &len, err);
    if (s == MCRT_OK)
        s = mg_zip(c->st, file, 0, len, path, &z, err);
    if (s == MCRT_OK)
        s = mg_torch_pickle(c->st, z, NULL, &root, err);
    if (s != MCRT_OK)
        goto done;
    if (pk_kind_of(root) != PK_DICT) {
        s = ckpt_fail(err, MCRT_E_DATA, "%s: data.pkl holds %s, not a dict", q,
                      pk_kind_name(pk_kind_of(root)));
        goto done;
    }
    const pk_value *args = pk_dict_get(root, "args");
    if (args != NULL) {
        const char *cls = pk_class_name(args);
        if (cls == NULL || strcmp(cls, "argparse.Namespace") != 0) {
            s = ckpt_fail(err, MCRT_E_DATA, "%s: 'args' is %s, not an argparse.Namespace", q,
                          shown(args, r, sizeof r));
            goto done;
        }
        snprintf(label, sizeof label, "%s: args", q);
        s = mg_add_args(c->ck, args, label, err);
        if (s != MCRT_OK)
            goto done;
    }
    s = mg_meta(c->ck, "format", err, "torch_dist");
    if (s != MCRT_OK)
        goto done;
    const pk_value *it = pk_dict_get(root, "iteration");
    int64_t saved = -1;
    if (it != NULL && !pk_as_int(it, &saved)) {
        s = ckpt_fail(err, MCRT_E_DATA, "%s: 'iteration' is %s, not an integer", q,
                      shown(it, r, sizeof r));
        goto done;
    }
    if (it != NULL && !release && iteration >= 0 && saved != iteration) {
        s = ckpt_fail(err, MCRT_E_DATA, "%s: saved at iteration %" PRId64 ", but the tracker or "
                      "--ckpt-step asked for iteration %" PRId64, q, saved, iteration);
        goto done;
    }
    if (it == NULL)
        saved = release ? 0 : iteration;
    if (saved >= 0)
        s = mg_meta(c->ck, "iteration", err, "%" PRId64, saved);
    if (s == MCRT_OK && release)
        s = mg_meta(c->ck, "release", err, "true");
    const pk_value *ver = pk_dict_get(root, "checkpoint_version");
    if (s == MCRT_OK && ver != NULL)
        s = meta_number(c->ck, "checkpoint_version", ver, err);
    int64_t n;
    if (s == MCRT_OK && args != NULL && mg_arg_int(args, "tensor_model_parallel_size", &n))
        s = mg_meta(c->ck, "tensor_model_parallel_size", err, "%" PRId64, n);
    if (s == MCRT_OK && args != NULL && mg_arg_int(args, "pipeline_model_parallel_size", &n))
        s = mg_meta(c->ck, "pipeline_model_parallel_size", err, "%" PRId64, n);
    if (args == NULL || !mg_arg_int(args, "num_layers", &c->num_layers))
        c->num_layers = -1;
done:
    free(path);
    return s;
}

/* ---- .metadata -------------------------------------------------------------- */

/* Non-negative ints of a torch.Size (a tuple) or a list, up to max of them
 * kept; *n gets the length. False when v is neither or an item is not a
 * non-negative int. */
static bool size_tuple(const pk_value *v, int64_t *out, int32_t max, int32_t *n)
{
    pk_kind k = pk_kind_of(v);
    if (k != PK_TUPLE && k != PK_LIST)
        return false;
    size_t len = pk_len(v);
    if (len > INT32_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        int64_t x;
        if (!pk_as_int(pk_item(v, i), &x) || x < 0)
            return false;
        if (i < (size_t)max)
            out[i] = x;
    }
    *n = (int32_t)len;
    return true;
}

/* Keys that hold no model weight. */
static bool skipped_key(const char *fqn)
{
    if (strncmp(fqn, "optimizer.", 10) == 0 || strncmp(fqn, "rng_state", 9) == 0 ||
        strstr(fqn, "._extra_state") != NULL)
        return true;
    /* ChainedOptimizer: chained_<i>.optimizer.* */
    if (strncmp(fqn, "chained_", 8) == 0) {
        const char *p = fqn + 8;
        if (*p < '0' || *p > '9')
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
        return strncmp(p, ".optimizer.", 11) == 0;
    }
    return false;
}

static int cmp_ref(const void *pa, const void *pb)
{
    const dist_ref *a = pa, *b = pb;
    size_t n = a->fqn_len < b->fqn_len ? a->fqn_len : b->fqn_len;
    int c = memcmp(a->fqn, b->fqn, n);
    if (c != 0)
        return c;
    if (a->fqn_len != b->fqn_len)
        return a->fqn_len < b->fqn_len ? -1 : 1;
    if (a->ndim != b->ndim)
        return a->ndim < b->ndim ? -1 : 1;
    for (int32_t d = 0; d < a->ndim; d++)
        if (a->off[d] != b->off[d])
            return a->off[d] < b->off[d] ? -1 : 1;
    return 0;
}

/* The storage_data entries of model tensors, sorted by (fqn, offsets). */
static mcrt_status index_storage(dist_ctx *c, const pk_value *storage, ckpt_err *err)
{
    char r[128];
    if (pk_kind_of(storage) != PK_DICT)
        return ckpt_fail(err, MCRT_E_DATA, "%s: storage_data is %s, not a dict", c->qmeta,
                         shown(storage, r, sizeof r));
    size_t n = pk_len(storage);
    c->refs = calloc(n ? n : 1, sizeof *c->refs);
    if (c->refs == NULL)
        return nomem(err);
    for (size_t i = 0; i < n; i++) {
        const pk_value *key = pk_dict_key(storage, i);
        const pk_value *fqn = pk_dict_get(key, "fqn");
        size_t fl;
        const char *f = pk_as_str(fqn, &fl);
        if (pk_kind_of(key) != PK_OBJECT || f == NULL || fl == 0 || strlen(f) != fl)
            return ckpt_fail(err, MCRT_E_DATA, "%s: storage_data key %zu is %s, not a "
                             "MetadataIndex with a tensor name", c->qmeta, i,
                             shown(key, r, sizeof r));
        const pk_value *off = pk_dict_get(key, "offset");
        if (skipped_key(f) || off == NULL || pk_kind_of(off) == PK_NONE)
            continue; /* no model weight; or a BYTE_IO item (no offset) */
        dist_ref *ref = &c->refs[c->nrefs];
        ref->fqn = f;
        ref->fqn_len = fl;
        ref->info = pk_dict_value(storage, i);
        if (!size_tuple(off, ref->off, MG_MAX_DIMS, &ref->ndim)) {
            char qn[CKPT_QUOTE_SIZE];
            return ckpt_fail(err, MCRT_E_DATA, "%s: storage_data key for '%s': offset is %s, "
                             "not a tuple of non-negative integers", c->qmeta, Q(qn, f),
                             shown(off, r, sizeof r));
        }
        if (ref->ndim <= MG_MAX_DIMS) /* a tensor of more dims is refused before a lookup */
            c->nrefs++;
    }
    if (c->nrefs > 1)
        qsort(c->refs, c->nrefs, sizeof *c->refs, cmp_ref);
    for (size_t i = 1; i < c->nrefs; i++) {
        if (cmp_ref(&c->refs[i - 1], &c->refs[i]) != 0)
            continue;
        char qn[CKPT_QUOTE_SIZE], o[160];
        return ckpt_fail(err, MCRT_E_DATA, "%s: storage_data has two entries for tensor '%s' "
                         "at offsets %s", c->qmeta, Q(qn, c->refs[i].fqn),
                         ckpt_ints_text(o, sizeof o, c->refs[i].off, c->refs[i].ndim, 1));
    }
    return MCRT_OK;
}

static const dist_ref *find_ref(const dist_ctx *c, const char *fqn, const int64_t *off,
                                int32_t ndim)
{
    dist_ref want;
    memset(&want, 0, sizeof want);
    want.fqn = fqn;
    want.fqn_len = strlen(fqn);
    want.ndim = ndim;
    memcpy(want.off, off, (size_t)ndim * sizeof *off);
    return c->nrefs ? bsearch(&want, c->refs, c->nrefs, sizeof *c->refs, cmp_ref) : NULL;
}

/* The mapped .distcp file `name` (relative_path, already checked) that
 * .metadata puts chunk `chunk` of tensor qn (quoted) in. */
static mcrt_status get_file(dist_ctx *c, const char *name, const char *qn, const char *chunk,
                            const dist_file **out, ckpt_err *err)
{
    size_t lo = 0, hi = c->nfiles;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(c->files[mid].name, name);
        if (cmp == 0) {
            *out = &c->files[mid];
            return MCRT_OK;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (c->nfiles == c->files_cap) {
        size_t cap = c->files_cap ? 2 * c->files_cap : 16;
        dist_file *f = realloc(c->files, cap * sizeof *f);
        if (f == NULL)
            return nomem(err);
        c->files = f;
        c->files_cap = cap;
    }
    dist_file nf;
    memset(&nf, 0, sizeof nf);
    nf.name = name;
    char *path = ckpt_join(c->dir, name);
    if (path == NULL)
        return nomem(err);
    mcrt_status s = mg_map(c->st, path, &nf.file, &nf.data, &nf.len, err);
    if (s == MCRT_E_NOTFOUND) {
        char q[CKPT_QUOTE_SIZE];
        s = ckpt_fail(err, s, "%s: no such file, but %s puts tensor '%s' chunk %s in it",
                      Q(q, path), c->qmeta, qn, chunk);
    }
    free(path);
    if (s != MCRT_OK)
        return s;
    memmove(&c->files[lo + 1], &c->files[lo], (c->nfiles - lo) * sizeof *c->files);
    c->files[lo] = nf;
    c->nfiles++;
    *out = &c->files[lo];
    return MCRT_OK;
}

/* The dtype of a TensorProperties: its `dtype` attribute, or the first item
 * of the tuple its __getstate__ gives. */
static const pk_value *properties_dtype(const pk_value *props)
{
    const pk_value *d = pk_dict_get(props, "dtype");
    if (d != NULL)
        return d;
    const pk_value *state = pk_object_state(props);
    if (pk_kind_of(state) == PK_TUPLE && pk_len(state) >= 1)
        return pk_item(state, 0);
    return NULL;
}

/* A tensor's description, for one chunk's messages. */
typedef struct dist_tensor {
    const char *fqn;
    char qn[CKPT_QUOTE_SIZE];
    int32_t dtype;
    const char *dtype_name;
    int32_t ndim;
    int64_t shape[MG_MAX_DIMS];
    const char *stacked_rest; /* "self_attention.linear_qkv.weight" for a stacked key, or NULL */
} dist_tensor;

static mcrt_status add_layer_pieces(dist_ctx *c, const dist_tensor *t, const int64_t *off,
                                    const pk_tensor_view *v, uint32_t entry, uint32_t file,
                                    const char *where, ckpt_err *err)
{
    size_t need = strlen(t->stacked_rest) + sizeof "decoder.layers.." + 24;
    if (need > c->name_cap) {
        char *n = realloc(c->name, need);
        if (n == NULL)
            return nomem(err);
        c->name = n;
        c->name_cap = need;
    }
    int32_t nd = t->ndim - 1;
    for (int64_t i = 0; i < v->shape[0]; i++) {
        mg_piece p;
        memset(&p, 0, sizeof p);
        for (int32_t d = 0; d < nd; d++) {
            p.off[d] = off[d + 1];
            p.size[d] = v->shape[d + 1];
            p.stride[d] = v->stride[d + 1];
        }
        /* inside the view, which pk_tensor_resolve checked against its storage */
        p.src = v->data + (uint64_t)i * (uint64_t)v->stride[0] * v->elem_size;
        p.entry = entry;
        p.file = file;
        snprintf(c->name, c->name_cap, "decoder.layers.%" PRId64 ".%s", off[0] + i,
                 t->stacked_rest);
        mcrt_status s = mg_add_piece(c->st, c->name, t->dtype, nd, t->shape + 1, &p, where, err);
        if (s != MCRT_OK)
            return s;
    }
    return MCRT_OK;
}

/* One chunk of tensor t: find its bytes, check them, add its pieces. */
static mcrt_status read_chunk(dist_ctx *c, const dist_tensor *t, size_t ci,
                              const pk_value *chunk, ckpt_err *err)
{
    char r[128], o[160], qf[CKPT_QUOTE_SIZE];
    int64_t off[MG_MAX_DIMS], size[MG_MAX_DIMS];
    int32_t no = 0, ns = 0;
    const pk_value *vo = pk_dict_get(chunk, "offsets"), *vs = pk_dict_get(chunk, "sizes");
    if (pk_kind_of(chunk) != PK_OBJECT || vo == NULL || vs == NULL)
        return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': chunk %zu is %s, not a "
                         "ChunkStorageMetadata(offsets, sizes)", c->qmeta, t->qn, ci,
                         shown(chunk, r, sizeof r));
    bool offsets_ok = size_tuple(vo, off, MG_MAX_DIMS, &no);
    if (!offsets_ok || !size_tuple(vs, size, MG_MAX_DIMS, &ns))
        return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': chunk %zu: %s is %s, not a tuple "
                         "of non-negative integers", c->qmeta, t->qn, ci,
                         offsets_ok ? "sizes" : "offsets", shown(offsets_ok ? vs : vo, r,
                                                                    sizeof r));
    if (no != t->ndim || ns != t->ndim)
        return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': chunk %zu has %" PRId32 " offsets "
                         "and %" PRId32 " sizes for a tensor of %" PRId32 " dimensions",
                         c->qmeta, t->qn, ci, no, ns, t->ndim);
    for (int32_t d = 0; d < t->ndim; d++) {
        if (off[d] > t->shape[d] || size[d] > t->shape[d] - off[d]) {
            char gs[160];
            return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': chunk %zu at offsets %s of "
                             "sizes %s runs past the tensor's shape %s", c->qmeta, t->qn, ci,
                             ckpt_ints_text(o, sizeof o, off, t->ndim, 1),
                             ckpt_ints_text(r, sizeof r, size, t->ndim, 1),
                             ckpt_ints_text(gs, sizeof gs, t->shape, t->ndim, 1));
        }
    }
    ckpt_ints_text(o, sizeof o, off, t->ndim, 1);

    const dist_ref *ref = find_ref(c, t->fqn, off, t->ndim);
    if (ref == NULL)
        return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': chunk %zu at offsets %s has no "
                         "storage_data entry", c->qmeta, t->qn, ci, o);
    const pk_value *info = ref->info;
    size_t pl;
    const char *rel = pk_as_str(pk_dict_get(info, "relative_path"), &pl);
    int64_t at, length;
    if (pk_kind_of(info) != PK_OBJECT || rel == NULL ||
        !pk_as_int(pk_dict_get(info, "offset"), &at) ||
        !pk_as_int(pk_dict_get(info, "length"), &length) || at < 0 || length < 0)
        return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': chunk %s: storage_data entry is %s, "
                         "not a _StorageInfo(relative_path, offset, length)", c->qmeta, t->qn, o,
                         shown(info, r, sizeof r));
    /* a plain file of the folder: no path, no parent, no NUL */
    if (pl == 0 || strlen(rel) != pl || strchr(rel, '/') != NULL || strcmp(rel, ".") == 0 ||
        strcmp(rel, "..") == 0)
        return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': chunk %s: relative_path '%s' is not "
                         "a file name in the checkpoint folder", c->qmeta, t->qn, o,
                         ckpt_quote(qf, sizeof qf, rel, pl));
    const pk_value *tr = pk_dict_get(info, "transform_descriptors");
    if (tr != NULL && pk_kind_of(tr) != PK_NONE && pk_len(tr) != 0)
        return ckpt_fail(err, MCRT_E_UNSUPPORTED, "%s: tensor '%s': chunk %s: its bytes in '%s' "
                         "are transformed (%s); mcrt reads plain torch.save chunks only",
                         c->qmeta, t->qn, o, Q(qf, rel), shown(tr, r, sizeof r));
    const dist_file *f = NULL;
    mcrt_status s = get_file(c, rel, t->qn, o, &f, err);
    if (s != MCRT_OK)
        return s;
    uint64_t end;
    const char *fpath = mg_file_path(c->st, f->file);
    if (!ckpt_add_u64((uint64_t)at, (uint64_t)length, &end) || end > f->len)
        return ckpt_fail(err, MCRT_E_DATA, "%s says tensor '%s' chunk %s lies at [%" PRId64 ", +%"
                         PRId64 ") of %s, which has only %zu bytes", c->qmeta, t->qn, o, at,
                         length, Q(qf, fpath), f->len);
    bool empty = false;
    for (int32_t d = 0; d < t->ndim; d++)
        empty = empty || size[d] == 0;
    if (empty)
        return MCRT_OK; /* no element to place (and none to read) */

    char *label = malloc(strlen(fpath) + 64);
    if (label == NULL)
        return nomem(err);
    snprintf(label, strlen(fpath) + 64, "%s [%" PRId64 ", +%" PRId64 ")", fpath, at, length);
    zip_archive *z = NULL;
    const pk_value *root = NULL;
    pk_tensor_view v;
    uint32_t entry = MG_NO_ENTRY;
    s = mg_zip(c->st, f->file, (uint64_t)at, (uint64_t)length, label, &z, err);
    if (s == MCRT_OK)
        s = mg_torch_pickle(c->st, z, NULL, &root, err);
    if (s == MCRT_OK && pk_kind_of(root) != PK_TENSOR)
        s = ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s' chunk %s: data.pkl holds %s, not a "
                      "tensor", label, t->qn, o, shown(root, r, sizeof r));
    if (s == MCRT_OK)
        s = mg_resolve(c->st, root, z, f->file, &v, &entry, err);
    if (s == MCRT_OK) {
        bool same = v.ndim == t->ndim;
        for (int32_t d = 0; same && d < t->ndim; d++)
            same = v.shape[d] == size[d];
        char want[160], got[160];
        if (!same)
            s = ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s' chunk %s: the archive holds a "
                          "tensor of shape %s; .metadata says %s", label, t->qn, o,
                          ckpt_ints_text(got, sizeof got, v.shape, v.ndim, 1),
                          ckpt_ints_text(want, sizeof want, size, t->ndim, 1));
        else if (v.dtype != t->dtype)
            s = ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s' chunk %s: the archive holds %s; "
                          ".metadata says %s", label, t->qn, o, ckpt_dtype_name(v.dtype),
                          t->dtype_name);
    }
    if (s == MCRT_OK) {
        if (t->stacked_rest != NULL) {
            s = add_layer_pieces(c, t, off, &v, entry, f->file, label, err);
        } else {
            mg_piece p;
            mg_piece_of_view(&p, &v, off, entry, f->file);
            s = mg_add_piece(c->st, t->fqn, t->dtype, t->ndim, t->shape, &p, label, err);
        }
    }
    free(label);
    return s;
}

/* One state_dict_metadata item: a tensor's chunks, or something skipped. */
static mcrt_status read_tensor(dist_ctx *c, const char *fqn, const pk_value *md, ckpt_err *err)
{
    char r[128];
    const char *cls = pk_class_name(md);
    size_t cl = cls != NULL ? strlen(cls) : 0;
    dist_tensor t;
    memset(&t, 0, sizeof t);
    t.fqn = fqn;
    Q(t.qn, fqn);
    if (cls != NULL && cl >= 20 && strcmp(cls + cl - 20, "BytesStorageMetadata") == 0)
        return MCRT_OK; /* a ShardedObject (extra state, rng state) */
    if (skipped_key(fqn))
        return MCRT_OK;
    if (cls == NULL || cl < 21 || strcmp(cls + cl - 21, "TensorStorageMetadata") != 0)
        return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': its metadata is %s, not a "
                         "TensorStorageMetadata or BytesStorageMetadata", c->qmeta, t.qn,
                         shown(md, r, sizeof r));
    const pk_value *props = pk_dict_get(md, "properties");
    const pk_value *size = pk_dict_get(md, "size");
    const pk_value *chunks = pk_dict_get(md, "chunks");
    const pk_dtype *dt = pk_as_dtype(properties_dtype(props));
    if (dt == NULL)
        return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': properties %s give no torch dtype",
                         c->qmeta, t.qn, shown(props, r, sizeof r));
    if (dt->dtype == 0)
        return ckpt_fail(err, MCRT_E_UNSUPPORTED, "%s: tensor '%s': dtype torch.%s is not "
                         "supported", c->qmeta, t.qn, dt->name);
    t.dtype = dt->dtype;
    t.dtype_name = ckpt_dtype_name(dt->dtype);
    if (!size_tuple(size, t.shape, MG_MAX_DIMS, &t.ndim))
        return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': size is %s, not a tuple of "
                         "non-negative integers", c->qmeta, t.qn, shown(size, r, sizeof r));
    if (t.ndim > MG_MAX_DIMS)
        return ckpt_fail(err, MCRT_E_UNSUPPORTED, "%s: tensor '%s' has %" PRId32 " dimensions; "
                         "mcrt reads at most %d", c->qmeta, t.qn, t.ndim, MG_MAX_DIMS);
    if (pk_kind_of(chunks) != PK_LIST && pk_kind_of(chunks) != PK_TUPLE)
        return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': chunks is %s, not a list", c->qmeta,
                         t.qn, shown(chunks, r, sizeof r));
    int64_t layer;
    const char *rest;
    if (strncmp(fqn, "decoder.layers.", 15) == 0 && !mg_layer_name(fqn, &layer, &rest)) {
        /* stacked: [L, ...], split per layer below */
        t.stacked_rest = fqn + 15;
        if (t.ndim < 1 || t.stacked_rest[0] == '\0')
            return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': a stacked layer tensor needs a "
                             "layer axis, but its size is %s", c->qmeta, t.qn,
                             shown(size, r, sizeof r));
        if (c->num_layers >= 0 && t.shape[0] != c->num_layers)
            return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s' stacks %" PRId64 " layers, but "
                             "%s: args say num_layers %" PRId64, c->qmeta, t.qn, t.shape[0],
                             c->qcommon, c->num_layers);
    }
    if (pk_len(chunks) == 0)
        return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s' has no chunks", c->qmeta, t.qn);
    for (size_t i = 0; i < pk_len(chunks); i++) {
        mcrt_status s = read_chunk(c, &t, i, pk_item(chunks, i), err);
        if (s != MCRT_OK)
            return s;
    }
    return MCRT_OK;
}

/* Load .metadata and add every model tensor's pieces. */
static mcrt_status read_metadata(dist_ctx *c, ckpt_err *err)
{
    uint32_t file;
    const unsigned char *data;
    size_t len;
    mcrt_status s = mg_map(c->st, c->meta_path, &file, &data, &len, err);
    if (s != MCRT_OK)
        return s;
    if (len == 0)
        return ckpt_fail(err, MCRT_E_DATA, "%s: an empty file", c->qmeta);
    /* A big run's .metadata lists millions of chunks (optimizer state, all
     * the ranks' plans): the value and memo limits grow with the file (every
     * value costs at least one byte of pickle), the defaults being the floor. */
    pk_options opt;
    pk_options_default(&opt);
    opt.extra_classes = dist_classes;
    if (opt.limits.max_values < len)
        opt.limits.max_values = len;
    if (opt.limits.max_memo < len)
        opt.limits.max_memo = len;
    uint64_t expanded;
    if (ckpt_mul_u64(len, 16, &expanded) && opt.limits.max_expanded < expanded)
        opt.limits.max_expanded = expanded;
    const pk_value *root = pk_load(data, len, &opt, c->qmeta, mg_arena(c->st), NULL, err);
    if (root == NULL)
        return err->status != MCRT_OK ? err->status : MCRT_E_DATA;
    char r[128];
    const pk_value *sdm = pk_dict_get(root, "state_dict_metadata");
    if (pk_kind_of(root) != PK_OBJECT || pk_kind_of(sdm) != PK_DICT)
        return ckpt_fail(err, MCRT_E_DATA, "%s: holds %s, not a torch.distributed.checkpoint "
                         "Metadata with a state_dict_metadata dict", c->qmeta,
                         shown(root, r, sizeof r));
    s = index_storage(c, pk_dict_get(root, "storage_data"), err);
    if (s != MCRT_OK)
        return s;
    for (size_t i = 0; i < pk_len(sdm); i++) {
        size_t kl;
        const char *fqn = pk_as_str(pk_dict_key(sdm, i), &kl);
        if (fqn == NULL || kl == 0 || strlen(fqn) != kl)
            return ckpt_fail(err, MCRT_E_DATA, "%s: state_dict_metadata key %zu is %s, not a "
                             "tensor name", c->qmeta, i,
                             shown(pk_dict_key(sdm, i), r, sizeof r));
        s = read_tensor(c, fqn, pk_dict_value(sdm, i), err);
        if (s != MCRT_OK)
            return s;
    }
    return MCRT_OK;
}

/* ---- open ------------------------------------------------------------------- */

mcrt_status mg_open_dist(ckpt *ck, const char *dir, int64_t iteration, bool release,
                         ckpt_err *err)
{
    mcrt_status s = read_config(dir, err);
    if (s != MCRT_OK)
        return s;
    dist_ctx c;
    memset(&c, 0, sizeof c);
    c.ck = ck;
    c.dir = dir;
    c.st = mg_new();
    c.meta_path = ckpt_join(dir, ".metadata");
    if (c.st == NULL || c.meta_path == NULL) {
        s = nomem(err);
        goto fail;
    }
    Q(c.qmeta, c.meta_path);
    s = read_common(&c, iteration, release, err);
    if (s == MCRT_OK)
        s = read_metadata(&c, err);
    if (s == MCRT_OK)
        s = mg_finish(c.st, ck, "torch_dist", err);
    if (s == MCRT_OK)
        c.st = NULL; /* the checkpoint's now */
fail:
    if (c.st != NULL)
        mg_free(c.st);
    free(c.meta_path);
    free(c.refs);
    free(c.files);
    free(c.name);
    return s;
}
