#!/usr/bin/python3
"""Check the Megatron-LM checkpoints of tools/reference/megatron_ckpt/ independently of the writer.

    /usr/bin/python3 tests/megatron_ckpt/check_ckpts.py [--ckpts DIR] [--fixtures DIR] [-k SUB]

DIR (--ckpts) holds checkpoints made by make_megatron_ckpts.py (meson passes the ones its custom
target made in the build dir); without it they are made into a temporary folder first.
--fixtures is the reference fixture dir of tools/reference/gpt (made the same way when not
given). Exit 0 when every check passes, 1 when one fails, 77 (skip) without python3-torch.

Nothing here imports the writer. Every file is read back with torch.load through a restricted
unpickler (an allowlist of globals; Megatron's enums and the torch.distributed.checkpoint
dataclasses, which torch 1.13 lacks, become inert records), the TP shards are merged with the
inverse rules of §3.4 written here (concatenate vocab/column/row blocks, chunk-then-concatenate
SwiGLU, replicated tensors must agree), pipeline stages are renumbered from their local layer
indices, legacy names and QKV row orders (§3.1, §3.3) are mapped back, torch_dist chunks are
assembled by their offsets (§3.7). The result must equal the reference fixture's
model.safetensors bit for bit, and the reference model (mcore_gpt.MCoreGPT) run on it must give
the fixture's expected logits (<= 1e-5). § numbers: /work/shared/reference/megatron-inference.md.
"""

import argparse
import io
import json
import os
import pickle
import pickletools
import re
import struct
import subprocess
import sys
import tempfile
import traceback
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
GPT_TOOLS = os.path.join(REPO, "tools", "reference", "gpt")
WRITER = os.path.join(REPO, "tools", "reference", "megatron_ckpt", "make_megatron_ckpts.py")

try:
    import numpy as np
    import torch
except ImportError as e:
    print("SKIP: python3-torch / python3-numpy not installed (%s)" % e)
    sys.exit(77)

sys.path.insert(0, GPT_TOOLS)
import mcore_gpt as mg           # noqa: E402  (the reference model: used to run the logits)
import safetensors_io as st      # noqa: E402  (the fixture reader)

torch.set_num_threads(1)
LOGIT_TOL = 1e-5
EVIL_MARKER = "/tmp/mcrt-megatron-ckpt-pickle-was-executed"


class CheckFailed(Exception):
    pass


def check(cond, msg, *args):
    if not cond:
        raise CheckFailed(msg % args if args else msg)


# ---------------------------------------------------------------------------------------------
# Restricted unpickling
# ---------------------------------------------------------------------------------------------

class Record:
    """An inert stand-in for a dataclass the pickle names (torch.distributed.checkpoint.*):
    NEWOBJ makes it, BUILD fills it (a dict -> attributes, a tuple -> .state)."""
    cls_name = "?"

    def __init__(self, *args):
        self.args = args

    def __setstate__(self, state):
        if isinstance(state, dict):
            self.__dict__.update(state)
        else:
            self.state = state

    def __repr__(self):
        return "%s(%s)" % (self.cls_name, self.__dict__)


class EnumValue(tuple):
    """('enum', class name, member name or value): what an enum becomes here."""


class EnumMeta(type):
    def __getattr__(cls, name):                       # getattr(EnumClass, 'MEMBER')
        if name.startswith("__"):
            raise AttributeError(name)
        return EnumValue(("enum", cls.cls_name, name))


class StubEnum(metaclass=EnumMeta):
    cls_name = "?"

    def __new__(cls, value):                          # EnumClass(value)
        return EnumValue(("enum", cls.cls_name, value))


_RECORDS = {}


def record_class(module, name):
    key = module + "." + name
    if key not in _RECORDS:
        _RECORDS[key] = type(name, (Record,), {"cls_name": key})
    return _RECORDS[key]


def enum_class(module, name):
    key = module + "." + name
    if key not in _RECORDS:
        _RECORDS[key] = EnumMeta(name, (StubEnum,), {"cls_name": key})
    return _RECORDS[key]


def safe_getattr(obj, name):
    if isinstance(obj, EnumMeta):
        return getattr(obj, name)
    raise pickle.UnpicklingError("getattr on %r is not allowed" % (obj,))


def latin1_bytes(text, encoding):
    if encoding != "latin1":
        raise pickle.UnpicklingError("_codecs.encode with %r" % encoding)
    return text.encode("latin1")


DCP_RECORDS = {
    "torch.distributed.checkpoint.metadata": {
        "Metadata", "TensorStorageMetadata", "BytesStorageMetadata", "ChunkStorageMetadata",
        "TensorProperties", "MetadataIndex", "StorageMeta"},
    "torch.distributed.checkpoint.planner": {"SavePlan", "WriteItem", "TensorWriteData"},
    "torch.distributed.checkpoint.filesystem": {"_StorageInfo"},
}
ENUMS = {
    ("megatron.core.transformer.enums", "AttnBackend"),
    ("torch.distributed.checkpoint.metadata", "_MEM_FORMAT_ENCODING"),
    ("torch.distributed.checkpoint.planner", "WriteItemType"),
}
TORCH_ATTRS = {"Size", "float32", "float16", "bfloat16", "float64", "int64", "int32", "uint8",
               "bool", "strided"}


class SafeUnpickler(pickle.Unpickler):
    """Allows only the globals a Megatron checkpoint needs; anything else (os.system, ...) is
    refused before it could be called."""

    def find_class(self, module, name):
        import argparse as _argparse
        import collections as _collections
        if (module, name) in (("collections", "OrderedDict"),):
            return _collections.OrderedDict
        if (module, name) == ("argparse", "Namespace"):
            return _argparse.Namespace
        if (module, name) == ("_io", "BytesIO"):
            return io.BytesIO
        if module in ("builtins", "__builtin__") and name in ("bytes", "set", "frozenset"):
            return {"bytes": bytes, "set": set, "frozenset": frozenset}[name]
        if (module, name) == ("_codecs", "encode"):      # protocol 2 spells bytes this way
            return latin1_bytes
        if module in ("builtins", "__builtin__") and name == "getattr":
            return safe_getattr
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_parameter"):
            return getattr(torch._utils, name)
        if module == "torch" and name in TORCH_ATTRS:
            return getattr(torch, name)
        if (module, name) == ("torch.serialization", "_get_layout"):
            return lambda s: {"torch.strided": torch.strided}[s]
        if module in ("numpy.core.multiarray", "numpy._core.multiarray") and name == "_reconstruct":
            return np.core.multiarray._reconstruct
        if module == "numpy" and name in ("ndarray", "dtype"):
            return getattr(np, name)
        if (module, name) in ENUMS:
            return enum_class(module, name)
        if name in DCP_RECORDS.get(module, ()):
            return record_class(module, name)
        raise pickle.UnpicklingError("global %s.%s is not allowed" % (module, name))


STORAGE_DTYPES = {"FloatStorage": torch.float32, "BFloat16Storage": torch.bfloat16,
                  "HalfStorage": torch.float16, "DoubleStorage": torch.float64,
                  "LongStorage": torch.int64, "IntStorage": torch.int32,
                  "ShortStorage": torch.int16, "CharStorage": torch.int8,
                  "ByteStorage": torch.uint8, "BoolStorage": torch.bool}


class StorageType:
    def __init__(self, dtype):
        self.dtype = dtype


def rebuild_tensor(storage, offset, size, stride, requires_grad=False, hooks=None,
                   metadata=None):
    """torch._utils._rebuild_tensor_v2, done here: a strided view of the flat storage, copied."""
    return torch.as_strided(storage, tuple(size), tuple(stride), offset).clone()


class TorchZipUnpickler(SafeUnpickler):
    """data.pkl of a torch.save ZIP (§3.6): storages come from <prefix>/data/<key> via
    BINPERSID ('storage', StorageType, key, location, numel); the location ('cpu' or 'cuda:N')
    is ignored. Built on the restricted unpickler above; torch.load is never used (Debian's
    torch 1.13 torch.load ignores its pickle_module argument unless weights_only=True)."""

    def __init__(self, f, zf, prefix):
        super().__init__(f, encoding="utf-8")
        self.zf, self.prefix, self.storages = zf, prefix, {}

    def find_class(self, module, name):
        if module == "torch" and name in STORAGE_DTYPES:
            return StorageType(STORAGE_DTYPES[name])
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return rebuild_tensor
        if (module, name) == ("torch._utils", "_rebuild_parameter"):
            return lambda data, requires_grad, hooks: data
        return super().find_class(module, name)

    def persistent_load(self, pid):
        kind, stype, key, location, numel = pid
        if kind != "storage" or not isinstance(stype, StorageType):
            raise pickle.UnpicklingError("persistent id %r" % (pid,))
        if key not in self.storages:
            raw = self.zf.read("%s/data/%s" % (self.prefix, key))
            size = torch.tensor([], dtype=stype.dtype).element_size()
            check(len(raw) == numel * size, "storage %s: %d bytes for %d elements", key,
                  len(raw), numel)
            self.storages[key] = torch.frombuffer(bytearray(raw), dtype=stype.dtype) \
                if raw else torch.tensor([], dtype=stype.dtype)
        return self.storages[key]


def tload(src):
    """Load a torch.save file (a path or its bytes) with the reader above."""
    if not isinstance(src, (bytes, bytearray)):
        with open(src, "rb") as f:
            src = f.read()
    zf = zipfile.ZipFile(io.BytesIO(src))
    prefixes = {n.split("/")[0] for n in zf.namelist()}
    if len(prefixes) != 1:
        raise ValueError("not one top-level folder: %s" % sorted(prefixes))
    prefix = prefixes.pop()
    return TorchZipUnpickler(io.BytesIO(zf.read(prefix + "/data.pkl")), zf, prefix).load()


def torch_save_zip_facts(blob):
    """§3.6 container facts of a torch.save file: (prefix, names, data.pkl bytes)."""
    z = zipfile.ZipFile(io.BytesIO(blob))
    names = z.namelist()
    prefixes = {n.split("/")[0] for n in names}
    check(len(prefixes) == 1, "more than one top-level folder: %s", sorted(prefixes))
    prefix = prefixes.pop()
    for info in z.infolist():
        check(info.compress_type == zipfile.ZIP_STORED, "%s is compressed", info.filename)
        if "/data/" in info.filename:
            head = blob[info.header_offset:info.header_offset + 30]
            name_len, extra_len = struct.unpack("<HH", head[26:30])
            start = info.header_offset + 30 + name_len + extra_len
            check(start % 64 == 0, "%s data at %d is not 64-byte aligned", info.filename, start)
    check(prefix + "/data.pkl" in names and prefix + "/version" in names,
          "no data.pkl / version in %s", names)
    return prefix, names, z.read(prefix + "/data.pkl")


# ---------------------------------------------------------------------------------------------
# Megatron args -> model config (§2.2, §3.5)
# ---------------------------------------------------------------------------------------------

def config_from_args(a, vocab_size):
    """The model hyper-parameters a loader gets from a checkpoint's args, with Megatron's
    defaults for the ones old checkpoints lack."""
    g = lambda k, d=None: getattr(a, k, d) if getattr(a, k, None) is not None else d  # noqa
    h, np_ = a.hidden_size, a.num_attention_heads
    cfg = dict(hidden_size=h, num_layers=a.num_layers, num_attention_heads=np_)
    # --num-query-groups only counts with --group-query-attention (its default is 1)
    cfg["num_query_groups"] = a.num_query_groups if g("group_query_attention", False) else np_
    cfg["kv_channels"] = g("kv_channels", h // np_)
    cfg["ffn_hidden_size"] = g("ffn_hidden_size", 4 * h)
    cfg["normalization"] = g("normalization", "LayerNorm")
    cfg["norm_epsilon"] = g("norm_epsilon", g("layernorm_epsilon", 1e-5))
    cfg["apply_layernorm_1p"] = g("apply_layernorm_1p", False)
    cfg["qk_layernorm"] = g("qk_layernorm", False)
    pos = g("position_embedding_type",
            "rope" if g("use_rotary_position_embeddings", False) else "learned_absolute")
    cfg["position_embedding_type"] = pos
    if pos == "rope":
        cfg["rotary_percent"] = g("rotary_percent", 1.0)
        cfg["rotary_base"] = g("rotary_base", 10000)
        cfg["rotary_interleaved"] = g("rotary_interleaved", False)
    cfg["max_position_embeddings"] = a.max_position_embeddings
    bias = g("add_bias_linear", True)
    cfg["add_bias_linear"] = bias
    cfg["add_qkv_bias"] = g("add_qkv_bias", False) or bias
    if g("swiglu", False):
        act = "swiglu"
    elif g("squared_relu", False):
        act = "squared_relu"
    elif g("openai_gelu", False):
        act = "gelu_tanh"
    elif g("onnx_safe", False):
        act = "gelu"
    else:                            # §2.4: the fused bias-gelu (tanh) runs only with biases
        act = "gelu_tanh" if (g("bias_gelu_fusion", True) and bias) else "gelu"
    cfg["activation"] = act
    cfg["untie_embeddings_and_output_weights"] = g("untie_embeddings_and_output_weights", False)
    cfg["vocab_size"] = vocab_size
    cfg["padded_vocab_size"] = a.padded_vocab_size
    tp = g("tensor_model_parallel_size", g("model_parallel_size", 1))
    d = a.make_vocab_size_divisible_by
    want_vp = -(-vocab_size // (d * tp)) * (d * tp)          # §2.6 _vocab_size_with_padding
    check(a.padded_vocab_size == want_vp, "padded_vocab_size %d != ceil(%d / (%d*%d))*... = %d",
          a.padded_vocab_size, vocab_size, d, tp, want_vp)
    if g("tokenizer_type") == "NullTokenizer":
        check(a.vocab_size + 1 == vocab_size, "NullTokenizer: --vocab-size %s + 1 != V %d",
              a.vocab_size, vocab_size)
    return cfg


def check_config(a, exp):
    """args -> config equals expected.json's config (the one mcrt's model section would take)."""
    got = mg.GPTConfig.from_args(config_from_args(a, exp["config"]["vocab_size"]))
    want = mg.GPTConfig.from_args(exp["config"])
    check(got.as_args() == want.as_args(), "config from args %s != expected %s",
          got.as_args(), want.as_args())
    return got


def args_tp_pp(a):
    tp = getattr(a, "tensor_model_parallel_size", None) or getattr(a, "model_parallel_size")
    return tp, getattr(a, "pipeline_model_parallel_size", 1) or 1


# ---------------------------------------------------------------------------------------------
# Names and the inverse TP rules (§3.2, §3.4)
# ---------------------------------------------------------------------------------------------

LOCAL_TO_TE = {"input_layernorm.weight": "self_attention.linear_qkv.layer_norm_weight",
               "input_layernorm.bias": "self_attention.linear_qkv.layer_norm_bias",
               "pre_mlp_layernorm.weight": "mlp.linear_fc1.layer_norm_weight",
               "pre_mlp_layernorm.bias": "mlp.linear_fc1.layer_norm_bias"}
LAYER = re.compile(r"^decoder\.layers\.(\d+)\.(.+)$")
TE_EXTRA = ("self_attention.core_attention", "self_attention.linear_proj",
            "self_attention.linear_qkv", "mlp.linear_fc1", "mlp.linear_fc2")


def canonical(name):
    m = LAYER.match(name)
    if not m:
        return name
    return "decoder.layers.%s.%s" % (m.group(1), LOCAL_TO_TE.get(m.group(2), m.group(2)))


def tp_rule(name):
    rest = LAYER.match(name).group(2) if LAYER.match(name) else name
    if rest in ("embedding.word_embeddings.weight", "output_layer.weight",
                "self_attention.linear_qkv.weight", "self_attention.linear_qkv.bias"):
        return "rows"
    if rest in ("mlp.linear_fc1.weight", "mlp.linear_fc1.bias"):
        return "fc1"
    if rest in ("self_attention.linear_proj.weight", "mlp.linear_fc2.weight"):
        return "cols"
    return "replicated"


def merge_tp(shards, swiglu):
    """Merge TP shards (a list of {canonical name: tensor}, rank order) into full tensors."""
    names = list(shards[0])
    for s in shards[1:]:
        check(list(s) == names, "TP ranks hold different keys")
    out = {}
    for n in names:
        parts = [s[n] for s in shards]
        for p in parts[1:]:
            check(p.shape == parts[0].shape and p.dtype == parts[0].dtype,
                  "%s: TP ranks differ in shape/dtype", n)
        rule = tp_rule(n)
        if rule == "replicated":
            for p in parts[1:]:
                check(bits_equal(p, parts[0]), "%s: replicated tensor differs across TP ranks", n)
            out[n] = parts[0]
        elif rule == "rows" or (rule == "fc1" and not swiglu):
            out[n] = torch.cat(parts, dim=0)
        elif rule == "cols":
            out[n] = torch.cat(parts, dim=1)
        else:                   # SwiGLU: each rank [gate_r; up_r] -> [gate; up] (§3.4)
            halves = [torch.chunk(p, 2, dim=0) for p in parts]
            out[n] = torch.cat([h[0] for h in halves] + [h[1] for h in halves], dim=0)
    return out


def bits_equal(a, b):
    if a.dtype != b.dtype or a.shape != b.shape:
        return False
    as_int = {torch.float32: torch.int32, torch.bfloat16: torch.int16, torch.float16: torch.int16,
              torch.float64: torch.int64}.get(a.dtype)
    if as_int is None:
        return torch.equal(a, b)
    return torch.equal(a.contiguous().view(as_int), b.contiguous().view(as_int))


# ---------------------------------------------------------------------------------------------
# Against the reference fixture
# ---------------------------------------------------------------------------------------------

def fixture_weights(fixtures, ref):
    tensors, _ = st.read(os.path.join(fixtures, ref, "model.safetensors"))
    return {canonical(n): t for n, t in tensors.items()
            if not n.endswith("._extra_state") and not n.endswith("rotary_pos_emb.inv_freq")}


def compare_with_fixture(merged, exp, fixtures):
    fx = fixture_weights(fixtures, exp["reference_fixture"])
    check(set(merged) == set(fx), "names differ from the fixture: only here %s, only there %s",
          sorted(set(merged) - set(fx)), sorted(set(fx) - set(merged)))
    pad = exp.get("vocab_padding")
    for n in sorted(fx):
        got, want = merged[n], fx[n]
        if pad and n in ("embedding.word_embeddings.weight", "output_layer.weight"):
            rows = pad["fixture_rows"]
            check(got.shape[0] == pad["rows"], "%s: %d rows, expected %d", n, got.shape[0],
                  pad["rows"])
            check(bits_equal(got[rows:], want[-1:].expand(got.shape[0] - rows, -1).contiguous()),
                  "%s: padding rows are not copies of the last row (§3.4)", n)
            got = got[:rows].contiguous()
        check(bits_equal(got, want), "%s differs from the fixture (%s %s vs %s %s)", n,
              got.dtype, list(got.shape), want.dtype, list(want.shape))
    return len(fx)


def compare_logits(cfg, merged, exp, fixtures):
    """MCoreGPT on the merged weights, every prompt + its 32 greedy tokens in one forward."""
    ex, _ = st.read(os.path.join(fixtures, exp["reference_fixture"], "expected.safetensors"))
    model = mg.MCoreGPT(cfg, merged, dtype=torch.float64)
    vf = ex["prompt_logits"].shape[-1]
    worst = 0.0
    for j in range(ex["tokens"].shape[0]):
        n = int(ex["prompt_lengths"][j])
        greedy = ex["greedy_tokens"][j]
        steps = ex["decode_logits"].shape[1]
        seq = torch.cat([ex["tokens"][j, :n], greedy[:steps]])
        out = model.forward(seq[None])[0][:, :vf].to(torch.float32)        # [n + steps, Vf]
        worst = max(worst, float((out[:n] - ex["prompt_logits"][j, :n]).abs().max()),
                    float((out[n:] - ex["decode_logits"][j]).abs().max()))
        for k in range(steps + 1):
            check(mg.greedy_token(cfg, out[n - 1 + k]) == int(greedy[k]),
                  "greedy token %d of prompt %d differs", k, j)
    check(worst <= LOGIT_TOL, "logits differ from the fixture by %.3g", worst)
    return worst


# ---------------------------------------------------------------------------------------------
# Common per-file checks
# ---------------------------------------------------------------------------------------------

def read_tracker(cdir, exp):
    with open(os.path.join(cdir, "latest_checkpointed_iteration.txt")) as f:
        tracker = f.read().strip()
    check(tracker == exp["tracker"], "tracker says %r, expected %r", tracker, exp["tracker"])
    idir = "release" if tracker == "release" else "iter_%07d" % int(tracker)
    entries = sorted(os.listdir(cdir))
    check(entries == sorted(["expected.json", "latest_checkpointed_iteration.txt", idir]),
          "case dir holds %s", entries)
    return os.path.join(cdir, idir)


def check_rng(rng):
    check(isinstance(rng, dict) and set(rng) == {"random_rng_state", "np_rng_state",
                                                 "torch_rng_state", "cuda_rng_state",
                                                 "rng_tracker_states"}, "rng keys %s", rng)
    r = rng["random_rng_state"]
    check(isinstance(r, tuple) and r[0] == 3 and len(r[1]) == 625, "random_rng_state")
    n = rng["np_rng_state"]
    check(n[0] == "MT19937" and isinstance(n[1], np.ndarray) and n[1].dtype == np.uint32
          and n[1].shape == (624,), "np_rng_state")
    check(isinstance(rng["torch_rng_state"], torch.Tensor)
          and rng["torch_rng_state"].dtype == torch.uint8, "torch_rng_state")
    check(rng["cuda_rng_state"].dtype == torch.uint8 and rng["cuda_rng_state"].numel() == 816,
          "cuda_rng_state")
    check(isinstance(rng["rng_tracker_states"], dict), "rng_tracker_states")


def load_rank_file(path, want_prefix, cuda_device):
    with open(path, "rb") as f:
        blob = f.read()
    prefix, names, pkl = torch_save_zip_facts(blob)
    check(prefix == want_prefix, "archive prefix %r, expected %r", prefix, want_prefix)
    if cuda_device is not None:            # §3.6: Megatron's tensors were on the GPU
        check(("cuda:%d" % cuda_device).encode() in pkl, "no 'cuda:%d' storage location",
              cuda_device)
    return tload(blob)


def check_common_top(sd, exp):
    if exp["tracker"] == "release":
        check("iteration" not in sd, "release checkpoint carries 'iteration'")
    else:
        check(sd["iteration"] == exp["iteration"], "iteration %s", sd.get("iteration"))
    if exp["checkpoint_version_stored"]:
        check(sd["checkpoint_version"] == exp["checkpoint_version"], "checkpoint_version %s",
              sd.get("checkpoint_version"))
    else:
        check("checkpoint_version" not in sd, "checkpoint_version stored")


# ---------------------------------------------------------------------------------------------
# a. MCore, torch format
# ---------------------------------------------------------------------------------------------

def check_mcore(cdir, exp, fixtures):
    idir = read_tracker(cdir, exp)
    tp, pp = exp["tensor_model_parallel_size"], exp["pipeline_model_parallel_size"]
    want = {}
    for p in range(pp):
        for t in range(tp):
            want["mp_rank_%02d_%03d" % (t, p) if pp > 1 else "mp_rank_%02d" % t] = (t, p)
    check(sorted(os.listdir(idir)) == sorted(want), "rank dirs %s", sorted(os.listdir(idir)))
    te = exp["transformer_impl"] == "transformer_engine"
    dtype = getattr(torch, exp["dtype"])
    stages = [[None] * tp for _ in range(pp)]
    cfg = None
    for d, (t, p) in want.items():
        check(os.listdir(os.path.join(idir, d)) == ["model_optim_rng.pt"], "%s holds %s", d,
              os.listdir(os.path.join(idir, d)))
        sd = load_rank_file(os.path.join(idir, d, "model_optim_rng.pt"), "model_optim_rng",
                            (p * tp + t) % 8)
        check_common_top(sd, exp)
        a = sd["args"]
        check(isinstance(a, argparse.Namespace), "args is %s", type(a))
        check(args_tp_pp(a) == (tp, pp), "args tp/pp %s", args_tp_pp(a))
        check(a.params_dtype == dtype and a.bf16 == (dtype == torch.bfloat16), "params_dtype")
        check(a.ckpt_format == "torch" and a.transformer_impl == exp["transformer_impl"],
              "ckpt_format / transformer_impl")
        check(a.attention_backend[0] == "enum" and "AttnBackend" in a.attention_backend[1],
              "attention_backend should be an enum, got %r", a.attention_backend)
        cfg = check_config(a, exp)
        check(("optimizer" in sd) == exp["optimizer_saved"], "optimizer presence")
        check(isinstance(sd["opt_param_scheduler"], dict), "opt_param_scheduler")
        check(isinstance(sd["rng_state"], list) and len(sd["rng_state"]) == 1, "rng_state list")
        check_rng(sd["rng_state"][0])
        model = sd["model"]
        check(type(model).__name__ == "OrderedDict", "model is %s", type(model))
        tensors = {}
        for n, v in model.items():
            if n.endswith("._extra_state"):
                module = n[:-len("._extra_state")]
                m = LAYER.match(module)
                rest = m.group(2) if m else module
                if te and rest in TE_EXTRA:      # TE fp8 metadata: an empty io.BytesIO
                    check(isinstance(v, io.BytesIO) and v.getvalue() == b"", "%s: %r", n, v)
                else:                            # Megatron's linear layers: None
                    check(v is None and (rest in TE_EXTRA[1:] or rest == "output_layer"),
                          "%s: %r", n, v)
                continue
            check(isinstance(v, torch.Tensor) and v.dtype == dtype, "%s: %r", n, type(v))
            if te:
                check("input_layernorm" not in n and "pre_mlp_layernorm" not in n,
                      "local name %s in a TE checkpoint", n)
            else:
                check("layer_norm_weight" not in n and "layer_norm_bias" not in n,
                      "TE name %s in a local checkpoint", n)
            tensors[canonical(n)] = v
        check(("output_layer._extra_state" in model) == (p == pp - 1), "output_layer extra")
        stages[p][t] = tensors
    a = sd["args"]
    swiglu = cfg.activation == "swiglu"
    tied = not cfg.untie_embeddings_and_output_weights
    merged, offset, per_stage = {}, 0, []
    for p in range(pp):
        stage = merge_tp(stages[p], swiglu)
        local = sorted({int(LAYER.match(n).group(1)) for n in stage if LAYER.match(n)})
        check(local == list(range(len(local))), "stage %d layer indices %s are not local", p,
              local)
        per_stage.append(len(local))
        check(("embedding.word_embeddings.weight" in stage) == (p == 0), "embedding on stage %d",
              p)
        check(("decoder.final_layernorm.weight" in stage) == (p == pp - 1), "final norm")
        if tied and p == pp - 1 and pp > 1:      # §2.6: the last stage's copy
            check("output_layer.weight" in stage, "tied PP>1: no output_layer.weight copy")
            copy = stage.pop("output_layer.weight")
            check(bits_equal(copy, merged["embedding.word_embeddings.weight"]),
                  "tied output_layer copy differs from the word embeddings")
        elif tied:
            check("output_layer.weight" not in stage, "tied PP=1 with an output_layer.weight")
        for n, v in stage.items():
            m = LAYER.match(n)
            if m:
                n = "decoder.layers.%d.%s" % (int(m.group(1)) + offset, m.group(2))
            check(n not in merged, "%s twice", n)
            merged[n] = v
        offset += len(local)
    check(per_stage == exp["layers_per_stage"], "layers per stage %s", per_stage)
    first = getattr(a, "decoder_first_pipeline_num_layers", None)
    if pp > 1:
        check(per_stage[0] == (first or cfg.num_layers // pp), "first stage layer count")
    return cfg, merged


# ---------------------------------------------------------------------------------------------
# b. legacy model
# ---------------------------------------------------------------------------------------------

def legacy_qkv_to_mcore(t, version, np_r, hn):
    """One shard's query_key_value rows in checkpoint_version order -> [np_r, (q,k,v), hn]."""
    tail = tuple(t.shape[1:])
    if version == 0:
        return t.reshape((3, np_r, hn) + tail).transpose(0, 1).reshape((-1,) + tail)
    if version == 1.0:
        return t.reshape((np_r, hn, 3) + tail).transpose(1, 2).reshape((-1,) + tail)
    return t


def check_legacy(cdir, exp, fixtures):
    idir = read_tracker(cdir, exp)
    tp = exp["tensor_model_parallel_size"]
    names = exp["legacy_names"]
    check(sorted(os.listdir(idir)) == ["mp_rank_%02d" % t for t in range(tp)], "rank dirs")
    shards, cfg = [], None
    for t in range(tp):
        sd = load_rank_file(os.path.join(idir, "mp_rank_%02d" % t, "model_optim_rng.pt"),
                            "model_optim_rng", t % 8)
        check_common_top(sd, exp)
        version = sd.get("checkpoint_version", 0)
        a = sd["args"]
        check(args_tp_pp(a) == (tp, 1), "args tp/pp")
        cfg = check_config(a, exp)
        if version < 2 and exp["legacy_names"]["container"] == "transformer":
            for k in ("random_rng_state", "np_rng_state", "torch_rng_state", "cuda_rng_state"):
                check(k in sd, "old checkpoint without top-level %s", k)
            check("lr_scheduler" in sd and "rng_state" not in sd, "old scheduler / rng layout")
        else:
            check_rng(sd["rng_state"][0])
        lm = sd["model"]["language_model"]
        check(set(lm) == {"embedding", names["container"]}, "language_model keys %s", set(lm))
        emb = lm["embedding"]
        out = {"embedding.word_embeddings.weight": emb["word_embeddings"]["weight"],
               "embedding.position_embeddings.weight": emb["position_embeddings"]["weight"]}
        np_r, hn = cfg.num_attention_heads // tp, cfg.kv_channels
        layer_map = {
            names["input_norm"] + ".weight": "self_attention.linear_qkv.layer_norm_weight",
            names["input_norm"] + ".bias": "self_attention.linear_qkv.layer_norm_bias",
            names["attention"] + ".query_key_value.weight": "self_attention.linear_qkv.weight",
            names["attention"] + ".query_key_value.bias": "self_attention.linear_qkv.bias",
            names["attention"] + ".dense.weight": "self_attention.linear_proj.weight",
            names["attention"] + ".dense.bias": "self_attention.linear_proj.bias",
            names["post_attention_norm"] + ".weight": "mlp.linear_fc1.layer_norm_weight",
            names["post_attention_norm"] + ".bias": "mlp.linear_fc1.layer_norm_bias",
            "mlp.dense_h_to_4h.weight": "mlp.linear_fc1.weight",
            "mlp.dense_h_to_4h.bias": "mlp.linear_fc1.bias",
            "mlp.dense_4h_to_h.weight": "mlp.linear_fc2.weight",
            "mlp.dense_4h_to_h.bias": "mlp.linear_fc2.bias",
        }
        for n, v in lm[names["container"]].items():
            m = re.match(r"^layers\.(\d+)\.(.+)$", n)
            if m:
                check(m.group(2) in layer_map, "unexpected legacy key %s", n)
                target = layer_map[m.group(2)]
                if "query_key_value" in n:
                    v = legacy_qkv_to_mcore(v, version, np_r, hn)
                out["decoder.layers.%s.%s" % (m.group(1), target)] = v
            else:
                fm = re.match(r"^%s\.(weight|bias)$" % names["final_norm"], n)
                check(fm is not None, "unexpected legacy key %s", n)
                out["decoder.final_layernorm." + fm.group(1)] = v
        shards.append(out)
    return cfg, merge_tp(shards, swiglu=False)


# ---------------------------------------------------------------------------------------------
# c. torch_dist
# ---------------------------------------------------------------------------------------------

def rec_name(obj):
    return getattr(obj, "cls_name", type(obj).__name__)


def check_dist(cdir, exp, fixtures):
    idir = read_tracker(cdir, exp)
    tp, pp = exp["tensor_model_parallel_size"], exp["pipeline_model_parallel_size"]
    files = sorted(os.listdir(idir))
    check(files == sorted(exp["files"]), "files %s", files)
    with open(os.path.join(idir, "metadata.json")) as f:
        check(json.load(f) == {"sharded_backend": "torch_dist", "sharded_backend_version": 1,
                               "common_backend": "torch", "common_backend_version": 1},
              "metadata.json")
    with open(os.path.join(idir, "common.pt"), "rb") as f:
        blob = f.read()
    check(torch_save_zip_facts(blob)[0] == "common", "common.pt archive prefix")
    common = tload(blob)
    check_common_top(common, exp)
    check("model" not in common and "rng_state" not in common, "sharded parts in common.pt")
    a = common["args"]
    check(a.ckpt_format == "torch_dist" and args_tp_pp(a) == (tp, pp), "common.pt args")
    cfg = check_config(a, exp)

    with open(os.path.join(idir, ".metadata"), "rb") as f:
        raw = f.read()
    check(raw[:2] == b"\x80\x04", ".metadata is not a protocol-4 pickle")
    md = SafeUnpickler(io.BytesIO(raw)).load()
    check(rec_name(md) == "torch.distributed.checkpoint.metadata.Metadata", "%s", rec_name(md))
    check(md.version == "1.0.0" and md.planner_data is None, "Metadata version / planner_data")
    check(rec_name(md.storage_meta).endswith("StorageMeta"), "storage_meta")
    check(len(md.all_local_plans) == tp * pp, "all_local_plans: %d", len(md.all_local_plans))
    for plan in md.all_local_plans:
        check(rec_name(plan).endswith("planner.SavePlan"), "plan %s", rec_name(plan))
        for item in plan.items:
            check(rec_name(item).endswith("WriteItem") and item.type[0] == "enum", "write item")

    storage = {}                                   # (fqn, offsets or None) -> (file, off, len)
    for index, info in md.storage_data.items():
        check(rec_name(index).endswith("MetadataIndex") and rec_name(info).endswith("_StorageInfo"),
              "storage_data entry types")
        off = tuple(index.offset) if hasattr(index, "offset") else None
        check(index.index is None, "MetadataIndex.index hint set")
        check(not hasattr(info, "transform_descriptors"), "transform_descriptors stored")
        storage[(index.fqn, off)] = (info.relative_path, info.offset, info.length)
    # every .distcp file is its entries back to back, nothing else (§3.7 _write_item)
    distcp = [f for f in files if f.endswith(".distcp")]
    for f in distcp:
        check(re.match(r"^__(\d+)_(\d+)\.distcp$", f) and int(f[2:].split("_")[0]) < tp * pp,
              "file name %s", f)
        spans = sorted((o, n) for (p_, o, n) in storage.values() if p_ == f)
        size = os.path.getsize(os.path.join(idir, f))
        pos = 0
        for o, n in spans:
            check(o == pos, "%s: gap or overlap at %d", f, o)
            pos = o + n
        check(pos == size, "%s: %d bytes, entries end at %d", f, size, pos)
    blobs = {f: open(os.path.join(idir, f), "rb").read() for f in distcp}

    def entry(key):
        f, o, n = storage[key]
        return blobs[f][o:o + n]

    L = cfg.num_layers
    dtype = getattr(torch, exp["dtype"])
    glob, objects = {}, {}
    for fqn, smd in md.state_dict_metadata.items():
        kind = rec_name(smd)
        if kind.endswith("BytesStorageMetadata"):
            data = tload(entry((fqn, None)))
            check(isinstance(data, list) and len(data) == 1, "%s: %r", fqn, data)
            objects[fqn] = data[0]
            continue
        check(kind.endswith("TensorStorageMetadata"), "%s: %s", fqn, kind)
        props = smd.properties.state                 # TensorProperties.__getstate__ tuple
        check(props[0] == dtype and props[1] == torch.strided and props[3][0] == "enum",
              "%s: properties %s", fqn, props)
        size = tuple(smd.size)
        full = torch.zeros(size, dtype=dtype)
        seen = torch.zeros(size, dtype=torch.int32)
        for chunk in smd.chunks:
            offs, sizes = tuple(chunk.offsets), tuple(chunk.sizes)
            blob = entry((fqn, offs))
            check(torch_save_zip_facts(blob)[0] == "archive", "%s: chunk archive prefix", fqn)
            t = tload(blob)
            check(tuple(t.shape) == sizes and t.dtype == dtype, "%s: chunk %s %s", fqn,
                  list(t.shape), t.dtype)
            sl = tuple(slice(o, o + s) for o, s in zip(offs, sizes))
            full[sl] = t
            seen[sl] += 1
        check(bool((seen == 1).all()), "%s: chunks do not cover it exactly once", fqn)
        glob[fqn] = full
    check(set(storage) == {(k, tuple(c.offsets)) for k, v in md.state_dict_metadata.items()
                           if not rec_name(v).endswith("BytesStorageMetadata") for c in v.chunks}
          | {(k, None) for k, v in md.state_dict_metadata.items()
             if rec_name(v).endswith("BytesStorageMetadata")}, "storage_data keys")

    # §3.7: TE names, layers stacked on a leading axis, swiglu global [gate; up] (checked by
    # the comparison below), chunk boundaries of the saving TP
    te = exp["transformer_impl"] == "transformer_engine"
    merged = {}
    for fqn, t in glob.items():
        check("input_layernorm" not in fqn and "pre_mlp_layernorm" not in fqn, "local name %s",
              fqn)
        if fqn.startswith("decoder.layers."):
            rest = fqn[len("decoder.layers."):]
            check(not rest.split(".")[0].isdigit(), "%s carries a layer index", fqn)
            check(t.shape[0] == L, "%s: leading axis %d != L", fqn, t.shape[0])
            for i in range(L):
                merged["decoder.layers.%d.%s" % (i, rest)] = t[i].clone()
        else:
            merged[fqn] = t
    chunks_of = {k: len(v.chunks) for k, v in md.state_dict_metadata.items() if hasattr(v, "chunks")}
    check(chunks_of["embedding.word_embeddings.weight"] == tp, "embedding chunks")
    if cfg.activation == "swiglu":
        check(chunks_of["decoder.layers.mlp.linear_fc1.weight"] == 2 * tp * L, "swiglu chunks")
    tied = not cfg.untie_embeddings_and_output_weights
    check(("output_layer.weight" in glob) == (not tied), "output_layer.weight with tied=%s", tied)
    for key, obj in objects.items():
        m = re.match(r"^(.+)\._extra_state/shard_(\d+)_(\d+)$", key)
        if m:
            module = m.group(1)
            if module.startswith("decoder.layers."):
                check(int(m.group(3)) == L and int(m.group(2)) < L, "%s: shard index", key)
                rest = module[len("decoder.layers."):]
                if te and rest in TE_EXTRA:
                    check(isinstance(obj, io.BytesIO) and obj.getvalue() == b"", "%s", key)
                    continue
            check(obj is None, "%s: %r", key, obj)
            continue
        m = re.match(r"^rng_state/shard_(\d+)\.(\d+)_(\d+)\.(\d+)$", key)
        check(m is not None and (int(m.group(3)), int(m.group(4))) == (pp, tp), "object %s", key)
        check(isinstance(obj, list) and len(obj) == 1, "rng_state object")
        check_rng(obj[0])
    check(sum(1 for k in objects if k.startswith("rng_state/")) == tp * pp, "rng_state shards")
    return cfg, merged


# ---------------------------------------------------------------------------------------------
# d. bad inputs
# ---------------------------------------------------------------------------------------------

def refuses(fn):
    try:
        fn()
    except CheckFailed:
        raise
    except Exception as e:                       # noqa: BLE001 -- any error is a refusal
        return "%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "")
    return None


def check_bad(cdir, exp, fixtures):
    defect = exp["defect"]
    tracker = open(os.path.join(cdir, "latest_checkpointed_iteration.txt")).read().strip()
    idir = os.path.join(cdir, "iter_0000100")
    if defect == "os_system":
        path = os.path.join(idir, "mp_rank_00", "model_optim_rng.pt")
        with open(path, "rb") as f:
            blob = f.read()
        pkl = zipfile.ZipFile(io.BytesIO(blob)).read("model_optim_rng/data.pkl")
        ops = [(op.name, arg) for op, arg, _ in pickletools.genops(pkl)]   # static: runs nothing
        check(("GLOBAL", "os system") in ops and ("REDUCE", None) in ops, "no os.system call")
        check(not os.path.exists(EVIL_MARKER), "%s exists before the check", EVIL_MARKER)
        why = refuses(lambda: SafeUnpickler(io.BytesIO(pkl)).load())
        check(why is not None and "os.system" in why, "restricted unpickler did not refuse")
        why2 = refuses(lambda: tload(blob))
        check(why2 is not None, "the checker's torch.save reader did not refuse")
        check(not os.path.exists(EVIL_MARKER), "the pickle was executed")
        return why
    if defect == "tracker_mismatch":
        check(tracker == "200" and not os.path.exists(os.path.join(cdir, "iter_0000200"))
              and os.path.isdir(idir), "tracker mismatch layout")
        return "tracker 200, only iter_0000100"
    if defect == "truncated":
        path = os.path.join(idir, "mp_rank_00", "model_optim_rng.pt")
        with open(path, "rb") as f:
            head = f.read(4)
        check(head == b"PK\x03\x04", "truncated file does not start like a ZIP")
        why = refuses(lambda: tload(path))
        check(why is not None, "truncated file loaded")
        return why
    if defect == "mixed_iterations":
        its = [tload(os.path.join(idir, d, "model_optim_rng.pt"))["iteration"]
               for d in ("mp_rank_00", "mp_rank_01")]
        check(tracker == "100" and its == [100, 200], "iterations %s", its)
        return "iterations %s in iter_0000100" % its
    if defect == "missing_rank":
        a = tload(os.path.join(idir, "mp_rank_00_000", "model_optim_rng.pt"))["args"]
        have = sorted(os.listdir(idir))
        check(args_tp_pp(a) == (2, 2) and have == ["mp_rank_00_000", "mp_rank_00_001",
                                                   "mp_rank_01_000"], "rank dirs %s", have)
        return "args tp2 x pp2, dirs %s" % have
    if defect == "wrong_shape":
        sd = tload(os.path.join(idir, "mp_rank_00", "model_optim_rng.pt"))
        a = sd["args"]
        rows = (a.num_attention_heads + 2 * a.num_attention_heads) * \
            (a.hidden_size // a.num_attention_heads)       # MHA: group_query_attention False
        t = sd["model"]["decoder.layers.1.self_attention.linear_qkv.weight"]
        check(not a.group_query_attention and t.shape[0] != rows and t.shape[0] == rows - 16,
              "qkv rows %d vs %d", t.shape[0], rows)
        return "qkv rows %d, args imply %d" % (t.shape[0], rows)
    if defect == "dist_truncated":
        md = SafeUnpickler(io.BytesIO(open(os.path.join(idir, ".metadata"), "rb").read())).load()
        size = os.path.getsize(os.path.join(idir, "__0_0.distcp"))
        past = [i for i in md.storage_data.values()
                if i.relative_path == "__0_0.distcp" and i.offset + i.length > size]
        check(past, "no storage entry runs past the end of __0_0.distcp")
        return "%d entries past the end of __0_0.distcp" % len(past)
    raise CheckFailed("unknown defect %s" % defect)


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------

def check_case(cdir, fixtures):
    with open(os.path.join(cdir, "expected.json")) as f:
        exp = json.load(f)
    if exp["kind"] == "bad":
        return "refused as expected (%s)" % check_bad(cdir, exp, fixtures)
    fn = {"mcore_torch": check_mcore, "legacy_torch": check_legacy,
          "torch_dist": check_dist}[exp["kind"]]
    cfg, merged = fn(cdir, exp, fixtures)
    n = compare_with_fixture(merged, exp, fixtures)
    worst = compare_logits(cfg, merged, exp, fixtures)
    return "%d tensors == %s bit for bit, logits max |diff| %.2g" % (
        n, exp["reference_fixture"], worst)


def run(cmd):
    res = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if res.returncode:
        sys.stdout.write(res.stdout.decode())
        raise SystemExit("FAILED: %s" % " ".join(cmd))
    return res.stdout.decode()


def determinism(ckpts, names):
    """A fresh run of the writer gives the same bytes as DIR for a few cases."""
    with tempfile.TemporaryDirectory() as tmp:
        run([sys.executable, WRITER, "--out", tmp, "--only"] + names)
        for name in names:
            for root, _, files in os.walk(os.path.join(tmp, name)):
                for fn in files:
                    rel = os.path.relpath(os.path.join(root, fn), tmp)
                    with open(os.path.join(tmp, rel), "rb") as a, \
                            open(os.path.join(ckpts, rel), "rb") as b:
                        check(a.read() == b.read(), "%s differs from a fresh run", rel)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ckpts", help="checkpoints made by make_megatron_ckpts.py (default: make)")
    ap.add_argument("--fixtures", help="reference fixture dir (default: make the needed ones)")
    ap.add_argument("-k", help="only cases whose name contains this")
    args = ap.parse_args()
    tmp = tempfile.TemporaryDirectory()
    ckpts = args.ckpts
    if ckpts:
        stamp = os.path.join(os.path.dirname(os.path.abspath(ckpts)), "megatron-ckpts.stamp")
        if os.path.exists(stamp) and open(stamp).read().startswith("skipped"):
            print("SKIP: the checkpoints were not made (%s)" % stamp)
            return 77
    else:
        ckpts = os.path.join(tmp.name, "ckpts")
        run([sys.executable, WRITER, "--out", ckpts])
    fixtures = args.fixtures
    if not fixtures:
        fixtures = os.path.join(tmp.name, "fixtures")
        run([sys.executable, os.path.join(GPT_TOOLS, "make_fixtures.py"), "--out", fixtures,
             "--only", "gpt2", "llama", "kv_channels", "gelu_erf"])
    cases = sorted(d for d in os.listdir(ckpts)
                   if os.path.isfile(os.path.join(ckpts, d, "expected.json")))
    if args.k:
        cases = [c for c in cases if args.k in c]
    failures = 0
    for name in cases:
        try:
            msg = check_case(os.path.join(ckpts, name), fixtures)
            print("ok   %-36s %s" % (name, msg))
        except Exception as e:                   # noqa: BLE001
            failures += 1
            print("FAIL %-36s %s" % (name, e))
            if not isinstance(e, CheckFailed):
                traceback.print_exc()
    if args.ckpts and not args.k:
        try:
            determinism(ckpts, ["gpt2_te_tp2_pp2_uneven", "legacy_gpt2_v0_tp2",
                                "dist_llama_local_tp2_pp2", "bad_pickle_os_system"])
            print("ok   %-36s a fresh run gives the same bytes" % "determinism")
        except Exception as e:                   # noqa: BLE001
            failures += 1
            print("FAIL %-36s %s" % ("determinism", e))
    if not cases:
        print("FAIL no cases found in %s" % ckpts)
        failures += 1
    print("%s: %d cases, %d failed" % ("FAILED" if failures else "PASSED", len(cases), failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
