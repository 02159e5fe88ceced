#!/usr/bin/python3
"""Train mcrt's demo model: a small Llama-style GPT in Megatron-Core's layout, on English text
from Debian packages, with its own byte-level BPE vocabulary in GPT-2's file format.

    apt-get install -y python3-torch python3-numpy \\
        fortunes wordnet-base gnome-user-docs debian-handbook jargon-text
    nice -n 10 /usr/bin/python3 tools/train_demo/train_demo.py          # about an hour, 2 cores

Rerunning the same command continues where it stopped: every stage writes its result under
--work (default tools/train_demo/work/, git-ignored) and is skipped when that exists:

1. corpus.jsonl     the text (corpus.py: which packages and files, and their licences);
                    every 50th document (by a CRC of its name) is held out
2. vocab.json, merges.txt   BPE learned on the training documents (bpe.py)
3. train.u16, heldout.u16   the documents encoded, <|endoftext|> between documents
4. checkpoint.pt    model, AdamW state, step (which fixes the data position: the batch of step
                    k is drawn by a generator seeded with (seed, k)), the training seconds so
                    far and torch's RNG state; written atomically every --checkpoint-minutes
                    and at the end. A checkpoint made with other model or training flags is
                    refused (use the same flags, or another --work)
5. --out (default models/demo/): model.safetensors (MCore TE names, fp32), vocab.json,
   merges.txt, model.yaml (the model section for mcrt) and training.json (the numbers)

How long: by default the run trains for --train-minutes 60 of step time (evaluation and
checkpoints not counted), and the cosine learning-rate schedule runs over that time, so the
number of steps follows the machine's speed (the shipped model's card says what it got). With
--steps N the schedule runs over N steps instead, and a run is reproducible bit for bit (the
time-budgeted one is not: where the schedule is at step k depends on the time taken).
Before choosing a size, time it: --time-steps 20 prints tokens/s for the configured model.

Other uses:
    train_demo.py --time-steps 20         time 20 steps of the configured model, print tokens/s
    train_demo.py --export-only           export the latest checkpoint as it is
    train_demo.py --work /tmp/tiny --steps 200 --hidden-size 64 --num-layers 2 ...   a quick run

The model: pre-norm RMSNorm, RoPE (rotate-half), SwiGLU, no biases, untied output layer, MHA.
The forward below is written in the layout of tools/reference/gpt/mcore_gpt.py (fused QKV rows
group-major, fc1 = [gate; up]) so that export is a rename; the export checks the reference's
logits against the trained module's on held-out text. Training is fp32 with a cosine learning
rate after a linear warmup, AdamW (no weight decay on norms), gradient clipping at 1.0.
"""

import argparse
import json
import math
import os
import sys
import time
import zlib

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tools", "reference", "gpt"))

import bpe  # noqa: E402
import corpus  # noqa: E402
import safetensors_io  # noqa: E402

HELDOUT_EVERY = 50             # a document is held out when crc32(source/name) % 50 == 0
MODEL_KEYS = ("vocab_size", "hidden_size", "num_layers", "num_attention_heads",
              "ffn_hidden_size", "seq_length")
TRAIN_KEYS = ("steps", "train_minutes", "batch_size", "lr", "min_lr", "warmup_steps", "weight_decay", "seed")


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------

def is_heldout(doc):
    return zlib.crc32(("%s/%s" % (doc["source"], doc["name"])).encode()) % HELDOUT_EVERY == 0


def read_docs(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def prepare_data(args):
    """Stages 1-3; returns (tokenizer, train tokens, held-out tokens) as uint16 arrays."""
    os.makedirs(args.work, exist_ok=True)
    corpus_path = os.path.join(args.work, "corpus.jsonl")
    if not os.path.exists(corpus_path):
        corpus.build(corpus_path, log=log)
    vocab_path = os.path.join(args.work, "vocab.json")
    merges_path = os.path.join(args.work, "merges.txt")
    docs = None
    if not os.path.exists(vocab_path):
        docs = read_docs(corpus_path)
        t0 = time.time()
        counts = bpe.count_words(d["text"] for d in docs if not is_heldout(d))
        log("bpe: %d distinct words; learning %d merges" % (len(counts), args.vocab_size - 257))
        merges = bpe.train_bpe(counts, args.vocab_size - 257, log=log)
        tmp_vocab, tmp_merges = vocab_path + ".tmp", merges_path + ".tmp"
        bpe.write_gpt2_files(merges, tmp_vocab, tmp_merges)
        os.replace(tmp_merges, merges_path)
        os.replace(tmp_vocab, vocab_path)
        log("bpe: %d merges in %.0f s" % (len(merges), time.time() - t0))
    tokenizer = bpe.BPETokenizer.from_files(vocab_path, merges_path)
    if len(tokenizer) != args.vocab_size:
        raise SystemExit("%s has %d entries, --vocab-size is %d (use another --work)"
                         % (vocab_path, len(tokenizer), args.vocab_size))
    paths = {split: os.path.join(args.work, split + ".u16") for split in ("train", "heldout")}
    if not all(os.path.exists(p) for p in paths.values()):
        docs = docs or read_docs(corpus_path)
        t0 = time.time()
        for split, path in paths.items():
            ids = []
            for d in docs:
                if is_heldout(d) == (split == "heldout"):
                    ids.extend(tokenizer.encode(d["text"]))
                    ids.append(tokenizer.eod)
            arr = np.array(ids, dtype=np.uint16)
            arr.tofile(path + ".tmp")
            os.replace(path + ".tmp", path)
            with open(path + ".txt", "w", encoding="utf-8") as f:       # for the tokenizer check
                f.write("".join(d["text"] for d in docs if is_heldout(d) == (split == "heldout")))
            log("data: %s %d tokens" % (split, len(arr)))
        log("data: encoded in %.0f s" % (time.time() - t0))
    train = np.fromfile(paths["train"], dtype=np.uint16)
    heldout = np.fromfile(paths["heldout"], dtype=np.uint16)
    return tokenizer, train, heldout


def batch_for_step(tokens, step, batch_size, seq_length, seed):
    """The (inputs, targets) of a step: batch_size random windows, fixed by (seed, step)."""
    gen = np.random.Generator(np.random.PCG64([seed, step]))
    starts = gen.integers(0, len(tokens) - seq_length - 1, size=batch_size)
    windows = np.stack([tokens[s:s + seq_length + 1] for s in starts]).astype(np.int64)
    windows = torch.from_numpy(windows)
    return windows[:, :-1], windows[:, 1:]


# ---------------------------------------------------------------------------------------------
# The model (MCore layout; the names are the TE spelling of tools/reference/gpt/mcore_gpt.py)
# ---------------------------------------------------------------------------------------------

class RMSNorm(torch.nn.Module):
    def __init__(self, dim, eps):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + self.eps) * self.weight


class Layer(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        h, F_, n = cfg["hidden_size"], cfg["ffn_hidden_size"], cfg["num_attention_heads"]
        self.heads, self.head_dim = n, h // n
        self.attn_norm = RMSNorm(h, cfg["norm_epsilon"])
        self.qkv = torch.nn.Linear(h, 3 * h, bias=False)     # rows per head: [q; k; v]
        self.proj = torch.nn.Linear(h, h, bias=False)
        self.mlp_norm = RMSNorm(h, cfg["norm_epsilon"])
        self.fc1 = torch.nn.Linear(h, 2 * F_, bias=False)    # [gate; up]
        self.fc2 = torch.nn.Linear(F_, h, bias=False)

    def forward(self, x, cos, sin, mask):
        b, s, h = x.shape
        qkv = self.qkv(self.attn_norm(x)).view(b, s, self.heads, 3 * self.head_dim)
        q, k, v = qkv.split(self.head_dim, dim=-1)            # [b, s, n, hn] each
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))      # [b, n, s, hn]
        scores = (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        scores = scores.masked_fill(mask[:s, :s], float("-inf"))
        context = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(b, s, h)
        x = x + self.proj(context)
        gate, up = self.fc1(self.mlp_norm(x)).chunk(2, dim=-1)
        return x + self.fc2(F.silu(gate) * up)


def rope(x, cos, sin):
    """Rotate-half RoPE over the whole head (rotary_percent 1.0): x [b, s, n, hn]."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


class DemoGPT(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        h, V, L = cfg["hidden_size"], cfg["vocab_size"], cfg["num_layers"]
        self.embedding = torch.nn.Embedding(V, h)
        self.layers = torch.nn.ModuleList(Layer(cfg) for _ in range(L))
        self.final_norm = RMSNorm(h, cfg["norm_epsilon"])
        self.output = torch.nn.Linear(h, V, bias=False)
        hn, s = h // cfg["num_attention_heads"], cfg["seq_length"]
        inv_freq = 1.0 / (cfg["rotary_base"] ** (torch.arange(0, hn, 2, dtype=torch.float32) / hn))
        angles = torch.outer(torch.arange(s, dtype=torch.float32), inv_freq)
        emb = torch.cat((angles, angles), dim=-1)[None, :, None, :]   # [1, s, 1, hn]
        self.register_buffer("cos", emb.cos(), persistent=False)
        self.register_buffer("sin", emb.sin(), persistent=False)
        self.register_buffer("mask", torch.triu(torch.ones(s, s, dtype=torch.bool), 1),
                             persistent=False)
        self.reset_parameters()

    def reset_parameters(self):
        std = 0.02
        for name, p in self.named_parameters():
            if p.dim() == 1:
                continue                                       # norm gains stay 1
            scale = std / math.sqrt(2 * self.cfg["num_layers"]) \
                if name.endswith(("proj.weight", "fc2.weight")) else std
            torch.nn.init.normal_(p, 0.0, scale)

    def forward(self, tokens):
        s = tokens.shape[1]
        x = self.embedding(tokens)
        cos, sin = self.cos[:, :s], self.sin[:, :s]
        for layer in self.layers:
            x = layer(x, cos, sin, self.mask)
        return self.output(self.final_norm(x))

    def mcore_state_dict(self):
        """The weights under MCore's TE-spelled names (§3.2), fp32, in a fixed order."""
        out = {"embedding.word_embeddings.weight": self.embedding.weight}
        for i, layer in enumerate(self.layers):
            p = "decoder.layers.%d." % i
            out[p + "self_attention.linear_qkv.layer_norm_weight"] = layer.attn_norm.weight
            out[p + "self_attention.linear_qkv.weight"] = layer.qkv.weight
            out[p + "self_attention.linear_proj.weight"] = layer.proj.weight
            out[p + "mlp.linear_fc1.layer_norm_weight"] = layer.mlp_norm.weight
            out[p + "mlp.linear_fc1.weight"] = layer.fc1.weight
            out[p + "mlp.linear_fc2.weight"] = layer.fc2.weight
        out["decoder.final_layernorm.weight"] = self.final_norm.weight
        out["output_layer.weight"] = self.output.weight
        return {k: v.detach().float().contiguous().clone() for k, v in out.items()}


def megatron_args(cfg):
    """The model section for mcrt / GPTConfig (Megatron argument names)."""
    return dict(
        hidden_size=cfg["hidden_size"], num_layers=cfg["num_layers"],
        num_attention_heads=cfg["num_attention_heads"], ffn_hidden_size=cfg["ffn_hidden_size"],
        normalization="RMSNorm", norm_epsilon=cfg["norm_epsilon"],
        position_embedding_type="rope", rotary_percent=1.0, rotary_base=cfg["rotary_base"],
        rotary_interleaved=False, max_position_embeddings=cfg["seq_length"],
        activation="swiglu", add_bias_linear=False, add_qkv_bias=False,
        untie_embeddings_and_output_weights=True,
        vocab_size=cfg["vocab_size"], make_vocab_size_divisible_by=128)


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------

def training_progress(step, elapsed, cfg):
    """How far the run is, 0..1: by steps with --steps, else by training seconds."""
    if cfg["steps"]:
        return step / cfg["steps"]
    return elapsed / (60.0 * cfg["train_minutes"])


def learning_rate(step, elapsed, cfg):
    """Linear warmup over warmup_steps, then a cosine from lr to min_lr over the rest of the run
    (steps, or training time with a time budget)."""
    if step < cfg["warmup_steps"]:
        return cfg["lr"] * (step + 1) / cfg["warmup_steps"]
    if cfg["steps"]:
        progress = (step - cfg["warmup_steps"]) / max(1, cfg["steps"] - cfg["warmup_steps"])
    else:
        progress = training_progress(step, elapsed, cfg)
    progress = min(1.0, progress)
    return cfg["min_lr"] + 0.5 * (cfg["lr"] - cfg["min_lr"]) * (1 + math.cos(math.pi * progress))


def make_optimizer(model, cfg):
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg["weight_decay"]},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=cfg["lr"], betas=(0.9, 0.95), eps=1e-8)


@torch.no_grad()
def evaluate(model, tokens, tokenizer, seq_length, max_windows):
    """Held-out loss over non-overlapping windows: (nats/token, tokens, bytes)."""
    model.eval()
    n_windows = min(max_windows, (len(tokens) - 1) // seq_length)
    byte_len = np.array([len(tokenizer.token_bytes(i)) for i in range(len(tokenizer))])
    total_nll, total_tokens, total_bytes = 0.0, 0, 0
    for start in range(0, n_windows, 16):
        rows = range(start, min(n_windows, start + 16))
        w = np.stack([tokens[r * seq_length:r * seq_length + seq_length + 1] for r in rows])
        w = torch.from_numpy(w.astype(np.int64))
        logits = model(w[:, :-1])
        nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), w[:, 1:].reshape(-1),
                              reduction="sum")
        total_nll += float(nll)
        total_tokens += w[:, 1:].numel()
        total_bytes += int(byte_len[w[:, 1:].numpy()].sum())
    model.train()
    return total_nll / total_tokens, total_tokens, total_bytes, total_nll


def save_checkpoint(path, model, optimizer, step, cfg, history, elapsed):
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
             "cfg": cfg, "history": history, "elapsed": elapsed,
             "torch_rng": torch.get_rng_state()}
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)


def config_from_args(args):
    return dict(vocab_size=args.vocab_size, hidden_size=args.hidden_size,
                num_layers=args.num_layers, num_attention_heads=args.num_attention_heads,
                ffn_hidden_size=args.ffn_hidden_size, seq_length=args.seq_length,
                norm_epsilon=1e-5, rotary_base=10000,
                steps=args.steps, train_minutes=args.train_minutes, batch_size=args.batch_size, lr=args.lr, min_lr=args.lr / 10,
                warmup_steps=args.warmup_steps, weight_decay=0.1, seed=args.seed)


def train(args, tokenizer, train_tokens, heldout_tokens):
    cfg = config_from_args(args)
    ckpt_path = os.path.join(args.work, "checkpoint.pt")
    torch.manual_seed(cfg["seed"])
    model = DemoGPT(cfg)
    optimizer = make_optimizer(model, cfg)
    step, history, elapsed = 0, [], 0.0
    if os.path.exists(ckpt_path):
        state = torch.load(ckpt_path)
        saved = state["cfg"]
        differ = [k for k in MODEL_KEYS + TRAIN_KEYS if saved.get(k) != cfg[k]]
        if differ:
            raise SystemExit("%s was made with other settings (%s); use the same flags or "
                             "another --work" % (ckpt_path, ", ".join(
                                 "%s=%s" % (k, saved.get(k)) for k in differ)))
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        step, history, elapsed = state["step"], state["history"], state["elapsed"]
        log("resumed at step %d (%.0f s of training so far)" % (step, elapsed))
    n_params = sum(p.numel() for p in model.parameters())
    log("model: %d parameters (%d without embeddings); %d train tokens, %d held-out tokens"
        % (n_params, n_params - model.embedding.weight.numel(), len(train_tokens),
           len(heldout_tokens)))

    last_save = time.time()
    t_window, tokens_window = time.time(), 0
    done = training_progress(step, elapsed, cfg) >= 1.0
    while not done:
        t_step = time.time()
        lr = learning_rate(step, elapsed, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        inputs, targets = batch_for_step(train_tokens, step, cfg["batch_size"],
                                         cfg["seq_length"], cfg["seed"])
        logits = model(inputs)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        elapsed += time.time() - t_step
        done = training_progress(step, elapsed, cfg) >= 1.0
        tokens_window += inputs.numel()
        if step % args.log_every == 0 or done:
            rate = tokens_window / (time.time() - t_window)
            log("step %d (%.1f%%) loss %.3f lr %.2e %.0f tokens/s"
                % (step, 100 * training_progress(step, elapsed, cfg), float(loss), lr, rate))
            t_window, tokens_window = time.time(), 0
        if step % args.eval_every == 0 or done:
            nll, n_tok, n_bytes, total = evaluate(model, heldout_tokens, tokenizer,
                                                  cfg["seq_length"], args.eval_windows)
            history.append({"step": step, "train_loss": float(loss), "heldout_nll": nll,
                            "heldout_ppl": math.exp(nll), "bits_per_byte": total / n_bytes / math.log(2),
                            "elapsed_s": round(elapsed)})
            log("eval step %d: held-out loss %.3f, perplexity %.2f per token, %.3f bits per byte"
                % (step, nll, math.exp(nll), total / n_bytes / math.log(2)))
        if time.time() - last_save > args.checkpoint_minutes * 60 or done:
            save_checkpoint(ckpt_path, model, optimizer, step, cfg, history, elapsed)
            last_save = time.time()
    cfg["steps_done"] = step
    return model, cfg, history, elapsed


def time_steps(args, train_tokens):
    cfg = config_from_args(args)
    torch.manual_seed(0)
    model = DemoGPT(cfg)
    optimizer = make_optimizer(model, cfg)
    n_params = sum(p.numel() for p in model.parameters())
    t0 = None
    for step in range(args.time_steps + 2):
        if step == 2:
            t0 = time.time()                                   # the first steps warm up
        inputs, targets = batch_for_step(train_tokens, step, cfg["batch_size"],
                                         cfg["seq_length"], 0)
        loss = F.cross_entropy(model(inputs).reshape(-1, cfg["vocab_size"]), targets.reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    dt = (time.time() - t0) / args.time_steps
    rate = cfg["batch_size"] * cfg["seq_length"] / dt
    log("timing: %d parameters, %.3f s/step, %.0f tokens/s -> %d steps in an hour (%.1fM tokens)"
        % (n_params, dt, rate, 3600 / dt, 3600 * rate / 1e6))


# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------

def export(args, model, cfg, history, elapsed, tokenizer, heldout_tokens):
    import mcore_gpt
    os.makedirs(args.out, exist_ok=True)
    weights = model.mcore_state_dict()
    meta = {"generator": "tools/train_demo/train_demo.py", "format": "pt",
            "model": json.dumps(megatron_args(cfg), sort_keys=True)}
    safetensors_io.write(os.path.join(args.out, "model.safetensors"), weights, meta)
    for name in ("vocab.json", "merges.txt"):
        with open(os.path.join(args.work, name), "rb") as src, \
                open(os.path.join(args.out, name), "wb") as dst:
            dst.write(src.read())
    margs = megatron_args(cfg)
    with open(os.path.join(args.out, "model.yaml"), "w") as f:
        f.write("# The model section for mcrt (written by tools/train_demo/train_demo.py)\n")
        f.write("model:\n  name: gpt\n  load: .\n")
        for k, v in margs.items():
            f.write("  %s: %s\n" % (k, json.dumps(v) if not isinstance(v, str) else v))

    # The reference forward on the exported weights must give the trained module's logits.
    ref = mcore_gpt.MCoreGPT(mcore_gpt.GPTConfig.from_args(margs),
                             safetensors_io.read(os.path.join(args.out, "model.safetensors"))[0],
                             dtype=torch.float64)
    sample = torch.from_numpy(heldout_tokens[:64].astype(np.int64))[None, :]
    with torch.no_grad():
        ours = model(sample).double()
    theirs = ref.forward(sample)[:, :, :cfg["vocab_size"]]
    diff = float((ours - theirs).abs().max())
    if diff > 1e-3:
        raise SystemExit("export: the reference's logits differ from the trained model's by %g"
                         % diff)
    final = history[-1] if history else {}
    summary = {"config": cfg, "megatron_args": margs,
               "parameters": sum(p.numel() for p in model.parameters()),
               "steps": final.get("step"),
               "tokens_seen": final.get("step", 0) * cfg["batch_size"] * cfg["seq_length"],
               "train_tokens_in_corpus": int(len(np.fromfile(os.path.join(args.work, "train.u16"),
                                                             dtype=np.uint16))),
               "heldout_tokens_in_corpus": int(len(heldout_tokens)),
               "training_seconds": round(elapsed),
               "final_eval": final, "history": history, "reference_max_logit_diff": diff}
    with open(os.path.join(args.out, "training.json"), "w") as f:
        json.dump(summary, f, indent=1)
    log("export: %s (reference logits agree to %.1e)" % (args.out, diff))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--work", default=os.path.join(HERE, "work"))
    ap.add_argument("--out", default=os.path.join(REPO, "models", "demo"))
    ap.add_argument("--vocab-size", type=int, default=4096)
    ap.add_argument("--hidden-size", type=int, default=192)
    ap.add_argument("--num-layers", type=int, default=4)
    ap.add_argument("--num-attention-heads", type=int, default=4)
    ap.add_argument("--ffn-hidden-size", type=int, default=512)
    ap.add_argument("--seq-length", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--steps", type=int, default=0,
                    help="train this many steps (the cosine runs over steps); 0: use --train-minutes")
    ap.add_argument("--train-minutes", type=float, default=60.0,
                    help="without --steps: train for this much time (the cosine runs over it)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--warmup-steps", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--log-every", type=int, default=20)
    ap.add_argument("--eval-every", type=int, default=250)
    ap.add_argument("--eval-windows", type=int, default=400)
    ap.add_argument("--checkpoint-minutes", type=float, default=3.0)
    ap.add_argument("--time-steps", type=int, default=0)
    ap.add_argument("--export-only", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    tokenizer, train_tokens, heldout_tokens = prepare_data(args)
    if args.time_steps:
        return time_steps(args, train_tokens)
    if args.export_only:
        state = torch.load(os.path.join(args.work, "checkpoint.pt"))
        model = DemoGPT(state["cfg"])
        model.load_state_dict(state["model"])
        return export(args, model, state["cfg"], state["history"], state["elapsed"],
                      tokenizer, heldout_tokens)
    model, cfg, history, elapsed = train(args, tokenizer, train_tokens, heldout_tokens)
    export(args, model, cfg, history, elapsed, tokenizer, heldout_tokens)


if __name__ == "__main__":
    sys.exit(main())
