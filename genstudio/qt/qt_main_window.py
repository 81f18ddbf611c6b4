"""The studio's main window: actions, menus, toolbar, tabs, then settings; closing stops and joins every job.

Startup paints first and builds right after: the constructor only sizes the window and sets its theme
palette, so the first frame comes about as fast as a bare window's; `build()` then runs (on the next
turn of the event loop, or at once when anything asks for a part of the window) and makes, in order,
the actions, menus, toolbar, tabs and status bar, then reads the settings.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QSettings, QTimer, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QApplication, QMainWindow, QWidget

from genstudio.qt import qt_settings as st
from genstudio.qt.qt_theme import apply_palette, apply_theme

if TYPE_CHECKING:
    from genstudio.qt.qt_context import StudioContext
    from genstudio.qt.qt_window_parts import TabSlot
    from genstudio.runtime.providers import ProbeResult

# Attributes that exist once `build()` ran; reading one earlier builds the window first.
_BUILT_PARTS = frozenset({"ctx", "action_collection", "menus", "toolbar", "tabs", "status"})


class QtMainWindow(QMainWindow):
    """The window every tab lives in. `ctx` may be a StudioContext or a function that makes one."""

    first_painted = Signal()  # once, after the window's first paint (startup benchmark, background work)
    built = Signal()  # once `build()` made the actions, menus, toolbar, tabs and status bar
    tabs_ready = Signal()  # once the tabs exist and the current one is built
    theme_changed = Signal(str)
    closed = Signal()  # after closeEvent stopped and joined the jobs

    def __init__(self, ctx: StudioContext | Callable[[], StudioContext], *, settings: QSettings | None = None,
                 tab_specs: list[str] | None = None, remember: bool = True, theme: str | None = None) -> None:
        super().__init__()
        self._make_ctx = ctx if callable(ctx) else (lambda: ctx)
        self.settings = settings if settings is not None else st.open_settings()
        self.remember = remember  # False (genstudio shot): no window state read back, nothing written on close
        self.probe_results: list[ProbeResult] = []
        self._theme_override = theme
        self._tab_lines = tab_specs
        self._slots: list[TabSlot] | None = None  # None until the tabs are created
        self._building = False
        self._is_built = False
        self._painted = False
        self._closed = False
        self._output: st.OutputSettings | None = None  # read with the other settings in build()
        self.setWindowTitle("genstudio")
        self.setObjectName("genstudio_main_window")
        self.setMinimumSize(720, 480)
        self.resize(1280, 800)
        # What the first frame needs: the window's size and the theme's colours.
        win = st.read_window(self.settings) if remember else st.WindowSettings()
        if win.geometry is not None:
            self.restoreGeometry(win.geometry)
        app = QApplication.instance()
        if app is not None:
            apply_palette(app, theme or st.read_appearance(self.settings).theme)

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes that do not exist yet: the parts `build()` makes.
        if name in _BUILT_PARTS and not self.__dict__.get("_building") and not self.__dict__.get("_is_built"):
            self.build()
            return getattr(self, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- build ---------------------------------------------------------------------------------------
    def build(self) -> None:
        """Actions, menus, toolbar, tabs, status bar, then settings. Runs once."""
        if self._is_built or self._building:
            return
        self._building = True
        try:
            from genstudio.qt.qt_actions import create_actions, create_menus, create_toolbar
            from genstudio.qt.qt_status import QtStatusBar
            from genstudio.qt.qt_tabs import TAB_SPECS
            from genstudio.qt.qt_window_parts import connect_actions, make_tab_widget

            self.ctx = self._make_ctx()
            self.ctx.output_dir = lambda: self._output.folder
            self.ctx.show_status = lambda text: self.statusBar().showMessage(text, 6000)
            self.action_collection = create_actions(self, st.read_shortcuts(self.settings))
            self.menus = create_menus(self, self.action_collection)
            self.toolbar = create_toolbar(self, self.action_collection)
            connect_actions(self)
            self.tabs = make_tab_widget()
            self.setCentralWidget(self.tabs)
            if self._tab_lines is None:
                self._tab_lines = list(TAB_SPECS)
            self.status = QtStatusBar(self.ctx.pool, self.ctx.jobs, self)
            self.setStatusBar(self.status)
            self._is_built = True
        finally:
            self._building = False
        self.read_settings()
        self.built.emit()

    def create_tabs(self) -> list[TabSlot]:
        """Load every TAB_SPECS line into a tab, select the remembered one and build its widget (once)."""
        if self._slots is not None:
            return self._slots
        from genstudio.qt.qt_window_parts import load_slot

        self.build()
        self._slots = []
        for line in self._tab_lines or []:
            slot, title = load_slot(line)
            self._slots.append(slot)
            self.tabs.addTab(slot.host, title)
        self.read_tab_settings()
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self._on_tab_changed(self.tabs.currentIndex())
        self.tabs_ready.emit()
        return self._slots

    # -- tabs ----------------------------------------------------------------------------------------
    def tab_keys(self) -> list[str]:
        """Keys of the tabs that loaded (what `genstudio shot --tab` accepts)."""
        return [s.spec.key for s in self.create_tabs() if s.spec is not None]

    def _slot(self, key: str) -> TabSlot:
        for s in self.create_tabs():
            if s.spec is not None and s.spec.key == key:
                return s
        raise KeyError(f"no tab {key!r}; available: {', '.join(self.tab_keys()) or 'none'}")

    def tab_widget(self, key: str) -> QWidget | None:
        """The tab's widget, built on first use; None when its factory failed (the tab shows why)."""
        return self._ensure_built(self._slot(key))

    def select_tab(self, key: str) -> QWidget | None:
        slot = self._slot(key)
        self.tabs.setCurrentWidget(slot.host)
        return self._ensure_built(slot)

    def current_tab_key(self) -> str | None:
        slots, i = self.create_tabs(), self.tabs.currentIndex()
        return slots[i].key if 0 <= i < len(slots) else None

    def current_tab_widget(self) -> QWidget | None:
        slots, i = self._slots or [], self.tabs.currentIndex() if self._is_built else -1
        return slots[i].widget if 0 <= i < len(slots) else None

    def tab_error(self, key: str) -> str | None:
        return self._slot(key).error

    def _on_tab_changed(self, index: int) -> None:
        slots = self._slots or []
        if 0 <= index < len(slots):
            self._ensure_built(slots[index])
        w = self.current_tab_widget()
        self.action_collection["file_save_output"].setEnabled(w is not None and hasattr(w, "save_output"))

    def _ensure_built(self, slot: TabSlot) -> QWidget | None:
        from genstudio.qt.qt_window_parts import build_slot_widget

        if slot.widget is None and slot.spec is not None and not slot.error:
            build_slot_widget(slot, self.ctx)
            if slot.widget is not None and hasattr(slot.widget, "imported"):
                slot.widget.imported.connect(self._models_listed_changed)
                slot.widget.rescanned.connect(self._models_listed_changed)
            if slot.widget is not None and self.current_tab_widget() is slot.widget:
                self.action_collection["file_save_output"].setEnabled(hasattr(slot.widget, "save_output"))
        return slot.widget

    def _models_listed_changed(self, _entries=None) -> None:
        """Models imported (or found or gone on a rescan) on the Models tab join (or leave) the pickers of the
        tabs already built (those not yet built read the registry when they are); what those tabs have open
        stays while it is listed."""
        for slot in self._slots or []:
            if slot.widget is not None and hasattr(slot.widget, "models_changed"):
                slot.widget.models_changed()

    # -- settings ------------------------------------------------------------------------------------
    def read_settings(self) -> None:
        s = self.settings
        self.ctx.pool.set_config(st.read_runtime(s).session_config(self.ctx.pool.config))
        self._output = st.read_output(s)
        self.set_theme(self._theme_override or st.read_appearance(s).theme, save=False)
        win = st.read_window(s) if self.remember else st.WindowSettings()
        if win.state is not None:
            self.restoreState(win.state)

    def read_tab_settings(self) -> None:
        """The tab that was open last time (read once the tabs exist)."""
        keys = [slot.spec.key for slot in self._slots or [] if slot.spec is not None]
        if not keys:
            return
        wanted = st.read_window(self.settings).current_tab if self.remember else keys[0]
        key = wanted if wanted in keys else keys[0]
        self.tabs.setCurrentWidget(next(s.host for s in self._slots if s.spec and s.spec.key == key))

    def write_settings(self) -> None:
        s = self.settings
        current = self.current_tab_key() if self._slots is not None else None
        st.write_window(s, st.WindowSettings(self.saveGeometry(), self.saveState() if self._is_built else None,
                                             current or st.read_window(s).current_tab))
        s.sync()

    def set_theme(self, theme: str, *, save: bool = True) -> str:
        from PySide6.QtGui import QPalette

        from genstudio.qt.qt_actions import refresh_icons

        app = QApplication.instance()
        applied = apply_theme(app, theme) if app is not None else theme
        self.action_collection[f"view_theme_{applied}"].setChecked(True)
        refresh_icons(self.action_collection, QApplication.palette().color(QPalette.ColorRole.ButtonText))
        if save:
            st.write_appearance(self.settings, st.AppearanceSettings(applied))
            self.settings.sync()
        self.theme_changed.emit(applied)
        return applied

    @property
    def output_folder(self) -> Path:
        self.build()
        return self._output.folder

    def set_output_folder(self, folder: Path) -> None:
        """Where Save writes for this session (the setting itself changes in the settings dialog)."""
        self.build()
        self._output = st.OutputSettings(Path(folder))

    def settings_applied(self) -> None:
        """After the settings dialog wrote new values: re-read what the window holds."""
        self._output = st.read_output(self.settings)
        self.set_theme(st.read_appearance(self.settings).theme, save=False)
        self.status.refresh()
        cfg = self.ctx.pool.config
        self.statusBar().showMessage(f"Settings saved: provider {cfg.provider}, "
                                     f"{cfg.threads or 'all'} CPU thread(s), outputs in {self._output.folder}", 8000)

    # -- commands (the actions' slots live in qt_window_parts) ----------------------------------------
    def save_output(self) -> Path | None:
        from genstudio.qt.qt_window_parts import save_output

        return save_output(self)

    def open_output_folder(self) -> Path:
        from genstudio.qt.qt_window_parts import open_folder

        return open_folder(self.output_folder)

    def cancel_jobs(self) -> int:
        active = self.ctx.jobs.active()
        self.ctx.jobs.cancel_all()
        self.statusBar().showMessage(f"Stopping {len(active)} job(s) at their next step" if active
                                     else "No job is running.", 5000)
        return len(active)

    def open_settings_dialog(self):
        from genstudio.qt.qt_window_parts import open_settings_dialog

        return open_settings_dialog(self)

    def show_about(self):
        from PySide6.QtCore import Qt

        from genstudio.qt.qt_about import QtAboutDialog

        dialog = QtAboutDialog(self.ctx.jobs, self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
        return dialog

    def start_provider_probe(self) -> None:
        """Probe every provider on a worker thread (imports ONNX Runtime there, after the first paint)."""
        from genstudio.qt.qt_window_parts import probe_job

        try:
            job = self.ctx.jobs.start("probe providers", probe_job())
        except RuntimeError:
            return
        job.succeeded.connect(self._probed)

    def _probed(self, results: list[ProbeResult]) -> None:
        self.probe_results = list(results)
        self.status.set_probe_results(results)

    # -- startup and closing ---------------------------------------------------------------------------
    def event(self, e: QEvent) -> bool:
        handled = super().event(e)
        if e.type() == QEvent.Type.Paint and not getattr(self, "_painted", True):
            self._painted = True
            QTimer.singleShot(0, self, self._after_first_paint)
        return handled

    def _after_first_paint(self) -> None:
        self.first_painted.emit()
        QTimer.singleShot(0, self, self._fill)

    def _fill(self) -> None:
        if self._closed:
            return
        self.build()
        QTimer.singleShot(0, self, self._fill_tabs)

    def _fill_tabs(self) -> None:
        if not self._closed:
            self.create_tabs()
            QTimer.singleShot(200, self, self.start_provider_probe)

    def _shutdown_tabs(self) -> None:
        """Tabs that own something beyond jobs (a build process, say) stop it in `shutdown()`."""
        for slot in self._slots or []:
            stop = getattr(slot.widget, "shutdown", None)
            if callable(stop):
                try:
                    stop()
                except Exception as e:  # one tab's failure must not keep the window from closing
                    print(f"genstudio: {slot.key} tab did not shut down cleanly: {e}", file=sys.stderr)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._closed:
            self._closed = True
            if self.remember:
                self.write_settings()
            if self._is_built:
                self.status.detach()
                self._shutdown_tabs()
                self.ctx.jobs.shutdown()
            event.accept()
            self.closed.emit()
            return
        event.accept()
