"""Closing the window calls `shutdown()` on every built tab that has one, before the jobs are joined."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel

from genstudio.qt.app import build_main_window

CALLS: list[str] = []


class ProbeTab(QLabel):
    def __init__(self, ctx) -> None:
        super().__init__("probe")

    def shutdown(self) -> None:
        CALLS.append("probe")


class BrokenTab(QLabel):
    def __init__(self, ctx) -> None:
        super().__init__("broken")

    def shutdown(self) -> None:
        raise RuntimeError("cannot stop")


def test_close_shuts_tabs_down(qtbot, models_root):
    CALLS.clear()
    w = build_main_window(remember=False, tab_specs=["broken | Broken | test_qt_shutdown:BrokenTab",
                                                     "probe | Probe | test_qt_shutdown:ProbeTab"])
    qtbot.addWidget(w)
    w.show()
    w.select_tab("broken")
    w.select_tab("probe")
    with qtbot.waitSignal(w.closed, timeout=10000):
        w.close()
    assert CALLS == ["probe"]  # the broken tab's failure did not stop the others or the close
