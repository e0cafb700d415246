"""The hook's settings, its real-editor lookup and its one way of writing the prompt file.

Settings come from the environment first, then the ``[hook]`` table of the person's team
file (the same lookup as ``staff up``: ``$STAFF_CONFIG``, ``./staff.toml``, the user's
``staff.toml``)::

    [hook]
    picker = true        # a prompt file with no @ task opens the picker (on a terminal)
    timeout = 1800       # seconds to wait for answers before handing back the original
    editor = "nvim"      # the real editor (else $STAFF_EDITOR, the one before install, vi)

Environment: ``STAFF_HOOK_PICKER`` (0/1), ``STAFF_HOOK_TIMEOUT`` (seconds),
``STAFF_EDITOR``. Standard library only.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from supervisor.util.trust import config_problem

DEFAULT_TIMEOUT = 1800.0


def config_dir() -> Path:
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(xdg) / "agentstaff"


INSTALL_RECORD = "hook-install.json"
"""What `staff hook install` changed, in config_dir(): the editor the person had before."""


def _team_file() -> Path | None:
    for cand in (os.environ.get("STAFF_CONFIG"), "staff.toml", str(config_dir() / "staff.toml")):
        if cand and Path(cand).is_file():
            return Path(cand)
    return None


def _hook_table() -> dict[str, Any]:
    path = _team_file()
    if path is None:
        return {}
    problem = config_problem(path)  # the same check as `staff up` (util/trust.py)
    if problem:
        import sys

        print(f"staff-hook: ignoring [hook] of {problem}", file=sys.stderr)
        return {}
    import tomllib

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # `staff up` reports a broken team file; the hook just uses its defaults
    table = data.get("hook")
    return table if isinstance(table, dict) else {}


@dataclass
class Settings:
    picker: bool = True
    timeout: float = DEFAULT_TIMEOUT
    editor: str | None = None

    @classmethod
    def load(cls) -> Settings:
        table = _hook_table()
        s = cls()
        if isinstance(table.get("picker"), bool):
            s.picker = table["picker"]
        if isinstance(table.get("timeout"), int | float) and not isinstance(table.get("timeout"), bool):
            s.timeout = float(table["timeout"])
        if isinstance(table.get("editor"), str) and table["editor"].strip():
            s.editor = table["editor"]
        env_picker = os.environ.get("STAFF_HOOK_PICKER")
        if env_picker is not None:
            s.picker = env_picker.strip().lower() not in ("0", "false", "no", "off", "")
        env_timeout = os.environ.get("STAFF_HOOK_TIMEOUT")
        if env_timeout:
            with contextlib.suppress(ValueError):
                s.timeout = float(env_timeout)
        return s


def is_hook(cmd: str) -> bool:
    import shlex

    try:
        first = shlex.split(cmd)[0]
    except (ValueError, IndexError):
        return False
    return Path(first).name in ("staff-hook", "staff_hook")


def previous_editor() -> str | None:
    """The editor the person had before `staff hook install` (it recorded it)."""
    import json

    path = config_dir() / INSTALL_RECORD
    if config_problem(path):  # it names a command to run: trusted like a team file
        return None
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    prev = rec.get("previous_editor") if isinstance(rec, dict) else None
    return prev if isinstance(prev, str) and prev.strip() and not is_hook(prev) else None


def real_editor(settings: Settings | None = None) -> list[str]:
    """The person's own editor: $STAFF_EDITOR, [hook] editor, the one before install, else vi."""
    import shlex

    env = os.environ.get("STAFF_EDITOR")
    for cand in (env, settings.editor if settings else None, previous_editor()):
        if cand and cand.strip() and not is_hook(cand):
            with contextlib.suppress(ValueError):
                argv = shlex.split(cand)
                if argv:
                    return argv
    return ["vi"]


