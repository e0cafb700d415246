"""What every `staff` subcommand shares: errors, the daemon connection, starting and stopping it.

Subcommand modules (orchestrate, console, hooks, chief, serve, the mail bridge) import these
from here, never from `main`: `main` imports them to build the parser, so the arrow points one way.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

from supervisor.protocol import (
    ERR_BAD_REQUEST,
    ERR_NO_DAEMON,
    MAX_FRAME,
    Client,
    ProtocolError,
    encode,
    socket_path,
    unusable_home,
)
from supervisor.team import config as configmod
from supervisor.util.trust import UntrustedHome, check_home, open_private

AddFn = Callable[[str, Any, str], argparse.ArgumentParser]
"""How a subcommand module registers a command: `add(name, fn, help)` returns its parser."""

KEY_NAMES = {
    "enter": "\r",
    "return": "\r",
    "esc": "\x1b",
    "escape": "\x1b",
    "tab": "\t",
    "space": " ",
    "bspace": "\x7f",
    "backspace": "\x7f",
    "up": "\x1b[A",
    "down": "\x1b[B",
    "right": "\x1b[C",
    "left": "\x1b[D",
    "home": "\x1b[H",
    "end": "\x1b[F",
    "pageup": "\x1b[5~",
    "pagedown": "\x1b[6~",
    "delete": "\x1b[3~",
    "btab": "\x1b[Z",
}


class CliError(Exception):
    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


class Interrupted(Exception):
    """Ctrl-C while waiting for tasks: they keep running, and the message names them."""

    def __init__(self, tasks: list[str]) -> None:
        super().__init__(", ".join(tasks))
        self.tasks = tasks


class Elapsed:
    """A spinner label whose elapsed time is read at each redraw, not at each event: a task
    that sends no event for a minute still shows its clock running (it stayed at 0s)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.start = time.monotonic()

    def __rich__(self) -> str:
        from rich.markup import escape

        return escape(f"{self.text} · {time.monotonic() - self.start:.0f}s")


class StaffClient(Client):
    """The CLI's client: a request over the daemon's 1 MiB frame limit is refused here, with
    the limit, instead of the daemon dropping the connection ("lost the daemon: Broken pipe")."""

    def stream(
        self, cmd: str, *, read_timeout: float | None = None, **fields: Any
    ) -> Iterator[dict[str, Any]]:
        size = len(encode({"id": 0, "cmd": cmd, **{k: v for k, v in fields.items() if v is not None}}))
        if size > MAX_FRAME:
            from supervisor.client.connection import too_large

            raise ProtocolError(ERR_BAD_REQUEST, too_large(size))
        return super().stream(cmd, read_timeout=read_timeout, **fields)


def fail(message: str, code: int = 2) -> NoReturn:
    raise CliError(message, code)


def keys_from_args(words: list[str], literal: bool) -> str:
    """tmux-style keys: names (Enter, Esc, C-c, Up…) or literal text, concatenated."""
    if literal:
        return "".join(words)
    out = []
    for word in words:
        low = word.lower()
        if low in KEY_NAMES:
            out.append(KEY_NAMES[low])
        elif len(word) == 3 and low.startswith("c-") and word[2].isalpha():
            out.append(chr(ord(word[2].lower()) - 96))
        elif low.startswith("m-") and len(word) > 2:
            out.append("\x1b" + word[2:])
        else:
            out.append(word)
    return "".join(out)


def client(home: Path, timeout: float | None = 10.0) -> Client:
    return StaffClient(socket_path(home), timeout=timeout).connect()


def daemon_alive(home: Path) -> dict[str, Any] | None:
    try:
        with Client(socket_path(home), timeout=3.0) as c:
            result: dict[str, Any] = c.call("ping")
            return result
    except ProtocolError:
        return None


def start_daemon(
    home: Path, config_path: str | None, *, quiet: bool = False, empty: bool = False
) -> dict[str, Any]:
    """Start a detached daemon and return once its socket answers (or fail clearly);
    `empty`: with no agents (`staff bridge` on a host with no team file of its own)."""
    running = daemon_alive(home)
    if running:
        return {**running, "already": True}
    if config_path:
        config_path = str(Path(config_path).resolve())
    if not empty:
        configmod.find(config_path)  # fail here, in the user's terminal, on a bad config
    try:
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        check_home(home)  # before anything is written there (trust.py)
        logf = os.fdopen(open_private(home / "daemon.out"), "ab")  # handed to the child
    except UntrustedHome as exc:
        fail(str(exc))
    except OSError as exc:  # read-only, full, not ours: say so in one line
        fail(unusable_home(home, exc))
    rfd, wfd = os.pipe()
    env = dict(os.environ, STAFF_READY_FD=str(wfd))
    argv = [sys.executable, "-m", "supervisor.daemon.main", "--home", str(home)]
    if config_path:
        argv += ["-c", config_path]
    if empty:
        argv.append("--empty")
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=logf,
            env=env,
            pass_fds=(wfd,),
            start_new_session=True,
            cwd=os.getcwd(),
        )
    finally:
        os.close(wfd)
        logf.close()
    with os.fdopen(rfd, "rb") as r:
        line = r.readline().decode(errors="replace").strip()
    if line.startswith("error "):
        proc.wait(timeout=10)
        fail(line[6:])
    if line != "ok":
        code = proc.wait(timeout=10)
        fail(
            f"the daemon exited at start (status {code}); see {home / 'daemon.out'} and {home / 'daemon.log'}"
        )
    info = daemon_alive(home)
    if not info:
        fail(f"the daemon started but does not answer; see {home / 'daemon.log'}")
    return info


def stop_daemon(home: Path, *, reload: bool = False) -> dict[str, Any] | None:
    """Ask the daemon to stop and return once it has exited (its connection closes)."""
    try:
        c = client(home, timeout=None)
    except ProtocolError:
        return None
    with c:
        info: dict[str, Any] = c.call("ping")
        info["running"] = (c.call("shutdown", reload=reload or None) or {}).get("running") or []
        try:
            for _ in c.stream("subscribe", read_timeout=60):
                pass
        except ProtocolError as exc:
            if exc.code != ERR_NO_DAEMON:
                raise
    return info


def stop_keeper(home: Path) -> bool:
    """A keeper left without a daemon (the daemon was killed): end it and its agents."""
    from supervisor.pty.keeperclient import KeeperClient, KeeperError

    try:
        with KeeperClient.connect(str(home / "keeper.sock"), subscribe=False) as k:
            k.shutdown(2.0)
    except KeeperError:
        return False
    return True


def read_text(words: list[str]) -> str:
    text = " ".join(words)
    if text == "-":
        raw = sys.stdin.buffer.read()
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            fail(
                f"the task text on stdin is not valid UTF-8 (byte {raw[exc.start]:#04x} at offset "
                f"{exc.start}); convert it (e.g. `iconv -f latin1 -t utf-8`)"
            )
    if not text.strip():
        fail("the task text is empty")
    return text
