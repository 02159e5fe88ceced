#!/usr/bin/python3
"""tests/checkpoint/make_fixtures.py OUTDIR: safetensors fixtures and the
values mcrt must read from them, computed independently of mcrt.

The files are written by hand from the safetensors spec (struct + json, the
header padded with spaces to 8 bytes like the reference writer); values come
from numpy, and every dtype conversion from torch (`.to(dtype)`, round to
nearest even) or numpy (float32 -> float16). Written:

  single.safetensors          every dtype mcrt reads, specials, scalar, empty
  folder/model.safetensors    the same file, opened through its folder
  sharded/                    the same tensors in 3 shards + index.json
  expect.bin                  expected bytes of every case, back to back
  manifest.tsv                one case per line:
      name  dim  start  len  dtype  offset  nbytes  nan_aware
  (nan_aware = 1: compare bytes except where both sides are NaN)

Exit 77 (skip) when numpy or torch is missing.
"""
import json
import os
import struct
import sys

try:
    import numpy as np
    import torch
except ImportError as e:  # pragma: no cover
    print(f"make_fixtures: {e}; skipping", file=sys.stderr)
    sys.exit(77)

ST_NAME = {  # safetensors dtype names
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": None,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U8": np.uint8, "BOOL": np.bool_,
}
TORCH = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16}
FLOATS = ("F32", "F16", "BF16")


class T:
    """A tensor: stored dtype name and the stored values (BF16: uint16 bits)."""

    def __init__(self, dtype, arr):
        self.dtype = dtype
        self.arr = np.ascontiguousarray(arr)
        if dtype == "BF16":
            assert self.arr.dtype == np.uint16
        else:
            assert self.arr.dtype == ST_NAME[dtype], (dtype, self.arr.dtype)

    def raw(self):
        return self.arr.astype(self.arr.dtype.newbyteorder("<"), copy=False).tobytes()


def write_safetensors(path, tensors, metadata=None):
    """The format, from the spec: u64 LE header length, JSON, data."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    blobs, off = [], 0
    for name, t in tensors.items():
        b = t.raw()
        header[name] = {"dtype": t.dtype, "shape": list(t.arr.shape),
                        "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)  # the reference writer's padding
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def to_torch(t):
    if t.dtype == "BF16":
        return torch.from_numpy(t.arr.view(np.int16).copy()).view(torch.bfloat16)
    return torch.from_numpy(t.arr.copy())


def converted(t, values, dst):
    """values (numpy, stored dtype; BF16 as uint16 bits) converted to dst, as bytes."""
    if dst == t.dtype:
        return np.ascontiguousarray(values).tobytes()
    assert t.dtype in FLOATS and dst in FLOATS
    if t.dtype == "F32" and dst == "F16":  # numpy: an implementation other than torch's
        with np.errstate(over="ignore"):  # overflow to infinity is the expected result
            return np.ascontiguousarray(values).astype(np.float16).tobytes()
    src = to_torch(T(t.dtype, np.ascontiguousarray(values)))
    out = src.to(TORCH[dst])
    if dst == "BF16":
        return out.view(torch.int16).numpy().tobytes()
    return out.numpy().tobytes()


def special_f32():
    vals = [0.0, -0.0, 1.0, -1.0, 65504.0, 65519.99, 65520.0, -65520.0, 1e-8, 2.0 ** -25,
            2.0 ** -25 * (1 + 2 ** -23), 2.0 ** -24, 3 * 2.0 ** -25, 6e-8, 6.1e-5, 2.0 ** -14,
            2.0 ** -14 - 2.0 ** -24, 3.4e38, -3.4e38, np.inf, -np.inf, np.nan, -np.nan,
            1 + 2.0 ** -11, 1 + 3 * 2.0 ** -11, 1 + 2.0 ** -8, 1 + 3 * 2.0 ** -8, 1e-40, -1e-45]
    a = np.array(vals, dtype=np.float32)
    bits = np.array([0x3f808000, 0x3f818000, 0x7f7fffff, 0x7f7f8000, 0x7f7f7fff, 0x00008000,
                     0x80018000, 0x7fa00001, 0xffc00000, 0x477ff000, 0x477fefff, 0x33800000,
                     0x33000001], dtype=np.uint32).view(np.float32)
    rng = np.random.default_rng(7)
    rnd = rng.integers(0, 2 ** 32, size=4000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    # many values near the f16 range, where rounding is interesting
    near = (rng.standard_normal(2000) * np.float32(10.0) ** rng.uniform(-9, 5, 2000)).astype(np.float32)
    ties = (rng.integers(0, 2 ** 16, 1000, dtype=np.uint64).astype(np.uint32) << 16 | 0x8000).view(np.float32)
    return np.concatenate([a, bits, rnd, near, ties]).astype(np.float32)


def build():
    rng = np.random.default_rng(1234)
    ts = {}
    ts["f32.a"] = T("F32", rng.standard_normal((3, 4, 5)).astype(np.float32))
    ts["f32.4d"] = T("F32", rng.standard_normal((2, 3, 4, 5)).astype(np.float32) * 100)
    ts["f32.big"] = T("F32", rng.standard_normal((64, 48)).astype(np.float32))
    ts["f32.special"] = T("F32", special_f32())
    ts["f16.a"] = T("F16", (rng.standard_normal((7, 3)) * 10).astype(np.float16))
    ts["f16.all"] = T("F16", np.arange(65536, dtype=np.uint32).astype(np.uint16)
                      .view(np.float16).reshape(256, 256))
    ts["bf16.a"] = T("BF16", torch.randn(5, 6, generator=torch.Generator().manual_seed(5))
                     .to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16))
    ts["bf16.all"] = T("BF16", np.arange(65536, dtype=np.uint32).astype(np.uint16).reshape(256, 256))
    ts["f64.a"] = T("F64", rng.standard_normal((2, 3)))
    ts["i64.a"] = T("I64", np.array([-(2 ** 63), -1, 0, 2 ** 63 - 1], dtype=np.int64))
    ts["i32.a"] = T("I32", np.arange(24, dtype=np.int32).reshape(2, 3, 4) - 7)
    ts["i16.a"] = T("I16", np.array([-32768, -1, 0, 1, 32767], dtype=np.int16))
    ts["i8.a"] = T("I8", np.array([-128, -5, 0, 5, 100, 127], dtype=np.int8))
    ts["u8.a"] = T("U8", np.arange(9, dtype=np.uint8).reshape(3, 3) * 28)
    ts["bool.a"] = T("BOOL", np.array([True, False, False, True]))
    ts["scalar"] = T("F32", np.array(3.5, dtype=np.float32))
    ts["empty"] = T("F32", np.zeros((0, 4), dtype=np.float32))
    ts["empty.mid"] = T("BF16", np.zeros((3, 0, 2), dtype=np.uint16))
    ts["\u00fcnicode.\u00e9.weight"] = T("F32", np.array([1.5, -2.5], dtype=np.float32))
    return ts


def cases(name, t):
    """(dim, start, len) triples: the whole tensor, and slices along every dim."""
    out = [(-1, 0, 0)]
    for d, n in enumerate(t.arr.shape):
        picks = {(0, n), (0, 0), (n, 0)}
        if n >= 1:
            picks |= {(0, 1), (n - 1, 1)}
        if n >= 3:
            picks |= {(1, n - 2), (n // 2, n - n // 2)}
        if name in ("f32.big", "f16.all", "bf16.all") and n >= 8:
            picks |= {(n // 4 * k, n // 4) for k in range(4)}  # a 4-way tensor-parallel split
        out += [(d, s, l) for (s, l) in sorted(picks)]
    return out


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    ts = build()
    write_safetensors(os.path.join(out, "single.safetensors"), ts, {"format": "pt", "writer": "make_fixtures.py"})
    write_safetensors(os.path.join(out, "folder", "model.safetensors"), ts)

    names = list(ts)
    shards = [names[0::3], names[1::3], names[2::3]]
    weight_map = {}
    for i, group in enumerate(shards):
        fn = f"model-{i + 1:05d}-of-00003.safetensors"
        write_safetensors(os.path.join(out, "sharded", fn), {n: ts[n] for n in group}, {"format": "pt"})
        for n in group:
            weight_map[n] = fn
    with open(os.path.join(out, "sharded", "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": sum(len(t.raw()) for t in ts.values())},
                   "weight_map": weight_map}, f, indent=2)

    lines, blob = [], bytearray()
    for name, t in ts.items():
        targets = FLOATS if t.dtype in FLOATS else (t.dtype,)
        for dim, start, ln in cases(name, t):
            vals = t.arr if dim < 0 else np.take(t.arr, range(start, start + ln), axis=dim)
            for dst in targets:
                b = converted(t, vals, dst)
                nan_aware = 1 if (t.dtype in FLOATS and dst != t.dtype) else 0
                lines.append(f"{name}\t{dim}\t{start}\t{ln}\t{dst}\t{len(blob)}\t{len(b)}\t{nan_aware}")
                blob += b
    with open(os.path.join(out, "expect.bin"), "wb") as f:
        f.write(blob)
    with open(os.path.join(out, "manifest.tsv"), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"make_fixtures: {len(ts)} tensors, {len(lines)} cases, {len(blob)} expected bytes")


if __name__ == "__main__":
    main()
