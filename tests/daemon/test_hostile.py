"""Hostile and broken clients: the daemon answers each with an error or drops it, and stays up."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supervisor.protocol import COMMANDS, ERR_TIMEOUT, Client, ProtocolError, socket_path
from tests.conftest import staff

# Commands that legitimately keep the connection streaming (or stop the daemon) are left out.
STREAMING = {"shutdown", "subscribe", "wait", "stream", "monitor_wait"}
SHELL_TEAM = '[agents.a1]\ncommand = ["sh", "-i"]\nprofile = "shell"\nenv = { PS1 = "$ " }\n'


@pytest.fixture
def daemon(home: Path, tmp_path: Path) -> Iterator[Path]:
    cfg = tmp_path / "staff.toml"
    cfg.write_text(SHELL_TEAM)
    staff("up", "-c", str(cfg), check=True)
    try:
        yield home
    finally:
        staff("down")


def _frames() -> st.SearchStrategy[bytes]:
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
    )
    values = st.recursive(
        scalars,
        lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
        max_leaves=6,
    )
    # Hypothesis also draws strings from constants in the code under test, so random
    # text can spell "shutdown": it is filtered like the sampled commands are.
    cmds = st.sampled_from(sorted(set(COMMANDS) - STREAMING)) | st.text(max_size=8).filter(
        lambda c: c not in STREAMING
    )
    fields = st.dictionaries(
        st.sampled_from(["to", "text", "agent", "task", "keys", "timeout", "ids", "title", "lines"]),
        values,
        max_size=4,
    )
    request = st.builds(lambda c, f: json.dumps({"cmd": c, **f}).encode(), cmds, fields)
    junk = st.binary(max_size=64).map(lambda b: b.replace(b"\n", b" "))
    return st.one_of(request, junk, values.map(lambda v: json.dumps(v).encode()))


def test_fuzzed_frames_get_errors_and_daemon_stays_up(daemon: Path) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(str(socket_path(daemon)))
    sock.settimeout(30)  # a request left unanswered fails the test instead of hanging it
    reader = sock.makefile("rb")
    sent = 0

    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(_frames(), min_size=100, max_size=100))
    def batch(frames: list[bytes]) -> None:
        nonlocal sent
        sock.sendall(b"".join(f + b"\n" for f in frames))
        for _ in [f for f in frames if f.strip()]:  # blank lines are skipped, unanswered
            line = reader.readline()
            assert line, "the daemon hung up"
            reply = json.loads(line)
            assert "ok" in reply and (reply["ok"] or reply["error"]["message"])
        sent += len(frames)

    batch()
    sock.close()
    assert sent >= 10000
    with Client(socket_path(daemon)) as c:
        assert c.call("ping")["agents"] == ["a1"]
    assert staff("ask", "a1", "echo still-here", check=True).stdout.strip() == "still-here"


def test_slow_and_silent_clients_do_not_delay_others(daemon: Path) -> None:
    """One client dribbles a byte at a time, a hundred say nothing: status stays fast."""
    silent = [socket.socket(socket.AF_UNIX) for _ in range(100)]
    for s in silent:
        s.connect(str(socket_path(daemon)))
    slow = socket.socket(socket.AF_UNIX)
    slow.connect(str(socket_path(daemon)))
    request = b'{"cmd": "ping"}\n'
    latencies = []
    with Client(socket_path(daemon)) as c:
        for i in range(60):
            if i < len(request):
                slow.send(request[i : i + 1])
            t0 = time.perf_counter()
            c.call("status")
            latencies.append(time.perf_counter() - t0)
    slow.settimeout(5)
    assert json.loads(slow.makefile("rb").readline())["ok"]  # the slow one is served too
    for s in [*silent, slow]:
        s.close()
    latencies.sort()
    print(
        f"status latency with 101 idle/slow clients: p50 {latencies[30] * 1e3:.2f} ms, "
        f"max {latencies[-1] * 1e3:.2f} ms"
    )


def test_a_burst_beyond_asyncios_default_backlog_connects(daemon: Path) -> None:
    """300 clients connect while the daemon is stopped: none is refused (asyncio's default is 100)."""
    pid = int((daemon / "daemon.lock").read_text().split()[0])
    burst = []
    os.kill(pid, signal.SIGSTOP)  # so that nothing is accepted during the burst
    try:
        for _ in range(300):
            s = socket.socket(socket.AF_UNIX)
            s.setblocking(False)  # a full accept queue fails this with EAGAIN instead of waiting
            burst.append(s)
            s.connect(str(socket_path(daemon)))
    finally:
        os.kill(pid, signal.SIGCONT)
    with Client(socket_path(daemon)) as c:
        assert c.call("ping")
    for s in burst:
        s.close()


def test_client_waits_out_a_full_accept_queue_then_says_why(tmp_path: Path) -> None:
    """A listener that never accepts: the client neither fails at once nor hangs past its timeout."""
    path = tmp_path / "busy.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(path))
    listener.listen(0)
    filler = []
    while True:  # fill the queue until the kernel refuses a non-blocking connect
        s = socket.socket(socket.AF_UNIX)
        s.setblocking(False)
        try:
            s.connect(str(path))
        except BlockingIOError:
            s.close()
            break
        filler.append(s)
    with pytest.raises(ProtocolError) as err:
        Client(path, timeout=0.2).connect()
    assert err.value.code == ERR_TIMEOUT and "did not accept" in str(err.value)
    for s in [*filler, listener]:
        s.close()


def test_thousands_of_connections(daemon: Path) -> None:
    conns = []
    for _ in range(3000):
        s = socket.socket(socket.AF_UNIX)
        s.connect(str(socket_path(daemon)))
        conns.append(s)
    with Client(socket_path(daemon)) as c:
        assert c.call("ping")
    for s in conns:
        s.close()
    with Client(socket_path(daemon)) as c:
        assert c.call("ping")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to another uid")
def test_other_uid_cannot_connect(daemon: Path) -> None:
    code = (
        "import socket,sys\n"
        "s=socket.socket(socket.AF_UNIX)\n"
        "try:\n s.connect(sys.argv[1])\nexcept PermissionError:\n print('refused'); sys.exit(0)\n"
        's.sendall(b\'{"cmd": "ping"}\\n\')\n'
        "print('answered' if s.recv(100) else 'refused')\n"
    )
    # the state dir is 0700, so the socket is unreachable; open it up to prove the uid check too
    os.chmod(daemon, 0o755)
    os.chmod(socket_path(daemon), 0o666)
    try:
        out = subprocess.run(
            [
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                sys.executable,
                "-c",
                code,
                str(socket_path(daemon)),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        os.chmod(daemon, 0o700)
        os.chmod(socket_path(daemon), 0o600)
    assert out.stdout.strip() == "refused", out.stderr
    with Client(socket_path(daemon)) as c:
        assert c.call("ping")


def _closed_by_server(socks: list[socket.socket], seconds: float, dribble: bytes = b"") -> int:
    """How many of `socks` the server closed within `seconds` (each is sent `dribble`, a byte
    a second, meanwhile: a slowloris). Bounded: it returns after `seconds` at the latest."""
    import selectors

    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    open_ = set(socks)
    deadline = time.monotonic() + seconds

    def gone(s: socket.socket) -> None:
        open_.discard(s)
        sel.unregister(s)

    while open_ and time.monotonic() < deadline:
        for s in list(open_) if dribble else []:
            try:
                s.send(dribble)
            except OSError:
                gone(s)
        for key, _ in sel.select(min(1.0, max(0.0, deadline - time.monotonic()))):
            s = key.fileobj
            assert isinstance(s, socket.socket)
            try:
                if not s.recv(65536):
                    gone(s)
            except OSError:
                gone(s)
    sel.close()
    return len(socks) - len(open_)


def test_idle_and_slowloris_http_connections_do_not_exhaust_the_daemon(home: Path, tmp_path: Path) -> None:
    """1 100 idle TCP connections to the HTTP port (no token needed) against a daemon with 512
    descriptors: the Unix socket still answers, the log stays small, and idle or dribbling
    connections are closed by the server within its head timeout."""
    import resource

    from supervisor.daemon.httpapi import HEADER_TIMEOUT
    from tests.conftest import REPO, STAFF

    cfg = tmp_path / "staff.toml"
    cfg.write_text(SHELL_TEAM + '\n[http]\nlisten = "127.0.0.1:0"\n')

    def few_fds() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (512, 512))

    subprocess.run([*STAFF, "up", "-c", str(cfg)], check=True, preexec_fn=few_fds, timeout=60,
                   env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True)
    idle: list[socket.socket] = []
    slow: list[socket.socket] = []
    try:
        url = json.loads(staff("serve", "--http", "0", "--json", check=True).stdout)["url"]
        port = int(url.rsplit(":", 1)[1])
        for _ in range(50):  # slowloris: a request head that never ends
            slow.append(socket.create_connection(("127.0.0.1", port), timeout=10))
            slow[-1].sendall(b"GET /agents HTTP/1.1\r\n")
        for _ in range(1100):
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        r = staff("status", timeout=30)
        assert r.returncode == 0, r.stderr
        assert staff("ask", "a1", "echo still-here", check=True, timeout=30).stdout.strip() == "still-here"
        assert _closed_by_server(slow, HEADER_TIMEOUT + 10, dribble=b"X") == len(slow)
        assert _closed_by_server(idle, 10) == len(idle)  # the held ones timed out meanwhile too
        assert (home / "daemon.log").stat().st_size < 64 * 1024
        assert staff("status", timeout=30).returncode == 0
    finally:
        for s in idle + slow:
            s.close()
        staff("down")
