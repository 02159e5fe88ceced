/*
 * core/checkpoint/zip.c: the strict ZIP reader of zip.h (stored entries,
 * zip64, data descriptors; CRC-32 on request).
 */
#include "checkpoint/zip.h"
#include "checkpoint/backend.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_EOCD 0x06054b50u
#define SIG_EOCD64 0x06064b50u
#define SIG_LOCATOR64 0x07064b50u
#define SIG_DESCRIPTOR 0x08074b50u

#define EOCD_SIZE 22u
#define LOCATOR64_SIZE 20u
#define EOCD64_MIN 56u /* signature, size and the fixed fields */
#define CENTRAL_SIZE 46u
#define LOCAL_SIZE 30u
#define MAX_COMMENT 65535u

struct zip_archive {
    const unsigned char *base;
    size_t len;
    char *label;             /* as given, for messages */
    char qlabel[CKPT_QUOTE_SIZE];
    zip_entry *e;            /* central directory order */
    size_t n;
    size_t *sorted;          /* indices of e by name */
    char *names;             /* every name, NUL-terminated, back to back */
};

static uint16_t rd16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static uint64_t rd64(const unsigned char *p)
{
    return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32);
}

/* ---- CRC-32 (slicing by 4) ----------------------------------------------- */

static uint32_t crc_table[4][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = crc_table[0][i];
        for (int t = 1; t < 4; t++) {
            c = crc_table[0][c & 0xff] ^ (c >> 8);
            crc_table[t][i] = c;
        }
    }
}

uint32_t zip_crc32(uint32_t crc, const void *data, size_t n)
{
    pthread_once(&crc_once, crc_init);
    const unsigned char *p = data;
    uint32_t c = ~crc;
    while (n >= 4) {
        c ^= rd32(p);
        c = crc_table[3][c & 0xff] ^ crc_table[2][(c >> 8) & 0xff] ^
            crc_table[1][(c >> 16) & 0xff] ^ crc_table[0][c >> 24];
        p += 4;
        n -= 4;
    }
    while (n-- > 0)
        c = crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
    return ~c;
}

/* ---- messages ------------------------------------------------------------ */

typedef struct zctx {
    zip_archive *z;
    char qn[CKPT_QUOTE_SIZE]; /* the current entry, quoted ("" before names are known) */
} zctx;

static mcrt_status zfail(zctx *c, ckpt_err *err, mcrt_status st, const char *fmt, ...)
    CKPT_PRINTF(4, 5);

static mcrt_status zfail(zctx *c, ckpt_err *err, mcrt_status st, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (c->qn[0] != '\0')
        return ckpt_fail(err, st, "%s: entry '%s': %s", c->z->qlabel, c->qn, msg);
    return ckpt_fail(err, st, "%s: %s", c->z->qlabel, msg);
}

/* ---- the end records ----------------------------------------------------- */

typedef struct zend {
    uint64_t entries;
    uint64_t cd_off, cd_size;
    uint64_t cd_limit; /* the central directory ends at or before this */
} zend;

/* Find the EOCD: the last signature whose comment ends exactly at len. */
static mcrt_status find_eocd(zctx *c, size_t *pos, ckpt_err *err)
{
    const zip_archive *z = c->z;
    if (z->len < EOCD_SIZE)
        return zfail(c, err, MCRT_E_DATA, "truncated archive: %zu bytes is too short for a ZIP "
                     "end-of-central-directory record (22 bytes)", z->len);
    size_t last = z->len - EOCD_SIZE;
    size_t first = last > MAX_COMMENT ? last - MAX_COMMENT : 0;
    bool seen = false;
    size_t seen_at = 0;
    for (size_t p = last + 1; p-- > first;) {
        if (rd32(z->base + p) != SIG_EOCD)
            continue;
        uint16_t comment = rd16(z->base + p + 20);
        if ((uint64_t)p + EOCD_SIZE + comment == z->len) {
            *pos = p;
            return MCRT_OK;
        }
        if (!seen) {
            seen = true;
            seen_at = p;
        }
    }
    if (seen)
        return zfail(c, err, MCRT_E_DATA, "the end-of-central-directory record at byte %zu says "
                     "its comment is %u bytes, but %zu bytes follow it (truncated or trailing "
                     "data)", seen_at, (unsigned)rd16(z->base + seen_at + 20),
                     z->len - seen_at - EOCD_SIZE);
    return zfail(c, err, MCRT_E_DATA, "no ZIP end-of-central-directory record in the last %zu "
                 "bytes (not a ZIP archive, or truncated)", z->len - first);
}

static mcrt_status read_end(zctx *c, zend *out, ckpt_err *err)
{
    const zip_archive *z = c->z;
    size_t eo = 0;
    mcrt_status s = find_eocd(c, &eo, err);
    if (s != MCRT_OK)
        return s;
    const unsigned char *p = z->base + eo;
    uint16_t disk = rd16(p + 4), cd_disk = rd16(p + 6);
    uint16_t n_disk = rd16(p + 8), n_total = rd16(p + 10);
    uint32_t cd_size = rd32(p + 12), cd_off = rd32(p + 16);
    out->entries = n_total;
    out->cd_size = cd_size;
    out->cd_off = cd_off;
    out->cd_limit = eo;

    bool has64 = eo >= LOCATOR64_SIZE && rd32(z->base + eo - LOCATOR64_SIZE) == SIG_LOCATOR64;
    if (!has64) {
        if (disk != 0 || cd_disk != 0 || n_disk != n_total)
            return zfail(c, err, MCRT_E_UNSUPPORTED, "a multi-disk (split) archive (disk %u, "
                         "central directory on disk %u, %u of %u entries on this disk); mcrt "
                         "reads single-file archives", disk, cd_disk, n_disk, n_total);
        return MCRT_OK;
    }
    size_t lo = eo - LOCATOR64_SIZE;
    const unsigned char *l = z->base + lo;
    uint32_t rec_disk = rd32(l + 4), total_disks = rd32(l + 16);
    uint64_t rec_off = rd64(l + 8);
    if (rec_disk != 0 || total_disks > 1)
        return zfail(c, err, MCRT_E_UNSUPPORTED, "a multi-disk (split) archive (the zip64 "
                     "locator says disk %" PRIu32 " of %" PRIu32 "); mcrt reads single-file "
                     "archives", rec_disk, total_disks);
    if (rec_off > lo || lo - rec_off < EOCD64_MIN)
        return zfail(c, err, MCRT_E_DATA, "the zip64 end-of-central-directory record offset "
                     "%" PRIu64 " is out of range (the locator is at byte %zu; truncated "
                     "archive or bad offset)", rec_off, lo);
    const unsigned char *r = z->base + rec_off;
    if (rd32(r) != SIG_EOCD64)
        return zfail(c, err, MCRT_E_DATA, "no zip64 end-of-central-directory record at byte "
                     "%" PRIu64 " (where the zip64 locator points)", rec_off);
    uint64_t rec_size = rd64(r + 4);
    if (rec_size < EOCD64_MIN - 12 || rec_size > lo - rec_off - 12)
        return zfail(c, err, MCRT_E_DATA, "the zip64 end-of-central-directory record at byte "
                     "%" PRIu64 " says it is %" PRIu64 " bytes, which does not fit before the "
                     "zip64 locator", rec_off, rec_size);
    uint32_t d64 = rd32(r + 16), cdd64 = rd32(r + 20);
    uint64_t nd64 = rd64(r + 24), nt64 = rd64(r + 32), cs64 = rd64(r + 40), co64 = rd64(r + 48);
    if (d64 != 0 || cdd64 != 0 || nd64 != nt64)
        return zfail(c, err, MCRT_E_UNSUPPORTED, "a multi-disk (split) archive (zip64 record: "
                     "disk %" PRIu32 ", central directory on disk %" PRIu32 "); mcrt reads "
                     "single-file archives", d64, cdd64);
    /* The classic fields agree or are placeholders. */
    if ((disk != 0 && disk != 0xFFFF) || (cd_disk != 0 && cd_disk != 0xFFFF) ||
        (n_disk != nd64 && n_disk != 0xFFFF) || (n_total != nt64 && n_total != 0xFFFF) ||
        (cd_size != cs64 && cd_size != 0xFFFFFFFFu) || (cd_off != co64 && cd_off != 0xFFFFFFFFu))
        return zfail(c, err, MCRT_E_DATA, "the end-of-central-directory record (%u entries, "
                     "central directory of %" PRIu32 " bytes at byte %" PRIu32 ") disagrees with "
                     "the zip64 record (%" PRIu64 " entries, %" PRIu64 " bytes at byte %" PRIu64
                     ")", n_total, cd_size, cd_off, nt64, cs64, co64);
    out->entries = nt64;
    out->cd_size = cs64;
    out->cd_off = co64;
    out->cd_limit = rec_off;
    return MCRT_OK;
}

/* ---- extra fields -------------------------------------------------------- */

/* The zip64 extended-information field of extra[0..n): its data, or NULL. */
static const unsigned char *find_zip64(const unsigned char *extra, size_t n, size_t *len)
{
    size_t i = 0;
    while (n - i >= 4) {
        uint16_t id = rd16(extra + i), sz = rd16(extra + i + 2);
        if (sz > n - i - 4)
            return NULL; /* a malformed tail (padding): no more fields */
        if (id == 0x0001) {
            *len = sz;
            return extra + i + 4;
        }
        i += 4 + (size_t)sz;
    }
    return NULL;
}

/* Replace the 0xFFFFFFFF placeholders among the fields (in zip64 order:
 * uncompressed size, compressed size, header offset; 0xFFFF disk) with the
 * zip64 field's values. want_disk: whether *disk takes part. */
static mcrt_status apply_zip64(zctx *c, const char *where, const unsigned char *extra, size_t n,
                               uint64_t *usize, uint64_t *csize, uint64_t *hoff, uint32_t *disk,
                               ckpt_err *err)
{
    bool need_u = *usize == 0xFFFFFFFFu, need_c = *csize == 0xFFFFFFFFu;
    bool need_o = hoff != NULL && *hoff == 0xFFFFFFFFu;
    bool need_d = disk != NULL && *disk == 0xFFFFu;
    if (!need_u && !need_c && !need_o && !need_d)
        return MCRT_OK;
    size_t len = 0;
    const unsigned char *f = find_zip64(extra, n, &len);
    if (f == NULL)
        return zfail(c, err, MCRT_E_DATA, "the %s holds a zip64 placeholder (0xFFFFFFFF) but no "
                     "zip64 extra field", where);
    size_t o = 0;
    uint64_t *fields[3] = {usize, csize, hoff};
    bool need[3] = {need_u, need_c, need_o};
    static const char *const names[3] = {"uncompressed size", "compressed size",
                                         "local header offset"};
    for (int i = 0; i < 3; i++) {
        if (!need[i])
            continue;
        if (len - o < 8)
            return zfail(c, err, MCRT_E_DATA, "the %s's zip64 extra field (%zu bytes) lacks the "
                         "%s", where, len, names[i]);
        *fields[i] = rd64(f + o);
        o += 8;
    }
    if (need_d) {
        if (len - o < 4)
            return zfail(c, err, MCRT_E_DATA, "the %s's zip64 extra field (%zu bytes) lacks the "
                         "disk number", where, len);
        *disk = rd32(f + o);
    }
    return MCRT_OK;
}

/* ---- the entries --------------------------------------------------------- */

typedef struct zspan {
    uint64_t b, e; /* local header .. end of data (and descriptor) */
    size_t idx;
} zspan;

static int cmp_span(const void *pa, const void *pb)
{
    const zspan *a = pa, *b = pb;
    if (a->b != b->b)
        return a->b < b->b ? -1 : 1;
    return a->e < b->e ? -1 : a->e > b->e;
}

/* Sort indices by name without a global: a small merge sort (stable, no
 * shared state, so concurrent opens are safe). */
static int cmp_entries(const zip_entry *a, const zip_entry *b)
{
    size_t m = a->name_len < b->name_len ? a->name_len : b->name_len;
    int r = memcmp(a->name, b->name, m);
    if (r != 0)
        return r;
    return a->name_len < b->name_len ? -1 : a->name_len > b->name_len;
}

static void merge_sort(const zip_entry *e, size_t *v, size_t *tmp, size_t n)
{
    if (n < 2)
        return;
    size_t h = n / 2;
    merge_sort(e, v, tmp, h);
    merge_sort(e, v + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = cmp_entries(&e[v[j]], &e[v[i]]) < 0 ? v[j++] : v[i++];
    while (i < h)
        tmp[k++] = v[i++];
    while (j < n)
        tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof *v);
}

/* The data descriptor after an entry with flag bit 3: optional signature,
 * CRC, then 32- or 64-bit sizes. Its length, or 0 when none agrees. */
static uint64_t match_descriptor(const zip_archive *z, uint64_t at, uint64_t limit,
                                 const zip_entry *e)
{
    for (int sig = 1; sig >= 0; sig--) {
        uint64_t p = at;
        if (sig) {
            if (limit - p < 4 || rd32(z->base + p) != SIG_DESCRIPTOR)
                continue;
            p += 4;
        }
        if (limit - p < 4 || rd32(z->base + p) != e->crc32)
            continue;
        p += 4;
        if (limit - p >= 16 && rd64(z->base + p) == e->size && rd64(z->base + p + 8) == e->size)
            return p + 16 - at;
        if (e->size <= 0xFFFFFFFFu && limit - p >= 8 && rd32(z->base + p) == e->size &&
            rd32(z->base + p + 4) == e->size)
            return p + 8 - at;
    }
    return 0;
}

static const char *method_name(uint16_t m)
{
    switch (m) {
    case 8: return "deflate";
    case 9: return "deflate64";
    case 12: return "bzip2";
    case 14: return "LZMA";
    case 93: return "zstd";
    case 95: return "xz";
    default: return "compression";
    }
}

/* The local header of entry i: checks, and the entry's data offset and span. */
static mcrt_status read_local(zctx *c, const zip_entry *cd, uint16_t cd_flags, uint16_t cd_method,
                              uint64_t cd_off, uint64_t *data_off, zspan *span, ckpt_err *err)
{
    const zip_archive *z = c->z;
    uint64_t h = cd->header_offset;
    if (h > cd_off || cd_off - h < LOCAL_SIZE)
        return zfail(c, err, MCRT_E_DATA, "local header offset %" PRIu64 " is out of range (the "
                     "entries end where the central directory starts, at byte %" PRIu64 ")", h,
                     cd_off);
    const unsigned char *p = z->base + h;
    if (rd32(p) != SIG_LOCAL)
        return zfail(c, err, MCRT_E_DATA, "no local header at byte %" PRIu64 " (bad signature "
                     "0x%08" PRIx32 ")", h, rd32(p));
    uint16_t flags = rd16(p + 6), method = rd16(p + 8);
    uint32_t crc = rd32(p + 14);
    uint64_t csize = rd32(p + 18), usize = rd32(p + 22);
    uint16_t nl = rd16(p + 26), el = rd16(p + 28);
    if (method != cd_method)
        return zfail(c, err, MCRT_E_DATA, "the local header says compression method %u, the "
                     "central directory %u", method, cd_method);
    if ((flags & 1u) != (cd_flags & 1u) || (flags & 8u) != (cd_flags & 8u))
        return zfail(c, err, MCRT_E_DATA, "the local header flags 0x%04x disagree with the "
                     "central directory's 0x%04x", flags, cd_flags);
    uint64_t after = h + LOCAL_SIZE;
    if (cd_off - after < (uint64_t)nl + el)
        return zfail(c, err, MCRT_E_DATA, "the local header at byte %" PRIu64 " (name %u bytes, "
                     "extra %u bytes) runs into the central directory at byte %" PRIu64, h, nl,
                     el, cd_off);
    if (nl != cd->name_len || memcmp(z->base + after, cd->name, nl) != 0) {
        char q[CKPT_QUOTE_SIZE];
        return zfail(c, err, MCRT_E_DATA, "the local header at byte %" PRIu64 " names '%s'", h,
                     ckpt_quote(q, sizeof q, (const char *)z->base + after, nl));
    }
    mcrt_status s = apply_zip64(c, "local header", z->base + after + nl, el, &usize, &csize, NULL,
                                NULL, err);
    if (s != MCRT_OK)
        return s;
    bool dd = (flags & 8u) != 0;
    if (!(crc == cd->crc32 || (dd && crc == 0)))
        return zfail(c, err, MCRT_E_DATA, "CRC mismatch: the local header says 0x%08" PRIx32
                     ", the central directory 0x%08" PRIx32, crc, cd->crc32);
    if (!((usize == cd->size && csize == cd->size) || (dd && usize == 0 && csize == 0)))
        return zfail(c, err, MCRT_E_DATA, "size mismatch: the local header says %" PRIu64
                     " bytes (%" PRIu64 " compressed), the central directory %" PRIu64, usize,
                     csize, cd->size);
    uint64_t d = after + nl + el;
    if (cd->size > cd_off - d)
        return zfail(c, err, MCRT_E_DATA, "data [%" PRIu64 ", +%" PRIu64 ") runs past the start of "
                     "the central directory at byte %" PRIu64 " (truncated archive or bad size)",
                     d, cd->size, cd_off);
    uint64_t end = d + cd->size;
    if (dd) {
        uint64_t dl = match_descriptor(z, end, cd_off, cd);
        if (dl == 0)
            return zfail(c, err, MCRT_E_DATA, "no data descriptor matching the central directory "
                         "(CRC 0x%08" PRIx32 ", %" PRIu64 " bytes) after the data, at byte "
                         "%" PRIu64,
                         cd->crc32, cd->size, end);
        end += dl;
    }
    *data_off = d;
    span->b = h;
    span->e = end;
    return MCRT_OK;
}

static mcrt_status read_central(zctx *c, const zend *end, ckpt_err *err)
{
    zip_archive *z = c->z;
    if (end->cd_off > end->cd_limit || end->cd_size > end->cd_limit - end->cd_off)
        return zfail(c, err, MCRT_E_DATA, "the central directory [%" PRIu64 ", +%" PRIu64 ") is "
                     "out of range (it must end by byte %" PRIu64 "; truncated archive or bad "
                     "offset)", end->cd_off, end->cd_size, end->cd_limit);
    if (end->entries > ZIP_MAX_ENTRIES)
        return zfail(c, err, MCRT_E_DATA, "%" PRIu64 " entries is more than the limit (%u)",
                     end->entries, ZIP_MAX_ENTRIES);
    if (end->entries * CENTRAL_SIZE > end->cd_size)
        return zfail(c, err, MCRT_E_DATA, "%" PRIu64 " entries cannot fit in a central directory "
                     "of %" PRIu64 " bytes", end->entries, end->cd_size);
    size_t n = (size_t)end->entries;
    /* names: at most cd_size bytes plus a NUL each */
    z->e = calloc(n ? n : 1, sizeof *z->e);
    z->sorted = calloc(n ? n : 1, sizeof *z->sorted);
    z->names = malloc((size_t)end->cd_size + n + 1);
    zspan *spans = calloc(n ? n : 1, sizeof *spans);
    size_t *tmp = calloc(n ? n : 1, sizeof *tmp);
    mcrt_status s = MCRT_OK;
    if (z->e == NULL || z->sorted == NULL || z->names == NULL || spans == NULL || tmp == NULL) {
        s = zfail(c, err, MCRT_E_NOMEM, "out of memory reading %zu entries", n);
        goto done;
    }
    const unsigned char *cd = z->base + end->cd_off;
    uint64_t pos = 0, name_pos = 0;
    for (size_t i = 0; i < n; i++) {
        c->qn[0] = '\0';
        zip_entry *e = &z->e[i];
        if (end->cd_size - pos < CENTRAL_SIZE) {
            s = zfail(c, err, MCRT_E_DATA, "central directory entry %zu of %zu runs past the "
                      "central directory's end (%" PRIu64 " bytes)", i + 1, n, end->cd_size);
            goto done;
        }
        const unsigned char *p = cd + pos;
        if (rd32(p) != SIG_CENTRAL) {
            s = zfail(c, err, MCRT_E_DATA, "central directory entry %zu of %zu (byte %" PRIu64
                      "): bad signature 0x%08" PRIx32, i + 1, n, end->cd_off + pos, rd32(p));
            goto done;
        }
        uint16_t flags = rd16(p + 8), method = rd16(p + 10);
        uint32_t crc = rd32(p + 16);
        uint64_t csize = rd32(p + 20), usize = rd32(p + 24);
        uint16_t nl = rd16(p + 28), el = rd16(p + 30), cl = rd16(p + 32);
        uint32_t disk = rd16(p + 34);
        uint64_t hoff = rd32(p + 42);
        if (end->cd_size - pos - CENTRAL_SIZE < (uint64_t)nl + el + cl) {
            s = zfail(c, err, MCRT_E_DATA, "central directory entry %zu of %zu (name %u, extra %u, "
                      "comment %u bytes) runs past the central directory's end", i + 1, n, nl, el,
                      cl);
            goto done;
        }
        const char *name = (const char *)p + CENTRAL_SIZE;
        ckpt_quote(c->qn, sizeof c->qn, name, nl);
        if (nl == 0) {
            snprintf(c->qn, sizeof c->qn, "#%zu", i + 1);
            s = zfail(c, err, MCRT_E_DATA, "the name is empty");
            goto done;
        }
        if (nl > ZIP_MAX_NAME) {
            s = zfail(c, err, MCRT_E_DATA, "the name is %u bytes, more than the limit (%u)", nl,
                      ZIP_MAX_NAME);
            goto done;
        }
        if (memchr(name, '\0', nl) != NULL) {
            s = zfail(c, err, MCRT_E_DATA, "the name holds a NUL character");
            goto done;
        }
        s = apply_zip64(c, "central directory entry", p + CENTRAL_SIZE + nl, el, &usize, &csize,
                        &hoff, &disk, err);
        if (s != MCRT_OK)
            goto done;
        if (flags & 1u) {
            s = zfail(c, err, MCRT_E_UNSUPPORTED, "the entry is encrypted; mcrt reads plain "
                      "stored entries only");
            goto done;
        }
        if (method != 0) {
            s = zfail(c, err, MCRT_E_UNSUPPORTED, "the entry is compressed (%s, method %u); "
                      "torch.save stores entries uncompressed and mcrt reads stored entries only",
                      method_name(method), method);
            goto done;
        }
        if (disk != 0) {
            s = zfail(c, err, MCRT_E_UNSUPPORTED, "the entry starts on disk %" PRIu32 " (a "
                      "multi-disk archive)", disk);
            goto done;
        }
        if (csize != usize) {
            s = zfail(c, err, MCRT_E_DATA, "size mismatch: a stored entry of %" PRIu64 " bytes "
                      "with a compressed size of %" PRIu64, usize, csize);
            goto done;
        }
        if (usize > ZIP_MAX_ENTRY_SIZE) {
            s = zfail(c, err, MCRT_E_DATA, "the entry is %" PRIu64 " bytes, more than the limit "
                      "(2^40)", usize);
            goto done;
        }
        memcpy(z->names + name_pos, name, nl);
        z->names[name_pos + nl] = '\0';
        e->name = z->names + name_pos;
        e->name_len = nl;
        name_pos += (uint64_t)nl + 1;
        e->header_offset = hoff;
        e->size = usize;
        e->crc32 = crc;
        s = read_local(c, e, flags, method, end->cd_off, &e->offset, &spans[i], err);
        if (s != MCRT_OK)
            goto done;
        e->data = z->base + e->offset;
        spans[i].idx = i;
        pos += CENTRAL_SIZE + (uint64_t)nl + el + cl;
    }
    c->qn[0] = '\0';
    if (pos != end->cd_size) {
        s = zfail(c, err, MCRT_E_DATA, "the central directory is %" PRIu64 " bytes, but its %zu "
                  "entries take %" PRIu64, end->cd_size, n, pos);
        goto done;
    }
    /* names unique */
    for (size_t i = 0; i < n; i++)
        z->sorted[i] = i;
    merge_sort(z->e, z->sorted, tmp, n);
    for (size_t i = 1; i < n; i++)
        if (cmp_entries(&z->e[z->sorted[i - 1]], &z->e[z->sorted[i]]) == 0) {
            const zip_entry *e = &z->e[z->sorted[i]];
            ckpt_quote(c->qn, sizeof c->qn, e->name, e->name_len);
            s = zfail(c, err, MCRT_E_DATA, "the name appears twice in the central directory");
            goto done;
        }
    /* no overlaps */
    if (n > 1) {
        qsort(spans, n, sizeof *spans, cmp_span);
        for (size_t i = 1; i < n; i++)
            if (spans[i].b < spans[i - 1].e) {
                const zip_entry *a = &z->e[spans[i - 1].idx], *b = &z->e[spans[i].idx];
                char qa[CKPT_QUOTE_SIZE];
                ckpt_quote(c->qn, sizeof c->qn, b->name, b->name_len);
                s = zfail(c, err, MCRT_E_DATA, "its bytes [%" PRIu64 ", %" PRIu64 ") overlap "
                          "entry '%s' [%" PRIu64 ", %" PRIu64 ")", spans[i].b, spans[i].e,
                          ckpt_quote(qa, sizeof qa, a->name, a->name_len), spans[i - 1].b,
                          spans[i - 1].e);
                goto done;
            }
    }
done:
    free(spans);
    free(tmp);
    if (s == MCRT_OK)
        z->n = n;
    return s;
}

/* ---- the API ------------------------------------------------------------- */

mcrt_status zip_open(const void *data, size_t len, const char *label, zip_archive **out,
                     ckpt_err *err)
{
    *out = NULL;
    if (label == NULL)
        label = "(zip)";
    zip_archive *z = calloc(1, sizeof *z);
    if (z == NULL)
        return ckpt_fail(err, MCRT_E_NOMEM, "%s: out of memory", label);
    z->base = data;
    z->len = data != NULL ? len : 0;
    z->label = strdup(label);
    if (z->label == NULL) {
        free(z);
        return ckpt_fail(err, MCRT_E_NOMEM, "%s: out of memory", label);
    }
    ckpt_quote(z->qlabel, sizeof z->qlabel, label, strlen(label));
    zctx c = {.z = z};
    zend end;
    mcrt_status s = read_end(&c, &end, err);
    if (s == MCRT_OK)
        s = read_central(&c, &end, err);
    if (s != MCRT_OK) {
        zip_close(z);
        return s;
    }
    *out = z;
    return MCRT_OK;
}

void zip_close(zip_archive *z)
{
    if (z == NULL)
        return;
    free(z->e);
    free(z->sorted);
    free(z->names);
    free(z->label);
    free(z);
}

const char *zip_label(const zip_archive *z)
{
    return z->label;
}

size_t zip_count(const zip_archive *z)
{
    return z->n;
}

const zip_entry *zip_at(const zip_archive *z, size_t i)
{
    return i < z->n ? &z->e[i] : NULL;
}

static const zip_entry *find_n(const zip_archive *z, const char *name, size_t len)
{
    zip_entry key = {.name = name, .name_len = len};
    size_t lo = 0, hi = z->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const zip_entry *e = &z->e[z->sorted[mid]];
        int r = cmp_entries(e, &key);
        if (r == 0)
            return e;
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const zip_entry *zip_find(const zip_archive *z, const char *name)
{
    return find_n(z, name, strlen(name));
}

mcrt_status zip_lookup(const zip_archive *z, const char *name, const zip_entry **out,
                       ckpt_err *err)
{
    *out = zip_find(z, name);
    if (*out != NULL)
        return MCRT_OK;
    char q[CKPT_QUOTE_SIZE];
    return ckpt_fail(err, MCRT_E_NOTFOUND, "%s: no entry '%s' in the archive", z->qlabel,
                     ckpt_quote(q, sizeof q, name, strlen(name)));
}

mcrt_status zip_torch_prefix(const zip_archive *z, const char **prefix, size_t *len,
                             ckpt_err *err)
{
    if (z->n == 0)
        return ckpt_fail(err, MCRT_E_DATA, "%s: the archive is empty (torch.save writes "
                         "<folder>/data.pkl)", z->qlabel);
    const zip_entry *e = &z->e[0];
    const char *slash = memchr(e->name, '/', e->name_len);
    if (slash == NULL || slash == e->name) {
        char q[CKPT_QUOTE_SIZE];
        return ckpt_fail(err, MCRT_E_DATA, "%s: the first entry '%s' is not in a folder "
                         "(torch.save puts every record in one top-level folder)", z->qlabel,
                         ckpt_quote(q, sizeof q, e->name, e->name_len));
    }
    *prefix = e->name;
    *len = (size_t)(slash - e->name);
    return MCRT_OK;
}

mcrt_status zip_torch_record(const zip_archive *z, const char *record, const zip_entry **out,
                             ckpt_err *err)
{
    *out = NULL;
    const char *pre;
    size_t pl;
    mcrt_status s = zip_torch_prefix(z, &pre, &pl, err);
    if (s != MCRT_OK)
        return s;
    size_t rl = strlen(record);
    char small[256];
    char *full = pl + 1 + rl + 1 <= sizeof small ? small : malloc(pl + 1 + rl + 1);
    if (full == NULL)
        return ckpt_fail(err, MCRT_E_NOMEM, "%s: out of memory", z->qlabel);
    memcpy(full, pre, pl);
    full[pl] = '/';
    memcpy(full + pl + 1, record, rl + 1);
    *out = find_n(z, full, pl + 1 + rl);
    if (*out == NULL) {
        char q[CKPT_QUOTE_SIZE];
        s = ckpt_fail(err, MCRT_E_NOTFOUND, "%s: no entry '%s' in the archive", z->qlabel,
                      ckpt_quote(q, sizeof q, full, pl + 1 + rl));
    }
    if (full != small)
        free(full);
    return s;
}

mcrt_status zip_verify(const zip_archive *z, const zip_entry *e, ckpt_err *err)
{
    uint32_t got = zip_crc32(0, e->data, (size_t)e->size);
    if (got == e->crc32)
        return MCRT_OK;
    char q[CKPT_QUOTE_SIZE];
    return ckpt_fail(err, MCRT_E_DATA, "%s: entry '%s': CRC-32 mismatch (the archive records "
                     "0x%08" PRIx32 ", the data has 0x%08" PRIx32 "): the file is corrupt",
                     z->qlabel, ckpt_quote(q, sizeof q, e->name, e->name_len), e->crc32, got);
}
