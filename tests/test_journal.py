"""The journal: tasks and answers survive the daemon, duplicates are refused, a full disk is an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor import supervisor as supmod
from supervisor.agent import AgentSpec
from supervisor.config import Config
from supervisor.journal import Journal, JournalError
from supervisor.protocol import ProtocolError
from supervisor.supervisor import Supervisor
from supervisor.tasks import Task
from tests.sim import SimProcess
from tests.test_supervisor import eventually


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
