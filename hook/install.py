"""`staff hook install | uninstall | doctor`: point Claude Code's editor at `staff-hook`.

Claude Code reads ``env`` from its user settings (``~/.claude/settings.json``, or
``$CLAUDE_CONFIG_DIR/settings.json``) into its own environment, so setting ``EDITOR`` and
``VISUAL`` there reaches Ctrl-G without touching the person's shell. Install is
idempotent, keeps everything else in the file, writes a backup
(``settings.json.staff-backup``) before each change and records the editor the person had
(``~/.config/agentstaff/hook-install.json``), which the hook opens for files it does not
delegate and which uninstall puts back.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from supervisor.util.atomic import write_atomic

from .settings import INSTALL_RECORD, Settings, config_dir, is_hook, real_editor

VARS = ("EDITOR", "VISUAL")


class InstallError(Exception):
    """Nothing was changed; the message says why and what to do."""


def settings_path() -> Path:
    base = os.environ.get("CLAUDE_CONFIG_DIR")
    return (Path(base).expanduser() if base else Path.home() / ".claude") / "settings.json"


def hook_command() -> str:
    """An absolute path to `staff-hook` (Claude Code's PATH may not have our venv)."""
    beside = Path(sys.executable).with_name("staff-hook")
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("staff-hook")
    if found:
        return str(Path(found).resolve())
    raise InstallError("staff-hook is not installed next to this staff (reinstall: pipx install .)")


def _load(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise InstallError(f"cannot read {path}: {exc.strerror}") from exc
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InstallError(f"{path} is not valid JSON ({exc}); fix it first — nothing was changed") from exc
    if not isinstance(data, dict):
        raise InstallError(f"{path} does not hold a JSON object; nothing was changed")
    env = data.get("env")
    if env is not None and not isinstance(env, dict):
        raise InstallError(f"{path}: 'env' is not an object; nothing was changed")
    return data


def _save(path: Path, data: dict[str, Any]) -> Path | None:
    path.parent.mkdir(parents=True, exist_ok=True)
    backup = None
    if path.exists():
        backup = path.with_name(path.name + ".staff-backup")
        shutil.copy2(path, backup)
    write_atomic(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode())
    return backup


def _record_path() -> Path:
    return config_dir() / INSTALL_RECORD


def _read_record() -> dict[str, Any]:
    try:
        rec = json.loads(_record_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return rec if isinstance(rec, dict) else {}


def install(path: Path | None = None) -> list[str]:
    path = path or settings_path()
    data = _load(path)
    env: dict[str, Any] = dict(data.get("env") or {})
    cmd = hook_command()
    if all(env.get(v) == cmd for v in VARS):
        return [f"already installed: EDITOR and VISUAL in {path} are {cmd}"]
    old = _read_record() if any(is_hook(str(env.get(v, ""))) for v in VARS) else {}
    saved = old.get("saved_env") or {v: env.get(v) for v in VARS if not is_hook(str(env.get(v, "")))}
    previous = old.get("previous_editor")
    if not previous:
        for cand in (
            env.get("VISUAL"),
            env.get("EDITOR"),
            os.environ.get("VISUAL"),
            os.environ.get("EDITOR"),
        ):
            if isinstance(cand, str) and cand.strip() and not is_hook(cand):
                previous = cand
                break
    record = {
        "settings": str(path),
        "saved_env": saved,
        "had_env": old.get("had_env", "env" in data),
        "previous_editor": previous,
        "installed": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    for v in VARS:
        env[v] = cmd
    data["env"] = env
    backup = _save(path, data)
    config_dir().mkdir(parents=True, exist_ok=True)
    write_atomic(_record_path(), (json.dumps(record, indent=2) + "\n").encode())
    out = [f"installed: EDITOR and VISUAL = {cmd} in {path}"]
    if backup:
        out.append(f"backup of the previous settings: {backup}")
    out.append(f"files it does not delegate open in: {previous or 'vi'} (set STAFF_EDITOR to change)")
    out.append("restart Claude Code for it to take effect; in it, Ctrl-G on `@planning <task>` delegates")
    return out


def uninstall(path: Path | None = None) -> list[str]:
    path = path or settings_path()
    data = _load(path)
    env: dict[str, Any] = dict(data.get("env") or {})
    if not any(is_hook(str(env.get(v, ""))) for v in VARS):
        return [f"not installed in {path}; nothing changed"]
    rec = _read_record()
    saved = rec.get("saved_env") or {}
    for v in VARS:
        if is_hook(str(env.get(v, ""))):
            if saved.get(v):
                env[v] = saved[v]
            else:
                env.pop(v, None)
    if env or rec.get("had_env", True):
        data["env"] = env
    else:
        data.pop("env", None)
    backup = _save(path, data)
    rp = _record_path()
    if rp.exists():
        rp.unlink()
    restored = ", ".join(f"{v}={env[v]}" for v in VARS if v in env) or "EDITOR and VISUAL removed"
    return [f"uninstalled from {path} ({restored})", f"backup: {backup}"]


def doctor(home: Path, path: Path | None = None) -> tuple[bool, list[str]]:
    """What is set, whether it works, and whether the daemon answers."""
    from supervisor.protocol import Client, ProtocolError, socket_path

    ok = True
    out: list[str] = []
    path = path or settings_path()
    try:
        data = _load(path)
    except InstallError as exc:
        return False, [f"✘ {exc}"]
    env = data.get("env") or {}
    out.append(f"Claude Code settings: {path}" + ("" if path.exists() else " (missing)"))
    for v in VARS:
        val = env.get(v)
        good = isinstance(val, str) and is_hook(val)
        ok &= good
        out.append(
            f"{'✔' if good else '✘'} {v} = {val or '(not set)'}"
            + ("" if good else "  → run `staff hook install`")
        )
    try:
        cmd = hook_command()
        out.append(f"✔ the hook: {cmd}")
    except InstallError as exc:
        ok = False
        out.append(f"✘ {exc}")
    settings = Settings.load()
    out.append(f"  other files open in: {' '.join(real_editor(settings))}")
    out.append(
        f"  picker: {'on' if settings.picker else 'off'} · answers awaited up to {settings.timeout:g}s"
    )
    shell_editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if shell_editor and not is_hook(shell_editor):
        out.append(f"  (this shell's editor is {shell_editor}; Claude Code takes the settings above)")
    try:
        with Client(socket_path(home), timeout=3.0) as c:
            info = c.call("ping")
        out.append(f"✔ daemon: pid {info['pid']}, agents: {', '.join(info['agents'])}")
    except ProtocolError:
        out.append(
            f"· daemon: not running at {socket_path(home)} (the hook starts one on the first delegation)"
        )
    return ok, out
