/*
 * core/checkpoint/megatron_torch.c: Megatron-LM's `--load` folders, and
 * the legacy `torch` format (reference §3.1-§3.4; docs/checkpoints.md).
 *
 * A folder is, in the order tried:
 *   - a --load folder: latest_checkpointed_iteration.txt names the
 *     iteration ("1000" -> iter_0001000/, "release" -> release/), or
 *     ckpt_open_ex's step does (Megatron's --ckpt-step);
 *   - an iteration folder: metadata.json (torch_dist, megatron_dist.c) or
 *     mp_rank_TT/ (PP = 1) or mp_rank_TT_PPP/ (PP > 1) shard folders, each
 *     with model_optim_rng.pt.
 * A single torch.save file is one shard of a TP = PP = 1 checkpoint (or a
 * plain state dict).
 *
 * The shards are merged into the TP = 1, PP = 1 view (megatron.h): keys
 * renamed to MCore TE names (local spec and every legacy spelling of §3.3),
 * layer indices made global (each stage's count of layers, so uneven
 * splits need no flag), tensor-parallel pieces placed by §3.4 (vocab rows,
 * column and row splits, swiglu halves, replicated tensors from TP rank 0),
 * legacy query_key_value rows reordered per checkpoint_version (v0
 * [3, np, hn], v1.0 [np, hn, 3] per shard -> [np, 3, hn]).
 */
#include "checkpoint/megatron.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define Q(buf, s) ckpt_quote((buf), sizeof(buf), (s), strlen(s))
#define TRACKER "latest_checkpointed_iteration.txt"
#define SHARD_FILE "model_optim_rng.pt"
#define MAX_TP 1024
#define MAX_PP 1024

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* ---- one shard --------------------------------------------------------------- */

typedef struct shard {
    char *path;
    uint32_t file;
    zip_archive *zip;
    const pk_value *root;  /* the top-level dict */
    const pk_value *model; /* its model dict */
    const pk_value *args;  /* Namespace or NULL */
    int tp, pp;
    int64_t iteration;     /* -1 when it has none */
    double version;        /* checkpoint_version, 0 when absent */
    int64_t layers;        /* decoder layers it holds (max local index + 1) */
} shard;

/* A flattened model key: the dotted path and the value. */
typedef struct flat_item {
    char key[512];
    const pk_value *value;
} flat_item;

typedef struct flat_list {
    flat_item *items;
    size_t n, cap;
} flat_list;

static mcrt_status flatten(const pk_value *d, const char *prefix, flat_list *out, int depth,
                           const char *file, ckpt_err *err)
{
    char q[CKPT_QUOTE_SIZE];
    if (depth > 16)
        return ckpt_fail(err, MCRT_E_DATA, "%s: the model dict nests deeper than 16 levels",
                         Q(q, file));
    for (size_t i = 0; i < pk_len(d); i++) {
        size_t kl = 0;
        const char *k = pk_as_str(pk_dict_key(d, i), &kl);
        if (k == NULL || strlen(k) != kl)
            return ckpt_fail(err, MCRT_E_DATA, "%s: the model dict has a key that is not a "
                             "string (under '%s')", Q(q, file), prefix);
        const pk_value *v = pk_dict_value(d, i);
        char key[512];
        int w = snprintf(key, sizeof key, "%s%s%s", prefix, prefix[0] ? "." : "", k);
        if (w < 0 || (size_t)w >= sizeof key)
            return ckpt_fail(err, MCRT_E_DATA, "%s: model key '%s.%s' is too long", Q(q, file),
                             prefix, k);
        if (pk_kind_of(v) == PK_DICT) {
            mcrt_status s = flatten(v, key, out, depth + 1, file, err);
            if (s != MCRT_OK)
                return s;
            continue;
        }
        if (out->n == out->cap) {
            size_t c = out->cap ? out->cap * 2 : 64;
            flat_item *ni = realloc(out->items, c * sizeof *ni);
            if (ni == NULL)
                return ckpt_fail(err, MCRT_E_NOMEM, "out of memory reading %s", file);
            out->items = ni;
            out->cap = c;
        }
        memcpy(out->items[out->n].key, key, (size_t)w + 1);
        out->items[out->n].value = v;
        out->n++;
    }
    return MCRT_OK;
}

static mcrt_status load_shard(mg_state *st, shard *sh, ckpt_err *err)
{
    char q[CKPT_QUOTE_SIZE];
    const unsigned char *data;
    size_t len;
    mcrt_status s = mg_map(st, sh->path, &sh->file, &data, &len, err);
    if (s != MCRT_OK)
        return s;
    s = mg_zip(st, sh->file, 0, len, sh->path, &sh->zip, err);
    if (s != MCRT_OK)
        return s;
    s = mg_torch_pickle(st, sh->zip, NULL, &sh->root, err);
    if (s != MCRT_OK)
        return s;
    if (pk_kind_of(sh->root) != PK_DICT)
        return ckpt_fail(err, MCRT_E_DATA, "%s: holds %s, expected the dict Megatron saves "
                         "(args, iteration, model, ...)", Q(q, sh->path),
                         pk_kind_name(pk_kind_of(sh->root)));
    sh->model = pk_dict_get(sh->root, "model");
    if (sh->model == NULL && pk_dict_get(sh->root, "model0") != NULL)
        return ckpt_fail(err, MCRT_E_UNSUPPORTED, "%s: holds model0, model1, ... (virtual "
                         "pipeline parallelism), which mcrt does not read yet", Q(q, sh->path));
    if (sh->model == NULL) {
        /* A plain torch.save(state_dict): every value a tensor or a dict. */
        bool plain = pk_len(sh->root) > 0;
        for (size_t i = 0; plain && i < pk_len(sh->root); i++) {
            pk_kind k = pk_kind_of(pk_dict_value(sh->root, i));
            plain = k == PK_TENSOR || k == PK_DICT || k == PK_NONE || k == PK_OBJECT;
        }
        if (!plain)
            return ckpt_fail(err, MCRT_E_DATA, "%s: no 'model' key (expected Megatron's "
                             "checkpoint dict, or a state dict of tensors)", Q(q, sh->path));
        sh->model = sh->root;
    }
    if (pk_kind_of(sh->model) != PK_DICT)
        return ckpt_fail(err, MCRT_E_DATA, "%s: 'model' is %s, expected a dict", Q(q, sh->path),
                         pk_kind_name(pk_kind_of(sh->model)));
    sh->args = pk_dict_get(sh->root, "args");
    if (sh->args != NULL && pk_kind_of(sh->args) != PK_OBJECT)
        sh->args = NULL;
    const pk_value *ver = pk_dict_get(sh->root, "checkpoint_version");
    sh->version = 0;
    if (ver != NULL && pk_kind_of(ver) != PK_NONE && !pk_as_float(ver, &sh->version))
        return ckpt_fail(err, MCRT_E_DATA, "%s: checkpoint_version is %s, expected a number",
                         Q(q, sh->path), pk_kind_name(pk_kind_of(ver)));
    sh->iteration = -1;
    if (!pk_as_int(pk_dict_get(sh->root, "iteration"), &sh->iteration) &&
        !pk_as_int(pk_dict_get(sh->root, "total_iters"), &sh->iteration) &&
        !mg_arg_int(sh->args, "iteration", &sh->iteration))
        sh->iteration = -1;
    return MCRT_OK;
}

/* ---- placing one shard's tensors ---------------------------------------------- */

typedef struct merge {
    mg_state *st;
    int tp, pp;
    bool gated;           /* swiglu fc1 */
    double version;
    int64_t heads;        /* num_attention_heads, for the legacy QKV reorder */
    int64_t *layer_base;  /* per stage: the global index of its local layer 0 */
} merge;

static mcrt_status place(merge *m, const shard *sh, const char *key, const pk_value *v,
                         ckpt_err *err)
{
    char q[CKPT_QUOTE_SIZE], qk[CKPT_QUOTE_SIZE];
    char name[600];
    bool legacy_qkv = false;
    int kind = mg_te_name(key, name, sizeof name, &legacy_qkv);
    if (kind == 0)
        return MCRT_OK; /* _extra_state, inv_freq */
    if (pk_kind_of(v) == PK_NONE)
        return MCRT_OK; /* a module with no such parameter */
    if (pk_kind_of(v) != PK_TENSOR)
        return ckpt_fail(err, MCRT_E_DATA, "%s: model key '%s' is %s, expected a tensor",
                         Q(q, sh->path), Q(qk, key), pk_kind_name(pk_kind_of(v)));
    int64_t layer;
    const char *rest;
    if (mg_layer_name(name, &layer, &rest)) {
        char g[600];
        snprintf(g, sizeof g, "decoder.layers.%" PRId64 ".%s", m->layer_base[sh->pp] + layer,
                 rest);
        snprintf(name, sizeof name, "%s", g);
    }
    mg_split split = mg_split_of(name, m->gated);
    if (split == MG_SPLIT_UNKNOWN) {
        if (m->tp > 1)
            return ckpt_fail(err, MCRT_E_UNSUPPORTED, "%s: model key '%s': mcrt does not know "
                             "how it is split over tensor-parallel ranks (only GPT weights are "
                             "merged)", Q(q, sh->path), Q(qk, key));
        split = MG_REPLICATED;
    }
    if (split == MG_REPLICATED && sh->tp != 0)
        return MCRT_OK; /* the same tensor on every TP rank: rank 0's is used */
    pk_tensor_view view;
    uint32_t entry;
    mcrt_status s = mg_resolve(m->st, v, sh->zip, sh->file, &view, &entry, err);
    if (s != MCRT_OK)
        return s;
    int64_t shape[MG_MAX_DIMS], off[MG_MAX_DIMS] = {0};
    for (int32_t d = 0; d < view.ndim; d++)
        shape[d] = view.shape[d];
    int r = sh->tp, tp = m->tp;
    int32_t need = split == MG_SPLIT_COLS ? 2 : 1;
    if (split != MG_REPLICATED && view.ndim < need)
        return ckpt_fail(err, MCRT_E_DATA, "%s: model key '%s' has %d dimensions, expected at "
                         "least %d", Q(q, sh->path), Q(qk, key), (int)view.ndim, (int)need);
    char where[CKPT_QUOTE_SIZE + 64];
    snprintf(where, sizeof where, "%s", sh->path);
    mg_piece p;
    switch (split) {
    case MG_REPLICATED:
        mg_piece_of_view(&p, &view, off, entry, sh->file);
        return mg_add_piece(m->st, name, view.dtype, view.ndim, shape, &p, where, err);
    case MG_SPLIT_COLS:
        shape[1] = view.shape[1] * tp;
        off[1] = view.shape[1] * r;
        mg_piece_of_view(&p, &view, off, entry, sh->file);
        return mg_add_piece(m->st, name, view.dtype, view.ndim, shape, &p, where, err);
    case MG_SPLIT_GATED_ROWS: {
        int64_t rows = view.shape[0];
        if (rows % 2 != 0)
            return ckpt_fail(err, MCRT_E_DATA, "%s: model key '%s' (swiglu) has %" PRId64
                             " rows, expected an even number ([gate; up])", Q(q, sh->path),
                             Q(qk, key), rows);
        int64_t half = rows / 2, F = half * tp;
        shape[0] = rows * tp;
        for (int h = 0; h < 2; h++) {
            mg_piece_of_view(&p, &view, off, entry, sh->file);
            p.size[0] = half;
            p.off[0] = (int64_t)h * F + half * r;
            p.src = view.data + (size_t)(h * half * view.stride[0]) * view.elem_size;
            s = mg_add_piece(m->st, name, view.dtype, view.ndim, shape, &p, where, err);
            if (s != MCRT_OK)
                return s;
        }
        return MCRT_OK;
    }
    case MG_SPLIT_ROWS:
    default:
        break;
    }
    int64_t rows = view.shape[0];
    shape[0] = rows * tp;
    if (!legacy_qkv || m->version >= 2.0) {
        off[0] = rows * r;
        mg_piece_of_view(&p, &view, off, entry, sh->file);
        return mg_add_piece(m->st, name, view.dtype, view.ndim, shape, &p, where, err);
    }
    /* Legacy query_key_value before version 2: this shard's rows are
     * [3, np/tp, hn] (v0) or [np/tp, hn, 3] (v1.0); MCore wants [np/tp, 3, hn].
     * One piece per (head, q|k|v): hn rows. */
    if (m->heads <= 0 || m->heads % tp != 0)
        return ckpt_fail(err, MCRT_E_DATA, "%s: model key '%s': reordering a version %.1f "
                         "query_key_value needs num_attention_heads in args (divisible by "
                         "TP %d)", Q(q, sh->path), Q(qk, key), m->version, tp);
    int64_t np_l = m->heads / tp;
    if (rows % (3 * np_l) != 0)
        return ckpt_fail(err, MCRT_E_DATA, "%s: model key '%s' has %" PRId64 " rows, not a "
                         "multiple of 3 x %" PRId64 " local heads", Q(q, sh->path), Q(qk, key),
                         rows, np_l);
    int64_t hn = rows / (3 * np_l);
    for (int64_t h = 0; h < np_l; h++)
        for (int64_t a = 0; a < 3; a++) {
            mg_piece_of_view(&p, &view, off, entry, sh->file);
            p.off[0] = rows * r + h * 3 * hn + a * hn;
            p.size[0] = hn;
            int64_t src_row;
            if (m->version < 1.0) { /* [3, np, hn] */
                src_row = a * np_l * hn + h * hn;
            } else { /* [np, hn, 3]: row h*hn*3 + d*3 + a */
                src_row = h * hn * 3 + a;
                p.stride[0] = view.stride[0] * 3;
            }
            p.src = view.data + (size_t)(src_row * view.stride[0]) * view.elem_size;
            s = mg_add_piece(m->st, name, view.dtype, view.ndim, shape, &p, where, err);
            if (s != MCRT_OK)
                return s;
        }
    return MCRT_OK;
}

/* Layers a shard holds: 1 + the largest local index (0 when none). */
static int64_t count_layers(const flat_list *fl)
{
    int64_t n = 0;
    for (size_t i = 0; i < fl->n; i++) {
        char name[600];
        bool lq;
        if (mg_te_name(fl->items[i].key, name, sizeof name, &lq) == 0)
            continue;
        int64_t layer;
        const char *rest;
        if (mg_layer_name(name, &layer, &rest) && layer + 1 > n)
            n = layer + 1;
    }
    return n;
}

/* ---- the shard grid --------------------------------------------------------------- */

/* Parse "mp_rank_TT", "mp_rank_TT_PPP", "mp_rank_TT_PPP_EEE": the number of
 * parts after mp_rank (0 when not such a name). */
static int parse_rank_dir(const char *name, int *tp, int *pp, int *ep)
{
    if (strncmp(name, "mp_rank_", 8) != 0)
        return 0;
    const char *p = name + 8;
    int vals[3], n = 0;
    while (n < 3) {
        if (*p < '0' || *p > '9')
            return 0;
        long v = 0;
        int digits = 0;
        while (*p >= '0' && *p <= '9') {
            v = v * 10 + (*p++ - '0');
            if (++digits > 6)
                return 0;
        }
        vals[n++] = (int)v;
        if (*p == '\0')
            break;
        if (*p != '_')
            return 0;
        p++;
    }
    if (*p != '\0')
        return 0;
    *tp = vals[0];
    *pp = n > 1 ? vals[1] : 0;
    *ep = n > 2 ? vals[2] : 0;
    return n;
}

static mcrt_status list_shards(const char *dir, shard **out, int *tp_out, int *pp_out,
                               ckpt_err *err)
{
    char q[CKPT_QUOTE_SIZE];
    DIR *d = opendir(dir);
    if (d == NULL)
        return ckpt_fail(err, errno == ENOENT ? MCRT_E_NOTFOUND : MCRT_E_IO,
                         "%s: cannot list the folder: %s", Q(q, dir), strerror(errno));
    int max_tp = -1, max_pp = -1, style = 0, count = 0;
    bool *grid = calloc((size_t)MAX_TP * MAX_PP, sizeof *grid);
    if (grid == NULL) {
        closedir(d);
        return ckpt_fail(err, MCRT_E_NOMEM, "out of memory listing %s", dir);
    }
    mcrt_status s = MCRT_OK;
    struct dirent *e;
    while (s == MCRT_OK && (e = readdir(d)) != NULL) {
        int t, p, x;
        int n = parse_rank_dir(e->d_name, &t, &p, &x);
        if (n == 0)
            continue;
        if (n == 3)
            s = ckpt_fail(err, MCRT_E_UNSUPPORTED, "%s/%s: an expert-parallel shard, which "
                          "mcrt does not read yet", Q(q, dir), e->d_name);
        else if (style != 0 && style != n)
            s = ckpt_fail(err, MCRT_E_DATA, "%s: mixes mp_rank_TT and mp_rank_TT_PPP shard "
                          "folders (%s)", Q(q, dir), e->d_name);
        else if (t >= MAX_TP || p >= MAX_PP)
            s = ckpt_fail(err, MCRT_E_UNSUPPORTED, "%s/%s: more than %d ranks", Q(q, dir),
                          e->d_name, MAX_TP);
        if (s != MCRT_OK)
            break;
        style = n;
        grid[(size_t)t * MAX_PP + (size_t)p] = true;
        if (t > max_tp)
            max_tp = t;
        if (p > max_pp)
            max_pp = p;
        count++;
    }
    closedir(d);
    if (s == MCRT_OK && count == 0)
        s = ckpt_fail(err, MCRT_E_NOTFOUND, "%s: no shard folders (mp_rank_TT or "
                      "mp_rank_TT_PPP)", Q(q, dir));
    int tp = max_tp + 1, pp = max_pp + 1;
    shard *sh = NULL;
    if (s == MCRT_OK) {
        sh = calloc((size_t)tp * (size_t)pp, sizeof *sh);
        if (sh == NULL)
            s = ckpt_fail(err, MCRT_E_NOMEM, "out of memory listing %s", dir);
    }
    for (int p = 0; s == MCRT_OK && p < pp; p++)
        for (int t = 0; s == MCRT_OK && t < tp; t++) {
            char sub[64];
            if (style == 1)
                snprintf(sub, sizeof sub, "mp_rank_%02d", t);
            else
                snprintf(sub, sizeof sub, "mp_rank_%02d_%03d", t, p);
            shard *x = &sh[(size_t)p * (size_t)tp + (size_t)t];
            x->tp = t;
            x->pp = p;
            char *sd = ckpt_join(dir, sub);
            x->path = sd != NULL ? ckpt_join(sd, SHARD_FILE) : NULL;
            free(sd);
            if (x->path == NULL) {
                s = ckpt_fail(err, MCRT_E_NOMEM, "out of memory listing %s", dir);
                break;
            }
            if (!grid[(size_t)t * MAX_PP + (size_t)p])
                s = ckpt_fail(err, MCRT_E_NOTFOUND, "%s: no shard folder %s (the others make "
                              "a TP %d x PP %d grid)", Q(q, dir), sub, tp, pp);
            else if (!is_file(x->path))
                s = ckpt_fail(err, MCRT_E_NOTFOUND, "%s: no such file", Q(q, x->path));
        }
    free(grid);
    if (s != MCRT_OK) {
        if (sh != NULL)
            for (int i = 0; i < tp * pp; i++)
                free(sh[i].path);
        free(sh);
        return s;
    }
    *out = sh;
    *tp_out = tp;
    *pp_out = pp;
    return MCRT_OK;
}

/* ---- merging ------------------------------------------------------------------------ */

static mcrt_status merge_shards(ckpt *ck, mg_state *st, shard *sh, int tp, int pp,
                                const char *where, ckpt_err *err)
{
    char q[CKPT_QUOTE_SIZE], q2[CKPT_QUOTE_SIZE];
    int n = tp * pp;
    mcrt_status s = MCRT_OK;
    for (int i = 0; i < n && s == MCRT_OK; i++)
        s = load_shard(st, &sh[i], err);
    if (s != MCRT_OK)
        return s;
    const shard *first = &sh[0];
    for (int i = 1; i < n; i++) {
        if (sh[i].iteration != first->iteration)
            return ckpt_fail(err, MCRT_E_DATA, "shards of different iterations: %s is at "
                             "iteration %" PRId64 ", %s at %" PRId64, Q(q, first->path),
                             first->iteration, Q(q2, sh[i].path), sh[i].iteration);
        if (sh[i].version != first->version)
            return ckpt_fail(err, MCRT_E_DATA, "shards of different checkpoint versions: %s "
                             "is %.1f, %s is %.1f", Q(q, first->path), first->version,
                             Q(q2, sh[i].path), sh[i].version);
    }
    const pk_value *args = first->args;
    int64_t a_tp = 0, a_pp = 0;
    if (mg_arg_int(args, "tensor_model_parallel_size", &a_tp) ||
        mg_arg_int(args, "model_parallel_size", &a_tp)) {
        if (a_tp != tp)
            return ckpt_fail(err, MCRT_E_DATA, "%s: args say tensor_model_parallel_size %" PRId64
                             ", but %s has %d tensor-parallel shard%s", Q(q, first->path), a_tp,
                             Q(q2, where), tp, tp == 1 ? "" : "s");
    }
    if (mg_arg_int(args, "pipeline_model_parallel_size", &a_pp) && a_pp != pp)
        return ckpt_fail(err, MCRT_E_DATA, "%s: args say pipeline_model_parallel_size %" PRId64
                         ", but %s has %d pipeline stage%s", Q(q, first->path), a_pp,
                         Q(q2, where), pp, pp == 1 ? "" : "s");
    /* Flatten every shard; count each stage's layers. */
    flat_list *fl = calloc((size_t)n, sizeof *fl);
    int64_t *base = calloc((size_t)pp + 1, sizeof *base);
    if (fl == NULL || base == NULL) {
        free(fl);
        free(base);
        return ckpt_fail(err, MCRT_E_NOMEM, "out of memory reading %s", where);
    }
    for (int i = 0; i < n && s == MCRT_OK; i++)
        s = flatten(sh[i].model, "", &fl[i], 0, sh[i].path, err);
    for (int i = 0; i < n && s == MCRT_OK; i++) {
        sh[i].layers = count_layers(&fl[i]);
        const shard *r0 = &sh[(size_t)sh[i].pp * (size_t)tp];
        if (sh[i].layers != r0->layers)
            s = ckpt_fail(err, MCRT_E_DATA, "%s holds %" PRId64 " layers, but %s of the same "
                          "pipeline stage holds %" PRId64, Q(q, sh[i].path), sh[i].layers,
                          Q(q2, r0->path), r0->layers);
    }
    for (int p = 0; s == MCRT_OK && p < pp; p++)
        base[p + 1] = base[p] + sh[(size_t)p * (size_t)tp].layers;
    int64_t a_layers;
    if (s == MCRT_OK && mg_arg_int(args, "num_layers", &a_layers) && a_layers != base[pp])
        s = ckpt_fail(err, MCRT_E_DATA, "%s: the shards hold %" PRId64 " layers, but args say "
                      "num_layers %" PRId64, Q(q, where), base[pp], a_layers);
    merge m = {.st = st, .tp = tp, .pp = pp, .version = first->version, .layer_base = base};
    bool sw = false;
    m.gated = mg_arg_bool(args, "swiglu", &sw) && sw;
    if (!mg_arg_int(args, "num_attention_heads", &m.heads))
        m.heads = 0;
    for (int i = 0; i < n && s == MCRT_OK; i++)
        for (size_t k = 0; k < fl[i].n && s == MCRT_OK; k++)
            s = place(&m, &sh[i], fl[i].items[k].key, fl[i].items[k].value, err);
    for (int i = 0; i < n; i++)
        free(fl[i].items);
    free(fl);
    if (s == MCRT_OK && args != NULL) {
        char src[CKPT_QUOTE_SIZE + 16];
        snprintf(src, sizeof src, "%s: args", first->path);
        s = mg_add_args(ck, args, src, err);
    }
    if (s == MCRT_OK)
        s = mg_meta(ck, "format", err, "torch");
    if (s == MCRT_OK && first->iteration >= 0)
        s = mg_meta(ck, "iteration", err, "%" PRId64, first->iteration);
    if (s == MCRT_OK)
        s = mg_meta(ck, "checkpoint_version", err, "%.1f", first->version);
    if (s == MCRT_OK)
        s = mg_meta(ck, "tensor_model_parallel_size", err, "%d", tp);
    if (s == MCRT_OK)
        s = mg_meta(ck, "pipeline_model_parallel_size", err, "%d", pp);
    if (s == MCRT_OK) {
        char lps[256] = "";
        size_t o = 0;
        for (int p = 0; p < pp && o < sizeof lps; p++) {
            int w = snprintf(lps + o, sizeof lps - o, "%s%" PRId64, p ? "," : "",
                             base[p + 1] - base[p]);
            if (w < 0)
                break;
            o += (size_t)w;
        }
        s = mg_meta(ck, "layers_per_stage", err, "%s", lps);
    }
    free(base);
    return s;
}

static mcrt_status open_shards(ckpt *ck, shard *sh, int tp, int pp, const char *where,
                               ckpt_err *err)
{
    mg_state *st = mg_new();
    mcrt_status s = st == NULL ? ckpt_fail(err, MCRT_E_NOMEM, "out of memory reading %s", where)
                               : merge_shards(ck, st, sh, tp, pp, where, err);
    if (s == MCRT_OK)
        s = mg_finish(st, ck, "torch", err);
    else
        mg_free(st);
    for (int i = 0; i < tp * pp; i++)
        free(sh[i].path);
    free(sh);
    return s;
}

/* ---- the --load folder ---------------------------------------------------------------- */

/* The iteration folder the tracker (or the step) names. */
static mcrt_status resolve_iteration(const ckpt *ck, const char *dir, char **iter_dir,
                                     int64_t *iteration, bool *release, ckpt_err *err)
{
    char q[CKPT_QUOTE_SIZE];
    int64_t step;
    char sub[32];
    *iteration = -1;
    *release = false;
    char *tracker = ckpt_join(dir, TRACKER);
    if (tracker == NULL)
        return ckpt_fail(err, MCRT_E_NOMEM, "out of memory");
    if (ckpt_requested_step(ck, &step)) {
        snprintf(sub, sizeof sub, "iter_%07" PRId64, step);
        *iteration = step;
    } else if (is_file(tracker)) {
        FILE *f = fopen(tracker, "rb");
        char text[80] = "";
        size_t n = f != NULL ? fread(text, 1, sizeof text - 1, f) : 0;
        if (f != NULL)
            fclose(f);
        if (f == NULL) {
            mcrt_status s = ckpt_fail(err, MCRT_E_IO, "%s: cannot read it: %s", Q(q, tracker),
                                      strerror(errno));
            free(tracker);
            return s;
        }
        text[n] = '\0';
        size_t a = 0, b = n;
        while (a < b && (text[a] == ' ' || text[a] == '\n' || text[a] == '\r' || text[a] == '\t'))
            a++;
        while (b > a && (text[b - 1] == ' ' || text[b - 1] == '\n' || text[b - 1] == '\r' ||
                         text[b - 1] == '\t'))
            b--;
        text[b] = '\0';
        const char *t = text + a;
        char *end = NULL;
        errno = 0;
        long long v = strtoll(t, &end, 10);
        if (strcmp(t, "release") == 0) {
            snprintf(sub, sizeof sub, "release");
            *release = true;
        } else if (t[0] >= '0' && t[0] <= '9' && end != NULL && *end == '\0' && errno == 0 &&
                   v <= 9999999999LL) {
            snprintf(sub, sizeof sub, "iter_%07lld", v);
            *iteration = v;
        } else {
            char qt[CKPT_QUOTE_SIZE];
            mcrt_status s = ckpt_fail(err, MCRT_E_DATA, "%s: says '%s', expected an iteration "
                                      "number or 'release'", Q(q, tracker),
                                      ckpt_quote(qt, sizeof qt, t, strlen(t)));
            free(tracker);
            return s;
        }
    } else {
        free(tracker);
        *iter_dir = strdup(dir); /* already an iteration folder */
        return *iter_dir != NULL ? MCRT_OK : ckpt_fail(err, MCRT_E_NOMEM, "out of memory");
    }
    free(tracker);
    *iter_dir = ckpt_join(dir, sub);
    if (*iter_dir == NULL)
        return ckpt_fail(err, MCRT_E_NOMEM, "out of memory");
    if (!is_dir(*iter_dir)) {
        char qi[CKPT_QUOTE_SIZE];
        mcrt_status s = ckpt_fail(err, MCRT_E_NOTFOUND, "%s: %s iteration folder %s does not "
                                  "exist", Q(q, dir),
                                  ckpt_requested_step(ck, NULL) ? "the requested (--ckpt-step)"
                                                                : "the tracker's",
                                  Q(qi, sub));
        free(*iter_dir);
        *iter_dir = NULL;
        return s;
    }
    return MCRT_OK;
}

static mcrt_status megatron_open(ckpt *ck, const char *entry, ckpt_err *err)
{
    (void)entry; /* the folder is the path given */
    const char *dir = ckpt_path(ck);
    char *iter_dir = NULL;
    int64_t iteration;
    bool release;
    mcrt_status s = resolve_iteration(ck, dir, &iter_dir, &iteration, &release, err);
    if (s != MCRT_OK)
        return s;
    char *meta = ckpt_join(iter_dir, "metadata.json");
    if (meta == NULL) {
        free(iter_dir);
        return ckpt_fail(err, MCRT_E_NOMEM, "out of memory");
    }
    bool dist = is_file(meta);
    free(meta);
    if (dist) {
        s = mg_open_dist(ck, iter_dir, iteration, release, err);
        free(iter_dir);
        return s;
    }
    shard *sh = NULL;
    int tp = 0, pp = 0;
    s = list_shards(iter_dir, &sh, &tp, &pp, err);
    if (s == MCRT_OK)
        s = open_shards(ck, sh, tp, pp, iter_dir, err);
    if (s == MCRT_OK && release)
        s = mg_meta(ck, "release", err, "true");
    free(iter_dir);
    return s;
}

static bool no_file_match(const char *path, const unsigned char *head, size_t n)
{
    (void)path;
    (void)head;
    (void)n;
    return false;
}

static const char *const megatron_entries[] = {
    TRACKER, "metadata.json", "mp_rank_00/" SHARD_FILE, "mp_rank_00_000/" SHARD_FILE, NULL,
};

const ckpt_format ckpt_format_megatron = {
    .name = "megatron",
    .match_file = no_file_match,
    .folder_entries = megatron_entries,
    .open = megatron_open,
};

/* ---- a single torch.save file ------------------------------------------------------------ */

static bool zip_match(const char *path, const unsigned char *head, size_t n)
{
    (void)path;
    return n >= 4 && memcmp(head, "PK\003\004", 4) == 0;
}

static mcrt_status torch_file_open(ckpt *ck, const char *path, ckpt_err *err)
{
    shard *sh = calloc(1, sizeof *sh);
    if (sh == NULL || (sh->path = strdup(path)) == NULL) {
        free(sh);
        return ckpt_fail(err, MCRT_E_NOMEM, "out of memory");
    }
    return open_shards(ck, sh, 1, 1, path, err);
}

const ckpt_format ckpt_format_torch_file = {
    .name = "torch",
    .match_file = zip_match,
    .folder_entries = NULL,
    .open = torch_file_open,
};
