"""`staff hook install|uninstall|doctor` and `staff mcp`: delegation from a chief session.

The logic lives in `hook/install.py` (stdlib) and `mcp_server.py`; this only wires the
commands into the CLI (cli.build_parser calls `add_commands(add)`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from supervisor.client.cli.common import AddFn


def cmd_hook(args: argparse.Namespace, home: Path) -> int:
    from hook import install as hk

    settings = Path(args.settings).expanduser() if args.settings else None
    try:
        if args.action == "install":
            lines, ok = hk.install(settings), True
        elif args.action == "uninstall":
            lines, ok = hk.uninstall(settings), True
        else:
            ok, lines = hk.doctor(home, settings)
    except hk.InstallError as exc:  # printed here: hook errors are not CliErrors
        print(f"staff: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"ok": ok, "lines": lines}, ensure_ascii=False))
    else:
        print("\n".join(lines))
    return 0 if ok else 1


def cmd_mcp(args: argparse.Namespace, home: Path) -> int:
    from supervisor.client.mcp import serve

    return serve(home)


def add_commands(add: AddFn) -> None:
    p = add("hook", cmd_hook, "the Ctrl-G editor hook for Claude Code: install, uninstall, doctor")
    p.add_argument("action", choices=("install", "uninstall", "doctor"))
    p.add_argument("--settings", help="Claude Code's settings file (default ~/.claude/settings.json)")
    add("mcp", cmd_mcp, "serve the team as MCP tools over stdio (claude mcp add staff -- staff mcp)")
