"""Faults against a real daemon and real fake agents: nothing lost, nothing run twice."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from supervisor.protocol import Client, socket_path
from supervisor.pty.keeperclient import KeeperClient
from tests.conftest import fake_team_toml, staff


def daemon_pid(home: Path) -> int:
    return int((home / "daemon.lock").read_text().split()[0])


def keeper_pid(home: Path) -> int:
    with KeeperClient.connect(str(home / "keeper.sock"), subscribe=False) as k:
        return int(str(k.ping()["pid"]))


def until_working(tid: str) -> None:
    """Block until the task runs on its agent (each `wait --timeout` blocks on the daemon's
    events; the loop only re-asks when the short timeout lapses)."""
    r = staff("wait", tid, "--timeout", "0.3", "--json")
    while json.loads(r.stdout)["state"] != "working":
        r = staff("wait", tid, "--timeout", "0.3", "--json")


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
        pids = [a["pid"] for a in json.loads(staff("status", "--json").stdout)["agents"]]
        pid = daemon_pid(home)
        os.kill(pid, signal.SIGKILL)
        wait_gone(pid)
        assert staff("status").returncode == 2
        staff("up", "-c", str(cfg), check=True)
        # the keeper kept every agent: same processes, re-adopted
        assert [a["pid"] for a in json.loads(staff("status", "--json").stdout)["agents"]] == pids
        answers = {}
        for tid in inflight + queued:
            t = json.loads(staff("wait", tid, "--json", timeout=120).stdout)
            assert t["state"] == "done", t
            answers[tid] = t
        # every answer is the right agent's, for the right text
        for tid in inflight + queued:
            t = answers[tid]
            assert t["answer"].startswith(f"FAKE-REPLY({t['to']}#") and t["answer"].endswith(t["text"]), (
                json.dumps(t)
            )
        # each long task was answered once, by the agent that had it when the daemon died
        for n in names:
            recall = staff("ask", n, "recall", check=True).stdout
            assert recall.count(f"long {n} [delay=3]") == 1, recall
        assert all(answers[t]["attempts"] == 0 for t in inflight)
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


def test_keeper_sigkill_ends_agents_and_team_comes_back(home: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "staff.toml"
    cfg.write_text(fake_team_toml(("planning", "coding")))
    staff("up", "-c", str(cfg), check=True)
    try:
        assert staff("ask", "planning", "remember this", check=True).returncode == 0
        pids = [a["pid"] for a in json.loads(staff("status", "--json").stdout)["agents"]]
        tid = staff("submit", "coding", "slow [delay=5]", check=True).stdout.strip()
        until_working(tid)
        keeper = keeper_pid(home)
        os.kill(keeper, signal.SIGKILL)
        for pid in pids:
            wait_gone(pid)  # PDEATHSIG: every agent ends with its keeper
        # the daemon starts a new keeper; the task was interrupted and is retried; context resumes
        done = json.loads(staff("wait", tid, "--json", timeout=120).stdout)
        assert done["state"] == "done" and done["attempts"] == 1, done
        assert "1) remember this" in staff("ask", "planning", "recall", "--timeout", "60", check=True).stdout
    finally:
        staff("down")


def test_down_leaves_no_agent_process(home: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "staff.toml"
    cfg.write_text(fake_team_toml(("planning", "coding")))
    staff("up", "-c", str(cfg), check=True)
    pids = [a["pid"] for a in json.loads(staff("status", "--json").stdout)["agents"]]
    keeper = keeper_pid(home)
    staff("down", check=True)
    for pid in [*pids, keeper]:
        wait_gone(pid)


def test_down_after_daemon_sigkill_ends_the_kept_agents(home: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "staff.toml"
    cfg.write_text(fake_team_toml(("planning",)))
    staff("up", "-c", str(cfg), check=True)
    pids = [a["pid"] for a in json.loads(staff("status", "--json").stdout)["agents"]]
    os.kill(daemon_pid(home), signal.SIGKILL)
    wait_gone(daemon_pid(home))
    assert all(Path(f"/proc/{p}").exists() for p in pids)  # the agents outlived the daemon
    assert "stopped its leftover agents" in staff("down", check=True).stdout
    for pid in pids:
        wait_gone(pid)




def test_agent_sigkill_mid_task_fails_it_and_restarts(fake_team: Path) -> None:
    tid = staff("submit", "coding", "slow [delay=5]", check=True).stdout.strip()
    until_working(tid)
    pid = json.loads(staff("status", "--json").stdout)["agents"][1]["pid"]
    os.kill(pid, signal.SIGKILL)
    done = json.loads(staff("wait", tid, "--json").stdout)
    assert done["state"] == "failed" and "crashed (killed by SIGKILL)" in done["error"]
    r = staff("ask", "coding", "after", "--timeout", "30", check=True)
    assert r.stdout.startswith("FAKE-REPLY(coding#")


def test_agent_exit_mid_task_fails_it_and_counts_as_a_crash(fake_team: Path) -> None:
    """Exiting in the middle of a task, even with status 0, is a crash: on-failure restarts it."""
    r = staff("ask", "testing", "bye [exit]", "--json")
    task = json.loads(r.stdout)
    assert r.returncode == 1 and task["state"] == "failed" and "crashed (exit status 0)" in task["error"]
    r = staff("ask", "testing", "hello?", "--timeout", "30", check=True)
    assert r.stdout.strip() == "FAKE-REPLY(testing#1): hello?"


def test_a_killed_waiting_client_does_not_affect_the_task(fake_team: Path) -> None:
    tid = staff("submit", "planning", "keep going [delay=1]", check=True).stdout.strip()
    waiter = subprocess.Popen([sys.executable, "-m", "supervisor", "wait", tid], stdout=subprocess.PIPE)
    waiter.kill()
    waiter.wait()
    done = json.loads(staff("wait", tid, "--json", check=True).stdout)
    assert done["answer"] == "FAKE-REPLY(planning#1): keep going [delay=1]"


def _can_mount_read_only(tmp_path: Path) -> bool:
    d = tmp_path / "probe"
    d.mkdir()
    r = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"mount --bind {d} {d} && mount -o remount,ro,bind {d}"],
        capture_output=True,
    )
    return r.returncode == 0


def test_read_only_state_dir_is_a_clear_error_and_the_journal_survives(home: Path, tmp_path: Path) -> None:
    """The state dir mounted read-only (a private mount namespace, so nothing else sees it):
    `staff up` says so in one line, in the background and in the foreground; afterwards the
    journal is intact and its answers are still served."""
    if not _can_mount_read_only(tmp_path):
        pytest.skip("no private mount namespace here (unshare -m, bind mounts)")
    cfg = tmp_path / "staff.toml"
    cfg.write_text(fake_team_toml(("planning",)))
    staff("up", "-c", str(cfg), check=True)
    tid = json.loads(staff("ask", "planning", "before", "--json", check=True).stdout)["id"]
    staff("down", check=True)
    script = (
        f"mount --bind {home} {home} && mount -o remount,ro,bind {home} || exit 99\n"
        f"{sys.executable} -m supervisor.client.cli.main up -c {cfg}; echo \"up rc=$?\"\n"
        f"{sys.executable} -m supervisor.client.cli.main up --foreground -c {cfg}; echo \"fg rc=$?\"\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    r = subprocess.run(
        ["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    want = (
        f"staff: cannot use the state directory {home}: Read-only file system "
        "(set STAFF_HOME to a writable directory)"
    )
    assert r.stderr.splitlines() == [want, want], r.stderr
    assert r.stdout.split() == ["up", "rc=2", "fg", "rc=2"], r.stdout
    with sqlite3.connect(home / "journal.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    staff("up", "-c", str(cfg), check=True)
    try:
        done = json.loads(staff("wait", tid, "--json", check=True).stdout)
        assert done["answer"] == "FAKE-REPLY(planning#1): before"
    finally:
        staff("down")


def test_a_clean_down_keeps_running_tasks_and_up_runs_them(home: Path, tmp_path: Path) -> None:
    """`staff down` mid-task: the task is interrupted (said so), not failed as a crash, and the
    next `staff up` runs it again, spending no attempt (a kill -9 of the daemon keeps it too)."""
    cfg = tmp_path / "staff.toml"
    cfg.write_text(fake_team_toml(("coding",)))
    staff("up", "-c", str(cfg), check=True)
    try:
        tid = staff("submit", "coding", "long work [delay=5]", check=True).stdout.strip()
        until_working(tid)
        down = staff("down", check=True)
        said = f"task {tid} (coding: long work [delay=5]) was working: interrupted"
        assert said in down.stdout, down.stdout
        assert "runs again at the next `staff up`" in down.stdout
        db = sqlite3.connect(home / "journal.db")
        state, error = db.execute("SELECT state, error FROM tasks WHERE id=?", (tid,)).fetchone()
        db.close()
        assert state == "interrupted" and "interrupted by `staff down`" in error and "crashed" not in error
        staff("up", "-c", str(cfg), check=True)
        task = json.loads(staff("wait", tid, "--json", timeout=120).stdout)
        assert task["state"] == "done" and task["answer"].endswith("long work [delay=5]"), task
        assert task["attempts"] == 0
        staff("down", check=True)  # a second clean stop mid-task still keeps it (no attempt spent)
    finally:
        staff("down")


@pytest.mark.parametrize("damage", ["deleted", "garbage"])
def test_a_lost_journal_wal_is_detected_and_said(home: Path, tmp_path: Path, damage: str) -> None:
    cfg = tmp_path / "staff.toml"
    cfg.write_text(fake_team_toml(("coding",)))
    staff("up", "-c", str(cfg), check=True)
    try:
        ids = [staff("submit", "coding", f"task {i}", check=True).stdout.strip() for i in range(5)]
        staff("wait", ids[-1], check=True)
        pid = daemon_pid(home)
        os.kill(pid, signal.SIGKILL)  # a crash: SQLite never copies the WAL into the database
        wait_gone(pid)
        wal = home / "journal.db-wal"
        assert wal.stat().st_size > 0
        if damage == "deleted":
            wal.unlink()
            (home / "journal.db-shm").unlink(missing_ok=True)
        else:
            wal.write_bytes(os.urandom(wal.stat().st_size))
        r = staff("up", "-c", str(cfg), check=True)
        assert "staff: warning: the journal lost its last 5 tasks" in r.stderr, r.stderr
        assert f"the newest was {ids[-1]}" in r.stderr and "journal.db-wal" in r.stderr
        items = json.loads(staff("inbox", "--json", check=True).stdout)
        assert any("lost its last 5 tasks" in i["body"] for i in items), items
        staff("down", check=True)
        r = staff("up", "-c", str(cfg), check=True)  # said once, not at every start
        assert "lost" not in r.stderr, r.stderr
    finally:
        staff("down")
