"""The quick picker: Ctrl-G on a draft with no ``@agent`` line, on a terminal.

Lists the team with live states and current tasks, then "edit in my editor" and "open
the console". Enter on an agent delegates the whole draft to it (as if the draft began
with ``@name``); Esc goes back to Claude Code with the draft as it was. States stay live:
a subscription thread refreshes the list and wakes the app (``invalidate``), no timer.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import threading
from pathlib import Path
from typing import Any

from prompt_toolkit.application import Application
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.layout import HSplit, Layout, Window
from prompt_toolkit.layout.controls import FormattedTextControl
from prompt_toolkit.styles import Style

from supervisor.protocol import Client, ProtocolError

from .delegate import Interrupted

EDITOR = ":editor"
CONSOLE = ":console"
STATE_STYLE = {
    "idle": "class:idle",
    "working": "class:working",
    "blocked": "class:blocked",
    "starting": "class:starting",
    "user": "class:user",
}


class Team:
    """The agents as the daemon reports them, kept fresh by a subscription thread."""

    def __init__(self, sock: Path) -> None:
        self.sock = sock
        self.lock = threading.Lock()
        self.agents: list[dict[str, Any]] = []
        self.refresh()
        self.app: Application[str | None] | None = None
        self._sub = Client(sock, timeout=None)
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def refresh(self) -> None:
        try:
            with Client(self.sock, timeout=5.0) as c:
                agents = c.call("status")["agents"]
        except ProtocolError:
            return
        with self.lock:
            self.agents = agents

    def _follow(self) -> None:
        with contextlib.suppress(Exception):
            for frame in self._sub.stream("subscribe"):
                ev = frame.get("event") or {}
                if ev.get("type") in ("state", "task", "spawned"):
                    self.refresh()
                    if self.app is not None:
                        self.app.invalidate()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            if self._sub._sock is not None:
                self._sub._sock.shutdown(2)
        self._sub.close()


def pick(sock: Path, draft: str, unknown: list[str]) -> str | None:
    """Ask which agent gets the draft. Returns an agent name, EDITOR, CONSOLE or None (Esc)."""
    team = Team(sock)
    selected = [0]

    def choices() -> list[tuple[str, str]]:
        with team.lock:
            agents = list(team.agents)
        out = [(a["agent_id"], a["agent_id"]) for a in agents]
        return [*out, (EDITOR, "✎ edit in my editor"), (CONSOLE, "▣ open the console")]

    def lines() -> StyleAndTextTuples:
        first = next((ln for ln in draft.splitlines() if ln.strip()), "")
        preview = first[:70] + ("…" if len(first) > 70 or draft.count("\n") else "")
        out: StyleAndTextTuples = [("class:title", "staff: delegate this draft to…\n")]
        out.append(("class:dim", f"  {preview or '(the draft is empty)'}\n"))
        if unknown:
            out.append(("class:warn", f"  note: {', '.join(unknown)} names no agent here\n"))
        with team.lock:
            by_name = {a["agent_id"]: a for a in team.agents}
        for i, (key, label) in enumerate(choices()):
            cur = i == selected[0]
            out.append(("class:cursor" if cur else "", " ❯ " if cur else "   "))
            a = by_name.get(key)
            if a is None:
                out.append(("class:selected" if cur else "", f"{label}\n"))
                continue
            task = f"{a['current_task']} {a.get('current_task_title') or ''}" if a.get("current_task") else ""
            queue = f" +{a['queue']} queued" if a.get("queue") else ""
            out.append(("class:selected" if cur else "", f"{i + 1}. {label:<14}"))
            out.append((STATE_STYLE.get(a["status"], "class:dim"), f"{a['status']:<9}"))
            out.append(("class:dim", f"{task[:50]}{queue}\n"))
        out.append(("class:dim", "  ↑↓ choose · Enter send · Esc back to Claude Code"))
        return out

    kb = KeyBindings()

    @kb.add("up")
    @kb.add("k")
    def _up(event: KeyPressEvent) -> None:
        selected[0] = max(0, selected[0] - 1)

    @kb.add("down")
    @kb.add("j")
    def _down(event: KeyPressEvent) -> None:
        selected[0] = min(len(choices()) - 1, selected[0] + 1)

    @kb.add("enter")
    def _enter(event: KeyPressEvent) -> None:
        event.app.exit(result=choices()[selected[0]][0])

    for digit in "123456789":

        @kb.add(digit)
        def _digit(event: KeyPressEvent, digit: str = digit) -> None:
            n = int(digit) - 1
            if n < len(choices()):
                event.app.exit(result=choices()[n][0])

    @kb.add("escape", eager=True)
    @kb.add("q")
    @kb.add("c-c")
    def _back(event: KeyPressEvent) -> None:
        event.app.exit(result=None)

    style = Style.from_dict(
        {
            "title": "bold",
            "dim": "#888888",
            "warn": "#d7af00",
            "cursor": "#d7875f bold",
            "selected": "bold",
            "idle": "#5faf5f",
            "working": "#d7af00",
            "blocked": "#ff5f5f bold",
            "starting": "#5f87d7",
            "user": "#5fafaf",
        }
    )
    app: Application[str | None] = Application(
        layout=Layout(HSplit([Window(FormattedTextControl(lines, show_cursor=False), wrap_lines=False)])),
        key_bindings=kb,
        style=style,
        full_screen=False,
        erase_when_done=True,
    )
    team.app = app

    async def run() -> str | None:
        # A signal ends the picker through the app (prompt_toolkit would otherwise catch the
        # exception in its loop and wait for Enter); the hook then writes the text back.
        loop = asyncio.get_running_loop()

        def on_signal(name: str) -> None:
            if not app.is_running:  # not started yet (or already ending): try again shortly
                loop.call_later(0.01, on_signal, name)
            elif not app.is_done:
                app.exit(exception=Interrupted(name))

        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
            loop.add_signal_handler(sig, on_signal, sig.name)
        return await app.run_async(handle_sigint=False)

    try:
        return asyncio.run(run())
    finally:
        team.close()
