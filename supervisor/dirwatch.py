"""Wait for a file or a directory to change: Linux inotify through ctypes, else a timed look.

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
from pathlib import Path

IN_MODIFY = 0x2
IN_MOVED_TO = 0x80
IN_CREATE = 0x100
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

    async def changed(self, timeout: float) -> bool:
        """On the event loop: True when the path changed within `timeout` seconds."""
        if self.fd is None:
            await asyncio.sleep(min(timeout, self.fallback_interval))
            return False
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()

        def ready() -> None:
            if not fut.done():
                fut.set_result(None)

        loop.add_reader(self.fd, ready)
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return False
        finally:
            loop.remove_reader(self.fd)
        self._drain()
        return True

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def dir_watch(path: Path, fallback_interval: float = 2.0) -> Watch:
    """A watch for files arriving in the directory `path`."""
    return Watch(path, ARRIVALS, fallback_interval)
