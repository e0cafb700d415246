"""A terminal's current screen as ANSI text that repaints it exactly on another terminal.

A client that starts watching an agent (the console, `staff attach`, a recording's first
frame) first gets this snapshot, then the agent's raw output from that moment on. Fed to a
fresh emulator (or a real terminal), the snapshot reproduces the cells with their SGR
attributes, the alternate screen, the modes a program turned on (bracketed paste,
application cursor keys, hidden cursor, mouse reporting), the scrolling region, the cursor
position and the title, so the raw output that follows lands where it would have.

Two sources, one per emulator backend (screen.py): libghostty-vt has a VT formatter that
does this natively; for pyte the cells are walked here.
"""

from __future__ import annotations

import re
from typing import Any

from supervisor.screen.emulator import Terminal

RESET = "\x1b[0m"
MODES_OFF = "\x1b[?1l\x1b[?25h\x1b[?7h\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?1004l\x1b[?2004l"
CLEAR = "\x1b[0m\x1b[r" + MODES_OFF + "\x1b[H\x1b[2J"
"""Put back the default modes and blank the screen: what a snapshot is drawn on."""

# The unfinished escape sequence at the end of a chunk of output (CSI, OSC, DCS, or a
# lone ESC with intermediates): the next chunk completes it, so a snapshot taken between
# the two must end with it, or the raw output that follows would start mid-sequence.
_TAIL = re.compile(r"\x1b(?:\[[0-?]*[ -/]*|\][^\x07\x1b]*|P[^\x1b]*|[ -/]*)?\Z")


def partial_tail(text: str) -> str:
    """The incomplete escape sequence `text` ends with, or ''."""
    i = text.rfind("\x1b", -512)
    if i < 0:
        return ""
    m = _TAIL.match(text, i)
    return m.group(0) if m else ""


def ansi_snapshot(term: Terminal, tail: str = "") -> str:
    """ANSI text that, fed after a reset, redraws `term` as it is now (+ `tail`)."""
    screen: Any = term.screen
    body = _ghostty(screen) if screen.name == "ghostty" else _pyte(screen)
    title = term.title
    osc = f"\x1b]0;{title}\x07" if title else ""
    return CLEAR + body + osc + tail


# -- libghostty-vt --------------------------------------------------------------------------
def _ghostty(screen: Any) -> str:
    from pyghostty.core import check, ffi, init_sized, lib, read_buf

    opts = init_sized("GhosttyFormatterTerminalOptions")
    opts.emit = lib.GHOSTTY_FORMATTER_FORMAT_VT
    opts.unwrap = False
    opts.trim = False
    ex = opts.extra
    ex.modes = True
    ex.scrolling_region = True
    ex.screen.cursor = True
    ex.screen.style = True
    ex.screen.charsets = True
    fmt = ffi.new("GhosttyFormatter*")
    check(lib.ghostty_formatter_terminal_new(ffi.NULL, fmt, screen._h, opts[0]), "formatter_terminal_new")
    try:
        return str(read_buf(lambda b, n, out: lib.ghostty_formatter_format_buf(fmt[0], b, n, out)))
    finally:
        lib.ghostty_formatter_free(fmt[0])


# -- pyte ------------------------------------------------------------------------------------
_NAMED = {"black": 0, "red": 1, "green": 2, "brown": 3, "yellow": 3, "blue": 4, "magenta": 5, "cyan": 6,
          "white": 7}
# Private modes worth carrying over (pyte keeps private modes shifted left by 5).
_PRIVATE = (1, 1000, 1002, 1003, 1004, 1006, 2004)


def _colour(value: str, base: int) -> str:
    """SGR parameters for a pyte colour ('red', 'brightred', 'ff8700', 'default')."""
    if value == "default" or not value:
        return ""
    if value in _NAMED:
        return str(base + _NAMED[value])
    if value.startswith("bright") and value[6:] in _NAMED:
        return str(base + 60 + _NAMED[value[6:]])
    if len(value) == 6:
        try:
            r, g, b = int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)
        except ValueError:
            return ""
        return f"{base + 8};2;{r};{g};{b}"
    return ""


def sgr(char: Any) -> str:
    """The full SGR sequence (from a reset) for a pyte cell's attributes."""
    params = ["0"]
    if char.bold:
        params.append("1")
    if char.italics:
        params.append("3")
    if char.underscore:
        params.append("4")
    if char.blink:
        params.append("5")
    if char.reverse:
        params.append("7")
    if char.strikethrough:
        params.append("9")
    for value, base in ((char.fg, 30), (char.bg, 40)):
        p = _colour(value, base)
        if p:
            params.append(p)
    return f"\x1b[{';'.join(params)}m"


def _rows(buffer: Any, lines: int, columns: int) -> str:
    out: list[str] = []
    for y in range(lines):
        line = buffer.get(y) if hasattr(buffer, "get") else buffer[y]
        if not line:
            continue
        # Trailing cells that are blank with default colours need not be drawn.
        end = columns
        while end > 0:
            c = line[end - 1]
            if c.data not in (" ", "") or c.bg != "default" or c.reverse or c.underscore:
                break
            end -= 1
        if end == 0:
            continue
        out.append(f"\x1b[{y + 1};1H")
        pen = ""
        for x in range(end):
            c = line[x]
            if c.data == "":  # the right half of a wide character
                continue
            style = sgr(c)
            if style != pen:
                out.append(style)
                pen = style
            out.append(c.data)
        out.append(RESET)
    return "".join(out)


def _pyte(screen: Any) -> str:
    out: list[str] = []
    saved = getattr(screen, "_saved_main", None)
    if getattr(screen, "alternate", False) and saved is not None:
        out.append(_rows(saved[0], screen.lines, screen.columns))
        out.append("\x1b[?1049h\x1b[H\x1b[2J")
    out.append(_rows(screen.buffer, screen.lines, screen.columns))
    mode = screen.mode
    for m in _PRIVATE:
        if (m << 5) in mode:
            out.append(f"\x1b[?{m}h")
    if (7 << 5) not in mode:
        out.append("\x1b[?7l")
    if (25 << 5) not in mode:
        out.append("\x1b[?25l")
    margins = screen.margins
    if margins is not None and (margins.top != 0 or margins.bottom != screen.lines - 1):
        out.append(f"\x1b[{margins.top + 1};{margins.bottom + 1}r")
    cur = screen.cursor
    out.append(f"\x1b[{cur.y + 1};{cur.x + 1}H")
    out.append(sgr(cur.attrs))
    return "".join(out)
