"""Small painted widgets of the VAE Explorer: the KL-per-dimension bar chart and the latent sliders."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QGridLayout, QLabel, QSizePolicy, QSlider, QWidget

from genstudio.qt.qt_widgets import clear_layout

ACTIVE_KL = 0.01  # nats: a dimension with less mean KL than this carries (almost) no information
SLIDER_RANGE = 4.0  # sliders span -4 .. 4 (prior standard deviations)
SLIDER_STEPS = 400


class QtKlChart(QWidget):
    """Mean KL per latent dimension as bars; active dimensions in colour, collapsed ones grey."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.kl = np.zeros(0, np.float32)
        self.current: int | None = None  # the dimension a slider is moving, highlighted
        self.setMinimumHeight(110)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:
        return QSize(400, 120)

    def set_kl(self, kl: np.ndarray) -> None:
        self.kl = np.asarray(kl, np.float32)
        self.update()

    def active_count(self) -> int:
        return int((self.kl > ACTIVE_KL).sum())

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        fm = p.fontMetrics()
        n = len(self.kl)
        title = f"KL per dimension (nats, held-out mean): {self.active_count()} of {n} active" if n else "KL per dimension"
        p.setPen(QColor("#1f2328"))
        p.drawText(QPointF(4, fm.ascent() + 2), title)
        if not n:
            return
        top, bottom, left = fm.height() + 8, self.height() - fm.height() - 4, 34
        right = self.width() - 6
        hi = float(max(self.kl.max(), 1e-3))
        p.setPen(QColor("#57606a"))
        p.drawText(QPointF(2, top + fm.ascent() - 2), f"{hi:.2g}")
        p.drawText(QPointF(2, bottom), "0")
        p.setPen(QPen(QColor("#d0d7de"), 1))
        p.drawLine(QPointF(left, bottom), QPointF(right, bottom))
        slot = (right - left) / n
        bar = max(2.0, slot * 0.72)
        label_every = max(1, int(np.ceil(fm.horizontalAdvance("32") * 1.6 / slot)))
        for i, v in enumerate(self.kl.tolist()):
            x = left + i * slot + (slot - bar) / 2
            h = (bottom - top) * v / hi
            colour = QColor("#0969da") if v > ACTIVE_KL else QColor("#afb8c1")
            if i == self.current:
                colour = QColor("#bf3989")
            p.fillRect(QRectF(x, bottom - h, bar, h), colour)
            if i % label_every == 0 or n <= 16:
                p.setPen(QColor("#57606a"))
                text = str(i + 1)
                p.drawText(QPointF(x + bar / 2 - fm.horizontalAdvance(text) / 2, bottom + fm.ascent() + 2), text)


class QtDimSliders(QWidget):
    """One slider per latent dimension for the current point; `changed(dim, value)` as the user moves one."""

    changed = Signal(int, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(4, 4, 4, 4)
        self.grid.setVerticalSpacing(2)
        self.sliders: list[QSlider] = []
        self.values: list[QLabel] = []

    def set_dims(self, n: int, kl: np.ndarray | None = None) -> None:
        clear_layout(self.grid)
        self.sliders, self.values = [], []
        for i in range(n):
            active = kl is None or i >= len(kl) or kl[i] > ACTIVE_KL
            name = QLabel(f"z{i + 1}")
            name.setToolTip("active" if active else "collapsed: moving it changes (almost) nothing")
            if not active:
                name.setStyleSheet("color: #8c959f")
            s = QSlider(Qt.Orientation.Horizontal)
            s.setRange(-SLIDER_STEPS // 2, SLIDER_STEPS // 2)
            s.valueChanged.connect(lambda value, i=i: self._moved(i, value))
            value = QLabel("0.00")
            value.setMinimumWidth(44)
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            self.grid.addWidget(name, i, 0)
            self.grid.addWidget(s, i, 1)
            self.grid.addWidget(value, i, 2)
            self.sliders.append(s)
            self.values.append(value)
        self.grid.setColumnStretch(1, 1)

    def _moved(self, i: int, value: int) -> None:
        v = value / (SLIDER_STEPS / 2) * SLIDER_RANGE
        self.values[i].setText(f"{v:+.2f}")
        self.changed.emit(i, v)

    def set_point(self, z: np.ndarray) -> None:
        """Show a point without emitting `changed`."""
        for s, label, v in zip(self.sliders, self.values, np.asarray(z).tolist(), strict=False):
            s.blockSignals(True)
            s.setValue(int(round(max(-SLIDER_RANGE, min(SLIDER_RANGE, v)) / SLIDER_RANGE * SLIDER_STEPS / 2)))
            s.blockSignals(False)
            label.setText(f"{v:+.2f}")
