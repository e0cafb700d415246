"""Text left in an agent's input box: a person's draft holds tasks back, our own is cleared.

Fake Claude agents on real ptys, the real daemon and CLI."""

from __future__ import annotations

import json
from pathlib import Path

from supervisor.protocol import Client, socket_path
from tests.conftest import staff
from tests.events import Events


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
