"""`staff attach AGENT`: one agent, full screen, raw, in the current terminal; a key detaches.

No UI library: the terminal goes to raw mode and the alternate screen, the daemon's
snapshot repaints the agent's screen, then its output is copied through as it arrives and
every key goes to the agent (as a person's input: the agent shows `user` and the router
holds its tasks while we are attached, until the idle grace passes). The detach key
(Ctrl-] by default) or the agent's daemon going away ends it; the agent keeps running.
The pty follows this terminal's size (the smallest of all viewers, like tmux).

Only the standard library, protocol.py and connection.py (no UI library).
"""

from __future__ import annotations

import asyncio
import codecs
import os
import signal
import struct
import sys
import termios
import tty
from pathlib import Path
from typing import Any

from supervisor.client.connection import Connection
from supervisor.protocol import ERR_BAD_REQUEST, ERR_HOST_DOWN, ERR_NO_DAEMON, ProtocolError, socket_path

DETACH_KEY = "\x1d"  # Ctrl-]
MODES_OFF = "\x1b[?1l\x1b[?25h\x1b[?7h\x1b[?1000l\x1b[?1002l\x1b[?1003l\x1b[?1006l\x1b[?1004l\x1b[?2004l"
LEAVE = "\x1b[0m\x1b[r" + MODES_OFF + "\x1b[?1049l"  # as snapshot.MODES_OFF: default modes, main screen


def parse_key(spec: str) -> str:
    """'C-]', 'C-a', '^A' or a single character → the byte it sends."""
    s = spec.strip()
    if len(s) == 3 and s[:2].lower() == "c-":
        return chr(ord(s[2].upper()) & 0x1F) if s[2] != "?" else "\x7f"
    if len(s) == 2 and s[0] == "^":
        return chr(ord(s[1].upper()) & 0x1F)
    if len(s) == 1:
        return s
    raise ValueError(f"cannot read the key {spec!r} (use e.g. C-] or C-a)")


def term_size(fd: int) -> tuple[int, int]:
    try:
        import fcntl

        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        return 24, 80
    return rows or 24, cols or 80


async def _attach(home: Path, agent: str, detach: str, fd_in: int, fd_out: int, viewer: str) -> str:
    conn = await Connection.open(socket_path(home))
    loop = asyncio.get_running_loop()
    done: asyncio.Future[str] = loop.create_future()
    decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")

    def resize() -> None:
        rows, cols = term_size(fd_out)
        conn.send("resize", agent=agent, rows=rows, cols=cols, viewer=viewer)

    def on_input() -> None:
        try:
            data = os.read(fd_in, 4096)
        except OSError:
            data = b""
        if not data:
            if not done.done():
                done.set_result("input closed")
            return
        text = decoder.decode(data)
        if detach in text:
            text = text[: text.index(detach)]
            if text:
                conn.send("input", agent=agent, keys=text)
            if not done.done():
                done.set_result("detached")
            return
        if text:
            conn.send("input", agent=agent, keys=text)

    def on_output(ev: dict[str, Any]) -> None:
        os.write(fd_out, ev["data"].encode("utf-8", "surrogateescape"))

    resize()
    stream = conn.stream("stream", on_output, agent=agent)  # ends only with an error
    loop.add_reader(fd_in, on_input)
    loop.add_signal_handler(signal.SIGWINCH, resize)
    try:
        await asyncio.wait({stream, done}, return_when=asyncio.FIRST_COMPLETED)
        if done.done():
            return done.result()
        exc = stream.exception()
        if isinstance(exc, ProtocolError) and exc.code == ERR_NO_DAEMON:
            return "the daemon went away"
        if isinstance(exc, ProtocolError) and exc.code == ERR_HOST_DOWN:  # another host's agent
            return f"{exc.message}; attach again once the link is back"
        if exc is not None:
            raise exc
        return "the stream ended"
    finally:
        loop.remove_reader(fd_in)
        loop.remove_signal_handler(signal.SIGWINCH)
        await conn.close()


def attach(home: Path, agent: str, *, detach_key: str = DETACH_KEY, fd_in: int = 0, fd_out: int = 1) -> str:
    """Attach the terminal on fd_in/fd_out to `agent` until the detach key; returns why it ended."""
    if not os.isatty(fd_in):
        raise ProtocolError(ERR_BAD_REQUEST, "staff attach needs a terminal")
    saved = termios.tcgetattr(fd_in)
    os.write(fd_out, b"\x1b[?1049h\x1b[H\x1b[2J")
    try:
        tty.setraw(fd_in)
        return asyncio.run(_attach(home, agent, detach_key, fd_in, fd_out, f"attach-{os.getpid()}"))
    finally:
        termios.tcsetattr(fd_in, termios.TCSADRAIN, saved)
        os.write(fd_out, LEAVE.encode())


def describe_key(key: str) -> str:
    """A control character as people write it (\\x02 → 'C-b', \\x1d → 'C-]')."""
    if len(key) == 1 and ord(key) < 0x20:
        return "C-" + chr(ord(key) + 0x40).lower()
    return key


if __name__ == "__main__":  # pragma: no cover - python -m supervisor.client.attach AGENT
    from supervisor.protocol import state_home

    print(attach(state_home(), sys.argv[1]))
