/* core/runtime/model_group.c: see model_group.h. */
#include "runtime/model_group.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/host.h"

enum { CMD_NONE, CMD_CREATE, CMD_STEP, CMD_DESTROY, CMD_EXIT };

typedef struct rank_worker {
    struct model_group *g;
    mcrt_rank_info info;
    host_ctx *hctx;
    void *self;               /* the plugin's instance, NULL until created */
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int cmd;                  /* posted command, CMD_NONE when idle */
    mcrt_status result;
    /* CMD_STEP arguments */
    const mcrt_step_batch *batch;
    mcrt_step_io io;
} rank_worker;

struct model_group {
    const log_sink *log;
    plugin_entry *pe;
    const mcrt_model_iface *iface;
    const mcrt_config *cfg;
    int tp, pp, world;
    rank_worker *ranks;       /* [world] */
    mcrt_model_info info;
    float *hidden[2];         /* ping-pong buffers [T, H] between stages (fp32) */
    size_t hidden_cap;        /* elements per buffer */
};

static void rank_run(rank_worker *w, int cmd)
{
    model_group *g = w->g;
    switch (cmd) {
    case CMD_CREATE:
        w->result = g->iface->create(&w->hctx->host, g->cfg, &w->info, &w->self);
        if (w->result == MCRT_OK && w->self == NULL)
            w->result = MCRT_E_INTERNAL;
        break;
    case CMD_STEP: w->result = g->iface->step(w->self, w->batch, &w->io); break;
    case CMD_DESTROY:
        if (w->self != NULL)
            g->iface->destroy(w->self);
        w->self = NULL;
        w->result = MCRT_OK;
        break;
    default: w->result = MCRT_E_INTERNAL; break;
    }
}

static void *rank_main(void *arg)
{
    rank_worker *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->cmd == CMD_NONE)
            pthread_cond_wait(&w->cv, &w->mu);
        int cmd = w->cmd;
        if (cmd == CMD_EXIT)
            break;
        pthread_mutex_unlock(&w->mu);
        rank_run(w, cmd);
        pthread_mutex_lock(&w->mu);
        w->cmd = CMD_NONE;
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static void rank_post(rank_worker *w, int cmd)
{
    pthread_mutex_lock(&w->mu);
    w->cmd = cmd;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

static mcrt_status rank_wait(rank_worker *w)
{
    pthread_mutex_lock(&w->mu);
    while (w->cmd != CMD_NONE)
        pthread_cond_wait(&w->cv, &w->mu);
    mcrt_status s = w->result;
    pthread_mutex_unlock(&w->mu);
    return s;
}

/* Run cmd on ranks [first, first+n) at once; the first failure wins. */
static mcrt_status run_on(model_group *g, int first, int n, int cmd)
{
    for (int r = first; r < first + n; r++)
        rank_post(&g->ranks[r], cmd);
    mcrt_status st = MCRT_OK;
    for (int r = first; r < first + n; r++) {
        mcrt_status s = rank_wait(&g->ranks[r]);
        if (s != MCRT_OK && st == MCRT_OK)
            st = s;
    }
    return st;
}

mcrt_status model_group_create(struct pipeline *pipe, const log_sink *log, plugin_entry *pe,
                               const mcrt_config *cfg, int tp, int pp, int threads,
                               model_group **out)
{
    model_group *g = calloc(1, sizeof *g);
    if (g == NULL)
        return MCRT_E_NOMEM;
    g->log = log;
    g->pe = pe;
    g->iface = pe->iface;
    g->cfg = cfg;
    g->tp = tp;
    g->pp = pp;
    g->world = tp * pp;
    g->ranks = calloc((size_t)g->world, sizeof *g->ranks);
    if (g->ranks == NULL) {
        free(g);
        return MCRT_E_NOMEM;
    }
    mcrt_status st = MCRT_OK;
    for (int r = 0; r < g->world; r++) {
        rank_worker *w = &g->ranks[r];
        w->g = g;
        w->info.struct_size = (uint32_t)sizeof w->info;
        w->info.world_size = g->world;
        w->info.world_rank = r;
        w->info.tp_size = tp;
        w->info.tp_rank = r % tp;
        w->info.pp_size = pp;
        w->info.pp_rank = r / tp;
        w->info.device = MCRT_DEVICE_CPU;
        w->info.device_index = 0;
        w->info.threads = threads > 0 ? threads : 1;
        char tag[96];
        if (g->world > 1)
            snprintf(tag, sizeof tag, "model/%s r%d", pe->name, r);
        else
            snprintf(tag, sizeof tag, "model/%s", pe->name);
        w->hctx = host_ctx_create(log, tag, pipe);
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->cv, NULL);
        if (w->hctx == NULL) {
            st = MCRT_E_NOMEM;
            break;
        }
        if (pthread_create(&w->thread, NULL, rank_main, w) != 0) {
            log_msg(log, MCRT_LOG_ERROR, "runtime", "cannot start the thread of rank %d", r);
            st = MCRT_E_NOMEM;
            break;
        }
        w->started = true;
    }
    if (st == MCRT_OK) {
        /* Create every instance (each on its own thread, all at once: loading
         * shards in parallel). Count instances before, so a plugin whose
         * create failed half-way is never unloaded under a live instance. */
        st = run_on(g, 0, g->world, CMD_CREATE);
        for (int r = 0; r < g->world; r++)
            if (g->ranks[r].self != NULL)
                pe->instances++;
    }
    if (st == MCRT_OK) {
        for (int r = 0; r < g->world && st == MCRT_OK; r++) {
            mcrt_model_info mi;
            memset(&mi, 0, sizeof mi);
            mi.struct_size = (uint32_t)sizeof mi;
            st = g->iface->info(g->ranks[r].self, &mi);
            if (st != MCRT_OK)
                break;
            if (mi.vocab_size <= 0 || mi.padded_vocab_size < mi.vocab_size ||
                mi.max_sequence_length <= 0 || mi.kv_block_size <= 0 || mi.kv_num_blocks < 0) {
                log_msg(log, MCRT_LOG_ERROR, g->ranks[r].hctx->tag,
                        "model info is inconsistent (vocab_size %d, padded_vocab_size %d, "
                        "max_sequence_length %d, kv_block_size %d, kv_num_blocks %d)",
                        mi.vocab_size, mi.padded_vocab_size, mi.max_sequence_length,
                        mi.kv_block_size, mi.kv_num_blocks);
                st = MCRT_E_INTERNAL;
                break;
            }
            if (r == 0) {
                g->info = mi;
            } else if (mi.kv_num_blocks < g->info.kv_num_blocks) {
                g->info.kv_num_blocks = mi.kv_num_blocks;
            }
        }
    }
    if (st != MCRT_OK) {
        model_group_destroy(g);
        return st;
    }
    *out = g;
    return MCRT_OK;
}

void model_group_destroy(model_group *g)
{
    if (g == NULL)
        return;
    for (int r = 0; r < g->world; r++) {
        rank_worker *w = &g->ranks[r];
        if (!w->started)
            continue;
        if (w->self != NULL) {
            rank_post(w, CMD_DESTROY);
            rank_wait(w);
            g->pe->instances--;
        }
        rank_post(w, CMD_EXIT);
        pthread_join(w->thread, NULL);
    }
    for (int r = 0; r < g->world; r++) {
        pthread_mutex_destroy(&g->ranks[r].mu);
        pthread_cond_destroy(&g->ranks[r].cv);
        host_ctx_destroy(g->ranks[r].hctx);
    }
    free(g->ranks);
    free(g->hidden[0]);
    free(g->hidden[1]);
    free(g);
}

const mcrt_model_info *model_group_info(const model_group *g) { return &g->info; }

static void tensor_2d(mcrt_tensor *t, void *data, int32_t dtype, int64_t rows, int64_t cols)
{
    memset(t, 0, sizeof *t);
    t->data = data;
    t->dtype = dtype;
    t->device = MCRT_DEVICE_CPU;
    t->ndim = 2;
    t->shape[0] = rows;
    t->shape[1] = cols;
    t->shape[2] = t->shape[3] = 1;
    t->stride[0] = cols;
    t->stride[1] = 1;
}

mcrt_status model_group_step(model_group *g, const mcrt_step_batch *batch, float *logits)
{
    int64_t T = batch->n_tokens, H = g->info.hidden_size;
    mcrt_tensor hin, hout, lg;
    if (g->pp > 1) {
        size_t need = (size_t)T * (size_t)(H > 0 ? H : 1);
        if (need > g->hidden_cap) {
            for (int i = 0; i < 2; i++) {
                free(g->hidden[i]);
                g->hidden[i] = malloc(need * sizeof(float));
            }
            if (g->hidden[0] == NULL || g->hidden[1] == NULL) {
                g->hidden_cap = 0;
                return MCRT_E_NOMEM;
            }
            g->hidden_cap = need;
        }
    }
    tensor_2d(&lg, logits, MCRT_DTYPE_F32, batch->n_logits, g->info.padded_vocab_size);
    for (int s = 0; s < g->pp; s++) {
        bool first = s == 0, last = s == g->pp - 1;
        if (!first)
            tensor_2d(&hin, g->hidden[(s - 1) & 1], MCRT_DTYPE_F32, T, H);
        if (!last)
            tensor_2d(&hout, g->hidden[s & 1], MCRT_DTYPE_F32, T, H);
        for (int t = 0; t < g->tp; t++) {
            rank_worker *w = &g->ranks[s * g->tp + t];
            w->batch = batch;
            w->io.struct_size = (uint32_t)sizeof w->io;
            w->io.hidden_in = first ? NULL : &hin;
            /* Only tp rank 0 hands results on; the others hold the same values. */
            w->io.hidden_out = (!last && t == 0) ? &hout : NULL;
            w->io.logits = (last && t == 0) ? &lg : NULL;
        }
        mcrt_status st = run_on(g, s * g->tp, g->tp, CMD_STEP);
        if (st != MCRT_OK)
            return st;
    }
    return MCRT_OK;
}
