/*
 * plugins/tokenizer-gpt2-bpe/bpe.h: GPT-2 byte-level BPE, the engine of the
 * gpt2-bpe tokenizer plugin (gpt2_bpe.c), also linked directly by the fuzz
 * target (tests/fuzz/fuzz_tokenizer.c). Internal to the plugin: not part of
 * the mcrt ABI.
 *
 * The algorithm is OpenAI's GPT-2 encoder.py (which Megatron's
 * GPT2BPETokenizer copies), exactly:
 *   1. pre-tokenize with 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+|
 *      ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ (a hand-written scanner with the same
 *      leftmost-alternative, greedy, backtracking semantics; Unicode general
 *      categories from utf8proc; \s is the Unicode White_Space property, as
 *      in Python's `regex` module);
 *   2. map each piece's bytes through bytes_to_unicode (here: work on bytes
 *      and ids directly, which is the same thing because the map is a
 *      bijection);
 *   3. BPE: repeatedly merge every occurrence (left to right) of the adjacent
 *      pair with the lowest merge rank, until no pair has a rank;
 *   4. look the symbols up in the vocabulary.
 * Bytes that are not valid UTF-8 are pre-tokenized as characters of their own
 * that are neither letters, numbers nor spaces (what Python does with the
 * lone surrogates of errors='surrogateescape'); their bytes are encoded like
 * any other, so every byte string round-trips through token bytes.
 *
 * Vocabulary (vocab.json, merges.txt) loading is strict: any malformation is
 * MCRT_E_DATA with a message naming the file, the line or token and what was
 * expected; a file that cannot be read is MCRT_E_IO.
 *
 * Threads: a g2b_vocab is immutable after loading and may be shared by any
 * number of threads; a g2b_encoder (its cache and scratch memory) is used by
 * one thread at a time.
 */
#ifndef MCRT_PLUGIN_GPT2_BPE_H
#define MCRT_PLUGIN_GPT2_BPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mcrt/status.h" /* mcrt_status */

/* Hard limits that keep bad files from exhausting memory. */
#define G2B_MAX_FILE_BYTES (256u << 20) /* vocab.json, merges.txt: 256 MiB each */
#define G2B_MAX_TOKENS (1 << 24)        /* 16M vocabulary entries */

/* GPT-2's end-of-document token. */
#define G2B_EOD_TEXT "<|endoftext|>"

typedef struct g2b_vocab g2b_vocab;
typedef struct g2b_encoder g2b_encoder;

/* Load vocab.json and merges.txt from files. On failure *out is untouched
 * and err[0..err_size) holds one line naming the file and the problem.
 * MCRT_E_IO: a file is missing, unreadable, a folder, or too large;
 * MCRT_E_DATA: a file is malformed; MCRT_E_NOMEM. */
mcrt_status g2b_vocab_load_files(const char *vocab_path, const char *merges_path,
                                 g2b_vocab **out, char *err, size_t err_size);

/* The same from memory; vocab_name / merges_name name the inputs in messages. */
mcrt_status g2b_vocab_load_buffers(const char *vocab_json, size_t vocab_len,
                                   const char *vocab_name, const char *merges, size_t merges_len,
                                   const char *merges_name, g2b_vocab **out, char *err,
                                   size_t err_size);

void g2b_vocab_free(g2b_vocab *v);

int32_t g2b_vocab_size(const g2b_vocab *v);  /* entries of vocab.json */
int32_t g2b_vocab_eod(const g2b_vocab *v);   /* id of <|endoftext|>, or -1 */
size_t g2b_vocab_merges(const g2b_vocab *v); /* number of merges */

/* The raw bytes of token `id` (0 <= id < size); *len set. Never NULL. */
const uint8_t *g2b_token(const g2b_vocab *v, int32_t id, size_t *len);

/* An encoder over `v` (borrowed; must outlive the encoder). cache_size: the
 * most words kept in the merge cache (0 = no cache). parse_special: encode
 * "<|endoftext|>" in the text as the eod id (when the vocabulary has it)
 * instead of as plain text. NULL when out of memory. */
g2b_encoder *g2b_encoder_create(const g2b_vocab *v, size_t cache_size, bool parse_special);
void g2b_encoder_free(g2b_encoder *e);

/* Encode text[0..len) (any bytes). Ids are written to ids[0..cap) while they
 * fit; *out_n is the total number of ids. Returns MCRT_OK (also when cap was
 * too small: the caller compares *out_n with cap) or MCRT_E_NOMEM. */
mcrt_status g2b_encode(g2b_encoder *e, const char *text, size_t len, int32_t *ids, size_t cap,
                       size_t *out_n);

/* Testing: send every word of 2 bytes or more through the long-word path
 * (and so past the cache), which must give the same ids as the short-word
 * loop. The fuzz target compares the two. */
void g2b_encoder_long_path_only(g2b_encoder *e, bool on);

/* The raw bytes of ids[0..n) (all valid ids) into buf[0..cap) while they fit;
 * returns the total length. */
size_t g2b_decode_raw(const g2b_vocab *v, const int32_t *ids, size_t n, char *buf, size_t cap);

#endif /* MCRT_PLUGIN_GPT2_BPE_H */
