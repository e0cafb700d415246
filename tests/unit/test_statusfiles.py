"""Status files are written off the loop, newest content wins, urgent ones at once."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from supervisor.team.statusfiles import StatusWriter
from supervisor.team.supervisor import write_json_atomic


def read(p: Path) -> dict[str, Any]:
    return dict(json.loads(p.read_text()))


def test_urgent_is_written_before_returning_and_duplicates_are_skipped(tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []

    def write(path: Path, data: dict[str, Any]) -> None:
        calls.append(data)
        write_json_atomic(path, data)

    w = StatusWriter(write)
    p = tmp_path / "a.json"
    assert w.write(p, {"status": "idle", "last_active": "1"}, urgent=True)
    assert read(p)["status"] == "idle"
    # only the timestamp changed: nothing to write
    assert not w.write(p, {"status": "idle", "last_active": "2"}, urgent=True)
    assert len(calls) == 1
    w.close()


def test_background_writes_keep_the_newest(tmp_path: Path) -> None:
    gate = threading.Event()
    order: list[int] = []

    def slow_write(path: Path, data: dict[str, Any]) -> None:
        if data["n"] == 0:
            gate.wait(5)  # the thread is stuck writing an old content…
        order.append(data["n"])
        write_json_atomic(path, data)

    w = StatusWriter(slow_write)
    p = tmp_path / "a.json"
    w.write(p, {"n": 0})
    for n in range(1, 5):
        w.write(p, {"n": n})  # …while newer ones arrive: only the newest is kept
    gate.set()
    w.close()
    assert read(p)["n"] == 4
    assert order[-1] == 4 and len(order) <= 3


def test_an_urgent_write_is_never_overwritten_by_an_older_queued_one(tmp_path: Path) -> None:
    gate = threading.Event()

    def write(path: Path, data: dict[str, Any]) -> None:
        if data["n"] == 1:
            gate.wait(5)
        write_json_atomic(path, data)

    w = StatusWriter(write)
    p = tmp_path / "a.json"
    w.write(p, {"n": 1})  # the thread picks this one and blocks
    t = threading.Thread(target=lambda: w.write(p, {"n": 2}, urgent=True))
    t.start()
    gate.set()
    t.join(5)
    w.close()
    assert read(p)["n"] == 2


def test_close_flushes_and_later_writes_are_direct(tmp_path: Path) -> None:
    w = StatusWriter(write_json_atomic)
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    w.write(a, {"status": "working"})
    w.close()
    assert read(a)["status"] == "working"
    w.write(b, {"status": "exited"})
    assert read(b)["status"] == "exited"
