"""supervisor/util/dirwatch.py: inotify waits for a file written to and a file arriving."""

from __future__ import annotations

import asyncio
from pathlib import Path

from supervisor.util.dirwatch import dir_watch, file_events


async def test_a_write_wakes_the_async_wait(tmp_path: Path) -> None:
    f = tmp_path / "transcript.jsonl"
    f.write_text("{}\n")
    events = file_events()
    assert events.armed(f), events.error
    with f.open("a") as fh:  # written after arming, before the wait: not missed
        fh.write("{}\n")
    assert await events.changed(f, 30) is True
    waiting = asyncio.ensure_future(events.changed(f, 30))
    await asyncio.sleep(0)
    with f.open("a") as fh:
        fh.write("{}\n")
    assert await waiting is True
    assert await events.changed(f, 0.01) is False  # nothing new


def test_a_file_moved_into_the_directory_wakes_the_wait(tmp_path: Path) -> None:
    (tmp_path / "new").mkdir()
    w = dir_watch(tmp_path / "new")
    try:
        assert w.event_driven, w.error
        assert w.wait(0) is False
        (tmp_path / "m1").write_text("x")
        (tmp_path / "m1").rename(tmp_path / "new" / "m1")  # how a Maildir delivers
        assert w.wait(30) is True
    finally:
        w.close()


def test_a_missing_path_falls_back_to_timed_looks(tmp_path: Path) -> None:
    w = dir_watch(tmp_path / "nowhere", fallback_interval=0.01)
    assert not w.event_driven and "No such file" in (w.error or "")
    assert w.wait() is False
