"""The real Claude Code (npm, pinned 2.1.330) supervised by the daemon, against the mock API.

This is the proof that the detection rules, delivery and answer extraction hold on the
real program, not only on our fake: spawn → idle → task → working → idle with the answer
taken from Claude's transcript, and a permission dialog surfaced as `blocked` and
answered with `staff answer`; a person's draft in its box holds a task until cleared.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import staff
from tests.helpers.agent_team import check_round_trip
from tests.helpers.claude_team import claude_daemon, require_claude
from tests.helpers.events import Events

pytestmark = pytest.mark.claude
CLAUDE = require_claude()


@pytest.fixture
def claude_team(home: Path, tmp_path: Path) -> Iterator[tuple[Path, Events]]:
    with claude_daemon(tmp_path, CLAUDE, ["--permission-mode", "default"]) as work:
        events = Events(home)
        try:
            yield work, events
        finally:
            events.close()


def test_real_claude_round_trip_and_permission(claude_team: tuple[Path, Events]) -> None:
    work, events = claude_team
    check_round_trip(events, "cc", "idle-prompt")

    # a tool that needs permission: blocked, answered with `staff answer`, then done
    tid = staff("submit", "cc", "run it [bash=echo hi > made.txt]", check=True).stdout.strip()
    events.wait_state("cc", "blocked", 60)
    assert "Do you want to proceed?" in staff("screen", "cc", check=True).stdout
    assert "blocked by rule 'permission-dialog'" in staff("explain", "cc", check=True).stdout
    assert "answered, now" in staff("answer", "cc", "1", check=True).stdout
    done = json.loads(staff("wait", tid, "--json", "--timeout", "90", check=True).stdout)
    assert done["state"] == "done", done
    assert "MOCK-REPLY: tool result" in done["answer"]
    assert (work / "made.txt").read_text().strip() == "hi"
    assert json.loads(staff("status", "--json").stdout)["agents"][0]["status"] == "idle"


def test_real_claude_draft_holds_the_task_until_ctrl_c_clears_it(claude_team: tuple[Path, Events]) -> None:
    """The draft is read from the real `❯` box, and the real Claude Code clears a non-empty
    box on Ctrl-C: then the task goes in alone. (Its footer then says 'Press Ctrl-C again to
    exit' for a while, not 'esc to interrupt': the turn is seen by its spinner line.)"""
    _work, events = claude_team
    staff("send", "cc", "-l", "half a thought", check=True)
    got = events.wait(lambda e: e.get("type") == "draft" and e.get("agent") == "cc", 60)
    assert got["draft"] == "half a thought"
    tid = staff("submit", "cc", "the task", check=True).stdout.strip()
    events.wait(lambda e: e.get("type") == "inbox" and e["item"]["task"] == tid)
    staff("send", "cc", "C-c", check=True)
    events.wait(lambda e: e.get("type") == "draft" and e.get("agent") == "cc" and e["draft"] is None)
    done = json.loads(staff("wait", tid, "--json", "--timeout", "50", check=True).stdout)
    assert done["answer"] == "MOCK-REPLY: the task", done
