"""Times a model's ONNX graphs on example inputs, once per usable provider, as a job generator.

    rows = drive(benchmark_model(entry, runs=20))     # or ctx.jobs.start("benchmark", ...) in the studio
    for r in rows: print(r.provider, r.mean_ms, r.median_ms)

Example inputs come from the checker's report (names, shapes, dtypes). Dynamic dimensions take their
size from the manifest's io block when it names them (`io[role]["dims"] = {"batch": 1, "sequence": 16}`
or a concrete `shape` on an input), else 1; dimensions named like a past length (`past_sequence_length`)
start empty (0) so that a decoder with a KV cache gets a consistent first step, and expressions such
as `past_sequence_length + 1` are evaluated from the other dimensions.
"""

from __future__ import annotations

import ast
import operator
import time
from collections.abc import Generator, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from genstudio.runtime import providers as prov
from genstudio.runtime import safety
from genstudio.runtime.jobs import Progress
from genstudio.runtime.sessions import SessionConfig, create_session

if TYPE_CHECKING:
    import numpy as np

DEFAULT_RUNS = 20  # timed runs per provider and file
DEFAULT_WARMUP = 3  # untimed runs first: allocations, kernel selection, caches


@dataclass
class BenchmarkRow:
    provider: str  # what the session really ran on, e.g. "CPUExecutionProvider"
    requested: str  # what was asked for
    file: str  # the ONNX file, relative to the model folder
    role: str  # its role in the manifest ("model", "unet", ...)
    runs: int  # timed runs (0 when it could not run)
    mean_ms: float | None = None
    median_ms: float | None = None
    min_ms: float | None = None
    note: str = ""  # a fallback or the error that stopped it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- example inputs ------------------------------------------------------------------------------
_NP_DTYPES = {
    "float": "float32", "float32": "float32", "float16": "float16", "double": "float64", "float64": "float64",
    "int64": "int64", "int32": "int32", "int16": "int16", "int8": "int8", "uint8": "uint8", "uint16": "uint16",
    "uint32": "uint32", "uint64": "uint64", "bool": "bool", "bfloat16": None,
}
_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv,
           ast.Div: operator.floordiv}


def _io_hints(io: dict[str, Any] | None, role: str | None) -> tuple[dict[str, int], dict[str, list[int]]]:
    """(named dimension sizes, concrete input shapes) from a manifest io block; both optional."""
    dims: dict[str, int] = {}
    shapes: dict[str, list[int]] = {}
    if not isinstance(io, dict):
        return dims, shapes
    blocks = [io.get(role)] if role and isinstance(io.get(role), dict) else []
    blocks.append(io)  # a flat io block also counts
    for block in blocks:
        if not isinstance(block, dict):
            continue
        for k, v in (block.get("dims") or {}).items():
            if isinstance(v, int) and v >= 0:
                dims.setdefault(str(k), v)
        for item in block.get("inputs") or []:
            if isinstance(item, dict) and isinstance(item.get("name"), str):
                shape = item.get("example_shape", item.get("shape"))
                if isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape):
                    shapes.setdefault(item["name"], shape)
    return dims, shapes


def _eval_dim(expr: str, known: dict[str, int]) -> int | None:
    """Evaluate `a + 1`, `2*b` and the like over known dimension sizes; None when it is not arithmetic."""
    try:
        tree = ast.parse(expr, mode="eval").body
    except SyntaxError:
        return None

    def ev(node: ast.AST) -> int:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name):
            return known.get(node.id, 1)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        raise ValueError(expr)

    try:
        return max(0, int(ev(tree)))
    except (ValueError, ZeroDivisionError):
        return None


def _dim_size(dim: Any, dims: dict[str, int]) -> int:
    if isinstance(dim, int) and dim >= 0:
        return dim
    if not isinstance(dim, str) or not dim:
        return 1  # unnamed dynamic dimension
    if dim in dims:
        return dims[dim]
    if dim.isidentifier():
        return 0 if "past" in dim.lower() else 1
    value = _eval_dim(dim, {**{n: (0 if "past" in n.lower() else 1) for n in _names(dim)}, **dims})
    return 1 if value is None else value


def _names(expr: str) -> list[str]:
    try:
        return [n.id for n in ast.walk(ast.parse(expr, mode="eval")) if isinstance(n, ast.Name)]
    except SyntaxError:
        return []


def example_inputs(inputs: Sequence[dict[str, Any]], *, io: dict[str, Any] | None = None, role: str | None = None,
                   seed: int = 0) -> dict[str, np.ndarray]:
    """Arrays for every graph input, from the report's {"name", "dtype", "shape"} entries."""
    import numpy as np  # here, not at the top: the studio imports this module while it starts

    dims, shapes = _io_hints(io, role)
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for spec in inputs:
        name = spec["name"]
        dtype_name = _NP_DTYPES.get(str(spec.get("dtype", "float32")), None)
        if dtype_name is None:
            raise ValueError(f"input {name!r} has type {spec.get('dtype')!r}, which the benchmark cannot fill")
        shape = shapes.get(name) or [_dim_size(d, dims) for d in spec.get("shape", [])]
        dtype = np.dtype(dtype_name)
        lower = name.lower()
        if dtype.kind == "f":
            arr = rng.standard_normal(shape).astype(dtype)
        elif dtype.kind == "b":
            arr = np.ones(shape, dtype)
        elif "mask" in lower:
            arr = np.ones(shape, dtype)
        elif "position" in lower and shape:
            arr = np.broadcast_to(np.arange(shape[-1], dtype=dtype), shape).copy()
        else:
            arr = np.zeros(shape, dtype)  # token ids, class labels, timesteps: 0 is always valid
        feeds[name] = arr
    return feeds


# -- the job -------------------------------------------------------------------------------------
def benchmark_files(files: Iterable[tuple[Path, str]], *, root: Path, providers: Sequence[str] | None = None,
                    runs: int = DEFAULT_RUNS, warmup: int = DEFAULT_WARMUP, threads: int = 0,
                    io: dict[str, Any] | None = None) -> Generator[Progress, None, list[BenchmarkRow]]:
    """Time each (ONNX file, role) on each provider; yields Progress per run, returns one row per pair.

    `providers` defaults to every provider whose probe session ran here. A provider that fails on a
    file gives a row with the error in `note` instead of stopping the benchmark.
    """
    import statistics

    if runs < 1:
        raise ValueError("runs must be at least 1")
    files = [(Path(p), role) for p, role in files]
    if not files:
        raise ValueError("the model has no ONNX file to time")
    yield Progress(0, None, "probing providers")
    chosen = list(providers) if providers is not None else prov.usable_providers()
    if not chosen:
        raise RuntimeError("no execution provider passed its probe")
    total = len(files) * len(chosen) * (warmup + runs)
    step = 0
    rows: list[BenchmarkRow] = []
    for path, role in files:
        rel = _relative(path, root)
        report = safety.ensure_safe(path, root=root)
        feeds = example_inputs(report.inputs, io=io, role=role)
        for provider in chosen:
            label = f"{prov.short_name(provider)} {rel}"
            try:
                loaded = create_session(path, SessionConfig(provider=provider, threads=threads), root=root)
            except Exception as e:
                step += warmup + runs
                rows.append(BenchmarkRow(provider, provider, rel, role, 0, note=_one_line(e)))
                yield Progress(step, total, f"{label}: could not create a session")
                continue
            used = loaded.provider
            times: list[float] = []
            note = loaded.fallback or ""
            done = 0
            try:
                for i in range(warmup + runs):
                    start = time.perf_counter()
                    loaded.run(None, feeds)
                    elapsed = time.perf_counter() - start
                    if i >= warmup:
                        times.append(elapsed * 1000.0)
                    done += 1
                    phase = "warm-up" if i < warmup else f"run {i - warmup + 1}/{runs}"
                    yield Progress(step + done, total, f"{label}: {phase}")
            except Exception as e:
                note = _one_line(e)
            finally:
                step += warmup + runs
                del loaded  # free the session before the next provider allocates its own
            rows.append(BenchmarkRow(
                provider=used, requested=provider, file=rel, role=role, runs=len(times),
                mean_ms=statistics.fmean(times) if times else None,
                median_ms=statistics.median(times) if times else None,
                min_ms=min(times) if times else None,
                note=note,
            ))
    return rows


def benchmark_model(entry: Any, **kwargs: Any) -> Generator[Progress, None, list[BenchmarkRow]]:
    """`benchmark_files` over every ONNX file of a registry entry (a ready `ModelEntry`)."""
    entry.require_ready()
    manifest = entry.manifest
    files = [(entry.folder / f.path, f.role) for f in manifest.onnx_files()]
    kwargs.setdefault("io", manifest.io)
    return (yield from benchmark_files(files, root=entry.folder, **kwargs))


def format_table(rows: Sequence[BenchmarkRow]) -> str:
    """A Markdown table of the rows (for the CLI, docs and the studio's "copy" action)."""
    lines = ["| provider | file | runs | mean ms | median ms | min ms | note |", "|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        def ms(v: float | None) -> str:
            return f"{v:.3f}" if v is not None else "-"

        lines.append(f"| {prov.short_name(r.provider)} | {r.file} | {r.runs} | {ms(r.mean_ms)} | "
                     f"{ms(r.median_ms)} | {ms(r.min_ms)} | {r.note} |")
    return "\n".join(lines)


def _relative(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.name


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:300]}" if text else type(e).__name__
