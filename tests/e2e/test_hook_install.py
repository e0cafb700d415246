"""`staff hook install | uninstall | doctor` on a private HOME (Claude Code's user settings)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import staff
from tests.e2e.test_hook import HOOK, stub_editor


def settings(home_dir: Path) -> Path:
    return home_dir / ".claude" / "settings.json"


def test_install_is_idempotent_keeps_the_rest_and_uninstall_restores(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hdir = tmp_path / "home"
    s = settings(hdir)
    s.parent.mkdir(parents=True)
    before = {
        "model": "opus",
        "env": {"FOO": "1", "EDITOR": "nano -w"},
        "permissions": {"allow": ["Bash(ls)"]},
    }
    s.write_text(json.dumps(before))
    monkeypatch.setenv("EDITOR", "vim")

    r = staff("hook", "install", check=True)
    assert "installed: EDITOR and VISUAL" in r.stdout
    after = json.loads(s.read_text())
    assert after["env"] == {"FOO": "1", "EDITOR": HOOK, "VISUAL": HOOK}
    assert after["model"] == "opus" and after["permissions"] == before["permissions"]
    assert json.loads(s.with_name("settings.json.staff-backup").read_text()) == before
    assert "already installed" in staff("hook", "install", check=True).stdout
    assert json.loads(s.read_text()) == after

    doc = staff("hook", "doctor")
    assert doc.returncode == 0, doc.stdout
    assert f"✔ EDITOR = {HOOK}" in doc.stdout and f"✔ VISUAL = {HOOK}" in doc.stdout
    assert "other files open in: nano -w" in doc.stdout  # the editor from before install
    assert "daemon: not running" in doc.stdout

    # files the hook does not delegate open in that editor
    log = stub_editor(tmp_path, monkeypatch, "nano")
    msg = tmp_path / "COMMIT_EDITMSG"
    msg.write_text("fix\n")
    subprocess.run([HOOK, str(msg)], check=True, timeout=30)
    assert log.read_text().splitlines() == [f"-w {msg}"]

    assert "uninstalled" in staff("hook", "uninstall", check=True).stdout
    assert json.loads(s.read_text()) == before
    assert "not installed" in staff("hook", "uninstall", check=True).stdout
    doc = staff("hook", "doctor")
    assert doc.returncode == 1 and "✘ EDITOR = nano -w" in doc.stdout and "staff hook install" in doc.stdout


def test_install_on_a_fresh_home_and_a_broken_file(home: Path, tmp_path: Path) -> None:
    s = settings(tmp_path / "home")
    staff("hook", "install", check=True)
    assert json.loads(s.read_text()) == {"env": {"EDITOR": HOOK, "VISUAL": HOOK}}
    staff("hook", "uninstall", check=True)
    assert json.loads(s.read_text()) == {}
    s.write_text("{not json")
    r = staff("hook", "install")
    assert r.returncode == 2 and "not valid JSON" in r.stderr and "nothing was changed" in r.stderr
    assert s.read_text() == "{not json"


def test_doctor_sees_the_daemon(fake_team: Path, tmp_path: Path) -> None:
    staff("hook", "install", check=True)
    doc = staff("hook", "doctor", check=True)
    assert "✔ daemon: pid" in doc.stdout and "planning, coding, testing" in doc.stdout
