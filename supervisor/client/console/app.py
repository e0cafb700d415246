"""`staff console`: the full-screen prompt_toolkit client of the daemon (the view).

Layout: a sidebar of agents (number, name, a coloured state badge, current task, queue
length), the main area (one agent's live terminal, or a split of 2–4), a status bar (team
counts, inbox, key hints) and, on demand, a command line, the help and a scrollback view.
The arrangement (what is shown, what has the keyboard) is model.py's; this module draws
it and turns keys and clicks into model changes and daemon requests.

Everything is event driven: the daemon pushes state events and screen output; each output
chunk updates a local screen and asks for a frame: drawn at once if none was drawn in the
last 1/`fps` s, else once at the end of that interval (a one-shot timer, never a polling
loop), so output redraws at most `fps` times a second while a keystroke's echo is drawn
at once; prompt_toolkit sends only the cells that changed to the terminal.
Quitting (prefix d) or killing the console stops no agent and no task: the daemon keeps
them, and forgets this console's sizes and holds when its connections close.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import socket
import time
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from prompt_toolkit.application import Application
from prompt_toolkit.buffer import Buffer
from prompt_toolkit.data_structures import Point
from prompt_toolkit.filters import Condition
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.layout import (
    ConditionalContainer,
    DynamicContainer,
    Float,
    FloatContainer,
    HSplit,
    Layout,
    VSplit,
    Window,
)
from prompt_toolkit.layout.containers import AnyContainer
from prompt_toolkit.layout.controls import BufferControl, FormattedTextControl
from prompt_toolkit.layout.processors import BeforeInput
from prompt_toolkit.layout.screen import Char
from prompt_toolkit.mouse_events import MouseEvent, MouseEventType
from prompt_toolkit.styles import Style
from prompt_toolkit.utils import get_cwidth
from prompt_toolkit.widgets import Frame, TextArea

from supervisor.client.attach import describe_key
from supervisor.client.connection import Connection
from supervisor.client.console.bindings import bindings, key_map
from supervisor.client.console.model import Arrangement
from supervisor.client.console.termview import LocalScreen, TerminalControl
from supervisor.protocol import ProtocolError, socket_path
from supervisor.util.atomic import write_json_atomic

SIDEBAR_WIDTH = 26
DAEMON_GONE = "the daemon went away"
DEFAULT_FPS = 30.0
LAYOUT_FILE = "console-layout.json"
"""In the state dir: the panes shown, the focus and the zoom of the last console."""
UNKNOWN = Char(" ", "class:echo-drawn")
"""A cell of prompt_toolkit's last frame that the echo path overwrote: equal to no real
cell, so the next frame writes it again."""
SHOWN_AS = str.maketrans(Char.display_mappings)
"""Characters prompt_toolkit draws otherwise (a no-break space as a space, C0 as ^X): the echo
path draws them the same way."""
DEAD = ("exited", "crashed")
"""States in which an agent's pane takes no keys but Enter, which starts it again."""
UNREACHABLE = "unreachable"
"""Another host's agent while the link to that host is down (daemon/hosts.py): greyed, its
last screen kept, typing refused; its stream starts again when the link is back."""

BADGE = {
    "idle": "class:badge.idle",
    "working": "class:badge.working",
    "blocked": "class:badge.blocked",
    "user": "class:badge.user",
    "starting": "class:badge.starting",
    "exited": "class:badge.exited",
    "crashed": "class:badge.crashed",
    UNREACHABLE: "class:badge.unreachable",
}
STYLE = Style.from_dict(
    {
        "sidebar": "bg:#1c1c1c #d0d0d0",
        "sidebar.title": "bold",
        "sidebar.focus": "bg:#3a3a3a bold",
        "sidebar.task": "#8a8a8a",
        "badge.idle": "bg:ansigreen fg:ansiblack",
        "badge.working": "bg:ansiyellow fg:ansiblack",
        "badge.blocked": "bg:ansired fg:ansiwhite bold",
        "badge.user": "bg:ansicyan fg:ansiblack",
        "badge.starting": "bg:ansiblue fg:ansiwhite",
        "badge.exited": "bg:ansibrightblack fg:ansiwhite",
        "badge.crashed": "bg:ansimagenta fg:ansiwhite bold",
        "badge.unreachable": "bg:#444444 fg:#9e9e9e",
        "sidebar.unreachable": "#6c6c6c",
        "pane.title.unreachable": "bg:#262626 #6c6c6c",
        "pane.title": "bg:#303030 #c0c0c0",
        "pane.title.focus": "bg:#005f87 #ffffff bold",
        "status": "bg:#262626 #bcbcbc",
        "status.message": "bg:#262626 #ffd75f",
        "separator": "#444444",
        "help": "bg:#1c1c1c #e4e4e4",
        "pane.dead": "bg:ansiyellow fg:ansiblack",
    }
)

HELP = """\
Prefix: {prefix}, then
  n / p        next / previous agent        1-9   agent by number
  o            next pane (in a split)       s %   split: show one more agent (up to 4)
  u            unsplit                      z     zoom the focused pane
  [            scrollback of the focused agent (q leaves; v select, y copy)
  :            command line: ask AGENT TEXT · answer [AGENT] N · send AGENT TEXT
               new [NAME [AGENT]] · rename [AGENT] NEW · remove [AGENT] · spawn/kill/restart AGENT
               split · unsplit · detach
  c            a new agent like this one    x     kill this agent (Enter confirms)
  ,            rename this agent (one added at run time)
  d            detach (every agent keeps running)
  ?            this help                    {prefix} {prefix}  send {prefix} to the agent
Mouse: click an agent or a pane to focus it; the wheel scrolls a pane (Claude: its own view).
Typing into an agent holds it (state `user`): its queued tasks wait until you switch away
or stop typing for a while. Any key closes this help."""


class ConsoleApplication(Application[str]):
    """prompt_toolkit redraws after every key press; a key typed into an agent changes
    nothing on screen until its echo comes back (which asks for its own frame), so that
    redraw is skipped: it would only delay the echo by a frame's render time."""

    skip_key_redraw = False

    def invalidate(self) -> None:
        if self.skip_key_redraw:
            self.skip_key_redraw = False
            return
        super().invalidate()


class Pane:
    """An agent shown in the console: its stream connection, local screen and control."""

    def __init__(self, console: Console, name: str) -> None:
        self.console = console
        self.name = name
        self.local = LocalScreen()
        self.size: tuple[int, int] | None = None
        self.conn: Connection | None = None
        self.control = TerminalControl(
            self.local,
            on_keys=self.keys,
            on_size=self.on_size,
            on_mouse=self.on_mouse,
            self_invalidate=False,
        )
        self.local.changed += lambda _: console.output_changed()
        self.window = Window(self.control, wrap_lines=False)
        self.title = Window(FormattedTextControl(self.title_text), height=1, style=self.title_style)
        self.container = HSplit([self.title, self.window])
        self._opening: asyncio.Task[None] | None = None

    def title_style(self) -> str:
        info = self.console.model.agents.get(self.name)
        if info is not None and info.state == UNREACHABLE:
            return "class:pane.title.unreachable"
        return "class:pane.title.focus" if self.console.model.focus == self.name else "class:pane.title"

    def title_text(self) -> StyleAndTextTuples:
        info = self.console.model.agents.get(self.name)
        state = info.state if info else "?"
        out: StyleAndTextTuples = [("", f" {self.name} "), (BADGE.get(state, ""), f" {state} ")]
        if state == UNREACHABLE:
            out.append(("", f" {self.console.host_line(self.name)} · the last screen it showed"))
            return out
        if info and info.task_title:
            out.append(("", f" {info.task} {info.task_title}"))
        if state in DEAD:
            why = info.error if info and info.error else "not running"
            out.append(("class:pane.dead", f" {why} · Enter starts it again (its conversation resumes) "))
        return out

    def open(self) -> None:
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._open())

    def reopen(self) -> None:
        """A new stream (a fresh snapshot): the link to the agent's host is back."""
        old, self.conn, self._opening = self.conn, None, None
        if old is not None:
            self.console._spawn(old.close())
        self.open()

    async def _open(self) -> None:
        try:
            self.conn = await Connection.open(self.console.sock)
        except ProtocolError as exc:
            self.console.message = exc.message
            return
        if self.size is not None:
            self._send_size()
        stream = self.conn.stream("stream", self.on_event, agent=self.name)
        stream.add_done_callback(self._ended)

    def _ended(self, stream: asyncio.Future[Any]) -> None:
        """The stream ended with an error reply: another host's link dropped (the pane keeps
        its last screen, and is opened again when the link is back), or the agent is gone.
        Retrieved here, or prompt_toolkit would show it as an unhandled exception."""
        if not stream.cancelled() and stream.exception() is not None:
            self.console.app.invalidate()

    def on_event(self, ev: dict[str, Any]) -> None:
        kind = ev.get("type")
        if kind == "snapshot":
            self.local.snapshot(int(ev["rows"]), int(ev["cols"]), ev["data"])
        elif kind == "output":
            self.local.feed(ev["data"])

    def on_size(self, rows: int, cols: int) -> None:
        if (rows, cols) != self.size:
            self.size = (rows, cols)
            self._send_size()

    def _send_size(self) -> None:
        if self.conn is not None and self.size is not None:
            rows, cols = self.size
            self.conn.send(
                "resize", agent=self.name, rows=max(rows, 2), cols=max(cols, 10), viewer=self.console.viewer
            )

    def keys(self, data: str) -> None:
        info = self.console.model.agents.get(self.name)
        if info is not None and info.state in DEAD:
            self.console.dead_keys(self.name, data)
            return
        if info is not None and info.state == UNREACHABLE:
            # what matters first: the status bar shortens a long message at its end
            self.console.message = f"{self.name}: nothing was sent: {self.console.host_line(self.name)}"
            self.console.app.invalidate()
            return
        self.console.type_into(self.name, data)

    def on_mouse(self, ev: MouseEvent) -> bool:
        if ev.event_type == MouseEventType.MOUSE_UP:
            self.console.focus(self.name)
            return True
        if ev.event_type in (MouseEventType.SCROLL_UP, MouseEventType.SCROLL_DOWN):
            self.console.focus(self.name)
            wheel = self.local.wheel(ev.event_type == MouseEventType.SCROLL_UP, ev.position.x, ev.position.y)
            if wheel:  # the program reads the mouse (Claude Code): it scrolls its own view
                self.keys(wheel)
            elif ev.event_type == MouseEventType.SCROLL_UP:
                self.console.open_scrollback()
            return True
        return False

    async def close(self) -> None:
        if self._opening is not None:
            with contextlib.suppress(BaseException):
                await self._opening
        if self.conn is not None:
            await self.conn.close()


class Console:
    def __init__(
        self,
        home: Path,
        *,
        prefix: str = "\x02",
        focus: str | None = None,
        fps: float | None = None,
        note: str = "",
        keys: dict[str, str | list[str]] | None = None,
        **app_kwargs: Any,
    ) -> None:
        self.home = home
        self.keys = key_map(keys)
        """What each key after the prefix does (bindings.py; `console_keys` in staff.toml)."""
        self.sock = socket_path(home)
        self.prefix = prefix
        self.first_focus = focus
        self.fps = fps or float(os.environ.get("STAFF_CONSOLE_FPS", DEFAULT_FPS))
        self.model = Arrangement()
        self.viewer = f"console-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.panes: dict[str, Pane] = {}
        self.held: set[str] = set()
        self.stopping_for_good = False
        """The daemon said it stops with its agents (`staff down`), not for a reload."""
        self.asked: set[str] = set()  # tasks given from the command line: their end is shown
        self.message = note
        """The status bar's message: what the last command did, an error, a note."""
        self.inbox = 0
        self.hosts: dict[str, dict[str, Any]] = {}
        """Other hosts' links as the daemon last said (`host` events, status): why one is down."""
        self.help_visible = False
        self.command_visible = False
        self.scrollback_visible = False
        self.ctl: Connection | None = None
        self.events: Connection | None = None
        self.exit_reason = "detached"
        self._refreshing = False
        self._refresh_again = False
        self._tasks: set[asyncio.Future[None]] = set()
        self._frame_timer: asyncio.TimerHandle | None = None
        self._last_frame = 0.0
        self._echo_due = False
        self.frames = 0
        self._saved_layout: dict[str, Any] | None = None
        self.command = Buffer(multiline=False, accept_handler=self._accept_command)
        self.scrollback = TextArea(read_only=True, scrollbar=True, focus_on_click=True)
        self.app: ConsoleApplication = ConsoleApplication(
            layout=self._layout(),
            key_bindings=bindings(self),
            style=STYLE,
            full_screen=True,
            mouse_support=True,
            **app_kwargs,
        )
        self.app.timeoutlen = None  # type: ignore[assignment]  # the prefix waits for its second key as long as it takes
        self.app.ttimeoutlen = 0.05  # Esc reaches the agent at once (Claude interrupts on it)

    # -- layout ------------------------------------------------------------------------------
    def _layout(self) -> Layout:
        sidebar = Window(FormattedTextControl(self.sidebar_text), width=SIDEBAR_WIDTH, style="class:sidebar")
        main = DynamicContainer(self._main)
        status = Window(FormattedTextControl(self.status_text), height=1, style="class:status")
        command = ConditionalContainer(
            Window(BufferControl(self.command, input_processors=[BeforeInput(":")]), height=1),
            filter=Condition(lambda: self.command_visible),
        )
        self.help_window = Window(
            FormattedTextControl(lambda: HELP.format(prefix=describe_key(self.prefix)), focusable=True),
            style="class:help",
        )
        body = VSplit([sidebar, Window(width=1, char="│", style="class:separator"), main])
        root = FloatContainer(
            HSplit([body, status, command]),
            floats=[
                Float(
                    ConditionalContainer(
                        Frame(self.help_window, title="staff console"),
                        filter=Condition(lambda: self.help_visible),
                    )
                )
            ],
        )
        return Layout(root)

    def _main(self) -> AnyContainer:
        if self.scrollback_visible:
            return HSplit(
                [
                    Window(
                        FormattedTextControl(
                            f" scrollback: {self.model.focus}  (q leaves · / search · v select · y copy)"
                        ),
                        height=1,
                        style="class:pane.title.focus",
                    ),
                    self.scrollback,
                ]
            )
        names = self.model.visible()
        panes = [self.pane(n).container for n in names]
        if not panes:
            return Window(FormattedTextControl(" no agents"))
        sep_v = Window(width=1, char="│", style="class:separator")
        if len(panes) == 1:
            return panes[0]
        if len(panes) == 2:
            return VSplit([panes[0], sep_v, panes[1]])
        top = VSplit([panes[0], sep_v, panes[1]])
        bottom_panes = panes[2:]
        bottom: AnyContainer = (
            bottom_panes[0]
            if len(bottom_panes) == 1
            else VSplit(
                [bottom_panes[0], Window(width=1, char="│", style="class:separator"), bottom_panes[1]]
            )
        )
        return HSplit([top, Window(height=1, char="─", style="class:separator"), bottom])

    def pane(self, name: str) -> Pane:
        p = self.panes.get(name)
        if p is None:
            p = self.panes[name] = Pane(self, name)
            p.open()
        return p

    def sidebar_text(self) -> StyleAndTextTuples:
        out: StyleAndTextTuples = [("class:sidebar.title", " AGENTS\n")]
        for i, (name, info) in enumerate(self.model.agents.items(), 1):
            handler = self._click(name)
            focus = name == self.model.focus
            line_style = "class:sidebar.focus" if focus else ""
            if info.state == UNREACHABLE:
                line_style += " class:sidebar.unreachable"
            mark = "▶" if focus else " "
            badge = f" {info.state:<8}"
            room = SIDEBAR_WIDTH - 2 - len(badge)  # `unreachable` is wider than the others
            label = f"{mark}{i if i < 10 else ' '} {name}"[:room]
            out.append((line_style, f"{label:<{room}} ", handler))
            out.append((BADGE.get(info.state, ""), badge, handler))
            out.append(("", "\n"))
            task = f"{info.task} {info.task_title}" if info.task else (info.error or "")
            if not task and info.draft:
                task = f"✎ draft: {info.draft}"  # its tasks wait until it is sent or cleared
            queue = f" q:{info.queue}" if info.queue else ""
            room = SIDEBAR_WIDTH - 4 - len(queue)
            task = task if len(task) <= room else task[: room - 1] + "…"
            grey = " class:sidebar.unreachable" if info.state == UNREACHABLE else ""
            out.append(("class:sidebar.task" + grey, f"   {task:<{room}}{queue}\n", handler))
            for note in info.notes:  # a limit, a retry, background work; the context used, the cost
                note = note if len(note) <= room else note[: room - 1] + "…"
                out.append(("class:sidebar.task", f"   {note}\n", handler))
        return out

    def host_line(self, name: str) -> str:
        """Why another host's agent is unreachable: its link's state, since when, the
        transport's last error line (as the daemon's own refusal says it)."""
        host = name.partition("/")[0]
        info = self.hosts.get(host)
        if info is None:
            return f"host {host} is unreachable"
        since = time.strftime("%H:%M:%S", time.localtime(float(info.get("since") or 0)))
        why = f": {info['error']}" if info.get("error") else ""
        return f"host {host} is {info.get('state')} (since {since}){why}"

    def _on_hosts(self, hosts: Any) -> None:
        for h in hosts if isinstance(hosts, list) else []:
            if isinstance(h, dict) and isinstance(h.get("host"), str):
                self.hosts[h["host"]] = h

    def _click(self, name: str) -> Any:
        def handler(ev: MouseEvent) -> None:
            if ev.event_type == MouseEventType.MOUSE_UP:
                self.focus(name)

        return handler

    def status_text(self) -> StyleAndTextTuples:
        counts = self.model.counts()
        parts = [f"{n} {s}" for s, n in counts.items() if n]
        left = " " + " · ".join(parts)
        if self.inbox:
            left += f" · inbox {self.inbox}"
        p = describe_key(self.prefix)
        width = self.app.output.get_size().columns if self.app else 80
        # The keys are always shown (a first screen with a message used to hide them): the
        # message gets the room between the counts and the hint, shortened to fit.
        hint = f"{p} n/p switch · s split · z zoom · [ scroll · : cmd · d detach · ? help "
        if len(left) + len(hint) + 4 + min(len(self.message), 30) > width:
            hint = f"{p} d detach · {p} ? help "
        room = width - len(left) - len(hint) - 4
        out: StyleAndTextTuples = [("class:status", left)]
        used = len(left)
        if self.message and room > 1:
            msg = self.message if len(self.message) <= room else self.message[: room - 1] + "…"
            out += [("class:status", " │ "), ("class:status.message", msg)]
            used += 3 + len(msg)
        out.append(("class:status", " " * max(1, width - used - len(hint)) + hint))
        return out

    def _osc52(self, text: str) -> None:
        import base64

        out = self.app.output
        out.write_raw("\x1b]52;c;" + base64.b64encode(text.encode()).decode() + "\x07")
        out.flush()

    # -- focus and typing ----------------------------------------------------------------------
    def _step(self, delta: int) -> None:
        before = self.model.focus
        self.model.step(delta)
        self._after_focus(before)

    def focus(self, name: str) -> None:
        before = self.model.focus
        if name in self.model.agents:
            self.model.select(name)
        self._after_focus(before)

    def _after_focus(self, before: str | None) -> None:
        self.message = ""
        if before is not None and before != self.model.focus and before in self.held:
            self.release(before)  # the person left that agent: its tasks may go now
        self._refocus()

    def _load_layout(self) -> dict[str, Any]:
        import json

        try:
            saved = json.loads((self.home / LAYOUT_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return saved if isinstance(saved, dict) else {}

    def _keep_layout(self) -> None:
        """Write the layout for the next console (as tmux keeps a session's windows and
        panes across detach); only when it changed, so a switch costs one small write."""
        layout = self.model.layout()
        if self._saved_layout is None or layout == self._saved_layout:
            return
        self._saved_layout = layout
        with contextlib.suppress(OSError):
            write_json_atomic(self.home / LAYOUT_FILE, layout, durable=False)

    def _refocus(self) -> None:
        """Open the panes now shown, close the others, and focus the right window."""
        self._keep_layout()
        visible = set(self.model.visible()) if not self.scrollback_visible else {self.model.focus}
        for name in list(self.panes):
            if name not in visible:
                pane = self.panes.pop(name)
                self._spawn(pane.close())
                if name in self.held:
                    self.release(name)
        if self.scrollback_visible:
            self.app.layout.focus(self.scrollback)
        elif self.model.focus is not None:
            self.app.layout.focus(self.pane(self.model.focus).window)
        self.app.invalidate()

    def type_into(self, name: str, data: str) -> None:
        if self.ctl is None:
            return
        self.held.add(name)
        self._echo_due = True
        self.app.skip_key_redraw = True
        self.ctl.send("input", agent=name, keys=data)

    def dead_keys(self, name: str, data: str) -> None:
        """Keys typed into an agent that is not running (a person quit it with Ctrl-C twice,
        it crashed): Enter starts it again, anything else says how, nothing is lost quietly."""
        if "\r" in data:
            self._spawn(self.run_command(f"spawn {shlex.quote(name)}"))
        else:
            self.message = f"{name} stopped: Enter restarts it"
            self.app.invalidate()

    def release(self, name: str) -> None:
        self.held.discard(name)
        if self.ctl is not None:
            self.ctl.send("hold", agent=name, on=False)

    def detach(self, reason: str) -> None:
        """End the console (no agent stops). Safe to call at any time: prompt_toolkit raises
        if exit() comes before the application runs or after it has finished."""
        fut = self.app.future
        if fut is None or fut.done():
            return
        self.exit_reason = reason
        self.app.exit(result=reason)

    def open_command(self, text: str) -> None:
        """The command line, with `text` typed in it (Enter runs it, Esc cancels)."""
        self.command_visible = True
        self.command.reset()
        self.command.text = text
        self.command.cursor_position = len(text)
        self.app.layout.focus(self.command)

    def new_agent(self) -> None:
        """A new agent in the team made like the focused one (`NAME-2`…), shown and focused,
        as tmux's C-b c opens a window; `:new NAME [AGENT]` chooses the name."""
        if self.model.focus is not None:
            self._spawn(self.run_command(f"new --like {shlex.quote(self.model.focus)}"))

    # -- the scrollback view ----------------------------------------------------------------------
    def open_scrollback(self) -> None:
        name = self.model.focus
        if name is None or self.ctl is None:
            return

        async def load() -> None:
            assert self.ctl is not None
            try:
                logs = await self.ctl.call("logs", agent=name)
            except ProtocolError as exc:
                self.message = exc.message
                return
            text = "\n".join(logs["lines"])
            from prompt_toolkit.document import Document

            self.scrollback.buffer.set_document(Document(text, len(text)), bypass_readonly=True)
            self.scrollback_visible = True
            self._refocus()

        self._spawn(load())

    # -- the command line ---------------------------------------------------------------------------
    def _accept_command(self, buf: Buffer) -> bool:
        line = buf.text.strip()
        self.command_visible = False
        self._refocus()
        if line:
            self._spawn(self.run_command(line))
        return False

    async def run_command(self, line: str) -> None:
        assert self.ctl is not None
        try:
            words = shlex.split(line)
        except ValueError as exc:
            self.message = f"cannot read that: {exc}"
            return
        cmd, args = words[0], words[1:]
        focus = self.model.focus
        try:
            if cmd == "ask" and len(args) >= 2:
                task = await self.ctl.call("submit", to=args[0], text=" ".join(args[1:]))
                self.asked.add(task["id"])
                self.message = f"{task['id']} queued for {args[0]}"
            elif cmd in ("spawn", "kill", "restart") and len(args) <= 1 and (args or focus):
                st = await self.ctl.call(cmd, agent=args[0] if args else focus)
                self.message = f"{st['agent_id']}: {st['status']}"
            elif cmd == "new" and len(args) <= 2 and (len(args) == 2 or focus):
                # new · new NAME · new NAME AGENT · new --like AGENT (C-b c): made like AGENT
                like = args[1] if len(args) == 2 else str(focus)
                if args and args[0] != "--like":
                    st = await self.ctl.call("new", like=like, agent=args[0])
                else:
                    st = await self.ctl.call("new", like=like)
                self.model.set_team((await self.ctl.call("status"))["agents"])
                self.focus(st["agent_id"])
                self.message = f"{st['agent_id']}: new, like {like}"
            elif cmd == "rename" and len(args) in (1, 2) and (len(args) == 2 or focus):
                old, new = (args[0], args[1]) if len(args) == 2 else (str(focus), args[0])
                await self.ctl.call("rename", agent=old, new=new)
            elif cmd == "remove" and len(args) <= 1 and (args or focus):
                st = await self.ctl.call("remove", agent=args[0] if args else focus)
                self.message = f"{st['agent_id']}: removed from the team"
            elif cmd == "answer" and args:
                agent, choice = (args[0], args[1]) if len(args) > 1 else (focus, args[0])
                got = await self.ctl.call("answer", agent=agent, keys=choice, timeout=0)
                self.message = f"answered {choice} to {agent}: now {got['state']}"
            elif cmd == "send" and len(args) >= 2:
                await self.ctl.call("send", agent=args[0], keys=" ".join(args[1:]) + "\r")
                self.message = f"sent to {args[0]}"
            elif cmd == "find" and args and self.scrollback_visible:
                self._find(" ".join(args))
            elif cmd == "split":
                self.model.split_add()
                self._refocus()
            elif cmd == "unsplit":
                self.model.unsplit()
                self._refocus()
            elif cmd in ("detach", "quit", "q"):
                self.detach("detached")
            else:
                self.message = (
                    f"unknown command {line!r}: ask AGENT TEXT · answer [AGENT] N · send AGENT TEXT · "
                    "new [NAME [AGENT]] · rename [AGENT] NEW · remove [AGENT] · spawn|kill|restart AGENT · "
                    "split · unsplit · detach"
                )
        except ProtocolError as exc:
            self.message = exc.message
        self.app.invalidate()

    def _find(self, needle: str) -> None:
        buf = self.scrollback.buffer
        text = buf.text
        i = text.rfind(needle, 0, max(buf.cursor_position, 0))
        if i < 0:
            i = text.rfind(needle)
        if i < 0:
            self.message = f"not found: {needle}"
        else:
            buf.cursor_position = i
        self.app.layout.focus(self.scrollback)

    # -- the daemon's events ------------------------------------------------------------------------
    def on_event(self, ev: dict[str, Any]) -> None:
        kind = ev.get("type")
        if kind == "hello":
            self._on_hosts(ev.get("hosts"))
            self.model.set_team(ev["agents"])
            if self._saved_layout is None:  # the first hello: the last console's layout
                self._saved_layout = self._load_layout()
                self.model.restore(self._saved_layout)
            if self.first_focus in self.model.agents:
                self.model.select(self.first_focus)
                self.first_focus = None
            self._refocus()
        elif kind == "state":
            info = self.model.agents.get(ev.get("agent", ""))
            if info is not None:
                info.state = ev["new"]
                if info.state in DEAD and info.name in self.model.visible():
                    self.message = f"{info.name} {info.state}: Enter restarts it"  # the title says more
            self._refresh()
        elif kind == "draft":
            info = self.model.agents.get(ev.get("agent", ""))
            if info is not None:
                info.draft = ev.get("draft")
        elif kind in ("detail", "limit"):
            self._refresh()
        elif kind in ("task", "spawned"):
            self._refresh()
            t = ev.get("task") or {}
            final = t.get("state") in ("done", "failed", "cancelled")
            if final and (t.get("id") in self.asked or not self.message):
                self.asked.discard(t["id"])
                first = (t.get("answer") or t.get("error") or "").strip().splitlines()
                who = t.get("agent") or t["to"]
                self.message = f"{t['id']} {t['state']} ({who}): {first[0][:60] if first else ''}"
        elif kind == "renamed":
            old, new = str(ev.get("agent")), str(ev.get("new"))
            self.model.rename(old, new)
            if old in self.held:  # the daemon's hold is on the agent, whatever its name
                self.held.discard(old)
                self.held.add(new)
            self.first_focus = new if self.first_focus == old else self.first_focus
            self._refocus()  # the old name's pane closes, the new one's opens its stream
            self.message = f"{old} is now {new}"
        elif kind == "removed":
            self._refresh()
            self.message = f"{ev.get('agent')} removed from the team"
        elif kind == "stopping":
            self.stopping_for_good = not ev.get("reload")
        elif kind == "inbox":
            self.inbox += 1
        elif kind == "host":  # a link to another host went down or came back
            self._on_hosts([ev])
            self._refresh()  # its agents' rows: unreachable, or their states again
            if ev.get("state") == "connected":
                for name, pane in self.panes.items():
                    if name.startswith(f"{ev['host']}/"):
                        pane.reopen()
        self.app.invalidate()

    def _refresh(self) -> None:
        """Re-read the team's status (task titles, queue lengths); one request at a time."""
        if self._refreshing:
            self._refresh_again = True
            return
        self._refreshing = True

        async def go() -> None:
            try:
                while True:
                    self._refresh_again = False
                    if self.ctl is None:
                        return
                    st = await self.ctl.call("status")
                    self._on_hosts(st.get("hosts"))
                    self.model.set_team(st["agents"])
                    self.app.invalidate()
                    if not self._refresh_again:
                        return
            except ProtocolError:
                pass
            finally:
                self._refreshing = False

        self._spawn(go())

    def output_changed(self) -> None:
        """An agent's screen changed: redraw now, or at the next frame if one was just drawn.

        The frame cap applies to streamed output only: the first output after a keystroke
        (its echo) is drawn at once, so typing never waits for a frame slot (keystrokes come
        at a person's pace, so this adds at most one frame per key)."""
        if self._echo_due:  # the echo of a keystroke: drawn at once, whatever the cap
            self._echo_due = False
            if self._draw_echo():
                return
            if self._frame_timer is not None:
                self._frame_timer.cancel()
            self._frame()
            return
        if self._frame_timer is not None:
            return
        loop = asyncio.get_running_loop()
        wait = self._last_frame + 1.0 / self.fps - loop.time()
        if wait <= 0:
            self._frame()
        else:
            self._frame_timer = loop.call_later(wait, self._frame)

    def _draw_echo(self) -> bool:
        """Draw the focused pane's changed rows straight to the terminal, not through a
        prompt_toolkit frame (which lays out and compares the whole console: ~5 ms at 160x50,
        most of a keystroke's echo). Only in the plain view, with the pane drawn at its
        agent's size; the cells written are marked unknown in prompt_toolkit's last frame,
        so its next frame writes them again whatever they then hold. False: not possible,
        draw a frame instead."""
        name = self.model.focus
        pane = self.panes.get(name) if name else None
        r = self.app.renderer
        last, attrs = r._last_screen, r._attrs_for_style
        if pane is None or last is None or attrs is None or self.help_visible or self.command_visible:
            return False
        info = pane.window.render_info
        local = pane.local
        if (
            self.scrollback_visible
            or info is None
            or info.vertical_scroll
            or local.size != (info.window_height, info.window_width)
            or self.app.layout.current_window is not pane.window
        ):
            return False
        x0, y0 = info._x_offset, info._y_offset
        rows, cols = local.size
        out, depth = self.app.output, self.app.color_depth
        out.hide_cursor()
        for y in sorted(local.fresh):
            if y >= rows:
                continue
            out.cursor_goto(y0 + y + 1, x0 + 1)
            used = 0
            for frag in local.row(y):
                style, text = frag[0], frag[1]
                out.set_attributes(attrs[style], depth)
                out.write(text.translate(SHOWN_AS))
                used += get_cwidth(text)
            out.reset_attributes()
            if used < cols:
                out.write(" " * (cols - used))
            line = last.data_buffer[y0 + y]
            for x in range(x0, x0 + cols):
                line[x] = UNKNOWN
        local.fresh.clear()
        x, y = local.cursor
        r._cursor_pos = Point(x=x0 + x, y=y0 + min(y, rows - 1))
        r._last_style = None
        out.cursor_goto(r._cursor_pos.y + 1, r._cursor_pos.x + 1)
        if not local.cursor_hidden:
            out.show_cursor()
        out.flush()
        return True

    def _frame(self) -> None:
        self._frame_timer = None
        self._last_frame = asyncio.get_running_loop().time()
        self.frames += 1
        self.app.invalidate()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- running --------------------------------------------------------------------------------------
    async def run(self) -> str:
        self.ctl = await Connection.open(self.sock)
        self.ctl.on_error = self._on_error
        self.events = await Connection.open(self.sock)
        try:
            unread = await self.ctl.call("inbox")
            self.inbox = len(unread.get("items", []))
            daemon_note = (await self.ctl.call("ping")).get("note") or ""  # e.g. "fake agents"
            self.message = " · ".join(m for m in (daemon_note, self.message) if m)
        except ProtocolError:
            pass
        self.events.stream("subscribe", self.on_event)
        self.events.closed.add_done_callback(self._daemon_gone)
        try:
            result = await self.app.run_async()
        finally:
            self.events.closed.remove_done_callback(self._daemon_gone)
            await self.close()
        return str(result or self.exit_reason)

    def _daemon_gone(self, _: object) -> None:
        self.detach(DAEMON_GONE)

    def agents_live(self) -> bool:
        """Whether the team outlived its daemon: a reload or a crash leaves the agents to the
        keeper; `staff down` stops them (their last states say so, and the keeper is gone)."""
        if all(a.state in ("exited", "crashed") for a in self.model.agents.values()):
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            try:
                s.connect(str(self.home / "keeper.sock"))
            except OSError:
                return False
        return True

    def _on_error(self, message: str) -> None:
        self.message = message
        self.app.invalidate()

    async def close(self) -> None:
        for pane in list(self.panes.values()):
            await pane.close()
        self.panes.clear()
        for conn in (self.events, self.ctl):
            if conn is not None:
                await conn.close()


def run_console(
    home: Path,
    *,
    prefix: str = "\x02",
    focus: str | None = None,
    note: str = "",
    keys: dict[str, str | list[str]] | None = None,
) -> int:
    console = Console(home, prefix=prefix, focus=focus, note=note, keys=keys)
    why = asyncio.run(console.run())
    if why != DAEMON_GONE:
        print(f"staff: {why}; every agent keeps running (`staff console` comes back, `staff status` too)")
    elif not console.stopping_for_good and console.agents_live():
        print("staff: the daemon went away; its agents keep running (`staff up` takes them back)")
    else:
        print("staff: the daemon stopped, and every agent with it (`staff up` starts the team again)")
    return 0 if why == "detached" else 1
