"""Painted widgets of the GAN Faces tab: the face grid (select, mark for a morph, save) and the attribute sliders."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QImage, QPainter, QPen
from PySide6.QtWidgets import QGridLayout, QLabel, QMenu, QPushButton, QSizePolicy, QSlider, QWidget

from genstudio.qt.qt_images import rgb_to_qimage
from genstudio.qt.qt_widgets import clear_layout

MARK_COLOURS = {"A": QColor("#0969da"), "B": QColor("#bf3989")}
EDIT_RANGE = 3.0  # sliders span -3 .. 3 units (a direction's `scale` each: how far its attribute moves w)
EDIT_STEPS = 120


class QtFaceGrid(QWidget):
    """Faces in a square-ish grid, smoothly upscaled. Click: select (A); Shift+click: mark B for a morph;
    right click: a menu with both and Save. Keyboard-free; the tab owns the shortcuts."""

    selected = Signal(int)
    marked_b = Signal(int)
    save_requested = Signal(int)

    def __init__(self, parent: QWidget | None = None, *, columns: int = 4, minimum_tile: int = 56,
                 badges: bool = True) -> None:
        super().__init__(parent)
        self.images: list[QImage] = []
        self.columns = columns
        self.marks: dict[str, int | None] = {"A": None, "B": None}
        self.badges = badges
        self.minimum_tile = minimum_tile
        self.message = ""
        self.setMouseTracking(True)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(minimum_tile * 2, minimum_tile)

    def sizeHint(self) -> QSize:
        return QSize(560, 560)

    def set_images(self, rgb: np.ndarray, columns: int | None = None) -> None:
        """uint8 (N, H, W, 3) faces; the grid keeps its marks when the count is unchanged."""
        if columns:
            self.columns = columns
        if len(rgb) != len(self.images):
            self.marks = {"A": None, "B": None}
        self.images = [rgb_to_qimage(f) for f in rgb]
        self.message = ""
        self.update()

    def set_image(self, i: int, rgb: np.ndarray) -> None:
        if 0 <= i < len(self.images):
            self.images[i] = rgb_to_qimage(rgb)
            self.update()

    def set_mark(self, mark: str, i: int | None) -> None:
        self.marks[mark] = i
        self.update()

    def set_message(self, text: str) -> None:
        self.images, self.message = [], text
        self.update()

    def tile_rects(self) -> list[QRectF]:
        n = len(self.images)
        if not n:
            return []
        cols = max(1, min(self.columns, n))
        rows = (n + cols - 1) // cols
        gap = 6.0
        side = min((self.width() - gap * (cols - 1)) / cols, (self.height() - gap * (rows - 1)) / rows)
        side = max(side, 8.0)
        x0 = (self.width() - (side * cols + gap * (cols - 1))) / 2
        y0 = (self.height() - (side * rows + gap * (rows - 1))) / 2
        return [QRectF(x0 + (i % cols) * (side + gap), y0 + (i // cols) * (side + gap), side, side) for i in range(n)]

    def index_at(self, pos: QPointF) -> int | None:
        for i, r in enumerate(self.tile_rects()):
            if r.contains(pos):
                return i
        return None

    def mousePressEvent(self, event) -> None:
        i = self.index_at(event.position())
        if i is None:
            return
        if event.button() == Qt.MouseButton.RightButton:
            self._menu(i, event.globalPosition().toPoint())
        elif event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
            self.marked_b.emit(i)
        else:
            self.selected.emit(i)

    def _menu(self, i: int, at) -> None:
        menu = QMenu(self)
        menu.addAction("Select and edit", lambda: self.selected.emit(i))
        menu.addAction("Morph target (B)", lambda: self.marked_b.emit(i))
        menu.addSeparator()
        menu.addAction("Save face as PNG…", lambda: self.save_requested.emit(i))
        menu.exec(at)

    def paintEvent(self, _event) -> None:
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, True)
        p.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        if not self.images:
            p.setPen(QColor("#57606a"))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.message)
            return
        for i, (r, img) in enumerate(zip(self.tile_rects(), self.images, strict=True)):
            p.drawImage(r, img)
            for mark, colour in MARK_COLOURS.items():
                if self.marks.get(mark) == i:
                    p.setBrush(Qt.BrushStyle.NoBrush)
                    p.setPen(QPen(colour, 3))
                    p.drawRect(r.adjusted(1.5, 1.5, -1.5, -1.5))
                    if self.badges:
                        self._badge(p, r, mark, colour)

    def _badge(self, p: QPainter, r: QRectF, mark: str, colour: QColor) -> None:
        size = max(16.0, r.width() * 0.16)
        x = r.left() + 4 if mark == "A" else r.right() - size - 4
        badge = QRectF(x, r.top() + 4, size, size)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(colour)
        p.drawEllipse(badge)
        font = QFont(p.font())
        font.setBold(True)
        font.setPixelSize(int(size * 0.62))
        p.setFont(font)
        p.setPen(QColor("white"))
        p.drawText(badge, Qt.AlignmentFlag.AlignCenter, mark)


class QtDirectionSliders(QWidget):
    """One slider per attribute direction; `changed(name, amount)` while dragging, amounts in slider units."""

    changed = Signal(str, float)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setVerticalSpacing(2)
        self.sliders: dict[str, QSlider] = {}
        self.values: dict[str, QLabel] = {}

    def set_directions(self, names: list[str], tooltips: dict[str, str] | None = None) -> None:
        clear_layout(self.grid)
        self.sliders, self.values = {}, {}
        for row, name in enumerate(names):
            title = QLabel(name)
            title.setToolTip((tooltips or {}).get(name, ""))
            s = QSlider(Qt.Orientation.Horizontal)
            s.setToolTip(title.toolTip())
            s.setRange(-EDIT_STEPS // 2, EDIT_STEPS // 2)
            s.setAccessibleName(f"{name} direction")
            s.valueChanged.connect(lambda value, n=name: self._moved(n, value))
            value = QLabel("0.0")
            value.setMinimumWidth(36)
            value.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            zero = QPushButton("↺")
            zero.setFixedWidth(40)
            zero.setToolTip(f"reset {name}")
            zero.clicked.connect(lambda _=False, sl=s: sl.setValue(0))
            self.grid.addWidget(title, row, 0)
            self.grid.addWidget(s, row, 1)
            self.grid.addWidget(value, row, 2)
            self.grid.addWidget(zero, row, 3)
            self.sliders[name], self.values[name] = s, value
        self.grid.setColumnStretch(1, 1)

    @staticmethod
    def to_amount(value: int) -> float:
        return value / (EDIT_STEPS / 2) * EDIT_RANGE

    def _moved(self, name: str, value: int) -> None:
        amount = self.to_amount(value)
        self.values[name].setText(f"{amount:+.1f}")
        self.changed.emit(name, amount)

    def set_amount(self, name: str, amount: float) -> None:
        """Move a slider as if dragged (emits `changed`)."""
        self.sliders[name].setValue(int(round(max(-EDIT_RANGE, min(EDIT_RANGE, amount)) / EDIT_RANGE * EDIT_STEPS / 2)))

    def amounts(self) -> dict[str, float]:
        return {n: self.to_amount(s.value()) for n, s in self.sliders.items() if s.value()}

    def show_amounts(self, amounts: dict[str, float]) -> None:
        """Show a face's edits without emitting `changed`; names not listed go to 0."""
        self.reset()
        for name, amount in amounts.items():
            if name in self.sliders:
                s = self.sliders[name]
                s.blockSignals(True)
                self.set_amount(name, amount)
                s.blockSignals(False)
                self.values[name].setText(f"{amount:+.1f}")

    def reset(self) -> None:
        """All sliders to 0 without emitting `changed`."""
        for name, s in self.sliders.items():
            s.blockSignals(True)
            s.setValue(0)
            s.blockSignals(False)
            self.values[name].setText("0.0")
