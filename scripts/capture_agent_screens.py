#!/usr/bin/env python3
"""Record golden screens of the other real agent CLIs (Codex CLI, Aider …), as
``capture_claude_screens.py`` does for Claude Code.

Why: each profile's rules are data that must be checked against what the real program
draws. This drives the pinned program (``scripts/install-agents.sh``) under a 120x40 pty
against its mock API and stores every byte it wrote (``<session>.raw``), the byte offset at
which each state was seen with the state it must read as (``index.json``, the format of
``claude-2.1.330-extra``) and the pyte rendering of that moment (``<state>.txt``).

    .venv/bin/python scripts/capture_agent_screens.py codex [--out tests/data/codex-0.171.0]

The working directory is a fixed path (``/tmp/staff-capture/<program>/…``) so the screens do
not change from one capture to the next except for clock times.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fixtures import aider_env, codex_env, gemini_env, mock_gemini, opencode_env  # noqa: E402  (the repo on sys.path first)
from fixtures.claude_env import ClaudeTerm  # noqa: E402
from fixtures.mock_openai import MockServer, start_mock  # noqa: E402
from scripts.capture_claude_screens import Capture  # noqa: E402

BASE = Path("/tmp/staff-capture")
PROMPT_HINT = "Ask Codex to do anything"


def codex_spawn(binary: str, name: str, mock: MockServer, *, trust: bool = True) -> ClaudeTerm:
    root = BASE / "codex" / name
    shutil.rmtree(root, ignore_errors=True)
    home, work = root / "home", root / "work"
    work.mkdir(parents=True)
    codex_env.prepare_home(home / ".codex", work, mock.port, trust=trust)
    env = codex_env.codex_env(home, home / ".codex")
    return ClaudeTerm(binary, list(codex_env.ARGS), env=env, cwd=work, answer_queries=True)


def _type(term: ClaudeTerm, text: str, cap: Capture | None = None, mark: str = "") -> None:
    """Type text, wait until the composer shows it, then Enter as its own write; `mark`
    records the Enter's offset (``expected = "turn"``: where a turn starts, for the test
    that no frame of it reads idle before its reply ends)."""
    term.send(text)
    head = text.splitlines()[0][:30]
    term.wait_for(lambda: any(ln.startswith("› ") and (head in ln or "[Pasted" in ln)
                              for ln in term.lines()[-12:]), 10, f"{head!r} typed")
    term.drain(quiet=0.3, limit=2)
    term.send("\r")
    if cap is not None and mark:
        cap.index[mark] = {"raw": "main.raw", "offset": len(term.raw), "expected": "turn",
                           "reply": f"MOCK-REPLY: {text}"}


def _idle(term: ClaudeTerm) -> bool:
    bottom = term.lines()[-8:]
    return (any(ln.startswith("› ") for ln in bottom)
            and not any("esc to interrupt" in ln for ln in bottom)
            and not any("Press enter to confirm" in ln for ln in bottom))


def codex_main(binary: str, mock: MockServer, cap: Capture) -> None:
    s = "main"
    term = codex_spawn(binary, s, mock)
    try:
        term.wait_for(lambda: term.contains(PROMPT_HINT), 30, "the prompt")
        term.drain(quiet=1.0, limit=5)
        cap.snap(term, s, "idle_start", "idle")

        term.send("half a thought")
        term.wait_for(lambda: term.contains("› half a thought"), 10, "draft")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "idle_draft", "idle", note="text typed, not submitted")
        term.send("\x15")  # Ctrl-U empties the composer
        term.wait_for(lambda: term.contains(PROMPT_HINT), 10, "draft cleared")

        _type(term, "slow one [delay=3]", cap, "turn_delay")
        term.wait_for(lambda: term.contains("esc to interrupt"), 10, "working")
        term.drain(quiet=1.0, limit=1.0)
        cap.snap(term, s, "working_delay", "working", note="~1 s into a 3 s wait")
        term.wait_for(lambda: term.contains("MOCK-REPLY: slow one") and _idle(term), 20, "reply")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "idle_after_reply", "idle")

        _type(term, "a paused reply that streams in two halves [middelay=3]", cap, "turn_midstream")
        term.wait_for(lambda: term.contains("MOCK-REPLY: a paused"), 15, "first half")
        term.drain(quiet=1.0, limit=1.0)
        cap.snap(term, s, "working_midstream", "working", note="half the text shown, 3 s pause")
        term.wait_for(lambda: term.contains("halves [middelay=3]") and _idle(term), 20, "end")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "idle_after_midstream", "idle")

        term.send("\x1b[200~first line\nsecond line\nthird line\x1b[201~")
        term.wait_for(lambda: term.contains("third line"), 10, "paste shown")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "idle_multiline_draft", "idle", note="a 3-line bracketed paste in the box")
        term.send("\r")
        term.wait_for(lambda: term.contains("MOCK-REPLY: first line") and _idle(term), 20, "ml reply")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "idle_after_multiline", "idle")

        _type(term, "run it [bash=echo hi > made.txt]")
        term.wait_for(lambda: term.contains("Press enter to confirm"), 20, "approval")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "approval_exec", "blocked")
        term.send("y")
        term.wait_for(lambda: term.contains("MOCK-REPLY: tool result") and _idle(term), 30, "ran")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "approval_exec_after_yes", "idle")

        _type(term, "again [bash=echo no > never.txt]")
        term.wait_for(lambda: term.contains("never.txt") and term.contains("Press enter to confirm"),
                      20, "approval 2")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "approval_exec_2", "blocked")
        term.send("\x1b")
        term.wait_for(lambda: not term.contains("Press enter to confirm") and _idle(term), 20, "declined")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "approval_exec_after_esc", "idle")

        _type(term, "interrupt me [delay=10]")
        term.wait_for(lambda: term.contains("esc to interrupt"), 10, "working 2")
        term.drain(quiet=0.5, limit=0.5)
        term.send("\x1b")
        term.wait_for(lambda: _idle(term), 15, "interrupted")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "idle_after_esc_interrupt", "idle")
        term.send("\x15")
        term.drain(quiet=0.5, limit=2)

        term.send("\x03")  # at an empty box, one Ctrl-C quits
        term.wait_for(lambda: term.exited, 15, "exit")
        cap.snap(term, s, "exit_after_ctrlc", "exited")
    finally:
        cap.save_raw(term, s)
        term.close()

    # the same home started again on that session (what a restart runs): the past turns shown
    from supervisor.detect.sessionfiles import opencode as oc_files
    home = BASE / "opencode" / s / "home"
    db = oc_files.files(opencode_env.opencode_env(home), "", 0.0)
    oc_files.read_turn(db[0], "slow one [delay=3]", str(BASE / "opencode" / s / "work"))
    session = oc_files.session_id(db[0])
    assert session, "no session recorded"
    s = "resume"
    term = opencode_spawn(binary, "main", mock, ["--session", session], fresh=False)
    try:
        term.wait_for(lambda: term.contains("interrupt me [delay=10]") and _oc_idle(term), 30, "resumed")
        term.drain(quiet=1.0, limit=5)
        cap.snap(term, s, "idle_resumed", "idle", note="--session <id>: the earlier turns shown")
        term.send("\x03")
        term.wait_for(lambda: term.exited, 15, "exit")
    finally:
        cap.save_raw(term, s)
        term.close()


# -- Gemini CLI -----------------------------------------------------------------------------
GEMINI_HINT = "Type your message or @path/to/file"


def gemini_spawn(binary: str, name: str, port: int) -> ClaudeTerm:
    root = BASE / "gemini" / name
    shutil.rmtree(root, ignore_errors=True)
    home, work = root / "home", root / "work"
    work.mkdir(parents=True)
    gemini_env.prepare_home(home)
    env = gemini_env.gemini_env(home, port)
    return ClaudeTerm(binary, list(gemini_env.ARGS), env=env, cwd=work, answer_queries=True)


def _g_bottom(term: ClaudeTerm, n: int = 14) -> list[str]:
    return [ln for ln in term.lines() if ln.strip()][-n:]


def _g_box(term: ClaudeTerm) -> list[str]:
    return [ln for ln in _g_bottom(term) if ln.startswith(" > ")]


def _g_idle(term: ClaudeTerm) -> bool:
    return (term.title.startswith("◇") and any(GEMINI_HINT in ln for ln in _g_box(term))
            and not any("● 1." in ln for ln in _g_bottom(term)))


def _g_type(term: ClaudeTerm, text: str, cap: Capture | None = None, mark: str = "") -> None:
    """Type text, wait until the box shows it, then Enter as its own write (in the same
    write, Gemini takes the Enter as a newline of a paste)."""
    term.send(text)
    head = text.splitlines()[0][:30]
    term.wait_for(lambda: any(head in ln or "[Pasted Text" in ln for ln in _g_box(term)), 10,
                  f"{head!r} typed")
    term.drain(quiet=0.3, limit=2)
    term.send("\r")
    if cap is not None and mark:
        cap.index[mark] = {"raw": "main.raw", "offset": len(term.raw), "expected": "turn",
                           "reply": f"MOCK-REPLY: {text}"}


def gemini_main(binary: str, _mock: MockServer, cap: Capture) -> None:
    """Every state of one Gemini CLI session, against mock_gemini (not the OpenAI mock)."""
    s = "main"
    server, port = mock_gemini.start_mock()
    term = gemini_spawn(binary, s, port)
    try:
        term.wait_for(lambda: _g_idle(term), 40, "the prompt")
        term.drain(quiet=1.0, limit=5)
        cap.snap(term, s, "idle_start", "idle")

        term.send("half a thought")
        term.wait_for(lambda: any("half a thought" in ln for ln in _g_box(term)), 10, "draft")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "idle_draft", "idle", note="text typed, not submitted")
        term.send("\x15")  # Ctrl-U empties the box
        term.wait_for(lambda: _g_idle(term), 10, "draft cleared")

        _g_type(term, "slow one [delay=3]", cap, "turn_delay")
        term.wait_for(lambda: term.contains("esc to cancel"), 10, "working")
        term.drain(quiet=1.0, limit=1.0)
        cap.snap(term, s, "working_delay", "working", note="~1 s into a 3 s wait")
        term.wait_for(lambda: term.contains("MOCK-REPLY: slow one") and _g_idle(term), 20, "reply")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "idle_after_reply", "idle")

        _g_type(term, "a paused reply that streams in two halves [middelay=3]", cap, "turn_midstream")
        term.wait_for(lambda: term.contains("MOCK-REPLY: a paused"), 15, "first half")
        term.drain(quiet=1.0, limit=1.0)
        cap.snap(term, s, "working_midstream", "working", note="half the text shown, 3 s pause")
        term.wait_for(lambda: term.contains("halves [middelay=3]") and _g_idle(term), 20, "end")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "idle_after_midstream", "idle")

        term.send("\x1b[200~first line\nsecond line\nthird line\x1b[201~")
        term.wait_for(lambda: term.contains("third line"), 10, "paste shown")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "idle_multiline_draft", "idle", note="a 3-line bracketed paste in the box")
        term.send("\r")
        term.wait_for(lambda: term.contains("MOCK-REPLY: first line") and _g_idle(term), 20, "ml reply")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "idle_after_multiline", "idle")

        _g_type(term, "run it [bash=echo hi > made.txt]")
        term.wait_for(lambda: term.contains("Allow execution of"), 20, "approval")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "approval_exec", "blocked")
        term.send("1")
        term.wait_for(lambda: term.contains("MOCK-REPLY: tool result") and _g_idle(term), 30, "ran")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "approval_exec_after_yes", "idle")

        _g_type(term, "again [bash=echo no > never.txt]")
        term.wait_for(lambda: term.contains("never.txt") and term.contains("Allow execution of"),
                      20, "approval 2")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "approval_exec_2", "blocked")
        term.send("\x1b")
        term.wait_for(lambda: not term.contains("Allow execution of") and _g_idle(term), 20, "declined")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "approval_exec_after_esc", "idle")

        # The mock echoes a repetitive prompt in 12-character chunks: Gemini's loop detection
        # stops the stream and asks, under a '◇  Ready' title.
        term.send("\x1b[200~" + "loop " + "x" * 600 + "\x1b[201~")
        term.wait_for(lambda: any("[Pasted Text" in ln for ln in _g_box(term)), 10, "long paste")
        term.drain(quiet=0.3, limit=2)
        term.send("\r")
        term.wait_for(lambda: term.contains("A potential loop was detected") and term.contains("● 1."),
                      20, "loop question")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "loop_dialog", "blocked", note="its title says Ready meanwhile")
        term.send("\x1b")
        term.wait_for(lambda: _g_idle(term), 20, "loop answered")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "idle_after_loop", "idle")

        _g_type(term, "interrupt me [delay=10]")
        term.wait_for(lambda: term.contains("esc to cancel"), 10, "working 2")
        term.drain(quiet=0.5, limit=0.5)
        term.send("\x1b")
        term.wait_for(lambda: _g_idle(term), 15, "interrupted")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "idle_after_esc_interrupt", "idle")

        term.send("\x03")
        term.wait_for(lambda: term.contains("Press Ctrl+C again to exit"), 10, "quit armed")
        term.drain(quiet=0.3, limit=2)
        cap.snap(term, s, "idle_ctrlc_once", "idle", note="one Ctrl-C at an empty box")
        term.send("\x03")
        term.wait_for(lambda: term.exited, 15, "exit")
        cap.snap(term, s, "exit_after_ctrlc", "exited")
    finally:
        cap.save_raw(term, s)
        term.close()
        server.stop()


def aider_spawn(binary: str, name: str, mock: MockServer) -> ClaudeTerm:
    root = BASE / "aider" / name
    shutil.rmtree(root, ignore_errors=True)
    home, work = root / "home", root / "work"
    aider_env.prepare_home(home)
    aider_env.prepare_repo(work)
    term = ClaudeTerm(binary, aider_env.args(mock.port, home), env=aider_env.aider_env(home),
                      cwd=work, answer_queries=True)
    term.real_cpr = True
    return term


def _reading(term: ClaudeTerm) -> bool:
    """prompt_toolkit reads input (bracketed paste on since its last change)."""
    raw = bytes(term.raw)
    return raw.rfind(b"\x1b[?2004h") > raw.rfind(b"\x1b[?2004l")


def _aider_idle(term: ClaudeTerm) -> bool:
    filled = [ln for ln in term.lines() if ln.strip()]
    return _reading(term) and bool(filled) and filled[-1].startswith(">") and "[Yes]" not in filled[-1]


def _aider_asks(term: ClaudeTerm, question: str) -> bool:
    return _reading(term) and any(question in ln and "(Y)es/(N)o" in ln for ln in term.lines())


def _aider_type(term: ClaudeTerm, text: str, cap: Capture | None = None, mark: str = "") -> None:
    term.send(text)
    head = text.splitlines()[0][:30]
    term.wait_for(lambda: any(ln.startswith("> ") and head in ln for ln in term.lines()), 10,
                  f"{head!r} typed")
    term.drain(quiet=0.3, limit=2)
    term.send("\r")
    if cap is not None and mark:
        cap.index[mark] = {"raw": "main.raw", "offset": len(term.raw), "expected": "turn",
                           "reply": f"MOCK-REPLY: {text}"}


def aider_main(binary: str, mock: MockServer, cap: Capture) -> None:
    s = "main"
    term = aider_spawn(binary, s, mock)
    try:
        term.wait_for(lambda: _aider_idle(term), 60, "the prompt")
        term.drain(quiet=1.0, limit=5)
        cap.snap(term, s, "idle_start", "idle")

        term.send("half a thought")
        term.wait_for(lambda: term.contains("> half a thought"), 10, "draft")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "idle_draft", "idle", note="text typed, not submitted")
        term.send("\x15")
        term.wait_for(lambda: not term.contains("half a thought"), 10, "draft cleared")

        _aider_type(term, "slow one [delay=3]", cap, "turn_delay")
        term.wait_for(lambda: term.contains("Waiting for"), 10, "working")
        term.drain(quiet=0.5, limit=0.5)
        cap.snap(term, s, "working_delay", "working", note="the scanner, ~1 s into a 3 s wait")
        term.wait_for(lambda: _aider_idle(term), 20, "reply")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "idle_after_reply", "idle")

        pauses = sum(1 for _t, name in mock.events if name == "middelay-start")
        _aider_type(term, "a paused reply that streams in two halves [middelay=3]", cap, "turn_midstream")
        term.wait_for(lambda: sum(1 for _t, n in mock.events if n == "middelay-start") > pauses,
                      15, "first half")
        term.drain(quiet=1.0, limit=1.0)
        cap.snap(term, s, "working_midstream", "working", note="half the text shown, 3 s pause")
        term.wait_for(lambda: _aider_idle(term), 20, "end")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "idle_after_midstream", "idle")

        term.send("\x1b[200~first line\nsecond line\nthird line\x1b[201~")
        term.wait_for(lambda: term.contains("third line"), 10, "paste shown")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "idle_multiline_draft", "idle", note="a 3-line bracketed paste in the box")
        term.send("\r")
        term.wait_for(lambda: not _reading(term), 10, "taken")
        term.wait_for(lambda: _aider_idle(term), 20, "ml reply")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "idle_after_multiline", "idle")

        _aider_type(term, "run it [bash=echo hi]")
        term.wait_for(lambda: _aider_asks(term, "Run shell command?"), 20, "run question")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "question_run_shell", "blocked")
        term.send("y")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "question_run_shell_typed", "blocked", note="'y' typed, no Enter yet")
        term.send("\r")
        term.wait_for(lambda: _aider_asks(term, "Add command output"), 20, "output question")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "question_add_output", "blocked")
        term.send("n\r")
        term.wait_for(lambda: _aider_idle(term), 20, "after the questions")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "idle_after_questions", "idle")

        _aider_type(term, "please look at README.md")
        term.wait_for(lambda: _aider_asks(term, "Add file to the chat?"), 20, "add-file question")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "question_add_file", "blocked")
        term.send("y\r")
        term.wait_for(lambda: _aider_idle(term) and term.contains("README.md"), 20, "file added")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "idle_with_file", "idle", note="the files in the chat over the prompt")

        _aider_type(term, "interrupt me [delay=10]")
        term.wait_for(lambda: term.contains("Waiting for"), 10, "working 2")
        term.drain(quiet=0.3, limit=0.3)
        cap.snap(term, s, "working_before_interrupt", "working")
        term.send("\x03")
        term.wait_for(lambda: _aider_idle(term), 15, "interrupted")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "idle_after_interrupt", "idle")

        term.send("\x04")  # Ctrl-D at the prompt quits
        term.wait_for(lambda: term.exited, 15, "exit")
        cap.snap(term, s, "exit_after_ctrld", "exited")
        # the history the session wrote: the answer reader's test data (sessionfiles/aider.py)
        shutil.copy(BASE / "aider" / s / "work" / ".aider.chat.history.md", cap.out / "chat.history.md")
    finally:
        cap.save_raw(term, s)
        term.close()


def opencode_spawn(binary: str, name: str, mock: MockServer, args: list[str] | None = None,
                   fresh: bool = True) -> ClaudeTerm:
    root = BASE / "opencode" / name
    if fresh:
        shutil.rmtree(root, ignore_errors=True)
    home, work = root / "home", root / "work"
    work.mkdir(parents=True, exist_ok=True)
    opencode_env.prepare_home(home, mock.port)
    env = opencode_env.opencode_env(home)
    return ClaudeTerm(binary, args or [], env=env, cwd=work, answer_queries=True)


def _oc_footer(term: ClaudeTerm) -> str:
    filled = [ln for ln in term.lines() if ln.strip()]
    return filled[-1] if filled else ""


def _oc_box(term: ClaudeTerm) -> str:
    """The text in opencode's input box (the ┃ rows over ╹▀▀▀, less its model row)."""
    from supervisor.detect.rules import View
    return View(term.lines()).region("bar_box") or ""


def _oc_idle(term: ClaudeTerm) -> bool:
    return (term.contains("╹▀") and "interrupt" not in _oc_footer(term)
            and not term.contains("Permission required"))


def _oc_type(term: ClaudeTerm, text: str, cap: Capture | None = None, mark: str = "") -> None:
    """Type text, wait until the box shows it, then Enter as its own write (`mark`: see _type)."""
    term.send(text)
    head = text.splitlines()[0][:30]
    term.wait_for(lambda: head in _oc_box(term) or "[Pasted" in _oc_box(term), 10, f"{head!r} typed")
    term.drain(quiet=0.3, limit=2)
    term.send("\r")
    if cap is not None and mark:
        # the reply as drawn when its turn ends (later redraws drop the [ ] of a directive)
        cap.index[mark] = {"raw": "main.raw", "offset": len(term.raw), "expected": "turn",
                           "reply": f"MOCK-REPLY: {text}"}


def _oc_turn_end(term: ClaudeTerm, cap: Capture, mark: str) -> None:
    """Where the turn `mark` ended on screen: its summary row ("▣  Build · Mock Model · 3.3s"),
    drawn in the frame that turns the footer idle. (Its last text can come a frame later:
    opencode draws text in batches; the answer is read from its database, not the screen.)"""
    rows = [ln.strip() for ln in term.lines() if re.fullmatch(r"▣ .* · [\d.]+m?s", ln.strip())]
    cap.index[mark]["reply"] = rows[-1]


def opencode_main(binary: str, mock: MockServer, cap: Capture) -> None:
    s = "main"
    term = opencode_spawn(binary, s, mock)
    try:
        term.wait_for(lambda: term.contains("Ask anything"), 30, "the prompt")
        term.drain(quiet=1.0, limit=5)
        cap.snap(term, s, "idle_start", "idle")

        term.send("half a thought")
        term.wait_for(lambda: "half a thought" in _oc_box(term), 10, "draft")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "idle_draft", "idle", note="text typed, not submitted")
        term.send("\x03")  # Ctrl-C empties a box with text
        term.wait_for(lambda: term.contains("Ask anything"), 10, "draft cleared")
        term.drain(quiet=0.5, limit=3)

        _oc_type(term, "slow one [delay=3]", cap, "turn_delay")
        term.wait_for(lambda: "interrupt" in _oc_footer(term), 10, "working")
        term.drain(quiet=1.0, limit=1.0)
        cap.snap(term, s, "working_delay", "working", note="~1 s into a 3 s wait")
        term.wait_for(lambda: term.contains("MOCK-REPLY: slow one") and _oc_idle(term), 20, "reply")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "idle_after_reply", "idle")
        _oc_turn_end(term, cap, "turn_delay")

        _oc_type(term, "a paused reply that streams in two halves [middelay=3]", cap, "turn_midstream")
        term.wait_for(lambda: term.contains("MOCK-REPLY: a paused"), 15, "first half")
        term.drain(quiet=1.0, limit=1.0)
        cap.snap(term, s, "working_midstream", "working", note="half the text shown, 3 s pause")
        term.wait_for(lambda: term.contains("halves middelay=3") and _oc_idle(term), 20, "end")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "idle_after_midstream", "idle")
        _oc_turn_end(term, cap, "turn_midstream")

        term.send("\x1b[200~first line\nsecond line\nthird line\x1b[201~")
        term.wait_for(lambda: "[Pasted" in _oc_box(term), 10, "paste shown")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "idle_multiline_draft", "idle", note="a 3-line bracketed paste in the box")
        term.send("\r")
        term.wait_for(lambda: term.contains("MOCK-REPLY: first line") and _oc_idle(term), 20, "ml reply")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "idle_after_multiline", "idle")

        _oc_type(term, "run it [bash=echo hi > made.txt]")
        term.wait_for(lambda: term.contains("Allow once"), 20, "approval")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "approval_bash", "blocked")
        term.send("\r")  # Allow once
        term.wait_for(lambda: term.contains("MOCK-REPLY: tool result") and _oc_idle(term), 30, "ran")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "approval_bash_after_enter", "idle")

        _oc_type(term, "again [bash=echo no > never.txt]")
        term.wait_for(lambda: term.contains("never.txt") and term.contains("Allow once"), 20, "approval 2")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "approval_bash_2", "blocked")
        term.send("\x1b")  # Esc rejects
        term.wait_for(lambda: not term.contains("Allow once") and _oc_idle(term), 20, "rejected")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "approval_bash_after_esc", "idle")

        _oc_type(term, "pick one [ask=Which colour?]")
        term.wait_for(lambda: term.contains("esc dismiss"), 20, "question")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "question_ask", "blocked", note="its question tool: numbered choices")
        term.send("\r")  # the first choice
        term.wait_for(lambda: term.contains("MOCK-REPLY: tool result: User has answered")
                      and _oc_idle(term), 30, "answered")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "question_after_enter", "idle")

        _oc_type(term, "fail me [status=500]")
        term.wait_for(lambda: "attempt #2" in _oc_footer(term), 20, "a retry")
        term.drain(quiet=0.3, limit=0.5)
        cap.snap(term, s, "working_retry", "working", note="the call failed: it retries by itself")
        term.send("\x1b[27u\x1b[27u")  # the profile's interrupt
        term.wait_for(lambda: _oc_idle(term), 15, "retry interrupted")
        term.drain(quiet=0.5, limit=3)

        _oc_type(term, "interrupt me [delay=10]")
        term.wait_for(lambda: "interrupt" in _oc_footer(term), 10, "working 2")
        term.drain(quiet=0.5, limit=0.5)
        term.send("\x1b")
        term.wait_for(lambda: "esc again to interrupt" in _oc_footer(term), 5, "interrupt armed")
        term.drain(quiet=0.3, limit=0.3)
        cap.snap(term, s, "working_esc_once", "working", note="one Esc: 'esc again to interrupt'")
        term.send("\x1b[27u")  # the second Esc, in its CSI-u form (the profile's interrupt)
        term.wait_for(lambda: _oc_idle(term), 15, "interrupted")
        term.drain(quiet=0.5, limit=3)
        cap.snap(term, s, "idle_after_esc_interrupt", "idle")

        term.send("\x03")  # at an empty box, one Ctrl-C quits
        term.wait_for(lambda: term.exited, 15, "exit")
        cap.snap(term, s, "exit_after_ctrlc", "exited")
    finally:
        cap.save_raw(term, s)
        term.close()

    # the same home started again on that session (what a restart runs): the past turns shown
    from supervisor.detect.sessionfiles import opencode as oc_files
    home = BASE / "opencode" / s / "home"
    db = oc_files.files(opencode_env.opencode_env(home), "", 0.0)
    oc_files.read_turn(db[0], "slow one [delay=3]", str(BASE / "opencode" / s / "work"))
    session = oc_files.session_id(db[0])
    assert session, "no session recorded"
    s = "resume"
    term = opencode_spawn(binary, "main", mock, ["--session", session], fresh=False)
    try:
        term.wait_for(lambda: term.contains("interrupt me [delay=10]") and _oc_idle(term), 30, "resumed")
        term.drain(quiet=1.0, limit=5)
        cap.snap(term, s, "idle_resumed", "idle", note="--session <id>: the earlier turns shown")
        term.send("\x03")
        term.wait_for(lambda: term.exited, 15, "exit")
    finally:
        cap.save_raw(term, s)
        term.close()


PROGRAMS = {
    "codex": (codex_env.find_codex, codex_env.CODEX_VERSION, [codex_main]),
    "aider": (aider_env.find_aider, aider_env.AIDER_VERSION, [aider_main]),
    "opencode": (opencode_env.find_opencode, opencode_env.OPENCODE_VERSION, [opencode_main]),
    "gemini": (gemini_env.find_gemini, gemini_env.GEMINI_VERSION, [gemini_main]),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("program", choices=sorted(PROGRAMS))
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    find, version, sessions = PROGRAMS[args.program]
    binary = find()
    if binary is None:
        print(f"{args.program} is not installed (bash scripts/install-agents.sh)", file=sys.stderr)
        return 1
    out = args.out or REPO / "tests" / "data" / f"{args.program}-{version}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cap = Capture(out)
    mock, _port = start_mock()
    try:
        for session in sessions:
            print(f"{session.__name__}:", flush=True)
            session(binary, mock, cap)
    finally:
        cap.write_index()
        mock.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
