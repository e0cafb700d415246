"""Shell completion for `staff` (bash, zsh, fish), by argcomplete, from the parser itself.

`staff completion SHELL` prints the script to install; the shell then runs `staff` with
argcomplete's environment at each Tab, and `autocomplete` (called first thing in `main`)
answers from the parser: commands, options, and, from the running daemon, agent names (plus
`any` and `role:NAME`) and the ids of the tasks its agents are working on. No daemon: no
names, never an error (a Tab must not print anything).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from supervisor.client.cli.common import AddFn
from supervisor.protocol import Client, ProtocolError, socket_path, state_home

SHELLS = ("bash", "zsh", "fish")


def autocomplete(parser: argparse.ArgumentParser) -> None:
    """Answer a completion request (and exit) when the shell sent one; else return at once."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    import argcomplete

    argcomplete.autocomplete(parser)


def cmd_completion(args: argparse.Namespace, home: Path) -> int:
    from argcomplete.shell_integration import shellcode

    sys.stdout.write(shellcode(["staff"], shell=args.shell))
    return 0


def _status(parsed: argparse.Namespace) -> dict[str, Any]:
    home = Path(parsed.home) if getattr(parsed, "home", None) else state_home()
    try:
        with Client(socket_path(home), timeout=1.0) as c:
            st: dict[str, Any] = c.call("status")
            return st
    except (ProtocolError, OSError, ValueError):
        return {"agents": []}


def complete_agents(prefix: str, parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    agents = _status(parsed_args)["agents"]
    names = [a["agent_id"] for a in agents]
    if getattr(parsed_args, "cmd", None) in ("ask", "submit", "watch"):
        names += ["any", *sorted({f"role:{a['role']}" for a in agents if a.get("role")})]
    return [n for n in names if n.startswith(prefix)]


def complete_tasks(prefix: str, parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    agents = _status(parsed_args)["agents"]
    tasks = [a.get("current_task") or "" for a in agents]
    return [t for t in tasks if t and t.startswith(prefix)]


def add_commands(add: AddFn, parser: argparse.ArgumentParser) -> None:
    p = add("completion", cmd_completion, "print the shell completion script (bash, zsh or fish)")
    p.add_argument("shell", choices=SHELLS)
    for sub in _subparsers(parser):
        for action in sub._actions:
            if action.dest == "agent":
                action.completer = complete_agents  # type: ignore[attr-defined]
            elif action.dest == "task":
                action.completer = complete_tasks  # type: ignore[attr-defined]


def _subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices.values())
    return []
