"""Golden tests for the agents other than Claude Code: every capture of every program
(tests/data/<program>-<version>, made by scripts/capture_agent_screens.py from the real,
pinned program) replayed through every emulator backend gives the state it was in."""

from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest

from supervisor.detect.rules import View, load_profile
from supervisor.screen.emulator import Terminal, available_backends

DATA = Path(__file__).parents[1] / "data"
PROGRAMS = {"codex": "0.171.0", "aider": "0.86.2", "opencode": "1.18.33", "gemini": "0.61.0"}
BACKENDS = available_backends()


def _index(program: str) -> dict[str, dict[str, object]]:
    folder = DATA / f"{program}-{PROGRAMS[program]}"
    data: dict[str, dict[str, object]] = json.loads((folder / "index.json").read_text())
    return data


def _raw(program: str, meta: dict[str, object]) -> bytes:
    return (DATA / f"{program}-{PROGRAMS[program]}" / str(meta["raw"])).read_bytes()


def _replay(raw: bytes, upto: int, backend: str, chunk: int = 4096) -> Terminal:
    term = Terminal(120, 40, backend=backend)
    dec = codecs.getincrementaldecoder("utf-8")("replace")
    for i in range(0, upto, chunk):
        part = raw[i : min(i + chunk, upto)]
        if term.feed_output(part, dec.decode(part)):  # as the daemon's read path hands it over
            while term.drain():
                pass
    return term


CASES = [
    (program, name, backend)
    for program in PROGRAMS
    for name, meta in sorted(_index(program).items())
    if meta["expected"] not in ("turn", "exited")
    for backend in BACKENDS
]


@pytest.mark.parametrize(("program", "name", "backend"), CASES)
def test_capture_state(program: str, name: str, backend: str) -> None:
    meta = _index(program)[name]
    term = _replay(_raw(program, meta), int(str(meta["offset"])), backend, chunk=777)
    det = load_profile(program).detect(View(term.lines(), term.title, term.modes))
    assert det.state == meta["expected"], det.explain()


@pytest.mark.parametrize("program", sorted(PROGRAMS))
def test_profile_names_its_version(program: str) -> None:
    """The profile says which release its rules were written from (`staff doctor` compares it)."""
    assert load_profile(program).version == PROGRAMS[program]


@pytest.mark.parametrize(
    ("program", "name"),
    [(p, n) for p in PROGRAMS for n, m in sorted(_index(p).items()) if m["expected"] == "turn"],
)
def test_no_false_idle_while_a_turn_runs(program: str, name: str) -> None:
    """From the first frame after the Enter that a rule reads busy until the reply's last line is
    on screen, no frame reads idle (a 3 s wait before the reply, or a 3 s pause mid-way)."""
    meta = _index(program)[name]
    raw, start, reply = _raw(program, meta), int(str(meta["offset"])), str(meta["reply"])
    profile = load_profile(program)
    term = Terminal(120, 40, backend="pyte")
    dec = codecs.getincrementaldecoder("utf-8")("replace")
    term.feed(dec.decode(raw[:start]))
    states: list[str] = []
    for i in range(start, len(raw), 16):
        term.feed(dec.decode(raw[i : i + 16]))
        lines = term.lines()
        if any(reply in line for line in lines):
            break
        det = profile.detect(View(lines, term.title, term.modes))
        # The box still shows the text until the program redraws; a half-drawn frame (the
        # fallback, debounced in the agent) is not yet the turn: Aider clears and redraws
        # its prompt line as it takes it; Gemini empties its box before its title turns.
        if states or (det.state != "idle" and det.rule != "fallback"):
            states.append(det.state)
    else:
        pytest.fail(f"the reply {reply!r} never showed")
    assert states and "idle" not in states, states
