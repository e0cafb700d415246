"""The real Claude Code (npm, pinned 2.1.330) under the daemon, against the mock API: what
the supervisor hands back is what Claude wrote, its API errors are failures, its session is
followed through `/clear`, and its usage is counted.

Each test runs `staff` as a user would; the mock (fixtures/mock_anthropic.py) scripts the
turns: `[md]` a markdown reply, `[instant]` one delta with no ping, `[status=400]` an error,
`[fail=2:529]` two overloaded answers before the reply.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fixtures.mock_anthropic import MockServer, markdown_reply, start_mock, stop
from supervisor.client.statusline import usage_text
from tests.conftest import staff
from tests.helpers.claude_team import require_claude, write_claude_team
from tests.helpers.events import Events

pytestmark = pytest.mark.claude
CLAUDE = require_claude()

USAGE_FIELDS = {"input_tokens": "input_tokens", "output_tokens": "output_tokens",
                "cache_read_tokens": "cache_read_input_tokens",
                "cache_write_tokens": "cache_creation_input_tokens"}


@dataclass
class Team:
    work: Path
    mock: MockServer
    events: Events

    def ask(self, text: str, *, timeout: float = 90) -> tuple[int, dict[str, Any], str]:
        """`staff ask cc TEXT --json`: exit status, the task (or {}), stderr."""
        r = staff("ask", "cc", text, "--json", "--timeout", str(timeout), timeout=timeout + 30)
        return r.returncode, (json.loads(r.stdout) if r.stdout.strip() else {}), r.stderr

    def ask_id(self, task_id: str, *, timeout: float = 90) -> tuple[int, dict[str, Any], str]:
        """`staff wait ID --json`: exit status, the task, stderr."""
        r = staff("wait", task_id, "--json", "--timeout", str(timeout), timeout=timeout + 30)
        return r.returncode, (json.loads(r.stdout) if r.stdout.strip() else {}), r.stderr

    def agent(self) -> dict[str, Any]:
        status: dict[str, Any] = json.loads(staff("status", "--json", check=True).stdout)
        return dict(status["agents"][0])

    def answered(self, text: str) -> list[dict[str, int]]:
        """The usage the mock reported for each answered main request of this prompt's turn."""
        out: list[dict[str, int]] = []
        ours = False
        for r in self.mock.records:
            if r.get("kind") != "main":
                continue
            if not r.get("tool_result"):  # a prompt starts a turn; tool results continue it
                ours = r.get("last_user_text") == text
            if ours and r.get("usage"):
                out.append(r["usage"])
        return out


@contextmanager
def claude_team(tmp_path: Path, args: tuple[str, ...] = ()) -> Iterator[Team]:
    """The mock, a trusted Claude home, and `staff up` with the one agent `cc`."""
    assert CLAUDE is not None
    server, port = start_mock(log_path=tmp_path / "mock.log")
    work, cfg = write_claude_team(tmp_path, CLAUDE, port, args)
    staff("up", "-c", str(cfg), check=True)
    events: Events | None = None
    try:
        events = Events(Path(os.environ["STAFF_HOME"]))
        yield Team(work, server, events)
    finally:
        if events is not None:
            events.close()
        staff("down")
        stop(server)


@pytest.fixture
def team(home: Path, tmp_path: Path) -> Iterator[Team]:
    with claude_team(tmp_path) as t:
        yield t


def test_a_markdown_reply_comes_back_byte_for_byte_also_when_instant(team: Team) -> None:
    for text in ("plan it [md]", "plan it again [md] [instant]"):
        code, task, err = team.ask(text)
        assert code == 0, err
        assert task["answer"] == markdown_reply(text)
        assert task["answer_source"] == "transcript"
    answer = task["answer"]
    assert "## Plan" in answer and "**one**" in answer and "`make test`" in answer
    assert "```python\n" in answer and max(map(len, answer.splitlines())) > 120  # wider than the pane


def test_an_api_error_fails_the_task_and_the_next_task_is_answered(team: Team) -> None:
    code, task, err = team.ask("this breaks [status=400]")
    assert code == 1
    assert task["state"] == "failed"
    assert task["error"] == "API Error: 400 mock error for this prompt"
    assert task["answer"] is None
    plain = staff("wait", task["id"])  # without --json: one line on stderr, exit 1
    assert plain.returncode == 1 and plain.stdout == ""
    assert plain.stderr.count("\n") == 1 and "API Error: 400" in plain.stderr
    code, task, err = team.ask("and now this")
    assert code == 0, err
    assert task["answer"] == "MOCK-REPLY: and now this"


def test_overloaded_twice_then_answered_is_done_with_the_retries_shown(team: Team) -> None:
    code, task, err = team.ask("flaky [fail=2:529]")
    assert code == 0, err
    assert (task["state"], task["answer"]) == ("done", "MOCK-REPLY: flaky [fail=2:529]")
    assert [r.get("status") for r in team.mock.records if r.get("last_user_text") == "flaky [fail=2:529]"] \
        == [529, 529, None]
    details = [e.get("detail") for e in team.events.items if e.get("type") == "detail"]
    assert any(d and d.startswith("retrying after API error") for d in details), details
    assert team.agent()["detail"] is None  # said while it retried, not after


def test_clear_in_the_pane_is_followed_and_restart_resumes_the_new_session(team: Team) -> None:
    code, _task, _ = team.ask("before the clear")
    assert code == 0
    old = team.agent()["session_id"]
    staff("send", "cc", "-l", "/clear", check=True)
    staff("send", "cc", "Enter", check=True)
    got = team.events.wait(lambda e: e.get("type") == "session" and e.get("agent") == "cc", 30)
    new = got["session_id"]
    assert new != old
    assert team.agent()["session_id"] == new
    code, task, err = team.ask("after the clear")
    assert code == 0, err
    assert task["answer"] == "MOCK-REPLY: after the clear"
    assert task["answer_source"] == "transcript"
    home = Path(os.environ["STAFF_HOME"])
    saved = json.loads((home / "agents" / "cc.json").read_text())
    assert saved["session_id"] == new
    staff("restart", "cc", check=True)
    team.events.wait_state("cc", "idle", 60)
    pid = team.agent()["pid"]
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"--resume" in argv and argv[argv.index(b"--resume") + 1].decode() == new, argv
    code, task, err = team.ask("after the restart")
    assert code == 0, err
    assert task["answer"] == "MOCK-REPLY: after the restart"


def test_usage_per_task_and_per_agent_are_the_sums_of_the_mocks_figures(team: Team) -> None:
    texts = ["count me [lines=3]", "count me too [bash=echo hi]", "and me [md]"]
    tasks = []
    for text in texts:
        code, task, err = team.ask(text)
        assert code == 0, err
        tasks.append(task)
    for text, task in zip(texts, tasks, strict=True):
        reported = team.answered(text)
        assert reported, text
        for ours, theirs in USAGE_FIELDS.items():
            assert task["usage"][ours] == sum(u[theirs] for u in reported), (text, ours)
    every = [r["usage"] for r in team.mock.records if r.get("kind") == "main" and r.get("usage")]
    agent = team.agent()["usage"]
    for ours, theirs in USAGE_FIELDS.items():
        assert agent[ours] == sum(u[theirs] for u in every), ours
    last = every[-1]
    assert agent["context_tokens"] == (last["input_tokens"] + last["cache_read_input_tokens"]
                                       + last["cache_creation_input_tokens"])
    assert agent["context_pct"] == round(100 * agent["context_tokens"] / 200_000, 1)
    assert agent["cost_usd"] > 0
    row = staff("status", check=True).stdout.splitlines()[1].split()  # piped: one line per agent
    assert usage_text(agent).split() == row[4:7], row  # after agent, state, queue, pid


def test_a_usage_limit_holds_the_queue_until_its_reset_and_resumes_by_itself(team: Team) -> None:
    """The mock's `[limit=6]` is a 429 Claude does not retry, whose message names the reset
    (6 s after the first attempt). The task is put back, not failed; nothing is typed into
    the agent before the reset (the next queued task waits too); a timer lifts the hold and
    both tasks are answered, the limited one first."""
    limited, after = "over the limit [limit=6]", "queued behind the limit"
    first = json.loads(staff("submit", "cc", limited, "--json", check=True).stdout)
    held = team.events.wait(lambda e: e.get("type") == "limit" and e.get("until"), 60)
    second = json.loads(staff("submit", "cc", after, "--json", check=True).stdout)
    agent = team.agent()
    assert agent["status"] == "idle" and agent["detail"].startswith("limited until ")
    assert agent["limited_until"] and "usage limit reached" in agent["limit_reason"]
    home = Path(os.environ["STAFF_HOME"])
    assert json.loads((home / "agents" / "cc.json").read_text())["detail"] == agent["detail"]
    plain = staff("status", check=True).stdout  # piped: one line per agent
    assert "limited until" in plain and len(plain.splitlines()) == 2, plain
    code, task, err = team.ask_id(first["id"])
    assert code == 0, err
    assert task["answer"] == f"MOCK-REPLY: {limited}"
    code, task2, err = team.ask_id(second["id"])
    assert code == 0 and task2["answer"] == f"MOCK-REPLY: {after}", err
    typed = [r for r in team.mock.records if r.get("kind") == "main"]
    # nothing reached the API between the limited answer and the reset, and after it the
    # limited task went first
    answered_at = next(r["time"] for r in typed if r.get("status") is None)
    assert answered_at >= held["until"] - 0.01
    assert [r["last_user_text"] for r in typed if r.get("status") is None] == [limited, after]
    assert team.agent()["detail"] is None and team.agent()["limited_until"] is None


def test_background_work_shows_on_an_idle_agent_and_a_monitor_waits_for_its_end(team: Team) -> None:
    """The mock's `[bgbash=…]` is a Bash call with `run_in_background: true`: Claude's turn
    ends while the shell runs (its footer: `· 1 shell ·`), and when the shell ends Claude
    starts a turn of its own to report it."""
    code, task, err = team.ask("start it [bgbash=sleep 8; echo bg-finished]")
    assert code == 0, err
    assert task["answer"].startswith("I will run it in the background.")
    team.events.wait(lambda e: e.get("type") == "background" and e.get("count") == 1, 30)
    agent = team.agent()
    assert (agent["status"], agent["background"]) == ("idle", 1)
    assert "idle · background: 1" in staff("status", check=True).stdout
    home = Path(os.environ["STAFF_HOME"])
    assert json.loads((home / "agents" / "cc.json").read_text())["background"] == 1
    r = staff("watch", "cc", "--until", "background-done", "--wait", "--timeout", "60", "--json",
              timeout=90)
    assert r.returncode == 0, r.stderr
    fired = json.loads(r.stdout)
    assert fired["fired"] == 1 and "finished its background work" in fired["last_message"]
    assert team.agent()["background"] == 0
    code, task, err = team.ask("after the background")  # (after Claude's own turn about it)
    assert code == 0 and task["answer"] == "MOCK-REPLY: after the background", err
