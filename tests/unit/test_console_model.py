"""The console's model (arrangement, focus, splits) and its terminal pane control, without a
daemon: the view's pieces on their own."""

from __future__ import annotations

from prompt_toolkit.key_binding.key_processor import KeyPress
from prompt_toolkit.keys import Keys

from supervisor.client.console.model import Arrangement
from supervisor.client.console.termview import LocalScreen, TerminalControl, cell_style, key_data


def team(*names: str, state: str = "idle") -> Arrangement:
    m = Arrangement()
    m.set_team([{"agent_id": n, "status": state, "queue": 0} for n in names])
    return m


def test_focus_switch_and_numbers() -> None:
    m = team("a", "b", "c")
    assert m.focus == "a" and m.visible() == ["a"]
    m.step(1)
    assert m.focus == "b" and m.visible() == ["b"]
    m.step(-2)
    assert m.focus == "c"
    assert m.select_index(1) and m.focus == "a"
    assert not m.select_index(9)


def test_split_zoom_unsplit() -> None:
    m = team("a", "b", "c", "d", "e")
    assert m.split_add() == "b" and m.visible() == ["a", "b"]
    assert m.split_add() == "c" and m.split_add() == "d"
    assert m.split_add() is None  # at most four panes
    m.next_pane()
    assert m.focus == "b" and m.visible() == ["a", "b", "c", "d"]
    m.select("e")  # an agent not shown takes the focused pane's place
    assert m.visible() == ["a", "e", "c", "d"] and m.focus == "e"
    m.toggle_zoom()
    assert m.visible() == ["e"]
    m.toggle_zoom()
    assert len(m.visible()) == 4
    m.unsplit()
    assert m.visible() == ["e"] and not m.split


def test_team_updates_and_counts() -> None:
    m = team("a", "b")
    m.set_team([{"agent_id": "b", "status": "working", "queue": 2, "current_task": "T-1",
                 "current_task_title": "do it"}])
    assert list(m.agents) == ["b"] and m.focus == "b"
    assert m.agents["b"].queue == 2 and m.agents["b"].task_title == "do it"
    assert m.counts()["working"] == 1


def test_pane_renders_colours_wide_chars_and_cursor() -> None:
    local = LocalScreen()
    local.snapshot(5, 20, "\x1b[H\x1b[1;31mred\x1b[0m \x1b[38;2;1;2;3mrgb\x1b[0m 中x\x1b[2;4H")
    sizes: list[tuple[int, int]] = []
    control = TerminalControl(local, on_keys=lambda s: None, on_size=lambda r, c: sizes.append((r, c)))
    content = control.create_content(20, 5)
    assert sizes == [(5, 20)]
    row = content.get_line(0)
    assert row[0] == (cell_style(("red", "default", True, False, False, False, False, False)), "red")
    assert ("fg:#010203", "rgb") in row
    assert "".join(t for _s, t in row) == "red rgb 中x"  # the wide character once, no filler
    assert content.cursor_position.x == 3 and content.cursor_position.y == 1
    local.feed("\x1b[5;1Hbottom")
    assert "".join(t for _s, t in control.create_content(20, 5).get_line(4)) == "bottom"


def test_keys_become_terminal_bytes_in_the_agent_modes() -> None:
    local = LocalScreen()
    assert key_data(KeyPress(Keys.Up, "\x1b[A"), local) == "\x1b[A"
    assert key_data(KeyPress(Keys.BracketedPaste, "a\nb"), local) == "a\nb"
    local.feed("\x1b[?1h\x1b[?2004h")  # application cursor keys, bracketed paste
    assert key_data(KeyPress(Keys.Up, "\x1b[A"), local) == "\x1bOA"
    assert key_data(KeyPress(Keys.BracketedPaste, "a\nb"), local) == "\x1b[200~a\nb\x1b[201~"
    assert key_data(KeyPress(Keys.CPRResponse, "\x1b[1;1R"), local) == ""
    assert key_data(KeyPress(Keys.ControlM, "\r"), local) == "\r"


def test_the_sidebar_notes_say_the_limit_and_the_usage() -> None:
    m = Arrangement()
    usage = {"context_tokens": 48_213, "context_pct": 24.1, "cost_usd": 0.3141}
    m.set_team([
        {"agent_id": "cc", "status": "idle", "queue": 2, "detail": "limited until 11:15", "usage": usage},
        {"agent_id": "fresh", "status": "idle", "queue": 0, "usage": None},
    ])
    assert m.agents["cc"].notes == ["limited until 11:15", "48.2k 24% $0.31"]
    assert m.agents["fresh"].notes == []
