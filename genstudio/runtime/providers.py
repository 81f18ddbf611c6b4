"""Execution providers: which ones really work here (a probe session proves it) and what to ask for."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass

CUDA = "CUDAExecutionProvider"
DIRECTML = "DmlExecutionProvider"
COREML = "CoreMLExecutionProvider"
CPU = "CPUExecutionProvider"

# The order Auto tries them in.
AUTO_ORDER = (CUDA, DIRECTML, COREML, CPU)

# What the settings dialog and the CLI call them.
CHOICES = {"auto": None, "cuda": CUDA, "directml": DIRECTML, "coreml": COREML, "cpu": CPU}
SHORT_NAMES = {v: k for k, v in CHOICES.items() if v}


def short_name(provider: str) -> str:
    return SHORT_NAMES.get(provider, provider.removesuffix("ExecutionProvider").lower())


@dataclass(frozen=True)
class ProbeResult:
    provider: str
    usable: bool
    detail: str  # why not, or what ran
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


def _quiet_ort():
    import onnxruntime as ort

    # Failed provider libraries log at ERROR level on the default logger; the probe reports instead.
    ort.set_default_logger_severity(4)
    return ort


def _probe_graph_bytes() -> bytes:
    """A one-node graph (y = x + x), built in memory so the probe needs no file."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    graph = helper.make_graph([helper.make_node("Add", ["x", "x"], ["y"])], "probe", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="genstudio-probe")
    model.ir_version = 8
    return model.SerializeToString()


_cache: dict[str, ProbeResult] = {}
_cache_lock = threading.Lock()


def probe(provider: str, *, refresh: bool = False) -> ProbeResult:
    """Create a session on `provider` alone, run it, and check that the provider really served it."""
    with _cache_lock:
        if not refresh and provider in _cache:
            return _cache[provider]
    start = time.perf_counter()
    try:
        import numpy as np

        ort = _quiet_ort()
        if provider not in ort.get_available_providers():
            result = ProbeResult(provider, False, "not built into this ONNX Runtime package", 0.0)
        else:
            opts = ort.SessionOptions()
            opts.log_severity_level = 4
            if provider == DIRECTML:
                opts.enable_mem_pattern = False
                opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
            session = ort.InferenceSession(_probe_graph_bytes(), opts, providers=[provider])
            used = session.get_providers()
            (y,) = session.run(None, {"x": np.array([1.0, 2.0], np.float32)})
            if used[0] != provider:
                result = ProbeResult(provider, False, f"session fell back to {used[0]} (drivers or libraries missing)",
                                     time.perf_counter() - start)
            elif not np.allclose(y, [2.0, 4.0]):
                result = ProbeResult(provider, False, f"probe graph computed {y.tolist()}, expected [2.0, 4.0]",
                                     time.perf_counter() - start)
            else:
                result = ProbeResult(provider, True, "probe session ran", time.perf_counter() - start)
    except Exception as e:  # any failure means "not usable", with the reason
        result = ProbeResult(provider, False, f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}",
                             time.perf_counter() - start)
    with _cache_lock:
        _cache[provider] = result
    return result


def probe_all(*, refresh: bool = False) -> list[ProbeResult]:
    return [probe(p, refresh=refresh) for p in AUTO_ORDER]


def usable_providers() -> list[str]:
    return [r.provider for r in probe_all() if r.usable]


class ProviderError(RuntimeError):
    pass


def resolve(choice: str | None) -> str:
    """Turn a setting ('auto', 'cuda', 'CUDAExecutionProvider', ...) into the provider to ask for.

    'auto' takes the first usable provider of AUTO_ORDER. A named provider that did not pass its probe
    resolves to CPU; the session records the fallback and its reason so the caller can tell the user.
    """
    if choice is None or choice == "" or choice.lower() == "auto":
        for p in AUTO_ORDER:
            if probe(p).usable:
                return p
        raise ProviderError("no execution provider passed its probe, not even the CPU")
    provider = CHOICES.get(choice.lower(), choice)
    if provider not in AUTO_ORDER and not provider.endswith("ExecutionProvider"):
        raise ProviderError(f"unknown provider {choice!r}; choose one of {', '.join(CHOICES)}")
    return provider


def versions() -> dict[str, str]:
    import onnxruntime as ort

    return {"onnxruntime": ort.__version__, "onnxruntime_package": _ort_distribution()}


def _ort_distribution() -> str:
    from importlib import metadata

    for dist in ("onnxruntime-gpu", "onnxruntime-directml", "onnxruntime"):
        try:
            return f"{dist} {metadata.version(dist)}"
        except metadata.PackageNotFoundError:
            continue
    return "unknown"
