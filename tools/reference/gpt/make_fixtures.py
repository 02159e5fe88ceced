#!/usr/bin/python3
"""Make the reference fixtures for mcrt's GPT model plugin: small random MCore GPT models and
the logits the reference (mcore_gpt.py) computes for them. Layout, names and tolerances:
docs/reference-models.md.

    /usr/bin/python3 tools/reference/gpt/make_fixtures.py [--out DIR] [--only NAME ...]
                                                         [--stamp FILE] [--skip-without-torch]

DIR defaults to build/reference/gpt in the repository. Every file is a pure function of this
script and mcore_gpt.py (fixed seeds, one thread, float64 math): re-running gives the same bytes.
One line per config goes to stdout. --stamp writes a list of the files made (for meson);
--skip-without-torch turns a missing torch into a one-line notice, a stamp saying so and exit 0.
"""

import argparse
import json
import math
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
DEFAULT_OUT = os.path.join(REPO, "build", "reference", "gpt")

DECODE_STEPS = 32
PROMPT_LENGTHS = (1, 6, 19, 40)          # B = 4 sequences; 40 + 32 positions < 128
MIN_GREEDY_MARGIN = 0.01                 # every greedy choice wins by at least this much
RELATIVE_TOLERANCE = 1e-4                # atol = 1e-4 · logit_scale (see the docs)

# The configs of issue 4, item 5. `args` is written verbatim as config.yaml's model section
# (Megatron argument names), so each key is spelled the way the plugin must read it.
# names: "te" or "local" spelling of the norm keys (§3.2). variants: the weight files made.
CONFIGS = [
    dict(
        name="gpt2", seed=101, names="te", variants=("fp32", "bf16", "fp16", "hf"),
        zero_vocab_padding=True,        # as an HF -> MCore conversion pads (§3.8), so hf == fp32
        extra_tensors=("te_extra_state",),
        about="GPT-2 style: learned positions, LayerNorm, GELU tanh, biases, tied",
        args=dict(
            hidden_size=64, num_layers=3, num_attention_heads=4, ffn_hidden_size=256,
            normalization="LayerNorm", norm_epsilon=1e-5,
            position_embedding_type="learned_absolute", max_position_embeddings=128,
            activation="gelu_tanh", add_bias_linear=True, add_qkv_bias=True,
            untie_embeddings_and_output_weights=False,
            vocab_size=457, make_vocab_size_divisible_by=128),
    ),
    dict(
        name="llama", seed=202, names="local", variants=("fp32", "bf16", "fp16"),
        about="Llama style: RoPE, RMSNorm, SwiGLU, GQA 8 heads / 2 groups, no biases, untied",
        args=dict(
            hidden_size=128, num_layers=2, num_attention_heads=8, group_query_attention=True,
            num_query_groups=2, ffn_hidden_size=192,
            normalization="RMSNorm", norm_epsilon=1e-6,
            position_embedding_type="rope", rotary_percent=1.0, rotary_base=10000,
            rotary_interleaved=False, max_position_embeddings=128,
            activation="swiglu", add_bias_linear=False, add_qkv_bias=False,
            untie_embeddings_and_output_weights=True,
            vocab_size=1000, make_vocab_size_divisible_by=128),
    ),
    dict(
        name="rope_interleaved_qkln", seed=303, names="te", variants=("fp32",),
        extra_tensors=("rotary_inv_freq",),
        about="rotary_percent 0.5 interleaved, qk_layernorm, apply_layernorm_1p (LayerNorm), "
              "GQA 6/3, QKV bias only, SwiGLU, untied",
        args=dict(
            hidden_size=96, num_layers=2, num_attention_heads=6, group_query_attention=True,
            num_query_groups=3, ffn_hidden_size=160,
            normalization="LayerNorm", norm_epsilon=1e-5, apply_layernorm_1p=True,
            qk_layernorm=True,
            position_embedding_type="rope", rotary_percent=0.5, rotary_base=500,
            rotary_interleaved=True, max_position_embeddings=128,
            activation="swiglu", add_bias_linear=False, add_qkv_bias=True,
            untie_embeddings_and_output_weights=True,
            vocab_size=333, make_vocab_size_divisible_by=64),
    ),
    dict(
        name="gelu_erf", seed=404, names="te", variants=("fp32",),
        about="GELU erf without biases, RMSNorm with apply_layernorm_1p, RoPE rotate-half, tied",
        args=dict(
            hidden_size=64, num_layers=2, num_attention_heads=4, ffn_hidden_size=256,
            normalization="RMSNorm", norm_epsilon=1e-5, apply_layernorm_1p=True,
            position_embedding_type="rope", rotary_percent=1.0, rotary_base=10000,
            rotary_interleaved=False, max_position_embeddings=128,
            activation="gelu", add_bias_linear=False, add_qkv_bias=False,
            untie_embeddings_and_output_weights=False,
            vocab_size=300, make_vocab_size_divisible_by=128),
    ),
    dict(
        name="kv_channels", seed=505, names="local", variants=("fp32",),
        about="kv_channels 32 != hidden/heads 24, GQA 4/2, learned positions, LayerNorm, "
              "GELU tanh, biases, untied, explicit padded_vocab_size",
        args=dict(
            hidden_size=96, num_layers=2, num_attention_heads=4, group_query_attention=True,
            num_query_groups=2, kv_channels=32, ffn_hidden_size=200,
            normalization="LayerNorm", layernorm_epsilon=1e-5,
            position_embedding_type="learned_absolute", max_position_embeddings=128,
            activation="gelu_tanh", add_bias_linear=True, add_qkv_bias=True,
            untie_embeddings_and_output_weights=True,
            vocab_size=700, padded_vocab_size=704),
    ),
    dict(
        name="squared_relu", seed=606, names="local", variants=("fp32",),
        about="squared ReLU, MQA (1 group), RoPE rotate-half rotary_percent 0.5, LayerNorm, "
              "biases, untied",
        args=dict(
            hidden_size=64, num_layers=3, num_attention_heads=4, group_query_attention=True,
            num_query_groups=1, ffn_hidden_size=256,
            normalization="LayerNorm", norm_epsilon=1e-5,
            position_embedding_type="rope", rotary_percent=0.5, rotary_base=10000,
            rotary_interleaved=False, max_position_embeddings=128,
            activation="squared_relu", add_bias_linear=True, add_qkv_bias=True,
            untie_embeddings_and_output_weights=True,
            vocab_size=520, make_vocab_size_divisible_by=128),
    ),
]

VARIANT_DTYPE = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16", "hf": "float32"}


# ---------------------------------------------------------------------------------------------
# Random weights
# ---------------------------------------------------------------------------------------------

def init_weights(mg, cfg, spec, np_rng):
    """Random MCore (TE-named) fp32 weights, drawn in float64 by numpy (stable across torch
    versions and machines) and rounded to fp32. Scales keep activations O(1) and logits O(1-10):
    linear weights N(0, 1/fan_in), norm gains 1 + N(0, 0.1²) (N(0, 0.1²) with apply_layernorm_1p,
    whose gain is 1 + γ), biases N(0, 0.1²), output rows N(0, (2.5/√h)²)."""
    import torch
    h = cfg.hidden_size
    out = {}
    for name, shape in mg.expected_shapes(cfg).items():
        normal = np_rng.standard_normal(size=shape)                      # float64, [shape]
        mean = 0.0
        if name == "embedding.word_embeddings.weight":
            tied = not cfg.untie_embeddings_and_output_weights
            std = 2.5 / math.sqrt(h) if tied else 1.0                    # tied: it is the output layer too
        elif name == "output_layer.weight":
            std = 2.5 / math.sqrt(h)
        elif name == "embedding.position_embeddings.weight":
            std = 0.5
        elif name.endswith("layer_norm_weight") or name.endswith("layernorm.weight"):
            std = 0.1
            mean = 0.0 if cfg.apply_layernorm_1p else 1.0                # the gain is ≈ 1 either way
        elif name.endswith("bias"):
            std = 0.1
        elif name.endswith("linear_proj.weight"):
            std = 1.0 / math.sqrt(cfg.num_attention_heads * cfg.kv_channels)
        elif name.endswith("linear_fc2.weight"):
            std = 1.0 / math.sqrt(cfg.ffn_hidden_size)
        elif name.endswith("linear_qkv.weight") or name.endswith("linear_fc1.weight"):
            std = 1.0 / math.sqrt(h)
        else:
            raise AssertionError("no init rule for " + name)
        out[name] = torch.from_numpy(mean + std * normal).to(torch.float32)
    if spec.get("zero_vocab_padding"):
        out["embedding.word_embeddings.weight"][cfg.vocab_size:] = 0.0
    return out


def file_tensors(mg, cfg, spec, weights):
    """The tensors of model.safetensors: the spec's name spelling plus its ignorable extras,
    sorted by name (as HF-written files are)."""
    import torch
    named = dict(weights) if spec["names"] == "te" else mg.to_local_names(weights)
    for extra in spec.get("extra_tensors", ()):
        if extra == "te_extra_state":          # §3.2: TE's fp8 metadata, empty without fp8
            for i in range(cfg.num_layers):
                for module in ("self_attention.linear_qkv", "self_attention.core_attention",
                               "self_attention.linear_proj", "mlp.linear_fc1", "mlp.linear_fc2"):
                    named["decoder.layers.%d.%s._extra_state" % (i, module)] = \
                        torch.zeros(0, dtype=torch.uint8)
        elif extra == "rotary_inv_freq":       # §3.2: old checkpoints carry it; ignored
            dim = cfg.rotary_dim()
            named["rotary_pos_emb.inv_freq"] = 1.0 / (cfg.rotary_base ** (
                torch.arange(0, dim, 2, dtype=torch.float32) / dim))
    return {name: named[name] for name in sorted(named)}


# ---------------------------------------------------------------------------------------------
# HF GPT-2 names (§3.8, MCore -> HF direction; the test maps back with its own code)
# ---------------------------------------------------------------------------------------------

def mcore_to_hf_gpt2(cfg, w):
    """HF GPT2LMHeadModel tensors from TE-named MCore weights [§3.8]: Conv1D weights are [in, out]
    (the transpose), c_attn rows go from per-head [np, (q, k, v), hn] back to [(Q, K, V), np, hn],
    wte drops the padding rows. The causal-mask buffers attn.bias / attn.masked_bias that old HF
    checkpoints carry are written too (a loader must drop them)."""
    import torch
    h, np_, hn, P = cfg.hidden_size, cfg.num_attention_heads, cfg.kv_channels, cfg.max_position_embeddings
    assert cfg.num_query_groups == np_ and np_ * hn == h
    hf = {
        "transformer.wte.weight": w["embedding.word_embeddings.weight"][:cfg.vocab_size],  # [V, h]
        "transformer.wpe.weight": w["embedding.position_embeddings.weight"],             # [P, h]
    }
    causal = torch.tril(torch.ones(P, P, dtype=torch.float32)).view(1, 1, P, P)          # [1, 1, P, P]
    for i in range(cfg.num_layers):
        m = "decoder.layers.%d." % i
        p = "transformer.h.%d." % i
        qkv_w = w[m + "self_attention.linear_qkv.weight"]                  # [3h, h] rows per head q,k,v
        qkv_b = w[m + "self_attention.linear_qkv.bias"]                                  # [3h]
        hf[p + "ln_1.weight"] = w[m + "self_attention.linear_qkv.layer_norm_weight"]
        hf[p + "ln_1.bias"] = w[m + "self_attention.linear_qkv.layer_norm_bias"]
        hf[p + "attn.bias"] = causal
        hf[p + "attn.masked_bias"] = torch.tensor(-1e4, dtype=torch.float32)            # shape []
        qkv_rows = qkv_w.view(np_, 3, hn, h).transpose(0, 1).reshape(3 * h, h)  # [3h, h] rows [Q; K; V]
        hf[p + "attn.c_attn.weight"] = qkv_rows.t()                          # [h, 3h] (in, out)
        hf[p + "attn.c_attn.bias"] = qkv_b.view(np_, 3, hn).transpose(0, 1).reshape(3 * h)              # [3h]
        hf[p + "attn.c_proj.weight"] = w[m + "self_attention.linear_proj.weight"].t()   # [h, h] (in, out)
        hf[p + "attn.c_proj.bias"] = w[m + "self_attention.linear_proj.bias"]
        hf[p + "ln_2.weight"] = w[m + "mlp.linear_fc1.layer_norm_weight"]
        hf[p + "ln_2.bias"] = w[m + "mlp.linear_fc1.layer_norm_bias"]
        hf[p + "mlp.c_fc.weight"] = w[m + "mlp.linear_fc1.weight"].t()                   # [h, 4h]
        hf[p + "mlp.c_fc.bias"] = w[m + "mlp.linear_fc1.bias"]
        hf[p + "mlp.c_proj.weight"] = w[m + "mlp.linear_fc2.weight"].t()                 # [4h, h]
        hf[p + "mlp.c_proj.bias"] = w[m + "mlp.linear_fc2.bias"]
    hf["transformer.ln_f.weight"] = w["decoder.final_layernorm.weight"]
    hf["transformer.ln_f.bias"] = w["decoder.final_layernorm.bias"]
    return {name: hf[name].contiguous() for name in sorted(hf)}


def hf_gpt2_config(cfg):
    return {
        "activation_function": "gelu_new",
        "architectures": ["GPT2LMHeadModel"],
        "attn_pdrop": 0.0,
        "bos_token_id": cfg.vocab_size - 1,
        "embd_pdrop": 0.0,
        "eos_token_id": cfg.vocab_size - 1,
        "initializer_range": 0.02,
        "layer_norm_epsilon": cfg.norm_epsilon,
        "model_type": "gpt2",
        "n_ctx": cfg.max_position_embeddings,
        "n_embd": cfg.hidden_size,
        "n_head": cfg.num_attention_heads,
        "n_inner": None,
        "n_layer": cfg.num_layers,
        "n_positions": cfg.max_position_embeddings,
        "reorder_and_upcast_attn": False,
        "resid_pdrop": 0.0,
        "scale_attn_by_inverse_layer_idx": False,
        "scale_attn_weights": True,
        "tie_word_embeddings": True,
        "torch_dtype": "float32",
        "vocab_size": cfg.vocab_size,
    }


# ---------------------------------------------------------------------------------------------
# config.yaml
# ---------------------------------------------------------------------------------------------

def yaml_scalar(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        s = repr(v)
        mantissa, _, exponent = s.partition("e")
        if exponent and "." not in mantissa:
            s = mantissa + ".0e" + exponent        # 1e-05 -> 1.0e-05: a float in YAML 1.1 too
        return s
    return str(v)


def config_yaml(spec, keys, variant):
    lines = [
        "# Generated by tools/reference/gpt/make_fixtures.py; do not edit.",
        "# Fixture %s/%s: %s." % (spec["name"], variant, spec["about"]),
        "# The model section: Megatron argument names (docs/reference-models.md).",
        "model:",
        "  name: gpt",
        "  load: .",
    ]
    for key, value in keys.items():
        lines.append("  %s: %s" % (key, yaml_scalar(value)))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Expected outputs
# ---------------------------------------------------------------------------------------------

def greedy_margin(cfg, row):
    """top-1 minus top-2 over the real ids of one logits row [Vp]."""
    top2 = row[:cfg.vocab_size].topk(2).values
    return float(top2[0] - top2[1])


def run_reference(mg, model, prompt):
    """Full recomputation (mcore_gpt.greedy_full_recompute) and the smallest greedy margin."""
    prompt_logits, decode_logits, tokens = mg.greedy_full_recompute(model, prompt, DECODE_STEPS)
    rows = [prompt_logits[-1]] + list(decode_logits)
    margin = min(greedy_margin(model.cfg, r) for r in rows)
    return prompt_logits, decode_logits, tokens, margin


def choose_prompts(mg, spec, cfg, models, seed):
    """Prompts of PROMPT_LENGTHS tokens, each re-drawn until every greedy choice of every weight
    variant wins by >= MIN_GREEDY_MARGIN (so fp32 rounding in the plugin cannot flip a token).
    Returns the prompts and, per variant, the per-sequence reference results."""
    import numpy as np
    cfg_v = cfg.vocab_size
    prompts, results = [], {v: [] for v in models}
    for slot, length in enumerate(PROMPT_LENGTHS):
        for attempt in range(1000):
            rng = np.random.default_rng([seed, 1000 + slot, attempt])
            prompt = [int(t) for t in rng.integers(0, cfg_v, size=length)]
            if slot == len(PROMPT_LENGTHS) - 1:      # the ids at both ends of the vocabulary
                prompt[1], prompt[2] = cfg_v - 1, 0
            got = {v: run_reference(mg, m, prompt) for v, m in models.items()}
            if all(r[3] >= MIN_GREEDY_MARGIN for r in got.values()):
                break
        else:
            raise RuntimeError("%s: no prompt with a clear greedy margin" % spec["name"])
        prompts.append(prompt)
        for v in models:
            results[v].append(got[v])
    return prompts, results


def expected_tensors(cfg, prompts, results):
    """expected.safetensors: tokens, prompt_lengths, prompt_logits, decode_logits, greedy_tokens."""
    import torch
    B, S, Vp = len(prompts), max(len(p) for p in prompts), cfg.padded_vocab_size
    tokens = torch.full((B, S), -1, dtype=torch.int64)                    # [B, S], -1 = padding
    prompt_logits = torch.zeros((B, S, Vp), dtype=torch.float32)         # [B, S, Vp]
    decode_logits = torch.zeros((B, DECODE_STEPS, Vp), dtype=torch.float32)  # [B, 32, Vp]
    greedy = torch.zeros((B, DECODE_STEPS + 1), dtype=torch.int64)      # [B, 33]
    for j, (prompt, (p_logits, d_logits, toks, _)) in enumerate(zip(prompts, results)):
        tokens[j, :len(prompt)] = torch.tensor(prompt)
        prompt_logits[j, :len(prompt)] = p_logits.to(torch.float32)
        decode_logits[j] = d_logits.to(torch.float32)
        greedy[j] = torch.tensor(toks)
    real = torch.cat([prompt_logits[..., :cfg.vocab_size].flatten(),
                      decode_logits[..., :cfg.vocab_size].flatten()])
    scale = float(real.abs().max())
    margin = min(r[3] for r in results)
    return {
        "tokens": tokens,
        "prompt_lengths": torch.tensor([len(p) for p in prompts], dtype=torch.int64),
        "prompt_logits": prompt_logits,
        "decode_logits": decode_logits,
        "greedy_tokens": greedy,
    }, scale, margin


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------

def make_config(spec, out_dir, written):
    import numpy as np
    import torch
    import mcore_gpt as mg
    import safetensors_io as st

    t0 = time.time()
    cfg = mg.GPTConfig.from_args(spec["args"])
    master = init_weights(mg, cfg, spec, np.random.default_rng(spec["seed"]))   # fp32, TE names

    weights, models = {}, {}
    for variant in spec["variants"]:
        if variant == "hf":
            continue                                     # same numbers as fp32 by construction
        dtype = getattr(torch, VARIANT_DTYPE[variant])
        weights[variant] = {n: t.to(dtype) for n, t in master.items()}
        models[variant] = mg.MCoreGPT(cfg, weights[variant], dtype=torch.float64)
    prompts, results = choose_prompts(mg, spec, cfg, models, spec["seed"])

    summary = []
    for variant in spec["variants"]:
        vdir = os.path.join(out_dir, spec["name"], variant)
        os.makedirs(vdir, exist_ok=True)
        source = "fp32" if variant == "hf" else variant
        expected, scale, margin = expected_tensors(cfg, prompts, results[source])
        atol = RELATIVE_TOLERANCE * scale
        if margin <= 2 * atol:
            raise RuntimeError("%s/%s: greedy margin %.3g is not above 2·atol %.3g"
                               % (spec["name"], variant, margin, atol))
        meta_common = {
            "generator": "mcrt tools/reference/gpt/make_fixtures.py",
            "fixture": spec["name"],
            "variant": variant,
        }
        if variant == "hf":
            files = {
                "model.safetensors": st.encode(mcore_to_hf_gpt2(cfg, weights["fp32"]),
                                               dict(meta_common, format="pt")),
                "config.json": (json.dumps(hf_gpt2_config(cfg), indent=2, sort_keys=True)
                                + "\n").encode(),
                "config.yaml": config_yaml(spec, {"make_vocab_size_divisible_by":
                                                  cfg.make_vocab_size_divisible_by},
                                           variant).encode(),
            }
        else:
            files = {
                "model.safetensors": st.encode(file_tensors(mg, cfg, spec, weights[variant]),
                                               dict(meta_common, format="pt")),
                "config.yaml": config_yaml(spec, spec["args"], variant).encode(),
            }
        files["expected.safetensors"] = st.encode(expected, dict(
            meta_common,
            weights_dtype=VARIANT_DTYPE[variant],
            vocab_size=cfg.vocab_size,
            padded_vocab_size=cfg.padded_vocab_size,
            decode_steps=DECODE_STEPS,
            logit_scale="%.9g" % scale,
            atol="%.9g" % atol,
            min_greedy_margin="%.9g" % margin,
            compare_columns="vocab_size" if variant == "hf" else "padded_vocab_size",
            reference="mcore_gpt.py, float64 math on the file's weights, "
                      "full recomputation for every decode step",
        ))
        for fname, blob in files.items():
            path = os.path.join(vdir, fname)
            with open(path, "wb") as f:
                f.write(blob)
            written.append(os.path.relpath(path, out_dir))
        summary.append((variant, scale, margin))

    scales = "/".join("%.2f" % s for _, s, _ in summary)
    margins = min(m for _, _, m in summary)
    print("%-22s h=%d L=%d np=%d ng=%d hn=%d F=%d V=%d Vp=%d %s | %s | logit scale %s, "
          "min greedy margin %.3f | %.1f s"
          % (spec["name"], cfg.hidden_size, cfg.num_layers, cfg.num_attention_heads,
             cfg.num_query_groups, cfg.kv_channels, cfg.ffn_hidden_size, cfg.vocab_size,
             cfg.padded_vocab_size, spec["names"], ",".join(spec["variants"]), scales, margins,
             time.time() - t0))
    sys.stdout.flush()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output folder (default %(default)s)")
    ap.add_argument("--only", nargs="*", help="config names to make (default all)")
    ap.add_argument("--stamp", help="write the list of files made here")
    ap.add_argument("--skip-without-torch", action="store_true",
                    help="without torch: print one line, write the stamp, exit 0")
    ap.add_argument("--list", action="store_true", help="print the config names and exit")
    args = ap.parse_args(argv)

    if args.list:
        for spec in CONFIGS:
            print(spec["name"])
        return 0
    try:
        import torch
    except ImportError:
        if not args.skip_without_torch:
            raise
        print("make_fixtures: python3-torch is not installed; no reference fixtures made")
        if args.stamp:
            with open(args.stamp, "w") as f:
                f.write("skipped: python3-torch is not installed\n")
        return 0

    sys.path.insert(0, HERE)
    torch.set_num_threads(1)                 # one summation order, so the bytes never change
    names = [s["name"] for s in CONFIGS]
    for n in args.only or ():
        if n not in names:
            ap.error("unknown config %r (have: %s)" % (n, ", ".join(names)))
    t0 = time.time()
    written = []
    for spec in CONFIGS:
        if args.only and spec["name"] not in args.only:
            continue
        make_config(spec, args.out, written)
    print("make_fixtures: %d files in %s, %.1f s" % (len(written), args.out, time.time() - t0))
    if args.stamp:
        with open(args.stamp, "w") as f:
            f.write("".join(w + "\n" for w in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
