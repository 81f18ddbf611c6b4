"""The SQLite conversation store: create, rename, delete, search, messages, WAL, survives reopening."""

from __future__ import annotations

import sqlite3

import pytest

from genstudio.engines.llm.store import ChatStore, default_path


def test_conversations_create_rename_delete_search(tmp_path):
    s = ChatStore(tmp_path / "c.sqlite3")
    a = s.create("Cooking", system_prompt="You are a chef.", model="m")
    b = s.create("Travel")
    s.add_message(a.id, "user", "How long to boil an egg?")
    s.add_message(b.id, "user", "Best time to visit Rome?")
    assert [c.title for c in s.list()][0] in ("Cooking", "Travel")
    s.rename(b.id, "Trips")
    assert s.get(b.id).title == "Trips"
    assert [c.id for c in s.list("egg")] == [a.id]
    assert [c.id for c in s.list("TRIPS")] == [b.id]
    assert [c.id for c in s.list("chef")] == [a.id]
    assert s.list("100%") == [] and s.list("_") == []  # LIKE wildcards are literal
    s.delete(a.id)
    assert [c.id for c in s.list()] == [b.id]
    assert s.messages(a.id) == []  # messages went with it


def test_messages_order_update_truncate_and_export(tmp_path):
    s = ChatStore(tmp_path / "c.sqlite3")
    c = s.create("Q", system_prompt="Be brief.")
    s.add_message(c.id, "user", "one")
    r = s.add_message(c.id, "assistant", "")
    s.update_message(r.id, "partial")
    s.update_message(r.id, "first answer", {"decode_tokens_per_s": 50.0})
    s.add_message(c.id, "user", "two")
    assert [m.content for m in s.messages(c.id)] == ["one", "first answer", "two"]
    assert s.messages(c.id)[1].stats["decode_tokens_per_s"] == 50.0
    assert s.chat_messages(c.id)[0] == {"role": "system", "content": "Be brief."}
    md = s.export_markdown(c.id)
    assert md.startswith("# Q") and "**You**" in md and "first answer" in md
    s.delete_from(c.id, 1)  # regenerate from the first reply
    assert [m.content for m in s.messages(c.id)] == ["one"]
    s.set_settings(c.id, {"temperature": 0.5})
    assert s.get(c.id).settings == {"temperature": 0.5}


def test_survives_reopen_and_uses_wal(tmp_path):
    path = tmp_path / "c.sqlite3"
    s = ChatStore(path)
    c = s.create("Keep me")
    s.add_message(c.id, "user", "saved at once")
    # another connection sees it before close: every change is committed immediately
    other = sqlite3.connect(str(path))
    assert other.execute("SELECT content FROM messages").fetchone()[0] == "saved at once"
    assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other.close()
    del s  # no close(): as if the studio crashed
    s2 = ChatStore(path)
    assert s2.get(c.id).title == "Keep me" and s2.messages(c.id)[0].content == "saved at once"


def test_default_path_is_in_user_data(_private_home):
    assert str(default_path()).startswith(str(_private_home))


def test_a_write_refused_while_another_program_holds_the_lock_does_not_hang_the_store(tmp_path):
    path = tmp_path / "c.sqlite3"
    s = ChatStore(path)
    c = s.create("Busy")
    s.db.execute("PRAGMA busy_timeout=50")
    other = sqlite3.connect(str(path), isolation_level=None)  # e.g. a database browser with unsaved edits
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        s.add_message(c.id, "user", "refused")
    other.execute("ROLLBACK")
    other.close()
    assert not s._lock.locked()  # a leaked lock would hang the next call forever
    s.add_message(c.id, "user", "accepted")
    assert [m.content for m in s.messages(c.id)] == ["accepted"]


def test_a_file_that_is_not_a_database_names_itself(tmp_path):
    path = tmp_path / "chats.sqlite3"
    path.write_bytes(b"not a database " * 100)
    with pytest.raises(sqlite3.DatabaseError, match="chats.sqlite3"):
        ChatStore(path)


def test_export_says_stopped_and_empty_replies_and_keeps_code_blocks_apart(tmp_path):
    s = ChatStore(tmp_path / "c.sqlite3")
    c = s.create("Q")
    s.add_message(c.id, "user", "show code")
    s.add_message(c.id, "assistant", "    x = 1\n    y = 2\n", {"new_tokens": 9})  # an indented code block
    s.add_message(c.id, "user", "more")
    s.add_message(c.id, "assistant", "Here:\n```python\nprint(1)", {"new_tokens": 3, "stopped": True})
    s.add_message(c.id, "user", "again")
    s.add_message(c.id, "assistant", "", {"new_tokens": 0, "stopped": True})
    s.add_message(c.id, "user", "once more")
    s.add_message(c.id, "assistant", "", {"stopped": "yes"})  # a hand-edited history
    md = s.export_markdown(c.id)
    assert "**Assistant**\n\n    x = 1\n    y = 2\n\n**You**" in md
    assert "Here:\n```python\nprint(1)\n```\n\n*(stopped)*\n\n**You**\n\nagain" in md  # the fence is closed
    assert "**Assistant**\n\n*(stopped before any text)*\n\n**You**" in md
    assert md.endswith("**Assistant**\n\n*(empty)*\n")


def test_an_empty_stopped_reply_is_left_out_of_the_prompt_and_the_turns_still_alternate(tmp_path):
    s = ChatStore(tmp_path / "c.sqlite3")
    c = s.create("Q", system_prompt="Be brief.")
    s.add_message(c.id, "user", "first question")
    s.add_message(c.id, "assistant", "", {"new_tokens": 0, "stopped": True})  # stopped before any token
    s.add_message(c.id, "user", "second question")
    s.add_message(c.id, "assistant", "an answer", {"new_tokens": 2})
    s.add_message(c.id, "user", "third question")
    assert s.chat_messages(c.id) == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first question\n\nsecond question"},  # joined: no word of the user is lost
        {"role": "assistant", "content": "an answer"},
        {"role": "user", "content": "third question"},
    ]
    stored = s.messages(c.id)  # the history itself is as it was: the transcript still shows the stopped reply
    assert [m.content for m in stored] == ["first question", "", "second question", "an answer", "third question"]
    assert stored[1].stats == {"new_tokens": 0, "stopped": True}
