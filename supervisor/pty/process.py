"""One child program under its own pseudo-terminal, driven from the asyncio loop.

Reads use ``loop.add_reader`` on the master fd (never a thread per agent), writes never
block the loop (a buffer drained by ``add_writer``), and the child's exit is noticed
through a pidfd, so nothing here polls. Everything above this module sees only the
`ProcessLike` interface, so who the child's parent is (this daemon, or the keeper:
`keeperclient.KeeperPtyProcess`) can change without touching the screen, detector or
agent; the tests' simulated program (`tests/helpers/sim.py`) implements it too.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import errno
import fcntl
import os
import shutil
import signal
import struct
import termios
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import ptyprocess

READ_CHUNK = 65536
"""Bytes read per readiness callback: bounded, so one chatty agent cannot hog the loop."""


class SpawnError(Exception):
    """The program could not be started (not found, not executable, bad cwd)."""


@dataclass(frozen=True)
class ExitStatus:
    """How a child ended: an exit code or a signal number."""

    code: int | None
    signal: int | None

    @property
    def ok(self) -> bool:
        return self.code == 0

    def describe(self) -> str:
        if self.signal is None and self.code is None:
            return "ended (status unknown: its keeper is gone)"
        if self.signal is not None:
            try:
                name = signal.Signals(self.signal).name
            except ValueError:
                name = str(self.signal)
            return f"killed by {name}"
        return f"exit status {self.code}"

    @classmethod
    def from_wait(cls, status: int) -> ExitStatus:
        if os.WIFSIGNALED(status):
            return cls(None, os.WTERMSIG(status))
        return cls(os.WEXITSTATUS(status) if os.WIFEXITED(status) else None, None)


OutputCallback = Callable[[bytes, str], None]
ExitCallback = Callable[[ExitStatus], None]


@runtime_checkable
class ProcessLike(Protocol):
    """What an agent needs of its program's process. The agent sets `on_output` (each read:
    its bytes and their decoded text) and `on_exit` before `start()`."""

    pid: int | None
    exit_status: ExitStatus | None
    on_output: OutputCallback | None
    on_exit: ExitCallback | None

    @property
    def alive(self) -> bool: ...

    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Spawn the program; SpawnError with a reason a person can act on."""

    def write(self, data: bytes) -> None:
        """Queue input for the program; never blocks, dropped once it is gone."""

    def resize(self, rows: int, cols: int) -> None: ...

    def pause_reading(self) -> None:
        """Read nothing until `resume_reading()` (backpressure while the screen catches up)."""

    def resume_reading(self) -> None: ...

    def signal(self, sig: int) -> None: ...

    def stopped(self) -> bool:
        """The program is stopped (SIGSTOP, a debugger, job control): it reads and draws
        nothing until it is continued, so silence from it means nothing about its input."""

    def detach(self) -> None:
        """Stop watching the program without ending it (a reload: the next daemon adopts it)."""

    async def wait(self) -> ExitStatus:
        """The exit status, once the program ended and its output was read."""
        ...

    async def terminate(self, grace: float = 2.0) -> ExitStatus | None:
        """End the program: gentler signals first, each given `grace` seconds."""
        ...


class PtyProcess:
    """A child on a pty: spawn, stream output to a callback, write, resize, end (a `ProcessLike`)."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        rows: int = 40,
        cols: int = 120,
    ) -> None:
        self.argv = list(argv)
        self.cwd = cwd
        self.env = dict(env) if env is not None else dict(os.environ)
        self.rows, self.cols = rows, cols
        self.pid: int | None = None
        self.fd: int | None = None
        self.exit_status: ExitStatus | None = None
        self._proc: ptyprocess.PtyProcess | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pidfd: int | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._wbuf = bytearray()
        self._writing = False
        self._eof = False
        self._paused = False
        self.on_output: OutputCallback | None = None
        self.on_exit: ExitCallback | None = None
        self.bytes_read = 0

    # -- lifecycle -------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Spawn the child and start watching it; raises SpawnError with a clear reason."""
        self._loop = loop or asyncio.get_running_loop()
        argv0 = self.argv[0] if self.argv else ""
        if not argv0:
            raise SpawnError("empty command")
        path = self.env.get("PATH", os.defpath)
        if shutil.which(argv0, path=path) is None:
            raise SpawnError(f"command not found: {argv0} (PATH={path})")
        if self.cwd is not None and not os.path.isdir(self.cwd):
            raise SpawnError(f"working directory does not exist: {self.cwd}")
        try:
            self._proc = ptyprocess.PtyProcess.spawn(
                self.argv, cwd=self.cwd, env=self.env, dimensions=(self.rows, self.cols)
            )
        except (OSError, ptyprocess.PtyProcessError) as exc:
            raise SpawnError(f"cannot start {argv0}: {exc}") from exc
        self.pid = self._proc.pid
        self.fd = self._proc.fd
        os.set_blocking(self.fd, False)
        self._loop.add_reader(self.fd, self._on_readable)
        try:
            self._pidfd = os.pidfd_open(self.pid)
        except OSError:  # very old kernels: fall back to noticing EOF on the pty
            self._pidfd = None
        else:
            self._loop.add_reader(self._pidfd, self._on_pidfd)

    @property
    def alive(self) -> bool:
        return self.pid is not None and self.exit_status is None

    # -- reading ---------------------------------------------------------------------
    def _read_once(self) -> bool:
        """Read one bounded chunk; return False at EOF (or when nothing is there)."""
        assert self.fd is not None
        try:
            data = os.read(self.fd, READ_CHUNK)
        except BlockingIOError:
            return False
        except OSError as exc:  # EIO: the child side is closed
            if exc.errno not in (errno.EIO, errno.EBADF):
                raise
            data = b""
        if not data:
            self._on_eof()
            return False
        self.bytes_read += len(data)
        text = self._decoder.decode(data)
        if self.on_output is not None:
            self.on_output(data, text)
        return True

    def _on_readable(self) -> None:
        self._read_once()

    def pause_reading(self) -> None:
        """Stop reading until `resume_reading()`. The child blocks once the pty buffer is
        full: backpressure while the screen model catches up with a flood."""
        if not self._paused and self._loop is not None and self.fd is not None and not self._eof:
            self._loop.remove_reader(self.fd)
            self._paused = True

    def resume_reading(self) -> None:
        if not self._paused:
            return
        self._paused = False
        if self._loop is not None and self.fd is not None and not self._eof:
            self._loop.add_reader(self.fd, self._on_readable)

    def _on_eof(self) -> None:
        if self._eof:
            return
        self._eof = True
        if self._loop is not None and self.fd is not None:
            self._loop.remove_reader(self.fd)
        if self._pidfd is None:
            self._reap(blocking=True)

    def _on_pidfd(self) -> None:
        if self._reap(blocking=False) and not self._eof and self.fd is not None:
            # Drain what the child wrote before it died, then report.
            while self._read_once():
                pass

    def _reap(self, *, blocking: bool) -> bool:
        if self.pid is None or self.exit_status is not None:
            return self.exit_status is not None
        try:
            pid, status = os.waitpid(self.pid, 0 if blocking else os.WNOHANG)
        except ChildProcessError:
            pid, status = self.pid, 0
        if pid == 0:
            return False
        self.exit_status = ExitStatus.from_wait(status)
        if self._proc is not None:  # keep ptyprocess from waiting on it again
            self._proc.terminated = True
            self._proc.exitstatus = self.exit_status.code
            self._proc.signalstatus = self.exit_status.signal
        if self._pidfd is not None and self._loop is not None:
            self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        if self._loop is not None:
            self._loop.call_soon(self._finish)
        return True

    def _finish(self) -> None:
        if not self._eof and self.fd is not None:
            while self._read_once():
                pass
        self._close_fd()
        if self.on_exit is not None and self.exit_status is not None:
            self.on_exit(self.exit_status)

    def _close_fd(self) -> None:
        if self.fd is None:
            return
        if self._loop is not None:
            self._loop.remove_reader(self.fd)
            if self._writing:
                self._loop.remove_writer(self.fd)
                self._writing = False
        # Close through ptyprocess's file objects: they own the fd, and closing the bare
        # number here would let their finaliser close it again later, after the number
        # was reused by the next agent's pty (which then gets SIGHUP).
        with contextlib.suppress(OSError, ValueError):
            if self._proc is not None:
                self._proc.fileobj.close()
                self._proc.closed = True
            else:
                os.close(self.fd)
        self.fd = None

    def detach(self) -> None:
        """Stop watching the child and close our copy of its pty. For a keeper's child
        (a daemon reload) the keeper holds its own copy, so the child runs on."""
        self.on_output = None
        self.on_exit = None
        if self._pidfd is not None:
            if self._loop is not None:
                self._loop.remove_reader(self._pidfd)
            with contextlib.suppress(OSError):
                os.close(self._pidfd)
            self._pidfd = None
        self._close_fd()

    # -- writing ---------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        """Queue bytes for the child; never blocks. Dropped if the child is gone."""
        if self.fd is None or not data:
            return
        if self._wbuf:
            self._wbuf += data
            return
        try:
            n = os.write(self.fd, data)
        except BlockingIOError:
            n = 0
        except OSError:
            return
        if n < len(data):
            self._wbuf += data[n:]
            self._start_writer()

    def _start_writer(self) -> None:
        if not self._writing and self._loop is not None and self.fd is not None:
            self._loop.add_writer(self.fd, self._on_writable)
            self._writing = True

    def _on_writable(self) -> None:
        assert self.fd is not None
        try:
            n = os.write(self.fd, self._wbuf)
        except BlockingIOError:
            return
        except OSError:
            self._wbuf.clear()
            n = 0
        del self._wbuf[:n]
        if not self._wbuf and self._loop is not None:
            self._loop.remove_writer(self.fd)
            self._writing = False

    @property
    def pending_write(self) -> int:
        return len(self._wbuf)

    # -- control ---------------------------------------------------------------------
    def resize(self, rows: int, cols: int) -> None:
        """Set the window size (TIOCSWINSZ); the kernel sends the child SIGWINCH."""
        self.rows, self.cols = rows, cols
        if self.fd is not None:
            fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def stopped(self) -> bool:
        if not self.alive or self.pid is None:
            return False
        try:  # /proc/PID/stat: "pid (comm) S …"; the comm may hold spaces and parentheses
            with open(f"/proc/{self.pid}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False  # no /proc (not Linux) or gone: not known to be stopped
        return state in (b"T", b"t")

    def signal(self, sig: int) -> None:
        if self.alive and self.pid is not None:
            try:
                os.killpg(os.getpgid(self.pid), sig)
            except (ProcessLookupError, PermissionError):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, sig)

    async def wait(self) -> ExitStatus:
        """Wait until the child has exited and its output is drained."""
        if self.exit_status is not None and self.fd is None:
            return self.exit_status
        assert self._loop is not None
        fut: asyncio.Future[ExitStatus] = self._loop.create_future()
        previous = self.on_exit

        def done(status: ExitStatus) -> None:
            if previous is not None:
                previous(status)
            if not fut.done():
                fut.set_result(status)

        self.on_exit = done
        return await fut

    async def terminate(self, grace: float = 2.0) -> ExitStatus | None:
        """End the child: SIGHUP, then SIGTERM, then SIGKILL, each after `grace` seconds."""
        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGKILL):
            if not self.alive:
                break
            self.signal(sig)
            try:
                return await asyncio.wait_for(asyncio.shield(self.wait()), grace)
            except TimeoutError:
                continue
        return self.exit_status
