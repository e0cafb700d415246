"""The real chain (issue #7, item 2): the real Claude Code as the chief, `EDITOR=staff-hook`.

Claude Code 2.1.330 (npm) runs against the mock Anthropic API under a pty; the fake team's
daemon is up. We type `@coding …` into the chief's input box and press Ctrl-G (`\\x07`):
Claude Code runs the hook on its `claude-prompt-<uuid>.md`, the hook delegates to the
coding agent and writes its answer into the file, and Claude Code puts that text in its
input box — not submitted. We read the answer off the chief's screen.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.claude_env import ClaudeTerm, claude_env, prepare_home
from fixtures.mock_anthropic import MockServer
from tests.e2e.test_hook import HOOK
from tests.helpers.claude_team import require_claude

pytestmark = [pytest.mark.claude, pytest.mark.timeout(120)]
CLAUDE = require_claude()


@pytest.fixture
def chief(fake_team: Path, home: Path, tmp_path: Path, mock: MockServer) -> Iterator[ClaudeTerm]:
    work, chome = tmp_path / "work", tmp_path / "chief-home"
    work.mkdir()
    prepare_home(chome, work)
    env = claude_env(chome, mock.port)
    env.update(STAFF_HOME=str(home), EDITOR=HOOK, VISUAL=HOOK)
    assert CLAUDE is not None
    term = ClaudeTerm(CLAUDE, ["--permission-mode", "default"], env=env, cwd=work, answer_queries=True)
    try:
        term.wait_for(term.is_idle, 30, "the chief's idle prompt")
        yield term
    finally:
        term.close()


def box(term: ClaudeTerm) -> str:
    """The chief's input box: from the `❯` line down to the rule under it."""
    lines = term.lines()
    start = next((i for i in range(len(lines) - 1, -1, -1) if lines[i].startswith("❯")), None)
    if start is None:
        return ""
    end = next((i for i in range(start + 1, len(lines)) if set(lines[i].strip()) == {"─"}), len(lines))
    return "\n".join(lines[start:end])


def test_ctrl_g_delegates_and_the_answer_lands_in_the_chief_input(
    chief: ClaudeTerm, mock: MockServer
) -> None:
    term = chief
    term.send("@coding write the release note [delay=1]")
    term.wait_for(lambda: "@coding write the release note" in box(term), 10, "the draft in the box")
    term.drain(quiet=0.3, limit=2)  # let any @-mention completion settle before Ctrl-G
    term.send("\x07")
    term.wait_for(lambda: "FAKE-REPLY(coding#1)" in box(term), 60, "the answer in the chief's input box")
    text = box(term)
    assert "staff-answer" in text and 'agent="coding"' in text, term.text()
    assert "write the release note [delay=1]" in text
    # put in the box, not submitted: the chief's model was never called
    assert [r for r in mock.records if r.get("kind") == "main"] == []
    assert "esc to interrupt" not in term.footer()


def test_claude_connects_to_staff_mcp(fake_team: Path, home: Path, tmp_path: Path, mock: MockServer) -> None:
    """`claude mcp add staff -- staff mcp`: the real Claude Code's health check connects."""
    import subprocess

    work, chome = tmp_path / "work", tmp_path / "chief-home"
    work.mkdir()
    prepare_home(chome, work)
    env = {**claude_env(chome, mock.port), "STAFF_HOME": str(home)}
    staff_bin = str(Path(HOOK).with_name("staff"))
    assert CLAUDE is not None
    add = subprocess.run(
        [CLAUDE, "mcp", "add", "staff", "--", staff_bin, "mcp"],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert add.returncode == 0, add.stderr
    listed = subprocess.run(
        [CLAUDE, "mcp", "list"], env=env, cwd=work, capture_output=True, text=True, timeout=90
    )
    assert f"staff: {staff_bin} mcp - ✔ Connected" in listed.stdout, listed.stdout + listed.stderr
