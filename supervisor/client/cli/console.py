"""`staff console` and `staff attach`: registered into cli/main.py's parser with `add_commands(add)`.

Nothing heavy is imported here: prompt_toolkit loads only when `staff console` runs.
"""

from __future__ import annotations

import argparse
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
    from supervisor.client.attach import parse_key
    from supervisor.client.cli.common import fail, start_daemon

    try:
        prefix = parse_key(args.prefix)
    except ValueError as exc:
        fail(str(exc))
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        fail("staff console needs a terminal")
    start_daemon(home, args.config)
    from supervisor.client.console.app import run_console

    return run_console(home, prefix=prefix, focus=args.agent)


def _client(home: Path) -> Any:
    from supervisor.client.cli.common import client

    return client(home)


def add_commands(add: AddCommand) -> None:
    p = add("console", cmd_console, "the interactive console: every agent, live; switch in and type")
    p.add_argument("agent", nargs="?", help="the agent to show first")
    p.add_argument("-c", "--config", help="team file, if the daemon has to be started")
    p.add_argument("--prefix", default="C-b", help="the prefix key (default C-b)")
    p = add("attach", cmd_attach, "one agent full screen in this terminal, raw; Ctrl-] detaches")
    p.add_argument("agent")
    p.add_argument("--detach-key", default="C-]", help="the key that detaches (default C-])")
