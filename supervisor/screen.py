"""The screen model: a terminal emulator per agent, with cheap text snapshots.

pyte does the emulation; this module adds what an agent supervisor needs on top:
the alternate screen (pyte has none), bounded plain-text scrollback, a per-line text
cache refreshed only for dirty lines, answers to terminal queries, and a filter for the
CSI sequences pyte would otherwise draw as text (the kitty keyboard query ``ESC[<u``).
"""

from __future__ import annotations

import re
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

import pyte
from pyte.screens import Margins, StaticDefaultDict

ALT_SCREEN_MODES = frozenset({47, 1047, 1049})
BRACKETED_PASTE = 2004

# CSI sequences with a '<', '=' or '>' prefix (kitty keyboard, XTVERSION, DA2, xterm
# modifyOtherKeys): pyte's parser does not know the prefixes and would draw the final
# byte as a character. They change nothing a screen reader needs, so they are dropped.
_DROP_CSI = re.compile(r"\x1b\[[<=>][0-9;:]*[ -/]*[@-~]")
# An incomplete CSI at the end of a chunk is held back until the next chunk completes it.
_PARTIAL_CSI = re.compile(r"\x1b(?:\[[0-9;:<=>?]*[ -/]*)?\Z")


class Screen(pyte.Screen):
    """A pyte screen with an alternate buffer, scrollback and a text cache."""

    def __init__(self, columns: int, lines: int, *, scrollback: int = 10000) -> None:
        self.history: deque[str] = deque(maxlen=scrollback)
        self.alternate = False
        self._saved_main: tuple[Any, Any, Any] | None = None
        self._text: list[str] = []
        self.reply: Callable[[str], None] | None = None
        super().__init__(columns, lines)
        self._text = [""] * lines

    # -- modes -------------------------------------------------------------------------
    def set_mode(self, *modes: int, **kwargs: Any) -> None:
        if kwargs.get("private") and ALT_SCREEN_MODES.intersection(modes):
            self._enter_alternate(save_cursor=1049 in modes)
        super().set_mode(*modes, **kwargs)

    def reset_mode(self, *modes: int, **kwargs: Any) -> None:
        if kwargs.get("private") and ALT_SCREEN_MODES.intersection(modes):
            self._leave_alternate(restore_cursor=1049 in modes)
        super().reset_mode(*modes, **kwargs)

    def _enter_alternate(self, *, save_cursor: bool) -> None:
        if self.alternate:
            return
        cursor = self.cursor if save_cursor else None
        self._saved_main = (self.buffer, cursor, self.margins)
        self.buffer = defaultdict(lambda: StaticDefaultDict(self.default_char))
        self.cursor = pyte.screens.Cursor(self.cursor.x, self.cursor.y, self.cursor.attrs)
        self.alternate = True
        self.dirty.update(range(self.lines))

    def _leave_alternate(self, *, restore_cursor: bool) -> None:
        if not self.alternate or self._saved_main is None:
            return
        buffer, cursor, margins = self._saved_main
        self.buffer = buffer
        if restore_cursor and cursor is not None:
            self.cursor = cursor
        self.margins = margins
        self._saved_main = None
        self.alternate = False
        self.dirty.update(range(self.lines))

    @property
    def bracketed_paste(self) -> bool:
        return (BRACKETED_PASTE << 5) in self.mode

    # -- scrollback ---------------------------------------------------------------------
    def index(self) -> None:
        top, bottom = self.margins or Margins(0, self.lines - 1)
        if not self.alternate and self.cursor.y == bottom and top == 0:
            self.history.append(self.line_text(0))
        super().index()

    # -- queries --------------------------------------------------------------------------
    def write_process_input(self, data: str) -> None:
        if self.reply is not None:
            self.reply(data)

    def report_device_attributes(self, mode: int = 0, **kwargs: bool) -> None:
        if mode == 0 and not kwargs.get("private"):
            self.write_process_input("\x1b[?62;22c")  # VT220 with ANSI colour

    # -- text -------------------------------------------------------------------------------
    def line_text(self, y: int) -> str:
        line = self.buffer.get(y)
        if not line:
            return ""
        return "".join(line[x].data for x in range(self.columns)).rstrip(" ")

    def text_lines(self) -> list[str]:
        """The screen as text lines (trailing spaces removed); recomputes dirty lines only."""
        if len(self._text) != self.lines:
            self._text = [""] * self.lines
            self.dirty.update(range(self.lines))
        if self.dirty:
            for y in self.dirty:
                if 0 <= y < self.lines:
                    self._text[y] = self.line_text(y)
            self.dirty.clear()
        return list(self._text)

    def resize(self, lines: int | None = None, columns: int | None = None) -> None:
        super().resize(lines, columns)
        self.dirty.update(range(self.lines))


class Terminal:
    """An emulator fed with decoded text; knows its title and answers queries."""

    def __init__(self, cols: int = 120, rows: int = 40, *, scrollback: int = 10000) -> None:
        self.screen = Screen(cols, rows, scrollback=scrollback)
        self.stream = pyte.Stream(self.screen)
        self._held = ""
        self.generation = 0
        """Bumped on every feed: a cheap 'has anything changed' for observers."""

    @property
    def reply(self) -> Callable[[str], None] | None:
        return self.screen.reply

    @reply.setter
    def reply(self, fn: Callable[[str], None] | None) -> None:
        self.screen.reply = fn

    def feed(self, text: str) -> None:
        if self._held:
            text = self._held + text
            self._held = ""
        if "\x1b" in text:
            m = _PARTIAL_CSI.search(text)
            if m:
                self._held = text[m.start() :]
                text = text[: m.start()]
            if "\x1b[" in text:
                text = _DROP_CSI.sub("", text)
        if text:
            self.stream.feed(text)
            self.generation += 1

    def resize(self, rows: int, cols: int) -> None:
        self.screen.resize(rows, cols)
        self.generation += 1

    @property
    def title(self) -> str:
        return str(self.screen.title)

    @property
    def rows(self) -> int:
        return int(self.screen.lines)

    @property
    def cols(self) -> int:
        return int(self.screen.columns)

    def lines(self) -> list[str]:
        return self.screen.text_lines()

    def text(self) -> str:
        """The visible screen as text, trailing blank lines removed."""
        return "\n".join(self.lines()).rstrip("\n")

    def history_text(self, limit: int | None = None) -> list[str]:
        hist = list(self.screen.history)
        return hist[-limit:] if limit else hist

    @property
    def cursor(self) -> tuple[int, int]:
        return int(self.screen.cursor.x), int(self.screen.cursor.y)
