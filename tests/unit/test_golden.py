"""Golden tests: the real Claude Code 2.1.330 captures, replayed through our emulator and rules."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest

from supervisor.detect.rules import View, load_profile
from supervisor.screen.emulator import Terminal

DATA = Path(__file__).parents[1] / "data" / "claude-2.1.330"
RAW = (DATA / "full_session.raw").read_bytes()
INDEX: dict[str, int] = json.loads((DATA / "index.json").read_text())

EXPECTED = {
    "a_idle": "idle",
    "c_done": "idle",
    "d_permission_bash_after_1": "idle",
    "d_permission_write_after_esc": "idle",
    "e_esc_while_working": "idle",
    "e_ctrlc_while_working": "idle",
    "e_esc_midstream": "idle",
    "g_ctrlg_after_editor": "idle",
    "e_ctrlc_idle_once": "idle",
    "b_working": "working",
    "e_midstream_working": "working",
    "d_permission_bash": "blocked",
    "d_permission_write": "blocked",
    # The external editor owns the terminal (blank screen): not idle, no rule claims it.
    "g_ctrlg_during_editor": "working",
}
BLINKING = {"e_midstream_working"}  # the spinner glyph differs between capture and replay


def replay(upto: int, chunk: int | None = None) -> Terminal:
    term = Terminal(120, 40)
    dec = codecs.getincrementaldecoder("utf-8")("replace")
    data = RAW[:upto]
    step = chunk or len(data) or 1
    for i in range(0, len(data), step):
        term.feed(dec.decode(data[i : i + step]))
    return term


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_capture_state(name: str) -> None:
    term = replay(INDEX[name])
    det = load_profile("claude").detect(View(term.lines(), term.title))
    assert det.state == EXPECTED[name], det.explain()
    # the fake profile must read the real screens the same way
    assert load_profile("fake").detect(View(term.lines(), term.title)).state == EXPECTED[name]


@pytest.mark.parametrize("name", sorted(set(INDEX) - BLINKING - {"e_ctrlc_idle_twice_exit"}))
def test_capture_renders_like_reference(name: str) -> None:
    """Our emulator draws each capture as the reference rendering does."""
    want = (DATA / f"{name}.txt").read_text().rstrip("\n").split("\n")
    got = "\n".join(line.rstrip() for line in replay(INDEX[name]).lines()).rstrip("\n").split("\n")
    assert got == [w.rstrip() for w in want]


def test_split_chunks_render_the_same() -> None:
    """Escape sequences and UTF-8 split across reads must not change the screen."""
    whole = replay(INDEX["d_permission_bash"]).lines()
    for chunk in (1, 7, 64):
        assert replay(INDEX["d_permission_bash"], chunk).lines() == whole


def test_kitty_query_is_not_drawn() -> None:
    """pyte alone draws the `u` of ESC[<u; our filter removes the sequence."""
    term = replay(INDEX["a_idle"])
    assert not any(line.strip() == "u" for line in term.lines())
    assert term.screen.alternate and term.screen.bracketed_paste


def test_exit_leaves_alternate_screen() -> None:
    term = replay(INDEX["e_ctrlc_idle_twice_exit"])
    assert not term.screen.alternate
    assert any("claude --resume" in line for line in term.lines())


def test_no_false_idle_while_a_turn_runs() -> None:
    """Every prefix between the submit and the answer's end reads as working, never idle.

    From b_working (turn running) up to the first frame whose screen holds the answer's
    `✻ Worked for` line, each screen state in between must be working.
    """
    profile = load_profile("claude")
    term = Terminal(120, 40)
    dec = codecs.getincrementaldecoder("utf-8")("replace")
    term.feed(dec.decode(RAW[: INDEX["b_working"]]))
    states = []
    for i in range(INDEX["b_working"], INDEX["c_done"], 16):
        term.feed(dec.decode(RAW[i : i + 16]))
        lines = term.lines()
        if any("Worked for" in line for line in lines):
            break
        states.append(profile.detect(View(lines, term.title)).state)
    assert states and set(states) == {"working"}


EXTRA = Path(__file__).parents[1] / "data" / "claude-2.1.330-extra"
EXTRA_INDEX: dict[str, dict[str, object]] = json.loads((EXTRA / "index.json").read_text())


@pytest.mark.parametrize("name", sorted(n for n, v in EXTRA_INDEX.items() if v["expected"] != "exited"))
def test_extra_capture_state(name: str) -> None:
    """First-run dialogs (trust, API key), streaming, Write permission: the same rules hold."""
    meta = EXTRA_INDEX[name]
    raw = (EXTRA / str(meta["raw"])).read_bytes()[: int(str(meta["offset"]))]
    term = Terminal(120, 40)
    term.feed(codecs.getincrementaldecoder("utf-8")("replace").decode(raw))
    det = load_profile("claude").detect(View(term.lines(), term.title))
    assert det.state == meta["expected"], det.explain()
