#!/usr/bin/python3
"""The PyTorch side of the model benchmark (issue 4, item 6): a plain PyTorch GPT-2-style forward
with a KV cache, over a model written by make_model.py.

    /usr/bin/python3 tools/bench/model/bench_torch.py --model DIR/fp32 --threads N [--quick] --json
    /usr/bin/python3 tools/bench/model/bench_torch.py --check      # the self-check, ~10 s

prints one JSON object (keys as mcrt's bench-model, "impl": "torch"):
  load_s          wall time from opening model.safetensors (and config.yaml) to a model ready to
                  run (the torch import before it is not counted), with a warm page cache (the
                  file is read once, untimed, first; bench-model does the same)
  peak_rss_mib    VmHWM of this process at the end
  prefill_tok_s   {"128", "512"}: one sequence of P random tokens, logits for the last token only,
                  best of up to 5 reps (--quick: 2) within a time budget; P / time
  decode_tok_s    {"1", "8", "32"}: B sequences with a 128-token prompt in the cache (not timed),
                  then D = 32 (--quick: 8) steps of one token per sequence with logits for every
                  sequence; B * D / time of the D steps (best of up to 3 reps; --quick: 1)

The forward computes in the weights' dtype (fp32 or bf16), activations [tokens, h] row-major:
LayerNorm (F.layer_norm), linear layers, causal attention (matmul + softmax: torch 1.13 has no
scaled_dot_product_attention), GELU tanh (F.gelu approximate="tanh"). The KV cache is one
preallocated K and V per layer, [B, heads, max_len, head_dim].

Linear layers: fp32 weights stay as stored ([out, in]) and run through F.linear (OpenBLAS sgemm).
bf16 weights are transposed once at load to [in, out] and run through torch.addmm / torch.mm:
torch 1.13's CPU bf16 GEMM (no oneDNN bf16 without AVX-512) is a plain loop that is ~3x faster in
that layout than F.linear's (measured 1.2 vs 3.9 GFLOP/s). The tied embedding is then kept once,
as [h, Vp] (the output layer's layout), and looked up by column.

Threads: --threads N sets torch.set_num_threads(N) and, before torch is imported (unless already
set in the environment), OMP_NUM_THREADS=N, OPENBLAS_NUM_THREADS=N and OMP_WAIT_POLICY=PASSIVE:
torch's OpenMP threads otherwise spin after each parallel region and fight OpenBLAS's own pthreads
for the cores (measured: fp32 [32 x 768] x [768 x 3072] at 2 threads 26 -> 56-75 GFLOP/s).

--check compares the KV-cached logits (prefill in two chunks, then decode steps) with
tools/reference/gpt/mcore_gpt.MCoreGPT (float64) on a tiny GPT-2-shaped model written by
make_model.py: fp32 must agree within 1e-4 x logit scale (max |logit| of the reference); bf16
(bf16 activations here, float64 there on the same rounded weights) within 5e-2 x logit scale.
"""

import argparse
import json
import math
import os
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
REFERENCE = os.path.join(REPO, "tools", "reference", "gpt")
sys.path.insert(0, REFERENCE)
sys.path.insert(0, HERE)

PROMPT_LEN = 128                      # decode: tokens in the cache before the timed steps
PREFILL_LENS = (128, 512)
DECODE_BATCHES = (1, 8, 32)


def _thread_env_from_argv(argv):
    """Set the thread environment before torch is imported (see the module docstring)."""
    n = None
    for i, arg in enumerate(argv):
        if arg == "--threads" and i + 1 < len(argv):
            n = argv[i + 1]
        elif arg.startswith("--threads="):
            n = arg.split("=", 1)[1]
    if n is None and "--check" not in argv:
        n = str(os.cpu_count() or 1)
    if n is not None:
        os.environ.setdefault("OMP_NUM_THREADS", n)
        os.environ.setdefault("OPENBLAS_NUM_THREADS", n)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


if __name__ == "__main__":
    _thread_env_from_argv(sys.argv[1:])

import torch                                                          # noqa: E402
import torch.nn.functional as F                                       # noqa: E402

import mcore_gpt as mg                                                # noqa: E402
from make_model import read_config                                     # noqa: E402

ST_DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}
DTYPE_NAME = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------

def read_safetensors(path, transform=None):
    """{name: tensor} from a safetensors file: the JSON header, then one read per tensor straight
    into a torch.empty buffer (no zero fill, no second copy). `transform(name, t)` may replace a
    tensor as it comes in (the bf16 transposes), so only one extra tensor is alive at a time."""
    out = {}
    with open(path, "rb", buffering=0) as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n).decode("utf-8"))
        header.pop("__metadata__", None)
        base = 8 + n
        for name, info in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
            dtype = ST_DTYPES[info["dtype"]]
            begin, end = info["data_offsets"]
            shape = [int(d) for d in info["shape"]]
            buf = torch.empty(end - begin, dtype=torch.uint8)
            f.seek(base + begin)
            view = memoryview(buf.numpy())
            got = 0
            while got < end - begin:
                k = f.readinto(view[got:])
                if not k:
                    raise ValueError("%s: tensor %s runs past the end of the file" % (path, name))
                got += k
            t = buf.view(dtype).view(shape)
            out[name] = transform(name, t) if transform else t
    return out


class KVCache:
    """Per layer a preallocated K and V [B, heads, max_len, head_dim]."""

    def __init__(self, cfg, batch, max_len, dtype):
        shape = (batch, cfg.num_attention_heads, max_len, cfg.kv_channels)
        self.k = [torch.empty(shape, dtype=dtype) for _ in range(cfg.num_layers)]
        self.v = [torch.empty(shape, dtype=dtype) for _ in range(cfg.num_layers)]
        self.max_len = max_len
        self.batch = batch

    def fill_from(self, other, length):
        """Copy positions [0, length) of sequence 0 of `other` into every sequence here."""
        for dst, src in zip(self.k + self.v, other.k + other.v):
            dst[:, :, :length] = src[0:1, :, :length]


class TorchGPT:
    """GPT-2-style MCore GPT (LayerNorm, learned positions, GELU, MHA), weights in one dtype."""

    def __init__(self, cfg, weights, transposed):
        self.cfg = cfg
        self.w = weights
        self.transposed = transposed          # linear weights [in, out] (bf16 layout)
        self.dtype = weights["decoder.final_layernorm.weight"].dtype
        self.scale = 1.0 / math.sqrt(cfg.kv_channels)
        L = cfg.num_layers
        self.layers = []
        for i in range(L):
            p = "decoder.layers.%d." % i
            a, m = p + "self_attention.", p + "mlp."
            g = weights.get
            self.layers.append(dict(
                ln1_w=g(a + "linear_qkv.layer_norm_weight"),
                ln1_b=g(a + "linear_qkv.layer_norm_bias"),
                qkv_w=g(a + "linear_qkv.weight"), qkv_b=g(a + "linear_qkv.bias"),
                proj_w=g(a + "linear_proj.weight"), proj_b=g(a + "linear_proj.bias"),
                ln2_w=g(m + "linear_fc1.layer_norm_weight"),
                ln2_b=g(m + "linear_fc1.layer_norm_bias"),
                fc1_w=g(m + "linear_fc1.weight"), fc1_b=g(m + "linear_fc1.bias"),
                fc2_w=g(m + "linear_fc2.weight"), fc2_b=g(m + "linear_fc2.bias")))
        self.lnf_w = weights["decoder.final_layernorm.weight"]
        self.lnf_b = weights.get("decoder.final_layernorm.bias")
        self.pos = weights.get("embedding.position_embeddings.weight")
        self.emb = weights["embedding.word_embeddings.weight"]       # [Vp, h] ([h, Vp] if bf16)
        self.out = weights.get("output_layer.weight", self.emb)       # tied: the same tensor

    @staticmethod
    def supported(cfg):
        problems = []
        if cfg.normalization != "LayerNorm":
            problems.append("normalization %s" % cfg.normalization)
        if cfg.position_embedding_type != "learned_absolute":
            problems.append("position_embedding_type %s" % cfg.position_embedding_type)
        if cfg.activation not in ("gelu_tanh", "gelu"):
            problems.append("activation %s" % cfg.activation)
        if cfg.num_query_groups != cfg.num_attention_heads:
            problems.append("GQA")
        if cfg.qk_layernorm or cfg.apply_layernorm_1p:
            problems.append("qk_layernorm / apply_layernorm_1p")
        if problems:
            raise ValueError("bench_torch.py implements GPT-2-style models only, not: "
                             + ", ".join(problems))

    def linear(self, x, w, b):
        if self.transposed:
            return torch.addmm(b, x, w) if b is not None else torch.mm(x, w)
        return F.linear(x, w, b)

    def embed(self, tokens, start_pos):
        """tokens [B, S] -> x [B*S, h]."""
        B, S = tokens.shape
        flat = tokens.reshape(-1)
        if self.transposed:
            x = self.emb.index_select(1, flat).t()                     # [B*S, h]
        else:
            x = self.emb.index_select(0, flat)                         # [B*S, h]
        pos = self.pos[start_pos:start_pos + S]                        # [S, h]
        return (x.view(B, S, -1) + pos).reshape(B * S, -1)

    def attention(self, i, x, B, S, start_pos, cache):
        cfg = self.cfg
        lw = self.layers[i]
        nh, hn = cfg.num_attention_heads, cfg.kv_channels
        qkv = self.linear(x, lw["qkv_w"], lw["qkv_b"])                # [B*S, 3h], per head [q k v]
        qkv = qkv.view(B, S, nh, 3, hn).permute(3, 0, 2, 1, 4)        # [3, B, nh, S, hn]
        q, k, v = qkv[0], qkv[1], qkv[2]
        end = start_pos + S
        cache.k[i][:, :, start_pos:end] = k
        cache.v[i][:, :, start_pos:end] = v
        keys = cache.k[i][:, :, :end]                                  # [B, nh, sk, hn]
        values = cache.v[i][:, :, :end]                                # [B, nh, sk, hn]
        scores = torch.matmul(q, keys.transpose(-1, -2))              # [B, nh, S, sk]
        scores.mul_(self.scale)
        if S > 1:                                                      # causal over positions
            future = torch.ones(S, end, dtype=torch.bool).triu_(start_pos + 1)
            scores.masked_fill_(future, float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        ctx = torch.matmul(probs, values)                              # [B, nh, S, hn]
        ctx = ctx.transpose(1, 2).reshape(B * S, nh * hn)             # head-major, as MCore
        return self.linear(ctx, lw["proj_w"], lw["proj_b"])

    def mlp(self, i, x):
        lw = self.layers[i]
        y = self.linear(x, lw["fc1_w"], lw["fc1_b"])
        y = F.gelu(y, approximate="tanh" if self.cfg.activation == "gelu_tanh" else "none")
        return self.linear(y, lw["fc2_w"], lw["fc2_b"])

    def forward(self, tokens, start_pos, cache, all_logits=False):
        """tokens [B, S] at positions start_pos.. (every sequence at the same position) ->
        logits [B, Vp] of each sequence's last token ([B, S, Vp] with all_logits)."""
        cfg = self.cfg
        B, S = tokens.shape
        if start_pos + S > cache.max_len or B != cache.batch:
            raise ValueError("cache of %d x %d does not fit" % (cache.batch, cache.max_len))
        hshape = (cfg.hidden_size,)
        eps = cfg.norm_epsilon
        x = self.embed(tokens, start_pos)                              # [B*S, h]
        for i, lw in enumerate(self.layers):
            y = F.layer_norm(x, hshape, lw["ln1_w"], lw["ln1_b"], eps)
            x = x + self.attention(i, y, B, S, start_pos, cache)
            y = F.layer_norm(x, hshape, lw["ln2_w"], lw["ln2_b"], eps)
            x = x + self.mlp(i, y)
        if not all_logits:
            x = x.view(B, S, -1)[:, -1]                                # [B, h]
        x = F.layer_norm(x, hshape, self.lnf_w, self.lnf_b, eps)
        if self.transposed:
            logits = torch.mm(x, self.out)                             # [rows, Vp]
        else:
            logits = F.linear(x, self.out)
        return logits.view(B, S, -1) if all_logits else logits

    def new_cache(self, batch, max_len):
        return KVCache(self.cfg, batch, max_len, self.dtype)


def load_model(model_dir):
    """(TorchGPT, cfg) from DIR/config.yaml + DIR/model.safetensors (the `load:` path)."""
    args = read_config(os.path.join(model_dir, "config.yaml"))
    load = args.pop("load", ".") or "."
    args.pop("name", None)
    cfg = mg.GPTConfig.from_args(args)
    TorchGPT.supported(cfg)
    path = os.path.join(model_dir, load)
    if os.path.isdir(path):
        path = os.path.join(path, "model.safetensors")

    with open(path, "rb") as f:                                        # peek at the dtype
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n).decode("utf-8"))
    header.pop("__metadata__", None)
    dtypes = {info["dtype"] for info in header.values()}
    if len(dtypes) != 1 or next(iter(dtypes)) not in ("F32", "BF16"):
        raise ValueError("%s: want every tensor F32 or every tensor BF16, got %s" % (path, dtypes))
    transposed = dtypes == {"BF16"}

    def transform(name, t):
        # bf16: linear weights (and the tied/output embedding) to [in, out], see the docstring
        if transposed and t.dim() == 2 and name != "embedding.position_embeddings.weight":
            return t.t().contiguous()
        return t

    weights = read_safetensors(path, transform)
    shapes = mg.expected_shapes(cfg)
    if not cfg.untie_embeddings_and_output_weights:
        weights.pop("output_layer.weight", None)                       # tied: the embedding is it
    weights = {k: v for k, v in weights.items()
               if not k.endswith("._extra_state") and not k.endswith("rotary_pos_emb.inv_freq")}
    for name, shape in shapes.items():
        if name not in weights:
            raise ValueError("%s: missing tensor %s (TE spelling expected)" % (path, name))
        got = list(weights[name].shape)
        if transposed and len(shape) == 2 and name != "embedding.position_embeddings.weight":
            got = got[::-1]
        if got != shape:
            raise ValueError("%s: %s has shape %s, expected %s" % (path, name, got, shape))
    return TorchGPT(cfg, weights, transposed), cfg


# ---------------------------------------------------------------------------------------------
# Measuring
# ---------------------------------------------------------------------------------------------

def peak_rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def best_of(fn, reps, budget_s):
    """The fastest of up to `reps` calls of fn(); stops early once `budget_s` is spent (>= 1)."""
    best, spent = float("inf"), 0.0
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
        if spent >= budget_s:
            break
    return best


def log(msg):
    print("bench_torch: " + msg, file=sys.stderr, flush=True)


def warm_page_cache(path):
    """Read the file once, untimed, so load_s is a warm-cache figure on both sides (bench-model
    does the same): otherwise whichever side runs first pays the disk."""
    with open(path, "rb", buffering=0) as f:
        while f.read(1 << 24):
            pass


def run_bench(model_dir, threads, quick):
    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(1234)

    warm_page_cache(os.path.join(model_dir, "model.safetensors"))
    t0 = time.perf_counter()
    model, cfg = load_model(model_dir)
    load_s = time.perf_counter() - t0
    dtype = DTYPE_NAME[model.dtype]
    log("%s loaded in %.2f s (%s, %d threads)" % (model_dir, load_s, dtype, threads))

    V = cfg.vocab_size
    rand_tokens = lambda b, s: torch.randint(0, V, (b, s), generator=gen)  # noqa: E731
    steps = 8 if quick else 32
    prefill_reps, prefill_budget = (2, 5.0) if quick else (5, 20.0)
    decode_reps, decode_budget = (1, 0.0) if quick else (3, 20.0)

    with torch.inference_mode():
        warm = model.new_cache(1, 16)                        # touch the weights, start threads
        model.forward(rand_tokens(1, 16), 0, warm)
        del warm

        prefill = {}
        for P in PREFILL_LENS:
            cache = model.new_cache(1, P)
            tokens = rand_tokens(1, P)
            best = best_of(lambda: model.forward(tokens, 0, cache), prefill_reps, prefill_budget)
            prefill[str(P)] = P / best
            log("prefill %d: %.1f tok/s" % (P, prefill[str(P)]))
            cache = None                                               # free before the next one

        # One 128-token prompt, prefilled once (not timed) and copied into every sequence's
        # cache: the decode steps cost the same whatever the cached keys hold.
        max_len = PROMPT_LEN + steps + 1
        seed_cache = model.new_cache(1, PROMPT_LEN)
        model.forward(rand_tokens(1, PROMPT_LEN), 0, seed_cache)
        decode = {}
        for B in DECODE_BATCHES:
            cache = model.new_cache(B, max_len)
            cache.fill_from(seed_cache, PROMPT_LEN)
            feeds = [rand_tokens(B, 1) for _ in range(steps)]
            model.forward(feeds[0], PROMPT_LEN, cache)                  # warm-up step (rewritten)

            def steps_fn():
                for k in range(steps):
                    model.forward(feeds[k], PROMPT_LEN + k, cache)
            best = best_of(steps_fn, decode_reps, decode_budget)
            decode[str(B)] = B * steps / best
            log("decode b%d: %.1f tok/s (%d steps)" % (B, decode[str(B)], steps))
            cache = None                                               # free before the next one

    return {
        "impl": "torch", "dtype": dtype, "threads": threads,
        "load_s": load_s, "peak_rss_mib": peak_rss_mib(),
        "prefill_tok_s": prefill, "decode_tok_s": decode,
        "decode_steps": steps, "decode_prompt_len": PROMPT_LEN,
        "torch_version": torch.__version__,
        "env": {k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                               "OMP_WAIT_POLICY")},
    }


# ---------------------------------------------------------------------------------------------
# Self-check against mcore_gpt.MCoreGPT
# ---------------------------------------------------------------------------------------------

CHECK_ARGS = dict(           # the gpt2 fixture's shape (tools/reference/gpt/make_fixtures.py)
    hidden_size=64, num_layers=3, num_attention_heads=4, ffn_hidden_size=256,
    normalization="LayerNorm", norm_epsilon=1e-5,
    position_embedding_type="learned_absolute", max_position_embeddings=128,
    activation="gelu_tanh", add_bias_linear=True, add_qkv_bias=True,
    untie_embeddings_and_output_weights=False,
    vocab_size=457, make_vocab_size_divisible_by=128)
CHECK_TOLERANCE = {"fp32": 1e-4, "bf16": 5e-2}


def self_check():
    import tempfile
    import make_model
    import safetensors_io as st
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    gen = torch.Generator().manual_seed(7)
    B, L, steps = 3, 21, 12
    ok = True
    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode():
        for dtype in ("fp32", "bf16"):
            d = os.path.join(tmp, dtype)
            make_model.write_model(d, CHECK_ARGS, dtype, seed=5, jitter=True,
                                   about="bench_torch.py --check", quiet=True)
            model, cfg = load_model(d)
            ref_w, _ = st.read(os.path.join(d, "model.safetensors"))
            ref = mg.MCoreGPT(cfg, ref_w, dtype=torch.float64)

            seqs = torch.randint(0, cfg.vocab_size, (B, L + steps), generator=gen)
            seqs[0, 1], seqs[1, 2] = cfg.vocab_size - 1, 0
            want = ref.forward(seqs)                                   # [B, L+steps, Vp] float64
            scale = float(want[:, :, :cfg.vocab_size].abs().max())

            cache = model.new_cache(B, L + steps)
            split = 8                                                  # chunked prefill: 8 + 13
            rows = [model.forward(seqs[:, :split], 0, cache, all_logits=True),
                    model.forward(seqs[:, split:L], split, cache, all_logits=True)]
            got_prompt = torch.cat(rows, dim=1)                        # [B, L, Vp]
            got_steps = [model.forward(seqs[:, L + k:L + k + 1], L + k, cache)
                         for k in range(steps - 1)]                    # [B, Vp] each
            got = torch.cat([got_prompt] + [g[:, None] for g in got_steps], dim=1)
            err = float((got.double() - want[:, :L + steps - 1]).abs().max()) / scale

            # the benchmark's path: last-row prefill logits, and a cache copied from sequence 0
            c1 = model.new_cache(1, L)
            last = model.forward(seqs[:1, :L], 0, c1)                  # [1, Vp]
            cb = model.new_cache(B, L + 1)
            cb.fill_from(c1, L)
            same = seqs[:1, L:L + 1].expand(B, 1)
            step = model.forward(same, L, cb)                          # [B, Vp]
            err2 = max(float((last[0].double() - want[0, L - 1]).abs().max()),
                       float((step.double() - want[0:1, L]).abs().max())) / scale

            tol = CHECK_TOLERANCE[dtype]
            passed = err <= tol and err2 <= tol
            ok &= passed
            print("check %s: KV-cached logits vs MCoreGPT float64: max |err| / logit scale = "
                  "%.2e (prefill in 2 chunks + %d decode steps, B=%d), %.2e (last-row prefill, "
                  "copied cache); bound %.0e: %s"
                  % (dtype, err, steps - 1, B, err2, tol, "PASS" if passed else "FAIL"))
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help="a directory written by make_model.py (config.yaml + "
                                    "model.safetensors)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--quick", action="store_true", help="8 decode steps, fewer reps")
    ap.add_argument("--json", action="store_true", help="print the result as one JSON object")
    ap.add_argument("--check", action="store_true", help="self-check against mcore_gpt.py")
    a = ap.parse_args()
    if a.check:
        sys.exit(0 if self_check() else 1)
    if not a.model:
        ap.error("--model DIR is required (or --check)")
    result = run_bench(a.model, a.threads, a.quick)
    if a.json:
        print(json.dumps(result), flush=True)
    else:
        for k, v in result.items():
            print("%s: %s" % (k, v))


if __name__ == "__main__":
    main()
