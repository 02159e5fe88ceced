/*
 * tests/checkpoint/test_checkpoint.c: the safetensors checkpoint reader.
 *
 *   test_checkpoint                 malformed files (a table: status and the
 *       key parts of each message), the strict JSON reader, dtype
 *       conversions (hand-computed values, exhaustive round trips), good
 *       files from a tiny writer here (every slice of a tensor whose values
 *       are their own index), and the host services table.
 *   test_checkpoint --fixtures PYTHON SCRIPT
 *       runs make_fixtures.py (numpy + torch, an independent writer and
 *       independent conversions) and checks every case of its manifest
 *       through the single file, its folder, the sharded set, the no-mapping
 *       path and the host services, plus views and concurrent reads. Exits
 *       77 (skipped) when the script says numpy or torch is missing.
 *
 * Scratch files go to $TEST_SCRATCH (or /tmp) in a fresh folder, removed at
 * the end.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "checkpoint/checkpoint.h"
#include "checkpoint/json.h"
#include "mcrt/host.h"
#include "runtime/host.h"
#include "runtime/host_checkpoint.h"
#include "util/log.h"

static char scratch[2048];  /* this run's folder */
static char fixtures[2048]; /* make_fixtures.py's output, when run */

/* ---- writing files ---------------------------------------------------------- */

static void path_in(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", scratch, name);
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s: %s", path, strerror(errno));
    if (n > 0)
        ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* A safetensors file: the header (length `hl`, or its real length when hl is
 * UINT64_MAX) and data_len bytes of `data` (NULL: bytes i & 0xff). */
static void write_st_hl(const char *path, uint64_t hl, const char *header, const void *data,
                        size_t data_len)
{
    size_t h = strlen(header);
    if (hl == UINT64_MAX)
        hl = h;
    unsigned char *buf = malloc(8 + h + data_len + 1);
    ck_assert_ptr_nonnull(buf);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)(hl >> (8 * i));
    memcpy(buf + 8, header, h);
    for (size_t i = 0; i < data_len; i++)
        buf[8 + h + i] = data != NULL ? ((const unsigned char *)data)[i] : (unsigned char)i;
    write_bytes(path, buf, 8 + h + data_len);
    free(buf);
}

static void write_st(const char *path, const char *header, const void *data, size_t data_len)
{
    write_st_hl(path, UINT64_MAX, header, data, data_len);
}

static void make_dir(const char *path)
{
    ck_assert_msg(mkdir(path, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", path,
                  strerror(errno));
}

/* Open must fail with `status` and a message holding the file name and
 * every non-NULL substring. */
static void expect_fail(const char *path, const char *file_part, mcrt_status status,
                        const char *const *expect, size_t n_expect, const char *label)
{
    ckpt *ck = (ckpt *)0x1;
    ckpt_err err;
    memset(&err, 0, sizeof err);
    mcrt_status s = ckpt_open(path, &ck, &err);
    ck_assert_msg(s == status, "%s: status %d, expected %d (message: %s)", label, s, status,
                  err.msg);
    ck_assert_msg(ck == NULL, "%s: *out not cleared", label);
    ck_assert_int_eq(err.status, status);
    ck_assert_msg(strstr(err.msg, file_part) != NULL, "%s: message does not name the file %s: %s",
                  label, file_part, err.msg);
    for (size_t i = 0; i < n_expect; i++)
        if (expect[i] != NULL)
            ck_assert_msg(strstr(err.msg, expect[i]) != NULL, "%s: message lacks \"%s\": %s",
                          label, expect[i], err.msg);
    ck_assert_msg(strchr(err.msg, '\n') == NULL, "%s: message has a newline", label);
}

/* ---- the malformed-file table ----------------------------------------------- */

#define F32_2 "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"

typedef struct bad_case {
    const char *label;
    const char *header;
    size_t data_len;
    mcrt_status status;
    const char *expect[3];
} bad_case;

static const bad_case bad_cases[] = {
    {"not JSON", "hello", 0, MCRT_E_DATA, {"invalid header JSON at byte 8", "expected a value"}},
    {"empty header", "", 0, MCRT_E_DATA, {"invalid header JSON at byte 8", "end of the text"}},
    {"not an object", "[1,2]", 0, MCRT_E_DATA, {"the header is an array, not a JSON object"}},
    {"string header", "\"x\"", 0, MCRT_E_DATA, {"the header is a string, not a JSON object"}},
    {"entry not an object", "{\"w\":5}", 0, MCRT_E_DATA,
     {"tensor 'w'", "the entry is a number, not an object"}},
    {"missing dtype", "{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, MCRT_E_DATA,
     {"tensor 'w'", "has no 'dtype'"}},
    {"missing shape", "{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, MCRT_E_DATA,
     {"tensor 'w'", "has no 'shape'"}},
    {"missing offsets", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, MCRT_E_DATA,
     {"tensor 'w'", "has no 'data_offsets'"}},
    {"unknown dtype", "{\"w\":{\"dtype\":\"F12\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     MCRT_E_DATA, {"tensor 'w'", "unknown dtype 'F12'"}},
    {"F8 refused", "{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2,
     MCRT_E_UNSUPPORTED, {"tensor 'w'", "dtype F8_E4M3 is not supported"}},
    {"U32 refused", "{\"w\":{\"dtype\":\"U32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     MCRT_E_UNSUPPORTED, {"tensor 'w'", "dtype U32 is not supported"}},
    {"dtype not a string", "{\"w\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     MCRT_E_DATA, {"tensor 'w'", "'dtype' is a number, not a string"}},
    {"shape not an array", "{\"w\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8,
     MCRT_E_DATA, {"tensor 'w'", "'shape' is a number, not an array"}},
    {"negative dim", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,8]}}", 8,
     MCRT_E_DATA, {"tensor 'w'", "shape[1] is -1, a negative number"}},
    {"fractional dim", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8,
     MCRT_E_DATA, {"tensor 'w'", "shape[0] is 2.5, not an integer"}},
    {"exponent dim", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2e0],\"data_offsets\":[0,8]}}", 8,
     MCRT_E_DATA, {"tensor 'w'", "shape[0] is 2e0, not an integer"}},
    {"string dim", "{\"w\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8,
     MCRT_E_DATA, {"tensor 'w'", "shape[0] is a string, not a number"}},
    {"dim past int64", "{\"w\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],"
     "\"data_offsets\":[0,8]}}", 8, MCRT_E_DATA,
     {"tensor 'w'", "shape[0] is 99999999999999999999, which does not fit in 64 bits"}},
    {"elements overflow", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
     "\"data_offsets\":[0,8]}}", 8, MCRT_E_DATA,
     {"tensor 'w'", "shape [4294967296, 4294967296] has more than 2^64 elements"}},
    {"bytes overflow", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4611686018427387904,2],"
     "\"data_offsets\":[0,8]}}", 8, MCRT_E_DATA,
     {"tensor 'w'", "of F32 is more than 2^64 bytes"}},
    {"nine dims", "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],"
     "\"data_offsets\":[0,4]}}", 4, MCRT_E_DATA, {"tensor 'w'", "more than 8 dimensions"}},
    {"offsets past data", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}",
     8, MCRT_E_DATA, {"tensor 'w'", "[0, 16] run past the end of the data area (8 bytes"}},
    {"offsets reversed", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8,
     MCRT_E_DATA, {"tensor 'w'", "[8, 0] end before they begin"}},
    {"offsets negative", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8,
     MCRT_E_DATA, {"tensor 'w'", "data_offsets[0] is -8, a negative number"}},
    {"offsets three", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,8]}}", 8,
     MCRT_E_DATA, {"tensor 'w'", "more than 2 items"}},
    {"offsets one", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]}}", 8,
     MCRT_E_DATA, {"tensor 'w'", "'data_offsets' has 1 item (want [begin, end])"}},
    {"offsets huge", "{\"w\":{\"dtype\":\"U8\",\"shape\":[2],"
     "\"data_offsets\":[18446744073709551614,18446744073709551616]}}", 8, MCRT_E_DATA,
     {"tensor 'w'", "does not fit in 64 bits"}},
    {"size mismatch", "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8,
     MCRT_E_DATA, {"tensor 'w'", "hold 8 bytes, but shape [3] of F32 needs 12 bytes"}},
    {"overlap", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, MCRT_E_DATA,
     {"tensor 'b'", "[4, 12] overlap tensor 'a' [0, 8]"}},
    {"overlap contained", "{\"big\":{\"dtype\":\"U8\",\"shape\":[12],\"data_offsets\":[0,12]},"
     "\"x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[11,12]},"
     "\"in\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}", 12, MCRT_E_DATA,
     {"overlap tensor 'big' [0, 12]"}},
    {"same offsets", "{\"a\":" F32_2 ",\"b\":" F32_2 "}", 8, MCRT_E_DATA,
     {"overlap tensor", "[0, 8]"}},
    {"duplicate names", "{\"a\":" F32_2 ",\"a\":{\"dtype\":\"F32\",\"shape\":[2],"
     "\"data_offsets\":[8,16]}}", 16, MCRT_E_DATA, {"tensor 'a'", "appears twice in the header"}},
    {"duplicate names by escape", "{\"a\":" F32_2 ",\"\\u0061\":{\"dtype\":\"F32\",\"shape\":[2],"
     "\"data_offsets\":[8,16]}}", 16, MCRT_E_DATA, {"tensor 'a'", "appears twice"}},
    {"duplicate dtype key", "{\"w\":{\"dtype\":\"F32\",\"dtype\":\"F16\",\"shape\":[2],"
     "\"data_offsets\":[0,8]}}", 8, MCRT_E_DATA, {"tensor 'w'", "'dtype' appears twice"}},
    {"empty name", "{\"\":" F32_2 "}", 8, MCRT_E_DATA, {"a tensor has an empty name"}},
    {"NUL in name", "{\"a\\u0000b\":" F32_2 "}", 8, MCRT_E_DATA,
     {"tensor 'a\\x00b'", "holds a NUL character"}},
    {"metadata not strings", "{\"__metadata__\":{\"k\":1}}", 0, MCRT_E_DATA,
     {"'__metadata__' entry 'k' is a number, not a string"}},
    {"metadata not an object", "{\"__metadata__\":[]}", 0, MCRT_E_DATA,
     {"'__metadata__' is an array, not an object"}},
    {"metadata twice", "{\"__metadata__\":{},\"__metadata__\":{}}", 0, MCRT_E_DATA,
     {"'__metadata__' appears twice"}},
    {"metadata duplicate key", "{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, MCRT_E_DATA,
     {"'__metadata__' entry 'k' appears twice"}},
    {"trailing garbage", "{} x", 0, MCRT_E_DATA, {"at byte 11", "unexpected 'x' after the end"}},
    {"trailing comma", "{\"w\":" F32_2 ",}", 8, MCRT_E_DATA,
     {"invalid header JSON", "expected a string key"}},
    {"missing comma", "{\"w\":" F32_2 " \"v\":" F32_2 "}", 8, MCRT_E_DATA,
     {"invalid header JSON", "expected ',' or '}'"}},
    {"bad UTF-8 in name", "{\"a\xc0\xaf\":" F32_2 "}", 8, MCRT_E_DATA,
     {"at byte 11", "invalid UTF-8"}},
    {"lone surrogate", "{\"\\ud800x\":" F32_2 "}", 8, MCRT_E_DATA,
     {"high surrogate \\ud800 without a low surrogate"}},
    {"control character", "{\"a\tb\":" F32_2 "}", 8, MCRT_E_DATA,
     {"control character 0x09"}},
    {"deep ignored key", "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],"
     "\"x\":[[[[[[[[[[1]]]]]]]]]]}}", 8, MCRT_E_DATA, {"tensor 'w'", "nesting deeper than 8"}},
    {"NaN literal", "{\"w\":{\"dtype\":\"F32\",\"shape\":[NaN],\"data_offsets\":[0,8]}}", 8,
     MCRT_E_DATA, {"tensor 'w'", "expected a value, found 'N'"}},
    {"leading zero", "{\"w\":{\"dtype\":\"F32\",\"shape\":[02],\"data_offsets\":[0,8]}}", 8,
     MCRT_E_DATA, {"tensor 'w'", "leading zero"}},
    {"truncated JSON", "{\"w\":{\"dtype\":\"F32\",\"sha", 0, MCRT_E_DATA,
     {"tensor 'w'", "unterminated string"}},
    {"zip", "PK\003\004 not really", 0, MCRT_E_DATA, {"ZIP end-of-central-directory", "bad_"}},
};

START_TEST(malformed_table)
{
    const bad_case *c = &bad_cases[_i];
    char name[64], path[4096];
    snprintf(name, sizeof name, "bad_%02d.safetensors", _i);
    path_in(path, sizeof path, name);
    if (strncmp(c->header, "PK", 2) == 0)
        write_bytes(path, c->header, strlen(c->header));
    else
        write_st(path, c->header, NULL, c->data_len);
    expect_fail(path, name, c->status, c->expect, 3, c->label);
    unlink(path);
}
END_TEST

START_TEST(malformed_raw)
{
    char path[4096];
    path_in(path, sizeof path, "raw.safetensors");
    const char *e1[] = {"the file is 0 bytes, too short for the 8-byte header length"};
    write_bytes(path, "", 0);
    expect_fail(path, "raw.safetensors", MCRT_E_DATA, e1, 1, "empty file");
    const char *e2[] = {"the file is 5 bytes, too short"};
    write_bytes(path, "\x02\0\0\0\0", 5);
    expect_fail(path, "raw.safetensors", MCRT_E_DATA, e2, 1, "truncated header length");
    const char *e3[] = {"the header length 1000 runs past the end of the file (20 bytes"};
    write_st_hl(path, 1000, "{}", NULL, 10);
    expect_fail(path, "raw.safetensors", MCRT_E_DATA, e3, 1, "header length past EOF");
    const char *e4[] = {"the header length 18446744073709551615 runs past the end"};
    unsigned char allff[10] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, '{', '}'};
    write_bytes(path, allff, sizeof allff);
    expect_fail(path, "raw.safetensors", MCRT_E_DATA, e4, 1, "header length all ones");
    const char *e5[] = {"the header length 3 runs past"};
    write_st_hl(path, 3, "{}", NULL, 0);
    expect_fail(path, "raw.safetensors", MCRT_E_DATA, e5, 1, "header length one past EOF");
    const char *e6[] = {"invalid header JSON at byte 9", "unterminated"};
    write_st_hl(path, 1, "{}", NULL, 0); /* header "{", then "}" is data */
    expect_fail(path, "raw.safetensors", MCRT_E_DATA, e6, 1, "header cut short");

    /* Over the 100 MB limit, inside the file (sparse). */
    int fd = open(path, O_WRONLY | O_TRUNC);
    ck_assert_int_ge(fd, 0);
    unsigned char len8[8];
    uint64_t hl = CKPT_MAX_HEADER + 1u;
    for (int i = 0; i < 8; i++)
        len8[i] = (unsigned char)(hl >> (8 * i));
    ck_assert_int_eq(write(fd, len8, 8), 8);
    ck_assert_int_eq(ftruncate(fd, (off_t)(8 + hl)), 0);
    close(fd);
    const char *e7[] = {"the header length 100000001 is over the limit of 100000000 bytes"};
    expect_fail(path, "raw.safetensors", MCRT_E_DATA, e7, 1, "header over the limit");
    unlink(path);

    const char *e8[] = {"no such file or folder"};
    path_in(path, sizeof path, "missing.safetensors");
    expect_fail(path, "missing.safetensors", MCRT_E_NOTFOUND, e8, 1, "missing file");
    path_in(path, sizeof path, "missing_dir/x.safetensors");
    expect_fail(path, "missing_dir/x.safetensors", MCRT_E_NOTFOUND, e8, 1, "missing folder");

    const char *e11[] = {"neither a file nor a folder"};
    path_in(path, sizeof path, "fifo");
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    expect_fail(path, "fifo", MCRT_E_IO, e11, 1, "a fifo");
    unlink(path);

    const char *e9[] = {"a folder without latest_checkpointed_iteration.txt or metadata.json or "
                        "mp_rank_00/model_optim_rng.pt or mp_rank_00_000/model_optim_rng.pt or "
                        "model.safetensors or model.safetensors.index.json"};
    path_in(path, sizeof path, "empty_folder");
    make_dir(path);
    expect_fail(path, "empty_folder", MCRT_E_NOTFOUND, e9, 1, "empty folder");
    rmdir(path);

    if (geteuid() != 0) { /* root reads anything */
        path_in(path, sizeof path, "unreadable.safetensors");
        write_st(path, "{}", NULL, 0);
        chmod(path, 0);
        const char *e10[] = {"cannot", "Permission denied"};
        expect_fail(path, "unreadable.safetensors", MCRT_E_IO, e10, 2, "unreadable");
        unlink(path);
    }

    ckpt *ck = NULL;
    ckpt_err err;
    ck_assert_int_eq(ckpt_open(NULL, &ck, &err), MCRT_E_INVAL);
    ck_assert_int_eq(ckpt_open("", &ck, &err), MCRT_E_INVAL);
    ck_assert_int_eq(ckpt_open("x", NULL, &err), MCRT_E_INVAL);
}
END_TEST

/* ---- sharded sets ------------------------------------------------------------- */

typedef struct shard_file {
    const char *name;
    const char *header; /* NULL: the file is not written */
    size_t data_len;
} shard_file;

typedef struct index_case {
    const char *label;
    const char *index;
    shard_file files[3];
    mcrt_status status;
    const char *expect[3];
    const char *file; /* the file the message names; NULL: the index */
} index_case;

#define HDR_A "{\"a\":" F32_2 "}"
#define HDR_B "{\"b\":" F32_2 "}"
#define HDR_AB "{\"a\":" F32_2 ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}"

static const index_case index_cases[] = {
    {"missing shard", "{\"weight_map\":{\"a\":\"s1.safetensors\",\"b\":\"gone.safetensors\"}}",
     {{"s1.safetensors", HDR_A, 8}}, MCRT_E_NOTFOUND,
     {"shard 'gone.safetensors' (of tensor 'b')", "gone.safetensors: no such file"}, NULL},
    {"tensor absent from its shard",
     "{\"weight_map\":{\"a\":\"s1.safetensors\",\"b\":\"s1.safetensors\"}}",
     {{"s1.safetensors", HDR_A, 8}}, MCRT_E_DATA,
     {"tensor 'b' is listed in weight_map for shard 's1.safetensors', which has no such tensor"}, NULL},
    {"tensor in two shards", "{\"weight_map\":{\"a\":\"s1.safetensors\",\"b\":\"s2.safetensors\"}}",
     {{"s1.safetensors", HDR_A, 8}, {"s2.safetensors", HDR_AB, 16}}, MCRT_E_DATA,
     {"tensor 'a' is in shard 's2.safetensors', but weight_map places it in shard "
      "'s1.safetensors'"}, NULL},
    {"tensor not in the map", "{\"weight_map\":{\"a\":\"s1.safetensors\"}}",
     {{"s1.safetensors", HDR_AB, 16}}, MCRT_E_DATA,
     {"tensor 'b' is in shard 's1.safetensors' but not in weight_map"}, NULL},
    {"no weight_map", "{\"metadata\":{}}", {{NULL, NULL, 0}}, MCRT_E_DATA,
     {"the index has no 'weight_map'"}, NULL},
    {"weight_map twice", "{\"weight_map\":{},\"weight_map\":{}}", {{NULL, NULL, 0}}, MCRT_E_DATA,
     {"'weight_map' appears twice"}, NULL},
    {"weight_map not an object", "{\"weight_map\":[]}", {{NULL, NULL, 0}}, MCRT_E_DATA,
     {"'weight_map' is an array, not an object"}, NULL},
    {"shard not a string", "{\"weight_map\":{\"a\":1}}", {{NULL, NULL, 0}}, MCRT_E_DATA,
     {"tensor 'a' maps to a number, not a shard file name"}, NULL},
    {"duplicate map entry", "{\"weight_map\":{\"a\":\"s1.safetensors\",\"a\":\"s1.safetensors\"}}",
     {{"s1.safetensors", HDR_A, 8}}, MCRT_E_DATA, {"weight_map: tensor 'a' appears twice"}, NULL},
    {"shard outside the folder", "{\"weight_map\":{\"a\":\"../s1.safetensors\"}}",
     {{NULL, NULL, 0}}, MCRT_E_DATA, {"shard '../s1.safetensors' leaves the index's folder"}, NULL},
    {"absolute shard", "{\"weight_map\":{\"a\":\"/etc/passwd\"}}", {{NULL, NULL, 0}}, MCRT_E_DATA,
     {"shard '/etc/passwd' is absolute"}, NULL},
    {"empty shard name", "{\"weight_map\":{\"a\":\"\"}}", {{NULL, NULL, 0}}, MCRT_E_DATA,
     {"shard '' is empty"}, NULL},
    {"index not JSON", "{\"weight_map\":{\"a\":\"s1.safetensors\",}}", {{NULL, NULL, 0}},
     MCRT_E_DATA, {"invalid JSON at byte 36", "expected a string key"}, NULL},
    {"index not an object", "[]", {{NULL, NULL, 0}}, MCRT_E_DATA,
     {"the index is an array, not a JSON object"}, NULL},
    {"malformed shard", "{\"weight_map\":{\"a\":\"s1.safetensors\"}}",
     {{"s1.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8}},
     MCRT_E_DATA, {"s1.safetensors: tensor 'a'", "needs 12 bytes"}, "s1.safetensors"},
};

START_TEST(index_table)
{
    const index_case *c = &index_cases[_i];
    char dir[4096], path[4096 + 64];
    char name[64];
    snprintf(name, sizeof name, "idx_%02d", _i);
    path_in(dir, sizeof dir, name);
    make_dir(dir);
    for (int i = 0; i < 3; i++) {
        if (c->files[i].header == NULL)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, c->files[i].name);
        write_st(path, c->files[i].header, NULL, c->files[i].data_len);
    }
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    write_bytes(path, c->index, strlen(c->index));
    /* by the file and by the folder */
    const char *file = c->file ? c->file : "model.safetensors.index.json";
    expect_fail(path, file, c->status, c->expect, 3, c->label);
    expect_fail(dir, name, c->status, c->expect, 3, c->label);
}
END_TEST

/* ---- HF config.json beside the weights: mapped to Megatron arguments -------- */

typedef struct hf_case {
    const char *label;
    const char *json;
    mcrt_status status;       /* of the open */
    const char *expect;       /* message part (failures) */
    /* on success: what the args say (NULL / 0: not checked) */
    int64_t hidden, layers, heads, positions, ffn;
    const char *activation;
    int untie;                /* -1: absent */
} hf_case;

static const hf_case hf_cases[] = {
    {"gpt2 defaults", "{\"model_type\":\"gpt2\",\"n_embd\":64,\"n_layer\":3,\"n_head\":4,"
     "\"n_positions\":128,\"vocab_size\":457,\"n_inner\":null}", MCRT_OK, NULL, 64, 3, 4, 128, 256,
     "gelu_tanh", 0},
    {"gpt2 n_ctx, n_inner, gelu, untied", "{\"model_type\":\"gpt2\",\"n_embd\":32,\"n_layer\":1,"
     "\"n_head\":2,\"n_ctx\":64,\"n_inner\":100,\"activation_function\":\"gelu\","
     "\"tie_word_embeddings\":false,\"unknown\":[1,{\"x\":2}]}", MCRT_OK, NULL, 32, 1, 2, 64, 100,
     "gelu", 1},
    {"another model type", "{\"model_type\":\"llama\",\"hidden_size\":64}", MCRT_OK, NULL, 0, 0,
     0, 0, 0, NULL, -1},
    {"not JSON", "{\"model_type\":\"gpt2\",}", MCRT_E_DATA, "config.json: byte", 0, 0, 0, 0, 0,
     NULL, -1},
    {"wrong type", "{\"model_type\":\"gpt2\",\"n_embd\":\"64\"}", MCRT_E_DATA,
     "key \"n_embd\" at byte", 0, 0, 0, 0, 0, NULL, -1},
    {"negative size", "{\"model_type\":\"gpt2\",\"n_layer\":-1}", MCRT_E_DATA,
     "expected a positive integer", 0, 0, 0, 0, 0, NULL, -1},
    {"unsupported activation", "{\"model_type\":\"gpt2\",\"activation_function\":\"relu\"}",
     MCRT_E_UNSUPPORTED, "activation_function \"relu\" has no MCore GPT equivalent", 0, 0, 0, 0,
     0, NULL, -1},
    {"layer-index scaling", "{\"model_type\":\"gpt2\",\"scale_attn_by_inverse_layer_idx\":true}",
     MCRT_E_UNSUPPORTED, "scale_attn_by_inverse_layer_idx: true is not supported", 0, 0, 0, 0, 0,
     NULL, -1},
    {"an array", "[]", MCRT_E_DATA, "expected one JSON object", 0, 0, 0, 0, 0, NULL, -1},
};

static int64_t arg_int(const ckpt *ck, const char *name)
{
    const ckpt_arg *a = ckpt_find_arg(ck, name);
    ck_assert_msg(a != NULL && a->type == MCRT_CFG_INT, "arg %s missing or not an int", name);
    return a->i;
}

START_TEST(hf_config_table)
{
    const hf_case *c = &hf_cases[_i];
    char dir[4096], path[4096 + 64], name[64];
    snprintf(name, sizeof name, "hf_%02d", _i);
    path_in(dir, sizeof dir, name);
    make_dir(dir);
    float a[2] = {1.5f, -2.0f};
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    write_st(path, "{\"a\":" F32_2 "}", a, 8);
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_bytes(path, c->json, strlen(c->json));
    if (c->status != MCRT_OK) {
        const char *exp[1] = {c->expect};
        expect_fail(dir, "config.json", c->status, exp, 1, c->label);
        snprintf(path, sizeof path, "%s/model.safetensors", dir); /* beside a file too */
        expect_fail(path, "config.json", c->status, exp, 1, c->label);
        return;
    }
    ckpt *ck = NULL;
    ckpt_err err;
    ck_assert_msg(ckpt_open(dir, &ck, &err) == MCRT_OK, "%s: %s", c->label, err.msg);
    if (c->hidden == 0) {
        ck_assert_uint_eq(ckpt_arg_count(ck), 0);
    } else {
        ck_assert_int_eq(arg_int(ck, "hidden_size"), c->hidden);
        ck_assert_int_eq(arg_int(ck, "num_layers"), c->layers);
        ck_assert_int_eq(arg_int(ck, "num_attention_heads"), c->heads);
        ck_assert_int_eq(arg_int(ck, "max_position_embeddings"), c->positions);
        ck_assert_int_eq(arg_int(ck, "ffn_hidden_size"), c->ffn);
        const ckpt_arg *act = ckpt_find_arg(ck, "activation");
        ck_assert(act != NULL && act->type == MCRT_CFG_STRING);
        ck_assert_str_eq(act->s, c->activation);
        const ckpt_arg *un = ckpt_find_arg(ck, "untie_embeddings_and_output_weights");
        ck_assert(un != NULL && un->type == MCRT_CFG_BOOL);
        ck_assert_int_eq((int)un->i, c->untie);
        const ckpt_arg *eps = ckpt_find_arg(ck, "norm_epsilon");
        ck_assert(eps != NULL && eps->type == MCRT_CFG_FLOAT && eps->f == 1e-5);
        ck_assert_str_eq(ckpt_find_arg(ck, "position_embedding_type")->s, "learned_absolute");
        ck_assert_str_eq(ckpt_find_arg(ck, "normalization")->s, "LayerNorm");
        ck_assert_str_eq(eps->source, "config.json");
    }
    ckpt_close(ck);
}
END_TEST

START_TEST(index_good)
{
    char dir[4096], path[4096 + 64];
    path_in(dir, sizeof dir, "idx_good");
    make_dir(dir);
    snprintf(path, sizeof path, "%s/sub", dir);
    make_dir(path);
    float a[2] = {1.5f, -2.0f}, b[4] = {1, 2, 3, 4};
    snprintf(path, sizeof path, "%s/one.safetensors", dir);
    write_st(path, "{\"__metadata__\":{\"format\":\"pt\"},\"a\":" F32_2 "}", a, 8);
    snprintf(path, sizeof path, "%s/sub/two.safetensors", dir);
    write_st(path, "{\"__metadata__\":{\"format\":\"other\",\"x\":\"y\"},\"b\":{\"dtype\":\"F32\","
             "\"shape\":[2,2],\"data_offsets\":[0,16]},\"c\":{\"dtype\":\"F32\",\"shape\":[0],"
             "\"data_offsets\":[16,16]}}", b, 16);
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    const char *idx = "{\"metadata\":{\"total_size\":24},\"weight_map\":{\"b\":\"sub/two.safetensors\","
                      "\"a\":\"one.safetensors\",\"c\":\"./sub/two.safetensors\"}}";
    write_bytes(path, idx, strlen(idx));
    /* "./sub/two" is another name for the same shard: opened twice, and
     * its tensors then appear in both -- an error naming both. */
    ckpt *ck = NULL;
    ckpt_err err;
    ck_assert_int_eq(ckpt_open(dir, &ck, &err), MCRT_E_DATA);
    ck_assert_msg(strstr(err.msg, "weight_map places it") != NULL, "%s", err.msg);
    idx = "{\"metadata\":{\"total_size\":24},\"weight_map\":{\"b\":\"sub/two.safetensors\","
          "\"a\":\"one.safetensors\",\"c\":\"sub/two.safetensors\"}}";
    write_bytes(path, idx, strlen(idx));
    ck_assert_msg(ckpt_open(dir, &ck, &err) == MCRT_OK, "%s", err.msg);
    ck_assert_uint_eq(ckpt_count(ck), 3);
    ck_assert_str_eq(ckpt_at(ck, 0)->name, "a");
    ck_assert_str_eq(ckpt_at(ck, 1)->name, "b");
    ck_assert_str_eq(ckpt_at(ck, 2)->name, "c");
    ck_assert_str_eq(ckpt_metadata(ck, "format"), "pt"); /* first wins */
    ck_assert_str_eq(ckpt_metadata(ck, "x"), "y");
    ck_assert_ptr_null(ckpt_metadata(ck, "nope"));
    ck_assert_str_eq(ckpt_format_name(ck), "safetensors");
    float got[4];
    ck_assert_int_eq(ckpt_read(ck, ckpt_find(ck, "b"), 1, 1, 1, MCRT_DTYPE_F32, got, sizeof got,
                               NULL, &err), MCRT_OK);
    ck_assert(got[0] == 2.0f && got[1] == 4.0f);
    ck_assert_int_eq(ckpt_read(ck, ckpt_find(ck, "a"), -1, 0, 0, MCRT_DTYPE_F32, got, 8, NULL,
                               &err), MCRT_OK);
    ck_assert(got[0] == 1.5f && got[1] == -2.0f);
    ckpt_close(ck);
}
END_TEST

/* ---- the JSON reader -------------------------------------------------------- */

typedef struct json_bad {
    const char *text;
    size_t offset;
    const char *expect;
} json_bad;

static const json_bad json_bads[] = {
    {"{\"a\":1,}", 7, "expected a string key, found '}'"},
    {"[1,]", 3, "trailing comma"},
    {"[1 2]", 3, "expected ',' or ']'"},
    {"01", 0, "leading zero"},
    {"-", 1, "expected a digit after '-'"},
    {"1.", 2, "expected a digit after '.'"},
    {"1e", 2, "expected a digit in the exponent"},
    {"1e+", 3, "expected a digit in the exponent"},
    {".5", 0, "expected a value, found '.'"},
    {"+1", 0, "expected a value, found '+'"},
    {"NaN", 0, "expected a value, found 'N'"},
    {"Infinity", 0, "expected a value"},
    {"tru", 0, "invalid literal (expected 'true')"},
    {"nul", 0, "invalid literal (expected 'null')"},
    {"{\"a\" 1}", 5, "expected ':'"},
    {"{1:2}", 1, "expected a string key or '}'"},
    {"\"abc", 0, "unterminated string"},
    {"\"\\q\"", 1, "invalid escape \\'q'"},
    {"\"\\u12g4\"", 5, "invalid hex digit"},
    {"\"\\u12\"", 3, "truncated \\u escape"},
    {"\"\\ud800\"", 1, "without a low surrogate"},
    {"\"\\udc00\"", 1, "unpaired low surrogate"},
    {"\"\\ud800\\u0041\"", 7, "is not a low surrogate"},
    {"\"\x01\"", 1, "control character 0x01"},
    {"\"\xc0\xaf\"", 1, "invalid UTF-8"},        /* overlong '/' */
    {"\"\xe0\x80\xaf\"", 1, "invalid UTF-8"},    /* overlong */
    {"\"\xed\xa0\x80\"", 1, "invalid UTF-8"},    /* UTF-8 surrogate */
    {"\"\xf4\x90\x80\x80\"", 1, "invalid UTF-8"}, /* past U+10FFFF */
    {"\"\xe2\x82\"", 1, "invalid UTF-8"},        /* truncated */
    {"\"\x80\"", 1, "invalid UTF-8"},            /* lone continuation */
    {"\"\xff\"", 1, "invalid UTF-8"},
    {"{} {}", 3, "unexpected '{' after the end"},
    {"", 0, "expected a value, found the end of the text"},
    {"  ", 2, "expected a value, found the end"},
    {"[", 1, "expected a value, found the end"},
    {"{", 1, "expected a string key or '}', found the end"},
    {"\xef\xbb\xbf{}", 0, "expected a value, found byte 0xef"}, /* no BOM */
};

START_TEST(json_rejects)
{
    const json_bad *c = &json_bads[_i];
    json_reader r;
    json_init(&r, c->text, strlen(c->text), 100, 64);
    bool ok = json_skip(&r) && json_finish(&r);
    ck_assert_msg(!ok, "'%s' accepted", c->text);
    ck_assert_msg(strstr(json_error(&r), c->expect) != NULL, "'%s': %s", c->text, json_error(&r));
    ck_assert_msg(r.err_offset == 100 + c->offset, "'%s': offset %zu, expected %zu (%s)", c->text,
                  r.err_offset - 100, c->offset, json_error(&r));
    json_fini(&r);
}
END_TEST

START_TEST(json_accepts)
{
    static const char *const good[] = {
        "{}", "[]", " \t\r\n{ \"a\" : [ 1 , -0 , 0.5e-3 , 1E+2 , true , false , null ] } \n",
        "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"", "-9223372036854775808",
        "\"caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x82\xac\"", "123456789012345678901234567890",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        json_reader r;
        json_init(&r, good[i], strlen(good[i]), 0, 64);
        ck_assert_msg(json_skip(&r) && json_finish(&r), "'%s': %s", good[i], json_error(&r));
        json_fini(&r);
    }
    /* decoding */
    const char *t = "{\"k\\u00e9y\":\"\\ud83d\\ude00\\n\",\"plain\":\"x\"}";
    json_reader r;
    json_init(&r, t, strlen(t), 0, 4);
    ck_assert(json_open_object(&r));
    const char *k, *v;
    size_t kl, vl;
    ck_assert_int_eq(json_next_member(&r, &k, &kl), 1);
    ck_assert(json_eq(k, kl, "k\xc3\xa9y"));
    ck_assert(json_read_string(&r, &v, &vl));
    ck_assert(json_eq(v, vl, "\xf0\x9f\x98\x80\n"));
    ck_assert_int_eq(json_next_member(&r, &k, &kl), 1);
    ck_assert(json_eq(k, kl, "plain"));
    ck_assert_int_eq(json_peek(&r), JSON_STRING);
    ck_assert(json_read_string(&r, &v, &vl));
    ck_assert(json_eq(v, vl, "x"));
    ck_assert_int_eq(json_next_member(&r, &k, &kl), 0);
    ck_assert(json_finish(&r));
    json_fini(&r);
    /* integers */
    static const struct {
        const char *t;
        bool is_int, overflow;
        int64_t v;
    } nums[] = {
        {"0", true, false, 0},
        {"-0", true, false, 0},
        {"9223372036854775807", true, false, INT64_MAX},
        {"9223372036854775808", true, true, 0},
        {"-9223372036854775808", true, false, INT64_MIN},
        {"-9223372036854775809", true, true, 0},
        {"99999999999999999999999", true, true, 0},
        {"1.0", false, false, 0},
        {"1e3", false, false, 0},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        json_number n;
        json_init(&r, nums[i].t, strlen(nums[i].t), 0, 4);
        ck_assert(json_read_number(&r, &n));
        ck_assert_msg(n.is_integer == nums[i].is_int && n.overflow == nums[i].overflow &&
                      (!n.is_integer || n.overflow || n.value == nums[i].v), "%s", nums[i].t);
        ck_assert_uint_eq(n.len, strlen(nums[i].t));
        json_fini(&r);
    }
    /* depth: 64 levels pass, 65 fail */
    char deep[200];
    for (int d = 64; d <= 65; d++) {
        memset(deep, '[', (size_t)d);
        memset(deep + d, ']', (size_t)d);
        json_init(&r, deep, 2 * (size_t)d, 0, 64);
        bool ok = json_skip(&r) && json_finish(&r);
        ck_assert_msg(ok == (d == 64), "depth %d: %s", d, json_error(&r));
        if (!ok)
            ck_assert(strstr(json_error(&r), "nesting deeper than 64") != NULL);
        json_fini(&r);
    }
    /* wrong kinds */
    json_init(&r, "[1]", 3, 0, 4);
    ck_assert(!json_open_object(&r));
    ck_assert(strstr(json_error(&r), "expected an object, found an array") != NULL);
    ck_assert(!json_skip(&r)); /* every call fails after the first error */
    json_fini(&r);
}
END_TEST

/* ---- conversions ---------------------------------------------------------------- */

static uint32_t fbits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bitsf(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

START_TEST(convert_values)
{
    static const struct {
        uint32_t f;
        uint16_t h;
    } f16[] = {
        {0x00000000, 0x0000}, {0x80000000, 0x8000}, {0x3f800000, 0x3c00}, /* 1 */
        {0xc0000000, 0xc000},                                            /* -2 */
        {0x477fe000, 0x7bff},                                            /* 65504 */
        {0x477fefff, 0x7bff},                                            /* just under the tie */
        {0x477ff000, 0x7c00},                                            /* 65520: tie -> inf */
        {0x7f7fffff, 0x7c00}, {0x7f800000, 0x7c00}, {0xff800000, 0xfc00},
        {0x3f801000, 0x3c00}, /* 1 + 2^-11: tie, to even (down) */
        {0x3f803000, 0x3c02}, /* 1 + 3*2^-11: tie, to even (up) */
        {0x3f801001, 0x3c01}, /* just over the tie */
        {0x38800000, 0x0400}, /* 2^-14: smallest normal */
        {0x387fc000, 0x03ff}, /* largest subnormal */
        {0x387fe000, 0x0400}, /* rounds up into the normals */
        {0x33800000, 0x0001}, /* 2^-24: smallest subnormal */
        {0x33000000, 0x0000}, /* 2^-25: tie, to even (zero) */
        {0x33000001, 0x0001}, /* just over */
        {0x33c00000, 0x0002}, /* 3*2^-25: tie, to even (2) */
        {0x34200000, 0x0002}, /* 5*2^-25 = 2.5 units: tie, to even (2) */
        {0x00000001, 0x0000}, /* f32 subnormal */
        {0xb3800000, 0x8001},
    };
    for (size_t i = 0; i < sizeof f16 / sizeof f16[0]; i++)
        ck_assert_msg(ckpt_f32_to_f16(f16[i].f) == f16[i].h, "f16(%08x) = %04x, expected %04x",
                      f16[i].f, ckpt_f32_to_f16(f16[i].f), f16[i].h);
    static const struct {
        uint32_t f;
        uint16_t b;
    } bf[] = {
        {0x3f800000, 0x3f80}, {0x3f808000, 0x3f80}, /* tie, even: down */
        {0x3f818000, 0x3f82},                       /* tie, odd: up */
        {0x3f808001, 0x3f81}, {0x3f807fff, 0x3f80},
        {0x7f7fffff, 0x7f80}, /* largest float rounds to inf */
        {0x7f7f7fff, 0x7f7f}, {0xff800000, 0xff80}, {0x00000001, 0x0000},
        {0x80008000, 0x8000}, /* -tiny tie to -0 */
        {0x00018000, 0x0002},
    };
    for (size_t i = 0; i < sizeof bf / sizeof bf[0]; i++)
        ck_assert_msg(ckpt_f32_to_bf16(bf[i].f) == bf[i].b, "bf16(%08x) = %04x, expected %04x",
                      bf[i].f, ckpt_f32_to_bf16(bf[i].f), bf[i].b);
    /* NaN stays NaN, whatever the payload (including payloads that would
     * round into infinity if treated as numbers) */
    static const uint32_t nans[] = {0x7fc00000, 0xffc00000, 0x7f800001, 0xff800001, 0x7fffffff,
                                    0x7f801fff, 0x7f807fff};
    for (size_t i = 0; i < sizeof nans / sizeof nans[0]; i++) {
        uint16_t h = ckpt_f32_to_f16(nans[i]), b = ckpt_f32_to_bf16(nans[i]);
        ck_assert_msg((h & 0x7c00) == 0x7c00 && (h & 0x3ff) != 0, "f16 NaN %08x -> %04x", nans[i], h);
        ck_assert_msg((b & 0x7f80) == 0x7f80 && (b & 0x7f) != 0, "bf16 NaN %08x -> %04x", nans[i], b);
        ck_assert_uint_eq(h >> 15, nans[i] >> 31);
        ck_assert_uint_eq(b >> 15, nans[i] >> 31);
    }
    /* widening is exact; all 65536 patterns round-trip */
    for (uint32_t u = 0; u < 65536; u++) {
        uint32_t f = ckpt_f16_to_f32((uint16_t)u);
        float x = bitsf(f);
        bool nan = (u & 0x7c00) == 0x7c00 && (u & 0x3ff) != 0;
        ck_assert_msg(nan == (isnan(x) != 0), "f16 %04x", u);
        if (nan)
            ck_assert_uint_eq(ckpt_f32_to_f16(f), u | 0x200); /* quieted */
        else
            ck_assert_msg(ckpt_f32_to_f16(f) == u, "f16 %04x round trip", u);
        uint32_t g = ckpt_bf16_to_f32((uint16_t)u);
        bool bnan = (u & 0x7f80) == 0x7f80 && (u & 0x7f) != 0;
        ck_assert(bnan == (isnan(bitsf(g)) != 0));
        ck_assert_uint_eq(ckpt_f32_to_bf16(g), bnan ? (u | 0x40) : u);
    }
    /* subnormal halves by value */
    ck_assert(bitsf(ckpt_f16_to_f32(0x0001)) == ldexpf(1.0f, -24));
    ck_assert(bitsf(ckpt_f16_to_f32(0x03ff)) == ldexpf(1023.0f, -24));
    ck_assert(bitsf(ckpt_f16_to_f32(0x8200)) == -ldexpf(1.0f, -15));
    ck_assert_uint_eq(fbits(bitsf(ckpt_f16_to_f32(0x7bff))), fbits(65504.0f));
    /* f32 -> f16 against a slow reference over many random floats: the
     * nearest half by exhaustive search over the neighbours */
    uint64_t st = 0x9e3779b97f4a7c15u;
    for (int i = 0; i < 200000; i++) {
        st ^= st << 13;
        st ^= st >> 7;
        st ^= st << 17;
        uint32_t f = (uint32_t)st;
        float x = bitsf(f);
        if (isnan(x) || fabsf(x) >= 65520.0f)
            continue;
        uint16_t h = ckpt_f32_to_f16(f);
        double hv = bitsf(ckpt_f16_to_f32(h));
        double err = fabs(hv - x);
        for (int d = -1; d <= 1; d += 2) {
            uint16_t n = (uint16_t)(h + d);
            if ((n & 0x7c00) == 0x7c00 || ((n ^ h) & 0x8000))
                continue;
            double nv = bitsf(ckpt_f16_to_f32(n));
            double ne = fabs(nv - x);
            ck_assert_msg(ne > err || (ne == err && (h & 1) == 0), "%08x -> %04x, %04x is nearer",
                          f, h, n);
        }
    }
    ck_assert(ckpt_can_convert(MCRT_DTYPE_F32, MCRT_DTYPE_BF16));
    ck_assert(ckpt_can_convert(MCRT_DTYPE_BF16, MCRT_DTYPE_F16));
    ck_assert(ckpt_can_convert(MCRT_DTYPE_I8, MCRT_DTYPE_I8));
    ck_assert(!ckpt_can_convert(MCRT_DTYPE_I32, MCRT_DTYPE_F32));
    ck_assert(!ckpt_can_convert(MCRT_DTYPE_F64, MCRT_DTYPE_F32));
    ck_assert(!ckpt_can_convert(MCRT_DTYPE_F32, 99));
    ck_assert_str_eq(ckpt_dtype_name(MCRT_DTYPE_BOOL), "BOOL");
    ck_assert_str_eq(ckpt_dtype_name(0), "?");
}
END_TEST

/* ---- good files from the tiny writer ------------------------------------------ */

/* Every slice of an I32 [2,3,4] tensor whose values are their own index,
 * and of F32 and BF16 copies converted on the way. */
START_TEST(slices_exhaustive)
{
    int32_t v[24];
    float f[24];
    for (int i = 0; i < 24; i++) {
        v[i] = i;
        f[i] = (float)i - 0.25f;
    }
    unsigned char data[96 + 96];
    memcpy(data, v, 96);
    memcpy(data + 96, f, 96);
    char path[4096];
    path_in(path, sizeof path, "slices.safetensors");
    write_st(path, "{\"x\":{\"dtype\":\"I32\",\"shape\":[2,3,4],\"data_offsets\":[0,96]},"
             "\"y\":{\"dtype\":\"F32\",\"shape\":[2,3,4],\"data_offsets\":[96,192]}}", data,
             sizeof data);
    ckpt *ck;
    ckpt_err err;
    ck_assert_msg(ckpt_open(path, &ck, &err) == MCRT_OK, "%s", err.msg);
    for (int copy = 0; copy < 2; copy++) {
        ckpt_set_copy_only(ck, copy != 0);
        const ckpt_tensor *x = ckpt_find(ck, "x"), *y = ckpt_find(ck, "y");
        const int64_t shape[3] = {2, 3, 4};
        for (int dim = 0; dim < 3; dim++)
            for (int64_t s = 0; s <= shape[dim]; s++)
                for (int64_t l = 0; s + l <= shape[dim]; l++) {
                    int32_t got[24];
                    uint16_t gotb[24];
                    size_t nb = 99;
                    ck_assert_int_eq(ckpt_read(ck, x, dim, s, l, MCRT_DTYPE_I32, got, sizeof got,
                                               &nb, &err), MCRT_OK);
                    ck_assert_int_eq(ckpt_read(ck, y, dim, s, l, MCRT_DTYPE_BF16, gotb,
                                               sizeof gotb, NULL, &err), MCRT_OK);
                    size_t k = 0;
                    for (int64_t i = 0; i < 2; i++)
                        for (int64_t j = 0; j < 3; j++)
                            for (int64_t m = 0; m < 4; m++) {
                                int64_t idx[3] = {i, j, m};
                                if (idx[dim] < s || idx[dim] >= s + l)
                                    continue;
                                int32_t want = (int32_t)(i * 12 + j * 4 + m);
                                ck_assert_msg(got[k] == want, "dim %d [%lld,+%lld) elem %zu: %d",
                                              dim, (long long)s, (long long)l, k, got[k]);
                                ck_assert_uint_eq(gotb[k], ckpt_f32_to_bf16(fbits(f[want])));
                                k++;
                            }
                    ck_assert_uint_eq(nb, k * 4);
                }
        /* the whole tensor, and dim -1 ignores start and len */
        int32_t all[24];
        ck_assert_int_eq(ckpt_read(ck, x, -1, 7, -3, MCRT_DTYPE_I32, all, sizeof all, NULL, &err),
                         MCRT_OK);
        ck_assert_mem_eq(all, v, 96);
        float allf[24];
        ck_assert_int_eq(ckpt_read(ck, y, -1, 0, 0, MCRT_DTYPE_F32, allf, sizeof allf, NULL,
                                   &err), MCRT_OK);
        ck_assert_mem_eq(allf, f, 96);
    }
    ckpt_close(ck);
}
END_TEST

/* What read refuses. */
START_TEST(read_errors)
{
    char path[4096];
    path_in(path, sizeof path, "readerr.safetensors");
    write_st(path, "{\"x\":{\"dtype\":\"I32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
             "\"f\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[24,32]},"
             "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[32,36]},"
             "\"e\":{\"dtype\":\"F16\",\"shape\":[4611686018427387904,4,0],"
             "\"data_offsets\":[36,36]}}", NULL, 36);
    ckpt *ck;
    ckpt_err err;
    ck_assert_msg(ckpt_open(path, &ck, &err) == MCRT_OK, "%s", err.msg);
    const ckpt_tensor *x = ckpt_find(ck, "x");
    int32_t buf[6];
    static const struct {
        int32_t dim;
        int64_t start, len;
        int32_t dtype;
        size_t size;
        mcrt_status s;
        const char *expect;
    } bad[] = {
        {3, 0, 1, MCRT_DTYPE_I32, 24, MCRT_E_INVAL, "no dimension 3 to slice (dim is 0..1"},
        {-2, 0, 1, MCRT_DTYPE_I32, 24, MCRT_E_INVAL, "no dimension -2"},
        {0, 0, 3, MCRT_DTYPE_I32, 24, MCRT_E_RANGE, "slice start 0, length 3 along dim 0 is "
                                                    "outside [0, 2)"},
        {1, 2, 2, MCRT_DTYPE_I32, 24, MCRT_E_RANGE, "slice start 2, length 2"},
        {1, -1, 1, MCRT_DTYPE_I32, 24, MCRT_E_RANGE, "slice start -1"},
        {1, 0, -1, MCRT_DTYPE_I32, 24, MCRT_E_RANGE, "length -1"},
        {1, INT64_MAX, INT64_MAX, MCRT_DTYPE_I32, 24, MCRT_E_RANGE, "outside [0, 3)"},
        {1, 1, INT64_MAX, MCRT_DTYPE_I32, 24, MCRT_E_RANGE, "outside [0, 3)"},
        {-1, 0, 0, MCRT_DTYPE_F32, 24, MCRT_E_INVAL, "is I32 and can be read as I32, not F32"},
        {-1, 0, 0, 99, 24, MCRT_E_INVAL, "dtype 99"},
        {-1, 0, 0, MCRT_DTYPE_I32, 23, MCRT_E_RANGE, "the whole tensor as I32 needs 24 bytes, the "
                                                     "buffer holds 23"},
        {1, 1, 2, MCRT_DTYPE_I32, 15, MCRT_E_RANGE, "the slice [1, 3) of dim 1 as I32 needs 16"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&err, 0, sizeof err);
        mcrt_status s = ckpt_read(ck, x, bad[i].dim, bad[i].start, bad[i].len, bad[i].dtype, buf,
                                  bad[i].size, NULL, &err);
        ck_assert_msg(s == bad[i].s, "case %zu: %d (%s)", i, s, err.msg);
        ck_assert_msg(strstr(err.msg, bad[i].expect) != NULL, "case %zu: %s", i, err.msg);
        ck_assert_msg(strstr(err.msg, "readerr.safetensors: tensor 'x'") != NULL, "%s", err.msg);
    }
    ck_assert_int_eq(ckpt_read(ck, x, -1, 0, 0, MCRT_DTYPE_I32, NULL, 24, NULL, &err),
                     MCRT_E_INVAL);
    /* F64 only as itself */
    double d;
    ck_assert_int_eq(ckpt_read(ck, ckpt_find(ck, "f"), -1, 0, 0, MCRT_DTYPE_F32, &d, 8, NULL,
                               &err), MCRT_E_INVAL);
    ck_assert(strstr(err.msg, "is F64 and can be read as F64, not F32") != NULL);
    ck_assert_int_eq(ckpt_read(ck, ckpt_find(ck, "f"), -1, 0, 0, MCRT_DTYPE_F64, &d, 8, NULL,
                               &err), MCRT_OK);
    /* a scalar: whole only */
    float sc;
    ck_assert_int_eq(ckpt_read(ck, ckpt_find(ck, "s"), -1, 0, 0, MCRT_DTYPE_BF16, &sc, 2, NULL,
                               &err), MCRT_OK);
    ck_assert_int_eq(ckpt_read(ck, ckpt_find(ck, "s"), 0, 0, 1, MCRT_DTYPE_F32, &sc, 4, NULL,
                               &err), MCRT_E_INVAL);
    ck_assert(strstr(err.msg, "no dimension 0 to slice") != NULL);
    /* an empty tensor with a huge dimension: bounds are checked, nothing copied */
    const ckpt_tensor *e = ckpt_find(ck, "e");
    ck_assert_uint_eq(e->nelem, 0);
    ck_assert_uint_eq(e->nbytes, 0);
    size_t nb = 7;
    ck_assert_int_eq(ckpt_read(ck, e, 0, 5, 1000, MCRT_DTYPE_F32, NULL, 0, &nb, &err), MCRT_OK);
    ck_assert_uint_eq(nb, 0);
    ck_assert_int_eq(ckpt_read(ck, e, 2, 0, 1, MCRT_DTYPE_F32, NULL, 0, NULL, &err), MCRT_E_RANGE);
    ck_assert_int_eq(ckpt_read(ck, e, -1, 0, 0, MCRT_DTYPE_F16, NULL, 0, NULL, &err), MCRT_OK);
    /* lookups */
    const ckpt_tensor *t;
    ck_assert_int_eq(ckpt_lookup(ck, "xx", &t, &err), MCRT_E_NOTFOUND);
    ck_assert_ptr_null(t);
    ck_assert_msg(strstr(err.msg, "no tensor 'xx' (did you mean 'x'?)") != NULL, "%s", err.msg);
    ck_assert_int_eq(ckpt_lookup(ck, "completely.different.name", &t, &err), MCRT_E_NOTFOUND);
    ck_assert_msg(strstr(err.msg, "(4 tensors)") != NULL, "%s", err.msg);
    ck_assert_ptr_null(ckpt_find(ck, "y"));
    ck_assert_ptr_null(ckpt_at(ck, 4));
    ckpt_close(ck);
}
END_TEST

/* Accepted oddities: holes, trailing bytes, padding, unknown keys, empty and
 * scalar tensors, null metadata, names sorted by bytes. */
START_TEST(good_variants)
{
    char path[4096];
    path_in(path, sizeof path, "good.safetensors");
    const char *hdr =
        "  {\"b\":{\"data_offsets\":[4,12],\"shape\":[2],\"dtype\":\"F32\",\"extra\":[{\"k\":1}]},"
        "\"a\":{\"dtype\":\"U8\",\"shape\":[2,2],\"data_offsets\":[20,24]},"
        "\"\\u00e9\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[24,25]},"
        "\"A\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[12,20]},"
        "\"z0\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[8,8]},"
        "\"z1\":{\"dtype\":\"BF16\",\"shape\":[0],\"data_offsets\":[8,8]},"
        "\"__metadata__\":null}      ";
    write_st(path, hdr, NULL, 40); /* 4 bytes hole before b, 15 bytes after é */
    ckpt *ck;
    ckpt_err err;
    ck_assert_msg(ckpt_open(path, &ck, &err) == MCRT_OK, "%s", err.msg);
    static const char *const order[] = {"A", "a", "b", "z0", "z1", "\xc3\xa9"};
    ck_assert_uint_eq(ckpt_count(ck), 6);
    for (size_t i = 0; i < 6; i++)
        ck_assert_str_eq(ckpt_at(ck, i)->name, order[i]);
    const ckpt_tensor *b = ckpt_find(ck, "b");
    ck_assert_int_eq(b->dtype, MCRT_DTYPE_F32);
    ck_assert_int_eq(b->ndim, 1);
    ck_assert_int_eq(b->shape[0], 2);
    ck_assert_int_eq(b->shape[1], 0);
    ck_assert_uint_eq(b->nbytes, 8);
    const void *p;
    ck_assert_int_eq(ckpt_view(ck, b, &p, &err), MCRT_OK);
    unsigned char want[8] = {4, 5, 6, 7, 8, 9, 10, 11};
    ck_assert_mem_eq(p, want, 8);
    const ckpt_tensor *s = ckpt_find(ck, "A");
    ck_assert_int_eq(s->ndim, 0);
    ck_assert_uint_eq(s->nelem, 1);
    int64_t a64;
    ck_assert_int_eq(ckpt_read(ck, s, -1, 0, 0, MCRT_DTYPE_I64, &a64, 8, NULL, &err), MCRT_OK);
    ck_assert_int_eq(a64, (int64_t)0x131211100f0e0d0cLL);
    ck_assert_ptr_null(ckpt_metadata(ck, "format"));
    ck_assert_str_eq(ckpt_path(ck), path);
    /* copy-only: views are refused, reads still work */
    ckpt_set_copy_only(ck, true);
    ck_assert_int_eq(ckpt_view(ck, b, &p, &err), MCRT_E_UNSUPPORTED);
    ck_assert_ptr_null(p);
    ck_assert(strstr(err.msg, "no zero-copy view") != NULL);
    unsigned char got[8];
    ck_assert_int_eq(ckpt_read(ck, b, -1, 0, 0, MCRT_DTYPE_F32, got, 8, NULL, &err), MCRT_OK);
    ck_assert_mem_eq(got, want, 8);
    ckpt_close(ck);

    /* the empty header and a file that is only a header */
    write_st(path, "{}", NULL, 0);
    ck_assert_msg(ckpt_open(path, &ck, &err) == MCRT_OK, "%s", err.msg);
    ck_assert_uint_eq(ckpt_count(ck), 0);
    ck_assert_ptr_null(ckpt_at(ck, 0));
    ckpt_close(ck);

    /* a folder with model.safetensors (preferred over the index) */
    char dir[4096], f2[4096 + 64];
    path_in(dir, sizeof dir, "good_folder");
    make_dir(dir);
    snprintf(f2, sizeof f2, "%s/model.safetensors", dir);
    write_st(f2, "{\"w\":" F32_2 "}", NULL, 8);
    snprintf(f2, sizeof f2, "%s/model.safetensors.index.json", dir);
    write_bytes(f2, "broken", 6);
    ck_assert_msg(ckpt_open(dir, &ck, &err) == MCRT_OK, "%s", err.msg);
    ck_assert_ptr_nonnull(ckpt_find(ck, "w"));
    ckpt_close(ck);
    ckpt_close(NULL);
}
END_TEST

/* ---- the host services table ----------------------------------------------------- */

typedef struct test_host {
    log_sink sink;
    char *logbuf;
    size_t loglen;
    FILE *log;
    host_ctx *ctx;
} test_host;

static void host_setup(test_host *th)
{
    memset(th, 0, sizeof *th);
    th->log = open_memstream(&th->logbuf, &th->loglen);
    ck_assert_ptr_nonnull(th->log);
    log_sink_init(&th->sink, th->log, MCRT_LOG_DEBUG);
    th->sink.color = false;
    th->ctx = host_ctx_create(&th->sink, "model/test", NULL);
    ck_assert_ptr_nonnull(th->ctx);
}

/* The log so far, then cleared. */
static const char *host_log(test_host *th)
{
    static char copy[8192];
    fflush(th->log);
    snprintf(copy, sizeof copy, "%s", th->loglen ? th->logbuf : "");
    fseek(th->log, 0, SEEK_SET);
    th->loglen = 0;
    if (th->logbuf)
        th->logbuf[0] = '\0';
    return copy;
}

static void host_teardown(test_host *th)
{
    host_ctx_destroy(th->ctx);
    fclose(th->log);
    free(th->logbuf);
}

START_TEST(host_services)
{
    const mcrt_checkpoint_services *svc = checkpoint_services();
    ck_assert_ptr_nonnull(svc);
    ck_assert_uint_eq(svc->struct_size, sizeof *svc);
    test_host th;
    host_setup(&th);
    const mcrt_host *h = &th.ctx->host;

    char path[4096];
    path_in(path, sizeof path, "svc.safetensors");
    float w[6] = {1, 2, 3, 4, 5, 6};
    unsigned char wdata[25];
    memcpy(wdata, w, 24);
    wdata[24] = 0x7f;
    write_st(path, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
             "\"a\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[24,25]}}", wdata, 25);

    mcrt_checkpoint *ck = NULL;
    /* errors are logged through the host, tagged */
    char missing[4096];
    path_in(missing, sizeof missing, "nope.safetensors");
    ck_assert_int_eq(svc->open(h, missing, &ck), MCRT_E_NOTFOUND);
    ck_assert_ptr_null(ck);
    const char *log = host_log(&th);
    ck_assert_msg(strstr(log, "error: [model/test]") != NULL && strstr(log, "nope.safetensors: "
                  "no such file") != NULL, "%s", log);
    ck_assert_int_eq(svc->open(h, path, NULL), MCRT_E_INVAL);
    host_log(&th);

    ck_assert_int_eq(svc->open(h, path, &ck), MCRT_OK);
    log = host_log(&th);
    ck_assert_msg(strstr(log, "debug:") != NULL && strstr(log, "2 tensors") != NULL, "%s", log);
    ck_assert_uint_eq(svc->count(h, ck), 2);

    mcrt_tensor_info info;
    memset(&info, 0x5a, sizeof info);
    info.struct_size = sizeof info;
    ck_assert_int_eq(svc->info_at(h, ck, 0, &info), MCRT_OK);
    ck_assert_str_eq(info.name, "a");
    ck_assert_int_eq(info.dtype, MCRT_DTYPE_I8);
    ck_assert_int_eq(info.ndim, 1);
    ck_assert_int_eq(info.reserved, 0);
    ck_assert_int_eq(info.shape[0], 1);
    for (int i = 1; i < MCRT_CHECKPOINT_MAX_DIMS; i++)
        ck_assert_int_eq(info.shape[i], 0);
    ck_assert_uint_eq(info.nbytes, 1);
    ck_assert_uint_eq(info.struct_size, sizeof info);
    ck_assert_int_eq(svc->info_at(h, ck, 2, &info), MCRT_E_RANGE);
    ck_assert(strstr(host_log(&th), "index 2 is out of range (2 tensors)") != NULL);

    /* an older, shorter struct: only what it covers is written */
    memset(&info, 0x5a, sizeof info);
    info.struct_size = (uint32_t)offsetof(mcrt_tensor_info, name);
    ck_assert_int_eq(svc->find(h, ck, "w", &info), MCRT_OK);
    ck_assert_int_eq(info.ndim, 2);
    ck_assert_int_eq(info.shape[1], 3);
    unsigned char fill[sizeof(void *)];
    memset(fill, 0x5a, sizeof fill);
    ck_assert_mem_eq(&info.name, fill, sizeof fill);
    ck_assert_uint_eq(info.struct_size, offsetof(mcrt_tensor_info, name));
    info.struct_size = 0;
    ck_assert_int_eq(svc->find(h, ck, "w", &info), MCRT_E_INVAL);
    ck_assert(strstr(host_log(&th), "struct_size is 0") != NULL);

    /* find: NOTFOUND is not logged */
    info.struct_size = sizeof info;
    ck_assert_int_eq(svc->find(h, ck, "W", &info), MCRT_E_NOTFOUND);
    ck_assert_str_eq(host_log(&th), "");
    ck_assert_int_eq(svc->find(h, ck, "w", NULL), MCRT_OK); /* existence probe */

    float got[3];
    ck_assert_int_eq(svc->read(h, ck, "w", 0, 1, 1, MCRT_DTYPE_F32, got, sizeof got), MCRT_OK);
    ck_assert(got[0] == 4 && got[1] == 5 && got[2] == 6);
    uint16_t half[2];
    ck_assert_int_eq(svc->read(h, ck, "w", 1, 1, 1, MCRT_DTYPE_F16, half, sizeof half), MCRT_OK);
    ck_assert_uint_eq(half[0], 0x4000); /* 2.0 */
    ck_assert_uint_eq(half[1], 0x4500); /* 5.0 */
    ck_assert_str_eq(host_log(&th), "");
    ck_assert_int_eq(svc->read(h, ck, "w", 0, 0, 2, MCRT_DTYPE_F32, got, sizeof got),
                     MCRT_E_RANGE);
    log = host_log(&th);
    ck_assert_msg(strstr(log, "error: [model/test]") != NULL &&
                  strstr(log, "svc.safetensors: tensor 'w': the slice [0, 2) of dim 0 as F32 "
                         "needs 24 bytes, the buffer holds 12") != NULL, "%s", log);
    ck_assert_int_eq(svc->read(h, ck, "ww", -1, 0, 0, MCRT_DTYPE_F32, got, sizeof got),
                     MCRT_E_NOTFOUND);
    ck_assert(strstr(host_log(&th), "no tensor 'ww' (did you mean 'w'?)") != NULL);

    const void *p = (const void *)1;
    memset(&info, 0, sizeof info);
    info.struct_size = sizeof info;
    ck_assert_int_eq(svc->view(h, ck, "w", &p, &info), MCRT_OK);
    ck_assert_mem_eq(p, w, 24);
    ck_assert_uint_eq(info.nbytes, 24);
    ck_assert_int_eq(svc->view(h, ck, "w", &p, NULL), MCRT_OK);
    ck_assert_int_eq(svc->view(h, ck, "q", &p, NULL), MCRT_E_NOTFOUND);
    ck_assert_ptr_null(p);
    ck_assert(strstr(host_log(&th), "no tensor 'q'") != NULL);
    ck_assert_int_eq(svc->view(h, ck, "w", NULL, NULL), MCRT_E_INVAL);
    host_log(&th);
    ckpt_set_copy_only(ck, true);
    ck_assert_int_eq(svc->view(h, ck, "w", &p, NULL), MCRT_E_UNSUPPORTED);
    log = host_log(&th);
    ck_assert_msg(strstr(log, "error:") == NULL && strstr(log, "debug:") != NULL, "%s", log);

    /* garbage and NULL checkpoints */
    char junk[256];
    memset(junk, 0, sizeof junk);
    mcrt_checkpoint *bad = (mcrt_checkpoint *)junk;
    ck_assert_uint_eq(svc->count(h, NULL), 0);
    ck_assert_uint_eq(svc->count(h, bad), 0);
    ck_assert_int_eq(svc->info_at(h, bad, 0, &info), MCRT_E_INVAL);
    ck_assert_int_eq(svc->find(h, bad, "w", &info), MCRT_E_INVAL);
    ck_assert_int_eq(svc->find(h, ck, NULL, &info), MCRT_E_INVAL);
    ck_assert_int_eq(svc->read(h, bad, "w", -1, 0, 0, MCRT_DTYPE_F32, got, 12), MCRT_E_INVAL);
    ck_assert_int_eq(svc->view(h, bad, "w", &p, NULL), MCRT_E_INVAL);
    ck_assert(strstr(host_log(&th), "not an open checkpoint") != NULL);
    svc->close(h, bad);
    svc->close(h, NULL);
    svc->close(h, ck);
    host_teardown(&th);
}
END_TEST

/* ---- fixtures from make_fixtures.py ------------------------------------------------ */

typedef struct mcase {
    char name[128];
    int32_t dim;
    int64_t start, len;
    int32_t dtype;
    size_t off, nbytes;
    int nan_aware;
} mcase;

typedef struct manifest {
    mcase *c;
    size_t n;
    unsigned char *expect;
    size_t expect_len;
} manifest;

static int32_t dtype_of(const char *s)
{
    static const char *const names[] = {"", "F32", "F16", "BF16", "F64", "I8", "I16", "I32",
                                        "I64", "U8", "BOOL"};
    for (int32_t i = 1; i <= 10; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return 0;
}

static void manifest_load(manifest *m)
{
    memset(m, 0, sizeof *m);
    char path[4096 + 32];
    snprintf(path, sizeof path, "%s/expect.bin", fixtures);
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    m->expect_len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    m->expect = malloc(m->expect_len + 1);
    ck_assert_ptr_nonnull(m->expect);
    ck_assert_uint_eq(fread(m->expect, 1, m->expect_len, f), m->expect_len);
    fclose(f);
    snprintf(path, sizeof path, "%s/manifest.tsv", fixtures);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    char line[512];
    size_t cap = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        if (line[0] == '\n')
            continue;
        if (m->n == cap) {
            cap = cap ? cap * 2 : 256;
            m->c = realloc(m->c, cap * sizeof *m->c);
            ck_assert_ptr_nonnull(m->c);
        }
        mcase *c = &m->c[m->n];
        char dt[16];
        long long s, l;
        unsigned long long off, nb;
        char *tab = strchr(line, '\t');
        ck_assert_ptr_nonnull(tab);
        *tab = '\0';
        ck_assert_uint_lt(strlen(line), sizeof c->name);
        memcpy(c->name, line, strlen(line) + 1);
        int dim;
        ck_assert_int_eq(sscanf(tab + 1, "%d %lld %lld %15s %llu %llu %d", &dim, &s, &l, dt, &off,
                                &nb, &c->nan_aware), 7);
        c->dim = dim;
        c->start = s;
        c->len = l;
        c->dtype = dtype_of(dt);
        ck_assert_int_ne(c->dtype, 0);
        c->off = (size_t)off;
        c->nbytes = (size_t)nb;
        ck_assert_uint_le(c->off + c->nbytes, m->expect_len);
        m->n++;
    }
    fclose(f);
    ck_assert_uint_gt(m->n, 100);
}

static void manifest_free(manifest *m)
{
    free(m->c);
    free(m->expect);
}

static bool is_nan_bits(int32_t dtype, const unsigned char *p)
{
    if (dtype == MCRT_DTYPE_F32) {
        uint32_t u;
        memcpy(&u, p, 4);
        return (u & 0x7f800000u) == 0x7f800000u && (u & 0x7fffffu) != 0;
    }
    uint16_t u;
    memcpy(&u, p, 2);
    if (dtype == MCRT_DTYPE_F16)
        return (u & 0x7c00u) == 0x7c00u && (u & 0x3ffu) != 0;
    return (u & 0x7f80u) == 0x7f80u && (u & 0x7fu) != 0;
}

/* Run every case on ck; returns a description of the first mismatch or NULL. */
static const char *check_case(const ckpt *ck, const manifest *m, const mcase *c, char *why,
                              size_t why_size)
{
    const ckpt_tensor *t = ckpt_find(ck, c->name);
    if (t == NULL) {
        snprintf(why, why_size, "%s: not found", c->name);
        return why;
    }
    unsigned char *buf = malloc(c->nbytes + 1);
    ckpt_err err;
    size_t nb = 0;
    mcrt_status s = ckpt_read(ck, t, c->dim, c->start, c->len, c->dtype, buf, c->nbytes, &nb,
                              &err);
    const char *res = NULL;
    const unsigned char *want = m->expect + c->off;
    if (s != MCRT_OK) {
        int w = snprintf(why, why_size, "%.128s dim %d: %.300s", c->name, c->dim, err.msg);
        (void)w;
        res = why;
    } else if (nb != c->nbytes) {
        snprintf(why, why_size, "%s dim %d: %zu bytes, expected %zu", c->name, c->dim, nb,
                 c->nbytes);
        res = why;
    } else {
        size_t es = mcrt_dtype_size(c->dtype);
        for (size_t i = 0; i < c->nbytes; i += es) {
            if (memcmp(buf + i, want + i, es) == 0)
                continue;
            if (c->nan_aware && is_nan_bits(c->dtype, buf + i) && is_nan_bits(c->dtype, want + i))
                continue;
            uint64_t g = 0, w = 0;
            memcpy(&g, buf + i, es);
            memcpy(&w, want + i, es);
            snprintf(why, why_size, "%s dim %d [%lld,+%lld) as %s: element %zu is %llx, "
                     "expected %llx", c->name, c->dim, (long long)c->start, (long long)c->len,
                     ckpt_dtype_name(c->dtype), i / es, (unsigned long long)g,
                     (unsigned long long)w);
            res = why;
            break;
        }
    }
    /* one byte short is refused */
    if (res == NULL && c->nbytes > 0 &&
        ckpt_read(ck, t, c->dim, c->start, c->len, c->dtype, buf, c->nbytes - 1, NULL, &err) !=
            MCRT_E_RANGE) {
        snprintf(why, why_size, "%s: a short buffer was accepted", c->name);
        res = why;
    }
    free(buf);
    return res;
}

static void run_manifest(const char *path, bool copy_only)
{
    manifest m;
    manifest_load(&m);
    ckpt *ck;
    ckpt_err err;
    ck_assert_msg(ckpt_open(path, &ck, &err) == MCRT_OK, "%s", err.msg);
    ckpt_set_copy_only(ck, copy_only);
    ck_assert_uint_eq(ckpt_count(ck), 19);
    char why[512];
    for (size_t i = 0; i < m.n; i++) {
        const char *bad = check_case(ck, &m, &m.c[i], why, sizeof why);
        ck_assert_msg(bad == NULL, "%s: %s", path, bad);
    }
    ckpt_close(ck);
    manifest_free(&m);
}

static void fixture_path(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", fixtures, name);
}

START_TEST(fixtures_single)
{
    char p[4096 + 64];
    fixture_path(p, sizeof p, "single.safetensors");
    run_manifest(p, false);
}
END_TEST

START_TEST(fixtures_single_copy)
{
    char p[4096 + 64];
    fixture_path(p, sizeof p, "single.safetensors");
    run_manifest(p, true);
}
END_TEST

START_TEST(fixtures_folder)
{
    char p[4096 + 64];
    fixture_path(p, sizeof p, "folder");
    run_manifest(p, false);
}
END_TEST

START_TEST(fixtures_sharded)
{
    char p[4096 + 64];
    fixture_path(p, sizeof p, "sharded");
    run_manifest(p, false);
    fixture_path(p, sizeof p, "sharded/model.safetensors.index.json");
    run_manifest(p, true);
}
END_TEST

/* Same table through the single file and the shards; views are the stored bytes. */
START_TEST(fixtures_table_and_views)
{
    manifest m;
    manifest_load(&m);
    char p1[4096 + 64], p2[4096 + 64];
    fixture_path(p1, sizeof p1, "single.safetensors");
    fixture_path(p2, sizeof p2, "sharded");
    ckpt *a, *b;
    ckpt_err err;
    ck_assert_msg(ckpt_open(p1, &a, &err) == MCRT_OK, "%s", err.msg);
    ck_assert_msg(ckpt_open(p2, &b, &err) == MCRT_OK, "%s", err.msg);
    ck_assert_str_eq(ckpt_metadata(a, "format"), "pt");
    ck_assert_str_eq(ckpt_metadata(a, "writer"), "make_fixtures.py");
    ck_assert_str_eq(ckpt_metadata(b, "format"), "pt");
    ck_assert_uint_eq(ckpt_count(a), ckpt_count(b));
    for (size_t i = 0; i < ckpt_count(a); i++) {
        const ckpt_tensor *x = ckpt_at(a, i), *y = ckpt_at(b, i);
        ck_assert_str_eq(x->name, y->name);
        if (i > 0)
            ck_assert_int_lt(strcmp(ckpt_at(a, i - 1)->name, x->name), 0);
        ck_assert_int_eq(x->dtype, y->dtype);
        ck_assert_int_eq(x->ndim, y->ndim);
        ck_assert_mem_eq(x->shape, y->shape, sizeof x->shape);
        ck_assert_uint_eq(x->nbytes, y->nbytes);
        const void *va, *vb;
        ck_assert_int_eq(ckpt_view(a, x, &va, &err), MCRT_OK);
        ck_assert_int_eq(ckpt_view(b, y, &vb, &err), MCRT_OK);
        ck_assert(x->nbytes == 0 || memcmp(va, vb, x->nbytes) == 0);
        /* the whole-tensor identity case of the manifest */
        bool seen = false;
        for (size_t k = 0; k < m.n; k++) {
            const mcase *c = &m.c[k];
            if (c->dim == -1 && c->dtype == x->dtype && strcmp(c->name, x->name) == 0) {
                ck_assert_uint_eq(c->nbytes, x->nbytes);
                ck_assert(x->nbytes == 0 || memcmp(va, m.expect + c->off, c->nbytes) == 0);
                seen = true;
            }
        }
        ck_assert_msg(seen, "%s: no identity case", x->name);
    }
    const ckpt_tensor *u = ckpt_find(a, "\xc3\xbcnicode.\xc3\xa9.weight");
    ck_assert_ptr_nonnull(u);
    ckpt_close(a);
    ckpt_close(b);
    manifest_free(&m);
}
END_TEST

typedef struct reader_arg {
    const ckpt *ck;
    const manifest *m;
    size_t from, step;
    int failures;
    char why[512];
} reader_arg;

static void *reader(void *p)
{
    reader_arg *a = p;
    for (int round = 0; round < 2; round++)
        for (size_t i = a->from; i < a->m->n; i += a->step)
            if (check_case(a->ck, a->m, &a->m->c[i], a->why, sizeof a->why) != NULL)
                a->failures++;
    return NULL;
}

/* Ranks read their shards concurrently from one open checkpoint. */
START_TEST(fixtures_concurrent)
{
    manifest m;
    manifest_load(&m);
    char p[4096 + 64];
    fixture_path(p, sizeof p, "sharded");
    ckpt *ck;
    ckpt_err err;
    ck_assert_msg(ckpt_open(p, &ck, &err) == MCRT_OK, "%s", err.msg);
    enum { N = 4 };
    pthread_t th[N];
    reader_arg args[N];
    for (size_t i = 0; i < N; i++) {
        args[i] = (reader_arg){.ck = ck, .m = &m, .from = i, .step = 3};
        ck_assert_int_eq(pthread_create(&th[i], NULL, reader, &args[i]), 0);
    }
    for (size_t i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(args[i].failures == 0, "thread %zu: %s", i, args[i].why);
    }
    ckpt_close(ck);
    manifest_free(&m);
}
END_TEST

/* Through the host table, as a model plugin does it. */
START_TEST(fixtures_services)
{
    const mcrt_checkpoint_services *svc = checkpoint_services();
    test_host th;
    host_setup(&th);
    const mcrt_host *h = &th.ctx->host;
    char p[4096 + 64];
    fixture_path(p, sizeof p, "sharded");
    mcrt_checkpoint *ck;
    ck_assert_int_eq(svc->open(h, p, &ck), MCRT_OK);
    manifest m;
    manifest_load(&m);
    for (size_t i = 0; i < svc->count(h, ck); i++) {
        mcrt_tensor_info info = {.struct_size = sizeof info};
        ck_assert_int_eq(svc->info_at(h, ck, i, &info), MCRT_OK);
        mcrt_tensor_info again = {.struct_size = sizeof again};
        ck_assert_int_eq(svc->find(h, ck, info.name, &again), MCRT_OK);
        ck_assert_mem_eq(&info, &again, sizeof info);
        for (size_t k = 0; k < m.n; k++) {
            const mcase *c = &m.c[k];
            if (strcmp(c->name, info.name) != 0 || c->dim < 0 || c->len == 0)
                continue;
            unsigned char *buf = malloc(c->nbytes);
            ck_assert_int_eq(svc->read(h, ck, c->name, c->dim, c->start, c->len, c->dtype, buf,
                                       c->nbytes), MCRT_OK);
            if (!c->nan_aware)
                ck_assert(memcmp(buf, m.expect + c->off, c->nbytes) == 0);
            free(buf);
        }
    }
    const char *lg = host_log(&th);
    ck_assert_msg(strstr(lg, "error:") == NULL, "%s", lg);
    svc->close(h, ck);
    manifest_free(&m);
    host_teardown(&th);
}
END_TEST

/* ---- main ----------------------------------------------------------------------------- */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    chmod(path, 0700);
    return remove(path);
}

static int run_python(const char *python, const char *script)
{
    if (snprintf(fixtures, sizeof fixtures, "%s/fixtures", scratch) >= (int)sizeof fixtures)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        execl(python, python, script, fixtures, (char *)NULL);
        perror(python);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(int argc, char **argv)
{
    const char *base = getenv("TEST_SCRATCH");
    snprintf(scratch, sizeof scratch, "%s/ckpt-XXXXXX", base && *base ? base : "/tmp");
    if (mkdtemp(scratch) == NULL) {
        perror(scratch);
        return 1;
    }
    Suite *s = suite_create("checkpoint");
    bool with_fixtures = argc == 4 && strcmp(argv[1], "--fixtures") == 0;
    if (with_fixtures) {
        int rc = run_python(argv[2], argv[3]);
        if (rc != 0) {
            nftw(scratch, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
            fprintf(stderr, "make_fixtures.py exited with %d%s\n", rc,
                    rc == 77 ? " (numpy or torch missing): skipped" : "");
            return rc == 77 ? 77 : 1;
        }
        TCase *tf = tcase_create("fixtures");
        tcase_set_timeout(tf, 600);
        tcase_add_test(tf, fixtures_single);
        tcase_add_test(tf, fixtures_single_copy);
        tcase_add_test(tf, fixtures_folder);
        tcase_add_test(tf, fixtures_sharded);
        tcase_add_test(tf, fixtures_table_and_views);
        tcase_add_test(tf, fixtures_concurrent);
        tcase_add_test(tf, fixtures_services);
        suite_add_tcase(s, tf);
    } else {
        TCase *tb = tcase_create("malformed");
        tcase_set_timeout(tb, 120);
        tcase_add_loop_test(tb, malformed_table, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
        tcase_add_test(tb, malformed_raw);
        tcase_add_loop_test(tb, index_table, 0,
                            (int)(sizeof index_cases / sizeof index_cases[0]));
        tcase_add_loop_test(tb, hf_config_table, 0, (int)(sizeof hf_cases / sizeof hf_cases[0]));
        suite_add_tcase(s, tb);
        TCase *tj = tcase_create("json");
        tcase_add_loop_test(tj, json_rejects, 0, (int)(sizeof json_bads / sizeof json_bads[0]));
        tcase_add_test(tj, json_accepts);
        suite_add_tcase(s, tj);
        TCase *tc = tcase_create("convert");
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, convert_values);
        suite_add_tcase(s, tc);
        TCase *tg = tcase_create("good");
        tcase_set_timeout(tg, 120);
        tcase_add_test(tg, slices_exhaustive);
        tcase_add_test(tg, read_errors);
        tcase_add_test(tg, good_variants);
        tcase_add_test(tg, index_good);
        tcase_add_test(tg, host_services);
        suite_add_tcase(s, tg);
    }
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    nftw(scratch, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return failed == 0 ? 0 : 1;
}
