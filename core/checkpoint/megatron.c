/*
 * core/checkpoint/megatron.c: what the Megatron formats share (megatron.h):
 * mapped files, assembled tensors and their reads, MCore names and merge
 * rules, the args Namespace.
 */
#include "checkpoint/megatron.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "mcrt/config.h" /* MCRT_CFG_* */

#define Q(buf, s) ckpt_quote((buf), sizeof(buf), (s), strlen(s))

typedef struct mg_file {
    char *path;
    const unsigned char *map;
    size_t size;
} mg_file;

typedef struct mg_entry_slot {
    const zip_archive *zip;
    const zip_entry *entry;
    uint32_t file;
    atomic_int state; /* 0 unchecked, 1 CRC good, 2 CRC bad */
} mg_entry_slot;

typedef struct mg_tensor {
    char *name;
    int32_t dtype;
    int32_t ndim;
    int64_t shape[MG_MAX_DIMS];
    uint64_t nelem;
    mg_piece *pieces;
    size_t n_pieces, cap;
    atomic_size_t last; /* hint: the piece the previous run came from */
} mg_tensor;

struct mg_state {
    mg_file *files;
    size_t n_files, files_cap;
    zip_archive **zips;
    size_t n_zips, zips_cap;
    mg_entry_slot *entries;
    size_t n_entries, entries_cap;
    uint32_t *entry_hash; /* open addressing over entries by entry pointer: index + 1 */
    size_t entry_hash_cap;
    mg_tensor *tensors;
    size_t n_tensors, tensors_cap;
    size_t *hash; /* open addressing over tensors: index + 1, 0 empty */
    size_t hash_cap;
    pk_arena *arena;
};

static bool grow(void **buf, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap : 8;
    while (c < need) {
        if (c > SIZE_MAX / 2 / elem)
            return false;
        c *= 2;
    }
    void *nb = realloc(*buf, c * elem);
    if (nb == NULL)
        return false;
    *buf = nb;
    *cap = c;
    return true;
}

mg_state *mg_new(void)
{
    mg_state *st = calloc(1, sizeof *st);
    if (st == NULL)
        return NULL;
    st->arena = pk_arena_new();
    if (st->arena == NULL) {
        free(st);
        return NULL;
    }
    return st;
}

void mg_free(mg_state *st)
{
    if (st == NULL)
        return;
    for (size_t i = 0; i < st->n_zips; i++)
        zip_close(st->zips[i]);
    free(st->zips);
    for (size_t i = 0; i < st->n_files; i++) {
        if (st->files[i].map != NULL)
            munmap((void *)st->files[i].map, st->files[i].size);
        free(st->files[i].path);
    }
    free(st->files);
    free(st->entries);
    free(st->entry_hash);
    for (size_t i = 0; i < st->n_tensors; i++) {
        free(st->tensors[i].name);
        free(st->tensors[i].pieces);
    }
    free(st->tensors);
    free(st->hash);
    pk_arena_free(st->arena);
    free(st);
}

pk_arena *mg_arena(mg_state *st)
{
    return st->arena;
}

mcrt_status mg_map(mg_state *st, const char *path, uint32_t *file, const unsigned char **data,
                   size_t *len, ckpt_err *err)
{
    if (!grow((void **)&st->files, &st->files_cap, st->n_files + 1, sizeof *st->files) ||
        st->n_files >= UINT32_MAX - 1)
        return ckpt_fail(err, MCRT_E_NOMEM, "out of memory mapping %s", path);
    mg_file *f = &st->files[st->n_files];
    memset(f, 0, sizeof *f);
    f->path = strdup(path);
    if (f->path == NULL)
        return ckpt_fail(err, MCRT_E_NOMEM, "out of memory mapping %s", path);
    mcrt_status s = ckpt_map_file(path, &f->map, &f->size, err);
    if (s != MCRT_OK) {
        free(f->path);
        return s;
    }
    *file = (uint32_t)st->n_files++;
    if (data != NULL)
        *data = f->map;
    if (len != NULL)
        *len = f->size;
    return MCRT_OK;
}

const char *mg_file_path(const mg_state *st, uint32_t file)
{
    return file < st->n_files ? st->files[file].path : "?";
}

mcrt_status mg_zip(mg_state *st, uint32_t file, uint64_t off, uint64_t len, const char *label,
                   zip_archive **out, ckpt_err *err)
{
    *out = NULL;
    if (file >= st->n_files)
        return ckpt_fail(err, MCRT_E_INTERNAL, "mg_zip: no file %u", (unsigned)file);
    const mg_file *f = &st->files[file];
    uint64_t end;
    if (!ckpt_add_u64(off, len, &end) || end > f->size) {
        char q[CKPT_QUOTE_SIZE];
        return ckpt_fail(err, MCRT_E_DATA,
                         "%s: bytes [%" PRIu64 ", +%" PRIu64 ") lie past its end (%zu bytes)",
                         Q(q, f->path), off, len, f->size);
    }
    if (!grow((void **)&st->zips, &st->zips_cap, st->n_zips + 1, sizeof *st->zips))
        return ckpt_fail(err, MCRT_E_NOMEM, "out of memory opening %s", label);
    zip_archive *z = NULL;
    mcrt_status s = zip_open(f->map + off, (size_t)len, label, &z, err);
    if (s != MCRT_OK)
        return s;
    st->zips[st->n_zips++] = z;
    *out = z;
    return MCRT_OK;
}

mcrt_status mg_torch_pickle(mg_state *st, const zip_archive *z, const char *const *extra_classes,
                            const pk_value **root, ckpt_err *err)
{
    *root = NULL;
    const zip_entry *e = NULL;
    mcrt_status s = zip_torch_record(z, "data.pkl", &e, err);
    if (s != MCRT_OK)
        return s;
    s = zip_verify(z, e, err);
    if (s != MCRT_OK)
        return s;
    char label[CKPT_QUOTE_SIZE + 32];
    snprintf(label, sizeof label, "%s: %s", zip_label(z), e->name);
    pk_options opt;
    pk_options_default(&opt);
    opt.extra_classes = extra_classes;
    const pk_value *v = pk_load(e->data, (size_t)e->size, &opt, label, st->arena, NULL, err);
    if (v == NULL)
        return err != NULL && err->status != MCRT_OK ? err->status : MCRT_E_DATA;
    *root = v;
    return MCRT_OK;
}

static size_t ptr_hash(const void *p, size_t mask)
{
    uint64_t x = (uint64_t)(uintptr_t)p;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    return (size_t)x & mask;
}

uint32_t mg_entry(mg_state *st, const zip_archive *z, const zip_entry *e, uint32_t file)
{
    if (st->entry_hash_cap != 0) {
        size_t mask = st->entry_hash_cap - 1;
        for (size_t i = ptr_hash(e, mask);; i = (i + 1) & mask) {
            uint32_t v = st->entry_hash[i];
            if (v == 0)
                break;
            if (st->entries[v - 1].entry == e)
                return v - 1;
        }
    }
    if (st->n_entries >= UINT32_MAX - 2 ||
        !grow((void **)&st->entries, &st->entries_cap, st->n_entries + 1, sizeof *st->entries))
        return MG_NO_ENTRY;
    if ((st->n_entries + 1) * 2 > st->entry_hash_cap) { /* rehash at half full */
        size_t cap = st->entry_hash_cap ? st->entry_hash_cap * 2 : 64;
        uint32_t *h = calloc(cap, sizeof *h);
        if (h == NULL)
            return MG_NO_ENTRY;
        for (size_t k = 0; k < st->n_entries; k++) {
            size_t i = ptr_hash(st->entries[k].entry, cap - 1);
            while (h[i] != 0)
                i = (i + 1) & (cap - 1);
            h[i] = (uint32_t)k + 1;
        }
        free(st->entry_hash);
        st->entry_hash = h;
        st->entry_hash_cap = cap;
    }
    mg_entry_slot *s = &st->entries[st->n_entries];
    s->zip = z;
    s->entry = e;
    s->file = file;
    atomic_init(&s->state, 0);
    size_t i = ptr_hash(e, st->entry_hash_cap - 1);
    while (st->entry_hash[i] != 0)
        i = (i + 1) & (st->entry_hash_cap - 1);
    st->entry_hash[i] = (uint32_t)st->n_entries + 1;
    return (uint32_t)st->n_entries++;
}

/* ---- the tensor table ----------------------------------------------------- */

static uint64_t hash_name(const char *s)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static mg_tensor *find_tensor(const mg_state *st, const char *name)
{
    if (st->hash_cap == 0)
        return NULL;
    size_t mask = st->hash_cap - 1;
    for (size_t i = (size_t)hash_name(name) & mask;; i = (i + 1) & mask) {
        size_t v = st->hash[i];
        if (v == 0)
            return NULL;
        if (strcmp(st->tensors[v - 1].name, name) == 0)
            return &st->tensors[v - 1];
    }
}

static bool hash_insert(mg_state *st, size_t index)
{
    if ((st->n_tensors + 1) * 2 > st->hash_cap) {
        size_t cap = st->hash_cap ? st->hash_cap * 2 : 64;
        size_t *h = calloc(cap, sizeof *h);
        if (h == NULL)
            return false;
        free(st->hash);
        st->hash = h;
        st->hash_cap = cap;
        for (size_t t = 0; t < st->n_tensors; t++) /* index is n_tensors: not yet counted */
            if (t != index) {
                size_t i = (size_t)hash_name(st->tensors[t].name) & (cap - 1);
                while (h[i] != 0)
                    i = (i + 1) & (cap - 1);
                h[i] = t + 1;
            }
    }
    size_t mask = st->hash_cap - 1;
    size_t i = (size_t)hash_name(st->tensors[index].name) & mask;
    while (st->hash[i] != 0)
        i = (i + 1) & mask;
    st->hash[i] = index + 1;
    return true;
}

mcrt_status mg_add_piece(mg_state *st, const char *name, int32_t dtype, int32_t ndim,
                         const int64_t *shape, const mg_piece *p, const char *where,
                         ckpt_err *err)
{
    char qn[CKPT_QUOTE_SIZE], qw[CKPT_QUOTE_SIZE];
    if (ndim < 0 || ndim > MG_MAX_DIMS)
        return ckpt_fail(err, MCRT_E_UNSUPPORTED, "%s: tensor '%s' has %d dimensions (at most "
                         "%d are read)", Q(qw, where), Q(qn, name), (int)ndim, MG_MAX_DIMS);
    mg_tensor *t = find_tensor(st, name);
    if (t == NULL) {
        uint64_t nelem = 1;
        for (int32_t d = 0; d < ndim; d++)
            if (shape[d] < 0 || !ckpt_mul_u64(nelem, (uint64_t)shape[d], &nelem) ||
                nelem > (UINT64_C(1) << 48))
                return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s' has an impossible shape",
                                 Q(qw, where), Q(qn, name));
        if (!grow((void **)&st->tensors, &st->tensors_cap, st->n_tensors + 1,
                  sizeof *st->tensors))
            return ckpt_fail(err, MCRT_E_NOMEM, "out of memory reading %s", where);
        t = &st->tensors[st->n_tensors];
        memset(t, 0, sizeof *t);
        t->name = strdup(name);
        if (t->name == NULL || !hash_insert(st, st->n_tensors)) {
            free(t->name);
            return ckpt_fail(err, MCRT_E_NOMEM, "out of memory reading %s", where);
        }
        st->n_tensors++;
        t->dtype = dtype;
        t->ndim = ndim;
        for (int32_t d = 0; d < ndim; d++)
            t->shape[d] = shape[d];
        t->nelem = nelem;
    } else {
        bool same = t->dtype == dtype && t->ndim == ndim;
        for (int32_t d = 0; same && d < ndim; d++)
            same = t->shape[d] == shape[d];
        if (!same) {
            char a[160], b[160];
            ckpt_ints_text(a, sizeof a, t->shape, t->ndim, 0);
            ckpt_ints_text(b, sizeof b, shape, ndim, 0);
            const char *first = t->n_pieces ? mg_file_path(st, t->pieces[0].file) : "?";
            char qf[CKPT_QUOTE_SIZE];
            return ckpt_fail(err, MCRT_E_DATA,
                             "tensor '%s': %s makes it %s %s, but %s made it %s %s", Q(qn, name),
                             Q(qw, where), ckpt_dtype_name(dtype), b, Q(qf, first),
                             ckpt_dtype_name(t->dtype), a);
        }
    }
    if (!grow((void **)&t->pieces, &t->cap, t->n_pieces + 1, sizeof *t->pieces))
        return ckpt_fail(err, MCRT_E_NOMEM, "out of memory reading %s", where);
    t->pieces[t->n_pieces++] = *p;
    return MCRT_OK;
}

void mg_piece_of_view(mg_piece *p, const pk_tensor_view *v, const int64_t *off, uint32_t entry,
                      uint32_t file)
{
    memset(p, 0, sizeof *p);
    for (int32_t d = 0; d < v->ndim && d < MG_MAX_DIMS; d++) {
        p->off[d] = off != NULL ? off[d] : 0;
        p->size[d] = v->shape[d];
        p->stride[d] = v->stride[d];
    }
    p->src = v->data;
    p->entry = entry;
    p->file = file;
}

mcrt_status mg_resolve(mg_state *st, const pk_value *t, const zip_archive *z, uint32_t file,
                       pk_tensor_view *view, uint32_t *entry, ckpt_err *err)
{
    mcrt_status s = pk_tensor_resolve(t, z, view, err);
    if (s != MCRT_OK)
        return s;
    if (view->ndim > MG_MAX_DIMS)
        return ckpt_fail(err, MCRT_E_UNSUPPORTED, "%s: a tensor of %d dimensions", zip_label(z),
                         (int)view->ndim);
    *entry = mg_entry(st, z, view->entry, file);
    if (*entry == MG_NO_ENTRY)
        return ckpt_fail(err, MCRT_E_NOMEM, "out of memory reading %s", zip_label(z));
    return MCRT_OK;
}

bool mg_has(const mg_state *st, const char *name, int32_t *ndim, int64_t *shape)
{
    const mg_tensor *t = find_tensor(st, name);
    if (t == NULL)
        return false;
    if (ndim != NULL)
        *ndim = t->ndim;
    if (shape != NULL)
        for (int32_t d = 0; d < t->ndim; d++)
            shape[d] = t->shape[d];
    return true;
}

/* ---- checks and the backend ----------------------------------------------- */

static bool pieces_overlap(const mg_piece *a, const mg_piece *b, int32_t ndim)
{
    for (int32_t d = 0; d < ndim; d++)
        if (a->off[d] + a->size[d] <= b->off[d] || b->off[d] + b->size[d] <= a->off[d])
            return false;
    return true;
}

static void piece_text(char *buf, size_t size, const mg_piece *p, int32_t ndim)
{
    size_t o = 0;
    for (int32_t d = 0; d < ndim && o < size; d++) {
        int w = snprintf(buf + o, size - o, "%s%" PRId64 ":%" PRId64, d ? ", " : "[", p->off[d],
                         p->off[d] + p->size[d]);
        if (w < 0)
            break;
        o += (size_t)w;
    }
    if (o < size)
        snprintf(buf + o, size - o, "%s", ndim ? "]" : "[]");
}

/* Most pieces one tensor may have (each pair is checked for overlaps; real
 * layouts have a few per TP rank: 3 x heads for a legacy v0 QKV). */
#define MG_PAIRWISE_MAX 4096

static mcrt_status check_tensor(const mg_state *st, const mg_tensor *t, ckpt_err *err)
{
    char qn[CKPT_QUOTE_SIZE], qf[CKPT_QUOTE_SIZE], a[200], b[200];
    uint64_t covered = 0;
    uint32_t es = mcrt_dtype_size(t->dtype);
    for (size_t i = 0; i < t->n_pieces; i++) {
        const mg_piece *p = &t->pieces[i];
        uint64_t vol = 1;
        for (int32_t d = 0; d < t->ndim; d++) {
            if (p->off[d] < 0 || p->size[d] < 0 || p->off[d] > t->shape[d] ||
                p->size[d] > t->shape[d] - p->off[d] || p->stride[d] < 0) {
                piece_text(a, sizeof a, p, t->ndim);
                ckpt_ints_text(b, sizeof b, t->shape, t->ndim, 0);
                return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': a piece at %s lies outside "
                                 "its shape %s", Q(qf, mg_file_path(st, p->file)),
                                 Q(qn, t->name), a, b);
            }
            vol *= (uint64_t)p->size[d];
        }
        covered += vol;
        if (covered > t->nelem)
            break;
    }
    (void)es;
    if (t->n_pieces > MG_PAIRWISE_MAX)
        return ckpt_fail(err, MCRT_E_UNSUPPORTED, "tensor '%s' comes in %zu pieces (from %s, "
                         "...); mcrt reads at most %d", Q(qn, t->name), t->n_pieces,
                         Q(qf, mg_file_path(st, t->pieces[0].file)), MG_PAIRWISE_MAX);
    for (size_t i = 0; i < t->n_pieces; i++)
            for (size_t j = i + 1; j < t->n_pieces; j++) {
                const mg_piece *p = &t->pieces[i], *q = &t->pieces[j];
                uint64_t vp = 1, vq = 1;
                for (int32_t d = 0; d < t->ndim; d++) {
                    vp *= (uint64_t)p->size[d];
                    vq *= (uint64_t)q->size[d];
                }
                if (vp == 0 || vq == 0 || !pieces_overlap(p, q, t->ndim))
                    continue;
                piece_text(a, sizeof a, p, t->ndim);
                piece_text(b, sizeof b, q, t->ndim);
                char qg[CKPT_QUOTE_SIZE];
                return ckpt_fail(err, MCRT_E_DATA, "tensor '%s': %s (from %s) and %s (from %s) "
                                 "overlap: the same elements are stored twice", Q(qn, t->name),
                                 a, Q(qf, mg_file_path(st, p->file)), b,
                                 Q(qg, mg_file_path(st, q->file)));
            }
    if (covered != t->nelem) {
        ckpt_ints_text(b, sizeof b, t->shape, t->ndim, 0);
        return ckpt_fail(err, MCRT_E_DATA, "tensor '%s' %s: its shards hold %" PRIu64 " of its %"
                         PRIu64 " elements (a shard is missing or repeated)", Q(qn, t->name), b,
                         covered, t->nelem);
    }
    return MCRT_OK;
}

static void mg_close(void *state)
{
    mg_free(state);
}

static const char *mg_backend_file_path(const void *state, uint32_t file)
{
    return mg_file_path(state, file);
}

/* Check entry `ei`'s CRC once (the first read that touches it). */
static mcrt_status verify_entry(const mg_state *st, uint32_t ei, ckpt_err *err)
{
    if (ei == MG_NO_ENTRY || ei >= st->n_entries)
        return MCRT_OK;
    mg_entry_slot *s = &st->entries[ei];
    int state = atomic_load(&s->state);
    if (state == 1)
        return MCRT_OK;
    mcrt_status r = zip_verify(s->zip, s->entry, err);
    atomic_store(&s->state, r == MCRT_OK ? 1 : 2);
    return r;
}

static mcrt_status mg_read_bytes(const void *state, const ckpt_tensor *ct, uint64_t off, size_t n,
                                 void *dst, ckpt_err *err)
{
    const mg_state *st = state;
    if (ct->offset >= st->n_tensors)
        return ckpt_fail(err, MCRT_E_INTERNAL, "checkpoint: no assembled tensor %" PRIu64,
                         ct->offset);
    mg_tensor *t = &st->tensors[ct->offset];
    uint32_t es = mcrt_dtype_size(t->dtype);
    if (es == 0 || off % es != 0 || n % es != 0)
        return ckpt_fail(err, MCRT_E_INTERNAL, "tensor '%s': a read of bytes [%" PRIu64 ", +%zu) "
                         "that is not whole elements", t->name, off, n);
    uint64_t e = off / es, count = n / es;
    unsigned char *o = dst;
    int32_t nd = t->ndim;
    while (count > 0) {
        int64_t idx[MG_MAX_DIMS];
        uint64_t r = e;
        for (int32_t d = nd - 1; d >= 0; d--) {
            idx[d] = (int64_t)(r % (uint64_t)t->shape[d]);
            r /= (uint64_t)t->shape[d];
        }
        const mg_piece *p = NULL;
        size_t hint = atomic_load_explicit(&t->last, memory_order_relaxed);
        if (hint >= t->n_pieces)
            hint = 0;
        for (size_t k = 0; k < t->n_pieces; k++) {
            size_t i = (hint + k) % t->n_pieces;
            const mg_piece *c = &t->pieces[i];
            bool in = true;
            for (int32_t d = 0; in && d < nd; d++)
                in = idx[d] >= c->off[d] && idx[d] < c->off[d] + c->size[d];
            if (in) {
                p = c;
                atomic_store_explicit(&t->last, i, memory_order_relaxed);
                break;
            }
        }
        if (p == NULL)
            return ckpt_fail(err, MCRT_E_INTERNAL, "tensor '%s': element %" PRIu64
                             " is in no piece", t->name, e);
        mcrt_status s = verify_entry(st, p->entry, err);
        if (s != MCRT_OK)
            return s;
        uint64_t run = 1;
        const unsigned char *src = p->src;
        int64_t last_stride = 1;
        for (int32_t d = 0; d < nd; d++)
            src += (size_t)((idx[d] - p->off[d]) * p->stride[d]) * es;
        if (nd > 0) {
            run = (uint64_t)(p->off[nd - 1] + p->size[nd - 1] - idx[nd - 1]);
            last_stride = p->stride[nd - 1];
        }
        if (run > count)
            run = count;
        if (last_stride == 1) {
            memcpy(o, src, (size_t)run * es);
        } else {
            for (uint64_t i = 0; i < run; i++)
                memcpy(o + i * es, src + (size_t)i * (size_t)last_stride * es, es);
        }
        o += run * es;
        e += run;
        count -= run;
    }
    return MCRT_OK;
}

static const ckpt_backend mg_backends[] = {
    {.format = "megatron torch", .close = mg_close, .read_bytes = mg_read_bytes,
     .file_path = mg_backend_file_path},
    {.format = "torch_dist", .close = mg_close, .read_bytes = mg_read_bytes,
     .file_path = mg_backend_file_path},
    {.format = "torch", .close = mg_close, .read_bytes = mg_read_bytes,
     .file_path = mg_backend_file_path},
};

mcrt_status mg_finish(mg_state *st, ckpt *ck, const char *format, ckpt_err *err)
{
    const ckpt_backend *ops = &mg_backends[0];
    for (size_t i = 0; i < sizeof mg_backends / sizeof mg_backends[0]; i++)
        if (strcmp(mg_backends[i].format, format) == 0)
            ops = &mg_backends[i];
    for (size_t i = 0; i < st->n_tensors; i++) {
        const mg_tensor *t = &st->tensors[i];
        mcrt_status s = check_tensor(st, t, err);
        if (s != MCRT_OK)
            return s;
        ckpt_tensor proto;
        memset(&proto, 0, sizeof proto);
        proto.dtype = t->dtype;
        proto.ndim = t->ndim;
        for (int32_t d = 0; d < t->ndim; d++)
            proto.shape[d] = t->shape[d];
        proto.nelem = t->nelem;
        proto.nbytes = t->nelem * mcrt_dtype_size(t->dtype);
        proto.file = t->n_pieces ? t->pieces[0].file : 0;
        proto.offset = i; /* the assembled tensor, for read_bytes */
        proto.data = NULL;
        s = ckpt_add_tensor(ck, t->name, strlen(t->name), &proto, err);
        if (s != MCRT_OK)
            return s;
    }
    /* The pickles were only needed to build the table. */
    pk_arena_free(st->arena);
    st->arena = NULL;
    ckpt_set_backend(ck, ops, st);
    return MCRT_OK;
}

/* ---- names and splits ----------------------------------------------------- */

bool mg_layer_name(const char *name, int64_t *layer, const char **rest)
{
    static const char pre[] = "decoder.layers.";
    if (strncmp(name, pre, sizeof pre - 1) != 0)
        return false;
    const char *p = name + sizeof pre - 1;
    if (*p < '0' || *p > '9')
        return false;
    int64_t v = 0;
    while (*p >= '0' && *p <= '9') {
        if (v > (INT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (*p++ - '0');
    }
    if (*p != '.')
        return false;
    *layer = v;
    *rest = p + 1;
    return true;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

mg_split mg_split_of(const char *te_name, bool gated)
{
    static const struct {
        const char *name;
        mg_split split;
    } whole[] = {
        {"embedding.word_embeddings.weight", MG_SPLIT_ROWS},
        {"output_layer.weight", MG_SPLIT_ROWS},
        {"embedding.position_embeddings.weight", MG_REPLICATED},
        {"decoder.final_layernorm.weight", MG_REPLICATED},
        {"decoder.final_layernorm.bias", MG_REPLICATED},
    };
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++)
        if (strcmp(te_name, whole[i].name) == 0)
            return whole[i].split;
    int64_t layer;
    const char *rest;
    if (!mg_layer_name(te_name, &layer, &rest))
        return MG_SPLIT_UNKNOWN;
    static const struct {
        const char *rest;
        mg_split split;
    } in_layer[] = {
        {"self_attention.linear_qkv.layer_norm_weight", MG_REPLICATED},
        {"self_attention.linear_qkv.layer_norm_bias", MG_REPLICATED},
        {"self_attention.linear_qkv.weight", MG_SPLIT_ROWS},
        {"self_attention.linear_qkv.bias", MG_SPLIT_ROWS},
        {"self_attention.q_layernorm.weight", MG_REPLICATED},
        {"self_attention.q_layernorm.bias", MG_REPLICATED},
        {"self_attention.k_layernorm.weight", MG_REPLICATED},
        {"self_attention.k_layernorm.bias", MG_REPLICATED},
        {"self_attention.linear_proj.weight", MG_SPLIT_COLS},
        {"self_attention.linear_proj.bias", MG_REPLICATED},
        {"mlp.linear_fc1.layer_norm_weight", MG_REPLICATED},
        {"mlp.linear_fc1.layer_norm_bias", MG_REPLICATED},
        {"mlp.linear_fc2.weight", MG_SPLIT_COLS},
        {"mlp.linear_fc2.bias", MG_REPLICATED},
    };
    for (size_t i = 0; i < sizeof in_layer / sizeof in_layer[0]; i++)
        if (strcmp(rest, in_layer[i].rest) == 0)
            return in_layer[i].split;
    if (strcmp(rest, "mlp.linear_fc1.weight") == 0 || strcmp(rest, "mlp.linear_fc1.bias") == 0)
        return gated ? MG_SPLIT_GATED_ROWS : MG_SPLIT_ROWS;
    return MG_SPLIT_UNKNOWN;
}

/* Renames inside a layer: local-spec and legacy spellings -> TE. */
static const struct {
    const char *from, *to;
} layer_renames[] = {
    /* MCore local spec (§3.2) */
    {"input_layernorm.weight", "self_attention.linear_qkv.layer_norm_weight"},
    {"input_layernorm.bias", "self_attention.linear_qkv.layer_norm_bias"},
    {"pre_mlp_layernorm.weight", "mlp.linear_fc1.layer_norm_weight"},
    {"pre_mlp_layernorm.bias", "mlp.linear_fc1.layer_norm_bias"},
    /* legacy model (§3.3), every historical spelling */
    {"input_norm.weight", "self_attention.linear_qkv.layer_norm_weight"},
    {"input_norm.bias", "self_attention.linear_qkv.layer_norm_bias"},
    {"post_attention_norm.weight", "mlp.linear_fc1.layer_norm_weight"},
    {"post_attention_norm.bias", "mlp.linear_fc1.layer_norm_bias"},
    {"post_attention_layernorm.weight", "mlp.linear_fc1.layer_norm_weight"},
    {"post_attention_layernorm.bias", "mlp.linear_fc1.layer_norm_bias"},
    {"self_attention.query_key_value.weight", "self_attention.linear_qkv.weight"},
    {"self_attention.query_key_value.bias", "self_attention.linear_qkv.bias"},
    {"attention.query_key_value.weight", "self_attention.linear_qkv.weight"},
    {"attention.query_key_value.bias", "self_attention.linear_qkv.bias"},
    {"self_attention.dense.weight", "self_attention.linear_proj.weight"},
    {"self_attention.dense.bias", "self_attention.linear_proj.bias"},
    {"attention.dense.weight", "self_attention.linear_proj.weight"},
    {"attention.dense.bias", "self_attention.linear_proj.bias"},
    {"mlp.dense_h_to_4h.weight", "mlp.linear_fc1.weight"},
    {"mlp.dense_h_to_4h.bias", "mlp.linear_fc1.bias"},
    {"mlp.dense_4h_to_h.weight", "mlp.linear_fc2.weight"},
    {"mlp.dense_4h_to_h.bias", "mlp.linear_fc2.bias"},
};

int mg_te_name(const char *key, char *out, size_t n, bool *legacy_qkv)
{
    *legacy_qkv = false;
    snprintf(out, n, "%s", key);
    if (ends_with(key, "._extra_state") || strcmp(key, "_extra_state") == 0 ||
        ends_with(key, "rotary_pos_emb.inv_freq"))
        return 0;
    /* legacy nesting, flattened with '.' */
    static const struct {
        const char *from, *to;
    } prefixes[] = {
        {"language_model.embedding.", "embedding."},
        {"language_model.encoder.layers.", "decoder.layers."},
        {"language_model.transformer.layers.", "decoder.layers."},
        {"language_model.encoder.final_norm.", "decoder.final_layernorm."},
        {"language_model.encoder.final_layernorm.", "decoder.final_layernorm."},
        {"language_model.transformer.final_norm.", "decoder.final_layernorm."},
        {"language_model.transformer.final_layernorm.", "decoder.final_layernorm."},
        {"language_model.output_layer.", "output_layer."},
        {"word_embeddings_for_head.", "output_layer."},
    };
    const char *k = key;
    char buf[1024];
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t pl = strlen(prefixes[i].from);
        if (strncmp(key, prefixes[i].from, pl) == 0) {
            snprintf(buf, sizeof buf, "%s%s", prefixes[i].to, key + pl);
            k = buf;
            break;
        }
    }
    int64_t layer;
    const char *rest;
    if (mg_layer_name(k, &layer, &rest)) {
        for (size_t i = 0; i < sizeof layer_renames / sizeof layer_renames[0]; i++)
            if (strcmp(rest, layer_renames[i].from) == 0) {
                snprintf(out, n, "decoder.layers.%" PRId64 ".%s", layer, layer_renames[i].to);
                *legacy_qkv = strstr(layer_renames[i].from, "query_key_value") != NULL;
                return 1;
            }
    }
    snprintf(out, n, "%s", k);
    return mg_split_of(out, false) != MG_SPLIT_UNKNOWN ? 1 : -1;
}

/* ---- args ------------------------------------------------------------------ */

mcrt_status mg_meta(ckpt *ck, const char *key, ckpt_err *err, const char *fmt, ...)
{
    char val[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(val, sizeof val, fmt, ap);
    va_end(ap);
    return ckpt_add_metadata(ck, key, strlen(key), val, strlen(val), err);
}

bool mg_arg_int(const pk_value *ns, const char *key, int64_t *out)
{
    return pk_as_int(pk_dict_get(ns, key), out);
}

bool mg_arg_bool(const pk_value *ns, const char *key, bool *out)
{
    return pk_as_bool(pk_dict_get(ns, key), out);
}

mcrt_status mg_add_args(ckpt *ck, const pk_value *ns, const char *source, ckpt_err *err)
{
    const pk_value *attrs = pk_kind_of(ns) == PK_DICT ? ns : pk_attrs(ns);
    size_t n = pk_len(attrs);
    bool disable_bias = false;
    for (size_t i = 0; i < n; i++) {
        size_t kl = 0;
        const char *key = pk_as_str(pk_dict_key(attrs, i), &kl);
        if (key == NULL || kl == 0 || strlen(key) != kl)
            continue;
        const pk_value *v = pk_dict_value(attrs, i);
        ckpt_arg a;
        memset(&a, 0, sizeof a);
        a.name = (char *)key;
        a.source = source;
        a.origin = MCRT_CHECKPOINT_ARG_TRAINING_ARGS;
        bool b;
        int64_t iv;
        double f;
        const char *s;
        const pk_dtype *dt;
        switch (pk_kind_of(v)) {
        case PK_BOOL:
            pk_as_bool(v, &b);
            a.type = MCRT_CFG_BOOL;
            a.i = b;
            if (strcmp(key, "disable_bias_linear") == 0)
                disable_bias = b;
            break;
        case PK_INT:
            pk_as_int(v, &iv);
            a.type = MCRT_CFG_INT;
            a.i = iv;
            a.f = (double)iv;
            break;
        case PK_FLOAT:
            pk_as_float(v, &f);
            a.type = MCRT_CFG_FLOAT;
            a.f = f;
            break;
        case PK_STR: {
            size_t sl = 0;
            s = pk_as_str(v, &sl);
            if (s == NULL || strlen(s) != sl)
                continue;
            a.type = MCRT_CFG_STRING;
            a.s = (char *)s;
            break;
        }
        case PK_DTYPE:
            dt = pk_as_dtype(v);
            if (dt == NULL)
                continue;
            a.type = MCRT_CFG_STRING;
            a.s = (char *)dt->name;
            break;
        case PK_OBJECT:
            s = pk_enum_member(v);
            if (s == NULL) {
                /* an enum pickled by value: Class(value) */
                const pk_value *args = pk_object_args(v);
                if (pk_len(args) == 1 && pk_kind_of(pk_item(args, 0)) == PK_INT) {
                    pk_as_int(pk_item(args, 0), &iv);
                    a.type = MCRT_CFG_INT;
                    a.i = iv;
                    a.f = (double)iv;
                    break;
                }
                continue;
            }
            a.type = MCRT_CFG_STRING;
            a.s = (char *)s;
            break;
        default:
            continue; /* None, lists, dicts, tensors: not hyper-parameters */
        }
        mcrt_status st = ckpt_add_arg(ck, &a, err);
        if (st != MCRT_OK)
            return st;
    }
    /* Old checkpoints say --disable-bias-linear (§3.5's one-off mapping). */
    if (pk_dict_get(ns, "add_bias_linear") == NULL &&
        pk_kind_of(pk_dict_get(ns, "disable_bias_linear")) == PK_BOOL) {
        ckpt_arg a;
        memset(&a, 0, sizeof a);
        a.name = (char *)"add_bias_linear";
        a.type = MCRT_CFG_BOOL;
        a.i = !disable_bias;
        a.source = source;
        a.origin = MCRT_CHECKPOINT_ARG_TRAINING_ARGS;
        return ckpt_add_arg(ck, &a, err);
    }
    return MCRT_OK;
}
