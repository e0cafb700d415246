#!/usr/bin/env python3
"""Record golden screens of the real Claude Code CLI for the screen-state detector.

Why: detection rules are data that must be checked against what the real program draws.
This drives the pinned claude (``fixtures/claude_env.find_claude``) under a 120x40 pty
against ``fixtures/mock_anthropic`` and stores, per session, every byte it wrote
(``<session>.raw``), the byte offset at which each state was seen (``index.json``) and
the pyte rendering of that moment (``<state>.txt``), like /work/shared/claude-screens.

    .venv/bin/python scripts/capture_claude_screens.py [--out tests/data/claude-2.1.330-extra]

The working directory is a fixed path (``/tmp/staff-capture/...``) so the screens do not
change from one capture to the next except for clock times and spinner words.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from fixtures.claude_env import (  # noqa: E402  (needs the repo on sys.path first)
    ClaudeTerm,
    claude_env,
    find_claude,
    prepare_home,
    read_registry,
    session_registry_path,
)
from fixtures.mock_anthropic import MockServer, start_mock  # noqa: E402

BASE = Path("/tmp/staff-capture")
DEFAULT_OUT = REPO / "tests" / "data" / "claude-2.1.330-extra"


@dataclass
class Capture:
    """Collects the states of all sessions into one output folder."""

    out: Path
    index: dict[str, dict[str, Any]] = field(default_factory=dict)

    def snap(self, term: ClaudeTerm, session: str, state: str, expected: str,
             home: Path | None = None, note: str = "") -> None:
        """Store the screen as it is now, with its offset in ``<session>.raw``."""
        text = "".join(line + "\n" for line in term.lines())
        (self.out / f"{state}.txt").write_text(text, encoding="utf-8")
        entry: dict[str, Any] = {
            "raw": f"{session}.raw",
            "offset": len(term.raw),
            "expected": expected,
            "title": term.screen.title,
        }
        if home is not None and not term.exited:
            reg = read_registry(session_registry_path(home, term.pid), timeout=0.3)
            entry["registry"] = (
                {k: reg[k] for k in ("status", "waitingFor") if k in reg} if reg else None
            )
        if note:
            entry["note"] = note
        self.index[state] = entry
        print(f"  {state:32} offset {len(term.raw):6}  expected {expected}", flush=True)

    def save_raw(self, term: ClaudeTerm, session: str) -> None:
        (self.out / f"{session}.raw").write_bytes(bytes(term.raw))

    def write_index(self) -> None:
        (self.out / "index.json").write_text(json.dumps(self.index, indent=1) + "\n",
                                             encoding="utf-8")


def spawn(binary: str, name: str, mock: MockServer,
          prepare: Callable[[Path, Path], None]) -> tuple[ClaudeTerm, Path, Path]:
    """A fresh HOME and workdir under BASE/name, then claude in it."""
    root = BASE / name
    home, work = root / "home", root / "work"
    work.mkdir(parents=True)
    prepare(home, work)
    term = ClaudeTerm(binary, ["--session-id", str(uuid.uuid4()), "--permission-mode",
                               "default"], env=claude_env(home, mock.port), cwd=work)
    return term, home, work


def session_trust(binary: str, mock: MockServer, cap: Capture) -> None:
    """Folder-trust dialog (key approved, no trust entry); accept it with Down + Enter."""
    term, home, _work = spawn(binary, "trust", mock,
                              lambda h, w: prepare_home(h, w, trust=False))
    try:
        term.wait_for(lambda: term.contains("Yes, I trust this folder"), 20, "trust dialog")
        term.drain(quiet=0.3)
        cap.snap(term, "trust", "trust_dialog", "blocked", home,
                 "preselected: No, exit. Enter/Esc exit claude; Down then Enter trusts")
        term.select(" ❯ Yes, I trust this folder", "\x1b[B")
        cap.snap(term, "trust", "trust_dialog_yes_selected", "blocked", home)
        term.press_until_gone("\r", "Yes, I trust this folder")
        term.wait_for(term.is_idle, 20, "idle after trusting")
        term.drain(quiet=0.3)
        cap.snap(term, "trust", "trust_accepted_idle", "idle", home)
    finally:
        term.close()
        cap.save_raw(term, "trust")


def session_trust_declined(binary: str, mock: MockServer, cap: Capture) -> None:
    """Folder-trust dialog answered with Enter on the default: claude exits."""
    term, _home, _work = spawn(binary, "trust_declined", mock,
                              lambda h, w: prepare_home(h, w, trust=False))
    try:
        term.wait_for(lambda: term.contains("Yes, I trust this folder"), 20, "trust dialog")
        term.drain(quiet=0.3)
        term.send("\r")
        term.wait_for(lambda: term.exited, 10, "exit after 'No, exit'")
        status, signal = term.exit_status()
        cap.snap(term, "trust_declined", "trust_declined_exit", "exited", None,
                 f"exit status {status}, signal {signal}")
    finally:
        term.close()
        cap.save_raw(term, "trust_declined")


def session_apikey(binary: str, mock: MockServer, cap: Capture) -> None:
    """Custom-API-key dialog (trusted folder, key not approved); accept with Up + Enter."""
    term, home, _work = spawn(binary, "apikey", mock,
                              lambda h, w: prepare_home(h, w, approve_key=False))
    try:
        term.wait_for(lambda: term.contains("Do you want to use this API key?"), 20,
                      "API key dialog")
        term.drain(quiet=0.3)
        cap.snap(term, "apikey", "apikey_dialog", "blocked", home,
                 "preselected: No (recommended). Enter/Esc reject the key (claude then "
                 "starts but every prompt fails with 'Not logged in'); Up then Enter "
                 "approves")
        term.select("  ❯ Yes", "\x1b[A")
        cap.snap(term, "apikey", "apikey_dialog_yes_selected", "blocked", home)
        term.press_until_gone("\r", "Do you want to use this API key?")
        term.wait_for(term.is_idle, 20, "idle after approving")
        term.drain(quiet=0.3)
        cap.snap(term, "apikey", "apikey_accepted_idle", "idle", home)
    finally:
        term.close()
        cap.save_raw(term, "apikey")


def session_main(binary: str, mock: MockServer, cap: Capture) -> None:
    """Idle, working (delay), midstream (middelay) and the Write permission dialog."""
    term, home, work = spawn(binary, "main", mock, lambda h, w: prepare_home(h, w))
    s = "main"
    try:
        term.wait_for(term.is_idle, 20, "idle prompt")
        term.drain(quiet=0.3)
        cap.snap(term, s, "idle_start", "idle", home)

        term.submit("say hi")
        term.wait_for(lambda: term.contains("● MOCK-REPLY: say hi"), 15, "short reply")
        term.wait_for(term.is_idle, 15, "idle after reply")
        term.drain(quiet=0.3)
        cap.snap(term, s, "idle_after_reply", "idle", home)

        enter = term.submit("take your time [delay=3]")
        term.wait_for(term.is_working, 3, "working footer")
        term.wait_for(lambda: time.monotonic() - enter >= 1.0, 3, "1 s into the turn")
        cap.snap(term, s, "working_delay", "working", home, "~1 s into a 3 s wait")
        term.wait_for(lambda: term.contains("● MOCK-REPLY: take your time"), 15, "reply")
        term.wait_for(term.is_idle, 15, "idle")

        n = len(mock.events)
        term.submit("stream half of this reply, then stall a while [middelay=3]")
        term.wait_for(lambda: "middelay-start" in [e[1] for e in mock.events[n:]], 10,
                      "mock stalls mid-reply")
        stall = next(t for t, e in mock.events[n:] if e == "middelay-start")
        term.wait_for(lambda: time.monotonic() - stall >= 1.0, 3, "1 s into the stall")
        cap.snap(term, s, "working_midstream", "working", home,
                 "half a one-line reply streamed, then 3 s of pings: only the spinner "
                 "and the footer show it is working")
        term.wait_for(lambda: term.contains("● MOCK-REPLY: stream half"), 15, "rest")
        term.wait_for(term.is_idle, 15, "idle")

        # A multi-line prompt (bracketed paste) makes the first half of the reply hold
        # complete lines, which claude renders during the stall.
        n = len(mock.events)
        lines = [f"line {w} of a pasted prompt" for w in ("one", "two", "three", "four")]
        term.send("\x1b[200~" + "\n".join(lines) + " [middelay=3]\x1b[201~")
        term.wait_for(lambda: term.contains("[Pasted text #1"), 5, "paste in the box")
        term.send("\r")
        term.wait_for(lambda: "middelay-start" in [e[1] for e in mock.events[n:]], 10,
                      "mock stalls mid-reply")
        stall = next(t for t, e in mock.events[n:] if e == "middelay-start")
        term.wait_for(lambda: time.monotonic() - stall >= 1.0, 3, "1 s into the stall")
        cap.snap(term, s, "working_midstream_lines", "working", home,
                 "reply lines already on screen while the stream is stalled")
        term.wait_for(lambda: term.contains("line four of a pasted prompt [middelay=3]")
                      and term.is_idle(), 15, "idle after the multi-line reply")

        target = work / "written.txt"
        term.submit("create a file [write=written.txt]")
        term.wait_for(lambda: term.contains("Do you want to create written.txt?")
                      and term.contains("Esc to cancel"), 15, "Write permission dialog")
        term.drain(quiet=0.3)
        cap.snap(term, s, "permission_write", "blocked", home)
        term.press_until_gone("1", "Do you want to create written.txt?")
        term.wait_for(lambda: term.contains("● MOCK-REPLY: tool result:") and term.is_idle(),
                      15, "tool-result reply")
        term.drain(quiet=0.3)
        cap.snap(term, s, "permission_write_after_1", "idle", home,
                 f"file written: {target.exists()}")
    finally:
        term.close()
        cap.save_raw(term, s)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    binary = find_claude()
    if binary is None:
        print("claude not found: run scripts/install-claude.sh or set STAFF_CLAUDE_BIN",
              file=sys.stderr)
        return 2
    shutil.rmtree(BASE, ignore_errors=True)
    args.out.mkdir(parents=True, exist_ok=True)
    for old in [*args.out.glob("*.raw"), *args.out.glob("*.txt")]:
        old.unlink()
    cap = Capture(args.out)
    mock, _port = start_mock(log_path=args.out / "mock_requests.jsonl.tmp")
    try:
        for session in (session_trust, session_trust_declined, session_apikey, session_main):
            print(session.__name__, flush=True)
            session(binary, mock, cap)
    finally:
        mock.stop()
        cap.write_index()
        (args.out / "mock_requests.jsonl.tmp").unlink(missing_ok=True)
    requests = sorted({f"{r['method']} {r['path']} ({r['kind']})" for r in mock.records})
    print("requests seen by the mock:", *requests, sep="\n  ")
    return 0


if __name__ == "__main__":
    sys.exit(main())
