"""Text left in an agent's input box: a person's draft holds tasks back, our own is cleared.

Fake Claude agents on real ptys, the real daemon and CLI."""

from __future__ import annotations

import json
from pathlib import Path

from supervisor.protocol import Client, socket_path
from tests.conftest import fake_team_toml, staff
from tests.helpers.events import Events


def test_a_persons_draft_holds_tasks_until_sent_or_cleared(fake_team: Path, home: Path) -> None:
    ev = Events(home)
    try:
        staff("send", "planning", "-l", "half a thought", check=True)
        got = ev.wait(lambda e: e.get("type") == "draft" and e.get("agent") == "planning")
        assert got["draft"] == "half a thought"
        tid = staff("submit", "planning", "the task", check=True).stdout.strip()
        notice = ev.wait(lambda e: e.get("type") == "inbox" and "draft" in e["item"]["title"])
        assert notice["item"]["title"] == "planning: 1 task(s) wait for the draft in its input box"
        assert "half a thought" in notice["item"]["body"] and notice["item"]["task"] == tid
        st = json.loads(staff("status", "--json", check=True).stdout)
        planning = next(a for a in st["agents"] if a["agent_id"] == "planning")
        assert (planning["draft"], planning["queue"], planning["current_task"]) == ("half a thought", 1, None)
        with Client(socket_path(home)) as c:
            assert c.call("task", task=tid)["state"] == "queued"
        staff("send", "planning", "C-c", check=True)  # the person clears the box
        ev.wait(lambda e: e.get("type") == "draft" and e.get("draft") is None)
        done = json.loads(staff("wait", tid, "--json", check=True).stdout)
        # typed onto the draft, the answer would read "half a thoughtthe task"
        assert done["answer"] == "FAKE-REPLY(planning#1): the task"
    finally:
        ev.close()


def test_a_sent_draft_is_the_persons_turn_and_the_task_follows(fake_team: Path, home: Path) -> None:
    ev = Events(home)
    try:
        staff("send", "coding", "-l", "my own question", check=True)
        ev.wait(lambda e: e.get("type") == "draft" and e.get("agent") == "coding")
        tid = staff("submit", "coding", "delegated", check=True).stdout.strip()
        staff("send", "coding", "Enter", check=True)  # the person sends their draft
        done = json.loads(staff("wait", tid, "--json", check=True).stdout)
        assert done["answer"] == "FAKE-REPLY(coding#2): delegated"
        screen = staff("screen", "coding", "--scrollback", check=True).stdout
        assert "FAKE-REPLY(coding#1): my own question" in screen
    finally:
        ev.close()


def test_a_cancelled_tasks_text_put_back_in_the_box_is_cleared(fake_team: Path, home: Path) -> None:
    ev = Events(home)
    try:
        first = staff("submit", "testing", "first [delay=30]", check=True).stdout.strip()
        working = {"id": first, "state": "working"}
        ev.wait(lambda e: e.get("type") == "task" and working.items() <= e["task"].items())
        staff("cancel", first, check=True)
        # Esc puts "first [delay=30]" back in the box, as Claude Code does; the next
        # task must not be appended to it.
        second = json.loads(staff("ask", "testing", "second", "--json", check=True).stdout)
        assert second["answer"] == "FAKE-REPLY(testing#2): second"
    finally:
        ev.close()


def test_down_quits_idle_agents_with_their_own_keys_and_keeps_a_draft(home: Path, tmp_path: Path) -> None:
    """`staff down`: an idle agent with an empty box is quit with its profile's exit keys
    (Claude's Ctrl-C twice, a shell's `exit`: exit status 0, not a signal); one holding a
    person's draft gets signals instead (the keys would wipe it), and the draft is kept."""
    cfg = tmp_path / "staff.toml"
    cfg.write_text(
        fake_team_toml(("quiet", "drafting"))
        + '\n[agents.sh]\ncommand = ["sh", "-i"]\nprofile = "shell"\nenv = { PS1 = "$ " }\n'
    )
    staff("up", "-c", str(cfg), check=True)
    ev = Events(home)
    try:
        staff("send", "drafting", "-l", "keep me please", check=True)
        ev.wait(lambda e: e.get("type") == "draft" and e.get("agent") == "drafting")
    finally:
        ev.close()
    staff("down", check=True)
    log = (home / "daemon.log").read_text()
    assert "quiet: idle → exited (exit status 0)" in log
    assert "sh: idle → exited (exit status 0)" in log
    assert "drafting: idle → exited (killed by SIGHUP)" in log
    assert "keeper is gone" not in log  # the keeper ending at a `down` is no alarm
    staff("up", "-c", str(cfg), check=True)
    try:
        items = json.loads(staff("inbox", "--json", check=True).stdout)
        kept = [i for i in items if i["title"].startswith("drafting: the draft")]
        assert len(kept) == 1 and kept[0]["body"] == "keep me please"
    finally:
        staff("down")
