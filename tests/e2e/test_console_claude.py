"""The real Claude Code (npm, against the mock API) shown in a console pane renders as the
same bytes do on the emulator directly: the bytes are the daemon's recording of the agent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.screen.emulator import Terminal
from tests.conftest import staff
from tests.helpers.claude_team import claude_daemon, require_claude
from tests.helpers.console_term import SIDEBAR, Term, read_cast

pytestmark = pytest.mark.claude
CLAUDE = require_claude()


@pytest.fixture
def claude_home(home: Path, tmp_path: Path) -> Iterator[Path]:
    with claude_daemon(tmp_path, CLAUDE):
        yield home


def replayed(home: Path) -> list[str]:
    """The agent's recorded bytes fed straight to the emulator (resizes included)."""
    header, events = read_cast(home / "recordings" / "cc.cast")
    term = Terminal(int(header["width"]), int(header["height"]))  # type: ignore[call-overload]
    for _t, kind, data in events:
        if kind == "o":
            term.feed(str(data))
        elif kind == "r":
            cols, rows = str(data).split("x")
            term.resize(int(rows), int(cols))
    return term.lines()


def pane(t: Term, rows: int) -> list[str]:
    return [line[SIDEBAR + 1 :].rstrip() for line in t.lines()[1 : 1 + rows]]


def test_real_claude_in_a_pane_renders_like_the_emulator(claude_home: Path) -> None:
    t = Term(["console", "cc"], rows=40, cols=140)
    try:
        t.wait(lambda: t.sidebar().get("cc") == "idle", timeout=60, what="cc idle")
        t.wait(lambda: "? for shortcuts" in t.main() or "shift+tab" in t.main(), timeout=60,
               what="Claude's footer in the pane")

        def same() -> bool:
            want = [line.rstrip() for line in replayed(claude_home)]
            return len(want) == 38 and pane(t, len(want)) == want

        t.wait(same, timeout=30, what="the pane equal to the replayed bytes")
        shown = "\n".join(pane(t, 38))
        assert "❯" in shown and "─" * 100 in shown  # the prompt between full-width rules

        r = staff("ask", "cc", "hello from the console test [delay=1]", "--json", timeout=120)
        assert r.returncode == 0, r.stderr
        t.wait(lambda: "MOCK-REPLY: hello from the console test" in t.main(), timeout=30, what="the reply")
        t.wait(same, timeout=30, what="the pane equal to the replayed bytes after a turn")
        assert "●" in "\n".join(pane(t, 38))
        t.send("\x02d")
        assert t.wait_exit() == 0
    finally:
        t.close()
