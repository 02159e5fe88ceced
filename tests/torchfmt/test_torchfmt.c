/*
 * tests/torchfmt/test_torchfmt.c: the torch.save container readers,
 * core/checkpoint/zip.c (strict ZIP) and pickle.c (restricted pickle).
 *
 *   test_torchfmt
 *       ZIP: CRC-32 vectors; archives from a small writer here (torch's
 *       layout: data descriptors, "FB" padding, zip64 records; plain; zip64
 *       everywhere; comments; empty; embedded at an offset) read back
 *       exactly; a table of damaged archives (status and message parts);
 *       every truncation of an archive refused.
 *       Pickle: a table of hand-written pickles (every opcode, protocols 0
 *       to 5) with their repr or their refusal; code-running globals refused
 *       naming the global; bombs (deep nesting, huge memo indices, billion
 *       laughs, huge lengths, heavy keys) and every limit; every truncation
 *       of a pickle refused; a torch-like archive built here resolved to
 *       its tensor bytes, and the resolver's errors.
 *   test_torchfmt --fixtures DIR STAMP
 *       make_torch_fixtures.py's files (torch.save, pickle.dumps, zipfile):
 *       every value compared with expect.json (tensors through the archive,
 *       element by element along their strides), the Megatron checkpoint
 *       read as a loader would, the evil pickles refused (and nothing run),
 *       truncations refused. Exits 77 when the stamp says torch is missing.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint/json.h"
#include "checkpoint/pickle.h"
#include "checkpoint/zip.h"

#if defined(__GNUC__) || defined(__clang__)
#define TF_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define TF_PRINTF(a, b)
#endif

/* ---- a byte buffer ----------------------------------------------------------- */

typedef struct bb {
    unsigned char *p;
    size_t n, cap;
} bb;

static void bb_put(bb *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap * 2 : 256;
        while (c < b->n + n)
            c *= 2;
        b->p = realloc(b->p, c);
        ck_assert_ptr_nonnull(b->p);
        b->cap = c;
    }
    if (n > 0)
        memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void bb_str(bb *b, const char *s)
{
    bb_put(b, s, strlen(s));
}

/* In hot loops: Check's ck_assert writes to its pipe even on success. */
#define TF_CHECK(cond, ...)                                                                       \
    do {                                                                                          \
        if (!(cond))                                                                              \
            ck_abort_msg(__VA_ARGS__);                                                            \
    } while (0)

/* A literal, NUL bytes included. */
#define BBL(b, lit) bb_put((b), (lit), sizeof(lit) - 1)

static void bb_u8(bb *b, unsigned v)
{
    unsigned char c = (unsigned char)v;
    bb_put(b, &c, 1);
}

static void bb_le(bb *b, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        bb_u8(b, (unsigned)(v >> (8 * i)) & 0xff);
}

static void wr_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Message checks: status, one line, the label and every substring. */
static void expect_msg(mcrt_status got, const ckpt_err *err, mcrt_status want, const char *label,
                       const char *const *parts, size_t n_parts, const char *what)
{
    ck_assert_msg(got == want, "%s: status %d, expected %d (message: %s)", what, got, want,
                  err->msg);
    if (want == MCRT_OK)
        return;
    ck_assert_int_eq(err->status, want);
    ck_assert_msg(strchr(err->msg, '\n') == NULL, "%s: message has a newline: %s", what,
                  err->msg);
    if (label != NULL)
        ck_assert_msg(strstr(err->msg, label) != NULL, "%s: message does not name %s: %s", what,
                      label, err->msg);
    for (size_t i = 0; i < n_parts; i++)
        if (parts[i] != NULL)
            ck_assert_msg(strstr(err->msg, parts[i]) != NULL, "%s: message lacks \"%s\": %s",
                          what, parts[i], err->msg);
}

/* ---- a small ZIP writer ------------------------------------------------------- */

typedef struct zent {
    const char *name;
    size_t name_len;   /* 0: strlen(name) */
    const void *data;
    size_t len;
} zent;

typedef struct zopt {
    bool descriptor;   /* flag bit 3, zero CRC and sizes locally, a descriptor after the data */
    bool desc_nosig;   /* the descriptor without its signature */
    bool zip64;        /* zip64 extra fields (placeholders in the 32-bit fields) */
    bool eocd64;       /* a zip64 end record and locator */
    bool placeholders; /* the classic end record holds 0xFFFF / 0xFFFFFFFF */
    bool pad;          /* torch's "FB" extra field: data on 64-byte boundaries */
    const char *comment;
} zopt;

typedef struct zinfo {
    size_t lh[8];      /* local header offsets */
    size_t data[8];    /* data offsets */
    size_t ch[8];      /* central header offsets */
    size_t cd, cd_size, eocd, eocd64, locator;
} zinfo;

static uint32_t ref_crc(const void *d, size_t n)
{
    const unsigned char *p = d;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
    }
    return ~c;
}

static unsigned char *zwrite(const zent *e, size_t n, const zopt *o, size_t *len, zinfo *inf)
{
    ck_assert_uint_le(n, 8);
    bb b = {0};
    zinfo tmp;
    if (inf == NULL)
        inf = &tmp;
    memset(inf, 0, sizeof *inf);
    uint16_t flags = (uint16_t)(0x0800 | (o->descriptor ? 8 : 0));
    for (size_t i = 0; i < n; i++) {
        size_t nl = e[i].name_len ? e[i].name_len : strlen(e[i].name);
        uint32_t crc = ref_crc(e[i].data, e[i].len);
        inf->lh[i] = b.n;
        bb_le(&b, 0x04034b50u, 4);
        bb_le(&b, o->zip64 ? 45 : 20, 2);
        bb_le(&b, flags, 2);
        bb_le(&b, 0, 2);
        bb_le(&b, 0, 2);
        bb_le(&b, 0x21, 2);
        bb_le(&b, o->descriptor ? 0 : crc, 4);
        uint64_t sz = o->descriptor ? 0 : e[i].len;
        bb_le(&b, o->zip64 ? 0xFFFFFFFFu : sz, 4);
        bb_le(&b, o->zip64 ? 0xFFFFFFFFu : sz, 4);
        bb_le(&b, nl, 2);
        size_t el = o->zip64 ? 20 : 0;
        size_t base = b.n + 2 + nl + el;
        size_t padn = 0;
        if (o->pad) {
            padn = (64 - (base + 4) % 64) % 64;
            el += 4 + padn;
        }
        bb_le(&b, el, 2);
        bb_put(&b, e[i].name, nl);
        if (o->zip64) {
            bb_le(&b, 1, 2);
            bb_le(&b, 16, 2);
            bb_le(&b, sz, 8);
            bb_le(&b, sz, 8);
        }
        if (o->pad) {
            BBL(&b, "FB");
            bb_le(&b, padn, 2);
            for (size_t k = 0; k < padn; k++)
                bb_u8(&b, 'Z');
        }
        inf->data[i] = b.n;
        bb_put(&b, e[i].data, e[i].len);
        if (o->descriptor) {
            if (!o->desc_nosig)
                bb_le(&b, 0x08074b50u, 4);
            bb_le(&b, crc, 4);
            bb_le(&b, e[i].len, o->zip64 ? 8 : 4);
            bb_le(&b, e[i].len, o->zip64 ? 8 : 4);
        }
    }
    inf->cd = b.n;
    for (size_t i = 0; i < n; i++) {
        size_t nl = e[i].name_len ? e[i].name_len : strlen(e[i].name);
        inf->ch[i] = b.n;
        bb_le(&b, 0x02014b50u, 4);
        bb_le(&b, 0x031e, 2);
        bb_le(&b, o->zip64 ? 45 : 20, 2);
        bb_le(&b, flags, 2);
        bb_le(&b, 0, 2);
        bb_le(&b, 0, 2);
        bb_le(&b, 0x21, 2);
        bb_le(&b, ref_crc(e[i].data, e[i].len), 4);
        bb_le(&b, o->zip64 ? 0xFFFFFFFFu : e[i].len, 4);
        bb_le(&b, o->zip64 ? 0xFFFFFFFFu : e[i].len, 4);
        bb_le(&b, nl, 2);
        bb_le(&b, o->zip64 ? 28 : 0, 2);
        bb_le(&b, 0, 2);
        bb_le(&b, 0, 2);
        bb_le(&b, 0, 2);
        bb_le(&b, 0, 4);
        bb_le(&b, o->zip64 ? 0xFFFFFFFFu : inf->lh[i], 4);
        bb_put(&b, e[i].name, nl);
        if (o->zip64) {
            bb_le(&b, 1, 2);
            bb_le(&b, 24, 2);
            bb_le(&b, e[i].len, 8);
            bb_le(&b, e[i].len, 8);
            bb_le(&b, inf->lh[i], 8);
        }
    }
    inf->cd_size = b.n - inf->cd;
    if (o->eocd64) {
        inf->eocd64 = b.n;
        bb_le(&b, 0x06064b50u, 4);
        bb_le(&b, 44, 8);
        bb_le(&b, 0x031e, 2);
        bb_le(&b, 45, 2);
        bb_le(&b, 0, 4);
        bb_le(&b, 0, 4);
        bb_le(&b, n, 8);
        bb_le(&b, n, 8);
        bb_le(&b, inf->cd_size, 8);
        bb_le(&b, inf->cd, 8);
        inf->locator = b.n;
        bb_le(&b, 0x07064b50u, 4);
        bb_le(&b, 0, 4);
        bb_le(&b, inf->eocd64, 8);
        bb_le(&b, 1, 4);
    }
    inf->eocd = b.n;
    bool ph = o->placeholders;
    bb_le(&b, 0x06054b50u, 4);
    bb_le(&b, 0, 2);
    bb_le(&b, 0, 2);
    bb_le(&b, ph ? 0xFFFF : n, 2);
    bb_le(&b, ph ? 0xFFFF : n, 2);
    bb_le(&b, ph ? 0xFFFFFFFFu : inf->cd_size, 4);
    bb_le(&b, ph ? 0xFFFFFFFFu : inf->cd, 4);
    size_t cl = o->comment ? strlen(o->comment) : 0;
    bb_le(&b, cl, 2);
    if (cl > 0)
        bb_put(&b, o->comment, cl);
    *len = b.n;
    return b.p;
}

static const char pkl_bytes[] = "\x80\x02}q\x00X\x01\x00\x00\x00" "aK\x01s.";
static unsigned char data0[100];

static void three_entries(zent e[3])
{
    for (size_t i = 0; i < sizeof data0; i++)
        data0[i] = (unsigned char)(i * 7 + 1);
    e[0] = (zent){.name = "archive/data.pkl", .data = pkl_bytes, .len = sizeof pkl_bytes - 1};
    e[1] = (zent){.name = "archive/data/0", .data = data0, .len = sizeof data0};
    e[2] = (zent){.name = "archive/version", .data = "3\n", .len = 2};
}

static const zopt torch_style = {.descriptor = true, .pad = true, .eocd64 = true};
static const zopt plain_style = {0};
static const zopt zip64_style = {.descriptor = true, .zip64 = true, .eocd64 = true,
                                 .placeholders = true, .pad = true};

/* Open and compare with what was written. */
static void check_archive(const unsigned char *buf, size_t len, const zent *e, size_t n,
                          const char *what)
{
    zip_archive *z = NULL;
    ckpt_err err;
    memset(&err, 0, sizeof err);
    mcrt_status s = zip_open(buf, len, what, &z, &err);
    ck_assert_msg(s == MCRT_OK, "%s: %s", what, err.msg);
    ck_assert_str_eq(zip_label(z), what);
    ck_assert_uint_eq(zip_count(z), n);
    ck_assert_ptr_null(zip_at(z, n));
    for (size_t i = 0; i < n; i++) {
        const zip_entry *ze = zip_at(z, i);
        size_t nl = e[i].name_len ? e[i].name_len : strlen(e[i].name);
        ck_assert_uint_eq(ze->name_len, nl);
        ck_assert_int_eq(memcmp(ze->name, e[i].name, nl), 0);
        ck_assert_int_eq(ze->name[nl], '\0');
        ck_assert_uint_eq(ze->size, e[i].len);
        ck_assert_ptr_eq(ze->data, buf + ze->offset);
        ck_assert(e[i].len == 0 || memcmp(ze->data, e[i].data, e[i].len) == 0);
        ck_assert_uint_eq(ze->crc32, ref_crc(e[i].data, e[i].len));
        ck_assert_int_eq(zip_verify(z, ze, &err), MCRT_OK);
        ck_assert_ptr_eq(zip_find(z, ze->name), ze);
    }
    ck_assert_ptr_null(zip_find(z, "archive/nope"));
    const zip_entry *ze = (const zip_entry *)0x1;
    s = zip_lookup(z, "archive/nope", &ze, &err);
    const char *parts[] = {"no entry 'archive/nope' in the archive"};
    expect_msg(s, &err, MCRT_E_NOTFOUND, what, parts, 1, "lookup");
    ck_assert_ptr_null(ze);
    zip_close(z);
}

START_TEST(crc_vectors)
{
    ck_assert_uint_eq(zip_crc32(0, "123456789", 9), 0xCBF43926u);
    ck_assert_uint_eq(zip_crc32(0, "", 0), 0);
    ck_assert_uint_eq(zip_crc32(0, "a", 1), 0xE8B7BE43u);
    unsigned char buf[1031];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)(i * 131 + 7);
    /* every length and alignment, and in pieces */
    for (size_t off = 0; off < 5; off++)
        for (size_t n = 0; n + off <= sizeof buf; n += 97)
            ck_assert_uint_eq(zip_crc32(0, buf + off, n), ref_crc(buf + off, n));
    uint32_t c = 0;
    for (size_t i = 0; i < sizeof buf; i += 10)
        c = zip_crc32(c, buf + i, i + 10 <= sizeof buf ? 10 : sizeof buf - i);
    ck_assert_uint_eq(c, ref_crc(buf, sizeof buf));
}
END_TEST

START_TEST(zip_good)
{
    zent e[3];
    three_entries(e);
    const zopt styles[] = {
        torch_style, plain_style, zip64_style,
        {.descriptor = true, .desc_nosig = true},
        {.descriptor = true, .desc_nosig = true, .zip64 = true, .eocd64 = true},
        {.eocd64 = true},
        {.comment = "a comment with PK\x05\x06 inside"},
        {.descriptor = true, .pad = true, .eocd64 = true, .comment = "c"},
    };
    for (size_t k = 0; k < sizeof styles / sizeof styles[0]; k++) {
        size_t len;
        zinfo inf;
        unsigned char *buf = zwrite(e, 3, &styles[k], &len, &inf);
        char what[64];
        snprintf(what, sizeof what, "style%zu.zip", k);
        check_archive(buf, len, e, 3, what);
        if (styles[k].pad)
            for (size_t i = 0; i < 3; i++)
                ck_assert_uint_eq(inf.data[i] % 64, 0);
        /* torch's helpers */
        zip_archive *z;
        ckpt_err err;
        ck_assert_int_eq(zip_open(buf, len, what, &z, &err), MCRT_OK);
        const char *pre;
        size_t pl;
        ck_assert_int_eq(zip_torch_prefix(z, &pre, &pl, &err), MCRT_OK);
        ck_assert_uint_eq(pl, 7);
        ck_assert_int_eq(memcmp(pre, "archive", 7), 0);
        const zip_entry *ze;
        ck_assert_int_eq(zip_torch_record(z, "data/0", &ze, &err), MCRT_OK);
        ck_assert_ptr_eq(ze, zip_at(z, 1));
        mcrt_status s = zip_torch_record(z, "byteorder", &ze, &err);
        const char *parts[] = {"no entry 'archive/byteorder'"};
        expect_msg(s, &err, MCRT_E_NOTFOUND, what, parts, 1, "record");
        zip_close(z);
        /* a flipped data byte: the archive opens, the entry fails its CRC */
        buf[inf.data[1] + 5] ^= 0x10;
        ck_assert_int_eq(zip_open(buf, len, what, &z, &err), MCRT_OK);
        s = zip_verify(z, zip_at(z, 1), &err);
        const char *crc_parts[] = {"entry 'archive/data/0'", "CRC-32 mismatch", "corrupt"};
        expect_msg(s, &err, MCRT_E_DATA, what, crc_parts, 3, "crc");
        ck_assert_int_eq(zip_verify(z, zip_at(z, 0), &err), MCRT_OK);
        zip_close(z);
        free(buf);
    }
}
END_TEST

START_TEST(zip_small_cases)
{
    /* an empty archive, zero-length entries, one entry */
    size_t len;
    unsigned char *buf = zwrite(NULL, 0, &plain_style, &len, NULL);
    ck_assert_uint_eq(len, 22);
    check_archive(buf, len, NULL, 0, "empty.zip");
    zip_archive *z;
    ckpt_err err;
    ck_assert_int_eq(zip_open(buf, len, "empty.zip", &z, &err), MCRT_OK);
    const char *pre;
    size_t pl;
    mcrt_status s = zip_torch_prefix(z, &pre, &pl, &err);
    const char *parts[] = {"the archive is empty"};
    expect_msg(s, &err, MCRT_E_DATA, "empty.zip", parts, 1, "prefix");
    zip_close(z);
    free(buf);

    zent e[2] = {{.name = "x/empty", .data = "", .len = 0}, {.name = "top", .data = "t", .len = 1}};
    buf = zwrite(e, 2, &torch_style, &len, NULL);
    check_archive(buf, len, e, 2, "zero.zip");
    free(buf);
    zent f[1] = {{.name = "noslash", .data = "abc", .len = 3}};
    buf = zwrite(f, 1, &plain_style, &len, NULL);
    ck_assert_int_eq(zip_open(buf, len, "noslash.zip", &z, &err), MCRT_OK);
    s = zip_torch_prefix(z, &pre, &pl, &err);
    const char *p2[] = {"first entry 'noslash' is not in a folder"};
    expect_msg(s, &err, MCRT_E_DATA, "noslash.zip", p2, 1, "prefix");
    zip_close(z);
    free(buf);
    /* NULL data */
    s = zip_open(NULL, 0, "null", &z, &err);
    const char *p3[] = {"too short"};
    expect_msg(s, &err, MCRT_E_DATA, "null", p3, 1, "null");
    ck_assert_ptr_null(z);
}
END_TEST

/* An archive inside a larger buffer: offsets count from its start. */
START_TEST(zip_embedded)
{
    zent e[3];
    three_entries(e);
    size_t len;
    unsigned char *a = zwrite(e, 3, &torch_style, &len, NULL);
    size_t pre = 4099, post = 333;
    unsigned char *big = malloc(pre + len + post);
    memset(big, 0xAB, pre);
    memcpy(big + pre, a, len);
    memset(big + pre + len, 0xCD, post);
    check_archive(big + pre, len, e, 3, "x.distcp [4099, +len)");
    zip_archive *z = (zip_archive *)0x1;
    ckpt_err err;
    mcrt_status s = zip_open(big, pre + len + post, "whole.distcp", &z, &err);
    const char *parts[] = {"says its comment is 0 bytes, but 333 bytes follow"};
    expect_msg(s, &err, MCRT_E_DATA, "whole.distcp", parts, 1, "whole");
    ck_assert_ptr_null(z);
    /* the archive plus junk before it: its offsets are wrong for that range */
    s = zip_open(big, pre + len, "prefixed.distcp", &z, &err);
    ck_assert_int_eq(s, MCRT_E_DATA);
    free(big);
    free(a);
}
END_TEST

/* ---- damaged archives ----------------------------------------------------- */

typedef enum zbase { B_TORCH, B_PLAIN, B_ZIP64 } zbase;

typedef struct zbad {
    const char *label;
    zbase base;
    int patch;
    mcrt_status status;
    const char *expect[3];
} zbad;

enum {
    P_NOTZIP, P_SHORT, P_TRAILING, P_COMMENT_LEN, P_MULTIDISK, P_CD_PAST, P_CD_SIZE, P_COUNT,
    P_CD_SIG, P_LH_PAST, P_LH_SIG, P_LH_NAME, P_LH_SIZE, P_LH_CRC, P_CD_CRC, P_CD_SIZE_PLUS,
    P_CD_SIZE_HUGE, P_CSIZE, P_DEFLATE, P_BZIP2, P_ENCRYPTED, P_FLAGS, P_METHOD, P_DUP,
    P_EMPTY_NAME, P_NUL_NAME, P_LONG_NAME, P_OVERLAP, P_Z64_NOEXTRA, P_Z64_SHORT, P_Z64_DISAGREE,
    P_Z64_LOCATOR, P_Z64_SIG, P_Z64_DISKS, P_TOO_BIG, P_DESC, P_TOO_MANY, P_CD_DISK,
    P_Z64_RECSIZE
};

static const zbad zbads[] = {
    {"not a zip", B_PLAIN, P_NOTZIP, MCRT_E_DATA,
     {"no ZIP end-of-central-directory record in the last 300 bytes"}},
    {"too short", B_PLAIN, P_SHORT, MCRT_E_DATA, {"truncated archive: 10 bytes is too short"}},
    {"trailing bytes", B_TORCH, P_TRAILING, MCRT_E_DATA, {"says its comment is 0 bytes, but 5"}},
    {"comment length", B_PLAIN, P_COMMENT_LEN, MCRT_E_DATA, {"comment is 10 bytes, but 0"}},
    {"multi-disk", B_PLAIN, P_MULTIDISK, MCRT_E_UNSUPPORTED, {"multi-disk"}},
    {"central directory past the end", B_PLAIN, P_CD_PAST, MCRT_E_DATA,
     {"the central directory [", "is out of range"}},
    {"central directory size", B_PLAIN, P_CD_SIZE, MCRT_E_DATA,
     {"entry 3 of 3", "runs past the central directory's end"}},
    {"entry count", B_PLAIN, P_COUNT, MCRT_E_DATA, {"1000 entries cannot fit"}},
    {"central signature", B_PLAIN, P_CD_SIG, MCRT_E_DATA, {"entry 2 of 3", "bad signature"}},
    {"local header past the end", B_PLAIN, P_LH_PAST, MCRT_E_DATA,
     {"entry 'archive/data/0'", "local header offset 2147483632 is out of range"}},
    {"local signature", B_TORCH, P_LH_SIG, MCRT_E_DATA,
     {"entry 'archive/data/0'", "no local header at byte"}},
    {"local name", B_TORCH, P_LH_NAME, MCRT_E_DATA,
     {"entry 'archive/data/0'", "names 'archive/data/X'"}},
    {"local size", B_PLAIN, P_LH_SIZE, MCRT_E_DATA,
     {"entry 'archive/data/0'", "size mismatch: the local header says 101 bytes"}},
    {"local CRC", B_PLAIN, P_LH_CRC, MCRT_E_DATA, {"entry 'archive/data/0'", "CRC mismatch"}},
    {"central CRC (descriptor)", B_TORCH, P_CD_CRC, MCRT_E_DATA,
     {"entry 'archive/data/0'", "no data descriptor matching"}},
    {"central size + 1 (descriptor)", B_TORCH, P_CD_SIZE_PLUS, MCRT_E_DATA,
     {"entry 'archive/data/0'", "no data descriptor matching", "101 bytes"}},
    {"central size huge", B_TORCH, P_CD_SIZE_HUGE, MCRT_E_DATA,
     {"entry 'archive/data/0'", "runs past the start of the central directory"}},
    {"compressed size", B_PLAIN, P_CSIZE, MCRT_E_DATA,
     {"entry 'archive/data/0'", "size mismatch: a stored entry of 100 bytes"}},
    {"deflated", B_TORCH, P_DEFLATE, MCRT_E_UNSUPPORTED,
     {"entry 'archive/data/0'", "compressed (deflate, method 8)", "stored entries only"}},
    {"bzip2", B_PLAIN, P_BZIP2, MCRT_E_UNSUPPORTED, {"entry 'archive/data/0'", "bzip2"}},
    {"encrypted", B_PLAIN, P_ENCRYPTED, MCRT_E_UNSUPPORTED,
     {"entry 'archive/data/0'", "encrypted"}},
    {"flags differ", B_TORCH, P_FLAGS, MCRT_E_DATA,
     {"entry 'archive/data/0'", "local header flags 0x0800 disagree"}},
    {"method differs", B_PLAIN, P_METHOD, MCRT_E_DATA,
     {"entry 'archive/data/0'", "compression method 8, the central directory 0"}},
    {"duplicate names", B_PLAIN, P_DUP, MCRT_E_DATA,
     {"entry 'archive/x'", "appears twice in the central directory"}},
    {"empty name", B_PLAIN, P_EMPTY_NAME, MCRT_E_DATA, {"entry '#1'", "the name is empty"}},
    {"NUL in a name", B_PLAIN, P_NUL_NAME, MCRT_E_DATA,
     {"entry 'a\\x00b'", "holds a NUL character"}},
    {"name too long", B_PLAIN, P_LONG_NAME, MCRT_E_DATA,
     {"the name is 4097 bytes, more than the limit (4096)"}},
    {"overlapping entries", B_PLAIN, P_OVERLAP, MCRT_E_DATA,
     {"entry 'archive/inner'", "overlap entry 'archive/outer'"}},
    {"zip64 placeholder, no extra", B_PLAIN, P_Z64_NOEXTRA, MCRT_E_DATA,
     {"entry 'archive/data/0'", "zip64 placeholder (0xFFFFFFFF) but no zip64 extra field"}},
    {"zip64 extra too short", B_ZIP64, P_Z64_SHORT, MCRT_E_DATA,
     {"entry 'archive/data.pkl'", "lacks the compressed size"}},
    {"zip64 record disagrees", B_ZIP64, P_Z64_DISAGREE, MCRT_E_DATA,
     {"disagrees with the zip64 record"}},
    {"zip64 locator offset", B_ZIP64, P_Z64_LOCATOR, MCRT_E_DATA,
     {"zip64 end-of-central-directory record offset", "is out of range"}},
    {"zip64 record signature", B_ZIP64, P_Z64_SIG, MCRT_E_DATA,
     {"no zip64 end-of-central-directory record at byte"}},
    {"zip64 disks", B_ZIP64, P_Z64_DISKS, MCRT_E_UNSUPPORTED, {"multi-disk", "disk 0 of 2"}},
    {"entry over 2^40", B_ZIP64, P_TOO_BIG, MCRT_E_DATA,
     {"entry 'archive/data/0'", "more than the limit (2^40)"}},
    {"descriptor damaged", B_TORCH, P_DESC, MCRT_E_DATA,
     {"entry 'archive/version'", "no data descriptor matching"}},
    {"too many entries", B_ZIP64, P_TOO_MANY, MCRT_E_DATA,
     {"8388608 entries is more than the limit (4194304)"}},
    {"entry on disk 1", B_PLAIN, P_CD_DISK, MCRT_E_UNSUPPORTED,
     {"entry 'archive/data/0'", "starts on disk 1"}},
    {"zip64 record size", B_ZIP64, P_Z64_RECSIZE, MCRT_E_DATA,
     {"says it is 4096 bytes, which does not fit"}},
};

/* A base archive with patch p applied. */
static unsigned char *make_bad(const zbad *c, size_t *len)
{
    zent e[3];
    three_entries(e);
    zinfo inf;
    const zopt *o = c->base == B_TORCH ? &torch_style : c->base == B_ZIP64 ? &zip64_style
                                                                            : &plain_style;
    unsigned char *b = NULL;
    switch (c->patch) {
    case P_NOTZIP:
        *len = 300;
        b = malloc(*len);
        memset(b, 'x', *len);
        return b;
    case P_SHORT:
        *len = 10;
        b = calloc(1, *len);
        return b;
    case P_DUP: {
        zent d[2] = {{.name = "archive/x", .data = "1", .len = 1},
                     {.name = "archive/x", .data = "2", .len = 1}};
        return zwrite(d, 2, o, len, NULL);
    }
    case P_EMPTY_NAME: {
        zent d[1] = {{.name = "", .data = "1", .len = 1}};
        return zwrite(d, 1, o, len, NULL);
    }
    case P_NUL_NAME: {
        zent d[1] = {{.name = "a\0b", .name_len = 3, .data = "1", .len = 1}};
        return zwrite(d, 1, o, len, NULL);
    }
    case P_LONG_NAME: {
        static char nm[4098];
        memset(nm, 'n', 4097);
        nm[4097] = '\0';
        zent d[1] = {{.name = nm, .data = "1", .len = 1}};
        return zwrite(d, 1, o, len, NULL);
    }
    case P_OVERLAP: {
        /* the outer entry's data holds a complete local header and data for
         * "archive/inner"; the central directory lists both. */
        bb in = {0};
        const char *nm = "archive/inner";
        bb_le(&in, 0x04034b50u, 4);
        bb_le(&in, 20, 2);
        bb_le(&in, 0x0800, 2);
        bb_le(&in, 0, 2);
        bb_le(&in, 0, 2);
        bb_le(&in, 0x21, 2);
        bb_le(&in, ref_crc("in", 2), 4);
        bb_le(&in, 2, 4);
        bb_le(&in, 2, 4);
        bb_le(&in, strlen(nm), 2);
        bb_le(&in, 0, 2);
        bb_str(&in, nm);
        BBL(&in, "in");
        zent d[2] = {{.name = "archive/outer", .data = in.p, .len = in.n},
                     {.name = nm, .data = "in", .len = 2}};
        b = zwrite(d, 2, o, len, &inf);
        /* point entry 2 at the header inside entry 1's data */
        wr_le(b + inf.ch[1] + 42, inf.data[0], 4);
        /* and drop entry 2's own local header: make it part of nothing by
         * leaving it (unreferenced bytes are allowed) */
        free(in.p);
        return b;
    }
    default:
        break;
    }
    b = zwrite(e, 3, o, len, &inf);
    switch (c->patch) {
    case P_TRAILING:
        b = realloc(b, *len + 5);
        memset(b + *len, 0, 5);
        *len += 5;
        break;
    case P_COMMENT_LEN: wr_le(b + inf.eocd + 20, 10, 2); break;
    case P_MULTIDISK: wr_le(b + inf.eocd + 4, 1, 2); break;
    case P_CD_PAST: wr_le(b + inf.eocd + 16, *len, 4); break;
    case P_CD_SIZE: wr_le(b + inf.eocd + 12, inf.cd_size - 1, 4); break;
    case P_COUNT:
        wr_le(b + inf.eocd + 8, 1000, 2);
        wr_le(b + inf.eocd + 10, 1000, 2);
        break;
    case P_CD_SIG: b[inf.ch[1]] = 'X'; break;
    case P_LH_PAST: wr_le(b + inf.ch[1] + 42, 0x7FFFFFF0u, 4); break;
    case P_LH_SIG: b[inf.lh[1] + 1] = 'X'; break;
    case P_LH_NAME: b[inf.lh[1] + 30 + 13] = 'X'; break;
    case P_LH_SIZE: wr_le(b + inf.lh[1] + 22, 101, 4); break;
    case P_LH_CRC: b[inf.lh[1] + 14] ^= 1; break;
    case P_CD_CRC: b[inf.ch[1] + 16] ^= 1; break;
    case P_CD_SIZE_PLUS:
        wr_le(b + inf.ch[1] + 20, 101, 4);
        wr_le(b + inf.ch[1] + 24, 101, 4);
        break;
    case P_CD_SIZE_HUGE:
        wr_le(b + inf.ch[1] + 20, 0x7FFFFFFFu, 4);
        wr_le(b + inf.ch[1] + 24, 0x7FFFFFFFu, 4);
        break;
    case P_CSIZE: wr_le(b + inf.ch[1] + 20, 99, 4); break;
    case P_DEFLATE:
        wr_le(b + inf.ch[1] + 10, 8, 2);
        wr_le(b + inf.lh[1] + 8, 8, 2);
        break;
    case P_BZIP2:
        wr_le(b + inf.ch[1] + 10, 12, 2);
        wr_le(b + inf.lh[1] + 8, 12, 2);
        break;
    case P_ENCRYPTED:
        b[inf.ch[1] + 8] |= 1;
        b[inf.lh[1] + 6] |= 1;
        break;
    case P_FLAGS: wr_le(b + inf.lh[1] + 6, 0x0800, 2); break;
    case P_METHOD: wr_le(b + inf.lh[1] + 8, 8, 2); break;
    case P_Z64_NOEXTRA: wr_le(b + inf.ch[1] + 24, 0xFFFFFFFFu, 4); break;
    case P_Z64_SHORT: wr_le(b + inf.ch[0] + 46 + 16 + 2, 8, 2); break;
    case P_Z64_DISAGREE: wr_le(b + inf.eocd + 10, 2, 2); break;
    case P_Z64_LOCATOR: wr_le(b + inf.locator + 8, *len, 8); break;
    case P_Z64_SIG: b[inf.eocd64] = 'X'; break;
    case P_Z64_DISKS: wr_le(b + inf.locator + 16, 2, 4); break;
    case P_TOO_BIG: {
        uint64_t big = (UINT64_C(1) << 40) + 1;
        size_t x = inf.ch[1] + 46 + 14 + 4; /* the zip64 field's data */
        wr_le(b + x, big, 8);
        wr_le(b + x + 8, big, 8);
        break;
    }
    case P_DESC: b[inf.data[2] + 2 + 4] ^= 0xff; break; /* the descriptor's CRC */
    case P_TOO_MANY:
        wr_le(b + inf.eocd64 + 24, UINT64_C(1) << 23, 8);
        wr_le(b + inf.eocd64 + 32, UINT64_C(1) << 23, 8);
        break;
    case P_CD_DISK: wr_le(b + inf.ch[1] + 34, 1, 2); break;
    case P_Z64_RECSIZE: wr_le(b + inf.eocd64 + 4, 4096, 8); break;
    default: ck_abort_msg("unknown patch %d", c->patch);
    }
    return b;
}

START_TEST(zip_bad_table)
{
    const zbad *c = &zbads[_i];
    size_t len;
    unsigned char *b = make_bad(c, &len);
    zip_archive *z = (zip_archive *)0x1;
    ckpt_err err;
    memset(&err, 0, sizeof err);
    mcrt_status s = zip_open(b, len, "bad.pt", &z, &err);
    expect_msg(s, &err, c->status, "bad.pt", c->expect, 3, c->label);
    ck_assert_ptr_null(z);
    free(b);
}
END_TEST

/* Every prefix of an archive is refused with a message naming it. */
START_TEST(zip_truncations)
{
    zent e[3];
    three_entries(e);
    const zopt *styles[] = {&torch_style, &plain_style, &zip64_style};
    for (size_t k = 0; k < 3; k++) {
        size_t len;
        unsigned char *b = zwrite(e, 3, styles[k], &len, NULL);
        for (size_t n = 0; n < len; n++) {
            unsigned char *cut = malloc(n ? n : 1);
            memcpy(cut, b, n);
            zip_archive *z = (zip_archive *)0x1;
            ckpt_err err;
            mcrt_status s = zip_open(cut, n, "cut.pt", &z, &err);
            TF_CHECK(s == MCRT_E_DATA && z == NULL && strstr(err.msg, "cut.pt") != NULL,
                     "style %zu cut at %zu: status %d (%s)", k, n, s, s ? err.msg : "opened");
            free(cut);
        }
        free(b);
    }
}
END_TEST

/* ---- pickles ------------------------------------------------------------------ */

typedef struct pcase {
    const char *label;
    const char *data;
    size_t len;
    mcrt_status status;
    const char *expect[3]; /* MCRT_OK: expect[0] is the repr; else message parts */
} pcase;

/* The table is generated from Python byte strings (every case written as
 * the pickle bytes; see the labels). */
static const pcase pcases[] = {
    {"BININT1",
     "\x80\x02K\x05.",
     5, MCRT_OK, {"5"}},
    {"BININT2",
     "M\xff\xff.",
     4, MCRT_OK, {"65535"}},
    {"BININT negative",
     "J\xfe\xff\xff\xff.",
     6, MCRT_OK, {"-2"}},
    {"INT text",
     "I42\n.",
     5, MCRT_OK, {"42"}},
    {"INT text negative",
     "I-7\n.",
     5, MCRT_OK, {"-7"}},
    {"INT 01 is True",
     "I01\n.",
     5, MCRT_OK, {"True"}},
    {"INT 00 is False",
     "I00\n.",
     5, MCRT_OK, {"False"}},
    {"INT past int64",
     "I9223372036854775808\n.",
     22, MCRT_OK, {"9223372036854775808"}},
    {"INT int64 min",
     "I-9223372036854775808\n.",
     23, MCRT_OK, {"-9223372036854775808"}},
    {"LONG text",
     "L-000123456789012345678901234567890L\n.",
     38, MCRT_OK, {"-123456789012345678901234567890"}},
    {"LONG text small",
     "L12L\n.",
     6, MCRT_OK, {"12"}},
    {"LONG1 zero",
     "\x80\x02\x8a\x00.",
     5, MCRT_OK, {"0"}},
    {"LONG1 -1",
     "\x80\x02\x8a\x01\xff.",
     6, MCRT_OK, {"-1"}},
    {"LONG1 2^63",
     "\x80\x02\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x80\x00.",
     14, MCRT_OK, {"9223372036854775808"}},
    {"LONG1 -2^63",
     "\x80\x02\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80.",
     13, MCRT_OK, {"-9223372036854775808"}},
    {"LONG1 -2^63-1",
     "\x80\x02\x8a\x09\xff\xff\xff\xff\xff\xff\xff\x7f\xff.",
     14, MCRT_OK, {"-9223372036854775809"}},
    {"LONG1 padded",
     "\x80\x02\x8a\x04\x05\x00\x00\x00.",
     9, MCRT_OK, {"5"}},
    {"LONG4 2^100",
     "\x80\x02\x8b\x0d\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x10.",
     21, MCRT_OK, {"1267650600228229401496703205376"}},
    {"NONE/NEWTRUE/NEWFALSE",
     "\x80\x02N\x88\x89\x87.",
     7, MCRT_OK, {"(None, True, False)"}},
    {"FLOAT text",
     "F2.5\n.",
     6, MCRT_OK, {"2.5"}},
    {"FLOAT text exponent",
     "F-1e-05\n.",
     9, MCRT_OK, {"-1e-05"}},
    {"FLOAT inf",
     "Finf\n.",
     6, MCRT_OK, {"inf"}},
    {"FLOAT -inf",
     "F-inf\n.",
     7, MCRT_OK, {"-inf"}},
    {"FLOAT nan",
     "Fnan\n.",
     6, MCRT_OK, {"nan"}},
    {"BINFLOAT",
     "G?\xb9\x99\x99\x99\x99\x99\x9a.",
     10, MCRT_OK, {"0.1"}},
    {"BINFLOAT 3.0",
     "G@\x08\x00\x00\x00\x00\x00\x00.",
     10, MCRT_OK, {"3.0"}},
    {"BINFLOAT 1e300",
     "G~7\xe4<\x88\x00u\x9c.",
     10, MCRT_OK, {"1e+300"}},
    {"BINUNICODE",
     "\x80\x02X\x03\x00\x00\x00" "abc.",
     11, MCRT_OK, {"'abc'"}},
    {"BINUNICODE UTF-8",
     "\x80\x02X\x0e\x00\x00\x00" "caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80.",
     22, MCRT_OK, {"'caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80'"}},
    {"SHORT_BINUNICODE",
     "\x80\x04\x8c\x01x.",
     6, MCRT_OK, {"'x'"}},
    {"BINUNICODE8",
     "\x80\x04\x8d\x02\x00\x00\x00\x00\x00\x00\x00hi.",
     14, MCRT_OK, {"'hi'"}},
    {"BINUNICODE with NUL",
     "X\x03\x00\x00\x00" "a\x00" "b.",
     9, MCRT_OK, {"'a\\x00b'"}},
    {"UNICODE raw escapes",
     "Vcaf\xe9 \\u2603 \\U0001f600 \\\\u0041 x\\y\n.",
     37, MCRT_OK, {"'caf\xc3\xa9 \xe2\x98\x83 \xf0\x9f\x98\x80 \\\\u0041 x\\y'"}},
    {"STRING quoted",
     "S'a\\nb\\x41\\101\\'\"'\n.",
     20, MCRT_OK, {"'a\\x0abAA'\"'"}},
    {"STRING double quotes",
     "S\"it's\"\n.",
     9, MCRT_OK, {"'it's'"}},
    {"BINSTRING",
     "T\x02\x00\x00\x00hi.",
     8, MCRT_OK, {"'hi'"}},
    {"SHORT_BINSTRING",
     "U\x02ok.",
     5, MCRT_OK, {"'ok'"}},
    {"SHORT_BINBYTES",
     "\x80\x03" "C\x02\x00\xff.",
     7, MCRT_OK, {"b'\\x00\\xff'"}},
    {"BINBYTES",
     "\x80\x03" "B\x03\x00\x00\x00" "abc.",
     11, MCRT_OK, {"b'abc'"}},
    {"BINBYTES8",
     "\x80\x04\x8e\x01\x00\x00\x00\x00\x00\x00\x00z.",
     13, MCRT_OK, {"b'z'"}},
    {"BYTEARRAY8",
     "\x80\x05\x96\x02\x00\x00\x00\x00\x00\x00\x00yz.",
     14, MCRT_OK, {"b'yz'"}},
    {"bytes via _codecs.encode",
     "\x80\x02" "c_codecs\nencode\nX\x05\x00\x00\x00\xc3\xa9\xc3\xbf\x00X\x06\x00\x00\x00l"
     "atin1\x86R.",
     42, MCRT_OK, {"b'\\xe9\\xff\\x00'"}},
    {"_codecs.encode utf-8",
     "c_codecs\nencode\n(X\x02\x00\x00\x00\xc3\xa9X\x05\x00\x00\x00utf-8tR.",
     37, MCRT_OK, {"b'\\xc3\\xa9'"}},
    {"empty bytes",
     "\x80\x02" "c__builtin__\nbytes\n)R.",
     24, MCRT_OK, {"b''"}},
    {"bytearray from str",
     "c__builtin__\nbytearray\n(X\x02\x00\x00\x00" "baX\x07\x00\x00\x00latin-1tR.",
     46, MCRT_OK, {"b'ba'"}},
    {"TUPLE",
     "(K\x01K\x02t.",
     7, MCRT_OK, {"(1, 2)"}},
    {"TUPLE1",
     "K\x01\x85.",
     4, MCRT_OK, {"(1,)"}},
    {"EMPTY_TUPLE",
     ").",
     2, MCRT_OK, {"()"}},
    {"LIST/APPENDS",
     "]q\x00(K\x01K\x02" "e.",
     10, MCRT_OK, {"[1, 2]"}},
    {"LIST opcode",
     "(K\x01K\x02l.",
     7, MCRT_OK, {"[1, 2]"}},
    {"APPEND",
     "]K\x03" "a.",
     5, MCRT_OK, {"[3]"}},
    {"DICT opcode",
     "(X\x01\x00\x00\x00" "aK\x01" "d.",
     11, MCRT_OK, {"{'a': 1}"}},
    {"SETITEMS",
     "}(X\x01\x00\x00\x00" "aK\x01X\x01\x00\x00\x00" "bK\x02u.",
     20, MCRT_OK, {"{'a': 1, 'b': 2}"}},
    {"SETITEM",
     "}X\x01\x00\x00\x00kNs.",
     10, MCRT_OK, {"{'k': None}"}},
    {"repeated key keeps its place",
     "}(K\x01K\x02K\x05K\x06K\x01K\x03u.",
     16, MCRT_OK, {"{1: 3, 5: 6}"}},
    {"True and 1.0 are the key 1",
     "}(K\x01K\x02\x88K\x03G?\xf0\x00\x00\x00\x00\x00\x00K\x04u.",
     22, MCRT_OK, {"{1: 4}"}},
    {"tuple keys",
     "}(K\x01K\x02\x86X\x01\x00\x00\x00t)X\x01\x00\x00\x00" "eu.",
     22, MCRT_OK, {"{(1, 2): 't', (): 'e'}"}},
    {"bytes, None, float keys",
     "\x80\x03}(C\x01kK\x01NK\x02G@\x04\x00\x00\x00\x00\x00\x00K\x03u.",
     25, MCRT_OK, {"{b'k': 1, None: 2, 2.5: 3}"}},
    {"EMPTY_SET/ADDITEMS",
     "\x80\x04\x8f(K\x01K\x02K\x01\x90.",
     12, MCRT_OK, {"{1, 2}"}},
    {"FROZENSET",
     "\x80\x04(K\x01K\x01\x91.",
     9, MCRT_OK, {"frozenset({1})"}},
    {"set via builtins.set",
     "\x80\x02" "c__builtin__\nset\n]q\x00(K\x01K\x02" "e\x85R.",
     31, MCRT_OK, {"{1, 2}"}},
    {"empty set repr",
     "\x80\x04\x8f.",
     4, MCRT_OK, {"set()"}},
    {"frozenset via REDUCE",
     "c__builtin__\nfrozenset\n((K\x07ltR.",
     31, MCRT_OK, {"frozenset({7})"}},
    {"memo BINPUT/BINGET",
     "]q\x00h\x00\x86.",
     7, MCRT_OK, {"([], [])"}},
    {"memo LONG_BINPUT/LONG_BINGET",
     "]r\x00\x01\x00\x00j\x00\x01\x00\x00\x86.",
     13, MCRT_OK, {"([], [])"}},
    {"memo PUT/GET text",
     "((lp0\ng0\nt.",
     11, MCRT_OK, {"([], [])"}},
    {"MEMOIZE",
     "\x80\x04]\x94" "0K\x01\x94" "0h\x00h\x01\x86.",
     15, MCRT_OK, {"([], 1)"}},
    {"FRAME",
     "\x80\x04\x95\x03\x00\x00\x00\x00\x00\x00\x00K\x07.",
     14, MCRT_OK, {"7"}},
    {"POP",
     "K\x01K\x02" "0.",
     6, MCRT_OK, {"1"}},
    {"POP of a MARK",
     "K\x01(0.",
     5, MCRT_OK, {"1"}},
    {"DUP",
     "K\x01" "2\x86.",
     5, MCRT_OK, {"(1, 1)"}},
    {"POP_MARK",
     "K\x01(K\x02K\x03" "1.",
     9, MCRT_OK, {"1"}},
    {"shared sub-list",
     "]q\x00(K\x01" "e0h\x00h\x00\x86.",
     14, MCRT_OK, {"([1], [1])"}},
    {"OrderedDict",
     "ccollections\nOrderedDict\n)R.",
     28, MCRT_OK, {"{}"}},
    {"OrderedDict of pairs",
     "ccollections\nOrderedDict\n](K\x01K\x02\x86K\x03K\x04\x86" "e\x85R.",
     41, MCRT_OK, {"{1: 2, 3: 4}"}},
    {"OrderedDict with _metadata",
     "\x80\x02" "ccollections\nOrderedDict\n)RX\x01\x00\x00\x00wK\x01s}X\x09\x00\x00\x00_m"
     "etadata}sb.",
     57, MCRT_OK, {"{'w': 1}"}},
    {"STACK_GLOBAL",
     "\x80\x04\x8c\x0b" "collections\x8c\x0bOrderedDict\x93)R.",
     32, MCRT_OK, {"{}"}},
    {"Namespace (protocol 2)",
     "\x80\x02" "cargparse\nNamespace\n)\x81}(X\x01\x00\x00\x00" "aK\x01X\x01\x00\x00\x00" "b"
     "Nub.",
     44, MCRT_OK, {"argparse.Namespace(a=1, b=None)"}},
    {"Namespace (protocol 0)",
     "ccopy_reg\n_reconstructor\n(cargparse\nNamespace\nc__builtin__\nobject\nNtR(dVx\nI1"
     "\nsb.",
     80, MCRT_OK, {"argparse.Namespace(x=1)"}},
    {"Namespace via copyreg.__newobj__",
     "ccopyreg\n__newobj__\ncargparse\nNamespace\n\x85R.",
     43, MCRT_OK, {"argparse.Namespace()"}},
    {"Namespace (NEWOBJ_EX)",
     "\x80\x04\x8c\x08" "argparse\x8c\x09Namespace\x93)}\x92.",
     28, MCRT_OK, {"argparse.Namespace()"}},
    {"INST",
     "(iargparse\nNamespace\n.",
     22, MCRT_OK, {"argparse.Namespace()"}},
    {"OBJ",
     "(cargparse\nNamespace\no.",
     23, MCRT_OK, {"argparse.Namespace()"}},
    {"torch dtype",
     "ctorch\nbfloat16\n.",
     17, MCRT_OK, {"torch.bfloat16"}},
    {"torch dtype alias",
     "ctorch\nhalf\n.",
     13, MCRT_OK, {"torch.float16"}},
    {"torch.Size",
     "ctorch\nSize\nK\x02K\x03\x86\x85R.",
     20, MCRT_OK, {"(2, 3)"}},
    {"torch.device",
     "ctorch\ndevice\nX\x04\x00\x00\x00" "cudaK\x00\x86R.",
     28, MCRT_OK, {"torch.device('cuda', 0)"}},
    {"enum by value",
     "cmegatron.core.enums\nModelType\nK\x01\x85R.",
     36, MCRT_OK, {"megatron.core.enums.ModelType(1,)"}},
    {"enum by name (Python 3.11+)",
     "c__builtin__\ngetattr\ncmegatron.core.transformer.enums\nAttnBackend\nX\x05\x00\x00"
     "\x00" "flash\x86R.",
     79, MCRT_OK, {"megatron.core.transformer.enums.AttnBackend.flash"}},
    {"BytesIO",
     "\x80\x02" "c_io\nBytesIO\n)\x81" "C\x03" "abcK\x00N\x87" "b.",
     28, MCRT_OK, {"_io.BytesIO(3 bytes)"}},
    {"empty BytesIO",
     "cio\nBytesIO\n)R.",
     15, MCRT_OK, {"_io.BytesIO(0 bytes)"}},
    {"numpy array",
     "\x80\x02" "cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" "C\x01" "b"
     "\x87R(K\x01K\x02\x85" "cnumpy\ndtype\nX\x02\x00\x00\x00u4\x89\x88\x87R(K\x03X\x01"
     "\x00\x00\x00<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89" "C\x08\x01\x00\x00"
     "\x00\x02\x00\x00\x00tb.",
     131, MCRT_OK, {"numpy.ndarray(numpy.ndarray, (0,), b'b')"}},
    {"numpy 2 module name",
     "cnumpy._core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" "C\x01" "b\x87R.",
     61, MCRT_OK, {"numpy.ndarray(numpy.ndarray, (0,), b'b')"}},
    {"a class as a value",
     "ccollections\nOrderedDict\n.",
     26, MCRT_OK, {"collections.OrderedDict"}},
    {"tensor",
     "\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloa"
     "tStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x06tQK\x00K\x02K\x03\x86K"
     "\x03K\x01\x86\x89" "ccollections\nOrderedDict\n)RtR.",
     130, MCRT_OK, {"tensor(float32, [2, 3], storage '0' offset 0 stride [3, 1])"}},
    {"tensor with metadata",
     "\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloa"
     "tStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x06tQK\x00K\x02K\x03\x86K"
     "\x03K\x01\x86\x89" "ccollections\nOrderedDict\n)R}tR.",
     131, MCRT_OK, {"tensor(float32, [2, 3], storage '0' offset 0 stride [3, 1])"}},
    {"scalar tensor",
     "\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloa"
     "tStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x06tQK\x05))\x89" "ccollecti"
     "ons\nOrderedDict\n)RtR.",
     122, MCRT_OK, {"tensor(float32, [], storage '0' offset 5 stride [])"}},
    {"empty tensor",
     "\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloa"
     "tStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x06tQK\x06K\x00K\x09\x86K"
     "\x03K\x01\x86\x89" "ccollections\nOrderedDict\n)RtR.",
     130, MCRT_OK, {"tensor(float32, [0, 9], storage '0' offset 6 stride [3, 1])"}},
    {"expanded tensor",
     "\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloa"
     "tStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x06tQK\x00K\x04K\x06\x86K"
     "\x00K\x01\x86\x89" "ccollections\nOrderedDict\n)RtR.",
     130, MCRT_OK, {"tensor(float32, [4, 6], storage '0' offset 0 stride [0, 1])"}},
    {"Parameter",
     "\x80\x02" "ctorch._utils\n_rebuild_parameter\nctorch._utils\n_rebuild_tensor_v2\n((X"
     "\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "c"
     "puK\x06tQK\x00K\x02K\x03\x86K\x03K\x01\x86\x89" "ccollections\nOrderedDict\n)RtR\x88" "c"
     "collections\nOrderedDict\n)R\x87R.",
     193, MCRT_OK, {"Parameter(float32, [2, 3], storage '0' offset 0 stride [3, 1])"}},
    {"storage shared by key",
     "\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00" "0X\x03"
     "\x00\x00\x00" "cpuK\x02tQ(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00"
     "\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x02tQ\x86.",
     106, MCRT_OK,
     {"(torch.FloatStorage(key '0', cpu, 2 elements), torch.FloatStorage(key '0', cpu, "
      "2 elements))"}},
    {"untyped storage",
     "\x80\x02(X\x07\x00\x00\x00storagectorch\nUntypedStorage\nX\x01\x00\x00\x00" "0X\x03"
     "\x00\x00\x00" "cpuK\x08tQ.",
     56, MCRT_OK, {"torch.UntypedStorage(key '0', cpu, 8 elements)"}},
    {"os.system",
     "cos\nsystem\n(S'touch /tmp/mcrt_pwned'\ntR.",
     40, MCRT_E_DATA, {"byte 0 (GLOBAL)", "global 'os.system' is not allowed", "never runs code"}},
    {"posix.system uncalled",
     "\x80\x02" "cposix\nsystem\n.",
     17, MCRT_E_DATA, {"global 'posix.system' is not allowed"}},
    {"builtins.eval",
     "c__builtin__\neval\n.",
     19, MCRT_E_DATA, {"global '__builtin__.eval' is not allowed"}},
    {"builtins.exec (STACK_GLOBAL)",
     "\x80\x04\x8c\x08" "builtins\x8c\x04" "exec\x93.",
     20, MCRT_E_DATA, {"(STACK_GLOBAL)", "global 'builtins.exec' is not allowed"}},
    {"subprocess.Popen",
     "csubprocess\nPopen\n.",
     19, MCRT_E_DATA, {"global 'subprocess.Popen' is not allowed"}},
    {"INST os.system",
     "(S'id'\nios\nsystem\n.",
     19, MCRT_E_DATA, {"(INST)", "global 'os.system' is not allowed"}},
    {"builtins.__import__",
     "cbuiltins\n__import__\n.",
     22, MCRT_E_DATA, {"global 'builtins.__import__' is not allowed"}},
    {"torch.load",
     "ctorch\nload\n.",
     13, MCRT_E_DATA, {"global 'torch.load' is not allowed"}},
    {"torch storage from bytes",
     "ctorch.storage\n_load_from_bytes\n.",
     33, MCRT_E_DATA, {"global 'torch.storage._load_from_bytes' is not allowed"}},
    {"numpy.load",
     "cnumpy\nload\n.",
     13, MCRT_E_DATA, {"global 'numpy.load' is not allowed"}},
    {"getattr of object",
     "c__builtin__\ngetattr\nc__builtin__\nobject\nX\x0e\x00\x00\x00__subclasses__\x86R.",
     63, MCRT_E_DATA,
     {"global 'builtins.getattr' is allowed only as getattr(<enum class>, '<member>')",
      "getattr(builtins.object, '__subclasses__')"}},
    {"getattr of a private member",
     "c__builtin__\ngetattr\ncmegatron.core.enums\nModelType\nX\x12\x00\x00\x00_value2memb"
     "er_map_\x86R.",
     78, MCRT_E_DATA, {"global 'builtins.getattr' is allowed only"}},
    {"getattr with 3 arguments",
     "c__builtin__\ngetattr\ncmegatron.core.enums\nModelType\nX\x01\x00\x00\x00xN\x87R.",
     62, MCRT_E_DATA, {"global 'builtins.getattr' is allowed only", "3 arguments"}},
    {"getattr of OrderedDict",
     "c__builtin__\ngetattr\nccollections\nOrderedDict\nX\x08\x00\x00\x00" "fromkeys\x86R.",
     62, MCRT_E_DATA, {"global 'builtins.getattr' is allowed only"}},
    {"reconstructor of a function",
     "ccopy_reg\n_reconstructor\n(ctorch._utils\n_rebuild_tensor_v2\nc__builtin__\nobject"
     "\nNtR.",
     83, MCRT_E_DATA, {"torch._utils._rebuild_tensor_v2 cannot be created with NEWOBJ"}},
    {"reconstructor with a base",
     "ccopy_reg\n_reconstructor\n(cargparse\nNamespace\ncargparse\nNamespace\nNtR.",
     70, MCRT_E_DATA, {"expects (class, builtins.object, None)"}},
    {"REDUCE on a dict",
     "}]R.",
     4, MCRT_E_DATA, {"(REDUCE)", "the callable is a dict"}},
    {"REDUCE with a list",
     "ccollections\nOrderedDict\n]R.",
     28, MCRT_E_DATA, {"the arguments of collections.OrderedDict are a list"}},
    {"calling a dtype",
     "ctorch\nfloat32\n)R.",
     18, MCRT_E_DATA, {"torch.float32 cannot be called"}},
    {"calling a storage type",
     "ctorch\nFloatStorage\n)R.",
     23, MCRT_E_DATA, {"torch.FloatStorage cannot be called"}},
    {"NEWOBJ of object",
     "\x80\x02" "c__builtin__\nobject\n)\x81.",
     25, MCRT_E_DATA, {"builtins.object cannot be created with NEWOBJ"}},
    {"NEWOBJ_EX with kwargs",
     "\x80\x04\x8c\x08" "argparse\x8c\x09Namespace\x93)}K\x01K\x02s\x92.",
     33, MCRT_E_DATA, {"keyword arguments"}},
    {"Namespace with arguments",
     "cargparse\nNamespace\nK\x01\x85R.",
     25, MCRT_E_DATA, {"argparse.Namespace called with 1 argument"}},
    {"OrderedDict(1)",
     "ccollections\nOrderedDict\nK\x01\x85R.",
     30, MCRT_E_DATA,
     {"collections.OrderedDict: expects no argument or a list of (key, value) pairs"}},
    {"_codecs.encode rot13",
     "c_codecs\nencode\n(X\x01\x00\x00\x00xX\x05\x00\x00\x00rot13tR.",
     36, MCRT_E_DATA, {"argument 2 (encoding) is a str, not 'latin1' or 'utf-8'"}},
    {"latin1 of a wide char",
     "c_codecs\nencode\n(X\x03\x00\x00\x00\xe2\x98\x83X\x06\x00\x00\x00latin1tR.",
     39, MCRT_E_DATA, {"past U+00FF"}},
    {"enum of a list",
     "cmegatron.core.enums\nModelType\n]\x85R.",
     35, MCRT_E_DATA, {"an enum is created from one value"}},
    {"BUILD on a list",
     "]}b.",
     4, MCRT_E_DATA, {"(BUILD)", "BUILD of a list with a dict is not supported"}},
    {"BUILD on a tensor",
     "\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloa"
     "tStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x06tQK\x00K\x02K\x03\x86K"
     "\x03K\x01\x86\x89" "ccollections\nOrderedDict\n)RtR}b.",
     132, MCRT_E_DATA, {"BUILD of a tensor"}},
    {"BUILD of BytesIO with junk",
     "c_io\nBytesIO\n)\x81K\x01" "b.",
     19, MCRT_E_DATA, {"BUILD of _io.BytesIO takes (bytes, position, dict or None)"}},
    {"EXT1",
     "\x80\x02\x82\x01.",
     5, MCRT_E_DATA, {"(EXT1)", "extension registry"}},
    {"EXT4",
     "\x80\x02\x84\x01\x00\x00\x00.",
     8, MCRT_E_DATA, {"extension registry"}},
    {"NEXT_BUFFER",
     "\x80\x05\x97.",
     4, MCRT_E_DATA, {"(NEXT_BUFFER)", "out-of-band buffers"}},
    {"READONLY_BUFFER",
     "\x80\x05]\x98.",
     5, MCRT_E_DATA, {"(READONLY_BUFFER)", "out-of-band buffers"}},
    {"PERSID text",
     "P0\n.",
     4, MCRT_E_DATA, {"(PERSID)", "text persistent id"}},
    {"persistent id not a tuple",
     "K\x01Q.",
     4, MCRT_E_DATA, {"(BINPERSID)", "the persistent id is an int"}},
    {"persistent id of 4 items",
     "(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00"
     "\x00" "cputQ.",
     50, MCRT_E_DATA, {"the persistent id is a tuple, not ('storage'"}},
    {"persistent id type",
     "(X\x07\x00\x00\x00storageccollections\nOrderedDict\nX\x01\x00\x00\x00" "0X\x03\x00"
     "\x00\x00" "cpuK\x02tQ.",
     57, MCRT_E_DATA, {"storage type is collections.OrderedDict"}},
    {"storage key with a slash",
     "(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x04\x00\x00\x00../xX\x03\x00\x00"
     "\x00" "cpuK\x02tQ.",
     55, MCRT_E_DATA, {"storage key '../x' is not 1 to 255 characters"}},
    {"storage key empty",
     "(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x00\x00\x00\x00X\x03\x00\x00\x00" "c"
     "puK\x02tQ.",
     51, MCRT_E_DATA, {"storage key '' is not"}},
    {"storage numel negative",
     "(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00"
     "\x00" "cpuJ\xff\xff\xff\xfftQ.",
     55, MCRT_E_DATA, {"storage '0': numel is an int, not a non-negative int"}},
    {"storage over 2^40 bytes",
     "(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00"
     "\x00" "cpu\x8a\x06\x00\x00\x00\x00\x00\x01tQ.",
     58, MCRT_E_DATA, {"more than 2^40 bytes"}},
    {"storage key reused",
     "\x80\x02(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x01\x00\x00\x00" "0X\x03"
     "\x00\x00\x00" "cpuK\x02tQ(X\x07\x00\x00\x00storagectorch\nHalfStorage\nX\x01\x00\x00"
     "\x00" "0X\x03\x00\x00\x00" "cpuK\x02tQ\x86.",
     105, MCRT_E_DATA,
     {"storage '0' was torch.FloatStorage of 2 elements, now torch.HalfStorage of 2"}},
    {"tensor past its storage",
     "\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloa"
     "tStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x06tQK\x01K\x02K\x03\x86K"
     "\x03K\x01\x86\x89" "ccollections\nOrderedDict\n)RtR.",
     130, MCRT_E_DATA, {"needs 7 elements of storage '0', which holds 6"}},
    {"tensor stride past its storage",
     "\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloa"
     "tStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x06tQK\x00K\x02K\x03\x86K"
     "\x04K\x01\x86\x89" "ccollections\nOrderedDict\n)RtR.",
     130, MCRT_E_DATA, {"needs 7 elements"}},
    {"tensor empty past its storage",
     "\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloa"
     "tStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x06tQK\x07K\x00\x85K\x01\x85"
     "\x89" "ccollections\nOrderedDict\n)RtR.",
     126, MCRT_E_DATA, {"needs 7 elements"}},
    {"tensor negative size",
     "\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloa"
     "tStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x06tQK\x00J\xff\xff\xff\xffK"
     "\x03\x86K\x03K\x01\x86\x89" "ccollections\nOrderedDict\n)RtR.",
     133, MCRT_E_DATA, {"argument 3 (size[0]) is an int, not a non-negative int"}},
    {"tensor negative stride",
     "\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloa"
     "tStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x06tQK\x00K\x02K\x03\x86K"
     "\x03J\xff\xff\xff\xff\x86\x89" "ccollections\nOrderedDict\n)RtR.",
     133, MCRT_E_DATA, {"argument 4 (stride[1]) is an int, not a non-negative int"}},
    {"tensor size not a tuple",
     "\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloa"
     "tStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x06tQK\x00]K\x03K\x01\x86"
     "\x89" "ccollections\nOrderedDict\n)RtR.",
     126, MCRT_E_DATA, {"argument 3 (size) is a list, not a tuple of ints"}},
    {"tensor size/stride lengths",
     "\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloa"
     "tStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x06tQK\x00K\x02K\x03\x86K"
     "\x01\x85\x89" "ccollections\nOrderedDict\n)RtR.",
     128, MCRT_E_DATA, {"size has 2 dimensions but stride 1"}},
    {"tensor of 9 dimensions",
     "\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloa"
     "tStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x06tQK\x00(K\x01K\x01K\x01K"
     "\x01K\x01K\x01K\x01K\x01K\x01t(K\x01K\x01K\x01K\x01K\x01K\x01K\x01K\x01K\x01t\x89" "c"
     "collections\nOrderedDict\n)RtR.",
     160, MCRT_E_UNSUPPORTED, {"a tensor of 9 dimensions (mcrt reads at most 8)"}},
    {"tensor view overflow",
     "\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloa"
     "tStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x06tQK\x00\x8a\x08\x00\x00"
     "\x00\x00\x00\x00\x00@K\x03\x86\x8a\x08\x00\x00\x00\x00\x00\x00\x00@K\x01\x86\x89" "c"
     "collections\nOrderedDict\n)RtR.",
     146, MCRT_E_DATA, {"overflows 64 bits"}},
    {"tensor storage not a storage",
     "ctorch._utils\n_rebuild_tensor_v2\n(K\x01K\x00)))\x89}tR.",
     46, MCRT_E_DATA, {"argument 1 (storage) is an int, not a storage"}},
    {"tensor requires_grad not a bool",
     "\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloa"
     "tStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00" "cpuK\x06tQK\x00K\x02K\x03\x86K"
     "\x03K\x01\x86K\x01" "ccollections\nOrderedDict\n)RtR.",
     131, MCRT_E_DATA, {"argument 5 (requires_grad) is an int, not a bool"}},
    {"rebuild with 3 arguments",
     "ctorch._utils\n_rebuild_tensor_v2\n(K\x01K\x00)tR.",
     42, MCRT_E_DATA, {"called with 3 arguments"}},
    {"Parameter of an int",
     "ctorch._utils\n_rebuild_parameter\n(K\x01\x88}tR.",
     41, MCRT_E_DATA, {"argument 1 (data) is an int, not a tensor"}},
    {"empty input",
     "",
     0, MCRT_E_DATA, {"truncated pickle: 0 bytes and no STOP opcode"}},
    {"no STOP",
     "K\x01",
     2, MCRT_E_DATA, {"no STOP opcode"}},
    {"truncated argument",
     "K",
     1, MCRT_E_DATA, {"(BININT1)", "truncated pickle: the opcode needs 1 more bytes, 0 are left"}},
    {"truncated BINUNICODE",
     "X\x05\x00\x00\x00" "ab",
     7, MCRT_E_DATA, {"the opcode needs 5 more bytes, 2 are left"}},
    {"truncated frame",
     "\x80\x04\x95" "d\x00\x00\x00\x00\x00\x00\x00K\x01.",
     14, MCRT_E_DATA, {"a frame of 100 bytes"}},
    {"unknown opcode",
     "\x80\x02\xff.",
     4, MCRT_E_DATA, {"byte 2", "unknown opcode 0xff"}},
    {"protocol 6",
     "\x80\x06.",
     3, MCRT_E_DATA, {"pickle protocol 6"}},
    {"STOP on an empty stack",
     ".",
     1, MCRT_E_DATA, {"STOP with 0 values and 0 marks"}},
    {"STOP with two values",
     "K\x01K\x02.",
     5, MCRT_E_DATA, {"STOP with 2 values"}},
    {"STOP with a mark",
     "(K\x01.",
     4, MCRT_E_DATA, {"STOP with 1 values and 1 marks"}},
    {"bytes after STOP",
     "K\x01.junk",
     7, MCRT_E_DATA, {"4 bytes after the STOP opcode"}},
    {"stack underflow",
     "a.",
     2, MCRT_E_DATA, {"(APPEND)", "stack underflow (the stack is empty)"}},
    {"underflow below a MARK",
     "]((a.",
     5, MCRT_E_DATA, {"stack underflow (nothing above the MARK)"}},
    {"POP on empty",
     "0.",
     2, MCRT_E_DATA, {"stack underflow"}},
    {"no MARK",
     "t.",
     2, MCRT_E_DATA, {"(TUPLE)", "no MARK on the stack"}},
    {"TUPLE2 underflow",
     "K\x01\x86.",
     4, MCRT_E_DATA, {"TUPLE2 needs 2 values"}},
    {"memo never stored",
     "h\x05.",
     3, MCRT_E_DATA, {"(BINGET)", "memo index 5 was never stored"}},
    {"PUT on empty",
     "q\x00.",
     3, MCRT_E_DATA, {"stack underflow"}},
    {"huge LONG_BINPUT",
     "K\x01r\xf0\xff\xff\xff.",
     8, MCRT_E_DATA,
     {"(LONG_BINPUT)",
      "memo index 4294967280 is over the limit max_memo (1048576)"}},
    {"huge PUT",
     "K\x01p99999999999\np.",
     17, MCRT_E_DATA, {"memo index 99999999999 is over the limit max_memo"}},
    {"PUT not a number",
     "K\x01pabc\n.",
     8, MCRT_E_DATA, {"the memo index 'abc' is not a decimal number"}},
    {"GET never stored",
     "g7\n.",
     4, MCRT_E_DATA, {"memo index 7 was never stored"}},
    {"huge BINUNICODE",
     "X\xff\xff\xff\xff" "ab",
     7, MCRT_E_DATA, {"a str of 4294967295 bytes is over the limit max_str (268435456)"}},
    {"huge BINBYTES8",
     "\x80\x04\x8e\x00\x00\x00\x00\x00\x01\x00\x00",
     11, MCRT_E_DATA, {"bytes object of 1099511627776 bytes is over the limit max_str"}},
    {"huge LONG4",
     "\x8b\xff\xff\xff\x7f",
     5, MCRT_E_DATA, {"long of 2147483647 bytes is over the limit max_str"}},
    {"negative LONG4",
     "\x8b\x00\x00\x00\x80",
     5, MCRT_E_DATA, {"negative byte count"}},
    {"negative BINSTRING",
     "T\xff\xff\xff\xff",
     5, MCRT_E_DATA, {"negative byte count"}},
    {"bad UTF-8",
     "X\x02\x00\x00\x00\xc3(.",
     8, MCRT_E_DATA, {"(BINUNICODE)", "is not valid UTF-8 (byte 0: 0xc3)"}},
    {"overlong UTF-8",
     "X\x02\x00\x00\x00\xc0\x80.",
     8, MCRT_E_DATA, {"not valid UTF-8"}},
    {"UTF-8 surrogate",
     "X\x03\x00\x00\x00\xed\xa0\x80.",
     9, MCRT_E_DATA, {"not valid UTF-8"}},
    {"UTF-8 past U+10FFFF",
     "X\x04\x00\x00\x00\xf4\x90\x80\x80.",
     10, MCRT_E_DATA, {"not valid UTF-8"}},
    {"UNICODE surrogate escape",
     "V\\ud800\n.",
     9, MCRT_E_DATA, {"(UNICODE)", "not a Unicode scalar value"}},
    {"UNICODE truncated escape",
     "V\\u12\n.",
     7, MCRT_E_DATA, {"truncated \\u escape"}},
    {"STRING unquoted",
     "Sabc\n.",
     6, MCRT_E_DATA, {"not quoted"}},
    {"STRING bad \\x",
     "S'a\\x4'\n.",
     9, MCRT_E_DATA, {"invalid \\x escape"}},
    {"STRING trailing backslash",
     "S'a\\'\n.",
     7, MCRT_E_DATA, {"a trailing \\ in a STRING argument"}},
    {"INT not a number",
     "Iabc\n.",
     6, MCRT_E_DATA, {"INT 'abc' is not a decimal integer"}},
    {"INT hex",
     "I0x10\n.",
     7, MCRT_E_DATA, {"INT '0x10' is not a decimal integer"}},
    {"INT no newline",
     "I12",
     3, MCRT_E_DATA, {"no end of line"}},
    {"FLOAT not a number",
     "F1.2.3\n.",
     8, MCRT_E_DATA, {"float '1.2.3' is not a number"}},
    {"FLOAT empty",
     "F\n.",
     3, MCRT_E_DATA, {"float '' is not a number"}},
    {"list as a dict key",
     "}]K\x01s.",
     6, MCRT_E_DATA, {"(SETITEM)", "a list cannot be a dict key (unhashable)"}},
    {"dict as a set item",
     "\x80\x04\x8f(}\x90.",
     7, MCRT_E_DATA, {"a dict cannot be a set key"}},
    {"tuple with a list as a key",
     "}]\x85K\x01s.",
     7, MCRT_E_DATA, {"a tuple cannot be a dict key"}},
    {"frozenset as a key",
     "\x80\x04}(K\x01\x91K\x01s.",
     11, MCRT_E_DATA, {"a frozenset cannot be a dict key"}},
    {"SETITEM on an int",
     "K\x01K\x02K\x03s.",
     8, MCRT_E_DATA, {"SETITEM on an int, not a dict"}},
    {"APPEND on a tuple",
     ")K\x01" "a.",
     5, MCRT_E_DATA, {"APPEND on a tuple, not a list"}},
    {"ADDITEMS on a list",
     "\x80\x04](K\x01\x90.",
     8, MCRT_E_DATA, {"ADDITEMS on a list, not a set"}},
    {"odd SETITEMS",
     "}(K\x01u.",
     6, MCRT_E_DATA, {"an odd number of items (1)"}},
    {"odd DICT",
     "(K\x01K\x02K\x03" "d.",
     9, MCRT_E_DATA, {"an odd number of items (3)"}},
    {"STACK_GLOBAL of ints",
     "\x80\x04K\x01K\x02\x93.",
     8, MCRT_E_DATA, {"STACK_GLOBAL needs two str values"}},
    {"OBJ without a class",
     "(o.",
     3, MCRT_E_DATA, {"OBJ without a class"}},
    {"a list holding itself",
     "]q\x00h\x00" "a.",
     7, MCRT_E_DATA, {"pickle: a list holds itself (a cycle)"}},
    {"a dict holding itself",
     "}q\x00K\x01h\x00s.",
     9, MCRT_E_DATA, {"a dict holds itself"}},
    {"Namespace holding itself",
     "\x80\x02" "cargparse\nNamespace\n)\x81q\x00}X\x02\x00\x00\x00meh\x00sb.",
     39, MCRT_E_DATA, {"holds itself"}},
};

/* Load with the defaults (or opt); the root or NULL. */
static pk_value *load(pk_arena *a, const void *d, size_t n, const pk_options *opt, ckpt_err *err)
{
    memset(err, 0, sizeof *err);
    return pk_load(d, n, opt, "t.pkl", a, NULL, err);
}

START_TEST(pickle_table)
{
    const pcase *c = &pcases[_i];
    pk_arena *a = pk_arena_new();
    ck_assert_ptr_nonnull(a);
    ckpt_err err;
    pk_value *v = load(a, c->data, c->len, NULL, &err);
    if (c->status == MCRT_OK) {
        ck_assert_msg(v != NULL, "%s: %s", c->label, err.msg);
        char buf[1024];
        pk_repr(v, buf, sizeof buf);
        ck_assert_msg(strcmp(buf, c->expect[0]) == 0, "%s: repr %s, expected %s", c->label, buf,
                      c->expect[0]);
    } else {
        ck_assert_msg(v == NULL, "%s: loaded", c->label);
        expect_msg(err.status, &err, c->status, "t.pkl", c->expect, 3, c->label);
    }
    pk_arena_free(a);
}
END_TEST

/* Every prefix of every good case is refused (never loaded, never a crash),
 * and so is every single-byte change that breaks nothing we can check:
 * those must at least not crash. */
START_TEST(pickle_truncations)
{
    pk_arena *a = pk_arena_new();
    size_t n_refused = 0;
    for (size_t k = 0; k < sizeof pcases / sizeof pcases[0]; k++) {
        const pcase *c = &pcases[k];
        if (c->status != MCRT_OK)
            continue;
        for (size_t n = 0; n < c->len; n++) {
            unsigned char *cut = malloc(n ? n : 1);
            memcpy(cut, c->data, n);
            ckpt_err err;
            pk_value *v = load(a, cut, n, NULL, &err);
            /* a prefix can be a complete pickle only if it ends in STOP and
             * the rest is trailing junk; with used == NULL that is refused */
            TF_CHECK(v == NULL && err.status == MCRT_E_DATA && strstr(err.msg, "t.pkl") != NULL,
                     "%s: the prefix of %zu bytes: %s", c->label, n, v ? "loaded" : err.msg);
            n_refused++;
            free(cut);
        }
        /* bit flips: anything but a crash (or a leak) is fine */
        for (size_t i = 0; i < c->len; i++) {
            unsigned char *f = malloc(c->len);
            memcpy(f, c->data, c->len);
            f[i] ^= (unsigned char)(0x01 << (i % 8));
            ckpt_err err;
            pk_value *v = load(a, f, c->len, NULL, &err);
            TF_CHECK(v != NULL || err.status == MCRT_E_DATA || err.status == MCRT_E_UNSUPPORTED,
                     "%s flipped at %zu: %s", c->label, i, err.msg);
            free(f);
        }
    }
    ck_assert_uint_gt(n_refused, 1000);
    pk_arena_free(a);
}
END_TEST

/* The consumed length when bytes may follow (pickles back to back). */
START_TEST(pickle_used)
{
    static const char two[] = "K\x01.K\x02.";
    pk_arena *a = pk_arena_new();
    ckpt_err err;
    size_t used = 0;
    pk_value *v = pk_load(two, sizeof two - 1, NULL, "two", a, &used, &err);
    ck_assert_ptr_nonnull(v);
    ck_assert_uint_eq(used, 3);
    int64_t i;
    ck_assert(pk_as_int(v, &i) && i == 1);
    v = pk_load(two + used, sizeof two - 1 - used, NULL, "two", a, &used, &err);
    ck_assert(pk_as_int(v, &i) && i == 2);
    ck_assert_uint_eq(used, 3);
    ck_assert_ptr_null(pk_load(two, 3, NULL, "x", NULL, NULL, &err));
    ck_assert_int_eq(err.status, MCRT_E_INVAL);
    pk_arena_free(a);
    pk_arena_free(NULL);
}
END_TEST

/* ---- bombs and limits --------------------------------------------------------- */

static mcrt_status load_status(const bb *p, const pk_options *opt, ckpt_err *err)
{
    pk_arena *a = pk_arena_new();
    pk_value *v = load(a, p->p, p->n, opt, err);
    pk_arena_free(a);
    return v != NULL ? MCRT_OK : err->status;
}

static void expect_bomb(const bb *p, const pk_options *opt, const char *part, const char *what)
{
    ckpt_err err;
    mcrt_status s = load_status(p, opt, &err);
    const char *parts[] = {part};
    expect_msg(s, &err, MCRT_E_DATA, "t.pkl", parts, 1, what);
}

START_TEST(bomb_deep_lists)
{
    /* [[[...]]] 2000 deep: EMPTY_LIST x N, then APPEND x N-1 */
    for (int pass = 0; pass < 2; pass++) {
        size_t n = pass == 0 ? 1000 : 100000;
        bb p = {0};
        BBL(&p, "\x80\x02");
        for (size_t i = 0; i < n; i++)
            bb_u8(&p, ']');
        for (size_t i = 1; i < n; i++)
            bb_u8(&p, 'a');
        bb_u8(&p, '.');
        if (pass == 0) { /* exactly the limit: 1000 levels load */
            ckpt_err err;
            ck_assert_msg(load_status(&p, NULL, &err) == MCRT_OK, "%s", err.msg);
        } else {
            expect_bomb(&p, NULL, "the nesting depth is over the limit max_depth (1000)", "deep");
        }
        free(p.p);
    }
    /* 1001 levels */
    bb p = {0};
    for (size_t i = 0; i < 1001; i++)
        bb_u8(&p, ']');
    for (size_t i = 1; i < 1001; i++)
        bb_u8(&p, 'a');
    bb_u8(&p, '.');
    expect_bomb(&p, NULL, "max_depth (1000)", "1001 deep");
    free(p.p);
}
END_TEST

START_TEST(bomb_deep_tuples_and_marks)
{
    /* ((((...)))) through marks: 200000 MARKs, then TUPLE x 200000 */
    bb p = {0};
    size_t n = 200000;
    for (size_t i = 0; i < n; i++)
        bb_u8(&p, '(');
    for (size_t i = 0; i < n; i++)
        bb_u8(&p, 't');
    bb_u8(&p, '.');
    expect_bomb(&p, NULL, "max_depth", "deep tuples");
    free(p.p);
    /* TUPLE1 chains: no marks at all */
    p = (bb){0};
    bb_u8(&p, ')');
    for (size_t i = 0; i < n; i++)
        BBL(&p, "\x85");
    bb_u8(&p, '.');
    expect_bomb(&p, NULL, "max_depth", "TUPLE1 chain");
    free(p.p);
    /* used as a dict key: refused as too heavy, before any deep compare */
    p = (bb){0};
    BBL(&p, "}");
    bb_u8(&p, ')');
    for (size_t i = 0; i < 5000; i++)
        BBL(&p, "\x85");
    BBL(&p, "K\x01s.");
    expect_bomb(&p, NULL, "a dict key holds more than 4096 values", "deep key");
    free(p.p);
}
END_TEST

START_TEST(bomb_laughs)
{
    /* l0 = [1]; l_i = [l_{i-1}, l_{i-1}]: 2^64 values as a tree, 200 made */
    bb p = {0};
    BBL(&p, "\x80\x02]K\x01" "ar\x00\x00\x00\x00" "0");
    for (uint32_t i = 1; i <= 64; i++) {
        BBL(&p, "](j");
        bb_le(&p, i - 1, 4);
        bb_u8(&p, 'j');
        bb_le(&p, i - 1, 4);
        BBL(&p, "er");
        bb_le(&p, i, 4);
        bb_u8(&p, '0');
    }
    bb_u8(&p, 'j');
    bb_le(&p, 64, 4);
    bb_u8(&p, '.');
    expect_bomb(&p, NULL, "the values the result expands to", "laughs");
    expect_bomb(&p, NULL, "over the limit max_expanded (16777216)", "laughs");
    free(p.p);
    /* the same with tuples as dict keys: hashing stays linear, the key is
     * refused as too heavy */
    p = (bb){0};
    BBL(&p, "\x80\x02}K\x01\x85q\x00" "0");
    for (uint32_t i = 1; i <= 40; i++) {
        bb_u8(&p, 'h');
        bb_u8(&p, i - 1);
        bb_u8(&p, 'h');
        bb_u8(&p, i - 1);
        BBL(&p, "\x86q");
        bb_u8(&p, i);
        bb_u8(&p, '0');
    }
    bb_u8(&p, 'h');
    bb_u8(&p, 40);
    BBL(&p, "K\x01s.");
    expect_bomb(&p, NULL, "a dict key holds more than 4096 values", "laughing key");
    free(p.p);
    /* shared values below the limit are fine: 2^20 */
    p = (bb){0};
    BBL(&p, "\x80\x02]K\x01" "ar\x00\x00\x00\x00" "0");
    for (uint32_t i = 1; i <= 20; i++) {
        BBL(&p, "](j");
        bb_le(&p, i - 1, 4);
        bb_u8(&p, 'j');
        bb_le(&p, i - 1, 4);
        BBL(&p, "er");
        bb_le(&p, i, 4);
        bb_u8(&p, '0');
    }
    bb_u8(&p, 'j');
    bb_le(&p, 20, 4);
    bb_u8(&p, '.');
    ckpt_err err;
    ck_assert_msg(load_status(&p, NULL, &err) == MCRT_OK, "%s", err.msg);
    free(p.p);
}
END_TEST

START_TEST(bomb_hash_flood)
{
    /* 50000 distinct int keys and 50000 equal keys: linear time */
    bb p = {0};
    BBL(&p, "\x80\x02}(");
    for (uint32_t i = 0; i < 50000; i++) {
        bb_u8(&p, 'J');
        bb_le(&p, i * 65536u, 4);
        BBL(&p, "N");
    }
    BBL(&p, "u}(");
    for (uint32_t i = 0; i < 50000; i++)
        BBL(&p, "K\x07N");
    BBL(&p, "u\x86.");
    pk_arena *a = pk_arena_new();
    ckpt_err err;
    pk_value *v = load(a, p.p, p.n, NULL, &err);
    ck_assert_msg(v != NULL, "%s", err.msg);
    ck_assert_uint_eq(pk_len(pk_item(v, 0)), 50000);
    ck_assert_uint_eq(pk_len(pk_item(v, 1)), 1);
    pk_arena_free(a);
    free(p.p);
}
END_TEST

START_TEST(bomb_big_ints)
{
    bb p = {0};
    bb_u8(&p, 0x8b);
    bb_le(&p, 1000, 4);
    for (int i = 0; i < 1000; i++)
        bb_u8(&p, 1);
    bb_u8(&p, '.');
    expect_bomb(&p, NULL, "an int of 1000 bytes is over the limit max_bigint (1000)", "LONG4");
    free(p.p);
    p = (bb){0};
    bb_u8(&p, 'L');
    for (int i = 0; i < 1001; i++)
        bb_u8(&p, '7');
    BBL(&p, "\n.");
    expect_bomb(&p, NULL, "an int of 1001 digits is over the limit max_bigint (1000)", "LONG");
    free(p.p);
    /* 400 bytes (963 digits) is allowed, and its digits are right: 256^400 - 1 */
    p = (bb){0};
    bb_u8(&p, 0x8b);
    bb_le(&p, 401, 4);
    for (int i = 0; i < 400; i++)
        bb_u8(&p, 0xff);
    bb_u8(&p, 0);
    bb_u8(&p, '.');
    pk_arena *a = pk_arena_new();
    ckpt_err err;
    pk_value *v = load(a, p.p, p.n, NULL, &err);
    ck_assert_msg(v != NULL, "%s", err.msg);
    const char *d = pk_as_bigint(v);
    ck_assert_ptr_nonnull(d);
    ck_assert_uint_eq(strlen(d), 964);
    ck_assert_int_eq(strncmp(d, "1976906478982563993654226439837963340315390682625773828918265710", 64),
                     0);
    ck_assert_int_eq(d[963], '5'); /* 2^3200 - 1 ends in ...5 */
    pk_arena_free(a);
    free(p.p);
}
END_TEST

START_TEST(limits)
{
    pk_options o;
    pk_options_default(&o);
    ck_assert_uint_eq(o.limits.max_depth, 1000);
    ck_assert_uint_eq(o.limits.max_memo, 1u << 20);
    ck_assert_ptr_null(o.extra_classes);
    /* max_values */
    bb p = {0};
    BBL(&p, "(");
    for (int i = 0; i < 20; i++)
        BBL(&p, "N");
    BBL(&p, "l.");
    o.limits.max_values = 10;
    expect_bomb(&p, &o, "the number of values is over the limit max_values (10)", "values");
    o.limits.max_values = 21;
    ckpt_err err;
    ck_assert_msg(load_status(&p, &o, &err) == MCRT_OK, "%s", err.msg);
    pk_options_default(&o);
    /* max_stack (values and marks) */
    o.limits.max_stack = 15;
    expect_bomb(&p, &o, "the stack is over the limit max_stack (15)", "stack");
    free(p.p);
    p = (bb){0};
    for (int i = 0; i < 20; i++)
        BBL(&p, "(");
    expect_bomb(&p, &o, "the stack is over the limit max_stack (15)", "marks");
    free(p.p);
    /* max_str: a str, bytes and a text line */
    pk_options_default(&o);
    o.limits.max_str = 10;
    p = (bb){0};
    BBL(&p, "X");
    bb_le(&p, 11, 4);
    BBL(&p, "hello world.");
    expect_bomb(&p, &o, "a str of 11 bytes is over the limit max_str (10)", "str");
    free(p.p);
    p = (bb){0};
    BBL(&p, "Vhello world\n.");
    expect_bomb(&p, &o, "a text line's length is over the limit max_str (10)", "line");
    free(p.p);
    p = (bb){0};
    BBL(&p, "Vhello\n.");
    ck_assert_int_eq(load_status(&p, &o, &err), MCRT_OK);
    free(p.p);
    /* max_memo */
    pk_options_default(&o);
    o.limits.max_memo = 4;
    p = (bb){0};
    BBL(&p, "Nq\x03q\x04.");
    expect_bomb(&p, &o, "memo index 4 is over the limit max_memo (4)", "memo");
    free(p.p);
    /* max_depth */
    pk_options_default(&o);
    o.limits.max_depth = 3;
    p = (bb){0};
    BBL(&p, "]]]aa.");
    ck_assert_int_eq(load_status(&p, &o, &err), MCRT_OK);
    free(p.p);
    p = (bb){0};
    BBL(&p, "]]]]aaa.");
    expect_bomb(&p, &o, "max_depth (3)", "depth");
    free(p.p);
    /* max_expanded */
    pk_options_default(&o);
    o.limits.max_expanded = 5;
    p = (bb){0};
    BBL(&p, "]q\x00(K\x01K\x02" "e0h\x00h\x00\x86.");
    expect_bomb(&p, &o, "max_expanded (5)", "expanded");
    o.limits.max_expanded = 7;
    ck_assert_int_eq(load_status(&p, &o, &err), MCRT_OK);
    free(p.p);
    /* max_bytes */
    pk_options_default(&o);
    o.limits.max_bytes = 4096;
    p = (bb){0};
    BBL(&p, "(");
    for (int i = 0; i < 200; i++)
        BBL(&p, "N");
    BBL(&p, "l.");
    expect_bomb(&p, &o, "the values' memory is over the limit max_bytes (4096)", "bytes");
    free(p.p);
    /* max_bigint */
    pk_options_default(&o);
    o.limits.max_bigint = 20;
    p = (bb){0};
    BBL(&p, "L123456789012345678901\n.");
    expect_bomb(&p, &o, "an int of 21 digits is over the limit max_bigint (20)", "bigint");
    free(p.p);
}
END_TEST

/* ---- the API on loaded values ----------------------------------------------------- */

START_TEST(accessors)
{
    /* {'a': 1, 'f': 2.5, 's': 'x\0y', 'b': b'..', 'l': [None, True], 'ns': Namespace(k=7),
     *  'od': OrderedDict(w=1) with _metadata, 'io': BytesIO(b'q'), 'e': ModelType(2),
     *  'g': ModelType.name, 'big': 2^64, 'dt': torch.bfloat16} */
    static const char pk[] =
        "\x80\x02}(X\x01\x00\x00\x00" "aK\x01X\x01\x00\x00\x00" "fG@\x04\x00\x00\x00\x00\x00\x00"
        "X\x01\x00\x00\x00sX\x03\x00\x00\x00x\x00yX\x01\x00\x00\x00" "bC\x02\x01\x02"
        "X\x01\x00\x00\x00l](N\x88" "eX\x02\x00\x00\x00nscargparse\nNamespace\n)\x81}"
        "X\x01\x00\x00\x00kK\x07sbX\x02\x00\x00\x00odccollections\nOrderedDict\n)R"
        "X\x01\x00\x00\x00wK\x01s}X\x09\x00\x00\x00_metadata}sbX\x02\x00\x00\x00io"
        "c_io\nBytesIO\n)\x81" "C\x01qK\x00N\x87" "bX\x01\x00\x00\x00" "ecmegatron.core.enums\n"
        "ModelType\nK\x02\x85RX\x01\x00\x00\x00gc__builtin__\ngetattr\ncmegatron.core.enums\n"
        "ModelType\nX\x03\x00\x00\x00" "abc\x86RX\x03\x00\x00\x00" "big\x8a\x09\x00\x00\x00\x00"
        "\x00\x00\x00\x00\x01X\x02\x00\x00\x00" "dtctorch\nbfloat16\nu.";
    pk_arena *a = pk_arena_new();
    ckpt_err err;
    pk_value *v = load(a, pk, sizeof pk - 1, NULL, &err);
    ck_assert_msg(v != NULL, "%s", err.msg);
    ck_assert_int_eq(pk_kind_of(v), PK_DICT);
    ck_assert_uint_eq(pk_len(v), 12);
    ck_assert_str_eq(pk_kind_name(PK_DICT), "a dict");
    ck_assert_int_eq(pk_kind_of(NULL), 0);
    int64_t i;
    double f;
    bool b;
    size_t n;
    ck_assert(pk_as_int(pk_dict_get(v, "a"), &i) && i == 1);
    ck_assert(!pk_as_int(pk_dict_get(v, "f"), &i));
    ck_assert(pk_as_float(pk_dict_get(v, "f"), &f) && f == 2.5);
    ck_assert(pk_as_float(pk_dict_get(v, "a"), &f) && f == 1.0);
    const char *s = pk_as_str(pk_dict_get(v, "s"), &n);
    ck_assert(s != NULL && n == 3 && memcmp(s, "x\0y", 3) == 0 && s[3] == '\0');
    const unsigned char *by = pk_as_bytes(pk_dict_get(v, "b"), &n);
    ck_assert(by != NULL && n == 2 && by[0] == 1 && by[1] == 2);
    const pk_value *l = pk_dict_get(v, "l");
    ck_assert_int_eq(pk_kind_of(l), PK_LIST);
    ck_assert_int_eq(pk_kind_of(pk_item(l, 0)), PK_NONE);
    ck_assert(pk_as_bool(pk_item(l, 1), &b) && b);
    ck_assert_ptr_null(pk_item(l, 2));
    const pk_value *ns = pk_dict_get(v, "ns");
    ck_assert_str_eq(pk_class_name(ns), "argparse.Namespace");
    ck_assert(pk_as_int(pk_dict_get(ns, "k"), &i) && i == 7);
    ck_assert_ptr_null(pk_dict_get(ns, "missing"));
    ck_assert_uint_eq(pk_len(pk_attrs(ns)), 1);
    ck_assert_uint_eq(pk_len(pk_object_args(ns)), 0);
    const pk_value *od = pk_dict_get(v, "od");
    ck_assert_int_eq(pk_kind_of(od), PK_DICT);
    ck_assert_int_eq(pk_kind_of(pk_dict_get(pk_attrs(od), "_metadata")), PK_DICT);
    by = pk_as_bytes(pk_dict_get(v, "io"), &n);
    ck_assert(by != NULL && n == 1 && by[0] == 'q');
    ck_assert_int_eq(pk_kind_of(pk_object_state(pk_dict_get(v, "io"))), PK_TUPLE);
    const pk_value *e = pk_dict_get(v, "e");
    ck_assert_str_eq(pk_class_name(e), "megatron.core.enums.ModelType");
    ck_assert_ptr_null(pk_enum_member(e));
    ck_assert(pk_as_int(pk_item(pk_object_args(e), 0), &i) && i == 2);
    ck_assert_str_eq(pk_enum_member(pk_dict_get(v, "g")), "abc");
    ck_assert_str_eq(pk_as_bigint(pk_dict_get(v, "big")), "18446744073709551616");
    const pk_dtype *dt = pk_as_dtype(pk_dict_get(v, "dt"));
    ck_assert(dt != NULL && dt->dtype == MCRT_DTYPE_BF16 && dt->elem_size == 2);
    ck_assert_str_eq(dt->name, "bfloat16");
    /* keys in order */
    ck_assert_str_eq(pk_as_str(pk_dict_key(v, 0), NULL), "a");
    ck_assert_str_eq(pk_as_str(pk_dict_key(v, 11), NULL), "dt");
    ck_assert_ptr_null(pk_dict_key(v, 12));
    ck_assert_ptr_null(pk_dict_value(l, 0));
    /* wrong kinds give nothing */
    ck_assert_ptr_null(pk_as_str(pk_dict_get(v, "a"), NULL));
    ck_assert_ptr_null(pk_as_tensor(v));
    ck_assert_ptr_null(pk_as_storage(v));
    ck_assert_ptr_null(pk_as_dtype(v));
    ck_assert_ptr_null(pk_class_name(v));
    ck_assert_ptr_null(pk_dict_get(NULL, "a"));
    ck_assert_uint_eq(pk_len(NULL), 0);
    char buf[64];
    pk_repr(v, buf, sizeof buf);
    ck_assert_uint_eq(strlen(buf), 63);
    ck_assert_str_eq(buf + 60, "...");
    pk_repr(NULL, buf, sizeof buf);
    ck_assert_str_eq(buf, "<nothing>");
    pk_arena_free(a);
}
END_TEST

/* extra classes: generic objects, enums by name, plain named values */
START_TEST(extra_classes)
{
    static const char pk[] =
        "\x80\x04\x8c\x03m.n\x8c\x04Meta\x93)\x81}(\x8c\x01x\x8c\x03m.n\x8c\x01" "E\x93K\x03\x85R"
        "\x8c\x01y\x8c\x08" "builtins\x8c\x07getattr\x93\x8c\x03m.n\x8c\x01" "E\x93\x8c\x01V\x86R"
        "\x8c\x01z\x8c\x03m.n\x8c\x05VALUE\x93ub.";
    static const char *const extra[] = {"m.n.Meta", "m.n.E", "m.n.VALUE", NULL};
    pk_arena *a = pk_arena_new();
    ckpt_err err;
    pk_value *v = load(a, pk, sizeof pk - 1, NULL, &err);
    const char *parts[] = {"global 'm.n.Meta' is not allowed"};
    expect_msg(err.status, &err, MCRT_E_DATA, "t.pkl", parts, 1, "no extras");
    ck_assert_ptr_null(v);
    pk_options o;
    pk_options_default(&o);
    o.extra_classes = extra;
    v = load(a, pk, sizeof pk - 1, &o, &err);
    ck_assert_msg(v != NULL, "%s", err.msg);
    char buf[256];
    ck_assert_str_eq(pk_repr(v, buf, sizeof buf), "m.n.Meta(x=m.n.E(3,), y=m.n.E.V, z=m.n.VALUE)");
    ck_assert_str_eq(pk_class_name(pk_dict_get(v, "z")), "m.n.VALUE");
    ck_assert_int_eq(pk_kind_of(pk_dict_get(v, "z")), PK_GLOBAL);
    /* a near name is not enough */
    static const char *const near[] = {"m.n.Met", "m.nMeta", "m.n.Meta.x", NULL};
    o.extra_classes = near;
    ck_assert_ptr_null(load(a, pk, sizeof pk - 1, &o, &err));
    pk_arena_free(a);
}
END_TEST

/* ---- a torch archive built here ---------------------------------------------------- */

/* data.pkl: {'w': tensor [2,3] f32 on storage '0' (8 elements) at offset 1,
 *            't': its transpose, 'h': f16 [4] on '1', 'c': complex64 [1] on '2',
 *            'm': a tensor on storage '9' (no entry), 'x': f32 [2] on '3' (bad size)} */
static void tensor_pickle(bb *p, const char *key, const char *type, int numel, int off,
                          const char *size_stride)
{
    BBL(p, "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\n");
    bb_str(p, type);
    BBL(p, "\nX");
    bb_le(p, strlen(key), 4);
    bb_str(p, key);
    BBL(p, "X\x03\x00\x00\x00" "cpuK");
    bb_u8(p, (unsigned)numel);
    BBL(p, "tQK");
    bb_u8(p, (unsigned)off);
    bb_str(p, size_stride);
    BBL(p, "\x89}tR");
}

static void put_key(bb *p, const char *k)
{
    bb_u8(p, 'X');
    bb_le(p, strlen(k), 4);
    bb_str(p, k);
}

START_TEST(resolve_tensors)
{
    bb p = {0};
    BBL(&p, "\x80\x02}(");
    put_key(&p, "w");
    tensor_pickle(&p, "0", "FloatStorage", 8, 1, "K\x02K\x03\x86K\x03K\x01\x86");
    put_key(&p, "t");
    tensor_pickle(&p, "0", "FloatStorage", 8, 1, "K\x03K\x02\x86K\x01K\x03\x86");
    put_key(&p, "h");
    tensor_pickle(&p, "1", "HalfStorage", 4, 0, "K\x04\x85K\x01\x85");
    put_key(&p, "c");
    tensor_pickle(&p, "2", "ComplexFloatStorage", 1, 0, "K\x01\x85K\x01\x85");
    put_key(&p, "m");
    tensor_pickle(&p, "9", "FloatStorage", 1, 0, "K\x01\x85K\x01\x85");
    put_key(&p, "x");
    tensor_pickle(&p, "3", "FloatStorage", 2, 0, "K\x02\x85K\x01\x85");
    put_key(&p, "s");
    tensor_pickle(&p, "0", "FloatStorage", 8, 7, "))"); /* a scalar */
    BBL(&p, "u.");
    float f32[8];
    for (int i = 0; i < 8; i++)
        f32[i] = (float)i * 0.5f;
    uint16_t f16[4] = {0x3c00, 0x4000, 0xc000, 0x7c00};
    float cplx[2] = {1, 2};
    float bad[3] = {0};
    zent e[6] = {{.name = "ckpt/data.pkl", .data = p.p, .len = p.n},
                 {.name = "ckpt/data/0", .data = f32, .len = sizeof f32},
                 {.name = "ckpt/data/1", .data = f16, .len = sizeof f16},
                 {.name = "ckpt/data/2", .data = cplx, .len = sizeof cplx},
                 {.name = "ckpt/data/3", .data = bad, .len = sizeof bad},
                 {.name = "ckpt/version", .data = "3\n", .len = 2}};
    size_t len;
    unsigned char *ar = zwrite(e, 6, &torch_style, &len, NULL);
    zip_archive *z;
    ckpt_err err;
    ck_assert_msg(zip_open(ar, len, "built.pt", &z, &err) == MCRT_OK, "%s", err.msg);
    const zip_entry *pe;
    ck_assert_int_eq(zip_torch_record(z, "data.pkl", &pe, &err), MCRT_OK);
    pk_arena *a = pk_arena_new();
    pk_value *v = pk_load(pe->data, pe->size, NULL, "built.pt: ckpt/data.pkl", a, NULL, &err);
    ck_assert_msg(v != NULL, "%s", err.msg);
    pk_tensor_view tv;
    /* w: rows 1..3, 4..6 of 0..7 */
    ck_assert_int_eq(pk_tensor_resolve(pk_dict_get(v, "w"), z, &tv, &err), MCRT_OK);
    ck_assert_ptr_eq(tv.entry, zip_at(z, 1));
    ck_assert_uint_eq(tv.byte_offset, 4);
    ck_assert_ptr_eq(tv.data, zip_at(z, 1)->data + 4);
    ck_assert_int_eq(tv.dtype, MCRT_DTYPE_F32);
    ck_assert_int_eq(tv.ndim, 2);
    ck_assert_uint_eq(tv.nelem, 6);
    ck_assert_uint_eq(tv.extent, 24);
    ck_assert(tv.contiguous);
    float got;
    memcpy(&got, tv.data + 4 * (1 * 3 + 2), 4);
    ck_assert(got == 3.0f); /* element [1][2] = storage[1 + 5] = 6 * 0.5 */
    ck_assert_int_eq(pk_tensor_resolve(pk_dict_get(v, "t"), z, &tv, &err), MCRT_OK);
    ck_assert(!tv.contiguous);
    ck_assert_int_eq(tv.stride[0], 1);
    ck_assert_int_eq(tv.stride[1], 3);
    ck_assert_int_eq(pk_tensor_resolve(pk_dict_get(v, "s"), z, &tv, &err), MCRT_OK);
    ck_assert_int_eq(tv.ndim, 0);
    ck_assert_uint_eq(tv.nelem, 1);
    memcpy(&got, tv.data, 4);
    ck_assert(got == 3.5f);
    ck_assert_int_eq(pk_tensor_resolve(pk_dict_get(v, "h"), z, &tv, &err), MCRT_OK);
    ck_assert_int_eq(tv.dtype, MCRT_DTYPE_F16);
    ck_assert_int_eq(memcmp(tv.data, f16, 8), 0);
    const pk_tensor *t = pk_as_tensor(pk_dict_get(v, "h"));
    ck_assert_str_eq(t->storage->type_name, "torch.HalfStorage");
    ck_assert_str_eq(t->storage->location, "cpu");
    ck_assert_uint_eq(t->storage->numel, 4);
    ck_assert(pk_as_tensor(pk_dict_get(v, "w"))->storage ==
              pk_as_tensor(pk_dict_get(v, "t"))->storage);
    /* errors */
    mcrt_status s = pk_tensor_resolve(pk_dict_get(v, "c"), z, &tv, &err);
    const char *p1[] = {"storage '2' holds complex64 values (torch.ComplexFloatStorage)",
                        "mcrt does not read"};
    expect_msg(s, &err, MCRT_E_UNSUPPORTED, "built.pt", p1, 2, "complex");
    s = pk_tensor_resolve(pk_dict_get(v, "m"), z, &tv, &err);
    const char *p2[] = {"no entry 'ckpt/data/9' in the archive"};
    expect_msg(s, &err, MCRT_E_NOTFOUND, "built.pt", p2, 1, "missing");
    s = pk_tensor_resolve(pk_dict_get(v, "x"), z, &tv, &err);
    const char *p3[] = {"entry 'ckpt/data/3': 12 bytes, but storage '3' (torch.FloatStorage, 2 "
                        "elements) needs 8"};
    expect_msg(s, &err, MCRT_E_DATA, "built.pt", p3, 1, "size");
    s = pk_tensor_resolve(v, z, &tv, &err);
    const char *p4[] = {"resolving a dict, not a tensor"};
    expect_msg(s, &err, MCRT_E_INVAL, "built.pt", p4, 1, "not a tensor");
    pk_arena_free(a);
    zip_close(z);
    free(ar);
    free(p.p);
}
END_TEST

/* ---- the fixtures ------------------------------------------------------------------ */

static char fixture_dir[2048];

static unsigned char *slurp(const char *name, size_t *n)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", fixture_dir, name);
    FILE *f = fopen(p, "rb");
    ck_assert_msg(f != NULL, "%s: %s", p, strerror(errno));
    bb b = {0};
    unsigned char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        bb_put(&b, chunk, got);
    fclose(f);
    *n = b.n;
    if (b.p == NULL)
        b.p = malloc(1);
    return b.p;
}

/* The comparison of a loaded value with its canonical form (cj in
 * make_torch_fixtures.py), read from expect.json as it goes. */
typedef struct fx {
    json_reader r;
    const zip_archive *z; /* tensors are resolved in it */
    char path[768];
    size_t plen;
    char why[1536];
    bool bad;
    size_t tensors, elements, values;
} fx;

static bool mis(fx *c, const char *fmt, ...) TF_PRINTF(2, 3);

static bool mis(fx *c, const char *fmt, ...)
{
    if (!c->bad) {
        c->bad = true;
        char m[700];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m, sizeof m, fmt, ap);
        va_end(ap);
        snprintf(c->why, sizeof c->why, "at %.700s: %s", c->plen ? c->path : "(root)", m);
    }
    return false;
}

static bool jfail(fx *c)
{
    return mis(c, "expect.json: %s (byte %zu)", json_error(&c->r), c->r.err_offset);
}

static size_t path_push(fx *c, const char *fmt, ...) TF_PRINTF(2, 3);

static size_t path_push(fx *c, const char *fmt, ...)
{
    size_t old = c->plen;
    if (c->plen < sizeof c->path - 1) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(c->path + c->plen, sizeof c->path - c->plen, fmt, ap);
        va_end(ap);
        if (w > 0)
            c->plen = c->plen + (size_t)w < sizeof c->path ? c->plen + (size_t)w
                                                           : sizeof c->path - 1;
    }
    return old;
}

static void path_pop(fx *c, size_t old)
{
    c->plen = old;
    c->path[old] = '\0';
}

static const char *vdesc(const pk_value *v, char *buf, size_t n)
{
    return pk_repr(v, buf, n);
}

static bool read_jstr(fx *c, char *out, size_t size, size_t *len)
{
    if (json_peek(&c->r) != JSON_STRING)
        return mis(c, "expect.json: a string expected");
    const char *s;
    size_t n;
    if (!json_read_string(&c->r, &s, &n))
        return jfail(c);
    if (n >= size)
        return mis(c, "expect.json: a string of %zu bytes, more than %zu", n, size - 1);
    memcpy(out, s, n);
    out[n] = '\0';
    if (len != NULL)
        *len = n;
    return true;
}

static bool read_jint(fx *c, int64_t *out)
{
    json_number num;
    if (json_peek(&c->r) != JSON_NUMBER || !json_read_number(&c->r, &num) || !num.is_integer ||
        num.overflow)
        return mis(c, "expect.json: an integer expected");
    *out = num.value;
    return true;
}

static int hexv(int ch)
{
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
}

/* The hex string next in the JSON, decoded (malloc'd). */
static unsigned char *read_hex(fx *c, size_t *n)
{
    if (json_peek(&c->r) != JSON_STRING) {
        mis(c, "expect.json: a hex string expected");
        return NULL;
    }
    const char *s;
    size_t l;
    if (!json_read_string(&c->r, &s, &l)) {
        jfail(c);
        return NULL;
    }
    unsigned char *out = malloc(l / 2 + 1);
    for (size_t i = 0; i + 1 < l; i += 2)
        out[i / 2] = (unsigned char)(hexv(s[i]) * 16 + hexv(s[i + 1]));
    *n = l / 2;
    return out;
}

static bool match(fx *c, const pk_value *v);

/* A JSON array against the items of a sequence (any kind: the caller checked). */
static bool match_items(fx *c, const pk_value *v)
{
    if (!json_open_array(&c->r))
        return jfail(c);
    size_t i = 0, n = pk_len(v);
    int m;
    while ((m = json_next_item(&c->r)) == 1) {
        if (i >= n)
            return mis(c, "more than the %zu items loaded", n);
        size_t o = path_push(c, "[%zu]", i);
        if (!match(c, pk_item(v, i)))
            return false;
        path_pop(c, o);
        i++;
    }
    if (m < 0)
        return jfail(c);
    if (i != n)
        return mis(c, "%zu items loaded, %zu expected", n, i);
    return true;
}

/* [[k, v], ...] against a dict (NULL: empty). */
static bool match_pairs(fx *c, const pk_value *d)
{
    if (!json_open_array(&c->r))
        return jfail(c);
    size_t i = 0, n = pk_len(d);
    int m;
    while ((m = json_next_item(&c->r)) == 1) {
        if (i >= n)
            return mis(c, "more than the %zu keys loaded", n);
        char kb[64];
        size_t o = path_push(c, "[%s]", vdesc(pk_dict_key(d, i), kb, sizeof kb));
        if (!json_open_array(&c->r) || json_next_item(&c->r) != 1)
            return jfail(c);
        if (!match(c, pk_dict_key(d, i)))
            return false;
        if (json_next_item(&c->r) != 1)
            return jfail(c);
        if (!match(c, pk_dict_value(d, i)))
            return false;
        if (json_next_item(&c->r) != 0)
            return jfail(c);
        path_pop(c, o);
        i++;
    }
    if (m < 0)
        return jfail(c);
    if (i != n)
        return mis(c, "%zu keys loaded, %zu expected", n, i);
    return true;
}

static bool match_int_array(fx *c, const int64_t *vals, size_t n, const char *what)
{
    if (!json_open_array(&c->r))
        return jfail(c);
    size_t i = 0;
    int m;
    while ((m = json_next_item(&c->r)) == 1) {
        int64_t x;
        if (!read_jint(c, &x))
            return false;
        if (i >= n || vals[i] != x)
            return mis(c, "%s[%zu] differs (expected %" PRId64 ")", what, i, x);
        i++;
    }
    if (m < 0)
        return jfail(c);
    return i == n ? true : mis(c, "%s has %zu dimensions, %zu expected", what, n, i);
}

/* Element by element along the strides, from the archive's bytes. */
static bool match_tensor_bytes(fx *c, const pk_value *v)
{
    size_t n;
    unsigned char *want = read_hex(c, &n);
    if (want == NULL)
        return false;
    pk_tensor_view tv;
    ckpt_err err;
    bool ok = true;
    if (pk_tensor_resolve(v, c->z, &tv, &err) != MCRT_OK) {
        ok = mis(c, "resolve: %s", err.msg);
    } else if (n != tv.nelem * tv.elem_size) {
        ok = mis(c, "%zu bytes expected, the view has %" PRIu64, n, tv.nelem * tv.elem_size);
    } else {
        int64_t idx[PK_MAX_DIMS] = {0};
        for (uint64_t e = 0; e < tv.nelem && ok; e++) {
            uint64_t off = 0;
            for (int32_t d = 0; d < tv.ndim; d++)
                off += (uint64_t)idx[d] * (uint64_t)tv.stride[d];
            off *= tv.elem_size;
            TF_CHECK(off + tv.elem_size <= tv.extent, "element %" PRIu64 " outside the view", e);
            if (memcmp(tv.data + off, want + e * tv.elem_size, tv.elem_size) != 0)
                ok = mis(c, "element %" PRIu64 " differs", e);
            for (int32_t d = tv.ndim - 1; d >= 0; d--) {
                if (++idx[d] < tv.shape[d])
                    break;
                idx[d] = 0;
            }
        }
        c->elements += tv.nelem;
    }
    free(want);
    return ok;
}

static bool match_tensor(fx *c, const pk_value *v)
{
    const pk_tensor *t = pk_as_tensor(v);
    if (t == NULL)
        return mis(c, "a tensor expected, loaded %s", pk_kind_name(pk_kind_of(v)));
    c->tensors++;
    if (!json_open_object(&c->r))
        return jfail(c);
    const char *k;
    size_t kl;
    int m;
    while ((m = json_next_member(&c->r, &k, &kl)) == 1) {
        char key[32];
        snprintf(key, sizeof key, "%.*s", (int)kl, k);
        char s[64];
        int64_t x;
        bool ok = true;
        if (strcmp(key, "dtype") == 0) {
            ok = read_jstr(c, s, sizeof s, NULL) &&
                 (strcmp(s, t->storage->dtype.name) == 0 ||
                  mis(c, "dtype %s, expected %s", t->storage->dtype.name, s));
        } else if (strcmp(key, "hex") == 0) {
            ok = match_tensor_bytes(c, v);
        } else if (strcmp(key, "numel") == 0) {
            ok = read_jint(c, &x) && ((uint64_t)x == t->storage->numel ||
                                      mis(c, "storage numel %" PRIu64, t->storage->numel));
        } else if (strcmp(key, "offset") == 0) {
            ok = read_jint(c, &x) && ((uint64_t)x == t->storage_offset ||
                                      mis(c, "storage offset %" PRIu64, t->storage_offset));
        } else if (strcmp(key, "parameter") == 0 || strcmp(key, "requires_grad") == 0) {
            json_kind jk = json_peek(&c->r);
            bool want = jk == JSON_TRUE;
            if (!json_skip(&c->r))
                return jfail(c);
            bool got = key[0] == 'p' ? t->parameter : t->requires_grad;
            ok = got == want || mis(c, "%s is %d", key, got);
        } else if (strcmp(key, "shape") == 0) {
            ok = match_int_array(c, t->shape, (size_t)t->ndim, "shape");
        } else if (strcmp(key, "stride") == 0) {
            ok = match_int_array(c, t->stride, (size_t)t->ndim, "stride");
        } else if (strcmp(key, "storage") == 0) {
            ok = read_jstr(c, s, sizeof s, NULL) &&
                 (strcmp(s, t->storage->key) == 0 ||
                  mis(c, "storage key '%s', expected '%s'", t->storage->key, s));
        } else {
            ok = mis(c, "expect.json: unknown tensor field %s", key);
        }
        if (!ok)
            return false;
    }
    return m == 0 ? true : jfail(c);
}

static bool match_ndarray(fx *c, const pk_value *v)
{
    if (pk_class_name(v) == NULL || strcmp(pk_class_name(v), "numpy.ndarray") != 0)
        return mis(c, "a numpy.ndarray expected");
    const pk_value *st = pk_object_state(v);
    if (pk_kind_of(st) != PK_TUPLE || pk_len(st) != 5)
        return mis(c, "the ndarray's state is not a 5-tuple");
    if (!json_open_object(&c->r))
        return jfail(c);
    const char *k;
    size_t kl;
    int m;
    while ((m = json_next_member(&c->r, &k, &kl)) == 1) {
        char key[16];
        snprintf(key, sizeof key, "%.*s", (int)kl, k);
        if (strcmp(key, "dtype") == 0) {
            char want[32], got[32];
            if (!read_jstr(c, want, sizeof want, NULL))
                return false;
            const pk_value *dt = pk_item(st, 2);
            const char *order = pk_as_str(pk_item(pk_object_state(dt), 1), NULL);
            const char *code = pk_as_str(pk_item(pk_object_args(dt), 0), NULL);
            snprintf(got, sizeof got, "%s%s", order ? order : "?", code ? code : "?");
            if (strcmp(got, want) != 0)
                return mis(c, "ndarray dtype %s, expected %s", got, want);
        } else if (strcmp(key, "hex") == 0) {
            size_t n, bn;
            unsigned char *want = read_hex(c, &n);
            if (want == NULL)
                return false;
            const unsigned char *got = pk_as_bytes(pk_item(st, 4), &bn);
            bool same = got != NULL && bn == n && memcmp(got, want, n) == 0;
            free(want);
            if (!same)
                return mis(c, "ndarray bytes differ");
        } else if (strcmp(key, "shape") == 0) {
            const pk_value *sh = pk_item(st, 1);
            int64_t dims[PK_MAX_DIMS];
            size_t nd = pk_len(sh);
            for (size_t i = 0; i < nd && i < PK_MAX_DIMS; i++)
                if (!pk_as_int(pk_item(sh, i), &dims[i]))
                    return mis(c, "ndarray shape[%zu] not an int", i);
            if (!match_int_array(c, dims, nd, "ndarray shape"))
                return false;
        } else {
            return mis(c, "expect.json: unknown ndarray field %s", key);
        }
    }
    return m == 0 ? true : jfail(c);
}

/* {"int": ...}, {"dict": ..., "attrs": ...}, {"object": ...} ... */
static bool match_form(fx *c, const pk_value *v)
{
    if (!json_open_object(&c->r))
        return jfail(c);
    const char *k;
    size_t kl;
    int m;
    char vb[200];
    while ((m = json_next_member(&c->r, &k, &kl)) == 1) {
        char key[32];
        snprintf(key, sizeof key, "%.*s", (int)kl, k);
        char s[2048];
        size_t sl;
        bool ok = true;
        pk_kind kind = pk_kind_of(v);
        if (strcmp(key, "int") == 0) {
            if (!read_jstr(c, s, sizeof s, NULL))
                return false;
            char got[40];
            int64_t i;
            if (pk_as_int(v, &i))
                snprintf(got, sizeof got, "%" PRId64, i);
            const char *g = kind == PK_INT ? got : pk_as_bigint(v);
            ok = (g != NULL && strcmp(g, s) == 0) ||
                 mis(c, "int %s expected, loaded %s", s, vdesc(v, vb, sizeof vb));
        } else if (strcmp(key, "float") == 0) {
            if (!read_jstr(c, s, sizeof s, NULL))
                return false;
            double want = strcmp(s, "nan") == 0 ? NAN : strtod(s, NULL), got;
            ok = (kind == PK_FLOAT && pk_as_float(v, &got) &&
                  (isnan(want) ? isnan(got) : memcmp(&got, &want, sizeof got) == 0)) ||
                 mis(c, "float %s expected, loaded %s", s, vdesc(v, vb, sizeof vb));
        } else if (strcmp(key, "bytes") == 0 || strcmp(key, "bytesio") == 0) {
            size_t n, bn;
            unsigned char *want = read_hex(c, &n);
            if (want == NULL)
                return false;
            bool right_kind = key[5] == 'i' ? pk_class_name(v) != NULL &&
                                                  strcmp(pk_class_name(v), "_io.BytesIO") == 0
                                            : kind == PK_BYTES;
            const unsigned char *got = pk_as_bytes(v, &bn);
            ok = (right_kind && got != NULL && bn == n && memcmp(got, want, n) == 0) ||
                 mis(c, "%s of %zu bytes expected, loaded %s", key, n, vdesc(v, vb, sizeof vb));
            free(want);
        } else if (strcmp(key, "tuple") == 0 || strcmp(key, "set") == 0 ||
                   strcmp(key, "frozenset") == 0) {
            pk_kind want = key[0] == 't' ? PK_TUPLE : key[0] == 's' ? PK_SET : PK_FROZENSET;
            ok = kind == want ? match_items(c, v)
                              : mis(c, "%s expected, loaded %s", key, vdesc(v, vb, sizeof vb));
        } else if (strcmp(key, "dtype") == 0) {
            if (!read_jstr(c, s, sizeof s, NULL))
                return false;
            const pk_dtype *d = pk_as_dtype(v);
            ok = (d != NULL && strcmp(d->name, s) == 0) ||
                 mis(c, "torch.%s expected, loaded %s", s, vdesc(v, vb, sizeof vb));
        } else if (strcmp(key, "dict") == 0) {
            ok = kind == PK_DICT ? match_pairs(c, v)
                                 : mis(c, "a dict expected, loaded %s", vdesc(v, vb, sizeof vb));
        } else if (strcmp(key, "attrs") == 0) {
            size_t o = path_push(c, ".__dict__");
            ok = match_pairs(c, pk_attrs(v));
            path_pop(c, o);
        } else if (strcmp(key, "object") == 0) {
            if (!read_jstr(c, s, sizeof s, NULL))
                return false;
            ok = (kind == PK_OBJECT && strcmp(pk_class_name(v), s) == 0) ||
                 mis(c, "a %s expected, loaded %s", s, vdesc(v, vb, sizeof vb));
        } else if (strcmp(key, "args") == 0) {
            ok = kind == PK_OBJECT ? match_items(c, pk_object_args(v)) : mis(c, "not an object");
        } else if (strcmp(key, "member") == 0) {
            if (!read_jstr(c, s, sizeof s, &sl))
                return false;
            const char *mem = pk_enum_member(v);
            ok = mem == NULL || strcmp(mem, s) == 0 ||
                 mis(c, "enum member %s expected, loaded %s", s, mem);
        } else if (strcmp(key, "value") == 0) {
            if (pk_enum_member(v) != NULL) {
                if (!json_skip(&c->r))
                    return jfail(c);
            } else {
                const pk_value *a = pk_object_args(v);
                ok = pk_len(a) == 1 ? match(c, pk_item(a, 0)) : mis(c, "an enum value expected");
            }
        } else if (strcmp(key, "tensor") == 0) {
            ok = match_tensor(c, v);
        } else if (strcmp(key, "ndarray") == 0) {
            ok = match_ndarray(c, v);
        } else {
            ok = mis(c, "expect.json: unknown form %s", key);
        }
        if (!ok)
            return false;
    }
    return m == 0 ? true : jfail(c);
}

static bool match(fx *c, const pk_value *v)
{
    char vb[200];
    c->values++;
    if (v == NULL)
        return mis(c, "nothing loaded");
    switch (json_peek(&c->r)) {
    case JSON_NULL:
        if (!json_skip(&c->r))
            return jfail(c);
        return pk_kind_of(v) == PK_NONE || mis(c, "None expected, loaded %s",
                                               vdesc(v, vb, sizeof vb));
    case JSON_TRUE:
    case JSON_FALSE: {
        bool want = json_peek(&c->r) == JSON_TRUE, got;
        if (!json_skip(&c->r))
            return jfail(c);
        return (pk_as_bool(v, &got) && got == want) ||
               mis(c, "%s expected, loaded %s", want ? "True" : "False", vdesc(v, vb, sizeof vb));
    }
    case JSON_STRING: {
        const char *s;
        size_t n, gl;
        if (!json_read_string(&c->r, &s, &n))
            return jfail(c);
        const char *g = pk_as_str(v, &gl);
        return (g != NULL && gl == n && memcmp(g, s, n) == 0) ||
               mis(c, "a str of %zu bytes expected, loaded %s", n, vdesc(v, vb, sizeof vb));
    }
    case JSON_ARRAY:
        return pk_kind_of(v) == PK_LIST ? match_items(c, v)
                                        : mis(c, "a list expected, loaded %s",
                                              vdesc(v, vb, sizeof vb));
    case JSON_OBJECT:
        return match_form(c, v);
    default:
        return jfail(c);
    }
}

/* ---- the files of expect.json -------------------------------------------------------- */

typedef struct fentry {
    char name[256];
    int64_t size;
} fentry;

typedef struct ffile {
    char name[128], kind[32];
    int64_t offset, length;
    fentry ent[64];
    size_t n_ent;
    char extra[16][128];
    const char *extra_p[17];
    size_t n_extra;
} ffile;

static bool read_entries(fx *c, ffile *f)
{
    if (!json_open_array(&c->r))
        return jfail(c);
    int m;
    while ((m = json_next_item(&c->r)) == 1) {
        ck_assert_uint_lt(f->n_ent, 64);
        fentry *e = &f->ent[f->n_ent++];
        if (!json_open_array(&c->r) || json_next_item(&c->r) != 1 ||
            !read_jstr(c, e->name, sizeof e->name, NULL) || json_next_item(&c->r) != 1 ||
            !read_jint(c, &e->size) || json_next_item(&c->r) != 0)
            return c->bad ? false : jfail(c);
    }
    return m == 0 ? true : jfail(c);
}

/* Open, check the archive's entries, load, compare: one "files" item. */
static void check_file(fx *c, ffile *f)
{
    size_t n;
    unsigned char *buf = slurp(f->name, &n);
    zip_archive *z = NULL;
    ckpt_err err;
    const unsigned char *pk = buf;
    size_t pl = n;
    char label[256];
    snprintf(label, sizeof label, "%s", f->name);
    if (strcmp(f->kind, "pickle") != 0) {
        const unsigned char *base = buf;
        size_t len = n;
        if (strcmp(f->kind, "embedded") == 0) {
            ck_assert(f->offset >= 0 && f->length >= 0 && (uint64_t)(f->offset + f->length) <= n);
            base = buf + f->offset;
            len = (size_t)f->length;
            /* the whole file is not an archive */
            zip_archive *w = (zip_archive *)0x1;
            ck_assert_int_eq(zip_open(buf, n, f->name, &w, &err), MCRT_E_DATA);
            ck_assert_ptr_null(w);
        }
        ck_assert_msg(zip_open(base, len, f->name, &z, &err) == MCRT_OK, "%s", err.msg);
        ck_assert_msg(zip_count(z) == f->n_ent, "%s: %zu entries, expected %zu", f->name,
                      zip_count(z), f->n_ent);
        for (size_t i = 0; i < f->n_ent; i++) {
            const zip_entry *e = zip_at(z, i);
            ck_assert_str_eq(e->name, f->ent[i].name);
            ck_assert_uint_eq(e->size, (uint64_t)f->ent[i].size);
            ck_assert_msg(zip_verify(z, e, &err) == MCRT_OK, "%s", err.msg);
            if (strstr(e->name, "/data/") != NULL)
                ck_assert_uint_eq(e->offset % 64, 0); /* torch aligns storages */
        }
        const zip_entry *pe;
        ck_assert_msg(zip_torch_record(z, "data.pkl", &pe, &err) == MCRT_OK, "%s", err.msg);
        pk = pe->data;
        pl = (size_t)pe->size;
        snprintf(label, sizeof label, "%s: %s", f->name, pe->name);
    }
    pk_options o;
    pk_options_default(&o);
    if (f->n_extra > 0) {
        for (size_t i = 0; i < f->n_extra; i++)
            f->extra_p[i] = f->extra[i];
        f->extra_p[f->n_extra] = NULL;
        o.extra_classes = f->extra_p;
    }
    pk_arena *a = pk_arena_new();
    pk_value *v = pk_load(pk, pl, &o, label, a, NULL, &err);
    ck_assert_msg(v != NULL, "%s", err.msg);
    c->z = z;
    size_t old = path_push(c, "%s", f->name);
    bool ok = match(c, v);
    ck_assert_msg(ok, "%s", c->why);
    path_pop(c, old);
    pk_arena_free(a);
    zip_close(z);
    free(buf);
}

static char *expect_text(size_t *n)
{
    return (char *)slurp("expect.json", n);
}

/* Walk expect.json to the array `key` at the top level. */
static void open_top(fx *c, const char *text, size_t n, const char *key)
{
    memset(c, 0, sizeof *c);
    json_init(&c->r, text, n, 0, JSON_MAX_DEPTH);
    ck_assert(json_open_object(&c->r));
    const char *k;
    size_t kl;
    while (json_next_member(&c->r, &k, &kl) == 1) {
        if (json_eq(k, kl, key)) {
            ck_assert(json_open_array(&c->r));
            return;
        }
        ck_assert(json_skip(&c->r));
    }
    ck_abort_msg("expect.json has no %s", key);
}

START_TEST(fixtures_files)
{
    size_t n;
    char *text = expect_text(&n);
    fx *c = calloc(1, sizeof *c);
    open_top(c, text, n, "files");
    size_t files = 0;
    while (json_next_item(&c->r) == 1) {
        ffile *f = calloc(1, sizeof *f);
        ck_assert(json_open_object(&c->r));
        const char *k;
        size_t kl;
        int m;
        while ((m = json_next_member(&c->r, &k, &kl)) == 1) {
            char key[32];
            snprintf(key, sizeof key, "%.*s", (int)kl, k);
            bool ok = true;
            if (strcmp(key, "entries") == 0) {
                ok = read_entries(c, f);
            } else if (strcmp(key, "extra_classes") == 0) {
                ck_assert(json_open_array(&c->r));
                while (ok && json_next_item(&c->r) == 1) {
                    ck_assert_uint_lt(f->n_extra, 16);
                    ok = read_jstr(c, f->extra[f->n_extra++], 128, NULL);
                }
            } else if (strcmp(key, "kind") == 0) {
                ok = read_jstr(c, f->kind, sizeof f->kind, NULL);
            } else if (strcmp(key, "name") == 0) {
                ok = read_jstr(c, f->name, sizeof f->name, NULL);
            } else if (strcmp(key, "offset") == 0) {
                ok = read_jint(c, &f->offset);
            } else if (strcmp(key, "length") == 0) {
                ok = read_jint(c, &f->length);
            } else if (strcmp(key, "value") == 0) {
                check_file(c, f); /* the last key (sorted) */
            } else {
                ck_abort_msg("expect.json: unknown key %s", key);
            }
            ck_assert_msg(ok, "%s", c->why);
        }
        ck_assert_int_eq(m, 0);
        files++;
        free(f);
    }
    ck_assert_uint_ge(files, 11);
    printf("torchfmt fixtures: %zu files, %zu values, %zu tensors, %zu elements compared\n",
           files, c->values, c->tensors, c->elements);
    json_fini(&c->r);
    free(c);
    free(text);
}
END_TEST

/* What a Megatron loader reads, through the accessors. */
START_TEST(fixtures_megatron)
{
    size_t n;
    unsigned char *buf = slurp("megatron.pt", &n);
    zip_archive *z;
    ckpt_err err;
    ck_assert_msg(zip_open(buf, n, "megatron.pt", &z, &err) == MCRT_OK, "%s", err.msg);
    const char *pre;
    size_t pl;
    ck_assert_int_eq(zip_torch_prefix(z, &pre, &pl, &err), MCRT_OK);
    ck_assert_uint_eq(pl, 8);
    ck_assert_int_eq(memcmp(pre, "megatron", 8), 0);
    const zip_entry *pe, *ve;
    ck_assert_int_eq(zip_torch_record(z, "data.pkl", &pe, &err), MCRT_OK);
    ck_assert_int_eq(zip_torch_record(z, "version", &ve, &err), MCRT_OK);
    ck_assert_uint_eq(ve->size, 2);
    ck_assert_int_eq(memcmp(ve->data, "3\n", 2), 0);
    pk_arena *a = pk_arena_new();
    pk_value *root = pk_load(pe->data, pe->size, NULL, "megatron.pt", a, NULL, &err);
    ck_assert_msg(root != NULL, "%s", err.msg);
    double f;
    int64_t i;
    bool b;
    size_t sl;
    ck_assert(pk_as_float(pk_dict_get(root, "checkpoint_version"), &f) && f == 3.0);
    ck_assert(pk_as_int(pk_dict_get(root, "iteration"), &i) && i == 100);
    const pk_value *args = pk_dict_get(root, "args");
    ck_assert_str_eq(pk_class_name(args), "argparse.Namespace");
    ck_assert(pk_as_int(pk_dict_get(args, "hidden_size"), &i) && i == 8);
    ck_assert(pk_as_int(pk_dict_get(args, "num_layers"), &i) && i == 2);
    ck_assert(pk_as_int(pk_dict_get(args, "padded_vocab_size"), &i) && i == 64);
    ck_assert_int_eq(pk_kind_of(pk_dict_get(args, "num_query_groups")), PK_NONE);
    ck_assert(pk_as_bool(pk_dict_get(args, "bf16"), &b) && b);
    ck_assert(pk_as_float(pk_dict_get(args, "norm_epsilon"), &f) && f == 1e-5);
    ck_assert_str_eq(pk_as_str(pk_dict_get(args, "tokenizer_type"), &sl), "GPT2BPETokenizer");
    ck_assert_str_eq(pk_as_str(pk_dict_get(args, "position_embedding_type"), NULL),
                     "learned_absolute");
    const pk_dtype *dt = pk_as_dtype(pk_dict_get(args, "params_dtype"));
    ck_assert(dt != NULL && dt->dtype == MCRT_DTYPE_BF16);
    const pk_value *mt = pk_dict_get(args, "model_type");
    ck_assert_str_eq(pk_class_name(mt), "megatron.core.enums.ModelType");
    ck_assert(pk_enum_member(mt) != NULL ? strcmp(pk_enum_member(mt), "encoder_or_decoder") == 0
                                         : pk_as_int(pk_item(pk_object_args(mt), 0), &i) &&
                                               i == 1);
    ck_assert_str_eq(pk_class_name(pk_dict_get(args, "attention_backend")),
                     "megatron.core.transformer.enums.AttnBackend");
    ck_assert_uint_eq(pk_len(pk_dict_get(args, "data_path")), 2);
    /* the model: tensors and _extra_state */
    const pk_value *model = pk_dict_get(root, "model");
    ck_assert_int_eq(pk_kind_of(model), PK_DICT);
    ck_assert_ptr_nonnull(pk_dict_get(pk_attrs(model), "_metadata"));
    size_t tensors = 0, extras = 0;
    uint64_t bytes = 0;
    for (size_t k = 0; k < pk_len(model); k++) {
        const char *name = pk_as_str(pk_dict_key(model, k), &sl);
        const pk_value *t = pk_dict_value(model, k);
        if (sl > 13 && strcmp(name + sl - 13, "._extra_state") == 0) {
            size_t bl;
            ck_assert_ptr_nonnull(pk_as_bytes(t, &bl));
            extras++;
            continue;
        }
        pk_tensor_view tv;
        ck_assert_msg(pk_tensor_resolve(t, z, &tv, &err) == MCRT_OK, "%s: %s", name, err.msg);
        ck_assert_int_eq(tv.dtype, MCRT_DTYPE_BF16);
        ck_assert(tv.contiguous);
        ck_assert_msg(zip_verify(z, tv.entry, &err) == MCRT_OK, "%s", err.msg);
        bytes += tv.nelem * tv.elem_size;
        tensors++;
    }
    ck_assert_uint_eq(tensors, 14);
    ck_assert_uint_eq(extras, 4);
    ck_assert_uint_eq(bytes, 2 * (64 * 8 + 16 * 8 + 2 * (8 + 24 * 8 + 8 * 8 + 32 * 8 + 8 * 32) +
                                  16));
    const pk_tensor *wte =
        pk_as_tensor(pk_dict_get(model, "embedding.word_embeddings.weight"));
    ck_assert_int_eq(wte->ndim, 2);
    ck_assert_int_eq(wte->shape[0], 64);
    ck_assert_int_eq(wte->shape[1], 8);
    /* the rng state */
    const pk_value *rng = pk_item(pk_dict_get(root, "rng_state"), 0);
    const pk_tensor *trs = pk_as_tensor(pk_dict_get(rng, "torch_rng_state"));
    ck_assert(trs != NULL && trs->storage->dtype.dtype == MCRT_DTYPE_U8);
    const pk_value *np = pk_dict_get(rng, "np_rng_state");
    ck_assert_str_eq(pk_as_str(pk_item(np, 0), NULL), "MT19937");
    ck_assert_str_eq(pk_class_name(pk_item(np, 1)), "numpy.ndarray");
    ck_assert_int_eq(pk_kind_of(pk_item(pk_dict_get(rng, "random_rng_state"), 1)), PK_TUPLE);
    pk_arena_free(a);
    zip_close(z);
    free(buf);
}
END_TEST

START_TEST(fixtures_evil)
{
    size_t n;
    char *text = expect_text(&n);
    fx *c = calloc(1, sizeof *c);
    open_top(c, text, n, "evil");
    size_t count = 0;
    while (json_next_item(&c->r) == 1) {
        char name[128] = "", glob[128] = "", marker[128] = "";
        bool is_zip = false;
        ck_assert(json_open_object(&c->r));
        const char *k;
        size_t kl;
        while (json_next_member(&c->r, &k, &kl) == 1) {
            if (json_eq(k, kl, "global"))
                ck_assert(read_jstr(c, glob, sizeof glob, NULL));
            else if (json_eq(k, kl, "marker"))
                ck_assert(read_jstr(c, marker, sizeof marker, NULL));
            else if (json_eq(k, kl, "name"))
                ck_assert(read_jstr(c, name, sizeof name, NULL));
            else if (json_eq(k, kl, "zip")) {
                is_zip = json_peek(&c->r) == JSON_TRUE;
                ck_assert(json_skip(&c->r));
            } else
                ck_assert(json_skip(&c->r));
        }
        size_t len;
        unsigned char *buf = slurp(name, &len);
        const unsigned char *pk = buf;
        size_t pl = len;
        zip_archive *z = NULL;
        ckpt_err err;
        if (is_zip) {
            ck_assert_msg(zip_open(buf, len, name, &z, &err) == MCRT_OK, "%s", err.msg);
            const zip_entry *pe;
            ck_assert_int_eq(zip_torch_record(z, "data.pkl", &pe, &err), MCRT_OK);
            pk = pe->data;
            pl = (size_t)pe->size;
        }
        pk_arena *a = pk_arena_new();
        memset(&err, 0, sizeof err);
        pk_value *v = pk_load(pk, pl, NULL, name, a, NULL, &err);
        ck_assert_msg(v == NULL, "%s loaded", name);
        char want[300];
        snprintf(want, sizeof want, "global '%s' is not allowed", glob);
        const char *parts[] = {want, "never runs code"};
        expect_msg(err.status, &err, MCRT_E_DATA, name, parts, 2, name);
        char mp[4096];
        snprintf(mp, sizeof mp, "%s/%s", fixture_dir, marker);
        ck_assert_msg(access(mp, F_OK) != 0, "%s exists: something ran", mp);
        pk_arena_free(a);
        zip_close(z);
        free(buf);
        count++;
    }
    ck_assert_uint_eq(count, 7);
    json_fini(&c->r);
    free(c);
    free(text);
}
END_TEST

START_TEST(fixtures_zips)
{
    size_t n;
    char *text = expect_text(&n);
    fx *c = calloc(1, sizeof *c);
    open_top(c, text, n, "zips");
    size_t count = 0;
    while (json_next_item(&c->r) == 1) {
        char name[128] = "", error[128] = "";
        ck_assert(json_open_object(&c->r));
        const char *k;
        size_t kl;
        size_t ne = 0;
        char names[8][64];
        unsigned char *datas[8];
        size_t lens[8];
        while (json_next_member(&c->r, &k, &kl) == 1) {
            if (json_eq(k, kl, "entries")) {
                ck_assert(json_open_array(&c->r));
                while (json_next_item(&c->r) == 1) {
                    ck_assert_uint_lt(ne, 8);
                    ck_assert(json_open_array(&c->r) && json_next_item(&c->r) == 1);
                    ck_assert(read_jstr(c, names[ne], sizeof names[ne], NULL));
                    ck_assert(json_next_item(&c->r) == 1);
                    datas[ne] = read_hex(c, &lens[ne]);
                    ck_assert(json_next_item(&c->r) == 0);
                    ne++;
                }
            } else if (json_eq(k, kl, "error")) {
                ck_assert(read_jstr(c, error, sizeof error, NULL));
            } else if (json_eq(k, kl, "name")) {
                ck_assert(read_jstr(c, name, sizeof name, NULL));
            } else {
                ck_assert(json_skip(&c->r));
            }
        }
        size_t len;
        unsigned char *buf = slurp(name, &len);
        zip_archive *z = NULL;
        ckpt_err err;
        mcrt_status s = zip_open(buf, len, name, &z, &err);
        if (error[0] != '\0') {
            char ent[200];
            snprintf(ent, sizeof ent, "entry '%s'", error);
            const char *parts[] = {ent, "deflate"};
            expect_msg(s, &err, MCRT_E_UNSUPPORTED, name, parts, 2, name);
        } else {
            ck_assert_msg(s == MCRT_OK, "%s", err.msg);
            ck_assert_uint_eq(zip_count(z), ne);
            for (size_t i = 0; i < ne; i++) {
                const zip_entry *e = zip_find(z, names[i]);
                ck_assert_msg(e != NULL, "%s: no %s", name, names[i]);
                ck_assert_uint_eq(e->size, lens[i]);
                ck_assert(lens[i] == 0 || memcmp(e->data, datas[i], lens[i]) == 0);
                ck_assert_int_eq(zip_verify(z, e, &err), MCRT_OK);
            }
        }
        for (size_t i = 0; i < ne; i++)
            free(datas[i]);
        zip_close(z);
        free(buf);
        count++;
    }
    ck_assert_uint_eq(count, 4);
    json_fini(&c->r);
    free(c);
    free(text);
}
END_TEST

static const char *const dcp_classes[] = {
    "torch.distributed.checkpoint.metadata.MetadataIndex",
    "torch.distributed.checkpoint.metadata.ChunkStorageMetadata",
    "torch.distributed.checkpoint.metadata.TensorProperties",
    "torch.distributed.checkpoint.metadata.TensorStorageMetadata",
    "torch.distributed.checkpoint.metadata.BytesStorageMetadata",
    "torch.distributed.checkpoint.metadata._StorageInfo",
    "torch.distributed.checkpoint.metadata.Metadata",
    NULL,
};

/* Cut the real files: archives at every (or every k-th) length, pickles too. */
START_TEST(fixtures_truncations)
{
    static const struct {
        const char *name;
        size_t zstep, pstep;
    } files[] = {{"plain.pt", 1, 1}, {"state.pt", 1, 1}, {"megatron.pt", 13, 3},
                 {"data_p0.pkl", 0, 17}, {"data_p2.pkl", 0, 13}, {"data_p5.pkl", 0, 11},
                 {"dcp_metadata.pkl", 0, 1}};
    size_t opens = 0, loads = 0;
    for (size_t k = 0; k < sizeof files / sizeof files[0]; k++) {
        size_t n;
        unsigned char *buf = slurp(files[k].name, &n);
        const unsigned char *pk = buf;
        size_t pl = n;
        ckpt_err err;
        zip_archive *z = NULL;
        if (files[k].zstep > 0) {
            for (size_t cut = 0; cut < n; cut += (cut + 300 > n ? 1 : files[k].zstep)) {
                unsigned char *c = malloc(cut ? cut : 1);
                memcpy(c, buf, cut);
                zip_archive *t = (zip_archive *)0x1;
                mcrt_status s = zip_open(c, cut, files[k].name, &t, &err);
                TF_CHECK(s == MCRT_E_DATA && t == NULL, "%s cut at %zu: %d", files[k].name, cut,
                         s);
                free(c);
                opens++;
            }
            ck_assert_int_eq(zip_open(buf, n, files[k].name, &z, &err), MCRT_OK);
            const zip_entry *pe;
            ck_assert_int_eq(zip_torch_record(z, "data.pkl", &pe, &err), MCRT_OK);
            pk = pe->data;
            pl = (size_t)pe->size;
        }
        pk_options o;
        pk_options_default(&o);
        o.extra_classes = dcp_classes;
        pk_arena *a = pk_arena_new();
        /* the whole pickle loads */
        pk_value *whole = pk_load(pk, pl, &o, files[k].name, a, NULL, &err);
        ck_assert_msg(whole != NULL, "%s", err.msg);
        for (size_t cut = 0; cut < pl; cut += (cut + 100 > pl ? 1 : files[k].pstep)) {
            unsigned char *c = malloc(cut ? cut : 1);
            memcpy(c, pk, cut);
            pk_value *v = pk_load(c, cut, &o, files[k].name, a, NULL, &err);
            TF_CHECK(v == NULL && err.status == MCRT_E_DATA, "%s: the prefix of %zu bytes: %s",
                     files[k].name, cut, v ? "loaded" : err.msg);
            free(c);
            loads++;
            /* a fresh arena: a failed load leaves its garbage there */
            pk_arena_free(a);
            a = pk_arena_new();
        }
        pk_arena_free(a);
        zip_close(z);
        free(buf);
    }
    printf("torchfmt truncations: %zu archive opens, %zu pickle loads refused\n", opens, loads);
}
END_TEST

/* ---- main ------------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    Suite *s = suite_create("torchfmt");
    if (argc == 4 && strcmp(argv[1], "--fixtures") == 0) {
        snprintf(fixture_dir, sizeof fixture_dir, "%s", argv[2]);
        FILE *f = fopen(argv[3], "r");
        char line[256] = "";
        if (f == NULL || fgets(line, sizeof line, f) == NULL) {
            fprintf(stderr, "test_torchfmt: cannot read the stamp %s\n", argv[3]);
            if (f != NULL)
                fclose(f);
            return 1;
        }
        fclose(f);
        if (strncmp(line, "skipped", 7) == 0) {
            printf("test_torchfmt: %s", line); /* one line: torch is missing */
            return 77;
        }
        TCase *tf = tcase_create("fixtures");
        tcase_set_timeout(tf, 600);
        tcase_add_test(tf, fixtures_files);
        tcase_add_test(tf, fixtures_megatron);
        tcase_add_test(tf, fixtures_evil);
        tcase_add_test(tf, fixtures_zips);
        tcase_add_test(tf, fixtures_truncations);
        suite_add_tcase(s, tf);
    } else if (argc != 1) {
        fprintf(stderr, "usage: test_torchfmt [--fixtures DIR STAMP]\n");
        return 2;
    } else {
        TCase *tz = tcase_create("zip");
        tcase_set_timeout(tz, 120);
        tcase_add_test(tz, crc_vectors);
        tcase_add_test(tz, zip_good);
        tcase_add_test(tz, zip_small_cases);
        tcase_add_test(tz, zip_embedded);
        tcase_add_loop_test(tz, zip_bad_table, 0, (int)(sizeof zbads / sizeof zbads[0]));
        tcase_add_test(tz, zip_truncations);
        suite_add_tcase(s, tz);
        TCase *tp = tcase_create("pickle");
        tcase_set_timeout(tp, 120);
        tcase_add_loop_test(tp, pickle_table, 0, (int)(sizeof pcases / sizeof pcases[0]));
        tcase_add_test(tp, pickle_truncations);
        tcase_add_test(tp, pickle_used);
        tcase_add_test(tp, accessors);
        tcase_add_test(tp, extra_classes);
        tcase_add_test(tp, resolve_tensors);
        suite_add_tcase(s, tp);
        TCase *tb = tcase_create("bombs");
        tcase_set_timeout(tb, 120);
        tcase_add_test(tb, bomb_deep_lists);
        tcase_add_test(tb, bomb_deep_tuples_and_marks);
        tcase_add_test(tb, bomb_laughs);
        tcase_add_test(tb, bomb_hash_flood);
        tcase_add_test(tb, bomb_big_ints);
        tcase_add_test(tb, limits);
        suite_add_tcase(s, tb);
    }
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
