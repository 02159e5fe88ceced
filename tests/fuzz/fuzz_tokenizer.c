/*
 * tests/fuzz/fuzz_tokenizer.c: libFuzzer target for the gpt2-bpe tokenizer
 * (plugins/tokenizer-gpt2-bpe/bpe.c) and the UTF-8 helper it decodes with
 * (plugins/common/utf8.h).
 *
 * Input: the first byte picks the mode, the rest is the payload.
 *   byte % 4 == 0..2  TEXT: encode the payload with the real GPT-2 vocabulary
 *                     (models/gpt2, loaded once); with parse_special_tokens
 *                     when byte % 4 == 2.
 *   byte % 4 == 3     FILES: the payload is vocab.json, a NUL, merges.txt,
 *                     optionally a NUL and a TEXT: load them (any error is
 *                     fine, but its message must name the file) and, when
 *                     they load, encode the text with them.
 * For every encoding it aborts unless:
 *   - every id is inside the vocabulary and there are at most as many ids as
 *     bytes (at most one per byte, <|endoftext|> being 13 bytes);
 *   - the tokens' raw bytes are exactly the input (any bytes round-trip);
 *   - the incremental decoder, fed token by token and flushed, gives exactly
 *     the whole-buffer repair (Python's errors='replace') of the input, and
 *     never emits invalid UTF-8 along the way;
 *   - an encoder without cache and one that sends every word through the
 *     long-word path (bucket queue) give the same ids as the default one.
 *
 * Built as a fuzzer with clang (tests/fuzz/README.md); built with any
 * compiler as a corpus replayer that the test suite runs over corpus/.
 * G2B_MODELS_DIR (set by meson) is where vocab.json and merges.txt are.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bpe.h"
#include "utf8.h"

#ifndef G2B_MODELS_DIR
#error "G2B_MODELS_DIR must name the folder of vocab.json and merges.txt"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static g2b_vocab *real_vocab;
static g2b_encoder *real_enc[2][3]; /* [special][default, no cache, long path] */

static void fail(const char *what, size_t size)
{
    fprintf(stderr, "fuzz_tokenizer: %s (input of %zu bytes)\n", what, size);
    abort();
}

/* The ids of text with enc; malloc'd, *n set. NULL when out of memory. */
static int32_t *encode(g2b_encoder *enc, const char *text, size_t len, size_t *n)
{
    int32_t *ids = malloc((len + 1) * sizeof *ids);
    if (ids == NULL)
        return NULL;
    if (g2b_encode(enc, text, len, ids, len + 1, n) != MCRT_OK) {
        free(ids);
        return NULL;
    }
    if (*n > len + 1)
        fail("more ids than bytes", len);
    return ids;
}

static void check_encoding(const g2b_vocab *v, g2b_encoder *const enc[3], const char *text,
                           size_t len)
{
    size_t n = 0, n2 = 0;
    int32_t *ids = encode(enc[0], text, len, &n);
    if (ids == NULL)
        return;
    if (n > len)
        fail("more ids than bytes", len);
    /* Raw bytes: exactly the input. The stream: exactly the repair. */
    char *raw = malloc(len + 1), *rep = malloc(3 * len + 3), *str = malloc(3 * len + 64);
    if (raw == NULL || rep == NULL || str == NULL)
        goto done;
    mcrt_utf8_stream st;
    mcrt_utf8_stream_init(&st);
    size_t o = 0, so = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= g2b_vocab_size(v))
            fail("an id outside the vocabulary", len);
        size_t tl = 0;
        const uint8_t *t = g2b_token(v, ids[i], &tl);
        if (o + tl > len)
            fail("the tokens hold more bytes than the input", len);
        memcpy(raw + o, t, tl);
        o += tl;
        size_t w = mcrt_utf8_stream_feed(&st, (const char *)t, tl, str + so);
        if (w > mcrt_utf8_stream_bound(tl) || !mcrt_utf8_valid(str + so, w))
            fail("the stream emitted invalid UTF-8", len);
        so += w;
    }
    so += mcrt_utf8_stream_flush(&st, str + so);
    if (o != len || (len > 0 && memcmp(raw, text, len) != 0))
        fail("the tokens' bytes are not the input", len);
    size_t rl = mcrt_utf8_repair(text, len, rep);
    if (rl != so || (rl > 0 && memcmp(rep, str, rl) != 0))
        fail("streamed decoding differs from the whole-buffer repair", len);
    if (mcrt_utf8_repair(text, len, NULL) != rl)
        fail("the measured repair length differs", len);
    /* Other encoders: the same ids. */
    for (int k = 1; k < 3; k++) {
        int32_t *ids2 = encode(enc[k], text, len, &n2);
        if (ids2 == NULL)
            continue;
        if (n2 != n || (n > 0 && memcmp(ids, ids2, n * sizeof *ids) != 0))
            fail(k == 1 ? "the cache changed the ids" : "the long-word path changed the ids",
                 len);
        free(ids2);
    }
done:
    free(raw);
    free(rep);
    free(str);
    free(ids);
}

static bool make_encoders(const g2b_vocab *v, bool special, g2b_encoder *enc[3])
{
    enc[0] = g2b_encoder_create(v, 256, special);
    enc[1] = g2b_encoder_create(v, 0, special);
    enc[2] = g2b_encoder_create(v, 256, special);
    if (enc[0] == NULL || enc[1] == NULL || enc[2] == NULL) {
        for (int k = 0; k < 3; k++)
            g2b_encoder_free(enc[k]);
        return false;
    }
    g2b_encoder_long_path_only(enc[2], true);
    return true;
}

static void load_real(void)
{
    char err[1024];
    if (real_vocab != NULL)
        return;
    if (g2b_vocab_load_files(G2B_MODELS_DIR "/vocab.json", G2B_MODELS_DIR "/merges.txt",
                             &real_vocab, err, sizeof err) != MCRT_OK) {
        fprintf(stderr, "fuzz_tokenizer: %s\n", err);
        abort();
    }
    if (!make_encoders(real_vocab, false, real_enc[0]) ||
        !make_encoders(real_vocab, true, real_enc[1]))
        abort();
}

static void files_mode(const char *p, size_t len)
{
    const char *nul = memchr(p, '\0', len);
    if (nul == NULL)
        return;
    const char *m = nul + 1;
    size_t vl = (size_t)(nul - p), ml = len - vl - 1;
    const char *text = NULL;
    size_t tl = 0;
    const char *nul2 = memchr(m, '\0', ml);
    if (nul2 != NULL) {
        text = nul2 + 1;
        tl = ml - (size_t)(nul2 - m) - 1;
        ml = (size_t)(nul2 - m);
    }
    g2b_vocab *v = NULL;
    char err[1024];
    err[0] = '\0';
    mcrt_status st = g2b_vocab_load_buffers(p, vl, "VOCAB", m, ml, "MERGES", &v, err, sizeof err);
    if (st != MCRT_OK) {
        if (st != MCRT_E_DATA && st != MCRT_E_NOMEM)
            fail("a load failed with an unexpected status", len);
        if (st == MCRT_E_DATA && strstr(err, "VOCAB") == NULL && strstr(err, "MERGES") == NULL)
            fail("a load error does not name its file", len);
        return;
    }
    g2b_encoder *enc[3];
    if (text != NULL && make_encoders(v, (len & 1) != 0, enc)) {
        check_encoding(v, enc, text, tl);
        for (int k = 0; k < 3; k++)
            g2b_encoder_free(enc[k]);
    }
    g2b_vocab_free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const char *p = (const char *)data + 1;
    size_t len = size - 1;
    switch (data[0] % 4) {
    case 3:
        files_mode(p, len);
        break;
    default:
        load_real();
        check_encoding(real_vocab, real_enc[data[0] % 4 == 2], p, len);
        break;
    }
    return 0;
}
