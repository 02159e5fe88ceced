#!/usr/bin/python3
"""Make Megatron-LM checkpoints of the GPT reference models (tools/reference/gpt), laid out as
Megatron's own checkpointing code lays them out, for mcrt's checkpoint loader tests. Layout of
every case and the §-rule it follows: README.md next to this file. § numbers refer to
/work/shared/reference/megatron-inference.md.

    /usr/bin/python3 tools/reference/megatron_ckpt/make_megatron_ckpts.py --out DIR
            [--only CASE ...] [--list] [--stamp FILE] [--skip-without-torch]

No Megatron is needed: the state dicts are built here and written with torch.save (the
legacy `torch` format, §3.1-§3.4) or laid out by hand as `torch_dist` (§3.7), from the same
master weights make_fixtures.py draws, so each case holds exactly the weights of one reference
fixture (<config>/<variant>/model.safetensors). Output is a pure function of the code (fixed
seeds, fixed names, fixed ids): running twice gives the same bytes.

Per case: DIR/<case>/ holds the checkpoint (latest_checkpointed_iteration.txt, iter_0000100/ or
release/) and expected.json (config, tp/pp, naming, format, which fixture it holds).
"""

import argparse
import collections
import heapq
import io
import json
import os
import pickle
import random
import shutil
import struct
import sys
import time
import uuid
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
GPT_TOOLS = os.path.join(REPO, "tools", "reference", "gpt")
DEFAULT_OUT = os.path.join(REPO, "build", "reference", "megatron_ckpt")

ITERATION = 100
SEED = 1234
FAKE_SAVE_ROOT = "/checkpoints"          # where the "training run" saved (args.save, StorageMeta)
GENERATOR = "mcrt tools/reference/megatron_ckpt/make_megatron_ckpts.py"

# Megatron-level facts of each reference config that the fixture's model section does not
# carry: the tokenizer arguments (Megatron stores those, not the vocabulary size) and the
# padding unit. Vp = ceil(V / (d·tp))·(d·tp) must give the fixture's Vp at every TP used here,
# except where a case asks for re-padding (gelu_erf at tp 2).
MEGATRON_MODEL = {
    "gpt2": dict(tokenizer_type="GPT2BPETokenizer", vocab_file="/data/gpt2/gpt2-vocab.json",
                 merge_file="/data/gpt2/gpt2-merges.txt", make_vocab_size_divisible_by=128),
    "llama": dict(tokenizer_type="HuggingFaceTokenizer",
                  tokenizer_model="/models/tiny-llama/tokenizer",
                  make_vocab_size_divisible_by=128),
    # NullTokenizer: vocab_size = --vocab-size + 1 (the extra id is EOD)
    "kv_channels": dict(tokenizer_type="NullTokenizer", null_vocab_size=699,
                        make_vocab_size_divisible_by=32),
    "gelu_erf": dict(tokenizer_type="NullTokenizer", null_vocab_size=299,
                     make_vocab_size_divisible_by=128),
}


# ---------------------------------------------------------------------------------------------
# The case list
# ---------------------------------------------------------------------------------------------

def mcore(name, config, tp, pp, impl, variant="fp32", about="", **kw):
    return dict(name=name, kind="mcore_torch", config=config, variant=variant, tp=tp, pp=pp,
                impl=impl, about=about, **kw)


def legacy(name, tp, version, style, about=""):
    return dict(name=name, kind="legacy_torch", config="gpt2", variant="fp32", tp=tp, pp=1,
                version=version, style=style, about=about)


def dist(name, config, tp, pp, impl, about="", **kw):
    return dict(name=name, kind="torch_dist", config=config, variant="fp32", tp=tp, pp=pp,
                impl=impl, about=about, **kw)


def bad(name, based_on, defect, about):
    return dict(name=name, kind="bad", based_on=based_on, defect=defect, about=about)


CASES = [
    # a. MCore GPTModel, legacy `torch` format (§3.1, §3.2, §3.4)
    mcore("gpt2_te_tp1_pp1", "gpt2", 1, 1, "transformer_engine", optimizer=True,
          about="TE names, _extra_state, tied; the one case that saves an optimizer"),
    mcore("gpt2_te_tp2_pp1", "gpt2", 2, 1, "transformer_engine"),
    mcore("gpt2_te_tp4_pp1", "gpt2", 4, 1, "transformer_engine"),
    mcore("gpt2_local_tp2_pp1", "gpt2", 2, 1, "local", about="local names, tied"),
    mcore("gpt2_te_tp2_pp2_uneven", "gpt2", 2, 2, "transformer_engine", first_stage_layers=2,
          about="3 layers over 2 stages (--decoder-first-pipeline-num-layers 2): stage 0 holds "
                "layers 0-1, stage 1 layer 2 as its local layer 0; tied, so the last stage "
                "holds an output_layer.weight copy (§2.6)"),
    mcore("llama_local_tp1_pp1", "llama", 1, 1, "local"),
    mcore("llama_local_tp2_pp1", "llama", 2, 1, "local"),
    mcore("llama_local_tp1_pp2", "llama", 1, 2, "local"),
    mcore("llama_local_tp2_pp2", "llama", 2, 2, "local"),
    mcore("llama_te_tp1_pp1", "llama", 1, 1, "transformer_engine"),
    mcore("llama_te_tp2_pp2", "llama", 2, 2, "transformer_engine"),
    mcore("llama_local_tp2_pp1_bf16", "llama", 2, 1, "local", variant="bf16",
          about="bf16 params (--bf16): BFloat16Storage in the pickle"),
    mcore("kv_channels_local_tp1_pp1_release", "kv_channels", 1, 1, "local", release=True,
          about="'release' tracker: release/mp_rank_00, no 'iteration' key"),
    mcore("kv_channels_local_tp2_pp1", "kv_channels", 2, 1, "local"),
    mcore("kv_channels_local_tp1_pp2", "kv_channels", 1, 2, "local"),
    mcore("kv_channels_te_tp2_pp2", "kv_channels", 2, 2, "transformer_engine"),
    mcore("gelu_erf_te_tp2_pp1_vp512", "gelu_erf", 2, 1, "transformer_engine",
          about="Vp depends on the training TP (§2.6): V=300, divisible-by 128, tp 2 -> 512 "
                "rows (the fixture has 384); rows 384-511 replicate row 383 (§3.4 pad_weight)"),
    # b. legacy (non-MCore) GPT model (§3.3), checkpoint_version QKV orders (§3.1)
    legacy("legacy_gpt2_v0_tp1", 1, 0, "v0",
           about="no checkpoint_version key (= 0): QKV rows [3, np, hn] per shard; 2020 names "
                 "('transformer', attention.*, *_layernorm), RNG keys at top level"),
    legacy("legacy_gpt2_v0_tp2", 2, 0, "v0"),
    legacy("legacy_gpt2_v1_tp1", 1, 1.0, "v1",
           about="checkpoint_version 1.0: QKV rows [np, hn, 3] per shard; 2020 names"),
    legacy("legacy_gpt2_v1_tp2", 2, 1.0, "v1"),
    legacy("legacy_gpt2_v3_oldnames_tp2", 2, 3.0, "v3_oldnames",
           about="checkpoint_version 3.0, 'encoder' + self_attention.*, pre-Sept-2023 norm "
                 "names input_layernorm / post_attention_layernorm / final_layernorm"),
    legacy("legacy_gpt2_v3_tp1", 1, 3.0, "v3",
           about="checkpoint_version 3.0, current legacy names input_norm / "
                 "post_attention_norm / final_norm"),
    # c. torch_dist (§3.7)
    dist("dist_gpt2_te_tp2_pp1", "gpt2", 2, 1, "transformer_engine",
         about="TE _extra_state ShardedObjects, tied"),
    dist("dist_gpt2_te_tp2_pp2_uneven", "gpt2", 2, 2, "transformer_engine", first_stage_layers=2,
         about="tied with PP>1: the output layer copy is not saved (only "
               "embedding.word_embeddings.weight)"),
    dist("dist_llama_local_tp2_pp2", "llama", 2, 2, "local",
         about="swiglu fc1 as the global [L, 2F, h] = [gate; up], chunks per TP rank and half; "
               "local impl saved under TE names"),
    dist("dist_kv_channels_local_tp1_pp1", "kv_channels", 1, 1, "local"),
    # d. bad inputs for the loader's error tests
    bad("bad_truncated_pt", "gpt2_te_tp1_pp1", "truncated",
        "mp_rank_00/model_optim_rng.pt cut to half its length (the ZIP end record is gone)"),
    bad("bad_mixed_iterations", "gpt2_te_tp2_pp1", "mixed_iterations",
        "mp_rank_01 holds a shard saved at iteration 200 (its 'iteration' and "
        "args.iteration say 200) inside iter_0000100"),
    bad("bad_missing_rank", "llama_local_tp2_pp2", "missing_rank",
        "args say tp 2 x pp 2 but iter_0000100/mp_rank_01_001 is missing"),
    bad("bad_wrong_shape", "gpt2_te_tp1_pp1", "wrong_shape",
        "decoder.layers.1.self_attention.linear_qkv.weight has 176 rows, args say "
        "(np + 2ng)·hn = 192"),
    bad("bad_pickle_os_system", None, "os_system",
        "model_optim_rng.pt whose data.pkl calls os.system (GLOBAL 'os system' + REDUCE) for "
        "'iteration'; built by hand, never to be executed"),
    bad("bad_tracker_mismatch", "gpt2_te_tp1_pp1", "tracker_mismatch",
        "latest_checkpointed_iteration.txt says 200, only iter_0000100 exists"),
    bad("bad_dist_truncated_distcp", "dist_kv_channels_local_tp1_pp1", "dist_truncated",
        "__0_0.distcp cut short: .metadata storage_data entries run past its end"),
]

SKIPPED = [
    ("gpt2 (L=3) at pp 2 with an even split", "num_layers % pp != 0; covered by the uneven "
     "split --decoder-first-pipeline-num-layers 2 instead"),
    ("llama at tp 4", "num_query_groups 2 % 4 != 0"),
    ("kv_channels at tp 4", "num_query_groups 2 % 4 != 0 (and Vp would become 768)"),
    ("rope_interleaved_qkln at tp 2 / 4", "num_query_groups 3 % tp != 0"),
    ("squared_relu at tp > 1", "num_query_groups 1 (MQA)"),
]

EVIL_COMMAND = "touch /tmp/mcrt-megatron-ckpt-pickle-was-executed"


# ---------------------------------------------------------------------------------------------
# Weights
# ---------------------------------------------------------------------------------------------

_WEIGHTS = {}


def fixture_spec(config):
    import make_fixtures as mf
    return next(s for s in mf.CONFIGS if s["name"] == config)


def master_weights(config, variant):
    """The fixture's weights: make_fixtures.init_weights, TE names, fp32 (or rounded to bf16 as
    the fixture's bf16 variant is). Cached per (config, variant); never modified."""
    import numpy as np
    import torch
    import make_fixtures as mf
    import mcore_gpt as mg
    key = (config, variant)
    if key not in _WEIGHTS:
        spec = fixture_spec(config)
        cfg = mg.GPTConfig.from_args(spec["args"])
        w = mf.init_weights(mg, cfg, spec, np.random.default_rng(spec["seed"]))
        dtype = getattr(torch, mf.VARIANT_DTYPE[variant])
        _WEIGHTS[key] = (cfg, {n: t.to(dtype) for n, t in w.items()})
    return _WEIGHTS[key]


def padded_vocab(config, tp):
    import mcore_gpt as mg
    spec = fixture_spec(config)
    return mg.vocab_size_with_padding(spec["args"]["vocab_size"],
                                      MEGATRON_MODEL[config]["make_vocab_size_divisible_by"], tp)


def model_weights(case):
    """(cfg, global TE-named weights with the checkpoint's Vp rows)."""
    import torch
    cfg, w = master_weights(case["config"], case["variant"])
    vp = padded_vocab(case["config"], case["tp"])
    if vp == cfg.padded_vocab_size:
        return cfg, w, None
    assert vp > cfg.padded_vocab_size
    w = dict(w)
    for name in ("embedding.word_embeddings.weight", "output_layer.weight"):
        if name in w:       # §3.4 pad_weight: pad by replicating the last row
            t = w[name]
            extra = t[-1:].expand(vp - t.shape[0], t.shape[1])
            w[name] = torch.cat([t, extra]).contiguous()
    return cfg, w, {"fixture_rows": cfg.padded_vocab_size, "rows": vp,
                    "rule": "rows past the fixture's replicate its last row (§3.4 pad_weight)"}


def stage_layers(num_layers, pp, first_stage_layers=None):
    """Global layer indices of each pipeline stage (§3.2): even split, or the first stage's
    count given (--decoder-first-pipeline-num-layers) and the rest split evenly."""
    if first_stage_layers is None:
        assert num_layers % pp == 0
        n = num_layers // pp
        return [list(range(s * n, (s + 1) * n)) for s in range(pp)]
    rest = num_layers - first_stage_layers
    assert pp > 1 and rest % (pp - 1) == 0
    n = rest // (pp - 1)
    out = [list(range(first_stage_layers))]
    for s in range(1, pp):
        start = first_stage_layers + (s - 1) * n
        out.append(list(range(start, start + n)))
    return out


# ---------------------------------------------------------------------------------------------
# Tensor-parallel sharding (§3.4). The checker merges with its own code.
# ---------------------------------------------------------------------------------------------

def split_rows(t, tp, r):
    """Column-parallel / vocab-parallel: contiguous block r of dim 0."""
    n = t.shape[0] // tp
    assert n * tp == t.shape[0]
    return t[r * n:(r + 1) * n].clone()


def split_cols(t, tp, r):
    """Row-parallel weight: contiguous block r of dim 1 (input features)."""
    n = t.shape[1] // tp
    assert n * tp == t.shape[1]
    return t[:, r * n:(r + 1) * n].clone()


def split_qkv(cfg, t, tp, r):
    """linear_qkv W [(np+2ng)·hn, h] or b [(np+2ng)·hn]: rows are group-major (§2.3), rank r
    holds groups r·ng/tp .. (r+1)·ng/tp-1 with their q, k and v (§3.4)."""
    ng = cfg.num_query_groups
    per_group = (cfg.num_attention_heads // ng + 2) * cfg.kv_channels
    assert ng % tp == 0
    groups = t.reshape((ng, per_group) + tuple(t.shape[1:]))           # [ng, per_group, (h)]
    mine = groups[r * (ng // tp):(r + 1) * (ng // tp)]                   # [ng/tp, per_group, (h)]
    return mine.reshape((-1,) + tuple(t.shape[1:])).clone()


def split_swiglu(cfg, t, tp, r):
    """SwiGLU fc1 W [2F, h] / b [2F] = [gate; up]: rank r holds [gate_r; up_r] (§3.4)."""
    F = cfg.ffn_hidden_size
    import torch
    gate, up = t[:F], t[F:]
    n = F // tp
    return torch.cat([gate[r * n:(r + 1) * n], up[r * n:(r + 1) * n]]).clone()


def shard_of(cfg, rest, t, tp, r):
    """Rank r's piece of one global tensor; `rest` is its name after 'decoder.layers.N.' (or
    the whole name outside the layers)."""
    if rest in ("embedding.word_embeddings.weight", "output_layer.weight"):
        return split_rows(t, tp, r)
    if rest in ("self_attention.linear_qkv.weight", "self_attention.linear_qkv.bias"):
        return split_qkv(cfg, t, tp, r)
    if rest in ("mlp.linear_fc1.weight", "mlp.linear_fc1.bias"):
        if cfg.activation == "swiglu":
            return split_swiglu(cfg, t, tp, r)
        return split_rows(t, tp, r)
    if rest in ("self_attention.linear_proj.weight", "mlp.linear_fc2.weight"):
        return split_cols(t, tp, r)
    return t.clone()        # replicated: norms, row-parallel biases, position embeddings


# ---------------------------------------------------------------------------------------------
# MCore state dicts (§3.2): names in module registration order
# ---------------------------------------------------------------------------------------------

def layer_entries(cfg, impl):
    """(key suffix within a layer, TE-named weight suffix or marker) in the order a
    TransformerLayer's state_dict lists them. '@te' = TE _extra_state (io.BytesIO),
    '@none' = Megatron Column/RowParallelLinear _extra_state (None)."""
    ln_bias = cfg.normalization == "LayerNorm"
    qkv_b, lin_b = cfg.add_qkv_bias, cfg.add_bias_linear
    out = []
    if impl == "transformer_engine":
        out.append(("self_attention.core_attention._extra_state", "@te"))
        out.append(("self_attention.linear_proj.weight", "self_attention.linear_proj.weight"))
        if lin_b:
            out.append(("self_attention.linear_proj.bias", "self_attention.linear_proj.bias"))
        out.append(("self_attention.linear_proj._extra_state", "@te"))
        for s in ["layer_norm_weight"] + (["layer_norm_bias"] if ln_bias else []) + ["weight"] \
                + (["bias"] if qkv_b else []):
            out.append(("self_attention.linear_qkv." + s, "self_attention.linear_qkv." + s))
        out.append(("self_attention.linear_qkv._extra_state", "@te"))
    else:
        out.append(("input_layernorm.weight", "self_attention.linear_qkv.layer_norm_weight"))
        if ln_bias:
            out.append(("input_layernorm.bias", "self_attention.linear_qkv.layer_norm_bias"))
        out.append(("self_attention.linear_proj.weight", "self_attention.linear_proj.weight"))
        if lin_b:
            out.append(("self_attention.linear_proj.bias", "self_attention.linear_proj.bias"))
        out.append(("self_attention.linear_proj._extra_state", "@none"))
        out.append(("self_attention.linear_qkv.weight", "self_attention.linear_qkv.weight"))
        if qkv_b:
            out.append(("self_attention.linear_qkv.bias", "self_attention.linear_qkv.bias"))
        out.append(("self_attention.linear_qkv._extra_state", "@none"))
    if cfg.qk_layernorm:
        for qk in ("q_layernorm", "k_layernorm"):
            for s in ["weight"] + (["bias"] if ln_bias else []):
                out.append(("self_attention.%s.%s" % (qk, s), "self_attention.%s.%s" % (qk, s)))
    if impl == "transformer_engine":
        for s in ["layer_norm_weight"] + (["layer_norm_bias"] if ln_bias else []) + ["weight"] \
                + (["bias"] if lin_b else []):
            out.append(("mlp.linear_fc1." + s, "mlp.linear_fc1." + s))
        out.append(("mlp.linear_fc1._extra_state", "@te"))
        out.append(("mlp.linear_fc2.weight", "mlp.linear_fc2.weight"))
        if lin_b:
            out.append(("mlp.linear_fc2.bias", "mlp.linear_fc2.bias"))
        out.append(("mlp.linear_fc2._extra_state", "@te"))
    else:
        out.append(("pre_mlp_layernorm.weight", "mlp.linear_fc1.layer_norm_weight"))
        if ln_bias:
            out.append(("pre_mlp_layernorm.bias", "mlp.linear_fc1.layer_norm_bias"))
        for s in ["weight"] + (["bias"] if lin_b else []):
            out.append(("mlp.linear_fc1." + s, "mlp.linear_fc1." + s))
        out.append(("mlp.linear_fc1._extra_state", "@none"))
        for s in ["weight"] + (["bias"] if lin_b else []):
            out.append(("mlp.linear_fc2." + s, "mlp.linear_fc2." + s))
        out.append(("mlp.linear_fc2._extra_state", "@none"))
    return out


def extra_state(marker):
    return io.BytesIO() if marker == "@te" else None


def mcore_rank_model(cfg, w, impl, tp, r, layers, first, last):
    """The `model` OrderedDict of TP rank r on a stage holding global `layers` (§3.2: keys flat,
    layer indices local to the stage, TE or local spelling)."""
    tied = not cfg.untie_embeddings_and_output_weights
    m = collections.OrderedDict()
    if first:
        m["embedding.word_embeddings.weight"] = shard_of(
            cfg, "embedding.word_embeddings.weight", w["embedding.word_embeddings.weight"], tp, r)
        if cfg.position_embedding_type == "learned_absolute":
            m["embedding.position_embeddings.weight"] = \
                w["embedding.position_embeddings.weight"].clone()
    for local, g in enumerate(layers):
        for key, src in layer_entries(cfg, impl):
            name = "decoder.layers.%d.%s" % (local, key)
            if src.startswith("@"):
                m[name] = extra_state(src)
            else:
                m[name] = shard_of(cfg, src, w["decoder.layers.%d.%s" % (g, src)], tp, r)
    if last:
        m["decoder.final_layernorm.weight"] = w["decoder.final_layernorm.weight"].clone()
        if cfg.normalization == "LayerNorm":
            m["decoder.final_layernorm.bias"] = w["decoder.final_layernorm.bias"].clone()
        if not tied:
            m["output_layer.weight"] = shard_of(cfg, "output_layer.weight",
                                                w["output_layer.weight"], tp, r)
        elif not first:
            # §2.6: tied with PP>1, the last stage keeps its own copy (all-reduced from stage 0)
            m["output_layer.weight"] = shard_of(cfg, "output_layer.weight",
                                                w["embedding.word_embeddings.weight"], tp, r)
        # the output layer is Megatron's ColumnParallelLinear: its _extra_state is None, and the
        # module exists (without a weight) even when tied at PP=1
        m["output_layer._extra_state"] = None
    return m


# ---------------------------------------------------------------------------------------------
# args (an argparse.Namespace with Megatron's argument names), rng state, scheduler
# ---------------------------------------------------------------------------------------------

def base_model_args(cfg, config, tp, Vp):
    mm = MEGATRON_MODEL[config]
    gqa = cfg.num_query_groups != cfg.num_attention_heads
    rope = cfg.position_embedding_type == "rope"
    a = collections.OrderedDict()
    a["num_layers"] = cfg.num_layers
    a["encoder_num_layers"] = cfg.num_layers
    a["decoder_num_layers"] = None
    a["hidden_size"] = cfg.hidden_size
    a["ffn_hidden_size"] = cfg.ffn_hidden_size
    a["num_attention_heads"] = cfg.num_attention_heads
    a["kv_channels"] = cfg.kv_channels                   # validate_args fills h/np when unset
    a["group_query_attention"] = gqa
    a["num_query_groups"] = cfg.num_query_groups if gqa else 1   # Megatron's default is 1
    a["max_position_embeddings"] = cfg.max_position_embeddings
    a["position_embedding_type"] = cfg.position_embedding_type
    a["use_rotary_position_embeddings"] = rope
    a["rotary_base"] = cfg.rotary_base if rope else 10000
    a["rotary_percent"] = cfg.rotary_percent if rope else 1.0
    a["rotary_interleaved"] = cfg.rotary_interleaved if rope else False
    a["rotary_seq_len_interpolation_factor"] = None
    a["use_rope_scaling"] = False
    a["add_position_embedding"] = not rope
    a["make_vocab_size_divisible_by"] = mm["make_vocab_size_divisible_by"]
    a["normalization"] = cfg.normalization
    a["norm_epsilon"] = cfg.norm_epsilon
    a["apply_layernorm_1p"] = cfg.apply_layernorm_1p
    a["apply_residual_connection_post_layernorm"] = False
    a["openai_gelu"] = False
    a["squared_relu"] = cfg.activation == "squared_relu"
    a["swiglu"] = cfg.activation == "swiglu"
    a["onnx_safe"] = None
    a["bias_gelu_fusion"] = cfg.add_bias_linear       # validate_args: False without biases
    a["bias_swiglu_fusion"] = True
    a["untie_embeddings_and_output_weights"] = cfg.untie_embeddings_and_output_weights
    a["qk_layernorm"] = cfg.qk_layernorm
    a["add_bias_linear"] = cfg.add_bias_linear
    a["add_qkv_bias"] = cfg.add_qkv_bias
    a["apply_query_key_layer_scaling"] = False
    a["attention_softmax_in_fp32"] = False
    a["attention_dropout"] = 0.1
    a["hidden_dropout"] = 0.1
    a["init_method_std"] = 0.02
    a["seq_length"] = cfg.max_position_embeddings
    a["tokenizer_type"] = mm["tokenizer_type"]
    a["vocab_file"] = mm.get("vocab_file")
    a["merge_file"] = mm.get("merge_file")
    a["tokenizer_model"] = mm.get("tokenizer_model")
    a["vocab_size"] = mm.get("null_vocab_size")       # --vocab-size, only for NullTokenizer
    a["padded_vocab_size"] = Vp
    return a


def mcore_args(case, cfg, Vp, iteration):
    import torch
    import pickle_stubs
    tp, pp = case["tp"], case["pp"]
    a = base_model_args(cfg, case["config"], tp, Vp)
    bf16 = case["variant"] == "bf16"
    a["fp16"] = False
    a["bf16"] = bf16
    a["params_dtype"] = torch.bfloat16 if bf16 else torch.float32
    a["fp32_residual_connection"] = False
    a["tensor_model_parallel_size"] = tp
    a["pipeline_model_parallel_size"] = pp
    a["decoder_first_pipeline_num_layers"] = case.get("first_stage_layers")
    a["decoder_last_pipeline_num_layers"] = None
    a["virtual_pipeline_model_parallel_size"] = None
    a["sequence_parallel"] = tp > 1
    a["context_parallel_size"] = 1
    a["expert_model_parallel_size"] = 1
    a["num_experts"] = None
    a["data_parallel_size"] = 1
    a["world_size"] = tp * pp
    a["transformer_impl"] = case["impl"]
    a["attention_backend"] = pickle_stubs.AttnBackend.auto          # an Enum, as Megatron has
    a["use_legacy_models"] = False
    a["spec"] = None
    a["micro_batch_size"] = 1
    a["global_batch_size"] = 8
    a["train_iters"] = 1000
    a["lr"] = 3e-4
    a["min_lr"] = 3e-5
    a["lr_decay_style"] = "cosine"
    a["lr_warmup_iters"] = 10
    a["weight_decay"] = 0.01
    a["clip_grad"] = 1.0
    a["seed"] = SEED
    a["save"] = "%s/%s" % (FAKE_SAVE_ROOT, case["name"])
    a["load"] = None
    a["save_interval"] = ITERATION
    a["ckpt_format"] = "torch_dist" if case["kind"] == "torch_dist" else "torch"
    a["no_save_optim"] = not case.get("optimizer", False)
    a["no_save_rng"] = False
    a["iteration"] = iteration
    a["consumed_train_samples"] = iteration * 8
    return argparse.Namespace(**a)


def legacy_args(case, cfg, Vp):
    """Era-appropriate argument sets (see README: approximations of what old Megatron stored;
    what matters is that a loader copes with the missing ones)."""
    import torch
    style, tp = case["style"], case["tp"]
    mm = MEGATRON_MODEL["gpt2"]
    a = collections.OrderedDict()
    a["num_layers"] = cfg.num_layers
    a["hidden_size"] = cfg.hidden_size
    a["num_attention_heads"] = cfg.num_attention_heads
    a["max_position_embeddings"] = cfg.max_position_embeddings
    a["seq_length"] = cfg.max_position_embeddings
    a["make_vocab_size_divisible_by"] = mm["make_vocab_size_divisible_by"]
    a["padded_vocab_size"] = Vp
    a["tokenizer_type"] = mm["tokenizer_type"]
    a["vocab_file"] = mm["vocab_file"]
    a["merge_file"] = mm["merge_file"]
    a["layernorm_epsilon"] = cfg.norm_epsilon
    a["apply_residual_connection_post_layernorm"] = False
    a["openai_gelu"] = False
    a["onnx_safe"] = None
    a["bias_gelu_fusion"] = True
    a["fp16"] = False
    a["hidden_dropout"] = 0.1
    a["attention_dropout"] = 0.1
    a["lr"] = 1.5e-4
    a["seed"] = SEED
    a["save"] = "%s/%s" % (FAKE_SAVE_ROOT, case["name"])
    if style == "v0":
        a["model_parallel_size"] = tp                    # the pre-PP name of the TP size
    else:
        a["tensor_model_parallel_size"] = tp
        a["pipeline_model_parallel_size"] = 1
    if style in ("v3_oldnames", "v3"):
        a["ffn_hidden_size"] = cfg.ffn_hidden_size
        a["kv_channels"] = cfg.kv_channels
        a["bf16"] = False
        a["params_dtype"] = torch.float32
        a["add_bias_linear"] = True
        a["add_qkv_bias"] = True
        a["swiglu"] = False
        a["squared_relu"] = False
        a["untie_embeddings_and_output_weights"] = False
        a["group_query_attention"] = False
        a["num_query_groups"] = 1
        a["position_embedding_type"] = "learned_absolute"
        a["use_rotary_position_embeddings"] = False
        a["add_position_embedding"] = True
        a["transformer_impl"] = "local"
        a["ckpt_format"] = "torch"
        a["iteration"] = ITERATION
    if style == "v3_oldnames":
        a["use_mcore_models"] = False
    if style == "v3":
        del a["layernorm_epsilon"]
        a["normalization"] = "LayerNorm"
        a["norm_epsilon"] = cfg.norm_epsilon
        a["apply_layernorm_1p"] = False
        a["use_legacy_models"] = True
    return argparse.Namespace(**a)


def rng_dict(rank):
    import numpy as np
    import torch
    random.seed(SEED + rank)
    np.random.seed(SEED + rank)
    torch.manual_seed(SEED + rank)
    return {
        "random_rng_state": random.getstate(),
        "np_rng_state": np.random.get_state(),
        "torch_rng_state": torch.get_rng_state(),
        "cuda_rng_state": torch.zeros(816, dtype=torch.uint8),     # no CUDA here
        "rng_tracker_states": {},
    }


def opt_param_scheduler():
    return {"max_lr": 3e-4, "lr_warmup_steps": 80, "num_steps": ITERATION * 8,
            "lr_decay_style": "cosine", "lr_decay_steps": 8000, "min_lr": 3e-5,
            "start_wd": 0.01, "end_wd": 0.01, "wd_incr_style": "constant",
            "wd_incr_steps": 8000}


def small_optimizer(model):
    """A small stand-in for Megatron's (non-distributed) optimizer state dict."""
    import torch
    n = sum(1 for v in model.values() if isinstance(v, torch.Tensor))
    first = next(v for v in model.values() if isinstance(v, torch.Tensor))
    return {
        "optimizer": {
            "state": {0: {"step": torch.tensor(float(ITERATION)),
                          "exp_avg": torch.zeros_like(first[:2]),
                          "exp_avg_sq": torch.zeros_like(first[:2])}},
            "param_groups": [{"lr": 2.9e-4, "betas": (0.9, 0.95), "eps": 1e-8,
                              "weight_decay": 0.01, "amsgrad": False, "maximize": False,
                              "foreach": None, "capturable": False, "differentiable": False,
                              "fused": None, "params": list(range(n))}],
        },
        "fp32_from_fp16_params": [],
    }


# ---------------------------------------------------------------------------------------------
# Writing torch.save files (§3.6), with Megatron's CUDA storage locations
# ---------------------------------------------------------------------------------------------

_LOCATIONS = {}          # storage data_ptr -> location tag while a file is being saved


def _tagger(storage):
    return _LOCATIONS.get(storage.data_ptr())


def _no_deserializer(obj, location):
    return None


def install_location_tagger():
    import torch.serialization
    torch.serialization.register_package(1, _tagger, _no_deserializer)


def torch_save(obj, dest, cuda_device=None, tensors=()):
    """torch.save(obj, dest); `tensors` (the model's) are tagged 'cuda:N' as Megatron's are.
    The stand-in classes are registered so args' enum pickles under its real name. `dest` is a
    path (the archive's top folder is then the file's stem, as for Megatron's
    torch.save(state_dict, '.../model_optim_rng.pt')) or a stream (folder 'archive', as DCP's
    _write_item gives)."""
    import torch
    import pickle_stubs
    _LOCATIONS.clear()
    if cuda_device is not None:
        for t in tensors:
            if t.numel():
                _LOCATIONS[t.storage().data_ptr()] = "cuda:%d" % cuda_device
    try:
        with pickle_stubs.registered():
            torch.save(obj, dest)
    finally:
        _LOCATIONS.clear()


def torch_save_bytes(obj):
    buf = io.BytesIO()
    torch_save(obj, buf)
    return buf.getvalue()


def save_file(path, obj, written, out_dir, cuda_device=None, tensors=()):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    torch_save(obj, path, cuda_device, tensors)
    written.append(os.path.relpath(path, out_dir))


def write_file(path, blob, written, out_dir):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(blob)
    written.append(os.path.relpath(path, out_dir))


def tensors_in(obj):
    import torch
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from tensors_in(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from tensors_in(v)


def rank_dir(tp_rank, pp_rank, pp):
    """§3.1 get_checkpoint_name: the _PPP suffix only when pp > 1."""
    if pp > 1:
        return "mp_rank_%02d_%03d" % (tp_rank, pp_rank)
    return "mp_rank_%02d" % tp_rank


def iter_dir(release):
    return "release" if release else "iter_%07d" % ITERATION


# ---------------------------------------------------------------------------------------------
# a. MCore, torch format
# ---------------------------------------------------------------------------------------------

def mcore_state_dicts(case, iteration=ITERATION):
    """{(tp_rank, pp_rank): top-level dict} of an MCore torch-format case."""
    cfg, w, _ = model_weights(case)
    Vp = w["embedding.word_embeddings.weight"].shape[0]
    tp, pp = case["tp"], case["pp"]
    layers = stage_layers(cfg.num_layers, pp, case.get("first_stage_layers"))
    release = case.get("release", False)
    out = {}
    for pp_rank in range(pp):
        for tp_rank in range(tp):
            rank = pp_rank * tp + tp_rank          # Megatron's default order: TP fastest
            model = mcore_rank_model(cfg, w, case["impl"], tp, tp_rank, layers[pp_rank],
                                     first=pp_rank == 0, last=pp_rank == pp - 1)
            sd = collections.OrderedDict()
            sd["args"] = mcore_args(case, cfg, Vp, 0 if release else iteration)
            sd["checkpoint_version"] = 3.0
            if not release:
                sd["iteration"] = iteration
            sd["model"] = model
            if case.get("optimizer"):
                sd["optimizer"] = small_optimizer(model)
            sd["opt_param_scheduler"] = opt_param_scheduler()
            sd["rng_state"] = [rng_dict(rank)]
            sd["num_floating_point_operations_so_far"] = 0
            out[(tp_rank, pp_rank)] = (rank, sd)
    return out


def write_mcore(case, out_dir, written):
    cdir = os.path.join(out_dir, case["name"])
    release = case.get("release", False)
    for (tp_rank, pp_rank), (rank, sd) in sorted(mcore_state_dicts(case).items(),
                                                 key=lambda kv: kv[1][0]):
        model_tensors = list(tensors_in(sd["model"])) + list(tensors_in(sd.get("optimizer", {})))
        path = os.path.join(cdir, iter_dir(release), rank_dir(tp_rank, pp_rank, case["pp"]),
                            "model_optim_rng.pt")
        save_file(path, sd, written, out_dir, rank % 8, model_tensors)
    tracker = "release" if release else str(ITERATION)
    write_file(os.path.join(cdir, "latest_checkpointed_iteration.txt"), tracker.encode(),
               written, out_dir)


# ---------------------------------------------------------------------------------------------
# b. legacy (non-MCore) GPT model
# ---------------------------------------------------------------------------------------------

LEGACY_NAMES = {
    # style: (encoder container, attention module, input norm, post-attention norm, final norm)
    "v0": ("transformer", "attention", "input_layernorm", "post_attention_layernorm",
           "final_layernorm"),
    "v1": ("transformer", "attention", "input_layernorm", "post_attention_layernorm",
           "final_layernorm"),
    "v3_oldnames": ("encoder", "self_attention", "input_layernorm", "post_attention_layernorm",
                    "final_layernorm"),
    "v3": ("encoder", "self_attention", "input_norm", "post_attention_norm", "final_norm"),
}


def legacy_qkv(cfg, t, tp, r, version):
    """One TP shard of query_key_value in the row order of `version` (§3.1). From the MCore MHA
    layout [np, (q, k, v), hn]; rank r holds heads r·np/tp ..; per shard:
    v0 [3, np_r, hn], v1.0 [np_r, hn, 3], v >= 2 [np_r, 3, hn]."""
    np_, hn = cfg.num_attention_heads, cfg.kv_channels
    assert cfg.num_query_groups == np_
    tail = tuple(t.shape[1:])
    heads = t.reshape((np_, 3, hn) + tail)[r * (np_ // tp):(r + 1) * (np_ // tp)]  # [np_r,3,hn,(h)]
    if version == 0:
        heads = heads.transpose(0, 1)                                  # [3, np_r, hn, (h)]
    elif version == 1.0:
        heads = heads.transpose(1, 2)                                  # [np_r, hn, 3, (h)]
    return heads.reshape((-1,) + tail).clone()


def legacy_rank_model(case, cfg, w, tp, r):
    container, attn, in_norm, post_norm, final_norm = LEGACY_NAMES[case["style"]]
    enc = collections.OrderedDict()
    for i in range(cfg.num_layers):
        m = "decoder.layers.%d." % i
        p = "layers.%d." % i
        enc[p + in_norm + ".weight"] = w[m + "self_attention.linear_qkv.layer_norm_weight"].clone()
        enc[p + in_norm + ".bias"] = w[m + "self_attention.linear_qkv.layer_norm_bias"].clone()
        for s in ("weight", "bias"):
            enc[p + attn + ".query_key_value." + s] = legacy_qkv(
                cfg, w[m + "self_attention.linear_qkv." + s], tp, r, case["version"])
        enc[p + attn + ".dense.weight"] = split_cols(w[m + "self_attention.linear_proj.weight"],
                                                     tp, r)
        enc[p + attn + ".dense.bias"] = w[m + "self_attention.linear_proj.bias"].clone()
        enc[p + post_norm + ".weight"] = w[m + "mlp.linear_fc1.layer_norm_weight"].clone()
        enc[p + post_norm + ".bias"] = w[m + "mlp.linear_fc1.layer_norm_bias"].clone()
        enc[p + "mlp.dense_h_to_4h.weight"] = split_rows(w[m + "mlp.linear_fc1.weight"], tp, r)
        enc[p + "mlp.dense_h_to_4h.bias"] = split_rows(w[m + "mlp.linear_fc1.bias"], tp, r)
        enc[p + "mlp.dense_4h_to_h.weight"] = split_cols(w[m + "mlp.linear_fc2.weight"], tp, r)
        enc[p + "mlp.dense_4h_to_h.bias"] = w[m + "mlp.linear_fc2.bias"].clone()
    enc[final_norm + ".weight"] = w["decoder.final_layernorm.weight"].clone()
    enc[final_norm + ".bias"] = w["decoder.final_layernorm.bias"].clone()
    embedding = {
        "word_embeddings": collections.OrderedDict(
            weight=split_rows(w["embedding.word_embeddings.weight"], tp, r)),
        "position_embeddings": collections.OrderedDict(
            weight=w["embedding.position_embeddings.weight"].clone()),
    }
    return {"language_model": {"embedding": embedding, container: enc}}


def write_legacy(case, out_dir, written):
    cfg, w, _ = model_weights(case)
    Vp = w["embedding.word_embeddings.weight"].shape[0]
    cdir = os.path.join(out_dir, case["name"])
    tp = case["tp"]
    for r in range(tp):
        sd = collections.OrderedDict()
        sd["args"] = legacy_args(case, cfg, Vp)
        if case["version"] != 0:                     # §3.1: missing means 0
            sd["checkpoint_version"] = case["version"]
        sd["iteration"] = ITERATION
        sd["model"] = legacy_rank_model(case, cfg, w, tp, r)
        rng = rng_dict(r)
        if case["style"] in ("v0", "v1"):
            # old checkpoints: RNG keys at top level, the scheduler under its old name
            sd["lr_scheduler"] = opt_param_scheduler()
            for k in ("random_rng_state", "np_rng_state", "torch_rng_state", "cuda_rng_state"):
                sd[k] = rng[k]
            sd["rng_tracker_states"] = rng["rng_tracker_states"]
        else:
            sd["opt_param_scheduler"] = opt_param_scheduler()
            sd["rng_state"] = [rng]
        save_file(os.path.join(cdir, iter_dir(False), rank_dir(r, 0, 1), "model_optim_rng.pt"),
                  sd, written, out_dir, r % 8, list(tensors_in(sd["model"])))
    write_file(os.path.join(cdir, "latest_checkpointed_iteration.txt"), str(ITERATION).encode(),
               written, out_dir)


# ---------------------------------------------------------------------------------------------
# c. torch_dist (§3.7)
# ---------------------------------------------------------------------------------------------

def te_name_of_local(rest):
    return {"input_layernorm.weight": "self_attention.linear_qkv.layer_norm_weight",
            "input_layernorm.bias": "self_attention.linear_qkv.layer_norm_bias",
            "pre_mlp_layernorm.weight": "mlp.linear_fc1.layer_norm_weight",
            "pre_mlp_layernorm.bias": "mlp.linear_fc1.layer_norm_bias"}.get(rest, rest)


def dist_rank_items(case, cfg, w, tp, pp, tp_rank, pp_rank, layers, L):
    """The MCore sharded state dict of one rank, as write items in state-dict order and only
    where this rank holds the main replica (replica_id 0; DP = 1 here):
      ('tensor', key, global_shape, global_offsets, chunk)  chunk carries the prepended
                                                             layer axis for stacked keys
      ('object', unique_key, data)                          a ShardedObject (BYTE_IO)"""
    tied = not cfg.untie_embeddings_and_output_weights
    first, last = pp_rank == 0, pp_rank == pp - 1
    items = []
    Vp, h = w["embedding.word_embeddings.weight"].shape

    def vocab_item(key, src):
        n = Vp // tp
        items.append(("tensor", key, (Vp, h), (tp_rank * n, 0),
                      split_rows(w[src], tp, tp_rank)))

    if first:
        vocab_item("embedding.word_embeddings.weight", "embedding.word_embeddings.weight")
        if cfg.position_embedding_type == "learned_absolute" and tp_rank == 0:
            t = w["embedding.position_embeddings.weight"]
            items.append(("tensor", "embedding.position_embeddings.weight", tuple(t.shape),
                          (0, 0), t.clone()))
    for g in layers:
        for key, src in layer_entries(cfg, case["impl"]):
            stacked = "decoder.layers." + te_name_of_local(key)      # dist: TE names always
            if src.startswith("@"):
                if tp_rank == 0:     # extra state: replica_id (0, tp_rank, dp) -> TP rank 0
                    items.append(("object", "%s/shard_%d_%d" % (stacked, g, L), extra_state(src)))
                continue
            full = w["decoder.layers.%d.%s" % (g, src)]
            if src in ("mlp.linear_fc1.weight", "mlp.linear_fc1.bias") \
                    and cfg.activation == "swiglu":
                # apply_swiglu_sharded_factory: gate_r and up_r are two chunks of the global
                # [2F, ...] = [gate; up], at fragment r and tp + r of 2·tp along axis 0
                F = cfg.ffn_hidden_size
                n = F // tp
                rest = tuple(full.shape[1:])
                local = split_swiglu(cfg, full, tp, tp_rank)
                gate, up = local[:n], local[n:]
                for piece, off in ((gate, tp_rank * n), (up, F + tp_rank * n)):
                    items.append(("tensor", stacked, (L,) + tuple(full.shape),
                                  (g, off) + (0,) * len(rest),
                                  piece.reshape((1,) + tuple(piece.shape)).clone()))
                continue
            local = shard_of(cfg, src, full, tp, tp_rank)
            if tuple(local.shape) == tuple(full.shape):              # replicated over TP
                if tp_rank != 0:
                    continue
                offs = (0,) * full.dim()
            elif src in ("self_attention.linear_proj.weight", "mlp.linear_fc2.weight"):
                offs = (0, tp_rank * local.shape[1])
            else:
                offs = (tp_rank * local.shape[0],) + (0,) * (full.dim() - 1)
            items.append(("tensor", stacked, (L,) + tuple(full.shape), (g,) + offs,
                          local.reshape((1,) + tuple(local.shape)).clone()))
    if last:
        if tp_rank == 0:
            for s in ("weight", "bias"):
                n = "decoder.final_layernorm." + s
                if n in w:
                    items.append(("tensor", n, tuple(w[n].shape), (0,), w[n].clone()))
        if not tied:
            vocab_item("output_layer.weight", "output_layer.weight")
        # tied: the last stage's copy is a non-main replica of embedding.word_embeddings.weight
        # (§3.7: stored only under that key), so nothing is written for it
        if tp_rank == 0:
            items.append(("object", "output_layer._extra_state/shard_0_1", None))
    return items


def split_by_size_and_type(bins, items):
    """Megatron's filesystem_async._split_by_size_and_type: bytes round-robin, tensors by size,
    largest first, each into the bin with the least bytes so far."""
    if bins == 1:
        return [items]
    byte_items = [it for it in items if it[0] == "object"]
    tensor_items = [it for it in items if it[0] == "tensor"]
    buckets = [[] for _ in range(bins)]
    for i, it in enumerate(byte_items):
        buckets[i % bins].append(it)
    sized = [(it, it[4].numel() * it[4].element_size()) for it in tensor_items]
    sized.sort(key=lambda p: p[1], reverse=True)
    heap = [(0, i) for i in range(bins)]
    for it, size in sized:
        total, b = heapq.heappop(heap)
        buckets[b].append(it)
        heapq.heappush(heap, (total + size, b))
    return buckets


def write_dist(case, out_dir, written):
    import torch
    import pickle_stubs as ps
    cfg, w, _ = model_weights(case)
    Vp = w["embedding.word_embeddings.weight"].shape[0]
    tp, pp, L = case["tp"], case["pp"], cfg.num_layers
    layers = stage_layers(L, pp, case.get("first_stage_layers"))
    cdir = os.path.join(out_dir, case["name"])
    idir = os.path.join(cdir, iter_dir(False))
    props = ps.TensorProperties(dtype=w["embedding.word_embeddings.weight"].dtype)

    state_md = collections.OrderedDict()
    storage = collections.OrderedDict()
    plans = []
    for rank in range(tp * pp):
        pp_rank, tp_rank = divmod(rank, tp)
        items = dist_rank_items(case, cfg, w, tp, pp, tp_rank, pp_rank, layers[pp_rank], L)
        rng = [rng_dict(rank)]
        items.append(("object", "rng_state/shard_%d.%d_%d.%d" % (pp_rank, tp_rank, pp, tp), rng))
        plan_items = []
        for it in items:                                 # create_default_global_save_plan
            if it[0] == "object":
                state_md[it[1]] = ps.BytesStorageMetadata()
                plan_items.append(ps.WriteItem(index=ps.MetadataIndex(it[1]),
                                               type=ps.WriteItemType.BYTE_IO))
            else:
                _, key, gshape, offs, chunk = it
                chunk_md = ps.ChunkStorageMetadata(offsets=torch.Size(offs),
                                                   sizes=torch.Size(chunk.shape))
                if key not in state_md:
                    state_md[key] = ps.TensorStorageMetadata(
                        properties=props, size=torch.Size(gshape), chunks=[])
                assert tuple(state_md[key].size) == tuple(gshape)
                state_md[key].chunks.append(chunk_md)
                plan_items.append(ps.WriteItem(
                    index=ps.MetadataIndex(key, offs), type=ps.WriteItemType.SHARD,
                    tensor_data=ps.TensorWriteData(chunk=chunk_md, properties=props,
                                                   size=torch.Size(gshape))))
        plans.append(ps.SavePlan(items=plan_items, storage_data=None, planner_data={}))

        file_count = 0
        for bucket in split_by_size_and_type(2, items):      # thread_count 2
            if not bucket:
                continue
            fname = "__%d_%d.distcp" % (rank, file_count)
            file_count += 1
            blob = io.BytesIO()
            ordered = [it for it in bucket if it[0] == "object"] + \
                      [it for it in bucket if it[0] == "tensor"]
            for it in ordered:
                start = blob.tell()
                if it[0] == "object":
                    # ShardedObject -> io.BytesIO of torch.save([data]) (strategies/torch.py)
                    blob.write(torch_save_bytes([it[2]]))
                    index = ps.MetadataIndex(it[1])
                else:
                    blob.write(torch_save_bytes(it[4]))      # one complete torch.save zip
                    index = ps.MetadataIndex(it[1], it[3])
                storage[index] = ps._StorageInfo(fname, start, blob.tell() - start)
            write_file(os.path.join(idir, fname), blob.getvalue(), written, out_dir)

    save_id = str(uuid.uuid5(uuid.NAMESPACE_URL, "mcrt-megatron-ckpt:" + case["name"]))
    md = ps.Metadata(state_dict_metadata=dict(state_md), planner_data=None,
                     storage_data=dict(storage),
                     storage_meta=ps.StorageMeta(
                         checkpoint_id="%s/%s/%s" % (FAKE_SAVE_ROOT, case["name"],
                                                     iter_dir(False)),
                         save_id=save_id, load_id=None, modules=[]),
                     version="1.0.0")
    md.all_local_plans = plans          # Megatron's save_state_dict_async_plan sets this
    with ps.registered():
        meta_blob = pickle.dumps(md)    # default protocol, as FileSystemWriter.finish
    write_file(os.path.join(idir, ".metadata"), meta_blob, written, out_dir)

    common = collections.OrderedDict()
    common["args"] = mcore_args(case, cfg, Vp, ITERATION)
    common["checkpoint_version"] = 3.0
    common["iteration"] = ITERATION
    common["opt_param_scheduler"] = opt_param_scheduler()
    common["num_floating_point_operations_so_far"] = 0
    save_file(os.path.join(idir, "common.pt"), common, written, out_dir)
    meta_json = {"sharded_backend": "torch_dist", "sharded_backend_version": 1,
                 "common_backend": "torch", "common_backend_version": 1}
    write_file(os.path.join(idir, "metadata.json"), json.dumps(meta_json).encode(),
               written, out_dir)
    write_file(os.path.join(cdir, "latest_checkpointed_iteration.txt"), str(ITERATION).encode(),
               written, out_dir)


# ---------------------------------------------------------------------------------------------
# d. bad inputs
# ---------------------------------------------------------------------------------------------

def evil_pickle():
    """A protocol-2 pickle of {'checkpoint_version': 3.0, 'iteration': os.system(EVIL_COMMAND),
    'model': {}} assembled opcode by opcode. Never unpickled here."""
    def unicode(s):
        b = s.encode()
        return b"X" + struct.pack("<I", len(b)) + b
    return b"".join([
        b"\x80\x02",                                   # PROTO 2
        b"}", b"(",                                    # EMPTY_DICT, MARK
        unicode("checkpoint_version"), b"G" + struct.pack(">d", 3.0),       # BINFLOAT
        unicode("iteration"),
        b"cos\nsystem\n",                              # GLOBAL 'os system'
        unicode(EVIL_COMMAND), b"\x85",                # TUPLE1
        b"R",                                          # REDUCE: os.system(EVIL_COMMAND)
        unicode("model"), b"}",
        b"u",                                          # SETITEMS
        b".",                                          # STOP
    ])


def evil_zip():
    """A torch.save-shaped ZIP (stored entries, <prefix>/data.pkl, <prefix>/version)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as z:
        for name, data in (("model_optim_rng/data.pkl", evil_pickle()),
                           ("model_optim_rng/version", b"3\n")):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED
            z.writestr(info, data)
    return buf.getvalue()


def case_by_name(name):
    return next(c for c in CASES if c["name"] == name)


def write_bad(case, out_dir, written):
    cdir = os.path.join(out_dir, case["name"])
    defect = case["defect"]
    if defect == "os_system":
        write_file(os.path.join(cdir, iter_dir(False), "mp_rank_00", "model_optim_rng.pt"),
                   evil_zip(), written, out_dir)
        write_file(os.path.join(cdir, "latest_checkpointed_iteration.txt"),
                   str(ITERATION).encode(), written, out_dir)
        return
    base = dict(case_by_name(case["based_on"]), name=case["name"])
    if defect == "dist_truncated":
        write_dist(base, out_dir, written)
        path = os.path.join(cdir, iter_dir(False), "__0_0.distcp")
        with open(path, "rb") as f:
            blob = f.read()
        with open(path, "wb") as f:
            f.write(blob[:len(blob) * 2 // 3])
        return
    if defect == "wrong_shape":
        sds = mcore_state_dicts(base)
        rank, sd = sds[(0, 0)]
        name = "decoder.layers.1.self_attention.linear_qkv.weight"
        sd["model"][name] = sd["model"][name][:-16].clone()     # drop the last head's V rows
        save_file(os.path.join(cdir, iter_dir(False), "mp_rank_00", "model_optim_rng.pt"),
                  sd, written, out_dir, 0, list(tensors_in(sd["model"])))
        write_file(os.path.join(cdir, "latest_checkpointed_iteration.txt"),
                   str(ITERATION).encode(), written, out_dir)
        return
    write_mcore(base, out_dir, written)
    idir = os.path.join(cdir, iter_dir(False))
    if defect == "truncated":
        path = os.path.join(idir, "mp_rank_00", "model_optim_rng.pt")
        with open(path, "rb") as f:
            blob = f.read()
        with open(path, "wb") as f:
            f.write(blob[:len(blob) // 2])
    elif defect == "mixed_iterations":
        later = mcore_state_dicts(base, iteration=200)
        rank, sd = later[(1, 0)]
        torch_save(sd, os.path.join(idir, "mp_rank_01", "model_optim_rng.pt"), rank % 8,
                   list(tensors_in(sd["model"])))
    elif defect == "missing_rank":
        gone = os.path.join(idir, "mp_rank_01_001")
        rel = os.path.relpath(os.path.join(gone, "model_optim_rng.pt"), out_dir)
        shutil.rmtree(gone)
        written.remove(rel)
    elif defect == "tracker_mismatch":
        with open(os.path.join(cdir, "latest_checkpointed_iteration.txt"), "wb") as f:
            f.write(b"200")
    else:
        raise AssertionError(defect)


# ---------------------------------------------------------------------------------------------
# expected.json
# ---------------------------------------------------------------------------------------------

def model_config(case, cfg, Vp):
    """The model section mcrt would take (Megatron argument names, as the fixture's config.yaml,
    with this checkpoint's padding unit and padded_vocab_size)."""
    spec = fixture_spec(case["config"])
    out = collections.OrderedDict(spec["args"])
    out["make_vocab_size_divisible_by"] = MEGATRON_MODEL[case["config"]][
        "make_vocab_size_divisible_by"]
    out["padded_vocab_size"] = Vp
    return out


def expected_json(case):
    if case["kind"] == "bad":
        base = case_by_name(case["based_on"]) if case["based_on"] else None
        out = collections.OrderedDict(case=case["name"], kind="bad", defect=case["defect"],
                                      about=case["about"],
                                      based_on=case["based_on"],
                                      expect="the loader must refuse this checkpoint with an "
                                             "error (and never execute anything)")
        if base is not None:
            out["reference_fixture"] = "%s/%s" % (base["config"], base["variant"])
        if case["defect"] == "os_system":
            out["forbidden_global"] = "os.system"
            out["would_run"] = EVIL_COMMAND
        return out
    cfg, w, padding = model_weights(case)
    Vp = w["embedding.word_embeddings.weight"].shape[0]
    tp, pp = case["tp"], case["pp"]
    layers = stage_layers(cfg.num_layers, pp, case.get("first_stage_layers"))
    release = case.get("release", False)
    out = collections.OrderedDict()
    out["case"] = case["name"]
    out["kind"] = case["kind"]
    out["about"] = case["about"]
    out["reference_fixture"] = "%s/%s" % (case["config"], case["variant"])
    out["config"] = model_config(case, cfg, Vp)
    out["ckpt_format"] = "torch_dist" if case["kind"] == "torch_dist" else "torch"
    out["tensor_model_parallel_size"] = tp
    out["pipeline_model_parallel_size"] = pp
    out["layers_per_stage"] = [len(l) for l in layers]
    if case["kind"] == "legacy_torch":
        container, attn, in_norm, post_norm, final_norm = LEGACY_NAMES[case["style"]]
        out["naming"] = "legacy"
        out["legacy_names"] = dict(container=container, attention=attn, input_norm=in_norm,
                                   post_attention_norm=post_norm, final_norm=final_norm)
        out["checkpoint_version"] = case["version"]
        out["checkpoint_version_stored"] = case["version"] != 0
        out["transformer_impl"] = "local"
    else:
        out["naming"] = "te" if (case["impl"] == "transformer_engine"
                                 or case["kind"] == "torch_dist") else "local"
        out["transformer_impl"] = case["impl"]
        out["checkpoint_version"] = 3.0
        out["checkpoint_version_stored"] = True
    out["tracker"] = "release" if release else str(ITERATION)
    out["iteration"] = None if release else ITERATION
    out["dtype"] = "bfloat16" if case["variant"] == "bf16" else "float32"
    out["padded_vocab_size"] = Vp
    out["vocab_padding"] = padding
    out["tied_output_copy_on_last_stage"] = (not cfg.untie_embeddings_and_output_weights
                                             and pp > 1 and case["kind"] == "mcore_torch")
    out["optimizer_saved"] = bool(case.get("optimizer"))
    if case["kind"] == "torch_dist":
        out["files"] = sorted(os.listdir(os.path.join(_OUT_DIR, case["name"], iter_dir(False))))
    else:
        out["rank_files"] = ["%s/%s/model_optim_rng.pt" % (iter_dir(release),
                                                           rank_dir(t, p, pp))
                             for p in range(pp) for t in range(tp)]
    out["generator"] = GENERATOR
    return out


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------

_OUT_DIR = None


def make_case(case, out_dir, written):
    cdir = os.path.join(out_dir, case["name"])
    if os.path.isdir(cdir):
        shutil.rmtree(cdir)
    {"mcore_torch": write_mcore, "legacy_torch": write_legacy, "torch_dist": write_dist,
     "bad": write_bad}[case["kind"]](case, out_dir, written)
    blob = (json.dumps(expected_json(case), indent=2) + "\n").encode()
    write_file(os.path.join(cdir, "expected.json"), blob, written, out_dir)


def main(argv=None):
    global _OUT_DIR
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output folder (default %(default)s)")
    ap.add_argument("--only", nargs="*", help="case names to make (default all)")
    ap.add_argument("--stamp", help="write the list of files made here")
    ap.add_argument("--skip-without-torch", action="store_true",
                    help="without torch: print one line, write the stamp, exit 0")
    ap.add_argument("--list", action="store_true", help="print the case names and exit")
    args = ap.parse_args(argv)
    if args.list:
        for c in CASES:
            print("%-36s %s" % (c["name"], c["kind"]))
        return 0
    try:
        import torch
    except ImportError:
        if not args.skip_without_torch:
            raise
        print("make_megatron_ckpts: python3-torch is not installed; no checkpoints made")
        if args.stamp:
            with open(args.stamp, "w") as f:
                f.write("skipped: python3-torch is not installed\n")
        return 0
    sys.path.insert(0, GPT_TOOLS)
    sys.path.insert(0, HERE)
    torch.set_num_threads(1)
    install_location_tagger()
    names = [c["name"] for c in CASES]
    for n in args.only or ():
        if n not in names:
            ap.error("unknown case %r (have: %s)" % (n, ", ".join(names)))
    _OUT_DIR = args.out
    os.makedirs(args.out, exist_ok=True)
    if not args.only:            # a full run: drop case folders of cases no longer listed
        for d in sorted(os.listdir(args.out)):
            if d not in names and os.path.isfile(os.path.join(args.out, d, "expected.json")):
                shutil.rmtree(os.path.join(args.out, d))
    t0 = time.time()
    written = []
    for case in CASES:
        if args.only and case["name"] not in args.only:
            continue
        t1 = time.time()
        n0 = len(written)
        make_case(case, args.out, written)
        size = sum(os.path.getsize(os.path.join(args.out, p)) for p in written[n0:])
        print("%-36s %-12s %3d files %8.1f KiB %5.2f s" % (case["name"], case["kind"],
                                                          len(written) - n0, size / 1024.0,
                                                          time.time() - t1))
    total = sum(os.path.getsize(os.path.join(args.out, p)) for p in written)
    print("make_megatron_ckpts: %d files, %.1f MiB in %s, %.1f s"
          % (len(written), total / 2.0 ** 20, args.out, time.time() - t0))
    if args.stamp:
        with open(args.stamp, "w") as f:
            f.write("".join(w + "\n" for w in written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
