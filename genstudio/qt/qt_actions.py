"""The main window's actions in one collection, named `<menu>_<verb>`, and the menus and toolbar built from them."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QAction, QActionGroup, QColor, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu, QSizePolicy, QToolBar, QWidget

from genstudio.qt import qt_icons
from genstudio.qt.qt_theme import THEME_TITLES, THEMES


@dataclass(frozen=True)
class ActionSpec:
    name: str  # <menu>_<verb>; also the key of its shortcut in the settings' "shortcuts" group
    text: str
    shortcut: str = ""  # a QKeySequence string; the settings may override it
    icon: str | None = None  # a name from genstudio.qt.qt_icons
    tip: str = ""
    checkable: bool = False


SPECS: tuple[ActionSpec, ...] = (
    ActionSpec("file_open_model", "&Import Model Folder…", "Ctrl+O", "folder-plus",
               "Check a model folder and copy it into your models"),
    ActionSpec("file_import_onnx", "Import &ONNX File…", "Ctrl+Shift+O", "file-plus",
               "Check a bare .onnx graph and add it as a model"),
    ActionSpec("file_save_output", "&Save Output", "Ctrl+S", "save",
               "Save what the current tab made into the output folder"),
    ActionSpec("file_open_output_folder", "Open Output &Folder", "", "folder-open",
               "Show the output folder in the file manager"),
    ActionSpec("file_settings", "Se&ttings…", "Ctrl+,", "settings",
               "Provider, CPU threads, output folder and theme"),
    ActionSpec("file_quit", "&Quit", "Ctrl+Q", "quit", "Stop every job and close the studio"),
    *(ActionSpec(f"view_theme_{t}", f"&{THEME_TITLES[t]}", "", None, f"Use the {THEME_TITLES[t].lower()} theme",
                 checkable=True) for t in THEMES),
    ActionSpec("view_refresh", "&Refresh Models", "F5", "refresh",
               "Scan the model folders again"),
    ActionSpec("view_full_screen", "&Full Screen", "F11", "fullscreen", "Fill the screen", checkable=True),
    ActionSpec("jobs_cancel_all", "&Stop All Jobs", "Ctrl+.", "stop",
               "Stop every running job at its next step"),
    ActionSpec("help_about", "&About genstudio", "", "info",
               "Versions and execution providers"),
    ActionSpec("help_about_qt", "About &Qt", "", None, "Qt's version and license"),
)

# menu title -> action names; "-" is a separator, ("Title", [...]) a submenu
MENUS: tuple[tuple[str, tuple], ...] = (
    ("&File", ("file_open_model", "file_import_onnx", "-", "file_save_output", "file_open_output_folder", "-",
               "file_settings", "-", "file_quit")),
    ("&View", (("&Theme", tuple(f"view_theme_{t}" for t in THEMES)), "-", "view_refresh", "view_full_screen")),
    ("&Jobs", ("jobs_cancel_all",)),
    ("&Help", ("help_about", "help_about_qt")),
)

# "-" is a separator, "|" pushes the rest to the right end
TOOLBAR: tuple[str, ...] = ("file_open_model", "file_save_output", "-", "jobs_cancel_all", "|", "file_settings",
                            "help_about")


def create_actions(parent: QWidget, shortcuts: dict[str, str] | None = None, *,
                   icon_colour: QColor | None = None) -> dict[str, QAction]:
    """Every action of SPECS, keyed by name; `shortcuts` (from the settings) override the defaults.

    Icons are drawn in `icon_colour`; without one they wait for `refresh_icons` (the theme decides).
    """
    shortcuts = shortcuts or {}
    actions: dict[str, QAction] = {}
    for spec in SPECS:
        a = QAction(spec.text, parent)
        a.setObjectName(spec.name)
        keys = shortcuts.get(spec.name, spec.shortcut)
        if keys:
            a.setShortcut(QKeySequence(keys))
        if spec.icon is not None and icon_colour is not None:
            a.setIcon(qt_icons.icon(spec.icon, icon_colour))
        if spec.tip:
            a.setStatusTip(spec.tip)
            a.setToolTip(f"{spec.tip} ({a.shortcut().toString(QKeySequence.SequenceFormat.NativeText)})"
                         if not a.shortcut().isEmpty() else spec.tip)
        a.setCheckable(spec.checkable)
        actions[spec.name] = a
    themes = QActionGroup(parent)
    themes.setExclusive(True)
    for t in THEMES:
        themes.addAction(actions[f"view_theme_{t}"])
    actions["file_quit"].setMenuRole(QAction.MenuRole.QuitRole)
    actions["file_settings"].setMenuRole(QAction.MenuRole.PreferencesRole)
    actions["help_about"].setMenuRole(QAction.MenuRole.AboutRole)
    actions["help_about_qt"].setMenuRole(QAction.MenuRole.AboutQtRole)
    return actions


def refresh_icons(actions: dict[str, QAction], colour: QColor) -> None:
    """Redraw every action's icon in `colour` (after a theme change)."""
    for spec in SPECS:
        if spec.icon is not None:
            actions[spec.name].setIcon(qt_icons.icon(spec.icon, colour))


def _fill(menu: QMenu, items: tuple, actions: dict[str, QAction]) -> None:
    for item in items:
        if item == "-":
            menu.addSeparator()
        elif isinstance(item, tuple):
            title, names = item
            _fill(menu.addMenu(title), names, actions)
        else:
            menu.addAction(actions[item])


def create_menus(window: QMainWindow, actions: dict[str, QAction]) -> dict[str, QMenu]:
    menus = {}
    for title, items in MENUS:
        menu = window.menuBar().addMenu(title)
        menu.setObjectName("menu_" + title.replace("&", "").lower())
        _fill(menu, items, actions)
        menus[title.replace("&", "").lower()] = menu
    return menus


def create_toolbar(window: QMainWindow, actions: dict[str, QAction]) -> QToolBar:
    bar = QToolBar("Main toolbar", window)
    bar.setObjectName("main_toolbar")  # saveState() needs the name
    bar.setMovable(False)
    bar.setFloatable(False)
    bar.setIconSize(QSize(18, 18))
    bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    for name in TOOLBAR:
        if name == "-":
            bar.addSeparator()
        elif name == "|":
            spacer = QWidget(bar)
            spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
            bar.addWidget(spacer)
        else:
            bar.addAction(actions[name])
    window.addToolBar(bar)
    return bar
