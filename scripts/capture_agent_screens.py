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

Each program is data (a `Program`: how to start it, how its box shows typed text, and its
sessions as lists of `Step`s); one runner plays them all, so the scenarios differ only
where the programs do.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Protocol

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fixtures import aider_env, codex_env, gemini_env, mock_gemini, mock_openai, opencode_env  # noqa: E402  (the repo on sys.path first)
from fixtures.claude_env import ClaudeTerm  # noqa: E402
from scripts.capture_claude_screens import Capture  # noqa: E402

BASE = Path("/tmp/staff-capture")

Cond = Callable[[ClaudeTerm], bool]
PASTE = "\x1b[200~first line\nsecond line\nthird line\x1b[201~"
DELAY, MID = "slow one [delay=3]", "a paused reply that streams in two halves [middelay=3]"


@dataclass(frozen=True)
class Step:
    """One beat of a session, in this order: write `send`, or type `type` and Enter as its
    own write (`mark` records the Enter's offset as ``expected = "turn"``: where a turn
    starts, for the test that no frame of it reads idle before its reply ends); wait
    `until` holds (and/or the mock logs `event`); read until `drain` = (quiet, limit)
    passes; store the screen as `snap`; then run `then`."""

    send: str = ""
    type: str = ""
    mark: str = ""
    until: Cond | None = None
    event: str = ""
    timeout: float = 10
    what: str = ""
    drain: tuple[float, float] | None = (0.5, 3)
    snap: str = ""
    expected: str = ""
    note: str = ""
    then: Callable[[ClaudeTerm, Capture], None] | None = None


@dataclass(frozen=True)
class Session:
    """Steps recorded into ``<name>.raw``; run in BASE/<program>/<root> (fresh: emptied
    first), with `args` (computed when the session starts) on the command line."""

    name: str
    steps: list[Step]
    root: str = "main"
    fresh: bool = True
    args: Callable[[], list[str]] = list


class Spawn(Protocol):
    def __call__(self, binary: str, root: Path, port: int, args: list[str]) -> ClaudeTerm: ...


class Mock(Protocol):
    events: list[tuple[float, str]]

    def stop(self) -> None: ...


@dataclass(frozen=True)
class Program:
    find: Callable[[], str | None]
    version: str
    spawn: Spawn
    typed: Callable[[ClaudeTerm, str], bool]  # its box shows text starting with this head
    sessions: list[Session]
    start_mock: Callable[[], tuple[Mock, int]] = field(default=mock_openai.start_mock)


def _logged(mock: Mock, event: str, since: int) -> bool:
    """The mock logged `event` after its first `since` events."""
    return any(name == event for _t, name in mock.events[since:])


def run_session(program: str, p: Program, binary: str, mock: Mock, port: int, cap: Capture,
                sess: Session) -> None:
    root = BASE / program / sess.root
    if sess.fresh:
        shutil.rmtree(root, ignore_errors=True)
    term = p.spawn(binary, root, port, sess.args())
    try:
        for st in sess.steps:
            since = len(mock.events)
            if st.send:
                term.send(st.send)
            if st.type:
                term.send(st.type)
                head = st.type.splitlines()[0][:30]
                term.wait_for(partial(p.typed, term, head), 10, f"{head!r} typed")
                term.drain(quiet=0.3, limit=2)
                term.send("\r")
                if st.mark:
                    cap.index[st.mark] = {"raw": f"{sess.name}.raw", "offset": len(term.raw),
                                          "expected": "turn", "reply": f"MOCK-REPLY: {st.type}"}
            if st.event:
                term.wait_for(partial(_logged, mock, st.event, since), st.timeout, st.what)
            if st.until is not None:
                term.wait_for(partial(st.until, term), st.timeout, st.what)
            if st.drain is not None:
                term.drain(quiet=st.drain[0], limit=st.drain[1])
            if st.snap:
                cap.snap(term, sess.name, st.snap, st.expected, note=st.note)
            if st.then is not None:
                st.then(term, cap)
    finally:
        cap.save_raw(term, sess.name)
        term.close()


def _has(*texts: str, idle: Cond | None = None) -> Cond:
    """The screen shows all `texts` (and reads idle by `idle`)."""
    return lambda t: all(t.contains(x) for x in texts) and (idle is None or idle(t))


def _exited(t: ClaudeTerm) -> bool:
    return t.exited


# steps more than one program takes alike
MIDSTREAM = Step(type=MID, mark="turn_midstream", until=_has("MOCK-REPLY: a paused"), timeout=15,
                 what="first half", drain=(1.0, 1.0), snap="working_midstream", expected="working",
                 note="half the text shown, 3 s pause")
PASTED = Step(send=PASTE, until=_has("third line"), what="paste shown", snap="idle_multiline_draft",
              expected="idle", note="a 3-line bracketed paste in the box")


# -- Codex CLI ------------------------------------------------------------------------------
CODEX_HINT = "Ask Codex to do anything"


def codex_spawn(binary: str, root: Path, port: int, args: list[str]) -> ClaudeTerm:
    home, work = root / "home", root / "work"
    work.mkdir(parents=True, exist_ok=True)
    codex_env.prepare_home(home / ".codex", work, port, trust=True)
    env = codex_env.codex_env(home, home / ".codex")
    return ClaudeTerm(binary, list(codex_env.ARGS) + args, env=env, cwd=work, answer_queries=True)


def _codex_typed(term: ClaudeTerm, head: str) -> bool:
    return any(ln.startswith("› ") and (head in ln or "[Pasted" in ln) for ln in term.lines()[-12:])


def _idle(term: ClaudeTerm) -> bool:
    bottom = term.lines()[-8:]
    return (any(ln.startswith("› ") for ln in bottom)
            and not any("esc to interrupt" in ln for ln in bottom)
            and not any("Press enter to confirm" in ln for ln in bottom))


CODEX = [
    Step(until=_has(CODEX_HINT), timeout=30, what="the prompt", drain=(1.0, 5),
         snap="idle_start", expected="idle"),
    Step(send="half a thought", until=_has("› half a thought"), what="draft",
         snap="idle_draft", expected="idle", note="text typed, not submitted"),
    Step(send="\x15", until=_has(CODEX_HINT), what="draft cleared", drain=None),  # Ctrl-U: empty box
    Step(type=DELAY, mark="turn_delay", until=_has("esc to interrupt"), what="working", drain=(1.0, 1.0),
         snap="working_delay", expected="working", note="~1 s into a 3 s wait"),
    Step(until=_has("MOCK-REPLY: slow one", idle=_idle), timeout=20, what="reply",
         snap="idle_after_reply", expected="idle"),
    MIDSTREAM,
    Step(until=_has("halves [middelay=3]", idle=_idle), timeout=20, what="end",
         snap="idle_after_midstream", expected="idle"),
    PASTED,
    Step(send="\r", until=_has("MOCK-REPLY: first line", idle=_idle), timeout=20, what="ml reply",
         snap="idle_after_multiline", expected="idle"),
    Step(type="run it [bash=echo hi > made.txt]", until=_has("Press enter to confirm"), timeout=20,
         what="approval", snap="approval_exec", expected="blocked"),
    Step(send="y", until=_has("MOCK-REPLY: tool result", idle=_idle), timeout=30, what="ran",
         snap="approval_exec_after_yes", expected="idle"),
    Step(type="again [bash=echo no > never.txt]", until=_has("never.txt", "Press enter to confirm"),
         timeout=20, what="approval 2", snap="approval_exec_2", expected="blocked"),
    Step(send="\x1b", until=lambda t: not t.contains("Press enter to confirm") and _idle(t), timeout=20,
         what="declined", snap="approval_exec_after_esc", expected="idle"),
    Step(type="interrupt me [delay=10]", until=_has("esc to interrupt"), what="working 2", drain=(0.5, 0.5)),
    Step(send="\x1b", until=_idle, timeout=15, what="interrupted",
         snap="idle_after_esc_interrupt", expected="idle"),
    Step(send="\x15", drain=(0.5, 2)),
    Step(send="\x03", until=_exited, timeout=15, what="exit", drain=None,  # at an empty box, one Ctrl-C quits
         snap="exit_after_ctrlc", expected="exited"),
]


# -- Gemini CLI -----------------------------------------------------------------------------
GEMINI_HINT = "Type your message or @path/to/file"


def gemini_spawn(binary: str, root: Path, port: int, args: list[str]) -> ClaudeTerm:
    home, work = root / "home", root / "work"
    work.mkdir(parents=True, exist_ok=True)
    gemini_env.prepare_home(home)
    env = gemini_env.gemini_env(home, port)
    return ClaudeTerm(binary, list(gemini_env.ARGS) + args, env=env, cwd=work, answer_queries=True)


def _g_bottom(term: ClaudeTerm, n: int = 14) -> list[str]:
    return [ln for ln in term.lines() if ln.strip()][-n:]


def _g_box(term: ClaudeTerm) -> list[str]:
    return [ln for ln in _g_bottom(term) if ln.startswith(" > ")]


def _g_idle(term: ClaudeTerm) -> bool:
    return (term.title.startswith("◇") and any(GEMINI_HINT in ln for ln in _g_box(term))
            and not any("● 1." in ln for ln in _g_bottom(term)))


def _g_typed(term: ClaudeTerm, head: str) -> bool:
    """(Enter goes as its own write: in the same write, Gemini takes it as a newline of a paste.)"""
    return any(head in ln or "[Pasted Text" in ln for ln in _g_box(term))


GEMINI = [
    Step(until=_g_idle, timeout=40, what="the prompt", drain=(1.0, 5), snap="idle_start", expected="idle"),
    Step(send="half a thought", until=lambda t: any("half a thought" in ln for ln in _g_box(t)), what="draft",
         snap="idle_draft", expected="idle", note="text typed, not submitted"),
    Step(send="\x15", until=_g_idle, what="draft cleared", drain=None),  # Ctrl-U empties the box
    Step(type=DELAY, mark="turn_delay", until=_has("esc to cancel"), what="working", drain=(1.0, 1.0),
         snap="working_delay", expected="working", note="~1 s into a 3 s wait"),
    Step(until=_has("MOCK-REPLY: slow one", idle=_g_idle), timeout=20, what="reply",
         snap="idle_after_reply", expected="idle"),
    MIDSTREAM,
    Step(until=_has("halves [middelay=3]", idle=_g_idle), timeout=20, what="end",
         snap="idle_after_midstream", expected="idle"),
    PASTED,
    Step(send="\r", until=_has("MOCK-REPLY: first line", idle=_g_idle), timeout=20, what="ml reply",
         snap="idle_after_multiline", expected="idle"),
    Step(type="run it [bash=echo hi > made.txt]", until=_has("Allow execution of"), timeout=20,
         what="approval", snap="approval_exec", expected="blocked"),
    Step(send="1", until=_has("MOCK-REPLY: tool result", idle=_g_idle), timeout=30, what="ran",
         snap="approval_exec_after_yes", expected="idle"),
    Step(type="again [bash=echo no > never.txt]", until=_has("never.txt", "Allow execution of"),
         timeout=20, what="approval 2", snap="approval_exec_2", expected="blocked"),
    Step(send="\x1b", until=lambda t: not t.contains("Allow execution of") and _g_idle(t), timeout=20,
         what="declined", snap="approval_exec_after_esc", expected="idle"),
    # The mock echoes a repetitive prompt in 12-character chunks: Gemini's loop detection
    # stops the stream and asks, under a '◇  Ready' title.
    Step(send="\x1b[200~" + "loop " + "x" * 600 + "\x1b[201~",
         until=lambda t: any("[Pasted Text" in ln for ln in _g_box(t)), what="long paste", drain=(0.3, 2)),
    Step(send="\r", until=_has("A potential loop was detected", "● 1."), timeout=20, what="loop question",
         snap="loop_dialog", expected="blocked", note="its title says Ready meanwhile"),
    Step(send="\x1b", until=_g_idle, timeout=20, what="loop answered",
         snap="idle_after_loop", expected="idle"),
    Step(type="interrupt me [delay=10]", until=_has("esc to cancel"), what="working 2", drain=(0.5, 0.5)),
    Step(send="\x1b", until=_g_idle, timeout=15, what="interrupted",
         snap="idle_after_esc_interrupt", expected="idle"),
    Step(send="\x03", until=_has("Press Ctrl+C again to exit"), what="quit armed", drain=(0.3, 2),
         snap="idle_ctrlc_once", expected="idle", note="one Ctrl-C at an empty box"),
    Step(send="\x03", until=_exited, timeout=15, what="exit", drain=None,
         snap="exit_after_ctrlc", expected="exited"),
]


# -- Aider ----------------------------------------------------------------------------------
def aider_spawn(binary: str, root: Path, port: int, args: list[str]) -> ClaudeTerm:
    home, work = root / "home", root / "work"
    aider_env.prepare_home(home)
    aider_env.prepare_repo(work)
    term = ClaudeTerm(binary, aider_env.args(port, home) + args, env=aider_env.aider_env(home),
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


def _aider_asks(question: str) -> Cond:
    return lambda t: _reading(t) and any(question in ln and "(Y)es/(N)o" in ln for ln in t.lines())


def _aider_typed(term: ClaudeTerm, head: str) -> bool:
    return any(ln.startswith("> ") and head in ln for ln in term.lines())


def _aider_history(_term: ClaudeTerm, cap: Capture) -> None:
    """The history the session wrote: the answer reader's test data (sessionfiles/aider.py)."""
    shutil.copy(BASE / "aider" / "main" / "work" / ".aider.chat.history.md", cap.out / "chat.history.md")


AIDER = [
    Step(until=_aider_idle, timeout=60, what="the prompt", drain=(1.0, 5),
         snap="idle_start", expected="idle"),
    Step(send="half a thought", until=_has("> half a thought"), what="draft",
         snap="idle_draft", expected="idle", note="text typed, not submitted"),
    Step(send="\x15", until=lambda t: not t.contains("half a thought"), what="draft cleared", drain=None),
    Step(type=DELAY, mark="turn_delay", until=_has("Waiting for"), what="working", drain=(0.5, 0.5),
         snap="working_delay", expected="working", note="the scanner, ~1 s into a 3 s wait"),
    Step(until=_aider_idle, timeout=20, what="reply", snap="idle_after_reply", expected="idle"),
    Step(type=MID, mark="turn_midstream", event="middelay-start", timeout=15, what="first half",
         drain=(1.0, 1.0), snap="working_midstream", expected="working",
         note="half the text shown, 3 s pause"),
    Step(until=_aider_idle, timeout=20, what="end", snap="idle_after_midstream", expected="idle"),
    PASTED,
    Step(send="\r", until=lambda t: not _reading(t), what="taken", drain=None),
    Step(until=_aider_idle, timeout=20, what="ml reply", snap="idle_after_multiline", expected="idle"),
    Step(type="run it [bash=echo hi]", until=_aider_asks("Run shell command?"), timeout=20,
         what="run question", snap="question_run_shell", expected="blocked"),
    Step(send="y", snap="question_run_shell_typed", expected="blocked", note="'y' typed, no Enter yet"),
    Step(send="\r", until=_aider_asks("Add command output"), timeout=20, what="output question",
         snap="question_add_output", expected="blocked"),
    Step(send="n\r", until=_aider_idle, timeout=20, what="after the questions",
         snap="idle_after_questions", expected="idle"),
    Step(type="please look at README.md", until=_aider_asks("Add file to the chat?"), timeout=20,
         what="add-file question", snap="question_add_file", expected="blocked"),
    Step(send="y\r", until=_has("README.md", idle=_aider_idle), timeout=20, what="file added",
         snap="idle_with_file", expected="idle", note="the files in the chat over the prompt"),
    Step(type="interrupt me [delay=10]", until=_has("Waiting for"), what="working 2", drain=(0.3, 0.3),
         snap="working_before_interrupt", expected="working"),
    Step(send="\x03", until=_aider_idle, timeout=15, what="interrupted",
         snap="idle_after_interrupt", expected="idle"),
    Step(send="\x04", until=_exited, timeout=15, what="exit", drain=None,  # Ctrl-D at the prompt quits
         snap="exit_after_ctrld", expected="exited", then=_aider_history),
]


# -- opencode -------------------------------------------------------------------------------
def opencode_spawn(binary: str, root: Path, port: int, args: list[str]) -> ClaudeTerm:
    home, work = root / "home", root / "work"
    work.mkdir(parents=True, exist_ok=True)
    opencode_env.prepare_home(home, port)
    env = opencode_env.opencode_env(home)
    return ClaudeTerm(binary, args, env=env, cwd=work, answer_queries=True)


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


def _oc_typed(term: ClaudeTerm, head: str) -> bool:
    return head in _oc_box(term) or "[Pasted" in _oc_box(term)


def _oc_footer_has(text: str) -> Cond:
    return lambda t: text in _oc_footer(t)


def _oc_turn_end(mark: str) -> Callable[[ClaudeTerm, Capture], None]:
    """Where the turn `mark` ended on screen: its summary row ("▣  Build · Mock Model · 3.3s"),
    drawn in the frame that turns the footer idle. (Its last text can come a frame later:
    opencode draws text in batches; the answer is read from its database, not the screen.)"""
    def end(term: ClaudeTerm, cap: Capture) -> None:
        rows = [ln.strip() for ln in term.lines() if re.fullmatch(r"▣ .* · [\d.]+m?s", ln.strip())]
        cap.index[mark]["reply"] = rows[-1]
    return end


def _oc_resume_args() -> list[str]:
    """The main session's id, from the database it left (what a restart runs)."""
    from supervisor.detect.sessionfiles import opencode as oc_files
    home = BASE / "opencode" / "main" / "home"
    db = oc_files.files(opencode_env.opencode_env(home), "", 0.0)
    oc_files.read_turn(db[0], DELAY, str(BASE / "opencode" / "main" / "work"))
    session = oc_files.session_id(db[0])
    assert session, "no session recorded"
    return ["--session", session]


OPENCODE = [
    Step(until=_has("Ask anything"), timeout=30, what="the prompt", drain=(1.0, 5),
         snap="idle_start", expected="idle"),
    Step(send="half a thought", until=lambda t: "half a thought" in _oc_box(t), what="draft",
         snap="idle_draft", expected="idle", note="text typed, not submitted"),
    Step(send="\x03", until=_has("Ask anything"), what="draft cleared"),  # Ctrl-C empties a box with text
    Step(type=DELAY, mark="turn_delay", until=_oc_footer_has("interrupt"), what="working", drain=(1.0, 1.0),
         snap="working_delay", expected="working", note="~1 s into a 3 s wait"),
    Step(until=_has("MOCK-REPLY: slow one", idle=_oc_idle), timeout=20, what="reply",
         snap="idle_after_reply", expected="idle", then=_oc_turn_end("turn_delay")),
    MIDSTREAM,
    Step(until=_has("halves middelay=3", idle=_oc_idle), timeout=20, what="end",
         snap="idle_after_midstream", expected="idle", then=_oc_turn_end("turn_midstream")),
    Step(send=PASTE, until=lambda t: "[Pasted" in _oc_box(t), what="paste shown",
         snap="idle_multiline_draft", expected="idle", note="a 3-line bracketed paste in the box"),
    Step(send="\r", until=_has("MOCK-REPLY: first line", idle=_oc_idle), timeout=20, what="ml reply",
         snap="idle_after_multiline", expected="idle"),
    Step(type="run it [bash=echo hi > made.txt]", until=_has("Allow once"), timeout=20,
         what="approval", snap="approval_bash", expected="blocked"),
    Step(send="\r", until=_has("MOCK-REPLY: tool result", idle=_oc_idle), timeout=30,  # Allow once
         what="ran", snap="approval_bash_after_enter", expected="idle"),
    Step(type="again [bash=echo no > never.txt]", until=_has("never.txt", "Allow once"), timeout=20,
         what="approval 2", snap="approval_bash_2", expected="blocked"),
    Step(send="\x1b", until=lambda t: not t.contains("Allow once") and _oc_idle(t), timeout=20,  # Esc rejects
         what="rejected", snap="approval_bash_after_esc", expected="idle"),
    Step(type="pick one [ask=Which colour?]", until=_has("esc dismiss"), timeout=20, what="question",
         snap="question_ask", expected="blocked", note="its question tool: numbered choices"),
    Step(send="\r", until=_has("MOCK-REPLY: tool result: User has answered", idle=_oc_idle),
         timeout=30, what="answered", snap="question_after_enter", expected="idle"),  # the first choice
    Step(type="fail me [status=500]", until=_oc_footer_has("attempt #2"), timeout=20, what="a retry",
         drain=(0.3, 0.5), snap="working_retry", expected="working",
         note="the call failed: it retries by itself"),
    Step(send="\x1b[27u\x1b[27u", until=_oc_idle, timeout=15,  # the profile's interrupt
         what="retry interrupted"),
    Step(type="interrupt me [delay=10]", until=_oc_footer_has("interrupt"), what="working 2",
         drain=(0.5, 0.5)),
    Step(send="\x1b", until=_oc_footer_has("esc again to interrupt"), timeout=5, what="interrupt armed",
         drain=(0.3, 0.3), snap="working_esc_once", expected="working",
         note="one Esc: 'esc again to interrupt'"),
    Step(send="\x1b[27u", until=_oc_idle, timeout=15, what="interrupted",  # the second Esc, CSI-u form
         snap="idle_after_esc_interrupt", expected="idle"),
    Step(send="\x03", until=_exited, timeout=15, what="exit", drain=None,  # at an empty box, one Ctrl-C quits
         snap="exit_after_ctrlc", expected="exited"),
]

# the same home started again on that session (what a restart runs): the past turns shown
OPENCODE_RESUME = [
    Step(until=_has("interrupt me [delay=10]", idle=_oc_idle), timeout=30, what="resumed", drain=(1.0, 5),
         snap="idle_resumed", expected="idle", note="--session <id>: the earlier turns shown"),
    Step(send="\x03", until=_exited, timeout=15, what="exit", drain=None),
]


PROGRAMS = {
    "codex": Program(codex_env.find_codex, codex_env.CODEX_VERSION, codex_spawn, _codex_typed,
                     [Session("main", CODEX)]),
    "aider": Program(aider_env.find_aider, aider_env.AIDER_VERSION, aider_spawn, _aider_typed,
                     [Session("main", AIDER)]),
    "opencode": Program(opencode_env.find_opencode, opencode_env.OPENCODE_VERSION, opencode_spawn,
                        _oc_typed, [Session("main", OPENCODE),
                                    Session("resume", OPENCODE_RESUME, fresh=False, args=_oc_resume_args)]),
    # against mock_gemini (not the OpenAI mock)
    "gemini": Program(gemini_env.find_gemini, gemini_env.GEMINI_VERSION, gemini_spawn, _g_typed,
                      [Session("main", GEMINI)], start_mock=mock_gemini.start_mock),
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("program", choices=sorted(PROGRAMS))
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    p = PROGRAMS[args.program]
    binary = p.find()
    if binary is None:
        print(f"{args.program} is not installed (bash scripts/install-agents.sh)", file=sys.stderr)
        return 1
    out = args.out or REPO / "tests" / "data" / f"{args.program}-{p.version}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cap = Capture(out)
    mock, port = p.start_mock()
    try:
        for sess in p.sessions:
            print(f"{args.program} {sess.name}:", flush=True)
            run_session(args.program, p, binary, mock, port, cap, sess)
    finally:
        cap.write_index()
        mock.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
