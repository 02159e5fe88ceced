/*
 * mcrt-model-gpt: Megatron-Core's GPT (GPTInferenceWrapper over GPTModel) on
 * the CPU, one instance per rank. See README.md for the keys and gpt.h for
 * the files.
 *
 *   model:
 *     name: gpt
 *     load: path/to/checkpoint     # safetensors file or folder (MCore or HF GPT-2 names)
 *     hidden_size: 768             # Megatron argument names; or from config.json
 *     ...
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "gpt.h"
#include "kernels/cpu/cpu.h"

void gpt_log(const gpt_model *m, int32_t level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    m->host->logv(m->host, level, fmt, ap);
    va_end(ap);
}

void *gpt_alloc(const gpt_model *m, size_t bytes)
{
    return m->host->alloc(m->host, bytes ? bytes : 1, 64);
}

void gpt_free(const gpt_model *m, void *p)
{
    if (p != NULL)
        m->host->free(m->host, p);
}

static void gpt_destroy(void *vself)
{
    gpt_model *m = vself;
    if (m == NULL)
        return;
    gpt_free_weights(m);
    if (m->layers_kv_base != NULL)
        munmap(m->layers_kv_base, m->kv_bytes);
    gpt_free(m, m->scratch);
    gpt_free(m, m->iscratch);
    mk_cpu_ctx_destroy(m->ctx);
    if (m->ck != NULL)
        m->ck_svc->close(m->host, m->ck);
    m->host->free(m->host, m);
}

static void human_bytes(char *buf, size_t n, double b)
{
    if (b >= 1073741824.0)
        snprintf(buf, n, "%.2f GiB", b / 1073741824.0);
    else if (b >= 1048576.0)
        snprintf(buf, n, "%.1f MiB", b / 1048576.0);
    else
        snprintf(buf, n, "%.0f KiB", b / 1024.0);
}

/* The paged KV pool: K and V of every layer of this stage, [NB, NKV, BS, HS]
 * f32 each, in one anonymous mapping (zero pages, committed as written). */
static mcrt_status make_kv_pool(gpt_model *m)
{
    const gpt_config *c = &m->cfg;
    int nkv = c->num_query_groups / m->rank.tp_size;
    size_t per_layer_block = (size_t)nkv * (size_t)c->kv_block_size * (size_t)c->kv_channels *
                             sizeof(float);
    size_t per_block = 2 * per_layer_block * (size_t)(m->n_layers > 0 ? m->n_layers : 1);
    int64_t blocks_per_seq = (c->max_sequence_length + c->kv_block_size - 1) / c->kv_block_size;
    int64_t nb;
    char a[32], bsz[32];
    if (c->kv_num_blocks > 0) {
        nb = c->kv_num_blocks;
    } else if (c->kv_cache_memory > 0) {
        nb = (int64_t)(c->kv_cache_memory / per_block);
        if (nb < 1) {
            human_bytes(a, sizeof a, (double)c->kv_cache_memory);
            human_bytes(bsz, sizeof bsz, (double)per_block);
            gpt_log(m, MCRT_LOG_ERROR, "model.kv_cache_memory = %s holds no KV block: one block "
                    "of %d tokens needs %s here; raise it or lower kv_block_size", a,
                    c->kv_block_size, bsz);
            return MCRT_E_CONFIG;
        }
    } else {
        nb = 16 * blocks_per_seq;
        if ((uint64_t)nb * per_block > (1ull << 30))
            nb = (int64_t)((1ull << 30) / per_block);
        if (nb < 1)
            nb = 1;
    }
    if (nb > INT32_MAX)
        nb = INT32_MAX;
    if ((uint64_t)nb > SIZE_MAX / per_block) {
        gpt_log(m, MCRT_LOG_ERROR, "model: a KV pool of %lld blocks does not fit in memory",
                (long long)nb);
        return MCRT_E_CONFIG;
    }
    size_t bytes = (size_t)nb * per_block;
    void *base = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                      -1, 0);
    if (base == MAP_FAILED) {
        human_bytes(a, sizeof a, (double)bytes);
        gpt_log(m, MCRT_LOG_ERROR, "model: cannot map a KV pool of %s (%lld blocks); lower "
                "kv_cache_memory", a, (long long)nb);
        return MCRT_E_NOMEM;
    }
    m->layers_kv_base = base;
    m->kv_bytes = bytes;
    m->kv_num_blocks = nb;
    size_t layer_bytes = (size_t)nb * per_layer_block;
    for (int l = 0; l < m->n_layers; l++) {
        m->layers[l].k_cache = (float *)((char *)base + (2 * (size_t)l) * layer_bytes);
        m->layers[l].v_cache = (float *)((char *)base + (2 * (size_t)l + 1) * layer_bytes);
    }
    human_bytes(a, sizeof a, (double)bytes);
    if (nb < blocks_per_seq)
        gpt_log(m, MCRT_LOG_WARN, "the KV pool (%s, %lld blocks of %d tokens) holds fewer "
                "positions than one sequence of max_sequence_length %d", a, (long long)nb,
                c->kv_block_size, c->max_sequence_length);
    else
        gpt_log(m, MCRT_LOG_DEBUG, "KV pool: %s, %lld blocks of %d tokens", a, (long long)nb,
                c->kv_block_size);
    return MCRT_OK;
}

static mcrt_status gpt_create(const mcrt_host *host, const mcrt_config *cfg,
                              const mcrt_rank_info *rank, void **out_self)
{
    if (host == NULL || out_self == NULL || rank == NULL || !MCRT_HAS(rank, threads))
        return MCRT_E_INVAL;
    gpt_model *m = host->alloc(host, sizeof *m, 64);
    if (m == NULL)
        return MCRT_E_NOMEM;
    memset(m, 0, sizeof *m);
    m->host = host;
    m->rank = *rank;
    mcrt_status st = MCRT_OK;
    const char *load = NULL;
    m->ck_svc = host->get_ext(host, MCRT_HOST_EXT_CHECKPOINT);
    if (m->ck_svc == NULL || !MCRT_HAS(m->ck_svc, view)) {
        gpt_log(m, MCRT_LOG_ERROR, "the host has no checkpoint services (%s)",
                MCRT_HOST_EXT_CHECKPOINT);
        st = MCRT_E_UNSUPPORTED;
        goto fail;
    }
    if (host->config_string(host, cfg, "load", &load) != MCRT_OK || load == NULL ||
        load[0] == '\0') {
        gpt_log(m, MCRT_LOG_ERROR, "model.load is required: the checkpoint (a .safetensors "
                "file, or a folder with model.safetensors or model.safetensors.index.json)");
        st = MCRT_E_CONFIG;
        goto fail;
    }
    bool use_args = false;
    int64_t step = -1;
    if (host->config_bool(host, cfg, "use_checkpoint_args", &use_args) != MCRT_OK)
        use_args = false;
    m->use_ckpt_args = use_args;
    if (host->config_int(host, cfg, "ckpt_step", &step) != MCRT_OK)
        step = -1;
    if (MCRT_HAS(m->ck_svc, open_ex) && m->ck_svc->open_ex != NULL) {
        mcrt_checkpoint_open_options o;
        memset(&o, 0, sizeof o);
        o.struct_size = (uint32_t)sizeof o;
        o.has_step = step >= 0;
        o.step = step;
        st = m->ck_svc->open_ex(host, load, &o, &m->ck);
    } else if (step >= 0) {
        gpt_log(m, MCRT_LOG_ERROR, "model.ckpt_step: this host cannot open a chosen iteration "
                "(its checkpoint services lack open_ex); upgrade mcrt");
        st = MCRT_E_UNSUPPORTED;
    } else {
        st = m->ck_svc->open(host, load, &m->ck);
    }
    if (st != MCRT_OK)
        goto fail;
    if ((st = gpt_config_read(m, cfg)) != MCRT_OK)
        goto fail;
    m->cfg.load = load;
    const gpt_config *c = &m->cfg;

    /* the rank's part */
    int tp = rank->tp_size, pp = rank->pp_size;
    if (tp > 1) {
        gpt_log(m, MCRT_LOG_ERROR, "tensor_model_parallel_size %d: the GPT plugin's "
                "tensor-parallel all-reduce needs the rank communicators, which this build does "
                "not lend yet; use tensor_model_parallel_size 1 (pipeline parallelism works)", tp);
        st = MCRT_E_UNSUPPORTED;
        goto fail;
    }
    if (c->num_layers % pp != 0) {
        gpt_log(m, MCRT_LOG_ERROR, "pipeline_model_parallel_size %d does not divide num_layers "
                "%d", pp, c->num_layers);
        st = MCRT_E_CONFIG;
        goto fail;
    }
    m->n_layers = c->num_layers / pp;
    m->first_layer = rank->pp_rank * m->n_layers;
    m->first_stage = rank->pp_rank == 0;
    m->last_stage = rank->pp_rank == pp - 1;

    m->ops = c->reference_kernels ? mk_ops_cpu_reference() : mk_ops_cpu();
    if ((st = mk_cpu_ctx_create(c->reference_kernels ? 1 : rank->threads, 0, &m->ctx)) !=
        MCRT_OK) {
        gpt_log(m, MCRT_LOG_ERROR, "cannot start %d kernel threads", rank->threads);
        goto fail;
    }
    if ((st = gpt_load_weights(m)) != MCRT_OK || (st = make_kv_pool(m)) != MCRT_OK)
        goto fail;
    char wb[32], kb[32], cb[32], mapped[64];
    human_bytes(wb, sizeof wb, (double)m->weight_bytes);
    human_bytes(kb, sizeof kb, (double)m->kv_bytes);
    size_t copied = m->weight_bytes - m->vector_bytes - m->weight_bytes_mapped;
    human_bytes(cb, sizeof cb, (double)copied);
    if (copied == 0)
        snprintf(mapped, sizeof mapped, "matrices all mapped from the file");
    else
        snprintf(mapped, sizeof mapped, "%s of matrices copied", cb);
    gpt_log(m, MCRT_LOG_INFO, "GPT %d layers (this stage %d..%d), hidden %d, heads %d/%d, "
            "vocab %d/%d: %s of weights (%s), KV pool %s, %s kernels (%s), %d thread%s",
            c->num_layers, m->first_layer, m->first_layer + m->n_layers - 1, c->hidden_size,
            c->num_attention_heads, c->num_query_groups, c->vocab_size, c->padded_vocab_size, wb,
            mapped, kb, c->reference_kernels ? "reference" : "fast", mk_cpu_ctx_isa_name(m->ctx),
            mk_cpu_ctx_threads(m->ctx), mk_cpu_ctx_threads(m->ctx) == 1 ? "" : "s");
    *out_self = m;
    return MCRT_OK;
fail:
    gpt_destroy(m);
    return st;
}

static mcrt_status gpt_info(void *vself, mcrt_model_info *out)
{
    gpt_model *m = vself;
    if (m == NULL || out == NULL)
        return MCRT_E_INVAL;
    const gpt_config *c = &m->cfg;
    if (MCRT_HAS(out, vocab_size)) out->vocab_size = c->vocab_size;
    if (MCRT_HAS(out, padded_vocab_size)) out->padded_vocab_size = c->padded_vocab_size;
    if (MCRT_HAS(out, max_sequence_length)) out->max_sequence_length = c->max_sequence_length;
    if (MCRT_HAS(out, hidden_size)) out->hidden_size = c->hidden_size;
    if (MCRT_HAS(out, num_layers)) out->num_layers = m->n_layers;
    if (MCRT_HAS(out, kv_block_size)) out->kv_block_size = c->kv_block_size;
    if (MCRT_HAS(out, kv_num_blocks)) out->kv_num_blocks = (int32_t)m->kv_num_blocks;
    if (MCRT_HAS(out, activation_dtype)) out->activation_dtype = MCRT_DTYPE_F32;
    return MCRT_OK;
}

static mcrt_status gpt_step(void *vself, const mcrt_step_batch *batch, const mcrt_step_io *io)
{
    gpt_model *m = vself;
    if (m == NULL)
        return MCRT_E_INVAL;
    mcrt_status st = gpt_validate_step(m, batch, io);
    if (st != MCRT_OK)
        return st;
    return gpt_forward(m, batch, io);
}

static const mcrt_model_iface gpt_iface = {
    (uint32_t)sizeof(mcrt_model_iface),
    gpt_create,
    gpt_destroy,
    gpt_info,
    gpt_step,
};

static const void *gpt_get_iface(const char *iface_id)
{
    if (iface_id != NULL && strcmp(iface_id, MCRT_IFACE_MODEL) == 0)
        return &gpt_iface;
    return NULL;
}

/* [loader] The CPU GPT runs anywhere: 10 (a device-specific plugin may score
 * higher for its device). */
static int32_t gpt_probe(const mcrt_host *host, const mcrt_config *cfg, char *why,
                         size_t why_size)
{
    (void)host, (void)cfg, (void)why, (void)why_size;
    return 10;
}

MCRT_PLUGIN_DEFINE(MCRT_KIND_MODEL, "gpt", "1.0.0",
                   "Megatron-Core GPT on the CPU: MCore or HF GPT-2 safetensors, paged KV cache",
                   gpt_config_keys, gpt_probe, NULL, NULL, gpt_get_iface);
