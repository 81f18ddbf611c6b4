"""The list of model folders: a two-line row per model (title; family, version, size) with a status icon."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QModelIndex, QRect, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QPainter, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListWidget,
    QListWidgetItem,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from genstudio.qt.qt_widgets import status_icon
from genstudio.runtime.procinfo import format_bytes
from genstudio.runtime.registry import ModelEntry

NAME_ROLE = Qt.ItemDataRole.UserRole  # the entry's registry name
SUBTITLE_ROLE = Qt.ItemDataRole.UserRole + 1  # "llm · v1 · 12.3 MB · shipped"
FOLDER_ROLE = Qt.ItemDataRole.UserRole + 2  # the folder, as a string (names of broken folders may repeat)
ERROR_ROLE = Qt.ItemDataRole.UserRole + 3  # the reason a model is not ready, or None
ERROR_COLOUR = "#d1242f"


class QtModelDelegate(QStyledItemDelegate):
    """Paints a row: status icon, bold title, muted subtitle; the error reason in red for broken models."""

    PAD = 10
    ICON = 18

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex) -> QSize:
        fm = option.fontMetrics
        return QSize(200, fm.height() * 2 + 3 * 6 + 4)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        widget = opt.widget
        style = widget.style() if widget else None
        painter.save()
        # background and selection from the style, without its text or icon
        opt.text = ""
        opt.icon = type(opt.icon)()
        if style:
            style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)
        r = option.rect.adjusted(self.PAD, 0, -self.PAD, 0)
        icon = index.data(Qt.ItemDataRole.DecorationRole)
        if icon is not None:
            top = r.top() + (r.height() - self.ICON) // 2
            icon.paint(painter, QRect(r.left(), top, self.ICON, self.ICON))
        text_left = r.left() + self.ICON + self.PAD
        text_rect = QRect(text_left, r.top(), r.right() - text_left, r.height())
        pal = option.palette
        title_font = QFont(option.font)
        title_font.setWeight(QFont.Weight.DemiBold)
        painter.setFont(title_font)
        fm_title = painter.fontMetrics()
        line_h = fm_title.height()
        top = text_rect.top() + (text_rect.height() - 2 * line_h - 3) // 2
        title = index.data(Qt.ItemDataRole.DisplayRole) or ""
        painter.setPen(pal.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Text))
        painter.drawText(QRect(text_rect.left(), top, text_rect.width(), line_h),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         fm_title.elidedText(title, Qt.TextElideMode.ElideRight, text_rect.width()))
        painter.setFont(option.font)
        fm = painter.fontMetrics()
        subtitle = index.data(SUBTITLE_ROLE) or ""
        error = index.data(ERROR_ROLE)
        if error:
            painter.setPen(QColor(ERROR_COLOUR))
            subtitle = error
        else:
            painter.setPen(pal.color(QPalette.ColorGroup.Disabled, QPalette.ColorRole.Text))
        painter.drawText(QRect(text_rect.left(), top + line_h + 3, text_rect.width(), fm.height()),
                         Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         fm.elidedText(subtitle, Qt.TextElideMode.ElideRight, text_rect.width()))
        painter.restore()


class QtModelList(QListWidget):
    """Every registry entry, ready or broken. `entry_selected` carries the chosen entry (or None)."""

    entry_selected = Signal(object)  # ModelEntry | None

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setItemDelegate(QtModelDelegate(self))
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setUniformItemSizes(True)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setMouseTracking(True)
        self._entries: dict[str, ModelEntry] = {}
        self.currentItemChanged.connect(self._on_current)

    def set_entries(self, entries: Sequence[ModelEntry], *, keep: str | None = None) -> None:
        """Show `entries`; select the folder `keep` if given and still listed (by folder path)."""
        self.blockSignals(True)
        try:
            self.clear()
            self._entries = {}
            for e in entries:
                key = str(e.folder)
                self._entries[key] = e
                item = QListWidgetItem()
                _fill_item(item, e)
                self.addItem(item)
        finally:
            self.blockSignals(False)
        row = next((i for i in range(self.count()) if self.item(i).data(FOLDER_ROLE) == keep), -1)
        if row >= 0:
            self.setCurrentRow(row)
        else:
            self.entry_selected.emit(None)

    def refresh_entry(self, entry: ModelEntry) -> None:
        """Redraw the row of `entry` (its status changed, e.g. the deep check refused a file)."""
        for i in range(self.count()):
            if self.item(i).data(FOLDER_ROLE) == str(entry.folder):
                _fill_item(self.item(i), entry)

    def entry_at(self, row: int) -> ModelEntry | None:
        item = self.item(row)
        return self._entries.get(item.data(FOLDER_ROLE)) if item else None

    def current_entry(self) -> ModelEntry | None:
        item = self.currentItem()
        return self._entries.get(item.data(FOLDER_ROLE)) if item else None

    def select_name(self, name: str) -> bool:
        for i in range(self.count()):
            if self.item(i).data(NAME_ROLE) == name:
                self.setCurrentRow(i)
                return True
        return False

    def names(self) -> list[str]:
        return [self.item(i).data(NAME_ROLE) for i in range(self.count())]

    def _on_current(self, current: QListWidgetItem | None, _previous: QListWidgetItem | None) -> None:
        self.entry_selected.emit(self._entries.get(current.data(FOLDER_ROLE)) if current else None)


def _fill_item(item: QListWidgetItem, e: ModelEntry) -> None:
    item.setIcon(status_icon("ready" if e.ready else "error"))
    item.setText(e.manifest.display_name if e.manifest else e.folder.name)
    item.setData(NAME_ROLE, e.name)
    item.setData(FOLDER_ROLE, str(e.folder))
    item.setData(SUBTITLE_ROLE, subtitle(e))
    item.setData(ERROR_ROLE, e.error if not e.ready else None)
    item.setToolTip(f"Not ready: {e.error}" if not e.ready else f"{e.name}: ready\n{e.folder}")


def subtitle(e: ModelEntry) -> str:
    parts = [e.family]
    if e.manifest:
        parts.append(f"v{e.manifest.version}")
    try:
        parts.append(format_bytes(e.size_bytes()))
    except OSError:
        pass
    parts.append(e.source)
    return " · ".join(parts)
