"""The conversation a Claude agent is in, followed live, and the tokens it has used.

We start Claude with `--session-id`, but the program can move to another conversation by
itself: `/clear` typed in its pane starts a new one (new id, new transcript), `/resume`
inside it picks an old one. Claude publishes the live id in its session registry
(`sessions/<pid>.json`, `detect/answers.py`), rewritten in place on every change; so the
registry is watched (inotify) once the program is up, and read again before each task and
at each idle. The agent's `session_id` is then always the live one: the status file, the
journal and a restart's `--resume` use it.

Usage is read from the same transcripts, incrementally, each response once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from supervisor.detect import answers
from supervisor.events import SessionChanged
from supervisor.util.dirwatch import file_events

if TYPE_CHECKING:
    from supervisor.agent.agent import Agent

REGISTRY_SAFETY_READ = 60.0
"""Seconds after which a registry watch reads the file again even without an event (a
missed event costs at most this long; no event, no work otherwise)."""


class Session:
    """One agent's live session id and usage (a no-op for profiles without a registry)."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.meter = answers.UsageMeter()
        self.others: Callable[[], frozenset[str]] = frozenset
        """The session ids the team's other agents have (set by the team): an agent never
        takes an answer from, nor adopts, another's session."""
        self._watch: asyncio.Task[None] | None = None

    @property
    def followed(self) -> bool:
        return self.agent.profile.settings.session_registry == "claude"

    def transcript(self) -> Path | None:
        """The live session's transcript (None for a profile without one)."""
        agent = self.agent
        if agent.profile.settings.transcript != "claude":
            return None
        return answers.transcript_path(agent.env, agent.cwd(), agent.session_id)

    def refresh(self) -> bool:
        """Read the registry; adopt a new live id (and say so). True when it changed.

        A registry that is missing or reads torn changes nothing: the id we have stands."""
        agent = self.agent
        if not self.followed or agent.pid is None or not agent.alive:
            return False
        live = answers.live_session_id(agent.env, agent.pid)
        if live is None or live == agent.session_id:
            return False
        old, agent.session_id = agent.session_id, live
        self.meter.reset_context()
        agent.emit(SessionChanged(old, live))
        return True

    def adopt(self, session_id: str | None) -> None:
        """The program named its own session (found in its session files): that id is
        the agent's from now on, and what a restart resumes."""
        agent = self.agent
        if session_id is None or session_id == agent.session_id or session_id in self.others():
            return
        old, agent.session_id = agent.session_id, session_id
        agent.emit(SessionChanged(old, session_id))

    def registered(self) -> bool:
        """The program keeps a session registry (so it writes a transcript too)."""
        pid = self.agent.pid
        return self.followed and pid is not None and answers.registry_path(self.agent.env, pid).exists()

    def at_idle(self) -> None:
        """The program is at its prompt: follow a switch, count what the turn used, and
        from the first idle on watch the registry."""
        self.refresh()
        self.count()
        if self._watch is None and self.followed and self.agent.pid is not None:
            path = answers.registry_path(self.agent.env, self.agent.pid)
            if path.exists():  # never watch a file that is not there (no event would come)
                self._watch = asyncio.get_running_loop().create_task(self._follow(path))

    async def _follow(self, path: Path) -> None:
        """Re-read the registry whenever Claude rewrites it, while this process lives."""
        events = file_events()
        pid = self.agent.pid
        try:
            while self.agent.alive and self.agent.pid == pid and path.exists():
                events.armed(path)
                self.refresh()
                await events.changed(path, REGISTRY_SAFETY_READ)
        finally:
            self._watch = None

    def stop(self) -> None:
        """The process is gone: stop watching its registry."""
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None

    def count(self) -> answers.Usage:
        """Add what the live transcript recorded since the last look; the agent's total."""
        path = self.transcript()
        if path is not None:
            with contextlib.suppress(OSError):
                self.meter.read(path)
        return self.meter.total

    def usage(self) -> dict[str, Any] | None:
        """The agent's usage for its status (None before its first response)."""
        total = self.meter.total
        if not total.responses:
            return None
        return total.to_json(self.agent.profile.settings.context_window or None)
