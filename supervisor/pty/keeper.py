"""The keeper: the small, long-lived parent of every agent, so agents outlive the daemon.

``staff up`` starts it in its own session (``python -m supervisor.pty.keeper --socket PATH``).
It spawns each agent on a fresh pty (openpty + fork + setsid + TIOCSCTTY + dup2 +
execvpe, with a close-on-exec error pipe so a missing command or a bad cwd comes back as
a clear error), holds the pty master fds, reaps the children (SIGCHLD through the signal
wakeup fd: no polling) and keeps the exit status of each dead child until the daemon has
collected it. The daemon talks to it over a Unix socket (mode 0600, peer uid checked with
SO_PEERCRED) in JSON lines and receives the master fds with SCM_RIGHTS; it then reads and
writes them itself. The keeper never reads or writes a child's pty data.

Every agent gets ``PR_SET_PDEATHSIG(SIGHUP)`` before exec, so if the keeper itself dies,
its children die with it and none lingers.

STDLIB ONLY: this file must keep running across daemon upgrades, so it imports nothing
from the rest of the package and can be run by path (``python -I .../keeper.py``).

Protocol (one JSON object per line, both ways). A request carries ``op`` and, if it
wants an answer, ``req`` (any JSON value, echoed back). Answers are
``{"req": R, "ok": true, ...}`` or ``{"req": R, "ok": false, "error": "..."}``; an answer
with ``"nfds": N`` came with N file descriptors (SCM_RIGHTS, in order, attached to the
bytes of that line). Requests:

- ``ping`` → ``{pid, children, version}``
- ``subscribe`` → this connection receives pushed events; it replaces (closes) the
  previous subscriber (one daemon at a time).
- ``spawn {id, argv, cwd, env, rows, cols}`` → ``{pid}`` + the master fd.
- ``list`` → ``{children: [{id, pid, argv, cwd, started, rows, cols}], exits: [...]}`` +
  one master fd per child, in order.
- ``signal {pid, sig}`` → signals the child's process group (only live children).
- ``exits`` → ``{exits: [...]}`` and forgets them (collected).
- ``ack {pids}`` → forgets those exits (the daemon consumed the pushed events).
- ``shutdown {grace}`` → ends every child (SIGHUP, then SIGTERM, then SIGKILL, ``grace``
  seconds apart), then the keeper exits.

Pushed event: ``{"event": "exit", "pid", "id", "code", "signal", "ended"}``; an exit stays
listed (``list``/``exits``) until acknowledged or collected.
"""

from __future__ import annotations

import argparse
import array
import contextlib
import ctypes
import errno
import fcntl
import json
import os
import select
import selectors
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
from dataclasses import dataclass, field
from typing import Any

VERSION = 1
MAX_LINE = 4 * 1024 * 1024
"""Longest request line accepted (the environment travels in `spawn`)."""
MAX_CONNECTIONS = 32
FDS_PER_MESSAGE = 250
"""SCM_RIGHTS carries at most 253 fds per message; more are spread over several sends."""
SEND_TIMEOUT = 5.0
"""A client that does not take an answer within this long is dropped."""
KILL_WAIT = 2.0
"""After SIGKILL, how long shutdown waits for the last children before exiting anyway."""
PR_SET_PDEATHSIG = 1
MAX_KEPT_EXITS = 10000


@dataclass
class Child:
    id: str
    pid: int
    fd: int
    argv: list[str]
    cwd: str
    started: float

    def describe(self) -> dict[str, Any]:
        rows, cols = window_size(self.fd)
        return {
            "id": self.id,
            "pid": self.pid,
            "argv": self.argv,
            "cwd": self.cwd,
            "started": self.started,
            "rows": rows,
            "cols": cols,
        }


@dataclass(eq=False)
class Conn:
    sock: socket.socket
    peer_pid: int
    buf: bytearray = field(default_factory=bytearray)


Reply = tuple[dict[str, Any], list[int]]
"""A request handler's answer: the JSON fields and the fds to send with them."""


class RequestError(Exception):
    """A request that cannot be served; the message goes back to the client."""


def window_size(fd: int) -> tuple[int, int]:
    try:
        packed = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
    except OSError:
        return 0, 0
    rows, cols, _, _ = struct.unpack("HHHH", packed)
    return rows, cols


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a Unix socket."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    return pid, uid, gid


def send_message(sock: socket.socket, msg: dict[str, Any], fds: list[int] | None = None) -> None:
    """Send one JSON line, with `fds` attached to its bytes (blocking, with the socket's timeout)."""
    fds = fds or []
    if fds:
        msg = dict(msg, nfds=len(fds))
    data = (json.dumps(msg, separators=(",", ":")) + "\n").encode()
    pos = 0
    groups = [fds[i : i + FDS_PER_MESSAGE] for i in range(0, len(fds), FDS_PER_MESSAGE)]
    for i, group in enumerate(groups):
        # Every group but the last rides on a single byte; the last takes the rest.
        end = pos + 1 if i < len(groups) - 1 else len(data)
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", group))]
        pos += sock.sendmsg([data[pos:end]], anc)
    if pos < len(data):
        sock.sendall(data[pos:])


def _load_libc() -> Any:
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _load_libc()


def _child_error(errpipe: int, stage: str, exc: BaseException) -> None:
    code = getattr(exc, "errno", None) or 0
    with contextlib.suppress(BaseException):
        os.write(errpipe, f"{stage}:{code}:{exc}".encode(errors="replace")[:4000])
    os._exit(127)


def _exec_child(
    master: int, slave: int, errpipe: int, keeper_pid: int, argv: list[str], cwd: str, env: dict[str, str]
) -> None:
    """In the forked child: become a session leader on the pty, then exec. Never returns."""
    try:
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGHUP, signal.SIGINT, signal.SIGTERM,
                    signal.SIGCHLD, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        os.close(master)
        os.setsid()
        fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
        for target in (0, 1, 2):
            os.dup2(slave, target)
        if slave > 2:
            os.close(slave)
        if _LIBC is not None:
            _LIBC.prctl(PR_SET_PDEATHSIG, int(signal.SIGHUP), 0, 0, 0)
        if os.getppid() != keeper_pid:  # the keeper died before the prctl took effect
            os._exit(1)
    except BaseException as exc:
        _child_error(errpipe, "setup", exc)
    try:
        os.chdir(cwd)
    except BaseException as exc:
        _child_error(errpipe, "chdir", exc)
    try:
        os.execvpe(argv[0], argv, env)
    except BaseException as exc:
        _child_error(errpipe, "exec", exc)
    os._exit(127)


def _spawn_error(stage: str, code: int, detail: str, argv0: str, cwd: str, env: dict[str, str]) -> str:
    if stage == "chdir":
        if code == errno.ENOENT:
            return f"working directory does not exist: {cwd}"
        if code == errno.ENOTDIR:
            return f"working directory is not a directory: {cwd}"
        if code == errno.EACCES:
            return f"working directory not accessible: {cwd}"
        return f"cannot enter working directory {cwd}: {detail}"
    if stage == "exec":
        if code == errno.ENOENT:
            if "/" in argv0:
                return f"command not found: {argv0}"
            return f"command not found: {argv0} (PATH={env.get('PATH', os.defpath)})"
        if code == errno.EACCES:
            return f"permission denied: {argv0}"
        if code == errno.ENOEXEC:
            return f"exec format error: {argv0}"
        return f"cannot start {argv0}: {detail}"
    return f"cannot set up the child's terminal: {detail}"


def spawn_child(
    argv: list[str], cwd: str, env: dict[str, str], rows: int, cols: int
) -> tuple[int, int]:
    """Fork `argv` on a new pty; return (pid, master fd). Raises RequestError with a clear reason."""
    master, slave = os.openpty()  # both close-on-exec
    try:
        fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        err_r, err_w = os.pipe()  # close-on-exec: EOF at a successful exec
    except BaseException:
        os.close(master)
        os.close(slave)
        raise
    keeper_pid = os.getpid()
    try:
        pid = os.fork()
    except OSError as exc:
        for fd in (master, slave, err_r, err_w):
            os.close(fd)
        raise RequestError(f"cannot fork: {exc}") from exc
    if pid == 0:  # pragma: no cover - the child execs
        os.close(err_r)
        _exec_child(master, slave, err_w, keeper_pid, argv, cwd, env)
    os.close(slave)
    os.close(err_w)
    chunks = []
    try:
        while True:
            try:
                chunk = os.read(err_r, 4096)
            except InterruptedError:  # pragma: no cover - PEP 475 retries
                continue
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(err_r)
    if not chunks:
        return pid, master
    os.close(master)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)
    stage, _, rest = b"".join(chunks).decode(errors="replace").partition(":")
    code_text, _, detail = rest.partition(":")
    try:
        code = int(code_text)
    except ValueError:
        code = 0
    raise RequestError(_spawn_error(stage, code, detail, argv[0], cwd, env))


class Keeper:
    """The keeper's state and its single-threaded selector loop."""

    def __init__(self, socket_path: str, *, log: Any = None) -> None:
        self.socket_path = socket_path
        self.children: dict[int, Child] = {}
        self.exits: dict[int, dict[str, Any]] = {}
        self.conns: dict[int, Conn] = {}
        self.subscriber: Conn | None = None
        self.sel = selectors.DefaultSelector()
        self.running = False
        self.stopping = False
        self._phases: list[tuple[int, float]] = []
        self._deadline: float | None = None
        self._log = log if log is not None else sys.stderr
        self.listener: socket.socket | None = None
        self._wake_r = self._wake_w = -1
        self._socket_ino: int | None = None

    # -- setup ---------------------------------------------------------------------------
    def log(self, text: str) -> None:
        with contextlib.suppress(Exception):
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            self._log.write(f"{stamp} keeper[{os.getpid()}]: {text}\n")
            self._log.flush()

    def listen(self) -> None:
        """Bind the socket (0600); refuse to take over the socket of a live keeper."""
        path = self.socket_path
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, mode=0o700, exist_ok=True)
        if os.path.exists(path):
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            probe.settimeout(1.0)
            try:
                probe.connect(path)
            except OSError:
                os.unlink(path)  # stale: nobody listens
            else:
                raise RuntimeError(f"another keeper is already listening on {path}")
            finally:
                probe.close()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(path)
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        self._socket_ino = os.stat(path).st_ino
        sock.listen(16)
        sock.setblocking(False)
        self.listener = sock
        self.sel.register(sock, selectors.EVENT_READ, "listen")
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: None)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        self.sel.register(self._wake_r, selectors.EVENT_READ, "signal")

    # -- loop ----------------------------------------------------------------------------
    def serve_forever(self) -> None:
        self.running = True
        self.log(f"listening on {self.socket_path}")
        self._reap()  # a child may have died before the handlers were in place
        while self.running:
            timeout = None
            if self._deadline is not None:
                timeout = max(0.0, self._deadline - time.monotonic())
            for key, _ in self.sel.select(timeout):
                if key.data == "listen":
                    self._accept()
                elif key.data == "signal":
                    self._on_signals()
                elif isinstance(key.data, Conn):
                    self._on_readable(key.data)
            if self._deadline is not None and time.monotonic() >= self._deadline:
                self._next_phase()
        self._close()

    def _close(self) -> None:
        for conn in list(self.conns.values()):
            self._drop(conn)
        if self.listener is not None:
            with contextlib.suppress(OSError):
                if os.stat(self.socket_path).st_ino == self._socket_ino:
                    os.unlink(self.socket_path)
            self.sel.unregister(self.listener)
            self.listener.close()
            self.listener = None
        signal.set_wakeup_fd(-1)
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        for child in self.children.values():
            with contextlib.suppress(OSError):
                os.close(child.fd)
        self.log("stopped")

    def _on_signals(self) -> None:
        try:
            data = os.read(self._wake_r, 512)
        except BlockingIOError:
            return
        sigs = set(data)
        if signal.SIGCHLD in sigs:
            self._reap()
        if (signal.SIGTERM in sigs or signal.SIGINT in sigs) and not self.stopping:
            self.log("terminating on signal")
            self.begin_shutdown(2.0)

    # -- connections ---------------------------------------------------------------------
    def _accept(self) -> None:
        assert self.listener is not None
        try:
            sock, _ = self.listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        try:
            pid, uid, _ = peer_credentials(sock)
        except OSError:
            sock.close()
            return
        if uid != os.getuid():
            self.log(f"refused a connection from uid {uid} (pid {pid})")
            with contextlib.suppress(OSError):
                sock.setblocking(False)
                sock.send(b'{"ok":false,"error":"permission denied: wrong uid"}\n')
            sock.close()
            return
        if len(self.conns) >= MAX_CONNECTIONS:
            with contextlib.suppress(OSError):
                sock.setblocking(False)
                sock.send(b'{"ok":false,"error":"too many connections"}\n')
            sock.close()
            return
        sock.settimeout(SEND_TIMEOUT)
        conn = Conn(sock, pid)
        self.conns[sock.fileno()] = conn
        self.sel.register(sock, selectors.EVENT_READ, conn)

    def _drop(self, conn: Conn) -> None:
        fd = conn.sock.fileno()
        if fd >= 0 and self.conns.get(fd) is conn:
            del self.conns[fd]
            with contextlib.suppress(KeyError, ValueError):
                self.sel.unregister(conn.sock)
        if self.subscriber is conn:
            self.subscriber = None
        conn.sock.close()

    def _send(self, conn: Conn, msg: dict[str, Any], fds: list[int] | None = None) -> bool:
        try:
            send_message(conn.sock, msg, fds)
        except OSError as exc:
            self.log(f"dropping client pid {conn.peer_pid}: {exc}")
            self._drop(conn)
            return False
        return True

    def _on_readable(self, conn: Conn) -> None:
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError, TimeoutError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        conn.buf += data
        while self.conns.get(conn.sock.fileno()) is conn:
            nl = conn.buf.find(b"\n")
            if nl < 0:
                if len(conn.buf) > MAX_LINE:
                    self._send(conn, {"ok": False, "error": f"request longer than {MAX_LINE} bytes"})
                    self._drop(conn)
                return
            line = bytes(conn.buf[:nl])
            del conn.buf[: nl + 1]
            if line.strip():
                self._handle_line(conn, line)

    def _handle_line(self, conn: Conn, line: bytes) -> None:
        try:
            msg = json.loads(line)
        except ValueError:
            self._send(conn, {"req": None, "ok": False, "error": "malformed JSON"})
            return
        if not isinstance(msg, dict):
            self._send(conn, {"req": None, "ok": False, "error": "a request is a JSON object"})
            return
        req = msg.get("req")
        op = msg.get("op")
        handler = getattr(self, f"op_{op}", None) if isinstance(op, str) and op.isidentifier() else None
        fds: list[int] = []
        if handler is None:
            reply: dict[str, Any] = {"ok": False, "error": f"unknown op: {op!r}"}
        else:
            try:
                reply, fds = handler(conn, msg)
                reply = {"ok": True, **reply}
            except RequestError as exc:
                reply = {"ok": False, "error": str(exc)}
            except Exception as exc:  # a keeper bug must not take the agents down
                self.log(f"error in {op}: {exc!r}")
                reply = {"ok": False, "error": f"keeper error: {exc!r}"}
        if "req" in msg or not reply["ok"]:
            self._send(conn, {"req": req, **reply}, fds)

    # -- requests ------------------------------------------------------------------------
    def op_ping(self, conn: Conn, msg: dict[str, Any]) -> Reply:
        return {"pid": os.getpid(), "children": len(self.children), "version": VERSION}, []

    def op_subscribe(self, conn: Conn, msg: dict[str, Any]) -> Reply:
        old = self.subscriber
        self.subscriber = conn
        if old is not None and old is not conn:
            self.log(f"client pid {conn.peer_pid} replaces client pid {old.peer_pid}")
            self._drop(old)
        return {}, []

    def op_spawn(self, conn: Conn, msg: dict[str, Any]) -> Reply:
        if self.stopping:
            raise RequestError("the keeper is shutting down")
        name = msg.get("id")
        argv = msg.get("argv")
        cwd = msg.get("cwd") or os.getcwd()
        env = msg.get("env")
        rows, cols = msg.get("rows", 40), msg.get("cols", 120)
        if not isinstance(name, str) or not name:
            raise RequestError("spawn needs an id (the agent's name)")
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv) or not argv[0]:
            raise RequestError("argv must be a non-empty list of strings")
        if not isinstance(cwd, str):
            raise RequestError("cwd must be a string")
        if env is None:
            env = dict(os.environ)
        if not isinstance(env, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in env.items()
        ):
            raise RequestError("env must map strings to strings")
        if not all(isinstance(n, int) and 0 < n < 65536 for n in (rows, cols)):
            raise RequestError("rows and cols must be positive integers")
        for child in self.children.values():
            if child.id == name:
                raise RequestError(f"agent {name} is already running (pid {child.pid})")
        pid, fd = spawn_child(argv, cwd, env, rows, cols)
        self.children[pid] = Child(name, pid, fd, list(argv), cwd, time.time())
        self.exits.pop(pid, None)  # a reused pid: the old record is history
        self.log(f"spawned {name} pid {pid}: {argv[0]}")
        return {"pid": pid}, [fd]

    def op_rename(self, conn: Conn, msg: dict[str, Any]) -> Reply:
        """A child's id follows its agent's new name (the daemon adopts children by id)."""
        old, new = msg.get("id"), msg.get("new")
        if not isinstance(old, str) or not isinstance(new, str) or not new:
            raise RequestError("rename needs id and new (agent names)")
        if any(c.id == new for c in self.children.values()):
            raise RequestError(f"agent {new} is already running")
        for child in self.children.values():
            if child.id == old:
                child.id = new
                self.log(f"renamed {old} to {new} (pid {child.pid})")
                return {"pid": child.pid}, []
        raise RequestError(f"no live child {old}")

    def op_list(self, conn: Conn, msg: dict[str, Any]) -> Reply:
        kids = sorted(self.children.values(), key=lambda c: c.started)
        return (
            {"children": [c.describe() for c in kids], "exits": list(self.exits.values())},
            [c.fd for c in kids],
        )

    def op_signal(self, conn: Conn, msg: dict[str, Any]) -> Reply:
        pid, sig = msg.get("pid"), msg.get("sig")
        if not isinstance(pid, int) or pid not in self.children:
            raise RequestError(f"no live child with pid {pid}")
        if not isinstance(sig, int) or not 0 <= sig < signal.NSIG:
            raise RequestError(f"bad signal: {sig!r}")
        self._signal(pid, sig)
        return {}, []

    def op_exits(self, conn: Conn, msg: dict[str, Any]) -> Reply:
        got = list(self.exits.values())
        self.exits.clear()
        return {"exits": got}, []

    def op_ack(self, conn: Conn, msg: dict[str, Any]) -> Reply:
        pids = msg.get("pids")
        if not isinstance(pids, list):
            raise RequestError("ack needs pids")
        for pid in pids:
            if isinstance(pid, int):
                self.exits.pop(pid, None)
        return {}, []

    def op_shutdown(self, conn: Conn, msg: dict[str, Any]) -> Reply:
        grace = msg.get("grace", 2.0)
        if not isinstance(grace, int | float) or grace < 0:
            raise RequestError("grace must be a non-negative number of seconds")
        self.begin_shutdown(float(grace))
        return {"children": len(self.children)}, []

    # -- children ------------------------------------------------------------------------
    def _signal(self, pid: int, sig: int) -> None:
        try:
            os.killpg(pid, sig)  # each child leads its own session and process group
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            child = self.children.pop(pid, None)
            if child is None:
                continue
            with contextlib.suppress(OSError):
                os.close(child.fd)
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
            sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
            record = {"pid": pid, "id": child.id, "code": code, "signal": sig, "ended": time.time()}
            self.exits[pid] = record
            while len(self.exits) > MAX_KEPT_EXITS:
                del self.exits[next(iter(self.exits))]
            self.log(f"{child.id} pid {pid} ended: code {code} signal {sig}")
            if self.subscriber is not None:
                self._send(self.subscriber, {"event": "exit", **record})
        if self.stopping and not self.children:
            self.running = False

    def begin_shutdown(self, grace: float) -> None:
        if self.stopping:
            return
        self.stopping = True
        self._phases = [(signal.SIGHUP, grace), (signal.SIGTERM, grace), (signal.SIGKILL, KILL_WAIT)]
        self._next_phase()

    def _next_phase(self) -> None:
        if not self.children:
            self.running = False
            self._deadline = None
            return
        if not self._phases:
            self.log(f"giving up on {len(self.children)} children")
            self.running = False
            self._deadline = None
            return
        sig, wait = self._phases.pop(0)
        for pid in list(self.children):
            self._signal(pid, sig)
        self._deadline = time.monotonic() + wait


def launch(
    socket_path: str, *, log_path: str | None = None, timeout: float = 10.0
) -> subprocess.Popen[bytes]:
    """Start a keeper in its own session and return once it listens (for `staff up`, tests).

    The keeper runs this very file with ``python -I`` (stdlib only, nothing else imported).
    The caller is its parent: reap it (``Popen.wait``) if it exits while the caller lives.
    """
    ready_r, ready_w = os.pipe()
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", os.path.abspath(__file__), "--socket", socket_path,
             "--ready-fd", str(ready_w)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            pass_fds=(ready_w,),
            start_new_session=True,
            close_fds=True,
        )
    finally:
        os.close(ready_w)
        if log_path and not isinstance(log, int):
            log.close()
    try:
        ready, _, _ = select.select([ready_r], [], [], timeout)
        got = os.read(ready_r, 64) if ready else b""
    finally:
        os.close(ready_r)
    if not got.startswith(b"ready"):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()
        raise RuntimeError(f"the keeper did not start (exit {proc.returncode}); see its log")
    return proc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m supervisor.pty.keeper", description=__doc__.split("\n")[0])
    p.add_argument("--socket", required=True, help="path of the Unix socket to listen on")
    p.add_argument("--ready-fd", type=int, default=None, help="write 'ready' to this fd once listening")
    args = p.parse_args(argv)
    keeper = Keeper(args.socket)
    try:
        keeper.listen()
    except (OSError, RuntimeError) as exc:
        print(f"keeper: {exc}", file=sys.stderr)
        return 3
    if args.ready_fd is not None:
        with contextlib.suppress(OSError):
            os.write(args.ready_fd, b"ready\n")
            os.close(args.ready_fd)
    keeper.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
