"""Conversations on disk: SQLite in WAL mode, every change committed at once, so a crash loses nothing."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    title TEXT NOT NULL,
    system_prompt TEXT NOT NULL DEFAULT '',
    settings TEXT NOT NULL DEFAULT '{}',
    model TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id INTEGER NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content TEXT NOT NULL,
    stats TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_by_conversation ON messages(conversation_id, position);
"""
SCHEMA_VERSION = 1


@dataclass
class Message:
    id: int
    conversation_id: int
    position: int
    role: str  # user, assistant (the system prompt lives on the conversation)
    content: str
    stats: dict = field(default_factory=dict)  # tokens/s, time to first token, ... for replies


@dataclass
class Conversation:
    id: int
    title: str
    system_prompt: str = ""
    settings: dict = field(default_factory=dict)  # sampling settings the user changed
    model: str = ""
    created: float = 0.0
    updated: float = 0.0


def default_path() -> Path:
    from genstudio.runtime.paths import user_data_dir

    return user_data_dir() / "chats.sqlite3"


class ChatStore:
    def __init__(self, path: Path | None = None) -> None:
        self.path = Path(path) if path else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self.db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            version = self.db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(f"{self.path} was written by a newer studio (schema {version})")
            self.db.executescript(SCHEMA)  # idempotent; runs in its own transaction
            self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as e:  # "file is not a database", a read-only folder: say which file
            raise sqlite3.DatabaseError(f"cannot open the chat history {self.path}: {e}") from e

    def close(self) -> None:
        with self._lock:
            self.db.close()

    def _tx(self):
        store = self

        class _Tx:
            def __enter__(self):
                store._lock.acquire()
                try:
                    store.db.execute("BEGIN IMMEDIATE")  # "database is locked" while another program writes
                except BaseException:
                    store._lock.release()  # __exit__ does not run: a held lock would hang every later call
                    raise

            def __exit__(self, kind, *_):
                try:
                    store.db.execute("ROLLBACK" if kind else "COMMIT")
                finally:
                    store._lock.release()
        return _Tx()

    def _q(self, sql: str, args=()) -> list[sqlite3.Row]:
        with self._lock:
            return self.db.execute(sql, args).fetchall()

    # -- conversations ----------------------------------------------------------------------------
    def create(self, title: str = "New chat", *, system_prompt: str = "", settings: dict | None = None,
               model: str = "") -> Conversation:
        now = time.time()
        with self._tx():
            cur = self.db.execute("INSERT INTO conversations (title, system_prompt, settings, model, created, updated)"
                                  " VALUES (?, ?, ?, ?, ?, ?)",
                                  (title, system_prompt, json.dumps(settings or {}), model, now, now))
            cid = cur.lastrowid
        return self.get(cid)

    def get(self, cid: int) -> Conversation:
        rows = self._q("SELECT * FROM conversations WHERE id = ?", (cid,))
        if not rows:
            raise KeyError(f"no conversation {cid}")
        return _conv(rows[0])

    def list(self, search: str = "") -> list[Conversation]:
        """Newest first; `search` matches titles, system prompts and message text (case-insensitive)."""
        if not search.strip():
            rows = self._q("SELECT * FROM conversations ORDER BY updated DESC, id DESC")
        else:
            pat = "%" + search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            rows = self._q(
                "SELECT * FROM conversations c WHERE c.title LIKE ?1 ESCAPE '\\' OR c.system_prompt LIKE ?1 ESCAPE '\\'"
                " OR EXISTS (SELECT 1 FROM messages m WHERE m.conversation_id = c.id AND m.content LIKE ?1 ESCAPE '\\')"
                " ORDER BY updated DESC, id DESC", (pat,))
        return [_conv(r) for r in rows]

    def _touch(self, cid: int) -> None:
        self.db.execute("UPDATE conversations SET updated = ? WHERE id = ?", (time.time(), cid))

    def rename(self, cid: int, title: str) -> None:
        with self._tx():
            self.db.execute("UPDATE conversations SET title = ? WHERE id = ?", (title.strip() or "Untitled", cid))

    def set_system_prompt(self, cid: int, text: str) -> None:
        with self._tx():
            self.db.execute("UPDATE conversations SET system_prompt = ? WHERE id = ?", (text, cid))

    def set_settings(self, cid: int, settings: dict) -> None:
        with self._tx():
            self.db.execute("UPDATE conversations SET settings = ? WHERE id = ?", (json.dumps(settings), cid))

    def set_model(self, cid: int, model: str) -> None:
        with self._tx():
            self.db.execute("UPDATE conversations SET model = ? WHERE id = ?", (model, cid))

    def delete(self, cid: int) -> None:
        with self._tx():
            self.db.execute("DELETE FROM conversations WHERE id = ?", (cid,))

    # -- messages ---------------------------------------------------------------------------------
    def messages(self, cid: int) -> list[Message]:
        return [_msg(r) for r in self._q("SELECT * FROM messages WHERE conversation_id = ? ORDER BY position", (cid,))]

    def add_message(self, cid: int, role: str, content: str, stats: dict | None = None) -> Message:
        with self._tx():
            pos = self.db.execute("SELECT COALESCE(MAX(position), -1) + 1 FROM messages WHERE conversation_id = ?",
                                  (cid,)).fetchone()[0]
            cur = self.db.execute("INSERT INTO messages (conversation_id, position, role, content, stats, created)"
                                  " VALUES (?, ?, ?, ?, ?, ?)", (cid, pos, role, content, json.dumps(stats or {}),
                                                                 time.time()))
            mid = cur.lastrowid
            self._touch(cid)
        return Message(mid, cid, pos, role, content, stats or {})

    def update_message(self, mid: int, content: str, stats: dict | None = None) -> None:
        with self._tx():
            if stats is None:
                self.db.execute("UPDATE messages SET content = ? WHERE id = ?", (content, mid))
            else:
                self.db.execute("UPDATE messages SET content = ?, stats = ? WHERE id = ?",
                                (content, json.dumps(stats), mid))

    def delete_from(self, cid: int, position: int) -> None:
        """Delete the message at `position` and every later one (regenerate, edit and resend)."""
        with self._tx():
            self.db.execute("DELETE FROM messages WHERE conversation_id = ? AND position >= ?", (cid, position))
            self._touch(cid)

    def chat_messages(self, cid: int) -> list[dict]:
        """The conversation as the engine wants it: the system prompt first (if any), then the turns.

        An empty reply (one stopped before its first token) is left out: the model would read it as an answer of
        nothing. The user turns on either side of it are joined into one, so the turns still alternate as chat
        templates expect, and none of the user's words are lost. The stored history is not changed."""
        conv = self.get(cid)
        out = [{"role": "system", "content": conv.system_prompt}] if conv.system_prompt.strip() else []
        turns: list[dict] = []
        for m in self.messages(cid):
            if m.role == "assistant" and not m.content.strip():
                continue
            if m.role == "user" and turns and turns[-1]["role"] == "user":
                turns[-1] = {"role": "user", "content": f"{turns[-1]['content']}\n\n{m.content}"}
                continue
            turns.append({"role": m.role, "content": m.content})
        return out + turns

    def export_markdown(self, cid: int) -> str:
        conv = self.get(cid)
        lines = [f"# {conv.title}", ""]
        if conv.model:
            lines += [f"*Model: {conv.model}*", ""]
        if conv.system_prompt.strip():
            lines += ["**System**", "", conv.system_prompt.strip(), ""]
        for m in self.messages(cid):
            lines += [f"**{'You' if m.role == 'user' else 'Assistant'}**", "", _export_body(m), ""]
        return "\n".join(lines).rstrip() + "\n"


def _export_body(m: Message) -> str:
    """A message for the Markdown export: indentation kept (an indented code block), a code block a stopped or
    cut-off reply left open closed (else every later message reads as code), a stopped or empty reply said."""
    text = m.content.strip("\n").rstrip()
    fence = None
    for line in text.splitlines():
        rest = line.lstrip(" ")
        if len(line) - len(rest) > 3 or not (mark := re.match(r"`{3,}|~{3,}", rest)):
            continue
        if fence is None:
            fence = mark.group(0)
        elif mark.group(0)[0] == fence[0] and len(mark.group(0)) >= len(fence) and not rest[mark.end():].strip():
            fence = None
    if fence:
        text += "\n" + fence
    stopped = m.role == "assistant" and m.stats.get("stopped") is True
    if stopped:
        return f"{text}\n\n*(stopped)*" if text else "*(stopped before any text)*"
    return text or "*(empty)*"


def _conv(r: sqlite3.Row) -> Conversation:
    try:
        settings = json.loads(r["settings"])
    except ValueError:
        settings = {}
    return Conversation(r["id"], r["title"], r["system_prompt"], settings if isinstance(settings, dict) else {},
                        r["model"], r["created"], r["updated"])


def _msg(r: sqlite3.Row) -> Message:
    try:
        stats = json.loads(r["stats"])
    except ValueError:
        stats = {}
    return Message(r["id"], r["conversation_id"], r["position"], r["role"], r["content"],
                   stats if isinstance(stats, dict) else {})
