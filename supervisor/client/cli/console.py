"""`staff console` and `staff attach`: registered into cli/main.py's parser with `add_commands(add)`.

Nothing heavy is imported here: prompt_toolkit loads only when `staff console` runs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

AddCommand = Callable[[str, Any, str], argparse.ArgumentParser]


def cmd_attach(args: argparse.Namespace, home: Path) -> int:
    from supervisor.client.attach import attach, describe_key, parse_key
    from supervisor.client.cli.common import fail

    try:
        key = parse_key(args.detach_key)
    except ValueError as exc:
        fail(str(exc))
    if not sys.stdin.isatty():
        fail("staff attach needs a terminal (use `staff screen` or `staff logs` in scripts)")
    with _client(home) as c:
        c.call("screen", agent=args.agent)  # an unknown agent fails here, before the screen flips
    why = attach(home, args.agent, detach_key=key)
    print(f"staff: {why} ({args.agent} keeps running; detach key {describe_key(key)})")
    return 0


def cmd_console(args: argparse.Namespace, home: Path) -> int:
    from supervisor.client.cli.common import fail, start_daemon

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        fail("staff console needs a terminal")
    prefix, note = console_prefix(args.prefix, args.config)
    start_daemon(home, args.config)
    from supervisor.client.console.app import run_console

    return run_console(home, prefix=prefix, focus=args.agent, note=note, keys=_config_keys(args.config))


TMUX_DEFAULT = "\x02"
FALLBACKS = ("\x02", "\x01", "\x1d")  # C-b, then C-a, then C-] (attach's detach key)


def console_prefix(explicit: str | None, config: str | None) -> tuple[str, str]:
    """The console's prefix key, and a note for its status bar when the choice needs one.

    Asked for in this order: --prefix, $STAFF_PREFIX, `console_prefix` in the team file's
    [staff] table, else C-b. Inside tmux ($TMUX), C-b is tmux's own prefix, so tmux would
    take it first: then the default moves to the first of C-a, C-] that tmux does not use,
    and a prefix chosen on purpose that clashes is kept, with a note (tmux passes it on
    when pressed twice)."""
    from supervisor.client.attach import describe_key, parse_key
    from supervisor.client.cli.common import fail

    spec, where = explicit, "--prefix"
    if spec is None and os.environ.get("STAFF_PREFIX"):
        spec, where = os.environ["STAFF_PREFIX"], "STAFF_PREFIX"
    if spec is None:
        spec, where = _config_prefix(config), "console_prefix in the team file"
    try:
        chosen = parse_key(spec) if spec is not None else None
    except ValueError as exc:
        fail(f"{where}: {exc}")
    taken = tmux_prefixes() if os.environ.get("TMUX") else set()
    if chosen is not None:
        if chosen in taken:
            k = describe_key(chosen)
            return chosen, f"{k} is also tmux's prefix: press it twice here ({where} sets another)"
        return chosen, ""
    prefix = next((k for k in FALLBACKS if k not in taken), FALLBACKS[-1])
    if prefix != TMUX_DEFAULT:
        return prefix, f"prefix {describe_key(prefix)} ({describe_key(TMUX_DEFAULT)} is tmux's)"
    return prefix, ""


def tmux_prefixes() -> set[str]:
    """The keys the tmux around us takes as its prefix (C-b when tmux cannot be asked)."""
    import subprocess

    from supervisor.client.attach import parse_key

    keys: set[str] = set()
    for option in ("prefix", "prefix2"):
        try:
            out = subprocess.run(
                ["tmux", "show-options", "-gv", option], capture_output=True, text=True, timeout=2
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return {TMUX_DEFAULT}
        with contextlib.suppress(ValueError):
            if out and out != "None":
                keys.add(parse_key(out))
    return keys or {TMUX_DEFAULT}


def _config_prefix(config: str | None) -> str | None:
    """`console_prefix` from the [staff] table of the team file `staff up` would use."""
    from supervisor.team import config as configmod

    try:
        value = configmod.find(config).settings.get("console_prefix")
    except configmod.ConfigError:
        return None  # `staff up` reports a bad team file, with its line
    return value if isinstance(value, str) else None


def _config_keys(config: str | None) -> dict[str, str | list[str]] | None:
    """`console_keys` from the [staff] table of the team file (checked when it is loaded)."""
    from supervisor.team import config as configmod

    try:
        value = configmod.find(config).settings.get("console_keys")
    except configmod.ConfigError:
        return None
    return value if isinstance(value, dict) else None


def _client(home: Path) -> Any:
    from supervisor.client.cli.common import client

    return client(home)


def add_commands(add: AddCommand) -> None:
    p = add("console", cmd_console, "the interactive console: every agent, live; switch in and type")
    p.add_argument("agent", nargs="?", help="the agent to show first")
    p.add_argument("-c", "--config", help="team file, if the daemon has to be started")
    p.add_argument(
        "--prefix", help="the prefix key (default C-b; C-a inside tmux; also $STAFF_PREFIX, console_prefix)"
    )
    p = add("attach", cmd_attach, "one agent full screen in this terminal, raw; Ctrl-] detaches")
    p.add_argument("agent")
    p.add_argument("--detach-key", default="C-]", help="the key that detaches (default C-])")
