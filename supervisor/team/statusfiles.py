"""Agents' JSON status files, written off the event loop.

An atomic write (temp file + rename) costs 0.3–0.5 ms on a typical filesystem, and a task
round trip changes an agent's status about seven times: done inline, that was most of what
the daemon added to a task's latency. So:

- a write whose content equals the last one (but for ``last_active``) is skipped;
- an *urgent* write (the agent is free again, or gone) is done at once, on the caller's
  thread, so whoever is told "done" next finds the file up to date;
- other writes go to one writer thread, newest content per file wins, in order: a
  sequence number keeps an older content from ever replacing a newer one.

`flush()` writes everything pending now; `close()` flushes and stops the thread.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger("staff")

Writer = Callable[[Path, dict[str, Any]], None]


class StatusWriter:
    def __init__(self, write: Writer) -> None:
        self._write_fn = write
        self._cond = threading.Condition()
        self._io = threading.Lock()
        self._pending: dict[Path, tuple[int, dict[str, Any]]] = {}
        self._written: dict[Path, int] = {}
        self._last: dict[Path, dict[str, Any]] = {}
        self._seq = 0
        self._thread: threading.Thread | None = None
        self._closed = False

    def write(self, path: Path, data: dict[str, Any], *, urgent: bool = False) -> bool:
        """Queue (or, `urgent`, do) the write of `data` to `path`; False if nothing changed."""
        key = {k: v for k, v in data.items() if k != "last_active"}
        if self._last.get(path) == key:
            return False
        self._last[path] = key
        self._seq += 1
        if urgent or self._closed:
            with self._cond:
                self._pending.pop(path, None)
            self._do(path, self._seq, data)
            return True
        with self._cond:
            self._pending[path] = (self._seq, data)
            self._cond.notify()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="status-files", daemon=True)
            self._thread.start()
        return True

    def _do(self, path: Path, seq: int, data: dict[str, Any]) -> None:
        with self._io:
            if self._written.get(path, 0) > seq:
                return  # a newer content is already there
            try:
                self._write_fn(path, data)
            except OSError as exc:
                log.error("cannot write the status file %s: %s", path, exc)
                return
            self._written[path] = seq

    def remove(self, path: Path) -> None:
        """Delete the file, and any write of it still pending: none lands after this."""
        with self._cond:
            self._pending.pop(path, None)
        with self._io:
            self._last.pop(path, None)
            self._written[path] = self._seq + 1  # an older write already taken is dropped
            try:
                path.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                log.error("cannot remove the status file %s: %s", path, exc)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending:
                    return
                path = next(iter(self._pending))
                seq, data = self._pending.pop(path)
            self._do(path, seq, data)

    def flush(self) -> None:
        with self._cond:
            items = list(self._pending.items())
            self._pending.clear()
        for path, (seq, data) in items:
            self._do(path, seq, data)

    def close(self) -> None:
        self._closed = True
        self.flush()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
