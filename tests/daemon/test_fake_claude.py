"""Drive fixtures/fake_claude.py under a real pty and check its screens against the real ones.

Why: the fake stands in for Claude Code in CI, so its screens must match what the
detection rules were written against (claude-screens/2.1.330) and its side files must
look like Claude's.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pexpect
import pyte
import pytest

FAKE = Path(__file__).resolve().parents[2] / "fixtures" / "fake_claude.py"
CAPTURES = Path(__file__).resolve().parents[1] / "data" / "claude-2.1.330"  # shipped with the repo
RULE = "─"
SPIN_RE = re.compile(r"^[·✢*✶✻✽] \w+… \(\d+s · ↓ \d+ tokens\)$")

pytestmark = pytest.mark.timeout(30)


class Term:
    """A pty running the fake, rendered by pyte; answers its ESC[6n query if asked to."""

    def __init__(self, home: Path, *args: str, rows: int = 40, cols: int = 120,
                 answer_cpr: bool = True, env: dict[str, str] | None = None) -> None:
        self.cwd = home / "work"
        self.cwd.mkdir(exist_ok=True)
        full_env = {k: v for k, v in os.environ.items() if k != "STAFF_AGENT"}
        full_env.update(HOME=str(home), TERM="xterm-256color", LANG="C.UTF-8")
        full_env.update(env or {})
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()
        self.answer_cpr = answer_cpr
        self.cpr_answered = 0
        self.eof = False
        self.child = pexpect.spawn(sys.executable, [str(FAKE), *args], env=full_env,
                                   cwd=str(self.cwd), dimensions=(rows, cols))

    def pump(self, timeout: float = 0.02) -> None:
        if self.eof:
            time.sleep(timeout)
            return
        try:
            data = self.child.read_nonblocking(65536, timeout)
        except pexpect.TIMEOUT:
            return
        except pexpect.EOF:
            self.eof = True
            return
        self.raw += data
        self.stream.feed(data)
        if self.answer_cpr:
            while self.cpr_answered < self.raw.count(b"\x1b[6n"):
                self.cpr_answered += 1
                c = self.screen.cursor
                self.child.send(f"\x1b[{c.y + 1};{c.x + 1}R")

    def wait(self, cond: Callable[[], bool], what: str, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; screen:\n{self.text()}")
            self.pump()

    def wait_text(self, needle: str, timeout: float = 5.0) -> None:
        self.wait(lambda: needle in self.text(), repr(needle), timeout)

    def lines(self) -> list[str]:
        return [ln.rstrip() for ln in self.screen.display]

    def text(self) -> str:
        return "\n".join(self.lines())

    def footer(self) -> str:
        return self.lines()[-1]

    def send(self, s: str) -> None:
        self.child.send(s)

    def submit(self, s: str) -> None:
        """Text and Enter as separate writes, as the real CLI needs."""
        self.child.send(s)
        self.child.send("\r")

    def ready(self) -> Term:
        self.wait(lambda: self.footer().startswith("  ⏸ manual mode on · ? for shortcuts"),
                  "idle prompt")
        return self

    def exit_status(self, timeout: float = 5.0) -> int | None:
        self.wait(lambda: self.eof, "exit", timeout)
        self.child.wait()
        return self.child.exitstatus

    def close(self) -> None:
        if self.child.isalive():
            self.child.kill(signal.SIGKILL)
        self.child.close(force=True)


@pytest.fixture
def claude_home(tmp_path: Path) -> Path:
    """HOME for the fake (conftest's ``home`` is the supervisor's, a different thing)."""
    return tmp_path


@pytest.fixture
def spawn(claude_home: Path):
    terms: list[Term] = []

    def make(*args: str, **kw: object) -> Term:
        t = Term(claude_home, *args, **kw)  # type: ignore[arg-type]
        terms.append(t)
        return t

    yield make
    for t in terms:
        t.close()


def registry(home: Path, term: Term) -> dict[str, object]:
    path = home / ".claude" / "sessions" / f"{term.child.pid}.json"
    for _ in range(50):  # rewritten in place: retry a torn read
        try:
            return json.loads(path.read_text())
        except ValueError:
            time.sleep(0.01)
    raise AssertionError("registry never parsed")


def transcript(home: Path, term: Term, session: str) -> list[dict[str, object]]:
    slug = re.sub(r"[^A-Za-z0-9]", "-", str(term.cwd))
    path = home / ".claude" / "projects" / slug / f"{session}.jsonl"
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_idle_screen_matches_real_capture(spawn) -> None:
    t = spawn().ready()
    lines = t.lines()
    assert lines[-4] == RULE * 120 and lines[-2] == RULE * 120
    assert lines[-3] == "❯"
    assert t.screen.display[-3].startswith("❯\xa0")
    assert lines[-1] == "  ⏸ manual mode on · ? for shortcuts · ← for agents"
    assert lines[-5].endswith("◐ medium · /effort") and len(lines[-5]) == 118
    assert t.screen.title == "✳ Claude Code"
    assert lines[1] == " ▐▛███▛█   Claude Code v2.1.330"
    assert lines[3] == f" ▝▝   ▝▝   {t.cwd}"
    assert b"\x1b[?1049h" in t.raw and b"\x1b[?2004h" in t.raw
    real = CAPTURES / "a_idle.txt"  # every row but the cwd is the real idle screen
    want = real.read_text(encoding="utf-8").split("\n")[:40]
    assert [x for i, x in enumerate(lines) if i != 3] == [x for i, x in enumerate(want) if i != 3]


def test_delay_task_works_then_answers(spawn, claude_home: Path) -> None:
    t = spawn().ready()
    assert registry(claude_home, t)["status"] == "idle"
    t.submit("hello world [delay=0.5]")
    t.wait(lambda: "esc to interrupt" in t.footer(), "working footer")
    assert t.screen.title in ("◐ Claude Code", "◑ Claude Code")
    t.wait(lambda: bool(SPIN_RE.match(t.lines()[-6])), "spinner line")
    assert t.lines()[-5].endswith("◐ medium · /effort")
    assert "❯ hello world [delay=0.5]" in t.lines()
    t.wait(lambda: registry(claude_home, t)["status"] == "busy", "registry busy")
    t.wait_text("● FAKE-REPLY(fake#1): hello world [delay=0.5]")
    t.ready()
    assert t.screen.title == "✳ Claude Code"
    assert b"\x1b]0;\xe2\x97\x90 Claude Code\x07" in t.raw  # ◐
    assert b"\x1b]0;\xe2\x97\x91 Claude Code\x07" in t.raw  # ◑
    lines = t.lines()
    i = lines.index("● FAKE-REPLY(fake#1): hello world [delay=0.5]")
    assert lines[i - 2] == "❯ hello world [delay=0.5]" and lines[i + 1] == ""
    assert re.fullmatch(r"✻ Worked for \d+s · done \d{1,2}:\d\d [AP]M", lines[i + 2])
    t.wait(lambda: registry(claude_home, t)["status"] == "idle", "registry idle")


def test_paste_multiline_and_recall(spawn) -> None:
    t = spawn("--name", "bob").ready()
    t.submit("first")
    t.wait_text("● FAKE-REPLY(bob#1): first")
    t.send("\x1b[200~line one\nline two\x1b[201~")
    t.wait(lambda: t.lines()[-4:-2] == ["❯\xa0line one".rstrip(), "  line two"], "pasted box")
    assert t.screen.display[-4].startswith("❯\xa0line one")
    assert "FAKE-REPLY(bob#2)" not in t.text()
    t.send("\r")
    t.wait_text("● FAKE-REPLY(bob#2): line one\n  line two")
    t.ready()
    t.submit("recall")
    t.wait_text("● FAKE-REPLY(bob#3): recall: 1) first | 2) line one\n  line two")


def test_ask_dialog_approve_then_reject(spawn, claude_home: Path) -> None:
    t = spawn().ready()
    t.submit("deploy [ask]")
    t.wait_text(" Do you want to proceed?")
    assert b"Waiting for permission\xe2\x80\xa6" in t.raw
    lines = t.lines()
    top = lines.index(" Bash command") - 1
    assert lines[top] == RULE * 120
    assert lines[top + 4] == "╌" * 120 and lines[top + 5] == " echo fake"
    assert lines[top + 7:top + 9] == [" Do you want to proceed?", " ❯ 1. Yes"]
    assert lines[top + 9].startswith(f"   2. Yes, and always allow access to {t.cwd} from")
    end = lines.index(" Esc to cancel · Tab to amend")
    assert lines[end - 3:end] == [
        "   3. Yes, and switch to auto mode · auto mode handles these prompts for you",
        "   4. No", ""]
    assert not any(x.startswith("❯") for x in lines[end:])  # no input box under the dialog
    assert t.screen.title == "✳ Claude Code"
    reg = registry(claude_home, t)
    assert reg["status"] == "waiting" and reg["waitingFor"] == "permission prompt"
    t.send("1")
    t.wait_text("● FAKE-REPLY(fake#1): deploy [ask]")
    t.ready()
    t.submit("again [ask]")
    t.wait_text(" Esc to cancel · Tab to amend")
    t.send("\x1b")
    t.wait_text("● FAKE-REPLY(fake#2): rejected: again [ask]")
    t.ready()
    assert "waitingFor" not in registry(claude_home, t)


def test_esc_interrupts_and_restores_prompt(spawn) -> None:
    t = spawn().ready()
    t.submit("long job [delay=10]")
    t.wait(lambda: "esc to interrupt" in t.footer(), "working")
    t.send("\x1b")
    t.wait_text("  ⎿ \xa0Interrupted · What should Claude do instead?")
    t.ready()
    assert t.lines()[-3] == "❯\xa0long job [delay=10]"


def test_stream_and_flood(spawn) -> None:
    t = spawn().ready()
    t.submit("streamed answer [stream=1]")
    # mid-stream: part of the answer shown, no spinner, but still "esc to interrupt"
    t.wait(lambda: "● FAKE-REPLY" in t.text() and "esc to interrupt" in t.footer(),
           "partial answer while working")
    assert not any(SPIN_RE.match(x) for x in t.lines())
    t.wait_text("● FAKE-REPLY(fake#1): streamed answer [stream=1]")
    t.ready()
    start = len(t.raw)
    t.submit("flood [flood=32]")
    t.wait_text("● FAKE-REPLY(fake#2): flood [flood=32]")
    assert len(t.raw) - start > 32 * 1024
    assert re.search(rb"\x1b\[38;5;\d+m  flood \d{5} ", bytes(t.raw[start:]))
    assert any(x.startswith("  flood ") for x in t.lines())


def test_crash_exits_3_and_leaves_registry(spawn, claude_home: Path) -> None:
    t = spawn().ready()
    t.submit("boom [crash]")
    assert t.exit_status() == 3
    assert "esc to interrupt" in t.footer()  # the working screen was drawn
    assert (claude_home / ".claude" / "sessions" / f"{t.child.pid}.json").exists()


def test_hang_goes_silent_until_sigterm(spawn) -> None:
    t = spawn().ready()
    t.submit("stuck [hang]")
    t.wait(lambda: "esc to interrupt" in t.footer(), "working screen")
    size = len(t.raw)
    quiet_until = time.monotonic() + 0.5
    while time.monotonic() < quiet_until:  # a measured silence, not a synchronising sleep
        t.pump()
    assert len(t.raw) == size
    t.child.kill(signal.SIGTERM)
    t.wait(lambda: t.eof, "exit after SIGTERM")
    t.child.wait()
    assert t.child.signalstatus == signal.SIGTERM


def test_exit_directive_transcript_and_registry(spawn, claude_home: Path) -> None:
    sid = str(uuid.uuid4())
    t = spawn("--session-id", sid, "--permission-mode", "default",
              "--append-system-prompt", "be a fake").ready()
    reg = registry(claude_home, t)
    assert reg["pid"] == t.child.pid and reg["sessionId"] == sid
    assert reg["cwd"] == str(t.cwd) and reg["version"] == "2.1.330"
    assert reg["kind"] == "interactive" and reg["status"] == "idle"
    assert isinstance(reg["updatedAt"], int) and isinstance(reg["statusUpdatedAt"], int)
    t.submit("hi there")
    t.wait_text("● FAKE-REPLY(fake#1): hi there")
    t.ready()
    t.submit("bye [exit]")
    assert t.exit_status() == 0
    assert b"\x1b[?1049l" in t.raw
    assert not (claude_home / ".claude" / "sessions" / f"{t.child.pid}.json").exists()
    entries = transcript(claude_home, t, sid)
    assert [e["type"] for e in entries] == ["user", "assistant", "system"]
    assert entries[0]["message"] == {"role": "user", "content": "hi there"}
    assert entries[1]["message"]["content"] == [  # type: ignore[index]
        {"type": "text", "text": "FAKE-REPLY(fake#1): hi there"}]
    assert all(e["sessionId"] == sid and e["uuid"] and e["timestamp"] for e in entries)


def test_ctrl_c_twice_then_resume_keeps_counter(spawn, claude_home: Path) -> None:
    sid = str(uuid.uuid4())
    t = spawn("--session-id", sid, env={"STAFF_AGENT": "amy"}).ready()
    t.submit("alpha")
    t.wait_text("● FAKE-REPLY(amy#1): alpha")
    t.ready()
    t.submit("beta")
    t.wait_text("● FAKE-REPLY(amy#2): beta")
    t.ready()
    t.send("draft")
    t.wait(lambda: t.lines()[-3] == "❯\xa0draft", "draft typed")
    t.send("\x03")  # clears the box
    t.wait(lambda: t.lines()[-3] == "❯", "box cleared")
    assert t.footer().startswith("  ⏸ manual mode on")
    t.send("\x03")
    t.wait(lambda: t.footer() == "  Press Ctrl-C again to exit", "ctrl-c hint")
    t.send("\x03")
    assert t.exit_status() == 0
    assert f"fake_claude.py --resume {sid}".encode() in t.raw
    assert b"claude --resume" not in t.raw  # no hint for a `claude` that may not be installed

    r = spawn("-r", sid, "-n", "amy").ready()
    assert "❯ alpha" in r.lines() and "● FAKE-REPLY(amy#2): beta" in r.lines()
    r.submit("recall")
    r.wait_text("● FAKE-REPLY(amy#3): recall: 1) alpha | 2) beta")
    assert [e["type"] for e in transcript(claude_home, r, sid)] == ["user", "assistant", "system"] * 3


def test_sigwinch_repaints_at_new_size(spawn) -> None:
    t = spawn().ready()
    t.submit("before resize")
    t.wait_text("● FAKE-REPLY(fake#1): before resize")
    t.child.setwinsize(30, 100)
    t.screen.resize(30, 100)
    t.screen.erase_in_display(2)  # whatever shows up now was repainted
    # A frame drawn at the old size may still be in the pipe (its rows clamped to the new
    # last row): wait for the repaint at the new size, not just any footer.
    t.wait(lambda: t.lines()[-1].startswith("  ⏸") and t.lines()[-2] == RULE * 100,
           "repaint at the new size")
    lines = t.lines()
    assert len(lines) == 30
    assert lines[-2] == RULE * 100 and lines[-4] == RULE * 100 and lines[-3] == "❯"
    assert lines[-1] == "  ⏸ manual mode on · ? for shortcuts · ← for agents"
    assert lines[-5].endswith("◐ medium · /effort") and len(lines[-5]) == 98
    assert "● FAKE-REPLY(fake#1): before resize" in lines


def test_missing_cursor_report_is_noted(spawn) -> None:
    t = spawn("--startup-delay", "0", answer_cpr=False)
    t.wait(lambda: t.footer().startswith("  ⏸ manual mode on"), "prompt without CPR", 6)
    assert t.lines()[4] == "  (terminal did not answer ESC[6n)"
    assert t.lines()[-3] == "❯"


def test_long_paste_folds_and_the_wheel_scrolls_back(spawn) -> None:  # type: ignore[no-untyped-def]
    """As Claude Code 2.1.330 does (probed under the supervisor): a paste of 3+ lines shows as
    `[Pasted text #1 +N lines]` in the box, the alternate screen has no scrollback, and the
    mouse wheel (one line a notch) or PgUp (half a screen) scroll the conversation back, with
    `Jump to bottom (ctrl+End) ↓` on the last row; Ctrl+End comes back down."""
    t = spawn("-n", "amy").ready()
    text = "\n".join(["FIRST-LINE", *(f"line {i}" for i in range(1, 200))])
    t.send(f"\x1b[200~{text}\x1b[201~")
    t.wait(lambda: t.lines()[-3] == "❯\xa0[Pasted text #1 +199 lines]", "the folded paste")
    t.send("\r")
    t.wait_text("✻ Worked for")
    assert "FIRST-LINE" not in t.text() and "  line 199" in t.text()
    t.send("\x1b[<64;10;10M" * 6)  # six notches up: past the done line, 3 of the reply
    t.wait_text("Jump to bottom (ctrl+End) ↓")
    t.wait(lambda: "  line 199" not in t.text() and "  line 196" in t.text(), "six lines back")
    for _ in range(20):  # bounded: 200 lines at half a screen a page
        if "● FAKE-REPLY(amy#1): FIRST-LINE" in t.text():
            break
        top = t.lines()[0]
        t.send("\x1b[5~")
        t.wait(lambda top=top: t.lines()[0] != top, "a page up")  # type: ignore[misc]
    assert "● FAKE-REPLY(amy#1): FIRST-LINE" in t.text()
    t.send("\x1b[1;5F")
    t.wait(lambda: "  line 199" in t.text() and "Jump to bottom" not in t.text(), "back at the bottom")
