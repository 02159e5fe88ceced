"""A small, dependency-free safetensors writer and reader (torch tensors in and out).

The format (https://huggingface.co/docs/safetensors, "Format"):

    [ 8 bytes ]  N, the header length, unsigned 64-bit little-endian
    [ N bytes ]  a UTF-8 JSON object:
                   {"__metadata__": {str: str, ...},            (optional)
                    "<tensor name>": {"dtype": "F32", "shape": [d0, d1, ...],
                                      "data_offsets": [begin, end]}, ...}
                 padded at the end with spaces (0x20) so the data starts on an
                 8-byte boundary (what the reference implementation does too)
    [ rest ]     the tensors' raw bytes, row-major, little-endian; data_offsets
                 are relative to the start of this section, contiguous, without
                 gaps or overlaps

The writer is deterministic: tensors are laid out in the order given, the JSON
is written without whitespace and with keys in insertion order, so the same
tensors give the same bytes. The test suite checks it against an independent
reader (tests/reference/test_reference.py), not against this one.
"""

import json
import struct

import numpy as np
import torch

# safetensors dtype name -> (torch dtype, little-endian numpy dtype used for the bytes)
# bf16 has no numpy dtype: its 16 bits travel as little-endian int16.
DTYPES = {
    "F64": (torch.float64, "<f8"),
    "F32": (torch.float32, "<f4"),
    "F16": (torch.float16, "<f2"),
    "BF16": (torch.bfloat16, "<i2"),
    "I64": (torch.int64, "<i8"),
    "I32": (torch.int32, "<i4"),
    "I16": (torch.int16, "<i2"),
    "I8": (torch.int8, "i1"),
    "U8": (torch.uint8, "u1"),
    "BOOL": (torch.bool, "u1"),
}
_NAME_OF = {torch_dtype: name for name, (torch_dtype, _) in DTYPES.items()}


def tensor_bytes(t):
    """Row-major little-endian bytes of a torch tensor (any dtype in DTYPES)."""
    name = _NAME_OF[t.dtype]
    t = t.detach().contiguous().cpu()
    if name == "BF16":
        t = t.view(torch.int16)
    elif name == "BOOL":
        t = t.to(torch.uint8)
    return t.numpy().astype(DTYPES[name][1], copy=False).tobytes()


def encode(tensors, metadata=None):
    """The bytes of a safetensors file holding `tensors` ({name: torch tensor}, in order)."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks = []
    offset = 0
    for name, t in tensors.items():
        if name == "__metadata__":
            raise ValueError("'__metadata__' is reserved and cannot name a tensor")
        data = tensor_bytes(t)
        header[name] = {
            "dtype": _NAME_OF[t.dtype],
            "shape": [int(d) for d in t.shape],
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    head = json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("utf-8")
    head += b" " * (-(8 + len(head)) % 8)
    return struct.pack("<Q", len(head)) + head + b"".join(chunks)


def write(path, tensors, metadata=None):
    """Write `tensors` ({name: torch tensor}) to `path` as safetensors."""
    blob = encode(tensors, metadata)
    with open(path, "wb") as f:
        f.write(blob)


def read(path):
    """Read a safetensors file. Returns (tensors {name: torch tensor}, metadata {str: str})."""
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError("%s: shorter than the 8-byte header length" % path)
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        raise ValueError("%s: header length %d runs past the end of the file" % (path, n))
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    data = blob[8 + n:]
    metadata = header.pop("__metadata__", {}) or {}
    tensors = {}
    for name, info in header.items():
        torch_dtype, np_dtype = DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        shape = [int(d) for d in info["shape"]]
        count = 1
        for d in shape:
            count *= d
        if not (0 <= begin <= end <= len(data)) or end - begin != count * np.dtype(np_dtype).itemsize:
            raise ValueError("%s: tensor %s: data_offsets %s do not match dtype %s shape %s"
                             % (path, name, [begin, end], info["dtype"], shape))
        arr = np.frombuffer(data, dtype=np_dtype, count=count, offset=begin).copy().reshape(shape)
        t = torch.from_numpy(arr)
        if info["dtype"] == "BF16":
            t = t.view(torch.bfloat16)
        elif info["dtype"] == "BOOL":
            t = t.to(torch.bool)
        tensors[name] = t
    return tensors, metadata
