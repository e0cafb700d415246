"""The console (`staff console`) and `staff attach`, driven under a real pty, against a real
daemon and the fake team; what they draw is read through the project's emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import staff
from tests.helpers.console_term import Term

PREFIX = "\x02"  # C-b


def status(name: str) -> dict[str, object]:
    st = json.loads(staff("status", "--json", check=True).stdout)
    return next(a for a in st["agents"] if a["agent_id"] == name)


def screen(name: str) -> str:
    return staff("screen", name, check=True).stdout


@pytest.fixture
def console(fake_team: Path) -> Iterator[Term]:
    term = Term(["console"])
    try:
        yield term
    finally:
        term.close()


def test_console_team_switch_type_detach(console: Term) -> None:
    t = console
    # the sidebar lists the three fake agents, all idle; the first one is shown
    t.wait(lambda: t.sidebar() == {"planning": "idle", "coding": "idle", "testing": "idle"}, what="3 idle")
    t.wait(lambda: t.pane_title().startswith("planning") and "❯" in t.main(), what="planning's prompt")
    pids = {a: status(a)["pid"] for a in ("planning", "coding", "testing")}

    # a task submitted from another process: working, then idle again, in the sidebar
    tid = staff("submit", "coding", "from outside [delay=2]", check=True).stdout.strip()
    t.wait(lambda: t.sidebar().get("coding") == "working", what="coding working")
    t.wait(lambda: t.sidebar().get("coding") == "idle", what="coding idle again")
    assert json.loads(staff("wait", tid, "--json", check=True).stdout)["state"] == "done"

    # the prefix key switches: the main area now shows coding's screen with its answer
    t.send(PREFIX + "n")
    t.wait(lambda: t.pane_title().startswith("coding"), what="coding focused")
    t.wait(lambda: "FAKE-REPLY(coding#1): from outside" in t.main(), what="coding's answer in the pane")
    assert "FAKE-REPLY" not in screen("planning")

    # keys typed reach the focused agent (and only it), and the person holds it
    t.send("typed by a person")
    t.wait(lambda: "typed by a person" in t.main(), what="the echo in the pane")
    assert "typed by a person" in screen("coding")
    assert "typed by a person" not in screen("planning")
    assert status("coding")["status"] == "user"
    t.wait(lambda: t.sidebar().get("coding") == "user", what="coding shown as user")

    # switching away releases the hold; a number picks an agent
    t.send(PREFIX + "3")
    t.wait(lambda: t.pane_title().startswith("testing"), what="testing focused")
    t.wait(lambda: t.sidebar().get("coding") == "idle", what="coding released")

    # detach: the console exits, every agent keeps running (same processes)
    t.send(PREFIX + "d")
    assert t.wait_exit() == 0
    assert "keeps running" in "".join(t.output)
    for name, pid in pids.items():
        st = status(name)
        assert st["pid"] == pid and st["status"] in ("idle", "user"), st
    assert "typed by a person" in screen("coding")


def test_console_split_zoom_help_command(console: Term) -> None:
    t = console
    t.wait(lambda: len(t.sidebar()) == 3 and "❯" in t.main(), what="the team")
    t.send(PREFIX + "s")  # split: planning | coding
    t.wait(lambda: t.main().count("❯") == 2, what="two prompts side by side")
    first = t.lines()[0]
    assert "planning" in first and "coding" in first
    t.send(PREFIX + "s")  # three panes
    t.wait(lambda: t.main().count("❯") == 3, what="three prompts")
    t.send(PREFIX + "z")  # zoom the focused pane
    t.wait(lambda: t.main().count("❯") == 1, what="zoomed")
    t.send(PREFIX + "z")
    t.wait(lambda: t.main().count("❯") == 3, what="unzoomed")
    t.send(PREFIX + "u")
    t.wait(lambda: t.main().count("❯") == 1, what="unsplit")
    t.send(PREFIX + "?")
    t.wait(lambda: "next / previous agent" in t.text(), what="help")
    t.send("x")
    t.wait(lambda: "next / previous agent" not in t.text(), what="help closed")
    # the command line: ask an agent from inside the console
    t.send(PREFIX + ":")
    t.send("ask testing hello from the console\r")
    t.wait(
        lambda: "queued for testing" in t.lines()[-1] or "done (testing)" in t.lines()[-1],
        what="the task id in the status bar",
    )
    t.wait(lambda: "done (testing)" in t.lines()[-1], what="the answer in the status bar")
    assert "FAKE-REPLY(testing#1): hello from the console" in screen("testing")
    # scrollback view of the focused agent
    t.send(PREFIX + "[")
    t.wait(lambda: "scrollback: planning" in t.text(), what="the scrollback view")
    t.send("q")
    t.wait(lambda: "scrollback:" not in t.text(), what="back to the pane")
    t.send(PREFIX + "d")
    assert t.wait_exit() == 0


def test_interception_holds_tasks_until_the_person_leaves(console: Term) -> None:
    """A task queued while a person types in the agent waits; it is delivered after they
    leave, and the prompt the person ran is never taken for the task's answer."""
    t = console
    t.wait(lambda: t.sidebar().get("coding") == "idle", what="the team")
    t.send(PREFIX + "2")
    t.wait(lambda: t.pane_title().startswith("coding") and "❯" in t.main(), what="coding focused")
    t.send("my own question [delay=2]")
    t.wait(lambda: "my own question" in t.main(), what="the person's text")
    assert status("coding")["status"] == "user"
    tid = staff("submit", "coding", "the delegated task", check=True).stdout.strip()
    t.send("\r")  # the person's prompt runs: the agent works, for the person
    t.wait(lambda: "esc to interrupt" in t.main(), what="coding working on the person's prompt")
    st = status("coding")
    assert st["status"] == "user" and st["queue"] == 1 and st["current_task"] is None
    task = json.loads(staff("wait", tid, "--json", "--timeout", "0.5").stdout)
    assert task["state"] == "queued"
    t.wait(lambda: "FAKE-REPLY(coding#1): my own question" in t.main(), what="the person's answer")
    assert json.loads(staff("wait", tid, "--json", "--timeout", "0.5").stdout)["state"] == "queued"
    t.send(PREFIX + "1")  # the person leaves: the task goes now
    done = json.loads(staff("wait", tid, "--json", "--timeout", "30", check=True).stdout)
    assert done["state"] == "done" and done["agent"] == "coding"
    assert done["answer"] == "FAKE-REPLY(coding#2): the delegated task"
    t.send(PREFIX + "d")
    assert t.wait_exit() == 0


def test_attach_raw_passthrough_and_detach(fake_team: Path) -> None:
    t = Term(["attach", "planning"], rows=30, cols=100)
    try:
        t.wait(lambda: "❯" in t.text() and "manual mode on" in t.text(), what="planning's screen")
        # the agent follows the terminal's size: its rule is as wide as this terminal
        t.wait(lambda: any(line.startswith("─" * 100) for line in t.lines()), what="a 100-column rule")
        t.send("through attach")
        t.wait(lambda: "through attach" in t.text(), what="the echo")
        assert "through attach" in screen("planning")
        assert status("planning")["status"] == "user"
        t.send("\x1d")  # Ctrl-] detaches
        assert t.wait_exit() == 0
        assert "detached" in "".join(t.output)
    finally:
        t.close()
    st = status("planning")
    assert st["pid"] and st["status"] == "idle"  # the hold went with the connection
    assert "through attach" in screen("planning")


def test_ten_detaches_print_no_traceback(fake_team: Path) -> None:
    """Issue 20 item 1: every detach (`C-b d` and `:detach`) printed prompt_toolkit's
    "Application is not running" traceback: closing the event connection called detach()
    after the application had finished. 10 detaches, both ways: 0 tracebacks."""
    outputs = []
    for i in range(10):
        t = Term(["console"])
        try:
            t.wait(lambda t=t: len(t.sidebar()) == 3 and "❯" in t.main(), what="the team")
            t.send(PREFIX + "d" if i % 2 == 0 else PREFIX + ":detach\r")
            assert t.wait_exit() == 0
            outputs.append("".join(t.output))
        finally:
            t.close()
    assert all("staff: detached" in out for out in outputs)
    bad = [out for out in outputs if "Traceback" in out or "Exception" in out]
    assert not bad, bad[0][-2000:]


def test_first_screen_shows_the_keys(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 20 item 3: the default team's note ("fake agents") took the status bar's place
    and the key hint showed only after a first prefix command. Both show from the start."""
    monkeypatch.setenv("STAFF_FAKE", "1")
    t = Term(["console"])
    try:
        t.wait(lambda: len(t.sidebar()) == 3, what="the default team")
        t.wait(lambda: "bundled fake agents" in t.lines()[-1], what="the note")
        last = t.lines()[-1]
        assert "C-b n/p switch" in last and "d detach · ? help" in last, last
        t.send(PREFIX + "d")
        assert t.wait_exit() == 0
    finally:
        t.close()
        staff("down")


def test_inside_tmux_the_prefix_is_c_a(
    fake_team: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 20 item 10: inside tmux, C-b went to tmux, never to the console."""
    from tests.unit.test_console_prefix import fake_tmux

    fake_tmux(tmp_path, monkeypatch, "C-b")
    t = Term(["console"])
    try:
        t.wait(lambda: len(t.sidebar()) == 3 and "❯" in t.main(), what="the team")
        t.wait(lambda: "prefix C-a (C-b is tmux's)" in t.lines()[-1], what="the note")
        assert "C-a n/p switch" in t.lines()[-1]
        t.send("\x01d")
        assert t.wait_exit() == 0
    finally:
        t.close()


def test_staff_down_under_the_console_does_not_say_agents_keep_running(fake_team: Path) -> None:
    """Issue 20 item 9: after `staff down` the console said "every agent keeps running"."""
    t = Term(["console"])
    try:
        t.wait(lambda: len(t.sidebar()) == 3 and "❯" in t.main(), what="the team")
        staff("down", check=True)
        assert t.wait_exit() == 1
        out = "".join(t.output)
        assert "the daemon stopped, and every agent with it" in out and "keeps running" not in out, out[-500:]
    finally:
        t.close()


def test_ctrl_c_twice_says_how_to_bring_the_agent_back(console: Term) -> None:
    """Issue 20 item 5: Ctrl-C twice (the habit) quit the agent, exit 0 was not restarted,
    the pane suggested `claude --resume` for a `claude` that is not installed, and nothing
    said how to bring the agent back. Now the pane, the status bar and the inbox say it, and
    Enter in the pane starts it again with its conversation."""
    t = console
    t.wait(lambda: t.sidebar().get("planning") == "idle" and "❯" in t.main(), what="planning's prompt")
    before = status("planning")
    t.send("\x03")
    t.wait(lambda: "Press Ctrl-C again to exit" in t.main(), what="the fake's Ctrl-C hint")
    t.send("\x03")
    t.wait(lambda: t.sidebar().get("planning") == "exited", what="planning exited")
    t.wait(lambda: "Enter starts it again" in t.pane_title(), what="the hint in the pane's title")
    assert "claude --resume" not in t.main()
    assert "planning exited: Enter restarts it" in t.lines()[-1]
    t.wait(lambda: "inbox 1" in t.lines()[-1], what="the inbox item's count in the status bar")
    inbox = json.loads(staff("inbox", "--json", check=True).stdout)
    assert any("planning exited" in i["title"] and "staff spawn planning" in i["body"] for i in inbox)
    t.send("x")  # a key that is not Enter says how, and goes nowhere
    t.wait(lambda: "planning stopped: Enter restarts" in t.lines()[-1], what="the reminder")
    t.send("\r")
    # back, and still held by the person who is in its pane (`user`), like before the quit
    t.wait(lambda: t.sidebar().get("planning") in ("idle", "user") and "❯" in t.main(), what="planning back")
    after = status("planning")
    assert after["pid"] != before["pid"] and after["session_id"] == before["session_id"]
    t.send(PREFIX + "d")
    assert t.wait_exit() == 0


def test_a_200_line_reply_first_line_in_the_console_and_in_logs(console: Term) -> None:
    """Issue 20 item 4 (must show): the fake, like Claude Code 2.1.330, draws on the alternate
    screen, which has no scrollback: `C-b [`, PgUp and `staff logs` lost all but one screen.
    Now PgUp and the wheel in the pane scroll the program's own view (as in tmux), and
    `staff logs` / `C-b [` read the conversation from the transcript."""
    t = console
    first = "● FAKE-REPLY(planning#1): FIRST-OF-200"
    t.wait(lambda: t.sidebar().get("planning") == "idle" and "❯" in t.main(), what="planning's prompt")
    text = "\n".join(["FIRST-OF-200", *(f"reply line {i}" for i in range(2, 201))])
    staff("ask", "planning", "-", input=text, check=True)
    t.wait(lambda: "reply line 200" in t.main(), what="the reply's end in the pane")
    assert first not in t.main()
    # the wheel over the pane goes to the program, which scrolls its conversation
    t.send("\x1b[<64;60;10M" * 3)
    t.wait(lambda: "Jump to bottom (ctrl+End)" in t.main(), what="the program's own scrolled view")
    for _ in range(20):  # PgUp in the pane: half a screen a time, bounded
        if first in t.main():
            break
        top = t.lines()[2]
        t.send("\x1b[5~")
        t.wait(lambda top=top: t.lines()[2] != top, what="a page up")  # type: ignore[misc]
    assert first in t.main()
    # staff logs and the console's scrollback view read the whole conversation
    logs = staff("logs", "planning", check=True).stdout.splitlines()
    assert first in logs and "  reply line 200" in logs
    t.send("\x1b[1;5F")  # Ctrl+End: back to the bottom
    t.wait(lambda: first not in t.main(), what="the bottom again")
    t.send(PREFIX + "[")
    t.wait(lambda: "scrollback: planning" in t.text(), what="the scrollback view")
    t.send("/")
    t.send("FIRST-OF-200\r")
    t.wait(lambda: "FIRST-OF-200" in t.main(), what="the first line found in the scrollback view")
    t.send("q")
    t.send(PREFIX + "d")
    assert t.wait_exit() == 0


def test_echo_drawn_straight_then_a_frame_repaints_those_rows(console: Term) -> None:
    """The echo of a keystroke is drawn straight to the terminal (issue 20 item 5: latency),
    outside prompt_toolkit's frames; the cells it wrote must not be taken as unchanged by the
    next frame. A key typed in the console, then a Backspace sent from outside (drawn by a
    frame, not the echo path): the pane shows the box empty again."""
    t = console
    t.wait(lambda: t.sidebar().get("planning") == "idle" and "❯" in t.main(), what="planning's prompt")

    def box() -> str:
        return next((" ".join(ln.split()) for ln in t.main().splitlines() if ln.strip().startswith("❯")), "")

    t.send("q")
    t.wait(lambda: box() == "❯ q", what="the echo")
    staff("send", "planning", "BSpace", check=True)
    t.wait(lambda: box() == "❯", what="the box empty again in the pane")
    t.send("z")
    t.wait(lambda: box() == "❯ z", what="the next echo")
    assert "\ufffd" not in t.text()  # no character cut in two by the direct writes
    t.send(PREFIX + "d")
    assert t.wait_exit() == 0


def test_new_agent_kill_layout_kept_and_keys_from_the_team_file(fake_team: Path) -> None:
    """Issue 20: add an agent from the console (C-b c), kill a pane's agent (C-b x, Enter
    confirms), the layout kept across re-attach, the keys after the prefix set in staff.toml."""
    with fake_team.open("a") as f:
        f.write('\n[staff]\nconsole_keys = { split = "|" }\n')
    t = Term(["console"])
    try:
        t.wait(lambda: t.sidebar().get("planning") == "idle" and "❯" in t.main(), what="planning's prompt")
        t.send(PREFIX + "c")  # a new agent like the focused one, focused at once
        t.wait(lambda: t.sidebar().get("planning-2") == "idle", what="planning-2 in the sidebar")
        t.wait(lambda: t.pane_title().startswith("planning-2") and "❯" in t.main(), what="planning-2 shown")
        assert status("planning-2")["command"] == status("planning")["command"]
        t.send(PREFIX + "s")  # not a split any more: the team file gave split to |
        t.wait(lambda: "no such key" in t.lines()[-1], what="s unbound")
        t.send(PREFIX + "|")
        t.wait(lambda: t.main().count("❯") == 2, what="a split by the team file's key")
        t.send(PREFIX + "d")
        assert t.wait_exit() == 0
    finally:
        t.close()
    t = Term(["console"])  # re-attach: the split and the focus are back
    try:
        t.wait(lambda: t.main().count("❯") == 2 and len(t.sidebar()) == 4, what="the split kept")
        first = t.lines()[0]
        assert "planning-2" in first and "planning " in first, first
        t.send(PREFIX + "x")  # kill the focused pane's agent: the command is shown, Enter runs it
        t.wait(lambda: ":kill planning-2" in t.text(), what="the kill on the command line")
        t.send("\r")
        t.wait(lambda: t.sidebar().get("planning-2") == "exited", what="planning-2 killed")
        assert status("planning")["status"] in ("idle", "user")
        t.send(PREFIX + "d")
        assert t.wait_exit() == 0
    finally:
        t.close()
    staff("down", check=True)
    staff("up", "-c", str(fake_team), check=True)  # an agent added in the console stays in the team
    assert status("planning-2")["status"] in ("starting", "idle")
