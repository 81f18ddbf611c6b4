"""The studio application: QApplication set-up, building the main window, running it under a qasync loop.

Startup stays light: the window paints first and builds right after (see qt_main_window); ONNX Runtime,
onnx and numpy are imported by jobs and tabs when they need them; the registry is scanned without the
deep ONNX checks; providers are probed on a worker thread once the window is up.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from genstudio import __version__
from genstudio.qt.qt_main_window import QtMainWindow
from genstudio.qt.qt_settings import APPLICATION, ORGANIZATION
from genstudio.qt.qt_theme import apply_theme

if TYPE_CHECKING:
    from PySide6.QtCore import QSettings

    from genstudio.qt.qt_context import StudioContext
    from genstudio.qt.qt_jobs import JobManager
    from genstudio.runtime.registry import Registry
    from genstudio.runtime.sessions import SessionPool


def app_icon() -> QIcon:
    """resources/icons/genstudio-<size>.png at every size there is."""
    from genstudio.runtime import paths

    icon = QIcon()
    for png in sorted(paths.resources_dir().joinpath("icons").glob("genstudio-*.png")):
        icon.addFile(str(png))
    return icon


def create_app(argv: Sequence[str] | None = None, *, theme: str | None = None) -> QApplication:
    """The QApplication (made once per process): names, icon, the Fusion style and, if given, a theme."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(list(argv) if argv is not None else sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationVersion(__version__)
    app.setDesktopFileName("genstudio")
    if app.windowIcon().isNull():
        # Set on the loop's first turn: finding the icon folder imports platformdirs, which the
        # first frame does not need. shot and the tests process events before they look at it.
        QTimer.singleShot(0, app, lambda: app.setWindowIcon(app_icon()))
    app.setStyle("Fusion")
    if theme is not None:
        apply_theme(app, theme)
    return app


def build_main_window(*, registry: Registry | None = None, pool: SessionPool | None = None,
                      jobs: JobManager | None = None, settings: QSettings | None = None,
                      tab_specs: list[str] | None = None, remember: bool = True,
                      theme: str | None = None) -> QtMainWindow:
    """A main window over a StudioContext; everything not given is the studio's default.

    The context (and the runtime modules behind it) is made when the window builds: right after its
    first paint, or at once when a caller reads `window.ctx`, `window.tabs` and the like.
    """
    window: QtMainWindow | None = None

    def make_context() -> StudioContext:
        from genstudio.qt.qt_context import StudioContext
        from genstudio.qt.qt_jobs import JobManager
        from genstudio.runtime import paths
        from genstudio.runtime.registry import Registry
        from genstudio.runtime.sessions import default_pool

        return StudioContext(
            registry=registry if registry is not None else Registry(),
            pool=pool if pool is not None else default_pool(),
            jobs=jobs if jobs is not None else JobManager(window),
            output_dir=paths.default_output_dir,
        )

    window = QtMainWindow(make_context, settings=settings, tab_specs=tab_specs, remember=remember, theme=theme)
    return window


def offer_on_open(window: QtMainWindow, path: Path) -> None:
    """Once the tabs are up, show the Models tab with `path` checked and offered for import."""

    def offer() -> None:
        tab = window.select_tab("models")
        if tab is not None:
            tab.offer_import(Path(path))

    window.tabs_ready.connect(offer)


def run_studio(argv: Sequence[str] | None = None, *, open_path: Path | None = None) -> int:
    """Open the studio and run until its window closes; UI handlers may be `async def` (qasync).

    open_path: a model folder or .onnx file to offer for import on the Models tab (`genstudio PATH`).
    """
    app = create_app(argv)
    app.setQuitOnLastWindowClosed(False)  # the coroutine below ends the loop, so asyncio shuts down cleanly
    window = build_main_window()
    if open_path is not None:
        offer_on_open(window, open_path)
    window.show()
    app.processEvents()  # the first frame, before asyncio and qasync are imported

    import asyncio

    import qasync

    async def main() -> int:
        closing = asyncio.Event()
        app.aboutToQuit.connect(closing.set)  # a session logout or app.quit() from elsewhere
        window.closed.connect(closing.set)
        if window.isHidden():  # closed before the loop started
            closing.set()
        # Python only sees Ctrl+C when it runs; a slow timer gives it the chance.
        previous = signal.signal(signal.SIGINT, lambda *_: window.close())
        tick = QTimer()
        tick.timeout.connect(lambda: None)
        tick.start(300)
        try:
            await closing.wait()
        finally:
            tick.stop()
            signal.signal(signal.SIGINT, previous)
            window.close()  # a no-op when the user closed it; else it stops and joins the jobs
        return 0

    try:
        return int(qasync.run(main()) or 0)
    except RuntimeError as e:  # the Qt loop was ended from outside before the coroutine finished
        if "before Future completed" in str(e):
            return 0
        raise
