"""Wait for a file or a directory to change: Linux inotify through ctypes, else a timed look.

`Watch` blocks a thread until a directory changes (the mail bridge's Maildir `new/`);
`file_events()` serves waits on the event loop for files being written (Claude's transcript).

The stdlib has no file-change notification. On Linux, inotify (libc's `inotify_init1`,
`inotify_add_watch`) gives a file descriptor that becomes readable when the watched path
changes: a file created in or moved into a directory (a Maildir's `new/`), a file written
to (Claude Code's transcript). Elsewhere, or if inotify cannot be set up (no watches
left), `event_driven` is False and the waits simply time out: callers look again anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import os
import select
import struct
from pathlib import Path

IN_MODIFY = 0x2
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
IN_IGNORED = 0x8000
_EVENT = struct.Struct("iIII")  # struct inotify_event: wd, mask, cookie, len (then the name)
ARRIVALS = IN_CREATE | IN_MOVED_TO
"""A file appeared in the directory."""

_libc: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    return _libc


class Watch:
    """One inotify watch on `path` for the events in `mask`. Spurious wake-ups are allowed:
    the caller re-reads what it watches after every wait."""

    def __init__(self, path: Path, mask: int, fallback_interval: float = 2.0) -> None:
        self.path = path
        self.fallback_interval = fallback_interval
        self.fd: int | None = None
        self.error: str | None = None
        try:
            libc = _lib()
            fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
            if fd < 0:
                raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
            if libc.inotify_add_watch(fd, os.fsencode(path), mask) < 0:
                err = ctypes.get_errno()
                os.close(fd)
                raise OSError(err, os.strerror(err))
            self.fd = fd
        except (OSError, AttributeError) as exc:  # not Linux, or no inotify watches left
            self.error = str(exc) or type(exc).__name__

    @property
    def event_driven(self) -> bool:
        return self.fd is not None

    def _drain(self) -> None:
        assert self.fd is not None
        with contextlib.suppress(BlockingIOError):
            while os.read(self.fd, 65536):  # one look covers every queued event
                pass

    def wait(self, timeout: float | None = None, *, also: int | None = None) -> bool:
        """Block until the path changes (True), `timeout` passes or the fd `also` is readable."""
        extra = [] if also is None else [also]
        if self.fd is None:
            select.select(extra, [], [], self.fallback_interval if timeout is None else timeout)
            return False
        ready, _, _ = select.select([self.fd, *extra], [], [], timeout)
        if self.fd not in ready:
            return False
        self._drain()
        return True

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class FileEvents:
    """One inotify instance for the whole process, for waits on the event loop.

    Closing an inotify instance waits for a kernel grace period (synchronize_srcu: 10 ms
    and more), so a watch per wait put that on every task's answer. Here the instance
    and its watches live as long as the process; a file's watch is added once (adding it
    again is a no-op) and goes away by itself when the file is deleted (IN_IGNORED)."""

    def __init__(self) -> None:
        self.fd: int | None = None
        self.error: str | None = None
        self._wds: dict[Path, int] = {}
        self._waiters: dict[int, list[asyncio.Future[None]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        try:
            fd = _lib().inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
            if fd < 0:
                raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
            self.fd = fd
        except (OSError, AttributeError) as exc:
            self.error = str(exc) or type(exc).__name__

    def _watch(self, path: Path) -> int | None:
        if self.fd is None:
            return None
        wd = self._wds.get(path)
        if wd is None:
            wd = _lib().inotify_add_watch(self.fd, os.fsencode(path), IN_MODIFY)
            if wd < 0:
                return None
            self._wds[path] = wd
        return wd

    def _attach(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop and self.fd is not None:
            loop.add_reader(self.fd, self._on_readable)  # (a new loop, e.g. in tests)
            self._loop = loop

    def _on_readable(self) -> None:
        assert self.fd is not None
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        woken: set[int] = set()
        off = 0
        while off + _EVENT.size <= len(data):
            wd, mask, _cookie, length = _EVENT.unpack_from(data, off)
            off += _EVENT.size + length
            woken.add(wd)
            if mask & IN_IGNORED:  # the file is gone: its watch too
                self._wds = {p: w for p, w in self._wds.items() if w != wd}
        if -1 in woken:  # the queue overflowed: wake everyone, they look again
            woken = set(self._waiters)
        for wd in woken:
            for fut in self._waiters.pop(wd, []):
                if not fut.done():
                    fut.set_result(None)

    def armed(self, path: Path) -> bool:
        """Watch `path` from now on (call before reading it, so no write is missed)."""
        return self._watch(path) is not None

    async def changed(self, path: Path, timeout: float, fallback: float = 0.05) -> bool:
        """True when `path` was written to within `timeout` s (after `armed(path)`).
        Without inotify: a short sleep, then False (the caller reads the file again)."""
        wd = self._watch(path)
        if wd is None:
            await asyncio.sleep(min(timeout, fallback))
            return False
        self._attach()
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(wd, []).append(fut)
        try:
            await asyncio.wait_for(fut, timeout)
            return True
        except TimeoutError:
            return False
        finally:
            waiters = self._waiters.get(wd)
            if waiters is not None and fut in waiters:
                waiters.remove(fut)


_file_events: FileEvents | None = None


def file_events() -> FileEvents:
    """The process's FileEvents (made on first use)."""
    global _file_events
    if _file_events is None:
        _file_events = FileEvents()
    return _file_events


def dir_watch(path: Path, fallback_interval: float = 2.0) -> Watch:
    """A watch for files arriving in the directory `path`."""
    return Watch(path, ARRIVALS, fallback_interval)
