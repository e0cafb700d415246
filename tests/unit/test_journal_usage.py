"""Schema 2 of the journal: a task's token usage is kept with it (issue 16)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from supervisor.agent.task import Task
from supervisor.team.journal import SCHEMA_VERSION, Journal

USAGE = {"input_tokens": 12, "output_tokens": 30, "cache_read_tokens": 6000, "cache_write_tokens": 699,
         "context_tokens": 4361, "model": "claude-opus-5-5", "cost_usd": 0.008, "context_pct": 2.2}


def test_a_version_1_journal_migrates_and_a_tasks_usage_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    j = Journal(path)
    j.db.execute("ALTER TABLE tasks DROP COLUMN usage")  # back to what version 1 wrote
    j.db.execute("PRAGMA user_version = 1")
    j.db.execute("INSERT INTO tasks (id, seq, to_, text, state, created)"
                 " VALUES ('T-v1', 1, 'a', 'old', 'done', 1.0)")
    j.close()
    j = Journal(path)
    assert j.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    (old,) = j.load()
    assert (old.id, old.usage) == ("T-v1", None)
    task = Task(to="a", text="new")
    j.add(task)
    task.move("delivered")
    task.usage = dict(USAGE)
    task.move("done")
    j.update(task)
    j.close()
    j = Journal(path)
    got = j.get(task.id)
    assert got is not None and got.usage == USAGE
    assert [t.usage for t in j.load()] == [None, USAGE]
    j.db.execute("UPDATE tasks SET usage='{not json' WHERE id=?", (task.id,))
    damaged = j.get(task.id)
    assert damaged is not None and damaged.usage is None and damaged.state == "done"  # the task kept
    j.close()


def test_a_new_journal_is_written_at_version_2(tmp_path: Path) -> None:
    j = Journal(tmp_path / "journal.db")
    cols = [r[1] for r in j.db.execute("PRAGMA table_info(tasks)")]
    assert "usage" in cols
    j.close()
    db = sqlite3.connect(tmp_path / "journal.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == 2
    db.close()
