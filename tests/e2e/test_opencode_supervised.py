"""The real opencode (npm `opencode-ai`, pinned 1.18.33) supervised by the daemon, against
the mock OpenAI Responses API: spawn → idle → task → working → idle with the answer opencode
recorded in its database, a reply paused 5 s mid-way never read as idle, a shell command's
permission ask and a question of its own surfaced as `blocked` and answered with `staff
answer`, a cancel that interrupts a turn, a multi-line task of over 1 000 characters arriving
whole, and a restart (and `staff down` / `up`) resuming opencode's own session."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fixtures.mock_openai import MockServer
from tests.conftest import staff
from tests.helpers import agent_team as team
from tests.helpers.events import Events

pytestmark = pytest.mark.agents
OPENCODE = team.require_agent("opencode")
opencode_team = team.team_fixture("opencode", OPENCODE)


def _agent() -> dict[str, Any]:
    status: dict[str, Any] = json.loads(staff("status", "--json", check=True).stdout)
    return dict(status["agents"][0])


def _user_texts(server: MockServer) -> list[str]:
    return [r["last_user_text"] for r in server.records if r.get("kind") == "responses"]


def test_real_opencode_round_trip_pause_approval_long_task_and_resume(
    opencode_team: tuple[Path, MockServer, Events], home: Path,
) -> None:
    work, server, events = opencode_team
    team.check_round_trip(events, "oc", "idle-box")
    session = _agent()["session_id"]
    assert session and session.startswith("ses_"), "the session opencode chose was adopted"

    team.check_paused_reply(events, server, "oc")  # working throughout, idle at its end

    # "!" (typed, it switches opencode's box to a shell) and a leading "/" (its commands) reach
    # the model as a prompt: pasted, the "/" after the profile's literal prefix
    r = staff("ask", "oc", "!echo not run, not here!", "--json", timeout=90)
    assert json.loads(r.stdout)["answer"] == "MOCK-REPLY: !echo not run, not here!", r.stdout + r.stderr
    r = staff("ask", "oc", "/exit", "--json", timeout=90)
    assert json.loads(r.stdout)["answer"] == "MOCK-REPLY: Task: /exit", r.stdout + r.stderr

    # a shell command opencode asks permission for: blocked, answered with `staff answer`
    team.check_approval(events, work, "oc", "Permission required", "permission-ask", "Enter")  # Allow once

    # its question tool: blocked too, the first choice taken with Enter
    tid = staff("submit", "oc", "pick one [ask=Which colour?]", check=True).stdout.strip()
    events.wait(lambda e: e.get("type") == "task" and e["task"]["id"] == tid
                and e["task"]["state"] == "blocked", 60)
    assert "blocked by rule 'question-ask'" in staff("explain", "oc", check=True).stdout
    staff("answer", "oc", "Enter", check=True)
    done = json.loads(staff("wait", tid, "--json", "--timeout", "90", check=True).stdout)
    assert done["answer"].startswith(
        'MOCK-REPLY: tool result: User has answered your questions: "Which colour?"="Yes"'), done

    # a multi-line task over 1 000 characters: opencode gets it whole, the answer is exact.
    # A paste of 3+ lines or 150+ characters becomes a "[Pasted ~N lines]" token in its box,
    # which it sends with one space after it: the only change opencode makes to a task.
    long = "first line\n" + "x" * 1200 + "\nlast line"
    r = staff("ask", "oc", long, "--json", timeout=90)
    task = json.loads(r.stdout)
    assert _user_texts(server)[-1] == long + " "
    assert task["answer"] == f"MOCK-REPLY: {long} "

    # a cancelled turn: the profile's interrupt (Esc twice) ends it long before its reply
    # would have come, and the next task starts from a clean box
    team.check_cancel(events, server, "oc")

    # a restart resumes opencode's own session: --session <id>, and the model sees the past
    team.restart(home, "oc")
    argv = Path(f"/proc/{_agent()['pid']}/cmdline").read_bytes().split(b"\0")
    assert b"--session" in argv and argv[argv.index(b"--session") + 1].decode() == session, argv
    r = staff("ask", "oc", "after the restart", "--json", timeout=90)
    task = json.loads(r.stdout)
    assert task["answer"] == "MOCK-REPLY: after the restart", task
    last = [r for r in server.records if r.get("last_user_text") == "after the restart"][-1]
    assert any("hello world [delay=1]" in t for t in last["user_texts"]), "the resumed session has its past"

    # the daemon goes down (opencode with it) and comes up: the journal kept the id
    staff("down", check=True)
    staff("up", "-c", str(work.parent / "staff.toml"), check=True)
    assert _agent()["session_id"] == session
    argv = Path(f"/proc/{_agent()['pid']}/cmdline").read_bytes().split(b"\0")
    assert argv[argv.index(b"--session") + 1].decode() == session, argv
    r = staff("ask", "oc", "and after down and up", "--json", timeout=90)
    assert json.loads(r.stdout)["answer"] == "MOCK-REPLY: and after down and up", r.stdout + r.stderr
    last = [r for r in server.records if r.get("last_user_text") == "and after down and up"][-1]
    assert {"after the restart", "after the cancel"} <= {t.strip() for t in last["user_texts"]}
