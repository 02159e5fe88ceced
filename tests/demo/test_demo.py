#!/usr/bin/python3
"""The shipped demo model end to end: `mcrt run configs/demo.yaml` against a PyTorch reference.

    test_demo.py [--build BUILD] [--config configs/demo.yaml] [--prompts P ...]

mcrt runs the demo pipeline (engine static, controller simple, sampler default, tokenizer
gpt2-bpe, model gpt on models/demo/) greedily on three prompts. The reference loads
models/demo/model.safetensors with tools/reference/gpt/mcore_gpt.py (float64) and encodes with
tools/train_demo/bpe.py. Checked, per prompt:

- the prompt ids mcrt reports equal the Python encoder's;
- every generated token (and the <|endoftext|> that ended a request early, which mcrt reports
  as finish_reason eod, not as a token) is the reference's greedy choice given the prompt and
  mcrt's tokens before it (one teacher-forced forward over prompt + generated tokens); where the reference's
  two best logits are within NEAR_TIE of each other either of them is accepted (fp32 vs
  float64 may order a near-tie differently; the tokens after it are still checked on mcrt's
  path);
- mcrt's generated_text is the Python decoding of its generated tokens;
- `mcrt tokenize` agrees with the Python encoder on a few everyday sentences.

Takes a few seconds. Exit 0 pass, 1 fail, 77 (skip, one line) without python3-torch or numpy.
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
PROMPTS = ["To change your password,", "He said that", "If you want to be happy,"]
NUM_TOKENS = 30
NEAR_TIE = 1e-4
TOKENIZE_SAMPLES = [
    "Hello world! It's a nice day, isn't it?",
    "  Two spaces, a tab\there, and a new line\nat the end.\n",
    "Caf\u00e9 na\u00efve co\u00f6perate \u2014 \u201cquoted\u201d 1,234.56 \U0001F600",
    "I'll say THEY'RE here; we've 3 cats.",
]


def load_model_section(config_path):
    """The model: section of the YAML (flat `key: value` lines; enough for configs/demo.yaml)."""
    section, inside = {}, False
    with open(config_path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].rstrip()
            if not line:
                continue
            if not line.startswith(" "):
                inside = line.startswith("model:")
                continue
            if inside:
                key, value = (part.strip() for part in line.split(":", 1))
                try:
                    section[key] = json.loads(value)      # numbers, true/false, "strings"
                except ValueError:
                    section[key] = value                  # plain scalars: RMSNorm, rope, .
    return section


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--config", default=os.path.join(REPO, "configs", "demo.yaml"))
    ap.add_argument("--prompts", nargs="+", default=PROMPTS)
    args = ap.parse_args()
    try:
        import numpy  # noqa: F401
        import torch
    except ImportError as e:
        print("SKIP: /usr/bin/python3 has no torch/numpy (%s); install python3-torch" % e)
        return 77
    sys.path.insert(0, os.path.join(REPO, "tools", "reference", "gpt"))
    sys.path.insert(0, os.path.join(REPO, "tools", "train_demo"))
    import bpe
    import mcore_gpt
    import safetensors_io
    torch.set_num_threads(1)

    config_dir = os.path.dirname(os.path.abspath(args.config))
    section = load_model_section(args.config)
    model_dir = os.path.normpath(os.path.join(config_dir, section.pop("load")))
    section.pop("name", None)
    tokenizer = bpe.BPETokenizer.from_files(os.path.join(model_dir, "vocab.json"),
                                            os.path.join(model_dir, "merges.txt"))
    weights, _ = safetensors_io.read(os.path.join(model_dir, "model.safetensors"))
    cfg = mcore_gpt.GPTConfig.from_args(section)
    model = mcore_gpt.MCoreGPT(cfg, weights, dtype=torch.float64)
    mcrt = os.path.join(args.build, "mcrt")
    failures = []

    # The tokenizer on its own.
    out = subprocess.run([mcrt, "tokenize", "--vocab-file", os.path.join(model_dir, "vocab.json"),
                          "--merge-file", os.path.join(model_dir, "merges.txt"), "--"]
                         + TOKENIZE_SAMPLES, capture_output=True, text=True)
    if out.returncode != 0:
        print("mcrt tokenize failed (%d): %s" % (out.returncode, out.stderr.strip()))
        return 1
    for text, line in zip(TOKENIZE_SAMPLES, out.stdout.splitlines()):
        if json.loads(line) != tokenizer.encode(text):
            failures.append("tokenize %r: mcrt %s, python %s" % (text, line, tokenizer.encode(text)))

    # Greedy generation.
    cmd = [mcrt, "run", args.config, "--prompts"] + args.prompts + [
        "-n", str(NUM_TOKENS), "--temperature", "0", "--output-format", "json"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        print("mcrt run failed (%d): %s\n%s" % (out.returncode, " ".join(cmd), out.stderr))
        return 1
    results = json.loads(out.stdout)
    if len(results) != len(args.prompts):
        print("mcrt returned %d results for %d prompts" % (len(results), len(args.prompts)))
        return 1
    ties = 0
    for prompt, result in zip(args.prompts, results):
        prompt_ids = tokenizer.encode(prompt)
        generated = result["generated_tokens"]
        if result["prompt_tokens"] != prompt_ids:
            failures.append("%r: prompt ids mcrt %s, python %s"
                            % (prompt, result["prompt_tokens"], prompt_ids))
            continue
        finish = result["finish_reason"]
        if (finish, len(generated) == NUM_TOKENS) not in (("length", True), ("eod", False)):
            failures.append("%r: finish_reason %s after %d of %d tokens"
                            % (prompt, finish, len(generated), NUM_TOKENS))
            continue
        # mcrt leaves a sampled <|endoftext|> out of generated_tokens (finish_reason eod):
        # the reference must choose it after the last generated token.
        chosen = generated + ([tokenizer.eod] if finish == "eod" else [])
        with torch.no_grad():
            logits = model.forward(torch.tensor([prompt_ids + generated]))[0]   # [L, Vp]
        for k, token in enumerate(chosen):
            row = logits[len(prompt_ids) - 1 + k, :cfg.vocab_size]
            best = int(torch.argmax(row))
            if token == best:
                continue
            margin = float(row[best] - row[token])
            if margin < NEAR_TIE:
                ties += 1
                continue
            failures.append("%r: step %d: mcrt chose %d (%r), the reference %d (%r) by %.3g; "
                            "mcrt's text so far %r" % (
                                prompt, k, token, tokenizer.decode([token]), best,
                                tokenizer.decode([best]), margin, tokenizer.decode(generated[:k])))
            break
        if result["generated_text"] != tokenizer.decode(generated):
            failures.append("%r: generated_text %r, python decodes the ids as %r"
                            % (prompt, result["generated_text"], tokenizer.decode(generated)))
        print("%r -> %r" % (prompt, result["generated_text"]))

    for f in failures:
        print("FAIL:", f)
    print("%d prompts, %d tokens each, %d near-ties accepted: %s"
          % (len(args.prompts), NUM_TOKENS, ties, "FAIL" if failures else "ok"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
