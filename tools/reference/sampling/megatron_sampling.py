#!/usr/bin/python3
"""PyTorch reference of mcrt's sampler (docs/sampling.md) and the golden cases its tests compare
the `default` sampler plugin against.

    /usr/bin/python3 tools/reference/sampling/megatron_sampling.py --out FILE [--skip-without-torch]

Two references, both written with torch tensor ops and run in float64:

* megatron_sample_from_logits_probs: Megatron-Core's `sample_from_logits` (reference §1.5.4),
  transcribed line for line, returning the probabilities it hands to torch.multinomial instead of
  drawing. mcrt's documented changes are marked `# mcrt:` (padding ids masked first, NaN read as
  -inf, +inf logits taken in the softmax limit, a stable sort so ties at the nucleus boundary keep
  the lowest ids, temperature 0 = greedy as Megatron's OpenAI server maps it).
* default_probs: the default (OpenAI/vLLM) pipeline as docs/sampling.md specifies it, written the
  way vLLM writes each stage (top-k and top-p on an ascending sort with `probs_sum <= 1 - p`,
  min-p as `probs < min_p * max_prob`), not the way mcrt's C code does, so the comparison is
  between two formulations.

The golden file is text, one case after another (docs/sampling.md, "Tests"):

    mcrt-sampling-golden 1
    case NAME
    dims V Vp
    params COMPAT TEMPERATURE TOP_K TOP_P MIN_P REPETITION PRESENCE FREQUENCY
    bias N (ID VALUE)*N
    history N DRAW_INDEX TOKEN*N
    logits X*Vp
    expect ok | expect error
    kept N ID*N                   (ok only: the ids the filters keep, ascending)
    probs P*N                     (ok only: their probabilities, same order)
    greedy ID                     (ok only: the token when the choice is deterministic, else -1)
    logprob TOKEN VALUE           (ok only: the log prob of TOKEN under the log-prob rule)
    end

Parameters are written as the float32 values the C struct holds; every number in repr, so C's
strtod reads back the same double. Random cases are resampled when a top-p or min-p boundary lies
within 1e-7 of a token (the two sides sum in different orders, ~1e-15 apart), so the kept sets
are decided by the semantics and not by rounding; hand-made "exact" cases sit on the boundary on
purpose, with values that are exact in binary. Same script, same bytes: fixed seeds, one thread.
Without torch: --skip-without-torch writes a one-line "skip" file and exits 0; otherwise exit 77.
"""

import argparse
import math
import os
import random
import sys

MAGIC = "mcrt-sampling-golden 1"
COMPAT_DEFAULT, COMPAT_MEGATRON = 0, 1
BOUNDARY_MARGIN = 1e-7


def f32(x):
    """x rounded to float32, as a Python float (what the C struct holds)."""
    import numpy as np
    return float(np.float32(x))


# ---- Megatron-Core's sample_from_logits, transcribed ---------------------------------------------

def mcrt_mask(torch, logits_row, vocab_size):
    """mcrt: the real vocabulary only (padding ids [V, Vp) become -inf), NaN -> -inf, and +inf
    logits share all the mass (the softmax limit). Returns a float64 [1, Vp] tensor."""
    x = torch.tensor([logits_row], dtype=torch.float64)
    x = torch.nan_to_num(x, nan=-math.inf, posinf=math.inf, neginf=-math.inf)
    x[:, vocab_size:] = -math.inf
    if bool(torch.isneginf(x).all()):
        raise ValueError("nothing to sample")
    if bool(torch.isposinf(x).any()):
        x = torch.where(torch.isposinf(x), torch.zeros_like(x), torch.full_like(x, -math.inf))
    return x


def megatron_sample_from_logits_probs(torch, last_token_logits, temperature, top_k, top_p,
                                      vocab_size):
    """Megatron-Core's sample_from_logits up to torch.multinomial: the probabilities drawn from."""

    def modify_logits_for_top_k_filtering(logits, top_k):
        """Set the logits for none top-k values to -inf."""
        filter_ = logits < torch.topk(logits, top_k)[0][..., -1, None]
        logits.masked_fill_(filter_, float('-Inf'))

    def modify_logits_for_top_p_filtering(logits, top_p):
        """Set the logits for none top-p values to -inf."""
        # First sort and calculate cumulative sum of probabilities.
        # mcrt: stable, so tied logits keep id order and the lowest ids survive the boundary
        # (Megatron's unstable sort leaves that choice to the sort implementation).
        sorted_logits, sorted_indices = torch.sort(logits, descending=True, stable=True)
        cumulative_probs = sorted_logits.softmax(dim=-1).cumsum(dim=-1)

        # Filteration based on the cumulative sum.
        filter_ = cumulative_probs > top_p
        # This shift by 1 is weird and I cannot justify it. (Megatron's comment.)
        filter_[:, 1:] = filter_[:, :-1].clone()
        # Make sure we at least have one token to select from.
        filter_[..., 0] = 0

        # Fill in the filtered part
        filter_ = filter_.scatter(1, sorted_indices, filter_)
        logits.masked_fill_(filter_, float('-Inf'))

    assert not (top_k > 0 and top_p > 0), 'Cannot have top-p and top-k both greater than zero'
    assert top_p <= 1.0, 'top-p should be in (0,1]'

    last_token_logits = mcrt_mask(torch, last_token_logits, vocab_size)   # mcrt

    # Greedy sampling
    if top_k == 1 or temperature == 0.0:      # mcrt: temperature 0 = greedy (Megatron's server)
        sampled_logits = torch.argmax(last_token_logits, dim=-1)
        probabilities = torch.zeros_like(last_token_logits)
        probabilities[0, int(sampled_logits)] = 1.0
        return probabilities[0]
    else:
        last_token_logits = last_token_logits.clone()
        if temperature != 1.0:
            last_token_logits.div_(temperature)

        if top_k > 1:
            assert top_k <= last_token_logits.size(1), 'Top-k is larger than logit size.'
            if vocab_size:
                assert top_k < vocab_size, 'Top-k is larger than vocab size.'
            modify_logits_for_top_k_filtering(last_token_logits, top_k)

        elif top_p > 0.0:
            modify_logits_for_top_p_filtering(last_token_logits, top_p)

        # After filtering, we need to recalculate the distribution.
        probabilities = last_token_logits.softmax(dim=-1)
        return probabilities[0]


# ---- the default (OpenAI/vLLM) pipeline, as docs/sampling.md specifies it -----------------------

def default_probs(torch, logits_row, V, p, bias, history, draw_index):
    """Logit bias -> repetition penalty (every history token) -> presence/frequency penalties
    (the generated tokens: the last draw_index of the history) -> temperature (0 = greedy) ->
    top-k -> top-p -> min-p -> softmax. Returns float64 probabilities over [0, Vp)."""
    # NaN reads as -inf; the +inf limit is taken after the bias and penalties (both finite).
    x = torch.tensor(logits_row, dtype=torch.float64)
    x = torch.nan_to_num(x, nan=-math.inf, posinf=math.inf, neginf=-math.inf)
    z = x[:V].clone()
    for tok, b in bias:
        z[tok] += b
    if p["repetition_penalty"] != 1.0 and history:
        seen = torch.zeros(V, dtype=torch.bool)
        seen[torch.tensor(history, dtype=torch.long)] = True
        pen = p["repetition_penalty"]
        z = torch.where(seen, torch.where(z > 0, z / pen, z * pen), z)
    if p["presence_penalty"] != 0.0 or p["frequency_penalty"] != 0.0:
        n_gen = min(draw_index, len(history))
        gen = history[len(history) - n_gen:]
        counts = torch.bincount(torch.tensor(gen, dtype=torch.long), minlength=V).to(torch.float64)
        mask = (counts > 0).to(torch.float64)
        z = torch.where(counts > 0, z - p["frequency_penalty"] * counts, z)
        z = torch.where(mask > 0, z - p["presence_penalty"], z)
    if bool(torch.isposinf(z).any()):
        z = torch.where(torch.isposinf(z), torch.zeros_like(z), torch.full_like(z, -math.inf))
    if bool(torch.isneginf(z).all()):
        raise ValueError("nothing to sample")
    out = torch.zeros(len(logits_row), dtype=torch.float64)
    if p["temperature"] == 0.0:
        out[int(torch.argmax(z))] = 1.0              # torch.argmax: the first maximum
        return out
    z = z / p["temperature"]
    logits = z.unsqueeze(0)
    k, top_p = p["top_k"], p["top_p"]
    # vLLM's _apply_top_k_top_p on an ascending sort. Ties: the lowest id counts as the larger,
    # so the ascending order is built from the reversed row with a stable sort.
    rev = torch.flip(logits, dims=[1])
    logits_sort, rev_idx = torch.sort(rev, dim=-1, descending=False, stable=True)
    logits_idx = (V - 1) - rev_idx
    if 0 < k < V:
        top_k_mask = logits_sort.size(1) - k
        top_k_mask = logits_sort[:, top_k_mask].unsqueeze(1)
        top_k_mask = logits_sort < top_k_mask
        logits_sort.masked_fill_(top_k_mask, -float("inf"))
    if top_p < 1.0:
        probs_sort = logits_sort.softmax(dim=-1)
        probs_sum = probs_sort.cumsum(dim=-1)
        top_p_mask = probs_sum <= 1 - top_p
        top_p_mask[:, -1] = False                    # at least one
        logits_sort.masked_fill_(top_p_mask, -float("inf"))
    logits = torch.empty_like(logits_sort).scatter_(dim=-1, index=logits_idx, src=logits_sort)
    if p["min_p"] > 0.0:                             # vLLM's _apply_min_p
        probs = torch.softmax(logits, dim=-1)
        top_probs, _ = probs.max(dim=-1, keepdim=True)
        scaled_min_p = p["min_p"] * top_probs
        tokens_to_remove = probs < scaled_min_p
        logits = logits.masked_fill(tokens_to_remove, -float("inf"))
    out[:V] = torch.softmax(logits[0], dim=-1)
    return out


# ---- log probabilities --------------------------------------------------------------------------

def ref_logprob(torch, logits_row, V, compat, token):
    """Raw logits (no bias, penalty, temperature, filter), NaN as -inf; default mode over the real
    vocabulary [0, V), megatron over the whole padded row [0, Vp) as Megatron-Core."""
    x = torch.tensor(logits_row, dtype=torch.float64)
    x = torch.nan_to_num(x, nan=-math.inf, posinf=math.inf, neginf=-math.inf)
    if compat == COMPAT_DEFAULT:
        x = x[:V]
    if bool(torch.isposinf(x).any()):                # the limit: the +inf ids share the mass
        n = int(torch.isposinf(x).sum())
        return -math.log(n) if math.isinf(float(x[token])) and float(x[token]) > 0 else -math.inf
    return float(torch.log_softmax(x, dim=-1)[token])


# ---- cases --------------------------------------------------------------------------------------

def probs_for(torch, case):
    p = case["params"]
    if p["compat"] == COMPAT_MEGATRON:
        return megatron_sample_from_logits_probs(torch, case["logits"], p["temperature"],
                                                 p["top_k"], p["top_p"], case["V"])
    return default_probs(torch, case["logits"], case["V"], p, case["bias"], case["history"],
                         case["draw_index"])


def on_boundary(torch, case, probs):
    """True when moving top_p or min_p by BOUNDARY_MARGIN changes the kept set."""
    p = case["params"]
    kept = probs > 0
    for field in ("top_p", "min_p"):
        for d in (-BOUNDARY_MARGIN, BOUNDARY_MARGIN):
            q = dict(p)
            q[field] = min(1.0, max(0.0, p[field] + d))
            if q[field] == p[field]:
                continue
            if field == "top_p" and p["compat"] == COMPAT_MEGATRON and p["top_p"] == 0.0:
                continue
            if field == "top_p" and p["compat"] == COMPAT_DEFAULT and p["top_p"] == 1.0:
                continue
            if field == "min_p" and p["min_p"] == 0.0:
                continue
            other = probs_for(torch, dict(case, params=q))
            if not torch.equal(other > 0, kept):
                return True
    return False


def make_logits(rng, V, Vp, kind):
    """One row of Vp float32 logits of the given kind; padding ids get values of their own."""
    def g(scale):
        return rng.gauss(0.0, scale)
    if kind == "normal":
        row = [g(1.0) for _ in range(V)]
    elif kind == "wide":
        row = [g(4.0) for _ in range(V)]
    elif kind == "ties":
        row = [float(rng.randint(-3, 3)) for _ in range(V)]
    elif kind == "bf16":                             # bf16-valued logits, as Megatron v0.10+
        row = []
        for _ in range(V):
            v = f32(g(2.0))
            import struct
            b = struct.unpack("<I", struct.pack("<f", v))[0] & 0xFFFF0000
            row.append(struct.unpack("<f", struct.pack("<I", b))[0])
    elif kind == "flat":
        row = [0.5] * V
    elif kind == "neg_inf":
        row = [g(1.5) if rng.random() < 0.6 else -math.inf for _ in range(V)]
        row[rng.randrange(V)] = g(1.0)
    elif kind == "nan":
        row = [g(1.5) if rng.random() < 0.7 else math.nan for _ in range(V)]
        row[rng.randrange(V)] = g(1.0)
    elif kind == "peaked":
        row = [g(1.0) for _ in range(V)]
        row[rng.randrange(V)] = 9.0
    else:
        raise ValueError(kind)
    pad = [rng.choice((0.0, 50.0, g(1.0), -math.inf, math.nan)) for _ in range(Vp - V)]
    return [f32(v) for v in row + pad]


def default_params(compat):
    return dict(compat=compat, temperature=1.0, top_k=0, top_p=0.0 if compat else 1.0,
                min_p=0.0, repetition_penalty=1.0, presence_penalty=0.0, frequency_penalty=0.0)


def random_case(rng, idx, compat, V, Vp, kind):
    p = default_params(compat)
    bias, history, draw_index = [], [], 0
    p["temperature"] = rng.choice((0.0, 0.3, 0.7, 1.0, 1.0, 1.6, 3.0))
    if compat == COMPAT_MEGATRON:
        mode = rng.choice(("none", "k", "k", "p", "p", "greedy"))
        if mode == "k" and V > 2:
            p["top_k"] = rng.choice([k for k in (2, 3, 5, V // 2, V - 1) if 1 < k < V])
        elif mode == "p":
            p["top_p"] = rng.choice((0.1, 0.5, 0.8, 0.9, 0.95, 1.0))
        elif mode == "greedy":
            p["top_k"] = 1
    else:
        if rng.random() < 0.5:
            p["top_k"] = rng.choice((1, 2, 3, 5, max(1, V // 2), V + 3))
        if rng.random() < 0.5:
            p["top_p"] = rng.choice((0.0, 0.1, 0.5, 0.8, 0.9, 0.95))
        if rng.random() < 0.35:
            p["min_p"] = rng.choice((0.02, 0.1, 0.3, 0.9))
        if rng.random() < 0.35:
            p["repetition_penalty"] = rng.choice((0.7, 1.2, 2.0))
        if rng.random() < 0.35:
            p["presence_penalty"] = rng.choice((-0.5, 0.4, 1.5))
        if rng.random() < 0.35:
            p["frequency_penalty"] = rng.choice((-0.3, 0.25, 1.0))
        if rng.random() < 0.3:
            for _ in range(rng.randint(1, 3)):
                bias.append((rng.randrange(V), f32(rng.choice((-100.0, -2.5, 1.5, 5.0)))))
        if any(p[f] != d for f, d in (("repetition_penalty", 1.0), ("presence_penalty", 0.0),
                                        ("frequency_penalty", 0.0))):
            n = rng.randint(0, 12)
            history = [rng.randrange(V) for _ in range(n)]
            draw_index = rng.randint(0, n + 2)
    for f in ("temperature", "top_p", "min_p", "repetition_penalty", "presence_penalty",
              "frequency_penalty"):
        p[f] = f32(p[f])
    return dict(name="%s-%s-V%d-%d" % ("meg" if compat else "def", kind, V, idx), V=V, Vp=Vp,
                params=p, bias=bias, history=history, draw_index=draw_index,
                logits=make_logits(rng, V, Vp, kind), exact=False)


def exact_cases():
    """Hand-made cases on the boundaries, with values exact in binary."""
    out = []

    def case(name, compat, logits, V=None, **kw):
        p = default_params(compat)
        extra = {k: kw.pop(k) for k in ("bias", "history", "draw_index") if k in kw}
        p.update(kw)
        V = V if V is not None else len(logits)
        out.append(dict(name=name, V=V, Vp=len(logits), params=p, bias=extra.get("bias", []),
                        history=extra.get("history", []), draw_index=extra.get("draw_index", 0),
                        logits=[f32(v) for v in logits], exact=True))
    # Two equal logits, top_p 0.5: the exclusive mass before the second is exactly 0.5.
    case("exact-def-top_p-half", 0, [1.0, 1.0], top_p=0.5)       # default: 0.5 reaches 0.5
    case("exact-meg-top_p-half", 1, [1.0, 1.0], top_p=0.5)       # megatron: cum > 0.5 only
    # Four equal: the boundary among ties keeps the lowest ids.
    case("exact-def-top_p-ties", 0, [0.0, 2.0, 2.0, 2.0, 2.0], top_p=0.5)
    case("exact-meg-top_p-ties", 1, [0.0, 2.0, 2.0, 2.0, 2.0], top_p=0.5)
    # Top-k with ties at the k-th value keeps them all (both modes).
    case("exact-def-top_k-ties", 0, [3.0, 1.0, 2.0, 2.0, 2.0, 0.0], top_k=2)
    case("exact-meg-top_k-ties", 1, [3.0, 1.0, 2.0, 2.0, 2.0, 0.0], top_k=2)
    # Greedy: ties go to the lowest id; megatron top_k 1 ignores the temperature.
    case("exact-def-greedy-ties", 0, [1.0, 4.0, 4.0, 2.0], temperature=0.0)
    case("exact-meg-top_k1-temp", 1, [1.0, 4.0, 4.0, 2.0], top_k=1, temperature=0.25)
    case("exact-meg-temp0", 1, [1.0, 4.0, 5.0, 2.0], temperature=0.0, top_p=0.9)
    # Padding never sampled, even when it holds the largest logits.
    case("exact-def-padding", 0, [1.0, 2.0, 100.0, 100.0], V=2)
    case("exact-meg-padding", 1, [1.0, 2.0, 100.0, 100.0], V=2)
    case("exact-meg-padding-greedy", 1, [1.0, 2.0, 100.0, 100.0], V=2, top_k=1)
    # min_p exactly at a ratio: exp(-ln 2)... not exact; use equal logits: ratio 1 >= min_p 1.
    case("exact-def-min_p-one", 0, [1.0, 3.0, 3.0, 2.0], min_p=1.0)
    # top_p 0 in default mode keeps the top token only.
    case("exact-def-top_p-zero", 0, [1.0, 3.0, 3.0, 2.0], top_p=0.0)
    # +inf logits share the mass; NaN is -inf.
    case("exact-def-posinf", 0, [1.0, math.inf, 0.0, math.inf, math.nan])
    case("exact-meg-posinf", 1, [1.0, math.inf, 0.0, math.inf, math.nan], top_p=0.3)
    # Penalties on a known history: repetition over all, presence/frequency over the generated.
    case("exact-def-penalties", 0, [2.0, -1.0, 0.5, 0.0, 1.0], repetition_penalty=2.0,
         presence_penalty=0.5, frequency_penalty=0.25, history=[0, 1, 4, 4, 2], draw_index=3)
    case("exact-def-bias", 0, [0.0, 0.0, 0.0, 0.0], bias=[(2, 1.5), (0, -100.0)])
    # Rows with nothing to sample (errors, both modes).
    case("exact-def-all-neginf", 0, [-math.inf, math.nan, -math.inf, 5.0], V=3)
    case("exact-meg-all-nan", 1, [math.nan, math.nan, 1.0], V=2)
    for c in out:
        for f in ("temperature", "top_p", "min_p", "repetition_penalty", "presence_penalty",
                  "frequency_penalty"):
            c["params"][f] = f32(c["params"][f])
    return out


SIZES = ((1, 4), (2, 2), (5, 8), (17, 32), (64, 64), (100, 128), (1000, 1024))
KINDS = ("normal", "wide", "ties", "bf16", "flat", "neg_inf", "nan", "peaked")


def all_cases(torch):
    rng = random.Random(20240611)
    cases = exact_cases()
    idx = 0
    for V, Vp in SIZES:
        for kind in KINDS:
            per = 2 if V >= 1000 else 10 if kind == "normal" else 6
            for compat in (COMPAT_DEFAULT, COMPAT_MEGATRON):
                made = 0
                tries = 0
                while made < per:
                    tries += 1
                    if tries > 200:
                        raise RuntimeError("no off-boundary case for %s V=%d" % (kind, V))
                    c = random_case(rng, idx, compat, V, Vp, kind)
                    if compat == COMPAT_MEGATRON and c["params"]["top_k"] >= V and V > 1:
                        continue
                    if V == 1 and compat == COMPAT_MEGATRON and c["params"]["top_k"] > 1:
                        continue
                    try:
                        probs = probs_for(torch, c)
                    except ValueError:
                        continue
                    if on_boundary(torch, c, probs):
                        continue
                    cases.append(c)
                    idx += 1
                    made += 1
    return cases


def fmt(x):
    return repr(float(x))


def write_case(torch, f, c):
    p = c["params"]
    f.write("case %s\n" % c["name"])
    f.write("dims %d %d\n" % (c["V"], c["Vp"]))
    f.write("params %d %s %d %s %s %s %s %s\n" % (
        p["compat"], fmt(p["temperature"]), p["top_k"], fmt(p["top_p"]), fmt(p["min_p"]),
        fmt(p["repetition_penalty"]), fmt(p["presence_penalty"]), fmt(p["frequency_penalty"])))
    f.write("bias %d%s\n" % (len(c["bias"]), "".join(" %d %s" % (t, fmt(b)) for t, b in c["bias"])))
    f.write("history %d %d%s\n" % (len(c["history"]), c["draw_index"],
                                   "".join(" %d" % t for t in c["history"])))
    f.write("logits %s\n" % " ".join(fmt(x) for x in c["logits"]))
    try:
        probs = probs_for(torch, c)
    except ValueError:
        f.write("expect error\nend\n")
        return "error"
    kept = [i for i in range(c["Vp"]) if float(probs[i]) > 0.0]
    assert all(i < c["V"] for i in kept), "a padding id kept in %s" % c["name"]
    f.write("expect ok\n")
    f.write("kept %d %s\n" % (len(kept), " ".join(str(i) for i in kept)))
    f.write("probs %s\n" % " ".join(fmt(probs[i]) for i in kept))
    f.write("greedy %d\n" % (kept[0] if len(kept) == 1 else -1))
    finite = [i for i in range(c["V"]) if math.isfinite(c["logits"][i])] or kept
    rng = random.Random(c["name"])                   # str seeds are stable across runs
    token = rng.choice(finite)
    f.write("logprob %d %s\n" % (token, fmt(ref_logprob(torch, c["logits"], c["V"], p["compat"],
                                                         token))))
    f.write("end\n")
    return "ok"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True, help="the golden file to write")
    ap.add_argument("--skip-without-torch", action="store_true",
                    help="without torch: write a one-line skip file and exit 0")
    args = ap.parse_args(argv)
    try:
        import torch
        import numpy  # noqa: F401  (f32)
    except ImportError:
        msg = "megatron_sampling: python3-torch (and numpy) is not installed; no golden cases made"
        print(msg)
        if args.skip_without_torch:
            with open(args.out, "w") as f:
                f.write("mcrt-sampling-golden skip: %s\n" % msg)
            return 0
        return 77
    torch.set_num_threads(1)
    cases = all_cases(torch)
    tmp = args.out + ".tmp"
    counts = {"ok": 0, "error": 0}
    with open(tmp, "w") as f:
        f.write(MAGIC + "\n")
        for c in cases:
            counts[write_case(torch, f, c)] += 1
    os.replace(tmp, args.out)
    print("megatron_sampling: %d cases (%d ok, %d errors) in %s"
          % (len(cases), counts["ok"], counts["error"], args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
