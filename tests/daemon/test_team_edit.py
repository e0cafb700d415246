"""Adding, renaming and removing agents at run time (`staff new`, `rename`, `remove`; the
console's C-b c, C-b , and `:remove`): the program keeps running through a rename (same pid,
adopted under its new name after a daemon restart), a removed agent stays gone, and an agent
from the team file is left to the file, with a line that says so."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import staff
from tests.daemon.test_console import PREFIX, status
from tests.helpers.console_term import Term


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

    r = staff("remove", "reviewer")
    assert r.returncode == 0 and "removed" in r.stdout, r
    assert "reviewer" not in names()
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
