/*
 * core/runtime/kvalloc.h: the KV block allocator. Engines and controllers get
 * block ids through the pipeline services; the ids index every rank's pool
 * (each rank holds its heads/layers of the same block). All-or-nothing
 * allocation, LIFO reuse, double frees and foreign ids detected and logged.
 */
#ifndef MCRT_CORE_KVALLOC_H
#define MCRT_CORE_KVALLOC_H

#include <stdint.h>

#include "mcrt/status.h"

typedef struct kv_alloc kv_alloc;

kv_alloc *kv_alloc_create(uint32_t n_blocks);
void kv_alloc_destroy(kv_alloc *a);
/* n ids into out[n], or MCRT_E_NOMEM and nothing given. */
mcrt_status kv_alloc_take(kv_alloc *a, uint32_t n, int32_t *out);
/* Returns the number of ids that were not allocated (ignored). */
uint32_t kv_alloc_give(kv_alloc *a, const int32_t *ids, uint32_t n);
uint32_t kv_alloc_free_count(const kv_alloc *a);
uint32_t kv_alloc_total(const kv_alloc *a);

#endif
