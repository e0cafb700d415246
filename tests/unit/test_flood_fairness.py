"""A flood on one agent is fed to the screen one bounded slice per event-loop turn, with
reading paused meanwhile (backpressure), and the screen ends exactly as if fed at once.
Functional checks only: no timing is asserted (the figures are in docs/benchmarks.md)."""

from __future__ import annotations

import asyncio
import os
from typing import Any, cast

import pytest

from supervisor.agent.agent import Agent, AgentSpec
from supervisor.detect.rules import load_profile
from supervisor.events import StateChanged
from supervisor.screen.emulator import Terminal, available_backends


def flood(n: int) -> bytes:
    return "".join(f"\x1b[38;5;{16 + i % 216}mline {i:05d} lorem ipsum\x1b[0m\r\n" for i in range(n)).encode()


@pytest.mark.parametrize("backend", available_backends())
def test_feed_output_is_sliced_and_lossless(backend: str) -> None:
    data = flood(2000) + "日本 $ ".encode()
    whole = Terminal(80, 24, backend=backend)
    whole.feed(data if backend == "ghostty" else data.decode())
    sliced = Terminal(80, 24, backend=backend)
    sliced.slice_bytes = 1000
    held = sliced.feed_output(data, data.decode())
    assert held and sliced.pending > 0
    steps = 0
    while True:
        before = sliced.pending
        more = sliced.drain()
        assert before - sliced.pending <= 1000  # one bounded slice per call
        steps += 1
        if not more:
            break
    assert sliced.pending == 0 and steps > 10
    assert sliced.lines() == whole.lines()
    assert sliced.history_text() == whole.history_text()


class StubProcess:
    """The PtyProcess interface, driven by the test; records pause/resume."""

    def __init__(self, argv: list[str], **_: Any) -> None:
        self.pid: int | None = None
        self.on_output: Any = None
        self.on_exit: Any = None
        self.calls: list[str] = []
        self.exit_status = None

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.pid = os.getpid()

    @property
    def alive(self) -> bool:
        return self.pid is not None

    def write(self, data: bytes) -> None:
        pass

    def resize(self, rows: int, cols: int) -> None:
        pass

    def pause_reading(self) -> None:
        self.calls.append("pause")

    def resume_reading(self) -> None:
        self.calls.append("resume")


@pytest.mark.parametrize("backend", available_backends())
async def test_flood_yields_to_the_loop_and_pauses_reading(
    backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STAFF_EMULATOR", backend)
    states: list[str] = []
    agent = Agent(
        AgentSpec(name="sh", command=["sh"], profile="shell", cols=80, rows=24),
        load_profile("shell"),
        env={},
        listener=lambda a, ev: states.append(ev.new) if isinstance(ev, StateChanged) else None,
        process_factory=cast(Any, StubProcess),
    )
    agent.start()
    agent.term.slice_bytes = 2048
    proc = agent.proc
    assert isinstance(proc, StubProcess)

    # Another agent's work, one step per loop turn: it must get turns during the flood.
    seen_pending: list[int] = []
    done = asyncio.Event()

    def other() -> None:
        seen_pending.append(agent.term.pending)
        if not done.is_set():
            asyncio.get_running_loop().call_soon(other)

    data = flood(3000) + b"$ "
    asyncio.get_running_loop().call_soon(other)
    agent._on_output(data, data.decode())
    assert proc.calls == ["pause"] and agent.term.pending > 0
    assert agent.state == "starting"  # the prompt at the end has not been fed yet

    assert await agent.until(lambda: agent.term.pending == 0 and agent.state == "idle", 30)
    done.set()
    assert proc.calls == ["pause", "resume"]
    assert len({p for p in seen_pending if p > 0}) > 5  # the loop ran other work between slices
    assert states == ["idle"]
    assert agent.term.lines()[-1] == "$" and "line 02999 lorem ipsum" in agent.term.lines()[-2]
    assert len(agent.term.history_text()) == 3000 - 23


async def test_small_outputs_are_fed_at_once() -> None:
    agent = Agent(
        AgentSpec(name="sh", command=["sh"], profile="shell"),
        load_profile("shell"),
        env={},
        process_factory=cast(Any, StubProcess),
    )
    agent.start()
    agent._on_output(b"hello\r\n$ ", "hello\r\n$ ")
    assert agent.term.pending == 0 and agent.state == "idle"
    assert isinstance(agent.proc, StubProcess) and agent.proc.calls == []
