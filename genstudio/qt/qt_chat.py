"""The Chat tab: conversations with a local LLM, streamed through the job adapter, stored in SQLite."""

from __future__ import annotations

import re
import sqlite3
import time
from collections.abc import Callable, Generator
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from genstudio.engines.llm.chat import ChatDelta, ChatEngine, ChatResult
from genstudio.engines.llm.sampling import SamplingSettings
from genstudio.engines.llm.store import ChatStore
from genstudio.qt.qt_chat_build import QtBuildPanel
from genstudio.qt.qt_chat_list import QtConversationList
from genstudio.qt.qt_chat_panel import QtSamplingPanel
from genstudio.qt.qt_chat_view import QtChatInput, QtMessage, QtTranscript, copy_text, stat_number
from genstudio.qt.qt_context import StudioContext, TabSpec
from genstudio.qt.qt_jobs import JobFailure, QtJob
from genstudio.qt.qt_widgets import label
from genstudio.runtime.registry import ModelEntry

PREFERRED_MODEL = "smollm2-135m-instruct"
SAVE_EVERY_S = 1.0  # a streaming reply is written to the store at least this often


class QtChatTab(QWidget):
    reply_finished = Signal(str)  # "succeeded", "cancelled" or "failed"
    model_built = Signal()

    def __init__(self, ctx: StudioContext, parent: QWidget | None = None, *, store: ChatStore | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.store = store or ChatStore()
        self.engine: ChatEngine | None = None
        self.job: QtJob | None = None
        self.editing: int | None = None  # position of the user message being edited
        self._draft = ""  # what was in the input box when an edit began; it comes back when the edit ends
        self._reply: QtMessage | None = None  # the streaming reply's widget, while its conversation is shown
        self._reply_ref: tuple[int, int, int] = (0, 0, 0)  # its conversation, message id and position
        self._cid: int | None = None
        self._last_save = 0.0
        self._notices: dict[int, str] = {}  # a reply's failure, said when its chat (not the one open then) opens

        self.stack = QStackedWidget()
        self.build_panel = QtBuildPanel()
        self.build_panel.built.connect(self._on_built)
        self.build_panel.look_again.connect(lambda: (self.ctx.registry.refresh(), self.refresh_models()))
        self.stack.addWidget(self.build_panel)
        self.stack.addWidget(self._chat_page())
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.stack)
        self._system_timer = QTimer(self, singleShot=True, interval=400)
        self._system_timer.timeout.connect(self._save_system)
        self.refresh_models()
        self.conversations.reload()
        if self.conversations.list.count():
            self.conversations.list.setCurrentRow(0)  # the most recent conversation

    # -- layout ---------------------------------------------------------------------------------
    def _chat_page(self) -> QWidget:
        page = QSplitter(Qt.Orientation.Horizontal)
        self.conversations = QtConversationList(self.store)
        self.conversations.selected.connect(self.open_conversation)
        self.conversations.new_requested.connect(self.new_conversation)
        self.conversations.failed.connect(lambda text: self.transcript.set_notice(text))
        page.addWidget(self.conversations)

        center = QWidget()
        col = QVBoxLayout(center)
        col.setContentsMargins(0, 0, 0, 0)
        self.transcript = QtTranscript()
        col.addWidget(self.transcript, 1)
        self.edit_bar = QWidget()
        eb = QHBoxLayout(self.edit_bar)
        eb.setContentsMargins(0, 0, 0, 0)
        eb.addWidget(label("Editing a message: Send replaces it and everything after it.", "muted"))
        cancel_edit = QPushButton("Cancel edit")
        cancel_edit.clicked.connect(self.cancel_edit)
        eb.addStretch(1)
        eb.addWidget(cancel_edit)
        self.edit_bar.setVisible(False)
        col.addWidget(self.edit_bar)
        row = QHBoxLayout()
        self.input = QtChatInput()
        self.input.submitted.connect(self.send)
        row.addWidget(self.input, 1)
        buttons = QVBoxLayout()
        self.send_button = QPushButton("Send")
        self.send_button.setDefault(True)
        self.send_button.clicked.connect(lambda: self.send(self.input.toPlainText()))
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("Save this conversation as Markdown")
        self.export_button.clicked.connect(lambda: self.export_markdown())
        for b in (self.send_button, self.stop_button, self.export_button):
            buttons.addWidget(b)
        row.addLayout(buttons)
        col.addLayout(row)
        self.status = label("", "muted")
        col.addWidget(self.status)
        page.addWidget(center)

        side = QWidget()
        sl = QVBoxLayout(side)
        sl.setContentsMargins(0, 0, 0, 0)
        sl.addWidget(label("Model", "heading"))
        self.model_box = QComboBox()
        self.model_box.currentIndexChanged.connect(self._model_changed)
        sl.addWidget(self.model_box)
        self.panel = QtSamplingPanel()
        self.panel.changed.connect(self._save_settings)
        self.panel.system_changed.connect(lambda _t: self._system_timer.start())
        sl.addWidget(self.panel, 1)
        page.addWidget(side)
        page.setStretchFactor(0, 1)
        page.setStretchFactor(1, 4)
        page.setStretchFactor(2, 1)
        page.setSizes([220, 760, 260])
        return page

    # -- models -----------------------------------------------------------------------------------
    def models(self) -> list[ModelEntry]:
        return self.ctx.registry.ready("llm")

    def refresh_models(self) -> None:
        entries = self.models()
        current = self.model_box.currentData()
        self.model_box.blockSignals(True)
        self.model_box.clear()
        for e in entries:
            self.model_box.addItem(e.manifest.display_name, e.name)
        names = [e.name for e in entries]
        pick = current if current in names else (PREFERRED_MODEL if PREFERRED_MODEL in names else None)
        if pick:
            self.model_box.setCurrentIndex(names.index(pick))
        self.model_box.blockSignals(False)
        self.stack.setCurrentIndex(1 if entries else 0)
        if entries:
            self._model_changed()

    def models_changed(self) -> None:  # models imported on the Models tab; the open chat and its model stay
        self.refresh_models()

    def current_entry(self) -> ModelEntry | None:
        name = self.model_box.currentData()
        return next((e for e in self.models() if e.name == name), None)

    def _model_changed(self, *_a) -> None:
        entry = self.current_entry()
        if entry is None:
            return
        if self.engine is not None and self.engine.name != entry.name:
            self.engine = None
        self.panel.set_defaults(SamplingSettings.from_dict(entry.manifest.defaults))
        self._apply_conversation_settings()

    def _on_built(self) -> None:
        self.ctx.registry.refresh()
        self.refresh_models()
        self.ctx.show_status("Language model built")
        self.model_built.emit()

    def _window(self) -> int:
        entry = self.current_entry()
        if self.engine is not None:
            return self.engine.context_window
        return int(entry.manifest.defaults.get("context_window", 2048)) if entry else 2048

    # -- conversations ----------------------------------------------------------------------------
    def new_conversation(self) -> int:
        entry = self.current_entry()
        # with no chat open, a system prompt and settings set in the panel are for the chat made now
        keep = self._cid is None
        conv = self.store.create("New chat", model=entry.name if entry else "",
                                 system_prompt=self.panel.system.toPlainText() if keep else "",
                                 settings=self.panel.changed_values() if keep else None)
        self.conversations.search.clear()
        self.conversations.reload(select=conv.id)
        self.open_conversation(conv.id)
        self.input.setFocus()
        return conv.id

    def open_conversation(self, cid: int | None) -> None:
        if self.busy():
            self.stop()  # the reply keeps its place in the store; its widget goes with this view
            self._reply = None
        if self._system_timer.isActive():  # a system prompt typed just now belongs to the chat it was typed in
            self._system_timer.stop()
            self._save_system()
        self._cid = cid
        self.cancel_edit()
        self.transcript.clear()
        used = 0
        if cid is not None:
            conv = self.store.get(cid)
            self.panel.set_system(conv.system_prompt)
            for m in self.store.messages(cid):
                self.transcript.add(self._message_widget(m.role, m.content, m.id, m.position, m.stats))
                if m.role == "assistant" and (n := stat_number(m.stats, "context_used")) is not None:
                    used = int(n)  # a hand-edited value of the wrong type is skipped, never raised
            if cid in self._notices:
                self.transcript.set_notice(self._notices.pop(cid))
        else:
            self.panel.set_system("")
        if self.job is not None and cid is not None and self._reply_ref[0] == cid:
            # back in the chat of a stopped reply that has not landed yet: it lands in this widget
            self._reply = next((w for w in self.transcript.messages if w.message_id == self._reply_ref[1]), None)
        self.transcript.update_actions(self.job is not None)
        self._apply_conversation_settings()
        self.panel.set_context(used, self._window())

    def _apply_conversation_settings(self) -> None:
        saved = self.store.get(self._cid).settings if self._cid is not None else {}
        self.panel.set_settings(SamplingSettings.from_dict({**self.panel.defaults.to_dict(), **saved}))

    def _save_settings(self) -> None:
        if self._cid is not None:
            self._write(self.store.set_settings, self._cid, self.panel.changed_values())

    def _save_system(self) -> None:
        if self._cid is not None:
            self._write(self.store.set_system_prompt, self._cid, self.panel.system.toPlainText())

    def _write(self, write: Callable, *args) -> bool:
        """A store write; a full disk, a read-only or locked history is said in the transcript, never raised."""
        try:
            write(*args)
        except sqlite3.Error as e:
            self.transcript.set_notice(f"The conversation could not be saved: {e}")
            return False
        return True

    def _message_widget(self, role, text, mid, position, stats=None) -> QtMessage:
        w = QtMessage(role, text, message_id=mid, position=position, stats=stats)
        w.copy_requested.connect(lambda m: copy_text(m.text))
        w.edit_requested.connect(self.edit_message)
        w.regenerate_requested.connect(lambda m: self.regenerate())
        return w

    # -- sending ----------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Called by the main window on close: save a system prompt typed just now, stop a model build,
        stop a streaming reply and save what has streamed so far (its cancel signal comes too late on close)."""
        if self._system_timer.isActive():
            self._system_timer.stop()
            self._save_system()
        if self.busy():
            self.stop()
            self._save_stopped(self.job.last_progress)
        self.build_panel.shutdown()

    def busy(self) -> bool:
        return self.job is not None and self.job.is_running()

    def send(self, text: str) -> bool:
        text = text.strip()
        entry = self.current_entry()
        if not text or self.busy() or entry is None:
            return False
        if self._cid is None:
            self.new_conversation()
        cid = self._cid
        self._system_timer.stop()
        self._save_system()
        try:
            draft = None
            if self.editing is not None:
                self.store.delete_from(cid, self.editing)
                self.transcript.remove_from(self.editing)
                draft = self._end_edit()
            if not self.store.messages(cid) and self.store.get(cid).title == "New chat":
                self.store.rename(cid, text.splitlines()[0][:48])
                self.conversations.search.clear()  # so the chat shows in the list under its new title
                self.conversations.reload(select=cid)
            m = self.store.add_message(cid, "user", text)
        except sqlite3.Error as e:  # the text stays in the input box
            self.transcript.set_notice(f"The message could not be saved: {e}")
            return False
        self.transcript.add(self._message_widget("user", text, m.id, m.position))
        if draft:
            self.input.setPlainText(draft)
        else:
            self.input.clear()
        self._start_reply(entry)
        return True

    def regenerate(self) -> None:
        """Replace the last reply with a new one."""
        if self.busy() or self._cid is None:
            return
        msgs = self.store.messages(self._cid)
        if not msgs or msgs[-1].role != "assistant":
            return
        if not self._write(self.store.delete_from, self._cid, msgs[-1].position):
            return
        self.transcript.remove_from(msgs[-1].position)
        self._start_reply(self.current_entry())

    def edit_message(self, msg: QtMessage) -> None:
        if self.busy():
            return
        if self.editing is None:
            self._draft = self.input.toPlainText()
        self.editing = msg.position
        self.input.setPlainText(msg.text)
        self.input.setFocus()
        self.edit_bar.setVisible(True)

    def cancel_edit(self) -> None:
        if self.editing is not None:
            self.input.setPlainText(self._draft)  # the message being edited stays as it was
        self._end_edit()

    def _end_edit(self) -> str:
        draft, self._draft = self._draft, ""
        self.editing = None
        self.edit_bar.setVisible(False)
        return draft

    def stop(self) -> None:
        if self.job is not None:
            self.job.cancel()

    def _start_reply(self, entry: ModelEntry) -> None:
        cid = self._cid
        messages = self.store.chat_messages(cid)
        try:
            if self.store.get(cid).model != entry.name:  # the model of the replies, as the export says it
                self.store.set_model(cid, entry.name)
            reply = self.store.add_message(cid, "assistant", "")
        except sqlite3.Error as e:
            self.transcript.set_notice(f"The reply could not be saved: {e}")
            return
        self._reply_ref = (cid, reply.id, reply.position)
        self._notices.pop(cid, None)
        self._reply = self.transcript.add(self._message_widget("assistant", "", reply.id, reply.position))
        self.transcript.set_notice("")
        settings = self.panel.settings()
        self.job = self.ctx.jobs.start("chat", self._reply_job(entry, messages, settings))
        self.job.progressed.connect(self._on_delta)
        self.job.succeeded.connect(self._on_done)
        self.job.cancelled.connect(self._on_cancelled)
        self.job.failed.connect(self._on_failed)
        self._set_busy(True)

    def _reply_job(self, entry: ModelEntry, messages: list[dict], settings: SamplingSettings
                   ) -> Generator[ChatDelta, None, ChatResult]:
        """Runs on a worker thread: loads the engine on first use, then streams the reply."""
        if self.engine is None or self.engine.name != entry.name:
            yield ChatDelta(0, settings.max_new_tokens, "", "", message="loading the model…")
            self.engine = ChatEngine.from_entry(entry, self.ctx.pool)
        return (yield from self.engine.generate(messages, settings))

    def _set_busy(self, busy: bool) -> None:
        self.send_button.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        self.model_box.setEnabled(not busy)
        self.transcript.update_actions(busy)

    def _on_delta(self, d: ChatDelta) -> None:
        if self._reply is not None:
            if d.notice:
                self.transcript.set_notice(d.notice)
            self._reply.set_text(d.text)
            self.status.setText(d.message)
        now = time.monotonic()
        if now - self._last_save > SAVE_EVERY_S:
            self._last_save = now
            self._write(self.store.update_message, self._reply_ref[1], d.text)

    def _finish(self, state: str) -> None:
        self._reply = None
        self.job = None
        self._set_busy(False)
        self.conversations.reload(select=self._cid)
        self.reply_finished.emit(state)

    def _on_done(self, r: ChatResult) -> None:
        stats = {**r.stats.to_dict(), "finish_reason": r.finish_reason}
        saved = self._write(self.store.update_message, self._reply_ref[1], r.text, stats)
        if self._reply is not None:
            self._reply.set_text(r.text)
            self._reply.set_stats(stats)
            if saved:
                self.transcript.set_notice(r.notice)
            self.panel.set_context(r.stats.context_used, r.stats.context_window)
        self.status.setText(f"{r.stats.decode_tokens_per_s:.1f} tokens/s, first token after "
                            f"{r.stats.time_to_first_token_s * 1000:.0f} ms")
        self._finish("succeeded")

    def _save_stopped(self, last) -> tuple[str, dict]:
        """Write a stopped reply as far as it streamed (`last` is the newest delta seen, or None)."""
        text = last.text if isinstance(last, ChatDelta) else ""
        stats = {"new_tokens": last.step if isinstance(last, ChatDelta) else 0, "stopped": True}
        self._write(self.store.update_message, self._reply_ref[1], text, stats)
        return text, stats

    def _on_cancelled(self, last) -> None:
        text, stats = self._save_stopped(last)
        if self._reply is not None:
            self._reply.set_text(text)
            self._reply.set_stats(stats)
        self.status.setText("Stopped")
        self._finish("cancelled")

    def _on_failed(self, failure: JobFailure) -> None:
        cid, _mid, position = self._reply_ref
        self._write(self.store.delete_from, cid, position)  # in the reply's chat, whichever one is open now
        notice = f"The reply failed: {failure.message}"
        if cid == self._cid:
            self.transcript.remove_from(position)
            self.transcript.set_notice(notice)
        else:  # the user went to another chat: the notice waits for the reply's own
            self._notices[cid] = notice
        self.status.setText("")
        self._finish("failed")

    # -- export -----------------------------------------------------------------------------------
    def export_markdown(self, path: Path | None = None) -> Path | None:
        if self._cid is None:
            return None
        if path is None:
            name = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', "-", self.store.get(self._cid).title)[:60].strip(" .") or "chat"
            chosen, _ = QFileDialog.getSaveFileName(self, "Export conversation", str(self.ctx.output_dir() / f"{name}.md"),
                                                    "Markdown (*.md)")
            if not chosen:
                return None
            path = Path(chosen)
        last = self.job.last_progress if self.job is not None else None
        if self._reply_ref[0] == self._cid and isinstance(last, ChatDelta):  # a streaming reply, as far as it is shown
            self._write(self.store.update_message, self._reply_ref[1], last.text)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(self.store.export_markdown(self._cid), encoding="utf-8")
        except OSError as e:  # a read-only folder, a full disk
            self.ctx.show_status(f"Could not save {path}: {e}")
            self.transcript.set_notice(f"The export failed: could not write {path}: {e}")
            return None
        self.ctx.show_status(f"Saved {path}")
        return path


CHAT_TAB = TabSpec(key="chat", title="Chat", factory=QtChatTab)
