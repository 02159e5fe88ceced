"""A plain PyTorch reference of the Megatron-Core GPT forward, for checking mcrt's model plugin.

Written from /work/shared/reference/megatron-inference.md (cited below as "§n"), not from mcrt's
C code. It favours being obviously right over being fast: one function per piece of §2, explicit
shapes, no fused kernels, no autograd. Compute in float64 for expected outputs, float32 for speed.

Shape legend (Megatron's): s = sequence length (tokens in this call), sk = key length
(cached + new), b = batch, h = hidden_size, np = attention heads, ng = query groups (KV heads),
hn = head dim (kv_channels), F = ffn_hidden_size, V = vocab_size, Vp = padded vocab size,
L = layers. Activations are [s, b, h] as in MCore (§2.1); logits come back [b, s, Vp].

Weights are a flat {name: tensor} dict with the MCore state-dict names of §3.2. The canonical
spelling here is the Transformer-Engine one (what dist checkpoints always carry); the local-spec
spelling is accepted and renamed once, at load (`canonical_state_dict`).

Typical use:
    cfg = GPTConfig.from_args({"hidden_size": 64, ...})        # Megatron argument names
    model = MCoreGPT(cfg, state_dict, dtype=torch.float64)
    logits = model.forward(tokens)                               # [b, s] -> [b, s, Vp]
    cache = model.new_cache(batch=b, max_len=...)                # KV-cached decode
    logits = model.forward(tokens, start_pos=0, cache=cache)     # prefill (or a chunk of it)
    logits = model.forward(next_tokens, start_pos=s, cache=cache)
"""

import math

import torch

# ---------------------------------------------------------------------------------------------
# Configuration (§2.2, §2.6)
# ---------------------------------------------------------------------------------------------

ACTIVATIONS = ("gelu", "gelu_tanh", "swiglu", "squared_relu")
NORMALIZATIONS = ("LayerNorm", "RMSNorm")
POSITION_EMBEDDINGS = ("learned_absolute", "rope")

# Every key GPTConfig.from_args understands (Megatron argument names, §2.2), and a few it accepts
# and ignores because they belong to the runtime rather than to the math.
CONFIG_KEYS = (
    "hidden_size", "num_layers", "num_attention_heads", "group_query_attention",
    "num_query_groups", "kv_channels", "ffn_hidden_size", "normalization", "norm_epsilon",
    "layernorm_epsilon", "apply_layernorm_1p", "position_embedding_type", "rotary_percent",
    "rotary_base", "rotary_interleaved", "qk_layernorm", "activation", "add_bias_linear",
    "add_qkv_bias", "untie_embeddings_and_output_weights", "max_position_embeddings",
    "vocab_size", "make_vocab_size_divisible_by", "padded_vocab_size",
)
IGNORED_KEYS = ("name", "load")


def vocab_size_with_padding(vocab_size, make_vocab_size_divisible_by, tensor_parallel_size=1):
    """§2.6 `_vocab_size_with_padding`: Vp = ceil(V / (d·tp)) · (d·tp)."""
    multiple = make_vocab_size_divisible_by * tensor_parallel_size
    return ((vocab_size + multiple - 1) // multiple) * multiple


class GPTConfig:
    """The hyper-parameters of §2.2, with Megatron's defaults and derived sizes."""

    def __init__(self, **args):
        unknown = sorted(set(args) - set(CONFIG_KEYS) - set(IGNORED_KEYS))
        if unknown:
            raise ValueError("unknown config key(s): %s" % ", ".join(unknown))

        def get(key, default):
            return args[key] if args.get(key) is not None else default

        for key in ("hidden_size", "num_layers", "num_attention_heads", "vocab_size"):
            if key not in args:
                raise ValueError("config key %s is required" % key)
        self.hidden_size = int(args["hidden_size"])                       # h
        self.num_layers = int(args["num_layers"])                         # L
        self.num_attention_heads = int(args["num_attention_heads"])       # np

        # GQA (§2.2): Megatron ignores --num-query-groups unless --group-query-attention is
        # given. Here num_query_groups applies unless group_query_attention is explicitly false.
        if args.get("group_query_attention") is False:
            self.num_query_groups = self.num_attention_heads
        else:
            self.num_query_groups = int(get("num_query_groups", self.num_attention_heads))  # ng

        if args.get("kv_channels") is None and self.hidden_size % self.num_attention_heads:
            raise ValueError("hidden_size %d is not divisible by num_attention_heads %d"
                             % (self.hidden_size, self.num_attention_heads))
        self.kv_channels = int(get("kv_channels", self.hidden_size // self.num_attention_heads))  # hn
        self.ffn_hidden_size = int(get("ffn_hidden_size", 4 * self.hidden_size))  # F

        self.normalization = get("normalization", "LayerNorm")
        # norm_epsilon is the CLI name (--norm-epsilon), layernorm_epsilon the TransformerConfig field.
        if args.get("norm_epsilon") is not None and args.get("layernorm_epsilon") is not None \
                and float(args["norm_epsilon"]) != float(args["layernorm_epsilon"]):
            raise ValueError("norm_epsilon and layernorm_epsilon disagree")
        self.norm_epsilon = float(get("norm_epsilon", get("layernorm_epsilon", 1e-5)))
        self.apply_layernorm_1p = bool(get("apply_layernorm_1p", False))
        self.qk_layernorm = bool(get("qk_layernorm", False))

        self.position_embedding_type = get("position_embedding_type", "learned_absolute")
        self.rotary_percent = float(get("rotary_percent", 1.0))
        self.rotary_base = int(get("rotary_base", 10000))
        self.rotary_interleaved = bool(get("rotary_interleaved", False))
        self.max_position_embeddings = int(get("max_position_embeddings", 0))

        self.add_bias_linear = bool(get("add_bias_linear", True))
        # §2.2: add_qkv_bias is forced true when add_bias_linear is.
        self.add_qkv_bias = bool(get("add_qkv_bias", False)) or self.add_bias_linear
        # §2.4: the default GELU is the tanh form when the bias-gelu fusion runs (it does with
        # biases), else exact erf. An explicit `activation` overrides.
        self.activation = get("activation", "gelu_tanh" if self.add_bias_linear else "gelu")
        self.untie_embeddings_and_output_weights = bool(
            get("untie_embeddings_and_output_weights", False))

        self.vocab_size = int(args["vocab_size"])                          # V
        self.make_vocab_size_divisible_by = int(get("make_vocab_size_divisible_by", 128))
        if args.get("padded_vocab_size") is not None:                       # Vp as saved in args
            self.padded_vocab_size = int(args["padded_vocab_size"])
        else:
            self.padded_vocab_size = vocab_size_with_padding(
                self.vocab_size, self.make_vocab_size_divisible_by)
        self._validate()

    @classmethod
    def from_args(cls, args):
        """A config from a {Megatron argument name: value} dict (§2.2)."""
        return cls(**args)

    def _validate(self):
        """The combinations §2.2-§2.6 cannot run (the plugin must refuse them too)."""
        if self.normalization not in NORMALIZATIONS:
            raise ValueError("normalization must be one of %s" % (NORMALIZATIONS,))
        if self.position_embedding_type not in POSITION_EMBEDDINGS:
            raise ValueError("position_embedding_type must be one of %s" % (POSITION_EMBEDDINGS,))
        if self.activation not in ACTIVATIONS:
            raise ValueError("activation must be one of %s" % (ACTIVATIONS,))
        if self.num_attention_heads % self.num_query_groups:
            raise ValueError("num_query_groups %d does not divide num_attention_heads %d"
                             % (self.num_query_groups, self.num_attention_heads))
        if self.padded_vocab_size < self.vocab_size:
            raise ValueError("padded_vocab_size %d < vocab_size %d"
                             % (self.padded_vocab_size, self.vocab_size))
        if self.position_embedding_type == "learned_absolute" and self.max_position_embeddings <= 0:
            raise ValueError("learned_absolute positions need max_position_embeddings")
        if self.position_embedding_type == "rope":
            if not 0.0 < self.rotary_percent <= 1.0:
                raise ValueError("rotary_percent must be in (0, 1]")
            if self.rotary_dim() % 2:
                raise ValueError("int(kv_channels * rotary_percent) = %d must be even"
                                 % self.rotary_dim())

    def rotary_dim(self):
        """§2.3: the rotated channels of each head, dim = int(hn · rotary_percent)."""
        return int(self.kv_channels * self.rotary_percent)

    def as_args(self):
        """The config as Megatron argument names (every key explicit)."""
        out = {
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_query_groups": self.num_query_groups,
            "kv_channels": self.kv_channels,
            "ffn_hidden_size": self.ffn_hidden_size,
            "normalization": self.normalization,
            "norm_epsilon": self.norm_epsilon,
            "apply_layernorm_1p": self.apply_layernorm_1p,
            "qk_layernorm": self.qk_layernorm,
            "position_embedding_type": self.position_embedding_type,
            "max_position_embeddings": self.max_position_embeddings,
            "activation": self.activation,
            "add_bias_linear": self.add_bias_linear,
            "add_qkv_bias": self.add_qkv_bias,
            "untie_embeddings_and_output_weights": self.untie_embeddings_and_output_weights,
            "vocab_size": self.vocab_size,
            "padded_vocab_size": self.padded_vocab_size,
        }
        if self.position_embedding_type == "rope":
            out["rotary_percent"] = self.rotary_percent
            out["rotary_base"] = self.rotary_base
            out["rotary_interleaved"] = self.rotary_interleaved
        return out


# ---------------------------------------------------------------------------------------------
# State-dict names (§3.2)
# ---------------------------------------------------------------------------------------------

# TE spelling (fused norms) <-> local spelling (separate norm modules), per layer (§3.2).
TE_TO_LOCAL = {
    "self_attention.linear_qkv.layer_norm_weight": "input_layernorm.weight",
    "self_attention.linear_qkv.layer_norm_bias": "input_layernorm.bias",
    "mlp.linear_fc1.layer_norm_weight": "pre_mlp_layernorm.weight",
    "mlp.linear_fc1.layer_norm_bias": "pre_mlp_layernorm.bias",
}
LOCAL_TO_TE = {local: te for te, local in TE_TO_LOCAL.items()}


def expected_shapes(cfg):
    """Every MCore (TE-spelled) weight name of this config and its shape at tp = pp = 1 (§3.2)."""
    h, hn, F = cfg.hidden_size, cfg.kv_channels, cfg.ffn_hidden_size
    np_, ng, Vp = cfg.num_attention_heads, cfg.num_query_groups, cfg.padded_vocab_size
    has_norm_bias = cfg.normalization == "LayerNorm"       # §2.5: RMSNorm has no β
    shapes = {"embedding.word_embeddings.weight": [Vp, h]}
    if cfg.position_embedding_type == "learned_absolute":
        shapes["embedding.position_embeddings.weight"] = [cfg.max_position_embeddings, h]
    for i in range(cfg.num_layers):
        p = "decoder.layers.%d." % i
        shapes[p + "self_attention.linear_qkv.layer_norm_weight"] = [h]
        if has_norm_bias:
            shapes[p + "self_attention.linear_qkv.layer_norm_bias"] = [h]
        shapes[p + "self_attention.linear_qkv.weight"] = [(np_ + 2 * ng) * hn, h]
        if cfg.add_qkv_bias:
            shapes[p + "self_attention.linear_qkv.bias"] = [(np_ + 2 * ng) * hn]
        if cfg.qk_layernorm:
            for qk in ("q_layernorm", "k_layernorm"):
                shapes[p + "self_attention.%s.weight" % qk] = [hn]
                if has_norm_bias:
                    shapes[p + "self_attention.%s.bias" % qk] = [hn]
        shapes[p + "self_attention.linear_proj.weight"] = [h, np_ * hn]
        if cfg.add_bias_linear:
            shapes[p + "self_attention.linear_proj.bias"] = [h]
        shapes[p + "mlp.linear_fc1.layer_norm_weight"] = [h]
        if has_norm_bias:
            shapes[p + "mlp.linear_fc1.layer_norm_bias"] = [h]
        fc1_rows = 2 * F if cfg.activation == "swiglu" else F
        shapes[p + "mlp.linear_fc1.weight"] = [fc1_rows, h]
        if cfg.add_bias_linear:
            shapes[p + "mlp.linear_fc1.bias"] = [fc1_rows]
        shapes[p + "mlp.linear_fc2.weight"] = [h, F]
        if cfg.add_bias_linear:
            shapes[p + "mlp.linear_fc2.bias"] = [h]
    shapes["decoder.final_layernorm.weight"] = [h]
    if has_norm_bias:
        shapes["decoder.final_layernorm.bias"] = [h]
    if cfg.untie_embeddings_and_output_weights:
        shapes["output_layer.weight"] = [Vp, h]
    return shapes


def _split_layer_name(name):
    """§3.2 key -> (layer prefix, rest):
    'decoder.layers.3.mlp.linear_fc2.weight' -> ('decoder.layers.3.', 'mlp.linear_fc2.weight')."""
    parts = name.split(".")
    if len(parts) > 3 and parts[0] == "decoder" and parts[1] == "layers" and parts[2].isdigit():
        return ".".join(parts[:3]) + ".", ".".join(parts[3:])
    return "", name


def to_local_names(state_dict):
    """Rename TE-spelled keys to the local-spec spelling (§3.2); other keys are unchanged."""
    out = {}
    for name, t in state_dict.items():
        prefix, rest = _split_layer_name(name)
        out[prefix + TE_TO_LOCAL.get(rest, rest)] = t
    return out


def canonical_state_dict(cfg, state_dict):
    """Map a MCore state dict (TE or local spelling) onto the TE names and check it (§3.2).

    Drops keys ending in `._extra_state` and `rotary_pos_emb.inv_freq` (§3.2 says to ignore them);
    every other key must be one this config expects, with the expected shape, and none may be
    missing. A tied model may carry `output_layer.weight` (PP > 1 checkpoints do); it must then
    equal the word embeddings, and is dropped.
    """
    shapes = expected_shapes(cfg)
    out = {}
    for name, t in state_dict.items():
        if name.endswith("._extra_state") or name.endswith("rotary_pos_emb.inv_freq"):
            continue
        prefix, rest = _split_layer_name(name)
        te_name = prefix + LOCAL_TO_TE.get(rest, rest)
        if te_name in out:
            raise ValueError("tensor %s given twice (TE and local spelling)" % te_name)
        out[te_name] = t
    if not cfg.untie_embeddings_and_output_weights and "output_layer.weight" in out:
        if not torch.equal(out["output_layer.weight"], out["embedding.word_embeddings.weight"]):
            raise ValueError("tied model: output_layer.weight differs from the word embeddings")
        del out["output_layer.weight"]
    for name, shape in shapes.items():
        if name not in out:
            raise ValueError("missing tensor %s" % name)
        if list(out[name].shape) != shape:
            raise ValueError("tensor %s has shape %s, expected %s"
                             % (name, list(out[name].shape), shape))
    extra = sorted(set(out) - set(shapes))
    if extra:
        raise ValueError("unexpected tensor(s) for this config: %s" % ", ".join(extra))
    return out


# ---------------------------------------------------------------------------------------------
# Pieces of the forward
# ---------------------------------------------------------------------------------------------

def norm(cfg, x, weight, bias):
    """§2.5 LayerNorm or RMSNorm over the last dim of x (any leading shape); γ → 1+γ with 1p."""
    gamma = 1.0 + weight if cfg.apply_layernorm_1p else weight           # [d]
    if cfg.normalization == "LayerNorm":
        mean = x.mean(dim=-1, keepdim=True)                               # [..., 1]
        var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)                # [..., 1] biased variance
        return (x - mean) / torch.sqrt(var + cfg.norm_epsilon) * gamma + bias
    mean_sq = (x * x).mean(dim=-1, keepdim=True)                          # [..., 1]
    return x / torch.sqrt(mean_sq + cfg.norm_epsilon) * gamma


def rope_cos_sin(cfg, positions, dtype):
    """§2.3 the RoPE tables for `positions` [s] (int64): cos, sin [s, 1, 1, dim].

    As in MCore, inv_freq, the angles and cos/sin are computed in float32 and only then cast to
    the activation dtype. Interleaved layout: each frequency twice in a row [f0, f0, f1, f1, ...];
    rotate-half layout: the frequencies twice over [f0, f1, ..., f0, f1, ...].
    """
    dim = cfg.rotary_dim()
    inv_freq = 1.0 / (cfg.rotary_base ** (
        torch.arange(0, dim, 2, dtype=torch.float32) / dim))              # [dim/2]
    freqs = torch.outer(positions.to(torch.float32), inv_freq)          # [s, dim/2]
    if cfg.rotary_interleaved:
        emb = torch.stack((freqs, freqs), dim=-1).reshape(freqs.shape[0], dim)  # [s, dim]
    else:
        emb = torch.cat((freqs, freqs), dim=-1)                           # [s, dim]
    emb = emb[:, None, None, :]                                           # [s, 1, 1, dim]
    return torch.cos(emb).to(dtype), torch.sin(emb).to(dtype)


def rotate(cfg, x):
    """§2.3 rot(x) over the last dim (size dim): rotate-half cat(-x2, x1), or interleaved pairs."""
    if cfg.rotary_interleaved:
        x_even = x[..., 0::2]                                             # [..., dim/2]
        x_odd = x[..., 1::2]                                              # [..., dim/2]
        return torch.stack((-x_odd, x_even), dim=-1).reshape(x.shape)     # [..., dim]
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)             # [..., dim]


def apply_rope(cfg, x, cos, sin):
    """§2.3 rotate the first `dim` channels of each head of x [s, b, n, hn]; pass the rest."""
    dim = cfg.rotary_dim()
    x_rot, x_pass = x[..., :dim], x[..., dim:]                            # [s,b,n,dim], [s,b,n,hn-dim]
    x_rot = x_rot * cos + rotate(cfg, x_rot) * sin                        # [s, b, n, dim]
    return torch.cat((x_rot, x_pass), dim=-1)                             # [s, b, n, hn]


def gelu_tanh(x):
    """§2.4 the tanh GELU of Megatron's fused bias-gelu (= HF gelu_new), with its constant."""
    return 0.5 * x * (1.0 + torch.tanh(0.79788456 * x * (1.0 + 0.044715 * x * x)))


def gelu_erf(x):
    """§2.4 exact GELU (F.gelu): x · Φ(x)."""
    return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))


def activation(cfg, y):
    """§2.4 the MLP activation of fc1's output y [s, b, F] (or [s, b, 2F] for SwiGLU)."""
    if cfg.activation == "gelu_tanh":
        return gelu_tanh(y)
    if cfg.activation == "gelu":
        return gelu_erf(y)
    if cfg.activation == "squared_relu":
        return torch.relu(y) ** 2
    gate, up = torch.chunk(y, 2, dim=-1)                                  # [s,b,F] each; first half = gate
    return gate * torch.sigmoid(gate) * up                                # silu(gate) · up


class KVCache:
    """Megatron's static KV cache (§1.6.4): per layer K and V of [max_len, b, ng, hn].

    Keys are cached after RoPE (equal to v0.9's re-rotation of unrotated keys). All b sequences
    of the cache advance together; `forward(tokens, start_pos, cache)` writes positions
    [start_pos, start_pos + s) and attends over [0, start_pos + s).
    """

    def __init__(self, cfg, batch, max_len, dtype):
        shape = (max_len, batch, cfg.num_query_groups, cfg.kv_channels)
        self.keys = [torch.zeros(shape, dtype=dtype) for _ in range(cfg.num_layers)]
        self.values = [torch.zeros(shape, dtype=dtype) for _ in range(cfg.num_layers)]
        self.max_len = max_len


# ---------------------------------------------------------------------------------------------
# The model
# ---------------------------------------------------------------------------------------------

class MCoreGPT:
    """GPTModel.forward of §2.1 over a MCore state dict, in `dtype` (weights upcast once)."""

    def __init__(self, cfg, state_dict, dtype=torch.float64):
        self.cfg = cfg
        self.dtype = dtype
        self.w = {name: t.to(dtype) for name, t in canonical_state_dict(cfg, state_dict).items()}

    def new_cache(self, batch, max_len):
        """An empty §1.6.4 static cache for `batch` sequences of up to `max_len` positions."""
        return KVCache(self.cfg, batch, max_len, self.dtype)

    def _w(self, name):
        """An optional weight (biases, norm betas): the tensor, or None when the config has none."""
        return self.w.get(name)

    def linear(self, x, weight_name, bias_name):
        """§2.3/§2.4 y = x W^T (+ b): Column/RowParallelLinear at tp = 1; W is [out, in]."""
        y = torch.matmul(x, self.w[weight_name].t())                      # [..., out]
        bias = self._w(bias_name)
        return y + bias if bias is not None else y

    def embed(self, tokens, positions):
        """§2.1 / §2.6 LanguageModelEmbedding: tokens [b, s], positions [s] -> x [s, b, h]."""
        cfg = self.cfg
        if int(tokens.min()) < 0 or int(tokens.max()) >= cfg.vocab_size:
            raise ValueError("token id outside [0, %d)" % cfg.vocab_size)
        if cfg.max_position_embeddings > 0 and int(positions.max()) >= cfg.max_position_embeddings:
            raise ValueError("position >= max_position_embeddings %d" % cfg.max_position_embeddings)
        x = self.w["embedding.word_embeddings.weight"][tokens]            # [b, s, h]
        if cfg.position_embedding_type == "learned_absolute":
            x = x + self.w["embedding.position_embeddings.weight"][positions][None, :, :]  # [b, s, h]
        return x.transpose(0, 1)                                          # [s, b, h]

    def attention(self, i, x, positions, cache):
        """§2.3 SelfAttention of layer i on the normed input x [s, b, h] -> [s, b, h].

        Causal over absolute positions: the query at position p sees keys at positions <= p,
        which covers prefill (cache empty), chunked prefill and one-token decode alike.
        """
        cfg = self.cfg
        p = "decoder.layers.%d.self_attention." % i
        s, b, _ = x.shape
        np_, ng, hn = cfg.num_attention_heads, cfg.num_query_groups, cfg.kv_channels
        heads_per_group = np_ // ng

        # linear_qkv, rows group-major: for each group g, [q of its np/ng heads; k_g; v_g].
        qkv = self.linear(x, p + "linear_qkv.weight", p + "linear_qkv.bias")  # [s, b, (np+2ng)·hn]
        qkv = qkv.view(s, b, ng, (heads_per_group + 2) * hn)             # [s, b, ng, (np/ng+2)·hn]
        q, k, v = torch.split(qkv, [heads_per_group * hn, hn, hn], dim=-1)
        # query head j belongs to group j // (np/ng)
        q = q.reshape(s, b, np_, hn)                                      # [s, b, np, hn]
        # k, v: [s, b, ng, hn]

        if cfg.qk_layernorm:                                              # per head over hn, before RoPE
            q = norm(cfg, q, self.w[p + "q_layernorm.weight"], self._w(p + "q_layernorm.bias"))
            k = norm(cfg, k, self.w[p + "k_layernorm.weight"], self._w(p + "k_layernorm.bias"))

        if cfg.position_embedding_type == "rope":
            cos, sin = rope_cos_sin(cfg, positions, x.dtype)              # [s, 1, 1, dim] each
            q = apply_rope(cfg, q, cos, sin)                              # [s, b, np, hn]
            k = apply_rope(cfg, k, cos, sin)                              # [s, b, ng, hn]

        start = int(positions[0])
        if cache is not None:
            if start + s > cache.max_len:
                raise ValueError("KV cache of %d positions is too small" % cache.max_len)
            cache.keys[i][start:start + s] = k
            cache.values[i][start:start + s] = v
            k = cache.keys[i][:start + s]                                 # [sk, b, ng, hn]
            v = cache.values[i][:start + s]                               # [sk, b, ng, hn]
            key_positions = torch.arange(0, start + s)                    # [sk]
        else:
            if start != 0:
                raise ValueError("without a cache the sequence must start at position 0")
            key_positions = positions                                     # [sk] = [s]

        # GQA: every query head attends with its group's K/V (repeat_interleave, §2.3).
        k = torch.repeat_interleave(k, heads_per_group, dim=2)            # [sk, b, np, hn]
        v = torch.repeat_interleave(v, heads_per_group, dim=2)            # [sk, b, np, hn]

        scores = torch.einsum("qbnd,kbnd->bnqk", q, k) / math.sqrt(hn)   # [b, np, s, sk]
        masked = key_positions[None, :] > positions[:, None]              # [s, sk] True = future key
        # MCore's local implementation fills −10000; after the softmax both are exact zeros.
        scores = scores.masked_fill(masked, float("-inf"))               # [b, np, s, sk]
        probs = torch.softmax(scores, dim=-1)                             # [b, np, s, sk]
        context = torch.einsum("bnqk,kbnd->qbnd", probs, v)               # [s, b, np, hn]
        context = context.reshape(s, b, np_ * hn)                         # [s, b, np·hn] head-major
        return self.linear(context, p + "linear_proj.weight", p + "linear_proj.bias")  # [s, b, h]

    def mlp(self, i, x):
        """§2.4 MLP of layer i on the normed input x [s, b, h] -> [s, b, h]."""
        p = "decoder.layers.%d.mlp." % i
        y = self.linear(x, p + "linear_fc1.weight", p + "linear_fc1.bias")  # [s, b, F] or [s, b, 2F]
        y = activation(self.cfg, y)                                       # [s, b, F]
        return self.linear(y, p + "linear_fc2.weight", p + "linear_fc2.bias")  # [s, b, h]

    def layer(self, i, x, positions, cache):
        """§2.1 TransformerLayer (pre-norm, residual = the pre-norm input): [s, b, h] -> [s, b, h]."""
        cfg = self.cfg
        p = "decoder.layers.%d." % i
        normed = norm(cfg, x, self.w[p + "self_attention.linear_qkv.layer_norm_weight"],
                      self._w(p + "self_attention.linear_qkv.layer_norm_bias"))   # [s, b, h]
        x = x + self.attention(i, normed, positions, cache)               # [s, b, h]
        normed = norm(cfg, x, self.w[p + "mlp.linear_fc1.layer_norm_weight"],
                      self._w(p + "mlp.linear_fc1.layer_norm_bias"))      # [s, b, h]
        return x + self.mlp(i, normed)                                    # [s, b, h]

    def forward(self, tokens, start_pos=0, cache=None):
        """§2.1 GPTModel.forward: tokens [b, s] at positions start_pos.. -> logits [b, s, Vp].

        Without a cache the tokens are the whole sequence (start_pos must be 0). With a cache,
        they continue it: the cache's positions [0, start_pos) must already be filled.
        """
        cfg = self.cfg
        tokens = torch.as_tensor(tokens, dtype=torch.int64)
        if tokens.dim() == 1:
            tokens = tokens[None, :]                                      # [1, s]
        b, s = tokens.shape
        positions = torch.arange(start_pos, start_pos + s)                # [s]
        x = self.embed(tokens, positions)                                 # [s, b, h]
        for i in range(cfg.num_layers):
            x = self.layer(i, x, positions, cache)                        # [s, b, h]
        x = norm(cfg, x, self.w["decoder.final_layernorm.weight"],
                 self._w("decoder.final_layernorm.bias"))                 # [s, b, h]
        if cfg.untie_embeddings_and_output_weights:
            w_out = self.w["output_layer.weight"]                         # [Vp, h]
        else:
            w_out = self.w["embedding.word_embeddings.weight"]            # [Vp, h] (tied)
        logits = torch.matmul(x, w_out.t())                               # [s, b, Vp], no bias
        return logits.transpose(0, 1).contiguous()                        # [b, s, Vp]


# ---------------------------------------------------------------------------------------------
# Greedy generation (§1.5.4 greedy = argmax over the real vocabulary)
# ---------------------------------------------------------------------------------------------

def greedy_token(cfg, logits_row):
    """§1.5.4 greedy: argmax over the real ids [0, V) of one logits row [Vp]; the lowest id wins a tie."""
    real = logits_row[:cfg.vocab_size]                                    # [V]
    best = real.max()
    return int(torch.nonzero(real == best)[0, 0])


def greedy_full_recompute(model, prompt, steps):
    """Prompt logits, then `steps` greedy decode steps, each by recomputing the whole sequence
    (§1.5.3's loop without a cache).

    prompt: list of L ids. Returns (prompt_logits [L, Vp], decode_logits [steps, Vp],
    tokens [steps + 1]) where tokens[0] = argmax(prompt_logits[-1]) and decode step k feeds
    tokens[k] at position L + k and gives decode_logits[k], whose argmax is tokens[k + 1].
    """
    cfg = model.cfg
    prompt_logits = model.forward(torch.tensor([prompt]))[0]              # [L, Vp]
    tokens = [greedy_token(cfg, prompt_logits[-1])]
    rows = []
    for _ in range(steps):
        seq = torch.tensor([list(prompt) + tokens])                       # [1, L + k + 1]
        row = model.forward(seq)[0, -1]                                   # [Vp]
        rows.append(row)
        tokens.append(greedy_token(cfg, row))
    if rows:
        decode_logits = torch.stack(rows)                                 # [steps, Vp]
    else:
        decode_logits = prompt_logits.new_zeros((0, cfg.padded_vocab_size))
    return prompt_logits, decode_logits, tokens


def greedy_cached(model, prompts, steps, prefill_chunk=None):
    """The same as greedy_full_recompute for b equal-length prompts, through the §1.6.4 KV cache.

    prompts: [b, L] ids. The prompt runs in one call (or in chunks of `prefill_chunk` tokens),
    then each decode step feeds one token per sequence. Returns (prompt_logits [b, L, Vp],
    decode_logits [b, steps, Vp], tokens [b, steps + 1]).
    """
    cfg = model.cfg
    prompts = torch.as_tensor(prompts, dtype=torch.int64)
    b, L = prompts.shape
    cache = model.new_cache(b, L + steps)
    chunk = prefill_chunk or L
    pieces = []
    for start in range(0, L, chunk):
        pieces.append(model.forward(prompts[:, start:start + chunk], start, cache))  # [b, c, Vp]
    prompt_logits = torch.cat(pieces, dim=1)                              # [b, L, Vp]
    tokens = [[greedy_token(cfg, prompt_logits[j, -1])] for j in range(b)]
    rows = []
    for k in range(steps):
        step_tokens = torch.tensor([[t[-1]] for t in tokens])             # [b, 1]
        row = model.forward(step_tokens, L + k, cache)[:, 0]              # [b, Vp]
        rows.append(row)
        for j in range(b):
            tokens[j].append(greedy_token(cfg, row[j]))
    if rows:
        decode_logits = torch.stack(rows, dim=1)                          # [b, steps, Vp]
    else:
        decode_logits = prompt_logits.new_zeros((b, 0, cfg.padded_vocab_size))
    return prompt_logits, decode_logits, torch.tensor(tokens)
