#!/usr/bin/env python3
"""Independent reference for the toy pipeline (tests/plugins/toy/README.md).

A transcription, in plain Python (stdlib only), of what `mcrt run` must print
with the test-only plugins tokenizer `bytes`, model `counter`, sampler
`greedy`, controller `toy` (any engine): for each prompt, the generated
tokens, their text and the finish reason. It shares no code with the C
plugins; the e2e tests compare the two.

The rules:
  tokenizer bytes   ids 0..255 are bytes, 256 is <|endoftext|> (eod);
                    text = bytes.decode('utf-8', errors='replace').
  model counter     the logits row at position p of a sequence s[0..p]:
                      next = (sum(s[0..p]) + p) % 256
                      real ids 0.0, logits[(next+1) % 256] = 9.0, logits[next] = 10.0,
                      and when eod_at_length > 0 and p + 1 >= eod_at_length:
                      logits[vocab_size - 1] = 11.0; padding ids -1e4.
  sampler greedy    argmax over the real ids (lowest on ties); log prob =
                    log_softmax over the real ids of the raw logits.
  controller toy    the prompt fails when it is empty or when
                    len(prompt) + N > max_sequence_length; otherwise tokens are
                    generated until N of them, or until eod is sampled (not
                    output) unless --ignore-eos. N == 0 completes at once.

Usage:
  toy_counter.py [-n N] [--max-sequence-length L] [--eod-at-length E]
                 [--vocab-size V] [--ignore-eos] [--format json|text|hex]
                 PROMPT...                 (prompts as UTF-8 text)
  toy_counter.py --prompt-hex 48656c6c6f ...   (prompts as hex bytes)
  toy_counter.py --self-test

--format json (default): one JSON object per prompt and line:
  {"prompt_hex", "prompt_tokens", "tokens", "text", "text_hex", "logprobs",
   "finish_reason": "length"|"eod"|"error", "error"}
  where text is the UTF-8-repaired text of the generated tokens.
--format text: the repaired text of each prompt's generation, one per line
  (a failed prompt prints an empty line).
--format hex: the raw bytes of each generation (token bytes concatenated,
  not repaired), in hex, one per line.
"""

import argparse
import json
import math
import sys

EOD = 256
EOD_TEXT = b"<|endoftext|>"


def token_bytes(tok):
    """The bytes tokenizer's raw bytes for one id (ValueError outside [0, 257))."""
    if 0 <= tok < 256:
        return bytes([tok])
    if tok == EOD:
        return EOD_TEXT
    raise ValueError("token id %d is outside the vocabulary [0, 257)" % tok)


def counter_logits(seq, vocab_size, eod_at_length):
    """The counter model's logits over the real ids for the last position of seq."""
    p = len(seq) - 1
    nxt = (sum(seq) + p) % 256
    row = [0.0] * vocab_size
    row[(nxt + 1) % 256] = 9.0
    row[nxt] = 10.0
    if eod_at_length > 0 and p + 1 >= eod_at_length:
        row[vocab_size - 1] = 11.0
    return row


def greedy(row):
    """(argmax with the lowest id on ties, its log_softmax)."""
    best = max(range(len(row)), key=lambda j: (row[j], -j))
    m = row[best]
    z = sum(math.exp(x - m) for x in row)
    return best, -math.log(z)


def generate(prompt, n, max_sequence_length=1024, eod_at_length=0, vocab_size=257,
             ignore_eos=False):
    """What the toy pipeline produces for one prompt (bytes)."""
    seq = list(prompt)
    out = {
        "prompt_hex": prompt.hex(),
        "prompt_tokens": list(seq),
        "tokens": [],
        "logprobs": [],
        "finish_reason": "length",
        "error": None,
    }
    if not seq:
        out["finish_reason"], out["error"] = "error", "empty prompt"
    elif len(seq) + n > max_sequence_length:
        out["finish_reason"] = "error"
        out["error"] = ("prompt (%d tokens) + num_tokens_to_generate (%d) exceeds the "
                        "model's max_sequence_length %d" % (len(seq), n, max_sequence_length))
    else:
        while len(out["tokens"]) < n:
            tok, lp = greedy(counter_logits(seq, vocab_size, eod_at_length))
            if tok == EOD and not ignore_eos:
                out["finish_reason"] = "eod"
                break
            try:
                token_bytes(tok)
            except ValueError as e:
                out["finish_reason"], out["error"] = "error", "no text for sampled token: %s" % e
                break
            seq.append(tok)
            out["tokens"].append(tok)
            out["logprobs"].append(lp)
    raw = b"".join(token_bytes(t) for t in out["tokens"])
    out["text_hex"] = raw.hex()
    out["text"] = raw.decode("utf-8", errors="replace")
    return out


def self_test():
    # The README's worked example: "Hi" = [72, 105], sum 177.
    r = generate(b"Hi", 4)
    assert r["tokens"] == [177, 98, 196, 136], r["tokens"]
    assert r["finish_reason"] == "length"
    assert abs(r["logprobs"][0] - -math.log(1 + math.exp(-1) + 255 * math.exp(-10))) < 1e-12
    # eod_at_length: "abc" stops after 6 tokens (a sequence of 9), eod not output.
    r = generate(b"abc", 10, eod_at_length=9)
    assert len(r["tokens"]) == 6 and r["finish_reason"] == "eod", r
    r = generate(b"abc", 10, eod_at_length=9, ignore_eos=True)
    assert len(r["tokens"]) == 10 and r["tokens"][6:] == [EOD] * 4, r
    assert r["text"].endswith("<|endoftext|>" * 4)
    assert generate(b"", 3)["finish_reason"] == "error"
    assert generate(b"x" * 10, 5, max_sequence_length=14)["finish_reason"] == "error"
    assert generate(b"x" * 10, 4, max_sequence_length=14)["finish_reason"] == "length"
    assert generate(b"x", 0)["tokens"] == []
    # Repair: maximal subparts, like the bytes tokenizer's decode.
    assert b"\xed\xa0\x80".decode("utf-8", errors="replace") == "\ufffd" * 3
    print("toy_counter.py self-test: ok")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("prompts", nargs="*", help="prompts (UTF-8 text)")
    ap.add_argument("--prompt-hex", action="append", default=[],
                    help="a prompt given as hex bytes (repeatable; after the text ones)")
    ap.add_argument("-n", "--num-tokens", type=int, default=16,
                    help="num_tokens_to_generate (default 16)")
    ap.add_argument("--max-sequence-length", type=int, default=1024)
    ap.add_argument("--eod-at-length", type=int, default=0)
    ap.add_argument("--vocab-size", type=int, default=257)
    ap.add_argument("--ignore-eos", action="store_true")
    ap.add_argument("--format", choices=["json", "text", "hex"], default="json")
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args(argv)
    if a.self_test:
        self_test()
        return 0
    if a.vocab_size < 256:
        ap.error("--vocab-size must be at least 256")
    prompts = [p.encode("utf-8", errors="surrogateescape") for p in a.prompts]
    prompts += [bytes.fromhex(h) for h in a.prompt_hex]
    if not prompts:
        ap.error("no prompt given")
    for p in prompts:
        r = generate(p, a.num_tokens, a.max_sequence_length, a.eod_at_length, a.vocab_size,
                     a.ignore_eos)
        if a.format == "json":
            print(json.dumps(r, ensure_ascii=False))
        elif a.format == "text":
            sys.stdout.buffer.write(r["text"].encode("utf-8") + b"\n")
        else:
            print(r["text_hex"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
