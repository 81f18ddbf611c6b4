"""Themes: the Fusion style with a light or dark palette plus ui/<theme>.qss; "system" uses neither."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

THEMES = ("system", "light", "dark")
THEME_TITLES = {"system": "System", "light": "Light", "dark": "Dark"}

_system_palette: QPalette | None = None  # the platform palette, saved before the first change

# (role, colour) pairs; the disabled group gets the muted text colours.
_LIGHT = {
    QPalette.ColorRole.Window: "#f3f4f6", QPalette.ColorRole.WindowText: "#1f2328",
    QPalette.ColorRole.Base: "#ffffff", QPalette.ColorRole.AlternateBase: "#f6f8fa",
    QPalette.ColorRole.ToolTipBase: "#ffffff", QPalette.ColorRole.ToolTipText: "#1f2328",
    QPalette.ColorRole.PlaceholderText: "#8c959f", QPalette.ColorRole.Text: "#1f2328",
    QPalette.ColorRole.Button: "#f6f8fa", QPalette.ColorRole.ButtonText: "#1f2328",
    QPalette.ColorRole.BrightText: "#cf222e", QPalette.ColorRole.Highlight: "#2f6feb",
    QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.Link: "#0969da",
    QPalette.ColorRole.LinkVisited: "#8250df", QPalette.ColorRole.Light: "#ffffff",
    QPalette.ColorRole.Midlight: "#eaeef2", QPalette.ColorRole.Mid: "#d0d7de",
    QPalette.ColorRole.Dark: "#afb8c1", QPalette.ColorRole.Shadow: "#8c959f",
}
_DARK = {
    QPalette.ColorRole.Window: "#1c1e22", QPalette.ColorRole.WindowText: "#e6e8eb",
    QPalette.ColorRole.Base: "#23262b", QPalette.ColorRole.AlternateBase: "#292d33",
    QPalette.ColorRole.ToolTipBase: "#2b2f35", QPalette.ColorRole.ToolTipText: "#e6e8eb",
    QPalette.ColorRole.PlaceholderText: "#7d8590", QPalette.ColorRole.Text: "#e6e8eb",
    QPalette.ColorRole.Button: "#2b2f35", QPalette.ColorRole.ButtonText: "#e6e8eb",
    QPalette.ColorRole.BrightText: "#ff7b72", QPalette.ColorRole.Highlight: "#3b82f6",
    QPalette.ColorRole.HighlightedText: "#ffffff", QPalette.ColorRole.Link: "#58a6ff",
    QPalette.ColorRole.LinkVisited: "#bc8cff", QPalette.ColorRole.Light: "#3a3f46",
    QPalette.ColorRole.Midlight: "#30353c", QPalette.ColorRole.Mid: "#3a3f46",
    QPalette.ColorRole.Dark: "#15171a", QPalette.ColorRole.Shadow: "#000000",
}
_DISABLED = {"light": "#8c959f", "dark": "#6e7681"}


def palette(theme: str) -> QPalette:
    """The QPalette of the light or dark theme."""
    if theme not in ("light", "dark"):
        raise ValueError(f"no palette for theme {theme!r}")
    pal = QPalette()
    for role, colour in (_LIGHT if theme == "light" else _DARK).items():
        pal.setColor(role, QColor(colour))
    muted = QColor(_DISABLED[theme])
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, muted)
    return pal


def stylesheet(theme: str) -> str:
    """ui/<theme>.qss with its @UI@ placeholders filled in, or "" for the system theme (or a missing file)."""
    from genstudio.runtime import paths

    if theme == "system":
        return ""
    path = paths.ui_dir() / f"{theme}.qss"
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return ""
    return text.replace("@UI@", paths.ui_dir().as_posix())  # url()s in a sheet resolve against the cwd


def apply_palette(app: QApplication, theme: str) -> str:
    """Only the theme's colours (what a first frame needs); `apply_theme` adds the style sheet."""
    if theme not in THEMES:
        theme = "system"
    global _system_palette
    if _system_palette is None:
        _system_palette = QPalette(app.palette())
    app.setPalette(palette(theme) if theme != "system" else _system_palette)
    return theme


def apply_theme(app: QApplication, theme: str) -> str:
    """Switch the whole application; returns the theme applied ("system" for an unknown name)."""
    theme = apply_palette(app, theme)
    app.setStyleSheet(stylesheet(theme))
    app.setProperty("genstudio_theme", theme)
    return theme


def current_theme(app: QApplication) -> str:
    return app.property("genstudio_theme") or "system"


def is_dark(app: QApplication) -> bool:
    return app.palette().color(QPalette.ColorRole.Window).lightness() < 128
