"""The terminal pane: a local pyte screen fed by the daemon's stream, drawn by prompt_toolkit.

ptterm (prompt_toolkit's own terminal widget) no longer runs on prompt_toolkit 3.0.52+, so
this is the control written for it: `LocalScreen` keeps the emulator (the daemon's
snapshot, then raw output) and a per-row cache of styled fragments rebuilt only for the
rows that changed; `TerminalControl` hands those rows to prompt_toolkit with the cursor,
forwards the keys typed into it as the bytes a terminal would send, and reports the size it
is drawn at (the agent's pty follows it). Colours (16, 256, true colour), bold, italic,
underline, reverse, strike-through and wide characters are drawn as on the real terminal.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prompt_toolkit.data_structures import Point
from prompt_toolkit.formatted_text import StyleAndTextTuples
from prompt_toolkit.key_binding import KeyBindings, KeyPressEvent
from prompt_toolkit.key_binding.key_processor import KeyPress
from prompt_toolkit.keys import Keys
from prompt_toolkit.layout.controls import UIContent, UIControl
from prompt_toolkit.mouse_events import MouseEvent, MouseEventType
from prompt_toolkit.utils import Event

from supervisor.screen.emulator import Screen

_COLOURS = {
    "black": "ansiblack",
    "red": "ansired",
    "green": "ansigreen",
    "brown": "ansiyellow",
    "yellow": "ansiyellow",
    "blue": "ansiblue",
    "magenta": "ansimagenta",
    "cyan": "ansicyan",
    "white": "ansigray",
    "brightblack": "ansibrightblack",
    "brightred": "ansibrightred",
    "brightgreen": "ansibrightgreen",
    "brightbrown": "ansibrightyellow",
    "brightyellow": "ansibrightyellow",
    "brightblue": "ansibrightblue",
    "brightmagenta": "ansibrightmagenta",
    "brightcyan": "ansibrightcyan",
    "brightwhite": "ansiwhite",
}
DECCKM = 1 << 5  # application cursor keys (pyte keeps private modes shifted by 5)
BRACKETED = 2004 << 5
MOUSE_MODES = {1000 << 5, 1002 << 5, 1003 << 5}  # the program reads mouse buttons (and wheel)
SGR_MOUSE = 1006 << 5
# Keys that are not typed text: never forwarded to the agent.
_NOT_TYPED = {
    Keys.CPRResponse,
    Keys.Vt100MouseEvent,
    Keys.WindowsMouseEvent,
    Keys.ScrollUp,
    Keys.ScrollDown,
    Keys.Ignore,
    Keys.SIGINT,
}


def _colour(value: str) -> str | None:
    if not value or value == "default":
        return None
    named = _COLOURS.get(value)
    if named is not None:
        return named
    if len(value) == 6:
        return "#" + value
    return None


def cell_style(attrs: tuple[Any, ...]) -> str:
    """prompt_toolkit style for pyte Char fields after `data`:
    (fg, bg, bold, italics, underscore, strikethrough, reverse, blink)."""
    fg, bg, bold, italics, underscore, strikethrough, reverse, blink = attrs
    parts = []
    f, b = _colour(fg), _colour(bg)
    if f:
        parts.append("fg:" + f)
    if b:
        parts.append("bg:" + b)
    if bold:
        parts.append("bold")
    if italics:
        parts.append("italic")
    if underscore:
        parts.append("underline")
    if strikethrough:
        parts.append("strike")
    if reverse:
        parts.append("reverse")
    if blink:
        parts.append("blink")
    return " ".join(parts)


class LocalScreen:
    """An agent's screen on the console's side: snapshot + raw output → styled rows."""

    def __init__(self, rows: int = 24, cols: int = 80) -> None:
        self.screen = Screen(cols, rows, scrollback=0)
        self._rows: dict[int, StyleAndTextTuples] = {}
        self._sigs: dict[int, tuple[Any, ...]] = {}
        self.fresh: set[int] = set()
        """Rows whose cells changed since they were last drawn (the console's echo path
        draws just these; a full frame clears them)."""
        self._styles: dict[tuple[Any, ...], str] = {}
        self.changed = Event(self)
        self.snapshots = 0
        self.fed = 0

    @property
    def size(self) -> tuple[int, int]:
        return int(self.screen.lines), int(self.screen.columns)

    def snapshot(self, rows: int, cols: int, data: str) -> None:
        """Start over from the daemon's snapshot (at the agent's current size)."""
        self.screen = Screen(cols, rows, scrollback=0)
        self._rows.clear()
        self._sigs.clear()
        self.fresh = set(range(rows))
        self.snapshots += 1
        self.feed(data)

    def feed(self, data: str) -> None:
        self.screen.feed(data)
        self.fed += len(data)
        dirty = self.screen.dirty
        if dirty:
            # A program that repaints every row per key (Claude Code, the fake) marks them all
            # dirty: only the rows whose cells really changed are rebuilt and redrawn.
            buf, lines = self.screen.buffer, self.screen.lines
            for y in dirty:
                if y >= lines:
                    continue
                sig = tuple(buf[y].values())
                if self._sigs.get(y) != sig:
                    self._sigs[y] = sig
                    self._rows.pop(y, None)
                    self.fresh.add(y)
            dirty.clear()
        self.changed.fire()

    # -- reading ------------------------------------------------------------------------------
    def row(self, y: int) -> StyleAndTextTuples:
        cached = self._rows.get(y)
        if cached is not None:
            return cached
        scr = self.screen
        line = scr.buffer.get(y)
        frags: StyleAndTextTuples = []
        if line:
            styles = self._styles
            run: list[str] = []
            style = ""
            for x in range(scr.columns):
                c = line[x]
                if c.data == "":  # right half of a wide character: drawn by its left half
                    continue
                key = tuple(c[1:])
                st = styles.get(key)
                if st is None:
                    st = styles[key] = cell_style(key)
                if st != style and run:
                    frags.append((style, "".join(run)))
                    run = []
                style = st
                run.append(c.data)
            if run:
                # Trailing default blanks are not drawn (the window's own background shows).
                text = "".join(run)
                if style == "":
                    text = text.rstrip(" ")
                if text:
                    frags.append((style, text))
        self._rows[y] = frags
        return frags

    def line_text(self, y: int) -> str:
        return str(self.screen.line_text(y))

    def lines(self) -> list[str]:
        return [self.line_text(y) for y in range(self.screen.lines)]

    @property
    def cursor(self) -> tuple[int, int]:
        return int(self.screen.cursor.x), int(self.screen.cursor.y)

    @property
    def cursor_hidden(self) -> bool:
        return bool(self.screen.cursor.hidden)

    @property
    def app_cursor(self) -> bool:
        return DECCKM in self.screen.mode

    @property
    def bracketed_paste(self) -> bool:
        return BRACKETED in self.screen.mode

    def wheel(self, up: bool, x: int, y: int) -> str:
        """The bytes a terminal sends for a turn of the wheel at (x, y), in the program's mouse
        encoding; "" when the program does not read the mouse (then the wheel is the viewer's,
        as in tmux). Claude Code reads it and scrolls its conversation: the alternate screen
        it draws on has no scrollback of its own."""
        if not MOUSE_MODES & self.screen.mode:
            return ""
        button = 64 if up else 65
        if SGR_MOUSE in self.screen.mode:
            return f"\x1b[<{button};{x + 1};{y + 1}M"
        return "\x1b[M" + chr(32 + button) + chr(min(32 + x + 1, 255)) + chr(min(32 + y + 1, 255))


def key_data(kp: KeyPress, local: LocalScreen) -> str:
    """The bytes a terminal would send for this key press, in the agent's current modes."""
    if kp.key == Keys.BracketedPaste:
        return f"\x1b[200~{kp.data}\x1b[201~" if local.bracketed_paste else kp.data
    if kp.key in _NOT_TYPED:
        return ""
    data = kp.data
    if local.app_cursor and len(data) == 3 and data.startswith("\x1b[") and data[2] in "ABCDHF":
        return "\x1bO" + data[2]
    return data


class TerminalControl(UIControl):
    """One agent's live screen in a prompt_toolkit Window."""

    def __init__(
        self,
        local: LocalScreen,
        *,
        on_keys: Callable[[str], None],
        on_size: Callable[[int, int], None],
        on_mouse: Callable[[MouseEvent], bool] | None = None,
        self_invalidate: bool = True,
    ) -> None:
        self.local = local
        self.self_invalidate = self_invalidate
        """Redraw on every change of the screen; False when the app paces redraws itself."""
        self.on_keys = on_keys
        self.on_size = on_size
        self.on_mouse = on_mouse
        self.drawn = 0
        self._kb = KeyBindings()

        @self._kb.add(Keys.Any)
        @self._kb.add(Keys.BracketedPaste)
        def _(event: KeyPressEvent) -> None:
            data = "".join(key_data(kp, self.local) for kp in event.key_sequence)
            if data:
                self.on_keys(data)

    def is_focusable(self) -> bool:
        return True

    def get_key_bindings(self) -> KeyBindings:
        return self._kb

    def get_invalidate_events(self) -> Any:
        if self.self_invalidate:
            yield self.local.changed

    def create_content(self, width: int, height: int) -> UIContent:
        self.on_size(height, width)
        self.drawn += 1
        local = self.local
        local.fresh.clear()  # this frame draws every row
        rows, _cols = local.size
        x, y = local.cursor

        def get_line(i: int) -> StyleAndTextTuples:
            return local.row(i)

        return UIContent(
            get_line=get_line,
            line_count=rows,
            cursor_position=Point(x=x, y=min(y, rows - 1)),
            show_cursor=not local.cursor_hidden,
        )

    def mouse_handler(self, mouse_event: MouseEvent) -> Any:
        if self.on_mouse is not None and self.on_mouse(mouse_event):
            return None
        return NotImplemented


__all__ = ["LocalScreen", "MouseEventType", "TerminalControl", "cell_style", "key_data"]
