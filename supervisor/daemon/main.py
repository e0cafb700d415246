"""The daemon process: supervisor + socket server, one per state directory.

Started by `staff up` (detached, reporting readiness through a pipe so `up` returns
exactly when the socket answers) or in the foreground (`staff up --foreground`,
`make run`), where it prints every state change.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from supervisor.daemon.hosts import forgotten
from supervisor.daemon.server import Server
from supervisor.detect.rules import RuleError
from supervisor.protocol import ProtocolError, socket_path, socket_path_problem, state_home, unusable_home
from supervisor.pty import keeper
from supervisor.pty.keeperclient import KeeperClient, KeeperError
from supervisor.screen import emulator
from supervisor.team import config as configmod
from supervisor.team.chief import Chief
from supervisor.team.journal import JournalError
from supervisor.team.pool import Pool
from supervisor.team.supervisor import Supervisor
from supervisor.util.trust import UntrustedHome, check_home, open_private

log = logging.getLogger("staff")


class DaemonError(Exception):
    pass


def prepare_home(home: Path) -> None:
    """Create the state dir private to this user (0700), or refuse one that is not safely
    ours: not our dir, or holding anything another user may have put there (trust.py)."""
    for name in ("staff.sock", KEEPER_SOCKET):
        too_long = socket_path_problem(home / name)
        if too_long:
            raise DaemonError(too_long)
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        check_home(home)
    except UntrustedHome as exc:
        raise DaemonError(str(exc)) from None


def acquire_lock(home: Path) -> int:
    fd = open_private(home / "daemon.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DaemonError(f"a daemon is already running for {home} (`staff down` stops it)") from None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _printer(out: TextIO) -> Any:
    def sink(event: dict[str, Any]) -> None:
        stamp = time.strftime("%H:%M:%S")
        kind = event.get("type")
        if kind == "state":
            print(f"{stamp} {event['agent']:<12} {event['old']} → {event['new']}", file=out, flush=True)
        elif kind == "task":
            t = event["task"]
            line = f"{stamp} {t.get('agent') or t['to']:<12} task {t['id']} {t['state']}"
            if t["state"] == "done":
                line += f": {(t.get('answer') or '').splitlines()[0][:70] if t.get('answer') else ''}"
            elif t.get("error"):
                line += f": {t['error']}"
            print(line, file=out, flush=True)

    return sink


KEEPER_SOCKET = "keeper.sock"


def use_keeper() -> bool:
    """Agents live in a keeper process unless STAFF_KEEPER=0 (then this daemon is their parent)."""
    return os.environ.get("STAFF_KEEPER", "1") != "0"


def connect_keeper(home: Path, loop: asyncio.AbstractEventLoop) -> KeeperClient:
    """The keeper of this state dir, started (in its own session) if none answers."""
    path = str(home / KEEPER_SOCKET)
    try:
        client = KeeperClient.connect(path)
    except KeeperError:
        os.close(open_private(home / "keeper.log"))  # 0600, and never a symlink's target
        proc = keeper.launch(path, log_path=str(home / "keeper.log"))
        _reap_later(proc, loop)
        client = KeeperClient.connect(path)
    client.attach(loop)
    return client


def _reap_later(proc: subprocess.Popen[bytes], loop: asyncio.AbstractEventLoop) -> None:
    """We started the keeper, so we reap it when it ends (no zombie), via its pidfd."""
    try:
        fd = os.pidfd_open(proc.pid)
    except OSError:
        return

    def reap() -> None:
        loop.remove_reader(fd)
        os.close(fd)
        proc.wait()

    loop.add_reader(fd, reap)


class _OncePerInterval:
    """The loop's exception handler: a repeated error (asyncio's `accept() out of system
    resource` comes back every retry) is logged once per interval, with a count, instead of
    filling the disk with the same traceback."""

    INTERVAL = 60.0

    def __init__(self) -> None:
        self.last: dict[str, tuple[float, int]] = {}

    def __call__(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        key = f"{context.get('message')}|{type(exc).__name__}|{getattr(exc, 'errno', '')}"
        now = time.monotonic()
        when, skipped = self.last.get(key, (0.0, 0))
        if when and now - when < self.INTERVAL:
            self.last[key] = (when, skipped + 1)
            return
        self.last[key] = (now, 0)
        if skipped:
            context = {**context, "message": f"{context.get('message')} (and {skipped} more like it)"}
        loop.default_exception_handler(context)


async def serve(cfg: configmod.Config, home: Path, *, ready: Any = None, foreground: bool = False) -> int:
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_OncePerInterval())
    configmod.add_placed(cfg, home / configmod.PLACED)  # agents a hub placed here (server.cmd_place)
    sup = Supervisor(cfg, home)
    sup.warnings += forgotten(home, cfg.hosts)  # printed once by the `staff up` that starts us
    sup.open_journal()  # a damaged journal stops the start here, before a keeper or an agent runs
    kept = connect_keeper(home, loop) if use_keeper() else None
    try:
        sup.keeper = kept
        if kept is not None:
            sup.reconnect_keeper = lambda: connect_keeper(home, loop)
        chief = Chief(sup)  # the chief agent and pushed delivery to it (team/chief.py)
        sup.extensions += [Pool(sup), chief]  # roles that grow and shrink (team/pool.py)
        server = Server(sup, socket_path(home), chief=chief)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            loop.add_signal_handler(sig, server.stopped.set)
        if foreground:
            sup.sinks.append(_printer(sys.stdout))
        if cfg.notify.url:  # [notify]: pushes to an ntfy-compatible URL (notify.py)
            from supervisor.daemon.notify import Notifier

            server.notifier = Notifier(sup, cfg.notify, lambda: server.http.url if server.http else None)
            server.notifier.start()
        if cfg.http.listen:  # [http] in staff.toml (httpapi.py); a bad address fails the start
            await server.open_http(cfg.http.listen, allow_remote=cfg.http.allow_remote)
        await sup.start()
        await server.start()
        if cfg.hosts:  # [hosts.NAME]: links to other hosts' daemons (hosts.py)
            from supervisor.daemon.hosts import Hosts

            server.hosts = Hosts(cfg.hosts, sup.publish, home, post=sup.post)
            server.hosts.start()
    except BaseException:
        _end_idle_keeper(kept)  # a start that failed leaves no idle keeper behind
        raise
    log.info("daemon %d up: %s (%s)", os.getpid(), ", ".join(sup.agents), cfg.source)
    backend = emulator.default_backend()
    problem = emulator.ghostty_problem() if backend == "pyte" else None
    log.info("screen emulator: %s%s", backend, f" (libghostty-vt: {problem})" if problem else "")
    for warning in sup.warnings:
        log.warning("%s", warning)
    if ready is not None:
        ready(None)
    try:
        await server.stopped.wait()
    finally:
        reload = server.reload
        log.info("daemon stopping%s", " for a reload (agents keep running)" if reload else "")
        if server.hosts is not None:
            await server.hosts.close()  # the hosts' agents keep running there
        # said before the clients are cut off: a console then knows whether the agents end
        # with it (`staff down`) or outlive it (a reload), not from a race with the keeper
        sup.publish({"type": "stopping", "reload": reload})
        await server.close()
        await sup.shutdown(keep_agents=reload and sup.keeper is not None)
        if sup.keeper is not None and not reload:
            with contextlib.suppress(KeeperError):
                sup.keeper.shutdown(2.0)
    return 0


def _end_idle_keeper(kept: KeeperClient | None) -> None:
    """The start failed: a keeper with no agents (we just started it) is ended, so a failed
    `staff up` leaves nothing running; one that still runs agents keeps them."""
    if kept is None:
        return
    with contextlib.suppress(Exception):
        live, _exits = kept.list_children()
        if not live:
            kept.shutdown(2.0)


def _log_handler(path: Path) -> logging.Handler:
    """daemon.log, appended to, 0600, never through a symlink (O_NOFOLLOW)."""
    stream = os.fdopen(open_private(path), "a", encoding="utf-8", errors="backslashreplace")
    return logging.StreamHandler(stream)


def run(
    config_path: str | None, home: Path, *, foreground: bool, ready_fd: int | None = None, empty: bool = False
) -> int:
    def report(error: str | None) -> None:
        if ready_fd is None:
            if error:
                print(f"staff: {error}", file=sys.stderr)
            return
        msg = f"error {error}\n" if error else "ok\n"
        with contextlib.suppress(OSError):
            os.write(ready_fd, msg.encode())
            os.close(ready_fd)

    try:
        prepare_home(home)
        lock = acquire_lock(home)
    except DaemonError as exc:
        report(str(exc))
        return 2
    except OSError as exc:  # read-only, full, not ours
        report(unusable_home(home, exc))
        return 2
    try:
        handlers: list[logging.Handler] = [_log_handler(home / "daemon.log")]
    except OSError as exc:  # a symlink (ELOOP), a directory, …
        os.close(lock)
        report(f"cannot open {home / 'daemon.log'}: {exc.strerror or exc}; remove it and start again")
        return 2
    if foreground:
        handlers.append(logging.StreamHandler(sys.stderr))
        handlers[-1].setLevel(logging.WARNING)
    logging.basicConfig(level=logging.INFO, handlers=handlers, format="%(asctime)s %(levelname)s %(message)s")
    try:
        cfg = configmod.empty_team() if empty else configmod.find(config_path)
    except configmod.ConfigError as exc:
        report(str(exc))
        return 2
    if foreground and cfg.note:
        print(f"staff: {cfg.note}", flush=True)
    try:
        return asyncio.run(serve(cfg, home, ready=report, foreground=foreground))
    except RuleError as exc:
        report(f"bad rule file: {exc}")
        return 2
    except ProtocolError as exc:  # [http] listen: the address is taken or not allowed
        report(exc.message)
        return 2
    except JournalError as exc:  # damaged, or from a newer agentstaff
        report(str(exc))
        return 2
    finally:
        os.close(lock)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="staff-daemon")
    ap.add_argument("-c", "--config")
    ap.add_argument("--home")
    ap.add_argument("--foreground", action="store_true")
    ap.add_argument("--empty", action="store_true", help="no agents (a host a hub places them on)")
    args = ap.parse_args(argv)
    home = Path(args.home) if args.home else state_home()
    ready = os.environ.pop("STAFF_READY_FD", None)
    ready_fd = int(ready) if ready else None
    return run(args.config, home, foreground=args.foreground, ready_fd=ready_fd, empty=args.empty)


if __name__ == "__main__":
    sys.exit(main())
