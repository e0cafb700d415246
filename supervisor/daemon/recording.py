"""Every agent's output as an asciicast v2 file in the state dir, bounded and rotated.

``<state dir>/recordings/<agent>.cast`` is the newest file; when it passes ``max_bytes`` it
becomes ``<agent>.1.cast`` (older ones shift to ``.2``, ``.3``… and the oldest beyond
``keep`` is deleted), so an agent never holds more than ``(keep + 1) * max_bytes`` on disk.
Each file starts with a snapshot of the screen at that moment, so every file replays on
its own: ``asciinema play ~/.local/state/agentstaff/recordings/coding.cast``.

Writes are buffered and flushed once per burst of output (one ``call_soon``), never on a
timer; a restarted agent's new program starts on a reset screen (``ESC c``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from pathlib import Path
from typing import IO

log = logging.getLogger("staff")

MAX_BYTES = 8 << 20
KEEP = 3


class Recorder:
    """One agent's recording: append output events, rotate by size."""

    def __init__(
        self, directory: Path, name: str, *, max_bytes: int = MAX_BYTES, keep: int = KEEP
    ) -> None:
        self.directory = directory
        self.name = name
        self.max_bytes = max_bytes
        self.keep = keep
        self.path = directory / f"{name}.cast"
        self._f: IO[str] | None = None
        self._start = 0.0
        self._size = 0
        self._flush_scheduled = False
        self.broken = False

    def open(self, rows: int, cols: int, snapshot: str) -> None:
        """Start a new file (rotating the current one away if it has content)."""
        self.close()
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
            if self.path.exists() and self.path.stat().st_size > 0:
                self._rotate()
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            self._f = os.fdopen(fd, "w", encoding="utf-8")
        except OSError as exc:
            self._fail(exc)
            return
        self._start = time.time()
        header = {
            "version": 2,
            "width": cols,
            "height": rows,
            "timestamp": int(self._start),
            "title": f"agentstaff: {self.name}",
            "env": {"TERM": "xterm-256color", "SHELL": os.environ.get("SHELL", "/bin/sh")},
        }
        self._size = 0
        self._line(json.dumps(header, ensure_ascii=False))
        if snapshot:
            self.event("o", snapshot)

    def _rotate(self) -> None:
        for i in range(self.keep, 0, -1):
            older = self.directory / f"{self.name}.{i}.cast"
            newer = self.directory / (f"{self.name}.{i - 1}.cast" if i > 1 else f"{self.name}.cast")
            if i == self.keep:
                with contextlib.suppress(FileNotFoundError):
                    older.unlink()
            with contextlib.suppress(FileNotFoundError):
                os.replace(newer, older)

    def files(self) -> list[Path]:
        """The recording files, newest first."""
        out = [self.path] if self.path.exists() else []
        for i in range(1, self.keep + 1):
            older = self.directory / f"{self.name}.{i}.cast"
            if older.exists():
                out.append(older)
        return out

    def event(self, kind: str, data: str) -> None:
        """Append one event ("o" output, "r" resize "COLSxROWS", "m" marker)."""
        if self._f is None:
            return
        t = time.time() - self._start
        self._line(json.dumps([round(t, 6), kind, data], ensure_ascii=False))

    def _line(self, line: str) -> None:
        assert self._f is not None
        try:
            self._f.write(line + "\n")
        except OSError as exc:
            self._fail(exc)
            return
        self._size += len(line) + 1
        self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._flush_scheduled:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._flush_scheduled = True
        loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        if self._f is None:
            return
        try:
            self._f.flush()
        except OSError as exc:
            self._fail(exc)

    @property
    def full(self) -> bool:
        return self._f is not None and self._size >= self.max_bytes

    def _fail(self, exc: OSError) -> None:
        if not self.broken:
            log.error("recording of %s stopped: %s", self.name, exc)
        self.broken = True
        if self._f is not None:
            with contextlib.suppress(OSError):
                self._f.close()
        self._f = None

    def close(self) -> None:
        if self._f is not None:
            with contextlib.suppress(OSError):
                self._f.close()
            self._f = None
