#!/usr/bin/python3
"""`mcrt tokenize` against the independent JavaScript reference, id for id.

Every string of corpus.jsonl (prose, code, numbers, whitespace runs,
contractions in both cases, accents, combining marks, CJK, emoji and ZWJ
sequences, right-to-left scripts, control characters, long words,
<|endoftext|> in text, random Unicode) is tokenized by the real program and by
the npm package gpt-3-encoder@1.1.4 run with node (js_reference.js), and the
ids must be equal.

Where gpt-3-encoder departs from GPT-2's encoder.py (see js_reference.js: its
\\s is not Unicode White_Space, its merge-rank keys can collide), mcrt follows
encoder.py, as Megatron does. Such a string must then equal the reference with
exactly those departures undone, and the test lists it; any other difference
fails.

Usage: test_reference.py MCRT DRIVER PLUGIN_DIR MODELS_DIR JS_DIR
Exit 77 (skip) when node or the npm package (npm ci in JS_DIR) is missing.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tkcommon  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    mcrt, driver, plugin_dir, models, js_dir = sys.argv[1:6]
    node = shutil.which("node")
    pkg = os.path.join(js_dir, "node_modules", "gpt-3-encoder")
    if node is None:
        tkcommon.skip("node is not installed (apt-get install nodejs)")
    if not os.path.isfile(os.path.join(pkg, "Encoder.js")):
        tkcommon.skip("the npm package gpt-3-encoder is not installed (cd %s && npm ci)" % js_dir)

    corpus = tkcommon.read_corpus(os.path.join(HERE, "corpus.jsonl"))
    assert len(corpus) >= 2000, "the corpus has only %d strings" % len(corpus)

    # The reference, run through /bin/sh so that valgrind (which skips sh)
    # does not trace node when the suite runs under `--setup valgrind`.
    t0 = time.monotonic()
    with tempfile.TemporaryFile() as inp:
        inp.write(("\n".join(json.dumps({"text": c["text"]}) for c in corpus) + "\n").encode())
        inp.seek(0)
        p = subprocess.run(["/bin/sh", "-c", 'exec "$0" "$@"', node,
                            os.path.join(HERE, "js_reference.js"), pkg],
                           stdin=inp, capture_output=True, timeout=900)
    if p.returncode != 0:
        raise AssertionError("js_reference.js failed (%d):\n%s" % (p.returncode, p.stderr.decode()))
    ref = [json.loads(line) for line in p.stdout.decode().splitlines()]
    assert len(ref) == len(corpus), "the reference gave %d results" % len(ref)
    t1 = time.monotonic()

    tool = tkcommon.Tool(mcrt, driver, plugin_dir, os.path.join(models, "vocab.json"),
                         os.path.join(models, "merges.txt"))
    ours = tool.tokenize_many([c["text"] for c in corpus])
    t2 = time.monotonic()

    failures, departures, per_cat = [], [], {}
    for c, r, got in zip(corpus, ref, ours):
        cat = c["cat"]
        per_cat[cat] = per_cat.get(cat, 0) + 1
        if got == r["js"]:
            continue
        if got == r["py"] and r["py"] != r["js"]:
            departures.append((c, r, got))
            continue
        failures.append((c, r, got))

    print("%d strings via %s; reference %.1f s, mcrt %.1f s" % (len(corpus), tool.how, t1 - t0,
                                                               t2 - t1))
    print("categories: " + ", ".join("%s %d" % kv for kv in sorted(per_cat.items())))
    print("%d equal to gpt-3-encoder id for id; %d follow encoder.py where gpt-3-encoder departs "
          "from it:" % (len(corpus) - len(failures) - len(departures), len(departures)))
    for c, r, got in departures:
        ws = [ch for ch in c["text"] if ch in "\u0085\ufeff"]
        why = "JavaScript's \\s (%s)" % ", ".join("U+%04X" % ord(ch) for ch in sorted(set(ws))) \
            if ws else "pair-key collision"
        print("  %-14s %r: gpt-3-encoder %s, encoder.py and mcrt %s  [%s]"
              % (c["cat"], c["text"][:40], r["js"][:12], got[:12], why))
    for c, r, got in failures[:20]:
        k = next((i for i, (a, b) in enumerate(zip(got, r["js"])) if a != b),
                 min(len(got), len(r["js"])))
        print("FAIL %-12s %r\n  mcrt %s\n  ref  %s\n  first difference at index %d"
              % (c["cat"], c["text"][:80], got[max(0, k - 3):k + 8], r["js"][max(0, k - 3):k + 8], k))
    if failures:
        print("%d of %d strings differ from the reference" % (len(failures), len(corpus)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
