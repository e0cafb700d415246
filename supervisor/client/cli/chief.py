"""`staff chief`: registered into cli/main.py's parser with `add_commands(add)` (the logic: team/chief.py)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from supervisor.client.cli.common import AddFn


def cmd_chief(args: argparse.Namespace, home: Path) -> int:
    from supervisor.client.cli.common import client, start_daemon
    from supervisor.client.cli.console import console_prefix

    extra = list(args.claude_args or [])
    if extra and extra[0] == "--":
        extra = extra[1:]
    prefix, note = console_prefix(args.prefix, args.config)
    console = not args.no_console and sys.stdin.isatty() and sys.stdout.isatty()
    start_daemon(home, args.config, quiet=True)
    with client(home) as c:
        res = c.call("chief", args=extra, cwd=os.getcwd(), **{"continue": bool(args.resume)})
    agent = res["agent"]
    if not console:
        if args.json:
            import json

            print(json.dumps(res, ensure_ascii=False))
        else:
            what = "started" if res["started"] else "already running"
            print(
                f"chief: {what} (pid {agent.get('pid')}, {agent.get('status')}); "
                f"`staff console chief` to work with it"
            )
        return 0
    from supervisor.client.console.app import run_console

    return run_console(home, prefix=prefix, focus="chief", note=note)


def add_commands(add: AddFn) -> None:
    p = add("chief", cmd_chief, "start your top-level Claude Code as the agent `chief` and open it")
    p.add_argument(
        "--continue", dest="resume", action="store_true", help="resume the chief's last conversation"
    )
    p.add_argument("-c", "--config", help="team file, if the daemon has to be started")
    p.add_argument("--prefix", help="the console's prefix key (as for `staff console`)")
    p.add_argument("--no-console", action="store_true", help="start the chief only (no console)")
    p.add_argument("claude_args", nargs=argparse.REMAINDER, help="-- then arguments for Claude Code")
