"""Files replaced in one rename: a reader sees the old file or the new one, never half of one.

The one writer for every state file (status, chief.json, monitors, worktrees, run records,
the hook's settings). The temp file is created exclusively in the same directory with mode
0600 (never readable by others, even for an instant), flushed to disk (`durable`) before the
rename, so a crash leaves the previous version rather than an empty file.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any


def write_atomic(path: Path, data: bytes, *, mode: int | None = None, durable: bool = True) -> None:
    """Replace `path` with `data`. `mode`: the file's mode (default: the old file's, else 0600).
    `durable=False` skips the fsync, for files rewritten on every change (agents' status)."""
    if mode is None:
        try:
            mode = path.stat().st_mode & 0o7777
        except OSError:
            mode = 0o600
    tmp = str(path.parent / f".{path.name}.{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        if mode != 0o600:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_json_atomic(path: Path, data: Any, *, durable: bool = True) -> None:
    """`data` as indented JSON (UTF-8), through `write_atomic`; the parent folder is made."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    text = json.dumps(data, ensure_ascii=False, indent=1)
    write_atomic(path, text.encode("utf-8"), durable=durable)
