#!/usr/bin/python3
"""Self-checks of the PyTorch GPT reference (tools/reference/gpt/) and of its fixtures.

    /usr/bin/python3 tests/reference/test_reference.py [--fixtures DIR] [-k SUBSTRING]

DIR holds fixtures made by make_fixtures.py (meson passes the ones it regenerated in the build
dir); without it they are made into a temporary folder first. Exit 0 when every check passes,
1 when one fails, 77 (skip) when python3-torch is not installed.

What is checked, and against what (never the reference against itself where avoidable):
  safetensors   the writer's bytes through an independent reader below, and one file by hand
  norms         LayerNorm / RMSNorm (and 1+γ) against values computed by hand
  activations   GELU tanh / erf, squared ReLU, SwiGLU (first half the gate) by hand
  rope          the rotation by hand; interleaved = rotate-half up to the documented permutation,
                per vector and for a whole model with its q/k rows permuted
  gqa           groups == heads against a plain per-head attention written here; GQA against
                MHA with each group's K/V copied to its heads
  vocab         padding rows of the embedding / output layer never change real-id logits
  names         TE and local spellings load to the same model; fixture files use the spelling
                their config says
  hf            the HF GPT-2 copy, mapped back by a small loop-based function here, equals the
                MCore weights bit for bit and gives identical logits
  kv cache      KV-cached decode (one step at a time, chunked prefill, batched) equals the
                fixtures' full recomputation within 1e-5 in float64; float32 math stays within
                the documented tolerance
  bad input     the reference refuses what the plugin must refuse
  determinism   make_fixtures.py makes the same bytes twice (and the same as DIR's)
"""

import argparse
import json
import math
import os
import struct
import subprocess
import sys
import tempfile
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
TOOLS = os.path.join(REPO, "tools", "reference", "gpt")

try:
    import numpy as np
    import torch
except ImportError as e:
    print("SKIP: python3-torch / python3-numpy not installed (%s)" % e)
    sys.exit(77)

sys.path.insert(0, TOOLS)
import make_fixtures as mf       # noqa: E402
import mcore_gpt as mg           # noqa: E402
import safetensors_io as st      # noqa: E402

torch.set_num_threads(1)
F64 = torch.float64


# ---------------------------------------------------------------------------------------------
# Independent helpers: a safetensors reader, a config.yaml reader, the HF -> MCore mapping
# ---------------------------------------------------------------------------------------------

def read_safetensors(path_or_bytes):
    """A tiny safetensors reader, written apart from tools/.../safetensors_io.py.
    Returns ({name: torch tensor}, metadata, header dict, header length)."""
    if isinstance(path_or_bytes, (bytes, bytearray)):
        blob = bytes(path_or_bytes)
    else:
        with open(path_or_bytes, "rb") as f:
            blob = f.read()
    n = int.from_bytes(blob[0:8], "little")
    header = json.loads(blob[8:8 + n])
    body = memoryview(blob)[8 + n:]
    sizes = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
             "U8": 1, "BOOL": 1}
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        count = int(np.prod(info["shape"], dtype=np.int64))
        assert b - a == count * sizes[info["dtype"]], name
        raw = bytes(body[a:b])
        kind = info["dtype"]
        if kind == "BF16":                       # bf16 = the top half of an fp32
            u16 = np.frombuffer(raw, dtype="<u2").astype(np.uint32)
            arr = (u16 << np.uint32(16)).view(np.float32)
            t = torch.from_numpy(arr.copy()).to(torch.bfloat16)
        elif kind == "BOOL":
            t = torch.from_numpy(np.frombuffer(raw, dtype=np.uint8).copy()) != 0
        else:
            np_type = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4",
                       "I16": "<i2", "I8": "i1", "U8": "u1"}[kind]
            t = torch.from_numpy(np.frombuffer(raw, dtype=np_type).copy())
        out[name] = t.reshape(info["shape"])
    return out, header.get("__metadata__", {}), header, n


def read_model_yaml(path):
    """The flat `model:` section of a fixture's config.yaml (the only YAML make_fixtures writes)."""
    keys, in_model = {}, False
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].rstrip()
            if not line:
                continue
            if not line.startswith(" "):
                in_model = line == "model:"
                continue
            if in_model:
                key, _, value = line.strip().partition(":")
                value = value.strip()
                if value in ("true", "false"):
                    keys[key] = value == "true"
                else:
                    try:
                        keys[key] = int(value)
                    except ValueError:
                        try:
                            keys[key] = float(value)
                        except ValueError:
                            keys[key] = value
    return keys


def hf_gpt2_to_mcore(hf, hf_config, padded_vocab_size):
    """HF GPT-2 tensors -> TE-named MCore tensors (§3.8), with explicit index loops so it shares
    no reshaping code with make_fixtures.mcore_to_hf_gpt2."""
    h, n_head, n_layer = hf_config["n_embd"], hf_config["n_head"], hf_config["n_layer"]
    hn = h // n_head
    wte = hf["transformer.wte.weight"]                                    # [V, h]
    emb = torch.zeros(padded_vocab_size, h, dtype=wte.dtype)              # [Vp, h], zero padding
    emb[:wte.shape[0]] = wte
    out = {"embedding.word_embeddings.weight": emb,
           "embedding.position_embeddings.weight": hf["transformer.wpe.weight"].clone()}
    for i in range(n_layer):
        p, m = "transformer.h.%d." % i, "decoder.layers.%d." % i
        c_attn_w = hf[p + "attn.c_attn.weight"]                           # [h, 3h] = [in, out]
        c_attn_b = hf[p + "attn.c_attn.bias"]                             # [3h], [Q; K; V]
        qkv_w = torch.empty(3 * h, h, dtype=c_attn_w.dtype)               # [3h, h] per head q,k,v
        qkv_b = torch.empty(3 * h, dtype=c_attn_b.dtype)
        for head in range(n_head):
            for part in range(3):                                         # 0 = q, 1 = k, 2 = v
                dst = (3 * head + part) * hn
                src = part * h + head * hn
                for r in range(hn):
                    qkv_w[dst + r] = c_attn_w[:, src + r]
                    qkv_b[dst + r] = c_attn_b[src + r]
        out[m + "self_attention.linear_qkv.weight"] = qkv_w
        out[m + "self_attention.linear_qkv.bias"] = qkv_b
        out[m + "self_attention.linear_qkv.layer_norm_weight"] = hf[p + "ln_1.weight"]
        out[m + "self_attention.linear_qkv.layer_norm_bias"] = hf[p + "ln_1.bias"]
        out[m + "self_attention.linear_proj.weight"] = hf[p + "attn.c_proj.weight"].t().contiguous()
        out[m + "self_attention.linear_proj.bias"] = hf[p + "attn.c_proj.bias"]
        out[m + "mlp.linear_fc1.layer_norm_weight"] = hf[p + "ln_2.weight"]
        out[m + "mlp.linear_fc1.layer_norm_bias"] = hf[p + "ln_2.bias"]
        out[m + "mlp.linear_fc1.weight"] = hf[p + "mlp.c_fc.weight"].t().contiguous()
        out[m + "mlp.linear_fc1.bias"] = hf[p + "mlp.c_fc.bias"]
        out[m + "mlp.linear_fc2.weight"] = hf[p + "mlp.c_proj.weight"].t().contiguous()
        out[m + "mlp.linear_fc2.bias"] = hf[p + "mlp.c_proj.bias"]
    out["decoder.final_layernorm.weight"] = hf["transformer.ln_f.weight"]
    out["decoder.final_layernorm.bias"] = hf["transformer.ln_f.bias"]
    return out


# ---------------------------------------------------------------------------------------------
# Fixture access
# ---------------------------------------------------------------------------------------------

FIXTURES = None        # set in main()


def fixture_dirs():
    """[(config name, variant, dir)] for every fixture dir."""
    out = []
    for spec in mf.CONFIGS:
        for variant in spec["variants"]:
            out.append((spec["name"], variant, os.path.join(FIXTURES, spec["name"], variant)))
    return out


def spec_of(name):
    return next(s for s in mf.CONFIGS if s["name"] == name)


def load_fixture(name, variant="fp32"):
    """(cfg, tensors as in the file, expected tensors, expected metadata) of one fixture dir."""
    d = os.path.join(FIXTURES, name, variant)
    args = read_model_yaml(os.path.join(d, "config.yaml"))
    args.pop("name")
    args.pop("load")
    cfg = mg.GPTConfig.from_args(args)
    weights = read_safetensors(os.path.join(d, "model.safetensors"))[0]
    expected, meta, _, _ = read_safetensors(os.path.join(d, "expected.safetensors"))
    return cfg, weights, expected, meta


def fixture_model(name, variant="fp32", dtype=F64):
    cfg, weights, expected, meta = load_fixture(name, variant)
    return mg.MCoreGPT(cfg, weights, dtype=dtype), expected, meta


def prompt_of(expected, j):
    n = int(expected["prompt_lengths"][j])
    return [int(t) for t in expected["tokens"][j, :n]]


def max_abs(a, b):
    return float((a.to(F64) - b.to(F64)).abs().max()) if a.numel() else 0.0


# ---------------------------------------------------------------------------------------------
# Checks
# ---------------------------------------------------------------------------------------------

def check_safetensors_by_hand():
    """One tiny file written out by hand, byte for byte."""
    blob = st.encode({"a": torch.tensor([1.0, -2.0], dtype=torch.float32)}, {"k": "v"})
    header = b'{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
    header += b" " * (-(8 + len(header)) % 8)
    want = struct.pack("<Q", len(header)) + header + struct.pack("<ff", 1.0, -2.0)
    assert blob == want, (blob, want)


def check_safetensors_roundtrip():
    """Every dtype the fixtures use, odd shapes (0-d, empty), metadata; alignment; order."""
    g = torch.Generator().manual_seed(7)
    tensors = {
        "f64": torch.randn(3, 5, generator=g, dtype=F64),
        "f32": torch.randn(2, 3, 4, generator=g),
        "f16": torch.randn(7, generator=g).to(torch.float16),
        "bf16": torch.randn(4, 3, generator=g).to(torch.bfloat16),
        "i64": torch.tensor([[-1, 0, 2 ** 40], [5, 6, -(2 ** 62)]], dtype=torch.int64),
        "i32": torch.tensor([1, -2, 3], dtype=torch.int32),
        "u8_empty": torch.zeros(0, dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(-1e4, dtype=torch.float32),
        "transposed": torch.arange(12, dtype=torch.float32).view(3, 4).t(),   # non-contiguous
    }
    meta = {"format": "pt", "note": "ünïcode ok"}
    blob = st.encode(tensors, meta)
    got, got_meta, header, n = read_safetensors(blob)
    assert (8 + n) % 8 == 0, "data section not 8-byte aligned"
    assert got_meta == meta
    assert list(got) == list(tensors), "tensor order changed"
    end = 0
    for name, t in tensors.items():
        a, b = header[name]["data_offsets"]
        assert a == end, "gap or overlap before %s" % name
        end = b
        assert list(got[name].shape) == list(t.shape), name
        assert got[name].dtype == t.dtype, (name, got[name].dtype, t.dtype)
        assert torch.equal(got[name], t), name
    assert end == len(blob) - 8 - n, "trailing bytes"
    # and the tools' own reader agrees
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "x.safetensors")
        st.write(path, tensors, meta)
        back, back_meta = st.read(path)
        assert back_meta == meta
        for name, t in tensors.items():
            assert torch.equal(back[name], t), name


def _cfg(**over):
    args = dict(hidden_size=8, num_layers=1, num_attention_heads=2, vocab_size=10,
                max_position_embeddings=16)
    args.update(over)
    return mg.GPTConfig.from_args(args)


def check_norms_by_hand():
    x = [1.0, 2.0, 3.0, 4.0]
    gamma, beta, eps = [1.0, 2.0, 0.5, -1.0], [0.0, 0.1, 0.0, -0.2], 1e-5
    mean = sum(x) / 4                                          # 2.5
    var = sum((v - mean) ** 2 for v in x) / 4                  # 1.25 (biased)
    ln = [(v - mean) / math.sqrt(var + eps) * g + b for v, g, b in zip(x, gamma, beta)]
    ln1p = [(v - mean) / math.sqrt(var + eps) * (1 + g) + b for v, g, b in zip(x, gamma, beta)]
    ms = sum(v * v for v in x) / 4                             # 7.5
    rms = [v / math.sqrt(ms + eps) * g for v, g in zip(x, gamma)]
    rms1p = [v / math.sqrt(ms + eps) * (1 + g) for v, g in zip(x, gamma)]
    assert abs(ln[0] - (-1.5 / math.sqrt(1.25 + eps))) < 1e-15   # the hand numbers themselves
    X, G, B = (torch.tensor(v, dtype=F64) for v in (x, gamma, beta))
    cases = [
        (_cfg(normalization="LayerNorm", norm_epsilon=eps), B, ln),
        (_cfg(normalization="LayerNorm", norm_epsilon=eps, apply_layernorm_1p=True), B, ln1p),
        (_cfg(normalization="RMSNorm", norm_epsilon=eps), None, rms),
        (_cfg(normalization="RMSNorm", layernorm_epsilon=eps, apply_layernorm_1p=True), None, rms1p),
    ]
    for cfg, bias, want in cases:
        got = mg.norm(cfg, X, G, bias)
        assert max_abs(got, torch.tensor(want, dtype=F64)) < 1e-12, (cfg.normalization, got, want)
    # over the last dim only, for any leading shape
    X2 = torch.stack([X, 2 * X])                               # [2, 4]
    for cfg, bias, _ in cases:
        got = mg.norm(cfg, X2, G, bias)
        assert torch.equal(got[1], mg.norm(cfg, 2 * X, G, bias)), cfg.normalization


def check_activations_by_hand():
    t = lambda v: torch.tensor(v, dtype=F64)                   # noqa: E731
    # GELU tanh with Megatron's constant; erf GELU; they differ in the 4th decimal at 1.0
    want_tanh = 0.5 * (1 + math.tanh(0.79788456 * (1 + 0.044715)))
    want_erf = 0.5 * (1 + math.erf(1 / math.sqrt(2)))
    assert abs(float(mg.gelu_tanh(t(1.0))) - want_tanh) < 1e-15
    assert abs(float(mg.gelu_erf(t(1.0))) - want_erf) < 1e-15
    assert abs(want_tanh - want_erf) > 1e-4
    sq = mg.activation(_cfg(activation="squared_relu"), t([-2.0, 0.0, 3.0]))
    assert sq.tolist() == [0.0, 0.0, 9.0]
    # SwiGLU: fc1 output [gate | up]; silu(gate) * up
    y = t([1.0, -0.5, 2.0, 3.0])                               # gate = [1, -0.5], up = [2, 3]
    silu = lambda v: v / (1 + math.exp(-v))                    # noqa: E731
    want = [silu(1.0) * 2.0, silu(-0.5) * 3.0]
    got = mg.activation(_cfg(activation="swiglu"), y)
    assert max_abs(got, t(want)) < 1e-15, (got, want)
    swapped = [silu(2.0) * 1.0, silu(3.0) * -0.5]
    assert max_abs(got, t(swapped)) > 0.1


def check_rope_by_hand():
    """rotate-half and interleaved against the formulas, at one position, with pass-through."""
    hn, percent, base, pos = 8, 0.5, 500, 7
    dim = int(hn * percent)                                    # 4 rotated channels, 4 passed
    x = torch.arange(1, hn + 1, dtype=F64).view(1, 1, 1, hn)   # [s=1, b=1, n=1, hn]
    theta = [pos / base ** (2 * i / dim) for i in range(dim // 2)]
    for interleaved in (False, True):
        cfg = _cfg(hidden_size=16, num_attention_heads=2, position_embedding_type="rope",
                   rotary_percent=percent, rotary_base=base, rotary_interleaved=interleaved)
        cos, sin = mg.rope_cos_sin(cfg, torch.tensor([pos]), F64)
        got = mg.apply_rope(cfg, x, cos, sin).flatten().tolist()
        v = x.flatten().tolist()
        want = list(v)
        for i, th in enumerate(theta):
            a, b = (2 * i, 2 * i + 1) if interleaved else (i, i + dim // 2)
            want[a] = v[a] * math.cos(th) - v[b] * math.sin(th)
            want[b] = v[b] * math.cos(th) + v[a] * math.sin(th)
        # the angles are fp32 in MCore (§2.3), so allow fp32 rounding of θ
        assert max(abs(p - q) for p, q in zip(got, want)) < 1e-5, (interleaved, got, want)
        assert got[dim:] == v[dim:], "channels past rotary_percent must pass through"


def rope_permutation(hn, dim):
    """Channel order that turns the interleaved layout into rotate-half: evens, then odds, of
    the rotated channels; the rest unchanged. (docs/reference-models.md)"""
    return list(range(0, dim, 2)) + list(range(1, dim, 2)) + list(range(dim, hn))


def check_rope_interleaved_is_permuted_rotate_half():
    g = torch.Generator().manual_seed(3)
    hn, percent = 16, 0.5
    dim = int(hn * percent)
    x = torch.randn(5, 2, 3, hn, generator=g, dtype=F64)      # [s, b, n, hn]
    pos = torch.arange(10, 15)
    perm = rope_permutation(hn, dim)
    kw = dict(hidden_size=48, num_attention_heads=3, position_embedding_type="rope",
              rotary_percent=percent, rotary_base=10000)
    inter, half = _cfg(rotary_interleaved=True, **kw), _cfg(rotary_interleaved=False, **kw)
    y_inter = mg.apply_rope(inter, x, *mg.rope_cos_sin(inter, pos, F64))
    y_half = mg.apply_rope(half, x[..., perm], *mg.rope_cos_sin(half, pos, F64))
    assert max_abs(y_inter[..., perm], y_half) == 0.0
    assert max_abs(y_inter, mg.apply_rope(half, x, *mg.rope_cos_sin(half, pos, F64))) > 1e-3


def check_rope_model_permutation():
    """The interleaved fixture model == a rotate-half model whose q/k rows (and q/k norm
    parameters) are permuted within each head by rope_permutation."""
    model, expected, _ = fixture_model("rope_interleaved_qkln")
    cfg = model.cfg
    np_, ng, hn = cfg.num_attention_heads, cfg.num_query_groups, cfg.kv_channels
    perm = torch.tensor(rope_permutation(hn, cfg.rotary_dim()))
    args = dict(cfg.as_args(), rotary_interleaved=False)
    half_cfg = mg.GPTConfig.from_args(args)
    w = {k: v.clone() for k, v in model.w.items()}
    per_group = (np_ // ng + 2) * hn
    for i in range(cfg.num_layers):
        p = "decoder.layers.%d.self_attention." % i
        for name in (p + "linear_qkv.weight", p + "linear_qkv.bias"):
            t = w[name]
            for grp in range(ng):
                for head in range(np_ // ng + 1):                   # the q heads, then k (not v)
                    start = grp * per_group + head * hn
                    t[start:start + hn] = t[start:start + hn][perm].clone()
        for name in ("q_layernorm.weight", "q_layernorm.bias", "k_layernorm.weight", "k_layernorm.bias"):
            if p + name in w:
                w[p + name] = w[p + name][perm]
    half = mg.MCoreGPT(half_cfg, w, dtype=F64)
    prompt = prompt_of(expected, 3)
    a, b = model.forward(torch.tensor([prompt])), half.forward(torch.tensor([prompt]))
    assert max_abs(a, b) < 1e-10, max_abs(a, b)
    plain = mg.MCoreGPT(half_cfg, model.w, dtype=F64)         # unpermuted weights must differ
    assert max_abs(a, plain.forward(torch.tensor([prompt]))) > 1e-3


def plain_mha(x, w_qkv, b_qkv, w_proj, b_proj, n_head, hn):
    """Multi-head causal self-attention written per head with explicit q/k/v slices (MCore's
    per-head [q, k, v] row layout when groups == heads). x: [s, h] -> [s, h]."""
    s = x.shape[0]
    heads = []
    for j in range(n_head):
        rows = lambda part: slice((3 * j + part) * hn, (3 * j + part + 1) * hn)   # noqa: E731
        q = x @ w_qkv[rows(0)].t() + (b_qkv[rows(0)] if b_qkv is not None else 0)  # [s, hn]
        k = x @ w_qkv[rows(1)].t() + (b_qkv[rows(1)] if b_qkv is not None else 0)
        v = x @ w_qkv[rows(2)].t() + (b_qkv[rows(2)] if b_qkv is not None else 0)
        out = torch.zeros(s, hn, dtype=x.dtype)
        for t in range(s):
            scores = torch.tensor([float(q[t] @ k[u]) / math.sqrt(hn) for u in range(t + 1)],
                                  dtype=x.dtype)
            p = torch.softmax(scores, dim=0)
            out[t] = sum(p[u] * v[u] for u in range(t + 1))
        heads.append(out)
    ctx = torch.cat(heads, dim=1)                             # [s, np·hn]
    y = ctx @ w_proj.t()
    return y + b_proj if b_proj is not None else y


def check_mha_against_plain_attention():
    """groups == heads (gpt2 fixture): the reference attention == a per-head loop."""
    model, expected, _ = fixture_model("gpt2")
    cfg = model.cfg
    g = torch.Generator().manual_seed(5)
    x = torch.randn(9, 1, cfg.hidden_size, generator=g, dtype=F64)   # [s, b=1, h]
    got = model.attention(1, x, torch.arange(9), None)[:, 0]          # [s, h]
    p = "decoder.layers.1.self_attention."
    want = plain_mha(x[:, 0], model.w[p + "linear_qkv.weight"], model.w.get(p + "linear_qkv.bias"),
                     model.w[p + "linear_proj.weight"], model.w.get(p + "linear_proj.bias"),
                     cfg.num_attention_heads, cfg.kv_channels)
    assert max_abs(got, want) < 1e-12, max_abs(got, want)


def gqa_to_mha(cfg, w):
    """Copy each group's k, v rows to every query head of the group: an MHA state dict."""
    np_, ng, hn = cfg.num_attention_heads, cfg.num_query_groups, cfg.kv_channels
    per = np_ // ng
    out = dict(w)
    for i in range(cfg.num_layers):
        for suffix in ("weight", "bias"):
            name = "decoder.layers.%d.self_attention.linear_qkv.%s" % (i, suffix)
            if name not in w:
                continue
            t = w[name]
            rows = []
            for head in range(np_):
                grp = head // per
                base = grp * (per + 2) * hn
                q = t[base + (head % per) * hn: base + (head % per + 1) * hn]
                k = t[base + per * hn: base + (per + 1) * hn]
                v = t[base + (per + 1) * hn: base + (per + 2) * hn]
                rows += [q, k, v]
            out[name] = torch.cat(rows)
    return out


def check_gqa_equals_mha():
    for name in ("llama", "squared_relu", "kv_channels", "rope_interleaved_qkln"):
        model, expected, _ = fixture_model(name)
        cfg = model.cfg
        assert cfg.num_query_groups < cfg.num_attention_heads
        mha_cfg = mg.GPTConfig.from_args(dict(cfg.as_args(),
                                              num_query_groups=cfg.num_attention_heads))
        mha = mg.MCoreGPT(mha_cfg, gqa_to_mha(cfg, model.w), dtype=F64)
        prompt = torch.tensor([prompt_of(expected, 2)])
        err = max_abs(model.forward(prompt), mha.forward(prompt))
        assert err < 1e-10, (name, err)


def check_vocab_padding():
    g = torch.Generator().manual_seed(11)
    for name in ("gpt2", "gelu_erf", "llama", "kv_channels"):
        model, expected, _ = fixture_model(name)
        cfg = model.cfg
        V = cfg.vocab_size
        prompt = torch.tensor([prompt_of(expected, 3)])
        before = model.forward(prompt)                        # [1, s, Vp]
        for wname in ("embedding.word_embeddings.weight", "output_layer.weight"):
            if wname in model.w:
                t = model.w[wname]
                t[V:] = 100.0 * torch.randn(t.shape[0] - V, t.shape[1], generator=g, dtype=F64)
        after = model.forward(prompt)
        assert torch.equal(before[..., :V], after[..., :V]), name
        assert not torch.equal(before[..., V:], after[..., V:]), name
        # and the fixture's greedy tokens never pick a padding id
        assert int(expected["greedy_tokens"].max()) < V


def check_names_and_spellings():
    for name, variant, d in fixture_dirs():
        spec = spec_of(name)
        tensors = read_safetensors(os.path.join(d, "model.safetensors"))[0]
        names = list(tensors)
        assert names == sorted(names), (name, variant, "names not sorted")
        if variant == "hf":
            assert all(n.startswith("transformer.") for n in names)
            continue
        te = any("linear_qkv.layer_norm_weight" in n for n in names)
        local = any("input_layernorm.weight" in n for n in names)
        assert (te, local) == ((True, False) if spec["names"] == "te" else (False, True)), (name, variant)
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[variant]
        for n, t in tensors.items():
            if not (n.endswith("._extra_state") or n.endswith("inv_freq")):
                assert t.dtype == dtype, (name, variant, n, t.dtype)
    # TE and local spelling of one model give the same logits; a duplicate spelling is refused
    cfg, weights, expected, _ = load_fixture("gpt2")
    prompt = torch.tensor([prompt_of(expected, 2)])
    te = mg.MCoreGPT(cfg, weights, F64).forward(prompt)
    local = mg.MCoreGPT(cfg, mg.to_local_names(weights), F64).forward(prompt)
    assert torch.equal(te, local)
    dup = dict(weights)
    dup["decoder.layers.0.input_layernorm.weight"] = dup["decoder.layers.0.self_attention.linear_qkv.layer_norm_weight"]
    try:
        mg.canonical_state_dict(cfg, dup)
    except ValueError:
        pass
    else:
        raise AssertionError("TE + local spelling of the same tensor must be refused")


def check_low_precision_fixtures():
    """bf16/fp16 weights: the files hold the fp32 weights rounded; their expected logits are the
    reference on exactly those weights (so they differ from fp32's, but not by much)."""
    for name in ("gpt2", "llama"):
        _, w32, e32, _ = load_fixture(name, "fp32")
        for variant, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
            _, wlo, elo, meta = load_fixture(name, variant)
            assert meta["weights_dtype"] == {"bf16": "bfloat16", "fp16": "float16"}[variant]
            for n, t in w32.items():
                assert torch.equal(wlo[n], t.to(dtype)), (name, variant, n)
            assert torch.equal(elo["tokens"], e32["tokens"])
            diff = max_abs(elo["decode_logits"], e32["decode_logits"])
            assert 0 < diff < 1.0, (name, variant, diff)


def check_hf_copy():
    d = os.path.join(FIXTURES, "gpt2", "hf")
    with open(os.path.join(d, "config.json")) as f:
        hf_config = json.load(f)
    yaml_keys = read_model_yaml(os.path.join(d, "config.yaml"))
    Vp = mg.vocab_size_with_padding(hf_config["vocab_size"], yaml_keys["make_vocab_size_divisible_by"])
    hf = read_safetensors(os.path.join(d, "model.safetensors"))[0]
    assert hf["transformer.h.0.attn.c_attn.weight"].shape == (hf_config["n_embd"], 3 * hf_config["n_embd"])
    assert hf["transformer.h.0.attn.masked_bias"].shape == ()
    mapped = hf_gpt2_to_mcore(hf, hf_config, Vp)
    cfg, w32, expected, _ = load_fixture("gpt2", "fp32")
    hf_expected = read_safetensors(os.path.join(d, "expected.safetensors"))[0]
    for n in ("prompt_logits", "decode_logits", "greedy_tokens", "tokens"):
        assert torch.equal(hf_expected[n], expected[n]), n
    extras = [n for n in w32 if n.endswith("._extra_state")]
    assert extras and all(w32[n].numel() == 0 for n in extras)
    assert sorted(mapped) == sorted(n for n in w32 if n not in extras)
    for n, t in mapped.items():
        assert torch.equal(t, w32[n]), n
    # the config from config.json alone
    hf_cfg = mg.GPTConfig.from_args(dict(
        hidden_size=hf_config["n_embd"], num_layers=hf_config["n_layer"],
        num_attention_heads=hf_config["n_head"], norm_epsilon=hf_config["layer_norm_epsilon"],
        max_position_embeddings=hf_config["n_positions"], vocab_size=hf_config["vocab_size"],
        make_vocab_size_divisible_by=yaml_keys["make_vocab_size_divisible_by"],
        activation={"gelu_new": "gelu_tanh"}[hf_config["activation_function"]]))
    model = mg.MCoreGPT(hf_cfg, mapped, F64)
    for j in range(expected["tokens"].shape[0]):
        prompt = prompt_of(expected, j)
        p_logits, d_logits, toks = mg.greedy_full_recompute(model, prompt, 4)
        assert torch.equal(p_logits.float(), expected["prompt_logits"][j, :len(prompt)])
        assert torch.equal(d_logits.float(), expected["decode_logits"][j, :4])
        assert toks == expected["greedy_tokens"][j, :5].tolist()


def check_gpt2_against_torch_modules():
    """The HF GPT-2 copy run through torch's own modules (F.layer_norm, F.multi_head_attention_forward,
    whose in_proj is HF's [Q; K; V] layout, F.gelu tanh) gives the fixture's logits: an
    implementation that shares nothing with mcore_gpt.py."""
    import torch.nn.functional as F
    d = os.path.join(FIXTURES, "gpt2", "hf")
    with open(os.path.join(d, "config.json")) as f:
        c = json.load(f)
    hf = {k: v.to(F64) for k, v in read_safetensors(os.path.join(d, "model.safetensors"))[0].items()}
    expected = read_safetensors(os.path.join(d, "expected.safetensors"))[0]
    h, eps, V = c["n_embd"], c["layer_norm_epsilon"], c["vocab_size"]
    worst = 0.0
    for j in range(expected["tokens"].shape[0]):
        prompt = prompt_of(expected, j)
        s = len(prompt)
        x = hf["transformer.wte.weight"][prompt] + hf["transformer.wpe.weight"][:s]   # [s, h]
        future = torch.triu(torch.ones(s, s, dtype=torch.bool), diagonal=1)          # True = masked
        for i in range(c["n_layer"]):
            p = "transformer.h.%d." % i
            a = F.layer_norm(x, (h,), hf[p + "ln_1.weight"], hf[p + "ln_1.bias"], eps)
            attn, _ = F.multi_head_attention_forward(
                a[:, None], a[:, None], a[:, None], h, c["n_head"],
                hf[p + "attn.c_attn.weight"].t(), hf[p + "attn.c_attn.bias"], None, None, False, 0.0,
                hf[p + "attn.c_proj.weight"].t(), hf[p + "attn.c_proj.bias"],
                training=False, need_weights=False, attn_mask=future)
            x = x + attn[:, 0]
            m = F.layer_norm(x, (h,), hf[p + "ln_2.weight"], hf[p + "ln_2.bias"], eps)
            m = F.gelu(F.linear(m, hf[p + "mlp.c_fc.weight"].t(), hf[p + "mlp.c_fc.bias"]), approximate="tanh")
            x = x + F.linear(m, hf[p + "mlp.c_proj.weight"].t(), hf[p + "mlp.c_proj.bias"])
        x = F.layer_norm(x, (h,), hf["transformer.ln_f.weight"], hf["transformer.ln_f.bias"], eps)
        logits = x @ hf["transformer.wte.weight"].t()                               # [s, V]
        worst = max(worst, max_abs(logits, expected["prompt_logits"][j, :s, :V]))
    assert worst < 1e-5, worst


def check_llama_against_complex_rope_forward():
    """The llama fixture (local names) through a second, loop-style forward written here: RoPE as
    complex multiplication of the pairs (i, i + dim/2), query head j reading K/V of group
    j // (np/ng), SwiGLU gate = first half of fc1. Compared with the fixture's prompt logits."""
    cfg, w, expected, meta = load_fixture("llama")
    w = {k: v.to(F64) for k, v in w.items()}
    h, np_, ng, hn = cfg.hidden_size, cfg.num_attention_heads, cfg.num_query_groups, cfg.kv_channels
    F_, eps, per = cfg.ffn_hidden_size, cfg.norm_epsilon, np_ // ng

    def rms(x, g):                                                        # x [s, h]
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * g

    def rope(x, pos):                                                     # x [s, hn], pos [s]
        half = hn // 2
        inv = torch.tensor([1.0 / cfg.rotary_base ** (2 * i / hn) for i in range(half)], dtype=F64)
        z = torch.complex(x[:, :half], x[:, half:]) * torch.polar(torch.ones(len(pos), half, dtype=F64),
                                                                     pos[:, None].to(F64) * inv)
        return torch.cat([z.real, z.imag], dim=1)

    worst = 0.0
    for j in range(expected["tokens"].shape[0]):
        prompt = prompt_of(expected, j)
        s = len(prompt)
        pos = torch.arange(s)
        x = w["embedding.word_embeddings.weight"][prompt]                 # [s, h]
        for i in range(cfg.num_layers):
            p = "decoder.layers.%d." % i
            a = rms(x, w[p + "input_layernorm.weight"])
            qkv = a @ w[p + "self_attention.linear_qkv.weight"].t()       # [s, (np+2ng)·hn]
            heads = []
            for head in range(np_):
                grp = head // per
                base = grp * (per + 2) * hn
                q = rope(qkv[:, base + (head % per) * hn: base + (head % per + 1) * hn], pos)
                k = rope(qkv[:, base + per * hn: base + (per + 1) * hn], pos)
                v = qkv[:, base + (per + 1) * hn: base + (per + 2) * hn]
                scores = q @ k.t() / math.sqrt(hn)                        # [s, s]
                scores = scores + torch.triu(torch.full((s, s), float("-inf"), dtype=F64), 1)
                heads.append(torch.softmax(scores, dim=-1) @ v)           # [s, hn]
            x = x + torch.cat(heads, dim=1) @ w[p + "self_attention.linear_proj.weight"].t()
            m = rms(x, w[p + "pre_mlp_layernorm.weight"]) @ w[p + "mlp.linear_fc1.weight"].t()  # [s, 2F]
            gate, up = m[:, :F_], m[:, F_:]
            x = x + (gate * torch.sigmoid(gate) * up) @ w[p + "mlp.linear_fc2.weight"].t()
        logits = rms(x, w["decoder.final_layernorm.weight"]) @ w["output_layer.weight"].t()  # [s, Vp]
        worst = max(worst, max_abs(logits, expected["prompt_logits"][j, :s]))
    # the fixture takes RoPE angles in fp32 as MCore does (§2.3); this forward uses fp64 angles
    assert worst < 1e-5, worst


KV_RESULTS = []


def check_kv_cache_equals_recompute():
    """Every fixture: each sequence alone through the cache (prompt in one call, then 32 one-token
    steps) vs the fixture's full recomputation: ≤ 1e-5 in float64, greedy tokens identical.
    Chunked prefill and a batch of two equal-length prompts through one cache too. Float32
    math on the same path stays within the fixture's atol."""
    for name, variant, d in fixture_dirs():
        if variant == "hf":
            continue
        model, expected, meta = fixture_model(name, variant, F64)
        model32, _, _ = fixture_model(name, variant, torch.float32)
        atol = float(meta["atol"])
        steps = int(meta["decode_steps"])
        worst64 = worst32 = 0.0
        for j in range(expected["tokens"].shape[0]):
            prompt = prompt_of(expected, j)
            L = len(prompt)
            for m, chunk in ((model, None), (model, 7), (model32, None)):
                p_logits, d_logits, toks = mg.greedy_cached(m, [prompt], steps, prefill_chunk=chunk)
                err = max(max_abs(p_logits[0], expected["prompt_logits"][j, :L]),
                          max_abs(d_logits[0], expected["decode_logits"][j]))
                if m is model:
                    worst64 = max(worst64, err)
                    assert toks[0].tolist() == expected["greedy_tokens"][j].tolist(), (name, variant, j)
                else:
                    worst32 = max(worst32, err)
                    assert toks[0].tolist() == expected["greedy_tokens"][j].tolist(), (name, variant, j, "fp32")
        assert worst64 <= 1e-5, (name, variant, worst64)
        assert worst32 <= atol, (name, variant, worst32, atol)
        # two different prompts of one length, one cache, batched decode
        a = prompt_of(expected, 3)
        b = list(reversed(a))
        p_logits, d_logits, toks = mg.greedy_cached(model, [a, b], 8)
        direct = 0.0                                          # cache vs recompute, both unrounded
        for row, prompt in enumerate((a, b)):
            p1, d1, t1 = mg.greedy_full_recompute(model, prompt, 8)
            direct = max(direct, max_abs(p_logits[row], p1), max_abs(d_logits[row], d1))
            assert toks[row].tolist() == t1
        assert direct <= 1e-10, (name, variant, direct)
        KV_RESULTS.append("%-28s float64 vs fixture %.1e, vs unrounded recompute %.1e; "
                          "float32 vs fixture %.1e (atol %.1e)"
                          % (name + "/" + variant, worst64, direct, worst32, atol))


def check_expected_metadata():
    for name, variant, d in fixture_dirs():
        e, meta, _, _ = read_safetensors(os.path.join(d, "expected.safetensors"))
        spec = spec_of(name)
        cfg = mg.GPTConfig.from_args(spec["args"])
        B = len(mf.PROMPT_LENGTHS)
        assert int(meta["vocab_size"]) == cfg.vocab_size
        assert int(meta["padded_vocab_size"]) == cfg.padded_vocab_size
        assert e["tokens"].shape == (B, max(mf.PROMPT_LENGTHS)) and e["tokens"].dtype == torch.int64
        assert e["prompt_logits"].shape == (B, max(mf.PROMPT_LENGTHS), cfg.padded_vocab_size)
        assert e["decode_logits"].shape == (B, 32, cfg.padded_vocab_size)
        assert e["greedy_tokens"].shape == (B, 33)
        assert e["prompt_lengths"].tolist() == list(mf.PROMPT_LENGTHS)
        scale = float(meta["logit_scale"])
        assert 1.0 < scale < 50.0, (name, variant, scale)
        assert float(meta["min_greedy_margin"]) > 2 * float(meta["atol"])
        for j, L in enumerate(mf.PROMPT_LENGTHS):
            assert bool((e["tokens"][j, L:] == -1).all()) and bool((e["tokens"][j, :L] >= 0).all())
            assert float(e["prompt_logits"][j, L:].abs().max() if L < e["tokens"].shape[1] else 0) == 0.0


def check_bad_input():
    cases = [
        ("heads not dividing hidden", dict(hidden_size=10, num_attention_heads=4)),
        ("groups not dividing heads", dict(num_query_groups=3)),
        ("odd rotary dim", dict(position_embedding_type="rope", rotary_percent=0.3)),
        ("padded < vocab", dict(padded_vocab_size=5)),
        ("unknown key", dict(hiden_size=8)),
        ("bad activation", dict(activation="relu")),
    ]
    for what, over in cases:
        try:
            _cfg(**over)
        except ValueError:
            continue
        raise AssertionError("accepted: " + what)
    cfg, weights, expected, _ = load_fixture("gpt2")
    model = mg.MCoreGPT(cfg, weights, F64)
    for what, call in (
        ("token >= vocab", lambda: model.forward(torch.tensor([[cfg.vocab_size]]))),
        ("negative token", lambda: model.forward(torch.tensor([[-1]]))),
        ("position >= max", lambda: model.forward(torch.zeros(1, cfg.max_position_embeddings + 1, dtype=torch.int64))),
        ("cache too small", lambda: model.forward(torch.zeros(1, 5, dtype=torch.int64), 0, model.new_cache(1, 4))),
    ):
        try:
            call()
        except ValueError:
            continue
        raise AssertionError("accepted: " + what)
    for what, mutate in (
        ("missing tensor", lambda w: w.pop("decoder.final_layernorm.bias")),
        ("wrong shape", lambda w: w.__setitem__("decoder.final_layernorm.bias", torch.zeros(3))),
        ("unexpected tensor", lambda w: w.__setitem__("decoder.layers.9.mlp.linear_fc1.weight", torch.zeros(3))),
    ):
        w = dict(weights)
        mutate(w)
        try:
            mg.canonical_state_dict(cfg, w)
        except ValueError:
            continue
        raise AssertionError("accepted: " + what)


def check_determinism():
    """A fresh make_fixtures.py run gives every file of the fixture dir under test byte for byte
    (so the fixtures are what the current code makes, and the code is deterministic)."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, os.path.join(TOOLS, "make_fixtures.py"), "--out", tmp],
                       check=True, stdout=subprocess.DEVNULL)
        compared = 0
        for name, variant, d in fixture_dirs():
            fresh_dir = os.path.join(tmp, name, variant)
            assert sorted(os.listdir(fresh_dir)) == sorted(os.listdir(d)), (name, variant)
            for fname in sorted(os.listdir(fresh_dir)):
                with open(os.path.join(fresh_dir, fname), "rb") as f:
                    fresh = f.read()
                with open(os.path.join(d, fname), "rb") as f:
                    under_test = f.read()
                assert fresh == under_test, "%s/%s/%s differs from a fresh run" % (name, variant, fname)
                compared += 1
        assert compared >= 30, compared


CHECKS = [
    check_safetensors_by_hand,
    check_safetensors_roundtrip,
    check_norms_by_hand,
    check_activations_by_hand,
    check_rope_by_hand,
    check_rope_interleaved_is_permuted_rotate_half,
    check_rope_model_permutation,
    check_mha_against_plain_attention,
    check_gqa_equals_mha,
    check_vocab_padding,
    check_names_and_spellings,
    check_low_precision_fixtures,
    check_hf_copy,
    check_gpt2_against_torch_modules,
    check_llama_against_complex_rope_forward,
    check_expected_metadata,
    check_kv_cache_equals_recompute,
    check_bad_input,
    check_determinism,
]


def main():
    global FIXTURES
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", help="fixture dir made by make_fixtures.py (default: make one)")
    ap.add_argument("-k", help="run only checks whose name contains this")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.fixtures:
            FIXTURES = args.fixtures
        else:
            FIXTURES = os.path.join(tmp, "fixtures")
            subprocess.run([sys.executable, os.path.join(TOOLS, "make_fixtures.py"), "--out", FIXTURES],
                           check=True, stdout=subprocess.DEVNULL)
        failed = 0
        for check in CHECKS:
            if args.k and args.k not in check.__name__:
                continue
            try:
                check()
                print("ok   %s" % check.__name__)
            except Exception:                                   # report every failing check
                failed += 1
                print("FAIL %s" % check.__name__)
                traceback.print_exc(file=sys.stdout)
            sys.stdout.flush()
        for line in KV_RESULTS:
            print("     max abs error " + line)
    print("%s: %d check(s) failed" % ("FAIL" if failed else "PASS", failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
