"""One factory for ONNX Runtime sessions: options, provider fallback reports, a cache and a lock per session."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from genstudio.runtime import providers as prov
from genstudio.runtime import safety

_OPT_LEVELS = ("disable", "basic", "extended", "all")


@dataclass(frozen=True)
class SessionConfig:
    provider: str = "auto"  # 'auto', 'cuda', 'directml', 'coreml', 'cpu' or a full provider name
    threads: int = 0  # intra-op CPU threads; 0 lets ONNX Runtime use every core
    optimization: str = "all"  # graph optimisation level: disable, basic, extended, all

    def with_(self, **changes: Any) -> SessionConfig:
        return replace(self, **changes)


@dataclass
class LoadedSession:
    """A session plus what it really runs on. `run` takes the lock: one run at a time per session."""

    session: Any  # onnxruntime.InferenceSession
    path: Path
    requested: str  # the provider asked for
    providers: list[str]  # what the session reports, in priority order
    fallback: str | None  # a sentence for the user when it runs elsewhere than asked
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def provider(self) -> str:
        return self.providers[0]

    def run(self, output_names: Sequence[str] | None, feeds: dict[str, Any], run_options: Any = None) -> list[Any]:
        with self.lock:
            return self.session.run(output_names, feeds, run_options)

    def input_names(self) -> list[str]:
        return [i.name for i in self.session.get_inputs()]

    def output_names(self) -> list[str]:
        return [o.name for o in self.session.get_outputs()]


def session_options(config: SessionConfig, provider: str):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if config.threads > 0:
        opts.intra_op_num_threads = config.threads
    if config.optimization not in _OPT_LEVELS:
        raise ValueError(f"optimization must be one of {_OPT_LEVELS}")
    opts.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[config.optimization]
    if provider == prov.DIRECTML:
        # DirectML cannot use memory patterns or parallel execution.
        opts.enable_mem_pattern = False
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return opts


def create_session(path: Path, config: SessionConfig, *, root: Path | None = None) -> LoadedSession:
    """Check the file, then create a session on the configured provider, recording any fallback."""
    import onnxruntime as ort

    path = Path(path)
    safety.ensure_safe(path, root=root)
    requested = prov.resolve(config.provider)
    fallback = None
    asked = requested
    probe = prov.probe(requested)
    if not probe.usable:
        fallback = f"{prov.short_name(requested)} is not usable here ({probe.detail}); running on CPU"
        asked = prov.CPU
    provider_list = [asked] if asked == prov.CPU else [asked, prov.CPU]
    session = ort.InferenceSession(str(path), session_options(config, asked), providers=provider_list)
    used = session.get_providers()
    if fallback is None and used[0] != requested:
        fallback = f"{prov.short_name(requested)} could not run this model; running on {prov.short_name(used[0])}"
    return LoadedSession(session=session, path=path, requested=requested, providers=used, fallback=fallback)


class SessionPool:
    """Sessions created lazily and cached per (file, provider setting); a config change frees them."""

    def __init__(self, config: SessionConfig | None = None,
                 on_fallback: Callable[[LoadedSession], None] | None = None) -> None:
        self._config = config or SessionConfig()
        self._sessions: dict[tuple[str, str], LoadedSession] = {}
        self._lock = threading.Lock()
        self._creating: dict[tuple[str, str], threading.Lock] = {}
        self.on_fallback = on_fallback

    @property
    def config(self) -> SessionConfig:
        return self._config

    def set_config(self, config: SessionConfig) -> None:
        if config != self._config:
            self._config = config
            self.unload_all()

    def get(self, path: Path, *, root: Path | None = None) -> LoadedSession:
        key = (str(Path(path).resolve()), self._config.provider)
        with self._lock:
            hit = self._sessions.get(key)
            if hit is not None:
                return hit
            creating = self._creating.setdefault(key, threading.Lock())
        with creating:  # two threads asking for the same file create it once
            with self._lock:
                hit = self._sessions.get(key)
                if hit is not None:
                    return hit
            loaded = create_session(Path(path), self._config, root=root)
            with self._lock:
                self._sessions[key] = loaded
                self._creating.pop(key, None)
        if loaded.fallback and self.on_fallback:
            self.on_fallback(loaded)
        return loaded

    def unload(self, folder: Path) -> int:
        """Free every session whose file lies in `folder`; returns how many."""
        prefix = str(Path(folder).resolve())
        with self._lock:
            keys = [k for k in self._sessions if k[0].startswith(prefix)]
            for k in keys:
                del self._sessions[k]
        return len(keys)

    def unload_all(self) -> None:
        with self._lock:
            self._sessions.clear()

    def loaded(self) -> list[LoadedSession]:
        with self._lock:
            return list(self._sessions.values())

    def providers_in_use(self) -> list[str]:
        return sorted({s.provider for s in self.loaded()})


_default_pool: SessionPool | None = None


def default_pool() -> SessionPool:
    """The process-wide pool the CLI and the studio share."""
    global _default_pool
    if _default_pool is None:
        _default_pool = SessionPool()
    return _default_pool
