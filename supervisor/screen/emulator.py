"""The screen model: a terminal emulator per agent, with cheap text snapshots.

`Terminal` is what the rest of the daemon sees: feed it the child's output, read the
screen as text lines, the title, the cursor, the plain-text scrollback. The emulation
itself is behind a small backend interface (`Emulator`), with two implementations:

- ``ghostty`` (default when installed): libghostty-vt, Ghostty's terminal core, through
  the `pyghostty` bindings. Native code, ~70 MB/s per core on coloured text (pyte: 0.5).
- ``pyte``: the pure-Python emulator, the fallback (no native wheel for the platform,
  or ``STAFF_EMULATOR=pyte``).

Both give the same text screens on the real Claude Code captures (tests/unit/test_golden.py,
tests/unit/test_emulator_backends.py). On top of the emulator this module adds what an agent
supervisor needs: the alternate screen (pyte has none), bounded plain-text scrollback, a
text cache refreshed only when something changed, answers to the terminal queries a
program waits for (cursor position, device attributes) and nothing else, and, for pyte,
a filter for the CSI sequences it would otherwise draw as text (``ESC[<u``).
"""

from __future__ import annotations

import codecs
import functools
import os
import re
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any, Protocol

import pyte
from pyte.screens import Margins, StaticDefaultDict

ALT_SCREEN_MODES = frozenset({47, 1047, 1049})
BRACKETED_PASTE = 2004

# CSI sequences with a '<', '=' or '>' prefix (kitty keyboard, XTVERSION, DA2, xterm
# modifyOtherKeys): pyte's parser does not know the prefixes and would draw the final
# byte as a character, or raise (Gemini CLI's modifyOtherKeys query ``ESC[>4;?m`` reached
# SGR with private=True: a TypeError). They change nothing a screen reader needs: dropped.
_DROP_CSI = re.compile(r"\x1b\[[<=>][0-9;:?]*[ -/]*[@-~]")
# An incomplete CSI at the end of a chunk is held back until the next chunk completes it.
_PARTIAL_CSI = re.compile(r"\x1b(?:\[[0-9;:<=>?]*[ -/]*)?\Z")

# The only answers passed back to the child: cursor position, device status, primary
# device attributes. A native emulator also answers XTVERSION, the kitty keyboard query
# and colour queries; answering those would change how the agent encodes its keys and
# draws, so the daemon stays the plain VT220 it always was.
_ALLOWED_REPLY = re.compile(rb"\x1b\[\d+;\d+R|\x1b\[0n|\x1b\[\?[0-9;]*c")

Reply = Callable[[str], None]


class Emulator(Protocol):
    """What a terminal backend provides. `Terminal` adds the generation and text cache."""

    name: str
    reply: Reply | None

    @property
    def alternate(self) -> bool: ...
    @property
    def bracketed_paste(self) -> bool: ...
    def feed(self, data: str | bytes) -> None:
        """The child's output, as text or raw UTF-8 (each backend parses one form fastest and
        takes the other too)."""
    def text_lines(self) -> list[str]: ...
    def history_lines(self) -> list[str]: ...
    def resize(self, rows: int, cols: int) -> None: ...
    @property
    def title(self) -> str: ...
    @property
    def size(self) -> tuple[int, int]: ...  # (rows, cols)
    @property
    def cursor_xy(self) -> tuple[int, int]: ...


# -- the pyte backend ---------------------------------------------------------------------
class Screen(pyte.Screen):
    """A pyte screen with an alternate buffer, scrollback and a dirty-line text cache."""

    name = "pyte"

    def __init__(self, columns: int, lines: int, *, scrollback: int = 10000) -> None:
        self.history: deque[str] = deque(maxlen=scrollback)
        self.alternate = False
        self._saved_main: tuple[Any, Any, Any] | None = None
        self._text: list[str] = []
        self.reply: Reply | None = None
        super().__init__(columns, lines)
        self._text = [""] * lines
        self._stream = pyte.Stream(self)
        self._held = ""
        self._decoder: codecs.IncrementalDecoder | None = None

    # -- feeding -----------------------------------------------------------------------
    def feed(self, data: str | bytes) -> None:
        if isinstance(data, bytes):  # pyte parses text: decode, keeping a split character
            if self._decoder is None:
                self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
            data = self._decoder.decode(data)
        text = data
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
            self._stream.feed(text)

    def select_graphic_rendition(self, *attrs: int, private: bool = False) -> None:
        """A private SGR (``CSI ? … m``, prompt_toolkit's) is no colour: pyte raised on it."""
        if not private:
            super().select_graphic_rendition(*attrs)

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

    def history_lines(self) -> list[str]:
        return list(self.history)

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

    @property
    def size(self) -> tuple[int, int]:
        return int(self.lines), int(self.columns)

    @property
    def cursor_xy(self) -> tuple[int, int]:
        return int(self.cursor.x), int(self.cursor.y)

    # pyte.Screen.title is a plain attribute set by set_title; `Terminal.title` reads it.


# -- the libghostty-vt backend ---------------------------------------------------------------
HARVEST_BYTES = 4 << 20
"""Ghostty's own scrollback budget between two harvests (≈ 3 500 rows of 120 columns).
Rows that scrolled off are moved, a few hundred at a time, into the plain-text history (a few
hundred bytes a row instead of ~1 KB of styled cells), then cleared from Ghostty."""
HARVEST_ROWS = 256
"""Harvest once this many rows wait in Ghostty's scrollback (and whenever history is read)."""


class GhosttyScreen:
    """libghostty-vt through pyghostty: native parsing, plain-text scrollback kept here."""

    name = "ghostty"

    def __init__(self, columns: int, lines: int, *, scrollback: int = 10000) -> None:
        from pyghostty import Terminal as _GTerminal
        from pyghostty.core import check, ffi, init_sized, lib

        self._ffi, self._lib, self._init_sized = ffi, lib, init_sized
        self._t = _GTerminal(columns, lines, scrollback=scrollback)
        self._h = self._t._t[0]
        check(
            lib.ghostty_terminal_set(
                self._h, lib.GHOSTTY_TERMINAL_OPT_SCROLLBACK_MAX_BYTES, ffi.new("size_t*", HARVEST_BYTES)
            ),
            "set scrollback bytes",
        )
        self._t.on_reply(self._on_reply)
        self.history: deque[str] = deque(maxlen=scrollback)
        self.reply: Reply | None = None
        self._out_size = ffi.new("size_t*")
        self._out_u16 = ffi.new("uint16_t*")
        self._out_int = ffi.new("int*")
        self._out_bool = ffi.new("bool*")
        self._out_str = ffi.new("GhosttyString*")
        self._buf = ffi.new("uint8_t[]", 1)
        self._opts: Any = None
        self._sel: Any = None
        from pyghostty._ffi import union_fn

        self._grid_ref = union_fn(
            "ghostty_terminal_grid_ref", "GhosttyResult(*)(GhosttyTerminal, GhosttyPointS, GhosttyGridRef*)"
        )
        self._pt = ffi.new("GhosttyPointS*")
        self._gref = init_sized("GhosttyGridRef")
        self._tags = {t: getattr(lib, f"GHOSTTY_POINT_TAG_{t.upper()}") for t in ("active", "history")}

    # -- feeding -----------------------------------------------------------------------
    def feed(self, data: str | bytes) -> None:
        raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
        self._lib.ghostty_terminal_vt_write(self._h, raw, len(raw))
        self._t._raise_cb_err()
        if self._get(self._lib.GHOSTTY_TERMINAL_DATA_SCROLLBACK_ROWS, self._out_size) >= HARVEST_ROWS:
            self._harvest()

    def _get(self, key: int, out: Any) -> int:
        self._lib.ghostty_terminal_get(self._h, key, out)
        return int(out[0])

    def _format(self, tag: str, rows: int, cols: int) -> str:
        """Rows 0..rows-1 of `tag` (active or history) as plain text, in one formatter pass
        into a buffer kept between calls (pyghostty's helper formats twice: size, then fill)."""
        ffi, lib = self._ffi, self._lib
        if self._opts is None:  # allocated once: building these structs is most of the cost
            self._sel = self._init_sized("GhosttySelection")
            self._opts = self._init_sized("GhosttyTerminalSelectionFormatOptions")
            self._opts.emit = lib.GHOSTTY_FORMATTER_FORMAT_PLAIN
            self._opts.unwrap, self._opts.trim = False, True
        sel, opts = self._sel, self._opts
        sel.start = self._ref(0, 0, tag)
        sel.end = self._ref(cols - 1, rows - 1, tag)
        opts.selection = sel
        need = rows * (cols + 1) * 3
        if len(self._buf) < need:
            self._buf = ffi.new("uint8_t[]", need)
        res = lib.ghostty_terminal_selection_format_buf(
            self._h, opts[0], self._buf, len(self._buf), self._out_size
        )
        if res == lib.GHOSTTY_OUT_OF_SPACE:  # wide graphemes: ask for the size and retry
            self._buf = ffi.new("uint8_t[]", int(self._out_size[0]) + 16)
            res = lib.ghostty_terminal_selection_format_buf(
                self._h, opts[0], self._buf, len(self._buf), self._out_size
            )
        if res != lib.GHOSTTY_SUCCESS:
            return ""
        return bytes(ffi.buffer(self._buf, int(self._out_size[0]))).decode("utf-8", "replace")

    def _ref(self, x: int, y: int, tag: str) -> Any:
        """A grid reference (valid until the next feed), as pyghostty's `ref` without its
        per-call struct setup."""
        pt, ref = self._pt, self._gref
        pt.tag = self._tags[tag]
        pt.value.x, pt.value.y = x, y
        if self._grid_ref(self._h, pt[0], ref) != self._lib.GHOSTTY_SUCCESS:
            raise RuntimeError(f"ghostty: no cell {x},{y} in {tag}")
        return ref[0]

    def _harvest(self) -> None:
        """Move the rows that scrolled off the primary screen into the text history."""
        n = self._get(self._lib.GHOSTTY_TERMINAL_DATA_SCROLLBACK_ROWS, self._out_size)
        if n <= 0 or self.alternate:
            return
        if not self._get(self._lib.GHOSTTY_TERMINAL_DATA_VT_GROUND, self._out_bool):
            return  # a sequence is half read: our ED 3 would cut it; harvest after the next feed
        cols = self._get(self._lib.GHOSTTY_TERMINAL_DATA_COLS, self._out_u16)
        rows = self._format("history", n, cols).split("\n")
        rows += [""] * (n - len(rows))  # the formatter drops trailing blank rows
        self.history.extend(rows[:n])
        # ED 3 erases the scrollback only: the screen and the cursor stay as they are.
        self._lib.ghostty_terminal_vt_write(self._h, b"\x1b[3J", 4)

    def _on_reply(self, data: bytes) -> None:
        if self.reply is None:
            return
        for m in _ALLOWED_REPLY.finditer(data):
            self.reply(m.group(0).decode("ascii"))

    # -- state -------------------------------------------------------------------------
    @property
    def alternate(self) -> bool:
        return self._get(self._lib.GHOSTTY_TERMINAL_DATA_ACTIVE_SCREEN, self._out_int) == 1

    @property
    def bracketed_paste(self) -> bool:
        return bool(self._t.mode(BRACKETED_PASTE))

    @property
    def title(self) -> str:
        self._lib.ghostty_terminal_get(self._h, self._lib.GHOSTTY_TERMINAL_DATA_TITLE, self._out_str)
        s = self._out_str[0]
        return self._ffi.buffer(s.ptr, s.len)[:].decode("utf-8", "replace") if s.len else ""

    @property
    def size(self) -> tuple[int, int]:
        rows = self._get(self._lib.GHOSTTY_TERMINAL_DATA_ROWS, self._out_u16)
        cols = self._get(self._lib.GHOSTTY_TERMINAL_DATA_COLS, self._out_u16)
        return rows, cols

    @property
    def cursor_xy(self) -> tuple[int, int]:
        x = self._get(self._lib.GHOSTTY_TERMINAL_DATA_CURSOR_X, self._out_u16)
        y = self._get(self._lib.GHOSTTY_TERMINAL_DATA_CURSOR_Y, self._out_u16)
        return x, y

    def text_lines(self) -> list[str]:
        rows, cols = self.size
        lines = [line.rstrip(" ") for line in self._format("active", rows, cols).split("\n")][:rows]
        return lines + [""] * (rows - len(lines))

    def history_lines(self) -> list[str]:
        self._harvest()
        return list(self.history)

    def resize(self, rows: int, cols: int) -> None:
        self._t.resize(cols, rows)
        if self._get(self._lib.GHOSTTY_TERMINAL_DATA_SCROLLBACK_ROWS, self._out_size):
            self._harvest()


# -- choosing a backend ----------------------------------------------------------------------
BACKENDS = ("ghostty", "pyte")


GHOSTTY_VERSIONS = ((0, 1, 3), (0, 2))
"""The pyghostty releases whose private parts `GhosttyScreen` uses (``_t``, ``_raise_cb_err``,
``pyghostty._ffi.union_fn``; 0.1.0 and 0.1.1 have none of them): ``>=0.1.3,<0.2``, the pin of
the ``fast`` extra in pyproject.toml. Another version is not trusted; pyte runs instead."""


def _release(text: str) -> tuple[int, ...]:
    parts = []
    for p in text.split("."):
        digits = re.match(r"\d+", p)
        if digits is None:
            break
        parts.append(int(digits.group()))
    return tuple(parts)


@functools.cache
def ghostty_problem() -> str | None:
    """Why libghostty-vt cannot be the emulator here, or None when it can. Checked once: the
    package is there (the ``fast`` extra has wheels for Linux glibc x86_64/aarch64 and macOS
    13+ only), its version is the pinned one, and a terminal can be made and fed through the
    private parts this module uses."""
    try:
        import pyghostty  # noqa: F401
    except (ImportError, OSError) as exc:  # no wheel for this platform, or the library won't load
        return f"pyghostty not usable ({type(exc).__name__}: {exc}); pip install 'agentstaff[fast]'"
    try:
        from importlib.metadata import version

        have = version("pyghostty")
    except Exception:  # no metadata (a vendored copy): the probe below decides
        have = None
    low, high = GHOSTTY_VERSIONS
    if have is not None and not low <= _release(have) < high:
        return f"pyghostty {have} is not a supported version (>=0.1.3,<0.2)"
    try:
        probe = GhosttyScreen(8, 2, scrollback=4)
        probe.feed(b"ok\r\n\x1b[6n")
        if probe.text_lines()[0] != "ok":
            return "pyghostty drew a test line wrong"
    except Exception as exc:  # an API change under the private parts: never a dead agent for it
        return f"pyghostty {have or '?'} does not work here ({type(exc).__name__}: {exc})"
    return None


def available_backends() -> list[str]:
    return (["ghostty"] if ghostty_problem() is None else []) + ["pyte"]


def default_backend() -> str:
    """``$STAFF_EMULATOR`` if set (ghostty or pyte), else the fastest one installed."""
    want = os.environ.get("STAFF_EMULATOR", "").strip().lower()
    have = available_backends()
    if want in have:
        return want
    return have[0]


def make_emulator(backend: str, cols: int, rows: int, scrollback: int) -> Emulator:
    if backend == "ghostty":
        return GhosttyScreen(cols, rows, scrollback=scrollback)
    if backend == "pyte":
        return Screen(cols, rows, scrollback=scrollback)
    raise ValueError(f"unknown emulator backend {backend!r} (known: {', '.join(BACKENDS)})")


SLICE_BYTES = {"ghostty": 256 * 1024, "pyte": 2048}
"""Per backend: output fed to the emulator per event-loop turn (see `Terminal.feed_output`)."""


class Terminal:
    """An emulator fed with the child's output; knows its title and answers queries."""

    def __init__(
        self, cols: int = 120, rows: int = 40, *, scrollback: int = 10000, backend: str | None = None
    ) -> None:
        self.backend = backend or default_backend()
        self.screen: Emulator = make_emulator(self.backend, cols, rows, scrollback)
        self._lines: list[str] | None = None
        self._pending: deque[str | bytes] = deque()
        self._pending_len = 0
        self.slice_bytes = SLICE_BYTES[self.backend]
        """The most output fed in one go (≈ 2–5 ms of emulation on this kind of machine)."""
        self.generation = 0
        """Bumped on every feed: a cheap 'has anything changed' for observers."""

    @property
    def reply(self) -> Reply | None:
        return self.screen.reply

    @reply.setter
    def reply(self, fn: Reply | None) -> None:
        self.screen.reply = fn

    def feed_output(self, data: bytes, text: str) -> bool:
        """Feed one read of the child's output (its bytes and their decoded text; each
        backend takes the form it parses fastest), at most `slice_bytes` of it now.

        Returns True when part of it was held back: call `drain()` once per event-loop
        turn until it returns False. A 10 MB flood then costs the loop one bounded slice
        per turn, so other agents, the socket and the console keep running in between.
        """
        payload: str | bytes = data if self.backend == "ghostty" else text
        if self._pending or len(payload) > self.slice_bytes:
            self._pending.append(payload)
            self._pending_len += len(payload)
            return self.drain()
        self.feed(payload)
        return False

    def drain(self) -> bool:
        """Feed up to `slice_bytes` of held-back output; True while some is still held."""
        budget = self.slice_bytes
        while self._pending and budget > 0:
            head = self._pending[0]
            if len(head) <= budget:
                self._pending.popleft()
                part = head
            else:
                part, self._pending[0] = head[:budget], head[budget:]
            budget -= len(part)
            self._pending_len -= len(part)
            self.feed(part)
        return bool(self._pending)

    @property
    def pending(self) -> int:
        """Output read from the child but not yet fed to the emulator (bytes or chars)."""
        return self._pending_len

    def feed(self, data: str | bytes) -> None:
        """Feed output: text (already decoded) or raw bytes."""
        if not data:
            return
        self.screen.feed(data)
        self._lines = None
        self.generation += 1

    def resize(self, rows: int, cols: int) -> None:
        self.screen.resize(rows, cols)
        self._lines = None
        self.generation += 1

    @property
    def title(self) -> str:
        return str(self.screen.title or "")

    @property
    def rows(self) -> int:
        return self.screen.size[0]

    @property
    def cols(self) -> int:
        return self.screen.size[1]

    def lines(self) -> list[str]:
        """The visible screen as text lines, trailing spaces removed (cached until a feed)."""
        if self._lines is None:
            self._lines = self.screen.text_lines()
        return list(self._lines)

    def text(self) -> str:
        """The visible screen as text, trailing blank lines removed."""
        return "\n".join(self.lines()).rstrip("\n")

    def history_text(self, limit: int | None = None) -> list[str]:
        hist = self.screen.history_lines()
        return hist[-limit:] if limit else hist

    @property
    def cursor(self) -> tuple[int, int]:
        return self.screen.cursor_xy

    @property
    def bracketed_paste(self) -> bool:
        """The program asked for pasted text to be bracketed (mode 2004)."""
        return self.screen.bracketed_paste

    @property
    def modes(self) -> str:
        """The modes detection rules can read (region ``modes``), as words."""
        return "bracketed_paste" if self.screen.bracketed_paste else ""

    @property
    def alternate(self) -> bool:
        """The program draws on the alternate screen (a full-screen UI)."""
        return self.screen.alternate
