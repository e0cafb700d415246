"""The delegation core: submit the tasks, wait for every answer, say what came back.

Imports only `supervisor.protocol` and the standard library (it runs on every Ctrl-G).
Each task is waited on over its own connection (``wait`` with ``progress``), and one
``select`` watches them all, the person's keys (through a view, see live.py) and the
deadline: no polling, no threads. Every task is submitted with ``notify``, so an answer
the hook does not stay for (background, timeout, a signal, a lost daemon) lands in the
inbox; the items of answers it did hand over are acknowledged, so they do not come twice.
"""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from supervisor.protocol import (
    ERR_INTERNAL,
    ERR_NO_DAEMON,
    TASK_FINAL,
    Client,
    ProtocolError,
    encode,
    inert,
    quote_attr,
)

from .parse import NOTE, TaskSpec


class Interrupted(BaseException):
    """A signal (SIGTERM, SIGINT, SIGHUP) reached the hook while it worked."""

    def __init__(self, signame: str) -> None:
        super().__init__(signame)
        self.signame = signame


class StreamConn:
    """One long request (``wait`` with progress) on its own socket, read without blocking."""

    def __init__(self, path: Path, req: dict[str, Any]) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.connect(str(path))
            self.sock.sendall(encode({"id": 1, **req}))
        except OSError as exc:
            self.sock.close()
            raise ProtocolError(ERR_NO_DAEMON, f"lost the daemon: {exc}") from exc
        self.sock.setblocking(False)
        self.buf = b""

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self) -> list[dict[str, Any]]:
        try:
            chunk = self.sock.recv(1 << 16)
        except BlockingIOError:
            return []
        except OSError as exc:
            raise ProtocolError(ERR_NO_DAEMON, f"lost the daemon: {exc}") from exc
        if not chunk:
            raise ProtocolError(ERR_NO_DAEMON, "the daemon closed the connection (it stopped)")
        self.buf += chunk
        frames = []
        while b"\n" in self.buf:
            line, _, self.buf = self.buf.partition(b"\n")
            frames.append(json.loads(line))
        return frames

    def close(self) -> None:
        self.sock.close()


@dataclass
class Running:
    """A submitted task as the hook sees it."""

    spec: TaskSpec
    id: str
    to: str
    state: str = "queued"
    agent: str | None = None
    agent_state: str = ""
    task: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    last_line: str = ""
    conn: StreamConn | None = None

    @property
    def final(self) -> bool:
        return self.state in TASK_FINAL

    @property
    def who(self) -> str:
        return self.agent or self.to

    def update(self, task: dict[str, Any]) -> None:
        self.task = task
        self.state = task.get("state", self.state)
        self.agent = task.get("agent") or self.agent


class View(Protocol):
    """What the waiting loop needs from a display (live.py draws one on a terminal)."""

    interval: float | None

    def fileno(self) -> int | None: ...

    def on_input(self) -> str | None:
        """Read the pending keys; return "cancel", "background" or None."""

    def draw(self, tasks: list[Running]) -> None: ...

    def close(self) -> None: ...


class NullView:
    """No terminal: nothing to draw, no keys."""

    interval: float | None = None

    def fileno(self) -> int | None:
        return None

    def on_input(self) -> str | None:
        return None

    def draw(self, tasks: list[Running]) -> None:
        pass

    def close(self) -> None:
        pass


def submit_all(c: Client, specs: list[TaskSpec], context: str, made: list[Running]) -> list[Running]:
    """Submit every task (each with the shared context) into `made` (so a signal half-way
    still knows what was sent); on a refusal cancel the ones made."""
    try:
        for spec in specs:
            task = c.call("submit", to=spec.target, text=spec.text(context), notify=True)
            r = Running(spec, task["id"], spec.target)
            r.update(task)
            made.append(r)
    except ProtocolError:
        for r in made:
            with contextlib.suppress(ProtocolError):
                c.call("cancel", task=r.id)
        raise
    return made


def wait_all(
    sock_path: Path,
    tasks: list[Running],
    deadline: float,
    view: View,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Wait until every task is final. Returns "done", "timeout", "cancel" or "background";
    raises ProtocolError(no_daemon) when the daemon goes away."""
    try:
        for r in tasks:
            if not r.final:
                r.conn = StreamConn(sock_path, {"cmd": "wait", "task": r.id, "progress": True})
        view.draw(tasks)
        while True:
            open_ = [r for r in tasks if r.conn is not None]
            if not open_:
                return "done"
            left = deadline - clock()
            if left <= 0:
                return "timeout"
            fds: list[Any] = [r.conn for r in open_]
            key_fd = view.fileno()
            if key_fd is not None:
                fds.append(key_fd)
            wait = left if view.interval is None else min(left, view.interval)
            ready, _, _ = select.select(fds, [], [], wait)
            for r in open_:
                if r.conn in ready:
                    _take(r)
            if key_fd is not None and key_fd in ready:
                action = view.on_input()
                if action:
                    return action
            view.draw(tasks)
    finally:
        for r in tasks:
            if r.conn is not None:
                r.conn.close()
                r.conn = None


def _take(r: Running) -> None:
    conn = r.conn
    assert conn is not None
    for frame in conn.read():
        ev = frame.get("event")
        if ev is not None:
            if ev.get("type") == "task" and (ev.get("task") or {}).get("id") == r.id:
                r.update(ev["task"])
            elif ev.get("type") == "state" and ev.get("agent") == r.agent:
                r.agent_state = ev.get("new", "")
            continue
        if frame.get("ok"):
            r.update(frame["result"])
        else:
            err = frame.get("error") or {}
            raise ProtocolError(err.get("code", ERR_INTERNAL), err.get("message", "error"))
        conn.close()
        r.conn = None
        return


def settle(sock_path: Path, tasks: list[Running], seconds: float) -> None:
    """After a cancel: give the tasks a moment to become final (so their inbox items exist)."""
    with contextlib.suppress(ProtocolError):
        wait_all(sock_path, tasks, time.monotonic() + seconds, NullView())


def ack_items(c: Client, task_ids: set[str], extra: list[str] | None = None) -> None:
    """Mark read the inbox items of tasks the hook handed over itself, and `extra` items."""
    if not task_ids and not extra:
        return
    try:
        ids = list(extra or [])
        if task_ids:
            items = c.call("inbox", to="chief")["items"]
            ids += [i["id"] for i in items if i.get("task") in task_ids]
        if ids:
            c.call("inbox_ack", ids=ids)
    except ProtocolError:
        pass  # at worst an answer shows up once more with the next Ctrl-G


# -- what goes back into the file -------------------------------------------------------------
def _attr(s: str) -> str:
    return quote_attr(s)


def _title(text: str, width: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def answer_block(r: Running) -> str:
    """An answer quoted into the prompt file, inert (`protocol.inert`): whatever the agent
    wrote, the next Ctrl-G reads it as quoted text, never as the quote's end or a task."""
    took = r.task.get("elapsed")
    took_s = f"{float(took):.1f}s" if isinstance(took, int | float) else "?"
    answer = inert((r.task.get("answer") or "").strip("\n")) or "(the agent printed no answer text)"
    return (
        f'<staff-answer agent="{_attr(r.who)}" task="{r.id}" took="{took_s}" '
        f'asked="{_attr(_title(r.spec.body))}">\n{answer}\n</staff-answer>'
    )


def inbox_block(item: dict[str, Any]) -> str:
    when = item.get("time")
    stamp = time.strftime("%H:%M:%S", time.localtime(when if isinstance(when, int | float) else 0))
    body = inert(str(item.get("body") or "").strip("\n"))
    head = (
        f'<staff-inbox id="{_attr(str(item.get("id")))}" from="{_attr(str(item.get("source")))}" '
        f'at="{stamp}">'
    )
    title = inert(_title(str(item.get("title")), 200))
    return "\n".join(x for x in (head, title, body, "</staff-inbox>") if x)


def note(text: str) -> bytes:
    """One clear line for the person, in the file (never a task line on a later Ctrl-G)."""
    return (NOTE + " ".join(text.split())).encode()


def with_note(original: bytes, line: str) -> bytes:
    """The original text, unchanged, then one line saying what happened."""
    if not original:
        return note(line)
    sep = b"" if original.endswith(b"\n") else b"\n"
    return original + sep + note(line)


def summary(tasks: list[Running], outcome: str) -> str:
    """The one line for an outcome that is not "every answer came"."""
    parts = []
    for r in tasks:
        if r.state == "done":
            parts.append(f"{r.who} answered ({r.id}): the answer comes with your next Ctrl-G")
        elif r.state in ("failed", "cancelled"):
            why = r.task.get("error") or r.state
            parts.append(f"{r.who} {r.state} ({r.id}: {why})")
        else:
            parts.append(f"{r.who} still {r.state} ({r.id})")
    pending = [r.id for r in tasks if not r.final]
    later = (
        f"; the answer lands in the inbox (with your next Ctrl-G) or `staff wait {pending[0]}`"
        if len(pending) == 1
        else f"; answers land in the inbox (with your next Ctrl-G) or `staff wait {' '.join(pending)}`"
        if pending
        else ""
    )
    return f"{outcome}: {'; '.join(parts)}{later}"
