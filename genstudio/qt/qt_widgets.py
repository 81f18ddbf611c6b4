"""Small shared widgets: cards, styled labels, painted status icons, tables that fit their rows."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from PySide6.QtCore import QModelIndex, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFrame,
    QGridLayout,
    QHeaderView,
    QLabel,
    QLayout,
    QScrollArea,
    QSizePolicy,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

STATUS_COLOURS = {"ready": "#1f9d55", "error": "#d1242f", "pending": "#8c959f", "warning": "#bf8700"}


def label(text: str = "", role: str | None = None, *, selectable: bool = False, wrap: bool = False,
          parent: QWidget | None = None) -> QLabel:
    """A QLabel with a style role (title, heading, muted, key, empty, pill, ok, error, code)."""
    w = QLabel(text, parent)
    if role:
        w.setProperty("role", role)
    if selectable:
        w.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        w.setCursor(Qt.CursorShape.IBeamCursor)
    w.setWordWrap(wrap)
    return w


def clear_layout(layout: QLayout) -> None:
    """Take every widget out of `layout` and delete it. Each is hidden at once: deleteLater waits for the event
    loop, and a nested loop (processEvents) may never get to it, leaving the old widget drawn at its default
    geometry over the new ones."""
    while layout.count():
        w = layout.takeAt(0).widget()
        if w is not None:
            w.hide()
            w.deleteLater()


def set_role(w: QWidget, role: str) -> None:
    """Change a widget's style role and make the style sheet notice."""
    if w.property("role") == role:
        return
    w.setProperty("role", role)
    w.style().unpolish(w)
    w.style().polish(w)


class QtCard(QFrame):
    """A white rounded panel with an optional heading; add content to `body`."""

    def __init__(self, title: str = "", parent: QWidget | None = None, *, spacing: int = 8) -> None:
        super().__init__(parent)
        self.setProperty("card", True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.body = QVBoxLayout(self)
        self.body.setContentsMargins(16, 12, 16, 14)
        self.body.setSpacing(spacing)
        self.heading = label(title, "heading")
        if title:
            self.body.addWidget(self.heading)


class QtKeyValues(QWidget):
    """Two columns of "key  value" lines; values are selectable and wrap."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setHorizontalSpacing(16)
        self.grid.setVerticalSpacing(6)
        self.grid.setColumnStretch(1, 1)
        self._values: dict[str, QLabel] = {}

    def set_rows(self, rows: Sequence[tuple[str, str]]) -> None:
        clear_layout(self.grid)
        self._values = {}
        for i, (key, value) in enumerate(rows):
            k = label(key, "key")
            k.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
            v = label(value, None, selectable=True, wrap=True)
            v.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
            self.grid.addWidget(k, i, 0)
            self.grid.addWidget(v, i, 1)
            self._values[key] = v

    def value(self, key: str) -> str:
        return self._values[key].text() if key in self._values else ""

    def set_value(self, key: str, value: str) -> None:
        if key in self._values:
            self._values[key].setText(value)


class QtFitTable(QTableWidget):
    """A read-only table as tall as its rows (it lives in a scrolling page, so it never scrolls itself)."""

    def __init__(self, headers: Sequence[str], parent: QWidget | None = None, *, max_rows: int | None = None,
                 stretch: int | None = None) -> None:
        """`stretch` is the column that takes the spare width; None gives it to the last visible column."""
        super().__init__(0, len(headers), parent)
        self.setHorizontalHeaderLabels(list(headers))
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setAlternatingRowColors(False)
        self.setShowGrid(False)
        self.setWordWrap(False)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        self.verticalHeader().setDefaultSectionSize(max(24, self.fontMetrics().height() + 10))
        header = self.horizontalHeader()
        header.setHighlightSections(False)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        if stretch is None:
            header.setStretchLastSection(True)
        else:
            header.setSectionResizeMode(stretch, QHeaderView.ResizeMode.Stretch)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self._max_rows = max_rows
        self._fit()

    def set_rows(self, rows: Sequence[Sequence[Any]], *, numeric: Sequence[int] = ()) -> None:
        """Fill the table; columns listed in `numeric` are right-aligned."""
        self.setRowCount(0)
        self.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                item = QTableWidgetItem("" if value is None else str(value))
                if c in numeric:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                    item.setData(Qt.ItemDataRole.UserRole, value)
                self.setItem(r, c, item)
        self._fit()

    def column_texts(self, column: int) -> list[str]:
        return [self.item(r, column).text() if self.item(r, column) else "" for r in range(self.rowCount())]

    def _fit(self) -> None:
        rows = self.rowCount() if self._max_rows is None else min(self.rowCount(), self._max_rows)
        height = self.horizontalHeader().sizeHint().height() + self.verticalHeader().defaultSectionSize() * max(rows, 1)
        if self._max_rows is not None and self.rowCount() > self._max_rows:
            self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.setFixedHeight(height + 2 * self.frameWidth() + 2)


class QtBarDelegate(QStyledItemDelegate):
    """Draws a proportional bar behind a numeric cell (the op histogram's counts)."""

    def __init__(self, parent: QWidget | None = None, colour: str = "#2f6feb") -> None:
        super().__init__(parent)
        self.colour = QColor(colour)
        self.maximum = 1.0

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        value = index.data(Qt.ItemDataRole.UserRole)
        if isinstance(value, (int, float)) and self.maximum > 0:
            rect = option.rect.adjusted(4, 5, -4, -5)
            width = rect.width() * min(1.0, value / self.maximum)
            bar = QColor(self.colour)
            bar.setAlphaF(0.18)
            painter.save()
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(bar)
            painter.drawRoundedRect(QRectF(rect.left(), rect.top(), max(2.0, width), rect.height()), 3, 3)
            painter.restore()
        super().paint(painter, option, index)


@cache
def _status_pixmap(kind: str, size: int, ratio: float) -> QPixmap:
    px = QPixmap(int(size * ratio), int(size * ratio))
    px.setDevicePixelRatio(ratio)
    px.fill(Qt.GlobalColor.transparent)
    p = QPainter(px)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    colour = QColor(STATUS_COLOURS.get(kind, STATUS_COLOURS["pending"]))
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(colour)
    m = size * 0.06
    p.drawEllipse(QRectF(m, m, size - 2 * m, size - 2 * m))
    pen = QPen(QColor("#ffffff"), max(1.6, size * 0.13), Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap,
               Qt.PenJoinStyle.RoundJoin)
    p.setPen(pen)
    p.setBrush(Qt.BrushStyle.NoBrush)
    s = size
    if kind == "ready":
        path = QPainterPath(QPointF(s * 0.28, s * 0.52))
        path.lineTo(QPointF(s * 0.44, s * 0.68))
        path.lineTo(QPointF(s * 0.73, s * 0.35))
        p.drawPath(path)
    elif kind in ("error", "warning"):
        p.drawLine(QPointF(s * 0.5, s * 0.27), QPointF(s * 0.5, s * 0.56))
        p.drawPoint(QPointF(s * 0.5, s * 0.73))
    else:  # pending: three dots
        for x in (0.3, 0.5, 0.7):
            p.drawPoint(QPointF(s * x, s * 0.5))
    p.end()
    return px


def status_icon(kind: str, size: int = 16) -> QIcon:
    """A round ready (tick), error or warning (exclamation mark) or pending (dots) icon, painted here."""
    icon = QIcon()
    for ratio in (1.0, 2.0):
        icon.addPixmap(_status_pixmap(kind, size, ratio))
    return icon


def icon_size(size: int) -> QSize:
    return QSize(size, size)


def fill_model_box(box: QComboBox, entries: list, preferred: str | None = None) -> bool:
    """Refill a model picker with registry entries, keeping the current choice (else `preferred`, else
    the first) without emitting change signals while it fills; False when there is no model."""
    current = box.currentData()
    names = [e.name for e in entries]
    pick = current if current in names else preferred
    box.blockSignals(True)
    box.clear()
    for e in entries:
        box.addItem(e.manifest.display_name, e.name)
    if entries:
        box.setCurrentIndex(names.index(pick) if pick in names else 0)
    box.blockSignals(False)
    return bool(entries)


def scroll_area(widget: QWidget, *, across: bool = True) -> QScrollArea:
    """`widget` in a frameless scroll area that sizes it to the view (it scrolls only below its minimum size);
    across=False never scrolls sideways (a column of cards)."""
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.Shape.NoFrame)
    if not across:
        area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    area.setWidget(widget)
    return area


def is_open(box: QComboBox, model) -> bool:
    """Whether `model` (None while none is loaded) is still the box's choice, so a refresh can leave it open."""
    return model is not None and model.name == box.currentData()
