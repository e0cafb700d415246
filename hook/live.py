"""The view the hook draws while it waits (it owns the terminal: Claude Code is stalled).

Per task: the agent, the task's and the agent's state, the elapsed time and the agent's
last screen line. Keys: ``↑``/``↓`` or ``1``–``9`` choose a task, ``a`` attaches to its
agent (``staff attach``; its detach key returns here), ``c`` (or Ctrl-C) cancels every
task and gives the original text back, ``b`` returns at once and leaves the answers to
the inbox. Drawn with rich, redrawn on every event and twice a second for the clock.
"""

from __future__ import annotations

import contextlib
import os
import sys
import termios
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from supervisor.protocol import Client, ProtocolError

from .delegate import Running

STYLE = {
    "done": "green",
    "working": "yellow",
    "blocked": "bold red",
    "failed": "bold magenta",
    "cancelled": "dim",
    "queued": "blue",
    "delivered": "yellow",
}
RULE_CHARS = set("─━═-▔▁ ")


def last_line(lines: list[str]) -> str:
    """The agent's most telling screen line: the last text above its input box."""
    rows = [ln.rstrip() for ln in lines]
    rules = [i for i, ln in enumerate(rows) if ln.strip() and set(ln.strip()) <= RULE_CHARS]
    top = rules[-2] if len(rules) >= 2 else (rules[-1] if rules else len(rows))
    for ln in reversed(rows[:top]):
        if ln.strip():
            return ln.strip()
    for ln in reversed(rows):
        if ln.strip() and not set(ln.strip()) <= RULE_CHARS:
            return ln.strip()
    return ""


class LiveView:
    interval: float | None = 0.5

    def __init__(self, client: Client | None, run_sub: Callable[[list[str], str], None]) -> None:
        self.client = client
        self.run_sub = run_sub
        self.selected = 0
        self.tasks: list[Running] = []
        self.console = Console(file=sys.stdout, highlight=False)
        self.live: Live | None = None
        self.saved: list[Any] | None = None
        self.screens_at = 0.0
        self._raw()
        self._start()

    # -- terminal ------------------------------------------------------------------------------
    def _raw(self) -> None:
        """No echo, no line buffering, Ctrl-C as a key (not a signal to Claude Code too)."""
        with contextlib.suppress(termios.error):
            self.saved = termios.tcgetattr(0)
            mode = termios.tcgetattr(0)
            mode[3] &= ~(termios.ECHO | termios.ICANON | termios.ISIG)
            mode[6][termios.VMIN], mode[6][termios.VTIME] = 1, 0
            termios.tcsetattr(0, termios.TCSANOW, mode)

    def _restore(self) -> None:
        if self.saved is not None:
            with contextlib.suppress(termios.error):
                termios.tcsetattr(0, termios.TCSADRAIN, self.saved)

    def _start(self) -> None:
        self.live = Live(
            console=self.console,
            auto_refresh=False,
            transient=True,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self.live.start()

    def _stop(self) -> None:
        if self.live is not None:
            with contextlib.suppress(Exception):
                self.live.stop()
            self.live = None

    def close(self) -> None:
        self._stop()
        self._restore()

    # -- the View protocol ---------------------------------------------------------------------
    def fileno(self) -> int | None:
        return 0

    def on_input(self) -> str | None:
        try:
            data = os.read(0, 64).decode(errors="replace")
        except OSError:
            return None
        if data in ("\x1b[A", "\x1bOA", "k"):
            self.selected = max(0, self.selected - 1)
        elif data in ("\x1b[B", "\x1bOB", "j"):
            self.selected = min(len(self.tasks) - 1, self.selected + 1)
        elif data.isdigit() and 1 <= int(data) <= len(self.tasks):
            self.selected = int(data) - 1
        elif data in ("c", "C", "\x03"):
            return "cancel"
        elif data in ("b", "B"):
            return "background"
        elif data in ("a", "A") and self.tasks:
            self.attach(self.tasks[self.selected])
        return None

    def attach(self, r: Running) -> None:
        self._stop()
        self._restore()
        try:
            self.run_sub([sys.executable, "-m", "supervisor", "attach", r.who], "attach")
        finally:
            self._raw()
            self._start()
            self.draw(self.tasks)

    def draw(self, tasks: list[Running]) -> None:
        self.tasks = tasks
        now = time.monotonic()
        if now - self.screens_at >= 0.5:
            self.screens_at = now
            self._screens(tasks)
        if self.live is not None:
            self.live.update(self.render(tasks, now), refresh=True)

    def _screens(self, tasks: list[Running]) -> None:
        if self.client is None:
            return
        for r in tasks:
            if r.final or r.state == "queued":
                continue
            try:
                scr = self.client.call("screen", agent=r.who)
            except ProtocolError:
                continue
            r.last_line = last_line(scr.get("lines") or [])
            r.agent_state = scr.get("state") or r.agent_state

    def render(self, tasks: list[Running], now: float) -> Group:
        table = Table(box=None, padding=(0, 1), show_edge=False, expand=False)
        for col in ("", "agent", "task", "state", "time", "last line"):
            table.add_column(col, no_wrap=True, overflow="ellipsis")
        width = max(20, self.console.width - 50)
        for i, r in enumerate(tasks):
            mark = "❯" if i == self.selected else str(i + 1)
            state = r.state if r.final or not r.agent_state else f"{r.state} ({r.agent_state})"
            table.add_row(
                mark,
                escape(r.who),
                r.id,
                f"[{STYLE.get(r.state, '')}]{escape(state)}[/]",
                f"{now - r.started:4.0f}s",
                Text(r.last_line[:width], style="dim"),
            )
        keys = Text("↑↓ choose · a attach · c cancel · b background (answers to the inbox)", style="dim")
        return Group(Text("staff: waiting for the answers…", style="bold"), table, keys)
