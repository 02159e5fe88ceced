"""Byte-level BPE in GPT-2's file format: a trainer and an encoder/decoder, standard library only.

The encoder follows OpenAI's GPT-2 `encoder.py` (the algorithm mcrt's `gpt2-bpe` plugin
implements, docs/tokenizer.md "Behaviour"):

1. pre-tokenize with GPT-2's pattern
   's|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+
   Python's `re` has no \\p{..}, so the classes are spelled out from `unicodedata` once
   (L* and N* general categories; \\s = the White_Space property: Z* plus U+0009..U+000D and
   U+0085, as the `regex` module that encoder.py uses has it);
2. map each UTF-8 byte to GPT-2's printable symbol (`bytes_to_unicode`);
3. repeatedly merge every occurrence of the adjacent pair with the lowest rank;
4. look the symbols up in vocab.json.

The trainer counts words (pre-tokenized pieces) once, then learns merges with incremental
pair counts: a count per pair, an index pair -> words holding it, and a max-heap with lazy
deletion. Each merge touches only the words that contain its pair. Ties between equally
frequent pairs go to the smallest (left id, right id), so a run is deterministic.

    from bpe import train_bpe, BPETokenizer
    merges = train_bpe(word_counts, num_merges)          # word_counts: {str piece: count}
    write_gpt2_files(merges, "vocab.json", "merges.txt") # ids: 256 bytes, merges, <|endoftext|>
    tok = BPETokenizer.from_files("vocab.json", "merges.txt")
    ids = tok.encode("Hello world"); text = tok.decode(ids)

Run as a script for a self-check on a small text: `/usr/bin/python3 tools/train_demo/bpe.py`.
"""

import collections
import heapq
import json
import re
import sys
import unicodedata

END_OF_TEXT = "<|endoftext|>"


def bytes_to_unicode():
    """GPT-2's byte -> printable character map: printable Latin-1 bytes map to themselves,
    the other 68 bytes to U+0100 onwards, in byte order."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) \
        + list(range(0xAE, 0xFF + 1))
    chars = list(keep)
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(keep, chars)}


BYTE_TO_SYMBOL = bytes_to_unicode()
SYMBOL_TO_BYTE = {s: b for b, s in BYTE_TO_SYMBOL.items()}


def _char_class(predicate):
    """A `re` character-class body for every code point where predicate(category, cp) holds."""
    ranges = []
    start = None
    for cp in range(0x110000 + 1):
        inside = cp <= 0x10FFFF and not (0xD800 <= cp <= 0xDFFF) \
            and predicate(unicodedata.category(chr(cp)), cp)
        if inside and start is None:
            start = cp
        elif not inside and start is not None:
            ranges.append((start, cp - 1))
            start = None

    def esc(cp):
        return "\\U%08x" % cp

    return "".join(esc(a) if a == b else "%s-%s" % (esc(a), esc(b)) for a, b in ranges)


def _gpt2_pattern():
    """GPT-2's pre-tokenizer regex with \\p{L}, \\p{N} and \\s spelled out for Python's `re`."""
    letters = _char_class(lambda cat, cp: cat.startswith("L"))
    numbers = _char_class(lambda cat, cp: cat.startswith("N"))
    spaces = _char_class(lambda cat, cp: cat.startswith("Z") or 0x09 <= cp <= 0x0D or cp == 0x85)
    return re.compile(
        "'s|'t|'re|'ve|'m|'ll|'d"
        "| ?[{L}]+| ?[{N}]+| ?[^{S}{L}{N}]+"
        "|[{S}]+(?![^{S}])|[{S}]+".format(L=letters, N=numbers, S=spaces))


_PATTERN = None


def pretokenize(text):
    """GPT-2's pre-tokenization of a str: the list of pieces (they concatenate back to text)."""
    global _PATTERN
    if _PATTERN is None:
        _PATTERN = _gpt2_pattern()
    return _PATTERN.findall(text)


def piece_symbols(piece):
    """A piece as a string of GPT-2 byte symbols (its UTF-8 bytes, mapped)."""
    return "".join(BYTE_TO_SYMBOL[b] for b in piece.encode("utf-8"))


def count_words(texts):
    """{piece in byte symbols: count} over an iterable of str."""
    counts = collections.Counter()
    for text in texts:
        counts.update(pretokenize(text))
    return {piece_symbols(p): n for p, n in counts.items()}


def train_bpe(word_counts, num_merges, log=None):
    """Learn up to num_merges merges from {word in byte symbols: count}.

    Returns [(left symbol str, right symbol str)] in rank order. Symbols are numbered as the
    vocabulary will number them: bytes 0..255 in GPT-2's order (byte value), then merges."""
    symbols = [BYTE_TO_SYMBOL[b] for b in range(256)]            # id -> symbol string
    symbol_id = {s: i for i, s in enumerate(symbols)}
    words = []                                                   # [list of ids]
    freqs = []
    for word, n in sorted(word_counts.items()):
        words.append([symbol_id[c] for c in word])
        freqs.append(n)

    pair_count = collections.defaultdict(int)
    pair_words = collections.defaultdict(set)
    for w, (ids, n) in enumerate(zip(words, freqs)):
        for pair in zip(ids, ids[1:]):
            pair_count[pair] += n
            pair_words[pair].add(w)
    heap = [(-n, pair) for pair, n in pair_count.items()]
    heapq.heapify(heap)

    merges = []
    while len(merges) < num_merges and heap:
        neg, pair = heapq.heappop(heap)
        if pair_count.get(pair, 0) != -neg or -neg <= 0:
            continue                                             # stale heap entry
        left, right = pair
        new_id = len(symbols)
        symbols.append(symbols[left] + symbols[right])
        merges.append((symbols[left], symbols[right]))
        changed = set()
        for w in pair_words.pop(pair, ()):
            ids, n = words[w], freqs[w]
            for p in zip(ids, ids[1:]):                          # take the old pairs out
                pair_count[p] -= n
                changed.add(p)
            merged = []
            i = 0
            while i < len(ids):
                if i + 1 < len(ids) and ids[i] == left and ids[i + 1] == right:
                    merged.append(new_id)
                    i += 2
                else:
                    merged.append(ids[i])
                    i += 1
            words[w] = merged
            for p in zip(merged, merged[1:]):                    # and the new ones in
                pair_count[p] += n
                pair_words[p].add(w)
                changed.add(p)
        pair_count.pop(pair, None)
        changed.discard(pair)
        for p in changed:
            n = pair_count.get(p, 0)
            if n > 0:
                heapq.heappush(heap, (-n, p))
            else:
                pair_count.pop(p, None)
        if log and len(merges) % 1000 == 0:
            log("bpe: %d merges (last %r + %r, count %d)"
                % (len(merges), symbols[left], symbols[right], -neg))
    return merges


def write_gpt2_files(merges, vocab_path, merges_path):
    """vocab.json (256 bytes in byte order, the merges, then <|endoftext|>) and merges.txt."""
    vocab = {}
    for b in range(256):
        vocab[BYTE_TO_SYMBOL[b]] = len(vocab)
    for left, right in merges:
        vocab[left + right] = len(vocab)
    vocab[END_OF_TEXT] = len(vocab)
    with open(vocab_path, "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(merges_path, "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n")
        for left, right in merges:
            f.write("%s %s\n" % (left, right))
    return vocab


class BPETokenizer:
    """GPT-2's encoder.py over a vocab.json + merges.txt pair (str in, ids out, and back)."""

    def __init__(self, vocab, merges):
        self.encoder = vocab                                     # symbol str -> id
        self.decoder = {i: s for s, i in vocab.items()}
        self.ranks = {pair: r for r, pair in enumerate(merges)}
        self.eod = vocab.get(END_OF_TEXT, -1)
        self.cache = {}

    @classmethod
    def from_files(cls, vocab_path, merges_path):
        with open(vocab_path, encoding="utf-8") as f:
            vocab = json.load(f)
        merges = []
        with open(merges_path, encoding="utf-8") as f:
            for n, line in enumerate(f):
                line = line.rstrip("\r\n")
                if n == 0 and line.startswith("#version"):
                    continue
                if line:
                    left, right = line.split(" ")
                    merges.append((left, right))
        return cls(vocab, merges)

    def __len__(self):
        return len(self.encoder)

    def bpe(self, word):
        """One piece (byte symbols) -> its list of BPE symbols."""
        cached = self.cache.get(word)
        if cached is not None:
            return cached
        parts = list(word)
        while len(parts) > 1:
            best = min(zip(parts, parts[1:]), key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            merged = []
            i = 0
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == best[0] and parts[i + 1] == best[1]:
                    merged.append(best[0] + best[1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        if len(self.cache) < 200000:
            self.cache[word] = parts
        return parts

    def encode(self, text):
        """str -> token ids (no special tokens are parsed: <|endoftext|> in text is plain text)."""
        ids = []
        for piece in pretokenize(text):
            ids.extend(self.encoder[s] for s in self.bpe(piece_symbols(piece)))
        return ids

    def token_bytes(self, token_id):
        """The raw bytes of one token (<|endoftext|> gives its text)."""
        if token_id == self.eod:
            return END_OF_TEXT.encode("utf-8")
        return bytes(SYMBOL_TO_BYTE[c] for c in self.decoder[token_id])

    def decode(self, ids):
        """ids -> str, invalid UTF-8 repaired as bytes.decode(errors='replace')."""
        return b"".join(self.token_bytes(i) for i in ids).decode("utf-8", errors="replace")


def _self_check():
    text = ("The quick brown fox jumps over the lazy dog. It's 2024; we'll see what they've "
            "done.  Spaces   here\n\nand tabs\there. Caf\u00e9 na\u00efve \u4e16\u754c 123 456!\n") * 20
    merges = train_bpe(count_words([text]), 200)
    tok = BPETokenizer({**{BYTE_TO_SYMBOL[b]: b for b in range(256)},
                        **{l + r: 256 + i for i, (l, r) in enumerate(merges)}}, merges)
    ids = tok.encode(text)
    assert tok.decode(ids) == text
    assert "".join(pretokenize("a   b  ")) == "a   b  "
    assert pretokenize("a   b") == ["a", "  ", " b"]
    assert pretokenize("It's") == ["It", "'s"] and pretokenize("IT'S") == ["IT", "'", "S"]
    print("bpe self-check: %d merges, %d bytes -> %d tokens, round trip ok"
          % (len(merges), len(text.encode()), len(ids)))


if __name__ == "__main__":
    sys.exit(_self_check())
