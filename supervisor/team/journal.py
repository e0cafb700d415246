"""The journal: every task, its state changes and its answer, recorded before we say so.

SQLite in WAL mode with ``synchronous=FULL``: a submit is acknowledged only after its row
is on disk, so a daemon killed at any instant loses no task and no answer. Agents' session
ids are kept too, so a restarted daemon resumes each Claude conversation.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from supervisor.agent.task import Task

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

SCHEMA_VERSION = 1
"""`PRAGMA user_version` of a journal this code writes. Version 0 is a journal from before
versioning (release 0.1.0), whose tables are version 1's: opening it only stamps it."""
MIGRATIONS: dict[int, str] = {}
"""SQL that takes a journal from version N to N + 1 (none yet: add one with each schema change)."""

FIELDS = ("id", "key", "to", "text", "state", "agent", "created", "delivered", "finished",
          "answer", "error", "answer_source", "attempts", "notify")


class JournalError(Exception):
    """The journal cannot be written (disk full, read-only state dir): nothing was recorded."""


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self._migrate()
        except sqlite3.Error as exc:
            raise JournalError(f"cannot open the journal {path}: {exc}") from exc
        row = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM tasks").fetchone()
        self._seq = int(row[0])
        self._full = True

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
            " answer, error, answer_source, attempts, notify) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (task.id, task.key, self._seq, task.to, task.text, task.state, task.agent, task.created,
             task.delivered, task.finished, task.answer, task.error, task.answer_source,
             task.attempts, int(task.notify)),
        )

    def update(self, task: Task) -> None:
        """Record a state change. Intermediate states skip the fsync (WAL + NORMAL survives
        a daemon crash, only a power cut could lose them, and then the task is retried);
        a final state and its answer are fsync'd like a submit."""
        self._sync(full=task.final)
        self._write(
            "UPDATE tasks SET state=?, agent=?, delivered=?, finished=?, answer=?, error=?,"
            " answer_source=?, attempts=? WHERE id=?",
            (task.state, task.agent, task.delivered, task.finished, task.answer, task.error,
             task.answer_source, task.attempts, task.id),
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
            " answer_source, attempts, notify FROM tasks WHERE state NOT IN ('done','failed','cancelled')"
            " OR seq > (SELECT COALESCE(MAX(seq), 0) FROM tasks) - ? ORDER BY seq",
            (limit,),
        ).fetchall()
        out = []
        for row in rows:
            data = dict(zip(FIELDS, row, strict=True))
            data["notify"] = bool(data["notify"])
            out.append(Task(**data))
        return out

    def get(self, task_id: str) -> Task | None:
        row = self.db.execute(
            "SELECT id, key, to_, text, state, agent, created, delivered, finished, answer, error,"
            " answer_source, attempts, notify FROM tasks WHERE id=?",
            (task_id,),
        ).fetchone()
        if row is None:
            return None
        data = dict(zip(FIELDS, row, strict=True))
        data["notify"] = bool(data["notify"])
        return Task(**data)

    # -- agents ----------------------------------------------------------------------------
    def save_agent(self, name: str, session_id: str, pid: int | None, starts: int) -> None:
        self._write(
            "INSERT INTO agents (name, session_id, pid, starts) VALUES (?,?,?,?)"
            " ON CONFLICT(name) DO UPDATE SET session_id=excluded.session_id, pid=excluded.pid,"
            " starts=excluded.starts",
            (name, session_id, pid, starts),
        )

    def agents(self) -> dict[str, tuple[str, int | None, int]]:
        rows = self.db.execute("SELECT name, session_id, pid, starts FROM agents").fetchall()
        return {str(r[0]): (str(r[1]), r[2], int(r[3])) for r in rows}
