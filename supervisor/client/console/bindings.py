"""The console's key bindings, kept out of `Console` (app.py), which they drive.

The prefix (C-b by default) then one key acts on the console, the way tmux does; every other
key goes to the focused agent (TerminalControl hands it over). While the help, the command
line or the scrollback view is open, their own keys apply instead.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING

from prompt_toolkit.filters import Condition
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.keys import Keys

from supervisor.client.attach import describe_key, parse_key

if TYPE_CHECKING:
    from supervisor.client.console.app import Console

Handler = Callable[[KeyPressEvent], None]


def pt_key(key: str) -> str:
    """prompt_toolkit's name for a control character (\\x02 → 'c-b')."""
    if len(key) == 1 and ord(key) < 0x20:
        named = {"\x1b": "escape", "\x1d": "c-]", "\x1c": "c-\\", "\x1e": "c-^", "\x1f": "c-_"}
        return named.get(key, "c-" + chr(ord(key) + 0x60))
    return key


DEFAULT_KEYS: dict[str, tuple[str, ...]] = {
    "next": ("n",), "prev": ("p",), "pane": ("o",), "split": ("s", "%", '"'), "unsplit": ("u", "!"),
    "zoom": ("z",), "detach": ("d",), "help": ("?",), "command": (":",), "scrollback": ("[",),
    "new": ("c",), "kill": ("x",), "rename": (",",),
}
"""What each key after the prefix does (tmux's keys where tmux has one); `[staff]
console_keys = { split = "|", kill = "X" }` in staff.toml replaces an action's keys."""


def key_map(custom: dict[str, str | list[str]] | None) -> dict[str, tuple[str, ...]]:
    """The actions' keys with the team file's `console_keys` applied (checked by config.py)."""
    keys = dict(DEFAULT_KEYS)
    for action, spec in (custom or {}).items():
        keys[action] = tuple(parse_key(k) for k in ([spec] if isinstance(spec, str) else spec))
    return keys


def bindings(console: Console) -> KeyBindings:
    """The console's keys: prefix commands in the normal view, and the keys of the help,
    the command line and the scrollback view while they are open."""
    kb = KeyBindings()
    P = pt_key(console.prefix)
    keys = console.keys
    normal = Condition(
        lambda: not (console.command_visible or console.help_visible or console.scrollback_visible)
    )

    def act(action: str) -> Callable[[Handler], Handler]:
        def add(handler: Handler) -> Handler:
            for key in keys[action]:
                kb.add(P, pt_key(key), filter=normal)(handler)
            return handler

        return add

    @act("next")
    def _(e: KeyPressEvent) -> None:
        console._step(1)

    @act("prev")
    def _(e: KeyPressEvent) -> None:
        console._step(-1)

    for d in "123456789":

        @kb.add(P, d, filter=normal)
        def _(e: KeyPressEvent, d: str = d) -> None:
            names = console.model.names
            if int(d) <= len(names):
                console.focus(names[int(d) - 1])

    @act("pane")
    def _(e: KeyPressEvent) -> None:
        before = console.model.focus
        console.model.next_pane()
        console._after_focus(before)

    @act("split")
    def _(e: KeyPressEvent) -> None:
        if console.model.split_add() is None:
            console.message = "no more room: a split shows at most 4 agents"
        console._refocus()

    @act("unsplit")
    def _(e: KeyPressEvent) -> None:
        console.model.unsplit()
        console._refocus()

    @act("zoom")
    def _(e: KeyPressEvent) -> None:
        console.model.toggle_zoom()
        console._refocus()

    @act("detach")
    def _(e: KeyPressEvent) -> None:
        console.detach("detached")

    @act("help")
    def _(e: KeyPressEvent) -> None:
        console.help_visible = True
        console.app.layout.focus(console.help_window)

    @act("command")
    def _(e: KeyPressEvent) -> None:
        console.open_command("")

    @act("scrollback")
    def _(e: KeyPressEvent) -> None:
        console.open_scrollback()

    @act("new")
    def _(e: KeyPressEvent) -> None:
        console.new_agent()

    @act("kill")
    def _(e: KeyPressEvent) -> None:
        name = console.model.focus
        if name is not None:  # prefilled, not run: Enter confirms, Esc cancels
            console.open_command(f"kill {shlex.quote(name)}")

    @act("rename")
    def _(e: KeyPressEvent) -> None:
        name = console.model.focus
        if name is not None:  # the new name is typed after it; Enter runs it
            console.open_command(f"rename {shlex.quote(name)} ")

    @kb.add(P, P, filter=normal)
    def _(e: KeyPressEvent) -> None:
        if console.model.focus:
            console.type_into(console.model.focus, console.prefix)

    @kb.add(P, Keys.Any, filter=normal)
    def _(e: KeyPressEvent) -> None:
        p = describe_key(console.prefix)
        console.message = f"{p} {e.data!r}: no such key ({p} ? helps)"

    help_on = Condition(lambda: console.help_visible)

    @kb.add(Keys.Any, filter=help_on)
    def _(e: KeyPressEvent) -> None:
        console.help_visible = False
        console._refocus()

    cmd_on = Condition(lambda: console.command_visible)

    @kb.add("escape", filter=cmd_on)
    @kb.add("c-c", filter=cmd_on)
    def _(e: KeyPressEvent) -> None:
        console.command_visible = False
        console._refocus()

    sb_on = Condition(lambda: console.scrollback_visible)

    @kb.add("q", filter=sb_on)
    @kb.add("escape", filter=sb_on)
    def _(e: KeyPressEvent) -> None:
        console.scrollback_visible = False
        console._refocus()

    @kb.add("v", filter=sb_on)
    def _(e: KeyPressEvent) -> None:
        console.scrollback.buffer.start_selection()

    @kb.add("y", filter=sb_on)
    def _(e: KeyPressEvent) -> None:
        data = console.scrollback.buffer.copy_selection()
        console.app.clipboard.set_data(data)
        console._osc52(data.text)
        console.message = f"copied {len(data.text)} characters"

    @kb.add("g", filter=sb_on)
    def _(e: KeyPressEvent) -> None:
        console.scrollback.buffer.cursor_position = 0

    @kb.add("G", filter=sb_on)
    def _(e: KeyPressEvent) -> None:
        console.scrollback.buffer.cursor_position = len(console.scrollback.text)

    @kb.add("/", filter=sb_on)
    def _(e: KeyPressEvent) -> None:
        console.open_command("find ")

    return kb
