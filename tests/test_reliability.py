"""Faults against a real daemon and real fake agents: nothing lost, nothing run twice."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from supervisor.protocol import Client, socket_path
from tests.conftest import fake_team_toml, staff


def daemon_pid(home: Path) -> int:
    return int((home / "daemon.lock").read_text().split()[0])


def wait_gone(pid: int) -> None:
    """Wait for a process to exit: a pidfd turns readable when it does (no polling)."""
    import select

    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        assert select.select([fd], [], [], 10)[0], f"pid {pid} still alive"
    finally:
        os.close(fd)


def test_daemon_sigkill_loses_no_task(home: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "staff.toml"
    names = ("planning", "coding", "testing", "review", "docs")
    cfg.write_text(fake_team_toml(names))
    staff("up", "-c", str(cfg), check=True)
    try:
        events = Client(socket_path(home), timeout=60).connect()
        stream = events.stream("subscribe")
        next(stream)  # hello
        with Client(socket_path(home)) as c:
            inflight = [c.call("submit", to=n, text=f"long {n} [delay=3]")["id"] for n in names]
            queued = [c.call("submit", to=names[i % 5], text=f"queued {i}")["id"] for i in range(50)]
        working: set[str] = set()
        for frame in stream:  # the five long tasks reach their agents; then the daemon dies
            task = frame.get("event", {}).get("task") or {}
            if task.get("id") in inflight and task.get("state") == "working":
                working.add(task["id"])
            if len(working) == 5:
                break
        events.close()
        pid = daemon_pid(home)
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid)
        assert staff("status").returncode == 2
        staff("up", "-c", str(cfg), check=True)
        answers = {}
        for tid in inflight + queued:
            t = json.loads(staff("wait", tid, "--json", timeout=120).stdout)
            assert t["state"] == "done", t
            answers[tid] = t
        # every answer is the right agent's, for the right text
        for tid in inflight + queued:
            t = answers[tid]
            assert t["answer"].startswith(f"FAKE-REPLY({t['to']}#") and t["answer"].endswith(t["text"]), json.dumps(t)
        # the queued ones kept their order per agent
        for n in names:
            mine = [answers[t] for t in queued if answers[t]["to"] == n]
            assert [m["text"] for m in sorted(mine, key=lambda m: m["finished"])] == [m["text"] for m in mine]
    finally:
        staff("down")


def test_duplicate_submit_with_key(fake_team: Path) -> None:
    a = staff("submit", "planning", "once only", "--key", "retry-1", check=True).stdout.strip()
    b = staff("submit", "planning", "once only", "--key", "retry-1", check=True).stdout.strip()
    assert a == b
    staff("wait", a, check=True)
    r = staff("ask", "planning", "recall", check=True).stdout
    assert r.count("once only") == 1


def test_state_dir_and_socket_are_private(fake_team: Path, home: Path) -> None:
    assert home.stat().st_mode & 0o777 == 0o700
    assert (home / "staff.sock").stat().st_mode & 0o777 == 0o600


def test_config_writable_by_others_is_refused(home: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "staff.toml"
    cfg.write_text(fake_team_toml(("planning",)))
    cfg.chmod(0o666)
    r = staff("up", "-c", str(cfg))
    assert r.returncode == 2 and "writable by other users" in r.stderr and "chmod go-w" in r.stderr


def test_hang_is_reported_then_restarted(home: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "staff.toml"
    cfg.write_text('[staff]\nstall_after = 1\nstall_policy = "restart"\n\n' + fake_team_toml(("planning",)))
    staff("up", "-c", str(cfg), check=True)
    try:
        old = json.loads(staff("status", "--json").stdout)["agents"][0]["pid"]
        r = staff("ask", "planning", "freeze [hang]", "--json", timeout=60)
        task = json.loads(r.stdout)
        assert r.returncode == 1 and task["state"] == "failed" and "crashed" in task["error"]
        inbox = staff("inbox", "--json", check=True).stdout
        assert "planning stalled: no output for 1s" in inbox
        # the restart policy brought the agent back; it answers again
        assert staff("ask", "planning", "alive?", "--timeout", "30", check=True).stdout.startswith(
            "FAKE-REPLY(planning#"
        )
        assert json.loads(staff("status", "--json").stdout)["agents"][0]["pid"] != old
    finally:
        staff("down")


def test_bad_staff_setting_names_the_line(home: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "staff.toml"
    cfg.write_text('[staff]\nstall_after = 1\nstall_policy = "panic"\n\n' + fake_team_toml(("planning",)))
    r = staff("up", "-c", str(cfg))
    assert r.returncode == 2 and f"{cfg}:3: staff.stall_policy must be" in r.stderr
