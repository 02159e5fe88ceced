/*
 * tests/fuzz/fuzz_pickle.c: libFuzzer target for the restricted pickle
 * machine (core/checkpoint/pickle.c).
 *
 * Input: pickle bytes. They are loaded twice: with the default limits (the
 * whole input must be one pickle), and with small limits, extra classes
 * (torch_dist's dataclasses and a few test names) and trailing bytes
 * allowed. A loaded tree is walked completely through the accessors (the
 * small limits bound its size), rendered with pk_repr, and loaded a third
 * time into another arena (another hash seed).
 * Besides crashes, leaks, timeouts and sanitizer reports, these are bugs
 * (abort):
 *   - a failure without a one-line message starting with the label, or a
 *     status other than DATA / UNSUPPORTED / NOMEM;
 *   - a tree deeper than max_depth or expanding past max_expanded, a key of
 *     a dict that pk_dict_get does not find again, a tensor whose view
 *     leaves its storage, a str that is not NUL-terminated;
 *   - two loads of the same bytes that render differently (the seed must
 *     only change speed);
 *   - *used past the input, or a load that succeeded with limits and failed
 *     without them (other than on trailing bytes or extra classes).
 *
 * Built as a fuzzer with clang (README.md); with any compiler as a corpus
 * replayer that the test suite runs over corpus/pickle.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint/pickle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                              \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz_pickle: %s:%d: check failed: %s\n", __FILE__, __LINE__,      \
                    #cond);                                                                      \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

static const char *const extra[] = {
    "torch.distributed.checkpoint.metadata.MetadataIndex",
    "torch.distributed.checkpoint.metadata.ChunkStorageMetadata",
    "torch.distributed.checkpoint.metadata.TensorProperties",
    "torch.distributed.checkpoint.metadata.TensorStorageMetadata",
    "torch.distributed.checkpoint.metadata.BytesStorageMetadata",
    "torch.distributed.checkpoint.metadata._StorageInfo",
    "torch.distributed.checkpoint.metadata.Metadata",
    "m.C",
    "m.E",
    NULL,
};

static void check_error(const ckpt_err *err, const char *label)
{
    mcrt_status s = err->status;
    CHECK(s == MCRT_E_DATA || s == MCRT_E_UNSUPPORTED || s == MCRT_E_NOMEM);
    CHECK(strncmp(err->msg, label, strlen(label)) == 0);
    CHECK(strchr(err->msg, '\n') == NULL);
}

typedef struct item {
    const pk_value *v;
    size_t depth;
} item;

/* Walk every value (as a tree: shared values once per reference). */
static void walk(const pk_value *root, const pk_limits *lim)
{
    size_t cap = 256, n = 0, visited = 0;
    item *st = malloc(cap * sizeof *st);
    CHECK(st != NULL);
    st[n++] = (item){root, 1};
    while (n > 0) {
        item it = st[--n];
        const pk_value *v = it.v;
        if (v == NULL)
            continue;
        visited++;
        CHECK(visited <= lim->max_expanded);
        pk_kind k = pk_kind_of(v);
        CHECK(k >= PK_NONE && k <= PK_OBJECT);
        CHECK(pk_kind_name(k) != NULL);
        size_t len;
        const char *s = pk_as_str(v, &len);
        if (s != NULL)
            CHECK(s[len] == '\0');
        const char *big = pk_as_bigint(v);
        if (big != NULL)
            CHECK(strlen(big) <= lim->max_bigint + 1);
        const unsigned char *b = pk_as_bytes(v, &len);
        if (b != NULL && len > 0) {
            volatile unsigned char x = b[len - 1];
            (void)x;
        }
        const pk_tensor *t = pk_as_tensor(v);
        if (t != NULL) {
            CHECK(t->ndim >= 0 && t->ndim <= PK_MAX_DIMS);
            uint64_t last = 0, nelem = 1;
            for (int32_t d = 0; d < t->ndim; d++) {
                CHECK(t->shape[d] >= 0 && t->stride[d] >= 0);
                nelem *= (uint64_t)t->shape[d];
            }
            CHECK(nelem == t->nelem);
            if (nelem > 0) {
                for (int32_t d = 0; d < t->ndim; d++)
                    last += (uint64_t)(t->shape[d] - 1) * (uint64_t)t->stride[d];
                CHECK(t->storage_offset + last + 1 <= t->storage->numel);
            }
            CHECK(t->storage->key != NULL && t->storage->key[0] != '\0');
        }
        bool container = k == PK_TUPLE || k == PK_LIST || k == PK_DICT || k == PK_SET ||
                         k == PK_FROZENSET || k == PK_OBJECT || k == PK_TENSOR;
        if (container)
            CHECK(it.depth <= lim->max_depth);
        /* children */
        size_t m = pk_len(v);
        const pk_value *kids[4] = {pk_attrs(v), pk_object_args(v), pk_object_state(v), NULL};
        if (n + 2 * m + 4 > cap) {
            while (n + 2 * m + 4 > cap)
                cap *= 2;
            item *ns = realloc(st, cap * sizeof *st);
            CHECK(ns != NULL);
            st = ns;
        }
        for (size_t i = 0; i < m; i++) {
            if (k == PK_DICT) {
                const pk_value *key = pk_dict_key(v, i);
                const char *ks = pk_as_str(key, &len);
                if (ks != NULL && strlen(ks) == len)
                    CHECK(pk_dict_get(v, ks) == pk_dict_value(v, i));
                st[n++] = (item){key, it.depth + 1};
                st[n++] = (item){pk_dict_value(v, i), it.depth + 1};
            } else {
                st[n++] = (item){pk_item(v, i), it.depth + 1};
            }
        }
        for (int i = 0; i < 3; i++)
            if (kids[i] != NULL)
                st[n++] = (item){kids[i], it.depth + 1};
    }
    free(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ckpt_err err;
    /* 1: defaults, the whole input one pickle */
    pk_arena *a = pk_arena_new();
    if (a == NULL)
        return 0;
    memset(&err, 0, sizeof err);
    pk_value *v1 = pk_load(data, size, NULL, "fuzz.pkl", a, NULL, &err);
    if (v1 == NULL)
        check_error(&err, "fuzz.pkl");
    /* 2: small limits, extra classes, trailing bytes allowed */
    pk_options o;
    pk_options_default(&o);
    o.limits.max_depth = 64;
    o.limits.max_values = 1 << 14;
    o.limits.max_expanded = 1 << 14;
    o.limits.max_str = 1 << 16;
    o.limits.max_bigint = 200;
    o.limits.max_bytes = 1 << 22;
    o.extra_classes = extra;
    pk_arena *b = pk_arena_new();
    if (b == NULL) {
        pk_arena_free(a);
        return 0;
    }
    size_t used = SIZE_MAX;
    memset(&err, 0, sizeof err);
    pk_value *v2 = pk_load(data, size, &o, "fuzz.pkl", b, &used, &err);
    if (v2 == NULL) {
        check_error(&err, "fuzz.pkl");
    } else {
        CHECK(used <= size);
        walk(v2, &o.limits);
        char small[16], large[4096];
        pk_repr(v2, small, sizeof small);
        CHECK(strlen(small) < sizeof small);
        pk_repr(v2, large, sizeof large);
        CHECK(strlen(large) < sizeof large);
        /* 3: the same bytes in a fresh arena (another seed) render the same */
        pk_arena *c = pk_arena_new();
        if (c != NULL) {
            size_t used3 = 0;
            pk_value *v3 = pk_load(data, size, &o, "fuzz.pkl", c, &used3, &err);
            CHECK(v3 != NULL && used3 == used);
            char again[4096];
            pk_repr(v3, again, sizeof again);
            CHECK(strcmp(large, again) == 0);
            pk_arena_free(c);
        }
        if (v1 != NULL) /* what loads strictly also loads with room for trailing bytes */
            CHECK(used == size);
    }
    pk_arena_free(a);
    pk_arena_free(b);
    return 0;
}
