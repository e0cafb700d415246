"""The keeper (supervisor/pty/keeper.py) and its daemon side (KeeperClient, KeeperPtyProcess).

Everything here runs real processes: a real keeper started as `staff up` would start it,
real children on real ptys, a real "daemon" process that is SIGKILLed.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from supervisor.pty import keeper as keeper_mod
from supervisor.pty.keeperclient import KeeperClient, KeeperError, KeeperPtyProcess, _window_size
from supervisor.pty.process import ExitStatus, PtyProcess, SpawnError

REPO = Path(__file__).resolve().parents[2]
FAKE = REPO / "fixtures" / "fake_claude.py"
FAKE_ARGV = [sys.executable, str(FAKE), "--startup-delay", "0"]
PY = sys.executable

# A child that echoes lines back and reports signals, so tests can make it write while no
# daemon is connected (SIGUSR1) and see window-size changes (SIGWINCH).
ECHO_CHILD = textwrap.dedent(
    """
    import os, signal, sys
    def note(signum, frame):
        name = "usr1" if signum == signal.SIGUSR1 else "winch"
        os.write(1, f"<{name}:{os.get_terminal_size(0).lines}>\\r\\n".encode())
    signal.signal(signal.SIGUSR1, note)
    signal.signal(signal.SIGWINCH, note)
    os.write(1, b"echo-ready\\r\\n")
    for line in sys.stdin:
        os.write(1, f"got:{line.strip()}\\r\\n".encode())
    """
)


# -- fixtures and helpers ---------------------------------------------------------------


class Keeper:
    def __init__(self, path: str, proc: subprocess.Popen[bytes], log: str) -> None:
        self.path, self.proc, self.log = path, proc, log
        self.clients: list[KeeperClient] = []

    @property
    def pid(self) -> int:
        return self.proc.pid

    def client(self, *, subscribe: bool = True) -> KeeperClient:
        client = KeeperClient.connect(self.path, subscribe=subscribe)
        self.clients.append(client)
        return client

    def log_text(self) -> str:
        return Path(self.log).read_text(errors="replace")


@pytest.fixture
def sockdir() -> Iterator[str]:
    # Short paths: a Unix socket path must fit in 108 bytes.
    d = tempfile.mkdtemp(prefix="kp-", dir="/tmp")
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def keeper(sockdir: str) -> Iterator[Keeper]:
    path = os.path.join(sockdir, "keeper.sock")
    log = os.path.join(sockdir, "keeper.log")
    proc = keeper_mod.launch(path, log_path=log)
    k = Keeper(path, proc, log)
    yield k
    for client in k.clients:
        client.close()
    if proc.poll() is None:
        try:
            with KeeperClient.connect(path, subscribe=False) as client:
                client.shutdown(grace=0.5)
        except KeeperError:
            proc.kill()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def read_until(fd: int, needle: bytes, timeout: float = 10.0) -> bytes:
    """Read the master fd until `needle` shows up (fails after `timeout`)."""
    deadline = time.monotonic() + timeout
    got = b""
    while needle not in got:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise AssertionError(f"{needle!r} not seen; got {got[-500:]!r}")
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            raise AssertionError(f"EOF before {needle!r}; got {got[-500:]!r}")
        got += chunk
    return got


def alive(pid: int) -> bool:
    """A process that exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def keeper_children(keeper_pid: int) -> list[int]:
    """Pids whose parent is the keeper (counted from /proc)."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ppid == keeper_pid and alive(int(entry)):
            kids.append(int(entry))
    return kids


class Collector:
    """on_output for a process: gathers text and wakes whoever waits for a substring."""

    def __init__(self) -> None:
        self.text = ""
        self.chunks = 0
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    def __call__(self, data: bytes, text: str) -> None:
        self.text += text
        self.chunks += 1
        for cond, fut in list(self._waiters):
            if not fut.done() and cond():
                fut.set_result(None)

    async def until(self, cond: Callable[[], bool], timeout: float = 10.0) -> None:
        if cond():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((cond, fut))
        try:
            await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise AssertionError(f"condition not met; output tail {self.text[-800:]!r}") from None

    async def see(self, needle: str, timeout: float = 10.0) -> None:
        await self.until(lambda: needle in self.text, timeout)


async def start_fake_claude(client: KeeperClient, name: str) -> tuple[KeeperPtyProcess, Collector]:
    """Spawn the fake Claude through the keeper and bring it to its idle screen."""
    proc = KeeperPtyProcess(FAKE_ARGV, client=client, name=name, cwd=str(REPO), rows=30, cols=100)
    out = Collector()
    proc.on_output = out
    proc.start()
    await out.see("\x1b[6n")
    proc.write(b"\x1b[1;1R")  # answer the cursor-position query as a terminal would
    await out.see("Claude Code")
    return proc, out


DAEMON = textwrap.dedent(
    """
    import json, os, select, signal, sys
    sys.path.insert(0, {repo!r})
    from supervisor.pty.keeperclient import KeeperClient
    sock, name, argv, marker = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), sys.argv[4].encode()
    client = KeeperClient.connect(sock)
    pid, fd = client.spawn(name, argv, cwd=os.getcwd(), env=dict(os.environ), rows=30, cols=100)
    got = b""
    while marker not in got:
        select.select([fd], [], [], 10)
        got += os.read(fd, 65536)
        if b"\\x1b[6n" in got:
            os.write(fd, b"\\x1b[1;1R")
            got = got.replace(b"\\x1b[6n", b"")
    print(pid, flush=True)
    signal.pause()
    """
)


def run_daemon(keeper: Keeper, name: str, argv: list[str], marker: str) -> tuple[subprocess.Popen[str], int]:
    """A stand-in daemon process: spawns `argv` through the keeper and holds its fd."""
    daemon = subprocess.Popen(
        [PY, "-c", DAEMON.format(repo=str(REPO)), keeper.path, name, json.dumps(argv), marker],
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(REPO),
    )
    assert daemon.stdout is not None
    line = daemon.stdout.readline()
    assert line.strip().isdigit(), f"the stand-in daemon failed: {line!r}"
    return daemon, int(line)


def kill_daemon(daemon: subprocess.Popen[str]) -> None:
    daemon.send_signal(signal.SIGKILL)
    daemon.wait()
    if daemon.stdout is not None:
        daemon.stdout.close()


# -- the socket --------------------------------------------------------------------------


def test_socket_is_0600_and_answers_ping(keeper: Keeper) -> None:
    st = os.stat(keeper.path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o600
    info = keeper.client().ping()
    assert info["pid"] == keeper.pid
    assert info["children"] == 0


def test_a_second_keeper_refuses_a_live_socket(keeper: Keeper) -> None:
    with pytest.raises(RuntimeError, match="did not start"):
        keeper_mod.launch(keeper.path, timeout=10)
    assert keeper.client().ping()["pid"] == keeper.pid  # the first one is untouched


def test_bad_requests_get_clear_errors_and_change_nothing(keeper: Keeper) -> None:
    raw = socket.socket(socket.AF_UNIX)
    raw.connect(keeper.path)
    f = raw.makefile("rwb")
    for line, expect in [
        (b"{not json\n", "malformed JSON"),
        (b"[1, 2]\n", "JSON object"),
        (b'{"op": "format_disk", "req": 1}\n', "unknown op"),
        (b'{"op": "signal", "req": 2, "pid": 1, "sig": 9}\n', "no live child with pid 1"),
        (b'{"op": "spawn", "req": 3, "id": "x", "argv": "ls"}\n', "argv must be"),
        (b'{"op": "spawn", "req": 4, "argv": ["ls"]}\n', "needs an id"),
        (b'{"op": "shutdown", "req": 5, "grace": "soon"}\n', "grace must be"),
    ]:
        f.write(line)
        f.flush()
        reply = json.loads(f.readline())
        assert reply["ok"] is False and expect in reply["error"], reply
    raw.close()
    assert keeper.client().ping()["children"] == 0


# -- spawning -----------------------------------------------------------------------------


def test_spawn_hands_over_the_master_fd_and_bytes_round_trip(keeper: Keeper) -> None:
    client = keeper.client()
    pid, fd = client.spawn("echo", [PY, "-c", ECHO_CHILD], cwd="/tmp", env=dict(os.environ), rows=33, cols=91)
    try:
        assert _window_size(fd) == (33, 91)
        assert fcntl.fcntl(fd, fcntl.F_GETFD) & fcntl.FD_CLOEXEC  # never leaks into the daemon's children
        read_until(fd, b"echo-ready")
        os.write(fd, b"hello keeper\r")
        read_until(fd, b"got:hello keeper")
        kids, exits = client.list_children()
        assert [(k.id, k.pid, k.cwd, k.rows, k.cols) for k in kids] == [("echo", pid, "/tmp", 33, 91)]
        assert kids[0].argv == [PY, "-c", ECHO_CHILD]
        assert exits == []
        for k in kids:
            os.close(k.fd)
        # The child leads its own session on that pty, and the keeper is its parent.
        assert os.getsid(pid) == pid
        assert keeper_children(keeper.pid) == [pid]
        os.write(fd, b"\x04")  # EOF on stdin: the child ends normally
        assert client.wait_exit(pid, timeout=10) == ExitStatus(0, None)
    finally:
        os.close(fd)


def test_a_duplicate_agent_id_is_refused(keeper: Keeper) -> None:
    client = keeper.client()
    pid, fd = client.spawn("solo", [PY, "-c", ECHO_CHILD], cwd="/tmp", env=dict(os.environ))
    try:
        with pytest.raises(KeeperError, match=f"solo is already running \\(pid {pid}\\)"):
            client.spawn("solo", ["true"], cwd="/tmp", env=dict(os.environ))
    finally:
        client.signal(pid, signal.SIGKILL)
        client.wait_exit(pid, timeout=10)
        os.close(fd)


def test_missing_command_and_bad_cwd_are_clear_errors(keeper: Keeper, sockdir: str) -> None:
    client = keeper.client()
    not_exec = os.path.join(sockdir, "notes.txt")
    Path(not_exec).write_text("just text\n")
    os.chmod(not_exec, 0o644)
    env = dict(os.environ)
    fds_before = len(os.listdir(f"/proc/{keeper.pid}/fd"))
    with pytest.raises(KeeperError, match=r"^command not found: no-such-agent-xyz \(PATH="):
        client.spawn("a", ["no-such-agent-xyz"], cwd="/tmp", env=env)
    with pytest.raises(KeeperError, match=r"^command not found: /nonexistent/agent$"):
        client.spawn("a", ["/nonexistent/agent"], cwd="/tmp", env=env)
    with pytest.raises(KeeperError, match=r"^working directory does not exist: /nonexistent/dir$"):
        client.spawn("a", [PY, "-c", "pass"], cwd="/nonexistent/dir", env=env)
    with pytest.raises(KeeperError, match=f"^permission denied: {not_exec}$"):
        client.spawn("a", [not_exec], cwd="/tmp", env=env)
    # The same reasons reach the PtyProcess interface as SpawnError, as PtyProcess gives them.
    proc = KeeperPtyProcess(["no-such-agent-xyz"], client=client, name="b", cwd="/tmp")
    loop = asyncio.new_event_loop()
    with pytest.raises(SpawnError, match="command not found: no-such-agent-xyz"):
        proc.start(loop)
    loop.close()
    # Nothing leaked: no zombie, no child, no fd; the keeper is fine.
    assert keeper_children(keeper.pid) == []
    assert not any(
        Path(f"/proc/{p}/stat").exists() and "Z" in Path(f"/proc/{p}/stat").read_text().split()[2]
        for p in os.listdir("/proc")
        if p.isdigit() and _ppid(int(p)) == keeper.pid
    )
    assert len(os.listdir(f"/proc/{keeper.pid}/fd")) == fds_before
    assert client.ping()["children"] == 0


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def test_exit_codes_and_signals_are_reported(keeper: Keeper) -> None:
    client = keeper.client()
    env = dict(os.environ)
    fds = []
    pid7, fd = client.spawn("seven", [PY, "-c", "raise SystemExit(7)"], cwd="/tmp", env=env)
    fds.append(fd)
    assert client.wait_exit(pid7, timeout=10) == ExitStatus(7, None)
    pid_t, fd = client.spawn("term", [PY, "-c", ECHO_CHILD], cwd="/tmp", env=env)
    fds.append(fd)
    read_until(fd, b"echo-ready")
    client.signal(pid_t, signal.SIGTERM)
    assert client.wait_exit(pid_t, timeout=10) == ExitStatus(None, signal.SIGTERM)
    pid_k, fd = client.spawn("kill", [PY, "-c", ECHO_CHILD], cwd="/tmp", env=env)
    fds.append(fd)
    read_until(fd, b"echo-ready")
    os.kill(pid_k, signal.SIGKILL)  # killed by someone else: still reaped and reported
    assert client.wait_exit(pid_k, timeout=10) == ExitStatus(None, signal.SIGKILL)
    # Acknowledged events are gone from the keeper's books; nothing is left over.
    kids, exits = client.list_children()
    assert kids == [] and exits == []
    with pytest.raises(KeeperError, match="no live child"):
        client.signal(pid7, signal.SIGTERM)
    for fd in fds:
        os.close(fd)


def test_exits_wait_for_a_daemon_to_collect_them(keeper: Keeper) -> None:
    first = keeper.client()
    pid, fd = first.spawn("short", [PY, "-c", ECHO_CHILD], cwd="/tmp", env=dict(os.environ))
    read_until(fd, b"echo-ready")
    first.close()  # the daemon is gone ...
    os.close(fd)
    os.kill(pid, signal.SIGTERM)  # ... and its agent ends meanwhile
    second = keeper.client()
    deadline = time.monotonic() + 10
    while True:  # wait for the keeper to have reaped it (we are no subscriber of that event)
        kids, exits = second.list_children()
        if exits or time.monotonic() > deadline:
            break
        pidfd_wait(pid, deadline - time.monotonic())
    assert kids == []
    assert [(e.pid, e.id, e.status) for e in exits] == [(pid, "short", ExitStatus(None, signal.SIGTERM))]
    assert [e.pid for e in second.collect_exits()] == [pid]
    assert second.list_children() == ([], [])  # collected once, then forgotten


def pidfd_wait(pid: int, timeout: float) -> None:
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        select.select([pidfd], [], [], max(0.0, timeout))
    finally:
        os.close(pidfd)


# -- connections ----------------------------------------------------------------------------


def test_a_new_subscriber_replaces_the_old_one_but_a_plain_client_does_not(keeper: Keeper) -> None:
    first = keeper.client()
    keeper.client(subscribe=False).ping()  # `staff status` pinging must not kick the daemon
    assert first.ping()["pid"] == keeper.pid
    second = keeper.client()
    with pytest.raises(KeeperError):
        first.ping()
    assert first.closed
    assert second.ping()["pid"] == keeper.pid


def test_other_uid_is_refused(keeper: Keeper, sockdir: str) -> None:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv is not installed")
    nobody = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    probe = [*nobody, "/usr/bin/env", "python3", "-I", "-c"]
    if subprocess.run([*probe, "pass"], capture_output=True).returncode != 0:
        pytest.skip("cannot switch to uid 65534 here (needs root / CAP_SETUID)")
    connect = textwrap.dedent(
        """
        import socket, sys
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(sys.argv[1])
        except OSError as exc:
            print("connect-failed", exc.errno)
            raise SystemExit
        # The keeper answers a refused peer at once, before it sends anything.
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        print("got", data.decode().strip())
        """
    )
    os.chmod(sockdir, 0o711)  # let the other uid reach the socket's directory
    # The socket's mode (0600) alone keeps the other uid out ...
    out = subprocess.run([*probe, connect, keeper.path], capture_output=True, text=True, timeout=30)
    assert out.stdout.startswith("connect-failed 13"), out
    # ... and with the mode opened up, the keeper's SO_PEERCRED check refuses it.
    os.chmod(keeper.path, 0o666)
    out = subprocess.run([*probe, connect, keeper.path], capture_output=True, text=True, timeout=30)
    assert out.stdout.startswith("got "), out
    refusal = json.loads(out.stdout.removeprefix("got "))
    assert refusal == {"ok": False, "error": "permission denied: wrong uid"}
    assert "refused a connection from uid 65534" in keeper.log_text()
    assert keeper.client().ping()["pid"] == keeper.pid


# -- KeeperPtyProcess: the PtyProcess interface over the keeper ---------------------------------


def test_keeper_pty_process_has_the_pty_process_interface() -> None:
    for name in ("start", "write", "resize", "signal", "terminate", "wait", "alive", "pid",
                 "exit_status", "on_output", "on_exit", "fd", "pending_write"):
        assert hasattr(KeeperPtyProcess([PY], client=None), name)  # type: ignore[arg-type]
    assert issubclass(KeeperPtyProcess, PtyProcess)


async def test_fake_claude_through_the_keeper(keeper: Keeper) -> None:
    client = keeper.client()
    proc, out = await start_fake_claude(client, "planning")
    assert proc.alive and proc.pid in keeper_children(keeper.pid)
    proc.write(b"hello there\r")
    await out.see("FAKE-REPLY")
    exits: list[ExitStatus] = []
    proc.on_exit = exits.append
    proc.resize(32, 100)
    assert _window_size(proc.fd or -1) == (32, 100)
    status = await proc.terminate(grace=5)
    assert status is not None and (status.code == 129 or status.signal == signal.SIGHUP)
    assert exits == [status] and not proc.alive and proc.fd is None
    assert client.list_children() == ([], [])  # the event was consumed and acknowledged


async def test_exit_statuses_reach_on_exit(keeper: Keeper) -> None:
    client = keeper.client()
    fast = KeeperPtyProcess([PY, "-c", "print('bye'); raise SystemExit(3)"], client=client, name="fast")
    out = Collector()
    fast.on_output = out
    fast.start()
    assert await asyncio.wait_for(fast.wait(), 10) == ExitStatus(3, None)
    assert "bye" in out.text  # output written just before the end is drained, not lost
    slow = KeeperPtyProcess([PY, "-c", ECHO_CHILD], client=client, name="slow")
    slow_out = Collector()
    slow.on_output = slow_out
    slow.start()
    await slow_out.see("echo-ready")
    slow.signal(signal.SIGKILL)
    assert await asyncio.wait_for(slow.wait(), 10) == ExitStatus(None, signal.SIGKILL)


async def test_a_restarted_daemon_readopts_the_same_pid_and_reads_what_was_written_meanwhile(
    keeper: Keeper,
) -> None:
    daemon, pid = run_daemon(keeper, "coding", [PY, "-c", ECHO_CHILD], "echo-ready")
    kill_daemon(daemon)  # the daemon dies with the agent's fd in hand
    assert alive(pid)
    os.kill(pid, signal.SIGUSR1)  # the agent writes while no daemon is connected
    client = keeper.client()
    kids, _ = client.list_children()
    assert [(k.id, k.pid) for k in kids] == [("coding", pid)]
    kid = kids[0]
    proc = KeeperPtyProcess.adopt(
        kid.pid, kid.fd, client=client, name=kid.id, argv=kid.argv, cwd=kid.cwd, nudge=False
    )
    out = Collector()
    proc.on_output = out
    assert proc.pid == pid and proc.alive
    await out.see("<usr1:30>")  # it waited in the pty
    proc.write(b"still there?\r")
    await out.see("got:still there?")
    status = await proc.terminate(grace=5)
    assert status == ExitStatus(None, signal.SIGHUP)


async def test_adopt_nudges_a_repaint_and_restores_the_size(keeper: Keeper) -> None:
    daemon, pid = run_daemon(keeper, "testing", [PY, "-c", ECHO_CHILD], "echo-ready")
    kill_daemon(daemon)
    client = keeper.client()
    (kid,), _ = client.list_children()
    assert kid.pid == pid
    proc = KeeperPtyProcess.adopt(kid.pid, kid.fd, client=client, name=kid.id)
    out = Collector()
    proc.on_output = out
    assert (proc.rows, proc.cols) == (30, 100)  # taken from the pty
    await out.see("<winch:29>")  # the nudge: one row less ...
    await out.see("<winch:30>")  # ... then back, at its first output
    assert _window_size(proc.fd or -1) == (30, 100)
    await proc.terminate(grace=5)


async def test_adopted_fake_claude_repaints_its_screen(keeper: Keeper) -> None:
    daemon, pid = run_daemon(keeper, "review", FAKE_ARGV, "Claude Code")
    kill_daemon(daemon)
    client = keeper.client()
    (kid,), _ = client.list_children()
    assert kid.pid == pid
    proc = KeeperPtyProcess.adopt(kid.pid, kid.fd, client=client, name=kid.id, rows=30, cols=100)
    out = Collector()
    proc.on_output = out
    await out.see("Claude Code")  # a blank emulator gets the whole idle screen again
    proc.write(b"after the restart\r")
    await out.see("FAKE-REPLY")
    await proc.terminate(grace=5)


# -- the keeper's own end ------------------------------------------------------------------


async def test_keeper_sigkill_takes_every_child_within_5s(keeper: Keeper) -> None:
    client = keeper.client()
    procs = []
    for i in range(3):
        proc, _ = await start_fake_claude(client, f"agent{i}")
        procs.append(proc)
    echo = KeeperPtyProcess([PY, "-c", ECHO_CHILD], client=client, name="echo")
    echo_out = Collector()
    echo.on_output = echo_out
    echo.start()
    await echo_out.see("echo-ready")
    procs.append(echo)
    pids = [p.pid for p in procs]
    assert sorted(keeper_children(keeper.pid)) == sorted(pids)
    # This "daemon" still holds every master fd, so no pty hangs up: PDEATHSIG must do it.
    os.kill(keeper.pid, signal.SIGKILL)
    started = time.monotonic()
    statuses = await asyncio.wait_for(asyncio.gather(*(p.wait() for p in procs)), 5)
    assert statuses == [ExitStatus(None, None)] * len(procs)  # no keeper left to tell how
    left = [pid for pid in pids if pid is not None and alive(pid)]
    assert left == [], f"still running after {time.monotonic() - started:.1f}s: {left}"
    keeper.proc.wait()


def test_shutdown_ends_every_child_then_the_keeper(keeper: Keeper) -> None:
    client = keeper.client()
    env = dict(os.environ)
    stubborn_src = (
        "import signal, os\n"
        "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "os.write(1, b'stubborn-ready\\r\\n')\n"
        "while True: signal.pause()\n"
    )
    stubborn, fd1 = client.spawn("stubborn", [PY, "-c", stubborn_src], cwd="/tmp", env=env)
    polite, fd2 = client.spawn("polite", [PY, "-c", ECHO_CHILD], cwd="/tmp", env=env)
    read_until(fd1, b"stubborn-ready")
    read_until(fd2, b"echo-ready")
    client.shutdown(grace=0.3)  # returns once the keeper closed the connection
    assert keeper.proc.wait(timeout=10) == 0
    assert {pid: ev.status for pid, ev in client.pending_exits.items()} == {
        polite: ExitStatus(None, signal.SIGHUP),
        stubborn: ExitStatus(None, signal.SIGKILL),
    }
    assert not alive(stubborn) and not alive(polite)
    assert not os.path.exists(keeper.path)
    for fd in (fd1, fd2):
        os.close(fd)


def test_runs_by_path_with_the_stdlib_only(sockdir: str) -> None:
    """`python -I keeper.py` imports nothing from the package (it must survive upgrades)."""
    tree = ast.parse(Path(keeper_mod.__file__).read_text())
    imports = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imports |= {
        (n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
    }
    assert imports <= set(sys.stdlib_module_names), imports - set(sys.stdlib_module_names)
    path = os.path.join(sockdir, "k.sock")
    proc = keeper_mod.launch(path)
    with contextlib.closing(socket.socket(socket.AF_UNIX)) as s:
        s.connect(path)
        s.sendall(b'{"op": "shutdown", "req": "bye", "grace": 0}\n')
        assert json.loads(s.makefile().readline()) == {"req": "bye", "ok": True, "children": 0}
    assert proc.wait(timeout=10) == 0
