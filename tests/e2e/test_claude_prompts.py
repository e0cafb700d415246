"""Task text is a prompt, whatever it starts with, on the real Claude Code (issue 15, item 3).

Claude Code 2.1.330 takes a box that begins with `!` (typed or pasted) as a shell command and
runs it without asking, and one that begins with `/` (even after spaces or a newline) as a slash
command. A task must reach the model as a prompt, and the agent must stay usable after it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import staff
from tests.helpers.claude_team import claude_daemon, require_claude

pytestmark = pytest.mark.claude
CLAUDE = require_claude()


@pytest.fixture
def work(home: Path, tmp_path: Path) -> Iterator[Path]:
    with claude_daemon(tmp_path, CLAUDE) as work:
        yield work


def ask(text: str) -> dict[str, object]:
    r = staff("ask", "cc", "-", "--json", "--timeout", "60", input=text, timeout=90)
    return dict(json.loads(r.stdout))


def test_a_leading_bang_or_slash_is_a_prompt_not_a_command(work: Path) -> None:
    bang = ask("!touch pwned.txt")
    assert bang["state"] == "done", bang
    assert "MOCK-REPLY" in str(bang["answer"]) and "touch pwned.txt" in str(bang["answer"])
    assert not (work / "pwned.txt").exists()  # no shell ran it
    slash = ask("/cost please")
    assert slash["state"] == "done", slash
    assert "MOCK-REPLY" in str(slash["answer"]) and "/cost please" in str(slash["answer"])
    again = ask("hello again")
    assert again["answer"] == "MOCK-REPLY: hello again"  # the agent is still usable
