#!/usr/bin/python3
"""`mcrt tokenize` / `mcrt detokenize` end to end: round trips, bad input,
and prompts of 10 MB without a space.

  round trips   detokenize(tokenize(s)) == s for every corpus string and for
                random valid UTF-8; for random bytes (invalid UTF-8, NUL...)
                the tokens' raw bytes give the input back exactly and decode
                gives Python's bytes.decode('utf-8', errors='replace');
  bad input     every row: the exit code (docs/cli.md) and what stderr must
                say; malformed vocab.json / merges.txt, missing files, unset
                keys, ids outside the vocabulary, bad escapes, the empty prompt;
  10 MB         (a) mixed text with every space removed, checked against the
                JavaScript reference (when node and gpt-3-encoder are there),
                (b) one 10 MB word of letters (a single BPE word): a correct
                round trip, in bounded time.
Under valgrind the 10 MB prompts shrink to 1 MB (memcheck is ~50x slower).

Usage: test_cli.py MCRT DRIVER PLUGIN_DIR MODELS_DIR JS_DIR
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tkcommon  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
UNDER_VALGRIND = "vgpreload" in os.environ.get("LD_PRELOAD", "")
BIG = (1 if UNDER_VALGRIND else 10) * 1000 * 1000
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL " + what)
    return cond


def byte_vocab(extra):
    """A vocab.json text: the 256 byte tokens in byte order, then `extra`."""
    syms, n = [], 0
    for b in range(256):
        if 0x21 <= b <= 0x7E or 0xA1 <= b <= 0xAC or b >= 0xAE:
            syms.append(chr(b))
        else:
            syms.append(chr(256 + n))
            n += 1
    members = ["%s: %d" % (json.dumps(s), i) for i, s in enumerate(syms)]
    return "{" + ", ".join(members + ([extra] if extra else [])) + "}"


def round_trips(tool, d, rng):
    corpus = [c["text"] for c in tkcommon.read_corpus(os.path.join(HERE, "corpus.jsonl"))]
    texts = corpus + ["".join(chr(rng.choice([rng.randint(0x20, 0x7E), rng.randint(0xA0, 0xD7FF),
                                              rng.randint(0xE000, 0xFFFD),
                                              rng.randint(0x10000, 0x10FFFF)]))
                              for _ in range(rng.randint(0, 60))) for _ in range(300)]
    ids = tool.tokenize_many(texts)
    path = os.path.join(d, "ids.txt")
    with open(path, "w") as f:
        f.write("".join(json.dumps(x) + "\n" for x in ids))
    p = tool.run("detokenize", ["-q", "-f", path])
    want = "".join(t + "\n" for t in texts).encode("utf-8")
    check(p.returncode == 0 and p.stdout == want,
          "valid UTF-8: detokenize(tokenize(s)) == s for %d strings (exit %d)"
          % (len(texts), p.returncode))
    if p.stdout != want:
        got = p.stdout.split(b"\n")
        for t, g in zip(texts, got):
            if t.encode() != g:
                print("  first difference: %r -> %r" % (t[:60], g[:60]))
                break

    blobs = []
    for _ in range(400):
        n = rng.randint(0, 80)
        kind = rng.random()
        if kind < 0.4:
            b = bytes(rng.randint(0, 255) for _ in range(n))
        elif kind < 0.7:
            b = bytes(rng.choice(b"ab \n\x00'\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xff\xed\xa0")
                      for _ in range(n))
        else:
            s = rng.choice(corpus).encode("utf-8")
            cut = rng.randint(0, len(s))
            b = s[:cut] + bytes([rng.randint(0x80, 0xFF)]) + s[cut:cut + n]
        blobs.append(b)
    ids = tool.tokenize_many(blobs)
    with open(path, "w") as f:
        f.write("".join(json.dumps(x) + "\n" for x in ids))
    p = tool.run("detokenize", ["-q", "-f", path])
    want = b"".join(b.decode("utf-8", errors="replace").encode("utf-8") + b"\n" for b in blobs)
    check(p.returncode == 0 and p.stdout == want,
          "any bytes: decode == Python's errors='replace' for %d byte strings" % len(blobs))
    p = tool.run("detokenize", ["-q", "--raw", "-f", path])
    ok = p.returncode == 0 and p.stdout == b"".join(blobs)
    at = 0
    for b, x in zip(blobs, ids):  # and per string, by length
        ok = ok and p.stdout[at:at + len(b)] == b
        at += len(b)
    check(ok, "any bytes: the tokens' raw bytes give every input back exactly")

    # A pipe, as in the docs.
    p1 = tool.run("tokenize", ["-q", "Hello world", "caf\u00e9 \U0001F600"])
    p2 = tool.run("detokenize", ["-q", "-f", "-"], stdin=p1.stdout)
    check(p2.returncode == 0 and p2.stdout == "Hello world\ncaf\u00e9 \U0001F600\n".encode(),
          "mcrt tokenize A B | mcrt detokenize -f - gives A and B")
    print("ok  round trips: %d strings, %d byte strings" % (len(texts), len(blobs)))


def bad_input(tool, d):
    v_ok = os.path.join(HERE, "..", "..", "models", "gpt2", "vocab.json")
    m_ok = os.path.join(HERE, "..", "..", "models", "gpt2", "merges.txt")

    def w(name, text):
        path = os.path.join(d, name)
        with open(path, "wb") as f:
            f.write(text.encode("utf-8") if isinstance(text, str) else text)
        return path

    merges = w("merges.txt", "#version: 0.2\na b\n")
    files = {
        "notjson": w("notjson.json", "this is not JSON"),
        "array": w("array.json", "[0, 1, 2]"),
        "dup": w("dup.json", byte_vocab('"ab": 256, "ab": 257')),
        "range": w("range.json", byte_vocab('"ab": 300')),
        "nonint": w("nonint.json", byte_vocab('"ab": 256.0')),
        "vocab": w("vocab.json", byte_vocab('"ab": 256')),
        "fields": w("fields.txt", "#version: 0.2\na b c\n"),
        "unknown": w("unknown.txt", "#version: 0.2\na b\nzz b\n"),
        "yaml": w("tok.yaml", "tokenizer:\n  vocab_file: vocab.json\n  merge_file: merges.txt\n"),
        "badyaml": w("bad.yaml", "tokenizer:\n  vocab_fil: vocab.json\n"),
        "sp": w("sp.yaml", "tokenizer:\n  tokenizer_type: SentencePieceTokenizer\n"),
    }
    F = files
    real = ["--plugin-dir", tool.plugin_dir, "--vocab-file", v_ok, "--merge-file", m_ok]

    def toy(v, m=merges):
        return ["--plugin-dir", tool.plugin_dir, "--vocab-file", v, "--merge-file", m]

    rows = [
        # name, sub, args, exit code, stderr substrings, stdout (exact, or None)
        ("no text", "tokenize", real, 64, ["nothing to tokenize"], None),
        ("unknown option", "tokenize", real + ["--frobnicate", "x"], 64, ["--frobnicate"], None),
        ("-f without a file", "tokenize", real + ["-f"], 64, ["-f"], None),
        ("-f missing file", "tokenize", real + ["-f", os.path.join(d, "nope.txt")], 66,
         ["nope.txt"], None),
        ("missing vocab.json", "tokenize", toy(os.path.join(d, "missing.json")) + ["x"], 66,
         ["missing.json", "No such file"], None),
        ("missing merges.txt", "tokenize", toy(F["vocab"], os.path.join(d, "gone.txt")) + ["x"],
         66, ["gone.txt"], None),
        ("vocab.json is not JSON", "tokenize", toy(F["notjson"]) + ["x"], 65,
         ["notjson.json:1:1", "not valid JSON"], None),
        ("vocab.json is not an object", "tokenize", toy(F["array"]) + ["x"], 65,
         ["got an array"], None),
        ("duplicate token", "tokenize", toy(F["dup"]) + ["x"], 65, ["duplicate token 'ab'"], None),
        ("id out of range", "tokenize", toy(F["range"]) + ["x"], 65,
         ["id 300 is out of range"], None),
        ("non-integer id", "tokenize", toy(F["nonint"]) + ["x"], 65,
         ["must be an integer, got 256.0"], None),
        ("merges: wrong field count", "tokenize", toy(F["vocab"], F["fields"]) + ["x"], 65,
         ["fields.txt:2", "expected 2 symbols"], None),
        ("merges: unknown symbol", "tokenize", toy(F["vocab"], F["unknown"]) + ["x"], 65,
         ["unknown.txt:3", "unknown symbol 'zz'"], None),
        ("vocab_file unset", "tokenize", ["--plugin-dir", tool.plugin_dir, "--merge-file", m_ok,
                                          "x"], 78, ["vocab_file is not set"], None),
        ("unknown key in the YAML", "tokenize", ["--plugin-dir", tool.plugin_dir, F["badyaml"],
                                                 "x"], 78, ["vocab_fil"], None),
        ("another tokenizer_type", "tokenize", ["--plugin-dir", tool.plugin_dir, F["sp"], "x"], 69,
         ["SentencePieceTokenizer"], None),
        ("a bad escape", "tokenize", real + ["-e", "a\\qb"], 64, ["\\q"], None),
        ("a surrogate escape", "tokenize", real + ["-e", "\\ud800"], 64, ["U+D800"], None),
        ("id outside the vocabulary", "detokenize", real + ["15496", "50257"], 65,
         ["token id 50257", "outside the vocabulary"], None),
        ("negative id", "detokenize", real + ["[-1]"], 65, ["token id -1"], None),
        ("huge id", "detokenize", real + ["99999999999"], 65, ["99999999999"], None),
        ("raw id outside", "detokenize", real + ["--raw", "50300"], 65, ["50300"], None),
        ("not an id", "detokenize", real + ["15496", "abc"], 64, ["'abc' is not a token id"], None),
        ("no ids", "detokenize", real, 64, ["nothing to decode"], None),
        ("the empty prompt", "tokenize", real + [""], 0, [], b"[]\n"),
        ("--ids", "tokenize", real + ["--ids", "Hello world"], 0, [], b"[15496, 995]\n"),
        ("--pieces", "tokenize", real + ["--pieces", "Hello world\n"], 0, [],
         b"  15496 -> 'Hello'\n    995 -> ' world'\n    198 -> '\\n'\n"),
        ("-e", "tokenize", real + ["-e", "\\x00\\t\\u00e9"], 0, [], b"[188, 197, 2634]\n"),
        ("a text after --", "tokenize", real + ["--", "--not-a-flag"], 0, [],
         b"[438, 1662, 12, 64, 12, 32109]\n"),
        ("a YAML config with relative paths", "tokenize",
         ["--plugin-dir", tool.plugin_dir, F["yaml"], "ab"], 0, [], b"[256]\n"),
        ("detokenize", "detokenize", real + ["[15496,", "995]"], 0, [], b"Hello world\n"),
        ("detokenize -n", "detokenize", real + ["-n", "15496"], 0, [], b"Hello"),
        ("help", "tokenize", ["--help"], 0, [], None),
    ]
    for name, sub, args, code, expect, out in rows:
        p = tool.run(sub, args, files=False, timeout=120)
        err = p.stderr.decode("utf-8", errors="replace")
        ok = check(p.returncode == code, "%s: exit %d, want %d (stderr: %s)"
                   % (name, p.returncode, code, err.strip()[:300]))
        for e in expect:
            ok = check(e in err, "%s: stderr lacks %r: %s" % (name, e, err.strip()[:300])) and ok
        if out is not None:
            ok = check(p.stdout == out, "%s: stdout %r, want %r" % (name, p.stdout[:200], out)) \
                and ok
        if ok:
            print("ok  %-36s exit %d" % (name, code))


def big_prompts(tool, d, rng, js_dir):
    """(a) mixed text without spaces against the reference; (b) one word."""
    corpus = [c["text"] for c in tkcommon.read_corpus(os.path.join(HERE, "corpus.jsonl"))]
    # Segments "Q" + text without any whitespace + ".": each starts with a
    # letter and ends with '.', so no piece crosses from one to the next and
    # the ids of the whole are the segments' ids one after the other.
    segs = []
    for t in corpus:
        s = "".join(ch for ch in t if not ch.isspace() and ch not in "\u0085\ufeff\u180e\u200b")
        if s:
            segs.append("Q" + s + ".")
    order, size = [], 0
    while size < BIG:
        k = rng.randrange(len(segs))
        order.append(k)
        size += len(segs[k].encode("utf-8"))
    text = "".join(segs[k] for k in order).encode("utf-8")
    path = os.path.join(d, "big.txt")
    with open(path, "wb") as f:
        f.write(text)
    t0 = time.monotonic()
    p = tool.run("tokenize", ["-q", "-f", path], timeout=900)
    dt = time.monotonic() - t0
    if not check(p.returncode == 0, "%.0f MB without spaces: exit %d: %s"
                 % (len(text) / 1e6, p.returncode, p.stderr.decode(errors="replace")[:300])):
        return
    got = json.loads(p.stdout)
    node = shutil.which("node")
    pkg = os.path.join(js_dir, "node_modules", "gpt-3-encoder")
    if node and os.path.isfile(os.path.join(pkg, "Encoder.js")):
        used = sorted(set(order))
        with tempfile.TemporaryFile() as inp:
            inp.write(("\n".join(json.dumps({"text": segs[k]}) for k in used) + "\n").encode())
            inp.seek(0)
            r = subprocess.run(["/bin/sh", "-c", 'exec "$0" "$@"', node,
                                os.path.join(HERE, "js_reference.js"), pkg],
                               stdin=inp, capture_output=True, timeout=900)
        check(r.returncode == 0, "js_reference.js: %s" % r.stderr.decode()[:300])
        ref = {k: json.loads(line)["js"] for k, line in zip(used, r.stdout.decode().splitlines())}
        want = [i for k in order for i in ref[k]]
        same = got == want
        check(same, "%.0f MB without spaces: ids differ from gpt-3-encoder's" % (len(text) / 1e6))
        if same:
            print("ok  %.1f MB without spaces (%d segments): %d ids equal gpt-3-encoder's; "
                  "tokenize took %.1f s" % (len(text) / 1e6, len(order), len(got), dt))
    else:
        print("note: node or gpt-3-encoder missing: the %.0f MB prompt is checked by round trip "
              "only" % (len(text) / 1e6))
    ids_path = os.path.join(d, "big.ids")
    with open(ids_path, "w") as f:
        f.write(json.dumps(got) + "\n")
    r = tool.run("detokenize", ["-q", "--raw", "-f", ids_path], timeout=900)
    check(r.returncode == 0 and r.stdout == text, "%.0f MB without spaces: raw round trip"
          % (len(text) / 1e6))

    # (b) one word: letters only, so the pre-tokenizer gives one piece of BIG bytes.
    word = bytes(rng.choice(b"etaoinshrdlucmfwypvbgk") for _ in range(BIG))
    with open(path, "wb") as f:
        f.write(word)
    t0 = time.monotonic()
    p = tool.run("tokenize", ["-q", "-f", path], timeout=900)
    dt = time.monotonic() - t0
    if not check(p.returncode == 0, "one %.0f MB word: exit %d: %s"
                 % (len(word) / 1e6, p.returncode, p.stderr.decode(errors="replace")[:300])):
        return
    limit = 900 if UNDER_VALGRIND else 60
    check(dt < limit, "one %.0f MB word: %.1f s, more than %d s" % (len(word) / 1e6, dt, limit))
    got = json.loads(p.stdout)
    with open(ids_path, "w") as f:
        f.write(json.dumps(got) + "\n")
    r = tool.run("detokenize", ["-q", "--raw", "-f", ids_path], timeout=900)
    if check(r.returncode == 0 and r.stdout == word, "one %.0f MB word: raw round trip"
             % (len(word) / 1e6)):
        print("ok  one %.1f MB word: %d ids, round trip exact, tokenize took %.1f s"
              % (len(word) / 1e6, len(got), dt))


def main():
    mcrt, driver, plugin_dir, models, js_dir = sys.argv[1:6]
    tool = tkcommon.Tool(mcrt, driver, plugin_dir, os.path.join(models, "vocab.json"),
                         os.path.join(models, "merges.txt"))
    print("running %s%s" % (tool.how, " under valgrind (1 MB prompts)" if UNDER_VALGRIND else ""))
    rng = random.Random(31337)
    with tempfile.TemporaryDirectory() as d:
        round_trips(tool, d, rng)
        bad_input(tool, d)
        big_prompts(tool, d, rng, js_dir)
    if failures:
        print("%d failures" % len(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
