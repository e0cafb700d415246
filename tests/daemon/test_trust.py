"""A state dir, a team file and a token are trusted only when they are safely ours.

Another user's files (made here with os.chown to `nobody`, so those tests need root, as CI
has) must never decide what runs as us, where the daemon writes, or who gets in.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from supervisor.protocol import Client, socket_path
from tests.conftest import REPO, fake_team_toml, staff

NOBODY = 65534
needs_root = pytest.mark.skipif(
    os.getuid() != 0, reason="needs root: files owned by another uid are made with chown"
)
HOOK = [sys.executable, "-m", "hook.main"]  # this checkout's hook (the installed script may be another's)


def team(tmp_path: Path) -> Path:
    cfg = tmp_path / "staff.toml"
    cfg.write_text(fake_team_toml(("coding",)))
    return cfg


def no_daemon(home: Path) -> bool:
    return staff("status").returncode == 2 and not (home / "staff.sock").exists()


@needs_root
def test_a_token_planted_in_a_world_writable_home_is_refused(home: Path, tmp_path: Path) -> None:
    home.mkdir(mode=0o777)
    home.chmod(0o777)
    planted = home / "http.token"
    planted.write_text("another-users-token-that-is-long-enough-to-pass\n")
    os.chown(planted, NOBODY, NOBODY)
    r = staff("up", "-c", str(team(tmp_path)))
    assert r.returncode == 2, r.stdout
    line = r.stderr.strip()
    assert "\n" not in line and "http.token" in line and "not by you" in line and "remove" in line, line
    assert no_daemon(home)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700  # closed first, so nothing else gets in meanwhile


@needs_root
def test_a_planted_log_symlink_is_refused_and_nothing_is_written_through_it(
    home: Path, tmp_path: Path
) -> None:
    home.mkdir(mode=0o777)
    home.chmod(0o777)
    target = tmp_path / "elsewhere.txt"
    for name in ("daemon.log", "daemon.out"):
        os.symlink(target, home / name)
        os.lchown(home / name, NOBODY, NOBODY)
    r = staff("up", "-c", str(team(tmp_path)))
    assert r.returncode == 2 and "daemon." in r.stderr and "not by you" in r.stderr, r.stderr
    assert not target.exists()
    assert no_daemon(home)


def test_our_own_log_symlink_is_not_followed(home: Path, tmp_path: Path) -> None:
    """O_NOFOLLOW: even a symlink of ours is not written through (a log is never elsewhere)."""
    home.mkdir(mode=0o700)
    target = tmp_path / "elsewhere.log"
    os.symlink(target, home / "daemon.log")
    r = staff("up", "-c", str(team(tmp_path)))
    try:
        assert r.returncode == 2 and "daemon.log" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert not target.exists()
        assert no_daemon(home)
    finally:
        staff("down")


def test_state_files_are_private(home: Path, tmp_path: Path) -> None:
    cfg = tmp_path / "staff.toml"
    cfg.write_text(fake_team_toml(("coding",)) + '\n[http]\nlisten = "127.0.0.1:0"\n')
    staff("up", "-c", str(cfg), check=True)
    try:
        staff("ask", "coding", "hello", check=True)
        names = ["daemon.log", "daemon.out", "keeper.log", "journal.db", "journal.db-wal", "http.token",
                 "inbox.jsonl", "daemon.lock"]
        with Client(socket_path(home)) as c:
            c.call("inbox_post", title="hello")
        modes = {n: oct(stat.S_IMODE((home / n).stat().st_mode)) for n in names if (home / n).exists()}
        assert set(modes) == set(names), modes
        assert all(m == "0o600" for m in modes.values()), modes
    finally:
        staff("down")


@needs_root
def test_a_team_file_owned_by_another_user_is_refused(home: Path, tmp_path: Path) -> None:
    cfg = team(tmp_path)
    cfg.chmod(0o644)
    os.chown(cfg, NOBODY, NOBODY)
    for where in (["-c", str(cfg)], []):  # named, and found as ./staff.toml
        r = staff("up", *where)
        assert r.returncode == 2 and "owned by" in r.stderr and "not by you" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1
    assert no_daemon(home)


def test_the_hook_trusts_a_team_file_as_staff_up_does(home: Path, tmp_path: Path) -> None:
    """`[hook] editor` from a team file `staff up` refuses (mode 0666) is not run by the hook."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "ran.log"
    for name in ("planted-editor", "vi"):
        stub = bindir / name
        stub.write_text(f"#!/bin/sh\necho {name} >> {log}\n")
        stub.chmod(0o755)
    cfg = team(tmp_path)
    cfg.write_text(cfg.read_text() + '\n[hook]\neditor = "planted-editor"\n')
    cfg.chmod(0o666)
    assert "writable by other users" in staff("up", "-c", str(cfg)).stderr
    msg = tmp_path / "COMMIT_EDITMSG"
    msg.write_text("a commit message\n")
    env = {k: v for k, v in os.environ.items() if k not in ("STAFF_EDITOR", "VISUAL", "EDITOR")}
    env.update(PATH=f"{bindir}:{env['PATH']}", STAFF_CONFIG=str(cfg), XDG_CONFIG_HOME=str(tmp_path / "xdg"),
               PYTHONPATH=str(REPO))
    r = subprocess.run([*HOOK, str(msg)], capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0, r.stderr
    assert log.read_text().split() == ["vi"]
    assert "writable by other users" in r.stderr
    cfg.chmod(0o644)  # fixed: now it is used
    subprocess.run([*HOOK, str(msg)], capture_output=True, text=True, env=env, timeout=30, check=True)
    assert log.read_text().split() == ["vi", "planted-editor"]


def test_a_file_others_could_write_while_the_dir_was_open_is_refused(home: Path, tmp_path: Path) -> None:
    """Our own file, mode 0666: harmless in a dir that was private (an old umask leaves such
    files), refused in one that was open to others (they could have rewritten it)."""
    home.mkdir(mode=0o700)
    (home / "inbox.jsonl").write_text('{"title": "mine"}\n')
    (home / "inbox.jsonl").chmod(0o666)
    staff("up", "-c", str(team(tmp_path)), check=True)
    staff("down", check=True)
    home.chmod(0o777)
    r = staff("up", "-c", str(team(tmp_path)))
    assert r.returncode == 2 and "inbox.jsonl: writable by other users" in r.stderr, r.stderr
    assert no_daemon(home)
