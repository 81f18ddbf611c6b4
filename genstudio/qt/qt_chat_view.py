"""The Chat tab's transcript (messages as Markdown, with copy / edit / regenerate) and the message input box."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QGuiApplication,
    QKeyEvent,
    QPalette,
    QTextCursor,
    QTextDocument,
    QTextFormat,
)
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from genstudio.qt.qt_widgets import label


def stat_number(stats, key: str) -> float | None:
    """A number from a reply's saved stats, or None when it is missing or not a number (a hand-edited history)."""
    value = stats.get(key) if isinstance(stats, dict) else None
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return value if ok else None


def stats_line(stats: dict) -> str:
    """'42 tokens · 87.3 tokens/s · first token 120 ms' under a reply; values of the wrong type are left out."""
    if not isinstance(stats, dict) or not stats:
        return ""
    parts = []
    if (tokens := stat_number(stats, "new_tokens")) is not None:
        parts.append(f"{tokens:.0f} tokens")
    if tps := stat_number(stats, "decode_tokens_per_s"):
        parts.append(f"{tps:.1f} tokens/s")
    if (ttft := stat_number(stats, "time_to_first_token_s")) is not None:
        parts.append(f"first token {ttft * 1000:.0f} ms")
    if stats.get("stopped") is True:
        parts.append("stopped")
    elif stats.get("finish_reason") == "context":  # cut off: a user would not know why the reply ends mid-sentence
        parts.append("cut off: the context window is full")
    elif stats.get("finish_reason") == "length":
        parts.append("cut off at the max new tokens")
    return " · ".join(parts)


class QtMessage(QFrame):
    """One message: a role line with actions, the text as Markdown (code blocks kept), stats for replies."""

    copy_requested = Signal(object)
    edit_requested = Signal(object)
    regenerate_requested = Signal(object)

    def __init__(self, role: str, text: str = "", *, message_id: int | None = None, position: int = 0,
                 stats: dict | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.role, self.message_id, self.position = role, message_id, position
        self.setProperty("card", True)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(12, 8, 12, 8)
        head = QHBoxLayout()
        head.addWidget(label("You" if role == "user" else "Assistant", "key"))
        head.addStretch(1)
        self.copy_button = self._tool("Copy", lambda: self.copy_requested.emit(self))
        head.addWidget(self.copy_button)
        self.edit_button = self._tool("Edit", lambda: self.edit_requested.emit(self))
        self.edit_button.setVisible(role == "user")
        head.addWidget(self.edit_button)
        self.regenerate_button = self._tool("Regenerate", lambda: self.regenerate_requested.emit(self))
        self.regenerate_button.setVisible(False)
        head.addWidget(self.regenerate_button)
        lay.addLayout(head)
        self.body = QLabel()
        self.body.setTextFormat(Qt.TextFormat.RichText)  # Markdown rendered by markdown_html
        self.body.setWordWrap(True)
        self.body.setOpenExternalLinks(False)
        self.body.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                          | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self.body.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)
        lay.addWidget(self.body)
        self.stats_label = label("", "muted")
        lay.addWidget(self.stats_label)
        self.text = ""
        self.set_text(text)
        self.set_stats(stats or {})

    def _tool(self, text: str, slot) -> QPushButton:
        b = QPushButton(text)
        b.setFlat(True)
        b.setCursor(Qt.CursorShape.PointingHandCursor)
        b.clicked.connect(slot)
        return b

    def set_text(self, text: str) -> None:
        self.text = text
        self.body.setText(markdown_html(text, self.palette().color(QPalette.ColorRole.AlternateBase)) if text else "…")

    def set_stats(self, stats: dict) -> None:
        line = stats_line(stats)
        self.stats_label.setText(line)
        self.stats_label.setVisible(bool(line))


def markdown_html(text: str, code_background: QColor) -> str:
    """Markdown as rich text, with fenced code blocks shaded so they stand apart from the prose."""
    doc = QTextDocument()
    md = QTextDocument.MarkdownFeature
    doc.setMarkdown(text, md.MarkdownDialectGitHub | md.MarkdownNoHTML)  # "<div>" in prose is text, not a tag
    block = doc.begin()
    while block.isValid():
        fmt = block.blockFormat()
        if fmt.hasProperty(QTextFormat.Property.BlockCodeFence) or fmt.nonBreakableLines():
            fmt.setBackground(code_background)
            fmt.setLeftMargin(6)
            QTextCursor(block).setBlockFormat(fmt)
        block = block.next()
    return doc.toHtml()


class QtTranscript(QScrollArea):
    """The messages of one conversation, newest at the bottom; follows the stream while at the bottom."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        inner = QWidget()
        self.column = QVBoxLayout(inner)
        self.column.setContentsMargins(8, 8, 8, 8)
        self.column.setSpacing(8)
        self.notice = label("", "warning", wrap=True)
        self.notice.setVisible(False)
        self.column.addWidget(self.notice)
        self.column.addStretch(1)
        self.setWidget(inner)
        self.messages: list[QtMessage] = []
        self._follow = True
        self.verticalScrollBar().rangeChanged.connect(self._range_changed)
        self.verticalScrollBar().valueChanged.connect(self._value_changed)

    def clear(self) -> None:
        for m in self.messages:
            m.setParent(None)
            m.deleteLater()
        self.messages = []
        self.set_notice("")

    def add(self, msg: QtMessage) -> QtMessage:
        self.column.insertWidget(self.column.count() - 1, msg)
        self.messages.append(msg)
        self._follow = True
        self.update_actions()
        return msg

    def remove_from(self, position: int) -> None:
        keep = [m for m in self.messages if m.position < position]
        for m in self.messages:
            if m.position >= position:
                m.setParent(None)
                m.deleteLater()
        self.messages = keep
        self.update_actions()

    def update_actions(self, busy: bool = False) -> None:
        last_reply = next((m for m in reversed(self.messages) if m.role == "assistant"), None)
        for m in self.messages:
            m.regenerate_button.setVisible(m is last_reply and not busy)
            m.edit_button.setEnabled(not busy)

    def set_notice(self, text: str) -> None:
        self.notice.setText(text)
        self.notice.setVisible(bool(text))

    def _value_changed(self, v: int) -> None:
        self._follow = v >= self.verticalScrollBar().maximum() - 4

    def _range_changed(self, _lo: int, hi: int) -> None:
        if self._follow:
            QTimer.singleShot(0, lambda: self.verticalScrollBar().setValue(self.verticalScrollBar().maximum()))


def copy_text(text: str) -> None:
    QGuiApplication.clipboard().setText(text)


class QtChatInput(QPlainTextEdit):
    """Enter sends, Shift+Enter adds a line."""

    submitted = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setPlaceholderText("Message (Enter sends, Shift+Enter adds a line)")
        self.setTabChangesFocus(True)
        self.setMaximumHeight(120)

    def keyPressEvent(self, e: QKeyEvent) -> None:  # noqa: N802 - Qt's name
        if e.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (e.modifiers() & Qt.KeyboardModifier.ShiftModifier):
            text = self.toPlainText()
            if text.strip():
                self.submitted.emit(text)
            e.accept()
            return
        super().keyPressEvent(e)
