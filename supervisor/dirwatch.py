"""Wait for files to arrive in a directory: Linux inotify through ctypes, else a timed look.

The stdlib has no file-change notification. On Linux, inotify (libc's `inotify_init1`,
`inotify_add_watch`) gives a file descriptor that becomes readable when a file is created
in or moved into the directory, which is how a Maildir's `new/` is filled. Elsewhere, and
if inotify cannot be set up (no watches left), `wait()` falls back to a timeout.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import select
from pathlib import Path

IN_CREATE = 0x100
IN_MOVED_TO = 0x80
IN_Q_OVERFLOW = 0x4000
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC


class DirWatch:
    """`wait(timeout)` returns when something arrived in `path` (True) or the timeout ran
    out (False). Spurious wake-ups are allowed: the caller looks at the directory anyway."""

    def __init__(self, path: Path, fallback_interval: float = 2.0) -> None:
        self.path = path
        self.fallback_interval = fallback_interval
        self.fd: int | None = None
        self.error: str | None = None
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
            if fd < 0:
                raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
            if libc.inotify_add_watch(fd, os.fsencode(path), IN_CREATE | IN_MOVED_TO) < 0:
                err = ctypes.get_errno()
                os.close(fd)
                raise OSError(err, os.strerror(err))
            self.fd = fd
        except (OSError, AttributeError) as exc:  # not Linux, or no inotify watches left
            self.error = str(exc) or type(exc).__name__

    @property
    def event_driven(self) -> bool:
        return self.fd is not None

    def wait(self, timeout: float | None = None, *, also: int | None = None) -> bool:
        """Block until a file arrives, `timeout` passes, or the fd `also` is readable."""
        extra = [] if also is None else [also]
        if self.fd is None:
            select.select(extra, [], [], self.fallback_interval if timeout is None else timeout)
            return False
        ready, _, _ = select.select([self.fd, *extra], [], [], timeout)
        if self.fd not in ready:
            return False
        with contextlib.suppress(BlockingIOError):
            while os.read(self.fd, 65536):  # drain: one look at the directory covers them all
                pass
        return True

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
