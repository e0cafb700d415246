"""`staff doctor`: the agent programs on PATH, their versions against the shipped profiles',
and, for a running team, which rules have decided its agents' states."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import staff


def _fake_program(folder: Path, name: str, says: str) -> None:
    path = folder / name
    path.write_text(f"#!/bin/sh\necho '{says}'\n")
    path.chmod(0o755)


def test_doctor_names_programs_and_versions(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_program(bin_dir, "codex", "codex-cli 0.171.0")
    _fake_program(bin_dir, "claude", "2.1.299 (Claude Code)")
    _fake_program(bin_dir, "opencode", "1.18.33")
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.defpath}")
    got = json.loads(staff("doctor", "--json", check=True).stdout)
    rows = {r["program"]: r for r in got["programs"]}
    assert rows["codex"]["version"] == "codex-cli 0.171.0" and rows["codex"]["matches"] is True
    assert rows["opencode"]["matches"] is True and rows["opencode"]["profile"] == "opencode"
    assert rows["claude"]["matches"] is False and rows["claude"]["profile_version"] == "2.1.330"
    assert rows["aider"]["path"] is None
    assert got["agents"] is None  # no daemon
    text = staff("doctor", check=True).stdout
    assert "profile made from 2.1.330" in text and "aider     not on PATH" in text


def test_explain_reports_which_rules_decided(fake_team: Path) -> None:
    """The daemon remembers when each rule last decided an agent's state: the data doctor's
    'matched nothing in the last hour' is computed from."""
    staff("ask", "planning", "hi", check=True, timeout=60)
    ex = json.loads(staff("explain", "planning", "--json", check=True).stdout)
    assert isinstance(ex["up_since"], float)
    assert ex["rule_hits"], ex
    assert all(isinstance(t, float) for t in ex["rule_hits"].values())
    assert json.loads(staff("doctor", "--json", check=True).stdout)["agents"] == []  # up < 1 h


def test_quiet_rules_are_those_silent_for_an_hour_of_uptime() -> None:
    from supervisor.client.cli.doctor import quiet

    now = 100_000.0
    hits = {"idle-prompt": now - 60, "working-title": now - 7200}
    ids = ["approval-dialog", "working-title", "idle-prompt"]
    assert quiet(ids, hits, now - 7200, now) == ["approval-dialog", "working-title"]
    assert quiet(ids, hits, now - 600, now) is None  # up for 10 minutes: too early to say


def test_doctor_reads_aiders_version_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`aider --version` says `aider 0.86.2`: the shipped profile's version, a match."""
    from supervisor.client.cli.doctor import program_report

    _fake_program(tmp_path, "aider", "aider 0.86.2")
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.defpath}")
    row = program_report("aider", "aider")
    assert (row["version"], row["profile_version"], row["matches"]) == ("aider 0.86.2", "0.86.2", True)
    _fake_program(tmp_path, "aider", "aider 0.87.0")
    assert program_report("aider", "aider")["matches"] is False
