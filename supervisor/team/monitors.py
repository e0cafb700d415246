"""Monitors: the daemon watches an agent and tells the inbox when a condition comes true.

``staff watch AGENT --until idle|blocked|working|exited|background-done|regex:PATTERN``
creates one. The
daemon runs it (it keeps watching with no client connected), woken by the agent's own
state changes and screen output (`Agent.until`), never by a timer. When it fires:

- a message goes to the inbox (durable; `staff inbox`, and the editor hook shows it);
- ``then`` text, if any, is sent to the agent: queued as a task, or, when the agent is
  blocked on a question, typed as keys (the answer to the dialog);
- ``notify``, if any, is run as an argv list (never through a shell) with the message
  in its environment: ``STAFF_MESSAGE``, ``STAFF_TITLE``, ``STAFF_BODY``, ``STAFF_AGENT``,
  ``STAFF_MONITOR``, ``STAFF_INBOX_ID``. Agent output only ever reaches it there.

Conditions look forward from the moment the watch is set: ``idle`` is the end of the agent's
next piece of work (an agent already idle with nothing queued for it does not fire until it has
worked; a monitor task is that work), ``regex:`` matches only text that came onto the screen
after the watch (`NewText`); ``background-done`` is the end of the agent's background work (a
background shell Claude still runs after its turn): of what runs now, else of the next that
starts; ``blocked``, ``working`` and ``exited`` are states, true at once if the agent is in them.
The message carries the lines above the input box (`View.tail`).

A monitor fires once, unless ``repeat`` (then it re-arms once the condition went false).
Monitors are kept in ``monitors.json`` in the state dir and re-armed at daemon start.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor.protocol import ERR_BAD_REQUEST, ERR_UNKNOWN_MONITOR, ProtocolError, has_surrogate
from supervisor.states import BLOCKED, DOWN, EXITED, IDLE, WORKING
from supervisor.team.inbox import InboxItem
from supervisor.util.atomic import write_json_atomic

if TYPE_CHECKING:
    from supervisor.agent.agent import Agent
    from supervisor.team.supervisor import Supervisor

log = logging.getLogger("staff")
STATES = (IDLE, BLOCKED, WORKING, EXITED)  # `exited`: either way down (exited or crashed)
BACKGROUND_DONE = "background-done"
CONDITIONS = (*STATES, BACKGROUND_DONE)


def check_condition(until: str) -> re.Pattern[str] | None:
    """Validate a condition; returns the compiled pattern of a ``regex:`` one."""
    if until.startswith("regex:"):
        try:
            return re.compile(until[6:], re.M)
        except re.error as exc:
            raise ProtocolError(ERR_BAD_REQUEST, f"bad regex in {until!r}: {exc}") from None
    if until not in CONDITIONS:
        known = ", ".join(CONDITIONS)
        raise ProtocolError(ERR_BAD_REQUEST,
                            f"unknown condition {until!r}; use one of {known} or regex:PATTERN")
    return None


TAIL_LINES = 8
"""Screen lines an inbox message carries: what is above the input box, without padding."""


class NewText:
    """A ``regex:`` condition: true when the pattern matches text that came onto the screen
    after the watch was set (or last fired), never text that was already there.

    The screen's lines at that moment are the baseline, a multiset that only shrinks: a line
    that leaves the screen (scrolled off, erased) is dropped from it, so the same words printed
    again later count as new; a redraw of lines still on screen (Claude repaints) does not."""

    def __init__(self, agent: Agent, pattern: re.Pattern[str]) -> None:
        self.agent = agent
        self.pattern = pattern
        self.old: Counter[str] = Counter()
        self.rebase()

    def rebase(self) -> None:
        self.old = Counter(ln.rstrip() for ln in self.agent.term.lines() if ln.strip())

    def new_lines(self) -> list[str]:
        now = Counter(ln.rstrip() for ln in self.agent.term.lines() if ln.strip())
        self.old &= now  # what left the screen is no longer old
        fresh = now - self.old
        out = []
        for ln in reversed(self.agent.term.lines()):  # the lowest copies are the new ones
            ln = ln.rstrip()
            if fresh[ln] > 0:
                fresh[ln] -= 1
                out.append(ln)
        return out[::-1]

    def __call__(self) -> bool:
        return self.pattern.search("\n".join(self.new_lines())) is not None


@dataclass
class Monitor:
    agent: str
    until: str
    then: str | None = None
    notify: list[str] | None = None
    task: str | None = None
    title: str | None = None
    repeat: bool = False
    id: str = field(default_factory=lambda: "W-" + secrets.token_hex(4))
    created: float = field(default_factory=time.time)
    fired: int = 0
    last_fired: float | None = None
    last_message: str | None = None
    active: bool = True

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


_MONITOR_TYPES: dict[str, tuple[type, ...]] = {
    "agent": (str,), "until": (str,), "then": (str, type(None)), "notify": (list, type(None)),
    "task": (str, type(None)), "title": (str, type(None)), "repeat": (bool,), "id": (str,),
    "created": (int, float), "fired": (int,), "last_fired": (int, float, type(None)),
    "last_message": (str, type(None)), "active": (bool,),
}


def _monitor(rec: Any) -> Monitor | None:
    """A saved monitor, checked field by field like a request; None when it is not one."""
    if not isinstance(rec, dict) or not all(isinstance(rec.get(k), str) for k in ("agent", "until")):
        return None
    if has_surrogate(rec):  # not text any reply could carry
        return None
    known = {k: v for k, v in rec.items() if k in _MONITOR_TYPES}
    for key, value in known.items():
        types = _MONITOR_TYPES[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            return None
    if known.get("notify") is not None and not all(isinstance(a, str) and a for a in known["notify"]):
        return None
    try:
        check_condition(known["until"])
    except ProtocolError:
        return None
    return Monitor(**known)


class Monitors:
    def __init__(self, sup: Supervisor, path: Path | None = None) -> None:
        self.sup = sup
        self.path = path or sup.home / "monitors.json"
        self.items: dict[str, Monitor] = {}
        self.finished: dict[str, Monitor] = {}  # fired one-shot monitors, for `monitor_wait`
        self._watchers: dict[str, asyncio.Task[None]] = {}
        self._fired: dict[str, list[asyncio.Future[Monitor]]] = {}
        self._notifiers: set[asyncio.Task[None]] = set()

    # -- persistence ------------------------------------------------------------------------
    def load(self) -> str | None:
        """Re-arm the monitors saved by an earlier daemon. A damaged file or entry is skipped
        (the file is kept as it was until the next change rewrites it); returns what was
        skipped, for the start's warnings, or None."""
        try:
            raw = json.loads(self.path.read_bytes().decode("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            return self._damaged(f"not readable JSON ({exc})")
        if not isinstance(raw, list):
            return self._damaged("not a list of monitors")
        bad = 0
        for rec in raw:
            m = _monitor(rec)
            if m is None:
                bad += 1
            elif m.active and m.agent in self.sup.agents:
                self.items[m.id] = m
                self._start(m)
        return self._damaged(f"{bad} entr{'ies' if bad != 1 else 'y'} not a monitor") if bad else None

    def _damaged(self, why: str) -> str:
        msg = (
            f"{self.path}: {why}; skipped (`staff monitors` lists what runs; `staff watch` again "
            f"what is missing)"
        )
        log.warning("%s", msg)
        return msg

    def _save(self) -> None:
        data = [m.to_json() for m in self.items.values() if m.active]
        try:
            write_json_atomic(self.path, data)
        except OSError as exc:
            log.error("cannot save monitors: %s", exc)

    # -- the API the server uses -----------------------------------------------------------------
    def add(self, m: Monitor) -> Monitor:
        self.sup.agent(m.agent)  # unknown agent: a clear error
        check_condition(m.until)
        if m.notify is not None and (not m.notify or not all(isinstance(a, str) and a for a in m.notify)):
            raise ProtocolError(
                ERR_BAD_REQUEST, "notify must be a non-empty list of strings (a command's argv)"
            )
        self.items[m.id] = m
        self._save()
        self._start(m)
        return m

    def remove(self, mid: str) -> Monitor:
        if mid in self.finished:
            return self.finished[mid]
        m = self.get(mid)
        m.active = False
        watcher = self._watchers.pop(mid, None)
        if watcher is not None:
            watcher.cancel()
        del self.items[mid]
        self._save()
        return m

    def rename_agent(self, old: str, new: str) -> None:
        """Monitors on a renamed agent follow it. A watch holds the agent itself (it goes on
        as it was); the saved name is what a restarted daemon re-arms it on."""
        moved = [m for m in self.items.values() if m.agent == old]
        for m in moved:
            m.agent = new
        if moved:
            self._save()

    def forget_agent(self, name: str) -> None:
        """A removed agent's monitors end with it (kept, a later agent of its name would
        inherit them at the next start)."""
        for m in [m for m in self.items.values() if m.agent == name]:
            self.remove(m.id)

    def get(self, mid: str) -> Monitor:
        try:
            return self.items.get(mid) or self.finished[mid]
        except KeyError:
            raise ProtocolError(
                ERR_UNKNOWN_MONITOR, f"unknown monitor {mid!r} (`staff monitors` lists them)"
            ) from None

    def list(self) -> list[Monitor]:
        return list(self.items.values())

    async def wait_fired(self, mid: str, timeout: float | None) -> Monitor:
        m = self.get(mid)
        if m.fired:
            return m
        fut: asyncio.Future[Monitor] = asyncio.get_running_loop().create_future()
        self._fired.setdefault(mid, []).append(fut)
        with contextlib.suppress(TimeoutError):
            return await asyncio.wait_for(fut, timeout)
        return m

    def close(self) -> None:
        for w in self._watchers.values():
            w.cancel()
        self._watchers.clear()

    # -- watching -----------------------------------------------------------------------------------
    def _start(self, m: Monitor) -> None:
        self._watchers[m.id] = asyncio.get_running_loop().create_task(self._watch(m), name=f"monitor-{m.id}")

    def _busy(self, agent: Agent) -> bool:
        """A task is on its way to or inside the agent (delivery started, or queued for it by name)."""
        return (
            agent.current_task is not None
            or self.sup.delivering(agent.name)
            or any(t.to == agent.name for t in self.sup.queue)
        )

    def _condition(self, m: Monitor, agent: Agent) -> Any:
        pattern = check_condition(m.until)
        if pattern is not None:
            return NewText(agent, pattern)
        if m.until == IDLE:
            # (not `_busy`: the delivery bookkeeping ends after the task does, without a wake)
            return lambda: agent.state == IDLE and agent.current_task is None
        if m.until == EXITED:
            return lambda: agent.state in DOWN
        if m.until == BACKGROUND_DONE:
            return lambda: agent.background == 0
        return lambda: agent.state == m.until

    async def _watch(self, m: Monitor) -> None:
        try:
            agent = self.sup.agent(m.agent)
            cond = self._condition(m, agent)
            if m.until == IDLE and m.task is None:
                # the *next* idle: an agent idle with nothing on its way must get work first
                # (a monitor task was submitted just before: it is that work, perhaps done already)
                await agent.until(lambda: not cond() or self._busy(agent), None)
            if m.until == BACKGROUND_DONE:
                # the end of background work: what runs now, or else the next that starts
                await agent.until(lambda: agent.background > 0, None)
            while m.active:
                if (
                    m.until == IDLE
                    and agent.state == IDLE
                    and agent.current_task is None
                    and self._busy(agent)
                ):
                    # a task was just routed to the agent but not typed in yet: wait for it to start
                    await agent.until(lambda: agent.current_task is not None or not self._busy(agent), None)
                await agent.until(cond, None)
                self._fire(m, agent, cond)
                if not m.repeat:
                    break
                if isinstance(cond, NewText):
                    cond.rebase()  # the text that fired it is old now
                await agent.until(lambda: not cond(), None)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("monitor %s failed", m.id)
        finally:
            if not m.repeat and m.id in self.items and m.fired:
                m.active = False
                self.items.pop(m.id, None)
                self._watchers.pop(m.id, None)
                self.finished[m.id] = m
                while len(self.finished) > 1000:
                    del self.finished[next(iter(self.finished))]
                self._save()

    def _describe(self, m: Monitor, agent: Agent, cond: Any = None) -> tuple[str, str]:
        if isinstance(cond, NewText):
            hit = next((ln.strip() for ln in cond.new_lines() if cond.pattern.search(ln)), "")
            what = f"screen matched /{cond.pattern.pattern}/: {hit[:120]}"
        else:
            what = f"is {agent.state}" + (f" ({agent.error})" if agent.error and m.until == "exited" else "")
            if m.until == BACKGROUND_DONE:
                what = f"finished its background work ({agent.state})"
        title = f"{m.title + ': ' if m.title else ''}{agent.name} {what}"
        tail = agent.view().tail(TAIL_LINES)
        body = ""
        if m.task:
            with contextlib.suppress(ProtocolError):
                task = self.sup.task(m.task)
                if task.final:
                    body = f"task {task.id} {task.state}: {task.answer or task.error or ''}\n\n"
        return title, body + "\n".join(tail)

    def _fire(self, m: Monitor, agent: Agent, cond: Any = None) -> None:
        title, body = self._describe(m, agent, cond)
        m.fired += 1
        m.last_fired = time.time()
        m.last_message = title
        log.info("monitor %s fired: %s", m.id, title)
        item = self.sup.post(InboxItem(title=title, body=body, source="monitor", task=m.task))
        self.sup.publish({"type": "monitor", "monitor": m.to_json(), "inbox": item.id})
        if m.then:
            try:
                if agent.state == BLOCKED:
                    agent.write(m.then)
                else:
                    self.sup.submit(agent.name, m.then)
            except ProtocolError as exc:
                log.error("monitor %s: cannot send its text: %s", m.id, exc.message)
        if m.notify:
            t = asyncio.get_running_loop().create_task(self._notify(m, agent, title, body, item.id))
            self._notifiers.add(t)
            t.add_done_callback(self._notifiers.discard)
        for fut in self._fired.pop(m.id, []):
            if not fut.done():
                fut.set_result(m)
        self._save()

    async def _notify(self, m: Monitor, agent: Agent, title: str, body: str, item_id: str) -> None:
        assert m.notify
        env = dict(os.environ)
        env.update(
            STAFF_MESSAGE=f"{title}\n{body}".strip(),
            STAFF_TITLE=title,
            STAFF_BODY=body,
            STAFF_AGENT=agent.name,
            STAFF_MONITOR=m.id,
            STAFF_INBOX_ID=item_id,
        )
        try:
            proc = await asyncio.create_subprocess_exec(
                *m.notify,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                start_new_session=True,
            )
            _, err = await asyncio.wait_for(proc.communicate(), 60)
            if proc.returncode:
                log.warning(
                    "monitor %s: notify %s exited %s: %s", m.id, m.notify[0], proc.returncode, err[-300:]
                )
        except (OSError, TimeoutError) as exc:
            log.error("monitor %s: notify %s failed: %s", m.id, m.notify[0], exc)
