"""The flow tab's plot: a density or histogram picture over a 2-D range, with a colour bar, points and lines.

QtDensityPlot takes numpy arrays (an RGB picture from genstudio.engines.flow_render, points (N, 2),
polylines (K, P, 2)) and paints them with QPainter; it reports the data coordinates under the cursor.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

from genstudio.engines.flow_render import viridis_lut
from genstudio.qt.qt_images import rgb_to_qimage

Range = tuple[float, float, float, float]

_MARGIN = 28  # pixels around the plot for the axis labels
_BAR_W = 14  # colour bar width
_BAR_GAP = 56  # room right of the plot for the colour bar and its labels


class QtDensityPlot(QWidget):
    hovered = Signal(float, float)  # data coordinates under the cursor; NaN, NaN when it leaves

    def __init__(self, title: str = "", parent: QWidget | None = None, *, colour_bar: bool = True) -> None:
        super().__init__(parent)
        self.title = title
        self.colour_bar = colour_bar
        self.image: QImage | None = None
        self.range: Range = (-4.0, 4.0, -4.0, 4.0)
        self.bar_labels: tuple[str, str, str] = ("", "", "")  # low end, high end, quantity
        self.points: np.ndarray | None = None  # (N, 2) in data coordinates
        self.lines: np.ndarray | None = None  # (K, P, 2) in data coordinates
        self.image_opacity = 1.0
        self.message = ""  # shown when there is no picture
        self.setMouseTracking(True)
        self.setMinimumSize(300, 280)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self._bar = self._bar_image()

    def sizeHint(self) -> QSize:
        return QSize(520, 480)

    # -- content -----------------------------------------------------------------------------------
    def set_picture(self, rgb: np.ndarray | None, range_: Range | None = None) -> None:
        self.image = None if rgb is None else rgb_to_qimage(rgb)
        if range_ is not None:
            self.range = tuple(float(v) for v in range_)  # type: ignore[assignment]
        self.update()

    def set_bar(self, low: str, high: str, quantity: str) -> None:
        self.bar_labels = (low, high, quantity)
        self.update()

    def set_points(self, points: np.ndarray | None) -> None:
        self.points = None if points is None else np.asarray(points, np.float64)
        self.update()

    def set_lines(self, lines: np.ndarray | None) -> None:
        self.lines = None if lines is None else np.asarray(lines, np.float64)
        self.update()

    def set_image_opacity(self, opacity: float) -> None:
        self.image_opacity = float(min(max(opacity, 0.0), 1.0))
        self.update()

    def set_message(self, text: str) -> None:
        self.message = text
        self.update()

    # -- geometry ----------------------------------------------------------------------------------
    def plot_rect(self) -> QRectF:
        """The square the range is drawn in."""
        right = _BAR_GAP if self.colour_bar else 8
        w = max(self.width() - _MARGIN - right, 10)
        h = max(self.height() - 2 * _MARGIN, 10)
        side = min(w, h)
        return QRectF(_MARGIN + (w - side) / 2, _MARGIN + (h - side) / 2, side, side)

    def to_screen(self, pts: np.ndarray) -> np.ndarray:
        """Data coordinates (..., 2) to widget pixels (..., 2)."""
        r = self.plot_rect()
        x0, x1, y0, y1 = self.range
        sx = r.left() + (pts[..., 0] - x0) / (x1 - x0) * r.width()
        sy = r.bottom() - (pts[..., 1] - y0) / (y1 - y0) * r.height()
        return np.stack([sx, sy], -1)

    def to_data(self, px: float, py: float) -> tuple[float, float] | None:
        r = self.plot_rect()
        if not r.contains(QPointF(px, py)):
            return None
        x0, x1, y0, y1 = self.range
        return (x0 + (px - r.left()) / r.width() * (x1 - x0), y1 - (py - r.top()) / r.height() * (y1 - y0))

    # -- events ------------------------------------------------------------------------------------
    def mouseMoveEvent(self, event) -> None:
        pos = event.position()
        hit = self.to_data(pos.x(), pos.y())
        self.hovered.emit(*(hit if hit else (math.nan, math.nan)))
        super().mouseMoveEvent(event)

    def leaveEvent(self, event) -> None:
        self.hovered.emit(math.nan, math.nan)
        super().leaveEvent(event)

    # -- painting ----------------------------------------------------------------------------------
    @staticmethod
    def _bar_image() -> QImage:
        lut = viridis_lut()[::-1]  # top of the bar is the high end
        return rgb_to_qimage(np.repeat(lut[:, None, :], 2, axis=1))

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        r = self.plot_rect()
        pal = self.palette()
        p.fillRect(r, QColor(24, 24, 32))
        if self.title:
            f = QFont(self.font())
            f.setBold(True)
            p.setFont(f)
            p.setPen(pal.windowText().color())
            p.drawText(QRectF(r.left(), 4, r.width(), _MARGIN - 6), Qt.AlignmentFlag.AlignCenter, self.title)
            p.setFont(self.font())
        if self.image is not None:
            p.setOpacity(self.image_opacity)
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            p.drawImage(r, self.image)
            p.setOpacity(1.0)
        elif self.message:
            p.setPen(QColor(220, 220, 220))
            p.drawText(r.adjusted(12, 12, -12, -12), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap,
                       self.message)
        p.save()
        p.setClipRect(r)
        if self.lines is not None and len(self.lines):
            p.setPen(QPen(QColor(255, 255, 255, 110), 1.0))
            for line in self.to_screen(self.lines):
                p.drawPolyline(QPolygonF([QPointF(x, y) for x, y in line]))
        if self.points is not None and len(self.points):
            p.setPen(QPen(QColor(255, 90, 60, 230), 3.2, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
            p.drawPoints(QPolygonF([QPointF(x, y) for x, y in self.to_screen(self.points)]))
        p.restore()
        self._paint_axes(p, r)
        if self.colour_bar and self.image is not None:
            self._paint_bar(p, r)
        p.end()

    def _paint_axes(self, p: QPainter, r: QRectF) -> None:
        x0, x1, y0, y1 = self.range
        p.setPen(self.palette().mid().color())
        p.drawRect(r)
        p.setPen(self.palette().windowText().color())
        fm = p.fontMetrics()
        p.drawText(QPointF(r.left(), r.bottom() + fm.height()), f"{x0:g}")
        text = f"{x1:g}"
        p.drawText(QPointF(r.right() - fm.horizontalAdvance(text), r.bottom() + fm.height()), text)
        p.drawText(QPointF(r.left() - fm.horizontalAdvance(f"{y0:g}") - 4, r.bottom()), f"{y0:g}")
        p.drawText(QPointF(r.left() - fm.horizontalAdvance(f"{y1:g}") - 4, r.top() + fm.ascent()), f"{y1:g}")

    def _paint_bar(self, p: QPainter, r: QRectF) -> None:
        bar = QRectF(r.right() + 10, r.top(), _BAR_W, r.height())
        p.drawImage(bar, self._bar)
        p.setPen(self.palette().mid().color())
        p.drawRect(bar)
        low, high, quantity = self.bar_labels
        p.setPen(self.palette().windowText().color())
        fm = p.fontMetrics()
        p.drawText(QPointF(bar.right() + 3, bar.top() + fm.ascent()), high)
        p.drawText(QPointF(bar.right() + 3, bar.bottom()), low)
        p.save()
        p.translate(bar.right() + 3 + fm.ascent(), bar.center().y() + fm.horizontalAdvance(quantity) / 2)
        p.rotate(-90)
        p.drawText(QPointF(0, 0), quantity)
        p.restore()

