"""What the main window builds after its first paint: action wiring, tab slots, and the commands' bodies."""

from __future__ import annotations

import traceback
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox, QScrollArea, QTabWidget, QVBoxLayout, QWidget

from genstudio.qt.qt_tabs import load_tab_spec
from genstudio.qt.qt_theme import THEMES
from genstudio.qt.qt_widgets import label, scroll_area
from genstudio.runtime import providers as prov

if TYPE_CHECKING:
    from genstudio.qt.qt_context import StudioContext, TabSpec
    from genstudio.qt.qt_main_window import QtMainWindow


@dataclass
class TabSlot:
    """One tab: its spec (None when the line failed to load), its host page, and the widget once built."""

    line: str  # the TAB_SPECS line
    spec: TabSpec | None
    host: QScrollArea  # the tab's page; the widget sits inside it
    widget: QWidget | None = None
    error: str | None = None  # why the spec or its widget could not be made

    @property
    def key(self) -> str:
        return self.spec.key if self.spec else self.line


def connect_actions(w: QtMainWindow) -> None:
    a = w.action_collection
    a["file_open_model"].triggered.connect(lambda: models_call(w, "choose_folder"))
    a["file_import_onnx"].triggered.connect(lambda: models_call(w, "choose_file"))
    a["file_save_output"].triggered.connect(w.save_output)
    a["file_open_output_folder"].triggered.connect(w.open_output_folder)
    a["file_settings"].triggered.connect(w.open_settings_dialog)
    a["file_quit"].triggered.connect(w.close)
    for t in THEMES:
        a[f"view_theme_{t}"].triggered.connect(lambda _checked=False, t=t: w.set_theme(t))
    a["view_refresh"].triggered.connect(lambda: models_call(w, "refresh"))
    a["view_full_screen"].toggled.connect(lambda on: w.showFullScreen() if on else w.showNormal())
    a["jobs_cancel_all"].triggered.connect(w.cancel_jobs)
    a["help_about"].triggered.connect(w.show_about)
    a["help_about_qt"].triggered.connect(lambda: QMessageBox.aboutQt(w, "About Qt"))


def models_call(w: QtMainWindow, method: str) -> Any:
    """Open the Models tab and call one of its methods (the File menu's import commands, Refresh)."""
    widget = w.select_tab("models") if "models" in w.tab_keys() else None
    return getattr(widget, method)() if widget is not None and hasattr(widget, method) else None


# -- tabs --------------------------------------------------------------------------------------------
def make_tab_widget() -> QTabWidget:
    tabs = QTabWidget()
    tabs.setObjectName("mainTabs")
    tabs.setDocumentMode(True)
    tabs.setMovable(False)
    return tabs


class _PageLayout(QVBoxLayout):
    """A tab page's layout. It hides the height-for-width of wrapped labels from the scroll area, which would
    otherwise size the page to its preferred height (taller than the window) rather than to the window."""

    def hasHeightForWidth(self) -> bool:  # noqa: N802 (Qt's name)
        return False


def _host() -> QScrollArea:
    """A tab's page: a window smaller than the tab's minimum size scrolls the tab instead of squeezing its
    controls to slivers (the window goes down to 720x480; the VAE tab needs 1260 pixels across)."""
    page = QWidget()
    layout = _PageLayout(page)
    layout.setContentsMargins(0, 0, 0, 0)
    return scroll_area(page)


def _page_layout(slot: TabSlot) -> QVBoxLayout:
    return slot.host.widget().layout()


def load_slot(line: str) -> tuple[TabSlot, str]:
    """A TAB_SPECS line as a tab slot and its title; a line that fails to load shows its error instead."""
    host = _host()
    try:
        spec = load_tab_spec(line)
    except Exception as e:
        slot = TabSlot(line, None, host, error=f"{type(e).__name__}: {e}")
        show_tab_error(slot, traceback.format_exc())
        title = line.split("|")[1].strip() if line.count("|") >= 2 else line.partition(":")[0].rsplit(".", 1)[-1]
        return slot, title or line
    return TabSlot(line, spec, host), spec.title


def build_slot_widget(slot: TabSlot, ctx: StudioContext) -> None:
    try:
        widget = slot.spec.factory(ctx)
    except Exception as e:  # the tab shows why; the studio lives on
        slot.error = f"{type(e).__name__}: {e}"
        show_tab_error(slot, traceback.format_exc())
        return
    slot.widget = widget
    _page_layout(slot).addWidget(widget)


def show_tab_error(slot: TabSlot, details: str = "") -> None:
    box = QVBoxLayout()
    box.addStretch(1)
    box.addWidget(label("This tab could not be opened", "heading"), 0, Qt.AlignmentFlag.AlignHCenter)
    text = label(f"{slot.line}\n{slot.error}" + (f"\n\n{details[-1500:]}" if details else ""), "muted",
                 selectable=True, wrap=True)
    text.setMaximumWidth(800)
    box.addWidget(text, 0, Qt.AlignmentFlag.AlignHCenter)
    box.addStretch(2)
    _page_layout(slot).addLayout(box)


# -- commands ------------------------------------------------------------------------------------------
def save_output(w: QtMainWindow) -> Path | None:
    """Ask the current tab to save what it made into the output folder (tabs with `save_output(folder)`)."""
    widget = w.current_tab_widget()
    if widget is None or not hasattr(widget, "save_output"):
        w.statusBar().showMessage("This tab has nothing to save.", 5000)
        return None
    if hasattr(widget, "can_save_output") and not widget.can_save_output():
        w.statusBar().showMessage("Nothing to save yet.", 5000)
        return None
    folder = w.output_folder
    try:
        path = widget.save_output(folder)
    except OSError as e:
        QMessageBox.warning(w, "Save failed", f"Could not write into {folder}:\n{e}")
        return None
    if path:
        w.statusBar().showMessage(f"Saved {path}", 8000)
    return path


def open_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
    return folder


def open_settings_dialog(w: QtMainWindow):
    from genstudio.qt.qt_settings_dialog import QtSettingsDialog

    try:
        dialog = QtSettingsDialog(w.settings, w.ctx.pool, w, probe_results=w.probe_results)
    except RuntimeError as e:
        QMessageBox.critical(w, "Settings", f"The settings form could not be loaded:\n{e}")
        return None
    dialog.applied.connect(w.settings_applied)
    dialog.open()
    w._settings_dialog = dialog  # keep the controller alive while the dialog is open
    return dialog


def probe_job() -> Generator[Any, None, list[prov.ProbeResult]]:
    """Every provider's probe session, as a job (it imports ONNX Runtime on the worker thread)."""
    yield from ()
    return prov.probe_all()
