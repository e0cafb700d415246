"""Every emulator backend reads the real Claude captures the same way (screens, title, modes,
detection), and answers only the queries the daemon always answered."""

from __future__ import annotations

import codecs
import importlib.metadata
import json
import sys
import tomllib
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor.detect.rules import View, load_profile
from supervisor.screen.emulator import (
    GHOSTTY_VERSIONS,
    Terminal,
    available_backends,
    default_backend,
    ghostty_problem,
)

DATA = Path(__file__).parents[1] / "data" / "claude-2.1.330"
RAW = (DATA / "full_session.raw").read_bytes()
INDEX: dict[str, int] = json.loads((DATA / "index.json").read_text())
BACKENDS = available_backends()


def replay(backend: str, upto: int, chunk: int = 4096) -> Terminal:
    term = Terminal(120, 40, backend=backend)
    dec = codecs.getincrementaldecoder("utf-8")("replace")
    for i in range(0, upto, chunk):
        part = RAW[i : min(i + chunk, upto)]
        # bytes and text together, as the daemon's read path (ptyproc) hands them over
        if term.feed_output(part, dec.decode(part)):
            while term.drain():
                pass
    return term


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", sorted(set(INDEX) - {"e_midstream_working", "e_ctrlc_idle_twice_exit"}))
def test_backend_renders_capture_like_reference(backend: str, name: str) -> None:
    want = (DATA / f"{name}.txt").read_text().rstrip("\n").split("\n")
    got = "\n".join(line.rstrip() for line in replay(backend, INDEX[name]).lines()).rstrip("\n").split("\n")
    assert got == [w.rstrip() for w in want]


@pytest.mark.parametrize("name", sorted(INDEX))
def test_backends_agree(name: str) -> None:
    profile = load_profile("claude")
    seen = {}
    for backend in BACKENDS:
        t = replay(backend, INDEX[name], chunk=777)
        seen[backend] = (
            t.lines(),
            t.title,
            t.screen.alternate,
            t.screen.bracketed_paste,
            profile.detect(View(t.lines(), t.title)).state,
        )
    assert len({repr(v) for v in seen.values()}) == 1, seen.keys()


@pytest.mark.parametrize("backend", BACKENDS)
def test_only_plain_vt220_answers(backend: str) -> None:
    t = Terminal(20, 5, backend=backend)
    replies: list[str] = []
    t.reply = replies.append
    # cursor position, device attributes, then XTVERSION, kitty keyboard, DA2: unanswered
    t.feed(b"ab\x1b[6n\x1b[c\x1b[>0q\x1b[?u\x1b[>c")
    assert replies == ["\x1b[1;3R", "\x1b[?62;22c"]
    assert t.lines()[0] == "ab"


def test_default_backend_is_the_fastest_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STAFF_EMULATOR", raising=False)
    assert default_backend() == BACKENDS[0]
    monkeypatch.setenv("STAFF_EMULATOR", "pyte")
    assert default_backend() == "pyte" and Terminal().backend == "pyte"


# -- the fallback to pyte (issue 20: a lean install) ---------------------------------------------
@pytest.fixture
def fresh_probe() -> Iterator[None]:
    """`ghostty_problem` is checked once per process: forget it before and after the test."""
    ghostty_problem.cache_clear()
    yield
    ghostty_problem.cache_clear()


@pytest.mark.parametrize(
    ("module", "version", "why"),
    [
        (None, None, "pip install 'agentstaff[fast]'"),  # no wheel here: not installed
        (types.ModuleType("pyghostty"), None, "does not work here"),  # another API under the same name
        ("real", "0.2.0", "not a supported version"),  # installed beside the pin
    ],
)
def test_without_a_usable_libghostty_pyte_runs(
    fresh_probe: None, monkeypatch: pytest.MonkeyPatch, module: Any, version: str | None, why: str
) -> None:
    if module != "real":
        monkeypatch.setitem(sys.modules, "pyghostty", module)
    if version is not None:
        monkeypatch.setattr(importlib.metadata, "version", lambda name: version)
    monkeypatch.delenv("STAFF_EMULATOR", raising=False)
    problem = ghostty_problem()
    assert problem is not None and why in problem, problem
    assert available_backends() == ["pyte"]
    term = Terminal(20, 3)
    term.feed(b"hello\r\nworld")
    assert term.backend == "pyte" and term.lines()[:2] == ["hello", "world"]


def test_the_fast_extra_pins_the_minor_the_code_uses() -> None:
    """pyghostty is not a plain dependency (its missing wheel would fail the install on musl)
    and the `fast` extra allows exactly the versions GhosttyScreen is written against."""
    meta = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())["project"]
    assert not [d for d in meta["dependencies"] if d.startswith("pyghostty")]
    (fast,) = meta["optional-dependencies"]["fast"]
    low, high = GHOSTTY_VERSIONS
    spec = ".".join(map(str, low)), ".".join(map(str, high))
    assert fast.split(";")[0].strip() == f"pyghostty>={spec[0]},<{spec[1]}"
