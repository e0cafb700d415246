"""What the daemon does for people watching agents: output streams, sizes, holds, recordings.

- A *watch* streams one agent to one client: a snapshot that repaints the screen exactly
  (snapshot.py), then the raw output as it arrives. A client that falls behind is not fed
  an unbounded backlog: once more than a few screens of output are pending, the backlog
  is dropped and a fresh snapshot sent instead, so a flood costs a slow viewer one screen.
- *Sizes*: every viewer says at what size it shows an agent; the agent's pty gets the
  smallest (like tmux), and the viewer's sizes go when its connection does.
- *Holds*: a person typing into an agent (console) holds it: the agent reports `user` and
  the router delivers nothing to it until every holder let go: explicitly (focus moved
  away), by disconnecting, or after an idle grace with no keystroke.
- *Recordings*: every agent's output goes to an asciicast file (recording.py).

Nothing here imports a UI library; the console is a client of these commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

from supervisor.agent.agent import Agent
from supervisor.daemon.recording import KEEP, MAX_BYTES, Recorder
from supervisor.protocol import ERR_BAD_REQUEST, ProtocolError, encode
from supervisor.screen.snapshot import ansi_snapshot, partial_tail
from supervisor.team.supervisor import Supervisor

log = logging.getLogger("staff")

HOLD_GRACE = 30.0
"""Seconds without a keystroke after which a person's hold on an agent lapses."""
MIN_BACKLOG = 64 << 10


class Writer(Protocol):
    """Where a watch writes, and whose closing ends a viewer's sizes and holds: the Unix
    socket's StreamWriter, or a browser's event stream (web.TermStream)."""

    def write(self, data: bytes) -> None: ...
    async def drain(self) -> None: ...
    def is_closing(self) -> bool: ...
    async def wait_closed(self) -> None: ...


class Watch:
    """One client watching one agent."""

    def __init__(self, hub: Hub, agent: Agent, writer: Writer, rid: Any) -> None:
        self.hub = hub
        self.agent = agent
        self.writer = writer
        self.rid = rid
        self.pending: list[str] = []
        self.pending_len = 0
        self.resync = True  # the first frame is a snapshot
        self.wake = asyncio.Event()
        self.wake.set()
        self.frames = 0

    @property
    def backlog_limit(self) -> int:
        return max(MIN_BACKLOG, 8 * self.agent.term.rows * self.agent.term.cols)

    def on_output(self, text: str) -> None:
        if self.resync:
            return  # a snapshot is coming; it will include this
        self.pending.append(text)
        self.pending_len += len(text)
        if self.pending_len > self.backlog_limit:
            self.request_snapshot()
        self.wake.set()

    def request_snapshot(self) -> None:
        self.pending.clear()
        self.pending_len = 0
        self.resync = True
        self.wake.set()

    def _event(self, event: dict[str, Any]) -> None:
        self.writer.write(encode({"id": self.rid, "event": event}))
        self.frames += 1

    async def run(self) -> None:
        while not self.writer.is_closing():
            await self.wake.wait()
            self.wake.clear()
            if self.resync:
                self.resync = False
                self.pending.clear()
                self.pending_len = 0
                term = self.agent.term
                self._event(
                    {
                        "type": "snapshot",
                        "agent": self.agent.name,
                        "rows": term.rows,
                        "cols": term.cols,
                        "state": self.agent.state,
                        "data": ansi_snapshot(term, self.hub.tails.get(self.agent.name, "")),
                    }
                )
            elif self.pending:
                data = "".join(self.pending)
                self.pending.clear()
                self.pending_len = 0
                self._event({"type": "output", "data": data})
            else:
                continue
            try:
                await self.writer.drain()
            except ConnectionError:
                return


class Hub:
    def __init__(self, sup: Supervisor) -> None:
        self.sup = sup
        self.watches: dict[str, set[Watch]] = {}
        self.tails: dict[str, str] = {}
        self.sizes: dict[str, dict[tuple[int, str], tuple[int, int]]] = {}
        self.holders: dict[str, set[int]] = {}
        self.grace_timers: dict[tuple[str, int], asyncio.TimerHandle] = {}
        self.recorders: dict[str, Recorder] = {}
        self._attached: set[str] = set()
        self._tracked: set[int] = set()
        settings = sup.config.settings
        self.hold_grace = float(settings.get("hold_grace", HOLD_GRACE))
        self.record = bool(settings.get("record", True))
        self.record_bytes = int(settings.get("recording_max_bytes", MAX_BYTES))
        sup.sinks.append(self._on_event)

    # -- attaching to agents ----------------------------------------------------------------
    def start(self) -> None:
        for agent in self.sup.agents.values():
            self.attach(agent)

    def attach(self, agent: Agent) -> None:
        if agent.name in self._attached:
            return
        self._attached.add(agent.name)
        def listener(data: bytes, text: str) -> None:
            self._on_output(agent, text)

        agent.output_listeners.append(listener)
        if self.record:
            rec = Recorder(self.sup.home / "recordings", agent.name, max_bytes=self.record_bytes, keep=KEEP)
            self.recorders[agent.name] = rec
            rec.open(agent.term.rows, agent.term.cols, ansi_snapshot(agent.term))

    def close(self) -> None:
        for rec in self.recorders.values():
            rec.close()
        for timer in self.grace_timers.values():
            timer.cancel()
        self.grace_timers.clear()

    def _on_output(self, agent: Agent, text: str) -> None:
        if "\x1b" in text[-512:] or self.tails.get(agent.name):
            self.tails[agent.name] = partial_tail(text)
        for w in self.watches.get(agent.name, ()):
            w.on_output(text)
        rec = self.recorders.get(agent.name)
        if rec is not None:
            rec.event("o", text)
            if rec.full:
                snap = ansi_snapshot(agent.term, self.tails.get(agent.name, ""))
                rec.open(agent.term.rows, agent.term.cols, snap)

    def _on_event(self, event: dict[str, Any]) -> None:
        if event.get("type") != "spawned":
            return
        agent = self.sup.agents.get(event.get("agent") or "")
        if agent is None:
            return
        self.attach(agent)
        # A (re)started program draws on a fresh screen.
        self.tails.pop(agent.name, None)
        rec = self.recorders.get(agent.name)
        if rec is not None:
            rec.event("o", "\x1bc")
        for w in self.watches.get(agent.name, ()):
            w.request_snapshot()

    # -- connections --------------------------------------------------------------------------
    def _track(self, writer: Writer) -> int:
        """Forget this connection's sizes and holds when it closes."""
        key = id(writer)
        if key not in self._tracked:
            self._tracked.add(key)

            def gone(_: object) -> None:
                self._tracked.discard(key)
                self._forget(key)

            fut = asyncio.ensure_future(writer.wait_closed())
            fut.add_done_callback(gone)
        return key

    def _forget(self, key: int) -> None:
        for name in list(self.holders):
            self._release(name, key)
        for name, sizes in list(self.sizes.items()):
            for k in [k for k in sizes if k[0] == key]:
                del sizes[k]
            self._apply_size(name)

    # -- stream -----------------------------------------------------------------------------------
    async def stream(self, agent: Agent, writer: Writer, rid: Any) -> dict[str, Any]:
        self.attach(agent)
        w = Watch(self, agent, writer, rid)
        self.watches.setdefault(agent.name, set()).add(w)
        try:
            await w.run()
        finally:
            self.watches.get(agent.name, set()).discard(w)
        return {"agent": agent.name, "frames": w.frames}

    # -- sizes --------------------------------------------------------------------------------------
    def resize(
        self, agent: Agent, rows: int, cols: int, viewer: str, writer: Writer
    ) -> dict[str, Any]:
        key = self._track(writer)
        if rows == 0 and cols == 0:  # this viewer no longer shows the agent
            self.sizes.get(agent.name, {}).pop((key, viewer), None)
            self._apply_size(agent.name)
            return {"agent": agent.name, "rows": agent.term.rows, "cols": agent.term.cols}
        if not (2 <= rows <= 1000 and 10 <= cols <= 1000):
            raise ProtocolError(
                ERR_BAD_REQUEST, f"resize: {rows}x{cols} is out of range (2-1000 rows, 10-1000 cols)"
            )
        self.sizes.setdefault(agent.name, {})[(key, viewer)] = (rows, cols)
        self._apply_size(agent.name)
        return {"agent": agent.name, "rows": agent.term.rows, "cols": agent.term.cols}

    def _apply_size(self, name: str) -> None:
        agent = self.sup.agents.get(name)
        sizes = self.sizes.get(name)
        if agent is None or not sizes:
            return  # nobody looks: the agent keeps its last size, like tmux
        rows = min(r for r, _ in sizes.values())
        cols = min(c for _, c in sizes.values())
        if (rows, cols) == (agent.term.rows, agent.term.cols):
            return
        agent.resize(rows, cols)
        rec = self.recorders.get(name)
        if rec is not None:
            rec.event("r", f"{cols}x{rows}")
        for w in self.watches.get(name, ()):
            w.request_snapshot()

    # -- holds ------------------------------------------------------------------------------------
    def hold(
        self, agent: Agent, on: bool, writer: Writer, grace: float | None = None
    ) -> dict[str, Any]:
        key = self._track(writer)
        if on:
            held = self.holders.setdefault(agent.name, set())
            held.add(key)
            timer = self.grace_timers.pop((agent.name, key), None)
            if timer is not None:
                timer.cancel()
            delay = self.hold_grace if grace is None else grace
            if delay > 0:
                self.grace_timers[(agent.name, key)] = asyncio.get_running_loop().call_later(
                    delay, self._release, agent.name, key
                )
            if not agent.user_hold:
                agent.set_user_hold(True)
        else:
            self._release(agent.name, key)
        return {"agent": agent.name, "held": agent.user_hold, "state": agent.state}

    def _release(self, name: str, key: int) -> None:
        timer = self.grace_timers.pop((name, key), None)
        if timer is not None:
            timer.cancel()
        held = self.holders.get(name)
        if not held or key not in held:
            return
        held.discard(key)
        agent = self.sup.agents.get(name)
        if not held and agent is not None and agent.user_hold:
            with contextlib.suppress(ValueError):
                agent.set_user_hold(False)
