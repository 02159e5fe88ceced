#!/usr/bin/python3
"""Megatron-Core's static generation in plain PyTorch, for checking `mcrt run`.

An independent transcription of /work/shared/reference/megatron-inference.md (cited "§n"):

  StaticInferenceEngine (MCoreEngine)   §1.4  tokenize, add_request, run_engine, results by id
  Scheduler                             §1.4  active / waiting / completed pools, FIFO refill,
                                              static batches of <= max_batch_size
  TextGenerationController              §1.5.3 the static batch loop, exactly (v0.13 slicing);
                                              §1.5.4 greedy (top_k = 1); §1.5.5 log probs;
                                              §1.5.7 generated_text
  BytesTokenizer                        the test-only `bytes` tokenizer (tests/plugins/toy)

over any model with MCoreGPT's interface (tools/reference/gpt/mcore_gpt.py):
`model.cfg.vocab_size`, `model.cfg.padded_vocab_size`, `model.new_cache(b, max_len)` and
`model.forward(tokens [b, s], start_pos, cache) -> logits [b, s, Vp]` (no cache: the whole
sequence from position 0 under a causal mask). `fixture_model()` loads a reference fixture of
tools/reference/gpt/make_fixtures.py as such a model, in float64.

It shares no code with mcrt's C plugins. Rules, versions and the deviations from Megatron are in
README.md next to this file. The one deviation that changes results: greedy takes the argmax over
the real vocabulary [0, V) (mcrt never samples a padding id), Megatron over the padded [0, Vp).

Command line (one JSON object per request, mcrt's `--output-format json` field names):

  megatron_static.py --fixture DIR [-n N] [--max-batch-size B] [--return-log-probs]
                     [--prompts P ...]
  megatron_static.py --self-test [--fixtures DIR]     (exit 77 without torch)
"""

import argparse
import json
import math
import os
import sys
from collections import OrderedDict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "gpt"))
sys.path.insert(0, os.path.join(HERE, ".."))

try:
    import torch
except ImportError:      # the self-test and the CLI say so; importers check HAVE_TORCH
    torch = None
HAVE_TORCH = torch is not None

# §1.2 Status (the static path uses only WAITING, ACTIVE_BUT_NOT_GENERATING and COMPLETED).
WAITING_IN_QUEUE = 1
ACTIVE_AND_GENERATING_TOKENS = 2
ACTIVE_BUT_NOT_GENERATING_TOKENS = 3
COMPLETED = 4


# ---------------------------------------------------------------------------------------------
# The `bytes` tokenizer (tests/plugins/toy/README.md)
# ---------------------------------------------------------------------------------------------

class BytesTokenizer:
    """Ids 0..255 are the UTF-8 bytes, 256 is <|endoftext|> (eod); no BOS; vocab 257."""

    vocab_size = 257
    eod = 256
    eod_text = "<|endoftext|>"

    def tokenize(self, text):
        return list(text.encode("utf-8"))

    def detokenize(self, ids):
        """Bytes concatenated (eod as its text), then Python's UTF-8 repair, which is the
        plugin's: U+FFFD per maximal subpart, across token boundaries."""
        raw = b"".join(bytes([i]) if 0 <= i < 256 else self._special(i) for i in ids)
        return raw.decode("utf-8", errors="replace")

    def _special(self, i):
        if i == self.eod:
            return self.eod_text.encode("ascii")
        raise ValueError("token id %d is outside the vocabulary [0, %d)" % (i, self.vocab_size))


# ---------------------------------------------------------------------------------------------
# §1.3 SamplingParams, §1.2 InferenceRequest
# ---------------------------------------------------------------------------------------------

class SamplingParams:
    """§1.3 (v0.12 names, v0.9 defaults for num_tokens_to_generate)."""

    def __init__(self, temperature=1.0, top_k=0, top_p=0.0, return_log_probs=False,
                 num_tokens_to_generate=30):
        self.temperature = temperature
        self.top_k = top_k
        self.top_p = top_p
        self.return_log_probs = return_log_probs
        self.num_tokens_to_generate = num_tokens_to_generate


class InferenceRequest:
    """§1.2, v0.13 fields, plus two that mcrt reports and Megatron's static path does not:
    finish_reason ("eod" | "length") and, for the tests, min_greedy_margin (the smallest
    top-1 - top-2 gap over the real vocabulary of any greedy choice this request's output
    depends on)."""

    def __init__(self, request_id, prompt, sampling_params, prompt_tokens, status):
        self.request_id = request_id
        self.prompt = prompt
        self.sampling_params = sampling_params
        self.prompt_tokens = prompt_tokens
        self.status = status
        self.generated_text = None
        self.generated_tokens = None
        self.generated_length = None
        self.generated_log_probs = None
        self.prompt_log_probs = None
        self.text = None
        self.finish_reason = None
        self.min_greedy_margin = None

    def as_mcrt_json(self):
        """The request as `mcrt run --output-format json` prints it (the fields compared)."""
        out = OrderedDict()
        out["id"] = int(self.request_id)
        out["input_prompt"] = self.prompt
        out["generated_text"] = self.generated_text
        out["generated_tokens"] = list(self.generated_tokens)
        out["finish_reason"] = self.finish_reason
        if self.sampling_params.return_log_probs:
            out["prompt_log_probs"] = list(self.prompt_log_probs)
            out["generated_log_probs"] = list(self.generated_log_probs)
        return out


# ---------------------------------------------------------------------------------------------
# §1.4 Scheduler and StaticInferenceEngine
# ---------------------------------------------------------------------------------------------

class Scheduler:
    """§1.4: three OrderedDict pools; ids from a counter starting at 0 (v0.9: str ids)."""

    def __init__(self, max_batch_size):
        if max_batch_size < 1:
            raise ValueError("max_batch_size must be >= 1")
        self.max_batch_size = max_batch_size
        self.active_request_pool = OrderedDict()
        self.waiting_request_pool = OrderedDict()
        self.completed_request_pool = OrderedDict()
        self._counter = 0

    def add_request(self, prompt, prompt_tokens, sampling_params):
        request_id = str(self._counter)
        self._counter += 1
        if len(self.active_request_pool) < self.max_batch_size:
            status = ACTIVE_BUT_NOT_GENERATING_TOKENS
        else:
            status = WAITING_IN_QUEUE
        req = InferenceRequest(request_id, prompt, sampling_params, prompt_tokens, status)
        if status == ACTIVE_BUT_NOT_GENERATING_TOKENS:
            self.active_request_pool[request_id] = req
        else:
            self.waiting_request_pool[request_id] = req
        return request_id

    def have_requests_pending(self):
        return len(self.active_request_pool) + len(self.waiting_request_pool) > 0

    def update_requests_pools(self, result_dict):
        """COMPLETED requests move from active to completed; then active refills from waiting in
        FIFO order (popitem(last=False)) until full."""
        for request_id in list(result_dict.keys()):
            if self.active_request_pool[request_id].status == COMPLETED:
                self.completed_request_pool[request_id] = self.active_request_pool.pop(request_id)
        while (len(self.active_request_pool) < self.max_batch_size
               and len(self.waiting_request_pool) > 0):
            request_id, req = self.waiting_request_pool.popitem(last=False)
            req.status = ACTIVE_BUT_NOT_GENERATING_TOKENS
            self.active_request_pool[request_id] = req


class StaticInferenceEngine:
    """§1.4 MCoreEngine / StaticInferenceEngine (legacy static path, v0.12+ result order)."""

    def __init__(self, text_generation_controller, max_batch_size):
        self.controller = text_generation_controller
        self.scheduler = Scheduler(max_batch_size)
        self.batches = []                 # the request ids of each static batch, for the tests

    def generate(self, prompts, sampling_params):
        for prompt in prompts:
            tokens = self.controller.tokenize_prompt(prompt)
            self.scheduler.add_request(prompt, tokens, sampling_params)
        self.run_engine()
        done = self.scheduler.completed_request_pool
        return [done[k] for k in sorted(done, key=int)]          # v0.12+: ordered by request id

    def run_engine(self):
        while self.scheduler.have_requests_pending():
            active = self.scheduler.active_request_pool.copy()
            self.batches.append(list(active.keys()))
            result = self.controller.generate_all_output_tokens_static_batch(active)
            self.scheduler.update_requests_pools(result)


# ---------------------------------------------------------------------------------------------
# §1.5 TextGenerationController
# ---------------------------------------------------------------------------------------------

def greedy_choice(logits_row, vocab_size):
    """§1.5.4 top_k == 1: argmax of the raw logits, the lowest id on a tie, over the REAL ids
    [0, V) (mcrt's deviation; Megatron: [0, Vp)). Returns (id, top-1 minus top-2 gap)."""
    real = logits_row[:vocab_size]                                       # [V]
    best = real.max()
    idx = int(torch.nonzero(real == best)[0, 0])
    gap = float(best - real.topk(2).values[1]) if vocab_size > 1 else math.inf
    return idx, gap


class TextGenerationController:
    """§1.5 over `model` (MCoreGPT's interface) and `tokenizer`.

    log_prob_columns: None = log_softmax over the whole padded vocabulary [0, Vp) (Megatron,
    mcrt's compat megatron); an int C = over [0, C) only (what a sampler that normalises over
    the real vocabulary reports; the tests' toy-plugin mode uses it).
    """

    def __init__(self, model, tokenizer, log_prob_columns=None):
        self.model = model
        self.tokenizer = tokenizer
        self.vocab_size = model.cfg.vocab_size
        self.padded_vocab_size = model.cfg.padded_vocab_size
        self.log_prob_columns = log_prob_columns

    # §1.5.1 (v0.10-v0.16, add_BOS=False: the bytes tokenizer has no BOS)
    def tokenize_prompt(self, prompt):
        return self.tokenizer.tokenize(prompt)

    # §1.5.2
    def pad_input_prompt_tokens(self, batch_prompt_tokens, max_seq_len):
        eod = self.tokenizer.eod
        rows = [list(t) + [eod] * (max_seq_len - len(t)) for t in batch_prompt_tokens]
        return torch.tensor(rows, dtype=torch.int64)                     # [b, S]

    # §1.5.4
    def sample_from_logits(self, last_token_logits, sampling_params):
        """Greedy only (top_k == 1): mcrt's non-greedy sampling draws from its own RNG, which
        no PyTorch generator reproduces, so it is not transcribed here."""
        if sampling_params.top_k != 1:
            raise NotImplementedError("only greedy (top_k = 1) is transcribed")
        picks = [greedy_choice(row, self.vocab_size) for row in last_token_logits]
        sample = torch.tensor([p[0] for p in picks], dtype=torch.int64)  # [b]
        gaps = torch.tensor([p[1] for p in picks], dtype=torch.float64)  # [b]
        return sample, gaps

    def _token_log_probs(self, logits, next_tokens):
        """§1.5.5 out_lp entries: log_softmax(raw logits)[next token], logits [b, s, Vp],
        next_tokens [b, s] -> [b, s] float64."""
        if self.log_prob_columns is not None:
            logits = logits[..., :self.log_prob_columns]
        lp = torch.log_softmax(logits.to(torch.float64), dim=-1)          # [b, s, C]
        return lp.gather(2, next_tokens.unsqueeze(2)).squeeze(2)          # [b, s]

    def generate_all_output_tokens_static_batch(self, active_requests):
        """§1.5.3, the static batch loop (v0.9 through HEAD's legacy path; v0.13 slicing).
        Completes every request of `active_requests` and returns the dict."""
        requests = list(active_requests.values())
        params = requests[0].sampling_params        # §1.4: the first request's params for all
        N = params.num_tokens_to_generate
        eod = self.tokenizer.eod
        b = len(requests)
        lengths = torch.tensor([len(r.prompt_tokens) for r in requests], dtype=torch.int64)  # [b]
        if int(lengths.min()) < 1:
            raise ValueError("an empty prompt cannot run the static loop")
        Lmin, Lmax = int(lengths.min()), int(lengths.max())
        S = Lmax + N
        tokens = self.pad_input_prompt_tokens([r.prompt_tokens for r in requests], S)  # [b, S]
        done = torch.zeros(b, dtype=torch.bool)                           # [b]
        gen_len = torch.zeros(b, dtype=torch.int64)                       # [b]
        out_lp = torch.zeros((b, max(S - 1, 0)), dtype=torch.float64)     # [b, S-1]
        gaps = torch.full((b, S), math.inf, dtype=torch.float64)          # [b, S] per choice

        if N == 0:
            # HEAD: one forward over [0, Lmax) (causal) for the prompt log probs only.
            if params.return_log_probs and Lmax > 1:
                logits = self.model.forward(tokens[:, :Lmax])             # [b, Lmax, Vp]
                out_lp[:, :Lmax - 1] = self._token_log_probs(logits[:, :-1], tokens[:, 1:Lmax])
        else:
            cache = self.model.new_cache(b, S)            # prep_model_for_inference: empty cache
            start = 0
            for end in range(Lmin, S):
                # get_batch_for_context_window(start, end); positions arange, causal mask
                logits = self.model.forward(tokens[:, start:end], start, cache)  # [b, end-start, Vp]
                started = lengths <= end                                  # [b]
                sample, gap = self.sample_from_logits(logits[:, -1, :], params)  # [b], [b]
                tokens[started, end] = sample[started]   # rows inside their prompt keep it
                gaps[:, end] = gap
                if params.return_log_probs:
                    out_lp[:, start:end] = self._token_log_probs(logits, tokens[:, start + 1:end + 1])
                start = end
                # §1.5.6 update_generation_status
                latest = tokens[:, end]                                   # [b]
                done |= (latest == eod) & started
                gen_len += (~done & started).to(torch.int64)              # EOD is not counted
                if bool(done.all()):
                    break

        for i, req in enumerate(requests):
            L = int(lengths[i])
            req_len = min(int(gen_len[i]), N)
            ids = [int(t) for t in tokens[i, L:L + req_len]]              # EOD excluded
            req.generated_tokens = ids
            req.generated_length = req_len
            if params.return_log_probs:                                   # v0.13+ slices
                req.prompt_log_probs = [float(x) for x in out_lp[i, :L - 1]]
                req.generated_log_probs = [float(x) for x in out_lp[i, L - 1:L - 1 + req_len]]
            # §1.5.7 v0.13: text = detokenize(prompt + generation), generated_text = a character
            # slice by the prompt's length (= detokenize(generation) for a valid UTF-8 prompt).
            req.text = self.tokenizer.detokenize([int(t) for t in tokens[i, :L + req_len]])
            req.generated_text = req.text[len(req.prompt):]
            # mcrt's finish reason: eod when the row sampled EOD among its first N tokens.
            req.finish_reason = "eod" if bool(done[i]) and req_len < N else "length"
            # the choices this output depends on: positions L .. L + min(req_len + 1, N) - 1
            used = gaps[i, L:L + min(req_len + 1, N)]
            req.min_greedy_margin = float(used.min()) if used.numel() else math.inf
            req.status = COMPLETED
        return active_requests


def generate(model, prompts, num_tokens_to_generate, max_batch_size, return_log_probs=True,
             log_prob_columns=None, tokenizer=None):
    """Greedy static generation of `prompts`; returns (requests ordered by id, engine)."""
    controller = TextGenerationController(model, tokenizer or BytesTokenizer(), log_prob_columns)
    engine = StaticInferenceEngine(controller, max_batch_size)
    params = SamplingParams(top_k=1, return_log_probs=return_log_probs,
                            num_tokens_to_generate=num_tokens_to_generate)
    return engine.generate(prompts, params), engine


def batch_invariance(model, prompts, num_tokens_to_generate, log_prob_columns=None):
    """The §1.5.3 property: each row of one static batch equals its unbatched run. Raises
    AssertionError when the generated tokens / finish reasons differ; returns the largest log
    prob difference (float64 arithmetic: ~1e-14)."""
    batched, _ = generate(model, prompts, num_tokens_to_generate, len(prompts),
                          log_prob_columns=log_prob_columns)
    alone, _ = generate(model, prompts, num_tokens_to_generate, 1,
                        log_prob_columns=log_prob_columns)
    worst = 0.0
    for a, b in zip(batched, alone):
        assert a.generated_tokens == b.generated_tokens, \
            "row %s: batched %s, alone %s" % (a.request_id, a.generated_tokens, b.generated_tokens)
        assert a.finish_reason == b.finish_reason and a.generated_text == b.generated_text
        for x, y in zip(a.prompt_log_probs + a.generated_log_probs,
                        b.prompt_log_probs + b.generated_log_probs):
            worst = max(worst, abs(x - y))
    return worst


# ---------------------------------------------------------------------------------------------
# Fixtures (tools/reference/gpt/make_fixtures.py)
# ---------------------------------------------------------------------------------------------

def read_model_yaml(path):
    """The flat `model:` section of a fixture's config.yaml as [(key, raw value string)]."""
    items, in_model = [], False
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].rstrip()
            if not line:
                continue
            if not line.startswith(" "):
                in_model = line == "model:"
                continue
            if in_model:
                key, _, value = line.strip().partition(":")
                items.append((key.strip(), value.strip()))
    return items


def yaml_value(raw):
    if raw in ("true", "false"):
        return raw == "true"
    for conv in (int, float):
        try:
            return conv(raw)
        except ValueError:
            pass
    return raw


def fixture_model_section(fixture_dir, vocab_size=BytesTokenizer.vocab_size):
    """The fixture's model section for a pipeline with the bytes tokenizer: [(key, raw)].

    `vocab_size` becomes the tokenizer's (257) and `padded_vocab_size` the fixture's Vp (the
    rows of its embedding), with `make_vocab_size_divisible_by` dropped. The weights and so the
    logits are unchanged; ids [257, V) merely join the padding, which greedy never picks. Without
    this a fixture's greedy output would soon hold ids the bytes tokenizer cannot detokenize.
    `load` becomes the fixture dir's absolute path. Only fixtures with V >= 257 qualify.
    """
    import mcore_gpt as mg
    items = read_model_yaml(os.path.join(fixture_dir, "config.yaml"))
    args = {k: yaml_value(v) for k, v in items if k not in ("name", "load")}
    cfg = mg.GPTConfig.from_args(args)
    if cfg.vocab_size < vocab_size:
        raise ValueError("%s: vocab_size %d < the tokenizer's %d"
                         % (fixture_dir, cfg.vocab_size, vocab_size))
    out = []
    for k, v in items:
        if k in ("vocab_size", "padded_vocab_size", "make_vocab_size_divisible_by"):
            continue
        out.append((k, json.dumps(os.path.abspath(fixture_dir)) if k == "load" else v))
    out += [("vocab_size", str(vocab_size)), ("padded_vocab_size", str(cfg.padded_vocab_size))]
    return out


def fixture_model(fixture_dir, vocab_size=BytesTokenizer.vocab_size, dtype=None):
    """MCoreGPT over the fixture's weights (bf16/fp16 upcast exactly) with the model section of
    fixture_model_section(), in float64 by default."""
    import mcore_gpt as mg
    import safetensors_io as st
    section = fixture_model_section(fixture_dir, vocab_size)
    args = {k: yaml_value(v) for k, v in section if k not in ("name", "load")}
    weights, _ = st.read(os.path.join(fixture_dir, "model.safetensors"))
    return mg.MCoreGPT(mg.GPTConfig.from_args(args), weights, dtype=dtype or torch.float64)


# ---------------------------------------------------------------------------------------------
# Self-test
# ---------------------------------------------------------------------------------------------

class _CounterConfig:
    def __init__(self, vocab_size, padded_vocab_size):
        self.vocab_size = vocab_size
        self.padded_vocab_size = padded_vocab_size


class CounterModel:
    """The toy `counter` model (tests/plugins/toy/README.md) behind MCoreGPT's interface, its
    logits from tools/reference/toy_counter.py (another author's transcription). Its "cache" is
    the sequences so far, so a wrong start position or a skipped token shows up in the logits."""

    def __init__(self, eod_at_length=0, vocab_size=257, padded_vocab_size=264):
        self.cfg = _CounterConfig(vocab_size, padded_vocab_size)
        self.eod_at_length = eod_at_length

    def new_cache(self, batch, max_len):
        return {"seqs": [[] for _ in range(batch)], "max_len": max_len}

    def forward(self, tokens, start_pos=0, cache=None):
        import toy_counter
        tokens = torch.as_tensor(tokens, dtype=torch.int64)
        b, s = tokens.shape
        seqs = cache["seqs"] if cache is not None else [[] for _ in range(b)]
        out = torch.full((b, s, self.cfg.padded_vocab_size), -1e4, dtype=torch.float64)
        for i in range(b):
            assert len(seqs[i]) == start_pos, \
                "forward at %d after %d tokens" % (start_pos, len(seqs[i]))
            for j in range(s):
                seqs[i].append(int(tokens[i, j]))
                assert len(seqs[i]) <= (cache["max_len"] if cache else s)
                row = toy_counter.counter_logits(seqs[i], self.cfg.vocab_size, self.eod_at_length)
                out[i, j, :self.cfg.vocab_size] = torch.tensor(row, dtype=torch.float64)
        return out


def _counter_prompt_log_probs(prompt_ids, eod_at_length):
    """log p(prompt[j+1] | prompt[:j+1]) of the counter model, by hand (real + padding ids)."""
    import toy_counter
    out = []
    for j in range(len(prompt_ids) - 1):
        row = toy_counter.counter_logits(prompt_ids[:j + 1], 257, eod_at_length) + [-1e4] * 7
        m = max(row)
        z = sum(math.exp(x - m) for x in row)
        out.append(row[prompt_ids[j + 1]] - m - math.log(z))
    return out


def self_test(fixtures=None, out=sys.stdout):
    """The loop, scheduler and slicing against tools/reference/toy_counter.py (the toy counter
    model through Megatron's static loop must give what the toy pipeline gives, row by row);
    batched vs alone; N = 0; detokenization; and, given a fixtures dir, the fixtures batched vs
    alone and against mcore_gpt.greedy_cached."""
    import toy_counter
    tok = BytesTokenizer()

    # Detokenization (tests/plugins/toy/README.md).
    assert tok.detokenize([0xE2, 256, 0x82]) == "\ufffd<|endoftext|>\ufffd"
    assert tok.detokenize(tok.tokenize("w\u00f6rld \u4e16")) == "w\u00f6rld \u4e16"

    # Scheduler: static batches of <= max_batch_size in arrival order, results by id.
    prompts = ["Hi", "abc", "x" * 9, "hello world", "\u00e9t\u00e9", "q", "The quick brown fox"]
    reqs, engine = generate(CounterModel(), prompts, 5, 3)
    assert engine.batches == [["0", "1", "2"], ["3", "4", "5"], ["6"]], engine.batches
    assert [r.request_id for r in reqs] == [str(i) for i in range(len(prompts))]
    assert all(r.status == COMPLETED for r in reqs)

    # The loop against toy_counter, with and without eod, several N and batch sizes.
    checked = 0
    for eod_at in (0, 4, 9, 13, 30):
        for N in (0, 1, 5, 16):
            for B in (1, 3, 7):
                reqs, _ = generate(CounterModel(eod_at), prompts, N, B)
                for r in reqs:
                    want = toy_counter.generate(r.prompt.encode("utf-8"), N, eod_at_length=eod_at)
                    where = "counter eod_at %d N %d B %d %r" % (eod_at, N, B, r.prompt)
                    assert r.generated_tokens == want["tokens"], \
                        "%s: %s vs %s" % (where, r.generated_tokens, want["tokens"])
                    assert r.finish_reason == want["finish_reason"], where
                    assert r.generated_text == want["text"], where
                    assert r.generated_text == tok.detokenize(r.generated_tokens), where
                    assert len(r.generated_log_probs) == len(want["logprobs"]), where
                    for a, b in zip(r.generated_log_probs, want["logprobs"]):
                        assert abs(a - b) < 1e-12, "%s: log prob %r vs %r" % (where, a, b)
                    ids = tok.tokenize(r.prompt)
                    assert len(r.prompt_log_probs) == len(ids) - 1, where
                    for a, b in zip(r.prompt_log_probs, _counter_prompt_log_probs(ids, eod_at)):
                        assert abs(a - b) < 1e-12, "%s: prompt log prob %r vs %r" % (where, a, b)
                    checked += 1
    # eod sampled only after N tokens (a short row runs on in a batch with a longer prompt):
    # "length", N tokens; also when it is exactly the (N+1)-th token.
    for n in (3, 7):
        reqs, _ = generate(CounterModel(9), ["ab", "x" * 20], n, 2)
        assert reqs[0].generated_length == n and reqs[0].finish_reason == "length", n
    reqs, _ = generate(CounterModel(9), ["ab", "x" * 20], 12, 2)
    assert reqs[0].generated_length == 7 and reqs[0].finish_reason == "eod", reqs[0].generated_tokens
    # An EOD inside a prompt (a tokenizer that maps '~' to it) does not end a row still in its
    # prompt: done needs `started`.
    class TildeEod(BytesTokenizer):
        def tokenize(self, text):
            return [self.eod if c == ord("~") else c for c in text.encode("utf-8")]
    reqs, _ = generate(CounterModel(), ["a", "b~~c"], 4, 2, tokenizer=TildeEod())
    assert [r.generated_length for r in reqs] == [4, 4], [r.generated_tokens for r in reqs]
    print("self-test: counter model through the static loop = toy_counter.py (%d requests)"
          % checked, file=out)

    if fixtures is None:
        return
    import mcore_gpt as mg
    rows = []
    for sub in ("gpt2/fp32", "llama/fp32", "squared_relu/fp32", "kv_channels/fp32",
                "rope_interleaved_qkln/fp32", "gelu_erf/fp32"):
        d = os.path.join(fixtures, sub)
        if not os.path.isdir(d):
            continue
        model = fixture_model(d)
        fx_prompts = ["a", "Hello, world", "w\u00f6rld \u4e16\u754c", "x" * 33]
        worst = batch_invariance(model, fx_prompts, 12)
        assert worst < 1e-9, "%s: batched vs alone log probs differ by %g" % (sub, worst)
        # each row against mcore_gpt's own KV-cached greedy (prefill whole, then decode)
        reqs, _ = generate(model, fx_prompts, 12, len(fx_prompts))
        for r in reqs:
            _, _, toks = mg.greedy_cached(model, [tok.tokenize(r.prompt)], 12)
            toks = [int(t) for t in toks[0][:12]]
            if tok.eod in toks:
                toks = toks[:toks.index(tok.eod)]
            assert r.generated_tokens == toks, \
                "%s %r: %s vs %s" % (sub, r.prompt, r.generated_tokens, toks)
        rows.append("%s %.1e" % (sub.split("/")[0], worst))
    print("self-test: fixtures batched = alone = greedy_cached (max |d log p|: %s)"
          % ", ".join(rows), file=out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fixture", help="a fixture dir (<config>/<variant>) to generate with")
    ap.add_argument("-n", "--num-tokens-to-generate", type=int, default=16)
    ap.add_argument("--max-batch-size", type=int, default=8)
    ap.add_argument("--return-log-probs", action="store_true")
    ap.add_argument("--prompts", nargs="+", default=[])
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--fixtures", help="with --self-test: also check these fixtures")
    a = ap.parse_args(argv)
    if not HAVE_TORCH:
        print("megatron_static.py: python3-torch is not installed")
        return 77
    torch.set_num_threads(1)
    if a.self_test:
        self_test(a.fixtures)
        return 0
    if not a.fixture or not a.prompts:
        ap.error("--fixture and --prompts are needed (or --self-test)")
    reqs, _ = generate(fixture_model(a.fixture), a.prompts, a.num_tokens_to_generate,
                       a.max_batch_size, a.return_log_probs)
    for r in reqs:
        print(json.dumps(r.as_mcrt_json(), ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
