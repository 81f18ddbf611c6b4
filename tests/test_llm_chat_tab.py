"""The Chat tab offscreen on the tiny model: send, stream, stop, regenerate, edit, conversations, build panel."""

from __future__ import annotations

import shutil
import sys

import pytest
from llm_tiny import exported_tiny
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton

from genstudio.engines.llm.store import ChatStore
from genstudio.qt.qt_context import StudioContext
from genstudio.qt.qt_jobs import JobManager
from genstudio.runtime import paths
from genstudio.runtime.registry import Registry
from genstudio.runtime.sessions import SessionConfig, SessionPool

WAIT_MS = 60_000  # the first reply loads the model (safety check in a child process) on a busy 2-core box


def make_tab(qtbot, tmp_path, *, with_model: bool = True):
    from genstudio.qt.qt_chat import CHAT_TAB

    if with_model:
        shutil.copytree(exported_tiny(), paths.user_models_dir() / "tiny-llama")
    jobs = JobManager()
    ctx = StudioContext(registry=Registry(), pool=SessionPool(SessionConfig(provider="cpu", threads=1)), jobs=jobs,
                        output_dir=lambda: tmp_path / "out")
    tab = CHAT_TAB.factory(ctx)
    qtbot.addWidget(tab)
    tab.resize(1100, 700)
    tab.show()
    return tab, jobs


@pytest.fixture
def chat(qtbot, tmp_path, models_root):
    tab, jobs = make_tab(qtbot, tmp_path)
    yield tab
    jobs.shutdown()


def send_and_wait(qtbot, tab, text: str) -> str:
    with qtbot.waitSignal(tab.reply_finished, timeout=WAIT_MS) as blocker:
        assert tab.send(text)
    return blocker.args[0]


def test_tab_spec_is_registered():
    from genstudio.qt.qt_tabs import TAB_SPECS, load_tab_spec

    keys = [load_tab_spec(line).key for line in TAB_SPECS]
    assert "chat" in keys and load_tab_spec(TAB_SPECS[keys.index("chat")]).title == "Chat"


def test_send_streams_a_reply_and_stores_it(qtbot, chat):
    tab = chat
    assert tab.stack.currentIndex() == 1  # a model is ready: the chat page, not the build panel
    tab.panel.max_new_tokens.setValue(8)
    tab.panel.seed.setValue(5)
    seen = []
    tab.ctx.jobs.job_started.connect(lambda job: job.progressed.connect(lambda d: seen.append(d.text)))
    assert send_and_wait(qtbot, tab, "hello there") == "succeeded"
    cid = tab.conversations.current_id()
    msgs = tab.store.messages(cid)
    assert [m.role for m in msgs] == ["user", "assistant"]
    assert msgs[1].stats["new_tokens"] >= 1 and "decode_tokens_per_s" in msgs[1].stats
    assert tab.transcript.messages[-1].text == msgs[1].content
    assert "tokens" in tab.transcript.messages[-1].stats_label.text()
    assert tab.panel.meter.value() > 0
    assert seen  # progress arrived while streaming
    assert tab.store.get(cid).title == "hello there"


@pytest.fixture
def slow_engine(monkeypatch):
    """Replies that never end on their own and take 20 ms a token, so a stop always lands mid-reply."""
    import time

    from genstudio.engines.llm.chat import ChatEngine

    real = ChatEngine.from_entry

    def from_entry(*a, **kw):
        eng = real(*a, **kw)
        eng.tokenizer.special.eos_ids = []
        gen = eng.generate

        def slow(*ga, **gk):
            inner = gen(*ga, **gk)
            try:
                while True:
                    item = next(inner)
                    time.sleep(0.02)
                    yield item
            except StopIteration as stop:
                return stop.value
            finally:
                inner.close()
        eng.generate = slow
        return eng
    monkeypatch.setattr(ChatEngine, "from_entry", staticmethod(from_entry))


def test_stop_within_a_token_keeps_the_partial_reply(qtbot, chat, slow_engine):
    tab = chat
    tab.panel.max_new_tokens.setValue(4000)
    tab.panel.seed.setValue(1)
    started = []
    tab.ctx.jobs.job_started.connect(started.append)
    with qtbot.waitSignal(tab.reply_finished, timeout=WAIT_MS) as blocker:
        tab.send("go on and on")
        qtbot.waitUntil(lambda: bool(started) and started[0].delivered_count >= 3, timeout=WAIT_MS)
        qtbot.mouseClick(tab.stop_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0] == "cancelled"
    reply = tab.store.messages(tab.conversations.current_id())[-1]
    assert reply.role == "assistant" and reply.stats.get("stopped")
    assert tab.send_button.isEnabled() and not tab.stop_button.isEnabled()


def test_regenerate_replaces_the_last_reply(qtbot, chat):
    tab = chat
    tab.panel.max_new_tokens.setValue(6)
    tab.panel.seed.setValue(-1)  # random
    send_and_wait(qtbot, tab, "first")
    cid = tab.conversations.current_id()
    first = tab.store.messages(cid)
    assert tab.transcript.messages[-1].regenerate_button.isVisibleTo(tab)
    with qtbot.waitSignal(tab.reply_finished, timeout=WAIT_MS):
        tab.transcript.messages[-1].regenerate_button.click()
    again = tab.store.messages(cid)
    assert len(again) == 2 and again[1].id != first[1].id and again[0].id == first[0].id


def test_edit_and_resend_replaces_the_tail(qtbot, chat):
    tab = chat
    tab.panel.max_new_tokens.setValue(4)
    send_and_wait(qtbot, tab, "one")
    send_and_wait(qtbot, tab, "two")
    cid = tab.conversations.current_id()
    user_one = tab.transcript.messages[0]
    user_one.edit_button.click()
    assert tab.input.toPlainText() == "one" and tab.edit_bar.isVisibleTo(tab)
    with qtbot.waitSignal(tab.reply_finished, timeout=WAIT_MS):
        tab.input.setPlainText("uno")
        qtbot.keyClick(tab.input, Qt.Key.Key_Return)  # Enter sends
    assert [m.content for m in tab.store.messages(cid)][:1] == ["uno"]
    assert len(tab.store.messages(cid)) == 2


def test_shift_enter_adds_a_line(qtbot, chat):
    tab = chat
    tab.input.setFocus()
    qtbot.keyClicks(tab.input, "a")
    qtbot.keyClick(tab.input, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(tab.input, "b")
    assert tab.input.toPlainText() == "a\nb" and not tab.busy()


def test_conversations_system_prompt_settings_and_export(qtbot, chat, tmp_path):
    tab = chat
    a = tab.new_conversation()
    tab.panel.system.setPlainText("You are terse.")
    tab._save_system()
    tab.panel.temperature.setValue(0.7)
    assert tab.store.get(a).settings == {"temperature": 0.7}
    tab.panel.reset()
    assert tab.store.get(a).settings == {} and tab.panel.temperature.value() == pytest.approx(0.2)
    tab.conversations.rename_current("Alpha")
    b = tab.new_conversation()
    assert tab.panel.system.toPlainText() == ""
    tab.conversations.select(a)
    assert tab.panel.system.toPlainText() == "You are terse."
    tab.conversations.search.setText("alp")
    assert tab.conversations.list.count() == 1
    tab.conversations.search.clear()
    tab.panel.max_new_tokens.setValue(3)
    send_and_wait(qtbot, tab, "hi")
    out = tab.export_markdown(tmp_path / "alpha.md")
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Alpha") and "You are terse." in text and "**You**" in text
    tab.conversations.select(b)
    tab.conversations.delete_current(confirm=False)
    assert b not in [c.id for c in tab.store.list()]
    # the store lives in the user's data folder and survives a new tab
    assert ChatStore().get(a).title == "Alpha"


def test_build_panel_when_no_model(qtbot, tmp_path, models_root):
    tab, jobs = make_tab(qtbot, tmp_path, with_model=False)
    assert tab.stack.currentIndex() == 0
    panel = tab.build_panel
    script = "import sys; print('[1/2] downloading', file=sys.stderr); print('[2/2] done', file=sys.stderr)"
    with qtbot.waitSignal(panel.built, timeout=WAIT_MS):
        panel.start(sys.executable, ["-c", script])
    assert panel.progress.value() == 2 and "done" in panel.log.toPlainText()
    from genstudio.qt.qt_chat_build import build_command

    program, args = build_command()
    assert args[-3:] == ["export", "llm", "--from-pypi"]
    jobs.shutdown()


def test_switching_chats_mid_reply_keeps_both(qtbot, chat, slow_engine):
    tab = chat
    tab.panel.max_new_tokens.setValue(4000)
    started = []
    tab.ctx.jobs.job_started.connect(started.append)
    first = tab.new_conversation()
    with qtbot.waitSignal(tab.reply_finished, timeout=WAIT_MS) as blocker:
        tab.send("keep going")
        qtbot.waitUntil(lambda: bool(started) and started[0].delivered_count >= 2, timeout=WAIT_MS)
        tab.new_conversation()  # stops the reply; its widget goes, its text stays in the store
    assert blocker.args[0] == "cancelled"
    reply = tab.store.messages(first)[-1]
    assert reply.role == "assistant" and reply.stats.get("stopped")
    assert tab.transcript.messages == [] and not tab.busy()


def test_shutdown_stops_a_running_build(qtbot, tmp_path, models_root):
    tab, jobs = make_tab(qtbot, tmp_path, with_model=False)
    panel = tab.build_panel
    panel.start(sys.executable, ["-c", "import time; time.sleep(60)"])
    qtbot.waitUntil(panel.running, timeout=WAIT_MS)
    tab.shutdown()  # what the main window calls on close
    assert not panel.running()
    jobs.shutdown()


def test_a_reply_that_cannot_be_saved_says_so_and_frees_the_buttons(qtbot, chat, monkeypatch):
    import sqlite3

    tab = chat
    tab.panel.max_new_tokens.setValue(3)

    def full(*_a, **_k):
        raise sqlite3.OperationalError("database or disk is full")
    monkeypatch.setattr(tab.store, "update_message", full)
    assert send_and_wait(qtbot, tab, "hello") == "succeeded"
    assert tab.send_button.isEnabled() and not tab.stop_button.isEnabled() and tab.model_box.isEnabled()
    assert "could not be saved" in tab.transcript.notice.text() and "disk is full" in tab.transcript.notice.text()
    assert tab.transcript.messages[-1].text  # the reply is still on screen to copy


def test_sending_into_a_new_chat_while_a_search_is_shown(qtbot, chat):
    tab = chat
    tab.panel.max_new_tokens.setValue(3)
    cid = tab.new_conversation()
    tab.conversations.search.setText("chat")  # lists the "New chat" ones; the first message renames it
    assert tab.conversations.current_id() == cid
    assert send_and_wait(qtbot, tab, "hello") == "succeeded"
    assert tab._cid == cid and tab.conversations.current_id() == cid
    assert [m.role for m in tab.store.messages(cid)] == ["user", "assistant"]
    assert [m.role for m in tab.transcript.messages] == ["user", "assistant"]


def test_a_system_prompt_typed_just_before_switching_chats_is_kept(qtbot, chat):
    tab = chat
    a = tab.new_conversation()
    b = tab.new_conversation()
    tab.conversations.select(a)
    tab.panel.system.setPlainText("You are a pirate.")  # saved 400 ms after the last keystroke
    tab.conversations.select(b)
    qtbot.wait(500)
    assert tab.store.get(a).system_prompt == "You are a pirate."
    assert tab.store.get(b).system_prompt == "" and tab.panel.system.toPlainText() == ""
    tab.panel.system.setPlainText("Be brief.")
    tab.shutdown()  # the window closes at once
    assert tab.store.get(b).system_prompt == "Be brief."


def test_a_chat_with_hand_edited_settings_opens(qtbot, chat):
    import json

    tab = chat
    cid = tab.new_conversation()
    tab.store.db.execute("UPDATE conversations SET settings = ? WHERE id = ?",
                         (json.dumps({"temperature": "hot", "top_k": 5.0, "top_p": "0.5"}), cid))
    tab.new_conversation()
    tab.conversations.select(cid)
    assert tab._cid == cid
    s = tab.panel.settings()
    assert s.temperature == pytest.approx(tab.panel.defaults.temperature) and s.top_k == 5 and s.top_p == 0.5


def test_export_that_cannot_be_written_says_so(qtbot, chat, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    tab = chat
    cid = tab.new_conversation()
    tab.store.rename(cid, 'What is 2/3? "a": b')
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    assert tab.export_markdown(blocker / "chat.md") is None  # the folder is a file: no traceback, a message
    assert "export failed" in tab.transcript.notice.text()
    asked = []
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *a: (asked.append(a[2]), ("", ""))[1]))
    assert tab.export_markdown() is None
    name = asked[0].replace("\\", "/").rsplit("/", 1)[-1]
    assert name.endswith(".md") and not set(name) & set('\\/:*?"<>|')  # a name Windows accepts too


def test_html_in_a_message_shows_as_text(qtbot):
    from PySide6.QtGui import QTextDocument

    from genstudio.qt.qt_chat_view import QtMessage

    m = QtMessage("user", "what does <script> do?\n\n<table>\n\nand **this**")
    qtbot.addWidget(m)
    doc = QTextDocument()
    doc.setHtml(m.body.text())
    assert doc.toPlainText() == "what does <script> do?\n<table>\nand this"


def test_a_search_that_hides_the_open_chat_keeps_it_and_its_reply(qtbot, chat, slow_engine):
    tab = chat
    tab.panel.max_new_tokens.setValue(30)  # the slow engine ends only here, after ~0.6 s
    started = []
    tab.ctx.jobs.job_started.connect(started.append)
    tab.new_conversation()
    tab.conversations.rename_current("Zebra 42")
    cid = tab.new_conversation()
    with qtbot.waitSignal(tab.reply_finished, timeout=WAIT_MS) as blocker:
        tab.send("keep going")
        qtbot.waitUntil(lambda: bool(started) and started[0].delivered_count >= 2, timeout=WAIT_MS)
        tab.conversations.search.setText("zebra 42")  # lists only the other chat
        assert tab.conversations.list.count() == 1 and tab.conversations.current_id() != cid
        assert tab._cid == cid and tab.busy()  # the list is filtered; the open chat and its reply stay
    assert blocker.args[0] == "succeeded"
    reply = tab.store.messages(cid)[-1]
    assert reply.role == "assistant" and reply.content and not reply.stats.get("stopped")
    assert [m.role for m in tab.transcript.messages] == ["user", "assistant"]
    assert tab.transcript.messages[-1].text == reply.content
    tab.conversations.search.clear()  # the open chat is selected in the list again
    assert tab.conversations.current_id() == cid and tab._cid == cid


def test_closing_mid_reply_saves_what_has_streamed(qtbot, chat, slow_engine, monkeypatch):
    from genstudio.qt import qt_chat

    monkeypatch.setattr(qt_chat, "SAVE_EVERY_S", 1e12)  # no batch save: only a flush on close writes the text
    tab = chat
    tab.panel.max_new_tokens.setValue(4000)
    started = []
    tab.ctx.jobs.job_started.connect(started.append)
    cid = tab.new_conversation()
    tab.send("keep going")
    qtbot.waitUntil(lambda: bool(started) and started[0].delivered_count >= 3 and bool(tab._reply.text),
                    timeout=WAIT_MS)
    shown = tab._reply.text
    assert tab.store.messages(cid)[-1].content == ""
    tab.shutdown()  # what the main window calls on close, before it stops the jobs; no events run after
    reply = tab.store.messages(cid)[-1]
    assert reply.role == "assistant" and reply.content.startswith(shown) and reply.stats.get("stopped")
    assert started[0].cancel_requested


def test_stats_of_the_wrong_type_are_skipped():
    from genstudio.qt.qt_chat_view import stats_line

    assert stats_line({"new_tokens": 42, "decode_tokens_per_s": 87.34, "time_to_first_token_s": 0.12}) \
        == "42 tokens · 87.3 tokens/s · first token 120 ms"
    assert stats_line({"new_tokens": "12", "decode_tokens_per_s": "fast", "time_to_first_token_s": "x",
                       "stopped": True}) == "stopped"
    assert stats_line({"new_tokens": 7, "decode_tokens_per_s": [1], "time_to_first_token_s": None}) == "7 tokens"
    assert stats_line({"new_tokens": True, "decode_tokens_per_s": float("nan")}) == ""
    assert stats_line(["not", "a", "dict"]) == "" and stats_line("x") == "" and stats_line(None) == ""


def test_a_chat_with_hand_edited_reply_stats_opens(qtbot, chat):
    import json

    tab = chat
    cid = tab.new_conversation()
    tab.store.add_message(cid, "user", "hi")
    reply = tab.store.add_message(cid, "assistant", "hello")
    tab.store.db.execute("UPDATE messages SET stats = ? WHERE id = ?", (json.dumps(
        {"new_tokens": "many", "decode_tokens_per_s": "fast", "time_to_first_token_s": "x", "context_used": "x"}),
        reply.id))
    tab.store.db.commit()
    tab.new_conversation()
    tab.conversations.select(cid)
    assert tab._cid == cid and [m.text for m in tab.transcript.messages] == ["hi", "hello"]
    assert not tab.transcript.messages[-1].stats_label.isVisibleTo(tab)


def test_settings_and_system_prompt_set_before_the_first_chat_go_with_it(qtbot, chat):
    tab = chat
    assert tab._cid is None  # a first start: no chat yet
    tab.panel.max_new_tokens.setValue(2)
    tab.panel.seed.setValue(3)
    tab.panel.system.setPlainText("You are terse.")
    assert send_and_wait(qtbot, tab, "hello") == "succeeded"
    cid = tab._cid
    assert tab.store.get(cid).system_prompt == "You are terse." and tab.panel.system.toPlainText() == "You are terse."
    assert tab.store.get(cid).settings == {"max_new_tokens": 2, "seed": 3}
    assert tab.panel.max_new_tokens.value() == 2 and tab.panel.seed.value() == 3
    assert tab.store.messages(cid)[-1].stats["new_tokens"] <= 2  # the reply used them


def test_cancel_edit_gives_back_the_draft(qtbot, chat):
    tab = chat
    tab.panel.max_new_tokens.setValue(2)
    send_and_wait(qtbot, tab, "one")
    tab.input.setPlainText("a draft")
    tab.transcript.messages[0].edit_button.click()
    assert tab.input.toPlainText() == "one" and tab.editing == 0
    tab.edit_bar.findChild(QPushButton).click()  # Cancel edit
    assert tab.input.toPlainText() == "a draft" and tab.editing is None and not tab.edit_bar.isVisibleTo(tab)
    tab.transcript.messages[0].edit_button.click()
    with qtbot.waitSignal(tab.reply_finished, timeout=WAIT_MS):
        tab.send("uno")  # the edit is sent; the draft is back in the box
    assert [m.content for m in tab.store.messages(tab._cid)][:1] == ["uno"] and tab.input.toPlainText() == "a draft"


def test_coming_back_to_a_chat_before_its_stopped_reply_lands_shows_it(qtbot, chat, slow_engine, monkeypatch):
    from genstudio.qt import qt_chat

    monkeypatch.setattr(qt_chat, "SAVE_EVERY_S", 1e12)  # only the stop writes the text
    tab = chat
    tab.panel.max_new_tokens.setValue(4000)
    started = []
    tab.ctx.jobs.job_started.connect(started.append)
    first = tab.new_conversation()
    other = tab.new_conversation()
    tab.conversations.select(first)
    with qtbot.waitSignal(tab.reply_finished, timeout=WAIT_MS) as blocker:
        tab.send("keep going")
        qtbot.waitUntil(lambda: bool(started) and started[0].delivered_count >= 3 and bool(tab._reply.text),
                        timeout=WAIT_MS)
        tab.conversations.select(other)  # stops the reply
        tab.conversations.select(first)  # and back, before the stop has landed
        assert tab.busy() and not tab.send_button.isEnabled()
        assert not tab.transcript.messages[-1].regenerate_button.isVisibleTo(tab.transcript.messages[-1])
    assert blocker.args[0] == "cancelled"
    reply = tab.store.messages(first)[-1]
    assert reply.role == "assistant" and reply.content and reply.stats.get("stopped")
    shown = tab.transcript.messages[-1]
    assert shown.text == reply.content and "stopped" in shown.stats_label.text()
    assert tab.send_button.isEnabled() and shown.regenerate_button.isVisibleTo(shown)
    assert [m.role for m in tab.transcript.messages] == ["user", "assistant"]
    assert tab.store.messages(other) == []



def test_export_mid_reply_has_the_text_shown_so_far(qtbot, chat, slow_engine, monkeypatch, tmp_path):
    from genstudio.qt import qt_chat

    monkeypatch.setattr(qt_chat, "SAVE_EVERY_S", 1e12)  # no batch save during the test
    tab = chat
    tab.panel.max_new_tokens.setValue(4000)
    started = []
    tab.ctx.jobs.job_started.connect(started.append)
    cid = tab.new_conversation()
    with qtbot.waitSignal(tab.reply_finished, timeout=WAIT_MS):
        tab.send("keep going")
        qtbot.waitUntil(lambda: bool(started) and started[0].delivered_count >= 3 and bool(tab._reply.text),
                        timeout=WAIT_MS)
        shown = tab._reply.text
        text = tab.export_markdown(tmp_path / "mid.md").read_text(encoding="utf-8")
        tab.stop()
    assert shown.strip() in text
    assert tab.store.messages(cid)[-1].stats.get("stopped")


def test_a_reply_cut_off_by_the_context_or_its_length_says_so(qtbot, chat, monkeypatch):
    from genstudio.engines.llm.chat import ChatEngine
    from genstudio.qt.qt_chat_view import stats_line

    assert stats_line({"new_tokens": 9, "finish_reason": "eos"}) == "9 tokens"
    assert stats_line({"new_tokens": 9, "finish_reason": "length"}) == "9 tokens · cut off at the max new tokens"
    real = ChatEngine.from_entry

    def no_eos(*a, **kw):  # the reply runs until something cuts it off
        eng = real(*a, **kw)
        eng.tokenizer.special.eos_ids = []
        return eng
    monkeypatch.setattr(ChatEngine, "from_entry", staticmethod(no_eos))
    tab = chat
    tab.panel.max_new_tokens.setValue(8000)  # more than the tiny model's 256-token context holds
    assert send_and_wait(qtbot, tab, "hello") == "succeeded"
    reply = tab.store.messages(tab._cid)[-1]
    assert reply.stats["finish_reason"] == "context"
    assert "context window is full" in tab.transcript.messages[-1].stats_label.text()


def test_deleting_the_open_chat_mid_reply_opens_the_next_one(qtbot, chat, slow_engine):
    tab = chat
    tab.panel.max_new_tokens.setValue(4000)
    started = []
    tab.ctx.jobs.job_started.connect(started.append)
    older = tab.new_conversation()
    tab.store.add_message(older, "user", "an older question")
    cid = tab.new_conversation()
    with qtbot.waitSignal(tab.reply_finished, timeout=WAIT_MS) as blocker:
        tab.send("keep going")
        qtbot.waitUntil(lambda: bool(started) and started[0].delivered_count >= 2, timeout=WAIT_MS)
        tab.conversations.delete_current(confirm=False)
        assert tab._cid == older and tab.conversations.current_id() == older
    assert blocker.args[0] == "cancelled"
    assert cid not in [c.id for c in tab.store.list()] and tab.store.messages(cid) == []
    assert [m.text for m in tab.transcript.messages] == ["an older question"]
    assert tab.send_button.isEnabled() and not tab.busy()
    tab.conversations.delete_current(confirm=False)  # the last one: nothing is open
    assert tab._cid is None and tab.transcript.messages == [] and tab.conversations.list.count() == 0


def test_the_export_names_the_model_that_replied(qtbot, chat, tmp_path):
    tab = chat
    tab.panel.max_new_tokens.setValue(2)
    cid = tab.new_conversation()
    tab.store.db.execute("UPDATE conversations SET model = 'another-model' WHERE id = ?", (cid,))  # made with it
    send_and_wait(qtbot, tab, "hi")
    text = tab.export_markdown(tmp_path / "m.md").read_text(encoding="utf-8")
    assert f"*Model: {tab.current_entry().name}*" in text and "another-model" not in text


def test_renaming_or_deleting_a_chat_while_the_history_is_locked_says_so_and_loses_nothing(qtbot, chat, tmp_path):
    import sqlite3

    tab = chat
    older = tab.new_conversation()
    tab.store.rename(older, "Older")
    cid = tab.new_conversation()
    tab.store.rename(cid, "Keep me")
    tab.store.add_message(cid, "user", "a question")
    tab.conversations.reload(select=cid)
    tab.open_conversation(cid)
    tab.store.db.execute("PRAGMA busy_timeout=50")
    other = sqlite3.connect(str(tab.store.path), isolation_level=None)  # e.g. a database browser with unsaved edits
    other.execute("BEGIN IMMEDIATE")
    try:
        tab.conversations.rename_current("Renamed")  # what the Rename button runs: no exception out of the handler
        assert "could not be renamed" in tab.transcript.notice.text() and "locked" in tab.transcript.notice.text()
        assert tab.transcript.notice.isVisibleTo(tab)
        tab.conversations.delete_current(confirm=False)
        assert "could not be deleted" in tab.transcript.notice.text() and "locked" in tab.transcript.notice.text()
    finally:
        other.execute("ROLLBACK")
        other.close()
    titles = [tab.conversations.list.item(i).text() for i in range(tab.conversations.list.count())]
    assert titles == [c.title for c in tab.store.list()] and "Keep me" in titles  # the list is the store's
    assert tab.store.get(cid).title == "Keep me" and [m.content for m in tab.store.messages(cid)] == ["a question"]
    assert tab._cid == cid and tab.conversations.current_id() == cid
    assert [m.text for m in tab.transcript.messages] == ["a question"]
    tab.conversations.rename_current("Renamed")  # the lock is gone: the tab works again
    assert tab.store.get(cid).title == "Renamed" and tab.conversations.list.currentItem().text() == "Renamed"
    tab.conversations.delete_current(confirm=False)
    assert cid not in [c.id for c in tab.store.list()] and tab._cid == older


def test_a_reply_that_fails_after_leaving_its_chat_says_so_in_its_own_chat(qtbot, chat, monkeypatch):
    import threading

    from genstudio.engines.llm.chat import ChatDelta, ChatEngine

    gate = threading.Event()

    class Failing:  # streams a token, then fails once the user has gone to another chat
        context_window = 256

        def __init__(self, name):
            self.name = name

        def generate(self, messages, settings):
            yield ChatDelta(1, 8, "Hi", "Hi")
            gate.wait(WAIT_MS / 1000)
            raise RuntimeError("the model ran out of memory")
    monkeypatch.setattr(ChatEngine, "from_entry", staticmethod(lambda entry, pool, **_k: Failing(entry.name)))
    tab = chat
    started = []
    tab.ctx.jobs.job_started.connect(started.append)
    first = tab.new_conversation()
    other = tab.new_conversation()
    tab.conversations.select(first)
    with qtbot.waitSignal(tab.reply_finished, timeout=WAIT_MS) as blocker:
        tab.send("hello")
        qtbot.waitUntil(lambda: tab._reply is not None and tab._reply.text == "Hi", timeout=WAIT_MS)
        tab.conversations.select(other)  # asks the reply to stop; it fails before its next cancel point
        gate.set()
    assert blocker.args[0] == "failed"
    assert tab._cid == other and "failed" not in tab.transcript.notice.text()  # not said in the wrong chat
    assert not tab.transcript.notice.isVisibleTo(tab)
    assert [m.content for m in tab.store.messages(first)] == ["hello"]  # the failed reply is gone from its chat
    assert tab.store.messages(other) == []
    tab.conversations.select(first)
    assert "The reply failed: " in tab.transcript.notice.text() and "out of memory" in tab.transcript.notice.text()
    assert tab.transcript.notice.isVisibleTo(tab)
    assert [m.text for m in tab.transcript.messages] == ["hello"]
    assert tab.send_button.isEnabled() and not tab.busy()
