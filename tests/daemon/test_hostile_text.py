"""Property: whatever text a task holds, it ends, with its own answer, and the agent stays usable.

Hypothesis types random task texts (tests/helpers/hostile_text.py) into a fake agent under a real
daemon (issue 15: "What it must show", 2). tests/e2e/test_claude_hostile_text.py runs the same
property on the real Claude Code with fewer examples.
"""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, assume, given, settings

from supervisor.protocol import Client, ProtocolError, socket_path
from tests.helpers.hostile_text import FAKE_DIRECTIVE, marker, task_texts, typeable

TASK_TIMEOUT = 60.0


def check_one(home: Path, agent: str, text: str, answer_head: str) -> None:
    """Submit `text`; it must end done with an answer holding its marker (and no other task's),
    or be refused (nothing to type) / fail with a reason; then the agent answers a plain task."""
    with Client(socket_path(home), timeout=None) as c:
        try:
            task = c.call("submit", to=agent, text=text)
        except ProtocolError as exc:
            assert not typeable(text) and "nothing to type" in exc.message, exc.message
            return
        got = c.call("wait", task=task["id"], timeout=TASK_TIMEOUT)
        assert got["state"] in ("done", "failed"), f"did not end in {TASK_TIMEOUT}s: {got}"
        if got["state"] == "failed":
            assert got["error"], got
        else:
            answer = got["answer"] or ""
            assert answer.startswith(answer_head), got
            assert marker(text) in answer, got
            assert answer.count("[id:") == text.count("[id:"), got  # nothing of another task
        probe = c.call("submit", to=agent, text="plain probe")
        after = c.call("wait", task=probe["id"], timeout=TASK_TIMEOUT)
        assert after["state"] == "done" and after["answer"].endswith("plain probe"), after


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(text=task_texts())
def test_any_task_text_ends_with_its_own_answer(fake_team: Path, home: Path, text: str) -> None:
    """(The daemon and its agents are the test's, shared by every example.)"""
    assume(not FAKE_DIRECTIVE.search(text))
    check_one(home, "coding", text, "FAKE-REPLY(coding#")
