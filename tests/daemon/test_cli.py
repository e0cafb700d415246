"""The spine end to end: the real `staff` CLI, a real daemon, fake Claude agents on real ptys."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
from pathlib import Path

from supervisor.protocol import socket_path
from tests.conftest import REPO, fake_team_toml, staff


def test_ask_recall_and_queue_order(fake_team: Path) -> None:
    r = staff("ask", "planning", "hello [delay=1]")
    assert (r.returncode, r.stdout.strip()) == (0, "FAKE-REPLY(planning#1): hello [delay=1]")
    r = staff("ask", "planning", "recall")
    assert r.stdout.strip() == "FAKE-REPLY(planning#2): recall: 1) hello [delay=1]"
    # two tasks for one agent at once: queued, both answered, in submission order
    t1 = staff("submit", "coding", "first [delay=0.5]", check=True).stdout.strip()
    t2 = staff("submit", "coding", "second", check=True).stdout.strip()
    second = json.loads(staff("wait", t2, "--json", check=True).stdout)
    first = json.loads(staff("wait", t1, "--json", check=True).stdout)
    assert first["answer"] == "FAKE-REPLY(coding#1): first [delay=0.5]"
    assert second["answer"] == "FAKE-REPLY(coding#2): second"
    assert first["finished"] <= second["delivered"]


def test_multiline_task_goes_as_one_paste(fake_team: Path) -> None:
    r = staff("ask", "testing", "-", input="line one\nline two\nline three\n")
    assert r.stdout.strip() == "FAKE-REPLY(testing#1): line one\n  line two\n  line three" or (
        r.stdout.strip().splitlines()[0] == "FAKE-REPLY(testing#1): line one" and "line three" in r.stdout
    )


def test_status_json_and_status_files(fake_team: Path, home: Path) -> None:
    st = json.loads(staff("status", "--json", check=True).stdout)
    assert [a["agent_id"] for a in st["agents"]] == ["planning", "coding", "testing"]
    assert {a["status"] for a in st["agents"]} == {"idle"}
    data = json.loads((home / "agents" / "planning.json").read_text())
    assert data["status"] == "idle" and data["pid"] == st["agents"][0]["pid"]
    human = staff("status", check=True).stdout
    assert "planning" in human and "idle" in human


def test_permission_dialog_blocks_and_send_answers(fake_team: Path) -> None:
    tid = staff("submit", "planning", "needs approval [ask]", check=True).stdout.strip()
    # `wait` with a timeout returns while the task is still open: it must be blocked
    r = staff("wait", tid, "--timeout", "1", "--json")
    while json.loads(r.stdout)["state"] != "blocked":
        r = staff("wait", tid, "--timeout", "1", "--json")
    assert "blocked by rule 'permission-dialog'" in staff("explain", "planning", check=True).stdout
    assert "Do you want to proceed?" in staff("screen", "planning", check=True).stdout
    assert staff("answer", "planning", "1", check=True).stdout.startswith("planning: answered, now ")
    done = json.loads(staff("wait", tid, "--json", check=True).stdout)
    assert done["state"] == "done" and done["answer"].startswith("FAKE-REPLY(planning#1): needs approval")


def test_crash_fails_task_then_agent_restarts_with_context(fake_team: Path) -> None:
    assert staff("ask", "coding", "remember me").returncode == 0
    r = staff("ask", "coding", "[crash] now")
    assert r.returncode == 1 and "crashed (exit status 3)" in r.stderr
    # restart policy on-failure: the agent comes back, resumed, and answers
    r = staff("ask", "coding", "recall", "--timeout", "30")
    assert r.returncode == 0, r.stderr
    assert "1) remember me" in r.stdout


def test_kill_spawn_restart(fake_team: Path) -> None:
    assert "exited" in staff("kill", "testing", check=True).stdout
    r = staff("ask", "testing", "hi")
    assert r.returncode == 2 and "staff spawn testing" in r.stderr
    assert staff("spawn", "testing", check=True).returncode == 0
    assert staff("ask", "testing", "back", check=True).stdout.startswith("FAKE-REPLY(testing#")
    old = json.loads(staff("status", "--json").stdout)["agents"][1]["pid"]
    staff("restart", "coding", check=True)
    new = json.loads(staff("status", "--json").stdout)["agents"][1]["pid"]
    assert new != old


def test_screen_logs_explain(fake_team: Path) -> None:
    staff("ask", "planning", "show me", check=True)
    assert "FAKE-REPLY(planning#1): show me" in staff("screen", "planning", check=True).stdout
    assert "FAKE-REPLY(planning#1): show me" in staff("logs", "planning", check=True).stdout
    ex = staff("explain", "planning", check=True).stdout
    assert "idle by rule 'idle-prompt'" in ex and "working-footer" in ex


def test_bad_input_keeps_daemon_up(fake_team: Path, home: Path) -> None:
    r = staff("ask", "nobody", "hi")
    assert r.returncode == 2 and r.stderr.strip() == (
        "staff: unknown agent 'nobody' (agents: planning, coding, testing)"
    )
    r = staff("answer", "planning", "1", "--timeout", "0")
    assert r.returncode == 2 and r.stderr.strip() == "staff: planning is idle, not blocked on a question"
    r = staff("send", "nobody", "x")
    assert r.returncode == 2 and "unknown agent" in r.stderr
    r = staff("wait", "T-nope")
    assert r.returncode == 2 and "unknown task" in r.stderr
    # garbage on the socket: error replies, then a normal request still works
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(socket_path(home)))
        s.sendall(b'not json\n[1,2]\n{"cmd": "frobnicate"}\n{"cmd": "submit", "to": 5}\n')
        replies = b""
        while replies.count(b"\n") < 4:
            replies += s.recv(65536)
    msgs = [json.loads(line)["error"]["message"] for line in replies.splitlines()]
    assert any("malformed JSON" in m for m in msgs) and any("unknown command" in m for m in msgs)
    assert any("must be a JSON object" in m for m in msgs) and any(
        "field 'to' must be str" in m for m in msgs
    )
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(socket_path(home)))
        # the daemon may answer and hang up before we finish sending
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            s.sendall(b"{" + b" " * (2 << 20) + b"}\n")
        data = s.recv(65536)
    assert b"too large" in data
    assert staff("ask", "planning", "still here", check=True).returncode == 0


def test_no_daemon(home: Path) -> None:
    r = staff("status")
    assert r.returncode == 2 and "no daemon is running" in r.stderr and "staff up" in r.stderr
    r = staff("ask", "planning", "hi")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert staff("down").returncode == 0


def test_malformed_config_names_file_and_line(home: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[agents.a]\ncommand = ["x"]\n\n[agents.b]\ncommand = "y"\nrestrat = "never"\n')
    r = staff("up", "-c", str(bad))
    assert r.returncode == 2 and f"{bad}:6:" in r.stderr and "unknown key 'restrat'" in r.stderr
    bad.write_text('[agents.a]\ncommand = ["x"\n')
    r = staff("up", "-c", str(bad))
    assert r.returncode == 2 and f"{bad}:2" in r.stderr and "TOML syntax error" in r.stderr
    bad.write_text("[agents.a]\nprofile = 'fake'\n")
    r = staff("up", "-c", str(bad))
    assert r.returncode == 2 and f"{bad}:1: agents.a.command" in r.stderr
    assert staff("status").returncode == 2  # nothing was started


def test_missing_command_is_reported_and_daemon_stays(home: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "staff.toml"
    cfg.write_text(fake_team_toml(("planning",)) + '\n[agents.broken]\ncommand = ["no-such-agent-cmd"]\n')
    r = staff("up", "-c", str(cfg))
    try:
        assert r.returncode == 0
        assert "agent broken did not start: command not found: no-such-agent-cmd" in r.stderr
        r = staff("ask", "broken", "hi")
        assert r.returncode == 2 and "not running (command not found" in r.stderr
        assert staff("ask", "planning", "fine", check=True).stdout.startswith("FAKE-REPLY")
    finally:
        staff("down")


def test_up_is_idempotent_and_down_stops_agents(home: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "staff.toml"
    cfg.write_text(fake_team_toml(("planning",)))
    staff("up", "-c", str(cfg), check=True)
    assert "already running" in staff("up", "-c", str(cfg), check=True).stdout
    pid = json.loads(staff("status", "--json").stdout)["agents"][0]["pid"]
    assert "stopped" in staff("down", check=True).stdout
    assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_console_script_entry_points() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "supervisor", "--help"], capture_output=True, text=True, cwd=REPO
    )
    for cmd in (
        "up",
        "down",
        "status",
        "ask",
        "submit",
        "wait",
        "send",
        "screen",
        "explain",
        "logs",
        "spawn",
        "kill",
        "restart",
    ):
        assert cmd in out.stdout


def test_inbox_post_read_ack(fake_team: Path, home: Path) -> None:
    from supervisor.protocol import Client

    with Client(socket_path(home)) as c:
        c.call("inbox_post", title="build failed", body="make: *** [all] Error 2", source="monitor")
    out = staff("inbox", check=True).stdout
    assert "[monitor] build failed" in out and "Error 2" in out
    assert "build failed" in staff("inbox", "--ack", check=True).stdout
    assert staff("inbox", check=True).stdout.strip() == "inbox: nothing new"
    assert "(read)" in staff("inbox", "--all", check=True).stdout


def test_answer_resends_a_key_the_dialog_ignored(home: Path, tmp_path: Path) -> None:
    """Like the real Claude Code, this fake drops keys for a moment after its dialog shows:
    `staff answer`, sent the instant the agent is blocked, sees the question unchanged and
    sends the key again."""
    cfg = tmp_path / "staff.toml"
    cfg.write_text(fake_team_toml(("deaf",), extra='env = { FAKE_CLAUDE_DIALOG_DEAF = "0.5" }'))
    staff("up", "-c", str(cfg), check=True)
    try:
        tid = staff("submit", "deaf", "needs approval [ask]", check=True).stdout.strip()
        got = json.loads(staff("answer", "deaf", "1", "--json", check=True).stdout)
        assert got["tries"] == 2 and got["state"] in ("working", "idle"), got
        done = json.loads(staff("wait", tid, "--json", check=True).stdout)
        assert done["state"] == "done" and done["answer"].startswith("FAKE-REPLY(deaf#1): needs approval")
    finally:
        staff("down")
