"""`genstudio shot`: build the main window offscreen, open one tab, let it settle, and save it as a PNG."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

SETTLE_TIMEOUT_S = 90.0  # the longest a tab may take to fill its background details


def _ensure_platform() -> None:
    """Render offscreen when there is no display (set before the QApplication exists)."""
    if "QT_QPA_PLATFORM" in os.environ:
        return
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"


def _settle(widget, window, timeout: float) -> None:
    from PySide6.QtCore import QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    is_settled = getattr(widget, "is_settled", None)
    deadline = time.monotonic() + timeout
    loop = QEventLoop()
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(loop.quit)
    timer.start()
    # give queued deliveries (job results, deferred layouts) a few turns, then wait for the tab to settle
    for _ in range(5):
        app.processEvents()
    while time.monotonic() < deadline:
        if is_settled is None or is_settled():
            break
        loop.exec()
    timer.stop()
    for _ in range(5):  # layouts and style polish after the last fill
        app.processEvents()
    window.repaint()


def render_tab(key: str, out: Path, *, size: tuple[int, int] = (1280, 800), theme: str = "light") -> Path:
    """Render tab `key` of a fresh main window to `out` (PNG, exactly `size`); KeyError names the tabs there are."""
    _ensure_platform()
    from genstudio.qt.app import build_main_window, create_app

    app = create_app(theme=theme)
    window = build_main_window(remember=False, theme=theme)
    try:
        keys = window.tab_keys()
        if key not in keys:
            raise KeyError(f"no tab {key!r} in the studio; available tabs: {', '.join(keys) or 'none'}")
        widget = window.select_tab(key)
        if widget is None:
            raise KeyError(f"tab {key!r} could not be built ({window.tab_error(key)}); "
                           f"available tabs: {', '.join(k for k in keys if k != key) or 'none'}")
        w, h = size
        window.resize(w, h)
        window.show()
        app.processEvents()
        window.resize(w, h)  # a platform may adjust the first size
        _settle(widget, window, SETTLE_TIMEOUT_S)
        image = window.grab().toImage()
        if image.width() != w or image.height() != h:
            from PySide6.QtCore import Qt

            image = image.scaled(w, h, Qt.AspectRatioMode.IgnoreAspectRatio,
                                 Qt.TransformationMode.SmoothTransformation)
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(out), "PNG"):
            raise OSError(f"could not write {out}")
        return out
    finally:
        window.close()
        window.deleteLater()
        app.processEvents()
