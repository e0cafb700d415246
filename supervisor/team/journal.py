"""The journal: every task, its state changes and its answer, recorded before we say so.

SQLite in WAL mode with ``synchronous=FULL``: a submit is acknowledged only after its row
is on disk, so a daemon killed at any instant loses no task and no answer. Agents' session
ids are kept too, so a restarted daemon resumes each Claude conversation.

The newest tasks live in ``journal.db-wal`` until SQLite copies them into the database. If
that file is deleted or damaged after a crash, SQLite opens the database without them and
says nothing; so the journal also notes its last task (``journal.last``: seq and id, written
after each submit) and compares at open: ``lost`` says what is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from pathlib import Path
from typing import Any

from supervisor.agent.task import Task
from supervisor.util.trust import open_private

SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    key TEXT UNIQUE,
    seq INTEGER NOT NULL,
    to_ TEXT NOT NULL,
    text TEXT NOT NULL,
    state TEXT NOT NULL,
    agent TEXT,
    created REAL NOT NULL,
    delivered REAL,
    finished REAL,
    answer TEXT,
    error TEXT,
    answer_source TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    notify INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tasks_open ON tasks(state);
CREATE TABLE IF NOT EXISTS agents (
    name TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    pid INTEGER,
    starts INTEGER NOT NULL DEFAULT 0
);
"""

SCHEMA_VERSION = 2
"""`PRAGMA user_version` of a journal this code writes. Version 0 is a journal from before
versioning (release 0.1.0), whose tables are version 1's: opening it only stamps it."""
MIGRATIONS: dict[int, str] = {
    1: "ALTER TABLE tasks ADD COLUMN usage TEXT",  # a task's token usage, as JSON (Task.usage)
}
"""SQL that takes a journal from version N to N + 1 (none yet: add one with each schema change)."""

FIELDS = ("id", "key", "to", "text", "state", "agent", "created", "delivered", "finished",
          "answer", "error", "answer_source", "attempts", "notify", "usage")


def _usage_json(task: Task) -> str | None:
    return json.dumps(task.usage) if task.usage else None


def _task(row: tuple[Any, ...]) -> Task:
    """A task from a row of FIELDS."""
    data = dict(zip(FIELDS, row, strict=True))
    data["notify"] = bool(data["notify"])
    try:
        usage = json.loads(data["usage"]) if data["usage"] else None
    except ValueError:
        usage = None  # figures only: a damaged one is dropped, the task kept
    data["usage"] = usage if isinstance(usage, dict) else None
    return Task(**data)


class JournalError(Exception):
    """The journal cannot be written (disk full, read-only state dir): nothing was recorded."""


LAST_SUFFIX = ".last"
"""`journal.db` → `journal.last`: the seq and id of the newest task, outside SQLite's files."""


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.lost: str | None = None
        """What the journal found missing at open (its WAL lost after a crash), or None."""
        existed = path.exists()
        try:
            # made 0600 (SQLite gives the -wal and -shm files the database's mode), never a symlink's target
            os.close(open_private(path, os.O_RDWR | os.O_CREAT))
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self._migrate()
            check = self.db.execute("PRAGMA quick_check(1)").fetchone()  # a truncated file reads here
            if check and check[0] != "ok":
                raise sqlite3.DatabaseError(f"damaged: {check[0]}")
            row = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM tasks").fetchone()
        except (sqlite3.Error, OSError) as exc:
            with contextlib.suppress(Exception):
                self.db.close()
            raise JournalError(
                f"the journal {path} cannot be opened ({exc}); if it is damaged, move it aside "
                f"(`mv {path} {path}.bad`) and start again: its tasks are then forgotten"
            ) from exc
        self._seq = int(row[0])
        self._full = True
        self._last_path = path.with_suffix(LAST_SUFFIX)
        if existed:
            self.lost = self._check_last()
        try:
            self._last_fd: int | None = open_private(self._last_path, os.O_RDWR | os.O_CREAT)
        except OSError:
            self._last_fd = None  # the check is a safety net: the journal works without it
        self._note_last(self._last_id())

    def _check_last(self) -> str | None:
        """Compare the database with the last task noted outside it; say what is missing."""
        try:
            seq_s, _, last_id = self._last_path.read_text(encoding="ascii").strip().partition(" ")
            seq = int(seq_s)
        except (OSError, ValueError):
            return None  # never written (a journal from before this check), or damaged itself
        if seq <= self._seq:
            return None
        n = seq - self._seq
        return (
            f"the journal lost its last {n} task{'s' if n != 1 else ''} (the newest was {last_id}): "
            f"{self.path.name}-wal was missing or damaged after a crash; submit "
            f"{'them' if n != 1 else 'it'} again"
        )

    def _last_id(self) -> str:
        row = self.db.execute("SELECT id FROM tasks WHERE seq = ?", (self._seq,)).fetchone()
        return str(row[0]) if row else "-"

    def _note_last(self, task_id: str) -> None:
        """Record the newest task's seq and id (no fsync: it guards against a lost WAL after
        a daemon crash, which leaves the page cache intact, not against a power cut)."""
        if self._last_fd is None:
            return
        data = f"{self._seq} {task_id}\n".encode().ljust(64)
        with contextlib.suppress(OSError):
            os.pwrite(self._last_fd, data, 0)

    def _migrate(self) -> None:
        """Bring the journal to SCHEMA_VERSION, one step at a time, each in one transaction."""
        version = int(self.db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            raise JournalError(
                f"the journal {self.path} was written by a newer agentstaff (schema {version}, this one "
                f"reads up to {SCHEMA_VERSION}); upgrade, or move it aside to start afresh"
            )
        if version == 0:
            self.db.executescript(SCHEMA)  # a new journal, or one from before versioning
            version = 1
            self.db.execute(f"PRAGMA user_version = {version}")
        while version < SCHEMA_VERSION:
            step = MIGRATIONS[version]
            self.db.executescript(f"BEGIN; {step}; PRAGMA user_version = {version + 1}; COMMIT;")
            version += 1

    def close(self) -> None:
        self.db.close()
        if self._last_fd is not None:
            os.close(self._last_fd)
            self._last_fd = None

    def _write(self, sql: str, args: tuple[Any, ...]) -> None:
        try:
            self.db.execute(sql, args)
        except sqlite3.Error as exc:
            raise JournalError(f"cannot write the journal ({exc}); state dir: {self.path.parent}") from exc

    def add(self, task: Task) -> None:
        """Record a new task; raises JournalError, in which case the task does not exist."""
        self._sync(full=True)
        self._seq += 1
        self._write(
            "INSERT INTO tasks (id, key, seq, to_, text, state, agent, created, delivered, finished,"
            " answer, error, answer_source, attempts, notify, usage)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (task.id, task.key, self._seq, task.to, task.text, task.state, task.agent, task.created,
             task.delivered, task.finished, task.answer, task.error, task.answer_source,
             task.attempts, int(task.notify), _usage_json(task)),
        )
        self._note_last(task.id)

    def update(self, task: Task) -> None:
        """Record a state change (and the target, which a rename changes). Intermediate
        states skip the fsync (WAL + NORMAL survives a daemon crash, only a power cut could
        lose them, and then the task is retried); a final state and its answer are fsync'd
        like a submit."""
        self._sync(full=task.final)
        self._write(
            "UPDATE tasks SET to_=?, state=?, agent=?, delivered=?, finished=?, answer=?, error=?,"
            " answer_source=?, attempts=?, usage=? WHERE id=?",
            (task.to, task.state, task.agent, task.delivered, task.finished, task.answer, task.error,
             task.answer_source, task.attempts, _usage_json(task), task.id),
        )

    def _sync(self, *, full: bool) -> None:
        if full != self._full:
            self.db.execute(f"PRAGMA synchronous={'FULL' if full else 'NORMAL'}")
            self._full = full

    def by_key(self, key: str) -> str | None:
        row = self.db.execute("SELECT id FROM tasks WHERE key=?", (key,)).fetchone()
        return str(row[0]) if row else None

    def load(self, limit: int = 10000) -> list[Task]:
        """Open tasks (all of them) and the most recent finished ones, in submission order."""
        rows = self.db.execute(
            "SELECT id, key, to_, text, state, agent, created, delivered, finished, answer, error,"
            " answer_source, attempts, notify, usage FROM tasks"
            " WHERE state NOT IN ('done','failed','cancelled')"
            " OR seq > (SELECT COALESCE(MAX(seq), 0) FROM tasks) - ? ORDER BY seq",
            (limit,),
        ).fetchall()
        return [_task(row) for row in rows]

    def get(self, task_id: str) -> Task | None:
        row = self.db.execute(
            "SELECT id, key, to_, text, state, agent, created, delivered, finished, answer, error,"
            " answer_source, attempts, notify, usage FROM tasks WHERE id=?",
            (task_id,),
        ).fetchone()
        return None if row is None else _task(row)

    # -- agents ----------------------------------------------------------------------------
    def save_agent(self, name: str, session_id: str, pid: int | None, starts: int) -> None:
        self._write(
            "INSERT INTO agents (name, session_id, pid, starts) VALUES (?,?,?,?)"
            " ON CONFLICT(name) DO UPDATE SET session_id=excluded.session_id, pid=excluded.pid,"
            " starts=excluded.starts",
            (name, session_id, pid, starts),
        )

    def rename_agent(self, old: str, new: str) -> None:
        """The agent's saved session (what a restart resumes) goes with its new name."""
        self._write("DELETE FROM agents WHERE name = ?", (new,))
        self._write("UPDATE agents SET name = ? WHERE name = ?", (new, old))

    def forget_agent(self, name: str) -> None:
        """A removed agent's saved session: a later agent of its name must not resume it."""
        self._write("DELETE FROM agents WHERE name = ?", (name,))

    def agents(self) -> dict[str, tuple[str, int | None, int]]:
        rows = self.db.execute("SELECT name, session_id, pid, starts FROM agents").fetchall()
        return {str(r[0]): (str(r[1]), r[2], int(r[3])) for r in rows}
