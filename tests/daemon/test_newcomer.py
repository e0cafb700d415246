"""What a new user meets with the default (fake) team: it stays out of the real Claude's files."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tests.conftest import staff


def test_the_fake_team_keeps_out_of_the_real_claude_dir(fake_team: Path, home: Path) -> None:
    """Fake transcripts and session files go under the state dir, never into ~/.claude, where a
    real Claude Code would offer them in its resume list; answers still come from them."""
    task = json.loads(staff("ask", "planning", "hello", "--json", check=True).stdout)
    assert task["answer"] == "FAKE-REPLY(planning#1): hello"
    assert task["answer_source"].startswith("transcript")
    assert not (Path(os.environ["HOME"]) / ".claude").exists()
    transcripts = list((home / "fake-claude" / "projects").rglob("*.jsonl"))
    assert len(transcripts) == 1 and "hello" in transcripts[0].read_text(encoding="utf-8")
    assert list((home / "fake-claude" / "sessions").glob("*.json"))  # the live session registry
