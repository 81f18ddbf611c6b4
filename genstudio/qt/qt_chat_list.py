"""The Chat tab's conversation list: search, new, rename, delete, over a ChatStore."""

from __future__ import annotations

import sqlite3

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QInputDialog,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from genstudio.engines.llm.store import ChatStore


class QtConversationList(QWidget):
    selected = Signal(object)  # conversation id, or None when nothing is selected
    new_requested = Signal()
    failed = Signal(str)  # a rename or delete the store refused (locked, read-only, full): said in the tab

    def __init__(self, store: ChatStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store = store
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search chats")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(lambda _t: self.reload())
        lay.addWidget(self.search)
        self.list = QListWidget()
        self.list.setTextElideMode(Qt.TextElideMode.ElideRight)  # long titles end in "…", no sideways scroll
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.list.currentItemChanged.connect(self._changed)
        self.list.itemDoubleClicked.connect(lambda _i: self.rename_current())
        lay.addWidget(self.list, 1)
        row = QHBoxLayout()
        self.new_button = QPushButton("New")
        self.new_button.clicked.connect(self.new_requested.emit)
        self.rename_button = QPushButton("Rename")
        self.rename_button.clicked.connect(lambda: self.rename_current())
        self.delete_button = QPushButton("Delete")
        self.delete_button.clicked.connect(lambda: self.delete_current())
        for b in (self.new_button, self.rename_button, self.delete_button):
            row.addWidget(b)
        lay.addLayout(row)
        self._silent = False
        self._hidden: int | None = None  # the open conversation, while a search hides it from the list

    def current_id(self) -> int | None:
        item = self.list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None

    def reload(self, select: int | None = None) -> None:
        keep = select if select is not None else self.current_id()
        if keep is None:
            keep = self._hidden
        self._hidden = None
        self._silent = True
        try:
            self.list.clear()
            for c in self.store.list(self.search.text()):
                item = QListWidgetItem(c.title)
                item.setData(Qt.ItemDataRole.UserRole, c.id)
                item.setToolTip(c.title)
                self.list.addItem(item)
                if c.id == keep:
                    self.list.setCurrentItem(item)
        finally:
            self._silent = False
        if self.current_id() != keep:
            if keep is not None and self.search.text().strip() and self._exists(keep):
                self._hidden = keep  # a search filters the list only: the open chat (and its reply) stays
            else:
                self.selected.emit(self.current_id())

    def _exists(self, cid: int) -> bool:
        try:
            self.store.get(cid)
        except KeyError:
            return False
        return True

    def select(self, cid: int | None) -> None:
        for i in range(self.list.count()):
            if self.list.item(i).data(Qt.ItemDataRole.UserRole) == cid:
                self.list.setCurrentRow(i)
                return
        self.search.clear()  # a chat the search hides is listed again
        self.reload(select=cid)

    def _changed(self, current, _previous) -> None:
        if not self._silent:
            self._hidden = None
            self.selected.emit(current.data(Qt.ItemDataRole.UserRole) if current else None)

    def rename_current(self, title: str | None = None) -> None:
        cid = self.current_id()
        if cid is None:
            return
        try:
            if title is None:
                title, ok = QInputDialog.getText(self, "Rename chat", "Title:", text=self.store.get(cid).title)
                if not ok:
                    return
            self.store.rename(cid, title)
        except sqlite3.Error as e:  # the chat keeps its title, in the store and in the list
            self.failed.emit(f"The chat could not be renamed: {e}")
            return
        self.reload(select=cid)

    def delete_current(self, *, confirm: bool = True) -> None:
        cid = self.current_id()
        if cid is None:
            return
        try:
            if confirm and QMessageBox.question(self, "Delete chat", f"Delete “{self.store.get(cid).title}”?") \
                    != QMessageBox.StandardButton.Yes:
                return
            row = self.list.currentRow()
            after = self.list.item(row + 1) or self.list.item(row - 1)  # the chat below it opens, else the one above
            self.store.delete(cid)
        except sqlite3.Error as e:  # nothing was deleted: the chat stays listed and open
            self.failed.emit(f"The chat could not be deleted: {e}")
            return
        nxt = after.data(Qt.ItemDataRole.UserRole) if after else None
        self.reload(select=nxt)
        if nxt is not None and self.current_id() == nxt:  # selected silently: open it, not the deleted chat
            self.selected.emit(nxt)
