"""The daemon's side of the console: exact snapshots, streams, sizes, holds, recordings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from supervisor.daemon.recording import Recorder
from supervisor.protocol import Client, ProtocolError, socket_path
from supervisor.screen.emulator import Screen, Terminal, available_backends
from supervisor.screen.snapshot import ansi_snapshot, partial_tail
from tests.conftest import fake_team_toml, staff
from tests.helpers.console_term import read_cast
from tests.helpers.events import Events

DATA = Path(__file__).parents[1] / "data" / "claude-2.1.330"


def _visible(s: Screen) -> list[tuple[Any, ...]]:
    """Every cell as a person sees it (a blank's foreground colour is invisible)."""
    out = []
    for y in range(s.lines):
        for x in range(s.columns):
            c = s.buffer[y][x]
            if c.data in (" ", ""):
                out.append((c.data, c.bg, c.reverse, c.underscore))
            else:
                out.append((c.data, c.fg, c.bg, c.bold, c.italics, c.underscore, c.reverse))
    return out


@pytest.mark.parametrize("backend", available_backends())
def test_snapshot_repaints_real_claude_screens_exactly(backend: str) -> None:
    """Every capture point of the real Claude session: the snapshot, fed to a fresh
    emulator, gives the same text and cursor (and, from pyte, the same cells) as the bytes."""
    raw = (DATA / "full_session.raw").read_bytes()
    for name, offset in json.loads((DATA / "index.json").read_text()).items():
        term = Terminal(120, 40, backend=backend)
        term.feed(raw[:offset])
        direct = Screen(120, 40)
        direct.feed(raw[:offset].decode("utf-8", "replace"))
        again = Screen(120, 40)
        again.feed(ansi_snapshot(term))
        assert again.text_lines() == direct.text_lines(), name
        assert (again.cursor.x, again.cursor.y) == (direct.cursor.x, direct.cursor.y), name
        assert again.bracketed_paste == direct.bracketed_paste, name
        assert again.alternate == direct.alternate, name
        if backend == "pyte":
            assert _visible(again) == _visible(direct), name


def test_snapshot_modes_wide_chars_and_a_split_sequence() -> None:
    term = Terminal(30, 6, backend="pyte")
    chunk1 = (
        "\x1b]0;my title\x07\x1b[?2004h\x1b[?1h\x1b[31;1mred\x1b[0m 中文 "
        "\x1b[48;5;22mbg\x1b[0m\x1b[4;3H\x1b[3"
    )
    term.feed(chunk1)
    tail = partial_tail(chunk1)
    assert tail == "\x1b[3"
    snap = ansi_snapshot(term, tail)
    s = Screen(30, 6)
    s.feed(snap + "2mgreen")  # the raw output after the snapshot completes the sequence
    assert s.line_text(0) == "red 中文 bg"
    assert s.line_text(3) == "  green"
    assert s.buffer[3][2].fg == "green"
    assert s.buffer[0][0].fg == "red" and s.buffer[0][0].bold
    assert s.buffer[0][4].data == "中" and s.buffer[0][5].data == ""
    assert s.bracketed_paste and (1 << 5) in s.mode
    assert s.title == "my title"


@pytest.fixture
def daemon(home: Path, tmp_path: Path) -> Iterator[Path]:
    cfg = tmp_path / "staff.toml"
    cfg.write_text("[staff]\nhold_grace = 30\nrecording_max_bytes = 200000\n\n" + fake_team_toml(("a", "b")))
    staff("up", "-c", str(cfg), check=True)
    try:
        wait_idle(home, {"a", "b"})
        yield home
    finally:
        staff("down")


def wait_idle(home: Path, names: set[str]) -> None:
    """Until every named agent is idle, read from the daemon's event stream."""
    with Client(socket_path(home), timeout=30) as c:
        states: dict[str, str] = {}
        for frame in c.stream("subscribe"):
            ev = frame["event"]
            if ev["type"] == "hello":
                states = {a["agent_id"]: a["status"] for a in ev["agents"]}
            elif ev["type"] == "state":
                states[ev["agent"]] = ev["new"]
            if all(states.get(n) == "idle" for n in names):
                return


def test_stream_snapshot_then_raw_output(daemon: Path) -> None:
    with Client(socket_path(daemon), timeout=30) as c, Client(socket_path(daemon), timeout=30) as ctl:
        frames = c.stream("stream", agent="a")
        snap = next(frames)["event"]
        assert snap["type"] == "snapshot" and snap["state"] == "idle"
        local = Screen(snap["cols"], snap["rows"])
        local.feed(snap["data"])
        assert "\n".join(local.text_lines()).rstrip() == staff("screen", "a", check=True).stdout.rstrip()
        tid = ctl.call("submit", to="a", text="streamed [delay=0.3]")["id"]
        while "FAKE-REPLY(a#1): streamed" not in "\n".join(local.text_lines()):
            ev = next(frames)["event"]
            assert ev["type"] in ("output", "snapshot")
            if ev["type"] == "output":
                local.feed(ev["data"])
        assert ctl.call("wait", task=tid, timeout=30)["state"] == "done"
        # the rest of the frame follows: the stream converges on the daemon's screen
        # (a missing or misplaced byte would leave them different and the read would time out)
        while local.text_lines() != ctl.call("screen", agent="a")["lines"]:
            ev = next(frames)["event"]
            if ev["type"] == "output":
                local.feed(ev["data"])
        with pytest.raises(ProtocolError, match="unknown agent"):
            ctl.call("stream", agent="nobody")


def test_smallest_viewer_wins_and_leaves_with_its_connection(daemon: Path) -> None:
    sock = socket_path(daemon)
    with Client(sock) as one, Client(sock, timeout=30) as watcher:
        assert one.call("resize", agent="a", rows=30, cols=100, viewer="v1")["cols"] == 100
        frames = watcher.stream("stream", agent="a")
        assert next(frames)["event"]["cols"] == 100
        with Client(sock) as two:
            got = two.call("resize", agent="a", rows=35, cols=80, viewer="v2")
            assert (got["rows"], got["cols"]) == (30, 80)  # the smallest of each
            with pytest.raises(ProtocolError, match="out of range"):
                two.call("resize", agent="a", rows=1, cols=80, viewer="v2")
        # viewer two's connection closed: its size is forgotten, and the watcher gets a
        # snapshot at the new size
        while True:
            ev = next(frames)["event"]
            if ev["type"] == "snapshot" and ev["cols"] == 100:
                break
        assert ev["rows"] == 30
        got = one.call("resize", agent="a", rows=0, cols=0, viewer="v1")  # no longer shown
        assert (got["rows"], got["cols"]) == (30, 100)  # nobody looks: the last size stays
    assert any(line.startswith("─" * 100) for line in staff("screen", "a", check=True).stdout.splitlines())


def test_hold_lapses_after_the_idle_grace(daemon: Path) -> None:
    events = Events(daemon)
    try:
        with Client(socket_path(daemon)) as c:
            # a key typed and rubbed out: a hold, but no draft left in the box (a draft would
            # keep the task waiting past the grace: tests/daemon/test_drafts.py)
            assert c.call("input", agent="a", keys="x\x7f", grace=0.5)["state"] == "user"
            tid = c.call("submit", to="a", text="after the grace")["id"]
            assert c.call("task", task=tid)["state"] == "queued"
            # nobody types again: the grace passes, the hold lapses, the task is delivered
            events.wait(lambda e: e.get("type") == "state" and e.get("agent") == "a" and e["old"] == "user")
            done = c.call("wait", task=tid, timeout=30)
            assert done["state"] == "done", done
            assert c.call("hold", agent="a", on=True, grace=0)["held"] is True  # grace 0: until released
            assert c.call("hold", agent="a", on=False)["held"] is False
    finally:
        events.close()


def test_a_person_prompt_never_completes_a_delegated_task(daemon: Path) -> None:
    """The task is running; the person takes over, interrupts it and runs a prompt of their
    own. The task ends where its turn ended; the person's answer is never its answer."""
    events = Events(daemon)
    try:
        with Client(socket_path(daemon), timeout=60) as c:
            tid = c.call("submit", to="a", text="delegated work [delay=5]")["id"]
            events.wait(lambda e: e.get("type") == "task" and e["task"]["id"] == tid
                        and e["task"]["state"] == "working")
            c.call("input", agent="a", keys="\x1b")  # the person interrupts it
            events.wait(lambda e: e.get("type") == "task" and e["task"]["id"] == tid
                        and e["task"]["state"] in ("done", "failed", "cancelled"))
            c.call("input", agent="a", keys="the person's own prompt [delay=1]")
            c.call("input", agent="a", keys="\r")
            c.call("hold", agent="a", on=False)  # the person leaves while their prompt runs
            task = c.call("wait", task=tid, timeout=30)
            assert "person's own prompt" not in (task["answer"] or "")
            assert "FAKE-REPLY(a#2)" not in (task["answer"] or "")
            assert task["answer_source"] != "" and "delegated work" not in (task["error"] or "")
            # the next task waits for the person's turn to end and gets its own answer
            t2 = c.call("submit", to="a", text="next one")["id"]
            got = c.call("wait", task=t2, timeout=30)
            assert got["answer"] == "FAKE-REPLY(a#3): next one", got
    finally:
        events.close()


def test_recordings_are_asciicast_and_replay_the_screen(daemon: Path) -> None:
    with Client(socket_path(daemon), timeout=60) as c:
        tid = c.call("submit", to="b", text="for the record")["id"]
        assert c.call("wait", task=tid, timeout=30)["state"] == "done"
        lines = c.call("screen", agent="b")["lines"]
    header, events = read_cast(daemon / "recordings" / "b.cast")
    assert header["version"] == 2 and header["width"] == 120 and header["height"] == 40
    assert all(isinstance(e[0], float) and e[1] in ("o", "r", "m") for e in events)
    term = Terminal(120, 40)
    for _t, kind, data in events:
        if kind == "o":
            term.feed(data)  # type: ignore[arg-type]
    assert term.lines() == lines
    assert (daemon / "recordings" / "b.cast").stat().st_mode & 0o077 == 0


def test_recorder_rotates_and_stays_bounded(tmp_path: Path) -> None:
    rec = Recorder(tmp_path, "x", max_bytes=2000, keep=2)
    rec.open(10, 40, "\x1b[Hstart")
    for i in range(200):
        rec.event("o", f"line {i:04d} " + "z" * 40 + "\r\n")
        if rec.full:
            rec.open(10, 40, f"\x1b[Hsnapshot {i}")
    rec.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["x.1.cast", "x.2.cast", "x.cast"]
    for p in tmp_path.iterdir():
        assert p.stat().st_size < 2000 + 200
        header, events = read_cast(p)
        assert header["version"] == 2
        assert str(events[0][2]).startswith("\x1b[Hsnapshot")  # each file replays on its own


def test_a_flood_costs_a_slow_viewer_one_snapshot(daemon: Path) -> None:
    """A viewer that does not read while an agent floods gets a fresh snapshot, not megabytes."""
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(str(socket_path(daemon)))
    sock.sendall(b'{"id":1,"cmd":"stream","agent":"a"}\n')
    with Client(socket_path(daemon), timeout=60) as c:
        tid = c.call("submit", to="a", text="flood [flood=3000]")["id"]
        assert c.call("wait", task=tid, timeout=60)["state"] == "done"
    sock.settimeout(10)
    got = b""
    kinds = []
    while True:
        try:
            chunk = sock.recv(1 << 20)
        except TimeoutError:
            break
        if not chunk:
            break
        got += chunk
        *whole, got = got.split(b"\n")
        kinds += [json.loads(x)["event"]["type"] for x in whole if x]
        if kinds.count("snapshot") >= 2 and len(kinds) > 2:
            break
    sock.close()
    assert kinds[0] == "snapshot" and kinds.count("snapshot") >= 2, kinds[:20]
