"""Checks an ONNX file before ONNX Runtime sees it; parsing runs in a child process with a timeout.

Rules: size limits; every external-data location relative, inside the model folder, not a link
leaving it, not a file with other hard links, and its offset and length inside the data file; op
domains limited to the standard ones and com.microsoft; the protobuf parses and passes onnx's checker.
A crafted or broken file becomes an `UnsafeModelError` with one clear sentence; the studio lives on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MAX_ONNX_BYTES = 2 * 1024**3  # protobuf's own limit for one message
MAX_EXTERNAL_BYTES = 64 * 1024**3  # all external data of one model
CHILD_TIMEOUT_S = 120.0
ALLOWED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})


class UnsafeModelError(ValueError):
    """The file cannot be loaded safely; the message says exactly why."""


@dataclass
class ExternalRef:
    tensor: str
    location: str  # relative, as written in the model
    offset: int
    length: int


@dataclass
class OnnxReport:
    path: str
    size_bytes: int
    ir_version: int
    opsets: dict[str, int]
    producer: str
    inputs: list[dict[str, Any]]  # {"name", "dtype", "shape": [int | str | None]}
    outputs: list[dict[str, Any]]
    op_histogram: dict[str, int]  # "Conv": 12, "com.microsoft.MatMulNBits": 30
    parameters: int  # elements in initializers
    external: list[ExternalRef] = field(default_factory=list)
    external_bytes: int = 0

    @property
    def external_files(self) -> list[str]:
        return sorted({r.location for r in self.external})

    def summary(self) -> str:
        ins = ", ".join(i["name"] for i in self.inputs)
        outs = ", ".join(o["name"] for o in self.outputs)
        return (f"{sum(self.op_histogram.values())} nodes, {self.parameters:,} parameters, "
                f"inputs [{ins}], outputs [{outs}]")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OnnxReport:
        d = dict(d)
        d["external"] = [ExternalRef(**r) for r in d.get("external", [])]
        return cls(**d)


# -- checks that need no parsing (also re-run on a cache hit) -------------------------------------
def is_inside(path: Path, root: Path) -> bool:
    """True when `path` (already resolved) lies in `root` (already resolved)."""
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False


def check_file_itself(path: Path, root: Path) -> os.stat_result:
    if not os.path.lexists(path):
        raise UnsafeModelError("the file does not exist")
    if path.is_symlink() and not is_inside(path.resolve(), root.resolve()):
        raise UnsafeModelError("the file is a link that leaves its folder")
    if not path.is_file():
        raise UnsafeModelError("not a regular file")
    st = path.stat()
    if st.st_size == 0:
        raise UnsafeModelError("the file is empty")
    if st.st_size > MAX_ONNX_BYTES:
        raise UnsafeModelError(f"the file is {st.st_size / 1024**3:.1f} GiB; an ONNX protobuf is at most 2 GiB "
                               "(larger weights belong in external data files)")
    return st


def check_external(ref: ExternalRef, root: Path) -> int:
    """Check one external-data reference against the folder; returns the data file's size."""
    loc = ref.location
    where = f"tensor {ref.tensor!r}: external data {loc!r}"
    if not loc:
        raise UnsafeModelError(f"tensor {ref.tensor!r}: external data has no location")
    if "\x00" in loc:
        raise UnsafeModelError(f"{where} holds a NUL character")
    norm = loc.replace("\\", "/")
    if norm.startswith("/") or (len(norm) > 1 and norm[1] == ":") or os.path.isabs(loc):
        raise UnsafeModelError(f"{where} is an absolute path; locations must be relative to the model folder")
    if any(part == ".." for part in norm.split("/")):
        raise UnsafeModelError(f"{where} climbs out of the model folder with '..'")
    real_root = root.resolve()
    target = root / norm
    if not os.path.lexists(target):
        raise UnsafeModelError(f"{where} is missing")
    resolved = target.resolve()
    if not is_inside(resolved, real_root):
        raise UnsafeModelError(f"{where} is a link that leaves the model folder")
    if not resolved.is_file():
        raise UnsafeModelError(f"{where} is not a regular file")
    st = resolved.stat()
    if st.st_nlink > 1:
        raise UnsafeModelError(f"{where} has {st.st_nlink} hard links; a data file must not be shared "
                               "with files outside the model folder")
    if ref.offset < 0 or ref.length < 0:
        raise UnsafeModelError(f"{where} has a negative offset or length")
    if ref.offset + ref.length > st.st_size:
        raise UnsafeModelError(f"{where} reads bytes {ref.offset}..{ref.offset + ref.length} "
                               f"but the file holds {st.st_size}")
    return st.st_size


def _recheck(report: OnnxReport, root: Path) -> None:
    total = 0
    for ref in report.external:
        check_external(ref, root)
        total += ref.length
    if total > MAX_EXTERNAL_BYTES:
        raise UnsafeModelError(f"external data adds up to {total / 1024**3:.1f} GiB, over the "
                               f"{MAX_EXTERNAL_BYTES // 1024**3} GiB limit")


# -- the child process ------------------------------------------------------------------------------
def _child_command(path: Path, root: Path) -> list[str]:
    if getattr(sys, "frozen", False):  # inside a bundle the executable is the studio itself
        return [sys.executable, "__inspect__", str(path), str(root)]
    return [sys.executable, "-m", "genstudio", "__inspect__", str(path), str(root)]


def inspect(path: Path, *, root: Path | None = None, timeout: float = CHILD_TIMEOUT_S) -> OnnxReport:
    """Run every check; parsing happens in a child process so a crash there is only an error here."""
    path = Path(path)
    root = Path(root) if root is not None else path.parent
    check_file_itself(path, root)
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", OMP_NUM_THREADS="1")
    try:
        proc = subprocess.run(_child_command(path, root), capture_output=True, text=True, timeout=timeout,
                              env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise UnsafeModelError(f"checking the file took longer than {timeout:.0f} s; it was stopped") from None
    answer = None
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("{"):
            try:
                answer = json.loads(line)
            except json.JSONDecodeError:
                pass
            break
    if answer is None:
        if proc.returncode < 0:
            raise UnsafeModelError(f"the ONNX parser crashed on this file (signal {-proc.returncode})")
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]
        raise UnsafeModelError(f"the checker stopped with exit code {proc.returncode}: {tail}")
    if not answer.get("ok"):
        raise UnsafeModelError(answer.get("error", "rejected"))
    report = OnnxReport.from_dict(answer["report"])
    _recheck(report, root)
    return report


_cache: dict[tuple, OnnxReport] = {}
_cache_lock = threading.Lock()


def ensure_safe(path: Path, *, root: Path | None = None) -> OnnxReport:
    """`inspect`, cached per (file, size, mtime, folder); the cheap checks run again on every call."""
    path = Path(path)
    root = Path(root) if root is not None else path.parent
    st = check_file_itself(path, root)
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, str(root.resolve()))
    with _cache_lock:
        hit = _cache.get(key)
    if hit is not None:
        _recheck(hit, root)
        return hit
    report = inspect(path, root=root)
    with _cache_lock:
        _cache[key] = report
    return report


def clear_cache() -> None:
    with _cache_lock:
        _cache.clear()
