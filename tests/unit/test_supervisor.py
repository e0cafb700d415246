"""Routing, queues, failures and status files, against simulated agents (no pty)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from supervisor.agent.agent import AgentSpec
from supervisor.protocol import ProtocolError
from supervisor.team import supervisor as supmod
from supervisor.team.config import Config
from supervisor.team.supervisor import Supervisor
from tests.helpers.sim import SimProcess


def spec(name: str, role: str | None = None, command: str = "sim", restart: str = "on-failure") -> AgentSpec:
    return AgentSpec(name=name, command=[command], profile="claude", role=role, restart=restart)


@pytest.fixture
async def sup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Supervisor]:
    SimProcess.auto = True
    SimProcess.instances.clear()
    monkeypatch.setattr(supmod, "RESTART_BACKOFF", (0.0, 0.0))
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = Config([spec("planning", "plan"), spec("coder1", "coding"), spec("coder2", "coding")], "test")
    s = Supervisor(cfg, tmp_path / "staff", process_factory=SimProcess)
    await s.start()
    await until_idle(s)
    yield s
    await s.shutdown()


async def until_idle(s: Supervisor, names: list[str] | None = None) -> None:
    for name in names or list(s.agents):
        agent = s.agents[name]
        assert await agent.until(lambda a=agent: a.state == "idle", 5), agent.state


async def eventually(s: Supervisor, pred: Callable[[], bool], timeout: float = 5) -> bool:
    """Wait until `pred()` holds, re-checked on every supervisor event (no polling)."""
    if pred():
        return True
    fut: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

    def sink(event: dict[str, object]) -> None:
        if not fut.done() and pred():
            fut.set_result(True)

    s.sinks.append(sink)
    try:
        return await asyncio.wait_for(fut, timeout)
    except TimeoutError:
        return False
    finally:
        s.sinks.remove(sink)


def proc(s: Supervisor, name: str) -> SimProcess:
    p = s.agents[name].proc
    assert isinstance(p, SimProcess)
    return p


async def test_answer_and_fifo_per_agent(sup: Supervisor) -> None:
    SimProcess.auto = False
    t1 = sup.submit("planning", "first")
    t2 = sup.submit("planning", "second")
    p = proc(sup, "planning")
    assert await sup.agents["planning"].until(lambda: t1.state == "working", 5)
    assert t2.state == "queued" and p.received == ["first"]
    p.finish("answer one")
    assert (await sup.wait(t1.id, 5)).answer == "answer one"
    assert await sup.agents["planning"].until(lambda: t2.state == "working", 5)
    p.finish()
    done = await sup.wait(t2.id, 5)
    assert (done.state, done.answer, done.agent) == ("done", "SIM: second", "planning")
    assert p.received == ["first", "second"]


async def test_role_and_any_routing(sup: Supervisor) -> None:
    SimProcess.auto = False
    a = sup.submit("role:coding", "x")
    b = sup.submit("role:coding", "y")
    c = sup.submit("role:coding", "z")
    assert await eventually(sup, lambda: a.state == "working" and b.state == "working")
    assert {a.agent, b.agent} == {"coder1", "coder2"} and c.state == "queued"
    any_task = sup.submit("any", "w")
    assert await eventually(sup, lambda: any_task.agent == "planning")
    SimProcess.auto = True
    for name in ("coder1", "coder2", "planning"):
        proc(sup, name).finish()
    done = await sup.wait(c.id, 5)
    assert done.state == "done" and done.agent in ("coder1", "coder2")


async def test_unknown_targets(sup: Supervisor) -> None:
    with pytest.raises(ProtocolError, match="unknown agent 'nope'.*planning"):
        sup.submit("nope", "x")
    with pytest.raises(ProtocolError, match="no agent has role 'art'"):
        sup.submit("role:art", "x")
    with pytest.raises(ProtocolError, match="empty"):
        sup.submit("planning", "  ")


async def test_crash_fails_the_task_and_restarts(sup: Supervisor) -> None:
    SimProcess.auto = False
    t = sup.submit("coder1", "doomed")
    agent = sup.agents["coder1"]
    assert await agent.until(lambda: t.state == "working", 5)
    old = proc(sup, "coder1")
    old.crash(3)
    done = await sup.wait(t.id, 5)
    assert done.state == "failed" and "crashed (exit status 3)" in (done.error or "")
    assert await agent.until(lambda: agent.proc is not old and agent.state == "idle", 5)
    SimProcess.auto = True
    assert (await sup.wait(sup.submit("coder1", "again").id, 5)).state == "done"


async def test_spawn_failure_is_reported_and_refuses_tasks(tmp_path: Path) -> None:
    cfg = Config([spec("ghost", command="missing-program")], "test")
    s = Supervisor(cfg, tmp_path / "staff", process_factory=SimProcess)
    await s.start()
    agent = s.agents["ghost"]
    assert agent.state == "exited" and "command not found" in (agent.error or "")
    with pytest.raises(ProtocolError, match="not running.*command not found"):
        s.submit("ghost", "hi")
    await s.shutdown()


async def test_cancel_queued_and_running(sup: Supervisor) -> None:
    SimProcess.auto = False
    running = sup.submit("planning", "long")
    queued = sup.submit("planning", "later")
    assert await sup.agents["planning"].until(lambda: running.state == "working", 5)
    assert sup.cancel(queued.id).state == "cancelled"
    sup.cancel(running.id)
    assert (await sup.wait(running.id, 5)).state == "cancelled"


async def test_user_hold_defers_delivery(sup: Supervisor) -> None:
    agent = sup.agents["planning"]
    agent.set_user_hold(True)
    assert agent.state == "user"
    t = sup.submit("planning", "wait for me")
    await asyncio.sleep(0)
    assert t.state == "queued"
    agent.set_user_hold(False)
    assert (await sup.wait(t.id, 5)).state == "done"


async def test_status_file(sup: Supervisor, tmp_path: Path) -> None:
    await sup.wait(sup.submit("planning", "plan dark mode").id, 5)
    data = json.loads((tmp_path / "staff" / "agents" / "planning.json").read_text())
    for key in ("agent_id", "status", "current_task", "context_summary", "last_active", "pid", "window_id"):
        assert key in data
    assert data["status"] == "idle" and data["context_summary"] == "1 task: plan dark mode"
    assert data["pid"] == proc(sup, "planning").pid


async def test_multiline_goes_as_paste_only_when_enabled(sup: Supervisor) -> None:
    agent = sup.agents["planning"]
    assert agent.encode_task("a\nb") == "a\nb"  # the sim never enabled bracketed paste
    agent.term.feed("\x1b[?2004h")
    assert agent.encode_task("a\nb") == "\x1b[200~a\nb\x1b[201~"
    assert agent.encode_task("evil\x1b[201~\x03") == "evil"  # no paste end marker, no control key


def test_inbox_is_durable_and_acks_append(tmp_path: Path) -> None:
    from supervisor.team.inbox import Inbox, InboxItem

    box = Inbox(tmp_path / "inbox.jsonl")
    a = box.post(InboxItem("build failed", "log tail", source="monitor"))
    b = box.post(InboxItem("T-1 done", source="task"))
    box.ack([a.id])
    box.mark_delivered(b.id)
    with (tmp_path / "inbox.jsonl").open("a") as f:
        f.write('{"title": "torn')  # a crash mid-write must not lose earlier items
    again = Inbox(tmp_path / "inbox.jsonl")
    assert [i.id for i in again.list()] == [b.id]
    assert again.items[a.id].acked and again.items[b.id].delivered
    assert [i.id for i in again.list(unread=False)] == [a.id, b.id]


async def test_an_agent_being_removed_takes_no_task_and_leaves_nothing_behind(
        sup: Supervisor, tmp_path: Path) -> None:
    """While `remove` waits for the program to quit the agent still reads idle: a task for
    its role must not be typed into it. Once gone, nothing of it is left to come back: no
    status file (not even from a late write), no limit hold, no saved conversation."""
    home = tmp_path / "staff"
    planning = sup.agents["planning"]
    removal = asyncio.get_running_loop().create_task(sup.remove("planning"))
    assert await planning.until(lambda: planning.stopping, 5)
    assert planning.state == "idle"
    racing = sup.submit("role:plan", "never typed into a leaving agent")
    racing_any = sup.submit("any", "nor this one")
    gone = proc(sup, "planning")
    await removal
    typed = "".join(data.decode(errors="replace") for data, _ in gone.writes)
    assert "never typed" not in typed and "nor this one" not in typed, typed
    assert racing.state == "queued" and racing.agent is None
    assert (await sup.wait(racing_any.id, 5)).agent in ("coder1", "coder2")

    coder = sup.agents["coder1"]
    sup._save_agent(coder)
    coder.hold(time.time() + 3600, "usage limit")
    assert "coder1" in json.loads((home / "limits.json").read_text())
    await sup.remove("coder1")
    assert coder.limited_until is None and coder._limit_timer is None
    assert "coder1" not in json.loads((home / "limits.json").read_text())
    assert sup.journal is not None and "coder1" not in sup.journal.agents()
    sup.write_status(coder)  # e.g. a delivery's `finally` that ends after the removal
    assert not (home / "agents" / "coder1.json").exists()
    assert not (home / "agents" / "planning.json").exists()
