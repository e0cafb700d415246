"""Broken state, bad text, odd paths: each is one line that says what to do, and nothing is
left running behind it (no traceback ever reaches the person)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from supervisor.protocol import Client, socket_path
from tests.conftest import REPO, STAFF, staff

SHELL_TEAM = '[agents.a1]\ncommand = ["sh", "-i"]\nprofile = "shell"\nenv = { PS1 = "$ " }\n'


def one_line(r: subprocess.CompletedProcess[str], *needles: str) -> str:
    err = r.stderr.strip()
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr and len(err.splitlines()) == 1, r.stderr
    for needle in needles:
        assert needle in err, err
    return err


def no_keeper(home: Path) -> bool:
    """Nothing answers on the keeper's socket (a failed start left no keeper behind)."""
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(str(home / "keeper.sock"))
    except OSError:
        return True
    finally:
        s.close()
    return False


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    path = tmp_path / "staff.toml"
    path.write_text(SHELL_TEAM)
    return path


@pytest.fixture
def daemon(home: Path, cfg: Path) -> Iterator[Path]:
    staff("up", "-c", str(cfg), check=True)
    try:
        yield home
    finally:
        staff("down")


def raw(home: Path, req: dict[str, object]) -> dict[str, object]:
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(30)
        s.connect(str(socket_path(home)))
        s.sendall(json.dumps(req).encode() + b"\n")
        reply: dict[str, object] = json.loads(s.makefile("rb").readline())
        return reply


def test_a_state_dir_too_long_for_a_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cfg: Path
) -> None:
    home = tmp_path / ("d" * (110 - len(str(tmp_path)))) / "staff"
    monkeypatch.setenv("STAFF_HOME", str(home))
    for args in (["status"], ["up", "-c", str(cfg)], ["ask", "a1", "hi"], ["inbox"]):
        one_line(staff(*args), "too long for a Unix socket", "STAFF_HOME")
    assert staff("down").returncode == 0


def test_task_text_that_is_not_utf8(daemon: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([*STAFF, "submit", "a1", b"caf\xe9 au lait"], capture_output=True, text=True, env=env)
    one_line(r, "not valid UTF-8", "byte 0xe9", "iconv")
    r = subprocess.run([*STAFF, "ask", "a1", "-"], input=b"caf\xe9\n", capture_output=True, env=env)
    one_line(subprocess.CompletedProcess(r.args, r.returncode, r.stdout.decode(), r.stderr.decode()),
             "not valid UTF-8", "byte 0xe9")
    assert staff("ask", "a1", "echo still-fine", check=True).stdout.strip() == "still-fine"


def test_a_submit_over_the_frame_limit(daemon: Path) -> None:
    r = staff("submit", "a1", "-", input="x" * (10 << 20))
    one_line(r, "at most 1 MiB", "in a file")
    assert "Broken pipe" not in r.stderr


@pytest.mark.parametrize("content", [b"this is not a database" * 100, "truncated"])
def test_a_damaged_journal(home: Path, cfg: Path, content: bytes | str) -> None:
    if content == "truncated":
        staff("up", "-c", str(cfg), check=True)
        with Client(socket_path(home)) as c:
            for i in range(200):  # enough pages that half of the file is half of the tables
                c.call("submit", to="a1", text=f"echo {i} " + "x" * 2000)
        staff("down", check=True)
        data = (home / "journal.db").read_bytes()
        (home / "journal.db").write_bytes(data[: len(data) // 2])
    else:
        home.mkdir(mode=0o700)
        assert isinstance(content, bytes)
        (home / "journal.db").write_bytes(content)
    for _ in range(2):  # twice: no keeper is left behind by either
        one_line(staff("up", "-c", str(cfg)), "journal", "mv ")
        assert no_keeper(home) and staff("status").returncode == 2


@pytest.mark.parametrize("name", ["staff.sock", "keeper.sock"])
def test_a_directory_where_a_socket_belongs(home: Path, cfg: Path, name: str) -> None:
    home.mkdir(mode=0o700)
    (home / name).mkdir()
    one_line(staff("up", "-c", str(cfg)), name, "is a directory", "remove")
    one_line(staff("status"))
    assert no_keeper(home) or name == "keeper.sock"


def test_damaged_inbox_and_monitors_files_are_said_and_skipped(home: Path, cfg: Path) -> None:
    home.mkdir(mode=0o700)
    good = {"title": "kept", "body": "", "source": "x", "to": "person", "id": "M-1", "time": 1.0}
    (home / "inbox.jsonl").write_bytes(
        json.dumps(good).encode() + b"\n" + b'{"title": "bad byte \xff"}\n'
        + json.dumps({**good, "id": "M-2", "time": "noon"}).encode() + b"\n"
    )
    (home / "monitors.json").write_text("[1, 2]")
    try:
        for _ in range(2):
            r = staff("up", "-c", str(cfg), check=True)
            assert "warning: " in r.stderr and "inbox.jsonl: skipped 2 damaged lines" in r.stderr, r.stderr
            assert "monitors.json: 2 entries not a monitor" in r.stderr, r.stderr
            inbox = staff("inbox", "--all", check=True)
            assert "kept" in inbox.stdout and inbox.stderr == ""
            assert staff("monitors", check=True).returncode == 0
            staff("down", check=True)
            assert no_keeper(home)
    finally:
        staff("down")


def test_lone_surrogates_are_refused_at_the_door(daemon: Path) -> None:
    for req in (
        {"cmd": "submit", "to": "a1", "text": "\ud800"},
        {"cmd": "watch", "agent": "a1", "until": "regex:\udfff"},
        {"cmd": "inbox_post", "title": "x\ud800"},
    ):
        reply = raw(daemon, req)
        assert reply["ok"] is False and reply["error"]["code"] == "bad_request", reply  # type: ignore[index]
        assert "surrogate" in reply["error"]["message"]  # type: ignore[index]
    assert staff("monitors", check=True).returncode == 0
    assert staff("inbox", check=True).returncode == 0
    assert "internal" not in (daemon / "daemon.log").read_text()
