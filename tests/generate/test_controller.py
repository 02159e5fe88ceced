#!/usr/bin/python3
"""controller-simple's stop conditions and extra outputs, against tools/reference/toy_counter.py.

    test_controller.py BUILD_DIR REPO

The shipped engine (static), controller (simple) and sampler (default, temperature 0 = greedy)
drive the test-only counter model and bytes tokenizer, whose greedy output toy_counter.py
computes independently (one byte per token, so a two-character stop string spans two tokens).
Requests come from a JSONL prompt file, each with its own parameters. Checked per request:
tokens, text, finish reason and log probs against the reference, for: plain greedy; compat
megatron; a stop string spanning two tokens (text cut before it, the tokens that made it kept);
a stop token id (excluded); EOD (excluded) and ignore_eos; top_n_logprobs (the counter's top
two are its 10.0 and 9.0 logits); return_segments (each token's bytes); and a batch holding all
of them at once equal to each alone.
"""
import json
import math
import os
import subprocess
import sys
import tempfile


def main():
    build, repo = sys.argv[1], sys.argv[2]
    sys.path.insert(0, os.path.join(repo, "tools", "reference"))
    import toy_counter as tc

    plugins = [os.path.join(build, "plugins", p) for p in
               ("engine-static", "controller-simple", "sampler-default")]
    toy = os.path.join(build, "tests", "plugins", "toy")
    for d in plugins + [toy]:
        if not os.path.isdir(d):
            print("SKIP: %s is not built" % d)
            return 77
    mcrt = os.path.join(build, "mcrt")
    EOD_AT = 40

    # a prompt whose greedy continuation has two printable ASCII bytes in a row (the stop
    # string), and a later token to use as a stop id
    for seed in range(1, 400):
        prompt = ("p%d " % seed).encode()
        ref = tc.generate(prompt, 12, eod_at_length=EOD_AT)
        toks = ref["tokens"]
        hits = [i for i in range(1, len(toks))
                if 33 <= toks[i - 1] < 127 and 33 <= toks[i] < 127 and chr(toks[i - 1]) != '"'
                and chr(toks[i]) not in '"\\' and chr(toks[i - 1]) != '\\']
        if hits and hits[0] >= 2:
            break
    else:
        raise SystemExit("no prompt with an ASCII pair in its continuation")
    k = hits[0]
    stop = chr(toks[k - 1]) + chr(toks[k])
    stop_id_at = 3
    stop_id = toks[stop_id_at]
    first = toks.index(stop_id)

    P = prompt.decode()
    cases = [
        ("greedy", {"prompt": P, "num_tokens_to_generate": 12, "return_log_probs": True},
         dict(tokens=toks, reason="length")),
        ("megatron", {"prompt": P, "num_tokens_to_generate": 12, "compat": "megatron",
                      "top_k": 1, "return_log_probs": True},
         dict(tokens=toks, reason="length")),
        ("stop string", {"prompt": P, "num_tokens_to_generate": 12, "stop": ["zzz", stop]},
         dict(tokens=toks[:k + 1], reason="stop", text=bytes(toks[:k - 1]))),
        ("stop token id", {"prompt": P, "num_tokens_to_generate": 12, "stop_token_ids": [stop_id]},
         dict(tokens=toks[:first], reason="stop")),
        ("eod", {"prompt": "abc", "num_tokens_to_generate": EOD_AT},
         dict(tokens=tc.generate(b"abc", EOD_AT, eod_at_length=EOD_AT)["tokens"], reason="eod")),
        ("ignore_eos", {"prompt": "abc", "num_tokens_to_generate": EOD_AT, "ignore_eos": True},
         dict(tokens=tc.generate(b"abc", EOD_AT, eod_at_length=EOD_AT, ignore_eos=True)["tokens"],
              reason="length")),
        ("top_n_logprobs", {"prompt": P, "num_tokens_to_generate": 6, "top_n_logprobs": 2,
                            "return_log_probs": True},
         dict(tokens=toks[:6], reason="length")),
        ("segments", {"prompt": P, "num_tokens_to_generate": 6, "return_segments": True},
         dict(tokens=toks[:6], reason="length")),
        # seeded sampling: no reference for the random stream, but the same tokens batched
        # and alone (checked for every case below), and a different seed changes them
        ("seeded", {"prompt": P, "num_tokens_to_generate": 12, "temperature": 5.0, "seed": 42},
         None),
        ("seeded again", {"prompt": P, "num_tokens_to_generate": 12, "temperature": 5.0,
                          "seed": 43}, None),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        cfg = os.path.join(tmp, "c.yaml")
        with open(cfg, "w") as f:
            f.write("runtime:\n  plugin_dirs: [%s]\n" % ", ".join('"%s"' % d for d in plugins + [toy]))
            f.write("engine:\n  name: static\n  max_batch_size: %d\ncontroller:\n  name: simple\n"
                    "sampler:\n  name: default\ntokenizer:\n  name: bytes\n"
                    "model:\n  name: counter\n  eod_at_length: %d\n"
                    "generation:\n  temperature: 0\n" % (len(cases), EOD_AT))

        def run(reqs, batch):
            pf = os.path.join(tmp, "p.jsonl")
            with open(pf, "w") as f:
                for r in reqs:
                    f.write(json.dumps(r) + "\n")
            proc = subprocess.run([mcrt, "run", cfg, "--prompt-file", pf, "--max-batch-size",
                                   str(batch), "--output-format", "json", "-q"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
            assert proc.returncode == 0, proc.stderr.decode()
            return json.loads(proc.stdout)

        together = run([c[1] for c in cases], len(cases))
        seeded = []
        for (name, req, want), got in zip(cases, together):
            alone = run([req], 1)[0]
            for key in ("generated_tokens", "generated_text", "finish_reason"):
                assert alone[key] == got[key], "%s: %s differs batched vs alone" % (name, key)
            if want is None:
                seeded.append(got["generated_tokens"])
                print("ok %-15s %2d tokens, batched = alone" % (name, len(got["generated_tokens"])))
                continue
            assert got["generated_tokens"] == want["tokens"], \
                "%s: tokens %r, expected %r" % (name, got["generated_tokens"], want["tokens"])
            assert got["finish_reason"] == want["reason"], (name, got["finish_reason"])
            text = want.get("text", b"".join(tc.token_bytes(t) for t in want["tokens"]))
            assert got["generated_text"] == text.decode("utf-8", "replace"), \
                "%s: text %r, expected %r" % (name, got["generated_text"], text)
            if req.get("return_log_probs"):
                # every greedy choice: log p = -log(1 + e^-1 + (V - 2) e^-10) unless eod logits
                seq = list(prompt)
                for t, lp in zip(got["generated_tokens"], got["generated_log_probs"]):
                    row = tc.counter_logits(seq, 257, EOD_AT)
                    tok, ref_lp = tc.greedy(row)
                    assert tok == t and abs(lp - ref_lp) < 1e-5, (name, t, lp, ref_lp)
                    seq.append(t)
                plp = got["prompt_log_probs"]
                assert len(plp) == len(prompt) - 1, (name, len(plp))
                for j in range(len(prompt) - 1):
                    row = tc.counter_logits(list(prompt[:j + 1]), 257, EOD_AT)
                    m = max(row)
                    lse = m + math.log(sum(math.exp(x - m) for x in row))
                    assert abs(plp[j] - (row[prompt[j + 1]] - lse)) < 1e-5, (name, j)
            if req.get("top_n_logprobs"):
                top = got["top_n_logprobs"]
                assert len(top) == len(got["generated_tokens"])
                for t, lp, alts in zip(got["generated_tokens"], got["generated_log_probs"], top):
                    assert len(alts) == 2 and alts[0]["token"] == t, (name, alts)
                    assert abs(alts[0]["logprob"] - lp) < 1e-6
                    assert abs(alts[1]["logprob"] - (lp - 1.0)) < 1e-5, (name, alts)
                    assert alts[1]["token"] == (t + 1) % 256, (name, alts)
            if req.get("return_segments"):
                segs = got["generated_segments"]
                assert segs == [tc.token_bytes(t).decode("utf-8", "replace")
                                for t in got["generated_tokens"]], (name, segs)
            print("ok %-15s %2d tokens, finish %s" % (name, len(got["generated_tokens"]),
                                                      got["finish_reason"]))
        assert len(seeded) == 2 and seeded[0] != seeded[1], "seeds 42 and 43 gave the same tokens"
        assert seeded[0] != toks, "temperature 5 sampled the greedy sequence"
    return 0


if __name__ == "__main__":
    sys.exit(main())
