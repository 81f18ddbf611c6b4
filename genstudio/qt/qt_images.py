"""numpy images to Qt images (the one conversion every tab uses) and the image view the tabs share."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QImage, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    """uint8 (H, W, 3), or (H, W) / (H, W, 1) greyscale, to a QImage that owns its pixels."""
    img = np.asarray(rgb, np.uint8)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    img = np.ascontiguousarray(img)
    if img.ndim == 2:
        h, w = img.shape
        return QImage(img.data, w, h, w, QImage.Format.Format_Grayscale8).copy()
    h, w, _ = img.shape
    return QImage(img.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class QtImageView(QWidget):
    """A uint8 RGB image scaled to fit, square pixels (nearest neighbour), with an optional caption."""

    def __init__(self, caption: str = "", parent: QWidget | None = None, *, minimum: int = 64,
                 smooth: bool = False) -> None:
        super().__init__(parent)
        self.caption = caption
        self.image: QImage | None = None
        self.smooth = smooth
        self.setMinimumSize(minimum, minimum + (18 if caption else 0))
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(160, 180)

    def set_image(self, rgb: np.ndarray | None) -> None:
        self.image = None if rgb is None else rgb_to_qimage(rgb)
        self.update()

    def set_caption(self, caption: str) -> None:
        self.caption = caption
        self.update()

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        fm = p.fontMetrics()
        cap_h = fm.height() + 4 if self.caption else 0
        area = QRectF(0, 0, self.width(), self.height() - cap_h)
        if self.image is not None and self.image.width() > 0:
            s = min(area.width() / self.image.width(), area.height() / self.image.height())
            w, h = self.image.width() * s, self.image.height() * s
            target = QRectF((area.width() - w) / 2, (area.height() - h) / 2, w, h)
            p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, self.smooth)
            p.drawImage(target, self.image)
            p.setPen(QPen(QColor("#d0d7de"), 1))
            p.drawRect(target.adjusted(-0.5, -0.5, 0.5, 0.5))
        else:
            side = min(area.width(), area.height())
            target = QRectF((area.width() - side) / 2, (area.height() - side) / 2, side, side)
            p.fillRect(target, QColor("#f3f4f6"))
            p.setPen(QPen(QColor("#d0d7de"), 1, Qt.PenStyle.DashLine))
            p.drawRect(target)
        if self.caption:
            p.setPen(QColor("#57606a"))
            p.drawText(QRectF(0, self.height() - cap_h, self.width(), cap_h), Qt.AlignmentFlag.AlignCenter,
                       fm.elidedText(self.caption, Qt.TextElideMode.ElideRight, self.width()))
