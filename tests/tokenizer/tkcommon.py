"""Shared helpers of the tokenizer tests: find the program that runs
`mcrt tokenize`, run it on many texts at once, escape texts for its -e option.

The program: the mcrt executable when it has the tokenize subcommand, else
tokenize_driver (tests/tokenizer/tokenize_driver.c: cmd_tokenize alone).
"""
import json
import os
import subprocess
import sys

# Command lines are kept well under the kernel's limits (MAX_ARG_STRLEN is
# 128 KiB per argument; the whole argv shares ARG_MAX with the environment).
BATCH_BYTES = 96 * 1024


class Tool:
    def __init__(self, mcrt, driver, plugin_dir, vocab, merges):
        self.vocab, self.merges, self.plugin_dir = vocab, merges, plugin_dir
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("MCRT_")}
        self.env["NO_COLOR"] = "1"
        probe = subprocess.run([mcrt, "tokenize", "--help"], capture_output=True, env=self.env)
        if probe.returncode == 0:
            self.argv0, self.how = [mcrt], "mcrt"
        else:
            self.argv0, self.how = [driver], "tokenize_driver (mcrt has no tokenize subcommand yet)"

    def files(self):
        return ["--plugin-dir", self.plugin_dir, "--vocab-file", self.vocab,
                "--merge-file", self.merges]

    def run(self, sub, args, stdin=None, timeout=600, files=True):
        argv = self.argv0 + [sub] + (self.files() if files else []) + list(args)
        return subprocess.run(argv, input=stdin, capture_output=True, env=self.env,
                              timeout=timeout)

    def tokenize_many(self, texts):
        """Token ids of each text (str or bytes), through `tokenize -e`."""
        out = []
        batch, size = [], 0
        for t in texts:
            e = escape(t)
            if batch and size + len(e) > BATCH_BYTES:
                out.extend(self._batch(batch))
                batch, size = [], 0
            batch.append(e)
            size += len(e) + 1
        if batch:
            out.extend(self._batch(batch))
        return out

    def _batch(self, escaped):
        p = self.run("tokenize", ["--ids", "-e", "-q", "--"] + escaped)
        if p.returncode != 0:
            raise AssertionError("tokenize exited %d\nstderr:\n%s" % (p.returncode,
                                                                     p.stderr.decode(errors="replace")))
        lines = p.stdout.decode("ascii").splitlines()
        if len(lines) != len(escaped):
            raise AssertionError("tokenize printed %d lines for %d texts" % (len(lines), len(escaped)))
        return [json.loads(line) for line in lines]


def escape(t):
    """A text as an argument of `mcrt tokenize -e`: exactly its bytes (UTF-8 for str)."""
    b = t.encode("utf-8") if isinstance(t, str) else t
    out = []
    i = 0
    while i < len(b):
        c = b[i]
        if c == 0x5C:
            out.append("\\\\")
        elif c < 0x20 or c == 0x7F:
            out.append("\\x%02x" % c)
        elif c < 0x80:
            out.append(chr(c))
        else:
            # Valid UTF-8 sequences pass as they are; other bytes as \xHH.
            for k in (4, 3, 2):
                try:
                    ch = b[i:i + k].decode("utf-8")
                except UnicodeDecodeError:
                    continue
                if len(ch) == 1:
                    out.append(ch)
                    i += k
                    break
            else:
                out.append("\\x%02x" % c)
                i += 1
            continue
        i += 1
    return "".join(out)


def read_corpus(path):
    with open(path, encoding="ascii") as f:
        return [json.loads(line) for line in f if line.strip()]


def skip(msg):
    print("SKIP: " + msg)
    sys.exit(77)
