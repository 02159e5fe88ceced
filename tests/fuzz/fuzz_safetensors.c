/*
 * tests/fuzz/fuzz_safetensors.c: libFuzzer target for the safetensors reader.
 *
 * Input: the bytes of a .safetensors file. The target writes them to a memfd
 * and opens /proc/self/fd/N exactly as a plugin's open would (mmap, header
 * validation), then, when it opens, lists every tensor, finds it by name,
 * views it, reads it whole in every dtype it converts to, and reads slices
 * along every dimension (first row, last row, a middle block, out of range).
 * Besides crashes, leaks and sanitizer reports, these are bugs (abort):
 *   - a read of the stored dtype that differs from the view's bytes;
 *   - a slice along dim 0 that is not the matching bytes of the whole;
 *   - a table not sorted by name, or find not returning the listed tensor;
 *   - a failed open without a message naming the file, or a status other
 *     than DATA / UNSUPPORTED / NOMEM for bytes that are there.
 *
 * Built as a fuzzer with clang (README.md); with any compiler as a corpus
 * replayer that the test suite runs over corpus/safetensors.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                              \
    do {                                                                                         \
        if (!(cond)) {                                                                           \
            fprintf(stderr, "fuzz_safetensors: %s:%d: check failed: %s\n", __FILE__, __LINE__,  \
                    #cond);                                                                      \
            abort();                                                                             \
        }                                                                                        \
    } while (0)

static const int32_t float_dtypes[] = {MCRT_DTYPE_F32, MCRT_DTYPE_F16, MCRT_DTYPE_BF16};

/* Read and return the buffer (NULL when the read fails or is empty). */
static unsigned char *read_alloc(const ckpt *ck, const ckpt_tensor *t, int32_t dim, int64_t start,
                                 int64_t len, int32_t dtype, size_t *n)
{
    ckpt_err err;
    /* the size first, through the error path: a zero-size buffer */
    size_t need = 0;
    mcrt_status s = ckpt_read(ck, t, dim, start, len, dtype, NULL, 0, &need, &err);
    if (s == MCRT_OK) {
        *n = 0;
        return NULL; /* empty result */
    }
    if (s != MCRT_E_RANGE)
        return NULL;
    /* The exact size is in no field; compute it like a plugin would. */
    uint64_t elems = t->nelem;
    if (dim >= 0 && t->nelem > 0) {
        CHECK(dim < t->ndim && t->shape[dim] > 0);
        elems = t->nelem / (uint64_t)t->shape[dim] * (uint64_t)len;
    }
    size_t bytes = (size_t)elems * mcrt_dtype_size(dtype);
    unsigned char *buf = malloc(bytes ? bytes : 1);
    if (buf == NULL)
        return NULL;
    size_t got = 0;
    s = ckpt_read(ck, t, dim, start, len, dtype, buf, bytes, &got, &err);
    CHECK(s == MCRT_OK);
    CHECK(got == bytes);
    if (bytes > 0) { /* one byte less is refused */
        CHECK(ckpt_read(ck, t, dim, start, len, dtype, buf, bytes - 1, NULL, &err) == MCRT_E_RANGE);
    }
    *n = bytes;
    return buf;
}

static void exercise(const ckpt *ck, const ckpt_tensor *t)
{
    ckpt_err err;
    const void *view = NULL;
    CHECK(ckpt_view(ck, t, &view, &err) == MCRT_OK);
    CHECK(view != NULL);
    size_t whole_n = 0;
    unsigned char *whole = read_alloc(ck, t, -1, 0, 0, t->dtype, &whole_n);
    CHECK(whole_n == t->nbytes);
    if (whole_n > 0) {
        CHECK(whole != NULL);
        CHECK(memcmp(whole, view, whole_n) == 0);
    }
    /* conversions */
    bool is_float = t->dtype == MCRT_DTYPE_F32 || t->dtype == MCRT_DTYPE_F16 ||
                    t->dtype == MCRT_DTYPE_BF16;
    for (size_t i = 0; i < 3; i++) {
        int32_t to = float_dtypes[i];
        size_t n = 0;
        unsigned char *b = read_alloc(ck, t, -1, 0, 0, to, &n);
        if (!is_float && to != t->dtype) {
            CHECK(b == NULL);
            CHECK(ckpt_read(ck, t, -1, 0, 0, to, NULL, 0, NULL, &err) == MCRT_E_INVAL);
        }
        free(b);
    }
    /* slices along every dimension */
    for (int32_t d = 0; d < t->ndim; d++) {
        int64_t D = t->shape[d];
        const int64_t picks[][2] = {{0, D < 1 ? 0 : 1}, {D > 0 ? D - 1 : 0, D > 0 ? 1 : 0},
                                    {D / 3, D - D / 3 - D / 4}, {0, D}, {D, 0}};
        for (size_t k = 0; k < sizeof picks / sizeof picks[0]; k++) {
            size_t n = 0;
            unsigned char *b = read_alloc(ck, t, d, picks[k][0], picks[k][1], t->dtype, &n);
            if (d == 0 && n > 0) { /* a dim-0 slice is a contiguous piece of the whole */
                uint64_t row = t->nbytes / (uint64_t)D;
                CHECK(b != NULL && whole != NULL);
                CHECK(memcmp(b, whole + (uint64_t)picks[k][0] * row, n) == 0);
            }
            free(b);
            if (is_float) {
                b = read_alloc(ck, t, d, picks[k][0], picks[k][1],
                               t->dtype == MCRT_DTYPE_F32 ? MCRT_DTYPE_BF16 : MCRT_DTYPE_F32, &n);
                free(b);
            }
        }
        /* out of range */
        unsigned char one[8];
        CHECK(ckpt_read(ck, t, d, D, 1, t->dtype, one, sizeof one, NULL, &err) == MCRT_E_RANGE);
        CHECK(ckpt_read(ck, t, d, -1, 1, t->dtype, one, sizeof one, NULL, &err) == MCRT_E_RANGE);
        CHECK(ckpt_read(ck, t, d, 1, INT64_MAX, t->dtype, one, sizeof one, NULL, &err) ==
              MCRT_E_RANGE);
    }
    CHECK(ckpt_read(ck, t, t->ndim, 0, 1, t->dtype, NULL, 0, NULL, &err) == MCRT_E_INVAL);
    free(whole);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz.safetensors", 0);
    if (fd < 0)
        return 0;
    if (size > 0 && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);

    ckpt *ck = NULL;
    ckpt_err err;
    memset(&err, 0, sizeof err);
    mcrt_status s = ckpt_open(path, &ck, &err);
    if (s != MCRT_OK) {
        CHECK(ck == NULL);
        CHECK(s == MCRT_E_DATA || s == MCRT_E_UNSUPPORTED || s == MCRT_E_NOMEM);
        CHECK(err.status == s);
        CHECK(strstr(err.msg, path) != NULL);
        CHECK(strchr(err.msg, '\n') == NULL);
        close(fd);
        return 0;
    }
    size_t n = ckpt_count(ck);
    for (size_t i = 0; i < n; i++) {
        const ckpt_tensor *t = ckpt_at(ck, i);
        CHECK(t != NULL && t->name != NULL && t->name[0] != '\0');
        if (i > 0)
            CHECK(strcmp(ckpt_at(ck, i - 1)->name, t->name) < 0);
        CHECK(ckpt_find(ck, t->name) == t);
        CHECK(t->ndim >= 0 && t->ndim <= MCRT_CHECKPOINT_MAX_DIMS);
        CHECK(t->nbytes <= size);
        CHECK(t->nbytes == t->nelem * mcrt_dtype_size(t->dtype));
        exercise(ck, t);
    }
    CHECK(ckpt_at(ck, n) == NULL);
    const ckpt_tensor *none;
    CHECK(ckpt_lookup(ck, "no such tensor \x01", &none, &err) == MCRT_E_NOTFOUND);
    (void)ckpt_metadata(ck, "format");
    ckpt_close(ck);
    close(fd);
    return 0;
}
