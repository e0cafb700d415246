"""`staff serve --http [HOST:]PORT` and `staff web`: registered into cli/main.py's parser (the
server: daemon/httpapi.py, the web app: daemon/web.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from supervisor.client.cli.common import AddFn


def cmd_serve(args: argparse.Namespace, home: Path) -> int:
    from supervisor.client.cli.common import client, fail, start_daemon

    if not args.http:
        fail("staff serve needs --http [HOST:]PORT (e.g. --http 8765)")
    start_daemon(home, args.config, quiet=True)
    with client(home) as c:
        info = c.call("http_serve", listen=args.http, allow_remote=bool(args.allow_remote))
    if args.json:
        print(json.dumps(info))
        return 0
    if info.get("remote"):
        print(
            "staff: WARNING: the HTTP API is reachable from the network (--allow-remote); "
            "anyone with the token can run tasks on your agents"
        )
    print(f"staff: HTTP API on {info['url']} (the daemon serves it until `staff down`)")
    print(f"  token: {info['token_file']}")
    print(f'  curl -H "Authorization: Bearer $(cat {info["token_file"]})" {info["url"]}/agents')
    return 0


def cmd_web(args: argparse.Namespace, home: Path) -> int:
    """The web app: one URL with a one-time login code, as Jupyter prints (a new code each run)."""
    from supervisor.client.cli.common import client, start_daemon

    start_daemon(home, args.config, quiet=True)
    with client(home) as c:
        info = c.call("web", listen=args.http, allow_remote=bool(args.allow_remote))
    if args.json:
        print(json.dumps(info))
        return 0
    if info.get("remote"):
        print(
            "staff: WARNING: the web app is reachable from the network (--allow-remote); "
            "prefer an SSH tunnel or a tailnet (see README)"
        )
    print("staff: the team in a browser (one-time login, good for 10 minutes):")
    print(f"  {info['login']}")
    return 0


def add_commands(add: AddFn) -> None:
    p = add("serve", cmd_serve, "open the HTTP API on the daemon (JSON; bearer token; see README)")
    p.add_argument("--http", metavar="[HOST:]PORT", help="where to listen (default host 127.0.0.1)")
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback address")
    p.add_argument("-c", "--config", help="team file, if the daemon has to be started")
    p = add("web", cmd_web, "the team in a browser: print a one-time login URL (see README)")
    p.add_argument(
        "--http", metavar="[HOST:]PORT", help="where to listen, if not yet (default 127.0.0.1:8765)"
    )
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback address")
    p.add_argument("-c", "--config", help="team file, if the daemon has to be started")
