"""The real Gemini CLI (npm, pinned 0.61.0) supervised by the daemon, against the mock Gemini
API: spawn → idle → task → working → idle with the answer Gemini recorded in its chat file, a
reply paused 5 s mid-way never read as idle, a shell approval surfaced as `blocked` and
answered with `staff answer`, a multi-line task of over 1 000 characters arriving whole, and
a restart resuming Gemini's own session (`--resume <id>`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.mock_gemini import MockServer
from tests.conftest import staff
from tests.helpers import agent_team as team
from tests.helpers.events import Events

pytestmark = pytest.mark.agents
GEMINI = team.require_agent("gemini")
gemini_team = team.team_fixture("gemini", GEMINI)


def test_real_gemini_round_trip_pause_approval_long_task_and_resume(
    gemini_team: tuple[Path, MockServer, Events], home: Path, tmp_path: Path,
) -> None:
    work, server, events = gemini_team
    team.check_round_trip(events, "gm", "idle-prompt")

    team.check_paused_reply(events, server, "gm")  # working throughout, idle at its end

    # a shell command needs approval: blocked, answered with `staff answer`, then done
    team.check_approval(events, work, "gm", "Allow execution of", None, "1")  # either blocked rule

    # a multi-line task over 1 000 characters: Gemini gets it whole, the answer is exact
    # (varied words: a run of one character streamed back trips Gemini's loop detection)
    long = "first line\n" + " ".join(f"w{i:04d}" for i in range(220)) + "\nlast line"
    assert len(long) > 1000
    r = staff("ask", "gm", long, "--json", timeout=90)
    task = json.loads(r.stdout)
    assert task["answer"] == f"MOCK-REPLY: {long}", task
    assert [x["last_user_text"] for x in server.records if x.get("kind") == "stream"][-1] == long

    # Gemini picks its own session id; the daemon reads it from the chat file and a restart
    # starts `gemini --resume <id>`: the model gets the earlier turns again
    session = json.loads(staff("status", "--json", check=True).stdout)["agents"][0]["session_id"]
    chat = next((tmp_path / "gemini-user" / ".gemini" / "tmp").glob("*/chats/session-*.jsonl"))
    assert session and session[:8] in chat.name, (session, chat)
    assert "--resume" not in team.argv("gm")
    team.restart(home, "gm")
    started = team.argv("gm")
    assert started[started.index("--resume") + 1] == session, started
    r = staff("ask", "gm", "which word?", "--json", timeout=90)
    assert json.loads(r.stdout)["answer"] == "MOCK-REPLY: which word?", r.stdout + r.stderr
    last = [x for x in server.records if x.get("last_user_text") == "which word?"][-1]
    assert "hello world [delay=1]" in last["user_texts"], last["user_texts"]
