"""Stand-ins for classes a Megatron checkpoint's pickles name but Debian's torch 1.13 lacks.

A pickle names a class by module and qualified name (GLOBAL 'module name'); the Python pickler
checks that `sys.modules[module].name` is the very object it is saving. The classes below carry
the real names (`megatron.core.transformer.enums.AttnBackend`,
`torch.distributed.checkpoint.metadata.Metadata`, ...), and `registered()` puts them into
sys.modules under those names only while a pickle is being written, then restores sys.modules.
So the bytes written are those the real classes would give: same GLOBALs, same NEWOBJ/BUILD
state (dataclass __dict__, or the tuple TensorProperties.__getstate__ returns), same enum
REDUCE (class, (value,)).

Field lists follow PyTorch's torch/distributed/checkpoint/{metadata,planner,filesystem}.py of
the 2.5-2.7 era (Metadata with storage_meta and version, _StorageInfo without the
transform_descriptors key when it is None) and Megatron-Core's AttnBackend (core 0.11+).
Only the writer (make_megatron_ckpts.py) uses this module; the checker has its own loaders.
"""

import contextlib
import enum
import sys
import types
from dataclasses import dataclass, field
from typing import Any, List, Optional

import torch

DCP = "torch.distributed.checkpoint"
DCP_METADATA = DCP + ".metadata"
DCP_PLANNER = DCP + ".planner"
DCP_FILESYSTEM = DCP + ".filesystem"
MEGATRON_ENUMS = "megatron.core.transformer.enums"


def _named(module, cls):
    cls.__module__ = module
    return cls


# --- megatron/core/transformer/enums.py -------------------------------------------------------

class AttnBackend(enum.Enum):
    """megatron.core.transformer.enums.AttnBackend (the --attention-backend argument)."""
    flash = 1
    fused = 2
    unfused = 3
    local = 4
    auto = 5


_named(MEGATRON_ENUMS, AttnBackend)


# --- torch/distributed/checkpoint/metadata.py ---------------------------------------------------

@dataclass
class ChunkStorageMetadata:
    offsets: torch.Size
    sizes: torch.Size


class _MEM_FORMAT_ENCODING(enum.Enum):
    TORCH_CONTIGUOUS_FORMAT = 0
    TORCH_CHANNELS_LAST = 1
    TORCH_PRESERVE_FORMAT = 2


@dataclass
class TensorProperties:
    dtype: torch.dtype = torch.float32
    layout: torch.layout = torch.strided
    requires_grad: bool = False
    memory_format: torch.memory_format = torch.contiguous_format
    pin_memory: bool = False

    def __getstate__(self):
        # as PyTorch's: torch.memory_format cannot be pickled, so an enum stands for it
        assert self.memory_format == torch.contiguous_format
        return (self.dtype, self.layout, self.requires_grad,
                _MEM_FORMAT_ENCODING.TORCH_CONTIGUOUS_FORMAT, self.pin_memory)


@dataclass
class TensorStorageMetadata:
    properties: TensorProperties
    size: torch.Size
    chunks: List[ChunkStorageMetadata]


@dataclass
class BytesStorageMetadata:
    pass


@dataclass
class StorageMeta:
    checkpoint_id: Any = None
    save_id: Optional[str] = None
    load_id: Optional[str] = None
    modules: List[str] = field(default_factory=list)


@dataclass
class Metadata:
    state_dict_metadata: dict
    planner_data: Any = None
    storage_data: Any = None
    storage_meta: Optional[StorageMeta] = None
    version: Optional[str] = None


@dataclass(frozen=True)
class MetadataIndex:
    fqn: str
    offset: Optional[torch.Size] = None
    index: Optional[int] = field(hash=False, compare=False, default=None)

    def __init__(self, fqn, offset=None, index=None):
        # PyTorch's own __init__: `offset` only lands in __dict__ when given
        object.__setattr__(self, "fqn", fqn)
        object.__setattr__(self, "index", index)
        if offset is not None:
            object.__setattr__(self, "offset", torch.Size(offset))


for _c in (ChunkStorageMetadata, _MEM_FORMAT_ENCODING, TensorProperties, TensorStorageMetadata,
           BytesStorageMetadata, StorageMeta, Metadata, MetadataIndex):
    _named(DCP_METADATA, _c)


# --- torch/distributed/checkpoint/planner.py ----------------------------------------------------

class WriteItemType(enum.Enum):
    TENSOR = 1
    SHARD = 2
    BYTE_IO = 3


@dataclass(frozen=True)
class TensorWriteData:
    chunk: ChunkStorageMetadata
    properties: TensorProperties
    size: torch.Size


@dataclass(frozen=True)
class WriteItem:
    index: MetadataIndex
    type: WriteItemType
    tensor_data: Optional[TensorWriteData] = None


@dataclass(frozen=True)
class SavePlan:
    items: List[WriteItem]
    storage_data: Any = None
    planner_data: Any = None


for _c in (WriteItemType, TensorWriteData, WriteItem, SavePlan):
    _named(DCP_PLANNER, _c)


# --- torch/distributed/checkpoint/filesystem.py -------------------------------------------------

@dataclass
class _StorageInfo:
    relative_path: str
    offset: int
    length: int
    transform_descriptors: Any = None

    def __getstate__(self):
        return {k: v for k, v in self.__dict__.items() if v is not None}


_named(DCP_FILESYSTEM, _StorageInfo)


MODULES = {
    MEGATRON_ENUMS: [AttnBackend],
    DCP_METADATA: [ChunkStorageMetadata, _MEM_FORMAT_ENCODING, TensorProperties,
                   TensorStorageMetadata, BytesStorageMetadata, StorageMeta, Metadata,
                   MetadataIndex],
    DCP_PLANNER: [WriteItemType, TensorWriteData, WriteItem, SavePlan],
    DCP_FILESYSTEM: [_StorageInfo],
}


@contextlib.contextmanager
def registered():
    """Make the stand-ins findable under their real names while pickling; restore afterwards."""
    names = set()
    for module in MODULES:
        parts = module.split(".")
        for i in range(1, len(parts) + 1):
            names.add(".".join(parts[:i]))
    saved = {n: sys.modules[n] for n in names if n in sys.modules}
    try:
        for n in sorted(names):
            if n in saved and n not in MODULES:
                continue                       # a real parent package (torch, torch.distributed)
            m = types.ModuleType(n)
            for cls in MODULES.get(n, ()):
                setattr(m, cls.__qualname__, cls)
            sys.modules[n] = m
        yield
    finally:
        for n in names:
            if n in saved:
                sys.modules[n] = saved[n]
            else:
                sys.modules.pop(n, None)
