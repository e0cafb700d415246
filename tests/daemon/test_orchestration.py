"""Fan-out, monitors with the inbox, agent pools and git worktrees, on real ptys (fake agents)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor.client.fanout import side_by_side
from supervisor.protocol import Client, socket_path
from tests.conftest import FAKE, staff

FAKE_CMD = f'command = ["{sys.executable}", "{FAKE}", "--startup-delay", "0"]\nprofile = "fake"\n'


@pytest.fixture
def team(home: Path, tmp_path: Path) -> Iterator[Any]:
    """`team(toml)` starts a daemon with that team file; every daemon is stopped after the test."""
    started = []

    def up(text: str) -> Path:
        cfg = tmp_path / "staff.toml"
        cfg.write_text(text)
        staff("up", "-c", str(cfg), check=True)
        started.append(cfg)
        return cfg

    try:
        yield up
    finally:
        if started:
            staff("down")


def monitor_wait(home: Path, mid: str, timeout: float = 30) -> dict[str, Any]:
    with Client(socket_path(home), timeout=timeout + 10) as c:
        result: dict[str, Any] = c.call("monitor_wait", id=mid, timeout=timeout)
        return result


def inbox(home: Path) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(staff("inbox", "--json", check=True).stdout)
    return items


# -- fan-out ----------------------------------------------------------------------------------------
def test_fan_out_to_named_agents_and_to_a_role(team: Any, tmp_path: Path) -> None:
    team(
        "".join(
            f'[agents.{n}]\n{FAKE_CMD}role = "{r}"\n\n'
            for n, r in (("r1", "review"), ("r2", "review"), ("c", "coding"))
        )
    )
    r = staff("ask", "r1,r2,c", "compare [delay=1]", check=True)
    lines = r.stdout.splitlines()
    assert re.match(r"^r1\s+│ r2\s+│ c$", lines[0]), r.stdout  # side by side, agent names on top
    for name in ("r1", "r2", "c"):
        assert f"FAKE-REPLY({name}#1)" in r.stdout
    tasks = json.loads(staff("ask", "--all", "review", "again", "--json", check=True).stdout)
    assert [t["agent"] for t in tasks] == ["r1", "r2"]
    assert [t["answer"] for t in tasks] == ["FAKE-REPLY(r1#2): again", "FAKE-REPLY(r2#2): again"]
    # the three ran at once: each started before any other finished
    first = json.loads(staff("ask", "r1,r2,c", "x [delay=1]", "--json", check=True).stdout)
    assert max(t["delivered"] for t in first) < min(t["finished"] for t in first)
    assert staff("ask", "--all", "nobody", "x").returncode == 2


def test_side_by_side_layout() -> None:
    tasks = [
        {"agent": "a", "state": "done", "answer": "one two three four five six seven eight nine ten"},
        {"agent": "b", "state": "failed", "error": "crashed"},
    ]
    text = side_by_side(tasks, 70)
    assert text.splitlines()[0].split("│")[0].strip() == "a" and "[failed: crashed]" in text
    assert side_by_side(tasks, 40).startswith("── a ")  # too narrow: stacked


# -- monitors ----------------------------------------------------------------------------------------
def read_fifo(path: Path, timeout: float = 30) -> str:
    """Block until the notify command writes the FIFO (no polling), with a safety timeout."""
    out: list[str] = []
    t = threading.Thread(target=lambda: out.append(path.read_text()), daemon=True)
    t.start()
    t.join(timeout)
    assert out, "the notify command never ran"
    return out[0]


def test_monitor_on_idle_posts_exactly_one_message_and_notifies(
    fake_team: Path, home: Path, tmp_path: Path
) -> None:
    fifo = tmp_path / "notify.fifo"
    os.mkfifo(fifo)
    script = tmp_path / "notify.py"
    script.write_text("import os, sys\nopen(sys.argv[1], 'w').write(os.environ['STAFF_MESSAGE'])\n")
    tid = staff("submit", "planning", "build it [delay=3]", check=True).stdout.strip()
    mid = staff(
        "watch", "planning", "--until", "idle", "--notify", f"{sys.executable} {script} {fifo}", check=True
    ).stdout.strip()
    assert mid.startswith("W-")
    assert mid in staff("monitors", check=True).stdout
    fired = monitor_wait(home, mid)
    assert fired["fired"] == 1
    task = json.loads(staff("wait", tid, "--json", check=True).stdout)
    assert task["state"] == "done"  # it fired when the task was over, not before
    message = read_fifo(fifo)
    assert message.startswith("planning is idle") and "FAKE-REPLY(planning#1): build it" in message
    # more work, more idle transitions: still exactly one message (the monitor fired once)
    staff("ask", "planning", "more [delay=0.5]", check=True)
    items = [i for i in inbox(home) if i["source"] == "monitor"]
    assert len(items) == 1 and items[0]["title"] == "planning is idle"
    assert mid not in staff("monitors", check=True).stdout
    staff("inbox", "--ack", check=True)
    assert inbox(home) == []


def test_monitor_regex_fires_on_screen_text(fake_team: Path, home: Path) -> None:
    mid = staff("watch", "coding", "--until", r"regex:MAGIC-\d+", check=True).stdout.strip()
    assert monitor_wait(home, mid, timeout=0.2)["fired"] == 0  # not on screen yet
    staff("ask", "coding", "print MAGIC-42 please", check=True)
    fired = monitor_wait(home, mid)
    assert fired["fired"] == 1 and "MAGIC-42" in fired["last_message"]
    (item,) = [i for i in inbox(home) if i["source"] == "monitor"]
    assert "screen matched" in item["title"] and "MAGIC-42" in item["title"]


def test_monitors_wait_for_what_comes_after_the_watch(fake_team: Path, home: Path) -> None:
    """Issue 20: `--until idle` on an idle agent waits for its next piece of work to end, and
    `regex:` ignores text already on the screen; the message carries the lines above the input
    box, not the padded screen bottom with the box and its footer."""
    staff("ask", "coding", "print OLD-7 please", check=True)
    idle = staff("watch", "coding", "--until", "idle", check=True).stdout.strip()
    regex = staff("watch", "coding", "--until", r"regex:OLD-\d+", check=True).stdout.strip()
    assert monitor_wait(home, idle, timeout=0.3)["fired"] == 0  # idle, nothing on its way
    assert monitor_wait(home, regex, timeout=0.1)["fired"] == 0  # OLD-7 was there before
    staff("ask", "coding", "now OLD-8", check=True)
    hit = monitor_wait(home, regex)
    assert "OLD-8" in hit["last_message"] and "OLD-7" not in hit["last_message"]
    assert monitor_wait(home, idle)["fired"] == 1
    (item,) = [i for i in inbox(home) if i["title"] == "coding is idle"]
    lines = item["body"].splitlines()
    assert lines[-2:][0] == "● FAKE-REPLY(coding#2): now OLD-8", item["body"]  # then "✻ Worked for…"
    assert all(ln.strip() and "─" not in ln and "shortcuts" not in ln for ln in lines), item["body"]


def test_monitor_task_with_then(fake_team: Path, home: Path) -> None:
    """A monitor task: give the agent work, tell the inbox when it is over, then follow up."""
    r = staff(
        "watch",
        "testing",
        "--task",
        "run the build [delay=1]",
        "--until",
        "idle",
        "--then",
        "follow up",
        "--title",
        "build",
        "--wait",
        "--timeout",
        "30",
        check=True,
    )
    assert r.stdout.strip() == "build: testing is idle"
    (item,) = [i for i in inbox(home) if i["source"] == "monitor"]
    assert item["task"] and f"task {item['task']} done: FAKE-REPLY(testing#1): run the build" in item["body"]
    recall = staff("ask", "testing", "recall", check=True).stdout
    assert "1) run the build [delay=1] | 2) follow up" in recall
    assert staff("watch", "nobody", "--until", "idle").returncode == 2
    assert "unknown condition" in staff("watch", "testing", "--until", "sleepy").stderr


# -- pools -------------------------------------------------------------------------------------------
def test_pool_grows_to_max_and_runs_each_task_once(team: Any, home: Path) -> None:
    team(f"[roles.worker]\n{FAKE_CMD}min = 0\nmax = 3\nidle_timeout = 120\n")
    assert json.loads(staff("status", "--json", check=True).stdout)["agents"] == []  # min = 0
    ids = [staff("submit", "role:worker", f"job {i} [delay=1]", check=True).stdout.strip() for i in range(6)]
    done = [json.loads(staff("wait", t, "--json", "--timeout", "60", check=True).stdout) for t in ids]
    agents = json.loads(staff("status", "--json", check=True).stdout)["agents"]
    assert sorted(a["agent_id"] for a in agents) == ["worker-1", "worker-2", "worker-3"]
    seen = set()
    for i, t in enumerate(done):
        m = re.fullmatch(r"FAKE-REPLY\((worker-\d)#(\d)\): job (\d) \[delay=1\]", t["answer"])
        assert m and int(m.group(3)) == i and m.group(1) == t["agent"], t["answer"]
        seen.add((m.group(1), m.group(2)))
    assert len(seen) == 6  # six distinct turns: no task ran twice
    assert sum(int(a["context_summary"].split()[0]) for a in agents) == 6


def test_pool_stops_idle_agents_above_min(team: Any, home: Path) -> None:
    team(f"[roles.temp]\n{FAKE_CMD}min = 1\nmax = 2\nidle_timeout = 0.5\n")
    with Client(socket_path(home), timeout=60) as c:
        events = c.stream("subscribe")
        next(events)  # hello; a second connection submits, this one only listens
        with Client(socket_path(home)) as s:
            tasks = [s.call("submit", to="role:temp", text=f"t{i} [delay=1]")["id"] for i in range(2)]
        actions = []
        for frame in events:
            ev = frame.get("event") or {}
            if ev.get("type") == "pool":
                actions.append((ev["action"], ev["agent"]))
                if ev["action"] == "stop":
                    break
    # temp-1 came up for min = 1; the second task made temp-2; the first to idle out goes
    assert actions[0] == ("spawn", "temp-2") and actions[1][0] == "stop" and len(actions) == 2
    names = [a["agent_id"] for a in json.loads(staff("status", "--json", check=True).stdout)["agents"]]
    assert names == [n for n in ("temp-1", "temp-2") if n != actions[1][1]]  # min = 1 kept
    for t in tasks:
        assert json.loads(staff("wait", t, "--json", check=True).stdout)["state"] == "done"


def test_a_reload_adopts_the_pools_clones_with_their_tasks(team: Any, home: Path) -> None:
    """A pool's clones are not in the team file: a reload (an upgrade) takes them back from the
    keeper, pid and task kept, instead of ending them as strangers (a host's pools too)."""
    team(f"[roles.worker]\n{FAKE_CMD}min = 1\nmax = 2\nidle_timeout = 120\n")
    task = staff("submit", "role:worker", "across the reload [delay=3]", check=True).stdout.strip()
    with Client(socket_path(home), timeout=30) as c:
        for frame in c.stream("wait", task=task, progress=True, timeout=30):
            if (frame.get("event") or {}).get("task", {}).get("state") == "working":
                break
    def pids() -> dict[str, int]:
        agents = json.loads(staff("status", "--json", check=True).stdout)["agents"]
        return {a["agent_id"]: a["pid"] for a in agents}

    before = pids()
    assert list(before) == ["worker-1"]
    staff("reload", check=True)
    assert pids() == before
    done = json.loads(staff("wait", task, "--json", "--timeout", "60", check=True).stdout)
    assert done["state"] == "done" and done["answer"].startswith("FAKE-REPLY(worker-1#1): across"), done


def test_pool_config_errors_say_file_and_line(home: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(f"[roles.w]\n{FAKE_CMD}min = 3\nmax = 2\n")
    r = staff("up", "-c", str(cfg))
    assert r.returncode == 2 and f"{cfg}:5: roles.w.max: below min" in r.stderr
    cfg.write_text(f"[roles.w]\n{FAKE_CMD}maxx = 2\n")
    assert f"{cfg}:4: roles.w: unknown key 'maxx'" in staff("up", "-c", str(cfg)).stderr


# -- worktrees --------------------------------------------------------------------------------------
def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def test_worktrees_per_agent_and_clean_refuses_dirty(team: Any, home: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git("init", "-q", "-b", "main", cwd=repo)
    (repo / "README").write_text("hello\n")
    git("add", ".", cwd=repo)
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init", cwd=repo)
    team("".join(f'[agents.{n}]\n{FAKE_CMD}cwd = "{repo}"\nworktree = true\n\n' for n in ("c1", "c2")))
    agents = {a["agent_id"]: a for a in json.loads(staff("status", "--json", check=True).stdout)["agents"]}
    w1, w2 = agents["c1"]["worktree"], agents["c2"]["worktree"]
    assert w1 and w2 and w1 != w2 and Path(w1, "README").is_file()
    listed = git("worktree", "list", "--porcelain", cwd=repo)
    assert f"worktree {w1}\n" in listed and "branch refs/heads/staff/c1" in listed
    assert f"worktree {w2}\n" in listed and "branch refs/heads/staff/c2" in listed
    assert "worktree" in staff("status", check=True).stdout
    assert staff("ask", "c1", "hi", check=True).stdout.startswith("FAKE-REPLY(c1#1)")
    # both agents live: nothing to clean
    assert "no worktrees of stopped agents" in staff("worktree", "clean", check=True).stdout
    staff("kill", "c1", check=True)
    staff("kill", "c2", check=True)
    Path(w2, "notes.txt").write_text("uncommitted\n")
    r = staff("worktree", "clean")
    assert r.returncode == 1
    assert f"removed {w1}" in r.stdout and f"kept {w2}" in r.stderr and "uncommitted" in r.stderr
    assert not Path(w1).exists() and Path(w2, "notes.txt").exists()
    r = staff("worktree", "clean", "--force", check=True)
    assert f"removed {w2}" in r.stdout and not Path(w2).exists()
    assert "staff/c1" in git("branch", "--list", "staff/*", cwd=repo)  # branches are kept


def test_monitors_survive_a_daemon_restart(fake_team: Path, home: Path) -> None:
    mid = staff("watch", "coding", "--until", "regex:NOT-YET", "--title", "kept", check=True).stdout.strip()
    staff("down", check=True)
    staff("up", "-c", str(fake_team), check=True)
    assert mid in staff("monitors", check=True).stdout  # re-armed from monitors.json
    staff("ask", "coding", "now NOT-YET is here", check=True)
    assert monitor_wait(home, mid)["fired"] == 1
    staff("unwatch", mid, check=True)  # a fired one-shot monitor: unwatch is a no-op, not an error
