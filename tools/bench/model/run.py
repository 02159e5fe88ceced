#!/usr/bin/python3
"""The model benchmark (issue 4, item 6): mcrt and a PyTorch reference on a GPT-2-124M-shaped
model, side by side in the same run, and the goals.

    /usr/bin/python3 tools/bench/model/run.py [--build build] [--threads N] [--quick]
        [--dtype fp32|bf16|both] [--models DIR] [--out FILE.md] [--torch-only | --mcrt-only]
        [--quiet-run ../shared/tools/quiet_run.py]

1. make_model.py writes DIR/fp32 and DIR/bf16 (default DIR: <build>/bench-models) if missing;
2. for each dtype: <build>/tools/bench/model/bench-model --model DIR/<dtype> --threads N --json
   [--quick] (mcrt), then bench_torch.py with the same arguments, each in its own process
   (wrapped in quiet_run.py with --quiet-run: it waits for an idle machine and repeats a run
   that other processes disturbed; it counts only the process it starts as its own, so it must
   wrap each timed program rather than this script);
3. prints a markdown table and the goals (README.md in this directory explains every figure).
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, HERE)

from make_model import read_config            # noqa: E402  (no torch import)

MIB = 1024 * 1024
PREFILL_LENS = (128, 512)                     # the prompt lengths of the prefill rows

# (label, JSON key, sub-key, better): "higher" for tok/s, "lower" for seconds and MiB
ROWS = [
    ("load s", "load_s", None, "lower"),
    ("peak RSS MiB", "peak_rss_mib", None, "lower"),
    ("prefill 128 tok/s", "prefill_tok_s", "128", "higher"),
    ("prefill 512 tok/s", "prefill_tok_s", "512", "higher"),
    ("decode b1 tok/s", "decode_tok_s", "1", "higher"),
    ("decode b8 tok/s", "decode_tok_s", "8", "higher"),
    ("decode b32 tok/s", "decode_tok_s", "32", "higher"),
]


NOTES = []                                    # warnings that also go into the report


def say(msg, note=False):
    print("run.py: " + msg, file=sys.stderr, flush=True)
    if note:
        NOTES.append(msg)


def figure(result, key, sub):
    if not result:
        return None
    v = result.get(key)
    if sub is not None:
        v = (v or {}).get(sub)
    return float(v) if isinstance(v, (int, float)) else None


def run_side(name, cmd, quiet_run):
    """Run one side; its JSON object (the last '{' line of stdout), or None after a one-line
    error. stderr passes through."""
    if quiet_run:
        cmd = [sys.executable, quiet_run, "--"] + cmd
    say("%s: %s" % (name, " ".join(cmd)))
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, universal_newlines=True)
    except OSError as e:
        say("%s: cannot run %s: %s" % (name, cmd[0], e))
        return None
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if quiet_run and proc.returncode == 3 and lines:
        say("%s: quiet_run found no undisturbed attempt; using the last (disturbed) one" % name,
            note=True)
    elif proc.returncode != 0 or not lines:
        say("%s: failed (exit status %d%s)" % (name, proc.returncode,
                                                "" if lines else ", no JSON on stdout"), note=True)
        return None
    try:
        return json.loads(lines[-1])                # quiet_run: the last attempt is the clean one
    except ValueError as e:
        say("%s: bad JSON on stdout: %s" % (name, e))
        return None


def b1_read_gbs(r):
    """The read bandwidth that bounds a run's batch-1 decode: the mean of the probes right
    before and after it when the run has them (bench-model), else the one at its start."""
    lim = r.get("limits") or {}
    around = [lim.get(k) for k in ("read_gbs_b1_before", "read_gbs_b1_after")]
    if all(isinstance(v, (int, float)) and v > 0 for v in around):
        return sum(around) / 2
    return lim.get("read_gbs")


def b1_pair(r):
    """(decode b1 tok/s, the read GB/s that bounds it) of one run, or None."""
    b1, gbs = (r.get("decode_tok_s") or {}).get("1"), b1_read_gbs(r)
    if isinstance(b1, (int, float)) and isinstance(gbs, (int, float)) and gbs > 0:
        return b1, gbs
    return None


def merge_runs(runs):
    """One result from several runs of one side: the best of each figure (highest tok/s and
    limits, lowest load s), the largest peak RSS (memory is judged by its worst run), and the
    rest from the first run. (The goals that are ratios are taken within each run: goals().)"""
    runs = [r for r in runs if r]
    if not runs:
        return None
    best = json.loads(json.dumps(runs[0]))
    for r in runs[1:]:
        for key, pick in (("load_s", min), ("peak_rss_mib", max)):
            if isinstance(r.get(key), (int, float)) and isinstance(best.get(key), (int, float)):
                best[key] = pick(best[key], r[key])
        for key in ("prefill_tok_s", "decode_tok_s", "limits"):
            for sub, v in (r.get(key) or {}).items():
                if isinstance(v, (int, float)):
                    cur = (best.setdefault(key, {}) or {}).get(sub)
                    best[key][sub] = v if not isinstance(cur, (int, float)) else max(cur, v)
        if "weights_mapped" in r and "weights_mapped" in best:
            best["weights_mapped"] = bool(best["weights_mapped"]) and bool(r["weights_mapped"])
    return best


# ---------------------------------------------------------------------------------------------
# FLOPs and bounds
# ---------------------------------------------------------------------------------------------

def model_sizes(model_dir):
    """Parameter counts from config.yaml: matmul weights per layer x layers, output layer, h, L."""
    a = read_config(os.path.join(model_dir, "config.yaml"))
    h, L, nh = a["hidden_size"], a["num_layers"], a["num_attention_heads"]
    ng = a.get("num_query_groups") or nh
    hn = a.get("kv_channels") or h // nh
    F = a.get("ffn_hidden_size") or 4 * h
    d = a.get("make_vocab_size_divisible_by") or 128
    Vp = a.get("padded_vocab_size") or -(-a["vocab_size"] // d) * d
    fc1 = 2 * F if a.get("activation") == "swiglu" else F
    per_layer = (nh + 2 * ng) * hn * h + h * nh * hn + fc1 * h + h * F
    return dict(h=h, L=L, Vp=Vp, layer_params=per_layer * L, output_params=Vp * h)


def prefill_flops(sz, P):
    """FLOPs of one P-token prefill with logits for the last token only:
    2 * P * (matmul weights of the layers) + 2 * Vp * h (output layer, one row)
    + 2 * 2 * L * h * P * P/2 (QK^T and PV over P/2 keys on average, causal)."""
    return (2 * P * sz["layer_params"] + 2 * sz["output_params"]
            + 2 * 2 * sz["L"] * sz["h"] * P * P / 2)


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------

def fmt(v, key):
    if v is None:
        return "—"
    if key == "load_s":
        return "%.3f" % v
    if v >= 100:
        return "%.0f" % v
    return "%.1f" % v


def ratio(m, t, better):
    """mcrt's advantage: > 1 means mcrt is better (torch / mcrt for lower-is-better rows)."""
    if m is None or t is None or m <= 0 or t <= 0:
        return None
    return m / t if better == "higher" else t / m


def table(results, dtypes):
    head = ["", ]
    for dt in dtypes:
        head += ["mcrt %s" % dt, "torch %s" % dt, "ratio"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, key, sub, better in ROWS:
        cells = [label]
        for dt in dtypes:
            m = figure(results[dt].get("mcrt"), key, sub)
            t = figure(results[dt].get("torch"), key, sub)
            r = ratio(m, t, better)
            cells += [fmt(m, key), fmt(t, key), "—" if r is None else "%.2fx" % r]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def best_run(runs, value):
    """(best value, its run, every run's value) of value(run) over the runs where it is not
    None; (None, None, []) when there is none."""
    vals = [(value(r), r) for r in runs if r]
    vals = [(v, r) for v, r in vals if v is not None]
    if not vals:
        return None, None, []
    v, r = max(vals, key=lambda p: p[0])
    return v, r, [p[0] for p in vals]


def per_run_text(vals, fmt):
    return "" if len(vals) < 2 else "; per run: " + ", ".join(fmt % v for v in vals)


def goals(results, raw, dtypes, models, P=PREFILL_LENS[-1]):
    """The goals. Those that are ratios of two measurements (decode b1 / the bandwidth bound,
    prefill / the FMA peak, b32 / b1) are taken within each run, where both halves saw the
    same machine, and the best run decides; every run's value is listed."""
    out = []
    example = ""
    for dt in dtypes:
        m = results[dt].get("mcrt")
        t = results[dt].get("torch")
        if not m:
            out.append("- %s: no mcrt figures, no goals to check" % dt)
            continue
        sz = model_sizes(os.path.join(models, dt))
        example = (" Here, P = %d: 2·%.2f M + 2·%.2f M / %d + 2·%d·%d·%d = %.2f MFLOP/token."
                   % (P, sz["layer_params"] / 1e6, sz["output_params"] / 1e6, P, sz["L"], sz["h"],
                      P, prefill_flops(sz, P) / P / 1e6))
        runs = [r for r in raw.get(dt, {}).get("mcrt", []) if r] or [m]

        def line(text, ok):
            out.append("- %s %s: %s" % ("PASS" if ok else "MISS", dt, text))

        # 1. decode b1 vs the memory-bandwidth bound, the bandwidth measured around b1
        wb = m.get("weights_bytes")

        def b1_frac(r):
            p = b1_pair(r)
            return p[0] / (p[1] * 1e9 / wb) if p and wb else None

        frac, r, vals = best_run(runs, b1_frac)
        if frac is not None:
            b1, read_gbs = b1_pair(r)
            line("decode b1 %.1f tok/s = %.0f%% of the bandwidth bound %.1f tok/s "
                 "(read %.1f GB/s around it / %.1f MB of weights per token¹; goal >= 85%%%s)"
                 % (b1, 100 * frac, read_gbs * 1e9 / wb, read_gbs, wb / 1e6,
                    per_run_text([100 * v for v in vals], "%.0f%%")), frac >= 0.85)
        else:
            out.append("- n/a %s: decode b1 vs bandwidth bound (weights_bytes, limits.read_gbs "
                       "or decode b1 missing)" % dt)

        # 2. prefill (128 and 512) vs the FMA peak of the same run
        for PP in PREFILL_LENS:
            per_tok = prefill_flops(sz, PP) / PP

            def pf_frac(r, PP=PP, per_tok=per_tok):
                pf, fma = figure(r, "prefill_tok_s", str(PP)), (r.get("limits") or {}).get("fma_gflops")
                return per_tok * pf / 1e9 / fma if pf and fma else None

            frac, r, vals = best_run(runs, pf_frac)
            if frac is None:
                out.append("- n/a %s: prefill %d vs FMA peak (limits.fma_gflops or the figure "
                           "missing)" % (dt, PP))
                continue
            pf, fma = figure(r, "prefill_tok_s", str(PP)), r["limits"]["fma_gflops"]
            brief = (2 * (sz["layer_params"] + sz["output_params"])
                     + 2 * 2 * sz["L"] * PP / 2 * sz["h"]) * pf / 1e9
            line("prefill %d %.0f tok/s x %.1f MFLOP/token² = %.1f GFLOP/s = %.0f%% of the FMA "
                 "peak %.1f GFLOP/s (goal >= 70%%; counting the output layer for every token "
                 "instead: %.0f%%%s)"
                 % (PP, pf, per_tok / 1e6, per_tok * pf / 1e9, 100 * frac, fma,
                    100 * brief / fma, per_run_text([100 * v for v in vals], "%.0f%%")),
                 frac >= 0.7)

        # 3. decode batch scaling, within a run
        def scale(r):
            b1, b32 = figure(r, "decode_tok_s", "1"), figure(r, "decode_tok_s", "32")
            return b32 / b1 if b1 and b32 else None

        x, r, vals = best_run(runs, scale)
        if x is not None:
            line("decode b32 / b1 = %.1f / %.1f = %.2fx (goal >= 8x%s)"
                 % (figure(r, "decode_tok_s", "32"), figure(r, "decode_tok_s", "1"), x,
                    per_run_text(vals, "%.2fx")), x >= 8)

        # 4. every figure >= 2x torch's
        if t:
            worst = None
            for label, key, sub, better in ROWS:
                if key == "peak_rss_mib":
                    continue                         # memory has its own goal (5)
                r = ratio(figure(m, key, sub), figure(t, key, sub), better)
                if r is not None and (worst is None or r < worst[0]):
                    worst = (r, label)
            if worst:
                line("every mcrt figure vs torch's (load s, prefill, decode; higher tok/s, "
                     "lower s): worst %.2fx (%s) (goal >= 2x)" % worst, worst[0] >= 2.0)
            # what 2x torch's prefill would take, against the FMA peak
            fma = (m.get("limits") or {}).get("fma_gflops")
            for PP in PREFILL_LENS:
                tp = figure(t, "prefill_tok_s", str(PP))
                if fma and tp:
                    need = 2 * tp * prefill_flops(sz, PP) / PP / 1e9
                    out.append("  - 2x torch's prefill %d (2 x %.0f tok/s) = %.1f GFLOP/s = "
                               "%.0f%% of the FMA peak (torch itself: %.0f%%)"
                               % (PP, tp, need, 100 * need / fma, 50 * need / fma))
        else:
            out.append("- n/a %s: mcrt vs torch (no torch figures)" % dt)

        # 5. memory
        rss, kv = figure(m, "peak_rss_mib", None), m.get("kv_pool_bytes")
        if rss is not None and wb and kv is not None:
            limit = (wb + kv) / MIB + 64
            line("peak RSS %.0f MiB <= weights %.0f + KV pool %.0f + 64 MiB = %.0f MiB"
                 % (rss, wb / MIB, kv / MIB, limit), rss <= limit)
        mapped = m.get("weights_mapped")
        wdt = m.get("weights_dtype", dt)             # the dtype its kernels read, if it says
        if mapped is not None and wdt == dt:
            line("weights mapped from the file (%s file, read in place as %s): %s"
                 % (dt, wdt, "yes" if mapped else "no"), bool(mapped))
    out += [
        "",
        "¹ Bandwidth bound = read GB/s x 1e9 / weights_bytes: every weight is read once per "
        "decode step. The read GB/s is mcrt's read-only probe, run right before and right after "
        "the batch-1 decode (their mean; the memory's bandwidth moves with the other tenants). The tied embedding matrix is counted once: "
        "it is read in full as the output layer (the lookup reads one row per token). The "
        "position embeddings are counted in full although one row is read; the KV cache reads "
        "(2·L·positions·h·4 bytes of f32 K/V, 9.4 MB at 128 positions for GPT-2 124M) are not "
        "counted.",
        "² FLOPs of a P-token prefill with last-token logits = 2·P·(matmul weights of all layers: "
        "qkv + proj + fc1 + fc2) + 2·Vp·h (output layer, one row) + 2·2·L·h·P·P/2 (QKᵀ and PV, "
        "P/2 keys per query on average); per token = that / P.%s" % example,
    ]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build", help="meson build dir (default: build)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--quick", action="store_true", help="fewer decode steps and reps")
    ap.add_argument("--dtype", choices=("fp32", "bf16", "both"), default="both")
    ap.add_argument("--models", help="model dir (default: <build>/bench-models)")
    ap.add_argument("--out", help="also write the table and goals to this markdown file")
    side = ap.add_mutually_exclusive_group()
    side.add_argument("--torch-only", action="store_true", help="skip mcrt")
    side.add_argument("--mcrt-only", action="store_true", help="skip torch")
    ap.add_argument("--quiet-run", metavar="QUIET_RUN_PY",
                    help="wrap each timed program in this quiet_run.py")
    ap.add_argument("--runs", type=int, default=1,
                    help="run each side N times, alternating, and report the best of each "
                         "figure (the largest peak RSS)")
    ap.add_argument("--json", metavar="FILE", help="also write every run's JSON objects here")
    a = ap.parse_args()
    if a.runs < 1:
        say("--runs takes a count >= 1")
        return 2

    dtypes = ("fp32", "bf16") if a.dtype == "both" else (a.dtype,)
    models = a.models or os.path.join(a.build, "bench-models")
    bench_model = os.path.join(a.build, "tools", "bench", "model", "bench-model")
    if not a.torch_only and not os.access(bench_model, os.X_OK):
        say("mcrt side: %s not found (build it: meson compile -C %s); --torch-only runs the "
            "PyTorch side alone" % (bench_model, a.build))
        return 2
    if a.quiet_run and not os.path.isfile(a.quiet_run):
        say("--quiet-run: %s not found" % a.quiet_run)
        return 2

    make = [sys.executable, os.path.join(HERE, "make_model.py"), "--out", models,
            "--dtype", a.dtype]
    if subprocess.run(make).returncode != 0:
        say("make_model.py failed")
        return 1

    extra = ["--quick"] if a.quick else []
    results, raw = {}, {}
    for dt in dtypes:
        model_dir = os.path.join(models, dt)
        common = ["--model", model_dir, "--threads", str(a.threads), "--json"] + extra
        raw[dt] = {"mcrt": [], "torch": []}
        for run in range(a.runs):
            tag = "" if a.runs == 1 else " (run %d of %d)" % (run + 1, a.runs)
            if not a.torch_only:
                raw[dt]["mcrt"].append(run_side("mcrt %s%s" % (dt, tag),
                                                [bench_model] + common, a.quiet_run))
            if not a.mcrt_only:
                raw[dt]["torch"].append(run_side(
                    "torch %s%s" % (dt, tag),
                    [sys.executable, os.path.join(HERE, "bench_torch.py")] + common, a.quiet_run))
        results[dt] = {side: merge_runs(rs) for side, rs in raw[dt].items() if rs}
    if a.json:
        with open(a.json, "w") as f:
            json.dump(raw, f, indent=1)

    torch_info = next((r["torch"] for r in results.values() if r.get("torch")), None)
    lines = ["## GPT-2 124M shape: mcrt vs PyTorch (%d thread%s%s)"
             % (a.threads, "" if a.threads == 1 else "s", ", --quick" if a.quick else ""), ""]
    lines += table(results, dtypes)
    lines += [
        "",
        "ratio: mcrt's advantage (mcrt / torch for tok/s, torch / mcrt for load s and RSS; > 1 = "
        "mcrt better). Prefill: one sequence, last-token logits, best of several reps. Decode: B "
        "sequences with 128 cached tokens, %d steps, logits for every sequence.%s" %
        (8 if a.quick else 32,
         "" if a.runs == 1 else " Best of %d runs per figure, the machine limits too (peak RSS: "
         "the largest)." % a.runs),
    ]
    if torch_info:
        lines.append("torch %s%s." % (torch_info.get("torch_version", "?"),
                                      "; its bf16 runs compute in bf16 (mcrt widens bf16 weights "
                                      "to f32)" if "bf16" in dtypes else ""))
    lines += ["Note: " + n for n in NOTES]
    lines += ["", "### Goals (mcrt)", ""]
    lines += goals(results, raw, dtypes, models)
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    failed = [dt for dt in dtypes for s in ("mcrt", "torch")
              if s in results[dt] and results[dt][s] is None]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
