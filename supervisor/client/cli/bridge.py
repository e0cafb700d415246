"""`staff bridge`: this host's daemon on stdin/stdout, for a hub on another machine; and
`staff hosts`, the hub's view of its links.

A transport (`ssh host staff bridge`, `kubectl exec -i … staff bridge`) runs it on the far
side; the hub then speaks the ordinary protocol (JSON lines) through it. The bridge starts
the daemon if none runs (with this host's own team file, or an empty team that the hub
places agents on) once the hub's first request has come, and copies bytes both ways; it
ends when its stdin closes (the link dropped), and the daemon, in its own session, keeps
the agents and their tasks.

Who may use it is the transport's business (ssh keys, kube RBAC); the daemon's socket
accepts only its own user, so the bridge cannot be a way in for anyone else.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import sys
import threading
import time
from pathlib import Path

from supervisor.client.cli.common import AddFn, CliError, client, start_daemon
from supervisor.protocol import ERR_NO_DAEMON, ProtocolError, encode, socket_path
from supervisor.team import config as configmod

DRAIN = 10.0
"""Seconds the bridge lets the daemon finish its replies after stdin closed."""


def cmd_bridge(args: argparse.Namespace, home: Path) -> int:
    try:
        team = configmod.locate(args.config)
        if team is not None:
            configmod.find(str(team))  # a bad team file is said at once, whoever is there
        # the hub's first request, before any daemon is started: a link the hub already gave up
        # (it stopped while ssh was connecting) must not start a daemon after its `staff down`
        first = _first(sys.stdin.fileno())
        if not first:
            return 0
        start_daemon(home, str(team) if team else None, quiet=True, empty=team is None)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(socket_path(home)))
        sock.sendall(first)
    except (CliError, configmod.ConfigError, ProtocolError, OSError) as exc:
        message = getattr(exc, "message", None) or str(exc)
        if isinstance(exc, OSError):
            message = f"cannot reach the daemon at {socket_path(home)}: {exc.strerror or exc}"
        # one line for the hub (a frame it shows as the host's error) and one for a person
        with contextlib.suppress(OSError):
            error = {"code": ERR_NO_DAEMON, "message": message}
            os.write(1, encode({"id": None, "ok": False, "error": error}))
        print(f"staff: bridge: {message}", file=sys.stderr)
        return 2
    return relay(sock, sys.stdin.fileno(), sys.stdout.fileno())


def _first(rfd: int) -> bytes:
    """What came first on stdin; empty when it closed before anything came."""
    try:
        return os.read(rfd, 65536)
    except OSError:
        return b""


def relay(sock: socket.socket, rfd: int, wfd: int) -> int:
    """Copy stdin → daemon and daemon → stdout until stdin closes (then let the daemon's last
    replies out, bounded) or the daemon or stdout goes away."""
    ended = threading.Event()
    daemon_gone = threading.Event()

    def out() -> None:
        with contextlib.suppress(OSError):
            while chunk := sock.recv(65536):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(wfd, view):]
        daemon_gone.set()
        ended.set()

    def inp() -> None:
        with contextlib.suppress(OSError):
            while chunk := os.read(rfd, 65536):
                sock.sendall(chunk)
        ended.set()

    pump = threading.Thread(target=out, daemon=True)
    pump.start()
    threading.Thread(target=inp, daemon=True).start()
    ended.wait()
    if daemon_gone.is_set():
        print("staff: bridge: the daemon closed the connection (stopped or reloaded)", file=sys.stderr)
        return 1
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)  # the daemon sees EOF, ends this client, closes
    pump.join(DRAIN)
    sock.close()
    return 0


def cmd_hosts(args: argparse.Namespace, home: Path) -> int:
    """Each host of the hub: its link, round trip, agents, tasks held for it, why it is down."""
    with client(home, timeout=30) as c:
        hosts = c.call("hosts")["hosts"]
    if args.json:
        print(json.dumps(hosts, indent=1, ensure_ascii=False))
        return 0
    if not hosts:
        print("staff: no hosts in the team file (add a [hosts.NAME] table: see the README)")
        return 0
    rows = [["host", "link", "rtt", "agents", "held", "protocol", "agentstaff", "transport"]]
    for h in hosts:
        since = time.strftime("%H:%M:%S", time.localtime(h["since"]))
        link = h["state"] if h["state"] == "connected" else f"{h['state']} since {since}"
        rtt = f"{h['rtt_ms']:.0f} ms" if h.get("rtt_ms") is not None else "-"
        version = str(h["version"]) if h.get("version") is not None else "-"
        rows.append([h["host"], link, rtt, str(h["agents"]), str(h["held"]), version, h.get("release") or "-",
                     h["transport"]])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    for h in hosts:
        if h["state"] != "connected" and h.get("error"):
            print(f"host {h['host']}: {h['error']}")
    return 0


def add_commands(add: AddFn) -> None:
    p = add("bridge", cmd_bridge, "the daemon's protocol on stdin/stdout, for a hub on another host")
    p.add_argument("-c", "--config", help="team file (default ./staff.toml, then the user's, else no agents)")
    add("hosts", cmd_hosts, "the hub's hosts: link, round trip, agents, tasks held for a host that is down")
