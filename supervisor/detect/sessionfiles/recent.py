"""Which of a program's session files were written since a task was typed."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

SLACK = 1.0
"""Seconds before `since` still counted: file times and our clock may round apart."""


def written_since(paths: Iterable[Path], since: float) -> list[Path]:
    """Those of `paths` modified since `since` (epoch seconds, less SLACK), newest first;
    one that vanished meanwhile is left out."""
    found: list[tuple[float, Path]] = []
    for path in paths:
        try:
            mtime = path.stat().st_mtime
        except OSError:
            continue
        if mtime >= since - SLACK:
            found.append((mtime, path))
    return [p for _m, p in sorted(found, reverse=True)]
