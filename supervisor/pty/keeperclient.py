"""The daemon's side of the keeper: its connection, and the `PtyProcess` whose child it holds.

The keeper (pty/keeper.py, a separate process) spawns the agents and keeps their pty master
fds across daemon restarts; `KeeperClient` talks to it over its Unix socket and receives the
fds (SCM_RIGHTS); `KeeperPtyProcess` is the ordinary `PtyProcess` on such an fd, so the layers
above never know who the child's parent is.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import fcntl
import json
import os
import select
import signal
import socket
import struct
import termios
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from supervisor.pty.process import ExitStatus, PtyProcess, SpawnError

_MAX_RECV_FDS = 253  # SCM_MAX_FD: the most fds one message can carry
NUDGE_RESTORE = 0.5
"""Seconds after a repaint nudge before the size is restored if the child drew nothing."""


class KeeperError(Exception):
    """The keeper cannot be reached, did not answer in time, or refused a request."""


@dataclass(frozen=True)
class KeptChild:
    """A live child as the keeper lists it; `fd` is a master fd the caller now owns."""

    id: str
    pid: int
    fd: int
    argv: list[str]
    cwd: str
    started: float
    rows: int
    cols: int


@dataclass(frozen=True)
class KeeperExit:
    """A child's end as the keeper reaped it."""

    pid: int
    id: str
    status: ExitStatus


@dataclass
class _Watch:
    on_exit: Callable[[ExitStatus], None]
    on_lost: Callable[[], None] | None


class KeeperClient:
    """The daemon's connection to the keeper.

    Requests are blocking with a short timeout (a local round trip takes well under a
    millisecond), so `KeeperPtyProcess.start()` stays synchronous like `PtyProcess.start()`.
    Pushed exit events are read by ``attach(loop)`` (``loop.add_reader`` on the socket) and
    handed to the watcher of that pid on the loop (``call_soon``), never from inside a
    request. Without a loop they are read during requests and by `poll()`.
    """

    def __init__(self, sock: socket.socket, *, timeout: float = 2.0) -> None:
        sock.setblocking(False)
        self._sock: socket.socket | None = sock
        self.timeout = timeout
        self._buf = bytearray()
        self._fds: list[int] = []
        self._replies: dict[int, tuple[dict[str, object], list[int]]] = {}
        self._waiting: set[int] = set()
        self._next_req = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watchers: dict[int, _Watch] = {}
        self._error: str | None = None
        self.pending_exits: dict[int, KeeperExit] = {}
        """Exit events no watcher claimed yet (kept by the keeper until `collect_exits`)."""
        self.on_exit: Callable[[KeeperExit], None] | None = None
        """Called (on the loop) for an exit event that no `watch` claimed."""
        self.on_lost: Callable[[], None] | None = None
        """Called (on the loop) when the connection ends."""

    @classmethod
    def connect(cls, path: str, *, timeout: float = 2.0, subscribe: bool = True) -> KeeperClient:
        """Connect; with `subscribe` this connection gets the exit events (one daemon at a time)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except OSError as exc:
            sock.close()
            raise KeeperError(f"cannot reach the keeper at {path}: {exc}") from exc
        client = cls(sock, timeout=timeout)
        if subscribe:
            client.request("subscribe")
        return client

    @property
    def closed(self) -> bool:
        return self._sock is None

    # -- requests --------------------------------------------------------------------
    def request(
        self, op: str, *, timeout: float | None = None, **fields: object
    ) -> tuple[dict[str, object], list[int]]:
        """Send one request and wait for its answer; returns (answer, fds the caller owns)."""
        if self._sock is None:
            raise KeeperError(f"not connected to the keeper{self._why()}")
        self._next_req += 1
        req = self._next_req
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        data = (json.dumps({"op": op, "req": req, **fields}, separators=(",", ":")) + "\n").encode()
        self._waiting.add(req)
        try:
            self._send_all(data, deadline)
            while req not in self._replies:
                self._pump(deadline, op)
        finally:
            self._waiting.discard(req)
        reply, fds = self._replies.pop(req)
        if not reply.get("ok"):
            _close_fds(fds)
            raise KeeperError(str(reply.get("error") or f"{op} failed"))
        return reply, fds

    def ping(self) -> dict[str, object]:
        return self.request("ping")[0]

    def spawn(
        self,
        name: str,
        argv: Sequence[str],
        *,
        cwd: str,
        env: Mapping[str, str],
        rows: int = 40,
        cols: int = 120,
    ) -> tuple[int, int]:
        """Have the keeper start `argv` on a new pty: (pid, master fd). Errors: KeeperError."""
        reply, fds = self.request(
            "spawn", id=name, argv=list(argv), cwd=cwd, env=dict(env), rows=rows, cols=cols,
            timeout=max(self.timeout, 10.0),
        )
        pid = reply.get("pid")
        if len(fds) != 1 or not isinstance(pid, int):
            _close_fds(fds)
            raise KeeperError(f"the keeper answered spawn without a pid and fd: {reply}")
        return pid, fds[0]

    def list_children(self) -> tuple[list[KeptChild], list[KeeperExit]]:
        """Every live child (with a master fd each, now the caller's) and the unreported exits."""
        reply, fds = self.request("list")
        raw = reply.get("children")
        kids = raw if isinstance(raw, list) else []
        if len(kids) != len(fds):
            _close_fds(fds)
            raise KeeperError(f"the keeper listed {len(kids)} children with {len(fds)} fds")
        children = [
            KeptChild(
                id=str(c["id"]), pid=int(c["pid"]), fd=fd, argv=[str(a) for a in c.get("argv", [])],
                cwd=str(c.get("cwd", "")), started=float(c.get("started", 0.0)),
                rows=int(c.get("rows", 0)), cols=int(c.get("cols", 0)),
            )
            for c, fd in zip(kids, fds, strict=True)
        ]
        exits = reply.get("exits")
        return children, [_exit_from(e) for e in (exits if isinstance(exits, list) else [])]

    def rename(self, old: str, new: str) -> None:
        """The child kept as `old` is `new` from now on (a keeper older than this says
        it does not know the request: the KeeperError says so)."""
        self.request("rename", id=old, new=new)

    def signal(self, pid: int, sig: int) -> None:
        """Signal a live child's process group (the keeper refuses pids it does not own)."""
        self.request("signal", pid=pid, sig=int(sig))

    def collect_exits(self) -> list[KeeperExit]:
        """Every exit not yet collected (the keeper forgets them now)."""
        reply, _ = self.request("exits")
        raw = reply.get("exits")
        got = {e.pid: e for e in (_exit_from(x) for x in (raw if isinstance(raw, list) else []))}
        for pid, ev in self.pending_exits.items():
            got.setdefault(pid, ev)
        self.pending_exits.clear()
        return list(got.values())

    def shutdown(self, grace: float = 2.0, *, wait: bool = True) -> None:
        """End every child (SIGHUP, SIGTERM, SIGKILL, `grace` s apart), then the keeper.

        With `wait`, return once the keeper closed the connection (it has exited).
        """
        self.request("shutdown", grace=grace)
        if wait:
            deadline = time.monotonic() + 2 * grace + 5.0
            while self._sock is not None:
                self._pump(deadline, "shutdown")

    def close(self) -> None:
        self._lost("closed")

    def __enter__(self) -> KeeperClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- events ----------------------------------------------------------------------
    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Receive pushed events on `loop` (idempotent)."""
        if self._loop is loop or self._sock is None:
            return
        if self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())
        self._loop = loop
        loop.add_reader(self._sock.fileno(), self._read_available)
        if self._buf or self.pending_exits:
            loop.call_soon(self._parse)

    def watch(
        self, pid: int, on_exit: Callable[[ExitStatus], None], on_lost: Callable[[], None] | None = None
    ) -> None:
        """Call `on_exit(status)` when the keeper reports `pid`'s end (or now, if it did);
        `on_lost()` if the connection ends first."""
        ev = self.pending_exits.pop(pid, None)
        if ev is not None:
            self._deliver(on_exit, ev.status)
            self._ack([pid])
            return
        self._watchers[pid] = _Watch(on_exit, on_lost)

    def unwatch(self, pid: int) -> None:
        self._watchers.pop(pid, None)

    def poll(self) -> None:
        """Without a loop: read whatever has arrived (events included), without waiting."""
        self._read_available()

    def wait_exit(self, pid: int, timeout: float | None = None) -> ExitStatus:
        """Without a loop (CLI, tests): block until the keeper reports `pid`'s end."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while pid not in self.pending_exits:
            self._pump(deadline, f"the exit of pid {pid}")
        ev = self.pending_exits.pop(pid)
        self._ack([pid])
        return ev.status

    def process_factory(self, name: str) -> Callable[..., KeeperPtyProcess]:
        """A `process_factory` for `Agent`: spawns through this keeper under `name`."""

        def factory(argv: Sequence[str], **kw: object) -> KeeperPtyProcess:
            return KeeperPtyProcess(argv, client=self, name=name, **kw)  # type: ignore[arg-type]

        return factory

    # -- wire ------------------------------------------------------------------------
    def _why(self) -> str:
        return f" ({self._error})" if self._error else ""

    def _send_all(self, data: bytes, deadline: float) -> None:
        view = memoryview(data)
        while view:
            sock = self._sock
            if sock is None:
                raise KeeperError(f"the keeper closed the connection{self._why()}")
            try:
                n = sock.send(view)
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0 or not select.select([], [sock], [], left)[1]:
                    raise KeeperError("timed out sending to the keeper") from None
                continue
            except OSError as exc:
                self._lost(str(exc))
                raise KeeperError(f"the keeper connection failed: {exc}") from exc
            view = view[n:]

    def _pump(self, deadline: float, op: str) -> None:
        sock = self._sock
        if sock is None:
            raise KeeperError(f"the keeper closed the connection{self._why()}")
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([sock], [], [], left)[0]:
            raise KeeperError(f"the keeper did not answer {op} in time")
        self._read_available()

    def _read_available(self) -> None:
        sock = self._sock
        if sock is None:
            return
        try:
            data, anc, flags, _ = sock.recvmsg(
                65536, socket.CMSG_SPACE(_MAX_RECV_FDS * 4), socket.MSG_CMSG_CLOEXEC
            )
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._lost(str(exc))
            return
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(payload[: len(payload) - len(payload) % fds.itemsize])
                self._fds.extend(fds)
        if flags & socket.MSG_CTRUNC:
            self._error = "file descriptors were lost in transit (MSG_CTRUNC)"
        if not data:
            self._lost("the keeper closed the connection")
            return
        self._buf += data
        self._parse()

    def _parse(self) -> None:
        while True:
            nl = self._buf.find(b"\n")
            if nl < 0:
                return
            line = bytes(self._buf[:nl])
            del self._buf[: nl + 1]
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if not isinstance(msg, dict):
                continue
            nfds = msg.get("nfds", 0)
            n = nfds if isinstance(nfds, int) and nfds > 0 else 0
            fds, self._fds = self._fds[:n], self._fds[n:]
            if msg.get("event") == "exit":
                self._on_exit_event(_exit_from(msg))
                continue
            req = msg.get("req")
            if isinstance(req, int) and req in self._waiting:
                self._replies[req] = (msg, fds)
            else:  # a late answer to a request that timed out, or a refusal
                _close_fds(fds)
                if msg.get("ok") is False:
                    self._error = str(msg.get("error"))

    def _on_exit_event(self, ev: KeeperExit) -> None:
        watch = self._watchers.pop(ev.pid, None)
        if watch is not None:
            self._deliver(watch.on_exit, ev.status)
            self._ack([ev.pid])
            return
        self.pending_exits[ev.pid] = ev
        if self.on_exit is not None:
            self._deliver(self._unclaimed, ev)

    def _unclaimed(self, ev: KeeperExit) -> None:
        # Checked when it runs: a `watch` right after `spawn` claims a quick exit first.
        if self.on_exit is not None and self.pending_exits.get(ev.pid) is ev:
            self.on_exit(ev)

    def _deliver(self, fn: Callable[..., None], arg: object) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon(fn, arg)
        else:
            fn(arg)

    def _ack(self, pids: list[int]) -> None:
        """Tell the keeper these exits were consumed (no answer expected)."""
        sock = self._sock
        if sock is None:
            return
        data = (json.dumps({"op": "ack", "pids": pids}) + "\n").encode()
        with contextlib.suppress(KeeperError):
            self._send_all(data, time.monotonic() + self.timeout)

    def _lost(self, why: str) -> None:
        sock, self._sock = self._sock, None
        if sock is None:
            return
        self._error = self._error or why
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(sock.fileno())
        sock.close()
        _close_fds(self._fds)
        self._fds = []
        watchers, self._watchers = self._watchers, {}
        callbacks = [w.on_lost for w in watchers.values() if w.on_lost is not None]
        if self.on_lost is not None:
            callbacks.append(self.on_lost)
        for cb in callbacks:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.call_soon(cb)
            else:
                cb()


def _close_fds(fds: Sequence[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def _exit_from(raw: object) -> KeeperExit:
    d = raw if isinstance(raw, dict) else {}
    code, sig = d.get("code"), d.get("signal")
    return KeeperExit(
        pid=int(d.get("pid", 0)),
        id=str(d.get("id", "")),
        status=ExitStatus(code if isinstance(code, int) else None, sig if isinstance(sig, int) else None),
    )


class KeeperPtyProcess(PtyProcess):
    """A `PtyProcess` whose child the keeper spawned (and keeps alive across daemon restarts).

    Reading, writing and resizing are PtyProcess's own code on the master fd received
    from the keeper. The exit is noticed through a pidfd on the (non-child) pid; its status
    comes from the keeper's exit event. `adopt()` takes over a child a previous daemon
    started (same pid) and nudges it to repaint.
    """

    _serial = 0

    def __init__(
        self,
        argv: Sequence[str],
        *,
        client: KeeperClient,
        name: str | None = None,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        rows: int = 40,
        cols: int = 120,
    ) -> None:
        super().__init__(argv, cwd=cwd, env=env, rows=rows, cols=cols)
        self.client = client
        if name is None:
            KeeperPtyProcess._serial += 1
            base = os.path.basename(self.argv[0]) if self.argv else "agent"
            name = f"{base}-{os.getpid()}-{KeeperPtyProcess._serial}"
        self.name = name
        self._dead = False  # the pidfd fired, or the pid was already gone
        self._nudge: asyncio.TimerHandle | None = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Ask the keeper to spawn the child; raises SpawnError with the keeper's reason."""
        self._loop = loop or asyncio.get_running_loop()
        if not self.argv or not self.argv[0]:
            raise SpawnError("empty command")
        try:
            pid, fd = self.client.spawn(
                self.name, self.argv, cwd=self.cwd or os.getcwd(), env=self.env,
                rows=self.rows, cols=self.cols,
            )
        except KeeperError as exc:
            raise SpawnError(str(exc)) from exc
        self._attach(pid, fd)

    @classmethod
    def adopt(
        cls,
        pid: int,
        fd: int,
        *,
        client: KeeperClient,
        name: str | None = None,
        argv: Sequence[str] = (),
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        rows: int | None = None,
        cols: int | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
        nudge: bool = True,
    ) -> KeeperPtyProcess:
        """Take over a live child (from `KeeperClient.list_children()`): same pid, its master `fd`.

        Set `on_output` / `on_exit` right after this returns (before the loop runs again).
        The daemon's new emulator starts blank, so by default the child is nudged to
        repaint: the window shrinks by a row, then is restored at its first output.
        """
        cur_rows, cur_cols = _window_size(fd)
        proc = cls(
            argv, client=client, name=name, cwd=cwd, env=env,
            rows=rows or cur_rows or 40, cols=cols or cur_cols or 120,
        )
        proc._loop = loop or asyncio.get_running_loop()
        proc._attach(pid, fd)
        if rows is not None and cols is not None and (rows, cols) != (cur_rows, cur_cols):
            proc.resize(rows, cols)  # the kernel sends SIGWINCH: that repaints by itself
        elif nudge:
            proc.nudge_repaint()
        return proc

    def _attach(self, pid: int, fd: int) -> None:
        assert self._loop is not None
        self.pid, self.fd = pid, fd
        os.set_blocking(fd, False)
        self._loop.add_reader(fd, self._on_readable)
        self.client.attach(self._loop)
        try:
            self._pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            self._pidfd = None
            self._dead = True
        except OSError:  # very old kernels: the keeper's event alone reports the end
            self._pidfd = None
        else:
            self._loop.add_reader(self._pidfd, self._on_pidfd)
        self.client.watch(pid, self._set_exit, self._on_keeper_lost)

    # -- exit ------------------------------------------------------------------------
    def _on_pidfd(self) -> None:
        self._drop_pidfd()
        self._dead = True
        if self.client.closed:
            self._set_exit(ExitStatus(None, None))  # no keeper left to tell the status
        # otherwise the keeper's exit event (already on its way) finishes it

    def _on_keeper_lost(self) -> None:
        if self._dead:
            self._set_exit(ExitStatus(None, None))

    def _reap(self, *, blocking: bool) -> bool:
        return self.exit_status is not None  # the keeper reaps; its event sets the status

    def _set_exit(self, status: ExitStatus) -> None:
        if self.exit_status is not None:
            return
        self.exit_status = status
        self._drop_pidfd()
        if self.pid is not None:
            self.client.unwatch(self.pid)
        if self._nudge is not None:
            self._nudge.cancel()
            self._nudge = None
        if self._loop is not None:
            self._loop.call_soon(self._finish)

    def detach(self) -> None:
        if self.pid is not None:
            self.client.unwatch(self.pid)
        super().detach()

    def _drop_pidfd(self) -> None:
        if self._pidfd is None:
            return
        if self._loop is not None:
            self._loop.remove_reader(self._pidfd)
        os.close(self._pidfd)
        self._pidfd = None

    # -- control ---------------------------------------------------------------------
    def signal(self, sig: int) -> None:
        if not self.alive or self.pid is None:
            return
        try:
            self.client.signal(self.pid, sig)
        except KeeperError:
            # No keeper to ask (or it reaped the child a moment ago): the pidfd cannot hit
            # a reused pid.
            if self._pidfd is not None:
                with contextlib.suppress(OSError):
                    signal.pidfd_send_signal(self._pidfd, sig)

    def nudge_repaint(self) -> None:
        """Make the child redraw: shrink the window by a row, restore it at its next output."""
        if self.fd is None or self._loop is None:
            return
        rows = self.rows - 1 if self.rows > 1 else self.rows + 1
        with contextlib.suppress(OSError):
            fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, self.cols, 0, 0))
        if self._nudge is not None:
            self._nudge.cancel()
        self._nudge = self._loop.call_later(NUDGE_RESTORE, self._end_nudge)

    def _end_nudge(self) -> None:
        if self._nudge is not None:
            self._nudge.cancel()
            self._nudge = None
            with contextlib.suppress(OSError):
                self.resize(self.rows, self.cols)

    def _on_readable(self) -> None:
        super()._on_readable()
        if self._nudge is not None:
            self._end_nudge()


def _window_size(fd: int) -> tuple[int, int]:
    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        return 0, 0
    return rows, cols
