"""The journal: tasks and answers survive the daemon, duplicates are refused, a full disk is an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.agent.agent import AgentSpec
from supervisor.agent.task import Task
from supervisor.protocol import ProtocolError
from supervisor.team import supervisor as supmod
from supervisor.team.config import Config
from supervisor.team.journal import Journal, JournalError
from supervisor.team.supervisor import Supervisor
from tests.helpers.sim import SimProcess
from tests.unit.test_supervisor import eventually


def test_round_trip_and_keys(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    t = Task(to="planning", text="plan it", key="k1")
    j.add(t)
    t.move("delivered")
    t.agent = "planning"
    j.update(t)
    j.close()
    j2 = Journal(tmp_path / "j.db")
    (back,) = j2.load()
    assert (back.id, back.state, back.agent, back.key) == (t.id, "delivered", "planning", "k1")
    assert j2.by_key("k1") == t.id
    with pytest.raises(JournalError):
        j2.add(Task(to="x", text="y", key="k1"))  # the key is unique in the table itself


def test_full_disk_is_a_clear_error_and_keeps_what_was_written(tmp_path: Path) -> None:
    j = Journal(tmp_path / "j.db")
    j.add(Task(to="a", text="kept"))
    j.db.execute("PRAGMA max_page_count = 8")  # SQLite's own "disk is full"
    with pytest.raises(JournalError, match="full"):
        for _ in range(1000):
            j.add(Task(to="a", text="x" * 4000))
    j.close()
    texts = [t.text for t in Journal(tmp_path / "j.db").load()]
    assert texts[0] == "kept" and all(t == "x" * 4000 for t in texts[1:])


def cfg() -> Config:
    return Config([AgentSpec(name="solo", command=["sim"], profile="claude")], "test")


async def test_restart_requeues_queued_and_retries_in_flight(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    SimProcess.auto = False
    s1 = Supervisor(cfg(), tmp_path / "staff", process_factory=SimProcess)
    await s1.start()
    assert await eventually(s1, lambda: s1.agents["solo"].state == "idle")
    first = s1.submit("solo", "in flight")
    rest = [s1.submit("solo", f"queued {i}") for i in range(3)]
    assert await eventually(s1, lambda: first.state == "working")
    # the daemon dies here: no shutdown, a new supervisor opens the same state dir
    SimProcess.auto = True
    s2 = Supervisor(cfg(), tmp_path / "staff", process_factory=SimProcess)
    await s2.start()
    assert s2.task(first.id).attempts == 1
    for t in [first, *rest]:
        done = await s2.wait(t.id, 5)
        assert done.state == "done" and done.answer == f"SIM: {t.text}", done
    assert s2.agents["solo"].session_id == s1.agents["solo"].session_id
    await s2.shutdown()
    await s1.shutdown()


async def test_idempotent_submit_and_old_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr(supmod, "MAX_FINISHED", 1)
    SimProcess.auto = True
    s = Supervisor(cfg(), tmp_path / "staff", process_factory=SimProcess)
    await s.start()
    a = s.submit("solo", "once", key="client-42")
    assert s.submit("solo", "once", key="client-42") is a
    assert (await s.wait(a.id, 5)).state == "done"
    b = s.submit("solo", "another")
    await s.wait(b.id, 5)
    s.submit("solo", "and another")  # trims `a` from memory; the journal still has it
    assert a.id not in s.tasks and s.task(a.id).answer == "SIM: once"
    await s.shutdown()


async def test_journal_failure_refuses_the_task(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    s = Supervisor(cfg(), tmp_path / "staff", process_factory=SimProcess)
    await s.start()
    assert s.journal is not None
    s.journal.db.execute("PRAGMA max_page_count = 1")
    with pytest.raises(ProtocolError, match="not accepted.*full"):
        for i in range(200):
            s.submit("solo", f"task {i} " + "y" * 3000)
    assert all(t.state != "failed" for t in s.tasks.values())  # nothing half-recorded
    await s.shutdown()


# The schema of release 0.1.0, as it wrote journals before they carried a version.
RELEASE_0_1_0 = """
CREATE TABLE tasks (id TEXT PRIMARY KEY, key TEXT UNIQUE, seq INTEGER NOT NULL, to_ TEXT NOT NULL,
    text TEXT NOT NULL, state TEXT NOT NULL, agent TEXT, created REAL NOT NULL, delivered REAL,
    finished REAL, answer TEXT, error TEXT, answer_source TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    notify INTEGER NOT NULL DEFAULT 0);
CREATE INDEX tasks_open ON tasks(state);
CREATE TABLE agents (name TEXT PRIMARY KEY, session_id TEXT NOT NULL, pid INTEGER,
    starts INTEGER NOT NULL DEFAULT 0);
INSERT INTO tasks VALUES ('T-old', NULL, 1, 'coding', 'old work', 'done', 'coding', 1.0, 2.0, 3.0,
    'the old answer', NULL, 'transcript', 0, 0);
INSERT INTO agents VALUES ('coding', 'sess-1', 42, 2);
"""


def test_a_journal_from_the_release_opens_and_is_stamped(tmp_path: Path) -> None:
    import sqlite3

    from supervisor.team.journal import SCHEMA_VERSION

    path = tmp_path / "journal.db"
    db = sqlite3.connect(path)
    db.executescript(RELEASE_0_1_0)
    db.close()
    j = Journal(path)
    (task,) = j.load()
    assert (task.id, task.answer, task.state) == ("T-old", "the old answer", "done")
    assert j.agents()["coding"][0] == "sess-1"
    j.add(Task(to="coding", text="new work"))  # and it takes new tasks after the old one
    assert [t.text for t in j.load()] == ["old work", "new work"]
    assert j.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    j.close()


def test_a_journal_from_a_newer_release_is_refused_clearly(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "journal.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 999")
    db.close()
    with pytest.raises(JournalError, match="newer agentstaff"):
        Journal(path)
