"""The real Aider (PyPI aider-chat, pinned 0.86.2) supervised by the daemon, against the mock
chat completions API: spawn → idle → task → working → idle with the reply Aider recorded in
its chat history (exactly what the mock sent), a reply paused 5 s mid-way never read as idle,
its questions ("Run shell command?", "Add command output to the chat?") surfaced as `blocked`
and answered with `staff answer`, a multi-line task of over 1 000 characters arriving whole, a
cancel that interrupts a turn, and a restart (of the agent, or of the daemon) that loads the
chat back (`--restore-chat-history`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.mock_openai import MockServer
from tests.conftest import staff
from tests.helpers import agent_team as team
from tests.helpers.events import Events

pytestmark = pytest.mark.agents
AIDER = team.require_agent("aider")
aider_team = team.team_fixture("aider", AIDER)


def _chats(server: MockServer) -> list[dict[str, object]]:
    """The model requests of turns (streamed); commit messages are asked without a stream."""
    return [r for r in server.records if r.get("kind") == "chat" and r.get("stream")]


def test_real_aider_round_trip_pause_questions_long_task_and_restart(
    aider_team: tuple[Path, MockServer, Events], home: Path,
) -> None:
    work, server, events = aider_team
    team.check_round_trip(events, "ad", "idle-prompt")
    assert _chats(server)[-1]["last_user_text"] == "hello world [delay=1]"

    team.check_paused_reply(events, server, "ad")  # working throughout, idle at its end

    # a shell command in the reply: two questions, each blocked and answered with `staff answer`
    tid = staff("submit", "ad", "run it [bash=echo hi > made.txt; cat made.txt]", check=True).stdout.strip()
    events.wait_state("ad", "blocked", 60)
    assert "Run shell command?" in staff("screen", "ad", check=True).stdout
    assert "blocked by rule 'question'" in staff("explain", "ad", check=True).stdout
    assert "answered, now" in staff("answer", "ad", "y", "Enter", check=True).stdout
    with events.cond:  # the second question: blocked again
        assert events.cond.wait_for(lambda: events.states("ad").count("blocked") >= 2, 30), (
            events.states("ad"), staff("screen", "ad").stdout, staff("explain", "ad").stdout)
    assert "Add command output to the chat?" in staff("screen", "ad", check=True).stdout
    assert "answered, now" in staff("answer", "ad", "n", "Enter", check=True).stdout
    done = json.loads(staff("wait", tid, "--json", "--timeout", "90", check=True).stdout)
    assert done["state"] == "done", done
    assert done["answer"] == "MOCK-REPLY: run this:\n\n```bash\necho hi > made.txt; cat made.txt\n```"
    assert (work / "made.txt").read_text().strip() == "hi"

    # a multi-line task over 1 000 characters: Aider gets it whole, the answer is exact
    long = "first line\n" + "x" * 1200 + "\nlast line"
    r = staff("ask", "ad", long, "--json", timeout=90)
    task = json.loads(r.stdout)
    assert task["answer"] == f"MOCK-REPLY: {long}", (task["error"], staff("screen", "ad").stdout[-3000:])
    assert _chats(server)[-1]["last_user_text"] == long

    # a cancelled turn: one Ctrl-C ends it long before its reply would have come, the next
    # task starts from a clean prompt and its answer is its own (not the cancelled turn's)
    team.check_cancel(events, server, "ad")

    # a restart loads the chat history back: the model sees the earlier turns
    assert "--restore-chat-history" not in team.argv("ad")
    team.restart(home, "ad")
    assert team.argv("ad")[-1] == "--restore-chat-history", team.argv("ad")
    r = staff("ask", "ad", "which word?", "--json", timeout=90)
    assert json.loads(r.stdout)["answer"] == "MOCK-REPLY: which word?", r.stdout + r.stderr
    texts = _chats(server)[-1]["user_texts"]
    assert isinstance(texts, list) and any("hello world [delay=1]" in t for t in texts), texts

    # the daemon goes down (Aider with it) and comes up: the journal says it ran before
    staff("down", check=True)
    staff("up", "-c", str(work.parent / "staff.toml"), check=True)
    fresh = Events(home)  # the first subscription ended with the daemon
    try:
        fresh.wait_state("ad", "idle", 60)
    finally:
        fresh.close()
    assert team.argv("ad")[-1] == "--restore-chat-history", team.argv("ad")
    r = staff("ask", "ad", "and after down and up", "--json", timeout=90)
    assert json.loads(r.stdout)["answer"] == "MOCK-REPLY: and after down and up", r.stdout + r.stderr
    texts = _chats(server)[-1]["user_texts"]
    assert isinstance(texts, list) and "which word?" in [t.strip() for t in texts], texts
