"""Settings as read/write pairs on QSettings, one group per area; under GENSTUDIO_HOME when that is set.

    s = open_settings()
    rt = read_runtime(s)                  # RuntimeSettings(provider="auto", threads=0)
    write_runtime(s, rt.with_(threads=2))

Every read gives a default and a type, so a hand-edited or stale file never breaks the studio.
The values are NamedTuples (immutable records, and cheaper to define than dataclasses at startup).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from PySide6.QtCore import QByteArray, QSettings

if TYPE_CHECKING:
    from genstudio.runtime.sessions import SessionConfig

ORGANIZATION = "genstudio"
APPLICATION = "genstudio"
SETTINGS_FILE = "settings.ini"  # the file under GENSTUDIO_HOME

PROVIDER_CHOICES = ("auto", "cuda", "directml", "coreml", "cpu")  # the keys of runtime.providers.CHOICES
THEME_CHOICES = ("system", "light", "dark")


def open_settings() -> QSettings:
    """The studio's settings. With GENSTUDIO_HOME set (tests, portable installs) an INI file there."""
    home = os.environ.get("GENSTUDIO_HOME")
    if home:
        Path(home).mkdir(parents=True, exist_ok=True)
        return QSettings(str(Path(home) / SETTINGS_FILE), QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANIZATION, APPLICATION)


def _read(s: QSettings, key: str, default: Any, kind: type) -> Any:
    """One typed value with its default; a value of the wrong type reads as the default."""
    if not s.contains(key):
        return default
    raw = s.value(key)
    try:
        if kind is bool:
            if isinstance(raw, str):
                return raw.strip().lower() in ("1", "true", "yes", "on")
            return bool(raw)
        if kind is int:
            return int(raw)
        if kind is str:
            return raw if isinstance(raw, str) else default
        if kind is QByteArray:
            return raw if isinstance(raw, QByteArray) else default
        if kind is Path:
            return Path(raw) if isinstance(raw, str) and raw else default
    except (TypeError, ValueError):
        return default
    raise TypeError(f"no reader for {kind!r}")


# -- runtime -------------------------------------------------------------------------------------
class RuntimeSettings(NamedTuple):
    provider: str = "auto"  # auto, cuda, directml, coreml or cpu
    threads: int = 0  # intra-op CPU threads for ONNX Runtime; 0 uses every core

    def with_(self, **changes: Any) -> RuntimeSettings:
        return self._replace(**changes)

    def session_config(self, base: SessionConfig | None = None) -> SessionConfig:
        from genstudio.runtime.sessions import SessionConfig

        return (base or SessionConfig()).with_(provider=self.provider, threads=self.threads)


def read_runtime(s: QSettings) -> RuntimeSettings:
    s.beginGroup("runtime")
    try:
        provider = _read(s, "provider", "auto", str).lower()
        threads = _read(s, "threads", 0, int)
    finally:
        s.endGroup()
    return RuntimeSettings(provider if provider in PROVIDER_CHOICES else "auto", max(0, min(threads, 256)))


def write_runtime(s: QSettings, value: RuntimeSettings) -> None:
    s.beginGroup("runtime")
    s.setValue("provider", value.provider)
    s.setValue("threads", int(value.threads))
    s.endGroup()


# -- output --------------------------------------------------------------------------------------
class OutputSettings(NamedTuple):
    folder: Path  # where "Save" writes by default


def read_output(s: QSettings) -> OutputSettings:
    from genstudio.runtime import paths  # platformdirs: not needed for the first frame

    s.beginGroup("output")
    try:
        folder = _read(s, "folder", paths.default_output_dir(), Path)
    finally:
        s.endGroup()
    return OutputSettings(folder)


def write_output(s: QSettings, value: OutputSettings) -> None:
    s.beginGroup("output")
    s.setValue("folder", str(value.folder))
    s.endGroup()


# -- appearance ----------------------------------------------------------------------------------
class AppearanceSettings(NamedTuple):
    theme: str = "light"  # system (the platform's look, no style sheet), light or dark


def read_appearance(s: QSettings) -> AppearanceSettings:
    s.beginGroup("appearance")
    try:
        theme = _read(s, "theme", "light", str)
    finally:
        s.endGroup()
    return AppearanceSettings(theme if theme in THEME_CHOICES else "light")


def write_appearance(s: QSettings, value: AppearanceSettings) -> None:
    s.beginGroup("appearance")
    s.setValue("theme", value.theme)
    s.endGroup()


# -- window --------------------------------------------------------------------------------------
class WindowSettings(NamedTuple):
    geometry: QByteArray | None = None  # QMainWindow.saveGeometry()
    state: QByteArray | None = None  # QMainWindow.saveState(): toolbars and docks
    current_tab: str = "models"  # the key of the tab that was open


def read_window(s: QSettings) -> WindowSettings:
    s.beginGroup("window")
    try:
        value = WindowSettings(
            geometry=_read(s, "geometry", None, QByteArray),
            state=_read(s, "state", None, QByteArray),
            current_tab=_read(s, "current_tab", "models", str),
        )
    finally:
        s.endGroup()
    return value


def write_window(s: QSettings, value: WindowSettings) -> None:
    s.beginGroup("window")
    if value.geometry is not None:
        s.setValue("geometry", value.geometry)
    if value.state is not None:
        s.setValue("state", value.state)
    s.setValue("current_tab", value.current_tab)
    s.endGroup()


# -- shortcuts -----------------------------------------------------------------------------------
def read_shortcuts(s: QSettings) -> dict[str, str]:
    """User shortcuts by action name ("file_quit": "Ctrl+Q"); actions not named keep their default."""
    s.beginGroup("shortcuts")
    try:
        return {k: v for k in s.childKeys() if isinstance(v := s.value(k), str)}
    finally:
        s.endGroup()


def write_shortcuts(s: QSettings, shortcuts: dict[str, str]) -> None:
    s.beginGroup("shortcuts")
    s.remove("")
    for name, keys in sorted(shortcuts.items()):
        s.setValue(name, keys)
    s.endGroup()
