"""Pushes to a phone: `[notify] url = "https://ntfy.sh/my-team"` posts the team's events that need
a person to an ntfy-compatible endpoint (a self-hosted ntfy server pushes them to phones).

What is pushed (the same events as the web page's browser notifications): an agent blocks on a
question (once per question: the task, the question and its choices; high priority), a task
finishes (`done`/`failed`), a monitor fires. Each push is one ntfy publish: the message as the
body, `Title`, `Priority`, `Tags`, and `Click` (the agent's web page, from `[notify] link` or
the HTTP API's address) as headers.

The daemon never waits on the endpoint: pushes go through a bounded queue (the oldest dropped
beyond PUSH_QUEUE, counted in the log) to one sender with a timeout, and a failing endpoint
costs a log line per minute, never a task.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp

from supervisor.daemon.web import question_of
from supervisor.team.config import NotifySettings

if TYPE_CHECKING:
    from supervisor.team.supervisor import Supervisor

log = logging.getLogger("staff")

PUSH_QUEUE = 100
PUSH_TIMEOUT = 10.0
MAX_MESSAGE = 3500
"""Characters of body per push (ntfy's limit is 4 096 bytes; longer becomes an attachment)."""
LOG_INTERVAL = 60.0


def _header(value: str) -> str:
    """A header value as ntfy reads it: ASCII as is, anything else as an RFC 2047 word."""
    value = " ".join(value.split())[:200]
    if value.isascii():
        return value
    return "=?UTF-8?B?" + base64.b64encode(value.encode()).decode() + "?="


class Notifier:
    def __init__(self, sup: Supervisor, settings: NotifySettings, web_url: Callable[[], str | None]) -> None:
        self.sup = sup
        self.settings = settings
        self.web_url = web_url
        self.queue: asyncio.Queue[dict[str, str]] = asyncio.Queue(PUSH_QUEUE)
        self.asked: dict[str, tuple[str | None, str]] = {}  # agent → (task, question) last pushed
        self.finished: dict[str, None] = {}  # task ids pushed (insertion-ordered, bounded)
        self.sent = self.failed = self.dropped = 0
        self._logged = 0.0
        self._worker: asyncio.Task[None] | None = None
        sup.sinks.append(self.on_event)

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._send_all())

    async def close(self) -> None:
        with contextlib.suppress(ValueError):
            self.sup.sinks.remove(self.on_event)
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker

    def _link(self, path: str) -> str:
        base = self.settings.link or self.web_url() or ""
        return base.rstrip("/") + path if base else ""

    # -- which events ------------------------------------------------------------------------
    def on_event(self, event: dict[str, Any]) -> None:
        kind, wanted = event.get("type"), self.settings.events
        if kind == "state" and event.get("new") == "blocked" and "blocked" in wanted:
            self._blocked(str(event.get("agent")))
        elif kind == "task":
            task = event.get("task") or {}
            state = task.get("state")
            if state in ("done", "failed") and state in wanted and task.get("id") not in self.finished:
                self._finished(task)
        elif kind == "monitor" and "monitor" in wanted:
            m = event.get("monitor") or {}
            agent = str(m.get("agent") or "")
            self.push(
                title=f"monitor fired on {agent}: {m.get('title') or m.get('until')}",
                message=str(m.get("title") or m.get("until") or "a monitor fired"),
                tags="eyes", click=self._link(f"/agents/{agent}"),
            )

    def _blocked(self, name: str) -> None:
        agent = self.sup.agents.get(name)
        if agent is None:
            return
        q = question_of(agent)
        text = q.summary() if q else "(see its screen)"
        task = agent.current_task.id if agent.current_task else None
        if self.asked.get(name) == (task, text):  # the same question seen again: pushed already
            return
        self.asked[name] = (task, text)
        where = f" ({task}: {agent.current_task.title()})" if agent.current_task else ""
        self.push(
            title=f"{name} asks{where}", message=text, priority="high", tags="question",
            click=self._link(f"/agents/{name}"),
        )

    def _finished(self, task: dict[str, Any]) -> None:
        self.finished[str(task.get("id"))] = None
        while len(self.finished) > 1000:
            del self.finished[next(iter(self.finished))]
        done = task.get("state") == "done"
        body = (task.get("answer") if done else task.get("error")) or ""
        who = task.get("agent") or task.get("to")
        self.push(
            title=f"{task.get('id')} {task.get('state')} on {who}",
            message=body or "(no answer text)",
            tags="white_check_mark" if done else "x",
            click=self._link("/"),
        )

    # -- sending -----------------------------------------------------------------------------
    def push(self, *, title: str, message: str, tags: str, click: str, priority: str = "default") -> None:
        msg = {"title": title, "message": message[:MAX_MESSAGE], "tags": tags, "click": click,
               "priority": priority}
        if self.queue.full():  # the endpoint is slower than the team: the oldest push goes
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(msg)

    async def _send_all(self) -> None:
        timeout = aiohttp.ClientTimeout(total=PUSH_TIMEOUT)
        async with aiohttp.ClientSession(timeout=timeout) as http:
            while True:
                msg = await self.queue.get()
                headers = {
                    "Title": _header(msg["title"]),
                    "Priority": msg["priority"],
                    "Tags": msg["tags"],
                    "Content-Type": "text/plain; charset=utf-8",
                }
                if msg["click"]:
                    headers["Click"] = msg["click"]
                try:
                    body = msg["message"].encode()
                    async with http.post(self.settings.url, data=body, headers=headers) as r:
                        if r.status >= 400:
                            raise aiohttp.ClientError(f"HTTP {r.status}")
                    self.sent += 1
                except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                    self.failed += 1
                    self._log_failure(exc)

    def _log_failure(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._logged >= LOG_INTERVAL:
            self._logged = now
            where = urllib.parse.urlsplit(self.settings.url).netloc  # the topic may be a secret
            log.warning(
                "notify: %s: %s (%d failed, %d dropped so far)",
                where, exc or type(exc).__name__, self.failed, self.dropped,
            )
