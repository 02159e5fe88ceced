/*
 * core/checkpoint/zip.h: a strict reader for the ZIP archives torch.save
 * writes (the Megatron `torch` format, and each chunk of a torch_dist
 * .distcp file).
 *
 * The archive is a memory range the caller owns (an mmap of the file, or a
 * piece of one: a torch_dist chunk is a whole archive embedded at an offset
 * of its .distcp file). Every offset inside the archive counts from the
 * start of that range, as torch writes them. Nothing is copied: an entry
 * points at its bytes inside the range, valid while the range is.
 *
 * What torch writes (1.13 and 2.x, PyTorchStreamWriter over miniz): stored
 * (method 0) entries under one top-level folder (`<prefix>/data.pkl`,
 * `<prefix>/data/<key>`, `<prefix>/version`, newer torch also
 * `<prefix>/byteorder` and `<prefix>/.data/serialization_id`); local headers
 * with general-purpose flag bit 3 (sizes and CRC zero there, in a data
 * descriptor after the data) and an "FB" extra field padding the data to a
 * 64-byte boundary; a zip64 end-of-central-directory record and locator
 * always, zip64 extra fields when a size or offset needs them.
 *
 * zip_open checks, in this order, and refuses with one message naming the
 * label and (from step 4) the entry:
 *   1. the end-of-central-directory record (EOCD): searched backwards over
 *      the last 22 + 65535 bytes; its comment must end exactly at the end of
 *      the range. Disk numbers must be 0 (no multi-disk archives).
 *   2. a zip64 locator right before the EOCD, when present: the zip64 EOCD
 *      record it points at lies before the locator; the classic EOCD's
 *      counts and offsets equal the zip64 ones or are the 0xFFFF/0xFFFFFFFF
 *      placeholders.
 *   3. the central directory lies inside the range, before the (zip64)
 *      EOCD; its entry count is at most ZIP_MAX_ENTRIES, and its entries
 *      fill exactly its stated size.
 *   4. each central directory entry: a name of 1..ZIP_MAX_NAME bytes without
 *      NUL, not seen before; not encrypted (MCRT_E_UNSUPPORTED); stored
 *      (a deflated or otherwise compressed entry is MCRT_E_UNSUPPORTED,
 *      naming the entry and the method); compressed size == uncompressed
 *      size; size at most ZIP_MAX_ENTRY_SIZE; zip64 extra fields present
 *      and complete wherever a field holds the 0xFFFFFFFF placeholder.
 *   5. its local header: inside the range before the central directory,
 *      with the right signature, the same compression method and the same
 *      name bytes; its CRC and sizes equal the central directory's (or,
 *      with flag bit 3, are zero); the data [offset, offset + size) ends
 *      before the central directory; with flag bit 3, a data descriptor
 *      (optional signature, 32- or 64-bit sizes) follows the data and agrees
 *      with the central directory.
 *   6. no two entries (local header, data, descriptor) share a byte.
 * CRC-32 is not computed at open (a checkpoint is gigabytes); zip_verify
 * checks one entry, so a loader verifies what it reads.
 *
 * Errors: MCRT_E_DATA (corrupt or truncated), MCRT_E_UNSUPPORTED (valid ZIP
 * features torch never writes), MCRT_E_NOMEM, MCRT_E_NOTFOUND (lookups).
 * Every message is one line: "<label>: [entry '<name>': ]<problem>".
 * An open archive is immutable; every function taking a const zip_archive *
 * may run concurrently.
 */
#ifndef MCRT_CORE_CHECKPOINT_ZIP_H
#define MCRT_CORE_CHECKPOINT_ZIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "checkpoint/checkpoint.h" /* ckpt_err */

#define ZIP_MAX_ENTRY_SIZE (UINT64_C(1) << 40) /* one entry's bytes (1 TiB) */
#define ZIP_MAX_NAME 4096u                     /* one entry name's bytes */
#define ZIP_MAX_ENTRIES (1u << 22)             /* entries in one archive */

typedef struct zip_entry {
    const char *name;          /* NUL-terminated (no NUL inside), owned by the archive */
    size_t name_len;
    uint64_t header_offset;    /* of the local header, from the start of the archive */
    uint64_t offset;           /* of the data */
    uint64_t size;             /* bytes of data */
    uint32_t crc32;            /* as the central directory records it */
    const unsigned char *data; /* start of the range + offset */
} zip_entry;

typedef struct zip_archive zip_archive;

/* Open the archive in data[0..len) (borrowed for the archive's lifetime).
 * `label` names it in messages (copied; e.g. the file path, or
 * "x.distcp [4096, +812345)"). MCRT_OK and *out, or an error (and *out
 * NULL). */
mcrt_status zip_open(const void *data, size_t len, const char *label, zip_archive **out,
                     ckpt_err *err);
void zip_close(zip_archive *z);

const char *zip_label(const zip_archive *z);

/* Entries in central directory order; NULL when i >= count. */
size_t zip_count(const zip_archive *z);
const zip_entry *zip_at(const zip_archive *z, size_t i);

/* By exact name (binary search); NULL if absent. */
const zip_entry *zip_find(const zip_archive *z, const char *name);

/* zip_find, or MCRT_E_NOTFOUND: "<label>: no entry '<name>' in the archive". */
mcrt_status zip_lookup(const zip_archive *z, const char *name, const zip_entry **out,
                       ckpt_err *err);

/* The folder torch.save puts every record in: the first entry's name up to
 * its first '/' (torch's reader does the same). *prefix points into that
 * name, not NUL-terminated. MCRT_E_DATA when the first entry is in no folder
 * or the archive is empty. */
mcrt_status zip_torch_prefix(const zip_archive *z, const char **prefix, size_t *len,
                             ckpt_err *err);

/* The entry "<prefix>/<record>" ("data.pkl", "data/3", "version"), or
 * MCRT_E_NOTFOUND naming it. */
mcrt_status zip_torch_record(const zip_archive *z, const char *record, const zip_entry **out,
                             ckpt_err *err);

/* Compute the CRC-32 of e's data and compare it with the recorded one:
 * MCRT_OK or MCRT_E_DATA "<label>: entry '<name>': CRC-32 mismatch (...)". */
mcrt_status zip_verify(const zip_archive *z, const zip_entry *e, ckpt_err *err);

/* CRC-32 (ISO-HDLC, the ZIP one) of data[0..n), continuing from crc (start
 * with 0). */
uint32_t zip_crc32(uint32_t crc, const void *data, size_t n);

#endif /* MCRT_CORE_CHECKPOINT_ZIP_H */
