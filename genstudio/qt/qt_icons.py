"""The studio's line icons: small SVGs drawn in the theme's text colour (re-made when the theme changes)."""

from __future__ import annotations

from functools import cache

from PySide6.QtCore import QByteArray, QRectF, Qt
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QWidget

# 24x24, stroked with currentColor; "fill" shapes say so themselves.
_SHAPES = {
    "folder-plus": '<path d="M3 7a1.5 1.5 0 0 1 1.5-1.5H9l2 2.5h8.5A1.5 1.5 0 0 1 21 9.5v9a1.5 1.5 0 0 1-1.5 1.5h-15'
                   'A1.5 1.5 0 0 1 3 18.5z"/><path d="M12 11.5v5M9.5 14h5"/>',
    "file-plus": '<path d="M6.5 3h7.5l4.5 4.5v12a1.5 1.5 0 0 1-1.5 1.5h-10.5A1.5 1.5 0 0 1 5 19.5v-15A1.5 1.5 0 0 1 6.5 3z"/>'
                 '<path d="M14 3v4.5h4.5M11.75 11v6M8.75 14h6"/>',
    "save": '<path d="M12 4v10.5M7.5 10 12 14.5 16.5 10"/><path d="M4 15v3.5A1.5 1.5 0 0 0 5.5 20h13a1.5 1.5 0 0 0 '
            '1.5-1.5V15"/>',
    "refresh": '<path d="M19.5 12a7.5 7.5 0 1 1-2.2-5.3"/><path d="M18 3.2v4h-4"/>',
    "stop": '<circle cx="12" cy="12" r="8.5"/><rect x="9" y="9" width="6" height="6" rx="1" fill="currentColor"/>',
    "settings": '<path d="M4 7h8.5M17.5 7H20M4 17h2.5M11.5 17H20"/><circle cx="15" cy="7" r="2.3"/>'
                '<circle cx="9" cy="17" r="2.3"/>',
    "info": '<circle cx="12" cy="12" r="8.5"/><path d="M12 11v5.5M12 7.8v.2"/>',
    "folder-open": '<path d="M3 7a1.5 1.5 0 0 1 1.5-1.5H9l2 2.5h8.5A1.5 1.5 0 0 1 21 9.5v9a1.5 1.5 0 0 1-1.5 1.5h-15'
                   'A1.5 1.5 0 0 1 3 18.5z"/><path d="M10 16.5l4.5-4.5M11 12h3.5v3.5"/>',
    "stopwatch": '<circle cx="12" cy="13.5" r="7"/><path d="M12 13.5V9.5M10 3h4M12 3v3.5M18 6.5l1.2-1.2"/>',
    "quit": '<path d="M10 4H5.5A1.5 1.5 0 0 0 4 5.5v13A1.5 1.5 0 0 0 5.5 20H10"/><path d="M14.5 8 19 12l-4.5 4M19 12H9"/>',
    "fullscreen": '<path d="M4 9V5.5A1.5 1.5 0 0 1 5.5 4H9M15 4h3.5A1.5 1.5 0 0 1 20 5.5V9M20 15v3.5a1.5 1.5 0 0 1-1.5 '
                  '1.5H15M9 20H5.5A1.5 1.5 0 0 1 4 18.5V15"/>',
}


def names() -> list[str]:
    return sorted(_SHAPES)


def _svg(name: str, colour: str) -> bytes:
    body = _SHAPES[name].replace("currentColor", colour)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="{colour}" '
            f'stroke-width="1.8" stroke-linecap="round" stroke-linejoin="round">{body}</svg>').encode()


@cache
def _pixmap(name: str, colour: str, size: int, ratio: float, opacity: float = 1.0) -> QPixmap:
    from PySide6.QtSvg import QSvgRenderer

    px = QPixmap(int(size * ratio), int(size * ratio))
    px.fill(Qt.GlobalColor.transparent)
    renderer = QSvgRenderer(QByteArray(_svg(name, colour)))
    p = QPainter(px)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setOpacity(opacity)
    renderer.render(p, QRectF(0, 0, px.width(), px.height()))
    p.end()
    px.setDevicePixelRatio(ratio)
    return px


def icon(name: str, colour: QColor | str = "#1f2328", size: int = 20) -> QIcon:
    """The named icon in one colour at the screen's pixel ratio, with a faded disabled state."""
    if name not in _SHAPES:
        raise KeyError(f"no icon {name!r}; there are {', '.join(names())}")
    c = QColor(colour).name()
    app = QGuiApplication.instance()
    ratio = float(app.devicePixelRatio()) if app is not None else 1.0
    result = QIcon()
    result.addPixmap(_pixmap(name, c, size, ratio), QIcon.Mode.Normal)
    result.addPixmap(_pixmap(name, c, size, ratio, 0.35), QIcon.Mode.Disabled)
    return result


def themed(name: str, widget: QWidget, role: QPalette.ColorRole = QPalette.ColorRole.ButtonText) -> QIcon:
    """The icon in the widget's current text colour."""
    return icon(name, widget.palette().color(role))
