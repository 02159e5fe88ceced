/*
 * core/checkpoint/hf_config.c: an HF config.json beside the weights, as
 * Megatron arguments (checkpoint.h, ckpt_read_hf_config).
 *
 * Hugging Face checkpoints keep their hyper-parameters in config.json. For
 * GPT-2 ("model_type": "gpt2") the mapping onto Megatron's arguments is
 * fixed (reference §3.8, docs/checkpoints.md):
 *
 *   n_embd -> hidden_size            n_layer -> num_layers
 *   n_head -> num_attention_heads    n_positions (or n_ctx) -> max_position_embeddings
 *   vocab_size -> vocab_size         layer_norm_epsilon -> norm_epsilon
 *   n_inner -> ffn_hidden_size (null: 4 * n_embd)
 *   activation_function gelu_new | gelu_fast | gelu_pytorch_tanh -> activation gelu_tanh,
 *                       gelu -> gelu
 *   tie_word_embeddings (default true) -> untie_embeddings_and_output_weights = !tie
 *   always: position_embedding_type learned_absolute, normalization LayerNorm,
 *           add_bias_linear true, add_qkv_bias true
 *
 * Options GPT-2 code has that MCore's GPT cannot express
 * (scale_attn_by_inverse_layer_idx, reorder_and_upcast_attn,
 * scale_attn_weights = false, other activations) are refused with the key
 * named, rather than silently computing something else. Other keys are
 * skipped. Another model_type leaves the checkpoint without arguments.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint/backend.h"
#include "checkpoint/json.h"
#include "mcrt/config.h" /* MCRT_CFG_* */

#define HF_CONFIG_MAX (1u << 20) /* a config.json is a few KiB */

static const char *const SRC = "config.json";

/* The folder config.json would be in. */
static char *config_path(const char *path, bool is_dir)
{
    if (is_dir)
        return ckpt_join(path, "config.json");
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return strdup("config.json");
    size_t n = (size_t)(slash - path) + 1;
    char *p = malloc(n + sizeof "config.json");
    if (p == NULL)
        return NULL;
    memcpy(p, path, n);
    memcpy(p + n, "config.json", sizeof "config.json");
    return p;
}

static mcrt_status read_file(const char *file, char **out, size_t *out_len, ckpt_err *err)
{
    char q[CKPT_QUOTE_SIZE];
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return ckpt_fail(err, MCRT_E_IO, "%s: cannot open: %s", ckpt_quote(q, sizeof q, file,
                         strlen(file)), strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || st.st_size < 0 || (uint64_t)st.st_size > HF_CONFIG_MAX) {
        close(fd);
        return ckpt_fail(err, MCRT_E_DATA, "%s: larger than %u bytes; not a model config",
                         ckpt_quote(q, sizeof q, file, strlen(file)), HF_CONFIG_MAX);
    }
    size_t n = (size_t)st.st_size, got = 0;
    char *buf = malloc(n + 1);
    if (buf == NULL) {
        close(fd);
        return ckpt_fail(err, MCRT_E_NOMEM, "out of memory reading %s", file);
    }
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (got != n) {
        free(buf);
        return ckpt_fail(err, MCRT_E_IO, "%s: short read",
                         ckpt_quote(q, sizeof q, file, strlen(file)));
    }
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return MCRT_OK;
}

/* What config.json said, before mapping. -1 / NULL = absent. */
typedef struct hf_values {
    bool is_gpt2;
    int64_t n_embd, n_layer, n_head, n_positions, n_ctx, vocab_size, n_inner;
    double layer_norm_epsilon;
    bool has_eps;
    char activation[32];
    int tie;                 /* -1 absent, 0/1 */
    int scale_attn_weights;  /* -1 absent */
    int scale_by_layer_idx;  /* -1 absent */
    int reorder_and_upcast;  /* -1 absent */
} hf_values;

static mcrt_status bad(ckpt_err *err, const char *file, json_reader *r, const char *key,
                       const char *what)
{
    char q[CKPT_QUOTE_SIZE];
    return ckpt_fail(err, MCRT_E_DATA, "%s: key \"%s\" at byte %zu: %s",
                     ckpt_quote(q, sizeof q, file, strlen(file)), key, json_offset(r), what);
}

static mcrt_status read_int(json_reader *r, const char *file, const char *key, int64_t *out,
                            bool null_ok, ckpt_err *err)
{
    json_kind k = json_peek(r);
    if (k == JSON_NULL && null_ok) {
        json_skip(r);
        *out = -1;
        return MCRT_OK;
    }
    json_number num;
    if (k != JSON_NUMBER || !json_read_number(r, &num) || !num.is_integer || num.overflow ||
        num.value < 1 || num.value > (int64_t)1 << 40)
        return bad(err, file, r, key, null_ok ? "expected a positive integer or null"
                                              : "expected a positive integer");
    *out = num.value;
    return MCRT_OK;
}

static mcrt_status read_bool(json_reader *r, const char *file, const char *key, int *out,
                             ckpt_err *err)
{
    json_kind k = json_peek(r);
    if (k != JSON_TRUE && k != JSON_FALSE)
        return bad(err, file, r, key, "expected true or false");
    json_skip(r);
    *out = k == JSON_TRUE;
    return MCRT_OK;
}

static mcrt_status parse(const char *file, const char *text, size_t len, hf_values *v,
                         ckpt_err *err)
{
    json_reader r;
    json_init(&r, text, len, 0, 16);
    mcrt_status s = MCRT_OK;
    char q[CKPT_QUOTE_SIZE];
    if (!json_open_object(&r)) {
        s = ckpt_fail(err, MCRT_E_DATA, "%s: byte %zu: %s; expected one JSON object",
                      ckpt_quote(q, sizeof q, file, strlen(file)), r.err_offset, json_error(&r));
        json_fini(&r);
        return s;
    }
    const char *key;
    size_t kl;
    int more;
    while (s == MCRT_OK && (more = json_next_member(&r, &key, &kl)) == 1) {
        char name[64];
        if (kl >= sizeof name || memchr(key, '\0', kl) != NULL) {
            if (!json_skip(&r))
                break;
            continue;
        }
        memcpy(name, key, kl);
        name[kl] = '\0';
        if (strcmp(name, "model_type") == 0) {
            const char *val;
            size_t vl;
            if (json_peek(&r) != JSON_STRING || !json_read_string(&r, &val, &vl))
                s = bad(err, file, &r, name, "expected a string");
            else
                v->is_gpt2 = json_eq(val, vl, "gpt2");
        } else if (strcmp(name, "activation_function") == 0) {
            const char *val;
            size_t vl;
            if (json_peek(&r) != JSON_STRING || !json_read_string(&r, &val, &vl) ||
                vl >= sizeof v->activation || memchr(val, '\0', vl) != NULL)
                s = bad(err, file, &r, name, "expected a short string");
            else {
                memcpy(v->activation, val, vl);
                v->activation[vl] = '\0';
            }
        } else if (strcmp(name, "layer_norm_epsilon") == 0) {
            json_number num;
            if (json_peek(&r) != JSON_NUMBER || !json_read_number(&r, &num))
                s = bad(err, file, &r, name, "expected a number");
            else {
                char tmp[64];
                size_t n = num.len < sizeof tmp - 1 ? num.len : sizeof tmp - 1;
                memcpy(tmp, num.text, n);
                tmp[n] = '\0';
                v->layer_norm_epsilon = strtod(tmp, NULL);
                v->has_eps = true;
                if (!(v->layer_norm_epsilon > 0.0 && v->layer_norm_epsilon < 1.0))
                    s = bad(err, file, &r, name, "expected a value in (0, 1)");
            }
        } else if (strcmp(name, "n_embd") == 0) {
            s = read_int(&r, file, name, &v->n_embd, false, err);
        } else if (strcmp(name, "n_layer") == 0) {
            s = read_int(&r, file, name, &v->n_layer, false, err);
        } else if (strcmp(name, "n_head") == 0) {
            s = read_int(&r, file, name, &v->n_head, false, err);
        } else if (strcmp(name, "n_positions") == 0) {
            s = read_int(&r, file, name, &v->n_positions, false, err);
        } else if (strcmp(name, "n_ctx") == 0) {
            s = read_int(&r, file, name, &v->n_ctx, false, err);
        } else if (strcmp(name, "vocab_size") == 0) {
            s = read_int(&r, file, name, &v->vocab_size, false, err);
        } else if (strcmp(name, "n_inner") == 0) {
            s = read_int(&r, file, name, &v->n_inner, true, err);
        } else if (strcmp(name, "tie_word_embeddings") == 0) {
            s = read_bool(&r, file, name, &v->tie, err);
        } else if (strcmp(name, "scale_attn_weights") == 0) {
            s = read_bool(&r, file, name, &v->scale_attn_weights, err);
        } else if (strcmp(name, "scale_attn_by_inverse_layer_idx") == 0) {
            s = read_bool(&r, file, name, &v->scale_by_layer_idx, err);
        } else if (strcmp(name, "reorder_and_upcast_attn") == 0) {
            s = read_bool(&r, file, name, &v->reorder_and_upcast, err);
        } else if (!json_skip(&r)) {
            break;
        }
    }
    if (s == MCRT_OK && (r.failed || !json_finish(&r)))
        s = ckpt_fail(err, MCRT_E_DATA, "%s: byte %zu: %s",
                      ckpt_quote(q, sizeof q, file, strlen(file)), r.err_offset, json_error(&r));
    json_fini(&r);
    return s;
}

static mcrt_status add_int(ckpt *ck, const char *name, int64_t val, ckpt_err *err)
{
    ckpt_arg a = {(char *)name, MCRT_CFG_INT, val, (double)val, NULL, SRC, MCRT_CHECKPOINT_ARG_MODEL_CONFIG};
    return ckpt_add_arg(ck, &a, err);
}

static mcrt_status add_bool(ckpt *ck, const char *name, bool val, ckpt_err *err)
{
    ckpt_arg a = {(char *)name, MCRT_CFG_BOOL, val ? 1 : 0, val ? 1.0 : 0.0, NULL, SRC, MCRT_CHECKPOINT_ARG_MODEL_CONFIG};
    return ckpt_add_arg(ck, &a, err);
}

static mcrt_status add_str(ckpt *ck, const char *name, const char *val, ckpt_err *err)
{
    ckpt_arg a = {(char *)name, MCRT_CFG_STRING, 0, 0.0, (char *)val, SRC, MCRT_CHECKPOINT_ARG_MODEL_CONFIG};
    return ckpt_add_arg(ck, &a, err);
}

static mcrt_status map_gpt2(ckpt *ck, const char *file, const hf_values *v, ckpt_err *err)
{
    char q[CKPT_QUOTE_SIZE];
    const char *act = NULL;
    ckpt_quote(q, sizeof q, file, strlen(file));
    if (v->activation[0] == '\0' || strcmp(v->activation, "gelu_new") == 0 ||
        strcmp(v->activation, "gelu_fast") == 0 || strcmp(v->activation, "gelu_pytorch_tanh") == 0)
        act = "gelu_tanh"; /* GPT2Config's default is gelu_new */
    else if (strcmp(v->activation, "gelu") == 0)
        act = "gelu";
    else
        return ckpt_fail(err, MCRT_E_UNSUPPORTED,
                         "%s: activation_function \"%s\" has no MCore GPT equivalent (supported: "
                         "gelu_new, gelu_fast, gelu_pytorch_tanh, gelu)", q, v->activation);
    if (v->scale_attn_weights == 0 || v->scale_by_layer_idx == 1 || v->reorder_and_upcast == 1)
        return ckpt_fail(err, MCRT_E_UNSUPPORTED,
                         "%s: %s is not supported (MCore GPT scales attention by 1/sqrt(head size) "
                         "only)", q,
                         v->scale_attn_weights == 0 ? "scale_attn_weights: false"
                         : v->scale_by_layer_idx == 1 ? "scale_attn_by_inverse_layer_idx: true"
                                                      : "reorder_and_upcast_attn: true");
    mcrt_status s = MCRT_OK;
    int64_t positions = v->n_positions > 0 ? v->n_positions : v->n_ctx;
    if (v->n_embd > 0 && s == MCRT_OK) s = add_int(ck, "hidden_size", v->n_embd, err);
    if (v->n_layer > 0 && s == MCRT_OK) s = add_int(ck, "num_layers", v->n_layer, err);
    if (v->n_head > 0 && s == MCRT_OK) s = add_int(ck, "num_attention_heads", v->n_head, err);
    if (positions > 0 && s == MCRT_OK)
        s = add_int(ck, "max_position_embeddings", positions, err);
    if (v->vocab_size > 0 && s == MCRT_OK) s = add_int(ck, "vocab_size", v->vocab_size, err);
    if (v->n_inner > 0 && s == MCRT_OK)
        s = add_int(ck, "ffn_hidden_size", v->n_inner, err);
    else if (v->n_embd > 0 && v->n_embd <= INT64_MAX / 4 && s == MCRT_OK)
        s = add_int(ck, "ffn_hidden_size", 4 * v->n_embd, err);
    if (s == MCRT_OK) {
        ckpt_arg a = {(char *)"norm_epsilon", MCRT_CFG_FLOAT, 0,
                      v->has_eps ? v->layer_norm_epsilon : 1e-5, NULL, SRC, MCRT_CHECKPOINT_ARG_MODEL_CONFIG};
        s = ckpt_add_arg(ck, &a, err);
    }
    if (s == MCRT_OK) s = add_str(ck, "activation", act, err);
    if (s == MCRT_OK)
        s = add_bool(ck, "untie_embeddings_and_output_weights", v->tie == 0, err);
    if (s == MCRT_OK) s = add_str(ck, "position_embedding_type", "learned_absolute", err);
    if (s == MCRT_OK) s = add_str(ck, "normalization", "LayerNorm", err);
    if (s == MCRT_OK) s = add_bool(ck, "add_bias_linear", true, err);
    if (s == MCRT_OK) s = add_bool(ck, "add_qkv_bias", true, err);
    return s;
}

mcrt_status ckpt_read_hf_config(ckpt *ck, const char *path, bool is_dir, ckpt_err *err)
{
    char *file = config_path(path, is_dir);
    if (file == NULL)
        return ckpt_fail(err, MCRT_E_NOMEM, "out of memory");
    struct stat st;
    if (stat(file, &st) != 0 || !S_ISREG(st.st_mode)) {
        free(file); /* no config.json: nothing to add */
        return MCRT_OK;
    }
    char *text = NULL;
    size_t len = 0;
    mcrt_status s = read_file(file, &text, &len, err);
    hf_values v;
    memset(&v, 0, sizeof v);
    v.n_embd = v.n_layer = v.n_head = v.n_positions = v.n_ctx = v.vocab_size = v.n_inner = -1;
    v.tie = v.scale_attn_weights = v.scale_by_layer_idx = v.reorder_and_upcast = -1;
    if (s == MCRT_OK)
        s = parse(file, text, len, &v, err);
    if (s == MCRT_OK && v.is_gpt2)
        s = map_gpt2(ck, file, &v, err);
    free(text);
    free(file);
    return s;
}
