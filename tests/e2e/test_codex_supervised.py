"""The real Codex CLI (npm, pinned 0.171.0) supervised by the daemon, against the mock
OpenAI Responses API: spawn → idle → task → working → idle with the answer Codex recorded,
a reply paused 5 s mid-way never read as idle, a command approval surfaced as `blocked`
and answered with `staff answer`, a multi-line task of over 1 000 characters arriving whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fixtures.mock_openai import MockServer
from tests.conftest import staff
from tests.helpers import agent_team as team
from tests.helpers.events import Events

pytestmark = pytest.mark.agents
CODEX = team.require_agent("codex")
codex_team = team.team_fixture("codex", CODEX, 'role_text = "You review code."\n')


def test_real_codex_round_trip_pause_approval_and_long_task(
    codex_team: tuple[Path, MockServer, Events],
) -> None:
    work, server, events = codex_team
    team.check_round_trip(events, "cx", "idle-prompt")
    first = next(r for r in server.records if r.get("last_user_text") == "hello world [delay=1]")
    assert "You review code." in first["developer_text"], "the role reached the model"

    team.check_paused_reply(events, server, "cx")  # working throughout, idle at its end

    # a command that needs approval: blocked, answered with `staff answer`, then done
    team.check_approval(events, work, "cx", "Would you like to run the following command?",
                        "approval-dialog", "y")

    # a multi-line task over 1 000 characters: Codex gets it whole, the answer is exact
    long = "first line\n" + "x" * 1200 + "\nlast line"
    r = staff("ask", "cx", long, "--json", timeout=90)
    task = json.loads(r.stdout)
    assert task["answer"] == f"MOCK-REPLY: {long}"
    assert [r["last_user_text"] for r in server.records if r.get("kind") == "responses"][-1] == long


def test_workflow_review_by_codex_code_by_another_kind(home: Path, tmp_path: Path) -> None:
    """examples/code-review.toml on a mixed team: the code step goes to role `coding` (here
    the fake Claude, to keep it quick), the review to role `review`, the real Codex."""
    import sys

    from tests.conftest import FAKE, REPO

    coder = (
        "\n[agents.coder]\n"
        f'command = ["{sys.executable}", "{FAKE}", "--startup-delay", "0"]\n'
        'profile = "fake"\nrole = "coding"\n'
    )
    with team.agent_daemon(tmp_path, "codex", CODEX, 'role = "review"\n', coder):
        r = staff("run", str(REPO / "examples" / "code-review.toml"), "--headless",
                  "--input", "change=a dry-run flag", timeout=180)
        assert r.returncode == 0, r.stdout + r.stderr
        runs = sorted((home / "runs").glob("R-*.json"), key=lambda p: p.stat().st_mtime)
        steps = json.loads(runs[-1].read_text())["steps"]
        assert steps["code"]["agent"] == "coder" and steps["review"]["agent"] == "cx", steps
        assert steps["review"]["answer"].startswith("MOCK-REPLY: Review this change (round 1)")
        assert steps["code"]["answer"] in steps["review"]["answer"]


def _resumes(argv: list[str], session: str) -> bool:
    """`resume <id>` right after the command, the role's `-c` after it (the order Codex takes)."""
    i = argv.index("resume")
    return argv[i + 1] == session and argv.index("-c") > i + 1


def test_restart_resumes_codex_own_session_also_after_a_daemon_restart(
    home: Path, tmp_path: Path
) -> None:
    """Codex picks its own session id; the daemon reads it from the rollout, keeps it in the
    journal, and a restart (of the agent, or of the daemon) starts `codex resume <id>`: the
    model then gets the earlier turns again, and the role too. A session Codex lost is not
    resumed (it would exit on the unknown id)."""
    with team.agent_daemon(tmp_path, "codex", CODEX, 'role_text = "You review code."\n') as (_work, server):
        r = staff("ask", "cx", "remember the word teal", "--json", timeout=90)
        assert r.returncode == 0, r.stderr
        session = json.loads(staff("status", "--json", check=True).stdout)["agents"][0]["session_id"]
        rollout = next((tmp_path / "codex-user" / ".codex" / "sessions").glob("*/*/*/rollout-*.jsonl"))
        assert session and session in rollout.name, (session, rollout)
        assert "resume" not in team.argv("cx")

        team.restart(home, "cx")
        assert _resumes(team.argv("cx"), session), team.argv("cx")
        r = staff("ask", "cx", "which word?", "--json", timeout=90)
        assert json.loads(r.stdout)["answer"] == "MOCK-REPLY: which word?", r.stdout + r.stderr
        second = [x for x in server.records if x.get("last_user_text") == "which word?"][-1]
        assert "remember the word teal" in second["user_texts"], second["user_texts"]
        assert "You review code." in second["developer_text"]

        # a reload (a new daemon adopts the running program from the keeper): the same id
        pid = json.loads(staff("status", "--json", check=True).stdout)["agents"][0]["pid"]
        staff("reload", check=True)
        status = json.loads(staff("status", "--json", check=True).stdout)["agents"][0]
        assert (status["pid"], status["session_id"]) == (pid, session)
        assert _resumes(team.argv("cx"), session), team.argv("cx")

        # the daemon goes down (the program with it) and comes up: the journal had the id
        staff("down", check=True)
        staff("up", "-c", str(tmp_path / "staff.toml"), check=True)
        status = json.loads(staff("status", "--json", check=True).stdout)["agents"][0]
        assert status["session_id"] == session
        assert _resumes(team.argv("cx"), session), team.argv("cx")
        r = staff("ask", "cx", "and now?", "--json", timeout=90)
        assert json.loads(r.stdout)["answer"] == "MOCK-REPLY: and now?", r.stdout + r.stderr
        third = [x for x in server.records if x.get("last_user_text") == "and now?"][-1]
        assert {"remember the word teal", "which word?"} <= set(third["user_texts"])
        assert json.loads(staff("status", "--json", check=True).stdout)["agents"][0]["session_id"] == session

        # Codex lost the session (its home wiped): `resume <id>` would exit at once, so a
        # restart starts a new conversation instead
        rollout.unlink()
        team.restart(home, "cx")
        assert "resume" not in team.argv("cx"), team.argv("cx")
        r = staff("ask", "cx", "fresh start", "--json", timeout=90)
        assert json.loads(r.stdout)["answer"] == "MOCK-REPLY: fresh start", r.stdout + r.stderr
