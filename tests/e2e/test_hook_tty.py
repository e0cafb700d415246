"""`staff-hook` on a real terminal (a pty, rendered with pyte): the picker and the live view.

Issue #7, item 4 (the picker delegates the draft to the chosen agent) and the wait view's
keys: `b` background, `c` cancel, `a` attach (and the detach key back to the wait).
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from fixtures.claude_env import ClaudeTerm
from tests.conftest import staff
from tests.e2e.test_hook import HOOK, prompt, stub_editor


class Term(ClaudeTerm):
    """ClaudeTerm renders with the daemon's pyte screen, which ignores the private SGR
    (``CSI ? … m``) prompt_toolkit sends."""


@pytest.fixture
def term_of(fake_team: Path) -> Iterator[list[ClaudeTerm]]:
    terms: list[ClaudeTerm] = []
    yield terms
    for t in terms:
        t.close()


def spawn(terms: list[ClaudeTerm], path: Path) -> ClaudeTerm:
    env = {**os.environ, "TERM": "xterm-256color", "LANG": "C.UTF-8"}
    t = Term(HOOK, [str(path)], env=env, cwd=path.parent, cols=110, rows=30, answer_queries=True)
    terms.append(t)
    return t


def finish(t: ClaudeTerm) -> int | None:
    t.wait_for(lambda: t.exited, 60, "the hook to exit")
    status, _sig = t.exit_status()
    return status


def test_picker_delegates_the_draft_to_the_chosen_agent(term_of: list[ClaudeTerm], tmp_path: Path) -> None:
    p = prompt(tmp_path, "Write the changelog entry\nfor the dark mode")
    t = spawn(term_of, p)
    t.wait_for(lambda: t.contains("delegate this draft to") and t.contains("testing"), 30, "the picker")
    assert re.search(r"❯ 1\. planning\s+idle", t.text()), t.text()
    assert t.contains("edit in my editor") and t.contains("open the console")
    t.send("\x1b[B")  # down: coding
    t.wait_for(lambda: "❯ 2. coding" in t.text(), 10, "coding selected")
    t.send("\r")
    assert finish(t) == 0
    out = p.read_text()
    assert '<staff-answer agent="coding"' in out, out
    assert "FAKE-REPLY(coding#1): Write the changelog entry\nfor the dark mode" in out


def test_picker_esc_and_editor(
    term_of: list[ClaudeTerm], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub_editor(tmp_path, monkeypatch)
    p = prompt(tmp_path, "draft text")
    t = spawn(term_of, p)
    t.wait_for(lambda: t.contains("delegate this draft to"), 30, "the picker")
    t.send("\x1b")
    assert finish(t) == 0
    assert p.read_text() == "draft text"  # back to Claude Code as it was
    t = spawn(term_of, p)
    t.wait_for(lambda: t.contains("edit in my editor"), 30, "the picker")
    t.send("4")  # planning, coding, testing, then "edit in my editor"
    assert finish(t) == 0
    assert p.read_text() == "draft text\nEDITED-BY-STUB\n"


def test_live_view_background(term_of: list[ClaudeTerm], tmp_path: Path) -> None:
    p = prompt(tmp_path, "@planning a long one [delay=30]\n@coding quick [delay=0.5]")
    t = spawn(term_of, p)
    t.wait_for(lambda: t.contains("waiting for the answers") and t.contains("working"), 30, "the wait view")
    t.wait_for(lambda: re.search(r"coding\s+T-\w+\s+done", t.text()) is not None, 30, "coding done")
    assert re.search(r"planning\s+T-\w+\s+working", t.text()), t.text()
    t.send("b")
    assert finish(t) == 0
    out = p.read_text()
    line = out.splitlines()[-1]
    assert line.startswith("[staff] in the background: planning T-") and "inbox" in line, out
    tid = re.search(r"planning (T-[0-9a-f]+)", line).group(1)  # type: ignore[union-attr]
    staff("cancel", tid)


def test_live_view_cancel_and_attach(term_of: list[ClaudeTerm], tmp_path: Path) -> None:
    original = "@planning a long one [delay=30]"
    p = prompt(tmp_path, original)
    t = spawn(term_of, p)
    t.wait_for(lambda: t.contains("waiting for the answers") and t.contains("working"), 30, "the wait view")
    t.send("a")  # attach: the agent's own screen, full size
    t.wait_for(
        lambda: t.contains("esc to interrupt") and not t.contains("waiting for the answers"), 30, "attach"
    )
    t.send("\x1d")  # Ctrl-]: detach, back to the wait
    t.wait_for(lambda: t.contains("waiting for the answers"), 30, "the wait view again")
    t.send("c")
    assert finish(t) == 0
    out = p.read_text()
    assert out.startswith(original + "\n[staff] cancelled (T-") and out.count("\n") == 1, out
    tid = re.search(r"T-[0-9a-f]+", out).group()  # type: ignore[union-attr]
    task = json.loads(staff("wait", tid, "--json", "--timeout", "30").stdout)
    assert task["state"] == "cancelled"


def test_signal_in_the_picker_keeps_the_text(term_of: list[ClaudeTerm], tmp_path: Path) -> None:
    p = prompt(tmp_path, "a draft ✓")
    t = spawn(term_of, p)
    t.wait_for(lambda: t.contains("delegate this draft to"), 30, "the picker")
    os.kill(t.pid, signal.SIGTERM)
    assert finish(t) == 0
    assert (
        p.read_text()
        == "a draft ✓\n[staff] interrupted (SIGTERM) before anything was sent; your text is as it was"
    )


def test_picker_off_in_the_team_file(
    term_of: list[ClaudeTerm], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub_editor(tmp_path, monkeypatch)
    p = prompt(tmp_path, "draft")
    (p.parent / "staff.toml").write_text("[hook]\npicker = false\n")  # the hook runs in the project dir
    t = spawn(term_of, p)
    assert finish(t) == 0
    assert p.read_text() == "draft\nEDITED-BY-STUB\n"
