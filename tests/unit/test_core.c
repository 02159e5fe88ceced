/*
 * tests/unit/test_core.c: small core pieces against hand-computed values:
 * edit distance, hex digits, the KV block allocator, JSON string escaping,
 * exit codes.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output/output.h"
#include "runtime/kvalloc.h"
#include "util/exitcode.h"
#include "util/strutil.h"

static const struct { const char *a, *b; size_t d; } dist_cases[] = {
    {"", "", 0},
    {"load", "load", 0},
    {"lod", "load", 1},            /* one deletion */
    {"temperatur", "temperature", 1},
    {"top_k", "tok_p", 2},
    {"max_batch_sise", "max_batch_size", 1},
    {"kv_blok_size", "kv_block_size", 1},
    {"ab", "ba", 1},               /* one transposition (OSA) */
    {"engnie", "engine", 1},
    {"kitten", "sitting", 3},      /* the textbook example */
    {"", "abc", 3},
};

START_TEST(edit_distance_table)
{
    size_t d = edit_distance(dist_cases[_i].a, dist_cases[_i].b);
    ck_assert_msg(d == dist_cases[_i].d, "d(%s,%s) = %zu, expected %zu", dist_cases[_i].a,
                  dist_cases[_i].b, d, dist_cases[_i].d);
    ck_assert_uint_eq(edit_distance(dist_cases[_i].b, dist_cases[_i].a), dist_cases[_i].d);
}
END_TEST

/* Every byte value (and EOF): 0-9, a-f, A-F are digits, nothing else is. */
START_TEST(hex_digit_values)
{
    static const char digits[] = "0123456789abcdef", upper[] = "ABCDEF";
    for (int c = -1; c < 256; c++) {
        int want = -1;
        const char *p = c > 0 ? strchr(digits, c) : NULL;
        if (p != NULL)
            want = (int)(p - digits);
        else if (c > 0 && strchr(upper, c) != NULL)
            want = 10 + (int)(strchr(upper, c) - upper);
        ck_assert_msg(hex_digit_value(c) == want, "hex_digit_value(%d) = %d, expected %d", c,
                      hex_digit_value(c), want);
    }
}
END_TEST

START_TEST(kv_alloc_all_or_nothing)
{
    kv_alloc *a = kv_alloc_create(4);
    ck_assert_ptr_nonnull(a);
    int32_t ids[8];
    ck_assert_int_eq(kv_alloc_take(a, 3, ids), MCRT_OK);
    ck_assert_int_eq(ids[0], 0); /* block 0 first */
    ck_assert_int_eq(ids[1], 1);
    ck_assert_int_eq(ids[2], 2);
    ck_assert_uint_eq(kv_alloc_free_count(a), 1);
    int32_t more[2] = {-7, -7};
    ck_assert_int_eq(kv_alloc_take(a, 2, more), MCRT_E_NOMEM);
    ck_assert_int_eq(more[0], -7); /* nothing given on failure */
    ck_assert_uint_eq(kv_alloc_free_count(a), 1);
    ck_assert_uint_eq(kv_alloc_give(a, ids, 3), 0);
    ck_assert_uint_eq(kv_alloc_free_count(a), 4);
    /* double free and foreign ids are counted, not taken */
    ck_assert_uint_eq(kv_alloc_give(a, ids, 1), 1);
    int32_t foreign[3] = {-1, 4, 1000};
    ck_assert_uint_eq(kv_alloc_give(a, foreign, 3), 3);
    ck_assert_uint_eq(kv_alloc_free_count(a), 4);
    /* every id comes back exactly once */
    int32_t all[4];
    ck_assert_int_eq(kv_alloc_take(a, 4, all), MCRT_OK);
    int seen[4] = {0};
    for (int i = 0; i < 4; i++) {
        ck_assert(all[i] >= 0 && all[i] < 4);
        seen[all[i]]++;
    }
    for (int i = 0; i < 4; i++) ck_assert_int_eq(seen[i], 1);
    ck_assert_int_eq(kv_alloc_take(a, 0, all), MCRT_OK);
    kv_alloc_destroy(a);
}
END_TEST

static const struct { const char *in; size_t len; const char *out; } json_cases[] = {
    {"plain", 5, "\"plain\""},
    {"a\"b\\c", 5, "\"a\\\"b\\\\c\""},
    {"line\nnext\ttab\r", 14, "\"line\\nnext\\ttab\\r\""},
    {"\x01\x1f\x7f", 3, "\"\\u0001\\u001f\\u007f\""},
    {"caf\xc3\xa9", 5, "\"caf\xc3\xa9\""},                 /* valid UTF-8 kept */
    {"\xff" "a", 2, "\"\\ufffda\""},                       /* invalid byte */
    {"\xc3", 1, "\"\\ufffd\""},                            /* truncated sequence */
    {"\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\""},      /* surrogate: invalid */
    {"\xf0\x9f\x98\x80", 4, "\"\xf0\x9f\x98\x80\""},       /* emoji */
    {"a\0b", 3, "\"a\\u0000b\""},                          /* NUL inside */
};

START_TEST(json_string_table)
{
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    output_json_string(f, json_cases[_i].in, json_cases[_i].len);
    fclose(f);
    ck_assert_msg(strcmp(buf, json_cases[_i].out) == 0, "case %d: got %s, expected %s", _i, buf,
                  json_cases[_i].out);
    free(buf);
}
END_TEST

START_TEST(exit_codes)
{
    static const struct { mcrt_status s; int code; } t[] = {
        {MCRT_OK, 0},           {MCRT_E_CONFIG, 78},      {MCRT_E_INVAL, 78},
        {MCRT_E_IO, 66},        {MCRT_E_NOTFOUND, 66},    {MCRT_E_DATA, 65},
        {MCRT_E_NOMEM, 69},     {MCRT_E_UNSUPPORTED, 69}, {MCRT_E_DEVICE, 69},
        {MCRT_E_INTERNAL, 70},  {-999, 70},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        ck_assert_int_eq(exit_code_for_status(t[i].s), t[i].code);
}
END_TEST

START_TEST(strbuf_grows)
{
    strbuf b = {0};
    ck_assert_str_eq(strbuf_cstr(&b), "");
    for (int i = 0; i < 1000; i++) strbuf_printf(&b, "%d,", i);
    ck_assert_uint_eq(b.len, 3890); /* 10*2 + 90*3 + 900*4 */
    ck_assert(strncmp(b.data, "0,1,2,", 6) == 0);
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    strbuf_printf(&b, "%s", big); /* longer than the printf scratch buffer */
    ck_assert_uint_eq(b.len, 3890 + 1999);
    strbuf_free(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, edit_distance_table, 0, (int)(sizeof dist_cases / sizeof dist_cases[0]));
    tcase_add_test(tc, hex_digit_values);
    tcase_add_test(tc, kv_alloc_all_or_nothing);
    tcase_add_loop_test(tc, json_string_table, 0, (int)(sizeof json_cases / sizeof json_cases[0]));
    tcase_add_test(tc, exit_codes);
    tcase_add_test(tc, strbuf_grows);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
