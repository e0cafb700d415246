"""The screen model: alternate screen, scrollback, title, queries, wide characters."""

from __future__ import annotations

from supervisor.screen.emulator import Terminal


def test_alternate_screen_keeps_main_buffer() -> None:
    t = Terminal(20, 5)
    t.feed("main text\r\n")
    t.feed("\x1b[?1049h\x1b[Halt text")
    assert t.screen.alternate and t.lines()[0] == "alt text"
    t.feed("\x1b[?1049l")
    assert not t.screen.alternate and t.lines()[0] == "main text"


def test_scrollback_is_bounded_and_skips_alternate() -> None:
    t = Terminal(20, 3, scrollback=5)
    for i in range(10):
        t.feed(f"line {i}\r\n")
    assert t.history_text() == [f"line {i}" for i in range(3, 8)]
    t.feed("\x1b[?1049h")
    for i in range(10):
        t.feed(f"alt {i}\r\n")
    assert all(not h.startswith("alt") for h in t.history_text())


def test_title_and_queries() -> None:
    t = Terminal(20, 5)
    replies: list[str] = []
    t.reply = replies.append
    t.feed("\x1b]0;✳ Claude Code\x07\x1b[6n\x1b[c")
    assert t.title == "✳ Claude Code"
    assert replies == ["\x1b[1;1R", "\x1b[?62;22c"]


def test_prefixed_csi_dropped_even_when_split() -> None:
    t = Terminal(20, 5)
    t.feed("a\x1b[<")
    t.feed("u\x1b[>0")
    t.feed("qb")
    assert t.lines()[0] == "ab"


def test_a_query_with_a_question_mark_in_its_parameters_is_dropped() -> None:
    """Gemini CLI 0.61 asks ``ESC[>4;?m`` (modifyOtherKeys) first thing; pyte raised on it."""
    t = Terminal(20, 5)
    t.feed("a\x1b[>4;?mb")
    assert t.lines()[0] == "ab"


def test_a_private_sgr_is_ignored() -> None:
    """prompt_toolkit writes ``CSI ? … m``; pyte's SGR raised a TypeError on it."""
    t = Terminal(20, 5, backend="pyte")
    t.feed("a\x1b[?4mb\x1b[1mc")
    assert t.lines()[0] == "abc"


def test_wide_characters() -> None:
    t = Terminal(10, 2)
    t.feed("日本x")
    assert t.lines()[0] == "日本x"
    assert t.cursor == (5, 0)


def test_resize_and_generation() -> None:
    t = Terminal(20, 5)
    g = t.generation
    t.feed("x")
    assert t.generation > g
    t.resize(10, 30)
    assert (t.rows, t.cols) == (10, 30) and len(t.lines()) == 10
