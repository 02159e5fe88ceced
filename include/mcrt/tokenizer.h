/*
 * mcrt/tokenizer.h: the tokenizer interface ("mcrt.tokenizer/1"): text <-> ids.
 *
 * Text is bytes (normally UTF-8). Buffers are caller-owned; a call that finds
 * its output buffer too small returns MCRT_E_RANGE and writes the size it
 * needs to *out_len / *out_n, so callers can retry with a larger buffer.
 */
#ifndef MCRT_TOKENIZER_H
#define MCRT_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "mcrt/config.h" /* mcrt_config */
#include "mcrt/plugin.h" /* mcrt_host, mcrt_status */

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mcrt_tokenizer_info {
    uint32_t struct_size;
    int32_t vocab_size;   /* number of ids; valid ids are [0, vocab_size) */
    int32_t eod;          /* end-of-document id, or -1 */
    int32_t bos;          /* beginning-of-sequence id, or -1 when there is none */
    int32_t pad;          /* padding id, or -1 */
    int32_t reserved;     /* zero */
} mcrt_tokenizer_info;

typedef struct mcrt_tokenizer_iface {
    uint32_t struct_size;

    /* [control] Load the tokenizer (vocabulary files named in cfg). On
     * success *out_self is plugin-owned until destroy. */
    mcrt_status (*create)(const mcrt_host *host, const mcrt_config *cfg, void **out_self);

    /* [control] Free the instance. */
    void (*destroy)(void *self);

    /* [any-thread] Fill `out` (caller-owned) up to out->struct_size. */
    mcrt_status (*info)(void *self, mcrt_tokenizer_info *out);

    /* [instance] Encode text[0..len) into ids[0..cap); *out_n = ids needed.
     * No BOS is added here (the controller decides). */
    mcrt_status (*encode)(void *self, const char *text, size_t len, int32_t *ids, size_t cap,
                          size_t *out_n);

    /* [instance] Decode ids into buf[0..cap) as text; *out_len = bytes needed.
     * Invalid UTF-8 becomes U+FFFD. An id outside [0, vocab_size) is
     * MCRT_E_INVAL with a logged message naming it. No NUL is written. */
    mcrt_status (*decode)(void *self, const int32_t *ids, size_t n, char *buf, size_t cap,
                          size_t *out_len);

    /* [instance] The raw bytes of one token (not UTF-8 repaired), for
     * streaming decoders and per-token segments. Same buffer rules. */
    mcrt_status (*token_bytes)(void *self, int32_t id, char *buf, size_t cap, size_t *out_len);
} mcrt_tokenizer_iface;

#ifdef __cplusplus
}
#endif

#endif /* MCRT_TOKENIZER_H */
