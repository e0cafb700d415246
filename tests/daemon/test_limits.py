"""A usage limit's hold outlives the daemon: after `staff reload` or `down`/`up` the agent is
still held until the same reset time and nothing is typed into it before then (before, a new
daemon typed the held task again, met the limit again, and put the task back once more)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import staff
from tests.daemon.test_console import status
from tests.helpers.events import Events


def test_a_limit_hold_is_kept_across_reload_and_down_up(fake_team: Path, home: Path) -> None:
    events = Events(home)
    try:
        held = json.loads(staff("submit", "coding", "over the limit [apierror=429]", "--json",
                                check=True).stdout)
        until = events.wait(lambda e: e.get("type") == "limit" and e.get("until"), 30)["until"]
    finally:
        events.close()
    after = json.loads(staff("submit", "coding", "queued behind it", "--json", check=True).stdout)
    kept = json.loads((home / "limits.json").read_text())
    assert kept["coding"]["until"] == until and "429" in kept["coding"]["reason"]
    assert (home / "limits.json").stat().st_mode & 0o777 == 0o600
    before = status("coding")

    staff("reload", check=True)
    st = status("coding")
    assert st["limited_until"] == before["limited_until"] and st["detail"] == before["detail"]
    staff("down", "--force", check=True)
    staff("up", "-c", str(fake_team), check=True)
    st = status("coding")
    assert st["limited_until"] == before["limited_until"], st
    for task in (held, after):  # still waiting: nothing was typed into it
        got = json.loads(staff("wait", task["id"], "--timeout", "0", "--json").stdout)
        assert got["state"] == "queued", got
    assert "over the limit" not in staff("screen", "coding", check=True).stdout.split("429")[-1]


def test_a_limits_file_not_ours_is_ignored(fake_team: Path, home: Path) -> None:
    staff("down", check=True)
    junk_files = ('["x"]', '{"coding": {"until": "soon"}}', '{"nobody": {"until": 9e12}}', "\x00{",
                  # numbers JSON lets through that are no reset time: time.localtime raised on
                  # them and the daemon never started; one far off would hold it for ever
                  '{"coding": {"until": NaN}}', '{"coding": {"until": Infinity}}',
                  '{"coding": {"until": 1e300}}', '{"coding": {"until": 9e12}}')
    for junk in junk_files:
        (home / "limits.json").write_text(junk)
        staff("up", "-c", str(fake_team), check=True)
        st = status("coding")
        assert st["limited_until"] is None and st["status"] in ("starting", "idle"), (junk, st)
        staff("down", check=True)
