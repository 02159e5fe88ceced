/* core/runtime/kvalloc.c: see kvalloc.h. */
#include "runtime/kvalloc.h"

#include <stdlib.h>

struct kv_alloc {
    uint32_t n;        /* blocks in the pool */
    uint32_t n_free;   /* entries of free_ids in use */
    int32_t *free_ids; /* [n] stack of free ids */
    uint8_t *used;     /* [n] 1 = handed out */
};

kv_alloc *kv_alloc_create(uint32_t n_blocks)
{
    kv_alloc *a = calloc(1, sizeof *a);
    if (a == NULL)
        return NULL;
    a->n = n_blocks;
    a->free_ids = malloc((n_blocks ? n_blocks : 1) * sizeof *a->free_ids);
    a->used = calloc(n_blocks ? n_blocks : 1, 1);
    if (a->free_ids == NULL || a->used == NULL) {
        kv_alloc_destroy(a);
        return NULL;
    }
    /* Stack order so that block 0 is handed out first. */
    for (uint32_t i = 0; i < n_blocks; i++)
        a->free_ids[i] = (int32_t)(n_blocks - 1 - i);
    a->n_free = n_blocks;
    return a;
}

void kv_alloc_destroy(kv_alloc *a)
{
    if (a == NULL)
        return;
    free(a->free_ids);
    free(a->used);
    free(a);
}

mcrt_status kv_alloc_take(kv_alloc *a, uint32_t n, int32_t *out)
{
    if (n > a->n_free)
        return MCRT_E_NOMEM;
    for (uint32_t i = 0; i < n; i++) {
        int32_t id = a->free_ids[--a->n_free];
        a->used[id] = 1;
        out[i] = id;
    }
    return MCRT_OK;
}

uint32_t kv_alloc_give(kv_alloc *a, const int32_t *ids, uint32_t n)
{
    uint32_t bad = 0;
    for (uint32_t i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || (uint32_t)id >= a->n || !a->used[id]) {
            bad++;
            continue;
        }
        a->used[id] = 0;
        a->free_ids[a->n_free++] = id;
    }
    return bad;
}

uint32_t kv_alloc_free_count(const kv_alloc *a) { return a->n_free; }
uint32_t kv_alloc_total(const kv_alloc *a) { return a->n; }
