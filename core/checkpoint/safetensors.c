/*
 * core/checkpoint/safetensors.c: safetensors files and sharded
 * model.safetensors.index.json sets (the checkpoint backend for both).
 *
 * A file: 8-byte little-endian header length N; N bytes of JSON (an object:
 * tensor name -> {"dtype", "shape", "data_offsets": [begin, end]}, plus an
 * optional "__metadata__" string map); then the data area, to which the
 * offsets are relative. The whole file is mapped read-only and the header
 * checked completely at open (docs/checkpoints.md lists every rule and
 * message). Holes between tensors and bytes after the last one are allowed
 * (writers pad for alignment); overlaps are not.
 *
 * An index: {"metadata": {...}, "weight_map": {tensor: shard file}} with
 * shard paths relative to the index's folder. Every shard is opened once;
 * each shard's tensors must be exactly those the map gives it.
 */
#include "checkpoint/backend.h"
#include "checkpoint/json.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; mcrt supports little-endian hosts only"
#endif

#define Q(buf, s) ckpt_quote((buf), sizeof(buf), (s), strlen(s))

typedef struct st_file {
    char *path;                /* as opened (index folder + shard name) */
    const unsigned char *map;  /* the whole file */
    size_t size;
    uint64_t data_start;       /* 8 + header length */
} st_file;

typedef struct st_state {
    st_file *files;
    size_t n;
} st_state;

/* ---- the backend ---------------------------------------------------------- */

static void st_close(void *state)
{
    st_state *s = state;
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++) {
        if (s->files[i].map != NULL)
            munmap((void *)s->files[i].map, s->files[i].size);
        free(s->files[i].path);
    }
    free(s->files);
    free(s);
}

static mcrt_status st_read_bytes(const void *state, const ckpt_tensor *t, uint64_t off, size_t n,
                                 void *dst, ckpt_err *err)
{
    const st_state *s = state;
    if (t->file >= s->n || off > t->nbytes || n > t->nbytes - off)
        return ckpt_fail(err, MCRT_E_INTERNAL, "safetensors: read outside tensor '%s'", t->name);
    memcpy(dst, s->files[t->file].map + t->offset + off, n);
    return MCRT_OK;
}

static const char *st_file_path(const void *state, uint32_t file)
{
    const st_state *s = state;
    return file < s->n ? s->files[file].path : "?";
}

static const ckpt_backend st_backend = {
    .format = "safetensors",
    .close = st_close,
    .read_bytes = st_read_bytes,
    .file_path = st_file_path,
};

/* ---- the header ----------------------------------------------------------- */

typedef struct dtype_entry {
    const char *name;
    int32_t dtype; /* 0: a safetensors dtype mcrt does not read */
} dtype_entry;

static const dtype_entry st_dtypes[] = {
    {"F64", MCRT_DTYPE_F64}, {"F32", MCRT_DTYPE_F32}, {"F16", MCRT_DTYPE_F16},
    {"BF16", MCRT_DTYPE_BF16}, {"I64", MCRT_DTYPE_I64}, {"I32", MCRT_DTYPE_I32},
    {"I16", MCRT_DTYPE_I16}, {"I8", MCRT_DTYPE_I8}, {"U8", MCRT_DTYPE_U8},
    {"BOOL", MCRT_DTYPE_BOOL},
    /* valid safetensors dtypes that mcrt refuses */
    {"U16", 0}, {"U32", 0}, {"U64", 0}, {"F8_E4M3", 0}, {"F8_E5M2", 0}, {"F8_E8M0", 0},
    {"F6_E2M3", 0}, {"F6_E3M2", 0}, {"F4", 0}, {"C64", 0},
};

/* Context for messages: "<file>: tensor '<name>': ..." */
typedef struct hdr_ctx {
    ckpt *ck;
    const st_file *f;
    uint32_t file_index;
    json_reader r;
    char qf[CKPT_QUOTE_SIZE];  /* the file, quoted */
    char qn[CKPT_QUOTE_SIZE];  /* the current tensor, quoted */
    uint64_t data_len;
    char *name;                /* the current tensor's name (copied) */
    size_t name_len, name_cap;
} hdr_ctx;

static mcrt_status json_fail(hdr_ctx *h, ckpt_err *err)
{
    if (h->name != NULL && h->name_len > 0)
        return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': invalid header JSON at byte %zu: %s",
                         h->qf, h->qn, h->r.err_offset, json_error(&h->r));
    return ckpt_fail(err, MCRT_E_DATA, "%s: invalid header JSON at byte %zu: %s", h->qf,
                     h->r.err_offset, json_error(&h->r));
}

/* The value is `kind`; otherwise a message "<what> is <found>, not <want>". */
static mcrt_status expect_kind(hdr_ctx *h, json_kind want, const char *what, ckpt_err *err)
{
    json_kind k = json_peek(&h->r);
    if (k == JSON_INVALID)
        return json_fail(h, err);
    if (k == want)
        return MCRT_OK;
    return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': %s is %s, not %s", h->qf, h->qn, what,
                     json_kind_name(k), json_kind_name(want));
}

/* A non-negative integer for `what` ("shape[1]", "data_offsets[0]"). */
static mcrt_status read_uint(hdr_ctx *h, const char *what, int64_t *out, ckpt_err *err)
{
    mcrt_status s = expect_kind(h, JSON_NUMBER, what, err);
    if (s != MCRT_OK)
        return s;
    json_number num;
    if (!json_read_number(&h->r, &num))
        return json_fail(h, err);
    int shown = num.len > 40 ? 40 : (int)num.len;
    if (!num.is_integer)
        return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': %s is %.*s%s, not an integer",
                         h->qf, h->qn, what, shown, num.text, shown < (int)num.len ? "..." : "");
    if (num.overflow)
        return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': %s is %.*s%s, which does not fit in "
                         "64 bits", h->qf, h->qn, what, shown, num.text,
                         shown < (int)num.len ? "..." : "");
    if (num.value < 0)
        return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': %s is %" PRId64 ", a negative number",
                         h->qf, h->qn, what, num.value);
    *out = num.value;
    return MCRT_OK;
}

static void fmt_shape(char *buf, size_t size, const int64_t *shape, int32_t ndim)
{
    size_t o = 0;
    int w = snprintf(buf, size, "[");
    o = w > 0 ? (size_t)w : 0;
    for (int32_t i = 0; i < ndim && o < size; i++) {
        w = snprintf(buf + o, size - o, "%s%" PRId64, i ? ", " : "", shape[i]);
        if (w < 0)
            break;
        o += (size_t)w;
    }
    if (o < size)
        snprintf(buf + o, size - o, "]");
}

static mcrt_status parse_dtype(hdr_ctx *h, int32_t *dtype, ckpt_err *err)
{
    mcrt_status s = expect_kind(h, JSON_STRING, "'dtype'", err);
    if (s != MCRT_OK)
        return s;
    const char *v;
    size_t vl;
    if (!json_read_string(&h->r, &v, &vl))
        return json_fail(h, err);
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++) {
        if (!json_eq(v, vl, st_dtypes[i].name))
            continue;
        if (st_dtypes[i].dtype == 0)
            return ckpt_fail(err, MCRT_E_UNSUPPORTED, "%s: tensor '%s': dtype %s is not supported "
                             "(mcrt reads F64, F32, F16, BF16, I64, I32, I16, I8, U8 and BOOL)",
                             h->qf, h->qn, st_dtypes[i].name);
        *dtype = st_dtypes[i].dtype;
        return MCRT_OK;
    }
    char q[64];
    return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': unknown dtype '%s'", h->qf, h->qn,
                     ckpt_quote(q, sizeof q, v, vl));
}

static mcrt_status parse_shape(hdr_ctx *h, int64_t *shape, int32_t *ndim, ckpt_err *err)
{
    mcrt_status s = expect_kind(h, JSON_ARRAY, "'shape'", err);
    if (s != MCRT_OK)
        return s;
    if (!json_open_array(&h->r))
        return json_fail(h, err);
    int m;
    int32_t n = 0;
    while ((m = json_next_item(&h->r)) == 1) {
        if (n == MCRT_CHECKPOINT_MAX_DIMS)
            return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': 'shape' has more than %d "
                             "dimensions", h->qf, h->qn, MCRT_CHECKPOINT_MAX_DIMS);
        char what[32];
        snprintf(what, sizeof what, "shape[%d]", (int)n);
        s = read_uint(h, what, &shape[n], err);
        if (s != MCRT_OK)
            return s;
        n++;
    }
    if (m < 0)
        return json_fail(h, err);
    *ndim = n;
    return MCRT_OK;
}

static mcrt_status parse_offsets(hdr_ctx *h, int64_t off[2], ckpt_err *err)
{
    mcrt_status s = expect_kind(h, JSON_ARRAY, "'data_offsets'", err);
    if (s != MCRT_OK)
        return s;
    if (!json_open_array(&h->r))
        return json_fail(h, err);
    int m, n = 0;
    while ((m = json_next_item(&h->r)) == 1) {
        if (n == 2)
            return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': 'data_offsets' has more than 2 "
                             "items (want [begin, end])", h->qf, h->qn);
        s = read_uint(h, n == 0 ? "data_offsets[0]" : "data_offsets[1]", &off[n], err);
        if (s != MCRT_OK)
            return s;
        n++;
    }
    if (m < 0)
        return json_fail(h, err);
    if (n != 2)
        return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': 'data_offsets' has %d item%s "
                         "(want [begin, end])", h->qf, h->qn, n, n == 1 ? "" : "s");
    return MCRT_OK;
}

static mcrt_status dup_key(hdr_ctx *h, const char *key, ckpt_err *err)
{
    return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': '%s' appears twice in the entry", h->qf,
                     h->qn, key);
}

/* One tensor entry (the value after the name), checked and added. */
static mcrt_status parse_entry(hdr_ctx *h, ckpt_err *err)
{
    json_reader *r = &h->r;
    json_kind k = json_peek(r);
    if (k == JSON_INVALID)
        return json_fail(h, err);
    if (k != JSON_OBJECT)
        return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': the entry is %s, not an object "
                         "with dtype, shape and data_offsets", h->qf, h->qn, json_kind_name(k));
    if (!json_open_object(r))
        return json_fail(h, err);
    ckpt_tensor t;
    memset(&t, 0, sizeof t);
    int64_t off[2] = {0, 0};
    bool have_dtype = false, have_shape = false, have_off = false;
    const char *key;
    size_t kl;
    int m;
    mcrt_status s = MCRT_OK;
    while ((m = json_next_member(r, &key, &kl)) == 1) {
        if (json_eq(key, kl, "dtype")) {
            if (have_dtype)
                return dup_key(h, "dtype", err);
            have_dtype = true;
            s = parse_dtype(h, &t.dtype, err);
        } else if (json_eq(key, kl, "shape")) {
            if (have_shape)
                return dup_key(h, "shape", err);
            have_shape = true;
            s = parse_shape(h, t.shape, &t.ndim, err);
        } else if (json_eq(key, kl, "data_offsets")) {
            if (have_off)
                return dup_key(h, "data_offsets", err);
            have_off = true;
            s = parse_offsets(h, off, err);
        } else if (!json_skip(r)) /* other keys are ignored, as safetensors does */
            return json_fail(h, err);
        if (s != MCRT_OK)
            return s;
    }
    if (m < 0)
        return json_fail(h, err);
    const char *missing = !have_dtype ? "dtype" : !have_shape ? "shape" : !have_off ? "data_offsets"
                                                                                : NULL;
    if (missing != NULL)
        return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': the entry has no '%s'", h->qf, h->qn,
                         missing);

    /* Size: product(shape) x dtype size, overflow-checked. A zero dimension
     * makes the tensor empty whatever the others are. */
    char sh[200];
    fmt_shape(sh, sizeof sh, t.shape, t.ndim);
    uint64_t nelem = 1;
    bool empty = false, overflow = false;
    for (int32_t i = 0; i < t.ndim; i++) {
        if (t.shape[i] == 0)
            empty = true;
        else if (!overflow && !ckpt_mul_u64(nelem, (uint64_t)t.shape[i], &nelem))
            overflow = true;
    }
    if (empty)
        nelem = 0;
    else if (overflow)
        return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': shape %s has more than 2^64 "
                         "elements (overflow)", h->qf, h->qn, sh);
    uint64_t nbytes;
    uint32_t esz = mcrt_dtype_size(t.dtype);
    if (!ckpt_mul_u64(nelem, esz, &nbytes))
        return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': shape %s of %s is more than 2^64 "
                         "bytes (overflow)", h->qf, h->qn, sh, ckpt_dtype_name(t.dtype));

    uint64_t b = (uint64_t)off[0], e = (uint64_t)off[1];
    if (b > e)
        return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                         "] end before they begin", h->qf, h->qn, b, e);
    if (e > h->data_len)
        return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                         "] run past the end of the data area (%" PRIu64 " bytes; the file is "
                         "truncated or the offsets are wrong)", h->qf, h->qn, b, e, h->data_len);
    if (e - b != nbytes)
        return ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                         "] hold %" PRIu64 " bytes, but shape %s of %s needs %" PRIu64 " bytes",
                         h->qf, h->qn, b, e, e - b, sh, ckpt_dtype_name(t.dtype), nbytes);
    t.nelem = nelem;
    t.nbytes = nbytes;
    t.file = h->file_index;
    t.offset = h->f->data_start + b;
    t.data = h->f->map + t.offset;
    return ckpt_add_tensor(h->ck, h->name, h->name_len, &t, err);
}

static bool grow_array(void **p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap * 2 : 16;
    if (c < need)
        c = need;
    if (c > SIZE_MAX / elem)
        return false;
    void *nb = realloc(*p, c * elem);
    if (nb == NULL)
        return false;
    *p = nb;
    *cap = c;
    return true;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static mcrt_status parse_metadata(hdr_ctx *h, ckpt_err *err)
{
    json_reader *r = &h->r;
    json_kind k = json_peek(r);
    if (k == JSON_INVALID)
        return json_fail(h, err);
    if (k == JSON_NULL)
        return json_skip(r) ? MCRT_OK : json_fail(h, err);
    if (k != JSON_OBJECT)
        return ckpt_fail(err, MCRT_E_DATA, "%s: '__metadata__' is %s, not an object of strings",
                         h->qf, json_kind_name(k));
    if (!json_open_object(r))
        return json_fail(h, err);
    const char *key;
    size_t kl;
    int m = 0;
    char **keys = NULL; /* this header's keys, for duplicates */
    size_t n_keys = 0, keys_cap = 0;
    mcrt_status s = MCRT_OK;
    while (s == MCRT_OK && (m = json_next_member(r, &key, &kl)) == 1) {
        char qk[CKPT_QUOTE_SIZE];
        ckpt_quote(qk, sizeof qk, key, kl);
        if (memchr(key, '\0', kl) != NULL) {
            s = ckpt_fail(err, MCRT_E_DATA, "%s: '__metadata__' key '%s' holds a NUL character",
                          h->qf, qk);
            break;
        }
        char *kcopy = NULL;
        if (!grow_array((void **)&keys, &keys_cap, n_keys + 1, sizeof *keys) ||
            (kcopy = malloc(kl + 1)) == NULL) {
            s = ckpt_fail(err, MCRT_E_NOMEM, "%s: out of memory reading __metadata__", h->qf);
            break;
        }
        memcpy(kcopy, key, kl);
        kcopy[kl] = '\0';
        keys[n_keys++] = kcopy;
        k = json_peek(r);
        if (k == JSON_INVALID) {
            s = json_fail(h, err);
            break;
        }
        if (k != JSON_STRING) {
            s = ckpt_fail(err, MCRT_E_DATA, "%s: '__metadata__' entry '%s' is %s, not a string",
                          h->qf, qk, json_kind_name(k));
            break;
        }
        const char *v;
        size_t vl;
        if (!json_read_string(r, &v, &vl)) {
            s = json_fail(h, err);
            break;
        }
        s = ckpt_add_metadata(h->ck, kcopy, kl, v, vl, err);
    }
    if (s == MCRT_OK && m < 0)
        s = json_fail(h, err);
    if (s == MCRT_OK && n_keys > 1) {
        qsort(keys, n_keys, sizeof *keys, cmp_str);
        for (size_t i = 1; i < n_keys; i++)
            if (strcmp(keys[i - 1], keys[i]) == 0) {
                char qk[CKPT_QUOTE_SIZE];
                s = ckpt_fail(err, MCRT_E_DATA, "%s: '__metadata__' entry '%s' appears twice",
                              h->qf, Q(qk, keys[i]));
                break;
            }
    }
    for (size_t i = 0; i < n_keys; i++)
        free(keys[i]);
    free(keys);
    return s;
}

/* Sort helper: tensors of one file by data offset. */
typedef struct span {
    uint64_t b, e;
    size_t idx;
} span;

static int cmp_span(const void *pa, const void *pb)
{
    const span *a = pa, *b = pb;
    if (a->b != b->b)
        return a->b < b->b ? -1 : 1;
    if (a->e != b->e)
        return a->e < b->e ? -1 : 1;
    return 0;
}

/* No two non-empty tensors of table entries [first, n) share a byte. */
static mcrt_status check_overlaps(hdr_ctx *h, size_t first, ckpt_err *err)
{
    size_t n = ckpt_table_size(h->ck) - first, m = 0;
    if (n < 2)
        return MCRT_OK;
    span *v = malloc(n * sizeof *v);
    if (v == NULL)
        return ckpt_fail(err, MCRT_E_NOMEM, "%s: out of memory checking offsets", h->qf);
    for (size_t i = 0; i < n; i++) {
        const ckpt_tensor *t = ckpt_table_at(h->ck, first + i);
        if (t->nbytes == 0)
            continue;
        v[m].b = t->offset;
        v[m].e = t->offset + t->nbytes;
        v[m].idx = first + i;
        m++;
    }
    qsort(v, m, sizeof *v, cmp_span);
    mcrt_status s = MCRT_OK;
    size_t last = 0; /* the span reaching furthest so far */
    for (size_t i = 1; i < m; i++) {
        if (v[i].b < v[last].e) {
            const ckpt_tensor *a = ckpt_table_at(h->ck, v[last].idx);
            const ckpt_tensor *b = ckpt_table_at(h->ck, v[i].idx);
            const char *an = ckpt_tensor_name(h->ck, a), *bn = ckpt_tensor_name(h->ck, b);
            char qa[CKPT_QUOTE_SIZE], qb[CKPT_QUOTE_SIZE];
            uint64_t ds = h->f->data_start;
            s = ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': data_offsets [%" PRIu64 ", %" PRIu64
                          "] overlap tensor '%s' [%" PRIu64 ", %" PRIu64 "]", h->qf,
                          Q(qb, bn), v[i].b - ds, v[i].e - ds, Q(qa, an), v[last].b - ds,
                          v[last].e - ds);
            break;
        }
        if (v[i].e > v[last].e)
            last = i;
    }
    free(v);
    return s;
}

static mcrt_status set_name(hdr_ctx *h, const char *key, size_t kl, ckpt_err *err)
{
    if (kl + 1 > h->name_cap) {
        char *nb = realloc(h->name, kl + 1);
        if (nb == NULL)
            return ckpt_fail(err, MCRT_E_NOMEM, "%s: out of memory", h->qf);
        h->name = nb;
        h->name_cap = kl + 1;
    }
    memcpy(h->name, key, kl);
    h->name[kl] = '\0';
    h->name_len = kl;
    ckpt_quote(h->qn, sizeof h->qn, key, kl);
    return MCRT_OK;
}

/* Check file f's header and add its tensors to ck (as file `index`). */
static mcrt_status parse_file(ckpt *ck, st_file *f, uint32_t index, ckpt_err *err)
{
    hdr_ctx *h = calloc(1, sizeof *h);
    if (h == NULL)
        return ckpt_fail(err, MCRT_E_NOMEM, "out of memory");
    h->ck = ck;
    h->f = f;
    h->file_index = index;
    Q(h->qf, f->path);
    mcrt_status s = MCRT_OK;
    if (f->size < 8) {
        s = ckpt_fail(err, MCRT_E_DATA, "%s: the file is %zu bytes, too short for the 8-byte "
                      "header length (not a safetensors file, or truncated)", h->qf, f->size);
        goto out;
    }
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--)
        hl = hl << 8 | f->map[i];
    if (hl > f->size - 8) {
        s = ckpt_fail(err, MCRT_E_DATA, "%s: the header length %" PRIu64 " runs past the end of "
                      "the file (%zu bytes; not a safetensors file, or truncated)", h->qf, hl,
                      f->size);
        goto out;
    }
    if (hl > CKPT_MAX_HEADER) {
        s = ckpt_fail(err, MCRT_E_DATA, "%s: the header length %" PRIu64 " is over the limit of "
                      "%u bytes", h->qf, hl, CKPT_MAX_HEADER);
        goto out;
    }
    h->data_len = f->size - 8 - hl;
    f->data_start = 8 + hl;
    size_t first = ckpt_table_size(ck);
    json_reader *r = &h->r;
    json_init(r, (const char *)f->map + 8, (size_t)hl, 8, 8);
    json_kind k = json_peek(r);
    if (k == JSON_INVALID) {
        s = json_fail(h, err);
        goto out_json;
    }
    if (k != JSON_OBJECT) {
        s = ckpt_fail(err, MCRT_E_DATA, "%s: the header is %s, not a JSON object",
                      h->qf, json_kind_name(k));
        goto out_json;
    }
    if (!json_open_object(r)) {
        s = json_fail(h, err);
        goto out_json;
    }
    const char *key;
    size_t kl;
    int m;
    bool have_meta = false;
    while ((m = json_next_member(r, &key, &kl)) == 1) {
        if (json_eq(key, kl, "__metadata__")) {
            if (have_meta) {
                s = ckpt_fail(err, MCRT_E_DATA, "%s: '__metadata__' appears twice in the header",
                              h->qf);
                goto out_json;
            }
            have_meta = true;
            h->name_len = 0;
            s = parse_metadata(h, err);
        } else {
            char qk[CKPT_QUOTE_SIZE];
            if (kl == 0) {
                s = ckpt_fail(err, MCRT_E_DATA, "%s: a tensor has an empty name", h->qf);
                goto out_json;
            }
            if (memchr(key, '\0', kl) != NULL) {
                s = ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s': the name holds a NUL character",
                              h->qf, ckpt_quote(qk, sizeof qk, key, kl));
                goto out_json;
            }
            s = set_name(h, key, kl, err);
            if (s == MCRT_OK)
                s = parse_entry(h, err);
            h->name_len = 0;
        }
        if (s != MCRT_OK)
            goto out_json;
    }
    h->name_len = 0;
    if (m < 0 || !json_finish(r)) {
        s = json_fail(h, err);
        goto out_json;
    }
    s = check_overlaps(h, first, err);
out_json:
    json_fini(r);
out:
    free(h->name);
    free(h);
    return s;
}

/* ---- a single file -------------------------------------------------------- */

static st_state *state_new(size_t n_files)
{
    st_state *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->files = calloc(n_files ? n_files : 1, sizeof *s->files);
    if (s->files == NULL) {
        free(s);
        return NULL;
    }
    return s;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static bool st_match(const char *path, const unsigned char *head, size_t n)
{
    (void)head;
    (void)n;
    return !ends_with(path, ".json");
}

static mcrt_status st_open(ckpt *ck, const char *path, ckpt_err *err)
{
    st_state *s = state_new(1);
    if (s == NULL)
        return ckpt_fail(err, MCRT_E_NOMEM, "out of memory");
    ckpt_set_backend(ck, &st_backend, s); /* freed with ck from here on */
    st_file *f = &s->files[0];
    if ((f->path = strdup(path)) == NULL)
        return ckpt_fail(err, MCRT_E_NOMEM, "out of memory");
    s->n = 1;
    mcrt_status st = ckpt_map_file(path, &f->map, &f->size, err);
    if (st != MCRT_OK)
        return st;
    return parse_file(ck, f, 0, err);
}

static const char *const st_entries[] = {"model.safetensors", NULL};

const ckpt_format ckpt_format_safetensors = {
    .name = "safetensors",
    .match_file = st_match,
    .folder_entries = st_entries,
    .open = st_open,
};

/* ---- an index of shards --------------------------------------------------- */

typedef struct map_entry {
    char *name;
    uint32_t shard;
    bool found;
} map_entry;

typedef struct index_ctx {
    char qi[CKPT_QUOTE_SIZE]; /* the index file, quoted */
    map_entry *e;
    size_t n, cap;
    char **shards;            /* relative names, unique */
    size_t n_shards, shards_cap;
} index_ctx;

static void index_free(index_ctx *x)
{
    for (size_t i = 0; i < x->n; i++)
        free(x->e[i].name);
    free(x->e);
    for (size_t i = 0; i < x->n_shards; i++)
        free(x->shards[i]);
    free(x->shards);
}

/* A shard path must stay inside the index's folder. */
static const char *bad_shard_path(const char *s, size_t len)
{
    if (len == 0)
        return "is empty";
    if (memchr(s, '\0', len) != NULL)
        return "holds a NUL character";
    if (s[0] == '/')
        return "is absolute (shard paths are relative to the index's folder)";
    for (size_t i = 0; i < len;) {
        size_t j = i;
        while (j < len && s[j] != '/')
            j++;
        if (j - i == 2 && s[i] == '.' && s[i + 1] == '.')
            return "leaves the index's folder ('..')";
        i = j + 1;
    }
    return NULL;
}

static int cmp_map_entry(const void *a, const void *b)
{
    return strcmp(((const map_entry *)a)->name, ((const map_entry *)b)->name);
}

static mcrt_status parse_index(index_ctx *x, const unsigned char *text, size_t len,
                               ckpt_err *err)
{
    json_reader r;
    json_init(&r, (const char *)text, len, 0, 16);
    mcrt_status s = MCRT_OK;
    const char *key;
    size_t kl;
    int m;
    bool have_map = false;
    json_kind k = json_peek(&r);
    if (k == JSON_INVALID)
        goto bad_json;
    if (k != JSON_OBJECT) {
        s = ckpt_fail(err, MCRT_E_DATA, "%s: the index is %s, not a JSON object", x->qi,
                      json_kind_name(k));
        goto out;
    }
    if (!json_open_object(&r))
        goto bad_json;
    while ((m = json_next_member(&r, &key, &kl)) == 1) {
        if (!json_eq(key, kl, "weight_map")) {
            if (!json_skip(&r))
                goto bad_json;
            continue;
        }
        if (have_map) {
            s = ckpt_fail(err, MCRT_E_DATA, "%s: 'weight_map' appears twice", x->qi);
            goto out;
        }
        have_map = true;
        k = json_peek(&r);
        if (k == JSON_INVALID)
            goto bad_json;
        if (k != JSON_OBJECT) {
            s = ckpt_fail(err, MCRT_E_DATA, "%s: 'weight_map' is %s, not an object", x->qi,
                          json_kind_name(k));
            goto out;
        }
        if (!json_open_object(&r))
            goto bad_json;
        while ((m = json_next_member(&r, &key, &kl)) == 1) {
            char qn[CKPT_QUOTE_SIZE];
            ckpt_quote(qn, sizeof qn, key, kl);
            if (kl == 0 || memchr(key, '\0', kl) != NULL) {
                s = ckpt_fail(err, MCRT_E_DATA, "%s: weight_map: tensor '%s': %s", x->qi, qn,
                              kl == 0 ? "an empty name" : "the name holds a NUL character");
                goto out;
            }
            if (!grow_array((void **)&x->e, &x->cap, x->n + 1, sizeof *x->e) ||
                (x->e[x->n].name = malloc(kl + 1)) == NULL) {
                s = ckpt_fail(err, MCRT_E_NOMEM, "%s: out of memory", x->qi);
                goto out;
            }
            map_entry *e = &x->e[x->n++];
            memcpy(e->name, key, kl);
            e->name[kl] = '\0';
            e->found = false;
            k = json_peek(&r);
            if (k == JSON_INVALID)
                goto bad_json;
            if (k != JSON_STRING) {
                s = ckpt_fail(err, MCRT_E_DATA, "%s: weight_map: tensor '%s' maps to %s, not a "
                              "shard file name", x->qi, qn, json_kind_name(k));
                goto out;
            }
            const char *v;
            size_t vl;
            if (!json_read_string(&r, &v, &vl))
                goto bad_json;
            const char *why = bad_shard_path(v, vl);
            if (why != NULL) {
                char qv[CKPT_QUOTE_SIZE];
                s = ckpt_fail(err, MCRT_E_DATA, "%s: weight_map: tensor '%s': shard '%s' %s",
                              x->qi, qn, ckpt_quote(qv, sizeof qv, v, vl), why);
                goto out;
            }
            size_t j = 0;
            while (j < x->n_shards && !(strlen(x->shards[j]) == vl &&
                                        memcmp(x->shards[j], v, vl) == 0))
                j++;
            if (j == x->n_shards) {
                if (x->n_shards >= UINT32_MAX ||
                    !grow_array((void **)&x->shards, &x->shards_cap, x->n_shards + 1,
                                sizeof *x->shards) ||
                    (x->shards[j] = malloc(vl + 1)) == NULL) {
                    s = ckpt_fail(err, MCRT_E_NOMEM, "%s: out of memory", x->qi);
                    goto out;
                }
                memcpy(x->shards[j], v, vl);
                x->shards[j][vl] = '\0';
                x->n_shards++;
            }
            e->shard = (uint32_t)j;
        }
        if (m < 0)
            goto bad_json;
    }
    if (m < 0 || !json_finish(&r))
        goto bad_json;
    if (!have_map) {
        s = ckpt_fail(err, MCRT_E_DATA, "%s: the index has no 'weight_map'", x->qi);
        goto out;
    }
    /* Shards in name order (HF names them model-0000i-of-0000n), so the
     * order files are opened in, and metadata's "first wins", are stable. */
    if (x->n_shards > 1) {
        uint32_t *rank = malloc(x->n_shards * sizeof *rank);
        char **old = malloc(x->n_shards * sizeof *old);
        if (rank == NULL || old == NULL) {
            free(rank);
            free(old);
            s = ckpt_fail(err, MCRT_E_NOMEM, "%s: out of memory", x->qi);
            goto out;
        }
        memcpy(old, x->shards, x->n_shards * sizeof *old);
        qsort(x->shards, x->n_shards, sizeof *x->shards, cmp_str);
        for (size_t i = 0; i < x->n_shards; i++) {
            size_t lo = 0, hi = x->n_shards;
            while (lo < hi) { /* names are unique */
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(x->shards[mid], old[i]);
                if (c == 0) {
                    lo = mid;
                    break;
                }
                if (c < 0)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            rank[i] = (uint32_t)lo;
        }
        for (size_t i = 0; i < x->n; i++)
            x->e[i].shard = rank[x->e[i].shard];
        free(rank);
        free(old);
    }
    if (x->n > 1)
        qsort(x->e, x->n, sizeof *x->e, cmp_map_entry);
    for (size_t i = 1; i < x->n; i++)
        if (strcmp(x->e[i - 1].name, x->e[i].name) == 0) {
            char qn[CKPT_QUOTE_SIZE];
            s = ckpt_fail(err, MCRT_E_DATA, "%s: weight_map: tensor '%s' appears twice", x->qi,
                          Q(qn, x->e[i].name));
            goto out;
        }
    goto out;
bad_json:
    s = ckpt_fail(err, MCRT_E_DATA, "%s: invalid JSON at byte %zu: %s", x->qi, r.err_offset,
                  json_error(&r));
out:
    json_fini(&r);
    return s;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return strdup(".");
    if (slash == path)
        return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

static mcrt_status index_open(ckpt *ck, const char *path, ckpt_err *err)
{
    index_ctx x;
    memset(&x, 0, sizeof x);
    Q(x.qi, path);
    const unsigned char *text = NULL;
    size_t len = 0;
    mcrt_status s = ckpt_map_file(path, &text, &len, err);
    if (s != MCRT_OK)
        return s;
    if (len > CKPT_MAX_HEADER)
        s = ckpt_fail(err, MCRT_E_DATA, "%s: the index is %zu bytes, over the limit of %u",
                      x.qi, len, CKPT_MAX_HEADER);
    else
        s = parse_index(&x, text, len, err);
    if (text != NULL)
        munmap((void *)text, len);
    if (s != MCRT_OK) {
        index_free(&x);
        return s;
    }

    st_state *st = state_new(x.n_shards);
    char *dir = dir_of(path);
    if (st == NULL || dir == NULL) {
        st_close(st);
        free(dir);
        index_free(&x);
        return ckpt_fail(err, MCRT_E_NOMEM, "out of memory");
    }
    ckpt_set_backend(ck, &st_backend, st);
    /* Open every shard once. */
    for (size_t i = 0; i < x.n_shards && s == MCRT_OK; i++) {
        st_file *f = &st->files[i];
        if ((f->path = ckpt_join(dir, x.shards[i])) == NULL) {
            s = ckpt_fail(err, MCRT_E_NOMEM, "out of memory");
            break;
        }
        st->n = i + 1;
        ckpt_err sub;
        s = ckpt_map_file(f->path, &f->map, &f->size, &sub);
        if (s != MCRT_OK) {
            const char *example = "?";
            for (size_t j = 0; j < x.n; j++)
                if (x.e[j].shard == i) {
                    example = x.e[j].name;
                    break;
                }
            char qs[CKPT_QUOTE_SIZE], qn[CKPT_QUOTE_SIZE];
            s = ckpt_fail(err, s, "%s: shard '%s' (of tensor '%s'): %s", x.qi,
                          Q(qs, x.shards[i]), Q(qn, example), sub.msg);
            break;
        }
        s = parse_file(ck, f, (uint32_t)i, err);
    }
    /* Each shard holds exactly the tensors the map gives it. */
    for (size_t i = 0; i < ckpt_table_size(ck) && s == MCRT_OK; i++) {
        const ckpt_tensor *t = ckpt_table_at(ck, i);
        map_entry key = {.name = (char *)ckpt_tensor_name(ck, t)};
        map_entry *e = x.n ? bsearch(&key, x.e, x.n, sizeof *x.e, cmp_map_entry) : NULL;
        char qn[CKPT_QUOTE_SIZE], qf[CKPT_QUOTE_SIZE], qs[CKPT_QUOTE_SIZE];
        if (e == NULL)
            s = ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s' is in shard '%s' but not in "
                          "weight_map", x.qi, Q(qn, key.name), Q(qf, x.shards[t->file]));
        else if (e->shard != t->file)
            s = ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s' is in shard '%s', but weight_map "
                          "places it in shard '%s'", x.qi, Q(qn, key.name),
                          Q(qf, x.shards[t->file]), Q(qs, x.shards[e->shard]));
        else
            e->found = true;
    }
    for (size_t i = 0; i < x.n && s == MCRT_OK; i++)
        if (!x.e[i].found) {
            char qn[CKPT_QUOTE_SIZE], qs[CKPT_QUOTE_SIZE];
            s = ckpt_fail(err, MCRT_E_DATA, "%s: tensor '%s' is listed in weight_map for shard "
                          "'%s', which has no such tensor", x.qi, Q(qn, x.e[i].name),
                          Q(qs, x.shards[x.e[i].shard]));
        }
    free(dir);
    index_free(&x);
    return s;
}

static bool index_match(const char *path, const unsigned char *head, size_t n)
{
    (void)head;
    (void)n;
    return ends_with(path, ".json");
}

static const char *const index_entries[] = {"model.safetensors.index.json", NULL};

const ckpt_format ckpt_format_safetensors_index = {
    .name = "safetensors index",
    .match_file = index_match,
    .folder_entries = index_entries,
    .open = index_open,
};
