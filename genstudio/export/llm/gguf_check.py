"""Validates a GGUF file before anything else parses it: header, key/values, tensor table, data bounds.

A crafted or truncated file is refused in well under a second with bounded memory: the file is
memory-mapped, every count is checked against the bytes left before it is used, and nothing is
allocated in proportion to a count read from the file until that check has passed.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path

import gguf

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)  # version 1 used 32-bit counts and is long gone
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_KEY_BYTES = 65_535
MAX_ARRAY_DEPTH = 1  # arrays of scalars or strings; arrays of arrays are refused
MAX_ELEMENTS = 1 << 40  # one tensor

# GGUF value types -> struct format of one scalar (STRING and ARRAY handled apart).
_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


class GGUFError(ValueError):
    """The file is not a GGUF this studio can read; the message says exactly why."""


@dataclass
class TensorInfo:
    name: str
    shape: tuple[int, ...]  # GGUF order: ne0 (the contiguous, "in" dimension) first
    type_id: int  # gguf.GGMLQuantizationType value
    offset: int  # from the start of the data section
    n_bytes: int


@dataclass
class GGUFSummary:
    path: Path
    version: int
    size_bytes: int
    metadata: dict[str, object]  # scalars and strings; arrays as ("array", element type, count)
    tensors: dict[str, TensorInfo] = field(default_factory=dict)
    data_offset: int = 0


class _Cursor:
    def __init__(self, buf, size: int) -> None:
        self.buf, self.size, self.pos = buf, size, 0

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.size:
            raise GGUFError(f"file is truncated: {what} needs {n} bytes at offset {self.pos}, "
                            f"file holds {self.size}")

    def unpack(self, fmt: str, what: str):
        n = struct.calcsize(fmt)
        self.need(n, what)
        (v,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += n
        return v

    def string(self, what: str, limit: int | None = None) -> str:
        n = self.unpack("<Q", f"{what} length")
        if limit is not None and n > limit:
            raise GGUFError(f"{what} is {n} bytes long (limit {limit})")
        self.need(n, what)
        raw = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise GGUFError(f"{what} is not UTF-8") from None

    def skip_string(self, what: str) -> None:
        n = self.unpack("<Q", f"{what} length")
        self.need(n, what)
        self.pos += n


def _read_value(cur: _Cursor, vtype: int, key: str, depth: int = 0):
    if vtype in _SCALARS:
        return cur.unpack(_SCALARS[vtype], f"value of {key!r}")
    if vtype == _STRING:
        return cur.string(f"value of {key!r}")
    if vtype == _ARRAY:
        if depth >= MAX_ARRAY_DEPTH:
            raise GGUFError(f"{key!r} nests arrays, which this reader refuses")
        etype = cur.unpack("<I", f"array type of {key!r}")
        count = cur.unpack("<Q", f"array length of {key!r}")
        if etype in _SCALARS:
            size = struct.calcsize(_SCALARS[etype])
            cur.need(count * size, f"{count} elements of {key!r}")
            cur.pos += count * size
        elif etype == _STRING:
            cur.need(count * 8, f"{count} strings of {key!r}")  # each string has at least its length
            for _ in range(count):
                cur.skip_string(f"an element of {key!r}")
        else:
            raise GGUFError(f"{key!r} is an array of unknown type {etype}")
        return ("array", etype, count)
    raise GGUFError(f"{key!r} has unknown value type {vtype}")


def check_gguf(path: Path) -> GGUFSummary:
    """Parse and bound-check the whole header and tensor table; raises GGUFError with one clear sentence."""
    path = Path(path)
    if not path.is_file():
        raise GGUFError(f"{path} is not a file")
    size = path.stat().st_size
    if size < 24:
        raise GGUFError(f"file is {size} bytes, too short for a GGUF header")
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        return _check(buf, size, path)


def _check(buf, size: int, path: Path) -> GGUFSummary:
    cur = _Cursor(buf, size)
    if bytes(buf[:4]) != GGUF_MAGIC:
        raise GGUFError(f"not a GGUF file (magic {bytes(buf[:4])!r}, expected {GGUF_MAGIC!r})")
    cur.pos = 4
    version = cur.unpack("<I", "version")
    if version not in SUPPORTED_VERSIONS:
        raise GGUFError(f"GGUF version {version} is not supported (only {SUPPORTED_VERSIONS})")
    n_tensors = cur.unpack("<Q", "tensor count")
    n_kv = cur.unpack("<Q", "key/value count")
    # Smallest possible entries: a key/value is 8 (key length) + 4 (type) + 1 byte; a tensor info is
    # 8 (name length) + 4 (n_dims) + 8 (one dim) + 4 (type) + 8 (offset).
    if n_kv * 13 > size - cur.pos:
        raise GGUFError(f"header claims {n_kv} key/values, more than a {size}-byte file can hold")
    if n_tensors * 32 > size - cur.pos:
        raise GGUFError(f"header claims {n_tensors} tensors, more than a {size}-byte file can hold")
    meta: dict[str, object] = {}
    for i in range(n_kv):
        key = cur.string(f"key #{i}", MAX_KEY_BYTES)
        vtype = cur.unpack("<I", f"type of {key!r}")
        if key in meta:
            raise GGUFError(f"key {key!r} appears twice")
        meta[key] = _read_value(cur, vtype, key)
    alignment = meta.get("general.alignment", 32)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1) or alignment > 1 << 16:
        raise GGUFError(f"general.alignment {alignment!r} is not a power of two up to 65536")
    summary = GGUFSummary(path=path, version=version, size_bytes=size, metadata=meta)
    for i in range(n_tensors):
        name = cur.string(f"tensor name #{i}", 1024)
        n_dims = cur.unpack("<I", f"n_dims of {name!r}")
        if not 1 <= n_dims <= MAX_DIMS:
            raise GGUFError(f"tensor {name!r} has {n_dims} dimensions (1 to {MAX_DIMS} allowed)")
        dims = tuple(cur.unpack("<Q", f"dimension of {name!r}") for _ in range(n_dims))
        type_id = cur.unpack("<I", f"type of {name!r}")
        offset = cur.unpack("<Q", f"offset of {name!r}")
        if any(d == 0 for d in dims):
            raise GGUFError(f"tensor {name!r} has an empty dimension {dims}")
        n = 1
        for d in dims:
            n *= d
            if n > MAX_ELEMENTS:
                raise GGUFError(f"tensor {name!r} has more than {MAX_ELEMENTS} elements")
        try:
            qtype = gguf.GGMLQuantizationType(type_id)
            block, type_size = gguf.GGML_QUANT_SIZES[qtype]
        except (ValueError, KeyError):
            raise GGUFError(f"tensor {name!r} has unknown type {type_id}") from None
        if dims[0] % block:
            raise GGUFError(f"tensor {name!r}: first dimension {dims[0]} is not a multiple of the "
                            f"{qtype.name} block size {block}")
        if offset % alignment:
            raise GGUFError(f"tensor {name!r}: offset {offset} is not aligned to {alignment}")
        if name in summary.tensors:
            raise GGUFError(f"tensor {name!r} appears twice")
        summary.tensors[name] = TensorInfo(name, dims, type_id, offset, n // block * type_size)
    data_offset = (cur.pos + alignment - 1) // alignment * alignment
    summary.data_offset = data_offset
    spans = sorted((t.offset, t.offset + t.n_bytes, t.name) for t in summary.tensors.values())
    end_prev, prev = 0, None
    for start, end, name in spans:
        if data_offset + end > size:
            raise GGUFError(f"file is truncated: tensor {name!r} ends at byte {data_offset + end}, "
                            f"file holds {size}")
        if start < end_prev:
            raise GGUFError(f"tensors {prev!r} and {name!r} overlap")
        end_prev, prev = end, name
    return summary


def require_int(meta: dict, key: str, lo: int = 1, hi: int = 1 << 31) -> int:
    v = meta.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise GGUFError(f"metadata {key!r} is {v!r}; expected an integer in [{lo}, {hi}]")
    return v


def require_float(meta: dict, key: str, default: float | None = None) -> float:
    v = meta.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v == v or v <= 0:
        raise GGUFError(f"metadata {key!r} is {v!r}; expected a positive number")
    return float(v)
