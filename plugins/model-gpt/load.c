/*
 * plugins/model-gpt/load.c: the weights of one rank, from the checkpoint
 * services, onto one internal layout (gpt.h), once.
 *
 * Name schemes (reference §3.2, §3.8; docs/reference-models.md):
 *   MCore, Transformer-Engine spelling: the input norm fused into linear_qkv
 *     (self_attention.linear_qkv.layer_norm_weight), the MLP norm into
 *     linear_fc1 (mlp.linear_fc1.layer_norm_weight);
 *   MCore, local spelling: input_layernorm.weight, pre_mlp_layernorm.weight;
 *   HF GPT-2: transformer.h.N.{ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc,
 *     mlp.c_proj}, Conv1D weights stored [in, out] (transposed here) and
 *     c_attn's [Q | K | V] columns reordered to MCore's per-head [q; k; v] rows.
 * A tensor present in two spellings, a missing one, one of the wrong shape or
 * dtype, and one that belongs to no part of this config are errors naming
 * the checkpoint and the tensor. `_extra_state` entries, RoPE's saved
 * inv_freq and HF's causal-mask buffers are skipped.
 *
 * Memory: a matrix is a view of the mapped file when it needs no conversion,
 * rearrangement or non-contiguous slice (MCore names, dtype kept, aligned);
 * otherwise it is read (converted / sliced by the core) into host memory.
 * Norm weights and biases are always converted to f32 copies (they are tiny).
 *
 * Sharding (written for a rank; reference §3.4): a tensor-parallel rank holds
 * its query groups of QKV (contiguous rows, group-major), its rows of fc1
 * (SwiGLU: its rows of the gate half and of the up half), its columns of
 * proj and fc2, and its rows of the vocabulary. A pipeline stage holds its
 * layers; the first stage the embeddings, the last the final norm and the
 * output layer (the word embeddings again when tied).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpt.h"

#define NAME_MAX_LEN 256

typedef struct loader {
    gpt_model *m;
    const char *path;
    bool hf;                /* HF GPT-2 names */
    char hf_prefix[32];     /* "transformer." or "" */
    char **used;            /* names consumed */
    size_t n_used, cap_used;
    int tp, tp_rank;
} loader;

static mcrt_status ld_fail(loader *L, mcrt_status st, const char *fmt, ...) MCRT_PRINTF(3, 4);
static mcrt_status ld_fail(loader *L, mcrt_status st, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gpt_log(L->m, MCRT_LOG_ERROR, "checkpoint %s: %s", L->path, msg);
    return st;
}

static mcrt_status mark_used(loader *L, const char *name)
{
    if (L->n_used == L->cap_used) {
        size_t cap = L->cap_used ? 2 * L->cap_used : 64;
        char **p = realloc(L->used, cap * sizeof *p);
        if (p == NULL)
            return MCRT_E_NOMEM;
        L->used = p;
        L->cap_used = cap;
    }
    L->used[L->n_used] = strdup(name);
    if (L->used[L->n_used] == NULL)
        return MCRT_E_NOMEM;
    L->n_used++;
    return MCRT_OK;
}

static bool was_used(const loader *L, const char *name)
{
    for (size_t i = 0; i < L->n_used; i++)
        if (strcmp(L->used[i], name) == 0)
            return true;
    return false;
}

static void shape_str(char *buf, size_t n, const mcrt_tensor_info *ti)
{
    size_t o = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ti->ndim && o < n; i++)
        o += (size_t)snprintf(buf + o, n - o, "%s%lld", i ? ", " : "", (long long)ti->shape[i]);
    if (o < n)
        snprintf(buf + o, n - o, "]");
}

static const char *dtype_name(int32_t dt)
{
    switch (dt) {
    case MCRT_DTYPE_F32: return "F32";
    case MCRT_DTYPE_F16: return "F16";
    case MCRT_DTYPE_BF16: return "BF16";
    case MCRT_DTYPE_F64: return "F64";
    case MCRT_DTYPE_I8: return "I8";
    case MCRT_DTYPE_I16: return "I16";
    case MCRT_DTYPE_I32: return "I32";
    case MCRT_DTYPE_I64: return "I64";
    case MCRT_DTYPE_U8: return "U8";
    case MCRT_DTYPE_BOOL: return "BOOL";
    default: return "?";
    }
}

/* Find one of `alts` (NULL-terminated spellings of one tensor). found[0] = ""
 * when absent (an error when required). Two spellings at once are an error. */
static mcrt_status find_alt(loader *L, const char *const *alts, bool required, char *found,
                            mcrt_tensor_info *ti)
{
    const mcrt_checkpoint_services *cs = L->m->ck_svc;
    found[0] = '\0';
    for (int i = 0; alts[i] != NULL; i++) {
        mcrt_tensor_info t;
        memset(&t, 0, sizeof t);
        t.struct_size = (uint32_t)sizeof t;
        if (cs->find(L->m->host, L->m->ck, alts[i], &t) != MCRT_OK)
            continue;
        if (found[0] != '\0')
            return ld_fail(L, MCRT_E_DATA, "tensor '%s' is there twice, spelled '%s' and '%s' "
                           "(Transformer-Engine and local names); keep one", alts[i], found,
                           alts[i]);
        snprintf(found, NAME_MAX_LEN, "%s", alts[i]);
        *ti = t;
    }
    if (found[0] == '\0') {
        if (required)
            return ld_fail(L, MCRT_E_NOTFOUND, "missing tensor '%s'%s%s%s", alts[0],
                           alts[1] ? " (or '" : "", alts[1] ? alts[1] : "", alts[1] ? "')" : "");
        return MCRT_OK;
    }
    return mark_used(L, found);
}

static mcrt_status check_shape(loader *L, const char *name, const mcrt_tensor_info *ti, int ndim,
                               int64_t d0, int64_t d1)
{
    bool ok = ti->ndim == ndim && ti->shape[0] == d0 && (ndim < 2 || ti->shape[1] == d1);
    if (ok)
        return MCRT_OK;
    char got[96];
    shape_str(got, sizeof got, ti);
    const gpt_config *c = &L->m->cfg;
    if (ndim == 1)
        return ld_fail(L, MCRT_E_DATA, "tensor '%s' has shape %s; the config needs [%lld] "
                       "(hidden_size %d, heads %d, groups %d, kv_channels %d, ffn %d)", name, got,
                       (long long)d0, c->hidden_size, c->num_attention_heads, c->num_query_groups,
                       c->kv_channels, c->ffn_hidden_size);
    return ld_fail(L, MCRT_E_DATA, "tensor '%s' has shape %s; the config needs [%lld, %lld] "
                   "(hidden_size %d, heads %d, groups %d, kv_channels %d, ffn %d, padded vocab %d)",
                   name, got, (long long)d0, (long long)d1, c->hidden_size,
                   c->num_attention_heads, c->num_query_groups, c->kv_channels,
                   c->ffn_hidden_size, c->padded_vocab_size);
}

static mcrt_status check_float(loader *L, const char *name, const mcrt_tensor_info *ti)
{
    if (ti->dtype == MCRT_DTYPE_F32 || ti->dtype == MCRT_DTYPE_BF16 ||
        ti->dtype == MCRT_DTYPE_F16)
        return MCRT_OK;
    return ld_fail(L, MCRT_E_DATA, "tensor '%s' is %s; weights must be F32, BF16 or F16", name,
                   dtype_name(ti->dtype));
}

/* An f32 vector [n] (norm weight or bias), slice [start, start+len) of dim 0
 * (len = n when whole). */
static mcrt_status read_vec(loader *L, const char *const *alts, bool required, int64_t n,
                            int64_t start, int64_t len, float **out)
{
    char name[NAME_MAX_LEN];
    mcrt_tensor_info ti;
    *out = NULL;
    mcrt_status st = find_alt(L, alts, required, name, &ti);
    if (st != MCRT_OK || name[0] == '\0')
        return st;
    if ((st = check_shape(L, name, &ti, 1, n, 0)) != MCRT_OK ||
        (st = check_float(L, name, &ti)) != MCRT_OK)
        return st;
    float *v = gpt_alloc(L->m, (size_t)len * sizeof(float));
    if (v == NULL)
        return ld_fail(L, MCRT_E_NOMEM, "out of memory for '%s'", name);
    st = L->m->ck_svc->read(L->m->host, L->m->ck, name, len == n ? -1 : 0, start, len,
                            MCRT_DTYPE_F32, v, (size_t)len * sizeof(float));
    if (st != MCRT_OK) {
        gpt_free(L->m, v);
        return st;
    }
    L->m->weight_bytes += (size_t)len * sizeof(float);
    L->m->vector_bytes += (size_t)len * sizeof(float);
    *out = v;
    return MCRT_OK;
}

/* How a rank takes its part of a [rows, cols] matrix. */
typedef enum split { SPLIT_NONE, SPLIT_ROWS, SPLIT_ROWS_HALVES, SPLIT_COLS } split;

static void set_mat(gpt_mat *mt, const void *w, int32_t dt, int64_t rows, int64_t cols, void *own)
{
    mt->w = w;
    mt->dtype = dt;
    mt->rows = (int)rows;
    mt->cols = (int)cols;
    mt->owned = own;
}

/* A matrix [rows, cols] as stored (MCore layout), this rank's part of it. */
static mcrt_status read_mat(loader *L, const char *const *alts, bool required, int64_t rows,
                            int64_t cols, split sp, gpt_mat *out)
{
    gpt_model *m = L->m;
    char name[NAME_MAX_LEN];
    mcrt_tensor_info ti;
    memset(out, 0, sizeof *out);
    mcrt_status st = find_alt(L, alts, required, name, &ti);
    if (st != MCRT_OK || name[0] == '\0')
        return st;
    if ((st = check_shape(L, name, &ti, 2, rows, cols)) != MCRT_OK ||
        (st = check_float(L, name, &ti)) != MCRT_OK)
        return st;
    int32_t dt = m->cfg.weights_dtype ? m->cfg.weights_dtype : ti.dtype;
    size_t es = mcrt_dtype_size(dt);
    int tp = sp == SPLIT_NONE ? 1 : L->tp, r = sp == SPLIT_NONE ? 0 : L->tp_rank;
    int64_t lrows = rows, lcols = cols, r0 = 0;
    if (sp == SPLIT_ROWS || sp == SPLIT_ROWS_HALVES) {
        lrows = rows / tp;
        r0 = lrows * r;
    } else if (sp == SPLIT_COLS) {
        lcols = cols / tp;
    }
    size_t bytes = (size_t)lrows * (size_t)lcols * es;
    /* a view: same dtype, a contiguous part, element-aligned */
    if (dt == ti.dtype && !(sp == SPLIT_COLS && tp > 1) && !(sp == SPLIT_ROWS_HALVES && tp > 1)) {
        const void *data = NULL;
        if (m->ck_svc->view(m->host, m->ck, name, &data, NULL) == MCRT_OK && data != NULL &&
            (uintptr_t)data % es == 0) {
            set_mat(out, (const char *)data + (size_t)r0 * (size_t)cols * es, dt, lrows, lcols,
                    NULL);
            m->weight_bytes += bytes;
            m->weight_bytes_mapped += bytes;
            return MCRT_OK;
        }
    }
    void *buf = gpt_alloc(m, bytes);
    if (buf == NULL)
        return ld_fail(L, MCRT_E_NOMEM, "out of memory for '%s' (%zu bytes)", name, bytes);
    gpt_log(m, MCRT_LOG_DEBUG, "'%s': a %s copy (stored %s%s)", name, dtype_name(dt),
            dtype_name(ti.dtype), sp == SPLIT_COLS && tp > 1 ? ", column slice" : "");
    if (sp == SPLIT_ROWS_HALVES && tp > 1) {
        /* SwiGLU fc1 [gate; up]: this rank's rows of each half, gate first */
        int64_t half = rows / 2, part = half / tp;
        size_t hb = (size_t)part * (size_t)cols * es;
        st = m->ck_svc->read(m->host, m->ck, name, 0, part * r, part, dt, buf, hb);
        if (st == MCRT_OK)
            st = m->ck_svc->read(m->host, m->ck, name, 0, half + part * r, part, dt,
                                 (char *)buf + hb, hb);
        lrows = 2 * part;
    } else if (sp == SPLIT_COLS && tp > 1) {
        st = m->ck_svc->read(m->host, m->ck, name, 1, lcols * r, lcols, dt, buf, bytes);
    } else if (tp > 1) {
        st = m->ck_svc->read(m->host, m->ck, name, 0, r0, lrows, dt, buf, bytes);
    } else {
        st = m->ck_svc->read(m->host, m->ck, name, -1, 0, 0, dt, buf, bytes);
    }
    if (st != MCRT_OK) {
        gpt_free(m, buf);
        return st;
    }
    set_mat(out, buf, dt, lrows, lcols, buf);
    m->weight_bytes += bytes;
    return MCRT_OK;
}

/* ---- HF GPT-2 --------------------------------------------------------------- */

/* The description of a required tensor, without consuming it. */
static mcrt_status peek(loader *L, const char *name, mcrt_tensor_info *ti)
{
    memset(ti, 0, sizeof *ti);
    ti->struct_size = (uint32_t)sizeof *ti;
    if (L->m->ck_svc->find(L->m->host, L->m->ck, name, ti) == MCRT_OK)
        return MCRT_OK;
    return ld_fail(L, MCRT_E_NOTFOUND, "missing tensor '%s'", name);
}

/* An HF Conv1D weight [K, N] (y = x W + b) as an MCore [N, K] matrix:
 * out[n][k] = W[k][colmap[n]] (colmap NULL = identity: a transpose). */
static mcrt_status read_conv1d(loader *L, const char *name, int64_t K, int64_t N,
                               const int32_t *colmap, gpt_mat *out)
{
    gpt_model *m = L->m;
    const char *alts[] = {name, NULL};
    char found[NAME_MAX_LEN];
    mcrt_tensor_info ti;
    mcrt_status st = find_alt(L, alts, true, found, &ti);
    if (st != MCRT_OK)
        return st;
    if ((st = check_shape(L, name, &ti, 2, K, N)) != MCRT_OK ||
        (st = check_float(L, name, &ti)) != MCRT_OK)
        return st;
    int32_t dt = m->cfg.weights_dtype ? m->cfg.weights_dtype : ti.dtype;
    size_t es = mcrt_dtype_size(dt), bytes = (size_t)K * (size_t)N * es;
    char *src = malloc(bytes);
    char *dst = gpt_alloc(m, bytes);
    if (src == NULL || dst == NULL) {
        free(src);
        gpt_free(m, dst);
        return ld_fail(L, MCRT_E_NOMEM, "out of memory for '%s'", name);
    }
    st = m->ck_svc->read(m->host, m->ck, name, -1, 0, 0, dt, src, bytes);
    if (st == MCRT_OK) {
        for (int64_t n = 0; n < N; n++) {
            int64_t col = colmap ? colmap[n] : n;
            char *d = dst + (size_t)n * (size_t)K * es;
            for (int64_t k = 0; k < K; k++)
                memcpy(d + (size_t)k * es, src + ((size_t)k * (size_t)N + (size_t)col) * es, es);
        }
    }
    free(src);
    if (st != MCRT_OK) {
        gpt_free(m, dst);
        return st;
    }
    set_mat(out, dst, dt, N, K, dst);
    m->weight_bytes += bytes;
    return MCRT_OK;
}

/* An HF bias [n] permuted by colmap (NULL = as is) into f32. */
static mcrt_status read_hf_vec(loader *L, const char *name, int64_t n, const int32_t *colmap,
                               float **out)
{
    const char *alts[] = {name, NULL};
    float *v = NULL;
    mcrt_status st = read_vec(L, alts, true, n, 0, n, &v);
    if (st != MCRT_OK || colmap == NULL) {
        *out = v;
        return st;
    }
    float *p = malloc((size_t)n * sizeof *p);
    if (p == NULL) {
        gpt_free(L->m, v);
        return ld_fail(L, MCRT_E_NOMEM, "out of memory for '%s'", name);
    }
    for (int64_t i = 0; i < n; i++)
        p[i] = v[colmap[i]];
    memcpy(v, p, (size_t)n * sizeof *p);
    free(p);
    *out = v;
    return MCRT_OK;
}

static mcrt_status load_hf(loader *L)
{
    gpt_model *m = L->m;
    const gpt_config *c = &m->cfg;
    const char *P = L->hf_prefix;
    int C = c->hidden_size, NH = c->num_attention_heads, HS = c->kv_channels;
    char n1[NAME_MAX_LEN], n2[NAME_MAX_LEN];
    mcrt_status st;
    if (c->num_query_groups != NH || HS * NH != C || c->normalization != GPT_LAYERNORM ||
        c->position_embedding_type != GPT_POS_LEARNED || c->activation == MK_ACT_SWIGLU ||
        !c->add_bias_linear || c->qk_layernorm)
        return ld_fail(L, MCRT_E_DATA, "HF GPT-2 tensor names, but the config is not GPT-2 "
                       "shaped (GPT-2 has multi-head attention with head size hidden/heads, "
                       "LayerNorm, learned positions, biases and no SwiGLU or qk_layernorm)");
    if (L->tp > 1)
        return ld_fail(L, MCRT_E_UNSUPPORTED, "HF GPT-2 checkpoints load at tensor-parallel "
                       "size 1 only; convert to MCore names for tensor parallelism");
    /* c_attn columns [Q | K | V], head-major -> MCore rows per head [q; k; v] */
    int32_t *colmap = malloc(sizeof(int32_t) * (size_t)(3 * C));
    if (colmap == NULL)
        return ld_fail(L, MCRT_E_NOMEM, "out of memory");
    for (int g = 0; g < NH; g++)
        for (int w = 0; w < 3; w++)
            for (int d = 0; d < HS; d++)
                colmap[(g * 3 + w) * HS + d] = w * C + g * HS + d;

    if (m->first_stage) {
        const char *wte[] = {n1, NULL};
        snprintf(n1, sizeof n1, "%swte.weight", P);
        mcrt_tensor_info ti;
        st = peek(L, n1, &ti);
        if (st == MCRT_OK && (ti.ndim != 2 || ti.shape[1] != C || ti.shape[0] < c->vocab_size ||
                              ti.shape[0] > c->padded_vocab_size)) {
            char got[96];
            shape_str(got, sizeof got, &ti);
            st = ld_fail(L, MCRT_E_DATA, "tensor '%s' has shape %s; the config needs [V, %d] "
                         "with vocab_size %d <= V <= padded_vocab_size %d", n1, got, C,
                         c->vocab_size, c->padded_vocab_size);
        }
        if (st == MCRT_OK)
            st = read_mat(L, wte, true, ti.shape[0], C, SPLIT_NONE, &m->wte);
        snprintf(n2, sizeof n2, "%swpe.weight", P);
        const char *wpe[] = {n2, NULL};
        if (st == MCRT_OK)
            st = read_mat(L, wpe, true, c->max_position_embeddings, C, SPLIT_NONE, &m->wpe);
        if (st != MCRT_OK)
            goto done;
    }
    for (int l = 0; l < m->n_layers; l++) {
        gpt_layer *ly = &m->layers[l];
        int gl = m->first_layer + l;
        char b[NAME_MAX_LEN];
#define HFN(suffix) (snprintf(b, sizeof b, "%sh.%d.%s", P, gl, suffix), b)
        const char *one[] = {b, NULL};
        if ((st = read_vec(L, (HFN("ln_1.weight"), one), true, C, 0, C, &ly->ln1_w)) ||
            (st = read_vec(L, (HFN("ln_1.bias"), one), true, C, 0, C, &ly->ln1_b)) ||
            (st = read_conv1d(L, HFN("attn.c_attn.weight"), C, 3 * C, colmap, &ly->qkv)) ||
            (st = read_hf_vec(L, HFN("attn.c_attn.bias"), 3 * C, colmap, &ly->qkv_b)) ||
            (st = read_conv1d(L, HFN("attn.c_proj.weight"), C, C, NULL, &ly->proj)) ||
            (st = read_hf_vec(L, HFN("attn.c_proj.bias"), C, NULL, &ly->proj_b)) ||
            (st = read_vec(L, (HFN("ln_2.weight"), one), true, C, 0, C, &ly->ln2_w)) ||
            (st = read_vec(L, (HFN("ln_2.bias"), one), true, C, 0, C, &ly->ln2_b)) ||
            (st = read_conv1d(L, HFN("mlp.c_fc.weight"), C, c->ffn_hidden_size, NULL,
                              &ly->fc1)) ||
            (st = read_hf_vec(L, HFN("mlp.c_fc.bias"), c->ffn_hidden_size, NULL, &ly->fc1_b)) ||
            (st = read_conv1d(L, HFN("mlp.c_proj.weight"), c->ffn_hidden_size, C, NULL,
                              &ly->fc2)) ||
            (st = read_hf_vec(L, HFN("mlp.c_proj.bias"), C, NULL, &ly->fc2_b)))
            goto done;
#undef HFN
    }
    if (m->last_stage) {
        snprintf(n1, sizeof n1, "%sln_f.weight", P);
        snprintf(n2, sizeof n2, "%sln_f.bias", P);
        const char *w[] = {n1, NULL}, *bb[] = {n2, NULL};
        if ((st = read_vec(L, w, true, C, 0, C, &m->lnf_w)) != MCRT_OK ||
            (st = read_vec(L, bb, true, C, 0, C, &m->lnf_b)) != MCRT_OK)
            goto done;
        if (c->untie) {
            const char *lm[] = {"lm_head.weight", NULL};
            st = read_mat(L, lm, true, m->first_stage ? m->wte.rows : c->vocab_size, C,
                          SPLIT_NONE, &m->out);
        } else if (m->first_stage) {
            m->out = m->wte;
            m->out.owned = NULL;
        } else {
            const char *wte[] = {n1, NULL};
            snprintf(n1, sizeof n1, "%swte.weight", P);
            mcrt_tensor_info ti;
            st = peek(L, n1, &ti);
            if (st == MCRT_OK) {
                st = read_mat(L, wte, true, ti.ndim == 2 ? ti.shape[0] : -1, C, SPLIT_NONE,
                              &m->out);
            }
        }
    }
done:
    free(colmap);
    return st;
}

/* ---- MCore ------------------------------------------------------------------ */

static mcrt_status load_mcore(loader *L)
{
    gpt_model *m = L->m;
    const gpt_config *c = &m->cfg;
    int C = c->hidden_size, NH = c->num_attention_heads, NKV = c->num_query_groups;
    int HS = c->kv_channels, F = c->ffn_hidden_size, Vp = c->padded_vocab_size;
    bool ln = c->normalization == GPT_LAYERNORM;
    int64_t qkv_rows = (int64_t)(NH + 2 * NKV) * HS;
    int64_t fc1_rows = c->activation == MK_ACT_SWIGLU ? 2 * (int64_t)F : F;
    split fc1_split = c->activation == MK_ACT_SWIGLU ? SPLIT_ROWS_HALVES : SPLIT_ROWS;
    mcrt_status st = MCRT_OK;
    const char *wte[] = {"embedding.word_embeddings.weight", NULL};

    if (m->first_stage) {
        const char *wpe[] = {"embedding.position_embeddings.weight", NULL};
        if ((st = read_mat(L, wte, true, Vp, C, SPLIT_ROWS, &m->wte)) != MCRT_OK)
            return st;
        if (c->position_embedding_type == GPT_POS_LEARNED) {
            if ((st = read_mat(L, wpe, true, c->max_position_embeddings, C, SPLIT_NONE,
                               &m->wpe)) != MCRT_OK)
                return st;
            if (m->wpe.dtype != m->wte.dtype)
                return ld_fail(L, MCRT_E_DATA, "the word embeddings are %s but the position "
                               "embeddings %s; store them in one dtype or set weights_dtype",
                               dtype_name(m->wte.dtype), dtype_name(m->wpe.dtype));
        }
    }
    for (int l = 0; l < m->n_layers; l++) {
        gpt_layer *ly = &m->layers[l];
        int gl = m->first_layer + l;
        char a[4][NAME_MAX_LEN];
        const char *alts[3] = {a[0], a[1], NULL}, *one[2] = {a[0], NULL};
#define N1(suffix) (snprintf(a[0], NAME_MAX_LEN, "decoder.layers.%d.%s", gl, suffix), one)
#define N2(te, local)                                                       \
    (snprintf(a[0], NAME_MAX_LEN, "decoder.layers.%d.%s", gl, te),          \
     snprintf(a[1], NAME_MAX_LEN, "decoder.layers.%d.%s", gl, local), alts)
        int64_t r = L->tp;
        if ((st = read_vec(L, N2("self_attention.linear_qkv.layer_norm_weight",
                                 "input_layernorm.weight"), true, C, 0, C, &ly->ln1_w)) ||
            (ln && (st = read_vec(L, N2("self_attention.linear_qkv.layer_norm_bias",
                                        "input_layernorm.bias"), true, C, 0, C, &ly->ln1_b))) ||
            (st = read_mat(L, N1("self_attention.linear_qkv.weight"), true, qkv_rows, C,
                           SPLIT_ROWS, &ly->qkv)) ||
            (c->add_qkv_bias &&
             (st = read_vec(L, N1("self_attention.linear_qkv.bias"), true, qkv_rows,
                            qkv_rows / r * L->tp_rank, qkv_rows / r, &ly->qkv_b))) ||
            (c->qk_layernorm &&
             ((st = read_vec(L, N1("self_attention.q_layernorm.weight"), true, HS, 0, HS,
                             &ly->q_ln_w)) ||
              (ln && (st = read_vec(L, N1("self_attention.q_layernorm.bias"), true, HS, 0, HS,
                                    &ly->q_ln_b))) ||
              (st = read_vec(L, N1("self_attention.k_layernorm.weight"), true, HS, 0, HS,
                             &ly->k_ln_w)) ||
              (ln && (st = read_vec(L, N1("self_attention.k_layernorm.bias"), true, HS, 0, HS,
                                    &ly->k_ln_b))))) ||
            (st = read_mat(L, N1("self_attention.linear_proj.weight"), true, C,
                           (int64_t)NH * HS, SPLIT_COLS, &ly->proj)) ||
            (c->add_bias_linear &&
             (st = read_vec(L, N1("self_attention.linear_proj.bias"), true, C, 0, C,
                            &ly->proj_b))) ||
            (st = read_vec(L, N2("mlp.linear_fc1.layer_norm_weight", "pre_mlp_layernorm.weight"),
                           true, C, 0, C, &ly->ln2_w)) ||
            (ln && (st = read_vec(L, N2("mlp.linear_fc1.layer_norm_bias",
                                        "pre_mlp_layernorm.bias"), true, C, 0, C, &ly->ln2_b))) ||
            (st = read_mat(L, N1("mlp.linear_fc1.weight"), true, fc1_rows, C, fc1_split,
                           &ly->fc1)) ||
            (st = read_mat(L, N1("mlp.linear_fc2.weight"), true, C, F, SPLIT_COLS, &ly->fc2)) ||
            (c->add_bias_linear &&
             (st = read_vec(L, N1("mlp.linear_fc2.bias"), true, C, 0, C, &ly->fc2_b))))
            return st;
        if (c->add_bias_linear) {
            /* fc1's bias: this rank's rows (of each half for SwiGLU) */
            if (L->tp == 1 || fc1_split == SPLIT_ROWS) {
                st = read_vec(L, N1("mlp.linear_fc1.bias"), true, fc1_rows,
                              fc1_rows / r * L->tp_rank, fc1_rows / r, &ly->fc1_b);
            } else {
                float *whole = NULL;
                st = read_vec(L, N1("mlp.linear_fc1.bias"), true, fc1_rows, 0, fc1_rows, &whole);
                if (st == MCRT_OK) {
                    int64_t part = F / L->tp;
                    ly->fc1_b = gpt_alloc(m, sizeof(float) * (size_t)(2 * part));
                    if (ly->fc1_b == NULL)
                        st = MCRT_E_NOMEM;
                    else {
                        memcpy(ly->fc1_b, whole + part * L->tp_rank, sizeof(float) * (size_t)part);
                        memcpy(ly->fc1_b + part, whole + F + part * L->tp_rank,
                               sizeof(float) * (size_t)part);
                    }
                    gpt_free(m, whole);
                }
            }
            if (st != MCRT_OK)
                return st;
        }
#undef N1
#undef N2
    }
    if (m->last_stage) {
        const char *fw[] = {"decoder.final_layernorm.weight", NULL};
        const char *fb[] = {"decoder.final_layernorm.bias", NULL};
        const char *ow[] = {"output_layer.weight", NULL};
        if ((st = read_vec(L, fw, true, C, 0, C, &m->lnf_w)) != MCRT_OK ||
            (ln && (st = read_vec(L, fb, true, C, 0, C, &m->lnf_b)) != MCRT_OK))
            return st;
        if (c->untie) {
            st = read_mat(L, ow, true, Vp, C, SPLIT_ROWS, &m->out);
        } else if (m->first_stage) {
            m->out = m->wte;
            m->out.owned = NULL;
        } else {
            /* tied, last stage of several: the word embeddings again (reference §2.6) */
            st = read_mat(L, wte, true, Vp, C, SPLIT_ROWS, &m->out);
        }
        if (st != MCRT_OK)
            return st;
        if (!c->untie) {
            /* PP > 1 checkpoints carry output_layer.weight for tied models: a copy */
            char found[NAME_MAX_LEN];
            mcrt_tensor_info ti;
            if ((st = find_alt(L, ow, false, found, &ti)) != MCRT_OK)
                return st;
            if (found[0] != '\0')
                gpt_log(m, MCRT_LOG_DEBUG, "tied embeddings: ignoring output_layer.weight");
        }
    }
    return MCRT_OK;
}

/* ---- the check that nothing unexplained is left ------------------------------ */

static bool has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Tensors that are not weights of any config: skipped silently. */
static bool ignorable(const loader *L, const char *name)
{
    if (has_suffix(name, "_extra_state") || has_suffix(name, "rotary_pos_emb.inv_freq"))
        return true;
    if (L->hf && (has_suffix(name, ".attn.bias") || has_suffix(name, ".attn.masked_bias") ||
                  (strcmp(name, "lm_head.weight") == 0 && !L->m->cfg.untie)))
        return true;
    return false;
}

/* A layer tensor of another pipeline stage ("decoder.layers.N." / "h.N." with
 * N a layer of the model that this stage does not hold). */
static bool other_stage_layer(const loader *L, const char *name)
{
    const char *p = NULL;
    char pre[64];
    if (L->hf)
        snprintf(pre, sizeof pre, "%sh.", L->hf_prefix);
    else
        snprintf(pre, sizeof pre, "decoder.layers.");
    if (strncmp(name, pre, strlen(pre)) != 0)
        return false;
    p = name + strlen(pre);
    char *end = NULL;
    long n = strtol(p, &end, 10);
    if (end == p || *end != '.' || n < 0 || n >= L->m->cfg.num_layers)
        return false;
    return n < L->m->first_layer || n >= L->m->first_layer + L->m->n_layers;
}

/* Model-level tensors this stage does not hold (embeddings on later stages,
 * final norm and output on earlier ones). */
static bool other_stage_global(const loader *L, const char *name)
{
    const gpt_model *m = L->m;
    static const char *const first[] = {"embedding.word_embeddings.weight",
                                        "embedding.position_embeddings.weight", NULL};
    static const char *const last[] = {"decoder.final_layernorm.weight",
                                       "decoder.final_layernorm.bias", "output_layer.weight",
                                       NULL};
    char buf[64];
    for (int i = 0; first[i] && !m->first_stage; i++)
        if (strcmp(name, first[i]) == 0)
            return true;
    for (int i = 0; last[i] && !m->last_stage; i++)
        if (strcmp(name, last[i]) == 0)
            return true;
    if (L->hf) {
        static const char *const hf_first[] = {"wte.weight", "wpe.weight", NULL};
        static const char *const hf_last[] = {"ln_f.weight", "ln_f.bias", NULL};
        for (int i = 0; hf_first[i] && !m->first_stage; i++)
            if (snprintf(buf, sizeof buf, "%s%s", L->hf_prefix, hf_first[i]) > 0 &&
                strcmp(name, buf) == 0)
                return true;
        for (int i = 0; hf_last[i] && !m->last_stage; i++)
            if (snprintf(buf, sizeof buf, "%s%s", L->hf_prefix, hf_last[i]) > 0 &&
                strcmp(name, buf) == 0)
                return true;
    }
    return false;
}

static mcrt_status check_leftovers(loader *L)
{
    const mcrt_checkpoint_services *cs = L->m->ck_svc;
    size_t n = cs->count(L->m->host, L->m->ck), bad = 0;
    char first[NAME_MAX_LEN] = "";
    for (size_t i = 0; i < n; i++) {
        mcrt_tensor_info ti;
        memset(&ti, 0, sizeof ti);
        ti.struct_size = (uint32_t)sizeof ti;
        if (cs->info_at(L->m->host, L->m->ck, i, &ti) != MCRT_OK || ti.name == NULL)
            continue;
        if (was_used(L, ti.name) || ignorable(L, ti.name) || other_stage_layer(L, ti.name) ||
            other_stage_global(L, ti.name))
            continue;
        if (bad++ == 0)
            snprintf(first, sizeof first, "%s", ti.name);
    }
    if (bad == 0)
        return MCRT_OK;
    return ld_fail(L, MCRT_E_DATA, "%zu tensor%s the config does not use, first '%s' (a config "
                   "that does not match the weights? check num_layers, qk_layernorm, "
                   "add_bias_linear, normalization, untie_embeddings_and_output_weights)",
                   bad, bad == 1 ? "" : "s", first);
}

mcrt_status gpt_load_weights(gpt_model *m)
{
    loader L;
    memset(&L, 0, sizeof L);
    L.m = m;
    L.path = m->cfg.load;
    L.tp = m->rank.tp_size;
    L.tp_rank = m->rank.tp_rank;
    const mcrt_checkpoint_services *cs = m->ck_svc;
    static const char *const hf_probe[] = {"transformer.wte.weight", "wte.weight"};
    for (int i = 0; i < 2; i++)
        if (cs->find(m->host, m->ck, hf_probe[i], NULL) == MCRT_OK) {
            L.hf = true;
            snprintf(L.hf_prefix, sizeof L.hf_prefix, "%s", i == 0 ? "transformer." : "");
            break;
        }
    if (!L.hf && cs->find(m->host, m->ck, "embedding.word_embeddings.weight", NULL) != MCRT_OK &&
        cs->find(m->host, m->ck, "decoder.final_layernorm.weight", NULL) != MCRT_OK) {
        ld_fail(&L, MCRT_E_DATA, "neither MCore names (embedding.word_embeddings.weight, "
                "decoder.layers.N...) nor HF GPT-2 names (transformer.wte.weight, "
                "transformer.h.N...) found");
        return MCRT_E_DATA;
    }
    m->layers = gpt_alloc(m, sizeof(gpt_layer) * (size_t)(m->n_layers > 0 ? m->n_layers : 1));
    if (m->layers == NULL)
        return MCRT_E_NOMEM;
    memset(m->layers, 0, sizeof(gpt_layer) * (size_t)(m->n_layers > 0 ? m->n_layers : 1));
    mcrt_status st = L.hf ? load_hf(&L) : load_mcore(&L);
    if (st == MCRT_OK)
        st = check_leftovers(&L);
    for (size_t i = 0; i < L.n_used; i++)
        free(L.used[i]);
    free(L.used);
    if (st == MCRT_OK)
        gpt_log(m, MCRT_LOG_DEBUG, "%s names, layers %d..%d: %.1f MiB of weights, %.1f MiB "
                "mapped from the file", L.hf ? "HF GPT-2" : "MCore", m->first_layer,
                m->first_layer + m->n_layers - 1, (double)m->weight_bytes / 1048576.0,
                (double)m->weight_bytes_mapped / 1048576.0);
    return st;
}

static void free_mat(gpt_model *m, gpt_mat *mt)
{
    gpt_free(m, mt->owned);
    memset(mt, 0, sizeof *mt);
}

void gpt_free_weights(gpt_model *m)
{
    if (m->layers != NULL) {
        for (int l = 0; l < m->n_layers; l++) {
            gpt_layer *ly = &m->layers[l];
            float *vecs[] = {ly->ln1_w, ly->ln1_b, ly->qkv_b, ly->q_ln_w, ly->q_ln_b, ly->k_ln_w,
                             ly->k_ln_b, ly->proj_b, ly->ln2_w, ly->ln2_b, ly->fc1_b, ly->fc2_b};
            for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++)
                gpt_free(m, vecs[i]);
            free_mat(m, &ly->qkv);
            free_mat(m, &ly->proj);
            free_mat(m, &ly->fc1);
            free_mat(m, &ly->fc2);
        }
        gpt_free(m, m->layers);
        m->layers = NULL;
    }
    free_mat(m, &m->wte);
    free_mat(m, &m->wpe);
    free_mat(m, &m->out);
    gpt_free(m, m->lnf_w);
    gpt_free(m, m->lnf_b);
    m->lnf_w = m->lnf_b = NULL;
}
