#!/usr/bin/python3
"""End to end: `mcrt run` over the toy pipeline against the independent Python
transcription in tools/reference/toy_counter.py.

Each scenario runs the real program (engine fifo, controller toy, model
counter, sampler greedy, tokenizer bytes) with JSON output and checks every
request's status, generated ids, text, finish reason and (when asked) log
probs against the reference. The scenarios vary what the core is responsible
for: batch sizes (static batches in FIFO order), KV block sizes (block tables
across several non-contiguous blocks), the rank layout (tp x pp rank threads,
stage-to-stage activations), and failures of one request among others.

Usage: toy_pipeline.py MCRT_EXE TOY_PLUGIN_DIR
"""
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools", "reference"))
import toy_counter  # noqa: E402

# Every kind named: shipped plugins in the build tree must not win "auto".
TOY_NAMES = ("engine:\n  name: fifo\ncontroller:\n  name: toy\nsampler:\n  name: greedy\n"
             "tokenizer:\n  name: bytes\n")

PROMPTS = ["Hello", "w\u00f6rld \u4e16\u754c", "a", "The quick brown fox jumps over the lazy dog",
           "\U0001F600 emoji", "x" * 37]


def run(exe, toy_dir, prompts, n, extra=(), model=None, expect_rc=0):
    model = model or {}
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "toy.yaml")
        with open(cfg, "w") as f:
            f.write("runtime:\n  plugin_dirs: [%s]\n" % json.dumps(toy_dir))
            f.write(TOY_NAMES)
            f.write("model:\n  name: counter\n")
            for k, v in model.items():
                f.write("  %s: %s\n" % (k, v))
        pf = os.path.join(d, "prompts.txt")
        with open(pf, "w", encoding="utf-8") as f:
            f.write("\n".join(prompts) + "\n")
        args = [exe, "run", cfg, "--prompt-file", pf, "-n", str(n), "--output-format", "json",
                "-q"] + list(extra)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MCRT_")}
        env["NO_COLOR"] = "1"
        p = subprocess.run(args, capture_output=True, env=env, timeout=120)
        if p.returncode != expect_rc:
            raise AssertionError("%s: exit %d, expected %d\nstderr:\n%s"
                                 % (" ".join(args), p.returncode, expect_rc, p.stderr.decode()))
        return json.loads(p.stdout.decode("utf-8"))


def check(name, results, prompts, n, logprobs=False, **ref_kw):
    assert len(results) == len(prompts), "%s: %d results for %d prompts" % (
        name, len(results), len(prompts))
    for i, (r, prompt) in enumerate(zip(results, prompts)):
        want = toy_counter.generate(prompt.encode("utf-8"), n, **ref_kw)
        where = "%s, request %d (%r)" % (name, i, prompt[:20])
        assert r["id"] == i, where + ": results out of order"
        assert r["input_prompt"] == prompt, where + ": prompt"
        if want["error"] is not None:
            assert r["status"] == "FAILED", where + ": should fail: " + want["error"]
            assert r.get("error"), where + ": no error message"
            continue
        assert r["status"] == "COMPLETED", where + ": " + str(r.get("error"))
        assert r["prompt_tokens"] == want["prompt_tokens"], where + ": prompt tokens"
        assert r["generated_tokens"] == want["tokens"], "%s: tokens %s, want %s" % (
            where, r["generated_tokens"], want["tokens"])
        assert r["generated_text"] == want["text"], where + ": text"
        assert r["finish_reason"] == want["finish_reason"], where + ": finish " + r["finish_reason"]
        if logprobs:
            got = r["generated_log_probs"]
            assert len(got) == len(want["logprobs"]), where + ": log probs length"
            for a, b in zip(got, want["logprobs"]):
                # fp32 log-softmax of values <= 11 over 257 ids: ~1e-6 absolute
                assert abs(a - b) <= 1e-5, "%s: log prob %r vs %r" % (where, a, b)
    print("ok  %-40s %d requests" % (name, len(results)))


def check_stream(exe, toy, prompts, n):
    """--stream prints, in request order, each prompt and the raw bytes of its
    tokens as they are generated; byte for byte what the reference predicts."""
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "toy.yaml")
        with open(cfg, "w") as f:
            f.write("runtime:\n  plugin_dirs: [%s]\n" % json.dumps(toy))
            f.write(TOY_NAMES.replace("  name: fifo\n", "  name: fifo\n  max_batch_size: 2\n"))
            f.write("model:\n  name: counter\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MCRT_")}
        p = subprocess.run([exe, "run", cfg, "--stream", "-n", str(n), "-q", "--prompts"] + prompts,
                           capture_output=True, env=env, timeout=120)
        assert p.returncode == 0, p.stderr.decode()
    want = b""
    for i, prompt in enumerate(prompts):
        ref = toy_counter.generate(prompt.encode("utf-8"), n)
        want += b"--- request %d ---\n" % i + prompt.encode("utf-8") + bytes.fromhex(ref["text_hex"]) + b"\n"
    assert p.stdout == want, "streamed output differs:\n%r\n%r" % (p.stdout[:200], want[:200])
    print("ok  %-40s %d requests" % ("stream", len(prompts)))


def main():
    exe, toy = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    n = 24
    check("default batch", run(exe, toy, PROMPTS, n), PROMPTS, n)
    for bs in (1, 2, 8):
        check("max_batch_size %d" % bs,
              run(exe, toy, PROMPTS, n, ["--max-batch-size", str(bs)]), PROMPTS, n)
    for kvb in (1, 3, 16):
        check("kv_block_size %d" % kvb,
              run(exe, toy, PROMPTS, n, model={"kv_block_size": kvb, "kv_num_blocks": 4096}),
              PROMPTS, n)
    for tp, pp in ((2, 1), (1, 2), (2, 3), (4, 1)):
        check("ranks tp %d x pp %d" % (tp, pp),
              run(exe, toy, PROMPTS, n, ["-tp", str(tp), "-pp", str(pp)]), PROMPTS, n)
    check("log probs", run(exe, toy, PROMPTS, n, ["--return-log-probs"]), PROMPTS, n,
          logprobs=True)
    check("eod stop", run(exe, toy, PROMPTS, n, model={"eod_at_length": 12}), PROMPTS, n,
          eod_at_length=12)
    check("ignore eos", run(exe, toy, PROMPTS, n, ["--ignore-eos"], model={"eod_at_length": 12}),
          PROMPTS, n, eod_at_length=12, ignore_eos=True)
    # One request too long for the model fails alone; the others complete (exit 65).
    check("one request fails alone",
          run(exe, toy, PROMPTS, n, model={"max_sequence_length": 48}, expect_rc=65),
          PROMPTS, n, max_sequence_length=48)
    check("zero tokens", run(exe, toy, PROMPTS, 0), PROMPTS, 0)
    check_stream(exe, toy, PROMPTS, n)
    print("toy pipeline: all scenarios match the reference")


if __name__ == "__main__":
    main()
