"""End-to-end: the real Claude Code CLI under a pty, talking to ``fixtures/mock_anthropic``.

Why: the supervisor's screen rules and registry reading are only worth something if they
hold against the real program. These tests pin down the facts the rules rely on (idle
prompt box, ``esc to interrupt`` while working, permission dialog, transcript and
``sessions/<pid>.json``) for the pinned version, with no network and no key.
Skipped when no claude binary is available (``scripts/install-claude.sh`` fetches one).
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fixtures.claude_env import (
    ClaudeTerm,
    claude_env,
    find_claude,
    prepare_first_run_home,
    prepare_home,
    read_registry,
    session_registry_path,
    transcript_path,
)
from fixtures.mock_anthropic import MockServer

CLAUDE = find_claude()

pytestmark = [
    pytest.mark.claude,
    pytest.mark.timeout(60),
    pytest.mark.skipif(
        CLAUDE is None,
        reason="real claude not found: set STAFF_CLAUDE_BIN or run scripts/install-claude.sh",
    ),
]

START_TIMEOUT = 20.0
TURN_TIMEOUT = 15.0


@dataclass
class Run:
    """One claude process with its own HOME, workdir and mock server."""

    term: ClaudeTerm
    mock: MockServer
    home: Path
    workdir: Path
    session_id: str

    def submit(self, text: str) -> float:
        """Type ``text``, then Enter as a separate write once the box shows the text."""
        return self.term.submit(text)

    def wait_idle(self, timeout: float = TURN_TIMEOUT) -> float:
        return self.term.wait_for(self.term.is_idle, timeout, "idle prompt")

    def main_requests(self) -> list[dict[str, object]]:
        return [r for r in self.mock.records if r.get("kind") == "main"]


def _spawn(tmp_path: Path, mock: MockServer, prepare: Callable[[Path, Path], None]) -> Run:
    home, workdir = tmp_path / "home", tmp_path / "work"
    workdir.mkdir()
    prepare(home, workdir)
    session_id = str(uuid.uuid4())
    assert CLAUDE is not None
    term = ClaudeTerm(
        CLAUDE,
        ["--session-id", session_id, "--permission-mode", "default"],
        env=claude_env(home, mock.port),
        cwd=workdir,
    )
    return Run(term, mock, home, workdir, session_id)


@pytest.fixture
def run(tmp_path: Path, mock: MockServer) -> Iterator[Run]:
    """A claude started in a trusted workdir with an approved key, at its idle prompt."""
    r = _spawn(tmp_path, mock, lambda home, work: prepare_home(home, work))
    try:
        r.wait_idle(START_TIMEOUT)
        print(f"\nspawn -> idle prompt: {time.monotonic() - r.term.spawned_at:.2f}s")
        yield r
    finally:
        # Claude queries the terminal (DA1, XTVERSION, kitty) only after its prompt is
        # up, and runs fine with no answers: ClaudeTerm answers none by default.
        print(f"terminal queries seen (unanswered): {r.term.queries}")
        r.term.close()


def test_idle_prompt_appears(run: Run) -> None:
    term = run.term
    row = term.prompt_row()
    assert row is not None
    lines = term.lines()
    assert set(lines[row - 1].strip()) == {"─"} and set(lines[row + 1].strip()) == {"─"}
    assert "esc to interrupt" not in term.footer()
    assert "Claude Code" in term.text()
    assert run.main_requests() == []  # starting needs no model call


def test_reply_shows_and_footer_returns_to_idle(run: Run) -> None:
    term = run.term
    enter = run.submit("hello world")
    term.wait_for(lambda: term.contains("● MOCK-REPLY: hello world"), TURN_TIMEOUT,
                  "reply on screen")
    print(f"\nEnter -> reply on screen: {time.monotonic() - enter:.2f}s")
    run.wait_idle()
    assert "esc to interrupt" not in term.footer()
    [req] = run.main_requests()
    assert req["last_user_text"] == "hello world"
    assert req["path"] == "/v1/messages?beta=true"
    assert req["stream"] is True


def test_footer_shows_esc_to_interrupt_while_working(run: Run) -> None:
    term = run.term
    run.submit("slow one [delay=2]")
    term.wait_for(term.is_working, 2.0, "'esc to interrupt' in the footer")
    assert not term.contains("● MOCK-REPLY: slow one")
    term.wait_for(lambda: term.contains("● MOCK-REPLY: slow one [delay=2]"), TURN_TIMEOUT,
                  "delayed reply")
    run.wait_idle()


def test_transcript_and_session_registry(run: Run) -> None:
    term = run.term
    registry = session_registry_path(run.home, term.pid)
    entry = read_registry(registry)
    assert entry is not None, f"{registry} missing"
    assert entry["sessionId"] == run.session_id
    assert entry["pid"] == term.pid
    # The file is first written without "status"; "idle" lands about when the prompt
    # paints, so it may trail the screen by a few ms.
    term.wait_for(lambda: (read_registry(registry) or {}).get("status") == "idle", 5.0,
                  "registry status idle")

    statuses: list[str] = []

    def track(done: Callable[[], bool]) -> Callable[[], bool]:
        def check() -> bool:
            status = (read_registry(registry, timeout=0.2) or {}).get("status")
            if status and (not statuses or statuses[-1] != status):
                statuses.append(status)
            return done()
        return check

    run.submit("remember this [delay=1]")
    term.wait_for(track(lambda: term.contains("● MOCK-REPLY: remember this")), TURN_TIMEOUT,
                  "reply")
    term.wait_for(track(lambda: term.is_idle() and statuses[-1:] == ["idle"]), TURN_TIMEOUT,
                  "idle on screen and in the registry")
    assert "busy" in statuses and statuses[-1] == "idle", statuses

    transcript = transcript_path(run.home, run.workdir, run.session_id)

    def answered() -> bool:
        if not transcript.exists():
            return False
        for line in transcript.read_text(encoding="utf-8").splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue  # a line still being written
            if item.get("type") != "assistant":
                continue
            for block in item.get("message", {}).get("content", []):
                if block.get("type") == "text" and block.get("text") == (
                        "MOCK-REPLY: remember this [delay=1]"):
                    return True
        return False

    term.wait_for(answered, 5.0, f"assistant text in {transcript}")


def test_bash_permission_dialog_then_tool_result(run: Run) -> None:
    term = run.term
    out = run.workdir / "out.txt"
    run.submit("make a file [bash=echo hi > out.txt]")
    term.wait_for(lambda: term.contains("Do you want to proceed?")
                  and term.contains("Esc to cancel"), TURN_TIMEOUT, "permission dialog")
    assert " ❯ 1. Yes" in term.lines()
    assert not out.exists()
    registry = read_registry(session_registry_path(run.home, term.pid)) or {}
    assert registry.get("status") == "waiting", registry

    # A key sent the instant the dialog paints is sometimes dropped: retried.
    term.press_until_gone("1", "Do you want to proceed?")
    term.wait_for(lambda: term.contains("● MOCK-REPLY: tool result:"), TURN_TIMEOUT,
                  "tool-result reply")
    run.wait_idle()
    assert out.read_text() == "hi\n"
    follow_up = run.main_requests()[-1]
    assert follow_up["tool_result"] is True
    assert follow_up["tool_result_text"] == ["(Bash completed with no output)"]


def test_first_run_dialogs_block_until_answered(tmp_path: Path, mock: MockServer) -> None:
    """Without the trust entry and the key approval, two dialogs come first, in order."""
    r = _spawn(tmp_path, mock, lambda home, _work: prepare_first_run_home(home))
    term = r.term
    try:
        term.wait_for(lambda: term.contains("Yes, I trust this folder"), START_TIMEOUT,
                      "trust dialog")
        assert " ❯ No, exit" in term.lines()  # the safe answer is preselected
        assert term.prompt_row() is None and term.has_dialog()
        # Down to "Yes" (digits do nothing here); Enter on the default exits claude.
        term.select(" ❯ Yes, I trust this folder", "\x1b[B")
        term.press_until_gone("\r", "Yes, I trust this folder")
        term.wait_for(lambda: term.contains("Do you want to use this API key?"), 10.0,
                      "API key dialog")
        assert "  ❯ No (recommended)" in term.lines()
        # Up to "Yes"; Enter on the default rejects the key ("Not logged in").
        term.select("  ❯ Yes", "\x1b[A")
        term.press_until_gone("\r", "Do you want to use this API key?")
        r.wait_idle(START_TIMEOUT)
        saved = json.loads((r.home / ".claude.json").read_text(encoding="utf-8"))
        assert saved["projects"][str(r.workdir.resolve())]["hasTrustDialogAccepted"] is True
        assert saved["customApiKeyResponses"]["approved"]
    finally:
        term.close()
