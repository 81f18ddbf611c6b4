"""numpy images to Qt images: the one conversion every tab uses."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage


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
