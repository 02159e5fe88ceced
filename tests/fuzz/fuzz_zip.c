/*
 * tests/fuzz/fuzz_zip.c: libFuzzer target for the torch.save ZIP reader
 * (core/checkpoint/zip.c), and the pickle and tensor resolution behind it.
 *
 * Input: the bytes of an archive, opened from memory as a loader opens its
 * mapping (and again one byte in, as an archive embedded in a .distcp file
 * is). When it opens: every entry is listed, found by name, CRC-checked,
 * and its bytes read; the torch helpers run; when there is a
 * "<prefix>/data.pkl" its pickle is loaded (small limits) and every tensor
 * in its top-level dict or list is resolved against the archive.
 * Besides crashes, leaks and sanitizer reports, these are bugs (abort):
 *   - an entry whose data, name or local header is outside the input, or
 *     two entries sharing a byte, or a name with a NUL or not terminated;
 *   - zip_find not returning the listed entry, zip_verify disagreeing with
 *     zip_crc32;
 *   - a resolved tensor view outside its entry;
 *   - a failure without a one-line message naming the label, or a status
 *     other than DATA / UNSUPPORTED / NOTFOUND / NOMEM.
 *
 * Built as a fuzzer with clang (README.md); with any compiler as a corpus
 * replayer that the test suite runs over corpus/zip.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/pickle.h"
#include "checkpoint/zip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                              \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz_zip: %s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

static void check_error(mcrt_status s, const ckpt_err *err, const char *label)
{
    CHECK(s == MCRT_E_DATA || s == MCRT_E_UNSUPPORTED || s == MCRT_E_NOTFOUND ||
          s == MCRT_E_NOMEM);
    CHECK(err->status == s);
    CHECK(strstr(err->msg, label) == err->msg);
    CHECK(strchr(err->msg, '\n') == NULL);
}

typedef struct span {
    uint64_t b, e;
} span;

static int cmp_span(const void *pa, const void *pb)
{
    const span *a = pa, *b = pb;
    return a->b < b->b ? -1 : a->b > b->b;
}

static void resolve(const pk_value *t, const zip_archive *z)
{
    pk_tensor_view tv;
    ckpt_err err;
    mcrt_status s = pk_tensor_resolve(t, z, &tv, &err);
    if (s != MCRT_OK) {
        check_error(s, &err, zip_label(z));
        return;
    }
    CHECK(tv.entry != NULL && tv.dtype != 0 && tv.elem_size > 0);
    CHECK(tv.byte_offset <= tv.entry->size);
    CHECK(tv.extent <= tv.entry->size - tv.byte_offset);
    CHECK(tv.data == tv.entry->data + tv.byte_offset);
    /* touch the first and last byte of the view */
    if (tv.extent > 0) {
        volatile unsigned char x = tv.data[0];
        x ^= tv.data[tv.extent - 1];
        (void)x;
    }
}

static void exercise_pickle(const zip_archive *z)
{
    const zip_entry *pe;
    ckpt_err err;
    mcrt_status s = zip_torch_record(z, "data.pkl", &pe, &err);
    if (s != MCRT_OK) {
        check_error(s, &err, zip_label(z));
        return;
    }
    pk_options o;
    pk_options_default(&o);
    o.limits.max_values = 1 << 16;
    o.limits.max_expanded = 1 << 16;
    o.limits.max_bytes = 1 << 24;
    pk_arena *a = pk_arena_new();
    if (a == NULL)
        return;
    pk_value *v = pk_load(pe->data, (size_t)pe->size, &o, zip_label(z), a, NULL, &err);
    if (v == NULL) {
        check_error(err.status, &err, zip_label(z));
    } else if (pk_kind_of(v) == PK_TENSOR) {
        resolve(v, z);
    } else {
        size_t n = pk_len(v);
        for (size_t i = 0; i < n; i++) {
            const pk_value *t =
                pk_kind_of(v) == PK_DICT ? pk_dict_value(v, i) : pk_item(v, i);
            if (pk_kind_of(t) == PK_TENSOR)
                resolve(t, z);
        }
    }
    pk_arena_free(a);
}

static void run(const uint8_t *data, size_t size, const char *label)
{
    zip_archive *z = (zip_archive *)0x1;
    ckpt_err err;
    memset(&err, 0, sizeof err);
    mcrt_status s = zip_open(data, size, label, &z, &err);
    if (s != MCRT_OK) {
        CHECK(z == NULL);
        check_error(s, &err, label);
        return;
    }
    CHECK(strcmp(zip_label(z), label) == 0);
    size_t n = zip_count(z);
    CHECK(zip_at(z, n) == NULL);
    span *sp = malloc((n ? n : 1) * sizeof *sp);
    CHECK(sp != NULL);
    for (size_t i = 0; i < n; i++) {
        const zip_entry *e = zip_at(z, i);
        CHECK(e != NULL && e->name != NULL && e->name_len > 0);
        CHECK(e->name_len <= ZIP_MAX_NAME && strlen(e->name) == e->name_len);
        CHECK(e->size <= ZIP_MAX_ENTRY_SIZE);
        CHECK(e->offset <= size && e->size <= size - e->offset);
        CHECK(e->header_offset + 30 + e->name_len <= e->offset);
        CHECK(e->data == data + e->offset);
        CHECK(zip_find(z, e->name) == e);
        const zip_entry *l = NULL;
        CHECK(zip_lookup(z, e->name, &l, &err) == MCRT_OK && l == e);
        uint32_t crc = zip_crc32(0, e->data, (size_t)e->size);
        s = zip_verify(z, e, &err);
        if (crc == e->crc32) {
            CHECK(s == MCRT_OK);
        } else {
            CHECK(s == MCRT_E_DATA);
            check_error(s, &err, label);
        }
        sp[i].b = e->header_offset;
        sp[i].e = e->offset + e->size;
    }
    /* no two entries share a byte */
    qsort(sp, n, sizeof *sp, cmp_span);
    for (size_t i = 1; i < n; i++)
        CHECK(sp[i].b >= sp[i - 1].e);
    free(sp);
    const zip_entry *none;
    s = zip_lookup(z, "no such entry \x01", &none, &err);
    CHECK(s == MCRT_E_NOTFOUND && none == NULL);
    check_error(s, &err, label);
    const char *pre;
    size_t pl;
    s = zip_torch_prefix(z, &pre, &pl, &err);
    if (s == MCRT_OK) {
        CHECK(pl > 0 && n > 0 && pre == zip_at(z, 0)->name && pre[pl] == '/');
        exercise_pickle(z);
    } else {
        check_error(s, &err, label);
    }
    zip_close(z);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run(data, size, "fuzz.pt");
    /* the same bytes one in: an embedded archive (offsets shift by one) */
    if (size > 1)
        run(data + 1, size - 1, "fuzz.distcp [1, +n)");
    return 0;
}
