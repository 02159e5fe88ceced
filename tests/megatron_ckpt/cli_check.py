#!/usr/bin/env python3
"""`mcrt inspect` and `mcrt convert` on every Megatron checkpoint fixture, through the binary.

    cli_check.py MCRT CKPTS

For each good case (expected.json kind != "bad"): `mcrt inspect CASE` exits 0; `mcrt inspect
--json CASE` is one JSON object whose format, iteration, TP/PP layout, layers per stage and
hyper-parameters agree with expected.json (written by the fixture generator, not by mcrt), and
whose tensor table has the merged MCore TE names with the global shapes (hidden size, layer
count, padded vocab rows); `mcrt convert CASE OUT` exits 0 and `mcrt inspect --json OUT` lists
the same tensors, dtypes and shapes. For each bad case both commands fail with exit 65 or 66
and one message naming the file (except a tensor whose shape disagrees with the args, which only
the model can judge: inspect must show it as stored). Standard library only; exits 77 when the fixtures are absent.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout, p.stderr


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def check_good(mcrt, case_dir, exp, scratch):
    name = exp["case"]
    rc, out, err = run([mcrt, "inspect", case_dir])
    if rc != 0 or "tensor" not in out:
        fail(f"{name}: inspect exit {rc}: {err}")
    rc, out, err = run([mcrt, "inspect", "--json", case_dir])
    if rc != 0:
        fail(f"{name}: inspect --json exit {rc}: {err}")
    info = json.loads(out)
    meta, args = info["metadata"], info["args"]
    want_format = "torch_dist" if exp["kind"] == "torch_dist" else "torch"
    if info["format"] != want_format or meta.get("format") != want_format:
        fail(f"{name}: format {info['format']} / {meta.get('format')}, expected {want_format}")
    if exp.get("tracker") != "release" and meta.get("iteration") != str(exp["iteration"]):
        fail(f"{name}: iteration {meta.get('iteration')}, expected {exp['iteration']}")
    if meta.get("tensor_model_parallel_size") != str(exp["tensor_model_parallel_size"]):
        fail(f"{name}: TP {meta.get('tensor_model_parallel_size')}")
    if meta.get("pipeline_model_parallel_size") != str(exp["pipeline_model_parallel_size"]):
        fail(f"{name}: PP {meta.get('pipeline_model_parallel_size')}")
    if exp["kind"] != "torch_dist":
        lps = ",".join(str(n) for n in exp["layers_per_stage"])
        if meta.get("layers_per_stage") != lps:
            fail(f"{name}: layers per stage {meta.get('layers_per_stage')}, expected {lps}")
    cfg = exp["config"]
    for key in ("hidden_size", "num_layers", "num_attention_heads"):
        if args.get(key) != cfg[key]:
            fail(f"{name}: args {key} = {args.get(key)}, expected {cfg[key]}")
    table = {t["name"]: t for t in info["table"]}
    h, L, vp = cfg["hidden_size"], cfg["num_layers"], exp["padded_vocab_size"]
    emb = table.get("embedding.word_embeddings.weight")
    if emb is None or emb["shape"] != [vp, h]:
        fail(f"{name}: embedding.word_embeddings.weight is {emb}, expected [{vp}, {h}]")
    for i in range(L):
        key = f"decoder.layers.{i}.self_attention.linear_proj.weight"
        if key not in table or table[key]["shape"][0] != h:
            fail(f"{name}: {key} missing or not {h} rows")
        if f"decoder.layers.{i}.self_attention.linear_qkv.layer_norm_weight" not in table:
            fail(f"{name}: layer {i}'s norm is not under its TE name")
    if any("_extra_state" in k or "language_model" in k for k in table):
        fail(f"{name}: a raw Megatron key leaked into the table")
    # --use-checkpoint-args forces the tokenizer type from the saved args (§3.5); the writer
    # gives gpt2 fixtures GPT2BPETokenizer, llama HuggingFaceTokenizer, the rest NullTokenizer.
    fixture = exp["reference_fixture"].split("/")[0]
    want_tok = {"gpt2": "GPT2BPETokenizer", "llama": "HuggingFaceTokenizer"}.get(
        fixture, "NullTokenizer")
    yaml_path = os.path.join(scratch, name + ".yaml")
    with open(yaml_path, "w") as f:
        f.write(f"model:\n  name: gpt\n  load: {os.path.abspath(case_dir)}\n"
                f"tokenizer:\n  tokenizer_type: SentencePieceTokenizer\n")
    for flag, want in ((["--use-checkpoint-args"], want_tok), ([], "SentencePieceTokenizer")):
        rc, out, err = run([mcrt, "config", yaml_path] + flag)
        line = [l for l in out.splitlines() if l.startswith("tokenizer.tokenizer_type")]
        if rc != 0 or not line or line[0].split()[2] != want:
            fail(f"{name}: mcrt config {flag}: tokenizer_type {line}, expected {want}: {err}")
        if flag and ("checkpoint" not in line[0] or "replaced" not in err):
            fail(f"{name}: the forced tokenizer_type is not attributed/warned: {line} {err}")
    out_dir = os.path.join(scratch, name)
    rc, out, err = run([mcrt, "convert", case_dir, out_dir])
    if rc != 0 or "wrote" not in out:
        fail(f"{name}: convert exit {rc}: {err}")
    rc, out, err = run([mcrt, "inspect", "--json", out_dir])
    if rc != 0:
        fail(f"{name}: inspect of the converted file exit {rc}: {err}")
    conv = json.loads(out)
    ctab = {t["name"]: t for t in conv["table"]}
    if ctab != table:
        fail(f"{name}: the converted file's table differs")
    if conv["args"].get("hidden_size") != h:
        fail(f"{name}: the converted file lost its args")


def check_bad(mcrt, case_dir, exp, scratch):
    name = exp["case"]
    if exp.get("defect") == "wrong_shape":
        # A well-formed checkpoint whose tensor disagrees with its args: the model refuses it
        # (tests/models), inspect shows it as stored, so a user can see the bad shape.
        rc, out, err = run([mcrt, "inspect", "--json", case_dir])
        table = {t["name"]: t for t in json.loads(out)["table"]} if rc == 0 else {}
        qkv = table.get("decoder.layers.1.self_attention.linear_qkv.weight", {})
        if rc != 0 or qkv.get("shape", [0])[0] != 176:
            fail(f"{name}: inspect exit {rc}, qkv {qkv}: expected the stored 176 rows shown")
        return
    for cmd in ([mcrt, "inspect", case_dir], [mcrt, "convert", case_dir,
                                                os.path.join(scratch, name)]):
        rc, out, err = run(cmd)
        lines = [l for l in err.splitlines() if l.strip()]
        if rc not in (65, 66) or len(lines) != 1 or name not in lines[0]:
            fail(f"{name}: {cmd[1]} exit {rc}, expected 65/66 and one line naming the file: {err}")
    if os.path.exists("/tmp/mcrt-megatron-ckpt-pickle-was-executed"):
        fail(f"{name}: the pickle ran code")


def main():
    mcrt, ckpts = sys.argv[1], sys.argv[2]
    if not os.path.isdir(os.path.join(ckpts, "gpt2_te_tp1_pp1")):
        print(f"SKIP: no Megatron checkpoint fixtures in {ckpts} (they need python3-torch)")
        return 77
    scratch = tempfile.mkdtemp(prefix="mcrt-cli-check-")
    try:
        n = 0
        for case in sorted(os.listdir(ckpts)):
            path = os.path.join(ckpts, case, "expected.json")
            if not os.path.isfile(path):
                continue
            with open(path) as f:
                exp = json.load(f)
            exp.setdefault("case", case)
            (check_bad if exp.get("kind") == "bad" else check_good)(
                os.path.abspath(mcrt), os.path.join(ckpts, case), exp, scratch)
            n += 1
        print(f"ok: inspect and convert on {n} fixtures")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
