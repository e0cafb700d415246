"""Aider's chat history as the answer source: the file the capture session of the real
0.86.2 wrote (tests/data/aider-0.86.2/chat.history.md) gives each reply exactly as the mock
sent it, finds the file at the repo's root, and says an interrupted turn has no answer."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from fixtures.mock_anthropic import reply_text
from supervisor.detect import sessionfiles

HISTORY = Path(__file__).parents[1] / "data" / "aider-0.86.2" / "chat.history.md"
READER = sessionfiles.READERS["aider"]


@pytest.mark.parametrize("prompt", [
    "slow one [delay=3]",
    "a paused reply that streams in two halves [middelay=3]",
    "first line\nsecond line\nthird line",
    "please look at README.md",  # a question and its answer between the prompt and the reply
])
def test_reply_is_what_the_mock_sent(prompt: str) -> None:
    got = READER.read(HISTORY, prompt, "/w")
    assert (got.text, got.complete, got.seen_prompt) == (reply_text(prompt), True, True)


def test_a_reply_with_a_fenced_block_and_questions_after_it() -> None:
    got = READER.read(HISTORY, "run it [bash=echo hi]", "/w")
    assert got.text == "MOCK-REPLY: run this:\n\n```bash\necho hi\n```"


def test_interrupted_or_unknown_turns_have_no_answer() -> None:
    got = READER.read(HISTORY, "interrupt me [delay=10]", "/w")
    assert (got.text, got.complete, got.seen_prompt) == (None, False, True)
    got = READER.read(HISTORY, "never typed", "/w")
    assert (got.text, got.seen_prompt) == (None, False)


def test_a_turn_not_yet_answered_is_incomplete(tmp_path: Path) -> None:
    path = tmp_path / ".aider.chat.history.md"
    path.write_text("\n#### still thinking  \n")
    got = READER.read(path, "still thinking", str(tmp_path))
    assert (got.text, got.complete, got.seen_prompt) == (None, False, True)


def test_history_is_found_at_the_repo_root_when_written_since(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    sub = tmp_path / "src" / "pkg"
    sub.mkdir(parents=True)
    path = tmp_path / ".aider.chat.history.md"
    shutil.copy(HISTORY, path)
    now = path.stat().st_mtime
    assert READER.files({}, str(sub), now) == [path]
    os.utime(path, (now - 60, now - 60))
    assert READER.files({}, str(sub), now) == []
    assert READER.session_id(path) is None  # one history per repo: resumed without an id
    named = sub / "h.md"
    named.write_text("")
    assert READER.files({"AIDER_CHAT_HISTORY_FILE": "h.md"}, str(sub), 0.0) == [named]


def test_screen_fallback_reads_the_reply_above_the_prompt() -> None:
    """When the history cannot be read, the reply is read off the screen: between the prompt's
    echo and the rule Aider draws before its next prompt, its own lines dropped."""
    import json

    from supervisor.detect import answers
    from supervisor.detect.rules import View, load_profile
    from supervisor.screen.emulator import Terminal

    folder = HISTORY.parent
    offset = json.loads((folder / "index.json").read_text())["idle_after_reply"]["offset"]
    term = Terminal(120, 40, backend="pyte")
    term.feed((folder / "main.raw").read_bytes()[:offset].decode("utf-8", "replace"))
    lines = term.lines()
    rows = View(lines).paragraph_rows(1)
    assert rows is not None
    p = load_profile("aider").settings

    def read(framed: bool) -> str | None:
        return answers.from_screen(term.history_text(), lines[: rows[0]], "slow one [delay=3]",
                                   prompt_prefix=p.prompt_prefix, answer_prefix=p.answer_prefix,
                                   drop=list(p.answer_drop), framed=framed)

    assert read(framed=False) == "MOCK-REPLY: slow one [delay=3]"
    assert read(framed=True) is None  # cut at the rule before the prompt's echo: nothing left
