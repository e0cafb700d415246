"""Adding, renaming and removing agents at run time (`staff new`, `rename`, `remove`; the
console's C-b c, C-b , and `:remove`): the program keeps running through a rename (same pid,
adopted under its new name after a daemon restart), a removed agent stays gone, and an agent
from the team file is left to the file, with a line that says so."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from supervisor.client.connection import Connection
from supervisor.protocol import socket_path
from tests.conftest import staff
from tests.daemon.test_console import PREFIX, status
from tests.helpers.console_term import Term
from tests.helpers.events import Events


def names() -> list[str]:
    return [a["agent_id"] for a in json.loads(staff("status", "--json", check=True).stdout)["agents"]]


def test_new_rename_remove_from_the_command_line(fake_team: Path, home: Path) -> None:
    st = json.loads(staff("new", "rev", "--like", "coding", "--json", check=True).stdout)
    assert st["agent_id"] == "rev" and status("rev")["command"] == status("coding")["command"]
    staff("ask", "rev", "first", check=True)
    pid = status("rev")["pid"]

    r = staff("rename", "rev", "reviewer")
    assert r.returncode == 0 and r.stdout.strip() == "rev is now reviewer", r
    assert "rev" not in names() and status("reviewer")["pid"] == pid  # the same program
    assert "second" in staff("ask", "reviewer", "second", check=True).stdout
    assert json.loads((home / "placed.json").read_text()).keys() >= {"reviewer"}
    assert not (home / "status" / "rev.json").exists()

    staff("reload", check=True)  # a new daemon adopts the program from the keeper, by its new name
    assert status("reviewer")["pid"] == pid
    assert "second" in staff("logs", "reviewer", check=True).stdout

    for bad, why in ((("rename", "planning", "plan"), "comes from the team file"),
                     (("remove", "planning"), "comes from the team file"),
                     (("rename", "reviewer", "coding"), "already an agent 'coding'"),
                     (("rename", "reviewer", "no way"), "bad agent name"),
                     (("remove", "nobody"), "unknown agent")):
        r = staff(*bad)
        assert r.returncode != 0 and why in r.stderr and "Traceback" not in r.stderr, (bad, r)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr

    staff("watch", "reviewer", "--until", r"regex:NEVER-\d+", check=True)
    r = staff("remove", "reviewer")
    assert r.returncode == 0 and "removed" in r.stdout, r
    assert "reviewer" not in names()
    assert json.loads(staff("monitors", "--json", check=True).stdout) == []  # its monitors end too
    staff("down", check=True)
    staff("up", "-c", str(fake_team), check=True)
    assert sorted(names()) == ["coding", "planning", "testing"]  # it stays gone


def test_rename_in_the_console(fake_team: Path) -> None:
    staff("new", "extra", "--like", "planning", check=True)
    t = Term(["console", "extra"])
    try:
        t.wait(lambda: t.sidebar().get("extra") == "idle" and "❯" in t.main(), what="extra shown")
        t.send(PREFIX + ",")  # the command line, prefilled: the new name is typed after it
        t.wait(lambda: ":rename extra" in t.text(), what="the rename on the command line")
        t.send("helper\r")
        t.wait(lambda: t.sidebar().get("helper") == "idle" and "extra" not in t.sidebar(),
               what="the new name in the sidebar")
        t.wait(lambda: t.pane_title().startswith("helper"), what="the pane follows it")
        t.send("hello after the rename\r")  # typing still reaches the same program
        t.wait(lambda: "hello after the rename" in t.main(), what="the typing drawn")
        t.send(PREFIX + ":remove\r")
        t.wait(lambda: "helper" not in t.sidebar(), what="removed from the sidebar")
        t.send(PREFIX + "d")
        assert t.wait_exit() == 0
    finally:
        t.close()


def test_an_agent_a_hub_placed_is_left_to_the_hub(fake_team: Path, home: Path) -> None:
    """A hub places its agents again on every reconnect: removed here, one would come back;
    renamed, it would run twice. So the host refuses, and says where the agent is edited;
    the mark survives a restart, and agents added with `staff new` stay editable."""
    staff("new", "mine", "--like", "coding", check=True)
    table = json.loads((home / "placed.json").read_text())["mine"]

    async def place() -> None:
        conn = await Connection.open(socket_path())
        try:
            assert (await conn.call("place", agent="far", table=table))["placed"] is True
        finally:
            await conn.close()

    asyncio.run(place())
    assert status("far")["status"] in ("starting", "idle")
    for _ in range(2):  # and again after a restart, which reads the mark back from placed.json
        for bad in (("remove", "far"), ("rename", "far", "near")):
            r = staff(*bad)
            assert r.returncode != 0 and r.stderr.strip() == (
                "staff: far was placed by a hub: edit the hub's team file"), (bad, r)
        assert "far" in names()
        staff("reload", check=True)
    assert staff("rename", "mine", "ours").returncode == 0
    assert staff("remove", "ours").returncode == 0


def test_a_rename_keeps_the_limit_hold_and_the_monitors(fake_team: Path, home: Path) -> None:
    """A limit hold and a monitor were kept under the old name: after the next restart the
    renamed agent was no longer held (the held task typed into it again) and the monitor was
    dropped. Both follow the new name, on disk too."""
    staff("new", "rev", "--like", "coding", check=True)
    events = Events(home)
    try:
        held = json.loads(staff("submit", "rev", "over the limit [apierror=429]", "--json",
                                check=True).stdout)
        events.wait(lambda e: e.get("type") == "limit" and e.get("until"), 30)
    finally:
        events.close()
    until = status("rev")["limited_until"]
    mid = staff("watch", "rev", "--until", r"regex:MAGIC-\d+", check=True).stdout.strip()

    staff("rename", "rev", "reviewer", check=True)
    assert json.loads((home / "limits.json").read_text()).keys() == {"reviewer"}
    staff("reload", check=True)  # a new daemon reads both back, under the new name
    assert status("reviewer")["limited_until"] == until
    got = json.loads(staff("wait", held["id"], "--timeout", "0", "--json").stdout)
    assert got["state"] == "queued" and got["to"] == "reviewer", got
    monitors = json.loads(staff("monitors", "--json", check=True).stdout)
    assert [(m["id"], m["agent"]) for m in monitors] == [(mid, "reviewer")], monitors
