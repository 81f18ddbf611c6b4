"""What every tab is handed: the registry, the session pool, the job manager and the settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from genstudio.qt.qt_jobs import JobManager
from genstudio.runtime.registry import Registry
from genstudio.runtime.sessions import SessionPool

if TYPE_CHECKING:
    from PySide6.QtWidgets import QWidget


@dataclass
class StudioContext:
    registry: Registry
    pool: SessionPool
    jobs: JobManager
    output_dir: Callable[[], Path]  # where "Save" writes by default (a setting)
    show_status: Callable[[str], None] = field(default=lambda text: None)  # a line in the status bar


@dataclass(frozen=True)
class TabSpec:
    """A tab of the main window. `key` is what `genstudio shot --tab KEY` names."""

    key: str  # models, chat, image, gan, vae, flow, compare
    title: str  # the tab's label
    factory: Callable[[StudioContext], QWidget]  # builds the tab's widget
