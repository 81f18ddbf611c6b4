"""The VAE Explorer's latent map: decoded mosaic background, held-out codes by class, legend, cursor, path, markers.

QtLatentMap takes numpy arrays in plane coordinates (u, v) and paints them with QPainter. The mosaic and
the scatter are drawn once into a cached QImage per size or data change, so dragging the cursor repaints
only the cheap overlay (cursor, path, markers) on top of a blit.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from genstudio.qt.qt_images import rgb_to_qimage

# Tableau 10 and a few more: distinct on white and on mid-grey mosaics.
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#393b79", "#ad494a")
# Classes named after a colour (SynthFaces hair, eyes, backdrop) are drawn in that colour.
NAMED_COLOURS = {"red": "#d62728", "orange": "#ff7f0e", "yellow": "#e3c21b", "green": "#2ca02c", "teal": "#17a2a8",
                 "blue": "#1f5fd6", "purple": "#8e44ad", "grey": "#8c8c8c", "black": "#1f1f1f", "brown": "#8c564b",
                 "blonde": "#e8c468", "white": "#cfd4da", "pink": "#f06eb4"}
MARKER_COLOURS = {"A": "#d62728", "B": "#1f77b4", "C": "#2ca02c", "A-B+C": "#9467bd", "encoded": "#ff7f0e"}
Extent = tuple[float, float, float, float]

_MARGIN = 30  # room for the axis labels


class QtLatentMap(QWidget):
    cursor_moved = Signal(float, float)  # plane coordinates while the user presses or drags
    released = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.extent: Extent = (-3.0, 3.0, -3.0, 3.0)
        self.axis_names = ("z1", "z2")
        self.mosaic: QImage | None = None
        self.points: np.ndarray | None = None  # (N, 2)
        self.classes: np.ndarray | None = None  # (N,) indices into the legend
        self.legend: list[str] = []
        self.colours: list[str] = list(PALETTE)  # per class index
        self.cursor: tuple[float, float] | None = None
        self.path: np.ndarray | None = None  # (K, 2)
        self.markers: dict[str, tuple[float, float]] = {}
        self.show_mosaic = True
        self.show_points = True
        self.message = ""
        self._layer: QImage | None = None  # the cached mosaic + scatter at the current size
        self.setMinimumSize(360, 360)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setCursor(Qt.CursorShape.CrossCursor)

    def sizeHint(self) -> QSize:
        return QSize(640, 640)

    # -- content -----------------------------------------------------------------------------------
    def set_mosaic(self, rgb: np.ndarray | None, extent: Extent, axis_names: tuple[str, str]) -> None:
        self.mosaic = None if rgb is None else rgb_to_qimage(rgb)
        self.extent = tuple(float(v) for v in extent)  # type: ignore[assignment]
        self.axis_names = axis_names
        self._invalidate()

    def set_points(self, uv: np.ndarray | None, classes: np.ndarray | None, legend: list[str]) -> None:
        self.points, self.classes, self.legend = uv, classes, legend
        named = legend and all(name in NAMED_COLOURS for name in legend)
        self.colours = [NAMED_COLOURS[n] for n in legend] if named else list(PALETTE)
        self._invalidate()

    def set_layers(self, *, mosaic: bool, points: bool) -> None:
        self.show_mosaic, self.show_points = mosaic, points
        self._invalidate()

    def set_cursor(self, u: float, v: float) -> None:
        self.cursor = (u, v)
        self.update()

    def set_path(self, uv: np.ndarray | None) -> None:
        self.path = uv
        self.update()

    def set_markers(self, markers: dict[str, tuple[float, float]]) -> None:
        self.markers = dict(markers)
        self.update()

    def set_message(self, text: str) -> None:
        """The text instead of a map: the mosaic, the codes and the overlay (cursor, path, markers) go."""
        self.message = text
        self.mosaic, self.points = None, None
        self.cursor, self.path, self.markers = None, None, {}
        self._invalidate()

    def _invalidate(self) -> None:
        self._layer = None
        self.update()

    # -- geometry ----------------------------------------------------------------------------------
    def plot_rect(self) -> QRectF:
        side = max(10.0, min(self.width() - 2 * _MARGIN - 24, self.height() - 2 * _MARGIN))
        x = (self.width() - side) / 2 + 12  # the v axis labels need more room than the right edge
        return QRectF(x, _MARGIN * 0.5, side, side)

    def to_pixel(self, u: float, v: float) -> QPointF:
        r = self.plot_rect()
        u0, u1, v0, v1 = self.extent
        return QPointF(r.left() + (u - u0) / (u1 - u0) * r.width(), r.top() + (v1 - v) / (v1 - v0) * r.height())

    def to_plane(self, x: float, y: float) -> tuple[float, float]:
        r = self.plot_rect()
        u0, u1, v0, v1 = self.extent
        fx = min(max((x - r.left()) / r.width(), 0.0), 1.0)
        fy = min(max((y - r.top()) / r.height(), 0.0), 1.0)
        return u0 + fx * (u1 - u0), v1 - fy * (v1 - v0)

    # -- mouse -------------------------------------------------------------------------------------
    def mousePressEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.cursor_moved.emit(*self.to_plane(event.position().x(), event.position().y()))

    def mouseMoveEvent(self, event) -> None:
        if event.buttons() & Qt.MouseButton.LeftButton:
            self.cursor_moved.emit(*self.to_plane(event.position().x(), event.position().y()))

    def mouseReleaseEvent(self, event) -> None:
        if event.button() == Qt.MouseButton.LeftButton:
            self.released.emit()

    def resizeEvent(self, event) -> None:
        self._layer = None
        super().resizeEvent(event)

    # -- painting ----------------------------------------------------------------------------------
    def _render_layer(self) -> QImage:
        dpr = self.devicePixelRatioF()
        img = QImage(int(self.width() * dpr), int(self.height() * dpr), QImage.Format.Format_ARGB32_Premultiplied)
        img.setDevicePixelRatio(dpr)
        img.fill(QColor("#ffffff"))
        p = QPainter(img)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        r = self.plot_rect()
        p.fillRect(r, QColor("#f3f4f6"))
        if self.mosaic is not None and self.show_mosaic:
            p.setOpacity(0.55 if self.show_points and self.points is not None else 1.0)
            p.drawImage(r, self.mosaic)
            p.setOpacity(1.0)
        if self.points is not None and self.show_points and len(self.points):
            self._paint_points(p, r)
        p.setPen(QPen(QColor("#9aa1ab"), 1))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(r)
        self._paint_axes(p, r)
        p.end()
        return img

    def _paint_points(self, p: QPainter, r: QRectF) -> None:
        u0, u1, v0, v1 = self.extent
        xs = r.left() + (self.points[:, 0] - u0) / (u1 - u0) * r.width()
        ys = r.top() + (v1 - self.points[:, 1]) / (v1 - v0) * r.height()
        inside = (xs >= r.left()) & (xs <= r.right()) & (ys >= r.top()) & (ys <= r.bottom())
        classes = self.classes if self.classes is not None else np.zeros(len(xs), int)
        rad = 2.6 if len(xs) > 2000 else 3.4
        p.setPen(Qt.PenStyle.NoPen)
        for k in np.unique(classes):
            colour = QColor(self.colours[int(k) % len(self.colours)])
            colour.setAlpha(190)
            p.setBrush(colour)
            sel = inside & (classes == k)
            for x, y in zip(xs[sel].tolist(), ys[sel].tolist(), strict=True):
                p.drawEllipse(QPointF(x, y), rad, rad)
        if self.legend:
            self._paint_legend(p, r, sorted(set(int(k) for k in np.unique(classes))))

    def _paint_legend(self, p: QPainter, r: QRectF, present: list[int]) -> None:
        font = QFont(self.font())
        font.setPointSizeF(max(7.5, font.pointSizeF() * 0.85))
        p.setFont(font)
        fm = p.fontMetrics()
        names = [self.legend[k] if k < len(self.legend) else str(k) for k in present]
        w = max(fm.horizontalAdvance(n) for n in names) + 28
        h = fm.height() * len(names) + 10
        box = QRectF(r.right() - w - 8, r.top() + 8, w, h)
        p.setPen(QPen(QColor(0, 0, 0, 40), 1))
        p.setBrush(QColor(255, 255, 255, 225))
        p.drawRoundedRect(box, 6, 6)
        for i, (k, name) in enumerate(zip(present, names, strict=True)):
            y = box.top() + 5 + i * fm.height()
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(QColor(self.colours[k % len(self.colours)]))
            p.drawEllipse(QPointF(box.left() + 12, y + fm.height() / 2), 4.5, 4.5)
            p.setPen(QColor("#1f2328"))
            p.drawText(QPointF(box.left() + 22, y + fm.ascent()), name)

    def _paint_axes(self, p: QPainter, r: QRectF) -> None:
        u0, u1, v0, v1 = self.extent
        p.setPen(QColor("#57606a"))
        fm = p.fontMetrics()
        for frac in (0.0, 0.5, 1.0):
            u = u0 + frac * (u1 - u0)
            text = f"{u:.1f}"
            p.drawText(QPointF(r.left() + frac * r.width() - fm.horizontalAdvance(text) / 2,
                               r.bottom() + fm.ascent() + 3), text)
            v = v1 - frac * (v1 - v0)
            text = f"{v:.1f}"
            p.drawText(QPointF(r.left() - fm.horizontalAdvance(text) - 5, r.top() + frac * r.height() + fm.ascent() / 2),
                       text)
        name_u, name_v = self.axis_names
        p.drawText(QPointF(r.center().x() - fm.horizontalAdvance(name_u) / 2, r.bottom() + 2 * fm.height() + 2), name_u)
        p.save()
        p.translate(r.left() - fm.horizontalAdvance("-0.0") - 10, r.center().y() + fm.horizontalAdvance(name_v) / 2)
        p.rotate(-90)
        p.drawText(QPointF(0, 0), name_v)
        p.restore()

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        if self.message and self.mosaic is None and self.points is None:
            p.fillRect(self.rect(), QColor("#ffffff"))
            p.setPen(QColor("#57606a"))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.message)
            return
        if self._layer is None:
            self._layer = self._render_layer()
        p.drawImage(0, 0, self._layer)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setClipRect(self.plot_rect().adjusted(-8, -8, 8, 8))
        if self.path is not None and len(self.path) > 1:
            line = QPainterPath(self.to_pixel(*self.path[0]))
            for u, v in self.path[1:]:
                line.lineTo(self.to_pixel(float(u), float(v)))
            p.setPen(QPen(QColor(255, 255, 255, 230), 5, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
            p.drawPath(line)
            p.setPen(QPen(QColor("#6f42c1"), 2.5, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
            p.drawPath(line)
            p.setBrush(QColor("#6f42c1"))
            for u, v in self.path:
                p.drawEllipse(self.to_pixel(float(u), float(v)), 2.5, 2.5)
        r = self.plot_rect()
        for name, (u, v) in self.markers.items():
            at = self.to_pixel(u, v)
            inside = r.contains(at)
            at = QPointF(min(max(at.x(), r.left()), r.right()), min(max(at.y(), r.top()), r.bottom()))
            self._paint_marker(p, name if inside else f"{name} (off the map)", at, hollow=not inside)
        if self.cursor is not None:
            c = self.to_pixel(*self.cursor)
            for colour, width in ((QColor(255, 255, 255), 4.0), (QColor("#111111"), 1.8)):
                p.setPen(QPen(colour, width))
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.drawEllipse(c, 9, 9)
                p.drawLine(QPointF(c.x() - 16, c.y()), QPointF(c.x() - 9, c.y()))
                p.drawLine(QPointF(c.x() + 9, c.y()), QPointF(c.x() + 16, c.y()))
                p.drawLine(QPointF(c.x(), c.y() - 16), QPointF(c.x(), c.y() - 9))
                p.drawLine(QPointF(c.x(), c.y() + 9), QPointF(c.x(), c.y() + 16))

    def _paint_marker(self, p: QPainter, name: str, at: QPointF, *, hollow: bool = False) -> None:
        colour = QColor(MARKER_COLOURS.get(name.split(" ")[0], "#111111"))
        p.setPen(QPen(colour, 3) if hollow else QPen(QColor("#ffffff"), 2))
        p.setBrush(QColor("#ffffff") if hollow else colour)
        p.drawEllipse(at, 7, 7)
        font = QFont(self.font())
        font.setBold(True)
        p.setFont(font)
        width = p.fontMetrics().horizontalAdvance(name)
        r = self.plot_rect()
        x = at.x() + 10 if at.x() + 10 + width < r.right() else at.x() - 10 - width  # keep the label on the map
        y = at.y() - 8 if at.y() - 8 - p.fontMetrics().ascent() > r.top() else at.y() + 8 + p.fontMetrics().ascent()
        text_at = QPointF(x, y)
        p.setPen(QPen(QColor("#ffffff"), 3))
        path = QPainterPath()
        path.addText(text_at, font, name)
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawPath(path)
        p.fillPath(path, colour)
