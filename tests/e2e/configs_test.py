#!/usr/bin/python3
"""Every runnable example in configs/ is also an end-to-end test input (DESIGN.md §7).

    configs_test.py MCRT CONFIGS_DIR

Runs `mcrt run CONFIG --output-format json -q` for each configs/*.yaml and checks the result:
exit 0, one object per prompt of the config in request order, each with the seed's fields (id,
input_prompt, generated_text, generated_tokens) and a finish reason, and a timing summary on
stderr. A config whose weights are not built here (a plugin_dirs/load path that does not exist)
is skipped with one line; if every config is skipped, exit 77.
"""
import glob
import json
import os
import re
import subprocess
import sys


def count_prompts(text, cfg):
    """generation.prompts' length: a flow list ["a", "b"] (one or more lines) of double-quoted
    strings, or a block list of `- item` lines."""
    m = re.search(r"^(\s*)prompts:[ \t]*(.*)$", text, re.M)
    assert m, "%s: no generation.prompts" % cfg
    if m.group(2).startswith("["):
        flow = re.match(r"\[(.*?)\]", text[m.start(2):], re.S)
        assert flow, "%s: prompts: an unterminated [ list" % cfg
        return len(re.findall(r'"((?:[^"\\]|\\.)*)"', flow.group(1)))
    n = 0
    for line in text[m.end():].splitlines()[1:]:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if len(line) - len(line.lstrip()) <= len(m.group(1)) or not line.lstrip().startswith("-"):
            break
        n += 1
    return n


def main():
    mcrt, configs = sys.argv[1], sys.argv[2]
    ran = 0
    for cfg in sorted(glob.glob(os.path.join(configs, "*.yaml"))):
        text = open(cfg).read()
        base = os.path.dirname(os.path.abspath(cfg))
        missing = [p for p in re.findall(r"^\s*load:\s*(\S+)", text, re.M)
                   if not os.path.exists(os.path.join(base, p))]
        if missing:
            print("skip %s: %s is not built here" % (os.path.basename(cfg), missing[0]))
            continue
        proc = subprocess.run([mcrt, "run", cfg, "--output-format", "json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
        err = proc.stderr.decode("utf-8", "replace")
        assert proc.returncode == 0, "%s: exit %d\n%s" % (cfg, proc.returncode, err)
        out = json.loads(proc.stdout.decode("utf-8"))
        n = count_prompts(text, cfg)
        assert len(out) == n, "%s: %d results for %d prompts" % (cfg, len(out), n)
        for i, r in enumerate(out):
            for key in ("id", "input_prompt", "generated_text", "generated_tokens",
                        "finish_reason"):
                assert key in r, "%s: request %d lacks %s" % (cfg, i, key)
            assert r["id"] == i and r["finish_reason"] in ("eod", "length", "stop"), (cfg, r)
        assert '"timing"' in err, "%s: no timing summary on stderr" % cfg
        print("ok %s: %d requests, %d tokens" % (os.path.basename(cfg), len(out),
                                                 sum(len(r["generated_tokens"]) for r in out)))
        ran += 1
    if ran == 0:
        print("SKIP: no config in %s could run here" % configs)
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())
