#!/usr/bin/python3
"""tests/torchfmt/make_torch_fixtures.py --out DIR [--stamp FILE] [--skip-without-torch]

Fixtures for core/checkpoint/zip.c and pickle.c, written by the real writers
(torch.save, pickle.dumps, zipfile) with Debian's python3-torch and numpy,
and what mcrt must read from them, computed here independently of mcrt.

Written to DIR:
  plain.pt            torch.save(tensor)
  state.pt            an OrderedDict state dict (with _metadata) of every
                      dtype: views sharing a storage (transposed, a slice with
                      an offset, a strided slice, an expanded view), a scalar,
                      an empty tensor, a Parameter
  megatron.pt         a Megatron-shaped checkpoint: args (argparse.Namespace
                      with a torch.dtype, enums, ints, floats, strings, lists,
                      None), checkpoint_version, iteration, model (with
                      _extra_state BytesIO entries), rng_state (random, numpy,
                      torch states), num_floating_point_operations_so_far
  embedded.bin        a torch.save archive between junk bytes, as in a
                      torch_dist .distcp file
  data_p0..5.pkl      pickle.dumps of plain data at protocols 0 to 5
  dcp_metadata.pkl    dataclasses shaped like torch_dist's .metadata (read
                      with extra classes)
  evil_*.pkl, evil_torch.pt
                      pickles that would run code (os.system, eval, exec,
                      subprocess.Popen, ...): each would create the file
                      DIR/pwned_<name> if it were ever run; mcrt must refuse
                      them naming the global, and the files must not appear
  pyzip_stored.zip, pyzip_zip64.zip, pyzip_comment.zip, pyzip_deflated.zip
                      archives from Python's zipfile (an independent writer)
  expect.json         {"files": [{"name", "kind", "value", ...}], "evil": [...],
                       "zips": [...]}: every value in the canonical form that
                      test_torchfmt.c compares against (cj below)
  opcodes.txt         the opcodes and globals torch.save emitted (a record)

Nothing here ever unpickles the evil files. Output is deterministic for a
given DIR (the evil payloads name DIR).
Exit 0; without torch (with --skip-without-torch) one line, a stamp saying
so, exit 0, and the C test skips (77).
"""
import argparse as _argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def fake_module(name):
    """A module object registered under `name`, so pickle can name classes in it."""
    import types
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        sub = ".".join(parts[:i])
        if sub not in sys.modules:
            sys.modules[sub] = types.ModuleType(sub)
    return sys.modules[name]


def place(cls, module):
    """Give cls the module (and make pickle find it there)."""
    cls.__module__ = module
    cls.__qualname__ = cls.__name__
    setattr(fake_module(module), cls.__name__, cls)
    return cls


def main(argv=None):
    ap = _argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--stamp")
    ap.add_argument("--skip-without-torch", action="store_true")
    a = ap.parse_args(argv)
    try:
        import numpy  # noqa: F401
        import torch  # noqa: F401
    except ImportError as e:
        if not a.skip_without_torch:
            raise
        print("make_torch_fixtures: %s; no fixtures made" % e)
        if a.stamp:
            with open(a.stamp, "w") as f:
                f.write("skipped: python3-torch or numpy is not installed\n")
        return 0
    os.makedirs(a.out, exist_ok=True)
    written = make_all(a.out)
    print("make_torch_fixtures: %d files in %s" % (len(written), a.out))
    if a.stamp:
        with open(a.stamp, "w") as f:
            f.write("".join(w + "\n" for w in written))
    return 0


# ---- the canonical form ------------------------------------------------------

class Canon:
    """cj(x): JSON-able canonical form of a value, as test_torchfmt.c reads it.

    None, bool, list, str map to JSON; int {"int": "<decimal>"}; float
    {"float": float.hex()}; bytes {"bytes": hex}; tuple {"tuple": [...]};
    dict {"dict": [[k, v], ...]} (+ "attrs" when it has a __dict__); set /
    frozenset {"set"/"frozenset": [...]}; torch.dtype {"dtype": name};
    tensor {"tensor": {...}} with its storage key numbered as torch.save
    numbers storages (first seen, in pickling order); Namespace and other
    objects {"object": "module.name", "attrs": [[k, v]...]}; enums
    {"object", "member", "value"};
    BytesIO {"bytesio": hex}; numpy array {"ndarray": {"dtype", "shape", "hex"}}.
    """

    def __init__(self):
        self.keys = {}

    def storage_key(self, t):
        cdata = t.storage()._storage._cdata
        return self.keys.setdefault(cdata, str(len(self.keys)))

    def __call__(self, x):
        import enum
        import io
        import numpy as np
        import torch
        if x is None or isinstance(x, (bool, str)):
            return x
        if isinstance(x, int):
            return {"int": str(x)}
        if isinstance(x, float):
            return {"float": x.hex() if x == x else "nan"}
        if isinstance(x, (bytes, bytearray)):
            return {"bytes": bytes(x).hex()}
        if isinstance(x, torch.Tensor):
            return {"tensor": self.tensor(x)}
        if isinstance(x, torch.dtype):
            return {"dtype": str(x).split(".")[1]}
        if isinstance(x, tuple):  # also torch.Size
            return {"tuple": [self(i) for i in x]}
        if isinstance(x, list):
            return [self(i) for i in x]
        if isinstance(x, dict):
            out = {"dict": [[self(k), self(v)] for k, v in x.items()]}
            extra = getattr(x, "__dict__", None)
            if extra:
                out["attrs"] = [[self(k), self(v)] for k, v in extra.items()]
            return out
        if isinstance(x, frozenset):
            return {"frozenset": [self(i) for i in x]}
        if isinstance(x, set):
            return {"set": [self(i) for i in x]}
        if isinstance(x, io.BytesIO):
            return {"bytesio": x.getvalue().hex()}
        if isinstance(x, np.ndarray):
            return {"ndarray": {"dtype": x.dtype.str, "shape": list(x.shape),
                                "hex": x.tobytes().hex()}}
        if isinstance(x, enum.Enum):  # Python 3.11+ pickles the name, older the value
            return {"object": type(x).__module__ + "." + type(x).__name__,
                    "member": x.name, "value": self(x.value)}
        if isinstance(x, torch.layout):
            return {"object": "torch.serialization._get_layout", "args": [str(x)]}
        if hasattr(x, "__dict__"):
            return {"object": type(x).__module__ + "." + type(x).__name__,
                    "attrs": [[self(k), self(v)] for k, v in vars(x).items()]}
        raise TypeError("no canonical form for %r" % type(x))

    def tensor(self, t):
        import torch
        flat = t.detach().contiguous().reshape(-1)
        if t.dtype == torch.bfloat16:
            flat = flat.view(torch.int16)
        return {
            "dtype": str(t.dtype).split(".")[1],
            "shape": list(t.shape),
            "stride": list(t.stride()),
            "offset": t.storage_offset(),
            "storage": self.storage_key(t),
            "numel": t.storage().size(),
            "parameter": isinstance(t, torch.nn.Parameter),
            "requires_grad": bool(t.requires_grad),
            "hex": flat.numpy().tobytes().hex(),
        }


# ---- the fixtures -----------------------------------------------------------

def make_all(out):
    import collections
    import enum
    import io
    import json
    import pickle
    import pickletools
    import random
    import zipfile

    import numpy as np
    import torch

    torch.manual_seed(1234)
    random.seed(1234)
    np.random.seed(1234)
    written = []
    files, evil, zips = [], [], []

    def path(name):
        p = os.path.join(out, name)
        written.append(p)
        return p

    def save_torch(name, obj, kind="torch"):
        p = path(name)
        torch.save(obj, p)
        files.append({"name": name, "kind": kind, "value": Canon()(obj),
                      "entries": zip_entries(p)})
        return p

    def zip_entries(p):
        with zipfile.ZipFile(p) as z:
            return [[i.filename, i.file_size] for i in z.infolist()]

    # (a) a plain tensor
    save_torch("plain.pt", torch.arange(6, dtype=torch.float32).reshape(2, 3) / 4)

    # (b) a state dict: every dtype, views sharing a storage, a Parameter
    lin = torch.nn.Linear(3, 2)
    sd = lin.state_dict()                       # an OrderedDict with _metadata
    base = torch.randn(4, 6)
    sd["f32.base"] = base
    sd["f32.transposed"] = base.t()             # non-contiguous, same storage
    sd["f32.row2"] = base[2]                    # storage offset 12
    sd["f32.strided"] = base[1:, ::2]           # offset 6, stride (6, 2)
    sd["f32.expanded"] = base[0, :1].expand(3, 5)   # stride 0
    sd["bf16"] = torch.randn(3, 5).to(torch.bfloat16)
    sd["f16"] = (torch.randn(7) * 100).to(torch.float16)
    sd["f64"] = torch.randn(2, 2, dtype=torch.float64)
    sd["i64"] = torch.tensor([0, -1, 2**62, -2**63], dtype=torch.int64)
    sd["i32"] = torch.tensor([[1, -2], [3, -4]], dtype=torch.int32)
    sd["i16"] = torch.tensor([-32768, 32767], dtype=torch.int16)
    sd["i8"] = torch.tensor([-128, 127, 0], dtype=torch.int8)
    sd["u8"] = torch.arange(256, dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False, True])
    sd["scalar"] = torch.tensor(3.25)
    sd["empty"] = torch.zeros(0, 4)
    sd["param"] = torch.nn.Parameter(torch.ones(2, 2))
    sd["frozen"] = torch.nn.Parameter(torch.full((2,), 7.0), requires_grad=False)
    sd["bf16.t"] = sd["bf16"].t()
    save_torch("state.pt", sd)

    # (c) a Megatron-shaped checkpoint
    class ModelType(enum.Enum):
        encoder_or_decoder = 1
        encoder_and_decoder = 2
    place(ModelType, "megatron.core.enums")

    class AttnBackend(enum.Enum):
        flash = 1
        fused = 2
        unfused = 3
        local = 4
        auto = 5
    place(AttnBackend, "megatron.core.transformer.enums")

    args = _argparse.Namespace(
        num_layers=2, hidden_size=8, ffn_hidden_size=32, num_attention_heads=2,
        num_query_groups=None, kv_channels=4, seq_length=16, max_position_embeddings=16,
        padded_vocab_size=64, make_vocab_size_divisible_by=128, params_dtype=torch.bfloat16,
        bf16=True, fp16=False, norm_epsilon=1e-5, rotary_base=10000, rotary_percent=1.0,
        position_embedding_type="learned_absolute", normalization="LayerNorm", swiglu=False,
        add_bias_linear=True, untie_embeddings_and_output_weights=False,
        tokenizer_type="GPT2BPETokenizer", vocab_file=None, merge_file="/data/merges.txt",
        tensor_model_parallel_size=1, pipeline_model_parallel_size=1,
        model_type=ModelType.encoder_or_decoder, attention_backend=AttnBackend.auto,
        data_path=["1.0", "/data/corpus_text_document"], lr=3e-4, min_lr=3e-5,
        train_iters=100, iteration=100, consumed_train_samples=1600,
        ckpt_format="torch", transformer_impl="local", seed=1234, exit_signal=None,
        recompute_granularity=None, eval_iters=10, world_size=1,
    )
    model = collections.OrderedDict()
    model._metadata = collections.OrderedDict([("", {"version": 1}),
                                               ("embedding", {"version": 1})])
    model["embedding.word_embeddings.weight"] = torch.randn(64, 8).to(torch.bfloat16)
    model["embedding.position_embeddings.weight"] = torch.randn(16, 8).to(torch.bfloat16)
    for i in range(2):
        p = "decoder.layers.%d." % i
        model[p + "self_attention.linear_qkv.layer_norm_weight"] = torch.ones(8).bfloat16()
        model[p + "self_attention.linear_qkv.weight"] = torch.randn(24, 8).bfloat16()
        model[p + "self_attention.linear_qkv._extra_state"] = io.BytesIO(b"")
        model[p + "self_attention.linear_proj.weight"] = torch.randn(8, 8).bfloat16()
        model[p + "self_attention.linear_proj._extra_state"] = io.BytesIO(b"\x80\x02}q\x00.")
        model[p + "mlp.linear_fc1.weight"] = torch.randn(32, 8).bfloat16()
        model[p + "mlp.linear_fc2.weight"] = torch.randn(8, 32).bfloat16()
    model["decoder.final_layernorm.weight"] = torch.ones(8).bfloat16()
    model["decoder.final_layernorm.bias"] = torch.zeros(8).bfloat16()
    rng = [{
        "random_rng_state": random.getstate(),
        "np_rng_state": np.random.get_state(),
        "torch_rng_state": torch.get_rng_state(),
        "cuda_rng_state": torch.get_rng_state()[:16].clone(),
        "rng_tracker_states": {"model-parallel-rng": torch.get_rng_state()[:8].clone()},
    }]
    ckpt = {
        "args": args,
        "checkpoint_version": 3.0,
        "iteration": 100,
        "model": model,
        "rng_state": rng,
        "num_floating_point_operations_so_far": 12345678.0,
        "opt_param_scheduler": {"max_lr": 3e-4, "num_steps": 1600, "decay_style": "cosine"},
    }
    mp = save_torch("megatron.pt", ckpt)

    # the opcodes and globals torch.save used (a record for the report)
    with zipfile.ZipFile(mp) as z:
        pkl = z.read(z.namelist()[0])
    ops, globs = collections.Counter(), collections.Counter()
    for op, argm, _ in pickletools.genops(pkl):
        ops[op.name] += 1
        if op.name == "GLOBAL":
            globs[argm.replace(" ", ".")] += 1
    with open(path("opcodes.txt"), "w") as f:
        f.write("megatron.pt data.pkl: %d bytes, protocol 2\nopcodes:\n" % len(pkl))
        for k, v in sorted(ops.items()):
            f.write("  %-16s %d\n" % (k, v))
        f.write("globals:\n")
        for k, v in sorted(globs.items()):
            f.write("  %-48s %d\n" % (k, v))

    # the same checkpoint inside a larger file (a .distcp chunk)
    buf = io.BytesIO()
    torch.save(ckpt["model"], buf)
    blob = buf.getvalue()
    pre, post = bytes([0xAB]) * 777, b"PK\x05\x06 junk after" + bytes(99)
    with open(path("embedded.bin"), "wb") as f:
        f.write(pre + blob + post)
    ent = []
    with zipfile.ZipFile(io.BytesIO(blob)) as z:
        ent = [[i.filename, i.file_size] for i in z.infolist()]
    files.append({"name": "embedded.bin", "kind": "embedded", "offset": len(pre),
                  "length": len(blob), "value": Canon()(ckpt["model"]), "entries": ent})

    # (d) plain data at every protocol
    shared = [1, "two"]
    plain = {
        "none": None,
        "bools": [True, False],
        "ints": [0, 1, -1, 255, 256, 65535, 65536, 2**31 - 1, -2**31, 2**31, 2**63 - 1, -2**63],
        "big": [2**63, -2**63 - 1, 2**64, 2**100, -(2**200) + 1, 10**50, -(10**99)],
        "floats": [0.0, -0.0, 1.5, -2.25, 1e-300, 1e300, float("inf"), float("-inf"), 0.1,
                   5e-324, float("nan")],
        "strs": ["", "ascii", "\u00e9", "\u2603", "\U0001F600", "a\nb\\c'\"", "\x00\x1a\r",
                 "back\\u005cslash", "x" * 300],
        "bytes": [b"", b"\x00\xff", bytes(range(256)), b"y" * 300],
        "bytearray": bytearray(b"ba\x00\xff"),
        "tuples": [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4)],
        "nested": [[[]], {"a": {"b": {}}}],
        "keys": {1: "int", -5: "neg", (1, "x"): "tuple", None: "none", 2.5: "float",
                 b"k": "bytes", "s": "str", (): "empty tuple"},
        "set": {1, 2, 3},
        "frozenset": frozenset({"a", "b"}),
        "shared": [shared, shared],
        "od": collections.OrderedDict([("z", 1), ("a", 2)]),
        "ns": _argparse.Namespace(x=1, y="z", dt=torch.float16),
        "dtypes": [torch.float32, torch.bfloat16, torch.int64, torch.bool, torch.complex64],
        "size": torch.Size([2, 3]),
        "many": list(range(2500)),
        "bigdict": {"k%04d" % i: i for i in range(1500)},
    }
    for proto in range(6):
        name = "data_p%d.pkl" % proto
        with open(path(name), "wb") as f:
            f.write(pickle.dumps(plain, protocol=proto))
        files.append({"name": name, "kind": "pickle", "value": Canon()(plain)})

    # dataclasses shaped like torch_dist's .metadata, pickled as DCP does
    import dataclasses
    from typing import Any, Dict, List, Optional

    mod = "torch.distributed.checkpoint.metadata"

    @dataclasses.dataclass(frozen=True)
    class MetadataIndex:
        fqn: str
        offset: Optional[torch.Size] = None
        index: Optional[int] = dataclasses.field(hash=False, compare=False, default=None)

    @dataclasses.dataclass
    class ChunkStorageMetadata:
        offsets: torch.Size
        sizes: torch.Size

    @dataclasses.dataclass
    class TensorProperties:
        dtype: torch.dtype
        layout: Any
        requires_grad: bool

    @dataclasses.dataclass
    class TensorStorageMetadata:
        properties: TensorProperties
        size: torch.Size
        chunks: List[ChunkStorageMetadata]

    @dataclasses.dataclass
    class BytesStorageMetadata:
        pass

    @dataclasses.dataclass
    class _StorageInfo:
        relative_path: str
        offset: int
        length: int

    @dataclasses.dataclass
    class Metadata:
        state_dict_metadata: Dict[str, Any]
        planner_data: Any = None
        storage_data: Any = None

    classes = [MetadataIndex, ChunkStorageMetadata, TensorProperties, TensorStorageMetadata,
               BytesStorageMetadata, _StorageInfo, Metadata]
    for c in classes:
        place(c, mod)
    md = Metadata(
        state_dict_metadata={
            "decoder.layers.self_attention.linear_qkv.weight": TensorStorageMetadata(
                TensorProperties(torch.bfloat16, torch.strided, False), torch.Size([2, 24, 8]),
                [ChunkStorageMetadata(torch.Size([0, 0, 0]), torch.Size([2, 24, 8]))]),
            "rng_state/shard_0.0_1.1": BytesStorageMetadata(),
        },
        planner_data={"decoder.layers.self_attention.linear_qkv.weight":
                      ("decoder", "layers", "self_attention", "linear_qkv", "weight")},
        storage_data={
            MetadataIndex("decoder.layers.self_attention.linear_qkv.weight",
                          torch.Size([0, 0, 0]), 0): _StorageInfo("__0_0.distcp", 0, 1234),
            MetadataIndex("rng_state/shard_0.0_1.1", None, 0): _StorageInfo("__0_0.distcp",
                                                                           1234, 56),
        })
    with open(path("dcp_metadata.pkl"), "wb") as f:
        pickle.dump(md, f)
    files.append({"name": "dcp_metadata.pkl", "kind": "pickle", "value": Canon()(md),
                  "extra_classes": [mod + "." + c.__name__ for c in classes]})

    # (e) pickles that would run code
    import subprocess

    def marker(n):
        return os.path.join(out, "pwned_" + n)

    class Reduce:
        def __init__(self, f, a):
            self.f, self.a = f, a

        def __reduce__(self):
            return (self.f, self.a)

    cases = [
        ("os_system", 2, Reduce(os.system, ("touch " + marker("os_system"),))),
        ("eval", 2, Reduce(eval, ("open(%r, 'w')" % marker("eval"),))),
        ("exec", 4, Reduce(exec, ("open(%r, 'w')" % marker("exec"),))),
        ("popen", 3, Reduce(subprocess.Popen, (["touch", marker("popen")],))),
        ("os_system_p0", 0, Reduce(os.system, ("touch " + marker("os_system_p0"),))),
        ("nested", 2, {"model": {"w": [1, 2]},
                       "x": [Reduce(os.system, ("touch " + marker("nested"),))]}),
    ]
    for name, proto, obj in cases:
        fn = "evil_%s.pkl" % name
        data = pickle.dumps(obj, protocol=proto)
        with open(path(fn), "wb") as f:
            f.write(data)
        evil.append({"name": fn, "global": first_global(data), "marker": "pwned_" + name})
    # inside a torch.save archive, next to real tensors
    tp = path("evil_torch.pt")
    torch.save({"w": torch.ones(2), "x": Reduce(os.system, ("touch " + marker("torch"),))}, tp)
    with zipfile.ZipFile(tp) as z:
        g = first_global(z.read(z.namelist()[0]), skip=("collections.OrderedDict",
                                                         "torch._utils._rebuild_tensor_v2",
                                                         "torch.FloatStorage"))
    evil.append({"name": "evil_torch.pt", "global": g, "marker": "pwned_torch", "zip": True})

    # archives from Python's zipfile (fixed timestamps: deterministic)
    def zi(name, method=zipfile.ZIP_STORED):
        i = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
        i.compress_type = method
        return i

    contents = {"archive/data.pkl": pickle.dumps({"a": 1}, protocol=2),
                "archive/data/0": bytes(range(40)),
                "archive/version": b"3\n",
                "archive/empty": b""}
    with zipfile.ZipFile(path("pyzip_stored.zip"), "w", zipfile.ZIP_STORED) as z:
        for k, v in contents.items():
            z.writestr(zi(k), v)
    zips.append({"name": "pyzip_stored.zip", "entries": [[k, v.hex()] for k, v in
                                                           contents.items()]})
    with zipfile.ZipFile(path("pyzip_zip64.zip"), "w", zipfile.ZIP_STORED) as z:
        for k, v in contents.items():
            with z.open(zi(k), "w", force_zip64=True) as w:
                w.write(v)
    zips.append({"name": "pyzip_zip64.zip", "entries": [[k, v.hex()] for k, v in
                                                          contents.items()]})
    with zipfile.ZipFile(path("pyzip_comment.zip"), "w", zipfile.ZIP_STORED) as z:
        z.comment = b"a comment PK\x05\x06 with a fake signature"
        for k, v in contents.items():
            z.writestr(zi(k), v)
    zips.append({"name": "pyzip_comment.zip", "entries": [[k, v.hex()] for k, v in
                                                            contents.items()]})
    with zipfile.ZipFile(path("pyzip_deflated.zip"), "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zi("archive/data.pkl", zipfile.ZIP_DEFLATED), contents["archive/data.pkl"] * 4)
    zips.append({"name": "pyzip_deflated.zip", "error": "archive/data.pkl"})

    with open(path("expect.json"), "w") as f:
        json.dump({"files": files, "evil": evil, "zips": zips}, f, indent=1, sort_keys=True)
    return written


def first_global(data, skip=()):
    """The first "module.name" a pickle imports (GLOBAL, INST or STACK_GLOBAL)."""
    import pickletools
    strs = []
    for op, arg, _ in pickletools.genops(data):
        if op.name in ("GLOBAL", "INST"):
            g = arg.replace(" ", ".")
            if g not in skip:
                return g
        elif op.name == "STACK_GLOBAL":
            g = strs[-2] + "." + strs[-1]
            if g not in skip:
                return g
        if isinstance(arg, str):
            strs.append(arg)
    raise ValueError("no global")


if __name__ == "__main__":
    sys.exit(main())
