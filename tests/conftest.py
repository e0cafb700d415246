"""Shared test helpers: an isolated state dir, the fake team, a daemon per test."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FAKE = REPO / "fixtures" / "fake_claude.py"
STAFF = [sys.executable, "-m", "supervisor"]


def fake_team_toml(names: tuple[str, ...] = ("planning", "coding", "testing"), extra: str = "") -> str:
    out = []
    for name in names:
        out.append(
            f"[agents.{name}]\n"
            f'command = ["{sys.executable}", "{FAKE}", "--startup-delay", "0"]\n'
            f'profile = "fake"\nrole = "{name}"\n{extra}\n'
        )
    return "\n".join(out)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A private STAFF_HOME and HOME, so nothing touches the developer's own."""
    h = tmp_path / "staff"
    monkeypatch.setenv("STAFF_HOME", str(h))
    fake_home = tmp_path / "home"
    fake_home.mkdir()
    monkeypatch.setenv("HOME", str(fake_home))
    monkeypatch.delenv("STAFF_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    yield h
    _reap_leftovers(h)


def _reap_leftovers(h: Path) -> None:
    """A test that failed half-way must not leave a daemon, a keeper or agents running."""
    import contextlib

    lock = h / "daemon.lock"
    with contextlib.suppress(OSError, ValueError):
        pid = int(lock.read_text().split()[0])
        os.kill(pid, 0)
        staff("down", timeout=30)
    if (h / "keeper.sock").exists():
        with contextlib.suppress(Exception):
            from supervisor.pty.keeperclient import KeeperClient

            with KeeperClient.connect(str(h / "keeper.sock"), subscribe=False) as k:
                k.shutdown(1.0)


def staff(
    *args: str, input: str | None = None, timeout: float = 60, check: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run the real `staff` CLI as a user would."""
    proc = subprocess.run(
        [*STAFF, *args],
        capture_output=True,
        text=True,
        input=input,
        timeout=timeout,
        cwd=os.getcwd(),
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"staff {' '.join(args)} → {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture
def fake_team(home: Path, tmp_path: Path) -> Iterator[Path]:
    """A running daemon with the three fake agents; stopped after the test."""
    cfg = tmp_path / "staff.toml"
    cfg.write_text(fake_team_toml())
    staff("up", "-c", str(cfg), check=True)
    try:
        yield cfg
    finally:
        staff("down")
