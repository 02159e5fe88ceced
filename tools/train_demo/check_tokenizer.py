#!/usr/bin/python3
"""Check that mcrt's `gpt2-bpe` tokenizer encodes text exactly as tools/train_demo/bpe.py does,
with a given vocab.json + merges.txt.

    /usr/bin/python3 tools/train_demo/check_tokenizer.py [--mcrt build/mcrt] \\
        [--vocab models/demo/vocab.json --merges models/demo/merges.txt] FILE...

Each FILE is encoded whole, once by `mcrt tokenize -f FILE` and once by bpe.BPETokenizer, and
the id lists must be equal (the first difference is printed otherwise); the decoded ids must
also give the file back. For the demo model, run it on the held-out and training text that
train_demo.py leaves in its work folder (heldout.u16.txt, train.u16.txt). Exit 0 when all agree.
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)

import bpe  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mcrt", default=os.path.join(REPO, "build", "mcrt"))
    ap.add_argument("--vocab", default=os.path.join(REPO, "models", "demo", "vocab.json"))
    ap.add_argument("--merges", default=os.path.join(REPO, "models", "demo", "merges.txt"))
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    tokenizer = bpe.BPETokenizer.from_files(args.vocab, args.merges)
    failed = 0
    for path in args.files:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        out = subprocess.run([args.mcrt, "tokenize", "--vocab-file", args.vocab,
                              "--merge-file", args.merges, "-f", path],
                             check=True, capture_output=True, text=True).stdout
        theirs = json.loads(out)
        ours = tokenizer.encode(text)
        if ours != theirs:
            at = next((i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b),
                      min(len(ours), len(theirs)))
            print("%s: DIFFER at token %d (python %s, mcrt %s), near %r" % (
                path, at, ours[at:at + 5], theirs[at:at + 5], tokenizer.decode(ours[max(0, at - 5):at + 5])))
            failed += 1
        elif tokenizer.decode(ours) != text:
            print("%s: ids agree but do not decode back to the text" % path)
            failed += 1
        else:
            print("%s: %d bytes, %d tokens, identical" % (path, len(text.encode("utf-8")), len(ours)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
