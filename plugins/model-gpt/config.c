/*
 * plugins/model-gpt/config.c: the model's hyper-parameters.
 *
 * Each hyper-parameter is a key of the `model:` section named as Megatron's
 * argument (--hidden-size -> hidden_size). Its value is, in order: the YAML
 * (or CLI / environment) value; else what the checkpoint itself says (an HF
 * config.json, mapped to these names by the core); else Megatron's default,
 * or an error when Megatron has none. Derived values and the combinations
 * that cannot run follow reference §2.2-§2.6, as tools/reference/gpt's
 * GPTConfig does (the tests hold both to the same fixtures).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpt.h"

#define KEY MCRT_CONFIG_KEY
#define KEY_RANGE MCRT_CONFIG_KEY_RANGE
#define KEY_ENUM MCRT_CONFIG_KEY_ENUM

/* Hyper-parameter keys have no default here (NULL): "not set" must stay
 * visible so that the checkpoint's value can fill it. Their Megatron
 * defaults are in the doc strings and in gpt_config_read. */
const mcrt_config_key gpt_config_keys[] = {
    KEY_RANGE(MCRT_CFG_INT, "hidden_size", NULL, 1, 1 << 20, "hidden size h (required)"),
    KEY_RANGE(MCRT_CFG_INT, "num_layers", NULL, 1, GPT_MAX_LAYERS,
              "transformer layers (required)"),
    KEY_RANGE(MCRT_CFG_INT, "num_attention_heads", NULL, 1, 1 << 16,
              "attention heads (required)"),
    KEY(MCRT_CFG_BOOL, "group_query_attention", NULL,
        "use num_query_groups (Megatron ignores it without this; unset here = on when "
        "num_query_groups is given)"),
    KEY_RANGE(MCRT_CFG_INT, "num_query_groups", NULL, 1, 1 << 16,
              "key/value heads for grouped-query attention (default: num_attention_heads)"),
    KEY_RANGE(MCRT_CFG_INT, "kv_channels", NULL, 1, 1 << 16,
              "head size (default: hidden_size / num_attention_heads)"),
    KEY_RANGE(MCRT_CFG_INT, "ffn_hidden_size", NULL, 1, 1 << 22,
              "MLP hidden size (default: 4 * hidden_size)"),
    KEY_ENUM("normalization", NULL, "LayerNorm|RMSNorm", "norm type (default LayerNorm)"),
    KEY_RANGE(MCRT_CFG_FLOAT, "norm_epsilon", NULL, 0, 1, "norm epsilon (default 1e-5)"),
    KEY_RANGE(MCRT_CFG_FLOAT, "layernorm_epsilon", NULL, 0, 1,
              "the same as norm_epsilon (TransformerConfig's spelling)"),
    KEY(MCRT_CFG_BOOL, "apply_layernorm_1p", NULL, "norms scale by (1 + weight) (default false)"),
    KEY(MCRT_CFG_BOOL, "qk_layernorm", NULL,
        "normalize queries and keys per head before RoPE (default false)"),
    KEY_ENUM("position_embedding_type", NULL, "learned_absolute|rope",
             "position embeddings (default learned_absolute)"),
    KEY(MCRT_CFG_BOOL, "use_rotary_position_embeddings", NULL,
        "the old spelling of position_embedding_type: rope"),
    KEY_RANGE(MCRT_CFG_FLOAT, "rotary_percent", NULL, 0, 1,
              "fraction of each head's channels rotated by RoPE (default 1.0)"),
    KEY_RANGE(MCRT_CFG_FLOAT, "rotary_base", NULL, 1, 1e12, "RoPE base (default 10000)"),
    KEY(MCRT_CFG_BOOL, "rotary_interleaved", NULL,
        "RoPE pairs channels (2i, 2i+1) instead of (i, i + dim/2) (default false)"),
    KEY_RANGE(MCRT_CFG_INT, "max_position_embeddings", NULL, 1, 1 << 24,
              "learned position table size; also the longest sequence (required for "
              "learned_absolute)"),
    KEY_RANGE(MCRT_CFG_INT, "max_sequence_length", NULL, 1, 1 << 24,
              "longest sequence the model accepts (default: max_position_embeddings; needed "
              "for rope without it)"),
    KEY_ENUM("activation", NULL, "gelu|gelu_tanh|swiglu|squared_relu",
             "MLP activation (default: gelu_tanh with add_bias_linear, else gelu, as Megatron's "
             "bias-gelu fusion)"),
    KEY(MCRT_CFG_BOOL, "swiglu", NULL, "Megatron's --swiglu: activation swiglu"),
    KEY(MCRT_CFG_BOOL, "squared_relu", NULL, "Megatron's --squared-relu: activation squared_relu"),
    KEY(MCRT_CFG_BOOL, "add_bias_linear", NULL, "biases on every linear layer (default true)"),
    KEY(MCRT_CFG_BOOL, "add_qkv_bias", NULL,
        "bias on the QKV projection (default false; forced true by add_bias_linear)"),
    KEY(MCRT_CFG_BOOL, "untie_embeddings_and_output_weights", NULL,
        "a separate output layer instead of the word embeddings (default false)"),
    KEY_RANGE(MCRT_CFG_INT, "vocab_size", NULL, 1, 1 << 26,
              "real vocabulary size (required; Megatron takes it from the tokenizer)"),
    KEY_RANGE(MCRT_CFG_INT, "padded_vocab_size", NULL, 1, 1 << 26,
              "rows of the embedding and output layer (default: vocab_size rounded up to "
              "make_vocab_size_divisible_by)"),
    KEY_RANGE(MCRT_CFG_INT, "make_vocab_size_divisible_by", NULL, 1, 1 << 20,
              "vocabulary padding unit (default 128)"),
    /* runtime keys: ordinary defaults */
    KEY_RANGE(MCRT_CFG_INT, "kv_block_size", "16", 1, 4096, "tokens per KV cache block"),
    KEY(MCRT_CFG_STRING, "kv_cache_memory", "auto",
        "memory for this rank's KV cache: bytes, or with a unit (512MiB, 2GiB, 1.5GB); auto = "
        "16 sequences of max_sequence_length, at most 1 GiB"),
    KEY_RANGE(MCRT_CFG_INT, "kv_num_blocks", "0", 0, 1 << 30,
              "KV cache blocks; overrides kv_cache_memory when > 0"),
    KEY_ENUM("weights_dtype", "auto", "auto|fp32|bf16|fp16",
             "dtype of the weight matrices in memory; auto = as stored in the checkpoint"),
    KEY_ENUM("kernels", "fast", "fast|reference",
             "CPU kernels: fast (threads, SIMD, BLAS) or reference (plain C, one thread)"),
    KEY_ENUM("device", "auto", "auto|cpu", "where to run; auto = cpu in this build"),
    MCRT_CONFIG_KEY_END,
};

/* The value of a key: from the section, else the checkpoint, else absent. */
typedef struct gpt_val {
    bool set;
    const char *from; /* "model section" or the checkpoint's source */
    int64_t i;
    double f;
    bool b;
    const char *s;
} gpt_val;

static mcrt_status cfg_fail(const gpt_model *m, const char *fmt, ...) MCRT_PRINTF(2, 3);
static mcrt_status cfg_fail(const gpt_model *m, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    gpt_log(m, MCRT_LOG_ERROR, "%s", msg);
    return MCRT_E_CONFIG;
}

/* How Megatron's --use-checkpoint-args treats a saved argument (reference
 * §3.5, load_args_from_checkpoint): FORCED replaces what the command line
 * (here: the model section) says; FILL is used only where it says nothing;
 * every other key is never read from the args. */
typedef enum arg_rule { RULE_NOT_READ, RULE_FORCED, RULE_FILL } arg_rule;

static arg_rule megatron_rule(const char *key)
{
    static const char *const forced[] = {
        "num_query_groups", "group_query_attention", "position_embedding_type",
        "use_rotary_position_embeddings", "rotary_base", "rotary_percent", "rotary_interleaved",
        "add_bias_linear", "add_qkv_bias", "squared_relu", "swiglu",
        "untie_embeddings_and_output_weights", "apply_layernorm_1p", "normalization",
    };
    static const char *const fill[] = {
        "num_layers", "hidden_size", "ffn_hidden_size", "num_attention_heads", "kv_channels",
        "max_position_embeddings", "padded_vocab_size",
    };
    for (size_t i = 0; i < sizeof forced / sizeof forced[0]; i++)
        if (strcmp(key, forced[i]) == 0)
            return RULE_FORCED;
    for (size_t i = 0; i < sizeof fill / sizeof fill[0]; i++)
        if (strcmp(key, fill[i]) == 0)
            return RULE_FILL;
    return RULE_NOT_READ;
}

/* The checkpoint's raw statement about `key` (MCRT_E_NOTFOUND if none). */
static mcrt_status ck_raw(const gpt_model *m, const char *key, mcrt_checkpoint_arg *a)
{
    if (m->ck == NULL || m->ck_svc == NULL || !MCRT_HAS(m->ck_svc, arg) || m->ck_svc->arg == NULL)
        return MCRT_E_NOTFOUND;
    memset(a, 0, sizeof *a);
    a->struct_size = (uint32_t)sizeof *a;
    return m->ck_svc->arg(m->host, m->ck, key, a);
}

/* a, typed like `type`, into v. */
static mcrt_status ck_convert(const gpt_model *m, const char *key, int type,
                              const mcrt_checkpoint_arg *a, gpt_val *v)
{
    const char *from = a->source != NULL ? a->source : "the checkpoint";
    bool ok = false;
    switch (type) {
    case MCRT_CFG_INT:
        ok = a->type == MCRT_CFG_INT || (a->type == MCRT_CFG_FLOAT && a->f == floor(a->f) &&
                                         fabs(a->f) < 9e15);
        v->i = a->type == MCRT_CFG_INT ? a->i : (int64_t)a->f;
        break;
    case MCRT_CFG_FLOAT:
        ok = a->type == MCRT_CFG_INT || a->type == MCRT_CFG_FLOAT;
        v->f = a->type == MCRT_CFG_INT ? (double)a->i : a->f;
        break;
    case MCRT_CFG_BOOL:
        ok = a->type == MCRT_CFG_BOOL;
        v->b = a->i != 0;
        break;
    default:
        ok = a->type == MCRT_CFG_STRING && a->s != NULL;
        v->s = a->s;
        break;
    }
    if (!ok)
        return cfg_fail(m, "%s in %s has the wrong type for model.%s", key, from, key);
    v->from = from;
    v->set = true;
    return MCRT_OK;
}

static bool same_value(int type, const gpt_val *a, const gpt_val *b)
{
    switch (type) {
    case MCRT_CFG_INT: return a->i == b->i;
    case MCRT_CFG_FLOAT: return a->f == b->f;
    case MCRT_CFG_BOOL: return a->b == b->b;
    default: return a->s != NULL && b->s != NULL && strcmp(a->s, b->s) == 0;
    }
}

static void val_text(char *buf, size_t n, int type, const gpt_val *v)
{
    switch (type) {
    case MCRT_CFG_INT: snprintf(buf, n, "%lld", (long long)v->i); break;
    case MCRT_CFG_FLOAT: snprintf(buf, n, "%g", v->f); break;
    case MCRT_CFG_BOOL: snprintf(buf, n, "%s", v->b ? "true" : "false"); break;
    default: snprintf(buf, n, "%s", v->s != NULL ? v->s : ""); break;
    }
}

/* The value of a key: the model section and the checkpoint, combined by
 * what the checkpoint's statement is (see the top of the file). */
static mcrt_status get(const gpt_model *m, const mcrt_config *cfg, const char *key, int type,
                       gpt_val *v)
{
    const mcrt_host *h = m->host;
    mcrt_status st;
    memset(v, 0, sizeof *v);
    switch (type) {
    case MCRT_CFG_INT: st = h->config_int(h, cfg, key, &v->i); break;
    case MCRT_CFG_FLOAT: st = h->config_float(h, cfg, key, &v->f); break;
    case MCRT_CFG_BOOL: st = h->config_bool(h, cfg, key, &v->b); break;
    default: st = h->config_string(h, cfg, key, &v->s); break;
    }
    if (st == MCRT_OK) {
        v->set = true;
        v->from = "the model section";
    } else if (st != MCRT_E_NOTFOUND) {
        return st;
    }
    mcrt_checkpoint_arg a;
    st = ck_raw(m, key, &a);
    if (st == MCRT_E_NOTFOUND)
        return MCRT_OK;
    if (st != MCRT_OK)
        return st;
    if (a.origin != MCRT_CHECKPOINT_ARG_TRAINING_ARGS) /* a model config: fills the unset */
        return v->set ? MCRT_OK : ck_convert(m, key, type, &a, v);
    if (!m->use_ckpt_args)
        return MCRT_OK; /* Megatron reads saved args only when asked */
    arg_rule rule = megatron_rule(key);
    gpt_val c;
    memset(&c, 0, sizeof c);
    char cv[128], yv[128];
    if (rule == RULE_NOT_READ) {
        if (!v->set && ck_convert(m, key, type, &a, &c) == MCRT_OK) {
            /* A warning when the value differs from the Megatron default that
             * will be used instead; otherwise a note. */
            bool differs = false;
            if (strcmp(key, "norm_epsilon") == 0 || strcmp(key, "layernorm_epsilon") == 0)
                differs = c.f != 1e-5;
            else if (strcmp(key, "qk_layernorm") == 0 || strcmp(key, "apply_layernorm_1p") == 0)
                differs = c.b;
            else if (strcmp(key, "make_vocab_size_divisible_by") == 0)
                differs = c.i != 128;
            val_text(cv, sizeof cv, type, &c);
            gpt_log(m, differs ? MCRT_LOG_WARN : MCRT_LOG_INFO, "the checkpoint's args say %s = "
                    "%s, which Megatron's --use-checkpoint-args does not read; set model.%s to "
                    "use it", key, cv, key);
        }
        return MCRT_OK;
    }
    if (rule == RULE_FILL && v->set)
        return MCRT_OK;
    if ((st = ck_convert(m, key, type, &a, &c)) != MCRT_OK)
        return st;
    if (v->set && !same_value(type, v, &c)) {
        val_text(cv, sizeof cv, type, &c);
        val_text(yv, sizeof yv, type, v);
        gpt_log(m, MCRT_LOG_WARN, "model.%s = %s from the model section is replaced by the "
                "checkpoint's args (%s): --use-checkpoint-args forces it, as Megatron does", key,
                yv, cv);
    }
    *v = c;
    return MCRT_OK;
}

/* For a "required" message: what the checkpoint's args would say. */
static void args_hint(const gpt_model *m, const char *key, char *buf, size_t n)
{
    buf[0] = '\0';
    mcrt_checkpoint_arg a;
    if (m->use_ckpt_args || ck_raw(m, key, &a) != MCRT_OK ||
        a.origin != MCRT_CHECKPOINT_ARG_TRAINING_ARGS || a.type != MCRT_CFG_INT)
        return;
    snprintf(buf, n, "; or pass --use-checkpoint-args (model.use_checkpoint_args: true): the "
             "checkpoint's args say %lld", (long long)a.i);
}

#define GET(key, type, v)                                   \
    do {                                                    \
        mcrt_status st_ = get(m, cfg, (key), (type), (v));  \
        if (st_ != MCRT_OK)                                 \
            return st_;                                     \
    } while (0)

/* "512MiB", "2GiB", "1.5GB", "1000000" -> bytes. */
static bool parse_size(const char *s, uint64_t *out)
{
    char *end = NULL;
    double v = strtod(s, &end);
    if (end == s || !(v >= 0) || !isfinite(v))
        return false;
    while (*end == ' ')
        end++;
    double unit = 1;
    if (*end == '\0' || strcmp(end, "B") == 0)
        unit = 1;
    else if (strcmp(end, "KiB") == 0) unit = 1024.0;
    else if (strcmp(end, "MiB") == 0) unit = 1024.0 * 1024;
    else if (strcmp(end, "GiB") == 0) unit = 1024.0 * 1024 * 1024;
    else if (strcmp(end, "TiB") == 0) unit = 1024.0 * 1024 * 1024 * 1024;
    else if (strcmp(end, "KB") == 0 || strcmp(end, "kB") == 0) unit = 1e3;
    else if (strcmp(end, "MB") == 0) unit = 1e6;
    else if (strcmp(end, "GB") == 0) unit = 1e9;
    else if (strcmp(end, "TB") == 0) unit = 1e12;
    else
        return false;
    double bytes = v * unit;
    if (bytes > 1.8e19)
        return false;
    *out = (uint64_t)bytes;
    return true;
}

mcrt_status gpt_config_read(gpt_model *m, const mcrt_config *cfg)
{
    gpt_config *c = &m->cfg;
    gpt_val v;
    memset(c, 0, sizeof *c);

    /* required sizes */
    static const char *const required[] = {"hidden_size", "num_layers", "num_attention_heads",
                                           "vocab_size"};
    int64_t req[4];
    for (int i = 0; i < 4; i++) {
        GET(required[i], MCRT_CFG_INT, &v);
        if (!v.set) {
            char hint[200];
            args_hint(m, required[i], hint, sizeof hint);
            return cfg_fail(m, "model.%s is required (set it in the model section%s%s)",
                            required[i],
                            i == 3 ? "; Megatron takes it from the tokenizer" :
                            ", or put an HF config.json beside the weights", hint);
        }
        if (v.i < 1 || v.i > (i == 1 ? GPT_MAX_LAYERS : (1 << 26)))
            return cfg_fail(m, "model.%s = %lld (from %s) is out of range", required[i],
                            (long long)v.i, v.from);
        req[i] = v.i;
    }
    c->hidden_size = (int)req[0];
    c->num_layers = (int)req[1];
    c->num_attention_heads = (int)req[2];
    c->vocab_size = (int)req[3];

    /* GQA: num_query_groups applies unless group_query_attention is false. */
    gpt_val gqa;
    GET("group_query_attention", MCRT_CFG_BOOL, &gqa);
    GET("num_query_groups", MCRT_CFG_INT, &v);
    c->num_query_groups = c->num_attention_heads;
    if (v.set && !(gqa.set && !gqa.b)) {
        if (v.i < 1 || v.i > c->num_attention_heads)
            return cfg_fail(m, "model.num_query_groups = %lld must be in [1, "
                            "num_attention_heads = %d]", (long long)v.i, c->num_attention_heads);
        c->num_query_groups = (int)v.i;
    }
    if (c->num_attention_heads % c->num_query_groups != 0)
        return cfg_fail(m, "model.num_query_groups = %d does not divide num_attention_heads = %d",
                        c->num_query_groups, c->num_attention_heads);

    GET("kv_channels", MCRT_CFG_INT, &v);
    if (v.set) {
        c->kv_channels = (int)v.i;
    } else {
        if (c->hidden_size % c->num_attention_heads != 0)
            return cfg_fail(m, "model.num_attention_heads = %d does not divide hidden_size = %d "
                            "(set kv_channels for a head size other than hidden_size / heads)",
                            c->num_attention_heads, c->hidden_size);
        c->kv_channels = c->hidden_size / c->num_attention_heads;
    }
    GET("ffn_hidden_size", MCRT_CFG_INT, &v);
    c->ffn_hidden_size = v.set ? (int)v.i : 4 * c->hidden_size;

    GET("normalization", MCRT_CFG_STRING, &v);
    if (!v.set || strcmp(v.s, "LayerNorm") == 0)
        c->normalization = GPT_LAYERNORM;
    else if (strcmp(v.s, "RMSNorm") == 0)
        c->normalization = GPT_RMSNORM;
    else
        return cfg_fail(m, "model.normalization \"%s\" (from %s): expected LayerNorm or RMSNorm",
                        v.s, v.from);

    gpt_val e1, e2;
    GET("norm_epsilon", MCRT_CFG_FLOAT, &e1);
    GET("layernorm_epsilon", MCRT_CFG_FLOAT, &e2);
    if (e1.set && e2.set && e1.f != e2.f)
        return cfg_fail(m, "model.norm_epsilon = %g and layernorm_epsilon = %g disagree; set one",
                        e1.f, e2.f);
    c->norm_epsilon = e1.set ? e1.f : e2.set ? e2.f : 1e-5;
    if (!(c->norm_epsilon > 0.0))
        return cfg_fail(m, "model.norm_epsilon must be > 0");
    GET("apply_layernorm_1p", MCRT_CFG_BOOL, &v);
    c->apply_layernorm_1p = v.set && v.b;
    GET("qk_layernorm", MCRT_CFG_BOOL, &v);
    c->qk_layernorm = v.set && v.b;

    GET("position_embedding_type", MCRT_CFG_STRING, &v);
    gpt_val old_rope;
    GET("use_rotary_position_embeddings", MCRT_CFG_BOOL, &old_rope);
    if (v.set && strcmp(v.s, "rope") == 0)
        c->position_embedding_type = GPT_POS_ROPE;
    else if (v.set && strcmp(v.s, "learned_absolute") == 0)
        c->position_embedding_type = GPT_POS_LEARNED;
    else if (v.set)
        return cfg_fail(m, "model.position_embedding_type \"%s\" (from %s): supported are "
                        "learned_absolute and rope", v.s, v.from);
    else
        c->position_embedding_type =
            old_rope.set && old_rope.b ? GPT_POS_ROPE : GPT_POS_LEARNED;

    GET("rotary_percent", MCRT_CFG_FLOAT, &v);
    c->rotary_percent = v.set ? v.f : 1.0;
    GET("rotary_base", MCRT_CFG_FLOAT, &v);
    c->rotary_base = v.set ? v.f : 10000.0;
    GET("rotary_interleaved", MCRT_CFG_BOOL, &v);
    c->rotary_interleaved = v.set && v.b;
    if (c->position_embedding_type == GPT_POS_ROPE) {
        if (!(c->rotary_percent > 0.0 && c->rotary_percent <= 1.0))
            return cfg_fail(m, "model.rotary_percent = %g must be in (0, 1]", c->rotary_percent);
        c->rot_dim = mk_rotary_dim(c->kv_channels, c->rotary_percent);
        if (c->rot_dim < 2 || c->rot_dim % 2 != 0)
            return cfg_fail(m, "model: int(kv_channels %d x rotary_percent %g) = %d rotated "
                            "channels; RoPE needs an even number >= 2",
                            c->kv_channels, c->rotary_percent, c->rot_dim);
    }

    GET("max_position_embeddings", MCRT_CFG_INT, &v);
    c->max_position_embeddings = v.set ? (int)v.i : 0;
    GET("max_sequence_length", MCRT_CFG_INT, &v);
    c->max_sequence_length = v.set ? (int)v.i : c->max_position_embeddings;
    if (c->position_embedding_type == GPT_POS_LEARNED) {
        if (c->max_position_embeddings <= 0)
            return cfg_fail(m, "model.max_position_embeddings is required with learned_absolute "
                            "position embeddings");
        if (c->max_sequence_length > c->max_position_embeddings)
            return cfg_fail(m, "model.max_sequence_length = %d exceeds max_position_embeddings = "
                            "%d (the learned position table has no more rows)",
                            c->max_sequence_length, c->max_position_embeddings);
    }
    if (c->max_sequence_length <= 0)
        return cfg_fail(m, "model: set max_position_embeddings or max_sequence_length (the "
                        "longest sequence the model accepts)");

    gpt_val bias, qkvb;
    GET("add_bias_linear", MCRT_CFG_BOOL, &bias);
    c->add_bias_linear = !bias.set || bias.b;
    GET("add_qkv_bias", MCRT_CFG_BOOL, &qkvb);
    c->add_qkv_bias = (qkvb.set && qkvb.b) || c->add_bias_linear; /* §2.2: forced */

    gpt_val act, sw, sq;
    GET("activation", MCRT_CFG_STRING, &act);
    GET("swiglu", MCRT_CFG_BOOL, &sw);
    GET("squared_relu", MCRT_CFG_BOOL, &sq);
    if (sw.set && sw.b && sq.set && sq.b)
        return cfg_fail(m, "model: swiglu and squared_relu are both set; choose one");
    const char *an = act.set ? act.s
                     : sw.set && sw.b ? "swiglu"
                     : sq.set && sq.b ? "squared_relu"
                     : c->add_bias_linear ? "gelu_tanh" : "gelu";
    if ((sw.set && sw.b && strcmp(an, "swiglu") != 0) ||
        (sq.set && sq.b && strcmp(an, "squared_relu") != 0))
        return cfg_fail(m, "model.activation is %s but %s is set", an,
                        sw.set && sw.b ? "swiglu" : "squared_relu");
    if (strcmp(an, "gelu") == 0) c->activation = MK_ACT_GELU_ERF;
    else if (strcmp(an, "gelu_tanh") == 0) c->activation = MK_ACT_GELU_TANH;
    else if (strcmp(an, "swiglu") == 0) c->activation = MK_ACT_SWIGLU;
    else if (strcmp(an, "squared_relu") == 0) c->activation = MK_ACT_SQUARED_RELU;
    else
        return cfg_fail(m, "model.activation \"%s\" (from %s): expected gelu, gelu_tanh, swiglu "
                        "or squared_relu", an, act.from);

    GET("untie_embeddings_and_output_weights", MCRT_CFG_BOOL, &v);
    c->untie = v.set && v.b;

    gpt_val pad, div;
    GET("padded_vocab_size", MCRT_CFG_INT, &pad);
    GET("make_vocab_size_divisible_by", MCRT_CFG_INT, &div);
    if (pad.set) {
        c->padded_vocab_size = (int)pad.i;
    } else {
        int64_t d = div.set ? div.i : 128;
        if (d < 1)
            return cfg_fail(m, "model.make_vocab_size_divisible_by must be >= 1");
        c->padded_vocab_size = (int)(((int64_t)c->vocab_size + d - 1) / d * d);
    }
    if (c->padded_vocab_size < c->vocab_size)
        return cfg_fail(m, "model.padded_vocab_size = %d is smaller than vocab_size = %d",
                        c->padded_vocab_size, c->vocab_size);

    /* sizes whose products must stay in int range for the kernels */
    int64_t qkv_rows = (int64_t)(c->num_attention_heads + 2 * c->num_query_groups) * c->kv_channels;
    int64_t fc1_rows = (int64_t)c->ffn_hidden_size * (c->activation == MK_ACT_SWIGLU ? 2 : 1);
    if (qkv_rows > (1 << 24) || fc1_rows > (1 << 24) ||
        (int64_t)c->num_attention_heads * c->kv_channels > (1 << 24))
        return cfg_fail(m, "model: the attention or MLP projections are too large (%lld QKV "
                        "rows, %lld fc1 rows)", (long long)qkv_rows, (long long)fc1_rows);

    /* runtime keys */
    int64_t iv = 0;
    if (m->host->config_int(m->host, cfg, "kv_block_size", &iv) != MCRT_OK)
        iv = 16;
    c->kv_block_size = (int)iv;
    if (m->host->config_int(m->host, cfg, "kv_num_blocks", &iv) != MCRT_OK)
        iv = 0;
    c->kv_num_blocks = iv;
    const char *s = NULL;
    if (m->host->config_string(m->host, cfg, "kv_cache_memory", &s) != MCRT_OK || s == NULL)
        s = "auto";
    if (strcmp(s, "auto") == 0)
        c->kv_cache_memory = 0;
    else if (!parse_size(s, &c->kv_cache_memory) || c->kv_cache_memory == 0)
        return cfg_fail(m, "model.kv_cache_memory \"%s\": expected auto, or a size such as "
                        "536870912, 512MiB, 2GiB or 1.5GB", s);
    if (m->host->config_string(m->host, cfg, "weights_dtype", &s) != MCRT_OK || s == NULL)
        s = "auto";
    c->weights_dtype = strcmp(s, "fp32") == 0   ? MCRT_DTYPE_F32
                       : strcmp(s, "bf16") == 0 ? MCRT_DTYPE_BF16
                       : strcmp(s, "fp16") == 0 ? MCRT_DTYPE_F16
                                                : 0;
    if (m->host->config_string(m->host, cfg, "kernels", &s) != MCRT_OK || s == NULL)
        s = "fast";
    c->reference_kernels = strcmp(s, "reference") == 0;
    return MCRT_OK;
}
