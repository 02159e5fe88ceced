#!/usr/bin/python3
"""End to end: `mcrt run` with Megatron's static generation against its PyTorch transcription.

The pipeline under test is engine `static` (Megatron's scheduler), controller `simple` (the
§1.5.3 loop), sampler `default` with `compat: megatron`, top_k 1 (greedy), model `gpt` on the
reference fixtures of tools/reference/gpt, and the test-only `bytes` tokenizer. The expected
results come from tools/reference/generate/megatron_static.py (float64, on the same weights).
Per request: identical generated_tokens, finish_reason ("eod" | "length") and generated_text,
prompt and generated log probs within LOG_PROB_TOL. Case pairs with `same_as` must also agree
with each other (batch invariance, KV block sizes).

    test_generate.py --build BUILD [--fixtures DIR] [-k SUBSTR] [--reference-only]
                     [--dump DIR] [--pipeline megatron|toy]

--fixtures          default BUILD/tests/reference/gpt (made by `meson test --suite reference`)
--reference-only    run only the reference side and print what would be compared (no mcrt)
--dump DIR          write each case's YAML and the reference's expected JSON there
--pipeline toy      harness check: the toy engine `fifo`, controller `toy` and sampler `greedy`
                    (tests/plugins/toy) around the same model; compares tokens, text, finish
                    reasons and generated log probs (the toy sampler normalises over the real
                    vocabulary; it returns no prompt log probs)

Exit 0 when every case matches, 1 when one does not, 77 (skip, one line) without python3-torch,
without the fixtures, or without the plugins.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tools", "reference", "generate"))

LOG_PROB_TOL = 1e-4        # |mcrt - reference| per log prob: fp32 (mcrt) against float64
# Every greedy choice an expected output depends on must win by this much over the runner-up
# (real vocabulary), so that mcrt's fp32 rounding (~1e-5 on these logits) cannot flip a token.
# The case prompts below were picked to satisfy it on their fixtures; the test refuses a case
# that does not (pick another prompt then).
MIN_GREEDY_MARGIN = 5e-3

# (kind, plugin name, folder under BUILD/plugins): what the pipeline needs, besides the toys.
PIPELINES = {
    "megatron": [("engine", "static", "engine-static"), ("controller", "simple", "controller-simple"),
                 ("sampler", "default", "sampler-default"), ("model", "gpt", "model-gpt")],
    "toy": [("engine", "fifo", None), ("controller", "toy", None), ("sampler", "greedy", None),
            ("model", "gpt", "model-gpt")],
}

# Prompts of 1 to 38 bytes, ASCII and multi-byte UTF-8, whose greedy choices all clear
# MIN_GREEDY_MARGIN on every fixture used here (checked at run time).
P7 = ["z", "Hello, world!", "w\u00f6rld \u4e16\u754c", "The quick brown fox jumped over a lazy",
      "mcrt", "\U0001F600 emoji", "Megatron-Core static batch"]
P8 = P7 + ["\u00e9t\u00e9"]
# Prompts whose greedy generation samples <|endoftext|> (256) within 16 tokens, found by a
# search with the reference (tokens before the eod): gpt2 'b' 4, 'ksnRH9u!cA' and
# '1TWDtkwtDDb xHKas1-VOq;' 0, 'oDn' and '?EFd0Nhcy.1kGD2V' 7; kv_channels 'Q' 8, the emoji
# prompt 12, 'W,K' 15, '7s8St' 12.
EOD_GPT2 = ["b", "ksnRH9u!cA", "Hello, world!", "oDn", "?EFd0Nhcy.1kGD2V"]
EOD_GPT2_ALL = ["ksnRH9u!cA", "1TWDtkwtDDb xHKas1-VOq;"]
EOD_KV = ["Q", "\U0001F600 emoji", "W,K", "7s8St", "Hello, world!"]

# name, fixture (<config>/<variant>), engine.max_batch_size B, num_tokens_to_generate N,
# prompts; optional: model (extra model keys), eod (the reference must finish >= 1 row with
# eod; "all": every row), eod_after_n (a row must sample eod as its (N+1)-th token),
# same_as (another case whose mcrt output must be identical).
CASES = [
    dict(name="gpt2-fp32", fixture="gpt2/fp32", B=3, N=16, prompts=P7),
    dict(name="gpt2-bf16", fixture="gpt2/bf16", B=3, N=16, prompts=P7),
    dict(name="llama-fp32", fixture="llama/fp32", B=3, N=16, prompts=P7),
    dict(name="llama-bf16", fixture="llama/bf16", B=4, N=16, prompts=P8),
    dict(name="squared_relu-fp32", fixture="squared_relu/fp32", B=3, N=16, prompts=P7),
    dict(name="kv_channels-fp32", fixture="kv_channels/fp32", B=3, N=16, prompts=P7),
    dict(name="rope_interleaved_qkln-fp32", fixture="rope_interleaved_qkln/fp32", B=8, N=16,
         prompts=P8),
    dict(name="gelu_erf-fp32", fixture="gelu_erf/fp32", B=2, N=16, prompts=P7),
    # N = 0: prompt log probs only (one forward over [0, Lmax)); N = 1: one token each.
    dict(name="llama-fp32-n0", fixture="llama/fp32", B=3, N=0, prompts=P7),
    dict(name="gpt2-fp32-n0", fixture="gpt2/fp32", B=8, N=0, prompts=P8),
    dict(name="llama-fp32-n1", fixture="llama/fp32", B=3, N=1, prompts=P7),
    dict(name="kv_channels-fp32-n1", fixture="kv_channels/fp32", B=8, N=1, prompts=P8),
    # EOD: rows that stop early next to rows that do not; a batch where every row stops (the
    # loop's early break).
    dict(name="gpt2-fp32-eod", fixture="gpt2/fp32", B=3, N=16, prompts=EOD_GPT2, eod=True),
    dict(name="gpt2-bf16-eod", fixture="gpt2/bf16", B=2, N=16, prompts=EOD_GPT2, eod=True),
    dict(name="gpt2-fp32-eod-all", fixture="gpt2/fp32", B=2, N=16, prompts=EOD_GPT2_ALL,
         eod="all"),
    dict(name="kv_channels-fp32-eod", fixture="kv_channels/fp32", B=3, N=16, prompts=EOD_KV,
         eod=True),
    # EOD sampled right after the N-th token (rows shorter than the batch's longest prompt run
    # past N in Megatron's loop): N tokens, finish_reason "length" (trimmed to N; see README).
    dict(name="gpt2-fp32-eod-after-n", fixture="gpt2/fp32", B=2, N=4,
         prompts=["b", "Hello, world!"], eod_after_n=True),
    dict(name="gpt2-fp32-eod-after-n7", fixture="gpt2/fp32", B=3, N=7,
         prompts=["oDn", "?EFd0Nhcy.1kGD2V", "Megatron-Core static batch"], eod_after_n=True),
    # Batch invariance: one request per batch, then all in one, against the B=3 run.
    dict(name="llama-fp32-b1", fixture="llama/fp32", B=1, N=16, prompts=P7, same_as="llama-fp32"),
    dict(name="llama-fp32-b7", fixture="llama/fp32", B=7, N=16, prompts=P7, same_as="llama-fp32"),
    dict(name="gpt2-fp32-eod-b1", fixture="gpt2/fp32", B=1, N=16, prompts=EOD_GPT2, eod=True,
         same_as="gpt2-fp32-eod"),
    # KV block sizes (positions across many blocks; 16 = one block holds most prompts).
    dict(name="squared_relu-fp32-kv1", fixture="squared_relu/fp32", B=3, N=16, prompts=P7,
         model={"kv_block_size": 1}, same_as="squared_relu-fp32"),
    dict(name="squared_relu-fp32-kv16", fixture="squared_relu/fp32", B=3, N=16, prompts=P7,
         model={"kv_block_size": 16}, same_as="squared_relu-fp32"),
    dict(name="llama-fp32-kv1-b7", fixture="llama/fp32", B=7, N=16, prompts=P7,
         model={"kv_block_size": 1}, same_as="llama-fp32"),
]


def skip(reason):
    print("SKIP: " + reason)
    sys.exit(77)


# ---------------------------------------------------------------------------------------------
# The case YAML
# ---------------------------------------------------------------------------------------------

def yaml_str(s):
    """A YAML double-quoted scalar: printable characters as they are, the rest escaped."""
    out = ['"']
    for ch in s:
        c = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 0x20 <= c <= 0x7E or (0xA0 <= c <= 0xD7FF) or (0xE000 <= c <= 0xFFFD) or c >= 0x10000:
            out.append(ch)
        elif c <= 0xFF:
            out.append("\\x%02x" % c)
        else:
            out.append("\\u%04x" % c)
    out.append('"')
    return "".join(out)


def case_yaml(case, model_section, plugin_dirs, pipeline):
    names = {kind: name for kind, name, _ in PIPELINES[pipeline]}
    lines = [
        "# mcrt tests/generate case %s" % case["name"],
        "runtime:",
        "  plugin_dirs: [%s]" % ", ".join(json.dumps(d) for d in plugin_dirs),
        "engine:",
        "  name: %s" % names["engine"],
        "  max_batch_size: %d" % case["B"],
        "controller:",
        "  name: %s" % names["controller"],
        "sampler:",
        "  name: %s" % names["sampler"],
        "tokenizer:",
        "  name: bytes",
        "model:",
    ]
    lines += ["  %s: %s" % (k, v) for k, v in model_section]
    lines += ["  %s: %s" % (k, v) for k, v in sorted(case.get("model", {}).items())]
    lines += [
        "generation:",
        "  compat: megatron",
        "  top_k: 1",
        "  num_tokens_to_generate: %d" % case["N"],
        "  return_log_probs: true",
        "  prompts:",
    ]
    lines += ["    - " + yaml_str(p) for p in case["prompts"]]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Reference side
# ---------------------------------------------------------------------------------------------

class Reference:
    """Models loaded once per fixture; one reference run per case."""

    def __init__(self, fixtures, log_prob_columns):
        self.fixtures = fixtures
        self.models = {}
        self.log_prob_columns = log_prob_columns

    def run(self, case):
        import megatron_static as ms
        fx = case["fixture"]
        if fx not in self.models:
            self.models[fx] = ms.fixture_model(os.path.join(self.fixtures, fx))
        model = self.models[fx]
        t0 = time.time()
        reqs, engine = ms.generate(model, case["prompts"], case["N"], case["B"],
                                   log_prob_columns=self.log_prob_columns)
        seconds = time.time() - t0
        problems = []
        want_batches = [[str(i) for i in range(k, min(k + case["B"], len(case["prompts"])))]
                        for k in range(0, len(case["prompts"]), case["B"])]
        if engine.batches != want_batches:
            problems.append("reference batches %s, expected %s" % (engine.batches, want_batches))
        for r in reqs:
            if r.min_greedy_margin < MIN_GREEDY_MARGIN:
                problems.append("prompt %r: a greedy choice wins by only %.2g < %.2g on %s; "
                                "pick another prompt" % (r.prompt, r.min_greedy_margin,
                                                         MIN_GREEDY_MARGIN, fx))
        n_eod = sum(r.finish_reason == "eod" for r in reqs)
        if case.get("eod") == "all" and n_eod != len(reqs):
            problems.append("expected every row to stop at eod, %d of %d do" % (n_eod, len(reqs)))
        elif case.get("eod") and n_eod == 0:
            problems.append("expected a row to stop at eod, none does")
        if case.get("eod_after_n"):
            longer, _ = ms.generate(model, case["prompts"], case["N"] + 1, case["B"],
                                    return_log_probs=False)
            if not any(r.finish_reason == "eod" and r.generated_length == case["N"] for r in longer):
                problems.append("expected a row to sample eod right after %d tokens" % case["N"])
        return [r.as_mcrt_json() for r in reqs], seconds, problems


# ---------------------------------------------------------------------------------------------
# mcrt side
# ---------------------------------------------------------------------------------------------

def run_mcrt(exe, yaml_text, workdir, name):
    path = os.path.join(workdir, name + ".yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write(yaml_text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCRT_")}
    env["NO_COLOR"] = "1"
    args = [exe, "run", path, "--output-format", "json"]
    t0 = time.time()
    p = subprocess.run(args, capture_output=True, env=env, timeout=300)
    seconds = time.time() - t0
    stderr = p.stderr.decode("utf-8", errors="replace")
    if p.returncode != 0:
        return None, seconds, "%s: exit %d\n%s" % (" ".join(args), p.returncode, stderr[-4000:])
    try:
        got = json.loads(p.stdout.decode("utf-8"))
    except ValueError as e:
        return None, seconds, "%s: stdout is not JSON (%s): %r" % (" ".join(args), e, p.stdout[:400])
    if not isinstance(got, list):
        return None, seconds, "stdout JSON is not an array"
    return got, seconds, None


def compare(want, got, check_prompt_log_probs, tol=LOG_PROB_TOL):
    """Errors (strings) and the worst |log prob difference| of one case."""
    errors, worst = [], 0.0
    if len(got) != len(want):
        return ["%d results for %d prompts" % (len(got), len(want))], worst
    for i, (w, g) in enumerate(zip(want, got)):
        where = "request %d (%r)" % (i, w["input_prompt"][:24])
        if "id" not in g and "request_id" in g:
            errors.append(where + ": output has the old field names (request_id, prompt, ...)")
            continue
        if g.get("id") != w["id"]:
            errors.append(where + ": id %r (results must be in request order)" % g.get("id"))
        if g.get("input_prompt") != w["input_prompt"]:
            errors.append(where + ": input_prompt %r" % g.get("input_prompt"))
        if g.get("error") or g.get("finish_reason") == "error":
            errors.append(where + ": failed: %s" % g.get("error"))
            continue
        if g.get("generated_tokens") != w["generated_tokens"]:
            errors.append(where + ": generated_tokens %s, reference %s"
                          % (g.get("generated_tokens"), w["generated_tokens"]))
        if g.get("finish_reason") != w["finish_reason"]:
            errors.append(where + ": finish_reason %r, reference %r"
                          % (g.get("finish_reason"), w["finish_reason"]))
        if g.get("generated_text") != w["generated_text"]:
            errors.append(where + ": generated_text %r, reference %r"
                          % (g.get("generated_text"), w["generated_text"]))
        keys = ["generated_log_probs"] + (["prompt_log_probs"] if check_prompt_log_probs else [])
        for key in keys:
            a, b = g.get(key), w[key]
            if not isinstance(a, list) or len(a) != len(b):
                errors.append(where + ": %s has %s values, reference %d"
                              % (key, len(a) if isinstance(a, list) else repr(a), len(b)))
                continue
            for j, (x, y) in enumerate(zip(a, b)):
                d = abs(x - y) if isinstance(x, (int, float)) else float("inf")
                worst = max(worst, d)
                if not d <= tol:
                    errors.append(where + ": %s[%d] = %r, reference %r" % (key, j, x, y))
                    break
    return errors, worst


def same_output(a, b):
    """mcrt outputs of two runs of the same prompts: identical tokens, text and finish
    reasons; returns (errors, worst log prob difference)."""
    errors, worst = [], 0.0
    for i, (x, y) in enumerate(zip(a, b)):
        for key in ("generated_tokens", "generated_text", "finish_reason"):
            if x.get(key) != y.get(key):
                errors.append("request %d: %s %r vs %r" % (i, key, x.get(key), y.get(key)))
        for key in ("prompt_log_probs", "generated_log_probs"):
            for p, q in zip(x.get(key) or [], y.get(key) or []):
                worst = max(worst, abs(p - q))
    if len(a) != len(b):
        errors.append("%d vs %d results" % (len(a), len(b)))
    return errors, worst


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

def describe(case, want):
    """What --reference-only prints: the case and every expected row."""
    lines = []
    for w in want:
        toks = w["generated_tokens"]
        shown = " ".join(str(t) for t in toks[:10]) + (" ..." if len(toks) > 10 else "")
        lines.append("    %d %-28r -> %2d tok [%s] %-6s text %r, log probs %d prompt + %d generated"
                     % (w["id"], w["input_prompt"][:26], len(toks), shown, w["finish_reason"],
                        w["generated_text"][:16], len(w["prompt_log_probs"]),
                        len(w["generated_log_probs"])))
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", required=True, help="the meson build dir")
    ap.add_argument("--fixtures", help="reference fixtures (default BUILD/tests/reference/gpt)")
    ap.add_argument("-k", dest="filter", help="only cases whose name contains this")
    ap.add_argument("--reference-only", action="store_true",
                    help="run only the reference and print what would be compared")
    ap.add_argument("--dump", help="write each case's YAML and expected JSON into this folder")
    ap.add_argument("--pipeline", choices=sorted(PIPELINES), default="megatron")
    a = ap.parse_args(argv)

    build = os.path.abspath(a.build)
    fixtures = os.path.abspath(a.fixtures or os.path.join(build, "tests", "reference", "gpt"))
    cases = [c for c in CASES if not a.filter or a.filter in c["name"]]
    if not cases:
        ap.error("no case matches -k %r" % a.filter)

    try:
        import torch
    except ImportError:
        skip("python3-torch is not installed (the reference needs it)")
    torch.set_num_threads(1)
    missing = sorted({c["fixture"] for c in cases if not os.path.isfile(
        os.path.join(fixtures, c["fixture"], "model.safetensors"))})
    if missing:
        skip("reference fixtures missing in %s (%s); `meson test --suite reference` makes them"
             % (fixtures, ", ".join(missing)))

    exe = os.path.join(build, "mcrt")
    toy_dir = os.path.join(build, "tests", "plugins", "toy")
    plugin_dirs = [toy_dir]
    needed = [(os.path.join(toy_dir, "mcrt-tokenizer-bytes.so"), "tokenizer bytes")]
    for kind, name, folder in PIPELINES[a.pipeline]:
        d = os.path.join(build, "plugins", folder) if folder else toy_dir
        needed.append((os.path.join(d, "mcrt-%s-%s.so" % (kind, name)), "%s %s" % (kind, name)))
        if d not in plugin_dirs:
            plugin_dirs.append(d)
    if not a.reference_only:
        absent = [what for path, what in needed if not os.path.isfile(path)]
        if not os.access(exe, os.X_OK):
            absent.insert(0, "the mcrt program")
        if absent:
            skip("not built yet: %s (in %s)" % (", ".join(absent), build))

    import megatron_static as ms
    check_prompt_lp = a.pipeline == "megatron"
    ref = Reference(fixtures, None if a.pipeline == "megatron" else ms.BytesTokenizer.vocab_size)
    failures = []
    outputs = {}
    if a.dump:
        os.makedirs(a.dump, exist_ok=True)
    t_start = time.time()
    with tempfile.TemporaryDirectory(prefix="mcrt-generate-") as work:
        for case in cases:
            name = case["name"]
            want, ref_s, problems = ref.run(case)
            section = ms.fixture_model_section(os.path.join(fixtures, case["fixture"]))
            text = case_yaml(case, section, plugin_dirs, a.pipeline)
            if a.dump:
                with open(os.path.join(a.dump, name + ".yaml"), "w", encoding="utf-8") as f:
                    f.write(text)
                path = os.path.join(a.dump, name + ".expected.json")
                with open(path, "w", encoding="utf-8") as f:
                    json.dump(want, f, ensure_ascii=False, indent=1)
            n_eod = sum(w["finish_reason"] == "eod" for w in want)
            head = "%-28s B=%d N=%-2d %d prompts, %d eod" % (
                name, case["B"], case["N"], len(want), n_eod)
            if problems:
                failures.append((name, ["case: " + p for p in problems]))
            if a.reference_only:
                print("%s %s | reference %.2f s" % ("ref " if not problems else "BAD ", head, ref_s))
                for line in describe(case, want):
                    print(line)
                compared = "generated_tokens, finish_reason, generated_text, " + (
                    "prompt_log_probs and generated_log_probs" if check_prompt_lp else
                    "generated_log_probs") + " (|d| <= %g)" % LOG_PROB_TOL
                if case.get("same_as"):
                    compared += "; identical to case %s" % case["same_as"]
                print("    would compare: " + compared)
                continue
            got, mcrt_s, err = run_mcrt(exe, text, work, name)
            if err:
                failures.append((name, [err]))
                print("FAIL %s | mcrt: %s" % (head, err.splitlines()[0]))
                continue
            errors, worst = compare(want, got, check_prompt_lp)
            outputs[name] = got
            extra = ""
            other = case.get("same_as")
            if other and other in outputs:
                e2, d2 = same_output(outputs[other], got)
                errors += ["vs %s: %s" % (other, e) for e in e2]
                extra = ", vs %s max |d| %.1e" % (other, d2)
            elif other:
                extra = ", (%s not run)" % other
            if errors:
                failures.append((name, errors))
            print("%s %s | worst |d log p| %.2e%s | reference %.2f s, mcrt %.2f s"
                  % ("FAIL" if errors else "ok  ", head, worst, extra, ref_s, mcrt_s))
    for name, errors in failures:
        print("--- %s" % name)
        for e in errors[:12]:
            print("  " + e)
        if len(errors) > 12:
            print("  ... %d more" % (len(errors) - 12))
    print("generate: %d case(s), %d failed, %.1f s%s" % (
        len(cases), len(failures), time.time() - t_start,
        " (reference only)" if a.reference_only else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
